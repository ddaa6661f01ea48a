/*
 * test_svc_fee.c - fees and commissions (svc_fee.h, docs/payments.md §13):
 * the computation to the minor unit (rounding, bounds, overflow), and the
 * postings of every flow with a fee: each balanced, each account to the
 * minor unit; a disbursement's hold counts against its MSISDN's limits.
 */
#include <string.h>

#include "check.h"
#include "payment.h"
#include "svc_bill.h"
#include "svc_fee.h"
#include "svc_prov.h"
#include "util.h"

#define NOW 1700000000000LL
#define CLR 20 /* clearing, or a bill's holding */
#define TGT 21 /* merchant payable, a disbursement's source, biller */
#define HOLD 22
#define SRC 23 /* a bill's source */
#define FEES 24

static int64_t
fee_of(int64_t fixed, int64_t bp, int64_t amount)
{
	struct svc_fee_rule r = {fixed, bp};
	int64_t fee = -7;

	CHECK_EQ_INT(svc_fee_compute(&r, amount, &fee), 0);
	return fee;
}

static void
test_compute(void)
{
	struct svc_fee_rule r;
	int64_t fee = -7;

	CHECK_EQ_INT(fee_of(0, 0, 15000), 0);
	CHECK_EQ_INT(fee_of(1000, 0, 15000), 1000);
	/* 1.5% of 150.00 = 2.25 */
	CHECK_EQ_INT(fee_of(0, 150, 15000), 225);
	CHECK_EQ_INT(fee_of(50, 150, 15000), 275);
	/* half up: 1% of 0.50 = 0.005 -> 0.01; of 0.49 -> 0.0049 -> 0 */
	CHECK_EQ_INT(fee_of(0, 100, 50), 1);
	CHECK_EQ_INT(fee_of(0, 100, 49), 0);
	/* 0.01% of 1.00 = 0.0001 -> 0; of 50.00 = 0.005 -> 0.01 */
	CHECK_EQ_INT(fee_of(0, 1, 100), 0);
	CHECK_EQ_INT(fee_of(0, 1, 5000), 1);
	/* 100% of the largest amount: exact, no overflow */
	CHECK_EQ_INT(fee_of(0, 10000, 1000000000000000LL),
	             1000000000000000LL);
	CHECK_EQ_INT(fee_of(0, 9999, 1000000000000000LL),
	             999900000000000LL);
	/* past 10^15: an error, never a wrapped value */
	r.fixed_minor = 1;
	r.bp = 10000;
	CHECK_EQ_INT(svc_fee_compute(&r, 1000000000000000LL, &fee), -1);
	CHECK_EQ_INT(fee, -7);
	r.fixed_minor = -1;
	r.bp = 0;
	CHECK_EQ_INT(svc_fee_compute(&r, 100, &fee), -1);
	r.fixed_minor = 0;
	r.bp = 10001;
	CHECK_EQ_INT(svc_fee_compute(&r, 100, &fee), -1);
	r.bp = 0;
	CHECK_EQ_INT(svc_fee_compute(&r, 0, &fee), -1);
	CHECK_EQ_INT(svc_fee_compute(&r, INT64_MAX, &fee), -1);
	CHECK_EQ_INT(fee, -7);
}

static void
test_share(void)
{
	CHECK_EQ_INT(svc_fee_share(275, 0), 0);
	CHECK_EQ_INT(svc_fee_share(275, 10000), 275);
	/* 40% of 2.75 = 1.10 */
	CHECK_EQ_INT(svc_fee_share(275, 4000), 110);
	/* half down: 50% of 0.03 = 0.015 -> 0.01; never above the fee */
	CHECK_EQ_INT(svc_fee_share(3, 5000), 1);
	CHECK_EQ_INT(svc_fee_share(1, 9999), 1);
	CHECK_EQ_INT(svc_fee_share(1, 5000), 0);
	CHECK_EQ_INT(svc_fee_share(0, 5000), 0);
	CHECK_EQ_INT(svc_fee_share(100, 10001), 0);
	CHECK_EQ_INT(svc_fee_share(1000000000000000LL, 10000),
	             1000000000000000LL);
}

static struct store_prov
pay(uint8_t kind, int64_t amount, int64_t fee, int64_t commission)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	p.pay.id = 3;
	strlcpy_s(p.pay.ref, "fee:1", sizeof p.pay.ref);
	p.pay.state = PAY_PENDING;
	p.pay.currency = 404;
	p.pay.amount_minor = amount;
	p.kind = kind;
	strlcpy_s(p.provider, "mpesa", sizeof p.provider);
	strlcpy_s(p.msisdn, "254708374149", sizeof p.msisdn);
	p.clearing_account_id = CLR;
	p.target_account_id = TGT;
	if (kind == STORE_PROV_DISBURSE)
		p.hold_account_id = HOLD;
	if (kind == STORE_PROV_BILL)
		p.bill.source_account_id = SRC;
	p.call_state = STORE_CALL_ACCEPTED;
	p.fee_minor = fee;
	p.fee_account_id = fee != 0 ? FEES : 0;
	p.commission_minor = commission;
	return p;
}

/* The amount r posts to account (0 if no leg), and checks r balances
 * and has no zero leg. */
static int64_t
leg(const struct ledger_req *r, int64_t account)
{
	int64_t sum = 0, v = 0;
	int i;

	for (i = 0; i < r->n_legs; i++) {
		CHECK(r->legs[i].amount_minor != 0);
		sum += r->legs[i].amount_minor;
		if (r->legs[i].account_id == account)
			v += r->legs[i].amount_minor;
	}
	CHECK_EQ_INT(sum, 0);
	return v;
}

static struct ledger_req
settle(const struct store_prov *p, uint8_t to)
{
	struct store_prov_update u;
	struct ledger_req r;

	svc_prov_unchanged(p, &u);
	u.to_state = to;
	u.call_state = STORE_CALL_DONE;
	CHECK(svc_prov_posts(p, &u));
	svc_prov_settle_req(p, &u, &r);
	return r;
}

static void
test_postings(void)
{
	struct store_prov p, q;
	struct store_prov_update u;
	struct ledger_req r, r0;

	/* collection: the merchant gets the amount less the fee */
	p = pay(STORE_PROV_COLLECT, 15000, 275, 0);
	r = settle(&p, PAY_SUCCEEDED);
	CHECK_EQ_INT(r.n_legs, 3);
	CHECK_EQ_INT(leg(&r, CLR), -15000);
	CHECK_EQ_INT(leg(&r, TGT), 14725);
	CHECK_EQ_INT(leg(&r, FEES), 275);
	/* no fee: the two legs as before, and another request hash */
	q = pay(STORE_PROV_COLLECT, 15000, 0, 0);
	r0 = settle(&q, PAY_SUCCEEDED);
	CHECK_EQ_INT(r0.n_legs, 2);
	CHECK_EQ_INT(leg(&r0, TGT), 15000);
	CHECK(memcmp(r.hash, r0.hash, sizeof r.hash) != 0);

	/* disbursement: the source pays amount + fee into the hold */
	p = pay(STORE_PROV_DISBURSE, 30000, 500, 0);
	svc_prov_hold_req(&p, &r);
	CHECK_EQ_INT(leg(&r, TGT), -30500);
	CHECK_EQ_INT(leg(&r, HOLD), 30500);
	/* the MSISDN's limits count the amount paid out, with the hold */
	CHECK_EQ_INT(r.subjects[0].kind, LEDGER_SUBJ_MSISDN);
	CHECK_EQ_STR(r.subjects[0].id, "254708374149");
	CHECK_EQ_INT(r.limit_amount, 30000);
	/* success: the amount out through the clearing, the fee earned */
	r = settle(&p, PAY_SUCCEEDED);
	CHECK_EQ_INT(leg(&r, HOLD), -30500);
	CHECK_EQ_INT(leg(&r, CLR), 30000);
	CHECK_EQ_INT(leg(&r, FEES), 500);
	/* failure: all of it back to the source, no fee */
	r = settle(&p, PAY_FAILED);
	CHECK_EQ_INT(r.n_legs, 2);
	CHECK_EQ_INT(leg(&r, HOLD), -30500);
	CHECK_EQ_INT(leg(&r, TGT), 30500);
	CHECK_EQ_INT(leg(&r, FEES), 0);

	/* bill from an agent float: funded with its fee, the biller gets
	 * the amount, the fee is shared with the agent */
	p = pay(STORE_PROV_BILL, 150000, 1000, 400);
	p.pay.state = PAY_CREATED;
	p.call_state = STORE_CALL_TO_SEND;
	svc_bill_fund_req(&p, NOW, &u, &r);
	CHECK_EQ_INT(leg(&r, SRC), -151000);
	CHECK_EQ_INT(leg(&r, CLR), 151000);
	p.pay.state = PAY_PENDING;
	p.call_state = STORE_CALL_ACCEPTED;
	r = settle(&p, PAY_SUCCEEDED);
	CHECK_EQ_INT(r.n_legs, 4);
	CHECK_EQ_INT(leg(&r, CLR), -151000);
	CHECK_EQ_INT(leg(&r, TGT), 150000);
	CHECK_EQ_INT(leg(&r, FEES), 600);
	CHECK_EQ_INT(leg(&r, SRC), 400);
	/* the whole fee to the agent: no zero leg for fees revenue */
	q = pay(STORE_PROV_BILL, 150000, 1000, 1000);
	r = settle(&q, PAY_SUCCEEDED);
	CHECK_EQ_INT(r.n_legs, 3);
	CHECK_EQ_INT(leg(&r, SRC), 1000);
	CHECK_EQ_INT(leg(&r, FEES), 0);
	/* the refund gives the fee back too */
	svc_prov_unchanged(&p, &u);
	u.to_state = PAY_FAILED;
	u.call_state = STORE_CALL_DONE;
	CHECK(svc_bill_refund_req(&p, &u, &r));
	CHECK_EQ_INT(leg(&r, CLR), -151000);
	CHECK_EQ_INT(leg(&r, SRC), 151000);
}

int
main(void)
{
	RUN(test_compute);
	RUN(test_share);
	RUN(test_postings);
	return check_report("svc_fee");
}
