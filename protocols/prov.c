/*
 * prov.c - helpers shared by the provider codecs (docs/providers.md §3).
 *
 * Pure: no I/O, no allocation, no clock, no globals.  Every reader checks
 * the token type before it looks at the value and copies with an explicit
 * capacity.
 */
#include "prov.h"

#include <string.h>

#include "base64.h"
#include "money.h"

const char *
prov_outcome_name(enum prov_outcome o)
{
	switch (o) {
	case PROV_PENDING:
		return "pending";
	case PROV_SUCCEEDED:
		return "succeeded";
	case PROV_FAILED:
		return "failed";
	case PROV_UNKNOWN:
		return "unknown";
	}
	return "?";
}

const char *
prov_rc_name(enum prov_rc rc)
{
	switch (rc) {
	case PROV_OK:
		return "ok";
	case PROV_MISSING:
		return "missing";
	case PROV_WRONG_TYPE:
		return "wrong_type";
	case PROV_BAD_VALUE:
		return "bad_value";
	}
	return "?";
}

/* ---- amounts ---------------------------------------------------------- */

int
prov_currency_exponent(const char *alpha)
{
	const struct currency *c;

	if (alpha == NULL)
		return -1;
	c = money_currency_by_alpha(alpha);
	return c == NULL ? -1 : (int)c->exponent;
}

enum codec_rc
prov_decimal(char *dst, size_t cap, int64_t minor, unsigned exponent,
             size_t *written)
{
	char b[48], *p = b + sizeof b;
	uint64_t v;
	unsigned i;
	size_t n;
	bool is_frac = false;

	if (minor < 0 || exponent > 18)
		return CODEC_BAD;
	v = (uint64_t)minor;
	/* Fraction digits from the right, dropping trailing zeros. */
	for (i = 0; i < exponent; i++) {
		char c = (char)('0' + (int)(v % 10));

		v /= 10;
		if (c == '0' && !is_frac)
			continue;
		is_frac = true;
		*--p = c;
	}
	if (is_frac)
		*--p = '.';
	do {
		*--p = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	n = (size_t)(b + sizeof b - p);
	if (cap < n + 1) {
		*written = n + 1;
		return CODEC_NEED_MORE;
	}
	memcpy(dst, p, n);
	dst[n] = '\0';
	*written = n;
	return CODEC_OK;
}

static bool
printable_ascii(const char *s)
{
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

enum codec_rc
prov_basic_auth(char *dst, size_t cap, const char *user, const char *secret,
                size_t *written, const char **why)
{
	uint8_t raw[128 + 1 + 256];
	size_t a, b;
	enum codec_rc rc;

	if (user == NULL || (a = strlen(user)) == 0 || a > 128 ||
	    !printable_ascii(user) || strchr(user, ':') != NULL) {
		*why = "user: 1-128 printable bytes, no ':'";
		return CODEC_BAD;
	}
	if (secret == NULL || (b = strlen(secret)) == 0 || b > 256 ||
	    !printable_ascii(secret)) {
		*why = "secret: 1-256 printable bytes";
		return CODEC_BAD;
	}
	memcpy(raw, user, a);
	raw[a] = ':';
	memcpy(raw + a + 1, secret, b);
	rc = base64_encode(dst, cap, raw, a + 1 + b, written);
	/* The secret must not linger on the stack; a plain memset could be
	 * dropped, so wipe through a volatile pointer (no feature macros in
	 * protocols/, so no explicit_bzero). */
	{
		volatile uint8_t *vp = raw;
		size_t i;

		for (i = 0; i < sizeof raw; i++)
			vp[i] = 0;
	}
	return rc;
}

/* ---- field readers ---------------------------------------------------- */

enum prov_rc
prov_fail(struct prov_err *err, enum prov_rc rc, const char *field,
          const char *why)
{
	err->field = field;
	err->why = why;
	return rc;
}

enum prov_rc
prov_root(const struct json_doc *d, struct prov_err *err)
{
	if (d->n_toks == 0 || d->toks[0].type != JSON_OBJECT)
		return prov_fail(err, PROV_WRONG_TYPE, "$",
		                 "body not an object");
	return PROV_OK;
}

enum prov_rc
prov_get(const struct json_doc *d, size_t obj, const char *key,
         const char *path, unsigned flags, size_t *out, struct prov_err *err)
{
	size_t v = json_obj_get(d, obj, key);

	*out = 0;
	if (v != 0 && d->toks[v].type == JSON_NULL && (flags & PROV_NULLABLE))
		v = 0;
	if (v == 0)
		return (flags & PROV_REQ)
		           ? prov_fail(err, PROV_MISSING, path, "missing")
		           : PROV_OK;
	*out = v;
	return PROV_OK;
}

enum prov_rc
prov_str_tok(const struct json_doc *d, size_t v, const char *path, char *dst,
             size_t cap, struct prov_err *err)
{
	const char *why = NULL;
	size_t len;

	if (d->toks[v].type != JSON_STRING)
		return prov_fail(err, PROV_WRONG_TYPE, path, "not a string");
	switch (json_str_unescape(dst, cap, d, v, &len, &why)) {
	case CODEC_OK:
		return PROV_OK;
	case CODEC_NEED_MORE:
		dst[0] = '\0';
		return prov_fail(err, PROV_BAD_VALUE, path, "too long");
	default:
		dst[0] = '\0';
		return prov_fail(err, PROV_BAD_VALUE, path, why);
	}
}

enum prov_rc
prov_str(const struct json_doc *d, size_t obj, const char *key,
         const char *path, unsigned flags, char *dst, size_t cap,
         struct prov_err *err)
{
	size_t v;

	dst[0] = '\0';
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK;
	PROV_TRY(prov_str_tok(d, v, path, dst, cap, err));
	if ((flags & PROV_NONEMPTY) && dst[0] == '\0')
		return prov_fail(err, PROV_BAD_VALUE, path, "empty");
	return PROV_OK;
}

static enum prov_rc
typed(const struct json_doc *d, size_t obj, const char *key, const char *path,
      unsigned flags, enum json_type type, const char *what, size_t *out,
      struct prov_err *err)
{
	PROV_TRY(prov_get(d, obj, key, path, flags, out, err));
	if (*out != 0 && d->toks[*out].type != type) {
		*out = 0;
		return prov_fail(err, PROV_WRONG_TYPE, path, what);
	}
	return PROV_OK;
}

enum prov_rc
prov_obj(const struct json_doc *d, size_t obj, const char *key,
         const char *path, unsigned flags, size_t *out, struct prov_err *err)
{
	return typed(d, obj, key, path, flags, JSON_OBJECT, "not an object",
	             out, err);
}

enum prov_rc
prov_arr(const struct json_doc *d, size_t obj, const char *key,
         const char *path, unsigned flags, size_t *out, struct prov_err *err)
{
	return typed(d, obj, key, path, flags, JSON_ARRAY, "not an array", out,
	             err);
}

enum prov_rc
prov_bool(const struct json_doc *d, size_t obj, const char *key,
          const char *path, unsigned flags, bool *out, bool *has,
          struct prov_err *err)
{
	size_t v;

	*out = false;
	*has = false;
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK;
	if (d->toks[v].type != JSON_TRUE && d->toks[v].type != JSON_FALSE)
		return prov_fail(err, PROV_WRONG_TYPE, path, "not a boolean");
	*out = d->toks[v].type == JSON_TRUE;
	*has = true;
	return PROV_OK;
}

/* The number text of token v in the allowed forms: a number's span, or a
 * string's content copied into buf[0..cap). */
static enum prov_rc
num_text(const struct json_doc *d, size_t v, const char *path, unsigned forms,
         char *buf, size_t cap, struct json_span *sp, struct prov_err *err)
{
	if (d->toks[v].type == JSON_NUMBER && (forms & PROV_NUM)) {
		*sp = json_span(d, v);
		return PROV_OK;
	}
	if (d->toks[v].type == JSON_STRING && (forms & PROV_STR)) {
		PROV_TRY(prov_str_tok(d, v, path, buf, cap, err));
		sp->ptr = buf;
		sp->len = strlen(buf);
		return PROV_OK;
	}
	return prov_fail(err, PROV_WRONG_TYPE, path,
	                 forms == PROV_NUM   ? "not a number"
	                 : forms == PROV_STR ? "not a numeric string"
	                                     : "not a number or string");
}

enum prov_rc
prov_int(const struct json_doc *d, size_t obj, const char *key,
         const char *path, unsigned flags, unsigned forms, int64_t *out,
         bool *has, struct prov_err *err)
{
	char buf[32];
	struct json_span sp;
	const char *why = NULL;
	size_t v;

	*out = 0;
	*has = false;
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK;
	PROV_TRY(num_text(d, v, path, forms, buf, sizeof buf, &sp, err));
	if (json_num_to_i64(sp, out, &why) != CODEC_OK) {
		*out = 0;
		return prov_fail(err, PROV_BAD_VALUE, path, why);
	}
	if ((flags & PROV_POSITIVE) && *out <= 0)
		return prov_fail(err, PROV_BAD_VALUE, path, "not positive");
	*has = true;
	return PROV_OK;
}

enum prov_rc
prov_int_text(const struct json_doc *d, size_t obj, const char *key,
              const char *path, unsigned flags, unsigned forms, char *dst,
              size_t cap, struct prov_err *err)
{
	char buf[64];
	struct json_span sp;
	size_t v, i;

	dst[0] = '\0';
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK;
	PROV_TRY(num_text(d, v, path, forms, buf, sizeof buf, &sp, err));
	if (sp.len == 0)
		return prov_fail(err, PROV_BAD_VALUE, path, "empty");
	for (i = 0; i < sp.len; i++)
		if (sp.ptr[i] < '0' || sp.ptr[i] > '9')
			return prov_fail(err, PROV_BAD_VALUE, path,
			                 "not digits");
	if (sp.len >= cap)
		return prov_fail(err, PROV_BAD_VALUE, path, "too long");
	memcpy(dst, sp.ptr, sp.len);
	dst[sp.len] = '\0';
	return PROV_OK;
}

enum prov_rc
prov_amount(const struct json_doc *d, size_t obj, const char *key,
            const char *path, unsigned flags, unsigned forms, unsigned exponent,
            int64_t *out, bool *has, struct prov_err *err)
{
	char buf[48];
	struct json_span sp;
	const char *why = NULL;
	size_t v;

	*out = 0;
	*has = false;
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK;
	PROV_TRY(num_text(d, v, path, forms, buf, sizeof buf, &sp, err));
	if (json_num_to_minor(sp, exponent, out, &why) != CODEC_OK) {
		*out = 0;
		return prov_fail(err, PROV_BAD_VALUE, path, why);
	}
	if ((flags & PROV_POSITIVE) && *out <= 0)
		return prov_fail(err, PROV_BAD_VALUE, path,
		                 "amount not positive");
	*has = true;
	return PROV_OK;
}

enum prov_rc
prov_currency(const struct json_doc *d, size_t obj, const char *key,
              const char *path, unsigned flags, char *dst, size_t cap,
              unsigned *exponent, struct prov_err *err)
{
	size_t v;
	int e;

	*exponent = 0;
	dst[0] = '\0';
	PROV_TRY(prov_get(d, obj, key, path, flags, &v, err));
	if (v == 0)
		return PROV_OK; /* optional and absent */
	PROV_TRY(prov_str_tok(d, v, path, dst, cap, err));
	if ((e = prov_currency_exponent(dst)) < 0)
		return prov_fail(err, PROV_BAD_VALUE, path, "unknown currency");
	*exponent = (unsigned)e;
	return PROV_OK;
}

enum prov_rc
prov_status(const struct json_doc *d, size_t obj, const char *key,
            const char *path, unsigned flags, const struct prov_status_map *map,
            size_t n, char *dst, size_t cap, enum prov_outcome *outcome,
            struct prov_err *err)
{
	size_t i;

	*outcome = PROV_UNKNOWN;
	PROV_TRY(prov_str(d, obj, key, path, flags, dst, cap, err));
	if (dst[0] == '\0' && !(flags & PROV_REQ))
		return PROV_OK;
	for (i = 0; i < n; i++)
		if (strcmp(dst, map[i].word) == 0) {
			*outcome = map[i].outcome;
			return PROV_OK;
		}
	return prov_fail(err, PROV_BAD_VALUE, path, "unknown status");
}

/* ---- builder checks --------------------------------------------------- */

bool
prov_text_ok(const char *s, size_t min, size_t max, const char *what,
             const char **why)
{
	size_t n, i;

	if (s == NULL)
		goto bad;
	n = strlen(s);
	if (n < min || n > max || !json_utf8_valid(s, n))
		goto bad;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			goto bad;
	return true;
bad:
	*why = what;
	return false;
}

bool
prov_chars_ok(const char *s, size_t min, size_t max, const char *extra,
              const char *what, const char **why)
{
	if (!prov_text_ok(s, min, max, what, why))
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') ||
		      (extra != NULL && strchr(extra, *s) != NULL))) {
			*why = what;
			return false;
		}
	return true;
}

bool
prov_digits_ok(const char *s, size_t min, size_t max, const char *what,
               const char **why)
{
	if (!prov_text_ok(s, min, max, what, why))
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9') {
			*why = what;
			return false;
		}
	return true;
}

void
prov_w_kv(struct json_w *w, const char *k, const char *v)
{
	json_w_key(w, k);
	json_w_cstr(w, v);
}

void
prov_w_amount(struct json_w *w, const char *k, int64_t minor, unsigned exponent,
              bool is_str)
{
	char b[48];
	size_t n;

	json_w_key(w, k);
	if (prov_decimal(b, sizeof b, minor, exponent, &n) != CODEC_OK) {
		/* The caller checked; make the writer report misuse. */
		json_w_str(w, "\xff", 1);
		return;
	}
	if (is_str)
		json_w_str(w, b, n);
	else
		json_w_raw(w, b, n);
}
