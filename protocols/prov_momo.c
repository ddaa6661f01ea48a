/*
 * prov_momo.c - MTN MoMo builders and parsers (docs/providers.md §4,
 * reference/wire-formats.md §2).
 *
 * Pure: no I/O, no allocation, no clock, no globals but const tables.
 */
#include "prov_momo.h"

#include <string.h>

/* Indexed by enum momo_status: the one place the words live. */
static const struct prov_status_map momo_statuses[] = {
    {"PENDING", PROV_PENDING},
    {"SUCCESSFUL", PROV_SUCCEEDED},
    {"FAILED", PROV_FAILED},
};
#define N_STATUSES (sizeof momo_statuses / sizeof momo_statuses[0])

static const char *const party_types[] = {"MSISDN", "EMAIL", "PARTY_CODE"};

const struct prov_status_map *
momo_status_map(size_t *n)
{
	*n = N_STATUSES;
	return momo_statuses;
}

/* ---- token, errors ---------------------------------------------------- */

enum prov_rc
momo_token_parse(struct momo_token *out, const struct json_doc *doc,
                 struct prov_err *err)
{
	bool has;

	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_str(doc, 0, "access_token", "access_token",
	                  PROV_REQ | PROV_NONEMPTY, out->access_token,
	                  sizeof out->access_token, err));
	PROV_TRY(prov_str(doc, 0, "token_type", "token_type",
	                  PROV_REQ | PROV_NONEMPTY, out->token_type,
	                  sizeof out->token_type, err));
	PROV_TRY(prov_int(doc, 0, "expires_in", "expires_in",
	                  PROV_REQ | PROV_POSITIVE, PROV_NUM,
	                  &out->expires_in_s, &has, err));
	return PROV_OK;
}

enum prov_rc
momo_error_parse(struct momo_error *out, const struct json_doc *doc,
                 struct prov_err *err)
{
	size_t v;

	memset(out, 0, sizeof *out);
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_get(doc, 0, "code", "code", 0, &v, err));
	if (v == 0) {
		/* The token endpoint's 401: {"error":"..."}. */
		if (json_obj_get(doc, 0, "error") == 0)
			return prov_fail(err, PROV_MISSING, "code", "missing");
		return prov_str(doc, 0, "error", "error", PROV_REQ,
		                out->message, sizeof out->message, err);
	}
	PROV_TRY(prov_str(doc, 0, "code", "code", PROV_REQ | PROV_NONEMPTY,
	                  out->code, sizeof out->code, err));
	PROV_TRY(prov_str(doc, 0, "message", "message", PROV_NULLABLE,
	                  out->message, sizeof out->message, err));
	return PROV_OK;
}

/* ---- builders --------------------------------------------------------- */

bool
momo_reference_id_ok(const char *s)
{
	size_t i;

	if (s == NULL || strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		char c = s[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		             (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	if (s[14] != '4')
		return false;
	return strchr("89abAB", s[19]) != NULL;
}

/* payerMessage / payeeNote: <= 160 bytes, and MoMo answers 400 to
 * "unsupported special characters e.g. apostrophe" (wire-formats §2.4). */
static bool
note_ok(const char *s, const char *what, const char **why)
{
	if (s == NULL)
		return true;
	if (!prov_text_ok(s, 1, MOMO_MSG_MAX, what, why))
		return false;
	if (strchr(s, '\'') != NULL) {
		*why = what;
		return false;
	}
	return true;
}

static enum codec_rc
pay_build(char *dst, size_t cap, const struct momo_pay_req *r,
          const char *party_key, size_t *written, const char **why)
{
	struct json_w w;
	int e;

	if (r->amount_minor <= 0) {
		*why = "amount: not positive";
		return CODEC_BAD;
	}
	if (r->currency == NULL || strlen(r->currency) != 3 ||
	    (e = prov_currency_exponent(r->currency)) < 0) {
		*why = "currency: unknown";
		return CODEC_BAD;
	}
	if ((unsigned)r->party_type >= 3) {
		*why = "partyIdType: unknown";
		return CODEC_BAD;
	}
	if (!prov_text_ok(r->external_id, 1, MOMO_ID_MAX - 1,
	                  "externalId: 1-64 bytes", why) ||
	    !note_ok(r->payer_message,
	             "payerMessage: 1-160 bytes, no apostrophe", why) ||
	    !note_ok(r->payee_note, "payeeNote: 1-160 bytes, no apostrophe",
	             why))
		return CODEC_BAD;
	if (r->party_type == MOMO_MSISDN
	        ? !prov_digits_ok(r->party_id, 5, 15,
	                          "partyId: MSISDN digits, no '+'", why)
	        : !prov_text_ok(r->party_id, 1, 128, "partyId: 1-128 bytes",
	                        why))
		return CODEC_BAD;
	json_w_init(&w, dst, cap);
	json_w_obj_begin(&w);
	prov_w_amount(&w, "amount", r->amount_minor, (unsigned)e, true);
	prov_w_kv(&w, "currency", r->currency);
	prov_w_kv(&w, "externalId", r->external_id);
	json_w_key(&w, party_key);
	json_w_obj_begin(&w);
	prov_w_kv(&w, "partyIdType", party_types[r->party_type]);
	prov_w_kv(&w, "partyId", r->party_id);
	json_w_obj_end(&w);
	if (r->payer_message != NULL)
		prov_w_kv(&w, "payerMessage", r->payer_message);
	if (r->payee_note != NULL)
		prov_w_kv(&w, "payeeNote", r->payee_note);
	json_w_obj_end(&w);
	return json_w_finish(&w, written, why);
}

enum codec_rc
momo_requesttopay_build(char *dst, size_t cap, const struct momo_pay_req *r,
                        size_t *written, const char **why)
{
	return pay_build(dst, cap, r, "payer", written, why);
}

enum codec_rc
momo_transfer_build(char *dst, size_t cap, const struct momo_pay_req *r,
                    size_t *written, const char **why)
{
	return pay_build(dst, cap, r, "payee", written, why);
}

/* ---- status and callbacks --------------------------------------------- */

/* reason: a string (current docs) or {"code","message"} (older schema). */
static enum prov_rc
reason_parse(struct momo_txn *out, const struct json_doc *doc,
             struct prov_err *err)
{
	size_t v;

	PROV_TRY(prov_get(doc, 0, "reason", "reason", PROV_NULLABLE, &v, err));
	if (v == 0)
		return PROV_OK;
	if (doc->toks[v].type == JSON_STRING)
		return prov_str_tok(doc, v, "reason", out->reason,
		                    sizeof out->reason, err);
	if (doc->toks[v].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "reason",
		                 "not a string or object");
	PROV_TRY(prov_str(doc, v, "code", "reason.code", PROV_REQ, out->reason,
	                  sizeof out->reason, err));
	return prov_str(doc, v, "message", "reason.message", PROV_NULLABLE,
	                out->reason_message, sizeof out->reason_message, err);
}

enum prov_rc
momo_txn_parse(struct momo_txn *out, enum momo_kind kind,
               const struct json_doc *doc, struct prov_err *err)
{
	const char *pk = kind == MOMO_DISBURSEMENT ? "payee" : "payer";
	const char *pt = kind == MOMO_DISBURSEMENT ? "payee.partyIdType"
	                                           : "payer.partyIdType";
	const char *pi =
	    kind == MOMO_DISBURSEMENT ? "payee.partyId" : "payer.partyId";
	char word[16];
	unsigned exponent;
	size_t party, i;
	bool has;

	memset(out, 0, sizeof *out);
	out->outcome = PROV_UNKNOWN;
	PROV_TRY(prov_root(doc, err));
	PROV_TRY(prov_status(doc, 0, "status", "status", PROV_REQ,
	                     momo_statuses, N_STATUSES, word, sizeof word,
	                     &out->outcome, err));
	for (i = 0; i < N_STATUSES; i++)
		if (strcmp(word, momo_statuses[i].word) == 0)
			out->status = (enum momo_status)i;
	PROV_TRY(prov_str(doc, 0, "financialTransactionId",
	                  "financialTransactionId", PROV_NULLABLE,
	                  out->financial_transaction_id,
	                  sizeof out->financial_transaction_id, err));
	PROV_TRY(prov_str(doc, 0, "externalId", "externalId",
	                  PROV_REQ | PROV_NONEMPTY, out->external_id,
	                  sizeof out->external_id, err));
	PROV_TRY(prov_currency(doc, 0, "currency", "currency", PROV_REQ,
	                       out->currency, sizeof out->currency, &exponent,
	                       err));
	PROV_TRY(prov_amount(doc, 0, "amount", "amount",
	                     PROV_REQ | PROV_POSITIVE, PROV_STR, exponent,
	                     &out->amount_minor, &has, err));
	PROV_TRY(prov_obj(doc, 0, pk, pk, PROV_REQ, &party, err));
	PROV_TRY(prov_str(doc, party, "partyIdType", pt,
	                  PROV_REQ | PROV_NONEMPTY, word, sizeof word, err));
	for (i = 0; i < 3; i++)
		if (strcmp(word, party_types[i]) == 0)
			break;
	if (i == 3)
		return prov_fail(err, PROV_BAD_VALUE, pt, "unknown type");
	out->party_type = (enum momo_party_type)i;
	PROV_TRY(prov_str(doc, party, "partyId", pi, PROV_REQ | PROV_NONEMPTY,
	                  out->party_id, sizeof out->party_id, err));
	PROV_TRY(prov_str(doc, 0, "payerMessage", "payerMessage", PROV_NULLABLE,
	                  out->payer_message, sizeof out->payer_message, err));
	PROV_TRY(prov_str(doc, 0, "payeeNote", "payeeNote", PROV_NULLABLE,
	                  out->payee_note, sizeof out->payee_note, err));
	PROV_TRY(reason_parse(out, doc, err));
	if (out->status == MOMO_SUCCESSFUL &&
	    out->financial_transaction_id[0] == '\0')
		return prov_fail(err, PROV_MISSING, "financialTransactionId",
		                 "missing on success");
	return PROV_OK;
}
