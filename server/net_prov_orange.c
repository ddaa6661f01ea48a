/*
 * net_prov_orange.c - the Orange Money Web Payment collection driver
 * (net_prov_int.h): OAuth token, webpayment init with our order_id,
 * transactionstatus, the notification to notif_url (docs/payments.md
 * §7, wire-formats §3.1).
 *
 * The customer pays on Orange's page (payment_url): the init only opens
 * it.  Its answer carries the two things every later step needs and that
 * only Orange knows: pay_token (the status call needs it: it is the
 * payment's provider_ref) and notif_token (the notification's only proof
 * of origin: kept in the payment's result_desc, which no other Orange
 * answer writes).  An init whose answer is lost therefore cannot be
 * queried: like an STK push without its CheckoutRequestID it waits for
 * the deadline and becomes unknown, for reconciliation.  It is never
 * sent again (Orange refuses a second init with the same order_id, and
 * an order_id that is new would open a second payment page).
 *
 * notif_url is <prov_callback_base_url>/v1/callbacks/orange/<token>/
 * <order_id>: the URL token (orange_callback_token_file) keeps strangers
 * out, the order_id finds the payment (the notification body does not
 * name it), and its notif_token must equal the stored one.
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
#include "prov_orange.h"
#include "sha256.h"
#include "util.h"

#define ORANGE_ORDER_LEN 20 /* our order_id: [A-Z2-9] from the CSPRNG */
#define ORANGE_TOKEN_TTL_S 3600 /* when the token answer has none */

struct orange {
	char *secret, *merchant_key, *cb_token;
	struct prov_token tok;
};

static struct orange *
O(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_orange);
}

static void
webpay_url(const struct net_prov *np, char *dst, size_t cap,
           const char *what)
{
	snprintf(dst, cap, "%s/orange-money-webpay/%s/v1/%s",
	         prov_cfg(np)->orange_base_url, prov_cfg(np)->orange_country,
	         what);
}

static void
token_done(void *arg, const struct ncurl_result *r)
{
	struct net_prov *np = arg;
	struct json_tok toks[64];
	struct json_doc doc;
	struct orange_token *t = xcalloc(1, sizeof *t);
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome == NCURL_ANSWERED && r->http_status == 200 &&
	    json_parse(&doc, toks, 64, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    orange_token_parse(t, &doc, &e) == PROV_OK) {
		prov_token_done(np, &O(np)->tok, t->access_token,
		                t->has_expires_in && t->expires_in_s > 0
		                        ? t->expires_in_s
		                        : ORANGE_TOKEN_TTL_S);
	} else {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=orange outcome=%s "
		        "status=%ld why=\"%s\"",
		        ncurl_outcome_name(r->outcome), r->http_status,
		        r->errstr);
		prov_token_done(np, &O(np)->tok, NULL, 0);
	}
	sha256_wipe(t, sizeof *t);
	free(t);
}

/* POST /oauth/v3/token, Basic base64(client_id:client_secret), form body
 * grant_type=client_credentials (wire-formats §3.1). */
static int
token_fetch(struct net_prov *np, struct prov_token *t)
{
	struct orange *m = O(np);
	char b64[600], auth[640], url[600];
	struct ncurl_req rq;
	const char *why = NULL;
	static const char form[] = "grant_type=client_credentials";
	size_t n = 0;
	int rc = -1;

	(void)t;
	if (prov_basic_auth(b64, sizeof b64, prov_cfg(np)->orange_client_id,
	                    m->secret, &n, &why) == CODEC_OK) {
		snprintf(auth, sizeof auth, "Authorization: Basic %s", b64);
		snprintf(url, sizeof url, "%s/oauth/v3/token",
		         prov_cfg(np)->orange_base_url);
		memset(&rq, 0, sizeof rq);
		rq.method = NCURL_POST;
		rq.url = url;
		rq.headers[0] = auth;
		rq.headers[1] =
			"Content-Type: application/x-www-form-urlencoded";
		rq.n_headers = 2;
		rq.body = form;
		rq.body_len = sizeof form - 1;
		rq.endpoint = "orange.token";
		rc = ncurl_submit(prov_curl(np), &rq, token_done, np, &why);
	}
	if (rc != 0)
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=token_failed provider=orange why=\"%s\"",
		        why != NULL ? why : "");
	sha256_wipe(b64, sizeof b64);
	sha256_wipe(auth, sizeof auth);
	return rc;
}

static void orange_send(struct pop *o);
static void orange_query(struct pop *o);

static void
resume(struct pop *o)
{
	if (o->kind == POP_SEND)
		orange_send(o);
	else
		orange_query(o);
}

static void
bearer(const struct net_prov *np, char *dst, size_t cap)
{
	snprintf(dst, cap, "Authorization: Bearer %s", O(np)->tok.token);
}

/* Orange's error bodies {"code":41,"message","description"}: the code
 * (as text) into o->code, else the HTTP status. */
static void
error_code(struct pop *o, const struct ncurl_result *r)
{
	struct json_tok toks[64];
	struct json_doc doc;
	struct prov_err e;
	const char *why = NULL;
	int64_t code = 0;
	bool has = false;

	if (r->body_len > 0 &&
	    json_parse(&doc, toks, 64, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    prov_root(&doc, &e) == PROV_OK &&
	    prov_int(&doc, 0, "code", "code", 0, PROV_NUM, &code, &has,
	             &e) == PROV_OK &&
	    has)
		snprintf(o->code, sizeof o->code, "%ld.%lld", r->http_status,
		         (long long)code);
	else
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
}

/* Reduces a webpayment init answer to a verdict (docs/payments.md §1
 * rule 2, §7). */
static void
init_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST};

	if (r->outcome == NCURL_NOT_SENT) {
		a.v = SVC_PROV_NOT_SENT;
		a.code = "not_sent";
	} else if (r->outcome == NCURL_UNKNOWN) {
		a.code = "answer_lost";
	} else if (r->http_status == 200 || r->http_status == 201) {
		struct json_tok toks[PROV_TOKS];
		struct json_doc doc;
		struct orange_init_resp *ir = xcalloc(1, sizeof *ir);
		struct prov_err e;
		const char *why = NULL;

		/* §3.1: 201 {"status":201,"pay_token","payment_url",
		 * "notif_token"} */
		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    orange_init_resp_parse(ir, &doc, &e) == PROV_OK &&
		    strlen(ir->pay_token) <= STORE_PREF_MAX &&
		    strlen(ir->payment_url) <= STORE_URL_MAX) {
			a.v = SVC_PROV_ACCEPTED;
			strlcpy_s(o->pref, ir->pay_token, sizeof o->pref);
			a.provider_ref = o->pref;
			a.code = "201";
			/* the notification's proof, for prov_callback_secret */
			strlcpy_s(o->desc, ir->notif_token, sizeof o->desc);
			a.desc = o->desc;
			/* where the customer pays: stored, shown by the API
			 * (GET /v1/payments/{ref}) while the payment is open */
			strlcpy_s(o->next_url, ir->payment_url,
			          sizeof o->next_url);
			a.next_step = "open_url";
			a.next_url = o->next_url;
			log_msg(LOG_PROV, LOG_LEVEL_INFO,
			        "event=payment_url ref=%s url=%s", o->p.pay.ref,
			        ir->payment_url);
		} else {
			/* a 2xx we cannot read: the page may exist, without
			 * its pay_token we cannot ask */
			a.code = "unreadable_answer";
		}
		sha256_wipe(ir, sizeof *ir);
		free(ir);
	} else {
		error_code(o, r);
		a.code = o->code;
		if (r->http_status == 401) {
			/* §3.1 token refused at the door (41 invalid, 42
			 * expired): nothing was processed */
			prov_token_drop(&O(o->np)->tok, o);
			a.v = SVC_PROV_NOT_SENT;
		} else if (r->http_status == 429) {
			a.v = SVC_PROV_NOT_SENT;
		} else if (r->http_status >= 400 && r->http_status < 500 &&
		           r->http_status != 408) {
			/* 400 code 21 (a body field), 403, 404 ...: no page
			 * was opened, nothing can be paid */
			a.v = SVC_PROV_REFUSED;
		}
		/* 5xx, 408: the page may have been opened */
	}
	prov_answer(o, &a);
}

static void
orange_send(struct pop *o)
{
	struct net_prov *np = o->np;
	const struct config *cfg = prov_cfg(np);
	char body[PROV_BODY_MAX], url[600], auth[PROV_TOKEN_MAX + 32];
	char notif[600], path[200];
	struct orange_init_req ir;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	if (!prov_token_get(np, &O(np)->tok, o))
		return;
	snprintf(path, sizeof path, "%s/%s", O(np)->cb_token,
	         o->p.client_ref);
	prov_callback_url(np, "orange", path, notif, sizeof notif);
	memset(&ir, 0, sizeof ir);
	ir.merchant_key = O(np)->merchant_key;
	ir.currency = cfg->orange_currency;
	ir.order_id = o->p.client_ref;
	ir.amount_minor = o->p.pay.amount_minor;
	ir.return_url = cfg->orange_return_url;
	ir.cancel_url = cfg->orange_cancel_url;
	ir.notif_url = notif;
	ir.lang = cfg->orange_lang;
	ir.reference = o->p.client_ref;
	if (orange_init_build(body, sizeof body, &ir, &n, &why) != CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		sha256_wipe(body, sizeof body);
		prov_answer(o, &a);
		return;
	}
	webpay_url(np, url, sizeof url, "webpayment");
	bearer(np, auth, sizeof auth);
	if (prov_call(np, url, auth, "Accept: application/json", body, n,
	              "orange.webpayment", init_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=call_refused ref=%s endpoint=orange.webpayment "
		        "why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
	}
	/* the body holds the merchant key and the notif_url token */
	sha256_wipe(body, sizeof body);
	sha256_wipe(notif, sizeof notif);
	sha256_wipe(auth, sizeof auth);
}

static void
status_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};

	/* desc stays NULL on every status answer: result_desc holds the
	 * notif_token */
	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200 || r->http_status == 201) {
		struct json_tok toks[PROV_TOKS];
		struct json_doc doc;
		struct orange_status_resp sr;
		struct prov_err e;
		const char *why = NULL;

		/* §3.1 (shape UNCONFIRMED): {"status","order_id","txnid"};
		 * the amount is not in it but in the request, which
		 * Orange matches (order_id, amount, pay_token) */
		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    orange_status_parse(&sr, &doc, &e) == PROV_OK &&
		    (sr.order_id[0] == '\0' ||
		     strcmp(sr.order_id, o->p.client_ref) == 0)) {
			size_t nm;
			const struct prov_status_map *m = orange_status_map(&nm);

			strlcpy_s(o->code, (size_t)sr.status < nm
			                           ? m[sr.status].word
			                           : "?",
			          sizeof o->code);
			a.code = o->code;
			switch (sr.outcome) {
			case PROV_SUCCEEDED:
				strlcpy_s(o->receipt, sr.txnid,
				          sizeof o->receipt);
				a.v = SVC_PROV_SUCCEEDED;
				a.receipt = o->receipt;
				break;
			case PROV_FAILED: /* FAILED, EXPIRED */
				a.v = SVC_PROV_FAILED;
				break;
			case PROV_PENDING: /* INITIATED, PENDING */
				a.v = SVC_PROV_PENDING;
				break;
			default:
				break;
			}
		} else {
			a.code = "unreadable_answer";
		}
	} else {
		error_code(o, r);
		a.code = o->code;
		if (r->http_status == 401)
			prov_token_drop(&O(o->np)->tok, o);
	}
	prov_answer(o, &a);
}

static void
orange_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], url[600], auth[PROV_TOKEN_MAX + 32];
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_QUERY;
	if (!prov_token_get(np, &O(np)->tok, o))
		return;
	if (orange_status_build(body, sizeof body, o->p.client_ref,
	                        o->p.pay.amount_minor,
	                        prov_cfg(np)->orange_currency,
	                        o->p.provider_ref, &n, &why) != CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "request_invalid"};

		prov_answer(o, &a);
		return;
	}
	webpay_url(np, url, sizeof url, "transactionstatus");
	bearer(np, auth, sizeof auth);
	if (prov_call(np, url, auth, "Accept: application/json", body, n,
	              "orange.status", status_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
	sha256_wipe(auth, sizeof auth);
}

/* POST /v1/callbacks/orange/<token>/<order_id> (wire-formats §3.1):
 * {"status":"SUCCESS"|"FAILED","notif_token","txnid"}; the notif_token
 * must equal the one the init returned for this order. */
static void
orange_callback(struct net_prov *np, struct evhttp_request *req,
                const char *rest)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct orange_notif nt;
	struct prov_err e;
	const char *why = NULL, *body, *slash = strchr(rest, '/');
	char tok[200];
	enum prov_rc pr;

	if (slash == NULL || (size_t)(slash - rest) >= sizeof tok ||
	    slash[1] == '\0' || strlen(slash + 1) > ORANGE_ORDER_MAX) {
		prov_callback_reject(req, "orange", 404, "not_found", "path");
		return;
	}
	memcpy(tok, rest, (size_t)(slash - rest));
	tok[slash - rest] = '\0';
	if (!prov_token_ok(O(np)->cb_token, tok)) {
		sha256_wipe(tok, sizeof tok);
		prov_callback_reject(req, "orange", 404, "not_found", "token");
		return;
	}
	sha256_wipe(tok, sizeof tok);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (json_parse(&doc, toks, PROV_TOKS, body ? body : "", len, &why) !=
	    CODEC_OK) {
		prov_callback_reject(req, "orange", 400,
		                     "callback_invalid_json", why);
		return;
	}
	if ((pr = orange_notif_parse(&nt, &doc, &e)) != PROV_OK) {
		prov_callback_reject(req, "orange", 400,
		                     pr == PROV_MISSING ? "callback_field_missing"
		                     : pr == PROV_WRONG_TYPE
		                             ? "callback_field_type"
		                             : "callback_field_invalid",
		                     e.field);
		return;
	}
	prov_callback_secret(np, &prov_drv_orange, req, slash + 1,
	                     nt.notif_token, nt.outcome == PROV_SUCCEEDED,
	                     nt.outcome == PROV_SUCCEEDED ? "SUCCESS"
	                                                  : nt.reason,
	                     nt.txnid, "{}");
	sha256_wipe(&nt, sizeof nt);
}

/* ------------------------------------------------------------- driver */

static int
orange_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct orange *m;

	if (cfg->orange_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->orange_base_url, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "orange_base_url: must be https:// (got %s)",
		         cfg->orange_base_url);
		return -1;
	}
	if (cfg->orange_client_id[0] == '\0') {
		snprintf(err, errlen, "orange_client_id: required with "
		                      "orange_base_url");
		return -1;
	}
	if (prov_currency_exponent(cfg->orange_currency) < 0) {
		snprintf(err, errlen, "orange_currency: unknown currency %s",
		         cfg->orange_currency);
		return -1;
	}
	if (cfg->orange_return_url[0] == '\0' ||
	    cfg->orange_cancel_url[0] == '\0') {
		snprintf(err, errlen, "orange_return_url and orange_cancel_url: "
		                      "required with orange_base_url");
		return -1;
	}
	if (strcmp(cfg->orange_lang, "fr") != 0 &&
	    strcmp(cfg->orange_lang, "en") != 0) {
		snprintf(err, errlen, "orange_lang: fr or en");
		return -1;
	}
	if (cfg->orange_country[0] == '\0' ||
	    strspn(cfg->orange_country, "abcdefghijklmnopqrstuvwxyz") !=
	            strlen(cfg->orange_country)) {
		snprintf(err, errlen, "orange_country: dev, or a lower-case "
		                      "country code");
		return -1;
	}
	m = xcalloc(1, sizeof *m);
	*state = m;
	m->tok.fetch = token_fetch;
	m->tok.go = resume;
	if ((m->secret = prov_secret(cfg->orange_client_secret_file,
	                             "SOKO_ORANGE_CLIENT_SECRET",
	                             "orange_client_secret", err, errlen)) ==
	            NULL ||
	    (m->merchant_key = prov_secret(cfg->orange_merchant_key_file,
	                                   "SOKO_ORANGE_MERCHANT_KEY",
	                                   "orange_merchant_key", err,
	                                   errlen)) == NULL ||
	    (m->cb_token = prov_secret(cfg->orange_callback_token_file,
	                               "SOKO_ORANGE_CALLBACK_TOKEN",
	                               "orange_callback_token", err,
	                               errlen)) == NULL)
		return -1;
	if (!prov_token_ok(m->cb_token, m->cb_token)) {
		snprintf(err, errlen,
		         "orange_callback_token: at least %d characters of "
		         "[A-Za-z0-9_-]",
		         CB_TOKEN_MIN);
		return -1;
	}
	return 1;
}

static void
orange_fini(void *state)
{
	struct orange *m = state;

	if (m == NULL)
		return;
	prov_wipe_free(m->secret);
	prov_wipe_free(m->merchant_key);
	prov_wipe_free(m->cb_token);
	sha256_wipe(m->tok.token, sizeof m->tok.token);
	free(m);
}

/* One currency per merchant (orange_currency), whole units only. */
static const char *
orange_check(const struct config *cfg, const struct svc_collection *c,
             const char **msg)
{
	int e = prov_currency_exponent(c->cur->alpha);
	int64_t div = 1;

	while (e-- > 0)
		div *= 10;
	if (strcmp(c->cur->alpha, cfg->orange_currency) != 0 ||
	    c->amount_minor % div != 0) {
		*msg = "Orange Money collects whole units of orange_currency "
		       "only";
		return "amount_invalid_for_provider";
	}
	return NULL;
}

/* order_id (and reference): ours, from the CSPRNG. */
static int
orange_client_ref(struct pop *o)
{
	return prov_random_ref(o->p.client_ref, ORANGE_ORDER_LEN);
}

static const char *
orange_clearing(const struct config *cfg)
{
	return cfg->orange_clearing_account;
}

/* the status call needs the pay_token the init answered */
static bool
orange_can_query(const struct store_prov *p)
{
	return p->provider_ref[0] != '\0';
}

const struct prov_drv prov_drv_orange = {
	.name = "orange",
	.init = orange_init,
	.fini = orange_fini,
	.check = orange_check,
	.client_ref = orange_client_ref,
	.clearing_account = orange_clearing,
	.can_query = orange_can_query,
	.send = orange_send,
	.query = orange_query,
	.callback = orange_callback,
};
