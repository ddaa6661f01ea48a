/*
 * ledger.h - soko's double-entry ledger core (docs/architecture.md §Ledger).
 *
 * A ledger request is a set of signed postings (credit positive) that sum to
 * zero in one currency, an idempotency key, and the limit subjects it
 * counts against.  ledger_commit_batch() decides every request of a batch
 * against balances, floors, limits and idempotency records loaded inside
 * one storage transaction, writes the outcome (postings, aggregated balance
 * deltas, limit usage, idempotency rows) and commits once: group commit.
 *
 * All the rules live here, once; the two storage backends only read and
 * write rows (store.h).  Runs on the storage writer thread only: every call
 * may block.
 */
#ifndef SOKO_LEDGER_H
#define SOKO_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;
struct store_pos_txn;
struct store_prov_update;

#define LEDGER_KEY_MAX     128 /* idempotency key bytes, scope included */
#define LEDGER_CODE_MAX    64  /* account code bytes */
#define LEDGER_SUBJECT_MAX 40  /* limit subject id (MSISDN, agent, terminal) */
#define LEDGER_LEGS_MAX    8   /* postings per transaction */
#define LEDGER_SUBJECTS_MAX 3  /* limit subjects per request */
#define LEDGER_MEMO_MAX    128
#define LEDGER_HASH_LEN    32  /* SHA-256 of the canonical request */

/* Account types (docs/architecture.md §Accounts).  Values are stored. */
#define LEDGER_ACCOUNT_TYPES(X)                                              \
	X(PROVIDER_CLEARING, 1, "provider_clearing")                         \
	X(MERCHANT_PAYABLE, 2, "merchant_payable")                           \
	X(AGENT_FLOAT, 3, "agent_float")                                     \
	X(BILLER_PAYABLE, 4, "biller_payable")                               \
	X(FEES_REVENUE, 5, "fees_revenue")                                   \
	X(COMMISSION_REVENUE, 6, "commission_revenue")                       \
	X(SUSPENSE, 7, "suspense")                                           \
	X(CUSTOMER_WALLET, 8, "customer_wallet")

enum ledger_account_type {
#define X(name, val, str) LEDGER_ACCT_##name = val,
	LEDGER_ACCOUNT_TYPES(X)
#undef X
};

/* Transaction kinds.  Values are stored. */
#define LEDGER_TXN_KINDS(X)                                                  \
	X(FLOAT_TOPUP, 1, "float_topup")                                     \
	X(ADJUSTMENT, 2, "adjustment")                                       \
	X(REVERSAL, 3, "reversal")                                           \
	X(PAYMENT, 4, "payment")                                             \
	X(FLOAT_TRANSFER, 5, "float_transfer")

enum ledger_txn_kind {
#define X(name, val, str) LEDGER_TXN_##name = val,
	LEDGER_TXN_KINDS(X)
#undef X
};

/* Limit subjects: who a request counts against. Values are stored. */
#define LEDGER_SUBJECT_KINDS(X)                                              \
	X(MSISDN, 1, "msisdn")                                               \
	X(AGENT, 2, "agent")                                                 \
	X(TERMINAL, 3, "terminal")                                           \
	X(MERCHANT, 4, "merchant")

enum ledger_subject_kind {
	LEDGER_SUBJ_NONE = 0,
#define X(name, val, str) LEDGER_SUBJ_##name = val,
	LEDGER_SUBJECT_KINDS(X)
#undef X
};

/*
 * Outcomes.  Stable names (ledger_rc_name) are the API's error codes
 * (docs/api.md).  Values are stored: append new ones before RETRY only.
 * Every outcome except IDEM_MISMATCH, BAD_REQUEST (an empty key, text that
 * is not UTF-8: nothing to store it under) and RETRY is final and is stored
 * with the idempotency key, so a repeat returns it again.
 */
#define LEDGER_RCS(X)                                                        \
	X(OK, "ok")                                                          \
	X(IDEM_MISMATCH, "idempotency_key_mismatch")                         \
	X(UNKNOWN_ACCOUNT, "account_unknown")                                \
	X(ACCOUNT_CLOSED, "account_closed")                                  \
	X(CURRENCY_MISMATCH, "currency_mismatch")                            \
	X(UNBALANCED, "postings_unbalanced")                                 \
	X(BAD_AMOUNT, "amount_invalid")                                      \
	X(OVERFLOW, "amount_overflow")                                       \
	X(INSUFFICIENT_FUNDS, "insufficient_funds")                          \
	X(LIMIT_PER_TXN, "limit_per_transaction")                            \
	X(LIMIT_DAILY, "limit_daily")                                        \
	X(LIMIT_VELOCITY, "limit_velocity")                                  \
	X(REVERSAL_UNKNOWN, "reversal_target_unknown")                       \
	X(REVERSAL_TWICE, "reversal_already_reversed")                       \
	X(REVERSAL_OF_REVERSAL, "reversal_of_reversal")                      \
	X(BAD_REQUEST, "request_invalid")                                    \
	X(RETRY, "retry_later")

enum ledger_rc {
#define X(name, str) LEDGER_##name,
	LEDGER_RCS(X)
#undef X
	LEDGER_RC_COUNT
};

struct ledger_leg {
	int64_t account_id;
	int64_t amount_minor; /* credit positive, debit negative, never 0 */
};

struct ledger_subject {
	uint8_t kind; /* enum ledger_subject_kind; 0 = unused slot */
	char id[LEDGER_SUBJECT_MAX + 1];
};

struct ledger_req {
	char idem_key[LEDGER_KEY_MAX + 1]; /* scope:key, e.g. "http:abc" */
	uint8_t hash[LEDGER_HASH_LEN];     /* of the request's content */
	uint8_t kind;                      /* enum ledger_txn_kind */
	uint16_t currency;                 /* ISO 4217 numeric */
	uint8_t n_legs;
	struct ledger_leg legs[LEDGER_LEGS_MAX];
	int64_t reverses_txn_id; /* LEDGER_TXN_REVERSAL: the original; else 0 */
	int64_t limit_amount;    /* counted against limits (>= 0) */
	struct ledger_subject subjects[LEDGER_SUBJECTS_MAX];
	/* Counted against its subjects' limits, never refused by them (not
	 * hashed): a POS collection's success, whose money has already
	 * moved at the provider; its limits were checked when it was
	 * created (ledger_limits_check). */
	bool count_only;
	char memo[LEDGER_MEMO_MAX + 1];
	/* Optional (not hashed): a POS transaction row written in the same
	 * storage transaction when this request is decided for the first
	 * time, with its rc, txn id and time filled in (store.h).  Borrowed
	 * until ledger_commit_batch returns. */
	const struct store_pos_txn *pos;
	/* Optional (not hashed): a provider payment settled by this
	 * request, applied in the same storage transaction when the request
	 * is decided LEDGER_OK for the first time (its txn_id filled in).
	 * If the row is no longer in the expected state, the batch is
	 * committed without the settling requests, which get LEDGER_RETRY
	 * (nothing of theirs written).  Borrowed. */
	const struct store_prov_update *prov;
	/* Optional (not hashed): a provider payment created by this request
	 * (a disbursement and its hold), inserted in the same storage
	 * transaction when the request is decided LEDGER_OK for the first
	 * time, linked to its transaction.  Nothing is created otherwise.
	 * If a unique key of it is taken (its ref; the POS txn id's claim,
	 * store_pos_link.idem_key), the batch is committed without it and
	 * it gets LEDGER_RETRY.  Borrowed. */
	const struct store_prov *prov_new;
};

struct ledger_result {
	enum ledger_rc rc;
	bool is_replay;     /* a repeat of a key: rc/txn_id are the first's */
	int64_t txn_id;     /* LEDGER_OK: the transaction; else 0 */
	int64_t created_ms; /* when the first request was decided */
};

/* Account as stored. */
struct ledger_account {
	int64_t id;
	char code[LEDGER_CODE_MAX + 1]; /* unique, e.g. "agent:A001:float" */
	uint8_t type;                   /* enum ledger_account_type */
	uint16_t currency;
	int64_t balance_minor; /* credit-normal: sum of postings */
	bool has_floor;
	int64_t floor_minor; /* balance may never go below (if has_floor) */
	bool is_closed;
	int64_t created_ms;
};

/* A limit rule: subject "*" is the default for its kind. */
struct ledger_limit_rule {
	uint8_t subject_kind;
	char subject[LEDGER_SUBJECT_MAX + 1];
	uint16_t currency;
	int64_t per_txn_max;     /* minor units; 0 = no limit */
	int64_t daily_max;       /* minor units per UTC day; 0 = no limit */
	int32_t velocity_max;    /* transactions per window; 0 = no limit */
	int32_t velocity_window_s;
};

struct ledger;

/*
 * Creates the ledger over st (borrowed; must outlive the ledger) and loads
 * its limit rules.  Returns NULL with a reason in err on failure.
 */
struct ledger *ledger_new(struct store *st, char *err, size_t errlen);
void ledger_free(struct ledger *lg); /* NULL-safe */

/*
 * Decides and commits a batch.  Borrows reqs[0..n); fills res[0..n).
 * Requests are decided in order, each seeing the effects of the ones before
 * it; a repeat of a key (stored, or earlier in the same batch) gets the
 * first outcome.  Returns 0 when the batch committed (every res[] is final
 * and durable, except settling requests put back as LEDGER_RETRY, see
 * ledger_req.prov) or -1 when it could not (every res[].rc is LEDGER_RETRY
 * and nothing was written).  now_ms is the UTC wall clock.  Limit rules are
 * re-read from the store at most every LEDGER_LIMITS_TTL_MS, so a change
 * made by another instance is seen within that time.
 */
int ledger_commit_batch(struct ledger *lg, const struct ledger_req *reqs,
                        size_t n, struct ledger_result *res, int64_t now_ms);

#define LEDGER_LIMITS_TTL_MS 1000

/* Forces a reload of the limit rules on the next batch. */
void ledger_limits_changed(struct ledger *lg);

/* The rule for (kind, subject, currency): exact match first, then "*";
 * NULL if none.  Valid until the next batch. */
const struct ledger_limit_rule *ledger_limit_find(const struct ledger *lg,
                                                  uint8_t kind,
                                                  const char *subject,
                                                  uint16_t currency);

/*
 * Would r pass the limits of its subjects (limit_amount, currency) now?
 * Reads the rules and the usage so far through the ledger's store and
 * writes nothing: LEDGER_OK, or the LEDGER_LIMIT_* that refuses it, or
 * LEDGER_RETRY if the store failed (its errstr says why).  Call it where the
 * store may be used (the storage worker).  Requests decided between this
 * check and r's own commit are not seen: requests checked here and
 * counted later (count_only) can together overshoot a limit by those in
 * flight.  r->count_only is ignored.
 */
enum ledger_rc ledger_limits_check(struct ledger *lg,
                                   const struct ledger_req *r,
                                   int64_t now_ms);

/* Canonical request hash: SHA-256 over every decided field of r, so a
 * repeat with different content is told apart.  Sets r->hash. */
void ledger_req_hash(struct ledger_req *r);

/* Stable names for logs, API and the database. */
const char *ledger_rc_name(enum ledger_rc rc);
const char *ledger_account_type_name(uint8_t type);
int ledger_account_type_parse(const char *s); /* -1 if unknown */
const char *ledger_txn_kind_name(uint8_t kind);
int ledger_txn_kind_parse(const char *s);
const char *ledger_subject_kind_name(uint8_t kind);
int ledger_subject_kind_parse(const char *s);

/* UTC day number (days since 1970-01-01) of a millisecond timestamp. */
int64_t ledger_day(int64_t now_ms);

#endif
