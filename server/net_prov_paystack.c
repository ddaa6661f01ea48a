/*
 * net_prov_paystack.c - the Paystack mobile-money collection driver
 * (net_prov_int.h): POST /charge with our reference, GET
 * /transaction/verify/:reference for the status, the signed webhook
 * (docs/payments.md §5, wire-formats §5).
 *
 * Paystack's `reference` is ours (client_ref, from the CSPRNG), so a lost
 * answer is resolved like MoMo's: the verify by that reference tells
 * whether the charge exists.  "Transaction reference not found" there
 * means the charge never arrived, and it is sent again with the SAME
 * reference: should the first one have arrived after all, Paystack
 * refuses the second with "Duplicate Transaction Reference", which we
 * read as "it is there".  The secret key is a static bearer: no token
 * fetch.
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
#include "prov_paystack.h"
#include "prov_sig.h"
#include "sha256.h"
#include "util.h"

#define PAYSTACK_REF_LEN 24 /* our reference: [A-Z2-9] from the CSPRNG */

struct paystack {
	char *secret;
};

static struct paystack *
P(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_paystack);
}

static void
bearer(const struct net_prov *np, char *dst, size_t cap)
{
	snprintf(dst, cap, "Authorization: Bearer %s", P(np)->secret);
}

/* The envelope's message of an error answer into o->desc ("" if none). */
static void
error_message(struct pop *o, const struct ncurl_result *r)
{
	struct json_tok toks[64];
	struct json_doc doc;
	struct paystack_envelope env;
	struct prov_err e;
	const char *why = NULL;

	o->desc[0] = '\0';
	if (r->body_len > 0 &&
	    json_parse(&doc, toks, 64, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    paystack_envelope_parse(&env, &doc, &e) == PROV_OK)
		strlcpy_s(o->desc, env.message, sizeof o->desc);
}

/* Paystack refuses a reference it has seen (wire-formats §5.3; the
 * sandbox and the live API say "Duplicate Transaction Reference"). */
static bool
is_duplicate(const char *msg)
{
	return prov_text_has(msg, "duplicate transaction reference");
}

/* GET /transaction/verify of a reference Paystack never saw. */
static bool
is_not_found(const char *msg)
{
	return prov_text_has(msg, "reference not found");
}

/* What the charge asks of the customer next (send_otp, send_pin,
 * open_url, pay_offline ...; docs/payments.md §5.1), into a's next_*
 * (strings in o); "" when it asks nothing.  A URL too long to store is
 * not shown (logged): a cut URL would send the customer astray. */
static void
next_step(struct pop *o, const struct paystack_txn *t,
          struct svc_prov_answer *a)
{
	bool step = t->next != PAYSTACK_NEXT_NONE;

	strlcpy_s(o->next_step, step ? t->status : "", sizeof o->next_step);
	strlcpy_s(o->next_text, step ? t->display_text : "",
	          sizeof o->next_text);
	o->next_url[0] = '\0';
	if (step && strlen(t->url) < sizeof o->next_url)
		strlcpy_s(o->next_url, t->url, sizeof o->next_url);
	else if (step)
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=next_url_too_long ref=%s", o->p.pay.ref);
	a->next_step = o->next_step;
	a->next_text = o->next_text;
	a->next_url = o->next_url;
}

/* Reduces a POST /charge answer to a verdict (docs/payments.md §1 rule 2,
 * §5). */
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
		struct paystack_charge_resp *cr = xcalloc(1, sizeof *cr);
		struct prov_err e;
		const char *why = NULL;

		/* §5.3: status true and a data.status word (pay_offline,
		 * pending, send_otp, success ...): the charge exists under
		 * our reference; only the verify decides its outcome */
		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    paystack_charge_resp_parse(cr, &doc, &e) == PROV_OK &&
		    cr->status && cr->has_data &&
		    strcmp(cr->txn.reference, o->p.client_ref) == 0) {
			a.v = SVC_PROV_ACCEPTED;
			a.provider_ref = o->p.client_ref;
			strlcpy_s(o->code, cr->txn.status, sizeof o->code);
			next_step(o, &cr->txn, &a);
		} else {
			/* a 200 we cannot read: it may have been taken */
			a.code = "unreadable_answer";
		}
		free(cr);
		prov_answer(o, &a);
		return;
	}
	error_message(o, r);
	a.desc = o->desc[0] != '\0' ? o->desc : NULL;
	if (r->http_status == 401 || r->http_status == 429) {
		/* §5.1 "Invalid key" (401) is refused at the door, and so is
		 * a throttle: nothing was processed, sending again is safe */
		a.v = SVC_PROV_NOT_SENT;
	} else if (r->http_status == 400 && is_duplicate(o->desc)) {
		/* our earlier send with this reference arrived */
		a.v = SVC_PROV_ACCEPTED;
		a.provider_ref = o->p.client_ref;
		a.code = "duplicate_reference";
	} else if (r->http_status >= 400 && r->http_status < 500 &&
	           r->http_status != 408) {
		/* §5.1 {"status":false,"message"}: invalid phone, amount,
		 * provider ... nothing will be charged */
		a.v = SVC_PROV_REFUSED;
	}
	/* 5xx, 408, anything else: it may have been committed; the
	 * verify by our reference tells */
	prov_answer(o, &a);
}

/* POSTs body (n bytes, JSON) to <paystack_base_url><path> with the
 * secret key; done gets the answer.  0, or -1 (*why) when it could not
 * be handed to net_curl (not sent). */
static int
paystack_post(struct pop *o, const char *path, const char *endpoint,
              const char *body, size_t n, ncurl_done_fn done,
              const char **why)
{
	struct net_prov *np = o->np;
	char url[600], auth[600];
	int rc;

	snprintf(url, sizeof url, "%s%s", prov_cfg(np)->paystack_base_url,
	         path);
	bearer(np, auth, sizeof auth);
	rc = prov_call(np, url, auth, NULL, body, n, endpoint, done, o, why);
	sha256_wipe(auth, sizeof auth);
	return rc;
}

static void
paystack_send(struct pop *o)
{
	struct net_prov *np = o->np;
	const struct config *cfg = prov_cfg(np);
	char body[PROV_BODY_MAX], email[160];
	struct paystack_charge_req cr;
	const char *why = NULL;
	size_t n = 0;

	o->kind = POP_SEND;
	snprintf(email, sizeof email, "%s@%s", o->p.msisdn,
	         cfg->paystack_email_domain);
	memset(&cr, 0, sizeof cr);
	cr.amount_minor = o->p.pay.amount_minor;
	cr.email = email;
	cr.currency = cfg->paystack_currency;
	cr.phone = o->p.msisdn;
	cr.provider = cfg->paystack_momo_provider;
	cr.reference = o->p.client_ref;
	if (paystack_charge_build(body, sizeof body, &cr, &n, &why) !=
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
	if (paystack_post(o, "/charge", "paystack.charge", body, n,
	                  charge_done, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=call_refused ref=%s endpoint=paystack.charge "
		        "why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
	}
}

/* A transaction (verify data) reduced to an answer.  A currency other
 * than the payment's must never settle it: it is reported as an amount
 * that cannot match, which makes the payment unknown with an alert. */
static void
txn_answer(struct pop *o, const struct paystack_txn *t,
           struct svc_prov_answer *a)
{
	const struct currency *cur = money_currency_by_numeric(o->p.pay.currency);

	strlcpy_s(o->code, t->status, sizeof o->code);
	strlcpy_s(o->receipt, t->id, sizeof o->receipt);
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
		/* "reversed": charged and given back; neither a plain
		 * success nor a failure: ask again, then unknown */
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
		struct paystack_txn *t = xcalloc(1, sizeof *t);
		struct prov_err e;
		const char *why = NULL;

		if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    paystack_verify_parse(t, &doc, &e) == PROV_OK &&
		    strcmp(t->reference, o->p.client_ref) == 0)
			txn_answer(o, t, &a);
		else
			a.code = "unreadable_answer";
		free(t);
	} else {
		error_message(o, r);
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		a.code = o->code;
		/* "Transaction reference not found" (400, or 404): Paystack
		 * has no charge with our reference, so a lost send never
		 * arrived: send it again (same reference, see above).  An
		 * accepted one vanishing is asked about again later. */
		if ((r->http_status == 400 || r->http_status == 404) &&
		    is_not_found(o->desc) &&
		    o->p.call_state == STORE_CALL_LOST) {
			a.v = SVC_PROV_NOT_SENT;
			a.code = "reference_not_found";
		}
	}
	prov_answer(o, &a);
}

static void
paystack_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char url[600], auth[600];
	const char *why = NULL;

	o->kind = POP_QUERY;
	snprintf(url, sizeof url, "%s/transaction/verify/%s",
	         prov_cfg(np)->paystack_base_url, o->p.client_ref);
	bearer(np, auth, sizeof auth);
	if (prov_call(np, url, auth, NULL, NULL, 0, "paystack.verify",
	              verify_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
	sha256_wipe(auth, sizeof auth);
}

/* POST /v1/callbacks/paystack/webhook: x-paystack-signature over the RAW
 * body is checked before anything is parsed (wire-formats §5.4); the
 * event then only triggers a verify. */
static void
paystack_callback(struct net_prov *np, struct evhttp_request *req,
                  const char *rest)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *sig = evhttp_find_header(
		evhttp_request_get_input_headers(req), "x-paystack-signature");
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct paystack_webhook *w;
	struct prov_err e;
	const char *why = NULL, *body;
	enum prov_rc pr;

	if (strcmp(rest, "webhook") != 0) {
		prov_callback_reject(req, "paystack", 404, "not_found", "path");
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (body == NULL)
		body = "";
	if (sig == NULL ||
	    !prov_paystack_sig_ok(P(np)->secret, (const uint8_t *)body, len,
	                          sig)) {
		prov_callback_reject(req, "paystack", 401,
		                     "callback_signature_invalid",
		                     sig == NULL ? "x-paystack-signature missing"
		                                 : "x-paystack-signature wrong");
		return;
	}
	if (json_parse(&doc, toks, PROV_TOKS, body, len, &why) != CODEC_OK) {
		prov_callback_reject(req, "paystack", 400,
		                     "callback_invalid_json", why);
		return;
	}
	w = xcalloc(1, sizeof *w);
	if ((pr = paystack_webhook_parse(w, &doc, &e)) != PROV_OK) {
		prov_callback_reject(req, "paystack", 400,
		                     pr == PROV_MISSING ? "callback_field_missing"
		                     : pr == PROV_WRONG_TYPE
		                             ? "callback_field_type"
		                             : "callback_field_invalid",
		                     e.field);
		free(w);
		return;
	}
	if (w->event == PAYSTACK_EVENT_OTHER) {
		/* transfers, disputes ...: not ours to act on; ack */
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=callback_ignored provider=paystack name=%s",
		        w->event_name);
		net_http_reply(req, 200, "application/json", "{}", 2);
		free(w);
		return;
	}
	if (w->txn.currency[0] != '\0' &&
	    strcmp(w->txn.currency, prov_cfg(np)->paystack_currency) != 0) {
		prov_callback_reject(req, "paystack", 422, "currency_mismatch",
		                     w->txn.currency);
		free(w);
		return;
	}
	prov_callback(np, &prov_drv_paystack, req, w->txn.reference, true,
	              w->event == PAYSTACK_EVENT_CHARGE_SUCCESS,
	              w->txn.has_amount, w->txn.amount_minor,
	              w->txn.status, w->txn.id, "{}");
	free(w);
}

/* ------------------------------------------------------------- driver */

static int
paystack_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct paystack *ps;

	if (cfg->paystack_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->paystack_base_url, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "paystack_base_url: must be https:// (got %s)",
		         cfg->paystack_base_url);
		return -1;
	}
	if (prov_currency_exponent(cfg->paystack_currency) < 0) {
		snprintf(err, errlen, "paystack_currency: unknown currency %s",
		         cfg->paystack_currency);
		return -1;
	}
	if (cfg->paystack_email_domain[0] == '\0' ||
	    strchr(cfg->paystack_email_domain, '@') != NULL) {
		snprintf(err, errlen, "paystack_email_domain: required with "
		                      "paystack_base_url (a domain, no '@')");
		return -1;
	}
	if (cfg->paystack_momo_provider[0] == '\0') {
		snprintf(err, errlen, "paystack_momo_provider: required with "
		                      "paystack_base_url");
		return -1;
	}
	ps = xcalloc(1, sizeof *ps);
	*state = ps;
	if ((ps->secret = prov_secret(cfg->paystack_secret_key_file,
	                              "SOKO_PAYSTACK_SECRET_KEY",
	                              "paystack_secret_key", err, errlen)) ==
	    NULL)
		return -1;
	return 1;
}

static void
paystack_fini(void *state)
{
	struct paystack *ps = state;

	if (ps == NULL)
		return;
	prov_wipe_free(ps->secret);
	free(ps);
}

/* One currency per integration (paystack_currency), MSISDN digits as the
 * mobile_money phone. */
static const char *
paystack_check(const struct config *cfg, const struct svc_collection *c,
               const char **msg)
{
	if (strcmp(c->cur->alpha, cfg->paystack_currency) != 0) {
		*msg = "Paystack collects in paystack_currency only";
		return "amount_invalid_for_provider";
	}
	return NULL;
}

/* The charge's reference at Paystack: ours, from the CSPRNG, reused on
 * every re-send (the caller's `reference` is not unique enough to be a
 * key). */
static int
paystack_client_ref(struct pop *o)
{
	return prov_random_ref(o->p.client_ref, PAYSTACK_REF_LEN);
}

static const char *
paystack_clearing(const struct config *cfg)
{
	return cfg->paystack_clearing_account;
}

static bool
paystack_can_query(const struct store_prov *p)
{
	(void)p;
	return true; /* by our reference, always */
}

/* ------------------------------------------------- submit_otp / _pin */

/* The answer to a submitted OTP or PIN (docs/payments.md §5.1): the
 * charge's next data.status, or why it was not taken. */
static void
submit_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct paystack_charge_resp *cr;
	struct svc_prov_answer a;
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome == NCURL_NOT_SENT) {
		prov_step_done(o, 503, "provider_unavailable",
		               "not sent to the provider; send it again", NULL,
		               NULL, NULL);
		return;
	}
	if (r->outcome == NCURL_UNKNOWN) {
		prov_step_done(o, 504, "provider_timeout",
		               "the provider's answer was lost; GET the payment "
		               "and send it again if it still asks",
		               NULL, NULL, NULL);
		return;
	}
	if (r->http_status != 200) {
		error_message(o, r);
		if (r->http_status >= 400 && r->http_status < 500 &&
		    r->http_status != 401 && r->http_status != 408 &&
		    r->http_status != 429)
			/* "Invalid OTP" ...: the customer may try again */
			prov_step_done(o, 422, "provider_refused",
			               o->desc[0] != '\0' ? o->desc
			                                  : "refused",
			               NULL, NULL, NULL);
		else
			prov_step_done(o, 503, "provider_unavailable",
			               "the provider did not take it; send it "
			               "again",
			               NULL, NULL, NULL);
		return;
	}
	cr = xcalloc(1, sizeof *cr);
	memset(&a, 0, sizeof a);
	if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    paystack_charge_resp_parse(cr, &doc, &e) == PROV_OK &&
	    cr->status && cr->has_data &&
	    strcmp(cr->txn.reference, o->p.client_ref) == 0) {
		next_step(o, &cr->txn, &a);
		prov_step_done(o, 0, NULL, NULL, a.next_step, a.next_text,
		               a.next_url);
	} else {
		prov_step_done(o, 502, "provider_answer_invalid",
		               "the provider's answer could not be read; GET "
		               "the payment",
		               NULL, NULL, NULL);
	}
	free(cr);
}

static void
paystack_submit(struct pop *o, const char *step, const char *value)
{
	enum paystack_submit what = strcmp(step, "send_otp") == 0
	                                    ? PAYSTACK_SUBMIT_OTP
	                                    : PAYSTACK_SUBMIT_PIN;
	char body[256];
	const char *why = NULL;
	size_t n = 0;

	if (paystack_submit_build(body, sizeof body, what, value,
	                          o->p.client_ref, &n, &why) != CODEC_OK) {
		sha256_wipe(body, sizeof body);
		prov_step_done(o, 400, what == PAYSTACK_SUBMIT_OTP
		                               ? "otp_invalid"
		                               : "pin_invalid",
		               why, NULL, NULL, NULL);
		return;
	}
	if (paystack_post(o, paystack_submit_path(what),
	                  what == PAYSTACK_SUBMIT_OTP ? "paystack.submit_otp"
	                                              : "paystack.submit_pin",
	                  body, n, submit_done, &why) != 0)
		prov_step_done(o, 503, "provider_unavailable",
		               "not sent to the provider; send it again", NULL,
		               NULL, NULL);
	sha256_wipe(body, sizeof body);
}

const struct prov_drv prov_drv_paystack = {
	.name = "paystack",
	.init = paystack_init,
	.fini = paystack_fini,
	.check = paystack_check,
	.client_ref = paystack_client_ref,
	.clearing_account = paystack_clearing,
	.can_query = paystack_can_query,
	.send = paystack_send,
	.query = paystack_query,
	.callback = paystack_callback,
	.submit = paystack_submit,
};
