/*
 * net_prov.c - payments through providers on the loop (net_prov.h).
 *
 * Every piece of work is a `pop`: an API request, a janitor pass, a claim,
 * a provider call, a callback.  Storage work is a dbq job (never a call
 * from here); provider calls go through net_curl.  The order that keeps
 * money right (svc_prov.h): claim durably, then call; record the answer;
 * move money only on a status answer, in the same commit as the state.
 *
 * M-Pesa Daraja is the driver built so far: OAuth token (cached, refreshed
 * before expiry, one fetch at a time), STK push, STK query, the STK
 * callback under an unguessable per-shortcode token.
 */
#include "net_prov.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include <openssl/rand.h>

#include "base64.h"
#include "dbq.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "net_curl.h"
#include "net_http.h"
#include "payment.h"
#include "prov_mpesa.h"
#include "sha256.h"
#include "svc_admin.h"
#include "svc_prov.h"
#include "util.h"

#define PROV_BODY_MAX   4096 /* request bodies we build */
#define PROV_TOKS       256  /* JSON tokens of a provider answer */
#define CB_TOKEN_MIN    32   /* callback URL token bytes */
#define TOKEN_MARGIN_MS 60000 /* refresh a token this long before expiry */
#define EAT_OFFSET_S    (3 * 3600) /* Daraja timestamps: Kenyan time */

struct pop;

struct mpesa {
	bool on;
	char *key, *secret, *passkey, *cb_token;
	char token[MPESA_TOKEN_MAX];
	int64_t token_exp_ms;
	bool token_busy;
	struct pop *waiters; /* calls waiting for a token */
	size_t n_waiters;
};

struct net_prov {
	struct event_base *base;
	struct dbq *dbq;
	const struct config *cfg;
	struct ncurl *nc;
	struct event *tick;
	struct svc_prov_policy pol;
	bool due_running, due_again, stopping;
	int64_t inflight;
	struct mpesa m;
};

enum pop_kind {
	POP_CREATE,
	POP_GET,
	POP_DUE,
	POP_CLAIM,  /* claim written, then the send */
	POP_SEND,   /* initiate call in flight */
	POP_QUERY,  /* status call in flight */
	POP_WRITE,  /* an update after an answer */
	POP_SETTLE, /* the success posting */
	POP_CALLBACK,
};

struct pop {
	struct net_prov *np;
	struct pop *next; /* token waiters */
	enum pop_kind kind;
	struct dbq_job job;
	struct evhttp_request *req;
	struct store_prov p;
	struct store_prov_update u;
	/* strings u points into */
	char pref[STORE_PREF_MAX + 1];
	char code[STORE_RCODE_MAX + 1];
	char desc[STORE_RDESC_MAX + 1];
	char receipt[STORE_PREF_MAX + 1];
	/* POP_CREATE */
	struct svc_collection c;
	const char *err_code, *err_msg;
	int status;
	/* POP_DUE */
	struct store_prov *rows;
	size_t n_rows, cap;
	/* POP_CALLBACK */
	bool cb_success, cb_has_amount, cb_found;
	int64_t cb_amount;
	enum svc_prov_cb verdict;
};

/* ------------------------------------------------------------- helpers */

static struct pop *
pop_new(struct net_prov *np, enum pop_kind kind, struct evhttp_request *req)
{
	struct pop *o = xcalloc(1, sizeof *o);

	o->np = np;
	o->kind = kind;
	o->req = req;
	o->job.arg = o;
	np->inflight++;
	return o;
}

static void
pop_free(struct pop *o)
{
	if (o == NULL)
		return;
	o->np->inflight--;
	free(o->rows);
	free(o);
}

static void
kick(struct net_prov *np)
{
	if (np->tick != NULL && !np->stopping)
		event_active(np->tick, EV_TIMEOUT, 0);
}

/* Copies the strings an update points at into o, so they live as long as
 * the job that writes it. */
static void
own_strings(struct pop *o)
{
	struct store_prov_update *u = &o->u;

	if (u->provider_ref != NULL && u->provider_ref != o->pref) {
		strlcpy_s(o->pref, u->provider_ref, sizeof o->pref);
		u->provider_ref = o->pref;
	}
	if (u->result_code != NULL && u->result_code != o->code) {
		strlcpy_s(o->code, u->result_code, sizeof o->code);
		u->result_code = o->code;
	}
	if (u->result_desc != NULL && u->result_desc != o->desc) {
		strlcpy_s(o->desc, u->result_desc, sizeof o->desc);
		u->result_desc = o->desc;
	}
	if (u->receipt != NULL && u->receipt != o->receipt) {
		strlcpy_s(o->receipt, u->receipt, sizeof o->receipt);
		u->receipt = o->receipt;
	}
}

static const char *
call_state_name(uint8_t s)
{
	static const char *const n[] = {"to_send", "sending", "accepted",
	                                "answer_lost", "done"};

	return s < 5 ? n[s] : "?";
}

/* The payment as the API shows it (docs/api.md §Payments). */
static void
reply_payment(struct evhttp_request *req, int status,
              const struct store_prov *p)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	char amount[48] = "", buf[2048];
	struct json_w w;
	const char *why = NULL;
	size_t n = 0;

	if (cur != NULL)
		money_format(amount, sizeof amount, cur, p->pay.amount_minor);
	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_key(&w, "ref");
	json_w_cstr(&w, p->pay.ref);
	json_w_key(&w, "state");
	json_w_cstr(&w, payment_state_name(p->pay.state));
	json_w_key(&w, "kind");
	json_w_cstr(&w, p->kind == STORE_PROV_COLLECT ? "collection"
	                                             : "disbursement");
	json_w_key(&w, "provider");
	json_w_cstr(&w, p->provider);
	json_w_key(&w, "amount");
	json_w_cstr(&w, amount);
	json_w_key(&w, "currency");
	json_w_cstr(&w, cur != NULL ? cur->alpha : "");
	json_w_key(&w, "reference");
	json_w_cstr(&w, p->client_ref);
	json_w_key(&w, "provider_reference");
	json_w_cstr(&w, p->provider_ref);
	json_w_key(&w, "receipt");
	json_w_cstr(&w, p->receipt);
	json_w_key(&w, "result_code");
	json_w_cstr(&w, p->result_code);
	json_w_key(&w, "call");
	json_w_cstr(&w, call_state_name(p->call_state));
	json_w_key(&w, "txn_id");
	json_w_int(&w, p->pay.txn_id);
	json_w_key(&w, "created_ms");
	json_w_int(&w, p->pay.created_ms);
	json_w_obj_end(&w);
	if (json_w_finish(&w, &n, &why) != CODEC_OK) {
		/* provider text that is not UTF-8 would do it: say so
		 * rather than answer half a document */
		net_http_error(req, 500, "render_failed", why);
		return;
	}
	net_http_reply(req, status, "application/json", buf, n);
}


/* --------------------------------------------------------- store jobs */

static int
post_call(struct pop *o, dbq_call_fn call, dbq_done_fn done)
{
	o->job.call = call;
	o->job.done = done;
	return dbq_post(o->np->dbq, &o->job);
}

static enum store_rc
update_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;

	return st->ops->prov_update(st, &o->u, util_now_ms());
}

/* ------------------------------------------------------ POST collections */

static enum store_rc
create_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	const struct config *cfg = o->np->cfg;
	struct ledger_account target, clearing;
	uint8_t want[32];
	enum store_rc rc;

	rc = st->ops->account_by_code(st, o->c.account, &target);
	if (rc == STORE_NOT_FOUND) {
		o->status = 422;
		o->err_code = "account_unknown";
		o->err_msg = "no account with this code";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if (target.type != LEDGER_ACCT_MERCHANT_PAYABLE ||
	    target.currency != o->c.cur->numeric) {
		o->status = 422;
		o->err_code = target.type != LEDGER_ACCT_MERCHANT_PAYABLE
		                      ? "account_type"
		                      : "currency_mismatch";
		o->err_msg = "a collection credits a merchant_payable account "
		             "in the payment's currency";
		return STORE_OK;
	}
	rc = st->ops->account_by_code(st, cfg->mpesa_clearing_account,
	                              &clearing);
	if (rc == STORE_NOT_FOUND ||
	    (rc == STORE_OK &&
	     (clearing.type != LEDGER_ACCT_PROVIDER_CLEARING ||
	      clearing.currency != o->c.cur->numeric))) {
		o->status = 503;
		o->err_code = "provider_misconfigured";
		o->err_msg = "the provider's clearing account is missing or "
		             "not a provider_clearing account in this currency";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	o->p.clearing_account_id = clearing.id;
	o->p.target_account_id = target.id;
	memcpy(want, o->p.req_hash, sizeof want);
	rc = st->ops->prov_create(st, &o->p);
	if (rc == STORE_CONFLICT) {
		/* the key was used: the same request gets the first answer,
		 * another one is refused */
		o->status = util_ct_memcmp(want, o->p.req_hash, sizeof want) == 0
		                    ? 200
		                    : 409;
		return STORE_OK;
	}
	if (rc == STORE_OK)
		o->status = 202;
	return rc;
}

static void
create_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	char m[16];

	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
	} else if (o->status == 409) {
		net_http_error(o->req, 409, "idempotency_key_mismatch",
		               "this Idempotency-Key was used for another "
		               "request");
	} else if (o->err_code != NULL) {
		net_http_error(o->req, o->status, o->err_code, o->err_msg);
	} else {
		if (o->status == 200)
			evhttp_add_header(
				evhttp_request_get_output_headers(o->req),
				"Idempotent-Replayed", "true");
		reply_payment(o->req, o->status, &o->p);
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=collection_created ref=%s provider=%s msisdn=%s "
		        "amount=%lld replay=%d",
		        o->p.pay.ref, o->p.provider,
		        log_msisdn(m, sizeof m, o->p.msisdn),
		        (long long)o->p.pay.amount_minor, o->status == 200);
		if (o->status == 202)
			kick(o->np);
	}
	pop_free(o);
}

/* A reference the customer sees and the provider echoes: n characters
 * of an unambiguous [A-Z2-9] alphabet from the CSPRNG. */
static int
random_ref(char *dst, size_t n)
{
	static const char alpha[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
	uint8_t b[32];
	size_t i;

	if (n > sizeof b || RAND_bytes(b, (int)n) != 1)
		return -1;
	for (i = 0; i < n; i++)
		dst[i] = alpha[b[i] % 32];
	dst[n] = '\0';
	return 0;
}

static void
handle_collection(struct net_prov *np, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *key = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Idempotency-Key");
	struct svc_error e;
	struct pop *o;
	char *body, canon[512];
	int64_t now = util_now_ms();
	int n;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	if (svc_admin_check_key(key, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		return;
	}
	if (strlen(key) > PAYMENT_REF_MAX - 4) { /* "col:" + key */
		net_http_error(req, 400, "idempotency_key_invalid",
		               "Idempotency-Key: at most 60 bytes for a "
		               "collection");
		return;
	}
	o = pop_new(np, POP_CREATE, req);
	body = (char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (svc_admin_parse_collection(&o->c, body ? body : "", len, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		pop_free(o);
		return;
	}
	if (strcmp(o->c.provider, "mpesa") != 0) {
		net_http_error(req, 422, "provider_unknown",
		               "provider must be one of: mpesa");
		pop_free(o);
		return;
	}
	if (!np->m.on) {
		net_http_error(req, 503, "provider_disabled",
		               "this provider is not configured");
		pop_free(o);
		return;
	}
	/* Daraja takes whole shillings (wire-formats §1.2) */
	if (strcmp(o->c.cur->alpha, "KES") != 0 ||
	    o->c.amount_minor % 100 != 0) {
		net_http_error(req, 422, "amount_invalid_for_provider",
		               "M-Pesa collects whole KES only");
		pop_free(o);
		return;
	}
	snprintf(o->p.pay.ref, sizeof o->p.pay.ref, "col:%s", key);
	o->p.pay.currency = o->c.cur->numeric;
	o->p.pay.amount_minor = o->c.amount_minor;
	o->p.pay.created_ms = now;
	o->p.kind = STORE_PROV_COLLECT;
	strlcpy_s(o->p.provider, o->c.provider, sizeof o->p.provider);
	strlcpy_s(o->p.msisdn, o->c.msisdn, sizeof o->p.msisdn);
	if (o->c.reference[0] != '\0')
		strlcpy_s(o->p.client_ref, o->c.reference,
		          sizeof o->p.client_ref);
	else if (random_ref(o->p.client_ref, 10) != 0) {
		net_http_error(req, 503, "retry_later", "no randomness");
		pop_free(o);
		return;
	}
	o->p.call_state = STORE_CALL_TO_SEND;
	o->p.next_at_ms = now;
	o->p.deadline_ms = now + np->pol.deadline_ms;
	/* the request's content, for the idempotency check (the generated
	 * reference is not content) */
	n = snprintf(canon, sizeof canon, "col|%s|%s|%u|%lld|%s|%s",
	             o->c.provider, o->c.msisdn, (unsigned)o->c.cur->numeric,
	             (long long)o->c.amount_minor, o->c.account,
	             o->c.reference);
	sha256_digest(o->p.req_hash, canon, n > 0 ? (size_t)n : 0);
	if (post_call(o, create_call, create_done) != 0) {
		net_http_error(req, 503, "busy",
		               "the server is at capacity; retry later");
		pop_free(o);
	}
}

/* ------------------------------------------------------ GET payments */

static enum store_rc
get_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;

	return st->ops->prov_get(st, o->p.pay.ref, NULL, NULL, NULL, &o->p);
}

static void
get_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->call_rc == STORE_OK)
		reply_payment(o->req, 200, &o->p);
	else if (job->call_rc == STORE_NOT_FOUND)
		net_http_error(o->req, 404, "payment_unknown",
		               "no payment with this reference");
	else
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
	pop_free(o);
}

static void
handle_payment(struct net_prov *np, struct evhttp_request *req,
               const char *ref)
{
	struct pop *o;
	char *dec;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		net_http_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	dec = evhttp_uridecode(ref, 0, NULL);
	if (dec == NULL || dec[0] == '\0' || strlen(dec) > PAYMENT_REF_MAX) {
		free(dec);
		net_http_error(req, 404, "payment_unknown",
		               "no payment with this reference");
		return;
	}
	o = pop_new(np, POP_GET, req);
	strlcpy_s(o->p.pay.ref, dec, sizeof o->p.pay.ref);
	free(dec);
	if (post_call(o, get_call, get_done) != 0) {
		net_http_error(req, 503, "busy", "the server is at capacity");
		pop_free(o);
	}
}

/* ------------------------------------------------------- M-Pesa driver */

static void mpesa_send(struct pop *o);
static void mpesa_query(struct pop *o);
static void answer(struct pop *o, const struct svc_prov_answer *a);

static void
mpesa_url(const struct net_prov *np, char *dst, size_t cap, const char *path)
{
	snprintf(dst, cap, "%s%s", np->cfg->mpesa_base_url, path);
}

/* Calls waiting for the token: go on, or give up without a call. */
static void
token_release(struct net_prov *np, bool ok)
{
	struct pop *w = np->m.waiters, *next;

	np->m.waiters = NULL;
	np->m.n_waiters = 0;
	for (; w != NULL; w = next) {
		next = w->next;
		w->next = NULL;
		if (ok) {
			if (w->kind == POP_SEND)
				mpesa_send(w);
			else
				mpesa_query(w);
		} else {
			struct svc_prov_answer a = {
				.v = w->kind == POP_SEND ? SVC_PROV_NOT_SENT
				                         : SVC_PROV_NO_ANSWER,
				.code = "token"};

			answer(w, &a);
		}
	}
}

static void
token_done(void *arg, const struct ncurl_result *r)
{
	struct net_prov *np = arg;
	struct json_tok toks[16];
	struct json_doc doc;
	struct mpesa_token t;
	struct mpesa_err e;
	const char *why = NULL;
	bool ok = false;

	np->m.token_busy = false;
	if (r->outcome == NCURL_ANSWERED && r->http_status == 200 &&
	    json_parse(&doc, toks, 16, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    mpesa_token_parse(&t, &doc, &e) == MPESA_OK) {
		strlcpy_s(np->m.token, t.access_token, sizeof np->m.token);
		np->m.token_exp_ms = util_now_ms() + t.expires_in_s * 1000;
		ok = true;
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=token provider=mpesa expires_in_s=%lld",
		        (long long)t.expires_in_s);
	} else {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=mpesa outcome=%s "
		        "status=%ld why=\"%s\"",
		        ncurl_outcome_name(r->outcome), r->http_status,
		        r->errstr);
	}
	token_release(np, ok);
}

/* true: the token is fresh, go on now.  false: o waits (or fails). */
static bool
mpesa_token(struct pop *o)
{
	struct net_prov *np = o->np;
	char cred[512], b64[700], auth[740], url[600];
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	if (np->m.token[0] != '\0' &&
	    util_now_ms() < np->m.token_exp_ms - TOKEN_MARGIN_MS)
		return true;
	o->next = np->m.waiters;
	np->m.waiters = o;
	np->m.n_waiters++;
	if (np->m.token_busy)
		return false;
	snprintf(cred, sizeof cred, "%s:%s", np->m.key, np->m.secret);
	if (base64_encode(b64, sizeof b64, (const uint8_t *)cred,
	                  strlen(cred), &n) != CODEC_OK) {
		sha256_wipe(cred, sizeof cred);
		token_release(np, false);
		return false;
	}
	sha256_wipe(cred, sizeof cred);
	snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
	sha256_wipe(b64, sizeof b64);
	mpesa_url(np, url, sizeof url,
	          "/oauth/v1/generate?grant_type=client_credentials");
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = auth;
	rq.n_headers = 1;
	rq.endpoint = "mpesa.oauth";
	np->m.token_busy = true;
	if (ncurl_submit(np->nc, &rq, token_done, np, &why) != 0) {
		np->m.token_busy = false;
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=mpesa why=\"%s\"", why);
		sha256_wipe(auth, sizeof auth);
		token_release(np, false);
		return false;
	}
	sha256_wipe(auth, sizeof auth);
	return false;
}

static void
bearer(const struct net_prov *np, char *dst, size_t cap)
{
	snprintf(dst, cap, "Authorization: Bearer %s", np->m.token);
}

/* Daraja's gateway refuses an expired or wrong token with one of three
 * codes depending on the API (wire-formats §1.0): refresh and send
 * again, nothing was processed. */
static bool
mpesa_token_refused(long status, const struct mpesa_error_resp *er)
{
	return status == 401 || (er != NULL &&
	                         (strcmp(er->error_code, "404.001.03") == 0 ||
	                          strcmp(er->error_code, "400.003.01") == 0 ||
	                          strcmp(er->error_code, "401.002.01") == 0 ||
	                          strstr(er->error_message,
	                                 "Invalid Access Token") != NULL));
}

/* The gateway's throttles answer before anything is processed. */
static bool
mpesa_throttled(long status, const struct mpesa_error_resp *er)
{
	return status == 429 ||
	       (er != NULL && (strcmp(er->error_code, "500.003.02") == 0 ||
	                       strcmp(er->error_code, "500.003.03") == 0));
}

/* Reduces an STK push answer to a verdict (docs/payments.md §1 rule 2). */
static void
stk_push_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	struct mpesa_error_resp er;
	const char *why = NULL;
	bool parsed = r->outcome == NCURL_ANSWERED &&
	              json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
	                         &why) == CODEC_OK;
	bool has_er = parsed && r->http_status != 200 &&
	              mpesa_error_resp_parse(&er, &doc, &e) == MPESA_OK;

	if (has_er) {
		strlcpy_s(o->code, er.error_code, sizeof o->code);
		strlcpy_s(o->desc, er.error_message, sizeof o->desc);
	} else if (r->outcome == NCURL_ANSWERED) {
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
	}
	a.code = o->code;
	a.desc = has_er ? o->desc : NULL;
	if (r->outcome == NCURL_NOT_SENT) {
		a.v = SVC_PROV_NOT_SENT;
		a.code = "not_sent";
	} else if (r->outcome == NCURL_UNKNOWN) {
		a.v = SVC_PROV_LOST;
		a.code = "answer_lost";
	} else if (r->http_status == 200) {
		struct mpesa_stk_push_resp sp;

		if (parsed && mpesa_stk_push_resp_parse(&sp, &doc, &e) ==
		                      MPESA_OK &&
		    mpesa_code_is_zero(&sp.response_code)) {
			a.v = SVC_PROV_ACCEPTED;
			strlcpy_s(o->pref, sp.checkout_request_id,
			          sizeof o->pref);
			a.provider_ref = o->pref;
			a.code = "0";
		} else {
			/* a 200 we cannot read: it may have been taken */
			a.v = SVC_PROV_LOST;
			a.code = "unreadable_answer";
		}
	} else if (mpesa_token_refused(r->http_status, has_er ? &er : NULL)) {
		o->np->m.token[0] = '\0';
		a.v = SVC_PROV_NOT_SENT;
	} else if (mpesa_throttled(r->http_status, has_er ? &er : NULL)) {
		a.v = SVC_PROV_NOT_SENT;
	} else if (r->http_status >= 400 && r->http_status < 500 &&
	           r->http_status != 408) {
		a.v = SVC_PROV_REFUSED; /* bad phone, bad amount, ... */
	} else {
		/* 5xx, 408, anything else: it may have been committed */
		a.v = SVC_PROV_LOST;
	}
	answer(o, &a);
}

static void
mpesa_send(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], ts[16], url[600], auth[600], cb[600];
	struct mpesa_stk_push_req sr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (!mpesa_token(o))
		return;
	if (mpesa_timestamp(ts, sizeof ts, util_now_ms(), EAT_OFFSET_S) !=
	    CODEC_OK)
		goto not_sent;
	snprintf(cb, sizeof cb, "%s/v1/callbacks/mpesa/stk/%s",
	         np->cfg->prov_callback_base_url, np->m.cb_token);
	memset(&sr, 0, sizeof sr);
	sr.short_code = np->cfg->mpesa_shortcode;
	sr.passkey = np->m.passkey;
	sr.timestamp = ts;
	sr.type = MPESA_STK_PAYBILL;
	sr.amount_minor = o->p.pay.amount_minor;
	sr.party_a = o->p.msisdn;
	sr.party_b = np->cfg->mpesa_shortcode;
	sr.phone = o->p.msisdn;
	sr.callback_url = cb;
	sr.account_ref = o->p.client_ref;
	sr.desc = "Payment";
	if (mpesa_stk_push_build(body, sizeof body, &sr, &n, &why) !=
	    CODEC_OK) {
		/* our data cannot make a valid request: it will never
		 * work; fail it (nothing was sent) */
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		answer(o, &a);
		return;
	}
	mpesa_url(np, url, sizeof url, "/mpesa/stkpush/v1/processrequest");
	bearer(np, auth, sizeof auth);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_POST;
	rq.url = url;
	rq.headers[0] = auth;
	rq.headers[1] = "Content-Type: application/json";
	rq.n_headers = 2;
	rq.body = body;
	rq.body_len = n;
	rq.endpoint = "mpesa.stkpush";
	sha256_wipe(ts, sizeof ts);
	if (ncurl_submit(np->nc, &rq, stk_push_done, o, &why) == 0) {
		sha256_wipe(body, sizeof body); /* holds the password */
		return;
	}
	sha256_wipe(body, sizeof body);
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=call_refused ref=%s endpoint=mpesa.stkpush why=\"%s\"",
	        o->p.pay.ref, why);
not_sent: {
	struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
	                            .code = "not_sent"};

	answer(o, &a);
}
}

static void
stk_query_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	const char *why = NULL;
	bool parsed = r->outcome == NCURL_ANSWERED &&
	              json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
	                         &why) == CODEC_OK;

	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200) {
		struct mpesa_stk_query_resp q;

		if (parsed &&
		    mpesa_stk_query_resp_parse(&q, &doc, &e) == MPESA_OK) {
			strlcpy_s(o->code, q.result_code.text, sizeof o->code);
			strlcpy_s(o->desc, q.result_desc, sizeof o->desc);
			a.code = o->code;
			a.desc = o->desc;
			/* ResultCode 0: paid; any other number: the STK
			 * transaction ended without payment (1032 cancelled,
			 * 1 insufficient funds, 1037 unreachable, 2001 wrong
			 * PIN ...) */
			if (mpesa_code_is_zero(&q.result_code))
				a.v = SVC_PROV_SUCCEEDED;
			else if (q.result_code.is_num)
				a.v = SVC_PROV_FAILED;
		} else {
			a.code = "unreadable_answer";
		}
	} else {
		struct mpesa_error_resp er;

		if (parsed && mpesa_error_resp_parse(&er, &doc, &e) == MPESA_OK) {
			strlcpy_s(o->code, er.error_code, sizeof o->code);
			a.code = o->code;
			if (mpesa_token_refused(r->http_status, &er))
				o->np->m.token[0] = '\0';
			/* "The transaction is being processed" */
			else if (strcmp(er.error_code, "500.001.1001") == 0)
				a.v = SVC_PROV_PENDING;
		} else {
			if (r->http_status == 401)
				o->np->m.token[0] = '\0';
			snprintf(o->code, sizeof o->code, "%ld", r->http_status);
			a.code = o->code;
		}
	}
	answer(o, &a);
}

static void
mpesa_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], ts[16], url[600], auth[600];
	struct mpesa_stk_query_req qr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_QUERY;
	if (!mpesa_token(o))
		return;
	if (mpesa_timestamp(ts, sizeof ts, util_now_ms(), EAT_OFFSET_S) !=
	    CODEC_OK)
		goto no_answer;
	qr.short_code = np->cfg->mpesa_shortcode;
	qr.passkey = np->m.passkey;
	qr.timestamp = ts;
	qr.checkout_request_id = o->p.provider_ref;
	if (mpesa_stk_query_build(body, sizeof body, &qr, &n, &why) !=
	    CODEC_OK)
		goto no_answer;
	mpesa_url(np, url, sizeof url, "/mpesa/stkpushquery/v1/query");
	bearer(np, auth, sizeof auth);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_POST;
	rq.url = url;
	rq.headers[0] = auth;
	rq.headers[1] = "Content-Type: application/json";
	rq.n_headers = 2;
	rq.body = body;
	rq.body_len = n;
	rq.endpoint = "mpesa.stkquery";
	if (ncurl_submit(np->nc, &rq, stk_query_done, o, &why) == 0) {
		sha256_wipe(body, sizeof body);
		return;
	}
	sha256_wipe(body, sizeof body);
no_answer: {
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
	                            .code = "not_sent"};

	answer(o, &a);
}
}

/* ----------------------------------------------- answers -> the store */

static void
write_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->call_rc != STORE_OK)
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=update_failed ref=%s rc=%d (retried when due)",
		        o->p.pay.ref, (int)job->call_rc);
	else if (o->u.to_state != o->u.from_state) {
		bool alert = o->u.to_state == PAY_UNKNOWN;

		log_msg(LOG_PROV, alert ? LOG_LEVEL_ERROR : LOG_LEVEL_INFO,
		        "event=payment_%s ref=%s provider=%s code=%s%s",
		        payment_state_name(o->u.to_state), o->p.pay.ref,
		        o->p.provider,
		        o->u.result_code != NULL ? o->u.result_code : "",
		        alert ? " alert=reconcile" : "");
		if (alert)
			metrics_inc(METRIC_PROV_ALERTS);
	}
	pop_free(o);
}

static void
settle_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->res.rc == LEDGER_OK) {
		metrics_inc(METRIC_PROV_SETTLED);
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=payment_succeeded ref=%s provider=%s txn=%lld "
		        "receipt=%s replay=%d",
		        o->p.pay.ref, o->p.provider,
		        (long long)job->res.txn_id,
		        o->u.receipt != NULL ? o->u.receipt : "",
		        job->res.is_replay);
	} else {
		/* retry_later (the row changed meanwhile, or storage): the
		 * janitor comes back to it; anything else needs a human */
		bool alert = job->res.rc != LEDGER_RETRY;

		log_msg(LOG_PROV, alert ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN,
		        "event=settle_failed ref=%s outcome=%s%s", o->p.pay.ref,
		        ledger_rc_name(job->res.rc),
		        alert ? " alert=reconcile" : "");
		if (alert)
			metrics_inc(METRIC_PROV_ALERTS);
	}
	pop_free(o);
}

/* An answer arrived (or is known never to come): decide, then write. */
static void
answer(struct pop *o, const struct svc_prov_answer *a)
{
	bool settle, ok;
	const char *why;

	ok = svc_prov_apply(&o->p, a, util_now_ms(), &o->np->pol, &o->u,
	                    &settle, &why);
	log_msg(LOG_PROV, ok ? LOG_LEVEL_DEBUG : LOG_LEVEL_ERROR,
	        "event=answer ref=%s call=%s verdict=%s code=%s%s%s",
	        o->p.pay.ref, o->kind == POP_SEND ? "initiate" : "status",
	        svc_prov_verdict_name(a->v), a->code != NULL ? a->code : "",
	        ok ? "" : " alert=",
	        ok ? "" : why);
	if (!ok)
		metrics_inc(METRIC_PROV_ALERTS);
	if (o->u.payment_id == 0) {
		pop_free(o);
		return;
	}
	own_strings(o);
	if (settle) {
		o->kind = POP_SETTLE;
		svc_prov_settle_req(&o->p, &o->u, &o->job.req);
		o->job.call = NULL;
		o->job.done = settle_done;
		if (dbq_post(o->np->dbq, &o->job) != 0) {
			log_msg(LOG_PROV, LOG_LEVEL_WARN,
			        "event=busy ref=%s (retried when due)",
			        o->p.pay.ref);
			pop_free(o);
		}
		return;
	}
	o->kind = POP_WRITE;
	if (post_call(o, update_call, write_done) != 0) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=busy ref=%s (retried when due)", o->p.pay.ref);
		pop_free(o);
	}
}

/* ------------------------------------------------------------ janitor */

static bool
can_query(const struct store_prov *p)
{
	/* an STK push is queried by its CheckoutRequestID */
	return p->provider_ref[0] != '\0';
}

static void
claim_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->call_rc != STORE_OK) {
		/* not claimed: not sent.  Due again after the lease. */
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=claim_failed ref=%s rc=%d", o->p.pay.ref,
		        (int)job->call_rc);
		pop_free(o);
		return;
	}
	/* the row as it now is in the store */
	o->p.pay.state = o->u.to_state;
	o->p.call_state = o->u.call_state;
	o->p.send_attempts = o->u.send_attempts;
	o->p.next_at_ms = o->u.next_at_ms;
	memset(&o->u, 0, sizeof o->u);
	mpesa_send(o);
}

static void
due_done(struct dbq_job *job)
{
	struct pop *d = job->arg;
	struct net_prov *np = d->np;
	int64_t now = util_now_ms();
	size_t i;

	np->due_running = false;
	if (job->call_rc != STORE_OK)
		log_msg(LOG_PROV, LOG_LEVEL_WARN, "event=janitor_failed rc=%d",
		        (int)job->call_rc);
	for (i = 0; job->call_rc == STORE_OK && i < d->n_rows; i++) {
		struct pop *o = pop_new(np, POP_CLAIM, NULL);
		enum svc_prov_action act;
		const char *why;

		o->p = d->rows[i];
		act = svc_prov_due(&o->p, can_query(&o->p), now, &np->pol,
		                   &o->u, &why);
		log_msg(LOG_PROV, LOG_LEVEL_DEBUG,
		        "event=due ref=%s state=%s call=%s action=\"%s\"",
		        o->p.pay.ref, payment_state_name(o->p.pay.state),
		        call_state_name(o->p.call_state), why);
		switch (act) {
		case SVC_PROV_NOTHING:
			pop_free(o);
			break;
		case SVC_PROV_SEND:
			if (post_call(o, update_call, claim_done) != 0)
				pop_free(o);
			break;
		case SVC_PROV_QUERY:
			mpesa_query(o);
			break;
		case SVC_PROV_UPDATE:
			o->kind = POP_WRITE;
			if (post_call(o, update_call, write_done) != 0)
				pop_free(o);
			break;
		}
	}
	pop_free(d);
	if (np->due_again) {
		np->due_again = false;
		kick(np);
	}
}

static enum store_rc
due_call(struct store *st, struct dbq_job *job)
{
	struct pop *d = job->arg;

	return st->ops->prov_due(st, util_now_ms(), d->np->pol.lease_ms,
	                         d->rows, d->cap, &d->n_rows);
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct net_prov *np = arg;
	int room;
	struct pop *d;

	(void)fd;
	(void)what;
	if (np->stopping || !np->m.on)
		return;
	if (np->due_running) {
		np->due_again = true;
		return;
	}
	/* take no more than the calls that can start now: a claimed row
	 * waits out its lease */
	room = (int)np->cfg->prov_max_inflight - ncurl_inflight(np->nc);
	if (room <= 0)
		return;
	d = pop_new(np, POP_DUE, NULL);
	d->cap = (size_t)(room < np->cfg->prov_batch ? room
	                                             : np->cfg->prov_batch);
	d->rows = xcalloc(d->cap, sizeof *d->rows);
	np->due_running = true;
	if (post_call(d, due_call, due_done) != 0) {
		np->due_running = false;
		pop_free(d);
	}
}

/* ---------------------------------------------------------- callbacks */

static enum store_rc
callback_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct store_prov_callback cb;
	enum store_rc rc;
	bool has_update = false;
	int attempt;
	char detail[160];

	for (attempt = 0; attempt < 3; attempt++) {
		rc = st->ops->prov_get(st, NULL, "mpesa", o->pref, NULL, &o->p);
		if (rc == STORE_NOT_FOUND)
			break;
		if (rc != STORE_OK)
			return rc;
		o->verdict = svc_prov_callback(
			&o->p, o->cb_success, o->cb_has_amount, o->cb_amount,
			o->code, o->receipt[0] != '\0' ? o->receipt : NULL,
			util_now_ms(), &o->u, &has_update);
		if (!has_update)
			break;
		rc = st->ops->prov_update(st, &o->u, util_now_ms());
		if (rc != STORE_CONFLICT)
			break; /* else: it changed under us; judge again */
	}
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return rc;
	o->cb_found = rc == STORE_OK;
	snprintf(detail, sizeof detail, "result=%s amount=%lld receipt=%s",
	         o->code, (long long)o->cb_amount, o->receipt);
	memset(&cb, 0, sizeof cb);
	cb.provider = "mpesa";
	cb.provider_ref = o->pref;
	cb.payment_id = o->cb_found ? o->p.pay.id : 0;
	cb.verdict = o->cb_found ? svc_prov_cb_name(o->verdict)
	                         : "unknown_reference";
	cb.detail = detail;
	cb.received_ms = util_now_ms();
	return st->ops->prov_callback_add(st, &cb);
}

static void
callback_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	char ack[128];
	size_t n = 0;
	const char *why = NULL;

	metrics_inc(METRIC_PROV_CALLBACKS);
	if (job->call_rc != STORE_OK) {
		/* not recorded: ask the provider to send it again */
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
		pop_free(o);
		return;
	}
	if (!o->cb_found) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=callback_unknown provider=mpesa ref=%s "
		        "(recorded for reconciliation)",
		        o->pref);
		net_http_error(o->req, 404, "payment_unknown",
		               "no payment with this CheckoutRequestID");
		pop_free(o);
		return;
	}
	if (o->verdict == SVC_CB_CONTRADICTION || o->verdict == SVC_CB_AMOUNT) {
		metrics_inc(METRIC_PROV_ALERTS);
		log_msg(LOG_PROV, LOG_LEVEL_ERROR,
		        "event=callback_%s provider=mpesa ref=%s state=%s "
		        "result=%s alert=reconcile",
		        svc_prov_cb_name(o->verdict), o->p.pay.ref,
		        payment_state_name(o->p.pay.state), o->code);
	} else {
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=callback provider=mpesa ref=%s verdict=%s "
		        "result=%s",
		        o->p.pay.ref, svc_prov_cb_name(o->verdict), o->code);
	}
	if (o->verdict == SVC_CB_AMOUNT) {
		net_http_error(o->req, 422, "amount_mismatch",
		               "the callback's amount differs from the "
		               "payment's");
	} else {
		mpesa_callback_ack_build(ack, sizeof ack, "Accepted", &n, &why);
		net_http_reply(o->req, 200, "application/json", ack, n);
	}
	if (o->verdict == SVC_CB_ACCEPTED)
		kick(o->np);
	pop_free(o);
}

static void
handle_mpesa_stk_callback(struct net_prov *np, struct evhttp_request *req,
                          const char *token)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), tl = strlen(token);
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_stk_callback cb;
	struct mpesa_err e;
	const char *why = NULL, *body;
	enum mpesa_rc mr;
	struct pop *o;

	if (!np->m.on || tl != strlen(np->m.cb_token) ||
	    util_ct_memcmp(token, np->m.cb_token, tl) != 0) {
		/* a wrong token looks like no endpoint at all */
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=callback_rejected provider=mpesa "
		        "reason=token");
		metrics_inc(METRIC_PROV_CALLBACKS_REJECTED);
		net_http_error(req, 404, "not_found", "no such endpoint");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (json_parse(&doc, toks, PROV_TOKS, body ? body : "", len, &why) !=
	    CODEC_OK) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=callback_rejected provider=mpesa reason=json "
		        "why=\"%s\"",
		        why);
		metrics_inc(METRIC_PROV_CALLBACKS_REJECTED);
		net_http_error(req, 400, "callback_invalid_json", why);
		return;
	}
	if ((mr = mpesa_stk_callback_parse(&cb, &doc, &e)) != MPESA_OK) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=callback_rejected provider=mpesa reason=shape "
		        "field=%s why=\"%s\"",
		        e.field, e.why != NULL ? e.why : "");
		metrics_inc(METRIC_PROV_CALLBACKS_REJECTED);
		net_http_error(req, 400,
		               mr == MPESA_MISSING ? "callback_field_missing"
		               : mr == MPESA_WRONG_TYPE
		                       ? "callback_field_type"
		                       : "callback_field_invalid",
		               e.field);
		return;
	}
	o = pop_new(np, POP_CALLBACK, req);
	strlcpy_s(o->pref, cb.checkout_request_id, sizeof o->pref);
	strlcpy_s(o->code, cb.result_code.text, sizeof o->code);
	strlcpy_s(o->receipt, cb.receipt, sizeof o->receipt);
	o->cb_success = mpesa_code_is_zero(&cb.result_code);
	o->cb_has_amount = cb.has_amount;
	o->cb_amount = cb.amount_minor;
	if (post_call(o, callback_call, callback_done) != 0) {
		net_http_error(req, 503, "busy", "retry later");
		pop_free(o);
	}
}

/* ---------------------------------------------------------- the front */

bool
net_prov_http(struct net_prov *np, struct evhttp_request *req,
              const char *path, bool is_admin)
{
	static const char stk_cb[] = "/v1/callbacks/mpesa/stk/";

	if (strncmp(path, stk_cb, sizeof stk_cb - 1) == 0) {
		handle_mpesa_stk_callback(np, req, path + sizeof stk_cb - 1);
		return true;
	}
	if (strcmp(path, "/v1/collections") != 0 &&
	    strncmp(path, "/v1/payments/", 13) != 0)
		return false;
	if (!is_admin) {
		net_http_error(req, 401, "unauthorized",
		               "missing or wrong admin API key");
		return true;
	}
	if (path[4] == 'c')
		handle_collection(np, req);
	else
		handle_payment(np, req, path + 13);
	return true;
}

int64_t
net_prov_inflight(const struct net_prov *np)
{
	return np != NULL ? np->inflight : 0;
}

static char *
secret(const char *file, const char *env, const char *what, char *err,
       size_t errlen)
{
	int bad = 0;
	char *s = config_secret(file, env, &bad, err, errlen);

	if (s == NULL && !bad)
		snprintf(err, errlen, "%s: set %s_file or %s", what, what, env);
	return s;
}

struct net_prov *
net_prov_new(struct event_base *base, struct dbq *dbq,
             const struct config *cfg, char *err, size_t errlen)
{
	struct net_prov *np = xcalloc(1, sizeof *np);
	struct ncurl_config nc;
	struct timeval tv;

	np->base = base;
	np->dbq = dbq;
	np->cfg = cfg;
	np->pol.first_check_ms = cfg->prov_first_check_ms;
	np->pol.check_every_ms = cfg->prov_check_every_ms;
	np->pol.max_checks = (int32_t)cfg->prov_max_checks;
	np->pol.deadline_ms = cfg->prov_deadline_s * 1000;
	np->pol.max_sends = (int32_t)cfg->prov_max_sends;
	np->pol.resend_after_ms = cfg->prov_check_every_ms;
	np->pol.lease_ms = cfg->prov_lease_ms;
	if (cfg->mpesa_base_url[0] != '\0') {
		if (strncmp(cfg->mpesa_base_url, "https://", 8) != 0) {
			snprintf(err, errlen,
			         "mpesa_base_url: must be https:// (got %s)",
			         cfg->mpesa_base_url);
			goto fail;
		}
		if (cfg->prov_callback_base_url[0] == '\0') {
			snprintf(err, errlen,
			         "prov_callback_base_url: required when "
			         "mpesa_base_url is set");
			goto fail;
		}
		if ((np->m.key = secret(cfg->mpesa_consumer_key_file,
		                        "SOKO_MPESA_CONSUMER_KEY",
		                        "mpesa_consumer_key", err, errlen)) ==
		            NULL ||
		    (np->m.secret = secret(cfg->mpesa_consumer_secret_file,
		                           "SOKO_MPESA_CONSUMER_SECRET",
		                           "mpesa_consumer_secret", err,
		                           errlen)) == NULL ||
		    (np->m.passkey = secret(cfg->mpesa_passkey_file,
		                            "SOKO_MPESA_PASSKEY", "mpesa_passkey",
		                            err, errlen)) == NULL ||
		    (np->m.cb_token = secret(cfg->mpesa_callback_token_file,
		                             "SOKO_MPESA_CALLBACK_TOKEN",
		                             "mpesa_callback_token", err,
		                             errlen)) == NULL)
			goto fail;
		if (strlen(np->m.cb_token) < CB_TOKEN_MIN ||
		    strspn(np->m.cb_token,
		           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		           "0123456789-_") != strlen(np->m.cb_token)) {
			snprintf(err, errlen,
			         "mpesa_callback_token: at least %d characters "
			         "of [A-Za-z0-9_-]",
			         CB_TOKEN_MIN);
			goto fail;
		}
		np->m.on = true;
	}
	memset(&nc, 0, sizeof nc);
	nc.ca_file = cfg->prov_ca_file[0] != '\0' ? cfg->prov_ca_file : NULL;
	nc.default_timeout_ms = (int)cfg->prov_timeout_ms;
	nc.connect_timeout_ms = (int)cfg->prov_connect_timeout_ms;
	nc.max_inflight = (int)cfg->prov_max_inflight;
	nc.max_host_conns = 64;
	nc.max_body = 1 << 20;
	nc.breaker_failures = (int)cfg->prov_breaker_failures;
	nc.breaker_open_ms = (int)cfg->prov_breaker_open_ms;
	if ((np->nc = ncurl_new(base, &nc, err, errlen)) == NULL)
		goto fail;
	np->tick = event_new(base, -1, EV_PERSIST, on_tick, np);
	tv.tv_sec = cfg->prov_janitor_ms / 1000;
	tv.tv_usec = (cfg->prov_janitor_ms % 1000) * 1000;
	if (np->tick == NULL || event_add(np->tick, &tv) != 0) {
		snprintf(err, errlen, "janitor timer: out of memory");
		goto fail;
	}
	return np;
fail:
	net_prov_free(np);
	return NULL;
}

void
net_prov_shutdown(struct net_prov *np)
{
	if (np == NULL)
		return;
	np->stopping = true;
	if (np->tick != NULL)
		event_del(np->tick);
}

static void
wipe_free(char *s)
{
	if (s != NULL) {
		sha256_wipe(s, strlen(s));
		free(s);
	}
}

void
net_prov_free(struct net_prov *np)
{
	if (np == NULL)
		return;
	if (np->tick != NULL)
		event_free(np->tick);
	/* ends every call in flight: their pops write what they learnt
	 * (or nothing) through dbq, which is stopped by now; see
	 * net_http.c for the order */
	ncurl_free(np->nc);
	wipe_free(np->m.key);
	wipe_free(np->m.secret);
	wipe_free(np->m.passkey);
	wipe_free(np->m.cb_token);
	sha256_wipe(np->m.token, sizeof np->m.token);
	free(np);
}
