/*
 * sb_orange.c - Orange Money Web Payment ("WebPay") as soko-sandbox plays
 * it (reference/wire-formats.md §3.1; tests/sandbox/README.md "Orange").
 *
 * Token (client credentials, form body), webpayment init (201 with
 * pay_token and notif_token), transactionstatus, and the notification to
 * notif_url, whose only proof of origin is notif_token.  The customer
 * pays on Orange's web page, so outcomes are chosen by amount.
 */
#include "sb.h"

#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#define MAGIC_FAILED  9901 /* amount: the customer's payment fails */
#define MAGIC_EXPIRED 9902 /* amount: the pay_token expires unpaid */
#define MAGIC_PENDING 9903 /* amount: never completes */

static void
or_err(struct sb_rq *rq, int status, int code, const char *msg,
       const char *desc)
{
	sb_rq_json(rq, status,
	           json_pack("{s:i,s:s,s:s}", "code", code, "message", msg,
	                     "description", desc));
}

void
sb_orange_error500(struct sb_rq *rq)
{
	or_err(rq, 500, 1, "Internal error",
	       "The service encountered an unexpected error.");
}

static void
hex_token(struct sb *sb, char *dst, size_t n)
{
	sb_rng_chars(&sb->rng_id, dst, n, "0123456789abcdef");
}

static void
token(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	const char *ct = sb_rq_header(rq, "Content-Type");
	struct evkeyvalq form;
	const char *gt;
	int64_t ttl = sb->cr.token_ttl_s ? sb->cr.token_ttl_s : 7776000;
	char tok[80];

	if (rq->method != EVHTTP_REQ_POST) {
		or_err(rq, 405, 405, "Method not allowed", "Use POST.");
		return;
	}
	if (!sb_basic_ok(sb_rq_header(rq, "Authorization"), sb->cr.orange_id,
	                 sb->cr.orange_secret)) {
		sb_rq_json(rq, 401,
		           json_pack("{s:s,s:s}", "error", "invalid_client",
		                     "error_description",
		                     "The requested service needs credentials, "
		                     "but the ones provided were invalid."));
		return;
	}
	TAILQ_INIT(&form);
	if (ct == NULL ||
	    strncmp(ct, "application/x-www-form-urlencoded", 33) != 0 ||
	    evhttp_parse_query_str(rq->body, &form) != 0 ||
	    (gt = evhttp_find_header(&form, "grant_type")) == NULL ||
	    strcmp(gt, "client_credentials") != 0) {
		evhttp_clear_headers(&form);
		sb_rq_json(rq, 400,
		           json_pack("{s:s,s:s}", "error",
		                     "unsupported_grant_type",
		                     "error_description",
		                     "grant_type=client_credentials in a form "
		                     "body is required"));
		return;
	}
	evhttp_clear_headers(&form);
	sb_token_issue(sb, SB_OP_ORANGE_TOKEN, ttl, tok, sizeof(tok));
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:I}", "token_type", "Bearer",
	                     "access_token", tok, "expires_in",
	                     (json_int_t)ttl));
}

static bool
url_ok(const char *s)
{
	struct sb_url u;

	return s != NULL && sb_url_parse(&u, s) == 0;
}

/* Answers 400 for a body field; returns -1 for the caller to return. */
static int
bad(struct sb_rq *rq, const char *what)
{
	or_err(rq, 400, 21, "Invalid body field", what);
	return -1;
}

static int
webpayment(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *mk = sb_jstr(j, "merchant_key"),
		   *cur = sb_jstr(j, "currency");
	const char *oid = sb_jstr(j, "order_id"),
		   *ref = sb_jstr(j, "reference");
	const char *lang = sb_jstr(j, "lang");
	const json_t *amount = json_object_get(j, "amount");
	struct sb_charge *c;
	char pay[65], notif[33], url[160], ts[16];
	json_int_t a;

	if (mk == NULL || strcmp(mk, sb->cr.orange_merchant_key) != 0)
		return bad(rq, "merchant_key is not valid");
	if (cur == NULL || strcmp(cur, sb->cr.orange_currency) != 0)
		return bad(rq, "currency is not valid");
	if (oid == NULL || *oid == '\0' || strlen(oid) > 30)
		return bad(rq, "order_id: 1 to 30 characters");
	if (!json_is_integer(amount) || (a = json_integer_value(amount)) <= 0 ||
	    a > 100000000000)
		return bad(rq, "amount: a positive integer");
	if (!url_ok(sb_jstr(j, "return_url")))
		return bad(rq, "return_url is not valid");
	if (!url_ok(sb_jstr(j, "cancel_url")))
		return bad(rq, "cancel_url is not valid");
	if (!url_ok(sb_jstr(j, "notif_url")))
		return bad(rq, "notif_url is not valid");
	if (lang != NULL && strcmp(lang, "fr") != 0 && strcmp(lang, "en") != 0)
		return bad(rq, "lang: fr or en");
	if (ref != NULL && strlen(ref) > 30)
		return bad(rq, "reference: at most 30 characters");
	if (sb_charge_by_cref(sb, SB_ORANGE, oid) != NULL)
		return bad(rq, "order_id has already been used");
	c = sb_charge_new(sb, SB_ORANGE, SB_K_WEBPAYMENT);
	if (c == NULL) {
		sb_orange_error500(rq);
		return -1;
	}
	do
		hex_token(sb, pay, 64);
	while (sb_charge_by_ref(sb, SB_ORANGE, pay) != NULL);
	hex_token(sb, notif, 32);
	sb_copy(c->ref, sizeof(c->ref), pay);
	sb_copy(c->cref, sizeof(c->cref), oid);
	sb_fmt_time(ts, sizeof(ts), sb_now_ms(), 0, "%y%m%d.%H%M");
	snprintf(c->alt, sizeof(c->alt), "MP%s.A%05u", ts,
	         (unsigned)(sb_rng_next(&sb->rng_id) % 100000));
	sb_copy(c->currency, sizeof(c->currency), cur);
	c->cents = (int64_t)a * 100;
	c->url = sb_xstrdup(sb_jstr(j, "notif_url"));
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	c->echo = json_pack("{s:s}", "notif_token", notif);
	sb_copy(c->code, sizeof(c->code), "SUCCESS");
	if (a == MAGIC_FAILED) {
		c->outcome = SB_FAILED;
		sb_copy(c->code, sizeof(c->code), "FAILED");
	} else if (a == MAGIC_EXPIRED) {
		c->outcome = SB_FAILED;
		sb_copy(c->code, sizeof(c->code), "EXPIRED");
	}
	sb_charge_index(sb, c);
	rq->charge = c;
	if (a != MAGIC_PENDING)
		sb_charge_schedule(sb, c);
	snprintf(
	    url, sizeof(url),
	    "https://webpayment-ow-sb.orange-money.com/payment/pay_token/%s",
	    pay);
	sb_rq_json(rq, 201,
	           json_pack("{s:i,s:s,s:s,s:s,s:s}", "status", 201, "message",
	                     "OK", "pay_token", pay, "payment_url", url,
	                     "notif_token", notif));
	return 0;
}

static const char *
status_text(const struct sb_charge *c)
{
	if (c->state == SB_PENDING)
		return "INITIATED";
	return c->state == SB_SUCCEEDED ? "SUCCESS" : c->code;
}

static int
txstatus(struct sb_rq *rq, json_t *j)
{
	const char *oid = sb_jstr(j, "order_id"),
		   *pay = sb_jstr(j, "pay_token");
	const json_t *amount = json_object_get(j, "amount");
	struct sb_charge *c;

	if (oid == NULL || pay == NULL || !json_is_integer(amount))
		return bad(rq, "order_id, amount and pay_token are required");
	c = sb_charge_by_ref(rq->sb, SB_ORANGE, pay);
	if (c == NULL || strcmp(c->cref, oid) != 0 ||
	    c->cents != (int64_t)json_integer_value(amount) * 100) {
		or_err(rq, 404, 60, "Resource not found",
		       "no payment with this order_id, amount and pay_token");
		return -1;
	}
	/* UNCONFIRMED shape (§3.1): status, order_id, txnid */
	sb_rq_json(rq, 201,
	           json_pack("{s:s,s:s,s:s}", "status", status_text(c),
	                     "order_id", c->cref, "txnid",
	                     c->state == SB_SUCCEEDED ? c->alt : ""));
	return 0;
}

int
sb_orange_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                   struct sb_cbmsg *m)
{
	bool ok = (c->state == SB_SUCCEEDED) != lie;
	json_t *j;

	(void)sb;
	if (c->url == NULL || (strcmp(c->code, "EXPIRED") == 0 && !lie))
		return -1; /* an expired pay_token is never notified */
	j = json_pack("{s:s,s:O,s:s}", "status", ok ? "SUCCESS" : "FAILED",
	              "notif_token", json_object_get(c->echo, "notif_token"),
	              "txnid", c->alt);
	m->url = sb_xstrdup(c->url);
	m->body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (m->body == NULL)
		abort();
	return 0;
}

void
sb_orange_handle(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	const char *p = rq->path, *slash;
	const char *tok;
	enum sb_tok_rc trc;
	json_t *j = NULL;

	if (strcmp(p, "/oauth/v3/token") == 0 ||
	    strcmp(p, "/oauth/v2/token") == 0) {
		rq->op = SB_OP_ORANGE_TOKEN;
		sb_rq_faults(rq, NULL, false);
		token(rq);
		return;
	}
	/* /orange-money-webpay/{dev|cc}/v1/{webpayment|transactionstatus} */
	p += strlen("/orange-money-webpay/");
	slash = strchr(p, '/');
	if (slash != NULL &&
	    (slash - p == 3 ? strncmp(p, "dev", 3) == 0 : slash - p == 2)) {
		if (strcmp(slash, "/v1/webpayment") == 0)
			rq->op = SB_OP_ORANGE_WEBPAYMENT;
		else if (strcmp(slash, "/v1/transactionstatus") == 0)
			rq->op = SB_OP_ORANGE_STATUS;
	}
	if (rq->op == SB_OP_UNKNOWN) {
		or_err(rq, 404, 60, "Resource not found",
		       "The requested URI does not exist");
		return;
	}
	sb_rq_faults(rq, NULL, rq->op == SB_OP_ORANGE_WEBPAYMENT);
	tok = sb_bearer(sb_rq_header(rq, "Authorization"));
	trc = sb_token_check(sb, SB_OP_ORANGE_TOKEN, tok);
	if (trc == SB_TOK_OK && (rq->faults & SB_FBIT(SB_F_EXPIRED_TOKEN)))
		trc = SB_TOK_EXPIRED;
	if (trc == SB_TOK_EXPIRED) {
		or_err(rq, 401, 42, "Expired credentials",
		       "The requested service needs credentials, and the ones "
		       "provided were out-of-date.");
		return;
	}
	if (trc != SB_TOK_OK) {
		or_err(rq, 401, 41, "Invalid credentials",
		       "The requested service needs credentials, but the ones "
		       "provided were invalid.");
		return;
	}
	if (rq->method != EVHTTP_REQ_POST) {
		or_err(rq, 405, 405, "Method not allowed", "Use POST.");
		return;
	}
	j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j))
		bad(rq, "the body must be a JSON object");
	else if (rq->op == SB_OP_ORANGE_WEBPAYMENT)
		webpayment(rq, j);
	else
		txstatus(rq, j);
	json_decref(j);
}
