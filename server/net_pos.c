/*
 * net_pos.c - POS terminal listener: sockets, buffers, timers
 * (net_pos.h, docs/pos-protocol.md §2-3).
 *
 * One struct conn owns its bufferevent, its session (svc_pos) and its
 * timer; conn_free() releases all of it.  A connection is never freed
 * inside its own callback: close marks it dead and a deferred event
 * (reap) frees it, and only once no storage job still points at it.
 *
 * Bounds: input holds at most two maximal frames (read watermark); output
 * past pos_output_max stops reading from that peer until it drains;
 * login, idle (3 x heartbeat), write and closing-flush timeouts; at most
 * pos_max_inflight requests per connection (svc_pos answers BUSY) and
 * pos_max_conns connections.
 */
#include "net_pos.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/rand.h>

#include "log.h"
#include "svc_pos.h"
#include "util.h"

#define CLOSE_FLUSH_S 5 /* CLOSING: flush output within (§3.2) */

struct conn {
	struct net_pos *p;
	struct bufferevent *bev; /* NULL once reaped */
	struct event *timer;     /* login deadline, then closing flush */
	struct svc_pos_session sess;
	struct conn *prev, *next; /* p->live or p->dead */
	unsigned n_ops;           /* storage jobs pointing at this conn */
	bool is_dead;             /* closed; waiting to be freed */
	bool is_logged_in;        /* timeouts switched to idle */
	bool is_throttled;        /* reading stopped: output too big */
};

struct net_pos {
	struct event_base *base;
	struct dbq *dbq;
	const struct config *cfg;
	struct evconnlistener *lst;
	struct event *reap_ev;
	struct svc_pos svc;
	struct conn *live, *dead;
	size_t n_conns; /* live */
	size_t n_ops;   /* storage jobs in flight, all connections */
	bool is_draining;
	uint8_t frame[POS_FRAME_MAX]; /* encode buffer (one thread) */
};

static void process_input(struct conn *c);

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

static void
conn_free(struct conn *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->timer != NULL)
		event_free(c->timer);
	svc_pos_session_fini(&c->sess);
	explicit_bzero(&c->sess, sizeof c->sess);
	free(c);
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
	        c->sess.terminal_id[0] ? c->sess.terminal_id : "-", why);
	c->is_dead = true;
	c->sess.state = SVC_POS_CLOSING;
	bufferevent_disable(c->bev, EV_READ | EV_WRITE);
	evtimer_del(c->timer);
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
		if (c->bev != NULL) {
			bufferevent_free(c->bev); /* closes the socket */
			c->bev = NULL;
		}
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
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		conn_close(c, "closing");
		return;
	}
	evtimer_add(c->timer, &tv);
}

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

/* Carries out what svc_pos decided. */
static void
emit(struct conn *c, struct svc_pos_out *out)
{
	struct net_pos *p = c->p;
	struct evbuffer *ob = bufferevent_get_output(c->bev);

	if (out->len > 0)
		bufferevent_write(c->bev, out->buf, out->len);
	if (out->post != NULL) {
		struct svc_pos_op *op = out->post;

		out->post = NULL;
		op->job.arg = c;
		op->job.done = on_op_done;
		if (dbq_post(p->dbq, &op->job) != 0) {
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
			c->n_ops += n;
			p->n_ops += n;
		}
	}
	if (!c->is_logged_in && c->sess.state == SVC_POS_LOGGED_IN) {
		struct timeval idle = {3 * (time_t)p->cfg->pos_heartbeat_s, 0};
		struct timeval wr = {p->cfg->pos_write_timeout_ms / 1000,
		                     (p->cfg->pos_write_timeout_ms % 1000) *
		                         1000};

		c->is_logged_in = true;
		evtimer_del(c->timer);
		bufferevent_set_timeouts(c->bev, &idle, &wr);
	}
	if (out->is_close || c->sess.state == SVC_POS_CLOSING) {
		conn_closing(c);
		return;
	}
	if (!c->is_throttled &&
	    evbuffer_get_length(ob) > (size_t)p->cfg->pos_output_max) {
		/* backpressure: a peer that does not read gets no more */
		c->is_throttled = true;
		bufferevent_disable(c->bev, EV_READ);
	}
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

static void
process_input(struct conn *c)
{
	struct net_pos *p = c->p;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->is_dead && !c->is_throttled && !p->is_draining &&
	       c->sess.state != SVC_POS_CLOSING) {
		struct svc_pos_out out;
		size_t len = evbuffer_get_length(in), used = 0;
		struct pos_frame f;
		const char *why = "";
		enum codec_rc rc;
		uint8_t *buf;

		if (len == 0)
			break;
		out_init(&out, p);
		len = MIN(len, (size_t)POS_FRAME_MAX);
		if ((buf = evbuffer_pullup(in, (ev_ssize_t)len)) == NULL)
			break;
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
		evbuffer_drain(in, used); /* f's views die here */
		emit(c, &out);
	}
	if (!c->is_dead && c->sess.state == SVC_POS_CLOSING)
		evbuffer_drain(in, evbuffer_get_length(in));
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	process_input(arg);
}

/* Output drained to the low watermark (0). */
static void
on_write(struct bufferevent *bev, void *arg)
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
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=timeout peer=%s terminal=%s doing=%s",
		        c->sess.peer,
		        c->sess.terminal_id[0] ? c->sess.terminal_id : "-",
		        (what & BEV_EVENT_READING) ? "idle" : "writing");
	conn_close(c, what & BEV_EVENT_EOF       ? "eof"
	              : what & BEV_EVENT_TIMEOUT ? "timeout"
	                                         : "error");
}

/* Login deadline (CONNECTED) or closing flush deadline (CLOSING). */
static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	if (c->sess.state == SVC_POS_CONNECTED)
		log_msg(LOG_POS, LOG_LEVEL_INFO, "event=login_timeout peer=%s",
		        c->sess.peer);
	conn_close(c, "timer");
}

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
		 * best effort, never blocks */
		if (n > 0 && send(fd, b, n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			(void)errno;
		evutil_closesocket(fd);
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=refused reason=max_conns conns=%zu", p->n_conns);
		return;
	}
	c = xcalloc(1, sizeof *c);
	c->p = p;
	svc_pos_session_init(&p->svc, &c->sess);
	peer_label(c->sess.peer, sizeof c->sess.peer, sa);
	c->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->timer = evtimer_new(p->base, on_timer, c);
	if (c->bev == NULL || c->timer == NULL) {
		if (c->bev == NULL)
			evutil_closesocket(fd);
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	/* at most two maximal frames waiting to be decoded */
	bufferevent_setwatermark(c->bev, EV_READ, 0, 2 * POS_FRAME_MAX);
	bufferevent_set_timeouts(c->bev, &login, NULL);
	evtimer_add(c->timer, &login);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
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
	p->svc.kek = kek;
	p->svc.heartbeat_s = (uint32_t)cfg->pos_heartbeat_s;
	p->svc.max_inflight = (uint32_t)cfg->pos_max_inflight;
	p->svc.rand_bytes = rand_bytes;
	p->svc.clock_ms = util_now_ms;
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
		bufferevent_disable(c->bev, EV_READ);
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
	while ((c = p->live) != NULL) {
		list_del(&p->live, c);
		conn_free(c);
	}
	while ((c = p->dead) != NULL) {
		list_del(&p->dead, c);
		conn_free(c);
	}
	if (p->lst != NULL)
		evconnlistener_free(p->lst);
	if (p->reap_ev != NULL)
		event_free(p->reap_ev);
	free(p);
}
