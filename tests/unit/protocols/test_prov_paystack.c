/*
 * test_prov_paystack.c - unit tests for protocols/prov_paystack.c against
 * the Paystack samples of reference/wire-formats.md §5 (copied below): the
 * mobile-money charge request byte for byte, the charge step responses,
 * the verify response (Paystack's documented sample), the webhook bodies
 * (the wire-formats §5.4 test body among them); every truncation refused;
 * the malformed variants with their specific errors.
 */
#include "prov_paystack.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"

static const char charge_req[] =
    "{\"amount\":1000,\"email\":\"customer@email.com\",\"currency\":\"GHS\","
    "\"mobile_money\":{\"phone\":\"0553241149\",\"provider\":\"MTN\"}}";

static const char charge_otp[] =
    "{\"status\":true,\"message\":\"Charge attempted\",\"data\":{"
    "\"reference\":\"r4mxk2k9f1\",\"status\":\"send_otp\",\"display_text\":"
    "\"Please enter the OTP sent to your phone\"}}";

static const char charge_offline[] =
    "{\"status\":true,\"message\":\"Charge attempted\",\"data\":{"
    "\"reference\":\"mp3kq8\",\"status\":\"pay_offline\",\"display_text\":"
    "\"Please complete authorization process on your mobile phone\"}}";

static const char charge_success[] =
    "{\"status\":true,\"message\":\"Charge attempted\",\"data\":{\"amount\":"
    "1000,\"channel\":\"mobile_money\",\"created_at\":\"2024-01-01T10:00:00."
    "000Z\",\"currency\":\"GHS\",\"domain\":\"test\",\"fees\":19,"
    "\"gateway_response\":\"Approved\",\"id\":3481238492,\"paid_at\":"
    "\"2024-01-01T10:00:05.000Z\",\"reference\":\"soko-ps-1\",\"status\":"
    "\"success\",\"authorization\":{\"bank\":\"MTN Mobile Money\","
    "\"channel\":\"mobile_money\"}}}";

static const char charge_refused[] =
    "{\"status\":false,\"message\":\"Invalid key\"}";

/* Paystack's documented verify sample (doc-code-snippets,
 * dist/api/transactions/verify/response.json, "200"), whitespace
 * removed. */
static const char verify_ok[] =
    "{\"status\":true,\"message\":\"Verification successful\",\"data\":{"
    "\"id\":2009945086,\"domain\":\"test\",\"status\":\"success\","
    "\"reference\":\"rd0bz6z2wu\",\"amount\":20000,\"message\":null,"
    "\"gateway_response\":\"Successful\",\"paid_at\":\"2022-08-09T14:21:32."
    "000Z\",\"created_at\":\"2022-08-09T14:20:57.000Z\",\"channel\":\"card\","
    "\"currency\":\"NGN\",\"ip_address\":\"100.64.11.35\",\"metadata\":\"\","
    "\"log\":{\"start_time\":1660054888,\"time_spent\":4,\"attempts\":1,"
    "\"errors\":0,\"success\":true,\"mobile\":false,\"input\":[],"
    "\"history\":[{\"type\":\"action\",\"message\":\"Attempted to pay with "
    "card\",\"time\":3},{\"type\":\"success\",\"message\":\"Successfully "
    "paid with card\",\"time\":4}]},\"fees\":100,\"fees_split\":null,"
    "\"authorization\":{\"authorization_code\":\"AUTH_ahisucjkru\",\"bin\":"
    "\"408408\",\"last4\":\"4081\",\"exp_month\":\"12\",\"exp_year\":"
    "\"2030\",\"channel\":\"card\",\"card_type\":\"visa \",\"bank\":\"TEST "
    "BANK\",\"country_code\":\"NG\",\"brand\":\"visa\",\"reusable\":true,"
    "\"signature\":\"SIG_yEXu7dLBeqG0kU7g95Ke\",\"account_name\":null},"
    "\"customer\":{\"id\":89929267,\"first_name\":null,\"last_name\":null,"
    "\"email\":\"hello@email.com\",\"customer_code\":\"CUS_i5yosncbl8h2kvc\","
    "\"phone\":null,\"metadata\":null,\"risk_action\":\"default\","
    "\"international_format_phone\":null},\"plan\":null,\"split\":{},"
    "\"order_id\":null,\"paidAt\":\"2022-08-09T14:21:32.000Z\","
    "\"createdAt\":\"2022-08-09T14:20:57.000Z\",\"requested_amount\":20000,"
    "\"pos_transaction_data\":null,\"source\":null,\"fees_breakdown\":null,"
    "\"transaction_date\":\"2022-08-09T14:20:57.000Z\",\"plan_object\":{},"
    "\"subaccount\":{}}}";

/* wire-formats.md §5.4's test body. */
static const char webhook_ok[] = "{\"event\":\"charge.success\",\"data\":{"
				 "\"reference\":\"T123\",\"status\":"
				 "\"success\",\"amount\":10000}}";

static const char webhook_failed[] =
    "{\"event\":\"charge.failed\",\"data\":{\"reference\":\"soko-42\","
    "\"status\":\"failed\",\"amount\":2500,\"currency\":\"GHS\","
    "\"gateway_response\":\"Declined\"}}";

static const char *const samples[] = {
    charge_req,     charge_otp, charge_offline, charge_success,
    charge_refused, verify_ok,  webhook_ok,     webhook_failed,
};

static struct json_tok toks[512];
static struct json_doc doc;

static int
load(const char *s)
{
	const char *why = NULL;

	return json_parse(&doc, toks, 512, s, strlen(s), &why) == CODEC_OK ? 0
	                                                                   : -1;
}

static int
load_variant(const char *base, const char *from, const char *to)
{
	static char buf[8192];
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
			CHECK(json_parse(&doc, toks, 512, buf, n, &why) ==
			      CODEC_BAD);
			free(buf);
		}
	}
}

static struct paystack_charge_req
charge_sample(void)
{
	struct paystack_charge_req r;

	r.amount_minor = 1000;
	r.email = "customer@email.com";
	r.currency = "GHS";
	r.phone = "0553241149";
	r.provider = "MTN";
	r.reference = NULL;
	return r;
}

static void
test_charge_build(void)
{
	struct paystack_charge_req r = charge_sample();
	char out[512];
	size_t n, need;
	const char *why;

	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, charge_req);
	CHECK(paystack_charge_build(out, 8, &r, &need, &why) ==
	      CODEC_NEED_MORE);
	CHECK_EQ_INT(need, n + 1);
	r.reference = "soko-ps.1=a";
	r.provider = "mpesa_offline";
	r.currency = "KES";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"amount\":1000,\"email\":\"customer@email.com\","
	                  "\"currency\":\"KES\",\"mobile_money\":{\"phone\":"
	                  "\"0553241149\",\"provider\":\"mpesa_offline\"},"
	                  "\"reference\":\"soko-ps.1=a\"}");
	r = charge_sample();
	r.reference = "soko ps";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = charge_sample();
	r.amount_minor = 0;
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = charge_sample();
	r.email = "customer";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = charge_sample();
	r.currency = "CEDI";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = charge_sample();
	r.phone = "+233553241149";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r = charge_sample();
	r.provider = "M T N";
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
	r.provider = NULL;
	CHECK(paystack_charge_build(out, sizeof out, &r, &n, &why) ==
	      CODEC_BAD);
}

static void
test_submit_build(void)
{
	char out[256];
	size_t n = 0;
	const char *why = NULL;

	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_OTP,
	                            "123456", "T123", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"otp\":\"123456\",\"reference\":\"T123\"}");
	CHECK_EQ_INT(n, strlen(out));
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_PIN,
	                            "1234", "T123", &n, &why) == CODEC_OK);
	CHECK_EQ_STR(out, "{\"pin\":\"1234\",\"reference\":\"T123\"}");
	CHECK_EQ_STR(paystack_submit_path(PAYSTACK_SUBMIT_OTP),
	             "/charge/submit_otp");
	CHECK_EQ_STR(paystack_submit_path(PAYSTACK_SUBMIT_PIN),
	             "/charge/submit_pin");
	/* bounds: digits only, OTP 4-10, PIN 4-6, a valid reference */
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_OTP,
	                            "123", "T1", &n, &why) == CODEC_BAD);
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_OTP,
	                            "12345678901", "T1", &n, &why) ==
	      CODEC_BAD);
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_PIN,
	                            "1234567", "T1", &n, &why) == CODEC_BAD);
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_OTP,
	                            "12a456", "T1", &n, &why) == CODEC_BAD);
	CHECK(strstr(why, "otp") != NULL);
	CHECK(paystack_submit_build(out, sizeof out, PAYSTACK_SUBMIT_OTP,
	                            "123456", "T 1", &n, &why) == CODEC_BAD);
	CHECK(paystack_submit_build(out, sizeof out, (enum paystack_submit)7,
	                            "123456", "T1", &n, &why) == CODEC_BAD);
	CHECK(paystack_submit_build(out, 10, PAYSTACK_SUBMIT_OTP, "123456",
	                            "T1", &n, &why) != CODEC_OK);
}

static void
test_charge_resp(void)
{
	struct paystack_charge_resp c;
	struct prov_err e;
	size_t n;
	const struct prov_status_map *m = paystack_status_map(&n);

	CHECK(m != NULL && n == 15);
	CHECK(load(charge_otp) == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.status && c.has_data);
	CHECK(c.outcome == PROV_PENDING);
	CHECK(c.txn.next == PAYSTACK_SEND_OTP);
	CHECK_EQ_STR(c.txn.reference, "r4mxk2k9f1");
	CHECK_EQ_STR(c.txn.display_text,
	             "Please enter the OTP sent to your phone");
	CHECK(!c.txn.has_amount);

	CHECK(load(charge_offline) == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.outcome == PROV_PENDING && c.txn.next == PAYSTACK_PAY_OFFLINE);

	CHECK(load(charge_success) == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.outcome == PROV_SUCCEEDED);
	CHECK(c.txn.next == PAYSTACK_NEXT_NONE);
	CHECK_EQ_INT(c.txn.amount_minor, 1000);
	CHECK_EQ_STR(c.txn.currency, "GHS");
	CHECK_EQ_STR(c.txn.channel, "mobile_money");
	CHECK_EQ_STR(c.txn.id, "3481238492");
	CHECK_EQ_STR(c.txn.paid_at, "2024-01-01T10:00:05.000Z");

	CHECK(load(charge_refused) == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(!c.status && c.outcome == PROV_FAILED);
	CHECK_EQ_STR(c.reason, "Invalid key");

	CHECK(load_variant(charge_success, "\"status\":\"success\"",
	                   "\"status\":\"failed\"") == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.outcome == PROV_FAILED);
	CHECK_EQ_STR(c.reason, "Approved"); /* gateway_response as sent */
	CHECK(load_variant(charge_otp, "\"send_otp\"", "\"open_url\"") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data.url") == 0);
	CHECK(load_variant(charge_otp, "\"send_otp\"",
	                   "\"open_url\",\"url\":\"https://x/y\"") == 0);
	CHECK(paystack_charge_resp_parse(&c, &doc, &e) == PROV_OK);
	CHECK(c.txn.next == PAYSTACK_OPEN_URL);
	CHECK_EQ_STR(c.txn.url, "https://x/y");
	CHECK(load_variant(charge_otp, "\"send_otp\"", "\"send_token\"") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e,
	             PROV_BAD_VALUE, "data.status") == 0);
	CHECK(load_variant(charge_success, "\"amount\":1000,",
	                   "\"amount\":\"1000\",") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e,
	             PROV_WRONG_TYPE, "data.amount") == 0);
	CHECK(load_variant(charge_success, "\"amount\":1000,",
	                   "\"amount\":10.5,") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e,
	             PROV_BAD_VALUE, "data.amount") == 0);
	CHECK(load_variant(charge_success, "\"amount\":1000,", "") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data.amount") == 0);
	CHECK(load_variant(charge_success, "\"currency\":\"GHS\",", "") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data.currency") == 0);
	CHECK(load("{\"status\":true,\"message\":\"x\"}") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e, PROV_MISSING,
	             "data") == 0);
	CHECK(load("{\"status\":\"true\",\"message\":\"x\"}") == 0);
	CHECK(expect(paystack_charge_resp_parse(&c, &doc, &e), &e,
	             PROV_WRONG_TYPE, "status") == 0);
}

static void
test_verify(void)
{
	struct paystack_txn t;
	struct prov_err e;

	CHECK(load(verify_ok) == 0);
	CHECK(paystack_verify_parse(&t, &doc, &e) == PROV_OK);
	CHECK(t.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(t.id, "2009945086");
	CHECK_EQ_STR(t.reference, "rd0bz6z2wu");
	CHECK_EQ_INT(t.amount_minor, 20000);
	CHECK_EQ_STR(t.currency, "NGN");
	CHECK_EQ_STR(t.gateway_response, "Successful");
	CHECK_EQ_STR(t.channel, "card");

	CHECK(load_variant(verify_ok, "\"status\":\"success\"",
	                   "\"status\":\"abandoned\"") == 0);
	CHECK(paystack_verify_parse(&t, &doc, &e) == PROV_OK);
	CHECK(t.outcome == PROV_PENDING);
	CHECK(load_variant(verify_ok, "\"status\":\"success\"",
	                   "\"status\":\"reversed\"") == 0);
	CHECK(paystack_verify_parse(&t, &doc, &e) == PROV_OK);
	CHECK(t.outcome == PROV_UNKNOWN);
	CHECK(load_variant(verify_ok, "\"status\":\"success\"",
	                   "\"status\":\"failed\"") == 0);
	CHECK(paystack_verify_parse(&t, &doc, &e) == PROV_OK);
	CHECK(t.outcome == PROV_FAILED);
	CHECK_EQ_STR(t.reason, "Successful");
	CHECK(load_variant(verify_ok, "\"status\":\"success\"",
	                   "\"status\":\"SUCCESS\"") == 0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(verify_ok, "\"id\":2009945086,", "") == 0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_MISSING,
	             "data.id") == 0);
	CHECK(load_variant(verify_ok, "\"amount\":20000,", "\"amount\":0,") ==
	      0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(verify_ok, "\"amount\":20000,",
	                   "\"amount\":\"20000\",") == 0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(verify_ok, "\"currency\":\"NGN\",", "") == 0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_MISSING,
	             "data.currency") == 0);
	CHECK(load_variant(verify_ok, "\"reference\":\"rd0bz6z2wu\",", "") ==
	      0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_MISSING,
	             "data.reference") == 0);
	CHECK(load(charge_refused) == 0);
	CHECK(expect(paystack_verify_parse(&t, &doc, &e), &e, PROV_BAD_VALUE,
	             "status") == 0);
}

static void
test_webhook(void)
{
	struct paystack_webhook w;
	struct prov_err e;

	CHECK(load(webhook_ok) == 0);
	CHECK(paystack_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == PAYSTACK_EVENT_CHARGE_SUCCESS);
	CHECK(w.txn.outcome == PROV_SUCCEEDED);
	CHECK_EQ_STR(w.txn.reference, "T123");
	CHECK_EQ_INT(w.txn.amount_minor, 10000);
	CHECK_EQ_STR(w.txn.currency, "");

	CHECK(load(webhook_failed) == 0);
	CHECK(paystack_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == PAYSTACK_EVENT_CHARGE_FAILED);
	CHECK(w.txn.outcome == PROV_FAILED);
	CHECK_EQ_STR(w.txn.reason, "Declined");
	CHECK_EQ_STR(w.txn.currency, "GHS");

	/* Transfers, refunds...: acknowledged, data not read. */
	CHECK(load("{\"event\":\"transfer.success\",\"data\":7}") == 0);
	CHECK(paystack_webhook_parse(&w, &doc, &e) == PROV_OK);
	CHECK(w.event == PAYSTACK_EVENT_OTHER);
	CHECK_EQ_STR(w.event_name, "transfer.success");

	/* The status must agree with the event. */
	CHECK(load_variant(webhook_ok, "\"status\":\"success\"",
	                   "\"status\":\"failed\"") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(webhook_failed, "\"status\":\"failed\"",
	                   "\"status\":\"success\"") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(webhook_failed, "\"status\":\"failed\"",
	                   "\"status\":\"pending\"") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.status") == 0);
	CHECK(load_variant(webhook_ok, "\"amount\":10000",
	                   "\"amount\":\"10000\"") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_WRONG_TYPE,
	             "data.amount") == 0);
	CHECK(load_variant(webhook_ok, ",\"amount\":10000", "") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_MISSING,
	             "data.amount") == 0);
	CHECK(load_variant(webhook_ok, "\"amount\":10000", "\"amount\":-1") ==
	      0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_BAD_VALUE,
	             "data.amount") == 0);
	CHECK(load_variant(webhook_ok, "\"event\":\"charge.success\",", "") ==
	      0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_MISSING,
	             "event") == 0);
	CHECK(load("{\"event\":\"charge.success\"}") == 0);
	CHECK(expect(paystack_webhook_parse(&w, &doc, &e), &e, PROV_MISSING,
	             "data") == 0);
}

int
main(void)
{
	RUN(test_samples_truncated);
	RUN(test_charge_build);
	RUN(test_submit_build);
	RUN(test_charge_resp);
	RUN(test_verify);
	RUN(test_webhook);
	return check_report("prov_paystack");
}
