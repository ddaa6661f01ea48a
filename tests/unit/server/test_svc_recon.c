/*
 * test_svc_recon.c - reconciliation decisions (svc_recon.h): parsing a
 * resolution, the postings each kind and outcome makes, only unknown may
 * be resolved, one resolution per payment (replay vs refusal), the
 * re-query, and the janitor's one query of a reopened unknown payment
 * (svc_prov_due / svc_prov_apply).
 */
#include <string.h>

#include "check.h"
#include "payment.h"
#include "svc_bill.h"
#include "svc_prov.h"
#include "svc_recon.h"
#include "util.h"

#define NOW 1700000000000LL

static const struct svc_prov_policy pol = {
	.first_check_ms = 1000, .check_every_ms = 500, .max_checks = 5,
	.deadline_ms = 60000,   .max_sends = 3,        .resend_after_ms = 500,
	.lease_ms = 5000};

/* An unknown payment of kind, call closed, past its deadline. */
static struct store_prov
unknown(uint8_t kind)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	p.pay.id = 9;
	strlcpy_s(p.pay.ref, "disb:k9", sizeof p.pay.ref);
	p.pay.state = PAY_UNKNOWN;
	p.pay.currency = 404; /* KES */
	p.pay.amount_minor = 25000;
	p.kind = kind;
	strlcpy_s(p.provider, kind == STORE_PROV_BILL ? "flwbill" : "mpesa",
	          sizeof p.provider);
	strlcpy_s(p.client_ref, "CREF1", sizeof p.client_ref);
	p.clearing_account_id = 20;
	p.target_account_id = 21;
	if (kind == STORE_PROV_DISBURSE)
		p.hold_account_id = 22;
	if (kind == STORE_PROV_BILL)
		p.bill.source_account_id = 23;
	p.call_state = STORE_CALL_DONE;
	p.checks = 5;
	p.next_at_ms = NOW - 100000;
	p.deadline_ms = NOW - 1000;
	return p;
}

static struct store_prov_resolution
request(uint8_t outcome, const char *key)
{
	struct store_prov_resolution r;

	memset(&r, 0, sizeof r);
	r.outcome = outcome;
	strlcpy_s(r.actor, "ops.alice", sizeof r.actor);
	strlcpy_s(r.evidence, "statement 2026-11-21 line 42",
	          sizeof r.evidence);
	strlcpy_s(r.provider_ref, "QK12ABC", sizeof r.provider_ref);
	strlcpy_s(r.idem_key, key, sizeof r.idem_key);
	svc_recon_hash(&r, "disb:k9");
	return r;
}

static int64_t
leg_of(const struct ledger_req *r, int64_t account)
{
	int i;

	for (i = 0; i < r->n_legs; i++)
		if (r->legs[i].account_id == account)
			return r->legs[i].amount_minor;
	return 0;
}

static void
test_parse(void)
{
	struct store_prov_resolution r;
	struct svc_error e;
	const char *ok = "{\"outcome\":\"succeeded\",\"actor\":\"ops.alice\","
	                 "\"evidence\":\"statement line 42: KES 250.00\","
	                 "\"provider_ref\":\"QK12ABC\"}";
	const char *bad[][2] = {
		{"[]", "bad_json"},
		{"{\"outcome\":\"succeeded\",\"actor\":\"a\"}", "field_missing"},
		{"{\"outcome\":\"won\",\"actor\":\"a\",\"evidence\":\"e\"}",
		 "outcome_invalid"},
		{"{\"outcome\":\"failed\",\"actor\":\"a b\",\"evidence\":\"e\"}",
		 "actor_invalid"},
		{"{\"outcome\":\"failed\",\"actor\":\"a\",\"evidence\":\"\"}",
		 "evidence_invalid"},
		{"{\"outcome\":\"failed\",\"actor\":\"a\",\"evidence\":\"x\\ny\"}",
		 "evidence_invalid"},
		{"{\"outcome\":\"failed\",\"actor\":\"a\",\"evidence\":\"e\","
		 "\"provider_ref\":\"a b\"}",
		 "provider_ref_invalid"},
		{"{\"outcome\":\"failed\",\"actor\":\"a\",\"evidence\":\"e\","
		 "\"amount\":\"1\"}",
		 "field_unknown"},
		{"{\"outcome\":1,\"actor\":\"a\",\"evidence\":\"e\"}",
		 "field_type"},
	};
	char big[600];
	size_t i;

	CHECK_EQ_INT(svc_recon_parse(&r, ok, strlen(ok), &e), 0);
	CHECK_EQ_INT(r.outcome, PAY_SUCCEEDED);
	CHECK_EQ_STR(r.actor, "ops.alice");
	CHECK_EQ_STR(r.provider_ref, "QK12ABC");
	CHECK_EQ_STR(r.evidence, "statement line 42: KES 250.00");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		memset(&e, 0, sizeof e);
		CHECK_EQ_INT(svc_recon_parse(&r, bad[i][0], strlen(bad[i][0]),
		                             &e),
		             -1);
		CHECK_EQ_STR(e.code, bad[i][1]);
	}
	/* evidence of 257 bytes: too long, refused */
	memcpy(big, "{\"outcome\":\"failed\",\"actor\":\"a\",\"evidence\":\"",
	       44);
	memset(big + 44, 'x', 257);
	memcpy(big + 44 + 257, "\"}", 3);
	CHECK_EQ_INT(svc_recon_parse(&r, big, strlen(big), &e), -1);
	CHECK_EQ_STR(e.code, "field_too_long");
	/* 256 bytes is the bound */
	memcpy(big + 44 + 256, "\"}", 3);
	CHECK_EQ_INT(svc_recon_parse(&r, big, strlen(big), &e), 0);
}

static void
test_hash(void)
{
	struct store_prov_resolution a = request(PAY_SUCCEEDED, "k"), b = a;

	svc_recon_hash(&b, "disb:k9");
	CHECK(memcmp(a.req_hash, b.req_hash, 32) == 0);
	b.outcome = PAY_FAILED;
	svc_recon_hash(&b, "disb:k9");
	CHECK(memcmp(a.req_hash, b.req_hash, 32) != 0);
	b = a;
	strlcpy_s(b.evidence, "statement 2026-11-21 line 43",
	          sizeof b.evidence);
	svc_recon_hash(&b, "disb:k9");
	CHECK(memcmp(a.req_hash, b.req_hash, 32) != 0);
	b = a;
	svc_recon_hash(&b, "disb:k8");
	CHECK(memcmp(a.req_hash, b.req_hash, 32) != 0);
}

/* Each kind and outcome posts what the provider's own answer would. */
static void
test_postings(void)
{
	struct store_prov p;
	struct store_prov_resolution r;
	struct store_prov_update u;
	struct ledger_req lr;
	struct svc_error e;

	/* collection succeeded: clearing -> merchant payable */
	p = unknown(STORE_PROV_COLLECT);
	r = request(PAY_SUCCEEDED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_POST);
	CHECK_EQ_STR(lr.idem_key, "prov:disb:k9");
	CHECK_EQ_INT(lr.n_legs, 2);
	CHECK_EQ_INT(leg_of(&lr, 20), -25000);
	CHECK_EQ_INT(leg_of(&lr, 21), 25000);
	CHECK(lr.prov == &u);
	CHECK(u.resolution == &r);
	CHECK_EQ_INT(r.payment_id, 9);
	CHECK_EQ_INT(u.from_state, PAY_UNKNOWN);
	CHECK_EQ_INT(u.to_state, PAY_SUCCEEDED);
	CHECK_EQ_INT(u.expect_call, STORE_CALL_DONE);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK_EQ_STR(u.receipt, "QK12ABC");
	/* collection failed: nothing was taken, nothing moves */
	r = request(PAY_FAILED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_WRITE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK(u.resolution == &r);
	CHECK(u.receipt == NULL);
	/* disbursement succeeded: hold -> clearing */
	p = unknown(STORE_PROV_DISBURSE);
	r = request(PAY_SUCCEEDED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_POST);
	CHECK_EQ_INT(leg_of(&lr, 22), -25000);
	CHECK_EQ_INT(leg_of(&lr, 20), 25000);
	CHECK_EQ_INT(leg_of(&lr, 21), 0);
	/* disbursement failed: hold -> source */
	r = request(PAY_FAILED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_POST);
	CHECK_EQ_INT(leg_of(&lr, 22), -25000);
	CHECK_EQ_INT(leg_of(&lr, 21), 25000);
	CHECK_EQ_INT(leg_of(&lr, 20), 0);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	/* bill succeeded: holding -> biller payable */
	p = unknown(STORE_PROV_BILL);
	r = request(PAY_SUCCEEDED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_POST);
	CHECK_EQ_INT(leg_of(&lr, 20), -25000);
	CHECK_EQ_INT(leg_of(&lr, 21), 25000);
	/* bill failed: the refund, holding -> source */
	r = request(PAY_FAILED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_POST);
	CHECK_EQ_STR(lr.idem_key, "bill:disb:k9:refund");
	CHECK_EQ_INT(leg_of(&lr, 20), -25000);
	CHECK_EQ_INT(leg_of(&lr, 23), 25000);
	CHECK(lr.prov == &u);
}

/* Only unknown with its call closed; one resolution per payment. */
static void
test_only_unknown_once(void)
{
	struct store_prov p;
	struct store_prov_resolution r, prior;
	struct store_prov_update u;
	struct ledger_req lr;
	struct svc_error e;
	static const uint8_t finals[] = {PAY_CREATED, PAY_PENDING,
	                                 PAY_SUCCEEDED, PAY_FAILED,
	                                 PAY_REVERSED};
	size_t i;

	for (i = 0; i < sizeof finals; i++) {
		p = unknown(STORE_PROV_DISBURSE);
		p.pay.state = finals[i];
		r = request(PAY_FAILED, "k1");
		CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
		             SVC_RECON_REFUSED);
		CHECK_EQ_INT(e.status, 409);
		CHECK_EQ_STR(e.code, "payment_not_unknown");
	}
	/* reopened for a status query: wait for its answer */
	p = unknown(STORE_PROV_DISBURSE);
	p.call_state = STORE_CALL_ACCEPTED;
	CHECK_EQ_INT(svc_recon_resolve(&p, NULL, &r, &u, &lr, &e),
	             SVC_RECON_REFUSED);
	CHECK_EQ_STR(e.code, "payment_busy");
	/* resolved before: the same request is a replay, whatever the
	 * state now; another request is refused */
	p = unknown(STORE_PROV_DISBURSE);
	p.pay.state = PAY_FAILED;
	prior = request(PAY_FAILED, "k1");
	r = request(PAY_FAILED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, &prior, &r, &u, &lr, &e),
	             SVC_RECON_REPLAY);
	r = request(PAY_SUCCEEDED, "k1");
	CHECK_EQ_INT(svc_recon_resolve(&p, &prior, &r, &u, &lr, &e),
	             SVC_RECON_REFUSED);
	CHECK_EQ_STR(e.code, "idempotency_key_mismatch");
	r = request(PAY_FAILED, "k2");
	CHECK_EQ_INT(svc_recon_resolve(&p, &prior, &r, &u, &lr, &e),
	             SVC_RECON_REFUSED);
	CHECK_EQ_STR(e.code, "payment_resolved");
}

/* Re-query: the row reopens, the janitor asks once, and an answer that
 * says nothing final closes it again (never re-sent). */
static void
test_requery(void)
{
	struct store_prov p = unknown(STORE_PROV_DISBURSE);
	struct store_prov_update u;
	struct svc_prov_answer a;
	struct svc_error e;
	const char *why;
	bool settle;

	CHECK_EQ_INT(svc_recon_requery(&p, false, NOW, &u, &e), -1);
	CHECK_EQ_STR(e.code, "payment_not_queryable");
	CHECK_EQ_INT(svc_recon_requery(&p, true, NOW, &u, &e), 0);
	CHECK_EQ_INT(u.call_state, STORE_CALL_LOST); /* no provider_ref */
	CHECK_EQ_INT(u.expect_call, STORE_CALL_DONE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK_EQ_INT(u.next_at_ms, NOW);
	strlcpy_s(p.provider_ref, "AG_1", sizeof p.provider_ref);
	CHECK_EQ_INT(svc_recon_requery(&p, true, NOW, &u, &e), 0);
	CHECK_EQ_INT(u.call_state, STORE_CALL_ACCEPTED);
	CHECK_EQ_INT(u.checks, 0);
	/* the janitor: one query, past the deadline */
	p.call_state = STORE_CALL_ACCEPTED;
	p.next_at_ms = NOW;
	p.checks = 0;
	CHECK_EQ_INT(svc_prov_due(&p, true, NOW, &pol, &u, &why),
	             SVC_PROV_QUERY);
	CHECK_EQ_INT(svc_bill_due(&p, NOW, &pol, &u, &why), SVC_PROV_QUERY);
	/* not queryable: closed again, still unknown */
	CHECK_EQ_INT(svc_prov_due(&p, false, NOW, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK(!svc_prov_posts(&p, &u));
	/* pending, no answer, lost, even "never arrived": closed again,
	 * unknown, nothing posted, never sent again */
	{
		static const enum svc_prov_verdict vs[] = {
			SVC_PROV_PENDING, SVC_PROV_NO_ANSWER, SVC_PROV_LOST,
			SVC_PROV_NOT_SENT};
		size_t i;

		for (i = 0; i < sizeof vs / sizeof vs[0]; i++) {
			memset(&a, 0, sizeof a);
			a.v = vs[i];
			CHECK(svc_prov_apply(&p, &a, NOW, &pol, &u, &settle,
			                     &why));
			CHECK(!settle);
			CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
			CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
		}
	}
	/* a query that never left (breaker open): asked again, bounded */
	memset(&a, 0, sizeof a);
	a.v = SVC_PROV_NO_ANSWER;
	a.not_left = true;
	CHECK(svc_prov_apply(&p, &a, NOW, &pol, &u, &settle, &why));
	CHECK(!settle);
	CHECK_EQ_INT(u.call_state, STORE_CALL_ACCEPTED);
	CHECK_EQ_INT(u.checks, 1);
	CHECK_EQ_INT(u.next_at_ms, NOW + pol.check_every_ms);
	p.checks = pol.max_checks;
	CHECK_EQ_INT(svc_prov_due(&p, true, NOW, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	p.checks = 0;
	/* a final answer settles it, with the postings of a success */
	memset(&a, 0, sizeof a);
	a.v = SVC_PROV_SUCCEEDED;
	a.has_amount = true;
	a.amount_minor = 25000;
	CHECK(svc_prov_apply(&p, &a, NOW, &pol, &u, &settle, &why));
	CHECK(settle);
	CHECK_EQ_INT(u.to_state, PAY_SUCCEEDED);
	/* only unknown, and not twice at once */
	CHECK_EQ_INT(svc_recon_requery(&p, true, NOW, &u, &e), -1);
	CHECK_EQ_STR(e.code, "payment_busy");
	p.pay.state = PAY_SUCCEEDED;
	p.call_state = STORE_CALL_DONE;
	CHECK_EQ_INT(svc_recon_requery(&p, true, NOW, &u, &e), -1);
	CHECK_EQ_STR(e.code, "payment_not_unknown");
}

int
main(void)
{
	RUN(test_parse);
	RUN(test_hash);
	RUN(test_postings);
	RUN(test_only_unknown_once);
	RUN(test_requery);
	return check_report("svc_recon");
}
