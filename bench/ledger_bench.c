/*
 * ledger_bench.c - durable ledger payments per second, measured through
 * the storage writer (dbq.c) and the ledger core (ledger.c) exactly as
 * sokod uses them, in one process (docs/benchmarks.md).
 *
 *   ledger_bench --store URL --mode uniform|hot|per_commit
 *                [--accounts 10000] [--seconds 10] [--warmup 2]
 *                [--outstanding 4000] [--batch-max 2000] [--seed 1]
 *
 * Setup: a suspense account without floor, ACCOUNTS agent_float accounts
 * with floor 0 funded from it, and (hot) one merchant_payable collection
 * account.  Then a closed loop keeps OUTSTANDING payments posted to one
 * dbq: each is a 2-leg PAYMENT with a unique idempotency key and its
 * ledger_req_hash.  The worker group-commits what is queued (up to
 * BATCH_MAX per commit, SQLite WAL synchronous=FULL or PostgreSQL
 * synchronous_commit=on) and wakes this thread through an eventfd; the
 * done callback (via dbq_complete, as in sokod) checks the result, records
 * the latency posted -> done and posts the next payment.  An ack is only
 * counted after the commit that holds it.
 *
 *   uniform     debit and credit two distinct random funded accounts;
 *   hot         debit a random funded account, credit one collection
 *               account (every payment touches it);
 *   per_commit  as uniform, batch_max forced to 1: one payment per commit,
 *               the per-commit ceiling.
 *
 * At the end (TigerBeetle-style validation) every result must have been
 * LEDGER_OK with a distinct txn id, store->ops->verify must report no
 * violation, and every account's stored balance must equal the balance the
 * acknowledged results imply.  Any failure exits 1.
 *
 * Output: a human summary on stderr and one "result key=value ..." line on
 * stdout (bench/run.sh parses it).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "dbq.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "store.h"
#include "util.h"

#define CURRENCY   404                 /* KES */
#define FUND_MINOR 10000000000LL       /* per funded account: 1e10 */
#define FUND_BATCH 1000                /* funding requests per commit */

enum mode { MODE_UNIFORM, MODE_HOT, MODE_PER_COMMIT };

struct opts {
	const char *store;
	enum mode mode;
	size_t accounts;
	double seconds;
	double warmup;
	size_t outstanding;
	size_t batch_max;
	uint64_t seed;
};

struct bjob {
	struct dbq_job job; /* first: dbq hands back &job */
	struct bench *b;
};

struct bench {
	struct opts o;
	struct store *st;
	struct ledger *lg;
	struct dbq *q;
	int efd;
	char nonce[32];
	uint64_t rng;

	int64_t suspense_id;
	int64_t hot_id;
	int64_t *ids; /* funded accounts */
	size_t n_ids;
	int64_t id_min, id_max; /* over every account created */
	int64_t *expect;        /* expected balance by id - id_min */

	uint64_t seq;      /* payments posted */
	uint64_t n_done;   /* results received */
	uint64_t n_ok;     /* LEDGER_OK results */
	size_t in_flight;
	bool posting; /* false: drain */
	bool failed;

	/* measurement window */
	int64_t t_start, t_warm, t_end; /* monotonic us */
	bool in_window;
	uint64_t win_done;
	uint32_t *lat; /* latencies in the window, us */
	size_t n_lat, cap_lat;

	int64_t *txn_ids; /* every OK txn id, for the uniqueness check */
	size_t n_txn, cap_txn;
};

static void
die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("ledger_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* xorshift64*: fixed seed, so runs are repeatable */
static uint64_t
rnd(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ULL;
}

static size_t
rnd_below(struct bench *b, size_t n)
{
	return (size_t)(rnd(b) % n);
}

/* ---------------------------------------------------------------- setup */

static int64_t
create_account(struct bench *b, const char *what, size_t i, uint8_t type,
               bool has_floor)
{
	struct ledger_account a;
	enum store_rc rc;

	memset(&a, 0, sizeof a);
	snprintf(a.code, sizeof a.code, "bench:%s:%s:%zu", b->nonce, what, i);
	a.type = type;
	a.currency = CURRENCY;
	a.has_floor = has_floor;
	a.floor_minor = 0;
	a.created_ms = util_now_ms();
	if ((rc = b->st->ops->account_create(b->st, &a)) != STORE_OK)
		die("account_create %s: %s: %s", a.code, store_rc_name(rc),
		    b->st->errstr);
	return a.id;
}

static void
expect_add(struct bench *b, int64_t id, int64_t delta)
{
	if (id < b->id_min || id > b->id_max)
		die("account id %" PRId64 " out of range", id);
	b->expect[id - b->id_min] += delta;
}

static void
fill_payment(struct ledger_req *r, const char *key, uint8_t kind,
             int64_t debit, int64_t credit, int64_t amount)
{
	memset(r, 0, sizeof *r);
	strlcpy_s(r->idem_key, key, sizeof r->idem_key);
	r->kind = kind;
	r->currency = CURRENCY;
	r->n_legs = 2;
	r->legs[0].account_id = debit;
	r->legs[0].amount_minor = -amount;
	r->legs[1].account_id = credit;
	r->legs[1].amount_minor = amount;
	r->limit_amount = amount;
	ledger_req_hash(r);
}

/* Funds every agent account from suspense, FUND_BATCH per commit, straight
 * through the ledger (no dbq yet). */
static void
fund(struct bench *b)
{
	struct ledger_req *reqs = xcalloc(FUND_BATCH, sizeof *reqs);
	struct ledger_result *res = xcalloc(FUND_BATCH, sizeof *res);
	size_t i, n, k;
	char key[LEDGER_KEY_MAX + 1];

	for (i = 0; i < b->n_ids; i += n) {
		n = MIN(FUND_BATCH, b->n_ids - i);
		for (k = 0; k < n; k++) {
			snprintf(key, sizeof key, "bench:%s:fund:%zu", b->nonce,
			         i + k);
			fill_payment(&reqs[k], key, LEDGER_TXN_FLOAT_TOPUP,
			             b->suspense_id, b->ids[i + k], FUND_MINOR);
		}
		if (ledger_commit_batch(b->lg, reqs, n, res, util_now_ms()) !=
		    0)
			die("funding batch failed: %s", b->st->errstr);
		for (k = 0; k < n; k++) {
			if (res[k].rc != LEDGER_OK)
				die("funding %zu: %s", i + k,
				    ledger_rc_name(res[k].rc));
			expect_add(b, b->suspense_id, -FUND_MINOR);
			expect_add(b, b->ids[i + k], FUND_MINOR);
		}
	}
	free(reqs);
	free(res);
}

static void
setup(struct bench *b)
{
	char err[256];
	size_t i;

	b->st = store_open(b->o.store, err, sizeof err);
	if (b->st == NULL)
		die("store_open %s: %s", b->o.store, err);
	b->lg = ledger_new(b->st, err, sizeof err);
	if (b->lg == NULL)
		die("ledger_new: %s", err);
	b->suspense_id = create_account(b, "suspense", 0,
	                                LEDGER_ACCT_SUSPENSE, false);
	b->id_min = b->id_max = b->suspense_id;
	b->n_ids = b->o.accounts;
	if (b->n_ids > MONEY_MAX_MINOR / FUND_MINOR / 2)
		die("too many accounts to fund from one suspense account");
	b->ids = xcalloc(b->n_ids, sizeof *b->ids);
	/* Setup only: the accounts are created inside explicit transactions
	 * of 1000 (each create is one INSERT on both backends), so setting
	 * up 10k accounts takes 10 commits instead of 10,000. */
	for (i = 0; i < b->n_ids; i++) {
		enum store_rc rc;

		if (i % 1000 == 0 &&
		    (rc = b->st->ops->begin(b->st)) != STORE_OK)
			die("begin: %s: %s", store_rc_name(rc), b->st->errstr);
		b->ids[i] = create_account(b, "agent", i,
		                           LEDGER_ACCT_AGENT_FLOAT, true);
		b->id_min = MIN(b->id_min, b->ids[i]);
		b->id_max = MAX(b->id_max, b->ids[i]);
		if ((i % 1000 == 999 || i + 1 == b->n_ids) &&
		    (rc = b->st->ops->commit(b->st)) != STORE_OK)
			die("commit: %s: %s", store_rc_name(rc), b->st->errstr);
	}
	b->hot_id = create_account(b, "collection", 0,
	                           LEDGER_ACCT_MERCHANT_PAYABLE, true);
	b->id_min = MIN(b->id_min, b->hot_id);
	b->id_max = MAX(b->id_max, b->hot_id);
	if (b->id_max - b->id_min > 100000000)
		die("account ids too sparse for the balance check");
	b->expect = xcalloc((size_t)(b->id_max - b->id_min + 1),
	                    sizeof *b->expect);
	fund(b);
}

/* ------------------------------------------------------------ the loop */

static void
wake(void *arg)
{
	struct bench *b = arg;
	uint64_t one = 1;

	/* EAGAIN: the counter is saturated, the loop will wake anyway */
	if (write(b->efd, &one, sizeof one) < 0 && errno != EAGAIN)
		abort();
}

static void on_done(struct dbq_job *job);

static void
post_one(struct bench *b, struct bjob *j)
{
	char key[LEDGER_KEY_MAX + 1];
	int64_t debit, credit;
	size_t x, y;

	x = rnd_below(b, b->n_ids);
	debit = b->ids[x];
	if (b->o.mode == MODE_HOT) {
		credit = b->hot_id;
	} else {
		y = rnd_below(b, b->n_ids - 1);
		credit = b->ids[y >= x ? y + 1 : y];
	}
	snprintf(key, sizeof key, "bench:%s:%" PRIu64, b->nonce, b->seq++);
	fill_payment(&j->job.req, key, LEDGER_TXN_PAYMENT, debit, credit,
	             (int64_t)(1 + rnd_below(b, 100000)));
	j->job.call = NULL;
	j->job.done = on_done;
	j->job.arg = j;
	if (dbq_post(b->q, &j->job) != 0)
		die("dbq_post refused (queue full or stopping)");
	b->in_flight++;
}

static void
on_done(struct dbq_job *job)
{
	struct bjob *j = job->arg;
	struct bench *b = j->b;
	int64_t now = util_mono_us(), lat = now - job->posted_us;
	size_t k;

	b->in_flight--;
	b->n_done++;
	if (job->res.rc != LEDGER_OK || job->res.is_replay ||
	    job->res.txn_id <= 0) {
		fprintf(stderr,
		        "ledger_bench: FAIL: payment %s: rc=%s replay=%d "
		        "txn_id=%" PRId64 "\n",
		        job->req.idem_key, ledger_rc_name(job->res.rc),
		        job->res.is_replay, job->res.txn_id);
		b->failed = true;
		b->posting = false;
		return;
	}
	b->n_ok++;
	for (k = 0; k < job->req.n_legs; k++)
		expect_add(b, job->req.legs[k].account_id,
		           job->req.legs[k].amount_minor);
	if (b->n_txn == b->cap_txn) {
		b->cap_txn = b->cap_txn ? 2 * b->cap_txn : 1 << 20;
		b->txn_ids = xreallocarray(b->txn_ids, b->cap_txn,
		                           sizeof *b->txn_ids);
	}
	b->txn_ids[b->n_txn++] = job->res.txn_id;

	if (b->in_window && now <= b->t_end) {
		b->win_done++;
		if (b->n_lat == b->cap_lat) {
			b->cap_lat = b->cap_lat ? 2 * b->cap_lat : 1 << 20;
			b->lat = xreallocarray(b->lat, b->cap_lat,
			                       sizeof *b->lat);
		}
		b->lat[b->n_lat++] =
			(uint32_t)(lat < 0 ? 0 : lat > UINT32_MAX ? UINT32_MAX
			                                           : lat);
	}
	if (b->posting)
		post_one(b, j);
}

static int
u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const struct bench *b, double p)
{
	size_t i;

	if (b->n_lat == 0)
		return 0;
	i = (size_t)(p * (double)(b->n_lat - 1) + 0.5);
	return (double)b->lat[i] / 1000.0;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct vctx {
	size_t n;
};

static void
on_violation(void *arg, const char *what, const char *detail)
{
	struct vctx *v = arg;

	if (v->n++ < 20)
		fprintf(stderr, "ledger_bench: VIOLATION %s: %s\n", what,
		        detail);
}

/* Correctness at the end: results, invariants, balances. */
static void
check(struct bench *b)
{
	struct vctx v = {0};
	size_t n_viol = 0, i, bad = 0;
	enum store_rc rc;

	if (b->failed)
		die("FAIL: a payment did not commit with LEDGER_OK");
	if (b->n_ok != b->seq || b->n_done != b->seq)
		die("FAIL: posted %" PRIu64 ", results %" PRIu64 ", ok %" PRIu64,
		    b->seq, b->n_done, b->n_ok);
	qsort(b->txn_ids, b->n_txn, sizeof *b->txn_ids, i64_cmp);
	for (i = 1; i < b->n_txn; i++)
		if (b->txn_ids[i] == b->txn_ids[i - 1])
			die("FAIL: txn id %" PRId64 " acknowledged twice",
			    b->txn_ids[i]);
	rc = b->st->ops->verify(b->st, on_violation, &v, &n_viol);
	if (rc != STORE_OK)
		die("FAIL: verify: %s: %s", store_rc_name(rc), b->st->errstr);
	if (n_viol != 0)
		die("FAIL: verify found %zu violations", n_viol);
	for (i = 0; i <= (size_t)(b->id_max - b->id_min); i++) {
		struct ledger_account a;
		int64_t id = b->id_min + (int64_t)i;

		rc = b->st->ops->account_by_id(b->st, id, &a);
		if (rc == STORE_NOT_FOUND && b->expect[i] == 0)
			continue; /* not ours (a shared PostgreSQL) */
		if (rc != STORE_OK)
			die("FAIL: account %" PRId64 ": %s", id,
			    store_rc_name(rc));
		if (strncmp(a.code, "bench:", 6) != 0 ||
		    strstr(a.code, b->nonce) == NULL)
			continue; /* another run's account */
		if (a.balance_minor != b->expect[i] && bad++ < 10)
			fprintf(stderr,
			        "ledger_bench: FAIL: %s balance %" PRId64
			        " expected %" PRId64 "\n",
			        a.code, a.balance_minor, b->expect[i]);
	}
	if (bad != 0)
		die("FAIL: %zu balances differ from the acknowledged payments",
		    bad);
}

static const char *
mode_name(enum mode m)
{
	return m == MODE_HOT ? "hot" : m == MODE_UNIFORM ? "uniform" : "per_commit";
}

static void
run(struct bench *b)
{
	struct dbq_params p;
	struct bjob *jobs;
	struct pollfd pfd;
	struct rusage ru;
	int64_t c0 = 0, c1, r0 = 0, r1, t_print = 0, t0;
	double cpu0 = 0, cpu1, pps, avg, cps, cpu_us;
	size_t i;

	p.batch_max = b->o.mode == MODE_PER_COMMIT ? 1 : b->o.batch_max;
	p.queue_max = b->o.outstanding + 16;
	p.wait_us = 0; /* a saturating closed loop: batches are never small */
	b->q = dbq_new(b->st, b->lg, &p, wake, b);
	if (b->q == NULL)
		die("dbq_new failed");
	jobs = xcalloc(b->o.outstanding, sizeof *jobs);
	b->posting = true;
	b->t_start = util_mono_us();
	b->t_warm = b->t_start + (int64_t)(b->o.warmup * 1e6);
	b->t_end = b->t_warm + (int64_t)(b->o.seconds * 1e6);
	for (i = 0; i < b->o.outstanding; i++) {
		jobs[i].b = b;
		post_one(b, &jobs[i]);
	}
	pfd.fd = b->efd;
	pfd.events = POLLIN;
	while (b->in_flight > 0) {
		uint64_t cnt;
		int64_t now;

		if (poll(&pfd, 1, 100) < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		if ((pfd.revents & POLLIN) &&
		    read(b->efd, &cnt, sizeof cnt) < 0 && errno != EAGAIN)
			die("eventfd read: %s", strerror(errno));
		dbq_complete(b->q);
		now = util_mono_us();
		if (!b->in_window && b->posting && now >= b->t_warm) {
			b->in_window = true;
			t_print = now;
			c0 = metrics_get(METRIC_COMMITS);
			r0 = metrics_get(METRIC_LEDGER_REQUESTS);
			cpu0 = cpu_s();
		}
		if (b->posting && now >= b->t_end)
			b->posting = false; /* drain what is in flight */
		if (b->posting && b->in_window && now - t_print >= 1000000) {
			t_print = now;
			fprintf(stderr, "  %.0f s: %" PRIu64 " payments\n",
			        (double)(now - b->t_warm) / 1e6, b->win_done);
		}
	}
	/* the drain's commits and CPU count against the payments they
	 * carried (reqs), so the ratios stay consistent */
	c1 = metrics_get(METRIC_COMMITS);
	r1 = metrics_get(METRIC_LEDGER_REQUESTS);
	cpu1 = cpu_s();
	dbq_stop(b->q);
	dbq_complete(b->q);
	dbq_free(b->q);
	b->q = NULL;
	free(jobs);

	pps = (double)b->win_done / b->o.seconds;
	avg = c1 > c0 ? (double)(r1 - r0) / (double)(c1 - c0) : 0;
	cps = avg > 0 ? pps / avg : 0;
	cpu_us = r1 > r0 ? (cpu1 - cpu0) * 1e6 / (double)(r1 - r0) : 0;
	qsort(b->lat, b->n_lat, sizeof *b->lat, u32_cmp);
	getrusage(RUSAGE_SELF, &ru);
	t0 = util_mono_us();
	check(b);
	fprintf(stderr, "check: results, verify() and balances in %.1f s\n",
	        (double)(util_mono_us() - t0) / 1e6);
	fprintf(stderr,
	        "%s %s: %.0f payments/s, %.0f commits/s, avg batch %.1f, "
	        "latency ms p1 %.3f p50 %.3f p99 %.3f p99.9 %.3f max %.3f, "
	        "%.2f cpu-us/payment (both threads), rss %ld KB; verify ok "
	        "(%" PRIu64 " payments)\n",
	        b->st->ops->name, mode_name(b->o.mode), pps, cps, avg,
	        pct_ms(b, 0.01), pct_ms(b, 0.5), pct_ms(b, 0.99),
	        pct_ms(b, 0.999), pct_ms(b, 1.0), cpu_us, ru.ru_maxrss,
	        b->n_ok);
	printf("result store=%s mode=%s payments_per_s=%.0f "
	       "commits_per_s=%.0f avg_batch=%.1f p1_ms=%.3f p50_ms=%.3f "
	       "p99_ms=%.3f p999_ms=%.3f max_ms=%.3f cpu_us_per_payment=%.2f "
	       "rss_kb=%ld payments=%" PRIu64 " window_payments=%" PRIu64
	       " outstanding=%zu batch_max=%zu verify=ok\n",
	       b->st->ops->name, mode_name(b->o.mode), pps, cps, avg,
	       pct_ms(b, 0.01), pct_ms(b, 0.5), pct_ms(b, 0.99),
	       pct_ms(b, 0.999), pct_ms(b, 1.0), cpu_us, ru.ru_maxrss, b->n_ok,
	       b->win_done, b->o.outstanding, p.batch_max);
	fflush(stdout);
}

/* ----------------------------------------------------------------- main */

static void
usage(void)
{
	fprintf(stderr,
	        "usage: ledger_bench --store URL --mode uniform|hot|per_commit"
	        " [--accounts N] [--seconds S] [--warmup S]"
	        " [--outstanding N] [--batch-max B] [--seed N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"store", required_argument, NULL, 's'},
		{"mode", required_argument, NULL, 'm'},
		{"accounts", required_argument, NULL, 'a'},
		{"seconds", required_argument, NULL, 't'},
		{"warmup", required_argument, NULL, 'w'},
		{"outstanding", required_argument, NULL, 'o'},
		{"batch-max", required_argument, NULL, 'b'},
		{"seed", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	static struct bench bench;
	struct bench *b = &bench;
	char err[128];
	int64_t t0;
	int c;

	b->o.accounts = 10000;
	b->o.seconds = 10;
	b->o.warmup = 2;
	b->o.outstanding = 4000;
	b->o.batch_max = 2000;
	b->o.seed = 1;
	b->o.mode = MODE_UNIFORM;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's':
			b->o.store = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "uniform") == 0)
				b->o.mode = MODE_UNIFORM;
			else if (strcmp(optarg, "hot") == 0)
				b->o.mode = MODE_HOT;
			else if (strcmp(optarg, "per_commit") == 0)
				b->o.mode = MODE_PER_COMMIT;
			else
				usage();
			break;
		case 'a':
			b->o.accounts = strtoul(optarg, NULL, 10);
			break;
		case 't':
			b->o.seconds = strtod(optarg, NULL);
			break;
		case 'w':
			b->o.warmup = strtod(optarg, NULL);
			break;
		case 'o':
			b->o.outstanding = strtoul(optarg, NULL, 10);
			break;
		case 'b':
			b->o.batch_max = strtoul(optarg, NULL, 10);
			break;
		case 'r':
			b->o.seed = strtoull(optarg, NULL, 10);
			break;
		default:
			usage();
		}
	}
	if (b->o.store == NULL || b->o.accounts < 2 || b->o.seconds <= 0 ||
	    b->o.warmup < 0 || b->o.outstanding == 0 || b->o.batch_max == 0)
		usage();
	if (log_set_levels("warn", err, sizeof err) != 0)
		die("log levels: %s", err);
	b->rng = b->o.seed * 0x9E3779B97F4A7C15ULL + 1;
	snprintf(b->nonce, sizeof b->nonce, "%lx.%ld", (long)getpid(),
	         (long)time(NULL));
	if ((b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		die("eventfd: %s", strerror(errno));

	t0 = util_mono_us();
	setup(b);
	fprintf(stderr, "setup: %zu accounts created and funded in %.1f s\n",
	        b->o.accounts, (double)(util_mono_us() - t0) / 1e6);
	run(b);
	ledger_free(b->lg);
	store_close(b->st);
	close(b->efd);
	free(b->ids);
	free(b->expect);
	free(b->lat);
	free(b->txn_ids);
	return 0;
}
