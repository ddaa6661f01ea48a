/*
 * test_svc_bill.c - the pure decisions of bill payments (svc_bill.h):
 * request parsing, funding, the unfunded bill never sent, the refund that
 * carries the failure, the token.
 */
#include <string.h>

#include "check.h"
#include "payment.h"
#include "svc_bill.h"
#include "util.h"

#define NOW 1700000000000LL

static const struct svc_prov_policy pol = {
	.first_check_ms = 1000, .check_every_ms = 500, .max_checks = 5,
	.deadline_ms = 60000,   .max_sends = 3,        .resend_after_ms = 500,
	.lease_ms = 5000};

static struct store_prov
bill(uint8_t state, uint8_t call)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	p.pay.id = 7;
	strlcpy_s(p.pay.ref, "bill:k1", sizeof p.pay.ref);
	p.pay.state = state;
	p.pay.currency = 566; /* NGN */
	p.pay.amount_minor = 150000;
	p.kind = STORE_PROV_BILL;
	strlcpy_s(p.provider, "flwbill", sizeof p.provider);
	strlcpy_s(p.client_ref, "ABCDEFGHJKLMNPQRSTUV", sizeof p.client_ref);
	p.clearing_account_id = 10; /* holding */
	p.target_account_id = 11;   /* biller payable */
	p.bill.source_account_id = 12;
	strlcpy_s(p.bill.customer, "45067198012", sizeof p.bill.customer);
	p.call_state = call;
	p.next_at_ms = NOW;
	p.deadline_ms = NOW + 60000;
	return p;
}

static void
test_parse(void)
{
	struct svc_bill_pay b;
	struct svc_bill_validate v;
	struct svc_error e;
	const char *ok = "{\"item_code\":\"UB157\",\"biller_code\":\"BIL112\","
	                 "\"customer\":\"45067198012\",\"amount\":\"1500.00\","
	                 "\"currency\":\"NGN\",\"source\":\"agent:A1:float\"}";
	uint8_t h1[32], h2[32];

	CHECK_EQ_INT(svc_bill_parse_pay(&b, ok, strlen(ok), "NGN", &e), 0);
	CHECK_EQ_INT(b.amount_minor, 150000);
	CHECK_EQ_STR(b.v.item_code, "UB157");
	CHECK_EQ_STR(b.source, "agent:A1:float");
	svc_bill_pay_hash(&b, h1);
	b.amount_minor++;
	svc_bill_pay_hash(&b, h2);
	CHECK(memcmp(h1, h2, 32) != 0);
	CHECK_EQ_INT(svc_bill_parse_pay(&b, ok, strlen(ok), "KES", &e), -1);
	CHECK_EQ_STR(e.code, "currency_unsupported");
	CHECK_EQ_INT(svc_bill_parse_validate(&v, "{\"item_code\":\"UB157\"}",
	                                     21, &e),
	             -1);
	CHECK_EQ_STR(e.code, "field_missing");
	{
		const char *bad = "{\"item_code\":\"U B\",\"biller_code\":"
		                  "\"B\",\"customer\":\"1\"}";

		CHECK_EQ_INT(svc_bill_parse_validate(&v, bad, strlen(bad), &e),
		             -1);
	}
	CHECK_EQ_STR(e.code, "item_code_invalid");
	CHECK_EQ_INT(svc_bill_parse_validate(&v, "[1]", 3, &e), -1);
	CHECK_EQ_STR(e.code, "bad_json");
}

/* funding: source -> holding, carrying created -> pending, due now */
static void
test_fund(void)
{
	struct store_prov p = bill(PAY_CREATED, STORE_CALL_TO_SEND);
	struct store_prov_update u;
	struct ledger_req r;

	svc_bill_fund_req(&p, NOW + 5, &u, &r);
	CHECK_EQ_STR(r.idem_key, "bill:bill:k1:fund");
	CHECK_EQ_INT(r.n_legs, 2);
	CHECK_EQ_INT(r.legs[0].account_id, 12);
	CHECK_EQ_INT(r.legs[0].amount_minor, -150000);
	CHECK_EQ_INT(r.legs[1].account_id, 10);
	CHECK_EQ_INT(r.legs[1].amount_minor, 150000);
	CHECK(r.prov == &u);
	CHECK_EQ_INT(u.from_state, PAY_CREATED);
	CHECK_EQ_INT(u.to_state, PAY_PENDING);
	CHECK_EQ_INT(u.expect_call, STORE_CALL_TO_SEND);
	CHECK_EQ_INT(u.call_state, STORE_CALL_TO_SEND);
	CHECK_EQ_INT(u.next_at_ms, NOW + 5);
	svc_bill_fund_declined(&p, LEDGER_INSUFFICIENT_FUNDS, &u);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK_EQ_STR(u.result_code, "insufficient_funds");
	/* a declined funding moved nothing: no refund */
	CHECK(!svc_bill_refund_req(&p, &u, &r));
}

/* an unfunded bill is never sent; at its deadline it fails, no refund */
static void
test_unfunded_never_sent(void)
{
	struct store_prov p = bill(PAY_CREATED, STORE_CALL_TO_SEND);
	struct store_prov_update u;
	struct ledger_req r;
	const char *why;

	CHECK_EQ_INT(svc_bill_due(&p, NOW, &pol, &u, &why), SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_CREATED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_TO_SEND);
	CHECK_EQ_INT(u.next_at_ms, p.deadline_ms);
	CHECK_EQ_INT(svc_bill_due(&p, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK_EQ_INT(u.call_state, STORE_CALL_DONE);
	CHECK(!svc_bill_refund_req(&p, &u, &r));
	/* funded: claimed and sent like any provider payment */
	p = bill(PAY_PENDING, STORE_CALL_TO_SEND);
	CHECK_EQ_INT(svc_bill_due(&p, NOW, &pol, &u, &why), SVC_PROV_SEND);
	CHECK_EQ_INT(u.call_state, STORE_CALL_SENDING);
	/* answer lost: queried (by our reference), never re-sent */
	p = bill(PAY_PENDING, STORE_CALL_LOST);
	CHECK_EQ_INT(svc_bill_due(&p, NOW, &pol, &u, &why), SVC_PROV_QUERY);
	/* past the deadline: unknown, the money stays in holding */
	CHECK_EQ_INT(svc_bill_due(&p, p.deadline_ms, &pol, &u, &why),
	             SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK(!svc_bill_refund_req(&p, &u, &r));
}

/* a funded bill that fails is refunded in the same commit */
static void
test_refund(void)
{
	struct store_prov p = bill(PAY_PENDING, STORE_CALL_SENDING);
	struct svc_prov_answer a = {.v = SVC_PROV_REFUSED, .code = "400"};
	struct store_prov_update u;
	struct ledger_req r;
	const char *why;
	bool settle;

	CHECK(svc_prov_apply(&p, &a, NOW, &pol, &u, &settle, &why));
	CHECK(!settle);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK(svc_bill_refund_req(&p, &u, &r));
	CHECK_EQ_STR(r.idem_key, "bill:bill:k1:refund");
	CHECK_EQ_INT(r.legs[0].account_id, 10);
	CHECK_EQ_INT(r.legs[0].amount_minor, -150000);
	CHECK_EQ_INT(r.legs[1].account_id, 12);
	CHECK_EQ_INT(r.legs[1].amount_minor, 150000);
	CHECK(r.prov == &u);
	/* too many not-sent sends: failed, and refunded too */
	p = bill(PAY_PENDING, STORE_CALL_TO_SEND);
	p.send_attempts = pol.max_sends;
	CHECK_EQ_INT(svc_bill_due(&p, NOW, &pol, &u, &why), SVC_PROV_UPDATE);
	CHECK_EQ_INT(u.to_state, PAY_FAILED);
	CHECK(svc_bill_refund_req(&p, &u, &r));
	/* a collection never gets a refund from here */
	p.kind = STORE_PROV_COLLECT;
	CHECK(!svc_bill_refund_req(&p, &u, &r));
}

/* success: holding -> biller payable, with the token */
static void
test_success(void)
{
	struct store_prov p = bill(PAY_PENDING, STORE_CALL_ACCEPTED);
	struct svc_prov_answer a = {.v = SVC_PROV_SUCCEEDED,
	                            .code = "successful",
	                            .receipt = "1234-5678-9012-3456-7890",
	                            .has_amount = true,
	                            .amount_minor = 150000};
	struct store_prov_update u;
	struct ledger_req r;
	const char *why;
	bool settle;

	CHECK(svc_prov_apply(&p, &a, NOW, &pol, &u, &settle, &why));
	CHECK(settle);
	svc_prov_settle_req(&p, &u, &r);
	CHECK_EQ_INT(r.legs[0].account_id, 10);
	CHECK_EQ_INT(r.legs[0].amount_minor, -150000);
	CHECK_EQ_INT(r.legs[1].account_id, 11);
	CHECK_EQ_INT(r.legs[1].amount_minor, 150000);
	CHECK(!svc_bill_refund_req(&p, &u, &r));
	/* another amount: unknown, no posting, no refund */
	a.amount_minor = 1;
	CHECK(!svc_prov_apply(&p, &a, NOW, &pol, &u, &settle, &why));
	CHECK(!settle);
	CHECK_EQ_INT(u.to_state, PAY_UNKNOWN);
	CHECK(!svc_bill_refund_req(&p, &u, &r));
}

static void
test_token(void)
{
	char t[32];

	svc_bill_token("Token : 1234-5678-9012-3456-7890", t, sizeof t);
	CHECK_EQ_STR(t, "1234-5678-9012-3456-7890");
	svc_bill_token("", t, sizeof t);
	CHECK_EQ_STR(t, "");
	svc_bill_token("98765", t, sizeof t);
	CHECK_EQ_STR(t, "98765");
	svc_bill_token("Token: 0123456789012345678901234567890123", t,
	               sizeof t);
	CHECK_EQ_INT(strlen(t), 31);
}

int
main(void)
{
	RUN(test_parse);
	RUN(test_fund);
	RUN(test_unfunded_never_sent);
	RUN(test_refund);
	RUN(test_success);
	RUN(test_token);
	return check_report("svc_bill");
}
