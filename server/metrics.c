/*
 * metrics.c - Prometheus metrics (metrics.h).
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "util.h"

static _Atomic int64_t values[METRIC_COUNT];

static const struct {
	const char *type, *name, *help;
} info[METRIC_COUNT] = {
#define X(id, type, name, help) {#type, name, help},
	METRICS(X)
#undef X
};

/* Histogram bucket upper bounds. */
static const int64_t lat_le_us[] = {100,   250,   500,    1000,   2500,
                                    5000,  10000, 25000,  50000,  100000,
                                    250000, 1000000};
static const int64_t size_le[] = {1,   2,   5,    10,   20,   50,
                                  100, 200, 500, 1000, 2000, 5000};
#define N_LAT  ARRAY_LEN(lat_le_us)
_Static_assert(N_LAT == METRICS_LAT_BUCKETS, "metrics_lat's buckets");
#define N_SIZE ARRAY_LEN(size_le)

static _Atomic int64_t lat_buckets[N_LAT + 1], lat_sum_us, lat_count;
static _Atomic int64_t size_buckets[N_SIZE + 1], size_sum, size_count;
static _Atomic int64_t outcomes[LEDGER_RC_COUNT];

void
metrics_add(enum metric_id id, int64_t v)
{
	atomic_fetch_add_explicit(&values[id], v, memory_order_relaxed);
}

void
metrics_inc(enum metric_id id)
{
	metrics_add(id, 1);
}

void
metrics_set_gauge(enum metric_id id, int64_t v)
{
	atomic_store_explicit(&values[id], v, memory_order_relaxed);
}

int64_t
metrics_get(enum metric_id id)
{
	return atomic_load_explicit(&values[id], memory_order_relaxed);
}

static void
observe(_Atomic int64_t *buckets, const int64_t *le, size_t n,
        _Atomic int64_t *sum, _Atomic int64_t *count, int64_t v)
{
	size_t i;

	for (i = 0; i < n && v > le[i]; i++)
		;
	atomic_fetch_add_explicit(&buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(sum, v, memory_order_relaxed);
	atomic_fetch_add_explicit(count, 1, memory_order_relaxed);
}

void
metrics_observe_commit(size_t n, int64_t us, bool ok)
{
	metrics_inc(ok ? METRIC_COMMITS : METRIC_COMMIT_FAILURES);
	if (!ok)
		return;
	metrics_add(METRIC_LEDGER_REQUESTS, (int64_t)n);
	observe(lat_buckets, lat_le_us, N_LAT, &lat_sum_us, &lat_count, us);
	observe(size_buckets, size_le, N_SIZE, &size_sum, &size_count,
	        (int64_t)n);
}

void
metrics_ledger_outcome(int rc, bool is_replay)
{
	if (rc >= 0 && rc < LEDGER_RC_COUNT)
		atomic_fetch_add_explicit(&outcomes[rc], 1,
		                          memory_order_relaxed);
	if (is_replay)
		metrics_inc(METRIC_LEDGER_REPLAYS);
}

struct metrics_out {
	char *p;
	size_t len, cap;
};

static struct {
	metrics_hook_fn fn;
	void *arg;
} hooks[METRICS_MAX_HOOKS];
static pthread_mutex_t hooks_mu = PTHREAD_MUTEX_INITIALIZER;

static void
vbprintf(struct metrics_out *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	for (;;) {
		va_copy(cp, ap);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, cp);
		va_end(cp);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
}

static void
bprintf(struct metrics_out *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vbprintf(b, fmt, ap);
	va_end(ap);
}

void
metrics_printf(struct metrics_out *out, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vbprintf(out, fmt, ap);
	va_end(ap);
}

int
metrics_hook_add(metrics_hook_fn fn, void *arg)
{
	int rc = -1;
	size_t i;

	pthread_mutex_lock(&hooks_mu);
	for (i = 0; i < METRICS_MAX_HOOKS; i++)
		if (hooks[i].fn == NULL) {
			hooks[i].fn = fn;
			hooks[i].arg = arg;
			rc = 0;
			break;
		}
	pthread_mutex_unlock(&hooks_mu);
	return rc;
}

void
metrics_hook_remove(metrics_hook_fn fn, void *arg)
{
	size_t i;

	pthread_mutex_lock(&hooks_mu);
	for (i = 0; i < METRICS_MAX_HOOKS; i++)
		if (hooks[i].fn == fn && hooks[i].arg == arg) {
			hooks[i].fn = NULL;
			hooks[i].arg = NULL;
		}
	pthread_mutex_unlock(&hooks_mu);
}

static void
render_hist(struct metrics_out *b, const char *name, const char *help,
            _Atomic int64_t *buckets, const int64_t *le, size_t n,
            _Atomic int64_t *sum, _Atomic int64_t *count, int scale_div)
{
	int64_t acc = 0;
	size_t i;

	bprintf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i <= n; i++) {
		acc += atomic_load_explicit(&buckets[i], memory_order_relaxed);
		if (i < n) {
			if (scale_div > 1)
				bprintf(b, "%s_bucket{le=\"%lld.%06lld\"} %lld\n",
				        name, (long long)(le[i] / scale_div),
				        (long long)(le[i] % scale_div),
				        (long long)acc);
			else
				bprintf(b, "%s_bucket{le=\"%lld\"} %lld\n", name,
				        (long long)le[i], (long long)acc);
		} else {
			bprintf(b, "%s_bucket{le=\"+Inf\"} %lld\n", name,
			        (long long)acc);
		}
	}
	if (scale_div > 1) {
		int64_t s = atomic_load(sum);

		bprintf(b, "%s_sum %lld.%06lld\n", name,
		        (long long)(s / scale_div),
		        (long long)(s % scale_div));
	} else {
		bprintf(b, "%s_sum %lld\n", name, (long long)atomic_load(sum));
	}
	bprintf(b, "%s_count %lld\n", name, (long long)atomic_load(count));
}

char *
metrics_render(size_t *len)
{
	struct metrics_out b = {xmalloc(4096), 0, 4096};
	int i;

	for (i = 0; i < METRIC_COUNT; i++)
		bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n",
		        info[i].name, info[i].help, info[i].name, info[i].type,
		        info[i].name, (long long)metrics_get((enum metric_id)i));
	bprintf(&b,
	        "# HELP soko_ledger_outcomes_total ledger requests by "
	        "outcome\n# TYPE soko_ledger_outcomes_total counter\n");
	for (i = 0; i < LEDGER_RC_COUNT; i++)
		bprintf(&b, "soko_ledger_outcomes_total{outcome=\"%s\"} %lld\n",
		        ledger_rc_name((enum ledger_rc)i),
		        (long long)atomic_load(&outcomes[i]));
	render_hist(&b, "soko_store_commit_seconds",
	            "wall time of one ledger group commit", lat_buckets,
	            lat_le_us, N_LAT, &lat_sum_us, &lat_count, 1000000);
	render_hist(&b, "soko_store_commit_batch_size",
	            "ledger requests per group commit", size_buckets, size_le,
	            N_SIZE, &size_sum, &size_count, 1);
	/* held while hooks run, so a hook is never removed (and its owner
	 * freed) in the middle of its own rendering */
	pthread_mutex_lock(&hooks_mu);
	for (i = 0; i < METRICS_MAX_HOOKS; i++)
		if (hooks[i].fn != NULL)
			hooks[i].fn(&b, hooks[i].arg);
	pthread_mutex_unlock(&hooks_mu);
	*len = b.len;
	return b.p;
}

void
metrics_lat_observe(struct metrics_lat *h, int64_t us)
{
	size_t i;

	for (i = 0; i < N_LAT && us > lat_le_us[i]; i++)
		;
	h->bucket[i]++;
	h->sum_us += us;
	h->count++;
}

void
metrics_lat_render(struct metrics_out *out, const char *name,
                   const char *help, const struct metrics_lat *h)
{
	int64_t acc = 0;
	size_t i;

	bprintf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i <= N_LAT; i++) {
		acc += h->bucket[i];
		if (i < N_LAT)
			bprintf(out, "%s_bucket{le=\"%lld.%06lld\"} %lld\n", name,
			        (long long)(lat_le_us[i] / 1000000),
			        (long long)(lat_le_us[i] % 1000000),
			        (long long)acc);
		else
			bprintf(out, "%s_bucket{le=\"+Inf\"} %lld\n", name,
			        (long long)acc);
	}
	bprintf(out, "%s_sum %lld.%06lld\n%s_count %lld\n", name,
	        (long long)(h->sum_us / 1000000),
	        (long long)(h->sum_us % 1000000), name, (long long)h->count);
}
