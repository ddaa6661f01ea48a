/*
 * net_prov_mpesa.c - the M-Pesa Daraja driver (net_prov_int.h): OAuth
 * token, STK push, STK query, the STK callback under an unguessable
 * per-shortcode token (docs/payments.md §3, wire-formats §1).
 *
 * B2C disbursements (docs/payments.md §Disbursements, wire-formats
 * §1.5-1.7): the payment request carries our OriginatorConversationID
 * (the payment's client_ref), so a B2C whose answer was lost is asked
 * about with Transaction Status by that id, never sent again.  Both are
 * asynchronous: their results are POSTed to our ResultURL.  A B2C
 * result is a callback like any other (it only makes the status query
 * happen now); the Transaction Status result is the status answer, and
 * is accepted only at the ResultURL of the query we made, which carries
 * the payment's client_ref and a MAC of it under a key never sent
 * anywhere, and only when the OriginatorConversationID it reports is
 * ours.
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
#include "prov_sig.h"
#include "sha256.h"
#include "util.h"

#define EAT_OFFSET_S (3 * 3600) /* Daraja timestamps: Kenyan time */

#define STATUS_MAC_LEN 32 /* hex digits of the status ResultURL's MAC */

struct mpesa {
	char *key, *secret, *passkey, *cb_token;
	/* C2B URL registration (mpesa_c2b): done once per process */
	bool c2b_registered, c2b_registering;
	int64_t c2b_next_ms;
	struct prov_token tok;
	/* B2C: NULL credential when not configured */
	char *credential;   /* SecurityCredential (base64 RSA) */
	uint8_t status_key[SHA256_LEN]; /* MACs status ResultURLs */
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
		rc = prov_call(np, url, auth, NULL, NULL, 0, "mpesa.oauth",
		               token_done, np, &why);
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

/* POSTs the JSON body[0..n) to Daraja's path with the bearer token;
 * prov_call's contract. */
static int
mpesa_post(struct net_prov *np, const char *path, const char *endpoint,
           const char *body, size_t n, ncurl_done_fn done, void *arg,
           const char **why)
{
	char url[600], auth[PROV_TOKEN_MAX + 32];
	int rc;

	mpesa_url(np, url, sizeof url, path);
	bearer(np, auth, sizeof auth);
	rc = prov_call(np, url, auth, NULL, body, n, endpoint, done, arg, why);
	sha256_wipe(auth, sizeof auth);
	return rc;
}

static void mpesa_send(struct pop *o);
static void mpesa_query(struct pop *o);

static void b2c_send(struct pop *o);
static void b2c_query(struct pop *o);
static void rev_send(struct pop *o);
static void rev_status_url(struct pop *o, char *dst, size_t cap);
static void rev_callback(struct net_prov *np, struct evhttp_request *req,
                         const char *rest);

static void c2b_accept(struct pop *o);
static void c2b_callback(struct net_prov *np, struct evhttp_request *req,
                         const char *rest);

/* C2B: a payment the customer made to the paybill; client_ref is
 * C2B_PREFIX + TransID (docs/payments.md §C2B). */
#define C2B_PREFIX "C2B-"

static bool
is_c2b(const struct store_prov *p)
{
	return strncmp(p->client_ref, C2B_PREFIX, sizeof C2B_PREFIX - 1) == 0;
}

static void
resume(struct pop *o)
{
	/* B2C and C2B are confirmed by Transaction Status (asynchronous,
	 * b2c_query); an STK push by STK query */
	bool txstatus = o->p.kind == STORE_PROV_DISBURSE || is_c2b(&o->p);

	if (o->kind == POP_SEND)
		(o->p.reverses_id != 0              ? rev_send
		 : o->p.kind == STORE_PROV_DISBURSE ? b2c_send
		 : is_c2b(&o->p)                    ? c2b_accept
		                                    : mpesa_send)(o);
	else
		(txstatus ? b2c_query : mpesa_query)(o);
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

/*
 * What every initiating call (STK push, B2C) shares: the transport
 * outcome, the error envelope, and the verdict of a non-200 answer
 * (docs/payments.md §1 rule 2).  Fills *a (code and desc point into o)
 * and returns true when the caller must read a 200 answer in *doc
 * (*parsed: it is JSON).  *er / *has_er: the error envelope, if any.
 */
static bool
initiate_verdict(struct pop *o, const struct ncurl_result *r,
                 struct json_doc *doc, struct json_tok *toks, bool *parsed,
                 struct mpesa_error_resp *er, bool *has_er,
                 struct svc_prov_answer *a)
{
	struct mpesa_err e;
	const char *why = NULL;

	memset(a, 0, sizeof *a);
	a->v = SVC_PROV_LOST;
	*parsed = r->outcome == NCURL_ANSWERED &&
	          json_parse(doc, toks, PROV_TOKS, r->body, r->body_len,
	                     &why) == CODEC_OK;
	*has_er = *parsed && r->http_status != 200 &&
	          mpesa_error_resp_parse(er, doc, &e) == MPESA_OK;
	if (*has_er) {
		strlcpy_s(o->code, er->error_code, sizeof o->code);
		strlcpy_s(o->desc, er->error_message, sizeof o->desc);
	} else if (r->outcome == NCURL_ANSWERED) {
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
	}
	a->code = o->code;
	a->desc = *has_er ? o->desc : NULL;
	if (r->outcome == NCURL_NOT_SENT) {
		a->v = SVC_PROV_NOT_SENT;
		a->code = "not_sent";
	} else if (r->outcome == NCURL_UNKNOWN) {
		a->code = "answer_lost"; /* LOST */
	} else if (r->http_status == 200) {
		return true;
	} else if (mpesa_token_refused(r->http_status, *has_er ? er : NULL)) {
		prov_token_drop(&M(o->np)->tok, o);
		a->v = SVC_PROV_NOT_SENT;
	} else if (mpesa_throttled(r->http_status, *has_er ? er : NULL)) {
		a->v = SVC_PROV_NOT_SENT;
	} else if (*has_er && strcmp(er->error_code, "500.002.1001") == 0) {
		/* Duplicate OriginatorConversationID (B2C): an earlier send
		 * of this very payment arrived; ask what became of it */
		a->v = SVC_PROV_LOST;
	} else if (r->http_status >= 400 && r->http_status < 500 &&
	           r->http_status != 408) {
		a->v = SVC_PROV_REFUSED; /* bad phone, party, amount ... */
	}
	/* 5xx, 408, anything else: it may have been committed: LOST */
	return false;
}

/* Reduces an STK push answer to a verdict (docs/payments.md §1 rule 2). */
static void
stk_push_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a;
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	struct mpesa_error_resp er;
	struct mpesa_stk_push_resp sp;
	bool parsed, has_er;

	if (initiate_verdict(o, r, &doc, toks, &parsed, &er, &has_er, &a)) {
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
			a.code = "unreadable_answer";
		}
	}
	prov_answer(o, &a);
}

static void
mpesa_send(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], ts[16], cb[600];
	struct mpesa_stk_push_req sr;
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
	sha256_wipe(ts, sizeof ts);
	if (mpesa_post(np, "/mpesa/stkpush/v1/processrequest",
	               "mpesa.stkpush", body, n, stk_push_done, o, &why) == 0) {
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
				prov_token_drop(&M(o->np)->tok, o);
			/* "The transaction is being processed" */
			else if (strcmp(er.error_code, "500.001.1001") == 0)
				a.v = SVC_PROV_PENDING;
		} else {
			if (r->http_status == 401)
				prov_token_drop(&M(o->np)->tok, o);
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
	char body[PROV_BODY_MAX], ts[16];
	struct mpesa_stk_query_req qr;
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
	if (mpesa_post(np, "/mpesa/stkpushquery/v1/query", "mpesa.stkquery",
	               body, n, stk_query_done, o, &why) == 0) {
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

/* ---------------------------------------------------------------- B2C */

static const char *
b2c_party_a(const struct config *cfg)
{
	return cfg->mpesa_b2c_shortcode[0] != '\0' ? cfg->mpesa_b2c_shortcode
	                                           : cfg->mpesa_shortcode;
}

/* hex MAC of a status ResultURL for client_ref: STATUS_MAC_LEN + NUL */
static void
status_mac(const struct mpesa *m, const char *client_ref, char *dst)
{
	uint8_t mac[SHA256_LEN];
	char msg[STORE_PREF_MAX + 16];
	int n = snprintf(msg, sizeof msg, "status|%s", client_ref);

	sha256_hmac(mac, m->status_key, sizeof m->status_key, msg,
	            n > 0 ? (size_t)n : 0);
	util_hex(dst, mac, STATUS_MAC_LEN / 2);
	dst[STATUS_MAC_LEN] = '\0';
}

/* The sync answer of a B2C payment request (docs/payments.md rule 2). */
static void
b2c_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a;
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	struct mpesa_error_resp er;
	struct mpesa_accepted ac;
	bool parsed, has_er;

	if (initiate_verdict(o, r, &doc, toks, &parsed, &er, &has_er, &a)) {
		/* a reversal request carries no id of ours: Daraja names
		 * it (docs/payments.md §M-Pesa reversal) */
		if (parsed && mpesa_accepted_parse(&ac, &doc, &e) == MPESA_OK &&
		    mpesa_code_is_zero(&ac.response_code) &&
		    (o->p.reverses_id != 0 ||
		     strcmp(ac.originator_conversation_id, o->p.client_ref) ==
		             0)) {
			a.v = SVC_PROV_ACCEPTED;
			strlcpy_s(o->pref, ac.conversation_id, sizeof o->pref);
			a.provider_ref = o->pref;
			a.code = "accepted";
		} else {
			a.code = "unreadable_answer"; /* may be taken: ask */
		}
	}
	prov_answer(o, &a);
}

/* Sends an initiator request (B2C, reversal) built in body[cap] (n
 * bytes, wiped after use); its sync answer goes to b2c_done. */
static void
initiator_post(struct pop *o, const char *path, const char *endpoint,
               char *body, size_t cap, size_t n)
{
	const char *why = NULL;

	if (mpesa_post(o->np, path, endpoint, body, n, b2c_done, o, &why) ==
	    0) {
		sha256_wipe(body, cap);
		return;
	}
	sha256_wipe(body, cap);
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=call_refused ref=%s endpoint=%s why=\"%s\"",
	        o->p.pay.ref, endpoint, why);
	{
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
}

static void
b2c_send(struct pop *o)
{
	struct net_prov *np = o->np;
	struct mpesa *m = M(np);
	char body[PROV_BODY_MAX], res[600], qto[600];
	struct mpesa_b2c_req br;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (m->credential == NULL) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "b2c_disabled",
		                            .not_left = true};

		prov_answer(o, &a);
		return;
	}
	if (!prov_token_get(np, &m->tok, o))
		return;
	prov_callback_url(np, "mpesa/b2c", m->cb_token, res, sizeof res);
	prov_callback_url(np, "mpesa/timeout", m->cb_token, qto, sizeof qto);
	memset(&br, 0, sizeof br);
	br.originator_conversation_id = o->p.client_ref;
	br.initiator_name = prov_cfg(np)->mpesa_initiator_name;
	br.security_credential = m->credential;
	br.command = MPESA_B2C_BUSINESS;
	br.amount_minor = o->p.pay.amount_minor;
	br.party_a = b2c_party_a(prov_cfg(np));
	br.party_b = o->p.msisdn;
	br.remarks = "Payout";
	br.queue_timeout_url = qto;
	br.result_url = res;
	if (mpesa_b2c_build(body, sizeof body, &br, &n, &why) != CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
		return;
	}
	initiator_post(o, "/mpesa/b2c/v3/paymentrequest", "mpesa.b2c", body,
	               sizeof body, n);
}

/* The sync answer of a Transaction Status query: at best "accepted";
 * the status itself comes to the query's ResultURL (b2c_callback). */
static void
b2c_query_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	struct mpesa_accepted ac;
	struct mpesa_error_resp er;
	const char *why = NULL;
	bool parsed = r->outcome == NCURL_ANSWERED &&
	              json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
	                         &why) == CODEC_OK;

	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200 && parsed &&
	           mpesa_accepted_parse(&ac, &doc, &e) == MPESA_OK &&
	           mpesa_code_is_zero(&ac.response_code)) {
		/* asked: counted as a check, the next one after
		 * prov_check_every_ms unless the result comes first; the
		 * row's result code is left as it is */
		a.v = SVC_PROV_PENDING;
		a.code = NULL;
	} else if (parsed && mpesa_error_resp_parse(&er, &doc, &e) ==
	                             MPESA_OK) {
		strlcpy_s(o->code, er.error_code, sizeof o->code);
		a.code = o->code;
		if (mpesa_token_refused(r->http_status, &er))
			prov_token_drop(&M(o->np)->tok, o);
	} else {
		if (r->http_status == 401)
			prov_token_drop(&M(o->np)->tok, o);
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		a.code = o->code;
	}
	prov_answer(o, &a);
}

static void
b2c_query(struct pop *o)
{
	struct net_prov *np = o->np;
	struct mpesa *m = M(np);
	char body[PROV_BODY_MAX];
	char res[700], qto[600], path[300], mac[STATUS_MAC_LEN + 1];
	struct mpesa_status_req sr;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_QUERY;
	if (m->credential == NULL)
		goto no_answer;
	if (!prov_token_get(np, &m->tok, o))
		return;
	if (o->p.reverses_id != 0) {
		rev_status_url(o, res, sizeof res);
	} else {
		status_mac(m, o->p.client_ref, mac);
		snprintf(path, sizeof path, "%s/%s/%s", m->cb_token,
		         o->p.client_ref, mac);
		prov_callback_url(np, "mpesa/status", path, res, sizeof res);
	}
	prov_callback_url(np, "mpesa/timeout", m->cb_token, qto, sizeof qto);
	memset(&sr, 0, sizeof sr);
	sr.initiator = prov_cfg(np)->mpesa_initiator_name;
	sr.security_credential = m->credential;
	/* Daraja wants a TransactionID; before a receipt is known (and a
	 * receipt from a callback is not trusted) we ask by our
	 * OriginatorConversationID, in both fields */
	sr.transaction_id = o->p.client_ref;
	sr.original_conversation_id = o->p.client_ref;
	if (is_c2b(&o->p)) {
		/* a C2B payment is known by its receipt (TransID) */
		sr.transaction_id = o->p.client_ref + sizeof C2B_PREFIX - 1;
		sr.original_conversation_id = NULL;
	} else if (o->p.reverses_id != 0) {
		/* a reversal shows on the payment it reverses: asked by
		 * that receipt (docs/payments.md §M-Pesa reversal) */
		sr.transaction_id = o->p.reverses_receipt;
		sr.original_conversation_id = NULL;
	}
	/* the shortcode the transaction belongs to: a reversed payment
	 * was received by the collections shortcode */
	sr.party_a = o->p.reverses_id != 0 ? prov_cfg(np)->mpesa_shortcode
	                                   : b2c_party_a(prov_cfg(np));
	sr.identifier_type = "4";
	sr.result_url = res;
	sr.queue_timeout_url = qto;
	sr.remarks = "Status";
	if (mpesa_status_build(body, sizeof body, &sr, &n, &why) != CODEC_OK) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		goto no_answer;
	}
	if (mpesa_post(np, "/mpesa/transactionstatus/v1/query",
	               "mpesa.txstatus", body, n, b2c_query_done, o,
	               &why) == 0) {
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

static void
b2c_reject_parse(struct evhttp_request *req, enum mpesa_rc mr,
                 const char *field)
{
	prov_callback_reject(req, "mpesa", 400,
	                     mr == MPESA_MISSING      ? "callback_field_missing"
	                     : mr == MPESA_WRONG_TYPE ? "callback_field_type"
	                                              : "callback_field_invalid",
	                     field);
}

/* A Transaction Status result at .../status/<token>/<client_ref>/<mac>:
 * the status answer of the payment client_ref. */
static void
b2c_status_result(struct net_prov *np, struct evhttp_request *req,
                  const struct json_doc *doc, const char *client_ref,
                  const char *ack)
{
	struct mpesa_status_result sr;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct mpesa_err e;
	enum mpesa_rc mr;
	size_t v;

	if ((mr = mpesa_status_result_parse(&sr, doc, &e)) != MPESA_OK) {
		b2c_reject_parse(req, mr, e.field);
		return;
	}
	a.code = sr.r.result_code.text;
	if (mpesa_code_is_zero(&sr.r.result_code)) {
		/* the transaction it describes must be ours: a status of
		 * another transaction (a receipt slipped in) proves nothing */
		bool c2b = strncmp(client_ref, C2B_PREFIX,
		                   sizeof C2B_PREFIX - 1) == 0;

		v = c2b ? mpesa_result_param(&sr.r, "ReceiptNo")
		        : mpesa_result_param(&sr.r, "OriginatorConversationID");
		if (v == 0 ||
		    !json_str_eq(doc, v,
		                 c2b ? client_ref + sizeof C2B_PREFIX - 1
		                     : client_ref)) {
			prov_callback_reject(req, "mpesa", 422,
			                     "status_not_this_payment",
			                     "OriginatorConversationID");
			return;
		}
		a.code = sr.status;
		a.has_amount = sr.has_amount;
		a.amount_minor = sr.amount_minor;
		if (strcmp(sr.status, "Completed") == 0) {
			a.v = SVC_PROV_SUCCEEDED;
			a.receipt = sr.receipt;
		} else if (strcmp(sr.status, "Failed") == 0) {
			a.v = SVC_PROV_FAILED;
			a.has_amount = false;
		} else if (strcmp(sr.status, "Pending") == 0) {
			a.v = SVC_PROV_PENDING;
			a.has_amount = false;
		} else {
			a.has_amount = false; /* Reversed, ...: a human */
		}
	}
	/* any other ResultCode (R000001 not found yet, 2001 credential,
	 * ...): no answer; asked again within the bounds, never re-sent */
	prov_status_result(np, &prov_drv_mpesa, req, client_ref, &a, ack);
}

/* POST /v1/callbacks/mpesa/{b2c,timeout}/<token> and
 * /v1/callbacks/mpesa/status/<token>/<client_ref>/<mac>. */
static void
b2c_callback(struct net_prov *np, struct evhttp_request *req,
             const char *rest)
{
	struct mpesa *m = M(np);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	enum mpesa_rc mr;
	const char *why = NULL, *body, *tok = strchr(rest, '/') + 1;
	char tokbuf[256], cref[STORE_PREF_MAX + 1], want[STATUS_MAC_LEN + 1];
	char ack[128];
	bool is_status = rest[0] == 's', is_timeout = rest[0] == 't';
	size_t n = 0;

	cref[0] = '\0';
	if (is_status) {
		/* <token>/<client_ref>/<mac> */
		const char *s1 = strchr(tok, '/'), *s2;

		if (s1 == NULL || (size_t)(s1 - tok) >= sizeof tokbuf ||
		    (s2 = strchr(s1 + 1, '/')) == NULL ||
		    (size_t)(s2 - s1 - 1) >= sizeof cref || s2 == s1 + 1) {
			prov_callback_reject(req, "mpesa", 404, "not_found",
			                     "path");
			return;
		}
		memcpy(tokbuf, tok, (size_t)(s1 - tok));
		tokbuf[s1 - tok] = '\0';
		memcpy(cref, s1 + 1, (size_t)(s2 - s1 - 1));
		cref[s2 - s1 - 1] = '\0';
		tok = tokbuf;
		if (m->credential == NULL || !prov_token_ok(m->cb_token, tok)) {
			prov_callback_reject(req, "mpesa", 404, "not_found",
			                     "token");
			return;
		}
		status_mac(m, cref, want);
		if (strlen(s2 + 1) != STATUS_MAC_LEN ||
		    util_ct_memcmp(want, s2 + 1, STATUS_MAC_LEN) != 0) {
			prov_callback_reject(req, "mpesa", 404, "not_found",
			                     "status mac");
			return;
		}
	} else if (m->credential == NULL || !prov_token_ok(m->cb_token, tok)) {
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
	mpesa_callback_ack_build(ack, sizeof ack, "Accepted", &n, &why);
	if (is_status) {
		b2c_status_result(np, req, &doc, cref, ack);
	} else if (is_timeout) {
		struct mpesa_result r;

		if ((mr = mpesa_result_parse(&r, &doc, &e)) != MPESA_OK) {
			b2c_reject_parse(req, mr, e.field);
			return;
		}
		/* the request timed out in Daraja's queue: not a result;
		 * it makes a status query happen now */
		prov_callback(np, &prov_drv_mpesa, req,
		              r.originator_conversation_id, true, false, false,
		              0, "queue_timeout", NULL, ack);
	} else {
		struct mpesa_b2c_result br;

		if ((mr = mpesa_b2c_result_parse(&br, &doc, &e)) != MPESA_OK) {
			b2c_reject_parse(req, mr, e.field);
			return;
		}
		/* a callback, never trusted alone (rule 3): the status query
		 * it triggers decides */
		prov_callback(np, &prov_drv_mpesa, req,
		              br.r.originator_conversation_id, true,
		              mpesa_code_is_zero(&br.r.result_code),
		              br.has_amount, br.amount_minor,
		              br.r.result_code.text,
		              br.receipt[0] != '\0' ? br.receipt : NULL, ack);
	}
}

/* ----------------------------------------------------------- reversal */

/*
 * A reversal (docs/payments.md §M-Pesa reversal) is a disbursement row
 * (its amount held from the merchant) that names the collection it
 * reverses.  Daraja's request carries no id of ours, so every URL given
 * to Daraja names our reference and is MAC'd (status_key):
 *   .../mpesa/reversal/<token>/<ref>/<result|timeout>/<mac>
 *   .../mpesa/revstatus/<token>/<ref>/<receipt>/<f|p>/<mac>
 * A result is a callback (it only makes the status query happen now);
 * the status is Transaction Status on the reversed receipt: "Reversed"
 * is success.  "Completed" (the payment stands) is a failure only when
 * an authenticated failure Result was recorded before that query was
 * made ("f" in its URL, REV_FAIL on the row); else it is still pending.
 */
#define REV_FAIL "fail:" /* result_code prefix of a failure Result */
#define REV_PARTS 4      /* at most <ref>/<a>/<b>/<mac> after the token */

/* hex MAC of a reversal URL: "<what>|<ref>|<a>|<b>" */
static void
rev_mac(const struct mpesa *m, const char *what, const char *ref,
        const char *a, const char *b, char *dst)
{
	uint8_t mac[SHA256_LEN];
	char msg[3 * STORE_PREF_MAX + 32];
	int n = snprintf(msg, sizeof msg, "%s|%s|%s|%s", what, ref, a, b);

	sha256_hmac(mac, m->status_key, sizeof m->status_key, msg,
	            n > 0 && (size_t)n < sizeof msg ? (size_t)n : 0);
	util_hex(dst, mac, STATUS_MAC_LEN / 2);
	dst[STATUS_MAC_LEN] = '\0';
}

static void
rev_url(const struct pop *o, const char *what, const char *a,
        const char *b, char *dst, size_t cap)
{
	const struct mpesa *m = M(o->np);
	char mac[STATUS_MAC_LEN + 1], path[3 * STORE_PREF_MAX + 200];

	rev_mac(m, what, o->p.client_ref, a, b, mac);
	if (b[0] != '\0')
		snprintf(path, sizeof path, "%s/%s/%s/%s/%s", m->cb_token,
		         o->p.client_ref, a, b, mac);
	else
		snprintf(path, sizeof path, "%s/%s/%s/%s", m->cb_token,
		         o->p.client_ref, a, mac);
	prov_callback_url(o->np, strcmp(what, "revstatus") == 0
	                                 ? "mpesa/revstatus"
	                                 : "mpesa/reversal",
	                  path, dst, cap);
}

static void
rev_status_url(struct pop *o, char *dst, size_t cap)
{
	bool failed = strncmp(o->p.result_code, REV_FAIL,
	                      sizeof REV_FAIL - 1) == 0;

	rev_url(o, "revstatus", o->p.reverses_receipt, failed ? "f" : "p",
	        dst, cap);
}

static void
rev_send(struct pop *o)
{
	struct net_prov *np = o->np;
	struct mpesa *m = M(np);
	char body[PROV_BODY_MAX], res[700], qto[700];
	struct mpesa_reversal_req rr;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (m->credential == NULL) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "reversal_disabled",
		                            .not_left = true};

		prov_answer(o, &a);
		return;
	}
	if (!prov_token_get(np, &m->tok, o))
		return;
	rev_url(o, "reversal", "result", "", res, sizeof res);
	rev_url(o, "reversal", "timeout", "", qto, sizeof qto);
	memset(&rr, 0, sizeof rr);
	rr.initiator = prov_cfg(np)->mpesa_initiator_name;
	rr.security_credential = m->credential;
	rr.transaction_id = o->p.reverses_receipt;
	rr.amount_minor = o->p.pay.amount_minor;
	/* the collections' shortcode (STK BusinessShortCode, C2B paybill)
	 * received it; "11" is the documented identifier type for it */
	rr.receiver_party = prov_cfg(np)->mpesa_shortcode;
	rr.receiver_identifier_type = "11";
	rr.result_url = res;
	rr.queue_timeout_url = qto;
	rr.remarks = "Reversal";
	if (mpesa_reversal_build(body, sizeof body, &rr, &n, &why) !=
	    CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
		return;
	}
	initiator_post(o, "/mpesa/reversal/v1/request", "mpesa.reversal",
	               body, sizeof body, n);
}

/* A Transaction Status result about the reversed receipt, for the
 * reversal ref (URL fields: the receipt, the failure flag). */
static void
rev_status_result(struct net_prov *np, struct evhttp_request *req,
                  const struct json_doc *doc, const char *ref,
                  const char *receipt, bool failure_seen, const char *ack)
{
	struct mpesa_status_result sr;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct mpesa_err e;
	enum mpesa_rc mr;

	if ((mr = mpesa_status_result_parse(&sr, doc, &e)) != MPESA_OK) {
		b2c_reject_parse(req, mr, e.field);
		return;
	}
	a.code = sr.r.result_code.text;
	if (mpesa_code_is_zero(&sr.r.result_code)) {
		if (strcmp(sr.receipt, receipt) != 0) {
			prov_callback_reject(req, "mpesa", 422,
			                     "status_not_this_payment",
			                     "ReceiptNo");
			return;
		}
		a.code = sr.status;
		if (strcmp(sr.status, "Reversed") == 0) {
			a.v = SVC_PROV_SUCCEEDED;
			a.has_amount = sr.has_amount;
			a.amount_minor = sr.amount_minor;
		} else if (strcmp(sr.status, "Completed") == 0) {
			/* the payment stands: the reversal failed if M-Pesa
			 * said so before this query, else it may be queued */
			a.v = failure_seen ? SVC_PROV_FAILED : SVC_PROV_PENDING;
			a.code = NULL; /* keeps the row's REV_FAIL code */
		}
	}
	prov_status_result(np, &prov_drv_mpesa, req, ref, &a, ack);
}

/* POST /v1/callbacks/mpesa/{reversal,revstatus}/<token>/... */
static void
rev_callback(struct net_prov *np, struct evhttp_request *req,
             const char *rest)
{
	struct mpesa *m = M(np);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), k = 0, want_parts;
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_err e;
	enum mpesa_rc mr;
	bool is_status = strncmp(rest, "revstatus/", 10) == 0;
	const char *why = NULL, *body, *part[REV_PARTS + 1];
	char buf[4 * STORE_PREF_MAX + 300], mac[STATUS_MAC_LEN + 1], ack[128];
	char *p, *tok;
	size_t n = 0;

	/* <token>/<ref>/<a>[/<b>]/<mac> */
	if (strlen(rest) >= sizeof buf) {
		prov_callback_reject(req, "mpesa", 404, "not_found", "path");
		return;
	}
	strlcpy_s(buf, strchr(rest, '/') + 1, sizeof buf);
	tok = buf;
	if ((p = strchr(tok, '/')) == NULL) {
		prov_callback_reject(req, "mpesa", 404, "not_found", "path");
		return;
	}
	*p++ = '\0';
	while (p != NULL && k <= REV_PARTS) {
		part[k++] = p;
		if ((p = strchr(p, '/')) != NULL)
			*p++ = '\0';
	}
	want_parts = is_status ? 4 : 3;
	if (m->credential == NULL || !prov_token_ok(m->cb_token, tok)) {
		prov_callback_reject(req, "mpesa", 404, "not_found", "token");
		return;
	}
	if (p != NULL || k != want_parts) {
		prov_callback_reject(req, "mpesa", 404, "not_found", "path");
		return;
	}
	rev_mac(m, is_status ? "revstatus" : "reversal", part[0], part[1],
	        is_status ? part[2] : "", mac);
	if (strlen(part[k - 1]) != STATUS_MAC_LEN ||
	    util_ct_memcmp(mac, part[k - 1], STATUS_MAC_LEN) != 0) {
		prov_callback_reject(req, "mpesa", 404, "not_found", "mac");
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
	mpesa_callback_ack_build(ack, sizeof ack, "Accepted", &n, &why);
	if (is_status) {
		rev_status_result(np, req, &doc, part[0], part[1],
		                  strcmp(part[2], "f") == 0, ack);
	} else if (strcmp(part[1], "result") == 0) {
		struct mpesa_reversal_result rr;
		char code[STORE_RCODE_MAX + 1];
		bool ok;

		if ((mr = mpesa_reversal_result_parse(&rr, &doc, &e)) !=
		    MPESA_OK) {
			b2c_reject_parse(req, mr, e.field);
			return;
		}
		ok = mpesa_code_is_zero(&rr.r.result_code);
		snprintf(code, sizeof code, "%s%s", ok ? "" : REV_FAIL,
		         rr.r.result_code.text);
		/* a callback (rule 3): the status query it triggers, on
		 * the reversed receipt, decides */
		prov_callback(np, &prov_drv_mpesa, req, part[0], true, ok,
		              ok && rr.has_amount, rr.amount_minor, code,
		              ok && rr.r.transaction_id[0] != '\0'
		                      ? rr.r.transaction_id
		                      : NULL,
		              ack);
	} else {
		struct mpesa_result r;

		if ((mr = mpesa_result_parse(&r, &doc, &e)) != MPESA_OK) {
			b2c_reject_parse(req, mr, e.field);
			return;
		}
		/* timed out in Daraja's queue: not a result, ask now */
		prov_callback(np, &prov_drv_mpesa, req, part[0], true, true,
		              false, 0, "queue_timeout", NULL, ack);
	}
}

/* B2C is on when an initiator is configured: its password (file or
 * env) is encrypted once with Safaricom's certificate into the
 * SecurityCredential, then wiped.  0, or -1 with err. */
static int
b2c_init(const struct config *cfg, struct mpesa *m, char *err, size_t errlen)
{
	struct sha256_ctx c;
	char *pw, cred[1024];

	if (cfg->mpesa_initiator_name[0] == '\0')
		return 1;
	if (cfg->mpesa_cert_file[0] == '\0') {
		snprintf(err, errlen, "mpesa_cert_file: required with "
		                      "mpesa_initiator_name");
		return -1;
	}
	if ((pw = prov_secret(cfg->mpesa_initiator_password_file,
	                      "SOKO_MPESA_INITIATOR_PASSWORD",
	                      "mpesa_initiator_password", err, errlen)) == NULL)
		return -1;
	if (prov_mpesa_security_credential(cfg->mpesa_cert_file, pw, cred,
	                                   sizeof cred, err, errlen) != 0) {
		prov_wipe_free(pw);
		return -1;
	}
	/* the key of the status ResultURL MACs: never sent anywhere */
	sha256_init(&c);
	sha256_update(&c, "soko mpesa status|", 18);
	sha256_update(&c, m->cb_token, strlen(m->cb_token));
	sha256_update(&c, "|", 1);
	sha256_update(&c, pw, strlen(pw));
	sha256_update(&c, "|", 1);
	sha256_update(&c, m->secret, strlen(m->secret));
	sha256_final(&c, m->status_key);
	sha256_wipe(&c, sizeof c);
	prov_wipe_free(pw);
	m->credential = xstrdup(cred);
	sha256_wipe(cred, sizeof cred);
	return 1;
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

	if (strncmp(rest, "reversal/", 9) == 0 ||
	    strncmp(rest, "revstatus/", 10) == 0) {
		rev_callback(np, req, rest);
		return;
	}
	if (strncmp(rest, "b2c/", 4) == 0 || strncmp(rest, "status/", 7) == 0 ||
	    strncmp(rest, "timeout/", 8) == 0) {
		b2c_callback(np, req, rest);
		return;
	}
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

/* ----------------------------------------------------------------- C2B */

/* A C2B payment needs no call: the customer already paid.  Accepted at
 * once with its receipt as the provider's reference; the janitor then
 * confirms it by Transaction Status before any money moves (rule 3). */
static void
c2b_accept(struct pop *o)
{
	struct svc_prov_answer a = {.v = SVC_PROV_ACCEPTED, .code = "c2b"};

	o->kind = POP_SEND;
	strlcpy_s(o->pref, o->p.client_ref + sizeof C2B_PREFIX - 1,
	          sizeof o->pref);
	a.provider_ref = o->pref;
	prov_answer(o, &a);
}

static void
c2b_register_done(void *arg, const struct ncurl_result *r)
{
	struct net_prov *np = arg;
	struct mpesa *m = M(np);
	struct json_tok toks[32];
	struct json_doc doc;
	struct mpesa_err e;
	struct mpesa_accepted ac;
	const char *why = NULL;
	bool ok = false;

	m->c2b_registering = false;
	/* {"OriginatorCoversationID","ResponseCode":"0",...}: the
	 * accepted shape minus ConversationID in some answers: read only
	 * the code */
	if (r->outcome == NCURL_ANSWERED && r->http_status == 200 &&
	    json_parse(&doc, toks, 32, r->body, r->body_len, &why) ==
	            CODEC_OK) {
		size_t v = json_obj_get(&doc, 0, "ResponseCode");

		ok = v != 0 && (json_str_eq(&doc, v, "0") ||
		                (doc.toks[v].type == JSON_NUMBER &&
		                 json_span(&doc, v).len == 1 &&
		                 json_span(&doc, v).ptr[0] == '0'));
	}
	(void)ac;
	(void)e;
	if (ok) {
		m->c2b_registered = true;
		log_msg(LOG_PROV, LOG_LEVEL_NOTICE,
		        "event=c2b_registered provider=mpesa shortcode=%s",
		        prov_cfg(np)->mpesa_shortcode);
		return;
	}
	if (r->outcome == NCURL_ANSWERED && r->http_status == 401)
		prov_token_drop(&m->tok, NULL);
	m->c2b_next_ms = util_now_ms() + 30000;
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=c2b_register_failed provider=mpesa outcome=%s "
	        "status=%ld (again in 30 s)",
	        ncurl_outcome_name(r->outcome), r->http_status);
}

/* Registers the validation and confirmation URLs (wire-formats §1.4),
 * from the janitor's tick until it succeeds, at most every 30 s.  The
 * ResponseType is Cancelled: when soko cannot answer a validation, the
 * customer's payment is cancelled rather than taken unchecked. */
static void
c2b_tick(struct net_prov *np)
{
	struct mpesa *m = M(np);
	const struct config *cfg = prov_cfg(np);
	char body[2048], conf[600], val[600], path[300];
	const char *why = NULL;
	size_t n = 0;

	if (m == NULL || !cfg->mpesa_c2b || m->c2b_registered ||
	    m->c2b_registering || util_now_ms() < m->c2b_next_ms)
		return;
	if (m->tok.token[0] == '\0' ||
	    util_now_ms() >= m->tok.exp_ms - TOKEN_MARGIN_MS) {
		/* no pop to wait with: fetch, and try at the next tick */
		if (!m->tok.busy) {
			m->tok.busy = true;
			if (m->tok.fetch(np, &m->tok) != 0)
				m->tok.busy = false;
		}
		return;
	}
	/* under /v1/callbacks/paybill/: Daraja refuses URLs containing
	 * "M-Pesa", "Safaricom", "exe", "exec", "cmd", "SQL" or "query"
	 * (wire-formats §1.4) */
	snprintf(path, sizeof path, "confirm/%s", m->cb_token);
	prov_callback_url(np, "paybill", path, conf, sizeof conf);
	snprintf(path, sizeof path, "validate/%s", m->cb_token);
	prov_callback_url(np, "paybill", path, val, sizeof val);
	if (mpesa_c2b_register_build(body, sizeof body, cfg->mpesa_shortcode,
	                             MPESA_C2B_DEFAULT_CANCELLED, conf, val, &n,
	                             &why) != CODEC_OK) {
		log_msg(LOG_PROV, LOG_LEVEL_ERROR,
		        "event=c2b_register_invalid why=\"%s\"", why);
		m->c2b_next_ms = util_now_ms() + 30000;
		return;
	}
	m->c2b_registering = true;
	if (mpesa_post(np, "/mpesa/c2b/v1/registerurl", "mpesa.c2bregister",
	               body, n, c2b_register_done, np, &why) != 0) {
		m->c2b_registering = false;
		m->c2b_next_ms = util_now_ms() + 30000;
	}
}

/* The merchant a paybill payment is for: BillRefNumber names the
 * merchant (docs/payments.md §C2B). */
static void
c2b_account(const char *bill_ref, char *dst, size_t cap)
{
	/* bill_ref passed c2b_ref_ok: at most 20 bytes, it fits */
	if (snprintf(dst, cap, "merchant:%.20s:payable", bill_ref) < 0)
		dst[0] = '\0';
}

static bool
c2b_ref_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 20 &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789-") == n;
}

/* POST /v1/callbacks/paybill/{validate,confirm}/<token> */
static void
c2b_callback(struct net_prov *np, struct evhttp_request *req,
             const char *rest)
{
	static const char reject_account[] =
		"{\"ResultCode\":\"C2B00012\",\"ResultDesc\":\"Rejected\"}";
	static const char reject_amount[] =
		"{\"ResultCode\":\"C2B00013\",\"ResultDesc\":\"Rejected\"}";
	struct mpesa *m = M(np);
	const struct config *cfg = prov_cfg(np);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), n = 0;
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct mpesa_c2b c;
	struct mpesa_err e;
	const char *why = NULL, *body;
	bool validate = strncmp(rest, "validate/", 9) == 0;
	const char *tok = validate ? rest + 9
	                  : strncmp(rest, "confirm/", 8) == 0 ? rest + 8
	                                                       : NULL;
	enum mpesa_rc mr;
	char account[LEDGER_CODE_MAX + 1], ok[128];

	if (!cfg->mpesa_c2b || tok == NULL || !prov_token_ok(m->cb_token, tok)) {
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
	if ((mr = mpesa_c2b_parse(&c, &doc, &e)) != MPESA_OK) {
		b2c_reject_parse(req, mr, e.field);
		return;
	}
	if (strcmp(c.short_code, cfg->mpesa_shortcode) != 0) {
		prov_callback_reject(req, "mpesa", 422, "shortcode_unknown",
		                     "BusinessShortCode");
		return;
	}
	if (validate) {
		if (c.amount_minor <= 0 || c.amount_minor % 100 != 0) {
			net_http_reply(req, 200, "application/json",
			               reject_amount, strlen(reject_amount));
			return;
		}
		if (!c2b_ref_ok(c.bill_ref)) {
			net_http_reply(req, 200, "application/json",
			               reject_account, strlen(reject_account));
			return;
		}
		c2b_account(c.bill_ref, account, sizeof account);
		mpesa_c2b_validation_resp_build(ok, sizeof ok, MPESA_C2B_ACCEPT,
		                                NULL, &n, &why);
		prov_account_check(np, req, account, 404, ok, reject_account);
		return;
	}
	/* confirmation: the money is at the paybill.  Recorded (idempotent
	 * on TransID), then confirmed by Transaction Status before it is
	 * posted; an account reference that names no merchant goes to
	 * mpesa_c2b_unmatched_account with an alert */
	{
		struct store_prov p;
		int64_t now = util_now_ms();

		if (c.amount_minor <= 0 ||
		    strlen(c.trans_id) + sizeof C2B_PREFIX > sizeof p.client_ref ||
		    !c2b_ref_ok(c.trans_id)) {
			prov_callback_reject(req, "mpesa", 400,
			                     "callback_field_invalid", "TransID");
			return;
		}
		memset(&p, 0, sizeof p);
		snprintf(p.pay.ref, sizeof p.pay.ref, "c2b:%.20s", c.trans_id);
		p.pay.currency = 404;
		p.pay.amount_minor = c.amount_minor;
		p.pay.created_ms = now;
		p.kind = STORE_PROV_COLLECT;
		strlcpy_s(p.provider, "mpesa", sizeof p.provider);
		/* plain, masked or hashed: kept as sent, cut to fit */
		strlcpy_s(p.msisdn, c.msisdn, sizeof p.msisdn);
		snprintf(p.client_ref, sizeof p.client_ref, "%s%.20s", C2B_PREFIX,
		         c.trans_id);
		p.call_state = STORE_CALL_TO_SEND;
		p.next_at_ms = now;
		p.deadline_ms = now + cfg->prov_deadline_s * 1000;
		sha256_digest(p.req_hash, p.client_ref, strlen(p.client_ref));
		c2b_account(c2b_ref_ok(c.bill_ref) ? c.bill_ref : "-", account,
		            sizeof account);
		mpesa_callback_ack_build(ok, sizeof ok, "Success", &n, &why);
		prov_collect_external(np, &prov_drv_mpesa, req, &p, account,
		                      cfg->mpesa_c2b_unmatched_account, ok);
	}
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
	if (b2c_init(cfg, m, err, errlen) < 0)
		return -1;
	if (cfg->mpesa_c2b && m->credential == NULL) {
		snprintf(err, errlen,
		         "mpesa_c2b: needs the initiator (mpesa_initiator_name, "
		         "password, certificate): C2B payments are confirmed "
		         "by Transaction Status");
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
	prov_wipe_free(m->credential);
	sha256_wipe(m->status_key, sizeof m->status_key);
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
	/* B2C: OriginatorConversationID, unique at Daraja: always ours */
	if (o->p.kind == STORE_PROV_DISBURSE)
		return prov_random_ref(o->p.client_ref, 20);
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

/* an STK push is queried by its CheckoutRequestID, nothing else; a B2C
 * by our OriginatorConversationID, always */
static bool
mpesa_can_query(const struct store_prov *p)
{
	return p->kind == STORE_PROV_DISBURSE || p->provider_ref[0] != '\0';
}

static void
mpesa_drv_send(struct pop *o)
{
	resume(o);
}

static bool
mpesa_can_disburse(const struct net_prov *np)
{
	return M(np) != NULL && M(np)->credential != NULL;
}

static const char *
mpesa_hold(const struct config *cfg)
{
	return cfg->mpesa_hold_account;
}

const struct prov_drv prov_drv_mpesa = {
	.name = "mpesa",
	.init = mpesa_init,
	.fini = mpesa_fini,
	.check = mpesa_check,
	.client_ref = mpesa_client_ref,
	.clearing_account = mpesa_clearing,
	.can_query = mpesa_can_query,
	.can_disburse = mpesa_can_disburse,
	.hold_account = mpesa_hold,
	.send = mpesa_drv_send,
	.query = mpesa_drv_send, /* resume() tells send and query apart */
	.callback = mpesa_callback,
	.tick = c2b_tick,
	.alias = "paybill",
	.alias_callback = c2b_callback,
};
