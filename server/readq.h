/*
 * readq.h - read-only storage calls beside the writer: a bounded job
 * queue served by reader threads, each with its own store connection
 * (docs/architecture.md §Group commit, "Readers").
 *
 * The storage writer (dbq.h) runs read calls only after the group commit
 * it is working on, so a STATUS waits for up to one whole batch.  A reader
 * answers at once: SQLite in WAL mode lets a second connection read while
 * the writer commits, and PostgreSQL serves a second connection the same
 * way.  Each call is its own read transaction (the store resets every
 * statement), so it sees every commit finished before it started: every
 * acknowledged transaction, since an acknowledgement leaves only after
 * its commit (dbq.h).  What is still queued on the writer is not seen: a
 * caller that needs it sends a miss on to the writer (svc_pos.h,
 * svc_pos_op.is_read).
 *
 * Same job type and contract as dbq: call runs on a reader thread, done
 * on the loop thread from readq_complete().  No libevent here.
 */
#ifndef SOKO_READQ_H
#define SOKO_READQ_H

#include <stddef.h>

#include "dbq.h"

struct readq;

/*
 * Opens n_threads (>= 1) connections to store_url and starts one reader
 * thread on each.  wake(wake_arg) is called from a reader thread when
 * finished jobs are waiting.  At most queue_max jobs queued or running.
 * Returns NULL (reason in err) if a connection or a thread fails.
 */
struct readq *readq_new(const char *store_url, size_t n_threads,
                        size_t queue_max, void (*wake)(void *), void *wake_arg,
                        char *err, size_t errlen);

/* Queues job (job->call set; takes it on success).  Returns 0, or -1 when
 * full or stopping: the caller still owns job (and may post it to the
 * writer instead).  Loop thread. */
int readq_post(struct readq *q, struct dbq_job *job);

/* Runs the done callbacks of finished jobs.  Loop thread only. */
void readq_complete(struct readq *q);

/* Lets the readers finish every queued job, joins them.  Call
 * readq_complete() afterwards for the last results.  NULL-safe. */
void readq_stop(struct readq *q);
/* Closes the connections.  After readq_stop.  NULL-safe. */
void readq_free(struct readq *q);

#endif
