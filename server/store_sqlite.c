/*
 * store_sqlite.c - the embedded storage backend (store.h) on SQLite.
 *
 * WAL journal, synchronous=FULL: COMMIT returns only after the WAL is
 * fsync'd, so an acknowledgement sent after commit() survives power loss.
 * One connection per handle; prepared statements are cached for the hot
 * batch path.  BEGIN IMMEDIATE takes the write lock at the start, so the
 * reads of a batch cannot go stale under another writer (sokoctl).
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store_int.h"
#include "util.h"

enum stmt_id {
	S_BEGIN,
	S_COMMIT,
	S_ROLLBACK,
	S_READ_BEGIN,
	S_IDEM_GET,
	S_ACCT_GET,
	S_USAGE_GET,
	S_TXN_GET,
	S_TXN_REVERSED_BY,
	S_TXN_LEGS,
	S_TXN_MAX,
	S_INS_TXN,
	S_INS_POSTING,
	S_UPD_BALANCE,
	S_UPSERT_USAGE,
	S_INS_IDEM,
	S_ACCT_BY_CODE,
	S_ACCT_INSERT,
	S_ACCT_LIST,
	S_IDEM_PURGE,
	S_LIMIT_SET,
	S_LIMIT_LIST,
	S_PAY_INSERT,
	S_PAY_EVENT,
	S_PAY_UPDATE,
	S_PAY_GET,
	S_PAY_EVENTS,
	S_AGENT_INSERT,
	S_AGENT_GET,
	S_AGENT_STATUS,
	S_TERM_INSERT,
	S_TERM_GET,
	S_MERCHANT_INSERT,
	S_MERCHANT_GET,
	S_RPC_KEY_INSERT,
	S_RPC_KEY_GET,
	S_RPC_KEY_REVOKE,
	S_RPC_KEY_LIST,
	S_TERM_STATUS,
	S_TERM_KEY,
	S_TERM_LIST,
	S_POS_INSERT,
	S_POS_GET,
	S_POS_TOTALS,
	S_BATCH_GET,
	S_BATCH_INSERT,
	S_BATCH_MOVE,
	S_OPEN_CLEAR,
	S_BATCH_STAMP_PAY,
	S_OPEN_ADD,
	S_POS_BY_LEDGER,
	S_OPEN_SUB,
	S_CLOSED_SUB,
	S_PROV_INSERT,
	S_PROV_BY_REF,
	S_PROV_BY_PREF,
	S_PROV_BY_CREF,
	S_PROV_BY_ID,
	S_PROV_DUE,
	S_PROV_LEASE,
	S_PROV_UPDATE,
	S_PROV_NEXT,
	S_PAY_SET_TXN,
	S_PROV_CB_INSERT,
	S_PROV_CB_COUNT,
	S_BILL_INSERT,
	S_RES_INSERT,
	S_RES_GET,
	S_PROV_UNKNOWN,
	S_POS_PAY_INSERT,
	S_POS_PAY_LINK,
	S_POS_PAY_OPEN,
	S_POS_PAY_ACK,
	S_COUNT
};

#define SQ_PROV_COLS                                                         \
	"p.id, p.ref, p.state, p.currency, p.amount_minor, "                 \
	"COALESCE(p.txn_id, 0), p.created_ms, p.updated_ms, v.kind, "        \
	"v.provider, v.msisdn, v.clearing_account_id, v.target_account_id, " \
	"v.client_ref, v.provider_ref, v.call_state, v.send_attempts, "      \
	"v.checks, v.next_at_ms, v.deadline_ms, v.result_code, "             \
	"v.result_desc, v.receipt, v.req_hash, "                             \
	"COALESCE(v.hold_account_id, 0), "                                   \
	"b.source_account_id, b.biller_code, b.item_code, b.customer, "     \
	"b.customer_name, v.fee_minor, COALESCE(v.fee_account_id, 0), "     \
	"v.commission_minor, COALESCE(v.reverses_payment_id, 0), rp.ref, "  \
	"rv.receipt, v.next_step, v.next_text, v.next_url, pp.terminal_id, " \
	"pa.code, pm.code "                                                  \
	"FROM payments p JOIN prov_payments v ON v.payment_id = p.id "       \
	"LEFT JOIN bill_payments b ON b.payment_id = p.id "                  \
	"LEFT JOIN payments rp ON rp.id = v.reverses_payment_id "            \
	"LEFT JOIN prov_payments rv ON rv.payment_id = v.reverses_payment_id " \
	"LEFT JOIN pos_payments pp ON pp.payment_id = p.id "                 \
	"LEFT JOIN terminals pt ON pt.id = pp.terminal_id "                  \
	"LEFT JOIN agents pa ON pa.id = pt.agent_id "                        \
	"LEFT JOIN merchants pm ON pm.id = pt.merchant_id "                  \
	"AND pm.payable_account_id = v.target_account_id "

#define SQ_AGENT_COLS                                                        \
	"a.id, a.code, a.float_account_id, a.status, a.created_ms"
#define SQ_MERCHANT_COLS                                                     \
	"m.id, m.code, m.payable_account_id, m.created_ms"
/* a terminal's merchant columns are NULL (0, "") when it has none */
#define SQ_TERM_COLS                                                         \
	"t.id, t.agent_id, t.key_wrapped, t.status, t.created_ms, "          \
	SQ_AGENT_COLS ", " SQ_MERCHANT_COLS
#define SQ_TERM_FROM                                                         \
	" FROM terminals t JOIN agents a ON a.id = t.agent_id "              \
	"LEFT JOIN merchants m ON m.id = t.merchant_id "

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_READ_BEGIN] = "BEGIN DEFERRED",
	[S_IDEM_GET] = "SELECT hash, rc, txn_id, created_ms FROM idem "
	               "WHERE key = ?1",
	[S_ACCT_GET] = "SELECT id, code, type, currency, balance_minor, "
	               "has_floor, floor_minor, is_closed, created_ms "
	               "FROM accounts WHERE id = ?1",
	[S_USAGE_GET] = "SELECT amount_minor, count FROM limit_usage WHERE "
	                "subject_kind = ?1 AND subject = ?2 AND currency = ?3 "
	                "AND window_s = ?4 AND bucket = ?5",
	[S_TXN_GET] = "SELECT kind, currency FROM txns WHERE id = ?1",
	[S_TXN_REVERSED_BY] = "SELECT id FROM txns WHERE reverses_txn_id = ?1",
	[S_TXN_LEGS] = "SELECT account_id, amount_minor FROM postings "
	               "WHERE txn_id = ?1 ORDER BY leg",
	[S_TXN_MAX] = "SELECT COALESCE(MAX(id), 0) FROM txns",
	[S_INS_TXN] = "INSERT INTO txns (id, kind, currency, amount_minor, "
	              "reverses_txn_id, idem_key, memo, created_ms) "
	              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_INS_POSTING] = "INSERT INTO postings (txn_id, leg, account_id, "
	                  "amount_minor, currency) VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_UPD_BALANCE] = "UPDATE accounts SET balance_minor = balance_minor "
	                  "+ ?1 WHERE id = ?2",
	[S_UPSERT_USAGE] =
		"INSERT INTO limit_usage (subject_kind, subject, currency, "
		"window_s, bucket, amount_minor, count) VALUES (?1, ?2, ?3, "
		"?4, ?5, ?6, ?7) ON CONFLICT DO UPDATE SET amount_minor = "
		"amount_minor + excluded.amount_minor, count = count + "
		"excluded.count",
	[S_INS_IDEM] = "INSERT INTO idem (key, hash, rc, txn_id, created_ms) "
	               "VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_ACCT_BY_CODE] = "SELECT id, code, type, currency, balance_minor, "
	                   "has_floor, floor_minor, is_closed, created_ms "
	                   "FROM accounts WHERE code = ?1",
	[S_ACCT_INSERT] = "INSERT INTO accounts (code, type, currency, "
	                  "has_floor, floor_minor, is_closed, created_ms) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[S_ACCT_LIST] = "SELECT id, code, type, currency, balance_minor, "
	                "has_floor, floor_minor, is_closed, created_ms "
	                "FROM accounts ORDER BY id",
	[S_IDEM_PURGE] = "DELETE FROM idem WHERE created_ms < ?1",
	[S_LIMIT_SET] = "INSERT OR REPLACE INTO limit_rules (subject_kind, "
	                "subject, currency, per_txn_max, daily_max, "
	                "velocity_max, velocity_window_s) VALUES (?1, ?2, ?3, "
	                "?4, ?5, ?6, ?7)",
	[S_LIMIT_LIST] = "SELECT subject_kind, subject, currency, per_txn_max, "
	                 "daily_max, velocity_max, velocity_window_s "
	                 "FROM limit_rules",
	[S_PAY_INSERT] = "INSERT INTO payments (ref, state, currency, "
	                 "amount_minor, txn_id, created_ms, updated_ms) "
	                 "VALUES (?1, 1, ?2, ?3, NULLIF(?4, 0), ?5, ?5)",
	[S_PAY_EVENT] = "INSERT INTO payment_events (payment_id, from_state, "
	                "to_state, reason, at_ms) VALUES (?1, NULLIF(?2, 0), "
	                "?3, ?4, ?5)",
	[S_PAY_UPDATE] = "UPDATE payments SET state = ?3, updated_ms = ?4 "
	                 "WHERE id = ?1 AND state = ?2",
	[S_PAY_GET] = "SELECT id, ref, state, currency, amount_minor, "
	              "COALESCE(txn_id, 0), created_ms, updated_ms "
	              "FROM payments WHERE id = ?1",
	[S_PAY_EVENTS] = "SELECT COALESCE(from_state, 0), to_state, reason, "
	                 "at_ms FROM payment_events WHERE payment_id = ?1 "
	                 "ORDER BY id",
	[S_AGENT_INSERT] = "INSERT INTO agents (code, float_account_id, "
	                   "status, created_ms) VALUES (?1, ?2, ?3, ?4)",
	[S_AGENT_STATUS] = "UPDATE agents SET status = ?2 WHERE code = ?1",
	[S_AGENT_GET] = "SELECT " SQ_AGENT_COLS " FROM agents a "
	                "WHERE a.code = ?1",
	[S_TERM_INSERT] = "INSERT INTO terminals (id, agent_id, key_wrapped, "
	                  "status, created_ms, merchant_id) "
	                  "VALUES (?1, ?2, ?3, ?4, ?5, NULLIF(?6, 0))",
	[S_TERM_GET] = "SELECT " SQ_TERM_COLS SQ_TERM_FROM "WHERE t.id = ?1",
	[S_MERCHANT_INSERT] = "INSERT INTO merchants (code, "
	                      "payable_account_id, created_ms) "
	                      "VALUES (?1, ?2, ?3)",
	[S_MERCHANT_GET] = "SELECT " SQ_MERCHANT_COLS " FROM merchants m "
	                   "WHERE m.code = ?1",
	[S_RPC_KEY_INSERT] = "INSERT INTO rpc_keys (name, key_hash, "
	                     "scope_kind, scope, created_ms) "
	                     "VALUES (?1, ?2, ?3, ?4, ?5)",
	[S_RPC_KEY_GET] = "SELECT id, name, scope_kind, scope, status, "
	                  "created_ms FROM rpc_keys WHERE key_hash = ?1",
	[S_RPC_KEY_REVOKE] = "UPDATE rpc_keys SET status = 1 WHERE name = ?1",
	[S_RPC_KEY_LIST] = "SELECT id, name, scope_kind, scope, status, "
	                   "created_ms FROM rpc_keys ORDER BY name",
	[S_TERM_STATUS] = "UPDATE terminals SET status = ?2 WHERE id = ?1",
	[S_TERM_KEY] = "UPDATE terminals SET key_wrapped = ?2 WHERE id = ?1",
	[S_TERM_LIST] = "SELECT " SQ_TERM_COLS SQ_TERM_FROM "ORDER BY t.id",
	[S_POS_INSERT] = "INSERT INTO pos_txns (terminal_id, txn_id, type, "
	                 "is_advice, currency, amount_minor, counterparty, "
	                 "local_time_ms, rc, ledger_txn_id, created_ms) VALUES "
	                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULLIF(?10, 0), "
	                 "?11)",
	[S_POS_GET] = "SELECT p.type, p.is_advice, p.currency, p.amount_minor, "
	              "p.counterparty, p.local_time_ms, p.rc, "
	              "COALESCE(p.ledger_txn_id, 0), p.created_ms, "
	              "COALESCE(r.id, 0), COALESCE(r.created_ms, 0) "
	              "FROM pos_txns p LEFT JOIN txns r "
	              "ON r.reverses_txn_id = p.ledger_txn_id "
	              "WHERE p.terminal_id = ?1 AND p.txn_id = ?2",
	/* float transfers approved and not reversed (running totals,
	 * sql/sqlite/014_pos_running_totals.sql); provider-backed payments
	 * succeeded, or advised and funded (not failed) */
	[S_POS_TOTALS] = "SELECT t, c, sum(n), sum(a) FROM ("
	                 "SELECT type AS t, currency AS c, count AS n, "
	                 "sum_minor AS a FROM pos_batch_totals "
	                 "WHERE terminal_id = ?1 AND batch_no = ?2 "
	                 "UNION ALL "
	                 "SELECT x.type, y.currency, 1, y.amount_minor FROM "
	                 "pos_payments x JOIN payments y ON y.id = "
	                 "x.payment_id WHERE x.terminal_id = ?1 AND "
	                 "x.batch_no = ?2 AND (y.state = 3 OR (x.is_advice "
	                 "= 1 AND y.state IN (2, 6)))) "
	                 "GROUP BY t, c HAVING sum(n) > 0 ORDER BY t, c",
	[S_BATCH_GET] = "SELECT closed_ms FROM pos_batches "
	                "WHERE terminal_id = ?1 AND batch_no = ?2",
	/* upto_txn_id: what the batch holds (014); one writer, ids grow */
	[S_BATCH_INSERT] = "INSERT INTO pos_batches (terminal_id, batch_no, "
	                   "closed_ms, upto_txn_id) VALUES (?1, ?2, ?3, "
	                   "(SELECT COALESCE(MAX(id), 0) FROM txns))",
	[S_BATCH_MOVE] = "INSERT INTO pos_batch_totals (terminal_id, "
	                 "batch_no, type, currency, count, sum_minor) "
	                 "SELECT terminal_id, ?2, type, currency, count, "
	                 "sum_minor FROM pos_open_totals "
	                 "WHERE terminal_id = ?1 AND count > 0",
	/* zeroed, not deleted: the rows stay where the next commits add */
	[S_OPEN_CLEAR] = "UPDATE pos_open_totals SET count = 0, sum_minor = 0 "
	                 "WHERE terminal_id = ?1 AND count <> 0",
	[S_BATCH_STAMP_PAY] = "UPDATE pos_payments SET batch_no = ?2 "
	                      "WHERE terminal_id = ?1 AND batch_no IS NULL",
	[S_OPEN_ADD] = "INSERT INTO pos_open_totals (terminal_id, type, "
	               "currency, count, sum_minor) VALUES (?1, ?2, ?3, 1, ?4) "
	               "ON CONFLICT (terminal_id, type, currency) DO UPDATE "
	               "SET count = count + 1, "
	               "sum_minor = sum_minor + excluded.sum_minor",
	/* a reversed transaction's POS row and the batch it is in (NULL:
	 * the open one) */
	[S_POS_BY_LEDGER] = "SELECT p.terminal_id, p.type, p.currency, "
	                    "p.amount_minor, (SELECT b.batch_no FROM "
	                    "pos_batches b WHERE b.terminal_id = "
	                    "p.terminal_id AND b.upto_txn_id >= "
	                    "p.ledger_txn_id ORDER BY b.upto_txn_id, "
	                    "b.closed_ms LIMIT 1) FROM pos_txns p "
	                    "WHERE p.ledger_txn_id = ?1 AND p.rc = 0",
	[S_OPEN_SUB] = "UPDATE pos_open_totals SET count = count - 1, "
	               "sum_minor = sum_minor - ?4 WHERE terminal_id = ?1 "
	               "AND type = ?2 AND currency = ?3",
	[S_CLOSED_SUB] = "UPDATE pos_batch_totals SET count = count - 1, "
	                 "sum_minor = sum_minor - ?4 WHERE terminal_id = ?1 "
	                 "AND type = ?2 AND currency = ?3 AND batch_no = ?5",
	[S_PROV_INSERT] = "INSERT INTO prov_payments (payment_id, kind, "
	                  "provider, msisdn, clearing_account_id, "
	                  "target_account_id, client_ref, provider_ref, "
	                  "call_state, send_attempts, checks, next_at_ms, "
	                  "deadline_ms, req_hash, hold_account_id, fee_minor, "
	                  "fee_account_id, commission_minor, "
	                  "reverses_payment_id) VALUES (?1, ?2, ?3, ?4, ?5, "
	                  "?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, "
	                  "NULLIF(?15, 0), ?16, NULLIF(?17, 0), ?18, "
	                  "NULLIF(?19, 0))",
	[S_BILL_INSERT] = "INSERT INTO bill_payments (payment_id, "
	                  "source_account_id, biller_code, item_code, customer, "
	                  "customer_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[S_POS_PAY_INSERT] = "INSERT INTO pos_payments (payment_id, "
	                     "terminal_id, txn_id, type, acked_ms, is_advice) "
	                     "VALUES (?1, ?2, ?3, ?4, NULLIF(?5, 0), ?6)",
	[S_POS_PAY_LINK] = "SELECT payment_id, type, COALESCE(acked_ms, 0), "
	                   "is_advice FROM pos_payments WHERE terminal_id = ?1 AND "
	                   "txn_id = ?2",
	[S_POS_PAY_OPEN] = "SELECT x.payment_id, x.txn_id, x.type FROM "
	                   "pos_payments x JOIN payments p ON p.id = "
	                   "x.payment_id WHERE x.terminal_id = ?1 AND "
	                   "x.acked_ms IS NULL AND p.state IN (3, 4, 5) "
	                   "ORDER BY x.payment_id LIMIT ?2",
	[S_POS_PAY_ACK] = "UPDATE pos_payments SET acked_ms = ?3 WHERE "
	                  "terminal_id = ?1 AND txn_id = ?2 AND acked_ms IS "
	                  "NULL AND payment_id IN (SELECT id FROM payments "
	                  "WHERE state IN (3, 4, 5))",
	[S_PROV_BY_REF] = "SELECT " SQ_PROV_COLS "WHERE p.ref = ?1",
	[S_PROV_BY_PREF] = "SELECT " SQ_PROV_COLS
	                   "WHERE v.provider = ?1 AND v.provider_ref = ?2 "
	                   "AND v.provider_ref <> ''",
	[S_PROV_BY_CREF] = "SELECT " SQ_PROV_COLS
	                   "WHERE v.provider = ?1 AND v.client_ref = ?2",
	[S_PROV_BY_ID] = "SELECT " SQ_PROV_COLS "WHERE p.id = ?1",
	[S_PROV_DUE] = "SELECT " SQ_PROV_COLS
	               "WHERE v.call_state < 4 AND v.next_at_ms <= ?1 "
	               "ORDER BY v.next_at_ms, v.payment_id LIMIT ?2",
	[S_PROV_LEASE] = "UPDATE prov_payments SET next_at_ms = ?2 "
	                 "WHERE payment_id = ?1",
	[S_PROV_NEXT] = "UPDATE prov_payments SET "
	                "next_step = COALESCE(?2, next_step), "
	                "next_text = COALESCE(?3, next_text), "
	                "next_url = COALESCE(?4, next_url) "
	                "WHERE payment_id = ?1",
	[S_PROV_UPDATE] = "UPDATE prov_payments SET call_state = ?3, "
	                  "send_attempts = ?4, checks = ?5, next_at_ms = ?6, "
	                  "provider_ref = COALESCE(?7, provider_ref), "
	                  "result_code = COALESCE(?8, result_code), "
	                  "result_desc = COALESCE(?9, result_desc), "
	                  "receipt = COALESCE(?10, receipt) "
	                  "WHERE payment_id = ?1 AND call_state = ?2 AND "
	                  "(SELECT state FROM payments WHERE id = ?1) = ?11",
	[S_PAY_SET_TXN] = "UPDATE payments SET txn_id = ?2, updated_ms = ?3 "
	                  "WHERE id = ?1",
	[S_PROV_CB_INSERT] = "INSERT INTO prov_callbacks (provider, "
	                     "provider_ref, payment_id, verdict, detail, "
	                     "received_ms) VALUES (?1, ?2, NULLIF(?3, 0), ?4, "
	                     "?5, ?6)",
	[S_PROV_CB_COUNT] = "SELECT COUNT(*) FROM prov_callbacks WHERE "
	                    "provider = ?1 AND provider_ref = ?2 AND "
	                    "verdict = ?3",
	[S_RES_INSERT] = "INSERT INTO prov_resolutions (payment_id, outcome, "
	                 "actor, evidence, provider_ref, idem_key, req_hash, "
	                 "created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[S_RES_GET] = "SELECT outcome, actor, evidence, provider_ref, "
	              "idem_key, req_hash, created_ms FROM prov_resolutions "
	              "WHERE payment_id = ?1",
	/* state = 6 literally: the partial index payments_unknown */
	[S_PROV_UNKNOWN] = "SELECT " SQ_PROV_COLS
	                   "WHERE p.state = 6 AND p.id > ?1 "
	                   "ORDER BY p.id LIMIT ?2",
};

/* Rows per multi-row INSERT on the batch path: one statement step per
 * MR_ROWS rows instead of one per row (bench/ledger_bench.c measured the
 * batch write about 35% cheaper).  Same rows, constraints, triggers and
 * foreign key checks; a failing row aborts its statement, and the ledger
 * rolls the whole transaction back as before. */
#define MR_ROWS 64

enum mr_id { MR_TXN, MR_POSTING, MR_IDEM, MR_BALANCE, MR_COUNT };

/*
 * Account cache of the batch path.  SQLite has one writer, so between two
 * of its own transactions only another connection (sokoctl) can change an
 * account; PRAGMA data_version tells exactly that, and then the whole
 * cache is dropped.  The cache follows this connection's own balance
 * updates, and is dropped on every rollback.  Direct-mapped on the id:
 * bounded memory, a collision only costs a reload.
 */
#define ACCT_CACHE_SLOTS 65536 /* power of two */

struct acct_slot {
	uint32_t gen; /* valid when == store_sqlite.cache_gen */
	struct ledger_account a;
};

struct store_sqlite {
	struct store base; /* first */
	sqlite3 *db;
	struct acct_slot *cache; /* ACCT_CACHE_SLOTS, allocated on first use */
	uint32_t cache_gen;      /* bumped to drop every slot */
	int64_t data_version;    /* of the last batch; -1 unknown */
	sqlite3_stmt *data_version_stmt;
	sqlite3_stmt *stmt[S_COUNT];
	sqlite3_stmt *mr[MR_COUNT]; /* MR_ROWS-row INSERTs, prepared lazily */
};

#define SQ(st) ((struct store_sqlite *)(st))

enum store_rc
store_fail(struct store *st, enum store_rc rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->errstr, sizeof st->errstr, fmt, ap);
	va_end(ap);
	return rc;
}

/* Maps an SQLite result to a store_rc, keeping the reason. */
static enum store_rc
sq_err(struct store_sqlite *s, int rc, const char *what)
{
	int prim = rc & 0xff;

	if (prim == SQLITE_CONSTRAINT) {
		store_fail(&s->base, STORE_CONFLICT, "%s: %s", what,
		           sqlite3_errmsg(s->db));
		/* only a duplicate key is a CONFLICT; a trigger's
		 * RAISE(ABORT), a CHECK, NOT NULL or foreign key is a
		 * refused write (as 23505 vs the rest on PostgreSQL) */
		return rc == SQLITE_CONSTRAINT_UNIQUE ||
		                       rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
		                       rc == SQLITE_CONSTRAINT_ROWID
		               ? STORE_CONFLICT
		               : STORE_FAIL;
	}
	return store_fail(&s->base,
	                  prim == SQLITE_BUSY || prim == SQLITE_LOCKED
	                          ? STORE_RETRY
	                          : STORE_FAIL,
	                  "%s: %s", what, sqlite3_errmsg(s->db));
}

/* The cached statement id, reset and with bindings cleared. */
static sqlite3_stmt *
stmt(struct store_sqlite *s, enum stmt_id id)
{
	sqlite3_stmt *q = s->stmt[id];

	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return q;
}

/* Column i as text, "" for NULL. */
static const char *
col_str(sqlite3_stmt *q, int i)
{
	const unsigned char *t = sqlite3_column_text(q, i);

	return t != NULL ? (const char *)t : "";
}

struct store_prov_update;
static enum store_rc prov_insert(struct store_sqlite *s, struct store_prov *p);
static enum store_rc prov_apply(struct store_sqlite *s,
                                const struct store_prov_update *u,
                                int64_t now_ms);

/* Steps a statement that returns no rows. */
static enum store_rc
run(struct store_sqlite *s, sqlite3_stmt *q, const char *what)
{
	int rc = sqlite3_step(q);

	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return sq_err(s, rc, what);
	return STORE_OK;
}

static enum store_rc
exec_sql(struct store_sqlite *s, const char *sql, const char *what)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);

	if (rc != SQLITE_OK) {
		enum store_rc r = store_fail(
			&s->base,
			(rc & 0xff) == SQLITE_BUSY ? STORE_RETRY : STORE_FAIL,
			"%s: %s", what, msg != NULL ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		return r;
	}
	return STORE_OK;
}

/* ------------------------------------------------------------ migrations */

static int
schema_version(struct store_sqlite *s)
{
	sqlite3_stmt *q = NULL;
	int v = -1;

	if (sqlite3_prepare_v2(s->db,
	                       "SELECT COALESCE(MAX(version), 0) "
	                       "FROM schema_version",
	                       -1, &q, NULL) == SQLITE_OK &&
	    sqlite3_step(q) == SQLITE_ROW)
		v = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return v;
}

static enum store_rc
sq_prepare_all(struct store_sqlite *s)
{
	int i;

	for (i = 0; i < S_COUNT; i++) {
		if (s->stmt[i] != NULL)
			continue;
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1,
		                       SQLITE_PREPARE_PERSISTENT, &s->stmt[i],
		                       NULL) != SQLITE_OK)
			return store_fail(&s->base, STORE_FAIL,
			                  "prepare %d: %s", i,
			                  sqlite3_errmsg(s->db));
	}
	if (s->data_version_stmt == NULL &&
	    sqlite3_prepare_v3(s->db, "PRAGMA data_version", -1,
	                       SQLITE_PREPARE_PERSISTENT, &s->data_version_stmt,
	                       NULL) != SQLITE_OK)
		return store_fail(&s->base, STORE_FAIL, "prepare data_version: %s",
		                  sqlite3_errmsg(s->db));
	return STORE_OK;
}

static enum store_rc
sq_migrate(struct store *st, int *from, int *to)
{
	struct store_sqlite *s = SQ(st);
	const struct store_migration *m;
	enum store_rc rc;
	int v;

	if ((rc = exec_sql(s,
	                   "CREATE TABLE IF NOT EXISTS schema_version ("
	                   "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
	                   "applied_ms INTEGER NOT NULL)",
	                   "schema_version")) != STORE_OK)
		return rc;
	v = schema_version(s);
	if (v < 0)
		return store_fail(st, STORE_FAIL, "cannot read schema_version");
	*from = v;
	for (m = store_migrations_sqlite; m->sql != NULL; m++) {
		char ins[256];

		if (m->version <= v)
			continue;
		if ((rc = exec_sql(s, "BEGIN IMMEDIATE", m->name)) != STORE_OK)
			return rc;
		/* another process may have applied it while we waited for
		 * the write lock */
		if ((v = schema_version(s)) < 0 || m->version <= v) {
			exec_sql(s, "ROLLBACK", m->name);
			if (v < 0)
				return store_fail(st, STORE_FAIL,
				                  "cannot read schema_version");
			continue;
		}
		snprintf(ins, sizeof ins,
		         "INSERT INTO schema_version VALUES (%d, '%s', %lld)",
		         m->version, m->name, (long long)util_now_ms());
		if ((rc = exec_sql(s, m->sql, m->name)) != STORE_OK ||
		    (rc = exec_sql(s, ins, m->name)) != STORE_OK ||
		    (rc = exec_sql(s, "COMMIT", m->name)) != STORE_OK) {
			exec_sql(s, "ROLLBACK", m->name);
			return rc;
		}
		v = m->version;
	}
	*to = v;
	return sq_prepare_all(s);
}

static enum store_rc
sq_ping(struct store *st)
{
	return exec_sql(SQ(st), "SELECT 1", "ping");
}

/* ----------------------------------------------------------- batch path */

static void
cache_drop(struct store_sqlite *s)
{
	if (++s->cache_gen == 0)
		s->cache_gen = 1; /* 0 marks never-filled slots */
}

static enum store_rc
sq_begin(struct store *st)
{
	struct store_sqlite *s = SQ(st);
	enum store_rc rc;
	int64_t v;

	if ((rc = run(s, stmt(s, S_BEGIN), "begin")) != STORE_OK)
		return rc;
	/* inside the write lock: nobody can commit between this read and
	 * our reads of the batch */
	if (sqlite3_step(s->data_version_stmt) != SQLITE_ROW) {
		sqlite3_reset(s->data_version_stmt);
		cache_drop(s);
		return STORE_OK;
	}
	v = sqlite3_column_int64(s->data_version_stmt, 0);
	sqlite3_reset(s->data_version_stmt);
	if (v != s->data_version)
		cache_drop(s);
	s->data_version = v;
	return STORE_OK;
}

static enum store_rc
sq_commit(struct store *st)
{
	struct store_sqlite *s = SQ(st);

	return run(s, stmt(s, S_COMMIT), "commit");
}

static void
sq_rollback(struct store *st)
{
	struct store_sqlite *s = SQ(st);

	cache_drop(s);
	if (!sqlite3_get_autocommit(s->db))
		run(s, stmt(s, S_ROLLBACK), "rollback");
}

/* A read transaction (store.h read_begin): DEFERRED takes the WAL read
 * lock at the first read and keeps it to read_end. */
static enum store_rc
sq_read_begin(struct store *st)
{
	struct store_sqlite *s = SQ(st);

	if (!sqlite3_get_autocommit(s->db))
		return store_fail(st, STORE_FAIL, "read_begin: inside a "
		                                  "transaction");
	return run(s, stmt(s, S_READ_BEGIN), "read_begin");
}

static void
sq_read_end(struct store *st)
{
	struct store_sqlite *s = SQ(st);

	if (!sqlite3_get_autocommit(s->db) &&
	    run(s, stmt(s, S_COMMIT), "read_end") != STORE_OK &&
	    !sqlite3_get_autocommit(s->db))
		run(s, stmt(s, S_ROLLBACK), "read_end");
}

static enum store_rc
sq_idem_get(struct store *st, const char *const *keys, size_t n,
            struct store_idem *out)
{
	struct store_sqlite *s = SQ(st);
	size_t i;
	int rc;

	for (i = 0; i < n; i++) {
		sqlite3_stmt *q = stmt(s, S_IDEM_GET);

		memset(&out[i], 0, sizeof out[i]);
		sqlite3_bind_text(q, 1, keys[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			const void *h = sqlite3_column_blob(q, 0);

			if (h == NULL ||
			    sqlite3_column_bytes(q, 0) != LEDGER_HASH_LEN) {
				sqlite3_reset(q);
				return store_fail(st, STORE_FAIL,
				                  "idem %s: bad hash", keys[i]);
			}
			strlcpy_s(out[i].key, keys[i], sizeof out[i].key);
			memcpy(out[i].hash, h, LEDGER_HASH_LEN);
			out[i].rc = (uint8_t)sqlite3_column_int(q, 1);
			out[i].txn_id = sqlite3_column_int64(q, 2);
			out[i].created_ms = sqlite3_column_int64(q, 3);
		} else if (rc != SQLITE_DONE) {
			sqlite3_reset(q);
			return sq_err(s, rc, "idem_get");
		}
		sqlite3_reset(q);
	}
	return STORE_OK;
}

static void
row_account(sqlite3_stmt *q, struct ledger_account *a)
{
	const unsigned char *code = sqlite3_column_text(q, 1);

	memset(a, 0, sizeof *a);
	a->id = sqlite3_column_int64(q, 0);
	strlcpy_s(a->code, code != NULL ? (const char *)code : "",
	          sizeof a->code);
	a->type = (uint8_t)sqlite3_column_int(q, 2);
	a->currency = (uint16_t)sqlite3_column_int(q, 3);
	a->balance_minor = sqlite3_column_int64(q, 4);
	a->has_floor = sqlite3_column_int(q, 5) != 0;
	a->floor_minor = sqlite3_column_int64(q, 6);
	a->is_closed = sqlite3_column_int(q, 7) != 0;
	a->created_ms = sqlite3_column_int64(q, 8);
}

static enum store_rc
sq_accounts_load(struct store *st, const int64_t *ids, size_t n,
                 struct ledger_account *out)
{
	struct store_sqlite *s = SQ(st);
	size_t i;
	int rc;

	if (s->cache == NULL)
		s->cache = xcalloc(ACCT_CACHE_SLOTS, sizeof *s->cache);
	for (i = 0; i < n; i++) {
		struct acct_slot *c =
			&s->cache[(uint64_t)ids[i] & (ACCT_CACHE_SLOTS - 1)];
		sqlite3_stmt *q;

		if (c->gen == s->cache_gen && c->a.id == ids[i]) {
			out[i] = c->a;
			continue;
		}
		q = stmt(s, S_ACCT_GET);
		sqlite3_bind_int64(q, 1, ids[i]);
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW)
			row_account(q, &out[i]);
		else if (rc == SQLITE_DONE)
			memset(&out[i], 0, sizeof out[i]);
		sqlite3_reset(q);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sq_err(s, rc, "accounts_load");
		if (rc == SQLITE_ROW) {
			c->gen = s->cache_gen;
			c->a = out[i];
		}
	}
	return STORE_OK;
}

static void
bind_usage_key(sqlite3_stmt *q, const struct store_usage *u)
{
	sqlite3_bind_int(q, 1, u->subject_kind);
	sqlite3_bind_text(q, 2, u->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, u->currency);
	sqlite3_bind_int(q, 4, u->window_s);
	sqlite3_bind_int64(q, 5, u->bucket);
}

static enum store_rc
sq_usage_load(struct store *st, struct store_usage *keys, size_t n)
{
	struct store_sqlite *s = SQ(st);
	size_t i;
	int rc;

	/* One writer holds the database lock: no row locks needed, and a
	 * missing row simply reads as zero until batch_write upserts it. */
	for (i = 0; i < n; i++) {
		sqlite3_stmt *q = stmt(s, S_USAGE_GET);

		bind_usage_key(q, &keys[i]);
		keys[i].amount_minor = 0;
		keys[i].count = 0;
		rc = sqlite3_step(q);
		if (rc == SQLITE_ROW) {
			keys[i].amount_minor = sqlite3_column_int64(q, 0);
			keys[i].count = sqlite3_column_int64(q, 1);
		}
		sqlite3_reset(q);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sq_err(s, rc, "usage_load");
	}
	return STORE_OK;
}

static enum store_rc
sq_txn_info(struct store *st, int64_t id, struct store_txn_info *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TXN_GET);
	int rc;

	memset(out, 0, sizeof *out);
	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(q);
		return STORE_NOT_FOUND;
	}
	if (rc != SQLITE_ROW) {
		sqlite3_reset(q);
		return sq_err(s, rc, "txn_info");
	}
	out->id = id;
	out->kind = (uint8_t)sqlite3_column_int(q, 0);
	out->currency = (uint16_t)sqlite3_column_int(q, 1);
	sqlite3_reset(q);

	q = stmt(s, S_TXN_REVERSED_BY);
	sqlite3_bind_int64(q, 1, id);
	if ((rc = sqlite3_step(q)) == SQLITE_ROW)
		out->reversed_by = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(s, rc, "txn_info");

	q = stmt(s, S_TXN_LEGS);
	sqlite3_bind_int64(q, 1, id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (out->n_legs == LEDGER_LEGS_MAX)
			break;
		out->legs[out->n_legs].account_id = sqlite3_column_int64(q, 0);
		out->legs[out->n_legs++].amount_minor =
			sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(s, rc, "txn_info");
	return STORE_OK;
}

static enum store_rc
sq_txn_ids(struct store *st, size_t n, int64_t *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TXN_MAX);
	int64_t max;
	size_t i;
	int rc;

	/* Safe: BEGIN IMMEDIATE holds the only write lock. */
	if ((rc = sqlite3_step(q)) != SQLITE_ROW) {
		sqlite3_reset(q);
		return sq_err(s, rc, "txn_ids");
	}
	max = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	for (i = 0; i < n; i++)
		out[i] = max + 1 + (int64_t)i;
	return STORE_OK;
}

/* The MR_ROWS-row form of the single-row INSERT id ("... VALUES (?1, ...,
 * ?k)"): the same statement with "(?, ..., ?)" repeated MR_ROWS times. */
static sqlite3_stmt *
mr_stmt(struct store_sqlite *s, enum mr_id m, enum stmt_id id, int k)
{
	char sql[4096];
	const char *v = strstr(stmt_sql[id], "VALUES");
	size_t off;
	int r, c;

	if (s->mr[m] != NULL) {
		sqlite3_reset(s->mr[m]);
		return s->mr[m];
	}
	off = (size_t)(v - stmt_sql[id]) + strlen("VALUES");
	if (off + (size_t)MR_ROWS * (2 * (size_t)k + 2) >= sizeof sql) {
		store_fail(&s->base, STORE_FAIL, "multi-row %d: too long",
		           (int)m);
		return NULL;
	}
	memcpy(sql, stmt_sql[id], off);
	for (r = 0; r < MR_ROWS; r++) {
		sql[off++] = r > 0 ? ',' : ' ';
		sql[off++] = '(';
		for (c = 0; c < k; c++) {
			if (c > 0)
				sql[off++] = ',';
			sql[off++] = '?';
		}
		sql[off++] = ')';
	}
	sql[off] = '\0';
	if (sqlite3_prepare_v3(s->db, sql, (int)off, SQLITE_PREPARE_PERSISTENT,
	                       &s->mr[m], NULL) != SQLITE_OK) {
		store_fail(&s->base, STORE_FAIL, "prepare multi-row %d: %s",
		           (int)m, sqlite3_errmsg(s->db));
		return NULL;
	}
	return s->mr[m];
}

/* Binders of one row at parameter offset o (every parameter is bound, so
 * a reused multi-row statement keeps nothing from its previous rows). */
static void
bind_txn(sqlite3_stmt *q, int o, const void *row)
{
	const struct store_txn_row *t = row;

	sqlite3_bind_int64(q, o + 1, t->id);
	sqlite3_bind_int(q, o + 2, t->kind);
	sqlite3_bind_int(q, o + 3, t->currency);
	sqlite3_bind_int64(q, o + 4, t->amount_minor);
	if (t->reverses_txn_id != 0)
		sqlite3_bind_int64(q, o + 5, t->reverses_txn_id);
	else
		sqlite3_bind_null(q, o + 5);
	sqlite3_bind_text(q, o + 6, t->idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, o + 7, t->memo != NULL ? t->memo : "", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, o + 8, t->created_ms);
}

static void
bind_posting(sqlite3_stmt *q, int o, const void *row)
{
	const struct store_posting_row *p = row;

	sqlite3_bind_int64(q, o + 1, p->txn_id);
	sqlite3_bind_int(q, o + 2, p->leg);
	sqlite3_bind_int64(q, o + 3, p->account_id);
	sqlite3_bind_int64(q, o + 4, p->amount_minor);
	sqlite3_bind_int(q, o + 5, p->currency);
}

static void
bind_idem(sqlite3_stmt *q, int o, const void *row)
{
	const struct store_idem *d = row;

	sqlite3_bind_text(q, o + 1, d->key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, o + 2, d->hash, LEDGER_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int(q, o + 3, d->rc);
	if (d->txn_id != 0)
		sqlite3_bind_int64(q, o + 4, d->txn_id);
	else
		sqlite3_bind_null(q, o + 4);
	sqlite3_bind_int64(q, o + 5, d->created_ms);
}

/* Inserts rows[0..n) (size bytes each, k columns): MR_ROWS at a time while
 * a full chunk remains, then one by one. */
static enum store_rc
insert_rows(struct store_sqlite *s, enum mr_id m, enum stmt_id id, int k,
            const void *rows, size_t size, size_t n,
            void (*bind)(sqlite3_stmt *, int, const void *),
            const char *what)
{
	const char *p = rows;
	sqlite3_stmt *q;
	enum store_rc rc;
	size_t i = 0;
	int r;

	for (; n - i >= MR_ROWS; i += MR_ROWS) {
		if ((q = mr_stmt(s, m, id, k)) == NULL)
			return STORE_FAIL;
		for (r = 0; r < MR_ROWS; r++)
			bind(q, r * k, p + (i + (size_t)r) * size);
		if ((rc = run(s, q, what)) != STORE_OK)
			return rc;
	}
	for (; i < n; i++) {
		q = stmt(s, id);
		bind(q, 0, p + i * size);
		if ((rc = run(s, q, what)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

/* The MR_ROWS-row balance update: one statement joins the deltas. */
static sqlite3_stmt *
mr_balance_stmt(struct store_sqlite *s)
{
	static const char head[] =
		"UPDATE accounts SET balance_minor = balance_minor + "
		"v.column2 FROM (VALUES ";
	static const char tail[] = ") AS v WHERE accounts.id = v.column1";
	char sql[sizeof head + sizeof tail + MR_ROWS * 6];
	size_t off = sizeof head - 1;
	int r;

	if (s->mr[MR_BALANCE] != NULL) {
		sqlite3_reset(s->mr[MR_BALANCE]);
		return s->mr[MR_BALANCE];
	}
	memcpy(sql, head, off);
	for (r = 0; r < MR_ROWS; r++) {
		memcpy(sql + off, r ? ",(?,?)" : "(?,?)", r ? 6 : 5);
		off += r ? 6 : 5;
	}
	memcpy(sql + off, tail, sizeof tail);
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
	                       &s->mr[MR_BALANCE], NULL) != SQLITE_OK) {
		store_fail(&s->base, STORE_FAIL, "prepare balance update: %s",
		           sqlite3_errmsg(s->db));
		return NULL;
	}
	return s->mr[MR_BALANCE];
}

/* Applies one balance delta per account (the ledger sends each account
 * once per batch), MR_ROWS per statement, and keeps the account cache in
 * step. */
static enum store_rc
update_balances(struct store_sqlite *s, const struct store_balance_delta *d,
                size_t n)
{
	enum store_rc rc;
	sqlite3_stmt *q;
	size_t i = 0, k;
	int r;

	while (i < n) {
		size_t chunk = n - i >= MR_ROWS ? MR_ROWS : 1;

		if (chunk == MR_ROWS) {
			if ((q = mr_balance_stmt(s)) == NULL)
				return STORE_FAIL;
			for (r = 0; r < MR_ROWS; r++) {
				sqlite3_bind_int64(q, 2 * r + 1,
				                   d[i + (size_t)r].account_id);
				sqlite3_bind_int64(q, 2 * r + 2,
				                   d[i + (size_t)r].delta_minor);
			}
		} else {
			q = stmt(s, S_UPD_BALANCE);
			sqlite3_bind_int64(q, 1, d[i].delta_minor);
			sqlite3_bind_int64(q, 2, d[i].account_id);
		}
		if ((rc = run(s, q, "update balance")) != STORE_OK)
			return rc;
		if (sqlite3_changes(s->db) != (int)chunk)
			return store_fail(&s->base, STORE_FAIL,
			                  "update balance: %d of %zu accounts",
			                  sqlite3_changes(s->db), chunk);
		for (k = i; k < i + chunk && s->cache != NULL; k++) {
			struct acct_slot *c =
				&s->cache[(uint64_t)d[k].account_id &
			                  (ACCT_CACHE_SLOTS - 1)];

			if (c->gen == s->cache_gen &&
			    c->a.id == d[k].account_id)
				c->a.balance_minor += d[k].delta_minor;
		}
		i += chunk;
	}
	return STORE_OK;
}

/* An approved POS row counts in its terminal's open batch (014). */
static enum store_rc
open_total_add(struct store_sqlite *s, const struct store_pos_txn *p)
{
	sqlite3_stmt *q = stmt(s, S_OPEN_ADD);

	sqlite3_bind_text(q, 1, p->terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, p->type);
	sqlite3_bind_int(q, 3, p->currency);
	sqlite3_bind_int64(q, 4, p->amount_minor);
	return run(s, q, "add pos total");
}

/* A reversal takes its original POS row, if it has one, out of the
 * totals of the batch the row is in, open or closed. */
static enum store_rc
pos_total_unreverse(struct store_sqlite *s, int64_t orig_txn_id)
{
	sqlite3_stmt *q = stmt(s, S_POS_BY_LEDGER), *u;
	char terminal[STORE_POS_ID_MAX + 1];
	int type, currency, rc;
	int64_t amount, batch_no = 0;
	bool is_closed;

	sqlite3_bind_int64(q, 1, orig_txn_id);
	rc = sqlite3_step(q);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(q);
		return rc == SQLITE_DONE ? STORE_OK
		                         : sq_err(s, rc, "reversed pos_txn");
	}
	strlcpy_s(terminal, col_str(q, 0), sizeof terminal);
	type = sqlite3_column_int(q, 1);
	currency = sqlite3_column_int(q, 2);
	amount = sqlite3_column_int64(q, 3);
	is_closed = sqlite3_column_type(q, 4) != SQLITE_NULL;
	if (is_closed)
		batch_no = sqlite3_column_int64(q, 4);
	sqlite3_reset(q);
	u = stmt(s, is_closed ? S_CLOSED_SUB : S_OPEN_SUB);
	sqlite3_bind_text(u, 1, terminal, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(u, 2, type);
	sqlite3_bind_int(u, 3, currency);
	sqlite3_bind_int64(u, 4, amount);
	if (is_closed)
		sqlite3_bind_int64(u, 5, batch_no);
	if ((rc = sqlite3_step(u)) != SQLITE_DONE) {
		sqlite3_reset(u);
		return sq_err(s, rc, "unreverse pos total");
	}
	sqlite3_reset(u);
	/* the row was counted when it was approved: no total to take it
	 * out of is a broken invariant, not a reversal to let through */
	if (sqlite3_changes(s->db) != 1)
		return store_fail(&s->base, STORE_FAIL,
		                  "pos totals: no total holds reversed txn %lld",
		                  (long long)orig_txn_id);
	return STORE_OK;
}

static enum store_rc
sq_batch_write(struct store *st, const struct store_batch *b)
{
	struct store_sqlite *s = SQ(st);
	enum store_rc rc;
	size_t i;

	if ((rc = insert_rows(s, MR_TXN, S_INS_TXN, 8, b->txns,
	                      sizeof *b->txns, b->n_txns, bind_txn,
	                      "insert txn")) != STORE_OK)
		return rc;
	if ((rc = insert_rows(s, MR_POSTING, S_INS_POSTING, 5, b->postings,
	                      sizeof *b->postings, b->n_postings, bind_posting,
	                      "insert posting")) != STORE_OK)
		return rc;
	if ((rc = update_balances(s, b->deltas, b->n_deltas)) != STORE_OK)
		return rc;
	for (i = 0; i < b->n_usage; i++) {
		sqlite3_stmt *q = stmt(s, S_UPSERT_USAGE);

		bind_usage_key(q, &b->usage[i]);
		sqlite3_bind_int64(q, 6, b->usage[i].amount_minor);
		sqlite3_bind_int64(q, 7, b->usage[i].count);
		if ((rc = run(s, q, "upsert usage")) != STORE_OK)
			return rc;
	}
	if ((rc = insert_rows(s, MR_IDEM, S_INS_IDEM, 5, b->idem,
	                      sizeof *b->idem, b->n_idem, bind_idem,
	                      "insert idem")) != STORE_OK)
		return rc;
	for (i = 0; i < b->n_pos_txns; i++) {
		const struct store_pos_txn *p = &b->pos_txns[i];
		sqlite3_stmt *q = stmt(s, S_POS_INSERT);

		sqlite3_bind_text(q, 1, p->terminal_id, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 2, p->txn_id, STORE_POS_TXN_ID_LEN,
		                  SQLITE_STATIC);
		sqlite3_bind_int(q, 3, p->type);
		sqlite3_bind_int(q, 4, p->is_advice ? 1 : 0);
		sqlite3_bind_int(q, 5, p->currency);
		sqlite3_bind_int64(q, 6, p->amount_minor);
		sqlite3_bind_text(q, 7, p->counterparty, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 8, p->local_time_ms);
		sqlite3_bind_int(q, 9, p->rc);
		sqlite3_bind_int64(q, 10, p->ledger_txn_id);
		sqlite3_bind_int64(q, 11, p->created_ms);
		if ((rc = run(s, q, "insert pos_txn")) != STORE_OK)
			return rc;
		if (p->rc == 0 && (rc = open_total_add(s, p)) != STORE_OK)
			return rc;
	}
	for (i = 0; i < b->n_txns; i++)
		if (b->txns[i].reverses_txn_id != 0 &&
		    (rc = pos_total_unreverse(s, b->txns[i].reverses_txn_id)) !=
		            STORE_OK)
			return rc;
	for (i = 0; i < b->n_prov; i++)
		if ((rc = prov_apply(s, &b->prov[i], b->now_ms)) != STORE_OK)
			return rc;
	for (i = 0; i < b->n_prov_new; i++) {
		struct store_prov p = b->prov_new[i];

		if ((rc = prov_insert(s, &p)) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

/* --------------------------------------------------------- reference data */

static enum store_rc
sq_account_create(struct store *st, struct ledger_account *a)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_ACCT_INSERT);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, a->code, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, a->type);
	sqlite3_bind_int(q, 3, a->currency);
	sqlite3_bind_int(q, 4, a->has_floor);
	sqlite3_bind_int64(q, 5, a->floor_minor);
	sqlite3_bind_int(q, 6, a->is_closed);
	sqlite3_bind_int64(q, 7, a->created_ms);
	if ((rc = run(s, q, "create account")) != STORE_OK)
		return rc;
	a->id = sqlite3_last_insert_rowid(s->db);
	a->balance_minor = 0;
	return STORE_OK;
}

static enum store_rc
account_one(struct store_sqlite *s, sqlite3_stmt *q,
            struct ledger_account *out)
{
	int rc = sqlite3_step(q);

	if (rc == SQLITE_ROW)
		row_account(q, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "account");
}

static enum store_rc
sq_account_by_code(struct store *st, const char *code,
                   struct ledger_account *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_ACCT_BY_CODE);

	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	return account_one(s, q, out);
}

static enum store_rc
sq_account_by_id(struct store *st, int64_t id, struct ledger_account *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_ACCT_GET);

	sqlite3_bind_int64(q, 1, id);
	return account_one(s, q, out);
}

static enum store_rc
sq_account_list(struct store *st, store_account_fn fn, void *arg)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_ACCT_LIST);
	struct ledger_account a;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row_account(q, &a);
		if (fn(arg, &a) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? STORE_OK : sq_err(s, rc, "account_list");
}

static enum store_rc
sq_idem_lookup(struct store *st, const char *key, struct store_idem *out)
{
	enum store_rc rc = sq_idem_get(st, &key, 1, out);

	if (rc == STORE_OK && out->key[0] == '\0')
		return STORE_NOT_FOUND;
	return rc;
}

static enum store_rc
sq_idem_purge(struct store *st, int64_t before_ms, int64_t *n_deleted)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_IDEM_PURGE);
	enum store_rc rc;

	sqlite3_bind_int64(q, 1, before_ms);
	if ((rc = run(s, q, "idem_purge")) == STORE_OK)
		*n_deleted = sqlite3_changes(s->db);
	return rc;
}

static enum store_rc
sq_limit_set(struct store *st, const struct ledger_limit_rule *r)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_LIMIT_SET);

	sqlite3_bind_int(q, 1, r->subject_kind);
	sqlite3_bind_text(q, 2, r->subject, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 3, r->currency);
	sqlite3_bind_int64(q, 4, r->per_txn_max);
	sqlite3_bind_int64(q, 5, r->daily_max);
	sqlite3_bind_int(q, 6, r->velocity_max);
	sqlite3_bind_int(q, 7, r->velocity_window_s);
	return run(s, q, "limit_set");
}

static enum store_rc
sq_limit_list(struct store *st, struct ledger_limit_rule **out, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_LIMIT_LIST);
	struct ledger_limit_rule *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct ledger_limit_rule *r;
		const unsigned char *subj = sqlite3_column_text(q, 1);

		if (cnt == cap) {
			cap = cap ? 2 * cap : 16;
			v = xreallocarray(v, cap, sizeof *v);
		}
		r = &v[cnt++];
		memset(r, 0, sizeof *r);
		r->subject_kind = (uint8_t)sqlite3_column_int(q, 0);
		strlcpy_s(r->subject, subj ? (const char *)subj : "",
		          sizeof r->subject);
		r->currency = (uint16_t)sqlite3_column_int(q, 2);
		r->per_txn_max = sqlite3_column_int64(q, 3);
		r->daily_max = sqlite3_column_int64(q, 4);
		r->velocity_max = sqlite3_column_int(q, 5);
		r->velocity_window_s = sqlite3_column_int(q, 6);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_DONE) {
		free(v);
		return sq_err(s, rc, "limit_list");
	}
	*out = v;
	*n = cnt;
	return STORE_OK;
}

/* ------------------------------------------------------ POS provisioning */

static void
row_agent(sqlite3_stmt *q, int o, struct store_agent *a)
{
	const unsigned char *code = sqlite3_column_text(q, o + 1);
	const unsigned char *status = sqlite3_column_text(q, o + 3);

	memset(a, 0, sizeof *a);
	a->id = sqlite3_column_int64(q, o);
	strlcpy_s(a->code, code ? (const char *)code : "", sizeof a->code);
	a->float_account_id = sqlite3_column_int64(q, o + 2);
	a->status = store_pos_status_parse(status ? (const char *)status : "");
	a->created_ms = sqlite3_column_int64(q, o + 4);
}

static enum store_rc
sq_agent_create(struct store *st, struct store_agent *a)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_AGENT_INSERT);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, a->code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, a->float_account_id);
	sqlite3_bind_text(q, 3, store_pos_status_name(a->status), -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, a->created_ms);
	if ((rc = run(s, q, "create agent")) != STORE_OK)
		return rc;
	a->id = sqlite3_last_insert_rowid(s->db);
	return STORE_OK;
}

static enum store_rc
sq_agent_get(struct store *st, const char *code, struct store_agent *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_AGENT_GET);
	int rc;

	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		row_agent(q, 0, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "agent");
}

/* ------------------------------------------------------- POS transactions */

static enum store_rc
sq_pos_txn_get(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, struct store_pos_txn *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_POS_GET);
	const unsigned char *cp;
	int rc;

	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, txn_id, STORE_POS_TXN_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		strlcpy_s(out->terminal_id, terminal_id,
		          sizeof out->terminal_id);
		memcpy(out->txn_id, txn_id, STORE_POS_TXN_ID_LEN);
		out->type = (uint16_t)sqlite3_column_int(q, 0);
		out->is_advice = sqlite3_column_int(q, 1) != 0;
		out->currency = (uint16_t)sqlite3_column_int(q, 2);
		out->amount_minor = sqlite3_column_int64(q, 3);
		cp = sqlite3_column_text(q, 4);
		strlcpy_s(out->counterparty, cp ? (const char *)cp : "",
		          sizeof out->counterparty);
		out->local_time_ms = sqlite3_column_int64(q, 5);
		out->rc = (uint8_t)sqlite3_column_int(q, 6);
		out->ledger_txn_id = sqlite3_column_int64(q, 7);
		out->created_ms = sqlite3_column_int64(q, 8);
		out->reversed_by = sqlite3_column_int64(q, 9);
		out->reversed_ms = sqlite3_column_int64(q, 10);
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "pos_txn");
}

static enum store_rc
sq_pos_totals(struct store *st, const char *terminal_id, int64_t batch_no,
              struct store_pos_total *out, size_t cap, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_POS_TOTALS);
	int rc;

	*n = 0;
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, batch_no);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (*n < cap) {
			struct store_pos_total *t = &out[*n];

			t->type = (uint16_t)sqlite3_column_int(q, 0);
			t->currency = (uint16_t)sqlite3_column_int(q, 1);
			t->count = sqlite3_column_int64(q, 2);
			t->sum_minor = sqlite3_column_int64(q, 3);
		}
		(*n)++;
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? STORE_OK : sq_err(s, rc, "pos_totals");
}

static enum store_rc
sq_pos_batch_close(struct store *st, const char *terminal_id,
                   int64_t batch_no, int64_t now_ms, int64_t *closed_ms,
                   bool *is_repeat)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q;
	enum store_rc r;
	int rc;

	/* the close and the stamp of the open rows: one transaction */
	if ((r = exec_sql(s, "BEGIN IMMEDIATE", "begin")) != STORE_OK)
		return r;
	q = stmt(s, S_BATCH_GET);
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, batch_no);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		*closed_ms = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	if (rc == SQLITE_ROW) {
		*is_repeat = true;
		exec_sql(s, "ROLLBACK", "rollback");
		return STORE_OK;
	}
	if (rc != SQLITE_DONE) {
		r = sq_err(s, rc, "pos_batch");
		goto fail;
	}
	*is_repeat = false;
	*closed_ms = now_ms;
	q = stmt(s, S_BATCH_INSERT);
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, batch_no);
	sqlite3_bind_int64(q, 3, now_ms);
	if ((r = run(s, q, "insert pos_batch")) != STORE_OK)
		goto fail;
	q = stmt(s, S_BATCH_MOVE);
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, batch_no);
	if ((r = run(s, q, "close pos totals")) != STORE_OK)
		goto fail;
	q = stmt(s, S_OPEN_CLEAR);
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	if ((r = run(s, q, "clear pos totals")) != STORE_OK)
		goto fail;
	q = stmt(s, S_BATCH_STAMP_PAY);
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, batch_no);
	if ((r = run(s, q, "stamp pos_payments")) != STORE_OK)
		goto fail;
	if ((r = exec_sql(s, "COMMIT", "commit")) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	exec_sql(s, "ROLLBACK", "rollback");
	return r;
}

static enum store_rc
sq_terminal_create(struct store *st, const struct store_terminal *t)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TERM_INSERT);

	sqlite3_bind_text(q, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, t->agent_id);
	sqlite3_bind_blob(q, 3, t->key_wrapped, STORE_KEY_WRAPPED_LEN,
	                  SQLITE_STATIC);
	sqlite3_bind_text(q, 4, store_pos_status_name(t->status), -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, t->created_ms);
	sqlite3_bind_int64(q, 6, t->merchant_id);
	return run(s, q, "create terminal");
}

/* A merchant row (SQ_MERCHANT_COLS from column o; NULLs read 0, ""). */
static void
row_merchant(sqlite3_stmt *q, int o, struct store_merchant *m)
{
	const unsigned char *code = sqlite3_column_text(q, o + 1);

	memset(m, 0, sizeof *m);
	m->id = sqlite3_column_int64(q, o);
	strlcpy_s(m->code, code ? (const char *)code : "", sizeof m->code);
	m->payable_account_id = sqlite3_column_int64(q, o + 2);
	m->created_ms = sqlite3_column_int64(q, o + 3);
}

static enum store_rc
sq_merchant_create(struct store *st, struct store_merchant *m)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_MERCHANT_INSERT);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, m->code, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, m->payable_account_id);
	sqlite3_bind_int64(q, 3, m->created_ms);
	if ((rc = run(s, q, "create merchant")) != STORE_OK)
		return rc;
	m->id = sqlite3_last_insert_rowid(s->db);
	return STORE_OK;
}

static enum store_rc
sq_merchant_get(struct store *st, const char *code, struct store_merchant *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_MERCHANT_GET);
	int rc;

	sqlite3_bind_text(q, 1, code, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		row_merchant(q, 0, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "merchant");
}

/* ------------------------------------------------------ /rpc partner keys */

static enum store_rc
sq_rpc_key_create(struct store *st, struct store_rpc_key *k)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_RPC_KEY_INSERT);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, k->name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, k->key_hash, STORE_RPC_KEY_HASH_LEN,
	                  SQLITE_STATIC);
	sqlite3_bind_int(q, 3, k->scope_kind);
	sqlite3_bind_text(q, 4, k->scope, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, k->created_ms);
	if ((rc = run(s, q, "create rpc key")) != STORE_OK)
		return rc;
	k->id = sqlite3_last_insert_rowid(s->db);
	return STORE_OK;
}

/* An S_RPC_KEY_GET / _LIST row (no hash). */
static void
row_rpc_key(sqlite3_stmt *q, struct store_rpc_key *k)
{
	memset(k, 0, sizeof *k);
	k->id = sqlite3_column_int64(q, 0);
	strlcpy_s(k->name, col_str(q, 1), sizeof k->name);
	k->scope_kind = (uint8_t)sqlite3_column_int(q, 2);
	strlcpy_s(k->scope, col_str(q, 3), sizeof k->scope);
	k->is_revoked = sqlite3_column_int(q, 4) != 0;
	k->created_ms = sqlite3_column_int64(q, 5);
}

static enum store_rc
sq_rpc_key_get(struct store *st, const uint8_t *key_hash,
               struct store_rpc_key *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_RPC_KEY_GET);
	int rc;

	sqlite3_bind_blob(q, 1, key_hash, STORE_RPC_KEY_HASH_LEN,
	                  SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		row_rpc_key(q, out);
		memcpy(out->key_hash, key_hash, STORE_RPC_KEY_HASH_LEN);
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "rpc key");
}

static enum store_rc
sq_rpc_key_revoke(struct store *st, const char *name)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_RPC_KEY_REVOKE);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	if ((rc = run(s, q, "revoke rpc key")) != STORE_OK)
		return rc;
	return sqlite3_changes(s->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

static enum store_rc
sq_rpc_key_list(struct store *st, store_rpc_key_fn fn, void *arg)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_RPC_KEY_LIST);
	struct store_rpc_key k;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		row_rpc_key(q, &k);
		if (fn(arg, &k) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? STORE_OK : sq_err(s, rc, "rpc_key_list");
}

/* A terminal row (SQ_TERM_COLS); -1 if its wrapped key has a bad size. */
static int
row_terminal(sqlite3_stmt *q, struct store_terminal *t)
{
	const unsigned char *id = sqlite3_column_text(q, 0);
	const unsigned char *status = sqlite3_column_text(q, 3);
	const void *key = sqlite3_column_blob(q, 2);

	memset(t, 0, sizeof *t);
	strlcpy_s(t->id, id ? (const char *)id : "", sizeof t->id);
	t->agent_id = sqlite3_column_int64(q, 1);
	if (key == NULL ||
	    sqlite3_column_bytes(q, 2) != STORE_KEY_WRAPPED_LEN)
		return -1;
	memcpy(t->key_wrapped, key, STORE_KEY_WRAPPED_LEN);
	t->status = store_pos_status_parse(status ? (const char *)status : "");
	t->created_ms = sqlite3_column_int64(q, 4);
	row_agent(q, 5, &t->agent);
	row_merchant(q, 10, &t->merchant);
	t->merchant_id = t->merchant.id;
	return 0;
}

static enum store_rc
sq_terminal_get(struct store *st, const char *id, struct store_terminal *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TERM_GET);
	struct store_terminal t;
	enum store_rc r = STORE_OK;
	int rc;

	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && row_terminal(q, &t) != 0)
		r = store_fail(st, STORE_FAIL, "terminal %s: bad key_wrapped",
		               id);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc, "terminal");
	if (r == STORE_OK)
		*out = t;
	explicit_bzero(&t, sizeof t);
	return r;
}

/* One statement `UPDATE ... SET status = ?2 WHERE <key> = ?1` (agents,
 * terminals); NOT_FOUND if no row has that key. */
static enum store_rc
set_status(struct store *st, enum stmt_id id, const char *key,
           uint8_t status, const char *what)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, id);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, store_pos_status_name(status), -1,
	                  SQLITE_STATIC);
	if ((rc = run(s, q, what)) != STORE_OK)
		return rc;
	return sqlite3_changes(s->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

static enum store_rc
sq_agent_set_status(struct store *st, const char *code, uint8_t status)
{
	return set_status(st, S_AGENT_STATUS, code, status, "agent status");
}

static enum store_rc
sq_terminal_set_status(struct store *st, const char *id, uint8_t status)
{
	return set_status(st, S_TERM_STATUS, id, status, "terminal status");
}

static enum store_rc
sq_terminal_set_key(struct store *st, const char *id,
                    const uint8_t *key_wrapped)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TERM_KEY);
	enum store_rc rc;

	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, key_wrapped, STORE_KEY_WRAPPED_LEN,
	                  SQLITE_STATIC);
	if ((rc = run(s, q, "terminal key")) != STORE_OK)
		return rc;
	return sqlite3_changes(s->db) == 1 ? STORE_OK : STORE_NOT_FOUND;
}

static enum store_rc
sq_terminal_list(struct store *st, store_terminal_fn fn, void *arg)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_TERM_LIST);
	struct store_terminal t;
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		if (row_terminal(q, &t) != 0)
			continue; /* verify-grade damage; listing goes on */
		if (fn(arg, &t) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	explicit_bzero(&t, sizeof t);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? STORE_OK : sq_err(s, rc, "terminal_list");
}

/* -------------------------------------------------------------- payments */

static enum store_rc
pay_event(struct store_sqlite *s, int64_t id, uint8_t from, uint8_t to,
          const char *reason, int64_t now_ms)
{
	sqlite3_stmt *q = stmt(s, S_PAY_EVENT);

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, from);
	sqlite3_bind_int(q, 3, to);
	sqlite3_bind_text(q, 4, reason != NULL ? reason : "", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, now_ms);
	return run(s, q, "payment event");
}

static enum store_rc
sq_payment_create(struct store *st, struct payment *p)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q;
	enum store_rc rc;

	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	q = stmt(s, S_PAY_INSERT);
	sqlite3_bind_text(q, 1, p->ref, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, p->currency);
	sqlite3_bind_int64(q, 3, p->amount_minor);
	sqlite3_bind_int64(q, 4, p->txn_id);
	sqlite3_bind_int64(q, 5, p->created_ms);
	if ((rc = run(s, q, "create payment")) != STORE_OK)
		goto fail;
	p->id = sqlite3_last_insert_rowid(s->db);
	p->state = PAY_CREATED;
	p->updated_ms = p->created_ms;
	if ((rc = pay_event(s, p->id, 0, PAY_CREATED, "created",
	                    p->created_ms)) != STORE_OK)
		goto fail;
	if ((rc = sq_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	sq_rollback(st);
	return rc;
}

static enum store_rc
sq_payment_transition(struct store *st, int64_t id, uint8_t from, uint8_t to,
                      const char *reason, int64_t now_ms)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q;
	enum store_rc rc;

	if (!payment_can_transition(from, to))
		return store_fail(st, STORE_FAIL,
		                  "illegal payment transition %s -> %s",
		                  payment_state_name(from),
		                  payment_state_name(to));
	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	q = stmt(s, S_PAY_UPDATE);
	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int(q, 2, from);
	sqlite3_bind_int(q, 3, to);
	sqlite3_bind_int64(q, 4, now_ms);
	if ((rc = run(s, q, "payment transition")) != STORE_OK)
		goto fail;
	if (sqlite3_changes(s->db) != 1) {
		struct payment p;

		sq_rollback(st);
		/* not found, or not in state `from` */
		rc = st->ops->payment_get(st, id, &p);
		return rc == STORE_OK ? STORE_CONFLICT : rc;
	}
	if ((rc = pay_event(s, id, from, to, reason, now_ms)) != STORE_OK)
		goto fail;
	if ((rc = sq_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	sq_rollback(st);
	return rc;
}

static enum store_rc
sq_payment_get(struct store *st, int64_t id, struct payment *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_PAY_GET);
	int rc;

	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const unsigned char *ref = sqlite3_column_text(q, 1);

		memset(out, 0, sizeof *out);
		out->id = sqlite3_column_int64(q, 0);
		strlcpy_s(out->ref, ref ? (const char *)ref : "",
		          sizeof out->ref);
		out->state = (uint8_t)sqlite3_column_int(q, 2);
		out->currency = (uint16_t)sqlite3_column_int(q, 3);
		out->amount_minor = sqlite3_column_int64(q, 4);
		out->txn_id = sqlite3_column_int64(q, 5);
		out->created_ms = sqlite3_column_int64(q, 6);
		out->updated_ms = sqlite3_column_int64(q, 7);
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "payment_get");
}

static enum store_rc
sq_payment_events(struct store *st, int64_t id, struct payment_event *out,
                  size_t cap, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_PAY_EVENTS);
	int rc;

	*n = 0;
	sqlite3_bind_int64(q, 1, id);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && *n < cap) {
		struct payment_event *e = &out[(*n)++];
		const unsigned char *r = sqlite3_column_text(q, 2);

		e->from = (uint8_t)sqlite3_column_int(q, 0);
		e->to = (uint8_t)sqlite3_column_int(q, 1);
		strlcpy_s(e->reason, r ? (const char *)r : "",
		          sizeof e->reason);
		e->at_ms = sqlite3_column_int64(q, 3);
	}
	sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sq_err(s, rc, "payment_events");
	return STORE_OK;
}

/* ------------------------------------------------------------- verify */

static enum store_rc
verify_query(struct store_sqlite *s, const char *what, const char *sql,
             store_violation_fn fn, void *arg, size_t *n)
{
	sqlite3_stmt *q = NULL;
	char detail[512];
	int rc, i;

	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		return store_fail(&s->base, STORE_FAIL, "verify %s: %s", what,
		                  sqlite3_errmsg(s->db));
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		size_t off = 0;

		detail[0] = '\0';
		for (i = 0; i < sqlite3_column_count(q); i++) {
			const unsigned char *v = sqlite3_column_text(q, i);
			int w = snprintf(detail + off, sizeof detail - off,
			                 "%s%s=%s", i ? " " : "",
			                 sqlite3_column_name(q, i),
			                 v ? (const char *)v : "null");

			if (w < 0 || (size_t)w >= sizeof detail - off)
				break;
			off += (size_t)w;
		}
		(*n)++;
		fn(arg, what, detail);
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return store_fail(&s->base, STORE_FAIL, "verify %s: %s", what,
		                  sqlite3_errstr(rc));
	return STORE_OK;
}

/* SQLite's running EOD totals (014) against the rows they sum: per
 * (terminal, batch or open, type, currency), the approved, not reversed
 * pos_txns rows; one row per line that differs, on either side. */
static const char pos_totals_check[] =
	"WITH want AS (SELECT terminal_id, batch_no, type, currency, "
	"COUNT(*) AS count, SUM(amount_minor) AS sum_minor FROM ("
	"SELECT p.terminal_id, p.type, p.currency, p.amount_minor, "
	"(SELECT b.batch_no FROM pos_batches b WHERE b.terminal_id = "
	"p.terminal_id AND b.upto_txn_id >= p.ledger_txn_id ORDER BY "
	"b.upto_txn_id, b.closed_ms LIMIT 1) AS batch_no FROM pos_txns p "
	"WHERE p.rc = 0 AND NOT EXISTS (SELECT 1 FROM txns r WHERE "
	"r.reverses_txn_id = p.ledger_txn_id)) "
	"GROUP BY terminal_id, batch_no, type, currency), "
	"have AS (SELECT terminal_id, batch_no, type, currency, count, "
	"sum_minor FROM pos_batch_totals WHERE count <> 0 OR sum_minor <> 0 "
	"UNION ALL SELECT terminal_id, NULL, type, currency, count, "
	"sum_minor FROM pos_open_totals WHERE count <> 0 OR sum_minor <> 0) "
	"SELECT 'rows' AS side, * FROM (SELECT * FROM want EXCEPT "
	"SELECT * FROM have) UNION ALL SELECT 'totals', * FROM ("
	"SELECT * FROM have EXCEPT SELECT * FROM want)";

static enum store_rc
sq_verify(struct store *st, store_violation_fn fn, void *arg,
          size_t *n_violations)
{
	struct store_sqlite *s = SQ(st);
	const struct store_check *c;
	enum store_rc rc;
	sqlite3_stmt *q = NULL;

	*n_violations = 0;
	/* one read snapshot for every check */
	if ((rc = exec_sql(s, "BEGIN", "verify")) != STORE_OK)
		return rc;
	for (c = store_checks; c->what != NULL; c++)
		if ((rc = verify_query(s, c->what, c->sql, fn, arg,
		                       n_violations)) != STORE_OK)
			goto out;
	if ((rc = verify_query(s, "pos_totals_mismatch", pos_totals_check,
	                       fn, arg, n_violations)) != STORE_OK)
		goto out;
	/* storage intact */
	if (sqlite3_prepare_v2(s->db, "PRAGMA integrity_check", -1, &q,
	                       NULL) == SQLITE_OK) {
		while (sqlite3_step(q) == SQLITE_ROW) {
			const unsigned char *v = sqlite3_column_text(q, 0);

			if (v != NULL && strcmp((const char *)v, "ok") != 0) {
				(*n_violations)++;
				fn(arg, "sqlite_integrity", (const char *)v);
			}
		}
	}
	sqlite3_finalize(q);
	rc = verify_query(s, "sqlite_foreign_key", "PRAGMA foreign_key_check",
	                  fn, arg, n_violations);
out:
	exec_sql(s, "COMMIT", "verify");
	return rc;
}

/* --------------------------------------------------------------- open */

static void
sq_close(struct store *st)
{
	struct store_sqlite *s = SQ(st);
	int i;

	if (st == NULL)
		return;
	for (i = 0; i < S_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	for (i = 0; i < MR_COUNT; i++)
		sqlite3_finalize(s->mr[i]);
	sqlite3_finalize(s->data_version_stmt);
	free(s->cache);
	sqlite3_close(s->db);
	free(s);
}

/* ------------------------------------------------ provider payments */

static void
prov_row(sqlite3_stmt *q, struct store_prov *o)
{
	const void *h;

	memset(o, 0, sizeof *o);
	o->pay.id = sqlite3_column_int64(q, 0);
	strlcpy_s(o->pay.ref, col_str(q, 1), sizeof o->pay.ref);
	o->pay.state = (uint8_t)sqlite3_column_int(q, 2);
	o->pay.currency = (uint16_t)sqlite3_column_int(q, 3);
	o->pay.amount_minor = sqlite3_column_int64(q, 4);
	o->pay.txn_id = sqlite3_column_int64(q, 5);
	o->pay.created_ms = sqlite3_column_int64(q, 6);
	o->pay.updated_ms = sqlite3_column_int64(q, 7);
	o->kind = (uint8_t)sqlite3_column_int(q, 8);
	strlcpy_s(o->provider, col_str(q, 9), sizeof o->provider);
	strlcpy_s(o->msisdn, col_str(q, 10), sizeof o->msisdn);
	o->clearing_account_id = sqlite3_column_int64(q, 11);
	o->target_account_id = sqlite3_column_int64(q, 12);
	strlcpy_s(o->client_ref, col_str(q, 13), sizeof o->client_ref);
	strlcpy_s(o->provider_ref, col_str(q, 14), sizeof o->provider_ref);
	o->call_state = (uint8_t)sqlite3_column_int(q, 15);
	o->send_attempts = sqlite3_column_int(q, 16);
	o->checks = sqlite3_column_int(q, 17);
	o->next_at_ms = sqlite3_column_int64(q, 18);
	o->deadline_ms = sqlite3_column_int64(q, 19);
	strlcpy_s(o->result_code, col_str(q, 20), sizeof o->result_code);
	strlcpy_s(o->result_desc, col_str(q, 21), sizeof o->result_desc);
	strlcpy_s(o->receipt, col_str(q, 22), sizeof o->receipt);
	h = sqlite3_column_blob(q, 23);
	if (h != NULL && sqlite3_column_bytes(q, 23) == (int)sizeof o->req_hash)
		memcpy(o->req_hash, h, sizeof o->req_hash);
	o->hold_account_id = sqlite3_column_int64(q, 24);
	/* bill_payments (NULL for other kinds: 0 and "") */
	o->bill.source_account_id = sqlite3_column_int64(q, 25);
	strlcpy_s(o->bill.biller_code, col_str(q, 26),
	          sizeof o->bill.biller_code);
	strlcpy_s(o->bill.item_code, col_str(q, 27), sizeof o->bill.item_code);
	strlcpy_s(o->bill.customer, col_str(q, 28), sizeof o->bill.customer);
	strlcpy_s(o->bill.customer_name, col_str(q, 29),
	          sizeof o->bill.customer_name);
	o->fee_minor = sqlite3_column_int64(q, 30);
	o->fee_account_id = sqlite3_column_int64(q, 31);
	o->commission_minor = sqlite3_column_int64(q, 32);
	o->reverses_id = sqlite3_column_int64(q, 33);
	strlcpy_s(o->reverses_ref, col_str(q, 34), sizeof o->reverses_ref);
	strlcpy_s(o->reverses_receipt, col_str(q, 35),
	          sizeof o->reverses_receipt);
	strlcpy_s(o->next_step, col_str(q, 36), sizeof o->next_step);
	strlcpy_s(o->next_text, col_str(q, 37), sizeof o->next_text);
	strlcpy_s(o->next_url, col_str(q, 38), sizeof o->next_url);
	strlcpy_s(o->pos_terminal, col_str(q, 39), sizeof o->pos_terminal);
	strlcpy_s(o->pos_agent, col_str(q, 40), sizeof o->pos_agent);
	strlcpy_s(o->pos_merchant, col_str(q, 41), sizeof o->pos_merchant);
}

static enum store_rc
sq_prov_get(struct store *st, const char *ref, const char *provider,
            const char *provider_ref, const char *client_ref,
            struct store_prov *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q;
	int rc;

	if (ref != NULL) {
		q = stmt(s, S_PROV_BY_REF);
		sqlite3_bind_text(q, 1, ref, -1, SQLITE_STATIC);
	} else if (provider_ref != NULL) {
		q = stmt(s, S_PROV_BY_PREF);
		sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, provider_ref, -1, SQLITE_STATIC);
	} else {
		q = stmt(s, S_PROV_BY_CREF);
		sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 2, client_ref != NULL ? client_ref : "",
		                  -1, SQLITE_STATIC);
	}
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		prov_row(q, out);
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "prov_get");
}

/* Inserts the payment, its first event and its provider row inside the
 * caller's transaction; sets p->pay.id. */
static enum store_rc
prov_insert(struct store_sqlite *s, struct store_prov *p)
{
	sqlite3_stmt *q;
	enum store_rc rc;

	q = stmt(s, S_PAY_INSERT);
	sqlite3_bind_text(q, 1, p->pay.ref, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, p->pay.currency);
	sqlite3_bind_int64(q, 3, p->pay.amount_minor);
	sqlite3_bind_int64(q, 4, p->pay.txn_id);
	sqlite3_bind_int64(q, 5, p->pay.created_ms);
	if ((rc = run(s, q, "create payment")) != STORE_OK)
		return rc;
	p->pay.id = sqlite3_last_insert_rowid(s->db);
	p->pay.state = PAY_CREATED;
	p->pay.updated_ms = p->pay.created_ms;
	if ((rc = pay_event(s, p->pay.id, 0, PAY_CREATED, "created",
	                    p->pay.created_ms)) != STORE_OK)
		return rc;
	q = stmt(s, S_PROV_INSERT);
	sqlite3_bind_int64(q, 1, p->pay.id);
	sqlite3_bind_int(q, 2, p->kind);
	sqlite3_bind_text(q, 3, p->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, p->msisdn, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, p->clearing_account_id);
	sqlite3_bind_int64(q, 6, p->target_account_id);
	sqlite3_bind_text(q, 7, p->client_ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, p->provider_ref, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 9, p->call_state);
	sqlite3_bind_int(q, 10, p->send_attempts);
	sqlite3_bind_int(q, 11, p->checks);
	sqlite3_bind_int64(q, 12, p->next_at_ms);
	sqlite3_bind_int64(q, 13, p->deadline_ms);
	sqlite3_bind_blob(q, 14, p->req_hash, sizeof p->req_hash,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, 15, p->hold_account_id);
	sqlite3_bind_int64(q, 16, p->fee_minor);
	sqlite3_bind_int64(q, 17, p->fee_account_id);
	sqlite3_bind_int64(q, 18, p->commission_minor);
	sqlite3_bind_int64(q, 19, p->reverses_id);
	if ((rc = run(s, q, "create prov_payment")) != STORE_OK)
		return rc;
	if (p->kind == STORE_PROV_BILL) {
		q = stmt(s, S_BILL_INSERT);
		sqlite3_bind_int64(q, 1, p->pay.id);
		sqlite3_bind_int64(q, 2, p->bill.source_account_id);
		sqlite3_bind_text(q, 3, p->bill.biller_code, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, p->bill.item_code, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 5, p->bill.customer, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, p->bill.customer_name, -1,
		                  SQLITE_STATIC);
		if ((rc = run(s, q, "create bill_payment")) != STORE_OK)
			return rc;
	}
	if (p->pos.type == 0)
		return STORE_OK;
	q = stmt(s, S_POS_PAY_INSERT);
	sqlite3_bind_int64(q, 1, p->pay.id);
	sqlite3_bind_text(q, 2, p->pos.terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, p->pos.txn_id, STORE_POS_TXN_ID_LEN,
	                  SQLITE_STATIC);
	sqlite3_bind_int(q, 4, p->pos.type);
	sqlite3_bind_int64(q, 5, p->pos.acked_ms);
	sqlite3_bind_int(q, 6, p->pos.is_advice ? 1 : 0);
	if ((rc = run(s, q, "create pos_payment")) != STORE_OK ||
	    p->pos.idem_key[0] == '\0')
		return rc;
	/* the txn id's ledger key, claimed (store.h store_pos_link) */
	q = stmt(s, S_INS_IDEM);
	sqlite3_bind_text(q, 1, p->pos.idem_key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, p->req_hash, sizeof p->req_hash,
	                  SQLITE_STATIC);
	sqlite3_bind_int(q, 3, LEDGER_IDEM_MISMATCH);
	sqlite3_bind_null(q, 4);
	sqlite3_bind_int64(q, 5, p->pay.created_ms);
	return run(s, q, "claim pos key");
}

static enum store_rc
sq_prov_create(struct store *st, struct store_prov *p)
{
	struct store_sqlite *s = SQ(st);
	enum store_rc rc;

	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	if ((rc = prov_insert(s, p)) != STORE_OK)
		goto fail;
	if ((rc = sq_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	sq_rollback(st);
	if (rc == STORE_CONFLICT) {
		/* the ref exists: hand back the stored row */
		enum store_rc g = sq_prov_get(st, p->pay.ref, NULL, NULL, NULL,
		                              p);

		if (g == STORE_NOT_FOUND) {
			/* not a repeat: the id was rolled back */
			p->pay.id = 0;
			return store_fail(st, STORE_FAIL,
			                  "provider payment %s: a unique key is "
			                  "taken by another payment (client_ref "
			                  "%s, provider_ref %s) or ref is not a "
			                  "provider payment",
			                  p->pay.ref, p->client_ref,
			                  p->provider_ref);
		}
		return g == STORE_OK ? STORE_CONFLICT : g;
	}
	return rc;
}

/* ------------------------------------ POS-started provider payments */

static enum store_rc
sq_pos_pay_create(struct store *st, struct store_prov *p,
                  const struct store_pos_link *l)
{
	struct store_sqlite *s = SQ(st);
	enum store_rc rc;

	p->pos = *l;
	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	if ((rc = prov_insert(s, p)) != STORE_OK ||
	    (rc = sq_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	sq_rollback(st);
	return rc == STORE_CONFLICT ? store_pos_pay_taken(st, p, l) : rc;
}

static enum store_rc
sq_pos_pay_get(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, struct store_prov *out,
               struct store_pos_link *link)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_POS_PAY_LINK);
	int64_t id = 0, acked = 0;
	int rc, type = 0, is_advice = 0;

	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, txn_id, STORE_POS_TXN_ID_LEN, SQLITE_STATIC);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(q, 0);
		type = sqlite3_column_int(q, 1);
		acked = sqlite3_column_int64(q, 2);
		is_advice = sqlite3_column_int(q, 3);
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	if (rc != SQLITE_ROW)
		return sq_err(s, rc, "pos_pay_get");
	q = stmt(s, S_PROV_BY_ID);
	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		prov_row(q, out);
	sqlite3_reset(q);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE
		               ? store_fail(st, STORE_FAIL,
		                            "pos payment %lld has no payment",
		                            (long long)id)
		               : sq_err(s, rc, "pos_pay_get");
	if (link != NULL) {
		memset(link, 0, sizeof *link);
		strlcpy_s(link->terminal_id, terminal_id,
		          sizeof link->terminal_id);
		memcpy(link->txn_id, txn_id, STORE_POS_TXN_ID_LEN);
		link->type = (uint16_t)type;
		link->acked_ms = acked;
		link->is_advice = is_advice != 0;
	}
	return STORE_OK;
}

static enum store_rc
sq_pos_pay_results(struct store *st, const char *terminal_id,
                   struct store_prov *out, struct store_pos_link *links,
                   size_t cap, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_POS_PAY_OPEN);
	enum store_rc rc = STORE_OK;
	size_t i;
	int r = SQLITE_DONE;

	*n = 0;
	if (cap == 0)
		return STORE_OK;
	/* the ids first: the rows are read with another statement */
	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)MIN(cap, (size_t)INT32_MAX));
	while (*n < cap && (r = sqlite3_step(q)) == SQLITE_ROW) {
		struct store_pos_link *l = &links[*n];
		const void *b = sqlite3_column_blob(q, 1);

		memset(l, 0, sizeof *l);
		out[*n].pay.id = sqlite3_column_int64(q, 0);
		strlcpy_s(l->terminal_id, terminal_id, sizeof l->terminal_id);
		if (b != NULL &&
		    sqlite3_column_bytes(q, 1) == STORE_POS_TXN_ID_LEN)
			memcpy(l->txn_id, b, STORE_POS_TXN_ID_LEN);
		l->type = (uint16_t)sqlite3_column_int(q, 2);
		(*n)++;
	}
	if (*n < cap && r != SQLITE_DONE)
		rc = sq_err(s, r, "pos_pay_results");
	sqlite3_reset(q);
	for (i = 0; rc == STORE_OK && i < *n; i++) {
		q = stmt(s, S_PROV_BY_ID);
		sqlite3_bind_int64(q, 1, out[i].pay.id);
		r = sqlite3_step(q);
		if (r == SQLITE_ROW)
			prov_row(q, &out[i]);
		sqlite3_reset(q);
		if (r != SQLITE_ROW)
			rc = sq_err(s, r == SQLITE_DONE ? SQLITE_CORRUPT : r,
			            "pos_pay_results");
	}
	if (rc != STORE_OK)
		*n = 0;
	return rc;
}

static enum store_rc
sq_pos_pay_ack(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, int64_t now_ms)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_POS_PAY_ACK);

	sqlite3_bind_text(q, 1, terminal_id, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, txn_id, STORE_POS_TXN_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, now_ms);
	return run(s, q, "pos_pay_ack");
}

static enum store_rc
sq_prov_due(struct store *st, int64_t now_ms, int64_t lease_ms,
            struct store_prov *out, size_t cap, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q;
	enum store_rc rc;
	size_t i;
	int r = SQLITE_DONE; /* no step when cap is 0 */

	*n = 0;
	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	q = stmt(s, S_PROV_DUE);
	sqlite3_bind_int64(q, 1, now_ms);
	sqlite3_bind_int64(q, 2,
	                   (sqlite3_int64)MIN(cap, (size_t)INT32_MAX));
	while (*n < cap && (r = sqlite3_step(q)) == SQLITE_ROW)
		prov_row(q, &out[(*n)++]);
	if (*n < cap && r != SQLITE_DONE) {
		rc = sq_err(s, r, "prov_due");
		sqlite3_reset(q);
		goto fail;
	}
	sqlite3_reset(q);
	for (i = 0; i < *n; i++) {
		q = stmt(s, S_PROV_LEASE);
		sqlite3_bind_int64(q, 1, out[i].pay.id);
		sqlite3_bind_int64(q, 2, now_ms + lease_ms);
		if ((rc = run(s, q, "prov lease")) != STORE_OK)
			goto fail;
		out[i].next_at_ms = now_ms + lease_ms; /* as claimed */
	}
	if ((rc = sq_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	sq_rollback(st);
	*n = 0;
	return rc;
}

static void
bind_text_or_null(sqlite3_stmt *q, int i, const char *v)
{
	if (v != NULL)
		sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, i);
}

/* Applies u inside the caller's transaction.  CONFLICT when the row is
 * not in (from_state, expect_call). */
static enum store_rc
prov_apply(struct store_sqlite *s, const struct store_prov_update *u,
           int64_t now_ms)
{
	sqlite3_stmt *q;
	enum store_rc rc;

	/* an illegal edge is refused before anything is written, as
	 * payment_transition does (and the trigger would) */
	if (u->from_state != u->to_state &&
	    !payment_can_transition(u->from_state, u->to_state))
		return store_fail(&s->base, STORE_FAIL,
		                  "payment %lld: illegal payment transition "
		                  "%s -> %s",
		                  (long long)u->payment_id,
		                  payment_state_name(u->from_state),
		                  payment_state_name(u->to_state));
	q = stmt(s, S_PROV_UPDATE);
	sqlite3_bind_int64(q, 1, u->payment_id);
	sqlite3_bind_int(q, 2, u->expect_call);
	sqlite3_bind_int(q, 3, u->call_state);
	sqlite3_bind_int(q, 4, u->send_attempts);
	sqlite3_bind_int(q, 5, u->checks);
	sqlite3_bind_int64(q, 6, u->next_at_ms);
	bind_text_or_null(q, 7, u->provider_ref);
	bind_text_or_null(q, 8, u->result_code);
	bind_text_or_null(q, 9, u->result_desc);
	bind_text_or_null(q, 10, u->receipt);
	sqlite3_bind_int(q, 11, u->from_state);
	if ((rc = run(s, q, "prov update")) != STORE_OK)
		return rc;
	if (sqlite3_changes(s->db) != 1) {
		int r;

		q = stmt(s, S_PROV_BY_ID);
		sqlite3_bind_int64(q, 1, u->payment_id);
		r = sqlite3_step(q);
		sqlite3_reset(q);
		if (r == SQLITE_DONE)
			return store_fail(&s->base, STORE_NOT_FOUND,
			                  "no provider payment %lld",
			                  (long long)u->payment_id);
		if (r != SQLITE_ROW)
			return sq_err(s, r, "prov update");
		return store_fail(&s->base, STORE_CONFLICT,
		                  "payment %lld changed meanwhile",
		                  (long long)u->payment_id);
	}
	if (u->from_state != u->to_state) {
		q = stmt(s, S_PAY_UPDATE);
		sqlite3_bind_int64(q, 1, u->payment_id);
		sqlite3_bind_int(q, 2, u->from_state);
		sqlite3_bind_int(q, 3, u->to_state);
		sqlite3_bind_int64(q, 4, now_ms);
		if ((rc = run(s, q, "payment transition")) != STORE_OK)
			return rc;
		if (sqlite3_changes(s->db) != 1)
			return store_fail(&s->base, STORE_CONFLICT,
			                  "payment %lld changed meanwhile",
			                  (long long)u->payment_id);
		if ((rc = pay_event(s, u->payment_id, u->from_state,
		                    u->to_state, u->reason, now_ms)) != STORE_OK)
			return rc;
	}
	if (u->next_step != NULL || u->next_text != NULL ||
	    u->next_url != NULL) {
		q = stmt(s, S_PROV_NEXT);
		sqlite3_bind_int64(q, 1, u->payment_id);
		bind_text_or_null(q, 2, u->next_step);
		bind_text_or_null(q, 3, u->next_text);
		bind_text_or_null(q, 4, u->next_url);
		if ((rc = run(s, q, "prov next step")) != STORE_OK)
			return rc;
	}
	if (u->txn_id != 0) {
		q = stmt(s, S_PAY_SET_TXN);
		sqlite3_bind_int64(q, 1, u->payment_id);
		sqlite3_bind_int64(q, 2, u->txn_id);
		sqlite3_bind_int64(q, 3, now_ms);
		if ((rc = run(s, q, "payment txn")) != STORE_OK)
			return rc;
	}
	if (u->resolution != NULL) {
		const struct store_prov_resolution *r = u->resolution;

		q = stmt(s, S_RES_INSERT);
		sqlite3_bind_int64(q, 1, u->payment_id);
		sqlite3_bind_int(q, 2, r->outcome);
		sqlite3_bind_text(q, 3, r->actor, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 4, r->evidence, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 5, r->provider_ref, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 6, r->idem_key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 7, r->req_hash, sizeof r->req_hash,
		                  SQLITE_STATIC);
		sqlite3_bind_int64(q, 8, now_ms);
		if ((rc = run(s, q, "prov resolution")) != STORE_OK)
			return rc;
	}
	return STORE_OK;
}

static enum store_rc
sq_prov_update(struct store *st, const struct store_prov_update *u,
               int64_t now_ms)
{
	struct store_sqlite *s = SQ(st);
	enum store_rc rc;

	if ((rc = sq_begin(st)) != STORE_OK)
		return rc;
	if ((rc = prov_apply(s, u, now_ms)) != STORE_OK ||
	    (rc = sq_commit(st)) != STORE_OK) {
		sq_rollback(st);
		return rc;
	}
	return STORE_OK;
}

static enum store_rc
sq_prov_callback_add(struct store *st, const struct store_prov_callback *c)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_PROV_CB_INSERT);

	sqlite3_bind_text(q, 1, c->provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, c->provider_ref, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, c->payment_id);
	sqlite3_bind_text(q, 4, c->verdict, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, c->detail != NULL ? c->detail : "", -1,
	                  SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, c->received_ms);
	return run(s, q, "prov callback");
}

static enum store_rc
sq_prov_callback_count(struct store *st, const char *provider,
                       const char *provider_ref, const char *verdict,
                       int64_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_PROV_CB_COUNT);
	int rc;

	sqlite3_bind_text(q, 1, provider, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, provider_ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, verdict, -1, SQLITE_STATIC);
	rc = sqlite3_step(q);
	*n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? STORE_OK : sq_err(s, rc, "prov callbacks");
}

static enum store_rc
sq_prov_unknown(struct store *st, int64_t after_id, struct store_prov *out,
                size_t cap, size_t *n)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_PROV_UNKNOWN);
	int r = SQLITE_DONE;

	*n = 0;
	sqlite3_bind_int64(q, 1, after_id);
	sqlite3_bind_int64(q, 2, (sqlite3_int64)MIN(cap, (size_t)INT32_MAX));
	while (*n < cap && (r = sqlite3_step(q)) == SQLITE_ROW)
		prov_row(q, &out[(*n)++]);
	sqlite3_reset(q);
	if (*n < cap && r != SQLITE_DONE) {
		*n = 0;
		return sq_err(s, r, "prov_unknown");
	}
	return STORE_OK;
}

static enum store_rc
sq_prov_resolution_get(struct store *st, int64_t payment_id,
                       struct store_prov_resolution *out)
{
	struct store_sqlite *s = SQ(st);
	sqlite3_stmt *q = stmt(s, S_RES_GET);
	int rc;

	sqlite3_bind_int64(q, 1, payment_id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const void *h = sqlite3_column_blob(q, 5);

		memset(out, 0, sizeof *out);
		out->payment_id = payment_id;
		out->outcome = (uint8_t)sqlite3_column_int(q, 0);
		strlcpy_s(out->actor, col_str(q, 1), sizeof out->actor);
		strlcpy_s(out->evidence, col_str(q, 2), sizeof out->evidence);
		strlcpy_s(out->provider_ref, col_str(q, 3),
		          sizeof out->provider_ref);
		strlcpy_s(out->idem_key, col_str(q, 4), sizeof out->idem_key);
		if (h != NULL && sqlite3_column_bytes(q, 5) ==
		                         (int)sizeof out->req_hash)
			memcpy(out->req_hash, h, sizeof out->req_hash);
		out->created_ms = sqlite3_column_int64(q, 6);
	}
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return rc == SQLITE_ROW ? STORE_OK
	                        : sq_err(s, rc, "prov_resolution_get");
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.migrate = sq_migrate,
	.ping = sq_ping,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.idem_get = sq_idem_get,
	.accounts_load = sq_accounts_load,
	.usage_load = sq_usage_load,
	.txn_info = sq_txn_info,
	.txn_ids = sq_txn_ids,
	.batch_write = sq_batch_write,
	.account_create = sq_account_create,
	.account_by_code = sq_account_by_code,
	.account_by_id = sq_account_by_id,
	.account_list = sq_account_list,
	.idem_lookup = sq_idem_lookup,
	.idem_purge = sq_idem_purge,
	.limit_set = sq_limit_set,
	.limit_list = sq_limit_list,
	.agent_create = sq_agent_create,
	.agent_get = sq_agent_get,
	.agent_set_status = sq_agent_set_status,
	.merchant_create = sq_merchant_create,
	.merchant_get = sq_merchant_get,
	.terminal_create = sq_terminal_create,
	.terminal_get = sq_terminal_get,
	.pos_txn_get = sq_pos_txn_get,
	.pos_totals = sq_pos_totals,
	.pos_batch_close = sq_pos_batch_close,
	.terminal_set_status = sq_terminal_set_status,
	.terminal_list = sq_terminal_list,
	.terminal_set_key = sq_terminal_set_key,
	.rpc_key_create = sq_rpc_key_create,
	.rpc_key_get = sq_rpc_key_get,
	.rpc_key_revoke = sq_rpc_key_revoke,
	.rpc_key_list = sq_rpc_key_list,
	.prov_create = sq_prov_create,
	.prov_get = sq_prov_get,
	.pos_pay_create = sq_pos_pay_create,
	.pos_pay_get = sq_pos_pay_get,
	.pos_pay_results = sq_pos_pay_results,
	.pos_pay_ack = sq_pos_pay_ack,
	.prov_due = sq_prov_due,
	.prov_update = sq_prov_update,
	.prov_callback_add = sq_prov_callback_add,
	.prov_callback_count = sq_prov_callback_count,
	.prov_unknown = sq_prov_unknown,
	.prov_resolution_get = sq_prov_resolution_get,
	.payment_create = sq_payment_create,
	.payment_transition = sq_payment_transition,
	.payment_get = sq_payment_get,
	.payment_events = sq_payment_events,
	.verify = sq_verify,
	.close = sq_close,
};

/* Durability: WAL + synchronous=FULL fsyncs the WAL at every commit
 * (docs/architecture.md §Durability).  Never weaker.
 *
 * Switching a fresh file to WAL while other processes open it at the
 * same moment can fail with SQLITE_BUSY without the busy handler being
 * called (SQLite refuses a lock upgrade that could deadlock), so the
 * switch is retried: at most 500 times, 10 ms apart (5 s, the same
 * bound as the busy timeout). */
static enum store_rc
open_pragmas(struct store_sqlite *s)
{
	static const char sql[] =
		"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
		"PRAGMA foreign_keys=ON; PRAGMA cache_size=-65536; "
		/* checkpoint every 16 MiB of WAL: measured (bench) against
		 * 4 MiB and 64 MiB, and against a background checkpointer,
		 * whose PASSIVE passes never caught up with the writer so
		 * the WAL never reset */
		"PRAGMA wal_autocheckpoint=4000";
	enum store_rc rc;
	int attempt = 0;

	while ((rc = exec_sql(s, sql, "pragma")) == STORE_RETRY &&
	       ++attempt < 500)
		sqlite3_sleep(10);
	return rc;
}

struct store *
store_sqlite_open(const char *path, char *err, size_t errlen)
{
	struct store_sqlite *s = xcalloc(1, sizeof *s);
	int from = 0, to = 0;

	s->base.ops = &sqlite_ops;
	s->data_version = -1;
	s->cache_gen = 1;
	if (sqlite3_open_v2(path, &s->db,
	                    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                            SQLITE_OPEN_NOMUTEX,
	                    NULL) != SQLITE_OK) {
		snprintf(err, errlen, "sqlite %s: %s", path,
		         s->db ? sqlite3_errmsg(s->db) : "out of memory");
		sq_close(&s->base);
		return NULL;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	if (open_pragmas(s) != STORE_OK ||
	    sq_migrate(&s->base, &from, &to) != STORE_OK) {
		snprintf(err, errlen, "sqlite %s: %s", path, s->base.errstr);
		sq_close(&s->base);
		return NULL;
	}
	return &s->base;
}
