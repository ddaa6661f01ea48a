/*
 * sb.h - soko-sandbox: five payment providers (M-Pesa Daraja, MTN MoMo,
 * Orange Money WebPay, Flutterwave v3, Paystack) played on loopback over
 * HTTPS, with a plain-HTTP control API (tests/sandbox/README.md).
 *
 * An independent implementation on purpose: JSON through jansson, crypto
 * through OpenSSL, nothing from soko's protocols/ or server/, so a bug in
 * soko's codecs is caught here instead of being mirrored.
 *
 * One thread, one event loop, one context struct (struct sb): no other
 * mutable global state.  Every collection has a bound (SB_* below, or a
 * flag) and a clear error past it.
 */
#ifndef SOKO_SB_H
#define SOKO_SB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

struct event_base;
struct event;
struct evhttp;
struct evhttp_request;
struct evkeyvalq;
struct evbuffer;

/* json_dumps flags of every answer and webhook: reals printed with 15
 * significant digits, so 25.85 goes out as 25.85 (as the providers'
 * JavaScript and PHP do), not 25.850000000000001 */
#define SB_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

#define SB_MAX_BODY        (64 * 1024) /* request bodies, both listeners */
#define SB_MAX_HEADERS     (16 * 1024)
#define SB_MAX_CHARGES_DEF 1000000
#define SB_MAX_CONNS_DEF   4096   /* HTTPS connections that sent a request */
#define SB_MAX_CALLBACKS   4096   /* outbound callbacks in flight */
#define SB_MAX_PENDING     65536  /* held (delayed, timed-out) replies */
#define SB_MAX_RULES       64     /* fault rules */
#define SB_MAX_C2B_URLS    64     /* registered C2B shortcodes */
#define SB_TIMEOUT_HOLD_MS 120000 /* "timeout" fault: close after this */
#define SB_URL_MAX         1024
#define SB_REF_MAX         80 /* refs, ids and codes, NUL included */

/* ------------------------------------------------------------ logging */

enum sb_log_level { SB_LOG_ERROR, SB_LOG_WARN, SB_LOG_INFO, SB_LOG_DEBUG };

struct sb;
/* One event per line on stderr, "ts=... level=... event=... k=v ...",
 * when level <= sb->log_level. */
void sb_log(const struct sb *sb, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool sb_log_on(const struct sb *sb, int level);

/* ------------------------------------------------------------ helpers */

void *sb_xmalloc(size_t n);
void *sb_xcalloc(size_t n, size_t size);
char *sb_xstrdup(const char *s);
/* Copies src into dst[cap], always NUL-terminated; returns false (and
 * still copies a prefix) when src does not fit. */
bool sb_copy(char *dst, size_t cap, const char *src);
int64_t sb_now_ms(void);  /* wall clock, UTC ms */
int64_t sb_mono_ms(void); /* CLOCK_MONOTONIC ms */

/* "YYYYMMDDHHmmss" of utc_ms shifted by offset_s (Kenya: +3 h). */
void sb_fmt_time(char *dst, size_t cap, int64_t utc_ms, int offset_s,
                 const char *strftime_fmt);
/* Whether s is exactly 14 digits forming a valid YYYYMMDDHHmmss. */
bool sb_valid_timestamp(const char *s);

/* Deterministic PRNG (xoshiro256**), seeded with splitmix64. */
struct sb_rng {
	uint64_t s[4];
};
void sb_rng_seed(struct sb_rng *r, uint64_t seed);
uint64_t sb_rng_next(struct sb_rng *r);
/* uniform in [0, 1) with 53 bits, for fault rates */
double sb_rng_unit(struct sb_rng *r);
/* n random characters from alphabet into dst (dst[n] = NUL). */
void sb_rng_chars(struct sb_rng *r, char *dst, size_t n, const char *alphabet);

uint64_t sb_hash(const void *p, size_t n, uint64_t h); /* FNV-1a 64 */
void sb_hex(char *dst, const uint8_t *src, size_t n);  /* dst: 2n+1 */
/* Standard base64 (with padding).  dst needs 4*ceil(n/3)+1. */
void sb_b64(char *dst, const uint8_t *src, size_t n);
/* Decodes standard base64; returns the length, or -1 if invalid or it
 * does not fit cap. */
long sb_unb64(uint8_t *dst, size_t cap, const char *src);
int sb_ct_eq(const void *a, const void *b, size_t n); /* 1 if equal */

/* A parsed callback URL: http or https, host, port, path+query. */
struct sb_url {
	bool is_https;
	char host[256];
	uint16_t port;
	char path[SB_URL_MAX];
};
/* 0, or -1 if url is not an absolute http(s) URL within the bounds. */
int sb_url_parse(struct sb_url *out, const char *url);

/* Decimal amounts as text: "100", "100.50".  Parses a JSON integer, a
 * JSON real or a string holding a plain decimal into hundredths of a unit;
 * false if missing, negative, not a number, more than 2 decimals (a real
 * that is not a whole number of hundredths) or above 10^15. */
bool sb_amount_cents(const json_t *v, int64_t *cents);
/* Writes cents as "12" (whole) or "12.50" into dst. */
void sb_amount_fmt(char *dst, size_t cap, int64_t cents);

/* Fetches a string member: NULL if absent or not a string. */
const char *sb_jstr(const json_t *obj, const char *key);
/* A string or an integer member rendered as text into dst; false if absent
 * or another type. */
bool sb_jtext(const json_t *obj, const char *key, char *dst, size_t cap);
bool sb_all_digits(const char *s);

/* ------------------------------------------------------------ providers */

enum sb_prov { SB_MPESA, SB_MOMO, SB_ORANGE, SB_FLW, SB_PAYSTACK, SB_PROV_N };
extern const char *const sb_prov_names[SB_PROV_N];

/* Every endpoint, for stats and fault rules ("provider" + "op"). */
#define SB_OPS(X)                                                              \
	X(MPESA_OAUTH, SB_MPESA, "oauth")                                      \
	X(MPESA_STKPUSH, SB_MPESA, "stkpush")                                  \
	X(MPESA_STKQUERY, SB_MPESA, "stkquery")                                \
	X(MPESA_C2B_REGISTER, SB_MPESA, "c2b_register")                        \
	X(MPESA_C2B_SIMULATE, SB_MPESA, "c2b_simulate")                        \
	X(MPESA_B2C, SB_MPESA, "b2c")                                          \
	X(MPESA_TXSTATUS, SB_MPESA, "txstatus")                                \
	X(MPESA_REVERSAL, SB_MPESA, "reversal")                                \
	X(MOMO_COLL_TOKEN, SB_MOMO, "token")                                   \
	X(MOMO_RTP, SB_MOMO, "requesttopay")                                   \
	X(MOMO_RTP_STATUS, SB_MOMO, "requesttopay_status")                     \
	X(MOMO_DISB_TOKEN, SB_MOMO, "disbursement_token")                      \
	X(MOMO_TRANSFER, SB_MOMO, "transfer")                                  \
	X(MOMO_TRANSFER_STATUS, SB_MOMO, "transfer_status")                    \
	X(ORANGE_TOKEN, SB_ORANGE, "token")                                    \
	X(ORANGE_WEBPAYMENT, SB_ORANGE, "webpayment")                          \
	X(ORANGE_STATUS, SB_ORANGE, "transactionstatus")                       \
	X(FLW_BILL_CATEGORIES, SB_FLW, "bill_categories")                      \
	X(FLW_BILL_VALIDATE, SB_FLW, "bill_validate")                          \
	X(FLW_BILL_CREATE, SB_FLW, "bill_create")                              \
	X(FLW_BILL_STATUS, SB_FLW, "bill_status")                              \
	X(FLW_CHARGE, SB_FLW, "charge")                                        \
	X(FLW_VERIFY, SB_FLW, "verify")                                        \
	X(PAYSTACK_CHARGE, SB_PAYSTACK, "charge")                              \
	X(PAYSTACK_CHARGE_STATUS, SB_PAYSTACK, "charge_status")                \
	X(PAYSTACK_VERIFY, SB_PAYSTACK, "verify")                              \
	X(PAYSTACK_SUBMIT_OTP, SB_PAYSTACK, "submit_otp")                      \
	X(PAYSTACK_SUBMIT_PIN, SB_PAYSTACK, "submit_pin")                      \
	X(UNKNOWN, SB_PROV_N, "unknown")

/* clang-format off */
enum sb_op {
#define X(name, prov, str) SB_OP_##name,
	SB_OPS(X)
#undef X
	SB_OP_N
};
/* clang-format on */
struct sb_op_info {
	int prov; /* enum sb_prov, SB_PROV_N for "unknown" */
	const char *name;
};
extern const struct sb_op_info sb_ops[SB_OP_N];

/* ------------------------------------------------------------ faults */

#define SB_FAULTS(X)                                                           \
	X(DELAY, "delay")                                                      \
	X(TIMEOUT, "timeout")                                                  \
	X(RESET_AFTER_COMMIT, "reset_after_commit")                            \
	X(ERROR500_AFTER_COMMIT, "error500_after_commit")                      \
	X(NO_CALLBACK, "no_callback")                                          \
	X(CALLBACK_TWICE, "callback_twice")                                    \
	X(CALLBACK_BEFORE_RESPONSE, "callback_before_response")                \
	X(CONTRADICTING_CALLBACK, "contradicting_callback")                    \
	X(EXPIRED_TOKEN, "expired_token")

/* clang-format off */
enum sb_fault {
#define X(name, str) SB_F_##name,
	SB_FAULTS(X)
#undef X
	SB_F_N
};
/* clang-format on */
extern const char *const sb_fault_names[SB_F_N];
#define SB_FBIT(f) (1u << (f))
/* faults that act on a charge's callbacks, not on the HTTP answer */
#define SB_F_CHARGE_MASK                                                       \
	(SB_FBIT(SB_F_NO_CALLBACK) | SB_FBIT(SB_F_CALLBACK_TWICE) |            \
	 SB_FBIT(SB_F_CALLBACK_BEFORE_RESPONSE) |                              \
	 SB_FBIT(SB_F_CONTRADICTING_CALLBACK))

struct sb_rule {
	int prov; /* enum sb_prov; SB_PROV_N = any */
	int op;   /* enum sb_op; SB_OP_N = any ("*") */
	enum sb_fault fault;
	double rate;     /* [0, 1] */
	char msisdn[24]; /* "" = any */
	int64_t count;   /* remaining firings; -1 = unlimited */
	int64_t ms;      /* delay */
	uint64_t n_fired;
};

/* ------------------------------------------------------------ charges */

enum sb_state { SB_PENDING, SB_SUCCEEDED, SB_FAILED, SB_REVERSED };
extern const char *const sb_state_names[4];

/* What a charge is, for the ledger's "op". */
enum sb_kind {
	SB_K_STKPUSH,
	SB_K_C2B,
	SB_K_B2C,
	SB_K_REQUESTTOPAY,
	SB_K_TRANSFER,
	SB_K_WEBPAYMENT,
	SB_K_BILL,
	SB_K_FLW_CHARGE,
	SB_K_PAYSTACK_CHARGE,
	SB_K_N
};
extern const char *const sb_kind_names[SB_K_N];

enum sb_idx { SB_IDX_REF, SB_IDX_CREF, SB_IDX_ALT, SB_IDX_N };

struct sb_charge {
	struct sb_charge *next[SB_IDX_N]; /* hash chains */
	struct sb_charge *next_due;       /* completion FIFO */
	int64_t due_ms;                   /* monotonic; 0: not scheduled */
	int64_t created_ms, done_ms;      /* wall clock UTC */
	uint8_t prov, kind, state;
	uint8_t outcome; /* the state it reaches when it completes */
	unsigned faults; /* SB_F_CHARGE_MASK bits fired at creation */
	uint32_t callbacks_sent, callbacks_ok;
	int64_t cents;         /* amount in hundredths of the request's unit */
	char ref[SB_REF_MAX];  /* the provider's reference */
	char cref[SB_REF_MAX]; /* the client's reference ("" for none) */
	char alt[SB_REF_MAX];  /* receipt / numeric id / second key */
	char msisdn[24];
	char currency[8];
	char code[40]; /* outcome code: "1032", "NOT_ENOUGH_FUNDS" */
	/* Paystack: the step the charge waits for ("send_otp", "send_pin",
	 * "" none) and the wrong answers given to it */
	char step[16];
	uint8_t step_tries;
	char *url;     /* callback URL (owned) or NULL */
	json_t *echo;  /* provider fields kept for answers (owned) */
};

struct sb_htab {
	struct sb_charge **b;
	size_t cap; /* power of two */
	size_t n;
};

/* ------------------------------------------------------------ context */

struct sb_creds {
	/* M-Pesa */
	const char *mpesa_key, *mpesa_secret, *mpesa_shortcode, *mpesa_passkey;
	const char *mpesa_initiator, *mpesa_initiator_pw;
	bool mpesa_expires_str;  /* send "expires_in":"3599" (v1 docs) */
	bool mpesa_single_token; /* each generate invalidates the previous */
	/* MTN MoMo */
	const char *momo_user, *momo_apikey, *momo_coll_key, *momo_disb_key;
	const char *momo_env, *momo_currency, *momo_cb_method;
	/* Orange */
	const char *orange_id, *orange_secret, *orange_merchant_key;
	const char *orange_currency;
	/* Flutterwave */
	const char *flw_secret, *flw_hash;
	/* Paystack */
	const char *paystack_secret;
	int64_t token_ttl_s; /* 0: each provider's documented lifetime */
};

struct sb_c2b_reg {
	char shortcode[16];
	char response_type[16]; /* "Completed" / "Cancelled" */
	char *confirm_url, *validate_url;
	int version; /* 1: hashed MSISDN, 2: masked MSISDN */
};

struct sb_pend;
struct sb_out;
struct sb_later;

struct sb {
	struct event_base *base;
	struct evhttp *https, *ctl;
	struct event *sig_term, *sig_int, *due_ev;
	SSL_CTX *server_ctx, *client_ctx;
	EVP_PKEY *mpesa_key;   /* decrypts SecurityCredential */
	uint8_t token_key[32]; /* HMAC key of access tokens (random) */
	struct sb_creds cr;
	int log_level; /* enum sb_log_level */
	int64_t callback_delay_ms, callback_timeout_ms;
	uint64_t seed;
	struct sb_rng rng_fault, rng_id;
	char *webhook[SB_PROV_N]; /* flutterwave, paystack */

	/* charges */
	struct sb_charge **all; /* in creation order */
	size_t n_all, cap_all, max_charges;
	struct sb_htab idx[SB_IDX_N];
	struct sb_charge *due_head, *due_tail;
	uint64_t next_numeric_id;
	uint64_t ledger_gen; /* bumped by POST /reset: stale hooks see it */
	bool stopping;

	/* tokens: a token carries its serial; these revoke */
	uint64_t token_serial;
	uint64_t token_min_serial;      /* POST /tokens/expire */
	uint64_t token_latest[SB_OP_N]; /* single-token policy */

	struct sb_rule rules[SB_MAX_RULES];
	size_t n_rules;

	struct sb_c2b_reg c2b[SB_MAX_C2B_URLS];
	size_t n_c2b;

	/* connections of the HTTPS listener (pointer set) */
	void **conns;
	size_t conns_cap, n_conns, max_conns;

	struct sb_pend *pend_head; /* held replies */
	size_t n_pend;
	struct sb_out *out_head; /* callbacks in flight */
	size_t n_out;
	/* finished callbacks whose connection is freed on the next loop
	 * turn (libevent 2.1.12's free_on_completion leaks a connection
	 * that never connected, libevent #1535) */
	struct sb_out *reap_head;
	struct event *reap_ev;
	struct sb_later *later_head; /* results waiting for their delay */
	size_t n_later;
	int64_t b2c_funds_cents; /* M-Pesa B2C utility account */

	/* stats */
	uint64_t st_req[SB_OP_N];
	uint64_t st_fault[SB_F_N];
	uint64_t st_cb_sent, st_cb_ok, st_cb_failed, st_cb_overflow;
	uint64_t st_conn_refused, st_charges_refused;
	uint64_t st_bad_requests;
};

/* ------------------------------------------------------------ requests */

/* One request on the HTTPS listener while a provider handles it. */
struct sb_rq {
	struct sb *sb;
	struct evhttp_request *req;
	int method;                 /* enum evhttp_cmd_type */
	char path[512];             /* decoded path, no query */
	const struct evkeyvalq *in; /* request headers */
	struct evkeyvalq *query;    /* parsed query string or NULL */
	const char *body;           /* request body (NUL-terminated copy) */
	size_t body_len;
	enum sb_op op;
	bool faults_done;
	unsigned faults; /* bits fired for this request */
	int64_t delay_ms;
	struct sb_charge *charge; /* created by this request */
	/* the answer */
	int status;
	char *resp; /* owned, NULL = empty */
	const char *ctype;
};

/* A header of an outbound callback. */
struct sb_hdr {
	const char *name, *value;
};

/* A callback ready to send: the provider builds it, sb_http sends it. */
struct sb_cbmsg {
	char *url;  /* owned */
	char *body; /* owned */
	const char *method;
	struct sb_hdr hdr[2];
	size_t n_hdr;
	char hdr_buf[160]; /* storage for a computed header value */
};

/* Done hook of an outbound POST: status 0 means no HTTP answer (connect
 * failure, TLS failure, timeout); body is the answer (may be NULL). */
typedef void (*sb_post_done_fn)(struct sb *sb, void *arg, int status,
                                const char *body, size_t len);

/* sb_http.c */
int sb_http_start(struct sb *sb, const char *listen, const char *ctl,
                  char *https_addr, char *ctl_addr, size_t cap);
void sb_http_stop(struct sb *sb);
/* Header value of the request, or NULL. */
const char *sb_rq_header(const struct sb_rq *rq, const char *name);
/* Query parameter, or NULL. */
const char *sb_rq_query(struct sb_rq *rq, const char *name);
/* Sets the answer; takes j (a reference). */
void sb_rq_json(struct sb_rq *rq, int status, json_t *j);
void sb_rq_empty(struct sb_rq *rq, int status);
/* Draws the fault rules for rq->op and msisdn (may be NULL) once; charge
 * faults are drawn only when creates_charge.  Returns rq->faults. */
unsigned sb_rq_faults(struct sb_rq *rq, const char *msisdn,
                      bool creates_charge);
/* POSTs (or PUTs) body to url.  done may be NULL.  0, or -1 (bad URL, too
 * many in flight: done is not called). */
int sb_post(struct sb *sb, const char *url, const char *method,
            const char *body, const struct sb_hdr *hdr, size_t n_hdr,
            sb_post_done_fn done, void *arg);
/* Posts body to url after delay_ms (takes both; frees them on failure).
 * For asynchronous results that are not a charge's callback. */
void sb_post_later(struct sb *sb, int64_t delay_ms, char *url, char *body);
/* Sends a completed charge's callback(s) as its faults say; done is
 * called once when every one of them finished (or at once if none). */
void sb_send_callbacks(struct sb *sb, struct sb_charge *c, sb_post_done_fn done,
                       void *arg);

/* sb_ledger.c */
void sb_ledger_init(struct sb *sb);
void sb_ledger_reset(struct sb *sb);
/* A new pending charge (indexes ref/cref/alt as filled by the caller
 * after this returns via sb_charge_index()), or NULL past max_charges. */
struct sb_charge *sb_charge_new(struct sb *sb, enum sb_prov prov,
                                enum sb_kind kind);
void sb_charge_index(struct sb *sb, struct sb_charge *c);
/* Lookup by provider reference (exact provider), by alternate id, and
 * the first charge with a client reference (any kind of that provider). */
struct sb_charge *sb_charge_by_ref(struct sb *sb, enum sb_prov p,
                                   const char *ref);
struct sb_charge *sb_charge_by_alt(struct sb *sb, enum sb_prov p,
                                   const char *alt);
struct sb_charge *sb_charge_by_cref(struct sb *sb, enum sb_prov p,
                                    const char *cref);
/* Schedules completion after the callback delay (outcome must be set);
 * a charge never scheduled stays pending. */
void sb_charge_schedule(struct sb *sb, struct sb_charge *c);
/* Completes c now: state = outcome, then its callbacks (unless it is
 * held by a callback_before_response request, which sends them). */
void sb_charge_complete(struct sb *sb, struct sb_charge *c, bool callbacks);
void sb_due_cb(int fd, short what, void *arg);
/* Writes the GET /ledger document into out. */
void sb_ledger_render(struct sb *sb, struct evbuffer *out, const char *prov,
                      const char *cref);
void sb_ledger_free(struct sb *sb);

/* Access tokens (sb_ledger.c): HMAC-signed, stateless.  kind is the op
 * that issued it (e.g. SB_OP_MOMO_COLL_TOKEN). */
void sb_token_issue(struct sb *sb, enum sb_op kind, int64_t ttl_s, char *dst,
                    size_t cap);
enum sb_tok_rc { SB_TOK_OK, SB_TOK_INVALID, SB_TOK_EXPIRED };
enum sb_tok_rc sb_token_check(struct sb *sb, enum sb_op kind, const char *tok);
/* "Bearer X" -> X, or NULL. */
const char *sb_bearer(const char *auth);
/* Checks "Basic base64(user:pass)" in constant time. */
bool sb_basic_ok(const char *auth, const char *user, const char *pass);

/* sb_tls.c */
int sb_tls_init(struct sb *sb, const char *dir, char *err, size_t errlen);
void sb_tls_fini(struct sb *sb);
/* Decrypts a base64 PKCS#1 v1.5 SecurityCredential and compares it with
 * the initiator password: true when they match. */
bool sb_tls_credential_ok(struct sb *sb, const char *b64, const char *pw);
/* hex(HMAC-SHA512(key, body)) into dst[129]. */
void sb_hmac512_hex(char *dst, const char *key, const char *body, size_t len);
void sb_hmac256(uint8_t out[32], const uint8_t *key, size_t klen,
                const void *msg, size_t len);
void sb_sha256_hex(char *dst, const char *s); /* dst: 65 */

/* providers: sb_mpesa.c ... sb_paystack.c */
void sb_mpesa_handle(struct sb_rq *rq);
void sb_momo_handle(struct sb_rq *rq);
void sb_orange_handle(struct sb_rq *rq);
void sb_flw_handle(struct sb_rq *rq);
void sb_paystack_handle(struct sb_rq *rq);
/* The provider's body for a 500 after the commit. */
void sb_mpesa_error500(struct sb_rq *rq);
void sb_momo_error500(struct sb_rq *rq);
void sb_orange_error500(struct sb_rq *rq);
void sb_flw_error500(struct sb_rq *rq);
void sb_paystack_error500(struct sb_rq *rq);
/* Builds c's callback; lie: say the opposite of the truth.  0, or -1 when
 * the charge has no callback (no URL, no webhook configured, or the
 * provider sends none for this outcome). */
int sb_mpesa_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                      struct sb_cbmsg *m);
int sb_momo_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                     struct sb_cbmsg *m);
int sb_orange_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                       struct sb_cbmsg *m);
int sb_flw_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                    struct sb_cbmsg *m);
int sb_paystack_callback(struct sb *sb, const struct sb_charge *c, bool lie,
                         struct sb_cbmsg *m);
/* ctl POST /c2b/pay: a customer pays a paybill (sb_mpesa.c).  Answers
 * req itself (possibly later). */
void sb_mpesa_c2b_pay(struct sb *sb, struct evhttp_request *req, json_t *body);
void sb_mpesa_reset(struct sb *sb);

#endif
