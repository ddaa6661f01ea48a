/*
 * cbor.h - a minimal, bounds-checked, canonical CBOR (RFC 8949) subset.
 *
 * Layer: protocols/ (STYLE.md §1): no I/O, no allocation, no globals.  Used
 * for POS frame bodies (docs/pos-protocol.md §5) and the HTTP /rpc
 * endpoint (docs/api.md).  Supported: unsigned and negative integers up to 64
 * bits, byte strings, text strings (valid UTF-8), definite-length arrays and
 * maps, false, true, null.  Refused: indefinite lengths, tags, floats and
 * other simple values, non-shortest heads, nesting deeper than
 * CBOR_MAX_DEPTH, and map keys that are not in strictly increasing bytewise
 * order of their encodings (RFC 8949 §4.2.1 core deterministic encoding;
 * this also refuses duplicate keys).  So every accepted item has exactly one
 * encoding, and a MAC over the bytes is a MAC over the value.
 *
 * The encoder writes into a caller buffer and remembers overflow (check once
 * at the end).  The decoder is a cursor over a caller buffer; strings come
 * back as views into it, valid as long as the buffer is.
 */
#ifndef SOKO_CBOR_H
#define SOKO_CBOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define CBOR_MAX_DEPTH 8 /* nested arrays/maps, the outermost counts 1 */

enum cbor_type {
	CBOR_UINT,  /* .u is the value */
	CBOR_NINT,  /* value is -1 - .u (so -1 .. -2^64) */
	CBOR_BYTES, /* .ptr/.u: view and length */
	CBOR_TEXT,  /* .ptr/.u: view and length, valid UTF-8, no NUL added */
	CBOR_ARRAY, /* .u: number of items that follow */
	CBOR_MAP,   /* .u: number of key/value pairs that follow */
	CBOR_BOOL,  /* .is_true */
	CBOR_NULL,
};

struct cbor_item {
	enum cbor_type type;
	uint64_t u;         /* value, length or count, see enum cbor_type */
	const uint8_t *ptr; /* BYTES/TEXT: view into the decoder's buffer */
	bool is_true;       /* BOOL */
};

/* ---- encoder -------------------------------------------------------- */

struct cbor_enc {
	uint8_t *buf;     /* caller's buffer, borrowed */
	size_t cap;       /* its size in bytes */
	size_t len;       /* bytes written (or that would have been) */
	bool is_overflow; /* sticky: a put did not fit */
};

/* Starts encoding into buf[0..cap).  buf may be NULL when cap is 0, to
 * measure: .len then counts the bytes needed. */
void cbor_enc_init(struct cbor_enc *e, uint8_t *buf, size_t cap);
void cbor_put_uint(struct cbor_enc *e, uint64_t v);
/* Encodes -1 - n (major type 1 with argument n). */
void cbor_put_nint(struct cbor_enc *e, uint64_t n);
void cbor_put_int(struct cbor_enc *e, int64_t v);
void cbor_put_bytes(struct cbor_enc *e, const uint8_t *p, size_t len);
/* The caller guarantees s is valid UTF-8 (see cbor_utf8_valid()). */
void cbor_put_text(struct cbor_enc *e, const char *s, size_t len);
/* Heads of definite containers: the caller then puts n items (array) or n
 * key/value pairs (map), keys in increasing encoded order. */
void cbor_put_array(struct cbor_enc *e, uint64_t n);
void cbor_put_map(struct cbor_enc *e, uint64_t n_pairs);
void cbor_put_bool(struct cbor_enc *e, bool v);
void cbor_put_null(struct cbor_enc *e);
/* Returns 0 and *written = bytes written, or -1 if anything overflowed
 * (then *written is the size that would have been needed). */
int cbor_enc_finish(const struct cbor_enc *e, size_t *written);

/* ---- decoder -------------------------------------------------------- */

struct cbor_dec {
	const uint8_t *buf; /* borrowed */
	size_t len;
	size_t pos; /* next byte to read */
};

void cbor_dec_init(struct cbor_dec *d, const uint8_t *buf, size_t len);

/*
 * Reads one item head at the cursor into *out and advances past it (past
 * the payload for BYTES/TEXT; to the first child for ARRAY/MAP).  Checks
 * the head is shortest-form and supported, that a string's payload is
 * present and that text is valid UTF-8.  Does not check children, depth or
 * key order: run cbor_check() over the whole item first when input is
 * untrusted.  Returns CODEC_OK, CODEC_NEED_MORE (buffer ends inside the
 * item: cursor unchanged) or CODEC_BAD (*why set; cursor unchanged).
 */
enum codec_rc cbor_dec_item(struct cbor_dec *d, struct cbor_item *out,
                            const char **why);

/* Skips one complete item (with all its children) at the cursor.  Same
 * results as cbor_dec_item(); the cursor moves only on CODEC_OK. */
enum codec_rc cbor_dec_skip(struct cbor_dec *d, const char **why);

/*
 * Validates one complete item at buf[0..len): every rule in the file head,
 * including depth and map key order.  On CODEC_OK *used is the item's size
 * (trailing bytes are the caller's business).  CODEC_NEED_MORE: buf is a
 * prefix of a possibly valid item.  CODEC_BAD: *why says which rule.
 */
enum codec_rc cbor_check(const uint8_t *buf, size_t len, size_t *used,
                         const char **why);

/* true iff s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF).  NUL bytes are allowed. */
bool cbor_utf8_valid(const uint8_t *s, size_t len);

#endif
