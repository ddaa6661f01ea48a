/*
 * net_pos.h - sokod's POS terminal listener (libevent glue,
 * docs/pos-protocol.md).  Decisions are svc_pos.c's; storage work goes
 * through dbq.c.  Runs on net_http.c's event_base.
 */
#ifndef SOKO_NET_POS_H
#define SOKO_NET_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "config.h"
#include "dbq.h"

struct net_pos;

/*
 * Binds cfg->pos_listen on base and starts accepting: TLS when
 * cfg->pos_tls_cert_file is set, and cfg->pos_readers reader threads
 * (readq.h) on their own connections to cfg->store.  Borrows cfg, dbq,
 * lg (dbq's ledger: the limits of COLLECT and CASH_OUT are checked with
 * it on dbq's worker) and kek (32 bytes), which must outlive it.  Writes
 * "ADDR:PORT" (the bound port) into where.  Returns NULL (logged) if it cannot bind, load
 * the certificate or start the readers.
 */
struct net_pos *net_pos_new(struct event_base *base, struct dbq *dbq,
                            struct ledger *lg, const struct config *cfg,
                            const uint8_t *kek, char *where, size_t cap);

/* Graceful shutdown: stops accepting and reading; each connection closes
 * once its in-flight requests are answered and its output flushed. */
void net_pos_shutdown(struct net_pos *p);

struct net_prov;

/* Serves the provider-backed requests (COLLECT, CASH_OUT) through np,
 * and pushes their outcomes (COLLECT_RESULT) to connected terminals.
 * Without it they are answered UNSUPPORTED_TYPE.  NULL-safe. */
void net_pos_set_prov(struct net_pos *p, struct net_prov *np);

/* Storage jobs posted by POS connections and not yet completed. */
size_t net_pos_inflight(const struct net_pos *p);

/* Closes every connection and the listener.  After dbq_stop() and
 * dbq_complete(): no job may still point at a connection.  NULL-safe. */
void net_pos_free(struct net_pos *p);

struct evhttp_request;
/* POST /rpc and /rpc.batch (docs/api.md "POS messages over HTTP"):
 * true if path is one of them (req answered now or later), false to let
 * the caller route it.  is_authorized: the admin key was given; else a
 * partner key (svc_pos_rpc_key_hash) in Authorization: Bearer is looked
 * up with the terminal. */
bool net_pos_http(struct net_pos *p, struct evhttp_request *req,
                  const char *path, bool is_authorized);

#endif
