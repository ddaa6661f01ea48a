/*
 * sb_util.c - soko-sandbox helpers: logging, clocks, PRNG, hashing,
 * base64, URLs, amounts (sb.h).
 *
 * No state of its own: the log level lives in struct sb.
 */
#include "sb.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *const level_names[] = {"error", "warn", "info", "debug"};

bool
sb_log_on(const struct sb *sb, int level)
{
	return level <= sb->log_level;
}

void
sb_log(const struct sb *sb, int level, const char *fmt, ...)
{
	char line[2048];
	char ts[32];
	struct timespec t;
	struct tm tm;
	va_list ap;
	int n, m;

	if (level > sb->log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &t);
	gmtime_r(&t.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "ts=%s.%03ldZ level=%s sub=sandbox ",
	             ts, t.tv_nsec / 1000000, level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	line[n++] = '\n';
	/* one write per line: lines of concurrent writers never interleave */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

/* Out of memory: say so and abort (STYLE.md §6). */
static void
oom(size_t n)
{
	char msg[96];
	int k = snprintf(
	    msg, sizeof(msg),
	    "level=error sub=sandbox event=out_of_memory bytes=%zu\n", n);

	if (k > 0 && write(STDERR_FILENO, msg, (size_t)k) < 0)
		abort();
	abort();
}

void *
sb_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

void *
sb_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom(n * size);
	return p;
}

char *
sb_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = sb_xmalloc(n);

	memcpy(p, s, n);
	return p;
}

bool
sb_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	if (cap == 0)
		return false;
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return false;
	}
	memcpy(dst, src, n + 1);
	return true;
}

int64_t
sb_now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_REALTIME, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

int64_t
sb_mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void
sb_fmt_time(char *dst, size_t cap, int64_t utc_ms, int offset_s,
            const char *strftime_fmt)
{
	time_t t = (time_t)(utc_ms / 1000) + offset_s;
	struct tm tm;

	gmtime_r(&t, &tm);
	/* the formats are literals at every call site (sb_mpesa.c) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	if (strftime(dst, cap, strftime_fmt, &tm) == 0 && cap > 0)
		dst[0] = '\0';
#pragma GCC diagnostic pop
}

static int
num(const char *s, size_t n)
{
	int v = 0;

	while (n-- > 0)
		v = v * 10 + (*s++ - '0');
	return v;
}

bool
sb_valid_timestamp(const char *s)
{
	static const int mdays[] = {31, 29, 31, 30, 31, 30,
	                            31, 31, 30, 31, 30, 31};
	int y, mo, d;

	if (strlen(s) != 14 || !sb_all_digits(s))
		return false;
	y = num(s, 4);
	mo = num(s + 4, 2);
	d = num(s + 6, 2);
	if (y < 2000 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
		return false;
	if (mo == 2 && d == 29 &&
	    !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return false;
	return num(s + 8, 2) < 24 && num(s + 10, 2) < 60 && num(s + 12, 2) < 60;
}

bool
sb_all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* ------------------------------------------------------------ PRNG */

static uint64_t
splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void
sb_rng_seed(struct sb_rng *r, uint64_t seed)
{
	int i;

	for (i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t
rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t
sb_rng_next(struct sb_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return res;
}

double
sb_rng_unit(struct sb_rng *r)
{
	return (double)(sb_rng_next(r) >> 11) * 0x1.0p-53;
}

void
sb_rng_chars(struct sb_rng *r, char *dst, size_t n, const char *alphabet)
{
	size_t k = strlen(alphabet), i;

	for (i = 0; i < n; i++)
		dst[i] = alphabet[sb_rng_next(r) % k];
	dst[n] = '\0';
}

/* ------------------------------------------------------------ bytes */

uint64_t
sb_hash(const void *p, size_t n, uint64_t h)
{
	const unsigned char *s = p;

	while (n-- > 0) {
		h ^= *s++;
		h *= 0x100000001b3u;
	}
	return h;
}

void
sb_hex(char *dst, const uint8_t *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = hex[src[i] >> 4];
		dst[2 * i + 1] = hex[src[i] & 15];
	}
	dst[2 * n] = '\0';
}

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
sb_b64(char *dst, const uint8_t *src, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)src[i] << 16 |
		             (uint32_t)src[i + 1] << 8 | src[i + 2];
		dst[o++] = b64chars[v >> 18];
		dst[o++] = b64chars[(v >> 12) & 63];
		dst[o++] = b64chars[(v >> 6) & 63];
		dst[o++] = b64chars[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)src[i] << 16;
		dst[o++] = b64chars[v >> 18];
		dst[o++] = b64chars[(v >> 12) & 63];
		dst[o++] = '=';
		dst[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8;
		dst[o++] = b64chars[v >> 18];
		dst[o++] = b64chars[(v >> 12) & 63];
		dst[o++] = b64chars[(v >> 6) & 63];
		dst[o++] = '=';
	}
	dst[o] = '\0';
}

static int
b64val(char c)
{
	const char *p;

	if (c == '\0')
		return -1;
	p = strchr(b64chars, c);
	return p == NULL ? -1 : (int)(p - b64chars);
}

long
sb_unb64(uint8_t *dst, size_t cap, const char *src)
{
	size_t n = strlen(src), i, o = 0;

	if (n % 4 != 0)
		return -1;
	for (i = 0; i < n; i += 4) {
		int a = b64val(src[i]), b = b64val(src[i + 1]);
		int c = src[i + 2] == '=' ? -2 : b64val(src[i + 2]);
		int d = src[i + 3] == '=' ? -2 : b64val(src[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c == -1 || d == -1)
			return -1;
		if ((c == -2 || d == -2) && i + 4 != n)
			return -1; /* padding only at the end */
		if (c == -2 && d != -2)
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 |
		    (uint32_t)(c < 0 ? 0 : c) << 6 | (uint32_t)(d < 0 ? 0 : d);
		if (o + 3 > cap)
			return -1;
		dst[o++] = (uint8_t)(v >> 16);
		if (c >= 0)
			dst[o++] = (uint8_t)(v >> 8);
		if (d >= 0)
			dst[o++] = (uint8_t)v;
	}
	return (long)o;
}

int
sb_ct_eq(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;
	size_t i;

	for (i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}

/* ------------------------------------------------------------ URLs */

int
sb_url_parse(struct sb_url *out, const char *url)
{
	const char *p, *host, *host_end, *path;
	size_t hl;
	long port;

	memset(out, 0, sizeof(*out));
	if (strncmp(url, "https://", 8) == 0) {
		out->is_https = true;
		p = url + 8;
		port = 443;
	} else if (strncmp(url, "http://", 7) == 0) {
		p = url + 7;
		port = 80;
	} else {
		return -1;
	}
	host = p;
	if (*p == '[') { /* IPv6 literal */
		host_end = strchr(p, ']');
		if (host_end == NULL)
			return -1;
		host++;
		p = host_end + 1;
	} else {
		while (*p && *p != ':' && *p != '/' && *p != '?')
			p++;
		host_end = p;
	}
	hl = (size_t)(host_end - host);
	if (hl == 0 || hl >= sizeof(out->host))
		return -1;
	memcpy(out->host, host, hl);
	out->host[hl] = '\0';
	if (*p == ':') {
		char *end;

		errno = 0;
		port = strtol(p + 1, &end, 10);
		if (errno || end == p + 1 || port < 1 || port > 65535)
			return -1;
		p = end;
	}
	out->port = (uint16_t)port;
	path = *p == '\0' ? "/" : p;
	if (*path != '/' && *path != '?')
		return -1;
	if (*path == '?') {
		if (strlen(path) + 2 > sizeof(out->path))
			return -1;
		out->path[0] = '/';
		memcpy(out->path + 1, path, strlen(path) + 1);
		return 0;
	}
	return sb_copy(out->path, sizeof(out->path), path) ? 0 : -1;
}

/* ------------------------------------------------------------ amounts */

#define AMOUNT_MAX_CENTS 100000000000000000 /* 10^17 cents = 10^15 units */

static bool
decimal_cents(const char *s, int64_t *out)
{
	int64_t whole = 0;
	int frac = 0, nfrac = 0;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		whole = whole * 10 + (*s - '0');
		if (whole > AMOUNT_MAX_CENTS / 100)
			return false;
	}
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return false;
		for (; isdigit((unsigned char)*s); s++) {
			if (nfrac >= 2) {
				if (*s != '0')
					return false; /* more precision */
				continue;
			}
			frac = frac * 10 + (*s - '0');
			nfrac++;
		}
	}
	if (*s != '\0')
		return false;
	while (nfrac++ < 2)
		frac *= 10;
	*out = whole * 100 + frac;
	return true;
}

bool
sb_amount_cents(const json_t *v, int64_t *cents)
{
	if (v == NULL)
		return false;
	if (json_is_integer(v)) {
		json_int_t i = json_integer_value(v);

		if (i < 0 || i > AMOUNT_MAX_CENTS / 100)
			return false;
		*cents = (int64_t)i * 100;
		return true;
	}
	if (json_is_real(v)) {
		/* jansson keeps JSON reals as doubles; accept one only when it
		 * is a whole number of hundredths (100.5, not 100.005). */
		double d = json_real_value(v) * 100.0;
		double r;

		if (!(d >= 0.0) || d > 1e15)
			return false;
		r = (double)(int64_t)(d + 0.5);
		if (r - d > 1e-6 || d - r > 1e-6)
			return false;
		*cents = (int64_t)r;
		return true;
	}
	if (json_is_string(v))
		return decimal_cents(json_string_value(v), cents);
	return false;
}

void
sb_amount_fmt(char *dst, size_t cap, int64_t cents)
{
	if (cents % 100 == 0)
		snprintf(dst, cap, "%" PRId64, cents / 100);
	else
		snprintf(dst, cap, "%" PRId64 ".%02" PRId64, cents / 100,
		         cents % 100);
}

const char *
sb_jstr(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool
sb_jtext(const json_t *obj, const char *key, char *dst, size_t cap)
{
	const json_t *v = json_object_get(obj, key);

	if (json_is_string(v))
		return sb_copy(dst, cap, json_string_value(v));
	if (json_is_integer(v)) {
		int n = snprintf(dst, cap, "%" JSON_INTEGER_FORMAT,
		                 json_integer_value(v));
		return n > 0 && (size_t)n < cap;
	}
	return false;
}
