/*
 * prov_paystack.h - Paystack Charge API (mobile money) request builder and
 * response / webhook parsers (docs/providers.md §7; shapes from
 * reference/wire-formats.md §5).
 *
 * Layer: protocols/ (STYLE.md §1): pure shapes, no I/O, no allocation, no
 * HMAC (the webhook signature is checked over the raw body by
 * prov_paystack_sig_ok() in server/prov_sig.h before this parser runs).
 *
 * What the caller sends around these bodies (base https://api.paystack.co,
 * every call with "Authorization: Bearer <secret key>"; CONFIRMED):
 *
 *   POST /charge                      paystack_charge_build()
 *        -> paystack_charge_resp_parse(); data.status says the next step
 *   POST /charge/submit_otp {"otp","reference"}   (same response shape)
 *   GET  /charge/{reference}          paystack_charge_resp_parse(); poll
 *                                     no more than every 10 s
 *   GET  /transaction/verify/{reference}  paystack_verify_parse()
 *   webhook POST, header x-paystack-signature = hex(HMAC-SHA512(secret,
 *        raw body))                  paystack_webhook_parse()
 *
 * Responses are the envelope {"status":true|false,"message","data"}.
 * Amounts are JSON integers already in the currency's subunit (kobo,
 * pesewas, cents), so they are minor units as they are; a string or a
 * fraction is refused.
 */
#ifndef SOKO_PROV_PAYSTACK_H
#define SOKO_PROV_PAYSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"
#include "prov.h"

#define PAYSTACK_REF_MAX  128 /* references, codes; NUL included */
#define PAYSTACK_ID_MAX   32  /* numeric ids as text */
#define PAYSTACK_TEXT_MAX 256
#define PAYSTACK_URL_MAX  1024

/* ---- envelope --------------------------------------------------------- */

struct paystack_envelope {
	bool status; /* the boolean "status" */
	char message[PAYSTACK_TEXT_MAX];
	size_t data; /* token of "data", 0 if absent or null */
};
enum prov_rc paystack_envelope_parse(struct paystack_envelope *out,
                                     const struct json_doc *doc,
                                     struct prov_err *err);

/* ---- charge ----------------------------------------------------------- */

/* Every pointer borrowed. */
struct paystack_charge_req {
	int64_t amount_minor;  /* > 0, subunits */
	const char *email;     /* mandatory, contains '@' */
	const char *currency;  /* "GHS", "KES", ... (known to money.h) */
	const char *phone;     /* digits, as the provider expects them */
	const char *provider;  /* "MTN", "mtn", "atl", "vod", "mpesa", ...:
	                          sent as given (case UNCONFIRMED) */
	const char *reference; /* NULL: Paystack makes one; else 1-100 of
	                          [A-Za-z0-9.=-] */
};
/* POST /charge body {"amount","email","currency","mobile_money":{"phone",
 * "provider"}} (+ "reference"), amount an integer. */
enum codec_rc paystack_charge_build(char *dst, size_t cap,
                                    const struct paystack_charge_req *r,
                                    size_t *written, const char **why);

/* What the customer answers to a send_otp / send_pin step. */
enum paystack_submit { PAYSTACK_SUBMIT_OTP, PAYSTACK_SUBMIT_PIN };
/* POST /charge/submit_otp {"otp","reference"} or /charge/submit_pin
 * {"pin","reference"} (wire-formats §5.3).  The value is 4-10 digits
 * (an OTP) or 4-6 (a PIN): a secret, the caller wipes dst after use.
 * The answer is a paystack_charge_resp (the next data.status). */
enum codec_rc paystack_submit_build(char *dst, size_t cap,
                                    enum paystack_submit what,
                                    const char *value, const char *reference,
                                    size_t *written, const char **why);
/* "/charge/submit_otp" or "/charge/submit_pin". */
const char *paystack_submit_path(enum paystack_submit what);

/* What data.status asks for next. */
enum paystack_next {
	PAYSTACK_NEXT_NONE,     /* final, or pending: wait / poll */
	PAYSTACK_SEND_OTP,      /* submit_otp; display_text */
	PAYSTACK_SEND_PIN,      /* submit_pin */
	PAYSTACK_SEND_PHONE,    /* submit_phone */
	PAYSTACK_SEND_BIRTHDAY, /* submit_birthday */
	PAYSTACK_SEND_ADDRESS,  /* submit_address */
	PAYSTACK_OPEN_URL,      /* send the customer to url */
	PAYSTACK_PAY_OFFLINE,   /* customer approves on the phone */
};

/* A transaction as the charge, verify and webhook bodies carry it. */
struct paystack_txn {
	enum prov_outcome outcome;
	char status[32]; /* as sent */
	enum paystack_next next;
	char reason[PROV_REASON_MAX]; /* failures: gateway_response/message */
	char id[PAYSTACK_ID_MAX];     /* "" if absent */
	char reference[PAYSTACK_REF_MAX];
	bool has_amount;
	int64_t amount_minor; /* > 0 when present */
	char currency[4];     /* "" if absent */
	char gateway_response[PAYSTACK_TEXT_MAX];
	char channel[32]; /* "mobile_money" */
	char paid_at[40]; /* "" if null */
	char display_text[PAYSTACK_TEXT_MAX];
	char url[PAYSTACK_URL_MAX]; /* open_url */
};

/* POST /charge (and submit_*, GET /charge/{ref}) response.
 * status false -> PROV_FAILED, reason = message (Paystack refused the
 * charge).  status true -> data is mandatory, with status (one of the
 * table's words) and reference; success additionally needs amount and
 * currency. */
struct paystack_charge_resp {
	bool status;
	char message[PAYSTACK_TEXT_MAX];
	enum prov_outcome outcome;
	char reason[PROV_REASON_MAX];
	bool has_data;
	struct paystack_txn txn;
};
enum prov_rc paystack_charge_resp_parse(struct paystack_charge_resp *out,
                                        const struct json_doc *doc,
                                        struct prov_err *err);

/* GET /transaction/verify/{reference}: status true and data with id,
 * status, reference, amount and currency mandatory. */
enum prov_rc paystack_verify_parse(struct paystack_txn *out,
                                   const struct json_doc *doc,
                                   struct prov_err *err);

/* ---- webhook ---------------------------------------------------------- */

enum paystack_event {
	PAYSTACK_EVENT_CHARGE_SUCCESS, /* "charge.success" */
	PAYSTACK_EVENT_CHARGE_FAILED,  /* "charge.failed" */
	PAYSTACK_EVENT_OTHER,          /* any other event: ack and ignore */
};
/* {"event":"...","data":{...}}.  For the two charge events data is read
 * as a transaction (reference, status and amount mandatory; id and
 * currency optional: the signature covers the body, and the adapter
 * verifies before giving value), and its status must agree with the
 * event ("success" / "failed"). */
struct paystack_webhook {
	enum paystack_event event;
	char event_name[64];
	struct paystack_txn txn; /* for the charge events */
};
enum prov_rc paystack_webhook_parse(struct paystack_webhook *out,
                                    const struct json_doc *doc,
                                    struct prov_err *err);

/* Paystack's status table (charge and transaction words). */
const struct prov_status_map *paystack_status_map(size_t *n);

#endif
