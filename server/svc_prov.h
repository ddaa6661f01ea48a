/*
 * svc_prov.h - decisions for payments through providers (docs/providers.md
 * §Payments through providers): what to do with a payment that is due,
 * and how each provider answer, status or callback changes it.
 *
 * Pure: no I/O, no clock (now is an argument), no libevent, no curl.  The
 * glue (net_prov.c) carries the decisions out: a store_prov_update to
 * write, a ledger request to settle, a call to make.
 *
 * The rules that keep money right:
 *   - a call is marked "sending" durably before it leaves; after a crash
 *     such a call counts as lost;
 *   - a lost answer (NCURL_UNKNOWN) is queried, never re-sent; only a call
 *     that certainly never left (NOT_SENT) is sent again, a bounded number
 *     of times;
 *   - a callback is never trusted alone: it only makes a status query
 *     happen now; the status answer moves the money;
 *   - a final state is never flipped: a contradicting callback or status
 *     is recorded and raises an alert;
 *   - past its deadline and its bounded checks a payment becomes unknown,
 *     for reconciliation.
 */
#ifndef SOKO_SVC_PROV_H
#define SOKO_SVC_PROV_H

#include <stdbool.h>
#include <stdint.h>

#include "ledger.h"
#include "store.h"

struct svc_prov_policy {
	int64_t first_check_ms; /* accepted -> first status query */
	int64_t check_every_ms; /* between status queries */
	int32_t max_checks;     /* status queries before giving up */
	int64_t deadline_ms;    /* creation -> unknown at the latest */
	int32_t max_sends;      /* NOT_SENT re-sends before failing */
	int64_t resend_after_ms;
	int64_t lease_ms; /* a claimed row is not claimed again before */
};

/* *u as "change nothing" for row p (from = to = its states, its counters
 * and next_at_ms), to be edited into a change. */
void svc_prov_unchanged(const struct store_prov *p,
                        struct store_prov_update *u);

/* What the glue should do with a due payment. */
enum svc_prov_action {
	SVC_PROV_NOTHING,   /* not due after all (done) */
	SVC_PROV_SEND,      /* claim (mark sending), then call */
	SVC_PROV_QUERY,     /* ask the provider's status API */
	SVC_PROV_UPDATE,    /* write *u (no call): lost, unknown, failed */
};

/*
 * Decides for a due row.  can_query: the provider can query this payment
 * now (it has a provider_ref, or queries by our client_ref).  For SEND the
 * update *u is the claim to commit before the call; for UPDATE it is the
 * change to write.  why: static text for the log.
 */
enum svc_prov_action svc_prov_due(const struct store_prov *p, bool can_query,
                                  int64_t now_ms,
                                  const struct svc_prov_policy *pol,
                                  struct store_prov_update *u,
                                  const char **why);

/* How a call (initiate or status) ended, as far as money is concerned. */
enum svc_prov_verdict {
	SVC_PROV_ACCEPTED,  /* initiate: the provider took it (ref known) */
	SVC_PROV_REFUSED,   /* initiate: refused, nothing will be charged */
	SVC_PROV_NOT_SENT,  /* the request never left: safe to send again */
	SVC_PROV_LOST,      /* may have been delivered, no answer */
	SVC_PROV_PENDING,   /* status: still in progress */
	SVC_PROV_SUCCEEDED, /* status: money moved */
	SVC_PROV_FAILED,    /* status: final failure, nothing charged */
	SVC_PROV_NO_ANSWER, /* status: query failed (error, 5xx, lost):
	                       ask again later */
};

const char *svc_prov_verdict_name(enum svc_prov_verdict v);

/* A provider answer reduced to what decides: verdict plus details. */
struct svc_prov_answer {
	enum svc_prov_verdict v;
	const char *provider_ref; /* ACCEPTED: theirs; else NULL */
	const char *code;         /* provider's result code, or NULL */
	const char *desc;         /* provider's text, or NULL */
	const char *receipt;      /* SUCCEEDED: receipt, or NULL */
	bool has_amount;          /* the answer states an amount */
	int64_t amount_minor;
	/* NOT_SENT / NO_ANSWER only: the request never left this process
	 * (no token, breaker open, queue full): the attempt is not counted
	 * (the deadline still bounds the payment) */
	bool not_left;
	/* what the customer must do next (Paystack's data.status step,
	 * Orange's payment page), written with any verdict; NULL: as it
	 * is */
	const char *next_step, *next_text, *next_url;
};

/*
 * Applies an answer to the row p (as read before the call).  Fills *u;
 * *settle is set when the update must be written by a ledger request
 * built with svc_prov_settle_req() (svc_prov_posts(): a success; for a
 * disbursement, a failure too).  Returns false when
 * the answer calls for an alert (*why says which): it contradicts a final
 * state, or states another amount (then *u makes the payment unknown).
 * u->payment_id == 0: nothing to write.
 */
bool svc_prov_apply(const struct store_prov *p,
                    const struct svc_prov_answer *a, int64_t now_ms,
                    const struct svc_prov_policy *pol,
                    struct store_prov_update *u, bool *settle,
                    const char **why);

/*
 * Whether writing u (a change to row p) moves money, so it must be
 * written by the ledger request of svc_prov_settle_req() rather than by
 * a plain store update: a collection that succeeds; a disbursement that
 * succeeds or fails (its hold is moved on or given back).  Every path
 * that writes a decision (answer, due row, status result) asks this.
 */
bool svc_prov_posts(const struct store_prov *p,
                    const struct store_prov_update *u);

/*
 * The ledger request that carries u (ledger_req.prov), keyed
 * "prov:<ref>" so a payment's final posting exists at most once
 * (docs/payments.md §Disbursements):
 *   collection succeeded:   provider clearing -> target (merchant payable)
 *   disbursement succeeded: hold -> provider clearing (the money left)
 *   disbursement failed:    hold -> source (the hold is given back)
 * Only for an update svc_prov_posts() says moves money.
 */
void svc_prov_settle_req(const struct store_prov *p,
                         const struct store_prov_update *u,
                         struct ledger_req *r);

/*
 * The ledger request that creates a disbursement (p, fully filled but
 * for pay.id; kind STORE_PROV_DISBURSE, hold_account_id set): source
 * (target_account_id) debited, hold credited, keyed "hold:<ref>", with
 * the payment row attached (ledger_req.prov_new), so the money is held
 * exactly when the payment exists.  The source's floor applies: a
 * source without the funds is LEDGER_INSUFFICIENT_FUNDS and nothing is
 * created.  The amount counts against the limits of the MSISDN
 * (ledger limit subject msisdn): over one, LEDGER_LIMIT_* and nothing is
 * created.  The hash covers the request's content (provider, MSISDN,
 * amount, accounts), so a repeat of the key with other content is
 * LEDGER_IDEM_MISMATCH.  Borrows p until the request is decided.
 */
void svc_prov_hold_req(const struct store_prov *p, struct ledger_req *r);

/* Callback verdicts, stored in prov_callbacks.verdict. */
enum svc_prov_cb {
	SVC_CB_ACCEPTED,      /* pending payment: query its status now */
	SVC_CB_DUPLICATE,     /* final already, agrees */
	SVC_CB_CONTRADICTION, /* final already, says the opposite: alert */
	SVC_CB_AMOUNT,        /* amount differs from the payment: alert */
};

const char *svc_prov_cb_name(enum svc_prov_cb c);

/*
 * Judges an authenticated callback about p claiming success or failure.
 * For SVC_CB_ACCEPTED, *u (when *has_update) records its result code and
 * receipt and makes the row due now.
 */
enum svc_prov_cb svc_prov_callback(const struct store_prov *p,
                                   bool claims_success, bool has_amount,
                                   int64_t amount_minor, const char *code,
                                   const char *receipt, int64_t now_ms,
                                   struct store_prov_update *u,
                                   bool *has_update);

#endif
