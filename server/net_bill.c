/*
 * net_bill.c - bill payments through Flutterwave on the loop
 * (docs/payments.md §Bill payments, docs/api.md §Bills).
 *
 * Two halves:
 *   - the API: POST /v1/bills/validate (a Flutterwave call answered to
 *     the client, nothing stored, no money), POST /v1/bills (the bill is
 *     stored, then funded: source -> holding by a ledger request carrying
 *     created -> pending), GET /v1/bills/{ref};
 *   - the provider driver "flwbill" (net_prov_int.h): the create-payment
 *     call and the status query by OUR reference, so an answer that was
 *     lost is always resolved by asking, never by sending again.
 * Every decision is in svc_bill.c / svc_prov.c; net_prov.c's janitor
 * claims, calls and writes (success: holding -> biller payable; final
 * failure: the refund holding -> source, with the state, in one commit).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>

#include "dbq.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "net_curl.h"
#include "net_billcat.h"
#include "net_http.h"
#include "net_prov.h"
#include "net_prov_int.h"
#include "payment.h"
#include "prov.h"
#include "prov_flw.h"
#include "sha256.h"
#include "svc_bill.h"
#include "util.h"

#define BILL_PROVIDER "flwbill"
#define BILL_CURRENCY "NGN" /* Flutterwave bills are Nigeria-only */
#define BILL_REF_LEN  20    /* our reference sent to Flutterwave */

struct flwbill {
	char *secret;
	char auth[512]; /* "Authorization: Bearer <secret>" */
	struct billcat *cat; /* the categories cache (net_billcat.c) */
};

static struct flwbill *
F(const struct net_prov *np)
{
	return prov_state(np, &prov_drv_flwbill);
}

/* ------------------------------------------------------------ driver */

/* Reads an error envelope's message into dst ("" if none). */
static void
flw_message(const struct ncurl_result *r, char *dst, size_t cap)
{
	struct json_tok toks[64];
	struct json_doc doc;
	struct flw_envelope env;
	struct prov_err e;
	const char *why = NULL;

	dst[0] = '\0';
	if (r->body_len > 0 &&
	    json_parse(&doc, toks, 64, r->body, r->body_len, &why) ==
	            CODEC_OK &&
	    flw_envelope_parse(&env, &doc, &e) == PROV_OK)
		strlcpy_s(dst, env.message, cap);
}

/* The create-payment answer reduced to a verdict (docs/payments.md §1;
 * §Bill payments for the 400s). */
static void
create_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_LOST, .code = "answer_lost"};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct flw_bill_created c;
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome == NCURL_NOT_SENT) {
		a.v = SVC_PROV_NOT_SENT;
		a.code = "not_sent";
	} else if (r->outcome == NCURL_ANSWERED) {
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		a.code = o->code;
		flw_message(r, o->desc, sizeof o->desc);
		a.desc = o->desc[0] != '\0' ? o->desc : NULL;
		if (r->http_status == 200 &&
		    json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    flw_bill_created_parse(&c, &doc, &e) == PROV_OK) {
			strlcpy_s(o->pref, c.flw_ref, sizeof o->pref);
			a.v = SVC_PROV_ACCEPTED;
			a.provider_ref = o->pref;
		} else if (r->http_status == 401 || r->http_status == 429) {
			/* refused at the door: nothing was done */
			a.v = SVC_PROV_NOT_SENT;
		} else if (r->http_status == 400 &&
		           strstr(o->desc, "uplicate") == NULL) {
			/* the biller or Flutterwave refused it: nothing was
			 * charged.  "Duplicate reference" means our reference
			 * is there: asked about, never taken as a refusal */
			a.v = SVC_PROV_REFUSED;
		}
		/* 5xx, an unreadable 200, anything else: it may be there;
		 * the status by our reference tells */
	}
	prov_answer(o, &a);
}

static void
flwbill_send(struct pop *o)
{
	struct net_prov *np = o->np;
	char body[PROV_BODY_MAX], path[256], url[1024];
	struct flw_bill_payment_req pr;
	struct ncurl_req rq;
	const char *why = NULL;
	size_t n = 0, pn = 0;

	o->kind = POP_SEND;
	memset(&pr, 0, sizeof pr);
	pr.country = "NG";
	pr.customer_id = o->p.bill.customer;
	pr.amount_minor = o->p.pay.amount_minor;
	pr.reference = o->p.client_ref;
	if (flw_bill_payment_path(path, sizeof path, o->p.bill.biller_code,
	                          o->p.bill.item_code, &pn, &why) != CODEC_OK ||
	    flw_bill_payment_build(body, sizeof body, &pr, &n, &why) !=
	            CODEC_OK) {
		struct svc_prov_answer a = {.v = SVC_PROV_REFUSED,
		                            .code = "request_invalid",
		                            .desc = why};

		prov_answer(o, &a);
		return;
	}
	snprintf(url, sizeof url, "%s%s", prov_cfg(np)->bills_flw_base_url,
	         path);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_POST;
	rq.url = url;
	rq.headers[0] = F(np)->auth;
	rq.headers[1] = "Content-Type: application/json";
	rq.n_headers = 2;
	rq.body = body;
	rq.body_len = n;
	rq.endpoint = "flw.bill_create";
	if (ncurl_submit(prov_curl(np), &rq, create_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NOT_SENT,
		                            .code = "not_sent",
		                            .not_left = true};

		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=call_refused ref=%s endpoint=flw.bill_create "
		        "why=\"%s\"",
		        o->p.pay.ref, why);
		prov_answer(o, &a);
	}
}

static void
status_done(void *arg, const struct ncurl_result *r)
{
	struct pop *o = arg;
	struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER};
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct flw_bill_status *st = xcalloc(1, sizeof *st);
	struct prov_err e;
	const char *why = NULL;

	if (r->outcome != NCURL_ANSWERED) {
		a.code = ncurl_outcome_name(r->outcome);
	} else if (r->http_status == 200 &&
	           json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len,
	                      &why) == CODEC_OK &&
	           flw_bill_status_parse(st, &doc, &e) == PROV_OK) {
		strlcpy_s(o->code, st->status[0] != '\0' ? st->status
		                                         : "successful",
		          sizeof o->code);
		a.code = o->code;
		switch (st->outcome) {
		case PROV_SUCCEEDED:
			a.v = SVC_PROV_SUCCEEDED;
			a.has_amount = true;
			a.amount_minor = st->amount_minor;
			svc_bill_token(st->extra, o->receipt,
			               sizeof o->receipt);
			a.receipt = o->receipt;
			break;
		case PROV_FAILED:
			a.v = SVC_PROV_FAILED;
			strlcpy_s(o->desc, st->reason, sizeof o->desc);
			a.desc = o->desc;
			break;
		default:
			a.v = SVC_PROV_PENDING;
			break;
		}
	} else {
		/* an error, or no bill with our reference (yet): not a
		 * failure (it may still be in flight); asked again, and
		 * past the deadline the bill is unknown, money in holding */
		snprintf(o->code, sizeof o->code, "%ld", r->http_status);
		a.code = o->code;
		flw_message(r, o->desc, sizeof o->desc);
		a.desc = o->desc[0] != '\0' ? o->desc : NULL;
	}
	free(st);
	prov_answer(o, &a);
}

static void
flwbill_query(struct pop *o)
{
	struct net_prov *np = o->np;
	char url[1024];
	struct ncurl_req rq;
	const char *why = NULL;

	o->kind = POP_QUERY;
	snprintf(url, sizeof url, "%s/v3/bills/%s",
	         prov_cfg(np)->bills_flw_base_url, o->p.client_ref);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = F(np)->auth;
	rq.n_headers = 1;
	rq.endpoint = "flw.bill_status";
	if (ncurl_submit(prov_curl(np), &rq, status_done, o, &why) != 0) {
		struct svc_prov_answer a = {.v = SVC_PROV_NO_ANSWER,
		                            .code = "not_sent",
		                            .not_left = true};

		prov_answer(o, &a);
	}
}

static void
flwbill_callback(struct net_prov *np, struct evhttp_request *req,
                 const char *rest)
{
	(void)np;
	(void)rest;
	/* bills are resolved by status queries only (no callback_url is
	 * sent) */
	prov_callback_reject(req, BILL_PROVIDER, 404, "not_found",
	                     "no bill callbacks");
}

static int
flwbill_init(struct net_prov *np, void **state, char *err, size_t errlen)
{
	const struct config *cfg = prov_cfg(np);
	struct flwbill *f;

	if (cfg->bills_flw_base_url[0] == '\0')
		return 0;
	if (strncmp(cfg->bills_flw_base_url, "https://", 8) != 0) {
		snprintf(err, errlen,
		         "bills_flw_base_url: must be https:// (got %s)",
		         cfg->bills_flw_base_url);
		return -1;
	}
	f = xcalloc(1, sizeof *f);
	*state = f;
	if ((f->secret = prov_secret(cfg->bills_flw_secret_key_file,
	                             "SOKO_FLW_SECRET_KEY",
	                             "bills_flw_secret_key", err, errlen)) ==
	    NULL)
		return -1;
	if (strlen(f->secret) + 32 > sizeof f->auth ||
	    strpbrk(f->secret, "\r\n") != NULL) {
		snprintf(err, errlen, "bills_flw_secret_key: not a key");
		return -1;
	}
	snprintf(f->auth, sizeof f->auth, "Authorization: Bearer %s",
	         f->secret);
	f->cat = billcat_new(f->auth);
	return 1;
}

static void
flwbill_fini(void *state)
{
	struct flwbill *f = state;

	if (f == NULL)
		return;
	billcat_free(f->cat);
	prov_wipe_free(f->secret);
	sha256_wipe(f->auth, sizeof f->auth);
	free(f);
}

static const char *
flwbill_check(const struct config *cfg, const struct svc_collection *c,
              const char **msg)
{
	(void)cfg;
	(void)c;
	*msg = "flwbill takes bill payments only (POST /v1/bills)";
	return "provider_unknown";
}

static int
flwbill_client_ref(struct pop *o)
{
	return prov_random_ref(o->p.client_ref, BILL_REF_LEN);
}

static const char *
flwbill_clearing(const struct config *cfg)
{
	return cfg->bills_holding_account;
}

static bool
flwbill_can_query(const struct store_prov *p)
{
	(void)p;
	return true; /* by our reference, always */
}

const struct prov_drv prov_drv_flwbill = {
	.name = BILL_PROVIDER,
	.init = flwbill_init,
	.fini = flwbill_fini,
	.check = flwbill_check,
	.client_ref = flwbill_client_ref,
	.clearing_account = flwbill_clearing,
	.can_query = flwbill_can_query,
	.send = flwbill_send,
	.query = flwbill_query,
	.callback = flwbill_callback,
};

/* --------------------------------------------------------------- API */

/* One API operation (validate, create + fund, get). */
struct bop {
	struct net_prov *np;
	struct evhttp_request *req;
	struct dbq_job job;
	struct svc_bill_validate v;
	struct svc_bill_pay b;
	struct store_prov p;
	struct store_prov_update u;
	int status;
	const char *err_code, *err_msg;
	bool is_replay;
};

static struct bop *
bop_new(struct net_prov *np, struct evhttp_request *req)
{
	struct bop *o = xcalloc(1, sizeof *o);

	o->np = np;
	o->req = req;
	o->job.arg = o;
	prov_busy_inc(np, 1);
	return o;
}

static void
bop_free(struct bop *o)
{
	if (o == NULL)
		return;
	prov_busy_inc(o->np, -1);
	free(o);
}

static const char *
call_name(uint8_t s)
{
	static const char *const n[] = {"to_send", "sending", "accepted",
	                                "answer_lost", "done"};

	return s < 5 ? n[s] : "?";
}

static void
amount_w(struct json_w *w, const struct currency *cur, int64_t minor)
{
	char a[48] = "";

	if (cur != NULL)
		money_format(a, sizeof a, cur, minor);
	json_w_cstr(w, a);
}

/* The bill as the API shows it (docs/api.md §Bills). */
static void
reply_bill(struct evhttp_request *req, int status, const struct store_prov *p)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	char buf[3072];
	struct json_w w;
	const char *why = NULL;
	size_t n = 0;

	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_key(&w, "ref");
	json_w_cstr(&w, p->pay.ref);
	json_w_key(&w, "state");
	json_w_cstr(&w, payment_state_name(p->pay.state));
	json_w_key(&w, "kind");
	json_w_cstr(&w, "bill");
	json_w_key(&w, "provider");
	json_w_cstr(&w, p->provider);
	json_w_key(&w, "biller_code");
	json_w_cstr(&w, p->bill.biller_code);
	json_w_key(&w, "item_code");
	json_w_cstr(&w, p->bill.item_code);
	json_w_key(&w, "customer");
	json_w_cstr(&w, p->bill.customer);
	json_w_key(&w, "customer_name");
	json_w_cstr(&w, p->bill.customer_name);
	json_w_key(&w, "amount");
	amount_w(&w, cur, p->pay.amount_minor);
	json_w_key(&w, "currency");
	json_w_cstr(&w, cur != NULL ? cur->alpha : "");
	/* docs/payments.md §13: paid on top of the amount; the agent's
	 * share of it */
	json_w_key(&w, "fee");
	amount_w(&w, cur, p->fee_minor);
	json_w_key(&w, "commission");
	amount_w(&w, cur, p->commission_minor);
	json_w_key(&w, "reference");
	json_w_cstr(&w, p->client_ref);
	json_w_key(&w, "provider_reference");
	json_w_cstr(&w, p->provider_ref);
	json_w_key(&w, "token");
	json_w_cstr(&w, p->receipt);
	json_w_key(&w, "refunded");
	json_w_bool(&w, p->pay.state == PAY_FAILED && p->pay.txn_id != 0);
	json_w_key(&w, "result_code");
	json_w_cstr(&w, p->result_code);
	json_w_key(&w, "result_desc");
	json_w_cstr(&w, p->result_desc);
	json_w_key(&w, "call");
	json_w_cstr(&w, call_name(p->call_state));
	json_w_key(&w, "txn_id");
	json_w_int(&w, p->pay.txn_id);
	json_w_key(&w, "created_ms");
	json_w_int(&w, p->pay.created_ms);
	json_w_obj_end(&w);
	if (json_w_finish(&w, &n, &why) != CODEC_OK) {
		net_http_error(req, 500, "render_failed", why);
		return;
	}
	net_http_reply(req, status, "application/json", buf, n);
}

/* ---- POST /v1/bills/validate */

/* A validation answer read into *v: its outcome. */
static enum svc_bill_outcome
validate_read(const struct ncurl_result *r, struct flw_bill_validation *v)
{
	struct json_tok toks[PROV_TOKS];
	struct json_doc doc;
	struct prov_err e;
	const char *why = NULL;
	char msg[FLW_TEXT_MAX];

	if (r->outcome != NCURL_ANSWERED)
		return SVC_BILL_UNANSWERED;
	if (r->http_status != 200) {
		flw_message(r, msg, sizeof msg);
		if (r->http_status == 400 && strstr(msg, "ustomer") != NULL)
			return SVC_BILL_CUSTOMER_UNKNOWN;
		if (r->http_status == 400)
			return SVC_BILL_ITEM_UNKNOWN;
		return SVC_BILL_PROVIDER_ERROR;
	}
	if (json_parse(&doc, toks, PROV_TOKS, r->body, r->body_len, &why) !=
	            CODEC_OK ||
	    flw_bill_validate_parse(v, &doc, &e) != PROV_OK)
		return SVC_BILL_PROVIDER_ERROR;
	return v->is_valid ? SVC_BILL_VALID : SVC_BILL_CUSTOMER_UNKNOWN;
}

static void
validate_done(void *arg, const struct ncurl_result *r)
{
	struct bop *o = arg;
	struct flw_bill_validation *v = xcalloc(1, sizeof *v);
	const struct currency *ngn = money_currency_by_alpha(BILL_CURRENCY);
	const char *why = NULL;
	char buf[2048];
	struct json_w w;
	size_t n = 0;

	switch (validate_read(r, v)) {
	case SVC_BILL_VALID:
		break;
	case SVC_BILL_UNANSWERED:
	case SVC_BILL_DISABLED:
		net_http_error(o->req, 504, "provider_unavailable",
		               "Flutterwave did not answer; try again");
		goto out;
	case SVC_BILL_CUSTOMER_UNKNOWN:
		net_http_error(o->req, 422, "customer_unknown",
		               "the biller knows no such customer");
		goto out;
	case SVC_BILL_ITEM_UNKNOWN:
		net_http_error(o->req, 422, "item_unknown",
		               "unknown item_code / biller_code pair");
		goto out;
	case SVC_BILL_PROVIDER_ERROR:
		net_http_error(o->req, 502, "provider_error",
		               "Flutterwave refused, failed or garbled the "
		               "validation");
		goto out;
	}
	json_w_init(&w, buf, sizeof buf);
	json_w_obj_begin(&w);
	json_w_key(&w, "item_code");
	json_w_cstr(&w, o->v.item_code);
	json_w_key(&w, "biller_code");
	json_w_cstr(&w, o->v.biller_code);
	json_w_key(&w, "customer");
	json_w_cstr(&w, o->v.customer);
	json_w_key(&w, "customer_name");
	json_w_cstr(&w, v->name);
	json_w_key(&w, "address");
	json_w_cstr(&w, v->address);
	json_w_key(&w, "amount_due");
	if (v->has_amount_due)
		amount_w(&w, ngn, v->amount_due_minor);
	else
		json_w_null(&w);
	json_w_key(&w, "fee");
	amount_w(&w, ngn, v->fee_minor);
	json_w_key(&w, "minimum");
	amount_w(&w, ngn, v->minimum_minor);
	json_w_key(&w, "maximum");
	amount_w(&w, ngn, v->maximum_minor);
	json_w_key(&w, "currency");
	json_w_cstr(&w, BILL_CURRENCY);
	json_w_obj_end(&w);
	if (json_w_finish(&w, &n, &why) != CODEC_OK)
		net_http_error(o->req, 502, "provider_error", why);
	else
		net_http_reply(o->req, 200, "application/json", buf, n);
out:
	free(v);
	bop_free(o);
}

/* Starts the validation call of v; done(arg, r) gets the answer.  0;
 * -1 with *why: the codes or customer number cannot be sent; -2 with
 * *why: the call cannot start. */
static int
validate_call(struct net_prov *np, const struct svc_bill_validate *v,
              void (*done)(void *, const struct ncurl_result *), void *arg,
              const char **why)
{
	char path[512], url[1024];
	struct ncurl_req rq;
	size_t pn = 0;

	if (flw_bill_validate_path(path, sizeof path, v->item_code,
	                           v->biller_code, v->customer, &pn,
	                           why) != CODEC_OK)
		return -1;
	snprintf(url, sizeof url, "%s%s", prov_cfg(np)->bills_flw_base_url,
	         path);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = F(np)->auth;
	rq.n_headers = 1;
	rq.endpoint = "flw.bill_validate";
	return ncurl_submit(prov_curl(np), &rq, done, arg, why) != 0 ? -2 : 0;
}

static void validate_send(struct bop *o);

/* item_code -> biller_code from the categories (docs/payments.md §8.1):
 * into dst, or false with the error answered. */
static bool
resolve_biller(struct bop *o, const struct svc_bill_cat *cats, size_t n,
               int err_status, const char *err_code, const char *err_msg,
               const char *item_code, char *dst, size_t cap)
{
	const struct svc_bill_cat *c;
	bool ambiguous;

	if (err_code != NULL) {
		net_http_error(o->req, err_status, err_code, err_msg);
		return false;
	}
	c = svc_bill_cat_find(cats, n, item_code, &ambiguous);
	if (c == NULL) {
		net_http_error(o->req, 422,
		               ambiguous ? "item_ambiguous" : "item_unknown",
		               ambiguous ? "several billers list this item_code: "
		                           "give biller_code"
		                         : "no biller lists this item_code "
		                           "(GET /v1/bills/categories)");
		return false;
	}
	strlcpy_s(dst, c->biller_code, cap);
	return true;
}

static void
validate_resolved(void *arg, const struct svc_bill_cat *cats, size_t n,
                  int err_status, const char *err_code, const char *err_msg)
{
	struct bop *o = arg;

	if (!resolve_biller(o, cats, n, err_status, err_code, err_msg,
	                    o->v.item_code, o->v.biller_code,
	                    sizeof o->v.biller_code)) {
		bop_free(o);
		return;
	}
	validate_send(o);
}

static void
handle_validate(struct net_prov *np, struct evhttp_request *req,
                const char *body, size_t len)
{
	struct bop *o = bop_new(np, req);
	struct svc_error e;

	if (svc_bill_parse_validate(&o->v, body, len, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		bop_free(o);
		return;
	}
	if (o->v.biller_code[0] == '\0') {
		/* resolved from the categories first (§8.1) */
		billcat_get(np, F(np)->cat, validate_resolved, o);
		return;
	}
	validate_send(o);
}

static void
validate_send(struct bop *o)
{
	const char *why = NULL;

	switch (validate_call(o->np, &o->v, validate_done, o, &why)) {
	case 0:
		return;
	case -1:
		net_http_error(o->req, 422, "customer_invalid", why);
		break;
	default:
		net_http_error(o->req, 503, "provider_unavailable", why);
		break;
	}
	bop_free(o);
}

/* ---- in-process validation (POS BILL_VALIDATE) */

struct bcheck {
	struct net_prov *np;
	void (*cb)(void *arg, const struct svc_bill_check *r);
	void *arg;
	struct svc_bill_validate v; /* an item code alone: resolved here */
};

static void
check_done(void *arg, const struct ncurl_result *r)
{
	struct bcheck *k = arg;
	struct flw_bill_validation *v = xcalloc(1, sizeof *v);
	struct svc_bill_check res;

	memset(&res, 0, sizeof res);
	res.outcome = validate_read(r, v);
	if (res.outcome == SVC_BILL_VALID) {
		strlcpy_s(res.name, v->name, sizeof res.name);
		res.has_due = v->has_amount_due;
		res.due_minor = v->amount_due_minor;
	}
	free(v);
	prov_busy_inc(k->np, -1);
	k->cb(k->arg, &res);
	free(k);
}

/* ---- an item code alone (POS): its biller from the categories (§8.1) */

struct bresolve {
	struct net_prov *np;
	char item[STORE_BILL_CODE_MAX + 1];
	void (*cb)(void *arg, const char *biller_code, enum svc_bill_outcome o);
	void *arg;
};

static void
resolve_done(void *arg, const struct svc_bill_cat *cats, size_t n,
             int err_status, const char *err_code, const char *err_msg)
{
	struct bresolve *r = arg;
	const struct svc_bill_cat *c = NULL;
	bool ambiguous = false;

	(void)err_status;
	(void)err_msg;
	if (err_code == NULL)
		c = svc_bill_cat_find(cats, n, r->item, &ambiguous);
	prov_busy_inc(r->np, -1);
	/* unknown, or listed by two billers (give biller:item): the
	 * biller is unknown; the categories not fetched: try later */
	r->cb(r->arg, c != NULL ? c->biller_code : NULL,
	      c != NULL            ? SVC_BILL_VALID
	      : err_code != NULL ? SVC_BILL_UNANSWERED
	                         : SVC_BILL_ITEM_UNKNOWN);
	free(r);
}

int
net_bill_resolve(struct net_prov *np, const char *item_code,
                 void (*cb)(void *arg, const char *biller_code,
                            enum svc_bill_outcome o),
                 void *arg)
{
	struct bresolve *r;

	if (!prov_driver_on(np, &prov_drv_flwbill))
		return -1;
	r = xcalloc(1, sizeof *r);
	r->np = np;
	strlcpy_s(r->item, item_code, sizeof r->item);
	r->cb = cb;
	r->arg = arg;
	prov_busy_inc(np, 1);
	billcat_get(np, F(np)->cat, resolve_done, r);
	return 0;
}

/* The biller of an item code alone is known: the validation call. */
static void
check_resolved(void *arg, const char *biller_code, enum svc_bill_outcome o)
{
	struct bcheck *k = arg;
	struct svc_bill_check res;
	const char *why = NULL;
	int rc = -3;

	if (biller_code != NULL) {
		strlcpy_s(k->v.biller_code, biller_code,
		          sizeof k->v.biller_code);
		prov_busy_inc(k->np, 1);
		if ((rc = validate_call(k->np, &k->v, check_done, k, &why)) ==
		    0)
			return;
		prov_busy_inc(k->np, -1);
		o = rc == -1 ? SVC_BILL_CUSTOMER_UNKNOWN : SVC_BILL_UNANSWERED;
	}
	memset(&res, 0, sizeof res);
	res.outcome = o;
	k->cb(k->arg, &res);
	free(k);
}

int
net_bill_validate(struct net_prov *np, const struct svc_bill_validate *v,
                  void (*cb)(void *arg, const struct svc_bill_check *r),
                  void *arg)
{
	struct bcheck *k;
	const char *why = NULL;
	int rc;

	if (!prov_driver_on(np, &prov_drv_flwbill))
		return -1;
	k = xcalloc(1, sizeof *k);
	k->np = np;
	k->cb = cb;
	k->arg = arg;
	if (v->biller_code[0] == '\0') {
		/* an item code alone: resolved first, as the API does */
		k->v = *v;
		if (net_bill_resolve(np, v->item_code, check_resolved, k) ==
		    0)
			return 0;
		free(k);
		return -1;
	}
	prov_busy_inc(np, 1);
	if ((rc = validate_call(np, v, check_done, k, &why)) != 0) {
		prov_busy_inc(np, -1);
		free(k);
		return rc - 1;
	}
	return 0;
}

/* ---- POST /v1/bills */

/*
 * The storage half of creating a bill paid from src (worker thread): the
 * holding and biller accounts checked, its fee set (§13), then the
 * payment written (with its POS link when link != NULL), not yet funded.
 * STORE_OK: created, or *err_code (provider_misconfigured, a fee
 * refusal) with the HTTP *status and *err_msg, and nothing written;
 * STORE_CONFLICT: p->pay.ref exists and p is the stored payment.
 */
enum store_rc
net_bill_store(const struct net_prov *np, struct store *st,
               struct store_prov *p, const struct ledger_account *src,
               const struct store_pos_link *link, int *status,
               const char **err_code, const char **err_msg)
{
	const struct config *cfg = prov_cfg(np);
	struct ledger_account hold, pay;
	enum store_rc rc;

	*err_code = NULL;
	if ((rc = st->ops->account_by_code(st, cfg->bills_holding_account,
	                                   &hold)) != STORE_OK &&
	    rc != STORE_NOT_FOUND)
		return rc;
	if (rc == STORE_OK &&
	    (rc = st->ops->account_by_code(st, cfg->bills_payable_account,
	                                   &pay)) != STORE_OK &&
	    rc != STORE_NOT_FOUND)
		return rc;
	if (rc == STORE_NOT_FOUND || hold.type != LEDGER_ACCT_SUSPENSE ||
	    hold.currency != p->pay.currency ||
	    pay.type != LEDGER_ACCT_BILLER_PAYABLE ||
	    pay.currency != p->pay.currency) {
		*status = 503;
		*err_code = "provider_misconfigured";
		*err_msg = "bills_holding_account (suspense) or "
		           "bills_payable_account (biller_payable) is missing "
		           "or not in NGN";
		return STORE_OK;
	}
	p->clearing_account_id = hold.id;
	p->target_account_id = pay.id;
	p->bill.source_account_id = src->id;
	/* the fee and the agent's commission (docs/payments.md §13) */
	if (prov_fee_refused(st, cfg, p, src->type, status, err_code, err_msg,
	                     &rc))
		return rc;
	return link != NULL ? st->ops->pos_pay_create(st, p, link)
	                    : st->ops->prov_create(st, p);
}

static enum store_rc
create_call(struct store *st, struct dbq_job *job)
{
	struct bop *o = job->arg;
	struct ledger_account src;
	uint16_t ngn = o->b.cur->numeric;
	uint8_t want[32];
	enum store_rc rc;

	rc = st->ops->account_by_code(st, o->b.source, &src);
	if (rc == STORE_NOT_FOUND) {
		o->status = 422;
		o->err_code = "account_unknown";
		o->err_msg = "source: no account with this code";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if ((src.type != LEDGER_ACCT_AGENT_FLOAT &&
	     src.type != LEDGER_ACCT_CUSTOMER_WALLET) ||
	    src.currency != ngn) {
		o->status = 422;
		o->err_code = src.currency != ngn ? "currency_mismatch"
		                                  : "account_type";
		o->err_msg = "source must be an agent_float or "
		             "customer_wallet account in the bill's currency";
		return STORE_OK;
	}
	memcpy(want, o->p.req_hash, sizeof want);
	rc = net_bill_store(o->np, st, &o->p, &src, NULL, &o->status,
	                    &o->err_code, &o->err_msg);
	if (rc == STORE_OK && o->err_code != NULL)
		return STORE_OK;
	if (rc == STORE_CONFLICT) {
		o->is_replay = true;
		o->status = util_ct_memcmp(want, o->p.req_hash, sizeof want) ==
		                            0 &&
		                            o->p.kind == STORE_PROV_BILL
		                    ? 200
		                    : 409;
		return STORE_OK;
	}
	if (rc == STORE_OK)
		o->status = 202;
	return rc;
}

static void
log_created(const struct bop *o, const char *outcome)
{
	log_msg(LOG_PROV, LOG_LEVEL_INFO,
	        "event=bill_created ref=%s item=%s customer=%s amount=%lld "
	        "outcome=%s replay=%d",
	        o->p.pay.ref, o->p.bill.item_code, o->p.bill.customer,
	        (long long)o->p.pay.amount_minor, outcome, o->is_replay);
}

static void
reply_created(struct bop *o)
{
	if (o->is_replay)
		evhttp_add_header(evhttp_request_get_output_headers(o->req),
		                  "Idempotent-Replayed", "true");
	reply_bill(o->req, o->is_replay ? 200 : 202, &o->p);
}

/* A bill that failed at funding: answered with the ledger's refusal. */
static bool
reply_declined(struct bop *o)
{
	int i;

	if (o->p.pay.state != PAY_FAILED || o->p.pay.txn_id != 0)
		return false;
	for (i = 0; i < LEDGER_RC_COUNT; i++)
		if (i != LEDGER_OK &&
		    strcmp(o->p.result_code, ledger_rc_name((enum ledger_rc)i)) ==
		            0) {
			net_http_error(o->req,
			               svc_admin_status((enum ledger_rc)i),
			               o->p.result_code,
			               "the source account cannot pay this bill");
			return true;
		}
	return false;
}

static void
declined_done(struct dbq_job *job)
{
	struct bop *o = job->arg;

	if (job->call_rc != STORE_OK && job->call_rc != STORE_CONFLICT) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
	} else {
		o->p.pay.state = PAY_FAILED;
		strlcpy_s(o->p.result_code, o->u.result_code,
		          sizeof o->p.result_code);
		if (!reply_declined(o))
			net_http_error(o->req, 422, o->p.result_code,
			               "the source account cannot pay this "
			               "bill");
	}
	bop_free(o);
}

static enum store_rc
declined_call(struct store *st, struct dbq_job *job)
{
	struct bop *o = job->arg;

	return st->ops->prov_update(st, &o->u, util_now_ms());
}

static void
fund_done(struct dbq_job *job)
{
	struct bop *o = job->arg;
	enum ledger_rc rc = job->res.rc;

	if (rc == LEDGER_OK) {
		o->p.pay.state = PAY_PENDING;
		o->p.pay.txn_id = job->res.txn_id;
		log_created(o, "funded");
		reply_created(o);
		prov_kick(o->np);
		bop_free(o);
		return;
	}
	if (rc == LEDGER_RETRY) {
		net_http_error(o->req, 503, "retry_later",
		               "storage busy; retry with the same "
		               "Idempotency-Key");
		bop_free(o);
		return;
	}
	/* declined (insufficient_funds, account_closed, a limit): the
	 * bill fails, nothing was sent, nothing moved */
	log_created(o, ledger_rc_name(rc));
	svc_bill_fund_declined(&o->p, rc, &o->u);
	memset(&o->job, 0, sizeof o->job);
	o->job.arg = o;
	o->job.call = declined_call;
	o->job.done = declined_done;
	if (dbq_post(prov_dbq(o->np), &o->job) != 0) {
		net_http_error(o->req, 503, "busy", "retry later");
		bop_free(o);
	}
}

static void
created_done(struct dbq_job *job)
{
	struct bop *o = job->arg;

	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
		bop_free(o);
		return;
	}
	if (o->status == 409) {
		net_http_error(o->req, 409, "idempotency_key_mismatch",
		               "this Idempotency-Key was used for another "
		               "request");
		bop_free(o);
		return;
	}
	if (o->err_code != NULL) {
		net_http_error(o->req, o->status, o->err_code, o->err_msg);
		bop_free(o);
		return;
	}
	if (o->p.pay.state == PAY_CREATED &&
	    o->p.call_state == STORE_CALL_TO_SEND) {
		/* new, or a repeat of one whose funding was never decided
		 * (a crash, a busy ledger): fund it now; the ledger's key
		 * makes a second funding impossible */
		svc_bill_fund_req(&o->p, util_now_ms(), &o->u, &o->job.req);
		o->job.call = NULL;
		o->job.done = fund_done;
		if (dbq_post(prov_dbq(o->np), &o->job) != 0) {
			net_http_error(o->req, 503, "busy",
			               "the server is at capacity; retry with "
			               "the same Idempotency-Key");
			bop_free(o);
		}
		return;
	}
	if (!reply_declined(o))
		reply_created(o);
	bop_free(o);
}

/* The row of a new bill b under payment reference ref (req_hash left to
 * the caller).  0, or -1 without randomness. */
static int
bill_fill(struct net_prov *np, const struct svc_bill_pay *b, const char *ref,
          int64_t now, struct store_prov *p)
{
	memset(p, 0, sizeof *p);
	strlcpy_s(p->pay.ref, ref, sizeof p->pay.ref);
	p->pay.currency = b->cur->numeric;
	p->pay.amount_minor = b->amount_minor;
	p->pay.created_ms = now;
	p->kind = STORE_PROV_BILL;
	strlcpy_s(p->provider, BILL_PROVIDER, sizeof p->provider);
	strlcpy_s(p->bill.biller_code, b->v.biller_code,
	          sizeof p->bill.biller_code);
	strlcpy_s(p->bill.item_code, b->v.item_code, sizeof p->bill.item_code);
	strlcpy_s(p->bill.customer, b->v.customer, sizeof p->bill.customer);
	strlcpy_s(p->bill.customer_name, b->customer_name,
	          sizeof p->bill.customer_name);
	if (prov_random_ref(p->client_ref, BILL_REF_LEN) != 0)
		return -1;
	/* not due until funded (svc_bill.h): an unfunded bill is only
	 * looked at again at its deadline, to fail it */
	p->call_state = STORE_CALL_TO_SEND;
	p->deadline_ms = now + prov_policy(np)->deadline_ms;
	p->next_at_ms = p->deadline_ms;
	return 0;
}

const char *
net_bill_prep(struct net_prov *np, const struct svc_bill_pay *b,
              const char *ref, int64_t now_ms, struct store_prov *p)
{
	if (!prov_driver_on(np, &prov_drv_flwbill))
		return "provider_disabled";
	if (b->cur == NULL ||
	    strcmp(b->cur->alpha, BILL_CURRENCY) != 0)
		return "currency_unsupported";
	return bill_fill(np, b, ref, now_ms, p) != 0 ? "retry_later" : NULL;
}

static void
create_post(struct bop *o)
{
	o->job.call = create_call;
	o->job.done = created_done;
	if (dbq_post(prov_dbq(o->np), &o->job) != 0) {
		net_http_error(o->req, 503, "busy",
		               "the server is at capacity; retry later");
		bop_free(o);
	}
}

static void
create_resolved(void *arg, const struct svc_bill_cat *cats, size_t n,
                int err_status, const char *err_code, const char *err_msg)
{
	struct bop *o = arg;

	if (!resolve_biller(o, cats, n, err_status, err_code, err_msg,
	                    o->p.bill.item_code, o->p.bill.biller_code,
	                    sizeof o->p.bill.biller_code)) {
		bop_free(o);
		return;
	}
	create_post(o);
}

static void
handle_create(struct net_prov *np, struct evhttp_request *req,
              const char *body, size_t len)
{
	const char *key = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Idempotency-Key");
	struct svc_error e;
	struct bop *o;
	int64_t now = util_now_ms();

	if (svc_admin_check_key(key, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		return;
	}
	if (strlen(key) > PAYMENT_REF_MAX - 5) { /* "bill:" + key */
		net_http_error(req, 400, "idempotency_key_invalid",
		               "Idempotency-Key: at most 59 bytes for a bill");
		return;
	}
	o = bop_new(np, req);
	if (svc_bill_parse_pay(&o->b, body, len, BILL_CURRENCY, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		bop_free(o);
		return;
	}
	{
		char ref[PAYMENT_REF_MAX + 1];

		snprintf(ref, sizeof ref, "bill:%s", key);
		if (bill_fill(np, &o->b, ref, now, &o->p) != 0) {
			net_http_error(req, 503, "retry_later",
			               "no randomness");
			bop_free(o);
			return;
		}
	}
	svc_bill_pay_hash(&o->b, o->p.req_hash);
	if (o->p.bill.biller_code[0] == '\0') {
		/* resolved from the categories first (§8.1); the hash is
		 * of the request as sent */
		billcat_get(np, F(np)->cat, create_resolved, o);
		return;
	}
	create_post(o);
}

/* ---- GET /v1/bills/{ref} */

static enum store_rc
get_call(struct store *st, struct dbq_job *job)
{
	struct bop *o = job->arg;

	return st->ops->prov_get(st, o->p.pay.ref, NULL, NULL, NULL, &o->p);
}

static void
get_done(struct dbq_job *job)
{
	struct bop *o = job->arg;

	if (job->call_rc == STORE_OK && o->p.kind == STORE_PROV_BILL)
		reply_bill(o->req, 200, &o->p);
	else if (job->call_rc == STORE_OK || job->call_rc == STORE_NOT_FOUND)
		net_http_error(o->req, 404, "bill_unknown",
		               "no bill payment with this reference");
	else
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
	bop_free(o);
}

static void
handle_get(struct net_prov *np, struct evhttp_request *req, const char *ref)
{
	struct bop *o;
	char *dec = evhttp_uridecode(ref, 0, NULL);

	if (dec == NULL || dec[0] == '\0' || strlen(dec) > PAYMENT_REF_MAX) {
		free(dec);
		net_http_error(req, 404, "bill_unknown",
		               "no bill payment with this reference");
		return;
	}
	o = bop_new(np, req);
	strlcpy_s(o->p.pay.ref, dec, sizeof o->p.pay.ref);
	free(dec);
	o->job.call = get_call;
	o->job.done = get_done;
	if (dbq_post(prov_dbq(np), &o->job) != 0) {
		net_http_error(req, 503, "busy", "the server is at capacity");
		bop_free(o);
	}
}

void
net_bill_http(struct net_prov *np, struct evhttp_request *req,
              const char *path)
{
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *body;

	if (!prov_driver_on(np, &prov_drv_flwbill)) {
		net_http_error(req, 503, "provider_disabled",
		               "bill payments are not configured "
		               "(bills_flw_base_url)");
		return;
	}
	if (strcmp(path, "/v1/bills") == 0 ||
	    strcmp(path, "/v1/bills/validate") == 0) {
		if (cmd != EVHTTP_REQ_POST) {
			net_http_error(req, 405, "method_not_allowed",
			               "use POST");
			return;
		}
		body = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
		if (path[9] == '\0')
			handle_create(np, req, body ? body : "", len);
		else
			handle_validate(np, req, body ? body : "", len);
		return;
	}
	if (cmd != EVHTTP_REQ_GET) {
		net_http_error(req, 405, "method_not_allowed", "use GET");
		return;
	}
	if (strcmp(path, "/v1/bills/categories") == 0) {
		billcat_http(np, F(np)->cat, req);
		return;
	}
	handle_get(np, req, path + 10);
}
