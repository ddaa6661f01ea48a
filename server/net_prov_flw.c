/*
 * net_prov_flw.c - the Flutterwave mobile-money collection driver
 * (net_prov_int.h): POST /v3/charges?type=<flw_charge_type> with our
 * tx_ref, GET /v3/transactions/verify_by_reference?tx_ref= for the
 * status, the webhook authenticated by its verif-hash header
 * (docs/payments.md §6, wire-formats §4.3-4.4).
 *
 * tx_ref is ours (client_ref, from the CSPRNG), so, as with Paystack, a
 * lost answer is resolved by the verify: "No transaction was found for
 * this tx_ref" means the charge never arrived, and it is sent again with
 * the SAME tx_ref; had the first arrived after all, Flutterwave refuses
 * the second ("Transaction with this reference already exists"), which
 * we read as "it is there".  The secret key is a static bearer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "json.h"
#include "log.h"
#include "money.h"
#include "net_http.h"
#include "net_prov_int.h"
#include "prov.h"
#include "prov_flw.h"
#include "prov_sig.h"
#include "sha256.h"
#include "util.h"

#define FLW_TXREF_LEN 24 /* our tx_ref: [A-Z2-9] from the CSPRNG */

struct flw {
	char *secret, *hash;
	enum flw_momo_type type;
};

static struct flw *
F(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_flw);
}

static void
bearer(const struct net_prov *np, char *dst, size_t cap)
{
	snprintf(dst, cap, "Authorization: Bearer %s", F(np)->secret);
}

/* The envelope's message of an error answer into o->desc ("" if none). */
static void
error_message(struct pop *o, const struct ncurl_result *r)
{
	struct json_tok toks[64];
	struct json_doc doc;
	struct flw_envelope env;
	struct prov_err e;
	const char *why = NULL;

	o->desc[0] = '\0';
	if (r->body_len > 0 &&
	    json_parse(&doc, toks, 64, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    flw_envelope_parse(&env, &doc, &e) == PROV_OK)
		strlcpy_s(o->desc, env.message, sizeof o->desc);
}

/* Reduces a POST /v3/charges answer to a verdict (docs/payments.md §1
 * rule 2, §6). */
static void
charge_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST};

	if (r->outcome == NCURL_NOT_SENT) {
		a.v = SVC_PROV_NOT_SENT;
		a.code = "not_sent";
		prov_answer(o, &a);
		return;
	}
	if (r->outcome == NCURL_UNKNOWN) {
		a.code = "answer_lost";
		prov_answer(o, &a);
		return;
	}
	snprintf(o->code, sizeof o->code, "%ld", r->http_status);
	a.code = o->code;
	if (r->http_status == 200) {
		struct json_tok toks[PROV_TOKS];
		struct json_doc doc;
		struct flw_charge_resp *cr = xcalloc(1, sizeof *cr);
		struct prov_err e;
		const char *why = NULL;

		/* §4.3: "success" with data (mpesa, franco: status pending)
		 * or without (Ghana: meta.authorization): the charge exists
		 * under our tx_ref; only the verify decides its outcome */
		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    flw_charge_resp_parse(cr, &doc, &e) == PROV_OK &&
		    cr->is_success &&
		    (!cr->has_data ||
		     strcmp(cr->txn.tx_ref, o->p.client_ref) == 0)) {
			a.v = SVC_PROV_ACCEPTED;
			a.provider_ref = o->p.client_ref;
			strlcpy_s(o->code, cr->has_data ? cr->txn.status
			                                : "initiated",
			          sizeof o->code);
		} else if (cr->outcome == PROV_FAILED && !cr->is_success) {
			/* "error" envelope: refused, nothing charged */
			a.v = SVC_PROV_REFUSED;
			strlcpy_s(o->desc, cr->message, sizeof o->desc);
			a.desc = o->desc;
		} else {
			a.code = "unreadable_answer"; /* it may be there */
		}
		free(cr);
		prov_answer(o, &a);
		return;
	}
	error_message(o, r);
	a.desc = o->desc[0] != '\0' ? o->desc : NULL;
	if (r->http_status == 401 || r->http_status == 429) {
		/* §4.1: a refused key ("Invalid authorization key") or a
		 * throttle: answered at the door, safe to send again */
		a.v = SVC_PROV_NOT_SENT;
	} else if (r->http_status == 400 &&
	           prov_text_has(o->desc, "already exist")) {
		/* our earlier send with this tx_ref arrived */
		a.v = SVC_PROV_ACCEPTED;
		a.provider_ref = o->p.client_ref;
		a.code = "duplicate_reference";
	} else if (r->http_status >= 400 && r->http_status < 500 &&
	           r->http_status != 408) {
		/* §4.1 {"status":"error","message"}: invalid phone, amount,
		 * currency for the type ... nothing will be charged */
		a.v = SVC_PROV_REFUSED;
	}
	/* 5xx, 408, anything else: it may have been committed; the
	 * verify by our tx_ref tells */
	prov_answer(o, &a);
}

static void
flw_send(struct pop *o)
{
	struct net_prov *np = o->np;
	const struct config *cfg = prov_cfg(np);
	char body[PROV_BODY_MAX], url[600], auth[600], email[160];
	struct flw_charge_req cr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	snprintf(email, sizeof email, "%s@%s", o->p.msisdn,
	         cfg->flw_email_domain);
	memset(&cr, 0, sizeof cr);
	cr.type = F(np)->type;
	cr.tx_ref = o->p.client_ref;
	cr.amount_minor = o->p.pay.amount_minor;
	cr.currency = cfg->flw_currency;
	cr.network = cr.type == FLW_MOMO_GHANA ? cfg->flw_network : NULL;
	cr.country = cr.type == FLW_MOMO_FRANCO ? cfg->flw_country : NULL;
	cr.email = email;
	cr.phone_number = o->p.msisdn;
	cr.fullname = o->p.msisdn; /* soko knows no name */
	if (flw_charge_build(body, sizeof body, &cr, &n, &why) != CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=request_invalid ref=%s why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
		return;
	}
	snprintf(url, sizeof url, "%s/v3/charges?type=%s", cfg->flw_base_url,
	         flw_momo_type_param(cr.type));
	bearer(np, auth, sizeof auth);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_POST;
	rq.url = url;
	rq.headers[0] = auth;
	rq.headers[1] = "Content-Type: application/json";
	rq.n_headers = 2;
	rq.body = body;
	rq.body_len = n;
	rq.endpoint = "flw.charge";
	if (ncurl_submit(prov_curl(np), &rq, charge_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=call_refused ref=%s endpoint=flw.charge "
		        "why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
	}
	sha256_wipe(auth, sizeof auth);
}

/* A verified transaction reduced to an answer; a currency other than the
 * payment's never settles it (reported as an amount that cannot match:
 * unknown, with an alert). */
static void
txn_answer(struct pop *o, const struct flw_txn *t, struct svc_prov_answer *a)
{
	const struct currency *cur = money_currency_by_numeric(o->p.pay.currency);

	strlcpy_s(o->code, t->status, sizeof o->code);
	strlcpy_s(o->receipt, t->flw_ref[0] != '\0' ? t->flw_ref : t->id,
	          sizeof o->receipt);
	a->code = o->code;
	switch (t->outcome) {
	case PROV_SUCCEEDED:
		a->v = SVC_PROV_SUCCEEDED;
		a->receipt = o->receipt;
		a->has_amount = true;
		a->amount_minor = t->amount_minor;
		if (cur == NULL || strcmp(t->currency, cur->alpha) != 0) {
			strlcpy_s(o->code, "currency_mismatch", sizeof o->code);
			a->amount_minor = -1;
		}
		break;
	case PROV_FAILED:
		a->v = SVC_PROV_FAILED;
		break;
	case PROV_PENDING:
		a->v = SVC_PROV_PENDING;
		break;
	default:
		a->v = SVC_PROV_NO_ANSWER;
		break;
	}
}

static void
verify_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};

	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200) {
		struct json_tok toks[PROV_TOKS];
		struct json_doc doc;
		struct flw_txn *t = xcalloc(1, sizeof *t);
		struct prov_err e;
		const char *why = NULL;

		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    flw_verify_parse(t, &doc, &e) == PROV_OK &&
		    strcmp(t->tx_ref, o->p.client_ref) == 0)
			txn_answer(o, t, &a);
		else
			a.code = "unreadable_answer";
		free(t);
	} else {
		error_message(o, r);
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		a.code = o->code;
		/* "No transaction was found for this tx_ref": a lost send
		 * never arrived; send it again (same tx_ref, see above) */
		if ((r->http_status == 400 || r->http_status == 404) &&
		    prov_text_has(o->desc, "no transaction was found") &&
		    o->p.call_state == STORE_CALL_LOST) {
			a.v = SVC_PROV_NOT_SENT;
			a.code = "reference_not_found";
		}
	}
	prov_answer(o, &a);
}

static void
flw_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char url[600], auth[600];
	struct ncurl_req rq;
	const char *why = NULL;

	o->kind = POP_QUERY;
	/* client_ref is [A-Z2-9]: nothing to escape */
	snprintf(url, sizeof url,
	         "%s/v3/transactions/verify_by_reference?tx_ref=%s",
	         prov_cfg(np)->flw_base_url, o->p.client_ref);
	bearer(np, auth, sizeof auth);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = auth;
	rq.n_headers = 1;
	rq.endpoint = "flw.verify";
	if (ncurl_submit(prov_curl(np), &rq, verify_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
	sha256_wipe(auth, sizeof auth);
}

/* POST /v1/callbacks/flutterwave/webhook: the verif-hash header is
 * compared with the dashboard's secret hash before anything is parsed
 * (wire-formats §4.4); the event then only triggers a verify. */
static void
flw_callback(struct net_prov *np, struct evhttp_request *req,
             const char *rest)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *hash = evhttp_find_header(
		evhttp_request_get_input_headers(req), "verif-hash");
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct flw_webhook *w;
	struct prov_err e;
	const char *why = NULL, *body;
	enum prov_rc pr;

	if (strcmp(rest, "webhook") != 0) {
		prov_callback_reject(req, "flutterwave", 404, "not_found",
		                     "path");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	if (!prov_flw_hash_ok(F(np)->hash, hash)) {
		prov_callback_reject(req, "flutterwave", 401,
		                     "callback_hash_invalid",
		                     hash == NULL ? "verif-hash missing"
		                                  : "verif-hash wrong");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (json_parse(&doc, toks, PROV_TOKS, body ? body : "", len, &why) !=
	    CODEC_OK) {
		prov_callback_reject(req, "flutterwave", 400,
		                     "callback_invalid_json", why);
		return;
	}
	w = xcalloc(1, sizeof *w);
	if ((pr = flw_webhook_parse(w, &doc, &e)) != PROV_OK) {
		prov_callback_reject(req, "flutterwave", 400,
		                     pr == PROV_MISSING ? "callback_field_missing"
		                     : pr == PROV_WRONG_TYPE
		                             ? "callback_field_type"
		                             : "callback_field_invalid",
		                     e.field);
		free(w);
		return;
	}
	if (w->event != FLW_EVENT_CHARGE_COMPLETED) {
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=callback_ignored provider=flutterwave name=%s",
		        w->event_name);
		net_http_reply(req, 200, "application/json", "{}", 2);
		free(w);
		return;
	}
	if (strcmp(w->txn.currency, prov_cfg(np)->flw_currency) != 0) {
		prov_callback_reject(req, "flutterwave", 422,
		                     "currency_mismatch", w->txn.currency);
		free(w);
		return;
	}
	prov_callback(np, &prov_drv_flw, req, w->txn.tx_ref, true,
	              w->txn.outcome == PROV_SUCCEEDED,
	              w->txn.outcome == PROV_SUCCEEDED, w->txn.amount_minor,
	              w->txn.status, w->txn.flw_ref, "{}");
	free(w);
}

/* ------------------------------------------------------------- driver */

static int
flw_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct flw *f;
	int t;

	if (cfg->flw_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->flw_base_url, "https://", 8) != 0) {
		snprintf(err, errlen, "flw_base_url: must be https:// (got %s)",
		         cfg->flw_base_url);
		return -1;
	}
	for (t = FLW_MOMO_GHANA; t <= FLW_MOMO_FRANCO; t++)
		if (strcmp(cfg->flw_charge_type,
		           flw_momo_type_param((enum flw_momo_type)t)) == 0)
			break;
	if (t > FLW_MOMO_FRANCO) {
		snprintf(err, errlen,
		         "flw_charge_type: mobile_money_ghana, mpesa or "
		         "mobile_money_franco (got %s)",
		         cfg->flw_charge_type);
		return -1;
	}
	if (prov_currency_exponent(cfg->flw_currency) < 0) {
		snprintf(err, errlen, "flw_currency: unknown currency %s",
		         cfg->flw_currency);
		return -1;
	}
	if ((t == FLW_MOMO_GHANA && cfg->flw_network[0] == '\0') ||
	    (t == FLW_MOMO_FRANCO && strlen(cfg->flw_country) != 2)) {
		snprintf(err, errlen, "flw_network (Ghana) or flw_country "
		                      "(francophone) required by "
		                      "flw_charge_type");
		return -1;
	}
	if (cfg->flw_email_domain[0] == '\0' ||
	    strchr(cfg->flw_email_domain, '@') != NULL) {
		snprintf(err, errlen, "flw_email_domain: required with "
		                      "flw_base_url (a domain, no '@')");
		return -1;
	}
	f = xcalloc(1, sizeof *f);
	*state = f;
	f->type = (enum flw_momo_type)t;
	if ((f->secret = prov_secret(cfg->flw_secret_key_file,
	                             "SOKO_FLW_SECRET_KEY", "flw_secret_key",
	                             err, errlen)) == NULL ||
	    (f->hash = prov_secret(cfg->flw_secret_hash_file,
	                           "SOKO_FLW_SECRET_HASH", "flw_secret_hash",
	                           err, errlen)) == NULL)
		return -1;
	if (strlen(f->hash) < 16) {
		snprintf(err, errlen, "flw_secret_hash: at least 16 characters");
		return -1;
	}
	return 1;
}

static void
flw_fini(void *state)
{
	struct flw *f = state;

	if (f == NULL)
		return;
	prov_wipe_free(f->secret);
	prov_wipe_free(f->hash);
	free(f);
}

static const char *
flw_check(const struct config *cfg, const struct svc_collection *c,
          const char **msg)
{
	if (strcmp(c->cur->alpha, cfg->flw_currency) != 0) {
		*msg = "Flutterwave collects in flw_currency only";
		return "amount_invalid_for_provider";
	}
	return NULL;
}

/* tx_ref: ours, from the CSPRNG, reused on every re-send. */
static int
flw_client_ref(struct pop *o)
{
	return prov_random_ref(o->p.client_ref, FLW_TXREF_LEN);
}

static const char *
flw_clearing(const struct config *cfg)
{
	return cfg->flw_clearing_account;
}

static bool
flw_can_query(const struct store_prov *p)
{
	(void)p;
	return true; /* by our tx_ref, always */
}

const struct prov_drv prov_drv_flw = {
	.name = "flutterwave",
	.init = flw_init,
	.fini = flw_fini,
	.check = flw_check,
	.client_ref = flw_client_ref,
	.clearing_account = flw_clearing,
	.can_query = flw_can_query,
	.send = flw_send,
	.query = flw_query,
	.callback = flw_callback,
};
