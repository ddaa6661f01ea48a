/*
 * test_svc_prov.c - unit tests for server/svc_prov.c: what a due payment
 * leads to, how answers, statuses and callbacks change it, and the
 * settlement request.  The money rules of svc_prov.h, one test each.
 */
#include <string.h>

#include "check.h"
#include "payment.h"
#include "svc_prov.h"

static const struct svc_prov_policy pol = {
	.first_check_ms = 20000,
	.check_every_ms = 5000,
	.max_checks = 3,
	.deadline_ms = 120000,
	.max_sends = 2,
	.resend_after_ms = 1000,
	.lease_ms = 30000,
};

#define T0 1700000000000LL

static struct store_prov
row(uint8_t state, uint8_t call)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	p.pay.id = 42;
	strcpy(p.pay.ref, "col:abc");
	p.pay.state = state;
	p.pay.currency = 404;
	p.pay.amount_minor = 15000;
	p.kind = STORE_PROV_COLLECT;
	strcpy(p.provider, "mpesa");
	p.clearing_account_id = 7;
	p.target_account_id = 9;
	p.call_state = call;
	p.next_at_ms = T0;
	p.deadline_ms = T0 + pol.deadline_ms;
	return p;
}

static void
test_send_claims_first(void)
{
	struct store_prov p = row(PAY_CREATED, STORE_CALL_TO_SEND);
	struct store_prov_update u;
	const char *why;

	CHECK_EQ_INT(svc_prov_due(&p, false, T0, &pol, &u, &why),
	             SVC_PROV_SEND);
	/* the claim moves the row to sending and pending, durably, before
	 * the call: a crash after it can never send twice */
	CHECK_EQ_INT(u.from_state, PAY_CREATED);
	CHECK_EQ_INT(u.to_state, PAY_PENDING);
	CHECK_EQ_INT(u.expect_call, STORE_CALL_TO_SEND);
	CHECK_EQ_INT(u.call_state, STORE_CALL_SENDING);
	CHECK_EQ_INT(u.send_attempts, 1);
	CHECK(u.next_at_ms == T0 + pol.lease_ms);
}

static void
test_not_sent_resends_bounded(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT};
	bool settle;
	const char *why;

	p.send_attempts = 1;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.call_state, STORE_CALL_TO_SEND);
	CHECK(u.next_at_ms == T0 + pol.resend_after_ms);
	CHECK(!settle);
	/* backoff doubles by attempt, capped at 16x */
	p.send_attempts = 3;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(u.next_at_ms == T0 + 4 * pol.resend_after_ms);
	p.send_attempts = 40;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(u.next_at_ms == T0 + 16 * pol.resend_after_ms);
	p.send_attempts = 1;
	/* second attempt allowed, third not: failed, nothing charged */
	p.call_state = STORE_CALL_TO_SEND;
	CHECK_EQ_INT(svc_prov_due(&p, false, T0, &pol, &u, &why),
	             SVC_PROV_SEND);
	p.send_attempts = 2;
	CHECK_EQ_INT(svc_prov_due(&p, false, T0, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
}

/* a request that never left the process (no token, breaker open) does
 * not use up an attempt or a check; the deadline still bounds it */
static void
test_not_left_not_counted(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT, .not_left = true};
	bool settle;
	const char *why;

	p.send_attempts = 1;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.send_attempts, 0);
	CHECK_EQ_INT(u.call_state, STORE_CALL_TO_SEND);
	p.call_state = STORE_CALL_ACCEPTED;
	p.checks = 2;
	a.v = SVC_PROV_NO_ANSWER;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.checks, 2);
	a.not_left = false;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.checks, 3);
	/* still bounded: past the deadline a to_send row fails */
	p.call_state = STORE_CALL_TO_SEND;
	p.send_attempts = 0;
	CHECK_EQ_INT(svc_prov_due(&p, true, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
}

static void
test_lost_is_queried_never_resent(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST};
	bool settle;
	const char *why;

	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.call_state, STORE_CALL_LOST);
	p.call_state = STORE_CALL_LOST;
	/* queryable (e.g. MoMo by our reference): query */
	CHECK_EQ_INT(svc_prov_due(&p, true, T0 + 1, &pol, &u, &why),
	             SVC_PROV_QUERY);
	/* not queryable (an STK push whose CheckoutRequestID never came):
	 * wait for the deadline, never send again */
	CHECK_EQ_INT(svc_prov_due(&p, false, T0 + 1, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.call_state, STORE_CALL_LOST);
	CHECK(u.next_at_ms == p.deadline_ms);
	CHECK_EQ_INT(u.to_state, PAY_PENDING);
	/* at the deadline: unknown, handed to reconciliation */
	CHECK_EQ_INT(svc_prov_due(&p, false, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
}

static void
test_crash_while_sending_counts_as_lost(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	const char *why;

	CHECK_EQ_INT(svc_prov_due(&p, true, T0 + pol.lease_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.call_state, STORE_CALL_LOST);
	CHECK_EQ_INT(u.to_state, PAY_PENDING);
}

static void
test_checks_bounded(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_PENDING};
	bool settle;
	const char *why;

	strcpy(p.provider_ref, "ws_CO_1");
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.checks, 1);
	CHECK(u.next_at_ms == T0 + pol.check_every_ms);
	p.checks = pol.max_checks;
	CHECK_EQ_INT(svc_prov_due(&p, true, T0, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK(u.next_at_ms == p.deadline_ms);
	CHECK_EQ_INT(svc_prov_due(&p, true, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	/* queryable with checks left: the deadline still ends it (a query
	 * that keeps failing must not keep it pending for ever) */
	p.checks = 0;
	CHECK_EQ_INT(svc_prov_due(&p, true, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
}

static void
test_success_settles_once(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_SUCCEEDED,
	                            .receipt = "NLJ7RT61SV"};
	struct ledger_req r, pr;
	bool settle;
	const char *why;

	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(settle);
	CHECK_EQ_INT(u.to_state, PAY_SUCCEEDED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	svc_prov_settle_req(&p, &u, &r);
	CHECK_EQ_STR(r.idem_key, "prov:col:abc");
	CHECK_EQ_INT(r.n_legs, 2);
	CHECK(r.legs[0].account_id == 7 && r.legs[0].amount_minor == -15000);
	CHECK(r.legs[1].account_id == 9 && r.legs[1].amount_minor == 15000);
	CHECK(r.prov == &u);
	CHECK(strstr(r.memo, "NLJ7RT61SV") != NULL);
	/* an API collection counts against no limit ... */
	CHECK(!r.count_only && r.limit_amount == 0 &&
	      r.subjects[0].kind == LEDGER_SUBJ_NONE);
	/* ... a terminal's against its terminal and agent, never refused
	 * (docs/payments.md §9a); the same request otherwise */
	memcpy(p.pos_terminal, "T1", 3);
	memcpy(p.pos_agent, "A1", 3);
	svc_prov_settle_req(&p, &u, &pr);
	CHECK(pr.count_only && pr.limit_amount == 15000);
	CHECK(pr.subjects[0].kind == LEDGER_SUBJ_TERMINAL &&
	      strcmp(pr.subjects[0].id, "T1") == 0);
	CHECK(pr.subjects[1].kind == LEDGER_SUBJ_AGENT &&
	      strcmp(pr.subjects[1].id, "A1") == 0);
	CHECK(memcmp(pr.hash, r.hash, sizeof r.hash) == 0);
	/* the same answer again on the final row: nothing to write */
	p.pay.state = PAY_SUCCEEDED;
	p.call_state = STORE_CALL_DONE;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(!settle);
	CHECK(u.payment_id == 0);
}

static void
test_final_never_flipped(void)
{
	struct store_prov p = row(PAY_SUCCEEDED, STORE_CALL_DONE);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_FAILED};
	bool settle;
	const char *why;

	CHECK(!svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(u.payment_id == 0);
	p.pay.state = PAY_FAILED;
	a.v = SVC_PROV_SUCCEEDED;
	CHECK(!svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(!settle);
}

static void
test_amount_mismatch(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_SUCCEEDED,
	                            .has_amount = true,
	                            .amount_minor = 1500};
	bool settle, has;
	const char *why;

	CHECK(!svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(!settle);
	CHECK(u.payment_id == 42); /* written: unknown, for a human */
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK_EQ_INT(svc_prov_callback(&p, true, true, 1500, "0", "R", T0, &u,
	                               &has),
	             SVC_CB_AMOUNT);
	CHECK(!has);
}

static void
test_callbacks(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	bool has;

	/* a callback only makes the status query happen now */
	CHECK_EQ_INT(svc_prov_callback(&p, true, true, 15000, "0", "R1",
	                               T0 + 5, &u, &has),
	             SVC_CB_ACCEPTED);
	CHECK(has);
	CHECK_EQ_INT(u.to_state, PAY_PENDING);
	CHECK(u.next_at_ms == T0 + 5);
	CHECK_EQ_STR(u.receipt, "R1");
	p.pay.state = PAY_SUCCEEDED;
	p.call_state = STORE_CALL_DONE;
	CHECK_EQ_INT(svc_prov_callback(&p, true, false, 0, "0", "R1", T0, &u,
	                               &has),
	             SVC_CB_DUPLICATE);
	CHECK_EQ_INT(svc_prov_callback(&p, false, false, 0, "1032", NULL, T0,
	                               &u, &has),
	             SVC_CB_CONTRADICTION);
	CHECK(!has);
	/* unknown: a callback reopens the question, by query */
	p.pay.state = PAY_UNKNOWN;
	CHECK_EQ_INT(svc_prov_callback(&p, true, false, 0, "0", "R1", T0, &u,
	                               &has),
	             SVC_CB_ACCEPTED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_ACCEPTED);
	CHECK_EQ_INT(u.expect_call, STORE_CALL_DONE);
	CHECK_EQ_INT(u.checks, 0); /* the reopened row's own bound */
}

static void
test_refused_fails(void)
{
	struct store_prov p = row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
	                            .code = "400.002.02"};
	bool settle;
	const char *why;

	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK_EQ_STR(u.result_code, "400.002.02");
	CHECK(payment_can_transition(u.from_state, u.to_state));
}

/* ---- disbursements (docs/payments.md §Disbursements) ---- */

static struct store_prov
disb_row(uint8_t state, uint8_t call)
{
	struct store_prov p = row(state, call);

	strcpy(p.pay.ref, "disb:k1");
	strcpy(p.msisdn, "254708374149");
	p.kind = STORE_PROV_DISBURSE;
	p.hold_account_id = 11; /* source 9, clearing 7 */
	return p;
}

static void
test_disb_hold_with_the_payment(void)
{
	struct store_prov p = disb_row(PAY_CREATED, STORE_CALL_TO_SEND);
	struct ledger_req r, r2;

	svc_prov_hold_req(&p, &r);
	/* source debited into the hold, in the request that creates the
	 * payment row: held exactly when the payment exists */
	CHECK_EQ_STR(r.idem_key, "hold:disb:k1");
	CHECK_EQ_INT(r.n_legs, 2);
	CHECK(r.legs[0].account_id == 9 && r.legs[0].amount_minor == -15000);
	CHECK(r.legs[1].account_id == 11 && r.legs[1].amount_minor == 15000);
	CHECK(r.prov_new == &p && r.prov == NULL);
	/* the same content hashes the same (a repeat replays); another
	 * MSISDN does not (the key is refused) */
	svc_prov_hold_req(&p, &r2);
	CHECK(memcmp(r.hash, r2.hash, sizeof r.hash) == 0);
	strcpy(p.msisdn, "254708374150");
	svc_prov_hold_req(&p, &r2);
	CHECK(memcmp(r.hash, r2.hash, sizeof r.hash) != 0);
}

static void
test_disb_success_moves_hold_to_clearing(void)
{
	struct store_prov p = disb_row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_SUCCEEDED,
	                            .receipt = "SG632NMUAB"};
	struct ledger_req r;
	bool settle;
	const char *why;

	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(settle);
	svc_prov_settle_req(&p, &u, &r);
	CHECK_EQ_STR(r.idem_key, "prov:disb:k1");
	CHECK(r.legs[0].account_id == 11 && r.legs[0].amount_minor == -15000);
	CHECK(r.legs[1].account_id == 7 && r.legs[1].amount_minor == 15000);
	CHECK(r.prov == &u);
}

static void
test_disb_failure_gives_hold_back(void)
{
	struct store_prov p = disb_row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_FAILED, .code = "1"};
	struct svc_prov_answer ref = {.v = SVC_PROV_REFUSED, .code = "400"};
	struct ledger_req r, ok;
	bool settle;
	const char *why;

	/* a final failure at the provider: the compensating posting,
	 * in the same commit as the state */
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(settle);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	svc_prov_settle_req(&p, &u, &r);
	CHECK_EQ_STR(r.idem_key, "prov:disb:k1");
	CHECK(r.legs[0].account_id == 11 && r.legs[0].amount_minor == -15000);
	CHECK(r.legs[1].account_id == 9 && r.legs[1].amount_minor == 15000);
	/* success and failure share the key, not the hash: only one of
	 * them can ever be posted */
	{
		struct store_prov_update us = u;

		us.to_state = PAY_SUCCEEDED;
		svc_prov_settle_req(&p, &us, &ok);
		CHECK(memcmp(r.hash, ok.hash, sizeof r.hash) != 0);
		CHECK_EQ_STR(ok.idem_key, r.idem_key);
	}
	/* refused at the door: the same */
	CHECK(svc_prov_apply(&p, &ref, T0, &pol, &u, &settle, &why));
	CHECK(settle && u.to_state == PAY_FAILED);
	/* a collection's failure moves nothing */
	p.kind = STORE_PROV_COLLECT;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(!settle);
}

/* A reversal (docs/payments.md §3.2) is a disbursement that names the
 * collection it reverses: the same postings (hold -> clearing on
 * success, hold -> merchant on failure); its hold names it. */
static void
test_reversal_postings(void)
{
	struct store_prov p = disb_row(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_SUCCEEDED};
	struct ledger_req r;
	bool settle;
	const char *why;

	strcpy(p.pay.ref, "rev:K7QW2M9XTA");
	p.reverses_id = 5;
	svc_prov_hold_req(&p, &r);
	CHECK_EQ_STR(r.idem_key, "hold:rev:K7QW2M9XTA");
	CHECK(strstr(r.memo, "reversal held") != NULL);
	{
		/* two requests (keys) racing for one collection: one key,
		 * two hashes, so the second is refused, never replayed */
		struct ledger_req r2;

		svc_prov_hold_req(&p, &r2);
		CHECK(memcmp(r.hash, r2.hash, sizeof r.hash) == 0);
		p.req_hash[0] ^= 1;
		svc_prov_hold_req(&p, &r2);
		CHECK_EQ_STR(r2.idem_key, r.idem_key);
		CHECK(memcmp(r.hash, r2.hash, sizeof r.hash) != 0);
		p.req_hash[0] ^= 1;
	}
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(settle && u.to_state == PAY_SUCCEEDED);
	svc_prov_settle_req(&p, &u, &r);
	CHECK(r.legs[0].account_id == 11 && r.legs[0].amount_minor == -15000);
	CHECK(r.legs[1].account_id == 7 && r.legs[1].amount_minor == 15000);
	a.v = SVC_PROV_FAILED;
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(settle && u.to_state == PAY_FAILED);
	svc_prov_settle_req(&p, &u, &r);
	CHECK(r.legs[1].account_id == 9 && r.legs[1].amount_minor == 15000);
}

/* The customer's next step rides with any answer; NULL leaves it. */
static void
test_next_step_carried(void)
{
	struct store_prov p = row(PAY_CREATED, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer a = {.v = SVC_PROV_ACCEPTED,
	                            .provider_ref = "T1",
	                            .next_step = "send_otp",
	                            .next_text = "Enter the OTP",
	                            .next_url = ""};
	bool settle;
	const char *why;

	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK_EQ_STR(u.next_step, "send_otp");
	CHECK_EQ_STR(u.next_text, "Enter the OTP");
	CHECK_EQ_STR(u.next_url, "");
	p = row(PAY_PENDING, STORE_CALL_ACCEPTED);
	a = (struct svc_prov_answer){.v = SVC_PROV_PENDING};
	CHECK(svc_prov_apply(&p, &a, T0, &pol, &u, &settle, &why));
	CHECK(u.next_step == NULL && u.next_text == NULL &&
	      u.next_url == NULL);
}

static void
test_disb_never_sent_gives_hold_back(void)
{
	struct store_prov p = disb_row(PAY_PENDING, STORE_CALL_TO_SEND);
	struct store_prov_update u;
	const char *why;

	p.send_attempts = pol.max_sends;
	CHECK_EQ_INT(svc_prov_due(&p, true, T0, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK(svc_prov_posts(&p, &u));
}

static void
test_disb_lost_or_late_keeps_hold(void)
{
	struct store_prov p = disb_row(PAY_PENDING, STORE_CALL_SENDING);
	struct store_prov_update u;
	struct svc_prov_answer lost = {.v = SVC_PROV_LOST};
	struct svc_prov_answer more = {.v = SVC_PROV_SUCCEEDED,
	                               .has_amount = true,
	                               .amount_minor = 15001};
	bool settle;
	const char *why;

	/* a lost B2C answer: asked about, never sent again; money stays */
	CHECK(svc_prov_apply(&p, &lost, T0, &pol, &u, &settle, &why));
	CHECK(!settle && u.call_state == STORE_CALL_LOST);
	p.call_state = STORE_CALL_LOST;
	CHECK_EQ_INT(svc_prov_due(&p, true, T0, &pol, &u, &why),
	             SVC_PROV_QUERY);
	/* past the deadline: unknown, held and visible */
	CHECK_EQ_INT(svc_prov_due(&p, true, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK(!svc_prov_posts(&p, &u));
	/* another amount: unknown, no posting */
	CHECK(!svc_prov_apply(&p, &more, T0, &pol, &u, &settle, &why));
	CHECK(!settle && u.to_state == PAY_UNKNOWN);
	/* unknown, later resolved: settles from the hold */
	p.pay.state = PAY_UNKNOWN;
	p.call_state = STORE_CALL_ACCEPTED;
	more.amount_minor = 15000;
	CHECK(svc_prov_apply(&p, &more, T0, &pol, &u, &settle, &why));
	CHECK(settle && u.to_state == PAY_SUCCEEDED);
	/* a final row never posts again */
	p.pay.state = PAY_FAILED;
	CHECK(svc_prov_apply(&p, &more, T0, &pol, &u, &settle, &why) ==
	      false);
	CHECK(!settle && u.payment_id == 0);
}

int
main(void)
{
	RUN(test_send_claims_first);
	RUN(test_not_sent_resends_bounded);
	RUN(test_not_left_not_counted);
	RUN(test_lost_is_queried_never_resent);
	RUN(test_crash_while_sending_counts_as_lost);
	RUN(test_checks_bounded);
	RUN(test_success_settles_once);
	RUN(test_final_never_flipped);
	RUN(test_amount_mismatch);
	RUN(test_callbacks);
	RUN(test_refused_fails);
	RUN(test_disb_hold_with_the_payment);
	RUN(test_disb_success_moves_hold_to_clearing);
	RUN(test_disb_failure_gives_hold_back);
	RUN(test_reversal_postings);
	RUN(test_next_step_carried);
	RUN(test_disb_never_sent_gives_hold_back);
	RUN(test_disb_lost_or_late_keeps_hold);
	return check_report("svc_prov");
}
