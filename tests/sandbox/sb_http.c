/*
 * sb_http.c - soko-sandbox's sockets: the HTTPS listener every provider
 * API shares (told apart by path, README "Paths"), the plain-HTTP control
 * API, outbound callbacks, and the faults that act on answers.
 *
 * Held answers (delay, timeout, callback_before_response) live in a list
 * owned by struct sb.  While an answer is held, libevent does not read the
 * connection, so the request and its connection stay valid until the
 * sandbox answers or frees them; a request libevent detached because its
 * client went away is still answered (libevent then frees it).
 *
 * Bounds: body SB_MAX_BODY (413), headers SB_MAX_HEADERS, connections
 * that sent a request max_conns (503 and close), held answers
 * SB_MAX_PENDING (answered at once past it), callbacks in flight
 * SB_MAX_CALLBACKS (counted as overflow and not sent past it), callback
 * timeout callback_timeout_ms, no retries.
 */
#include "sb.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

const char *const sb_prov_names[SB_PROV_N] = {"mpesa", "momo", "orange",
                                              "flutterwave", "paystack"};
/* clang-format off */
const struct sb_op_info sb_ops[SB_OP_N] = {
#define X(name, prov, str) {prov, str},
	SB_OPS(X)
#undef X
};
const char *const sb_fault_names[SB_F_N] = {
#define X(name, str) str,
	SB_FAULTS(X)
#undef X
};
/* clang-format on */

enum pend_kind { PEND_REPLY, PEND_HOLD, PEND_RESET };

struct sb_pend {
	struct sb_pend *prev, *next;
	struct sb *sb;
	struct evhttp_request *req;
	struct event *timer;
	struct event *closed; /* PEND_HOLD: the client went away */
	enum pend_kind kind;
	int status;
	char *body;
	const char *ctype;
	int64_t delay_ms;
	bool waiting; /* callback_before_response: callbacks in flight */
};

struct sb_out {
	struct sb_out *prev, *next;
	struct sb *sb;
	struct evhttp_connection *evcon;
	sb_post_done_fn done;
	void *arg;
	bool cancelled;
	char url[128]; /* for the log line */
};

struct sb_later {
	struct sb_later *prev, *next;
	struct sb *sb;
	struct event *ev;
	char *url, *body;
};

/* One charge's callbacks (one, or two for callback_twice). */
struct cb_group {
	struct sb_charge *c;
	uint64_t gen;
	int left;
	sb_post_done_fn done;
	void *arg;
};

/* ------------------------------------------------------------ replies */

static void
send_raw(struct evhttp_request *req, int status, const char *ctype,
         const char *body, bool close)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (b == NULL)
		abort();
	if (ctype != NULL)
		evhttp_add_header(h, "Content-Type", ctype);
	if (close)
		evhttp_add_header(h, "Connection", "close");
	if (body != NULL)
		evbuffer_add(b, body, strlen(body));
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
}

void
sb_rq_json(struct sb_rq *rq, int status, json_t *j)
{
	free(rq->resp);
	rq->status = status;
	rq->resp = json_dumps(j, SB_JSON_FLAGS);
	rq->ctype = "application/json";
	json_decref(j);
	if (rq->resp == NULL)
		abort();
}

void
sb_rq_empty(struct sb_rq *rq, int status)
{
	free(rq->resp);
	rq->resp = NULL;
	rq->ctype = NULL;
	rq->status = status;
}

const char *
sb_rq_header(const struct sb_rq *rq, const char *name)
{
	return evhttp_find_header(rq->in, name);
}

const char *
sb_rq_query(struct sb_rq *rq, const char *name)
{
	return rq->query ? evhttp_find_header(rq->query, name) : NULL;
}

/* ------------------------------------------------------------ faults */

unsigned
sb_rq_faults(struct sb_rq *rq, const char *msisdn, bool creates_charge)
{
	struct sb *sb = rq->sb;
	size_t i;

	if (rq->faults_done)
		return rq->faults;
	rq->faults_done = true;
	for (i = 0; i < sb->n_rules; i++) {
		struct sb_rule *r = &sb->rules[i];
		unsigned bit = SB_FBIT(r->fault);

		if (r->prov != SB_PROV_N && r->prov != sb_ops[rq->op].prov)
			continue;
		if (r->op != SB_OP_N && r->op != (int)rq->op)
			continue;
		if (r->msisdn[0] != '\0' &&
		    (msisdn == NULL || strcmp(msisdn, r->msisdn) != 0))
			continue;
		if (r->count == 0 || (rq->faults & bit))
			continue;
		if (!creates_charge && (bit & SB_F_CHARGE_MASK))
			continue;
		if (!(r->rate > 0.0))
			continue;
		if (r->rate < 1.0 && sb_rng_unit(&sb->rng_fault) >= r->rate)
			continue;
		rq->faults |= bit;
		if (r->count > 0)
			r->count--;
		r->n_fired++;
		sb->st_fault[r->fault]++;
		if (r->fault == SB_F_DELAY)
			rq->delay_ms = r->ms;
		sb_log(sb, SB_LOG_INFO,
		       "event=fault fault=%s provider=%s op=%s",
		       sb_fault_names[r->fault],
		       sb_prov_names[sb_ops[rq->op].prov], sb_ops[rq->op].name);
	}
	return rq->faults;
}

/* ------------------------------------------------------------ held */

static void
pend_free(struct sb_pend *p)
{
	struct sb *sb = p->sb;

	if (p->prev)
		p->prev->next = p->next;
	else
		sb->pend_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	sb->n_pend--;
	if (p->timer)
		event_free(p->timer);
	if (p->closed)
		event_free(p->closed);
	free(p->body);
	free(p);
}

static void
pend_reply(struct sb_pend *p)
{
	send_raw(p->req, p->status, p->ctype, p->body, false);
	pend_free(p);
}

/* Drops the connection of a held request without an answer: with
 * rst set, SO_LINGER 0 makes the close a TCP reset. */
static void
pend_drop(struct sb_pend *p, bool rst)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(p->req);

	if (p->closed) { /* before the fd closes */
		event_free(p->closed);
		p->closed = NULL;
	}
	if (evcon == NULL) {
		/* detached (the client left): answering frees it, and
		 * nothing reaches the wire */
		send_raw(p->req, 500, NULL, NULL, true);
	} else {
		struct bufferevent *bev =
		    evhttp_connection_get_bufferevent(evcon);
		evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

		if (rst && fd >= 0) {
			struct linger lg = {1, 0};

			setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		}
		evhttp_connection_free(evcon); /* frees p->req too */
	}
	pend_free(p);
}

static void
pend_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sb_pend *p = arg;

	(void)fd;
	(void)what;
	switch (p->kind) {
	case PEND_REPLY:
		pend_reply(p);
		break;
	case PEND_HOLD:
		sb_log(p->sb, SB_LOG_INFO,
		       "event=timeout_fault_closed after_ms=%d",
		       SB_TIMEOUT_HOLD_MS);
		pend_drop(p, false);
		break;
	case PEND_RESET:
		pend_drop(p, true);
		break;
	}
}

static void
pend_closed_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sb_pend *p = arg;

	(void)fd;
	(void)what;
	sb_log(p->sb, SB_LOG_DEBUG, "event=timeout_fault_client_left");
	pend_drop(p, false);
}

static void
arm(struct event *ev, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
	                     (suseconds_t)((ms % 1000) * 1000)};

	event_add(ev, &tv);
}

/* Takes rq's answer into a new held answer; NULL past SB_MAX_PENDING. */
static struct sb_pend *
pend_new(struct sb_rq *rq, enum pend_kind kind)
{
	struct sb *sb = rq->sb;
	struct sb_pend *p;

	if (sb->n_pend >= SB_MAX_PENDING) {
		sb_log(sb, SB_LOG_WARN, "event=held_answers_full max=%d",
		       SB_MAX_PENDING);
		return NULL;
	}
	p = sb_xcalloc(1, sizeof(*p));
	p->sb = sb;
	p->req = rq->req;
	p->kind = kind;
	p->status = rq->status;
	p->body = rq->resp;
	p->ctype = rq->ctype;
	p->delay_ms = rq->delay_ms;
	rq->resp = NULL;
	p->timer = evtimer_new(sb->base, pend_timer_cb, p);
	if (p->timer == NULL)
		abort();
	p->next = sb->pend_head;
	if (sb->pend_head)
		sb->pend_head->prev = p;
	sb->pend_head = p;
	sb->n_pend++;
	return p;
}

static void
pend_callbacks_done(struct sb *sb, void *arg, int status, const char *body,
                    size_t len)
{
	struct sb_pend *p = arg;

	(void)status;
	(void)body;
	(void)len;
	p->waiting = false;
	if (sb->stopping)
		return; /* sb_http_stop() frees it */
	if (p->delay_ms > 0)
		arm(p->timer, p->delay_ms);
	else
		pend_reply(p);
}

static void
provider_error500(struct sb_rq *rq)
{
	switch (sb_ops[rq->op].prov) {
	case SB_MPESA:
		sb_mpesa_error500(rq);
		break;
	case SB_MOMO:
		sb_momo_error500(rq);
		break;
	case SB_ORANGE:
		sb_orange_error500(rq);
		break;
	case SB_FLW:
		sb_flw_error500(rq);
		break;
	case SB_PAYSTACK:
		sb_paystack_error500(rq);
		break;
	default:
		sb_rq_json(rq, 500, json_pack("{s:s}", "error", "internal"));
	}
}

/* Answers rq as its faults say. */
static void
finish(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	unsigned f = sb_rq_faults(rq, NULL, false);
	struct sb_charge *c = rq->charge;
	struct sb_pend *p;
	bool cbr = (f & SB_FBIT(SB_F_CALLBACK_BEFORE_RESPONSE)) && c != NULL &&
	           c->due_ms != 0;

	if (f & SB_FBIT(SB_F_TIMEOUT)) {
		p = pend_new(rq, PEND_HOLD);
		if (p != NULL) {
			struct evhttp_connection *evcon =
			    evhttp_request_get_connection(rq->req);
			struct bufferevent *bev =
			    evcon ? evhttp_connection_get_bufferevent(evcon)
				  : NULL;
			evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;

			arm(p->timer, SB_TIMEOUT_HOLD_MS);
			if (fd >= 0) {
				p->closed = event_new(sb->base, fd, EV_CLOSED,
				                      pend_closed_cb, p);
				if (p->closed &&
				    event_add(p->closed, NULL) != 0) {
					event_free(p->closed);
					p->closed = NULL;
				}
			}
			return;
		}
	}
	if (f & SB_FBIT(SB_F_RESET_AFTER_COMMIT)) {
		p = pend_new(rq, PEND_RESET);
		if (p != NULL) {
			arm(p->timer, 0);
			return;
		}
	}
	if (f & SB_FBIT(SB_F_ERROR500_AFTER_COMMIT))
		provider_error500(rq);
	if (cbr || rq->delay_ms > 0) {
		p = pend_new(rq, PEND_REPLY);
		if (p != NULL) {
			if (cbr) {
				sb_charge_complete(sb, c, false);
				p->waiting = true;
				sb_send_callbacks(sb, c, pend_callbacks_done,
				                  p);
			} else {
				arm(p->timer, rq->delay_ms);
			}
			return;
		}
	}
	send_raw(rq->req, rq->status, rq->ctype, rq->resp, false);
}

/* ------------------------------------------------------------ conns */

static size_t
conn_slot(const struct sb *sb, const void *p)
{
	uintptr_t x = (uintptr_t)p;

	return (size_t)((x >> 4) * 0x9e3779b97f4a7c15u) & (sb->conns_cap - 1);
}

static bool
conn_has(const struct sb *sb, const void *p)
{
	size_t i = conn_slot(sb, p);

	while (sb->conns[i] != NULL) {
		if (sb->conns[i] == p)
			return true;
		i = (i + 1) & (sb->conns_cap - 1);
	}
	return false;
}

static void
conn_add(struct sb *sb, void *p)
{
	size_t i = conn_slot(sb, p);

	while (sb->conns[i] != NULL)
		i = (i + 1) & (sb->conns_cap - 1);
	sb->conns[i] = p;
	sb->n_conns++;
}

static void
conn_del(struct sb *sb, const void *p)
{
	size_t i = conn_slot(sb, p), j, k;

	while (sb->conns[i] != p) {
		if (sb->conns[i] == NULL)
			return;
		i = (i + 1) & (sb->conns_cap - 1);
	}
	sb->conns[i] = NULL;
	sb->n_conns--;
	/* backward-shift deletion keeps linear probing tombstone-free */
	j = i;
	for (;;) {
		j = (j + 1) & (sb->conns_cap - 1);
		if (sb->conns[j] == NULL)
			break;
		k = conn_slot(sb, sb->conns[j]);
		if ((j > i && (k <= i || k > j)) ||
		    (j < i && (k <= i && k > j))) {
			sb->conns[i] = sb->conns[j];
			sb->conns[j] = NULL;
			i = j;
		}
	}
}

/* A header and a body leave as two TLS records: without TCP_NODELAY the
 * second waits for the client's delayed ACK (40 ms a request). */
static void
set_nodelay(struct evhttp_connection *evcon)
{
	struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
	evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
	int one = 1;

	if (fd >= 0)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
conn_closed(struct evhttp_connection *evcon, void *arg)
{
	conn_del(arg, evcon);
}

/* ------------------------------------------------------------ dispatch */

static bool
prefix(const char *s, const char *p)
{
	return strncmp(s, p, strlen(p)) == 0;
}

static void
https_cb(struct evhttp_request *req, void *arg)
{
	struct sb *sb = arg;
	struct sb_rq rq;
	struct evkeyvalq query;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t blen = evbuffer_get_length(in);
	char *body, *dec;

	if (evcon != NULL && !conn_has(sb, evcon)) {
		if (sb->n_conns >= sb->max_conns) {
			sb->st_conn_refused++;
			sb_log(sb, SB_LOG_WARN,
			       "event=connection_refused "
			       "reason=max_connections max=%zu",
			       sb->max_conns);
			send_raw(
			    req, 503, "application/json",
			    "{\"error\":\"sandbox: too many connections\"}",
			    true);
			return;
		}
		conn_add(sb, evcon);
		evhttp_connection_set_closecb(evcon, conn_closed, sb);
		set_nodelay(evcon);
	}
	memset(&rq, 0, sizeof(rq));
	rq.sb = sb;
	rq.req = req;
	rq.method = evhttp_request_get_command(req);
	rq.in = evhttp_request_get_input_headers(req);
	rq.op = SB_OP_UNKNOWN;
	dec = path ? evhttp_uridecode(path, 0, NULL) : NULL;
	if (dec == NULL || !sb_copy(rq.path, sizeof(rq.path), dec)) {
		free(dec);
		sb->st_bad_requests++;
		send_raw(req, 414, "application/json",
		         "{\"error\":\"sandbox: path too long\"}", false);
		return;
	}
	free(dec);
	TAILQ_INIT(&query);
	if (qs != NULL && evhttp_parse_query_str(qs, &query) == 0)
		rq.query = &query;
	body = sb_xmalloc(blen + 1);
	evbuffer_copyout(in, body, blen);
	body[blen] = '\0';
	rq.body = body;
	rq.body_len = blen;

	if (prefix(rq.path, "/oauth/v1/") || prefix(rq.path, "/mpesa/"))
		sb_mpesa_handle(&rq);
	else if (prefix(rq.path, "/collection/") ||
	         prefix(rq.path, "/disbursement/"))
		sb_momo_handle(&rq);
	else if (prefix(rq.path, "/oauth/v2/") ||
	         prefix(rq.path, "/oauth/v3/") ||
	         prefix(rq.path, "/orange-money-webpay/"))
		sb_orange_handle(&rq);
	else if (prefix(rq.path, "/v3/"))
		sb_flw_handle(&rq);
	else if (strcmp(rq.path, "/charge") == 0 ||
	         prefix(rq.path, "/charge/") ||
	         prefix(rq.path, "/transaction/"))
		sb_paystack_handle(&rq);
	else
		sb_rq_json(
		    &rq, 404,
		    json_pack("{s:s,s:s}", "error", "not_found", "message",
		              "soko-sandbox: no provider serves this path"));
	sb->st_req[rq.op]++;
	if (rq.status >= 400 && rq.status < 500)
		sb->st_bad_requests++;
	if (sb_log_on(sb, SB_LOG_DEBUG))
		sb_log(sb, SB_LOG_DEBUG,
		       "event=request op=%s.%s path=%s status=%d",
		       rq.op == SB_OP_UNKNOWN
		           ? "none"
		           : sb_prov_names[sb_ops[rq.op].prov],
		       sb_ops[rq.op].name, rq.path, rq.status);
	finish(&rq);
	free(rq.resp);
	free(body);
	if (rq.query)
		evhttp_clear_headers(&query);
}

/* A TLS bufferevent for each accepted connection. */
static struct bufferevent *
https_bevcb(struct event_base *base, void *arg)
{
	struct sb *sb = arg;
	SSL *ssl = SSL_new(sb->server_ctx);

	if (ssl == NULL)
		return NULL;
	return bufferevent_openssl_socket_new(
	    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
}

/* ------------------------------------------------------------ outbound */

static void
out_unlink(struct sb_out *o)
{
	struct sb *sb = o->sb;

	if (o->prev)
		o->prev->next = o->next;
	else
		sb->out_head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	sb->n_out--;
}

static void
out_reap(struct sb *sb)
{
	while (sb->reap_head != NULL) {
		struct sb_out *o = sb->reap_head;

		sb->reap_head = o->next;
		evhttp_connection_free(o->evcon);
		free(o);
	}
}

static void
out_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	out_reap(arg);
}

static void
out_done_cb(struct evhttp_request *req, void *arg)
{
	struct sb_out *o = arg;
	struct sb *sb = o->sb;
	int status = 0;
	char *body = NULL;
	size_t len = 0;

	if (o->cancelled)
		return;
	if (req != NULL)
		status = evhttp_request_get_response_code(req);
	if (status > 0) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);

		len = evbuffer_get_length(in);
		if (len > SB_MAX_BODY)
			len = SB_MAX_BODY;
		body = sb_xmalloc(len + 1);
		evbuffer_copyout(in, body, len);
		body[len] = '\0';
	}
	if (status >= 200 && status < 300) {
		sb->st_cb_ok++;
		sb_log(sb, SB_LOG_DEBUG, "event=callback_done url=%s status=%d",
		       o->url, status);
	} else {
		sb->st_cb_failed++;
		sb_log(sb, SB_LOG_INFO,
		       "event=callback_failed url=%s status=%d", o->url,
		       status);
	}
	out_unlink(o);
	if (o->done)
		o->done(sb, o->arg, status, body, len);
	free(body);
	/* libevent still uses the connection after this callback returns:
	 * it is freed on the next loop turn (out_reap) */
	o->next = sb->reap_head;
	sb->reap_head = o;
	if (sb->reap_ev == NULL)
		sb->reap_ev = evtimer_new(sb->base, out_reap_cb, sb);
	if (sb->reap_ev == NULL)
		abort();
	if (!evtimer_pending(sb->reap_ev, NULL)) {
		struct timeval zero = {0, 0};

		evtimer_add(sb->reap_ev, &zero);
	}
}

int
sb_post(struct sb *sb, const char *url, const char *method, const char *body,
        const struct sb_hdr *hdr, size_t n_hdr, sb_post_done_fn done, void *arg)
{
	struct sb_url u;
	struct sb_out *o;
	struct evhttp_request *req;
	struct evkeyvalq *h;
	struct bufferevent *bev = NULL;
	struct timeval tv;
	char host[300], len[32];
	size_t i;

	if (sb_url_parse(&u, url) != 0) {
		sb->st_cb_failed++;
		sb_log(sb, SB_LOG_INFO, "event=callback_bad_url");
		return -1;
	}
	if (sb->n_out >= SB_MAX_CALLBACKS) {
		sb->st_cb_overflow++;
		sb_log(sb, SB_LOG_WARN, "event=callback_overflow max=%d",
		       SB_MAX_CALLBACKS);
		return -1;
	}
	o = sb_xcalloc(1, sizeof(*o));
	o->sb = sb;
	o->done = done;
	o->arg = arg;
	sb_copy(o->url, sizeof(o->url), url);
	if (u.is_https) {
		SSL *ssl = SSL_new(sb->client_ctx);
		struct in6_addr a6;
		struct in_addr a4;

		if (ssl == NULL)
			abort();
		if (inet_pton(AF_INET, u.host, &a4) != 1 &&
		    inet_pton(AF_INET6, u.host, &a6) != 1)
			SSL_set_tlsext_host_name(ssl, u.host);
		bev = bufferevent_openssl_socket_new(
		    sb->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
		    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
		if (bev == NULL)
			abort();
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	}
	o->evcon = evhttp_connection_base_bufferevent_new(sb->base, NULL, bev,
	                                                  u.host, u.port);
	if (o->evcon == NULL)
		abort();
	tv.tv_sec = (time_t)(sb->callback_timeout_ms / 1000);
	tv.tv_usec = (suseconds_t)(sb->callback_timeout_ms % 1000) * 1000;
	evhttp_connection_set_timeout_tv(o->evcon, &tv);
	evhttp_connection_set_retries(o->evcon, 0);
	req = evhttp_request_new(out_done_cb, o);
	if (req == NULL)
		abort();
	h = evhttp_request_get_output_headers(req);
	if ((u.is_https && u.port == 443) || (!u.is_https && u.port == 80))
		snprintf(host, sizeof(host), "%s", u.host);
	else
		snprintf(host, sizeof(host), "%s:%u", u.host, u.port);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "Content-Type", "application/json");
	evhttp_add_header(h, "User-Agent", "soko-sandbox");
	evhttp_add_header(h, "Connection", "close");
	snprintf(len, sizeof(len), "%zu", strlen(body));
	evhttp_add_header(h, "Content-Length", len);
	for (i = 0; i < n_hdr; i++)
		evhttp_add_header(h, hdr[i].name, hdr[i].value);
	evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
	o->next = sb->out_head;
	if (sb->out_head)
		sb->out_head->prev = o;
	sb->out_head = o;
	sb->n_out++;
	sb->st_cb_sent++;
	if (evhttp_make_request(o->evcon, req,
	                        strcmp(method, "PUT") == 0 ? EVHTTP_REQ_PUT
	                                                   : EVHTTP_REQ_POST,
	                        u.path) != 0) {
		/* libevent freed req; the callback was not called */
		out_unlink(o);
		evhttp_connection_free(o->evcon);
		free(o);
		sb->st_cb_failed++;
		return -1;
	}
	if (sb_log_on(sb, SB_LOG_DEBUG))
		sb_log(sb, SB_LOG_DEBUG, "event=callback_sent method=%s url=%s",
		       method, url);
	return 0;
}

static void
later_free(struct sb_later *l)
{
	struct sb *sb = l->sb;

	if (l->prev)
		l->prev->next = l->next;
	else
		sb->later_head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	sb->n_later--;
	event_free(l->ev);
	free(l->url);
	free(l->body);
	free(l);
}

static void
later_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sb_later *l = arg;

	(void)fd;
	(void)what;
	sb_post(l->sb, l->url, "POST", l->body, NULL, 0, NULL, NULL);
	later_free(l);
}

void
sb_post_later(struct sb *sb, int64_t delay_ms, char *url, char *body)
{
	struct sb_later *l;

	if (sb->n_later >= SB_MAX_CALLBACKS) {
		sb->st_cb_overflow++;
		sb_log(sb, SB_LOG_WARN, "event=callback_overflow max=%d",
		       SB_MAX_CALLBACKS);
		free(url);
		free(body);
		return;
	}
	l = sb_xcalloc(1, sizeof(*l));
	l->sb = sb;
	l->url = url;
	l->body = body;
	l->ev = evtimer_new(sb->base, later_cb, l);
	if (l->ev == NULL)
		abort();
	l->next = sb->later_head;
	if (sb->later_head)
		sb->later_head->prev = l;
	sb->later_head = l;
	sb->n_later++;
	arm(l->ev, delay_ms);
}

static void
group_done(struct sb *sb, void *arg, int status, const char *body, size_t len)
{
	struct cb_group *g = arg;

	(void)body;
	(void)len;
	if (g->gen == sb->ledger_gen && status >= 200 && status < 300)
		g->c->callbacks_ok++;
	if (--g->left > 0)
		return;
	if (g->done)
		g->done(sb, g->arg, 0, NULL, 0);
	free(g);
}

static int
build_callback(struct sb *sb, const struct sb_charge *c, bool lie,
               struct sb_cbmsg *m)
{
	memset(m, 0, sizeof(*m));
	m->method = "POST";
	switch (c->prov) {
	case SB_MPESA:
		return sb_mpesa_callback(sb, c, lie, m);
	case SB_MOMO:
		return sb_momo_callback(sb, c, lie, m);
	case SB_ORANGE:
		return sb_orange_callback(sb, c, lie, m);
	case SB_FLW:
		return sb_flw_callback(sb, c, lie, m);
	case SB_PAYSTACK:
		return sb_paystack_callback(sb, c, lie, m);
	}
	return -1;
}

void
sb_send_callbacks(struct sb *sb, struct sb_charge *c, sb_post_done_fn done,
                  void *arg)
{
	struct sb_cbmsg m;
	struct cb_group *g;
	int i, n;

	if (c->faults & SB_FBIT(SB_F_NO_CALLBACK)) {
		sb_log(sb, SB_LOG_DEBUG, "event=callback_suppressed ref=%s",
		       c->ref);
		goto none;
	}
	if (build_callback(
		sb, c, (c->faults & SB_FBIT(SB_F_CONTRADICTING_CALLBACK)) != 0,
		&m) != 0)
		goto none;
	n = (c->faults & SB_FBIT(SB_F_CALLBACK_TWICE)) ? 2 : 1;
	g = sb_xcalloc(1, sizeof(*g));
	g->c = c;
	g->gen = sb->ledger_gen;
	g->done = done;
	g->arg = arg;
	g->left = n;
	for (i = 0; i < n; i++) {
		c->callbacks_sent++;
		if (sb_post(sb, m.url, m.method, m.body, m.hdr, m.n_hdr,
		            group_done, g) != 0)
			g->left--;
	}
	free(m.url);
	free(m.body);
	if (g->left == 0) {
		free(g);
		goto none;
	}
	return;
none:
	if (done)
		done(sb, arg, 0, NULL, 0);
}

/* ------------------------------------------------------------ ctl API */

static void
ctl_json(struct evhttp_request *req, int status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	if (s == NULL)
		abort();
	send_raw(req, status, "application/json", s, false);
	free(s);
}

static void
ctl_error(struct evhttp_request *req, int status, const char *msg)
{
	ctl_json(req, status, json_pack("{s:s}", "error", msg));
}

static json_t *
ctl_body(struct evhttp_request *req, json_error_t *e)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	char *b = sb_xmalloc(n + 1);
	json_t *j;

	evbuffer_copyout(in, b, n);
	j = json_loadb(b, n, JSON_REJECT_DUPLICATES, e);
	free(b);
	return j;
}

static int
op_lookup(int prov, const char *name)
{
	int i;

	if (strcmp(name, "*") == 0)
		return SB_OP_N;
	for (i = 0; i < SB_OP_UNKNOWN; i++)
		if ((prov == SB_PROV_N || sb_ops[i].prov == prov) &&
		    strcmp(sb_ops[i].name, name) == 0)
			return i;
	return -1;
}

static int
parse_rule(struct sb_rule *r, json_t *o, char *err, size_t errlen)
{
	const char *prov = sb_jstr(o, "provider"), *op = sb_jstr(o, "op");
	const char *fault = sb_jstr(o, "fault"), *msisdn = sb_jstr(o, "msisdn");
	json_t *rate = json_object_get(o, "rate");
	json_t *count = json_object_get(o, "count");
	json_t *ms = json_object_get(o, "ms");
	int i;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(o) || prov == NULL || fault == NULL) {
		snprintf(err, errlen, "a rule needs provider and fault");
		return -1;
	}
	r->prov = -1;
	if (strcmp(prov, "*") == 0)
		r->prov = SB_PROV_N;
	for (i = 0; i < SB_PROV_N; i++)
		if (strcmp(prov, sb_prov_names[i]) == 0)
			r->prov = i;
	if (r->prov < 0) {
		snprintf(err, errlen, "unknown provider %.40s", prov);
		return -1;
	}
	r->op = op_lookup(r->prov, op ? op : "*");
	if (r->op < 0) {
		snprintf(err, errlen, "unknown op %.40s for %.20s", op, prov);
		return -1;
	}
	r->fault = SB_F_N;
	for (i = 0; i < SB_F_N; i++)
		if (strcmp(fault, sb_fault_names[i]) == 0)
			r->fault = (enum sb_fault)i;
	if (r->fault == SB_F_N) {
		snprintf(err, errlen, "unknown fault %.40s", fault);
		return -1;
	}
	if (rate == NULL) {
		r->rate = 1.0;
	} else if (json_is_number(rate) && json_number_value(rate) >= 0.0 &&
	           json_number_value(rate) <= 1.0) {
		r->rate = json_number_value(rate);
	} else {
		snprintf(err, errlen, "rate must be a number in [0,1]");
		return -1;
	}
	r->count = -1;
	if (count != NULL) {
		if (!json_is_integer(count) || json_integer_value(count) < 0) {
			snprintf(err, errlen, "count must be an integer >= 0");
			return -1;
		}
		r->count = json_integer_value(count);
	}
	if (ms != NULL) {
		if (!json_is_integer(ms) || json_integer_value(ms) < 0 ||
		    json_integer_value(ms) > 600000) {
			snprintf(err, errlen, "ms must be 0..600000");
			return -1;
		}
		r->ms = json_integer_value(ms);
	}
	if (r->fault == SB_F_DELAY && ms == NULL) {
		snprintf(err, errlen, "delay needs ms");
		return -1;
	}
	if (msisdn != NULL && !sb_copy(r->msisdn, sizeof(r->msisdn), msisdn)) {
		snprintf(err, errlen, "msisdn too long");
		return -1;
	}
	return 0;
}

static void
ctl_faults_post(struct sb *sb, struct evhttp_request *req)
{
	struct sb_rule rules[SB_MAX_RULES];
	json_error_t je;
	json_t *j = ctl_body(req, &je), *arr;
	char err[160];
	size_t i, n;

	arr = json_object_get(j, "rules");
	if (!json_is_array(arr)) {
		json_decref(j);
		ctl_error(req, 400, "body must be {\"rules\":[...]}");
		return;
	}
	n = json_array_size(arr);
	if (n > SB_MAX_RULES) {
		json_decref(j);
		ctl_error(req, 400, "too many rules (max 64)");
		return;
	}
	for (i = 0; i < n; i++)
		if (parse_rule(&rules[i], json_array_get(arr, i), err,
		               sizeof(err)) != 0) {
			json_decref(j);
			ctl_error(req, 400, err);
			return;
		}
	json_decref(j);
	memcpy(sb->rules, rules, n * sizeof(rules[0]));
	sb->n_rules = n;
	sb_log(sb, SB_LOG_INFO, "event=faults_set rules=%zu", n);
	ctl_json(req, 200, json_pack("{s:i}", "rules", (json_int_t)n));
}

static void
ctl_faults_get(struct sb *sb, struct evhttp_request *req)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < sb->n_rules; i++) {
		const struct sb_rule *r = &sb->rules[i];

		json_array_append_new(
		    a, json_pack(
			   "{s:s,s:s,s:s,s:f,s:s,s:I,s:I,s:I}", "provider",
			   r->prov == SB_PROV_N ? "*" : sb_prov_names[r->prov],
			   "op", r->op == SB_OP_N ? "*" : sb_ops[r->op].name,
			   "fault", sb_fault_names[r->fault], "rate", r->rate,
			   "msisdn", r->msisdn, "count", (json_int_t)r->count,
			   "ms", (json_int_t)r->ms, "fired",
			   (json_int_t)r->n_fired));
	}
	ctl_json(req, 200, json_pack("{s:o}", "rules", a));
}

static void
ctl_stats(struct sb *sb, struct evhttp_request *req)
{
	json_t *rq = json_object(), *fl = json_object();
	char name[64];
	int i;

	for (i = 0; i < SB_OP_N; i++) {
		snprintf(name, sizeof(name), "%s.%s",
		         sb_ops[i].prov == SB_PROV_N
		             ? "none"
		             : sb_prov_names[sb_ops[i].prov],
		         sb_ops[i].name);
		json_object_set_new(rq, name,
		                    json_integer((json_int_t)sb->st_req[i]));
	}
	for (i = 0; i < SB_F_N; i++)
		json_object_set_new(fl, sb_fault_names[i],
		                    json_integer((json_int_t)sb->st_fault[i]));
	ctl_json(req, 200,
	         json_pack(
		     "{s:o,s:o,s:{s:I,s:I,s:I,s:I,s:I},s:I,s:I,s:I,s:I,"
		     "s:I,s:I}",
		     "requests", rq, "faults", fl, "callbacks", "sent",
		     (json_int_t)sb->st_cb_sent, "ok", (json_int_t)sb->st_cb_ok,
		     "failed", (json_int_t)sb->st_cb_failed, "overflow",
		     (json_int_t)sb->st_cb_overflow, "in_flight",
		     (json_int_t)sb->n_out, "charges", (json_int_t)sb->n_all,
		     "charges_refused", (json_int_t)sb->st_charges_refused,
		     "connections", (json_int_t)sb->n_conns,
		     "connections_refused", (json_int_t)sb->st_conn_refused,
		     "held_answers", (json_int_t)sb->n_pend, "bad_requests",
		     (json_int_t)sb->st_bad_requests));
}

static void
ctl_reset(struct sb *sb, struct evhttp_request *req)
{
	sb_ledger_reset(sb);
	sb->ledger_gen++;
	sb->n_rules = 0;
	memset(sb->st_req, 0, sizeof(sb->st_req));
	memset(sb->st_fault, 0, sizeof(sb->st_fault));
	sb->st_cb_sent = sb->st_cb_ok = sb->st_cb_failed = 0;
	sb->st_cb_overflow = sb->st_conn_refused = 0;
	sb->st_charges_refused = sb->st_bad_requests = 0;
	sb_mpesa_reset(sb);
	sb_log(sb, SB_LOG_INFO, "event=reset");
	ctl_json(req, 200, json_pack("{s:b}", "reset", 1));
}

static void
ctl_webhooks(struct sb *sb, struct evhttp_request *req)
{
	json_error_t je;
	json_t *j = ctl_body(req, &je);
	const char *k;
	json_t *v;
	struct sb_url u;

	if (!json_is_object(j)) {
		json_decref(j);
		ctl_error(req, 400, "body must be a JSON object");
		return;
	}
	json_object_foreach(j, k, v)
	{
		int p = strcmp(k, "paystack") == 0      ? SB_PAYSTACK
		        : strcmp(k, "flutterwave") == 0 ? SB_FLW
		                                        : -1;
		if (p < 0 || !json_is_string(v) ||
		    sb_url_parse(&u, json_string_value(v)) != 0) {
			json_decref(j);
			ctl_error(
			    req, 400,
			    "keys paystack/flutterwave, values http(s) URLs");
			return;
		}
	}
	json_object_foreach(j, k, v)
	{
		int p = strcmp(k, "paystack") == 0 ? SB_PAYSTACK : SB_FLW;

		free(sb->webhook[p]);
		sb->webhook[p] = sb_xstrdup(json_string_value(v));
	}
	json_decref(j);
	ctl_json(req, 200,
	         json_pack("{s:s?,s:s?}", "paystack", sb->webhook[SB_PAYSTACK],
	                   "flutterwave", sb->webhook[SB_FLW]));
}

static void
ctl_cb(struct evhttp_request *req, void *arg)
{
	struct sb *sb = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	int m = evhttp_request_get_command(req);

	if (path == NULL)
		path = "";
	if (strcmp(path, "/ledger") == 0 && m == EVHTTP_REQ_GET) {
		struct evkeyvalq q;
		struct evbuffer *b = evbuffer_new();

		TAILQ_INIT(&q);
		if (b == NULL)
			abort();
		if (qs != NULL)
			evhttp_parse_query_str(qs, &q);
		sb_ledger_render(sb, b, evhttp_find_header(&q, "provider"),
		                 evhttp_find_header(&q, "client_ref"));
		evhttp_clear_headers(&q);
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Content-Type", "application/json");
		evhttp_send_reply(req, 200, NULL, b);
		evbuffer_free(b);
	} else if (strcmp(path, "/stats") == 0 && m == EVHTTP_REQ_GET) {
		ctl_stats(sb, req);
	} else if (strcmp(path, "/faults") == 0 && m == EVHTTP_REQ_POST) {
		ctl_faults_post(sb, req);
	} else if (strcmp(path, "/faults") == 0 && m == EVHTTP_REQ_GET) {
		ctl_faults_get(sb, req);
	} else if (strcmp(path, "/faults") == 0 && m == EVHTTP_REQ_DELETE) {
		sb->n_rules = 0;
		sb_log(sb, SB_LOG_INFO, "event=faults_cleared");
		ctl_json(req, 200, json_pack("{s:i}", "rules", 0));
	} else if (strcmp(path, "/reset") == 0 && m == EVHTTP_REQ_POST) {
		ctl_reset(sb, req);
	} else if (strcmp(path, "/tokens/expire") == 0 &&
	           m == EVHTTP_REQ_POST) {
		sb->token_min_serial = sb->token_serial;
		sb_log(sb, SB_LOG_INFO, "event=tokens_expired upto=%" PRIu64,
		       sb->token_min_serial);
		ctl_json(req, 200,
		         json_pack("{s:I}", "expired_upto",
		                   (json_int_t)sb->token_min_serial));
	} else if (strcmp(path, "/webhooks") == 0 && m == EVHTTP_REQ_POST) {
		ctl_webhooks(sb, req);
	} else if (strcmp(path, "/c2b/pay") == 0 && m == EVHTTP_REQ_POST) {
		json_error_t je;
		json_t *j = ctl_body(req, &je);

		if (j == NULL) {
			ctl_error(req, 400, "body must be JSON");
			return;
		}
		sb_mpesa_c2b_pay(sb, req, j); /* takes j */
	} else if (strcmp(path, "/healthz") == 0) {
		ctl_json(req, 200, json_pack("{s:s}", "status", "ok"));
	} else {
		ctl_error(req, 404, "no such control endpoint");
	}
}

/* ------------------------------------------------------------ start */

static int
bind_one(struct sb *sb, struct evhttp *h, const char *spec, char *out,
         size_t cap)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	long port;
	char *end;
	struct evhttp_bound_socket *bs;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[64];

	(void)sb;
	if (colon == NULL || (size_t)(colon - spec) >= sizeof(host))
		return -1;
	memcpy(host, spec, (size_t)(colon - spec));
	host[colon - spec] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	bs = evhttp_bind_socket_with_handle(h, host, (uint16_t)port);
	if (bs == NULL)
		return -1;
	if (getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss,
	                &sl) != 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;

		inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr));
		snprintf(out, cap, "%s:%u", addr, ntohs(s4->sin_port));
	} else {
		const struct sockaddr_in6 *s6 =
		    (const struct sockaddr_in6 *)&ss;

		inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr));
		snprintf(out, cap, "[%s]:%u", addr, ntohs(s6->sin6_port));
	}
	return 0;
}

int
sb_http_start(struct sb *sb, const char *listen, const char *ctl,
              char *https_addr, char *ctl_addr, size_t cap)
{
	size_t c = 16;

	while (c < sb->max_conns * 2)
		c *= 2;
	sb->conns = sb_xcalloc(c, sizeof(*sb->conns));
	sb->conns_cap = c;
	sb->https = evhttp_new(sb->base);
	sb->ctl = evhttp_new(sb->base);
	if (sb->https == NULL || sb->ctl == NULL)
		return -1;
	evhttp_set_bevcb(sb->https, https_bevcb, sb);
	evhttp_set_gencb(sb->https, https_cb, sb);
	evhttp_set_gencb(sb->ctl, ctl_cb, sb);
	evhttp_set_max_body_size(sb->https, SB_MAX_BODY);
	evhttp_set_max_body_size(sb->ctl, SB_MAX_BODY);
	evhttp_set_max_headers_size(sb->https, SB_MAX_HEADERS);
	evhttp_set_max_headers_size(sb->ctl, SB_MAX_HEADERS);
	evhttp_set_timeout(sb->https, 60);
	evhttp_set_timeout(sb->ctl, 60);
	evhttp_set_allowed_methods(sb->https, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                          EVHTTP_REQ_PUT |
	                                          EVHTTP_REQ_DELETE);
	evhttp_set_allowed_methods(sb->ctl, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                        EVHTTP_REQ_DELETE);
	if (bind_one(sb, sb->https, listen, https_addr, cap) != 0 ||
	    bind_one(sb, sb->ctl, ctl, ctl_addr, cap) != 0)
		return -1;
	return 0;
}

void
sb_http_stop(struct sb *sb)
{
	struct sb_out *o, *on;

	sb->stopping = true;
	/* callbacks in flight: their done hooks run with sb->stopping set,
	 * so they only release what they own */
	for (o = sb->out_head; o != NULL; o = o->next)
		o->cancelled = true;
	for (o = sb->out_head; o != NULL; o = on) {
		on = o->next;
		evhttp_connection_free(o->evcon);
		if (o->done)
			o->done(sb, o->arg, 0, NULL, 0);
		free(o);
	}
	sb->out_head = NULL;
	sb->n_out = 0;
	out_reap(sb);
	if (sb->reap_ev != NULL) {
		event_free(sb->reap_ev);
		sb->reap_ev = NULL;
	}
	while (sb->later_head != NULL)
		later_free(sb->later_head);
	/* held answers: a detached request is ours to free; an attached one
	 * goes with its connection in evhttp_free() */
	while (sb->pend_head != NULL) {
		struct sb_pend *p = sb->pend_head;

		if (evhttp_request_get_connection(p->req) == NULL)
			evhttp_request_free(p->req);
		pend_free(p);
	}
	if (sb->https)
		evhttp_free(sb->https);
	if (sb->ctl)
		evhttp_free(sb->ctl);
	free(sb->conns);
	sb->conns = NULL;
}
