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
#include "svc_prov.h"
#include "svc_recon.h"
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

/* How many migrations there are (versions may have gaps while branches
 * that each add one are merged). */
static int64_t
n_migrations(void)
{
	const struct store_migration *m =
		is_pg ? store_migrations_pg : store_migrations_sqlite;
	int64_t n = 0;

	for (; m->sql != NULL; m++)
		n++;
	return n;
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
	             n_migrations());
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

/* Counts the listed terminals that name merchant M1 (its code and
 * account read with them). */
static int
count_merchant(void *arg, const struct store_terminal *t)
{
	int *n = arg;

	if (t->merchant_id != 0 && strcmp(t->merchant.code, "M1") == 0 &&
	    t->merchant.payable_account_id > 0)
		(*n)++;
	return 0;
}

/* POS provisioning (003_pos, 015_pos_merchants): agents, merchants,
 * terminals with wrapped keys, status changes, uniqueness. */
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
	/* the agent's block: seen by agent_get and with its terminals */
	CHECK_EQ_INT(st->ops->agent_set_status(st, "A1",
	                                       STORE_POS_BLOCKED),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->agent_get(st, "A1", &got), STORE_OK);
	CHECK_EQ_INT(got.status, STORE_POS_BLOCKED);
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg),
	             STORE_OK);
	CHECK_EQ_INT(tg.agent.status, STORE_POS_BLOCKED);
	CHECK_EQ_INT(tg.status, STORE_POS_ACTIVE);
	CHECK_EQ_INT(st->ops->agent_set_status(st, "A1",
	                                       STORE_POS_ACTIVE),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->agent_get(st, "A1", &got), STORE_OK);
	CHECK_EQ_INT(got.status, STORE_POS_ACTIVE);
	CHECK_EQ_INT(st->ops->agent_set_status(st, "A-nope",
	                                       STORE_POS_BLOCKED),
	             STORE_NOT_FOUND);
	/* a terminal needs a real agent */
	strlcpy_s(t.id, "T-000124", sizeof t.id);
	t.agent_id = 999999;
	CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_FAIL);
	CHECK_EQ_INT(st->ops->terminal_list(st, count_terminal, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	/* a new key (sokoctl terminal rekey): read back; unknown id */
	{
		uint8_t nk[STORE_KEY_WRAPPED_LEN];

		memset(nk, 0x5c, sizeof nk);
		CHECK_EQ_INT(st->ops->terminal_set_key(st, "T-000123", nk),
		             STORE_OK);
		CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg),
		             STORE_OK);
		CHECK(memcmp(tg.key_wrapped, nk, sizeof nk) == 0);
		CHECK_EQ_INT(st->ops->terminal_set_key(st, "T-nope", nk),
		             STORE_NOT_FOUND);
	}
	/* no merchant: zero */
	CHECK_EQ_INT(st->ops->terminal_get(st, "T-000123", &tg), STORE_OK);
	CHECK_EQ_INT(tg.merchant_id, 0);
	CHECK_EQ_INT(tg.merchant.payable_account_id, 0);
	CHECK_EQ_STR(tg.merchant.code, "");
	/* merchants (015): a terminal of a merchant reads its payable
	 * account with it, in get and in list */
	{
		struct store_merchant m, mg;
		int64_t pay = mk_account(st, "merchant:M1:payable",
		                         LEDGER_ACCT_MERCHANT_PAYABLE, KES,
		                         false, false);

		memset(&m, 0, sizeof m);
		strlcpy_s(m.code, "M1", sizeof m.code);
		m.payable_account_id = pay;
		m.created_ms = T0;
		CHECK_EQ_INT(st->ops->merchant_create(st, &m), STORE_OK);
		CHECK(m.id > 0);
		CHECK_EQ_INT(st->ops->merchant_create(st, &m), STORE_CONFLICT);
		CHECK_EQ_INT(st->ops->merchant_get(st, "M1", &mg), STORE_OK);
		CHECK_EQ_INT(mg.id, m.id);
		CHECK_EQ_INT(mg.payable_account_id, pay);
		CHECK_EQ_INT(mg.created_ms, T0);
		CHECK_EQ_INT(st->ops->merchant_get(st, "M-nope", &mg),
		             STORE_NOT_FOUND);
		strlcpy_s(m.code, "M2", sizeof m.code);
		m.payable_account_id = 999999; /* no such account */
		CHECK_EQ_INT(st->ops->merchant_create(st, &m), STORE_FAIL);
		strlcpy_s(t.id, "T-000125", sizeof t.id);
		t.agent_id = got.id;
		t.merchant_id = mg.id;
		CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_OK);
		CHECK_EQ_INT(st->ops->terminal_get(st, "T-000125", &tg),
		             STORE_OK);
		CHECK_EQ_INT(tg.merchant_id, mg.id);
		CHECK_EQ_STR(tg.merchant.code, "M1");
		CHECK_EQ_INT(tg.merchant.payable_account_id, pay);
		CHECK_EQ_STR(tg.agent.code, "A1");
		strlcpy_s(t.id, "T-000126", sizeof t.id);
		t.merchant_id = 999999; /* no such merchant */
		CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_FAIL);
		n = 0;
		CHECK_EQ_INT(st->ops->terminal_list(st, count_merchant, &n),
		             STORE_OK);
		CHECK_EQ_INT(n, 1); /* T-000125 only */
	}
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
	/* reads grouped in one read transaction (store.h read_begin): the
	 * same answers, no nesting, and nothing left open after read_end
	 * (the commit below takes the write lock) */
	if (st->ops->read_begin != NULL) {
		CHECK_EQ_INT(st->ops->read_begin(st), STORE_OK);
		CHECK_EQ_INT(st->ops->read_begin(st), STORE_FAIL);
		memset(id, 2, sizeof id);
		CHECK_EQ_INT(st->ops->pos_txn_get(st, "T1", id, &got),
		             STORE_OK);
		CHECK_EQ_INT(got.rc, LEDGER_INSUFFICIENT_FUNDS);
		CHECK_EQ_INT(st->ops->pos_txn_get(st, "T2", id, &got),
		             STORE_NOT_FOUND);
		st->ops->read_end(st);
		st->ops->read_end(st); /* none open: nothing to do */
	}
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
	/* reversed while its batch is open: never in a close's totals */
	r[0] = mk_req("pos:T1:06", KES, a, b, 11);
	p[0] = mk_pos("T1", 6, 0x13, 11, "A2");
	r[0].pos = &p[0];
	res[0] = commit1(lg, &r[0], T0 + 13);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	r[1] = mk_reversal("pos:T1:06:rev", res[0].txn_id);
	CHECK_EQ_INT(commit1(lg, &r[1], T0 + 14).rc, LEDGER_OK);
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
	if (!is_pg) {
		/* SQLite keeps running totals (014): verify compares them
		 * with the rows and names a total that differs */
		char seen[512] = "";
		size_t nv = 0;

		CHECK_EQ_INT(raw_exec("UPDATE pos_batch_totals SET count = "
		                      "count + 1 WHERE terminal_id = 'T1' "
		                      "AND batch_no = 2"),
		             0);
		CHECK_EQ_INT(st->ops->verify(st, on_violation_append, seen,
		                             &nv),
		             STORE_OK);
		CHECK_EQ_INT(nv, 2); /* the rows' line, and the totals' */
		CHECK(strstr(seen, "pos_totals_mismatch") != NULL);
		CHECK_EQ_INT(raw_exec("UPDATE pos_batch_totals SET count = "
		                      "count - 1 WHERE terminal_id = 'T1' "
		                      "AND batch_no = 2"),
		             0);
	}
out:
	finish(st, lg);
}

/* SQLite migration 014 builds the running EOD totals from the rows the
 * closes before it stamped: a database at 013 with closed batches, an
 * open one and reversals in both reads the same totals after it. */
static void
test_pos_totals_migration(void)
{
	static const char rows[] =
		"INSERT INTO txns (id, kind, currency, amount_minor, "
		"reverses_txn_id, created_ms) VALUES (1, 1, 404, 100, NULL, 1), "
		"(2, 1, 404, 200, NULL, 2), (3, 1, 404, 300, NULL, 3), "
		"(4, 1, 404, 400, NULL, 4), (5, 1, 404, 500, NULL, 5), "
		"(6, 2, 404, 200, 2, 6), (7, 2, 404, 400, 4, 7), "
		"(8, 1, 404, 800, NULL, 8);"
		"INSERT INTO pos_txns (terminal_id, txn_id, type, currency, "
		"amount_minor, rc, ledger_txn_id, created_ms, batch_no) VALUES "
		"('T1', x'01000000000000000000000000000000', 19, 404, 100, 0, 1, "
		"1, 7), "
		"('T1', x'02000000000000000000000000000000', 19, 404, 200, 0, 2, "
		"2, 7), "
		"('T1', x'0a000000000000000000000000000000', 19, 404, 999, 51, "
		"NULL, 2, 7), "
		"('T1', x'03000000000000000000000000000000', 19, 404, 300, 0, 3, "
		"3, 8), "
		"('T1', x'04000000000000000000000000000000', 19, 404, 400, 0, 4, "
		"4, NULL), "
		"('T1', x'05000000000000000000000000000000', 19, 404, 500, 0, 5, "
		"5, NULL), "
		"('T2', x'08000000000000000000000000000000', 19, 404, 800, 0, 8, "
		"8, NULL);"
		"INSERT INTO pos_batches (terminal_id, batch_no, closed_ms) "
		"VALUES ('T1', 7, 1000), ('T1', 8, 2000), ('T1', 9, 2500);";
	const struct store_migration *m;
	struct store_pos_total tot[4];
	char seen[512] = "";
	struct store *st;
	sqlite3 *db = NULL;
	int64_t closed;
	bool is_repeat;
	size_t n, nv;
	int from, to;

	if (is_pg)
		return; /* PostgreSQL keeps stamping (014 is SQLite's) */
	fresh_db();
	CHECK_EQ_INT(sqlite3_open(db_path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(db, "CREATE TABLE schema_version (version "
	                              "INTEGER PRIMARY KEY, name TEXT NOT "
	                              "NULL, applied_ms INTEGER NOT NULL)",
	                          NULL, NULL, NULL),
	             SQLITE_OK);
	for (m = store_migrations_sqlite; m->sql != NULL && m->version <= 13;
	     m++) {
		char ins[256];

		CHECK_EQ_INT(sqlite3_exec(db, m->sql, NULL, NULL, NULL),
		             SQLITE_OK);
		snprintf(ins, sizeof ins,
		         "INSERT INTO schema_version VALUES (%d, '%s', 0)",
		         m->version, m->name);
		CHECK_EQ_INT(sqlite3_exec(db, ins, NULL, NULL, NULL), SQLITE_OK);
	}
	CHECK_EQ_INT(sqlite3_exec(db, rows, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	if ((st = open_db()) == NULL)
		return;
	CHECK_EQ_INT(st->ops->migrate(st, &from, &to), STORE_OK);
	CHECK_EQ_INT(to, last_migration());
	/* each close's highest ledger id so far; an empty close keeps
	 * the one before it */
	CHECK_EQ_INT(raw_i64("SELECT upto_txn_id FROM pos_batches WHERE "
	                     "batch_no = 7"),
	             2);
	CHECK_EQ_INT(raw_i64("SELECT upto_txn_id FROM pos_batches WHERE "
	                     "batch_no = 8"),
	             3);
	CHECK_EQ_INT(raw_i64("SELECT upto_txn_id FROM pos_batches WHERE "
	                     "batch_no = 9"),
	             3);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 9, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 0);
	/* batch 7: one approved and one reversed, the declined not at all */
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 7, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].type, 19);
	CHECK_EQ_INT(tot[0].count, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 100);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 8, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 300);
	/* the open rows close into the next batch; T2's stay T2's */
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 10, 3000, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 10, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].count, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 500);
	CHECK_EQ_INT(st->ops->pos_batch_close(st, "T2", 1, 3000, &closed,
	                                      &is_repeat),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_totals(st, "T2", 1, tot, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(tot[0].sum_minor, 800);
	/* the hand-made txns have no postings, so verify has ledger
	 * findings; none about the totals */
	CHECK_EQ_INT(st->ops->verify(st, on_violation_append, seen, &nv),
	             STORE_OK);
	CHECK(nv > 0);
	CHECK(strstr(seen, "pos_totals_mismatch") == NULL);
	finish_unverified(st, NULL);
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

/* ------------------------------------------------- provider payments */

#define ODD_TEXT "a \"q\", {b} \\ c NULL\t'd'"

/* A provider payment to create: collect of amount into target through
 * clearing; req_hash filled with hash_byte. */
static struct store_prov
mk_prov(const char *ref, const char *provider, const char *client_ref,
        const char *provider_ref, int64_t clearing, int64_t target,
        int64_t amount, int64_t next_at_ms, uint8_t hash_byte)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	strlcpy_s(p.pay.ref, ref, sizeof p.pay.ref);
	p.pay.currency = KES;
	p.pay.amount_minor = amount;
	p.pay.created_ms = T0;
	p.kind = STORE_PROV_COLLECT;
	strlcpy_s(p.provider, provider, sizeof p.provider);
	strlcpy_s(p.msisdn, "254700000042", sizeof p.msisdn);
	p.clearing_account_id = clearing;
	p.target_account_id = target;
	strlcpy_s(p.client_ref, client_ref, sizeof p.client_ref);
	strlcpy_s(p.provider_ref, provider_ref, sizeof p.provider_ref);
	p.call_state = STORE_CALL_TO_SEND;
	p.next_at_ms = next_at_ms;
	p.deadline_ms = T0 + DAY_MS;
	memset(p.req_hash, hash_byte, sizeof p.req_hash);
	return p;
}

/* Creates p; its id, or 0. */
static int64_t
prov_new(struct store *st, struct store_prov *p)
{
	enum store_rc rc = st->ops->prov_create(st, p);

	if (rc != STORE_OK)
		fprintf(stderr, "  prov_create %s: %s\n", p->pay.ref,
		        st->errstr);
	CHECK_EQ_INT(rc, STORE_OK);
	return rc == STORE_OK ? p->pay.id : 0;
}

/* An update of payment id that keeps every column but the states. */
static struct store_prov_update
mk_upd(int64_t id, uint8_t from, uint8_t to, uint8_t expect_call,
       uint8_t call_state, int64_t next_at_ms)
{
	struct store_prov_update u;

	memset(&u, 0, sizeof u);
	u.payment_id = id;
	u.from_state = from;
	u.to_state = to;
	u.reason = "test";
	u.expect_call = expect_call;
	u.call_state = call_state;
	u.next_at_ms = next_at_ms;
	return u;
}

static void
check_prov_eq(const struct store_prov *a, const struct store_prov *b)
{
	CHECK_EQ_INT(a->pay.id, b->pay.id);
	CHECK_EQ_STR(a->pay.ref, b->pay.ref);
	CHECK_EQ_INT(a->pay.state, b->pay.state);
	CHECK_EQ_INT(a->pay.currency, b->pay.currency);
	CHECK_EQ_INT(a->pay.amount_minor, b->pay.amount_minor);
	CHECK_EQ_INT(a->pay.txn_id, b->pay.txn_id);
	CHECK_EQ_INT(a->pay.created_ms, b->pay.created_ms);
	CHECK_EQ_INT(a->pay.updated_ms, b->pay.updated_ms);
	CHECK_EQ_INT(a->kind, b->kind);
	CHECK_EQ_STR(a->provider, b->provider);
	CHECK_EQ_STR(a->msisdn, b->msisdn);
	CHECK_EQ_INT(a->clearing_account_id, b->clearing_account_id);
	CHECK_EQ_INT(a->target_account_id, b->target_account_id);
	CHECK_EQ_STR(a->client_ref, b->client_ref);
	CHECK_EQ_STR(a->provider_ref, b->provider_ref);
	CHECK_EQ_INT(a->call_state, b->call_state);
	CHECK_EQ_INT(a->send_attempts, b->send_attempts);
	CHECK_EQ_INT(a->checks, b->checks);
	CHECK_EQ_INT(a->next_at_ms, b->next_at_ms);
	CHECK_EQ_INT(a->deadline_ms, b->deadline_ms);
	CHECK_EQ_STR(a->result_code, b->result_code);
	CHECK_EQ_STR(a->result_desc, b->result_desc);
	CHECK_EQ_STR(a->receipt, b->receipt);
	CHECK(memcmp(a->req_hash, b->req_hash, sizeof a->req_hash) == 0);
}

/* The stored row of payment ref (zeroed if none). */
static struct store_prov
prov_by_ref(struct store *st, const char *ref)
{
	struct store_prov p;

	memset(&p, 0, sizeof p);
	CHECK_EQ_INT(st->ops->prov_get(st, ref, NULL, NULL, NULL, &p),
	             STORE_OK);
	return p;
}

static size_t
n_events(struct store *st, int64_t id)
{
	struct payment_event ev[16];
	size_t n = 0;

	CHECK_EQ_INT(st->ops->payment_events(st, id, ev, 16, &n), STORE_OK);
	return n;
}

/* A disbursement's hold and its payment row are one request
 * (ledger_req.prov_new): both exist, or neither (docs/payments.md
 * §Disbursements); verify() checks the hold against open payments. */
static void
test_disb_hold_batch(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov p, g, q;
	struct ledger_req fund, r;
	struct ledger_result res;
	int64_t clr, src, hold;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	lg = new_ledger(st);
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	src = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	hold = mk_account(st, "hold:mpesa", LEDGER_ACCT_SUSPENSE, KES, true,
	                  false);
	fund = mk_req("fund", KES, clr, src, 1000);
	CHECK_EQ_INT(commit1(lg, &fund, T0).rc, LEDGER_OK);
	p = mk_prov("disb:1", "mpesa", "C-1", "", clr, src, 600, T0, 0xd1);
	p.kind = STORE_PROV_DISBURSE;
	p.hold_account_id = hold;
	r = mk_req("hold:disb:1", KES, src, hold, 600);
	r.prov_new = &p;
	res = commit1(lg, &r, T0);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, "disb:1", NULL, NULL, NULL, &g),
	             STORE_OK);
	CHECK_EQ_INT(g.kind, STORE_PROV_DISBURSE);
	CHECK(g.hold_account_id == hold);
	CHECK(g.pay.txn_id == res.txn_id);
	CHECK_EQ_INT(g.pay.state, PAY_CREATED);
	/* a repeat replays and creates nothing more */
	res = commit1(lg, &r, T0 + 1);
	CHECK(res.is_replay && res.rc == LEDGER_OK);
	/* the source cannot cover it: nothing at all is created */
	q = mk_prov("disb:2", "mpesa", "C-2", "", clr, src, 500, T0, 0xd2);
	q.kind = STORE_PROV_DISBURSE;
	q.hold_account_id = hold;
	r = mk_req("hold:disb:2", KES, src, hold, 500);
	r.prov_new = &q;
	CHECK_EQ_INT(commit1(lg, &r, T0).rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK_EQ_INT(st->ops->prov_get(st, "disb:2", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);
	finish(st, lg);
}

/* A POS payment claims its txn id's ledger key (store_pos_link.idem_key)
 * in the transaction that creates it: a ledger request with that key
 * (a float transfer, a REVERSAL's tombstone) is then IDEM_MISMATCH; a
 * claim already taken refuses the payment, nothing written; in one
 * batch with a request that takes the key, the creating request gets
 * RETRY and the rest commits (docs/payments.md §9a). */
static void
test_pos_claim(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov p, q, g;
	struct store_pos_link l;
	struct store_idem idem;
	struct ledger_req r[2], fund;
	struct ledger_result res[2];
	const char *keys[1];
	int64_t clr, fl, hold, n_pay;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	lg = new_ledger(st);
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	fl = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                true, false);
	hold = mk_account(st, "hold:mpesa", LEDGER_ACCT_SUSPENSE, KES, true,
	                  false);
	fund = mk_req("fund", KES, clr, fl, 5000);
	CHECK_EQ_INT(commit1(lg, &fund, T0).rc, LEDGER_OK);
	memset(&l, 0, sizeof l);
	strlcpy_s(l.terminal_id, "T1", sizeof l.terminal_id);
	memset(l.txn_id, 0x31, sizeof l.txn_id);
	l.type = 0x0010;
	strlcpy_s(l.idem_key, "pos:claim-1:T1", sizeof l.idem_key);
	p = mk_prov("pos:T1:c1", "mpesa", "PC-1", "", clr, fl, 500, T0, 0xc1);
	CHECK_EQ_INT(st->ops->pos_pay_create(st, &p, &l), STORE_OK);
	keys[0] = "pos:claim-1:T1";
	CHECK_EQ_INT(st->ops->idem_get(st, keys, 1, &idem), STORE_OK);
	CHECK_EQ_STR(idem.key, "pos:claim-1:T1");
	CHECK_EQ_INT(idem.rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(idem.txn_id, 0);
	CHECK(memcmp(idem.hash, p.req_hash, sizeof p.req_hash) == 0);
	/* a float transfer (or a tombstone) under the claimed key */
	r[0] = mk_req("pos:claim-1:T1", KES, fl, clr, 100);
	CHECK_EQ_INT(commit1(lg, &r[0], T0).rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(balance(st, fl), 5000);
	/* another payment claiming a taken key: refused, nothing written */
	n_pay = raw_i64("SELECT COUNT(*) FROM payments");
	l.txn_id[0] = 0x32;
	q = mk_prov("pos:T1:c2", "mpesa", "PC-2", "", clr, fl, 700, T0, 0xc2);
	CHECK(st->ops->pos_pay_create(st, &q, &l) != STORE_OK);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments"), n_pay);
	/* one batch: a transfer takes "pos:claim-2:T1", a hold creating a
	 * payment claims it too: the transfer commits, the hold is RETRY
	 * and creates nothing */
	r[0] = mk_req("pos:claim-2:T1", KES, fl, clr, 100);
	q = mk_prov("pos:T1:c3", "mpesa", "PC-3", "", clr, fl, 300, T0, 0xc3);
	q.kind = STORE_PROV_DISBURSE;
	q.hold_account_id = hold;
	l.txn_id[0] = 0x33;
	l.type = 0x0011;
	strlcpy_s(l.idem_key, "pos:claim-2:T1", sizeof l.idem_key);
	q.pos = l;
	r[1] = mk_req("hold:pos:T1:c3", KES, fl, hold, 300);
	r[1].prov_new = &q;
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 2, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_RETRY);
	CHECK_EQ_INT(st->ops->prov_get(st, "pos:T1:c3", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(balance(st, fl), 4900);
	CHECK_EQ_INT(balance(st, hold), 0);
	finish(st, lg);
}

/* An M-Pesa reversal (docs/payments.md §M-Pesa reversal): a
 * disbursement row naming the collection it reverses; its success moves
 * the collection succeeded -> reversed in the same commit (migration
 * 009's trigger), and is refused whole when the collection is not
 * succeeded; one reversal per collection. */
static void
test_prov_reversal(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov c1, c2, rv, rv2, g;
	struct store_prov_update u;
	struct payment_event ev[8];
	struct ledger_req r;
	size_t n = 0;
	int64_t clr, mer, hold;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	hold = mk_account(st, "hold:mpesa", LEDGER_ACCT_SUSPENSE, KES, true,
	                  false);
	c1 = mk_prov("RC-1", "mpesa", "C-1", "MP-1", clr, mer, 1500, T0, 1);
	c2 = mk_prov("RC-2", "mpesa", "C-2", "MP-2", clr, mer, 700, T0, 2);
	if (prov_new(st, &c1) == 0 || prov_new(st, &c2) == 0)
		goto out;
	u = mk_upd(c1.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	u.payment_id = c2.pay.id;
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	u = mk_upd(c1.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	u.receipt = "RCPT1";
	r = mk_req("prov:RC-1", KES, clr, mer, 1500);
	r.prov = &u;
	CHECK_EQ_INT(commit1(lg, &r, T0 + 2).rc, LEDGER_OK);

	/* created with its hold; the link reads back with the
	 * collection's ref and receipt */
	rv = mk_prov("rev:RC-1", "mpesa", "R-1", "", clr, mer, 1500, T0, 3);
	rv.kind = STORE_PROV_DISBURSE;
	rv.hold_account_id = hold;
	rv.reverses_id = c1.pay.id;
	r = mk_req("hold:rev:RC-1", KES, mer, hold, 1500);
	r.prov_new = &rv;
	CHECK_EQ_INT(commit1(lg, &r, T0 + 3).rc, LEDGER_OK);
	g = prov_by_ref(st, "rev:RC-1");
	rv.pay.id = g.pay.id; /* the ledger inserted a copy */
	CHECK_EQ_INT(g.reverses_id, c1.pay.id);
	CHECK_EQ_STR(g.reverses_ref, "RC-1");
	CHECK_EQ_STR(g.reverses_receipt, "RCPT1");
	CHECK_EQ_INT(balance(st, mer), 0);
	g = prov_by_ref(st, "RC-1");
	CHECK_EQ_INT(g.reverses_id, 0);
	CHECK_EQ_STR(g.reverses_ref, "");
	/* a second reversal of the same collection cannot exist */
	rv2 = mk_prov("rev2:RC-1", "mpesa", "R-2", "", clr, mer, 1500, T0, 4);
	rv2.kind = STORE_PROV_DISBURSE;
	rv2.hold_account_id = hold;
	rv2.reverses_id = c1.pay.id;
	CHECK(st->ops->prov_create(st, &rv2) != STORE_OK);
	CHECK_EQ_INT(st->ops->prov_get(st, "rev2:RC-1", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);

	/* the reversal succeeds: hold -> clearing, the collection reads
	 * reversed, with its event, in the same commit */
	u = mk_upd(rv.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 4), STORE_OK);
	u = mk_upd(rv.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	r = mk_req("prov:rev:RC-1", KES, hold, clr, 1500);
	r.prov = &u;
	CHECK_EQ_INT(commit1(lg, &r, T0 + 5).rc, LEDGER_OK);
	CHECK_EQ_INT(prov_by_ref(st, "rev:RC-1").pay.state, PAY_SUCCEEDED);
	g = prov_by_ref(st, "RC-1");
	CHECK_EQ_INT(g.pay.state, PAY_REVERSED);
	CHECK_EQ_INT(g.pay.updated_ms, T0 + 5);
	CHECK_EQ_INT(st->ops->payment_events(st, c1.pay.id, ev, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		CHECK_EQ_INT(ev[3].from, PAY_SUCCEEDED);
		CHECK_EQ_INT(ev[3].to, PAY_REVERSED);
		CHECK_EQ_STR(ev[3].reason, "reversed by rev:RC-1");
	}
	CHECK_EQ_INT(balance(st, hold), 0);
	CHECK_EQ_INT(balance(st, clr), 0);

	/* a reversal of a collection that is not succeeded (a row written
	 * around the API's checks) can never succeed: the whole commit,
	 * posting included, is refused */
	rv2 = mk_prov("rev:RC-2", "mpesa", "R-3", "", clr, mer, 700, T0, 5);
	rv2.kind = STORE_PROV_DISBURSE;
	rv2.hold_account_id = hold;
	rv2.reverses_id = c2.pay.id;
	if (prov_new(st, &rv2) == 0)
		goto out;
	u = mk_upd(rv2.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 6), STORE_OK);
	u = mk_upd(rv2.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	CHECK(st->ops->prov_update(st, &u, T0 + 7) != STORE_OK);
	CHECK_EQ_INT(prov_by_ref(st, "rev:RC-2").pay.state, PAY_PENDING);
	CHECK_EQ_INT(prov_by_ref(st, "RC-2").pay.state, PAY_PENDING);
	finish_unverified(st, lg);
	return;
out:
	finish_unverified(st, lg);
}

/* The customer's next step (Paystack send_otp, Orange's payment page):
 * written with an update, NULL leaves it, "" clears it; read back by
 * every lookup. */
static void
test_prov_next_step(void)
{
	struct store *st;
	struct store_prov p;
	struct store_prov_update u;
	int64_t clr, mer;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:paystack", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	p = mk_prov("NS-1", "paystack", "C-1", "", clr, mer, 500, T0, 1);
	if (prov_new(st, &p) == 0)
		goto out;
	CHECK_EQ_STR(prov_by_ref(st, "NS-1").next_step, "");
	u = mk_upd(p.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	u.next_step = "send_otp";
	u.next_text = "Enter the OTP sent to 0244 " ODD_TEXT;
	u.next_url = "https://checkout.example/x?a=1&b=2";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	p = prov_by_ref(st, "NS-1");
	CHECK_EQ_STR(p.next_step, "send_otp");
	CHECK_EQ_STR(p.next_text, "Enter the OTP sent to 0244 " ODD_TEXT);
	CHECK_EQ_STR(p.next_url, "https://checkout.example/x?a=1&b=2");
	/* NULL: unchanged; "": cleared */
	u = mk_upd(p.pay.id, PAY_PENDING, PAY_PENDING, STORE_CALL_ACCEPTED,
	           STORE_CALL_ACCEPTED, T0);
	u.next_step = "send_pin";
	u.next_url = "";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_OK);
	memset(&p, 0, sizeof p);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "paystack", NULL, "C-1", &p),
	             STORE_OK);
	CHECK_EQ_STR(p.next_step, "send_pin");
	CHECK_EQ_STR(p.next_text, "Enter the OTP sent to 0244 " ODD_TEXT);
	CHECK_EQ_STR(p.next_url, "");
	/* a conflicting update writes nothing, next step included */
	u = mk_upd(p.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	u.next_step = "open_url";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 3), STORE_CONFLICT);
	CHECK_EQ_STR(prov_by_ref(st, "NS-1").next_step, "send_pin");
out:
	store_close(st);
}

static int
count_rpc_key(void *arg, const struct store_rpc_key *k)
{
	int *n = arg;

	CHECK(k->key_hash[0] == 0); /* a list never carries hashes */
	if (++*n == 1) {
		CHECK_EQ_STR(k->name, "bank-a");
		CHECK(k->is_revoked);
	}
	return 0;
}

/* /rpc partner keys (016_rpc_keys): found by their hash only, names and
 * hashes unique, revoked ones still found (and marked), listed by name
 * without hashes. */
static void
test_rpc_keys(void)
{
	struct store *st;
	struct store_rpc_key k, k2, g;
	uint8_t other[STORE_RPC_KEY_HASH_LEN];
	int n = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	memset(&k, 0, sizeof k);
	strlcpy_s(k.name, "bank-a", sizeof k.name);
	memset(k.key_hash, 0xa5, sizeof k.key_hash);
	k.scope_kind = STORE_RPC_SCOPE_AGENT;
	strlcpy_s(k.scope, "A1", sizeof k.scope);
	k.created_ms = T0;
	CHECK_EQ_INT(st->ops->rpc_key_create(st, &k), STORE_OK);
	CHECK(k.id > 0);
	k2 = k; /* the same name */
	k2.key_hash[0] = 0x01;
	CHECK_EQ_INT(st->ops->rpc_key_create(st, &k2), STORE_CONFLICT);
	strlcpy_s(k2.name, "shop-m1", sizeof k2.name); /* the same hash */
	k2.key_hash[0] = 0xa5;
	CHECK_EQ_INT(st->ops->rpc_key_create(st, &k2), STORE_CONFLICT);
	k2.key_hash[0] = 0x01;
	k2.scope_kind = STORE_RPC_SCOPE_MERCHANT;
	strlcpy_s(k2.scope, "M1", sizeof k2.scope);
	CHECK_EQ_INT(st->ops->rpc_key_create(st, &k2), STORE_OK);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->rpc_key_get(st, k.key_hash, &g), STORE_OK);
	CHECK_EQ_INT(g.id, k.id);
	CHECK_EQ_STR(g.name, "bank-a");
	CHECK_EQ_INT(g.scope_kind, STORE_RPC_SCOPE_AGENT);
	CHECK_EQ_STR(g.scope, "A1");
	CHECK(!g.is_revoked);
	CHECK_EQ_INT(g.created_ms, T0);
	CHECK(memcmp(g.key_hash, k.key_hash, sizeof g.key_hash) == 0);
	CHECK_EQ_INT(st->ops->rpc_key_get(st, k2.key_hash, &g), STORE_OK);
	CHECK_EQ_STR(g.name, "shop-m1");
	CHECK_EQ_INT(g.scope_kind, STORE_RPC_SCOPE_MERCHANT);
	memset(other, 0x5a, sizeof other);
	CHECK_EQ_INT(st->ops->rpc_key_get(st, other, &g), STORE_NOT_FOUND);
	CHECK_EQ_STR(g.name, "shop-m1"); /* untouched */
	CHECK_EQ_INT(st->ops->rpc_key_revoke(st, "bank-a"), STORE_OK);
	CHECK_EQ_INT(st->ops->rpc_key_revoke(st, "nope"), STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->rpc_key_get(st, k.key_hash, &g), STORE_OK);
	CHECK(g.is_revoked);
	CHECK_EQ_INT(st->ops->rpc_key_get(st, k2.key_hash, &g), STORE_OK);
	CHECK(!g.is_revoked);
	CHECK_EQ_INT(st->ops->rpc_key_list(st, count_rpc_key, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
	store_close(st);
}

/* POS-started payments (pos_payments): created with their link in one
 * transaction, found by (terminal, txn id), the undelivered results of
 * a terminal (final and not acknowledged), the acknowledgement. */
static void
test_pos_pay(void)
{
	struct store *st;
	struct store_prov p1, p2, q, g, res[4];
	struct store_pos_link l1, l2, gl, links[4];
	struct store_prov_update u;
	struct store_agent ag;
	struct store_merchant m;
	struct store_terminal t;
	size_t n = 99;
	int64_t clr, fl, pay, n_pay;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	fl = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                true, false);
	/* T1 belongs to agent A1 (every read names both) */
	memset(&ag, 0, sizeof ag);
	strlcpy_s(ag.code, "A1", sizeof ag.code);
	ag.float_account_id = fl;
	ag.status = STORE_POS_ACTIVE;
	ag.created_ms = T0;
	CHECK_EQ_INT(st->ops->agent_create(st, &ag), STORE_OK);
	/* and to merchant M1: a payment crediting M1's account names M1 */
	pay = mk_account(st, "merchant:M1:payable",
	                 LEDGER_ACCT_MERCHANT_PAYABLE, KES, false, false);
	memset(&m, 0, sizeof m);
	strlcpy_s(m.code, "M1", sizeof m.code);
	m.payable_account_id = pay;
	m.created_ms = T0;
	CHECK_EQ_INT(st->ops->merchant_create(st, &m), STORE_OK);
	memset(&t, 0, sizeof t);
	strlcpy_s(t.id, "T1", sizeof t.id);
	t.agent_id = ag.id;
	t.merchant_id = m.id;
	t.status = STORE_POS_ACTIVE;
	t.created_ms = T0;
	CHECK_EQ_INT(st->ops->terminal_create(st, &t), STORE_OK);
	memset(&l1, 0, sizeof l1);
	strlcpy_s(l1.terminal_id, "T1", sizeof l1.terminal_id);
	memset(l1.txn_id, 0x11, sizeof l1.txn_id);
	l1.type = 0x0010;
	l2 = l1;
	l2.txn_id[15] = 0x22;
	l2.type = 0x0012;
	l2.is_advice = true; /* as an advised BILL_PAY's (read back below) */
	/* p1 a COLLECT crediting M1, p2 crediting the float */
	p1 = mk_prov("pos:T1:a", "mpesa", "PC-1", "", clr, pay, 500, T0, 0xa1);
	p2 = mk_prov("pos:T1:b", "mpesa", "PC-2", "", clr, fl, 700, T0, 0xa2);
	CHECK_EQ_INT(st->ops->pos_pay_create(st, &p1, &l1), STORE_OK);
	CHECK_EQ_INT(st->ops->pos_pay_create(st, &p2, &l2), STORE_OK);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T1", l1.txn_id, &g, &gl),
	             STORE_OK);
	check_prov_eq(&g, &p1);
	CHECK_EQ_STR(g.pos_terminal, "T1");
	CHECK_EQ_STR(g.pos_agent, "A1");
	CHECK_EQ_STR(g.pos_merchant, "M1");
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, "pos:T1:b", NULL, NULL, NULL, &g),
	             STORE_OK);
	CHECK_EQ_STR(g.pos_terminal, "T1");
	CHECK_EQ_STR(g.pos_agent, "A1");
	CHECK_EQ_STR(g.pos_merchant, "");
	/* the janitor's read too (due at T0; lease 0: they stay due) */
	CHECK_EQ_INT(st->ops->prov_due(st, T0, 0, res, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
	for (size_t i = 0; i < n && i < 4; i++) {
		CHECK_EQ_STR(res[i].pos_terminal, "T1");
		CHECK_EQ_STR(res[i].pos_agent, "A1");
		CHECK_EQ_STR(res[i].pos_merchant,
		             res[i].pay.amount_minor == 500 ? "M1" : "");
	}
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T1", l1.txn_id, &g, &gl),
	             STORE_OK);
	CHECK_EQ_INT(gl.type, 0x0010);
	CHECK_EQ_INT(gl.acked_ms, 0);
	CHECK(!gl.is_advice);
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T1", l2.txn_id, &g, &gl),
	             STORE_OK);
	check_prov_eq(&g, &p2);
	CHECK(gl.is_advice);
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T2", l1.txn_id, &g, &gl),
	             STORE_NOT_FOUND);
	/* a repeat: CONFLICT, q is the stored payment (its req_hash) */
	q = mk_prov("pos:T1:a", "mpesa", "PC-9", "", clr, fl, 999, T0, 0xb9);
	CHECK_EQ_INT(st->ops->pos_pay_create(st, &q, &l1), STORE_CONFLICT);
	check_prov_eq(&q, &p1);
	CHECK_EQ_INT(q.req_hash[0], 0xa1);
	/* another ref for a txn id that has one: refused, nothing written */
	n_pay = raw_i64("SELECT COUNT(*) FROM payments");
	q = mk_prov("pos:T1:c", "mpesa", "PC-3", "", clr, fl, 5, T0, 0xc1);
	CHECK_EQ_INT(st->ops->pos_pay_create(st, &q, &l1), STORE_CONFLICT);
	check_prov_eq(&q, &p1);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments"), n_pay);
	CHECK_EQ_INT(st->ops->prov_get(st, "pos:T1:c", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);

	/* nothing final yet: no results; an early ack changes nothing */
	CHECK_EQ_INT(st->ops->pos_pay_results(st, "T1", res, links, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(st->ops->pos_pay_ack(st, "T1", l1.txn_id, T0 + 1),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T1", l1.txn_id, &g, &gl),
	             STORE_OK);
	CHECK_EQ_INT(gl.acked_ms, 0);

	/* both end (p1 failed, p2 failed too): two results, oldest first */
	u = mk_upd(p1.pay.id, PAY_CREATED, PAY_FAILED, STORE_CALL_TO_SEND,
	           STORE_CALL_DONE, T0);
	u.result_code = "1032";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_OK);
	u = mk_upd(p2.pay.id, PAY_CREATED, PAY_FAILED, STORE_CALL_TO_SEND,
	           STORE_CALL_DONE, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 3), STORE_OK);
	CHECK_EQ_INT(st->ops->pos_pay_results(st, "T1", res, links, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(res[0].pay.id, p1.pay.id);
		CHECK_EQ_INT(res[0].pay.state, PAY_FAILED);
		CHECK_EQ_STR(res[0].result_code, "1032");
		CHECK_EQ_INT(links[0].type, 0x0010);
		CHECK(memcmp(links[0].txn_id, l1.txn_id, 16) == 0);
		CHECK_EQ_STR(links[1].terminal_id, "T1");
		CHECK_EQ_INT(links[1].type, 0x0012);
		CHECK(memcmp(links[1].txn_id, l2.txn_id, 16) == 0);
	}
	/* cap bounds the answer */
	CHECK_EQ_INT(st->ops->pos_pay_results(st, "T1", res, links, 1, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(st->ops->pos_pay_results(st, "T2", res, links, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
	/* acknowledged: not delivered again; a repeat ack is harmless */
	CHECK_EQ_INT(st->ops->pos_pay_ack(st, "T1", l1.txn_id, T0 + 9),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_pay_ack(st, "T1", l1.txn_id, T0 + 10),
	             STORE_OK);
	CHECK_EQ_INT(st->ops->pos_pay_get(st, "T1", l1.txn_id, &g, &gl),
	             STORE_OK);
	CHECK_EQ_INT(gl.acked_ms, T0 + 9);
	CHECK_EQ_INT(st->ops->pos_pay_results(st, "T1", res, links, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(res[0].pay.id, p2.pay.id);

	/* EOD totals: a batch's provider payments that succeeded, or came
	 * as an advice and are funded; failed (p1, p2), online pending
	 * (p5) and payments of another batch are not counted */
	{
		struct store_prov p3, p4, p5, p6;
		struct store_pos_link l3 = l1, l4 = l1, l5 = l1, l6 = l1;
		struct store_pos_total tot[4];
		int64_t closed;
		bool is_rep;

		l3.txn_id[15] = 0x33;
		l4.txn_id[15] = 0x44;
		l4.type = 0x0021;
		l4.is_advice = true;
		l5.txn_id[15] = 0x55;
		l6.txn_id[15] = 0x66;
		p3 = mk_prov("pos:T1:c3", "mpesa", "PC-33", "", clr, fl, 300,
		             T0, 0xa3);
		p4 = mk_prov("pos:T1:c4", "mpesa", "PC-44", "", clr, fl, 400,
		             T0, 0xa4);
		p5 = mk_prov("pos:T1:c5", "mpesa", "PC-55", "", clr, fl, 500,
		             T0, 0xa5);
		CHECK_EQ_INT(st->ops->pos_pay_create(st, &p3, &l3), STORE_OK);
		CHECK_EQ_INT(st->ops->pos_pay_create(st, &p4, &l4), STORE_OK);
		CHECK_EQ_INT(st->ops->pos_pay_create(st, &p5, &l5), STORE_OK);
		u = mk_upd(p3.pay.id, PAY_CREATED, PAY_PENDING,
		           STORE_CALL_TO_SEND, STORE_CALL_ACCEPTED, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 4), STORE_OK);
		u = mk_upd(p3.pay.id, PAY_PENDING, PAY_SUCCEEDED,
		           STORE_CALL_ACCEPTED, STORE_CALL_DONE, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 5), STORE_OK);
		u = mk_upd(p4.pay.id, PAY_CREATED, PAY_PENDING,
		           STORE_CALL_TO_SEND, STORE_CALL_ACCEPTED, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 4), STORE_OK);
		u = mk_upd(p5.pay.id, PAY_CREATED, PAY_PENDING,
		           STORE_CALL_TO_SEND, STORE_CALL_ACCEPTED, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 4), STORE_OK);
		CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 1, T0 + 6,
		                                      &closed, &is_rep),
		             STORE_OK);
		/* after the close: batch 2 */
		p6 = mk_prov("pos:T1:c6", "mpesa", "PC-66", "", clr, fl, 600,
		             T0, 0xa6);
		CHECK_EQ_INT(st->ops->pos_pay_create(st, &p6, &l6), STORE_OK);
		u = mk_upd(p6.pay.id, PAY_CREATED, PAY_PENDING,
		           STORE_CALL_TO_SEND, STORE_CALL_ACCEPTED, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 7), STORE_OK);
		u = mk_upd(p6.pay.id, PAY_PENDING, PAY_SUCCEEDED,
		           STORE_CALL_ACCEPTED, STORE_CALL_DONE, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 8), STORE_OK);
		CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 1, tot, 4, &n),
		             STORE_OK);
		CHECK_EQ_INT(n, 2);
		if (n == 2) {
			CHECK_EQ_INT(tot[0].type, 0x0010);
			CHECK_EQ_INT(tot[0].currency, KES);
			CHECK_EQ_INT(tot[0].count, 1);
			CHECK_EQ_INT(tot[0].sum_minor, 300);
			CHECK_EQ_INT(tot[1].type, 0x0021);
			CHECK_EQ_INT(tot[1].count, 1);
			CHECK_EQ_INT(tot[1].sum_minor, 400);
		}
		/* p5 succeeds later: a repeat of the close recounts */
		u = mk_upd(p5.pay.id, PAY_PENDING, PAY_SUCCEEDED,
		           STORE_CALL_ACCEPTED, STORE_CALL_DONE, T0);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 9), STORE_OK);
		CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 1, tot, 4, &n),
		             STORE_OK);
		CHECK_EQ_INT(n, 2);
		CHECK_EQ_INT(tot[0].count, 2);
		CHECK_EQ_INT(tot[0].sum_minor, 800);
		CHECK_EQ_INT(st->ops->pos_batch_close(st, "T1", 2, T0 + 10,
		                                      &closed, &is_rep),
		             STORE_OK);
		CHECK_EQ_INT(st->ops->pos_totals(st, "T1", 2, tot, 4, &n),
		             STORE_OK);
		CHECK_EQ_INT(n, 1);
		CHECK_EQ_INT(tot[0].count, 1);
		CHECK_EQ_INT(tot[0].sum_minor, 600);
	}
	st->ops->close(st);
}

/* create, its idempotent repeat, the three lookups and the unique keys */
static void
test_prov_create_get(void)
{
	struct store *st;
	struct store_prov p1, p2, q, g;
	struct payment plain;
	struct payment_event ev[4];
	size_t n = 0;
	int64_t clr, mer, n_pay;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	p1 = mk_prov("PP-1", "mpesa", "C-1", "", clr, mer, 1500, T0, 0xa1);
	p1.kind = STORE_PROV_DISBURSE;
	p1.send_attempts = 2;
	p1.checks = 3;
	if (prov_new(st, &p1) == 0)
		goto out;
	CHECK_EQ_INT(p1.pay.state, PAY_CREATED);
	CHECK_EQ_INT(p1.pay.updated_ms, T0);
	CHECK_EQ_INT(st->ops->payment_events(st, p1.pay.id, ev, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(ev[0].from, 0);
	CHECK_EQ_INT(ev[0].to, PAY_CREATED);
	CHECK_EQ_STR(ev[0].reason, "created");

	/* every column round-trips, by each key */
	g = prov_by_ref(st, "PP-1");
	check_prov_eq(&g, &p1);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "mpesa", NULL, "C-1", &g),
	             STORE_OK);
	check_prov_eq(&g, &p1);
	/* an empty provider_ref is "not known yet", never a key */
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "mpesa", "", NULL, &g),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "momo", NULL, "C-1", &g),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->prov_get(st, "PP-none", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);

	/* the repeat: CONFLICT, *q is the stored row with its req_hash */
	q = mk_prov("PP-1", "mpesa", "C-other", "", clr, mer, 99, T0 + 5,
	            0xb2);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_CONFLICT);
	check_prov_eq(&q, &p1);
	CHECK_EQ_INT(q.req_hash[0], 0xa1);

	p2 = mk_prov("PP-2 " ODD_TEXT, "mpesa", "C-2 " ODD_TEXT, "MP-2", clr,
	             mer, 700, T0 + 1, 0xc3);
	if (prov_new(st, &p2) == 0)
		goto out;
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "mpesa", "MP-2", NULL, &g),
	             STORE_OK);
	check_prov_eq(&g, &p2);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "momo", "MP-2", NULL, &g),
	             STORE_NOT_FOUND);
	/* provider_ref wins over client_ref */
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "mpesa", "MP-x", "C-1", &g),
	             STORE_NOT_FOUND);

	/* unique (provider, client_ref) and (provider, provider_ref) when
	 * not empty: another ref taking one is refused, nothing written */
	n_pay = raw_i64("SELECT COUNT(*) FROM payments");
	q = mk_prov("PP-3", "mpesa", "C-1", "", clr, mer, 100, T0, 0xd4);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	CHECK_EQ_INT(q.pay.id, 0);
	q = mk_prov("PP-3", "mpesa", "C-3", "MP-2", clr, mer, 100, T0, 0xd4);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments"), n_pay);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payment_events"), n_pay);
	CHECK_EQ_INT(st->ops->prov_get(st, "PP-3", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);
	/* the same references at another provider, and many empty
	 * provider_refs, are fine */
	q = mk_prov("PP-3", "momo", "C-1", "MP-2", clr, mer, 100, T0, 0xd4);
	prov_new(st, &q);
	q = mk_prov("PP-4", "mpesa", "C-4", "", clr, mer, 100, T0, 0xd5);
	prov_new(st, &q);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "momo", "MP-2", NULL, &g),
	             STORE_OK);
	CHECK_EQ_STR(g.pay.ref, "PP-3");

	/* the ref of a payment that has no provider row: refused */
	memset(&plain, 0, sizeof plain);
	strlcpy_s(plain.ref, "PLAIN-1", sizeof plain.ref);
	plain.currency = KES;
	plain.amount_minor = 5;
	plain.created_ms = T0;
	CHECK_EQ_INT(st->ops->payment_create(st, &plain), STORE_OK);
	q = mk_prov("PLAIN-1", "mpesa", "C-9", "", clr, mer, 5, T0, 0xe6);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	CHECK_EQ_INT(st->ops->prov_get(st, "PLAIN-1", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);

	/* refused by the schema: unknown account, bad kind, amount 0 */
	q = mk_prov("PP-5", "mpesa", "C-5", "", clr, 999999, 100, T0, 0xf7);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	q = mk_prov("PP-5", "mpesa", "C-5", "", clr, mer, 100, T0, 0xf7);
	q.kind = 4;
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	q = mk_prov("PP-5", "mpesa", "C-5", "", clr, mer, 0, T0, 0xf7);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	CHECK_EQ_INT(st->ops->prov_get(st, "PP-5", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);

	/* callbacks: evidence, counted by (provider, provider_ref,
	 * verdict) */
	{
		struct store_prov_callback c;
		int64_t cnt = -1;

		memset(&c, 0, sizeof c);
		c.provider = "mpesa";
		c.provider_ref = "MP-2";
		c.payment_id = p2.pay.id;
		c.verdict = "applied";
		c.detail = ODD_TEXT;
		c.received_ms = T0 + 3;
		CHECK_EQ_INT(st->ops->prov_callback_add(st, &c), STORE_OK);
		c.verdict = "duplicate";
		c.detail = NULL;
		CHECK_EQ_INT(st->ops->prov_callback_add(st, &c), STORE_OK);
		CHECK_EQ_INT(st->ops->prov_callback_add(st, &c), STORE_OK);
		c.provider_ref = "MP-unknown";
		c.payment_id = 0; /* matched none: stored as NULL */
		c.verdict = "unmatched";
		CHECK_EQ_INT(st->ops->prov_callback_add(st, &c), STORE_OK);
		CHECK_EQ_INT(st->ops->prov_callback_count(st, "mpesa", "MP-2",
		                                          "applied", &cnt),
		             STORE_OK);
		CHECK_EQ_INT(cnt, 1);
		CHECK_EQ_INT(st->ops->prov_callback_count(st, "mpesa", "MP-2",
		                                          "duplicate", &cnt),
		             STORE_OK);
		CHECK_EQ_INT(cnt, 2);
		CHECK_EQ_INT(st->ops->prov_callback_count(st, "momo", "MP-2",
		                                          "duplicate", &cnt),
		             STORE_OK);
		CHECK_EQ_INT(cnt, 0);
		CHECK_EQ_INT(st->ops->prov_callback_count(st, "mpesa",
		                                          "MP-unknown",
		                                          "unmatched", &cnt),
		             STORE_OK);
		CHECK_EQ_INT(cnt, 1);
		CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM prov_callbacks "
		                     "WHERE payment_id IS NULL"),
		             1);
		CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM prov_callbacks "
		                     "WHERE detail = ''"),
		             3);
	}
out:
	finish(st, NULL);
}

/* prov_due: only due rows not done, oldest first, cap, lease */
/* A bill payment (kind 3): its bill_payments row is written with the
 * provider row, atomically, and read back by every lookup and by the
 * janitor's claim; other kinds read it as zero. */
static void
test_bill_create_get(void)
{
	struct store *st;
	struct store_prov b, c, g, q, out[4];
	int64_t hold, pay, src, n_pay;
	size_t n = 0, i;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	hold = mk_account(st, "suspense:bills", LEDGER_ACCT_SUSPENSE, KES,
	                  false, false);
	pay = mk_account(st, "biller:flw", LEDGER_ACCT_BILLER_PAYABLE, KES,
	                 false, false);
	src = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                 true, false);
	b = mk_prov("bill:1", "flwbill", "SOKOB1", "", hold, pay, 5000, T0,
	            0x31);
	b.kind = STORE_PROV_BILL;
	b.msisdn[0] = '\0';
	b.bill.source_account_id = src;
	strlcpy_s(b.bill.biller_code, "BIL112", sizeof b.bill.biller_code);
	strlcpy_s(b.bill.item_code, "UB157", sizeof b.bill.item_code);
	strlcpy_s(b.bill.customer, "45067198012", sizeof b.bill.customer);
	strlcpy_s(b.bill.customer_name, "JOHN " ODD_TEXT,
	          sizeof b.bill.customer_name);
	if (prov_new(st, &b) == 0)
		goto out;
	c = mk_prov("col:1", "mpesa", "C-1", "", hold, pay, 100, T0 + 1, 0x32);
	if (prov_new(st, &c) == 0)
		goto out;
	g = prov_by_ref(st, "bill:1");
	check_prov_eq(&g, &b);
	CHECK_EQ_INT(g.bill.source_account_id, src);
	CHECK_EQ_STR(g.bill.biller_code, "BIL112");
	CHECK_EQ_STR(g.bill.item_code, "UB157");
	CHECK_EQ_STR(g.bill.customer, "45067198012");
	CHECK_EQ_STR(g.bill.customer_name, "JOHN " ODD_TEXT);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "flwbill", NULL, "SOKOB1",
	                               &g),
	             STORE_OK);
	CHECK_EQ_STR(g.bill.item_code, "UB157");
	g = prov_by_ref(st, "col:1");
	CHECK_EQ_INT(g.bill.source_account_id, 0);
	CHECK_EQ_STR(g.bill.biller_code, "");
	/* the repeat hands back the stored row, bill included */
	q = b;
	memset(&q.bill, 0, sizeof q.bill);
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_CONFLICT);
	CHECK_EQ_INT(q.bill.source_account_id, src);
	/* the claim carries the bill fields */
	CHECK_EQ_INT(st->ops->prov_due(st, T0 + 10, 1000, out, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 2);
	for (i = 0; i < n; i++)
		if (out[i].kind == STORE_PROV_BILL) {
			CHECK_EQ_INT(out[i].bill.source_account_id, src);
			CHECK_EQ_STR(out[i].bill.customer, "45067198012");
		} else {
			CHECK_EQ_STR(out[i].bill.customer, "");
		}
	/* an unknown source account: refused, nothing written */
	n_pay = raw_i64("SELECT COUNT(*) FROM payments");
	q = mk_prov("bill:2", "flwbill", "SOKOB2", "", hold, pay, 5000, T0,
	            0x33);
	q.kind = STORE_PROV_BILL;
	q.bill = b.bill;
	q.bill.source_account_id = 999999;
	CHECK_EQ_INT(st->ops->prov_create(st, &q), STORE_FAIL);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments"), n_pay);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM prov_payments"), n_pay);
	CHECK_EQ_INT(st->ops->prov_get(st, "bill:2", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);
out:
	store_close(st);
}

static void
test_prov_due(void)
{
	static const int64_t due_at[] = {3, 1, 5, 2, 4}; /* ms after T0 */
	struct store *st;
	struct store_prov p, out[8];
	size_t n = 99, i;
	int64_t clr, mer, ids[5], lease = 60000, now = T0 + 10;
	char ref[32], cref[32];

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	for (i = 0; i < 5; i++) {
		snprintf(ref, sizeof ref, "PD-%zu", i);
		snprintf(cref, sizeof cref, "C-%zu", i);
		p = mk_prov(ref, "mpesa", cref, "", clr, mer, 100,
		            T0 + due_at[i], (uint8_t)i);
		p.call_state = (uint8_t)(i % 4); /* 0..3: all may be due */
		ids[i] = prov_new(st, &p);
	}
	/* done: never due; not due yet: not claimed */
	p = mk_prov("PD-done", "mpesa", "C-done", "", clr, mer, 100, T0, 9);
	p.call_state = STORE_CALL_DONE;
	prov_new(st, &p);
	p = mk_prov("PD-later", "mpesa", "C-later", "", clr, mer, 100,
	            T0 + 10 * DAY_MS, 10);
	prov_new(st, &p);

	CHECK_EQ_INT(st->ops->prov_due(st, now, lease, out, 0, &n), STORE_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(st->ops->prov_due(st, now, lease, out, 3, &n), STORE_OK);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		/* oldest due first: T0+1 (PD-1), T0+2 (PD-3), T0+3 (PD-0) */
		CHECK_EQ_INT(out[0].pay.id, ids[1]);
		CHECK_EQ_INT(out[1].pay.id, ids[3]);
		CHECK_EQ_INT(out[2].pay.id, ids[0]);
		CHECK_EQ_STR(out[1].pay.ref, "PD-3");
		CHECK_EQ_INT(out[1].call_state, 3);
		CHECK_EQ_INT(out[2].req_hash[0], 0);
		CHECK_EQ_INT(out[0].req_hash[31], 1);
		for (i = 0; i < n; i++) {
			/* returned as claimed, and stored so */
			CHECK_EQ_INT(out[i].next_at_ms, now + lease);
			p = prov_by_ref(st, out[i].pay.ref);
			CHECK_EQ_INT(p.next_at_ms, now + lease);
			check_prov_eq(&p, &out[i]);
		}
	}
	/* the rest, then nothing while the leases hold */
	CHECK_EQ_INT(st->ops->prov_due(st, now, lease, out, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
	if (n == 2) {
		CHECK_EQ_INT(out[0].pay.id, ids[4]);
		CHECK_EQ_INT(out[1].pay.id, ids[2]);
	}
	CHECK_EQ_INT(st->ops->prov_due(st, now, lease, out, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(st->ops->prov_due(st, now + lease - 1, lease, out, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
	/* the leases end: all five again (by payment id: same next_at_ms),
	 * never the done one */
	CHECK_EQ_INT(st->ops->prov_due(st, now + lease, lease, out, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 5);
	for (i = 0; i < n; i++) {
		CHECK_EQ_INT(out[i].pay.id, ids[i]);
		CHECK(out[i].call_state != STORE_CALL_DONE);
	}
	/* a row finished meanwhile is not due any more */
	{
		struct store_prov_update u = mk_upd(ids[0], PAY_CREATED,
		                                    PAY_FAILED, 0,
		                                    STORE_CALL_DONE, 0);

		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 20), STORE_OK);
	}
	CHECK_EQ_INT(st->ops->prov_due(st, now + 3 * lease, lease, out, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 4);
	for (i = 0; i < n; i++)
		CHECK(out[i].pay.id != ids[0]);
	finish(st, NULL);
}

/* prov_update: compare-and-set on (state, call_state), audit trail */
static void
test_prov_update(void)
{
	struct store *st;
	struct store_prov p, g, before;
	struct store_prov_update u;
	struct payment_event ev[8];
	size_t n = 0;
	int64_t clr, mer, id;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	p = mk_prov("PU-1", "mpesa", "C-1", "", clr, mer, 1500, T0, 0x11);
	if ((id = prov_new(st, &p)) == 0)
		goto out;

	/* created/to_send -> pending/sending, before the call leaves */
	u = mk_upd(id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_SENDING, T0 + 30000);
	u.reason = "sending";
	u.send_attempts = 1;
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	g = prov_by_ref(st, "PU-1");
	CHECK_EQ_INT(g.pay.state, PAY_PENDING);
	CHECK_EQ_INT(g.pay.updated_ms, T0 + 1);
	CHECK_EQ_INT(g.call_state, STORE_CALL_SENDING);
	CHECK_EQ_INT(g.send_attempts, 1);
	CHECK_EQ_INT(g.checks, 0);
	CHECK_EQ_INT(g.next_at_ms, T0 + 30000);
	CHECK_EQ_STR(g.provider_ref, "");
	CHECK_EQ_INT(g.pay.txn_id, 0);
	CHECK_EQ_INT(st->ops->payment_events(st, id, ev, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(ev[1].from, PAY_CREATED);
	CHECK_EQ_INT(ev[1].to, PAY_PENDING);
	CHECK_EQ_STR(ev[1].reason, "sending");
	CHECK_EQ_INT(ev[1].at_ms, T0 + 1);

	/* not in (from_state, expect_call): CONFLICT, nothing changes */
	before = g;
	u = mk_upd(id, PAY_CREATED, PAY_PENDING, STORE_CALL_SENDING,
	           STORE_CALL_ACCEPTED, T0 + 5);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_CONFLICT);
	u = mk_upd(id, PAY_PENDING, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0 + 5);
	u.provider_ref = "MP-x";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_CONFLICT);
	u = mk_upd(id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_CONFLICT);
	/* an illegal edge: FAIL, nothing changes */
	u = mk_upd(id, PAY_PENDING, PAY_REVERSED, STORE_CALL_SENDING,
	           STORE_CALL_DONE, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_FAIL);
	u = mk_upd(id, PAY_PENDING, PAY_CREATED, STORE_CALL_SENDING,
	           STORE_CALL_TO_SEND, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_FAIL);
	/* no such payment */
	u = mk_upd(999999, PAY_PENDING, PAY_PENDING, STORE_CALL_SENDING,
	           STORE_CALL_ACCEPTED, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_NOT_FOUND);
	g = prov_by_ref(st, "PU-1");
	check_prov_eq(&g, &before);
	CHECK_EQ_INT(n_events(st, id), 2);

	/* the provider took it: call state only, no event, updated_ms
	 * kept; strings set (an odd one too) */
	u = mk_upd(id, PAY_PENDING, PAY_PENDING, STORE_CALL_SENDING,
	           STORE_CALL_ACCEPTED, T0 + 60000);
	u.send_attempts = 1;
	u.checks = 4;
	u.provider_ref = "MP-1";
	u.result_code = "0";
	u.result_desc = ODD_TEXT;
	u.receipt = "NULL";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 3), STORE_OK);
	g = prov_by_ref(st, "PU-1");
	CHECK_EQ_INT(g.pay.state, PAY_PENDING);
	CHECK_EQ_INT(g.pay.updated_ms, T0 + 1);
	CHECK_EQ_INT(g.call_state, STORE_CALL_ACCEPTED);
	CHECK_EQ_INT(g.checks, 4);
	CHECK_EQ_INT(g.next_at_ms, T0 + 60000);
	CHECK_EQ_STR(g.provider_ref, "MP-1");
	CHECK_EQ_STR(g.result_code, "0");
	CHECK_EQ_STR(g.result_desc, ODD_TEXT);
	CHECK_EQ_STR(g.receipt, "NULL");
	CHECK_EQ_INT(n_events(st, id), 2);
	memset(&g, 0, sizeof g);
	CHECK_EQ_INT(st->ops->prov_get(st, NULL, "mpesa", "MP-1", NULL, &g),
	             STORE_OK);
	CHECK_EQ_INT(g.pay.id, id);

	/* NULL strings keep their column; "" empties it */
	u = mk_upd(id, PAY_PENDING, PAY_PENDING, STORE_CALL_ACCEPTED,
	           STORE_CALL_ACCEPTED, T0 + 90000);
	u.send_attempts = 1;
	u.checks = 5;
	u.result_code = "";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 4), STORE_OK);
	g = prov_by_ref(st, "PU-1");
	CHECK_EQ_INT(g.checks, 5);
	CHECK_EQ_STR(g.provider_ref, "MP-1");
	CHECK_EQ_STR(g.result_code, "");
	CHECK_EQ_STR(g.result_desc, ODD_TEXT);
	CHECK_EQ_STR(g.receipt, "NULL");

	/* another payment's provider_ref is a unique key: CONFLICT */
	p = mk_prov("PU-2", "mpesa", "C-2", "", clr, mer, 10, T0, 0x12);
	if (prov_new(st, &p) == 0)
		goto out;
	u = mk_upd(p.pay.id, PAY_CREATED, PAY_CREATED, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, 0);
	u.provider_ref = "MP-1";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 5), STORE_CONFLICT);
	g = prov_by_ref(st, "PU-2");
	CHECK_EQ_INT(g.call_state, STORE_CALL_TO_SEND);

	/* answer lost, then a status query says failed */
	u = mk_upd(id, PAY_PENDING, PAY_UNKNOWN, STORE_CALL_ACCEPTED,
	           STORE_CALL_LOST, T0 + 100000);
	u.reason = "no answer";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 6), STORE_OK);
	u = mk_upd(id, PAY_UNKNOWN, PAY_FAILED, STORE_CALL_LOST,
	           STORE_CALL_DONE, 0);
	u.reason = "status query";
	u.result_code = "1032";
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 7), STORE_OK);
	g = prov_by_ref(st, "PU-1");
	CHECK_EQ_INT(g.pay.state, PAY_FAILED);
	CHECK_EQ_INT(g.pay.updated_ms, T0 + 7);
	CHECK_EQ_INT(g.call_state, STORE_CALL_DONE);
	CHECK_EQ_STR(g.result_code, "1032");
	CHECK_EQ_INT(st->ops->payment_events(st, id, ev, 8, &n), STORE_OK);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		CHECK_EQ_INT(ev[2].to, PAY_UNKNOWN);
		CHECK_EQ_STR(ev[2].reason, "no answer");
		CHECK_EQ_INT(ev[3].from, PAY_UNKNOWN);
		CHECK_EQ_INT(ev[3].to, PAY_FAILED);
		CHECK_EQ_INT(ev[3].at_ms, T0 + 7);
	}
	/* and the database refuses what the store never writes */
	CHECK(raw_exec("UPDATE payments SET state = 3 WHERE ref = 'PU-1'") !=
	      0);
	CHECK(raw_exec("UPDATE prov_payments SET call_state = 5") != 0);
	CHECK(raw_exec(is_pg ? "UPDATE prov_payments SET req_hash = "
	                       "decode('00', 'hex')"
	                     : "UPDATE prov_payments SET req_hash = "
	                       "zeroblob(1)") != 0);
out:
	finish(st, NULL);
}

/*
 * A ledger batch settles a provider payment (ledger_req.prov): on OK the
 * payment moves and gets the txn id in the same commit; a row no longer
 * in the expected state fails the whole batch.
 */
static void
test_prov_settle(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov p1, p2, p3, g, before;
	struct store_prov_update u1, u2, u3, ux;
	struct store_idem idem;
	struct payment_event ev[8];
	struct ledger_req r[2];
	struct ledger_result res[2];
	size_t n = 0;
	int64_t clr, mer, empty, n_txns;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	empty = mk_account(st, "merchant:empty", LEDGER_ACCT_MERCHANT_PAYABLE,
	                   KES, true, false);
	p1 = mk_prov("PS-1", "mpesa", "C-1", "MP-1", clr, mer, 1500, T0, 1);
	p2 = mk_prov("PS-2", "mpesa", "C-2", "MP-2", clr, mer, 700, T0, 2);
	p3 = mk_prov("PS-3", "mpesa", "C-3", "MP-3", clr, mer, 300, T0, 3);
	if (prov_new(st, &p1) == 0 || prov_new(st, &p2) == 0 ||
	    prov_new(st, &p3) == 0)
		goto out;
	/* all three sent and accepted */
	u1 = mk_upd(p1.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	            STORE_CALL_ACCEPTED, T0 + 60000);
	CHECK_EQ_INT(st->ops->prov_update(st, &u1, T0 + 1), STORE_OK);
	u1.payment_id = p2.pay.id;
	CHECK_EQ_INT(st->ops->prov_update(st, &u1, T0 + 1), STORE_OK);
	u1.payment_id = p3.pay.id;
	CHECK_EQ_INT(st->ops->prov_update(st, &u1, T0 + 1), STORE_OK);

	/* the callback's settlement: posted and applied together */
	u1 = mk_upd(p1.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	            STORE_CALL_DONE, 0);
	u1.reason = "callback";
	u1.receipt = "RCPT-1";
	u1.result_code = "0";
	r[0] = mk_req("prov:mpesa:MP-1", KES, clr, mer, 1500);
	r[0].prov = &u1;
	memset(res, 0, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 1, res, T0 + 10), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].txn_id > 0);
	g = prov_by_ref(st, "PS-1");
	CHECK_EQ_INT(g.pay.state, PAY_SUCCEEDED);
	CHECK_EQ_INT(g.pay.txn_id, res[0].txn_id);
	CHECK_EQ_INT(g.pay.updated_ms, T0 + 10);
	CHECK_EQ_INT(g.call_state, STORE_CALL_DONE);
	CHECK_EQ_STR(g.receipt, "RCPT-1");
	CHECK_EQ_STR(g.provider_ref, "MP-1");
	CHECK_EQ_INT(balance(st, mer), 1500);
	CHECK_EQ_INT(st->ops->payment_events(st, p1.pay.id, ev, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_INT(ev[2].from, PAY_PENDING);
		CHECK_EQ_INT(ev[2].to, PAY_SUCCEEDED);
		CHECK_EQ_STR(ev[2].reason, "callback");
		CHECK_EQ_INT(ev[2].at_ms, T0 + 10);
	}
	/* a repeat of the key (a second callback) is a replay: the
	 * update is not applied again (it would conflict) */
	memset(res, 0, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 1, res, T0 + 11), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].is_replay);
	CHECK_EQ_INT(res[0].txn_id, g.pay.txn_id);
	CHECK_EQ_INT(n_events(st, p1.pay.id), 3);

	/* a refused request does not apply its update */
	ux = mk_upd(p3.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	            STORE_CALL_DONE, 0);
	r[0] = mk_req("prov:mpesa:MP-3:refused", KES, empty, mer, 300);
	r[0].prov = &ux;
	memset(res, 0, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 1, res, T0 + 12), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_INSUFFICIENT_FUNDS);
	g = prov_by_ref(st, "PS-3");
	CHECK_EQ_INT(g.pay.state, PAY_PENDING);
	CHECK_EQ_INT(g.call_state, STORE_CALL_ACCEPTED);
	CHECK_EQ_INT(g.pay.txn_id, 0);

	/* p2 is no longer where the settlement expects it (a status query
	 * said failed meanwhile): the settling requests are put back as
	 * RETRY and nothing of theirs is posted; with nothing else in the
	 * batch, ledger_commit_batch returns -1. */
	u2 = mk_upd(p2.pay.id, PAY_PENDING, PAY_FAILED, STORE_CALL_ACCEPTED,
	            STORE_CALL_DONE, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u2, T0 + 13), STORE_OK);
	before = prov_by_ref(st, "PS-2");
	n_txns = raw_i64("SELECT COUNT(*) FROM txns");
	u2 = mk_upd(p2.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	            STORE_CALL_DONE, 0);
	u3 = mk_upd(p3.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	            STORE_CALL_DONE, 0);
	r[0] = mk_req("prov:mpesa:MP-3", KES, clr, mer, 300);
	r[0].prov = &u3;
	r[1] = mk_req("prov:mpesa:MP-2", KES, clr, mer, 700);
	r[1].prov = &u2;
	memset(res, 0, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 2, res, T0 + 14), -1);
	CHECK_EQ_INT(res[0].rc, LEDGER_RETRY);
	CHECK_EQ_INT(res[1].rc, LEDGER_RETRY);
	CHECK_EQ_INT(res[0].txn_id, 0);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), n_txns);
	CHECK_EQ_INT(balance(st, mer), 1500);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "prov:mpesa:MP-3", &idem),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(st->ops->idem_lookup(st, "prov:mpesa:MP-2", &idem),
	             STORE_NOT_FOUND);
	g = prov_by_ref(st, "PS-2");
	check_prov_eq(&g, &before);
	g = prov_by_ref(st, "PS-3");
	CHECK_EQ_INT(g.pay.state, PAY_PENDING);
	/* the stale settlement shares its batch with a plain movement:
	 * the movement commits, the settlement alone comes back RETRY */
	{
		struct ledger_req mix[2];
		struct ledger_result mres[2];

		mix[0] = mk_req("plain:mixed-1", KES, clr, mer, 5);
		mix[1] = r[1]; /* MP-2, stale */
		memset(mres, 0, sizeof mres);
		CHECK_EQ_INT(ledger_commit_batch(lg, mix, 2, mres, T0 + 14), 0);
		CHECK_EQ_INT(mres[0].rc, LEDGER_OK);
		CHECK_EQ_INT(mres[1].rc, LEDGER_RETRY);
		CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), n_txns + 1);
		CHECK_EQ_INT(balance(st, mer), 1505);
		CHECK_EQ_INT(st->ops->idem_lookup(st, "prov:mpesa:MP-2", &idem),
		             STORE_NOT_FOUND);
		g = prov_by_ref(st, "PS-2");
		check_prov_eq(&g, &before);
		n_txns++;
	}
	/* an illegal edge in a batch: the batch fails too */
	u2 = mk_upd(p2.pay.id, PAY_FAILED, PAY_SUCCEEDED, STORE_CALL_DONE,
	            STORE_CALL_DONE, 0);
	r[1].prov = &u2;
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 2, res, T0 + 15), -1);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), n_txns);

	/* without the stale one, the same batch goes through */
	CHECK_EQ_INT(ledger_commit_batch(lg, r, 1, res, T0 + 16), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	g = prov_by_ref(st, "PS-3");
	CHECK_EQ_INT(g.pay.state, PAY_SUCCEEDED);
	CHECK_EQ_INT(g.pay.txn_id, res[0].txn_id);
	CHECK_EQ_INT(balance(st, mer), 1805);
	/* the settled payment is reversed later: txn_id stays */
	ux = mk_upd(p3.pay.id, PAY_SUCCEEDED, PAY_REVERSED, STORE_CALL_DONE,
	            STORE_CALL_DONE, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &ux, T0 + 17), STORE_OK);
	g = prov_by_ref(st, "PS-3");
	CHECK_EQ_INT(g.pay.state, PAY_REVERSED);
	CHECK(g.pay.txn_id > 0);
out:
	finish(st, lg);
}

/* verify(): the provider payment invariants */
static void
test_prov_verify(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov p1, p2;
	struct store_prov_update u;
	struct ledger_req r;
	struct ledger_result res;
	char all[512];
	size_t n = 0;
	int64_t clr, mer;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	p1 = mk_prov("PV-1", "mpesa", "C-1", "", clr, mer, 1500, T0, 1);
	p2 = mk_prov("PV-2", "mpesa", "C-2", "", clr, mer, 700, T0, 2);
	if (prov_new(st, &p1) == 0 || prov_new(st, &p2) == 0)
		goto out;
	/* succeeded without its ledger transaction */
	u = mk_upd(p1.pay.id, PAY_CREATED, PAY_PENDING, 0, STORE_CALL_ACCEPTED,
	           0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	u = mk_upd(p1.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_OK);
	all[0] = '\0';
	CHECK_EQ_INT(st->ops->verify(st, on_violation_append, all, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_STR(all, "prov_succeeded_without_txn ");
	/* settled by a transaction of another amount */
	u = mk_upd(p2.pay.id, PAY_CREATED, PAY_PENDING, 0, STORE_CALL_ACCEPTED,
	           0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 3), STORE_OK);
	u = mk_upd(p2.pay.id, PAY_PENDING, PAY_SUCCEEDED, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, 0);
	r = mk_req("prov:PV-2", KES, clr, mer, 699);
	r.prov = &u;
	res = commit1(lg, &r, T0 + 4);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	all[0] = '\0';
	n = 0;
	CHECK_EQ_INT(st->ops->verify(st, on_violation_append, all, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 2);
	CHECK(strstr(all, "prov_txn_mismatch") != NULL);
	finish_unverified(st, lg);
	return;
out:
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

#define PR_THREADS 8
#define PR_ROWS    300
#define PR_CAP     7

struct pr_arg {
	pthread_barrier_t *bar;
	int64_t *claimed; /* PR_ROWS payment ids */
	size_t n_claimed;
	int n_fail;
	bool is_open;
};

static void *
pr_thread(void *p)
{
	struct pr_arg *a = p;
	struct ledger *lg;
	struct store *st = thread_open(&lg);
	struct store_prov out[PR_CAP];
	int idle = 0;

	a->is_open = st != NULL;
	pthread_barrier_wait(a->bar);
	/* claim until three claims in a row come back empty */
	while (st != NULL && idle < 3) {
		size_t n = 0, i;
		enum store_rc rc = st->ops->prov_due(st, T0 + 1000, 600000,
		                                     out, PR_CAP, &n);

		if (rc == STORE_RETRY)
			continue;
		if (rc != STORE_OK) {
			fprintf(stderr, "  prov_due: %s\n", st->errstr);
			a->n_fail++;
			break;
		}
		idle = n == 0 ? idle + 1 : 0;
		for (i = 0; i < n && a->n_claimed < PR_ROWS; i++)
			a->claimed[a->n_claimed++] = out[i].pay.id;
	}
	ledger_free(lg);
	store_close(st);
	return NULL;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Several instances claim due rows at once: every due row is claimed
 * exactly once while the leases hold. */
static void
test_prov_due_race(void)
{
	struct store *st;
	struct pr_arg arg[PR_THREADS];
	pthread_t th[PR_THREADS];
	pthread_barrier_t bar;
	struct store_prov out[4];
	int64_t *all = xcalloc(PR_THREADS * PR_ROWS, sizeof *all);
	int64_t clr, mer, lo, hi;
	size_t n_all = 0, i, n = 0;
	int t, n_dup = 0, n_busy = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	/* the rows, with clashing due times; and some done */
	{
		char sql[1024];

		snprintf(sql, sizeof sql,
		         "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT "
		         "n + 1 FROM g WHERE n < %d) INSERT INTO payments (ref, "
		         "state, currency, amount_minor, created_ms, "
		         "updated_ms) SELECT 'PR-' || n, 1, 404, 100, 0, 0 "
		         "FROM g",
		         PR_ROWS + 20);
		CHECK_EQ_INT(raw_exec(sql), 0);
		CHECK_EQ_INT(raw_exec("INSERT INTO payment_events (payment_id, "
		                      "from_state, to_state, reason, at_ms) "
		                      "SELECT id, NULL, 1, 'created', 0 FROM "
		                      "payments"),
		             0);
		snprintf(sql, sizeof sql,
		         "INSERT INTO prov_payments (payment_id, kind, "
		         "provider, msisdn, clearing_account_id, "
		         "target_account_id, client_ref, call_state, "
		         "next_at_ms, deadline_ms, "
		         "req_hash) SELECT id, 1, 'mpesa', '2547', %" PRId64
		         ", %" PRId64 ", ref, CASE WHEN id >= (SELECT MIN(id) "
		         "FROM payments) + %d THEN 4 ELSE id %% 4 END, "
		         "%" PRId64 " + id %% 13, 0, %s FROM payments p",
		         clr, mer, PR_ROWS, (int64_t)T0,
		         is_pg ? "decode(repeat('ab', 32), 'hex')"
		               : "zeroblob(32)");
		CHECK_EQ_INT(raw_exec(sql), 0);
	}
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM prov_payments WHERE "
	                     "call_state < 4"),
	             PR_ROWS);
	lo = raw_i64("SELECT MIN(payment_id) FROM prov_payments");
	hi = raw_i64("SELECT MAX(payment_id) FROM prov_payments");
	memset(arg, 0, sizeof arg);
	pthread_barrier_init(&bar, NULL, PR_THREADS);
	for (t = 0; t < PR_THREADS; t++) {
		arg[t].bar = &bar;
		arg[t].claimed = all + (size_t)t * PR_ROWS;
		pthread_create(&th[t], NULL, pr_thread, &arg[t]);
	}
	for (t = 0; t < PR_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (t = 0; t < PR_THREADS; t++) {
		CHECK(arg[t].is_open);
		CHECK_EQ_INT(arg[t].n_fail, 0);
		memmove(all + n_all, arg[t].claimed,
		        arg[t].n_claimed * sizeof *all);
		n_all += arg[t].n_claimed;
	}
	qsort(all, n_all, sizeof *all, cmp_i64);
	for (i = 1; i < n_all; i++)
		n_dup += all[i] == all[i - 1];
	for (t = 0; t < PR_THREADS; t++)
		n_busy += arg[t].n_claimed > 0;
	printf("# prov_due race: %zu claims by %d of %d instances\n", n_all,
	       n_busy, PR_THREADS);
	CHECK_EQ_INT(n_dup, 0);
	CHECK_EQ_INT(n_all, PR_ROWS);
	for (i = 0; i < n_all; i++)
		CHECK(all[i] >= lo && all[i] <= hi);
	{
		char sql[256];

		snprintf(sql, sizeof sql,
		         "SELECT COUNT(*) FROM prov_payments WHERE call_state "
		         "< 4 AND next_at_ms <> %" PRId64,
		         (int64_t)(T0 + 1000 + 600000));
		CHECK_EQ_INT(raw_i64(sql), 0);
	}
	/* all leased: nothing left to claim */
	CHECK_EQ_INT(st->ops->prov_due(st, T0 + 1000, 1, out, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
out:
	free(all);
	finish(st, NULL);
}

#define PS_THREADS  6
#define PS_PAYMENTS 12

struct ps_arg {
	int no;
	pthread_barrier_t *bar;
	const int64_t *ids; /* PS_PAYMENTS payment ids */
	int64_t clr, mer;
	bool won[PS_PAYMENTS];
	int n_odd;
	bool is_open;
};

/* Even threads settle through the ledger (a callback: succeeded),
 * odd ones through prov_update (a status query: failed). */
static void *
ps_thread(void *p)
{
	struct ps_arg *a = p;
	struct ledger *lg;
	struct store *st = thread_open(&lg);
	int i;

	a->is_open = st != NULL;
	pthread_barrier_wait(a->bar);
	for (i = 0; st != NULL && i < PS_PAYMENTS; i++) {
		/* from both ends, to meet in the middle */
		int k = a->no % 2 == 0 ? i : PS_PAYMENTS - 1 - i;
		struct store_prov_update u;
		enum store_rc rc;

		memset(&u, 0, sizeof u);
		u.payment_id = a->ids[k];
		u.from_state = PAY_PENDING;
		u.expect_call = STORE_CALL_ACCEPTED;
		u.call_state = STORE_CALL_DONE;
		if (a->no % 2 == 0) {
			struct ledger_req r;
			struct ledger_result res;
			char key[48];
			int crc;

			snprintf(key, sizeof key, "ps:%d:%d", k, a->no);
			u.to_state = PAY_SUCCEEDED;
			u.reason = "callback";
			r = mk_req(key, KES, a->clr, a->mer, 100 + k);
			r.prov = &u;
			memset(&res, 0, sizeof res);
			crc = ledger_commit_batch(lg, &r, 1, &res, T0 + 5);
			if (crc == 0 && res.rc == LEDGER_OK)
				a->won[k] = true;
			else if (crc == 0 || res.rc != LEDGER_RETRY)
				a->n_odd++;
			continue;
		}
		u.to_state = PAY_FAILED;
		u.reason = "status query";
		do
			rc = st->ops->prov_update(st, &u, T0 + 5);
		while (rc == STORE_RETRY);
		if (rc == STORE_OK)
			a->won[k] = true;
		else if (rc != STORE_CONFLICT)
			a->n_odd++;
	}
	ledger_free(lg);
	store_close(st);
	return NULL;
}

/* Callbacks and status queries of several instances settle the same
 * payments at once: each payment is settled exactly once, posted iff it
 * succeeded. */
static void
test_prov_settle_race(void)
{
	struct store *st;
	struct ps_arg arg[PS_THREADS];
	pthread_t th[PS_THREADS];
	pthread_barrier_t bar;
	int64_t ids[PS_PAYMENTS], clr, mer, want_bal = 0;
	int t, k, n_ledger = 0;

	fresh_db();
	if ((st = open_db()) == NULL)
		return;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	for (k = 0; k < PS_PAYMENTS; k++) {
		char ref[32], cref[32];
		struct store_prov p;
		struct store_prov_update u;

		snprintf(ref, sizeof ref, "PS-%d", k);
		snprintf(cref, sizeof cref, "C-%d", k);
		p = mk_prov(ref, "mpesa", cref, "", clr, mer, 100 + k, T0,
		            (uint8_t)k);
		ids[k] = prov_new(st, &p);
		u = mk_upd(ids[k], PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
		           STORE_CALL_ACCEPTED, T0 + 60000);
		CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	}
	memset(arg, 0, sizeof arg);
	pthread_barrier_init(&bar, NULL, PS_THREADS);
	for (t = 0; t < PS_THREADS; t++) {
		arg[t].no = t;
		arg[t].bar = &bar;
		arg[t].ids = ids;
		arg[t].clr = clr;
		arg[t].mer = mer;
		pthread_create(&th[t], NULL, ps_thread, &arg[t]);
	}
	for (t = 0; t < PS_THREADS; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	for (t = 0; t < PS_THREADS; t++) {
		CHECK(arg[t].is_open);
		CHECK_EQ_INT(arg[t].n_odd, 0);
	}
	for (k = 0; k < PS_PAYMENTS; k++) {
		struct store_prov g;
		char ref[32];
		int n_won = 0, by_ledger = 0;

		for (t = 0; t < PS_THREADS; t++)
			if (arg[t].won[k]) {
				n_won++;
				by_ledger = t % 2 == 0;
			}
		CHECK_EQ_INT(n_won, 1);
		snprintf(ref, sizeof ref, "PS-%d", k);
		g = prov_by_ref(st, ref);
		CHECK_EQ_INT(g.pay.state,
		             by_ledger ? PAY_SUCCEEDED : PAY_FAILED);
		CHECK_EQ_INT(g.call_state, STORE_CALL_DONE);
		CHECK_EQ_INT(g.pay.txn_id != 0, by_ledger);
		if (by_ledger) {
			n_ledger++;
			want_bal += 100 + k;
		}
	}
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM txns"), n_ledger);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments WHERE state = 3 "
	                     "AND txn_id IS NOT NULL"),
	             n_ledger);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payments WHERE state = 4 "
	                     "AND txn_id IS NULL"),
	             PS_PAYMENTS - n_ledger);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM payment_events"),
	             3 * PS_PAYMENTS);
	CHECK_EQ_INT(balance(st, mer), want_bal);
	printf("# prov settle race: %d of %d settled by the ledger\n",
	       n_ledger, PS_PAYMENTS);
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

/* ---- reconciliation (docs/payments.md §Reconciliation) ---- */

/* Moves payment p (created, to_send) to unknown with its call closed. */
static void
make_unknown(struct store *st, const struct store_prov *p)
{
	struct store_prov_update u;

	u = mk_upd(p->pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0 + 60000);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 1), STORE_OK);
	u = mk_upd(p->pay.id, PAY_PENDING, PAY_UNKNOWN, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, T0 + 60000);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_OK);
}

static struct store_prov_resolution
mk_resolution(uint8_t outcome, const char *key, const char *ref)
{
	struct store_prov_resolution r;

	memset(&r, 0, sizeof r);
	r.outcome = outcome;
	strlcpy_s(r.actor, "ops.alice", sizeof r.actor);
	strlcpy_s(r.evidence, "statement 2026-11-21 line 42 \"ok\"",
	          sizeof r.evidence);
	strlcpy_s(r.provider_ref, "QK12ABC", sizeof r.provider_ref);
	strlcpy_s(r.idem_key, key, sizeof r.idem_key);
	svc_recon_hash(&r, ref);
	return r;
}

/*
 * The unknown list (bounded pages, by id), and resolutions: written with
 * the change that settles the payment, in the same transaction (a plain
 * update or a ledger request with its postings), read back whole, never
 * written for a change that did not apply, never changed afterwards.
 */
static void
test_prov_resolution(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov p1, p2, p3, p4, rows[4], g;
	struct store_prov_resolution r1, r2, r3, got;
	struct store_prov_update u;
	struct ledger_req lr;
	struct ledger_result res;
	struct svc_error e;
	struct payment_event ev[8];
	size_t n = 0;
	int64_t clr, mer, src, hold;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	src = mk_account(st, "merchant:src", LEDGER_ACCT_MERCHANT_PAYABLE,
	                 KES, true, false);
	hold = mk_account(st, "hold:mpesa", LEDGER_ACCT_SUSPENSE, KES, true,
	                  false);
	lr = mk_req("fund", KES, clr, src, 1000);
	CHECK_EQ_INT(commit1(lg, &lr, T0).rc, LEDGER_OK);
	p1 = mk_prov("RC-1", "mpesa", "C-1", "", clr, mer, 1500, T0, 1);
	p3 = mk_prov("RC-3", "mpesa", "C-3", "", clr, mer, 300, T0, 3);
	p4 = mk_prov("RC-4", "mpesa", "C-4", "", clr, mer, 400, T0, 4);
	if (prov_new(st, &p1) == 0)
		goto out;
	/* a disbursement: the hold and the row in one request */
	p2 = mk_prov("RC-2", "mpesa", "C-2", "", clr, src, 600, T0, 2);
	p2.kind = STORE_PROV_DISBURSE;
	p2.hold_account_id = hold;
	lr = mk_req("hold:RC-2", KES, src, hold, 600);
	lr.prov_new = &p2;
	CHECK_EQ_INT(commit1(lg, &lr, T0).rc, LEDGER_OK);
	p2 = prov_by_ref(st, "RC-2");
	if (prov_new(st, &p3) == 0 || prov_new(st, &p4) == 0)
		goto out;
	make_unknown(st, &p1);
	make_unknown(st, &p2);
	make_unknown(st, &p3);
	p2 = prov_by_ref(st, "RC-2");
	p3 = prov_by_ref(st, "RC-3");
	/* p4 stays created: not listed */

	/* the list: unknown only, by id, bounded, paged by after */
	CHECK_EQ_INT(st->ops->prov_unknown(st, 0, rows, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 3);
	if (n == 3) {
		CHECK_EQ_STR(rows[0].pay.ref, "RC-1");
		CHECK_EQ_STR(rows[1].pay.ref, "RC-2");
		CHECK_EQ_STR(rows[2].pay.ref, "RC-3");
		CHECK_EQ_INT(rows[1].kind, STORE_PROV_DISBURSE);
		CHECK_EQ_INT(rows[1].hold_account_id, hold);
		CHECK_EQ_INT(rows[0].pay.state, PAY_UNKNOWN);
	}
	CHECK_EQ_INT(st->ops->prov_unknown(st, 0, rows, 2, &n), STORE_OK);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(st->ops->prov_unknown(st, p2.pay.id, rows, 2, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK_EQ_STR(rows[0].pay.ref, "RC-3");
	CHECK_EQ_INT(st->ops->prov_unknown(st, p3.pay.id, rows, 2, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p1.pay.id, &got),
	             STORE_NOT_FOUND);

	/* p1 succeeded by hand: clearing -> merchant, state and record in
	 * one commit */
	p1 = prov_by_ref(st, "RC-1");
	r1 = mk_resolution(PAY_SUCCEEDED, "key-1", "RC-1");
	CHECK_EQ_INT(svc_recon_resolve(&p1, NULL, &r1, &u, &lr, &e),
	             SVC_RECON_POST);
	res = commit1(lg, &lr, T0 + 100);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	g = prov_by_ref(st, "RC-1");
	CHECK_EQ_INT(g.pay.state, PAY_SUCCEEDED);
	CHECK_EQ_INT(g.pay.txn_id, res.txn_id);
	CHECK_EQ_STR(g.receipt, "QK12ABC");
	CHECK_EQ_STR(g.result_code, "resolved");
	CHECK_EQ_INT(balance(st, mer), 1500);
	memset(&got, 0, sizeof got);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p1.pay.id, &got),
	             STORE_OK);
	CHECK_EQ_INT(got.payment_id, p1.pay.id);
	CHECK_EQ_INT(got.outcome, PAY_SUCCEEDED);
	CHECK_EQ_STR(got.actor, "ops.alice");
	CHECK_EQ_STR(got.evidence, "statement 2026-11-21 line 42 \"ok\"");
	CHECK_EQ_STR(got.provider_ref, "QK12ABC");
	CHECK_EQ_STR(got.idem_key, "key-1");
	CHECK(memcmp(got.req_hash, r1.req_hash, 32) == 0);
	CHECK_EQ_INT(got.created_ms, T0 + 100);
	CHECK_EQ_INT(st->ops->payment_events(st, p1.pay.id, ev, 8, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 4);
	if (n == 4) {
		CHECK_EQ_INT(ev[3].from, PAY_UNKNOWN);
		CHECK_EQ_INT(ev[3].to, PAY_SUCCEEDED);
		CHECK_EQ_STR(ev[3].reason, "resolved by hand: succeeded");
	}
	/* the same request again: a replay, decided from the record */
	CHECK_EQ_INT(svc_recon_resolve(&g, &got, &r1, &u, &lr, &e),
	             SVC_RECON_REPLAY);

	/* p2 (disbursement) failed by hand: the hold goes back */
	r2 = mk_resolution(PAY_FAILED, "key-2", "RC-2");
	CHECK_EQ_INT(balance(st, hold), 600);
	CHECK_EQ_INT(svc_recon_resolve(&p2, NULL, &r2, &u, &lr, &e),
	             SVC_RECON_POST);
	/* ... but not while the row is not what was read: nothing written,
	 * no record */
	u.expect_call = STORE_CALL_ACCEPTED;
	memset(&res, 0, sizeof res);
	(void)ledger_commit_batch(lg, &lr, 1, &res, T0 + 200);
	CHECK_EQ_INT(res.rc, LEDGER_RETRY);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p2.pay.id, &got),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(balance(st, hold), 600);
	u.expect_call = STORE_CALL_DONE;
	CHECK_EQ_INT(commit1(lg, &lr, T0 + 201).rc, LEDGER_OK);
	CHECK_EQ_INT(balance(st, hold), 0);
	CHECK_EQ_INT(balance(st, src), 1000);
	CHECK_EQ_INT(prov_by_ref(st, "RC-2").pay.state, PAY_FAILED);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p2.pay.id, &got),
	             STORE_OK);
	CHECK_EQ_INT(got.outcome, PAY_FAILED);

	/* p3 (collection) failed by hand: no posting, a plain update */
	r3 = mk_resolution(PAY_FAILED, "key-3", "RC-3");
	CHECK_EQ_INT(svc_recon_resolve(&p3, NULL, &r3, &u, &lr, &e),
	             SVC_RECON_WRITE);
	u.expect_call = STORE_CALL_ACCEPTED; /* stale: nothing written */
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 300), STORE_CONFLICT);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p3.pay.id, &got),
	             STORE_NOT_FOUND);
	CHECK_EQ_INT(prov_by_ref(st, "RC-3").pay.state, PAY_UNKNOWN);
	u.expect_call = STORE_CALL_DONE;
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 301), STORE_OK);
	CHECK_EQ_INT(prov_by_ref(st, "RC-3").pay.state, PAY_FAILED);
	CHECK_EQ_INT(st->ops->prov_resolution_get(st, p3.pay.id, &got),
	             STORE_OK);
	CHECK_EQ_STR(got.idem_key, "key-3");
	CHECK_EQ_INT(st->ops->prov_unknown(st, 0, rows, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 0);

	/* one per payment, never changed nor deleted */
	CHECK(raw_exec("UPDATE prov_resolutions SET actor = 'mallory'") != 0);
	CHECK(raw_exec("DELETE FROM prov_resolutions") != 0);
	CHECK_EQ_INT(raw_i64("SELECT COUNT(*) FROM prov_resolutions"), 3);
	CHECK(raw_exec("INSERT INTO prov_resolutions (payment_id, outcome, "
	               "actor, evidence, idem_key, req_hash, created_ms) "
	               "SELECT payment_id, 3, 'x', 'y', 'z', req_hash, 0 "
	               "FROM prov_resolutions LIMIT 1") != 0);
out:
	finish(st, lg);
}

/*
 * Fees (docs/payments.md §13): the fee, its account and the commission
 * are stored with the payment and read back by every read (get, due,
 * the unknown list), for a collection, a bill and a disbursement whose
 * hold includes its fee (the verify check counts it); the database
 * refuses a commission above the fee.
 */
static void
test_prov_fee(void)
{
	struct store *st;
	struct ledger *lg = NULL;
	struct store_prov c, b, d, g, rows[4];
	struct store_prov_update u;
	struct ledger_req r;
	size_t n = 0;
	int64_t clr, mer, fees, hold, src, bhold, biller;

	fresh_db();
	if ((st = open_db()) == NULL || (lg = new_ledger(st)) == NULL)
		goto out;
	clr = mk_account(st, "clearing:mpesa", LEDGER_ACCT_PROVIDER_CLEARING,
	                 KES, false, false);
	mer = mk_account(st, "merchant:m1", LEDGER_ACCT_MERCHANT_PAYABLE, KES,
	                 true, false);
	fees = mk_account(st, "fees:KES", LEDGER_ACCT_FEES_REVENUE, KES, false,
	                  false);
	hold = mk_account(st, "hold:mpesa", LEDGER_ACCT_SUSPENSE, KES, true,
	                  false);
	src = mk_account(st, "agent:A1:float", LEDGER_ACCT_AGENT_FLOAT, KES,
	                 true, false);
	bhold = mk_account(st, "suspense:bills", LEDGER_ACCT_SUSPENSE, KES,
	                   true, false);
	biller = mk_account(st, "biller:flw", LEDGER_ACCT_BILLER_PAYABLE, KES,
	                    false, false);
	r = mk_req("fund", KES, clr, src, 100000);
	CHECK_EQ_INT(commit1(lg, &r, T0).rc, LEDGER_OK);
	c = mk_prov("FEE-C", "mpesa", "C-1", "", clr, mer, 15000, T0, 1);
	c.fee_minor = 275;
	c.fee_account_id = fees;
	b = mk_prov("FEE-B", "flwbill", "B-1", "", bhold, biller, 150000, T0,
	            2);
	b.kind = STORE_PROV_BILL;
	b.bill.source_account_id = src;
	b.fee_minor = 1000;
	b.fee_account_id = fees;
	b.commission_minor = 400;
	if (prov_new(st, &c) == 0 || prov_new(st, &b) == 0)
		goto out;
	g = prov_by_ref(st, "FEE-C");
	CHECK_EQ_INT(g.fee_minor, 275);
	CHECK_EQ_INT(g.fee_account_id, fees);
	CHECK_EQ_INT(g.commission_minor, 0);
	g = prov_by_ref(st, "FEE-B");
	CHECK_EQ_INT(g.fee_minor, 1000);
	CHECK_EQ_INT(g.fee_account_id, fees);
	CHECK_EQ_INT(g.commission_minor, 400);
	/* a disbursement: amount + fee held in the commit that creates it */
	d = mk_prov("FEE-D", "mpesa", "D-1", "", clr, src, 30000, T0, 3);
	d.kind = STORE_PROV_DISBURSE;
	d.hold_account_id = hold;
	d.fee_minor = 500;
	d.fee_account_id = fees;
	svc_prov_hold_req(&d, &r);
	CHECK_EQ_INT(commit1(lg, &r, T0).rc, LEDGER_OK);
	CHECK_EQ_INT(balance(st, hold), 30500);
	CHECK_EQ_INT(balance(st, src), 100000 - 30500);
	g = prov_by_ref(st, "FEE-D");
	CHECK_EQ_INT(g.fee_minor, 500);
	CHECK_EQ_INT(g.fee_account_id, fees);
	/* the due rows and the unknown list carry the fee too */
	CHECK_EQ_INT(st->ops->prov_due(st, T0 + 1, 1000, rows, 4, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 3);
	if (n == 3)
		CHECK_EQ_INT(rows[0].fee_minor + rows[1].fee_minor +
		                     rows[2].fee_minor,
		             275 + 1000 + 500);
	u = mk_upd(g.pay.id, PAY_CREATED, PAY_PENDING, STORE_CALL_TO_SEND,
	           STORE_CALL_ACCEPTED, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 2), STORE_OK);
	u = mk_upd(g.pay.id, PAY_PENDING, PAY_UNKNOWN, STORE_CALL_ACCEPTED,
	           STORE_CALL_DONE, T0);
	CHECK_EQ_INT(st->ops->prov_update(st, &u, T0 + 3), STORE_OK);
	CHECK_EQ_INT(st->ops->prov_unknown(st, 0, rows, 4, &n), STORE_OK);
	CHECK_EQ_INT(n, 1);
	if (n == 1)
		CHECK_EQ_INT(rows[0].fee_minor, 500);
	/* the success: the hold with its fee leaves, the fee is earned */
	g = prov_by_ref(st, "FEE-D");
	svc_prov_unchanged(&g, &u);
	u.to_state = PAY_SUCCEEDED;
	svc_prov_settle_req(&g, &u, &r);
	CHECK_EQ_INT(commit1(lg, &r, T0 + 4).rc, LEDGER_OK);
	CHECK_EQ_INT(balance(st, hold), 0);
	CHECK_EQ_INT(balance(st, fees), 500);
	CHECK_EQ_INT(balance(st, clr), -100000 + 30000);
	/* a commission above the fee is refused by the database */
	b = mk_prov("FEE-X", "flwbill", "B-2", "", bhold, biller, 100, T0, 4);
	b.kind = STORE_PROV_BILL;
	b.bill.source_account_id = src;
	b.fee_minor = 10;
	b.fee_account_id = fees;
	b.commission_minor = 11;
	CHECK(st->ops->prov_create(st, &b) != STORE_OK);
	CHECK_EQ_INT(st->ops->prov_get(st, "FEE-X", NULL, NULL, NULL, &g),
	             STORE_NOT_FOUND);
out:
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
	RUN(test_pos_totals_migration);
	RUN(test_transfer);
	RUN(test_errors);
	RUN(test_idempotency);
	RUN(test_reversal);
	RUN(test_limits);
	RUN(test_payments);
	RUN(test_prov_create_get);
	RUN(test_pos_pay);
	RUN(test_rpc_keys);
	RUN(test_bill_create_get);
	RUN(test_disb_hold_batch);
	RUN(test_pos_claim);
	RUN(test_prov_reversal);
	RUN(test_prov_next_step);
	RUN(test_prov_due);
	RUN(test_prov_update);
	RUN(test_prov_settle);
	RUN(test_prov_resolution);
	RUN(test_prov_fee);
	RUN(test_prov_verify);
	RUN(test_bypass);
	RUN(test_other_writer_seen);
	RUN(test_concurrent_writers);
	RUN(test_hot_account);
	RUN(test_limits_race);
	RUN(test_prov_due_race);
	RUN(test_prov_settle_race);
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
