/*
 * svc_prov.c - decisions for payments through providers (svc_prov.h).
 */
#include "svc_prov.h"

#include <stdio.h>
#include <string.h>

#include "payment.h"
#include "sha256.h"
#include "util.h"

/* u starts as "change nothing" for row p. */
static void
update_from(const struct store_prov *p, struct store_prov_update *u)
{
	memset(u, 0, sizeof *u);
	u->payment_id = p->pay.id;
	u->from_state = u->to_state = p->pay.state;
	u->expect_call = u->call_state = p->call_state;
	u->send_attempts = p->send_attempts;
	u->checks = p->checks;
	u->next_at_ms = p->next_at_ms;
}

/* The provider has given its final word (reversal may still follow a
 * success, but that is a new movement, not this call's outcome). */
static bool
decided(uint8_t state)
{
	return state == PAY_SUCCEEDED || state == PAY_FAILED ||
	       state == PAY_REVERSED;
}

static void
become(struct store_prov_update *u, uint8_t to, const char *reason)
{
	u->to_state = to;
	u->reason = reason;
}

void
svc_prov_unchanged(const struct store_prov *p, struct store_prov_update *u)
{
	update_from(p, u);
}

enum svc_prov_action
svc_prov_due(const struct store_prov *p, bool can_query, int64_t now_ms,
             const struct svc_prov_policy *pol, struct store_prov_update *u,
             const char **why)
{
	bool past_deadline = now_ms >= p->deadline_ms;

	update_from(p, u);
	*why = "";
	if (p->call_state == STORE_CALL_DONE || decided(p->pay.state))
		return SVC_PROV_NOTHING;
	switch (p->call_state) {
	case STORE_CALL_TO_SEND:
		if (p->send_attempts >= pol->max_sends || past_deadline) {
			/* it never reached the provider: nothing was charged */
			become(u, PAY_FAILED, "never reached the provider");
			u->call_state = STORE_CALL_DONE;
			u->result_code = "not_sent";
			*why = "send attempts exhausted";
			return SVC_PROV_UPDATE;
		}
		/* the claim: durable before the call leaves */
		if (p->pay.state == PAY_CREATED)
			become(u, PAY_PENDING, "sent to the provider");
		u->call_state = STORE_CALL_SENDING;
		u->send_attempts = p->send_attempts + 1;
		u->next_at_ms = now_ms + pol->lease_ms;
		*why = "send";
		return SVC_PROV_SEND;
	case STORE_CALL_SENDING:
		/* claimed, and its answer never recorded: a crash or a lease
		 * that ran out.  It may have been delivered. */
		u->call_state = STORE_CALL_LOST;
		u->next_at_ms = now_ms;
		*why = "call outcome unknown (restart or lease expired)";
		return SVC_PROV_UPDATE;
	default: /* ACCEPTED, LOST */
		break;
	}
	if (p->pay.state == PAY_UNKNOWN) {
		/* reopened for reconciliation (a re-query, a callback: both
		 * reset checks): one status query that reaches the
		 * provider, whatever the deadline; its answer closes the
		 * row again (apply_inner).  A query that could not leave
		 * this process is tried again, at most max_checks times. */
		if (!can_query || p->checks >= pol->max_checks) {
			u->call_state = STORE_CALL_DONE;
			*why = can_query ? "unknown, query could not leave: "
			                   "back to reconciliation"
			                 : "unknown, not queryable: back to "
			                   "reconciliation";
			return SVC_PROV_UPDATE;
		}
		*why = "status query (unknown, reopened)";
		return SVC_PROV_QUERY;
	}
	if (past_deadline) {
		/* the deadline bounds everything, queryable or not */
		become(u, PAY_UNKNOWN, "no final answer by the deadline");
		u->call_state = STORE_CALL_DONE;
		*why = "deadline passed: unknown, for reconciliation";
		return SVC_PROV_UPDATE;
	}
	if (!can_query || p->checks >= pol->max_checks) {
		/* nothing to ask (or asked enough): wait for a callback
		 * until the deadline */
		u->next_at_ms = p->deadline_ms;
		*why = can_query ? "checks exhausted: waiting for the deadline"
		                 : "not queryable: waiting for the deadline";
		return SVC_PROV_UPDATE;
	}
	*why = "status query";
	return SVC_PROV_QUERY;
}

const char *
svc_prov_verdict_name(enum svc_prov_verdict v)
{
	static const char *const names[] = {
		"accepted", "refused",   "not_sent", "lost",
		"pending",  "succeeded", "failed",   "no_answer",
	};

	return (unsigned)v < sizeof names / sizeof names[0] ? names[v] : "?";
}

static bool
apply_inner(const struct store_prov *p, const struct svc_prov_answer *a,
            int64_t now_ms, const struct svc_prov_policy *pol,
            struct store_prov_update *u, bool *settle, const char **why)
{
	update_from(p, u);
	*settle = false;
	*why = "";
	u->result_code = a->code;
	u->result_desc = a->desc;
	u->next_step = a->next_step;
	u->next_text = a->next_text;
	u->next_url = a->next_url;
	if (p->pay.state == PAY_UNKNOWN && a->v != SVC_PROV_SUCCEEDED &&
	    a->v != SVC_PROV_FAILED) {
		if (a->not_left) {
			/* the query never left (breaker open, no token):
			 * asked again, counted (svc_prov_due bounds it) */
			u->checks = p->checks + 1;
			u->next_at_ms = now_ms + pol->check_every_ms;
			return true;
		}
		/* the one query of a reopened unknown payment said nothing
		 * final: back to reconciliation; never sent again (even a
		 * "never arrived" is left to a human past the deadline) */
		u->call_state = STORE_CALL_DONE;
		return true;
	}
	switch (a->v) {
	case SVC_PROV_NOT_SENT:
		/* backoff: resend_after_ms x 1, 2, 4, 8, 16 by attempt
		 * (the glue adds jitter) */
		u->call_state = STORE_CALL_TO_SEND;
		u->next_at_ms = now_ms + pol->resend_after_ms *
		                                 (1 << (p->send_attempts < 1 ? 0
		                                        : p->send_attempts > 5
		                                                ? 4
		                                                : p->send_attempts -
		                                                          1));
		if (a->not_left && p->send_attempts > 0)
			u->send_attempts = p->send_attempts - 1;
		return true;
	case SVC_PROV_LOST:
		u->call_state = STORE_CALL_LOST;
		u->next_at_ms = now_ms + pol->first_check_ms;
		return true;
	case SVC_PROV_ACCEPTED:
		u->call_state = STORE_CALL_ACCEPTED;
		u->provider_ref = a->provider_ref;
		u->next_at_ms = now_ms + pol->first_check_ms;
		return true;
	case SVC_PROV_REFUSED:
		become(u, PAY_FAILED, "refused by the provider");
		u->call_state = STORE_CALL_DONE;
		return true;
	case SVC_PROV_PENDING:
	case SVC_PROV_NO_ANSWER:
		if (!(a->v == SVC_PROV_NO_ANSWER && a->not_left))
			u->checks = p->checks + 1;
		u->next_at_ms = now_ms + pol->check_every_ms;
		return true;
	case SVC_PROV_SUCCEEDED:
	case SVC_PROV_FAILED:
		break;
	}
	u->checks = p->checks + 1;
	if (decided(p->pay.state)) {
		bool agrees = (a->v == SVC_PROV_SUCCEEDED) ==
		              (p->pay.state != PAY_FAILED);

		u->payment_id = 0; /* nothing to write */
		*why = agrees ? "already final" : "contradicts the final state";
		return agrees;
	}
	if (a->v == SVC_PROV_FAILED) {
		become(u, PAY_FAILED, "failed at the provider");
		u->call_state = STORE_CALL_DONE;
		return true;
	}
	if (a->has_amount && a->amount_minor != p->pay.amount_minor) {
		/* money moved, but not the amount asked: no posting, a
		 * human decides (reconciliation) */
		become(u, PAY_UNKNOWN, "provider reports another amount");
		u->call_state = STORE_CALL_DONE;
		*why = "amount differs from the payment";
		return false;
	}
	become(u, PAY_SUCCEEDED, "succeeded at the provider");
	u->call_state = STORE_CALL_DONE;
	u->receipt = a->receipt;
	*settle = true;
	return true;
}

/* Every return of svc_prov_apply but the alerts goes through here: a
 * disbursement's failure moves money too (its hold comes back). */
bool
svc_prov_apply(const struct store_prov *p, const struct svc_prov_answer *a,
               int64_t now_ms, const struct svc_prov_policy *pol,
               struct store_prov_update *u, bool *settle, const char **why)
{
	bool ok = apply_inner(p, a, now_ms, pol, u, settle, why);

	*settle = svc_prov_posts(p, u);
	return ok;
}

bool
svc_prov_posts(const struct store_prov *p, const struct store_prov_update *u)
{
	if (u->payment_id == 0 || u->from_state == u->to_state ||
	    decided(u->from_state))
		return false;
	if (u->to_state == PAY_SUCCEEDED)
		return true;
	return p->kind == STORE_PROV_DISBURSE && u->to_state == PAY_FAILED;
}

static void
leg(struct ledger_req *r, int64_t account_id, int64_t amount_minor)
{
	if (amount_minor == 0) /* a leg is never 0: a fee that is none */
		return;
	r->legs[r->n_legs].account_id = account_id;
	r->legs[r->n_legs++].amount_minor = amount_minor;
}

/* A success's fee legs (docs/payments.md §13): the fee to fees revenue
 * less the agent's commission, which goes to the bill's source. */
static void
fee_legs(const struct store_prov *p, struct ledger_req *r)
{
	leg(r, p->fee_account_id, p->fee_minor - p->commission_minor);
	if (p->kind == STORE_PROV_BILL)
		leg(r, p->bill.source_account_id, p->commission_minor);
}

/* A POS COLLECT's or CASH_OUT's success counts against the limits of its
 * terminal, its agent and, when it credits a merchant's account, that
 * merchant (docs/payments.md §9a): checked when it was created, counted
 * now, never refused (the customer has paid). */
static void
pos_counted(const struct store_prov *p, struct ledger_req *r)
{
	size_t n = 0;

	r->limit_amount = p->pay.amount_minor;
	r->count_only = true;
	r->subjects[n].kind = LEDGER_SUBJ_TERMINAL;
	strlcpy_s(r->subjects[n++].id, p->pos_terminal,
	          sizeof r->subjects[0].id);
	if (p->pos_agent[0] != '\0') {
		r->subjects[n].kind = LEDGER_SUBJ_AGENT;
		strlcpy_s(r->subjects[n++].id, p->pos_agent,
		          sizeof r->subjects[0].id);
	}
	if (p->pos_merchant[0] != '\0') {
		r->subjects[n].kind = LEDGER_SUBJ_MERCHANT;
		strlcpy_s(r->subjects[n].id, p->pos_merchant,
		          sizeof r->subjects[0].id);
	}
}

void
svc_prov_settle_req(const struct store_prov *p,
                    const struct store_prov_update *u, struct ledger_req *r)
{
	char canon[512];
	int64_t amt = p->pay.amount_minor, fee = p->fee_minor;
	const char *what = "collection";
	int n;

	memset(r, 0, sizeof *r);
	snprintf(r->idem_key, sizeof r->idem_key, "prov:%s", p->pay.ref);
	r->kind = LEDGER_TXN_PAYMENT;
	r->currency = p->pay.currency;
	if (p->kind == STORE_PROV_COLLECT) {
		/* money now sits at the provider, owed to the merchant
		 * less the fee (§13) */
		leg(r, p->clearing_account_id, -amt);
		leg(r, p->target_account_id, amt - fee);
		fee_legs(p, r);
		if (p->pos_terminal[0] != '\0')
			pos_counted(p, r);
	} else if (p->kind == STORE_PROV_BILL) {
		/* the amount and its fee leave holding: the amount owed
		 * to the biller, the fee earned (and shared, §13) */
		leg(r, p->clearing_account_id, -(amt + fee));
		leg(r, p->target_account_id, amt);
		fee_legs(p, r);
		what = "bill";
	} else if (u->to_state == PAY_SUCCEEDED) {
		/* the held money left through the provider: it is now
		 * owed by (taken from) our position there; the held fee
		 * is earned */
		leg(r, p->hold_account_id, -(amt + fee));
		leg(r, p->clearing_account_id, amt);
		fee_legs(p, r);
		what = "disbursement";
	} else {
		/* final failure: nothing left; the hold (with its fee)
		 * goes back to the source (the compensating half of the
		 * creation's hold) */
		leg(r, p->hold_account_id, -(amt + fee));
		leg(r, p->target_account_id, amt + fee);
		what = "disbursement released";
	}
	n = snprintf(canon, sizeof canon,
	             "prov|%s|%u|%u|%u|%lld|%lld|%lld|%lld", p->pay.ref,
	             (unsigned)p->kind, (unsigned)u->to_state,
	             (unsigned)p->pay.currency, (long long)amt,
	             (long long)p->clearing_account_id,
	             (long long)p->target_account_id,
	             (long long)p->hold_account_id);
	if (fee != 0 && n > 0 && (size_t)n < sizeof canon)
		n += snprintf(canon + n, sizeof canon - (size_t)n,
		              "|fee|%lld|%lld|%lld", (long long)fee,
		              (long long)p->fee_account_id,
		              (long long)p->commission_minor);
	if (n >= (int)sizeof canon) /* never: the buffer fits the longest */
		n = (int)sizeof canon - 1;
	sha256_digest(r->hash, canon, n > 0 ? (size_t)n : 0);
	snprintf(r->memo, sizeof r->memo, "%s %s %s", p->provider, what,
	         u->receipt != NULL   ? u->receipt
	         : u->result_code != NULL ? u->result_code
	                                  : p->receipt);
	r->prov = u;
}

void
svc_prov_hold_req(const struct store_prov *p, struct ledger_req *r)
{
	char canon[512], req[2 * sizeof p->req_hash + 1] = "";
	int64_t amt = p->pay.amount_minor;
	int n;

	memset(r, 0, sizeof *r);
	snprintf(r->idem_key, sizeof r->idem_key, "hold:%s", p->pay.ref);
	r->kind = LEDGER_TXN_PAYMENT;
	r->currency = p->pay.currency;
	/* the fee is held with the amount (§13) */
	leg(r, p->target_account_id, -(amt + p->fee_minor));
	leg(r, p->hold_account_id, amt + p->fee_minor);
	if (p->reverses_id == 0) {
		/* limits per MSISDN (sokoctl limit set msisdn ...), decided
		 * by the ledger with this posting, in its commit: the
		 * amount paid out counts, when it is held (a payout that
		 * fails later is not given back to the day).  A reversal
		 * gives the customer back their own payment: not a payout
		 * (docs/payments.md §3.2) */
		r->subjects[0].kind = LEDGER_SUBJ_MSISDN;
		strlcpy_s(r->subjects[0].id, p->msisdn,
		          sizeof r->subjects[0].id);
		r->limit_amount = amt;
	} else {
		/* a reversal's ref is the collection's whatever the key:
		 * its request (key included) makes two racing requests
		 * differ */
		util_hex(req, p->req_hash, sizeof p->req_hash);
	}
	n = snprintf(canon, sizeof canon,
	             "hold|%s|%s|%s|%u|%lld|%lld|%lld|%lld%s%s", p->pay.ref,
	             p->provider, p->msisdn, (unsigned)p->pay.currency,
	             (long long)amt, (long long)p->target_account_id,
	             (long long)p->hold_account_id,
	             (long long)p->clearing_account_id,
	             p->reverses_id != 0 ? "|" : "", req);
	if (p->fee_minor != 0 && n > 0 && (size_t)n < sizeof canon)
		n += snprintf(canon + n, sizeof canon - (size_t)n,
		              "|fee|%lld|%lld", (long long)p->fee_minor,
		              (long long)p->fee_account_id);
	if (n >= (int)sizeof canon) /* never: the buffer fits the longest */
		n = (int)sizeof canon - 1;
	sha256_digest(r->hash, canon, n > 0 ? (size_t)n : 0);
	snprintf(r->memo, sizeof r->memo, "%s %s held", p->provider,
	         p->reverses_id != 0 ? "reversal" : "disbursement");
	r->prov_new = p;
}

const char *
svc_prov_cb_name(enum svc_prov_cb c)
{
	static const char *const names[] = {
		"accepted", "duplicate", "contradiction", "amount_mismatch",
	};

	return (unsigned)c < sizeof names / sizeof names[0] ? names[c] : "?";
}

enum svc_prov_cb
svc_prov_callback(const struct store_prov *p, bool claims_success,
                  bool has_amount, int64_t amount_minor, const char *code,
                  const char *receipt, int64_t now_ms,
                  struct store_prov_update *u, bool *has_update)
{
	*has_update = false;
	update_from(p, u);
	if (has_amount && amount_minor != p->pay.amount_minor)
		return SVC_CB_AMOUNT;
	switch (p->pay.state) {
	case PAY_SUCCEEDED:
	case PAY_REVERSED:
		return claims_success ? SVC_CB_DUPLICATE : SVC_CB_CONTRADICTION;
	case PAY_FAILED:
		return claims_success ? SVC_CB_CONTRADICTION : SVC_CB_DUPLICATE;
	default:
		break;
	}
	/* created, pending or unknown: ask the provider now; the status
	 * answer, not this callback, decides */
	u->result_code = code;
	u->receipt = receipt;
	u->next_at_ms = now_ms;
	if (p->call_state == STORE_CALL_DONE) { /* unknown: look again */
		u->call_state = STORE_CALL_ACCEPTED;
		u->checks = 0; /* the reopened row's own bound */
	}
	*has_update = true;
	return SVC_CB_ACCEPTED;
}
