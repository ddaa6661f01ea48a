/*
 * test_prov_momo.c - unit tests for protocols/prov.c (the shared helpers)
 * and protocols/prov_momo.c against the documented MTN MoMo samples
 * (reference/wire-formats.md §2, copied below): builders reproducing the
 * request samples byte for byte, parsers reading the token, status and
 * error samples, every truncation refused, and the malformed variants
 * (amount as a number, unknown status, missing fields, wrong types) with
 * their specific errors.
 */
#include "prov_momo.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- the documented samples (wire-formats.md §2) ----------------------- */

static const char rtp_req[] =
    "{\"amount\":\"100\",\"currency\":\"EUR\",\"externalId\":\"6253728\","
    "\"payer\":{\"partyIdType\":\"MSISDN\",\"partyId\":\"46733123453\"},"
    "\"payerMessage\":\"Paying for product a\",\"payeeNote\":\"Payer note\"}";

static const char transfer_req[] =
    "{\"amount\":\"2000\",\"currency\":\"EUR\",\"externalId\":\"12345678\","
    "\"payee\":{\"partyIdType\":\"MSISDN\",\"partyId\":\"46733123453\"},"
    "\"payerMessage\":\"Payer message here\",\"payeeNote\":\"Payee note "
    "here\"}";

static const char token_resp[] =
    "{\"access_token\":\"eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.e30.sig\","
    "\"token_type\":\"access_token\",\"expires_in\":3600}";

static const char status_ok[] =
    "{\"financialTransactionId\":\"1530828708\",\"externalId\":\"6253728\","
    "\"amount\":\"100\",\"currency\":\"EUR\",\n"
    " \"payer\":{\"partyIdType\":\"MSISDN\",\"partyId\":\"0248888736\"},\n"
    " \"payerMessage\":\"Paying for product a\",\"payeeNote\":\"Payer "
    "note\",\"status\":\"SUCCESSFUL\"}";

static const char status_failed[] =
    "{\"externalId\":\"947354\",\"amount\":\"500\",\"currency\":\"UGX\","
    "\"payer\":{\"partyIdType\":\"MSISDN\",\"partyId\":\"256772123456\"},"
    "\"payerMessage\":\"pay\",\"payeeNote\":\"note\",\"status\":\"FAILED\","
    "\"reason\":\"NOT_ENOUGH_FUNDS\"}";

static const char status_failed_obj[] =
    "{\"externalId\":\"947354\",\"amount\":\"500\",\"currency\":\"UGX\","
    "\"payer\":{\"partyIdType\":\"MSISDN\",\"partyId\":\"256772123456\"},"
    "\"status\":\"FAILED\",\"reason\":{\"code\":\"PAYER_NOT_FOUND\","
    "\"message\":\"Payer not found\"}}";

static const char transfer_status[] =
    "{\"financialTransactionId\":\"363440463\",\"externalId\":\"12345678\","
    "\"amount\":\"2000.50\",\"currency\":\"EUR\",\"payee\":{\"partyIdType\":"
    "\"MSISDN\",\"partyId\":\"46733123453\"},\"payerMessage\":\"Payer "
    "message here\",\"payeeNote\":\"Payee note here\",\"status\":"
    "\"PENDING\"}";

static const char err_resp[] =
    "{\"code\":\"RESOURCE_ALREADY_EXIST\",\"message\":\"Duplicated "
    "reference id. Creation of resource failed.\"}";

static const char token_err[] = "{\"error\":\"login_failed\"}";

static const char *const samples[] = {
    rtp_req,           transfer_req,    token_resp, status_ok, status_failed,
    status_failed_obj, transfer_status, err_resp,   token_err,
};

static struct json_tok toks[256];
static struct json_doc doc;

static int
load(const char *s)
{
	const char *why = NULL;

	return json_parse(&doc, toks, 256, s, strlen(s), &why) == CODEC_OK ? 0
	                                                                   : -1;
}

/* base with the first `from` replaced by `to`, loaded; -1 if not JSON. */
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

/* A status variant parsed; 0 iff rc and the field are as wanted. */
static int
txn_variant(const char *base, enum momo_kind kind, const char *from,
            const char *to, enum prov_rc want, const char *field)
{
	struct momo_txn t;
	struct prov_err e = {NULL, NULL};
	enum prov_rc rc;

	if (load_variant(base, from, to) != 0)
		return -1;
	rc = momo_txn_parse(&t, kind, &doc, &e);
	if (rc != want || (field != NULL &&
	                   (e.field == NULL || strcmp(e.field, field) != 0))) {
		fprintf(stderr, "  variant %s -> %s: rc %d field %s why %s\n",
		        from, to, rc, e.field ? e.field : "-",
		        e.why ? e.why : "-");
		return -1;
	}
	return 0;
}

/* ---- prov.c ------------------------------------------------------------ */

static void
test_decimal(void)
{
	char b[32];
	size_t n;

	CHECK(prov_decimal(b, sizeof b, 10000, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "100");
	CHECK(prov_decimal(b, sizeof b, 10050, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "100.5");
	CHECK(prov_decimal(b, sizeof b, 10055, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "100.55");
	CHECK(prov_decimal(b, sizeof b, 5, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "0.05");
	CHECK(prov_decimal(b, sizeof b, 0, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "0");
	CHECK(prov_decimal(b, sizeof b, 500, 0, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "500");
	CHECK(prov_decimal(b, sizeof b, 1001, 3, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "1.001");
	CHECK(prov_decimal(b, sizeof b, INT64_MAX, 2, &n) == CODEC_OK);
	CHECK_EQ_STR(b, "92233720368547758.07");
	CHECK(prov_decimal(b, 4, 10050, 2, &n) == CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 6);
	CHECK(prov_decimal(b, 6, 10050, 2, &n) == CODEC_OK);
	CHECK(prov_decimal(b, sizeof b, -1, 2, &n) == CODEC_BAD);
	CHECK(prov_decimal(b, sizeof b, 1, 19, &n) == CODEC_BAD);
	/* Round trip through the parser side. */
	{
		int64_t v;
		const char *why;
		struct json_span sp;
		int64_t samples_[] = {1, 99, 100, 12345, 1000000000000000LL};
		size_t i;

		for (i = 0; i < 5; i++) {
			CHECK(prov_decimal(b, sizeof b, samples_[i], 2, &n) ==
			      CODEC_OK);
			sp.ptr = b;
			sp.len = n;
			CHECK(json_num_to_minor(sp, 2, &v, &why) == CODEC_OK);
			CHECK_EQ_INT(v, samples_[i]);
		}
	}
}

static void
test_basic_auth(void)
{
	char b[128];
	size_t n;
	const char *why;

	/* printf 'user:key' | base64 */
	CHECK(prov_basic_auth(b, sizeof b, "user", "key", &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(b, "dXNlcjprZXk=");
	CHECK(prov_basic_auth(
		  b, sizeof b, "c8f3f0ab-7d2c-4c3e-9d4b-3b8c1d2e4f50",
		  "1e89774dabd944b4b112c30aaef5b9c8", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(b,
	             "YzhmM2YwYWItN2QyYy00YzNlLTlkNGItM2I4YzFkMmU0ZjUwOjFlODk3"
	             "NzRkYWJkOTQ0YjRiMTEyYzMwYWFlZjViOWM4");
	CHECK(prov_basic_auth(b, 4, "user", "key", &n, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 13);
	CHECK(prov_basic_auth(b, sizeof b, "us:er", "key", &n, &why) ==
	      CODEC_BAD);
	CHECK(prov_basic_auth(b, sizeof b, "", "key", &n, &why) == CODEC_BAD);
	CHECK(prov_basic_auth(b, sizeof b, "user", "", &n, &why) == CODEC_BAD);
	CHECK(prov_basic_auth(b, sizeof b, "user", "k\ney", &n, &why) ==
	      CODEC_BAD);
	CHECK(prov_basic_auth(b, sizeof b, NULL, "key", &n, &why) == CODEC_BAD);
}

static void
test_names(void)
{
	CHECK_EQ_STR(prov_outcome_name(PROV_PENDING), "pending");
	CHECK_EQ_STR(prov_outcome_name(PROV_SUCCEEDED), "succeeded");
	CHECK_EQ_STR(prov_outcome_name(PROV_FAILED), "failed");
	CHECK_EQ_STR(prov_outcome_name(PROV_UNKNOWN), "unknown");
	CHECK_EQ_STR(prov_outcome_name((enum prov_outcome)9), "?");
	CHECK_EQ_STR(prov_rc_name(PROV_BAD_VALUE), "bad_value");
	CHECK_EQ_INT(prov_currency_exponent("EUR"), 2);
	CHECK_EQ_INT(prov_currency_exponent("UGX"), 0);
	CHECK_EQ_INT(prov_currency_exponent("XYZ"), -1);
	CHECK_EQ_INT(prov_currency_exponent(NULL), -1);
}

/* ---- every sample parses, every truncation fails ----------------------- */

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
			CHECK(json_parse(&doc, toks, 256, buf, n, &why) ==
			      CODEC_BAD);
			free(buf);
		}
	}
}

/* ---- token, errors ----------------------------------------------------- */

static void
test_token(void)
{
	struct momo_token t;
	struct prov_err e;

	CHECK(load(token_resp) == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(t.access_token,
	             "eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.e30.sig");
	CHECK_EQ_STR(t.token_type, "access_token");
	CHECK_EQ_INT(t.expires_in_s, 3600);
	CHECK(load_variant(token_resp, "3600", "\"3600\"") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "expires_in");
	CHECK(load_variant(token_resp, "3600", "0") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load_variant(token_resp, "3600", "36.5") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load_variant(token_resp, "\"access_token\":\"eyJ",
	                   "\"access_tokn\":\"eyJ") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "access_token");
	CHECK(load_variant(token_resp,
	                   "\"eyJ0eXAiOiJKV1QiLCJhbGciOiJSMjU2In0.e30.sig\"",
	                   "\"\"") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_BAD_VALUE);
	CHECK(load("[1]") == 0);
	CHECK(momo_token_parse(&t, &doc, &e) == PROV_WRONG_TYPE);
	CHECK_EQ_STR(e.field, "$");
}

static void
test_error(void)
{
	struct momo_error r;
	struct prov_err e;

	CHECK(load(err_resp) == 0);
	CHECK(momo_error_parse(&r, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(r.code, "RESOURCE_ALREADY_EXIST");
	CHECK_EQ_STR(r.message,
	             "Duplicated reference id. Creation of resource failed.");
	CHECK(load(token_err) == 0);
	CHECK(momo_error_parse(&r, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(r.code, "");
	CHECK_EQ_STR(r.message, "login_failed");
	CHECK(load("{\"code\":\"NOT_ALLOWED\"}") == 0);
	CHECK(momo_error_parse(&r, &doc, &e) == PROV_OK);
	CHECK(load("{\"message\":\"x\"}") == 0);
	CHECK(momo_error_parse(&r, &doc, &e) == PROV_MISSING);
	CHECK_EQ_STR(e.field, "code");
	CHECK(load("{\"code\":5}") == 0);
	CHECK(momo_error_parse(&r, &doc, &e) == PROV_WRONG_TYPE);
}

/* ---- builders ----------------------------------------------------------- */

static struct momo_pay_req
rtp_sample(void)
{
	struct momo_pay_req r;

	r.amount_minor = 10000;
	r.currency = "EUR";
	r.external_id = "6253728";
	r.party_type = MOMO_MSISDN;
	r.party_id = "46733123453";
	r.payer_message = "Paying for product a";
	r.payee_note = "Payer note";
	return r;
}

static void
test_requesttopay_build(void)
{
	struct momo_pay_req r = rtp_sample();
	char out[1024];
	size_t n, need;
	const char *why;

	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, rtp_req);
	CHECK_EQ_INT(n, strlen(rtp_req));
	CHECK(momo_requesttopay_build(out, 10, &r, &need, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(need, n + 1);
	CHECK(momo_requesttopay_build(out, need, &r, &n, &why) == CODEC_OK);
	/* Amounts: exact decimals, shortest form; UGX has no decimals. */
	r.amount_minor = 10050;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK(strstr(out, "\"amount\":\"100.5\"") != NULL);
	r.amount_minor = 1;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK(strstr(out, "\"amount\":\"0.01\"") != NULL);
	r.currency = "UGX";
	r.amount_minor = 500;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK(strstr(out, "\"amount\":\"500\"") != NULL);
	/* Optional notes omitted. */
	r = rtp_sample();
	r.payer_message = NULL;
	r.payee_note = NULL;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "{\"amount\":\"100\",\"currency\":\"EUR\","
	                  "\"externalId\":\"6253728\",\"payer\":{"
	                  "\"partyIdType\":\"MSISDN\",\"partyId\":"
	                  "\"46733123453\"}}");
	/* Other party types. */
	r.party_type = MOMO_EMAIL;
	r.party_id = "payer@example.com";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK(strstr(out, "\"partyIdType\":\"EMAIL\"") != NULL);
	r.party_type = MOMO_PARTY_CODE;
	r.party_id = "ABC-1";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_OK);
	CHECK(strstr(out, "\"partyIdType\":\"PARTY_CODE\"") != NULL);
	/* Documented rules. */
	r = rtp_sample();
	r.amount_minor = 0;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r.amount_minor = -100;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = rtp_sample();
	r.currency = "XYZ";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r.currency = NULL;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = rtp_sample();
	r.party_id = "+46733123453";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = rtp_sample();
	r.payer_message = "Payer's message";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	CHECK(strstr(why, "apostrophe") != NULL);
	{
		char big[162];

		memset(big, 'a', 161);
		big[161] = '\0';
		r = rtp_sample();
		r.payee_note = big;
		CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
		      CODEC_BAD);
		big[160] = '\0';
		CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
		      CODEC_OK);
	}
	r = rtp_sample();
	r.external_id = "";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = rtp_sample();
	r.party_type = (enum momo_party_type)3;
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = rtp_sample();
	r.payee_note = "a\xc0\xaf";
	CHECK(momo_requesttopay_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
}

static void
test_transfer_build(void)
{
	struct momo_pay_req r;
	struct momo_txn t;
	struct prov_err e;
	char out[1024];
	size_t n;
	const char *why;

	r.amount_minor = 200000;
	r.currency = "EUR";
	r.external_id = "12345678";
	r.party_type = MOMO_MSISDN;
	r.party_id = "46733123453";
	r.payer_message = "Payer message here";
	r.payee_note = "Payee note here";
	CHECK(momo_transfer_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, transfer_req);
	/* The built body reads back through the status parser once a
	 * status is added: amounts and party survive. */
	{
		char body[1200];

		snprintf(body, sizeof body,
		         "%.*s,\"status\":\"SUCCESSFUL\","
		         "\"financialTransactionId\":\"1\"}",
		         (int)(n - 1), out);
		CHECK(load(body) == 0);
		CHECK(momo_txn_parse(&t, MOMO_DISBURSEMENT, &doc, &e) ==
		      PROV_OK);
		CHECK_EQ_INT(t.amount_minor, 200000);
		CHECK_EQ_STR(t.party_id, "46733123453");
		CHECK_EQ_STR(t.payee_note, "Payee note here");
		CHECK(momo_txn_parse(&t, MOMO_COLLECTION, &doc, &e) ==
		      PROV_MISSING);
		CHECK_EQ_STR(e.field, "payer");
	}
}

static void
test_reference_id(void)
{
	CHECK(momo_reference_id_ok("c72025f5-5cd1-4630-99e4-8ba4722fad56"));
	CHECK(momo_reference_id_ok("C72025F5-5CD1-4630-B9E4-8BA4722FAD56"));
	CHECK(!momo_reference_id_ok("c72025f5-5cd1-3630-99e4-8ba4722fad56"));
	CHECK(!momo_reference_id_ok("c72025f5-5cd1-4630-c9e4-8ba4722fad56"));
	CHECK(!momo_reference_id_ok("c72025f5-5cd1-4630-99e4-8ba4722fad5"));
	CHECK(!momo_reference_id_ok("c72025f5-5cd1-4630-99e4-8ba4722fad567"));
	CHECK(!momo_reference_id_ok("c72025f55cd1-4630-99e4-8ba4722fad56-"));
	CHECK(!momo_reference_id_ok("g72025f5-5cd1-4630-99e4-8ba4722fad56"));
	CHECK(!momo_reference_id_ok(""));
	CHECK(!momo_reference_id_ok(NULL));
}

/* ---- status and callbacks ----------------------------------------------- */

static void
test_status(void)
{
	struct momo_txn t;
	struct prov_err e;
	size_t n;
	const struct prov_status_map *m = momo_status_map(&n);

	CHECK_EQ_INT(n, 3);
	CHECK_EQ_STR(m[MOMO_PENDING].word, "PENDING");
	CHECK_EQ_STR(m[MOMO_FAILED].word, "FAILED");

	CHECK(load(status_ok) == 0);
	CHECK(momo_txn_parse(&t, MOMO_COLLECTION, &doc, &e) == PROV_OK);
	CHECK(t.status == MOMO_SUCCESSFUL);
	CHECK(t.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(t.financial_transaction_id, "1530828708");
	CHECK_EQ_STR(t.external_id, "6253728");
	CHECK_EQ_INT(t.amount_minor, 10000);
	CHECK_EQ_STR(t.currency, "EUR");
	CHECK(t.party_type == MOMO_MSISDN);
	CHECK_EQ_STR(t.party_id, "0248888736");
	CHECK_EQ_STR(t.payer_message, "Paying for product a");
	CHECK_EQ_STR(t.payee_note, "Payer note");
	CHECK_EQ_STR(t.reason, "");

	CHECK(load(status_failed) == 0);
	CHECK(momo_txn_parse(&t, MOMO_COLLECTION, &doc, &e) == PROV_OK);
	CHECK(t.status == MOMO_FAILED && t.outcome == PROV_FAILED);
	CHECK_EQ_STR(t.reason, "NOT_ENOUGH_FUNDS");
	CHECK_EQ_INT(t.amount_minor, 500); /* UGX: exponent 0 */
	CHECK_EQ_STR(t.financial_transaction_id, "");

	CHECK(load(status_failed_obj) == 0);
	CHECK(momo_txn_parse(&t, MOMO_COLLECTION, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(t.reason, "PAYER_NOT_FOUND");
	CHECK_EQ_STR(t.reason_message, "Payer not found");

	CHECK(load(transfer_status) == 0);
	CHECK(momo_txn_parse(&t, MOMO_DISBURSEMENT, &doc, &e) == PROV_OK);
	CHECK(t.status == MOMO_PENDING && t.outcome == PROV_PENDING);
	CHECK_EQ_INT(t.amount_minor, 200050);
}

#define C MOMO_COLLECTION

static void
test_status_malformed(void)
{
	/* Amount: a string in the docs; a number is refused. */
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"", "\"amount\":100",
	                  PROV_WRONG_TYPE, "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"",
	                  "\"amount\":\"100.001\"", PROV_BAD_VALUE,
	                  "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"",
	                  "\"amount\":\"100.000\"", PROV_OK, NULL) == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"",
	                  "\"amount\":\"0\"", PROV_BAD_VALUE, "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"",
	                  "\"amount\":\"-5\"", PROV_BAD_VALUE, "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"",
	                  "\"amount\":\"1,00\"", PROV_BAD_VALUE,
	                  "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\"", "\"amount\":\"\"",
	                  PROV_BAD_VALUE, "amount") == 0);
	CHECK(txn_variant(status_ok, C, "\"amount\":\"100\",", "", PROV_MISSING,
	                  "amount") == 0);
	/* UGX has no minor units: a fraction is refused. */
	CHECK(txn_variant(status_failed, C, "\"amount\":\"500\"",
	                  "\"amount\":\"500.5\"", PROV_BAD_VALUE,
	                  "amount") == 0);
	/* Currency. */
	CHECK(txn_variant(status_ok, C, "\"EUR\"", "\"eur\"", PROV_BAD_VALUE,
	                  "currency") == 0);
	CHECK(txn_variant(status_ok, C, "\"currency\":\"EUR\",", "",
	                  PROV_MISSING, "currency") == 0);
	/* Status vocabulary. */
	CHECK(txn_variant(status_ok, C, "\"SUCCESSFUL\"", "\"SUCCESS\"",
	                  PROV_BAD_VALUE, "status") == 0);
	CHECK(txn_variant(status_ok, C, "\"SUCCESSFUL\"", "\"successful\"",
	                  PROV_BAD_VALUE, "status") == 0);
	CHECK(txn_variant(status_ok, C, "\"SUCCESSFUL\"", "\"REJECTED\"",
	                  PROV_BAD_VALUE, "status") == 0);
	CHECK(txn_variant(status_ok, C, "\"status\":\"SUCCESSFUL\"",
	                  "\"status\":1", PROV_WRONG_TYPE, "status") == 0);
	CHECK(txn_variant(status_ok, C, ",\"status\":\"SUCCESSFUL\"", "",
	                  PROV_MISSING, "status") == 0);
	/* Success needs the financial transaction id. */
	CHECK(txn_variant(status_ok, C,
	                  "\"financialTransactionId\":\"1530828708\",", "",
	                  PROV_MISSING, "financialTransactionId") == 0);
	CHECK(txn_variant(status_ok, C, "\"1530828708\"", "\"\"", PROV_MISSING,
	                  "financialTransactionId") == 0);
	CHECK(txn_variant(status_ok, C, "\"1530828708\"", "1530828708",
	                  PROV_WRONG_TYPE, "financialTransactionId") == 0);
	/* Party. */
	CHECK(txn_variant(status_ok, C, "\"MSISDN\"", "\"PHONE\"",
	                  PROV_BAD_VALUE, "payer.partyIdType") == 0);
	CHECK(txn_variant(status_ok, C, "\"partyId\":\"0248888736\"",
	                  "\"partyId\":248888736", PROV_WRONG_TYPE,
	                  "payer.partyId") == 0);
	CHECK(txn_variant(status_ok, C, "\"payer\":{", "\"payee\":{",
	                  PROV_MISSING, "payer") == 0);
	CHECK(txn_variant(status_ok, C,
	                  "{\"partyIdType\":\"MSISDN\",\"partyId\":"
	                  "\"0248888736\"}",
	                  "\"0248888736\"", PROV_WRONG_TYPE, "payer") == 0);
	CHECK(txn_variant(status_ok, C, "\"externalId\":\"6253728\",", "",
	                  PROV_MISSING, "externalId") == 0);
	/* Reason forms. */
	CHECK(txn_variant(status_failed, C, "\"NOT_ENOUGH_FUNDS\"", "42",
	                  PROV_WRONG_TYPE, "reason") == 0);
	CHECK(txn_variant(status_failed, C, ",\"reason\":\"NOT_ENOUGH_FUNDS\"",
	                  "", PROV_OK, NULL) == 0);
	CHECK(txn_variant(status_failed_obj, C, "\"code\":\"PAYER_NOT_FOUND\",",
	                  "", PROV_MISSING, "reason.code") == 0);
	/* Optional texts may be null; a too-long one is refused. */
	CHECK(txn_variant(status_ok, C, "\"Payer note\"", "null", PROV_OK,
	                  NULL) == 0);
	{
		char to[400];

		memset(to, 'x', sizeof to);
		to[0] = '"';
		to[300] = '"';
		to[301] = '\0';
		CHECK(txn_variant(status_ok, C, "\"Payer note\"", to,
		                  PROV_BAD_VALUE, "payeeNote") == 0);
	}
	/* Duplicate keys and bad UTF-8 never reach the parser. */
	CHECK(txn_variant(status_ok, C, "\"status\":\"SUCCESSFUL\"",
	                  "\"status\":\"SUCCESSFUL\",\"status\":\"FAILED\"",
	                  PROV_OK, NULL) == -1);
	CHECK(txn_variant(status_ok, C, "Payer note", "Payer \xff", PROV_OK,
	                  NULL) == -1);
	CHECK(txn_variant(status_ok, C, "Payer note", "Payer \\u0000",
	                  PROV_BAD_VALUE, "payeeNote") == 0);
}

int
main(void)
{
	RUN(test_decimal);
	RUN(test_basic_auth);
	RUN(test_names);
	RUN(test_samples_truncated);
	RUN(test_token);
	RUN(test_error);
	RUN(test_requesttopay_build);
	RUN(test_transfer_build);
	RUN(test_reference_id);
	RUN(test_status);
	RUN(test_status_malformed);
	return check_report("prov_momo");
}
