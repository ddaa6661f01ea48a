/*
 * json.c - strict JSON (RFC 8259) tokenizer and writer (docs/providers.md
 * §1).
 *
 * Pure: no I/O, no allocation, no clock, no globals.  Every read is
 * checked against len before it happens; tokens are views into the
 * caller's buffer.  Nesting is tracked with an explicit stack of at most
 * JSON_MAX_DEPTH entries, so hostile input cannot recurse the C stack.
 * Duplicate keys are found by comparing each new key with the earlier
 * keys of the same object (quadratic in the keys of one object, bounded by
 * the caller's token array).
 */
#include "json.h"

#include <string.h>

/* ---- UTF-8 and escapes ---------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s[i..len), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t len, size_t i)
{
	unsigned char c = s[i];
	size_t n, k;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1fu;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0fu;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07u;
	} else {
		return 0; /* continuation byte, C0/C1 overlong lead, > F4 */
	}
	if (len - i < n)
		return 0;
	for (k = 1; k < n; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i + k] & 0x3fu);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000))
		return 0; /* overlong */
	if (cp >= 0xd800 && cp <= 0xdfff)
		return 0; /* surrogate */
	if (cp > 0x10ffff)
		return 0;
	return n;
}

bool
json_utf8_valid(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n;

	while (i < len) {
		if ((n = utf8_seq(u, len, i)) == 0)
			return false;
		i += n;
	}
	return true;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Reads 4 hex digits at s[i..i+4); the caller checked they are present.
 * Returns the value or -1. */
static long
hex4(const unsigned char *s, size_t i)
{
	long v = 0;
	size_t k;

	for (k = 0; k < 4; k++) {
		int h = hexval(s[i + k]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

static size_t
utf8_put(unsigned char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (unsigned char)(0xc0 | (cp >> 6));
		out[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (unsigned char)(0xe0 | (cp >> 12));
		out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (unsigned char)(0xf0 | (cp >> 18));
	out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Yields the unescaped bytes of a string token's raw content one at a
 * time.  Only used on content json_parse() validated, so escapes are
 * complete and surrogates paired.
 */
struct str_iter {
	const unsigned char *s;
	size_t pos, len;
	unsigned char pend[4];
	size_t n_pend, i_pend;
};

static void
str_iter_init(struct str_iter *it, const struct json_doc *doc, size_t i)
{
	it->s = (const unsigned char *)doc->buf + doc->toks[i].start;
	it->len = doc->toks[i].len;
	it->pos = 0;
	it->n_pend = it->i_pend = 0;
}

/* Next byte (0..255), or -1 at the end. */
static int
str_iter_next(struct str_iter *it)
{
	unsigned char c;
	uint32_t cp;

	if (it->i_pend < it->n_pend)
		return it->pend[it->i_pend++];
	if (it->pos >= it->len)
		return -1;
	c = it->s[it->pos];
	if (c != '\\') {
		it->pos++;
		return c;
	}
	c = it->s[it->pos + 1];
	it->pos += 2;
	switch (c) {
	case 'b':
		return '\b';
	case 'f':
		return '\f';
	case 'n':
		return '\n';
	case 'r':
		return '\r';
	case 't':
		return '\t';
	case 'u':
		break;
	default:
		return c; /* '"', '\\', '/' */
	}
	cp = (uint32_t)hex4(it->s, it->pos);
	it->pos += 4;
	if (cp >= 0xd800 && cp <= 0xdbff) {
		uint32_t lo = (uint32_t)hex4(it->s, it->pos + 2);

		it->pos += 6;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	it->n_pend = utf8_put(it->pend, cp);
	it->i_pend = 1;
	return it->pend[0];
}

/* ---- tokenizer ------------------------------------------------------ */

struct parser {
	const unsigned char *s;
	size_t len, pos;
	struct json_tok *toks;
	size_t cap, n;
	const char *why;
	bool is_full;
};

static bool
is_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static void
skip_ws(struct parser *p)
{
	while (p->pos < p->len && is_ws(p->s[p->pos]))
		p->pos++;
}

/* Appends a token; -1 (and is_full) when the caller's array is full. */
static int
tok_new(struct parser *p, enum json_type type, size_t start)
{
	struct json_tok *t;

	if (p->n >= p->cap) {
		p->is_full = true;
		p->why = "too many tokens";
		return -1;
	}
	t = &p->toks[p->n];
	t->type = type;
	t->start = start;
	t->len = 0;
	t->n_items = 0;
	t->end = p->n + 1;
	t->has_escape = false;
	p->n++;
	return 0;
}

static int
bad(struct parser *p, const char *why)
{
	p->why = why;
	return -1;
}

/* Scans a string whose opening quote is at p->pos; adds a STRING token. */
static int
scan_string(struct parser *p)
{
	size_t start = p->pos + 1, i = start, n;
	bool has_escape = false;

	for (;;) {
		unsigned char c;

		if (i >= p->len)
			return bad(p, "unterminated string");
		c = p->s[i];
		if (c == '"')
			break;
		if (c < 0x20)
			return bad(p, "control character in string");
		if (c == '\\') {
			long cp;

			has_escape = true;
			if (i + 1 >= p->len)
				return bad(p, "unterminated string");
			c = p->s[i + 1];
			if (c == '"' || c == '\\' || c == '/' || c == 'b' ||
			    c == 'f' || c == 'n' || c == 'r' || c == 't') {
				i += 2;
				continue;
			}
			if (c != 'u')
				return bad(p, "invalid escape");
			if (p->len - i < 6)
				return bad(p, "unterminated string");
			if ((cp = hex4(p->s, i + 2)) < 0)
				return bad(p, "invalid \\u escape");
			i += 6;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return bad(p, "lone low surrogate escape");
			if (cp >= 0xd800 && cp <= 0xdbff) {
				long lo;

				if (p->len - i < 6 || p->s[i] != '\\' ||
				    p->s[i + 1] != 'u')
					return bad(
					    p, "lone high surrogate escape");
				lo = hex4(p->s, i + 2);
				if (lo < 0xdc00 || lo > 0xdfff)
					return bad(
					    p, "lone high surrogate escape");
				i += 6;
			}
			continue;
		}
		if ((n = utf8_seq(p->s, p->len, i)) == 0)
			return bad(p, "invalid UTF-8 in string");
		i += n;
	}
	if (tok_new(p, JSON_STRING, start) == -1)
		return -1;
	p->toks[p->n - 1].len = i - start;
	p->toks[p->n - 1].has_escape = has_escape;
	p->pos = i + 1;
	return 0;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

/* Length of the JSON number at s[0..len), or 0 with *why. */
static size_t
num_len(const unsigned char *s, size_t len, const char **why)
{
	size_t i = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i >= len || !is_digit(s[i])) {
		*why = "invalid number";
		return 0;
	}
	if (s[i] == '0') {
		i++;
		if (i < len && is_digit(s[i])) {
			*why = "leading zero in number";
			return 0;
		}
	} else {
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && s[i] == '.') {
		i++;
		if (i >= len || !is_digit(s[i])) {
			*why = "invalid number fraction";
			return 0;
		}
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= len || !is_digit(s[i])) {
			*why = "invalid number exponent";
			return 0;
		}
		while (i < len && is_digit(s[i]))
			i++;
	}
	return i;
}

static int
scan_literal(struct parser *p, const char *lit, enum json_type type)
{
	size_t n = strlen(lit);

	if (p->len - p->pos < n || memcmp(p->s + p->pos, lit, n) != 0)
		return bad(p, "invalid literal");
	if (tok_new(p, type, p->pos) == -1)
		return -1;
	p->toks[p->n - 1].len = n;
	p->pos += n;
	return 0;
}

/* Scans one scalar, or opens a container (pushed by the caller). */
static int
scan_value_start(struct parser *p)
{
	unsigned char c;
	size_t n;

	if (p->pos >= p->len)
		return bad(p, "unexpected end of input");
	c = p->s[p->pos];
	switch (c) {
	case '{':
		return tok_new(p, JSON_OBJECT, p->pos++);
	case '[':
		return tok_new(p, JSON_ARRAY, p->pos++);
	case '"':
		return scan_string(p);
	case 't':
		return scan_literal(p, "true", JSON_TRUE);
	case 'f':
		return scan_literal(p, "false", JSON_FALSE);
	case 'n':
		return scan_literal(p, "null", JSON_NULL);
	default:
		break;
	}
	if (c != '-' && !is_digit(c))
		return bad(p, c == 'N' || c == 'I' ? "NaN/Infinity are not JSON"
		                                   : "unexpected character");
	if ((n = num_len(p->s + p->pos, p->len - p->pos, &p->why)) == 0)
		return -1;
	if (tok_new(p, JSON_NUMBER, p->pos) == -1)
		return -1;
	p->toks[p->n - 1].len = n;
	p->pos += n;
	return 0;
}

static bool
str_tok_eq(const struct json_doc *d, size_t a, size_t b)
{
	struct str_iter ia, ib;
	int ca, cb;

	if (!d->toks[a].has_escape && !d->toks[b].has_escape)
		return d->toks[a].len == d->toks[b].len &&
		       memcmp(d->buf + d->toks[a].start,
		              d->buf + d->toks[b].start, d->toks[a].len) == 0;
	str_iter_init(&ia, d, a);
	str_iter_init(&ib, d, b);
	do {
		ca = str_iter_next(&ia);
		cb = str_iter_next(&ib);
		if (ca != cb)
			return false;
	} while (ca != -1);
	return true;
}

/* Is key token k a duplicate of an earlier key of object obj? */
static bool
is_dup_key(const struct parser *p, size_t obj, size_t k)
{
	struct json_doc d;
	size_t i;

	d.buf = (const char *)p->s;
	d.len = p->len;
	d.toks = p->toks;
	d.n_toks = p->n;
	for (i = obj + 1; i < k; i = p->toks[i + 1].end)
		if (str_tok_eq(&d, i, k))
			return true;
	return false;
}

static int
parse(struct parser *p)
{
	size_t stack[JSON_MAX_DEPTH];
	size_t depth = 0, t;
	unsigned char c;

	skip_ws(p);
value:
	if (depth > 0 && p->toks[stack[depth - 1]].type == JSON_ARRAY)
		p->toks[stack[depth - 1]].n_items++;
	if (scan_value_start(p) == -1)
		return -1;
	t = p->n - 1;
	if (p->toks[t].type == JSON_OBJECT || p->toks[t].type == JSON_ARRAY) {
		if (depth >= JSON_MAX_DEPTH)
			return bad(p, "nesting too deep");
		stack[depth++] = t;
		skip_ws(p);
		if (p->pos >= p->len)
			return bad(p, "unexpected end of input");
		c = p->s[p->pos];
		if (p->toks[t].type == JSON_OBJECT) {
			if (c == '}') {
				p->pos++;
				goto close;
			}
			goto key;
		}
		if (c == ']') {
			p->pos++;
			goto close;
		}
		goto value;
	}
	goto after;
close:
	t = stack[--depth];
	p->toks[t].end = p->n;
	p->toks[t].len = p->pos - p->toks[t].start;
after:
	skip_ws(p);
	if (depth == 0) {
		if (p->pos != p->len)
			return bad(p, "trailing bytes after the value");
		return 0;
	}
	if (p->pos >= p->len)
		return bad(p, "unexpected end of input");
	c = p->s[p->pos++];
	t = stack[depth - 1];
	if (c == ',') {
		skip_ws(p);
		if (p->toks[t].type == JSON_OBJECT)
			goto key;
		goto value;
	}
	if ((c == '}' && p->toks[t].type == JSON_OBJECT) ||
	    (c == ']' && p->toks[t].type == JSON_ARRAY))
		goto close;
	return bad(p, p->toks[t].type == JSON_OBJECT ? "expected ',' or '}'"
	                                             : "expected ',' or ']'");
key:
	if (p->pos >= p->len)
		return bad(p, "unexpected end of input");
	if (p->s[p->pos] != '"')
		return bad(p, "expected a string key");
	if (scan_string(p) == -1)
		return -1;
	t = stack[depth - 1];
	if (is_dup_key(p, t, p->n - 1))
		return bad(p, "duplicate key");
	p->toks[t].n_items++;
	skip_ws(p);
	if (p->pos >= p->len)
		return bad(p, "unexpected end of input");
	if (p->s[p->pos] != ':')
		return bad(p, "expected ':'");
	p->pos++;
	skip_ws(p);
	goto value;
}

enum codec_rc
json_parse(struct json_doc *doc, struct json_tok *toks, size_t cap,
           const char *buf, size_t len, const char **why)
{
	struct parser p;

	p.s = (const unsigned char *)buf;
	p.len = len;
	p.pos = 0;
	p.toks = toks;
	p.cap = cap;
	p.n = 0;
	p.why = NULL;
	p.is_full = false;
	doc->buf = buf;
	doc->len = len;
	doc->toks = toks;
	doc->n_toks = 0;
	if (parse(&p) == -1) {
		*why = p.why;
		return p.is_full ? CODEC_NEED_MORE : CODEC_BAD;
	}
	doc->n_toks = p.n;
	return CODEC_OK;
}

/* ---- access --------------------------------------------------------- */

struct json_span
json_span(const struct json_doc *doc, size_t i)
{
	struct json_span s;

	s.ptr = doc->buf + doc->toks[i].start;
	s.len = doc->toks[i].len;
	return s;
}

bool
json_str_eq(const struct json_doc *doc, size_t i, const char *s)
{
	const struct json_tok *t;
	struct str_iter it;
	size_t k = 0;
	int c;

	if (i >= doc->n_toks || doc->toks[i].type != JSON_STRING)
		return false;
	t = &doc->toks[i];
	if (!t->has_escape)
		return strlen(s) == t->len &&
		       memcmp(doc->buf + t->start, s, t->len) == 0;
	str_iter_init(&it, doc, i);
	while ((c = str_iter_next(&it)) != -1) {
		if (s[k] == '\0' || (unsigned char)s[k] != c)
			return false;
		k++;
	}
	return s[k] == '\0';
}

size_t
json_first(const struct json_doc *doc, size_t c)
{
	if (c >= doc->n_toks ||
	    (doc->toks[c].type != JSON_OBJECT &&
	     doc->toks[c].type != JSON_ARRAY) ||
	    doc->toks[c].n_items == 0)
		return 0;
	return c + 1;
}

size_t
json_next(const struct json_doc *doc, size_t c, size_t i)
{
	size_t n = doc->toks[i].end;

	return n < doc->toks[c].end ? n : 0;
}

size_t
json_obj_get(const struct json_doc *doc, size_t obj, const char *key)
{
	size_t k;

	if (obj >= doc->n_toks || doc->toks[obj].type != JSON_OBJECT)
		return 0;
	for (k = json_first(doc, obj); k != 0; k = json_next(doc, obj, k + 1))
		if (json_str_eq(doc, k, key))
			return k + 1;
	return 0;
}

enum codec_rc
json_str_unescape(char *dst, size_t cap, const struct json_doc *doc, size_t i,
                  size_t *len, const char **why)
{
	struct str_iter it;
	size_t n = 0;
	int c;

	if (i >= doc->n_toks || doc->toks[i].type != JSON_STRING) {
		*why = "not a string";
		return CODEC_BAD;
	}
	str_iter_init(&it, doc, i);
	while ((c = str_iter_next(&it)) != -1) {
		if (c == 0) {
			*why = "U+0000 in string";
			return CODEC_BAD;
		}
		if (n + 1 < cap)
			dst[n] = (char)c;
		n++;
	}
	if (n + 1 > cap) {
		*len = n + 1;
		return CODEC_NEED_MORE;
	}
	dst[n] = '\0';
	*len = n;
	return CODEC_OK;
}

/* ---- numbers -------------------------------------------------------- */

#define EXP_CLAMP 100000L /* |exponent| beyond this is clamped: still exact */

/*
 * Splits a JSON number into sign, significant digits and a power of ten:
 * value = (neg ? -1 : 1) * digits * 10^pow10, with leading and trailing
 * zeros of the digits removed (so "1.000" is digits "1", pow10 0).
 */
struct dec {
	bool neg;
	const unsigned char *dig; /* first significant digit */
	size_t n_dig;             /* significant digits, '.' skipped */
	long pow10;
	bool has_frac, has_exp;
};

static int
dec_split(struct json_span sp, struct dec *d, const char **why)
{
	const unsigned char *s = (const unsigned char *)sp.ptr;
	size_t i = 0, int_start, int_end, frac_start = 0, frac_end = 0, n;
	size_t first, last, k;
	long e = 0;
	bool e_neg = false;

	if (sp.len == 0) {
		*why = "empty number";
		return -1;
	}
	if ((n = num_len(s, sp.len, why)) == 0)
		return -1;
	if (n != sp.len) {
		*why = "invalid number";
		return -1;
	}
	d->neg = s[0] == '-';
	d->has_frac = d->has_exp = false;
	if (d->neg)
		i++;
	int_start = i;
	while (i < n && is_digit(s[i]))
		i++;
	int_end = i;
	if (i < n && s[i] == '.') {
		d->has_frac = true;
		frac_start = ++i;
		while (i < n && is_digit(s[i]))
			i++;
		frac_end = i;
	}
	if (i < n) { /* 'e' or 'E' */
		d->has_exp = true;
		i++;
		if (s[i] == '+' || s[i] == '-')
			e_neg = s[i++] == '-';
		for (; i < n; i++)
			if (e < EXP_CLAMP)
				e = e * 10 + (s[i] - '0');
		if (e_neg)
			e = -e;
	}
	/* Digits as one sequence: int part then fraction part; find the
	 * first and last non-zero digit positions in that sequence. */
	first = last = SIZE_MAX;
	for (k = int_start; k < int_end; k++)
		if (s[k] != '0') {
			if (first == SIZE_MAX)
				first = k;
			last = k;
		}
	for (k = frac_start; k < frac_end; k++)
		if (s[k] != '0') {
			if (first == SIZE_MAX)
				first = k;
			last = k;
		}
	if (first == SIZE_MAX) { /* zero */
		d->dig = s + int_start;
		d->n_dig = 0;
		d->pow10 = 0;
		return 0;
	}
	d->dig = s + first;
	/* Digits from first to last, skipping a '.' between them. */
	d->n_dig = last - first + 1;
	if (first < int_end && last >= frac_start && d->has_frac)
		d->n_dig--;
	/* Power of ten of the last significant digit. */
	if (last < int_end)
		d->pow10 = (long)(int_end - 1 - last);
	else
		d->pow10 = -(long)(last - frac_start + 1);
	d->pow10 += e;
	return 0;
}

/* digits * 10^shift as a magnitude <= limit; -1 on overflow. */
static int
dec_mag(const struct dec *d, long shift, uint64_t limit, uint64_t *out)
{
	uint64_t v = 0;
	size_t k = 0, got = 0;
	long s;

	while (got < d->n_dig) {
		unsigned char c = d->dig[k++];
		uint64_t dv;

		if (c == '.')
			continue;
		dv = (uint64_t)(c - '0');
		if (v > (limit - dv) / 10)
			return -1;
		v = v * 10 + dv;
		got++;
	}
	for (s = 0; s < shift; s++) {
		if (v > limit / 10)
			return -1;
		v *= 10;
	}
	*out = v;
	return 0;
}

static int
dec_to_i64(const struct dec *d, long shift, int64_t *out, const char **why)
{
	uint64_t limit = d->neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t mag;

	if (d->n_dig == 0) {
		*out = 0;
		return 0;
	}
	if (shift < 0) {
		*why = "more decimals than the currency has";
		return -1;
	}
	if (shift > 19 || dec_mag(d, shift, limit, &mag) == -1) {
		*why = "number out of range";
		return -1;
	}
	if (d->neg)
		*out =
		    mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		*out = (int64_t)mag;
	return 0;
}

enum codec_rc
json_num_to_minor(struct json_span s, unsigned exponent, int64_t *out,
                  const char **why)
{
	struct dec d;

	if (exponent > 18) {
		*why = "currency exponent too large";
		return CODEC_BAD;
	}
	if (dec_split(s, &d, why) == -1)
		return CODEC_BAD;
	if (dec_to_i64(&d, d.pow10 + (long)exponent, out, why) == -1)
		return CODEC_BAD;
	return CODEC_OK;
}

enum codec_rc
json_num_to_i64(struct json_span s, int64_t *out, const char **why)
{
	struct dec d;

	if (dec_split(s, &d, why) == -1)
		return CODEC_BAD;
	if (d.has_frac || d.has_exp) {
		*why = "not an integer";
		return CODEC_BAD;
	}
	if (dec_to_i64(&d, d.pow10, out, why) == -1)
		return CODEC_BAD;
	return CODEC_OK;
}

enum codec_rc
json_num_to_u64(struct json_span s, uint64_t *out, const char **why)
{
	struct dec d;

	if (dec_split(s, &d, why) == -1)
		return CODEC_BAD;
	if (d.has_frac || d.has_exp) {
		*why = "not an integer";
		return CODEC_BAD;
	}
	if (d.n_dig == 0) {
		*out = 0;
		return CODEC_OK;
	}
	if (d.neg) {
		*why = "negative number";
		return CODEC_BAD;
	}
	if (d.pow10 > 19 || dec_mag(&d, d.pow10, UINT64_MAX, out) == -1) {
		*why = "number out of range";
		return CODEC_BAD;
	}
	return CODEC_OK;
}

/* ---- writer --------------------------------------------------------- */

void
json_w_init(struct json_w *w, char *buf, size_t cap)
{
	memset(w, 0, sizeof *w);
	w->buf = buf;
	w->cap = cap;
}

static void
put(struct json_w *w, const char *s, size_t n)
{
	if (w->len < w->cap && n <= w->cap - w->len)
		memcpy(w->buf + w->len, s, n);
	w->len = n > SIZE_MAX - w->len ? SIZE_MAX : w->len + n;
}

static void
misuse(struct json_w *w, const char *why)
{
	if (w->misuse == NULL)
		w->misuse = why;
}

/* Before any value: the comma, and checks that a value may come here. */
static void
pre_value(struct json_w *w)
{
	uint64_t bit;

	if (w->depth == 0) {
		if (w->is_done)
			misuse(w, "second top-level value");
		return;
	}
	bit = (uint64_t)1 << (w->depth - 1);
	if (w->is_obj & bit) {
		if (!w->after_key)
			misuse(w, "value without a key in an object");
		w->after_key = false;
		return;
	}
	if (w->has_item & bit)
		put(w, ",", 1);
	w->has_item |= bit;
}

static void
post_value(struct json_w *w)
{
	if (w->depth == 0)
		w->is_done = true;
}

static void
open_container(struct json_w *w, bool is_obj)
{
	uint64_t bit;

	pre_value(w);
	if (w->depth >= JSON_MAX_DEPTH) {
		misuse(w, "nesting too deep");
		return;
	}
	bit = (uint64_t)1 << w->depth;
	w->depth++;
	if (is_obj)
		w->is_obj |= bit;
	else
		w->is_obj &= ~bit;
	w->has_item &= ~bit;
	put(w, is_obj ? "{" : "[", 1);
}

static void
close_container(struct json_w *w, bool is_obj)
{
	uint64_t bit;

	if (w->depth == 0) {
		misuse(w, "close without open");
		return;
	}
	bit = (uint64_t)1 << (w->depth - 1);
	if (((w->is_obj & bit) != 0) != is_obj) {
		misuse(w, "mismatched close");
		return;
	}
	if (w->after_key)
		misuse(w, "key without a value");
	w->depth--;
	put(w, is_obj ? "}" : "]", 1);
	post_value(w);
}

void
json_w_obj_begin(struct json_w *w)
{
	open_container(w, true);
}

void
json_w_obj_end(struct json_w *w)
{
	close_container(w, true);
}

void
json_w_arr_begin(struct json_w *w)
{
	open_container(w, false);
}

void
json_w_arr_end(struct json_w *w)
{
	close_container(w, false);
}

static void
put_escaped(struct json_w *w, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;

	if (!json_utf8_valid(s, len)) {
		misuse(w, "invalid UTF-8 in string");
		return;
	}
	put(w, "\"", 1);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 'u', '0', '0', 0, 0};
		size_t n = 2;

		if (c >= 0x20 && c != '"' && c != '\\') {
			continue;
		}
		put(w, s + run, i - run);
		run = i + 1;
		switch (c) {
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		default:
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
			break;
		}
		put(w, esc, n);
	}
	put(w, s + run, len - run);
	put(w, "\"", 1);
}

void
json_w_key(struct json_w *w, const char *k)
{
	uint64_t bit;

	if (w->depth == 0 || !(w->is_obj & ((uint64_t)1 << (w->depth - 1)))) {
		misuse(w, "key outside an object");
		return;
	}
	if (w->after_key) {
		misuse(w, "key after a key");
		return;
	}
	bit = (uint64_t)1 << (w->depth - 1);
	if (w->has_item & bit)
		put(w, ",", 1);
	w->has_item |= bit;
	put_escaped(w, k, strlen(k));
	put(w, ":", 1);
	w->after_key = true;
}

void
json_w_str(struct json_w *w, const char *s, size_t len)
{
	pre_value(w);
	put_escaped(w, s, len);
	post_value(w);
}

void
json_w_cstr(struct json_w *w, const char *s)
{
	json_w_str(w, s, strlen(s));
}

/* Decimal digits of v into the end of buf[0..24); returns the start. */
static char *
fmt_u64(char *end, uint64_t v)
{
	do {
		*--end = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	return end;
}

void
json_w_uint(struct json_w *w, uint64_t v)
{
	char b[24], *p = fmt_u64(b + sizeof b, v);

	pre_value(w);
	put(w, p, (size_t)(b + sizeof b - p));
	post_value(w);
}

void
json_w_int(struct json_w *w, int64_t v)
{
	json_w_minor(w, v, 0);
}

void
json_w_minor(struct json_w *w, int64_t minor, unsigned exponent)
{
	char b[48], *end = b + sizeof b, *p;
	uint64_t mag =
	    minor < 0 ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	unsigned k;

	if (exponent > 18) {
		misuse(w, "currency exponent too large");
		return;
	}
	p = end;
	for (k = 0; k < exponent; k++) {
		*--p = (char)('0' + mag % 10);
		mag /= 10;
	}
	if (exponent > 0)
		*--p = '.';
	p = fmt_u64(p, mag);
	if (minor < 0)
		*--p = '-';
	pre_value(w);
	put(w, p, (size_t)(end - p));
	post_value(w);
}

void
json_w_bool(struct json_w *w, bool v)
{
	pre_value(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
	post_value(w);
}

void
json_w_null(struct json_w *w)
{
	pre_value(w);
	put(w, "null", 4);
	post_value(w);
}

void
json_w_raw(struct json_w *w, const char *s, size_t len)
{
	pre_value(w);
	put(w, s, len);
	post_value(w);
}

enum codec_rc
json_w_finish(struct json_w *w, size_t *written, const char **why)
{
	if (w->misuse == NULL && (w->depth != 0 || !w->is_done))
		misuse(w, w->depth != 0 ? "unclosed container" : "no value");
	if (w->misuse != NULL) {
		*why = w->misuse;
		return CODEC_BAD;
	}
	if (w->len >= w->cap) {
		*written = w->len == SIZE_MAX ? SIZE_MAX : w->len + 1;
		*why = "output buffer too small";
		return CODEC_NEED_MORE;
	}
	w->buf[w->len] = '\0';
	*written = w->len;
	return CODEC_OK;
}
