/*
 * dbq.h - the storage writer: a bounded job queue served by one worker
 * thread that group-commits (docs/architecture.md §Group commit).
 *
 * The event loop posts jobs and never blocks on storage.  The worker takes
 * everything queued (up to batch_max ledger jobs), decides and commits them
 * in one transaction (ledger_commit_batch), then runs queued read/admin
 * calls, and only then hands the finished jobs back: an acknowledgement
 * can never leave before the commit that holds it.  The worker wakes the
 * loop through the wake function; the loop then calls dbq_complete(),
 * which runs each job's done callback on the loop thread.
 *
 * No libevent here: the wake function is the loop's business (net_*.c).
 */
#ifndef SOKO_DBQ_H
#define SOKO_DBQ_H

#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "store.h"

struct dbq;
struct dbq_job;

/* Runs on the loop thread; owns job from then on. */
typedef void (*dbq_done_fn)(struct dbq_job *job);
/* Runs on the worker thread with the store (a read or admin call). */
typedef enum store_rc (*dbq_call_fn)(struct store *st, struct dbq_job *job);

struct dbq_job {
	struct dbq_job *next; /* queue link: dbq's while queued */
	dbq_call_fn call;     /* NULL: a ledger request (req -> res) */
	struct ledger_req req;
	struct ledger_result res;
	enum store_rc call_rc;
	dbq_done_fn done;
	void *arg;         /* the poster's context */
	int64_t posted_us; /* monotonic, set by dbq_post */
	size_t n_group;    /* set by dbq_post_group on the group's first
	                      job: jobs in the group; else 0 */
};

struct dbq_params {
	size_t queue_max; /* jobs queued or in flight; past it: busy */
	size_t batch_max; /* ledger requests per commit */
	/* Bounded wait for a bigger group (0: never wait).  When the batch
	 * the worker just took holds fewer than DBQ_WAIT_BELOW ledger
	 * requests, and the one before it held more than one (requests
	 * keep arriving), the worker waits for more before committing: up
	 * to wait_us, never longer than the last commit took, and no longer
	 * once DBQ_WAIT_BELOW are there.  Fewer commits (fsyncs, page
	 * rewrites) per request under light-to-moderate load, for at most
	 * one commit time of added latency. */
	int64_t wait_us;
};

#define DBQ_WAIT_BELOW 64

/*
 * Starts the worker over st and lg (borrowed; must outlive the dbq).
 * wake(wake_arg) is called from the worker thread when finished jobs are
 * waiting.  Returns NULL if the thread cannot start.
 */
struct dbq *dbq_new(struct store *st, struct ledger *lg,
                    const struct dbq_params *p, void (*wake)(void *),
                    void *wake_arg);

/* Queues job (takes it on success).  Returns 0, or -1 when the queue is
 * full or stopping: the caller still owns job and answers "busy". */
int dbq_post(struct dbq *q, struct dbq_job *job);

/*
 * Queues ledger jobs[0..n) (call == NULL) as one group: the worker takes
 * them together, so they are decided in one ledger_commit_batch and land
 * in the same commit (n <= batch_max; a larger group is split at
 * batch_max).  All or nothing: returns 0 having taken every job, or -1
 * (queue full or stopping) having taken none.
 */
int dbq_post_group(struct dbq *q, struct dbq_job *const *jobs, size_t n);

/* Runs the done callbacks of finished jobs.  Loop thread only. */
void dbq_complete(struct dbq *q);

/* Jobs queued or in flight (for /metrics and backpressure). */
size_t dbq_depth(struct dbq *q);

/* Refuses new jobs, lets the worker finish every queued one, joins it.
 * Call dbq_complete() afterwards to deliver the last results. */
void dbq_stop(struct dbq *q);
void dbq_free(struct dbq *q); /* NULL-safe; after dbq_stop */

#endif
