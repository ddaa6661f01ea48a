/*
 * sb_flw.c - Flutterwave v3 as soko-sandbox plays it
 * (reference/wire-formats.md §4; tests/sandbox/README.md "Flutterwave").
 *
 * Bills: categories, customer validation (the name on a meter, smartcard
 * or account), payment (legacy /v3/bills and current
 * /v3/billers/{code}/items/{item}/payment; an electricity token for power
 * bills), status.  Mobile money: /v3/charges?type=..., verify by id or by
 * tx_ref, and the charge.completed webhook to the configured URL with
 * the secret hash in verif-hash.  Every answer is the
 * {"status","message","data"} envelope.
 */
#include "sb.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

enum bill_type { BT_AIRTIME, BT_CABLE, BT_POWER, BT_ACCOUNT };

struct biller {
	int id;
	const char *biller_code, *name, *biller_name, *item_code;
	const char *short_name, *label_name;
	enum bill_type type;
};

/* Shapes as in the §4.2 sample; the list itself is the sandbox's. */
static const struct biller billers[] = {
    {1, "BIL099", "MTN NIgeria", "AIRTIME", "AT099", "MTN", "Mobile Number",
     BT_AIRTIME},
    {2, "BIL102", "GLO Nigeria", "AIRTIME", "AT102", "GLO", "Mobile Number",
     BT_AIRTIME},
    {3, "BIL121", "DSTV Payment", "DSTV", "CB141", "DSTV", "Smart Card Number",
     BT_CABLE},
    {4, "BIL112", "EKEDC PREPAID TOPUP", "EKEDC PREPAID TOPUP", "UB157",
     "EKEDC", "Meter Number", BT_POWER},
    {5, "BIL113", "IKEDC PREPAID", "IKEDC PREPAID", "UB159", "IKEDC",
     "Meter Number", BT_POWER},
    {6, "BIL124", "SMILE BUNDLE", "SMILE", "BUN001", "SMILE", "Account Number",
     BT_ACCOUNT},
};
#define N_BILLERS (sizeof(billers) / sizeof(billers[0]))

static const char *const type_names[] = {"AIRTIME", "CABLE", "POWER",
                                         "INTERNET"};

/* Answers with the error envelope; returns -1 for the caller to return. */
static int
flw_err(struct sb_rq *rq, int status, const char *msg)
{
	sb_rq_json(rq, status,
	           json_pack("{s:s,s:s,s:n}", "status", "error", "message", msg,
	                     "data"));
	return -1;
}

void
sb_flw_error500(struct sb_rq *rq)
{
	flw_err(rq, 500, "An error occurred. Please try again.");
}

static void
ok(struct sb_rq *rq, int status, const char *msg, json_t *data)
{
	sb_rq_json(rq, status,
	           json_pack("{s:s,s:s,s:o}", "status", "success", "message",
	                     msg, "data", data));
}

static bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void
iso_time(char *dst, size_t cap, int64_t ms)
{
	char t[32];

	sb_fmt_time(t, sizeof(t), ms, 0, "%Y-%m-%dT%H:%M:%S");
	snprintf(dst, cap, "%s.%03dZ", t, (int)(ms % 1000));
}

/* ------------------------------------------------------------ bills */

static void
categories(struct sb_rq *rq)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i < N_BILLERS; i++) {
		const struct biller *b = &billers[i];

		json_array_append_new(
		    a,
		    json_pack("{s:i,s:s,s:s,s:f,s:s,s:s,s:b,s:s,s:s,s:s,"
		              "s:i,s:b,s:s,s:i}",
		              "id", b->id, "biller_code", b->biller_code,
		              "name", b->name, "default_commission", 0.02,
		              "date_added", "2018-07-03T00:00:00Z", "country",
		              "NG", "is_airtime", b->type == BT_AIRTIME,
		              "biller_name", b->biller_name, "item_code",
		              b->item_code, "short_name", b->short_name, "fee",
		              0, "commission_on_fee", 0, "label_name",
		              b->label_name, "amount", 0));
	}
	ok(rq, 200, "bill categories retrieval successful", a);
}

static const struct biller *
biller_by_item(const char *item)
{
	size_t i;

	for (i = 0; i < N_BILLERS; i++)
		if (strcmp(billers[i].item_code, item) == 0)
			return &billers[i];
	return NULL;
}

/* A customer id for the biller: digits (an MSISDN may start with +). */
static bool
customer_ok(const struct biller *b, const char *cust)
{
	const char *d =
	    cust[0] == '+' && b->type == BT_AIRTIME ? cust + 1 : cust;
	size_t n = strlen(d);

	return sb_all_digits(d) && n >= 10 && n <= 14 &&
	       strcmp(d, "0000000000") != 0; /* magic: unknown customer */
}

static int
validate(struct sb_rq *rq, const char *item)
{
	const struct biller *b = biller_by_item(item);
	const char *code = sb_rq_query(rq, "code");
	const char *cust = sb_rq_query(rq, "customer");

	if (b == NULL || code == NULL || strcmp(code, b->biller_code) != 0)
		return flw_err(rq, 400, "Invalid item or biller code");
	if (cust == NULL || !customer_ok(b, cust))
		return flw_err(rq, 400, "Unable to validate customer");
	ok(rq, 200, "Item validated successfully",
	   json_pack("{s:s,s:s?,s:s,s:s,s:s,s:s,s:s,s:n,s:i,s:i,s:i}",
	             "response_code", "00", "address",
	             b->type == BT_POWER ? "12 SANDBOX STREET, LAGOS" : NULL,
	             "response_message", "Successful", "name",
	             b->type == BT_AIRTIME ? b->short_name : "JOHN DOE",
	             "biller_code", b->biller_code, "customer", cust,
	             "product_code", b->item_code, "email", "fee", 0, "maximum",
	             0, "minimum", 0));
	return 0;
}

static void
bill_ref(struct sb *sb, const char *prefix, char *dst, size_t cap)
{
	char ts[16], r[8];

	sb_fmt_time(ts, sizeof(ts), sb_now_ms(), 0, "%Y%m%d%H%M%S");
	sb_rng_chars(&sb->rng_id, r, 6, "0123456789");
	snprintf(dst, cap, "%s%s%s", prefix, ts, r);
}

static int
bill_create(struct sb_rq *rq, json_t *j, const char *biller_code,
            const char *item)
{
	struct sb *sb = rq->sb;
	const struct biller *b = NULL;
	const char *country = sb_jstr(j, "country");
	const char *cust = sb_jstr(j, biller_code ? "customer_id" : "customer");
	const char *ref = sb_jstr(j, "reference");
	const char *rec = sb_jstr(j, "recurrence");
	const char *type = sb_jstr(j, "type");
	const json_t *amount = json_object_get(j, "amount");
	struct sb_charge *c;
	char tok[32] = "";
	int64_t cents;
	size_t i;

	if (biller_code != NULL) {
		b = biller_by_item(item);
		if (b != NULL && strcmp(b->biller_code, biller_code) != 0)
			b = NULL;
		if (b == NULL)
			return flw_err(rq, 400, "Invalid item or biller code");
	} else {
		if (type == NULL)
			return flw_err(rq, 400, "type is required");
		for (i = 0; i < N_BILLERS && b == NULL; i++)
			if (strcmp(billers[i].biller_name, type) == 0)
				b = &billers[i];
		if (b == NULL)
			return flw_err(rq, 400, "Invalid bill type");
		if (rec != NULL && strcmp(rec, "ONCE") != 0 &&
		    strcmp(rec, "HOURLY") != 0 && strcmp(rec, "DAILY") != 0 &&
		    strcmp(rec, "WEEKLY") != 0 && strcmp(rec, "MONTHLY") != 0)
			return flw_err(rq, 400, "Invalid recurrence");
	}
	if (country == NULL || strcmp(country, "NG") != 0)
		return flw_err(rq, 400,
		               "Bill payments are only available in NG");
	if (!(json_is_integer(amount) || json_is_real(amount)) ||
	    !sb_amount_cents(amount, &cents) || cents <= 0)
		return flw_err(rq, 400, "amount must be a positive number");
	if (cust == NULL || !customer_ok(b, cust))
		return flw_err(rq, 400, "Unable to validate customer");
	if (ref != NULL && (*ref == '\0' || strlen(ref) >= SB_REF_MAX))
		return flw_err(rq, 400, "Invalid reference");
	if (ref != NULL && sb_charge_by_cref(sb, SB_FLW, ref) != NULL)
		return flw_err(rq, 400, "Duplicate reference");
	if (ends_with(cust, "9901")) {
		/* magic: the biller refuses; nothing is charged */
		return flw_err(rq, 400, "Bill payment failed: biller declined");
	}
	c = sb_charge_new(sb, SB_FLW, SB_K_BILL);
	if (c == NULL)
		return flw_err(rq, 500, "An error occurred. Please try again.");
	do
		bill_ref(sb, "CF-FLYAPI-", c->ref, sizeof(c->ref));
	while (sb_charge_by_ref(sb, SB_FLW, c->ref) != NULL);
	bill_ref(sb, "BPUSSD", c->alt, sizeof(c->alt));
	if (ref != NULL)
		sb_copy(c->cref, sizeof(c->cref), ref);
	sb_copy(c->msisdn, sizeof(c->msisdn), cust);
	sb_copy(c->currency, sizeof(c->currency), "NGN");
	c->cents = cents;
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	if (b->type == BT_POWER) {
		uint64_t v = sb_rng_next(&sb->rng_id);

		snprintf(tok, sizeof(tok), "%04u-%04u-%04u-%04u-%04u",
		         (unsigned)(v % 10000), (unsigned)(v / 10000 % 10000),
		         (unsigned)(v / 100000000 % 10000),
		         (unsigned)(v / 1000000000000 % 10000),
		         (unsigned)(v / 10000000000000000 % 10000));
	}
	c->echo = json_pack("{s:s,s:s,s:s,s:s?}", "product", b->biller_name,
	                    "product_name", b->short_name, "type",
	                    type_names[b->type], "token", tok[0] ? tok : NULL);
	sb_copy(c->code, sizeof(c->code), "successful");
	sb_charge_index(sb, c);
	rq->charge = c;
	if (ends_with(cust, "9902")) {
		sb_charge_schedule(sb, c); /* magic: pending for a while */
	} else {
		c->state = SB_SUCCEEDED;
		c->done_ms = c->created_ms;
	}
	{
		json_t *d = json_pack(
		    "{s:s,s:o,s:s,s:s,s:s,s:s?}", "phone_number", cust,
		    "amount", json_deep_copy(amount), "network", b->short_name,
		    "flw_ref", c->ref, "tx_ref", c->alt, "reference", ref);

		if (tok[0] != '\0')
			json_object_set_new(d, "token", json_string(tok));
		ok(rq, 200,
		   c->state == SB_PENDING ? "Bill payment is processing"
		                          : "Bill payment successful",
		   d);
	}
	return 0;
}

static int
bill_status(struct sb_rq *rq, const char *ref)
{
	struct sb *sb = rq->sb;
	struct sb_charge *c = sb_charge_by_ref(sb, SB_FLW, ref);
	char amt[40], when[40], details[80], extra[64];
	const char *tok;

	if (c == NULL)
		c = sb_charge_by_cref(sb, SB_FLW, ref);
	if (c == NULL)
		c = sb_charge_by_alt(sb, SB_FLW, ref);
	if (c == NULL || c->kind != SB_K_BILL)
		return flw_err(rq, 400,
		               "No bill payment found for this reference");
	snprintf(amt, sizeof(amt), "%" PRId64 ".%02" PRId64 "00",
	         c->cents / 100, c->cents % 100);
	iso_time(when, sizeof(when), c->created_ms);
	snprintf(details, sizeof(details), "FLY-API-NG-%s-%s",
	         json_string_value(json_object_get(c->echo, "type")),
	         json_string_value(json_object_get(c->echo, "product_name")));
	tok = sb_jstr(c->echo, "token");
	if (tok != NULL && c->state == SB_SUCCEEDED)
		snprintf(extra, sizeof(extra), "Token : %s", tok);
	ok(rq, 200, "Bill status fetch successful",
	   json_pack("{s:s,s:s,s:s,s:s,s:O,s:O,s:i,s:s,s:s,s:s,s:s?,s:s,s:s}",
	             "currency", c->currency, "customer_id", c->msisdn,
	             "frequency", "One Time", "amount", amt, "product",
	             json_object_get(c->echo, "product"), "product_name",
	             json_object_get(c->echo, "product_name"), "commission", 0,
	             "transaction_date", when, "country", "NG", "tx_ref",
	             c->ref, "extra",
	             tok != NULL && c->state == SB_SUCCEEDED ? extra : NULL,
	             "product_details", details, "status",
	             c->state == SB_PENDING ? "pending" : "successful"));
	return 0;
}

/* ------------------------------------------------------------ momo */

struct charge_type {
	const char *type, *payment_type, *auth_model, *event_type;
	const char *currency; /* required currency, NULL: XAF or XOF */
};

static const struct charge_type charge_types[] = {
    {"mpesa", "mpesa", "LIPA_MPESA", "MPESA_TRANSACTION", "KES"},
    {"mobile_money_ghana", "mobilemoneygh", "MOBILEMONEY",
     "MOBILEMONEYGH_TRANSACTION", "GHS"},
    {"mobile_money_franco", "mobilemoneyfranco", "MOBILEMONEY",
     "MOBILEMONEYFRANCO_TRANSACTION", NULL},
    {"mobile_money_uganda", "mobilemoneyug", "MOBILEMONEY",
     "MOBILEMONEYUG_TRANSACTION", "UGX"},
    {"mobile_money_rwanda", "mobilemoneyrw", "MOBILEMONEY",
     "MOBILEMONEYRW_TRANSACTION", "RWF"},
    {"mobile_money_zambia", "mobilemoneyzm", "MOBILEMONEY",
     "MOBILEMONEYZM_TRANSACTION", "ZMW"},
    {"mobile_money_tanzania", "mobilemoneytz", "MOBILEMONEY",
     "MOBILEMONEYTZ_TRANSACTION", "TZS"},
};
#define N_TYPES (sizeof(charge_types) / sizeof(charge_types[0]))

static const struct charge_type *
type_of(const struct sb_charge *c)
{
	const char *t = sb_jstr(c->echo, "_type");
	size_t i;

	for (i = 0; i < N_TYPES && t != NULL; i++)
		if (strcmp(charge_types[i].type, t) == 0)
			return &charge_types[i];
	return &charge_types[0];
}

/* The transaction object of verify and of the webhook. */
static json_t *
tx_object(const struct sb_charge *c, bool lie)
{
	json_t *d = json_deep_copy(c->echo);
	bool good = (c->state == SB_SUCCEEDED) != lie;
	const char *st;

	if (d == NULL)
		abort();
	json_object_del(d, "_type");
	if (c->state == SB_PENDING && !lie)
		st = "pending";
	else
		st = good ? "successful" : "failed";
	json_object_set_new(d, "status", json_string(st));
	json_object_set_new(d, "processor_response",
	                    json_string(c->state == SB_PENDING && !lie
	                                    ? "Transaction in progress"
	                                : good ? "Approved"
	                                       : "Transaction declined"));
	return d;
}

static int
charge(struct sb_rq *rq, json_t *j)
{
	struct sb *sb = rq->sb;
	const char *type = sb_rq_query(rq, "type");
	const struct charge_type *ct = NULL;
	const char *txref = sb_jstr(j, "tx_ref"), *cur = sb_jstr(j, "currency");
	const char *email = sb_jstr(j, "email"),
		   *phone = sb_jstr(j, "phone_number");
	const char *name = sb_jstr(j, "fullname");
	const json_t *amount = json_object_get(j, "amount");
	struct sb_charge *c;
	char when[40], id[24];
	int64_t cents, fee;
	json_t *data;
	size_t i;

	for (i = 0; i < N_TYPES && type != NULL; i++)
		if (strcmp(charge_types[i].type, type) == 0)
			ct = &charge_types[i];
	if (ct == NULL)
		return flw_err(rq, 400, "Invalid charge type");
	if (txref == NULL || *txref == '\0' || strlen(txref) >= SB_REF_MAX)
		return flw_err(rq, 400, "tx_ref is required");
	if (!(json_is_integer(amount) || json_is_real(amount) ||
	      json_is_string(amount)) ||
	    !sb_amount_cents(amount, &cents) || cents <= 0)
		return flw_err(rq, 400, "amount is required");
	if (cur == NULL ||
	    (ct->currency ? strcmp(cur, ct->currency) != 0
	                  : strcmp(cur, "XAF") != 0 && strcmp(cur, "XOF") != 0))
		return flw_err(rq, 400,
		               "Invalid currency for this charge type");
	if (email == NULL || strchr(email, '@') == NULL)
		return flw_err(rq, 400, "email is required");
	if (phone == NULL || !sb_all_digits(phone) || strlen(phone) < 9 ||
	    strlen(phone) > 15)
		return flw_err(rq, 400, "phone_number is required");
	if (strcmp(ct->type, "mobile_money_ghana") == 0) {
		const char *net = sb_jstr(j, "network");

		if (net == NULL ||
		    (strcmp(net, "MTN") != 0 && strcmp(net, "VODAFONE") != 0 &&
		     strcmp(net, "TIGO") != 0 && strcmp(net, "TELECEL") != 0))
			return flw_err(rq, 400, "network is required");
	}
	if (strcmp(ct->type, "mobile_money_franco") == 0 &&
	    sb_jstr(j, "country") == NULL)
		return flw_err(rq, 400, "country is required");
	if (sb_charge_by_cref(sb, SB_FLW, txref) != NULL)
		return flw_err(
		    rq, 400, "Transaction with this reference already exists");
	c = sb_charge_new(sb, SB_FLW, SB_K_FLW_CHARGE);
	if (c == NULL)
		return flw_err(rq, 500, "An error occurred. Please try again.");
	snprintf(id, sizeof(id), "%" PRIu64, sb->next_numeric_id++);
	sb_copy(c->alt, sizeof(c->alt), id);
	do
		sb_rng_chars(&sb->rng_id, c->ref, 10, "0123456789");
	while (c->ref[0] == '0' ||
	       sb_charge_by_ref(sb, SB_FLW, c->ref) != NULL);
	sb_copy(c->cref, sizeof(c->cref), txref);
	sb_copy(c->msisdn, sizeof(c->msisdn), phone);
	sb_copy(c->currency, sizeof(c->currency), cur);
	c->cents = cents;
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	fee = cents * 14 / 1000; /* 1.4 % app fee */
	iso_time(when, sizeof(when), c->created_ms);
	c->echo = json_pack(
	    "{s:I,s:s,s:s,s:s,s:o,s:o,s:o,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s,"
	    "s:s,s:I,s:{s:I,s:s,s:s,s:s,s:s},s:s}",
	    "id", (json_int_t)sb->next_numeric_id - 1, "tx_ref", txref,
	    "flw_ref", c->ref, "device_fingerprint", "N/A", "amount",
	    json_deep_copy(amount), "charged_amount",
	    json_real((double)(cents + fee) / 100.0), "app_fee",
	    json_real((double)fee / 100.0), "merchant_fee", 0, "auth_model",
	    ct->auth_model, "currency", cur, "ip", "127.0.0.1", "narration",
	    "soko-sandbox", "auth_url", "N/A", "payment_type", ct->payment_type,
	    "fraud_status", "ok", "created_at", when, "account_id",
	    (json_int_t)20937, "customer", "id",
	    (json_int_t)(sb->next_numeric_id + 400000), "phone_number", phone,
	    "name", name ? name : "Anonymous customer", "email", email,
	    "created_at", when, "_type", ct->type);
	if (c->echo == NULL)
		abort();
	json_object_set_new(c->echo, "charge_type", json_string("normal"));
	sb_copy(c->code, sizeof(c->code), "successful");
	if (ends_with(phone, "9901")) {
		c->outcome = SB_FAILED;
		sb_copy(c->code, sizeof(c->code), "failed");
	}
	sb_charge_index(sb, c);
	rq->charge = c;
	if (!ends_with(phone, "9902"))
		sb_charge_schedule(sb, c);
	if (strcmp(ct->type, "mobile_money_ghana") == 0) {
		char redir[160];

		snprintf(redir, sizeof(redir),
		         "https://ravemodal-dev.herokuapp.com/captcha/verify/"
		         "%s:%s",
		         id, c->ref);
		sb_rq_json(rq, 200,
		           json_pack("{s:s,s:s,s:{s:{s:s,s:s}}}", "status",
		                     "success", "message", "Charge initiated",
		                     "meta", "authorization", "redirect", redir,
		                     "mode", "redirect"));
		return 0;
	}
	data = tx_object(c, false);
	if (strcmp(ct->type, "mobile_money_franco") == 0) {
		sb_rq_json(rq, 200,
		           json_pack("{s:s,s:s,s:o,s:{s:{s:s,s:n}}}", "status",
		                     "success", "message", "Charge initiated",
		                     "data", data, "meta", "authorization",
		                     "mode", "callback", "redirect_url"));
		return 0;
	}
	ok(rq, 200, "Charge initiated", data);
	return 0;
}

static int
verify(struct sb_rq *rq, const char *id, const char *txref)
{
	struct sb_charge *c = id ? sb_charge_by_alt(rq->sb, SB_FLW, id)
	                         : sb_charge_by_cref(rq->sb, SB_FLW, txref);

	if (c == NULL || c->kind != SB_K_FLW_CHARGE)
		return flw_err(rq, 400,
		               id ? "No transaction was found for this id"
		                  : "No transaction was found for this tx_ref");
	ok(rq, 200, "Transaction fetched successfully", tx_object(c, false));
	return 0;
}

int
sb_flw_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                struct sb_cbmsg *m)
{
	json_t *j;

	if (c->kind != SB_K_FLW_CHARGE || sb->webhook[SB_FLW] == NULL)
		return -1;
	j = json_pack("{s:s,s:o,s:s}", "event", "charge.completed", "data",
	              tx_object(c, lie), "event.type", type_of(c)->event_type);
	m->url = sb_xstrdup(sb->webhook[SB_FLW]);
	m->body = json_dumps(j, SB_JSON_FLAGS);
	json_decref(j);
	if (m->body == NULL)
		abort();
	sb_copy(m->hdr_buf, sizeof(m->hdr_buf), sb->cr.flw_hash);
	m->hdr[0].name = "verif-hash";
	m->hdr[0].value = m->hdr_buf;
	m->n_hdr = 1;
	return 0;
}

/* ------------------------------------------------------------ dispatch */

void
sb_flw_handle(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	const char *p = rq->path + 3; /* after "/v3" */
	const char *tok = sb_bearer(sb_rq_header(rq, "Authorization"));
	char a[64], b[64];
	bool get = rq->method == EVHTTP_REQ_GET;
	bool post = rq->method == EVHTTP_REQ_POST;
	const char *msisdn = NULL;
	json_t *j = NULL;

	a[0] = b[0] = '\0';
	if (get && strcmp(p, "/bill-categories") == 0)
		rq->op = SB_OP_FLW_BILL_CATEGORIES;
	else if (get && sscanf(p, "/bill-items/%63[^/]/validate", a) == 1 &&
	         ends_with(p, "/validate"))
		rq->op = SB_OP_FLW_BILL_VALIDATE;
	else if (post && strcmp(p, "/bills") == 0)
		rq->op = SB_OP_FLW_BILL_CREATE;
	else if (post &&
	         sscanf(p, "/billers/%63[^/]/items/%63[^/]/payment", a, b) ==
	             2 &&
	         ends_with(p, "/payment"))
		rq->op = SB_OP_FLW_BILL_CREATE;
	else if (get && strncmp(p, "/bills/", 7) == 0 && p[7] != '\0' &&
	         strchr(p + 7, '/') == NULL)
		rq->op = SB_OP_FLW_BILL_STATUS;
	else if (post && strcmp(p, "/charges") == 0)
		rq->op = SB_OP_FLW_CHARGE;
	else if (get && strcmp(p, "/transactions/verify_by_reference") == 0)
		rq->op = SB_OP_FLW_VERIFY;
	else if (get && sscanf(p, "/transactions/%63[^/]/verify", a) == 1 &&
	         ends_with(p, "/verify") && sb_all_digits(a))
		rq->op = SB_OP_FLW_VERIFY;
	if (rq->op == SB_OP_UNKNOWN) {
		flw_err(rq, 404, "Route not found");
		return;
	}
	if (post) {
		j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES,
		               NULL);
		msisdn = sb_jstr(j, "phone_number");
		if (msisdn == NULL)
			msisdn = sb_jstr(j, "customer");
		if (msisdn == NULL)
			msisdn = sb_jstr(j, "customer_id");
	}
	sb_rq_faults(rq, msisdn,
	             rq->op == SB_OP_FLW_CHARGE ||
	                 rq->op == SB_OP_FLW_BILL_CREATE);
	if (tok == NULL || strlen(tok) != strlen(sb->cr.flw_secret) ||
	    !sb_ct_eq(tok, sb->cr.flw_secret, strlen(tok)) ||
	    (rq->faults & SB_FBIT(SB_F_EXPIRED_TOKEN))) {
		flw_err(rq, 401, "Invalid authorization key");
		goto out;
	}
	if (post && !json_is_object(j)) {
		flw_err(rq, 400, "Invalid JSON body");
		goto out;
	}
	switch (rq->op) {
	case SB_OP_FLW_BILL_CATEGORIES:
		categories(rq);
		break;
	case SB_OP_FLW_BILL_VALIDATE:
		validate(rq, a);
		break;
	case SB_OP_FLW_BILL_CREATE:
		bill_create(rq, j, b[0] ? a : NULL, b[0] ? b : NULL);
		break;
	case SB_OP_FLW_BILL_STATUS:
		bill_status(rq, p + 7);
		break;
	case SB_OP_FLW_CHARGE:
		charge(rq, j);
		break;
	case SB_OP_FLW_VERIFY:
		if (a[0] != '\0') {
			verify(rq, a, NULL);
		} else {
			const char *t = sb_rq_query(rq, "tx_ref");

			if (t == NULL)
				flw_err(rq, 400, "tx_ref is required");
			else
				verify(rq, NULL, t);
		}
		break;
	default:
		flw_err(rq, 404, "Route not found");
	}
out:
	json_decref(j);
}
