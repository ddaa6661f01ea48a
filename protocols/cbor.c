/*
 * cbor.c - minimal canonical CBOR subset (RFC 8949); see cbor.h for the
 * accepted subset and the rules.
 *
 * Pure: no I/O, no allocation.  Every read is checked against the bytes
 * present before it happens; counts are checked against the bytes left
 * before anything is sized from them.
 */
#include "cbor.h"

#include <string.h>

/* Major types (RFC 8949 §3.1). */
enum {
	MT_UINT = 0,
	MT_NINT = 1,
	MT_BYTES = 2,
	MT_TEXT = 3,
	MT_ARRAY = 4,
	MT_MAP = 5,
	MT_TAG = 6,
	MT_SIMPLE = 7,
};

/* ---- encoder -------------------------------------------------------- */

void
cbor_enc_init(struct cbor_enc *e, uint8_t *buf, size_t cap)
{
	e->buf = buf;
	e->cap = buf == NULL ? 0 : cap;
	e->len = 0;
	e->is_overflow = false;
}

/* Appends n bytes, or only counts them once the buffer is full. */
static void
put_raw(struct cbor_enc *e, const uint8_t *p, size_t n)
{
	if (e->is_overflow || n > e->cap - e->len) {
		e->is_overflow = true;
		e->len = e->len + n < e->len ? SIZE_MAX : e->len + n;
		return;
	}
	if (n > 0)
		memcpy(e->buf + e->len, p, n);
	e->len += n;
}

/* Writes a head in its shortest form (RFC 8949 §4.2.1). */
static void
put_head(struct cbor_enc *e, unsigned major, uint64_t arg)
{
	uint8_t h[9];
	size_t n, i;

	if (arg < 24) {
		h[0] = (uint8_t)(major << 5 | (unsigned)arg);
		put_raw(e, h, 1);
		return;
	}
	if (arg <= 0xff)
		h[0] = (uint8_t)(major << 5 | 24), n = 1;
	else if (arg <= 0xffff)
		h[0] = (uint8_t)(major << 5 | 25), n = 2;
	else if (arg <= 0xffffffff)
		h[0] = (uint8_t)(major << 5 | 26), n = 4;
	else
		h[0] = (uint8_t)(major << 5 | 27), n = 8;
	for (i = 0; i < n; i++)
		h[1 + i] = (uint8_t)(arg >> (8 * (n - 1 - i)));
	put_raw(e, h, 1 + n);
}

void
cbor_put_uint(struct cbor_enc *e, uint64_t v)
{
	put_head(e, MT_UINT, v);
}

void
cbor_put_nint(struct cbor_enc *e, uint64_t n)
{
	put_head(e, MT_NINT, n);
}

void
cbor_put_int(struct cbor_enc *e, int64_t v)
{
	if (v >= 0)
		put_head(e, MT_UINT, (uint64_t)v);
	else /* -1 - v without overflow: ~v as unsigned */
		put_head(e, MT_NINT, ~(uint64_t)v);
}

void
cbor_put_bytes(struct cbor_enc *e, const uint8_t *p, size_t len)
{
	put_head(e, MT_BYTES, len);
	put_raw(e, p, len);
}

void
cbor_put_text(struct cbor_enc *e, const char *s, size_t len)
{
	put_head(e, MT_TEXT, len);
	put_raw(e, (const uint8_t *)s, len);
}

void
cbor_put_array(struct cbor_enc *e, uint64_t n)
{
	put_head(e, MT_ARRAY, n);
}

void
cbor_put_map(struct cbor_enc *e, uint64_t n_pairs)
{
	put_head(e, MT_MAP, n_pairs);
}

void
cbor_put_bool(struct cbor_enc *e, bool v)
{
	uint8_t b = v ? 0xf5 : 0xf4;

	put_raw(e, &b, 1);
}

void
cbor_put_null(struct cbor_enc *e)
{
	uint8_t b = 0xf6;

	put_raw(e, &b, 1);
}

int
cbor_enc_finish(const struct cbor_enc *e, size_t *written)
{
	*written = e->len;
	return e->is_overflow ? -1 : 0;
}

/* ---- decoder -------------------------------------------------------- */

void
cbor_dec_init(struct cbor_dec *d, const uint8_t *buf, size_t len)
{
	d->buf = buf;
	d->len = buf == NULL ? 0 : len;
	d->pos = 0;
}

bool
cbor_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n, k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1fu, min = 0x80;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0fu, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07u, min = 0x10000;
		else
			return false; /* continuation, 0xc0/0xc1 or > 0xf4 */
		if (n > len - i - 1)
			return false;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

enum codec_rc
cbor_dec_item(struct cbor_dec *d, struct cbor_item *out, const char **why)
{
	const uint8_t *p = d->buf + d->pos;
	size_t left = d->len - d->pos, n, i;
	unsigned major, ai;
	uint64_t arg;

	if (left < 1)
		return CODEC_NEED_MORE;
	major = (unsigned)p[0] >> 5;
	ai = p[0] & 0x1fu;
	if (major == MT_TAG) {
		*why = "tags not supported";
		return CODEC_BAD;
	}
	if (major == MT_SIMPLE) {
		switch (ai) {
		case 20:
		case 21:
			out->type = CBOR_BOOL;
			out->is_true = ai == 21;
			break;
		case 22:
			out->type = CBOR_NULL;
			break;
		case 25:
		case 26:
		case 27:
			*why = "floats not supported";
			return CODEC_BAD;
		case 31:
			*why = "unexpected break";
			return CODEC_BAD;
		default:
			*why = "simple value not supported";
			return CODEC_BAD;
		}
		out->u = 0;
		out->ptr = NULL;
		d->pos++;
		return CODEC_OK;
	}
	if (ai == 31) {
		*why = "indefinite length not supported";
		return CODEC_BAD;
	}
	if (ai > 27) {
		*why = "reserved additional information";
		return CODEC_BAD;
	}
	n = ai < 24 ? 0 : (size_t)1 << (ai - 24);
	if (n > left - 1)
		return CODEC_NEED_MORE;
	arg = ai < 24 ? ai : 0;
	for (i = 0; i < n; i++)
		arg = arg << 8 | p[1 + i];
	if ((n == 1 && arg < 24) || (n == 2 && arg <= 0xff) ||
	    (n == 4 && arg <= 0xffff) || (n == 8 && arg <= 0xffffffff)) {
		*why = "non-shortest integer encoding";
		return CODEC_BAD;
	}
	left -= 1 + n;
	out->u = arg;
	out->ptr = NULL;
	out->is_true = false;
	switch (major) {
	case MT_UINT:
		out->type = CBOR_UINT;
		break;
	case MT_NINT:
		out->type = CBOR_NINT;
		break;
	case MT_BYTES:
	case MT_TEXT:
		if (arg > left)
			return CODEC_NEED_MORE;
		out->type = major == MT_BYTES ? CBOR_BYTES : CBOR_TEXT;
		out->ptr = p + 1 + n;
		if (major == MT_TEXT &&
		    !cbor_utf8_valid(out->ptr, (size_t)arg)) {
			*why = "text is not valid UTF-8";
			return CODEC_BAD;
		}
		n += (size_t)arg;
		break;
	case MT_ARRAY:
		out->type = CBOR_ARRAY;
		break;
	default:
		out->type = CBOR_MAP;
		break;
	}
	d->pos += 1 + n;
	return CODEC_OK;
}

/* Children a container head announces, or false if they cannot all fit in
 * the bytes left (each child takes at least one byte). */
static bool
n_children(const struct cbor_item *it, size_t left, uint64_t *n)
{
	*n = 0;
	if (it->type == CBOR_ARRAY) {
		if (it->u > left)
			return false;
		*n = it->u;
	} else if (it->type == CBOR_MAP) {
		if (it->u > left / 2)
			return false;
		*n = it->u * 2;
	}
	return true;
}

enum codec_rc
cbor_dec_skip(struct cbor_dec *d, const char **why)
{
	struct cbor_dec t = *d;
	struct cbor_item it;
	uint64_t pending = 1, n;
	enum codec_rc rc;

	while (pending > 0) {
		if ((rc = cbor_dec_item(&t, &it, why)) != CODEC_OK)
			return rc;
		pending--;
		/* pending items each need a byte: bounds pending by len */
		if (!n_children(&it, t.len - t.pos, &n) ||
		    n > t.len - t.pos - pending)
			return CODEC_NEED_MORE;
		pending += n;
	}
	*d = t;
	return CODEC_OK;
}

/* Orders two encoded map keys bytewise (RFC 8949 §4.2.1): <0, 0, >0. */
static int
key_cmp(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
	int c = memcmp(a, b, a_len < b_len ? a_len : b_len);

	if (c != 0)
		return c;
	return a_len < b_len ? -1 : a_len > b_len;
}

enum codec_rc
cbor_check(const uint8_t *buf, size_t len, size_t *used, const char **why)
{
	struct level {
		uint64_t left;         /* child items still to read */
		bool is_map;           /* left even: next item is a key */
		bool has_prev;         /* a key was seen at this level */
		size_t prev, prev_len; /* last key's encoding, for order */
	} st[CBOR_MAX_DEPTH];
	struct cbor_dec d;
	struct cbor_item it;
	size_t depth = 0, start;
	enum codec_rc rc;
	uint64_t n;

	cbor_dec_init(&d, buf, len);
	for (;;) {
		struct level *top = depth > 0 ? &st[depth - 1] : NULL;
		bool is_key = top != NULL && top->is_map && top->left % 2 == 0;

		start = d.pos;
		if ((rc = cbor_dec_item(&d, &it, why)) != CODEC_OK)
			return rc;
		if (is_key) {
			if (it.type == CBOR_ARRAY || it.type == CBOR_MAP ||
			    it.type == CBOR_BOOL || it.type == CBOR_NULL) {
				*why = "map key is not an integer or string";
				return CODEC_BAD;
			}
			if (top->has_prev) {
				int c = key_cmp(buf + top->prev, top->prev_len,
				                buf + start, d.pos - start);

				if (c == 0) {
					*why = "duplicate map key";
					return CODEC_BAD;
				}
				if (c > 0) {
					*why =
					    "map keys not in canonical order";
					return CODEC_BAD;
				}
			}
			top->has_prev = true;
			top->prev = start;
			top->prev_len = d.pos - start;
		}
		if (top != NULL)
			top->left--;
		if (it.type == CBOR_ARRAY || it.type == CBOR_MAP) {
			if (depth == CBOR_MAX_DEPTH) {
				*why = "nesting too deep";
				return CODEC_BAD;
			}
			if (!n_children(&it, d.len - d.pos, &n))
				return CODEC_NEED_MORE;
			st[depth].left = n;
			st[depth].is_map = it.type == CBOR_MAP;
			st[depth].has_prev = false;
			st[depth].prev = st[depth].prev_len = 0;
			depth++;
		}
		while (depth > 0 && st[depth - 1].left == 0)
			depth--;
		if (depth == 0)
			break;
	}
	*used = d.pos;
	return CODEC_OK;
}
