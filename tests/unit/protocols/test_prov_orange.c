/*
 * test_prov_orange.c - unit tests for protocols/prov_orange.c against the
 * Orange Money WebPay samples of reference/wire-formats.md §3.1 (copied
 * below): the init body byte for byte, the token / init / status /
 * notification parsers, every truncation refused, and the malformed
 * variants with their specific errors.
 */
#include "prov_orange.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char init_req[] =
    "{\"merchant_key\":\"e9afd305\",\"currency\":\"OUV\",\"order_id\":"
    "\"soko-20240101-0001\",\"amount\":15000,\"return_url\":\"https://"
    "shop.example/return\",\"cancel_url\":\"https://shop.example/cancel\","
    "\"notif_url\":\"https://soko.example/cb/orange/Zq3x9\",\"lang\":\"fr\","
    "\"reference\":\"soko\"}";

static const char token_resp[] = "{\"token_type\":\"Bearer\",\"access_token\":"
                                 "\"i6m2iIcY0SodWSe...L3ojAXXrH\","
				 "\"expires_in\":7776000}";

static const char init_resp[] =
    "{\"status\":201,\"message\":\"OK\",\"pay_token\":"
    "\"f5720dd2f0e7e6d3c0ad7b5c6b3d7b9f4c1a0e2a9b8d7c6e5f4a3b2c1d0e9f8a\","
    "\"payment_url\":\"https://webpayment-ow-sb.orange-money.com/payment/"
    "pay_token/f5720dd2f0e7e6d3c0ad7b5c6b3d7b9f4c1a0e2a9b8d7c6e5f4a3b2c1d0e9f"
    "8a\",\"notif_token\":\"dd497bda3b250e536186fc0663f32f40\"}";

static const char notif_ok[] =
    "{\"status\":\"SUCCESS\",\"notif_token\":\"dd497bda3b250e536186fc0663f32f"
    "40\",\"txnid\":\"MP150709.1341.A00073\"}";

static const char notif_failed[] =
    "{\"status\":\"FAILED\",\"notif_token\":\"dd497bda3b250e536186fc0663f32f"
    "40\"}";

static const char status_resp[] =
    "{\"status\":\"SUCCESS\",\"order_id\":\"soko-20240101-0001\",\"txnid\":"
    "\"MP150709.1341.A00073\"}";

static const char *const samples[] = {init_req, token_resp,   init_resp,
                                      notif_ok, notif_failed, status_resp};

static struct json_tok toks[128];
static struct json_doc doc;

static int
load(const char *s)
{
	const char *why = NULL;

	return json_parse(&doc, toks, 128, s, strlen(s), &why) == CODEC_OK ? 0
	                                                                   : -1;
}

static int
load_variant(const char *base, const char *from, const char *to)
{
	static char buf[4096];
	const char *p = strstr(base, from);
	size_t k;

	if (p == NULL) {
		fprintf(stderr, "  variant: %s not found\n", from);
		return -2;
	}
	k = (size_t)(p - base);
	memcpy(buf, base, k);
	memcpy(buf + k, to, strlen(to));
	memcpy(buf + k + strlen(to), p + strlen(from),
	       strlen(p + strlen(from)) + 1);
	return load(buf);
}

static void
test_samples_truncated(void)
{
	size_t i, n;

	for (i = 0; i < sizeof samples / sizeof samples[0]; i++) {
		size_t len = strlen(samples[i]);

		CHECK(load(samples[i]) == 0);
		for (n = 0; n < len; n++) {
			const char *why = NULL;
			char *buf = malloc(n + 1);

			memcpy(buf, samples[i], n);
			CHECK(json_parse(&doc, toks, 128, buf, n, &why) ==
			      CODEC_BAD);
			free(buf);
		}
	}
}

static void
test_token(void)
{
	struct orange_token t;
	struct prov_err e;

	CHECK(load(token_resp) == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(t.token_type, "Bearer");
	CHECK_EQ_STR(t.access_token, "i6m2iIcY0SodWSe...L3ojAXXrH");
	CHECK(t.has_expires_in);
	CHECK_EQ_INT(t.expires_in_s, 7776000);
	/* expires_in: type UNCONFIRMED, both forms; optional. */
	CHECK(load_variant(token_resp, "7776000", "\"3600\"") == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_OK);
	CHECK_EQ_INT(t.expires_in_s, 3600);
	CHECK(load_variant(token_resp, ",\"expires_in\":7776000", "") == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_OK);
	CHECK(!t.has_expires_in);
	CHECK(load_variant(token_resp, "7776000", "\"soon\"") == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_BAD_VALUE);
	CHECK_EQ_STR(e.field, "expires_in");
	CHECK(load_variant(token_resp, "7776000", "-1") == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load_variant(token_resp, "\"token_type\":\"Bearer\",", "") == 0);
	CHECK(orange_token_parse(&t, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "token_type");
}

static struct orange_init_req
init_sample(void)
{
	struct orange_init_req r;

	r.merchant_key = "e9afd305";
	r.currency = "OUV";
	r.order_id = "soko-20240101-0001";
	r.amount_minor = 15000;
	r.return_url = "https://shop.example/return";
	r.cancel_url = "https://shop.example/cancel";
	r.notif_url = "https://soko.example/cb/orange/Zq3x9";
	r.lang = "fr";
	r.reference = "soko";
	return r;
}

static void
test_init_build(void)
{
	struct orange_init_req r = init_sample();
	char out[1024];
	size_t n, need;
	const char *why;

	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, init_req);
	CHECK(orange_init_build(out, 16, &r, &need, &why) == CODEC_NEED_MORE);
	CHECK_EQ_INT(need, n + 1);
	/* XOF has no minor units; a currency with decimals needs whole
	 * units. */
	r.currency = "XOF";
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK(strstr(out, "\"amount\":15000,") != NULL);
	r.currency = "GHS";
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK(strstr(out, "\"amount\":150,") != NULL);
	r.amount_minor = 15050;
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = init_sample();
	r.amount_minor = 0;
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = init_sample();
	r.currency = "ABC";
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = init_sample();
	r.order_id = "0123456789012345678901234567890"; /* 31 */
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r.order_id = "012345678901234567890123456789"; /* 30 */
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	r = init_sample();
	r.lang = "fra";
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = init_sample();
	r.notif_url = NULL;
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = init_sample();
	r.reference = "";
	CHECK(orange_init_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
}

static void
test_init_resp(void)
{
	struct orange_init_resp r;
	struct prov_err e;

	CHECK(load(init_resp) == 0);
	CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_OK);
	CHECK_EQ_INT(r.status, 201);
	CHECK_EQ_STR(r.message, "OK");
	CHECK_EQ_STR(r.notif_token, "dd497bda3b250e536186fc0663f32f40");
	CHECK(strncmp(r.payment_url, "https://webpayment-ow-sb", 24) == 0);
	CHECK_EQ_INT(strlen(r.pay_token), 64);
	CHECK(load_variant(init_resp, "201", "\"201\"") == 0);
	CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "status");
	CHECK(load_variant(init_resp, "201", "400") == 0);
	CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load_variant(
		  init_resp,
		  ",\"notif_token\":\"dd497bda3b250e536186fc0663f32f40\"",
		  "") == 0);
	CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "notif_token");
	CHECK(load_variant(init_resp, "\"dd497bda3b250e536186fc0663f32f40\"",
	                   "\"\"") == 0);
	CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_BAD_VALUE);
	CHECK_EQ_STR(e.field, "notif_token");
	{
		char to[100];

		memset(to, 'a', sizeof to);
		to[0] = '"';
		to[70] = '"';
		to[71] = '\0';
		CHECK(load_variant(init_resp,
		                   "\"dd497bda3b250e536186fc0663f32f40\"",
		                   to) == 0);
		CHECK(orange_init_resp_parse(&r, &doc, &e) == PROV_BAD_VALUE);
		CHECK_EQ_STR(e.why, "too long");
	}
}

static void
test_status(void)
{
	struct orange_status_resp s;
	struct prov_err e;
	char out[256];
	size_t n;
	const char *why;
	const struct prov_status_map *m = orange_status_map(&n);

	CHECK_EQ_INT(n, 5);
	CHECK_EQ_STR(m[ORANGE_EXPIRED].word, "EXPIRED");
	CHECK(orange_status_build(out, sizeof out, "soko-20240101-0001", 15000,
	                          "OUV", "f5720dd", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"order_id\":\"soko-20240101-0001\",\"amount\":"
	                  "15000,\"pay_token\":\"f5720dd\"}");
	CHECK(orange_status_build(out, sizeof out, "o", 15000, "OUV", "", &n,
	                          &why) == CODEC_BAD);

	CHECK(load(status_resp) == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.status == ORANGE_SUCCESS && s.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(s.order_id, "soko-20240101-0001");
	CHECK_EQ_STR(s.txnid, "MP150709.1341.A00073");
	CHECK(load_variant(status_resp, "SUCCESS", "INITIATED") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.status == ORANGE_INITIATED && s.outcome == PROV_PENDING);
	CHECK(load_variant(status_resp, "SUCCESS", "PENDING") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_PENDING);
	CHECK(load_variant(status_resp, "SUCCESS", "EXPIRED") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_FAILED);
	CHECK_EQ_STR(s.reason, "EXPIRED");
	CHECK(load_variant(status_resp, "SUCCESS", "FAILED") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_FAILED);
	CHECK_EQ_STR(s.reason, "FAILED");
	CHECK(load_variant(status_resp, "SUCCESS", "success") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_BAD_VALUE);
	CHECK_EQ_STR(e.why, "unknown status");
	CHECK(load_variant(status_resp, ",\"txnid\":\"MP150709.1341.A00073\"",
	                   "") == 0);
	CHECK(orange_status_parse(&s, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "txnid");
}

static void
test_notif(void)
{
	struct orange_notif nt;
	struct prov_err e;

	CHECK(load(notif_ok) == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_OK);
	CHECK(nt.status == ORANGE_SUCCESS && nt.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(nt.notif_token, "dd497bda3b250e536186fc0663f32f40");
	CHECK_EQ_STR(nt.txnid, "MP150709.1341.A00073");
	CHECK(load(notif_failed) == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_OK);
	CHECK(nt.outcome == PROV_FAILED);
	CHECK_EQ_STR(nt.reason, "FAILED");
	CHECK_EQ_STR(nt.txnid, "");
	/* A notification is final: PENDING and friends are refused. */
	CHECK(load_variant(notif_ok, "SUCCESS", "PENDING") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_BAD_VALUE);
	CHECK_EQ_STR(e.field, "status");
	CHECK(load_variant(notif_ok, "SUCCESS", "DONE") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load_variant(notif_ok, ",\"txnid\":\"MP150709.1341.A00073\"",
	                   "") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "txnid");
	CHECK(load_variant(
		  notif_ok,
		  "\"notif_token\":\"dd497bda3b250e536186fc0663f32f40\",",
		  "") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "notif_token");
	CHECK(load_variant(notif_ok, "\"dd497bda3b250e536186fc0663f32f40\"",
	                   "12") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_WRONG_TYPE);
	CHECK(load_variant(notif_ok, "\"status\":\"SUCCESS\"",
	                   "\"status\":true") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_WRONG_TYPE);
	CHECK(load("\"SUCCESS\"") == 0);
	CHECK(orange_notif_parse(&nt, &doc, &e) == PROV_WRONG_TYPE);
}

int
main(void)
{
	RUN(test_samples_truncated);
	RUN(test_token);
	RUN(test_init_build);
	RUN(test_init_resp);
	RUN(test_status);
	RUN(test_notif);
	return check_report("prov_orange");
}
