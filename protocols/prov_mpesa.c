/*
 * prov_mpesa.c - M-Pesa Daraja builders and parsers (docs/providers.md §2,
 * reference/wire-formats.md §1).
 *
 * Pure: no I/O, no allocation, no clock, no globals.  Parsers read only
 * through json.h accessors over a validated document, and copy strings
 * into the fixed fields of *out with explicit capacity checks.
 */
#include "prov_mpesa.h"

#include <string.h>

#include "base64.h"

/* ---- parser helpers -------------------------------------------------- */

static enum mpesa_rc
fail(struct mpesa_err *err, enum mpesa_rc rc, const char *field,
     const char *why)
{
	err->field = field;
	err->why = why;
	return rc;
}

static bool
is_digits(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* YYYYMMDDHHmmss with plausible ranges. */
static bool
is_timestamp(const char *s)
{
	int mo, d, h, mi, se;

	if (strlen(s) != MPESA_TIMESTAMP_LEN || !is_digits(s, 14))
		return false;
	mo = (s[4] - '0') * 10 + (s[5] - '0');
	d = (s[6] - '0') * 10 + (s[7] - '0');
	h = (s[8] - '0') * 10 + (s[9] - '0');
	mi = (s[10] - '0') * 10 + (s[11] - '0');
	se = (s[12] - '0') * 10 + (s[13] - '0');
	return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 &&
	       mi <= 59 && se <= 59;
}

/* Value token of key in obj; 0 if absent. */
static size_t
field(const struct json_doc *d, size_t obj, const char *key)
{
	return json_obj_get(d, obj, key);
}

/* Copies STRING token v into dst[0..cap). */
static enum mpesa_rc
copy_str(const struct json_doc *d, size_t v, char *dst, size_t cap,
         const char *path, struct mpesa_err *err)
{
	const char *why = NULL;
	size_t len;

	switch (json_str_unescape(dst, cap, d, v, &len, &why)) {
	case CODEC_OK:
		return MPESA_OK;
	case CODEC_NEED_MORE:
		return fail(err, MPESA_BAD_VALUE, path, "too long");
	default:
		return fail(err, MPESA_BAD_VALUE, path, why);
	}
}

/* A string field; absent and optional gives "". */
static enum mpesa_rc
get_str(const struct json_doc *d, size_t obj, const char *key, const char *path,
        bool is_required, char *dst, size_t cap, struct mpesa_err *err)
{
	size_t v = field(d, obj, key);

	dst[0] = '\0';
	if (v == 0)
		return is_required ? fail(err, MPESA_MISSING, path, "missing")
		                   : MPESA_OK;
	if (d->toks[v].type != JSON_STRING)
		return fail(err, MPESA_WRONG_TYPE, path, "not a string");
	return copy_str(d, v, dst, cap, path, err);
}

/* A code sent as a number (integer), a string, or either. */
enum code_form { CODE_NUM = 1, CODE_STR = 2, CODE_ANY = 3 };

static enum mpesa_rc
code_from_tok(const struct json_doc *d, size_t v, enum code_form form,
              struct mpesa_code *out, const char *path, struct mpesa_err *err)
{
	struct json_span sp;
	const char *why = NULL;
	enum mpesa_rc rc;

	out->is_num = false;
	out->num = 0;
	out->text[0] = '\0';
	if (d->toks[v].type == JSON_NUMBER && (form & CODE_NUM)) {
		sp = json_span(d, v);
		if (json_num_to_i64(sp, &out->num, &why) != CODEC_OK)
			return fail(err, MPESA_BAD_VALUE, path, why);
		if (sp.len >= sizeof out->text)
			return fail(err, MPESA_BAD_VALUE, path, "too long");
		memcpy(out->text, sp.ptr, sp.len);
		out->text[sp.len] = '\0';
		out->is_num = true;
		return MPESA_OK;
	}
	if (d->toks[v].type == JSON_STRING && (form & CODE_STR)) {
		rc = copy_str(d, v, out->text, sizeof out->text, path, err);
		if (rc != MPESA_OK)
			return rc;
		if (out->text[0] == '\0')
			return fail(err, MPESA_BAD_VALUE, path, "empty code");
		sp.ptr = out->text;
		sp.len = strlen(out->text);
		out->is_num = json_num_to_i64(sp, &out->num, &why) == CODEC_OK;
		if (!out->is_num)
			out->num = 0;
		return MPESA_OK;
	}
	return fail(err, MPESA_WRONG_TYPE, path,
	            form == CODE_NUM   ? "not a number"
	            : form == CODE_STR ? "not a string"
	                               : "not a number or string");
}

static enum mpesa_rc
get_code(const struct json_doc *d, size_t obj, const char *key,
         const char *path, enum code_form form, struct mpesa_code *out,
         struct mpesa_err *err)
{
	size_t v = field(d, obj, key);

	if (v == 0)
		return fail(err, MPESA_MISSING, path, "missing");
	return code_from_tok(d, v, form, out, path, err);
}

/* An amount in token v: a number, or a string holding a decimal ("5.00"),
 * as form allows.  *is_blank is set for the empty string (then *out 0). */
static enum mpesa_rc
amount_from_tok(const struct json_doc *d, size_t v, enum code_form form,
                int64_t *out, bool *is_blank, const char *path,
                struct mpesa_err *err)
{
	char buf[40];
	struct json_span sp;
	const char *why = NULL;
	enum mpesa_rc rc;

	*is_blank = false;
	*out = 0;
	if (d->toks[v].type == JSON_NUMBER && (form & CODE_NUM)) {
		sp = json_span(d, v);
	} else if (d->toks[v].type == JSON_STRING && (form & CODE_STR)) {
		rc = copy_str(d, v, buf, sizeof buf, path, err);
		if (rc != MPESA_OK)
			return rc;
		if (buf[0] == '\0') {
			*is_blank = true;
			return MPESA_OK;
		}
		sp.ptr = buf;
		sp.len = strlen(buf);
	} else {
		return fail(err, MPESA_WRONG_TYPE, path,
		            form == CODE_NUM ? "amount not a number"
		            : form == CODE_STR
		                ? "amount not a string"
		                : "amount not a number or string");
	}
	if (json_num_to_minor(sp, MPESA_KES_EXPONENT, out, &why) != CODEC_OK)
		return fail(err, MPESA_BAD_VALUE, path, why);
	return MPESA_OK;
}

/* An object member that must be an object (or absent if optional). */
static enum mpesa_rc
get_obj(const struct json_doc *d, size_t obj, const char *key, const char *path,
        bool is_required, size_t *out, struct mpesa_err *err)
{
	size_t v = field(d, obj, key);

	*out = 0;
	if (v == 0)
		return is_required ? fail(err, MPESA_MISSING, path, "missing")
		                   : MPESA_OK;
	if (d->toks[v].type != JSON_OBJECT)
		return fail(err, MPESA_WRONG_TYPE, path, "not an object");
	*out = v;
	return MPESA_OK;
}

static enum mpesa_rc
root_obj(const struct json_doc *d, struct mpesa_err *err)
{
	if (d->n_toks == 0 || d->toks[0].type != JSON_OBJECT)
		return fail(err, MPESA_WRONG_TYPE, "$", "body not an object");
	return MPESA_OK;
}

#define TRY(x)                                                                 \
	do {                                                                   \
		enum mpesa_rc try_rc_ = (x);                                   \
		if (try_rc_ != MPESA_OK)                                       \
			return try_rc_;                                        \
	} while (0)

bool
mpesa_code_is_zero(const struct mpesa_code *c)
{
	return c->is_num && c->num == 0;
}

/* ---- builder helpers ------------------------------------------------- */

/* Non-empty, at most max bytes, valid UTF-8; sets *why. */
static bool
text_ok(const char *s, size_t min, size_t max, const char *what,
        const char **why)
{
	size_t n;

	if (s == NULL) {
		*why = what;
		return false;
	}
	n = strlen(s);
	if (n < min || n > max || !json_utf8_valid(s, n)) {
		*why = what;
		return false;
	}
	return true;
}

static bool
digits_ok(const char *s, size_t min, size_t max, const char *what,
          const char **why)
{
	if (!text_ok(s, min, max, what, why))
		return false;
	if (!is_digits(s, strlen(s))) {
		*why = what;
		return false;
	}
	return true;
}

static void
kv_str(struct json_w *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_cstr(w, v);
}

/* Whole KES from minor units as a decimal string ("10" for 1000). */
static void
kv_kes_str(struct json_w *w, const char *k, int64_t amount_minor)
{
	char b[24], *p = b + sizeof b;
	int64_t v = amount_minor / 100;

	*--p = '\0';
	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	kv_str(w, k, p);
}

static bool
whole_kes_ok(int64_t amount_minor, const char **why)
{
	if (amount_minor < 100 || amount_minor % 100 != 0) {
		*why = "amount must be whole KES, at least 1";
		return false;
	}
	return true;
}

static enum codec_rc
finish(struct json_w *w, size_t *written, const char **why)
{
	return json_w_finish(w, written, why);
}

/* ---- time and password ---------------------------------------------- */

/* Civil date from days since 1970-01-01 (H. Hinnant's algorithm). */
static void
civil(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	*y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	if (*m <= 2)
		(*y)++;
}

static void
put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

enum codec_rc
mpesa_timestamp(char *dst, size_t cap, int64_t utc_ms, int32_t offset_s)
{
	int64_t s, days, sod, y;
	int m, d;

	if (cap < MPESA_TIMESTAMP_LEN + 1)
		return CODEC_NEED_MORE;
	/* 0001-01-01 .. 9999-12-31 keeps four digits and no overflow. */
	if (utc_ms < -62135596800000LL || utc_ms > 253402300799000LL)
		return CODEC_BAD;
	s = utc_ms / 1000 - (utc_ms % 1000 < 0 ? 1 : 0) + offset_s;
	days = s / 86400 - (s % 86400 < 0 ? 1 : 0);
	sod = s - days * 86400;
	civil(days, &y, &m, &d);
	if (y < 1 || y > 9999)
		return CODEC_BAD;
	put2(dst, (int)(y / 100));
	put2(dst + 2, (int)(y % 100));
	put2(dst + 4, m);
	put2(dst + 6, d);
	put2(dst + 8, (int)(sod / 3600));
	put2(dst + 10, (int)(sod / 60 % 60));
	put2(dst + 12, (int)(sod % 60));
	dst[14] = '\0';
	return CODEC_OK;
}

#define PASSKEY_MAX 128

enum codec_rc
mpesa_stk_password(char *dst, size_t cap, const char *short_code,
                   const char *passkey, const char *timestamp, size_t *written,
                   const char **why)
{
	char raw[10 + PASSKEY_MAX + MPESA_TIMESTAMP_LEN];
	size_t a, b, i;

	if (!digits_ok(short_code, 5, 10, "BusinessShortCode: 5-10 digits",
	               why) ||
	    !text_ok(passkey, 1, PASSKEY_MAX, "passkey: 1-128 bytes", why))
		return CODEC_BAD;
	if (timestamp == NULL || !is_timestamp(timestamp)) {
		*why = "Timestamp: YYYYMMDDHHmmss";
		return CODEC_BAD;
	}
	a = strlen(short_code);
	b = strlen(passkey);
	for (i = 0; i < b; i++)
		if (passkey[i] < 0x21 || passkey[i] > 0x7e) {
			*why = "passkey: printable ASCII";
			return CODEC_BAD;
		}
	memcpy(raw, short_code, a);
	memcpy(raw + a, passkey, b);
	memcpy(raw + a + b, timestamp, MPESA_TIMESTAMP_LEN);
	return base64_encode(dst, cap, (const uint8_t *)raw,
	                     a + b + MPESA_TIMESTAMP_LEN, written);
}

/* The password of short_code/passkey/timestamp as a JSON member. */
static enum codec_rc
kv_password(struct json_w *w, const char *short_code, const char *passkey,
            const char *timestamp, const char **why)
{
	char pw[BASE64_ENC_LEN(10 + PASSKEY_MAX + MPESA_TIMESTAMP_LEN) + 1];
	size_t n;
	enum codec_rc rc;

	rc = mpesa_stk_password(pw, sizeof pw, short_code, passkey, timestamp,
	                        &n, why);
	if (rc != CODEC_OK)
		return rc == CODEC_NEED_MORE ? CODEC_BAD : rc; /* impossible */
	kv_str(w, "Password", pw);
	return CODEC_OK;
}

/* ---- error envelope -------------------------------------------------- */

enum mpesa_rc
mpesa_error_resp_parse(struct mpesa_error_resp *out, const struct json_doc *doc,
                       struct mpesa_err *err)
{
	TRY(root_obj(doc, err));
	TRY(get_str(doc, 0, "requestId", "requestId", false, out->request_id,
	            sizeof out->request_id, err));
	TRY(get_str(doc, 0, "errorCode", "errorCode", true, out->error_code,
	            sizeof out->error_code, err));
	TRY(get_str(doc, 0, "errorMessage", "errorMessage", true,
	            out->error_message, sizeof out->error_message, err));
	return MPESA_OK;
}

/* ---- STK push -------------------------------------------------------- */

enum codec_rc
mpesa_stk_push_build(char *dst, size_t cap, const struct mpesa_stk_push_req *r,
                     size_t *written, const char **why)
{
	struct json_w w;
	enum codec_rc rc;

	if (!digits_ok(r->short_code, 5, 10, "BusinessShortCode: 5-10 digits",
	               why))
		return CODEC_BAD;
	if (r->short_code[0] == '0') {
		/* It is written as a JSON number, as in the sample. */
		*why = "BusinessShortCode: leading zero";
		return CODEC_BAD;
	}
	if (!whole_kes_ok(r->amount_minor, why) ||
	    !digits_ok(r->party_a, 9, 15, "PartyA: MSISDN digits", why) ||
	    !digits_ok(r->party_b, 5, 10, "PartyB: 5-10 digits", why) ||
	    !digits_ok(r->phone, 9, 15, "PhoneNumber: MSISDN digits", why) ||
	    !text_ok(r->callback_url, 8, 512, "CallBackURL: 8-512 bytes",
	             why) ||
	    !text_ok(r->account_ref, 1, 12, "AccountReference: 1-12 bytes",
	             why))
		return CODEC_BAD;
	if (r->desc != NULL &&
	    !text_ok(r->desc, 1, 13, "TransactionDesc: 1-13 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	json_w_key(&w, "BusinessShortCode");
	json_w_raw(&w, r->short_code, strlen(r->short_code));
	if ((rc = kv_password(&w, r->short_code, r->passkey, r->timestamp,
	                      why)) != CODEC_OK)
		return rc;
	kv_str(&w, "Timestamp", r->timestamp);
	kv_str(&w, "TransactionType",
	       r->type == MPESA_STK_BUYGOODS ? "CustomerBuyGoodsOnline"
	                                     : "CustomerPayBillOnline");
	kv_kes_str(&w, "Amount", r->amount_minor);
	kv_str(&w, "PartyA", r->party_a);
	kv_str(&w, "PartyB", r->party_b);
	kv_str(&w, "PhoneNumber", r->phone);
	kv_str(&w, "CallBackURL", r->callback_url);
	kv_str(&w, "AccountReference", r->account_ref);
	if (r->desc != NULL)
		kv_str(&w, "TransactionDesc", r->desc);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum mpesa_rc
mpesa_token_parse(struct mpesa_token *out, const struct json_doc *doc,
                  struct mpesa_err *err)
{
	struct mpesa_code exp;

	TRY(root_obj(doc, err));
	TRY(get_str(doc, 0, "access_token", "access_token", true,
	            out->access_token, sizeof out->access_token, err));
	if (out->access_token[0] == '\0')
		return fail(err, MPESA_BAD_VALUE, "access_token", "empty");
	TRY(get_code(doc, 0, "expires_in", "expires_in", CODE_ANY, &exp, err));
	if (!exp.is_num || exp.num < 1 || exp.num > 86400)
		return fail(err, MPESA_BAD_VALUE, "expires_in",
		            "not 1..86400 seconds");
	out->expires_in_s = exp.num;
	return MPESA_OK;
}

enum mpesa_rc
mpesa_stk_push_resp_parse(struct mpesa_stk_push_resp *out,
                          const struct json_doc *doc, struct mpesa_err *err)
{
	TRY(root_obj(doc, err));
	TRY(get_str(doc, 0, "MerchantRequestID", "MerchantRequestID", true,
	            out->merchant_request_id, sizeof out->merchant_request_id,
	            err));
	TRY(get_str(doc, 0, "CheckoutRequestID", "CheckoutRequestID", true,
	            out->checkout_request_id, sizeof out->checkout_request_id,
	            err));
	TRY(get_code(doc, 0, "ResponseCode", "ResponseCode", CODE_ANY,
	             &out->response_code, err));
	TRY(get_str(doc, 0, "ResponseDescription", "ResponseDescription", true,
	            out->response_desc, sizeof out->response_desc, err));
	TRY(get_str(doc, 0, "CustomerMessage", "CustomerMessage", false,
	            out->customer_message, sizeof out->customer_message, err));
	return MPESA_OK;
}

#define CB  "Body.stkCallback."
#define CBI CB "CallbackMetadata.Item"

/* One CallbackMetadata item: {"Name":..., "Value":...}; Value may be
 * absent (old "Balance" items). */
static enum mpesa_rc
stk_item(const struct json_doc *d, size_t it, struct mpesa_stk_callback *out,
         unsigned *seen, struct mpesa_err *err)
{
	size_t name, v;
	const char *why = NULL;
	bool is_blank;

	if (d->toks[it].type != JSON_OBJECT)
		return fail(err, MPESA_WRONG_TYPE, CBI "[]", "not an object");
	if ((name = field(d, it, "Name")) == 0)
		return fail(err, MPESA_MISSING, CBI "[].Name", "missing");
	if (d->toks[name].type != JSON_STRING)
		return fail(err, MPESA_WRONG_TYPE, CBI "[].Name",
		            "not a string");
	v = field(d, it, "Value");
	if (json_str_eq(d, name, "Amount")) {
		if (*seen & 1)
			return fail(err, MPESA_BAD_VALUE, CBI "[Amount]",
			            "duplicate item");
		*seen |= 1;
		if (v == 0)
			return fail(err, MPESA_MISSING, CBI "[Amount].Value",
			            "missing");
		TRY(amount_from_tok(d, v, CODE_NUM, &out->amount_minor,
		                    &is_blank, CBI "[Amount].Value", err));
		if (out->amount_minor <= 0)
			return fail(err, MPESA_BAD_VALUE, CBI "[Amount].Value",
			            "amount not positive");
		out->has_amount = true;
	} else if (json_str_eq(d, name, "MpesaReceiptNumber")) {
		if (*seen & 2)
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[MpesaReceiptNumber]",
			            "duplicate item");
		*seen |= 2;
		if (v == 0)
			return fail(err, MPESA_MISSING,
			            CBI "[MpesaReceiptNumber].Value",
			            "missing");
		if (d->toks[v].type != JSON_STRING)
			return fail(err, MPESA_WRONG_TYPE,
			            CBI "[MpesaReceiptNumber].Value",
			            "not a string");
		TRY(copy_str(d, v, out->receipt, sizeof out->receipt,
		             CBI "[MpesaReceiptNumber].Value", err));
		if (out->receipt[0] == '\0')
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[MpesaReceiptNumber].Value", "empty");
	} else if (json_str_eq(d, name, "TransactionDate")) {
		struct json_span sp;
		uint64_t u;

		if (*seen & 4)
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[TransactionDate]", "duplicate item");
		*seen |= 4;
		if (v == 0)
			return fail(err, MPESA_MISSING,
			            CBI "[TransactionDate].Value", "missing");
		if (d->toks[v].type != JSON_NUMBER)
			return fail(err, MPESA_WRONG_TYPE,
			            CBI "[TransactionDate].Value",
			            "not a number");
		sp = json_span(d, v);
		if (json_num_to_u64(sp, &u, &why) != CODEC_OK ||
		    sp.len != MPESA_TIMESTAMP_LEN)
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[TransactionDate].Value",
			            "not YYYYMMDDHHmmss");
		memcpy(out->transaction_date, sp.ptr, sp.len);
		out->transaction_date[sp.len] = '\0';
		if (!is_timestamp(out->transaction_date))
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[TransactionDate].Value",
			            "not YYYYMMDDHHmmss");
	} else if (json_str_eq(d, name, "PhoneNumber")) {
		struct json_span sp;
		uint64_t u;

		if (*seen & 8)
			return fail(err, MPESA_BAD_VALUE, CBI "[PhoneNumber]",
			            "duplicate item");
		*seen |= 8;
		if (v == 0)
			return fail(err, MPESA_MISSING,
			            CBI "[PhoneNumber].Value", "missing");
		if (d->toks[v].type != JSON_NUMBER)
			return fail(err, MPESA_WRONG_TYPE,
			            CBI "[PhoneNumber].Value", "not a number");
		sp = json_span(d, v);
		if (json_num_to_u64(sp, &u, &why) != CODEC_OK || sp.len > 15)
			return fail(err, MPESA_BAD_VALUE,
			            CBI "[PhoneNumber].Value", "not an MSISDN");
		memcpy(out->phone, sp.ptr, sp.len);
		out->phone[sp.len] = '\0';
	}
	/* Other items (Balance, without a Value) are ignored. */
	return MPESA_OK;
}

enum mpesa_rc
mpesa_stk_callback_parse(struct mpesa_stk_callback *out,
                         const struct json_doc *doc, struct mpesa_err *err)
{
	size_t body, cb, md, items, it;
	unsigned seen = 0;

	memset(out, 0, sizeof *out);
	TRY(root_obj(doc, err));
	TRY(get_obj(doc, 0, "Body", "Body", true, &body, err));
	TRY(get_obj(doc, body, "stkCallback", "Body.stkCallback", true, &cb,
	            err));
	TRY(get_str(doc, cb, "MerchantRequestID", CB "MerchantRequestID", true,
	            out->merchant_request_id, sizeof out->merchant_request_id,
	            err));
	TRY(get_str(doc, cb, "CheckoutRequestID", CB "CheckoutRequestID", true,
	            out->checkout_request_id, sizeof out->checkout_request_id,
	            err));
	/* A number in the docs, but "SFC_IC0003" exists: accept both. */
	TRY(get_code(doc, cb, "ResultCode", CB "ResultCode", CODE_ANY,
	             &out->result_code, err));
	TRY(get_str(doc, cb, "ResultDesc", CB "ResultDesc", true,
	            out->result_desc, sizeof out->result_desc, err));
	TRY(get_obj(doc, cb, "CallbackMetadata", CB "CallbackMetadata", false,
	            &md, err));
	if (md != 0) {
		out->has_metadata = true;
		if ((items = field(doc, md, "Item")) == 0)
			return fail(err, MPESA_MISSING, CBI, "missing");
		if (doc->toks[items].type != JSON_ARRAY)
			return fail(err, MPESA_WRONG_TYPE, CBI, "not an array");
		for (it = json_first(doc, items); it != 0;
		     it = json_next(doc, items, it))
			TRY(stk_item(doc, it, out, &seen, err));
	}
	if (mpesa_code_is_zero(&out->result_code)) {
		if (!out->has_amount)
			return fail(err, MPESA_MISSING, CBI "[Amount]",
			            "missing on success");
		if (out->receipt[0] == '\0')
			return fail(err, MPESA_MISSING,
			            CBI "[MpesaReceiptNumber]",
			            "missing on success");
	}
	return MPESA_OK;
}

enum codec_rc
mpesa_callback_ack_build(char *dst, size_t cap, const char *desc,
                         size_t *written, const char **why)
{
	struct json_w w;

	if (!text_ok(desc, 1, 64, "ResultDesc: 1-64 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	json_w_key(&w, "ResultCode");
	json_w_int(&w, 0);
	kv_str(&w, "ResultDesc", desc);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

/* ---- STK query ------------------------------------------------------- */

enum codec_rc
mpesa_stk_query_build(char *dst, size_t cap,
                      const struct mpesa_stk_query_req *r, size_t *written,
                      const char **why)
{
	struct json_w w;
	enum codec_rc rc;

	if (!digits_ok(r->short_code, 5, 10, "BusinessShortCode: 5-10 digits",
	               why) ||
	    !text_ok(r->checkout_request_id, 1, MPESA_ID_MAX - 1,
	             "CheckoutRequestID: 1-64 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "BusinessShortCode", r->short_code);
	if ((rc = kv_password(&w, r->short_code, r->passkey, r->timestamp,
	                      why)) != CODEC_OK)
		return rc;
	kv_str(&w, "Timestamp", r->timestamp);
	kv_str(&w, "CheckoutRequestID", r->checkout_request_id);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum mpesa_rc
mpesa_stk_query_resp_parse(struct mpesa_stk_query_resp *out,
                           const struct json_doc *doc, struct mpesa_err *err)
{
	TRY(root_obj(doc, err));
	TRY(get_code(doc, 0, "ResponseCode", "ResponseCode", CODE_ANY,
	             &out->response_code, err));
	TRY(get_str(doc, 0, "ResponseDescription", "ResponseDescription", true,
	            out->response_desc, sizeof out->response_desc, err));
	TRY(get_str(doc, 0, "MerchantRequestID", "MerchantRequestID", true,
	            out->merchant_request_id, sizeof out->merchant_request_id,
	            err));
	TRY(get_str(doc, 0, "CheckoutRequestID", "CheckoutRequestID", true,
	            out->checkout_request_id, sizeof out->checkout_request_id,
	            err));
	TRY(get_code(doc, 0, "ResultCode", "ResultCode", CODE_ANY,
	             &out->result_code, err));
	TRY(get_str(doc, 0, "ResultDesc", "ResultDesc", true, out->result_desc,
	            sizeof out->result_desc, err));
	return MPESA_OK;
}

/* ---- C2B -------------------------------------------------------------- */

enum codec_rc
mpesa_c2b_register_build(char *dst, size_t cap, const char *short_code,
                         enum mpesa_c2b_response_type type,
                         const char *confirmation_url,
                         const char *validation_url, size_t *written,
                         const char **why)
{
	struct json_w w;

	if (!digits_ok(short_code, 5, 10, "ShortCode: 5-10 digits", why) ||
	    !text_ok(confirmation_url, 8, 512, "ConfirmationURL: 8-512 bytes",
	             why) ||
	    !text_ok(validation_url, 8, 512, "ValidationURL: 8-512 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "ShortCode", short_code);
	kv_str(&w, "ResponseType",
	       type == MPESA_C2B_DEFAULT_CANCELLED ? "Cancelled" : "Completed");
	kv_str(&w, "ConfirmationURL", confirmation_url);
	kv_str(&w, "ValidationURL", validation_url);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum mpesa_rc
mpesa_c2b_parse(struct mpesa_c2b *out, const struct json_doc *doc,
                struct mpesa_err *err)
{
	size_t v;
	bool is_blank;

	memset(out, 0, sizeof *out);
	TRY(root_obj(doc, err));
	TRY(get_str(doc, 0, "TransactionType", "TransactionType", true,
	            out->transaction_type, sizeof out->transaction_type, err));
	TRY(get_str(doc, 0, "TransID", "TransID", true, out->trans_id,
	            sizeof out->trans_id, err));
	if (out->trans_id[0] == '\0')
		return fail(err, MPESA_BAD_VALUE, "TransID", "empty");
	TRY(get_str(doc, 0, "TransTime", "TransTime", true, out->trans_time,
	            sizeof out->trans_time, err));
	if (!is_timestamp(out->trans_time))
		return fail(err, MPESA_BAD_VALUE, "TransTime",
		            "not YYYYMMDDHHmmss");
	if ((v = field(doc, 0, "TransAmount")) == 0)
		return fail(err, MPESA_MISSING, "TransAmount", "missing");
	TRY(amount_from_tok(doc, v, CODE_STR, &out->amount_minor, &is_blank,
	                    "TransAmount", err));
	if (is_blank || out->amount_minor <= 0)
		return fail(err, MPESA_BAD_VALUE, "TransAmount",
		            "amount not positive");
	TRY(get_str(doc, 0, "BusinessShortCode", "BusinessShortCode", true,
	            out->short_code, sizeof out->short_code, err));
	TRY(get_str(doc, 0, "BillRefNumber", "BillRefNumber", true,
	            out->bill_ref, sizeof out->bill_ref, err));
	TRY(get_str(doc, 0, "InvoiceNumber", "InvoiceNumber", false,
	            out->invoice, sizeof out->invoice, err));
	if ((v = field(doc, 0, "OrgAccountBalance")) != 0) {
		TRY(amount_from_tok(doc, v, CODE_STR, &out->balance_minor,
		                    &is_blank, "OrgAccountBalance", err));
		out->has_balance = !is_blank;
	}
	TRY(get_str(doc, 0, "ThirdPartyTransID", "ThirdPartyTransID", false,
	            out->third_party_trans_id, sizeof out->third_party_trans_id,
	            err));
	TRY(get_str(doc, 0, "MSISDN", "MSISDN", true, out->msisdn,
	            sizeof out->msisdn, err));
	TRY(get_str(doc, 0, "FirstName", "FirstName", false, out->first_name,
	            sizeof out->first_name, err));
	TRY(get_str(doc, 0, "MiddleName", "MiddleName", false, out->middle_name,
	            sizeof out->middle_name, err));
	TRY(get_str(doc, 0, "LastName", "LastName", false, out->last_name,
	            sizeof out->last_name, err));
	return MPESA_OK;
}

enum codec_rc
mpesa_c2b_validation_resp_build(char *dst, size_t cap, enum mpesa_c2b_verdict v,
                                const char *third_party_id, size_t *written,
                                const char **why)
{
	static const char *const codes[] = {
	    "0",        "C2B00011", "C2B00012", "C2B00013",
	    "C2B00014", "C2B00015", "C2B00016",
	};
	struct json_w w;

	if ((unsigned)v >= sizeof codes / sizeof codes[0]) {
		*why = "unknown verdict";
		return CODEC_BAD;
	}
	if (third_party_id != NULL &&
	    (v != MPESA_C2B_ACCEPT ||
	     !text_ok(third_party_id, 1, MPESA_ID_MAX - 1,
	              "ThirdPartyTransID: 1-64 bytes", why))) {
		if (v != MPESA_C2B_ACCEPT)
			*why = "ThirdPartyTransID only when accepting";
		return CODEC_BAD;
	}
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "ResultCode", codes[v]);
	kv_str(&w, "ResultDesc",
	       v == MPESA_C2B_ACCEPT ? "Accepted" : "Rejected");
	if (third_party_id != NULL)
		kv_str(&w, "ThirdPartyTransID", third_party_id);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

/* ---- B2C, transaction status --------------------------------------- */

enum codec_rc
mpesa_b2c_build(char *dst, size_t cap, const struct mpesa_b2c_req *r,
                size_t *written, const char **why)
{
	static const char *const cmds[] = {"SalaryPayment", "BusinessPayment",
	                                   "PromotionPayment"};
	struct json_w w;

	if ((unsigned)r->command >= 3) {
		*why = "CommandID: unknown";
		return CODEC_BAD;
	}
	if (!text_ok(r->originator_conversation_id, 1, MPESA_ID_MAX - 1,
	             "OriginatorConversationID: 1-64 bytes", why) ||
	    !text_ok(r->initiator_name, 1, 64, "InitiatorName: 1-64 bytes",
	             why) ||
	    !text_ok(r->security_credential, 1, 2048,
	             "SecurityCredential: 1-2048 bytes", why) ||
	    !whole_kes_ok(r->amount_minor, why) ||
	    !digits_ok(r->party_a, 5, 10, "PartyA: 5-10 digits", why) ||
	    !digits_ok(r->party_b, 12, 12, "PartyB: 12-digit MSISDN", why) ||
	    !text_ok(r->remarks, 2, 100, "Remarks: 2-100 bytes", why) ||
	    !text_ok(r->queue_timeout_url, 8, 512,
	             "QueueTimeOutURL: 8-512 bytes", why) ||
	    !text_ok(r->result_url, 8, 512, "ResultURL: 8-512 bytes", why))
		return CODEC_BAD;
	if (r->occasion != NULL &&
	    !text_ok(r->occasion, 1, 100, "Occassion: 1-100 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "OriginatorConversationID", r->originator_conversation_id);
	kv_str(&w, "InitiatorName", r->initiator_name);
	kv_str(&w, "SecurityCredential", r->security_credential);
	kv_str(&w, "CommandID", cmds[r->command]);
	kv_kes_str(&w, "Amount", r->amount_minor);
	kv_str(&w, "PartyA", r->party_a);
	kv_str(&w, "PartyB", r->party_b);
	kv_str(&w, "Remarks", r->remarks);
	kv_str(&w, "QueueTimeOutURL", r->queue_timeout_url);
	kv_str(&w, "ResultURL", r->result_url);
	if (r->occasion != NULL)
		kv_str(&w, "Occassion", r->occasion); /* sic, v3 docs */
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum codec_rc
mpesa_status_build(char *dst, size_t cap, const struct mpesa_status_req *r,
                   size_t *written, const char **why)
{
	struct json_w w;

	if (!text_ok(r->initiator, 1, 64, "Initiator: 1-64 bytes", why) ||
	    !text_ok(r->security_credential, 1, 2048,
	             "SecurityCredential: 1-2048 bytes", why) ||
	    !text_ok(r->transaction_id, 1, MPESA_ID_MAX - 1,
	             "TransactionID: 1-64 bytes", why) ||
	    !digits_ok(r->party_a, 5, 15, "PartyA: 5-15 digits", why) ||
	    !digits_ok(r->identifier_type, 1, 1, "IdentifierType: one digit",
	               why) ||
	    !text_ok(r->result_url, 8, 512, "ResultURL: 8-512 bytes", why) ||
	    !text_ok(r->queue_timeout_url, 8, 512,
	             "QueueTimeOutURL: 8-512 bytes", why) ||
	    !text_ok(r->remarks, 1, 100, "Remarks: 1-100 bytes", why))
		return CODEC_BAD;
	if ((r->original_conversation_id != NULL &&
	     !text_ok(r->original_conversation_id, 1, MPESA_ID_MAX - 1,
	              "OriginalConversationID: 1-64 bytes", why)) ||
	    (r->occasion != NULL &&
	     !text_ok(r->occasion, 1, 100, "Occasion: 1-100 bytes", why)))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "Initiator", r->initiator);
	kv_str(&w, "SecurityCredential", r->security_credential);
	kv_str(&w, "CommandID", "TransactionStatusQuery");
	kv_str(&w, "TransactionID", r->transaction_id);
	if (r->original_conversation_id != NULL)
		kv_str(&w, "OriginalConversationID",
		       r->original_conversation_id);
	kv_str(&w, "PartyA", r->party_a);
	kv_str(&w, "IdentifierType", r->identifier_type);
	kv_str(&w, "ResultURL", r->result_url);
	kv_str(&w, "QueueTimeOutURL", r->queue_timeout_url);
	kv_str(&w, "Remarks", r->remarks);
	if (r->occasion != NULL)
		kv_str(&w, "Occasion", r->occasion);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum codec_rc
mpesa_reversal_build(char *dst, size_t cap,
                     const struct mpesa_reversal_req *r, size_t *written,
                     const char **why)
{
	struct json_w w;

	if (!text_ok(r->initiator, 1, 64, "Initiator: 1-64 bytes", why) ||
	    !text_ok(r->security_credential, 1, 2048,
	             "SecurityCredential: 1-2048 bytes", why) ||
	    !text_ok(r->transaction_id, 1, MPESA_ID_MAX - 1,
	             "TransactionID: 1-64 bytes", why) ||
	    !whole_kes_ok(r->amount_minor, why) ||
	    !digits_ok(r->receiver_party, 5, 10, "ReceiverParty: 5-10 digits",
	               why) ||
	    !digits_ok(r->receiver_identifier_type, 1, 2,
	               "RecieverIdentifierType: 1-2 digits", why) ||
	    !text_ok(r->result_url, 8, 512, "ResultURL: 8-512 bytes", why) ||
	    !text_ok(r->queue_timeout_url, 8, 512,
	             "QueueTimeOutURL: 8-512 bytes", why) ||
	    !text_ok(r->remarks, 2, 100, "Remarks: 2-100 bytes", why))
		return CODEC_BAD;
	if (r->occasion != NULL &&
	    !text_ok(r->occasion, 1, 100, "Occasion: 1-100 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	kv_str(&w, "Initiator", r->initiator);
	kv_str(&w, "SecurityCredential", r->security_credential);
	kv_str(&w, "CommandID", "TransactionReversal");
	kv_str(&w, "TransactionID", r->transaction_id);
	kv_kes_str(&w, "Amount", r->amount_minor);
	kv_str(&w, "ReceiverParty", r->receiver_party);
	kv_str(&w, "RecieverIdentifierType", r->receiver_identifier_type);
	kv_str(&w, "ResultURL", r->result_url);
	kv_str(&w, "QueueTimeOutURL", r->queue_timeout_url);
	kv_str(&w, "Remarks", r->remarks);
	if (r->occasion != NULL)
		kv_str(&w, "Occasion", r->occasion);
	json_w_obj_end(&w);
	return finish(&w, written, why);
}

enum mpesa_rc
mpesa_accepted_parse(struct mpesa_accepted *out, const struct json_doc *doc,
                     struct mpesa_err *err)
{
	TRY(root_obj(doc, err));
	TRY(get_str(doc, 0, "OriginatorConversationID",
	            "OriginatorConversationID", true,
	            out->originator_conversation_id,
	            sizeof out->originator_conversation_id, err));
	TRY(get_str(doc, 0, "ConversationID", "ConversationID", true,
	            out->conversation_id, sizeof out->conversation_id, err));
	TRY(get_code(doc, 0, "ResponseCode", "ResponseCode", CODE_ANY,
	             &out->response_code, err));
	TRY(get_str(doc, 0, "ResponseDescription", "ResponseDescription", true,
	            out->response_desc, sizeof out->response_desc, err));
	return MPESA_OK;
}

/* ---- result callbacks ------------------------------------------------ */

#define RS  "Result."
#define RSP RS "ResultParameters.ResultParameter"

enum mpesa_rc
mpesa_result_parse(struct mpesa_result *out, const struct json_doc *doc,
                   struct mpesa_err *err)
{
	size_t res, rp, p, it;

	memset(out, 0, sizeof *out);
	out->doc = doc;
	TRY(root_obj(doc, err));
	TRY(get_obj(doc, 0, "Result", "Result", true, &res, err));
	/* Numbers in the B2C sample, strings in the AccountBalance one. */
	TRY(get_code(doc, res, "ResultType", RS "ResultType", CODE_ANY,
	             &out->result_type, err));
	TRY(get_code(doc, res, "ResultCode", RS "ResultCode", CODE_ANY,
	             &out->result_code, err));
	TRY(get_str(doc, res, "ResultDesc", RS "ResultDesc", true,
	            out->result_desc, sizeof out->result_desc, err));
	TRY(get_str(doc, res, "OriginatorConversationID",
	            RS "OriginatorConversationID", true,
	            out->originator_conversation_id,
	            sizeof out->originator_conversation_id, err));
	TRY(get_str(doc, res, "ConversationID", RS "ConversationID", true,
	            out->conversation_id, sizeof out->conversation_id, err));
	TRY(get_str(doc, res, "TransactionID", RS "TransactionID", false,
	            out->transaction_id, sizeof out->transaction_id, err));
	TRY(get_obj(doc, res, "ResultParameters", RS "ResultParameters", false,
	            &rp, err));
	if (rp == 0)
		return MPESA_OK;
	if ((p = field(doc, rp, "ResultParameter")) == 0)
		return fail(err, MPESA_MISSING, RSP, "missing");
	/* An array in every sample; one object accepted, as ReferenceItem
	 * comes in both forms. */
	if (doc->toks[p].type == JSON_OBJECT) {
		it = p;
	} else if (doc->toks[p].type == JSON_ARRAY) {
		it = json_first(doc, p);
	} else {
		return fail(err, MPESA_WRONG_TYPE, RSP, "not an array");
	}
	for (; it != 0;
	     it = doc->toks[p].type == JSON_ARRAY ? json_next(doc, p, it) : 0) {
		size_t k;

		if (doc->toks[it].type != JSON_OBJECT)
			return fail(err, MPESA_WRONG_TYPE, RSP "[]",
			            "not an object");
		if ((k = field(doc, it, "Key")) == 0)
			return fail(err, MPESA_MISSING, RSP "[].Key",
			            "missing");
		if (doc->toks[k].type != JSON_STRING)
			return fail(err, MPESA_WRONG_TYPE, RSP "[].Key",
			            "not a string");
	}
	out->params = p;
	return MPESA_OK;
}

/* Key token k equals key when spaces are ignored on both sides. */
static bool
key_loose_eq(const struct json_doc *d, size_t k, const char *key)
{
	char buf[MPESA_NAME_MAX];
	const char *why;
	size_t len, i = 0, j = 0;

	if (json_str_unescape(buf, sizeof buf, d, k, &len, &why) != CODEC_OK)
		return false;
	for (;;) {
		while (buf[i] == ' ')
			i++;
		while (key[j] == ' ')
			j++;
		if (buf[i] != key[j])
			return false;
		if (buf[i] == '\0')
			return true;
		i++;
		j++;
	}
}

size_t
mpesa_result_param(const struct mpesa_result *r, const char *key)
{
	const struct json_doc *d = r->doc;
	size_t it, p = r->params;

	if (p == 0)
		return 0;
	it = d->toks[p].type == JSON_ARRAY ? json_first(d, p) : p;
	for (; it != 0;
	     it = d->toks[p].type == JSON_ARRAY ? json_next(d, p, it) : 0)
		if (key_loose_eq(d, field(d, it, "Key"), key))
			return field(d, it, "Value");
	return 0;
}

/* A ResultParameter Value as a string: strings as sent, numbers as their
 * text (Values mix both). */
static enum mpesa_rc
param_str(const struct mpesa_result *r, const char *key, const char *path,
          char *dst, size_t cap, struct mpesa_err *err)
{
	size_t v = mpesa_result_param(r, key);
	struct json_span sp;

	dst[0] = '\0';
	if (v == 0)
		return MPESA_OK;
	if (r->doc->toks[v].type == JSON_STRING)
		return copy_str(r->doc, v, dst, cap, path, err);
	if (r->doc->toks[v].type != JSON_NUMBER)
		return fail(err, MPESA_WRONG_TYPE, path,
		            "not a string or number");
	sp = json_span(r->doc, v);
	if (sp.len >= cap)
		return fail(err, MPESA_BAD_VALUE, path, "too long");
	memcpy(dst, sp.ptr, sp.len);
	dst[sp.len] = '\0';
	return MPESA_OK;
}

static enum mpesa_rc
param_amount(const struct mpesa_result *r, const char *key, const char *path,
             int64_t *out, bool *has, struct mpesa_err *err)
{
	size_t v = mpesa_result_param(r, key);
	bool is_blank;

	*has = false;
	*out = 0;
	if (v == 0)
		return MPESA_OK;
	TRY(amount_from_tok(r->doc, v, CODE_ANY, out, &is_blank, path, err));
	*has = !is_blank;
	return MPESA_OK;
}

enum mpesa_rc
mpesa_b2c_result_parse(struct mpesa_b2c_result *out, const struct json_doc *doc,
                       struct mpesa_err *err)
{
	memset(out, 0, sizeof *out);
	TRY(mpesa_result_parse(&out->r, doc, err));
	TRY(param_amount(&out->r, "TransactionAmount",
	                 RSP "[TransactionAmount]", &out->amount_minor,
	                 &out->has_amount, err));
	TRY(param_str(&out->r, "TransactionReceipt", RSP "[TransactionReceipt]",
	              out->receipt, sizeof out->receipt, err));
	TRY(param_str(&out->r, "ReceiverPartyPublicName",
	              RSP "[ReceiverPartyPublicName]", out->receiver_name,
	              sizeof out->receiver_name, err));
	TRY(param_str(&out->r, "TransactionCompletedDateTime",
	              RSP "[TransactionCompletedDateTime]", out->completed_at,
	              sizeof out->completed_at, err));
	TRY(param_amount(&out->r, "B2CUtilityAccountAvailableFunds",
	                 RSP "[B2CUtilityAccountAvailableFunds]",
	                 &out->utility_funds_minor, &out->has_utility_funds,
	                 err));
	if (mpesa_code_is_zero(&out->r.result_code)) {
		if (!out->has_amount)
			return fail(err, MPESA_MISSING,
			            RSP "[TransactionAmount]",
			            "missing on success");
		if (out->amount_minor <= 0)
			return fail(err, MPESA_BAD_VALUE,
			            RSP "[TransactionAmount]",
			            "amount not positive");
		if (out->receipt[0] == '\0')
			return fail(err, MPESA_MISSING,
			            RSP "[TransactionReceipt]",
			            "missing on success");
	}
	return MPESA_OK;
}

enum mpesa_rc
mpesa_reversal_result_parse(struct mpesa_reversal_result *out,
                            const struct json_doc *doc, struct mpesa_err *err)
{
	memset(out, 0, sizeof *out);
	TRY(mpesa_result_parse(&out->r, doc, err));
	TRY(param_str(&out->r, "OriginalTransactionID",
	              RSP "[OriginalTransactionID]", out->original_txn,
	              sizeof out->original_txn, err));
	TRY(param_amount(&out->r, "Amount", RSP "[Amount]", &out->amount_minor,
	                 &out->has_amount, err));
	if (mpesa_code_is_zero(&out->r.result_code)) {
		if (out->original_txn[0] == '\0')
			return fail(err, MPESA_MISSING,
			            RSP "[OriginalTransactionID]",
			            "missing on success");
		if (!out->has_amount)
			return fail(err, MPESA_MISSING, RSP "[Amount]",
			            "missing on success");
		if (out->amount_minor <= 0)
			return fail(err, MPESA_BAD_VALUE, RSP "[Amount]",
			            "amount not positive");
	}
	return MPESA_OK;
}

enum mpesa_rc
mpesa_status_result_parse(struct mpesa_status_result *out,
                          const struct json_doc *doc, struct mpesa_err *err)
{
	memset(out, 0, sizeof *out);
	TRY(mpesa_result_parse(&out->r, doc, err));
	TRY(param_str(&out->r, "ReceiptNo", RSP "[ReceiptNo]", out->receipt,
	              sizeof out->receipt, err));
	TRY(param_amount(&out->r, "Amount", RSP "[Amount]", &out->amount_minor,
	                 &out->has_amount, err));
	TRY(param_str(&out->r, "TransactionStatus", RSP "[TransactionStatus]",
	              out->status, sizeof out->status, err));
	TRY(param_str(&out->r, "DebitPartyName", RSP "[DebitPartyName]",
	              out->debit_party, sizeof out->debit_party, err));
	TRY(param_str(&out->r, "CreditPartyName", RSP "[CreditPartyName]",
	              out->credit_party, sizeof out->credit_party, err));
	TRY(param_str(&out->r, "InitiatedTime", RSP "[InitiatedTime]",
	              out->initiated_time, sizeof out->initiated_time, err));
	TRY(param_str(&out->r, "FinalisedTime", RSP "[FinalisedTime]",
	              out->finalised_time, sizeof out->finalised_time, err));
	if (mpesa_code_is_zero(&out->r.result_code)) {
		if (out->receipt[0] == '\0')
			return fail(err, MPESA_MISSING, RSP "[ReceiptNo]",
			            "missing on success");
		if (!out->has_amount)
			return fail(err, MPESA_MISSING, RSP "[Amount]",
			            "missing on success");
		if (out->status[0] == '\0')
			return fail(err, MPESA_MISSING,
			            RSP "[TransactionStatus]",
			            "missing on success");
	}
	return MPESA_OK;
}
