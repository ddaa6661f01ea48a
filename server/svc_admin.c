/*
 * svc_admin.c - manual ledger movements: parse, validate, build, render
 * (svc_admin.h).  JSON through jansson: duplicate keys, invalid UTF-8 and
 * trailing garbage are refused by the parser itself.
 */
#include "svc_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "util.h"

#define ERR(e, st, c, m)                                                     \
	do {                                                                 \
		(e)->status = (st);                                          \
		(e)->code = (c);                                             \
		(e)->message = (m);                                          \
		return -1;                                                   \
	} while (0)

static int
money_err(struct svc_error *err, enum money_rc rc)
{
	const char *msg = "invalid amount";

	switch (rc) {
	case MONEY_ZERO:
		msg = "amount must be greater than zero";
		break;
	case MONEY_NEGATIVE:
		msg = "amount must not be negative";
		break;
	case MONEY_TOO_LARGE:
		msg = "amount exceeds the maximum (10^15 minor units)";
		break;
	case MONEY_PRECISION:
		msg = "amount has more decimals than the currency allows";
		break;
	case MONEY_BAD_FORMAT:
		msg = "amount must be a decimal string such as \"1500.00\"";
		break;
	default:
		break;
	}
	ERR(err, rc == MONEY_BAD_FORMAT ? 400 : 422, money_rc_name(rc), msg);
}

/* Copies string member `name` of o into dst[cap]; required or not. */
static int
get_str(json_t *o, const char *name, char *dst, size_t cap, int required,
        struct svc_error *err)
{
	json_t *v = json_object_get(o, name);
	const char *s;

	if (v == NULL) {
		if (required)
			ERR(err, 400, "field_missing",
			    "a required field is missing (type, currency, "
			    "amount, debit, credit)");
		dst[0] = '\0';
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

int
svc_admin_parse_movement(struct svc_movement *out, const char *body,
                         size_t len, struct svc_error *err)
{
	struct svc_movement m;
	json_error_t jerr;
	json_t *root, *lim;
	char type[32], cur[8], amount[40];
	const char *key;
	json_t *val;
	int rc = -1, kind;

	memset(&m, 0, sizeof m);
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		err->status = 400;
		err->code = "bad_json";
		err->message = "body is not valid JSON (UTF-8, no duplicate "
		               "keys)";
		return -1;
	}
	if (!json_is_object(root)) {
		err->status = 400;
		err->code = "bad_json";
		err->message = "body must be a JSON object";
		goto out;
	}
	json_object_foreach(root, key, val)
	{
		if (strcmp(key, "type") != 0 && strcmp(key, "currency") != 0 &&
		    strcmp(key, "amount") != 0 && strcmp(key, "debit") != 0 &&
		    strcmp(key, "credit") != 0 && strcmp(key, "memo") != 0 &&
		    strcmp(key, "limits") != 0) {
			err->status = 400;
			err->code = "field_unknown";
			err->message = "unknown field in body";
			goto out;
		}
	}
	if (get_str(root, "type", type, sizeof type, 1, err) != 0 ||
	    get_str(root, "currency", cur, sizeof cur, 1, err) != 0 ||
	    get_str(root, "amount", amount, sizeof amount, 1, err) != 0 ||
	    get_str(root, "debit", m.debit, sizeof m.debit, 1, err) != 0 ||
	    get_str(root, "credit", m.credit, sizeof m.credit, 1, err) != 0 ||
	    get_str(root, "memo", m.memo, sizeof m.memo, 0, err) != 0)
		goto out;
	kind = ledger_txn_kind_parse(type);
	if (kind != LEDGER_TXN_FLOAT_TOPUP && kind != LEDGER_TXN_ADJUSTMENT) {
		err->status = 422;
		err->code = "type_unknown";
		err->message = "type must be float_topup or adjustment";
		goto out;
	}
	m.kind = (uint8_t)kind;
	if ((m.cur = money_currency_by_alpha(cur)) == NULL) {
		err->status = 422;
		err->code = "currency_unknown";
		err->message = "currency is not a supported ISO 4217 code";
		goto out;
	}
	{
		enum money_rc mr = money_parse(&m.amount_minor, m.cur, amount,
		                               strlen(amount));

		if (mr != MONEY_OK) {
			money_err(err, mr);
			goto out;
		}
	}
	if ((lim = json_object_get(root, "limits")) != NULL) {
		size_t n = 0;

		if (!json_is_object(lim)) {
			err->status = 400;
			err->code = "field_type";
			err->message = "limits must be an object";
			goto out;
		}
		json_object_foreach(lim, key, val)
		{
			int sk = ledger_subject_kind_parse(key);
			const char *id;

			if (sk < 0 || n == LEDGER_SUBJECTS_MAX) {
				err->status = 400;
				err->code = "field_unknown";
				err->message = "limits takes agent, msisdn, "
				               "terminal, merchant";
				goto out;
			}
			id = json_string_value(val);
			if (id == NULL || id[0] == '\0' ||
			    strlen(id) > LEDGER_SUBJECT_MAX ||
			    json_string_length(val) != strlen(id)) {
				err->status = 400;
				err->code = "field_invalid";
				err->message = "a limits id must be a string of "
				               "1..40 bytes";
				goto out;
			}
			m.subjects[n].kind = (uint8_t)sk;
			memcpy(m.subjects[n++].id, id, strlen(id) + 1);
		}
	}
	*out = m;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

bool
svc_admin_all_of(const char *s, const char *set, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, set) == n;
}

json_t *
svc_admin_json_object(const char *body, size_t len,
                      const char *const *fields, size_t n_fields,
                      struct svc_error *err)
{
	json_error_t jerr;
	json_t *root, *val;
	const char *key;
	size_t i;

	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root)) {
		err->status = 400;
		err->code = "bad_json";
		err->message = "body must be a JSON object (UTF-8, no "
		               "duplicate keys)";
		json_decref(root);
		return NULL;
	}
	json_object_foreach(root, key, val)
	{
		for (i = 0; i < n_fields; i++)
			if (strcmp(key, fields[i]) == 0)
				break;
		if (i == n_fields) {
			err->status = 400;
			err->code = "field_unknown";
			err->message = "unknown field in body";
			json_decref(root);
			return NULL;
		}
	}
	return root;
}

int
svc_admin_parse_collection(struct svc_collection *out, const char *body,
                           size_t len, struct svc_error *err)
{
	static const char *const fields[] = {"provider", "msisdn", "amount",
	                                     "currency", "account",
	                                     "reference"};
	struct svc_collection c;
	json_t *root;
	char cur[8], amount[40];
	enum money_rc mr;
	int rc = -1;

	memset(&c, 0, sizeof c);
	root = svc_admin_json_object(body, len, fields,
	                             sizeof fields / sizeof fields[0], err);
	if (root == NULL)
		return -1;
	if (get_str(root, "provider", c.provider, sizeof c.provider, 1, err) ||
	    get_str(root, "msisdn", c.msisdn, sizeof c.msisdn, 1, err) ||
	    get_str(root, "amount", amount, sizeof amount, 1, err) ||
	    get_str(root, "currency", cur, sizeof cur, 1, err) ||
	    get_str(root, "account", c.account, sizeof c.account, 1, err) ||
	    get_str(root, "reference", c.reference, sizeof c.reference, 0,
	            err))
		goto out;
	if (!svc_admin_all_of(c.msisdn, "0123456789", 9, 15)) {
		err->status = 422;
		err->code = "msisdn_invalid";
		err->message = "msisdn must be 9..15 digits, international "
		               "form without +";
		goto out;
	}
	if (c.reference[0] != '\0' &&
	    !svc_admin_all_of(c.reference,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789-",
	            1, 12)) {
		err->status = 422;
		err->code = "reference_invalid";
		err->message = "reference must be 1..12 of A-Z a-z 0-9 -";
		goto out;
	}
	if ((c.cur = money_currency_by_alpha(cur)) == NULL) {
		err->status = 422;
		err->code = "currency_unknown";
		err->message = "currency is not a supported ISO 4217 code";
		goto out;
	}
	mr = money_parse(&c.amount_minor, c.cur, amount, strlen(amount));
	if (mr != MONEY_OK) {
		money_err(err, mr);
		goto out;
	}
	*out = c;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

int
svc_admin_check_key(const char *key, struct svc_error *err)
{
	size_t n;

	if (key == NULL || key[0] == '\0')
		ERR(err, 400, "idempotency_key_missing",
		    "the Idempotency-Key header is required");
	n = strlen(key);
	if (n > SVC_IDEM_KEY_MAX)
		ERR(err, 400, "idempotency_key_invalid",
		    "Idempotency-Key is longer than 100 bytes");
	if (strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                "0123456789._:-") != n)
		ERR(err, 400, "idempotency_key_invalid",
		    "Idempotency-Key may hold only A-Z a-z 0-9 . _ : -");
	return 0;
}

int
svc_admin_build(struct ledger_req *r, const struct svc_movement *m,
                const char *idem_key, const struct ledger_account *debit,
                const struct ledger_account *credit, struct svc_error *err)
{
	if (debit == NULL || credit == NULL)
		ERR(err, 422, "account_unknown",
		    "debit or credit account does not exist");
	if (debit->id == credit->id)
		ERR(err, 422, "same_account",
		    "debit and credit must be different accounts");
	if (debit->currency != m->cur->numeric ||
	    credit->currency != m->cur->numeric)
		ERR(err, 422, "currency_mismatch",
		    "an account is held in another currency");
	if (m->kind == LEDGER_TXN_FLOAT_TOPUP &&
	    credit->type != LEDGER_ACCT_AGENT_FLOAT)
		ERR(err, 422, "account_type_invalid",
		    "a float top-up must credit an agent_float account");
	memset(r, 0, sizeof *r);
	snprintf(r->idem_key, sizeof r->idem_key, "http:%s", idem_key);
	r->kind = m->kind;
	r->currency = m->cur->numeric;
	r->n_legs = 2;
	r->legs[0].account_id = debit->id;
	r->legs[0].amount_minor = -m->amount_minor;
	r->legs[1].account_id = credit->id;
	r->legs[1].amount_minor = m->amount_minor;
	r->limit_amount = m->amount_minor;
	memcpy(r->subjects, m->subjects, sizeof r->subjects);
	strlcpy_s(r->memo, m->memo, sizeof r->memo);
	ledger_req_hash(r);
	return 0;
}

int
svc_admin_status(enum ledger_rc rc)
{
	switch (rc) {
	case LEDGER_OK:
		return 201;
	case LEDGER_IDEM_MISMATCH:
		return 409;
	case LEDGER_BAD_REQUEST:
		return 400;
	case LEDGER_RETRY:
		return 503;
	default:
		return 422;
	}
}

static void
iso_time(char *dst, size_t cap, int64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	size_t n;

	gmtime_r(&s, &tm);
	n = strftime(dst, cap, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(dst + n, cap - n, ".%03dZ", (int)(ms % 1000));
}

static char *
dump(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(o);
	if (s == NULL)
		abort(); /* out of memory */
	return s;
}

char *
svc_admin_render(const struct svc_movement *m, const struct ledger_result *res)
{
	char amount[40], when[40];
	json_t *o;

	if (res->rc != LEDGER_OK) {
		struct svc_error e = {svc_admin_status(res->rc),
		                      ledger_rc_name(res->rc), NULL};

		switch (res->rc) {
		case LEDGER_IDEM_MISMATCH:
			e.message = "this Idempotency-Key was used with a "
			            "different request";
			break;
		case LEDGER_INSUFFICIENT_FUNDS:
			e.message = "the debit account would go below its floor";
			break;
		case LEDGER_RETRY:
			e.message = "storage unavailable; retry with the same "
			            "Idempotency-Key";
			break;
		case LEDGER_LIMIT_PER_TXN:
		case LEDGER_LIMIT_DAILY:
		case LEDGER_LIMIT_VELOCITY:
			e.message = "a limit would be exceeded";
			break;
		default:
			e.message = "the ledger refused the movement";
			break;
		}
		return svc_admin_render_error(&e);
	}
	money_format(amount, sizeof amount, m->cur, m->amount_minor);
	iso_time(when, sizeof when, res->created_ms);
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "txn_id",
	              (json_int_t)res->txn_id, "status", "committed", "type",
	              ledger_txn_kind_name(m->kind), "currency", m->cur->alpha,
	              "amount", amount, "debit", m->debit, "credit", m->credit,
	              "created_at", when);
	if (o == NULL)
		abort();
	return dump(o);
}

char *
svc_admin_render_error(const struct svc_error *e)
{
	json_t *o = json_pack("{s:s, s:s}", "error", e->code, "message",
	                      e->message ? e->message : "");

	if (o == NULL)
		abort();
	return dump(o);
}

char *
svc_admin_render_account(const struct ledger_account *a)
{
	const struct currency *c = money_currency_by_numeric(a->currency);
	char bal[40], floor[40];
	json_t *o;

	money_format(bal, sizeof bal, c, a->balance_minor);
	money_format(floor, sizeof floor, c, a->floor_minor);
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:b}", "id",
	              (json_int_t)a->id, "code", a->code, "type",
	              ledger_account_type_name(a->type), "currency",
	              c ? c->alpha : "?", "balance", bal, "floor",
	              a->has_floor ? json_string(floor) : json_null(),
	              "closed", a->is_closed);
	if (o == NULL)
		abort();
	return dump(o);
}
