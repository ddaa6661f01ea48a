/*
 * net_pos.c - POS terminal listener: sockets, buffers, timers
 * (net_pos.h, docs/pos-protocol.md §2-3, §4.6).
 *
 * One struct conn owns its transport, its session (svc_pos) and its timer;
 * conn_free() releases all of it.  A connection is never freed inside its
 * own callback: close marks it dead and a deferred event (reap) frees it,
 * and only once no storage job still points at it.
 *
 * Two transports behind the same frame loop:
 *  - plaintext: one struct event inside struct conn, on the socket, whose
 *    timeout is the connection's one deadline (login, idle, write or
 *    closing flush).  No buffer is kept while idle: bytes are read into
 *    the listener's scratch buffer, only an unfinished frame is copied
 *    into a per-connection buffer, and output the kernel did not take at
 *    once goes into an evbuffer that is freed once drained.  An idle
 *    logged-in terminal costs struct conn, its session and libevent's
 *    per-fd entry (pos.idle_conn_bytes, docs/benchmarks.md).
 *  - TLS (pos_tls_cert_file): a bufferevent_openssl (TLS 1.2+), the event
 *    inside struct conn as its login/closing timer; the handshake is part
 *    of CONNECTED and bounded by the login deadline.  The protocol's MAC
 *    and counters are checked exactly as without TLS.
 *
 * Read-only requests (svc_pos_op.is_read) go to reader threads
 * (readq.h, pos_readers) so they never wait behind a group commit.
 *
 * Bounds: input holds at most two maximal frames; output past
 * pos_output_max stops reading from that peer until it drains; login
 * (from accept, handshake included), idle (3 x heartbeat), write and
 * closing-flush timeouts; at most pos_max_inflight requests per
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
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "log.h"
#include "readq.h"
#include "svc_pos.h"
#include "util.h"

#define CLOSE_FLUSH_S 5 /* CLOSING: flush output within (§3.2) */
#define IN_MAX        (2 * POS_FRAME_MAX) /* input held per connection */

/* Which deadline a plaintext connection's event carries. */
enum deadline {
	DL_NONE,  /* not armed */
	DL_LOGIN, /* CONNECTED: accept + pos_login_timeout_ms (absolute) */
	DL_IDLE,  /* LOGGED_IN, nothing to send: 3 x heartbeat of silence */
	DL_WRITE, /* output waiting: pos_write_timeout_ms without progress */
	DL_CLOSE, /* CLOSING: CLOSE_FLUSH_S to flush, then closed */
};

struct conn {
	struct net_pos *p;
	struct conn *prev, *next; /* p->live or p->dead */
	/* plaintext: the socket's event (ev_what, deadline); TLS: a timer
	 * (login deadline, then closing flush) */
	struct event ev;
	struct bufferevent *bev;  /* TLS only; NULL once reaped */
	uint8_t *in;              /* plaintext: unfinished input, or NULL */
	struct evbuffer *out;     /* plaintext: unsent output, or NULL */
	int64_t login_by_ms;      /* CONNECTED: monotonic login deadline */
	int fd;                   /* plaintext; -1 once closed */
	uint32_t n_ops;           /* storage jobs pointing at this conn */
	uint16_t in_len;          /* bytes at in (< IN_MAX) */
	uint8_t ev_what;          /* plaintext: EV_READ|EV_WRITE armed */
	uint8_t deadline;         /* plaintext: enum deadline armed */
	bool is_dead;             /* closed; waiting to be freed */
	bool is_logged_in;        /* timeouts switched to idle */
	bool is_throttled;        /* reading stopped: output too big */
	struct svc_pos_session sess;
};

struct net_pos {
	struct event_base *base;
	struct dbq *dbq;
	struct readq *rq; /* NULL: pos_readers 0, reads go to dbq */
	const struct config *cfg;
	SSL_CTX *tls;     /* NULL: plaintext */
	struct evconnlistener *lst;
	struct event *reap_ev;
	struct event *rq_ev; /* readers' wake-up (rq_fd) */
	int rq_fd;
	struct svc_pos svc;
	struct conn *live, *dead;
	size_t n_conns; /* live */
	size_t n_ops;   /* storage jobs in flight, all connections */
	bool is_draining;
	uint8_t frame[POS_FRAME_MAX]; /* encode buffer (one thread) */
	uint8_t rbuf[IN_MAX];         /* plaintext read scratch (one thread) */
};

static void process_input(struct conn *c);
static void plain_arm(struct conn *c);
static void on_plain(evutil_socket_t fd, short what, void *arg);

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

static const char *
term_label(const struct conn *c)
{
	return c->sess.terminal_id[0] ? c->sess.terminal_id : "-";
}

/* Closes the transport (the socket); the struct lives on. */
static void
conn_release(struct conn *c)
{
	if (c->deadline != DL_NONE || c->bev != NULL) {
		event_del(&c->ev);
		c->deadline = DL_NONE;
	}
	if (c->bev != NULL) {
		bufferevent_free(c->bev); /* closes the socket, frees SSL */
		c->bev = NULL;
	}
	if (c->fd >= 0) {
		evutil_closesocket(c->fd);
		c->fd = -1;
	}
}

static void
conn_free(struct conn *c)
{
	conn_release(c);
	free(c->in);
	if (c->out != NULL)
		evbuffer_free(c->out);
	svc_pos_session_fini(&c->sess);
	explicit_bzero(&c->sess, sizeof c->sess);
	free(c);
}

/* Output queued and not yet taken by the kernel (or by TLS). */
static size_t
out_len(const struct conn *c)
{
	if (c->bev != NULL)
		return evbuffer_get_length(bufferevent_get_output(c->bev));
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
	c->sess.state = SVC_POS_CLOSING;
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		event_del(&c->ev);
	} else if (c->deadline != DL_NONE) {
		event_del(&c->ev);
		c->deadline = DL_NONE;
	}
	list_del(&p->live, c);
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
	if (c->bev != NULL) {
		bufferevent_disable(c->bev, EV_READ);
		evtimer_add(&c->ev, &tv);
	} else {
		plain_arm(c);
	}
}

/* ---------------------------------------------------------- plaintext */

/*
 * Arms the connection's one event for what it waits for now: reading
 * (unless closing, throttled or draining), writing (while output waits),
 * and the deadline that applies.  Re-registers only when either changed
 * (the login deadline is absolute: re-armed with what is left).
 */
static void
plain_arm(struct conn *c)
{
	struct net_pos *p = c->p;
	const struct config *cfg = p->cfg;
	bool is_closing = c->sess.state == SVC_POS_CLOSING;
	uint8_t what = 0, dl;
	struct timeval tv;
	int64_t ms;

	if (c->is_dead || c->fd < 0)
		return;
	if (!is_closing && !c->is_throttled && !p->is_draining)
		what |= EV_READ;
	if (out_len(c) > 0)
		what |= EV_WRITE;
	if (is_closing)
		dl = DL_CLOSE;
	else if (what & EV_WRITE)
		dl = DL_WRITE;
	else if (c->is_logged_in)
		dl = DL_IDLE;
	else
		dl = DL_LOGIN;
	if (dl == c->deadline && what == c->ev_what && dl != DL_LOGIN)
		return;
	switch (dl) {
	case DL_LOGIN:
		ms = c->login_by_ms - util_mono_us() / 1000;
		if (ms < 1)
			ms = 1;
		break;
	case DL_IDLE:
		ms = 3000 * cfg->pos_heartbeat_s;
		break;
	case DL_WRITE:
		ms = cfg->pos_write_timeout_ms;
		break;
	default:
		ms = 1000 * CLOSE_FLUSH_S;
		break;
	}
	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)((ms % 1000) * 1000);
	if (what != c->ev_what || c->deadline == DL_NONE) {
		if (c->deadline != DL_NONE)
			event_del(&c->ev);
		event_assign(&c->ev, p->base, c->fd, (short)(what | EV_PERSIST),
		             on_plain, c);
	}
	/* on a pending event this only moves its deadline */
	event_add(&c->ev, &tv);
	c->ev_what = what;
	c->deadline = dl;
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
			n = 0; /* EAGAIN, or an error the write event reports */
		if ((size_t)n == len)
			return;
		c->out = evbuffer_new();
		if (c->out == NULL) {
			conn_close(c, "nomem");
			return;
		}
	}
	evbuffer_add(c->out, buf + n, len - (size_t)n);
}

/* EV_WRITE: push queued output; drained -> flushed close or unthrottle. */
static void
plain_flush(struct conn *c)
{
	struct net_pos *p = c->p;

	if (c->out == NULL)
		return;
	if (evbuffer_write(c->out, c->fd) < 0 && errno != EAGAIN &&
	    errno != EINTR) {
		conn_close(c, "error");
		return;
	}
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

/* EV_READ: one read into the scratch buffer (after the unfinished frame
 * kept from the last one), then the frame loop. */
static void
plain_read(struct conn *c)
{
	struct net_pos *p = c->p;
	size_t have = c->in_len;
	ssize_t n;

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
	free(c->in);
	c->in = NULL;
	c->in_len = 0;
	/* process_input() takes its bytes from c->in: hand it the scratch
	 * buffer without a copy for the duration of the call */
	c->in = p->rbuf;
	c->in_len = (uint16_t)(have + (size_t)n);
	process_input(c);
}

static void
on_plain(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	if (what & EV_TIMEOUT) {
		static const char *const doing[] = {"-", "login", "idle",
		                                    "writing", "closing"};

		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=%s peer=%s terminal=%s doing=%s",
		        c->deadline == DL_LOGIN ? "login_timeout" : "timeout",
		        c->sess.peer, term_label(c), doing[c->deadline]);
		conn_close(c, "timeout");
		return;
	}
	if (what & EV_WRITE)
		plain_flush(c);
	if ((what & EV_READ) && !c->is_dead)
		plain_read(c);
	if (!c->is_dead)
		plain_arm(c); /* a read moved a persistent event's deadline:
		                 the login one is re-armed to what is left */
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
		evtimer_del(&c->ev);
		bufferevent_set_timeouts(c->bev, &idle, &wr);
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
			bufferevent_enable(c->bev, EV_READ);
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

static void
out_init(struct svc_pos_out *out, struct net_pos *p)
{
	out->buf = p->frame;
	out->cap = sizeof p->frame;
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
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

/* Carries out what svc_pos decided. */
static void
emit(struct conn *c, struct svc_pos_out *out)
{
	struct net_pos *p = c->p;

	if (out->len > 0) {
		if (c->bev != NULL)
			bufferevent_write(c->bev, out->buf, out->len);
		else
			plain_send(c, out->buf, out->len);
	}
	if (out->post != NULL) {
		struct svc_pos_op *op = out->post;

		out->post = NULL;
		op->job.arg = c;
		op->job.done = on_op_done;
		if (post_op(p, op) != 0) {
			struct svc_pos_out busy;

			out_init(&busy, p);
			svc_pos_busy(&p->svc, &c->sess, op, &busy);
			emit(c, &busy);
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
			jobs[i] = &out->group[i]->job;
		}
		if (dbq_post_group(p->dbq, jobs, n) != 0) {
			struct svc_pos_out busy;

			out_init(&busy, p);
			svc_pos_group_busy(&p->svc, &c->sess, out->group, n,
			                   &busy);
			emit(c, &busy);
		} else {
			c->n_ops += (uint32_t)n;
			p->n_ops += n;
		}
	}
	if (c->is_dead)
		return;
	if (c->bev != NULL)
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
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ);
	}
	if (c->bev == NULL)
		plain_arm(c);
}

static void
on_op_done(struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	struct conn *c = job->arg;
	struct net_pos *p = c->p;
	struct svc_pos_out out;

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
	emit(c, &out);
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
	struct evbuffer *in = c->bev != NULL ? bufferevent_get_input(c->bev)
	                                     : NULL;
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
			if ((buf = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL)
				break;
		} else {
			buf = c->in + off;
		}
		rc = pos_frame_decode(&f, buf, len, &used, &why);
		if (rc == CODEC_NEED_MORE)
			break;
		if (rc == CODEC_BAD) {
			/* the stream is out of step: answer and close */
			svc_pos_refused(&p->svc, &c->sess, &f, why, &out);
			emit(c, &out);
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
		emit(c, &out);
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

/* ------------------------------------------------------------- accept */

static void
peer_label(char *dst, size_t cap, const struct sockaddr *sa)
{
	char host[48] = "?"; /* INET6_ADDRSTRLEN: fits sess.peer with port */
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

	if (ssl == NULL) {
		evutil_closesocket(fd);
		return -1;
	}
	c->bev = bufferevent_openssl_socket_new(
	    p->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	if (c->bev == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		return -1;
	}
	/* a peer that vanishes without close_notify is an EOF, not an
	 * error: its requests were answered or are asked again by STATUS */
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	evtimer_assign(&c->ev, p->base, on_tls_timer, c);
	bufferevent_setcb(c->bev, on_tls_read, on_tls_write, on_tls_event, c);
	/* at most two maximal frames waiting to be decoded */
	bufferevent_setwatermark(c->bev, EV_READ, 0, IN_MAX);
	bufferevent_set_timeouts(c->bev, login, NULL);
	evtimer_add(&c->ev, login);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
	c = xcalloc(1, sizeof *c);
	c->p = p;
	c->fd = -1;
	svc_pos_session_init(&p->svc, &c->sess);
	peer_label(c->sess.peer, sizeof c->sess.peer, sa);
	if (p->tls != NULL) {
		if (tls_start(c, fd, &login) != 0) {
			conn_free(c);
			return;
		}
	} else {
		c->fd = fd;
		c->login_by_ms =
		    util_mono_us() / 1000 + p->cfg->pos_login_timeout_ms;
		plain_arm(c);
	}
	list_add(&p->live, c);
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
fail: {
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
	p->rq_ev = event_new(p->base, p->rq_fd, EV_READ | EV_PERSIST,
	                     on_rq_wake, p);
	if (p->rq_ev == NULL || event_add(p->rq_ev, NULL) != 0)
		return -1;
	/* as deep as the writer's queue: each connection has at most
	 * pos_max_inflight requests anyway; past it reads go to dbq */
	p->rq = readq_new(cfg->store, (size_t)cfg->pos_readers,
	                  (size_t)cfg->dbq_queue_max, rq_wake, p, err,
	                  sizeof err);
	if (p->rq == NULL) {
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=readers_failed reason=\"%s\"", err);
		return -1;
	}
	return 0;
}

struct net_pos *
net_pos_new(struct event_base *base, struct dbq *dbq, const struct config *cfg,
            const uint8_t *kek, char *where, size_t cap)
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
	p->svc.kek = kek;
	p->svc.heartbeat_s = (uint32_t)cfg->pos_heartbeat_s;
	p->svc.max_inflight = (uint32_t)cfg->pos_max_inflight;
	p->svc.rand_bytes = rand_bytes;
	p->svc.clock_ms = util_now_ms;
	if (cfg->pos_tls_cert_file[0] != '\0' &&
	    (p->tls = tls_ctx_new(cfg)) == NULL)
		goto fail;
	if (readers_start(p) != 0)
		goto fail;
	if (parse_listen(&ss, &sl, cfg->pos_listen) != 0)
		goto fail;
	p->lst = evconnlistener_new_bind(
	    base, on_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, -1,
	    (struct sockaddr *)&ss, sl);
	if (p->lst == NULL)
		goto fail;
	if ((p->reap_ev = event_new(base, -1, 0, on_reap, p)) == NULL)
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
	        "event=pos_transport tls=%s readers=%lld", p->tls ? "on" : "off",
	        p->rq != NULL ? (long long)cfg->pos_readers : 0LL);
	return p;
fail:
	net_pos_free(p);
	return NULL;
}

void
net_pos_shutdown(struct net_pos *p)
{
	struct conn *c, *next;

	if (p == NULL || p->is_draining)
		return;
	p->is_draining = true;
	evconnlistener_disable(p->lst);
	for (c = p->live; c != NULL; c = next) {
		next = c->next;
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ);
		else
			plain_arm(c);
		if (c->n_ops == 0)
			conn_closing(c);
	}
}

size_t
net_pos_inflight(const struct net_pos *p)
{
	return p != NULL ? p->n_ops : 0;
}

void
net_pos_free(struct net_pos *p)
{
	struct conn *c;

	if (p == NULL)
		return;
	/* the readers' last answers, while their connections still exist
	 * (a miss handed on to the stopped writer is answered BUSY) */
	readq_stop(p->rq);
	if (p->rq != NULL)
		readq_complete(p->rq);
	while ((c = p->live) != NULL) {
		list_del(&p->live, c);
		conn_free(c);
	}
	while ((c = p->dead) != NULL) {
		list_del(&p->dead, c);
		conn_free(c);
	}
	readq_free(p->rq);
	if (p->rq_ev != NULL)
		event_free(p->rq_ev);
	if (p->rq_fd >= 0)
		close(p->rq_fd);
	if (p->lst != NULL)
		evconnlistener_free(p->lst);
	if (p->reap_ev != NULL)
		event_free(p->reap_ev);
	SSL_CTX_free(p->tls);
	free(p);
}
