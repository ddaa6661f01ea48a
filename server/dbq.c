/*
 * dbq.c - the storage writer thread and its bounded queue (dbq.h).
 */
#include "dbq.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

struct jobq {
	struct dbq_job *head, *tail;
};

struct dbq {
	struct store *st;
	struct ledger *lg;
	struct dbq_params p;
	void (*wake)(void *);
	void *wake_arg;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct jobq todo; /* posted, not yet taken */
	struct jobq done; /* finished, not yet completed */
	size_t depth;     /* todo + in flight + done */
	bool stopping;
	pthread_t thread;

	/* worker-owned */
	size_t last_n;          /* ledger requests in the previous batch */
	int64_t last_commit_us; /* how long the previous commit took */
	struct ledger_req *reqs;
	struct ledger_result *res;
	struct dbq_job **batch;
};

static void
jobq_push(struct jobq *q, struct dbq_job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static void
jobq_append(struct jobq *q, struct jobq *more)
{
	if (more->head == NULL)
		return;
	if (q->tail != NULL)
		q->tail->next = more->head;
	else
		q->head = more->head;
	q->tail = more->tail;
	more->head = more->tail = NULL;
}

/* Commits the ledger jobs batch[0..n) as one group. */
static void
run_ledger(struct dbq *q, size_t n)
{
	int64_t t0 = util_mono_us(), t1;
	size_t i;
	int rc;

	for (i = 0; i < n; i++)
		q->reqs[i] = q->batch[i]->req;
	rc = ledger_commit_batch(q->lg, q->reqs, n, q->res, util_now_ms());
	t1 = util_mono_us();
	q->last_commit_us = t1 - t0;
	for (i = 0; i < n; i++)
		q->batch[i]->res = q->res[i];
	metrics_observe_commit(n, t1 - t0, rc == 0);
	if (rc != 0)
		log_msg(LOG_STORE, LOG_LEVEL_ERROR,
		        "event=batch_failed n=%zu store=%s reason=\"%s\"", n,
		        q->st->ops->name, q->st->errstr);
	else
		log_msg(LOG_STORE, LOG_LEVEL_DEBUG,
		        "event=batch_committed n=%zu us=%lld", n,
		        (long long)(t1 - t0));
}

/* Moves queued jobs into the batch (ledger requests, up to batch_max) and
 * calls; *n is the batch's size so far.  false when a ledger job had to
 * stay queued (the batch is full). */
static bool
take(struct dbq *q, size_t *n, struct jobq *calls)
{
	struct dbq_job *j;

	while ((j = q->todo.head) != NULL) {
		if (j->call == NULL && *n == q->p.batch_max)
			return false;
		/* a group is not split across commits unless it is bigger
		 * than a whole batch */
		if (j->call == NULL && j->n_group > 1 && *n > 0 &&
		    *n + j->n_group > q->p.batch_max)
			return false;
		q->todo.head = j->next;
		if (q->todo.head == NULL)
			q->todo.tail = NULL;
		if (j->call == NULL)
			q->batch[(*n)++] = j;
		else
			jobq_push(calls, j);
	}
	return true;
}

/* The bounded wait of dbq_params.wait_us, mutex held: keeps taking what
 * arrives until DBQ_WAIT_BELOW requests, the deadline or stop. */
static void
wait_more(struct dbq *q, size_t *n, struct jobq *calls)
{
	int64_t us = q->p.wait_us;
	struct timespec ts;

	if (us <= 0 || *n == 0 || *n >= DBQ_WAIT_BELOW || q->last_n <= 1)
		return;
	if (q->last_commit_us < us)
		us = q->last_commit_us;
	if (us <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(us / 1000000);
	ts.tv_nsec += (long)(us % 1000000) * 1000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	while (*n < DBQ_WAIT_BELOW && !q->stopping) {
		if (pthread_cond_timedwait(&q->cv, &q->mu, &ts) == ETIMEDOUT) {
			(void)take(q, n, calls);
			break;
		}
		if (!take(q, n, calls))
			break;
	}
}

static void *
worker(void *arg)
{
	struct dbq *q = arg;

	for (;;) {
		struct jobq calls = {NULL, NULL}, finished = {NULL, NULL};
		struct dbq_job *j;
		size_t n = 0, i;

		pthread_mutex_lock(&q->mu);
		while (q->todo.head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->todo.head == NULL && q->stopping) {
			pthread_mutex_unlock(&q->mu);
			break;
		}
		/* take every ledger job up to batch_max, and every call */
		if (take(q, &n, &calls))
			wait_more(q, &n, &calls);
		if (n > 0)
			q->last_n = n;
		metrics_set_gauge(METRIC_DBQ_DEPTH, (int64_t)q->depth);
		pthread_mutex_unlock(&q->mu);

		if (n > 0)
			run_ledger(q, n);
		/* calls run after the batch, so they see its effects */
		for (j = calls.head; j != NULL; j = j->next)
			j->call_rc = j->call(q->st, j);

		for (i = 0; i < n; i++)
			jobq_push(&finished, q->batch[i]);
		jobq_append(&finished, &calls);
		pthread_mutex_lock(&q->mu);
		jobq_append(&q->done, &finished);
		pthread_mutex_unlock(&q->mu);
		q->wake(q->wake_arg);
	}
	return NULL;
}

struct dbq *
dbq_new(struct store *st, struct ledger *lg, const struct dbq_params *p,
        void (*wake)(void *), void *wake_arg)
{
	struct dbq *q = xcalloc(1, sizeof *q);

	q->st = st;
	q->lg = lg;
	q->p = *p;
	if (q->p.batch_max == 0)
		q->p.batch_max = 1;
	q->wake = wake;
	q->wake_arg = wake_arg;
	q->reqs = xcalloc(q->p.batch_max, sizeof *q->reqs);
	q->res = xcalloc(q->p.batch_max, sizeof *q->res);
	q->batch = xcalloc(q->p.batch_max, sizeof *q->batch);
	pthread_mutex_init(&q->mu, NULL);
	{
		/* monotonic deadlines for the bounded wait */
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&q->cv, &ca);
		pthread_condattr_destroy(&ca);
	}
	if (pthread_create(&q->thread, NULL, worker, q) != 0) {
		q->stopping = true; /* nothing to join */
		dbq_free(q);
		return NULL;
	}
	return q;
}

int
dbq_post(struct dbq *q, struct dbq_job *job)
{
	pthread_mutex_lock(&q->mu);
	if (q->stopping || q->depth >= q->p.queue_max) {
		pthread_mutex_unlock(&q->mu);
		metrics_inc(METRIC_DBQ_BUSY);
		return -1;
	}
	job->posted_us = util_mono_us();
	job->n_group = 0;
	jobq_push(&q->todo, job);
	q->depth++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

int
dbq_post_group(struct dbq *q, struct dbq_job *const *jobs, size_t n)
{
	int64_t now = util_mono_us();
	size_t i;

	if (n == 0)
		return 0;
	pthread_mutex_lock(&q->mu);
	if (q->stopping || q->depth + n > q->p.queue_max) {
		pthread_mutex_unlock(&q->mu);
		metrics_inc(METRIC_DBQ_BUSY);
		return -1;
	}
	for (i = 0; i < n; i++) {
		jobs[i]->posted_us = now;
		jobs[i]->n_group = i == 0 ? n : 0;
		jobq_push(&q->todo, jobs[i]);
	}
	q->depth += n;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void
dbq_complete(struct dbq *q)
{
	struct dbq_job *j, *next;
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	j = q->done.head;
	q->done.head = q->done.tail = NULL;
	for (next = j; next != NULL; next = next->next)
		n++;
	q->depth -= n;
	pthread_mutex_unlock(&q->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j); /* may free j */
	}
}

size_t
dbq_depth(struct dbq *q)
{
	size_t d;

	pthread_mutex_lock(&q->mu);
	d = q->depth;
	pthread_mutex_unlock(&q->mu);
	return d;
}

void
dbq_stop(struct dbq *q)
{
	bool was;

	pthread_mutex_lock(&q->mu);
	was = q->stopping;
	q->stopping = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (!was)
		pthread_join(q->thread, NULL);
}

void
dbq_free(struct dbq *q)
{
	if (q == NULL)
		return;
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->reqs);
	free(q->res);
	free(q->batch);
	free(q);
}
