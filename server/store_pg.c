/*
 * store_pg.c - the PostgreSQL storage backend (store.h) via libpq.
 *
 * Mirrors store_sqlite.c row for row; the ledger rules stay in ledger.c.
 * Durability: synchronous_commit=on for the session, so COMMIT returns
 * only after the WAL is flushed (never weaker, even if the server default
 * is).
 *
 * One ledger writer at a time, across every sokod on the database: begin()
 * takes a transaction-scoped advisory lock (SOKO_LEDGER_LOCK), so ledger
 * batches are serialised as they are inside one sokod (group commit makes
 * a single writer fast; TigerBeetle makes the same choice).  The reads of
 * a batch then need no row locks: in READ COMMITTED each sees the latest
 * committed rows, and nobody else can change balances, limit usage or
 * idempotency records until the lock goes with the commit.  Row locks
 * (FOR UPDATE) measured a quarter of the batch, because PostgreSQL writes
 * a WAL record for every locked row.  idle_in_transaction_session_timeout
 * bounds how long a stuck instance can hold the lock.
 *
 * Set-based batch path: every batch op is one statement over arrays
 * (= ANY($1), unnest(...)), whatever the batch size.  Arrays are passed
 * as text literals built here with every text element quoted and escaped;
 * SQL text is never built from data: only bound parameters.
 *
 * Errors: 23505 is STORE_CONFLICT; 40001, 40P01, class 08 and a lost
 * connection are STORE_RETRY (the connection is reset once); a trigger's
 * exception and everything else is STORE_FAIL.  A COMMIT whose outcome is
 * unknown (connection lost) is STORE_RETRY: the ledger's retry re-reads
 * the idempotency keys, so nothing is applied twice.
 */
#include "store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

/* Advisory lock key of the ledger writer ("SokoLedg"). */
#define SOKO_LEDGER_LOCK "6012484543452930151"

#include "store_int.h"
#include "util.h"

/* Session advisory lock serialising migrations between instances. */
#define PG_MIGRATE_LOCK "7308045141573611375" /* "soko-mig" */
/* Every session, also after a reset.  Durability: COMMIT waits for the
 * WAL flush; never weaker. */
#define PG_SESSION_SQL                                                       \
	"SET synchronous_commit = on; SET client_min_messages = warning; "   \
	"SET idle_in_transaction_session_timeout = '30s'"

enum pg_stmt_id {
	P_IDEM_GET,
	P_ACCT_LOAD,
	P_USAGE_LOAD,
	P_TXN_GET,
	P_TXN_REVERSED_BY,
	P_TXN_LEGS,
	P_TXN_IDS,
	P_UPD_BALANCES,
	P_UPSERT_USAGE,
	P_ACCT_INSERT,
	P_ACCT_BY_CODE,
	P_ACCT_BY_ID,
	P_ACCT_LIST,
	P_IDEM_PURGE,
	P_LIMIT_SET,
	P_LIMIT_LIST,
	P_PAY_CREATE,
	P_PAY_TRANSITION,
	P_PAY_GET,
	P_PAY_EVENTS,
	P_AGENT_INSERT,
	P_AGENT_GET,
	P_AGENT_STATUS,
	P_TERM_INSERT,
	P_TERM_GET,
	P_MERCHANT_INSERT,
	P_MERCHANT_GET,
	P_RPC_KEY_INSERT,
	P_RPC_KEY_GET,
	P_RPC_KEY_REVOKE,
	P_RPC_KEY_LIST,
	P_TERM_STATUS,
	P_TERM_KEY,
	P_TERM_LIST,
	P_POS_GET,
	P_POS_TOTALS,
	P_BATCH_CLOSE,
	P_PROV_CREATE,
	P_BILL_CREATE,
	P_PROV_NEXT,
	P_PROV_BY_REF,
	P_PROV_BY_PREF,
	P_PROV_BY_CREF,
	P_PROV_BY_ID,
	P_PROV_DUE,
	P_PROV_APPLY,
	P_PROV_CB_INSERT,
	P_PROV_CB_COUNT,
	P_RES_INSERT,
	P_RES_GET,
	P_PROV_UNKNOWN,
	P_POS_PAY_INSERT,
	P_IDEM_CLAIM,
	P_POS_PAY_LINK,
	P_POS_PAY_OPEN,
	P_POS_PAY_ACK,
	P_COUNT
};

#define ACCT_COLS                                                            \
	"id, code, type, currency, balance_minor, has_floor, floor_minor, "  \
	"is_closed, created_ms"
#define USAGE_ARRAYS                                                         \
	"unnest($1::integer[], $2::text[], $3::integer[], $4::integer[], "   \
	"$5::bigint[])"

#define AGENT_COLS                                                           \
	"a.id, a.code, a.float_account_id, a.status, a.created_ms"
#define MERCHANT_COLS                                                        \
	"COALESCE(m.id, 0), COALESCE(m.code, ''), "                          \
	"COALESCE(m.payable_account_id, 0), COALESCE(m.created_ms, 0)"
/* a terminal's merchant columns are 0 and '' when it has none */
#define TERM_COLS                                                            \
	"t.id, t.agent_id, encode(t.key_wrapped, 'hex'), t.status, "         \
	"t.created_ms, " AGENT_COLS ", " MERCHANT_COLS
#define TERM_FROM                                                            \
	" FROM terminals t JOIN agents a ON a.id = t.agent_id "              \
	"LEFT JOIN merchants m ON m.id = t.merchant_id "

/* A provider payment: its payments row p and its prov_payments row v. */
#define PROV_COLS                                                            \
	"p.id, p.ref, p.state, p.currency, p.amount_minor, "                 \
	"COALESCE(p.txn_id, 0), p.created_ms, p.updated_ms, v.kind, "        \
	"v.provider, v.msisdn, v.clearing_account_id, v.target_account_id, " \
	"v.client_ref, v.provider_ref, v.call_state, v.send_attempts, "      \
	"v.checks, v.next_at_ms, v.deadline_ms, v.result_code, "             \
	"v.result_desc, v.receipt, encode(v.req_hash, 'hex'), "               \
	"COALESCE(v.hold_account_id, 0), "                                   \
	"b.source_account_id, b.biller_code, b.item_code, b.customer, "     \
	"b.customer_name, v.fee_minor, COALESCE(v.fee_account_id, 0), "     \
	"v.commission_minor, COALESCE(v.reverses_payment_id, 0), rp.ref, "  \
	"rv.receipt, v.next_step, v.next_text, v.next_url, pp.terminal_id, " \
	"pa.code, pm.code"
/* bill_payments of a kind 3 payment, the collection a reversal reverses,
 * the terminal that started it, its agent, and its merchant when the
 * payment credits the merchant's account (NULLs otherwise) */
#define BILL_JOIN                                                            \
	"LEFT JOIN bill_payments b ON b.payment_id = p.id "                  \
	"LEFT JOIN payments rp ON rp.id = v.reverses_payment_id "            \
	"LEFT JOIN prov_payments rv ON rv.payment_id = v.reverses_payment_id " \
	"LEFT JOIN pos_payments pp ON pp.payment_id = p.id "                 \
	"LEFT JOIN terminals pt ON pt.id = pp.terminal_id "                  \
	"LEFT JOIN agents pa ON pa.id = pt.agent_id "                        \
	"LEFT JOIN merchants pm ON pm.id = pt.merchant_id "                  \
	"AND pm.payable_account_id = v.target_account_id "
#define PROV_FROM                                                            \
	"FROM payments p JOIN prov_payments v ON v.payment_id = p.id "       \
	BILL_JOIN
/* The 14 arrays of prov_apply's updates (struct store_prov_update). */
#define PROV_ARRAYS                                                          \
	"unnest($1::bigint[], $2::integer[], $3::integer[], $4::text[], "    \
	"$5::integer[], $6::integer[], $7::integer[], $8::integer[], "       \
	"$9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[], " \
	"$14::bigint[]) AS u(id, fs, ts, reason, ec, cs, sa, ck, na, pref, " \
	"rcode, rdesc, rcpt, txn)"

static const char *const pg_stmt_sql[P_COUNT] = {
	[P_IDEM_GET] = "SELECT key, encode(hash, 'hex'), rc, "
	               "COALESCE(txn_id, 0), created_ms FROM idem "
	               "WHERE key = ANY($1::text[])",
	[P_ACCT_LOAD] = "SELECT " ACCT_COLS " FROM accounts "
	                "WHERE id = ANY($1::bigint[]) ORDER BY id",
	/* rows come back in the caller's (sorted) order; a missing row
	 * reads as zero until the batch's upsert creates it */
	[P_USAGE_LOAD] =
		"SELECT k.ord, COALESCE(u.amount_minor, 0), "
		"COALESCE(u.count, 0) FROM " USAGE_ARRAYS
		" WITH ORDINALITY AS k(sk, subj, cur, win, bkt, ord) "
		"LEFT JOIN limit_usage u ON u.subject_kind = k.sk AND "
		"u.subject = k.subj AND u.currency = k.cur AND "
		"u.window_s = k.win AND u.bucket = k.bkt ORDER BY k.ord",
	[P_TXN_GET] = "SELECT kind, currency FROM txns WHERE id = $1",
	[P_TXN_REVERSED_BY] = "SELECT id FROM txns WHERE reverses_txn_id = $1",
	[P_TXN_LEGS] = "SELECT account_id, amount_minor FROM postings "
	               "WHERE txn_id = $1 ORDER BY leg",
	[P_TXN_IDS] = "SELECT nextval('txn_id_seq') "
	              "FROM generate_series(1, $1::integer)",
	[P_UPD_BALANCES] = "UPDATE accounts a SET balance_minor = "
	                   "a.balance_minor + d.delta FROM "
	                   "unnest($1::bigint[], $2::bigint[]) AS d(id, delta) "
	                   "WHERE a.id = d.id",
	[P_UPSERT_USAGE] =
		"INSERT INTO limit_usage (subject_kind, subject, currency, "
		"window_s, bucket, amount_minor, count) SELECT * FROM "
		"unnest($1::integer[], $2::text[], $3::integer[], "
		"$4::integer[], $5::bigint[], $6::bigint[], $7::bigint[]) "
		"ON CONFLICT (subject_kind, subject, currency, window_s, "
		"bucket) DO UPDATE SET amount_minor = limit_usage.amount_minor "
		"+ excluded.amount_minor, count = limit_usage.count + "
		"excluded.count",
	[P_ACCT_INSERT] = "INSERT INTO accounts (code, type, currency, "
	                  "has_floor, floor_minor, is_closed, created_ms) "
	                  "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
	[P_ACCT_BY_CODE] = "SELECT " ACCT_COLS " FROM accounts "
	                   "WHERE code = $1",
	[P_ACCT_BY_ID] = "SELECT " ACCT_COLS " FROM accounts WHERE id = $1",
	[P_ACCT_LIST] = "SELECT " ACCT_COLS " FROM accounts ORDER BY id",
	[P_IDEM_PURGE] = "DELETE FROM idem WHERE created_ms < $1",
	[P_LIMIT_SET] = "INSERT INTO limit_rules (subject_kind, subject, "
	                "currency, per_txn_max, daily_max, velocity_max, "
	                "velocity_window_s) "
	                "VALUES ($1, $2, $3, $4, $5, $6, $7) "
	                "ON CONFLICT (subject_kind, subject, currency) DO "
	                "UPDATE SET per_txn_max = excluded.per_txn_max, "
	                "daily_max = excluded.daily_max, velocity_max = "
	                "excluded.velocity_max, velocity_window_s = "
	                "excluded.velocity_window_s",
	[P_LIMIT_LIST] = "SELECT subject_kind, subject, currency, per_txn_max, "
	                 "daily_max, velocity_max, velocity_window_s "
	                 "FROM limit_rules",
	/* one statement: the payment and its first event, atomically */
	[P_PAY_CREATE] =
		"WITH p AS (INSERT INTO payments (ref, state, currency, "
		"amount_minor, txn_id, created_ms, updated_ms) VALUES ($1, 1, "
		"$2, $3, NULLIF($4::bigint, 0), $5, $5) RETURNING id) "
		"INSERT INTO payment_events (payment_id, from_state, to_state, "
		"reason, at_ms) SELECT id, NULL, 1, 'created', $5 FROM p "
		"RETURNING payment_id",
	[P_PAY_TRANSITION] =
		"WITH u AS (UPDATE payments SET state = $3, updated_ms = $4 "
		"WHERE id = $1 AND state = $2 RETURNING id) "
		"INSERT INTO payment_events (payment_id, from_state, to_state, "
		"reason, at_ms) SELECT id, $2, $3, $5, $4 FROM u RETURNING id",
	[P_PAY_GET] = "SELECT id, ref, state, currency, amount_minor, "
	              "COALESCE(txn_id, 0), created_ms, updated_ms "
	              "FROM payments WHERE id = $1",
	[P_PAY_EVENTS] = "SELECT COALESCE(from_state, 0), to_state, reason, "
	                 "at_ms FROM payment_events WHERE payment_id = $1 "
	                 "ORDER BY id LIMIT $2",
	[P_AGENT_INSERT] = "INSERT INTO agents (code, float_account_id, "
	                   "status, created_ms) VALUES ($1, $2, $3, $4) "
	                   "RETURNING id",
	[P_AGENT_STATUS] = "UPDATE agents SET status = $2 WHERE code = $1 "
	                   "RETURNING id",
	[P_AGENT_GET] = "SELECT " AGENT_COLS " FROM agents a WHERE a.code = $1",
	[P_TERM_INSERT] = "INSERT INTO terminals (id, agent_id, key_wrapped, "
	                  "status, created_ms, merchant_id) VALUES ($1, $2, "
	                  "decode($3, 'hex'), $4, $5, NULLIF($6::bigint, 0))",
	[P_TERM_GET] = "SELECT " TERM_COLS TERM_FROM "WHERE t.id = $1",
	[P_MERCHANT_INSERT] = "INSERT INTO merchants (code, "
	                      "payable_account_id, created_ms) "
	                      "VALUES ($1, $2, $3) RETURNING id",
	[P_MERCHANT_GET] = "SELECT m.id, m.code, m.payable_account_id, "
	                   "m.created_ms FROM merchants m WHERE m.code = $1",
	[P_RPC_KEY_INSERT] = "INSERT INTO rpc_keys (name, key_hash, "
	                     "scope_kind, scope, created_ms) VALUES ($1, "
	                     "decode($2, 'hex'), $3, $4, $5) RETURNING id",
	[P_RPC_KEY_GET] = "SELECT id, name, scope_kind, scope, status, "
	                  "created_ms FROM rpc_keys "
	                  "WHERE key_hash = decode($1, 'hex')",
	[P_RPC_KEY_REVOKE] = "UPDATE rpc_keys SET status = 1 WHERE name = $1 "
	                     "RETURNING id",
	[P_RPC_KEY_LIST] = "SELECT id, name, scope_kind, scope, status, "
	                   "created_ms FROM rpc_keys ORDER BY name",
	[P_TERM_STATUS] = "UPDATE terminals SET status = $2 WHERE id = $1 "
	                  "RETURNING id",
	[P_TERM_KEY] = "UPDATE terminals SET key_wrapped = decode($2, 'hex') "
	               "WHERE id = $1 RETURNING id",
	[P_TERM_LIST] = "SELECT " TERM_COLS TERM_FROM "ORDER BY t.id",
	[P_POS_GET] = "SELECT p.type, p.is_advice::int, p.currency, "
	              "p.amount_minor, p.counterparty, p.local_time_ms, p.rc, "
	              "COALESCE(p.ledger_txn_id, 0), p.created_ms, "
	              "COALESCE(r.id, 0), COALESCE(r.created_ms, 0) "
	              "FROM pos_txns p LEFT JOIN txns r "
	              "ON r.reverses_txn_id = p.ledger_txn_id "
	              "WHERE p.terminal_id = $1 AND "
	              "p.txn_id = decode($2, 'hex')",
	/* as store_sqlite.c's S_POS_TOTALS */
	[P_POS_TOTALS] = "SELECT t, c, count(*), sum(a) FROM ("
	                 "SELECT p.type AS t, p.currency AS c, "
	                 "p.amount_minor AS a FROM pos_txns p "
	                 "WHERE p.terminal_id = $1 AND p.batch_no = $2 "
	                 "AND p.rc = 0 AND NOT EXISTS "
	                 "(SELECT 1 FROM txns r WHERE r.reverses_txn_id = "
	                 "p.ledger_txn_id) UNION ALL "
	                 "SELECT x.type, y.currency, y.amount_minor FROM "
	                 "pos_payments x JOIN payments y ON y.id = "
	                 "x.payment_id WHERE x.terminal_id = $1 AND "
	                 "x.batch_no = $2 AND (y.state = 3 OR (x.is_advice "
	                 "AND y.state IN (2, 6)))) s "
	                 "GROUP BY t, c ORDER BY t, c",
	/* one statement, one transaction: the first close inserts its row
	 * and stamps the terminal's open rows; a repeat reads the recorded
	 * close (the CTE's snapshot does not see the row it inserts, so
	 * exactly one branch answers) */
	[P_BATCH_CLOSE] =
		"WITH ins AS (INSERT INTO pos_batches (terminal_id, batch_no, "
		"closed_ms) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING "
		"RETURNING closed_ms), "
		"stamp AS (UPDATE pos_txns SET batch_no = $2 WHERE "
		"terminal_id = $1 AND batch_no IS NULL AND EXISTS "
		"(SELECT 1 FROM ins)), "
		"stamp_pay AS (UPDATE pos_payments SET batch_no = $2 WHERE "
		"terminal_id = $1 AND batch_no IS NULL AND EXISTS "
		"(SELECT 1 FROM ins)) "
		"SELECT closed_ms, 0 FROM ins UNION ALL "
		"SELECT closed_ms, 1 FROM pos_batches "
		"WHERE terminal_id = $1 AND batch_no = $2 "
		"AND NOT EXISTS (SELECT 1 FROM ins)",
	/* one statement: the payment, its first event and its provider
	 * row, atomically */
	[P_PROV_CREATE] =
		"WITH p AS (INSERT INTO payments (ref, state, currency, "
		"amount_minor, txn_id, created_ms, updated_ms) VALUES ($1, 1, "
		"$2, $3, NULLIF($19::bigint, 0), $4, $4) RETURNING id), "
		"e AS (INSERT INTO payment_events (payment_id, from_state, "
		"to_state, reason, at_ms) SELECT id, NULL, 1, 'created', $4 "
		"FROM p) "
		"INSERT INTO prov_payments (payment_id, kind, provider, msisdn, "
		"clearing_account_id, target_account_id, client_ref, "
		"provider_ref, call_state, send_attempts, checks, next_at_ms, "
		"deadline_ms, req_hash, hold_account_id, fee_minor, "
		"fee_account_id, commission_minor, reverses_payment_id) "
		"SELECT id, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, "
		"$16, decode($17, 'hex'), NULLIF($18::bigint, 0), $20, "
		"NULLIF($21::bigint, 0), $22, NULLIF($23::bigint, 0) FROM p "
		"RETURNING payment_id",
	/* a bill: P_PROV_CREATE plus its bill_payments row, one statement */
	[P_BILL_CREATE] =
		"WITH p AS (INSERT INTO payments (ref, state, currency, "
		"amount_minor, txn_id, created_ms, updated_ms) VALUES ($1, 1, "
		"$2, $3, NULLIF($19::bigint, 0), $4, $4) RETURNING id), "
		"e AS (INSERT INTO payment_events (payment_id, from_state, "
		"to_state, reason, at_ms) SELECT id, NULL, 1, 'created', $4 "
		"FROM p), "
		"v AS (INSERT INTO prov_payments (payment_id, kind, provider, "
		"msisdn, clearing_account_id, target_account_id, client_ref, "
		"provider_ref, call_state, send_attempts, checks, next_at_ms, "
		"deadline_ms, req_hash, hold_account_id, fee_minor, "
		"fee_account_id, commission_minor) SELECT id, $5, $6, $7, "
		"$8, $9, $10, $11, $12, $13, $14, $15, $16, decode($17, 'hex'), "
		"NULLIF($18::bigint, 0), $25, NULLIF($26::bigint, 0), $27 FROM p "
		"RETURNING payment_id) "
		"INSERT INTO bill_payments (payment_id, source_account_id, "
		"biller_code, item_code, customer, customer_name) SELECT "
		"payment_id, $20, $21, $22, $23, $24 FROM v RETURNING payment_id",
	[P_IDEM_CLAIM] = "INSERT INTO idem (key, hash, rc, txn_id, "
	                 "created_ms) VALUES ($1, decode($2, 'hex'), $3, "
	                 "NULL, $4)",
	[P_POS_PAY_INSERT] = "INSERT INTO pos_payments (payment_id, "
	                     "terminal_id, txn_id, type, acked_ms, is_advice) "
	                     "VALUES ($1, $2, decode($3, 'hex'), $4, "
	                     "NULLIF($5::bigint, 0), $6::boolean)",
	[P_POS_PAY_LINK] = "SELECT payment_id, type, COALESCE(acked_ms, 0), "
	                   "is_advice::int FROM pos_payments WHERE terminal_id = $1 AND "
	                   "txn_id = decode($2, 'hex')",
	[P_POS_PAY_OPEN] = "SELECT x.payment_id, encode(x.txn_id, 'hex'), "
	                   "x.type FROM pos_payments x JOIN payments p ON "
	                   "p.id = x.payment_id WHERE x.terminal_id = $1 AND "
	                   "x.acked_ms IS NULL AND p.state IN (3, 4, 5) "
	                   "ORDER BY x.payment_id LIMIT $2",
	[P_POS_PAY_ACK] = "UPDATE pos_payments SET acked_ms = $3 WHERE "
	                  "terminal_id = $1 AND txn_id = decode($2, 'hex') "
	                  "AND acked_ms IS NULL AND payment_id IN (SELECT id "
	                  "FROM payments WHERE state IN (3, 4, 5))",
	[P_PROV_BY_REF] = "SELECT " PROV_COLS " " PROV_FROM "WHERE p.ref = $1",
	[P_PROV_BY_PREF] = "SELECT " PROV_COLS " " PROV_FROM
	                   "WHERE v.provider = $1 AND v.provider_ref = $2 "
	                   "AND v.provider_ref <> ''",
	[P_PROV_BY_CREF] = "SELECT " PROV_COLS " " PROV_FROM
	                   "WHERE v.provider = $1 AND v.client_ref = $2",
	[P_PROV_BY_ID] = "SELECT " PROV_COLS " " PROV_FROM "WHERE p.id = $1",
	/* Claim and lease in one statement (one transaction): rows another
	 * instance is claiming are skipped, not waited for; a row leased
	 * by a claim that committed after this statement's snapshot is
	 * re-checked on its new version (next_at_ms in the future: not
	 * due), so two instances never get the same row while its lease
	 * holds.  Returned as claimed, oldest due first. */
	[P_PROV_DUE] =
		"WITH c AS (SELECT payment_id, next_at_ms AS due FROM "
		"prov_payments WHERE call_state < 4 AND next_at_ms <= $1 "
		"ORDER BY next_at_ms, payment_id LIMIT $2 "
		"FOR UPDATE SKIP LOCKED), "
		"v AS (UPDATE prov_payments x SET next_at_ms = $3 FROM c "
		"WHERE x.payment_id = c.payment_id RETURNING x.*, c.due) "
		"SELECT " PROV_COLS " FROM v JOIN payments p ON p.id = "
		"v.payment_id " BILL_JOIN "ORDER BY v.due, v.payment_id",
	/* Updates of distinct payments, as one statement.  lk locks the
	 * payments and provider rows still in (from_state, expect_call)
	 * (re-checked on their latest version after a wait); only those
	 * change.  The answer is how many matched: fewer than the updates
	 * is a CONFLICT, and the caller rolls back. */
	[P_PROV_APPLY] =
		"WITH u AS (SELECT * FROM " PROV_ARRAYS "), "
		"lk AS (SELECT p.id FROM payments p JOIN prov_payments v ON "
		"v.payment_id = p.id JOIN u ON u.id = p.id WHERE "
		"p.state = u.fs AND v.call_state = u.ec "
		"FOR NO KEY UPDATE OF p, v), "
		"pv AS (UPDATE prov_payments x SET call_state = u.cs, "
		"send_attempts = u.sa, checks = u.ck, next_at_ms = u.na, "
		"provider_ref = COALESCE(u.pref, x.provider_ref), "
		"result_code = COALESCE(u.rcode, x.result_code), "
		"result_desc = COALESCE(u.rdesc, x.result_desc), "
		"receipt = COALESCE(u.rcpt, x.receipt) FROM u "
		"WHERE x.payment_id = u.id AND u.id IN (SELECT id FROM lk)), "
		"pp AS (UPDATE payments x SET state = u.ts, updated_ms = $15, "
		"txn_id = COALESCE(NULLIF(u.txn, 0), x.txn_id) FROM u "
		"WHERE x.id = u.id AND u.id IN (SELECT id FROM lk) AND "
		"(u.fs <> u.ts OR u.txn <> 0)), "
		"ev AS (INSERT INTO payment_events (payment_id, from_state, "
		"to_state, reason, at_ms) SELECT u.id, u.fs, u.ts, "
		"COALESCE(u.reason, ''), $15 FROM u WHERE u.fs <> u.ts AND "
		"u.id IN (SELECT id FROM lk)) "
		"SELECT count(*) FROM lk",
	[P_PROV_NEXT] = "UPDATE prov_payments SET "
	                "next_step = COALESCE($2, next_step), "
	                "next_text = COALESCE($3, next_text), "
	                "next_url = COALESCE($4, next_url) "
	                "WHERE payment_id = $1",
	[P_PROV_CB_INSERT] = "INSERT INTO prov_callbacks (provider, "
	                     "provider_ref, payment_id, verdict, detail, "
	                     "received_ms) VALUES ($1, $2, "
	                     "NULLIF($3::bigint, 0), $4, $5, $6)",
	[P_PROV_CB_COUNT] = "SELECT count(*) FROM prov_callbacks WHERE "
	                    "provider = $1 AND provider_ref = $2 AND "
	                    "verdict = $3",
	[P_RES_INSERT] = "INSERT INTO prov_resolutions (payment_id, outcome, "
	                 "actor, evidence, provider_ref, idem_key, req_hash, "
	                 "created_ms) VALUES ($1, $2, $3, $4, $5, $6, "
	                 "decode($7, 'hex'), $8)",
	[P_RES_GET] = "SELECT outcome, actor, evidence, provider_ref, "
	              "idem_key, encode(req_hash, 'hex'), created_ms "
	              "FROM prov_resolutions WHERE payment_id = $1",
	/* state = 6 literally: the partial index payments_unknown */
	[P_PROV_UNKNOWN] = "SELECT " PROV_COLS " " PROV_FROM
	                   "WHERE p.state = 6 AND p.id > $1 "
	                   "ORDER BY p.id LIMIT $2",
};

/* A growable text buffer for one array literal. */
struct pg_arr {
	char *p;
	size_t len, cap;
};

#define PG_N_ARR 14 /* most arrays one statement takes (P_PROV_APPLY) */

struct store_pg {
	struct store base; /* first */
	PGconn *conn;
	bool is_prepared;             /* pg_stmt_sql[] prepared on conn */
	struct pg_arr arr[PG_N_ARR];  /* reused by every batch op */
	struct pg_arr copy;           /* COPY text rows of one table */
};

#define PG(st) ((struct store_pg *)(st))

/* ------------------------------------------------------------- arrays */

static void
arr_reserve(struct pg_arr *a, size_t more)
{
	if (a->len + more + 1 <= a->cap)
		return;
	a->cap = MAX(a->cap * 2, a->len + more + 1);
	a->cap = MAX(a->cap, (size_t)256);
	a->p = xrealloc(a->p, a->cap);
}

static void
arr_start(struct pg_arr *a)
{
	a->len = 0;
	arr_reserve(a, 1);
	a->p[a->len++] = '{';
	a->p[a->len] = '\0';
}

static void
arr_sep(struct pg_arr *a)
{
	arr_reserve(a, 1);
	if (a->len > 1)
		a->p[a->len++] = ',';
}

static void
arr_i64(struct pg_arr *a, int64_t v)
{
	arr_sep(a);
	arr_reserve(a, 24);
	a->len += (size_t)snprintf(a->p + a->len, a->cap - a->len, "%" PRId64,
	                           v);
}

/* v, or NULL when v is 0 (optional references). */
/* A text element: always quoted, '"' and '\' escaped; NULL for s NULL. */
static void
arr_text(struct pg_arr *a, const char *s)
{
	arr_sep(a);
	if (s == NULL) {
		arr_reserve(a, 4);
		memcpy(a->p + a->len, "NULL", 4);
		a->len += 4;
		return;
	}
	arr_reserve(a, 2 * strlen(s) + 2);
	a->p[a->len++] = '"';
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\')
			a->p[a->len++] = '\\';
		a->p[a->len++] = *s;
	}
	a->p[a->len++] = '"';
}

static const char *
arr_end(struct pg_arr *a)
{
	arr_reserve(a, 1);
	a->p[a->len++] = '}';
	a->p[a->len] = '\0';
	return a->p;
}

/* ------------------------------------------------------------- errors */

/* After a failure: if the connection is gone, resets it once (the
 * server rolled back whatever was open) and says so. */
static bool
pg_lost(struct store_pg *s)
{
	if (PQstatus(s->conn) == CONNECTION_OK)
		return false;
	s->is_prepared = false;
	PQreset(s->conn);
	/* direct, not via pg_simple(): no recursion if it drops again */
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, PG_SESSION_SQL));
	return true;
}

/* Maps a failed result (r may be NULL) to a store_rc, keeping the
 * reason; frees r. */
static enum store_rc
pg_err(struct store_pg *s, PGresult *r, const char *what)
{
	const char *f = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE)
	                          : NULL;
	const char *msg = r != NULL ? PQresultErrorMessage(r) : "";
	enum store_rc rc = STORE_FAIL;
	char why[200], state[8];
	size_t len;

	/* copies: both live in r, which is freed before use */
	strlcpy_s(state, f != NULL ? f : "", sizeof state);
	if (msg == NULL || msg[0] == '\0')
		msg = PQerrorMessage(s->conn);
	strlcpy_s(why, msg, sizeof why);
	len = strlen(why);
	while (len > 0 && (why[len - 1] == '\n' || why[len - 1] == ' '))
		why[--len] = '\0';
	if (strcmp(state, "23505") == 0)
		rc = STORE_CONFLICT;
	else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	         strncmp(state, "08", 2) == 0 || strcmp(state, "57P01") == 0)
		rc = STORE_RETRY;
	PQclear(r);
	if (pg_lost(s))
		rc = STORE_RETRY;
	return store_fail(&s->base, rc, "%s: %s%s%s", what, state,
	                  state[0] != '\0' ? " " : "", why);
}

/* Checks r has the status want; else maps the error (and frees r). */
static enum store_rc
pg_check(struct store_pg *s, PGresult *r, ExecStatusType want,
         const char *what)
{
	if (r != NULL && PQresultStatus(r) == want)
		return STORE_OK;
	return pg_err(s, r, what);
}

/* A statement without parameters (session and transaction control).
 * Returns its result in *out if out is not NULL, else frees it. */
static enum store_rc
pg_simple(struct store_pg *s, const char *sql, ExecStatusType want,
          PGresult **out, const char *what)
{
	PGresult *r;
	enum store_rc rc;

	if (PQstatus(s->conn) != CONNECTION_OK && pg_lost(s) &&
	    PQstatus(s->conn) != CONNECTION_OK)
		return store_fail(&s->base, STORE_RETRY, "%s: %s", what,
		                  PQerrorMessage(s->conn));
	r = PQexec(s->conn, sql);
	if ((rc = pg_check(s, r, want, what)) != STORE_OK)
		return rc;
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_prepare_all(struct store_pg *s)
{
	char name[24];
	int i;

	if (s->is_prepared)
		return STORE_OK;
	for (i = 0; i < P_COUNT; i++) {
		PGresult *r;
		enum store_rc rc;

		snprintf(name, sizeof name, "soko_%d", i);
		r = PQprepare(s->conn, name, pg_stmt_sql[i], 0, NULL);
		if ((rc = pg_check(s, r, PGRES_COMMAND_OK, "prepare")) !=
		    STORE_OK)
			return rc;
		PQclear(r);
	}
	s->is_prepared = true;
	return STORE_OK;
}

/* Runs prepared statement id with text parameters vals[0..n).  On
 * success returns the result (caller PQclear's) in *out, or frees it if
 * out is NULL. */
static enum store_rc
pg_run(struct store_pg *s, enum pg_stmt_id id, int n,
       const char *const *vals, ExecStatusType want, PGresult **out,
       const char *what)
{
	char name[24];
	PGresult *r;
	enum store_rc rc;

	if (out != NULL)
		*out = NULL;
	if (PQstatus(s->conn) != CONNECTION_OK && pg_lost(s) &&
	    PQstatus(s->conn) != CONNECTION_OK)
		return store_fail(&s->base, STORE_RETRY, "%s: %s", what,
		                  PQerrorMessage(s->conn));
	if (!s->is_prepared && (rc = pg_prepare_all(s)) != STORE_OK)
		return rc;
	snprintf(name, sizeof name, "soko_%d", (int)id);
	r = PQexecPrepared(s->conn, name, n, vals, NULL, NULL, 0);
	if ((rc = pg_check(s, r, want, what)) != STORE_OK)
		return rc;
	if (out != NULL)
		*out = r;
	else
		PQclear(r);
	return STORE_OK;
}

/* ---------------------------------------------------------- values */

static int64_t
col_i64(const PGresult *r, int row, int col)
{
	return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

/* Decimal text of v in buf[24]. */
static const char *
fmt_i64(char *buf, int64_t v)
{
	snprintf(buf, 24, "%" PRId64, v);
	return buf;
}

static int
hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes exactly n bytes of hex into dst; -1 if hex is not 2n digits. */
static int
unhex(uint8_t *dst, const char *hex, size_t n)
{
	size_t i;

	if (strlen(hex) != 2 * n)
		return -1;
	for (i = 0; i < n; i++) {
		int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		dst[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static void
row_account(const PGresult *r, int row, struct ledger_account *a)
{
	memset(a, 0, sizeof *a);
	a->id = col_i64(r, row, 0);
	strlcpy_s(a->code, PQgetvalue(r, row, 1), sizeof a->code);
	a->type = (uint8_t)col_i64(r, row, 2);
	a->currency = (uint16_t)col_i64(r, row, 3);
	a->balance_minor = col_i64(r, row, 4);
	a->has_floor = col_i64(r, row, 5) != 0;
	a->floor_minor = col_i64(r, row, 6);
	a->is_closed = col_i64(r, row, 7) != 0;
	a->created_ms = col_i64(r, row, 8);
}

/* ------------------------------------------------------------ migrations */

static enum store_rc
pg_session_setup(struct store_pg *s)
{
	return pg_simple(s, PG_SESSION_SQL, PGRES_COMMAND_OK, NULL,
	                 "session setup");
}

static int
pg_schema_version(struct store_pg *s)
{
	PGresult *r = NULL;
	int v = -1;

	if (pg_simple(s, "SELECT COALESCE(MAX(version), 0) FROM schema_version",
	              PGRES_TUPLES_OK, &r, "schema_version") == STORE_OK &&
	    PQntuples(r) == 1)
		v = (int)col_i64(r, 0, 0);
	PQclear(r);
	return v;
}

/* One migration in its own transaction; v is re-read under the lock. */
static enum store_rc
pg_migrate_one(struct store_pg *s, const struct store_migration *m)
{
	char ver[24], now[24];
	const char *vals[3];
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_simple(s, "BEGIN", PGRES_COMMAND_OK, NULL, m->name)) !=
	    STORE_OK)
		return rc;
	if ((rc = pg_simple(s, m->sql, PGRES_COMMAND_OK, NULL, m->name)) !=
	    STORE_OK)
		goto fail;
	vals[0] = fmt_i64(ver, m->version);
	vals[1] = m->name;
	vals[2] = fmt_i64(now, util_now_ms());
	r = PQexecParams(s->conn,
	                 "INSERT INTO schema_version VALUES ($1, $2, $3)", 3,
	                 NULL, vals, NULL, NULL, 0);
	if ((rc = pg_check(s, r, PGRES_COMMAND_OK, m->name)) != STORE_OK)
		goto fail;
	PQclear(r);
	if ((rc = pg_simple(s, "COMMIT", PGRES_COMMAND_OK, &r, m->name)) !=
	    STORE_OK)
		goto fail;
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		PQclear(r);
		return store_fail(&s->base, STORE_FAIL, "%s: rolled back",
		                  m->name);
	}
	PQclear(r);
	return STORE_OK;
fail:
	if (PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		PQclear(PQexec(s->conn, "ROLLBACK"));
	return rc;
}

static enum store_rc
pg_migrate(struct store *st, int *from, int *to)
{
	struct store_pg *s = PG(st);
	const struct store_migration *m;
	enum store_rc rc;
	int v;

	/* Several sokod starting at once: one migrates, the others wait
	 * here and then find nothing left to do. */
	if ((rc = pg_simple(s, "SELECT pg_advisory_lock(" PG_MIGRATE_LOCK ")",
	                    PGRES_TUPLES_OK, NULL, "migrate lock")) !=
	    STORE_OK)
		return rc;
	if ((rc = pg_simple(s,
	                    "CREATE TABLE IF NOT EXISTS schema_version ("
	                    "version integer PRIMARY KEY, name text NOT NULL, "
	                    "applied_ms bigint NOT NULL)",
	                    PGRES_COMMAND_OK, NULL, "schema_version")) !=
	    STORE_OK)
		goto out;
	if ((v = pg_schema_version(s)) < 0) {
		rc = store_fail(st, STORE_FAIL, "cannot read schema_version");
		goto out;
	}
	*from = v;
	for (m = store_migrations_pg; m->sql != NULL; m++) {
		if (m->version <= v)
			continue;
		if ((rc = pg_migrate_one(s, m)) != STORE_OK)
			goto out;
		v = m->version;
	}
	*to = v;
	rc = pg_prepare_all(s);
out:
	if (PQstatus(s->conn) == CONNECTION_OK)
		PQclear(PQexec(s->conn, "SELECT pg_advisory_unlock("
		                        PG_MIGRATE_LOCK ")"));
	return rc;
}

static enum store_rc
pg_ping(struct store *st)
{
	return pg_simple(PG(st), "SELECT 1", PGRES_TUPLES_OK, NULL, "ping");
}

/* ----------------------------------------------------------- batch path */

static enum store_rc
pg_begin(struct store *st)
{
	/* READ COMMITTED whatever the server default: the reads after the
	 * lock must see the latest committed rows (ledger.c decides on
	 * them).  One round trip: the last statement's result comes back. */
	return pg_simple(PG(st),
	                 "BEGIN ISOLATION LEVEL READ COMMITTED; "
	                 "SELECT pg_advisory_xact_lock(" SOKO_LEDGER_LOCK ")",
	                 PGRES_TUPLES_OK, NULL, "begin");
}

static enum store_rc
pg_commit(struct store *st)
{
	struct store_pg *s = PG(st);
	PGresult *r = NULL;
	enum store_rc rc;

	/* lost connection here: outcome unknown, RETRY (see head) */
	if ((rc = pg_simple(s, "COMMIT", PGRES_COMMAND_OK, &r, "commit")) !=
	    STORE_OK)
		return rc;
	/* COMMIT of a failed transaction "succeeds" as ROLLBACK */
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		PQclear(r);
		return store_fail(st, STORE_FAIL,
		                  "commit: transaction was rolled back");
	}
	PQclear(r);
	return STORE_OK;
}

static void
pg_rollback(struct store *st)
{
	struct store_pg *s = PG(st);

	if (PQstatus(s->conn) == CONNECTION_OK &&
	    PQtransactionStatus(s->conn) != PQTRANS_IDLE)
		pg_simple(s, "ROLLBACK", PGRES_COMMAND_OK, NULL, "rollback");
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static enum store_rc
pg_idem_get(struct store *st, const char *const *keys, size_t n,
            struct store_idem *out)
{
	struct store_pg *s = PG(st);
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;
	size_t i;
	int row;

	memset(out, 0, n * sizeof *out);
	if (n == 0)
		return STORE_OK;
	arr_start(&s->arr[0]);
	for (i = 0; i < n; i++)
		arr_text(&s->arr[0], keys[i]);
	vals[0] = arr_end(&s->arr[0]);
	if ((rc = pg_run(s, P_IDEM_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "idem_get")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r); row++) {
		const char *key = PQgetvalue(r, row, 0);
		const char *const *p;
		struct store_idem *d;

		/* keys[] is sorted by strcmp (ledger.c) */
		p = bsearch(&key, keys, n, sizeof *keys, strp_cmp);
		if (p == NULL)
			continue; /* cannot happen */
		d = &out[p - keys];
		if (unhex(d->hash, PQgetvalue(r, row, 1), LEDGER_HASH_LEN) !=
		    0) {
			PQclear(r);
			memset(d, 0, sizeof *d);
			return store_fail(st, STORE_FAIL, "idem %s: bad hash",
			                  key);
		}
		strlcpy_s(d->key, key, sizeof d->key);
		d->rc = (uint8_t)col_i64(r, row, 2);
		d->txn_id = col_i64(r, row, 3);
		d->created_ms = col_i64(r, row, 4);
	}
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_accounts_load(struct store *st, const int64_t *ids, size_t n,
                 struct ledger_account *out)
{
	struct store_pg *s = PG(st);
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;
	size_t i;
	int row, n_rows;

	if (n == 0)
		return STORE_OK;
	arr_start(&s->arr[0]);
	for (i = 0; i < n; i++)
		arr_i64(&s->arr[0], ids[i]);
	vals[0] = arr_end(&s->arr[0]);
	if ((rc = pg_run(s, P_ACCT_LOAD, 1, vals, PGRES_TUPLES_OK, &r,
	                 "accounts_load")) != STORE_OK)
		return rc;
	/* both ascending: merge */
	n_rows = PQntuples(r);
	for (i = 0, row = 0; i < n; i++) {
		while (row < n_rows && col_i64(r, row, 0) < ids[i])
			row++;
		if (row < n_rows && col_i64(r, row, 0) == ids[i])
			row_account(r, row, &out[i]);
		else
			memset(&out[i], 0, sizeof out[i]);
	}
	PQclear(r);
	return STORE_OK;
}

/* The five key arrays of usage rows u[0..n) into arr[0..5). */
static void
usage_key_arrays(struct store_pg *s, const struct store_usage *u, size_t n,
                 const char **vals)
{
	size_t i;
	int k;

	for (k = 0; k < 5; k++)
		arr_start(&s->arr[k]);
	for (i = 0; i < n; i++) {
		arr_i64(&s->arr[0], u[i].subject_kind);
		arr_text(&s->arr[1], u[i].subject);
		arr_i64(&s->arr[2], u[i].currency);
		arr_i64(&s->arr[3], u[i].window_s);
		arr_i64(&s->arr[4], u[i].bucket);
	}
	for (k = 0; k < 5; k++)
		vals[k] = arr_end(&s->arr[k]);
}

static enum store_rc
pg_usage_load(struct store *st, struct store_usage *keys, size_t n)
{
	struct store_pg *s = PG(st);
	const char *vals[5];
	PGresult *r;
	enum store_rc rc;
	size_t i;
	int row;

	if (n == 0)
		return STORE_OK;
	/* no row locks: begin() holds the ledger lock (file head) */
	usage_key_arrays(s, keys, n, vals);
	if ((rc = pg_run(s, P_USAGE_LOAD, 5, vals, PGRES_TUPLES_OK, &r,
	                 "usage_load")) != STORE_OK)
		return rc;
	if ((size_t)PQntuples(r) != n) {
		PQclear(r);
		return store_fail(st, STORE_FAIL,
		                  "usage_load: %zu keys, %d rows", n,
		                  PQntuples(r));
	}
	for (row = 0; row < PQntuples(r); row++) {
		i = (size_t)col_i64(r, row, 0) - 1;
		if (i >= n)
			continue; /* cannot happen */
		keys[i].amount_minor = col_i64(r, row, 1);
		keys[i].count = col_i64(r, row, 2);
	}
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_txn_info(struct store *st, int64_t id, struct store_txn_info *out)
{
	struct store_pg *s = PG(st);
	char idbuf[24];
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;
	int row;

	memset(out, 0, sizeof *out);
	vals[0] = fmt_i64(idbuf, id);
	/* lock first; the next two statements then see a reversal that a
	 * concurrent transaction committed while we waited */
	if ((rc = pg_run(s, P_TXN_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "txn_info")) != STORE_OK)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return STORE_NOT_FOUND;
	}
	out->id = id;
	out->kind = (uint8_t)col_i64(r, 0, 0);
	out->currency = (uint16_t)col_i64(r, 0, 1);
	PQclear(r);

	if ((rc = pg_run(s, P_TXN_REVERSED_BY, 1, vals, PGRES_TUPLES_OK, &r,
	                 "txn_info")) != STORE_OK)
		return rc;
	if (PQntuples(r) > 0)
		out->reversed_by = col_i64(r, 0, 0);
	PQclear(r);

	if ((rc = pg_run(s, P_TXN_LEGS, 1, vals, PGRES_TUPLES_OK, &r,
	                 "txn_info")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r) && out->n_legs < LEDGER_LEGS_MAX;
	     row++) {
		out->legs[out->n_legs].account_id = col_i64(r, row, 0);
		out->legs[out->n_legs++].amount_minor = col_i64(r, row, 1);
	}
	PQclear(r);
	return STORE_OK;
}

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static enum store_rc
pg_txn_ids(struct store *st, size_t n, int64_t *out)
{
	struct store_pg *s = PG(st);
	char nbuf[24];
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;
	size_t i;

	if (n == 0)
		return STORE_OK;
	vals[0] = fmt_i64(nbuf, (int64_t)n);
	if ((rc = pg_run(s, P_TXN_IDS, 1, vals, PGRES_TUPLES_OK, &r,
	                 "txn_ids")) != STORE_OK)
		return rc;
	if ((size_t)PQntuples(r) != n) {
		PQclear(r);
		return store_fail(st, STORE_FAIL, "txn_ids: short");
	}
	for (i = 0; i < n; i++)
		out[i] = col_i64(r, (int)i, 0);
	PQclear(r);
	qsort(out, n, sizeof *out, i64_cmp);
	return STORE_OK;
}

/*
 * Bulk rows go in with COPY FROM STDIN (text format): one round trip and
 * no array parsing, measured about twice as fast as INSERT ... SELECT FROM
 * unnest() for the batch's txns, postings and idempotency records.  COPY
 * fires the same constraints and statement triggers, and a duplicate key
 * is still 23505 (CONFLICT).
 */
static void
cp_raw(struct pg_arr *c, const char *p, size_t n)
{
	arr_reserve(c, n);
	memcpy(c->p + c->len, p, n);
	c->len += n;
}

static void
cp_i64(struct pg_arr *c, int64_t v, char end)
{
	char tmp[24];
	int n = snprintf(tmp, sizeof tmp, "%lld%c", (long long)v, end);

	cp_raw(c, tmp, (size_t)n);
}

/* A text value, escaped for COPY's text format. */
static void
cp_text(struct pg_arr *c, const char *v, char end)
{
	arr_reserve(c, 2 * strlen(v) + 1);
	for (; *v != '\0'; v++) {
		char e = *v == '\\' ? '\\'
		         : *v == '\t' ? 't'
		         : *v == '\n' ? 'n'
		         : *v == '\r' ? 'r'
		                      : 0;

		if (e != 0) {
			c->p[c->len++] = '\\';
			c->p[c->len++] = e;
		} else {
			c->p[c->len++] = *v;
		}
	}
	c->p[c->len++] = end;
}

/* An id that is 0 for "none": the value, or NULL (\N). */
static void
cp_i64_or_null(struct pg_arr *c, int64_t v, char end)
{
	if (v != 0) {
		cp_i64(c, v, end);
		return;
	}
	cp_raw(c, "\\N", 2);
	cp_raw(c, &end, 1);
}

/* A bytea value in hex ("\\x..." once COPY has unescaped it). */
static void
cp_bytea(struct pg_arr *c, const uint8_t *v, size_t n, char end)
{
	char hex[2 * 64 + 1];

	if (n > 64) {
		/* callers pass hashes and ids of at most 32 bytes */
		abort();
	}
	util_hex(hex, v, n);
	cp_raw(c, "\\\\x", 3); /* backslash escaped for COPY */
	cp_raw(c, hex, 2 * n);
	cp_raw(c, &end, 1);
}

static enum store_rc
cp_send(struct store_pg *s, const char *sql, const char *what)
{
	PGresult *r;
	enum store_rc rc;

	if (PQstatus(s->conn) != CONNECTION_OK && pg_lost(s) &&
	    PQstatus(s->conn) != CONNECTION_OK)
		return store_fail(&s->base, STORE_RETRY, "%s: %s", what,
		                  PQerrorMessage(s->conn));
	r = PQexec(s->conn, sql);
	if ((rc = pg_check(s, r, PGRES_COPY_IN, what)) != STORE_OK)
		return rc;
	PQclear(r);
	if (PQputCopyData(s->conn, s->copy.p, (int)s->copy.len) != 1 ||
	    PQputCopyEnd(s->conn, NULL) != 1) {
		/* drain whatever result the server sends */
		while ((r = PQgetResult(s->conn)) != NULL)
			PQclear(r);
		pg_lost(s);
		return store_fail(&s->base, STORE_RETRY, "%s: %s", what,
		                  PQerrorMessage(s->conn));
	}
	r = PQgetResult(s->conn);
	rc = pg_check(s, r, PGRES_COMMAND_OK, what);
	if (rc == STORE_OK)
		PQclear(r);
	while ((r = PQgetResult(s->conn)) != NULL)
		PQclear(r);
	return rc;
}

static enum store_rc
write_txns(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *c = &s->copy;
	size_t i;

	c->len = 0;
	for (i = 0; i < b->n_txns; i++) {
		const struct store_txn_row *t = &b->txns[i];

		cp_i64(c, t->id, '\t');
		cp_i64(c, t->kind, '\t');
		cp_i64(c, t->currency, '\t');
		cp_i64(c, t->amount_minor, '\t');
		cp_i64_or_null(c, t->reverses_txn_id, '\t');
		cp_text(c, t->idem_key, '\t');
		cp_text(c, t->memo != NULL ? t->memo : "", '\t');
		cp_i64(c, t->created_ms, '\n');
	}
	return cp_send(s,
	               "COPY txns (id, kind, currency, amount_minor, "
	               "reverses_txn_id, idem_key, memo, created_ms) FROM STDIN",
	               "insert txns");
}

static enum store_rc
write_postings(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *c = &s->copy;
	size_t i;

	c->len = 0;
	for (i = 0; i < b->n_postings; i++) {
		const struct store_posting_row *p = &b->postings[i];

		cp_i64(c, p->txn_id, '\t');
		cp_i64(c, p->leg, '\t');
		cp_i64(c, p->account_id, '\t');
		cp_i64(c, p->amount_minor, '\t');
		cp_i64(c, p->currency, '\n');
	}
	return cp_send(s,
	               "COPY postings (txn_id, leg, account_id, amount_minor, "
	               "currency) FROM STDIN",
	               "insert postings");
}

static enum store_rc
write_balances(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *a = s->arr;
	const char *vals[2];
	PGresult *r;
	enum store_rc rc;
	size_t i;

	arr_start(&a[0]);
	arr_start(&a[1]);
	for (i = 0; i < b->n_deltas; i++) {
		arr_i64(&a[0], b->deltas[i].account_id);
		arr_i64(&a[1], b->deltas[i].delta_minor);
	}
	vals[0] = arr_end(&a[0]);
	vals[1] = arr_end(&a[1]);
	if ((rc = pg_run(s, P_UPD_BALANCES, 2, vals, PGRES_COMMAND_OK, &r,
	                 "update balances")) != STORE_OK)
		return rc;
	/* every delta's account was locked by accounts_load */
	if (strtoull(PQcmdTuples(r), NULL, 10) != b->n_deltas)
		rc = store_fail(&s->base, STORE_FAIL,
		                "update balances: %s of %zu rows",
		                PQcmdTuples(r), b->n_deltas);
	PQclear(r);
	return rc;
}

static enum store_rc
write_usage(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *a = s->arr;
	const char *vals[7];
	size_t i;

	usage_key_arrays(s, b->usage, b->n_usage, vals);
	arr_start(&a[5]);
	arr_start(&a[6]);
	for (i = 0; i < b->n_usage; i++) {
		arr_i64(&a[5], b->usage[i].amount_minor);
		arr_i64(&a[6], b->usage[i].count);
	}
	vals[5] = arr_end(&a[5]);
	vals[6] = arr_end(&a[6]);
	return pg_run(s, P_UPSERT_USAGE, 7, vals, PGRES_COMMAND_OK, NULL,
	              "upsert usage");
}

static enum store_rc
write_idem(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *c = &s->copy;
	size_t i;

	c->len = 0;
	for (i = 0; i < b->n_idem; i++) {
		const struct store_idem *d = &b->idem[i];

		cp_text(c, d->key, '\t');
		cp_bytea(c, d->hash, LEDGER_HASH_LEN, '\t');
		cp_i64(c, d->rc, '\t');
		cp_i64_or_null(c, d->txn_id, '\t');
		cp_i64(c, d->created_ms, '\n');
	}
	return cp_send(s,
	               "COPY idem (key, hash, rc, txn_id, created_ms) "
	               "FROM STDIN",
	               "insert idem");
}

static enum store_rc
write_pos_txns(struct store_pg *s, const struct store_batch *b)
{
	struct pg_arr *c = &s->copy;
	size_t i;

	c->len = 0;
	for (i = 0; i < b->n_pos_txns; i++) {
		const struct store_pos_txn *p = &b->pos_txns[i];

		cp_text(c, p->terminal_id, '\t');
		cp_bytea(c, p->txn_id, STORE_POS_TXN_ID_LEN, '\t');
		cp_i64(c, p->type, '\t');
		cp_raw(c, p->is_advice ? "t\t" : "f\t", 2);
		cp_i64(c, p->currency, '\t');
		cp_i64(c, p->amount_minor, '\t');
		cp_text(c, p->counterparty, '\t');
		cp_i64(c, p->local_time_ms, '\t');
		cp_i64(c, p->rc, '\t');
		cp_i64_or_null(c, p->ledger_txn_id, '\t');
		cp_i64(c, p->created_ms, '\n');
	}
	return cp_send(s,
	               "COPY pos_txns (terminal_id, txn_id, type, is_advice, "
	               "currency, amount_minor, counterparty, local_time_ms, "
	               "rc, ledger_txn_id, created_ms) FROM STDIN",
	               "insert pos_txns");
}

/*
 * Provider payment updates u[0..n) (store.h: store_prov_update), inside
 * the caller's transaction: one P_PROV_APPLY per run of distinct payment
 * ids, so a payment updated twice sees its first update, as it would row
 * by row.  An illegal edge is FAIL before anything is written (the
 * database trigger would refuse it too); a row not in (from_state,
 * expect_call) is CONFLICT, and the caller rolls back what the others
 * wrote.
 */
/* The resolution u carries (u->resolution), inside the caller's
 * transaction. */
static enum store_rc
resolution_insert(struct store_pg *s, const struct store_prov_update *u,
                  int64_t now_ms)
{
	const struct store_prov_resolution *r = u->resolution;
	char b[3][24], hex[2 * sizeof r->req_hash + 1];
	const char *vals[8];

	util_hex(hex, r->req_hash, sizeof r->req_hash);
	vals[0] = fmt_i64(b[0], u->payment_id);
	vals[1] = fmt_i64(b[1], r->outcome);
	vals[2] = r->actor;
	vals[3] = r->evidence;
	vals[4] = r->provider_ref;
	vals[5] = r->idem_key;
	vals[6] = hex;
	vals[7] = fmt_i64(b[2], now_ms);
	return pg_run(s, P_RES_INSERT, 8, vals, PGRES_COMMAND_OK, NULL,
	              "prov resolution");
}

static enum store_rc
prov_apply(struct store_pg *s, const struct store_prov_update *u, size_t n,
           int64_t now_ms)
{
	struct pg_arr *a = s->arr;
	char nowbuf[24];
	const char *vals[15];
	size_t i, j, start, end;
	PGresult *r;
	enum store_rc rc;
	int64_t matched;
	int k;

	for (i = 0; i < n; i++)
		if (u[i].from_state != u[i].to_state &&
		    !payment_can_transition(u[i].from_state, u[i].to_state))
			return store_fail(&s->base, STORE_FAIL,
			                  "payment %lld: illegal payment "
			                  "transition %s -> %s",
			                  (long long)u[i].payment_id,
			                  payment_state_name(u[i].from_state),
			                  payment_state_name(u[i].to_state));
	vals[14] = fmt_i64(nowbuf, now_ms);
	for (start = 0; start < n; start = end) {
		/* the longest run of distinct ids from start */
		for (end = start + 1; end < n; end++) {
			for (j = start; j < end; j++)
				if (u[j].payment_id == u[end].payment_id)
					break;
			if (j < end)
				break;
		}
		for (k = 0; k < 14; k++)
			arr_start(&a[k]);
		for (i = start; i < end; i++) {
			const struct store_prov_update *x = &u[i];

			arr_i64(&a[0], x->payment_id);
			arr_i64(&a[1], x->from_state);
			arr_i64(&a[2], x->to_state);
			arr_text(&a[3], x->reason != NULL ? x->reason : "");
			arr_i64(&a[4], x->expect_call);
			arr_i64(&a[5], x->call_state);
			arr_i64(&a[6], x->send_attempts);
			arr_i64(&a[7], x->checks);
			arr_i64(&a[8], x->next_at_ms);
			arr_text(&a[9], x->provider_ref);
			arr_text(&a[10], x->result_code);
			arr_text(&a[11], x->result_desc);
			arr_text(&a[12], x->receipt);
			arr_i64(&a[13], x->txn_id);
		}
		for (k = 0; k < 14; k++)
			vals[k] = arr_end(&a[k]);
		if ((rc = pg_run(s, P_PROV_APPLY, 15, vals, PGRES_TUPLES_OK,
		                 &r, "prov update")) != STORE_OK)
			return rc;
		matched = col_i64(r, 0, 0);
		PQclear(r);
		if (matched != (int64_t)(end - start))
			return store_fail(&s->base, STORE_CONFLICT,
			                  "prov update: %lld of %zu payments "
			                  "in the expected state",
			                  (long long)matched, end - start);
		for (i = start; i < end; i++)
			if (u[i].resolution != NULL &&
			    (rc = resolution_insert(s, &u[i], now_ms)) !=
			            STORE_OK)
				return rc;
	}
	/* the customer's next step: rare (an initiating answer), one
	 * statement each, in the same transaction */
	for (i = 0; i < n; i++) {
		char idbuf[24];

		if (u[i].next_step == NULL && u[i].next_text == NULL &&
		    u[i].next_url == NULL)
			continue;
		vals[0] = fmt_i64(idbuf, u[i].payment_id);
		vals[1] = u[i].next_step;
		vals[2] = u[i].next_text;
		vals[3] = u[i].next_url;
		if ((rc = pg_run(s, P_PROV_NEXT, 4, vals, PGRES_COMMAND_OK,
		                 &r, "prov next step")) != STORE_OK)
			return rc;
		PQclear(r);
	}
	return STORE_OK;
}

static enum store_rc prov_insert(struct store_pg *s, struct store_prov *p);

static enum store_rc
pg_batch_write(struct store *st, const struct store_batch *b)
{
	struct store_pg *s = PG(st);
	enum store_rc rc;
	size_t i;

	/* txns before postings (foreign key); a duplicate key or a second
	 * reversal of one target is 23505: CONFLICT */
	if (b->n_txns > 0 && (rc = write_txns(s, b)) != STORE_OK)
		return rc;
	if (b->n_postings > 0 && (rc = write_postings(s, b)) != STORE_OK)
		return rc;
	if (b->n_deltas > 0 && (rc = write_balances(s, b)) != STORE_OK)
		return rc;
	if (b->n_usage > 0 && (rc = write_usage(s, b)) != STORE_OK)
		return rc;
	if (b->n_idem > 0 && (rc = write_idem(s, b)) != STORE_OK)
		return rc;
	if (b->n_pos_txns > 0 && (rc = write_pos_txns(s, b)) != STORE_OK)
		return rc;
	/* after txns: payments.txn_id refers to them */
	if (b->n_prov > 0 &&
	    (rc = prov_apply(s, b->prov, b->n_prov, b->now_ms)) != STORE_OK)
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
pg_account_create(struct store *st, struct ledger_account *a)
{
	struct store_pg *s = PG(st);
	char b[5][24];
	const char *vals[7];
	PGresult *r;
	enum store_rc rc;

	vals[0] = a->code;
	vals[1] = fmt_i64(b[0], a->type);
	vals[2] = fmt_i64(b[1], a->currency);
	vals[3] = a->has_floor ? "1" : "0";
	vals[4] = fmt_i64(b[2], a->floor_minor);
	vals[5] = a->is_closed ? "1" : "0";
	vals[6] = fmt_i64(b[3], a->created_ms);
	if ((rc = pg_run(s, P_ACCT_INSERT, 7, vals, PGRES_TUPLES_OK, &r,
	                 "create account")) != STORE_OK)
		return rc;
	a->id = col_i64(r, 0, 0);
	a->balance_minor = 0;
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
account_one(struct store_pg *s, enum pg_stmt_id id, const char *val,
            struct ledger_account *out)
{
	const char *vals[1] = {val};
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, id, 1, vals, PGRES_TUPLES_OK, &r, "account")) !=
	    STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK)
		row_account(r, 0, out);
	PQclear(r);
	return rc;
}

static enum store_rc
pg_account_by_code(struct store *st, const char *code,
                   struct ledger_account *out)
{
	return account_one(PG(st), P_ACCT_BY_CODE, code, out);
}

static enum store_rc
pg_account_by_id(struct store *st, int64_t id, struct ledger_account *out)
{
	char b[24];

	return account_one(PG(st), P_ACCT_BY_ID, fmt_i64(b, id), out);
}

static enum store_rc
pg_account_list(struct store *st, store_account_fn fn, void *arg)
{
	struct store_pg *s = PG(st);
	struct ledger_account a;
	PGresult *r;
	enum store_rc rc;
	int row;

	if ((rc = pg_run(s, P_ACCT_LIST, 0, NULL, PGRES_TUPLES_OK, &r,
	                 "account_list")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r); row++) {
		row_account(r, row, &a);
		if (fn(arg, &a) != 0)
			break;
	}
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_idem_lookup(struct store *st, const char *key, struct store_idem *out)
{
	enum store_rc rc = pg_idem_get(st, &key, 1, out);

	if (rc == STORE_OK && out->key[0] == '\0')
		return STORE_NOT_FOUND;
	return rc;
}

static enum store_rc
pg_idem_purge(struct store *st, int64_t before_ms, int64_t *n_deleted)
{
	struct store_pg *s = PG(st);
	char b[24];
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;

	vals[0] = fmt_i64(b, before_ms);
	if ((rc = pg_run(s, P_IDEM_PURGE, 1, vals, PGRES_COMMAND_OK, &r,
	                 "idem_purge")) != STORE_OK)
		return rc;
	*n_deleted = strtoll(PQcmdTuples(r), NULL, 10);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_limit_set(struct store *st, const struct ledger_limit_rule *r)
{
	char b[6][24];
	const char *vals[7];

	vals[0] = fmt_i64(b[0], r->subject_kind);
	vals[1] = r->subject;
	vals[2] = fmt_i64(b[1], r->currency);
	vals[3] = fmt_i64(b[2], r->per_txn_max);
	vals[4] = fmt_i64(b[3], r->daily_max);
	vals[5] = fmt_i64(b[4], r->velocity_max);
	vals[6] = fmt_i64(b[5], r->velocity_window_s);
	return pg_run(PG(st), P_LIMIT_SET, 7, vals, PGRES_COMMAND_OK, NULL,
	              "limit_set");
}

static enum store_rc
pg_limit_list(struct store *st, struct ledger_limit_rule **out, size_t *n)
{
	struct store_pg *s = PG(st);
	struct ledger_limit_rule *v;
	PGresult *r;
	enum store_rc rc;
	int row;

	if ((rc = pg_run(s, P_LIMIT_LIST, 0, NULL, PGRES_TUPLES_OK, &r,
	                 "limit_list")) != STORE_OK)
		return rc;
	v = xcalloc(PQntuples(r) > 0 ? (size_t)PQntuples(r) : 1, sizeof *v);
	for (row = 0; row < PQntuples(r); row++) {
		struct ledger_limit_rule *l = &v[row];

		l->subject_kind = (uint8_t)col_i64(r, row, 0);
		strlcpy_s(l->subject, PQgetvalue(r, row, 1),
		          sizeof l->subject);
		l->currency = (uint16_t)col_i64(r, row, 2);
		l->per_txn_max = col_i64(r, row, 3);
		l->daily_max = col_i64(r, row, 4);
		l->velocity_max = (int32_t)col_i64(r, row, 5);
		l->velocity_window_s = (int32_t)col_i64(r, row, 6);
	}
	*out = v;
	*n = (size_t)PQntuples(r);
	PQclear(r);
	return STORE_OK;
}

/* -------------------------------------------------------------- payments */

static enum store_rc
pg_payment_create(struct store *st, struct payment *p)
{
	struct store_pg *s = PG(st);
	char b[4][24];
	const char *vals[5];
	PGresult *r;
	enum store_rc rc;

	vals[0] = p->ref;
	vals[1] = fmt_i64(b[0], p->currency);
	vals[2] = fmt_i64(b[1], p->amount_minor);
	vals[3] = fmt_i64(b[2], p->txn_id);
	vals[4] = fmt_i64(b[3], p->created_ms);
	if ((rc = pg_run(s, P_PAY_CREATE, 5, vals, PGRES_TUPLES_OK, &r,
	                 "create payment")) != STORE_OK)
		return rc;
	p->id = col_i64(r, 0, 0);
	p->state = PAY_CREATED;
	p->updated_ms = p->created_ms;
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_payment_transition(struct store *st, int64_t id, uint8_t from, uint8_t to,
                      const char *reason, int64_t now_ms)
{
	struct store_pg *s = PG(st);
	char b[4][24];
	const char *vals[5];
	PGresult *r;
	enum store_rc rc;
	int n;

	if (!payment_can_transition(from, to))
		return store_fail(st, STORE_FAIL,
		                  "illegal payment transition %s -> %s",
		                  payment_state_name(from),
		                  payment_state_name(to));
	vals[0] = fmt_i64(b[0], id);
	vals[1] = fmt_i64(b[1], from);
	vals[2] = fmt_i64(b[2], to);
	vals[3] = fmt_i64(b[3], now_ms);
	vals[4] = reason != NULL ? reason : "";
	if ((rc = pg_run(s, P_PAY_TRANSITION, 5, vals, PGRES_TUPLES_OK, &r,
	                 "payment transition")) != STORE_OK)
		return rc;
	n = PQntuples(r);
	PQclear(r);
	if (n != 1) {
		struct payment p;

		/* not found, or not in state `from` */
		rc = st->ops->payment_get(st, id, &p);
		return rc == STORE_OK ? STORE_CONFLICT : rc;
	}
	return STORE_OK;
}

/* ------------------------------------------------------ POS provisioning */

static void
row_agent(const PGresult *r, int row, int o, struct store_agent *a)
{
	memset(a, 0, sizeof *a);
	a->id = col_i64(r, row, o);
	strlcpy_s(a->code, PQgetvalue(r, row, o + 1), sizeof a->code);
	a->float_account_id = col_i64(r, row, o + 2);
	a->status = store_pos_status_parse(PQgetvalue(r, row, o + 3));
	a->created_ms = col_i64(r, row, o + 4);
}

/* A merchant row (MERCHANT_COLS from column o). */
static void
row_merchant(const PGresult *r, int row, int o, struct store_merchant *m)
{
	memset(m, 0, sizeof *m);
	m->id = col_i64(r, row, o);
	strlcpy_s(m->code, PQgetvalue(r, row, o + 1), sizeof m->code);
	m->payable_account_id = col_i64(r, row, o + 2);
	m->created_ms = col_i64(r, row, o + 3);
}

/* A terminal row (TERM_COLS); -1 if its wrapped key has a bad size. */
static int
row_terminal(const PGresult *r, int row, struct store_terminal *t)
{
	memset(t, 0, sizeof *t);
	strlcpy_s(t->id, PQgetvalue(r, row, 0), sizeof t->id);
	t->agent_id = col_i64(r, row, 1);
	if (unhex(t->key_wrapped, PQgetvalue(r, row, 2),
	          STORE_KEY_WRAPPED_LEN) != 0)
		return -1;
	t->status = store_pos_status_parse(PQgetvalue(r, row, 3));
	t->created_ms = col_i64(r, row, 4);
	row_agent(r, row, 5, &t->agent);
	row_merchant(r, row, 10, &t->merchant);
	t->merchant_id = t->merchant.id;
	return 0;
}

static enum store_rc
pg_agent_create(struct store *st, struct store_agent *a)
{
	struct store_pg *s = PG(st);
	char b[2][24];
	const char *vals[4];
	PGresult *r;
	enum store_rc rc;

	vals[0] = a->code;
	vals[1] = fmt_i64(b[0], a->float_account_id);
	vals[2] = store_pos_status_name(a->status);
	vals[3] = fmt_i64(b[1], a->created_ms);
	if ((rc = pg_run(s, P_AGENT_INSERT, 4, vals, PGRES_TUPLES_OK, &r,
	                 "create agent")) != STORE_OK)
		return rc;
	a->id = col_i64(r, 0, 0);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_agent_get(struct store *st, const char *code, struct store_agent *out)
{
	struct store_pg *s = PG(st);
	const char *vals[1] = {code};
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, P_AGENT_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "agent")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK)
		row_agent(r, 0, 0, out);
	PQclear(r);
	return rc;
}

static enum store_rc
pg_merchant_create(struct store *st, struct store_merchant *m)
{
	struct store_pg *s = PG(st);
	char b[2][24];
	const char *vals[3];
	PGresult *r;
	enum store_rc rc;

	vals[0] = m->code;
	vals[1] = fmt_i64(b[0], m->payable_account_id);
	vals[2] = fmt_i64(b[1], m->created_ms);
	if ((rc = pg_run(s, P_MERCHANT_INSERT, 3, vals, PGRES_TUPLES_OK, &r,
	                 "create merchant")) != STORE_OK)
		return rc;
	m->id = col_i64(r, 0, 0);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_merchant_get(struct store *st, const char *code, struct store_merchant *out)
{
	struct store_pg *s = PG(st);
	const char *vals[1] = {code};
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, P_MERCHANT_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "merchant")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK)
		row_merchant(r, 0, 0, out);
	PQclear(r);
	return rc;
}

/* ------------------------------------------------------ /rpc partner keys */

static enum store_rc
pg_rpc_key_create(struct store *st, struct store_rpc_key *k)
{
	struct store_pg *s = PG(st);
	char hex[2 * STORE_RPC_KEY_HASH_LEN + 1], b[2][24];
	const char *vals[5];
	PGresult *r;
	enum store_rc rc;

	util_hex(hex, k->key_hash, STORE_RPC_KEY_HASH_LEN);
	vals[0] = k->name;
	vals[1] = hex;
	vals[2] = fmt_i64(b[0], k->scope_kind);
	vals[3] = k->scope;
	vals[4] = fmt_i64(b[1], k->created_ms);
	if ((rc = pg_run(s, P_RPC_KEY_INSERT, 5, vals, PGRES_TUPLES_OK, &r,
	                 "create rpc key")) != STORE_OK)
		return rc;
	k->id = col_i64(r, 0, 0);
	PQclear(r);
	return STORE_OK;
}

/* A P_RPC_KEY_GET / _LIST row (no hash). */
static void
row_rpc_key(const PGresult *r, int row, struct store_rpc_key *k)
{
	memset(k, 0, sizeof *k);
	k->id = col_i64(r, row, 0);
	strlcpy_s(k->name, PQgetvalue(r, row, 1), sizeof k->name);
	k->scope_kind = (uint8_t)col_i64(r, row, 2);
	strlcpy_s(k->scope, PQgetvalue(r, row, 3), sizeof k->scope);
	k->is_revoked = col_i64(r, row, 4) != 0;
	k->created_ms = col_i64(r, row, 5);
}

static enum store_rc
pg_rpc_key_get(struct store *st, const uint8_t *key_hash,
               struct store_rpc_key *out)
{
	struct store_pg *s = PG(st);
	char hex[2 * STORE_RPC_KEY_HASH_LEN + 1];
	const char *vals[1] = {hex};
	PGresult *r;
	enum store_rc rc;

	util_hex(hex, key_hash, STORE_RPC_KEY_HASH_LEN);
	if ((rc = pg_run(s, P_RPC_KEY_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "rpc key")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK) {
		row_rpc_key(r, 0, out);
		memcpy(out->key_hash, key_hash, STORE_RPC_KEY_HASH_LEN);
	}
	PQclear(r);
	return rc;
}

static enum store_rc
pg_rpc_key_revoke(struct store *st, const char *name)
{
	struct store_pg *s = PG(st);
	const char *vals[1] = {name};
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, P_RPC_KEY_REVOKE, 1, vals, PGRES_TUPLES_OK, &r,
	                 "revoke rpc key")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(r);
	return rc;
}

static enum store_rc
pg_rpc_key_list(struct store *st, store_rpc_key_fn fn, void *arg)
{
	struct store_pg *s = PG(st);
	struct store_rpc_key k;
	PGresult *r;
	enum store_rc rc;
	int row;

	if ((rc = pg_run(s, P_RPC_KEY_LIST, 0, NULL, PGRES_TUPLES_OK, &r,
	                 "rpc_key_list")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r); row++) {
		row_rpc_key(r, row, &k);
		if (fn(arg, &k) != 0)
			break;
	}
	PQclear(r);
	return STORE_OK;
}

/* ------------------------------------------------------- POS transactions */

static enum store_rc
pg_pos_txn_get(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, struct store_pos_txn *out)
{
	struct store_pg *s = PG(st);
	char hex[2 * STORE_POS_TXN_ID_LEN + 1];
	const char *vals[2] = {terminal_id, hex};
	PGresult *r;
	enum store_rc rc;

	util_hex(hex, txn_id, STORE_POS_TXN_ID_LEN);
	if ((rc = pg_run(s, P_POS_GET, 2, vals, PGRES_TUPLES_OK, &r,
	                 "pos_txn")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK) {
		memset(out, 0, sizeof *out);
		strlcpy_s(out->terminal_id, terminal_id,
		          sizeof out->terminal_id);
		memcpy(out->txn_id, txn_id, STORE_POS_TXN_ID_LEN);
		out->type = (uint16_t)col_i64(r, 0, 0);
		out->is_advice = col_i64(r, 0, 1) != 0;
		out->currency = (uint16_t)col_i64(r, 0, 2);
		out->amount_minor = col_i64(r, 0, 3);
		strlcpy_s(out->counterparty, PQgetvalue(r, 0, 4),
		          sizeof out->counterparty);
		out->local_time_ms = col_i64(r, 0, 5);
		out->rc = (uint8_t)col_i64(r, 0, 6);
		out->ledger_txn_id = col_i64(r, 0, 7);
		out->created_ms = col_i64(r, 0, 8);
		out->reversed_by = col_i64(r, 0, 9);
		out->reversed_ms = col_i64(r, 0, 10);
	}
	PQclear(r);
	return rc;
}

static enum store_rc
pg_pos_totals(struct store *st, const char *terminal_id, int64_t batch_no,
              struct store_pos_total *out, size_t cap, size_t *n)
{
	struct store_pg *s = PG(st);
	char b[24];
	const char *vals[2];
	PGresult *r;
	enum store_rc rc;
	int i;

	*n = 0;
	vals[0] = terminal_id;
	vals[1] = fmt_i64(b, batch_no);
	if ((rc = pg_run(s, P_POS_TOTALS, 2, vals, PGRES_TUPLES_OK, &r,
	                 "pos_totals")) != STORE_OK)
		return rc;
	for (i = 0; i < PQntuples(r); i++) {
		if (*n < cap) {
			struct store_pos_total *t = &out[*n];

			t->type = (uint16_t)col_i64(r, i, 0);
			t->currency = (uint16_t)col_i64(r, i, 1);
			t->count = col_i64(r, i, 2);
			t->sum_minor = col_i64(r, i, 3);
		}
		(*n)++;
	}
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_pos_batch_close(struct store *st, const char *terminal_id,
                   int64_t batch_no, int64_t now_ms, int64_t *closed_ms,
                   bool *is_repeat)
{
	struct store_pg *s = PG(st);
	char b[2][24];
	const char *vals[3];
	PGresult *r;
	enum store_rc rc;

	vals[0] = terminal_id;
	vals[1] = fmt_i64(b[0], batch_no);
	vals[2] = fmt_i64(b[1], now_ms);
	if ((rc = pg_run(s, P_BATCH_CLOSE, 3, vals, PGRES_TUPLES_OK, &r,
	                 "pos_batch_close")) != STORE_OK)
		return rc;
	if (PQntuples(r) != 1) {
		/* a concurrent first close of the same batch, not visible
		 * to this statement's snapshot yet */
		PQclear(r);
		return store_fail(st, STORE_RETRY, "pos_batch_close: race");
	}
	*closed_ms = col_i64(r, 0, 0);
	*is_repeat = col_i64(r, 0, 1) != 0;
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_terminal_create(struct store *st, const struct store_terminal *t)
{
	struct store_pg *s = PG(st);
	char b[3][24], hex[2 * STORE_KEY_WRAPPED_LEN + 1];
	const char *vals[6];
	enum store_rc rc;

	util_hex(hex, t->key_wrapped, STORE_KEY_WRAPPED_LEN);
	vals[0] = t->id;
	vals[1] = fmt_i64(b[0], t->agent_id);
	vals[2] = hex;
	vals[3] = store_pos_status_name(t->status);
	vals[4] = fmt_i64(b[1], t->created_ms);
	vals[5] = fmt_i64(b[2], t->merchant_id);
	rc = pg_run(s, P_TERM_INSERT, 6, vals, PGRES_COMMAND_OK, NULL,
	            "create terminal");
	explicit_bzero(hex, sizeof hex);
	return rc;
}

static enum store_rc
pg_terminal_get(struct store *st, const char *id, struct store_terminal *out)
{
	struct store_pg *s = PG(st);
	const char *vals[1] = {id};
	struct store_terminal t;
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, P_TERM_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "terminal")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK && row_terminal(r, 0, &t) != 0)
		rc = store_fail(st, STORE_FAIL, "terminal %s: bad key_wrapped",
		                id);
	else if (rc == STORE_OK)
		*out = t;
	PQclear(r);
	explicit_bzero(&t, sizeof t);
	return rc;
}

/* One statement `UPDATE ... SET status = $2 WHERE <key> = $1 RETURNING
 * id` (agents, terminals); NOT_FOUND if no row has that key. */
static enum store_rc
set_status(struct store *st, enum pg_stmt_id id, const char *key,
           uint8_t status, const char *what)
{
	struct store_pg *s = PG(st);
	const char *vals[2];
	PGresult *r;
	enum store_rc rc;

	vals[0] = key;
	vals[1] = store_pos_status_name(status);
	if ((rc = pg_run(s, id, 2, vals, PGRES_TUPLES_OK, &r, what)) !=
	    STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(r);
	return rc;
}

static enum store_rc
pg_agent_set_status(struct store *st, const char *code, uint8_t status)
{
	return set_status(st, P_AGENT_STATUS, code, status, "agent status");
}

static enum store_rc
pg_terminal_set_status(struct store *st, const char *id, uint8_t status)
{
	return set_status(st, P_TERM_STATUS, id, status, "terminal status");
}

static enum store_rc
pg_terminal_set_key(struct store *st, const char *id,
                    const uint8_t *key_wrapped)
{
	struct store_pg *s = PG(st);
	char hex[2 * STORE_KEY_WRAPPED_LEN + 1];
	const char *vals[2] = {id, hex};
	PGresult *r;
	enum store_rc rc;

	util_hex(hex, key_wrapped, STORE_KEY_WRAPPED_LEN);
	if ((rc = pg_run(s, P_TERM_KEY, 2, vals, PGRES_TUPLES_OK, &r,
	                 "terminal key")) != STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(r);
	return rc;
}

static enum store_rc
pg_terminal_list(struct store *st, store_terminal_fn fn, void *arg)
{
	struct store_pg *s = PG(st);
	struct store_terminal t;
	PGresult *r;
	enum store_rc rc;
	int row;

	if ((rc = pg_run(s, P_TERM_LIST, 0, NULL, PGRES_TUPLES_OK, &r,
	                 "terminal_list")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r); row++) {
		if (row_terminal(r, row, &t) != 0)
			continue; /* verify-grade damage; listing goes on */
		if (fn(arg, &t) != 0)
			break;
	}
	explicit_bzero(&t, sizeof t);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_payment_get(struct store *st, int64_t id, struct payment *out)
{
	struct store_pg *s = PG(st);
	char b[24];
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;

	vals[0] = fmt_i64(b, id);
	if ((rc = pg_run(s, P_PAY_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "payment_get")) != STORE_OK)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return STORE_NOT_FOUND;
	}
	memset(out, 0, sizeof *out);
	out->id = col_i64(r, 0, 0);
	strlcpy_s(out->ref, PQgetvalue(r, 0, 1), sizeof out->ref);
	out->state = (uint8_t)col_i64(r, 0, 2);
	out->currency = (uint16_t)col_i64(r, 0, 3);
	out->amount_minor = col_i64(r, 0, 4);
	out->txn_id = col_i64(r, 0, 5);
	out->created_ms = col_i64(r, 0, 6);
	out->updated_ms = col_i64(r, 0, 7);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_payment_events(struct store *st, int64_t id, struct payment_event *out,
                  size_t cap, size_t *n)
{
	struct store_pg *s = PG(st);
	char b[2][24];
	const char *vals[2];
	PGresult *r;
	enum store_rc rc;
	int row;

	*n = 0;
	vals[0] = fmt_i64(b[0], id);
	vals[1] = fmt_i64(b[1], (int64_t)MIN(cap, (size_t)INT32_MAX));
	if ((rc = pg_run(s, P_PAY_EVENTS, 2, vals, PGRES_TUPLES_OK, &r,
	                 "payment_events")) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r) && *n < cap; row++) {
		struct payment_event *e = &out[(*n)++];

		e->from = (uint8_t)col_i64(r, row, 0);
		e->to = (uint8_t)col_i64(r, row, 1);
		strlcpy_s(e->reason, PQgetvalue(r, row, 2), sizeof e->reason);
		e->at_ms = col_i64(r, row, 3);
	}
	PQclear(r);
	return STORE_OK;
}

/* ------------------------------------------------- provider payments */

/* A PROV_COLS row; -1 if its req_hash has a bad size. */
static int
row_prov(const PGresult *r, int row, struct store_prov *o)
{
	memset(o, 0, sizeof *o);
	o->pay.id = col_i64(r, row, 0);
	strlcpy_s(o->pay.ref, PQgetvalue(r, row, 1), sizeof o->pay.ref);
	o->pay.state = (uint8_t)col_i64(r, row, 2);
	o->pay.currency = (uint16_t)col_i64(r, row, 3);
	o->pay.amount_minor = col_i64(r, row, 4);
	o->pay.txn_id = col_i64(r, row, 5);
	o->pay.created_ms = col_i64(r, row, 6);
	o->pay.updated_ms = col_i64(r, row, 7);
	o->kind = (uint8_t)col_i64(r, row, 8);
	strlcpy_s(o->provider, PQgetvalue(r, row, 9), sizeof o->provider);
	strlcpy_s(o->msisdn, PQgetvalue(r, row, 10), sizeof o->msisdn);
	o->clearing_account_id = col_i64(r, row, 11);
	o->target_account_id = col_i64(r, row, 12);
	strlcpy_s(o->client_ref, PQgetvalue(r, row, 13), sizeof o->client_ref);
	strlcpy_s(o->provider_ref, PQgetvalue(r, row, 14),
	          sizeof o->provider_ref);
	o->call_state = (uint8_t)col_i64(r, row, 15);
	o->send_attempts = (int32_t)col_i64(r, row, 16);
	o->checks = (int32_t)col_i64(r, row, 17);
	o->next_at_ms = col_i64(r, row, 18);
	o->deadline_ms = col_i64(r, row, 19);
	strlcpy_s(o->result_code, PQgetvalue(r, row, 20),
	          sizeof o->result_code);
	strlcpy_s(o->result_desc, PQgetvalue(r, row, 21),
	          sizeof o->result_desc);
	strlcpy_s(o->receipt, PQgetvalue(r, row, 22), sizeof o->receipt);
	o->hold_account_id = col_i64(r, row, 24);
	/* bill_payments (NULL for other kinds: 0 and "") */
	o->bill.source_account_id = col_i64(r, row, 25);
	strlcpy_s(o->bill.biller_code, PQgetvalue(r, row, 26),
	          sizeof o->bill.biller_code);
	strlcpy_s(o->bill.item_code, PQgetvalue(r, row, 27),
	          sizeof o->bill.item_code);
	strlcpy_s(o->bill.customer, PQgetvalue(r, row, 28),
	          sizeof o->bill.customer);
	strlcpy_s(o->bill.customer_name, PQgetvalue(r, row, 29),
	          sizeof o->bill.customer_name);
	o->fee_minor = col_i64(r, row, 30);
	o->fee_account_id = col_i64(r, row, 31);
	o->commission_minor = col_i64(r, row, 32);
	o->reverses_id = col_i64(r, row, 33);
	strlcpy_s(o->reverses_ref, PQgetvalue(r, row, 34),
	          sizeof o->reverses_ref);
	strlcpy_s(o->reverses_receipt, PQgetvalue(r, row, 35),
	          sizeof o->reverses_receipt);
	strlcpy_s(o->next_step, PQgetvalue(r, row, 36), sizeof o->next_step);
	strlcpy_s(o->next_text, PQgetvalue(r, row, 37), sizeof o->next_text);
	strlcpy_s(o->next_url, PQgetvalue(r, row, 38), sizeof o->next_url);
	strlcpy_s(o->pos_terminal, PQgetvalue(r, row, 39),
	          sizeof o->pos_terminal);
	strlcpy_s(o->pos_agent, PQgetvalue(r, row, 40), sizeof o->pos_agent);
	strlcpy_s(o->pos_merchant, PQgetvalue(r, row, 41),
	          sizeof o->pos_merchant);
	return unhex(o->req_hash, PQgetvalue(r, row, 23), sizeof o->req_hash);
}

/* At most one provider payment by statement id. */
static enum store_rc
prov_one(struct store_pg *s, enum pg_stmt_id id, int n,
         const char *const *vals, struct store_prov *out)
{
	struct store_prov p;
	PGresult *r;
	enum store_rc rc;

	if ((rc = pg_run(s, id, n, vals, PGRES_TUPLES_OK, &r, "prov_get")) !=
	    STORE_OK)
		return rc;
	rc = PQntuples(r) == 1 ? STORE_OK : STORE_NOT_FOUND;
	if (rc == STORE_OK && row_prov(r, 0, &p) != 0)
		rc = store_fail(&s->base, STORE_FAIL,
		                "provider payment %s: bad req_hash",
		                PQgetvalue(r, 0, 1));
	else if (rc == STORE_OK)
		*out = p;
	PQclear(r);
	return rc;
}

static enum store_rc
pg_prov_get(struct store *st, const char *ref, const char *provider,
            const char *provider_ref, const char *client_ref,
            struct store_prov *out)
{
	const char *vals[2];

	if (ref != NULL) {
		vals[0] = ref;
		return prov_one(PG(st), P_PROV_BY_REF, 1, vals, out);
	}
	vals[0] = provider != NULL ? provider : "";
	if (provider_ref != NULL) {
		vals[1] = provider_ref;
		return prov_one(PG(st), P_PROV_BY_PREF, 2, vals, out);
	}
	vals[1] = client_ref != NULL ? client_ref : "";
	return prov_one(PG(st), P_PROV_BY_CREF, 2, vals, out);
}

/* Inserts p (payment, first event, provider row) in one statement;
 * sets p->pay.id.  CONFLICT on a unique key. */
static enum store_rc
prov_insert(struct store_pg *s, struct store_prov *p)
{
	char b[18][24], hex[2 * sizeof p->req_hash + 1];
	const char *vals[28];
	int f; /* the fee columns' first parameter: $20 or, for a bill, $25 */
	bool is_bill = p->kind == STORE_PROV_BILL;
	PGresult *r;
	enum store_rc rc;

	vals[0] = p->pay.ref;
	vals[1] = fmt_i64(b[0], p->pay.currency);
	vals[2] = fmt_i64(b[1], p->pay.amount_minor);
	vals[3] = fmt_i64(b[2], p->pay.created_ms);
	vals[4] = fmt_i64(b[3], p->kind);
	vals[5] = p->provider;
	vals[6] = p->msisdn;
	vals[7] = fmt_i64(b[4], p->clearing_account_id);
	vals[8] = fmt_i64(b[5], p->target_account_id);
	vals[9] = p->client_ref;
	vals[10] = p->provider_ref;
	vals[11] = fmt_i64(b[6], p->call_state);
	vals[12] = fmt_i64(b[7], p->send_attempts);
	vals[13] = fmt_i64(b[8], p->checks);
	vals[14] = fmt_i64(b[9], p->next_at_ms);
	vals[15] = fmt_i64(b[10], p->deadline_ms);
	util_hex(hex, p->req_hash, sizeof p->req_hash);
	vals[16] = hex;
	vals[17] = fmt_i64(b[11], p->hold_account_id);
	vals[18] = fmt_i64(b[12], p->pay.txn_id);
	vals[19] = fmt_i64(b[13], p->bill.source_account_id);
	vals[20] = p->bill.biller_code;
	vals[21] = p->bill.item_code;
	vals[22] = p->bill.customer;
	vals[23] = p->bill.customer_name;
	f = is_bill ? 24 : 19;
	vals[f] = fmt_i64(b[14], p->fee_minor);
	vals[f + 1] = fmt_i64(b[15], p->fee_account_id);
	vals[f + 2] = fmt_i64(b[16], p->commission_minor);
	/* not a bill: $23, the reversed payment (docs/payments.md §3.2) */
	vals[f + 3] = fmt_i64(b[17], p->reverses_id);
	rc = pg_run(s, is_bill ? P_BILL_CREATE : P_PROV_CREATE,
	            is_bill ? f + 3 : f + 4, vals, PGRES_TUPLES_OK, &r,
	            "create prov_payment");
	if (rc == STORE_OK) {
		p->pay.id = col_i64(r, 0, 0);
		p->pay.state = PAY_CREATED;
		p->pay.updated_ms = p->pay.created_ms;
		PQclear(r);
	}
	if (rc != STORE_OK || p->pos.type == 0)
		return rc;
	/* the POS link: callers that set it hold a transaction */
	util_hex(hex, p->pos.txn_id, STORE_POS_TXN_ID_LEN);
	vals[0] = fmt_i64(b[0], p->pay.id);
	vals[1] = p->pos.terminal_id;
	vals[2] = hex;
	vals[3] = fmt_i64(b[1], p->pos.type);
	vals[4] = fmt_i64(b[2], p->pos.acked_ms);
	vals[5] = p->pos.is_advice ? "t" : "f";
	rc = pg_run(s, P_POS_PAY_INSERT, 6, vals, PGRES_COMMAND_OK, NULL,
	            "create pos_payment");
	if (rc != STORE_OK || p->pos.idem_key[0] == '\0')
		return rc;
	/* the txn id's ledger key, claimed (store.h store_pos_link) */
	util_hex(hex, p->req_hash, sizeof p->req_hash);
	vals[0] = p->pos.idem_key;
	vals[1] = hex;
	vals[2] = fmt_i64(b[0], LEDGER_IDEM_MISMATCH);
	vals[3] = fmt_i64(b[1], p->pay.created_ms);
	return pg_run(s, P_IDEM_CLAIM, 4, vals, PGRES_COMMAND_OK, NULL,
	              "claim pos key");
}

static enum store_rc
pg_prov_create(struct store *st, struct store_prov *p)
{
	struct store_pg *s = PG(st);
	enum store_rc rc, g;

	rc = prov_insert(s, p);
	if (rc == STORE_OK)
		return STORE_OK;
	if (rc != STORE_CONFLICT)
		return rc;
	/* a unique key exists: the ref (a repeat: hand back the stored
	 * row), or (provider, client_ref / provider_ref) of another ref */
	g = pg_prov_get(st, p->pay.ref, NULL, NULL, NULL, p);
	if (g == STORE_NOT_FOUND)
		return store_fail(st, STORE_FAIL,
		                  "provider payment %s: a unique key is taken "
		                  "by another payment (client_ref %s, "
		                  "provider_ref %s) or ref is not a provider "
		                  "payment", p->pay.ref, p->client_ref,
		                  p->provider_ref);
	return g == STORE_OK ? STORE_CONFLICT : g;
}

/* ------------------------------------ POS-started provider payments */

static enum store_rc
pg_pos_pay_create(struct store *st, struct store_prov *p,
                  const struct store_pos_link *l)
{
	struct store_pg *s = PG(st);
	enum store_rc rc;

	p->pos = *l;
	if ((rc = pg_begin(st)) != STORE_OK)
		return rc;
	if ((rc = prov_insert(s, p)) != STORE_OK ||
	    (rc = pg_commit(st)) != STORE_OK)
		goto fail;
	return STORE_OK;
fail:
	pg_rollback(st);
	return rc == STORE_CONFLICT ? store_pos_pay_taken(st, p, l) : rc;
}

static enum store_rc
pg_pos_pay_get(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, struct store_prov *out,
               struct store_pos_link *link)
{
	struct store_pg *s = PG(st);
	char hex[2 * STORE_POS_TXN_ID_LEN + 1], b[24];
	const char *vals[2] = {terminal_id, hex};
	int64_t type, acked, is_advice;
	PGresult *r;
	enum store_rc rc;

	util_hex(hex, txn_id, STORE_POS_TXN_ID_LEN);
	if ((rc = pg_run(s, P_POS_PAY_LINK, 2, vals, PGRES_TUPLES_OK, &r,
	                 "pos_pay_get")) != STORE_OK)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return STORE_NOT_FOUND;
	}
	vals[0] = fmt_i64(b, col_i64(r, 0, 0));
	type = col_i64(r, 0, 1);
	acked = col_i64(r, 0, 2);
	is_advice = col_i64(r, 0, 3);
	PQclear(r);
	rc = prov_one(s, P_PROV_BY_ID, 1, vals, out);
	if (rc == STORE_NOT_FOUND)
		return store_fail(st, STORE_FAIL, "pos payment %s has no payment",
		                  b);
	if (rc != STORE_OK)
		return rc;
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
pg_pos_pay_results(struct store *st, const char *terminal_id,
                   struct store_prov *out, struct store_pos_link *links,
                   size_t cap, size_t *n)
{
	struct store_pg *s = PG(st);
	char b[24];
	const char *vals[2];
	PGresult *r;
	enum store_rc rc;
	int row, rows;

	*n = 0;
	if (cap == 0)
		return STORE_OK;
	vals[0] = terminal_id;
	vals[1] = fmt_i64(b, (int64_t)MIN(cap, (size_t)INT32_MAX));
	if ((rc = pg_run(s, P_POS_PAY_OPEN, 2, vals, PGRES_TUPLES_OK, &r,
	                 "pos_pay_results")) != STORE_OK)
		return rc;
	rows = PQntuples(r);
	for (row = 0; row < rows && (size_t)row < cap; row++) {
		struct store_pos_link *l = &links[row];

		memset(l, 0, sizeof *l);
		out[row].pay.id = col_i64(r, row, 0);
		strlcpy_s(l->terminal_id, terminal_id, sizeof l->terminal_id);
		if (unhex(l->txn_id, PQgetvalue(r, row, 1),
		          STORE_POS_TXN_ID_LEN) != 0) {
			PQclear(r);
			return store_fail(st, STORE_FAIL,
			                  "pos payment: bad txn_id");
		}
		l->type = (uint16_t)col_i64(r, row, 2);
	}
	PQclear(r);
	for (row = 0; row < rows && (size_t)row < cap; row++) {
		vals[0] = fmt_i64(b, out[row].pay.id);
		rc = prov_one(s, P_PROV_BY_ID, 1, vals, &out[row]);
		if (rc != STORE_OK)
			return rc == STORE_NOT_FOUND
			               ? store_fail(st, STORE_FAIL,
			                            "pos payment %s has no "
			                            "payment", b)
			               : rc;
	}
	*n = (size_t)row;
	return STORE_OK;
}

static enum store_rc
pg_pos_pay_ack(struct store *st, const char *terminal_id,
               const uint8_t *txn_id, int64_t now_ms)
{
	char hex[2 * STORE_POS_TXN_ID_LEN + 1], b[24];
	const char *vals[3] = {terminal_id, hex, b};

	util_hex(hex, txn_id, STORE_POS_TXN_ID_LEN);
	fmt_i64(b, now_ms);
	return pg_run(PG(st), P_POS_PAY_ACK, 3, vals, PGRES_COMMAND_OK, NULL,
	              "pos_pay_ack");
}

/* The PROV_COLS rows of r into out[0..cap) (*n of them); frees r. */
static enum store_rc
prov_rows(struct store *st, PGresult *r, struct store_prov *out, size_t cap,
          size_t *n)
{
	enum store_rc rc = STORE_OK;
	int row;

	for (row = 0; row < PQntuples(r) && *n < cap; row++)
		if (row_prov(r, row, &out[*n]) == 0)
			(*n)++;
		else
			rc = store_fail(st, STORE_FAIL,
			                "provider payment %s: bad req_hash",
			                PQgetvalue(r, row, 1));
	PQclear(r);
	return rc;
}

static enum store_rc
pg_prov_due(struct store *st, int64_t now_ms, int64_t lease_ms,
            struct store_prov *out, size_t cap, size_t *n)
{
	struct store_pg *s = PG(st);
	char b[3][24];
	const char *vals[3];
	PGresult *r;
	enum store_rc rc = STORE_OK;

	*n = 0;
	if (cap == 0)
		return STORE_OK;
	vals[0] = fmt_i64(b[0], now_ms);
	vals[1] = fmt_i64(b[1], (int64_t)MIN(cap, (size_t)INT32_MAX));
	vals[2] = fmt_i64(b[2], now_ms + lease_ms);
	if ((rc = pg_run(s, P_PROV_DUE, 3, vals, PGRES_TUPLES_OK, &r,
	                 "prov_due")) != STORE_OK)
		return rc;
	/* committed: the rows are ours until the lease ends */
	return prov_rows(st, r, out, cap, n);
}

static enum store_rc
pg_prov_update(struct store *st, const struct store_prov_update *u,
               int64_t now_ms)
{
	struct store_pg *s = PG(st);
	struct store_prov p;
	char b[24];
	const char *vals[1];
	enum store_rc rc, g;

	if (u->resolution == NULL) {
		/* one statement: its own transaction */
		rc = prov_apply(s, u, 1, now_ms);
	} else {
		/* the change and its resolution row: two statements, one
		 * transaction */
		if ((rc = pg_simple(s, "BEGIN", PGRES_COMMAND_OK, NULL,
		                    "begin")) != STORE_OK)
			return rc;
		rc = prov_apply(s, u, 1, now_ms);
		if (rc == STORE_OK)
			rc = pg_commit(st);
		if (rc != STORE_OK)
			pg_rollback(st);
	}
	if (rc != STORE_CONFLICT)
		return rc;
	vals[0] = fmt_i64(b, u->payment_id);
	g = prov_one(s, P_PROV_BY_ID, 1, vals, &p);
	if (g == STORE_OK)
		return store_fail(st, STORE_CONFLICT,
		                  "payment %lld: %s/%d, not %s/%d",
		                  (long long)u->payment_id,
		                  payment_state_name(p.pay.state), p.call_state,
		                  payment_state_name(u->from_state),
		                  u->expect_call);
	return g;
}

static enum store_rc
pg_prov_callback_add(struct store *st, const struct store_prov_callback *c)
{
	char b[2][24];
	const char *vals[6];

	vals[0] = c->provider;
	vals[1] = c->provider_ref;
	vals[2] = fmt_i64(b[0], c->payment_id);
	vals[3] = c->verdict;
	vals[4] = c->detail != NULL ? c->detail : "";
	vals[5] = fmt_i64(b[1], c->received_ms);
	return pg_run(PG(st), P_PROV_CB_INSERT, 6, vals, PGRES_COMMAND_OK,
	              NULL, "prov callback");
}

static enum store_rc
pg_prov_callback_count(struct store *st, const char *provider,
                       const char *provider_ref, const char *verdict,
                       int64_t *n)
{
	const char *vals[3] = {provider, provider_ref, verdict};
	PGresult *r;
	enum store_rc rc;

	*n = 0;
	if ((rc = pg_run(PG(st), P_PROV_CB_COUNT, 3, vals, PGRES_TUPLES_OK,
	                 &r, "prov callbacks")) != STORE_OK)
		return rc;
	*n = col_i64(r, 0, 0);
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_prov_unknown(struct store *st, int64_t after_id, struct store_prov *out,
                size_t cap, size_t *n)
{
	struct store_pg *s = PG(st);
	char b[2][24];
	const char *vals[2];
	PGresult *r;
	enum store_rc rc = STORE_OK;

	*n = 0;
	if (cap == 0)
		return STORE_OK;
	vals[0] = fmt_i64(b[0], after_id);
	vals[1] = fmt_i64(b[1], (int64_t)MIN(cap, (size_t)INT32_MAX));
	if ((rc = pg_run(s, P_PROV_UNKNOWN, 2, vals, PGRES_TUPLES_OK, &r,
	                 "prov_unknown")) != STORE_OK)
		return rc;
	return prov_rows(st, r, out, cap, n);
}

static enum store_rc
pg_prov_resolution_get(struct store *st, int64_t payment_id,
                       struct store_prov_resolution *out)
{
	struct store_pg *s = PG(st);
	char b[24];
	const char *vals[1];
	PGresult *r;
	enum store_rc rc;

	vals[0] = fmt_i64(b, payment_id);
	if ((rc = pg_run(s, P_RES_GET, 1, vals, PGRES_TUPLES_OK, &r,
	                 "prov_resolution_get")) != STORE_OK)
		return rc;
	if (PQntuples(r) != 1) {
		PQclear(r);
		return STORE_NOT_FOUND;
	}
	memset(out, 0, sizeof *out);
	out->payment_id = payment_id;
	out->outcome = (uint8_t)col_i64(r, 0, 0);
	strlcpy_s(out->actor, PQgetvalue(r, 0, 1), sizeof out->actor);
	strlcpy_s(out->evidence, PQgetvalue(r, 0, 2), sizeof out->evidence);
	strlcpy_s(out->provider_ref, PQgetvalue(r, 0, 3),
	          sizeof out->provider_ref);
	strlcpy_s(out->idem_key, PQgetvalue(r, 0, 4), sizeof out->idem_key);
	if (unhex(out->req_hash, PQgetvalue(r, 0, 5), sizeof out->req_hash))
		rc = store_fail(st, STORE_FAIL, "resolution %lld: bad "
		                "req_hash", (long long)payment_id);
	out->created_ms = col_i64(r, 0, 6);
	PQclear(r);
	return rc;
}

/* ------------------------------------------------------------- verify */

/* PostgreSQL-only checks, after the shared store_checks[]. */
static const struct store_check pg_checks[] = {
	/* a sequence behind the table would hand out taken ids */
	{"pg_txn_seq_behind",
	 "SELECT s.last_value, m.max_id FROM txn_id_seq s, "
	 "(SELECT COALESCE(MAX(id), 0) AS max_id FROM txns) m "
	 "WHERE m.max_id > 0 AND (NOT s.is_called OR s.last_value < m.max_id)"},
	{NULL, NULL},
};

static enum store_rc
verify_query(struct store_pg *s, const char *what, const char *sql,
             store_violation_fn fn, void *arg, size_t *n)
{
	PGresult *r = NULL;
	char detail[512];
	enum store_rc rc;
	int row, i;

	if ((rc = pg_simple(s, sql, PGRES_TUPLES_OK, &r, what)) != STORE_OK)
		return rc;
	for (row = 0; row < PQntuples(r); row++) {
		size_t off = 0;

		detail[0] = '\0';
		for (i = 0; i < PQnfields(r); i++) {
			const char *v = PQgetisnull(r, row, i)
			                        ? "null"
			                        : PQgetvalue(r, row, i);
			int w = snprintf(detail + off, sizeof detail - off,
			                 "%s%s=%s", i ? " " : "", PQfname(r, i),
			                 v);

			if (w < 0 || (size_t)w >= sizeof detail - off)
				break;
			off += (size_t)w;
		}
		(*n)++;
		fn(arg, what, detail);
	}
	PQclear(r);
	return STORE_OK;
}

static enum store_rc
pg_verify(struct store *st, store_violation_fn fn, void *arg,
          size_t *n_violations)
{
	struct store_pg *s = PG(st);
	const struct store_check *c;
	enum store_rc rc;

	*n_violations = 0;
	/* one snapshot for every check */
	if ((rc = pg_simple(s,
	                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
	                    PGRES_COMMAND_OK, NULL, "verify")) != STORE_OK)
		return rc;
	for (c = store_checks; c->what != NULL; c++)
		if ((rc = verify_query(s, c->what, c->sql, fn, arg,
		                       n_violations)) != STORE_OK)
			goto out;
	for (c = pg_checks; c->what != NULL; c++)
		if ((rc = verify_query(s, c->what, c->sql, fn, arg,
		                       n_violations)) != STORE_OK)
			goto out;
out:
	pg_rollback(st);
	return rc;
}

/* --------------------------------------------------------------- open */

static void
pg_close(struct store *st)
{
	struct store_pg *s = PG(st);
	int i;

	if (st == NULL)
		return;
	PQfinish(s->conn);
	for (i = 0; i < PG_N_ARR; i++)
		free(s->arr[i].p);
	free(s->copy.p);
	free(s);
}

static const struct store_ops pg_ops = {
	.name = "pg",
	.migrate = pg_migrate,
	.ping = pg_ping,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	.idem_get = pg_idem_get,
	.accounts_load = pg_accounts_load,
	.usage_load = pg_usage_load,
	.txn_info = pg_txn_info,
	.txn_ids = pg_txn_ids,
	.batch_write = pg_batch_write,
	.account_create = pg_account_create,
	.account_by_code = pg_account_by_code,
	.account_by_id = pg_account_by_id,
	.account_list = pg_account_list,
	.idem_lookup = pg_idem_lookup,
	.idem_purge = pg_idem_purge,
	.limit_set = pg_limit_set,
	.limit_list = pg_limit_list,
	.agent_create = pg_agent_create,
	.agent_get = pg_agent_get,
	.agent_set_status = pg_agent_set_status,
	.merchant_create = pg_merchant_create,
	.merchant_get = pg_merchant_get,
	.rpc_key_create = pg_rpc_key_create,
	.rpc_key_get = pg_rpc_key_get,
	.rpc_key_revoke = pg_rpc_key_revoke,
	.rpc_key_list = pg_rpc_key_list,
	.terminal_create = pg_terminal_create,
	.terminal_get = pg_terminal_get,
	.pos_txn_get = pg_pos_txn_get,
	.pos_totals = pg_pos_totals,
	.pos_batch_close = pg_pos_batch_close,
	.terminal_set_status = pg_terminal_set_status,
	.terminal_list = pg_terminal_list,
	.terminal_set_key = pg_terminal_set_key,
	.payment_create = pg_payment_create,
	.payment_transition = pg_payment_transition,
	.payment_get = pg_payment_get,
	.payment_events = pg_payment_events,
	.prov_create = pg_prov_create,
	.prov_get = pg_prov_get,
	.pos_pay_create = pg_pos_pay_create,
	.pos_pay_get = pg_pos_pay_get,
	.pos_pay_results = pg_pos_pay_results,
	.pos_pay_ack = pg_pos_pay_ack,
	.prov_due = pg_prov_due,
	.prov_update = pg_prov_update,
	.prov_callback_add = pg_prov_callback_add,
	.prov_callback_count = pg_prov_callback_count,
	.prov_unknown = pg_prov_unknown,
	.prov_resolution_get = pg_prov_resolution_get,
	.verify = pg_verify,
	.close = pg_close,
};

struct store *
store_pg_open(const char *conninfo, char *err, size_t errlen)
{
	struct store_pg *s = xcalloc(1, sizeof *s);
	int from = 0, to = 0;

	s->base.ops = &pg_ops;
	s->conn = PQconnectdb(conninfo);
	if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK) {
		/* the message names host and port, never the password */
		snprintf(err, errlen, "pg: %s",
		         s->conn != NULL ? PQerrorMessage(s->conn)
		                         : "out of memory");
		pg_close(&s->base);
		return NULL;
	}
	if (pg_session_setup(s) != STORE_OK ||
	    pg_migrate(&s->base, &from, &to) != STORE_OK) {
		snprintf(err, errlen, "pg: %s", s->base.errstr);
		pg_close(&s->base);
		return NULL;
	}
	return &s->base;
}
