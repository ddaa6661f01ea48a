/*
 * net_http.h - sokod's event loop and HTTP listener (libevent).
 *
 * Owns the event_base, the signal handlers, the storage writer's wake-up
 * and the evhttp server: /healthz, /metrics and the admin API
 * (docs/api.md).  Decisions are made by svc_admin.c and ledger.c; storage
 * work goes through dbq.c, never from a callback.
 */
#ifndef SOKO_NET_HTTP_H
#define SOKO_NET_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ledger.h"
#include "store.h"

/*
 * Runs sokod until SIGTERM/SIGINT: binds the listener, prints the readiness
 * line on stdout, serves, then shuts down gracefully (stop accepting, let
 * in-flight requests finish and their commits land, flush, return).
 * Also runs the POS listener (net_pos.c) when cfg->pos_listen is set;
 * pos_kek (32 bytes) unwraps terminal keys, NULL when POS is off.
 * Borrows everything.  api_key may be NULL (admin API answers 401).
 * Returns 0 on a clean stop, -1 if it could not start.
 */
int net_http_run(const struct config *cfg, struct store *st,
                 struct ledger *lg, const char *api_key,
                 const uint8_t *pos_kek);

struct evhttp_request;

/* Answers req (counted in /metrics); body copied. */
void net_http_reply(struct evhttp_request *req, int status, const char *ctype,
                    const char *body, size_t len);
/* Answers req with the error JSON of docs/api.md §Errors. */
void net_http_error(struct evhttp_request *req, int status, const char *code,
                    const char *message);

#endif
