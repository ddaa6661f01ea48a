/*
 * net_billcat.c - Flutterwave bill categories on the loop (net_billcat.h).
 *
 * The list changes rarely and is large (every biller, every item): it is
 * fetched when first needed and kept for bills_categories_ttl_s.  Callers
 * that need it while a fetch is in flight wait for that fetch (one call at
 * a time, never a stampede).  A failed fetch keeps a copy that is stale by
 * at most one more TTL (a Flutterwave outage does not stop bills whose
 * item is known); older than that, the caller gets the error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "json.h"
#include "log.h"
#include "net_billcat.h"
#include "net_curl.h"
#include "net_http.h"
#include "net_prov_int.h"
#include "util.h"

/* JSON tokens of one answer: 2 + 31 per category (15 keys and values and
 * the object), with room for a few unknown fields each */
#define CAT_TOKS (8 + 40 * SVC_BILL_CATS_MAX)

struct waiter {
	struct waiter *next;
	billcat_fn fn;
	void *arg;
};

struct billcat {
	const char *auth;
	struct svc_bill_cat *cats; /* SVC_BILL_CATS_MAX, allocated once */
	size_t n;
	int64_t fetched_ms; /* monotonic; 0: never */
	bool fetching;
	struct waiter *waiters;
	struct net_prov *np;
};

struct billcat *
billcat_new(const char *auth)
{
	struct billcat *c = xcalloc(1, sizeof *c);

	c->auth = auth;
	return c;
}

void
billcat_free(struct billcat *c)
{
	struct waiter *w;

	if (c == NULL)
		return;
	while ((w = c->waiters) != NULL) {
		c->waiters = w->next;
		free(w);
	}
	free(c->cats);
	free(c);
}

static int64_t
ttl_ms(const struct net_prov *np)
{
	return prov_cfg(np)->bills_categories_ttl_s * 1000;
}

/* Ends every waiter with the cache (err_code NULL) or the error. */
static void
wake(struct billcat *c, int status, const char *code, const char *msg)
{
	struct waiter *w = c->waiters;

	c->waiters = NULL;
	while (w != NULL) {
		struct waiter *next = w->next;

		if (code == NULL)
			w->fn(w->arg, c->cats, c->n, 0, NULL, NULL);
		else
			w->fn(w->arg, NULL, 0, status, code, msg);
		free(w);
		w = next;
	}
}

static void
fetched(void *arg, const struct ncurl_result *r)
{
	struct billcat *c = arg;
	struct json_tok *toks = NULL;
	struct json_doc doc;
	struct svc_bill_cat *cats;
	const char *why = "no answer";
	size_t n = 0, skipped = 0;
	int64_t now = (util_mono_us() / 1000);

	c->fetching = false;
	if (c->cats == NULL)
		c->cats = xcalloc(SVC_BILL_CATS_MAX, sizeof *c->cats);
	/* parsed into a scratch table: a bad answer never replaces a good
	 * copy */
	cats = xcalloc(SVC_BILL_CATS_MAX, sizeof *cats);
	if (r->outcome == NCURL_ANSWERED && r->http_status == 200) {
		toks = xcalloc(CAT_TOKS, sizeof *toks);
		if (json_parse(&doc, toks, CAT_TOKS, r->body, r->body_len,
		               &why) == CODEC_OK &&
		    svc_bill_cats_parse(&doc, cats, SVC_BILL_CATS_MAX, &n,
		                        &skipped, &why) == 0) {
			memcpy(c->cats, cats, n * sizeof *cats);
			c->n = n;
			c->fetched_ms = now;
			why = NULL;
		}
	} else if (r->outcome == NCURL_ANSWERED) {
		why = "HTTP status not 200";
	}
	free(toks);
	free(cats);
	if (why == NULL) {
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=bill_categories n=%zu skipped=%zu", n, skipped);
		wake(c, 0, NULL, NULL);
		return;
	}
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=bill_categories_failed outcome=%s status=%ld why=\"%s\" "
	        "stale=%d",
	        ncurl_outcome_name(r->outcome), r->http_status, why,
	        c->fetched_ms != 0 && now - c->fetched_ms < 2 * ttl_ms(c->np));
	if (c->fetched_ms != 0 && now - c->fetched_ms < 2 * ttl_ms(c->np))
		wake(c, 0, NULL, NULL); /* stale by at most one more TTL */
	else if (r->outcome != NCURL_ANSWERED)
		wake(c, 503, "provider_unavailable",
		     "Flutterwave's bill categories are unavailable; try "
		     "again, or give biller_code");
	else
		wake(c, 502, "provider_error",
		     "Flutterwave's bill categories answer is unreadable");
}

void
billcat_get(struct net_prov *np, struct billcat *c, billcat_fn fn, void *arg)
{
	struct waiter *w;
	struct ncurl_req rq;
	char url[1024];
	const char *why = NULL;

	c->np = np;
	if (c->fetched_ms != 0 && (util_mono_us() / 1000) - c->fetched_ms < ttl_ms(np)) {
		fn(arg, c->cats, c->n, 0, NULL, NULL);
		return;
	}
	w = xcalloc(1, sizeof *w);
	w->fn = fn;
	w->arg = arg;
	w->next = c->waiters;
	c->waiters = w;
	if (c->fetching)
		return;
	snprintf(url, sizeof url, "%s/v3/bill-categories",
	         prov_cfg(np)->bills_flw_base_url);
	memset(&rq, 0, sizeof rq);
	rq.method = NCURL_GET;
	rq.url = url;
	rq.headers[0] = c->auth;
	rq.n_headers = 1;
	rq.endpoint = "flw.bill_categories";
	c->fetching = true;
	if (ncurl_submit(prov_curl(np), &rq, fetched, c, &why) != 0) {
		struct ncurl_result r = {.outcome = NCURL_NOT_SENT};

		fetched(c, &r);
	}
}

/* ---- GET /v1/bills/categories */

struct listing {
	struct evhttp_request *req;
	struct net_prov *np;
	char country[8], biller[STORE_BILL_CODE_MAX + 1];
	bool has_country, has_biller;
};

static void
list_ready(void *arg, const struct svc_bill_cat *cats, size_t n,
           int err_status, const char *err_code, const char *err_msg)
{
	struct listing *l = arg;
	const struct currency *ngn = money_currency_by_alpha("NGN");
	struct json_w w;
	const char *why = NULL;
	char *buf, a[48];
	size_t i, len = 0, cap = 256 + n * 1024;

	if (err_code != NULL) {
		net_http_error(l->req, err_status, err_code, err_msg);
		goto out;
	}
	buf = xmalloc(cap);
	json_w_init(&w, buf, cap);
	json_w_obj_begin(&w);
	json_w_key(&w, "categories");
	json_w_arr_begin(&w);
	for (i = 0; i < n; i++) {
		const struct svc_bill_cat *c = &cats[i];

		if (!svc_bill_cat_match(c, l->has_country ? l->country : NULL,
		                        l->has_biller ? l->biller : NULL))
			continue;
		json_w_obj_begin(&w);
		json_w_key(&w, "biller_code");
		json_w_cstr(&w, c->biller_code);
		json_w_key(&w, "item_code");
		json_w_cstr(&w, c->item_code);
		json_w_key(&w, "name");
		json_w_cstr(&w, c->name);
		json_w_key(&w, "biller_name");
		json_w_cstr(&w, c->biller_name);
		json_w_key(&w, "short_name");
		json_w_cstr(&w, c->short_name);
		json_w_key(&w, "label_name");
		json_w_cstr(&w, c->label_name);
		json_w_key(&w, "country");
		json_w_cstr(&w, c->country);
		json_w_key(&w, "is_airtime");
		json_w_bool(&w, c->is_airtime);
		json_w_key(&w, "amount");
		money_format(a, sizeof a, ngn, c->amount_minor);
		json_w_cstr(&w, a);
		json_w_key(&w, "provider_fee");
		money_format(a, sizeof a, ngn, c->fee_minor);
		json_w_cstr(&w, a);
		json_w_obj_end(&w);
	}
	json_w_arr_end(&w);
	json_w_obj_end(&w);
	if (json_w_finish(&w, &len, &why) != CODEC_OK)
		net_http_error(l->req, 500, "render_failed", why);
	else
		net_http_reply(l->req, 200, "application/json", buf, len);
	free(buf);
out:
	prov_busy_inc(l->np, -1);
	free(l);
}

void
billcat_http(struct net_prov *np, struct billcat *c,
             struct evhttp_request *req)
{
	const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
	const char *q = u != NULL ? evhttp_uri_get_query(u) : NULL;
	struct evkeyvalq args;
	struct evkeyval *kv;
	struct listing *l = xcalloc(1, sizeof *l);
	bool bad = false;

	TAILQ_INIT(&args);
	if (q != NULL && evhttp_parse_query_str(q, &args) != 0)
		bad = true;
	TAILQ_FOREACH(kv, &args, next)
	{
		if (strcmp(kv->key, "country") == 0 && !l->has_country &&
		    svc_admin_all_of(kv->value, "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 2,
		                     2)) {
			strlcpy_s(l->country, kv->value, sizeof l->country);
			l->has_country = true;
		} else if (strcmp(kv->key, "biller") == 0 && !l->has_biller &&
		           svc_admin_all_of(kv->value,
		                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
		                            "klmnopqrstuvwxyz0123456789_-",
		                            1, STORE_BILL_CODE_MAX)) {
			strlcpy_s(l->biller, kv->value, sizeof l->biller);
			l->has_biller = true;
		} else {
			bad = true;
		}
	}
	evhttp_clear_headers(&args);
	if (bad) {
		net_http_error(req, 400, "query_invalid",
		               "query: country=CC (2 capitals), biller=CODE, "
		               "each at most once");
		free(l);
		return;
	}
	l->req = req;
	l->np = np;
	prov_busy_inc(np, 1);
	billcat_get(np, c, list_ready, l);
}
