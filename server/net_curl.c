/*
 * net_curl.c - outbound HTTPS for the provider adapters (net_curl.h,
 * docs/providers.md §Outbound calls).
 *
 * Layer: net_* glue.  One CURLM per struct ncurl, driven by the caller's
 * event_base the way curl's multi-event.c example is: CURLMOPT_SOCKETFUNCTION
 * keeps one libevent event per socket curl wants watched,
 * CURLMOPT_TIMERFUNCTION arms one evtimer, and both call
 * curl_multi_socket_action() and then collect finished transfers.  Nothing
 * here ever calls curl_multi_socket_action() from inside a curl callback,
 * and nothing calls a completion callback from inside ncurl_submit():
 * refusals return -1 there, everything else ends from the loop.
 *
 * Invariants:
 * - every accepted call is on nc->active until it ends, and ends exactly
 *   once (finish()), by curl's CURLMSG_DONE or by ncurl_free();
 * - the outcome never guesses in the caller's favour: a call is NOT_SENT
 *   only if curl never reached the point of writing the request
 *   (CURLOPT_PREREQFUNCTION never ran for it), ANSWERED only if curl
 *   returned CURLE_OK with the whole body, and UNKNOWN otherwise;
 * - a non-idempotent request (POST, PUT) is written to the network at most
 *   once: curl's silent re-send on a fresh connection after a reused one
 *   died is refused in the prereq callback (see prereq() and the doc);
 * - memory is bounded: max_inflight calls, max_body bytes per answer,
 *   NCURL_FREE_MAX idle easy handles, NCURL_MAX_ENDPOINTS breakers, and
 *   curl's own connection cache (CURLMOPT_MAXCONNECTS).
 * Certificate verification is always on; there is no way to turn it off.
 */
#include "net_curl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "log.h"
#include "metrics.h"
#include "util.h"

#define NCURL_MAX_ENDPOINTS 64          /* breakers; past it submit refuses */
#define NCURL_ENDPOINT_MAX  47          /* bytes of an endpoint name */
#define NCURL_FREE_MAX      256         /* idle easy handles kept for reuse */
#define NCURL_KEEP_BUF      (64 * 1024) /* body buffers kept with a handle */

/* Call latency histogram bounds (microseconds). */
static const int64_t lat_le_us[] = {
    1000,   2500,   5000,    10000,   25000,   50000,    100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000};
#define N_LAT ARRAY_LEN(lat_le_us)

/* Why ncurl_submit() said no: counted per reason in /metrics. */
#define REFUSALS(X)                                                            \
	X(BAD_REQUEST, "bad_request")                                          \
	X(SHUTDOWN, "shutdown")                                                \
	X(QUEUE_FULL, "queue_full")                                            \
	X(ENDPOINTS_FULL, "endpoints_full")                                    \
	X(BREAKER_OPEN, "breaker_open")                                        \
	X(PROBE_BUSY, "breaker_probe_busy")                                    \
	X(CURL, "curl_error")

enum refusal {
#define X(id, name) REFUSE_##id,
	REFUSALS(X)
#undef X
	    REFUSE_COUNT
};

static const char *const refusal_names[REFUSE_COUNT] = {
#define X(id, name) name,
    REFUSALS(X)
#undef X
};

static const char *const breaker_names[] = {"closed", "open", "half_open"};

/* One endpoint: its circuit breaker and its metrics. */
struct ep {
	char name[NCURL_ENDPOINT_MAX + 1];
	enum ncurl_breaker_state state;
	int fails;             /* consecutive failures while closed */
	int64_t open_until_us; /* OPEN: a probe may go from then on */
	bool probe_busy;       /* HALF_OPEN: the one probe is in flight */
	int64_t calls[3];      /* ended calls by enum ncurl_outcome */
	int64_t status[5]; /* answers by class: 1xx-2xx, 3xx, 4xx, 5xx, other */
	int64_t lat[N_LAT + 1];
	int64_t lat_sum_us, lat_count;
};

/* One call: owns its easy handle while in flight and on the free list. */
struct call {
	struct call *next, *prev; /* nc->active (doubly) or nc->free_list */
	struct ncurl *nc;
	CURL *easy;
	/* the whole-call deadline: curl's CURLOPT_TIMEOUT_MS does not run
	 * while a transfer waits in curl's queue for a pooled connection */
	struct event *deadline;
	struct curl_slist *hdrs;
	char *req_body; /* copy of the request body */
	size_t req_cap;
	char *resp; /* answer body, NUL-terminated, at most max_body */
	size_t resp_len, resp_cap;
	struct ep *ep;
	ncurl_done_fn done;
	void *arg;
	int64_t start_us;
	int64_t timeout_us; /* whole call */
	enum ncurl_method method;
	int n_prereq;        /* times curl was about to write the request */
	bool is_probe;       /* the half-open breaker's probe */
	bool too_big;        /* the answer passed max_body */
	bool resend_refused; /* curl wanted to re-send a POST/PUT */
	char errbuf[CURL_ERROR_SIZE];
};

/* One socket curl asked us to watch. */
struct sock {
	struct sock *next, *prev;
	struct event *ev;
	curl_socket_t fd;
};

struct ncurl {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	struct ncurl_config cfg; /* defaults filled in */
	char *ca_file;           /* owned copy of cfg.ca_file */
	struct call *active;     /* calls in flight or queued in curl */
	struct call *free_list;
	int n_free;
	int n_inflight;
	struct sock *socks; /* every live struct sock, for ncurl_free */
	struct ep eps[NCURL_MAX_ENDPOINTS];
	int n_eps;
	bool closing;
	bool has_hook; /* registered with metrics_hook_add() */
	int64_t refused[REFUSE_COUNT];
	int64_t connects; /* connections curl opened (CURLINFO_NUM_CONNECTS) */
};

const char *
ncurl_outcome_name(enum ncurl_outcome o)
{
	switch (o) {
	case NCURL_ANSWERED:
		return "answered";
	case NCURL_NOT_SENT:
		return "not_sent";
	case NCURL_UNKNOWN:
		return "unknown";
	}
	return "?";
}

/* ------------------------------------------------------ classification */

/*
 * How a finished transfer maps to an outcome (docs/providers.md table).
 * rc: curl's result; sent: the prereq callback ran at least once, i.e.
 * curl got as far as writing the request on an established (and, for
 * https, verified) connection; too_big / resend_refused: our own reasons
 * to stop a transfer.  Returns the outcome; *errstr is static text, ""
 * when ANSWERED.  Pure: the unit test drives it directly.
 */
static enum ncurl_outcome
classify(CURLcode rc, bool sent, bool too_big, bool resend_refused,
         const char **errstr)
{
	if (too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		/* headers arrived, so the request did too */
		*errstr = "answer larger than max_body (not read; the "
			  "provider may have acted)";
		return NCURL_UNKNOWN;
	}
	if (resend_refused) {
		*errstr = "reused connection closed with no answer; "
			  "POST/PUT not re-sent (it may have arrived)";
		return NCURL_UNKNOWN;
	}
	if (rc == CURLE_OK) {
		*errstr = "";
		return NCURL_ANSWERED;
	}
	if (!sent) {
		switch (rc) {
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			*errstr = "could not resolve the host";
			break;
		case CURLE_COULDNT_CONNECT:
			*errstr = "could not connect (refused or unreachable)";
			break;
		case CURLE_OPERATION_TIMEDOUT:
			*errstr = "timed out before the request was sent "
				  "(waiting for a pooled connection, "
				  "connecting or TLS handshake)";
			break;
		case CURLE_PEER_FAILED_VERIFICATION:
			*errstr = "TLS: the server certificate did not verify";
			break;
		case CURLE_SSL_CONNECT_ERROR:
			*errstr = "TLS handshake failed";
			break;
		case CURLE_SSL_CACERT_BADFILE:
			*errstr = "TLS: cannot load the CA file";
			break;
		case CURLE_URL_MALFORMAT:
			*errstr = "malformed URL";
			break;
		case CURLE_UNSUPPORTED_PROTOCOL:
			*errstr = "URL scheme is not http or https";
			break;
		default:
			*errstr = curl_easy_strerror(rc);
			break;
		}
		return NCURL_NOT_SENT;
	}
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		*errstr = "timed out after the request was sent";
		break;
	case CURLE_GOT_NOTHING:
		*errstr = "connection closed with no answer (empty reply)";
		break;
	case CURLE_PARTIAL_FILE:
		*errstr = "answer cut short (partial body)";
		break;
	case CURLE_RECV_ERROR:
		*errstr = "receive failed after the request was sent "
			  "(connection reset?)";
		break;
	case CURLE_SEND_ERROR:
		*errstr = "send failed part-way: the request may have arrived";
		break;
	case CURLE_WEIRD_SERVER_REPLY:
		*errstr = "the answer was not HTTP";
		break;
	default:
		*errstr = curl_easy_strerror(rc);
		break;
	}
	return NCURL_UNKNOWN;
}

/* -------------------------------------------------------------- breaker */

static int
ep_index(const struct ncurl *nc, const char *name)
{
	int i;

	for (i = 0; i < nc->n_eps; i++)
		if (strcmp(nc->eps[i].name, name) == 0)
			return i;
	return -1;
}

static void
ep_set_state(struct ncurl *nc, struct ep *e, enum ncurl_breaker_state st,
             const char *why)
{
	enum log_level lv =
	    st == NCURL_OPEN ? LOG_LEVEL_WARN : LOG_LEVEL_NOTICE;

	log_msg(LOG_CURL, lv,
	        "event=breaker_%s endpoint=%s from=%s failures=%d "
	        "open_ms=%d why=\"%s\"",
	        breaker_names[st], e->name, breaker_names[e->state], e->fails,
	        nc->cfg.breaker_open_ms, why);
	e->state = st;
	if (st == NCURL_OPEN)
		e->open_until_us =
		    util_mono_us() + (int64_t)nc->cfg.breaker_open_ms * 1000;
	if (st != NCURL_HALF_OPEN)
		e->probe_busy = false;
	if (st == NCURL_CLOSED)
		e->fails = 0;
}

/* A call on e ended (not by shutdown): move the breaker. */
static void
ep_account(struct ncurl *nc, struct call *c, const struct ncurl_result *r)
{
	struct ep *e = c->ep;
	bool failed = r->outcome != NCURL_ANSWERED || r->http_status >= 500;

	switch (e->state) {
	case NCURL_CLOSED:
		if (!failed) {
			e->fails = 0;
		} else if (++e->fails >= nc->cfg.breaker_failures) {
			ep_set_state(nc, e, NCURL_OPEN,
			             r->outcome == NCURL_ANSWERED ? "HTTP 5xx"
			                                          : r->errstr);
		}
		break;
	case NCURL_HALF_OPEN:
		/* only the probe decides; older calls ending now say
		 * nothing about the provider's present state */
		if (!c->is_probe)
			break;
		if (failed) {
			e->fails++;
			ep_set_state(nc, e, NCURL_OPEN,
			             r->outcome == NCURL_ANSWERED
			                 ? "probe: HTTP 5xx"
			                 : r->errstr);
		} else {
			ep_set_state(nc, e, NCURL_CLOSED, "probe answered");
		}
		break;
	case NCURL_OPEN:
		/* calls sent before it opened: ignored */
		break;
	}
}

static void
ep_observe(struct ep *e, const struct ncurl_result *r)
{
	size_t i;

	e->calls[r->outcome]++;
	if (r->outcome == NCURL_ANSWERED) {
		long s = r->http_status;

		e->status[s >= 100 && s < 300   ? 0
		          : s >= 300 && s < 400 ? 1
		          : s >= 400 && s < 500 ? 2
		          : s >= 500 && s < 600 ? 3
		                                : 4]++;
	}
	for (i = 0; i < N_LAT && r->elapsed_us > lat_le_us[i]; i++)
		;
	e->lat[i]++;
	e->lat_sum_us += r->elapsed_us;
	e->lat_count++;
}

/* ---------------------------------------------------------------- calls */

static size_t
on_write(char *p, size_t size, size_t n, void *arg)
{
	struct call *c = arg;
	size_t len = size * n, max = c->nc->cfg.max_body;

	if (len > max - c->resp_len) {
		c->too_big = true;
		return 0; /* != len: curl stops with CURLE_WRITE_ERROR */
	}
	if (c->resp_len + len + 1 > c->resp_cap) {
		size_t cap = c->resp_cap != 0 ? c->resp_cap : 1024;

		while (cap < c->resp_len + len + 1)
			cap *= 2;
		if (cap > max + 1)
			cap = max + 1;
		c->resp = xrealloc(c->resp, cap);
		c->resp_cap = cap;
	}
	memcpy(c->resp + c->resp_len, p, len);
	c->resp_len += len;
	c->resp[c->resp_len] = '\0';
	return len;
}

/*
 * Runs when curl has a connection (new or reused, TLS verified) and is about
 * to write the request: from here on the request may reach the provider.
 * A second run for one call means curl is re-sending it on a fresh
 * connection because the reused one died before any answer byte
 * (Curl_retry_request): harmless for GET, refused for POST and PUT, whose
 * first copy may have been acted on (docs/providers.md §Outbound calls).
 */
static int
prereq(void *arg, char *ip, char *local_ip, int port, int local_port)
{
	struct call *c = arg;

	(void)ip;
	(void)local_ip;
	(void)port;
	(void)local_port;
	if (++c->n_prereq > 1 && c->method != NCURL_GET) {
		c->resend_refused = true;
		return CURL_PREREQFUNC_ABORT;
	}
	return CURL_PREREQFUNC_OK;
}

static bool call_init(struct ncurl *nc, struct call *c);
static void on_deadline(evutil_socket_t fd, short what, void *arg);

/* A call from the free list, or a new one.  Easy handles are reused
 * without curl_easy_reset(): the options that never change are set once
 * (call_init), the others on every call (call_setup). */
static struct call *
call_get(struct ncurl *nc)
{
	struct call *c = nc->free_list;

	if (c != NULL) {
		nc->free_list = c->next;
		nc->n_free--;
	} else {
		c = xcalloc(1, sizeof *c);
		c->nc = nc;
		c->deadline = evtimer_new(nc->base, on_deadline, c);
		if (c->deadline == NULL ||
		    (c->easy = curl_easy_init()) == NULL || !call_init(nc, c)) {
			curl_easy_cleanup(c->easy);
			if (c->deadline != NULL)
				event_free(c->deadline);
			free(c);
			return NULL;
		}
	}
	c->next = c->prev = NULL;
	return c;
}

static void
call_destroy(struct call *c)
{
	curl_easy_cleanup(c->easy);
	event_free(c->deadline);
	curl_slist_free_all(c->hdrs);
	free(c->req_body);
	free(c->resp);
	free(c);
}

/* Back to the free list (bounded) once its callback has returned. */
static void
call_put(struct ncurl *nc, struct call *c)
{
	curl_slist_free_all(c->hdrs);
	c->hdrs = NULL;
	if (nc->closing || nc->n_free >= NCURL_FREE_MAX) {
		call_destroy(c);
		return;
	}
	if (c->resp_cap > NCURL_KEEP_BUF) {
		free(c->resp);
		c->resp = NULL;
		c->resp_cap = 0;
	}
	if (c->req_cap > NCURL_KEEP_BUF) {
		free(c->req_body);
		c->req_body = NULL;
		c->req_cap = 0;
	}
	c->ep = NULL;
	c->done = NULL;
	c->arg = NULL;
	c->next = nc->free_list;
	nc->free_list = c;
	nc->n_free++;
}

static void
active_link(struct ncurl *nc, struct call *c)
{
	c->prev = NULL;
	c->next = nc->active;
	if (nc->active != NULL)
		nc->active->prev = c;
	nc->active = c;
}

static void
active_unlink(struct ncurl *nc, struct call *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		nc->active = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->next = c->prev = NULL;
}

/*
 * Ends c exactly once: takes it out of curl and the active list, fills the
 * result, moves the breaker (not on shutdown), counts it, calls done() and
 * recycles c.  rc is curl's result; shutdown means ncurl_free() ends it.
 */
static void
finish(struct ncurl *nc, struct call *c, CURLcode rc, bool shutdown)
{
	struct ncurl_result r = {0};
	long status = 0, nconn = 0;

	curl_multi_remove_handle(nc->multi, c->easy);
	evtimer_del(c->deadline);
	active_unlink(nc, c);
	nc->n_inflight--;
	if (curl_easy_getinfo(c->easy, CURLINFO_NUM_CONNECTS, &nconn) ==
	    CURLE_OK)
		nc->connects += nconn;
	if (shutdown) {
		r.outcome = c->n_prereq > 0 ? NCURL_UNKNOWN : NCURL_NOT_SENT;
		r.errstr = c->n_prereq > 0
		               ? "shut down with the request sent and no "
		                 "answer yet"
		               : "shut down before the request was sent";
	} else {
		r.outcome = classify(rc, c->n_prereq > 0, c->too_big,
		                     c->resend_refused, &r.errstr);
	}
	if (r.outcome == NCURL_ANSWERED) {
		curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
		r.http_status = status;
		r.body = c->resp != NULL ? c->resp : "";
		r.body_len = c->resp_len;
	} else {
		r.body = "";
		if (log_enabled(LOG_CURL, LOG_LEVEL_INFO))
			log_msg(LOG_CURL, LOG_LEVEL_INFO,
			        "event=call_failed endpoint=%s outcome=%s "
			        "why=\"%s\" curl=%d detail=\"%s\"",
			        c->ep->name, ncurl_outcome_name(r.outcome),
			        r.errstr, (int)rc, c->errbuf);
	}
	r.elapsed_us = util_mono_us() - c->start_us;
	ep_observe(c->ep, &r);
	if (!shutdown)
		ep_account(nc, c, &r);
	c->done(c->arg, &r);
	call_put(nc, c);
}

/* The call's whole time is up, wherever it is (queued, connecting,
 * waiting for the answer): it ends as curl's own timeout would. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct call *c = arg;
	int64_t left = c->timeout_us - (util_mono_us() - c->start_us);

	(void)fd;
	(void)what;
	if (left > 0) { /* libevent's cached clock ran behind: not yet */
		struct timeval tv = {(time_t)(left / 1000000),
		                     (suseconds_t)(left % 1000000)};

		evtimer_add(c->deadline, &tv);
		return;
	}
	finish(c->nc, c, CURLE_OPERATION_TIMEDOUT, false);
}

/* Collects the transfers curl has finished.  Runs from the loop only. */
static void
check_done(struct ncurl *nc)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(nc->multi, &left)) != NULL) {
		struct call *c = NULL;
		CURLcode rc;

		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &c);
		if (c == NULL || c->easy != m->easy_handle)
			abort(); /* impossible: every easy handle is a call's */
		finish(nc, c, rc, false);
	}
}

/* ------------------------------------------------------ libevent glue */

static void
on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct ncurl *nc = arg;
	int flags = 0, running;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(nc->multi, fd, flags, &running);
	check_done(nc);
}

static void
on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ncurl *nc = arg;
	int running;

	(void)fd;
	(void)what;
	curl_multi_socket_action(nc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(nc);
}

static void
sock_free(struct ncurl *nc, struct sock *s)
{
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		nc->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl says (never act here). */
static int
on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp,
               void *socketp)
{
	struct ncurl *nc = userp;
	struct sock *s = socketp;
	short kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (s != NULL)
			sock_free(nc, s);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		s = xcalloc(1, sizeof *s);
		s->fd = fd;
		s->next = nc->socks;
		if (nc->socks != NULL)
			nc->socks->prev = s;
		nc->socks = s;
		curl_multi_assign(nc->multi, fd, s);
	} else {
		event_free(s->ev);
	}
	s->ev = event_new(nc->base, fd, kind, on_sock_event, nc);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0)
		abort(); /* out of memory in libevent */
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: one timer; curl is called from on_timer. */
static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct ncurl *nc = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		evtimer_del(nc->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(nc->timer, &tv);
	return 0;
}

/* ------------------------------------------------------------ metrics */

/* Writes s as a Prometheus label value (escaping \ " and newline). */
static void
put_label(struct metrics_out *o, const char *s)
{
	char buf[2 * NCURL_ENDPOINT_MAX + 1];
	size_t n = 0;

	for (; *s != '\0' && n + 2 < sizeof buf; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n') {
			buf[n++] = '\\';
			buf[n++] = *s == '\n' ? 'n' : *s;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n] = '\0';
	metrics_printf(o, "%s", buf);
}

static void
render_metrics(struct metrics_out *o, void *arg)
{
	static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx",
	                                      "other"};
	const struct ncurl *nc = arg;
	int i, k;
	size_t b;

	metrics_printf(o, "# HELP soko_curl_calls_total outbound provider "
	                  "calls ended, by endpoint and outcome\n"
	                  "# TYPE soko_curl_calls_total counter\n");
	for (i = 0; i < nc->n_eps; i++)
		for (k = 0; k < 3; k++) {
			metrics_printf(o, "soko_curl_calls_total{endpoint=\"");
			put_label(o, nc->eps[i].name);
			metrics_printf(
			    o, "\",outcome=\"%s\"} %lld\n",
			    ncurl_outcome_name((enum ncurl_outcome)k),
			    (long long)nc->eps[i].calls[k]);
		}
	metrics_printf(o, "# HELP soko_curl_answers_total answered calls by "
	                  "endpoint and HTTP status class (1xx counts as "
	                  "2xx)\n# TYPE soko_curl_answers_total counter\n");
	for (i = 0; i < nc->n_eps; i++)
		for (k = 0; k < 5; k++) {
			metrics_printf(o,
			               "soko_curl_answers_total{endpoint=\"");
			put_label(o, nc->eps[i].name);
			metrics_printf(o, "\",class=\"%s\"} %lld\n", classes[k],
			               (long long)nc->eps[i].status[k]);
		}
	metrics_printf(o, "# HELP soko_curl_refused_total calls refused by "
	                  "ncurl_submit, by reason\n"
	                  "# TYPE soko_curl_refused_total counter\n");
	for (k = 0; k < REFUSE_COUNT; k++)
		metrics_printf(o,
		               "soko_curl_refused_total{reason=\"%s\"} %lld\n",
		               refusal_names[k], (long long)nc->refused[k]);
	metrics_printf(o, "# HELP soko_curl_breaker_state circuit breaker per "
	                  "endpoint: 0 closed, 1 open, 2 half-open\n"
	                  "# TYPE soko_curl_breaker_state gauge\n");
	for (i = 0; i < nc->n_eps; i++) {
		metrics_printf(o, "soko_curl_breaker_state{endpoint=\"");
		put_label(o, nc->eps[i].name);
		metrics_printf(o, "\"} %d\n", (int)nc->eps[i].state);
	}
	metrics_printf(o,
	               "# HELP soko_curl_inflight outbound calls in flight or "
	               "queued\n# TYPE soko_curl_inflight gauge\n"
	               "soko_curl_inflight %d\n"
	               "# HELP soko_curl_connects_total connections opened "
	               "(a low rate means keep-alive works)\n"
	               "# TYPE soko_curl_connects_total counter\n"
	               "soko_curl_connects_total %lld\n",
	               nc->n_inflight, (long long)nc->connects);
	metrics_printf(o, "# HELP soko_curl_call_seconds outbound call time, "
	                  "submit to end\n"
	                  "# TYPE soko_curl_call_seconds histogram\n");
	for (i = 0; i < nc->n_eps; i++) {
		const struct ep *e = &nc->eps[i];
		int64_t acc = 0;

		for (b = 0; b <= N_LAT; b++) {
			acc += e->lat[b];
			metrics_printf(o, "soko_curl_call_seconds_bucket{"
			                  "endpoint=\"");
			put_label(o, e->name);
			if (b < N_LAT)
				metrics_printf(
				    o, "\",le=\"%lld.%06lld\"} %lld\n",
				    (long long)(lat_le_us[b] / 1000000),
				    (long long)(lat_le_us[b] % 1000000),
				    (long long)acc);
			else
				metrics_printf(o, "\",le=\"+Inf\"} %lld\n",
				               (long long)acc);
		}
		metrics_printf(o, "soko_curl_call_seconds_sum{endpoint=\"");
		put_label(o, e->name);
		metrics_printf(o, "\"} %lld.%06lld\n",
		               (long long)(e->lat_sum_us / 1000000),
		               (long long)(e->lat_sum_us % 1000000));
		metrics_printf(o, "soko_curl_call_seconds_count{endpoint=\"");
		put_label(o, e->name);
		metrics_printf(o, "\"} %lld\n", (long long)e->lat_count);
	}
}

/* ------------------------------------------------------------- public */

static int
def_int(int v, int def)
{
	return v != 0 ? v : def;
}

/* Only the first live ncurl exports its series: two would render the same
 * metric family twice.  sokod has one. */
static struct ncurl *metrics_owner;

struct ncurl *
ncurl_new(struct event_base *base, const struct ncurl_config *c, char *err,
          size_t errlen)
{
	static bool global_done;
	struct ncurl *nc;
	long maxconns;

	if (!global_done) {
		/* thread-safe in this libcurl ("threadsafe" feature), and
		 * run once; never cleaned up: libcurl and OpenSSL keep
		 * process-wide state until exit */
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "curl_global_init failed");
			return NULL;
		}
		global_done = true;
	}
	if (c->default_timeout_ms < 0 || c->connect_timeout_ms < 0 ||
	    c->max_inflight < 0 || c->max_host_conns < 0 ||
	    c->breaker_failures < 0 || c->breaker_open_ms < 0) {
		snprintf(err, errlen, "ncurl: negative setting");
		return NULL;
	}
	if (c->ca_file != NULL) {
		FILE *f = fopen(c->ca_file, "r");

		if (f == NULL) {
			snprintf(err, errlen,
			         "ncurl: cannot read ca_file %s: %s",
			         c->ca_file, strerror(errno));
			return NULL;
		}
		fclose(f);
	}
	nc = xcalloc(1, sizeof *nc);
	nc->base = base;
	nc->cfg = *c;
	if (c->ca_file != NULL)
		nc->cfg.ca_file = nc->ca_file = xstrdup(c->ca_file);
	/* 0 means the default (net_curl.h) */
	nc->cfg.default_timeout_ms = def_int(c->default_timeout_ms, 10000);
	nc->cfg.connect_timeout_ms = def_int(c->connect_timeout_ms, 3000);
	nc->cfg.max_inflight = def_int(c->max_inflight, 4096);
	nc->cfg.max_host_conns = def_int(c->max_host_conns, 64);
	nc->cfg.breaker_failures = def_int(c->breaker_failures, 5);
	nc->cfg.breaker_open_ms = def_int(c->breaker_open_ms, 5000);
	if (nc->cfg.max_body == 0)
		nc->cfg.max_body = 1024 * 1024;
	nc->timer = evtimer_new(base, on_timer, nc);
	nc->multi = curl_multi_init();
	if (nc->timer == NULL || nc->multi == NULL) {
		snprintf(err, errlen, "ncurl: out of memory");
		goto fail;
	}
	/* the pool: max_host_conns per host, kept for up to four hosts */
	maxconns = (long)nc->cfg.max_host_conns * 4;
	if (curl_multi_setopt(nc->multi, CURLMOPT_SOCKETFUNCTION,
	                      on_curl_socket) != CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_SOCKETDATA, nc) != CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_TIMERFUNCTION,
	                      on_curl_timer) != CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_TIMERDATA, nc) != CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	                      (long)nc->cfg.max_host_conns) != CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_MAXCONNECTS, maxconns) !=
	        CURLM_OK ||
	    curl_multi_setopt(nc->multi, CURLMOPT_PIPELINING,
	                      CURLPIPE_NOTHING) != CURLM_OK) {
		snprintf(err, errlen, "ncurl: curl_multi_setopt failed");
		goto fail;
	}
	if (metrics_owner == NULL &&
	    metrics_hook_add(render_metrics, nc) == 0) {
		metrics_owner = nc;
		nc->has_hook = true;
	}
	return nc;
fail:
	if (nc->multi != NULL)
		curl_multi_cleanup(nc->multi);
	if (nc->timer != NULL)
		event_free(nc->timer);
	free(nc->ca_file);
	free(nc);
	return NULL;
}

void
ncurl_free(struct ncurl *nc)
{
	if (nc == NULL)
		return;
	/* no callback may start another call from here on; what curl
	 * already finished ends with its real outcome, the rest now */
	nc->closing = true;
	check_done(nc);
	while (nc->active != NULL)
		finish(nc, nc->active, CURLE_OK, true);
	while (nc->free_list != NULL) {
		struct call *c = nc->free_list;

		nc->free_list = c->next;
		call_destroy(c);
	}
	curl_multi_cleanup(nc->multi); /* closes the pooled connections */
	while (nc->socks != NULL)
		sock_free(nc, nc->socks);
	event_free(nc->timer);
	if (nc->has_hook) {
		metrics_hook_remove(render_metrics, nc);
		metrics_owner = NULL;
	}
	free(nc->ca_file);
	free(nc);
}

static int
refuse(struct ncurl *nc, enum refusal why_id, const char *text,
       const char **why)
{
	nc->refused[why_id]++;
	if (why != NULL)
		*why = text;
	return -1;
}

#define SET(opt, v) ok = ok && curl_easy_setopt(e, opt, v) == CURLE_OK

/* The options that are the same for every call; false if curl refused
 * one. */
static bool
call_init(struct ncurl *nc, struct call *c)
{
	CURL *e = c->easy;
	bool ok = true;

	SET(CURLOPT_PRIVATE, c);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* never a proxy from the environment: provider traffic goes where
	 * the config says, and http_proxy in CI would swallow 127.0.0.1 */
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	/* probes keep NAT and firewall state of pooled connections alive;
	 * one whose state was lost anyway gets an error (RST, or the probes
	 * time out) that curl's check before reuse sees, instead of a
	 * payment sent into a black hole */
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_TCP_KEEPIDLE, 30L);
	SET(CURLOPT_TCP_KEEPINTVL, 10L);
	if (nc->cfg.ca_file != NULL)
		SET(CURLOPT_CAINFO, nc->cfg.ca_file);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)nc->cfg.max_body);
	SET(CURLOPT_WRITEFUNCTION, on_write);
	SET(CURLOPT_WRITEDATA, c);
	SET(CURLOPT_PREREQFUNCTION, prereq);
	SET(CURLOPT_PREREQDATA, c);
	SET(CURLOPT_ERRORBUFFER, c->errbuf);
	return ok;
}

/* The options of this call; false if curl refused one. */
static bool
call_setup(struct ncurl *nc, struct call *c, const struct ncurl_req *req)
{
	CURL *e = c->easy;
	long tmo =
	    req->timeout_ms > 0 ? req->timeout_ms : nc->cfg.default_timeout_ms;
	long ctmo = MIN(tmo, (long)nc->cfg.connect_timeout_ms);
	bool ok = true;
	size_t i;

	/* "Expect:" off: no 100-continue round trip (and no 417 rewind) */
	c->hdrs = curl_slist_append(NULL, "Expect:");
	for (i = 0; i < req->n_headers && c->hdrs != NULL; i++) {
		struct curl_slist *h =
		    curl_slist_append(c->hdrs, req->headers[i]);

		if (h == NULL)
			return false;
		c->hdrs = h;
	}
	if (c->hdrs == NULL)
		return false;
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_TIMEOUT_MS, tmo);
	SET(CURLOPT_CONNECTTIMEOUT_MS, ctmo);
	SET(CURLOPT_HTTPHEADER, c->hdrs);
	switch (req->method) {
	case NCURL_GET:
		/* POSTFIELDS NULL first: setting it selects POST */
		SET(CURLOPT_POSTFIELDS, (char *)NULL);
		SET(CURLOPT_CUSTOMREQUEST, (char *)NULL);
		SET(CURLOPT_HTTPGET, 1L);
		break;
	case NCURL_PUT:
	case NCURL_POST:
		if (req->body_len + 1 > c->req_cap) {
			free(c->req_body);
			c->req_cap = req->body_len + 1;
			c->req_body = xmalloc(c->req_cap);
		}
		if (req->body_len > 0)
			memcpy(c->req_body, req->body, req->body_len);
		c->req_body[req->body_len] = '\0';
		/* a PUT is sent as a POST with another method name */
		SET(CURLOPT_CUSTOMREQUEST,
		    req->method == NCURL_PUT ? "PUT" : (char *)NULL);
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, c->req_body);
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		break;
	}
	return ok;
}
#undef SET

int
ncurl_submit(struct ncurl *nc, const struct ncurl_req *req, ncurl_done_fn done,
             void *arg, const char **why)
{
	struct call *c;
	struct ep *e;
	bool probe = false;
	size_t i, elen;
	int ei;

	if (nc->closing)
		return refuse(nc, REFUSE_SHUTDOWN, "shutting down", why);
	if (req == NULL || done == NULL || req->url == NULL)
		return refuse(nc, REFUSE_BAD_REQUEST,
		              "bad request: no url or no callback", why);
	if (req->method != NCURL_GET && req->method != NCURL_POST &&
	    req->method != NCURL_PUT)
		return refuse(nc, REFUSE_BAD_REQUEST, "bad request: method",
		              why);
	if (req->n_headers > NCURL_MAX_HEADERS)
		return refuse(
		    nc, REFUSE_BAD_REQUEST,
		    "bad request: more than NCURL_MAX_HEADERS headers", why);
	for (i = 0; i < req->n_headers; i++)
		if (req->headers[i] == NULL ||
		    strpbrk(req->headers[i], "\r\n") != NULL)
			return refuse(
			    nc, REFUSE_BAD_REQUEST,
			    "bad request: NULL header or CR/LF in one", why);
	if (req->body == NULL && req->body_len > 0)
		return refuse(nc, REFUSE_BAD_REQUEST,
		              "bad request: body_len without body", why);
	if (req->method == NCURL_GET && req->body_len > 0)
		return refuse(nc, REFUSE_BAD_REQUEST,
		              "bad request: GET with a body", why);
	if (req->timeout_ms < 0)
		return refuse(nc, REFUSE_BAD_REQUEST,
		              "bad request: negative timeout", why);
	if (req->endpoint == NULL || (elen = strlen(req->endpoint)) == 0 ||
	    elen > NCURL_ENDPOINT_MAX)
		return refuse(nc, REFUSE_BAD_REQUEST,
		              "bad request: endpoint empty or over 47 bytes",
		              why);
	if (nc->n_inflight >= nc->cfg.max_inflight)
		return refuse(nc, REFUSE_QUEUE_FULL,
		              "queue full: max_inflight calls in flight", why);
	if ((ei = ep_index(nc, req->endpoint)) >= 0) {
		e = &nc->eps[ei];
	} else {
		if (nc->n_eps == NCURL_MAX_ENDPOINTS)
			return refuse(nc, REFUSE_ENDPOINTS_FULL,
			              "too many endpoints: the breaker table "
			              "holds 64",
			              why);
		e = &nc->eps[nc->n_eps++];
		memcpy(e->name, req->endpoint, elen + 1);
	}
	switch (e->state) {
	case NCURL_CLOSED:
		break;
	case NCURL_OPEN:
		if (util_mono_us() < e->open_until_us)
			return refuse(nc, REFUSE_BREAKER_OPEN,
			              "circuit breaker open", why);
		probe = true;
		break;
	case NCURL_HALF_OPEN:
		if (e->probe_busy)
			return refuse(nc, REFUSE_PROBE_BUSY,
			              "circuit breaker half-open: its probe "
			              "is in flight",
			              why);
		probe = true;
		break;
	}
	if ((c = call_get(nc)) == NULL)
		return refuse(nc, REFUSE_CURL, "curl_easy_init failed", why);
	c->ep = e;
	c->done = done;
	c->arg = arg;
	c->method = req->method;
	c->n_prereq = 0;
	c->is_probe = probe;
	c->too_big = false;
	c->resend_refused = false;
	c->resp_len = 0;
	if (c->resp != NULL)
		c->resp[0] = '\0';
	c->errbuf[0] = '\0';
	c->start_us = util_mono_us();
	if (!call_setup(nc, c, req) ||
	    curl_multi_add_handle(nc->multi, c->easy) != CURLM_OK) {
		call_put(nc, c);
		return refuse(nc, REFUSE_CURL, "curl refused the request", why);
	}
	/* accepted: from here on it ends exactly once, from the loop */
	{
		int tmo = req->timeout_ms > 0 ? req->timeout_ms
		                              : nc->cfg.default_timeout_ms;
		struct timeval tv = {tmo / 1000, (tmo % 1000) * 1000};

		c->timeout_us = (int64_t)tmo * 1000;
		evtimer_add(c->deadline, &tv);
	}
	if (probe) {
		if (e->state == NCURL_OPEN)
			ep_set_state(nc, e, NCURL_HALF_OPEN,
			             "open_ms passed: one probe");
		e->probe_busy = true;
	}
	active_link(nc, c);
	nc->n_inflight++;
	return 0;
}

int
ncurl_inflight(const struct ncurl *nc)
{
	return nc->n_inflight;
}

enum ncurl_breaker_state
ncurl_breaker(const struct ncurl *nc, const char *endpoint)
{
	int i = endpoint != NULL ? ep_index(nc, endpoint) : -1;

	return i >= 0 ? nc->eps[i].state : NCURL_CLOSED;
}
