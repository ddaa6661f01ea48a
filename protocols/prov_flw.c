/*
 * prov_flw.c - Flutterwave v3 builders and parsers (docs/providers.md §6,
 * reference/wire-formats.md §4).
 *
 * Pure: no I/O, no allocation, no clock, no globals but const tables.
 */
#include "prov_flw.h"

#include <string.h>

/* Transaction statuses: the one place the words live.  "cancelled" is
 * UNCONFIRMED (docs/providers.md §6). */
static const struct prov_status_map flw_statuses[] = {
    {"successful", PROV_SUCCEEDED},
    {"pending", PROV_PENDING},
    {"failed", PROV_FAILED},
    {"cancelled", PROV_FAILED},
};
#define N_STATUSES (sizeof flw_statuses / sizeof flw_statuses[0])

static const char *const recurrences[] = {"ONCE", "HOURLY", "DAILY", "WEEKLY",
                                          "MONTHLY"};

const struct prov_status_map *
flw_status_map(size_t *n)
{
	*n = N_STATUSES;
	return flw_statuses;
}

/* ---- envelope --------------------------------------------------------- */

enum prov_rc
flw_envelope_parse(struct flw_envelope *out, const struct json_doc *doc,
                   struct prov_err *err)
{
	char st[16];

	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(
	    prov_str(doc, 0, "status", "status", PROV_REQ, st, sizeof st, err));
	if (strcmp(st, "success") == 0)
		out->is_success = true;
	else if (strcmp(st, "error") != 0)
		return prov_fail(err, PROV_BAD_VALUE, "status",
		                 "not success or error");
	PROV_TRY(prov_str(doc, 0, "message", "message", PROV_REQ, out->message,
	                  sizeof out->message, err));
	return prov_get(doc, 0, "data", "data", PROV_NULLABLE, &out->data, err);
}

/* The envelope of a success body whose data must be an object. */
static enum prov_rc
success_data(const struct json_doc *doc, size_t *data, struct prov_err *err)
{
	struct flw_envelope env;

	PROV_TRY(flw_envelope_parse(&env, doc, err));
	if (!env.is_success)
		return prov_fail(err, PROV_BAD_VALUE, "status",
		                 "error response");
	return prov_obj(doc, 0, "data", "data", PROV_REQ, data, err);
}

/* ---- bills ------------------------------------------------------------ */

enum prov_rc
flw_bill_categories_parse(const struct json_doc *doc, size_t *arr,
                          size_t *n_items, struct prov_err *err)
{
	struct flw_envelope env;

	*arr = 0;
	*n_items = 0;
	PROV_TRY(flw_envelope_parse(&env, doc, err));
	if (!env.is_success)
		return prov_fail(err, PROV_BAD_VALUE, "status",
		                 "error response");
	PROV_TRY(prov_arr(doc, 0, "data", "data", PROV_REQ, arr, err));
	*n_items = doc->toks[*arr].n_items;
	return PROV_OK;
}

#define CAT "data[]."

enum prov_rc
flw_bill_category_parse(struct flw_bill_category *out,
                        const struct json_doc *doc, size_t item,
                        struct prov_err *err)
{
	bool has;

	memset(out, 0, sizeof *out);
	if (item == 0 || item >= doc->n_toks ||
	    doc->toks[item].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "data[]",
		                 "not an object");
	PROV_TRY(prov_int(doc, item, "id", CAT "id", PROV_REQ, PROV_NUM,
	                  &out->id, &has, err));
	PROV_TRY(prov_str(doc, item, "biller_code", CAT "biller_code",
	                  PROV_REQ | PROV_NONEMPTY, out->biller_code,
	                  sizeof out->biller_code, err));
	PROV_TRY(prov_str(doc, item, "name", CAT "name", PROV_REQ, out->name,
	                  sizeof out->name, err));
	PROV_TRY(prov_str(doc, item, "country", CAT "country",
	                  PROV_REQ | PROV_NONEMPTY, out->country,
	                  sizeof out->country, err));
	PROV_TRY(prov_bool(doc, item, "is_airtime", CAT "is_airtime", PROV_REQ,
	                   &out->is_airtime, &has, err));
	PROV_TRY(prov_str(doc, item, "biller_name", CAT "biller_name",
	                  PROV_REQ | PROV_NONEMPTY, out->biller_name,
	                  sizeof out->biller_name, err));
	PROV_TRY(prov_str(doc, item, "item_code", CAT "item_code",
	                  PROV_REQ | PROV_NONEMPTY, out->item_code,
	                  sizeof out->item_code, err));
	PROV_TRY(prov_str(doc, item, "short_name", CAT "short_name",
	                  PROV_NULLABLE, out->short_name,
	                  sizeof out->short_name, err));
	PROV_TRY(prov_str(doc, item, "label_name", CAT "label_name",
	                  PROV_NULLABLE, out->label_name,
	                  sizeof out->label_name, err));
	PROV_TRY(prov_amount(doc, item, "fee", CAT "fee", PROV_REQ, PROV_NUM,
	                     FLW_BILL_EXPONENT, &out->fee_minor, &has, err));
	if (out->fee_minor < 0)
		return prov_fail(err, PROV_BAD_VALUE, CAT "fee", "negative");
	PROV_TRY(prov_amount(doc, item, "amount", CAT "amount", PROV_REQ,
	                     PROV_NUM, FLW_BILL_EXPONENT, &out->amount_minor,
	                     &has, err));
	if (out->amount_minor < 0)
		return prov_fail(err, PROV_BAD_VALUE, CAT "amount", "negative");
	return PROV_OK;
}

static bool
code_ok(const char *s, const char *what, const char **why)
{
	return prov_chars_ok(s, 1, 64, "_-", what, why);
}

enum codec_rc
flw_bill_validate_path(char *dst, size_t cap, const char *item_code,
                       const char *biller_code, const char *customer,
                       size_t *written, const char **why)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, need;
	const char *p;

	if (!code_ok(item_code, "item_code: 1-64 of [A-Za-z0-9_-]", why) ||
	    !code_ok(biller_code, "biller_code: 1-64 of [A-Za-z0-9_-]", why) ||
	    !prov_text_ok(customer, 1, 128, "customer: 1-128 bytes", why))
		return CODEC_BAD;
	need = strlen("/v3/bill-items/") + strlen(item_code) +
	       strlen("/validate?code=") + strlen(biller_code) +
	       strlen("&customer=") + 3 * strlen(customer) + 1;
	if (cap < need) {
		*written = need;
		return CODEC_NEED_MORE;
	}
#define PUT(s)                                                                 \
	do {                                                                   \
		size_t l_ = strlen(s);                                         \
		memcpy(dst + n, (s), l_);                                      \
		n += l_;                                                       \
	} while (0)
	PUT("/v3/bill-items/");
	PUT(item_code);
	PUT("/validate?code=");
	PUT(biller_code);
	PUT("&customer=");
#undef PUT
	for (p = customer; *p; p++) {
		unsigned char c = (unsigned char)*p;

		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
		    c == '_' || c == '~') {
			dst[n++] = (char)c;
		} else {
			dst[n++] = '%';
			dst[n++] = hex[c >> 4];
			dst[n++] = hex[c & 15];
		}
	}
	dst[n] = '\0';
	*written = n;
	return CODEC_OK;
}

#define VAL "data."

enum prov_rc
flw_bill_validate_parse(struct flw_bill_validation *out,
                        const struct json_doc *doc, struct prov_err *err)
{
	size_t data;
	bool has;

	memset(out, 0, sizeof *out);
	PROV_TRY(success_data(doc, &data, err));
	PROV_TRY(prov_str(doc, data, "response_code", VAL "response_code",
	                  PROV_REQ | PROV_NONEMPTY, out->response_code,
	                  sizeof out->response_code, err));
	out->is_valid = strcmp(out->response_code, "00") == 0;
	PROV_TRY(prov_str(doc, data, "response_message", VAL "response_message",
	                  PROV_NULLABLE, out->response_message,
	                  sizeof out->response_message, err));
	PROV_TRY(prov_str(doc, data, "name", VAL "name", PROV_NULLABLE,
	                  out->name, sizeof out->name, err));
	PROV_TRY(prov_str(doc, data, "customer", VAL "customer", PROV_NULLABLE,
	                  out->customer, sizeof out->customer, err));
	PROV_TRY(prov_str(doc, data, "biller_code", VAL "biller_code",
	                  PROV_NULLABLE, out->biller_code,
	                  sizeof out->biller_code, err));
	PROV_TRY(prov_str(doc, data, "product_code", VAL "product_code",
	                  PROV_NULLABLE, out->product_code,
	                  sizeof out->product_code, err));
	PROV_TRY(prov_str(doc, data, "address", VAL "address", PROV_NULLABLE,
	                  out->address, sizeof out->address, err));
	PROV_TRY(prov_amount(doc, data, "amount", VAL "amount", PROV_NULLABLE,
	                     PROV_NUM, FLW_BILL_EXPONENT,
	                     &out->amount_due_minor, &out->has_amount_due,
	                     err));
	PROV_TRY(prov_amount(doc, data, "fee", VAL "fee", PROV_NULLABLE,
	                     PROV_NUM, FLW_BILL_EXPONENT, &out->fee_minor, &has,
	                     err));
	PROV_TRY(prov_amount(doc, data, "minimum", VAL "minimum", PROV_NULLABLE,
	                     PROV_NUM, FLW_BILL_EXPONENT, &out->minimum_minor,
	                     &has, err));
	PROV_TRY(prov_amount(doc, data, "maximum", VAL "maximum", PROV_NULLABLE,
	                     PROV_NUM, FLW_BILL_EXPONENT, &out->maximum_minor,
	                     &has, err));
	if (out->amount_due_minor < 0 || out->fee_minor < 0 ||
	    out->minimum_minor < 0 || out->maximum_minor < 0)
		return prov_fail(err, PROV_BAD_VALUE, VAL "amount",
		                 "negative amount");
	if (out->is_valid && out->name[0] == '\0')
		return prov_fail(err, PROV_MISSING, VAL "name",
		                 "missing on a valid customer");
	return PROV_OK;
}

enum codec_rc
flw_bill_payment_path(char *dst, size_t cap, const char *biller_code,
                      const char *item_code, size_t *written, const char **why)
{
	size_t need;

	if (!code_ok(biller_code, "biller_code: 1-64 of [A-Za-z0-9_-]", why) ||
	    !code_ok(item_code, "item_code: 1-64 of [A-Za-z0-9_-]", why))
		return CODEC_BAD;
	need = strlen("/v3/billers/") + strlen(biller_code) +
	       strlen("/items/") + strlen(item_code) + strlen("/payment") + 1;
	if (cap < need) {
		*written = need;
		return CODEC_NEED_MORE;
	}
	{
		const char *parts[] = {"/v3/billers/", biller_code, "/items/",
		                       item_code, "/payment"};
		size_t i, n = 0;

		for (i = 0; i < 5; i++) {
			memcpy(dst + n, parts[i], strlen(parts[i]));
			n += strlen(parts[i]);
		}
		dst[n] = '\0';
	}
	*written = need - 1;
	return CODEC_OK;
}

/* Checks shared by both bill bodies. */
static bool
bill_common_ok(const char *country, const char *customer, int64_t amount,
               const char *reference, const char **why)
{
	if (amount <= 0) {
		*why = "amount: not positive";
		return false;
	}
	return prov_chars_ok(country, 2, 2, NULL, "country: two letters",
	                     why) &&
	       prov_text_ok(customer, 1, 64, "customer: 1-64 bytes", why) &&
	       prov_text_ok(reference, 1, 100, "reference: 1-100 bytes", why);
}

enum codec_rc
flw_bill_payment_build(char *dst, size_t cap,
                       const struct flw_bill_payment_req *r, size_t *written,
                       const char **why)
{
	struct json_w w;

	if (!bill_common_ok(r->country, r->customer_id, r->amount_minor,
	                    r->reference, why))
		return CODEC_BAD;
	if (r->callback_url != NULL &&
	    !prov_text_ok(r->callback_url, 8, FLW_URL_MAX - 1,
	                  "callback_url: 8-1023 bytes", why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "country", r->country);
	prov_w_kv(&w, "customer_id", r->customer_id);
	prov_w_amount(&w, "amount", r->amount_minor, FLW_BILL_EXPONENT, false);
	prov_w_kv(&w, "reference", r->reference);
	if (r->callback_url != NULL)
		prov_w_kv(&w, "callback_url", r->callback_url);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

enum codec_rc
flw_bill_legacy_build(char *dst, size_t cap,
                      const struct flw_bill_legacy_req *r, size_t *written,
                      const char **why)
{
	struct json_w w;

	if (!bill_common_ok(r->country, r->customer, r->amount_minor,
	                    r->reference, why))
		return CODEC_BAD;
	if ((unsigned)r->recurrence >= 5) {
		*why = "recurrence: unknown";
		return CODEC_BAD;
	}
	if (!prov_chars_ok(r->type, 1, 64, "_-", "type: 1-64 of [A-Za-z0-9_-]",
	                   why) ||
	    (r->biller_name != NULL &&
	     !prov_text_ok(r->biller_name, 1, 128, "biller_name: 1-128 bytes",
	                   why)))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "country", r->country);
	prov_w_kv(&w, "customer", r->customer);
	prov_w_amount(&w, "amount", r->amount_minor, FLW_BILL_EXPONENT, false);
	prov_w_kv(&w, "recurrence", recurrences[r->recurrence]);
	prov_w_kv(&w, "type", r->type);
	prov_w_kv(&w, "reference", r->reference);
	if (r->biller_name != NULL)
		prov_w_kv(&w, "biller_name", r->biller_name);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

#define CR "data."

enum prov_rc
flw_bill_created_parse(struct flw_bill_created *out, const struct json_doc *doc,
                       struct prov_err *err)
{
	size_t data, v;
	bool has;

	memset(out, 0, sizeof *out);
	PROV_TRY(success_data(doc, &data, err));
	PROV_TRY(prov_amount(doc, data, "amount", CR "amount",
	                     PROV_REQ | PROV_POSITIVE, PROV_NUM,
	                     FLW_BILL_EXPONENT, &out->amount_minor, &has, err));
	PROV_TRY(prov_str(doc, data, "phone_number", CR "phone_number",
	                  PROV_NULLABLE, out->phone_number,
	                  sizeof out->phone_number, err));
	PROV_TRY(prov_str(doc, data, "network", CR "network", PROV_NULLABLE,
	                  out->network, sizeof out->network, err));
	PROV_TRY(prov_str(doc, data, "flw_ref", CR "flw_ref",
	                  PROV_REQ | PROV_NONEMPTY, out->flw_ref,
	                  sizeof out->flw_ref, err));
	PROV_TRY(prov_str(doc, data, "tx_ref", CR "tx_ref",
	                  PROV_REQ | PROV_NONEMPTY, out->tx_ref,
	                  sizeof out->tx_ref, err));
	PROV_TRY(prov_str(doc, data, "reference", CR "reference", PROV_NULLABLE,
	                  out->reference, sizeof out->reference, err));
	/* UNCONFIRMED: the electricity token, if data carries one. */
	PROV_TRY(
	    prov_get(doc, data, "token", CR "token", PROV_NULLABLE, &v, err));
	if (v != 0)
		PROV_TRY(prov_str_tok(doc, v, CR "token", out->token,
		                      sizeof out->token, err));
	return PROV_OK;
}

enum prov_rc
flw_bill_status_parse(struct flw_bill_status *out, const struct json_doc *doc,
                      struct prov_err *err)
{
	size_t data;
	unsigned exponent;
	bool has;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(success_data(doc, &data, err));
	PROV_TRY(prov_currency(doc, data, "currency", CR "currency", PROV_REQ,
	                       out->currency, sizeof out->currency, &exponent,
	                       err));
	PROV_TRY(prov_amount(doc, data, "amount", CR "amount",
	                     PROV_REQ | PROV_POSITIVE, PROV_STR, exponent,
	                     &out->amount_minor, &has, err));
	PROV_TRY(prov_str(doc, data, "tx_ref", CR "tx_ref",
	                  PROV_REQ | PROV_NONEMPTY, out->tx_ref,
	                  sizeof out->tx_ref, err));
	PROV_TRY(prov_str(doc, data, "customer_id", CR "customer_id",
	                  PROV_NULLABLE, out->customer_id,
	                  sizeof out->customer_id, err));
	PROV_TRY(prov_str(doc, data, "product", CR "product", PROV_NULLABLE,
	                  out->product, sizeof out->product, err));
	PROV_TRY(prov_str(doc, data, "product_name", CR "product_name",
	                  PROV_NULLABLE, out->product_name,
	                  sizeof out->product_name, err));
	PROV_TRY(prov_str(doc, data, "transaction_date", CR "transaction_date",
	                  PROV_NULLABLE, out->transaction_date,
	                  sizeof out->transaction_date, err));
	PROV_TRY(prov_str(doc, data, "extra", CR "extra", PROV_NULLABLE,
	                  out->extra, sizeof out->extra, err));
	/* No status in the documented sample (docs/providers.md §6). */
	PROV_TRY(prov_status(doc, data, "status", CR "status", PROV_NULLABLE,
	                     flw_statuses, N_STATUSES, out->status,
	                     sizeof out->status, &out->outcome, err));
	if (out->status[0] == '\0')
		out->outcome = PROV_SUCCEEDED;
	if (out->outcome == PROV_FAILED)
		memcpy(out->reason, out->status, strlen(out->status) + 1);
	return PROV_OK;
}

/* ---- mobile-money charges --------------------------------------------- */

const char *
flw_momo_type_param(enum flw_momo_type t)
{
	switch (t) {
	case FLW_MOMO_GHANA:
		return "mobile_money_ghana";
	case FLW_MOMO_MPESA:
		return "mpesa";
	case FLW_MOMO_FRANCO:
		return "mobile_money_franco";
	}
	return NULL;
}

enum codec_rc
flw_charge_build(char *dst, size_t cap, const struct flw_charge_req *r,
                 size_t *written, const char **why)
{
	struct json_w w;
	int e;

	if (flw_momo_type_param(r->type) == NULL) {
		*why = "type: unknown";
		return CODEC_BAD;
	}
	if (r->amount_minor <= 0) {
		*why = "amount: not positive";
		return CODEC_BAD;
	}
	if (r->currency == NULL ||
	    (r->type == FLW_MOMO_GHANA && strcmp(r->currency, "GHS") != 0) ||
	    (r->type == FLW_MOMO_MPESA && strcmp(r->currency, "KES") != 0) ||
	    (r->type == FLW_MOMO_FRANCO && strcmp(r->currency, "XAF") != 0 &&
	     strcmp(r->currency, "XOF") != 0) ||
	    (e = prov_currency_exponent(r->currency)) < 0) {
		*why = "currency: not the type's (GHS, KES, XAF/XOF)";
		return CODEC_BAD;
	}
	if (!prov_text_ok(r->tx_ref, 1, 100, "tx_ref: 1-100 bytes", why) ||
	    !prov_text_ok(r->email, 3, 254, "email: 3-254 bytes", why) ||
	    !prov_digits_ok(r->phone_number, 5, 15,
	                    "phone_number: digits, no '+'", why) ||
	    !prov_text_ok(r->fullname, 1, 128, "fullname: 1-128 bytes", why))
		return CODEC_BAD;
	if (r->type == FLW_MOMO_GHANA
	        ? !prov_chars_ok(r->network, 1, 16, NULL,
	                         "network: 1-16 letters", why)
	        : r->network != NULL) {
		if (r->type != FLW_MOMO_GHANA)
			*why = "network: Ghana only";
		return CODEC_BAD;
	}
	if (r->type == FLW_MOMO_FRANCO
	        ? !prov_chars_ok(r->country, 2, 2, NULL, "country: two letters",
	                         why)
	        : r->country != NULL) {
		if (r->type != FLW_MOMO_FRANCO)
			*why = "country: francophone only";
		return CODEC_BAD;
	}
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "tx_ref", r->tx_ref);
	prov_w_amount(&w, "amount", r->amount_minor, (unsigned)e, false);
	prov_w_kv(&w, "currency", r->currency);
	if (r->network != NULL)
		prov_w_kv(&w, "network", r->network);
	if (r->country != NULL)
		prov_w_kv(&w, "country", r->country);
	prov_w_kv(&w, "email", r->email);
	prov_w_kv(&w, "phone_number", r->phone_number);
	prov_w_kv(&w, "fullname", r->fullname);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

/* Keys and paths of a transaction: v3 under "data", or legacy v2 flat. */
struct txn_keys {
	const char *id, *id_p;
	const char *tx_ref, *tx_ref_p;
	const char *flw_ref, *flw_ref_p;
	const char *amount_p, *charged_p, *currency_p, *status_p;
	const char *processor_p, *payment_type_p, *auth_model_p;
};

static const struct txn_keys keys_v3 = {
    "id",
    "data.id",
    "tx_ref",
    "data.tx_ref",
    "flw_ref",
    "data.flw_ref",
    "data.amount",
    "data.charged_amount",
    "data.currency",
    "data.status",
    "data.processor_response",
    "data.payment_type",
    "data.auth_model",
};

static const struct txn_keys keys_v2 = {
    "id",
    "id",
    "txRef",
    "txRef",
    "flwRef",
    "flwRef",
    "amount",
    "charged_amount",
    "currency",
    "status",
    "processor_response",
    "payment_type",
    "auth_model",
};

static enum prov_rc
txn_parse(struct flw_txn *out, const struct json_doc *doc, size_t obj,
          const struct txn_keys *k, bool need_id, struct prov_err *err)
{
	unsigned exponent;
	bool has;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(prov_int_text(doc, obj, k->id, k->id_p,
	                       need_id ? PROV_REQ : PROV_NULLABLE, PROV_NUM,
	                       out->id, sizeof out->id, err));
	PROV_TRY(prov_str(doc, obj, k->tx_ref, k->tx_ref_p,
	                  PROV_REQ | PROV_NONEMPTY, out->tx_ref,
	                  sizeof out->tx_ref, err));
	PROV_TRY(prov_str(doc, obj, k->flw_ref, k->flw_ref_p, PROV_NULLABLE,
	                  out->flw_ref, sizeof out->flw_ref, err));
	PROV_TRY(prov_currency(doc, obj, "currency", k->currency_p, PROV_REQ,
	                       out->currency, sizeof out->currency, &exponent,
	                       err));
	PROV_TRY(prov_amount(doc, obj, "amount", k->amount_p,
	                     PROV_REQ | PROV_POSITIVE, PROV_NUM, exponent,
	                     &out->amount_minor, &has, err));
	PROV_TRY(prov_amount(doc, obj, "charged_amount", k->charged_p,
	                     PROV_NULLABLE, PROV_NUM, exponent,
	                     &out->charged_amount_minor,
	                     &out->has_charged_amount, err));
	if (out->charged_amount_minor < 0)
		return prov_fail(err, PROV_BAD_VALUE, k->charged_p, "negative");
	PROV_TRY(prov_status(doc, obj, "status", k->status_p, PROV_REQ,
	                     flw_statuses, N_STATUSES, out->status,
	                     sizeof out->status, &out->outcome, err));
	PROV_TRY(prov_str(doc, obj, "processor_response", k->processor_p,
	                  PROV_NULLABLE, out->processor_response,
	                  sizeof out->processor_response, err));
	PROV_TRY(prov_str(doc, obj, "payment_type", k->payment_type_p,
	                  PROV_NULLABLE, out->payment_type,
	                  sizeof out->payment_type, err));
	PROV_TRY(prov_str(doc, obj, "auth_model", k->auth_model_p,
	                  PROV_NULLABLE, out->auth_model,
	                  sizeof out->auth_model, err));
	if (out->outcome == PROV_FAILED) {
		const char *r = out->processor_response[0] != '\0'
		                    ? out->processor_response
		                    : out->status;
		size_t n = strlen(r);

		if (n >= sizeof out->reason)
			n = sizeof out->reason - 1; /* a log text: cut */
		memcpy(out->reason, r, n);
		out->reason[n] = '\0';
	}
	return PROV_OK;
}

enum prov_rc
flw_charge_resp_parse(struct flw_charge_resp *out, const struct json_doc *doc,
                      struct prov_err *err)
{
	struct flw_envelope env;
	size_t meta, auth, v;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(flw_envelope_parse(&env, doc, err));
	out->is_success = env.is_success;
	memcpy(out->message, env.message, sizeof out->message);
	if (!env.is_success) {
		size_t n = strlen(env.message);

		if (n >= sizeof out->reason)
			n = sizeof out->reason - 1;
		memcpy(out->reason, env.message, n);
		out->reason[n] = '\0';
		out->outcome = PROV_FAILED;
		return PROV_OK;
	}
	PROV_TRY(prov_obj(doc, 0, "meta", "meta", PROV_NULLABLE, &meta, err));
	auth = 0;
	if (meta != 0)
		PROV_TRY(prov_obj(doc, meta, "authorization",
		                  "meta.authorization", PROV_NULLABLE, &auth,
		                  err));
	if (auth != 0) {
		PROV_TRY(prov_str(doc, auth, "mode", "meta.authorization.mode",
		                  PROV_NULLABLE, out->auth_mode,
		                  sizeof out->auth_mode, err));
		PROV_TRY(prov_get(doc, auth, "redirect",
		                  "meta.authorization.redirect", PROV_NULLABLE,
		                  &v, err));
		if (v == 0)
			PROV_TRY(prov_get(doc, auth, "redirect_url",
			                  "meta.authorization.redirect_url",
			                  PROV_NULLABLE, &v, err));
		if (v != 0)
			PROV_TRY(prov_str_tok(
			    doc, v, "meta.authorization.redirect",
			    out->auth_url, sizeof out->auth_url, err));
	}
	if (env.data == 0) {
		if (auth == 0)
			return prov_fail(err, PROV_MISSING, "data",
			                 "no data and no meta.authorization");
		out->outcome = PROV_PENDING;
		return PROV_OK;
	}
	if (doc->toks[env.data].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "data", "not an object");
	out->has_data = true;
	PROV_TRY(txn_parse(&out->txn, doc, env.data, &keys_v3, false, err));
	out->outcome = out->txn.outcome;
	memcpy(out->reason, out->txn.reason, sizeof out->reason);
	return PROV_OK;
}

enum prov_rc
flw_verify_parse(struct flw_txn *out, const struct json_doc *doc,
                 struct prov_err *err)
{
	size_t data;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(success_data(doc, &data, err));
	return txn_parse(out, doc, data, &keys_v3, true, err);
}

enum prov_rc
flw_webhook_parse(struct flw_webhook *out, const struct json_doc *doc,
                  struct prov_err *err)
{
	size_t v, data;

	memset(out, 0, sizeof *out);
	out->event = FLW_EVENT_OTHER;
	out->txn.outcome = PROV_UNKNOWN;
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_str(doc, 0, "event.type", "event.type", PROV_NULLABLE,
	                  out->event_type, sizeof out->event_type, err));
	PROV_TRY(prov_get(doc, 0, "event", "event", 0, &v, err));
	if (v == 0) {
		/* The legacy v2 flat body has txRef at the top level. */
		if (json_obj_get(doc, 0, "txRef") == 0)
			return prov_fail(err, PROV_MISSING, "event", "missing");
		out->is_legacy = true;
		out->event = FLW_EVENT_CHARGE_COMPLETED;
		return txn_parse(&out->txn, doc, 0, &keys_v2, false, err);
	}
	PROV_TRY(prov_str_tok(doc, v, "event", out->event_name,
	                      sizeof out->event_name, err));
	if (out->event_name[0] == '\0')
		return prov_fail(err, PROV_BAD_VALUE, "event", "empty");
	if (strcmp(out->event_name, "charge.completed") != 0)
		return PROV_OK;
	out->event = FLW_EVENT_CHARGE_COMPLETED;
	PROV_TRY(prov_obj(doc, 0, "data", "data", PROV_REQ, &data, err));
	return txn_parse(&out->txn, doc, data, &keys_v3, true, err);
}
