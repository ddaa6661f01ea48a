/*
 * sim_fleet.c - soko-pos fleet mode: N libsokoterm instances in one
 * process, one non-blocking TCP connection each, on one epoll loop.
 *
 * Layer: firmware-sim/ (sim.h).  No libevent on purpose: this is a client
 * simulator, and epoll keeps it small and fast enough for thousands of
 * terminals (RLIMIT_NOFILE is raised to the hard limit: each terminal
 * holds a socket and its SQLite queue files).
 *
 * Phases:
 *   RUN    float transfers between the fleet's own agents: open loop
 *          (Poisson or uniform arrivals at --rate, assigned to a random
 *          terminal; latency from the scheduled time, so a slow server or
 *          a link down shows up as latency, not as less load) or closed
 *          loop (--closed-loop W in flight per terminal; latency from the
 *          submit).  Links dropped by --drop-every come back after
 *          sokoterm_reconnect_delay_ms().
 *   DRAIN  no new work; wait until every transfer has its final answer
 *          and every queue is empty (the engines resolve lost answers by
 *          STATUS after reconnecting).
 *   CHECK  (1) every APPROVED transfer is asked again by STATUS on its
 *          own terminal: the server must answer the same code and ref;
 *          (2) each agent float (GET /v1/accounts) moved by exactly the
 *          approved amounts out and in.  Together: each approved
 *          transaction exists, and exists once.
 *
 * TLS (--tls-ca): each link runs OpenSSL over its non-blocking socket
 * on the same epoll loop (handshake, SSL_read, SSL_write driven by
 * readiness), one SSL_CTX per thread; the server is verified against the
 * CA file and the --server host (a name or an IP literal), TLS 1.2 or
 * later, as sokoterm_tls_open() does for one terminal.
 *
 * Engine callbacks only record; submits, closes and reconnects happen
 * after the engine call returns (sokoterm.h).
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define TICK_US        100000u /* sokoterm_tick() period per terminal */
#define EV_MAX         1024
#define CHECKS_MAX     16   /* STATUS checks in flight per terminal */
#define BACKLOG_MAX    4096 /* open-loop arrivals waiting per terminal */
#define PROBLEMS_SHOWN 20
#define HTTP_RETRY_S   20 /* admin API unreachable: try again this long */
#define STATUS_MAX     16 /* --status: STATUS in flight per terminal */
#define THREADS_MAX    64
#define MAXU(a, b)     ((a) > (b) ? (a) : (b))

enum phase { PH_RUN, PH_DRAIN, PH_CHECK, PH_DONE };

enum chk { CHK_NONE, CHK_SENT, CHK_OK, CHK_BAD };

struct ftxn {
	uint8_t id[SOKOTERM_ID_LEN];
	uint32_t term;  /* index into fleet.terms */
	uint32_t to;    /* FLOAT_TRANSFER: agent index */
	uint64_t t0_us; /* scheduled (open) or submitted (closed) */
	uint16_t code;  /* §7, when is_final */
	uint8_t op;     /* enum sokoterm_op, a money op */
	bool is_answered; /* first answer (PENDING or final) seen */
	/* --mix reversal: a REVERSAL of this (approved float transfer) was
	 * submitted, has its final answer, and was APPROVED (voided) */
	bool is_rev_sent, is_rev_done, is_reversed;
	bool is_final;
	bool is_delayed; /* its answer was lost once (EV_DELAYED) */
	uint8_t check;   /* enum chk */
	char ref[32];
};

struct fterm {
	struct fleet *f;
	uint32_t idx;
	struct sokoterm *t;
	int fd;
	bool is_connecting;
	bool is_want_out; /* EPOLLOUT registered */
	bool is_closing;  /* EV_CLOSE seen: close after the call */
	/* --tls-ca: the link's TLS session; handshaking until SSL_connect
	 * succeeds; tls_wlen: the length a SSL_write that wanted to write
	 * must be retried with (0: none pending) */
	SSL *ssl;
	bool is_handshaking;
	int tls_wlen;
	uint64_t reconnect_at_us;
	uint32_t agent;
	uint32_t n_logins;
	uint32_t n_inflight; /* transfers without a final answer */
	uint64_t *backlog;   /* open loop: scheduled times, a ring */
	uint32_t bl_head, bl_len;
	struct {
		uint64_t op_id;
		uint32_t txn;
	} checks[CHECKS_MAX];
	uint32_t n_checks;
	uint32_t *mine; /* CHECK: this terminal's approved txns */
	uint32_t n_mine, mine_cursor;
	/* --eod: the batch close of the CHECK phase */
	uint64_t eod_op_id; /* in flight, 0 none */
	bool is_eod_done;
	/* --status: STATUS of this terminal's own approved transfer;
	 * --mix status: of its last money op */
	bool has_status_txn;
	uint8_t status_txn[SOKOTERM_ID_LEN];
	/* --mix reversal: tx index + 1 of an approved float transfer of
	 * this terminal to reverse next (0: none); reversals unanswered */
	uint32_t rev_cand;
	uint32_t n_rev;
	/* measured reads in flight (STATUS, BILL_VALIDATE) */
	struct {
		uint64_t op_id, t0_us;
	} reads[STATUS_MAX];
	uint32_t n_reads;
};

struct fagent {
	const char *code;
	const char *float_account;
	int64_t before, after; /* minor units, from the admin API */
	int64_t delta;         /* approved in - approved out */
};

struct fleet {
	const struct sim_fleet_opts *o;
	struct sim_prov *prov;
	struct fterm *terms;
	size_t n_terms;
	struct fagent *agents;
	size_t n_agents;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	char host[256];   /* --server's host: what the certificate names */
	SSL_CTX *tls;     /* --tls-ca, else NULL */
	int ep;
	enum phase phase;
	uint64_t rng;
	/* transactions, and an open-addressing index by txn id */
	struct ftxn *tx;
	size_t n_tx, cap_tx;
	uint32_t *ht; /* idx + 1; 0 = empty */
	size_t ht_cap;
	uint32_t *lat_us; /* one sample per final answer */
	size_t n_lat, cap_lat;
	/* counters */
	uint64_t n_offered, n_submitted, n_final, n_shed, n_reconnects;
	uint64_t n_drops, n_link_down, n_delayed, n_held, n_login_fail;
	uint64_t n_foreign, n_submit_err, n_check_left, n_checked;
	uint64_t n_eod_left, n_eod_ok; /* --eod: closes to do, agreed */
	uint64_t n_tls_fail; /* handshakes refused or failed */
	uint64_t n_problems;
	uint64_t n_late; /* final answers of delayed transfers (resolved) */
	uint64_t n_logged_in; /* terminals logged in at least once */
	uint64_t n_win;       /* answers in the window (after warm-up) */
	uint64_t n_status_ok; /* --status: answered STATUS requests */
	uint64_t n_pending;   /* money ops answered PENDING first */
	uint64_t n_reads_ok, n_read_err; /* --mix reads: answered, not */
	uint64_t n_rev_sent, n_rev_done, n_reversed; /* --mix reversal */
	uint64_t ops[SIM_MIX_OPS];       /* submitted, by op */
	uint64_t codes[256];  /* money ops' outcomes (--status: answers) */
	uint64_t rcodes[256]; /* --mix reads' answers */
	/* times, monotonic us */
	uint64_t t_start, t_run_end, t_last_final, next_arrival, next_tick,
	    next_drop, deadline, next_queue_poll;
	uint64_t t_warm; /* t_start + --warmup */
	uint64_t queue_left;
	/* --threads: this fleet is one slice of the terminals */
	pthread_barrier_t *bar;
	double rate;        /* open loop: this slice's share of --rate */
	size_t n_prov_more; /* provisioning lines after this slice */
	int rc;
	/* check results (check_one) */
	uint64_t c_approved, c_sum_before, c_sum_after;
	int64_t c_sum_delta; /* what the approved ops moved, in total */
	bool c_balances, c_balances_bad;
};

/* ---- small helpers ---------------------------------------------------- */

static uint64_t
rnd(struct fleet *f)
{
	/* xorshift64*: load generation, not keys (keys and txn ids come
	 * from the engine's CSPRNG) */
	f->rng ^= f->rng >> 12;
	f->rng ^= f->rng << 25;
	f->rng ^= f->rng >> 27;
	return f->rng * 0x2545F4914F6CDD1DULL;
}

static double
rnd_unit(struct fleet *f) /* (0, 1] */
{
	return (double)((rnd(f) >> 11) + 1) / 9007199254740992.0;
}

/* One "problem ..." line (the first PROBLEMS_SHOWN), counted. */
static void problem(struct fleet *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem(struct fleet *f, const char *fmt, ...)
{
	va_list ap;

	if (f->n_problems++ >= PROBLEMS_SHOWN)
		return;
	printf("problem ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* The slot of a txn id in a table of cap (a power of two) slots.  The
 * last 8 bytes are random in version-4 and version-7 ids alike (a
 * version-7 id starts with its ms, the same for many ids), except the
 * variant's two fixed bits in the first of them, which are low bits of
 * the little-endian word: masked directly, every id would fall in a
 * quarter of the slots, in long probe runs.  A multiplicative hash
 * spreads all 64 bits over the high ones, taken from there. */
static size_t
slot_of(const uint8_t *id, size_t cap)
{
	uint64_t k;

	memcpy(&k, id + SOKOTERM_ID_LEN - sizeof k, sizeof k);
	return (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 32) & (cap - 1);
}

static int
ht_grow(struct fleet *f)
{
	size_t cap = f->ht_cap == 0 ? 1024 : 2 * f->ht_cap, i;
	uint32_t *ht = calloc(cap, sizeof *ht);

	if (ht == NULL)
		return -1;
	for (i = 0; i < f->n_tx; i++) {
		size_t h = slot_of(f->tx[i].id, cap);

		while (ht[h] != 0)
			h = (h + 1) & (cap - 1);
		ht[h] = (uint32_t)(i + 1);
	}
	free(f->ht);
	f->ht = ht;
	f->ht_cap = cap;
	return 0;
}

/* Index of txn id, or -1. */
static long
ht_find(const struct fleet *f, const uint8_t *id)
{
	size_t h;

	if (f->ht_cap == 0)
		return -1;
	h = slot_of(id, f->ht_cap);
	while (f->ht[h] != 0) {
		const struct ftxn *x = &f->tx[f->ht[h] - 1];

		if (memcmp(x->id, id, SOKOTERM_ID_LEN) == 0)
			return (long)(f->ht[h] - 1);
		h = (h + 1) & (f->ht_cap - 1);
	}
	return -1;
}

/* Appends a transaction record; NULL when out of memory. */
static struct ftxn *
tx_add(struct fleet *f, const uint8_t *id)
{
	struct ftxn *x;
	size_t h;

	if (f->n_tx == f->cap_tx) {
		size_t cap = f->cap_tx == 0 ? 4096 : 2 * f->cap_tx;

		if ((x = realloc(f->tx, cap * sizeof *x)) == NULL)
			return NULL;
		f->tx = x;
		f->cap_tx = cap;
	}
	if (2 * (f->n_tx + 1) > f->ht_cap && ht_grow(f) != 0)
		return NULL;
	x = &f->tx[f->n_tx];
	memset(x, 0, sizeof *x);
	memcpy(x->id, id, SOKOTERM_ID_LEN);
	h = slot_of(id, f->ht_cap);
	while (f->ht[h] != 0)
		h = (h + 1) & (f->ht_cap - 1);
	f->ht[h] = (uint32_t)(++f->n_tx);
	return x;
}

/* ---- engine events ---------------------------------------------------- */

/* One latency sample; with --warmup only answers inside the window
 * (after the warm-up, before the end of RUN) count. */
static void
lat_add(struct fleet *f, uint64_t now, uint64_t t0)
{
	uint64_t lat = now > t0 ? now - t0 : 0;

	if (f->o->warmup_s > 0 && (f->phase != PH_RUN || now < f->t_warm))
		return;
	if (f->phase == PH_RUN && now >= f->t_warm)
		f->n_win++;
	if (f->n_lat == f->cap_lat) {
		size_t cap = 2 * f->cap_lat + 4096;
		uint32_t *p = realloc(f->lat_us, cap * sizeof *p);

		if (p == NULL) {
			fprintf(stderr, "soko-pos: out of memory\n");
			exit(2);
		}
		f->lat_us = p;
		f->cap_lat = cap;
	}
	f->lat_us[f->n_lat++] = lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
}

/* The first answer of a money op (PENDING, or its final code): what the
 * agent waits for at the counter; the terminal may go on. */
static void
answered(struct fterm *m, struct ftxn *x, uint64_t now)
{
	struct fleet *f = m->f;

	if (x->is_answered)
		return;
	x->is_answered = true;
	if (m->n_inflight > 0)
		m->n_inflight--;
	if (f->o->is_status)
		return;
	lat_add(f, now, x->t0_us);
	/* --mix status asks about the last money op answered */
	memcpy(m->status_txn, x->id, SOKOTERM_ID_LEN);
	m->has_status_txn = true;
}

/* A money op's answer: PENDING first (COLLECT, CASH_IN, CASH_OUT, a
 * BILL_PAY slower than pos_bill_wait_ms), then the outcome when sokod
 * pushes it (COLLECT_RESULT) or STATUS tells it; or the outcome at
 * once. */
static void
on_money_result(struct fterm *m, const struct sokoterm_event *ev)
{
	struct fleet *f = m->f;
	struct ftxn *x;
	uint64_t now = sim_prov_mono_us();
	long i = ev->has_txn_id ? ht_find(f, ev->txn_id) : -1;

	if (i < 0) {
		f->n_foreign++; /* an earlier run's queue entry */
		return;
	}
	x = &f->tx[i];
	if (x->is_final)
		return;
	if (ev->ref != NULL && ev->ref[0] != '\0')
		snprintf(x->ref, sizeof x->ref, "%s", ev->ref);
	if (ev->code == SOKOTERM_CODE_PENDING) {
		if (!x->is_answered)
			f->n_pending++;
		answered(m, x, now);
		return;
	}
	answered(m, x, now);
	x->is_final = true;
	if (x->is_delayed)
		f->n_late++;
	x->code = (uint16_t)(ev->code < 255 ? ev->code : 255);
	f->codes[x->code]++;
	f->n_final++;
	f->t_last_final = now;
	if (x->code == SOKOTERM_CODE_APPROVED &&
	    x->op == SOKOTERM_OP_FLOAT_TRANSFER && !x->is_rev_sent)
		m->rev_cand = (uint32_t)(i + 1); /* --mix reversal: next */
	if (f->o->is_status && x->code == SOKOTERM_CODE_APPROVED &&
	    !m->has_status_txn) {
		/* the transfer gives the terminal a txn to ask about */
		memcpy(m->status_txn, x->id, SOKOTERM_ID_LEN);
		m->has_status_txn = true;
	}
}

/* --mix reversal: the REVERSAL's final answer (APPROVED: voided, the
 * transfer moved nothing; NOT_REVERSIBLE: it stands). */
static void
on_reversal_result(struct fterm *m, const struct sokoterm_event *ev)
{
	struct fleet *f = m->f;
	long i = ev->has_txn_id ? ht_find(f, ev->txn_id) : -1;
	struct ftxn *x;

	if (i < 0 || ev->err != SOKOTERM_OK)
		return;
	x = &f->tx[i];
	if (!x->is_rev_sent || x->is_rev_done)
		return;
	x->is_rev_done = true;
	f->n_rev_done++;
	if (f->terms[x->term].n_rev > 0)
		f->terms[x->term].n_rev--;
	if (ev->code == SOKOTERM_CODE_APPROVED) {
		x->is_reversed = true;
		f->n_reversed++;
	}
}

/* STATUS and BILL_VALIDATE answers: a measured read (--status, --mix),
 * or one of the CHECK phase's questions. */
static void
on_read_result(struct fterm *m, const struct sokoterm_event *ev)
{
	struct fleet *f = m->f;
	struct ftxn *x;
	char want[40], got[40];
	uint32_t i;
	unsigned c = ev->code < 255 ? ev->code : 255;

	for (i = 0; i < m->n_reads; i++)
		if (m->reads[i].op_id == ev->op_id) {
			uint64_t t0 = m->reads[i].t0_us;

			m->reads[i] = m->reads[--m->n_reads];
			if (ev->err != SOKOTERM_OK) {
				f->n_read_err++; /* no answer: link down */
				return;
			}
			/* a reprint of the terminal's own answered
			 * transaction has its lines (UNKNOWN_TXN: one
			 * refused before anything was stored) */
			if (ev->op == SOKOTERM_OP_RECEIPT &&
			    ev->code != SOKOTERM_CODE_UNKNOWN_TXN &&
			    (ev->lines == NULL ||
			     strstr(ev->lines, "*** REPRINT ***") == NULL)) {
				f->n_read_err++;
				problem(f, "receipt terminal=%s code=%u",
				        f->prov[m->idx].terminal_id, ev->code);
				return;
			}
			if (f->o->is_status) {
				f->n_status_ok++;
				f->codes[c]++;
			} else {
				f->n_reads_ok++;
				f->rcodes[c]++;
			}
			lat_add(f, sim_prov_mono_us(), t0);
			return;
		}
	if (ev->op != SOKOTERM_OP_STATUS)
		return;
	for (i = 0; i < m->n_checks; i++)
		if (m->checks[i].op_id == ev->op_id)
			break;
	if (i == m->n_checks)
		return;
	x = &f->tx[m->checks[i].txn];
	m->checks[i] = m->checks[--m->n_checks];
	if (ev->err != SOKOTERM_OK) {
		x->check = CHK_NONE; /* no answer (link down): ask again */
		m->mine_cursor = 0;
		return;
	}
	f->n_check_left--;
	if ((ev->code == (x->is_reversed ? SOKOTERM_CODE_REVERSED : x->code) ||
	     /* a bill stored offline has been paid since */
	     (x->op == SOKOTERM_OP_BILL_PAY &&
	      x->code == SOKOTERM_CODE_STORED &&
	      ev->code == SOKOTERM_CODE_APPROVED)) &&
	    (x->ref[0] == '\0' ||
	     (ev->ref != NULL && strcmp(ev->ref, x->ref) == 0))) {
		x->check = CHK_OK;
		f->n_checked++;
		return;
	}
	x->check = CHK_BAD;
	snprintf(want, sizeof want, "%s/%s",
	         sokoterm_code_name(x->is_reversed ? SOKOTERM_CODE_REVERSED
	                                           : x->code),
	         x->ref);
	snprintf(got, sizeof got, "%s/%s", sokoterm_code_name(ev->code),
	         ev->ref != NULL ? ev->ref : "");
	problem(f, "status_mismatch want=%s got=%s", want, got);
}

/* --eod: the close's answer; the terminal's totals (from its queue)
 * must equal the server's (from its ledger). */
static void
on_eod_result(struct fterm *m, const struct sokoterm_event *ev)
{
	struct fleet *f = m->f;
	char own[160], srv[160];
	size_t i, n;

	if (ev->op_id != m->eod_op_id)
		return;
	m->eod_op_id = 0;
	if (ev->err != SOKOTERM_OK || ev->code >= 30)
		return; /* no answer, RETRY_LATER, BUSY ...: closed again
		           (the same batch) at the next round */
	m->is_eod_done = true;
	f->n_eod_left--;
	if (ev->code == SOKOTERM_CODE_APPROVED) {
		f->n_eod_ok++;
		return;
	}
	for (i = 0, n = 0; i < ev->n_totals && n < sizeof own; i++)
		n += (size_t)snprintf(own + n, sizeof own - n, "%s%u/%u/%llu",
		                      i > 0 ? "," : "", ev->totals[i].op,
		                      ev->totals[i].count,
		                      (unsigned long long)ev->totals[i].sum);
	if (i == 0)
		snprintf(own, sizeof own, "-");
	for (i = 0, n = 0; i < ev->n_server_totals && n < sizeof srv; i++)
		n += (size_t)snprintf(srv + n, sizeof srv - n, "%s%u/%u/%llu",
		                      i > 0 ? "," : "",
		                      ev->server_totals[i].op,
		                      ev->server_totals[i].count,
		                      (unsigned long long)ev->server_totals[i]
		                          .sum);
	if (i == 0)
		snprintf(srv, sizeof srv, "-");
	problem(f, "eod_mismatch terminal=%s batch=%u code=%s terminal=%s "
	           "server=%s",
	        f->prov[m->idx].terminal_id, ev->batch_no,
	        sokoterm_code_name(ev->code), own, srv);
}

static void
on_event(void *ctx, const struct sokoterm_event *ev)
{
	struct fterm *m = ctx;
	struct fleet *f = m->f;

	switch (ev->type) {
	case SOKOTERM_EV_LOGIN:
		if (m->n_logins++ > 0)
			f->n_reconnects++;
		else
			f->n_logged_in++;
		break;
	case SOKOTERM_EV_LOGIN_FAIL:
		if (f->n_login_fail++ < 5)
			fprintf(stderr, "soko-pos: %s: login refused: %s\n",
			        f->prov[m->idx].terminal_id,
			        sokoterm_code_name(ev->code));
		break;
	case SOKOTERM_EV_STORED:
		break;
	case SOKOTERM_EV_DELAYED:
		f->n_delayed++;
		if (ev->has_txn_id) {
			long k = ht_find(f, ev->txn_id);

			if (k >= 0)
				f->tx[k].is_delayed = true;
		}
		break;
	case SOKOTERM_EV_HELD:
		f->n_held++;
		problem(f, "held terminal=%s", f->prov[m->idx].terminal_id);
		break;
	case SOKOTERM_EV_RESULT:
		if (ev->op == SOKOTERM_OP_STATUS ||
		    ev->op == SOKOTERM_OP_RECEIPT ||
		    ev->op == SOKOTERM_OP_BILL_VALIDATE)
			on_read_result(m, ev);
		else if (ev->op == SOKOTERM_OP_EOD_TOTALS)
			on_eod_result(m, ev);
		else if (ev->op == SOKOTERM_OP_REVERSAL)
			on_reversal_result(m, ev);
		else if (ev->op != SOKOTERM_OP_ECHO &&
		         ev->op != SOKOTERM_OP_REVERSAL &&
		         ev->op != SOKOTERM_OP_RECEIPT)
			on_money_result(m, ev);
		break;
	case SOKOTERM_EV_CLOSE:
		m->is_closing = true;
		break;
	}
}

/* ---- links ------------------------------------------------------------ */

static void
link_down(struct fterm *m)
{
	struct fleet *f = m->f;
	uint64_t now = sim_prov_mono_us();
	uint32_t delay;

	if (m->ssl != NULL) {
		SSL_free(m->ssl); /* no close_notify: the link is going */
		m->ssl = NULL;
		ERR_clear_error();
	}
	m->is_handshaking = false;
	m->tls_wlen = 0;
	if (m->fd >= 0) {
		close(m->fd); /* leaves the epoll set too */
		m->fd = -1;
		f->n_link_down++;
	}
	m->is_connecting = m->is_want_out = m->is_closing = false;
	sokoterm_disconnect(m->t);
	delay = sokoterm_reconnect_delay_ms(m->t);
	if (f->o->max_reconnect_ms > 0 && delay > f->o->max_reconnect_ms)
		delay = f->o->max_reconnect_ms;
	m->reconnect_at_us = now + (uint64_t)delay * 1000u;
}

static void
link_start(struct fterm *m)
{
	struct fleet *f = m->f;
	struct epoll_event ee;
	int fd, one = 1;

	fd = socket(f->addr.ss_family,
	            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1) {
		link_down(m);
		return;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(fd, (struct sockaddr *)&f->addr, f->addr_len) == -1 &&
	    errno != EINPROGRESS) {
		close(fd);
		link_down(m);
		return;
	}
	memset(&ee, 0, sizeof ee);
	ee.events = EPOLLIN | EPOLLOUT;
	ee.data.ptr = m;
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, fd, &ee) == -1) {
		close(fd);
		link_down(m);
		return;
	}
	m->fd = fd;
	m->is_connecting = true;
	m->is_want_out = true;
}

static void
want_out(struct fterm *m, bool is_on)
{
	struct epoll_event ee;

	if (m->is_want_out == is_on || m->fd < 0)
		return;
	memset(&ee, 0, sizeof ee);
	ee.events = EPOLLIN | (is_on ? EPOLLOUT : 0u);
	ee.data.ptr = m;
	if (epoll_ctl(m->f->ep, EPOLL_CTL_MOD, m->fd, &ee) == 0)
		m->is_want_out = is_on;
}

/* flush() over TLS.  A SSL_write that wanted to write is retried with
 * the same length (OpenSSL's rule); the outbox keeps those bytes first
 * until sokoterm_sent(), and may move (ACCEPT_MOVING_WRITE_BUFFER). */
static bool
tls_flush(struct fterm *m)
{
	const uint8_t *p;
	size_t len;

	for (;;) {
		int w, n, e;

		sokoterm_outbox(m->t, &p, &len);
		if (len == 0) {
			want_out(m, false);
			return true;
		}
		w = m->tls_wlen > 0 ? m->tls_wlen
		                    : (int)(len > 16384 ? 16384 : len);
		n = SSL_write(m->ssl, p, w);
		if (n > 0) {
			m->tls_wlen = 0;
			sokoterm_sent(m->t, (size_t)n);
			continue;
		}
		e = SSL_get_error(m->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
			m->tls_wlen = w;
			want_out(m, e == SSL_ERROR_WANT_WRITE);
			return true;
		}
		link_down(m);
		return false;
	}
}

/* Writes the outbox; false if the link failed (and is now down). */
static bool
flush(struct fterm *m)
{
	const uint8_t *p;
	size_t len;
	ssize_t n;

	if (m->fd < 0 || m->is_connecting || m->is_handshaking)
		return true;
	if (m->ssl != NULL)
		return tls_flush(m);
	for (;;) {
		sokoterm_outbox(m->t, &p, &len);
		if (len == 0) {
			want_out(m, false);
			return true;
		}
		n = send(m->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			sokoterm_sent(m->t, (size_t)n);
			continue;
		}
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			want_out(m, true);
			return true;
		}
		link_down(m);
		return false;
	}
}

/* ---- work ------------------------------------------------------------- */

const char *
sim_fleet_op_name(enum sokoterm_op op)
{
	/* the ops fleet mode simulates, by soko-pos's names for them */
	switch (op) {
	case SOKOTERM_OP_FLOAT_TRANSFER:
	case SOKOTERM_OP_COLLECT:
	case SOKOTERM_OP_CASH_IN:
	case SOKOTERM_OP_CASH_OUT:
	case SOKOTERM_OP_BILL_PAY:
	case SOKOTERM_OP_BILL_VALIDATE:
	case SOKOTERM_OP_STATUS:
	case SOKOTERM_OP_RECEIPT:
	case SOKOTERM_OP_REVERSAL:
		return sim_op_name(op);
	default:
		return NULL;
	}
}

static bool
is_read(enum sokoterm_op op)
{
	return op == SOKOTERM_OP_STATUS || op == SOKOTERM_OP_RECEIPT ||
	       op == SOKOTERM_OP_BILL_VALIDATE;
}

/* The next op of terminal m, drawn by the --mix weights; STATUS before
 * the terminal has a transaction of its own, or REVERSAL before it has an
 * approved float transfer to void, is the mix's first money op
 * (soko-pos.c refuses a mix of STATUS or REVERSAL without one). */
static enum sokoterm_op
pick_op(struct fleet *f, const struct fterm *m)
{
	const struct sim_fleet_opts *o = f->o;
	uint64_t r;
	unsigned op;

	if (o->mix_total == o->mix[SOKOTERM_OP_FLOAT_TRANSFER])
		return SOKOTERM_OP_FLOAT_TRANSFER; /* no draw: bench runs */
	r = rnd(f) % o->mix_total;
	for (op = 0; op + 1 < SIM_MIX_OPS && r >= o->mix[op]; op++)
		r -= o->mix[op];
	if (((op == SOKOTERM_OP_STATUS || op == SOKOTERM_OP_RECEIPT) &&
	     !m->has_status_txn) ||
	    (op == SOKOTERM_OP_REVERSAL && m->rev_cand == 0))
		for (op = 0; op + 1 < SIM_MIX_OPS; op++)
			if (o->mix[op] > 0 && !is_read(op) &&
			    op != SOKOTERM_OP_REVERSAL)
				break;
	return (enum sokoterm_op)op;
}

/* One operation of terminal m: op, or drawn from --mix (SOKOTERM_OP_NONE).
 * A float transfer goes from m's agent to another fleet agent; a
 * collection, cash-in or cash-out to a --msisdn customer through
 * --provider; a bill to a --bill-account of --biller.  BUSY when the
 * engine (or the reads table) has no slot: try again after answers. */
static enum sokoterm_err
submit_op(struct fterm *m, uint64_t t0, enum sokoterm_op op)
{
	struct fleet *f = m->f;
	const struct sim_fleet_opts *o = f->o;
	struct sokoterm_request r;
	struct ftxn *x;
	uint8_t id[SOKOTERM_ID_LEN];
	uint64_t op_id = 0;
	uint32_t to = 0;
	enum sokoterm_err e;

	if (op == SOKOTERM_OP_NONE)
		op = pick_op(f, m);
	if (is_read(op) && m->n_reads == STATUS_MAX)
		return SOKOTERM_ERR_BUSY;
	memset(&r, 0, sizeof r);
	r.op = op;
	r.amount = o->amount;
	r.currency = o->cur->numeric;
	switch (op) {
	case SOKOTERM_OP_FLOAT_TRANSFER:
		to = (uint32_t)(rnd(f) % (f->n_agents - 1));
		if (to >= m->agent)
			to++;
		r.to_agent = f->agents[to].code;
		break;
	case SOKOTERM_OP_COLLECT:
	case SOKOTERM_OP_CASH_IN:
	case SOKOTERM_OP_CASH_OUT:
		r.msisdn = o->msisdns[rnd(f) % o->n_msisdns];
		r.provider = o->provider;
		break;
	case SOKOTERM_OP_BILL_PAY:
	case SOKOTERM_OP_BILL_VALIDATE:
		r.biller = o->biller;
		r.account = o->accounts[rnd(f) % o->n_accounts];
		break;
	case SOKOTERM_OP_STATUS:
	case SOKOTERM_OP_RECEIPT: /* a reprint of the last one */
		memcpy(r.txn_id, m->status_txn, SOKOTERM_ID_LEN);
		break;
	case SOKOTERM_OP_REVERSAL: /* the agent voids a transfer */
		memcpy(r.txn_id, f->tx[m->rev_cand - 1].id, SOKOTERM_ID_LEN);
		r.reason = 2; /* cancelled */
		break;
	default:
		return SOKOTERM_ERR_ARG;
	}
	e = sokoterm_submit(m->t, &r, &op_id,
	                    is_read(op) || op == SOKOTERM_OP_REVERSAL ? NULL
	                                                              : id);
	if (e != SOKOTERM_OK)
		return e;
	f->ops[op]++;
	if (op == SOKOTERM_OP_REVERSAL) {
		f->tx[m->rev_cand - 1].is_rev_sent = true;
		m->rev_cand = 0;
		m->n_rev++;
		f->n_rev_sent++;
		return SOKOTERM_OK;
	}
	if (t0 == 0)
		t0 = sim_prov_mono_us();
	if (is_read(op)) {
		m->reads[m->n_reads].op_id = op_id;
		m->reads[m->n_reads].t0_us = t0;
		m->n_reads++;
		return SOKOTERM_OK;
	}
	if ((x = tx_add(f, id)) == NULL) {
		fprintf(stderr, "soko-pos: out of memory\n");
		exit(2); /* a simulator may stop; the library never does */
	}
	x->term = m->idx;
	x->to = to;
	x->op = (uint8_t)op;
	x->t0_us = t0;
	m->n_inflight++;
	f->n_submitted++;
	return SOKOTERM_OK;
}

/* Submits what this terminal may submit now. */
static void
feed_work(struct fterm *m)
{
	struct fleet *f = m->f;
	enum sokoterm_err e;

	if (sokoterm_state(m->t) != SOKOTERM_READY)
		return;
	if (f->phase == PH_RUN && f->o->is_status) {
		/* one transfer per terminal, then STATUS of it, closed loop */
		if (!m->has_status_txn) {
			if (m->n_inflight == 0 &&
			    (e = submit_op(m, 0,
			                   SOKOTERM_OP_FLOAT_TRANSFER)) !=
			        SOKOTERM_OK &&
			    e != SOKOTERM_ERR_BUSY)
				f->n_submit_err++;
			return;
		}
		while (m->n_reads < f->o->window) {
			e = submit_op(m, 0, SOKOTERM_OP_STATUS);
			if (e != SOKOTERM_OK) {
				if (e != SOKOTERM_ERR_BUSY)
					f->n_submit_err++;
				break;
			}
			f->n_offered++;
		}
		return;
	}
	if (f->phase == PH_RUN && f->o->is_idle)
		return;
	if (f->phase == PH_RUN && f->o->window > 0) {
		while (m->n_inflight + m->n_reads + m->n_rev < f->o->window &&
		       (f->o->count == 0 || f->n_offered < f->o->count)) {
			e = submit_op(m, 0, SOKOTERM_OP_NONE);
			if (e == SOKOTERM_OK) {
				f->n_offered++;
				continue;
			}
			if (e != SOKOTERM_ERR_BUSY)
				f->n_submit_err++;
			break;
		}
	} else if ((f->phase == PH_RUN || f->phase == PH_DRAIN) &&
	           f->o->window == 0) {
		while (m->bl_len > 0) {
			e = submit_op(m, m->backlog[m->bl_head],
			              SOKOTERM_OP_NONE);
			if (e == SOKOTERM_ERR_BUSY)
				break;
			if (e != SOKOTERM_OK)
				f->n_submit_err++;
			m->bl_head = (m->bl_head + 1) % BACKLOG_MAX;
			m->bl_len--;
		}
	} else if (f->phase == PH_CHECK) {
		if (f->o->is_eod && !m->is_eod_done && m->eod_op_id == 0) {
			struct sokoterm_request r;

			memset(&r, 0, sizeof r);
			r.op = SOKOTERM_OP_EOD_TOTALS;
			/* BUSY: answers outstanding; tried again later */
			(void)sokoterm_submit(m->t, &r, &m->eod_op_id, NULL);
		}
		while (m->n_checks < CHECKS_MAX && m->mine_cursor < m->n_mine) {
			struct ftxn *x = &f->tx[m->mine[m->mine_cursor]];
			struct sokoterm_request r;
			uint64_t op_id = 0;

			if (x->check != CHK_NONE) {
				m->mine_cursor++;
				continue;
			}
			memset(&r, 0, sizeof r);
			r.op = SOKOTERM_OP_STATUS;
			memcpy(r.txn_id, x->id, SOKOTERM_ID_LEN);
			if (sokoterm_submit(m->t, &r, &op_id, NULL) !=
			    SOKOTERM_OK)
				break;
			x->check = CHK_SENT;
			m->checks[m->n_checks].op_id = op_id;
			m->checks[m->n_checks].txn = m->mine[m->mine_cursor];
			m->n_checks++;
			m->mine_cursor++;
		}
	}
}

/* After every engine call on m: close if asked, submit, write. */
static void
after(struct fterm *m)
{
	if (m->fd >= 0 &&
	    (m->is_closing || sokoterm_state(m->t) == SOKOTERM_CLOSING)) {
		link_down(m);
		return;
	}
	feed_work(m);
	(void)flush(m);
}

/* The transport is up (TCP, or TLS after its handshake): log in. */
static void
link_up(struct fterm *m)
{
	if (sokoterm_connect(m->t, sokoterm_posix_now_ms()) != SOKOTERM_OK) {
		link_down(m);
		return;
	}
	after(m);
}

/* Reads every record there is into the engine; false if the link went
 * down. */
static bool
tls_read(struct fterm *m, uint8_t *buf, size_t cap)
{
	for (;;) {
		int n = SSL_read(m->ssl, buf, (int)cap), e;

		if (n > 0) {
			if (sokoterm_feed(m->t, buf, (size_t)n) !=
			    SOKOTERM_OK) {
				link_down(m);
				return false;
			}
			continue;
		}
		e = SSL_get_error(m->ssl, n);
		if (e == SSL_ERROR_WANT_READ)
			return true;
		if (e == SSL_ERROR_WANT_WRITE) {
			want_out(m, true);
			return true;
		}
		link_down(m); /* close_notify, EOF or error */
		return false;
	}
}

/* One step of the handshake; logs in once it is done. */
static void
tls_handshake(struct fterm *m)
{
	int rc = SSL_connect(m->ssl), e;

	if (rc == 1) {
		m->is_handshaking = false;
		link_up(m);
		return;
	}
	e = SSL_get_error(m->ssl, rc);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
		want_out(m, e == SSL_ERROR_WANT_WRITE);
		return;
	}
	/* counted, not a problem: a server killed mid-handshake fails
	 * it too, and the link comes back; a certificate that never
	 * verifies leaves every transfer unanswered, which is */
	if (m->f->n_tls_fail++ == 0) {
		long v = SSL_get_verify_result(m->ssl);

		fprintf(stderr, "soko-pos: TLS terminal=%s: %s\n",
		        m->f->prov[m->idx].terminal_id,
		        v != X509_V_OK ? X509_verify_cert_error_string(v)
		                       : "handshake failed");
	}
	link_down(m);
}

/* The TCP connection is up: start TLS on it, verifying the server's
 * name (or address) against its certificate. */
static void
tls_begin(struct fterm *m)
{
	struct fleet *f = m->f;
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, f->host, ip) == 1 ||
	             inet_pton(AF_INET6, f->host, ip) == 1;

	if ((m->ssl = SSL_new(f->tls)) == NULL ||
	    (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m->ssl),
	                                           f->host) != 1
	           : SSL_set1_host(m->ssl, f->host) != 1 ||
	                 SSL_set_tlsext_host_name(m->ssl, f->host) != 1) ||
	    SSL_set_fd(m->ssl, m->fd) != 1) {
		link_down(m);
		return;
	}
	m->is_handshaking = true;
	tls_handshake(m);
}

static void
on_io(struct fterm *m, uint32_t events)
{
	uint8_t buf[16384];
	ssize_t n;

	if (m->fd < 0)
		return;
	if (m->is_connecting) {
		int soerr = 0;
		socklen_t len = sizeof soerr;

		if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) == 0)
			return;
		if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) ==
		        -1 ||
		    soerr != 0) {
			link_down(m);
			return;
		}
		m->is_connecting = false;
		if (m->f->tls != NULL)
			tls_begin(m);
		else
			link_up(m);
		return;
	}
	if (m->is_handshaking) {
		tls_handshake(m);
		return;
	}
	if (m->ssl != NULL && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
		if (!tls_read(m, buf, sizeof buf))
			return;
	} else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		for (;;) {
			n = recv(m->fd, buf, sizeof buf, MSG_DONTWAIT);
			if (n > 0) {
				if (sokoterm_feed(m->t, buf, (size_t)n) !=
				    SOKOTERM_OK) {
					link_down(m);
					return;
				}
				continue;
			}
			if (n == -1 && errno == EINTR)
				continue;
			if (n == -1 &&
			    (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			link_down(m); /* EOF or error */
			return;
		}
	}
	after(m);
}

/* ---- set-up ----------------------------------------------------------- */

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
resolve(struct fleet *f)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port[16];

	if (sim_prov_hostport(host, sizeof host, port, sizeof port,
	                      f->o->server) != 0) {
		fprintf(stderr, "soko-pos: bad --server %s\n", f->o->server);
		return -1;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0 || res == NULL) {
		fprintf(stderr, "soko-pos: cannot resolve %s\n", f->o->server);
		return -1;
	}
	memcpy(&f->addr, res->ai_addr, res->ai_addrlen);
	f->addr_len = res->ai_addrlen;
	freeaddrinfo(res);
	snprintf(f->host, sizeof f->host, "%s", host);
	return 0;
}

/* --tls-ca: the thread's client context (verify the peer, TLS >= 1.2;
 * partial writes from a buffer the engine may move, see flush()). */
static int
tls_prepare(struct fleet *f)
{
	if (f->o->tls_ca == NULL)
		return 0;
	if ((f->tls = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(f->tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(f->tls, f->o->tls_ca, NULL) != 1) {
		fprintf(stderr, "soko-pos: TLS: cannot use CA file %s\n",
		        f->o->tls_ca);
		ERR_clear_error();
		return -1;
	}
	SSL_CTX_set_verify(f->tls, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_mode(f->tls, SSL_MODE_ENABLE_PARTIAL_WRITE |
	                             SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
	                             SSL_MODE_RELEASE_BUFFERS);
	return 0;
}

static int
agents_build(struct fleet *f)
{
	size_t i, j;

	if ((f->agents = calloc(f->n_terms + 1, sizeof *f->agents)) == NULL)
		return -1;
	for (i = 0; i < f->n_terms; i++) {
		for (j = 0; j < f->n_agents; j++)
			if (strcmp(f->agents[j].code, f->prov[i].agent) == 0)
				break;
		if (j == f->n_agents) {
			f->agents[j].code = f->prov[i].agent;
			f->agents[j].float_account = f->prov[i].float_account;
			f->n_agents++;
		}
		f->terms[i].agent = (uint32_t)j;
	}
	if (f->n_agents < 2 && f->n_terms == 1 && f->n_prov_more > 0 &&
	    strcmp(f->prov[1].agent, f->agents[0].code) != 0) {
		/* a fleet of one terminal (--terminals 1) pays the agent of
		 * the provisioning file's next line, which only receives */
		f->agents[1].code = f->prov[1].agent;
		f->agents[1].float_account = f->prov[1].float_account;
		f->n_agents = 2;
	}
	if (f->n_agents < 2 &&
	    (f->o->mix[SOKOTERM_OP_FLOAT_TRANSFER] > 0 || f->o->is_status ||
	     f->o->offline > 0)) {
		fprintf(stderr, "soko-pos: float transfers need at least two "
		                "agents in the fleet\n");
		return -1;
	}
	return 0;
}

/* Top-ups (optional), then every agent's balance into before; 0 ok. */
static int
balances(struct fleet *f, bool is_before)
{
	char err[512], idem[128];
	uint64_t t_end;
	size_t i;

	if (f->o->http == NULL)
		return 0;
	for (i = 0; i < f->n_agents; i++) {
		struct fagent *a = &f->agents[i];

		if (is_before && f->o->fund_from != NULL) {
			snprintf(idem, sizeof idem, "soko-pos:fund:%s:%016llx",
			         a->code, (unsigned long long)f->o->seed);
			if (sim_http_topup(f->o->http, f->o->api_key, idem,
			                   f->o->fund_from, a->float_account,
			                   f->o->cur, f->o->fund, err,
			                   sizeof err) != 0) {
				fprintf(stderr, "soko-pos: %s\n", err);
				return -1;
			}
		}
		/* the server may be restarting (the kill -9 test): the
		 * balance is read again for up to HTTP_RETRY_S */
		t_end = sim_prov_mono_us() + HTTP_RETRY_S * 1000000u;
		while (sim_http_balance(f->o->http, f->o->api_key,
		                        a->float_account, f->o->cur,
		                        is_before ? &a->before : &a->after, err,
		                        sizeof err) != 0) {
			if (sim_prov_mono_us() >= t_end) {
				fprintf(stderr, "soko-pos: %s\n", err);
				return -1;
			}
			usleep(50000);
		}
	}
	return 0;
}

static int
terms_open(struct fleet *f)
{
	char path[4096];
	size_t i;

	for (i = 0; i < f->n_terms; i++) {
		struct fterm *m = &f->terms[i];
		struct sokoterm_config cfg;
		enum sokoterm_err e;

		m->f = f;
		m->idx = (uint32_t)i;
		m->fd = -1;
		if (f->o->window == 0 &&
		    (m->backlog = malloc(BACKLOG_MAX * sizeof *m->backlog)) ==
		        NULL)
			return -1;
		snprintf(path, sizeof path, "%s/%s.db", f->o->queue_dir,
		         f->prov[i].terminal_id);
		memset(&cfg, 0, sizeof cfg);
		cfg.terminal_id = f->prov[i].terminal_id;
		cfg.key = f->prov[i].key;
		cfg.firmware = "soko-pos fleet";
		cfg.queue_path = path;
		cfg.random = sokoterm_posix_random;
		cfg.on_event = on_event;
		cfg.event_ctx = m;
		cfg.offline.max_entries = 4 * BACKLOG_MAX;
		if (f->o->offline > 0) {
			/* replay benchmark: float transfers (and with
			 * --mix bill_pay, bills paid in cash) accepted
			 * offline (stored, sent as ADVICE_BATCH after
			 * login) */
			cfg.offline.allowed_ops =
			    SOKOTERM_OP_BIT(SOKOTERM_OP_FLOAT_TRANSFER) |
			    SOKOTERM_OP_BIT(SOKOTERM_OP_BILL_PAY);
			cfg.offline.floor_limit = f->o->amount;
			cfg.offline.total_limit =
			    f->o->amount * (uint64_t)f->o->offline;
			cfg.offline.max_entries =
			    f->o->offline + 4 * BACKLOG_MAX;
		}
		if ((e = sokoterm_new(&m->t, &cfg)) != SOKOTERM_OK) {
			fprintf(stderr, "soko-pos: queue %s: %s\n", path,
			        sokoterm_strerror(e));
			return -1;
		}
	}
	return 0;
}

/* --offline N: N transfers (or bills, by the --mix weights) per terminal
 * while no link is up (stored, "will be sent"); replayed as advices once
 * the terminals connect. */
static int
offline_fill(struct fleet *f)
{
	size_t i;
	uint32_t k;

	for (i = 0; i < f->n_terms; i++) {
		/* the time of the stored entries (and of their txn ids) */
		if (sokoterm_tick(f->terms[i].t, sokoterm_posix_now_ms()) !=
		    SOKOTERM_OK)
			return -1;
		for (k = 0; k < f->o->offline; k++) {
			enum sokoterm_err e =
			    submit_op(&f->terms[i], 1, SOKOTERM_OP_NONE);

			if (e != SOKOTERM_OK) {
				fprintf(stderr,
				        "soko-pos: offline submit %s: %s\n",
				        f->prov[i].terminal_id,
				        sokoterm_strerror(e));
				return -1;
			}
		}
	}
	return 0;
}

/* ---- the loop --------------------------------------------------------- */

static void
arrivals(struct fleet *f, uint64_t now)
{
	const struct sim_fleet_opts *o = f->o;

	while (f->phase == PH_RUN && f->next_arrival <= now &&
	       (o->count == 0 || f->n_offered < o->count)) {
		struct fterm *m = &f->terms[rnd(f) % f->n_terms];
		double gap =
		    o->is_uniform ? 1.0 / f->rate : -log(rnd_unit(f)) / f->rate;

		f->n_offered++;
		if (m->bl_len == BACKLOG_MAX) {
			f->n_shed++;
		} else {
			m->backlog[(m->bl_head + m->bl_len) % BACKLOG_MAX] =
			    f->next_arrival;
			m->bl_len++;
			if (m->fd >= 0 && !m->is_connecting)
				after(m);
		}
		f->next_arrival += (uint64_t)(gap * 1e6) + 1;
	}
}

static bool
all_final(const struct fleet *f)
{
	size_t i;

	if (f->n_final < f->n_submitted || f->n_rev_done < f->n_rev_sent)
		return false;
	for (i = 0; i < f->n_terms; i++)
		if (f->terms[i].bl_len > 0)
			return false;
	return true;
}

static uint64_t
queues_open(const struct fleet *f)
{
	uint64_t sum = 0, n, tot;
	size_t i;

	for (i = 0; i < f->n_terms; i++) {
		n = 0;
		if (sokoterm_queue_count(f->terms[i].t, &n, &tot) ==
		    SOKOTERM_OK)
			sum += n;
	}
	return sum;
}

/* Lists each terminal's approved transactions for the STATUS checks. */
static int
check_prepare(struct fleet *f)
{
	size_t i;

	for (i = 0; i < f->n_tx; i++) {
		const struct ftxn *x = &f->tx[i];

		if (x->is_final && (x->code == SOKOTERM_CODE_APPROVED ||
		                    x->code == SOKOTERM_CODE_STORED))
			f->terms[x->term].n_mine++;
	}
	for (i = 0; i < f->n_terms; i++) {
		struct fterm *m = &f->terms[i];

		if (m->n_mine > 0 &&
		    (m->mine = malloc(m->n_mine * sizeof *m->mine)) == NULL)
			return -1;
		f->n_check_left += m->n_mine;
		m->n_mine = 0;
		if (f->o->is_eod)
			f->n_eod_left++;
	}
	for (i = 0; i < f->n_tx; i++) {
		const struct ftxn *x = &f->tx[i];

		if (x->is_final && (x->code == SOKOTERM_CODE_APPROVED ||
		                    x->code == SOKOTERM_CODE_STORED)) {
			struct fterm *m = &f->terms[x->term];

			m->mine[m->n_mine++] = (uint32_t)i;
		}
	}
	return 0;
}

static void
phase_next(struct fleet *f, uint64_t now)
{
	const struct sim_fleet_opts *o = f->o;
	size_t i;

	switch (f->phase) {
	case PH_RUN:
		if ((o->duration_s > 0 &&
		     now - f->t_start >= (uint64_t)(o->duration_s * 1e6)) ||
		    (o->count > 0 && f->n_offered >= o->count) ||
		    (o->offline > 0 && o->window == 0 && o->rate == 0)) {
			f->phase = PH_DRAIN;
			f->t_run_end = now;
			f->deadline = now + (uint64_t)(o->drain_s * 1e6);
		}
		break;
	case PH_DRAIN:
		if (all_final(f) && now >= f->next_queue_poll) {
			f->next_queue_poll = now + 200000;
			if (queues_open(f) == 0)
				f->deadline = now; /* drained */
		}
		if (now >= f->deadline) {
			if (check_prepare(f) != 0) {
				fprintf(stderr, "soko-pos: out of memory\n");
				exit(2);
			}
			f->phase = PH_CHECK;
			f->deadline = now + (uint64_t)(o->drain_s * 1e6);
			for (i = 0; i < f->n_terms; i++)
				if (f->terms[i].fd >= 0 &&
				    !f->terms[i].is_connecting)
					after(&f->terms[i]);
		}
		break;
	case PH_CHECK:
		if ((f->n_check_left == 0 && f->n_eod_left == 0) ||
		    now >= f->deadline)
			f->phase = PH_DONE;
		break;
	case PH_DONE:
		break;
	}
}

/* --drop-every: links cut while the load runs, and while an --offline
 * replay drains (its whole run: reconnects mid-replay); checked at every
 * turn of the loop, so a period shorter than the tick is kept */
static bool
drops_on(const struct fleet *f)
{
	return f->o->drop_every_s > 0 &&
	       (f->phase == PH_RUN ||
	        (f->phase == PH_DRAIN && f->o->offline > 0));
}

static void
drop_due(struct fleet *f, uint64_t now)
{
	struct fterm *m;

	if (!drops_on(f) || now < f->next_drop)
		return;
	m = &f->terms[rnd(f) % f->n_terms];
	f->next_drop = now + (uint64_t)(f->o->drop_every_s * 1e6);
	if (m->fd >= 0 && !m->is_connecting) {
		f->n_drops++;
		link_down(m);
	}
}

static void
tick_all(struct fleet *f, uint64_t now)
{
	uint64_t wall = sokoterm_posix_now_ms();
	size_t i;

	for (i = 0; i < f->n_terms; i++) {
		struct fterm *m = &f->terms[i];

		if (m->fd < 0) {
			if (now >= m->reconnect_at_us)
				link_start(m);
			continue;
		}
		if (m->is_connecting)
			continue;
		if (sokoterm_tick(m->t, wall) != SOKOTERM_OK)
			m->is_closing = true;
		after(m);
	}
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const struct fleet *f, double p)
{
	size_t i;

	if (f->n_lat == 0)
		return 0.0;
	i = (size_t)(p * (double)(f->n_lat - 1) + 0.5);
	return (double)f->lat_us[i] / 1000.0;
}

/* Upper-case §7 name of code into buf. */
static const char *
code_upper(char *buf, size_t cap, unsigned code)
{
	size_t k;

	snprintf(buf, cap, "%s", sokoterm_code_name(code));
	for (k = 0; buf[k] != '\0'; k++)
		if (buf[k] >= 'a' && buf[k] <= 'z')
			buf[k] = (char)(buf[k] - 'a' + 'A');
	return buf;
}

/* --mix: what each op submitted, how many money ops were answered
 * PENDING first, and the reads' answers. */
static void
report_mix(const struct fleet *f)
{
	char name[40];
	unsigned op;
	size_t i;

	printf("ops");
	for (op = 0; op < SIM_MIX_OPS; op++)
		if (f->o->mix[op] > 0)
			printf(" %s=%llu", sim_fleet_op_name(op),
			       (unsigned long long)f->ops[op]);
	printf(" pending=%llu", (unsigned long long)f->n_pending);
	if (f->o->mix[SOKOTERM_OP_REVERSAL] > 0)
		printf(" reversed=%llu", (unsigned long long)f->n_reversed);
	printf("\n");
	printf("reads ok=%llu err=%llu codes", (unsigned long long)f->n_reads_ok,
	       (unsigned long long)f->n_read_err);
	for (i = 0; i < 256; i++)
		if (f->rcodes[i] > 0)
			printf(" %s=%llu",
			       code_upper(name, sizeof name, (unsigned)i),
			       (unsigned long long)f->rcodes[i]);
	printf("\n");
}

static void
report(struct fleet *f)
{
	const struct sim_fleet_opts *o = f->o;
	double run_s = (double)(f->t_run_end - f->t_start) / 1e6;
	double done_s = (double)((f->t_last_final > f->t_start ? f->t_last_final
	                                                       : f->t_run_end) -
	                         f->t_start) /
	                1e6;
	double win_s = (double)(f->t_run_end - f->t_warm) / 1e6;
	size_t i;

	if (run_s <= 0)
		run_s = 1e-6;
	if (done_s <= 0)
		done_s = 1e-6;
	if (win_s <= 0)
		win_s = 1e-6;
	if (f->n_lat > 0) /* none: lat_us is NULL, not for qsort */
		qsort(f->lat_us, f->n_lat, sizeof *f->lat_us, cmp_u32);
	printf("fleet terminals=%zu agents=%zu mode=%s", f->n_terms,
	       f->n_agents,
	       o->is_idle       ? "idle"
	       : o->window > 0  ? "closed"
	       : o->rate > 0    ? "open"
	                        : "replay");
	if (o->window > 0)
		printf(" window=%u", o->window);
	else if (o->rate > 0)
		printf(" rate=%.1f arrivals=%s", o->rate,
		       o->is_uniform ? "uniform" : "poisson");
	if (o->threads > 1)
		printf(" threads=%u", o->threads);
	if (o->is_status)
		printf(" op=status");
	if (o->tls_ca != NULL)
		printf(" tls=on");
	printf(" run_s=%.3f\n", run_s);
	printf("offered=%llu offered_per_s=%.1f completed=%llu "
	       "completed_per_s=%.1f\n",
	       (unsigned long long)f->n_offered, (double)f->n_offered / run_s,
	       (unsigned long long)(o->is_status ? f->n_status_ok : f->n_final),
	       (double)(o->is_status ? f->n_status_ok : f->n_final) / done_s);
	if (o->warmup_s > 0)
		printf("window warmup_s=%.3f window_s=%.3f answered=%llu "
		       "answered_per_s=%.1f\n",
		       o->warmup_s, win_s, (unsigned long long)f->n_win,
		       (double)f->n_win / win_s);
	if (o->offline > 0)
		/* from the first connect to the last durable answer */
		printf("replay entries=%llu replay_s=%.3f\n",
		       (unsigned long long)f->n_submitted, done_s);
	printf("latency_ms p50=%.3f p99=%.3f p99.9=%.3f max=%.3f\n",
	       pct_ms(f, 0.50), pct_ms(f, 0.99), pct_ms(f, 0.999),
	       pct_ms(f, 1.0));
	printf("codes");
	for (i = 0; i < 256; i++)
		if (f->codes[i] > 0) {
			char name[40];

			printf(" %s=%llu",
			       code_upper(name, sizeof name, (unsigned)i),
			       (unsigned long long)f->codes[i]);
		}
	printf("\n");
	if (o->mix_total != o->mix[SOKOTERM_OP_FLOAT_TRANSFER] &&
	    !o->is_status)
		report_mix(f);
	printf(
	    "reconnects=%llu drops=%llu link_down=%llu delayed=%llu "
	    "resolved_late=%llu held=%llu login_fail=%llu shed=%llu "
	    "submit_err=%llu foreign=%llu tls_fail=%llu queue_left=%llu\n",
	    (unsigned long long)f->n_reconnects, (unsigned long long)f->n_drops,
	    (unsigned long long)f->n_link_down,
	    (unsigned long long)f->n_delayed, (unsigned long long)f->n_late,
	    (unsigned long long)f->n_held, (unsigned long long)f->n_login_fail,
	    (unsigned long long)f->n_shed, (unsigned long long)f->n_submit_err,
	    (unsigned long long)f->n_foreign,
	    (unsigned long long)f->n_tls_fail,
	    (unsigned long long)f->queue_left);
	fflush(stdout);
}

/* The check of one fleet (slice) against the server: problems are printed
 * and counted; the sums go into f->c_*. */
static void
check_one(struct fleet *f)
{
	const struct sim_fleet_opts *o = f->o;
	uint64_t n_unresolved = 0;
	struct fagent *own;
	char a[64], b[64];
	size_t i;

	for (i = 0; i < f->n_tx; i++) {
		const struct ftxn *x = &f->tx[i];

		if (!x->is_final) {
			n_unresolved++;
			continue;
		}
		/* STORED: an advice accepted; the float moved as approved */
		if (x->code != SOKOTERM_CODE_APPROVED &&
		    x->code != SOKOTERM_CODE_STORED)
			continue;
		f->c_approved++;
		own = &f->agents[f->terms[x->term].agent];
		if (x->is_reversed)
			continue; /* voided: moved nothing */
		switch (x->op) {
		case SOKOTERM_OP_FLOAT_TRANSFER: /* own float to another's */
			own->delta -= (int64_t)o->amount;
			f->agents[x->to].delta += (int64_t)o->amount;
			break;
		case SOKOTERM_OP_COLLECT:  /* the customer's wallet paid */
		case SOKOTERM_OP_CASH_OUT: /* the float for the cash */
			own->delta += (int64_t)o->amount;
			f->c_sum_delta += (int64_t)o->amount;
			break;
		default: /* CASH_IN, BILL_PAY: paid out of the float */
			own->delta -= (int64_t)o->amount;
			f->c_sum_delta -= (int64_t)o->amount;
			break;
		}
		if (x->check != CHK_OK && x->check != CHK_BAD) {
			char txn[2 * SOKOTERM_ID_LEN + 1];

			sim_prov_hex(txn, x->id, SOKOTERM_ID_LEN);
			problem(f, "status_unanswered txn=%s", txn);
		}
	}
	if (n_unresolved > 0)
		problem(f, "unresolved transactions=%llu",
		        (unsigned long long)n_unresolved);
	if (f->queue_left > 0)
		problem(f, "queue_left=%llu",
		        (unsigned long long)f->queue_left);
	if (o->is_eod && f->n_eod_left > 0)
		problem(f, "eod_unanswered terminals=%llu",
		        (unsigned long long)f->n_eod_left);
	if (o->http == NULL)
		return;
	if (balances(f, false) != 0) {
		problem(f, "balances unreadable");
		f->c_balances_bad = true;
		return;
	}
	f->c_balances = true;
	for (i = 0; i < f->n_agents; i++) {
		const struct fagent *g = &f->agents[i];

		f->c_sum_before += (uint64_t)g->before;
		f->c_sum_after += (uint64_t)g->after;
		if (g->after - g->before != g->delta) {
			sim_prov_amount_str(a, sizeof a, o->cur, g->delta);
			sim_prov_amount_str(b, sizeof b, o->cur,
			                    g->after - g->before);
			problem(f, "float_moved agent=%s want=%s got=%s",
			        g->code, a, b);
		}
	}
}

/* Set-up of one slice: queues, balances before, offline work. */
static int
fleet_prepare(struct fleet *f)
{
	if ((f->terms = calloc(f->n_terms, sizeof *f->terms)) == NULL ||
	    resolve(f) != 0 || tls_prepare(f) != 0 || agents_build(f) != 0 ||
	    terms_open(f) != 0)
		return -1;
	if ((f->ep = epoll_create1(EPOLL_CLOEXEC)) == -1) {
		fprintf(stderr, "soko-pos: epoll: %s\n", strerror(errno));
		return -1;
	}
	if (balances(f, true) != 0)
		return -1;
	if (f->o->offline > 0 && offline_fill(f) != 0)
		return -1;
	return 0;
}

/* RUN, DRAIN, CHECK of one slice; f->rc 0 when it ran to the end. */
static void
fleet_loop(struct fleet *f)
{
	const struct sim_fleet_opts *o = f->o;
	struct epoll_event evs[EV_MAX];
	bool is_ready_shown = false;
	size_t i;
	int n;

	f->t_start = sim_prov_mono_us();
	f->t_warm = f->t_start + (uint64_t)(o->warmup_s * 1e6);
	for (i = 0; i < f->n_tx; i++)
		f->tx[i].t0_us = f->t_start; /* --offline: replay from now */
	f->next_arrival = f->t_start;
	f->next_tick = f->t_start;
	f->next_drop = f->t_start + (uint64_t)(o->drop_every_s * 1e6);
	while (f->phase != PH_DONE) {
		uint64_t now = sim_prov_mono_us(), wake = f->next_tick;
		int timeout_ms;

		if (f->phase == PH_RUN && o->window == 0 && o->rate > 0 &&
		    f->next_arrival < wake)
			wake = f->next_arrival;
		if (drops_on(f) && f->next_drop < wake)
			wake = f->next_drop;
		timeout_ms = wake > now ? (int)((wake - now + 999) / 1000) : 0;
		n = epoll_wait(f->ep, evs, EV_MAX, timeout_ms);
		if (n == -1 && errno != EINTR) {
			fprintf(stderr, "soko-pos: epoll_wait: %s\n",
			        strerror(errno));
			f->rc = 2;
			return;
		}
		for (i = 0; n > 0 && i < (size_t)n; i++)
			on_io(evs[i].data.ptr, evs[i].events);
		now = sim_prov_mono_us();
		if (o->window == 0 && o->rate > 0)
			arrivals(f, now);
		drop_due(f, now);
		if (now >= f->next_tick) {
			f->next_tick = now + TICK_US;
			tick_all(f, now);
		}
		if (o->is_idle && !is_ready_shown &&
		    f->n_logged_in == f->n_terms) {
			/* bench/pos.sh waits for this line, then measures */
			printf("ready logged_in=%llu\n",
			       (unsigned long long)f->n_logged_in);
			fflush(stdout);
			is_ready_shown = true;
		}
		phase_next(f, now);
	}
	f->queue_left = queues_open(f);
	if (f->t_run_end == 0)
		f->t_run_end = sim_prov_mono_us();
	f->rc = 0;
}

static void *
fleet_thread(void *arg)
{
	struct fleet *f = arg;

	f->rc = fleet_prepare(f) == 0 ? 0 : 2;
	/* everyone starts together, or nobody runs (rc) */
	pthread_barrier_wait(f->bar);
	pthread_barrier_wait(f->bar);
	if (f->rc == 0)
		fleet_loop(f);
	if (f->rc == 0)
		check_one(f);
	return NULL;
}

static void
fleet_free(struct fleet *f)
{
	size_t i;

	for (i = 0; f->terms != NULL && i < f->n_terms; i++) {
		struct fterm *m = &f->terms[i];

		SSL_free(m->ssl);
		if (m->fd >= 0)
			close(m->fd);
		if (m->t != NULL)
			sokoterm_disconnect(m->t);
		sokoterm_free(m->t);
		free(m->backlog);
		free(m->mine);
	}
	if (f->ep >= 0)
		close(f->ep);
	SSL_CTX_free(f->tls);
	free(f->terms);
	free(f->agents);
	free(f->tx);
	free(f->ht);
	free(f->lat_us);
}

/* Adds slice s into the totals t (counters, latencies, times). */
static int
merge(struct fleet *t, const struct fleet *s)
{
	size_t i;

	if (s->n_lat > 0) {
		uint32_t *p = realloc(t->lat_us,
		                      (t->n_lat + s->n_lat) * sizeof *p);

		if (p == NULL)
			return -1;
		t->lat_us = p;
		memcpy(p + t->n_lat, s->lat_us, s->n_lat * sizeof *p);
		t->n_lat += s->n_lat;
	}
	t->n_terms += s->n_terms;
	t->n_agents += s->n_agents;
#define SUM(x) t->x += s->x
	SUM(n_offered);
	SUM(n_submitted);
	SUM(n_final);
	SUM(n_shed);
	SUM(n_reconnects);
	SUM(n_drops);
	SUM(n_link_down);
	SUM(n_delayed);
	SUM(n_held);
	SUM(n_login_fail);
	SUM(n_foreign);
	SUM(n_submit_err);
	SUM(n_tls_fail);
	SUM(n_checked);
	SUM(n_eod_ok);
	SUM(n_problems);
	SUM(n_late);
	SUM(n_logged_in);
	SUM(n_win);
	SUM(n_status_ok);
	SUM(queue_left);
	SUM(c_approved);
	SUM(c_sum_before);
	SUM(c_sum_after);
	SUM(c_sum_delta);
	SUM(n_pending);
	SUM(n_reads_ok);
	SUM(n_reversed);
	SUM(n_read_err);
#undef SUM
	for (i = 0; i < SIM_MIX_OPS; i++)
		t->ops[i] += s->ops[i];
	for (i = 0; i < 256; i++) {
		t->codes[i] += s->codes[i];
		t->rcodes[i] += s->rcodes[i];
	}
	if (t->t_start == 0 || s->t_start < t->t_start) {
		t->t_start = s->t_start;
		t->t_warm = s->t_warm;
	}
	t->t_run_end = MAXU(t->t_run_end, s->t_run_end);
	t->t_last_final = MAXU(t->t_last_final, s->t_last_final);
	t->c_balances = t->c_balances || s->c_balances;
	t->c_balances_bad = t->c_balances_bad || s->c_balances_bad;
	return 0;
}

int
sim_fleet_run(const struct sim_fleet_opts *o)
{
	struct fleet *fl = NULL, tot;
	struct sim_prov *prov = NULL;
	pthread_barrier_t bar;
	pthread_t th[THREADS_MAX];
	size_t n_prov = 0, n_terms, i, k, off;
	unsigned n_th = o->threads > 0 ? o->threads : 1;
	char err[512], a[64], b[64];
	int rc = 2;

	memset(&tot, 0, sizeof tot);
	tot.o = o;
	raise_nofile();
	if (sim_prov_load(&prov, &n_prov, o->provision_path, err,
	                  sizeof err) != 0) {
		fprintf(stderr, "soko-pos: %s\n", err);
		goto out;
	}
	n_terms = o->n_terminals != 0 ? o->n_terminals : n_prov;
	if (n_terms > n_prov) {
		fprintf(stderr, "soko-pos: --terminals %zu but %s has %zu\n",
		        n_terms, o->provision_path, n_prov);
		goto out;
	}
	if (n_th > THREADS_MAX || n_th > n_terms) {
		fprintf(stderr, "soko-pos: --threads %u: 1..%d and at most "
		                "one per terminal\n",
		        n_th, THREADS_MAX);
		goto out;
	}
	if ((fl = calloc(n_th, sizeof *fl)) == NULL)
		goto out;
	pthread_barrier_init(&bar, NULL, n_th + 1);
	/* thread k drives terminals [off, off + n_terms / n_th ...): its
	 * transfers stay between its own agents, so each slice checks its
	 * own floats */
	for (k = 0, off = 0; k < n_th; k++) {
		struct fleet *f = &fl[k];
		size_t n = n_terms / n_th + (k < n_terms % n_th ? 1 : 0);

		f->o = o;
		f->ep = -1;
		f->rng = (o->seed + k * 0x9E3779B97F4A7C15ULL) | 1;
		f->prov = prov + off;
		f->n_terms = n;
		f->bar = &bar;
		/* --rate is the whole fleet's: each slice offers its share
		 * (independent Poisson streams add up to one at --rate) */
		f->rate = o->rate * (double)n / (double)n_terms;
		f->n_prov_more = n_th == 1 ? n_prov - n : 0;
		off += n;
	}
	for (k = 0; k < n_th; k++)
		if (pthread_create(&th[k], NULL, fleet_thread, &fl[k]) != 0) {
			fprintf(stderr, "soko-pos: cannot start threads\n");
			exit(2);
		}
	pthread_barrier_wait(&bar);
	for (k = 0; k < n_th; k++)
		if (fl[k].rc != 0)
			for (i = 0; i < n_th; i++)
				fl[i].rc = 2; /* set-up failed: nobody runs */
	pthread_barrier_wait(&bar);
	for (k = 0; k < n_th; k++)
		pthread_join(th[k], NULL);
	pthread_barrier_destroy(&bar);
	for (k = 0; k < n_th; k++)
		if (fl[k].rc != 0)
			goto out;
	for (k = 0; k < n_th; k++)
		if (merge(&tot, &fl[k]) != 0) {
			fprintf(stderr, "soko-pos: out of memory\n");
			goto out;
		}
	report(&tot);
	printf("check approved=%llu status_ok=%llu",
	       (unsigned long long)tot.c_approved,
	       (unsigned long long)tot.n_checked);
	if (o->is_eod)
		printf(" eod_ok=%llu", (unsigned long long)tot.n_eod_ok);
	if (o->http == NULL) {
		printf(" balances=skipped (no --http)\n");
	} else if (!tot.c_balances || tot.c_balances_bad) {
		printf("\n");
	} else {
		sim_prov_amount_str(a, sizeof a, o->cur,
		                    (int64_t)tot.c_sum_before);
		sim_prov_amount_str(b, sizeof b, o->cur,
		                    (int64_t)tot.c_sum_after);
		printf(" agents=%zu float_sum_before=%s float_sum_after=%s\n",
		       tot.n_agents, a, b);
		if ((int64_t)tot.c_sum_after !=
		    (int64_t)tot.c_sum_before + tot.c_sum_delta) {
			/* float transfers move nothing in total; the rest
			 * move the approved amounts in or out */
			tot.n_problems++;
			printf("problem float_sum before=%s after=%s\n", a, b);
		}
	}
	if (tot.n_logged_in == 0) {
		/* nothing ran: a refused certificate, a wrong key for
		 * every terminal, a server that never answers */
		tot.n_problems++;
		printf("problem no terminal logged in\n");
	}
	if (tot.n_problems == 0)
		printf("check ok\n");
	else
		printf("check failed problems=%llu\n",
		       (unsigned long long)tot.n_problems);
	fflush(stdout);
	rc = tot.n_problems == 0 ? 0 : 1;
out:
	for (k = 0; fl != NULL && k < n_th; k++)
		fleet_free(&fl[k]);
	free(fl);
	free(tot.lat_us);
	if (prov != NULL)
		explicit_bzero(prov, n_prov * sizeof *prov);
	free(prov);
	return rc;
}
