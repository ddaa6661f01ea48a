/*
 * json.h - a strict, bounds-checked JSON (RFC 8259) tokenizer and writer.
 *
 * Layer: protocols/ (STYLE.md §1): no I/O, no allocation, no clock, no
 * globals.  Used for provider API bodies and callbacks (docs/providers.md
 * §1); the provider shapes live in prov_*.c on top of it.
 *
 * Tokenizer: jsmn-like.  json_parse() fills a caller array with tokens
 * whose offsets point into the caller's buffer (views, not copies: valid
 * as long as the buffer is).  It accepts exactly one RFC 8259 value with
 * optional surrounding whitespace and refuses everything else: invalid
 * UTF-8 (overlong forms, surrogates, > U+10FFFF), \u escapes that leave a
 * surrogate unpaired, control characters in strings, duplicate keys in one
 * object (compared after unescaping), nesting deeper than JSON_MAX_DEPTH,
 * leading zeros, NaN/Infinity and any other non-JSON literal, and bytes
 * after the value.
 *
 * Numbers are never converted to double: a number token is a span of its
 * text, and json_num_to_minor() turns a decimal into integer minor units
 * exactly, or refuses it (docs/providers.md §1.2).
 *
 * Tokens are stored in document order.  A container is followed by its
 * children; an object's children alternate key (a STRING token), value.
 * Each token records .end, the index just past its subtree, so siblings
 * are reached in O(1): the next sibling of token i is tok[i].end.
 *
 * Writer: json_w_*() append to a caller buffer and remember overflow and
 * misuse; json_w_finish() reports once at the end (like cbor_enc).
 */
#ifndef SOKO_JSON_H
#define SOKO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define JSON_MAX_DEPTH 32 /* nested objects/arrays, the outermost counts 1 */

enum json_type {
	JSON_OBJECT, /* .n_items pairs follow (key, value, key, value...) */
	JSON_ARRAY,  /* .n_items values follow */
	JSON_STRING, /* .start/.len: raw content between the quotes */
	JSON_NUMBER, /* .start/.len: the number's text */
	JSON_TRUE,
	JSON_FALSE,
	JSON_NULL,
};

struct json_tok {
	enum json_type type;
	size_t start;    /* byte offset into the buffer (strings: after '"') */
	size_t len;      /* bytes (strings: escaped content, no quotes) */
	size_t n_items;  /* OBJECT: pairs; ARRAY: elements; others 0 */
	size_t end;      /* index just past this token and all its children */
	bool has_escape; /* STRING: contains a backslash escape */
};

/* A parsed document: the buffer and the tokens, both borrowed. */
struct json_doc {
	const char *buf;
	size_t len;
	struct json_tok *toks; /* caller's array */
	size_t n_toks;         /* tokens filled; toks[0] is the root */
};

/* A span of bytes in a buffer (a number's text, a string's raw content). */
struct json_span {
	const char *ptr;
	size_t len;
};

/*
 * Tokenizes the complete document buf[0..len) into toks[0..cap).  Borrows
 * buf and toks for the life of *doc.  A document is always complete (an
 * HTTP body), so a truncated one is CODEC_BAD, never CODEC_NEED_MORE.
 * Returns:
 *   CODEC_OK        doc is filled; doc->n_toks >= 1;
 *   CODEC_BAD       not strict JSON or over a limit; *why is static;
 *   CODEC_NEED_MORE the input is valid so far but needs more than cap
 *                   tokens (*why = "too many tokens"): refuse the body or
 *                   try again with a bigger array.
 */
enum codec_rc json_parse(struct json_doc *doc, struct json_tok *toks,
                         size_t cap, const char *buf, size_t len,
                         const char **why);

/* The raw span of token i: a number's text or a string's escaped
 * content.  For containers, the span from the opening bracket. */
struct json_span json_span(const struct json_doc *doc, size_t i);

/*
 * Object helpers.  `obj` must be an OBJECT token index.  Returns the index
 * of the value whose key equals the NUL-terminated `key` (compared after
 * unescaping), or 0 if there is none or obj is not an object (0 is the
 * root, never a value).
 */
size_t json_obj_get(const struct json_doc *doc, size_t obj, const char *key);

/* Array/object walking: first child of container c (0 if empty), and the
 * next sibling of token i within c's children (0 after the last).  In an
 * object the children are keys; the value of key k is k + 1, and the next
 * key is json_next(doc, c, k + 1). */
size_t json_first(const struct json_doc *doc, size_t c);
size_t json_next(const struct json_doc *doc, size_t c, size_t i);

/* true iff token i is a STRING equal to the NUL-terminated s after
 * unescaping. */
bool json_str_eq(const struct json_doc *doc, size_t i, const char *s);

/*
 * Unescapes STRING token i into dst as UTF-8 followed by a NUL.  Returns
 * CODEC_OK (*len = bytes before the NUL), CODEC_NEED_MORE (dst too small;
 * *len = cap needed, including the NUL) or CODEC_BAD (not a string, or it
 * holds U+0000, which no C string can carry; *why static).
 */
enum codec_rc json_str_unescape(char *dst, size_t cap,
                                const struct json_doc *doc, size_t i,
                                size_t *len, const char **why);

/*
 * Converts the decimal s (JSON number syntax: -?int(.frac)?(e[+-]?exp)?)
 * to minor units of a currency with `exponent` decimals (KES, NGN: 2),
 * exactly.  Refuses (CODEC_BAD, *why static) anything that is not exactly
 * a whole number of minor units ("1.005" with exponent 2; zeros past the
 * exponent are fine: "1.000" is 100), anything outside int64_t, and text
 * that is not JSON number syntax.  Exponent notation is accepted when the
 * value is exact ("1.5e2" is 15000 with exponent 2).  Never uses floating
 * point.  Used on number tokens and on the content of amount strings.
 */
enum codec_rc json_num_to_minor(struct json_span s, unsigned exponent,
                                int64_t *out, const char **why);

/* Integer helpers: s must be an integer in JSON syntax (no fraction, no
 * exponent) within the type's range; CODEC_BAD with *why otherwise. */
enum codec_rc json_num_to_i64(struct json_span s, int64_t *out,
                              const char **why);
enum codec_rc json_num_to_u64(struct json_span s, uint64_t *out,
                              const char **why);

/* true iff s[0..len) is well-formed UTF-8 (RFC 3629). */
bool json_utf8_valid(const char *s, size_t len);

/* ---- writer --------------------------------------------------------- */

struct json_w {
	char *buf;          /* caller's buffer, borrowed */
	size_t cap;         /* its size in bytes */
	size_t len;         /* bytes written (or that would have been) */
	unsigned depth;     /* open containers */
	uint64_t is_obj;    /* bit d: container at depth d+1 is an object */
	uint64_t has_item;  /* bit d: container at depth d+1 has a member */
	bool after_key;     /* a key was written, its value is due */
	bool is_done;       /* the top-level value is complete */
	const char *misuse; /* sticky: first misuse (static), or NULL */
};

/* Starts writing into buf[0..cap).  buf may be NULL when cap is 0, to
 * measure. */
void json_w_init(struct json_w *w, char *buf, size_t cap);
void json_w_obj_begin(struct json_w *w);
void json_w_obj_end(struct json_w *w);
void json_w_arr_begin(struct json_w *w);
void json_w_arr_end(struct json_w *w);
/* The NUL-terminated key k (escaped), then ':'; only inside an object. */
void json_w_key(struct json_w *w, const char *k);
/* A string value, escaped; s[0..len) must be valid UTF-8 (else misuse). */
void json_w_str(struct json_w *w, const char *s, size_t len);
/* Same, for a NUL-terminated s. */
void json_w_cstr(struct json_w *w, const char *s);
void json_w_int(struct json_w *w, int64_t v);
void json_w_uint(struct json_w *w, uint64_t v);
/* minor / 10^exponent as an exact decimal with `exponent` decimals
 * (json_w_minor(w, 10050, 2) writes 100.50). */
void json_w_minor(struct json_w *w, int64_t minor, unsigned exponent);
void json_w_bool(struct json_w *w, bool v);
void json_w_null(struct json_w *w);
/* s[0..len) verbatim as one value; the caller guarantees it is JSON. */
void json_w_raw(struct json_w *w, const char *s, size_t len);

/*
 * Finishes: writes a NUL after the text.  Returns CODEC_OK (*written =
 * bytes before the NUL), CODEC_NEED_MORE (*written = the cap needed,
 * including the NUL) or CODEC_BAD (misuse: unbalanced containers, a value
 * without a key in an object, invalid UTF-8, ...; *why static).
 */
enum codec_rc json_w_finish(struct json_w *w, size_t *written,
                            const char **why);

#endif
