/*
 * readq.c - reader threads for read-only storage calls (readq.h).
 */
#include "readq.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "util.h"

#define READQ_BATCH 64 /* jobs a reader takes at once: one wake per batch */

struct reader {
	struct readq *q;
	struct store *st; /* this thread's own connection */
	pthread_t thread;
	bool is_started;
};

struct readq {
	void (*wake)(void *);
	void *wake_arg;
	size_t queue_max;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct dbq_job *todo_head, *todo_tail; /* posted, not yet taken */
	struct dbq_job *done_head, *done_tail; /* finished */
	size_t depth;                          /* todo + running + done */
	bool stopping;
	size_t n_readers;
	struct reader *readers;
};

static void *
reader_main(void *arg)
{
	struct reader *r = arg;
	struct readq *q = r->q;

	for (;;) {
		struct dbq_job *head = NULL, *tail = NULL, *j;
		size_t n = 0;

		pthread_mutex_lock(&q->mu);
		while (q->todo_head == NULL && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->todo_head == NULL) { /* stopping and nothing left */
			pthread_mutex_unlock(&q->mu);
			break;
		}
		/* a few at a time, so the other readers get work too */
		head = q->todo_head;
		for (j = head; j != NULL && n < READQ_BATCH; j = j->next) {
			tail = j;
			n++;
		}
		q->todo_head = tail->next;
		if (q->todo_head == NULL)
			q->todo_tail = NULL;
		else
			pthread_cond_signal(&q->cv);
		tail->next = NULL;
		pthread_mutex_unlock(&q->mu);

		for (j = head; j != NULL; j = j->next)
			j->call_rc = j->call(r->st, j);

		pthread_mutex_lock(&q->mu);
		if (q->done_tail != NULL)
			q->done_tail->next = head;
		else
			q->done_head = head;
		q->done_tail = tail;
		pthread_mutex_unlock(&q->mu);
		q->wake(q->wake_arg);
	}
	return NULL;
}

struct readq *
readq_new(const char *store_url, size_t n_threads, size_t queue_max,
          void (*wake)(void *), void *wake_arg, char *err, size_t errlen)
{
	struct readq *q = xcalloc(1, sizeof *q);
	size_t i;

	q->wake = wake;
	q->wake_arg = wake_arg;
	q->queue_max = queue_max > 0 ? queue_max : 1;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	q->readers = xcalloc(n_threads > 0 ? n_threads : 1, sizeof *q->readers);
	q->n_readers = n_threads > 0 ? n_threads : 1;
	for (i = 0; i < q->n_readers; i++) {
		struct reader *r = &q->readers[i];

		r->q = q;
		if ((r->st = store_open(store_url, err, errlen)) == NULL)
			goto fail;
	}
	for (i = 0; i < q->n_readers; i++) {
		struct reader *r = &q->readers[i];

		if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
			snprintf(err, errlen, "cannot start a reader thread");
			goto fail;
		}
		r->is_started = true;
	}
	return q;
fail:
	readq_stop(q);
	readq_free(q);
	return NULL;
}

int
readq_post(struct readq *q, struct dbq_job *job)
{
	pthread_mutex_lock(&q->mu);
	if (q->stopping || q->depth >= q->queue_max) {
		pthread_mutex_unlock(&q->mu);
		return -1;
	}
	job->posted_us = util_mono_us();
	job->n_group = 0;
	job->next = NULL;
	if (q->todo_tail != NULL)
		q->todo_tail->next = job;
	else
		q->todo_head = job;
	q->todo_tail = job;
	q->depth++;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return 0;
}

void
readq_complete(struct readq *q)
{
	struct dbq_job *j, *next;
	size_t n = 0;

	pthread_mutex_lock(&q->mu);
	j = q->done_head;
	q->done_head = q->done_tail = NULL;
	for (next = j; next != NULL; next = next->next)
		n++;
	q->depth -= n;
	pthread_mutex_unlock(&q->mu);
	for (; j != NULL; j = next) {
		next = j->next;
		j->done(j); /* may free j, or post it again */
	}
}

void
readq_stop(struct readq *q)
{
	size_t i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	for (i = 0; i < q->n_readers; i++) {
		if (q->readers[i].is_started) {
			pthread_join(q->readers[i].thread, NULL);
			q->readers[i].is_started = false;
		}
	}
}

void
readq_free(struct readq *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < q->n_readers; i++)
		store_close(q->readers[i].st);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	free(q->readers);
	free(q);
}
