/*
 * net_http.c - sokod's event loop and HTTP listener (net_http.h).
 *
 * Requests that touch storage become dbq jobs; their replies are sent from
 * the job's done callback, which dbq runs on this thread only after the
 * commit holding the job.  A request whose client went away meanwhile is
 * still answered: libevent detaches it and frees it on reply.
 *
 * Bounds: body (http_max_body), headers (http_max_headers), timeouts
 * (http_timeout_ms), requests in flight (http_max_inflight), storage queue
 * (dbq_queue_max): past any of them the answer is a fast 4xx/503, never
 * unbounded memory.
 */
#include "net_http.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#include "dbq.h"
#include "log.h"
#include "metrics.h"
#include "net_pos.h"
#include "net_prov.h"
#include "svc_admin.h"
#include "util.h"

#define ACCOUNT_CACHE_BUCKETS 4096
#define ACCOUNT_CACHE_MAX     100000 /* entries; past it the cache resets */

/* code -> account: codes and ids never change, so entries never go stale
 * for what they are used (id, type, currency); the ledger re-checks
 * everything that can change (closed, currency) inside the commit. */
struct acct_entry {
	struct acct_entry *next;
	struct ledger_account a;
};

struct sokod {
	const struct config *cfg;
	struct store *st;
	struct ledger *lg;
	const char *api_key;
	struct event_base *base;
	struct evhttp *http;
	struct evhttp_bound_socket *bound;
	struct dbq *dbq;
	struct net_pos *pos; /* NULL: pos_listen is empty */
	struct net_prov *prov;
	struct event *wake_ev, *sig_term, *sig_int, *drain_ev, *purge_ev;
	int wake_fd;
	int64_t inflight;     /* requests answered asynchronously */
	bool draining;
	int64_t drain_deadline_us;
	struct acct_entry *cache[ACCOUNT_CACHE_BUCKETS];
	size_t n_cache;
	bool fault_ack_early; /* test-only canary (SOKO_FAULTS builds) */
};

/* One asynchronous HTTP operation. */
struct op {
	struct sokod *d;
	struct evhttp_request *req;
	struct dbq_job job;
	struct svc_movement m;
	char key[SVC_IDEM_KEY_MAX + 1];
	char code[LEDGER_CODE_MAX + 1]; /* GET /v1/accounts/CODE */
	struct ledger_account debit, credit, acct;
	bool has_debit, has_credit;
	bool replied;
};

/* ------------------------------------------------------------- replies */

#define reply_error net_http_error

void
net_http_reply(struct evhttp_request *req, int status, const char *ctype,
               const char *body, size_t len)
{
	struct evbuffer *b = evbuffer_new();
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);

	if (b == NULL)
		abort();
	evhttp_add_header(h, "Content-Type", ctype);
	evhttp_add_header(h, "Cache-Control", "no-store");
	evbuffer_add(b, body, len);
	evhttp_send_reply(req, status, NULL, b);
	evbuffer_free(b);
	metrics_inc(METRIC_HTTP_REQUESTS);
	metrics_inc(status < 300   ? METRIC_HTTP_2XX
	            : status < 500 ? METRIC_HTTP_4XX
	                           : METRIC_HTTP_5XX);
}

#define reply net_http_reply

static void
reply_json(struct evhttp_request *req, int status, char *json)
{
	reply(req, status, "application/json", json, strlen(json));
	free(json);
}

void
net_http_error(struct evhttp_request *req, int status, const char *code,
               const char *message)
{
	struct svc_error e = {status, code, message};

	if (status == 503)
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Retry-After", "1");
	reply_json(req, status, svc_admin_render_error(&e));
}

static struct op *
op_new(struct sokod *d, struct evhttp_request *req)
{
	struct op *o = xcalloc(1, sizeof *o);

	o->d = d;
	o->req = req;
	o->job.arg = o;
	d->inflight++;
	return o;
}

static void
op_free(struct op *o)
{
	o->d->inflight--;
	free(o);
}

/* Posts o's job; on a full queue answers 503 busy and frees o. */
static void
op_post(struct op *o)
{
	if (dbq_post(o->d->dbq, &o->job) != 0) {
		reply_error(o->req, 503, "busy",
		            "the server is at capacity; retry later");
		op_free(o);
	}
}

/* ------------------------------------------------------ account cache */

static size_t
cache_hash(const char *s)
{
	size_t h = 5381;

	while (*s != '\0')
		h = h * 33 ^ (unsigned char)*s++;
	return h % ACCOUNT_CACHE_BUCKETS;
}

static const struct ledger_account *
cache_get(struct sokod *d, const char *code)
{
	struct acct_entry *e;

	for (e = d->cache[cache_hash(code)]; e != NULL; e = e->next)
		if (strcmp(e->a.code, code) == 0)
			return &e->a;
	return NULL;
}

static void
cache_clear(struct sokod *d)
{
	size_t i;

	for (i = 0; i < ACCOUNT_CACHE_BUCKETS; i++)
		while (d->cache[i] != NULL) {
			struct acct_entry *e = d->cache[i];

			d->cache[i] = e->next;
			free(e);
		}
	d->n_cache = 0;
}

static void
cache_put(struct sokod *d, const struct ledger_account *a)
{
	struct acct_entry *e;
	size_t h = cache_hash(a->code);

	if (cache_get(d, a->code) != NULL)
		return;
	if (d->n_cache >= ACCOUNT_CACHE_MAX)
		cache_clear(d);
	e = xmalloc(sizeof *e);
	e->a = *a;
	e->next = d->cache[h];
	d->cache[h] = e;
	d->n_cache++;
}

/* ------------------------------------------------------------ handlers */

static bool
authorized(struct sokod *d, struct evhttp_request *req)
{
	const char *h = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Authorization");
	size_t n;

	if (d->api_key == NULL || h == NULL || strncmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	n = strlen(d->api_key);
	/* constant time in the key's content; the length is not secret */
	return strlen(h) == n && util_ct_memcmp(h, d->api_key, n) == 0;
}

static void
movement_done(struct dbq_job *job)
{
	struct op *o = job->arg;
	int status = svc_admin_status(job->res.rc);

	metrics_ledger_outcome(job->res.rc, job->res.is_replay);
	if (!o->replied) {
		if (job->res.is_replay)
			evhttp_add_header(
				evhttp_request_get_output_headers(o->req),
				"Idempotent-Replayed", "true");
		if (job->res.rc == LEDGER_RETRY)
			evhttp_add_header(
				evhttp_request_get_output_headers(o->req),
				"Retry-After", "1");
		reply_json(o->req, status, svc_admin_render(&o->m, &job->res));
	}
	log_msg(LOG_LEDGER, LOG_LEVEL_INFO,
	        "event=movement key=%s outcome=%s txn=%lld replay=%d", o->key,
	        ledger_rc_name(job->res.rc), (long long)job->res.txn_id,
	        job->res.is_replay);
	op_free(o);
}

/* Accounts known: build the ledger request and post it. */
static void
movement_submit(struct op *o)
{
	struct svc_error e;

	if (svc_admin_build(&o->job.req, &o->m, o->key,
	                    o->has_debit ? &o->debit : NULL,
	                    o->has_credit ? &o->credit : NULL, &e) != 0) {
		reply_error(o->req, e.status, e.code, e.message);
		op_free(o);
		return;
	}
	o->job.call = NULL;
	o->job.done = movement_done;
#ifdef SOKO_FAULTS
	if (o->d->fault_ack_early) {
		/* CANARY: acknowledges before the commit.  Test builds only
		 * (build/sokod-canary): the crash test must catch it. */
		struct ledger_result fake = {LEDGER_OK, false, 0,
		                             util_now_ms()};

		if (dbq_post(o->d->dbq, &o->job) != 0) {
			reply_error(o->req, 503, "busy", "busy");
			op_free(o);
			return;
		}
		o->replied = true;
		reply_json(o->req, 201, svc_admin_render(&o->m, &fake));
		return;
	}
#endif
	op_post(o);
}

static enum store_rc
resolve_call(struct store *st, struct dbq_job *job)
{
	struct op *o = job->arg;
	enum store_rc rc;

	rc = st->ops->account_by_code(st, o->m.debit, &o->debit);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return rc;
	o->has_debit = rc == STORE_OK;
	rc = st->ops->account_by_code(st, o->m.credit, &o->credit);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return rc;
	o->has_credit = rc == STORE_OK;
	return STORE_OK;
}

static void
resolve_done(struct dbq_job *job)
{
	struct op *o = job->arg;

	if (job->call_rc != STORE_OK) {
		reply_error(o->req, 503, "retry_later",
		            "storage unavailable; retry with the same "
		            "Idempotency-Key");
		op_free(o);
		return;
	}
	if (o->has_debit)
		cache_put(o->d, &o->debit);
	if (o->has_credit)
		cache_put(o->d, &o->credit);
	movement_submit(o);
}

static void
handle_movement(struct sokod *d, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *key = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Idempotency-Key");
	const struct ledger_account *a;
	struct svc_error e;
	struct op *o;
	char *body;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		reply_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	if (!authorized(d, req)) {
		reply_error(req, 401, "unauthorized",
		            "missing or wrong admin API key");
		return;
	}
	if (svc_admin_check_key(key, &e) != 0) {
		reply_error(req, e.status, e.code, e.message);
		return;
	}
	o = op_new(d, req);
	strlcpy_s(o->key, key, sizeof o->key);
	body = (char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (svc_admin_parse_movement(&o->m, body ? body : "", len, &e) != 0) {
		reply_error(req, e.status, e.code, e.message);
		op_free(o);
		return;
	}
	if ((a = cache_get(d, o->m.debit)) != NULL) {
		o->debit = *a;
		o->has_debit = true;
	}
	if ((a = cache_get(d, o->m.credit)) != NULL) {
		o->credit = *a;
		o->has_credit = true;
	}
	if (o->has_debit && o->has_credit) {
		movement_submit(o);
		return;
	}
	o->job.call = resolve_call;
	o->job.done = resolve_done;
	op_post(o);
}

static enum store_rc
account_call(struct store *st, struct dbq_job *job)
{
	struct op *o = job->arg;

	return st->ops->account_by_code(st, o->code, &o->acct);
}

static void
account_done(struct dbq_job *job)
{
	struct op *o = job->arg;

	if (job->call_rc == STORE_OK)
		reply_json(o->req, 200, svc_admin_render_account(&o->acct));
	else if (job->call_rc == STORE_NOT_FOUND)
		reply_error(o->req, 404, "account_unknown",
		            "no account with this code");
	else
		reply_error(o->req, 503, "retry_later", "storage unavailable");
	op_free(o);
}

static void
handle_account(struct sokod *d, struct evhttp_request *req, const char *code)
{
	struct op *o;
	char *dec;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		reply_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	if (!authorized(d, req)) {
		reply_error(req, 401, "unauthorized",
		            "missing or wrong admin API key");
		return;
	}
	dec = evhttp_uridecode(code, 0, NULL);
	if (dec == NULL || dec[0] == '\0' || strlen(dec) > LEDGER_CODE_MAX) {
		free(dec);
		reply_error(req, 404, "account_unknown",
		            "no account with this code");
		return;
	}
	o = op_new(d, req);
	strlcpy_s(o->code, dec, sizeof o->code);
	free(dec);
	o->job.call = account_call;
	o->job.done = account_done;
	op_post(o);
}

static enum store_rc
ping_call(struct store *st, struct dbq_job *job)
{
	(void)job;
	return st->ops->ping(st);
}

static void
ping_done(struct dbq_job *job)
{
	struct op *o = job->arg;
	char body[128];

	snprintf(body, sizeof body, "{\"status\":\"%s\",\"store\":\"%s\"}",
	         job->call_rc == STORE_OK ? "ok" : "store_unreachable",
	         o->d->st->ops->name);
	reply(o->req, job->call_rc == STORE_OK ? 200 : 503,
	      "application/json", body, strlen(body));
	op_free(o);
}

static void
handle_metrics(struct sokod *d, struct evhttp_request *req)
{
	size_t len;
	char *text;

	metrics_set_gauge(METRIC_DBQ_DEPTH, (int64_t)dbq_depth(d->dbq));
	text = metrics_render(&len);
	reply(req, 200, "text/plain; version=0.0.4", text, len);
	free(text);
}

static void
on_request(struct evhttp_request *req, void *arg)
{
	struct sokod *d = arg;
	const char *uri = evhttp_request_get_uri(req);
	const char *path;
	struct evhttp_uri *u = evhttp_uri_parse(uri);

	if (u == NULL || (path = evhttp_uri_get_path(u)) == NULL) {
		reply_error(req, 400, "bad_request", "unparsable URI");
		evhttp_uri_free(u);
		return;
	}
	if (d->draining) {
		evhttp_add_header(evhttp_request_get_output_headers(req),
		                  "Connection", "close");
		reply_error(req, 503, "shutting_down",
		            "the server is stopping; retry elsewhere");
	} else if (d->inflight >= d->cfg->http_max_inflight) {
		reply_error(req, 503, "busy",
		            "the server is at capacity; retry later");
	} else if (strcmp(path, "/healthz") == 0) {
		struct op *o = op_new(d, req);

		o->job.call = ping_call;
		o->job.done = ping_done;
		op_post(o);
	} else if (strcmp(path, "/metrics") == 0) {
		handle_metrics(d, req);
	} else if (strcmp(path, "/v1/movements") == 0) {
		handle_movement(d, req);
	} else if (strncmp(path, "/v1/accounts/", 13) == 0) {
		handle_account(d, req, path + 13);
	} else if (d->pos != NULL &&
	           net_pos_http(d->pos, req, path, authorized(d, req))) {
		/* POS messages over HTTP */
	} else if (net_prov_http(d->prov, req, path,
	                         strncmp(path, "/v1/callbacks/", 14) != 0 &&
	                                 authorized(d, req))) {
		/* collections, payments, provider callbacks */
	} else {
		reply_error(req, 404, "not_found", "no such endpoint");
	}
	evhttp_uri_free(u);
}

/* ---------------------------------------- idempotency key retention */

#define PURGE_INTERVAL_S 3600

static enum store_rc
purge_call(struct store *st, struct dbq_job *job)
{
	struct sokod *d = job->arg;
	int64_t n = 0;
	enum store_rc rc;

	rc = st->ops->idem_purge(
		st,
		util_now_ms() - d->cfg->idempotency_retention_days * 86400000LL,
		&n);
	if (rc == STORE_OK && n > 0)
		log_msg(LOG_STORE, LOG_LEVEL_INFO,
		        "event=idempotency_purged n=%lld older_than_days=%lld",
		        (long long)n,
		        (long long)d->cfg->idempotency_retention_days);
	else if (rc != STORE_OK)
		log_msg(LOG_STORE, LOG_LEVEL_WARN,
		        "event=idempotency_purge_failed reason=\"%s\"",
		        st->errstr);
	return rc;
}

static void
purge_done(struct dbq_job *job)
{
	free(job);
}

/* Hourly: drop idempotency keys past idempotency_retention_days (>= 30). */
static void
on_purge(evutil_socket_t fd, short what, void *arg)
{
	struct sokod *d = arg;
	struct dbq_job *job = xcalloc(1, sizeof *job);

	(void)fd;
	(void)what;
	job->call = purge_call;
	job->done = purge_done;
	job->arg = d;
	if (dbq_post(d->dbq, job) != 0)
		free(job); /* busy: next hour */
}

/* ------------------------------------------------------- loop plumbing */

/* Worker thread: finished jobs are waiting. */
static void
wake(void *arg)
{
	struct sokod *d = arg;
	uint64_t one = 1;

	if (write(d->wake_fd, &one, sizeof one) < 0 && errno != EAGAIN)
		log_msg(LOG_CORE, LOG_LEVEL_ERROR, "event=wake_failed errno=%d",
		        errno);
}

static void
on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct sokod *d = arg;
	uint64_t n;

	(void)what;
	if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
		return;
	dbq_complete(d->dbq);
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct sokod *d = arg;
	struct timeval flush = {0, 100000};

	(void)fd;
	(void)what;
	size_t pos = net_pos_inflight(d->pos);
	int64_t prov = net_prov_inflight(d->prov);

	if ((d->inflight > 0 || pos > 0 || prov > 0) &&
	    util_mono_us() < d->drain_deadline_us)
		return;
	if (d->inflight > 0 || pos > 0 || prov > 0)
		log_msg(LOG_CORE, LOG_LEVEL_WARN,
		        "event=shutdown_timeout inflight=%lld pos_inflight=%zu "
		        "prov_inflight=%lld",
		        (long long)d->inflight, pos, (long long)prov);
	event_del(d->drain_ev);
	/* the commits of everything answered are durable; let the last
	 * replies leave the socket buffers, then stop */
	event_base_loopexit(d->base, &flush);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sokod *d = arg;
	struct timeval tick = {0, 10000};

	(void)what;
	if (d->draining)
		return;
	log_msg(LOG_CORE, LOG_LEVEL_NOTICE,
	        "event=shutdown signal=%d inflight=%lld", (int)sig,
	        (long long)d->inflight);
	d->draining = true;
	d->drain_deadline_us =
		util_mono_us() + d->cfg->shutdown_timeout_ms * 1000;
	/* stop accepting; connections already open get 503 + close */
	if (d->bound != NULL) {
		evhttp_del_accept_socket(d->http, d->bound);
		d->bound = NULL;
	}
	/* POS: stop accepting and reading; in-flight requests are answered
	 * (after their commit), then each connection closes */
	net_pos_shutdown(d->pos);
	/* providers: no new sends or queries; calls in flight finish and
	 * their answers are written */
	net_prov_shutdown(d->prov);
	d->drain_ev = event_new(d->base, -1, EV_PERSIST, on_drain, d);
	event_add(d->drain_ev, &tick);
}

static int
bind_http(struct sokod *d, char *where, size_t cap)
{
	char host[256];
	const char *colon = strrchr(d->cfg->http_listen, ':');
	size_t hl = (size_t)(colon - d->cfg->http_listen);
	struct sockaddr_storage ss;
	ev_socklen_t sl = sizeof ss;
	evutil_socket_t fd;
	int port;

	if (hl >= sizeof host)
		return -1;
	memcpy(host, d->cfg->http_listen, hl);
	host[hl] = '\0';
	port = atoi(colon + 1);
	d->bound = evhttp_bind_socket_with_handle(d->http, host,
	                                          (ev_uint16_t)port);
	if (d->bound == NULL)
		return -1;
	fd = evhttp_bound_socket_get_fd(d->bound);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0)
		return -1;
	if (ss.ss_family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	snprintf(where, cap, "%s:%d", host, port);
	return 0;
}

int
net_http_run(const struct config *cfg, struct store *st, struct ledger *lg,
             const char *api_key, const uint8_t *pos_kek)
{
	struct sokod d;
	struct dbq_params qp;
	struct timeval tmo;
	char where[300], pos_where[300] = "";
	int rc = -1;

	memset(&d, 0, sizeof d);
	d.cfg = cfg;
	d.st = st;
	d.lg = lg;
	d.api_key = api_key;
	d.wake_fd = -1;
#ifdef SOKO_FAULTS
	{
		const char *f = getenv("SOKO_FAULT");

		d.fault_ack_early = f != NULL &&
		                    strcmp(f, "ack_before_commit") == 0;
		if (d.fault_ack_early)
			log_msg(LOG_CORE, LOG_LEVEL_ERROR,
			        "event=fault_injection fault=ack_before_commit "
			        "effect=\"acks before commit: TEST ONLY\"");
	}
#endif
	if ((d.base = event_base_new()) == NULL ||
	    (d.http = evhttp_new(d.base)) == NULL)
		goto out;
	if ((d.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		goto out;
	d.wake_ev = event_new(d.base, d.wake_fd, EV_READ | EV_PERSIST, on_wake,
	                      &d);
	d.sig_term = evsignal_new(d.base, SIGTERM, on_signal, &d);
	d.sig_int = evsignal_new(d.base, SIGINT, on_signal, &d);
	if (d.wake_ev == NULL || d.sig_term == NULL || d.sig_int == NULL ||
	    event_add(d.wake_ev, NULL) != 0 ||
	    event_add(d.sig_term, NULL) != 0 || event_add(d.sig_int, NULL) != 0)
		goto out;

	qp.queue_max = (size_t)cfg->dbq_queue_max;
	qp.batch_max = (size_t)cfg->dbq_batch_max;
	qp.wait_us = cfg->dbq_batch_wait_us;
	if ((d.dbq = dbq_new(st, lg, &qp, wake, &d)) == NULL) {
		log_msg(LOG_CORE, LOG_LEVEL_ERROR, "event=dbq_start_failed");
		goto out;
	}

	{
		char perr[256];

		d.prov = net_prov_new(d.base, d.dbq, cfg, perr, sizeof perr);
		if (d.prov == NULL) {
			log_msg(LOG_PROV, LOG_LEVEL_ERROR,
			        "event=provider_config_invalid why=\"%s\"",
			        perr);
			goto out;
		}
	}
	{
		struct timeval hour = {PURGE_INTERVAL_S, 0};

		d.purge_ev = event_new(d.base, -1, EV_PERSIST, on_purge, &d);
		if (d.purge_ev == NULL || event_add(d.purge_ev, &hour) != 0)
			goto out;
	}
	evhttp_set_max_body_size(d.http, (ev_ssize_t)cfg->http_max_body);
	evhttp_set_max_headers_size(d.http, (ev_ssize_t)cfg->http_max_headers);
	tmo.tv_sec = cfg->http_timeout_ms / 1000;
	tmo.tv_usec = (cfg->http_timeout_ms % 1000) * 1000;
	evhttp_set_timeout_tv(d.http, &tmo);
	/* PUT: MoMo may call back with it (wire-formats §2.6) */
	evhttp_set_allowed_methods(d.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	                                            EVHTTP_REQ_PUT);
	evhttp_set_gencb(d.http, on_request, &d);
	if (bind_http(&d, where, sizeof where) != 0) {
		log_msg(LOG_HTTP, LOG_LEVEL_ERROR,
		        "event=bind_failed listen=%s errno=%d",
		        cfg->http_listen, errno);
		goto out;
	}
	log_msg(LOG_HTTP, LOG_LEVEL_NOTICE, "event=listening http=%s", where);
	if (cfg->pos_listen[0] != '\0') {
		d.pos = net_pos_new(d.base, d.dbq, lg, cfg, pos_kek, pos_where,
		                    sizeof pos_where);
		if (d.pos == NULL) {
			log_msg(LOG_POS, LOG_LEVEL_ERROR,
			        "event=bind_failed listen=%s errno=%d",
			        cfg->pos_listen, errno);
			goto out;
		}
		log_msg(LOG_POS, LOG_LEVEL_NOTICE, "event=listening pos=%s",
		        pos_where);
		net_pos_set_prov(d.pos, d.prov);
	}
	/* the readiness line: tests wait for it instead of sleeping */
	printf("sokod ready http=%s%s%s store=%s pid=%ld\n", where,
	       d.pos != NULL ? " pos=" : "", pos_where, st->ops->name,
	       (long)getpid());
	fflush(stdout);

	event_base_dispatch(d.base);
	rc = 0;
out:
	if (d.dbq != NULL) {
		/* commits in flight land; their replies have nowhere to go
		 * only if the timeout expired, which was logged */
		dbq_stop(d.dbq);
		dbq_complete(d.dbq);
	}
	/* calls still in flight end as lost: they are queried after the
	 * restart (the claim was durable); dbq refuses their writes now.
	 * Before net_pos_free: a POS BILL_VALIDATE call ending here is
	 * answered to its connection, which must still exist */
	net_prov_free(d.prov);
	net_pos_free(d.pos); /* no job points at a connection any more */
	if (d.http != NULL)
		evhttp_free(d.http);
	dbq_free(d.dbq);
	if (d.drain_ev != NULL)
		event_free(d.drain_ev);
	if (d.purge_ev != NULL)
		event_free(d.purge_ev);
	if (d.wake_ev != NULL)
		event_free(d.wake_ev);
	if (d.sig_term != NULL)
		event_free(d.sig_term);
	if (d.sig_int != NULL)
		event_free(d.sig_int);
	if (d.wake_fd >= 0)
		close(d.wake_fd);
	cache_clear(&d);
	if (d.base != NULL)
		event_base_free(d.base);
	return rc;
}
