/*
 * svc_bill.c - decisions for bill payments (svc_bill.h).
 */
#include "svc_bill.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "payment.h"
#include "sha256.h"
#include "util.h"

#define ERR(e, s, c, m)                                                      \
	do {                                                                 \
		(e)->status = (s);                                           \
		(e)->code = (c);                                             \
		(e)->message = (m);                                          \
		return -1;                                                   \
	} while (0)

static bool
all_of(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n;
}

#define CODE_SET                                                             \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* String member name of o into dst[cap]. */
static int
get_str(json_t *o, const char *name, char *dst, size_t cap, bool required,
        struct svc_error *err)
{
	json_t *v = json_object_get(o, name);
	const char *s;

	dst[0] = '\0';
	if (v == NULL) {
		if (required)
			ERR(err, 400, "field_missing",
			    "a required field is missing");
		return 0;
	}
	if (!json_is_string(v))
		ERR(err, 400, "field_type", "a field has the wrong JSON type");
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		ERR(err, 400, "field_invalid", "a string contains NUL");
	if (strlen(s) >= cap)
		ERR(err, 400, "field_too_long", "a string field is too long");
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Loads body as an object whose keys are all in fields[0..n). */
static json_t *
load(const char *body, size_t len, const char *const *fields, size_t n,
     struct svc_error *err)
{
	json_error_t jerr;
	json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	json_t *val;
	const char *key;
	size_t i;

	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		err->status = 400;
		err->code = "bad_json";
		err->message = "body must be a JSON object (UTF-8, no "
		               "duplicate keys)";
		return NULL;
	}
	json_object_foreach(root, key, val)
	{
		(void)val;
		for (i = 0; i < n; i++)
			if (strcmp(key, fields[i]) == 0)
				break;
		if (i == n) {
			json_decref(root);
			err->status = 400;
			err->code = "field_unknown";
			err->message = "unknown field in body";
			return NULL;
		}
	}
	return root;
}

static int
check_validate(const struct svc_bill_validate *v, struct svc_error *err)
{
	if (!all_of(v->item_code, CODE_SET, 1, STORE_BILL_CODE_MAX))
		ERR(err, 422, "item_code_invalid",
		    "item_code must be 1..32 of A-Z a-z 0-9 _ -");
	/* "" (omitted): resolved from item_code through the categories */
	if (!all_of(v->biller_code, CODE_SET, 0, STORE_BILL_CODE_MAX))
		ERR(err, 422, "biller_code_invalid",
		    "biller_code must be 1..32 of A-Z a-z 0-9 _ -");
	if (!all_of(v->customer,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789+-",
	            1, STORE_BILL_CUSTOMER_MAX))
		ERR(err, 422, "customer_invalid",
		    "customer (meter, smartcard or account number) must be "
		    "1..40 of A-Z a-z 0-9 + -");
	return 0;
}

static int
get_validate(json_t *root, struct svc_bill_validate *v,
             struct svc_error *err)
{
	if (get_str(root, "item_code", v->item_code, sizeof v->item_code, true,
	            err) ||
	    get_str(root, "biller_code", v->biller_code,
	            sizeof v->biller_code, false, err) ||
	    get_str(root, "customer", v->customer, sizeof v->customer, true,
	            err))
		return -1;
	/* omitted: resolved from item_code (§8.1); given, never empty */
	if (json_object_get(root, "biller_code") != NULL &&
	    v->biller_code[0] == '\0')
		ERR(err, 422, "biller_code_invalid",
		    "biller_code must be 1..32 of A-Z a-z 0-9 _ -");
	return check_validate(v, err);
}

int
svc_bill_parse_validate(struct svc_bill_validate *out, const char *body,
                        size_t len, struct svc_error *err)
{
	static const char *const fields[] = {"item_code", "biller_code",
	                                     "customer"};
	struct svc_bill_validate v;
	json_t *root;
	int rc;

	memset(&v, 0, sizeof v);
	if ((root = load(body, len, fields, 3, err)) == NULL)
		return -1;
	rc = get_validate(root, &v, err);
	json_decref(root);
	if (rc == 0)
		*out = v;
	return rc;
}

int
svc_bill_parse_pay(struct svc_bill_pay *out, const char *body, size_t len,
                   const char *want_currency, struct svc_error *err)
{
	static const char *const fields[] = {
		"item_code", "biller_code", "customer",     "amount",
		"currency",  "source",      "customer_name"};
	struct svc_bill_pay b;
	char cur[8], amount[40];
	enum money_rc mr;
	json_t *root;
	int rc = -1;

	memset(&b, 0, sizeof b);
	if ((root = load(body, len, fields, 7, err)) == NULL)
		return -1;
	if (get_validate(root, &b.v, err) ||
	    get_str(root, "amount", amount, sizeof amount, true, err) ||
	    get_str(root, "currency", cur, sizeof cur, true, err) ||
	    get_str(root, "source", b.source, sizeof b.source, true, err) ||
	    get_str(root, "customer_name", b.customer_name,
	            sizeof b.customer_name, false, err))
		goto out;
	if ((b.cur = money_currency_by_alpha(cur)) == NULL) {
		err->status = 422;
		err->code = "currency_unknown";
		err->message = "currency is not a supported ISO 4217 code";
		goto out;
	}
	if (strcmp(b.cur->alpha, want_currency) != 0) {
		err->status = 422;
		err->code = "currency_unsupported";
		err->message = "bills are paid in the biller's currency "
		               "(Flutterwave: NGN)";
		goto out;
	}
	mr = money_parse(&b.amount_minor, b.cur, amount, strlen(amount));
	if (mr != MONEY_OK) {
		err->status = mr == MONEY_BAD_FORMAT ? 400 : 422;
		err->code = money_rc_name(mr);
		err->message = "amount must be a decimal string > 0 with at "
		               "most the currency's decimals";
		goto out;
	}
	if (b.source[0] == '\0') {
		err->status = 422;
		err->code = "account_unknown";
		err->message = "source: no account with this code";
		goto out;
	}
	*out = b;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void
svc_bill_pay_hash(const struct svc_bill_pay *b, uint8_t out[32])
{
	char canon[512];
	int n;

	n = snprintf(canon, sizeof canon, "bill|%s|%s|%s|%u|%lld|%s|%s",
	             b->v.item_code, b->v.biller_code, b->v.customer,
	             (unsigned)b->cur->numeric, (long long)b->amount_minor,
	             b->source, b->customer_name);
	sha256_digest(out, canon, n > 0 ? (size_t)n : 0);
}

/* u starts as "change nothing" for row p. */
static void
update_from(const struct store_prov *p, struct store_prov_update *u)
{
	memset(u, 0, sizeof *u);
	u->payment_id = p->pay.id;
	u->from_state = u->to_state = p->pay.state;
	u->expect_call = u->call_state = p->call_state;
	u->send_attempts = p->send_attempts;
	u->checks = p->checks;
	u->next_at_ms = p->next_at_ms;
}

/* A two-leg request moving p's amount from `from` to `to`, keyed
 * "bill:<ref>:<what>", carrying u. */
static void
move_req(const struct store_prov *p, int64_t from, int64_t to,
         const char *what, const struct store_prov_update *u,
         struct ledger_req *r)
{
	char canon[256];
	int n;

	memset(r, 0, sizeof *r);
	snprintf(r->idem_key, sizeof r->idem_key, "bill:%s:%s", p->pay.ref,
	         what);
	r->kind = LEDGER_TXN_PAYMENT;
	r->currency = p->pay.currency;
	/* the amount with its fee (§13): funded, held and refunded
	 * together */
	r->n_legs = 2;
	r->legs[0].account_id = from;
	r->legs[0].amount_minor = -(p->pay.amount_minor + p->fee_minor);
	r->legs[1].account_id = to;
	r->legs[1].amount_minor = p->pay.amount_minor + p->fee_minor;
	n = snprintf(canon, sizeof canon, "bill|%s|%s|%u|%lld|%lld|%lld",
	             what, p->pay.ref, (unsigned)p->pay.currency,
	             (long long)p->pay.amount_minor, (long long)from,
	             (long long)to);
	if (p->fee_minor != 0 && n > 0 && (size_t)n < sizeof canon)
		n += snprintf(canon + n, sizeof canon - (size_t)n, "|fee|%lld",
		              (long long)p->fee_minor);
	if (n >= (int)sizeof canon) /* never: the buffer fits the longest */
		n = (int)sizeof canon - 1;
	sha256_digest(r->hash, canon, n > 0 ? (size_t)n : 0);
	/* the memo is a hint for people; the reference is what counts */
	snprintf(r->memo, sizeof r->memo, "bill %s %.24s %.40s", what,
	         p->client_ref, p->bill.customer);
	r->prov = u;
}

void
svc_bill_fund_req(const struct store_prov *p, int64_t now_ms,
                  struct store_prov_update *u, struct ledger_req *r)
{
	update_from(p, u);
	u->to_state = PAY_PENDING;
	u->reason = "funded: source debited into holding";
	u->next_at_ms = now_ms; /* due: the janitor sends it */
	move_req(p, p->bill.source_account_id, p->clearing_account_id, "fund",
	         u, r);
}

void
svc_bill_fund_declined(const struct store_prov *p, enum ledger_rc rc,
                       struct store_prov_update *u)
{
	update_from(p, u);
	u->to_state = PAY_FAILED;
	u->reason = "funding declined: nothing sent, nothing moved";
	u->call_state = STORE_CALL_DONE;
	u->result_code = ledger_rc_name(rc);
}

enum svc_prov_action
svc_bill_due(const struct store_prov *p, int64_t now_ms,
             const struct svc_prov_policy *pol, struct store_prov_update *u,
             const char **why)
{
	if (p->pay.state == PAY_CREATED && p->call_state == STORE_CALL_TO_SEND) {
		update_from(p, u);
		if (now_ms >= p->deadline_ms) {
			u->to_state = PAY_FAILED;
			u->reason = "never funded: nothing sent, nothing moved";
			u->call_state = STORE_CALL_DONE;
			u->result_code = "not_funded";
			*why = "not funded by the deadline";
		} else {
			u->next_at_ms = p->deadline_ms;
			*why = "not funded yet: waiting for the deadline";
		}
		return SVC_PROV_UPDATE;
	}
	return svc_prov_due(p, true, now_ms, pol, u, why);
}

bool
svc_bill_refund_req(const struct store_prov *p,
                    const struct store_prov_update *u, struct ledger_req *r)
{
	if (p->kind != STORE_PROV_BILL || u->payment_id == 0 ||
	    u->to_state != PAY_FAILED || u->from_state == PAY_FAILED ||
	    u->from_state == PAY_CREATED) /* created: never funded */
		return false;
	move_req(p, p->clearing_account_id, p->bill.source_account_id,
	         "refund", u, r);
	return true;
}

void
svc_bill_token(const char *extra, char *dst, size_t cap)
{
	const char *s = strrchr(extra, ':');
	size_t n;

	s = s != NULL ? s + 1 : extra;
	while (*s == ' ')
		s++;
	n = strlen(s);
	while (n > 0 && s[n - 1] == ' ')
		n--;
	if (cap == 0)
		return;
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

