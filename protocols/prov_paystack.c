/*
 * prov_paystack.c - Paystack charge builder and parsers
 * (docs/providers.md §7, reference/wire-formats.md §5).
 *
 * Pure: no I/O, no allocation, no clock, no globals but const tables.
 */
#include "prov_paystack.h"

#include <string.h>

/* Charge next-step words and transaction statuses: the one place the
 * words live (docs/providers.md §7 has the reasons), expanded into the
 * status table and the next-step table. */
#define PAYSTACK_WORDS(X)                                                      \
	X("success", PROV_SUCCEEDED, PAYSTACK_NEXT_NONE)                       \
	X("failed", PROV_FAILED, PAYSTACK_NEXT_NONE)                           \
	X("pending", PROV_PENDING, PAYSTACK_NEXT_NONE)                         \
	X("ongoing", PROV_PENDING, PAYSTACK_NEXT_NONE)                         \
	X("processing", PROV_PENDING, PAYSTACK_NEXT_NONE)                      \
	X("queued", PROV_PENDING, PAYSTACK_NEXT_NONE)                          \
	X("abandoned", PROV_PENDING, PAYSTACK_NEXT_NONE)                       \
	X("reversed", PROV_UNKNOWN, PAYSTACK_NEXT_NONE)                        \
	X("send_otp", PROV_PENDING, PAYSTACK_SEND_OTP)                         \
	X("send_pin", PROV_PENDING, PAYSTACK_SEND_PIN)                         \
	X("send_phone", PROV_PENDING, PAYSTACK_SEND_PHONE)                     \
	X("send_birthday", PROV_PENDING, PAYSTACK_SEND_BIRTHDAY)               \
	X("send_address", PROV_PENDING, PAYSTACK_SEND_ADDRESS)                 \
	X("open_url", PROV_PENDING, PAYSTACK_OPEN_URL)                         \
	X("pay_offline", PROV_PENDING, PAYSTACK_PAY_OFFLINE)

static const struct prov_status_map paystack_statuses[] = {
#define X(w, o, n) {w, o},
    PAYSTACK_WORDS(X)
#undef X
};
static const enum paystack_next paystack_nexts[] = {
#define X(w, o, n) n,
    PAYSTACK_WORDS(X)
#undef X
};
#define N_WORDS (sizeof paystack_statuses / sizeof paystack_statuses[0])

const struct prov_status_map *
paystack_status_map(size_t *n)
{
	*n = N_WORDS;
	return paystack_statuses;
}

/* ---- envelope --------------------------------------------------------- */

enum prov_rc
paystack_envelope_parse(struct paystack_envelope *out,
                        const struct json_doc *doc, struct prov_err *err)
{
	bool has;

	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_bool(doc, 0, "status", "status", PROV_REQ, &out->status,
	                   &has, err));
	PROV_TRY(prov_str(doc, 0, "message", "message", PROV_REQ, out->message,
	                  sizeof out->message, err));
	return prov_get(doc, 0, "data", "data", PROV_NULLABLE, &out->data, err);
}

/* ---- charge ----------------------------------------------------------- */

enum codec_rc
paystack_charge_build(char *dst, size_t cap,
                      const struct paystack_charge_req *r, size_t *written,
                      const char **why)
{
	struct json_w w;

	if (r->amount_minor <= 0) {
		*why = "amount: not positive";
		return CODEC_BAD;
	}
	if (r->currency == NULL || prov_currency_exponent(r->currency) < 0) {
		*why = "currency: unknown";
		return CODEC_BAD;
	}
	if (!prov_text_ok(r->email, 3, 254, "email: 3-254 bytes with '@'",
	                  why) ||
	    !prov_digits_ok(r->phone, 5, 15, "phone: 5-15 digits", why) ||
	    !prov_chars_ok(r->provider, 1, 32, "_",
	                   "provider: 1-32 of [A-Za-z0-9_]", why))
		return CODEC_BAD;
	if (strchr(r->email, '@') == NULL) {
		*why = "email: 3-254 bytes with '@'";
		return CODEC_BAD;
	}
	if (r->reference != NULL &&
	    !prov_chars_ok(r->reference, 1, 100,
	                   "-.=", "reference: 1-100 of [A-Za-z0-9.=-]", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	json_w_key(&w, "amount");
	json_w_int(&w, r->amount_minor);
	prov_w_kv(&w, "email", r->email);
	prov_w_kv(&w, "currency", r->currency);
	json_w_key(&w, "mobile_money");
	json_w_obj_begin(&w);
	prov_w_kv(&w, "phone", r->phone);
	prov_w_kv(&w, "provider", r->provider);
	json_w_obj_end(&w);
	if (r->reference != NULL)
		prov_w_kv(&w, "reference", r->reference);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

enum codec_rc
paystack_submit_build(char *dst, size_t cap, enum paystack_submit what,
                      const char *value, const char *reference,
                      size_t *written, const char **why)
{
	bool otp = what == PAYSTACK_SUBMIT_OTP;
	struct json_w w;

	if (what != PAYSTACK_SUBMIT_OTP && what != PAYSTACK_SUBMIT_PIN) {
		*why = "submit: unknown step";
		return CODEC_BAD;
	}
	if (!prov_digits_ok(value, 4, otp ? 10 : 6,
	                    otp ? "otp: 4-10 digits" : "pin: 4-6 digits",
	                    why) ||
	    !prov_chars_ok(reference, 1, 100, "-.=",
	                   "reference: 1-100 of [A-Za-z0-9.=-]", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, otp ? "otp" : "pin", value);
	prov_w_kv(&w, "reference", reference);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

const char *
paystack_submit_path(enum paystack_submit what)
{
	return what == PAYSTACK_SUBMIT_OTP ? "/charge/submit_otp"
	                                   : "/charge/submit_pin";
}

static void
set_reason(char *dst, size_t cap, const char *a, const char *b)
{
	const char *r = a[0] != '\0' ? a : b;
	size_t n = strlen(r);

	if (n >= cap)
		n = cap - 1; /* a log text: cut */
	memcpy(dst, r, n);
	dst[n] = '\0';
}

/* What a transaction object must carry: verify needs id, amount and
 * currency; a webhook needs amount; a charge step needs amount and
 * currency only on success. */
enum txn_mode { TXN_CHARGE, TXN_VERIFY, TXN_WEBHOOK };

static enum prov_rc
txn_parse(struct paystack_txn *out, const struct json_doc *doc, size_t data,
          enum txn_mode mode, struct prov_err *err)
{
	unsigned exponent;
	size_t i;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(prov_status(doc, data, "status", "data.status", PROV_REQ,
	                     paystack_statuses, N_WORDS, out->status,
	                     sizeof out->status, &out->outcome, err));
	for (i = 0; i < N_WORDS; i++)
		if (strcmp(out->status, paystack_statuses[i].word) == 0)
			out->next = paystack_nexts[i];
	PROV_TRY(prov_int_text(doc, data, "id", "data.id",
	                       mode == TXN_VERIFY ? PROV_REQ : PROV_NULLABLE,
	                       PROV_NUM, out->id, sizeof out->id, err));
	PROV_TRY(prov_str(doc, data, "reference", "data.reference",
	                  PROV_REQ | PROV_NONEMPTY, out->reference,
	                  sizeof out->reference, err));
	PROV_TRY(prov_int(doc, data, "amount", "data.amount",
	                  (mode == TXN_CHARGE ? PROV_NULLABLE : PROV_REQ) |
	                      PROV_POSITIVE,
	                  PROV_NUM, &out->amount_minor, &out->has_amount, err));
	PROV_TRY(prov_currency(doc, data, "currency", "data.currency",
	                       mode == TXN_VERIFY ? PROV_REQ : PROV_NULLABLE,
	                       out->currency, sizeof out->currency, &exponent,
	                       err));
	PROV_TRY(prov_str(doc, data, "gateway_response",
	                  "data.gateway_response", PROV_NULLABLE,
	                  out->gateway_response, sizeof out->gateway_response,
	                  err));
	PROV_TRY(prov_str(doc, data, "channel", "data.channel", PROV_NULLABLE,
	                  out->channel, sizeof out->channel, err));
	PROV_TRY(prov_str(doc, data, "paid_at", "data.paid_at", PROV_NULLABLE,
	                  out->paid_at, sizeof out->paid_at, err));
	PROV_TRY(prov_str(doc, data, "display_text", "data.display_text",
	                  PROV_NULLABLE, out->display_text,
	                  sizeof out->display_text, err));
	PROV_TRY(prov_str(doc, data, "url", "data.url", PROV_NULLABLE, out->url,
	                  sizeof out->url, err));
	if (out->outcome == PROV_SUCCEEDED) {
		if (!out->has_amount)
			return prov_fail(err, PROV_MISSING, "data.amount",
			                 "missing on success");
		if (out->currency[0] == '\0' && mode != TXN_WEBHOOK)
			return prov_fail(err, PROV_MISSING, "data.currency",
			                 "missing on success");
	}
	if (out->next == PAYSTACK_OPEN_URL && out->url[0] == '\0')
		return prov_fail(err, PROV_MISSING, "data.url",
		                 "missing for open_url");
	if (out->outcome == PROV_FAILED)
		set_reason(out->reason, sizeof out->reason,
		           out->gateway_response, out->status);
	return PROV_OK;
}

enum prov_rc
paystack_charge_resp_parse(struct paystack_charge_resp *out,
                           const struct json_doc *doc, struct prov_err *err)
{
	struct paystack_envelope env;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(paystack_envelope_parse(&env, doc, err));
	out->status = env.status;
	memcpy(out->message, env.message, sizeof out->message);
	if (!env.status) {
		out->outcome = PROV_FAILED;
		set_reason(out->reason, sizeof out->reason, env.message,
		           "refused");
		return PROV_OK;
	}
	if (env.data == 0)
		return prov_fail(err, PROV_MISSING, "data", "missing");
	if (doc->toks[env.data].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "data", "not an object");
	out->has_data = true;
	PROV_TRY(txn_parse(&out->txn, doc, env.data, TXN_CHARGE, err));
	out->outcome = out->txn.outcome;
	memcpy(out->reason, out->txn.reason, sizeof out->reason);
	return PROV_OK;
}

enum prov_rc
paystack_verify_parse(struct paystack_txn *out, const struct json_doc *doc,
                      struct prov_err *err)
{
	struct paystack_envelope env;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(paystack_envelope_parse(&env, doc, err));
	if (!env.status)
		return prov_fail(err, PROV_BAD_VALUE, "status",
		                 "error response");
	if (env.data == 0)
		return prov_fail(err, PROV_MISSING, "data", "missing");
	if (doc->toks[env.data].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "data", "not an object");
	return txn_parse(out, doc, env.data, TXN_VERIFY, err);
}

enum prov_rc
paystack_webhook_parse(struct paystack_webhook *out, const struct json_doc *doc,
                       struct prov_err *err)
{
	size_t data;

	memset(out, 0, sizeof *out);
	out->event = PAYSTACK_EVENT_OTHER;
	out->txn.outcome = PROV_UNKNOWN;
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_str(doc, 0, "event", "event", PROV_REQ | PROV_NONEMPTY,
	                  out->event_name, sizeof out->event_name, err));
	if (strcmp(out->event_name, "charge.success") == 0)
		out->event = PAYSTACK_EVENT_CHARGE_SUCCESS;
	else if (strcmp(out->event_name, "charge.failed") == 0)
		out->event = PAYSTACK_EVENT_CHARGE_FAILED;
	else
		return PROV_OK;
	PROV_TRY(prov_obj(doc, 0, "data", "data", PROV_REQ, &data, err));
	PROV_TRY(txn_parse(&out->txn, doc, data, TXN_WEBHOOK, err));
	if ((out->event == PAYSTACK_EVENT_CHARGE_SUCCESS) !=
	        (out->txn.outcome == PROV_SUCCEEDED) ||
	    (out->event == PAYSTACK_EVENT_CHARGE_FAILED &&
	     out->txn.outcome != PROV_FAILED))
		return prov_fail(err, PROV_BAD_VALUE, "data.status",
		                 "does not match the event");
	return PROV_OK;
}
