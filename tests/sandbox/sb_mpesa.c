/*
 * sb_mpesa.c - Safaricom M-Pesa Daraja as soko-sandbox plays it
 * (reference/wire-formats.md §1; tests/sandbox/README.md "M-Pesa").
 *
 * OAuth, STK push + callback, STK query, C2B register/simulate with
 * validation and confirmation, B2C with a SecurityCredential decrypted
 * and checked, Transaction Status and Reversal with their asynchronous
 * results.  Every error is Daraja's envelope
 * {"requestId","errorCode","errorMessage"} with the documented code.
 *
 * Time in Daraja's bodies is Kenyan local time (EAT, UTC+3).
 */
#include "sb.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#define EAT_OFFSET_S  10800
#define MAX_STK_CENTS (250000 * 100) /* FAQ: 250,000 KES a transaction */
#define MIN_B2C_CENTS (10 * 100)
#define MAGIC_PREFIX  "254700"       /* 254700RRRRRR: outcome ResultCode R */
#define MAGIC_PENDING "254700999999" /* never completes */
#define MAGIC_SFC     "254700999003" /* SFC_IC0003 */
/* pays, but its payments cannot be reversed: the reversal's result is
 * ResultCode 1 (the customer's balance no longer holds the money) */
#define MAGIC_NO_REVERSAL "254700999001"

static const char *const UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
static const char *const HEX = "0123456789abcdef";
static const char *const DIGITS = "0123456789";

struct code_desc {
	const char *code, *desc;
};

/* STK and B2C result codes (§1.2, §1.6 tables). */
static const struct code_desc result_codes[] = {
    {"0", "The service request is processed successfully."},
    {"1", "The balance is insufficient for the transaction."},
    {"2", "Declined due to limit rule."},
    {"3", "Declined due to limit rule: greater than the maximum "
          "transaction amount."},
    {"4", "Declined due to limit rule: would exceed daily transfer "
          "limit."},
    {"8", "Declined due to limit rule: would exceed the maximum balance."},
    {"11", "The DebitParty is in an invalid state."},
    {"17", "Rule limited."},
    {"21", "The initiator is not allowed to initiate this request."},
    {"1019", "Transaction has expired."},
    {"1025", "An error occurred while sending a push request."},
    {"1032", "Request cancelled by user."},
    {"1037", "DS timeout user cannot be reached."},
    {"2001", "The initiator information is invalid."},
    {"2006", "Declined due to account rule: The account status does not "
             "allow this transaction."},
    {"2028", "The request is not permitted according to product "
             "assignment."},
    {"2040", "Credit Party customer type (Unregistered or Registered "
             "Customer) can't be supported by the service."},
    {"8006", "The security credential is locked."},
    {"SFC_IC0003", "The operator does not exist."},
    {"R000001", "The transaction receipt number does not exist."},
    {"R000002", "The OriginalTransactionID is invalid."},
    {"R000003", "The transaction has already been reversed."},
    {"R000004", "The reversal amount does not match the transaction."},
};

static const char *
code_desc(const char *code)
{
	size_t i;

	for (i = 0; i < sizeof(result_codes) / sizeof(result_codes[0]); i++)
		if (strcmp(result_codes[i].code, code) == 0)
			return result_codes[i].desc;
	return "The service request failed.";
}

/* A result code as JSON: a number when numeric, else a string. */
static json_t *
code_json(const char *code)
{
	return sb_all_digits(code) ? json_integer(strtoll(code, NULL, 10))
	                           : json_string(code);
}

/* ------------------------------------------------------------ helpers */

static void
rand_id(struct sb *sb, char *dst, size_t n, const char *alphabet)
{
	sb_rng_chars(&sb->rng_id, dst, n, alphabet);
}

static void
request_id(struct sb *sb, char *dst)
{
	char a[5], b[5], c[25];

	rand_id(sb, a, 4, HEX);
	rand_id(sb, b, 4, HEX);
	rand_id(sb, c, 24, DIGITS);
	snprintf(dst, 48, "%s-%s-%s", a, b, c);
}

/* Answers with Daraja's error envelope; returns -1 for the caller to
 * return. */
static int
mp_err(struct sb_rq *rq, int status, const char *code, const char *msg)
{
	char rid[48];

	request_id(rq->sb, rid);
	sb_rq_json(rq, status,
	           json_pack("{s:s,s:s,s:s}", "requestId", rid, "errorCode",
	                     code, "errorMessage", msg));
	return -1;
}

static int
bad_field(struct sb_rq *rq, const char *field)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "Bad Request - Invalid %s", field);
	return mp_err(rq, 400, "400.002.02", msg);
}

void
sb_mpesa_error500(struct sb_rq *rq)
{
	mp_err(rq, 500, "500.003.1001", "Internal Server Error");
}

/* A Kenyan MSISDN as Daraja takes it: 2547XXXXXXXX or 2541XXXXXXXX. */
static bool
ke_msisdn(const char *s)
{
	return strlen(s) == 12 && sb_all_digits(s) &&
	       strncmp(s, "254", 3) == 0 && (s[3] == '7' || s[3] == '1');
}

/* Outcome code for a customer MSISDN (README "Magic numbers"). */
static const char *
magic_code(const char *msisdn, char *buf, size_t cap)
{
	long v;

	if (strcmp(msisdn, MAGIC_SFC) == 0)
		return "SFC_IC0003";
	if (strncmp(msisdn, MAGIC_PREFIX, 6) != 0 || strlen(msisdn) != 12)
		return "0";
	v = strtol(msisdn + 6, NULL, 10);
	snprintf(buf, cap, "%ld", v);
	if (strcmp(code_desc(buf), "The service request failed.") == 0)
		return "0"; /* not a documented code: success */
	return buf;
}

/* A whole, positive KES amount from a number or a string of digits. */
static bool
whole_kes(const json_t *v, int64_t *cents)
{
	if (!sb_amount_cents(v, cents) || *cents < 100 || *cents % 100 != 0)
		return false;
	return true;
}

static bool
is_json_ctype(const struct sb_rq *rq)
{
	const char *ct = sb_rq_header(rq, "Content-Type");

	return ct != NULL && strncasecmp(ct, "application/json", 16) == 0;
}

/* Checks the bearer token; answers and returns false when refused. */
static bool
mp_auth(struct sb_rq *rq, bool stk)
{
	const char *tok = sb_bearer(sb_rq_header(rq, "Authorization"));
	enum sb_tok_rc rc;

	if (tok == NULL) {
		mp_err(rq, 404, "404.001.04", "Invalid Authentication Header");
		return false;
	}
	rc = sb_token_check(rq->sb, SB_OP_MPESA_OAUTH, tok);
	if (rc == SB_TOK_OK && (rq->faults & SB_FBIT(SB_F_EXPIRED_TOKEN)))
		rc = SB_TOK_EXPIRED;
	if (rc != SB_TOK_OK) {
		/* §1.0: the STK pages document 404.001.03; C2B, B2C and
		 * Transaction Status 400.003.01 */
		if (stk)
			mp_err(rq, 404, "404.001.03", "Invalid Access Token");
		else
			mp_err(rq, 400, "400.003.01", "Invalid Access Token");
		return false;
	}
	return true;
}

static void
stk_password(struct sb *sb, const char *ts, char *dst, size_t cap)
{
	char plain[256];
	int n = snprintf(plain, sizeof(plain), "%s%s%s", sb->cr.mpesa_shortcode,
	                 sb->cr.mpesa_passkey, ts);

	if (n < 0 || (size_t)n >= sizeof(plain) ||
	    cap < 4 * (sizeof(plain) / 3) + 4) {
		dst[0] = '\0';
		return;
	}
	sb_b64(dst, (const uint8_t *)plain, (size_t)n);
}

/* BusinessShortCode/Password/Timestamp of STK push and query: answers
 * and returns false when wrong. */
static bool
stk_credentials(struct sb_rq *rq, const json_t *j)
{
	char sc[32], want[400];
	const char *pw = sb_jstr(j, "Password"), *ts = sb_jstr(j, "Timestamp");

	if (!sb_jtext(j, "BusinessShortCode", sc, sizeof(sc)) ||
	    !sb_all_digits(sc)) {
		bad_field(rq, "BusinessShortCode");
		return false;
	}
	if (pw == NULL || *pw == '\0') {
		bad_field(rq, "Password");
		return false;
	}
	if (ts == NULL || !sb_valid_timestamp(ts)) {
		bad_field(rq, "Timestamp");
		return false;
	}
	if (strcmp(sc, rq->sb->cr.mpesa_shortcode) != 0) {
		mp_err(rq, 500, "500.001.1001", "Merchant does not exist");
		return false;
	}
	stk_password(rq->sb, ts, want, sizeof(want));
	if (strlen(pw) != strlen(want) || !sb_ct_eq(pw, want, strlen(want))) {
		mp_err(rq, 500, "500.001.1001", "Wrong credentials");
		return false;
	}
	return true;
}

/* URL rules of C2B registration (§1.4). */
static bool
c2b_url_ok(const char *url)
{
	static const char *const banned[] = {"m-pesa", "mpesa", "safaricom",
	                                     "exe",    "exec",  "cmd",
	                                     "sql",    "query"};
	struct sb_url u;
	char low[SB_URL_MAX];
	size_t i;

	if (sb_url_parse(&u, url) != 0 || strlen(url) >= sizeof(low))
		return false;
	for (i = 0; url[i]; i++)
		low[i] = (char)tolower((unsigned char)url[i]);
	low[i] = '\0';
	for (i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
		if (strstr(low, banned[i]) != NULL)
			return false;
	return true;
}

/* ------------------------------------------------------------ OAuth */

static void
oauth(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	const char *auth = sb_rq_header(rq, "Authorization");
	const char *gt = sb_rq_query(rq, "grant_type");
	int64_t ttl = sb->cr.token_ttl_s ? sb->cr.token_ttl_s : 3599;
	char tok[80], ttl_s[24];

	sb_rq_faults(rq, NULL, false);
	if (rq->method != EVHTTP_REQ_GET) {
		mp_err(rq, 405, "405.001", "Method Not Allowed");
		return;
	}
	if (gt == NULL || strcmp(gt, "client_credentials") != 0) {
		mp_err(rq, 400, "400.008.02", "Invalid grant type passed");
		return;
	}
	if (auth == NULL || strncmp(auth, "Basic ", 6) != 0) {
		mp_err(rq, 400, "400.008.01",
		       "Invalid authentication type passed");
		return;
	}
	if (!sb_basic_ok(auth, sb->cr.mpesa_key, sb->cr.mpesa_secret)) {
		/* UNCONFIRMED: Daraja documents no code for wrong keys */
		mp_err(rq, 400, "400.008.01", "Invalid client credentials");
		return;
	}
	sb_token_issue(sb, SB_OP_MPESA_OAUTH, ttl + 1, tok, sizeof(tok));
	snprintf(ttl_s, sizeof(ttl_s), "%" PRId64, ttl);
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:o}", "access_token", tok, "expires_in",
	                     sb->cr.mpesa_expires_str
	                         ? json_string(ttl_s)
	                         : json_integer((json_int_t)ttl)));
}

/* ------------------------------------------------------------ STK */

static void
checkout_id(struct sb *sb, char *dst, size_t cap)
{
	char ts[16], r[12];

	sb_fmt_time(ts, sizeof(ts), sb_now_ms(), EAT_OFFSET_S, "%d%m%Y%H%M%S");
	rand_id(sb, r, 11, DIGITS);
	snprintf(dst, cap, "ws_CO_%s%s", ts, r);
}

static void
merchant_id(struct sb *sb, char *dst, size_t cap)
{
	char a[5], b[5], c[5], d[17];

	rand_id(sb, a, 4, HEX);
	rand_id(sb, b, 4, HEX);
	rand_id(sb, c, 4, HEX);
	rand_id(sb, d, 16, HEX);
	snprintf(dst, cap, "%s-%s-%s-%s", a, b, c, d);
}

static void
receipt(struct sb *sb, char *dst)
{
	do {
		rand_id(sb, dst, 10, UPPER_ALNUM);
		dst[0] = (char)('A' + sb_rng_next(&sb->rng_id) % 26);
	} while (sb_charge_by_alt(sb, SB_MPESA, dst) != NULL);
}

static int
stk_push(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	char party_a[32], party_b[32], phone[32], mrid[64], buf[16];
	const char *tt = sb_jstr(j, "TransactionType");
	const char *cb = sb_jstr(j, "CallBackURL");
	const char *aref = sb_jstr(j, "AccountReference");
	const json_t *desc = json_object_get(j, "TransactionDesc");
	const char *code;
	struct sb_charge *c;
	struct sb_url u;
	int64_t cents;

	if (!stk_credentials(rq, j))
		return -1;
	if (tt == NULL || (strcmp(tt, "CustomerPayBillOnline") != 0 &&
	                   strcmp(tt, "CustomerBuyGoodsOnline") != 0))
		return bad_field(rq, "TransactionType");
	if (!whole_kes(json_object_get(j, "Amount"), &cents))
		return bad_field(rq, "Amount");
	if (!sb_jtext(j, "PartyA", party_a, sizeof(party_a)) ||
	    !ke_msisdn(party_a))
		return bad_field(rq, "PartyA");
	if (!sb_jtext(j, "PartyB", party_b, sizeof(party_b)) ||
	    !sb_all_digits(party_b))
		return bad_field(rq, "PartyB");
	if (!sb_jtext(j, "PhoneNumber", phone, sizeof(phone)) ||
	    !ke_msisdn(phone))
		return bad_field(rq, "PhoneNumber");
	if (cb == NULL || sb_url_parse(&u, cb) != 0)
		return bad_field(rq, "CallBackURL");
	if (aref == NULL || *aref == '\0' || strlen(aref) > 12)
		return bad_field(rq, "AccountReference");
	if (desc != NULL &&
	    (!json_is_string(desc) || strlen(json_string_value(desc)) > 13))
		return bad_field(rq, "TransactionDesc");

	c = sb_charge_new(sb, SB_MPESA, SB_K_STKPUSH);
	if (c == NULL)
		return mp_err(rq, 500, "500.003.02",
		              "Error Occurred: Spike Arrest Violation");
	checkout_id(sb, c->ref, sizeof(c->ref));
	merchant_id(sb, mrid, sizeof(mrid));
	sb_copy(c->cref, sizeof(c->cref), aref);
	receipt(sb, c->alt);
	sb_copy(c->msisdn, sizeof(c->msisdn), phone);
	sb_copy(c->currency, sizeof(c->currency), "KES");
	c->cents = cents;
	c->url = sb_xstrdup(cb);
	c->echo = json_pack("{s:s}", "MerchantRequestID", mrid);
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	code =
	    cents > MAX_STK_CENTS ? "3" : magic_code(phone, buf, sizeof(buf));
	sb_copy(c->code, sizeof(c->code), code);
	c->outcome = strcmp(code, "0") == 0 ? SB_SUCCEEDED : SB_FAILED;
	sb_charge_index(sb, c);
	rq->charge = c;
	if (strcmp(phone, MAGIC_PENDING) != 0)
		sb_charge_schedule(sb, c);
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:s,s:s,s:s}", "MerchantRequestID", mrid,
	                     "CheckoutRequestID", c->ref, "ResponseCode", "0",
	                     "ResponseDescription",
	                     "Success. Request accepted for processing",
	                     "CustomerMessage",
	                     "Success. Request accepted for processing"));
	return 0;
}

static int
stk_query(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *id = sb_jstr(j, "CheckoutRequestID");
	struct sb_charge *c;
	char rid[48];

	if (!stk_credentials(rq, j))
		return -1;
	if (id == NULL)
		return bad_field(rq, "CheckoutRequestID");
	c = sb_charge_by_ref(sb, SB_MPESA, id);
	if (c == NULL || c->kind != SB_K_STKPUSH)
		return bad_field(rq, "CheckoutRequestID");
	if (c->state == SB_PENDING) {
		/* §1.3: the standard answer while the customer has not
		 * answered; HTTP status UNCONFIRMED, 500 per the code */
		sb_copy(rid, sizeof(rid), c->ref);
		sb_rq_json(rq, 500,
		           json_pack("{s:s,s:s,s:s}", "requestId", rid,
		                     "errorCode", "500.001.1001",
		                     "errorMessage",
		                     "The transaction is being processed"));
		return 0;
	}
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:O,s:s,s:s,s:s}", "ResponseCode", "0",
	                     "ResponseDescription",
	                     "The service request has been accepted "
	                     "successfully",
	                     "MerchantRequestID",
	                     json_object_get(c->echo, "MerchantRequestID"),
	                     "CheckoutRequestID", c->ref, "ResultCode", c->code,
	                     "ResultDesc", code_desc(c->code)));
	return 0;
}

static json_t *
item(const char *name, json_t *value)
{
	return value ? json_pack("{s:s,s:o}", "Name", name, "Value", value)
	             : json_pack("{s:s}", "Name", name);
}

static json_t *
stk_callback_body(const struct sb_charge *c, bool lie)
{
	bool ok = (c->state == SB_SUCCEEDED || c->state == SB_REVERSED) != lie;
	const char *code = ok ? "0" : lie ? "1032" : c->code;
	json_t *cb = json_pack("{s:O,s:s,s:o,s:s}", "MerchantRequestID",
	                       json_object_get(c->echo, "MerchantRequestID"),
	                       "CheckoutRequestID", c->ref, "ResultCode",
	                       code_json(code), "ResultDesc", code_desc(code));

	if (ok) {
		char ts[16];

		sb_fmt_time(ts, sizeof(ts), c->done_ms, EAT_OFFSET_S,
		            "%Y%m%d%H%M%S");
		/* Amount a JSON real as in the sample (1.00); Balance
		 * without Value as older callbacks carry it (§1.2) */
		json_object_set_new(
		    cb, "CallbackMetadata",
		    json_pack(
			"{s:[o,o,o,o,o]}", "Item",
			item("Amount", json_real((double)c->cents / 100.0)),
			item("MpesaReceiptNumber", json_string(c->alt)),
			item("Balance", NULL),
			item("TransactionDate",
		             json_integer(strtoll(ts, NULL, 10))),
			item("PhoneNumber",
		             json_integer(strtoll(c->msisdn, NULL, 10)))));
	}
	return json_pack("{s:{s:o}}", "Body", "stkCallback", cb);
}

/* ------------------------------------------------------------ C2B */

static struct sb_c2b_reg *
c2b_find(struct sb *sb, const char *shortcode)
{
	size_t i;

	for (i = 0; i < sb->n_c2b; i++)
		if (strcmp(sb->c2b[i].shortcode, shortcode) == 0)
			return &sb->c2b[i];
	return NULL;
}

void
sb_mpesa_reset(struct sb *sb)
{
	size_t i;

	for (i = 0; i < sb->n_c2b; i++) {
		free(sb->c2b[i].confirm_url);
		free(sb->c2b[i].validate_url);
	}
	sb->n_c2b = 0;
	sb->b2c_funds_cents = 895926960; /* §1.6 sample: 8959269.60 */
}

static void
conversation_id(struct sb *sb, char *dst, size_t cap, const char *prefix)
{
	char a[6], b[9], c[2], d[21], ts[10];

	if (prefix == NULL) {
		rand_id(sb, a, 5, DIGITS);
		rand_id(sb, b, 8, DIGITS);
		rand_id(sb, c, 1, DIGITS);
		snprintf(dst, cap, "%s-%s-%s", a, b, c);
		return;
	}
	sb_fmt_time(ts, sizeof(ts), sb_now_ms(), EAT_OFFSET_S, "%Y%m%d");
	rand_id(sb, d, 20, HEX);
	snprintf(dst, cap, "%s_%s_%s", prefix, ts, d);
}

static int
c2b_register(struct sb_rq *rq, json_t *j, int version)
{
	struct sb *sb = rq->sb;
	char sc[16], oc[64];
	const char *rt = sb_jstr(j, "ResponseType");
	const char *cu = sb_jstr(j, "ConfirmationURL");
	const char *vu = sb_jstr(j, "ValidationURL");
	struct sb_c2b_reg *r;

	if (!sb_jtext(j, "ShortCode", sc, sizeof(sc)) || !sb_all_digits(sc))
		return bad_field(rq, "ShortCode");
	if (rt == NULL ||
	    (strcmp(rt, "Completed") != 0 && strcmp(rt, "Cancelled") != 0))
		return bad_field(rq, "ResponseType");
	if (cu == NULL || !c2b_url_ok(cu))
		return bad_field(rq, "ConfirmationURL");
	if (vu == NULL || !c2b_url_ok(vu))
		return bad_field(rq, "ValidationURL");
	r = c2b_find(sb, sc);
	if (r == NULL) {
		if (sb->n_c2b >= SB_MAX_C2B_URLS)
			return mp_err(rq, 500, "500.003.1001",
			              "Internal Server Error");
		r = &sb->c2b[sb->n_c2b++];
		memset(r, 0, sizeof(*r));
	}
	/* the sandbox lets a shortcode register again (production answers
	 * "Urls are already registered."; README "Deviations") */
	free(r->confirm_url);
	free(r->validate_url);
	sb_copy(r->shortcode, sizeof(r->shortcode), sc);
	sb_copy(r->response_type, sizeof(r->response_type), rt);
	r->confirm_url = sb_xstrdup(cu);
	r->validate_url = sb_xstrdup(vu);
	r->version = version;
	sb_log(sb, SB_LOG_INFO, "event=c2b_registered shortcode=%s version=%d",
	       sc, version);
	conversation_id(sb, oc, sizeof(oc), NULL);
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:s}", "OriginatorCoversationID", oc,
	                     "ResponseCode", "0", "ResponseDescription",
	                     "Success"));
	return 0;
}

/* One customer payment to a paybill/till: validation, then (accepted)
 * the charge and the confirmation. */
struct c2b_flow {
	struct sb *sb;
	uint64_t gen;
	struct evhttp_request *ctl_req; /* NULL when started by the API */
	char shortcode[16], msisdn[24], bill_ref[64], type[16], first[32];
	char trans_id[16], trans_time[16];
	int64_t cents;
	int val_status, conf_status;
	char val_code[32];
	const char *result;
	struct sb_charge *c;
};

static json_t *
c2b_body(struct c2b_flow *f, const struct sb_c2b_reg *r, bool confirm,
         int64_t balance)
{
	char amt[32], bal[32], who[80];

	snprintf(amt, sizeof(amt), "%" PRId64 ".%02" PRId64, f->cents / 100,
	         f->cents % 100);
	if (confirm)
		snprintf(bal, sizeof(bal), "%" PRId64 ".%02" PRId64,
		         balance / 100, balance % 100);
	else
		bal[0] = '\0'; /* blank in validation requests */
	if (r->version == 1)
		sb_sha256_hex(who, f->msisdn);
	else
		snprintf(who, sizeof(who), "%.4s ***** %s", f->msisdn,
		         f->msisdn + strlen(f->msisdn) - 3);
	return json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,"
	    "s:s}",
	    "TransactionType", f->type, "TransID", f->trans_id, "TransTime",
	    f->trans_time, "TransAmount", amt, "BusinessShortCode",
	    f->shortcode, "BillRefNumber", f->bill_ref, "InvoiceNumber", "",
	    "OrgAccountBalance", bal, "ThirdPartyTransID", "", "MSISDN", who,
	    "FirstName", f->first, "MiddleName", "", "LastName", "");
}

static void
c2b_finish(struct c2b_flow *f)
{
	struct sb *sb = f->sb;

	sb_log(sb, SB_LOG_INFO,
	       "event=c2b_done shortcode=%s trans_id=%s result=%s "
	       "validation_status=%d confirmation_status=%d",
	       f->shortcode, f->trans_id, f->result, f->val_status,
	       f->conf_status);
	if (f->ctl_req != NULL && !sb->stopping) {
		json_t *j = json_pack("{s:s,s:s,s:{s:i,s:s},s:{s:i}}",
		                      "TransID", f->trans_id, "result",
		                      f->result, "validation", "status",
		                      f->val_status, "ResultCode", f->val_code,
		                      "confirmation", "status", f->conf_status);
		char *s = json_dumps(j, JSON_COMPACT);
		struct evbuffer *b = evbuffer_new();

		if (s == NULL || b == NULL)
			abort();
		evbuffer_add(b, s, strlen(s));
		evhttp_add_header(evhttp_request_get_output_headers(f->ctl_req),
		                  "Content-Type", "application/json");
		evhttp_send_reply(f->ctl_req, 200, NULL, b);
		evbuffer_free(b);
		free(s);
		json_decref(j);
	} else if (f->ctl_req != NULL &&
	           evhttp_request_get_connection(f->ctl_req) == NULL) {
		evhttp_request_free(f->ctl_req); /* detached, stopping */
	}
	free(f);
}

static void
c2b_confirmed(struct sb *sb, void *arg, int status, const char *body,
              size_t len)
{
	struct c2b_flow *f = arg;

	(void)body;
	(void)len;
	f->conf_status = status;
	if (f->gen == sb->ledger_gen && status >= 200 && status < 300)
		f->c->callbacks_ok++;
	c2b_finish(f);
}

static void
c2b_decide(struct c2b_flow *f, bool accept, const char *code)
{
	struct sb *sb = f->sb;
	struct sb_c2b_reg *r = c2b_find(sb, f->shortcode);
	struct sb_charge *c;
	json_t *body;
	char *s;

	sb_copy(f->val_code, sizeof(f->val_code), code);
	if (sb->stopping || r == NULL) {
		f->result = "cancelled";
		c2b_finish(f);
		return;
	}
	c = sb_charge_new(sb, SB_MPESA, SB_K_C2B);
	if (c == NULL) {
		f->result = "refused";
		c2b_finish(f);
		return;
	}
	sb_copy(c->ref, sizeof(c->ref), f->trans_id);
	sb_copy(c->alt, sizeof(c->alt), f->trans_id);
	sb_copy(c->msisdn, sizeof(c->msisdn), f->msisdn);
	sb_copy(c->currency, sizeof(c->currency), "KES");
	c->cents = f->cents;
	c->echo = json_pack("{s:s,s:s}", "BillRefNumber", f->bill_ref,
	                    "ShortCode", f->shortcode);
	c->done_ms = sb_now_ms();
	sb_charge_index(sb, c);
	f->c = c;
	if (!accept) {
		c->state = c->outcome = SB_FAILED;
		sb_copy(c->code, sizeof(c->code), code);
		f->result = "rejected";
		c2b_finish(f);
		return;
	}
	c->state = c->outcome = SB_SUCCEEDED;
	sb_copy(c->code, sizeof(c->code), "0");
	c->url = sb_xstrdup(r->confirm_url);
	sb->b2c_funds_cents += 0; /* C2B lands in the paybill, not B2C */
	f->result = "completed";
	body = c2b_body(f, r, true, f->cents);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		abort();
	c->callbacks_sent++;
	if (sb_post(sb, r->confirm_url, "POST", s, NULL, 0, c2b_confirmed, f) !=
	    0)
		c2b_finish(f);
	free(s);
}

static void
c2b_validated(struct sb *sb, void *arg, int status, const char *body,
              size_t len)
{
	struct c2b_flow *f = arg;
	struct sb_c2b_reg *r = c2b_find(sb, f->shortcode);
	json_t *j = NULL;
	char code[32] = "";
	bool accept;

	f->val_status = status;
	if (status >= 200 && status < 300 && body != NULL)
		j = json_loadb(body, len, 0, NULL);
	if (j != NULL && sb_jtext(j, "ResultCode", code, sizeof(code))) {
		accept = strcmp(code, "0") == 0;
	} else {
		/* unreachable or no usable answer: ResponseType decides */
		accept =
		    r != NULL && strcmp(r->response_type, "Completed") == 0;
		snprintf(code, sizeof(code), "%s",
		         accept ? "default:Completed" : "default:Cancelled");
	}
	json_decref(j);
	c2b_decide(f, accept, code);
}

/* Starts a C2B payment; 0, or -1 with *why (nothing started). */
static int
c2b_start(struct sb *sb, struct evhttp_request *ctl_req, const char *sc,
          const char *msisdn, int64_t cents, const char *bill_ref,
          const char *type, const char *first, const char **why)
{
	struct sb_c2b_reg *r = c2b_find(sb, sc);
	struct c2b_flow *f;
	json_t *body;
	char *s;

	if (r == NULL) {
		*why = "shortcode has no registered URLs";
		return -1;
	}
	f = sb_xcalloc(1, sizeof(*f));
	f->sb = sb;
	f->gen = sb->ledger_gen;
	f->ctl_req = ctl_req;
	sb_copy(f->shortcode, sizeof(f->shortcode), sc);
	sb_copy(f->msisdn, sizeof(f->msisdn), msisdn);
	sb_copy(f->bill_ref, sizeof(f->bill_ref), bill_ref);
	sb_copy(f->type, sizeof(f->type), type);
	sb_copy(f->first, sizeof(f->first), first);
	f->cents = cents;
	f->result = "pending";
	do {
		rand_id(sb, f->trans_id, 10, UPPER_ALNUM);
		f->trans_id[0] = (char)('A' + sb_rng_next(&sb->rng_id) % 26);
	} while (sb_charge_by_alt(sb, SB_MPESA, f->trans_id) != NULL);
	sb_fmt_time(f->trans_time, sizeof(f->trans_time), sb_now_ms(),
	            EAT_OFFSET_S, "%Y%m%d%H%M%S");
	body = c2b_body(f, r, false, 0);
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		abort();
	if (sb_post(sb, r->validate_url, "POST", s, NULL, 0, c2b_validated,
	            f) != 0) {
		f->val_status = 0;
		free(s);
		c2b_validated(sb, f, 0, NULL, 0);
		return 0;
	}
	free(s);
	return 0;
}

void
sb_mpesa_c2b_pay(struct sb *sb, struct evhttp_request *req, json_t *j)
{
	char sc[16], msisdn[24];
	const char *bill = sb_jstr(j, "bill_ref"), *type = sb_jstr(j, "type");
	const char *first = sb_jstr(j, "first_name"), *why = NULL;
	int64_t cents;
	int status = 400;
	char *s;
	struct evbuffer *b;

	if (!sb_jtext(j, "shortcode", sc, sizeof(sc)) || !sb_all_digits(sc))
		why = "shortcode: digits";
	else if (!sb_jtext(j, "msisdn", msisdn, sizeof(msisdn)) ||
	         !ke_msisdn(msisdn))
		why = "msisdn: 2547XXXXXXXX";
	else if (!sb_amount_cents(json_object_get(j, "amount"), &cents) ||
	         cents <= 0)
		why = "amount: a positive decimal";
	else if (bill == NULL || strlen(bill) > 20)
		why = "bill_ref: a string of at most 20 characters";
	else if (type != NULL && strcmp(type, "Pay Bill") != 0 &&
	         strcmp(type, "Buy Goods") != 0)
		why = "type: \"Pay Bill\" or \"Buy Goods\"";
	else if (c2b_start(sb, req, sc, msisdn, cents, bill,
	                   type ? type : "Pay Bill", first ? first : "JOHN",
	                   &why) == 0) {
		json_decref(j);
		return; /* answered when the flow ends */
	} else {
		status = 404;
	}
	json_decref(j);
	j = json_pack("{s:s}", "error", why);
	s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	b = evbuffer_new();
	if (s == NULL || b == NULL)
		abort();
	evbuffer_add(b, s, strlen(s));
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "application/json");
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
	free(s);
}

static int
c2b_simulate(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	char sc[16], msisdn[24], oc[64];
	const char *cmd = sb_jstr(j, "CommandID");
	const char *bill = sb_jstr(j, "BillRefNumber"), *why;
	int64_t cents;

	if (!sb_jtext(j, "ShortCode", sc, sizeof(sc)) || !sb_all_digits(sc))
		return bad_field(rq, "ShortCode");
	if (cmd == NULL || (strcmp(cmd, "CustomerPayBillOnline") != 0 &&
	                    strcmp(cmd, "CustomerBuyGoodsOnline") != 0))
		return bad_field(rq, "CommandID");
	if (!whole_kes(json_object_get(j, "Amount"), &cents))
		return bad_field(rq, "Amount");
	if (!sb_jtext(j, "Msisdn", msisdn, sizeof(msisdn)) ||
	    !ke_msisdn(msisdn))
		return bad_field(rq, "Msisdn");
	if (bill == NULL)
		bill = "";
	if (c2b_find(sb, sc) == NULL)
		return bad_field(rq, "ShortCode");
	if (c2b_start(sb, NULL, sc, msisdn, cents, bill,
	              strcmp(cmd, "CustomerPayBillOnline") == 0 ? "Pay Bill"
	                                                        : "Buy Goods",
	              "JOHN", &why) != 0)
		return bad_field(rq, "ShortCode");
	conversation_id(sb, oc, sizeof(oc), NULL);
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:s}", "OriginatorCoversationID", oc,
	                     "ResponseCode", "0", "ResponseDescription",
	                     "Accept the service request successfully."));
	return 0;
}

/* ------------------------------------------------------------ B2C */

/* Initiator + SecurityCredential: false when they would fail with 2001. */
static bool
initiator_ok(struct sb *sb, const char *name, const char *cred)
{
	bool ok_cred = cred != NULL && sb_tls_credential_ok(
					   sb, cred, sb->cr.mpesa_initiator_pw);

	return name != NULL && strcmp(name, sb->cr.mpesa_initiator) == 0 &&
	       ok_cred;
}

static const char *
jstr2(const json_t *j, const char *a, const char *b)
{
	const char *s = sb_jstr(j, a);

	return s ? s : sb_jstr(j, b);
}

static int
b2c(struct sb_rq *rq, json_t *j, bool v3)
{
	struct sb *sb = rq->sb;
	const char *ocid = sb_jstr(j, "OriginatorConversationID");
	const char *name = sb_jstr(j, "InitiatorName");
	const char *cred = sb_jstr(j, "SecurityCredential");
	const char *cmd = sb_jstr(j, "CommandID");
	const char *remarks = sb_jstr(j, "Remarks");
	const char *qto = sb_jstr(j, "QueueTimeOutURL");
	const char *res = sb_jstr(j, "ResultURL");
	const json_t *occ = json_object_get(j, "Occassion");
	char party_a[32], party_b[32], buf[16], gen_ocid[64];
	const char *code;
	struct sb_charge *c;
	struct sb_url u;
	int64_t cents;

	if (occ == NULL)
		occ = json_object_get(j, "Occasion"); /* v1 spelling */
	if (v3 && (ocid == NULL || *ocid == '\0' || strlen(ocid) >= SB_REF_MAX))
		return bad_field(rq, "OriginatorConversationID");
	if (name == NULL || *name == '\0')
		return bad_field(rq, "InitiatorName");
	if (cred == NULL || *cred == '\0')
		return bad_field(rq, "SecurityCredential");
	if (cmd == NULL || (strcmp(cmd, "SalaryPayment") != 0 &&
	                    strcmp(cmd, "BusinessPayment") != 0 &&
	                    strcmp(cmd, "PromotionPayment") != 0))
		return bad_field(rq, "CommandID");
	if (!whole_kes(json_object_get(j, "Amount"), &cents))
		return bad_field(rq, "Amount");
	if (!sb_jtext(j, "PartyA", party_a, sizeof(party_a)) ||
	    !sb_all_digits(party_a))
		return bad_field(rq, "PartyA");
	if (!sb_jtext(j, "PartyB", party_b, sizeof(party_b)) ||
	    !ke_msisdn(party_b))
		return bad_field(rq, "PartyB");
	if (remarks == NULL || strlen(remarks) < 2 || strlen(remarks) > 100)
		return bad_field(rq, "Remarks");
	if (qto == NULL || sb_url_parse(&u, qto) != 0)
		return bad_field(rq, "QueueTimeOutURL");
	if (res == NULL || sb_url_parse(&u, res) != 0)
		return bad_field(rq, "ResultURL");
	if (occ != NULL &&
	    (!json_is_string(occ) || strlen(json_string_value(occ)) > 100))
		return bad_field(rq, "Occassion");
	if (ocid != NULL && sb_charge_by_cref(sb, SB_MPESA, ocid) != NULL)
		return mp_err(rq, 500, "500.002.1001",
		              "Duplicate OriginatorConversationID.");
	if (ocid == NULL) {
		conversation_id(sb, gen_ocid, sizeof(gen_ocid), NULL);
		ocid = gen_ocid;
	}
	c = sb_charge_new(sb, SB_MPESA, SB_K_B2C);
	if (c == NULL)
		return mp_err(rq, 500, "500.003.02",
		              "Error Occurred: Spike Arrest Violation");
	conversation_id(sb, c->ref, sizeof(c->ref), "AG");
	sb_copy(c->cref, sizeof(c->cref), ocid);
	receipt(sb, c->alt);
	sb_copy(c->msisdn, sizeof(c->msisdn), party_b);
	sb_copy(c->currency, sizeof(c->currency), "KES");
	c->cents = cents;
	c->url = sb_xstrdup(res);
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	if (!initiator_ok(sb, name, cred))
		code = "2001";
	else if (cents < MIN_B2C_CENTS)
		code = "2";
	else if (cents > MAX_STK_CENTS)
		code = "3";
	else
		code = magic_code(party_b, buf, sizeof(buf));
	sb_copy(c->code, sizeof(c->code), code);
	c->outcome = strcmp(code, "0") == 0 ? SB_SUCCEEDED : SB_FAILED;
	c->echo = json_pack("{s:s}", "PartyA", party_a);
	sb_charge_index(sb, c);
	rq->charge = c;
	if (strcmp(party_b, MAGIC_PENDING) != 0)
		sb_charge_schedule(sb, c);
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:s,s:s}", "ConversationID", c->ref,
	                     "OriginatorConversationID", ocid, "ResponseCode",
	                     "0", "ResponseDescription",
	                     "Accept the service request successfully."));
	return 0;
}

static json_t *
param(const char *key, json_t *value)
{
	return json_pack("{s:s,s:o}", "Key", key, "Value", value);
}

static json_t *
money_real(int64_t cents)
{
	return json_real((double)cents / 100.0);
}

static json_t *
result_envelope(const char *code, const char *ocid, const char *conv,
                const char *txid, json_t *params, const char *ref_key,
                const char *ref_value)
{
	json_t *r = json_pack("{s:i,s:o,s:s,s:s,s:s,s:s}", "ResultType", 0,
	                      "ResultCode", code_json(code), "ResultDesc",
	                      code_desc(code), "OriginatorConversationID", ocid,
	                      "ConversationID", conv, "TransactionID", txid);

	if (params != NULL)
		json_object_set_new(
		    r, "ResultParameters",
		    json_pack("{s:o}", "ResultParameter", params));
	json_object_set_new(r, "ReferenceData",
	                    json_pack("{s:{s:s,s:s}}", "ReferenceItem", "Key",
	                              ref_key, "Value", ref_value));
	return json_pack("{s:o}", "Result", r);
}

static json_t *
b2c_result_body(struct sb *sb, const struct sb_charge *c, bool lie)
{
	bool ok = (c->state == SB_SUCCEEDED || c->state == SB_REVERSED) != lie;
	const char *code = ok ? "0" : lie ? "1" : c->code;
	json_t *params = NULL;

	if (ok) {
		char when[32], who[64];

		sb_fmt_time(when, sizeof(when), c->done_ms, EAT_OFFSET_S,
		            "%d.%m.%Y %H:%M:%S");
		snprintf(who, sizeof(who), "%s - JOHN DOE", c->msisdn);
		params = json_pack(
		    "[o,o,o,o,o,o,o,o]",
		    param("TransactionAmount",
		          json_integer((json_int_t)(c->cents / 100))),
		    param("TransactionReceipt", json_string(c->alt)),
		    param("ReceiverPartyPublicName", json_string(who)),
		    param("TransactionCompletedDateTime", json_string(when)),
		    param("B2CUtilityAccountAvailableFunds",
		          money_real(sb->b2c_funds_cents)),
		    param("B2CWorkingAccountAvailableFunds",
		          money_real(119937100)),
		    param("B2CRecipientIsRegisteredCustomer", json_string("Y")),
		    param("B2CChargesPaidAccountAvailableFunds",
		          money_real(-198000)));
	}
	return result_envelope(
	    code, c->cref, c->ref, c->alt, params, "QueueTimeoutURL",
	    "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/"
	    "submit");
}

/* ------------------------------------------------------------ status */

static void
accepted(struct sb_rq *rq, const char *conv, const char *ocid)
{
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:s,s:s}", "OriginatorConversationID",
	                     ocid, "ConversationID", conv, "ResponseCode", "0",
	                     "ResponseDescription",
	                     "Accept the service request successfully."));
}

static const char *
tx_status_text(const struct sb_charge *c)
{
	switch (c->state) {
	case SB_PENDING:
		return "Pending";
	case SB_SUCCEEDED:
		return "Completed";
	case SB_FAILED:
		return "Failed";
	default:
		return "Reversed";
	}
}

static int
tx_status(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *name = sb_jstr(j, "Initiator");
	const char *cred = sb_jstr(j, "SecurityCredential");
	const char *cmd = jstr2(j, "CommandID", "Command ID");
	const char *txid = jstr2(j, "TransactionID", "Transaction ID");
	const char *orig = sb_jstr(j, "OriginalConversationID");
	const char *res = sb_jstr(j, "ResultURL");
	const char *qto = sb_jstr(j, "QueueTimeOutURL");
	const char *remarks = sb_jstr(j, "Remarks");
	char party_a[32], idt[8], conv[64], ocid[64];
	struct sb_charge *c = NULL;
	struct sb_url u;
	json_t *body, *params = NULL;
	const char *code = "0";
	char *s;

	if (name == NULL || *name == '\0')
		return bad_field(rq, "Initiator");
	if (cred == NULL || *cred == '\0')
		return bad_field(rq, "SecurityCredential");
	if (cmd == NULL || strcmp(cmd, "TransactionStatusQuery") != 0)
		return bad_field(rq, "CommandID");
	if ((txid == NULL || *txid == '\0') && orig == NULL)
		return bad_field(rq, "TransactionID");
	if (!sb_jtext(j, "PartyA", party_a, sizeof(party_a)) ||
	    !sb_all_digits(party_a))
		return bad_field(rq, "PartyA");
	if (!sb_jtext(j, "IdentifierType", idt, sizeof(idt)) ||
	    (strcmp(idt, "1") != 0 && strcmp(idt, "2") != 0 &&
	     strcmp(idt, "4") != 0))
		return bad_field(rq, "IdentifierType");
	if (res == NULL || sb_url_parse(&u, res) != 0)
		return bad_field(rq, "ResultURL");
	if (qto == NULL || sb_url_parse(&u, qto) != 0)
		return bad_field(rq, "QueueTimeOutURL");
	if (remarks == NULL || *remarks == '\0')
		return bad_field(rq, "Remarks");
	conversation_id(sb, conv, sizeof(conv), "AG");
	conversation_id(sb, ocid, sizeof(ocid), NULL);
	if (txid != NULL && *txid != '\0')
		c = sb_charge_by_alt(sb, SB_MPESA, txid);
	if (c == NULL && orig != NULL && *orig != '\0') {
		c = sb_charge_by_cref(sb, SB_MPESA, orig);
		if (c == NULL)
			c = sb_charge_by_ref(sb, SB_MPESA, orig);
	}
	if (!initiator_ok(sb, name, cred)) {
		code = "2001";
	} else if (c == NULL || (c->state == SB_PENDING && txid != NULL &&
	                         *txid != '\0' && strcmp(txid, c->alt) == 0)) {
		code = "R000001"; /* a receipt is not known before success */
	} else {
		char init[16], fin[16], debit[64], credit[64];

		sb_fmt_time(init, sizeof(init), c->created_ms, EAT_OFFSET_S,
		            "%Y%m%d%H%M%S");
		sb_fmt_time(fin, sizeof(fin),
		            c->done_ms ? c->done_ms : c->created_ms,
		            EAT_OFFSET_S, "%Y%m%d%H%M%S");
		if (c->kind == SB_K_B2C) {
			snprintf(debit, sizeof(debit), "%s - soko sandbox",
			         json_string_value(
				     json_object_get(c->echo, "PartyA")));
			snprintf(credit, sizeof(credit), "%s - JOHN DOE",
			         c->msisdn);
		} else {
			snprintf(debit, sizeof(debit), "%s - JOHN DOE",
			         c->msisdn);
			snprintf(credit, sizeof(credit), "%s - soko sandbox",
			         sb->cr.mpesa_shortcode);
		}
		params = json_pack(
		    "[o,o,o,o,o,o,{s:s},o,o,o,o,o,o]",
		    param("DebitPartyName", json_string(debit)),
		    param("CreditPartyName", json_string(credit)),
		    param("OriginatorConversationID",
		          json_string(c->kind == SB_K_B2C ? c->cref : c->ref)),
		    param("InitiatedTime",
		          json_integer(strtoll(init, NULL, 10))),
		    param("DebitAccountType",
		          json_string(c->kind == SB_K_B2C
		                          ? "Utility Account"
		                          : "MMF Account For Customer")),
		    param("DebitPartyCharges", json_string("")), "Key",
		    "TransactionReason",
		    param("ReasonType",
		          json_string(c->kind == SB_K_B2C
		                          ? "Business Payment to Customer "
		                            "via API"
		                          : "Pay Bill Online")),
		    param("TransactionStatus", json_string(tx_status_text(c))),
		    param("FinalisedTime",
		          json_integer(strtoll(fin, NULL, 10))),
		    param("Amount", money_real(c->cents)),
		    param("ConversationID", json_string(c->ref)),
		    param("ReceiptNo", json_string(c->alt)));
	}
	body = result_envelope(code, ocid, conv,
	                       c != NULL && params != NULL ? c->alt : "",
	                       params, "Occasion", "");
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		abort();
	if (!(rq->faults & SB_FBIT(SB_F_NO_CALLBACK)))
		sb_post_later(sb, sb->callback_delay_ms, sb_xstrdup(res), s);
	else
		free(s);
	accepted(rq, conv, ocid);
	return 0;
}

/* ------------------------------------------------------------ reversal */

static int
reversal(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *name = sb_jstr(j, "Initiator");
	const char *cred = sb_jstr(j, "SecurityCredential");
	const char *cmd = sb_jstr(j, "CommandID");
	const char *txid = sb_jstr(j, "TransactionID");
	const char *res = sb_jstr(j, "ResultURL");
	const char *qto = sb_jstr(j, "QueueTimeOutURL");
	const char *remarks = sb_jstr(j, "Remarks");
	char recv[32], rit[8], conv[64], ocid[64], rcpt[16];
	const char *code = "0";
	struct sb_charge *c;
	struct sb_url u;
	json_t *body, *params = NULL;
	int64_t cents;
	char *s;

	if (name == NULL || *name == '\0')
		return bad_field(rq, "Initiator");
	if (cred == NULL || *cred == '\0')
		return bad_field(rq, "SecurityCredential");
	if (cmd == NULL || strcmp(cmd, "TransactionReversal") != 0)
		return bad_field(rq, "CommandID");
	if (txid == NULL || *txid == '\0')
		return bad_field(rq, "TransactionID");
	if (!whole_kes(json_object_get(j, "Amount"), &cents))
		return bad_field(rq, "Amount");
	if (!sb_jtext(j, "ReceiverParty", recv, sizeof(recv)) ||
	    !sb_all_digits(recv))
		return bad_field(rq, "ReceiverParty");
	/* Daraja spells it RecieverIdentifierType; accept both */
	if (!sb_jtext(j, "RecieverIdentifierType", rit, sizeof(rit)) &&
	    !sb_jtext(j, "ReceiverIdentifierType", rit, sizeof(rit)))
		return bad_field(rq, "RecieverIdentifierType");
	if (res == NULL || sb_url_parse(&u, res) != 0)
		return bad_field(rq, "ResultURL");
	if (qto == NULL || sb_url_parse(&u, qto) != 0)
		return bad_field(rq, "QueueTimeOutURL");
	if (remarks == NULL || *remarks == '\0')
		return bad_field(rq, "Remarks");
	conversation_id(sb, conv, sizeof(conv), "AG");
	conversation_id(sb, ocid, sizeof(ocid), NULL);
	c = sb_charge_by_alt(sb, SB_MPESA, txid);
	if (!initiator_ok(sb, name, cred))
		code = "2001";
	else if (c == NULL || c->kind == SB_K_B2C ||
	         (c->state == SB_PENDING && strcmp(c->alt, txid) == 0) ||
	         c->state == SB_FAILED)
		code = "R000002";
	else if (c->state == SB_REVERSED)
		code = "R000003";
	else if (c->cents != cents)
		code = "R000004";
	else if (strcmp(c->msisdn, MAGIC_NO_REVERSAL) == 0)
		code = "1";
	rcpt[0] = '\0';
	if (strcmp(code, "0") == 0) {
		char when[16], debit[64];

		/* committed now: the result only reports it (README) */
		c->state = SB_REVERSED;
		sb_log(sb, SB_LOG_INFO, "event=reversed ref=%s receipt=%s",
		       c->ref, c->alt);
		rand_id(sb, rcpt, 10, UPPER_ALNUM);
		rcpt[0] = (char)('A' + sb_rng_next(&sb->rng_id) % 26);
		sb_fmt_time(when, sizeof(when), sb_now_ms(), EAT_OFFSET_S,
		            "%Y%m%d%H%M%S");
		snprintf(debit, sizeof(debit), "%s - soko sandbox", recv);
		params = json_pack(
		    "[o,o,o,o,o,o,o]",
		    param("DebitAccountBalance",
		          json_string("Utility Account|KES|0.00|0.00|0.00|"
		                      "0.00")),
		    param("Amount", money_real(cents)),
		    param("TransCompletedTime",
		          json_integer(strtoll(when, NULL, 10))),
		    param("OriginalTransactionID", json_string(txid)),
		    param("Charge", json_real(0.0)),
		    param("CreditPartyPublicName", json_string(c->msisdn)),
		    param("DebitPartyPublicName", json_string(debit)));
	}
	body = result_envelope(
	    code, ocid, conv, rcpt, params, "QueueTimeoutURL",
	    "https://internalsandbox.safaricom.co.ke/mpesa/reversalresults/"
	    "v1/submit");
	s = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (s == NULL)
		abort();
	if (!(rq->faults & SB_FBIT(SB_F_NO_CALLBACK)))
		sb_post_later(sb, sb->callback_delay_ms, sb_xstrdup(res), s);
	else
		free(s);
	accepted(rq, conv, ocid);
	return 0;
}

/* ------------------------------------------------------------ dispatch */

int
sb_mpesa_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                  struct sb_cbmsg *m)
{
	json_t *body;

	if (c->url == NULL)
		return -1;
	switch (c->kind) {
	case SB_K_STKPUSH:
		body = stk_callback_body(c, lie);
		break;
	case SB_K_B2C:
		if (c->state == SB_SUCCEEDED && !lie)
			sb->b2c_funds_cents -= c->cents;
		body = b2c_result_body(sb, c, lie);
		break;
	default:
		return -1; /* C2B confirmations are sent by their flow */
	}
	m->url = sb_xstrdup(c->url);
	m->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (m->body == NULL)
		abort();
	return 0;
}

struct route {
	const char *path;
	enum sb_op op;
	int version;
	bool creates_charge;
};

static const struct route routes[] = {
    {"/oauth/v1/generate", SB_OP_MPESA_OAUTH, 1, false},
    {"/mpesa/stkpush/v1/processrequest", SB_OP_MPESA_STKPUSH, 1, true},
    {"/mpesa/stkpushquery/v1/query", SB_OP_MPESA_STKQUERY, 1, false},
    {"/mpesa/c2b/v1/registerurl", SB_OP_MPESA_C2B_REGISTER, 1, false},
    {"/mpesa/c2b/v2/registerurl", SB_OP_MPESA_C2B_REGISTER, 2, false},
    {"/mpesa/c2b/v1/simulate", SB_OP_MPESA_C2B_SIMULATE, 1, false},
    {"/mpesa/c2b/v2/simulate", SB_OP_MPESA_C2B_SIMULATE, 2, false},
    {"/mpesa/b2c/v1/paymentrequest", SB_OP_MPESA_B2C, 1, true},
    {"/mpesa/b2c/v3/paymentrequest", SB_OP_MPESA_B2C, 3, true},
    {"/mpesa/transactionstatus/v1/query", SB_OP_MPESA_TXSTATUS, 1, false},
    /* not a charge, but its result is a callback: the charge faults
     * are drawn for it (it honours no_callback) */
    {"/mpesa/reversal/v1/request", SB_OP_MPESA_REVERSAL, 1, true},
};

void
sb_mpesa_handle(struct sb_rq *rq)
{
	const struct route *r = NULL;
	json_t *j = NULL;
	char msisdn[32] = "";
	size_t i;
	bool stk;

	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(rq->path, routes[i].path) == 0)
			r = &routes[i];
	if (r == NULL) {
		mp_err(rq, 404, "404.001.01", "Resource not found");
		return;
	}
	rq->op = r->op;
	if (r->op == SB_OP_MPESA_OAUTH) {
		oauth(rq);
		return;
	}
	stk = r->op == SB_OP_MPESA_STKPUSH || r->op == SB_OP_MPESA_STKQUERY;
	if (rq->body_len > 0)
		j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
		               NULL);
	if (json_is_object(j) &&
	    !sb_jtext(j, "PhoneNumber", msisdn, sizeof(msisdn)) &&
	    !sb_jtext(j, "PartyB", msisdn, sizeof(msisdn)))
		msisdn[0] = '\0';
	sb_rq_faults(rq, msisdn[0] ? msisdn : NULL, r->creates_charge);
	if (rq->method != EVHTTP_REQ_POST) {
		mp_err(rq, 405, "405.001", "Method Not Allowed");
		goto out;
	}
	if (!mp_auth(rq, stk))
		goto out;
	if (!is_json_ctype(rq)) {
		/* §1.0, CONFIRMED quirk: a wrong Content-Type reads as a bad
		 * shortcode on STK; the other APIs say payload */
		if (stk)
			bad_field(rq, "BusinessShortCode");
		else
			mp_err(rq, 400, "400.002.05",
			       "Invalid Request Payload");
		goto out;
	}
	if (!json_is_object(j)) {
		mp_err(rq, 400, "400.002.05", "Invalid Request Payload");
		goto out;
	}
	switch (r->op) {
	case SB_OP_MPESA_STKPUSH:
		stk_push(rq, j);
		break;
	case SB_OP_MPESA_STKQUERY:
		stk_query(rq, j);
		break;
	case SB_OP_MPESA_C2B_REGISTER:
		c2b_register(rq, j, r->version);
		break;
	case SB_OP_MPESA_C2B_SIMULATE:
		c2b_simulate(rq, j);
		break;
	case SB_OP_MPESA_B2C:
		b2c(rq, j, r->version == 3);
		break;
	case SB_OP_MPESA_TXSTATUS:
		tx_status(rq, j);
		break;
	case SB_OP_MPESA_REVERSAL:
		reversal(rq, j);
		break;
	default:
		mp_err(rq, 404, "404.001.01", "Resource not found");
	}
out:
	json_decref(j);
}
