/*
 * net_billcat.h - Flutterwave bill categories on the loop (docs/payments.md
 * §8.1, docs/api.md §Bills): GET /v3/bill-categories fetched on demand,
 * one fetch at a time, cached for bills_categories_ttl_s; used to resolve
 * an item_code to its biller_code and served as GET /v1/bills/categories.
 * net_bill.c's business only.
 */
#ifndef SOKO_NET_BILLCAT_H
#define SOKO_NET_BILLCAT_H

#include <stddef.h>

#include "svc_bill.h"

struct net_prov;
struct evhttp_request;
struct billcat;

/* The cache of one sokod; NULL-safe free.  auth: the "Authorization:
 * Bearer ..." header line, borrowed. */
struct billcat *billcat_new(const char *auth);
void billcat_free(struct billcat *c);

/*
 * Calls fn(arg, cats, n, err_status, err_code, err_msg) once, from the loop
 * (possibly before billcat_get returns, when the cache is fresh): cats
 * the entries (valid during the call) and err_code NULL, or no entries
 * and the error to answer (503 provider_unavailable, 502 provider_error).
 */
typedef void (*billcat_fn)(void *arg, const struct svc_bill_cat *cats,
                           size_t n, int err_status, const char *err_code,
                           const char *err_msg);
void billcat_get(struct net_prov *np, struct billcat *c, billcat_fn fn,
                 void *arg);

/* GET /v1/bills/categories[?country=CC][&biller=CODE] (admin). */
void billcat_http(struct net_prov *np, struct billcat *c,
                  struct evhttp_request *req);

#endif
