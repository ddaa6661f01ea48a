/*
 * prov_flw.h - Flutterwave v3 request builders and response / webhook
 * parsers: bill payments and mobile-money charges (docs/providers.md §6;
 * shapes from reference/wire-formats.md §4).
 *
 * Layer: protocols/ (STYLE.md §1): pure shapes, no I/O, no allocation.
 *
 * What the caller sends around these bodies (base
 * https://api.flutterwave.com, every call with
 * "Authorization: Bearer <secret key>"; CONFIRMED):
 *
 *   GET  /v3/bill-categories                      flw_bill_categories_parse()
 *   GET  flw_bill_validate_path()                 flw_bill_validate_parse()
 *   POST flw_bill_payment_path() (current)        flw_bill_payment_build()
 *   POST /v3/bills (legacy)                       flw_bill_legacy_build()
 *        -> both answered as                      flw_bill_created_parse()
 *   GET  /v3/bills/{reference}                    flw_bill_status_parse()
 *   POST /v3/charges?type=flw_momo_type_param()   flw_charge_build()
 *        ->                                       flw_charge_resp_parse()
 *   GET  /v3/transactions/{id}/verify             flw_verify_parse()
 *   webhook POST (header verif-hash: compare with prov_flw_hash_ok(),
 *        server/prov_sig.h, then verify before giving value)
 *                                                 flw_webhook_parse()
 *
 * Every response is the envelope {"status":"success"|"error","message",
 * "data"}.  The typed parsers require "success"; read an error body with
 * flw_envelope_parse() (message says why), except flw_charge_resp_parse()
 * which maps "error" to PROV_FAILED itself.
 *
 * Amounts are JSON numbers in major units (500, 50.72), except the bill
 * status "amount", which the documented sample sends as a string
 * ("500.0000"); each parser accepts exactly the documented form.  They are
 * converted exactly to int64_t minor units with the currency's exponent;
 * bills are Nigeria-only, so their amounts use NGN's (FLW_BILL_EXPONENT).
 */
#ifndef SOKO_PROV_FLW_H
#define SOKO_PROV_FLW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"
#include "prov.h"

#define FLW_BILL_EXPONENT 2   /* NGN: bill payments are Nigeria-only */
#define FLW_ID_MAX        32  /* numeric ids as text, NUL included */
#define FLW_REF_MAX       128 /* tx_ref, flw_ref, codes; NUL included */
#define FLW_TEXT_MAX      256 /* messages, names */
#define FLW_URL_MAX       1024

/* ---- envelope --------------------------------------------------------- */

struct flw_envelope {
	bool is_success; /* "success"; "error" is false; others refused */
	char message[FLW_TEXT_MAX];
	size_t data; /* token of "data" (any type), 0 if absent or null */
};
enum prov_rc flw_envelope_parse(struct flw_envelope *out,
                                const struct json_doc *doc,
                                struct prov_err *err);

/* ---- bills ------------------------------------------------------------ */

struct flw_bill_category {
	int64_t id;
	char biller_code[FLW_REF_MAX]; /* "BIL099" */
	char name[FLW_TEXT_MAX];       /* "MTN NIgeria" */
	char country[8];               /* "NG" */
	bool is_airtime;
	char biller_name[FLW_TEXT_MAX]; /* "AIRTIME" */
	char item_code[FLW_REF_MAX];    /* "AT099" */
	char short_name[FLW_TEXT_MAX];
	char label_name[FLW_TEXT_MAX]; /* what to ask the customer for */
	int64_t fee_minor;             /* >= 0 */
	int64_t amount_minor;          /* >= 0; 0: the customer chooses */
};
/* The envelope of GET /v3/bill-categories: *arr = the data array's token,
 * *n_items its length.  Each element is read by
 * flw_bill_category_parse(doc, item, ...), walking with json_first() /
 * json_next(). */
enum prov_rc flw_bill_categories_parse(const struct json_doc *doc, size_t *arr,
                                       size_t *n_items, struct prov_err *err);
/* One data[] element.  Mandatory: id, biller_code, name, country,
 * biller_name, item_code, is_airtime, fee, amount. */
enum prov_rc flw_bill_category_parse(struct flw_bill_category *out,
                                     const struct json_doc *doc, size_t item,
                                     struct prov_err *err);

/* "/v3/bill-items/{item_code}/validate?code={biller_code}&customer=
 * {customer}" with the customer percent-encoded (RFC 3986 unreserved
 * characters kept).  Codes: 1-64 of [A-Za-z0-9_-]. */
enum codec_rc flw_bill_validate_path(char *dst, size_t cap,
                                     const char *item_code,
                                     const char *biller_code,
                                     const char *customer, size_t *written,
                                     const char **why);

/* Validate response data.  is_valid iff response_code is "00".  The
 * customer's name is "name"; the amount due is data.amount when present
 * (UNCONFIRMED: the documented airtime sample has none). */
struct flw_bill_validation {
	bool is_valid;
	char response_code[16];
	char response_message[FLW_TEXT_MAX];
	char name[FLW_TEXT_MAX]; /* customer name */
	char customer[FLW_REF_MAX];
	char biller_code[FLW_REF_MAX];
	char product_code[FLW_REF_MAX];
	char address[FLW_TEXT_MAX]; /* "" if null */
	bool has_amount_due;
	int64_t amount_due_minor;
	int64_t fee_minor;
	int64_t minimum_minor; /* 0: no minimum */
	int64_t maximum_minor; /* 0: no maximum */
};
enum prov_rc flw_bill_validate_parse(struct flw_bill_validation *out,
                                     const struct json_doc *doc,
                                     struct prov_err *err);

/* "/v3/billers/{biller_code}/items/{item_code}/payment". */
enum codec_rc flw_bill_payment_path(char *dst, size_t cap,
                                    const char *biller_code,
                                    const char *item_code, size_t *written,
                                    const char **why);

/* The current create body {"country","customer_id","amount","reference",
 * "callback_url"}; callback_url may be NULL (omitted). */
struct flw_bill_payment_req {
	const char *country;     /* "NG" */
	const char *customer_id; /* phone, meter or smartcard number */
	int64_t amount_minor;    /* > 0, kobo */
	const char *reference;   /* soko's unique reference, 1-100 bytes */
	const char *callback_url;
};
enum codec_rc flw_bill_payment_build(char *dst, size_t cap,
                                     const struct flw_bill_payment_req *r,
                                     size_t *written, const char **why);

enum flw_recurrence {
	FLW_ONCE,
	FLW_HOURLY,
	FLW_DAILY,
	FLW_WEEKLY,
	FLW_MONTHLY,
};
/* The legacy POST /v3/bills body {"country","customer","amount",
 * "recurrence","type","reference"} (+ "biller_name" if not NULL). */
struct flw_bill_legacy_req {
	const char *country;
	const char *customer;
	int64_t amount_minor; /* > 0, kobo */
	enum flw_recurrence recurrence;
	const char *type; /* "AIRTIME", ... (the category's biller_name) */
	const char *reference;
	const char *biller_name; /* NULL: omitted */
};
enum codec_rc flw_bill_legacy_build(char *dst, size_t cap,
                                    const struct flw_bill_legacy_req *r,
                                    size_t *written, const char **why);

/* Create response data: {"phone_number","amount","network","flw_ref",
 * "tx_ref","reference"}.  Mandatory: amount (a number, > 0), flw_ref,
 * tx_ref.  token: the electricity token when data carries a "token"
 * string (UNCONFIRMED field; "" otherwise). */
struct flw_bill_created {
	int64_t amount_minor;
	char phone_number[FLW_REF_MAX];
	char network[FLW_TEXT_MAX];
	char flw_ref[FLW_REF_MAX];
	char tx_ref[FLW_REF_MAX];
	char reference[FLW_REF_MAX]; /* "" if null */
	char token[FLW_TEXT_MAX];
};
enum prov_rc flw_bill_created_parse(struct flw_bill_created *out,
                                    const struct json_doc *doc,
                                    struct prov_err *err);

/* GET /v3/bills/{reference} data.  Mandatory: currency, amount (a string
 * here, as documented, > 0), tx_ref.  The documented sample has no status
 * field: a record without one is PROV_SUCCEEDED; a "status" field, if
 * sent, is mapped with the transaction table (UNCONFIRMED,
 * docs/providers.md).  extra: the "extra" string (electricity token) or
 * "". */
struct flw_bill_status {
	enum prov_outcome outcome;
	char status[32]; /* "" when absent */
	char reason[PROV_REASON_MAX];
	char currency[4];
	int64_t amount_minor;
	char customer_id[FLW_REF_MAX];
	char product[FLW_TEXT_MAX];
	char product_name[FLW_TEXT_MAX];
	char tx_ref[FLW_REF_MAX];
	char transaction_date[40];
	char extra[FLW_TEXT_MAX];
};
enum prov_rc flw_bill_status_parse(struct flw_bill_status *out,
                                   const struct json_doc *doc,
                                   struct prov_err *err);

/* ---- mobile-money charges ---------------------------------------------- */

enum flw_momo_type {
	FLW_MOMO_GHANA, /* mobile_money_ghana: GHS, network MTN/VODAFONE/TIGO */
	FLW_MOMO_MPESA, /* mpesa: KES */
	FLW_MOMO_FRANCO, /* mobile_money_franco: XAF/XOF, country */
};
/* The ?type= value; NULL for an unknown type. */
const char *flw_momo_type_param(enum flw_momo_type t);

/* Every pointer borrowed.  network only (and mandatory) for Ghana,
 * country only (and mandatory) for francophone. */
struct flw_charge_req {
	enum flw_momo_type type;
	const char *tx_ref; /* soko's unique reference, 1-100 bytes */
	int64_t amount_minor;
	const char *currency;
	const char *network; /* "MTN", "VODAFONE", "TIGO" (Telecel...) */
	const char *country; /* "CM", "CI", "SN", ... */
	const char *email;
	const char *phone_number; /* digits */
	const char *fullname;
};
/* POST /v3/charges body in the documented field order: tx_ref, amount,
 * currency, network | country, email, phone_number, fullname. */
enum codec_rc flw_charge_build(char *dst, size_t cap,
                               const struct flw_charge_req *r, size_t *written,
                               const char **why);

/* A transaction as verify, charge and webhook bodies carry it. */
struct flw_txn {
	enum prov_outcome outcome;
	char status[32];              /* "successful", "pending", ... */
	char reason[PROV_REASON_MAX]; /* failures: processor_response */
	char id[FLW_ID_MAX];          /* numeric id, as text; "" if absent */
	char tx_ref[FLW_REF_MAX];
	char flw_ref[FLW_REF_MAX]; /* "" if absent */
	int64_t amount_minor;      /* > 0 */
	bool has_charged_amount;
	int64_t charged_amount_minor;
	char currency[4];
	char processor_response[FLW_TEXT_MAX];
	char payment_type[64];
	char auth_model[64];
};

/* POST /v3/charges response.  "error" -> PROV_FAILED with the message
 * as reason.  "success" with data -> the data status (amount, currency,
 * tx_ref and status mandatory); "success" without data (Ghana) needs
 * meta.authorization and is PROV_PENDING.  meta.authorization.mode and
 * its redirect / redirect_url (where the customer authorises) are copied
 * when present. */
struct flw_charge_resp {
	bool is_success;
	char message[FLW_TEXT_MAX];
	enum prov_outcome outcome;
	char reason[PROV_REASON_MAX];
	bool has_data;
	struct flw_txn txn; /* when has_data */
	char auth_mode[32];
	char auth_url[FLW_URL_MAX];
};
enum prov_rc flw_charge_resp_parse(struct flw_charge_resp *out,
                                   const struct json_doc *doc,
                                   struct prov_err *err);

/* GET /v3/transactions/{id}/verify: envelope "success" and data with
 * id, tx_ref, amount, currency and status mandatory. */
enum prov_rc flw_verify_parse(struct flw_txn *out, const struct json_doc *doc,
                              struct prov_err *err);

enum flw_event {
	FLW_EVENT_CHARGE_COMPLETED, /* "charge.completed" (or legacy v2) */
	FLW_EVENT_OTHER,            /* e.g. "transfer.completed": ack, ignore */
};
/* Webhook bodies: v3 {"event","data":{...},"event.type"} (data read as a
 * transaction only for charge.completed), or the legacy v2 flat body
 * {"id","txRef","flwRef","amount","charged_amount","status","currency",
 * ...,"event.type"} (is_legacy). */
struct flw_webhook {
	enum flw_event event;
	bool is_legacy;
	char event_name[64];
	char event_type[64]; /* "MOBILEMONEYGH_TRANSACTION", or "" */
	struct flw_txn txn;  /* when event is FLW_EVENT_CHARGE_COMPLETED */
};
enum prov_rc flw_webhook_parse(struct flw_webhook *out,
                               const struct json_doc *doc,
                               struct prov_err *err);

/* Flutterwave's transaction status table. */
const struct prov_status_map *flw_status_map(size_t *n);

#endif
