/*
 * svc_bill.h - decisions for bill payments (docs/payments.md §Bill
 * payments): parsing the API's requests, the ledger requests that move a
 * bill's money (funding, success, refund) and what the janitor does with a
 * bill that is due.
 *
 * Pure: no I/O, no clock (now is an argument), no libevent, no curl.  A
 * bill payment is a provider payment (store_prov, kind STORE_PROV_BILL);
 * svc_prov.c decides its calls and answers, this module adds what only a
 * bill has:
 *   - it is funded before anything is sent: the source account is debited
 *     into the holding account by a ledger request that carries the
 *     payment's created -> pending transition (ledger_req.prov), so a bill
 *     is pending exactly when its money sits in holding;
 *   - a created (unfunded) bill is never sent: at its deadline it fails,
 *     nothing having moved;
 *   - a funded bill that fails is refunded by a ledger request that
 *     carries the failed transition: holding -> source, in one commit;
 *   - success posts holding -> biller payable (svc_prov_settle_req);
 *   - unknown leaves the money in holding, for reconciliation.
 */
#ifndef SOKO_SVC_BILL_H
#define SOKO_SVC_BILL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger.h"
#include "money.h"
#include "store.h"
#include "svc_admin.h"
#include "svc_prov.h"

/* POST /v1/bills/validate body. */
struct svc_bill_validate {
	char item_code[STORE_BILL_CODE_MAX + 1];
	char biller_code[STORE_BILL_CODE_MAX + 1];
	char customer[STORE_BILL_CUSTOMER_MAX + 1];
};

/*
 * Parses {"item_code", "biller_code", "customer"}: codes 1..32 of
 * [A-Za-z0-9_-], customer 1..40 of [A-Za-z0-9+-].  Returns 0, or -1
 * with *err (400 bad_json / field_*, 422 item_code_invalid,
 * biller_code_invalid, customer_invalid).
 */
int svc_bill_parse_validate(struct svc_bill_validate *out, const char *body,
                            size_t len, struct svc_error *err);

/* POST /v1/bills body. */
struct svc_bill_pay {
	struct svc_bill_validate v;
	const struct currency *cur;
	int64_t amount_minor;
	char source[LEDGER_CODE_MAX + 1];          /* account paying */
	char customer_name[STORE_BILL_NAME_MAX + 1]; /* as validated, or "" */
};

/*
 * Parses {"item_code", "biller_code", "customer", "amount", "currency",
 * "source", "customer_name"?}.  currency must be want_currency (bills
 * are paid in the provider's currency: 422 currency_unsupported); the
 * amount > 0 with the currency's decimals (amount_*).  Returns 0, or -1
 * with *err.
 */
int svc_bill_parse_pay(struct svc_bill_pay *out, const char *body, size_t len,
                       const char *want_currency, struct svc_error *err);

/* Canonical hash of a pay request (the Idempotency-Key's content). */
void svc_bill_pay_hash(const struct svc_bill_pay *b, uint8_t out[32]);

/*
 * The ledger request that funds bill p (created, call to_send): source
 * debited, holding (p->clearing_account_id) credited, keyed
 * "bill:<ref>:fund", carrying *u (created -> pending, due now_ms), which
 * the function fills.  A source below its floor is declined by the ledger
 * (insufficient_funds) and *u is then not written.
 */
void svc_bill_fund_req(const struct store_prov *p, int64_t now_ms,
                       struct store_prov_update *u, struct ledger_req *r);

/* The change that fails an unfunded bill whose funding was declined
 * (rc: the ledger's outcome, kept as its result code). */
void svc_bill_fund_declined(const struct store_prov *p, enum ledger_rc rc,
                            struct store_prov_update *u);

/*
 * svc_prov_due() for a bill.  A bill still created is not funded: it is
 * never sent; before its deadline it is put back to wait for it, past it
 * it fails (nothing moved).  Otherwise svc_prov_due() decides (a bill is
 * always queryable, by our reference).
 */
enum svc_prov_action svc_bill_due(const struct store_prov *p, int64_t now_ms,
                                  const struct svc_prov_policy *pol,
                                  struct store_prov_update *u,
                                  const char **why);

/*
 * true when writing *u fails a funded bill: then *r is the refund
 * (holding debited, source credited, keyed "bill:<ref>:refund") that
 * carries *u, so the refund and the failure commit together.
 */
bool svc_bill_refund_req(const struct store_prov *p,
                         const struct store_prov_update *u,
                         struct ledger_req *r);

/* The electricity token in Flutterwave's status "extra" ("Token :
 * 1234-..."): the text after the last ':' with spaces trimmed, or all
 * of it; into dst[cap]. */
void svc_bill_token(const char *extra, char *dst, size_t cap);

/* ---- categories (docs/payments.md §8, GET /v3/bill-categories) ---- */

#define SVC_BILL_CATS_MAX 4096 /* entries kept; a longer list is refused */

/* One biller item, as soko keeps it (names cut to fit). */
struct svc_bill_cat {
	char biller_code[STORE_BILL_CODE_MAX + 1];
	char item_code[STORE_BILL_CODE_MAX + 1];
	char name[STORE_BILL_NAME_MAX + 1];
	char biller_name[64];
	char short_name[64];
	char label_name[64]; /* what to ask the customer for */
	char country[8];
	bool is_airtime;
	int64_t amount_minor; /* 0: the customer chooses */
	int64_t fee_minor;    /* Flutterwave's own fee */
};

/*
 * Reads the answer of GET /v3/bill-categories (doc) into out[0..cap):
 * *n entries kept, *skipped entries left out (unreadable, or codes soko
 * could not send: not 1..32 of [A-Za-z0-9_-]).  Returns 0, or -1 with
 * *why when the answer is not a successful categories answer or lists
 * more than cap entries.
 */
struct json_doc;
int svc_bill_cats_parse(const struct json_doc *doc, struct svc_bill_cat *out,
                        size_t cap, size_t *n, size_t *skipped,
                        const char **why);

/* The entry of item_code in c[0..n), or NULL (*ambiguous when two
 * billers list the same item code: the caller must name the biller). */
const struct svc_bill_cat *svc_bill_cat_find(const struct svc_bill_cat *c,
                                             size_t n, const char *item_code,
                                             bool *ambiguous);

/* Whether c passes the list's filters (NULL: any). */
bool svc_bill_cat_match(const struct svc_bill_cat *c, const char *country,
                        const char *biller_code);

#endif
