/*
 * prov_mpesa.h - Safaricom M-Pesa Daraja request builders and response /
 * callback parsers (docs/providers.md §2; shapes from
 * reference/wire-formats.md §1).
 *
 * Layer: protocols/ (STYLE.md §1): pure shapes.  No HTTP, no clock (the
 * caller passes the timestamp), no RSA (the caller passes the already
 * encrypted SecurityCredential), no allocation.  The adapter in server/
 * (not built yet, TODO(#4)) owns the transfers, tokens and retries.
 *
 * Builders write a NUL-terminated JSON body into a caller buffer and
 * return CODEC_OK, CODEC_NEED_MORE (*written = cap needed) or CODEC_BAD
 * (an input breaks a documented rule; *why static).
 *
 * Parsers take a document already tokenized by json_parse() (a body that
 * is not strict JSON never gets this far), copy what they need into
 * fixed-size fields of *out (so *out outlives the body) and return a
 * specific enum mpesa_rc with the failing field's path in err->field.
 *
 * Amounts are int64_t minor units of KES (exponent 2).  Field types follow
 * the documented samples: where the reference marks a field as a number
 * the parser refuses a string and vice versa, except where the reference
 * itself shows both forms (result codes, ResultParameter values).
 */
#ifndef SOKO_PROV_MPESA_H
#define SOKO_PROV_MPESA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"

#define MPESA_KES_EXPONENT  2
#define MPESA_ID_MAX        65  /* request/conversation ids, NUL included */
#define MPESA_CODE_MAX      24  /* result codes: "0", "1032", "SFC_IC0003" */
#define MPESA_DESC_MAX      256 /* descriptions and messages */
#define MPESA_NAME_MAX      128 /* party names */
#define MPESA_MSISDN_MAX    72  /* plain, masked or SHA-256 hex (C2B v1) */
#define MPESA_REF_MAX       64  /* BillRefNumber, InvoiceNumber */
#define MPESA_TIME_MAX      24  /* "20191219102115", "06.07.2024 22:48:52" */
#define MPESA_TIMESTAMP_LEN 14  /* YYYYMMDDHHmmss */

enum mpesa_rc {
	MPESA_OK,
	MPESA_MISSING,    /* a mandatory field is absent (err->field) */
	MPESA_WRONG_TYPE, /* a field has the wrong JSON type (err->field) */
	MPESA_BAD_VALUE,  /* right type, unusable value: amount precision,
	                     too long, bad date, duplicate item (err->why) */
};

struct mpesa_err {
	const char *field; /* static path, e.g. "Body.stkCallback.ResultCode" */
	const char *why;   /* static detail */
};

/* A result/response code, kept as text: Daraja sends numbers, numeric
 * strings and codes like "SFC_IC0003" in the same field. */
struct mpesa_code {
	char text[MPESA_CODE_MAX]; /* as sent */
	bool is_num;               /* text is a decimal integer, = .num */
	int64_t num;
};

/* true iff c is the number 0 (sent as 0 or "0"). */
bool mpesa_code_is_zero(const struct mpesa_code *c);

/* Error envelope of every API: {"requestId","errorCode","errorMessage"}. */
struct mpesa_error_resp {
	char request_id[MPESA_ID_MAX];
	char error_code[MPESA_CODE_MAX]; /* "500.001.1001" */
	char error_message[MPESA_DESC_MAX];
};
enum mpesa_rc mpesa_error_resp_parse(struct mpesa_error_resp *out,
                                     const struct json_doc *doc,
                                     struct mpesa_err *err);

/* ---- OAuth ---------------------------------------------------------- */

#define MPESA_TOKEN_MAX 512

/* GET /oauth/v1/generate answer: {"access_token":..,"expires_in":3599}
 * (expires_in a number or a numeric string: both are documented). */
struct mpesa_token {
	char access_token[MPESA_TOKEN_MAX];
	int64_t expires_in_s; /* 1 .. 86400 */
};
enum mpesa_rc mpesa_token_parse(struct mpesa_token *out,
                                const struct json_doc *doc,
                                struct mpesa_err *err);

/* ---- time and password ---------------------------------------------- */

/*
 * Formats utc_ms (milliseconds since the epoch, UTC) plus offset_s as
 * YYYYMMDDHHmmss into dst (15 bytes with the NUL).  Daraja timestamps are
 * Kenyan local time: pass offset_s = 3 * 3600 (EAT, no DST); the reference
 * does not say so explicitly (docs/providers.md §2.2).
 */
enum codec_rc mpesa_timestamp(char *dst, size_t cap, int64_t utc_ms,
                              int32_t offset_s);

/*
 * Password = base64(short_code + passkey + timestamp), plain concatenation
 * (wire-formats §1.2, CONFIRMED).  short_code: 5-10 digits; timestamp:
 * YYYYMMDDHHmmss; passkey: 1-128 printable ASCII.  Writes a NUL.
 */
enum codec_rc mpesa_stk_password(char *dst, size_t cap, const char *short_code,
                                 const char *passkey, const char *timestamp,
                                 size_t *written, const char **why);

/* ---- STK push (M-Pesa Express) ------------------------------------- */

enum mpesa_stk_type {
	MPESA_STK_PAYBILL,  /* CustomerPayBillOnline; party_b = paybill */
	MPESA_STK_BUYGOODS, /* CustomerBuyGoodsOnline; party_b = till */
};

/* Every pointer borrowed; all mandatory except desc (NULL: omitted). */
struct mpesa_stk_push_req {
	const char *short_code; /* BusinessShortCode, digits */
	const char *passkey;    /* from config, secret */
	const char *timestamp;  /* YYYYMMDDHHmmss, caller's clock */
	enum mpesa_stk_type type;
	int64_t amount_minor;     /* KES cents; whole KES, >= 100 */
	const char *party_a;      /* paying MSISDN, 2547XXXXXXXX */
	const char *party_b;      /* paybill or till, digits */
	const char *phone;        /* PhoneNumber: MSISDN that gets the prompt */
	const char *callback_url; /* https URL with the per-merchant token */
	const char *account_ref;  /* AccountReference, 1-12 characters */
	const char *desc;         /* TransactionDesc, <= 13 characters */
};

/* POST /mpesa/stkpush/v1/processrequest body.  The value types follow
 * the documented sample: BusinessShortCode a number, Amount a string. */
enum codec_rc mpesa_stk_push_build(char *dst, size_t cap,
                                   const struct mpesa_stk_push_req *r,
                                   size_t *written, const char **why);

struct mpesa_stk_push_resp {
	char merchant_request_id[MPESA_ID_MAX];
	char checkout_request_id[MPESA_ID_MAX];
	struct mpesa_code response_code; /* "0": accepted for processing */
	char response_desc[MPESA_DESC_MAX];
	char customer_message[MPESA_DESC_MAX]; /* "" if absent */
};
enum mpesa_rc mpesa_stk_push_resp_parse(struct mpesa_stk_push_resp *out,
                                        const struct json_doc *doc,
                                        struct mpesa_err *err);

/* Body.stkCallback.  On ResultCode 0, Amount and MpesaReceiptNumber are
 * mandatory; otherwise CallbackMetadata may be absent. */
struct mpesa_stk_callback {
	char merchant_request_id[MPESA_ID_MAX];
	char checkout_request_id[MPESA_ID_MAX];
	struct mpesa_code result_code;
	char result_desc[MPESA_DESC_MAX];
	bool has_metadata;
	bool has_amount;
	int64_t amount_minor;                  /* Amount, KES cents */
	char receipt[MPESA_ID_MAX];            /* MpesaReceiptNumber, or "" */
	char transaction_date[MPESA_TIME_MAX]; /* YYYYMMDDHHmmss, or "" */
	char phone[MPESA_MSISDN_MAX];          /* PhoneNumber digits, or "" */
};
enum mpesa_rc mpesa_stk_callback_parse(struct mpesa_stk_callback *out,
                                       const struct json_doc *doc,
                                       struct mpesa_err *err);

/* The answer soko sends to a callback: {"ResultCode":0,"ResultDesc":desc}
 * (desc "Accepted" for STK callbacks (UNCONFIRMED), "Success" for C2B
 * confirmations (CONFIRMED)). */
enum codec_rc mpesa_callback_ack_build(char *dst, size_t cap, const char *desc,
                                       size_t *written, const char **why);

/* ---- STK query ------------------------------------------------------ */

struct mpesa_stk_query_req {
	const char *short_code;
	const char *passkey;
	const char *timestamp;
	const char *checkout_request_id;
};
/* POST /mpesa/stkpushquery/v1/query body (BusinessShortCode a string, as
 * in the documented sample). */
enum codec_rc mpesa_stk_query_build(char *dst, size_t cap,
                                    const struct mpesa_stk_query_req *r,
                                    size_t *written, const char **why);

struct mpesa_stk_query_resp {
	struct mpesa_code response_code;
	char response_desc[MPESA_DESC_MAX];
	char merchant_request_id[MPESA_ID_MAX];
	char checkout_request_id[MPESA_ID_MAX];
	struct mpesa_code result_code; /* a string here, accepted as number */
	char result_desc[MPESA_DESC_MAX];
};
/* The 200 body.  "Still being processed" comes as the error envelope:
 * parse it with mpesa_error_resp_parse(). */
enum mpesa_rc mpesa_stk_query_resp_parse(struct mpesa_stk_query_resp *out,
                                         const struct json_doc *doc,
                                         struct mpesa_err *err);

/* ---- C2B ------------------------------------------------------------ */

enum mpesa_c2b_response_type {
	MPESA_C2B_DEFAULT_COMPLETED, /* "Completed" */
	MPESA_C2B_DEFAULT_CANCELLED, /* "Cancelled" */
};
/* POST /mpesa/c2b/v{1,2}/registerurl body. */
enum codec_rc mpesa_c2b_register_build(char *dst, size_t cap,
                                       const char *short_code,
                                       enum mpesa_c2b_response_type type,
                                       const char *confirmation_url,
                                       const char *validation_url,
                                       size_t *written, const char **why);

/* Validation and confirmation requests (same body; every value a
 * string).  Mandatory: TransactionType (may be ""), TransID, TransTime,
 * TransAmount, BusinessShortCode, BillRefNumber, MSISDN. */
struct mpesa_c2b {
	char transaction_type[MPESA_NAME_MAX]; /* "Pay Bill", "Buy Goods", "" */
	char trans_id[MPESA_ID_MAX];
	char trans_time[MPESA_TIME_MAX]; /* YYYYMMDDHHmmss */
	int64_t amount_minor;            /* TransAmount, > 0 */
	char short_code[MPESA_ID_MAX];
	char bill_ref[MPESA_REF_MAX]; /* the account reference */
	char invoice[MPESA_REF_MAX];
	bool has_balance;      /* blank in validations */
	int64_t balance_minor; /* OrgAccountBalance */
	char third_party_trans_id[MPESA_ID_MAX];
	char msisdn[MPESA_MSISDN_MAX]; /* plain, masked or hashed */
	char first_name[MPESA_NAME_MAX];
	char middle_name[MPESA_NAME_MAX];
	char last_name[MPESA_NAME_MAX];
};
enum mpesa_rc mpesa_c2b_parse(struct mpesa_c2b *out, const struct json_doc *doc,
                              struct mpesa_err *err);

enum mpesa_c2b_verdict {
	MPESA_C2B_ACCEPT,
	MPESA_C2B_REJECT_MSISDN,    /* C2B00011 */
	MPESA_C2B_REJECT_ACCOUNT,   /* C2B00012 */
	MPESA_C2B_REJECT_AMOUNT,    /* C2B00013 */
	MPESA_C2B_REJECT_KYC,       /* C2B00014 */
	MPESA_C2B_REJECT_SHORTCODE, /* C2B00015 */
	MPESA_C2B_REJECT_OTHER,     /* C2B00016 */
};
/* The ValidationURL answer: accept {"ResultCode":"0","ResultDesc":
 * "Accepted"} (plus ThirdPartyTransID if third_party_id is not NULL) or
 * reject {"ResultCode":"C2B000NN","ResultDesc":"Rejected"}. */
enum codec_rc mpesa_c2b_validation_resp_build(char *dst, size_t cap,
                                              enum mpesa_c2b_verdict v,
                                              const char *third_party_id,
                                              size_t *written,
                                              const char **why);

/* ---- B2C, transaction status: requests ------------------------------ */

enum mpesa_b2c_command {
	MPESA_B2C_SALARY,    /* SalaryPayment */
	MPESA_B2C_BUSINESS,  /* BusinessPayment */
	MPESA_B2C_PROMOTION, /* PromotionPayment */
};

struct mpesa_b2c_req {
	const char *originator_conversation_id; /* soko's id, unique */
	const char *initiator_name;
	const char *security_credential; /* base64 RSA, computed by caller */
	enum mpesa_b2c_command command;
	int64_t amount_minor; /* whole KES, >= 100 */
	const char *party_a;  /* shortcode */
	const char *party_b;  /* 12-digit MSISDN, no '+' */
	const char *remarks;  /* 2-100 characters */
	const char *queue_timeout_url;
	const char *result_url;
	const char *occasion; /* NULL: omitted; 1-100 chars */
};
/* POST /mpesa/b2c/v3/paymentrequest body.  The optional field is written
 * "Occassion", as the v3 docs spell it (UNCONFIRMED, docs/providers.md). */
enum codec_rc mpesa_b2c_build(char *dst, size_t cap,
                              const struct mpesa_b2c_req *r, size_t *written,
                              const char **why);

struct mpesa_status_req {
	const char *initiator;
	const char *security_credential;
	const char *transaction_id; /* M-Pesa receipt, e.g. NEF61H8J60 */
	const char *original_conversation_id; /* NULL: omitted */
	const char *party_a;
	const char *identifier_type; /* "4": organisation shortcode */
	const char *result_url;
	const char *queue_timeout_url;
	const char *remarks;
	const char *occasion; /* NULL: omitted */
};
/* POST /mpesa/transactionstatus/v1/query body (CommandID
 * TransactionStatusQuery; no-space field names). */
enum codec_rc mpesa_status_build(char *dst, size_t cap,
                                 const struct mpesa_status_req *r,
                                 size_t *written, const char **why);

/*
 * POST /mpesa/reversal/v1/request (CommandID TransactionReversal): gives
 * back a C2B or STK payment by its receipt.  NOT in the CONFIRMED wire
 * reference: the shape is Daraja's reversal documentation's
 * (docs/providers.md §M-Pesa reversal), field names as spelt there
 * ("RecieverIdentifierType", sic).  The answer is the synchronous
 * mpesa_accepted; the outcome comes to ResultURL (mpesa_reversal_result).
 */
struct mpesa_reversal_req {
	const char *initiator;
	const char *security_credential;
	const char *transaction_id; /* the receipt of the payment reversed */
	int64_t amount_minor;       /* whole KES: the payment's amount */
	const char *receiver_party; /* the shortcode that received it */
	const char *receiver_identifier_type; /* "11" (documented), 1-2
	                                         digits */
	const char *result_url;
	const char *queue_timeout_url;
	const char *remarks;  /* 2-100 bytes */
	const char *occasion; /* NULL: omitted; 1-100 bytes */
};
enum codec_rc mpesa_reversal_build(char *dst, size_t cap,
                                   const struct mpesa_reversal_req *r,
                                   size_t *written, const char **why);

/* Synchronous answer of B2C, transaction status and account balance. */
struct mpesa_accepted {
	char originator_conversation_id[MPESA_ID_MAX];
	char conversation_id[MPESA_ID_MAX];
	struct mpesa_code response_code;
	char response_desc[MPESA_DESC_MAX];
};
enum mpesa_rc mpesa_accepted_parse(struct mpesa_accepted *out,
                                   const struct json_doc *doc,
                                   struct mpesa_err *err);

/* ---- result callbacks ({"Result":{...}}) ---------------------------- */

struct mpesa_result {
	const struct json_doc *doc; /* borrowed: params point into it */
	struct mpesa_code result_type;
	struct mpesa_code result_code;
	char result_desc[MPESA_DESC_MAX];
	char originator_conversation_id[MPESA_ID_MAX];
	char conversation_id[MPESA_ID_MAX];
	char transaction_id[MPESA_ID_MAX]; /* "" if absent */
	size_t params; /* ResultParameter token (array, or one object), 0 */
};
/* The envelope shared by B2C, transaction status, account balance and
 * (assumed, UNCONFIRMED) QueueTimeOutURL callbacks. */
enum mpesa_rc mpesa_result_parse(struct mpesa_result *out,
                                 const struct json_doc *doc,
                                 struct mpesa_err *err);
/* Token of the Value of the ResultParameter whose Key equals key when
 * spaces are ignored ("Conversation ID" matches "ConversationID"); 0 if
 * there is none or it has no Value. */
size_t mpesa_result_param(const struct mpesa_result *r, const char *key);

struct mpesa_b2c_result {
	struct mpesa_result r;
	bool has_amount;
	int64_t amount_minor;               /* TransactionAmount */
	char receipt[MPESA_ID_MAX];         /* TransactionReceipt */
	char receiver_name[MPESA_NAME_MAX]; /* ReceiverPartyPublicName */
	char completed_at[MPESA_TIME_MAX];  /* DD.MM.YYYY HH:mm:ss */
	bool has_utility_funds;
	int64_t utility_funds_minor; /* B2CUtilityAccountAvailableFunds */
};
/* On ResultCode 0, TransactionAmount and TransactionReceipt are
 * mandatory. */
enum mpesa_rc mpesa_b2c_result_parse(struct mpesa_b2c_result *out,
                                     const struct json_doc *doc,
                                     struct mpesa_err *err);

/* The result of a reversal ({"Result":{...}} at its ResultURL). */
struct mpesa_reversal_result {
	struct mpesa_result r;
	char original_txn[MPESA_ID_MAX]; /* OriginalTransactionID, or "" */
	bool has_amount;
	int64_t amount_minor; /* Amount */
};
/* On ResultCode 0, OriginalTransactionID and Amount are mandatory. */
enum mpesa_rc mpesa_reversal_result_parse(struct mpesa_reversal_result *out,
                                          const struct json_doc *doc,
                                          struct mpesa_err *err);

struct mpesa_status_result {
	struct mpesa_result r;
	char receipt[MPESA_ID_MAX]; /* ReceiptNo */
	bool has_amount;
	int64_t amount_minor;                /* Amount */
	char status[MPESA_NAME_MAX];         /* TransactionStatus */
	char debit_party[MPESA_NAME_MAX];    /* DebitPartyName */
	char credit_party[MPESA_NAME_MAX];   /* CreditPartyName */
	char initiated_time[MPESA_TIME_MAX]; /* InitiatedTime */
	char finalised_time[MPESA_TIME_MAX]; /* FinalisedTime */
};
/* On ResultCode 0, ReceiptNo, Amount and TransactionStatus are
 * mandatory. */
enum mpesa_rc mpesa_status_result_parse(struct mpesa_status_result *out,
                                        const struct json_doc *doc,
                                        struct mpesa_err *err);

#endif
