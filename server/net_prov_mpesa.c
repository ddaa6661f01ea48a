/*
 * net_prov_mpesa.c - the M-Pesa Daraja driver (net_prov_int.h): OAuth
 * token, STK push, STK query, the STK callback under an unguessable
 * per-shortcode token (docs/payments.md §3, wire-formats §1).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "base64.h"
#include "json.h"
#include "log.h"
#include "net_http.h"
#include "net_prov_int.h"
#include "prov_mpesa.h"
#include "sha256.h"
#include "util.h"

#define EAT_OFFSET_S (3 * 3600) /* Daraja timestamps: Kenyan time */

struct mpesa {
	char *key, *secret, *passkey, *cb_token;
	struct prov_token tok;
};

static struct mpesa *
M(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_mpesa);
}

static void
mpesa_url(const struct net_prov *np, char *dst, size_t cap, const char *path)
{
	snprintf(dst, cap, "%s%s", prov_cfg(np)->mpesa_base_url, path);
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

	if (r->outcome == NCURL_ANSWERED && r->http_status == 200 &&
	    json_parse(&doc, toks, 16, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    mpesa_token_parse(&t, &doc, &e) == MPESA_OK) {
		prov_token_done(np, &M(np)->tok, t.access_token,
		                t.expires_in_s);
		sha256_wipe(&t, sizeof t);
		return;
	}
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=token_failed provider=mpesa outcome=%s status=%ld "
	        "why=\"%s\"",
	        ncurl_outcome_name(r->outcome), r->http_status, r->errstr);
	prov_token_done(np, &M(np)->tok, NULL, 0);
}

/* GET /oauth/v1/generate with Basic base64(key:secret) (wire-formats
 * §1.1); the credentials are wiped from every buffer after use. */
static int
token_fetch(struct net_prov *np, struct prov_token *t)
{
	struct mpesa *m = M(np);
	char cred[512], b64[700], auth[740], url[600];
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;
	int rc = -1;

	(void)t;
	snprintf(cred, sizeof cred, "%s:%s", m->key, m->secret);
	if (base64_encode(b64, sizeof b64, (const uint8_t *)cred,
	                  strlen(cred), &n) == CODEC_OK) {
		snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
		mpesa_url(np, url, sizeof url,
		          "/oauth/v1/generate?grant_type=client_credentials");
		memset(&rq, 0, sizeof rq);
		rq.method = NCURL_GET;
		rq.url = url;
		rq.headers[0] = auth;
		rq.n_headers = 1;
		rq.endpoint = "mpesa.oauth";
		rc = ncurl_submit(prov_curl(np), &rq, token_done, np, &why);
		if (rc != 0)
			log_msg(LOG_PROV, LOG_LEVEL_WARN,
			        "event=token_failed provider=mpesa why=\"%s\"",
			        why);
	}
	sha256_wipe(cred, sizeof cred);
	sha256_wipe(b64, sizeof b64);
	sha256_wipe(auth, sizeof auth);
	return rc;
}

static void
bearer(const struct net_prov *np, char *dst, size_t cap)
{
	snprintf(dst, cap, "Authorization: Bearer %s", M(np)->tok.token);
}

static void mpesa_send(struct pop *o);
static void mpesa_query(struct pop *o);

static void
resume(struct pop *o)
{
	if (o->kind == POP_SEND)
		mpesa_send(o);
	else
		mpesa_query(o);
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
		prov_token_drop(&M(o->np)->tok);
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
	prov_answer(o, &a);
}

static void
mpesa_send(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], ts[16], url[600], auth[PROV_TOKEN_MAX + 32], cb[600];
	struct mpesa_stk_push_req sr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (!prov_token_get(np, &M(np)->tok, o))
		return;
	if (mpesa_timestamp(ts, sizeof ts, util_now_ms(), EAT_OFFSET_S) !=
	    CODEC_OK)
		goto not_sent;
	prov_callback_url(np, "mpesa/stk", M(np)->cb_token, cb, sizeof cb);
	memset(&sr, 0, sizeof sr);
	sr.short_code = prov_cfg(np)->mpesa_shortcode;
	sr.passkey = M(np)->passkey;
	sr.timestamp = ts;
	sr.type = MPESA_STK_PAYBILL;
	sr.amount_minor = o->p.pay.amount_minor;
	sr.party_a = o->p.msisdn;
	sr.party_b = prov_cfg(np)->mpesa_shortcode;
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
		prov_answer(o, &a);
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
	if (ncurl_submit(prov_curl(np), &rq, stk_push_done, o, &why) == 0) {
		sha256_wipe(body, sizeof body); /* holds the password */
		return;
	}
	sha256_wipe(body, sizeof body);
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=call_refused ref=%s endpoint=mpesa.stkpush why=\"%s\"",
	        o->p.pay.ref, why);
not_sent: {
	struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
	                            .code = "not_sent",
	                            .not_left = true};

	prov_answer(o, &a);
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
				prov_token_drop(&M(o->np)->tok);
			/* "The transaction is being processed" */
			else if (strcmp(er.error_code, "500.001.1001") == 0)
				a.v = SVC_PROV_PENDING;
		} else {
			if (r->http_status == 401)
				prov_token_drop(&M(o->np)->tok);
			snprintf(o->code, sizeof o->code, "%ld", r->http_status);
			a.code = o->code;
		}
	}
	prov_answer(o, &a);
}

static void
mpesa_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], ts[16], url[600], auth[PROV_TOKEN_MAX + 32];
	struct mpesa_stk_query_req qr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_QUERY;
	if (!prov_token_get(np, &M(np)->tok, o))
		return;
	if (mpesa_timestamp(ts, sizeof ts, util_now_ms(), EAT_OFFSET_S) !=
	    CODEC_OK)
		goto no_answer;
	qr.short_code = prov_cfg(np)->mpesa_shortcode;
	qr.passkey = M(np)->passkey;
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
	if (ncurl_submit(prov_curl(np), &rq, stk_query_done, o, &why) == 0) {
		sha256_wipe(body, sizeof body);
		return;
	}
	sha256_wipe(body, sizeof body);
no_answer: {
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
	                            .code = "not_sent",
	                            .not_left = true};

	prov_answer(o, &a);
}
}

/* POST /v1/callbacks/mpesa/stk/<token> (docs/payments.md §3 step 4). */
static void
mpesa_callback(struct net_prov *np, struct evhttp_request *req,
               const char *rest)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_stk_callback cb;
	struct mpesa_err e;
	const char *why = NULL, *body;
	enum mpesa_rc mr;
	char ack[128];
	size_t n = 0;

	if (strncmp(rest, "stk/", 4) != 0 ||
	    !prov_token_ok(M(np)->cb_token, rest + 4)) {
		/* a wrong token looks like no endpoint at all */
		prov_callback_reject(req, "mpesa", 404, "not_found", "token");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (json_parse(&doc, toks, PROV_TOKS, body ? body : "", len, &why) !=
	    CODEC_OK) {
		prov_callback_reject(req, "mpesa", 400, "callback_invalid_json",
		                     why);
		return;
	}
	if ((mr = mpesa_stk_callback_parse(&cb, &doc, &e)) != MPESA_OK) {
		prov_callback_reject(req, "mpesa", 400,
		                     mr == MPESA_MISSING ? "callback_field_missing"
		                     : mr == MPESA_WRONG_TYPE
		                             ? "callback_field_type"
		                             : "callback_field_invalid",
		                     e.field);
		return;
	}
	mpesa_callback_ack_build(ack, sizeof ack, "Accepted", &n, &why);
	prov_callback(np, &prov_drv_mpesa, req, cb.checkout_request_id, false,
	              mpesa_code_is_zero(&cb.result_code), cb.has_amount,
	              cb.amount_minor, cb.result_code.text, cb.receipt, ack);
}

/* ------------------------------------------------------------- driver */

static int
mpesa_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct mpesa *m;

	if (cfg->mpesa_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->mpesa_base_url, "https://", 8) != 0) {
		snprintf(err, errlen, "mpesa_base_url: must be https:// (got %s)",
		         cfg->mpesa_base_url);
		return -1;
	}
	m = xcalloc(1, sizeof *m);
	*state = m;
	m->tok.fetch = token_fetch;
	m->tok.go = resume;
	if ((m->key = prov_secret(cfg->mpesa_consumer_key_file,
	                          "SOKO_MPESA_CONSUMER_KEY",
	                          "mpesa_consumer_key", err, errlen)) == NULL ||
	    (m->secret = prov_secret(cfg->mpesa_consumer_secret_file,
	                             "SOKO_MPESA_CONSUMER_SECRET",
	                             "mpesa_consumer_secret", err, errlen)) ==
	            NULL ||
	    (m->passkey = prov_secret(cfg->mpesa_passkey_file,
	                              "SOKO_MPESA_PASSKEY", "mpesa_passkey",
	                              err, errlen)) == NULL ||
	    (m->cb_token = prov_secret(cfg->mpesa_callback_token_file,
	                               "SOKO_MPESA_CALLBACK_TOKEN",
	                               "mpesa_callback_token", err, errlen)) ==
	            NULL)
		return -1;
	if (!prov_token_ok(m->cb_token, m->cb_token)) {
		snprintf(err, errlen,
		         "mpesa_callback_token: at least %d characters of "
		         "[A-Za-z0-9_-]",
		         CB_TOKEN_MIN);
		return -1;
	}
	return 1;
}

static void
mpesa_fini(void *state)
{
	struct mpesa *m = state;

	if (m == NULL)
		return;
	prov_wipe_free(m->key);
	prov_wipe_free(m->secret);
	prov_wipe_free(m->passkey);
	prov_wipe_free(m->cb_token);
	sha256_wipe(m->tok.token, sizeof m->tok.token);
	free(m);
}

/* Daraja takes whole shillings (wire-formats §1.2) from Kenyan MSISDNs. */
static const char *
mpesa_check(const struct config *cfg, const struct svc_collection *c,
            const char **msg)
{
	(void)cfg;
	if (strcmp(c->cur->alpha, "KES") != 0 || c->amount_minor % 100 != 0) {
		*msg = "M-Pesa collects whole KES only";
		return "amount_invalid_for_provider";
	}
	return NULL;
}

/* AccountReference: the caller's reference, else 10 characters of an
 * unambiguous [A-Z2-9] alphabet from the CSPRNG. */
static int
mpesa_client_ref(struct pop *o)
{
	if (o->c.reference[0] != '\0') {
		strlcpy_s(o->p.client_ref, o->c.reference,
		          sizeof o->p.client_ref);
		return 0;
	}
	return prov_random_ref(o->p.client_ref, 10);
}

static const char *
mpesa_clearing(const struct config *cfg)
{
	return cfg->mpesa_clearing_account;
}

/* an STK push is queried by its CheckoutRequestID, nothing else */
static bool
mpesa_can_query(const struct store_prov *p)
{
	return p->provider_ref[0] != '\0';
}

const struct prov_drv prov_drv_mpesa = {
	.name = "mpesa",
	.init = mpesa_init,
	.fini = mpesa_fini,
	.check = mpesa_check,
	.client_ref = mpesa_client_ref,
	.clearing_account = mpesa_clearing,
	.can_query = mpesa_can_query,
	.send = mpesa_send,
	.query = mpesa_query,
	.callback = mpesa_callback,
};
