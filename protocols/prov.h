/*
 * prov.h - what the MTN MoMo, Orange Money, Flutterwave and Paystack codecs
 * share (docs/providers.md §3): the parser result and error, the one
 * outcome vocabulary every provider status is mapped to, amounts as exact
 * decimals, HTTP Basic credentials, and the small field readers the
 * prov_*.c parsers are written with.
 *
 * Layer: protocols/ (STYLE.md §1): pure.  No I/O, no allocation, no clock,
 * no globals but const tables.  Parsers read a document already accepted
 * by json_parse() and copy what they keep into fixed-size fields (a value
 * longer than its field is refused, never truncated).  Amounts are int64_t
 * minor units, converted with json_num_to_minor(): never floating point.
 *
 * (prov_mpesa.[ch] predates this header and keeps its own enum mpesa_rc,
 * which has the same four values in the same order.)
 */
#ifndef SOKO_PROV_H
#define SOKO_PROV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "json.h"

/* What a parser returns; callbacks map OK to 200 and the rest to 400. */
enum prov_rc {
	PROV_OK,
	PROV_MISSING,    /* a mandatory field is absent (err->field) */
	PROV_WRONG_TYPE, /* a field has the wrong JSON type (err->field) */
	PROV_BAD_VALUE,  /* right type, unusable value: precision, not
	                    positive, unknown status or currency, too long,
	                    empty, U+0000 (err->why) */
};

struct prov_err {
	const char *field; /* static path, e.g. "data.amount" */
	const char *why;   /* static detail, for the log line */
};

/*
 * The one outcome vocabulary: each provider's status words map onto it in
 * one table per provider (docs/providers.md, "status mapping").
 *   PENDING    not final yet: wait for the callback or poll;
 *   SUCCEEDED  the provider says the money moved (still confirm with a
 *              status/verify call before giving value when the outcome
 *              came from a callback);
 *   FAILED     final, nothing moved; the parsed struct has a reason;
 *   UNKNOWN    a known status whose money meaning is not a plain success
 *              or failure (e.g. Paystack "reversed"): reconcile by hand.
 */
enum prov_outcome {
	PROV_PENDING,
	PROV_SUCCEEDED,
	PROV_FAILED,
	PROV_UNKNOWN,
};

#define PROV_REASON_MAX 128 /* failure reason text, NUL included */

/* "pending", "succeeded", "failed", "unknown"; "?" otherwise. */
const char *prov_outcome_name(enum prov_outcome o);
/* "ok", "missing", "wrong_type", "bad_value"; "?" otherwise. */
const char *prov_rc_name(enum prov_rc rc);

/* A status word and the outcome it maps to (one table per provider). */
struct prov_status_map {
	const char *word; /* exactly as sent (case-sensitive) */
	enum prov_outcome outcome;
};

/* ---- amounts ---------------------------------------------------------- */

/* Exponent of the ISO 4217 code `alpha` (money.h's table), or -1. */
int prov_currency_exponent(const char *alpha);

/*
 * minor / 10^exponent as the shortest exact decimal: 10000, 2 -> "100";
 * 10050, 2 -> "100.5"; 5, 2 -> "0.05"; 500, 0 -> "500".  Writes a NUL.
 * Returns CODEC_OK (*written = characters), CODEC_NEED_MORE (*written =
 * cap needed) or CODEC_BAD (minor < 0 or exponent > 18).
 */
enum codec_rc prov_decimal(char *dst, size_t cap, int64_t minor,
                           unsigned exponent, size_t *written);

/*
 * HTTP Basic credentials: base64(user ":" secret) into dst with a NUL
 * (MoMo token calls, Orange OAuth).  user: 1-128 bytes without ':';
 * secret: 1-256 bytes; both printable ASCII.  CODEC_NEED_MORE gives the
 * cap needed.  The caller wipes dst when done.
 */
enum codec_rc prov_basic_auth(char *dst, size_t cap, const char *user,
                              const char *secret, size_t *written,
                              const char **why);

/* ---- field readers (for prov_*.c) -------------------------------------- */

/* Flags for the readers below. */
#define PROV_REQ      1u /* absent is PROV_MISSING (else: absent is "") */
#define PROV_NONEMPTY 2u /* "" is PROV_BAD_VALUE "empty" */
#define PROV_NULLABLE 4u /* null counts as absent */
#define PROV_POSITIVE 8u /* amounts: <= 0 is PROV_BAD_VALUE */

/* Forms an amount or code may come in. */
enum prov_form {
	PROV_NUM = 1, /* a JSON number */
	PROV_STR = 2, /* a string holding a JSON number ("500.0000") */
};

/* Sets err and returns rc (rc must not be PROV_OK). */
enum prov_rc prov_fail(struct prov_err *err, enum prov_rc rc, const char *field,
                       const char *why);

/* The root must be an object: PROV_WRONG_TYPE "$" otherwise. */
enum prov_rc prov_root(const struct json_doc *d, struct prov_err *err);

/* Value token of key in obj, after flags: *out = 0 when absent (or null
 * with PROV_NULLABLE) and not PROV_REQ. */
enum prov_rc prov_get(const struct json_doc *d, size_t obj, const char *key,
                      const char *path, unsigned flags, size_t *out,
                      struct prov_err *err);

/* A string member copied into dst[0..cap) ("" when absent). */
enum prov_rc prov_str(const struct json_doc *d, size_t obj, const char *key,
                      const char *path, unsigned flags, char *dst, size_t cap,
                      struct prov_err *err);

/* String token v copied into dst[0..cap). */
enum prov_rc prov_str_tok(const struct json_doc *d, size_t v, const char *path,
                          char *dst, size_t cap, struct prov_err *err);

/* An object (or, for prov_arr, array) member; *out its token or 0. */
enum prov_rc prov_obj(const struct json_doc *d, size_t obj, const char *key,
                      const char *path, unsigned flags, size_t *out,
                      struct prov_err *err);
enum prov_rc prov_arr(const struct json_doc *d, size_t obj, const char *key,
                      const char *path, unsigned flags, size_t *out,
                      struct prov_err *err);

/* A boolean member; *has false when absent. */
enum prov_rc prov_bool(const struct json_doc *d, size_t obj, const char *key,
                       const char *path, unsigned flags, bool *out, bool *has,
                       struct prov_err *err);

/* An integer member (no fraction, no exponent) in the allowed forms; *has
 * false when absent. */
enum prov_rc prov_int(const struct json_doc *d, size_t obj, const char *key,
                      const char *path, unsigned flags, unsigned forms,
                      int64_t *out, bool *has, struct prov_err *err);

/* An integer member kept as its decimal text (ids that may exceed what a
 * reader would store, e.g. Flutterwave's "id"): digits only, < cap. */
enum prov_rc prov_int_text(const struct json_doc *d, size_t obj,
                           const char *key, const char *path, unsigned flags,
                           unsigned forms, char *dst, size_t cap,
                           struct prov_err *err);

/* An amount member in the allowed forms, converted exactly to minor units
 * with `exponent` decimals; *has false when absent. */
enum prov_rc prov_amount(const struct json_doc *d, size_t obj, const char *key,
                         const char *path, unsigned flags, unsigned forms,
                         unsigned exponent, int64_t *out, bool *has,
                         struct prov_err *err);

/* A currency member: three upper-case letters known to money.h; dst gets
 * the code (cap >= 4), *exponent its exponent. */
enum prov_rc prov_currency(const struct json_doc *d, size_t obj,
                           const char *key, const char *path, unsigned flags,
                           char *dst, size_t cap, unsigned *exponent,
                           struct prov_err *err);

/* A status member looked up in map[0..n): dst gets the word as sent,
 * *outcome its outcome; a word not in the map is PROV_BAD_VALUE "unknown
 * status". */
enum prov_rc prov_status(const struct json_doc *d, size_t obj, const char *key,
                         const char *path, unsigned flags,
                         const struct prov_status_map *map, size_t n, char *dst,
                         size_t cap, enum prov_outcome *outcome,
                         struct prov_err *err);

/* ---- builder checks (for prov_*.c) ------------------------------------ */

/* s is not NULL, min..max bytes, valid UTF-8, no control characters;
 * else *why = what and false. */
bool prov_text_ok(const char *s, size_t min, size_t max, const char *what,
                  const char **why);
/* Same, digits only. */
bool prov_digits_ok(const char *s, size_t min, size_t max, const char *what,
                    const char **why);
/* Same, only [A-Za-z0-9] and the bytes in `extra`. */
bool prov_chars_ok(const char *s, size_t min, size_t max, const char *extra,
                   const char *what, const char **why);

/* json_w_key + json_w_cstr. */
void prov_w_kv(struct json_w *w, const char *k, const char *v);
/* The amount as the shortest exact decimal, as a JSON number (is_str
 * false) or string.  The caller has checked minor >= 0. */
void prov_w_amount(struct json_w *w, const char *k, int64_t minor,
                   unsigned exponent, bool is_str);

#define PROV_TRY(x)                                                            \
	do {                                                                   \
		enum prov_rc prov_try_rc_ = (x);                               \
		if (prov_try_rc_ != PROV_OK)                                   \
			return prov_try_rc_;                                   \
	} while (0)

#endif
