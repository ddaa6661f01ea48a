/*
 * test_queue_crash.c - libsokoterm's offline queue survives the terminal
 * dying at any instant (issue #3: "after a crash at any instant the queue
 * opens, passes PRAGMA integrity_check, and every transaction whose
 * 'stored' callback returned is there").
 *
 * A workload drives the real engine (sokoterm.h), not the queue alone:
 * cycles of offline FLOAT_TRANSFERs (each STORED event fires after its
 * row's commit), then a login to an in-test server that acknowledges
 * every ADVICE_BATCH item with STORED (each RESULT fires after the row
 * was marked done), then the link drops.  Every id is reported after
 * the engine call that fired its event returned, whatever it returned
 * (an event that fired in a call that then failed is a promise too):
 * 'S' stored, 'A' acknowledged.
 *
 * 1. test_kill_anywhere: a forked child runs the workload as fast as it
 *    can and writes each report to a pipe; the parent kills it with
 *    SIGKILL at a random instant (seeded), KILL_ITERS times, then opens
 *    the queue: it must open through sokoterm_new (integrity_check
 *    included), pass PRAGMA integrity_check, hold every id reported
 *    stored (none vanished), and every id reported acknowledged must be
 *    done (none resurrected as unsent).  The same file carries over
 *    FILE_ITERS kills, so recovery after a crash is crashed again.
 *
 *    SIGKILL kills the process, not the machine: the kernel still writes
 *    out the page cache, so this proves the library's commit order and
 *    SQLite's recovery, not the fsyncs.  Hence:
 *
 * 2. test_power_loss: the same workload in-process over a SQLite VFS shim
 *    that models the disk: each file's durable image changes only at
 *    xSync; at the crash point (a random I/O operation, seeded) every
 *    later I/O fails, and the image becomes the last synced state plus a
 *    random subset of the unsynced writes, 512-byte sector by sector
 *    (torn and reordered writes; a never-synced file may be absent).
 *    Then the queue is reopened on the real files with the same checks.
 *    This is what a power cut does to synchronous=FULL (the model of
 *    SQLite's own crash tests and of LazyFS); it does not model a disk
 *    that lies about fsync or corrupts synced sectors.
 *
 * SOKOTERM_CRASH_SEED=N replays a failing run (the seed is printed).
 */
#include "sokoterm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pos.h"
#include "check.h"

#define T0          1735689600000u /* 2025-01-01T00:00:00Z */
#define KILL_ITERS  200            /* >= 200 kills (issue #3 battery) */
#define FILE_ITERS  20 /* kills on one queue file before a fresh one */
#define POWER_ITERS 100
#define IDS_MAX     50000
#define REC_LEN     (1 + SOKOTERM_ID_LEN) /* 'S' or 'A', then the id */

static char dir[256];
static uint64_t seed;

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* splitmix64: a child's generator starts at an unrelated point, so two
 * workloads on one file never draw the same transaction ids (xorshift is
 * linear: seeds taken from one xorshift stream would repeat it). */
static uint64_t
mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15u;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9u;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebu;
	return (x ^ (x >> 31)) | 1;
}

static double
elapsed_s(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) +
	       (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* ---- a server that logs in and acknowledges advices -------------------- */

struct srv {
	uint8_t kt[POS_KEY_LEN], ks[POS_KEY_LEN];
	bool is_up;
	uint64_t last_rx, next_tx;
	uint8_t in[3 * POS_FRAME_MAX];
	size_t in_len;
	uint8_t out[16 * POS_FRAME_MAX];
	size_t out_len;
	struct pos_msg m, r;
};

static void
srv_send(struct srv *s, uint32_t req_id, const uint8_t *key)
{
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0;

	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.type = s->r.type;
	h.req_id = req_id;
	h.counter = key == s->kt ? 0 : s->next_tx++;
	if (pos_encode(s->out + s->out_len, sizeof s->out - s->out_len, &h,
	               &s->r, key, &n, &why) != CODEC_OK) {
		fprintf(stderr, "srv_send: %s\n", why);
		abort();
	}
	s->out_len += n;
}

static void
srv_frame(struct srv *s, const struct pos_frame *f)
{
	uint8_t cn[POS_NONCE_LEN], sn[POS_NONCE_LEN];
	const char *why = "";
	size_t i;

	memset(&s->r, 0, sizeof s->r);
	if (!s->is_up) {
		if (pos_frame_open(&s->m, f, s->kt, POS_T2S, NULL, &why) !=
		        POS_CODE_APPROVED ||
		    s->m.type != POS_MSG_LOGIN)
			abort();
		memcpy(cn, s->m.u.login.client_nonce, POS_NONCE_LEN);
		for (i = 0; i < POS_NONCE_LEN; i++)
			sn[i] = (uint8_t)(0x20 + i);
		pos_session_key(s->ks, s->kt, s->m.u.login.terminal_id.ptr,
		                s->m.u.login.terminal_id.len, cn, sn);
		s->r.type = POS_MSG_LOGIN_OK;
		memcpy(s->r.u.login_ok.server_nonce, sn, POS_NONCE_LEN);
		memcpy(s->r.u.login_ok.client_nonce, cn, POS_NONCE_LEN);
		s->r.u.login_ok.time_ms = T0;
		s->r.u.login_ok.session_id = 7;
		s->r.u.login_ok.max_frame = POS_FRAME_MAX;
		s->r.u.login_ok.heartbeat_s = 300;
		s->r.u.login_ok.max_inflight = 4;
		srv_send(s, f->hdr.req_id, s->kt);
		s->is_up = true;
		s->last_rx = 0;
		s->next_tx = 1;
		return;
	}
	if (pos_frame_open(&s->m, f, s->ks, POS_T2S, &s->last_rx, &why) !=
	    POS_CODE_APPROVED)
		abort();
	if (s->m.type != POS_MSG_ADVICE_BATCH)
		return; /* nothing else is sent by this workload */
	s->r.type = POS_MSG_ADVICE_BATCH_RESP;
	s->r.u.advice_batch_resp.code = POS_CODE_APPROVED;
	for (i = 0; i < s->m.u.advice_batch.n_items; i++) {
		struct pos_advice_result *a =
		    &s->r.u.advice_batch_resp.results[i];

		a->code = POS_CODE_STORED;
		memcpy(a->txn_id, s->m.u.advice_batch.items[i].txn_id,
		       POS_ID_LEN);
	}
	s->r.u.advice_batch_resp.n_results = s->m.u.advice_batch.n_items;
	srv_send(s, f->hdr.req_id, s->ks);
}

static void
srv_feed(struct srv *s, const uint8_t *p, size_t len)
{
	struct pos_frame f;
	const char *why = "";
	size_t used;

	if (len > sizeof s->in - s->in_len)
		abort();
	memcpy(s->in + s->in_len, p, len);
	s->in_len += len;
	for (;;) {
		int rc = pos_frame_decode(&f, s->in, s->in_len, &used, &why);

		if (rc == CODEC_NEED_MORE)
			return;
		if (rc == CODEC_BAD)
			abort();
		srv_frame(s, &f);
		memmove(s->in, s->in + used, s->in_len - used);
		s->in_len -= used;
	}
}

/* ---- the workload ------------------------------------------------------ */

/* Where reports go: a pipe (the forked child) or memory (in-process). */
struct work {
	struct sokoterm *t;
	struct srv srv;
	uint64_t now, rng;
	int fd;                      /* pipe, or -1 */
	uint8_t pend[4096][REC_LEN]; /* fired during the current call */
	size_t n_pend;
	enum sokoterm_err err;   /* what stopped w_run() */
	uint8_t (*mem)[REC_LEN]; /* in-process reports */
	size_t n_mem, cap_mem;
};

static int
w_random(void *ctx, uint8_t *buf, size_t len)
{
	struct work *w = ctx;
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(rnd(&w->rng) >> 24);
	return 0;
}

static void
w_event(void *ctx, const struct sokoterm_event *ev)
{
	struct work *w = ctx;
	uint8_t kind;

	if (ev->type == SOKOTERM_EV_STORED)
		kind = 'S';
	else if (ev->type == SOKOTERM_EV_RESULT && ev->is_offline &&
	         ev->code == SOKOTERM_CODE_STORED)
		kind = 'A';
	else
		return;
	if (w->n_pend == sizeof w->pend / sizeof w->pend[0])
		abort();
	w->pend[w->n_pend][0] = kind;
	memcpy(w->pend[w->n_pend] + 1, ev->txn_id, SOKOTERM_ID_LEN);
	w->n_pend++;
}

/* Reports what the last engine call fired: it has returned. */
static void
w_flush(struct work *w)
{
	size_t n = w->n_pend * REC_LEN, off = 0;
	ssize_t k;

	if (w->fd >= 0) {
		while (off < n) {
			k = write(w->fd, (const uint8_t *)w->pend + off,
			          n - off);
			if (k <= 0 && errno != EINTR)
				_exit(5);
			if (k > 0)
				off += (size_t)k;
		}
	} else {
		if (w->n_mem + w->n_pend > w->cap_mem)
			abort();
		memcpy(w->mem[w->n_mem], w->pend, n);
		w->n_mem += w->n_pend;
	}
	w->n_pend = 0;
}

static const uint8_t *
test_key(void)
{
	static uint8_t k[SOKOTERM_KEY_LEN];
	size_t i;

	for (i = 0; i < SOKOTERM_KEY_LEN; i++)
		k[i] = (uint8_t)i;
	return k;
}

static struct sokoterm_config
w_config(struct work *w, const char *path)
{
	struct sokoterm_config c;

	memset(&c, 0, sizeof c);
	c.terminal_id = "T-CRASH";
	c.key = test_key();
	c.queue_path = path;
	c.random = w_random;
	c.random_ctx = w;
	c.on_event = w_event;
	c.event_ctx = w;
	c.offline.allowed_ops = SOKOTERM_OP_BIT(SOKOTERM_OP_FLOAT_TRANSFER);
	c.offline.floor_limit = 1000000;
	c.offline.total_limit = UINT64_C(1) << 50;
	c.offline.max_entries = 1000000;
	return c;
}

/* Moves bytes both ways until quiet; false on an engine error. */
static bool
w_xfer(struct work *w)
{
	static uint8_t buf[sizeof((struct srv *)0)->out];
	const uint8_t *p;
	size_t len, n;
	bool is_moved = true;

	while (is_moved) {
		is_moved = false;
		sokoterm_outbox(w->t, &p, &len);
		if (len > 0) {
			srv_feed(&w->srv, p, len);
			sokoterm_sent(w->t, len);
			is_moved = true;
		}
		if (w->srv.out_len > 0) {
			n = w->srv.out_len;
			memcpy(buf, w->srv.out, n);
			w->srv.out_len = 0;
			/* an event that fired is a promise, whatever the
			 * call returns: report it even when the call failed
			 * (the crash), so an engine that reports an answer
			 * before its commit and then fails is caught */
			if (sokoterm_feed(w->t, buf, n) != SOKOTERM_OK) {
				w_flush(w);
				return false;
			}
			w_flush(w);
			is_moved = true;
		}
	}
	return true;
}

/*
 * Opens the queue and runs cycles (store 1..20 offline, log in, replay and
 * acknowledge some rounds, drop the link) until max_cycles or the first
 * engine error (the crash).  Returns the number of cycles done.
 */
static int
w_run(struct work *w, const char *path, int max_cycles)
{
	struct sokoterm_config c = w_config(w, path);
	struct sokoterm_request r;
	int cycle, i, n;

	enum sokoterm_err e;

	w->now = T0;
	if ((e = sokoterm_new(&w->t, &c)) != SOKOTERM_OK ||
	    (e = sokoterm_tick(w->t, w->now)) != SOKOTERM_OK) {
		w->err = e;
		return 0;
	}
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_FLOAT_TRANSFER;
	r.amount = 100;
	r.currency = 404;
	r.to_agent = "A0002";
	for (cycle = 0; cycle < max_cycles; cycle++) {
		n = 1 + (int)(rnd(&w->rng) % 20);
		for (i = 0; i < n; i++) {
			if ((e = sokoterm_submit(w->t, &r, NULL, NULL)) !=
			    SOKOTERM_OK) {
				w_flush(w); /* as in w_xfer */
				w->err = e;
				return cycle;
			}
			w_flush(w);
		}
		memset(&w->srv, 0, sizeof w->srv);
		memcpy(w->srv.kt, test_key(), POS_KEY_LEN);
		if (sokoterm_connect(w->t, w->now) != SOKOTERM_OK ||
		    !w_xfer(w)) {
			w_flush(w);
			return cycle;
		}
		n = (int)(rnd(&w->rng) % 3);
		for (i = 0; i < n; i++) {
			w->now += 1000;
			if (sokoterm_tick(w->t, w->now) != SOKOTERM_OK ||
			    !w_xfer(w)) {
				w_flush(w);
				return cycle;
			}
		}
		sokoterm_disconnect(w->t);
		w->now += 10;
	}
	return cycle;
}

/* ---- what a reopened queue must show ------------------------------------ */

struct ids {
	uint8_t (*stored)[SOKOTERM_ID_LEN];
	uint8_t (*acked)[SOKOTERM_ID_LEN];
	size_t n_stored, n_acked;
};

static void
ids_add(struct ids *x, const uint8_t *rec)
{
	if (x->n_stored >= IDS_MAX || x->n_acked >= IDS_MAX)
		abort();
	if (rec[0] == 'S')
		memcpy(x->stored[x->n_stored++], rec + 1, SOKOTERM_ID_LEN);
	else
		memcpy(x->acked[x->n_acked++], rec + 1, SOKOTERM_ID_LEN);
}

static void
ids_init(struct ids *x)
{
	memset(x, 0, sizeof *x);
	x->stored = malloc(IDS_MAX * sizeof *x->stored);
	x->acked = malloc(IDS_MAX * sizeof *x->acked);
	if (x->stored == NULL || x->acked == NULL)
		abort();
}

static void
ids_fini(struct ids *x)
{
	free(x->stored);
	free(x->acked);
}

static void
ignore_ev(void *ctx, const struct sokoterm_event *ev)
{
	(void)ctx;
	(void)ev;
}

/*
 * The checks after a crash; 0 when all hold, else prints why (with the
 * iteration) and returns -1.  *n_rows: rows in the file.
 */
static int
verify(const char *path, const struct ids *x, int iter, size_t *n_rows)
{
	struct work w;
	struct sokoterm_config c;
	struct sokoterm *t = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	enum sokoterm_err e;
	const unsigned char *txt;
	int rc = -1;
	size_t i;

	memset(&w, 0, sizeof w);
	w.rng = 1;
	c = w_config(&w, path);
	c.on_event = ignore_ev;
	if ((e = sokoterm_new(&t, &c)) != SOKOTERM_OK) {
		fprintf(stderr, "  iter %d: sokoterm_new: %s\n", iter,
		        sokoterm_strerror(e));
		return -1;
	}
	sokoterm_free(t);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) !=
	        SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW ||
	    (txt = sqlite3_column_text(st, 0)) == NULL ||
	    strcmp((const char *)txt, "ok") != 0) {
		fprintf(stderr, "  iter %d: integrity_check failed\n", iter);
		goto out;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT count(*) FROM q", -1, &st, NULL) !=
	        SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW)
		goto out;
	*n_rows = (size_t)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(db, "SELECT state, code FROM q WHERE txn_id = ?",
	                       -1, &st, NULL) != SQLITE_OK)
		goto out;
	for (i = 0; i < x->n_stored; i++) {
		sqlite3_bind_blob(st, 1, x->stored[i], SOKOTERM_ID_LEN,
		                  SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW) {
			fprintf(stderr,
			        "  iter %d: stored id #%zu of %zu vanished\n",
			        iter, i, x->n_stored);
			goto out;
		}
		sqlite3_reset(st);
	}
	for (i = 0; i < x->n_acked; i++) {
		sqlite3_bind_blob(st, 1, x->acked[i], SOKOTERM_ID_LEN,
		                  SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_ROW ||
		    sqlite3_column_int(st, 0) != 9 ||
		    sqlite3_column_int(st, 1) != SOKOTERM_CODE_STORED) {
			fprintf(stderr,
			        "  iter %d: acknowledged id #%zu is not done "
			        "(resurrected or gone)\n",
			        iter, i);
			goto out;
		}
		sqlite3_reset(st);
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* ---- 1. SIGKILL at random instants -------------------------------------- */

static void
child_main(const char *path, int fd, uint64_t child_seed)
{
	static struct work w;

	memset(&w, 0, sizeof w);
	w.fd = fd;
	w.rng = mix(child_seed);
	(void)w_run(&w, path, 1 << 30);
	/* the engine failed: the parent reports it */
	fprintf(stderr, "  child: %s\n", sokoterm_strerror(w.err));
	_exit(3);
}

/* Reads the child's records: until the deadline (CLOCK_MONOTONIC), so
 * that a full pipe never blocks the child, or until EOF (deadline NULL).
 * A record cut by the kill is not a report. */
static void
drain_pipe(int fd, const struct timespec *deadline, struct ids *x,
           uint8_t *part, size_t *n_part)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	struct timespec now, wait;
	uint8_t buf[8192];
	ssize_t k;
	size_t i;

	for (;;) {
		if (deadline != NULL) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			wait.tv_sec = deadline->tv_sec - now.tv_sec;
			wait.tv_nsec = deadline->tv_nsec - now.tv_nsec;
			if (wait.tv_nsec < 0) {
				wait.tv_sec--;
				wait.tv_nsec += 1000000000L;
			}
			if (wait.tv_sec < 0)
				return;
			if (poll(&pfd, 1,
			         (int)(wait.tv_sec * 1000 +
			               (wait.tv_nsec + 999999) / 1000000)) <= 0)
				continue; /* time is checked again */
		}
		k = read(fd, buf, sizeof buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		for (i = 0; i < (size_t)k; i++) {
			part[(*n_part)++] = buf[i];
			if (*n_part == REC_LEN) {
				ids_add(x, part);
				*n_part = 0;
			}
		}
	}
}

static void
test_kill_anywhere(void)
{
	static struct ids x;
	struct timespec t0, d;
	uint8_t part[REC_LEN];
	char path[512];
	uint64_t r = seed ^ 0x4b494c4cu;
	size_t n_part, n_rows = 0, max_rows = 0, tot_stored = 0, tot_acked = 0;
	int iter, n_killed = 0, n_fail = 0, p[2], status;
	pid_t pid;

	ids_init(&x);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (iter = 0; iter < KILL_ITERS && n_fail == 0; iter++) {
		uint64_t us, child_seed;

		if (iter % FILE_ITERS == 0) {
			snprintf(path, sizeof path, "%s/kill%d.db", dir, iter);
			tot_stored += x.n_stored;
			tot_acked += x.n_acked;
			x.n_stored = x.n_acked = 0;
		}
		/* mostly short (the open and the first commits), some long
		 * enough for the file to grow and checkpoint */
		us = rnd(&r) % 10 == 0 ? rnd(&r) % 150000 : rnd(&r) % 25000;
		child_seed = rnd(&r);
		if (pipe(p) != 0)
			abort();
		fflush(stdout);
		fflush(stderr);
		if ((pid = fork()) == -1)
			abort();
		if (pid == 0) {
			close(p[0]);
			child_main(path, p[1], child_seed);
		}
		close(p[1]);
		clock_gettime(CLOCK_MONOTONIC, &d);
		d.tv_sec += (time_t)(us / 1000000);
		d.tv_nsec += (long)(us % 1000000) * 1000;
		if (d.tv_nsec >= 1000000000L) {
			d.tv_sec++;
			d.tv_nsec -= 1000000000L;
		}
		n_part = 0;
		drain_pipe(p[0], &d, &x, part, &n_part);
		kill(pid, SIGKILL);
		drain_pipe(p[0], NULL, &x, part, &n_part);
		close(p[0]);
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
			n_killed++;
		} else {
			fprintf(stderr, "  iter %d: child exited %d\n", iter,
			        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			n_fail++;
		}
		if (verify(path, &x, iter, &n_rows) != 0)
			n_fail++;
		if (n_rows > max_rows)
			max_rows = n_rows;
	}
	tot_stored += x.n_stored;
	tot_acked += x.n_acked;
	printf("  kill: seed=%llu kills=%d stored=%zu acknowledged=%zu "
	       "max_rows=%zu took_s=%.1f\n",
	       (unsigned long long)seed, n_killed, tot_stored, tot_acked,
	       max_rows, elapsed_s(&t0));
	CHECK_EQ_INT(n_fail, 0);
	CHECK_EQ_INT(n_killed, KILL_ITERS);
	CHECK(tot_stored > 0 && tot_acked > 0);
	ids_fini(&x);
}

/* ---- 2. power loss: a VFS that keeps only what was synced ---------------- */

#define PL_FILES  8
#define PL_SECTOR 512

struct pl_op {
	int64_t off; /* write offset, or the new size of a truncate */
	uint8_t *data;
	size_t len;
	bool is_trunc;
};

/* One file as the disk holds it. */
struct pl_img {
	char path[512];
	bool is_used;
	bool is_durable; /* the file exists on the disk */
	uint8_t *dur;    /* its synced content */
	size_t dur_len, dur_cap;
	struct pl_op *ops; /* written since the last sync */
	size_t n_ops, cap_ops;
};

struct pl_file {
	sqlite3_file base;
	struct pl_img *img; /* NULL: not modelled (temp files) */
	sqlite3_file *real;
};

static struct {
	sqlite3_vfs vfs;
	sqlite3_vfs *base;
	struct pl_img img[PL_FILES];
	bool is_crashed;
	uint64_t n_io, crash_at, rng;
} pl;

static void
img_set_len(struct pl_img *m, size_t len)
{
	if (len > m->dur_cap) {
		size_t cap = len * 2 + 4096;
		uint8_t *p = realloc(m->dur, cap);

		if (p == NULL)
			abort();
		m->dur = p;
		m->dur_cap = cap;
	}
	if (len > m->dur_len)
		memset(m->dur + m->dur_len, 0, len - m->dur_len);
	m->dur_len = len;
}

/* Applies op to the durable image; a write only in the sectors is_keep
 * says (all of them when is_all). */
static void
img_apply(struct pl_img *m, const struct pl_op *op, bool is_all)
{
	size_t off = (size_t)op->off, i, n;

	if (op->is_trunc) {
		if (is_all || rnd(&pl.rng) % 2 == 0)
			img_set_len(m, off);
		return;
	}
	for (i = 0; i < op->len; i += n) {
		n = PL_SECTOR - (off + i) % PL_SECTOR;
		if (n > op->len - i)
			n = op->len - i;
		if (!is_all && rnd(&pl.rng) % 2 != 0)
			continue;
		if (off + i + n > m->dur_len)
			img_set_len(m, off + i + n);
		memcpy(m->dur + off + i, op->data + i, n);
	}
}

static void
img_drop_ops(struct pl_img *m)
{
	size_t i;

	for (i = 0; i < m->n_ops; i++)
		free(m->ops[i].data);
	m->n_ops = 0;
}

static struct pl_img *
img_get(const char *path)
{
	size_t i;

	for (i = 0; i < PL_FILES; i++)
		if (pl.img[i].is_used && strcmp(pl.img[i].path, path) == 0)
			return &pl.img[i];
	for (i = 0; i < PL_FILES; i++)
		if (!pl.img[i].is_used) {
			pl.img[i].is_used = true;
			snprintf(pl.img[i].path, sizeof pl.img[i].path, "%s",
			         path);
			return &pl.img[i];
		}
	abort();
}

/* Counts one modifying I/O; true when it is the one that crashes. */
static bool
pl_io(void)
{
	if (pl.is_crashed)
		return true;
	if (++pl.n_io >= pl.crash_at)
		pl.is_crashed = true;
	return pl.is_crashed;
}

static int
pl_close(sqlite3_file *f)
{
	struct pl_file *p = (struct pl_file *)f;
	int rc = p->real->pMethods->xClose(p->real);

	return rc;
}

static int
pl_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
	struct pl_file *p = (struct pl_file *)f;

	if (pl.is_crashed)
		return SQLITE_IOERR_READ;
	return p->real->pMethods->xRead(p->real, buf, n, off);
}

static int
pl_write(sqlite3_file *f, const void *buf, int n, sqlite3_int64 off)
{
	struct pl_file *p = (struct pl_file *)f;
	struct pl_img *m = p->img;
	int rc;

	if (pl_io())
		return SQLITE_IOERR_WRITE;
	rc = p->real->pMethods->xWrite(p->real, buf, n, off);
	if (rc == SQLITE_OK && m != NULL) {
		struct pl_op *op;

		if (m->n_ops == m->cap_ops) {
			size_t cap = 2 * m->cap_ops + 64;
			struct pl_op *o = realloc(m->ops, cap * sizeof *o);

			if (o == NULL)
				abort();
			m->ops = o;
			m->cap_ops = cap;
		}
		op = &m->ops[m->n_ops++];
		op->off = off;
		op->len = (size_t)n;
		op->is_trunc = false;
		if ((op->data = malloc((size_t)n)) == NULL)
			abort();
		memcpy(op->data, buf, (size_t)n);
	}
	return rc;
}

static int
pl_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct pl_file *p = (struct pl_file *)f;
	struct pl_img *m = p->img;
	int rc;

	if (pl_io())
		return SQLITE_IOERR_TRUNCATE;
	rc = p->real->pMethods->xTruncate(p->real, size);
	if (rc == SQLITE_OK && m != NULL) {
		if (m->n_ops == m->cap_ops) {
			size_t cap = 2 * m->cap_ops + 64;
			struct pl_op *o = realloc(m->ops, cap * sizeof *o);

			if (o == NULL)
				abort();
			m->ops = o;
			m->cap_ops = cap;
		}
		memset(&m->ops[m->n_ops], 0, sizeof m->ops[0]);
		m->ops[m->n_ops].off = size;
		m->ops[m->n_ops].is_trunc = true;
		m->n_ops++;
	}
	return rc;
}

/* The disk's barrier: what was written is now durable.  The real fsync is
 * not needed (the model is the disk) and would only slow the test. */
static int
pl_sync(sqlite3_file *f, int flags)
{
	struct pl_file *p = (struct pl_file *)f;
	struct pl_img *m = p->img;
	size_t i;

	(void)flags;
	if (pl_io())
		return SQLITE_IOERR_FSYNC;
	if (m != NULL) {
		for (i = 0; i < m->n_ops; i++)
			img_apply(m, &m->ops[i], true);
		img_drop_ops(m);
		m->is_durable = true;
	}
	return SQLITE_OK;
}

static int
pl_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xFileSize(p->real, size);
}

static int
pl_lock(sqlite3_file *f, int l)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xLock(p->real, l);
}

static int
pl_unlock(sqlite3_file *f, int l)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xUnlock(p->real, l);
}

static int
pl_reserved(sqlite3_file *f, int *out)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int
pl_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xFileControl(p->real, op, arg);
}

static int
pl_sector(sqlite3_file *f)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xSectorSize(p->real);
}

static int
pl_devchar(sqlite3_file *f)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

static int
pl_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xShmMap(p->real, pg, pgsz, extend, pp);
}

static int
pl_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xShmLock(p->real, off, n, flags);
}

static void
pl_shm_barrier(sqlite3_file *f)
{
	struct pl_file *p = (struct pl_file *)f;

	p->real->pMethods->xShmBarrier(p->real);
}

static int
pl_shm_unmap(sqlite3_file *f, int del)
{
	struct pl_file *p = (struct pl_file *)f;

	return p->real->pMethods->xShmUnmap(p->real, del);
}

static const sqlite3_io_methods pl_methods = {
    2, /* shm, no memory-mapped I/O (xFetch) */
    pl_close,    pl_read,      pl_write,       pl_truncate,
    pl_sync,     pl_file_size, pl_lock,        pl_unlock,
    pl_reserved, pl_fcntl,     pl_sector,      pl_devchar,
    pl_shm_map,  pl_shm_lock,  pl_shm_barrier, pl_shm_unmap,
    NULL,        NULL,
};

static int
pl_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags,
        int *out_flags)
{
	struct pl_file *p = (struct pl_file *)f;
	int rc;

	(void)v;
	memset(p, 0, sizeof *p);
	p->real = (sqlite3_file *)(p + 1);
	rc = pl.base->xOpen(pl.base, name, p->real, flags, out_flags);
	if (rc != SQLITE_OK)
		return rc;
	if (name != NULL &&
	    (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_MAIN_JOURNAL |
	              SQLITE_OPEN_WAL)) != 0)
		p->img = img_get(name);
	p->base.pMethods = &pl_methods;
	return SQLITE_OK;
}

static int
pl_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	size_t i;

	(void)v;
	if (pl_io())
		return SQLITE_IOERR_DELETE;
	for (i = 0; i < PL_FILES; i++)
		if (pl.img[i].is_used && strcmp(pl.img[i].path, name) == 0) {
			img_drop_ops(&pl.img[i]);
			pl.img[i].dur_len = 0;
			pl.img[i].is_durable = false;
		}
	(void)sync_dir; /* the model made it durable: no real fsync */
	return pl.base->xDelete(pl.base, name, 0);
}

static void
pl_install(uint64_t crash_at, uint64_t rng)
{
	memset(&pl.img, 0, sizeof pl.img);
	pl.base = sqlite3_vfs_find(NULL);
	pl.vfs = *pl.base; /* unix: its methods read pAppData, kept */
	pl.vfs.iVersion = 2;
	pl.vfs.zName = "soko-powerloss";
	pl.vfs.szOsFile = (int)sizeof(struct pl_file) + pl.base->szOsFile;
	pl.vfs.xOpen = pl_open;
	pl.vfs.xDelete = pl_delete;
	pl.vfs.pNext = NULL;
	pl.is_crashed = false;
	pl.n_io = 0;
	pl.crash_at = crash_at;
	pl.rng = rng | 1;
	if (sqlite3_vfs_register(&pl.vfs, 1) != SQLITE_OK)
		abort();
}

/* The power comes back: each file is its durable image plus a random
 * part of what was not synced; the shared-memory index is gone. */
static void
pl_power_cycle(const char *db_path)
{
	char shm[600];

	size_t i, k;
	int fd;

	sqlite3_vfs_unregister(&pl.vfs);
	for (i = 0; i < PL_FILES; i++) {
		struct pl_img *m = &pl.img[i];

		if (!m->is_used)
			continue;
		if (!m->is_durable && (m->n_ops == 0 || rnd(&pl.rng) % 2))
			m->is_durable = false; /* never synced: not there */
		else
			m->is_durable = true;
		for (k = 0; k < m->n_ops; k++)
			img_apply(m, &m->ops[k], false);
		img_drop_ops(m);
		if (!m->is_durable) {
			(void)unlink(m->path);
		} else {
			fd = open(m->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			if (fd == -1 ||
			    (m->dur_len > 0 && write(fd, m->dur, m->dur_len) !=
			                           (ssize_t)m->dur_len))
				abort();
			close(fd);
		}
		free(m->dur);
		free(m->ops);
		memset(m, 0, sizeof *m);
	}
	snprintf(shm, sizeof shm, "%s-shm", db_path);
	(void)unlink(shm);
}

static void
test_power_loss(void)
{
	static struct ids x;
	static struct work w;
	struct timespec t0;
	char path[512];
	uint64_t r = seed ^ 0x504f5745u;
	size_t i, n_rows = 0, tot_stored = 0, tot_acked = 0, max_rows = 0;
	int iter, n_crashed = 0, n_fail = 0;

	ids_init(&x);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (iter = 0; iter < POWER_ITERS && n_fail == 0; iter++) {
		snprintf(path, sizeof path, "%s/power%d.db", dir, iter);
		memset(&w, 0, sizeof w);
		w.fd = -1;
		w.rng = mix(rnd(&r));
		w.cap_mem = IDS_MAX;
		if ((w.mem = malloc(IDS_MAX * sizeof *w.mem)) == NULL)
			abort();
		/* the crash anywhere from the first write of a new file to a
		 * few hundred commits later (checkpoints included) */
		pl_install(1 + rnd(&r) % 6000, rnd(&r));
		(void)w_run(&w, path, 400);
		n_crashed += pl.is_crashed;
		sokoterm_free(w.t); /* its I/O fails after the crash */
		pl_power_cycle(path);
		x.n_stored = x.n_acked = 0;
		for (i = 0; i < w.n_mem; i++)
			ids_add(&x, w.mem[i]);
		free(w.mem);
		tot_stored += x.n_stored;
		tot_acked += x.n_acked;
		if (verify(path, &x, iter, &n_rows) != 0)
			n_fail++;
		if (n_rows > max_rows)
			max_rows = n_rows;
	}
	printf("  power_loss: seed=%llu runs=%d crashed=%d stored=%zu "
	       "acknowledged=%zu max_rows=%zu took_s=%.1f\n",
	       (unsigned long long)seed, iter, n_crashed, tot_stored, tot_acked,
	       max_rows, elapsed_s(&t0));
	CHECK_EQ_INT(n_fail, 0);
	CHECK(n_crashed >= POWER_ITERS * 9 / 10);
	CHECK(tot_stored > 0 && tot_acked > 0);
	ids_fini(&x);
}

int
main(void)
{
	const char *s = getenv("SOKOTERM_CRASH_SEED"), *tmp = "/tmp";
	char cmd[300];
	int rc;

	seed = s != NULL ? strtoull(s, NULL, 0) : 20250101u;
	if (seed == 0)
		seed = 1;
	/* tmpfs when there is one: SIGKILL leaves the page cache alive, and
	 * the power-loss model is the VFS shim, so the real disk adds only
	 * fsync latency (the check's own opens and closes) */
	if (getenv("SOKOTERM_CRASH_DIR") != NULL)
		tmp = getenv("SOKOTERM_CRASH_DIR");
	else if (access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	else if (getenv("TMPDIR") != NULL)
		tmp = getenv("TMPDIR");
	snprintf(dir, sizeof dir, "%s/sokoterm-crash-XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_kill_anywhere);
	RUN(test_power_loss);
	rc = check_report("sokoterm_crash");
	if (rc == 0) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			rc = 1;
	} else {
		fprintf(stderr, "queue files kept in %s\n", dir);
	}
	return rc;
}
