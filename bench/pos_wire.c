/*
 * pos_wire.c - a wire-level load generator for the POS listener
 * (bench/pos.sh rows pos.e2e.sqlite.wire and pos.p99_ms_at_25k.wire;
 * docs/benchmarks.md "Server side alone").
 *
 *   pos_wire --server H:P --provision CSV [--terminals N] [--threads T]
 *            (--window W | --rate R) [--duration S] [--warmup S]
 *            [--drain S] [--amount MINOR] [--currency NUM]
 *            [--http H:P --admin-key-file F]
 *
 * Each connection is one provisioned terminal (the soko-pos CSV) speaking
 * docs/pos-protocol.md through protocols/pos.h: LOGIN and its session
 * key, MAC'd frames with strictly increasing counters, one FLOAT_TRANSFER
 * per frame to another agent of the file.  It keeps NO queue: it does not
 * store before it sends, so it is not a terminal and never replaces
 * soko-pos (libsokoterm) in a test.  What it is for: on this 2-core VM the
 * simulated fleet's own CPU (each terminal's SQLite queue) costs more per
 * transfer than sokod does, so soko-pos rounds measure the two together;
 * real terminals each have their own CPU.  This generator costs a few
 * microseconds per transfer, so its figures are sokod's (its durability
 * unchanged: every APPROVED is a committed, fsynced ledger transaction).
 *
 * Closed loop (--window W): each terminal keeps W requests in flight
 * (at most the server's max_inflight).  Open loop (--rate R): Poisson
 * arrivals at R/s over the whole run (each thread its share), each to a
 * random terminal; latency counts from the scheduled time, so a slow
 * server adds latency rather than removing load; an arrival finding its
 * terminal at max_inflight waits in that terminal's backlog (bounded:
 * beyond it the arrival is shed and counted).  Timers have microsecond
 * resolution (epoll_pwait2).
 *
 * The check at the end: every request answered (within --drain), every
 * answer APPROVED, and with --http every agent's float moved by exactly
 * the approved amounts (read before and after through the admin API).
 * Exit 0 when the check passes, 1 when it fails, 2 on a usage or setup
 * error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "pos.h"
#include "sha256.h"
#include "sim.h"

#define SLOTS_MAX  64    /* requests in flight per terminal (<= 255) */
#define BACKLOG    64    /* open loop: waiting arrivals per terminal */
#define RX_CAP     (2 * POS_FRAME_MAX)
#define TX_CAP     (SLOTS_MAX * 160)
#define EV_MAX     256
#define FIRMWARE   "pos_wire/1"
#define CONNECT_S  30    /* every terminal logged in by then */

enum wstate { W_CONNECTING, W_LOGIN, W_READY, W_DEAD };
enum phase { PH_LOGIN, PH_RUN, PH_DRAIN, PH_DONE };

struct wopts {
	char host[256], port[16];
	const char *provision, *http;
	char api_key[256];
	size_t terminals;
	unsigned threads, window;
	double rate, duration_s, warmup_s, drain_s;
	uint64_t amount;
	unsigned currency;
};

struct slot {
	uint32_t req_id; /* 0: free */
	uint32_t to;     /* payee agent index */
	uint64_t t0_us;  /* scheduled (open) or sent (closed) */
};

struct wterm {
	int fd;
	enum wstate state;
	size_t idx; /* in the provisioning file */
	uint32_t agent;
	uint8_t cn[POS_NONCE_LEN];
	struct pos_key ks;
	uint64_t next_tx, last_rx;
	uint32_t next_req, login_req;
	unsigned max_inflight, inflight;
	struct slot slots[SLOTS_MAX];
	uint64_t backlog[BACKLOG];
	unsigned bl_head, bl_len;
	uint8_t rx[RX_CAP];
	size_t rx_len;
	uint8_t tx[TX_CAP];
	size_t tx_len;
	bool want_out;
};

struct wthread {
	pthread_t th;
	const struct wopts *o;
	struct wterm *terms;
	size_t n_terms;
	int ep;
	double rate;
	uint64_t rng;
	uint64_t id_seq;
	enum phase phase;
	uint64_t t_start, t_warm, t_end, next_arrival;
	/* results */
	uint32_t *lat_us;
	size_t n_lat, cap_lat;
	uint64_t n_sent, n_answered, n_win, n_offered, n_shed, n_approved;
	uint64_t n_unanswered, n_dead, n_foreign;
	uint64_t codes[256];
	int64_t *delta; /* per agent: approved in - out, minor units */
	int rc;
};

/* shared, read-only after load */
static struct sim_prov *g_prov;
static size_t g_n_prov, g_n_loaded; /* used, and read from the file */
static uint32_t *g_agent_of; /* terminal -> agent index */
static char (*g_agents)[33];
static const char **g_agent_acct;
static size_t g_n_agents;
static struct addrinfo *g_addr;
static pthread_barrier_t g_ready;
static uint64_t g_t_start; /* set by one thread between two barriers */

static void
die(const char *msg)
{
	fprintf(stderr, "pos_wire: %s\n", msg);
	exit(2);
}

static uint64_t
now_us(void)
{
	return sim_prov_mono_us();
}

static uint64_t
rnd(struct wthread *w)
{
	/* xorshift64*: load shaping only, never key material */
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static double
rnd_unit(struct wthread *w)
{
	return ((double)(rnd(w) >> 11) + 0.5) / 9007199254740992.0;
}

/* A version-7 UUID: 48 bits of Unix ms, then this process's random bits
 * and a per-thread sequence, so ids never repeat within a run. */
static void
txn_id(struct wthread *w, uint8_t id[POS_ID_LEN])
{
	struct timespec ts;
	uint64_t ms, r = rnd(w), s = ++w->id_seq;
	int i;

	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (i = 0; i < 6; i++)
		id[i] = (uint8_t)(ms >> (40 - 8 * i));
	id[6] = (uint8_t)(0x70 | ((r >> 60) & 0x0f));
	id[7] = (uint8_t)(r >> 52);
	id[8] = (uint8_t)(0x80 | ((r >> 46) & 0x3f));
	id[9] = (uint8_t)(r >> 38);
	id[10] = (uint8_t)(r >> 30);
	for (i = 0; i < 4; i++)
		id[11 + i] = (uint8_t)(s >> (24 - 8 * i));
	id[15] = (uint8_t)(r >> 22);
}

static void
lat_add(struct wthread *w, uint64_t us)
{
	if (w->n_lat == w->cap_lat) {
		size_t cap = w->cap_lat ? 2 * w->cap_lat : 65536;
		uint32_t *p = realloc(w->lat_us, cap * sizeof *p);

		if (p == NULL)
			die("out of memory");
		w->lat_us = p;
		w->cap_lat = cap;
	}
	w->lat_us[w->n_lat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static void
term_dead(struct wthread *w, struct wterm *m, const char *why)
{
	if (m->state == W_DEAD)
		return;
	fprintf(stderr, "pos_wire: terminal %s: %s\n",
	        g_prov[m->idx].terminal_id, why);
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
	m->state = W_DEAD;
	w->n_dead++;
	w->n_unanswered += m->inflight;
	m->inflight = 0;
	w->n_shed += m->bl_len;
	m->bl_len = 0;
}

static void
arm(struct wthread *w, struct wterm *m, bool out)
{
	struct epoll_event ev;

	if (m->want_out == out)
		return;
	m->want_out = out;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.ptr = m;
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, m->fd, &ev) != 0)
		term_dead(w, m, "epoll_ctl");
}

/* Writes what tx holds; the rest waits for EPOLLOUT. */
static void
flush(struct wthread *w, struct wterm *m)
{
	size_t off = 0;

	while (off < m->tx_len) {
		ssize_t n = send(m->fd, m->tx + off, m->tx_len - off,
		                 MSG_NOSIGNAL);

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		term_dead(w, m, "send failed");
		return;
	}
	memmove(m->tx, m->tx + off, m->tx_len - off);
	m->tx_len -= off;
	arm(w, m, m->tx_len > 0);
}

/* One FLOAT_TRANSFER frame into tx (flushed by the caller). */
static bool
submit(struct wthread *w, struct wterm *m, uint64_t t0)
{
	const struct wopts *o = w->o;
	struct pos_msg msg;
	struct pos_hdr h;
	struct slot *s = NULL;
	const char *why = "";
	uint32_t to;
	size_t n = 0, i;

	for (i = 0; i < m->max_inflight; i++)
		if (m->slots[i].req_id == 0) {
			s = &m->slots[i];
			break;
		}
	if (s == NULL || TX_CAP - m->tx_len < 256)
		return false;
	to = (uint32_t)(rnd(w) % (g_n_agents - 1));
	if (to >= m->agent)
		to++;
	memset(&msg, 0, sizeof msg);
	msg.type = POS_MSG_FLOAT_TRANSFER;
	txn_id(w, msg.u.float_transfer.txn_id);
	msg.u.float_transfer.amount = o->amount;
	msg.u.float_transfer.currency = o->currency;
	msg.u.float_transfer.to_agent.ptr = (const uint8_t *)g_agents[to];
	msg.u.float_transfer.to_agent.len = strlen(g_agents[to]);
	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = POS_MSG_FLOAT_TRANSFER;
	if (++m->next_req == 0)
		m->next_req = 1;
	h.req_id = m->next_req;
	h.counter = m->next_tx;
	if (pos_encode_key(m->tx + m->tx_len, TX_CAP - m->tx_len, &h, &msg,
	                   &m->ks, &n, &why) != CODEC_OK) {
		term_dead(w, m, why);
		return false;
	}
	m->next_tx++;
	m->tx_len += n;
	s->req_id = h.req_id;
	s->to = to;
	s->t0_us = t0;
	m->inflight++;
	w->n_sent++;
	return true;
}

static void
send_login(struct wthread *w, struct wterm *m)
{
	const struct sim_prov *p = &g_prov[m->idx];
	struct pos_msg msg;
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0;

	if (getrandom(m->cn, sizeof m->cn, 0) != (ssize_t)sizeof m->cn) {
		term_dead(w, m, "getrandom");
		return;
	}
	memset(&msg, 0, sizeof msg);
	msg.type = POS_MSG_LOGIN;
	msg.u.login.terminal_id.ptr = (const uint8_t *)p->terminal_id;
	msg.u.login.terminal_id.len = strlen(p->terminal_id);
	memcpy(msg.u.login.client_nonce, m->cn, POS_NONCE_LEN);
	msg.u.login.firmware.ptr = (const uint8_t *)FIRMWARE;
	msg.u.login.firmware.len = strlen(FIRMWARE);
	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = POS_MSG_LOGIN;
	h.req_id = m->login_req = ++m->next_req;
	if (pos_encode(m->tx, TX_CAP, &h, &msg, p->key, &n, &why) !=
	    CODEC_OK) {
		term_dead(w, m, why);
		return;
	}
	m->tx_len = n;
	m->state = W_LOGIN;
	flush(w, m);
}

/* Sends what this terminal may send now: its backlog (open loop) or
 * its window (closed loop). */
static void
offer(struct wthread *w, struct wterm *m)
{
	if (m->state != W_READY)
		return;
	if (w->o->window > 0) {
		unsigned win = w->o->window < m->max_inflight
		                   ? w->o->window
		                   : m->max_inflight;

		while (w->phase == PH_RUN && m->inflight < win &&
		       submit(w, m, now_us()))
			;
	} else {
		while (m->bl_len > 0 && submit(w, m, m->backlog[m->bl_head])) {
			m->bl_head = (m->bl_head + 1) % BACKLOG;
			m->bl_len--;
		}
	}
}

static void
on_login(struct wthread *w, struct wterm *m, const struct pos_frame *f)
{
	const struct sim_prov *p = &g_prov[m->idx];
	struct pos_msg msg;
	uint8_t ks[POS_KEY_LEN];
	const char *why = "";

	if (f->hdr.type != POS_MSG_LOGIN_OK ||
	    pos_frame_open(&msg, f, p->key, POS_S2T, NULL, &why) !=
	        POS_CODE_APPROVED ||
	    f->hdr.req_id != m->login_req ||
	    memcmp(msg.u.login_ok.client_nonce, m->cn, POS_NONCE_LEN) != 0) {
		term_dead(w, m, "login refused");
		return;
	}
	pos_session_key(ks, p->key, (const uint8_t *)p->terminal_id,
	                strlen(p->terminal_id), m->cn,
	                msg.u.login_ok.server_nonce);
	pos_key_init(&m->ks, ks);
	sha256_wipe(ks, sizeof ks);
	m->next_tx = 1;
	m->last_rx = 0;
	m->max_inflight = msg.u.login_ok.max_inflight < SLOTS_MAX
	                      ? (unsigned)msg.u.login_ok.max_inflight
	                      : SLOTS_MAX;
	if (m->max_inflight == 0)
		m->max_inflight = 1;
	m->state = W_READY;
}

static void
on_answer(struct wthread *w, struct wterm *m, const struct pos_frame *f)
{
	struct pos_msg msg;
	const char *why = "";
	unsigned code;
	uint64_t t = now_us();
	size_t i;

	if (pos_frame_open_key(&msg, f, &m->ks, POS_S2T, &m->last_rx, &why) !=
	    POS_CODE_APPROVED) {
		term_dead(w, m, why);
		return;
	}
	if (f->hdr.type == POS_MSG_FLOAT_TRANSFER_RESP)
		code = (unsigned)msg.u.float_transfer_resp.code;
	else if ((f->hdr.type & POS_TYPE_FAIL) == POS_TYPE_FAIL)
		code = (unsigned)msg.u.error.code;
	else {
		w->n_foreign++; /* a push: nothing a float transfer causes */
		return;
	}
	for (i = 0; i < m->max_inflight; i++)
		if (m->slots[i].req_id == f->hdr.req_id &&
		    f->hdr.req_id != 0)
			break;
	if (i == m->max_inflight) {
		w->n_foreign++;
		return;
	}
	m->inflight--;
	w->n_answered++;
	w->codes[code & 0xff]++;
	if (code == POS_CODE_APPROVED) {
		w->n_approved++;
		w->delta[m->agent] -= (int64_t)w->o->amount;
		w->delta[m->slots[i].to] += (int64_t)w->o->amount;
	}
	/* the window counts answers by when they came, as soko-pos does */
	if (t >= w->t_warm && t < w->t_end) {
		lat_add(w, t > m->slots[i].t0_us ? t - m->slots[i].t0_us : 0);
		w->n_win++;
	}
	m->slots[i].req_id = 0;
}

static void
on_readable(struct wthread *w, struct wterm *m)
{
	size_t off = 0;

	/* one read per readiness (level-triggered: the rest comes at the
	 * next turn); what stays in rx after decoding is less than one
	 * frame, so RX_CAP (two frames) always leaves room */
	ssize_t n;

	do
		n = recv(m->fd, m->rx + m->rx_len, RX_CAP - m->rx_len, 0);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		term_dead(w, m, "server closed the connection");
		return;
	}
	if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		term_dead(w, m, "recv failed");
		return;
	}
	if (n > 0)
		m->rx_len += (size_t)n;
	while (m->state != W_DEAD) {
		struct pos_frame f;
		const char *why = "";
		size_t used = 0;
		enum codec_rc rc = pos_frame_decode(&f, m->rx + off,
		                                    m->rx_len - off, &used, &why);

		if (rc == CODEC_NEED_MORE)
			break;
		if (rc != CODEC_OK) {
			term_dead(w, m, why);
			return;
		}
		if (m->state == W_LOGIN)
			on_login(w, m, &f);
		else
			on_answer(w, m, &f);
		off += used;
	}
	if (m->state == W_DEAD)
		return;
	memmove(m->rx, m->rx + off, m->rx_len - off);
	m->rx_len -= off;
	offer(w, m);
	if (m->tx_len > 0)
		flush(w, m);
}

static void
on_connected(struct wthread *w, struct wterm *m)
{
	int err = 0;
	socklen_t len = sizeof err;

	if (getsockopt(m->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
	    err != 0) {
		term_dead(w, m, "connect failed");
		return;
	}
	send_login(w, m);
}

static void
connect_term(struct wthread *w, struct wterm *m)
{
	struct epoll_event ev;
	int one = 1;

	m->fd = socket(g_addr->ai_family,
	               g_addr->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
	               g_addr->ai_protocol);
	if (m->fd < 0)
		die("socket (raise ulimit -n?)");
	(void)setsockopt(m->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	m->state = W_CONNECTING;
	m->want_out = true;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.ptr = m;
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, m->fd, &ev) != 0)
		die("epoll_ctl");
	if (connect(m->fd, g_addr->ai_addr, g_addr->ai_addrlen) != 0 &&
	    errno != EINPROGRESS)
		term_dead(w, m, "connect failed");
}

static void
arrivals(struct wthread *w, uint64_t now)
{
	while (w->phase == PH_RUN && w->next_arrival <= now) {
		struct wterm *m = &w->terms[rnd(w) % w->n_terms];

		w->n_offered++;
		if (m->state == W_DEAD || m->bl_len == BACKLOG) {
			w->n_shed++;
		} else {
			m->backlog[(m->bl_head + m->bl_len) % BACKLOG] =
			    w->next_arrival;
			m->bl_len++;
			offer(w, m);
			if (m->tx_len > 0)
				flush(w, m);
		}
		w->next_arrival +=
		    (uint64_t)(-log(rnd_unit(w)) / w->rate * 1e6) + 1;
	}
}

static bool
all_idle(const struct wthread *w)
{
	size_t i;

	for (i = 0; i < w->n_terms; i++)
		if (w->terms[i].state != W_DEAD &&
		    (w->terms[i].inflight > 0 || w->terms[i].bl_len > 0))
			return false;
	return true;
}

static bool
all_logged_in(const struct wthread *w)
{
	size_t i;

	for (i = 0; i < w->n_terms; i++)
		if (w->terms[i].state == W_CONNECTING ||
		    w->terms[i].state == W_LOGIN)
			return false;
	return true;
}

static void *
thread_main(void *arg)
{
	struct wthread *w = arg;
	const struct wopts *o = w->o;
	struct epoll_event evs[EV_MAX];
	uint64_t t_login = now_us(), t_drain_end = 0;
	size_t i;

	for (i = 0; i < w->n_terms; i++)
		connect_term(w, &w->terms[i]);
	while (w->phase != PH_DONE) {
		uint64_t now = now_us(), wake = now + 10000;
		struct timespec ts;
		int n, k;

		if (w->phase == PH_RUN && o->rate > 0 &&
		    w->next_arrival < wake)
			wake = w->next_arrival;
		if (w->phase == PH_RUN && w->t_end < wake)
			wake = w->t_end;
		wake = wake > now ? wake - now : 0;
		ts.tv_sec = (time_t)(wake / 1000000);
		ts.tv_nsec = (long)(wake % 1000000) * 1000;
		n = epoll_pwait2(w->ep, evs, EV_MAX, &ts, NULL);
		if (n < 0 && errno != EINTR)
			die("epoll_pwait2");
		for (k = 0; k < n; k++) {
			struct wterm *m = evs[k].data.ptr;

			if (m->state == W_DEAD)
				continue;
			if (m->state == W_CONNECTING) {
				on_connected(w, m);
				continue;
			}
			if (evs[k].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(w, m);
			if (m->state != W_DEAD && (evs[k].events & EPOLLOUT))
				flush(w, m);
		}
		now = now_us();
		switch (w->phase) {
		case PH_LOGIN:
			if (all_logged_in(w) ||
			    now - t_login > CONNECT_S * 1000000ull) {
				for (i = 0; i < w->n_terms; i++)
					if (w->terms[i].state != W_READY)
						term_dead(w, &w->terms[i],
						          "not logged in");
				/* every thread starts the load together,
				 * at one time */
				if (pthread_barrier_wait(&g_ready) ==
				    PTHREAD_BARRIER_SERIAL_THREAD)
					g_t_start = now_us();
				pthread_barrier_wait(&g_ready);
				w->t_start = g_t_start;
				w->t_warm = w->t_start +
				            (uint64_t)(o->warmup_s * 1e6);
				w->t_end =
				    w->t_warm + (uint64_t)(o->duration_s * 1e6);
				w->next_arrival = w->t_start;
				w->phase = PH_RUN;
				for (i = 0; i < w->n_terms; i++) {
					offer(w, &w->terms[i]);
					if (w->terms[i].tx_len > 0)
						flush(w, &w->terms[i]);
				}
			}
			break;
		case PH_RUN:
			if (o->rate > 0)
				arrivals(w, now < w->t_end ? now : w->t_end);
			if (now >= w->t_end) {
				w->phase = PH_DRAIN;
				t_drain_end = now + (uint64_t)(o->drain_s * 1e6);
			}
			break;
		case PH_DRAIN:
			if (all_idle(w) || now >= t_drain_end)
				w->phase = PH_DONE;
			break;
		case PH_DONE:
			break;
		}
	}
	for (i = 0; i < w->n_terms; i++) {
		struct wterm *m = &w->terms[i];

		if (m->state != W_DEAD) {
			w->n_unanswered += m->inflight;
			w->n_shed += m->bl_len;
			close(m->fd);
		}
		sha256_wipe(&m->ks, sizeof m->ks);
	}
	return NULL;
}

static int
cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static double
pct_ms(const uint32_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)ceil(p * (double)n);
	i = i == 0 ? 0 : i - 1;
	return v[i < n ? i : n - 1] / 1000.0;
}

static void
load_agents(void)
{
	size_t i, j;

	g_agents = calloc(g_n_prov, sizeof *g_agents);
	g_agent_acct = calloc(g_n_prov, sizeof *g_agent_acct);
	g_agent_of = calloc(g_n_prov, sizeof *g_agent_of);
	if (g_agents == NULL || g_agent_acct == NULL || g_agent_of == NULL)
		die("out of memory");
	/* one terminal per agent in pos_setup's files: quadratic only
	 * where several terminals share an agent */
	for (i = 0; i < g_n_prov; i++) {
		for (j = g_n_agents; j > 0; j--)
			if (strcmp(g_agents[j - 1], g_prov[i].agent) == 0)
				break;
		if (j == 0) {
			j = ++g_n_agents;
			memcpy(g_agents[j - 1], g_prov[i].agent,
			       sizeof g_agents[0]);
			g_agent_acct[j - 1] = g_prov[i].float_account;
		}
		g_agent_of[i] = (uint32_t)(j - 1);
	}
	if (g_n_agents < 2)
		die("the provisioning file needs two agents at least");
}

/* Every agent's float balance, through the admin API. */
static int
balances(const struct wopts *o, int64_t *out)
{
	const struct sim_currency *cur;
	char num[8], err[256];
	size_t i;

	snprintf(num, sizeof num, "%u", o->currency);
	cur = sim_prov_currency(num);
	if (cur == NULL)
		die("unknown --currency");
	for (i = 0; i < g_n_agents; i++)
		if (sim_http_balance(o->http, o->api_key, g_agent_acct[i], cur,
		                     &out[i], err, sizeof err) != 0) {
			fprintf(stderr, "pos_wire: balance of %s: %s\n",
			        g_agent_acct[i], err);
			return -1;
		}
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: pos_wire --server H:P --provision CSV "
	        "[--terminals N] [--threads T]\n"
	        "       (--window W | --rate R) [--duration S] [--warmup S] "
	        "[--drain S]\n"
	        "       [--amount MINOR] [--currency NUM] "
	        "[--http H:P --admin-key-file F]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"server", required_argument, NULL, 's'},
	    {"provision", required_argument, NULL, 'p'},
	    {"terminals", required_argument, NULL, 'n'},
	    {"threads", required_argument, NULL, 't'},
	    {"window", required_argument, NULL, 'w'},
	    {"rate", required_argument, NULL, 'r'},
	    {"duration", required_argument, NULL, 'd'},
	    {"warmup", required_argument, NULL, 'W'},
	    {"drain", required_argument, NULL, 'D'},
	    {"amount", required_argument, NULL, 'a'},
	    {"currency", required_argument, NULL, 'c'},
	    {"http", required_argument, NULL, 'h'},
	    {"admin-key-file", required_argument, NULL, 'k'},
	    {NULL, 0, NULL, 0},
	};
	struct wopts o;
	struct wthread *ws;
	struct addrinfo hints;
	const char *server = NULL, *key_file = NULL;
	char err[256];
	int64_t *before = NULL, *after = NULL, *delta;
	uint32_t *lat;
	size_t n_lat = 0, i, j, per;
	uint64_t sent = 0, answered = 0, win = 0, offered = 0, shed = 0;
	uint64_t approved = 0, unanswered = 0, dead = 0, foreign = 0;
	uint64_t codes[256] = {0};
	bool ok = true;
	int c;

	memset(&o, 0, sizeof o);
	o.threads = 1;
	o.duration_s = 10;
	o.warmup_s = 2;
	o.drain_s = 30;
	o.amount = 100;
	o.currency = 404;
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'p': o.provision = optarg; break;
		case 'n': o.terminals = strtoul(optarg, NULL, 10); break;
		case 't': o.threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'w': o.window = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': o.rate = strtod(optarg, NULL); break;
		case 'd': o.duration_s = strtod(optarg, NULL); break;
		case 'W': o.warmup_s = strtod(optarg, NULL); break;
		case 'D': o.drain_s = strtod(optarg, NULL); break;
		case 'a': o.amount = strtoull(optarg, NULL, 10); break;
		case 'c': o.currency = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'h': o.http = optarg; break;
		case 'k': key_file = optarg; break;
		default: usage();
		}
	}
	if (server == NULL || o.provision == NULL ||
	    (o.window == 0) == (o.rate <= 0) || o.threads == 0 ||
	    o.threads > 64 || o.window > SLOTS_MAX || o.duration_s <= 0 ||
	    o.warmup_s < 0 || o.amount == 0 || (o.http == NULL) != (key_file == NULL))
		usage();
	if (sim_prov_hostport(o.host, sizeof o.host, o.port, sizeof o.port,
	                      server) != 0)
		die("bad --server");
	if (key_file != NULL &&
	    sim_prov_read_secret(o.api_key, sizeof o.api_key, key_file) != 0)
		die("cannot read --admin-key-file");
	if (sim_prov_load(&g_prov, &g_n_prov, o.provision, err, sizeof err) !=
	    0)
		die(err);
	g_n_loaded = g_n_prov;
	if (o.terminals > 0 && o.terminals < g_n_prov)
		g_n_prov = o.terminals;
	if (o.threads > g_n_prov)
		o.threads = (unsigned)g_n_prov;
	load_agents();
	memset(&hints, 0, sizeof hints);
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(o.host, o.port, &hints, &g_addr) != 0)
		die("cannot resolve --server");
	if (o.http != NULL) {
		before = calloc(g_n_agents, sizeof *before);
		after = calloc(g_n_agents, sizeof *after);
		if (before == NULL || after == NULL)
			die("out of memory");
		if (balances(&o, before) != 0)
			return 2;
	}

	ws = calloc(o.threads, sizeof *ws);
	if (ws == NULL)
		die("out of memory");
	pthread_barrier_init(&g_ready, NULL, o.threads);
	per = (g_n_prov + o.threads - 1) / o.threads;
	for (i = 0, j = 0; i < o.threads; i++, j += per) {
		struct wthread *w = &ws[i];
		size_t k;

		w->o = &o;
		w->n_terms = j + per <= g_n_prov ? per : g_n_prov - j;
		w->terms = calloc(w->n_terms, sizeof *w->terms);
		w->delta = calloc(g_n_agents, sizeof *w->delta);
		if (w->terms == NULL || w->delta == NULL)
			die("out of memory");
		for (k = 0; k < w->n_terms; k++) {
			w->terms[k].fd = -1;
			w->terms[k].idx = j + k;
			w->terms[k].agent = g_agent_of[j + k];
		}
		w->rate = o.rate * (double)w->n_terms / (double)g_n_prov;
		if (getrandom(&w->rng, sizeof w->rng, 0) != sizeof w->rng ||
		    w->rng == 0)
			w->rng = 0x9e3779b97f4a7c15ull + i;
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		if (w->ep < 0)
			die("epoll_create1");
	}
	for (i = 0; i < o.threads; i++)
		if (pthread_create(&ws[i].th, NULL, thread_main, &ws[i]) != 0)
			die("pthread_create");
	for (i = 0; i < o.threads; i++)
		pthread_join(ws[i].th, NULL);

	delta = calloc(g_n_agents, sizeof *delta);
	if (delta == NULL)
		die("out of memory");
	for (i = 0; i < o.threads; i++) {
		const struct wthread *w = &ws[i];

		sent += w->n_sent;
		answered += w->n_answered;
		win += w->n_win;
		offered += w->n_offered;
		shed += w->n_shed;
		approved += w->n_approved;
		unanswered += w->n_unanswered;
		dead += w->n_dead;
		foreign += w->n_foreign;
		n_lat += w->n_lat;
		for (j = 0; j < 256; j++)
			codes[j] += w->codes[j];
		for (j = 0; j < g_n_agents; j++)
			delta[j] += w->delta[j];
	}
	lat = malloc((n_lat ? n_lat : 1) * sizeof *lat);
	if (lat == NULL)
		die("out of memory");
	for (i = 0, n_lat = 0; i < o.threads; i++) {
		memcpy(lat + n_lat, ws[i].lat_us, ws[i].n_lat * sizeof *lat);
		n_lat += ws[i].n_lat;
	}
	qsort(lat, n_lat, sizeof *lat, cmp_u32);

	printf("wire terminals=%zu agents=%zu mode=%s", g_n_prov, g_n_agents,
	       o.window > 0 ? "closed" : "open");
	if (o.window > 0)
		printf(" window=%u", o.window);
	else
		printf(" rate=%.1f arrivals=poisson", o.rate);
	printf(" threads=%u\n", o.threads);
	printf("window warmup_s=%.3f window_s=%.3f answered=%" PRIu64
	       " answered_per_s=%.1f\n",
	       o.warmup_s, o.duration_s, win, (double)win / o.duration_s);
	printf("latency_ms p50=%.3f p99=%.3f p99.9=%.3f max=%.3f\n",
	       pct_ms(lat, n_lat, 0.50), pct_ms(lat, n_lat, 0.99),
	       pct_ms(lat, n_lat, 0.999), pct_ms(lat, n_lat, 1.0));
	printf("codes");
	for (j = 0; j < 256; j++)
		if (codes[j] > 0)
			printf(" %s=%" PRIu64, pos_code_name((unsigned)j),
			       codes[j]);
	printf("\nsent=%" PRIu64 " answered=%" PRIu64 " offered=%" PRIu64
	       " shed=%" PRIu64 " unanswered=%" PRIu64 " dead=%" PRIu64
	       " foreign=%" PRIu64 "\n",
	       sent, answered, offered, shed, unanswered, dead, foreign);

	if (unanswered > 0 || dead > 0 || answered != sent ||
	    approved != answered) {
		printf("check problem: %" PRIu64 " unanswered, %" PRIu64
		       " terminals lost, %" PRIu64 " not approved\n",
		       unanswered, dead, answered - approved);
		ok = false;
	}
	if (o.http != NULL) {
		if (balances(&o, after) != 0)
			ok = false; /* said why; the run is not checked */
		for (j = 0; j < g_n_agents; j++)
			if (after[j] - before[j] != delta[j]) {
				printf("check problem: %s moved %" PRId64
				       ", approved %" PRId64 "\n",
				       g_agent_acct[j], after[j] - before[j],
				       delta[j]);
				ok = false;
			}
	}
	printf("check %s approved=%" PRIu64 " balances=%s\n",
	       ok ? "ok" : "failed", approved,
	       o.http != NULL ? "checked" : "skipped (no --http)");
	for (i = 0; i < o.threads; i++) {
		close(ws[i].ep);
		free(ws[i].terms);
		free(ws[i].lat_us);
		free(ws[i].delta);
	}
	free(ws);
	free(lat);
	free(delta);
	free(before);
	free(after);
	freeaddrinfo(g_addr);
	pthread_barrier_destroy(&g_ready);
	free(g_agents);
	free(g_agent_acct);
	free(g_agent_of);
	for (i = 0; i < g_n_loaded; i++)
		sha256_wipe(g_prov[i].key, sizeof g_prov[i].key);
	free(g_prov);
	return ok ? 0 : 1;
}
