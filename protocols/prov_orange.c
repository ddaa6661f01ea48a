/*
 * prov_orange.c - Orange Money WebPay builders and parsers
 * (docs/providers.md §5, reference/wire-formats.md §3.1).
 *
 * Pure: no I/O, no allocation, no clock, no globals but const tables.
 */
#include "prov_orange.h"

#include <string.h>

/* Indexed by enum orange_status: the one place the words live. */
static const struct prov_status_map orange_statuses[] = {
    {"INITIATED", PROV_PENDING}, {"PENDING", PROV_PENDING},
    {"EXPIRED", PROV_FAILED},    {"SUCCESS", PROV_SUCCEEDED},
    {"FAILED", PROV_FAILED},
};
#define N_STATUSES (sizeof orange_statuses / sizeof orange_statuses[0])

const struct prov_status_map *
orange_status_map(size_t *n)
{
	*n = N_STATUSES;
	return orange_statuses;
}

int
orange_currency_exponent(const char *c)
{
	if (c != NULL && strcmp(c, "OUV") == 0)
		return 0; /* dev sandbox pseudo-currency (docs/providers.md) */
	return prov_currency_exponent(c);
}

enum prov_rc
orange_token_parse(struct orange_token *out, const struct json_doc *doc,
                   struct prov_err *err)
{
	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_str(doc, 0, "token_type", "token_type",
	                  PROV_REQ | PROV_NONEMPTY, out->token_type,
	                  sizeof out->token_type, err));
	PROV_TRY(prov_str(doc, 0, "access_token", "access_token",
	                  PROV_REQ | PROV_NONEMPTY, out->access_token,
	                  sizeof out->access_token, err));
	PROV_TRY(prov_int(doc, 0, "expires_in", "expires_in",
	                  PROV_NULLABLE | PROV_POSITIVE, PROV_NUM | PROV_STR,
	                  &out->expires_in_s, &out->has_expires_in, err));
	return PROV_OK;
}

/* minor in whole major units of currency as an integer, or -1. */
static int64_t
major_units(int64_t minor, const char *currency, const char **why)
{
	int e = orange_currency_exponent(currency);
	int64_t div = 1;

	if (e < 0) {
		*why = "currency: unknown";
		return -1;
	}
	if (minor <= 0) {
		*why = "amount: not positive";
		return -1;
	}
	while (e-- > 0)
		div *= 10;
	if (minor % div != 0) {
		*why = "amount: Orange takes whole units";
		return -1;
	}
	return minor / div;
}

enum codec_rc
orange_init_build(char *dst, size_t cap, const struct orange_init_req *r,
                  size_t *written, const char **why)
{
	struct json_w w;
	int64_t amount;

	if ((amount = major_units(r->amount_minor, r->currency, why)) < 0)
		return CODEC_BAD;
	if (!prov_text_ok(r->merchant_key, 1, 64, "merchant_key: 1-64 bytes",
	                  why) ||
	    !prov_text_ok(r->order_id, 1, ORANGE_ORDER_MAX,
	                  "order_id: 1-30 bytes", why) ||
	    !prov_text_ok(r->return_url, 8, ORANGE_URL_MAX - 1,
	                  "return_url: 8-1023 bytes", why) ||
	    !prov_text_ok(r->cancel_url, 8, ORANGE_URL_MAX - 1,
	                  "cancel_url: 8-1023 bytes", why) ||
	    !prov_text_ok(r->notif_url, 8, ORANGE_URL_MAX - 1,
	                  "notif_url: 8-1023 bytes", why) ||
	    !prov_chars_ok(r->lang, 2, 2, NULL, "lang: two letters", why) ||
	    !prov_text_ok(r->reference, 1, ORANGE_ORDER_MAX,
	                  "reference: 1-30 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "merchant_key", r->merchant_key);
	prov_w_kv(&w, "currency", r->currency);
	prov_w_kv(&w, "order_id", r->order_id);
	json_w_key(&w, "amount");
	json_w_int(&w, amount);
	prov_w_kv(&w, "return_url", r->return_url);
	prov_w_kv(&w, "cancel_url", r->cancel_url);
	prov_w_kv(&w, "notif_url", r->notif_url);
	prov_w_kv(&w, "lang", r->lang);
	prov_w_kv(&w, "reference", r->reference);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

enum prov_rc
orange_init_resp_parse(struct orange_init_resp *out, const struct json_doc *doc,
                       struct prov_err *err)
{
	bool has;

	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_int(doc, 0, "status", "status", PROV_REQ, PROV_NUM,
	                  &out->status, &has, err));
	if (out->status != 201)
		return prov_fail(err, PROV_BAD_VALUE, "status", "not 201");
	PROV_TRY(prov_str(doc, 0, "message", "message", PROV_NULLABLE,
	                  out->message, sizeof out->message, err));
	PROV_TRY(prov_str(doc, 0, "pay_token", "pay_token",
	                  PROV_REQ | PROV_NONEMPTY, out->pay_token,
	                  sizeof out->pay_token, err));
	PROV_TRY(prov_str(doc, 0, "payment_url", "payment_url",
	                  PROV_REQ | PROV_NONEMPTY, out->payment_url,
	                  sizeof out->payment_url, err));
	PROV_TRY(prov_str(doc, 0, "notif_token", "notif_token",
	                  PROV_REQ | PROV_NONEMPTY, out->notif_token,
	                  sizeof out->notif_token, err));
	return PROV_OK;
}

enum codec_rc
orange_status_build(char *dst, size_t cap, const char *order_id,
                    int64_t amount_minor, const char *currency,
                    const char *pay_token, size_t *written, const char **why)
{
	struct json_w w;
	int64_t amount;

	if ((amount = major_units(amount_minor, currency, why)) < 0)
		return CODEC_BAD;
	if (!prov_text_ok(order_id, 1, ORANGE_ORDER_MAX, "order_id: 1-30 bytes",
	                  why) ||
	    !prov_text_ok(pay_token, 1, ORANGE_ID_MAX - 1,
	                  "pay_token: 1-64 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "order_id", order_id);
	json_w_key(&w, "amount");
	json_w_int(&w, amount);
	prov_w_kv(&w, "pay_token", pay_token);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

/* The status member -> enum, outcome and (failures) reason. */
static enum prov_rc
status_of(const struct json_doc *doc, enum orange_status *st,
          enum prov_outcome *outcome, char *reason, size_t rcap,
          struct prov_err *err)
{
	char word[16];
	size_t i;

	PROV_TRY(prov_status(doc, 0, "status", "status", PROV_REQ,
	                     orange_statuses, N_STATUSES, word, sizeof word,
	                     outcome, err));
	for (i = 0; i < N_STATUSES; i++)
		if (strcmp(word, orange_statuses[i].word) == 0)
			*st = (enum orange_status)i;
	if (*outcome == PROV_FAILED && strlen(word) < rcap)
		memcpy(reason, word, strlen(word) + 1);
	return PROV_OK;
}

enum prov_rc
orange_status_parse(struct orange_status_resp *out, const struct json_doc *doc,
                    struct prov_err *err)
{
	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(status_of(doc, &out->status, &out->outcome, out->reason,
	                   sizeof out->reason, err));
	PROV_TRY(prov_str(doc, 0, "order_id", "order_id", PROV_NULLABLE,
	                  out->order_id, sizeof out->order_id, err));
	PROV_TRY(prov_str(doc, 0, "txnid", "txnid", PROV_NULLABLE, out->txnid,
	                  sizeof out->txnid, err));
	if (out->status == ORANGE_SUCCESS && out->txnid[0] == '\0')
		return prov_fail(err, PROV_MISSING, "txnid",
		                 "missing on success");
	return PROV_OK;
}

enum prov_rc
orange_notif_parse(struct orange_notif *out, const struct json_doc *doc,
                   struct prov_err *err)
{
	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(status_of(doc, &out->status, &out->outcome, out->reason,
	                   sizeof out->reason, err));
	if (out->status != ORANGE_SUCCESS && out->status != ORANGE_FAILED) {
		out->outcome = PROV_UNKNOWN;
		return prov_fail(err, PROV_BAD_VALUE, "status",
		                 "not SUCCESS or FAILED");
	}
	PROV_TRY(prov_str(doc, 0, "notif_token", "notif_token",
	                  PROV_REQ | PROV_NONEMPTY, out->notif_token,
	                  sizeof out->notif_token, err));
	PROV_TRY(prov_str(doc, 0, "txnid", "txnid", PROV_NULLABLE, out->txnid,
	                  sizeof out->txnid, err));
	if (out->status == ORANGE_SUCCESS && out->txnid[0] == '\0')
		return prov_fail(err, PROV_MISSING, "txnid",
		                 "missing on success");
	return PROV_OK;
}
