/*
 * metrics.h - process-wide counters, gauges and histograms rendered in the
 * Prometheus text format for /metrics (docs/operations.md §Metrics).
 * Lock-free (relaxed atomics): safe from the loop and the worker threads.
 */
#ifndef SOKO_METRICS_H
#define SOKO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS(X)                                                           \
	X(HTTP_REQUESTS, counter, "soko_http_requests_total",                \
	  "HTTP requests answered")                                          \
	X(HTTP_2XX, counter, "soko_http_responses_2xx_total",                \
	  "HTTP responses with a 2xx status")                                \
	X(HTTP_4XX, counter, "soko_http_responses_4xx_total",                \
	  "HTTP responses with a 4xx status")                                \
	X(HTTP_5XX, counter, "soko_http_responses_5xx_total",                \
	  "HTTP responses with a 5xx status")                                \
	X(HTTP_CONNS, gauge, "soko_http_connections",                        \
	  "open HTTP connections")                                           \
	X(COMMITS, counter, "soko_store_commits_total",                      \
	  "ledger batches committed")                                        \
	X(COMMIT_FAILURES, counter, "soko_store_commit_failures_total",      \
	  "ledger batches that could not commit (requests got retry_later)") \
	X(LEDGER_REQUESTS, counter, "soko_ledger_requests_total",            \
	  "ledger requests decided (committed batches)")                     \
	X(LEDGER_REPLAYS, counter, "soko_ledger_replays_total",              \
	  "ledger requests answered from an idempotency record")             \
	X(DBQ_DEPTH, gauge, "soko_dbq_depth",                                \
	  "storage jobs queued or in flight")                                \
	X(DBQ_BUSY, counter, "soko_dbq_busy_total",                          \
	  "storage jobs refused because the queue was full")                 \
	X(PROV_SETTLED, counter, "soko_provider_payments_settled_total",     \
	  "provider payments that succeeded and were posted")                \
	X(PROV_ALERTS, counter, "soko_provider_alerts_total",                \
	  "provider outcomes needing a human: unknown, contradiction, "      \
	  "amount mismatch, posting refused")                                \
	X(PROV_CALLBACKS, counter, "soko_provider_callbacks_total",          \
	  "authenticated provider callbacks recorded")                       \
	X(PROV_CALLBACKS_REJECTED, counter,                                  \
	  "soko_provider_callbacks_rejected_total",                          \
	  "provider callbacks refused: wrong token or signature, malformed") \
	X(PROV_RESOLVED, counter, "soko_provider_resolved_total",           \
	  "unknown provider payments settled by hand (reconciliation)")      \
	X(PROV_REQUERIES, counter, "soko_provider_requeries_total",         \
	  "unknown provider payments reopened for a status query")

enum metric_id {
#define X(id, type, name, help) METRIC_##id,
	METRICS(X)
#undef X
	METRIC_COUNT
};

void metrics_inc(enum metric_id id);
void metrics_add(enum metric_id id, int64_t v);
void metrics_set_gauge(enum metric_id id, int64_t v);
int64_t metrics_get(enum metric_id id);

/* One ledger batch: n requests, commit wall time us, committed or not. */
void metrics_observe_commit(size_t n, int64_t us, bool ok);
/* Counts one decided ledger outcome (by its rc). */
void metrics_ledger_outcome(int rc, bool is_replay);

/* Renders every metric, then what each hook appends; caller frees.  *len
 * gets the length. */
char *metrics_render(size_t *len);

/* Hooks: modules with labelled series of their own (net_curl: calls by
 * endpoint and outcome) append them to the rendered text.  A hook runs
 * inside metrics_render(), on its caller's thread (sokod: the loop
 * thread), so it may read state owned by that thread only.  At most
 * METRICS_MAX_HOOKS; metrics_hook_add() returns 0, or -1 when the table is
 * full.  Removing a hook that is not there does nothing.  A hook must not
 * add or remove hooks (the table's lock is held while hooks run). */
#define METRICS_MAX_HOOKS 8
struct metrics_out;
typedef void (*metrics_hook_fn)(struct metrics_out *out, void *arg);
int metrics_hook_add(metrics_hook_fn fn, void *arg);
void metrics_hook_remove(metrics_hook_fn fn, void *arg);
/* Appends formatted text to the output being rendered (for hooks). */
void metrics_printf(struct metrics_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A latency histogram owned by one thread (no atomics): microseconds
 * observed, rendered in seconds with the buckets of
 * soko_store_commit_seconds (100 us .. 1 s, then +Inf).  For hooks.
 */
#define METRICS_LAT_BUCKETS 12
struct metrics_lat {
	int64_t bucket[METRICS_LAT_BUCKETS + 1];
	int64_t sum_us, count;
};
void metrics_lat_observe(struct metrics_lat *h, int64_t us);
void metrics_lat_render(struct metrics_out *out, const char *name,
                        const char *help, const struct metrics_lat *h);

#endif
