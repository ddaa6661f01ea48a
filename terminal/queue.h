/*
 * queue.h - libsokoterm's offline store-and-forward queue (internal).
 *
 * Layer: terminal/ (STYLE.md §1).  Only terminal/queue.c sees sqlite3; the
 * engine (sokoterm.c) sees rows.  Not installed for firmware: the names
 * carry the sokoterm_ prefix anyway because a static library's externals
 * share the firmware's one link namespace.
 *
 * One row per terminal transaction id, kept after it is done (receipts,
 * reconciliation).  A row leaves the "open" set only by
 * sokoterm_queue_done(), called once the server's answer is known; that
 * commit is the durable record of the answer on the terminal.
 */
#ifndef SOKOTERM_QUEUE_H
#define SOKOTERM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sokoterm.h"

#define SOKOTERM_QBODY_MAX 320 /* largest money request body we build */

/* Row states (stored: never renumber). */
enum sokoterm_qstate {
	SOKOTERM_Q_NEW = 0,     /* stored, maybe sent: outcome unknown */
	SOKOTERM_Q_RETRY = 1,   /* known not processed: resend same request */
	SOKOTERM_Q_PENDING = 2, /* COLLECT answered PENDING: STATUS later */
	SOKOTERM_Q_ADVICE = 3,  /* accepted offline: upload in ADVICE_BATCH */
	SOKOTERM_Q_REVERSE = 4, /* send REVERSAL until acknowledged */
	SOKOTERM_Q_HELD = 8,    /* gave up retrying; still open */
	SOKOTERM_Q_DONE = 9,    /* answered; code holds the outcome */
};

struct sokoterm_qrow {
	int64_t seq; /* insertion order, set by insert */
	uint8_t txn_id[SOKOTERM_ID_LEN];
	uint16_t type;     /* the request type (pos_msg_type) */
	uint64_t amount;   /* minor units */
	uint16_t currency; /* ISO 4217 numeric */
	bool is_offline;
	uint8_t state;     /* enum sokoterm_qstate */
	uint8_t reason;    /* REVERSE: reversal reason */
	uint32_t attempts; /* replay attempts so far */
	int64_t created_ms;
	int64_t next_try_ms;
	unsigned code; /* DONE: final code */
	bool was_done; /* answered once (a REVERSE row may be reopened) */
	int64_t released_ms; /* last sokoterm_queue_release(), 0 never */
	uint8_t body[SOKOTERM_QBODY_MAX]; /* the request's CBOR body */
	size_t body_len;
};

struct sokoterm_queue;

/* Allocator pair borrowed from the instance (lives as long as the queue). */
struct sokoterm_mem {
	sokoterm_alloc_fn alloc;
	sokoterm_free_fn free;
	void *ctx;
};

/* Opens or creates the queue at path: WAL, synchronous=FULL, then PRAGMA
 * integrity_check.  OK with *out, or NOMEM, QUEUE, QUEUE_CORRUPT. */
enum sokoterm_err sokoterm_queue_open(struct sokoterm_queue **out,
                                      const char *path,
                                      const struct sokoterm_mem *mem);
/* NULL-safe. */
void sokoterm_queue_close(struct sokoterm_queue *q);

/* Inserts r (seq ignored) and commits.  QUEUE on any failure, including a
 * txn_id already present. */
enum sokoterm_err sokoterm_queue_insert(struct sokoterm_queue *q,
                                        const struct sokoterm_qrow *r);
/* Open rows, sum of open offline amounts, oldest open created_ms (0 when
 * none; oldest_ms may be NULL when not wanted).  Kept as running totals
 * (insert, done), so this costs no query in the common case; the queue
 * counts them again after a failed write or group, or a REVERSE set. */
enum sokoterm_err sokoterm_queue_stats(struct sokoterm_queue *q,
                                       uint64_t *n_open, uint64_t *off_sum,
                                       int64_t *oldest_ms);
/* Row of txn_id into *r.  NOT_FOUND, QUEUE. */
enum sokoterm_err sokoterm_queue_get(struct sokoterm_queue *q,
                                     const uint8_t *txn_id,
                                     struct sokoterm_qrow *r);
/* Up to cap open, unheld rows with seq > after_seq and next_try_ms <= now,
 * in seq order. */
enum sokoterm_err sokoterm_queue_due(struct sokoterm_queue *q,
                                     int64_t after_seq, int64_t now,
                                     struct sokoterm_qrow *rows, size_t cap,
                                     size_t *n);
/* The virtual machine steps the due queries took so far
 * (SQLITE_STMTSTATUS_VM_STEP: it grows with the rows a query visits),
 * for tests: a due query visits the open rows, not the done ones. */
uint64_t sokoterm_queue_due_steps(struct sokoterm_queue *q);
/* Sets state and next_try_ms of an open row (and reason, when state is
 * REVERSE); bump adds one attempt.  A done row is left alone (answers are
 * idempotent), except that REVERSE reopens it: the agent voids a finished
 * transaction; its old code stays until the reversal is answered. */
enum sokoterm_err sokoterm_queue_set(struct sokoterm_queue *q,
                                     const uint8_t *txn_id, uint8_t state,
                                     int64_t next_try_ms, bool bump,
                                     uint8_t reason);
/* Marks an open row done with its final code; *changed false when it was
 * already done (a duplicate answer) or absent. */
enum sokoterm_err sokoterm_queue_done(struct sokoterm_queue *q,
                                      const uint8_t *txn_id, unsigned code,
                                      int64_t now, bool *changed);

/* Entries whose outcome is not known or not uploaded yet (states NEW,
 * RETRY, ADVICE, REVERSE) into *n.  QUEUE. */
enum sokoterm_err sokoterm_queue_unsettled(struct sokoterm_queue *q,
                                           uint64_t *n);

/*
 * End-of-day batches (§6.16).  A batch is the entries inserted after the
 * previous batch's last one up to its own last (upto_seq, fixed when the
 * batch is begun).  batch_begin: want 0 = the unanswered batch if there
 * is one, else a new one numbered the newest + 1 (1 in a new file); want
 * N = batch N if the queue has it, else a new batch N, which must be
 * above the newest and needs no unanswered batch (else ARG).  A new
 * batch is committed before it returns (not in a group: it is recorded
 * before its close is sent).  batch_totals: the batch's done APPROVED
 * and STORED money entries by (type, currency), at most cap lines, in
 * type then currency order (the first cap of them).
 * batch_closed: the close was answered with code.
 */
enum sokoterm_err sokoterm_queue_batch_begin(struct sokoterm_queue *q,
                                             uint32_t want, int64_t now,
                                             uint32_t *no);
struct sokoterm_qtotal {
	uint16_t type; /* the request type (pos_msg_type) */
	uint16_t currency;
	uint32_t count;
	uint64_t sum;
};
enum sokoterm_err sokoterm_queue_batch_totals(struct sokoterm_queue *q,
                                              uint32_t no,
                                              struct sokoterm_qtotal *out,
                                              size_t cap, size_t *n);
enum sokoterm_err sokoterm_queue_batch_closed(struct sokoterm_queue *q,
                                              uint32_t no, unsigned code,
                                              int64_t now);
/* HELD entries back to work (REVERSE if a reversal was asked, ADVICE if
 * offline, else NEW), attempts 0, due now, released_ms now; *n rows.
 * Not in a group.  QUEUE. */
enum sokoterm_err sokoterm_queue_release(struct sokoterm_queue *q, int64_t now,
                                         uint64_t *n);

/* Deletes the done entries of the closed batches older than the newest
 * keep (keep >= 1) into *n (rows deleted), never an open entry and never
 * the newest entry (seq stays increasing: it is the rowid).  Joins a
 * group when one is open. */
enum sokoterm_err sokoterm_queue_prune(struct sokoterm_queue *q, uint32_t keep,
                                       uint64_t *n);

/*
 * Groups the following writes (set, done) into one transaction, opened at
 * the first of them, until sokoterm_queue_group_end(): commit (is_commit)
 * or roll back.  Nothing a group wrote is durable before group_end
 * returned OK, so whoever reports a grouped write (an answer recorded)
 * reports it after that.  group_end returns QUEUE (or CORRUPT, NOMEM)
 * when the commit failed or SQLite had already rolled the transaction
 * back after an error: none of the group's writes happened.  Reads inside
 * a group see its writes.  Never use a group for an insert whose request
 * is sent before group_end (store-before-send).
 */
void sokoterm_queue_group(struct sokoterm_queue *q);
enum sokoterm_err sokoterm_queue_group_end(struct sokoterm_queue *q,
                                           bool is_commit);

#endif
