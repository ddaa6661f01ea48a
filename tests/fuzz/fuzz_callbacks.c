/*
 * fuzz_callbacks.c - libFuzzer target for every provider response and
 * callback/webhook parser: M-Pesa (prov_mpesa.c), MTN MoMo, Orange
 * WebPay, Flutterwave and Paystack (prov_*.c): the bodies sokod receives
 * from the network.
 *
 * Input: any bytes, tokenized by json_parse() (copied to an exact-size
 * heap buffer so ASan sees any read past it) and handed to every parser.
 * Asserts: a refusal names a field and a reason; every copied string
 * field is NUL-terminated within its array; an accepted body keeps the
 * documented promises: amounts positive where they are mandatory, an
 * outcome inside the enum, a success carries its reference (MoMo
 * financialTransactionId, Orange txnid, M-Pesa receipt), a failure a
 * reason where the provider sends one; and a parsed amount written back
 * with prov_decimal() converts back to the same minor units.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_flw.h"
#include "prov_momo.h"
#include "prov_mpesa.h"
#include "prov_orange.h"
#include "prov_paystack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct json_tok toks[512];

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)
#define ASSERT(c)                                                              \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

static void
check_err(enum prov_rc rc, const struct prov_err *e)
{
	ASSERT(rc <= PROV_BAD_VALUE);
	if (rc != PROV_OK)
		ASSERT(e->field != NULL && e->why != NULL);
}

static void
check_mpesa_err(enum mpesa_rc rc, const struct mpesa_err *e)
{
	if (rc != MPESA_OK)
		ASSERT(e->field != NULL && e->why != NULL);
}

static void
check_outcome(enum prov_outcome o)
{
	ASSERT(o == PROV_PENDING || o == PROV_SUCCEEDED || o == PROV_FAILED ||
	       o == PROV_UNKNOWN);
}

/* minor -> shortest decimal -> minor is the identity. */
static void
check_decimal(int64_t minor, unsigned exponent)
{
	char b[48];
	size_t n;
	int64_t back;
	const char *why;
	struct json_span sp;

	if (minor < 0)
		return;
	ASSERT(prov_decimal(b, sizeof b, minor, exponent, &n) == CODEC_OK);
	sp.ptr = b;
	sp.len = n;
	ASSERT(json_num_to_minor(sp, exponent, &back, &why) == CODEC_OK);
	ASSERT(back == minor);
}

static struct prov_err
fresh(void)
{
	struct prov_err e = {NULL, NULL};

	return e;
}

static void
mpesa_parsers(const struct json_doc *d)
{
	struct mpesa_err e;
	enum mpesa_rc rc;

	{
		struct mpesa_stk_callback cb;

		e.field = e.why = NULL;
		rc = mpesa_stk_callback_parse(&cb, d, &e);
		check_mpesa_err(rc, &e);
		ASSERT(TERMINATED(cb.receipt) && TERMINATED(cb.phone));
		if (rc == MPESA_OK && mpesa_code_is_zero(&cb.result_code))
			ASSERT(cb.has_amount && cb.amount_minor > 0 &&
			       cb.receipt[0] != '\0');
	}
	{
		struct mpesa_stk_push_resp r;

		e.field = e.why = NULL;
		check_mpesa_err(mpesa_stk_push_resp_parse(&r, d, &e), &e);
	}
	{
		struct mpesa_stk_query_resp r;

		e.field = e.why = NULL;
		check_mpesa_err(mpesa_stk_query_resp_parse(&r, d, &e), &e);
	}
	{
		struct mpesa_error_resp r;

		e.field = e.why = NULL;
		check_mpesa_err(mpesa_error_resp_parse(&r, d, &e), &e);
	}
	{
		struct mpesa_c2b c;

		e.field = e.why = NULL;
		rc = mpesa_c2b_parse(&c, d, &e);
		check_mpesa_err(rc, &e);
		if (rc == MPESA_OK)
			ASSERT(c.amount_minor > 0);
	}
	{
		struct mpesa_accepted a;

		e.field = e.why = NULL;
		check_mpesa_err(mpesa_accepted_parse(&a, d, &e), &e);
	}
	{
		struct mpesa_b2c_result r;

		e.field = e.why = NULL;
		rc = mpesa_b2c_result_parse(&r, d, &e);
		check_mpesa_err(rc, &e);
		if (rc == MPESA_OK && mpesa_code_is_zero(&r.r.result_code))
			ASSERT(r.amount_minor > 0 && r.receipt[0] != '\0');
	}
	{
		struct mpesa_status_result r;

		e.field = e.why = NULL;
		check_mpesa_err(mpesa_status_result_parse(&r, d, &e), &e);
	}
	{
		struct mpesa_reversal_result r;

		e.field = e.why = NULL;
		rc = mpesa_reversal_result_parse(&r, d, &e);
		check_mpesa_err(rc, &e);
		ASSERT(TERMINATED(r.original_txn));
		if (rc == MPESA_OK && mpesa_code_is_zero(&r.r.result_code))
			ASSERT(r.has_amount && r.amount_minor > 0 &&
			       r.original_txn[0] != '\0');
	}
}

static void
momo_parsers(const struct json_doc *d)
{
	struct prov_err e;
	enum prov_rc rc;
	int k;

	{
		struct momo_token t;

		e = fresh();
		rc = momo_token_parse(&t, d, &e);
		check_err(rc, &e);
		ASSERT(TERMINATED(t.access_token));
		if (rc == PROV_OK)
			ASSERT(t.expires_in_s > 0 && t.access_token[0] != '\0');
	}
	{
		struct momo_error r;

		e = fresh();
		check_err(momo_error_parse(&r, d, &e), &e);
		ASSERT(TERMINATED(r.code) && TERMINATED(r.message));
	}
	for (k = 0; k < 2; k++) {
		struct momo_txn t;

		e = fresh();
		rc = momo_txn_parse(&t, (enum momo_kind)k, d, &e);
		check_err(rc, &e);
		ASSERT(TERMINATED(t.reason) && TERMINATED(t.party_id) &&
		       TERMINATED(t.external_id) && TERMINATED(t.payee_note) &&
		       TERMINATED(t.financial_transaction_id));
		if (rc != PROV_OK)
			continue;
		check_outcome(t.outcome);
		ASSERT(t.amount_minor > 0);
		ASSERT(prov_currency_exponent(t.currency) >= 0);
		check_decimal(t.amount_minor,
		              (unsigned)prov_currency_exponent(t.currency));
		if (t.outcome == PROV_SUCCEEDED)
			ASSERT(t.financial_transaction_id[0] != '\0');
	}
}

static void
orange_parsers(const struct json_doc *d)
{
	struct prov_err e;
	enum prov_rc rc;

	{
		struct orange_token t;

		e = fresh();
		check_err(orange_token_parse(&t, d, &e), &e);
	}
	{
		struct orange_init_resp r;

		e = fresh();
		rc = orange_init_resp_parse(&r, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK)
			ASSERT(r.status == 201 && r.notif_token[0] != '\0' &&
			       r.pay_token[0] != '\0');
	}
	{
		struct orange_status_resp s;

		e = fresh();
		rc = orange_status_parse(&s, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_outcome(s.outcome);
			if (s.outcome == PROV_SUCCEEDED)
				ASSERT(s.txnid[0] != '\0');
			if (s.outcome == PROV_FAILED)
				ASSERT(s.reason[0] != '\0');
		}
	}
	{
		struct orange_notif n;

		e = fresh();
		rc = orange_notif_parse(&n, d, &e);
		check_err(rc, &e);
		ASSERT(TERMINATED(n.notif_token) && TERMINATED(n.txnid));
		if (rc == PROV_OK) {
			ASSERT(n.outcome == PROV_SUCCEEDED ||
			       n.outcome == PROV_FAILED);
			ASSERT(n.notif_token[0] != '\0');
			if (n.outcome == PROV_SUCCEEDED)
				ASSERT(n.txnid[0] != '\0');
		}
	}
}

static void
check_flw_txn(const struct flw_txn *t)
{
	int e = prov_currency_exponent(t->currency);

	check_outcome(t->outcome);
	ASSERT(t->amount_minor > 0 && e >= 0 && t->tx_ref[0] != '\0');
	ASSERT(!t->has_charged_amount || t->charged_amount_minor >= 0);
	check_decimal(t->amount_minor, (unsigned)e);
	if (t->outcome == PROV_FAILED)
		ASSERT(t->reason[0] != '\0');
}

static void
flw_parsers(const struct json_doc *d)
{
	struct prov_err e;
	enum prov_rc rc;

	{
		struct flw_envelope env;

		e = fresh();
		check_err(flw_envelope_parse(&env, d, &e), &e);
	}
	{
		size_t arr, n, it, i = 0;

		e = fresh();
		rc = flw_bill_categories_parse(d, &arr, &n, &e);
		check_err(rc, &e);
		if (rc == PROV_OK)
			for (it = json_first(d, arr); it != 0 && i < 8;
			     it = json_next(d, arr, it), i++) {
				struct flw_bill_category c;

				e = fresh();
				rc = flw_bill_category_parse(&c, d, it, &e);
				check_err(rc, &e);
				if (rc == PROV_OK)
					ASSERT(c.fee_minor >= 0 &&
					       c.amount_minor >= 0);
			}
	}
	{
		struct flw_bill_validation v;

		e = fresh();
		rc = flw_bill_validate_parse(&v, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK && v.is_valid)
			ASSERT(v.name[0] != '\0');
	}
	{
		struct flw_bill_created c;

		e = fresh();
		rc = flw_bill_created_parse(&c, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			ASSERT(c.amount_minor > 0 && c.flw_ref[0] != '\0');
			check_decimal(c.amount_minor, FLW_BILL_EXPONENT);
		}
	}
	{
		struct flw_bill_status s;

		e = fresh();
		rc = flw_bill_status_parse(&s, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_outcome(s.outcome);
			ASSERT(s.amount_minor > 0 && s.tx_ref[0] != '\0');
		}
	}
	{
		struct flw_charge_resp c;

		e = fresh();
		rc = flw_charge_resp_parse(&c, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_outcome(c.outcome);
			if (c.has_data)
				check_flw_txn(&c.txn);
			if (!c.is_success)
				ASSERT(c.outcome == PROV_FAILED);
		}
	}
	{
		struct flw_txn t;

		e = fresh();
		rc = flw_verify_parse(&t, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_flw_txn(&t);
			ASSERT(t.id[0] != '\0');
		}
	}
	{
		struct flw_webhook w;

		e = fresh();
		rc = flw_webhook_parse(&w, d, &e);
		check_err(rc, &e);
		ASSERT(TERMINATED(w.event_name) && TERMINATED(w.event_type));
		if (rc == PROV_OK && w.event == FLW_EVENT_CHARGE_COMPLETED)
			check_flw_txn(&w.txn);
	}
}

static void
check_ps_txn(const struct paystack_txn *t)
{
	check_outcome(t->outcome);
	ASSERT(t->reference[0] != '\0');
	ASSERT(!t->has_amount || t->amount_minor > 0);
	if (t->outcome == PROV_SUCCEEDED)
		ASSERT(t->has_amount);
	if (t->outcome == PROV_FAILED)
		ASSERT(t->reason[0] != '\0');
	if (t->next == PAYSTACK_OPEN_URL)
		ASSERT(t->url[0] != '\0');
}

static void
paystack_parsers(const struct json_doc *d)
{
	struct prov_err e;
	enum prov_rc rc;

	{
		struct paystack_envelope env;

		e = fresh();
		check_err(paystack_envelope_parse(&env, d, &e), &e);
	}
	{
		struct paystack_charge_resp c;

		e = fresh();
		rc = paystack_charge_resp_parse(&c, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_outcome(c.outcome);
			if (c.has_data)
				check_ps_txn(&c.txn);
			else
				ASSERT(c.outcome == PROV_FAILED);
		}
	}
	{
		struct paystack_txn t;

		e = fresh();
		rc = paystack_verify_parse(&t, d, &e);
		check_err(rc, &e);
		if (rc == PROV_OK) {
			check_ps_txn(&t);
			ASSERT(t.has_amount && t.id[0] != '\0' &&
			       t.currency[0] != '\0');
		}
	}
	{
		struct paystack_webhook w;

		e = fresh();
		rc = paystack_webhook_parse(&w, d, &e);
		check_err(rc, &e);
		ASSERT(TERMINATED(w.event_name));
		if (rc == PROV_OK && w.event != PAYSTACK_EVENT_OTHER) {
			check_ps_txn(&w.txn);
			ASSERT(w.txn.has_amount);
			ASSERT((w.event == PAYSTACK_EVENT_CHARGE_SUCCESS) ==
			       (w.txn.outcome == PROV_SUCCEEDED));
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc d;
	const char *why = NULL;
	char *buf;

	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (json_parse(&d, toks, 512, buf, size, &why) == CODEC_OK) {
		mpesa_parsers(&d);
		momo_parsers(&d);
		orange_parsers(&d);
		flw_parsers(&d);
		paystack_parsers(&d);
	}
	free(buf);
	return 0;
}
