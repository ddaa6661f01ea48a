/*
 * queue.c - libsokoterm's offline store-and-forward queue in SQLite
 * (issue #3; docs/pos-protocol.md §9).
 *
 * Layer: terminal/ (STYLE.md §1): the only file that includes sqlite3.h.
 * Durability: journal_mode=WAL with synchronous=FULL, so a commit that
 * returned survives power loss.  A write is one statement in autocommit
 * (its own transaction), except inside a group (sokoterm_queue_group):
 * the engine opens one while it takes in the answers of one
 * sokoterm_feed() call, and the group's writes commit together before any
 * of their events fires (queue.h).  An insert (store-before-send) is
 * never grouped.  PRAGMA integrity_check runs on every open and a
 * failure is returned, never repaired or recreated behind the caller's
 * back.  Bound parameters only.  No globals: one struct per open queue.
 */
#include "queue.h"

#include <string.h>

#include <sqlite3.h>

struct sokoterm_queue {
	sqlite3 *db;
	struct sokoterm_mem mem; /* copy; frees this struct */
	sqlite3_stmt *st_insert, *st_stats, *st_get, *st_due, *st_set, *st_done;
	sqlite3_stmt *st_begin, *st_commit, *st_rollback;
	bool is_group; /* writes join one transaction (sokoterm_queue_group) */
	bool in_txn;   /* a group's BEGIN ran */
	/* Running totals of the open rows, kept by insert and done, so that
	 * sokoterm_queue_stats() (before every submit) does not scan every
	 * open row: storing N offline transfers was quadratic.  Recomputed by
	 * the stats query when not valid: after open, after a group that did
	 * not commit or a write that failed (what SQLite rolled back is not
	 * known here), after a reopening set (REVERSE of a done row).  This
	 * instance is the queue file's only writer (sokoterm.h, queue_path), so nothing
	 * else changes the rows under the totals. */
	bool is_tot_valid;    /* n_open and off_sum are exact */
	bool is_oldest_valid; /* oldest_ms is exact (when is_tot_valid) */
	uint64_t n_open;      /* rows with state <> DONE */
	uint64_t off_sum;     /* sum of their amounts that are offline */
	int64_t oldest_ms;    /* min created_ms of the open rows, 0 if none */
	unsigned n_done_rows; /* rows the last done returned (0 or 1) */
};

/* seq is the rowid without AUTOINCREMENT (files made before it keep
 * theirs: same SQL either way).  AUTOINCREMENT rewrote the
 * sqlite_sequence page at every insert; a rowid is max + 1, so seq still
 * follows insertion order as long as the newest row is never deleted
 * (rows are never deleted). */
static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS q ("
    " seq INTEGER PRIMARY KEY,"
    " txn_id BLOB NOT NULL UNIQUE,"
    " type INTEGER NOT NULL,"
    " amount INTEGER NOT NULL,"
    " currency INTEGER NOT NULL,"
    " is_offline INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " reason INTEGER NOT NULL DEFAULT 0,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " created_ms INTEGER NOT NULL,"
    " next_try_ms INTEGER NOT NULL,"
    " code INTEGER,"
    " done_ms INTEGER,"
    " body BLOB NOT NULL,"
    " released_ms INTEGER);"
    "CREATE INDEX IF NOT EXISTS q_open ON q(state, seq) WHERE state <> 9;"
    /* the due query's: open rows in seq order, so "seq > cursor" is a
     * seek and done rows are never read */
    "CREATE INDEX IF NOT EXISTS q_due ON q(seq) WHERE state <> 9;"
    /* end-of-day batches: entries (prev upto_seq, upto_seq]; closed_ms
     * NULL until the close is answered */
    "CREATE TABLE IF NOT EXISTS batches ("
    " no INTEGER PRIMARY KEY,"
    " upto_seq INTEGER NOT NULL,"
    " opened_ms INTEGER NOT NULL,"
    " closed_ms INTEGER,"
    " code INTEGER);";

/* A new process has nothing in flight: an entry still NEW was sent by an
 * earlier process (killed, or power lost) whose answer never came, and its
 * next_try_ms only covered that request's timeout.  Due at once, so it is
 * resolved by STATUS right after the next login, not a timeout later. */
static const char wake_sql[] =
    "UPDATE q SET next_try_ms = 0 WHERE state = 0 AND next_try_ms > 0";

#define ROW_COLS                                                               \
	"seq, txn_id, type, amount, currency, is_offline, state, reason, "     \
	"attempts, created_ms, next_try_ms, code, body, done_ms, released_ms"

static const char *const sql_text[] = {
    "INSERT INTO q (txn_id, type, amount, currency, is_offline, state,"
    " reason, created_ms, next_try_ms, body) VALUES (?,?,?,?,?,?,?,?,?,?)",
    "SELECT count(*), coalesce(sum(CASE WHEN is_offline THEN amount END),"
    " 0), coalesce(min(created_ms), 0) FROM q WHERE state <> 9",
    "SELECT " ROW_COLS " FROM q WHERE txn_id = ?",
    /* due: through the open rows' index in seq order (q_due; state <> 9
     * names it), so the cursor is a seek and done rows are never read.
     * The rowid range SQLite chose by itself read every done row after
     * the cursor (all of them after a sweep from the start); q_open
     * (state, seq) read every open row and sorted them at each call,
     * quadratic in a replay of thousands of offline entries */
    "SELECT " ROW_COLS " FROM q INDEXED BY q_due WHERE state <> 9 AND"
    " state <> 8 AND seq > ? AND next_try_ms <= ? ORDER BY seq LIMIT ?",
    "UPDATE q SET state = ?, next_try_ms = ?, attempts = attempts + ?,"
    " reason = CASE WHEN ? = 4 THEN ? ELSE reason END"
    " WHERE txn_id = ? AND (state <> 9 OR ? = 4)",
    "UPDATE q SET state = 9, code = ?, done_ms = ? WHERE txn_id = ?"
    " AND state <> 9 RETURNING is_offline, amount, created_ms",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
};

#define N_STMTS (sizeof sql_text / sizeof sql_text[0])

static void *
mem_alloc(const struct sokoterm_mem *m, size_t n)
{
	return m->alloc(m->ctx, n);
}

/* Runs one statement that returns no rows we need (pragmas, DDL). */
static int
exec(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

/* A file made before sokoterm_release_held() has no released_ms: add
 * it (NULL in every row: never released).  0, or -1. */
static int
add_released(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	bool has = false;
	int rc;

	if (sqlite3_prepare_v2(db, "PRAGMA table_info(q)", -1, &st, NULL) !=
	    SQLITE_OK)
		return -1;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *name = sqlite3_column_text(st, 1);

		if (name != NULL &&
		    strcmp((const char *)name, "released_ms") == 0)
			has = true;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return -1;
	return has ? 0
	           : exec(db, "ALTER TABLE q ADD COLUMN released_ms INTEGER");
}

static enum sokoterm_err
rc_err(int rc)
{
	rc &= 0xff; /* primary code */
	if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB)
		return SOKOTERM_ERR_QUEUE_CORRUPT;
	if (rc == SQLITE_NOMEM)
		return SOKOTERM_ERR_NOMEM;
	return SOKOTERM_ERR_QUEUE;
}

/* "ok" from PRAGMA integrity_check, or the reason to refuse the file. */
static enum sokoterm_err
integrity(sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e = SOKOTERM_ERR_QUEUE_CORRUPT;
	const unsigned char *txt;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc_err(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		txt = sqlite3_column_text(st, 0);
		if (txt != NULL && strcmp((const char *)txt, "ok") == 0)
			e = SOKOTERM_OK;
		else if (txt == NULL)
			e = SOKOTERM_ERR_NOMEM;
	} else {
		e = rc_err(rc);
	}
	sqlite3_finalize(st);
	return e;
}

enum sokoterm_err
sokoterm_queue_open(struct sokoterm_queue **out, const char *path,
                    const struct sokoterm_mem *mem)
{
	struct sokoterm_queue *q;
	sqlite3_stmt **sts[N_STMTS];
	enum sokoterm_err e;
	size_t i;
	int rc;

	*out = NULL;
	if ((q = mem_alloc(mem, sizeof *q)) == NULL)
		return SOKOTERM_ERR_NOMEM;
	memset(q, 0, sizeof *q);
	q->mem = *mem;
	rc = sqlite3_open_v2(path, &q->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
	                         SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK) {
		e = q->db == NULL ? SOKOTERM_ERR_NOMEM : rc_err(rc);
		goto fail;
	}
	sqlite3_extended_result_codes(q->db, 0);
	/* Integrity first: before any pragma or DDL writes to the file. */
	if ((e = integrity(q->db)) != SOKOTERM_OK)
		goto fail;
	/* Small page cache: thousands of instances share a fleet simulator,
	 * and a terminal has little RAM.  1 KB pages (a new file only: an
	 * existing one keeps its size): the rows are ~100 bytes and every
	 * commit writes each page it touched whole to the WAL, so a store or
	 * an answer writes ~3 KB instead of ~12 KB: a quarter of the flash
	 * wear, and of the fleet simulator's CPU in copying
	 * (docs/benchmarks.md, "Write volume per POS transaction"). */
	if (exec(q->db, "PRAGMA page_size=1024") != 0 ||
	    exec(q->db, "PRAGMA journal_mode=WAL") != 0 ||
	    exec(q->db, "PRAGMA synchronous=FULL") != 0 ||
	    exec(q->db, "PRAGMA cache_size=-64") != 0 ||
	    exec(q->db, "PRAGMA busy_timeout=2000") != 0 ||
	    exec(q->db, schema_sql) != 0 || add_released(q->db) != 0 ||
	    exec(q->db, wake_sql) != 0) {
		e = rc_err(sqlite3_errcode(q->db));
		goto fail;
	}
	sts[0] = &q->st_insert;
	sts[1] = &q->st_stats;
	sts[2] = &q->st_get;
	sts[3] = &q->st_due;
	sts[4] = &q->st_set;
	sts[5] = &q->st_done;
	sts[6] = &q->st_begin;
	sts[7] = &q->st_commit;
	sts[8] = &q->st_rollback;
	for (i = 0; i < N_STMTS; i++) {
		rc =
		    sqlite3_prepare_v3(q->db, sql_text[i], -1,
		                       SQLITE_PREPARE_PERSISTENT, sts[i], NULL);
		if (rc != SQLITE_OK) {
			e = rc_err(rc);
			goto fail;
		}
	}
	*out = q;
	return SOKOTERM_OK;
fail:
	sokoterm_queue_close(q);
	return e;
}

void
sokoterm_queue_close(struct sokoterm_queue *q)
{
	if (q == NULL)
		return;
	sqlite3_finalize(q->st_insert);
	sqlite3_finalize(q->st_stats);
	sqlite3_finalize(q->st_get);
	sqlite3_finalize(q->st_due);
	sqlite3_finalize(q->st_set);
	sqlite3_finalize(q->st_done);
	sqlite3_finalize(q->st_begin);
	sqlite3_finalize(q->st_commit);
	sqlite3_finalize(q->st_rollback);
	sqlite3_close(q->db); /* NULL-safe; all statements are finalized */
	q->mem.free(q->mem.ctx, q);
}

/* Steps a statement without result rows to completion and resets it. */
static int
run(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Steps a write statement to completion and resets it; inside a group,
 * the group's transaction is opened first.  A row it returns (RETURNING)
 * goes to on_row, when not NULL.  Any failure leaves the running totals
 * to be recomputed: what SQLite kept of the write is not known here. */
static enum sokoterm_err
step_write(struct sokoterm_queue *q, sqlite3_stmt *st,
           void (*on_row)(struct sokoterm_queue *q, sqlite3_stmt *st))
{
	int rc;

	if (q->is_group && !q->in_txn) {
		if ((rc = run(q->st_begin)) != SQLITE_OK) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
			q->is_tot_valid = false;
			return rc_err(rc);
		}
		q->in_txn = true;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		/* a RETURNING row (done): the statement, and in autocommit its
		 * commit, finish at the next step */
		if (on_row != NULL)
			on_row(q, st);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		q->is_tot_valid = false;
	return rc == SQLITE_DONE ? SOKOTERM_OK : rc_err(rc);
}

void
sokoterm_queue_group(struct sokoterm_queue *q)
{
	q->is_group = true;
}

enum sokoterm_err
sokoterm_queue_group_end(struct sokoterm_queue *q, bool is_commit)
{
	enum sokoterm_err e = SOKOTERM_OK;
	int rc;

	q->is_group = false;
	if (!q->in_txn)
		return SOKOTERM_OK; /* the group wrote nothing */
	q->in_txn = false;
	/* SQLite rolls a transaction back by itself on some errors (I/O,
	 * disk full, out of memory): then there is nothing to commit, and
	 * the group's writes are lost as a whole. */
	if (sqlite3_get_autocommit(q->db)) {
		q->is_tot_valid = false;
		return SOKOTERM_ERR_QUEUE;
	}
	if (is_commit && (rc = run(q->st_commit)) == SQLITE_OK)
		return SOKOTERM_OK;
	q->is_tot_valid = false; /* the group's done rows are open again */
	if (is_commit)
		e = rc_err(rc);
	if (!sqlite3_get_autocommit(q->db))
		(void)run(q->st_rollback);
	return is_commit ? e : SOKOTERM_OK;
}

enum sokoterm_err
sokoterm_queue_insert(struct sokoterm_queue *q, const struct sokoterm_qrow *r)
{
	sqlite3_stmt *st = q->st_insert;
	enum sokoterm_err e;

	if (sqlite3_bind_blob(st, 1, r->txn_id, SOKOTERM_ID_LEN,
	                      SQLITE_STATIC) != SQLITE_OK ||
	    sqlite3_bind_int(st, 2, r->type) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)r->amount) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, r->currency) != SQLITE_OK ||
	    sqlite3_bind_int(st, 5, r->is_offline) != SQLITE_OK ||
	    sqlite3_bind_int(st, 6, r->state) != SQLITE_OK ||
	    sqlite3_bind_int(st, 7, r->reason) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 8, r->created_ms) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 9, r->next_try_ms) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 10, r->body, (int)r->body_len,
	                      SQLITE_STATIC) != SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SOKOTERM_ERR_QUEUE;
	}
	if ((e = step_write(q, st, NULL)) != SOKOTERM_OK)
		return e;
	/* an insert is never grouped: committed, so counted */
	if (q->n_open == 0 || r->created_ms < q->oldest_ms)
		q->oldest_ms = r->created_ms;
	q->n_open++;
	if (r->is_offline)
		q->off_sum += r->amount;
	return SOKOTERM_OK;
}

enum sokoterm_err
sokoterm_queue_stats(struct sokoterm_queue *q, uint64_t *n_open,
                     uint64_t *off_sum, int64_t *oldest_ms)
{
	sqlite3_stmt *st = q->st_stats;
	enum sokoterm_err e = SOKOTERM_OK;
	int rc;

	if (q->is_tot_valid && (oldest_ms == NULL || q->is_oldest_valid))
		goto out;
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		q->n_open = (uint64_t)sqlite3_column_int64(st, 0);
		q->off_sum = (uint64_t)sqlite3_column_int64(st, 1);
		q->oldest_ms = sqlite3_column_int64(st, 2);
		q->is_tot_valid = true;
		q->is_oldest_valid = true;
	} else {
		e = rc_err(rc);
	}
	sqlite3_reset(st);
	if (e != SOKOTERM_OK)
		return e;
out:
	*n_open = q->n_open;
	*off_sum = q->off_sum;
	if (oldest_ms != NULL)
		*oldest_ms = q->oldest_ms;
	return SOKOTERM_OK;
}

/* Copies the current row of st (ROW_COLS) into *r. */
static void
read_row(sqlite3_stmt *st, struct sokoterm_qrow *r)
{
	const void *p;
	int n;

	memset(r, 0, sizeof *r);
	r->seq = sqlite3_column_int64(st, 0);
	p = sqlite3_column_blob(st, 1);
	n = sqlite3_column_bytes(st, 1);
	if (p != NULL && n == SOKOTERM_ID_LEN)
		memcpy(r->txn_id, p, SOKOTERM_ID_LEN);
	r->type = (uint16_t)sqlite3_column_int(st, 2);
	r->amount = (uint64_t)sqlite3_column_int64(st, 3);
	r->currency = (uint16_t)sqlite3_column_int(st, 4);
	r->is_offline = sqlite3_column_int(st, 5) != 0;
	r->state = (uint8_t)sqlite3_column_int(st, 6);
	r->reason = (uint8_t)sqlite3_column_int(st, 7);
	r->attempts = (uint32_t)sqlite3_column_int64(st, 8);
	r->created_ms = sqlite3_column_int64(st, 9);
	r->next_try_ms = sqlite3_column_int64(st, 10);
	r->code = (unsigned)sqlite3_column_int(st, 11);
	r->was_done = sqlite3_column_type(st, 13) != SQLITE_NULL;
	r->released_ms = sqlite3_column_int64(st, 14); /* NULL: 0 */
	p = sqlite3_column_blob(st, 12);
	n = sqlite3_column_bytes(st, 12);
	/* A body over the limit cannot have been written by us: keep it
	 * empty, the engine then cannot resend it and resolves by STATUS. */
	if (p != NULL && n > 0 && (size_t)n <= SOKOTERM_QBODY_MAX) {
		memcpy(r->body, p, (size_t)n);
		r->body_len = (size_t)n;
	}
}

enum sokoterm_err
sokoterm_queue_get(struct sokoterm_queue *q, const uint8_t *txn_id,
                   struct sokoterm_qrow *r)
{
	sqlite3_stmt *st = q->st_get;
	enum sokoterm_err e;
	int rc;

	if (sqlite3_bind_blob(st, 1, txn_id, SOKOTERM_ID_LEN, SQLITE_STATIC) !=
	    SQLITE_OK)
		return SOKOTERM_ERR_QUEUE;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		read_row(st, r);
		e = SOKOTERM_OK;
	} else {
		e = rc == SQLITE_DONE ? SOKOTERM_ERR_NOT_FOUND : rc_err(rc);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return e;
}

enum sokoterm_err
sokoterm_queue_due(struct sokoterm_queue *q, int64_t after_seq, int64_t now,
                   struct sokoterm_qrow *rows, size_t cap, size_t *n)
{
	sqlite3_stmt *st = q->st_due;
	enum sokoterm_err e = SOKOTERM_OK;
	int rc = SQLITE_DONE;

	*n = 0;
	if (sqlite3_bind_int64(st, 1, after_seq) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 3, (sqlite3_int64)cap) != SQLITE_OK) {
		sqlite3_reset(st);
		return SOKOTERM_ERR_QUEUE;
	}
	while (*n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW)
		read_row(st, &rows[(*n)++]);
	if (*n < cap && rc != SQLITE_DONE)
		e = rc_err(rc);
	sqlite3_reset(st);
	return e;
}

uint64_t
sokoterm_queue_due_steps(struct sokoterm_queue *q)
{
	return (uint64_t)sqlite3_stmt_status(q->st_due,
	                                     SQLITE_STMTSTATUS_VM_STEP, 0);
}

enum sokoterm_err
sokoterm_queue_set(struct sokoterm_queue *q, const uint8_t *txn_id,
                   uint8_t state, int64_t next_try_ms, bool bump,
                   uint8_t reason)
{
	sqlite3_stmt *st = q->st_set;

	if (sqlite3_bind_int(st, 1, state) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, next_try_ms) != SQLITE_OK ||
	    sqlite3_bind_int(st, 3, bump ? 1 : 0) != SQLITE_OK ||
	    sqlite3_bind_int(st, 4, state) != SQLITE_OK ||
	    sqlite3_bind_int(st, 5, reason) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 6, txn_id, SOKOTERM_ID_LEN, SQLITE_STATIC) !=
	        SQLITE_OK ||
	    sqlite3_bind_int(st, 7, state) != SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SOKOTERM_ERR_QUEUE;
	}
	/* REVERSE may reopen a done row (and DONE is not set here, but would
	 * close one): recount rather than track the old state */
	if (state == SOKOTERM_Q_REVERSE || state == SOKOTERM_Q_DONE)
		q->is_tot_valid = false;
	return step_write(q, st, NULL);
}

/* The RETURNING row of a done: one open row less. */
static void
done_row(struct sokoterm_queue *q, sqlite3_stmt *st)
{
	int64_t created = sqlite3_column_int64(st, 2);

	q->n_done_rows++;
	if (!q->is_tot_valid)
		return;
	if (q->n_open == 0) { /* cannot be: recount */
		q->is_tot_valid = false;
		return;
	}
	if (sqlite3_column_int(st, 0) != 0) {
		uint64_t amount = (uint64_t)sqlite3_column_int64(st, 1);

		if (amount > q->off_sum) { /* cannot be either */
			q->is_tot_valid = false;
			return;
		}
		q->off_sum -= amount;
	}
	q->n_open--;
	if (q->n_open == 0)
		q->oldest_ms = 0, q->is_oldest_valid = true;
	else if (created <= q->oldest_ms)
		q->is_oldest_valid = false;
}

enum sokoterm_err
sokoterm_queue_done(struct sokoterm_queue *q, const uint8_t *txn_id,
                    unsigned code, int64_t now, bool *changed)
{
	sqlite3_stmt *st = q->st_done;
	enum sokoterm_err e;

	*changed = false;
	if (sqlite3_bind_int64(st, 1, code) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
	    sqlite3_bind_blob(st, 3, txn_id, SOKOTERM_ID_LEN, SQLITE_STATIC) !=
	        SQLITE_OK) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return SOKOTERM_ERR_QUEUE;
	}
	q->n_done_rows = 0;
	if ((e = step_write(q, st, done_row)) == SOKOTERM_OK)
		*changed = q->n_done_rows > 0;
	return e;
}

/* ---- end-of-day batches ------------------------------------------------
 * Rare (a close a day): statements prepared when used, not kept, so an
 * instance holds no memory for them (a fleet runs thousands). */

static enum sokoterm_err
prep(struct sokoterm_queue *q, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v2(q->db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? SOKOTERM_OK : rc_err(rc);
}

/* One integer from a one-row query with up to two int64 parameters. */
static enum sokoterm_err
query_int(struct sokoterm_queue *q, const char *sql, int n_args, int64_t a,
          int64_t b, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e;
	int rc;

	if ((e = prep(q, sql, &st)) != SOKOTERM_OK)
		return e;
	if ((n_args > 0 && sqlite3_bind_int64(st, 1, a) != SQLITE_OK) ||
	    (n_args > 1 && sqlite3_bind_int64(st, 2, b) != SQLITE_OK)) {
		sqlite3_finalize(st);
		return SOKOTERM_ERR_QUEUE;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		e = SOKOTERM_OK;
	} else {
		e = rc == SQLITE_DONE ? SOKOTERM_ERR_NOT_FOUND : rc_err(rc);
	}
	sqlite3_finalize(st);
	return e;
}

/* One ad-hoc write with n_args (<= 3) int64 parameters, through
 * step_write (so an open group takes it in); *changes (may be NULL): the
 * rows it changed. */
static enum sokoterm_err
write_int(struct sokoterm_queue *q, const char *sql, int n_args,
          const int64_t *args, uint64_t *changes)
{
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e;
	int i;

	if (changes != NULL)
		*changes = 0;
	if ((e = prep(q, sql, &st)) != SOKOTERM_OK)
		return e;
	for (i = 0; i < n_args; i++)
		if (sqlite3_bind_int64(st, i + 1, args[i]) != SQLITE_OK) {
			sqlite3_finalize(st);
			return SOKOTERM_ERR_QUEUE;
		}
	e = step_write(q, st, NULL);
	if (e == SOKOTERM_OK && changes != NULL)
		*changes = (uint64_t)sqlite3_changes(q->db);
	sqlite3_finalize(st);
	return e;
}

enum sokoterm_err
sokoterm_queue_unsettled(struct sokoterm_queue *q, uint64_t *n)
{
	int64_t v = 0;
	enum sokoterm_err e = query_int(
	    q, "SELECT count(*) FROM q WHERE state IN (0, 1, 3, 4)", 0, 0, 0,
	    &v);

	*n = (uint64_t)v;
	return e;
}

enum sokoterm_err
sokoterm_queue_batch_begin(struct sokoterm_queue *q, uint32_t want,
                           int64_t now, uint32_t *no)
{
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e;
	int64_t open_no = 0, newest = 0, have = 0;
	int rc;

	if (q->is_group)
		return SOKOTERM_ERR_STATE; /* recorded before it is sent */
	e = query_int(q, "SELECT no FROM batches WHERE closed_ms IS NULL"
	                 " ORDER BY no LIMIT 1",
	              0, 0, 0, &open_no);
	if (e != SOKOTERM_OK && e != SOKOTERM_ERR_NOT_FOUND)
		return e;
	if ((e = query_int(q, "SELECT coalesce(max(no), 0) FROM batches", 0,
	                   0, 0, &newest)) != SOKOTERM_OK)
		return e;
	if (want == 0 && open_no > 0) {
		*no = (uint32_t)open_no;
		return SOKOTERM_OK;
	}
	if (want != 0) {
		e = query_int(q, "SELECT no FROM batches WHERE no = ?", 1,
		              want, 0, &have);
		if (e == SOKOTERM_OK) {
			*no = want; /* a batch again: its own entries */
			return SOKOTERM_OK;
		}
		if (e != SOKOTERM_ERR_NOT_FOUND)
			return e;
		if ((int64_t)want <= newest || open_no > 0)
			return SOKOTERM_ERR_ARG;
	} else if (newest >= 0xffffffffLL) {
		return SOKOTERM_ERR_ARG; /* numbers used up */
	}
	*no = want != 0 ? want : (uint32_t)(newest + 1);
	if ((e = prep(q, "INSERT INTO batches (no, upto_seq, opened_ms)"
	                 " VALUES (?, (SELECT coalesce(max(seq), 0) FROM q),"
	                 " ?)",
	              &st)) != SOKOTERM_OK)
		return e;
	if (sqlite3_bind_int64(st, 1, *no) != SQLITE_OK ||
	    sqlite3_bind_int64(st, 2, now) != SQLITE_OK) {
		sqlite3_finalize(st);
		return SOKOTERM_ERR_QUEUE;
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SOKOTERM_OK : rc_err(rc);
}

enum sokoterm_err
sokoterm_queue_batch_totals(struct sokoterm_queue *q, uint32_t no,
                            struct sokoterm_qtotal *out, size_t cap,
                            size_t *n)
{
	/* money types only (COLLECT 0x10, CASH_IN, CASH_OUT, FLOAT_TRANSFER
	 * 0x13, BILL_PAY 0x21): a REVERSAL tombstone row is never a total */
	static const char sql[] =
	    "SELECT type, currency, count(*), sum(amount) FROM q"
	    " WHERE seq > coalesce((SELECT upto_seq FROM batches WHERE no < ?1"
	    " ORDER BY no DESC LIMIT 1), 0)"
	    " AND seq <= (SELECT upto_seq FROM batches WHERE no = ?1)"
	    " AND state = 9 AND code IN (0, 2) AND type IN (16, 17, 18, 19, 33)"
	    " GROUP BY type, currency ORDER BY type, currency";
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e;
	int rc = SQLITE_DONE;

	*n = 0;
	if ((e = prep(q, sql, &st)) != SOKOTERM_OK)
		return e;
	if (sqlite3_bind_int64(st, 1, no) != SQLITE_OK) {
		sqlite3_finalize(st);
		return SOKOTERM_ERR_QUEUE;
	}
	/* the first cap lines, in type then currency order */
	while (*n < cap && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct sokoterm_qtotal *l = &out[(*n)++];

		l->type = (uint16_t)sqlite3_column_int(st, 0);
		l->currency = (uint16_t)sqlite3_column_int(st, 1);
		l->count = (uint32_t)sqlite3_column_int64(st, 2);
		l->sum = (uint64_t)sqlite3_column_int64(st, 3);
	}
	if (rc == SQLITE_ROW) /* stopped at cap */
		rc = SQLITE_DONE;
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SOKOTERM_OK : rc_err(rc);
}

enum sokoterm_err
sokoterm_queue_batch_closed(struct sokoterm_queue *q, uint32_t no,
                            unsigned code, int64_t now)
{
	const int64_t args[3] = {now, code, no};

	return write_int(q,
	                 "UPDATE batches SET closed_ms = ?, code = ?"
	                 " WHERE no = ? AND closed_ms IS NULL",
	                 3, args, NULL);
}

enum sokoterm_err
sokoterm_queue_prune(struct sokoterm_queue *q, uint32_t keep, uint64_t *n)
{
	const int64_t args[1] = {keep};

	*n = 0;
	if (keep == 0)
		return SOKOTERM_ERR_ARG;
	return write_int(q,
	                 "DELETE FROM q WHERE state = 9"
	                 " AND seq <= (SELECT upto_seq FROM batches"
	                 " WHERE closed_ms IS NOT NULL"
	                 " ORDER BY no DESC LIMIT 1 OFFSET ?)"
	                 " AND seq < (SELECT max(seq) FROM q)",
	                 1, args, n);
}

enum sokoterm_err
sokoterm_queue_release(struct sokoterm_queue *q, int64_t now, uint64_t *n)
{
	const int64_t args[1] = {now};

	*n = 0;
	if (q->is_group)
		return SOKOTERM_ERR_STATE;
	/* back to what it was doing: a reversal to send (reason set only
	 * by REVERSE), an advice to upload, else an outcome to find out
	 * (STATUS first; resent only if the server never saw it) */
	return write_int(q,
	                 "UPDATE q SET state = CASE WHEN reason > 0 THEN 4"
	                 " WHEN is_offline THEN 3 ELSE 0 END,"
	                 " attempts = 0, next_try_ms = 0, released_ms = ?"
	                 " WHERE state = 8",
	                 1, args, n);
}
