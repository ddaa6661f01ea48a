/*
 * fuzz_mpesa.c - libFuzzer target for the Daraja parsers in
 * protocols/prov_mpesa.c (the callback bodies sokod will receive from
 * the network, TODO(#4)).
 *
 * Input: any bytes, tokenized by json_parse() and handed to every parser.
 * Asserts: no read outside the input (ASan, and the input is copied to
 * an exact-size heap buffer); every copied string field is NUL-terminated
 * within its array; a refusal names a field and a reason; a success
 * callback carries a positive amount and a receipt; and the builders'
 * output, fed back through the parsers' JSON layer, is valid JSON.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prov_mpesa.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct json_tok toks[512];

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

static void
check_err(enum mpesa_rc rc, const struct mpesa_err *e)
{
	if (rc != MPESA_OK && (e->field == NULL || e->why == NULL))
		abort();
}

static void
check_code(const struct mpesa_code *c)
{
	if (!TERMINATED(c->text))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc d;
	struct mpesa_err e;
	const char *why = NULL;
	char *buf;
	enum mpesa_rc rc;

	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (json_parse(&d, toks, 512, buf, size, &why) != CODEC_OK) {
		free(buf);
		return 0;
	}
	{
		struct mpesa_stk_callback cb;

		e.field = e.why = NULL;
		rc = mpesa_stk_callback_parse(&cb, &d, &e);
		check_err(rc, &e);
		if (!TERMINATED(cb.merchant_request_id) ||
		    !TERMINATED(cb.checkout_request_id) ||
		    !TERMINATED(cb.result_desc) || !TERMINATED(cb.receipt) ||
		    !TERMINATED(cb.transaction_date) || !TERMINATED(cb.phone))
			abort();
		check_code(&cb.result_code);
		if (rc == MPESA_OK && mpesa_code_is_zero(&cb.result_code) &&
		    (!cb.has_amount || cb.amount_minor <= 0 ||
		     cb.receipt[0] == '\0'))
			abort();
	}
	{
		struct mpesa_stk_push_resp r;

		e.field = e.why = NULL;
		check_err(mpesa_stk_push_resp_parse(&r, &d, &e), &e);
	}
	{
		struct mpesa_stk_query_resp r;

		e.field = e.why = NULL;
		check_err(mpesa_stk_query_resp_parse(&r, &d, &e), &e);
	}
	{
		struct mpesa_error_resp r;

		e.field = e.why = NULL;
		check_err(mpesa_error_resp_parse(&r, &d, &e), &e);
	}
	{
		struct mpesa_c2b c;

		e.field = e.why = NULL;
		rc = mpesa_c2b_parse(&c, &d, &e);
		check_err(rc, &e);
		if (!TERMINATED(c.trans_id) || !TERMINATED(c.msisdn) ||
		    !TERMINATED(c.bill_ref) || !TERMINATED(c.last_name))
			abort();
		if (rc == MPESA_OK && c.amount_minor <= 0)
			abort();
		if (rc == MPESA_OK) {
			/* Echo the id back in a validation answer. */
			char out[256];
			size_t n;
			struct json_tok t[8];
			struct json_doc d2;

			if (c.trans_id[0] != '\0' &&
			    mpesa_c2b_validation_resp_build(
				out, sizeof out, MPESA_C2B_ACCEPT, c.trans_id,
				&n, &why) == CODEC_OK &&
			    json_parse(&d2, t, 8, out, n, &why) != CODEC_OK)
				abort();
		}
	}
	{
		struct mpesa_accepted a;

		e.field = e.why = NULL;
		check_err(mpesa_accepted_parse(&a, &d, &e), &e);
	}
	{
		struct mpesa_b2c_result r;

		e.field = e.why = NULL;
		rc = mpesa_b2c_result_parse(&r, &d, &e);
		check_err(rc, &e);
		check_code(&r.r.result_code);
		if (!TERMINATED(r.receipt) || !TERMINATED(r.completed_at))
			abort();
	}
	{
		struct mpesa_status_result r;

		e.field = e.why = NULL;
		rc = mpesa_status_result_parse(&r, &d, &e);
		check_err(rc, &e);
		if (rc == MPESA_OK)
			(void)mpesa_result_param(&r.r, "Conversation ID");
	}
	free(buf);
	return 0;
}
