/*
 * net_pos.c - POS terminal listener: sockets, buffers, timers
 * (net_pos.h, docs/pos-protocol.md §2-3, §4.6).
 *
 * One struct conn owns its transport, its session (svc_pos) and its
 * deadline; conn_free() releases all of it.  A connection is never freed
 * inside its own callback: close marks it dead and a deferred event
 * (reap) frees it, and only once no storage job still points at it.
 *
 * Two transports behind the same frame loop:
 *  - plaintext: the socket is in the listener's own epoll set (one
 *    libevent event for all of them) and the connection's one deadline
 *    (login, idle, write or closing flush) is in a timing wheel ticked
 *    every TICK_MS.  No buffer is kept while idle: bytes are read into
 *    the listener's scratch buffer, only an unfinished frame is copied
 *    into a buffer of the connection's own, and output the kernel did not
 *    take at once goes into an evbuffer that is freed once drained.  An
 *    idle logged-in terminal costs its struct conn (from a slab) and
 *    nothing else in user memory (pos.idle_conn_bytes,
 *    docs/benchmarks.md): no struct event, no libevent per-fd entry.
 *  - TLS (pos_tls_cert_file): a bufferevent_openssl (TLS 1.2+) and a
 *    login/closing timer in a struct conn_tls; the handshake is part of
 *    CONNECTED and bounded by the login deadline.  The protocol's MAC and
 *    counters are checked exactly as without TLS.
 *
 * Read-only requests (svc_pos_op.is_read) go to reader threads
 * (readq.h, pos_readers) so they never wait behind a group commit.
 *
 * Bounds: input holds at most two maximal frames; output past
 * pos_output_max stops reading from that peer until it drains; login
 * (absolute from accept, handshake included), idle (3 x heartbeat of
 * silence), write (no progress) and closing-flush timeouts, late by at
 * most TICK_MS in plaintext; at most pos_max_inflight requests per
 * connection (svc_pos answers BUSY) and pos_max_conns connections.
 */
#include "net_pos.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "cbor.h"
#include "log.h"
#include "metrics.h"
#include "net_http.h"
#include "net_prov.h"
#include "readq.h"
#include "svc_pos.h"
#include "util.h"

#define CLOSE_FLUSH_S 5 /* CLOSING: flush output within (§3.2) */
#define IN_MAX        (2 * POS_FRAME_MAX) /* input held per connection */
#define TICK_MS       100                 /* timing wheel resolution */
#define WHEEL_SLOTS   1024 /* 102.4 s per turn; longer deadlines go round */
#define EP_BATCH      256  /* epoll events taken per call */
#define TRIM_OPS      256  /* see on_tick */
#define TERM_BUCKETS  4096 /* by_term hash heads */

/* Which deadline a plaintext connection waits for. */
enum deadline {
	DL_NONE,  /* not in the wheel yet */
	DL_LOGIN, /* CONNECTED: accept + pos_login_timeout_ms (absolute) */
	DL_IDLE,  /* LOGGED_IN, nothing to send: 3 x heartbeat of silence */
	DL_WRITE, /* output waiting: pos_write_timeout_ms without progress */
	DL_CLOSE, /* CLOSING: CLOSE_FLUSH_S to flush, then closed */
};

/* A TLS connection's transport (plaintext ones have none). */
struct conn_tls {
	struct bufferevent *bev; /* NULL once reaped */
	struct event timer;      /* login deadline, then closing flush */
};

struct conn {
	struct net_pos *p;
	/* plaintext: its wheel slot's list; TLS: p->tls_live; dead:
	 * p->dead */
	struct conn *prev, *next;
	struct conn_tls *tls; /* NULL: plaintext */
	uint8_t *in;          /* plaintext: unfinished input, or NULL */
	struct evbuffer *out; /* plaintext: unsent output, or NULL */
	int fd;               /* plaintext; -1 once closed */
	uint32_t due;         /* plaintext: deadline, in ticks */
	uint32_t slot_due;    /* the tick of the wheel slot it sits in */
	uint32_t n_ops;       /* storage jobs pointing at this conn */
	uint16_t in_len;      /* bytes at in (< IN_MAX) */
	uint8_t ep;           /* plaintext: EPOLLIN|EPOLLOUT registered */
	uint8_t deadline;     /* plaintext: enum deadline */
	/* one byte of flags: the struct stays at 272 bytes, 8 per idle
	 * terminal that the 512-byte budget needs (docs/benchmarks.md) */
	bool is_dead : 1;      /* closed; waiting to be freed */
	bool is_logged_in : 1; /* timeouts switched to idle */
	bool is_throttled : 1; /* reading stopped: output too big */
	bool is_in_wheel : 1;  /* plaintext, live */
	bool is_indexed : 1;   /* in p->by_term (logged in, not closed) */
	bool is_rpc : 1;       /* an HTTP /rpc session: no transport */
	struct conn *tnext;   /* p->by_term chain */
	struct svc_pos_session sess;
};

/*
 * Connections come from slabs of CONN_SLAB: no malloc header per
 * connection, and no holes left between connections by the requests'
 * short-lived allocations (a LOGIN op is ~2.6 kB).  A freed connection
 * goes back to the free list; slabs are kept until net_pos_free, so the
 * memory held is that of the most connections ever open at once
 * (<= pos_max_conns).
 */
#define CONN_SLAB 128
struct conn_slab {
	struct conn_slab *next;
	struct conn conns[CONN_SLAB];
};

struct net_pos {
	struct event_base *base;
	struct dbq *dbq;
	struct readq *rq; /* NULL: pos_readers 0, reads go to dbq */
	const struct config *cfg;
	SSL_CTX *tls; /* NULL: plaintext */
	struct evconnlistener *lst;
	struct event *reap_ev;
	struct event *rq_ev; /* readers' wake-up (rq_fd) */
	int rq_fd;
	int epfd;            /* plaintext sockets */
	struct event *ep_ev; /* epfd readable */
	struct event *tick_ev;
	int64_t t0_ms;      /* monotonic ms of tick 0 */
	uint32_t done_tick; /* wheel slots processed up to this tick */
	struct conn *wheel[WHEEL_SLOTS];
	struct conn *tls_live, *dead;
	struct conn_slab *slabs;
	struct conn *free_conns; /* linked by next */
	struct svc_pos svc;
	size_t n_conns;  /* live */
	size_t n_ops;    /* storage jobs in flight, all connections */
	size_t ops_peak; /* most n_ops since the last trim */
	uint32_t trim_tick; /* tick of the last trim */
	bool is_draining;
	/* logged-in connections by terminal id, for COLLECT_RESULT pushes
	 * (net_pos_set_prov); chained, TERM_BUCKETS heads */
	struct conn *by_term[TERM_BUCKETS];
	struct svc_pos_pay pay; /* the payment service, once set */
	struct net_prov *prov;
	struct bwait *waits; /* BILL_PAYs waiting for their outcome */
	/* metrics (loop thread; rendered by pos_metrics on it) */
	int64_t rx_us;         /* monotonic: the frame being processed */
	uint64_t answers[64];  /* answers by code (codes are < 64) */
	uint64_t pushes, logins;
	struct metrics_lat lat; /* request read -> answer queued */
	bool has_hook;
	/* HTTP /rpc sessions in progress, and the event that moves them */
	struct rpc *rpcs;
	struct event *rpc_ev;
	uint8_t rpc_frame[POS_FRAME_MAX]; /* a fed request (one thread) */
	uint8_t frame[POS_FRAME_MAX]; /* encode buffer (one thread) */
	uint8_t rbuf[IN_MAX];         /* plaintext read scratch (one thread) */
};

static void process_input(struct conn *c);
static void plain_arm(struct conn *c);
static void rpc_take(struct conn *c, const struct svc_pos_out *out);

static void
list_del(struct conn **head, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void
list_add(struct conn **head, struct conn *c)
{
	c->prev = NULL;
	c->next = *head;
	if (*head != NULL)
		(*head)->prev = c;
	*head = c;
}

/* ------------------------------------------------ terminal index */

static struct conn **
term_head(struct net_pos *p, const char *terminal_id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *terminal_id != '\0'; terminal_id++)
		h = (h ^ (uint8_t)*terminal_id) * 16777619u;
	return &p->by_term[h % TERM_BUCKETS];
}

static void
term_index(struct conn *c)
{
	struct conn **h = term_head(c->p, c->sess.terminal_id);

	c->tnext = *h;
	*h = c;
	c->is_indexed = true;
}

static void
term_unindex(struct conn *c)
{
	struct conn **h = term_head(c->p, c->sess.terminal_id);

	for (; *h != NULL; h = &(*h)->tnext)
		if (*h == c) {
			*h = c->tnext;
			break;
		}
	c->tnext = NULL;
	c->is_indexed = false;
}

static const char *
term_label(const struct conn *c)
{
	return c->sess.terminal_id[0] ? c->sess.terminal_id : "-";
}

/* ------------------------------------------------------ timing wheel */

static uint32_t
now_tick(const struct net_pos *p)
{
	return (uint32_t)((util_mono_us() / 1000 - p->t0_ms) / TICK_MS);
}

/* The tick by which ms from now have passed (rounded up). */
static uint32_t
tick_after(const struct net_pos *p, int64_t ms)
{
	return now_tick(p) + (uint32_t)((ms + TICK_MS - 1) / TICK_MS) + 1;
}

static void
wheel_put(struct conn *c, uint32_t tick)
{
	struct net_pos *p = c->p;

	if (c->is_in_wheel)
		list_del(&p->wheel[c->slot_due % WHEEL_SLOTS], c);
	c->slot_due = tick;
	list_add(&p->wheel[tick % WHEEL_SLOTS], c);
	c->is_in_wheel = true;
}

static void
wheel_del(struct conn *c)
{
	if (c->is_in_wheel) {
		list_del(&c->p->wheel[c->slot_due % WHEEL_SLOTS], c);
		c->is_in_wheel = false;
	}
}

/* Moves c's deadline.  Later: it stays in its slot and is moved on when
 * that slot comes round (no list work per request); earlier: re-slotted
 * now. */
static void
set_due(struct conn *c, uint32_t due)
{
	c->due = due;
	if (!c->is_in_wheel || (int32_t)(due - c->slot_due) < 0)
		wheel_put(c, due);
}

/* ------------------------------------------------------- connections */

/* A zeroed connection from the free list (a new slab when empty). */
static struct conn *
conn_alloc(struct net_pos *p)
{
	struct conn *c;

	if (p->free_conns == NULL) {
		struct conn_slab *sl = xcalloc(1, sizeof *sl);
		size_t i;

		sl->next = p->slabs;
		p->slabs = sl;
		for (i = 0; i < CONN_SLAB; i++) {
			sl->conns[i].next = p->free_conns;
			p->free_conns = &sl->conns[i];
		}
	}
	c = p->free_conns;
	p->free_conns = c->next;
	memset(c, 0, sizeof *c);
	c->p = p;
	c->fd = -1;
	return c;
}

/* Closes the transport (the socket); the struct lives on. */
static void
conn_release(struct conn *c)
{
	if (c->tls != NULL && c->tls->bev != NULL) {
		event_del(&c->tls->timer);
		bufferevent_free(c->tls->bev); /* closes the socket, SSL */
		c->tls->bev = NULL;
	}
	if (c->fd >= 0) {
		evutil_closesocket(c->fd);
		c->fd = -1;
	}
}

static void
conn_free(struct conn *c)
{
	struct net_pos *p = c->p;

	conn_release(c);
	free(c->tls);
	free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	svc_pos_session_fini(&c->sess);
	explicit_bzero(c, sizeof *c);
	c->next = p->free_conns;
	p->free_conns = c;
}

/* Output queued and not yet taken by the kernel (or by TLS). */
static size_t
out_len(const struct conn *c)
{
	if (c->tls != NULL)
		return c->tls->bev != NULL
		           ? evbuffer_get_length(
				 bufferevent_get_output(c->tls->bev))
		           : 0;
	return c->out != NULL ? evbuffer_get_length(c->out) : 0;
}

/* Closes now (no more I/O); the struct is freed later by reap. */
static void
conn_close(struct conn *c, const char *why)
{
	struct net_pos *p = c->p;

	if (c->is_dead)
		return;
	log_msg(LOG_POS, LOG_LEVEL_DEBUG,
	        "event=close peer=%s terminal=%s why=%s", c->sess.peer,
	        term_label(c), why);
	c->is_dead = true;
	if (c->is_indexed)
		term_unindex(c);
	c->sess.state = SVC_POS_CLOSING;
	if (c->tls != NULL) {
		bufferevent_disable(c->tls->bev, EV_READ | EV_WRITE);
		event_del(&c->tls->timer);
		list_del(&p->tls_live, c);
	} else {
		/* no event of this batch or a later one may name c */
		(void)epoll_ctl(p->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		wheel_del(c);
	}
	list_add(&p->dead, c);
	p->n_conns--;
	event_active(p->reap_ev, EV_TIMEOUT, 0);
}

/* Deferred: frees dead connections no job points at any more. */
static void
on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct net_pos *p = arg;
	struct conn *c, *next;

	(void)fd;
	(void)what;
	for (c = p->dead; c != NULL; c = next) {
		next = c->next;
		conn_release(c);
		if (c->n_ops == 0) {
			list_del(&p->dead, c);
			conn_free(c);
		}
	}
}

/* CLOSING: stop reading, close once the output is flushed (or after
 * CLOSE_FLUSH_S). */
static void
conn_closing(struct conn *c)
{
	struct timeval tv = {CLOSE_FLUSH_S, 0};

	if (c->is_dead)
		return;
	c->sess.state = SVC_POS_CLOSING;
	if (out_len(c) == 0) {
		conn_close(c, "closing");
		return;
	}
	if (c->tls != NULL) {
		bufferevent_disable(c->tls->bev, EV_READ);
		evtimer_add(&c->tls->timer, &tv);
	} else {
		plain_arm(c);
	}
}

/* ---------------------------------------------------------- plaintext */

/*
 * Registers what the connection waits for now: input (unless closing,
 * throttled or draining) and output room (while output waits); and
 * switches its deadline when the kind changed.
 */
static void
plain_arm(struct conn *c)
{
	struct net_pos *p = c->p;
	const struct config *cfg = p->cfg;
	bool is_closing = c->sess.state == SVC_POS_CLOSING;
	uint8_t ep = 0, dl;

	if (c->is_dead || c->fd < 0)
		return;
	if (!is_closing && !c->is_throttled && !p->is_draining)
		ep |= EPOLLIN;
	if (out_len(c) > 0)
		ep |= EPOLLOUT;
	if (ep != c->ep) {
		struct epoll_event e;

		memset(&e, 0, sizeof e);
		e.events = ep;
		e.data.ptr = c;
		if (epoll_ctl(p->epfd, EPOLL_CTL_MOD, c->fd, &e) != 0) {
			conn_close(c, "epoll");
			return;
		}
		c->ep = ep;
	}
	if (is_closing)
		dl = DL_CLOSE;
	else if (!c->is_logged_in)
		dl = DL_LOGIN; /* absolute: set at accept, never moved */
	else if (ep & EPOLLOUT)
		dl = DL_WRITE;
	else
		dl = DL_IDLE;
	if (dl == c->deadline)
		return;
	c->deadline = dl;
	switch (dl) {
	case DL_IDLE:
		set_due(c, tick_after(p, 3000 * cfg->pos_heartbeat_s));
		break;
	case DL_WRITE:
		set_due(c, tick_after(p, cfg->pos_write_timeout_ms));
		break;
	case DL_CLOSE:
		set_due(c, tick_after(p, 1000 * CLOSE_FLUSH_S));
		break;
	default:
		break;
	}
}

static void
plain_send(struct conn *c, const uint8_t *buf, size_t len)
{
	ssize_t n = 0;

	if (c->fd < 0)
		return;
	if (c->out == NULL) {
		/* the usual case: the kernel takes the whole reply now */
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			n = 0; /* EAGAIN, or an error the next write reports */
		if ((size_t)n == len)
			return;
		if ((c->out = evbuffer_new()) == NULL) {
			conn_close(c, "nomem");
			return;
		}
	}
	evbuffer_add(c->out, buf + n, len - (size_t)n);
}

/* Room for output: push what waits; drained -> flushed close or
 * unthrottle. */
static void
plain_flush(struct conn *c)
{
	struct net_pos *p = c->p;
	int n;

	if (c->out == NULL)
		return;
	n = evbuffer_write(c->out, c->fd);
	if (n < 0 && errno != EAGAIN && errno != EINTR) {
		conn_close(c, "error");
		return;
	}
	if (n > 0 && c->deadline == DL_WRITE) /* progress */
		set_due(c, tick_after(p, p->cfg->pos_write_timeout_ms));
	if (evbuffer_get_length(c->out) > 0)
		return;
	evbuffer_free(c->out);
	c->out = NULL;
	if (c->sess.state == SVC_POS_CLOSING) {
		conn_close(c, "flushed");
		return;
	}
	if (c->is_throttled) {
		c->is_throttled = false;
		if (!p->is_draining)
			process_input(c);
	}
}

/* Input: one read into the scratch buffer (after the unfinished frame
 * kept from the last one), then the frame loop. */
static void
plain_read(struct conn *c)
{
	struct net_pos *p = c->p;
	size_t have = c->in_len;
	ssize_t n;

	/* reading is on only while what is kept is less than one frame
	 * (more is decoded, or the connection is throttled, not reading);
	 * were it ever full, recv would read 0 bytes and look like EOF */
	if (have >= sizeof p->rbuf) {
		conn_close(c, "input_full");
		return;
	}
	if (have > 0)
		memcpy(p->rbuf, c->in, have);
	n = recv(c->fd, p->rbuf + have, sizeof p->rbuf - have, 0);
	if (n == 0) {
		conn_close(c, "eof");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_close(c, "error");
		return; /* c->in still holds what it held */
	}
	if (c->deadline == DL_IDLE) /* the terminal spoke */
		set_due(c, tick_after(p, 3000 * p->cfg->pos_heartbeat_s));
	free(c->in);
	/* process_input() takes its bytes from c->in: the scratch buffer,
	 * without a copy, for the duration of the call */
	c->in = p->rbuf;
	c->in_len = (uint16_t)(have + (size_t)n);
	process_input(c);
}

/* The listener's epoll set is readable: dispatch its events. */
static void
on_epoll(evutil_socket_t fd, short what, void *arg)
{
	struct net_pos *p = arg;
	struct epoll_event evs[EP_BATCH];
	int n, i;

	(void)fd;
	(void)what;
	n = epoll_wait(p->epfd, evs, EP_BATCH, 0);
	for (i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;
		uint32_t e = evs[i].events;

		/* closed earlier in this batch: freed only by reap, which
		 * runs after this callback */
		if (c->is_dead)
			continue;
		if (e & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			plain_flush(c);
		if (!c->is_dead && (c->ep & EPOLLIN) &&
		    (e & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			plain_read(c);
		if (!c->is_dead && (e & (EPOLLERR | EPOLLHUP)) &&
		    !(c->ep & EPOLLIN) && c->out == NULL)
			conn_close(c, "hangup"); /* nothing would report it */
		if (!c->is_dead)
			plain_arm(c);
	}
}

/*
 * Every TICK_MS: the wheel slots up to now.  A connection whose deadline
 * passed is closed; one whose deadline moved later goes to its new slot.
 *
 * Also gives memory back after a burst: a login storm allocates and frees
 * thousands of requests (~2.6 kB each) between long-lived connections,
 * and glibc keeps the freed pages.  Once the requests in flight fell to
 * an eighth of a peak of at least TRIM_OPS, malloc_trim returns the
 * free pages to the system (one pass, milliseconds, after a burst only,
 * at most once a second however the load swings).
 */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct net_pos *p = arg;
	uint32_t now = now_tick(p), n = 0;

	(void)fd;
	(void)what;
	while ((int32_t)(now - p->done_tick) > 0 && n++ < WHEEL_SLOTS) {
		uint32_t t = ++p->done_tick;
		struct conn *c, *next;

		for (c = p->wheel[t % WHEEL_SLOTS]; c != NULL; c = next) {
			next = c->next;
			if ((int32_t)(c->slot_due - t) > 0)
				continue; /* a later turn */
			if ((int32_t)(c->due - now) > 0) {
				wheel_put(c, c->due);
				continue;
			}
			{
				static const char *const doing[] = {
				    "-", "login", "idle", "writing", "closing"};

				log_msg(LOG_POS, LOG_LEVEL_INFO,
				        "event=%s peer=%s terminal=%s "
				        "doing=%s",
				        c->deadline == DL_LOGIN
				            ? "login_timeout"
				            : "timeout",
				        c->sess.peer, term_label(c),
				        doing[c->deadline]);
				conn_close(c, "timeout");
			}
		}
	}
	if (n > WHEEL_SLOTS) /* the loop stalled a whole turn */
		p->done_tick = now;
	if (p->n_ops > p->ops_peak)
		p->ops_peak = p->n_ops;
	if (p->ops_peak >= TRIM_OPS && p->n_ops <= p->ops_peak / 8 &&
	    now - p->trim_tick >= 1000 / TICK_MS) {
		p->ops_peak = p->n_ops;
		p->trim_tick = now;
#ifdef __GLIBC__
		(void)malloc_trim(0);
#endif
	}
}

/* ---------------------------------------------------------------- TLS */

static void
tls_arm(struct conn *c)
{
	struct net_pos *p = c->p;

	if (!c->is_logged_in && c->sess.state == SVC_POS_LOGGED_IN) {
		struct timeval idle = {3 * (time_t)p->cfg->pos_heartbeat_s, 0};
		struct timeval wr = {p->cfg->pos_write_timeout_ms / 1000,
		                     (p->cfg->pos_write_timeout_ms % 1000) *
		                         1000};

		c->is_logged_in = true;
		evtimer_del(&c->tls->timer);
		bufferevent_set_timeouts(c->tls->bev, &idle, &wr);
	}
}

static void
on_tls_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

/* Output drained to the low watermark (0). */
static void
on_tls_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->is_dead)
		return;
	if (c->sess.state == SVC_POS_CLOSING) {
		conn_close(c, "flushed");
		return;
	}
	if (c->is_throttled) {
		c->is_throttled = false;
		if (!c->p->is_draining) {
			bufferevent_enable(c->tls->bev, EV_READ);
			process_input(c);
		}
	}
}

static void
on_tls_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	unsigned long e;

	if (what & BEV_EVENT_CONNECTED) {
		log_msg(LOG_POS, LOG_LEVEL_DEBUG,
		        "event=tls_established peer=%s version=%s",
		        c->sess.peer,
		        SSL_get_version(bufferevent_openssl_get_ssl(bev)));
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=timeout peer=%s terminal=%s doing=%s",
		        c->sess.peer, term_label(c),
		        (what & BEV_EVENT_READING) ? "idle" : "writing");
	if ((what & BEV_EVENT_ERROR) &&
	    (e = bufferevent_get_openssl_error(bev)) != 0) {
		char reason[120];

		ERR_error_string_n(e, reason, sizeof reason);
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=tls_failed peer=%s terminal=%s reason=\"%s\"",
		        c->sess.peer, term_label(c), reason);
		while (bufferevent_get_openssl_error(bev) != 0)
			;
	}
	conn_close(c, what & BEV_EVENT_EOF       ? "eof"
	              : what & BEV_EVENT_TIMEOUT ? "timeout"
	                                         : "error");
}

/* Login deadline (CONNECTED, handshake included) or closing flush
 * deadline (CLOSING). */
static void
on_tls_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->sess.state == SVC_POS_CONNECTED)
		log_msg(LOG_POS, LOG_LEVEL_INFO, "event=login_timeout peer=%s",
		        c->sess.peer);
	conn_close(c, "timer");
}

/* -------------------------------------------------------- frame loop */

static void on_op_done(struct dbq_job *job);
static void bill_check(struct net_pos *p, struct conn *c,
                       struct svc_pos_op *op);
static void bill_wait(struct net_pos *p, struct conn *c,
                      struct svc_pos_op *op);
static void waits_end(struct net_pos *p);
static void bill_resolve(struct net_pos *p, struct conn *c,
                         struct svc_pos_op *op);

static void
out_init(struct svc_pos_out *out, struct net_pos *p)
{
	out->buf = p->frame;
	out->cap = sizeof p->frame;
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	out->refresh = NULL;
	out->is_answer = false;
	out->code = -1;
	out->n_pushes = 0;
}

/* What out sends, counted: its answer by code, with the time since its
 * request was read (rx_us; 0: unknown), and its pushes. */
static void
count_out(struct net_pos *p, const struct svc_pos_out *out, int64_t rx_us)
{
	if (out->len == 0)
		return;
	if (out->is_answer) {
		if (out->code >= 0 &&
		    (size_t)out->code < sizeof p->answers / sizeof p->answers[0])
			p->answers[out->code]++;
		if (rx_us > 0)
			metrics_lat_observe(&p->lat, util_mono_us() - rx_us);
	}
	p->pushes += out->n_pushes;
}

/* Posts op: a read-only call to a reader when there is one (and room),
 * else to the storage writer.  Returns 0 or -1 (both full). */
static int
post_op(struct net_pos *p, struct svc_pos_op *op)
{
	if (op->is_read && p->rq != NULL && readq_post(p->rq, &op->job) == 0)
		return 0;
	op->is_read = false; /* the writer's answer is final */
	return dbq_post(p->dbq, &op->job);
}

/* An agent cache refresh is back (svc_pos.h): no connection waits. */
static void
on_refresh_done(struct dbq_job *job)
{
	struct net_pos *p = job->arg;

	p->n_ops--;
	svc_pos_refreshed(&p->svc, (struct svc_pos_op *)job, util_now_ms());
}

/* Posts out->refresh, if any; counted in n_ops, so a shutdown waits for
 * it like for the connections' requests. */
static void
post_refresh(struct net_pos *p, struct svc_pos_out *out)
{
	struct svc_pos_op *op = out->refresh;

	if (op == NULL)
		return;
	out->refresh = NULL;
	op->job.arg = p;
	op->job.done = on_refresh_done;
	if (p->is_draining || post_op(p, op) != 0) {
		op->job.call_rc = STORE_RETRY; /* not read: nothing changes */
		svc_pos_refreshed(&p->svc, op, util_now_ms());
		return;
	}
	p->n_ops++;
}

/* Carries out what svc_pos decided about a request read at rx_us (0: not
 * a request's). */
static void
emit(struct conn *c, struct svc_pos_out *out, int64_t rx_us)
{
	struct net_pos *p = c->p;

	count_out(p, out, rx_us);
	post_refresh(p, out);
	if (c->is_rpc)
		rpc_take(c, out); /* answers to the HTTP caller */
	else if (out->len > 0) {
		if (c->tls != NULL)
			bufferevent_write(c->tls->bev, out->buf, out->len);
		else
			plain_send(c, out->buf, out->len);
	}
	if (out->post != NULL) {
		struct svc_pos_op *op = out->post;

		out->post = NULL;
		op->job.arg = c;
		op->job.done = on_op_done;
		if (op->rx_us == 0)
			op->rx_us = rx_us;
		if (op->kind == SVC_POS_OP_BILL_CHECK) {
			/* a provider call, not a storage job: completed by
			 * on_bill_checked like one */
			bill_check(p, c, op);
		} else if (op->kind == SVC_POS_OP_BILL_RESOLVE) {
			bill_resolve(p, c, op); /* completed like a job */
		} else if (op->kind == SVC_POS_OP_BILL_WAIT) {
			bill_wait(p, c, op); /* a timer, or the outcome */
		} else if (post_op(p, op) != 0) {
			struct svc_pos_out busy;

			out_init(&busy, p);
			svc_pos_busy(&p->svc, &c->sess, op, &busy);
			emit(c, &busy, rx_us);
		} else {
			c->n_ops++;
			p->n_ops++;
		}
	}
	if (out->n_group > 0) {
		/* an ADVICE_BATCH's ledger items: one group, one commit */
		struct dbq_job *jobs[POS_BATCH_MAX];
		size_t i, n = out->n_group;

		out->n_group = 0;
		for (i = 0; i < n; i++) {
			out->group[i]->job.arg = c;
			out->group[i]->job.done = on_op_done;
			if (out->group[i]->rx_us == 0)
				out->group[i]->rx_us = rx_us;
			jobs[i] = &out->group[i]->job;
		}
		if (dbq_post_group(p->dbq, jobs, n) != 0) {
			struct svc_pos_out busy;

			out_init(&busy, p);
			svc_pos_group_busy(&p->svc, &c->sess, out->group, n,
			                   &busy);
			emit(c, &busy, rx_us);
		} else {
			c->n_ops += (uint32_t)n;
			p->n_ops += n;
		}
	}
	if (p->n_ops > p->ops_peak)
		p->ops_peak = p->n_ops;
	if (c->is_dead)
		return;
	if (!c->is_indexed && !c->is_rpc &&
	    c->sess.state == SVC_POS_LOGGED_IN) {
		term_index(c);
		p->logins++;
	}
	if (c->tls != NULL)
		tls_arm(c);
	else if (!c->is_logged_in && c->sess.state == SVC_POS_LOGGED_IN)
		c->is_logged_in = true; /* plain_arm switches to idle */
	if (out->is_close || c->sess.state == SVC_POS_CLOSING) {
		conn_closing(c);
		return;
	}
	if (!c->is_throttled && out_len(c) > (size_t)p->cfg->pos_output_max) {
		/* backpressure: a peer that does not read gets no more */
		c->is_throttled = true;
		if (c->tls != NULL)
			bufferevent_disable(c->tls->bev, EV_READ);
	}
	if (c->tls == NULL)
		plain_arm(c);
}

static void
on_op_done(struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	struct conn *c = job->arg;
	struct net_pos *p = c->p;
	struct svc_pos_out out;
	int64_t rx_us = op->rx_us; /* op may be gone after svc_pos_done */

	out_init(&out, p);
	c->n_ops--;
	p->n_ops--;
	if (c->is_dead) {
		/* committed work stays committed; the terminal asks STATUS */
		svc_pos_op_free(op);
		if (c->n_ops == 0)
			event_active(p->reap_ev, EV_TIMEOUT, 0);
		return;
	}
	svc_pos_done(&p->svc, &c->sess, op, util_now_ms(), &out);
	emit(c, &out, rx_us);
	if (!c->is_dead && p->is_draining && c->n_ops == 0)
		conn_closing(c);
}

/*
 * Decodes and dispatches the frames waiting in the connection's input:
 * the bufferevent's (TLS), or c->in (plaintext; on return whatever is
 * left, at most IN_MAX bytes, is in a buffer of its own, or c->in is
 * NULL).  Stops at an unfinished frame, or when the connection stops
 * reading (throttled, draining, closing, closed).
 */
static void
process_input(struct conn *c)
{
	struct net_pos *p = c->p;
	struct evbuffer *in =
	    c->tls != NULL ? bufferevent_get_input(c->tls->bev) : NULL;
	size_t off = 0; /* plaintext: bytes of c->in consumed */

	while (!c->is_dead && !c->is_throttled && !p->is_draining &&
	       c->sess.state != SVC_POS_CLOSING) {
		struct svc_pos_out out;
		size_t len, used = 0;
		struct pos_frame f;
		const char *why = "";
		enum codec_rc rc;
		uint8_t *buf;

		len = in != NULL ? evbuffer_get_length(in) : c->in_len - off;
		if (len == 0)
			break;
		out_init(&out, p);
		len = MIN(len, (size_t)POS_FRAME_MAX);
		if (in != NULL) {
			if ((buf = evbuffer_pullup(in, (ev_ssize_t)len)) ==
			    NULL)
				break;
		} else {
			buf = c->in + off;
		}
		rc = pos_frame_decode(&f, buf, len, &used, &why);
		if (rc == CODEC_NEED_MORE)
			break;
		p->rx_us = util_mono_us();
		if (rc == CODEC_BAD) {
			/* the stream is out of step: answer and close */
			svc_pos_refused(&p->svc, &c->sess, &f, why, &out);
			emit(c, &out, p->rx_us);
			if (!c->is_dead)
				conn_closing(c);
			break;
		}
		svc_pos_frame(&p->svc, &c->sess, &f, util_now_ms(), &out);
		/* f's views die here */
		if (in != NULL)
			evbuffer_drain(in, used);
		else
			off += used;
		emit(c, &out, p->rx_us);
	}
	if (in != NULL) {
		if (!c->is_dead && c->sess.state == SVC_POS_CLOSING)
			evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	{
		/* plaintext: keep only an unfinished frame (or what waits
		 * behind throttling), in a buffer of its own */
		uint8_t *old = c->in;
		size_t left = c->in_len - off;

		c->in = NULL;
		c->in_len = 0;
		if (left > 0 && !c->is_dead &&
		    c->sess.state != SVC_POS_CLOSING) {
			c->in = xmalloc(left);
			memcpy(c->in, old + off, left);
			c->in_len = (uint16_t)left;
		}
		if (old != p->rbuf)
			free(old);
	}
}

/* ------------------------------------------------------------ HTTP /rpc */

/*
 * POST /rpc and /rpc.batch (docs/api.md "POS messages over HTTP"): a
 * trusted server-to-server client sends POS request bodies (CBOR, §6 of
 * docs/pos-protocol.md) for a terminal, authenticated by the admin key
 * instead of the terminal's: each call is a session of its own on a
 * connection without a transport (c->is_rpc), logged in by
 * svc_pos_rpc_login() (the terminal checked like a LOGIN, a random K_s),
 * whose requests are fed to svc_pos_frame() as frames MAC'd under that
 * K_s, so they get exactly a terminal's processing (idempotency by
 * txn_id, limits, durability before the answer).  The answer frames'
 * bodies go back to the caller; pushes (COLLECT_RESULT) stay for the
 * terminal's own sessions (not acknowledged here, so redelivered there).
 */

#define RPC_ITEMS_MAX POS_RPC_ITEMS_MAX           /* one /rpc.batch */
#define RPC_BODY_MAX  (RPC_ITEMS_MAX * POS_FRAME_MAX) /* request bytes */

struct rpc_item {
	uint16_t type;       /* request type */
	const uint8_t *body; /* view into rpc->in */
	size_t len;
	uint16_t rtype;  /* answer type; 0 until answered */
	uint8_t *rbody;  /* answer body (malloc'd) */
	size_t rlen;
};

struct rpc {
	struct net_pos *p;
	struct evhttp_request *req;
	struct conn *c;
	struct rpc *next; /* p->rpcs */
	uint8_t *in;      /* the request body, copied */
	size_t n, n_fed, n_done;
	uint64_t counter; /* the fed frames' counter */
	int login_code;   /* -1 while the login is out */
	bool is_batch;
	struct rpc_item items[RPC_ITEMS_MAX];
};

static struct rpc *
rpc_of(const struct conn *c)
{
	struct rpc *r;

	for (r = c->p->rpcs; r != NULL; r = r->next)
		if (r->c == c)
			return r;
	return NULL;
}

static void
rpc_answer(struct rpc_item *it, uint16_t type, const uint8_t *body,
           size_t len)
{
	it->rtype = type;
	it->rbody = xmalloc(len > 0 ? len : 1);
	memcpy(it->rbody, body, len);
	it->rlen = len;
}

/* What svc_pos put out for an /rpc session: the login's outcome, and
 * answer frames by req_id (item index + 1); pushes (req_id 0) are left
 * to the terminal's own sessions.  The rest happens on p->rpc_ev. */
static void
rpc_take(struct conn *c, const struct svc_pos_out *out)
{
	struct rpc *r = rpc_of(c);
	size_t off = 0;

	if (r == NULL)
		return;
	if (r->login_code < 0 && out->is_answer && out->len == 0 &&
	    out->code >= 0)
		r->login_code = out->code;
	while (off < out->len) {
		struct pos_frame f;
		const char *why = "";
		size_t used = 0;
		uint32_t id;

		if (pos_frame_decode(&f, out->buf + off, out->len - off,
		                     &used, &why) != CODEC_OK)
			break; /* our own encoder's output: cannot happen */
		id = f.hdr.req_id;
		if (id >= 1 && id <= r->n && r->items[id - 1].rtype == 0) {
			rpc_answer(&r->items[id - 1], f.hdr.type, f.body,
			           f.body_len);
			r->n_done++;
		}
		off += used;
	}
	event_active(c->p->rpc_ev, EV_TIMEOUT, 0);
}

/* An item refused before svc_pos saw it: T | 0xC000 {1: code}. */
static void
rpc_refuse(struct rpc *r, struct rpc_item *it, enum pos_code code)
{
	uint8_t buf[16];
	struct cbor_enc e;
	size_t n = 0;

	cbor_enc_init(&e, buf, sizeof buf);
	cbor_put_map(&e, 1);
	cbor_put_uint(&e, 1);
	cbor_put_uint(&e, code);
	(void)cbor_enc_finish(&e, &n);
	rpc_answer(it, (uint16_t)((it->type & 0x3fffu) | POS_TYPE_FAIL), buf,
	           n);
	r->n_done++;
}

/* Feeds item i as a frame of the session. */
static void
rpc_feed(struct rpc *r, size_t i)
{
	struct net_pos *p = r->p;
	struct rpc_item *it = &r->items[i];
	struct svc_pos_out out;
	struct pos_frame f;
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0, used = 0;

	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = it->type;
	h.req_id = (uint32_t)(i + 1);
	h.counter = ++r->counter;
	if (pos_frame_encode(p->rpc_frame, sizeof p->rpc_frame, &h, it->body,
	                     it->len, r->c->sess.ks, &n, &why) != CODEC_OK ||
	    pos_frame_decode(&f, p->rpc_frame, n, &used, &why) != CODEC_OK) {
		rpc_refuse(r, it, POS_CODE_MALFORMED); /* empty or too big */
		return;
	}
	out_init(&out, p);
	p->rx_us = util_mono_us();
	svc_pos_frame(&p->svc, &r->c->sess, &f, util_now_ms(), &out);
	emit(r->c, &out, p->rx_us);
}

/* The HTTP answer: one body (/rpc, its type in Soko-Type) or the array
 * of [type, body] (/rpc.batch), CBOR. */
static void
rpc_reply(struct rpc *r)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
	struct evbuffer *b;
	char t[16];
	size_t i;

	if (!r->is_batch) {
		snprintf(t, sizeof t, "%u", (unsigned)r->items[0].rtype);
		evhttp_add_header(h, "Soko-Type", t);
		net_http_reply(r->req, 200, "application/cbor",
		               (const char *)r->items[0].rbody,
		               r->items[0].rlen);
		return;
	}
	if ((b = evbuffer_new()) == NULL) {
		net_http_error(r->req, 503, "busy", "out of memory");
		return;
	}
	for (i = 0; i <= r->n; i++) {
		uint8_t head[16];
		struct cbor_enc e;
		size_t n = 0;

		cbor_enc_init(&e, head, sizeof head);
		if (i == 0) {
			cbor_put_array(&e, r->n);
		} else {
			cbor_put_array(&e, 2);
			cbor_put_uint(&e, r->items[i - 1].rtype);
		}
		(void)cbor_enc_finish(&e, &n);
		evbuffer_add(b, head, n);
		if (i > 0)
			evbuffer_add(b, r->items[i - 1].rbody,
			             r->items[i - 1].rlen);
	}
	{
		size_t len = evbuffer_get_length(b);
		const uint8_t *all = evbuffer_pullup(b, (ev_ssize_t)len);

		net_http_reply(r->req, 200, "application/cbor",
		               (const char *)all, len);
	}
	evbuffer_free(b);
}

/* Ends r: answered (status 200) or refused; the session closed. */
static void
rpc_end(struct rpc *r, int status, const char *code, const char *msg)
{
	struct net_pos *p = r->p;
	struct rpc **pp;
	size_t i;

	if (r->req != NULL) {
		if (status == 200)
			rpc_reply(r);
		else
			net_http_error(r->req, status, code, msg);
	}
	for (pp = &p->rpcs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	if (!r->c->is_dead)
		conn_close(r->c, "rpc_done");
	for (i = 0; i < r->n; i++)
		free(r->items[i].rbody);
	free(r->in);
	free(r);
}

/* Moves r on: login outcome, requests fed as the session's in-flight
 * limit allows, the answer once every item has one. */
static void
rpc_pump(struct rpc *r)
{
	struct conn *c = r->c;
	struct net_pos *p = r->p;

	if (r->login_code < 0 && !c->is_dead)
		return; /* the terminal is being looked up */
	if (r->login_code == POS_CODE_AUTH_FAILED) {
		rpc_end(r, 404, "terminal_unknown", "no such terminal");
		return;
	}
	if (r->login_code == POS_CODE_BAD_MAC) {
		rpc_end(r, 401, "unauthorized",
		        "missing or wrong Authorization: Bearer key");
		return;
	}
	if (r->login_code == POS_CODE_DECLINED) {
		rpc_end(r, 403, "terminal_forbidden",
		        "the key does not cover this terminal");
		return;
	}
	if (r->login_code == POS_CODE_BLOCKED) {
		rpc_end(r, 403, "terminal_blocked",
		        "the terminal or its agent is blocked");
		return;
	}
	if (r->login_code != POS_CODE_APPROVED) {
		rpc_end(r, 503, "busy", "the store is busy; retry later");
		return;
	}
	while (!c->is_dead && r->n_fed < r->n &&
	       c->sess.state == SVC_POS_LOGGED_IN &&
	       c->sess.n_inflight < p->svc.max_inflight)
		rpc_feed(r, r->n_fed++);
	if (r->n_done == r->n) {
		rpc_end(r, 200, NULL, NULL);
		return;
	}
	if (c->is_dead || c->sess.state != SVC_POS_LOGGED_IN)
		rpc_end(r, 503, "busy",
		        "the session ended before every answer; ask STATUS");
}

static void
on_rpc(evutil_socket_t fd, short what, void *arg)
{
	struct net_pos *p = arg;
	struct rpc *r = p->rpcs, *next;

	(void)fd;
	(void)what;
	for (; r != NULL; r = next) {
		next = r->next; /* r may end */
		rpc_pump(r);
	}
}

bool
net_pos_http(struct net_pos *p, struct evhttp_request *req, const char *path,
             bool is_authorized)
{
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	const char *ct, *term, *ty, *why = "";
	bool is_batch = strcmp(path, "/rpc.batch") == 0;
	const char *auth = evhttp_find_header(in, "Authorization");
	uint8_t key_hash[STORE_RPC_KEY_HASH_LEN];
	struct svc_pos_out out;
	struct rpc *r;
	struct conn *c;
	size_t len, i;

	if (!is_batch && strcmp(path, "/rpc") != 0)
		return false;
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "POST only");
		return true;
	}
	/* the admin key, or what could be a partner key (checked with the
	 * terminal, on the storage worker) */
	if (!is_authorized &&
	    (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
	     !svc_pos_rpc_key_hash(auth + 7, key_hash))) {
		net_http_error(req, 401, "unauthorized",
		               "missing or wrong Authorization: Bearer key");
		return true;
	}
	ct = evhttp_find_header(in, "Content-Type");
	if (ct == NULL || strcmp(ct, "application/cbor") != 0) {
		net_http_error(req, 415, "unsupported_media_type",
		               "Content-Type must be application/cbor");
		return true;
	}
	term = evhttp_find_header(in, "Soko-Terminal");
	if (term == NULL || term[0] == '\0' ||
	    strlen(term) > STORE_POS_ID_MAX) {
		net_http_error(req, 400, "terminal_invalid",
		               "Soko-Terminal: the terminal id, 1..32 bytes");
		return true;
	}
	len = evbuffer_get_length(body);
	if (len > RPC_BODY_MAX) {
		net_http_error(req, 413, "body_too_large",
		               "at most 32 frames' worth of bodies");
		return true;
	}
	if (p->n_conns >= (size_t)p->cfg->pos_max_conns || p->is_draining) {
		net_http_error(req, 503, "busy",
		               "no room for another session; retry later");
		return true;
	}
	r = xcalloc(1, sizeof *r);
	r->p = p;
	r->req = req;
	r->is_batch = is_batch;
	r->login_code = -1;
	r->in = xmalloc(len > 0 ? len : 1);
	evbuffer_copyout(body, r->in, len);
	if (is_batch) {
		struct pos_rpc_item items[POS_RPC_ITEMS_MAX];

		if (pos_rpc_batch_decode(r->in, len, items, RPC_ITEMS_MAX,
		                         &r->n, &why) != CODEC_OK) {
			net_http_error(req, 400, "rpc_malformed", why);
			free(r->in);
			free(r);
			return true;
		}
		for (i = 0; i < r->n; i++) {
			r->items[i].type = items[i].type;
			r->items[i].body = items[i].body;
			r->items[i].len = items[i].len;
		}
	} else {
		char *end = NULL;
		unsigned long long t;

		ty = evhttp_find_header(in, "Soko-Type");
		t = ty != NULL ? strtoull(ty, &end, 0) : 0;
		if (ty == NULL || end == ty || *end != '\0' ||
		    !pos_rpc_type_ok(t)) {
			net_http_error(req, 400, "rpc_type_invalid",
			               "Soko-Type: a request type (docs/"
			               "pos-protocol.md §6.1), not LOGIN");
			free(r->in);
			free(r);
			return true;
		}
		r->n = 1;
		r->items[0].type = (uint16_t)t;
		r->items[0].body = r->in;
		r->items[0].len = len;
	}
	for (i = 0; i < strlen(term); i++)
		if (term[i] < 0x21 || term[i] > 0x7e) {
			net_http_error(req, 400, "terminal_invalid",
			               "Soko-Terminal: printable ASCII");
			free(r->in);
			free(r);
			return true;
		}
	c = conn_alloc(p);
	c->is_rpc = true;
	svc_pos_session_init(&p->svc, &c->sess);
	snprintf(c->sess.peer, sizeof c->sess.peer, "rpc");
	p->n_conns++;
	r->c = c;
	r->next = p->rpcs;
	p->rpcs = r;
	out_init(&out, p);
	svc_pos_rpc_login(&p->svc, &c->sess, term,
	                  is_authorized ? NULL : key_hash, &out);
	emit(c, &out, 0);
	return true;
}

/* ------------------------------------------------------------- accept */

static void
peer_label(char *dst, size_t cap, const struct sockaddr *sa)
{
	/* with ":65535" this fits sess.peer exactly */
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
	}
	snprintf(dst, cap, "%s:%d", host, port);
}

/* TLS: the bufferevent over fd (which it then owns), login timer armed.
 * Returns 0 or -1 (fd closed). */
static int
tls_start(struct conn *c, evutil_socket_t fd, const struct timeval *login)
{
	struct net_pos *p = c->p;
	SSL *ssl = SSL_new(p->tls);
	struct conn_tls *t;

	if (ssl == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	t = c->tls = xcalloc(1, sizeof *c->tls);
	t->bev = bufferevent_openssl_socket_new(
	    p->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (t->bev == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		return -1;
	}
	/* a peer that vanishes without close_notify is an EOF, not an
	 * error: its requests were answered or are asked again by STATUS */
	bufferevent_openssl_set_allow_dirty_shutdown(t->bev, 1);
	evtimer_assign(&t->timer, p->base, on_tls_timer, c);
	bufferevent_setcb(t->bev, on_tls_read, on_tls_write, on_tls_event, c);
	/* at most two maximal frames waiting to be decoded */
	bufferevent_setwatermark(t->bev, EV_READ, 0, IN_MAX);
	bufferevent_set_timeouts(t->bev, login, NULL);
	evtimer_add(&t->timer, login);
	bufferevent_enable(t->bev, EV_READ | EV_WRITE);
	return 0;
}

/* Plaintext: fd into the epoll set, the login deadline into the wheel.
 * Returns 0 or -1 (fd closed). */
static int
plain_start(struct conn *c, evutil_socket_t fd)
{
	struct net_pos *p = c->p;
	struct epoll_event e;

	memset(&e, 0, sizeof e);
	e.events = EPOLLIN;
	e.data.ptr = c;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &e) != 0) {
		evutil_closesocket(fd);
		return -1;
	}
	c->fd = fd;
	c->ep = EPOLLIN;
	c->deadline = DL_LOGIN;
	set_due(c, tick_after(p, p->cfg->pos_login_timeout_ms));
	return 0;
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
          int salen, void *arg)
{
	struct net_pos *p = arg;
	struct timeval login = {p->cfg->pos_login_timeout_ms / 1000,
	                        (p->cfg->pos_login_timeout_ms % 1000) * 1000};
	struct conn *c;

	(void)l;
	(void)salen;
	if (p->is_draining) {
		evutil_closesocket(fd);
		return;
	}
	{
		/* one small frame per request: without this, Nagle plus the
		 * peer's delayed ACK adds ~40 ms to a reply that follows an
		 * unacknowledged one */
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
		                 sizeof one);
	}
	if (p->n_conns >= (size_t)p->cfg->pos_max_conns) {
		uint8_t b[64];
		size_t n = svc_pos_conn_refusal(b, sizeof b, 5);

		/* a fresh socket's send buffer always takes 36 bytes;
		 * best effort, never blocks (in clear even on a TLS
		 * listener: no handshake is spent on a refusal) */
		if (n > 0 && send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			(void)errno;
		evutil_closesocket(fd);
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=refused reason=max_conns conns=%zu", p->n_conns);
		return;
	}
	c = conn_alloc(p);
	svc_pos_session_init(&p->svc, &c->sess);
	peer_label(c->sess.peer, sizeof c->sess.peer, sa);
	if (p->tls != NULL ? tls_start(c, fd, &login) : plain_start(c, fd)) {
		wheel_del(c);
		conn_free(c);
		return;
	}
	if (c->tls != NULL)
		list_add(&p->tls_live, c);
	p->n_conns++;
	log_msg(LOG_POS, LOG_LEVEL_DEBUG, "event=accept peer=%s session=%llu",
	        c->sess.peer, (unsigned long long)c->sess.session_id);
}

static int
rand_bytes(unsigned char *buf, int n)
{
	return RAND_bytes(buf, n);
}

/* "ADDR:PORT" or "[ADDR6]:PORT" (port 0 allowed, unlike
 * evutil_parse_sockaddr_port) into *ss.  Returns 0 or -1. */
static int
parse_listen(struct sockaddr_storage *ss, int *sl, const char *spec)
{
	const char *colon = strrchr(spec, ':');
	char host[64];
	size_t hl;
	long port;

	memset(ss, 0, sizeof *ss);
	if (colon == NULL || (hl = (size_t)(colon - spec)) >= sizeof host)
		return -1;
	port = atol(colon + 1);
	if (port < 0 || port > 65535)
		return -1;
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		memcpy(host, spec + 1, hl - 2);
		host[hl - 2] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*sl = sizeof *in6;
		return evutil_inet_pton(AF_INET6, host, &in6->sin6_addr) == 1
		           ? 0
		           : -1;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		memcpy(host, spec, hl);
		host[hl] = '\0';
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*sl = sizeof *in;
		return evutil_inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0
		                                                           : -1;
	}
}

/* The listener's TLS context: TLS 1.2 or later, cert and key checked.
 * NULL (logged) on failure. */
static SSL_CTX *
tls_ctx_new(const struct config *cfg)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *what = "context";

	if (ctx == NULL)
		goto fail;
	what = "min version";
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE |
	                             SSL_OP_NO_COMPRESSION);
	/* resumption by tickets only: no per-session server memory */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* no per-connection buffers kept between records */
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	what = "pos_tls_cert_file";
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->pos_tls_cert_file) !=
	    1)
		goto fail;
	what = "pos_tls_key_file";
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->pos_tls_key_file,
	                                SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1)
		goto fail;
	return ctx;
fail : {
	char reason[160] = "";

	ERR_error_string_n(ERR_peek_last_error(), reason, sizeof reason);
	ERR_clear_error();
	log_msg(LOG_POS, LOG_LEVEL_ERROR,
	        "event=tls_config_failed what=%s reason=\"%s\"", what, reason);
	SSL_CTX_free(ctx);
	return NULL;
}
}

/* A reader thread has finished jobs (any thread). */
static void
rq_wake(void *arg)
{
	struct net_pos *p = arg;
	uint64_t one = 1;

	if (write(p->rq_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=reader_wake_failed errno=%d", errno);
}

static void
on_rq_wake(evutil_socket_t fd, short what, void *arg)
{
	struct net_pos *p = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	readq_complete(p->rq);
}

/* Readers on their own connections, unless pos_readers is 0 or the
 * store is an in-memory SQLite database (a second connection would be
 * another database).  Returns 0, or -1 (logged). */
static int
readers_start(struct net_pos *p)
{
	const struct config *cfg = p->cfg;
	char err[256] = "";

	if (cfg->pos_readers == 0 || strstr(cfg->store, ":memory:") != NULL ||
	    strstr(cfg->store, "mode=memory") != NULL)
		return 0;
	if ((p->rq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	p->rq_ev =
	    event_new(p->base, p->rq_fd, EV_READ | EV_PERSIST, on_rq_wake, p);
	if (p->rq_ev == NULL || event_add(p->rq_ev, NULL) != 0)
		return -1;
	/* as deep as the writer's queue: each connection has at most
	 * pos_max_inflight requests anyway; past it reads go to dbq */
	p->rq =
	    readq_new(cfg->store, (size_t)cfg->pos_readers,
	              (size_t)cfg->dbq_queue_max, rq_wake, p, err, sizeof err);
	if (p->rq == NULL) {
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=readers_failed reason=\"%s\"", err);
		return -1;
	}
	return 0;
}

/* The POS series of GET /metrics (docs/operations.md §Metrics). */
static void
pos_metrics(struct metrics_out *o, void *arg)
{
	const struct net_pos *p = arg;
	unsigned code;

	metrics_printf(o,
	               "# HELP soko_pos_connections open POS connections\n"
	               "# TYPE soko_pos_connections gauge\n"
	               "soko_pos_connections %zu\n"
	               "# HELP soko_pos_logins_total POS logins accepted\n"
	               "# TYPE soko_pos_logins_total counter\n"
	               "soko_pos_logins_total %llu\n"
	               "# HELP soko_pos_storage_jobs POS storage jobs in "
	               "flight\n# TYPE soko_pos_storage_jobs gauge\n"
	               "soko_pos_storage_jobs %zu\n"
	               "# HELP soko_pos_pushes_total COLLECT_RESULTs pushed\n"
	               "# TYPE soko_pos_pushes_total counter\n"
	               "soko_pos_pushes_total %llu\n"
	               "# HELP soko_pos_answers_total POS requests answered, "
	               "by response code\n"
	               "# TYPE soko_pos_answers_total counter\n",
	               p->n_conns, (unsigned long long)p->logins, p->n_ops,
	               (unsigned long long)p->pushes);
	for (code = 0; code < sizeof p->answers / sizeof p->answers[0]; code++)
		if (strcmp(pos_code_name(code), "unknown") != 0)
			metrics_printf(o,
			               "soko_pos_answers_total{code=\"%s\"} "
			               "%llu\n",
			               pos_code_name(code),
			               (unsigned long long)p->answers[code]);
	metrics_lat_render(o, "soko_pos_request_seconds",
	                   "POS request read to its answer queued for "
	                   "sending (server time)",
	                   &p->lat);
}

struct net_pos *
net_pos_new(struct event_base *base, struct dbq *dbq, struct ledger *lg,
            const struct config *cfg, const uint8_t *kek, char *where,
            size_t cap)
{
	struct net_pos *p = xcalloc(1, sizeof *p);
	struct sockaddr_storage ss;
	int sl = sizeof ss;
	ev_socklen_t gl = sizeof ss;
	char host[64] = "?";
	int port = 0;

	p->base = base;
	p->dbq = dbq;
	p->cfg = cfg;
	p->rq_fd = -1;
	p->epfd = -1;
	p->svc.kek = kek;
	p->svc.lg = lg;
	p->svc.heartbeat_s = (uint32_t)cfg->pos_heartbeat_s;
	p->svc.max_inflight = (uint32_t)cfg->pos_max_inflight;
	p->svc.bill_wait_ms = (uint32_t)cfg->pos_bill_wait_ms;
	p->svc.rand_bytes = rand_bytes;
	p->svc.clock_ms = util_now_ms;
	if (cfg->pos_tls_cert_file[0] != '\0' &&
	    (p->tls = tls_ctx_new(cfg)) == NULL)
		goto fail;
	if (readers_start(p) != 0)
		goto fail;
	p->t0_ms = util_mono_us() / 1000;
	if ((p->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		goto fail;
	p->ep_ev = event_new(base, p->epfd, EV_READ | EV_PERSIST, on_epoll, p);
	p->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, p);
	{
		struct timeval tick = {0, TICK_MS * 1000};

		if (p->ep_ev == NULL || p->tick_ev == NULL ||
		    event_add(p->ep_ev, NULL) != 0 ||
		    event_add(p->tick_ev, &tick) != 0)
			goto fail;
	}
	if (parse_listen(&ss, &sl, cfg->pos_listen) != 0)
		goto fail;
	p->lst = evconnlistener_new_bind(
	    base, on_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&ss, sl);
	if (p->lst == NULL)
		goto fail;
	if ((p->reap_ev = event_new(base, -1, 0, on_reap, p)) == NULL ||
	    (p->rpc_ev = event_new(base, -1, 0, on_rpc, p)) == NULL)
		goto fail;
	if (getsockname(evconnlistener_get_fd(p->lst), (struct sockaddr *)&ss,
	                &gl) != 0)
		goto fail;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		port = ntohs(in->sin_port);
		snprintf(where, cap, "%s:%d", host, port);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		port = ntohs(in6->sin6_port);
		snprintf(where, cap, "[%s]:%d", host, port);
	}
	log_msg(LOG_POS, LOG_LEVEL_NOTICE,
	        "event=pos_transport tls=%s readers=%lld",
	        p->tls ? "on" : "off",
	        p->rq != NULL ? (long long)cfg->pos_readers : 0LL);
	p->has_hook = metrics_hook_add(pos_metrics, p) == 0;
	return p;
fail:
	net_pos_free(p);
	return NULL;
}

/* Calls fn on every live connection (fn may close it). */
static void
for_each_live(struct net_pos *p, void (*fn)(struct conn *c))
{
	struct conn *c, *next;
	size_t i;

	for (c = p->tls_live; c != NULL; c = next) {
		next = c->next;
		fn(c);
	}
	for (i = 0; i < WHEEL_SLOTS; i++) {
		for (c = p->wheel[i]; c != NULL; c = next) {
			next = c->next;
			fn(c);
		}
	}
}

static void
drain_one(struct conn *c)
{
	if (c->tls != NULL)
		bufferevent_disable(c->tls->bev, EV_READ);
	else
		plain_arm(c);
	if (c->n_ops == 0)
		conn_closing(c);
}

void
net_pos_shutdown(struct net_pos *p)
{
	if (p == NULL || p->is_draining)
		return;
	p->is_draining = true;
	waits_end(p); /* answered PENDING now: STATUS tells */
	evconnlistener_disable(p->lst);
	for_each_live(p, drain_one);
}

size_t
net_pos_inflight(const struct net_pos *p)
{
	return p != NULL ? p->n_ops : 0;
}

static void
free_one(struct conn *c)
{
	if (c->tls != NULL)
		list_del(&c->p->tls_live, c);
	else
		wheel_del(c);
	conn_free(c);
}

void
net_pos_free(struct net_pos *p)
{
	struct conn *c;

	if (p == NULL)
		return;
	if (p->has_hook)
		metrics_hook_remove(pos_metrics, p);
	/* the readers' last answers, while their connections still exist
	 * (a miss handed on to the stopped writer is answered BUSY) */
	readq_stop(p->rq);
	if (p->rq != NULL)
		readq_complete(p->rq);
	waits_end(p);
	while (p->rpcs != NULL) /* answered 503, sessions closed */
		rpc_end(p->rpcs, 503, "shutting_down",
		        "the server is stopping; retry elsewhere");
	for_each_live(p, free_one);
	while ((c = p->dead) != NULL) {
		list_del(&p->dead, c);
		conn_free(c);
	}
	while (p->slabs != NULL) {
		struct conn_slab *sl = p->slabs;

		p->slabs = sl->next;
		free(sl);
	}
	readq_free(p->rq);
	if (p->rq_ev != NULL)
		event_free(p->rq_ev);
	if (p->rq_fd >= 0)
		close(p->rq_fd);
	if (p->ep_ev != NULL)
		event_free(p->ep_ev);
	if (p->tick_ev != NULL)
		event_free(p->tick_ev);
	if (p->epfd >= 0)
		close(p->epfd);
	if (p->lst != NULL)
		evconnlistener_free(p->lst);
	if (p->reap_ev != NULL)
		event_free(p->reap_ev);
	if (p->rpc_ev != NULL)
		event_free(p->rpc_ev);
	SSL_CTX_free(p->tls);
	free(p);
}

/* ------------------------------------------------- payment service */

static const char *
pay_prep(void *arg, const struct svc_collection *c, const char *ref,
         int64_t now_ms, struct store_prov *p, char *clearing, size_t cap,
         const char **msg)
{
	return net_prov_collect_prep(arg, c, ref, now_ms, p, clearing, cap,
	                             msg);
}

static void
pay_kick(void *arg)
{
	net_prov_kick(arg);
}

/*
 * BILL_PAY's bounded wait (svc_pos.bill_wait_ms): the funded bill's op
 * waits here, holding its connection (n_ops) like a storage job, until
 * its payment is written final (on_pay_final copies it into op->prov)
 * or the timer fires; either way svc_pos_done answers from op->prov.
 * At most pos_max_inflight per connection.
 */
struct bwait {
	struct bwait *prev, *next; /* p->waits */
	struct net_pos *p;
	struct svc_pos_op *op;
	struct event *ev;
};

static void
wait_end(struct bwait *w)
{
	struct net_pos *p = w->p;
	struct svc_pos_op *op = w->op;

	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		p->waits = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	if (w->ev != NULL)
		event_free(w->ev);
	free(w);
	op->job.call_rc = STORE_OK;
	on_op_done(&op->job);
}

static void
on_wait_over(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	wait_end(arg);
}

static void
bill_wait(struct net_pos *p, struct conn *c, struct svc_pos_op *op)
{
	struct bwait *w = xcalloc(1, sizeof *w);
	struct timeval tv;

	c->n_ops++;
	p->n_ops++;
	w->p = p;
	w->op = op;
	w->next = p->waits;
	if (p->waits != NULL)
		p->waits->prev = w;
	p->waits = w;
	tv.tv_sec = (time_t)(p->svc.bill_wait_ms / 1000);
	tv.tv_usec = (suseconds_t)(p->svc.bill_wait_ms % 1000) * 1000;
	w->ev = evtimer_new(p->base, on_wait_over, w);
	if (p->is_draining || w->ev == NULL || evtimer_add(w->ev, &tv) != 0)
		wait_end(w); /* no wait: PENDING */
}

/* Every wait answered now (shutdown). */
static void
waits_end(struct net_pos *p)
{
	while (p->waits != NULL)
		wait_end(p->waits);
}

/* A payment ended (net_prov_on_final): if a terminal started it
 * ("pos:<terminal>:<txn>") and is connected, its undelivered results
 * are looked up and pushed (svc_pos_results). */
static void
on_pay_final(void *arg, const struct store_prov *pay)
{
	struct net_pos *p = arg;
	char term[STORE_POS_ID_MAX + 1];
	const char *t, *end;
	struct conn *c, *next;
	struct bwait *w, *wnext;

	if (strncmp(pay->pay.ref, "pos:", 4) != 0)
		return;
	for (w = p->waits; w != NULL; w = wnext) {
		wnext = w->next;
		if (strcmp(w->op->prov->pay.ref, pay->pay.ref) == 0) {
			*w->op->prov = *pay; /* as written */
			wait_end(w);
		}
	}
	if (pay->pay.state == PAY_UNKNOWN)
		return;
	t = pay->pay.ref + 4;
	end = strrchr(t, ':');
	if (end == NULL || (size_t)(end - t) > STORE_POS_ID_MAX)
		return;
	memcpy(term, t, (size_t)(end - t));
	term[end - t] = '\0';
	for (c = *term_head(p, term); c != NULL; c = next) {
		struct svc_pos_out out;

		next = c->tnext;
		if (c->is_dead || strcmp(c->sess.terminal_id, term) != 0)
			continue;
		out_init(&out, p);
		svc_pos_results(&p->svc, &c->sess, &out);
		emit(c, &out, 0);
	}
}

static const char *
pay_disb_prep(void *arg, const struct svc_collection *c, const char *ref,
              int64_t now_ms, struct store_prov *pay, char *clearing,
              char *hold, size_t cap, const char **msg)
{
	return net_prov_disburse_prep(arg, c, ref, now_ms, pay, clearing, hold,
	                              cap, msg);
}

static const char *
pay_bill_prep(void *arg, const struct svc_bill_pay *b, const char *ref,
              int64_t now_ms, struct store_prov *pay)
{
	return net_bill_prep(arg, b, ref, now_ms, pay);
}

/* The storage halves (worker thread): the API's HTTP status and message
 * of a refusal are not the terminal's business; its code is. */
static enum store_rc
pay_collect_store(void *arg, struct store *st, struct store_prov *pay,
                  const char *clearing, const struct ledger_account *target,
                  const struct store_pos_link *link, const char **err_code)
{
	const char *msg;
	int status;

	return net_prov_collect_store(arg, st, pay, clearing, target, link,
	                              &status, err_code, &msg);
}

static enum store_rc
pay_disb_accounts(void *arg, struct store *st, struct store_prov *pay,
                  const char *clearing, const char *hold,
                  const struct ledger_account *src, const char **err_code)
{
	const char *msg;
	int status;

	return net_prov_disburse_accounts(arg, st, pay, clearing, hold, src,
	                                  &status, err_code, &msg);
}

static enum store_rc
pay_bill_store(void *arg, struct store *st, struct store_prov *pay,
               const struct ledger_account *src,
               const struct store_pos_link *link, const char **err_code)
{
	const char *msg;
	int status;

	return net_bill_store(arg, st, pay, src, link, &status, err_code,
	                      &msg);
}

static void
on_bill_checked(void *arg, const struct svc_bill_check *r)
{
	struct svc_pos_op *op = arg;

	op->check = *r;
	op->job.call_rc = STORE_OK;
	on_op_done(&op->job);
}

/* BILL_VALIDATE's call; the connection is held (n_ops) until it ends. */
static void
bill_check(struct net_pos *p, struct conn *c, struct svc_pos_op *op)
{
	int rc = p->prov == NULL ? -1 : 0;

	c->n_ops++;
	p->n_ops++;
	if (rc == 0)
		rc = net_bill_validate(p->prov, &op->bill, on_bill_checked,
		                       op);
	if (rc != 0) {
		struct svc_bill_check r;

		memset(&r, 0, sizeof r);
		r.outcome = rc == -1   ? SVC_BILL_DISABLED
		            : rc == -2 ? SVC_BILL_CUSTOMER_UNKNOWN
		                       : SVC_BILL_UNANSWERED;
		on_bill_checked(op, &r);
	}
}

static void
on_bill_resolved(void *arg, const char *biller_code, enum svc_bill_outcome o)
{
	struct svc_pos_op *op = arg;

	if (biller_code != NULL)
		strlcpy_s(op->bill.biller_code, biller_code,
		          sizeof op->bill.biller_code);
	op->check.outcome = o;
	op->job.call_rc = STORE_OK;
	on_op_done(&op->job);
}

/* BILL_PAY's item code alone: its biller from the categories; the
 * connection is held (n_ops) until it is known. */
static void
bill_resolve(struct net_pos *p, struct conn *c, struct svc_pos_op *op)
{
	c->n_ops++;
	p->n_ops++;
	if (p->prov == NULL ||
	    net_bill_resolve(p->prov, op->bill.item_code, on_bill_resolved,
	                     op) != 0)
		on_bill_resolved(op, NULL, SVC_BILL_DISABLED);
}

void
net_pos_set_prov(struct net_pos *p, struct net_prov *np)
{
	if (p == NULL || np == NULL)
		return;
	p->prov = np;
	p->pay.arg = np;
	p->pay.collect_prep = pay_prep;
	p->pay.collect_store = pay_collect_store;
	p->pay.kick = pay_kick;
	p->pay.disb_prep = pay_disb_prep;
	p->pay.disb_accounts = pay_disb_accounts;
	p->pay.bill_prep = pay_bill_prep;
	p->pay.bill_store = pay_bill_store;
	p->svc.pay = &p->pay;
	net_prov_on_final(np, on_pay_final, p);
}
