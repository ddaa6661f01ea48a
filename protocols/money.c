/*
 * money.c - exact money arithmetic and ISO 4217 table (see money.h).
 *
 * Pure: no I/O, no allocation, no floating point.
 */
#include "money.h"

#include <string.h>

/* ISO 4217 currencies soko's markets use, with their minor-unit exponent
 * from the ISO table (UGX, RWF, XOF, XAF have none; TND, LYD have three). */
static const struct currency currencies[] = {
	{"AOA", 973, 2}, {"BIF", 108, 0}, {"BWP", 72, 2},  {"CDF", 976, 2},
	{"CVE", 132, 2}, {"DJF", 262, 0}, {"DZD", 12, 2},  {"EGP", 818, 2},
	{"ERN", 232, 2}, {"ETB", 230, 2}, {"EUR", 978, 2}, {"GBP", 826, 2},
	{"GHS", 936, 2}, {"GMD", 270, 2}, {"GNF", 324, 0}, {"KES", 404, 2},
	{"KMF", 174, 0}, {"LRD", 430, 2}, {"LSL", 426, 2}, {"LYD", 434, 3},
	{"MAD", 504, 2}, {"MGA", 969, 2}, {"MUR", 480, 2}, {"MWK", 454, 2},
	{"MZN", 943, 2}, {"NAD", 516, 2}, {"NGN", 566, 2}, {"RWF", 646, 0},
	{"SCR", 690, 2}, {"SDG", 938, 2}, {"SLE", 925, 2}, {"SOS", 706, 2},
	{"SSP", 728, 2}, {"STN", 930, 2}, {"SZL", 748, 2}, {"TND", 788, 3},
	{"TZS", 834, 2}, {"UGX", 800, 0}, {"USD", 840, 2}, {"XAF", 950, 0},
	{"XOF", 952, 0}, {"ZAR", 710, 2}, {"ZMW", 967, 2}, {"ZWG", 924, 2},
};

#define N_CURRENCIES (sizeof currencies / sizeof currencies[0])

const struct currency *
money_currency_by_alpha(const char *alpha)
{
	size_t i;

	if (alpha == NULL)
		return NULL;
	for (i = 0; i < N_CURRENCIES; i++)
		if (strcmp(currencies[i].alpha, alpha) == 0)
			return &currencies[i];
	return NULL;
}

const struct currency *
money_currency_by_numeric(uint16_t numeric)
{
	size_t i;

	for (i = 0; i < N_CURRENCIES; i++)
		if (currencies[i].numeric == numeric)
			return &currencies[i];
	return NULL;
}

enum money_rc
money_parse(int64_t *out, const struct currency *cur, const char *s,
            size_t len)
{
	int64_t v = 0;
	size_t i = 0, n_int = 0, n_frac = 0, e;
	size_t start = len > 0 && s[0] == '-' ? 1 : 0;
	bool seen_dot = false;

	if (cur == NULL)
		return MONEY_BAD_CURRENCY;
	/* Syntax first, [-]DIGITS[.DIGITS], so that garbage is always
	 * MONEY_BAD_FORMAT ("1.2.3", "-.", "-1."), never a precision, size
	 * or sign error found on the way; and only a well-formed negative
	 * number is "negative". */
	for (i = start; i < len; i++) {
		if (s[i] == '.') {
			if (seen_dot || i == start)
				return MONEY_BAD_FORMAT;
			seen_dot = true;
		} else if (s[i] < '0' || s[i] > '9') {
			return MONEY_BAD_FORMAT;
		}
	}
	if (len == start || s[len - 1] == '.')
		return MONEY_BAD_FORMAT;
	if (start == 1)
		return MONEY_NEGATIVE;
	seen_dot = false;
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '.') {
			if (seen_dot || n_int == 0)
				return MONEY_BAD_FORMAT;
			seen_dot = true;
			continue;
		}
		if (c < '0' || c > '9')
			return MONEY_BAD_FORMAT;
		if (seen_dot) {
			if (++n_frac > cur->exponent)
				return MONEY_PRECISION;
		} else {
			n_int++;
		}
		if (n_int + n_frac > 19)
			return MONEY_TOO_LARGE;
		if (v > (INT64_MAX - 9) / 10)
			return MONEY_TOO_LARGE;
		v = v * 10 + (c - '0');
	}
	if (seen_dot && n_frac == 0)
		return MONEY_BAD_FORMAT; /* "15." */
	for (e = n_frac; e < cur->exponent; e++) {
		if (v > MONEY_MAX_MINOR)
			return MONEY_TOO_LARGE;
		v *= 10;
	}
	if (v > MONEY_MAX_MINOR)
		return MONEY_TOO_LARGE;
	if (v == 0)
		return MONEY_ZERO;
	*out = v;
	return MONEY_OK;
}

size_t
money_format(char *dst, size_t cap, const struct currency *cur,
             int64_t minor)
{
	char tmp[32];
	size_t n = 0, i, out = 0;
	uint64_t u;
	bool neg = minor < 0;
	uint8_t exp = cur != NULL ? cur->exponent : 0;

	/* Negate in unsigned arithmetic: -INT64_MIN does not fit int64. */
	u = neg ? (uint64_t)0 - (uint64_t)minor : (uint64_t)minor;
	do {
		tmp[n++] = (char)('0' + (u % 10));
		u /= 10;
	} while (u != 0 || n <= exp);
	/* tmp holds digits in reverse; at least exp+1 of them. */
	if (cap < n + (exp > 0 ? 1u : 0u) + (neg ? 1u : 0u) + 1u)
		return 0;
	if (neg)
		dst[out++] = '-';
	for (i = n; i > 0; i--) {
		if (exp > 0 && i == exp)
			dst[out++] = '.';
		dst[out++] = tmp[i - 1];
	}
	dst[out] = '\0';
	return out;
}

enum money_rc
money_add(int64_t *acc, int64_t delta)
{
	int64_t r;

	if (__builtin_add_overflow(*acc, delta, &r))
		return MONEY_OVERFLOW;
	if (r > MONEY_MAX_MINOR || r < -MONEY_MAX_MINOR)
		return MONEY_OVERFLOW;
	*acc = r;
	return MONEY_OK;
}

const char *
money_rc_name(enum money_rc rc)
{
	switch (rc) {
	case MONEY_OK:
		return "ok";
	case MONEY_ZERO:
		return "amount_zero";
	case MONEY_NEGATIVE:
		return "amount_negative";
	case MONEY_TOO_LARGE:
		return "amount_too_large";
	case MONEY_BAD_FORMAT:
		return "amount_bad_format";
	case MONEY_PRECISION:
		return "amount_precision";
	case MONEY_OVERFLOW:
		return "amount_overflow";
	case MONEY_BAD_CURRENCY:
		return "currency_unknown";
	}
	return "unknown";
}
