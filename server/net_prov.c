/*
 * net_prov.c - payments through providers on the loop (net_prov.h).
 *
 * Every piece of work is a `pop`: an API request, a janitor pass, a claim,
 * a provider call, a callback.  Storage work is a dbq job (never a call
 * from here); provider calls go through net_curl.  The order that keeps
 * money right (svc_prov.h): claim durably, then call; record the answer;
 * move money only on a status answer, in the same commit as the state.
 *
 * The providers' own APIs are spoken by the drivers (net_prov_<name>.c,
 * net_prov_int.h): M-Pesa Daraja, MTN MoMo, Paystack, Flutterwave and
 * Orange Money.
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
#include "net_prov_int.h"
#include "prov_mpesa.h"
#include "prov_sig.h"
#include "sha256.h"
#include "svc_admin.h"
#include "svc_bill.h"
#include "svc_prov.h"
#include "util.h"

static const struct prov_drv *const drivers[] = {
	&prov_drv_mpesa,
	&prov_drv_momo,
	&prov_drv_paystack,
	&prov_drv_flw,
	&prov_drv_orange,
	&prov_drv_flwbill, /* bill payments (net_bill.c) */
};
#define N_DRIVERS (sizeof drivers / sizeof drivers[0])

struct net_prov {
	struct event_base *base;
	struct dbq *dbq;
	const struct config *cfg;
	struct ncurl *nc;
	struct event *tick;
	struct svc_prov_policy pol;
	bool due_running, due_again, stopping;
	int64_t inflight;
	uint64_t rng; /* jitter (jittered()) */
	void *state[N_DRIVERS]; /* per driver; NULL: not configured */
	bool on[N_DRIVERS];
	bool any_on;
	/* told every final state written (net_prov_on_final) */
	void (*final_fn)(void *arg, const struct store_prov *p);
	void *final_arg;
};

static int
drv_index(const struct prov_drv *d)
{
	size_t i;

	for (i = 0; i < N_DRIVERS; i++)
		if (drivers[i] == d)
			return (int)i;
	return -1;
}

/* The index in drivers[] of the driver called name, configured or not;
 * N_DRIVERS if there is none. */
static size_t
drv_named(const char *name)
{
	size_t i;

	for (i = 0; i < N_DRIVERS; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			break;
	return i;
}

/* The enabled driver called name, or NULL. */
static const struct prov_drv *
drv_find(const struct net_prov *np, const char *name)
{
	size_t i = drv_named(name);

	return i < N_DRIVERS && np->on[i] ? drivers[i] : NULL;
}

const struct config *
prov_cfg(const struct net_prov *np)
{
	return np->cfg;
}

struct ncurl *
prov_curl(const struct net_prov *np)
{
	return np->nc;
}

void *
prov_state(const struct net_prov *np, const struct prov_drv *d)
{
	int i = drv_index(d);

	return i >= 0 ? np->state[i] : NULL;
}

/* ------------------------------------------------------------- helpers */

static struct pop *pop_new(struct net_prov *np, enum pop_kind kind,
                           struct evhttp_request *req);
static void pop_free(struct pop *o);
static void kick(struct net_prov *np);

/* what net_bill.c needs of the loop (net_prov_int.h) */
struct dbq *
prov_dbq(const struct net_prov *np)
{
	return np->dbq;
}

/*
 * The policy with its waits stretched by a random 0..25%: status queries
 * and re-sends of many payments that failed together (a provider outage)
 * must not all come back at the same instant.  xorshift64, seeded from
 * the CSPRNG at start: jitter needs no secrecy.
 */
static struct svc_prov_policy
jittered(struct net_prov *np)
{
	struct svc_prov_policy p = np->pol;
	uint64_t x = np->rng;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	np->rng = x;
	p.first_check_ms += p.first_check_ms * (int64_t)(x % 256) / 1024;
	p.check_every_ms += p.check_every_ms * (int64_t)((x >> 8) % 256) / 1024;
	p.resend_after_ms += p.resend_after_ms * (int64_t)((x >> 16) % 256) /
	                     1024;
	return p;
}

const struct svc_prov_policy *
prov_policy(const struct net_prov *np)
{
	return &np->pol;
}

bool
prov_driver_on(const struct net_prov *np, const struct prov_drv *d)
{
	int i = drv_index(d);

	return i >= 0 && np->on[i];
}

void
prov_kick(struct net_prov *np)
{
	kick(np);
}

void
prov_busy_inc(struct net_prov *np, int delta)
{
	np->inflight += delta;
}

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
	sha256_wipe(o->secret, sizeof o->secret);
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
	if (u->next_step != NULL && u->next_step != o->next_step) {
		strlcpy_s(o->next_step, u->next_step, sizeof o->next_step);
		u->next_step = o->next_step;
	}
	if (u->next_text != NULL && u->next_text != o->next_text) {
		strlcpy_s(o->next_text, u->next_text, sizeof o->next_text);
		u->next_text = o->next_text;
	}
	if (u->next_url != NULL && u->next_url != o->next_url) {
		strlcpy_s(o->next_url, u->next_url, sizeof o->next_url);
		u->next_url = o->next_url;
	}
}

static const char *
call_state_name(uint8_t s)
{
	static const char *const n[] = {"to_send", "sending", "accepted",
	                                "answer_lost", "done"};

	return s < 5 ? n[s] : "?";
}

/* The payment as the API shows it (docs/api.md §Payments), as one JSON
 * object into w (also the items of the reconciliation list). */
void
prov_json_payment(struct json_w *w, const struct store_prov *p)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	char amount[48] = "", fee[48] = "";
	/* the customer's next step matters while the payment is open */
	bool open = p->pay.state == PAY_CREATED || p->pay.state == PAY_PENDING;

	if (cur != NULL) {
		money_format(amount, sizeof amount, cur, p->pay.amount_minor);
		money_format(fee, sizeof fee, cur, p->fee_minor);
	}
	json_w_obj_begin(w);
	json_w_key(w, "ref");
	json_w_cstr(w, p->pay.ref);
	json_w_key(w, "state");
	json_w_cstr(w, payment_state_name(p->pay.state));
	json_w_key(w, "kind");
	json_w_cstr(w, p->kind == STORE_PROV_COLLECT  ? "collection"
	               : p->kind == STORE_PROV_BILL ? "bill"
	               : p->reverses_id != 0        ? "reversal"
	                                            : "disbursement");
	if (p->reverses_id != 0) {
		json_w_key(w, "reverses");
		json_w_cstr(w, p->reverses_ref);
	}
	json_w_key(w, "provider");
	json_w_cstr(w, p->provider);
	json_w_key(w, "amount");
	json_w_cstr(w, amount);
	json_w_key(w, "currency");
	json_w_cstr(w, cur != NULL ? cur->alpha : "");
	json_w_key(w, "fee"); /* docs/payments.md §13 */
	json_w_cstr(w, fee);
	json_w_key(w, "reference");
	json_w_cstr(w, p->client_ref);
	json_w_key(w, "provider_reference");
	json_w_cstr(w, p->provider_ref);
	json_w_key(w, "receipt");
	json_w_cstr(w, p->receipt);
	json_w_key(w, "result_code");
	json_w_cstr(w, p->result_code);
	json_w_key(w, "next_step");
	json_w_cstr(w, open ? p->next_step : "");
	json_w_key(w, "display_text");
	json_w_cstr(w, open ? p->next_text : "");
	json_w_key(w, "payment_url");
	json_w_cstr(w, open ? p->next_url : "");
	json_w_key(w, "call");
	json_w_cstr(w, call_state_name(p->call_state));
	json_w_key(w, "txn_id");
	json_w_int(w, p->pay.txn_id);
	json_w_key(w, "created_ms");
	json_w_int(w, p->pay.created_ms);
	json_w_obj_end(w);
}

static void
reply_payment(struct evhttp_request *req, int status,
              const struct store_prov *p)
{
	/* a payment open with a long next step (URL, text) fits */
	char buf[4096];
	struct json_w w;
	const char *why = NULL;
	size_t n = 0;

	json_w_init(&w, buf, sizeof buf);
	prov_json_payment(&w, p);
	if (json_w_finish(&w, &n, &why) != CODEC_OK) {
		/* provider text that is not UTF-8 would do it: say so
		 * rather than answer half a document */
		net_http_error(req, 500, "render_failed", why);
		return;
	}
	net_http_reply(req, status, "application/json", buf, n);
}

void
prov_reply_payment(struct evhttp_request *req, int status,
                   const struct store_prov *p)
{
	reply_payment(req, status, p);
}

const struct prov_drv *
prov_driver(const struct net_prov *np, const char *name)
{
	return drv_find(np, name);
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

/*
 * The storage half of creating a collection (worker thread): checks the
 * provider's clearing account, sets the fee (§13), then writes p (with
 * its POS link when link != NULL).  STORE_OK: created; STORE_CONFLICT:
 * p.ref exists, p is the stored payment; *err_code set (and STORE_OK)
 * with the HTTP *status and *err_msg when the clearing account is
 * missing or wrong or the fee refuses it: nothing written.
 */
enum store_rc
net_prov_collect_store(const struct net_prov *np, struct store *st,
                       struct store_prov *p, const char *clearing_code,
                       const struct ledger_account *target,
                       const struct store_pos_link *link, int *status,
                       const char **err_code, const char **err_msg)
{
	struct ledger_account clearing;
	enum store_rc rc;

	*err_code = NULL;
	rc = st->ops->account_by_code(st, clearing_code, &clearing);
	if (rc == STORE_NOT_FOUND ||
	    (rc == STORE_OK &&
	     (clearing.type != LEDGER_ACCT_PROVIDER_CLEARING ||
	      clearing.currency != p->pay.currency))) {
		*status = 503;
		*err_code = "provider_misconfigured";
		*err_msg = "the provider's clearing account is missing or not "
		           "a provider_clearing account in this currency";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	p->clearing_account_id = clearing.id;
	p->target_account_id = target->id;
	if (prov_fee_refused(st, np->cfg, p, target->type, status, err_code,
	                     err_msg, &rc))
		return rc; /* docs/payments.md §13 */
	return link != NULL ? st->ops->pos_pay_create(st, p, link)
	                    : st->ops->prov_create(st, p);
}

static enum store_rc
create_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	const struct config *cfg = o->np->cfg;
	struct ledger_account target;
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
	memcpy(want, o->p.req_hash, sizeof want);
	rc = net_prov_collect_store(o->np, st, &o->p,
	                            o->drv->clearing_account(cfg), &target,
	                            NULL, &o->status, &o->err_code,
	                            &o->err_msg);
	if (rc == STORE_OK && o->err_code != NULL)
		return STORE_OK;
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

static int
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* A reference the customer sees and the provider echoes: n characters
 * of an unambiguous [A-Z2-9] alphabet from the CSPRNG. */
int
prov_random_ref(char *dst, size_t n)
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

/*
 * The payment row of a new collection or disbursement, once its driver
 * accepted the request (collect_fill, disb_fill): reference, amount,
 * provider, MSISDN, the driver's client reference, due at once with the
 * configured deadline.  NULL, or the error code with *status and *msg.
 */
static const char *
row_fill(struct pop *o, const char *ref, int64_t now, enum store_prov_kind kind,
         int *status, const char **msg)
{
	strlcpy_s(o->p.pay.ref, ref, sizeof o->p.pay.ref);
	o->p.pay.currency = o->c.cur->numeric;
	o->p.pay.amount_minor = o->c.amount_minor;
	o->p.pay.created_ms = now;
	o->p.kind = kind;
	strlcpy_s(o->p.provider, o->c.provider, sizeof o->p.provider);
	strlcpy_s(o->p.msisdn, o->c.msisdn, sizeof o->p.msisdn);
	if (o->drv->client_ref(o) != 0) {
		*status = 503;
		*msg = "no randomness";
		return "retry_later";
	}
	o->p.call_state = STORE_CALL_TO_SEND;
	o->p.next_at_ms = now;
	o->p.deadline_ms = now + o->np->pol.deadline_ms;
	return NULL;
}

/*
 * A new collection o->c under payment reference ref: its provider (known,
 * configured, and taking this payment) into o->drv, the row into o->p
 * (req_hash left to the caller).  NULL, or an API error code with the
 * HTTP *status and *msg (static).
 */
static const char *
collect_fill(struct pop *o, const char *ref, int64_t now, int *status,
             const char **msg)
{
	struct net_prov *np = o->np;
	const char *code;
	size_t i;

	i = drv_named(o->c.provider);
	/* the bill driver is not a collection provider */
	if (i == N_DRIVERS || drivers[i] == &prov_drv_flwbill) {
		*status = 422;
		*msg = "provider must be one of: mpesa, momo, paystack, "
		       "flutterwave, orange";
		return "provider_unknown";
	}
	if (!np->on[i]) {
		*status = 503;
		*msg = "this provider is not configured";
		return "provider_disabled";
	}
	o->drv = drivers[i];
	if ((code = o->drv->check(np->cfg, &o->c, msg)) != NULL) {
		*status = 422;
		return code;
	}
	return row_fill(o, ref, now, STORE_PROV_COLLECT, status, msg);
}

const char *
net_prov_collect_prep(struct net_prov *np, const struct svc_collection *c,
                      const char *ref, int64_t now_ms, struct store_prov *p,
                      char *clearing, size_t cap, const char **msg)
{
	struct pop *o = pop_new(np, POP_CREATE, NULL);
	const char *code;
	int status;

	o->c = *c;
	*msg = "";
	code = collect_fill(o, ref, now_ms, &status, msg);
	if (code == NULL) {
		*p = o->p;
		strlcpy_s(clearing, o->drv->clearing_account(np->cfg), cap);
	}
	pop_free(o);
	return code;
}

void
net_prov_kick(struct net_prov *np)
{
	kick(np);
}

void
net_prov_on_final(struct net_prov *np,
                  void (*fn)(void *arg, const struct store_prov *p),
                  void *arg)
{
	np->final_fn = fn;
	np->final_arg = arg;
}

/* Tells the owner hook (net_prov_on_final) that o's payment is now in
 * the final state to_state, as o->u wrote it. */
static void
tell_final(struct pop *o, uint8_t to_state)
{
	struct store_prov p;

	if (o->np->final_fn == NULL ||
	    (to_state != PAY_SUCCEEDED && to_state != PAY_FAILED &&
	     to_state != PAY_REVERSED && to_state != PAY_UNKNOWN))
		return;
	p = o->p;
	p.pay.state = to_state;
	if (o->u.result_code != NULL)
		strlcpy_s(p.result_code, o->u.result_code,
		          sizeof p.result_code);
	if (o->u.receipt != NULL)
		strlcpy_s(p.receipt, o->u.receipt, sizeof p.receipt);
	o->np->final_fn(o->np->final_arg, &p);
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
	{
		char ref[PAYMENT_REF_MAX + 1];
		const char *code, *msg = "";
		int status;

		snprintf(ref, sizeof ref, "col:%s", key);
		if ((code = collect_fill(o, ref, now, &status, &msg)) != NULL) {
			net_http_error(req, status, code, msg);
			pop_free(o);
			return;
		}
	}
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

/* --------------------------------------------------- POST disbursements */

static enum store_rc get_call(struct store *st, struct dbq_job *job);

/* The accounts of a disbursement, and whether its ref exists already (a
 * repeat answered from the stored row, without a ledger trip). */
static enum store_rc
disb_accounts_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct ledger_account src;
	struct store_prov old;
	uint16_t cur = o->c.cur->numeric;
	enum store_rc rc;

	rc = st->ops->prov_get(st, o->p.pay.ref, NULL, NULL, NULL, &old);
	if (rc == STORE_OK) {
		o->status = util_ct_memcmp(old.req_hash, o->p.req_hash,
		                           sizeof old.req_hash) == 0
		                    ? 200
		                    : 409;
		o->p = old;
		return STORE_OK;
	}
	if (rc != STORE_NOT_FOUND)
		return rc;
	rc = st->ops->account_by_code(st, o->c.account, &src);
	if (rc == STORE_NOT_FOUND) {
		o->status = 422;
		o->err_code = "account_unknown";
		o->err_msg = "no account with this code";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if ((src.type != LEDGER_ACCT_MERCHANT_PAYABLE &&
	     src.type != LEDGER_ACCT_AGENT_FLOAT) ||
	    src.currency != cur) {
		o->status = 422;
		o->err_code = src.currency != cur ? "currency_mismatch"
		                                  : "account_type";
		o->err_msg = "a disbursement debits a merchant_payable or "
		             "agent_float account in the payment's currency";
		return STORE_OK;
	}
	return net_prov_disburse_accounts(o->np, st, &o->p, o->clearing,
	                                  o->hold, &src, &o->status,
	                                  &o->err_code, &o->err_msg);
}

/*
 * The accounts of a disbursement from src (worker thread): the
 * provider's clearing (clearing_code) and holding (hold_code) accounts
 * in the payment's currency, a floor on src, the fee (§13).  Fills p's
 * account ids; STORE_OK with *err_code (provider_misconfigured,
 * account_without_floor, a fee refusal), the HTTP *status and *err_msg
 * (nothing to do), or NULL.
 */
enum store_rc
net_prov_disburse_accounts(const struct net_prov *np, struct store *st,
                           struct store_prov *p, const char *clearing_code,
                           const char *hold_code,
                           const struct ledger_account *src, int *status,
                           const char **err_code, const char **err_msg)
{
	struct ledger_account hold, clearing;
	uint16_t cur = p->pay.currency;
	enum store_rc rc;

	*err_code = NULL;
	if ((rc = st->ops->account_by_code(st, clearing_code, &clearing)) ==
	    STORE_OK)
		rc = st->ops->account_by_code(st, hold_code, &hold);
	if (rc == STORE_NOT_FOUND ||
	    (rc == STORE_OK &&
	     (clearing.type != LEDGER_ACCT_PROVIDER_CLEARING ||
	      clearing.currency != cur || hold.type != LEDGER_ACCT_SUSPENSE ||
	      hold.currency != cur))) {
		*status = 503;
		*err_code = "provider_misconfigured";
		*err_msg = "the provider's clearing account (provider_clearing) "
		           "or holding account (suspense) is missing or not in "
		           "this currency";
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if (!src->has_floor) {
		/* without a floor nothing bounds what may be paid out */
		*status = 422;
		*err_code = "account_without_floor";
		*err_msg = "the source account has no floor";
		return STORE_OK;
	}
	p->target_account_id = src->id;
	p->clearing_account_id = clearing.id;
	p->hold_account_id = hold.id;
	/* the fee, held with the amount (docs/payments.md §13) */
	prov_fee_refused(st, np->cfg, p, src->type, status, err_code, err_msg,
	                 &rc);
	return rc;
}

static void
disb_reply_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
	} else {
		evhttp_add_header(evhttp_request_get_output_headers(o->req),
		                  "Idempotent-Replayed", "true");
		reply_payment(o->req, 200, &o->p);
	}
	pop_free(o);
}

/* The hold was decided: the payment exists with its money held, or
 * nothing was created (the ledger's code says why). */
static void
disb_hold_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	enum ledger_rc rc = job->res.rc;
	char m[16];

	if (rc == LEDGER_OK && job->res.is_replay) {
		/* decided before (a race between two repeats): show it */
		if (post_call(o, get_call, disb_reply_done) != 0) {
			net_http_error(o->req, 503, "busy", "retry later");
			pop_free(o);
		}
		return;
	}
	if (rc == LEDGER_OK) {
		o->p.pay.txn_id = job->res.txn_id;
		o->p.pay.state = PAY_CREATED;
		reply_payment(o->req, 202, &o->p);
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=%s_created ref=%s provider=%s msisdn=%s "
		        "amount=%lld hold_txn=%lld",
		        o->p.reverses_id != 0 ? "reversal" : "disbursement",
		        o->p.pay.ref, o->p.provider,
		        log_msisdn(m, sizeof m, o->p.msisdn),
		        (long long)o->p.pay.amount_minor,
		        (long long)job->res.txn_id);
		kick(o->np);
	} else if (rc == LEDGER_IDEM_MISMATCH && o->p.reverses_id != 0) {
		/* another request reversing the same payment won the race */
		net_http_error(o->req, 409, "reversal_exists",
		               "this payment has a reversal already");
	} else if (rc == LEDGER_IDEM_MISMATCH) {
		net_http_error(o->req, 409, "idempotency_key_mismatch",
		               "this Idempotency-Key was used for another "
		               "request");
	} else if (rc == LEDGER_RETRY) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
	} else {
		/* insufficient_funds (the source's floor), account_closed,
		 * limit_*: final for this key, nothing created */
		net_http_error(o->req, 422, ledger_rc_name(rc),
		               rc == LEDGER_INSUFFICIENT_FUNDS
		                       ? "the source account cannot cover the "
		                         "amount; nothing was created"
		                       : "the ledger refused the hold; nothing "
		                         "was created");
	}
	pop_free(o);
}

static void
disb_accounts_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable; retry with the same "
		               "Idempotency-Key");
	} else if (o->err_code != NULL) {
		net_http_error(o->req, o->status, o->err_code, o->err_msg);
	} else if (o->status == 409) {
		net_http_error(o->req, 409, "idempotency_key_mismatch",
		               "this Idempotency-Key was used for another "
		               "request");
	} else if (o->status == 200) {
		evhttp_add_header(evhttp_request_get_output_headers(o->req),
		                  "Idempotent-Replayed", "true");
		reply_payment(o->req, 200, &o->p);
	} else {
		/* the money is held exactly when the payment exists: one
		 * ledger request carries both (svc_prov_hold_req) */
		o->kind = POP_CREATE;
		svc_prov_hold_req(&o->p, &o->job.req);
		o->job.call = NULL;
		o->job.done = disb_hold_done;
		if (dbq_post(o->np->dbq, &o->job) == 0)
			return;
		net_http_error(o->req, 503, "busy",
		               "the server is at capacity; retry later");
	}
	pop_free(o);
}

/* As collect_fill, for a disbursement o->c; also o->clearing and o->hold:
 * the provider's account codes. */
static const char *
disb_fill(struct pop *o, const char *ref, int64_t now, int *status,
          const char **msg)
{
	struct net_prov *np = o->np;
	const char *code;
	size_t i;

	i = drv_named(o->c.provider);
	if (i == N_DRIVERS) {
		*status = 422;
		*msg = "provider must be one of: mpesa, momo";
		return "provider_unknown";
	}
	if (!np->on[i] || drivers[i]->can_disburse == NULL ||
	    !drivers[i]->can_disburse(np)) {
		*status = 503;
		*msg = "disbursements through this provider are not "
		       "configured";
		return "disbursement_disabled";
	}
	o->drv = drivers[i];
	if ((code = o->drv->check(np->cfg, &o->c, msg)) != NULL) {
		*status = 422;
		return code;
	}
	if ((code = row_fill(o, ref, now, STORE_PROV_DISBURSE, status, msg)) !=
	    NULL)
		return code;
	strlcpy_s(o->clearing, o->drv->clearing_account(np->cfg),
	          sizeof o->clearing);
	strlcpy_s(o->hold, o->drv->hold_account(np->cfg), sizeof o->hold);
	return NULL;
}

const char *
net_prov_disburse_prep(struct net_prov *np, const struct svc_collection *c,
                       const char *ref, int64_t now_ms, struct store_prov *p,
                       char *clearing, char *hold, size_t cap,
                       const char **msg)
{
	struct pop *o = pop_new(np, POP_CREATE, NULL);
	const char *code;
	int status;

	o->c = *c;
	*msg = "";
	code = disb_fill(o, ref, now_ms, &status, msg);
	if (code == NULL) {
		*p = o->p;
		strlcpy_s(clearing, o->clearing, cap);
		strlcpy_s(hold, o->hold, cap);
	}
	pop_free(o);
	return code;
}

static void
handle_disbursement(struct net_prov *np, struct evhttp_request *req)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	const char *key = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Idempotency-Key");
	const char *code, *msg = "";
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
	if (strlen(key) > PAYMENT_REF_MAX - 5) { /* "disb:" + key */
		net_http_error(req, 400, "idempotency_key_invalid",
		               "Idempotency-Key: at most 59 bytes for a "
		               "disbursement");
		return;
	}
	o = pop_new(np, POP_CREATE, req);
	body = (char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (svc_admin_parse_collection(&o->c, body ? body : "", len, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		goto fail;
	}
	{
		char ref[PAYMENT_REF_MAX + 1];
		int status;

		snprintf(ref, sizeof ref, "disb:%s", key);
		if ((code = disb_fill(o, ref, now, &status, &msg)) != NULL) {
			net_http_error(req, status, code, msg);
			goto fail;
		}
	}
	n = snprintf(canon, sizeof canon, "disb|%s|%s|%u|%lld|%s|%s",
	             o->c.provider, o->c.msisdn, (unsigned)o->c.cur->numeric,
	             (long long)o->c.amount_minor, o->c.account,
	             o->c.reference);
	sha256_digest(o->p.req_hash, canon, n > 0 ? (size_t)n : 0);
	if (post_call(o, disb_accounts_call, disb_accounts_done) == 0)
		return;
	net_http_error(req, 503, "busy",
	               "the server is at capacity; retry later");
fail:
	pop_free(o);
}

/* ----------------------------------------- POST payments/{ref}/reversal */

#define REV_PREFIX "rev:"

static void
rev_refuse(struct pop *o, int status, const char *code, const char *msg)
{
	o->status = status;
	o->err_code = code;
	o->err_msg = msg;
}

/*
 * The collection to reverse, the accounts, and whether its reversal
 * exists already (docs/payments.md §M-Pesa reversal).  o->pref holds the
 * collection's ref; o->p is the reversal being built (hash, client
 * reference, times; its ref is set here).
 */
static enum store_rc
rev_accounts_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	const struct config *cfg = o->np->cfg;
	struct store_prov orig, old;
	struct ledger_account src, hold, clearing;
	enum store_rc rc;

	rc = st->ops->prov_get(st, o->pref, NULL, NULL, NULL, &orig);
	if (rc == STORE_NOT_FOUND) {
		rev_refuse(o, 404, "payment_unknown",
		           "no payment with this reference");
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if (orig.kind != STORE_PROV_COLLECT ||
	    strcmp(orig.provider, o->drv->name) != 0) {
		rev_refuse(o, 422, "reversal_unsupported",
		           "only M-Pesa collections can be reversed");
		return STORE_OK;
	}
	/* the reversal is named by the receipt it reverses: unique at
	 * M-Pesa, short, and known to the caller (GET the payment) */
	if (orig.receipt[0] == '\0' ||
	    strlen(orig.receipt) > PAYMENT_REF_MAX - (sizeof REV_PREFIX - 1)) {
		rev_refuse(o, 409, "payment_not_reversible",
		           "only a succeeded payment with an M-Pesa receipt "
		           "can be reversed");
		return STORE_OK;
	}
	snprintf(o->p.pay.ref, sizeof o->p.pay.ref, REV_PREFIX "%.*s",
	         (int)(PAYMENT_REF_MAX - (sizeof REV_PREFIX - 1)),
	         orig.receipt); /* fits: checked above */
	rc = st->ops->prov_get(st, o->p.pay.ref, NULL, NULL, NULL, &old);
	if (rc == STORE_OK) {
		/* one reversal per collection: a repeat of the same key is
		 * answered from the row, another key is refused */
		if (util_ct_memcmp(old.req_hash, o->p.req_hash,
		                   sizeof old.req_hash) == 0) {
			o->status = 200;
		} else {
			rev_refuse(o, 409, "reversal_exists",
			           "this payment has a reversal already (GET "
			           "/v1/payments/rev:<receipt>)");
		}
		o->p = old;
		return STORE_OK;
	}
	if (rc != STORE_NOT_FOUND)
		return rc;
	if (orig.pay.state != PAY_SUCCEEDED) {
		rev_refuse(o, 409, "payment_not_reversible",
		           "only a succeeded payment with an M-Pesa receipt "
		           "can be reversed");
		return STORE_OK;
	}
	if ((rc = st->ops->account_by_id(st, orig.target_account_id,
	                                 &src)) != STORE_OK)
		return rc;
	if ((rc = st->ops->account_by_code(st, o->drv->clearing_account(cfg),
	                                   &clearing)) == STORE_OK)
		rc = st->ops->account_by_code(st, o->drv->hold_account(cfg),
		                              &hold);
	if (rc == STORE_NOT_FOUND ||
	    (rc == STORE_OK && (clearing.id != orig.clearing_account_id ||
	                        hold.type != LEDGER_ACCT_SUSPENSE ||
	                        hold.currency != orig.pay.currency))) {
		rev_refuse(o, 503, "provider_misconfigured",
		           "the provider's holding account (suspense) is "
		           "missing or not in this currency, or its clearing "
		           "account is not the collection's");
		return STORE_OK;
	}
	if (rc != STORE_OK)
		return rc;
	if (!src.has_floor && src.balance_minor < orig.pay.amount_minor) {
		/* with a floor the ledger refuses the hold atomically; an
		 * account without one is checked here, at creation */
		rev_refuse(o, 422, "insufficient_funds",
		           "the merchant account cannot cover the reversal; "
		           "nothing was created");
		return STORE_OK;
	}
	o->p.pay.currency = orig.pay.currency;
	o->p.pay.amount_minor = orig.pay.amount_minor;
	strlcpy_s(o->p.msisdn, orig.msisdn, sizeof o->p.msisdn);
	o->p.target_account_id = src.id;
	o->p.clearing_account_id = clearing.id;
	o->p.hold_account_id = hold.id;
	o->p.reverses_id = orig.pay.id;
	strlcpy_s(o->p.reverses_ref, orig.pay.ref, sizeof o->p.reverses_ref);
	strlcpy_s(o->p.reverses_receipt, orig.receipt,
	          sizeof o->p.reverses_receipt);
	return STORE_OK;
}

/*
 * POST /v1/payments/{ref}/reversal (admin, Idempotency-Key, no body):
 * gives a succeeded M-Pesa collection back to the customer.  The
 * reversal is a payment of its own, "rev:<receipt>", created with the
 * amount held from the merchant (disb_accounts_done → hold request),
 * then sent by the janitor like a disbursement.
 */
static void
handle_reversal(struct net_prov *np, struct evhttp_request *req,
                const char *ref)
{
	const char *key = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Idempotency-Key");
	struct svc_error e;
	struct pop *o;
	char canon[256];
	int64_t now = util_now_ms();
	size_t i;
	int n;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	if (svc_admin_check_key(key, &e) != 0) {
		net_http_error(req, e.status, e.code, e.message);
		return;
	}
	for (i = 0; i < N_DRIVERS; i++)
		if (drivers[i] == &prov_drv_mpesa)
			break;
	if (i == N_DRIVERS || !np->on[i] ||
	    drivers[i]->can_disburse == NULL ||
	    !drivers[i]->can_disburse(np)) {
		net_http_error(req, 503, "reversal_disabled",
		               "M-Pesa reversals need the initiator (as B2C)");
		return;
	}
	o = pop_new(np, POP_CREATE, req);
	o->drv = drivers[i];
	strlcpy_s(o->pref, ref, sizeof o->pref);
	o->p.pay.created_ms = now;
	o->p.kind = STORE_PROV_DISBURSE;
	strlcpy_s(o->p.provider, o->drv->name, sizeof o->p.provider);
	if (o->drv->client_ref(o) != 0) {
		net_http_error(req, 503, "retry_later", "no randomness");
		pop_free(o);
		return;
	}
	o->p.call_state = STORE_CALL_TO_SEND;
	o->p.next_at_ms = now;
	o->p.deadline_ms = now + np->pol.deadline_ms;
	n = snprintf(canon, sizeof canon, "rev|%s|%s", ref, key);
	sha256_digest(o->p.req_hash, canon, n > 0 ? (size_t)n : 0);
	if (post_call(o, rev_accounts_call, disb_accounts_done) == 0)
		return;
	net_http_error(req, 503, "busy",
	               "the server is at capacity; retry later");
	pop_free(o);
}

/* ------------------------------------- POST payments/{ref}/otp | pin */

static void get_done(struct dbq_job *job);

/* The payment is read: is it waiting for this answer? Then relay it. */
static void
step_get_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	const struct prov_drv *d;

	if (job->call_rc == STORE_NOT_FOUND) {
		net_http_error(o->req, 404, "payment_unknown",
		               "no payment with this reference");
		pop_free(o);
		return;
	}
	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
		pop_free(o);
		return;
	}
	d = drv_find(o->np, o->p.provider);
	if (d == NULL || d->submit == NULL || !prov_driver_on(o->np, d)) {
		net_http_error(o->req, 422, "step_unsupported",
		               "this payment's provider asks for no such step");
		pop_free(o);
		return;
	}
	if (o->p.pay.state != PAY_PENDING ||
	    strcmp(o->p.next_step, o->step) != 0) {
		/* nothing is asked (yet, or any more), or something else */
		net_http_error(o->req, 409, "step_not_expected",
		               "the payment is not waiting for this answer "
		               "(GET /v1/payments/{ref}: next_step)");
		pop_free(o);
		return;
	}
	o->drv = d;
	d->submit(o, o->step, o->secret);
}

static enum store_rc
step_write_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;

	return st->ops->prov_update(st, &o->u, util_now_ms());
}

static void
step_write_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	/* a change made meanwhile (the janitor) wins: the payment is shown
	 * as it is; the step is asked again from its next answer */
	if (job->call_rc != STORE_OK && job->call_rc != STORE_CONFLICT)
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=step_write_failed ref=%s rc=%d", o->p.pay.ref,
		        (int)job->call_rc);
	kick(o->np);
	o->kind = POP_GET;
	if (post_call(o, get_call, get_done) != 0) {
		net_http_error(o->req, 503, "busy", "retry later");
		pop_free(o);
	}
}

void
prov_step_done(struct pop *o, int status, const char *code, const char *msg,
               const char *step, const char *text, const char *url)
{
	sha256_wipe(o->secret, sizeof o->secret);
	log_msg(LOG_PROV, status == 0 ? LOG_LEVEL_INFO : LOG_LEVEL_WARN,
	        "event=step_submitted ref=%s step=%s outcome=%s next=%s",
	        o->p.pay.ref, o->step, status == 0 ? "taken" : code,
	        step != NULL ? step : "");
	if (status != 0) {
		net_http_error(o->req, status, code, msg);
		pop_free(o);
		return;
	}
	/* the next step, and the status query now: only it decides */
	memset(&o->u, 0, sizeof o->u);
	o->u.payment_id = o->p.pay.id;
	o->u.from_state = o->u.to_state = o->p.pay.state;
	o->u.expect_call = o->u.call_state = o->p.call_state;
	o->u.send_attempts = o->p.send_attempts;
	o->u.checks = o->p.checks;
	o->u.next_at_ms = util_now_ms();
	o->u.next_step = step != NULL ? step : "";
	o->u.next_text = text != NULL ? text : "";
	o->u.next_url = url != NULL ? url : "";
	own_strings(o);
	o->kind = POP_WRITE;
	if (post_call(o, step_write_call, step_write_done) != 0) {
		net_http_error(o->req, 503, "busy", "retry later");
		pop_free(o);
	}
}

/*
 * POST /v1/payments/{ref}/otp {"otp":"123456"} and .../pin {"pin":"1234"}
 * (admin): the customer's answer to the step the provider asked for
 * (next_step send_otp / send_pin), relayed to the provider.  No
 * Idempotency-Key: it moves no money (the status query decides), and a
 * repeat is safe (docs/payments.md §5).  The value is never logged.
 */
static void
handle_step(struct net_prov *np, struct evhttp_request *req, const char *ref,
            bool is_otp)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in), v, n = 0, i;
	const char *field = is_otp ? "otp" : "pin", *why = NULL, *body;
	struct json_tok toks[16];
	struct json_doc doc;
	unsigned char *raw;
	struct pop *o;
	bool ok;

	if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
		net_http_error(req, 405, "method_not_allowed", "use POST");
		return;
	}
	o = pop_new(np, POP_GET, req);
	o->step = is_otp ? "send_otp" : "send_pin";
	strlcpy_s(o->p.pay.ref, ref, sizeof o->p.pay.ref);
	raw = evbuffer_pullup(in, (ev_ssize_t)len);
	body = (const char *)raw;
	ok = len <= 256 &&
	     json_parse(&doc, toks, 16, body ? body : "", len, &why) ==
	             CODEC_OK &&
	     (v = json_obj_get(&doc, 0, field)) != 0 &&
	     json_str_unescape(o->secret, sizeof o->secret, &doc, v, &n,
	                       &why) == CODEC_OK &&
	     n >= 4 && n <= (is_otp ? 10u : 6u);
	for (i = 0; ok && i < n; i++)
		ok = o->secret[i] >= '0' && o->secret[i] <= '9';
	if (raw != NULL) /* the secret leaves no copy behind */
		sha256_wipe(raw, len);
	if (!ok) {
		net_http_error(req, 400, is_otp ? "otp_invalid" : "pin_invalid",
		               is_otp ? "body must be {\"otp\":\"<4-10 digits>\"}"
		                      : "body must be {\"pin\":\"<4-6 digits>\"}");
		pop_free(o);
		return;
	}
	if (post_call(o, get_call, step_get_done) != 0) {
		net_http_error(req, 503, "busy", "the server is at capacity");
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
               const char *path)
{
	/* {ref} or {ref}/<action>; a ref may hold a '/' (an
	 * Idempotency-Key's), so only a known last segment is an action */
	static const char *const actions[] = {"reversal", "otp", "pin"};
	const char *slash = strrchr(path, '/');
	char raw[3 * PAYMENT_REF_MAX + 1]; /* percent-encoded */
	size_t i, len = strlen(path);
	struct pop *o;
	char *dec = NULL;

	for (i = 0; slash != NULL && i < sizeof actions / sizeof actions[0];
	     i++)
		if (strcmp(slash + 1, actions[i]) == 0)
			break;
	if (slash != NULL && i < sizeof actions / sizeof actions[0])
		len = (size_t)(slash - path);
	else
		i = SIZE_MAX; /* GET {ref} */
	if (len > 0 && len < sizeof raw) {
		memcpy(raw, path, len);
		raw[len] = '\0';
		dec = evhttp_uridecode(raw, 0, NULL);
	}
	if (dec == NULL || dec[0] == '\0' || strlen(dec) > PAYMENT_REF_MAX) {
		free(dec);
		net_http_error(req, 404, "payment_unknown",
		               "no payment with this reference");
		return;
	}
	if (i == 0) {
		handle_reversal(np, req, dec);
	} else if (i != SIZE_MAX) {
		handle_step(np, req, dec, i == 1);
	} else if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		net_http_error(req, 405, "method_not_allowed", "use GET");
	} else {
		o = pop_new(np, POP_GET, req);
		strlcpy_s(o->p.pay.ref, dec, sizeof o->p.pay.ref);
		if (post_call(o, get_call, get_done) != 0) {
			net_http_error(req, 503, "busy",
			               "the server is at capacity");
			pop_free(o);
		}
	}
	free(dec);
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
		tell_final(o, o->u.to_state);
	}
	pop_free(o);
}

static void
settle_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	if (job->res.rc == LEDGER_OK) {
		if (o->u.to_state == PAY_SUCCEEDED)
			metrics_inc(METRIC_PROV_SETTLED);
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=payment_%s ref=%s provider=%s kind=%s txn=%lld "
		        "receipt=%s code=%s replay=%d",
		        o->p.kind == STORE_PROV_BILL &&
		                        o->u.to_state == PAY_FAILED
		                ? "refunded"
		                : payment_state_name(o->u.to_state),
		        o->p.pay.ref, o->p.provider,
		        o->p.kind == STORE_PROV_COLLECT ? "collection"
		        : o->p.kind == STORE_PROV_BILL  ? "bill"
		                                        : "disbursement",
		        (long long)job->res.txn_id,
		        o->u.receipt != NULL ? o->u.receipt : o->p.receipt,
		        o->u.result_code != NULL ? o->u.result_code : "",
		        job->res.is_replay);
		tell_final(o, o->u.to_state);
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

/* Writes the decision o->u: through the ledger when it moves money (a
 * success posting, a disbursement's released hold: svc_prov_posts; a
 * bill's refund: svc_bill.h), so the money and the state commit
 * together; else as a plain update.  Takes o. */
static void
write_decision(struct pop *o, bool settle)
{
	own_strings(o);
	if (settle || svc_bill_refund_req(&o->p, &o->u, &o->job.req)) {
		o->kind = POP_SETTLE;
		if (settle)
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

/* An answer arrived (or is known never to come): decide, then write. */
void
prov_answer(struct pop *o, const struct svc_prov_answer *a)
{
	struct svc_prov_policy pol = jittered(o->np);
	bool settle, ok;
	const char *why;

	ok = svc_prov_apply(&o->p, a, util_now_ms(), &pol, &o->u,
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
	write_decision(o, settle);
}

/* ------------------------------------------------------------ janitor */

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
	o->kind = POP_SEND;
	o->drv->send(o);
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
		o->drv = drv_find(np, o->p.provider);
		if (o->drv == NULL) {
			/* a provider this instance does not drive (config
			 * changed): leave it to one that does, or to a
			 * human after the deadline */
			log_msg(LOG_PROV, LOG_LEVEL_WARN,
			        "event=provider_disabled ref=%s provider=%s",
			        o->p.pay.ref, o->p.provider);
			pop_free(o);
			continue;
		}
		act = o->p.kind == STORE_PROV_BILL
		              ? svc_bill_due(&o->p, now, &np->pol, &o->u, &why)
		              : svc_prov_due(&o->p, o->drv->can_query(&o->p),
		                             now, &np->pol, &o->u, &why);
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
			o->kind = POP_QUERY;
			o->drv->query(o);
			break;
		case SVC_PROV_UPDATE:
			/* a disbursement that never reached the provider
			 * gives its hold back in the same commit (a bill its
			 * refund) */
			write_decision(o, svc_prov_posts(&o->p, &o->u));
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
	if (np->stopping || !np->any_on)
		return;
	{
		size_t i;

		for (i = 0; i < N_DRIVERS; i++)
			if (np->on[i] && drivers[i]->tick != NULL)
				drivers[i]->tick(np);
	}
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
	const char *prov = o->drv->name;
	struct store_prov_callback cb;
	enum store_rc rc;
	bool has_update = false;
	int attempt;
	char detail[200];

	for (attempt = 0; attempt < 3; attempt++) {
		rc = o->by_client_ref
		             ? st->ops->prov_get(st, NULL, prov, NULL, o->pref,
		                                 &o->p)
		             : st->ops->prov_get(st, NULL, prov, o->pref, NULL,
		                                 &o->p);
		if (rc == STORE_NOT_FOUND)
			break;
		if (rc != STORE_OK)
			return rc;
		if (o->cb_secret[0] != '\0' &&
		    !prov_token_eq(o->p.result_desc, o->cb_secret)) {
			/* not proven to come from the provider: nothing is
			 * recorded (a forger must not fill the table) */
			o->cb_refused = o->p.result_desc[0] == '\0' &&
			                        o->p.call_state ==
			                                STORE_CALL_SENDING
			                        ? 503
			                        : 401;
			return STORE_OK;
		}
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
	snprintf(detail, sizeof detail,
	         "success=%d result=%s amount=%lld receipt=%s",
	         o->cb_success, o->code, (long long)o->cb_amount, o->receipt);
	memset(&cb, 0, sizeof cb);
	cb.provider = prov;
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
	const char *prov = o->drv->name;

	if (job->call_rc == STORE_OK && o->cb_refused != 0) {
		if (o->cb_refused == 503)
			prov_callback_reject(o->req, prov, 503, "retry_later",
			                     "the payment's callback secret is "
			                     "not known yet");
		else
			prov_callback_reject(o->req, prov, 401,
			                     "callback_token_invalid",
			                     "callback secret differs");
		pop_free(o);
		return;
	}
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
		        "event=callback_unknown provider=%s ref=%s "
		        "(recorded for reconciliation)",
		        prov, o->pref);
		net_http_error(o->req, 404, "payment_unknown",
		               "no payment with this reference");
		pop_free(o);
		return;
	}
	if (o->verdict == SVC_CB_CONTRADICTION || o->verdict == SVC_CB_AMOUNT) {
		metrics_inc(METRIC_PROV_ALERTS);
		log_msg(LOG_PROV, LOG_LEVEL_ERROR,
		        "event=callback_%s provider=%s ref=%s state=%s "
		        "result=%s alert=reconcile",
		        svc_prov_cb_name(o->verdict), prov, o->p.pay.ref,
		        payment_state_name(o->p.pay.state), o->code);
	} else {
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=callback provider=%s ref=%s verdict=%s result=%s",
		        prov, o->p.pay.ref, svc_prov_cb_name(o->verdict),
		        o->code);
	}
	if (o->verdict == SVC_CB_AMOUNT)
		net_http_error(o->req, 422, "amount_mismatch",
		               "the callback's amount differs from the "
		               "payment's");
	else
		net_http_reply(o->req, 200, "application/json", o->desc,
		               strlen(o->desc));
	if (o->verdict == SVC_CB_ACCEPTED)
		kick(o->np);
	pop_free(o);
}

static struct pop *
callback_pop(struct net_prov *np, const struct prov_drv *drv,
             struct evhttp_request *req, const char *ref, bool by_client_ref,
             bool claims_success, bool has_amount, int64_t amount_minor,
             const char *code, const char *receipt, const char *ok_body)
{
	struct pop *o = pop_new(np, POP_CALLBACK, req);

	o->drv = drv;
	o->by_client_ref = by_client_ref;
	strlcpy_s(o->pref, ref, sizeof o->pref);
	strlcpy_s(o->code, code != NULL ? code : "", sizeof o->code);
	strlcpy_s(o->receipt, receipt != NULL ? receipt : "",
	          sizeof o->receipt);
	/* the answer body rides in desc (unused by callbacks otherwise) */
	strlcpy_s(o->desc, ok_body != NULL ? ok_body : "{}", sizeof o->desc);
	o->cb_success = claims_success;
	o->cb_has_amount = has_amount;
	o->cb_amount = amount_minor;
	return o;
}

static void
callback_post(struct pop *o)
{
	if (post_call(o, callback_call, callback_done) != 0) {
		net_http_error(o->req, 503, "busy", "retry later");
		pop_free(o);
	}
}

static enum store_rc
status_result_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct store_prov_callback cb;
	enum store_rc rc;
	char detail[200];

	rc = st->ops->prov_get(st, NULL, o->drv->name, NULL, o->pref, &o->p);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND)
		return rc;
	o->cb_found = rc == STORE_OK;
	snprintf(detail, sizeof detail, "status_result=%s code=%s receipt=%s",
	         svc_prov_verdict_name(o->ans.v), o->code, o->receipt);
	memset(&cb, 0, sizeof cb);
	cb.provider = o->drv->name;
	cb.provider_ref = o->cb_found ? o->p.provider_ref : o->pref;
	cb.payment_id = o->cb_found ? o->p.pay.id : 0;
	cb.verdict = o->cb_found ? "status_result" : "unknown_reference";
	cb.detail = detail;
	cb.received_ms = util_now_ms();
	return st->ops->prov_callback_add(st, &cb);
}

static void
status_result_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct svc_prov_answer a;

	metrics_inc(METRIC_PROV_CALLBACKS);
	if (job->call_rc != STORE_OK) {
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
		pop_free(o);
		return;
	}
	if (!o->cb_found) {
		log_msg(LOG_PROV, LOG_LEVEL_WARN,
		        "event=status_result_unknown provider=%s ref=%s",
		        o->drv->name, o->pref);
		net_http_error(o->req, 404, "payment_unknown",
		               "no payment with this reference");
		pop_free(o);
		return;
	}
	/* acknowledged once recorded; what it decides is the janitor's
	 * business if the write below is lost (the query is asked again) */
	net_http_reply(o->req, 200, "application/json", o->desc,
	               strlen(o->desc));
	o->req = NULL;
	a = o->ans;
	a.code = o->code[0] != '\0' ? o->code : NULL;
	a.desc = NULL;
	a.receipt = o->receipt[0] != '\0' ? o->receipt : NULL;
	o->kind = POP_QUERY;
	log_msg(LOG_PROV, LOG_LEVEL_INFO,
	        "event=status_result provider=%s ref=%s verdict=%s code=%s",
	        o->drv->name, o->p.pay.ref, svc_prov_verdict_name(a.v),
	        o->code);
	prov_answer(o, &a);
}

void
prov_status_result(struct net_prov *np, const struct prov_drv *drv,
                   struct evhttp_request *req, const char *client_ref,
                   const struct svc_prov_answer *a, const char *ok_body)
{
	struct pop *o = pop_new(np, POP_CALLBACK, req);

	o->drv = drv;
	strlcpy_s(o->pref, client_ref, sizeof o->pref);
	o->ans = *a;
	/* a status result says nothing of the customer's next step */
	o->ans.next_step = o->ans.next_text = o->ans.next_url = NULL;
	strlcpy_s(o->code, a->code != NULL ? a->code : "", sizeof o->code);
	strlcpy_s(o->receipt, a->receipt != NULL ? a->receipt : "",
	          sizeof o->receipt);
	/* the answer body rides in desc until the reply */
	strlcpy_s(o->desc, ok_body != NULL ? ok_body : "{}", sizeof o->desc);
	if (post_call(o, status_result_call, status_result_done) != 0) {
		net_http_error(req, 503, "busy", "retry later");
		pop_free(o);
	}
}

/* ------------------------------------------- payments made by customers */

static enum store_rc
external_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct ledger_account target, clearing;
	enum store_rc rc;

	o->status = 200;
	rc = st->ops->account_by_code(st, o->c.account, &target);
	if (rc == STORE_OK && (target.type != LEDGER_ACCT_MERCHANT_PAYABLE ||
	                       target.currency != o->p.pay.currency ||
	                       target.is_closed))
		rc = STORE_NOT_FOUND;
	if (rc == STORE_NOT_FOUND) {
		/* the money arrived all the same: keep it visible */
		o->err_code = "unmatched";
		rc = st->ops->account_by_code(st, o->fallback, &target);
	}
	if (rc != STORE_OK)
		return rc;
	rc = st->ops->account_by_code(st, o->drv->clearing_account(o->np->cfg),
	                              &clearing);
	if (rc != STORE_OK)
		return rc;
	o->p.clearing_account_id = clearing.id;
	o->p.target_account_id = target.id;
	rc = st->ops->prov_create(st, &o->p);
	return rc == STORE_CONFLICT ? STORE_OK : rc; /* a repeat */
}

static void
external_done(struct dbq_job *job)
{
	struct pop *o = job->arg;

	metrics_inc(METRIC_PROV_CALLBACKS);
	if (job->call_rc != STORE_OK) {
		log_msg(LOG_PROV, LOG_LEVEL_ERROR,
		        "event=external_not_recorded provider=%s ref=%s rc=%d "
		        "alert=reconcile",
		        o->drv->name, o->p.pay.ref, (int)job->call_rc);
		metrics_inc(METRIC_PROV_ALERTS);
		net_http_error(o->req, 503, "retry_later",
		               "storage unavailable");
	} else {
		if (o->err_code != NULL) {
			log_msg(LOG_PROV, LOG_LEVEL_ERROR,
			        "event=external_unmatched provider=%s ref=%s "
			        "account=%s to=%s alert=reconcile",
			        o->drv->name, o->p.pay.ref, o->c.account,
			        o->fallback);
			metrics_inc(METRIC_PROV_ALERTS);
		}
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=external_payment provider=%s ref=%s amount=%lld",
		        o->drv->name, o->p.pay.ref,
		        (long long)o->p.pay.amount_minor);
		net_http_reply(o->req, 200, "application/json", o->desc,
		               strlen(o->desc));
		kick(o->np);
	}
	pop_free(o);
}

void
prov_collect_external(struct net_prov *np, const struct prov_drv *drv,
                      struct evhttp_request *req, const struct store_prov *p,
                      const char *account, const char *fallback,
                      const char *ok_body)
{
	struct pop *o = pop_new(np, POP_CALLBACK, req);

	o->drv = drv;
	o->p = *p;
	strlcpy_s(o->c.account, account, sizeof o->c.account);
	strlcpy_s(o->fallback, fallback, sizeof o->fallback);
	strlcpy_s(o->desc, ok_body, sizeof o->desc);
	if (post_call(o, external_call, external_done) != 0) {
		net_http_error(req, 503, "busy", "retry later");
		pop_free(o);
	}
}

static enum store_rc
account_check_call(struct store *st, struct dbq_job *job)
{
	struct pop *o = job->arg;
	struct ledger_account a;
	enum store_rc rc = st->ops->account_by_code(st, o->c.account, &a);

	o->status = rc == STORE_OK && a.type == LEDGER_ACCT_MERCHANT_PAYABLE &&
	            a.currency == o->p.pay.currency && !a.is_closed;
	return rc == STORE_NOT_FOUND ? STORE_OK : rc;
}

static void
account_check_done(struct dbq_job *job)
{
	struct pop *o = job->arg;
	/* storage down: reject (the customer keeps the money) */
	const char *body = job->call_rc == STORE_OK && o->status
	                           ? o->desc
	                           : o->reject_body;

	log_msg(LOG_PROV, LOG_LEVEL_INFO,
	        "event=validation account=%s verdict=%s", o->c.account,
	        body == o->desc ? "accept" : "reject");
	net_http_reply(o->req, 200, "application/json", body, strlen(body));
	pop_free(o);
}

void
prov_account_check(struct net_prov *np, struct evhttp_request *req,
                   const char *account, uint16_t currency,
                   const char *ok_body, const char *reject_body)
{
	struct pop *o = pop_new(np, POP_CALLBACK, req);

	strlcpy_s(o->c.account, account, sizeof o->c.account);
	o->p.pay.currency = currency;
	strlcpy_s(o->desc, ok_body, sizeof o->desc);
	o->reject_body = reject_body; /* static text */
	if (post_call(o, account_check_call, account_check_done) != 0) {
		net_http_reply(req, 200, "application/json", reject_body,
		               strlen(reject_body));
		pop_free(o);
	}
}

void
prov_callback(struct net_prov *np, const struct prov_drv *drv,
              struct evhttp_request *req, const char *ref,
              bool by_client_ref, bool claims_success, bool has_amount,
              int64_t amount_minor, const char *code, const char *receipt,
              const char *ok_body)
{
	callback_post(callback_pop(np, drv, req, ref, by_client_ref,
	                           claims_success, has_amount, amount_minor,
	                           code, receipt, ok_body));
}

void
prov_callback_secret(struct net_prov *np, const struct prov_drv *drv,
                     struct evhttp_request *req, const char *client_ref,
                     const char *secret, bool claims_success,
                     const char *code, const char *receipt,
                     const char *ok_body)
{
	struct pop *o = callback_pop(np, drv, req, client_ref, true,
	                             claims_success, false, 0, code, receipt,
	                             ok_body);

	/* an empty secret would disable the check: refuse it here */
	strlcpy_s(o->cb_secret, secret != NULL && secret[0] != '\0' ? secret
	                                                            : "\x01",
	          sizeof o->cb_secret);
	callback_post(o);
}

int
prov_call(struct net_prov *np, const char *url, const char *auth,
          const char *extra_header, const char *body, size_t n,
          const char *endpoint, ncurl_done_fn done, void *arg,
          const char **why)
{
	struct ncurl_req rq;

	memset(&rq, 0, sizeof rq);
	rq.method = body != NULL ? NCURL_POST : NCURL_GET;
	rq.url = url;
	rq.headers[rq.n_headers++] = auth;
	if (body != NULL)
		rq.headers[rq.n_headers++] = "Content-Type: application/json";
	if (extra_header != NULL)
		rq.headers[rq.n_headers++] = extra_header;
	rq.body = body;
	rq.body_len = body != NULL ? n : 0;
	rq.endpoint = endpoint;
	return ncurl_submit(np->nc, &rq, done, arg, why);
}

bool
prov_text_has(const char *text, const char *needle)
{
	size_t n = strlen(needle), i;

	for (; *text != '\0'; text++) {
		for (i = 0; i < n && text[i] != '\0'; i++)
			if (lower(text[i]) != lower(needle[i]))
				break;
		if (i == n)
			return true;
	}
	return false;
}

void
prov_callback_reject(struct evhttp_request *req, const char *provider,
                     int status, const char *code, const char *reason)
{
	log_msg(LOG_PROV, LOG_LEVEL_WARN,
	        "event=callback_rejected provider=%s status=%d code=%s "
	        "why=\"%s\"",
	        provider, status, code, reason != NULL ? reason : "");
	metrics_inc(METRIC_PROV_CALLBACKS_REJECTED);
	net_http_error(req, status, code,
	               status == 404 ? "no such endpoint"
	                             : reason != NULL ? reason : code);
}

/* ------------------------------------------------------------- tokens */

static void
token_release(struct net_prov *np, struct prov_token *t, bool ok)
{
	struct pop *w = t->waiters, *next;

	(void)np;
	t->waiters = NULL;
	for (; w != NULL; w = next) {
		next = w->next;
		w->next = NULL;
		if (ok) {
			w->tok_gen = t->gen;
			t->go(w);
		} else {
			struct svc_prov_answer a = {
				.v = w->kind == POP_SEND ? SVC_PROV_NOT_SENT
				                         : SVC_PROV_NO_ANSWER,
				.code = "token",
				.not_left = true};

			prov_answer(w, &a);
		}
	}
}

bool
prov_token_get(struct net_prov *np, struct prov_token *t, struct pop *o)
{
	if (t->token[0] != '\0' &&
	    util_now_ms() < t->exp_ms - TOKEN_MARGIN_MS) {
		o->tok_gen = t->gen;
		return true;
	}
	o->next = t->waiters;
	t->waiters = o;
	if (t->busy)
		return false;
	t->busy = true;
	if (t->fetch(np, t) != 0) {
		t->busy = false;
		token_release(np, t, false);
	}
	return false;
}

void
prov_token_done(struct net_prov *np, struct prov_token *t, const char *token,
                int64_t expires_in_s)
{
	t->busy = false;
	if (token != NULL && strlen(token) < sizeof t->token) {
		strlcpy_s(t->token, token, sizeof t->token);
		t->exp_ms = util_now_ms() + expires_in_s * 1000;
		t->gen++;
		log_msg(LOG_PROV, LOG_LEVEL_INFO,
		        "event=token expires_in_s=%lld",
		        (long long)expires_in_s);
		token_release(np, t, true);
	} else {
		token_release(np, t, false);
	}
}

void
prov_token_drop(struct prov_token *t, const struct pop *o)
{
	/* a refusal of a token already replaced says nothing about the new
	 * one: under a storm of 401s every call in flight would otherwise
	 * drop the token fetched after it was sent, again and again */
	if (o != NULL && o->tok_gen != t->gen)
		return;
	sha256_wipe(t->token, sizeof t->token);
	t->exp_ms = 0;
}

/* ---------------------------------------------------------- the front */

bool
net_prov_http(struct net_prov *np, struct evhttp_request *req,
              const char *path, bool is_admin)
{
	static const char cb[] = "/v1/callbacks/";

	if (strncmp(path, cb, sizeof cb - 1) == 0) {
		const char *rest = path + sizeof cb - 1;
		size_t i;

		for (i = 0; i < N_DRIVERS; i++) {
			size_t n = strlen(drivers[i]->name);

			if (np->on[i] &&
			    strncmp(rest, drivers[i]->name, n) == 0 &&
			    rest[n] == '/') {
				drivers[i]->callback(np, req, rest + n + 1);
				return true;
			}
			n = drivers[i]->alias != NULL
			            ? strlen(drivers[i]->alias)
			            : 0;
			if (np->on[i] && n > 0 &&
			    strncmp(rest, drivers[i]->alias, n) == 0 &&
			    rest[n] == '/') {
				drivers[i]->alias_callback(np, req,
				                           rest + n + 1);
				return true;
			}
		}
		prov_callback_reject(req, "?", 404, "not_found", "provider");
		return true;
	}
	if (strcmp(path, "/v1/bills") == 0 ||
	    strncmp(path, "/v1/bills/", 10) == 0) {
		if (!is_admin)
			net_http_error(req, 401, "unauthorized",
			               "missing or wrong admin API key");
		else
			net_bill_http(np, req, path);
		return true;
	}
	if (strcmp(path, "/v1/collections") != 0 &&
	    strcmp(path, "/v1/disbursements") != 0 &&
	    strcmp(path, "/v1/payments") != 0 &&
	    strncmp(path, "/v1/payments/", 13) != 0)
		return false;
	if (!is_admin) {
		net_http_error(req, 401, "unauthorized",
		               "missing or wrong admin API key");
		return true;
	}
	if (net_recon_http(np, req, path))
		; /* reconciliation: list, resolve, requery (net_recon.c) */
	else if (path[4] == 'c')
		handle_collection(np, req);
	else if (path[4] == 'd')
		handle_disbursement(np, req);
	else
		handle_payment(np, req, path + 13);
	return true;
}

int64_t
net_prov_inflight(const struct net_prov *np)
{
	return np != NULL ? np->inflight : 0;
}

char *
prov_secret(const char *file, const char *env, const char *what, char *err,
            size_t errlen)
{
	int bad = 0;
	char *s = config_secret(file, env, &bad, err, errlen);

	if (s == NULL && !bad)
		snprintf(err, errlen, "%s: set %s_file or %s", what, what, env);
	return s;
}

void
prov_wipe_free(char *s)
{
	if (s != NULL) {
		sha256_wipe(s, strlen(s));
		free(s);
	}
}

/* want: the configured token (>= CB_TOKEN_MIN of [A-Za-z0-9_-]); got: the
 * URL's.  Constant time in the content. */
bool
prov_token_ok(const char *want, const char *got)
{
	size_t n = strlen(want);

	if (n < CB_TOKEN_MIN ||
	    strspn(want, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                 "0123456789-_") != n)
		return false;
	return strlen(got) == n && util_ct_memcmp(want, got, n) == 0;
}

void
prov_callback_url(const struct net_prov *np, const char *name,
                  const char *token, char *dst, size_t cap)
{
	snprintf(dst, cap, "%s/v1/callbacks/%s/%s",
	         np->cfg->prov_callback_base_url, name, token);
}

struct net_prov *
net_prov_new(struct event_base *base, struct dbq *dbq,
             const struct config *cfg, char *err, size_t errlen)
{
	struct net_prov *np = xcalloc(1, sizeof *np);
	struct ncurl_config nc;
	struct timeval tv;
	size_t i;

	np->base = base;
	np->dbq = dbq;
	np->cfg = cfg;
	if (RAND_bytes((unsigned char *)&np->rng, sizeof np->rng) != 1 ||
	    np->rng == 0)
		np->rng = (uint64_t)util_now_ms() | 1;
	np->pol.first_check_ms = cfg->prov_first_check_ms;
	np->pol.check_every_ms = cfg->prov_check_every_ms;
	np->pol.max_checks = (int32_t)cfg->prov_max_checks;
	np->pol.deadline_ms = cfg->prov_deadline_s * 1000;
	np->pol.max_sends = (int32_t)cfg->prov_max_sends;
	np->pol.resend_after_ms = cfg->prov_check_every_ms;
	np->pol.lease_ms = cfg->prov_lease_ms;
	for (i = 0; i < N_DRIVERS; i++) {
		int rc = drivers[i]->init(np, &np->state[i], err, errlen);

		if (rc < 0)
			goto fail;
		np->on[i] = rc > 0;
		np->any_on |= np->on[i];
	}
	if (np->any_on && cfg->prov_callback_base_url[0] == '\0') {
		snprintf(err, errlen, "prov_callback_base_url: required when a "
		                      "provider is enabled");
		goto fail;
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

void
net_prov_free(struct net_prov *np)
{
	size_t i;

	if (np == NULL)
		return;
	if (np->tick != NULL)
		event_free(np->tick);
	/* ends every call in flight: their pops write what they learnt
	 * (or nothing) through dbq, which is stopped by now; see
	 * net_http.c for the order */
	ncurl_free(np->nc);
	for (i = 0; i < N_DRIVERS; i++)
		if (drivers[i]->fini != NULL)
			drivers[i]->fini(np->state[i]);
	free(np);
}
