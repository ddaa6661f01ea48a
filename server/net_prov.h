/*
 * net_prov.h - payments through mobile-money providers, on the loop:
 * the collections API, the providers' callback endpoints, the janitor
 * that sends and queries, and the provider drivers that speak each API
 * through net_curl (docs/providers.md §Payments through providers).
 *
 * Layer: net_* glue.  Decisions are svc_prov.c's; storage goes through
 * dbq jobs; provider bodies are built and parsed by protocols/prov_*.c.
 */
#ifndef SOKO_NET_PROV_H
#define SOKO_NET_PROV_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

struct event_base;
struct evhttp_request;
struct dbq;
struct net_prov;

/* NULL with a reason in err when a provider is configured wrongly
 * (missing secret, bad URL).  With no provider configured it still
 * serves GET /v1/payments and answers provider_disabled elsewhere. */
struct net_prov *net_prov_new(struct event_base *base, struct dbq *dbq,
                              const struct config *cfg, char *err,
                              size_t errlen);
/* Stops the janitor; calls in flight still finish. */
void net_prov_shutdown(struct net_prov *np);
void net_prov_free(struct net_prov *np); /* NULL-safe; after the loop */

/* Operations alive (API requests, calls, storage jobs). */
int64_t net_prov_inflight(const struct net_prov *np);

/*
 * Serves path when it is one of ours: /v1/collections,
 * /v1/payments/{ref} (need admin), /v1/callbacks/... (authenticated by
 * their own token or signature).  Returns true when it answered (or will).
 */
bool net_prov_http(struct net_prov *np, struct evhttp_request *req,
                   const char *path, bool is_admin);

#endif
