/*
 * svc_recon.h - reconciliation of unknown payments (docs/payments.md
 * §Reconciliation): settling by hand, from a provider statement, a
 * payment that no provider answer could settle, and re-opening one for
 * another status query.
 *
 * Pure: no I/O, no clock (now is an argument), no libevent.  The glue
 * (net_recon.c for the API, sokoctl.c for the command line) reads the
 * payment and its resolution, if any, asks svc_recon_resolve() and
 * writes what it says: a ledger request carrying the change (the same
 * postings an answer from the provider would have made) or a plain
 * change, each with its resolution record in the same commit.
 *
 * The rules:
 *   - only an unknown payment whose call is closed (no status query
 *     under way) may be resolved; a final state is never flipped;
 *   - succeeded posts what a success posts (svc_prov_settle_req):
 *     collection clearing -> merchant, disbursement hold -> clearing,
 *     bill holding -> biller payable;
 *   - failed posts what a failure posts: nothing for a collection, the
 *     hold back to the source for a disbursement (svc_prov_settle_req)
 *     and for a bill (svc_bill_refund_req);
 *   - one resolution per payment, recorded with who, why and when; a
 *     repeat of the same request (same Idempotency-Key and content) is
 *     a replay, anything else about a resolved payment is refused.
 */
#ifndef SOKO_SVC_RECON_H
#define SOKO_SVC_RECON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "store.h"
#include "svc_admin.h"

#define SVC_RECON_PAGE_MAX 100 /* payments per list page */

/*
 * Parses {"outcome": "succeeded"|"failed", "evidence": TEXT,
 * "actor": WHO, "provider_ref": REF?} into *out (outcome, actor,
 * evidence, provider_ref; the rest zero).  Returns 0, or -1 with *err.
 */
int svc_recon_parse(struct store_prov_resolution *out, const char *body,
                    size_t len, struct svc_error *err);

/*
 * Checks the fields of *res as svc_recon_parse does (for sokoctl, whose
 * arguments do not come as JSON): outcome, actor 1..64 of
 * [A-Za-z0-9._@:-], evidence 1..256 bytes without control characters,
 * provider_ref 0..64 of [A-Za-z0-9._:/-].  Returns 0 or -1 with *err.
 */
int svc_recon_check(const struct store_prov_resolution *res,
                    struct svc_error *err);

/* Sets res->req_hash: SHA-256 over the payment ref and the request's
 * content (outcome, actor, evidence, provider_ref). */
void svc_recon_hash(struct store_prov_resolution *res, const char *ref);

enum svc_recon_rc {
	SVC_RECON_WRITE,   /* write *u (store prov_update): nothing moves */
	SVC_RECON_POST,    /* commit *r, which carries *u */
	SVC_RECON_REPLAY,  /* this very request resolved it before */
	SVC_RECON_REFUSED, /* *err says why; nothing to write */
};

/*
 * Decides the resolution res (checked, hashed, idem_key set) of payment
 * p, resolved before by prior (NULL if never).  Fills res->payment_id,
 * *u (pointing at res and into it: both must outlive the write) and,
 * for SVC_RECON_POST, *r.  Refusals: 409 payment_resolved (resolved by
 * hand before, by another request), 409 idempotency_key_mismatch (this
 * key resolved it with other content), 409 payment_not_unknown, 409
 * payment_busy (a status query is under way: try again after it).
 */
enum svc_recon_rc svc_recon_resolve(const struct store_prov *p,
                                    const struct store_prov_resolution *prior,
                                    struct store_prov_resolution *res,
                                    struct store_prov_update *u,
                                    struct ledger_req *r,
                                    struct svc_error *err);

/*
 * Re-opens unknown payment p for one more status query (the janitor's
 * query path, svc_prov_due): its call goes back to accepted (answer
 * lost when no provider reference is known) and is due now_ms.  The
 * answer settles it if final, else closes it again, unknown.  Returns 0
 * with *u to write, or -1 with *err: 409 payment_not_unknown, 409
 * payment_busy (already reopened), 409 payment_not_queryable (the
 * provider cannot be asked about it: resolve it by hand).
 */
int svc_recon_requery(const struct store_prov *p, bool can_query,
                      int64_t now_ms, struct store_prov_update *u,
                      struct svc_error *err);

#endif
