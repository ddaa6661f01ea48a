/*
 * test_ledger.c - unit tests for server/ledger.c over a fresh in-memory
 * SQLite store per test: idempotency (stored, in-batch, declines), the
 * request hash, limits (per transaction, daily, velocity, default and exact
 * rules, currency, windows), floors, multi-leg and oversized transactions,
 * in-batch ordering, reversals, ledger_day and the stable names.  Every
 * test ends with the store's invariant checks (verify).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ledger.h"
#include "money.h"
#include "store.h"

#define KES 404
#define UGX 800

/* 2023-11-14T22:14:00Z: a whole minute, mid-day UTC */
#define T0 1700000040000LL
#define DAY_MS 86400000LL

struct fx {
	struct store *st;
	struct ledger *lg;
	int64_t clearing; /* provider clearing, KES, no floor */
	int64_t agent;    /* agent float, KES, floor 0 */
	int64_t merchant; /* merchant payable, KES, floor 0 */
	int64_t fees;     /* fees revenue, KES, no floor */
};

static void
on_violation(void *arg, const char *what, const char *detail)
{
	(void)arg;
	fprintf(stderr, "  invariant %s: %s\n", what, detail);
}

static int64_t
acct_new(struct fx *f, const char *code, uint8_t type, uint16_t currency,
         bool has_floor, int64_t floor_minor)
{
	struct ledger_account a;

	memset(&a, 0, sizeof a);
	snprintf(a.code, sizeof a.code, "%s", code);
	a.type = type;
	a.currency = currency;
	a.has_floor = has_floor;
	a.floor_minor = floor_minor;
	a.created_ms = T0;
	CHECK_EQ_INT(f->st->ops->account_create(f->st, &a), STORE_OK);
	CHECK(a.id > 0);
	return a.id;
}

static bool
fx_open(struct fx *f)
{
	char err[256] = "";

	memset(f, 0, sizeof *f);
	f->st = store_sqlite_open(":memory:", err, sizeof err);
	if (f->st == NULL) {
		fprintf(stderr, "  store_sqlite_open: %s\n", err);
		CHECK(f->st != NULL);
		return false;
	}
	f->lg = ledger_new(f->st, err, sizeof err);
	if (f->lg == NULL) {
		fprintf(stderr, "  ledger_new: %s\n", err);
		CHECK(f->lg != NULL);
		store_close(f->st);
		return false;
	}
	f->clearing = acct_new(f, "prov:mpesa:clearing",
	                       LEDGER_ACCT_PROVIDER_CLEARING, KES, false, 0);
	f->agent = acct_new(f, "agent:A001:float", LEDGER_ACCT_AGENT_FLOAT,
	                    KES, true, 0);
	f->merchant = acct_new(f, "merchant:M001:payable",
	                       LEDGER_ACCT_MERCHANT_PAYABLE, KES, true, 0);
	f->fees = acct_new(f, "fees", LEDGER_ACCT_FEES_REVENUE, KES, false,
	                   0);
	return true;
}

static void
fx_close(struct fx *f)
{
	size_t n = 0;

	CHECK_EQ_INT(f->st->ops->verify(f->st, on_violation, NULL, &n),
	             STORE_OK);
	CHECK_EQ_INT(n, 0);
	ledger_free(f->lg);
	store_close(f->st);
}

static int64_t
balance(struct fx *f, int64_t id)
{
	struct ledger_account a;

	memset(&a, 0, sizeof a);
	CHECK_EQ_INT(f->st->ops->account_by_id(f->st, id, &a), STORE_OK);
	return a.balance_minor;
}

/* A two-leg KES payment of amount from -> to, counted at amount against
 * limits, no subjects; hashed. */
static void
req2(struct ledger_req *r, const char *key, int64_t from, int64_t to,
     int64_t amount)
{
	memset(r, 0, sizeof *r);
	snprintf(r->idem_key, sizeof r->idem_key, "test:%s", key);
	r->kind = LEDGER_TXN_PAYMENT;
	r->currency = KES;
	r->n_legs = 2;
	r->legs[0].account_id = from;
	r->legs[0].amount_minor = -amount;
	r->legs[1].account_id = to;
	r->legs[1].amount_minor = amount;
	r->limit_amount = amount;
	ledger_req_hash(r);
}

/* req2 with one MSISDN subject. */
static void
req2_msisdn(struct ledger_req *r, const char *key, int64_t from, int64_t to,
            int64_t amount, const char *msisdn)
{
	req2(r, key, from, to, amount);
	r->subjects[0].kind = LEDGER_SUBJ_MSISDN;
	snprintf(r->subjects[0].id, sizeof r->subjects[0].id, "%s", msisdn);
	ledger_req_hash(r);
}

static struct ledger_result
commit1(struct fx *f, const struct ledger_req *r, int64_t now_ms)
{
	struct ledger_result res;

	memset(&res, 0xa5, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(f->lg, r, 1, &res, now_ms), 0);
	return res;
}

/* Commits r alone and expects rc; returns the txn id. */
static int64_t
expect1(struct fx *f, const struct ledger_req *r, int64_t now_ms,
        enum ledger_rc rc)
{
	struct ledger_result res = commit1(f, r, now_ms);

	if (res.rc != rc)
		fprintf(stderr, "  %s: got %s, want %s\n", r->idem_key,
		        ledger_rc_name(res.rc), ledger_rc_name(rc));
	CHECK_EQ_INT(res.rc, rc);
	CHECK(!res.is_replay);
	if (rc == LEDGER_OK)
		CHECK(res.txn_id > 0);
	else
		CHECK_EQ_INT(res.txn_id, 0);
	return res.txn_id;
}

/* Funds the agent float from clearing. */
static void
topup(struct fx *f, const char *key, int64_t amount)
{
	struct ledger_req r;

	req2(&r, key, f->clearing, f->agent, amount);
	r.kind = LEDGER_TXN_FLOAT_TOPUP;
	ledger_req_hash(&r);
	expect1(f, &r, T0, LEDGER_OK);
}

static void
set_rule(struct fx *f, uint8_t kind, const char *subject, uint16_t currency,
         int64_t per_txn, int64_t daily, int32_t vel, int32_t vel_win)
{
	struct ledger_limit_rule rule;

	memset(&rule, 0, sizeof rule);
	rule.subject_kind = kind;
	snprintf(rule.subject, sizeof rule.subject, "%s", subject);
	rule.currency = currency;
	rule.per_txn_max = per_txn;
	rule.daily_max = daily;
	rule.velocity_max = vel;
	rule.velocity_window_s = vel_win;
	CHECK_EQ_INT(f->st->ops->limit_set(f->st, &rule), STORE_OK);
	ledger_limits_changed(f->lg);
}

/* ----------------------------------------------------------- basics */

static void
test_transfer(void)
{
	struct fx f;
	struct ledger_req r;
	struct ledger_result res;
	struct store_idem rec;

	if (!fx_open(&f))
		return;
	req2(&r, "t1", f.clearing, f.agent, 1000);
	res = commit1(&f, &r, T0);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	CHECK(!res.is_replay);
	CHECK(res.txn_id > 0);
	CHECK_EQ_INT(res.created_ms, T0);
	CHECK_EQ_INT(balance(&f, f.clearing), -1000);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	/* the key's record is durable */
	memset(&rec, 0, sizeof rec);
	CHECK_EQ_INT(f.st->ops->idem_lookup(f.st, r.idem_key, &rec),
	             STORE_OK);
	CHECK_EQ_STR(rec.key, r.idem_key);
	CHECK_EQ_INT(rec.rc, LEDGER_OK);
	CHECK_EQ_INT(rec.txn_id, res.txn_id);
	CHECK(memcmp(rec.hash, r.hash, LEDGER_HASH_LEN) == 0);
	/* an empty batch is a no-op */
	CHECK_EQ_INT(ledger_commit_batch(f.lg, &r, 0, &res, T0), 0);
	fx_close(&f);
}

static void
test_static_checks(void)
{
	struct fx f;
	struct ledger_req r;
	int64_t ugx_acct, closed;
	struct ledger_account a;

	if (!fx_open(&f))
		return;
	ugx_acct = acct_new(&f, "ugx", LEDGER_ACCT_SUSPENSE, UGX, false, 0);
	memset(&a, 0, sizeof a);
	snprintf(a.code, sizeof a.code, "closed");
	a.type = LEDGER_ACCT_SUSPENSE;
	a.currency = KES;
	a.is_closed = true;
	a.created_ms = T0;
	CHECK_EQ_INT(f.st->ops->account_create(f.st, &a), STORE_OK);
	closed = a.id;

	req2(&r, "unknown", f.clearing, 9999, 10);
	expect1(&f, &r, T0, LEDGER_UNKNOWN_ACCOUNT);
	req2(&r, "closed", f.clearing, closed, 10);
	expect1(&f, &r, T0, LEDGER_ACCOUNT_CLOSED);
	req2(&r, "currency", f.clearing, ugx_acct, 10);
	expect1(&f, &r, T0, LEDGER_CURRENCY_MISMATCH);
	req2(&r, "unbalanced", f.clearing, f.agent, 10);
	r.legs[1].amount_minor = 11;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_UNBALANCED);
	req2(&r, "one-leg", f.clearing, f.agent, 10);
	r.n_legs = 1;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_UNBALANCED);
	req2(&r, "zero-leg", f.clearing, f.agent, 0);
	expect1(&f, &r, T0, LEDGER_BAD_AMOUNT);
	req2(&r, "huge", f.clearing, f.agent, MONEY_MAX_MINOR + 1);
	expect1(&f, &r, T0, LEDGER_BAD_AMOUNT);
	req2(&r, "neg-limit", f.clearing, f.agent, 10);
	r.limit_amount = -1;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_BAD_AMOUNT);
	CHECK_EQ_INT(balance(&f, f.clearing), 0);
	CHECK_EQ_INT(balance(&f, f.agent), 0);
	fx_close(&f);
}

/* ------------------------------------------------------ idempotency */

static void
test_idem_repeat(void)
{
	struct fx f;
	struct ledger_req r, other;
	struct ledger_result first, res;

	if (!fx_open(&f))
		return;
	req2(&r, "k1", f.clearing, f.agent, 1000);
	first = commit1(&f, &r, T0);
	CHECK_EQ_INT(first.rc, LEDGER_OK);

	/* the same request later: the first outcome, balances untouched */
	res = commit1(&f, &r, T0 + 5000);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	CHECK(res.is_replay);
	CHECK_EQ_INT(res.txn_id, first.txn_id);
	CHECK_EQ_INT(res.created_ms, T0);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	CHECK_EQ_INT(balance(&f, f.clearing), -1000);

	/* the same key with other content */
	req2(&other, "k1", f.clearing, f.agent, 1001);
	res = commit1(&f, &other, T0 + 6000);
	CHECK_EQ_INT(res.rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(res.txn_id, 0);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);

	/* and the original is still replayable afterwards */
	res = commit1(&f, &r, T0 + 7000);
	CHECK_EQ_INT(res.rc, LEDGER_OK);
	CHECK(res.is_replay);
	CHECK_EQ_INT(res.txn_id, first.txn_id);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	fx_close(&f);
}

static void
test_idem_in_batch(void)
{
	struct fx f;
	struct ledger_req r[5];
	struct ledger_result res[5];

	if (!fx_open(&f))
		return;
	req2(&r[0], "a", f.clearing, f.agent, 1000);
	r[1] = r[0];                                  /* repeat */
	req2(&r[2], "a", f.clearing, f.agent, 999);   /* same key, other */
	req2(&r[3], "b", f.clearing, f.merchant, 50); /* unrelated */
	r[4] = r[0];                                  /* repeat again */
	memset(res, 0xa5, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, r, 5, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(!res[0].is_replay);
	CHECK(res[0].txn_id > 0);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK(res[1].is_replay);
	CHECK_EQ_INT(res[1].txn_id, res[0].txn_id);
	CHECK_EQ_INT(res[2].rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(res[2].txn_id, 0);
	CHECK_EQ_INT(res[3].rc, LEDGER_OK);
	CHECK(!res[3].is_replay);
	CHECK(res[3].txn_id > 0 && res[3].txn_id != res[0].txn_id);
	CHECK_EQ_INT(res[4].rc, LEDGER_OK);
	CHECK(res[4].is_replay);
	CHECK_EQ_INT(res[4].txn_id, res[0].txn_id);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	CHECK_EQ_INT(balance(&f, f.merchant), 50);
	CHECK_EQ_INT(balance(&f, f.clearing), -1050);

	/* a later batch replays the in-batch winner too */
	memset(res, 0xa5, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, &r[1], 2, res, T0 + 1), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK(res[0].is_replay);
	CHECK_EQ_INT(res[1].rc, LEDGER_IDEM_MISMATCH);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	fx_close(&f);
}

/*
 * Regression (store conformance review): an empty idempotency key was
 * taken as "new" by every batch, then collided in the unique index and
 * made the whole batch retry forever; text that is not UTF-8 failed whole
 * PostgreSQL batches.  Such a request is now refused alone as
 * request_invalid, never stored, and the rest of its batch commits.
 */
static void
test_bad_request_alone(void)
{
	struct fx f;
	struct ledger_req r[4];
	struct ledger_result res[4];

	if (!fx_open(&f))
		return;
	req2(&r[0], "good-1", f.clearing, f.agent, 100);
	req2(&r[1], "x", f.clearing, f.agent, 200);
	r[1].idem_key[0] = '\0'; /* empty key */
	ledger_req_hash(&r[1]);
	req2(&r[2], "bad-utf8", f.clearing, f.agent, 300);
	memcpy(r[2].memo, "\xc3\x28", 3); /* invalid 2-byte sequence */
	ledger_req_hash(&r[2]);
	req2(&r[3], "good-2", f.clearing, f.agent, 400);
	memset(res, 0xa5, sizeof res);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, r, 4, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_BAD_REQUEST);
	CHECK_EQ_INT(res[2].rc, LEDGER_BAD_REQUEST);
	CHECK_EQ_INT(res[3].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].txn_id, 0);
	CHECK_EQ_INT(balance(&f, f.agent), 500);
	/* not stored: the same key can be used once the request is fixed */
	r[2].memo[0] = '\0';
	ledger_req_hash(&r[2]);
	expect1(&f, &r[2], T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, f.agent), 800);
	fx_close(&f);
}

static void
test_idem_decline_replayed(void)
{
	struct fx f;
	struct ledger_req r, pair[2];
	struct ledger_result res, two[2];

	if (!fx_open(&f))
		return;
	/* the agent has nothing: declined */
	req2(&r, "pay", f.agent, f.merchant, 500);
	expect1(&f, &r, T0, LEDGER_INSUFFICIENT_FUNDS);
	/* funds arrive; the repeat is still the same decline */
	topup(&f, "fund", 1000);
	res = commit1(&f, &r, T0 + 1000);
	CHECK_EQ_INT(res.rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK(res.is_replay);
	CHECK_EQ_INT(res.txn_id, 0);
	CHECK_EQ_INT(res.created_ms, T0);
	CHECK_EQ_INT(balance(&f, f.agent), 1000);
	CHECK_EQ_INT(balance(&f, f.merchant), 0);

	/* a decline repeated inside one batch */
	req2(&pair[0], "big", f.agent, f.merchant, 5000);
	pair[1] = pair[0];
	CHECK_EQ_INT(ledger_commit_batch(f.lg, pair, 2, two, T0 + 2000), 0);
	CHECK_EQ_INT(two[0].rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK(!two[0].is_replay);
	CHECK_EQ_INT(two[1].rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK(two[1].is_replay);
	CHECK_EQ_INT(two[1].txn_id, 0);
	fx_close(&f);
}

/* Every decided field of a request changes its hash. */
static void
test_req_hash(void)
{
	struct ledger_req base, r;
	int i, n_fields = 13;

	memset(&base, 0, sizeof base);
	snprintf(base.idem_key, sizeof base.idem_key, "http:abc");
	base.kind = LEDGER_TXN_PAYMENT;
	base.currency = KES;
	base.n_legs = 3;
	base.legs[0].account_id = 1;
	base.legs[0].amount_minor = -1000;
	base.legs[1].account_id = 2;
	base.legs[1].amount_minor = 970;
	base.legs[2].account_id = 3;
	base.legs[2].amount_minor = 30;
	base.limit_amount = 1000;
	base.subjects[0].kind = LEDGER_SUBJ_MSISDN;
	snprintf(base.subjects[0].id, sizeof base.subjects[0].id,
	         "254700000001");
	base.subjects[1].kind = LEDGER_SUBJ_AGENT;
	snprintf(base.subjects[1].id, sizeof base.subjects[1].id, "A001");
	snprintf(base.memo, sizeof base.memo, "till 5");
	ledger_req_hash(&base);

	/* identical content, even with different bytes where nothing is
	 * decided (unused legs, unused subject slots), hashes equal */
	r = base;
	memset(r.hash, 0, sizeof r.hash);
	r.legs[5].account_id = 77;
	snprintf(r.subjects[2].id, sizeof r.subjects[2].id, "junk");
	ledger_req_hash(&r);
	CHECK(memcmp(r.hash, base.hash, LEDGER_HASH_LEN) == 0);

	for (i = 0; i < n_fields; i++) {
		r = base;
		switch (i) {
		case 0:
			r.kind = LEDGER_TXN_ADJUSTMENT;
			break;
		case 1:
			r.currency = UGX;
			break;
		case 2:
			r.n_legs = 2;
			break;
		case 3:
			r.legs[1].account_id = 4;
			break;
		case 4:
			r.legs[2].amount_minor = 31;
			break;
		case 5:
			r.legs[0].amount_minor = 1000;
			break;
		case 6:
			r.reverses_txn_id = 7;
			break;
		case 7:
			r.limit_amount = 999;
			break;
		case 8:
			r.subjects[0].kind = LEDGER_SUBJ_TERMINAL;
			break;
		case 9:
			r.subjects[0].id[11] = '2';
			break;
		case 10:
			r.subjects[2].kind = LEDGER_SUBJ_TERMINAL;
			break;
		case 11:
			r.memo[0] = 'T';
			break;
		case 12:
			r.memo[0] = '\0';
			break;
		}
		ledger_req_hash(&r);
		if (memcmp(r.hash, base.hash, LEDGER_HASH_LEN) == 0)
			fprintf(stderr, "  field change %d kept the hash\n",
			        i);
		CHECK(memcmp(r.hash, base.hash, LEDGER_HASH_LEN) != 0);
	}
	/* moving bytes between subject and memo is not a collision */
	r = base;
	snprintf(r.subjects[1].id, sizeof r.subjects[1].id, "A00");
	snprintf(r.memo, sizeof r.memo, "1till 5");
	ledger_req_hash(&r);
	CHECK(memcmp(r.hash, base.hash, LEDGER_HASH_LEN) != 0);
}

/* ----------------------------------------------------------- limits */

/* Subjects but no limit rules at all: nothing to check, nothing to
 * search. */
static void
test_limit_no_rules(void)
{
	struct fx f;
	struct ledger_req r;

	if (!fx_open(&f))
		return;
	req2_msisdn(&r, "n1", f.clearing, f.agent, 5000, "254700000001");
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK(ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, "254700000001",
	                        KES) == NULL);
	fx_close(&f);
}

static void
test_limit_per_txn(void)
{
	struct fx f;
	struct ledger_req r;

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 500, 0, 0, 0);
	req2_msisdn(&r, "p1", f.clearing, f.agent, 500, "254700000001");
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "p2", f.clearing, f.agent, 501, "254700000001");
	expect1(&f, &r, T0, LEDGER_LIMIT_PER_TXN);
	/* the limit counts limit_amount, not the legs */
	req2_msisdn(&r, "p3", f.clearing, f.agent, 501, "254700000001");
	r.limit_amount = 100;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_OK);
	/* without a subject no rule applies */
	req2(&r, "p4", f.clearing, f.agent, 10000);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, f.agent), 500 + 501 + 10000);
	fx_close(&f);
}

static void
test_limit_daily(void)
{
	struct fx f;
	struct ledger_req r;
	const char *m = "254700000001";
	/* the last millisecond of a UTC day, then the first of the next */
	int64_t end = (T0 / DAY_MS + 1) * DAY_MS - 1, next = end + 1;

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 0, 1000, 0, 0);
	req2_msisdn(&r, "d1", f.clearing, f.agent, 600, m);
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "d2", f.clearing, f.agent, 401, m);
	expect1(&f, &r, T0, LEDGER_LIMIT_DAILY);
	req2_msisdn(&r, "d3", f.clearing, f.agent, 400, m); /* == limit */
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "d4", f.clearing, f.agent, 1, m);
	expect1(&f, &r, end, LEDGER_LIMIT_DAILY);
	/* another subject has its own allowance */
	req2_msisdn(&r, "d5", f.clearing, f.agent, 1000, "254700000002");
	expect1(&f, &r, end, LEDGER_OK);
	/* next UTC day: a fresh allowance, exactly the limit again */
	req2_msisdn(&r, "d6", f.clearing, f.agent, 1000, m);
	expect1(&f, &r, next, LEDGER_OK);
	req2_msisdn(&r, "d7", f.clearing, f.agent, 1, m);
	expect1(&f, &r, next, LEDGER_LIMIT_DAILY);
	CHECK_EQ_INT(balance(&f, f.agent), 600 + 400 + 1000 + 1000);
	fx_close(&f);
}

static void
test_limit_daily_in_batch(void)
{
	struct fx f;
	struct ledger_req r[3];
	struct ledger_result res[3];
	const char *m = "254700000009";

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 0, 1000, 0, 0);
	req2_msisdn(&r[0], "b1", f.clearing, f.agent, 700, m);
	req2_msisdn(&r[1], "b2", f.clearing, f.agent, 301, m);
	req2_msisdn(&r[2], "b3", f.clearing, f.agent, 300, m);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_LIMIT_DAILY);
	CHECK_EQ_INT(res[2].rc, LEDGER_OK);
	/* the usage was stored: nothing more today */
	req2_msisdn(&r[0], "b4", f.clearing, f.agent, 1, m);
	expect1(&f, &r[0], T0 + 1000, LEDGER_LIMIT_DAILY);
	fx_close(&f);
}

/* A collection's limits (docs/payments.md §9a): ledger_limits_check
 * reads and writes nothing; a count_only request is never refused by a
 * limit and still counts. */
static void
test_limit_check_and_count_only(void)
{
	struct fx f;
	struct ledger_req r;
	const char *m = "254700000007";

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 800, 1000, 3, 86400);
	req2_msisdn(&r, "c1", f.clearing, f.agent, 600, m);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_OK);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_OK);
	r.limit_amount = 801;
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_LIMIT_PER_TXN);
	/* checked, not counted: 600 + 600 would break the day; each alone
	 * fits.  count_only: both commit, and the day holds 1,200 */
	req2_msisdn(&r, "c1", f.clearing, f.agent, 600, m);
	r.count_only = true;
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_LIMIT_DAILY);
	req2_msisdn(&r, "c2", f.clearing, f.agent, 600, m);
	r.count_only = true;
	expect1(&f, &r, T0, LEDGER_OK);
	/* per transaction too: a success is never refused */
	req2_msisdn(&r, "c3", f.clearing, f.agent, 900, m);
	r.count_only = true;
	expect1(&f, &r, T0, LEDGER_OK);
	/* the counts are there for the next checked request: the day's
	 * amount (2,100 > 1,000) and the velocity (3 of 3) */
	req2_msisdn(&r, "c4", f.clearing, f.agent, 1, m);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_LIMIT_DAILY);
	expect1(&f, &r, T0, LEDGER_LIMIT_DAILY);
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 0, 0, 3, 86400);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_LIMIT_VELOCITY);
	/* another subject, and the next day, start empty */
	req2_msisdn(&r, "c5", f.clearing, f.agent, 1, "254700000008");
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_OK);
	req2_msisdn(&r, "c6", f.clearing, f.agent, 1, m);
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0 + DAY_MS), LEDGER_OK);
	/* a bad subject is refused as the batch would */
	r.subjects[0].id[0] = '\0';
	CHECK_EQ_INT(ledger_limits_check(f.lg, &r, T0), LEDGER_BAD_REQUEST);
	CHECK_EQ_INT(balance(&f, f.agent), 600 + 600 + 900);
	fx_close(&f);
}

static void
test_limit_velocity(void)
{
	struct fx f;
	struct ledger_req r;
	const char *m = "254700000001";
	char key[16];
	int i;

	if (!fx_open(&f))
		return;
	/* T0 starts a 60 s window */
	CHECK_EQ_INT((T0 / 1000) % 60, 0);
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 0, 0, 2, 60);
	req2_msisdn(&r, "v1", f.clearing, f.agent, 10, m);
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "v2", f.clearing, f.agent, 10, m);
	expect1(&f, &r, T0 + 1000, LEDGER_OK);
	/* declines do not use up the window either */
	for (i = 0; i < 3; i++) {
		snprintf(key, sizeof key, "v3-%d", i);
		req2_msisdn(&r, key, f.clearing, f.agent, 10, m);
		expect1(&f, &r, T0 + 59999, LEDGER_LIMIT_VELOCITY);
	}
	/* the next window: two again, and only two */
	req2_msisdn(&r, "v4", f.clearing, f.agent, 10, m);
	expect1(&f, &r, T0 + 60000, LEDGER_OK);
	req2_msisdn(&r, "v5", f.clearing, f.agent, 10, m);
	expect1(&f, &r, T0 + 60001, LEDGER_OK);
	req2_msisdn(&r, "v6", f.clearing, f.agent, 10, m);
	expect1(&f, &r, T0 + 119999, LEDGER_LIMIT_VELOCITY);
	CHECK_EQ_INT(balance(&f, f.agent), 40);
	fx_close(&f);
}

static void
test_limit_default_and_exact(void)
{
	struct fx f;
	struct ledger_req r;
	const struct ledger_limit_rule *rule;
	const char *vip = "254700000001", *other = "254700000002";

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", KES, 100, 100, 0, 0);
	set_rule(&f, LEDGER_SUBJ_MSISDN, vip, KES, 1000, 0, 0, 0);
	/* rules load with the next batch */
	req2_msisdn(&r, "x0", f.clearing, f.agent, 1, other);
	expect1(&f, &r, T0, LEDGER_OK);

	rule = ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, vip, KES);
	CHECK(rule != NULL && strcmp(rule->subject, vip) == 0 &&
	      rule->per_txn_max == 1000);
	rule = ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, other, KES);
	CHECK(rule != NULL && strcmp(rule->subject, "*") == 0 &&
	      rule->per_txn_max == 100);
	CHECK(ledger_limit_find(f.lg, LEDGER_SUBJ_AGENT, vip, KES) == NULL);
	CHECK(ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, vip, UGX) == NULL);

	/* the exact rule replaces the default entirely (no daily cap) */
	req2_msisdn(&r, "x1", f.clearing, f.agent, 1000, vip);
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "x2", f.clearing, f.agent, 1000, vip);
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "x3", f.clearing, f.agent, 1001, vip);
	expect1(&f, &r, T0, LEDGER_LIMIT_PER_TXN);
	req2_msisdn(&r, "x4", f.clearing, f.agent, 101, other);
	expect1(&f, &r, T0, LEDGER_LIMIT_PER_TXN);
	req2_msisdn(&r, "x5", f.clearing, f.agent, 99, other);
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "x6", f.clearing, f.agent, 1, other);
	expect1(&f, &r, T0, LEDGER_LIMIT_DAILY);

	/* a second subject in the request is checked too */
	set_rule(&f, LEDGER_SUBJ_AGENT, "A001", KES, 50, 0, 0, 0);
	req2_msisdn(&r, "x7", f.clearing, f.agent, 60, vip);
	r.subjects[1].kind = LEDGER_SUBJ_AGENT;
	snprintf(r.subjects[1].id, sizeof r.subjects[1].id, "A001");
	ledger_req_hash(&r);
	expect1(&f, &r, T0 + 1, LEDGER_LIMIT_PER_TXN);
	fx_close(&f);
}

static void
test_limit_other_currency(void)
{
	struct fx f;
	struct ledger_req r;

	if (!fx_open(&f))
		return;
	set_rule(&f, LEDGER_SUBJ_MSISDN, "*", UGX, 1, 1, 1, 60);
	req2_msisdn(&r, "c1", f.clearing, f.agent, 5000, "254700000001");
	expect1(&f, &r, T0, LEDGER_OK);
	req2_msisdn(&r, "c2", f.clearing, f.agent, 5000, "254700000001");
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK(ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, "254700000001",
	                        KES) == NULL);
	CHECK(ledger_limit_find(f.lg, LEDGER_SUBJ_MSISDN, "254700000001",
	                        UGX) != NULL);
	fx_close(&f);
}

/* ------------------------------------------------- floors and legs */

static void
test_floors(void)
{
	struct fx f;
	struct ledger_req r;
	int64_t credit, reserve;

	if (!fx_open(&f))
		return;
	/* floor 0: cannot go below zero */
	topup(&f, "fund", 1000);
	req2(&r, "f1", f.agent, f.merchant, 1001);
	expect1(&f, &r, T0, LEDGER_INSUFFICIENT_FUNDS);
	req2(&r, "f2", f.agent, f.merchant, 1000);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, f.agent), 0);
	CHECK_EQ_INT(balance(&f, f.merchant), 1000);

	/* a negative floor is a credit line */
	credit = acct_new(&f, "agent:A002:float", LEDGER_ACCT_AGENT_FLOAT,
	                  KES, true, -500);
	req2(&r, "f3", credit, f.merchant, 501);
	expect1(&f, &r, T0, LEDGER_INSUFFICIENT_FUNDS);
	req2(&r, "f4", credit, f.merchant, 500);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, credit), -500);

	/* a positive floor is a reserve */
	reserve = acct_new(&f, "agent:A003:float", LEDGER_ACCT_AGENT_FLOAT,
	                   KES, true, 100);
	req2(&r, "f5", f.clearing, reserve, 1000);
	expect1(&f, &r, T0, LEDGER_OK);
	req2(&r, "f6", reserve, f.merchant, 901);
	expect1(&f, &r, T0, LEDGER_INSUFFICIENT_FUNDS);
	req2(&r, "f7", reserve, f.merchant, 900);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, reserve), 100);

	/* no floor: may go as negative as it likes */
	CHECK_EQ_INT(balance(&f, f.clearing), -2000);
	fx_close(&f);
}

static void
test_multi_leg(void)
{
	struct fx f;
	struct ledger_req r;
	int64_t comm;

	if (!fx_open(&f))
		return;
	comm = acct_new(&f, "commission", LEDGER_ACCT_COMMISSION_REVENUE,
	                KES, false, 0);
	/* customer pays 1000: merchant 970, fees 20, commission 10 */
	req2(&r, "m1", f.clearing, f.merchant, 1000);
	r.legs[1].amount_minor = 970;
	r.legs[2].account_id = f.fees;
	r.legs[2].amount_minor = 20;
	r.legs[3].account_id = comm;
	r.legs[3].amount_minor = 10;
	r.n_legs = 4;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, f.clearing), -1000);
	CHECK_EQ_INT(balance(&f, f.merchant), 970);
	CHECK_EQ_INT(balance(&f, f.fees), 20);
	CHECK_EQ_INT(balance(&f, comm), 10);

	/* three legs that do not sum to zero */
	req2(&r, "m2", f.clearing, f.merchant, 100);
	r.legs[1].amount_minor = 90;
	r.legs[2].account_id = f.fees;
	r.legs[2].amount_minor = 11;
	r.n_legs = 3;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_UNBALANCED);

	/* one account on two legs: its net effect counts for the floor */
	topup(&f, "fund", 100);
	req2(&r, "m3", f.agent, f.merchant, 150);
	r.legs[2].account_id = f.agent;
	r.legs[2].amount_minor = 60;
	r.legs[3].account_id = f.fees;
	r.legs[3].amount_minor = -60;
	r.n_legs = 4;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, f.agent), 10);
	CHECK_EQ_INT(balance(&f, f.merchant), 970 + 150);
	fx_close(&f);
}

static void
test_legs_max(void)
{
	struct fx f;
	struct ledger_req r;
	int64_t acct[LEDGER_LEGS_MAX];
	char code[32];
	int i;

	if (!fx_open(&f))
		return;
	for (i = 0; i < LEDGER_LEGS_MAX; i++) {
		snprintf(code, sizeof code, "suspense:%d", i);
		acct[i] = acct_new(&f, code, LEDGER_ACCT_SUSPENSE, KES, false,
		                   0);
	}
	/* exactly LEDGER_LEGS_MAX legs: accepted */
	memset(&r, 0, sizeof r);
	snprintf(r.idem_key, sizeof r.idem_key, "test:max");
	r.kind = LEDGER_TXN_ADJUSTMENT;
	r.currency = KES;
	r.n_legs = LEDGER_LEGS_MAX;
	for (i = 0; i < LEDGER_LEGS_MAX; i++) {
		r.legs[i].account_id = acct[i];
		r.legs[i].amount_minor = i == 0 ? -(LEDGER_LEGS_MAX - 1) : 1;
	}
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_OK);
	CHECK_EQ_INT(balance(&f, acct[0]), -(LEDGER_LEGS_MAX - 1));
	CHECK_EQ_INT(balance(&f, acct[LEDGER_LEGS_MAX - 1]), 1);

	/* one more than fits: refused, nothing read past legs[] */
	snprintf(r.idem_key, sizeof r.idem_key, "test:max+1");
	r.n_legs = LEDGER_LEGS_MAX + 1;
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_UNBALANCED);
	r.n_legs = 255;
	snprintf(r.idem_key, sizeof r.idem_key, "test:255");
	ledger_req_hash(&r);
	expect1(&f, &r, T0, LEDGER_UNBALANCED);
	CHECK_EQ_INT(balance(&f, acct[0]), -(LEDGER_LEGS_MAX - 1));
	fx_close(&f);
}

/* Requests of one batch are decided in order, each seeing the ones before
 * it. */
static void
test_batch_sequential(void)
{
	struct fx f;
	struct ledger_req r[3];
	struct ledger_result res[3];

	if (!fx_open(&f))
		return;
	topup(&f, "fund", 1000);
	req2(&r[0], "s1", f.agent, f.merchant, 700);
	req2(&r[1], "s2", f.agent, f.merchant, 700);
	req2(&r[2], "s3", f.agent, f.merchant, 300);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK_EQ_INT(res[1].txn_id, 0);
	CHECK_EQ_INT(res[2].rc, LEDGER_OK);
	CHECK(res[0].txn_id > 0 && res[2].txn_id > res[0].txn_id);
	CHECK_EQ_INT(balance(&f, f.agent), 0);
	CHECK_EQ_INT(balance(&f, f.merchant), 1000);

	/* a credit earlier in the batch funds a debit later in it */
	req2(&r[0], "s4", f.merchant, f.agent, 400);
	req2(&r[1], "s5", f.agent, f.fees, 400);
	req2(&r[2], "s6", f.agent, f.fees, 1);
	CHECK_EQ_INT(ledger_commit_batch(f.lg, r, 3, res, T0), 0);
	CHECK_EQ_INT(res[0].rc, LEDGER_OK);
	CHECK_EQ_INT(res[1].rc, LEDGER_OK);
	CHECK_EQ_INT(res[2].rc, LEDGER_INSUFFICIENT_FUNDS);
	CHECK_EQ_INT(balance(&f, f.agent), 0);
	CHECK_EQ_INT(balance(&f, f.fees), 400);
	fx_close(&f);
}

static void
test_reversal(void)
{
	struct fx f;
	struct ledger_req r, rev;
	int64_t t1, t2;

	if (!fx_open(&f))
		return;
	req2(&r, "orig", f.clearing, f.merchant, 250);
	t1 = expect1(&f, &r, T0, LEDGER_OK);
	memset(&rev, 0, sizeof rev);
	snprintf(rev.idem_key, sizeof rev.idem_key, "test:rev1");
	rev.kind = LEDGER_TXN_REVERSAL;
	rev.reverses_txn_id = t1;
	ledger_req_hash(&rev);
	t2 = expect1(&f, &rev, T0, LEDGER_OK);
	CHECK(t2 > t1);
	CHECK_EQ_INT(balance(&f, f.merchant), 0);
	CHECK_EQ_INT(balance(&f, f.clearing), 0);
	snprintf(rev.idem_key, sizeof rev.idem_key, "test:rev2");
	ledger_req_hash(&rev);
	expect1(&f, &rev, T0, LEDGER_REVERSAL_TWICE);
	rev.reverses_txn_id = t2;
	snprintf(rev.idem_key, sizeof rev.idem_key, "test:rev3");
	ledger_req_hash(&rev);
	expect1(&f, &rev, T0, LEDGER_REVERSAL_OF_REVERSAL);
	rev.reverses_txn_id = t2 + 100;
	snprintf(rev.idem_key, sizeof rev.idem_key, "test:rev4");
	ledger_req_hash(&rev);
	expect1(&f, &rev, T0, LEDGER_REVERSAL_UNKNOWN);
	fx_close(&f);
}

/* ------------------------------------------------------ day, names */

/* floor(ms / DAY_MS), computed the slow, obvious way */
static int64_t
slow_day(int64_t ms)
{
	int64_t q = ms / DAY_MS;

	return (ms % DAY_MS != 0 && ms < 0) ? q - 1 : q;
}

static void
test_day(void)
{
	static const int64_t ms[] = {
		0, 1, DAY_MS - 1, DAY_MS, DAY_MS + 1, -1, -DAY_MS + 1,
		-DAY_MS, -DAY_MS - 1, T0, -T0, INT64_MAX, INT64_MIN,
		INT64_MIN + 1,
	};
	size_t i;

	CHECK_EQ_INT(ledger_day(0), 0);
	CHECK_EQ_INT(ledger_day(DAY_MS - 1), 0);
	CHECK_EQ_INT(ledger_day(DAY_MS), 1);
	CHECK_EQ_INT(ledger_day(-1), -1);
	CHECK_EQ_INT(ledger_day(-DAY_MS), -1);
	CHECK_EQ_INT(ledger_day(-DAY_MS - 1), -2);
	CHECK_EQ_INT(ledger_day(T0), 19675);
	for (i = 0; i < sizeof ms / sizeof ms[0]; i++) {
		if (ledger_day(ms[i]) != slow_day(ms[i]))
			fprintf(stderr, "  ledger_day(%" PRId64 ")\n", ms[i]);
		CHECK_EQ_INT(ledger_day(ms[i]), slow_day(ms[i]));
	}
}

static void
test_names(void)
{
	int i, j;

	for (i = 0; i < LEDGER_RC_COUNT; i++) {
		const char *n = ledger_rc_name((enum ledger_rc)i);

		CHECK(strcmp(n, "unknown") != 0);
		CHECK(n[0] != '\0');
		for (j = 0; j < i; j++)
			CHECK(strcmp(n, ledger_rc_name((enum ledger_rc)j)) !=
			      0);
	}
	CHECK_EQ_STR(ledger_rc_name(LEDGER_RC_COUNT), "unknown");
	CHECK_EQ_STR(ledger_rc_name(LEDGER_OK), "ok");
	CHECK_EQ_STR(ledger_rc_name(LEDGER_INSUFFICIENT_FUNDS),
	             "insufficient_funds");

	for (i = 0; i < 256; i++) {
		const char *a = ledger_account_type_name((uint8_t)i);
		const char *k = ledger_txn_kind_name((uint8_t)i);
		const char *s = ledger_subject_kind_name((uint8_t)i);

		if (i >= 1 && i <= 8) {
			CHECK(strcmp(a, "?") != 0);
			CHECK_EQ_INT(ledger_account_type_parse(a), i);
		} else {
			CHECK_EQ_STR(a, "?");
		}
		if (i >= 1 && i <= 5) {
			CHECK(strcmp(k, "?") != 0);
			CHECK_EQ_INT(ledger_txn_kind_parse(k), i);
		} else {
			CHECK_EQ_STR(k, "?");
		}
		if (i >= 1 && i <= 4) {
			CHECK(strcmp(s, "?") != 0);
			CHECK_EQ_INT(ledger_subject_kind_parse(s), i);
		} else {
			CHECK_EQ_STR(s, "?");
		}
	}
	CHECK_EQ_STR(ledger_account_type_name(LEDGER_ACCT_AGENT_FLOAT),
	             "agent_float");
	CHECK_EQ_STR(ledger_txn_kind_name(LEDGER_TXN_REVERSAL), "reversal");
	CHECK_EQ_STR(ledger_subject_kind_name(LEDGER_SUBJ_MSISDN), "msisdn");
	CHECK_EQ_INT(ledger_account_type_parse("?"), -1);
	CHECK_EQ_INT(ledger_account_type_parse(""), -1);
	CHECK_EQ_INT(ledger_txn_kind_parse("Payment"), -1);
	CHECK_EQ_INT(ledger_subject_kind_parse("msisdn "), -1);
}

/* The request hash is stored with every idempotency record and compared
 * with a resend's: its encoding may never change.  Two requests pinned
 * to the digests of the field-by-field encoding they were first stored
 * with (the second with every field at its largest). */
static void
test_req_hash_pinned(void)
{
	static const char *const want[2] = {
	    "523a0237ce2cd482524444382f863954e9a23735f103356ce3557a252e37927f",
	    "2aceed887a8cf39f05119e9512e52be2140ac356470bc1c83d59d6643d3bff3c"};
	struct ledger_req r;
	char hex[2 * LEDGER_HASH_LEN + 1];
	int v, i;

	for (v = 0; v < 2; v++) {
		memset(&r, 0, sizeof r);
		r.kind = LEDGER_TXN_FLOAT_TRANSFER;
		r.currency = 404;
		r.n_legs = 2;
		r.legs[0].account_id = 7;
		r.legs[0].amount_minor = -12345;
		r.legs[1].account_id = 9;
		r.legs[1].amount_minor = 12345;
		r.limit_amount = 12345;
		r.subjects[0].kind = LEDGER_SUBJ_TERMINAL;
		strcpy(r.subjects[0].id, "T-000123");
		r.subjects[1].kind = LEDGER_SUBJ_AGENT;
		strcpy(r.subjects[1].id, "A1");
		strcpy(r.memo, "pos float_transfer A1 -> A2");
		if (v == 1) {
			memset(r.subjects[1].id, 'A', LEDGER_SUBJECT_MAX);
			r.subjects[1].id[LEDGER_SUBJECT_MAX] = '\0';
			r.subjects[2].kind = LEDGER_SUBJ_MERCHANT;
			strcpy(r.subjects[2].id, "M1");
			r.reverses_txn_id = 77;
			r.n_legs = LEDGER_LEGS_MAX;
			for (i = 0; i < LEDGER_LEGS_MAX; i++) {
				r.legs[i].account_id = i + 1;
				r.legs[i].amount_minor =
				    (i % 2 ? 1 : -1) * 1000000007LL * (i + 1);
			}
			memset(r.memo, 'm', LEDGER_MEMO_MAX);
			r.memo[LEDGER_MEMO_MAX] = '\0';
		}
		ledger_req_hash(&r);
		for (i = 0; i < LEDGER_HASH_LEN; i++)
			snprintf(hex + 2 * i, 3, "%02x", r.hash[i]);
		CHECK_EQ_STR(hex, want[v]);
	}
}

int
main(void)
{
	RUN(test_transfer);
	RUN(test_static_checks);
	RUN(test_idem_repeat);
	RUN(test_idem_in_batch);
	RUN(test_idem_decline_replayed);
	RUN(test_bad_request_alone);
	RUN(test_req_hash);
	RUN(test_limit_no_rules);
	RUN(test_limit_per_txn);
	RUN(test_limit_daily);
	RUN(test_limit_daily_in_batch);
	RUN(test_limit_velocity);
	RUN(test_limit_check_and_count_only);
	RUN(test_limit_default_and_exact);
	RUN(test_limit_other_currency);
	RUN(test_floors);
	RUN(test_multi_leg);
	RUN(test_legs_max);
	RUN(test_batch_sequential);
	RUN(test_reversal);
	RUN(test_day);
	RUN(test_names);
	RUN(test_req_hash_pinned);
	return check_report("ledger");
}
