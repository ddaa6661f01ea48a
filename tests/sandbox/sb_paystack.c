/*
 * sb_paystack.c - Paystack as soko-sandbox plays it
 * (reference/wire-formats.md §5; tests/sandbox/README.md "Paystack").
 *
 * POST /charge with mobile_money (the customer authorises on the phone:
 * "pay_offline"), GET /charge/{reference}, GET /transaction/verify/
 * {reference}, and the charge.success webhook signed with
 * x-paystack-signature = hex(HMAC-SHA512(secret key, raw body)).
 * Amounts are integers in the subunit (kobo, pesewas, cents).
 */
#include "sb.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/http.h>

struct momo_provider {
	const char *code, *bank;
};

static const struct momo_provider providers[] = {
    {"mtn", "MTN Mobile Money"},
    {"vod", "Vodafone Cash"},
    {"atl", "AirtelTigo Money"},
    {"tgo", "AirtelTigo Money"},
    {"mpesa", "M-PESA"},
    {"mpesa_offline", "M-PESA"},
    {"mpesa_till", "M-PESA"},
    {"orange", "Orange Money"},
    {"wave", "Wave"},
    {"airtel", "Airtel Money"},
};

static int
ps_err(struct sb_rq *rq, int status, const char *msg)
{
	sb_rq_json(rq, status,
	           json_pack("{s:b,s:s}", "status", 0, "message", msg));
	return -1;
}

void
sb_paystack_error500(struct sb_rq *rq)
{
	ps_err(rq, 500, "An error occurred");
}

static bool
reference_ok(const char *s)
{
	if (*s == '\0' || strlen(s) >= SB_REF_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '.' &&
		    *s != '=')
			return false;
	return true;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
iso_time(char *dst, size_t cap, int64_t ms)
{
	char t[32];

	sb_fmt_time(t, sizeof(t), ms, 0, "%Y-%m-%dT%H:%M:%S");
	snprintf(dst, cap, "%s.000Z", t);
}

/* The transaction object of verify, charge status and the webhook. */
static json_t *
tx_object(const struct sb_charge *c, bool lie)
{
	json_t *d = json_deep_copy(c->echo);
	bool good = (c->state == SB_SUCCEEDED) != lie;
	char when[40];

	if (d == NULL)
		abort();
	if (c->state == SB_PENDING && !lie) {
		json_object_set_new(d, "status", json_string("ongoing"));
		json_object_set_new(d, "gateway_response",
		                    json_string("Charge attempted"));
		json_object_set_new(d, "paid_at", json_null());
	} else {
		iso_time(when, sizeof(when),
		         c->done_ms ? c->done_ms : c->created_ms);
		json_object_set_new(d, "status",
		                    json_string(good ? "success" : "failed"));
		json_object_set_new(
		    d, "gateway_response",
		    json_string(good ? "Approved" : "Declined"));
		json_object_set_new(d, "paid_at",
		                    good ? json_string(when) : json_null());
	}
	return d;
}

/* The charge API's answer: the step the charge waits for, else
 * pay_offline (the customer approves on the phone), or failed. */
static json_t *
step_answer(const struct sb_charge *c)
{
	const char *st = c->step[0]                 ? c->step
	                 : c->outcome == SB_FAILED &&
	                           c->step_tries > 0 ? "failed"
	                                             : "pay_offline";
	const char *text =
	    strcmp(st, "send_otp") == 0
	        ? "Please enter the OTP sent to your phone"
	    : strcmp(st, "send_pin") == 0 ? "Please enter your PIN"
	    : strcmp(st, "failed") == 0   ? "Too many wrong attempts"
	                                  : "Please complete authorization "
	                                    "process on your mobile phone";
	json_t *r = json_pack("{s:b,s:s,s:{s:s,s:s,s:s}}", "status", 1,
	                      "message", "Charge attempted", "data",
	                      "reference", c->ref, "status", st,
	                      "display_text", text);

	if (r == NULL)
		abort();
	return r;
}

static int
charge(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *email = sb_jstr(j, "email"), *ref = sb_jstr(j, "reference");
	const char *cur = sb_jstr(j, "currency");
	json_t *mm = json_object_get(j, "mobile_money");
	const char *phone = sb_jstr(mm, "phone"),
		   *prov = sb_jstr(mm, "provider");
	const json_t *amount = json_object_get(j, "amount");
	const struct momo_provider *mp = NULL;
	struct sb_charge *c;
	char when[40], gen[24], code[24];
	int64_t cents;
	size_t i;

	if (email == NULL || strchr(email, '@') == NULL)
		return ps_err(rq, 400, "Invalid Email Address Passed");
	if (!(json_is_integer(amount) || json_is_string(amount)) ||
	    !sb_amount_cents(amount, &cents) || cents <= 0 || cents % 100 != 0)
		return ps_err(rq, 400, "Invalid Amount Sent");
	if (!json_is_object(mm))
		return ps_err(
		    rq, 400,
		    "soko-sandbox simulates mobile_money charges only");
	for (i = 0;
	     prov != NULL && i < sizeof(providers) / sizeof(providers[0]); i++)
		if (strcasecmp(prov, providers[i].code) == 0)
			mp = &providers[i];
	if (mp == NULL)
		return ps_err(rq, 400, "Invalid mobile money provider");
	if (phone == NULL || !sb_all_digits(phone) || strlen(phone) < 9 ||
	    strlen(phone) > 15)
		return ps_err(rq, 400, "Invalid phone number");
	if (cur == NULL)
		cur = strncasecmp(mp->code, "mpesa", 5) == 0 ? "KES" : "GHS";
	if (strlen(cur) != 3)
		return ps_err(rq, 400, "Invalid currency");
	if (ref != NULL && !reference_ok(ref))
		return ps_err(rq, 400, "Invalid transaction reference");
	if (ref != NULL && sb_charge_by_ref(sb, SB_PAYSTACK, ref) != NULL)
		return ps_err(rq, 400, "Duplicate Transaction Reference");
	c = sb_charge_new(sb, SB_PAYSTACK, SB_K_PAYSTACK_CHARGE);
	if (c == NULL)
		return ps_err(rq, 500, "An error occurred");
	if (ref == NULL) {
		do
			sb_rng_chars(&sb->rng_id, gen, 15,
			             "abcdefghijklmnopqrstuvwxyz0123456789");
		while (sb_charge_by_ref(sb, SB_PAYSTACK, gen) != NULL);
		ref = gen;
	}
	sb_copy(c->ref, sizeof(c->ref), ref);
	sb_copy(c->cref, sizeof(c->cref), ref);
	snprintf(c->alt, sizeof(c->alt), "%" PRIu64, sb->next_numeric_id++);
	sb_copy(c->msisdn, sizeof(c->msisdn), phone);
	sb_copy(c->currency, sizeof(c->currency), cur);
	c->cents = cents;
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	iso_time(when, sizeof(when), c->created_ms);
	sb_rng_chars(&sb->rng_id, code, 10,
	             "abcdefghijklmnopqrstuvwxyz0123456789");
	c->echo = json_pack(
	    "{s:I,s:s,s:s,s:I,s:n,s:s,s:s,s:s,s:s,s:s,s:n,s:I,"
	    "s:{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:b,s:n,s:n},"
	    "s:{s:I,s:n,s:n,s:s,s:s,s:s,s:n,s:s},s:n,s:I,s:s}",
	    "id", (json_int_t)(sb->next_numeric_id - 1), "domain", "test",
	    "reference", c->ref, "amount", (json_int_t)(cents / 100), "message",
	    "channel", "mobile_money", "currency", cur, "ip_address",
	    "127.0.0.1", "metadata", "", "created_at", when, "log", "fees",
	    (json_int_t)(cents / 100 * 15 / 1000), "authorization",
	    "authorization_code", "AUTH_sandbox", "bin", phone, "last4",
	    phone + strlen(phone) - 4, "exp_month", "12", "exp_year", "9999",
	    "channel", "mobile_money", "card_type", "", "bank", mp->bank,
	    "country_code", "GH", "brand", mp->bank, "reusable", 0, "signature",
	    "account_name", "customer", "id",
	    (json_int_t)(sb->next_numeric_id + 7000000), "first_name",
	    "last_name", "email", email, "customer_code", "CUS_sandbox",
	    "phone", phone, "metadata", "risk_action", "default", "plan",
	    "requested_amount", (json_int_t)(cents / 100), "transaction_date",
	    when);
	if (c->echo == NULL)
		abort();
	sb_copy(c->code, sizeof(c->code), "success");
	if (ends_with(phone, "9901")) {
		c->outcome = SB_FAILED;
		sb_copy(c->code, sizeof(c->code), "failed");
	}
	sb_charge_index(sb, c);
	rq->charge = c;
	/* README "Magic numbers": ...9911 asks for an OTP, ...9912 for a
	 * PIN then an OTP; the charge starts only when they are given */
	if (ends_with(phone, "9911"))
		sb_copy(c->step, sizeof(c->step), "send_otp");
	else if (ends_with(phone, "9912"))
		sb_copy(c->step, sizeof(c->step), "send_pin");
	if (c->step[0] == '\0' && !ends_with(phone, "9902"))
		sb_charge_schedule(sb, c);
	sb_rq_json(rq, 200, step_answer(c));
	return 0;
}

#define SB_OTP        "123456" /* the OTP every customer receives */
#define SB_PIN        "1234"   /* every customer's PIN */
#define SB_STEP_TRIES 3        /* wrong answers before the charge fails */

/* POST /charge/submit_otp {"otp","reference"}, /charge/submit_pin
 * {"pin","reference"}: the answer the charge waited for moves it on
 * (PIN -> OTP -> the charge runs); a wrong one is refused, and the
 * SB_STEP_TRIES-th fails the charge. */
static int
submit(struct sb_rq *rq, json_t *j, bool is_otp)
{
	struct sb *sb = rq->sb;
	const char *field = is_otp ? "otp" : "pin";
	const char *ref = sb_jstr(j, "reference"), *v = sb_jstr(j, field);
	struct sb_charge *c;

	if (ref == NULL)
		return ps_err(rq, 400, "Transaction reference is required");
	if (v == NULL || *v == '\0')
		return ps_err(rq, 400, is_otp ? "OTP is required"
		                              : "PIN is required");
	c = sb_charge_by_ref(sb, SB_PAYSTACK, ref);
	if (c == NULL)
		return ps_err(rq, 400, "Transaction reference not found");
	if (strcmp(c->step, is_otp ? "send_otp" : "send_pin") != 0)
		return ps_err(rq, 400, "Transaction is not awaiting this "
		                       "authorization");
	if (strcmp(v, is_otp ? SB_OTP : SB_PIN) != 0) {
		if (++c->step_tries >= SB_STEP_TRIES) {
			/* the charge fails: what verify and webhooks say */
			c->step[0] = '\0';
			c->outcome = SB_FAILED;
			sb_copy(c->code, sizeof(c->code), "failed");
			sb_charge_schedule(sb, c);
			sb_rq_json(rq, 200, step_answer(c));
			return 0;
		}
		return ps_err(rq, 400, is_otp ? "Invalid OTP" : "Invalid PIN");
	}
	c->step_tries = 0;
	if (is_otp) {
		c->step[0] = '\0';
		sb_charge_schedule(sb, c);
	} else {
		sb_copy(c->step, sizeof(c->step), "send_otp");
	}
	sb_log(sb, SB_LOG_INFO, "event=paystack_step ref=%s %s=ok next=%s",
	       c->ref, field, c->step[0] ? c->step : "pay_offline");
	sb_rq_json(rq, 200, step_answer(c));
	return 0;
}

int
sb_paystack_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                     struct sb_cbmsg *m)
{
	json_t *j;

	/* charge.success only: Paystack has no failed-charge event */
	if (sb->webhook[SB_PAYSTACK] == NULL ||
	    (c->state != SB_SUCCEEDED && !lie))
		return -1;
	j = json_pack("{s:s,s:o}", "event", "charge.success", "data",
	              tx_object(c, lie));
	m->url = sb_xstrdup(sb->webhook[SB_PAYSTACK]);
	m->body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (m->body == NULL)
		abort();
	sb_hmac512_hex(m->hdr_buf, sb->cr.paystack_secret, m->body,
	               strlen(m->body));
	m->hdr[0].name = "x-paystack-signature";
	m->hdr[0].value = m->hdr_buf;
	m->n_hdr = 1;
	return 0;
}

void
sb_paystack_handle(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	const char *tok = sb_bearer(sb_rq_header(rq, "Authorization"));
	const char *ref = NULL;
	json_t *j = NULL;
	struct sb_charge *c;

	if (strcmp(rq->path, "/charge") == 0 && rq->method == EVHTTP_REQ_POST) {
		rq->op = SB_OP_PAYSTACK_CHARGE;
	} else if (strcmp(rq->path, "/charge/submit_otp") == 0 &&
	           rq->method == EVHTTP_REQ_POST) {
		rq->op = SB_OP_PAYSTACK_SUBMIT_OTP;
	} else if (strcmp(rq->path, "/charge/submit_pin") == 0 &&
	           rq->method == EVHTTP_REQ_POST) {
		rq->op = SB_OP_PAYSTACK_SUBMIT_PIN;
	} else if (strncmp(rq->path, "/charge/", 8) == 0 &&
	           rq->method == EVHTTP_REQ_GET) {
		rq->op = SB_OP_PAYSTACK_CHARGE_STATUS;
		ref = rq->path + 8;
	} else if (strncmp(rq->path, "/transaction/verify/", 20) == 0 &&
	           rq->method == EVHTTP_REQ_GET) {
		rq->op = SB_OP_PAYSTACK_VERIFY;
		ref = rq->path + 20;
	} else {
		ps_err(rq, 404, "Route not found");
		return;
	}
	if (rq->op == SB_OP_PAYSTACK_CHARGE ||
	    rq->op == SB_OP_PAYSTACK_SUBMIT_OTP ||
	    rq->op == SB_OP_PAYSTACK_SUBMIT_PIN)
		j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
		               NULL);
	sb_rq_faults(rq, sb_jstr(json_object_get(j, "mobile_money"), "phone"),
	             rq->op == SB_OP_PAYSTACK_CHARGE);
	if (tok == NULL || strlen(tok) != strlen(sb->cr.paystack_secret) ||
	    !sb_ct_eq(tok, sb->cr.paystack_secret, strlen(tok)) ||
	    (rq->faults & SB_FBIT(SB_F_EXPIRED_TOKEN))) {
		ps_err(rq, 401, "Invalid key");
		goto out;
	}
	if (rq->op == SB_OP_PAYSTACK_CHARGE ||
	    rq->op == SB_OP_PAYSTACK_SUBMIT_OTP ||
	    rq->op == SB_OP_PAYSTACK_SUBMIT_PIN) {
		if (!json_is_object(j))
			ps_err(rq, 400, "Invalid JSON body");
		else if (rq->op == SB_OP_PAYSTACK_CHARGE)
			charge(rq, j);
		else
			submit(rq, j, rq->op == SB_OP_PAYSTACK_SUBMIT_OTP);
		goto out;
	}
	c = sb_charge_by_ref(sb, SB_PAYSTACK, ref);
	if (c == NULL) {
		ps_err(rq, 400, "Transaction reference not found");
		goto out;
	}
	if (rq->op == SB_OP_PAYSTACK_VERIFY) {
		sb_rq_json(rq, 200,
		           json_pack("{s:b,s:s,s:o}", "status", 1, "message",
		                     "Verification successful", "data",
		                     tx_object(c, false)));
	} else {
		json_t *d = tx_object(c, false);

		if (c->state == SB_PENDING && c->step[0] != '\0') {
			json_object_set_new(d, "status",
			                    json_string(c->step));
		} else if (c->state == SB_PENDING) {
			json_object_set_new(d, "status",
			                    json_string("pay_offline"));
			json_object_set_new(
			    d, "display_text",
			    json_string("Please complete authorization "
			                "process on your mobile phone"));
		}
		sb_rq_json(rq, 200,
		           json_pack("{s:b,s:s,s:o}", "status", 1, "message",
		                     "Charge attempted", "data", d));
	}
out:
	json_decref(j);
}
