/*
 * test_store.c - the storage conformance suite (STYLE.md §12): one set of
 * tests that every backend passes.
 *
 *   test_store sqlite             a fresh SQLite file per test (temp dir)
 *   sh tests/pg.sh test_store pg  a fresh schema per test in the throwaway
 *                                 PostgreSQL named by SOKO_TEST_PG
 *
 * Drives the stores the way sokod does: through ledger_commit_batch() and
 * the payment ops.  After every test the store's verify() must report zero
 * violations.  The concurrency tests give each thread its own handle on
 * one database, as several sokod sharing one PostgreSQL do.  Never skips:
 * "pg" without SOKO_TEST_PG is a failure.
 */
#include "store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "check.h"
#include "ledger.h"
#include "money.h"
#include "payment.h"
#include "util.h"

#define DAY_MS (86400LL * 1000)
#define T0     (20000 * DAY_MS + 3600 * 1000) /* fixed UTC time, 01:00 */
#define KES    404
#define USD    840

static bool is_pg;
static const char *pg_conninfo;
static char tmp_dir[256];
static char db_path[512]; /* SQLite: the current test's file */
static int db_seq;

/* ------------------------------------------------------------ helpers */

/* Raw connection to the current database, bypassing the store: runs sql
 * and returns 0 if the database accepted it.  For tests that try what the
 * store never does. */
static int
raw_exec(const char *sql)
{
	int rc = -1;

	if (is_pg) {
		PGconn *c = PQconnectdb(pg_conninfo);
		PGresult *r;

		if (PQstatus(c) == CONNECTION_OK) {
			PQclear(PQexec(c, "SET client_min_messages = error"));
			r = PQexec(c, sql);
			if (PQresultStatus(r) == PGRES_COMMAND_OK ||
			    PQresultStatus(r) == PGRES_TUPLES_OK)
				rc = 0;
			PQclear(r);
		}
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;

		if (sqlite3_open(db_path, &db) == SQLITE_OK) {
			sqlite3_busy_timeout(db, 5000);
			rc = sqlite3_exec(db, sql, NULL, NULL, NULL) ==
			                     SQLITE_OK
			             ? 0
			             : -1;
		}
		sqlite3_close(db);
	}
	return rc;
}

/* First column of the first row of sql, on a raw connection; -1 on
 * error. */
static int64_t
raw_i64(const char *sql)
{
	int64_t v = -1;

	if (is_pg) {
		PGconn *c = PQconnectdb(pg_conninfo);
		PGresult *r = PQexec(c, sql);

		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		PQfinish(c);
	} else {
		sqlite3 *db = NULL;
		sqlite3_stmt *q = NULL;

		if (sqlite3_open(db_path, &db) == SQLITE_OK &&
		    sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW)
			v = sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
	return v;
}

/* A new, empty database for the next test (nothing open on it). */
static void
fresh_db(void)
{
	if (is_pg) {
		if (raw_exec("DROP SCHEMA public CASCADE; "
		             "CREATE SCHEMA public") != 0) {
			fprintf(stderr, "cannot reset the PostgreSQL schema\n");
			exit(1);
		}
	} else {
		snprintf(db_path, sizeof db_path, "%s/t%d.db", tmp_dir,
		         ++db_seq);
	}
}

/* Another handle on the current database; NULL (and a failed check) if
 * it cannot be opened. */
static struct store *
open_db(void)
{
	char err[256] = "";
	struct store *st = is_pg ? store_pg_open(pg_conninfo, err, sizeof err)
	                         : store_sqlite_open(db_path, err, sizeof err);

	if (st == NULL)
		fprintf(stderr, "  open: %s\n", err);
	CHECK(st != NULL);
	return st;
}

static struct ledger *
new_ledger(struct store *st)
{
	char err[256] = "";
	struct ledger *lg = ledger_new(st, err, sizeof err);

	if (lg == NULL)
		fprintf(stderr, "  ledger_new: %s\n", err);
	CHECK(lg != NULL);
	return lg;
}

static void
on_violation(void *arg, const char *what, const char *detail)
{
	(void)arg;
	fprintf(stderr, "  violation %s: %s\n", what, detail);
}

/* Keeps the name of the last violation in arg (char[64]). */
static void
on_violation_note(void *arg, const char *what, const char *detail)
{
	(void)detail;
	strlcpy_s(arg, what, 64);
}

/* verify() reports nothing. */
static void
verify_clean(struct store *st)
{
	size_t n = 99;
	enum store_rc rc = st->ops->verify(st, on_violation, NULL, &n);

	if (rc != STORE_OK)
		fprintf(stderr, "  verify: %s\n", st->errstr);
	CHECK_EQ_INT(rc, STORE_OK);
	CHECK_EQ_INT(n, 0);
}

/* Closes without verify(): for a test that broke invariants on purpose. */
static void
finish_unverified(struct store *st, struct ledger *lg)
{
	ledger_free(lg);
	store_close(st);
}

/* Appends every violation name to arg (a 512-byte buffer). */
static void
on_violation_append(void *arg, const char *what, const char *detail)
{
	size_t n = strlen(arg);

	(void)detail;
	snprintf((char *)arg + n, 512 - n, "%s ", what);
}

/* Every test ends here: verify, then close. */
static void
finish(struct store *st, struct ledger *lg)
{
	if (st != NULL)
		verify_clean(st);
	ledger_free(lg);
	store_close(st);
}

static int64_t
mk_account(struct store *st, const char *code, uint8_t type,
           uint16_t currency, bool has_floor, bool is_closed)
{
	struct ledger_account a;
	enum store_rc rc;

	memset(&a, 0, sizeof a);
	strlcpy_s(a.code, code, sizeof a.code);
	a.type = type;
	a.currency = currency;
	a.has_floor = has_floor;
	a.is_closed = is_closed;
	a.created_ms = T0;
	rc = st->ops->account_create(st, &a);
	if (rc != STORE_OK)
		fprintf(stderr, "  account_create %s: %s\n", code, st->errstr);
	CHECK_EQ_INT(rc, STORE_OK);
	return a.id;
}

static int64_t
balance(struct store *st, int64_t id)
{
	struct ledger_account a;

	memset(&a, 0, sizeof a);
	CHECK_EQ_INT(st->ops->account_by_id(st, id, &a), STORE_OK);
	return a.balance_minor;
}

/* A two-leg request: amount from `from` to `to`, counted against limits
 * with amount; hashed. */
static struct ledger_req
mk_req(const char *key, uint16_t currency, int64_t from, int64_t to,
       int64_t amount)
{
	struct ledger_req r;

	memset(&r, 0, sizeof r);
	strlcpy_s(r.idem_key, key, sizeof r.idem_key);
	r.kind = LEDGER_TXN_PAYMENT;
	r.currency = currency;
	r.n_legs = 2;
	r.legs[0].account_id = from;
	r.legs[0].amount_minor = -amount;
	r.legs[1].account_id = to;
	r.legs[1].amount_minor = amount;
	r.limit_amount = amount > 0 ? amount : 0;
	ledger_req_hash(&r);
	return r;
}

static struct ledger_req
mk_reversal(const char *key, int64_t target)
{
	struct ledger_req r;

	memset(&r, 0, sizeof r);
	strlcpy_s(r.idem_key, key, sizeof r.idem_key);
	r.kind = LEDGER_TXN_REVERSAL;
	r.currency = KES;
	r.reverses_txn_id = target;
	ledger_req_hash(&r);
	return r;
}

/* Commits one request; returns its result. */
static struct ledger_result
commit1(struct ledger *lg, const struct ledger_req *r, int64_t now_ms)
{
	struct ledger_result res;

	memset(&res, 0, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 1, &res, now_ms), 0);
	return res;
}

/* Funds account to with amount from an unfloored source. */
static int64_t
fund(struct ledger *lg, int64_t src, int64_t to, int64_t amount,
     const char *key)
{
	struct ledger_req r = mk_req(key, KES, src, to, amount);
	struct ledger_result res = commit1(lg, &r, T0);

	CHECK_EQ_INT(res.rc, LEDGER_OK);
	return res.txn_id;
}

static int
last_migration(void)
{
	const struct store_migration *m =
		is_pg ? store_migrations_pg : store_migrations_sqlite;
	int v = 0;

	for (; m->sql != NULL; m++)
		v = MAX(v, m->version);
	return v;
}

/* -------------------------------------------------------------- tests */

struct open_arg {
	pthread_barrier_t *bar;
	struct store *st;
};

static void *
open_thread(void *p)
{
	struct open_arg *a = p;
	char err[256] = "";

	pthread_barrier_wait(a->bar);
	a->st = is_pg ? store_pg_open(pg_conninfo, err, sizeof err)
	              : store_sqlite_open(db_path, err, sizeof err);
	if (a->st == NULL)
		fprintf(stderr, "  concurrent open: %s\n", err);
	return NULL;
}

static void
test_migrations(void)
{
	struct store *st;
	pthread_barrier_t bar;
	pthread_t th[8];
	struct open_arg arg[8];
	int from = -1, to = -1, i, n_open = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	CHECK(last_migration() >= 2);
	CHECK_EQ_INT(st->ops->migrate(st, &from, &to), STORE_OK);
	CHECK_EQ_INT(from, last_migration());
	CHECK_EQ_INT(to, last_migration());
	CHECK_EQ_INT(st->ops->ping(st), STORE_OK);
	store_close(st);
	/* reopening is a no-op */
	if ((st = open_db()) == NULL)
		return;
	from = to = -1;
	CHECK_EQ_INT(st->ops->migrate(st, &from, &to), STORE_OK);
	CHECK_EQ_INT(from, last_migration());
	CHECK_EQ_INT(to, from);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM schema_version"),
	             last_migration());
	finish(st, NULL);

	/* several instances start at once on an empty database: one
	 * migrates, every one opens */
	fresh_db();
	pthread_barrier_init(&bar, NULL, 8);
	for (i = 0; i < 8; i++) {
		arg[i].bar = &bar;
		arg[i].st = NULL;
		pthread_create(&th[i], NULL, open_thread, &arg[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(th[i], NULL);
		n_open += arg[i].st != NULL;
	}
	pthread_barrier_destroy(&bar);
	CHECK_EQ_INT(n_open, 8);
	CHECK_EQ_INT(raw_i64("SELECT MAX(version) FROM schema_version"),
	             last_migration());
	for (i = 1; i < 8; i++)
		store_close(arg[i].st);
	finish(arg[0].st, NULL);
}

static int
count_account(void *arg, const struct ledger_account *a)
{
	int64_t *last = arg;

	CHECK(a->id > last[0]); /* ascending */
	last[0] = a->id;
	last[1]++;
	return 0;
}

static void
test_accounts(void)
{
	struct store *st;
	struct ledger_account a, b;
	int64_t id1, id2, id3, it[2] = {0, 0};

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	id1 = mk_account(st, "agent:A001:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                 true, false);
	id2 = mk_account(st, "merchant:M1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 false, false);
	id3 = mk_account(st, "odd \"code\" \\ ,{}", LEDGER_ACCT_SUSPENSE,
	                 USD, false, true);
	CHECK(id1 > 0 && id2 > 0 && id3 > 0);
	CHECK(id1 != id2 && id2 != id3);

	memset(&a, 0, sizeof a);
	CHECK_EQ_INT(st->ops->account_by_code(st, "agent:A001:float", &a),
	             STORE_OK);
	CHECK_EQ_INT(a.id, id1);
	CHECK_EQ_STR(a.code, "agent:A001:float");
	CHECK_EQ_INT(a.type, LEDGER_ACCT_AGENT_FLOAT);
	CHECK_EQ_INT(a.currency, KES);
	CHECK_EQ_INT(a.balance_minor, 0);
	CHECK(a.has_floor);
	CHECK_EQ_INT(a.floor_minor, 0);
	CHECK(!a.is_closed);
	CHECK_EQ_INT(a.created_ms, T0);

	memset(&b, 0, sizeof b);
	CHECK_EQ_INT(st->ops->account_by_id(st, id3, &b), STORE_OK);
	CHECK_EQ_STR(b.code, "odd \"code\" \\ ,{}");
	CHECK_EQ_INT(b.currency, USD);
	CHECK(b.is_closed);
	CHECK(!b.has_floor);

	CHECK_EQ_INT(st->ops->account_by_code(st, "nope", &a),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->account_by_id(st, 999999, &a), STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->account_list(st, count_account, it), STORE_OK);
	CHECK_EQ_INT(it[1], 3);

	/* duplicate code: a result, not an error */
	memset(&a, 0, sizeof a);
	strlcpy_s(a.code, "merchant:M1", sizeof a.code);
	a.type = LEDGER_ACCT_MERCHANT_PAYABLE;
	a.currency = KES;
	CHECK_EQ_INT(st->ops->account_create(st, &a), STORE_CONFLICT);
	/* a CHECK constraint is a refusal, not a duplicate */
	strlcpy_s(a.code, "bad:type", sizeof a.code);
	a.type = 0;
	CHECK_EQ_INT(st->ops->account_create(st, &a), STORE_FAIL);
	CHECK(st->errstr[0] != '\0');
	it[0] = it[1] = 0;
	CHECK_EQ_INT(st->ops->account_list(st, count_account, it), STORE_OK);
	CHECK_EQ_INT(it[1], 3);
	finish(st, NULL);
}

static int
count_terminal(void *arg, const struct store_terminal *t)
{
	int *n = arg;

	(*n)++;
	CHECK(t->agent.code[0] != '\0');
	return 0;
}

/* POS provisioning (003_pos): agents, terminals with wrapped keys,
 * status changes, uniqueness. */
static void
test_pos_provisioning(void)
{
	struct store *st;
	struct store_agent ag, got;
	struct store_terminal t, tg;
	int64_t fl;
	int n = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	fl = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                true, false);
	memset(&ag, 0, sizeof ag);
	strlcpy_s(ag.code, "A1", sizeof ag.code);
	ag.float_account_id = fl;
	ag.status = STORE_POS_ACTIVE;
	ag.created_ms = T0;
	CHECK_EQ_INT(st->ops->agent_create(st, &ag), STORE_OK);
	CHECK(ag.id > 0);
	CHECK_EQ_INT(st->ops->agent_create(st, &ag), STORE_CONFLICT);
	CHECK_EQ_INT(st->ops->agent_get(st, "A1", &got), STORE_OK);
	CHECK_EQ_INT(got.id, ag.id);
	CHECK_EQ_INT(got.float_account_id, fl);
	CHECK_EQ_INT(got.status, STORE_POS_ACTIVE);
	CHECK_EQ_INT(st->ops->agent_get(st, "nobody", &got), STORE_NOT_FOUND);
	/* an agent needs a real float account */
	strlcpy_s(ag.code, "A2", sizeof ag.code);
	ag.float_account_id = 999999;
	CHECK_EQ_INT(st->ops->agent_create(st, &ag), STORE_FAIL);

	memset(&t, 0, sizeof t);
	strlcpy_s(t.id, "T-000123", sizeof t.id);
	t.agent_id = got.id;
	for (size_t i = 0; i < STORE_KEY_WRAPPED_LEN; i++)
		t.key_wrapped[i] = (uint8_t)(i * 7 + 1);
	t.status = STORE_POS_ACTIVE;
	t.created_ms = T0;
	CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_OK);
	CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_CONFLICT);
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg), STORE_OK);
	CHECK_EQ_STR(tg.id, "T-000123");
	CHECK(memcmp(tg.key_wrapped, t.key_wrapped, STORE_KEY_WRAPPED_LEN) ==
	      0);
	CHECK_EQ_INT(tg.status, STORE_POS_ACTIVE);
	CHECK_EQ_STR(tg.agent.code, "A1");
	CHECK_EQ_INT(tg.agent.float_account_id, fl);
	CHECK_EQ_INT(tg.created_ms, T0);
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-nope", &tg), STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->terminal_set_status(st, "T-000123",
	                                          STORE_POS_BLOCKED),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg), STORE_OK);
	CHECK_EQ_INT(tg.status, STORE_POS_BLOCKED);
	CHECK_EQ_INT(st->ops->terminal_set_status(st, "T-000123",
	                                          STORE_POS_ACTIVE),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg), STORE_OK);
	CHECK_EQ_INT(tg.status, STORE_POS_ACTIVE);
	CHECK_EQ_INT(st->ops->terminal_set_status(st, "T-nope",
	                                          STORE_POS_BLOCKED),
	             STORE_NOT_FOUND);
	/* a terminal needs a real agent */
	strlcpy_s(t.id, "T-000124", sizeof t.id);
	t.agent_id = 999999;
	CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_FAIL);
	CHECK_EQ_INT(st->ops->terminal_list(st, count_terminal, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	finish(st, NULL);
}

/* A POS row for ledger_req.pos. */
static struct store_pos_txn
mk_pos(const char *terminal, uint8_t id_byte, uint16_t type, int64_t amount,
       const char *to)
{
	struct store_pos_txn p;

	memset(&p, 0, sizeof p);
	strlcpy_s(p.terminal_id, terminal, sizeof p.terminal_id);
	memset(p.txn_id, id_byte, sizeof p.txn_id);
	p.type = type;
	p.currency = type != 0 ? KES : 0;
	p.amount_minor = amount;
	strlcpy_s(p.counterparty, to, sizeof p.counterparty);
	return p;
}

/*
 * POS rows (ledger_req.pos): written with the first outcome of their key,
 * in the same commit, once; read back with the reversal; batch close and
 * totals per terminal.
 */
static void
test_pos_txns(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r[4];
	struct ledger_result res[4];
	struct store_pos_txn p[4], got;
	struct store_pos_total tot[4];
	uint8_t id[STORE_POS_TXN_ID_LEN];
	int64_t src, a, b, closed = 0;
	bool is_repeat = false;
	size_t n = 99;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	src = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES, true,
	               false);
	b = mk_account(st, "agent:A2:float", LEDGER_ACCT_AGENT_FLOAT, KES, true,
	               false);
	fund(lg, src, a, 10000, "fund");

	/* one batch: approved, declined, the same key again, a tombstone */
	r[0] = mk_req("pos:T1:01", KES, a, b, 3000);
	p[0] = mk_pos("T1", 1, 0x13, 3000, "A2");
	p[0].is_advice = true;
	p[0].local_time_ms = T0 - 5;
	r[0].pos = &p[0];
	r[1] = mk_req("pos:T1:02", KES, a, b, 99999);
	p[1] = mk_pos("T1", 2, 0x13, 99999, "A2");
	r[1].pos = &p[1];
	r[2] = r[0]; /* in-batch repeat: no second row */
	r[3] = mk_reversal("pos:T1:03", 0);
	p[3] = mk_pos("T1", 3, 0, 0, "");
	r[3].pos = &p[3];
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 4, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK(res[2].is_replay);
	CHECK_EQ_INT(res[3].rc, LEDGER_REVERSAL_UNKNOWN);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM pos_txns"), 3);

	memset(id, 1, sizeof id);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_OK);
	CHECK_EQ_STR(got.terminal_id, "T1");
	CHECK(memcmp(got.txn_id, id, sizeof id) == 0);
	CHECK_EQ_INT(got.type, 0x13);
	CHECK(got.is_advice);
	CHECK_EQ_INT(got.currency, KES);
	CHECK_EQ_INT(got.amount_minor, 3000);
	CHECK_EQ_STR(got.counterparty, "A2");
	CHECK_EQ_INT(got.local_time_ms, T0 - 5);
	CHECK_EQ_INT(got.rc, LEDGER_OK);
	CHECK_EQ_INT(got.ledger_txn_id, res[0].txn_id);
	CHECK_EQ_INT(got.created_ms, T0);
	CHECK_EQ_INT(got.reversed_by, 0);
	memset(id, 2, sizeof id);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_OK);
	CHECK_EQ_INT(got.rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK_EQ_INT(got.ledger_txn_id, 0);
	CHECK(!got.is_advice);
	memset(id, 3, sizeof id);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_OK);
	CHECK_EQ_INT(got.type, 0);
	CHECK_EQ_INT(got.rc, LEDGER_REVERSAL_UNKNOWN);
	/* per terminal */
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T2", id, &got), STORE_NOT_FOUND);
	memset(id, 9, sizeof id);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_NOT_FOUND);
	/* a repeat of a key in a later batch writes no row either */
	CHECK(commit1(lg, &r[0], T0 + 1).is_replay);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM pos_txns"), 3);

	/* a second approved one, then batch 1 closes: 2 approved */
	r[0] = mk_req("pos:T1:04", KES, a, b, 500);
	p[0] = mk_pos("T1", 4, 0x13, 500, "A2");
	r[0].pos = &p[0];
	CHECK_EQ_INT(commit1(lg, &r[0], T0 + 2).rc, LEDGER_OK);
	/* T2's row stays out of T1's batch */
	r[0] = mk_req("pos:T2:01", KES, a, b, 100);
	p[0] = mk_pos("T2", 1, 0x13, 100, "A2");
	r[0].pos = &p[0];
	CHECK_EQ_INT(commit1(lg, &r[0], T0 + 2).rc, LEDGER_OK);
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 1, T0 + 10, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK(!is_repeat);
	CHECK_EQ_INT(closed, T0 + 10);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 1, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].type, 0x13);
	CHECK_EQ_INT(tot[0].currency, KES);
	CHECK_EQ_INT(tot[0].count, 2);
	CHECK_EQ_INT(tot[0].sum_minor, 3500);

	/* after the close: batch 2; reversing a batch-1 txn takes it out
	 * of batch 1's totals (STATUS would say REVERSED) */
	r[0] = mk_req("pos:T1:05", KES, a, b, 7);
	p[0] = mk_pos("T1", 5, 0x13, 7, "A2");
	r[0].pos = &p[0];
	CHECK_EQ_INT(commit1(lg, &r[0], T0 + 11).rc, LEDGER_OK);
	memset(id, 4, sizeof id);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_OK);
	r[1] = mk_reversal("pos:T1:04:rev", got.ledger_txn_id);
	res[1] = commit1(lg, &r[1], T0 + 12);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got), STORE_OK);
	CHECK_EQ_INT(got.reversed_by, res[1].txn_id);
	CHECK_EQ_INT(got.reversed_ms, T0 + 12);
	/* the repeat of close 1 changes nothing and keeps its time */
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 1, T0 + 20, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK(is_repeat);
	CHECK_EQ_INT(closed, T0 + 10);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 1, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].count, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 3000);
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 2, T0 + 30, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK(!is_repeat);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 2, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].count, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 7);
	/* an empty batch, and a cap smaller than the lines */
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 3, T0 + 40, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 3, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T2", 1, T0 + 40, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T2", 1, tot, 0, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
out:
	finish(st, lg);
}

static void
test_transfer(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r[3];
	struct ledger_result res[3];
	int64_t sus, a, b;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	b = mk_account(st, "wallet:b", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	r[0] = mk_req("t:1", KES, sus, a, 1000);
	r[1] = mk_req("t:2", KES, a, b, 300);
	r[2] = mk_req("t:3", KES, b, a, 100);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK_EQ_INT(res[2].rc, LEDGER_OK);
	CHECK(res[0].txn_id > 0);
	CHECK(res[0].txn_id < res[1].txn_id && res[1].txn_id < res[2].txn_id);
	CHECK(!res[0].is_replay);
	CHECK_EQ_INT(res[0].created_ms, T0);
	CHECK_EQ_INT(balance(st, sus), -1000);
	CHECK_EQ_INT(balance(st, a), 800);
	CHECK_EQ_INT(balance(st, b), 200);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM postings"), 6);
	CHECK_EQ_INT(raw_i64("SELECT SUM(amount_minor) FROM postings"), 0);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), 3);
	/* a second batch gets larger ids */
	r[0] = mk_req("t:4", KES, a, b, 1);
	res[0] = commit1(lg, &r[0], T0 + 1);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].txn_id > res[2].txn_id);
out:
	finish(st, lg);
}

/* Submits r and expects rc (with nothing moved when rc is not OK). */
static void
expect_rc(struct ledger *lg, struct ledger_req *r, enum ledger_rc want,
          int line)
{
	struct ledger_result res = commit1(lg, r, T0);

	if (res.rc != want)
		fprintf(stderr, "  line %d: got %s, want %s\n", line,
		        ledger_rc_name(res.rc), ledger_rc_name(want));
	CHECK_EQ_INT(res.rc, want);
	if (want != LEDGER_OK)
		CHECK_EQ_INT(res.txn_id, 0);
	/* the outcome is final: a repeat returns it again */
	res = commit1(lg, r, T0 + 5);
	CHECK_EQ_INT(res.rc, want);
	CHECK(res.is_replay);
	CHECK_EQ_INT(res.created_ms, T0);
}

static void
test_errors(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r;
	int64_t sus, sus2, sus3, a, b, usd, closed, big, flt;
	int64_t n_txns;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	sus2 = mk_account(st, "suspense2", LEDGER_ACCT_SUSPENSE, KES, false,
	                  false);
	sus3 = mk_account(st, "suspense3", LEDGER_ACCT_SUSPENSE, KES, false,
	                  false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	b = mk_account(st, "wallet:b", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	usd = mk_account(st, "wallet:usd", LEDGER_ACCT_CUSTOMER_WALLET, USD,
	                 false, false);
	closed = mk_account(st, "wallet:closed", LEDGER_ACCT_CUSTOMER_WALLET,
	                    KES, false, true);
	big = mk_account(st, "merchant:big", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 false, false);
	flt = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                 true, false);
	fund(lg, sus, a, 5000, "fund:a");
	n_txns = raw_i64("SELECT COUNT(*) FROM txns");

	r = mk_req("e:zero", KES, a, b, 0);
	expect_rc(lg, &r, LEDGER_BAD_AMOUNT, __LINE__);
	r = mk_req("e:neg", KES, a, b, 100);
	r.legs[0].amount_minor = 100;
	r.legs[1].amount_minor = -100; /* debits b: b is floored at 0 */
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_INSUFFICIENT_FUNDS, __LINE__);
	r = mk_req("e:huge", KES, sus, b, MONEY_MAX_MINOR + 1);
	expect_rc(lg, &r, LEDGER_BAD_AMOUNT, __LINE__);
	r = mk_req("e:unbal", KES, a, b, 100);
	r.legs[1].amount_minor = 99;
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_UNBALANCED, __LINE__);
	r = mk_req("e:oneleg", KES, a, b, 100);
	r.n_legs = 1;
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_UNBALANCED, __LINE__);
	r = mk_req("e:toomany", KES, a, b, 100);
	r.n_legs = LEDGER_LEGS_MAX + 1;
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_UNBALANCED, __LINE__);
	r = mk_req("e:cur", USD, a, b, 100);
	expect_rc(lg, &r, LEDGER_CURRENCY_MISMATCH, __LINE__);
	r = mk_req("e:cur2", KES, a, usd, 100);
	expect_rc(lg, &r, LEDGER_CURRENCY_MISMATCH, __LINE__);
	r = mk_req("e:unknown", KES, a, 999999, 100);
	expect_rc(lg, &r, LEDGER_UNKNOWN_ACCOUNT, __LINE__);
	r = mk_req("e:closed", KES, a, closed, 100);
	expect_rc(lg, &r, LEDGER_ACCOUNT_CLOSED, __LINE__);
	r = mk_req("e:limneg", KES, a, b, 100);
	r.limit_amount = -1;
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_BAD_AMOUNT, __LINE__);
	r = mk_req("e:revfield", KES, a, b, 100);
	r.reverses_txn_id = 1;
	ledger_req_hash(&r);
	expect_rc(lg, &r, LEDGER_BAD_AMOUNT, __LINE__);
	r = mk_req("e:floor", KES, flt, b, 1);
	expect_rc(lg, &r, LEDGER_INSUFFICIENT_FUNDS, __LINE__);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), n_txns);

	/* floor: exactly down to it is fine, one more is not */
	fund(lg, sus, flt, 500, "fund:flt");
	r = mk_req("e:floor501", KES, flt, b, 501);
	expect_rc(lg, &r, LEDGER_INSUFFICIENT_FUNDS, __LINE__);
	r = mk_req("e:floor500", KES, flt, b, 500);
	expect_rc(lg, &r, LEDGER_OK, __LINE__);
	CHECK_EQ_INT(balance(st, flt), 0);

	/* overflow: a balance at MONEY_MAX_MINOR takes no more */
	fund(lg, sus3, big, MONEY_MAX_MINOR, "fund:big");
	r = mk_req("e:overflow", KES, sus2, big, 1);
	expect_rc(lg, &r, LEDGER_OVERFLOW, __LINE__);
	CHECK_EQ_INT(balance(st, big), MONEY_MAX_MINOR);
	CHECK_EQ_INT(balance(st, sus2), 0);

	CHECK_EQ_INT(balance(st, a), 5000);
	CHECK_EQ_INT(balance(st, b), 500);
	CHECK_EQ_INT(balance(st, usd), 0);
	CHECK_EQ_INT(balance(st, closed), 0);
out:
	finish(st, lg);
}

static void
test_idempotency(void)
{
	static const char *const odd[] = {
		"q\"uote", "back\\slash", "comma,{brace}", "NULL", "sp ace",
		"\xc3\xbcnic\xc3\xb6" "de",
	};
	enum { N_ODD = sizeof odd / sizeof odd[0] };
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r[N_ODD + 1];
	struct ledger_result res[N_ODD + 1];
	struct store_idem d;
	int64_t sus, a, b, t1, n_del = -1;
	size_t i;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	b = mk_account(st, "wallet:b", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	fund(lg, sus, a, 10000, "fund:a");

	/* across batches: same content, same outcome, moved once */
	r[0] = mk_req("http:k1", KES, a, b, 100);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(!res[0].is_replay);
	t1 = res[0].txn_id;
	res[0] = commit1(lg, &r[0], T0 + 1000);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].is_replay);
	CHECK_EQ_INT(res[0].txn_id, t1);
	CHECK_EQ_INT(res[0].created_ms, T0);
	CHECK_EQ_INT(balance(st, b), 100);
	/* same key, other content */
	r[1] = mk_req("http:k1", KES, a, b, 101);
	res[1] = commit1(lg, &r[1], T0);
	CHECK_EQ_INT(res[1].rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(res[1].txn_id, 0);
	CHECK_EQ_INT(balance(st, b), 100);

	/* within one batch */
	r[0] = mk_req("http:k2", KES, a, b, 10);
	r[1] = r[0];
	r[2] = mk_req("http:k2", KES, a, b, 20);
	r[3] = mk_req("http:k1", KES, a, b, 100);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 4, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(!res[0].is_replay);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK(res[1].is_replay);
	CHECK_EQ_INT(res[1].txn_id, res[0].txn_id);
	CHECK_EQ_INT(res[2].rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(res[3].rc, LEDGER_OK);
	CHECK(res[3].is_replay);
	CHECK_EQ_INT(res[3].txn_id, t1);
	CHECK_EQ_INT(balance(st, b), 110);

	/* a refusal is an outcome too */
	r[0] = mk_req("http:k3", KES, a, 999999, 10);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_UNKNOWN_ACCOUNT);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_UNKNOWN_ACCOUNT);
	CHECK(res[0].is_replay);

	/* keys that need quoting in any array or literal syntax */
	for (i = 0; i < N_ODD; i++)
		r[i] = mk_req(odd[i], KES, a, b, 1);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, N_ODD, res, T0), 0);
	for (i = 0; i < N_ODD; i++) {
		CHECK_EQ_INT(res[i].rc, LEDGER_OK);
		CHECK(!res[i].is_replay);
	}
	CHECK_EQ_INT(ledger_commit_batch(lg, r, N_ODD, res, T0), 0);
	for (i = 0; i < N_ODD; i++) {
		CHECK_EQ_INT(res[i].rc, LEDGER_OK);
		CHECK(res[i].is_replay);
		memset(&d, 0, sizeof d);
		CHECK_EQ_INT(st->ops->idem_lookup(st, odd[i], &d), STORE_OK);
		CHECK_EQ_STR(d.key, odd[i]);
		CHECK_EQ_INT(d.txn_id, res[i].txn_id);
	}
	CHECK_EQ_INT(balance(st, b), 110 + N_ODD);

	memset(&d, 0, sizeof d);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "http:k1", &d), STORE_OK);
	CHECK_EQ_STR(d.key, "http:k1");
	CHECK_EQ_INT(d.rc, LEDGER_OK);
	CHECK_EQ_INT(d.txn_id, t1);
	CHECK_EQ_INT(d.created_ms, T0);
	r[0] = mk_req("http:k1", KES, a, b, 100);
	CHECK(memcmp(d.hash, r[0].hash, LEDGER_HASH_LEN) == 0);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "http:none", &d),
	             STORE_NOT_FOUND);

	/* keys survive a reopen */
	ledger_free(lg);
	store_close(st);
	lg = NULL;
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	res[0] = commit1(lg, &r[0], T0 + DAY_MS);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].is_replay);
	CHECK_EQ_INT(res[0].txn_id, t1);
	CHECK_EQ_INT(balance(st, b), 110 + N_ODD);

	/* purge: only records created before the cut */
	r[0] = mk_req("old:1", KES, a, b, 1);
	r[1] = mk_req("old:2", KES, a, 999999, 1);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 2, res, T0 - 40 * DAY_MS), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_UNKNOWN_ACCOUNT);
	CHECK_EQ_INT(st->ops->idem_purge(st, T0 - 30 * DAY_MS, &n_del),
	             STORE_OK);
	CHECK_EQ_INT(n_del, 2);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "old:1", &d), STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "http:k1", &d), STORE_OK);
	CHECK_EQ_INT(st->ops->idem_purge(st, T0 - 30 * DAY_MS, &n_del),
	             STORE_OK);
	CHECK_EQ_INT(n_del, 0);
out:
	finish(st, lg);
}

static void
test_reversal(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r[3];
	struct ledger_result res[3];
	int64_t sus, a, b, c, t1, t2, t3, t4;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	b = mk_account(st, "wallet:b", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	c = mk_account(st, "wallet:c", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	fund(lg, sus, a, 1000, "fund:a");
	t1 = fund(lg, a, b, 300, "pay:1");

	r[0] = mk_reversal("rev:1", t1);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	t2 = res[0].txn_id;
	CHECK(t2 > t1);
	CHECK_EQ_INT(balance(st, a), 1000);
	CHECK_EQ_INT(balance(st, b), 0);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM postings p JOIN postings o "
	                     "ON o.leg = p.leg AND o.account_id = p.account_id "
	                     "AND o.amount_minor = -p.amount_minor "
	                     "WHERE p.txn_id = (SELECT MAX(id) FROM txns) AND "
	                     "o.txn_id = (SELECT reverses_txn_id FROM txns "
	                     "WHERE id = p.txn_id)"),
	             2);

	r[0] = mk_reversal("rev:1b", t1);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_REVERSAL_TWICE);
	r[0] = mk_reversal("rev:2", t2);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_REVERSAL_OF_REVERSAL);
	r[0] = mk_reversal("rev:3", 999999);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_REVERSAL_UNKNOWN);
	r[0] = mk_reversal("rev:4", 0);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_REVERSAL_UNKNOWN);

	/* twice within one batch: the second sees the first */
	t3 = fund(lg, a, b, 50, "pay:3");
	r[0] = mk_reversal("rev:5a", t3);
	r[1] = mk_reversal("rev:5b", t3);
	r[2] = mk_reversal("rev:5a", t3);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_REVERSAL_TWICE);
	CHECK_EQ_INT(res[2].rc, LEDGER_OK);
	CHECK(res[2].is_replay);
	CHECK_EQ_INT(res[2].txn_id, res[0].txn_id);
	CHECK_EQ_INT(balance(st, b), 0);

	/* a reversal obeys the floor: b spent what it received */
	t4 = fund(lg, a, b, 100, "pay:4");
	fund(lg, b, c, 100, "pay:5");
	r[0] = mk_reversal("rev:6", t4);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_INSUFFICIENT_FUNDS);
	/* and the target's currency */
	r[0] = mk_reversal("rev:7", t4);
	r[0].currency = USD;
	ledger_req_hash(&r[0]);
	res[0] = commit1(lg, &r[0], T0);
	CHECK_EQ_INT(res[0].rc, LEDGER_CURRENCY_MISMATCH);
	CHECK_EQ_INT(balance(st, a), 900);
	CHECK_EQ_INT(balance(st, c), 100);
out:
	finish(st, lg);
}

static void
set_rule(struct store *st, uint8_t kind, const char *subject,
         int64_t per_txn, int64_t daily, int32_t vel, int32_t win)
{
	struct ledger_limit_rule l;

	memset(&l, 0, sizeof l);
	l.subject_kind = kind;
	strlcpy_s(l.subject, subject, sizeof l.subject);
	l.currency = KES;
	l.per_txn_max = per_txn;
	l.daily_max = daily;
	l.velocity_max = vel;
	l.velocity_window_s = win;
	CHECK_EQ_INT(st->ops->limit_set(st, &l), STORE_OK);
}

static struct ledger_req
mk_limited(const char *key, int64_t from, int64_t to, int64_t amount,
           uint8_t kind, const char *subject)
{
	struct ledger_req r = mk_req(key, KES, from, to, amount);

	r.subjects[0].kind = kind;
	strlcpy_s(r.subjects[0].id, subject, sizeof r.subjects[0].id);
	ledger_req_hash(&r);
	return r;
}

static enum ledger_rc
lim1(struct ledger *lg, const char *key, int64_t from, int64_t to,
     int64_t amount, uint8_t kind, const char *subject, int64_t now_ms)
{
	struct ledger_req r = mk_limited(key, from, to, amount, kind, subject);

	return commit1(lg, &r, now_ms).rc;
}

static void
test_limits(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_limit_rule *rules = NULL;
	struct ledger_req r[3];
	struct ledger_result res[3];
	size_t n_rules = 0;
	int64_t sus, w;
	const uint8_t M = LEDGER_SUBJ_MSISDN;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	w = mk_account(st, "wallet:w", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	set_rule(st, M, "254700000001", 500, 0, 0, 0);
	set_rule(st, M, "254700000002", 0, 1000, 0, 0);
	set_rule(st, M, "254700000003", 0, 0, 2, 60);
	set_rule(st, LEDGER_SUBJ_AGENT, "*", 100, 0, 0, 0);
	set_rule(st, M, "254700000004", 0, 1000, 0, 0);
	set_rule(st, M, "254700000004", 0, 999, 0, 0); /* replaces */
	CHECK_EQ_INT(st->ops->limit_list(st, &rules, &n_rules), STORE_OK);
	CHECK_EQ_INT(n_rules, 5);
	free(rules);
	ledger_limits_changed(lg);

	CHECK_EQ_INT(lim1(lg, "p:1", sus, w, 501, M, "254700000001", T0),
	             LEDGER_LIMIT_PER_TXN);
	CHECK_EQ_INT(lim1(lg, "p:2", sus, w, 500, M, "254700000001", T0),
	             LEDGER_OK);
	/* daily */
	CHECK_EQ_INT(lim1(lg, "d:1", sus, w, 400, M, "254700000002", T0),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "d:2", sus, w, 400, M, "254700000002", T0),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "d:3", sus, w, 400, M, "254700000002", T0),
	             LEDGER_LIMIT_DAILY);
	CHECK_EQ_INT(lim1(lg, "d:4", sus, w, 200, M, "254700000002", T0),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "d:5", sus, w, 1, M, "254700000002",
	                  T0 + 20 * 3600 * 1000),
	             LEDGER_LIMIT_DAILY);
	/* the next UTC day starts at zero */
	CHECK_EQ_INT(lim1(lg, "d:6", sus, w, 1000, M, "254700000002",
	                  T0 + DAY_MS),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "d:7", sus, w, 1, M, "254700000002",
	                  T0 + DAY_MS),
	             LEDGER_LIMIT_DAILY);
	/* within one batch */
	r[0] = mk_limited("d:8", sus, w, 400, M, "254700000004");
	r[1] = mk_limited("d:9", sus, w, 400, M, "254700000004");
	r[2] = mk_limited("d:10", sus, w, 400, M, "254700000004");
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK_EQ_INT(res[2].rc, LEDGER_LIMIT_DAILY);
	/* velocity: 2 per 60 s */
	CHECK_EQ_INT(lim1(lg, "v:1", sus, w, 1, M, "254700000003", T0),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "v:2", sus, w, 1, M, "254700000003", T0 + 1000),
	             LEDGER_OK);
	CHECK_EQ_INT(lim1(lg, "v:3", sus, w, 1, M, "254700000003", T0 + 2000),
	             LEDGER_LIMIT_VELOCITY);
	CHECK_EQ_INT(lim1(lg, "v:4", sus, w, 1, M, "254700000003",
	                  T0 + 60 * 1000),
	             LEDGER_OK);
	/* the default rule of a kind */
	CHECK_EQ_INT(lim1(lg, "a:1", sus, w, 101, LEDGER_SUBJ_AGENT, "A42",
	                  T0 + 60 * 1000),
	             LEDGER_LIMIT_PER_TXN);
	CHECK_EQ_INT(lim1(lg, "a:2", sus, w, 100, LEDGER_SUBJ_AGENT, "A42",
	                  T0 + 60 * 1000),
	             LEDGER_OK);
	/* a changed rule applies after ledger_limits_changed */
	set_rule(st, M, "254700000001", 100, 0, 0, 0);
	ledger_limits_changed(lg);
	CHECK_EQ_INT(lim1(lg, "p:3", sus, w, 101, M, "254700000001",
	                  T0 + 60 * 1000),
	             LEDGER_LIMIT_PER_TXN);
	CHECK_EQ_INT(balance(st, w),
	             500 + 1000 + 1000 + 800 + 3 + 100);
out:
	finish(st, lg);
}

static void
test_payments(void)
{
	struct store *st;
	struct payment p, q, g;
	struct payment_event ev[8];
	size_t n = 0;
	int64_t sus, a, t1;
	struct ledger *lg = NULL;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	memset(&p, 0, sizeof p);
	strlcpy_s(p.ref, "PAY-0001", sizeof p.ref);
	p.currency = KES;
	p.amount_minor = 1500;
	p.created_ms = T0;
	CHECK_EQ_INT(st->ops->payment_create(st, &p), STORE_OK);
	CHECK(p.id > 0);
	CHECK_EQ_INT(p.state, PAY_CREATED);
	q = p;
	CHECK_EQ_INT(st->ops->payment_create(st, &q), STORE_CONFLICT);
	q.amount_minor = 0;
	strlcpy_s(q.ref, "PAY-BAD", sizeof q.ref);
	CHECK_EQ_INT(st->ops->payment_create(st, &q), STORE_FAIL);

	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_CREATED,
	                                         PAY_PENDING, "sent", T0 + 1),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_PENDING,
	                                         PAY_UNKNOWN, "timeout",
	                                         T0 + 2),
	             STORE_OK);
	/* illegal edge: refused, nothing changes */
	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_UNKNOWN,
	                                         PAY_REVERSED, "x", T0 + 3),
	             STORE_FAIL);
	/* not in `from` */
	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_PENDING,
	                                         PAY_SUCCEEDED, "late",
	                                         T0 + 3),
	             STORE_CONFLICT);
	CHECK_EQ_INT(st->ops->payment_transition(st, 999999, PAY_CREATED,
	                                         PAY_PENDING, "x", T0 + 3),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_UNKNOWN,
	                                         PAY_SUCCEEDED, "status query",
	                                         T0 + 4),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->payment_transition(st, p.id, PAY_SUCCEEDED,
	                                         PAY_REVERSED, "refund",
	                                         T0 + 5),
	             STORE_OK);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->payment_get(st, p.id, &g), STORE_OK);
	CHECK_EQ_INT(g.id, p.id);
	CHECK_EQ_STR(g.ref, "PAY-0001");
	CHECK_EQ_INT(g.state, PAY_REVERSED);
	CHECK_EQ_INT(g.currency, KES);
	CHECK_EQ_INT(g.amount_minor, 1500);
	CHECK_EQ_INT(g.txn_id, 0);
	CHECK_EQ_INT(g.created_ms, T0);
	CHECK_EQ_INT(g.updated_ms, T0 + 5);
	CHECK_EQ_INT(st->ops->payment_get(st, 999999, &g), STORE_NOT_FOUND);

	CHECK_EQ_INT(st->ops->payment_events(st, p.id, ev, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 5);
	if (n == 5) {
		CHECK_EQ_INT(ev[0].from, 0);
		CHECK_EQ_INT(ev[0].to, PAY_CREATED);
		CHECK_EQ_INT(ev[0].at_ms, T0);
		CHECK_EQ_INT(ev[1].from, PAY_CREATED);
		CHECK_EQ_INT(ev[1].to, PAY_PENDING);
		CHECK_EQ_STR(ev[1].reason, "sent");
		CHECK_EQ_INT(ev[2].to, PAY_UNKNOWN);
		CHECK_EQ_INT(ev[3].from, PAY_UNKNOWN);
		CHECK_EQ_INT(ev[3].to, PAY_SUCCEEDED);
		CHECK_EQ_STR(ev[3].reason, "status query");
		CHECK_EQ_INT(ev[4].to, PAY_REVERSED);
		CHECK_EQ_INT(ev[4].at_ms, T0 + 5);
	}
	CHECK_EQ_INT(st->ops->payment_events(st, p.id, ev, 2, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);

	/* a payment tied to its ledger transaction */
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	t1 = fund(lg, sus, a, 700, "fund:a");
	memset(&q, 0, sizeof q);
	strlcpy_s(q.ref, "PAY-0002 \"odd\"", sizeof q.ref);
	q.currency = KES;
	q.amount_minor = 700;
	q.txn_id = t1;
	q.created_ms = T0 + 10;
	CHECK_EQ_INT(st->ops->payment_create(st, &q), STORE_OK);
	CHECK_EQ_INT(st->ops->payment_get(st, q.id, &g), STORE_OK);
	CHECK_EQ_INT(g.txn_id, t1);
	CHECK_EQ_STR(g.ref, "PAY-0002 \"odd\"");
	CHECK_EQ_INT(st->ops->payment_transition(st, q.id, PAY_CREATED,
	                                         PAY_FAILED, "refused",
	                                         T0 + 11),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->payment_transition(st, q.id, PAY_FAILED,
	                                         PAY_PENDING, "x", T0 + 12),
	             STORE_FAIL);
	CHECK_EQ_INT(st->ops->payment_events(st, q.id, ev, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
out:
	finish(st, lg);
}

/* Writes the store never makes are refused by the database itself. */
static void
test_bypass(void)
{
	static const char *const refused[] = {
		"UPDATE payments SET state = 5 WHERE state = 1",
		"UPDATE payments SET state = 3",
		"INSERT INTO payments (ref, state, currency, amount_minor, "
		"created_ms, updated_ms) VALUES ('raw', 3, 404, 1, 0, 0)",
		"INSERT INTO payment_events (payment_id, from_state, to_state, "
		"reason, at_ms) SELECT id, 1, 5, 'raw', 0 FROM payments",
		"UPDATE payment_events SET reason = 'edited'",
		"DELETE FROM payment_events",
		"UPDATE postings SET amount_minor = amount_minor + 1",
		"UPDATE postings SET account_id = account_id",
		"DELETE FROM postings",
		"UPDATE txns SET memo = 'edited'",
		"DELETE FROM txns",
	};
	struct store *st;
	struct ledger *lg = NULL;
	struct payment p, g;
	char seen[64], all[512];
	size_t i, n = 0;
	int64_t sus, a;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	fund(lg, sus, a, 700, "fund:a");
	memset(&p, 0, sizeof p);
	strlcpy_s(p.ref, "PAY-1", sizeof p.ref);
	p.currency = KES;
	p.amount_minor = 10;
	p.created_ms = T0;
	CHECK_EQ_INT(st->ops->payment_create(st, &p), STORE_OK);

	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		int rc = raw_exec(refused[i]);

		if (rc == 0)
			fprintf(stderr, "  accepted: %s\n", refused[i]);
		CHECK(rc != 0);
	}
	if (is_pg) {
		CHECK(raw_exec("TRUNCATE postings") != 0);
		CHECK(raw_exec("TRUNCATE txns CASCADE") != 0);
		CHECK(raw_exec("TRUNCATE payment_events") != 0);
	}
	CHECK_EQ_INT(st->ops->payment_get(st, p.id, &g), STORE_OK);
	CHECK_EQ_INT(g.state, PAY_CREATED);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM postings"), 2);
	CHECK_EQ_INT(balance(st, a), 700);

	/* what the triggers allow, verify() catches */
	CHECK_EQ_INT(raw_exec("UPDATE accounts SET balance_minor = "
	                      "balance_minor + 1 WHERE code = 'wallet:a'"),
	             0);
	seen[0] = '\0';
	CHECK_EQ_INT(st->ops->verify(st, on_violation_note, seen, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_STR(seen, "balance_cache_mismatch");
	CHECK_EQ_INT(raw_exec("UPDATE accounts SET balance_minor = "
	                      "balance_minor - 1 WHERE code = 'wallet:a'"),
	             0);
	/* accounts are closed, never deleted (both backends) */
	CHECK(raw_exec("DELETE FROM accounts WHERE code = 'wallet:a'") != 0);
	{
		/* no posting foreign keys (001_ledger.sql, both backends):
		 * an orphan written by hand is reported by verify() */
		CHECK_EQ_INT(raw_exec("INSERT INTO postings VALUES ((SELECT "
		                      "MAX(id) FROM txns), 7, 999999, 1, 404), "
		                      "((SELECT MAX(id) FROM txns), 8, 1, -1, "
		                      "404)"),
		             0);
		all[0] = '\0';
		n = 0;
		CHECK_EQ_INT(st->ops->verify(st, on_violation_append, all, &n),
		             STORE_OK);
		CHECK(strstr(all, "posting_orphan") != NULL);
		/* the rows stay (append-only): start the next test afresh */
		finish_unverified(st, lg);
		return;
	}
out:
	finish(st, lg);
}

/*
 * A balance changed by another handle (another sokod on PostgreSQL, sokoctl
 * or a second connection on SQLite) between two batches is seen by the
 * next batch: no decision is made on a stale, cached balance.
 */
static void
test_other_writer_seen(void)
{
	struct store *st = NULL, *st2 = NULL;
	struct ledger *lg = NULL, *lg2 = NULL;
	struct ledger_req r;
	struct ledger_result res;
	int64_t sus, a, b;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	if ((st2 = open_db()) == NULL || (lg2 = new_ledger(st2)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "float:a", LEDGER_ACCT_AGENT_FLOAT, KES, true,
	               false);
	b = mk_account(st, "float:b", LEDGER_ACCT_AGENT_FLOAT, KES, true,
	               false);
	fund(lg, sus, a, 100, "fund:a"); /* handle 1 has now read a */
	fund(lg2, a, b, 100, "a-to-b");  /* handle 2 empties it */
	r = mk_req("a-again", KES, a, b, 50);
	res = commit1(lg, &r, T0);
	CHECK_EQ_INT(res.rc, LEDGER_INSUFFICIENT_FUNDS);
	fund(lg2, sus, a, 30, "refill:a");
	r = mk_req("a-30", KES, a, b, 30);
	res = commit1(lg, &r, T0);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	CHECK_EQ_INT(balance(st, a), 0);
	CHECK_EQ_INT(balance(st, b), 130);
out:
	finish(st2, lg2);
	finish(st, lg);
}

/* ------------------------------------------------------- concurrency */

/* A handle for a worker thread: no CHECK here (check.h is not
 * thread-safe); the caller checks the results. */
static struct store *
thread_open(struct ledger **lg)
{
	char err[256] = "";
	struct store *st = is_pg ? store_pg_open(pg_conninfo, err, sizeof err)
	                         : store_sqlite_open(db_path, err, sizeof err);

	*lg = NULL;
	if (st == NULL) {
		fprintf(stderr, "  thread open: %s\n", err);
		return NULL;
	}
	if ((*lg = ledger_new(st, err, sizeof err)) == NULL) {
		fprintf(stderr, "  thread ledger_new: %s\n", err);
		store_close(st);
		return NULL;
	}
	return st;
}

struct balance_sum {
	int64_t sum;
	int n;
};

static int
sum_balance(void *arg, const struct ledger_account *a)
{
	struct balance_sum *s = arg;

	s->sum += a->balance_minor;
	s->n++;
	return 0;
}

#define CW_THREADS 4
#define CW_ACCTS   50
#define CW_BATCHES 20
#define CW_BATCH   100

struct cw_arg {
	int no;
	const int64_t *ids; /* CW_ACCTS wallets */
	pthread_barrier_t *bar;
	int64_t delta[CW_ACCTS]; /* from this thread's accepted transfers */
	int n_ok, n_refused, n_other, n_retry, n_failed_batches;
	bool is_open;
};

static void *
cw_thread(void *p)
{
	struct cw_arg *a = p;
	struct ledger *lg;
	struct store *st = thread_open(&lg);
	struct ledger_req *r = xcalloc(CW_BATCH, sizeof *r);
	struct ledger_result *res = xcalloc(CW_BATCH, sizeof *res);
	int from[CW_BATCH], to[CW_BATCH];
	unsigned seed = 1234u + (unsigned)a->no;
	int b, i;

	a->is_open = st != NULL;
	pthread_barrier_wait(a->bar);
	for (b = 0; st != NULL && b < CW_BATCHES; b++) {
		for (i = 0; i < CW_BATCH; i++) {
			char key[64];
			int64_t amt = 1 + rand_r(&seed) % 100;

			from[i] = rand_r(&seed) % CW_ACCTS;
			to[i] = (from[i] + 1 + rand_r(&seed) % (CW_ACCTS - 1)) %
			        CW_ACCTS;
			snprintf(key, sizeof key, "cw:%d:%d:%d", a->no, b, i);
			r[i] = mk_req(key, KES, a->ids[from[i]], a->ids[to[i]],
			              amt);
		}
		if (ledger_commit_batch(lg, r, CW_BATCH, res, T0) != 0) {
			fprintf(stderr, "  thread %d batch %d: %s\n", a->no, b,
			        st->errstr);
			a->n_failed_batches++;
			a->n_retry += CW_BATCH;
			continue;
		}
		for (i = 0; i < CW_BATCH; i++) {
			if (res[i].rc == LEDGER_OK) {
				a->n_ok++;
				a->delta[from[i]] -= r[i].legs[1].amount_minor;
				a->delta[to[i]] += r[i].legs[1].amount_minor;
			} else if (res[i].rc == LEDGER_INSUFFICIENT_FUNDS) {
				a->n_refused++;
			} else {
				a->n_other++;
			}
		}
	}
	free(r);
	free(res);
	ledger_free(lg);
	store_close(st);
	return NULL;
}

/* Several instances write at once, each with its own handle. */
static void
test_concurrent_writers(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req *r = xcalloc(CW_ACCTS, sizeof *r);
	struct ledger_result *res = xcalloc(CW_ACCTS, sizeof *res);
	struct cw_arg *arg = xcalloc(CW_THREADS, sizeof *arg);
	pthread_t th[CW_THREADS];
	pthread_barrier_t bar;
	struct balance_sum bs = {0, 0};
	int64_t ids[CW_ACCTS], sus;
	int i, t, n_ok = 0, n_ref = 0;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	for (i = 0; i < CW_ACCTS; i++) {
		char code[32], key[32];

		snprintf(code, sizeof code, "wallet:%d", i);
		snprintf(key, sizeof key, "fund:%d", i);
		ids[i] = mk_account(st, code, LEDGER_ACCT_CUSTOMER_WALLET, KES,
		                    true, false);
		r[i] = mk_req(key, KES, sus, ids[i], 1000);
	}
	CHECK_EQ_INT(ledger_commit_batch(lg, r, CW_ACCTS, res, T0), 0);
	pthread_barrier_init(&bar, NULL, CW_THREADS);
	for (t = 0; t < CW_THREADS; t++) {
		arg[t].no = t;
		arg[t].ids = ids;
		arg[t].bar = &bar;
		pthread_create(&th[t], NULL, cw_thread, &arg[t]);
	}
	for (t = 0; t < CW_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (t = 0; t < CW_THREADS; t++) {
		CHECK(arg[t].is_open);
		CHECK_EQ_INT(arg[t].n_retry, 0);
		CHECK_EQ_INT(arg[t].n_other, 0);
		n_ok += arg[t].n_ok;
		n_ref += arg[t].n_refused;
	}
	CHECK_EQ_INT(n_ok + n_ref, CW_THREADS * CW_BATCHES * CW_BATCH);
	printf("# concurrent writers: %d accepted, %d insufficient funds\n",
	       n_ok, n_ref);
	for (i = 0; i < CW_ACCTS; i++) {
		int64_t want = 1000;

		for (t = 0; t < CW_THREADS; t++)
			want += arg[t].delta[i];
		CHECK_EQ_INT(balance(st, ids[i]), want);
	}
	CHECK_EQ_INT(st->ops->account_list(st, sum_balance, &bs), STORE_OK);
	CHECK_EQ_INT(bs.sum, 0);
	CHECK_EQ_INT(bs.n, CW_ACCTS + 1);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), CW_ACCTS + n_ok);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM idem"),
	             CW_ACCTS + CW_THREADS * CW_BATCHES * CW_BATCH);
out:
	free(r);
	free(res);
	free(arg);
	finish(st, lg);
}

#define HOT_THREADS 8
#define HOT_BATCHES 10
#define HOT_BATCH   50

struct hot_arg {
	int no;
	int64_t src, hot;
	pthread_barrier_t *bar;
	int64_t sum; /* accepted credits */
	int n_ok, n_bad;
	bool is_open;
};

static void *
hot_thread(void *p)
{
	struct hot_arg *a = p;
	struct ledger *lg;
	struct store *st = thread_open(&lg);
	struct ledger_req r[HOT_BATCH];
	struct ledger_result res[HOT_BATCH];
	int b, i;

	a->is_open = st != NULL;
	pthread_barrier_wait(a->bar);
	for (b = 0; st != NULL && b < HOT_BATCHES; b++) {
		for (i = 0; i < HOT_BATCH; i++) {
			char key[64];

			snprintf(key, sizeof key, "hot:%d:%d:%d", a->no, b, i);
			r[i] = mk_req(key, KES, a->src, a->hot,
			              1 + a->no * 1000 + b * 10 + i);
		}
		if (ledger_commit_batch(lg, r, HOT_BATCH, res, T0) != 0) {
			fprintf(stderr, "  hot %d: %s\n", a->no, st->errstr);
			a->n_bad += HOT_BATCH;
			continue;
		}
		for (i = 0; i < HOT_BATCH; i++) {
			if (res[i].rc != LEDGER_OK) {
				a->n_bad++;
				continue;
			}
			a->n_ok++;
			a->sum += r[i].legs[1].amount_minor;
		}
	}
	ledger_free(lg);
	store_close(st);
	return NULL;
}

/* Every transfer credits one account, from many instances at once. */
static void
test_hot_account(void)
{
	struct store *st;
	struct hot_arg arg[HOT_THREADS];
	pthread_t th[HOT_THREADS];
	pthread_barrier_t bar;
	int64_t hot, want = 0;
	int t;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	hot = mk_account(st, "merchant:hot", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	memset(arg, 0, sizeof arg);
	pthread_barrier_init(&bar, NULL, HOT_THREADS);
	for (t = 0; t < HOT_THREADS; t++) {
		char code[32];

		snprintf(code, sizeof code, "provider:%d", t);
		arg[t].no = t;
		arg[t].hot = hot;
		arg[t].src = mk_account(st, code,
		                        LEDGER_ACCT_PROVIDER_CLEARING, KES,
		                        false, false);
		arg[t].bar = &bar;
	}
	for (t = 0; t < HOT_THREADS; t++)
		pthread_create(&th[t], NULL, hot_thread, &arg[t]);
	for (t = 0; t < HOT_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (t = 0; t < HOT_THREADS; t++) {
		CHECK(arg[t].is_open);
		CHECK_EQ_INT(arg[t].n_ok, HOT_BATCHES * HOT_BATCH);
		CHECK_EQ_INT(arg[t].n_bad, 0);
		want += arg[t].sum;
		CHECK_EQ_INT(balance(st, arg[t].src), -arg[t].sum);
	}
	CHECK_EQ_INT(balance(st, hot), want);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"),
	             HOT_THREADS * HOT_BATCHES * HOT_BATCH);
	finish(st, NULL);
}

#define LR_THREADS 20

struct lr_arg {
	int no;
	int64_t src, dst;
	pthread_barrier_t *bar;
	struct ledger_result res;
	int commit_rc;
	bool is_open;
};

static void *
lr_thread(void *p)
{
	struct lr_arg *a = p;
	struct ledger *lg;
	struct store *st = thread_open(&lg);
	struct ledger_req r;
	char key[32];

	a->is_open = st != NULL;
	snprintf(key, sizeof key, "lr:%d", a->no);
	r = mk_limited(key, a->src, a->dst, 100, LEDGER_SUBJ_MSISDN,
	               "254711111111");
	pthread_barrier_wait(a->bar); /* all at once */
	a->commit_rc = -2;
	if (st != NULL) {
		a->commit_rc = ledger_commit_batch(lg, &r, 1, &a->res, T0);
		if (a->commit_rc != 0)
			fprintf(stderr, "  limits race %d: %s\n", a->no,
			        st->errstr);
	}
	ledger_free(lg);
	store_close(st);
	return NULL;
}

/* 20 instances spend against one daily limit at the same instant: the
 * locked usage row lets exactly the limit through. */
static void
test_limits_race(void)
{
	struct store *st;
	struct lr_arg arg[LR_THREADS];
	pthread_t th[LR_THREADS];
	pthread_barrier_t bar;
	int64_t sus, w, accepted = 0;
	int t, n_ok = 0, n_daily = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	w = mk_account(st, "wallet:w", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	set_rule(st, LEDGER_SUBJ_MSISDN, "254711111111", 0, 1000, 0, 0);
	memset(arg, 0, sizeof arg);
	pthread_barrier_init(&bar, NULL, LR_THREADS);
	for (t = 0; t < LR_THREADS; t++) {
		arg[t].no = t;
		arg[t].src = sus;
		arg[t].dst = w;
		arg[t].bar = &bar;
		pthread_create(&th[t], NULL, lr_thread, &arg[t]);
	}
	for (t = 0; t < LR_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (t = 0; t < LR_THREADS; t++) {
		CHECK(arg[t].is_open);
		CHECK_EQ_INT(arg[t].commit_rc, 0);
		if (arg[t].res.rc == LEDGER_OK) {
			n_ok++;
			accepted += 100;
		} else if (arg[t].res.rc == LEDGER_LIMIT_DAILY) {
			n_daily++;
		} else {
			fprintf(stderr, "  limits race %d: %s\n", t,
			        ledger_rc_name(arg[t].res.rc));
		}
	}
	CHECK(accepted <= 1000);
	CHECK_EQ_INT(accepted, 1000);
	CHECK_EQ_INT(n_ok, 10);
	CHECK_EQ_INT(n_daily, LR_THREADS - 10);
	CHECK_EQ_INT(balance(st, w), 1000);
	CHECK_EQ_INT(raw_i64("SELECT amount_minor FROM limit_usage WHERE "
	                     "subject = '254711111111' AND window_s = 86400"),
	             1000);
	finish(st, NULL);
}

/* PostgreSQL: a lost connection is RETRY once, then the handle works
 * again (re-prepared); a batch cut off mid-way leaves nothing behind. */
static void
test_pg_reconnect(void)
{
	static const char *const kill_others =
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
		"WHERE datname = current_database() AND "
		"pid <> pg_backend_pid()";
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req r;
	struct ledger_result res;
	int64_t sus, a;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	a = mk_account(st, "wallet:a", LEDGER_ACCT_CUSTOMER_WALLET, KES, true,
	               false);
	CHECK_EQ_INT(raw_exec(kill_others), 0);
	CHECK_EQ_INT(st->ops->ping(st), STORE_RETRY);
	CHECK_EQ_INT(st->ops->ping(st), STORE_OK);
	CHECK_EQ_INT(balance(st, a), 0);

	/* killed inside a transaction: RETRY, nothing written */
	CHECK_EQ_INT(st->ops->begin(st), STORE_OK);
	CHECK_EQ_INT(raw_exec(kill_others), 0);
	CHECK_EQ_INT(st->ops->commit(st), STORE_RETRY);
	st->ops->rollback(st);

	/* killed between batches: the ledger's retry recovers */
	CHECK_EQ_INT(raw_exec(kill_others), 0);
	r = mk_req("rc:1", KES, sus, a, 5);
	res = commit1(lg, &r, T0);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	CHECK_EQ_INT(balance(st, a), 5);
out:
	finish(st, lg);
}

/* ------------------------------------------------------------- bench */

/* Ledger throughput through the real batch path, one instance; prints a
 * measurement, checks only correctness.  SOKO_BENCH_BATCHES scales it. */
static void
test_bench(void)
{
	enum { BATCH = 1000, N_PAYERS = 2000, N_MERCH = 20 };
	const char *env = getenv("SOKO_BENCH_BATCHES");
	int n_batches = env != NULL ? atoi(env) : 10;
	struct store *st;
	struct ledger *lg = NULL;
	struct ledger_req *fund_r = xcalloc(BATCH, sizeof *fund_r);
	struct ledger_req *all = NULL, *r = fund_r;
	struct ledger_result *res = xcalloc(BATCH, sizeof *res);
	struct ledger_limit_rule rule;
	struct timespec t0, t1;
	int64_t sus, payer0, merch0, n_ok = 0;
	int b, i, pass;
	double secs;

	fresh_db();
	if ((st = open_db()) == NULL)
		goto out;
	sus = mk_account(st, "suspense", LEDGER_ACCT_SUSPENSE, KES, false,
	                 false);
	CHECK_EQ_INT(raw_exec("WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL "
	                      "SELECT n + 1 FROM g WHERE n < 2020) "
	                      "INSERT INTO accounts (code, type, currency, "
	                      "has_floor, floor_minor, is_closed, created_ms) "
	                      "SELECT 'b:' || n, 8, 404, 1, 0, 0, 0 FROM g"),
	             0);
	payer0 = raw_i64("SELECT MIN(id) FROM accounts WHERE code = 'b:1'");
	merch0 = payer0 + N_PAYERS;
	memset(&rule, 0, sizeof rule);
	rule.subject_kind = LEDGER_SUBJ_MSISDN;
	strlcpy_s(rule.subject, "*", sizeof rule.subject);
	rule.currency = KES;
	rule.daily_max = MONEY_MAX_MINOR;
	CHECK_EQ_INT(st->ops->limit_set(st, &rule), STORE_OK);
	if ((lg = new_ledger(st)) == NULL)
		goto out;
	for (b = 0; b < N_PAYERS / BATCH; b++) {
		for (i = 0; i < BATCH; i++) {
			char key[32];

			snprintf(key, sizeof key, "fund:%d", b * BATCH + i);
			r[i] = mk_req(key, KES, sus, payer0 + b * BATCH + i,
			              100000000);
		}
		CHECK_EQ_INT(ledger_commit_batch(lg, r, BATCH, res, T0), 0);
	}
	/* pass 0: plain transfers; pass 1: each counted against an MSISDN
	 * daily limit (one usage row per payment) */
	all = xcalloc((size_t)n_batches * BATCH, sizeof *all);
	for (pass = 0; pass < 2; pass++) {
		/* requests are built (and hashed) before the clock starts:
		 * this measures the ledger and the store */
		for (i = 0; i < n_batches * BATCH; i++) {
			char key[48];

			snprintf(key, sizeof key, "bench:%d:%d", pass, i);
			all[i] = mk_req(key, KES, payer0 + (i % N_PAYERS),
			                merch0 + (i % N_MERCH), 1 + i % 5000);
			if (pass == 1) {
				all[i].subjects[0].kind = LEDGER_SUBJ_MSISDN;
				snprintf(all[i].subjects[0].id,
				         sizeof all[i].subjects[0].id,
				         "2547%08d", i % N_PAYERS);
				ledger_req_hash(&all[i]);
			}
		}
		n_ok = 0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (b = 0; b < n_batches; b++) {
			r = all + (size_t)b * BATCH;
			if (ledger_commit_batch(lg, r, BATCH, res, T0) != 0) {
				fprintf(stderr, "  bench: %s\n", st->errstr);
				CHECK(0);
				break;
			}
			for (i = 0; i < BATCH; i++)
				n_ok += res[i].rc == LEDGER_OK;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		secs = (double)(t1.tv_sec - t0.tv_sec) +
		       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		CHECK_EQ_INT(n_ok, (int64_t)n_batches * BATCH);
		printf("# bench %s %s: %" PRId64 " payments in %.3f s = "
		       "%.0f/s (batches of %d)\n",
		       st->ops->name, pass ? "with limits" : "plain", n_ok,
		       secs, secs > 0 ? (double)n_ok / secs : 0.0, BATCH);
	}
out:
	free(all);
	free(fund_r);
	free(res);
	finish(st, lg);
}

int
main(int argc, char **argv)
{
	const char *be = argc > 1 ? argv[1] : "";
	const char *tmp = getenv("TMPDIR");

	if (strcmp(be, "pg") == 0) {
		is_pg = true;
		pg_conninfo = getenv("SOKO_TEST_PG");
		if (pg_conninfo == NULL || pg_conninfo[0] == '\0') {
			fprintf(stderr, "test_store pg: SOKO_TEST_PG is not "
			                "set (run: sh tests/pg.sh %s pg)\n",
			        argv[0]);
			return 1;
		}
	} else if (strcmp(be, "sqlite") != 0) {
		fprintf(stderr, "usage: test_store sqlite|pg\n");
		return 2;
	}
	snprintf(tmp_dir, sizeof tmp_dir, "%s/soko-store.XXXXXX",
	         tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	if (!is_pg && mkdtemp(tmp_dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}

	RUN(test_migrations);
	RUN(test_accounts);
	RUN(test_pos_provisioning);
	RUN(test_pos_txns);
	RUN(test_transfer);
	RUN(test_errors);
	RUN(test_idempotency);
	RUN(test_reversal);
	RUN(test_limits);
	RUN(test_payments);
	RUN(test_bypass);
	RUN(test_other_writer_seen);
	RUN(test_concurrent_writers);
	RUN(test_hot_account);
	RUN(test_limits_race);
	if (is_pg)
		RUN(test_pg_reconnect);
	RUN(test_bench);

	if (!is_pg) {
		char cmd[600];

		/* the temp dir holds only our t*.db files and their WAL */
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: could not remove %s\n",
			        tmp_dir);
	}
	return check_report(is_pg ? "store_pg" : "store_sqlite");
}
