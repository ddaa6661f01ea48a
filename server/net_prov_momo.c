/*
 * net_prov_momo.c - the MTN MoMo collection driver (net_prov_int.h):
 * token, requesttopay with our UUID as X-Reference-Id, status by that
 * id, the callback (docs/payments.md, wire-formats §2).
 *
 * MoMo is the provider where a lost answer costs nothing: the payment is
 * queried by the X-Reference-Id we chose, so "answer lost" is resolved by
 * a status GET; a 404 there means the request never arrived, and it is
 * sent again with the SAME X-Reference-Id (a duplicate is refused by MoMo
 * with 409, which we read as "it is there").
 *
 * Disbursements (docs/payments.md §Disbursements) are the same dialogue
 * on the disbursement product: POST /disbursement/v1_0/transfer with our
 * UUID as X-Reference-Id (reused on every re-send; 409 = it arrived),
 * GET /disbursement/v1_0/transfer/<id>, its own token and subscription
 * key (momo_disbursement_key_file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "json.h"
#include "log.h"
#include "net_http.h"
#include "net_prov_int.h"
#include "prov.h"
#include "prov_momo.h"
#include "prov_sig.h"
#include "sha256.h"
#include "util.h"

struct momo {
	char *api_key, *sub_key, *cb_token;
	char *disb_key; /* NULL: no disbursements */
	struct prov_token tok;  /* collection */
	struct prov_token dtok; /* disbursement */
};

static struct momo *
M(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_momo);
}

static void
momo_url(const struct net_prov *np, char *dst, size_t cap, const char *path,
         const char *id)
{
	snprintf(dst, cap, "%s%s%s", prov_cfg(np)->momo_base_url, path,
	         id != NULL ? id : "");
}

static void
token_done(struct net_prov *np, struct prov_token *tk,
           const struct ncurl_result *r)
{
	struct json_tok toks[16];
	struct json_doc doc;
	struct momo_token *t = xcalloc(1, sizeof *t); /* 4 KiB: not on stack */
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome == NCURL_ANSWERED && r->http_status == 200 &&
	    json_parse(&doc, toks, 16, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    momo_token_parse(t, &doc, &e) == PROV_OK) {
		prov_token_done(np, tk, t->access_token, t->expires_in_s);
	} else {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=momo outcome=%s status=%ld "
		        "why=\"%s\"",
		        ncurl_outcome_name(r->outcome), r->http_status,
		        r->errstr);
		prov_token_done(np, tk, NULL, 0);
	}
	sha256_wipe(t, sizeof *t);
	free(t);
}

static void
coll_token_done(void *arg, const struct ncurl_result *r)
{
	struct net_prov *np = arg;

	token_done(np, &M(np)->tok, r);
}

static void
disb_token_done(void *arg, const struct ncurl_result *r)
{
	struct net_prov *np = arg;

	token_done(np, &M(np)->dtok, r);
}

/* POST /collection/token/ (or /disbursement/token/) with Basic
 * base64(apiUser:apiKey) and the product's subscription key; no body
 * (wire-formats §2.3). */
static int
token_fetch(struct net_prov *np, struct prov_token *t)
{
	struct momo *m = M(np);
	bool disb = t == &m->dtok;
	char b64[600], auth[640], sub[300], url[600];
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;
	int rc = -1;

	(void)t;
	if (prov_basic_auth(b64, sizeof b64, prov_cfg(np)->momo_api_user,
	                    m->api_key, &n, &why) == CODEC_OK) {
		snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
		snprintf(sub, sizeof sub, "Ocp-Apim-Subscription-Key: %s",
		         disb ? m->disb_key : m->sub_key);
		momo_url(np, url, sizeof url,
		         disb ? "/disbursement/token/" : "/collection/token/",
		         NULL);
		memset(&rq, 0, sizeof rq);
		rq.method = NCURL_POST;
		rq.url = url;
		rq.headers[0] = auth;
		rq.headers[1] = sub;
		rq.n_headers = 2;
		rq.endpoint = disb ? "momo.disbursement_token" : "momo.token";
		rc = ncurl_submit(prov_curl(np), &rq,
		                  disb ? disb_token_done : coll_token_done, np,
		                  &why);
	}
	if (rc != 0)
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=momo why=\"%s\"",
		        why != NULL ? why : "");
	sha256_wipe(b64, sizeof b64);
	sha256_wipe(auth, sizeof auth);
	sha256_wipe(sub, sizeof sub);
	return rc;
}

static void momo_send(struct pop *o);
static void momo_query(struct pop *o);

static void
resume(struct pop *o)
{
	if (o->kind == POP_SEND)
		momo_send(o);
	else
		momo_query(o);
}

/* The product (collection or disbursement) a payment goes through. */
static bool
is_disb(const struct pop *o)
{
	return o->p.kind == STORE_PROV_DISBURSE;
}

static struct prov_token *
tok_of(const struct pop *o)
{
	return is_disb(o) ? &M(o->np)->dtok : &M(o->np)->tok;
}

/* The headers of every call after the token. */
static void
headers(const struct pop *o, char auth[], size_t acap, char sub[],
        size_t scap, char env[], size_t ecap)
{
	const struct net_prov *np = o->np;

	snprintf(auth, acap, "Authorization: Bearer %s", tok_of(o)->token);
	snprintf(sub, scap, "Ocp-Apim-Subscription-Key: %s",
	         is_disb(o) ? M(np)->disb_key : M(np)->sub_key);
	snprintf(env, ecap, "X-Target-Environment: %s",
	         prov_cfg(np)->momo_target_env);
}

static void
error_code(struct pop *o, const struct ncurl_result *r)
{
	struct json_tok toks[32];
	struct json_doc doc;
	struct momo_error er;
	struct prov_err e;
	const char *why = NULL;

	if (r->body_len > 0 &&
	    json_parse(&doc, toks, 32, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    momo_error_parse(&er, &doc, &e) == PROV_OK && er.code[0] != '\0') {
		strlcpy_s(o->code, er.code, sizeof o->code);
		strlcpy_s(o->desc, er.message, sizeof o->desc);
	} else {
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		o->desc[0] = '\0';
	}
}

/* Reduces a requesttopay answer to a verdict (docs/payments.md §1). */
static void
rtp_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST};

	if (r->outcome == NCURL_NOT_SENT) {
		a.v = SVC_PROV_NOT_SENT;
		a.code = "not_sent";
	} else if (r->outcome == NCURL_UNKNOWN) {
		a.code = "answer_lost";
	} else {
		error_code(o, r);
		a.code = o->code;
		a.desc = o->desc[0] != '\0' ? o->desc : NULL;
		if (r->http_status == 202 || r->http_status == 409) {
			/* 409: a request with this X-Reference-Id exists:
			 * our earlier send arrived */
			a.v = SVC_PROV_ACCEPTED;
			a.provider_ref = o->p.client_ref;
			a.code = r->http_status == 202 ? "202" : o->code;
		} else if (r->http_status == 401) {
			prov_token_drop(tok_of(o), o);
			a.v = SVC_PROV_NOT_SENT;
		} else if (r->http_status == 400 || r->http_status == 403) {
			a.v = SVC_PROV_REFUSED;
		}
		/* 5xx (INTERNAL_PROCESSING_ERROR, ...), anything else: it may
		 * be there; the status GET by our id tells */
	}
	prov_answer(o, &a);
}

static void
momo_send(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], url[600], auth[PROV_TOKEN_MAX + 32];
	char sub[300], env[96], ref[96], cb[600], cbh[640];
	struct momo_pay_req pr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (!prov_token_get(np, tok_of(o), o))
		return;
	memset(&pr, 0, sizeof pr);
	pr.amount_minor = o->p.pay.amount_minor;
	pr.currency = prov_cfg(np)->momo_currency;
	pr.external_id = o->p.client_ref;
	pr.party_type = MOMO_MSISDN;
	pr.party_id = o->p.msisdn;
	pr.payer_message = is_disb(o) ? o->p.pay.ref : "Payment";
	pr.payee_note = is_disb(o) ? "Payout" : o->p.pay.ref;
	if ((is_disb(o) ? momo_transfer_build(body, sizeof body, &pr, &n, &why)
	                : momo_requesttopay_build(body, sizeof body, &pr, &n,
	                                          &why)) != CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		prov_answer(o, &a);
		return;
	}
	headers(o, auth, sizeof auth, sub, sizeof sub, env, sizeof env);
	snprintf(ref, sizeof ref, "X-Reference-Id: %s", o->p.client_ref);
	prov_callback_url(np, "momo", M(np)->cb_token, cb, sizeof cb);
	snprintf(cbh, sizeof cbh, "X-Callback-Url: %s", cb);
	momo_url(np, url, sizeof url,
	         is_disb(o) ? "/disbursement/v1_0/transfer"
	                    : "/collection/v1_0/requesttopay",
	         NULL);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_POST;
	rq.url = url;
	rq.headers[0] = auth;
	rq.headers[1] = sub;
	rq.headers[2] = env;
	rq.headers[3] = ref;
	rq.headers[4] = cbh;
	rq.headers[5] = "Content-Type: application/json";
	rq.n_headers = 6;
	rq.body = body;
	rq.body_len = n;
	rq.endpoint = is_disb(o) ? "momo.transfer" : "momo.requesttopay";
	if (ncurl_submit(prov_curl(np), &rq, rtp_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=call_refused ref=%s endpoint=momo.requesttopay "
		        "why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
	}
}

/* A status (or callback) body reduced to an answer. */
static void
txn_answer(struct pop *o, const struct momo_txn *t, struct svc_prov_answer *a)
{
	strlcpy_s(o->receipt, t->financial_transaction_id, sizeof o->receipt);
	strlcpy_s(o->code, t->status == MOMO_SUCCESSFUL ? "SUCCESSFUL"
	                   : t->status == MOMO_PENDING  ? "PENDING"
	                   : t->reason[0] != '\0'       ? t->reason
	                                                : "FAILED",
	          sizeof o->code);
	a->code = o->code;
	a->has_amount = true;
	a->amount_minor = t->amount_minor;
	switch (t->status) {
	case MOMO_SUCCESSFUL:
		a->v = SVC_PROV_SUCCEEDED;
		a->receipt = o->receipt;
		break;
	case MOMO_FAILED:
		a->v = SVC_PROV_FAILED;
		a->has_amount = false;
		break;
	default:
		a->v = SVC_PROV_PENDING;
		a->has_amount = false;
		break;
	}
}

static void
status_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct momo_txn *t = xcalloc(1, sizeof *t);
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200) {
		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    momo_txn_parse(t, is_disb(o) ? MOMO_DISBURSEMENT
		                                 : MOMO_COLLECTION,
		                   &doc, &e) == PROV_OK &&
		    strcmp(t->external_id, o->p.client_ref) == 0)
			txn_answer(o, t, &a);
		else
			a.code = "unreadable_answer";
	} else if (r->http_status == 404) {
		/* MoMo has no request with our id: the send never arrived.
		 * Only a call that may have been lost can be sent again; an
		 * accepted one vanishing is asked about again later. */
		error_code(o, r);
		a.code = o->code;
		if (o->p.call_state == STORE_CALL_LOST)
			a.v = SVC_PROV_NOT_SENT;
	} else {
		error_code(o, r);
		a.code = o->code;
		if (r->http_status == 401)
			prov_token_drop(tok_of(o), o);
	}
	free(t);
	prov_answer(o, &a);
}

static void
momo_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char url[600], auth[PROV_TOKEN_MAX + 32], sub[300], env[96];
	struct ncurl_req rq;
	const char *why = NULL;

	o->kind = POP_QUERY;
	if (!prov_token_get(np, tok_of(o), o))
		return;
	headers(o, auth, sizeof auth, sub, sizeof sub, env, sizeof env);
	momo_url(np, url, sizeof url,
	         is_disb(o) ? "/disbursement/v1_0/transfer/"
	                    : "/collection/v1_0/requesttopay/",
	         o->p.client_ref);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = auth;
	rq.headers[1] = sub;
	rq.headers[2] = env;
	rq.n_headers = 3;
	rq.endpoint = is_disb(o) ? "momo.transfer_status" : "momo.status";
	if (ncurl_submit(prov_curl(np), &rq, status_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
}

/* PUT or POST /v1/callbacks/momo/<token>: the status shape, unsigned
 * (wire-formats §2.6), so it only triggers a status GET. */
static void
momo_callback(struct net_prov *np, struct evhttp_request *req,
              const char *rest)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct momo_txn *t;
	struct prov_err e;
	const char *why = NULL, *body;
	enum prov_rc pr;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

	if (!prov_token_ok(M(np)->cb_token, rest)) {
		prov_callback_reject(req, "momo", 404, "not_found", "token");
		return;
	}
	if (cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_PUT) {
		net_http_error(req, 405, "method_not_allowed",
		               "use PUT or POST");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (json_parse(&doc, toks, PROV_TOKS, body ? body : "", len, &why) !=
	    CODEC_OK) {
		prov_callback_reject(req, "momo", 400, "callback_invalid_json",
		                     why);
		return;
	}
	t = xcalloc(1, sizeof *t);
	/* a transfer's callback names a payee instead of a payer */
	if ((pr = momo_txn_parse(t, MOMO_COLLECTION, &doc, &e)) != PROV_OK &&
	    momo_txn_parse(t, MOMO_DISBURSEMENT, &doc, &e) == PROV_OK)
		pr = PROV_OK;
	if (pr != PROV_OK) {
		prov_callback_reject(req, "momo", 400,
		                     pr == PROV_MISSING ? "callback_field_missing"
		                     : pr == PROV_WRONG_TYPE
		                             ? "callback_field_type"
		                             : "callback_field_invalid",
		                     e.field);
		free(t);
		return;
	}
	prov_callback(np, &prov_drv_momo, req, t->external_id, true,
	              t->status == MOMO_SUCCESSFUL,
	              t->status == MOMO_SUCCESSFUL, t->amount_minor,
	              t->status == MOMO_FAILED ? t->reason : "",
	              t->financial_transaction_id, "{}");
	free(t);
}

/* ------------------------------------------------------------- driver */

static int
momo_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct momo *m;

	if (cfg->momo_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->momo_base_url, "https://", 8) != 0) {
		snprintf(err, errlen, "momo_base_url: must be https:// (got %s)",
		         cfg->momo_base_url);
		return -1;
	}
	if (cfg->momo_api_user[0] == '\0') {
		snprintf(err, errlen, "momo_api_user: required with "
		                      "momo_base_url");
		return -1;
	}
	if (prov_currency_exponent(cfg->momo_currency) < 0) {
		snprintf(err, errlen, "momo_currency: unknown currency %s",
		         cfg->momo_currency);
		return -1;
	}
	m = xcalloc(1, sizeof *m);
	*state = m;
	m->tok.fetch = token_fetch;
	m->tok.go = resume;
	m->dtok.fetch = token_fetch;
	m->dtok.go = resume;
	if ((m->api_key = prov_secret(cfg->momo_api_key_file,
	                              "SOKO_MOMO_API_KEY", "momo_api_key", err,
	                              errlen)) == NULL ||
	    (m->sub_key = prov_secret(cfg->momo_subscription_key_file,
	                              "SOKO_MOMO_SUBSCRIPTION_KEY",
	                              "momo_subscription_key", err, errlen)) ==
	            NULL ||
	    (m->cb_token = prov_secret(cfg->momo_callback_token_file,
	                               "SOKO_MOMO_CALLBACK_TOKEN",
	                               "momo_callback_token", err, errlen)) ==
	            NULL)
		return -1;
	if (!prov_token_ok(m->cb_token, m->cb_token)) {
		snprintf(err, errlen,
		         "momo_callback_token: at least %d characters of "
		         "[A-Za-z0-9_-]",
		         CB_TOKEN_MIN);
		return -1;
	}
	{
		int bad = 0;

		/* optional: without it, no disbursements through MoMo */
		m->disb_key = config_secret(cfg->momo_disbursement_key_file,
		                            "SOKO_MOMO_DISBURSEMENT_KEY", &bad,
		                            err, errlen);
		if (m->disb_key == NULL && bad)
			return -1;
	}
	return 1;
}

static void
momo_fini(void *state)
{
	struct momo *m = state;

	if (m == NULL)
		return;
	prov_wipe_free(m->api_key);
	prov_wipe_free(m->sub_key);
	prov_wipe_free(m->cb_token);
	prov_wipe_free(m->disb_key);
	sha256_wipe(m->tok.token, sizeof m->tok.token);
	sha256_wipe(m->dtok.token, sizeof m->dtok.token);
	free(m);
}

/* MoMo takes the currency of the environment (EUR in the sandbox) and an
 * MSISDN party. */
static const char *
momo_check(const struct config *cfg, const struct svc_collection *c,
           const char **msg)
{
	if (strcmp(c->cur->alpha, cfg->momo_currency) != 0) {
		*msg = "MoMo collects in the currency of its environment "
		       "(momo_currency)";
		return "amount_invalid_for_provider";
	}
	return NULL;
}

/* X-Reference-Id and externalId: a UUID v4 from the CSPRNG.  It is the
 * payment's key at MoMo, reused on every re-send. */
static int
momo_client_ref(struct pop *o)
{
	char id[PROV_UUID_LEN + 1];

	if (prov_uuid4(id) != 0)
		return -1;
	strlcpy_s(o->p.client_ref, id, sizeof o->p.client_ref);
	return 0;
}

static const char *
momo_clearing(const struct config *cfg)
{
	return cfg->momo_clearing_account;
}

static bool
momo_can_disburse(const struct net_prov *np)
{
	return M(np) != NULL && M(np)->disb_key != NULL;
}

static const char *
momo_hold(const struct config *cfg)
{
	return cfg->momo_hold_account;
}

static bool
momo_can_query(const struct store_prov *p)
{
	(void)p;
	return true; /* by our X-Reference-Id, always */
}

const struct prov_drv prov_drv_momo = {
	.name = "momo",
	.init = momo_init,
	.fini = momo_fini,
	.check = momo_check,
	.client_ref = momo_client_ref,
	.clearing_account = momo_clearing,
	.can_disburse = momo_can_disburse,
	.hold_account = momo_hold,
	.can_query = momo_can_query,
	.send = momo_send,
	.query = momo_query,
	.callback = momo_callback,
};
