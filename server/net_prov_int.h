/*
 * net_prov_int.h - what net_prov.c shares with its provider drivers
 * (net_prov_<provider>.c).  Not a public interface: sokod only.
 *
 * A driver speaks one provider's API through net_curl: it sends the
 * initiating call and the status query of a payment and reduces every
 * answer to a struct svc_prov_answer handed to prov_answer(); it parses
 * its callbacks and hands them to prov_callback().  Every decision stays
 * in svc_prov.c; every storage write is made by net_prov.c.
 */
#ifndef SOKO_NET_PROV_INT_H
#define SOKO_NET_PROV_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ledger.h"
#include "dbq.h"
#include "net_curl.h"
#include "store.h"
#include "svc_admin.h"
#include "svc_prov.h"

#define PROV_BODY_MAX   8192  /* request bodies we build */
#define PROV_TOKS       512   /* JSON tokens of a provider answer */
#define PROV_TOKEN_MAX  4096  /* bearer tokens (MoMo's are JWTs) */
#define CB_TOKEN_MIN    32    /* callback URL token bytes */
#define TOKEN_MARGIN_MS 60000 /* refresh a token this long before expiry */

struct net_prov;
struct evhttp_request;

enum pop_kind {
	POP_CREATE,
	POP_GET,
	POP_DUE,
	POP_CLAIM,  /* claim written, then the send */
	POP_SEND,   /* initiate call in flight */
	POP_QUERY,  /* status call in flight */
	POP_WRITE,  /* an update after an answer */
	POP_SETTLE, /* the success posting */
	POP_CALLBACK,
};

/* One operation in flight (net_prov.c). */
struct pop {
	struct net_prov *np;
	struct pop *next; /* token waiters */
	uint32_t tok_gen; /* the prov_token gen its call was sent with */
	enum pop_kind kind;
	struct dbq_job job;
	struct evhttp_request *req;
	const struct prov_drv *drv;
	struct store_prov p;
	struct store_prov_update u;
	/* strings u points into */
	char pref[STORE_PREF_MAX + 1];
	char code[STORE_RCODE_MAX + 1];
	char desc[STORE_RDESC_MAX + 1];
	char receipt[STORE_PREF_MAX + 1];
	char next_step[STORE_STEP_MAX + 1];
	char next_text[STORE_NTEXT_MAX + 1];
	char next_url[STORE_URL_MAX + 1];
	/* POP_CREATE */
	struct svc_collection c;
	const char *err_code, *err_msg;
	int status;
	/* POP_DUE */
	struct store_prov *rows;
	size_t n_rows, cap;
	/* POP_CALLBACK: the payment is found by provider_ref (pref) or,
	 * when by_client_ref, by client_ref (held in pref too) */
	bool by_client_ref;
	bool cb_success, cb_has_amount, cb_found;
	/* a per-payment secret the callback must carry (Orange's
	 * notif_token, kept in result_desc); "" = none.  cb_refused: it
	 * did not match (401) or is not known yet (503) */
	char cb_secret[STORE_RDESC_MAX + 1];
	int cb_refused;
	int64_t cb_amount;
	enum svc_prov_cb verdict;
	/* POP_QUERY from a status result that came by callback (M-Pesa
	 * Transaction Status): the answer, its strings in code/desc/receipt */
	struct svc_prov_answer ans;
	/* POST /v1/payments/{ref}/otp|pin: the customer's answer (a
	 * secret; wiped when o is freed) */
	char secret[16];
	const char *step; /* the step it answers: "send_otp", "send_pin" */
	/* prov_collect_external / prov_account_check */
	char fallback[LEDGER_CODE_MAX + 1];
	/* a disbursement's clearing and holding account codes (disb_fill) */
	char clearing[LEDGER_CODE_MAX + 1], hold[LEDGER_CODE_MAX + 1];
	const char *reject_body;
};

/* A bearer token shared by a provider's calls: fetched once at a time,
 * the calls that need it wait on `waiters`. */
struct prov_token {
	char token[PROV_TOKEN_MAX];
	int64_t exp_ms;
	uint32_t gen; /* +1 per token stored: which one a call used */
	bool busy;
	struct pop *waiters;
	/* the driver's fetch: starts the call, ends with prov_token_done */
	int (*fetch)(struct net_prov *np, struct prov_token *t);
	void (*go)(struct pop *o); /* resumes a waiter (send or query) */
};

struct prov_drv {
	const char *name; /* as in the API and prov_payments.provider */
	/* reads secrets and checks config; *state owned by the driver.
	 * Returns 1 enabled, 0 not configured, -1 error (err filled) */
	int (*init)(struct net_prov *np, void **state, char *err,
	            size_t errlen);
	void (*fini)(void *state);
	/* NULL, or an API error for a collection this provider cannot take
	 * (currency, amount, MSISDN form); *msg static */
	const char *(*check)(const struct config *cfg,
	                     const struct svc_collection *c, const char **msg);
	/* fills o->p.client_ref at creation; 0 or -1 */
	int (*client_ref)(struct pop *o);
	const char *(*clearing_account)(const struct config *cfg);
	/* disbursements (docs/payments.md §Disbursements): whether this
	 * instance can pay out through the provider, and the holding
	 * (suspense) account its disbursements wait in; send and query
	 * tell the kinds apart by o->p.kind */
	bool (*can_disburse)(const struct net_prov *np);
	const char *(*hold_account)(const struct config *cfg);
	bool (*can_query)(const struct store_prov *p);
	void (*send)(struct pop *o);
	void (*query)(struct pop *o);
	/* optional: called on every janitor tick (e.g. registering URLs) */
	void (*tick)(struct net_prov *np);
	/* optional: POST /v1/callbacks/<alias>/<rest> goes to
	 * alias_callback (M-Pesa C2B: Daraja refuses URLs that contain
	 * "mpesa") */
	const char *alias;
	void (*alias_callback)(struct net_prov *np, struct evhttp_request *req,
	                       const char *rest);
	/* POST /v1/callbacks/<name>/<rest> */
	void (*callback)(struct net_prov *np, struct evhttp_request *req,
	                 const char *rest);
	/* optional: relays the customer's answer to the step the provider
	 * asked for (o->p.next_step: "send_otp" answered by an OTP,
	 * "send_pin" by a PIN) for the payment o->p; value is a secret
	 * (never logged, wiped by the caller when this returns); ends with
	 * prov_step_done */
	void (*submit)(struct pop *o, const char *step, const char *value);
};

extern const struct prov_drv prov_drv_mpesa;
extern const struct prov_drv prov_drv_momo;
extern const struct prov_drv prov_drv_flwbill; /* net_bill.c */
extern const struct prov_drv prov_drv_paystack;
extern const struct prov_drv prov_drv_flw;
extern const struct prov_drv prov_drv_orange;

/* ---- what net_prov.c offers the drivers ---- */

const struct config *prov_cfg(const struct net_prov *np);
struct ncurl *prov_curl(const struct net_prov *np);
void *prov_state(const struct net_prov *np, const struct prov_drv *d);

/* ---- for net_bill.c (bill payments: its own API operations, the
 * provider payment machinery for the call) ---- */
struct dbq *prov_dbq(const struct net_prov *np);
const struct svc_prov_policy *prov_policy(const struct net_prov *np);
bool prov_driver_on(const struct net_prov *np, const struct prov_drv *d);
/* Runs the janitor now. */
void prov_kick(struct net_prov *np);
/* Counts operations in flight (+1 when one starts, -1 when it ends), so
 * net_prov_inflight() covers net_bill.c's too. */
void prov_busy_inc(struct net_prov *np, int delta);
/* The payment as the API shows it: one JSON object into w, or the
 * whole reply (docs/api.md §Payments). */
struct json_w;
void prov_json_payment(struct json_w *w, const struct store_prov *p);
void prov_reply_payment(struct evhttp_request *req, int status,
                        const struct store_prov *p);
/* The enabled driver called name (a payment's provider), or NULL. */
const struct prov_drv *prov_driver(const struct net_prov *np,
                                   const char *name);
/*
 * Storage worker: fixes the fee of p (kind, amount, currency set) being
 * created from the schedule (docs/payments.md §13): p->fee_minor,
 * fee_account_id and, for a bill paid from an agent float (source_type),
 * commission_minor.  Returns true when the payment must be refused
 * (*status, *code, *msg: 422 fee_overflow, fee_exceeds_amount; 503
 * provider_misconfigured, the fees account is missing) or storage failed
 * (*rc); false when p is ready (no fee is fee 0).
 */
bool prov_fee_refused(struct store *st, const struct config *cfg,
                      struct store_prov *p, uint8_t source_type, int *status,
                      const char **code, const char **msg,
                      enum store_rc *rc);
/* GET /v1/payments?state=unknown, POST /v1/payments/{ref}/resolve and
 * /requery (admin; net_recon.c).  false: not one of these paths. */
bool net_recon_http(struct net_prov *np, struct evhttp_request *req,
                    const char *path);
/* POST /v1/bills, /v1/bills/validate, GET /v1/bills/{ref} (admin). */
void net_bill_http(struct net_prov *np, struct evhttp_request *req,
                   const char *path);

/*
 * The provider's answer to a submitted step (drv->submit).  status 0:
 * taken; the next step it asks for (step, text, url; "" none) is written
 * and the payment made due now (the status query decides, as always),
 * and the API answers 200 with the payment.  Else the API answers
 * status/code/msg and nothing changes.  o freed.
 */
void prov_step_done(struct pop *o, int status, const char *code,
                    const char *msg, const char *step, const char *text,
                    const char *url);

/* The answer to o's call: decided by svc_prov, written, o freed. */
void prov_answer(struct pop *o, const struct svc_prov_answer *a);

/* true: t holds a fresh token, go on.  false: o waits for it (t->go
 * resumes it) or, if no token can be had, is answered "not sent" (send)
 * or "no answer" (query). */
bool prov_token_get(struct net_prov *np, struct prov_token *t, struct pop *o);
/* The fetch ended: token (NULL on failure) valid for expires_in_s. */
void prov_token_done(struct net_prov *np, struct prov_token *t,
                     const char *token, int64_t expires_in_s);
/* The provider refused the token o's call was sent with: forget it,
 * unless a newer one has been fetched since (o NULL: forget it now). */
void prov_token_drop(struct prov_token *t, const struct pop *o);

/*
 * An authenticated, parsed callback about (drv, ref): records it and
 * answers req with ok_body (status 200, JSON) when accepted; 404
 * payment_unknown, 422 amount_mismatch otherwise.  by_client_ref: ref is
 * our client_ref (MoMo externalId) rather than the provider's reference.
 */
void prov_callback(struct net_prov *np, const struct prov_drv *drv,
                   struct evhttp_request *req, const char *ref,
                   bool by_client_ref, bool claims_success, bool has_amount,
                   int64_t amount_minor, const char *code,
                   const char *receipt, const char *ok_body);
/*
 * A status answer that arrives by callback (M-Pesa Transaction Status is
 * asynchronous: its result is POSTed to the ResultURL of the query):
 * finds the payment of (drv, client_ref), answers req (200 ok_body, or
 * 404 payment_unknown), records it in prov_callbacks and applies *a as
 * the answer to a status query (svc_prov_apply): it moves money exactly
 * as a synchronous status answer would.  Only for an answer the driver
 * has authenticated and tied to a query it made.  a's strings are
 * copied.
 */
void prov_status_result(struct net_prov *np, const struct prov_drv *drv,
                        struct evhttp_request *req, const char *client_ref,
                        const struct svc_prov_answer *a,
                        const char *ok_body);
/*
 * A payment the customer made on their own (M-Pesa C2B confirmation):
 * records p (ref, client_ref, msisdn, amount, currency, deadline filled
 * by the caller) as a collection for account code `account` (else
 * `fallback`, with an alert, when it does not exist) and answers req with
 * ok_body once it is durable; a repeat of the same ref answers ok_body
 * too.  The driver's send() then accepts it without a call and its
 * query() confirms it with the provider before money moves.
 */
void prov_collect_external(struct net_prov *np, const struct prov_drv *drv,
                           struct evhttp_request *req,
                           const struct store_prov *p, const char *account,
                           const char *fallback, const char *ok_body);
/* Answers req with ok_body when account is an open merchant_payable
 * account in currency, else reject_body (both 200, JSON). */
void prov_account_check(struct net_prov *np, struct evhttp_request *req,
                        const char *account, uint16_t currency,
                        const char *ok_body, const char *reject_body);
/*
 * As prov_callback (by our client_ref), for a provider whose only proof
 * of origin is a secret it returned for this one payment at initiation
 * and that the driver stored in result_desc (Orange's notif_token):
 * unless secret equals it (prov_token_eq, constant time) nothing is
 * recorded and the answer is 401 callback_token_invalid, or 503
 * retry_later while the payment has no secret yet (its initiation
 * answer is not recorded).
 */
void prov_callback_secret(struct net_prov *np, const struct prov_drv *drv,
                          struct evhttp_request *req, const char *client_ref,
                          const char *secret, bool claims_success,
                          const char *code, const char *receipt,
                          const char *ok_body);
/* A callback refused before parsing (token, signature, body): logs,
 * counts, answers. */
void prov_callback_reject(struct evhttp_request *req, const char *provider,
                          int status, const char *code, const char *reason);

/*
 * Hands a call to net_curl: a POST of the JSON body[0..n) when body is
 * not NULL, else a GET, to url, with the header auth ("Authorization:
 * ...") and, when not NULL, one more header; counted against the
 * breaker of endpoint; done(arg) gets the answer.  0, or -1 with *why
 * (it did not leave).  net_curl copies what it keeps: the caller may
 * wipe its buffers when this returns.
 */
int prov_call(struct net_prov *np, const char *url, const char *auth,
              const char *extra_header, const char *body, size_t n,
              const char *endpoint, ncurl_done_fn done, void *arg,
              const char **why);

/* n characters of an unambiguous [A-Z2-9] alphabet from the CSPRNG and
 * a NUL into dst (n <= 32).  0, or -1 without randomness. */
int prov_random_ref(char *dst, size_t n);

/* true when text contains needle, ASCII case-insensitively (provider
 * error messages that tell a duplicate or a missing reference). */
bool prov_text_has(const char *text, const char *needle);

/* Reads a secret from FILE or ENV; NULL with err when neither is set. */
char *prov_secret(const char *file, const char *env, const char *what,
                  char *err, size_t errlen);
void prov_wipe_free(char *s);
/* Constant-time check of the callback URL token. */
bool prov_token_ok(const char *want, const char *got);
/* "<prov_callback_base_url>/v1/callbacks/<name>/<token>" into dst. */
void prov_callback_url(const struct net_prov *np, const char *name,
                       const char *token, char *dst, size_t cap);

#endif
