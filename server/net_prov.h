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
#include "store.h"
#include "svc_bill.h"

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

/* ---- in-process payments: the POS channel (docs/payments.md §POS) ----
 *
 * "Collect this amount from this MSISDN through this provider, and tell
 * me how it ended": net_prov_collect_prep on the loop thread fills the
 * payment row (the provider's own checks, its client reference, the
 * deadline); net_prov_collect_store, run by the caller's storage job on
 * the worker, makes it durable (claim-before-send: the janitor sends it
 * only once it is committed); net_prov_kick then wakes the janitor; the
 * final state comes to the hook of net_prov_on_final.
 */
struct store;
struct store_prov;
struct store_pos_link;
struct ledger_account;
struct svc_collection;

/* NULL, or the API error code (provider_unknown, provider_disabled,
 * retry_later, or the driver's: msisdn_invalid, currency_unsupported
 * ...) with *msg.  clearing[cap]: the provider's clearing account code,
 * for net_prov_collect_store.  p->req_hash is the caller's. */
const char *net_prov_collect_prep(struct net_prov *np,
                                  const struct svc_collection *c,
                                  const char *ref, int64_t now_ms,
                                  struct store_prov *p, char *clearing,
                                  size_t cap, const char **msg);
/* Worker thread.  STORE_OK created (or *err_code with the HTTP *status
 * and *err_msg: nothing written); STORE_CONFLICT: p->pay.ref exists and
 * p is the stored payment.  The fee of docs/payments.md §13 is set. */
enum store_rc net_prov_collect_store(const struct net_prov *np,
                                     struct store *st, struct store_prov *p,
                                     const char *clearing_code,
                                     const struct ledger_account *target,
                                     const struct store_pos_link *link,
                                     int *status, const char **err_code,
                                     const char **err_msg);
/* Disbursements: as net_prov_collect_prep (codes of the API's POST
 * /v1/disbursements: provider_unknown, disbursement_disabled, ...),
 * with the holding account's code too (clearing and hold [cap]). */
const char *net_prov_disburse_prep(struct net_prov *np,
                                   const struct svc_collection *c,
                                   const char *ref, int64_t now_ms,
                                   struct store_prov *p, char *clearing,
                                   char *hold, size_t cap, const char **msg);
/* Worker thread: the clearing and holding accounts and src's floor
 * checked, p's account ids filled; nothing written (the hold request,
 * svc_prov_hold_req, creates the payment with its money held). */
enum store_rc net_prov_disburse_accounts(const struct net_prov *np,
                                         struct store *st,
                                         struct store_prov *p,
                                         const char *clearing_code,
                                         const char *hold_code,
                                         const struct ledger_account *src,
                                         int *status, const char **err_code,
                                         const char **err_msg);

/* ---- bill payments in-process (net_bill.c) ---- */
struct svc_bill_validate;
struct svc_bill_pay;

struct svc_bill_check;
/* Validates v with Flutterwave (one call, bounded by prov_timeout_ms);
 * cb(arg, r) on the loop thread, exactly once, unless it returns
 * non-zero: -1 bills disabled, -2 the call cannot carry v (the customer
 * number), -3 the call cannot start.  v->biller_code "": the item code's
 * biller from the categories first (net_bill_resolve; its failures come
 * to cb). */
int net_bill_validate(struct net_prov *np, const struct svc_bill_validate *v,
                      void (*cb)(void *arg, const struct svc_bill_check *r),
                      void *arg);
/* The biller of item_code from the categories (docs/payments.md §8.1,
 * cached; at most one fetch): cb(arg, biller_code, SVC_BILL_VALID), or
 * cb(arg, NULL, SVC_BILL_ITEM_UNKNOWN: no biller or two list it;
 * SVC_BILL_UNANSWERED: the categories could not be fetched), exactly
 * once, possibly before it returns; -1 (no call) when bills are
 * disabled. */
int net_bill_resolve(struct net_prov *np, const char *item_code,
                     void (*cb)(void *arg, const char *biller_code,
                                enum svc_bill_outcome o),
                     void *arg);
/* Loop thread: the row of a new bill b (not funded).  NULL, or
 * provider_disabled, currency_unsupported, retry_later. */
const char *net_bill_prep(struct net_prov *np, const struct svc_bill_pay *b,
                          const char *ref, int64_t now_ms,
                          struct store_prov *p);
/* Worker thread: net_prov_collect_store for a bill paid from src. */
enum store_rc net_bill_store(const struct net_prov *np, struct store *st,
                             struct store_prov *p,
                             const struct ledger_account *src,
                             const struct store_pos_link *link, int *status,
                             const char **err_code, const char **err_msg);

/* Runs the janitor now (a payment was created). */
void net_prov_kick(struct net_prov *np);
/* fn is called on the loop thread each time a payment's state is
 * written final (succeeded, failed, reversed) or unknown, with the
 * payment as written; at least once per transition, more after a
 * replay.  One hook per instance. */
void net_prov_on_final(struct net_prov *np,
                       void (*fn)(void *arg, const struct store_prov *p),
                       void *arg);

#endif
