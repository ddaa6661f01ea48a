/*
 * svc_recon.c - reconciliation of unknown payments (svc_recon.h).
 */
#include "svc_recon.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "payment.h"
#include "sha256.h"
#include "svc_bill.h"
#include "svc_prov.h"

#define ERR(e, s, c, m)                                                      \
	do {                                                                 \
		(e)->status = (s);                                           \
		(e)->code = (c);                                             \
		(e)->message = (m);                                          \
		return -1;                                                   \
	} while (0)

/* Free text for people: no control characters (a log line stays one
 * line), UTF-8 checked by the JSON parser or sokoctl's caller. */
static bool
text_ok(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s), i;

	if (n < min || n > max)
		return false;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

int
svc_recon_check(const struct store_prov_resolution *res,
                struct svc_error *err)
{
	if (res->outcome != PAY_SUCCEEDED && res->outcome != PAY_FAILED)
		ERR(err, 422, "outcome_invalid",
		    "outcome must be \"succeeded\" or \"failed\"");
	if (!svc_admin_all_of(res->actor,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789._@:-",
	            1, STORE_ACTOR_MAX))
		ERR(err, 422, "actor_invalid",
		    "actor must be 1..64 of A-Z a-z 0-9 . _ @ : -");
	if (!text_ok(res->evidence, 1, STORE_EVIDENCE_MAX))
		ERR(err, 422, "evidence_invalid",
		    "evidence must be 1..256 bytes without control "
		    "characters");
	if (!svc_admin_all_of(res->provider_ref,
	            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	            "0123456789._:/-",
	            0, STORE_PREF_MAX))
		ERR(err, 422, "provider_ref_invalid",
		    "provider_ref must be 0..64 of A-Z a-z 0-9 . _ : / -");
	return 0;
}

/* String member name of o into dst[cap]: 0, or -1 with *err. */
static int
str_field(json_t *o, const char *name, bool required, char *dst, size_t cap,
          struct svc_error *err)
{
	json_t *v = json_object_get(o, name);

	dst[0] = '\0';
	if (v == NULL) {
		if (required)
			ERR(err, 400, "field_missing",
			    "outcome, evidence and actor are required");
		return 0;
	}
	if (!json_is_string(v))
		ERR(err, 400, "field_type", "a field has the wrong JSON type");
	if (json_string_length(v) != strlen(json_string_value(v)))
		ERR(err, 400, "field_invalid", "a string contains NUL");
	if (json_string_length(v) >= cap)
		ERR(err, 400, "field_too_long", "a string field is too long");
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

int
svc_recon_parse(struct store_prov_resolution *out, const char *body,
                size_t len, struct svc_error *err)
{
	static const char *const fields[] = {"outcome", "evidence", "actor",
	                                     "provider_ref"};
	struct store_prov_resolution res;
	json_t *root;
	char outcome[16];
	int rc = -1;

	memset(&res, 0, sizeof res);
	root = svc_admin_json_object(body, len, fields,
	                             sizeof fields / sizeof fields[0], err);
	if (root == NULL)
		return -1;
	if (str_field(root, "outcome", true, outcome, sizeof outcome, err) ||
	    str_field(root, "evidence", true, res.evidence,
	              sizeof res.evidence, err) ||
	    str_field(root, "actor", true, res.actor, sizeof res.actor, err) ||
	    str_field(root, "provider_ref", false, res.provider_ref,
	              sizeof res.provider_ref, err))
		goto out;
	if (strcmp(outcome, "succeeded") == 0)
		res.outcome = PAY_SUCCEEDED;
	else if (strcmp(outcome, "failed") == 0)
		res.outcome = PAY_FAILED;
	if (svc_recon_check(&res, err) != 0)
		goto out;
	*out = res;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

void
svc_recon_hash(struct store_prov_resolution *res, const char *ref)
{
	char canon[PAYMENT_REF_MAX + STORE_ACTOR_MAX + STORE_EVIDENCE_MAX +
	           STORE_PREF_MAX + 32];
	int n;

	/* lengths first: no field can borrow bytes from its neighbour */
	n = snprintf(canon, sizeof canon, "resolve|%zu:%s|%u|%zu:%s|%zu:%s|%s",
	             strlen(ref), ref, (unsigned)res->outcome,
	             strlen(res->actor), res->actor, strlen(res->evidence),
	             res->evidence, res->provider_ref);
	sha256_digest(res->req_hash, canon,
	              n < 0 ? 0
	              : (size_t)n >= sizeof canon ? sizeof canon - 1
	                                          : (size_t)n);
}

/* An unknown payment whose call is closed, or -1 with *err. */
static int
closed_unknown(const struct store_prov *p, struct svc_error *err)
{
	if (p->pay.state != PAY_UNKNOWN)
		ERR(err, 409, "payment_not_unknown",
		    "only an unknown payment can be reconciled; a final "
		    "state is never changed");
	if (p->call_state != STORE_CALL_DONE)
		ERR(err, 409, "payment_busy",
		    "a status query for this payment is under way; try "
		    "again once it is answered");
	return 0;
}

enum svc_recon_rc
svc_recon_resolve(const struct store_prov *p,
                  const struct store_prov_resolution *prior,
                  struct store_prov_resolution *res,
                  struct store_prov_update *u, struct ledger_req *r,
                  struct svc_error *err)
{
	res->payment_id = p->pay.id;
	if (prior != NULL) {
		bool same_key = strcmp(prior->idem_key, res->idem_key) == 0;

		if (same_key && memcmp(prior->req_hash, res->req_hash,
		                       sizeof res->req_hash) == 0)
			return SVC_RECON_REPLAY;
		err->status = 409;
		err->code = same_key ? "idempotency_key_mismatch"
		                     : "payment_resolved";
		err->message = same_key ? "this Idempotency-Key resolved the "
		                          "payment with other content"
		                        : "this payment was resolved by hand "
		                          "already";
		return SVC_RECON_REFUSED;
	}
	if (closed_unknown(p, err) != 0)
		return SVC_RECON_REFUSED;
	svc_prov_unchanged(p, u);
	u->to_state = res->outcome;
	u->reason = res->outcome == PAY_SUCCEEDED
	                    ? "resolved by hand: succeeded"
	                    : "resolved by hand: failed";
	u->call_state = STORE_CALL_DONE;
	u->result_code = "resolved";
	if (res->outcome == PAY_SUCCEEDED && res->provider_ref[0] != '\0')
		u->receipt = res->provider_ref;
	u->resolution = res;
	/* exactly the postings the provider's own answer would have made */
	if (svc_prov_posts(p, u)) {
		svc_prov_settle_req(p, u, r);
		return SVC_RECON_POST;
	}
	if (svc_bill_refund_req(p, u, r))
		return SVC_RECON_POST;
	return SVC_RECON_WRITE;
}

int
svc_recon_requery(const struct store_prov *p, bool can_query, int64_t now_ms,
                  struct store_prov_update *u, struct svc_error *err)
{
	if (closed_unknown(p, err) != 0)
		return -1;
	if (!can_query)
		ERR(err, 409, "payment_not_queryable",
		    "the provider cannot be asked about this payment (no "
		    "reference of theirs is known); resolve it by hand");
	svc_prov_unchanged(p, u);
	u->call_state = p->provider_ref[0] != '\0' ? STORE_CALL_ACCEPTED
	                                           : STORE_CALL_LOST;
	u->next_at_ms = now_ms;
	/* the reopened row's own bound on queries that cannot leave
	 * (svc_prov_due); the count of earlier queries is in the log */
	u->checks = 0;
	return 0;
}
