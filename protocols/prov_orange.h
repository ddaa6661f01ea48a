/*
 * prov_orange.h - Orange Money Web Payment ("WebPay") request builders and
 * response / notification parsers (docs/providers.md §5; shapes from
 * reference/wire-formats.md §3.1, mostly SECONDARY).
 *
 * Layer: protocols/ (STYLE.md §1): pure shapes, no I/O, no allocation.
 *
 * What the caller sends around these bodies:
 *
 *   token   POST https://api.orange.com/oauth/v3/token
 *           Authorization: Basic base64(client_id ":" client_secret)
 *                          (prov_basic_auth() in prov.h)
 *           Content-Type: application/x-www-form-urlencoded
 *           body grant_type=client_credentials   -> orange_token_parse()
 *   init    POST
 * https://api.orange.com/orange-money-webpay/{dev|<cc>}/v1/webpayment
 *           Authorization: Bearer <token>; JSON   orange_init_build()
 *           -> 201 orange_init_resp_parse(): keep pay_token and notif_token
 *   status  POST .../v1/transactionstatus         orange_status_build()
 *           -> orange_status_parse()
 *   notif   Orange POSTs JSON to notif_url        orange_notif_parse()
 *           The only authenticity check is notif_token equality with the
 *           one from init: compare with prov_token_eq() (server/prov_sig.h,
 *           constant time), then confirm with a status call.
 *
 * Orange's "amount" is an integer in major units of the local currency
 * (XOF/XAF/GNF have no minor units); in the dev sandbox the currency is
 * "OUV", treated here as exponent 0.  The OM Cameroon "OM core" API
 * (§3.2) is not covered: its notification and status bodies are
 * UNCONFIRMED.
 */
#ifndef SOKO_PROV_ORANGE_H
#define SOKO_PROV_ORANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"
#include "prov.h"

#define ORANGE_TOKEN_MAX 2048 /* access_token, NUL included */
#define ORANGE_ID_MAX    65   /* tokens and ids, NUL included */
#define ORANGE_ORDER_MAX 30   /* order_id and reference, bytes */
#define ORANGE_URL_MAX   1024
#define ORANGE_TEXT_MAX  256

/* Exponent used for currency c in Orange's integer amounts: "OUV" (the
 * dev sandbox pseudo-currency) is 0, others as ISO 4217 (money.h); -1 if
 * unknown. */
int orange_currency_exponent(const char *c);

/* ---- OAuth ------------------------------------------------------------ */

/* {"token_type":"Bearer","access_token":"...","expires_in":...}.
 * expires_in is optional and accepted as a number or a numeric string
 * (its type is UNCONFIRMED). */
struct orange_token {
	char token_type[32];
	char access_token[ORANGE_TOKEN_MAX];
	bool has_expires_in;
	int64_t expires_in_s;
};
enum prov_rc orange_token_parse(struct orange_token *out,
                                const struct json_doc *doc,
                                struct prov_err *err);

/* ---- init ------------------------------------------------------------- */

/* Every pointer borrowed; all mandatory. */
struct orange_init_req {
	const char *merchant_key;
	const char *currency; /* "OUV" in dev, XOF/XAF/GNF... in production */
	const char *order_id; /* unique, 1-30 bytes */
	int64_t amount_minor; /* > 0, whole major units */
	const char *return_url;
	const char *cancel_url;
	const char *notif_url; /* Orange refuses localhost; not checked here */
	const char *lang;      /* "fr", "en": two lower-case letters */
	const char *reference; /* 1-30 bytes */
};
/* POST .../v1/webpayment body, fields in the documented order, amount an
 * integer number. */
enum codec_rc orange_init_build(char *dst, size_t cap,
                                const struct orange_init_req *r,
                                size_t *written, const char **why);

/* 201: {"status":201,"message":"OK","pay_token":"...","payment_url":
 * "...","notif_token":"..."}.  status must be the number 201; pay_token,
 * payment_url and notif_token are mandatory and non-empty. */
struct orange_init_resp {
	int64_t status;
	char message[ORANGE_TEXT_MAX];
	char pay_token[ORANGE_ID_MAX];
	char payment_url[ORANGE_URL_MAX];
	char notif_token[ORANGE_ID_MAX];
};
enum prov_rc orange_init_resp_parse(struct orange_init_resp *out,
                                    const struct json_doc *doc,
                                    struct prov_err *err);

/* ---- status ----------------------------------------------------------- */

/* POST .../v1/transactionstatus body {"order_id","amount","pay_token"}. */
enum codec_rc orange_status_build(char *dst, size_t cap, const char *order_id,
                                  int64_t amount_minor, const char *currency,
                                  const char *pay_token, size_t *written,
                                  const char **why);

enum orange_status {
	ORANGE_INITIATED, /* -> PROV_PENDING */
	ORANGE_PENDING,   /* -> PROV_PENDING */
	ORANGE_EXPIRED,   /* -> PROV_FAILED, reason "EXPIRED" */
	ORANGE_SUCCESS,   /* -> PROV_SUCCEEDED */
	ORANGE_FAILED,    /* -> PROV_FAILED, reason "FAILED" */
};

/* Status response, shape UNCONFIRMED:
 * {"status":"SUCCESS","order_id":"...","txnid":"..."}.  status is
 * mandatory; order_id and txnid are optional, except that SUCCESS needs
 * a txnid. */
struct orange_status_resp {
	enum orange_status status;
	enum prov_outcome outcome;
	char reason[PROV_REASON_MAX]; /* FAILED/EXPIRED: the status word */
	char order_id[ORANGE_ID_MAX];
	char txnid[ORANGE_ID_MAX];
};
enum prov_rc orange_status_parse(struct orange_status_resp *out,
                                 const struct json_doc *doc,
                                 struct prov_err *err);

/* ---- notification ----------------------------------------------------- */

/* {"status":"SUCCESS","notif_token":"...","txnid":"MP150709.1341.A00073"}.
 * status SUCCESS or FAILED only (a notification is final); notif_token
 * mandatory and non-empty; txnid mandatory on SUCCESS. */
struct orange_notif {
	enum orange_status status;
	enum prov_outcome outcome;
	char reason[PROV_REASON_MAX];
	char notif_token[ORANGE_ID_MAX];
	char txnid[ORANGE_ID_MAX];
};
enum prov_rc orange_notif_parse(struct orange_notif *out,
                                const struct json_doc *doc,
                                struct prov_err *err);

/* Orange's status table, indexed by enum orange_status. */
const struct prov_status_map *orange_status_map(size_t *n);

#endif
