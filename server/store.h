/*
 * store.h - soko's storage interface: one contract, two backends
 * (store_sqlite.c: embedded default; store_pg.c: PostgreSQL via libpq).
 *
 * Every call may block: call only from the storage worker threads
 * (dbq.c), from sokoctl, or from tests; never from an event callback.
 * A store handle is used by one thread at a time.
 *
 * The store reads and writes rows; it makes no ledger decisions.  The rules
 * (balances, floors, limits, idempotency, reversals) live once in ledger.c
 * and run inside a transaction opened with begin(), which takes the
 * ledger's single write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
 * transaction-scoped advisory lock shared by every sokod on the database).
 * Under it, the reads of a batch cannot go stale before commit(), so the
 * decisions hold when several sokod share one PostgreSQL.
 *
 * Both backends pass tests/unit/store/test_store.c.
 */
#ifndef SOKO_STORE_H
#define SOKO_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "payment.h"

enum store_rc {
	STORE_OK,
	STORE_NOT_FOUND,
	STORE_CONFLICT, /* unique key exists, or state was not the expected:
	                   a result, not an error */
	STORE_RETRY,    /* transient (deadlock, serialization, lost
	                   connection, busy): the transaction was rolled back;
	                   try again */
	STORE_FAIL,     /* anything else; the reason is in store_errstr() */
};

/* Idempotency record: the first outcome of a key. */
struct store_idem {
	char key[LEDGER_KEY_MAX + 1];
	uint8_t hash[LEDGER_HASH_LEN];
	uint8_t rc;         /* enum ledger_rc */
	int64_t txn_id;     /* 0 unless rc == LEDGER_OK */
	int64_t created_ms;
};

/* Limit usage row: what a subject did in one time bucket. */
struct store_usage {
	uint8_t subject_kind;
	char subject[LEDGER_SUBJECT_MAX + 1];
	uint16_t currency;
	int32_t window_s; /* bucket width: 86400 for daily, or the velocity
	                     window */
	int64_t bucket;   /* floor(now_s / window_s) */
	int64_t amount_minor; /* loaded: total so far; written: delta */
	int64_t count;        /* loaded: total so far; written: delta */
};

/* What a reversal needs to know about its target. */
struct store_txn_info {
	int64_t id;
	uint8_t kind;
	uint16_t currency;
	int64_t reversed_by; /* id of the reversal transaction, or 0 */
	uint8_t n_legs;
	struct ledger_leg legs[LEDGER_LEGS_MAX];
};

struct store_txn_row {
	int64_t id;
	uint8_t kind;
	uint16_t currency;
	int64_t amount_minor; /* sum of the credit legs */
	int64_t reverses_txn_id;
	const char *idem_key; /* borrowed */
	const char *memo;     /* borrowed */
	int64_t created_ms;
};

struct store_posting_row {
	uint8_t leg; /* 0.. within its transaction */
	int64_t txn_id;
	int64_t account_id;
	int64_t amount_minor;
	uint16_t currency;
};

struct store_balance_delta {
	int64_t account_id;
	int64_t delta_minor;
};

struct store_prov_update;

/* Everything one batch writes.  Arrays borrowed. */
struct store_batch {
	const struct store_txn_row *txns;
	size_t n_txns;
	const struct store_posting_row *postings;
	size_t n_postings;
	const struct store_balance_delta *deltas; /* one per account */
	size_t n_deltas;
	const struct store_usage *usage; /* deltas, one per key */
	size_t n_usage;
	const struct store_idem *idem; /* new keys only */
	size_t n_idem;
	const struct store_pos_txn *pos_txns; /* new POS rows */
	size_t n_pos_txns;
	/* provider payments settled by this batch (txn_id filled), applied
	 * after the transactions, as prov_update does; one not in its
	 * (from_state, expect_call) makes batch_write CONFLICT */
	const struct store_prov_update *prov;
	size_t n_prov;
	/* provider payments created by this batch (disbursements: the hold
	 * posting and the payment in one commit), pay.txn_id filled;
	 * inserted as prov_create does, after the transactions */
	const struct store_prov *prov_new;
	size_t n_prov_new;
	int64_t now_ms; /* when the batch was decided */
};

/* ---- POS provisioning (sql/NNN_pos.sql, docs/operations.md) ---- */

#define STORE_POS_ID_MAX      32 /* terminal id and agent code, bytes */
#define STORE_KEY_WRAPPED_LEN 60 /* nonce 12 || K_t 32 || tag 16 */

enum store_pos_status {
	STORE_POS_ACTIVE = 1, /* stored as 'active' */
	STORE_POS_BLOCKED,    /* stored as 'blocked' */
};

struct store_agent {
	int64_t id;
	char code[STORE_POS_ID_MAX + 1];
	int64_t float_account_id; /* accounts.id, an agent_float */
	uint8_t status;           /* enum store_pos_status */
	int64_t created_ms;
};

/* A merchant (sql/NNN_pos_merchants.sql): the merchant_payable account
 * its terminals' COLLECTs credit. */
struct store_merchant {
	int64_t id;
	char code[STORE_POS_ID_MAX + 1];
	int64_t payable_account_id; /* accounts.id, a merchant_payable */
	int64_t created_ms;
};

/* A partner key of the HTTP /rpc endpoints (sql/NNN_rpc_keys.sql): the
 * SHA-256 of the key, never the key; the terminals it may act for. */
enum store_rpc_scope {
	STORE_RPC_SCOPE_AGENT = 1,    /* the terminals of agent `scope` */
	STORE_RPC_SCOPE_MERCHANT = 2, /* the terminals of merchant `scope` */
	STORE_RPC_SCOPE_TERMINAL = 3, /* terminal `scope` */
};
#define STORE_RPC_KEY_HASH_LEN 32
struct store_rpc_key {
	int64_t id;
	char name[STORE_POS_ID_MAX + 1];
	uint8_t key_hash[STORE_RPC_KEY_HASH_LEN];
	uint8_t scope_kind; /* enum store_rpc_scope */
	char scope[STORE_POS_ID_MAX + 1];
	bool is_revoked;
	int64_t created_ms;
};
typedef int (*store_rpc_key_fn)(void *arg, const struct store_rpc_key *k);

/* A terminal with what a login needs of its agent (and merchant). */
struct store_terminal {
	char id[STORE_POS_ID_MAX + 1];
	int64_t agent_id;
	int64_t merchant_id; /* 0: none (COLLECT credits the agent's float) */
	uint8_t key_wrapped[STORE_KEY_WRAPPED_LEN]; /* never K_t in clear */
	uint8_t status;                             /* enum store_pos_status */
	int64_t created_ms;
	/* filled by terminal_get and terminal_list; ignored by create */
	struct store_agent agent;
	struct store_merchant merchant; /* zeroed when merchant_id is 0 */
};

/* ---- POS transactions (sql/NNN_pos_txns.sql, docs/pos-protocol.md §9) */

#define STORE_POS_TXN_ID_LEN 16 /* the terminal's txn_id (a UUID) */

/*
 * What a POS request decided, keyed by (terminal_id, txn_id).  Written
 * only by the ledger batch that decides its request (ledger_req.pos), in
 * the same transaction, so the row exists exactly when the idempotency
 * record does.  A tombstone (type 0, rc LEDGER_REVERSAL_UNKNOWN) is a
 * REVERSAL of a txn_id the server never saw: it holds the key so a late
 * original moves nothing (§9.3).
 */
struct store_pos_txn {
	char terminal_id[STORE_POS_ID_MAX + 1];
	uint8_t txn_id[STORE_POS_TXN_ID_LEN];
	uint16_t type;     /* POS request type (0x0013); 0: tombstone */
	bool is_advice;    /* uploaded by ADVICE_BATCH (answered STORED) */
	uint16_t currency; /* ISO 4217 numeric; 0 for a tombstone */
	int64_t amount_minor;
	char counterparty[STORE_POS_ID_MAX + 1]; /* to_agent, or "" */
	int64_t local_time_ms; /* advice: when the terminal accepted it */
	/* set by the ledger when it writes the row */
	uint8_t rc;            /* enum ledger_rc */
	int64_t ledger_txn_id; /* 0 unless rc == LEDGER_OK */
	int64_t created_ms;
	/* filled by pos_txn_get only */
	int64_t reversed_by; /* ledger id of the reversing txn, or 0 */
	int64_t reversed_ms;
};

/* One line of EOD totals: transactions of one type and currency. */
struct store_pos_total {
	uint16_t type;
	uint16_t currency;
	int64_t count;
	int64_t sum_minor;
};

/* ---- payments through providers (sql/NNN_provider_payments.sql,
 * docs/providers.md §Payments through providers) ---- */

#define STORE_PROVIDER_MAX 15 /* "mpesa", "momo", ... */
#define STORE_MSISDN_MAX   20
#define STORE_PREF_MAX     64 /* client and provider references */
#define STORE_RCODE_MAX    32
#define STORE_RDESC_MAX    128
#define STORE_STEP_MAX     15  /* next_step: "send_otp", "open_url" ... */
#define STORE_NTEXT_MAX    200 /* next_text: what to tell the customer */
#define STORE_URL_MAX      512 /* next_url: where to send the customer */

enum store_prov_kind {
	STORE_PROV_COLLECT = 1,  /* customer wallet -> merchant */
	STORE_PROV_DISBURSE = 2, /* soko -> customer wallet */
	STORE_PROV_BILL = 3,     /* source account -> biller (docs/payments.md
	                            §Bill payments); a bill_payments row */
};

/* The outbox state of the provider call (see the migration). */
enum store_call_state {
	STORE_CALL_TO_SEND = 0,
	STORE_CALL_SENDING = 1,
	STORE_CALL_ACCEPTED = 2,
	STORE_CALL_LOST = 3,
	STORE_CALL_DONE = 4,
};

/* ---- bill payments (sql/NNN_bills.sql, docs/payments.md §Bill
 * payments): the bill_payments row of a STORE_PROV_BILL payment ---- */
#define STORE_BILL_CODE_MAX     32 /* biller and item codes */
#define STORE_BILL_CUSTOMER_MAX 40 /* meter, smartcard, account number */
#define STORE_BILL_NAME_MAX     128

struct store_bill {
	int64_t source_account_id; /* debited at creation, refunded on
	                              failure */
	char biller_code[STORE_BILL_CODE_MAX + 1];
	char item_code[STORE_BILL_CODE_MAX + 1];
	char customer[STORE_BILL_CUSTOMER_MAX + 1];
	char customer_name[STORE_BILL_NAME_MAX + 1]; /* as validated, or "" */
};

/* The POS terminal request that started a provider payment
 * (pos_payments). */
struct store_pos_link {
	char terminal_id[STORE_POS_ID_MAX + 1];
	uint8_t txn_id[STORE_POS_TXN_ID_LEN];
	uint16_t type;    /* POS request type: COLLECT, CASH_OUT, BILL_PAY */
	int64_t acked_ms; /* 0 until COLLECT_RESULT_ACK; set at creation:
	                     nothing to push (an advised BILL_PAY) */
	bool is_advice;   /* uploaded by ADVICE_BATCH (answered STORED) */
	/* written, never read back: the ledger idempotency key the txn id
	 * would have as a ledger request (a float transfer, a REVERSAL's
	 * tombstone), claimed in the same transaction as the payment, so
	 * the txn id can never be a ledger request too; "" claims none.
	 * The claim (hash: the payment's req_hash, rc IDEM_MISMATCH, no
	 * transaction) makes such a request IDEM_MISMATCH, and a claim
	 * whose key is taken makes the payment's creation CONFLICT. */
	char idem_key[LEDGER_KEY_MAX + 1];
};

struct store_prov {
	struct payment pay; /* payments row: ref, state, amount, ... */
	uint8_t kind;       /* enum store_prov_kind */
	char provider[STORE_PROVIDER_MAX + 1];
	char msisdn[STORE_MSISDN_MAX + 1];
	int64_t clearing_account_id; /* the provider's clearing account */
	int64_t target_account_id;   /* merchant payable (collect); the
	                                source, merchant payable or agent
	                                float (disburse) */
	int64_t hold_account_id;     /* disburse: the holding account the
	                                amount waits in; else 0 */
	char client_ref[STORE_PREF_MAX + 1];   /* ours, sent to the provider */
	char provider_ref[STORE_PREF_MAX + 1]; /* theirs, "" until known */
	uint8_t call_state;                    /* enum store_call_state */
	int32_t send_attempts;
	int32_t checks; /* status queries made */
	int64_t next_at_ms;
	int64_t deadline_ms;
	char result_code[STORE_RCODE_MAX + 1];
	char result_desc[STORE_RDESC_MAX + 1];
	char receipt[STORE_PREF_MAX + 1];
	uint8_t req_hash[32]; /* of the creating request (idempotency) */
	/* fees and commissions (docs/payments.md §13), fixed at creation:
	 * fee_minor (0: none) posted to fee_account_id (a fees_revenue
	 * account) with the success; commission_minor (<= fee_minor) of it
	 * to the bill's source agent float */
	int64_t fee_minor;
	int64_t fee_account_id;
	int64_t commission_minor;
	/* kind STORE_PROV_BILL: written by prov_create, read back by
	 * prov_get and prov_due (zero for other kinds).  For a bill
	 * clearing_account_id is the holding account and
	 * target_account_id the biller payable. */
	struct store_bill bill;
	/* an M-Pesa reversal (kind STORE_PROV_DISBURSE, docs/payments.md
	 * §M-Pesa reversal): the collection it reverses (written by
	 * prov_create), its ref and receipt (read back by prov_get and
	 * prov_due); 0 and "" otherwise */
	int64_t reverses_id;
	char reverses_ref[PAYMENT_REF_MAX + 1];
	char reverses_receipt[STORE_PREF_MAX + 1];
	/* what the customer must do next (Paystack's send_otp, send_pin,
	 * open_url ...; Orange's open_url), its text and URL, or "" */
	char next_step[STORE_STEP_MAX + 1];
	char next_text[STORE_NTEXT_MAX + 1];
	char next_url[STORE_URL_MAX + 1];
	/* written by prov_create, pos_pay_create and a batch's prov_new
	 * when pos.type != 0 (the pos_payments row, same transaction); read
	 * back by pos_pay_get only (zero elsewhere) */
	struct store_pos_link pos;
	/* filled by every read: the terminal that started the payment
	 * (pos_payments) and its agent's code, "" when no terminal did, and
	 * the code of the terminal's merchant when the payment credits that
	 * merchant's account (a merchant terminal's COLLECT), else ""; a
	 * COLLECT's or CASH_OUT's success is counted against their limits
	 * (svc_prov_settle_req) */
	char pos_terminal[STORE_POS_ID_MAX + 1];
	char pos_agent[STORE_POS_ID_MAX + 1];
	char pos_merchant[STORE_POS_ID_MAX + 1];
};

/*
 * One change to a provider payment, applied atomically: the row must
 * still be in (from_state, expect_call) or nothing changes (CONFLICT).
 * to_state == from_state changes no state (no audit event, updated_ms
 * kept unless txn_id is set).  An illegal edge is FAIL, checked before
 * anything is written.  NULL strings leave their column as it is ("" sets
 * it empty); a provider_ref another payment of the provider has is
 * CONFLICT too (unique key).
 */
struct store_prov_resolution;

struct store_prov_update {
	int64_t payment_id;
	uint8_t from_state, to_state;
	const char *reason; /* audit event text when the state changes */
	uint8_t expect_call, call_state;
	int32_t send_attempts, checks;
	int64_t next_at_ms;
	const char *provider_ref;
	const char *result_code, *result_desc, *receipt;
	int64_t txn_id; /* ledger transaction to link, or 0 */
	/* the customer's next step (store_prov.next_*); NULL: unchanged */
	const char *next_step, *next_text, *next_url;
	/* a settlement by hand (docs/payments.md §Reconciliation): the
	 * record inserted in the same transaction as this change, or NULL */
	const struct store_prov_resolution *resolution;
};

/* ---- reconciliation (sql/NNN_reconciliation.sql): who settled an
 * unknown payment by hand, how and on what evidence ---- */
#define STORE_ACTOR_MAX    64
#define STORE_EVIDENCE_MAX 256

struct store_prov_resolution {
	int64_t payment_id;
	uint8_t outcome; /* PAY_SUCCEEDED or PAY_FAILED */
	char actor[STORE_ACTOR_MAX + 1];
	char evidence[STORE_EVIDENCE_MAX + 1];
	char provider_ref[STORE_PREF_MAX + 1]; /* from the evidence, or "" */
	char idem_key[LEDGER_KEY_MAX + 1];     /* of the resolving request */
	uint8_t req_hash[32];                  /* of its content */
	int64_t created_ms;
};

/* A callback that passed its authenticity check, and the verdict. */
struct store_prov_callback {
	const char *provider, *provider_ref;
	int64_t payment_id; /* 0 if it matched none */
	const char *verdict, *detail;
	int64_t received_ms;
};

/* Terminal visitor for terminal_list; return non-zero to stop. */
typedef int (*store_terminal_fn)(void *arg, const struct store_terminal *t);

/* Violation reporter for verify(): what is the invariant's name
 * ("unbalanced_txn", ...), detail a human-readable line. */
typedef void (*store_violation_fn)(void *arg, const char *what,
                                   const char *detail);
/* Row visitor for listings; return non-zero to stop. */
typedef int (*store_account_fn)(void *arg, const struct ledger_account *a);

struct store;

struct store_ops {
	const char *name; /* "sqlite" or "pg", for logs */

	/* Applies pending numbered migrations (sql/<backend>/NNN_*.sql),
	 * each in its own transaction.  from and to: version before, after. */
	enum store_rc (*migrate)(struct store *st, int *from, int *to);
	/* Cheap round trip proving the database answers. */
	enum store_rc (*ping)(struct store *st);

	/* Optional (NULL: not needed by the backend).  Groups the reads that
	 * follow, until read_end, in one read transaction: SQLite takes and
	 * drops a WAL read lock (two fcntl calls) per statement otherwise,
	 * which was a seventh of sokod's CPU while advice batches were
	 * looked up item by item.  Only with no transaction open, and with
	 * reads only in between; read_end always ends it (failures are
	 * ignored: nothing was written).  A failed read_begin leaves
	 * nothing open and the reads run one by one, as without it. */
	enum store_rc (*read_begin)(struct store *st);
	void (*read_end)(struct store *st);

	/* ---- ledger batch: begin (the write lock), reads, write, commit ---- */
	enum store_rc (*begin)(struct store *st);
	enum store_rc (*commit)(struct store *st);
	void (*rollback)(struct store *st); /* no-op without a transaction */

	/* Looks up keys[0..n) (sorted, unique); out[i].key[0] == '\0' when
	 * keys[i] is new. */
	enum store_rc (*idem_get)(struct store *st, const char *const *keys,
	                          size_t n, struct store_idem *out);
	/* Loads accounts ids[0..n) (sorted ascending, unique), out[i] for
	 * ids[i]; out[i].id == 0 when ids[i] does not exist. */
	enum store_rc (*accounts_load)(struct store *st, const int64_t *ids,
	                               size_t n, struct ledger_account *out);
	/* Loads usage rows for keys[0..n) (sorted by store_usage_cmp,
	 * unique): fills amount_minor and count of each, zero for a row that
	 * does not exist yet (batch_write's upsert creates it). */
	enum store_rc (*usage_load)(struct store *st, struct store_usage *keys,
	                            size_t n);
	/* Loads the transaction a reversal targets (NOT_FOUND if none). */
	enum store_rc (*txn_info)(struct store *st, int64_t id,
	                          struct store_txn_info *out);
	/* Reserves n new transaction ids, ascending, into out. */
	enum store_rc (*txn_ids)(struct store *st, size_t n, int64_t *out);
	/* Writes a decided batch. CONFLICT if an idempotency key or a
	 * reversal target was taken concurrently (the caller rolls back
	 * and retries the batch). */
	enum store_rc (*batch_write)(struct store *st,
	                             const struct store_batch *b);

	/* ---- reference data and reads (own transaction each) ---- */
	/* CONFLICT if a->code exists.  Sets a->id. */
	enum store_rc (*account_create)(struct store *st,
	                                struct ledger_account *a);
	enum store_rc (*account_by_code)(struct store *st, const char *code,
	                                 struct ledger_account *out);
	enum store_rc (*account_by_id)(struct store *st, int64_t id,
	                               struct ledger_account *out);
	enum store_rc (*account_list)(struct store *st, store_account_fn fn,
	                              void *arg);
	/* The idempotency record of one key (outside a batch). */
	enum store_rc (*idem_lookup)(struct store *st, const char *key,
	                             struct store_idem *out);
	/* Deletes idempotency records created before before_ms. */
	enum store_rc (*idem_purge)(struct store *st, int64_t before_ms,
	                            int64_t *n_deleted);
	/* Replaces the rule for (kind, subject, currency). */
	enum store_rc (*limit_set)(struct store *st,
	                           const struct ledger_limit_rule *r);
	/* All rules into a malloc'd array the caller frees. */
	enum store_rc (*limit_list)(struct store *st,
	                            struct ledger_limit_rule **out, size_t *n);

	/* ---- POS provisioning (own transaction each) ---- */
	/* CONFLICT if a->code exists; FAIL if float_account_id does not.
	 * Sets a->id. */
	enum store_rc (*agent_create)(struct store *st, struct store_agent *a);
	enum store_rc (*agent_get)(struct store *st, const char *code,
	                           struct store_agent *out);
	/* NOT_FOUND if there is no such agent.  A blocked agent's
	 * terminals are refused at login and transfers to it are refused
	 * (UNKNOWN_AGENT) by every sokod within its agent cache's second. */
	enum store_rc (*agent_set_status)(struct store *st, const char *code,
	                                  uint8_t status);
	/* CONFLICT if m->code exists; FAIL if payable_account_id does not.
	 * Sets m->id. */
	enum store_rc (*merchant_create)(struct store *st,
	                                 struct store_merchant *m);
	enum store_rc (*merchant_get)(struct store *st, const char *code,
	                              struct store_merchant *out);
	/* Borrows t (t->agent, t->merchant ignored; t->merchant_id 0: none).
	 * CONFLICT if t->id exists. */
	enum store_rc (*terminal_create)(struct store *st,
	                                 const struct store_terminal *t);
	/* The terminal, its agent and merchant; NOT_FOUND leaves *out
	 * untouched. */
	enum store_rc (*terminal_get)(struct store *st, const char *id,
	                              struct store_terminal *out);
	/* NOT_FOUND if there is no such terminal. */
	enum store_rc (*terminal_set_status)(struct store *st, const char *id,
	                                     uint8_t status);
	/* A new wrapped key (STORE_KEY_WRAPPED_LEN bytes) for the terminal:
	 * its next LOGIN must prove the new K_t.  NOT_FOUND if no such
	 * terminal. */
	enum store_rc (*terminal_set_key)(struct store *st, const char *id,
	                                  const uint8_t *key_wrapped);
	/* Every terminal with its agent, by id. */
	enum store_rc (*terminal_list)(struct store *st, store_terminal_fn fn,
	                               void *arg);
	/* /rpc partner keys.  create: CONFLICT if the name or the hash
	 * exists, sets k->id.  get: by hash, revoked ones too; NOT_FOUND
	 * leaves *out untouched.  revoke: NOT_FOUND if no such name.  list:
	 * every key by name (key_hash left zero). */
	enum store_rc (*rpc_key_create)(struct store *st,
	                                struct store_rpc_key *k);
	enum store_rc (*rpc_key_get)(struct store *st, const uint8_t *key_hash,
	                             struct store_rpc_key *out);
	enum store_rc (*rpc_key_revoke)(struct store *st, const char *name);
	enum store_rc (*rpc_key_list)(struct store *st, store_rpc_key_fn fn,
	                              void *arg);

	/* ---- POS transactions (rows written by batch_write only) ---- */
	/* The row of (terminal_id, txn_id) with reversed_by/reversed_ms;
	 * NOT_FOUND leaves *out untouched. */
	enum store_rc (*pos_txn_get)(struct store *st, const char *terminal_id,
	                             const uint8_t *txn_id,
	                             struct store_pos_txn *out);
	/* Count and sum per (type, currency) of the terminal's approved
	 * (rc OK), not reversed transactions of closed batch batch_no, and
	 * of its POS provider payments (pos_payments) of that batch whose
	 * payment succeeded, or came as an advice and is funded (pending,
	 * unknown or succeeded), by the payment's amount; ordered by type
	 * then currency, at most cap lines into out (*n: lines found, may
	 * exceed cap).  Indexed by (terminal_id, batch_no). */
	enum store_rc (*pos_totals)(struct store *st, const char *terminal_id,
	                            int64_t batch_no, struct store_pos_total *out,
	                            size_t cap, size_t *n);
	/* Closes batch_no of a terminal, idempotently: the first call
	 * records it (closed_ms = now_ms) and puts every open row of the
	 * terminal (pos_txns and pos_payments, batch_no NULL) in it, in one
	 * transaction; a repeat
	 * changes nothing, sets *is_repeat and returns the first closed_ms. */
	enum store_rc (*pos_batch_close)(struct store *st,
	                                 const char *terminal_id,
	                                 int64_t batch_no, int64_t now_ms,
	                                 int64_t *closed_ms, bool *is_repeat);

	/* ---- payments: state machine with audit trail ---- */
	/* Inserts p in PAY_CREATED with its first audit event.  Sets p->id.
	 * CONFLICT if p->ref exists. */
	enum store_rc (*payment_create)(struct store *st, struct payment *p);
	/* Moves payment id from `from` to `to` and appends the audit event,
	 * atomically.  CONFLICT if its state is not `from`; FAIL for an
	 * illegal edge (also refused by the database itself). */
	enum store_rc (*payment_transition)(struct store *st, int64_t id,
	                                    uint8_t from, uint8_t to,
	                                    const char *reason, int64_t now_ms);
	enum store_rc (*payment_get)(struct store *st, int64_t id,
	                             struct payment *out);
	/* Audit trail of a payment, oldest first, up to cap events. */
	enum store_rc (*payment_events)(struct store *st, int64_t id,
	                                struct payment_event *out, size_t cap,
	                                size_t *n);

	/* ---- payments through providers ---- */
	/* Inserts the payment (created, with its audit event; linked to
	 * p->pay.txn_id when not 0) and its provider row, atomically; sets
	 * p->pay.id.  CONFLICT when
	 * p->pay.ref exists: *p is then the stored row (compare req_hash).
	 * FAIL (nothing written, p->pay.id 0) when another payment has
	 * (provider, client_ref) or the non-empty (provider, provider_ref),
	 * or ref is a payment without a provider row.  A STORE_PROV_BILL
	 * payment gets its bill_payments row (p->bill) in the same
	 * transaction. */
	enum store_rc (*prov_create)(struct store *st, struct store_prov *p);
	/* By payment ref when ref != NULL, else by (provider, provider_ref),
	 * else by (provider, client_ref) when provider_ref is NULL. */
	enum store_rc (*prov_get)(struct store *st, const char *ref,
	                          const char *provider, const char *provider_ref,
	                          const char *client_ref, struct store_prov *out);
	/* Claims up to cap rows not done whose next_at_ms <= now_ms: moves
	 * their next_at_ms to now_ms + lease_ms (so no other instance takes
	 * them meanwhile) and returns them as claimed (next_at_ms = now_ms +
	 * lease_ms), oldest due first (by next_at_ms, then payment id).
	 * Committed before it returns.  PostgreSQL: rows another instance
	 * is claiming are skipped, never waited for. */
	enum store_rc (*prov_due)(struct store *st, int64_t now_ms,
	                          int64_t lease_ms, struct store_prov *out,
	                          size_t cap, size_t *n);
	/* Applies u in its own transaction (store_prov_update);
	 * NOT_FOUND if there is no such provider payment. */
	enum store_rc (*prov_update)(struct store *st,
	                             const struct store_prov_update *u,
	                             int64_t now_ms);
	enum store_rc (*prov_callback_add)(struct store *st,
	                                   const struct store_prov_callback *c);
	/* Counts callbacks of (provider, provider_ref) with verdict. */
	enum store_rc (*prov_callback_count)(struct store *st,
	                                     const char *provider,
	                                     const char *provider_ref,
	                                     const char *verdict, int64_t *n);
	/* Up to cap provider payments in state unknown with payment id >
	 * after_id, by id (a page: pass the last id to get the next); *n
	 * rows written. */
	enum store_rc (*prov_unknown)(struct store *st, int64_t after_id,
	                              struct store_prov *out, size_t cap,
	                              size_t *n);
	/* The resolution of payment_id (written by prov_update or
	 * batch_write with store_prov_update.resolution); NOT_FOUND if it
	 * was never settled by hand. */
	enum store_rc (*prov_resolution_get)(struct store *st,
	                                     int64_t payment_id,
	                                     struct store_prov_resolution *out);

	/* ---- provider payments started by a POS terminal
	 * (sql/NNN_pos_payments.sql, docs/pos-protocol.md §12) ---- */
	/* As prov_create, with the pos_payments row of l in the same
	 * transaction: CONFLICT (p filled with the stored payment) when
	 * p->pay.ref exists. */
	enum store_rc (*pos_pay_create)(struct store *st, struct store_prov *p,
	                                const struct store_pos_link *l);
	/* The payment of (terminal_id, txn_id) and its link; NOT_FOUND. */
	enum store_rc (*pos_pay_get)(struct store *st, const char *terminal_id,
	                             const uint8_t *txn_id,
	                             struct store_prov *out,
	                             struct store_pos_link *link);
	/* The terminal's payments in a final state (succeeded, failed,
	 * reversed) whose result it has not acknowledged, oldest first, at
	 * most cap (*n). */
	enum store_rc (*pos_pay_results)(struct store *st,
	                                 const char *terminal_id,
	                                 struct store_prov *out,
	                                 struct store_pos_link *links,
	                                 size_t cap, size_t *n);
	/* Marks the result of (terminal_id, txn_id) acknowledged, if its
	 * payment is final and it was not yet; OK whether or not a row
	 * changed. */
	enum store_rc (*pos_pay_ack)(struct store *st, const char *terminal_id,
	                             const uint8_t *txn_id, int64_t now_ms);

	/* ---- invariants ---- */
	/* Checks every ledger invariant (docs/architecture.md §Invariants)
	 * and reports each violation; *n_violations counts them. */
	enum store_rc (*verify)(struct store *st, store_violation_fn fn,
	                        void *arg, size_t *n_violations);

	void (*close)(struct store *st); /* NULL-safe; frees st */
};

struct store {
	const struct store_ops *ops; /* first member, like sqlite3_file */
	char errstr[256];            /* reason of the last STORE_FAIL/RETRY */
};

/* Opens (creating if missing) an SQLite database file, WAL,
 * synchronous=FULL.  Returns NULL with a reason in err. */
struct store *store_sqlite_open(const char *path, char *err, size_t errlen);
/* Connects to PostgreSQL (libpq conninfo or URI; "" uses PG* variables)
 * and sets synchronous_commit=on.  Returns NULL with a reason in err. */
struct store *store_pg_open(const char *conninfo, char *err, size_t errlen);
/* Opens by URL: "sqlite:PATH" or "postgresql://..." / "pg:CONNINFO". */
struct store *store_open(const char *url, char *err, size_t errlen);

static inline void
store_close(struct store *st)
{
	if (st != NULL)
		st->ops->close(st);
}

/* Order of usage keys (kind, subject, currency, window, bucket). */
int store_usage_cmp(const void *a, const void *b);
const char *store_rc_name(enum store_rc rc);
/* "active" / "blocked", and back (0 if neither). */
const char *store_pos_status_name(uint8_t status);
uint8_t store_pos_status_parse(const char *s);

/* Embedded migrations (generated from sql/ at build time). */
struct store_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct store_migration store_migrations_sqlite[];
extern const struct store_migration store_migrations_pg[];

#endif
