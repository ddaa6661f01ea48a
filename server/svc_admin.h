/*
 * svc_admin.h - the back office's manual ledger movements over HTTP
 * (docs/api.md §Movements): agent float top-up and adjustment between
 * accounts.
 *
 * Pure decisions: parses and validates a request body, builds the ledger
 * request once the accounts are known, and renders results.  No I/O, no
 * libevent: net_http.c does the transport.
 */
#ifndef SOKO_SVC_ADMIN_H
#define SOKO_SVC_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "money.h"

#define SVC_IDEM_KEY_MAX 100 /* Idempotency-Key header bytes */

/* A specific, documented error (docs/api.md §Errors). */
struct svc_error {
	int status;           /* HTTP status */
	const char *code;     /* stable machine code, e.g. "amount_zero" */
	const char *message;  /* human text, static */
};

struct svc_movement {
	uint8_t kind; /* LEDGER_TXN_FLOAT_TOPUP or LEDGER_TXN_ADJUSTMENT */
	const struct currency *cur;
	int64_t amount_minor;
	char debit[LEDGER_CODE_MAX + 1];
	char credit[LEDGER_CODE_MAX + 1];
	char memo[LEDGER_MEMO_MAX + 1];
	struct ledger_subject subjects[LEDGER_SUBJECTS_MAX];
};

/*
 * Parses a movement body (JSON object):
 *   {"type": "float_topup"|"adjustment", "currency": "KES",
 *    "amount": "1500.00", "debit": CODE, "credit": CODE,
 *    "memo": TEXT?, "limits": {"agent": ID?, "msisdn": ID?,
 *    "terminal": ID?}?}
 * Returns 0, or -1 with *err set (nothing else is touched then).
 */
int svc_admin_parse_movement(struct svc_movement *out, const char *body,
                             size_t len, struct svc_error *err);

/* A collection request: a customer's wallet pays a merchant through a
 * provider (docs/api.md §Collections). */
struct svc_collection {
	char provider[16]; /* "mpesa" */
	char msisdn[21];   /* international digits, e.g. 2547XXXXXXXX */
	const struct currency *cur;
	int64_t amount_minor;
	char account[LEDGER_CODE_MAX + 1]; /* merchant payable code */
	char reference[33]; /* shown to the customer; "" = generated */
};

/*
 * Parses {"provider": "mpesa", "msisdn": "254708374149", "amount": "150.00",
 * "currency": "KES", "account": CODE, "reference": TEXT?}.  The MSISDN is
 * 9..15 digits; reference 1..12 of [A-Za-z0-9-].  Returns 0, or -1 with
 * *err set.
 */
int svc_admin_parse_collection(struct svc_collection *out, const char *body,
                               size_t len, struct svc_error *err);

/* s is min..max bytes, each in set. */
bool svc_admin_all_of(const char *s, const char *set, size_t min,
                      size_t max);

/*
 * Parses body as a JSON object (UTF-8, no duplicate keys) whose keys are
 * all among fields[0..n_fields): the object, which the caller
 * json_decref's, or NULL with *err (400 bad_json, field_unknown).
 */
struct json_t; /* jansson's json_t (not included: protocols/json.h) */
struct json_t *svc_admin_json_object(const char *body, size_t len,
                                     const char *const *fields,
                                     size_t n_fields, struct svc_error *err);

/* Validates an Idempotency-Key header (1..100 bytes of [A-Za-z0-9._:-]);
 * NULL is "missing".  Returns 0 or -1 with *err. */
int svc_admin_check_key(const char *key, struct svc_error *err);

/*
 * Builds the ledger request for m between the resolved accounts (NULL when
 * the code is unknown) under key "http:" + idem_key, and hashes it.
 * Returns 0 or -1 with *err (unknown account, same account, wrong account
 * type for a float top-up, currency mismatch).
 */
int svc_admin_build(struct ledger_req *r, const struct svc_movement *m,
                    const char *idem_key, const struct ledger_account *debit,
                    const struct ledger_account *credit,
                    struct svc_error *err);

/* The HTTP status of a ledger outcome (201 for LEDGER_OK). */
int svc_admin_status(enum ledger_rc rc);

/* Renders the response body of a decided movement; caller frees. */
char *svc_admin_render(const struct svc_movement *m,
                       const struct ledger_result *res);
/* Renders {"error": code, "message": text}; caller frees. */
char *svc_admin_render_error(const struct svc_error *e);
/* Renders an account with its balance; caller frees. */
char *svc_admin_render_account(const struct ledger_account *a);

#endif
