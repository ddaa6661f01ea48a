/*
 * prov_momo.h - MTN MoMo Open API request builders and response /
 * callback parsers (docs/providers.md §4; shapes from
 * reference/wire-formats.md §2).
 *
 * Layer: protocols/ (STYLE.md §1): pure shapes.  No HTTP, no clock, no
 * UUID generation (server/prov_sig.h prov_uuid4()), no allocation.
 *
 * What the caller sends around these bodies (wire-formats §2.1-2.7,
 * CONFIRMED unless noted):
 *
 *   token     POST {base}/{collection|disbursement}/token/   no body
 *             Authorization: Basic base64(apiUserId ":" apiKey)
 *                            (prov_basic_auth() in prov.h)
 *             Ocp-Apim-Subscription-Key: <that product's key>
 *   request   POST {base}/collection/v1_0/requesttopay
 * momo_requesttopay_build() to pay    Authorization: Bearer <access_token>
 *             X-Reference-Id: <UUID v4, new per request; it becomes the
 *                              transaction id>  (momo_reference_id_ok())
 *             X-Target-Environment: sandbox | mtn<country>
 *             Ocp-Apim-Subscription-Key: <collection key>
 *             X-Callback-Url: https://host/path  (optional; the host must
 *                             match the API user's providerCallbackHost)
 *             Content-Type: application/json
 *             -> 202 Accepted, empty body; 409 RESOURCE_ALREADY_EXIST for a
 *                reused X-Reference-Id; errors as momo_error_parse().
 *   status    GET {base}/collection/v1_0/requesttopay/{X-Reference-Id}
 *             same headers minus X-Callback-Url and Content-Type
 *             -> 200 momo_txn_parse(MOMO_COLLECTION) (FAILED is 200 too);
 *                404 RESOURCE_NOT_FOUND.
 *   transfer  POST {base}/disbursement/v1_0/transfer momo_transfer_build() the
 * same headers with the disbursement key -> 202 status    GET
 * {base}/disbursement/v1_0/transfer/{X-Reference-Id}
 *             -> 200 momo_txn_parse(MOMO_DISBURSEMENT)
 *   callback  PUT or POST to X-Callback-Url, body "similar to" the status
 *             response: momo_txn_parse() (no signature: confirm with a
 *             status GET before giving value).
 *
 * Amounts travel as decimal strings in major units ("100"); the codec
 * converts them exactly from/to int64_t minor units with the currency's
 * ISO 4217 exponent (money.h), so "100" EUR is 10000.
 */
#ifndef SOKO_PROV_MOMO_H
#define SOKO_PROV_MOMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"
#include "prov.h"

#define MOMO_TOKEN_MAX    4096 /* access_token (a JWT), NUL included */
#define MOMO_ID_MAX       65   /* ids and references, NUL included */
#define MOMO_CODE_MAX     64   /* error codes and reasons */
#define MOMO_TEXT_MAX     256  /* messages and notes */
#define MOMO_MSG_MAX      160  /* payerMessage / payeeNote, bytes (builders) */
#define MOMO_CURRENCY_MAX 4

/* ---- token ----------------------------------------------------------- */

/* 200 of POST /{product}/token/:
 * {"access_token":"<JWT>","token_type":"access_token","expires_in":3600}.
 * expires_in must be a positive integer number (schema: integer). */
struct momo_token {
	char access_token[MOMO_TOKEN_MAX];
	char token_type[32];
	int64_t expires_in_s;
};
enum prov_rc momo_token_parse(struct momo_token *out,
                              const struct json_doc *doc, struct prov_err *err);

/* Error bodies: {"code":"RESOURCE_ALREADY_EXIST","message":"..."}
 * (message optional), or the token 401 form {"error":"..."} (code "",
 * message = the error text). */
struct momo_error {
	char code[MOMO_CODE_MAX];
	char message[MOMO_TEXT_MAX];
};
enum prov_rc momo_error_parse(struct momo_error *out,
                              const struct json_doc *doc, struct prov_err *err);

/* ---- request to pay, transfer ---------------------------------------- */

enum momo_party_type {
	MOMO_MSISDN,     /* "MSISDN" */
	MOMO_EMAIL,      /* "EMAIL" */
	MOMO_PARTY_CODE, /* "PARTY_CODE" */
};

/* Every pointer borrowed. */
struct momo_pay_req {
	int64_t amount_minor; /* > 0, in minor units of currency */
	const char *currency; /* ISO 4217 known to money.h ("EUR" in sandbox) */
	const char *external_id; /* soko's reference, 1-64 bytes */
	enum momo_party_type party_type;
	const char *party_id;      /* MSISDN digits (no '+'), e-mail, code */
	const char *payer_message; /* NULL: omitted; <= 160 bytes, no '\'' */
	const char *payee_note;    /* NULL: omitted; <= 160 bytes, no '\'' */
};

/* POST /collection/v1_0/requesttopay body; the party is the "payer".
 * Field order and types as the documented sample (amount a string). */
enum codec_rc momo_requesttopay_build(char *dst, size_t cap,
                                      const struct momo_pay_req *r,
                                      size_t *written, const char **why);
/* POST /disbursement/v1_0/transfer body; the party is the "payee". */
enum codec_rc momo_transfer_build(char *dst, size_t cap,
                                  const struct momo_pay_req *r, size_t *written,
                                  const char **why);

/* true iff s is a canonical lower- or upper-case UUID version 4
 * (8-4-4-4-12 hex, version nibble 4, variant 8/9/a/b): what MoMo
 * accepts as X-Reference-Id (anything else is 400). */
bool momo_reference_id_ok(const char *s);

/* ---- status and callbacks -------------------------------------------- */

enum momo_kind {
	MOMO_COLLECTION,   /* request to pay: the party is "payer" */
	MOMO_DISBURSEMENT, /* transfer: the party is "payee" */
};

enum momo_status {
	MOMO_PENDING,    /* "PENDING"    -> PROV_PENDING */
	MOMO_SUCCESSFUL, /* "SUCCESSFUL" -> PROV_SUCCEEDED */
	MOMO_FAILED,     /* "FAILED"     -> PROV_FAILED, reason */
};

struct momo_txn {
	enum momo_status status;
	enum prov_outcome outcome;
	char reason[MOMO_CODE_MAX]; /* FAILED: "NOT_ENOUGH_FUNDS", or "" */
	char reason_message[MOMO_TEXT_MAX]; /* object form's message, or "" */
	char financial_transaction_id[MOMO_ID_MAX]; /* "" if absent */
	char external_id[MOMO_ID_MAX];
	int64_t amount_minor; /* > 0 */
	char currency[MOMO_CURRENCY_MAX];
	enum momo_party_type party_type;
	char party_id[MOMO_TEXT_MAX];
	char payer_message[MOMO_TEXT_MAX]; /* "" if absent */
	char payee_note[MOMO_TEXT_MAX];    /* "" if absent */
};

/*
 * The 200 body of GET requesttopay/{id} or transfer/{id}, and the callback
 * body (the same shape).  Mandatory: externalId, amount (a string, > 0,
 * exact in the currency), currency (known), payer or payee (per kind) with
 * partyIdType and partyId, status (PENDING, SUCCESSFUL or FAILED; any
 * other word is PROV_BAD_VALUE "unknown status").  On SUCCESSFUL,
 * financialTransactionId is mandatory too.  reason is read on FAILED as a
 * string or as {"code","message"} (both forms documented); a FAILED body
 * without reason is accepted with reason "".
 */
enum prov_rc momo_txn_parse(struct momo_txn *out, enum momo_kind kind,
                            const struct json_doc *doc, struct prov_err *err);

/* The MoMo status table (PENDING/SUCCESSFUL/FAILED) as prov_status_map,
 * for tests and docs; *n gets its length. */
const struct prov_status_map *momo_status_map(size_t *n);

#endif
