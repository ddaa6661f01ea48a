/*
 * test_prov_flw.c - unit tests for protocols/prov_flw.c against the
 * Flutterwave v3 samples of reference/wire-formats.md §4 (copied below):
 * bill categories, validate, create and status bodies as documented, the
 * legacy create request byte for byte, the mobile-money charge requests
 * and responses, verify and both webhook forms; every truncation refused;
 * the malformed variants (amounts in the wrong form, unknown statuses,
 * missing fields) with their specific errors.
 */
#include "prov_flw.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

/* ---- samples (wire-formats.md §4) -------------------------------------- */

static const char categories[] =
    "{\"status\":\"success\",\"message\":\"bill categories retrieval "
    "successful\",\"data\":[\n"
    "{\"id\":1,\"biller_code\":\"BIL099\",\"name\":\"MTN NIgeria\","
    "\"default_commission\":0.02,\n"
    " \"date_added\":\"2018-07-03T00:00:00Z\",\"country\":\"NG\","
    "\"is_airtime\":true,\"biller_name\":\"AIRTIME\",\n"
    " \"item_code\":\"AT099\",\"short_name\":\"MTN\",\"fee\":0,"
    "\"commission_on_fee\":false,\n"
    " \"label_name\":\"Mobile Number\",\"amount\":0}]}";

static const char validate[] =
    "{\"status\":\"success\",\"message\":\"Item validated successfully\","
    "\"data\":{\"response_code\":\"00\",\n"
    " \"address\":null,\"response_message\":\"Successful\",\"name\":\"MTN\","
    "\"biller_code\":\"BIL099\",\n"
    " \"customer\":\"08038291822\",\"product_code\":\"AT099\",\"email\":null,"
    "\"fee\":0,\"maximum\":0,\"minimum\":0}}";

static const char created[] =
    "{\"status\":\"success\",\"message\":\"Bill payment successful\","
    "\"data\":{\"phone_number\":\"+23490803840303\",\n"
    " \"amount\":500,\"network\":\"9MOBILE\",\"flw_ref\":\"CF-FLYAPI-"
    "20200311081921359990\",\n"
    " \"tx_ref\":\"BPUSSD1583957963415840\",\"reference\":null}}";

static const char bill_status[] =
    "{\"status\":\"success\",\"message\":\"Bill status fetch successful\","
    "\"data\":{\"currency\":\"NGN\",\n"
    " \"customer_id\":\"2348109328188\",\"frequency\":\"One "
    "Time\",\"amount\":\"500.0000\",\"product\":\"AIRTIME\",\n"
    " \"product_name\":\"MTN\",\"commission\":0,\"transaction_date\":\"2023-"
    "02-24T16:46:19.107Z\",\"country\":\"NG\",\n"
    " \"tx_ref\":\"CF-FLYAPI-20230224044619923826\",\"extra\":null,"
    "\"product_details\":\"FLY-API-NG-AIRTIME-MTN\"}}";

static const char legacy_req[] =
    "{\"country\":\"NG\",\"customer\":\"+23490803840303\",\"amount\":500,"
    "\"recurrence\":\"ONCE\",\"type\":\"AIRTIME\",\"reference\":"
    "\"9300ko984\"}";

static const char charge_gh_resp[] =
    "{\"status\":\"success\",\"message\":\"Charge initiated\",\"meta\":{"
    "\"authorization\":{\"redirect\":\"https://ravemodal-dev.herokuapp.com/"
    "captcha/verify/123:abc\",\"mode\":\"redirect\"}}}";

/* Not a verbatim sample: the documented M-Pesa data fields with values. */
static const char charge_mpesa_resp[] =
    "{\"status\":\"success\",\"message\":\"Charge initiated\",\"data\":{"
    "\"id\":1191267,\"tx_ref\":\"soko-mp-1\",\"flw_ref\":\"8593751207\","
    "\"device_fingerprint\":\"N/A\",\"amount\":1500,\"charged_amount\":1500,"
    "\"app_fee\":21,\"merchant_fee\":0,\"processor_response\":\"Successful\","
    "\"auth_model\":\"LIPA_MPESA\",\"currency\":\"KES\",\"ip\":\"::1\","
    "\"narration\":\"soko\",\"status\":\"pending\",\"auth_url\":\"N/A\","
    "\"payment_type\":\"mpesa\",\"fraud_status\":\"ok\",\"charge_type\":"
    "\"normal\",\"created_at\":\"2020-03-27T16:16:06.000Z\",\"account_id\":"
    "20937,\"customer\":{\"id\":370672,\"phone_number\":\"25454709929220\","
    "\"name\":\"JOHN DOE\",\"email\":\"john@example.com\",\"created_at\":"
    "\"2020-03-27T16:16:06.000Z\"}}}";

static const char charge_franco_resp[] =
    "{\"status\":\"success\",\"message\":\"Charge initiated\",\"data\":{"
    "\"id\":2615403,\"tx_ref\":\"soko-fr-1\",\"flw_ref\":\"FLW-M03K-"
    "0a0f4a0e\",\"amount\":1500,\"charged_amount\":1500,"
    "\"processor_response\":\"Transaction in progress\",\"currency\":"
    "\"XAF\",\"status\":\"pending\",\"payment_type\":\"mobilemoneysn\"},"
    "\"meta\":{\"authorization\":{\"mode\":\"callback\",\"redirect_url\":"
    "null}}}";

static const char verify_ok[] =
    "{\"status\":\"success\",\"message\":\"Transaction fetched "
    "successfully\",\"data\":{\"id\":1163068,\"tx_ref\":\"soko-gh-1\","
    "\"flw_ref\":\"FLW-MOCK-1\",\"amount\":50.5,\"currency\":\"GHS\","
    "\"charged_amount\":50.72,\"app_fee\":0.22,\"processor_response\":"
    "\"Approved\",\"status\":\"successful\",\"payment_type\":"
    "\"mobilemoneygh\",\"customer\":{\"id\":1,\"name\":\"JOHN DOE\","
    "\"phone_number\":\"0541234567\",\"email\":\"john@example.com\"}}}";

static const char webhook_v3[] =
    "{\"event\":\"charge.completed\",\"data\":{\"id\":285959875,\"tx_ref\":"
    "\"soko-rw-1\",\"flw_ref\":\"FLW-M03K-02c21a8095c7e064b8b9714db834080b\","
    "\"amount\":1000,\"currency\":\"RWF\",\"charged_amount\":1000,"
    "\"processor_response\":\"Approved\",\"status\":\"successful\","
    "\"payment_type\":\"mobilemoneyrw\",\"customer\":{\"id\":1,\"name\":"
    "\"JOHN DOE\"}},\"event.type\":\"MOBILEMONEYRW_TRANSACTION\"}";

static const char webhook_v2[] =
    "{\"id\":560930,\"txRef\":\"soko-gh-2\",\"flwRef\":\"FLW-MOCK-2\","
    "\"orderRef\":\"URF_1\",\"amount\":50,\"charged_amount\":50.72,"
    "\"status\":\"successful\",\"currency\":\"GHS\",\"customer\":{\"id\":1},"
    "\"entity\":{\"id\":\"NO-ENTITY\"},\"event.type\":"
    "\"MOBILEMONEYGH_TRANSACTION\"}";

static const char error_resp[] =
    "{\"status\":\"error\",\"message\":\"Invalid authorization key\","
    "\"data\":null}";

static const char *const samples[] = {
    categories, validate,       created,           bill_status,
    legacy_req, charge_gh_resp, charge_mpesa_resp, charge_franco_resp,
    verify_ok,  webhook_v3,     webhook_v2,        error_resp,
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

/* rc and err.field of a parse, checked; 0 iff as wanted. */
static int
expect(enum prov_rc rc, const struct prov_err *e, enum prov_rc want,
       const char *field)
{
	if (rc != want || (field != NULL && (e->field == NULL ||
	                                     strcmp(e->field, field) != 0))) {
		fprintf(stderr, "  rc %d (want %d) field %s (want %s) why %s\n",
		        rc, want, e->field ? e->field : "-",
		        field ? field : "-", e->why ? e->why : "-");
		return -1;
	}
	return 0;
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
			CHECK(json_parse(&doc, toks, 256, buf, n, &why) ==
			      CODEC_BAD);
			free(buf);
		}
	}
}

static void
test_envelope(void)
{
	struct flw_envelope env;
	struct prov_err e;

	CHECK(load(error_resp) == 0);
	CHECK(flw_envelope_parse(&env, &doc, &e) == PROV_OK);
	CHECK(!env.is_success);
	CHECK_EQ_STR(env.message, "Invalid authorization key");
	CHECK_EQ_INT(env.data, 0);
	CHECK(load(created) == 0);
	CHECK(flw_envelope_parse(&env, &doc, &e) == PROV_OK);
	CHECK(env.is_success && env.data != 0);
	CHECK(load_variant(error_resp, "\"error\"", "\"failed\"") == 0);
	CHECK(expect(flw_envelope_parse(&env, &doc, &e), &e, PROV_BAD_VALUE,
	             "status") == 0);
	CHECK(load_variant(error_resp, "\"error\"", "false") == 0);
	CHECK(expect(flw_envelope_parse(&env, &doc, &e), &e, PROV_WRONG_TYPE,
	             "status") == 0);
	CHECK(load("{\"status\":\"success\"}") == 0);
	CHECK(expect(flw_envelope_parse(&env, &doc, &e), &e, PROV_MISSING,
	             "message") == 0);
}

static void
test_categories(void)
{
	struct flw_bill_category c;
	struct prov_err e;
	size_t arr, n, it;

	CHECK(load(categories) == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK_EQ_INT(n, 1);
	it = json_first(&doc, arr);
	CHECK(flw_bill_category_parse(&c, &doc, it, &e) == PROV_OK);
	CHECK_EQ_INT(c.id, 1);
	CHECK_EQ_STR(c.biller_code, "BIL099");
	CHECK_EQ_STR(c.name, "MTN NIgeria");
	CHECK_EQ_STR(c.country, "NG");
	CHECK(c.is_airtime);
	CHECK_EQ_STR(c.biller_name, "AIRTIME");
	CHECK_EQ_STR(c.item_code, "AT099");
	CHECK_EQ_STR(c.short_name, "MTN");
	CHECK_EQ_STR(c.label_name, "Mobile Number");
	CHECK_EQ_INT(c.fee_minor, 0);
	CHECK_EQ_INT(c.amount_minor, 0);
	CHECK_EQ_INT(json_next(&doc, arr, it), 0);

	CHECK(load_variant(categories, "\"fee\":0", "\"fee\":100.5") == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e) ==
	      PROV_OK);
	CHECK_EQ_INT(c.fee_minor, 10050);
	CHECK(load_variant(categories, "\"fee\":0", "\"fee\":\"0\"") == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(
	    expect(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e),
	           &e, PROV_WRONG_TYPE, "data[].fee") == 0);
	CHECK(load_variant(categories, "\"amount\":0", "\"amount\":-1") == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(
	    expect(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e),
	           &e, PROV_BAD_VALUE, "data[].amount") == 0);
	CHECK(load_variant(categories, "\"is_airtime\":true",
	                   "\"is_airtime\":\"true\"") == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(
	    expect(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e),
	           &e, PROV_WRONG_TYPE, "data[].is_airtime") == 0);
	CHECK(load_variant(categories, "\"item_code\":\"AT099\",", "") == 0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(
	    expect(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e),
	           &e, PROV_MISSING, "data[].item_code") == 0);
	CHECK(load("{\"status\":\"success\",\"message\":\"x\",\"data\":[7]}") ==
	      0);
	CHECK(flw_bill_categories_parse(&doc, &arr, &n, &e) == PROV_OK);
	CHECK(
	    expect(flw_bill_category_parse(&c, &doc, json_first(&doc, arr), &e),
	           &e, PROV_WRONG_TYPE, "data[]") == 0);
	CHECK(load("{\"status\":\"success\",\"message\":\"x\",\"data\":{}}") ==
	      0);
	CHECK(expect(flw_bill_categories_parse(&doc, &arr, &n, &e), &e,
	             PROV_WRONG_TYPE, "data") == 0);
	CHECK(load(error_resp) == 0);
	CHECK(expect(flw_bill_categories_parse(&doc, &arr, &n, &e), &e,
	             PROV_BAD_VALUE, "status") == 0);
}

static void
test_validate(void)
{
	struct flw_bill_validation v;
	struct prov_err e;
	char out[256];
	size_t n;
	const char *why;

	CHECK(flw_bill_validate_path(out, sizeof out, "AT099", "BIL099",
	                             "+23490803840303", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "/v3/bill-items/AT099/validate?code=BIL099&customer="
	                  "%2B23490803840303");
	CHECK(flw_bill_validate_path(out, sizeof out, "AT099", "BIL099",
	                             "a b&c=d/é", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "/v3/bill-items/AT099/validate?code=BIL099&customer="
	                  "a%20b%26c%3Dd%2F%C3%A9");
	CHECK(flw_bill_validate_path(out, 10, "AT099", "BIL099", "1", &n,
	                             &why) == CODEC_NEED_MORE);
	CHECK(flw_bill_validate_path(out, sizeof out, "AT/099", "BIL099", "1",
	                             &n, &why) == CODEC_BAD);
	CHECK(flw_bill_validate_path(out, sizeof out, "AT099", "BIL?099", "1",
	                             &n, &why) == CODEC_BAD);

	CHECK(load(validate) == 0);
	CHECK(flw_bill_validate_parse(&v, &doc, &e) == PROV_OK);
	CHECK(v.is_valid);
	CHECK_EQ_STR(v.response_code, "00");
	CHECK_EQ_STR(v.name, "MTN");
	CHECK_EQ_STR(v.customer, "08038291822");
	CHECK_EQ_STR(v.product_code, "AT099");
	CHECK_EQ_STR(v.address, "");
	CHECK(!v.has_amount_due);
	CHECK_EQ_INT(v.maximum_minor, 0);
	/* An electricity-style answer with the amount due. */
	CHECK(load_variant(validate, "\"fee\":0,",
	                   "\"fee\":100,\"amount\":4500.50,") == 0);
	CHECK(flw_bill_validate_parse(&v, &doc, &e) == PROV_OK);
	CHECK(v.has_amount_due);
	CHECK_EQ_INT(v.amount_due_minor, 450050);
	CHECK_EQ_INT(v.fee_minor, 10000);
	CHECK(load_variant(validate, "\"fee\":0,", "\"amount\":\"45\",") == 0);
	CHECK(expect(flw_bill_validate_parse(&v, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(validate, "\"fee\":0,", "\"amount\":1.001,") == 0);
	CHECK(expect(flw_bill_validate_parse(&v, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(validate, "\"00\"", "\"RR\"") == 0);
	CHECK(flw_bill_validate_parse(&v, &doc, &e) == PROV_OK);
	CHECK(!v.is_valid);
	CHECK(load_variant(validate, "\"name\":\"MTN\",", "") == 0);
	CHECK(expect(flw_bill_validate_parse(&v, &doc, &e), &e, PROV_MISSING,
	             "data.name") == 0);
	CHECK(load_variant(validate, "\"response_code\":\"00\",", "") == 0);
	CHECK(expect(flw_bill_validate_parse(&v, &doc, &e), &e, PROV_MISSING,
	             "data.response_code") == 0);
	CHECK(load(error_resp) == 0);
	CHECK(expect(flw_bill_validate_parse(&v, &doc, &e), &e, PROV_BAD_VALUE,
	             "status") == 0);
}

static void
test_bill_create(void)
{
	struct flw_bill_legacy_req l;
	struct flw_bill_payment_req p;
	struct flw_bill_created c;
	struct prov_err e;
	char out[512];
	size_t n;
	const char *why;

	l.country = "NG";
	l.customer = "+23490803840303";
	l.amount_minor = 50000;
	l.recurrence = FLW_ONCE;
	l.type = "AIRTIME";
	l.reference = "9300ko984";
	l.biller_name = NULL;
	CHECK(flw_bill_legacy_build(out, sizeof out, &l, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, legacy_req);
	l.recurrence = FLW_WEEKLY;
	l.amount_minor = 50050;
	l.biller_name = "DSTV";
	CHECK(flw_bill_legacy_build(out, sizeof out, &l, &n, &why) == CODEC_OK);
	CHECK(strstr(out, "\"amount\":500.5,\"recurrence\":\"WEEKLY\"") !=
	      NULL);
	CHECK(strstr(out, ",\"biller_name\":\"DSTV\"}") != NULL);
	l.recurrence = (enum flw_recurrence)5;
	CHECK(flw_bill_legacy_build(out, sizeof out, &l, &n, &why) ==
	      CODEC_BAD);
	l.recurrence = FLW_ONCE;
	l.amount_minor = 0;
	CHECK(flw_bill_legacy_build(out, sizeof out, &l, &n, &why) ==
	      CODEC_BAD);

	CHECK(flw_bill_payment_path(out, sizeof out, "BIL099", "AT099", &n,
	                            &why) == CODEC_OK);
	CHECK_EQ_STR(out, "/v3/billers/BIL099/items/AT099/payment");
	CHECK_EQ_INT(n, strlen(out));
	CHECK(flw_bill_payment_path(out, 10, "BIL099", "AT099", &n, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(n, 39);
	CHECK(flw_bill_payment_path(out, sizeof out, "../x", "AT099", &n,
	                            &why) == CODEC_BAD);
	p.country = "NG";
	p.customer_id = "+23490803840303";
	p.amount_minor = 50000;
	p.reference = "soko-bill-1";
	p.callback_url = "https://soko.example/cb/flw";
	CHECK(flw_bill_payment_build(out, sizeof out, &p, &n, &why) ==
	      CODEC_OK);
	CHECK_EQ_STR(out, "{\"country\":\"NG\",\"customer_id\":"
	                  "\"+23490803840303\",\"amount\":500,\"reference\":"
	                  "\"soko-bill-1\",\"callback_url\":\"https://"
	                  "soko.example/cb/flw\"}");
	p.callback_url = NULL;
	p.country = "NGA";
	CHECK(flw_bill_payment_build(out, sizeof out, &p, &n, &why) ==
	      CODEC_BAD);

	CHECK(load(created) == 0);
	CHECK(flw_bill_created_parse(&c, &doc, &e) == PROV_OK);
	CHECK_EQ_INT(c.amount_minor, 50000);
	CHECK_EQ_STR(c.phone_number, "+23490803840303");
	CHECK_EQ_STR(c.network, "9MOBILE");
	CHECK_EQ_STR(c.flw_ref, "CF-FLYAPI-20200311081921359990");
	CHECK_EQ_STR(c.tx_ref, "BPUSSD1583957963415840");
	CHECK_EQ_STR(c.reference, "");
	CHECK_EQ_STR(c.token, "");
	CHECK(load_variant(created, "\"reference\":null",
	                   "\"reference\":\"soko-1\",\"token\":\"1234-5678-9012"
	                   "-3456-7890\"") == 0);
	CHECK(flw_bill_created_parse(&c, &doc, &e) == PROV_OK);
	CHECK_EQ_STR(c.token, "1234-5678-9012-3456-7890");
	CHECK_EQ_STR(c.reference, "soko-1");
	CHECK(load_variant(created, "\"amount\":500", "\"amount\":\"500\"") ==
	      0);
	CHECK(expect(flw_bill_created_parse(&c, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(created, "\"amount\":500", "\"amount\":0") == 0);
	CHECK(expect(flw_bill_created_parse(&c, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(created,
	                   "\"flw_ref\":\"CF-FLYAPI-20200311081921359990\",",
	                   "") == 0);
	CHECK(expect(flw_bill_created_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data.flw_ref") == 0);
	CHECK(load_variant(created, "\"reference\":null",
	                   "\"reference\":null,\"token\":7") == 0);
	CHECK(expect(flw_bill_created_parse(&c, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.token") == 0);
}

static void
test_bill_status(void)
{
	struct flw_bill_status s;
	struct prov_err e;

	CHECK(load(bill_status) == 0);
	CHECK(flw_bill_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(s.status, "");
	CHECK_EQ_STR(s.currency, "NGN");
	CHECK_EQ_INT(s.amount_minor, 50000); /* "500.0000" */
	CHECK_EQ_STR(s.customer_id, "2348109328188");
	CHECK_EQ_STR(s.product, "AIRTIME");
	CHECK_EQ_STR(s.tx_ref, "CF-FLYAPI-20230224044619923826");
	CHECK_EQ_STR(s.transaction_date, "2023-02-24T16:46:19.107Z");
	CHECK_EQ_STR(s.extra, "");
	/* Documented as a string: a number is refused. */
	CHECK(load_variant(bill_status, "\"500.0000\"", "500") == 0);
	CHECK(expect(flw_bill_status_parse(&s, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(bill_status, "\"500.0000\"", "\"500.0050\"") == 0);
	CHECK(expect(flw_bill_status_parse(&s, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(bill_status, "\"NGN\"", "\"NAIRA\"") == 0);
	CHECK(expect(flw_bill_status_parse(&s, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.currency") == 0);
	/* A status field, when sent, is mapped. */
	CHECK(load_variant(
		  bill_status, "\"extra\":null",
		  "\"extra\":\"Token: 1234\",\"status\":\"pending\"") == 0);
	CHECK(flw_bill_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_PENDING);
	CHECK_EQ_STR(s.extra, "Token: 1234");
	CHECK(load_variant(bill_status, "\"extra\":null",
	                   "\"status\":\"failed\"") == 0);
	CHECK(flw_bill_status_parse(&s, &doc, &e) == PROV_OK);
	CHECK(s.outcome == PROV_FAILED);
	CHECK_EQ_STR(s.reason, "failed");
	CHECK(load_variant(bill_status, "\"extra\":null",
	                   "\"status\":\"done\"") == 0);
	CHECK(expect(flw_bill_status_parse(&s, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(bill_status,
	                   "\"tx_ref\":\"CF-FLYAPI-20230224044619923826\",",
	                   "") == 0);
	CHECK(expect(flw_bill_status_parse(&s, &doc, &e), &e, PROV_MISSING,
	             "data.tx_ref") == 0);
}

static struct flw_charge_req
charge_sample(enum flw_momo_type t)
{
	struct flw_charge_req r;

	r.type = t;
	r.tx_ref = "soko-1";
	r.amount_minor = 150000;
	r.currency = t == FLW_MOMO_GHANA   ? "GHS"
	             : t == FLW_MOMO_MPESA ? "KES"
	                                   : "XAF";
	r.network = t == FLW_MOMO_GHANA ? "MTN" : NULL;
	r.country = t == FLW_MOMO_FRANCO ? "CM" : NULL;
	r.email = "john@example.com";
	r.phone_number = t == FLW_MOMO_FRANCO ? "23700000020" : "054709929220";
	r.fullname = "JOHN DOE";
	return r;
}

static void
test_charge_build(void)
{
	struct flw_charge_req r = charge_sample(FLW_MOMO_GHANA);
	char out[512];
	size_t n;
	const char *why;

	CHECK_EQ_STR(flw_momo_type_param(FLW_MOMO_GHANA), "mobile_money_ghana");
	CHECK_EQ_STR(flw_momo_type_param(FLW_MOMO_MPESA), "mpesa");
	CHECK_EQ_STR(flw_momo_type_param(FLW_MOMO_FRANCO),
	             "mobile_money_franco");
	CHECK(flw_momo_type_param((enum flw_momo_type)3) == NULL);
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"tx_ref\":\"soko-1\",\"amount\":1500,\"currency\":"
	                  "\"GHS\",\"network\":\"MTN\",\"email\":\"john@"
	                  "example.com\",\"phone_number\":\"054709929220\","
	                  "\"fullname\":\"JOHN DOE\"}");
	r = charge_sample(FLW_MOMO_MPESA);
	r.amount_minor = 150050;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"tx_ref\":\"soko-1\",\"amount\":1500.5,"
	                  "\"currency\":\"KES\",\"email\":\"john@example.com\","
	                  "\"phone_number\":\"054709929220\",\"fullname\":"
	                  "\"JOHN DOE\"}");
	r = charge_sample(FLW_MOMO_FRANCO);
	r.amount_minor = 1500;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"tx_ref\":\"soko-1\",\"amount\":1500,\"currency\":"
	                  "\"XAF\",\"country\":\"CM\",\"email\":\"john@"
	                  "example.com\",\"phone_number\":\"23700000020\","
	                  "\"fullname\":\"JOHN DOE\"}");
	/* Rules. */
	r = charge_sample(FLW_MOMO_GHANA);
	r.network = NULL;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_MPESA);
	r.network = "MTN";
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	CHECK_EQ_STR(why, "network: Ghana only");
	r = charge_sample(FLW_MOMO_FRANCO);
	r.country = NULL;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_GHANA);
	r.country = "GH";
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_GHANA);
	r.currency = "NGN";
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_GHANA);
	r.amount_minor = -1;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_GHANA);
	r.phone_number = "+233541234567";
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
	r = charge_sample(FLW_MOMO_GHANA);
	r.type = (enum flw_momo_type)7;
	CHECK(flw_charge_build(out, sizeof out, &r, &n, &why) == CODEC_BAD);
}

static void
test_charge_resp(void)
{
	struct flw_charge_resp c;
	struct prov_err e;

	CHECK(load(charge_gh_resp) == 0);
	CHECK(flw_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.is_success && !c.has_data);
	CHECK(c.outcome == PROV_PENDING);
	CHECK_EQ_STR(c.auth_mode, "redirect");
	CHECK_EQ_STR(c.auth_url,
	             "https://ravemodal-dev.herokuapp.com/captcha/verify/"
	             "123:abc");

	CHECK(load(charge_mpesa_resp) == 0);
	CHECK(flw_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.has_data && c.outcome == PROV_PENDING);
	CHECK_EQ_STR(c.txn.status, "pending");
	CHECK_EQ_STR(c.txn.id, "1191267");
	CHECK_EQ_STR(c.txn.flw_ref, "8593751207");
	CHECK_EQ_STR(c.txn.auth_model, "LIPA_MPESA");
	CHECK_EQ_STR(c.txn.payment_type, "mpesa");
	CHECK_EQ_INT(c.txn.amount_minor, 150000);
	CHECK_EQ_STR(c.txn.currency, "KES");

	CHECK(load(charge_franco_resp) == 0);
	CHECK(flw_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.outcome == PROV_PENDING);
	CHECK_EQ_STR(c.auth_mode, "callback");
	CHECK_EQ_STR(c.auth_url, "");
	CHECK_EQ_INT(c.txn.amount_minor, 1500); /* XAF: exponent 0 */
	CHECK_EQ_STR(c.txn.processor_response, "Transaction in progress");

	CHECK(load(error_resp) == 0);
	CHECK(flw_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(!c.is_success && c.outcome == PROV_FAILED);
	CHECK_EQ_STR(c.reason, "Invalid authorization key");

	CHECK(load_variant(charge_mpesa_resp, "\"status\":\"pending\"",
	                   "\"status\":\"failed\"") == 0);
	CHECK(flw_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.outcome == PROV_FAILED);
	CHECK_EQ_STR(c.reason, "Successful"); /* processor_response */
	CHECK(load_variant(charge_mpesa_resp, "\"status\":\"pending\"",
	                   "\"status\":\"Pending\"") == 0);
	CHECK(expect(flw_charge_resp_parse(&c, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(charge_franco_resp, "\"amount\":1500,",
	                   "\"amount\":1500.5,") == 0);
	CHECK(expect(flw_charge_resp_parse(&c, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(charge_gh_resp, "\"meta\"", "\"metadata\"") == 0);
	CHECK(expect(flw_charge_resp_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data") == 0);
	CHECK(load_variant(charge_gh_resp, "\"mode\":\"redirect\"",
	                   "\"mode\":1") == 0);
	CHECK(expect(flw_charge_resp_parse(&c, &doc, &e), &e, PROV_WRONG_TYPE,
	             "meta.authorization.mode") == 0);
}

static void
test_verify(void)
{
	struct flw_txn t;
	struct prov_err e;
	size_t n;

	CHECK(flw_status_map(&n) != NULL && n == 4);
	CHECK(load(verify_ok) == 0);
	CHECK(flw_verify_parse(&t, &doc, &e) == PROV_OK);
	CHECK(t.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(t.id, "1163068");
	CHECK_EQ_STR(t.tx_ref, "soko-gh-1");
	CHECK_EQ_INT(t.amount_minor, 5050);
	CHECK(t.has_charged_amount);
	CHECK_EQ_INT(t.charged_amount_minor, 5072);
	CHECK_EQ_STR(t.currency, "GHS");
	CHECK_EQ_STR(t.reason, "");

	CHECK(load_variant(verify_ok, "\"amount\":50.5",
	                   "\"amount\":\"50.5\"") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(verify_ok, "\"amount\":50.5", "\"amount\":50.505") ==
	      0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(verify_ok, "\"amount\":50.5", "\"amount\":-50.5") ==
	      0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(verify_ok, "\"id\":1163068,", "") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_MISSING,
	             "data.id") == 0);
	CHECK(load_variant(verify_ok, "\"id\":1163068", "\"id\":\"1163068\"") ==
	      0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.id") == 0);
	CHECK(load_variant(verify_ok, "\"id\":1163068", "\"id\":1.5") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.id") == 0);
	CHECK(load_variant(verify_ok, "\"currency\":\"GHS\",", "") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_MISSING,
	             "data.currency") == 0);
	CHECK(load_variant(verify_ok, "\"status\":\"successful\"",
	                   "\"status\":\"success\"") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(verify_ok, "\"charged_amount\":50.72",
	                   "\"charged_amount\":-1") == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.charged_amount") == 0);
	CHECK(load(error_resp) == 0);
	CHECK(expect(flw_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "status") == 0);
}

static void
test_webhook(void)
{
	struct flw_webhook w;
	struct prov_err e;

	CHECK(load(webhook_v3) == 0);
	CHECK(flw_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == FLW_EVENT_CHARGE_COMPLETED && !w.is_legacy);
	CHECK_EQ_STR(w.event_name, "charge.completed");
	CHECK_EQ_STR(w.event_type, "MOBILEMONEYRW_TRANSACTION");
	CHECK(w.txn.outcome == PROV_SUCCEEDED);
	CHECK_EQ_INT(w.txn.amount_minor, 1000); /* RWF: exponent 0 */
	CHECK_EQ_STR(w.txn.id, "285959875");
	CHECK_EQ_STR(w.txn.tx_ref, "soko-rw-1");

	CHECK(load(webhook_v2) == 0);
	CHECK(flw_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == FLW_EVENT_CHARGE_COMPLETED && w.is_legacy);
	CHECK_EQ_STR(w.txn.tx_ref, "soko-gh-2");
	CHECK_EQ_STR(w.txn.flw_ref, "FLW-MOCK-2");
	CHECK_EQ_INT(w.txn.amount_minor, 5000);
	CHECK_EQ_INT(w.txn.charged_amount_minor, 5072);
	CHECK_EQ_STR(w.event_type, "MOBILEMONEYGH_TRANSACTION");

	/* Other events are acknowledged without reading data. */
	CHECK(load("{\"event\":\"transfer.completed\",\"data\":{\"status\":"
	           "\"SUCCESSFUL\"}}") == 0);
	CHECK(flw_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == FLW_EVENT_OTHER);
	CHECK_EQ_STR(w.event_name, "transfer.completed");

	CHECK(load_variant(webhook_v3, "\"status\":\"successful\"",
	                   "\"status\":\"SUCCESSFUL\"") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(webhook_v3, "\"amount\":1000,",
	                   "\"amount\":\"1000\",") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(webhook_v3, "\"amount\":1000,",
	                   "\"amount\":1000.5,") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(webhook_v2, "\"amount\":50,",
	                   "\"amount\":\"50\",") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_WRONG_TYPE,
	             "amount") == 0);
	CHECK(load_variant(webhook_v2, "\"status\":\"successful\",", "") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_MISSING,
	             "status") == 0);
	CHECK(load_variant(webhook_v3, "\"event\":\"charge.completed\",", "") ==
	      0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_MISSING,
	             "event") == 0);
	CHECK(load_variant(webhook_v3, "\"charge.completed\"", "\"\"") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "event") == 0);
	CHECK(load_variant(webhook_v3, "\"event\":\"charge.completed\"",
	                   "\"event\":[]") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_WRONG_TYPE,
	             "event") == 0);
	CHECK(load("{\"event\":\"charge.completed\",\"data\":\"x\"}") == 0);
	CHECK(expect(flw_webhook_parse(&w, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data") == 0);
}

int
main(void)
{
	RUN(test_samples_truncated);
	RUN(test_envelope);
	RUN(test_categories);
	RUN(test_validate);
	RUN(test_bill_create);
	RUN(test_bill_status);
	RUN(test_charge_build);
	RUN(test_charge_resp);
	RUN(test_verify);
	RUN(test_webhook);
	return check_report("prov_flw");
}
