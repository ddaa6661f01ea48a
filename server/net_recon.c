/*
 * net_recon.c - reconciliation of unknown payments on the loop
 * (docs/payments.md §Reconciliation, docs/api.md §Reconciliation):
 *
 *   GET  /v1/payments?state=unknown[&after=ID][&limit=N]   the list
 *   POST /v1/payments/{ref}/requery    one more status query (first step)
 *   POST /v1/payments/{ref}/resolve    settle by hand from evidence
 *
 * Every decision is in svc_recon.c; this file reads, writes through the
 * storage queue and answers.  A resolution that moves money is a ledger
 * request carrying the payment's change and its resolution record
 * (ledger_req.prov): the postings, the state and the record commit
 * together or not at all.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "dbq.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "net_http.h"
#include "net_prov_int.h"
#include "payment.h"
#include "svc_recon.h"
#include "util.h"

enum rop_kind { ROP_LIST, ROP_RESOLVE, ROP_REQUERY };

/* One reconciliation request in flight. */
struct rop {
	struct net_prov *np;
	struct evhttp_request *req;
	enum rop_kind kind;
	struct dbq_job job;
	struct store_prov p;
	/* ROP_RESOLVE: the request, and the earlier resolution if any */
	struct store_prov_resolution res, prior;
	bool has_prior;
	struct store_prov_update u; /* points at res */
	/* ROP_LIST */
	int64_t after;
	struct store_prov *rows;
	size_t n_rows, cap;
};

static struct rop *
rop_new(struct net_prov *np, struct evhttp_request *req, enum rop_kind kind)
{
	struct rop *o = xcalloc(1, sizeof *o);

	o->np = np;
	o->req = req;
	o->kind = kind;
	o->job.arg = o;
	prov_busy_inc(np, 1);
	return o;
}

static void
rop_free(struct rop *o)
{
	prov_busy_inc(o->np, -1);
	free(o->rows);
	free(o);
}

static void
rop_post(struct rop *o, dbq_call_fn call, dbq_done_fn done)
{
	o->job.call = call;
	o->job.done = done;
	if (dbq_post(prov_dbq(o->np), &o->job) != 0) {
		net_http_error(o->req, 503, "busy",
		               "the server is at capacity; retry later");
		rop_free(o);
	}
}

static void
reply_error(struct rop *o, const struct svc_error *e)
{
	net_http_error(o->req, e->status, e->code, e->message);
	rop_free(o);
}

/* ------------------------------------------------------------ the list */

static enum store_rc
list_call(struct store *st, struct dbq_job *job)
{
	struct rop *o = job->arg;

	return st->ops->prov_unknown(st, o->after, o->rows, o->cap,
	                             &o->n_rows);
}

static void
list_done(struct dbq_job *job)
{
	struct rop *o = job->arg;
	struct json_w w;
	const char *why = NULL;
	char *buf;
	size_t i, n = 0, cap = 256 + o->n_rows * 2048;

	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
		rop_free(o);
		return;
	}
	buf = xmalloc(cap);
	json_w_init(&w, buf, cap);
	json_w_obj_begin(&w);
	json_w_key(&w, "payments");
	json_w_arr_begin(&w);
	for (i = 0; i < o->n_rows; i++)
		prov_json_payment(&w, &o->rows[i]);
	json_w_arr_end(&w);
	/* a full page may have a next one: ask with after=next_after */
	json_w_key(&w, "next_after");
	if (o->n_rows == o->cap)
		json_w_int(&w, o->rows[o->n_rows - 1].pay.id);
	else
		json_w_null(&w);
	json_w_obj_end(&w);
	if (json_w_finish(&w, &n, &why) != CODEC_OK)
		net_http_error(o->req, 500, "render_failed", why);
	else
		net_http_reply(o->req, 200, "application/json", buf, n);
	free(buf);
	rop_free(o);
}

/* Reads a decimal query value in [min, max] into *out; -1 if it is not
 * one. */
static int
query_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 18)
		return -1;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void
handle_list(struct net_prov *np, struct evhttp_request *req)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq args;
	struct evkeyval *kv;
	const char *state = NULL, *after = NULL, *limit = NULL;
	int64_t after_v = 0, limit_v = 50;
	struct rop *o;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		net_http_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	TAILQ_INIT(&args);
	if (q != NULL && evhttp_parse_query_str(q, &args) != 0) {
		net_http_error(req, 400, "query_invalid",
		               "the query string cannot be parsed");
		return;
	}
	TAILQ_FOREACH(kv, &args, next)
	{
		if (strcmp(kv->key, "state") == 0 && state == NULL)
			state = kv->value;
		else if (strcmp(kv->key, "after") == 0 && after == NULL)
			after = kv->value;
		else if (strcmp(kv->key, "limit") == 0 && limit == NULL)
			limit = kv->value;
		else {
			net_http_error(req, 400, "query_invalid",
			               "unknown or repeated query parameter "
			               "(state, after, limit)");
			evhttp_clear_headers(&args);
			return;
		}
	}
	if (state == NULL || strcmp(state, "unknown") != 0) {
		evhttp_clear_headers(&args);
		net_http_error(req, 422, "state_unsupported",
		               "only state=unknown can be listed");
		return;
	}
	if ((after != NULL && query_int(after, 0, INT64_MAX / 2, &after_v)) ||
	    (limit != NULL &&
	     query_int(limit, 1, SVC_RECON_PAGE_MAX, &limit_v))) {
		evhttp_clear_headers(&args);
		net_http_error(req, 422, "query_invalid",
		               "after must be a payment id >= 0, limit 1..100");
		return;
	}
	evhttp_clear_headers(&args);
	o = rop_new(np, req, ROP_LIST);
	o->after = after_v;
	o->cap = (size_t)limit_v;
	o->rows = xcalloc(o->cap, sizeof *o->rows);
	rop_post(o, list_call, list_done);
}

/* --------------------------------------------------- resolve, requery */

/* The payment (and, to resolve, its resolution if any). */
static enum store_rc
read_call(struct store *st, struct dbq_job *job)
{
	struct rop *o = job->arg;
	enum store_rc rc;

	rc = st->ops->prov_get(st, o->p.pay.ref, NULL, NULL, NULL, &o->p);
	if (rc != STORE_OK || o->kind != ROP_RESOLVE)
		return rc;
	rc = st->ops->prov_resolution_get(st, o->p.pay.id, &o->prior);
	o->has_prior = rc == STORE_OK;
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

static enum store_rc
update_call(struct store *st, struct dbq_job *job)
{
	struct rop *o = job->arg;

	return st->ops->prov_update(st, &o->u, util_now_ms());
}

/* After the write: the payment as it now is. */
static void
final_done(struct dbq_job *job)
{
	struct rop *o = job->arg;

	if (job->call_rc == STORE_OK)
		prov_reply_payment(o->req, o->kind == ROP_REQUERY ? 202 : 200,
		                   &o->p);
	else
		/* written, but not read back: the state is durable */
		net_http_error(o->req, 503, "retry_later",
		               "resolved; reading it back failed: GET "
		               "/v1/payments/{ref}");
	rop_free(o);
}

static void
resolved(struct rop *o, int64_t txn_id)
{
	metrics_inc(METRIC_PROV_RESOLVED);
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=payment_resolved ref=%s provider=%s outcome=%s "
	        "actor=%s provider_ref=%s txn=%lld evidence_bytes=%zu",
	        o->p.pay.ref, o->p.provider, payment_state_name(o->res.outcome),
	        o->res.actor, o->res.provider_ref, (long long)txn_id,
	        strlen(o->res.evidence));
	rop_post(o, read_call, final_done);
}

static void
write_done(struct dbq_job *job)
{
	struct rop *o = job->arg;

	if (job->call_rc == STORE_OK) {
		if (o->kind == ROP_RESOLVE) {
			resolved(o, 0);
			return;
		}
		metrics_inc(METRIC_PROV_REQUERIES);
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=payment_requery ref=%s provider=%s",
		        o->p.pay.ref, o->p.provider);
		prov_kick(o->np);
		rop_post(o, read_call, final_done);
		return;
	}
	if (job->call_rc == STORE_CONFLICT)
		net_http_error(o->req, 409, "payment_changed",
		               "the payment changed meanwhile (a status "
		               "answer?); look at it again");
	else
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry");
	rop_free(o);
}

static void
post_done(struct dbq_job *job)
{
	struct rop *o = job->arg;
	struct svc_error e;

	switch (job->res.rc) {
	case LEDGER_OK:
		resolved(o, job->res.txn_id);
		return;
	case LEDGER_RETRY:
		/* the row changed meanwhile (nothing written), or storage */
		net_http_error(o->req, 503, "retry_later",
		               "not resolved (the payment changed meanwhile, "
		               "or storage); look at it and retry with the "
		               "same Idempotency-Key");
		break;
	default:
		/* a posting the ledger refuses (a closed account ...):
		 * nothing was written */
		e.status = 422;
		e.code = ledger_rc_name(job->res.rc);
		e.message = "the ledger refused the posting; nothing changed";
		log_msg(LOG_PROV, LOG_LEVEL_ERROR,
		        "event=resolve_refused ref=%s outcome=%s "
		        "alert=reconcile", o->p.pay.ref, e.code);
		metrics_inc(METRIC_PROV_ALERTS);
		net_http_error(o->req, e.status, e.code, e.message);
		break;
	}
	rop_free(o);
}

static void
read_done(struct dbq_job *job)
{
	struct rop *o = job->arg;
	struct svc_error e;
	const struct prov_drv *drv;

	if (job->call_rc == STORE_NOT_FOUND) {
		net_http_error(o->req, 404, "payment_unknown",
		               "no provider payment with this reference");
		rop_free(o);
		return;
	}
	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
		rop_free(o);
		return;
	}
	if (o->kind == ROP_REQUERY) {
		drv = prov_driver(o->np, o->p.provider);
		if (drv == NULL) {
			net_http_error(o->req, 503, "provider_disabled",
			               "this instance does not drive the "
			               "payment's provider");
			rop_free(o);
			return;
		}
		if (svc_recon_requery(&o->p,
		                      o->p.kind == STORE_PROV_BILL ||
		                              drv->can_query(&o->p),
		                      util_now_ms(), &o->u, &e) != 0) {
			reply_error(o, &e);
			return;
		}
		rop_post(o, update_call, write_done);
		return;
	}
	switch (svc_recon_resolve(&o->p, o->has_prior ? &o->prior : NULL,
	                          &o->res, &o->u, &o->job.req, &e)) {
	case SVC_RECON_REPLAY:
		evhttp_add_header(evhttp_request_get_output_headers(o->req),
		                  "Idempotent-Replayed", "true");
		prov_reply_payment(o->req, 200, &o->p);
		rop_free(o);
		return;
	case SVC_RECON_REFUSED:
		reply_error(o, &e);
		return;
	case SVC_RECON_WRITE:
		rop_post(o, update_call, write_done);
		return;
	case SVC_RECON_POST:
		o->job.call = NULL;
		o->job.done = post_done;
		if (dbq_post(prov_dbq(o->np), &o->job) != 0) {
			net_http_error(o->req, 503, "busy",
			               "the server is at capacity; retry later");
			rop_free(o);
		}
		return;
	}
}

/* "/v1/payments/<ref>/<action>": ref into o, or -1 (404). */
static int
ref_of(const char *path, size_t action_len, struct rop *o)
{
	const char *ref = path + 13;
	size_t n = strlen(ref) - action_len;
	char enc[3 * PAYMENT_REF_MAX + 1], *dec;

	if (n == 0 || n >= sizeof enc)
		return -1;
	memcpy(enc, ref, n);
	enc[n] = '\0';
	dec = evhttp_uridecode(enc, 0, NULL);
	if (dec == NULL || dec[0] == '\0' || strlen(dec) > PAYMENT_REF_MAX) {
		free(dec);
		return -1;
	}
	strlcpy_s(o->p.pay.ref, dec, sizeof o->p.pay.ref);
	free(dec);
	return 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static void
handle_action(struct net_prov *np, struct evhttp_request *req,
              const char *path, enum rop_kind kind)
{
	static const char *const action[] = {"", "/resolve", "/requery"};
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *key;
	struct svc_error e;
	struct rop *o;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	o = rop_new(np, req, kind);
	if (ref_of(path, strlen(action[kind]), o) != 0) {
		net_http_error(req, 404, "payment_unknown",
		               "no payment with this reference");
		rop_free(o);
		return;
	}
	if (kind == ROP_RESOLVE) {
		const char *body;

		key = evhttp_find_header(evhttp_request_get_input_headers(req),
		                         "Idempotency-Key");
		if (svc_admin_check_key(key, &e) != 0) {
			reply_error(o, &e);
			return;
		}
		body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		if (svc_recon_parse(&o->res, body != NULL ? body : "", len,
		                    &e) != 0) {
			reply_error(o, &e);
			return;
		}
		strlcpy_s(o->res.idem_key, key, sizeof o->res.idem_key);
		svc_recon_hash(&o->res, o->p.pay.ref);
	}
	rop_post(o, read_call, read_done);
}

bool
net_recon_http(struct net_prov *np, struct evhttp_request *req,
               const char *path)
{
	if (strcmp(path, "/v1/payments") == 0) {
		handle_list(np, req);
		return true;
	}
	if (strncmp(path, "/v1/payments/", 13) != 0)
		return false;
	if (ends_with(path + 13, "/resolve")) {
		handle_action(np, req, path, ROP_RESOLVE);
		return true;
	}
	if (ends_with(path + 13, "/requery")) {
		handle_action(np, req, path, ROP_REQUERY);
		return true;
	}
	return false;
}
