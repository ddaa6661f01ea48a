/*
 * sb_momo.c - MTN MoMo Open API as soko-sandbox plays it
 * (reference/wire-formats.md §2; tests/sandbox/README.md "MTN MoMo").
 *
 * Collection (token, requesttopay, status) and disbursement (token,
 * transfer, status).  The client's X-Reference-Id (a UUID v4) is the
 * transaction id: a second request with the same id is refused with 409
 * RESOURCE_ALREADY_EXIST and creates nothing.  A FAILED transaction is
 * still a 200 on GET, with "reason".  The callback is the GET body, sent
 * once to X-Callback-Url (no retries), POST by default.
 */
#include "sb.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <event2/http.h>

/* §2.8 magic MSISDNs (UNCONFIRMED upstream; README "Magic numbers") */
struct magic {
	const char *msisdn;
	bool pending; /* never completes */
	const char *reason;
};
static const struct magic magics[] = {
    {"46733123450", false, "INTERNAL_PROCESSING_ERROR"},
    {"46733123451", false, "APPROVAL_REJECTED"},
    {"46733123452", false, "EXPIRED"},
    {"46733123453", true, NULL}, /* ONGOING */
    {"46733123454", true, NULL}, /* PENDING */
    {"46733123455", false, "PAYER_NOT_FOUND"},
    {"46733123456", false, "NOT_ENOUGH_FUNDS"},
    {"46733123457", false, "PAYEE_NOT_FOUND"},
};

static void
momo_err(struct sb_rq *rq, int status, const char *code, const char *msg)
{
	sb_rq_json(rq, status,
	           json_pack("{s:s,s:s}", "code", code, "message", msg));
}

void
sb_momo_error500(struct sb_rq *rq)
{
	momo_err(rq, 500, "INTERNAL_PROCESSING_ERROR",
	         "An internal error occurred while processing.");
}

static bool
is_uuid4(const char *s)
{
	static const int dash[] = {8, 13, 18, 23};
	size_t i, k = 0;

	if (strlen(s) != 36)
		return false;
	for (i = 0; i < 36; i++) {
		if (k < 4 && (int)i == dash[k]) {
			if (s[i] != '-')
				return false;
			k++;
		} else if (!isxdigit((unsigned char)s[i])) {
			return false;
		}
	}
	return s[14] == '4' && strchr("89abAB", s[19]) != NULL;
}

/* payerMessage / payeeNote: at most 160 characters, no apostrophe. */
static bool
note_ok(const json_t *v)
{
	const char *s;

	if (v == NULL)
		return true;
	if (!json_is_string(v))
		return false;
	s = json_string_value(v);
	return strlen(s) <= 160 && strchr(s, '\'') == NULL;
}

static json_t *
status_body(const struct sb_charge *c, bool lie)
{
	json_t *j = json_deep_copy(c->echo);
	bool ok = (c->state == SB_SUCCEEDED) != lie;

	if (j == NULL)
		abort();
	if (c->state == SB_PENDING && !lie) {
		json_object_set_new(j, "status", json_string("PENDING"));
	} else if (ok) {
		json_object_set_new(j, "financialTransactionId",
		                    json_string(c->alt));
		json_object_set_new(j, "status", json_string("SUCCESSFUL"));
	} else {
		json_object_set_new(j, "status", json_string("FAILED"));
		json_object_set_new(
		    j, "reason",
		    json_string(lie ? "INTERNAL_PROCESSING_ERROR" : c->code));
	}
	return j;
}

static void
create(struct sb_rq *rq, bool disb)
{
	struct sb *sb = rq->sb;
	const char *ref = sb_rq_header(rq, "X-Reference-Id");
	const char *cb = sb_rq_header(rq, "X-Callback-Url");
	const char *party_key = disb ? "payee" : "payer";
	json_t *j = NULL, *party, *amount;
	const char *cur, *pt, *pid, *ext;
	struct sb_charge *c;
	struct sb_url u;
	int64_t cents;
	size_t i;

	if (ref == NULL || !is_uuid4(ref)) {
		momo_err(rq, 400, "BAD_REQUEST",
		         "X-Reference-Id must be a UUID version 4");
		return;
	}
	if (sb_charge_by_ref(sb, SB_MOMO, ref) != NULL) {
		momo_err(
		    rq, 409, "RESOURCE_ALREADY_EXIST",
		    "Duplicated reference id. Creation of resource failed.");
		return;
	}
	j = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, NULL);
	party = json_object_get(j, party_key);
	amount = json_object_get(j, "amount");
	cur = sb_jstr(j, "currency");
	pt = sb_jstr(party, "partyIdType");
	pid = sb_jstr(party, "partyId");
	ext = sb_jstr(j, "externalId");
	if (!json_is_object(j) || !json_is_string(amount) ||
	    !sb_amount_cents(amount, &cents) || cents <= 0 || cur == NULL ||
	    !json_is_object(party) || pt == NULL || pid == NULL ||
	    *pid == '\0' || strlen(pid) >= sizeof(c->msisdn) ||
	    (strcmp(pt, "MSISDN") != 0 && strcmp(pt, "EMAIL") != 0 &&
	     strcmp(pt, "PARTY_CODE") != 0) ||
	    (json_object_get(j, "externalId") != NULL && ext == NULL) ||
	    (ext != NULL && strlen(ext) > 255) ||
	    !note_ok(json_object_get(j, "payerMessage")) ||
	    !note_ok(json_object_get(j, "payeeNote"))) {
		json_decref(j);
		momo_err(rq, 400, "BAD_REQUEST",
		         "The request body does not match the schema");
		return;
	}
	if (strcmp(cur, sb->cr.momo_currency) != 0) {
		json_decref(j);
		momo_err(rq, 500, "INVALID_CURRENCY",
		         "Currency not supported.");
		return;
	}
	if (cb != NULL && sb_url_parse(&u, cb) != 0) {
		json_decref(j);
		momo_err(rq, 500, "INVALID_CALLBACK_URL_HOST",
		         "Callback URL with host not allowed.");
		return;
	}
	c = sb_charge_new(sb, SB_MOMO,
	                  disb ? SB_K_TRANSFER : SB_K_REQUESTTOPAY);
	if (c == NULL) {
		json_decref(j);
		momo_err(rq, 503, "SERVICE_UNAVAILABLE",
		         "Service temporarily unavailable.");
		return;
	}
	sb_copy(c->ref, sizeof(c->ref), ref);
	sb_copy(c->cref, sizeof(c->cref), ref);
	do {
		sb_rng_chars(&sb->rng_id, c->alt, 10, "0123456789");
		c->alt[0] = (char)('1' + sb_rng_next(&sb->rng_id) % 9);
	} while (sb_charge_by_alt(sb, SB_MOMO, c->alt) != NULL);
	sb_copy(c->msisdn, sizeof(c->msisdn), pid);
	sb_copy(c->currency, sizeof(c->currency), cur);
	c->cents = cents;
	c->url = cb ? sb_xstrdup(cb) : NULL;
	c->faults = rq->faults & SB_F_CHARGE_MASK;
	c->echo = json_pack("{s:s,s:O,s:s,s:{s:s,s:s}}", "externalId",
	                    ext ? ext : "", "amount", amount, "currency", cur,
	                    party_key, "partyIdType", pt, "partyId", pid);
	if (json_object_get(j, "payerMessage"))
		json_object_set(c->echo, "payerMessage",
		                json_object_get(j, "payerMessage"));
	if (json_object_get(j, "payeeNote"))
		json_object_set(c->echo, "payeeNote",
		                json_object_get(j, "payeeNote"));
	json_decref(j);
	c->outcome = SB_SUCCEEDED;
	sb_copy(c->code, sizeof(c->code), "SUCCESSFUL");
	sb_charge_index(sb, c);
	rq->charge = c;
	for (i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (strcmp(c->msisdn, magics[i].msisdn) == 0)
			break;
	if (i < sizeof(magics) / sizeof(magics[0]) && magics[i].pending) {
		sb_copy(c->code, sizeof(c->code), "PENDING");
	} else {
		if (i < sizeof(magics) / sizeof(magics[0])) {
			c->outcome = SB_FAILED;
			sb_copy(c->code, sizeof(c->code), magics[i].reason);
		}
		sb_charge_schedule(sb, c);
	}
	sb_rq_empty(rq, 202);
}

static void
get_status(struct sb_rq *rq, const char *id, bool disb)
{
	struct sb_charge *c = sb_charge_by_ref(rq->sb, SB_MOMO, id);

	if (c == NULL ||
	    c->kind != (disb ? SB_K_TRANSFER : SB_K_REQUESTTOPAY)) {
		momo_err(rq, 404, "RESOURCE_NOT_FOUND",
		         "Requested resource was not found.");
		return;
	}
	sb_rq_json(rq, 200, status_body(c, false));
}

int
sb_momo_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                 struct sb_cbmsg *m)
{
	json_t *j;

	if (c->url == NULL)
		return -1;
	j = status_body(c, lie);
	m->url = sb_xstrdup(c->url);
	m->body = json_dumps(j, JSON_COMPACT);
	m->method = sb->cr.momo_cb_method;
	json_decref(j);
	if (m->body == NULL)
		abort();
	return 0;
}

static void
token(struct sb_rq *rq, enum sb_op kind)
{
	struct sb *sb = rq->sb;
	int64_t ttl = sb->cr.token_ttl_s ? sb->cr.token_ttl_s : 3600;
	char tok[80];

	if (rq->method != EVHTTP_REQ_POST) {
		momo_err(rq, 405, "METHOD_NOT_ALLOWED", "Use POST.");
		return;
	}
	if (rq->body_len > 0) {
		/* §2.3: a body on /token is refused */
		momo_err(rq, 400, "BAD_REQUEST",
		         "Inputting a Body in an API that is not supported");
		return;
	}
	if (!sb_basic_ok(sb_rq_header(rq, "Authorization"), sb->cr.momo_user,
	                 sb->cr.momo_apikey)) {
		sb_rq_json(rq, 401,
		           json_pack("{s:s}", "error", "login_failed"));
		return;
	}
	sb_token_issue(sb, kind, ttl, tok, sizeof(tok));
	sb_rq_json(rq, 200,
	           json_pack("{s:s,s:s,s:I}", "access_token", tok, "token_type",
	                     "access_token", "expires_in", (json_int_t)ttl));
}

void
sb_momo_handle(struct sb_rq *rq)
{
	struct sb *sb = rq->sb;
	bool disb = strncmp(rq->path, "/disbursement/", 14) == 0;
	const char *rest = rq->path + (disb ? 13 : 11);
	const char *key = sb_rq_header(rq, "Ocp-Apim-Subscription-Key");
	const char *want = disb ? sb->cr.momo_disb_key : sb->cr.momo_coll_key;
	const char *env = sb_rq_header(rq, "X-Target-Environment");
	const char *tok;
	const char *id = NULL;
	enum sb_tok_rc trc;
	enum sb_op tok_kind =
	    disb ? SB_OP_MOMO_DISB_TOKEN : SB_OP_MOMO_COLL_TOKEN;
	const char *res = disb ? "/v1_0/transfer" : "/v1_0/requesttopay";
	size_t rl = strlen(res);
	json_t *j = NULL;
	const char *msisdn = NULL;

	if (strcmp(rest, "/token/") == 0 || strcmp(rest, "/token") == 0)
		rq->op = tok_kind;
	else if (strcmp(rest, res) == 0 && rq->method == EVHTTP_REQ_POST)
		rq->op = disb ? SB_OP_MOMO_TRANSFER : SB_OP_MOMO_RTP;
	else if (strncmp(rest, res, rl) == 0 && rest[rl] == '/' &&
	         rest[rl + 1] != '\0' && rq->method == EVHTTP_REQ_GET) {
		rq->op =
		    disb ? SB_OP_MOMO_TRANSFER_STATUS : SB_OP_MOMO_RTP_STATUS;
		id = rest + rl + 1;
	} else {
		sb_rq_json(rq, 404,
		           json_pack("{s:i,s:s}", "statusCode", 404, "message",
		                     "Resource not found"));
		return;
	}
	if (rq->op == SB_OP_MOMO_RTP || rq->op == SB_OP_MOMO_TRANSFER) {
		j = json_loadb(rq->body, rq->body_len, 0, NULL);
		msisdn = sb_jstr(json_object_get(j, disb ? "payee" : "payer"),
		                 "partyId");
	}
	sb_rq_faults(rq, msisdn,
	             rq->op == SB_OP_MOMO_RTP || rq->op == SB_OP_MOMO_TRANSFER);
	json_decref(j);
	/* Azure API Management checks the subscription key first */
	if (key == NULL || strlen(key) != strlen(want) ||
	    !sb_ct_eq(key, want, strlen(want))) {
		sb_rq_json(
		    rq, 401,
		    json_pack("{s:i,s:s}", "statusCode", 401, "message",
		              "Access denied due to invalid subscription "
		              "key. Make sure to provide a valid key for "
		              "an active subscription."));
		return;
	}
	if (rq->op == tok_kind) {
		token(rq, tok_kind);
		return;
	}
	tok = sb_bearer(sb_rq_header(rq, "Authorization"));
	trc = sb_token_check(sb, tok_kind, tok);
	if (trc == SB_TOK_OK && (rq->faults & SB_FBIT(SB_F_EXPIRED_TOKEN)))
		trc = SB_TOK_EXPIRED;
	if (trc != SB_TOK_OK) {
		/* UNCONFIRMED body (README "Deviations") */
		sb_rq_json(rq, 401,
		           json_pack("{s:i,s:s}", "statusCode", 401, "message",
		                     trc == SB_TOK_EXPIRED
		                         ? "Access token expired."
		                         : "Invalid access token."));
		return;
	}
	if (env == NULL || strcmp(env, sb->cr.momo_env) != 0) {
		momo_err(rq, 500, "NOT_ALLOWED_TARGET_ENVIRONMENT",
		         "Access to target environment is forbidden.");
		return;
	}
	if (id != NULL)
		get_status(rq, id, disb);
	else
		create(rq, disb);
}
