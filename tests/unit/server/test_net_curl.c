/*
 * test_net_curl.c - server/net_curl.c against real sockets on 127.0.0.1 and
 * a real libevent loop: a scriptable raw HTTP/1.1 server (answers, closes
 * after reading, never answers, drips, cuts bodies short, sends too much)
 * and an HTTPS evhttp server with certificates made here by CAs made here
 * (tests/tls_stub.c).  Client and servers share one event_base, so every
 * test is single-threaded and nothing sleeps outside the loop.
 *
 * Checks: the outcome of every failure mode (docs/providers.md §Outbound
 * calls), keep-alive reuse counted by the server's accepts, curl's silent
 * re-send on a dead reused connection (allowed for GET, refused for POST),
 * the in-flight bound, the circuit breaker's full cycle with one probe,
 * ncurl_free() ending every call exactly once, and the /metrics series.
 * Every callback checks it is not running inside ncurl_submit().
 */
#include "../../../server/net_curl.c"
#include "../../tls_stub.c"

#include <ctype.h>
#include <signal.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "check.h"

/* How late past its timeout a call may end: the deadline is exact, this
 * is for a busy CI machine (2 cores shared by several jobs, ASan). */
#define SLACK_US 400000

static struct event_base *base;
static struct event *tick;
static bool in_submit; /* set around every ncurl_submit() */

/* ------------------------------------------------------------ the loop */

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until *n >= want or max_ms passed. */
static void
run_until(const int *n, int want, int max_ms)
{
	int64_t end = util_mono_us() + (int64_t)max_ms * 1000;

	while (*n < want && util_mono_us() < end)
		event_base_loop(base, EVLOOP_ONCE);
}

static void
run_for(int ms)
{
	int never = 0;

	run_until(&never, 1, ms);
}

/* ------------------------------------------------------ call recording */

struct got {
	int n; /* times the callback ran: must end at 1 */
	enum ncurl_outcome outcome;
	long status;
	char body[512];
	size_t body_len;
	char errstr[160];
	int64_t elapsed_us;
	int *counter; /* optional: incremented too */
};

static void
on_done(void *arg, const struct ncurl_result *r)
{
	struct got *g = arg;

	CHECK(!in_submit);
	g->n++;
	g->outcome = r->outcome;
	g->status = r->http_status;
	g->body_len = r->body_len;
	snprintf(g->body, sizeof g->body, "%.*s", (int)MIN(r->body_len, 511),
	         r->body);
	snprintf(g->errstr, sizeof g->errstr, "%s", r->errstr);
	g->elapsed_us = r->elapsed_us;
	if (r->outcome == NCURL_ANSWERED)
		CHECK_EQ_STR(r->errstr, "");
	else
		CHECK(r->errstr[0] != '\0' && r->http_status == 0);
	if (g->counter != NULL)
		(*g->counter)++;
}

static int
submit(struct ncurl *nc, enum ncurl_method m, const char *url, const char *body,
       const char *endpoint, int timeout_ms, struct got *g, const char **why)
{
	struct ncurl_req req = {0};
	const char *w = NULL;
	int rc;

	req.method = m;
	req.url = url;
	req.headers[0] = "Content-Type: application/json";
	req.headers[1] = "X-Test: 1";
	req.n_headers = 2;
	req.body = body;
	req.body_len = body != NULL ? strlen(body) : 0;
	req.timeout_ms = timeout_ms;
	req.endpoint = endpoint;
	in_submit = true;
	rc = ncurl_submit(nc, &req, on_done, g, &w);
	in_submit = false;
	if (why != NULL)
		*why = w;
	return rc;
}

static struct ncurl *
client(int max_inflight, int max_host_conns, int failures, int open_ms,
       size_t max_body, const char *ca)
{
	struct ncurl_config c = {0};
	char err[256] = "";
	struct ncurl *nc;

	c.ca_file = ca;
	c.default_timeout_ms = 3000;
	c.connect_timeout_ms = 1000;
	c.max_inflight = max_inflight;
	c.max_host_conns = max_host_conns;
	c.max_body = max_body;
	c.breaker_failures = failures;
	c.breaker_open_ms = open_ms;
	nc = ncurl_new(base, &c, err, sizeof err);
	if (nc == NULL)
		fprintf(stderr, "ncurl_new: %s\n", err);
	return nc;
}

/* ------------------------------------------- a scriptable HTTP server */

enum tact {
	T_ANSWER,      /* status + body, keep-alive */
	T_CLOSE,       /* read the request, close without a byte */
	T_RESET,       /* read the request, reset the connection (RST) */
	T_NEVER,       /* read the request, say nothing, keep it open */
	T_DRIP,        /* Content-Length 100, one byte every drip_ms */
	T_PARTIAL,     /* Content-Length 100, 10 bytes, close */
	T_BIG,         /* Content-Length big, big bytes */
	T_BIG_CHUNKED, /* chunked, big bytes in 1000-byte chunks */
};

struct tconn;

struct tsrv {
	struct evconnlistener *lis;
	int port;
	int n_accepts, n_requests, n_open;
	enum tact acts[8]; /* by request number; the last one repeats */
	int n_acts;
	int status;
	const char *body;
	size_t big;
	int drip_ms;
	int idle_close_ms; /* > 0: close a connection this long after an
	                      answer (a server-side keep-alive timeout) */
	char last_method[8];
	char last_body[256];
	struct tconn *conns;
};

struct tconn {
	struct tconn *next;
	struct tsrv *s;
	struct bufferevent *bev;
	struct event *tmr;
	int drip_left;
	bool close_after_write;
};

static void
tconn_free(struct tconn *c)
{
	struct tconn **pp;

	for (pp = &c->s->conns; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	c->s->n_open--;
	if (c->tmr != NULL)
		event_free(c->tmr);
	bufferevent_free(c->bev);
	free(c);
}

static void
t_timer(evutil_socket_t fd, short what, void *arg)
{
	struct tconn *c = arg;
	struct timeval tv = {0, c->s->drip_ms * 1000};

	(void)fd;
	(void)what;
	if (c->drip_left > 0) {
		bufferevent_write(c->bev, "d", 1);
		if (--c->drip_left > 0)
			evtimer_add(c->tmr, &tv);
		return;
	}
	tconn_free(c); /* the idle close */
}

/* Content-Length of a header block, 0 if none (lower-cased copy). */
static size_t
content_length(const char *h)
{
	char low[2048];
	const char *p;
	size_t i;

	for (i = 0; h[i] != '\0' && i + 1 < sizeof low; i++)
		low[i] = (char)tolower((unsigned char)h[i]);
	low[i] = '\0';
	p = strstr(low, "\r\ncontent-length:");
	return p != NULL ? strtoul(p + 17, NULL, 10) : 0;
}

static void
t_act(struct tconn *c, enum tact a)
{
	struct tsrv *s = c->s;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct timeval tv;
	size_t i;

	switch (a) {
	case T_ANSWER:
		evbuffer_add_printf(out,
		                    "HTTP/1.1 %d X\r\nContent-Type: "
		                    "application/json\r\nContent-Length: "
		                    "%zu\r\n\r\n%s",
		                    s->status, strlen(s->body), s->body);
		if (s->idle_close_ms > 0) {
			tv.tv_sec = 0;
			tv.tv_usec = s->idle_close_ms * 1000;
			if (c->tmr == NULL)
				c->tmr = evtimer_new(base, t_timer, c);
			evtimer_add(c->tmr, &tv);
		}
		break;
	case T_CLOSE:
		tconn_free(c);
		break;
	case T_RESET: {
		struct linger lg = {1, 0};

		setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER,
		           &lg, sizeof lg);
		tconn_free(c);
		break;
	}
	case T_NEVER:
		break;
	case T_DRIP:
		evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: "
		                         "100\r\n\r\n");
		c->drip_left = 100;
		tv.tv_sec = 0;
		tv.tv_usec = s->drip_ms * 1000;
		c->tmr = evtimer_new(base, t_timer, c);
		evtimer_add(c->tmr, &tv);
		break;
	case T_PARTIAL:
		evbuffer_add_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: "
		                         "100\r\n\r\n0123456789");
		c->close_after_write = true;
		break;
	case T_BIG:
		evbuffer_add_printf(out,
		                    "HTTP/1.1 200 OK\r\nContent-Length: "
		                    "%zu\r\n\r\n",
		                    s->big);
		for (i = 0; i < s->big; i++)
			evbuffer_add(out, "x", 1);
		break;
	case T_BIG_CHUNKED:
		evbuffer_add_printf(out,
		                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: "
		                    "chunked\r\n\r\n");
		for (i = 0; i < s->big; i += 1000) {
			size_t n = MIN(1000, s->big - i), k;

			evbuffer_add_printf(out, "%zx\r\n", n);
			for (k = 0; k < n; k++)
				evbuffer_add(out, "y", 1);
			evbuffer_add(out, "\r\n", 2);
		}
		evbuffer_add(out, "0\r\n\r\n", 5);
		break;
	}
}

static void
t_read(struct bufferevent *bev, void *arg)
{
	struct tconn *c = arg;
	struct tsrv *s = c->s;
	struct evbuffer *in = bufferevent_get_input(bev);

	for (;;) {
		struct evbuffer_ptr p =
		    evbuffer_search(in, "\r\n\r\n", 4, NULL);
		char h[2048];
		size_t hlen, cl, n;
		int idx;

		if (p.pos < 0)
			return;
		hlen = (size_t)p.pos + 4;
		if (hlen >= sizeof h) {
			tconn_free(c);
			return;
		}
		evbuffer_copyout(in, h, hlen);
		h[hlen] = '\0';
		cl = content_length(h);
		if (evbuffer_get_length(in) < hlen + cl)
			return;
		sscanf(h, "%7s", s->last_method);
		evbuffer_drain(in, hlen);
		n = MIN(cl, sizeof s->last_body - 1);
		evbuffer_remove(in, s->last_body, n);
		s->last_body[n] = '\0';
		evbuffer_drain(in, cl - n);
		idx = MIN(s->n_requests, s->n_acts - 1);
		s->n_requests++;
		t_act(c, s->acts[idx]);
		if (s->acts[idx] == T_CLOSE || s->acts[idx] == T_RESET)
			return; /* c is gone */
	}
}

static void
t_write(struct bufferevent *bev, void *arg)
{
	struct tconn *c = arg;

	(void)bev;
	if (c->close_after_write)
		tconn_free(c);
}

static void
t_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		tconn_free(arg);
}

static void
t_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
         int salen, void *arg)
{
	struct tsrv *s = arg;
	struct tconn *c = calloc(1, sizeof *c);

	(void)l;
	(void)sa;
	(void)salen;
	c->s = s;
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(c->bev, t_read, t_write, t_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->next = s->conns;
	s->conns = c;
	s->n_accepts++;
	s->n_open++;
}

static void
tsrv_start(struct tsrv *s, enum tact a)
{
	struct sockaddr_in sin = {0};
	socklen_t sl = sizeof sin;

	memset(s, 0, sizeof *s);
	s->acts[0] = a;
	s->n_acts = 1;
	s->status = 200;
	s->body = "{\"ok\":true}";
	s->drip_ms = 50;
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lis = evconnlistener_new_bind(
	    base, t_accept, s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
	    (struct sockaddr *)&sin, sizeof sin);
	if (s->lis == NULL)
		abort();
	getsockname(evconnlistener_get_fd(s->lis), (struct sockaddr *)&sin,
	            &sl);
	s->port = ntohs(sin.sin_port);
}

static void
tsrv_stop(struct tsrv *s)
{
	while (s->conns != NULL)
		tconn_free(s->conns);
	evconnlistener_free(s->lis);
}

static const char *
url_of(char *buf, size_t cap, const char *scheme, int port, const char *path)
{
	snprintf(buf, cap, "%s://127.0.0.1:%d%s", scheme, port, path);
	return buf;
}

/* A port nothing listens on: bound, then closed. */
static int
dead_port(void)
{
	struct sockaddr_in sin = {0};
	socklen_t sl = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof sin);
	getsockname(fd, (struct sockaddr *)&sin, &sl);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

/* Points stderr at a temporary file with curl logging at notice, so a
 * test can read the log lines it caused. */
static FILE *log_tmp;
static int log_saved_fd = -1;

static void
log_capture_start(void)
{
	fflush(stderr);
	log_tmp = tmpfile();
	log_saved_fd = dup(STDERR_FILENO);
	dup2(fileno(log_tmp), STDERR_FILENO);
	log_set_levels("error,curl=notice", NULL, 0);
}

/* Restores stderr; returns what was logged (caller frees). */
static char *
log_capture_end(void)
{
	char *buf;
	long n;

	log_set_levels("error", NULL, 0);
	dup2(log_saved_fd, STDERR_FILENO);
	close(log_saved_fd);
	fseek(log_tmp, 0, SEEK_END);
	n = ftell(log_tmp);
	rewind(log_tmp);
	buf = calloc(1, (size_t)n + 1);
	if (n > 0 && fread(buf, 1, (size_t)n, log_tmp) != (size_t)n)
		buf[0] = '\0';
	fclose(log_tmp);
	return buf;
}

/* ================================================================ tests */

/* The table of docs/providers.md §Outbound calls, row by row. */
static void
test_classify(void)
{
	const char *e;

	CHECK_EQ_INT(classify(CURLE_OK, true, false, false, &e),
	             NCURL_ANSWERED);
	CHECK_EQ_STR(e, "");
	CHECK_EQ_INT(classify(CURLE_COULDNT_CONNECT, false, false, false, &e),
	             NCURL_NOT_SENT);
	CHECK_EQ_INT(
	    classify(CURLE_COULDNT_RESOLVE_HOST, false, false, false, &e),
	    NCURL_NOT_SENT);
	CHECK_EQ_INT(
	    classify(CURLE_OPERATION_TIMEDOUT, false, false, false, &e),
	    NCURL_NOT_SENT);
	CHECK_EQ_INT(
	    classify(CURLE_PEER_FAILED_VERIFICATION, false, false, false, &e),
	    NCURL_NOT_SENT);
	CHECK_EQ_INT(classify(CURLE_SSL_CONNECT_ERROR, false, false, false, &e),
	             NCURL_NOT_SENT);
	CHECK_EQ_INT(classify(CURLE_OPERATION_TIMEDOUT, true, false, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_GOT_NOTHING, true, false, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_RECV_ERROR, true, false, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_SEND_ERROR, true, false, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_PARTIAL_FILE, true, false, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_WRITE_ERROR, true, true, false, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_INT(classify(CURLE_FILESIZE_EXCEEDED, true, false, false, &e),
	             NCURL_UNKNOWN);
	/* a refused re-send is UNKNOWN even though the last attempt never
	 * wrote a byte: the first attempt may have arrived */
	CHECK_EQ_INT(classify(CURLE_ABORTED_BY_CALLBACK, true, false, true, &e),
	             NCURL_UNKNOWN);
	CHECK_EQ_STR(ncurl_outcome_name(NCURL_ANSWERED), "answered");
	CHECK_EQ_STR(ncurl_outcome_name(NCURL_NOT_SENT), "not_sent");
	CHECK_EQ_STR(ncurl_outcome_name(NCURL_UNKNOWN), "unknown");
}

static void
test_answered(void)
{
	struct tsrv s;
	struct ncurl *nc;
	struct got g[4] = {{0}};
	char url[128];
	int done = 0, i;

	tsrv_start(&s, T_ANSWER);
	nc = client(16, 4, 5, 1000, 0, NULL);
	for (i = 0; i < 4; i++)
		g[i].counter = &done;
	s.status = 200;
	CHECK_EQ_INT(submit(nc, NCURL_GET,
	                    url_of(url, sizeof url, "http", s.port, "/a"), NULL,
	                    "t.a", 0, &g[0], NULL),
	             0);
	CHECK_EQ_INT(g[0].n, 0); /* never inside submit */
	run_until(&done, 1, 2000);
	CHECK_EQ_INT(g[0].n, 1);
	CHECK_EQ_INT(g[0].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(g[0].status, 200);
	CHECK_EQ_STR(g[0].body, "{\"ok\":true}");
	CHECK_EQ_STR(s.last_method, "GET");

	s.status = 404;
	s.body = "{\"error\":\"nope\"}";
	submit(nc, NCURL_POST, url, "{\"amount\":1}", "t.a", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	CHECK_EQ_INT(g[1].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(g[1].status, 404);
	CHECK_EQ_STR(g[1].body, "{\"error\":\"nope\"}");
	CHECK_EQ_STR(s.last_method, "POST");
	CHECK_EQ_STR(s.last_body, "{\"amount\":1}");

	s.status = 503;
	s.body = "";
	submit(nc, NCURL_PUT, url, "{\"x\":2}", "t.a", 0, &g[2], NULL);
	run_until(&done, 3, 2000);
	CHECK_EQ_INT(g[2].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(g[2].status, 503);
	CHECK_EQ_INT(g[2].body_len, 0);
	CHECK_EQ_STR(s.last_method, "PUT");
	CHECK_EQ_STR(s.last_body, "{\"x\":2}");

	/* an empty POST */
	s.status = 201;
	s.body = "{}";
	submit(nc, NCURL_POST, url, NULL, "t.a", 0, &g[3], NULL);
	run_until(&done, 4, 2000);
	CHECK_EQ_INT(g[3].status, 201);
	CHECK_EQ_INT(s.n_accepts, 1); /* all four on one connection */
	CHECK_EQ_INT(ncurl_inflight(nc), 0);
	ncurl_free(nc);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(g[i].n, 1);
	tsrv_stop(&s);
}

static void
test_bad_requests(void)
{
	struct ncurl *nc = client(16, 4, 5, 1000, 0, NULL);
	struct ncurl_req req = {0};
	struct got g = {0};
	const char *why = NULL;
	char long_ep[64];

	CHECK_EQ_INT(submit(nc, NCURL_GET, NULL, NULL, "t.b", 0, &g, &why), -1);
	CHECK(why != NULL && strstr(why, "bad request") != NULL);
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL, NULL, 0,
	                    &g, &why),
	             -1);
	memset(long_ep, 'e', 48);
	long_ep[48] = '\0';
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL, long_ep,
	                    0, &g, &why),
	             -1);
	long_ep[47] = '\0'; /* the limit is fine */
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL, long_ep,
	                    0, &g, &why),
	             0);
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", "body", "t.b",
	                    0, &g, &why),
	             -1);
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL, "t.b",
	                    -5, &g, &why),
	             -1);
	req.method = NCURL_GET;
	req.url = "http://127.0.0.1:1/";
	req.endpoint = "t.b";
	req.n_headers = NCURL_MAX_HEADERS + 1;
	CHECK_EQ_INT(ncurl_submit(nc, &req, on_done, &g, &why), -1);
	req.n_headers = 1;
	req.headers[0] = "X-Evil: a\r\nX-Injected: b";
	CHECK_EQ_INT(ncurl_submit(nc, &req, on_done, &g, &why), -1);
	CHECK(strstr(why, "CR/LF") != NULL);
	req.headers[0] = "X-Fine: a";
	CHECK_EQ_INT(ncurl_submit(nc, &req, NULL, &g, &why), -1);
	ncurl_free(nc); /* ends the one accepted call */
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_INT(g.outcome, NCURL_NOT_SENT);
}

static void
test_not_sent(void)
{
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g[3] = {{0}};
	char url[128];
	int done = 0, i;

	/* (DNS failures are NOT_SENT too, test_classify; not tried live:
	 * the test must not depend on the machine's resolver) */
	for (i = 0; i < 3; i++)
		g[i].counter = &done;
	submit(nc, NCURL_POST,
	       url_of(url, sizeof url, "http", dead_port(), "/"), "{}", "t.ns",
	       0, &g[0], NULL);
	submit(nc, NCURL_GET, "ftp://127.0.0.1/x", NULL, "t.ns", 0, &g[1],
	       NULL);
	submit(nc, NCURL_GET, "http://[::1:bad/", NULL, "t.ns", 0, &g[2], NULL);
	run_until(&done, 3, 5000);
	for (i = 0; i < 3; i++) {
		CHECK_EQ_INT(g[i].n, 1);
		CHECK_EQ_INT(g[i].outcome, NCURL_NOT_SENT);
	}
	CHECK(strstr(g[0].errstr, "connect") != NULL);
	CHECK(strstr(g[1].errstr, "scheme") != NULL);
	ncurl_free(nc);
}

/* Closed after reading, on a fresh connection: no retry, UNKNOWN. */
static void
test_close_after_read(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g[2] = {{0}};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_CLOSE);
	g[0].counter = g[1].counter = &done;
	submit(nc, NCURL_POST, url_of(url, sizeof url, "http", s.port, "/c"),
	       "{\"pay\":1}", "t.c", 0, &g[0], NULL);
	run_until(&done, 1, 2000);
	CHECK_EQ_INT(g[0].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[0].errstr, "no answer") != NULL);
	CHECK_EQ_INT(s.n_requests, 1);
	submit(nc, NCURL_GET, url, NULL, "t.c", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	CHECK_EQ_INT(g[1].outcome, NCURL_UNKNOWN);
	CHECK_EQ_INT(s.n_requests, 2); /* fresh connection: not re-sent */
	ncurl_free(nc);
	tsrv_stop(&s);
}

/* Reset (RST) after reading: UNKNOWN, not re-sent. */
static void
test_reset_after_read(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g = {0};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_RESET);
	g.counter = &done;
	submit(nc, NCURL_POST, url_of(url, sizeof url, "http", s.port, "/rst"),
	       "{\"pay\":1}", "t.rst", 0, &g, NULL);
	run_until(&done, 1, 2000);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_INT(g.outcome, NCURL_UNKNOWN);
	CHECK(strstr(g.errstr, "reset") != NULL);
	CHECK_EQ_INT(s.n_requests, 1);
	ncurl_free(nc);
	tsrv_stop(&s);
}

static void
test_timeout(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g = {0};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_NEVER);
	g.counter = &done;
	submit(nc, NCURL_POST, url_of(url, sizeof url, "http", s.port, "/t"),
	       "{}", "t.t", 300, &g, NULL);
	run_until(&done, 1, 3000);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_INT(g.outcome, NCURL_UNKNOWN);
	CHECK(strstr(g.errstr, "timed out after") != NULL);
	CHECK(g.elapsed_us >= 300000);
	CHECK(g.elapsed_us < 300000 + SLACK_US);
	CHECK_EQ_INT(s.n_requests, 1);
	ncurl_free(nc);
	tsrv_stop(&s);
}

static void
test_slow_and_partial(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g[2] = {{0}};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_DRIP);
	s.drip_ms = 20; /* 100 bytes would take 2 s */
	g[0].counter = g[1].counter = &done;
	submit(nc, NCURL_GET, url_of(url, sizeof url, "http", s.port, "/s"),
	       NULL, "t.s", 300, &g[0], NULL);
	run_until(&done, 1, 3000);
	CHECK_EQ_INT(g[0].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[0].errstr, "timed out after") != NULL);
	CHECK(g[0].elapsed_us < 300000 + SLACK_US);

	s.acts[0] = T_PARTIAL;
	submit(nc, NCURL_GET, url, NULL, "t.s", 0, &g[1], NULL);
	run_until(&done, 2, 3000);
	CHECK_EQ_INT(g[1].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[1].errstr, "cut short") != NULL);
	ncurl_free(nc);
	tsrv_stop(&s);
}

static void
test_too_big(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 4000, NULL);
	struct got g[4] = {{0}};
	char url[128];
	int done = 0, i;

	tsrv_start(&s, T_BIG);
	for (i = 0; i < 4; i++)
		g[i].counter = &done;
	url_of(url, sizeof url, "http", s.port, "/b");
	s.big = 4000; /* the limit: answered */
	submit(nc, NCURL_GET, url, NULL, "t.big", 0, &g[0], NULL);
	run_until(&done, 1, 2000);
	CHECK_EQ_INT(g[0].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(g[0].body_len, 4000);
	s.big = 4001; /* one past it, announced by Content-Length */
	submit(nc, NCURL_GET, url, NULL, "t.big", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	CHECK_EQ_INT(g[1].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[1].errstr, "max_body") != NULL);
	CHECK_EQ_INT(g[1].body_len, 0);
	s.acts[0] = T_BIG_CHUNKED; /* no length: caught while reading */
	s.big = 4001;
	submit(nc, NCURL_GET, url, NULL, "t.big", 0, &g[2], NULL);
	run_until(&done, 3, 2000);
	CHECK_EQ_INT(g[2].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[2].errstr, "max_body") != NULL);
	s.big = 4000;
	submit(nc, NCURL_GET, url, NULL, "t.big", 0, &g[3], NULL);
	run_until(&done, 4, 2000);
	CHECK_EQ_INT(g[3].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(g[3].body_len, 4000);
	CHECK(g[3].body[0] == 'y');
	ncurl_free(nc);
	tsrv_stop(&s);
}

static void
test_keepalive(void)
{
	struct tsrv s;
	struct ncurl *nc = client(64, 2, 100, 1000, 0, NULL);
	struct got g[16];
	char url[128];
	int done = 0, i;

	memset(g, 0, sizeof g);
	tsrv_start(&s, T_ANSWER);
	url_of(url, sizeof url, "http", s.port, "/k");
	for (i = 0; i < 10; i++) { /* sequential */
		g[i].counter = &done;
		CHECK_EQ_INT(submit(nc, i % 2 ? NCURL_POST : NCURL_GET, url,
		                    i % 2 ? "{}" : NULL, "t.k", 0, &g[i], NULL),
		             0);
		run_until(&done, i + 1, 2000);
		CHECK_EQ_INT(g[i].outcome, NCURL_ANSWERED);
	}
	CHECK_EQ_INT(s.n_accepts, 1);
	CHECK_EQ_INT(s.n_requests, 10);
	CHECK_EQ_INT(nc->connects, 1);
	/* 6 at once through a pool of 2 per host: 2 connections at most */
	memset(g, 0, sizeof g);
	done = 0;
	for (i = 0; i < 6; i++) {
		g[i].counter = &done;
		submit(nc, NCURL_GET, url, NULL, "t.k", 0, &g[i], NULL);
	}
	run_until(&done, 6, 3000);
	for (i = 0; i < 6; i++)
		CHECK_EQ_INT(g[i].outcome, NCURL_ANSWERED);
	CHECK(s.n_accepts <= 2);
	ncurl_free(nc);
	tsrv_stop(&s);
}

/*
 * A reused connection dies after the server read the request, before any
 * answer byte.  curl would re-send on a fresh connection: for GET it does
 * (the server sees the GET twice, harmless), for POST ncurl refuses, so
 * the POST is written exactly once and ends UNKNOWN.
 */
static void
test_reuse_race(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g[4] = {{0}};
	char url[128];
	int done = 0, i;

	tsrv_start(&s, T_ANSWER);
	for (i = 0; i < 4; i++)
		g[i].counter = &done;
	s.acts[0] = T_ANSWER;
	s.acts[1] = T_CLOSE;
	s.acts[2] = T_ANSWER;
	s.n_acts = 3;
	url_of(url, sizeof url, "http", s.port, "/r");
	submit(nc, NCURL_GET, url, NULL, "t.r", 0, &g[0], NULL);
	run_until(&done, 1, 2000);
	submit(nc, NCURL_GET, url, NULL, "t.r", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	CHECK_EQ_INT(g[1].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(s.n_requests, 3); /* the GET arrived twice */
	CHECK_EQ_INT(s.n_accepts, 2);

	/* now the same with a POST */
	s.n_requests = 0;
	s.n_accepts = 0;
	submit(nc, NCURL_POST, url, "{\"charge\":1}", "t.r", 0, &g[2], NULL);
	run_until(&done, 3, 2000);
	CHECK_EQ_INT(g[2].outcome, NCURL_ANSWERED); /* reused connection */
	CHECK_EQ_INT(s.n_accepts, 0);
	submit(nc, NCURL_POST, url, "{\"charge\":2}", "t.r", 0, &g[3], NULL);
	run_until(&done, 4, 2000);
	run_for(50); /* a re-sent copy would arrive now */
	CHECK_EQ_INT(g[3].n, 1);
	CHECK_EQ_INT(g[3].outcome, NCURL_UNKNOWN);
	CHECK(strstr(g[3].errstr, "not re-sent") != NULL);
	CHECK_EQ_INT(s.n_requests, 2); /* written once, never again */
	CHECK_EQ_STR(s.last_body, "{\"charge\":2}");
	ncurl_free(nc);
	tsrv_stop(&s);
}

/* The server closes idle keep-alive connections: curl sees the FIN before
 * reusing and opens a new one, so the POST is simply answered. */
static void
test_idle_close(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 100, 1000, 0, NULL);
	struct got g[2] = {{0}};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_ANSWER);
	s.idle_close_ms = 20;
	g[0].counter = g[1].counter = &done;
	url_of(url, sizeof url, "http", s.port, "/i");
	submit(nc, NCURL_POST, url, "{}", "t.i", 0, &g[0], NULL);
	run_until(&done, 1, 2000);
	run_for(100);
	CHECK_EQ_INT(s.n_open, 0);
	submit(nc, NCURL_POST, url, "{\"second\":1}", "t.i", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	CHECK_EQ_INT(g[1].outcome, NCURL_ANSWERED);
	CHECK_EQ_INT(s.n_accepts, 2);
	CHECK_EQ_INT(s.n_requests, 2);
	ncurl_free(nc);
	tsrv_stop(&s);
}

/* The bound, and ncurl_free() ending what is in flight exactly once:
 * sent ones UNKNOWN, queued ones (pool of 1) NOT_SENT. */
static void
test_inflight_and_free(void)
{
	struct tsrv s;
	struct ncurl *nc = client(3, 1, 100, 1000, 0, NULL);
	struct got g[4] = {{0}};
	const char *why = NULL;
	char url[128];
	int i;

	tsrv_start(&s, T_NEVER);
	url_of(url, sizeof url, "http", s.port, "/f");
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(
		    submit(nc, NCURL_POST, url, "{}", "t.f", 0, &g[i], NULL),
		    0);
	CHECK_EQ_INT(submit(nc, NCURL_POST, url, "{}", "t.f", 0, &g[3], &why),
	             -1);
	CHECK(why != NULL && strstr(why, "queue full") != NULL);
	CHECK_EQ_INT(ncurl_inflight(nc), 3);
	run_until(&s.n_requests, 1, 2000);
	run_for(50);
	CHECK_EQ_INT(s.n_requests, 1); /* one connection, one request */
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(g[i].n, 0);
	ncurl_free(nc);
	{
		int unknown = 0, not_sent = 0;

		for (i = 0; i < 3; i++) {
			CHECK_EQ_INT(g[i].n, 1);
			unknown += g[i].outcome == NCURL_UNKNOWN;
			not_sent += g[i].outcome == NCURL_NOT_SENT;
		}
		CHECK_EQ_INT(unknown, 1);
		CHECK_EQ_INT(not_sent, 2);
	}
	CHECK_EQ_INT(g[3].n, 0);
	tsrv_stop(&s);
}

/* A call queued behind a full pool still ends by its own timeout, as
 * NOT_SENT: it never had a connection. */
static void
test_queued_timeout(void)
{
	struct tsrv s;
	struct ncurl *nc = client(4, 1, 100, 1000, 0, NULL);
	struct got g[2] = {{0}};
	char url[128];
	int done = 0;

	tsrv_start(&s, T_NEVER);
	g[0].counter = g[1].counter = &done;
	url_of(url, sizeof url, "http", s.port, "/q");
	submit(nc, NCURL_POST, url, "{}", "t.q", 2000, &g[0], NULL);
	run_until(&s.n_requests, 1, 2000);
	submit(nc, NCURL_POST, url, "{}", "t.q", 300, &g[1], NULL);
	run_until(&done, 1, 3000);
	CHECK_EQ_INT(g[1].n, 1);
	CHECK_EQ_INT(g[0].n, 0);
	CHECK_EQ_INT(g[1].outcome, NCURL_NOT_SENT);
	CHECK(g[1].elapsed_us >= 300000 && g[1].elapsed_us < 300000 + SLACK_US);
	CHECK(strstr(g[1].errstr, "pooled connection") != NULL);
	CHECK_EQ_INT(s.n_requests, 1);
	ncurl_free(nc);
	CHECK_EQ_INT(g[0].n, 1);
	tsrv_stop(&s);
}

/* A callback that submits again from inside ncurl_free: refused. */
static struct ncurl *resubmit_nc;
static int resubmit_rc = 99;

static void
on_done_resubmit(void *arg, const struct ncurl_result *r)
{
	struct got g2 = {0};

	on_done(arg, r);
	resubmit_rc = submit(resubmit_nc, NCURL_GET, "http://127.0.0.1:1/",
	                     NULL, "t.x", 0, &g2, NULL);
}

static void
test_free_resubmit(void)
{
	struct ncurl_req req = {0};
	struct got g = {0};

	resubmit_nc = client(4, 1, 100, 1000, 0, NULL);
	req.method = NCURL_GET;
	req.url = "http://127.0.0.1:1/";
	req.endpoint = "t.x";
	CHECK_EQ_INT(
	    ncurl_submit(resubmit_nc, &req, on_done_resubmit, &g, NULL), 0);
	ncurl_free(resubmit_nc);
	CHECK_EQ_INT(g.n, 1);
	CHECK_EQ_INT(resubmit_rc, -1);
}

static void
test_breaker(void)
{
	struct tsrv s;
	struct ncurl *nc = client(64, 4, 3, 150, 0, NULL);
	struct got g[32];
	const char *why = NULL;
	char url[128], name[16], *logs;
	int done = 0, i, n = 0;

	log_capture_start();
	memset(g, 0, sizeof g);
	for (i = 0; i < 32; i++)
		g[i].counter = &done;
	tsrv_start(&s, T_ANSWER);
	url_of(url, sizeof url, "http", s.port, "/br");
	/* 4xx is an answer: five of them leave it closed */
	s.status = 404;
	for (i = 0; i < 5; i++) {
		submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n++], NULL);
		run_until(&done, n, 2000);
	}
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_CLOSED);
	/* three 5xx in a row open it */
	s.status = 503;
	for (i = 0; i < 3; i++) {
		CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_CLOSED);
		CHECK_EQ_INT(
		    submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n++], NULL),
		    0);
		run_until(&done, n, 2000);
	}
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_OPEN);
	CHECK_EQ_INT(submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n], &why),
	             -1);
	CHECK(strstr(why, "breaker open") != NULL);
	/* another endpoint is not affected */
	CHECK_EQ_INT(ncurl_breaker(nc, "t.other"), NCURL_CLOSED);
	CHECK_EQ_INT(
	    submit(nc, NCURL_GET, url, NULL, "t.other", 0, &g[n++], NULL), 0);
	run_until(&done, n, 2000);
	/* half-open after open_ms: one probe, a second call is refused */
	run_for(170);
	s.acts[0] = T_NEVER;
	CHECK_EQ_INT(
	    submit(nc, NCURL_GET, url, NULL, "t.br", 400, &g[n++], NULL), 0);
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_HALF_OPEN);
	CHECK_EQ_INT(submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n], &why),
	             -1);
	CHECK(strstr(why, "probe") != NULL);
	/* the probe times out (UNKNOWN): open again */
	run_until(&done, n, 2000);
	CHECK_EQ_INT(g[n - 1].outcome, NCURL_UNKNOWN);
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_OPEN);
	CHECK_EQ_INT(submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n], &why),
	             -1);
	/* next probe is answered 200: closed */
	run_for(170);
	s.acts[0] = T_ANSWER;
	s.status = 200;
	CHECK_EQ_INT(submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n++], NULL),
	             0);
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_HALF_OPEN);
	run_until(&done, n, 2000);
	CHECK_EQ_INT(ncurl_breaker(nc, "t.br"), NCURL_CLOSED);
	CHECK_EQ_INT(submit(nc, NCURL_GET, url, NULL, "t.br", 0, &g[n++], NULL),
	             0);
	run_until(&done, n, 2000);
	CHECK_EQ_INT(g[n - 1].status, 200);
	/* NOT_SENT counts too: connection refused opens another one */
	url_of(url, sizeof url, "http", dead_port(), "/x");
	for (i = 0; i < 3; i++) {
		submit(nc, NCURL_POST, url, "{}", "t.dead", 0, &g[n++], NULL);
		run_until(&done, n, 2000);
		CHECK_EQ_INT(g[n - 1].outcome, NCURL_NOT_SENT);
	}
	CHECK_EQ_INT(ncurl_breaker(nc, "t.dead"), NCURL_OPEN);
	/* the table of breakers is bounded */
	for (i = nc->n_eps; i < NCURL_MAX_ENDPOINTS; i++) {
		snprintf(name, sizeof name, "t.e%d", i);
		CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL,
		                    name, 1, &g[31], NULL),
		             0);
	}
	CHECK_EQ_INT(submit(nc, NCURL_GET, "http://127.0.0.1:1/", NULL,
	                    "t.one-too-many", 1, &g[30], &why),
	             -1);
	CHECK(strstr(why, "too many endpoints") != NULL);
	ncurl_free(nc);
	tsrv_stop(&s);
	/* every state change logged once, in order */
	logs = log_capture_end();
	CHECK(strstr(logs, "sub=curl event=breaker_open endpoint=t.br "
	                   "from=closed") != NULL);
	CHECK(strstr(logs, "event=breaker_half_open endpoint=t.br "
	                   "from=open") != NULL);
	CHECK(strstr(logs, "event=breaker_open endpoint=t.br "
	                   "from=half_open") != NULL);
	CHECK(strstr(logs, "event=breaker_closed endpoint=t.br "
	                   "from=half_open") != NULL);
	CHECK(strstr(logs, "event=breaker_open endpoint=t.dead") != NULL);
	{
		const char *p = logs;
		int changes = 0;

		while ((p = strstr(p, "endpoint=t.br from=")) != NULL) {
			changes++;
			p++;
		}
		/* open, half-open, open, half-open, closed */
		CHECK_EQ_INT(changes, 5);
	}
	free(logs);
}

/* ------------------------------------------------------------- https */

static int tls_hits;

static void
on_tls_request(struct evhttp_request *req, void *arg)
{
	struct evbuffer *b = evbuffer_new();

	(void)arg;
	tls_hits++;
	evbuffer_add_printf(b, "{\"status\":\"SUCCESSFUL\"}");
	evhttp_add_header(evhttp_request_get_output_headers(req),
	                  "Content-Type", "application/json");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void
test_https(void)
{
	struct tls_ca ca, other;
	struct tls_srv srv, wrong_name;
	SSL_CTX *ctx, *ctx_wrong;
	struct ncurl *nc, *nc_other;
	struct tsrv plain;
	struct got g[10];
	char url[128], ca_pem[] = "/tmp/soko-test-ca-XXXXXX",
		       other_pem[] = "/tmp/soko-test-ca2-XXXXXX";
	int done = 0, i, fd;

	memset(g, 0, sizeof g);
	for (i = 0; i < 10; i++)
		g[i].counter = &done;
	CHECK_EQ_INT(tls_ca_make(&ca, "soko test CA"), 0);
	CHECK_EQ_INT(tls_ca_make(&other, "some other CA"), 0);
	fd = mkstemp(ca_pem);
	close(fd);
	fd = mkstemp(other_pem);
	close(fd);
	CHECK_EQ_INT(tls_ca_write_pem(&ca, ca_pem), 0);
	CHECK_EQ_INT(tls_ca_write_pem(&other, other_pem), 0);
	ctx = tls_server_ctx(&ca, "IP:127.0.0.1,DNS:localhost");
	ctx_wrong = tls_server_ctx(&ca, "DNS:provider.example");
	CHECK(ctx != NULL && ctx_wrong != NULL);
	CHECK_EQ_INT(tls_srv_start(&srv, base, ctx, 0, on_tls_request, NULL),
	             0);
	CHECK_EQ_INT(tls_srv_start(&wrong_name, base, ctx_wrong, 0,
	                           on_tls_request, NULL),
	             0);
	tsrv_start(&plain, T_ANSWER);

	nc = client(16, 4, 100, 1000, 0, ca_pem);
	nc_other = client(16, 4, 100, 1000, 0, other_pem);
	url_of(url, sizeof url, "https", srv.port,
	       "/collection/v1_0/requesttopay/x");
	for (i = 0; i < 5; i++) { /* trusted, and kept alive */
		submit(nc, i % 2 ? NCURL_POST : NCURL_GET, url,
		       i % 2 ? "{}" : NULL, "t.tls", 0, &g[i], NULL);
		run_until(&done, i + 1, 3000);
		CHECK_EQ_INT(g[i].outcome, NCURL_ANSWERED);
		CHECK_EQ_INT(g[i].status, 200);
	}
	CHECK_EQ_STR(g[0].body, "{\"status\":\"SUCCESSFUL\"}");
	CHECK_EQ_INT(srv.n_accepts, 1);
	CHECK_EQ_INT(tls_hits, 5);
	/* signed by a CA we do not trust: never sent */
	submit(nc_other, NCURL_POST, url, "{\"charge\":1}", "t.tls", 0, &g[5],
	       NULL);
	run_until(&done, 6, 3000);
	CHECK_EQ_INT(g[5].outcome, NCURL_NOT_SENT);
	CHECK(strstr(g[5].errstr, "certificate") != NULL ||
	      strstr(g[5].errstr, "TLS") != NULL);
	CHECK_EQ_INT(tls_hits, 5);
	/* our CA, but a certificate for another name: never sent */
	submit(nc, NCURL_POST,
	       url_of(url, sizeof url, "https", wrong_name.port, "/"),
	       "{\"charge\":1}", "t.tls", 0, &g[6], NULL);
	run_until(&done, 7, 3000);
	CHECK_EQ_INT(g[6].outcome, NCURL_NOT_SENT);
	CHECK_EQ_INT(tls_hits, 5);
	/* https to a plain HTTP server: the handshake fails, not sent */
	submit(nc, NCURL_POST,
	       url_of(url, sizeof url, "https", plain.port, "/"), "{}", "t.tls",
	       0, &g[7], NULL);
	run_until(&done, 8, 3000);
	CHECK_EQ_INT(g[7].outcome, NCURL_NOT_SENT);
	CHECK(strstr(g[7].errstr, "TLS") != NULL);
	CHECK_EQ_INT(plain.n_requests, 0);
	/* no CA file at all (system store): our CA is not in it */
	ncurl_free(nc_other);
	nc_other = client(16, 4, 100, 1000, 0, NULL);
	submit(nc_other, NCURL_GET,
	       url_of(url, sizeof url, "https", srv.port, "/"), NULL, "t.tls",
	       0, &g[8], NULL);
	run_until(&done, 9, 3000);
	CHECK_EQ_INT(g[8].outcome, NCURL_NOT_SENT);
	CHECK_EQ_INT(tls_hits, 5);
	/* a CA file that does not exist: ncurl_new says so */
	{
		struct ncurl_config c = {0};
		char err[256] = "";

		c.ca_file = "/nonexistent/ca.pem";
		CHECK(ncurl_new(base, &c, err, sizeof err) == NULL);
		CHECK(strstr(err, "ca_file") != NULL);
	}
	ncurl_free(nc);
	ncurl_free(nc_other);
	for (i = 0; i < 9; i++)
		CHECK_EQ_INT(g[i].n, 1);
	tsrv_stop(&plain);
	tls_srv_stop(&srv);
	tls_srv_stop(&wrong_name);
	SSL_CTX_free(ctx);
	SSL_CTX_free(ctx_wrong);
	tls_ca_fini(&ca);
	tls_ca_fini(&other);
	unlink(ca_pem);
	unlink(other_pem);
}

/* ----------------------------------------------------------- metrics */

static int dummy_calls;

static void
dummy_hook(struct metrics_out *o, void *arg)
{
	(void)arg;
	dummy_calls++;
	metrics_printf(o, "soko_test_dummy %d\n", 42);
}

static void
test_metrics(void)
{
	struct tsrv s;
	struct ncurl *nc = client(16, 4, 1, 60000, 0, NULL), *nc2;
	struct got g[3] = {{0}};
	char url[128], *text;
	const char *p;
	size_t len;
	int done = 0, i, added = 0;

	tsrv_start(&s, T_ANSWER);
	g[0].counter = g[1].counter = g[2].counter = &done;
	url_of(url, sizeof url, "http", s.port, "/m");
	submit(nc, NCURL_GET, url, NULL, "mpesa.stkpush", 0, &g[0], NULL);
	run_until(&done, 1, 2000);
	s.status = 500;
	submit(nc, NCURL_GET, url, NULL, "we\"ird", 0, &g[1], NULL);
	run_until(&done, 2, 2000);
	submit(nc, NCURL_GET, url_of(url, sizeof url, "http", dead_port(), "/"),
	       NULL, "mpesa.stkpush", 0, &g[2], NULL);
	run_until(&done, 3, 2000);
	nc2 = client(16, 4, 1, 60000, 0, NULL); /* not exported: one owner */
	text = metrics_render(&len);
	CHECK(strstr(text, "soko_curl_calls_total{endpoint=\"mpesa.stkpush\","
	                   "outcome=\"answered\"} 1\n") != NULL);
	CHECK(strstr(text, "soko_curl_calls_total{endpoint=\"mpesa.stkpush\","
	                   "outcome=\"not_sent\"} 1\n") != NULL);
	CHECK(strstr(text, "soko_curl_answers_total{endpoint=\"we\\\"ird\","
	                   "class=\"5xx\"} 1\n") != NULL);
	CHECK(strstr(text, "soko_curl_breaker_state{endpoint=\"we\\\"ird\"} "
	                   "1\n") != NULL);
	CHECK(strstr(text, "soko_curl_breaker_state{endpoint=\"mpesa.stkpush\"}"
	                   " 1\n") != NULL);
	CHECK(strstr(text, "soko_curl_inflight 0\n") != NULL);
	CHECK(strstr(text, "soko_curl_call_seconds_count{endpoint=\"mpesa."
	                   "stkpush\"} 2\n") != NULL);
	CHECK(strstr(text, "soko_curl_call_seconds_bucket{endpoint=\"mpesa."
	                   "stkpush\",le=\"+Inf\"} 2\n") != NULL);
	CHECK(strstr(text, "soko_curl_refused_total{reason=\"breaker_open\"} "
	                   "0\n") != NULL);
	p = strstr(text, "# TYPE soko_curl_calls_total counter\n");
	CHECK(p != NULL &&
	      strstr(p + 1, "# TYPE soko_curl_calls_total") == NULL);
	free(text);
	/* the hook table: bounded, and removal works */
	for (i = 0; i < METRICS_MAX_HOOKS; i++)
		added += metrics_hook_add(dummy_hook, &added) == 0;
	CHECK_EQ_INT(added, METRICS_MAX_HOOKS - 1); /* nc holds one */
	text = metrics_render(&len);
	CHECK(strstr(text, "soko_test_dummy 42\n") != NULL);
	CHECK_EQ_INT(dummy_calls, added);
	free(text);
	metrics_hook_remove(dummy_hook, &added);
	dummy_calls = 0;
	ncurl_free(nc);
	ncurl_free(nc2);
	text = metrics_render(&len);
	CHECK(strstr(text, "soko_curl_") == NULL);
	CHECK_EQ_INT(dummy_calls, 0);
	free(text);
	tsrv_stop(&s);
}

int
main(void)
{
	struct timeval tv = {0, 5000};

	signal(SIGPIPE, SIG_IGN);
	log_set_levels("error", NULL, 0);
	base = event_base_new();
	tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	event_add(tick, &tv);
	RUN(test_classify);
	RUN(test_answered);
	RUN(test_bad_requests);
	RUN(test_not_sent);
	RUN(test_close_after_read);
	RUN(test_reset_after_read);
	RUN(test_timeout);
	RUN(test_slow_and_partial);
	RUN(test_too_big);
	RUN(test_keepalive);
	RUN(test_reuse_race);
	RUN(test_idle_close);
	RUN(test_inflight_and_free);
	RUN(test_queued_timeout);
	RUN(test_free_resubmit);
	RUN(test_breaker);
	RUN(test_https);
	RUN(test_metrics);
	event_free(tick);
	event_base_free(base);
	curl_global_cleanup();
	return check_report("test_net_curl");
}
