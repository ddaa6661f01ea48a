/*
 * money.h - exact money: int64 minor units + ISO 4217 currency.
 *
 * Pure C17: no I/O, no allocation, no globals but a const table.  Never a
 * float: amounts travel as decimal strings ("1500.25") or integer minor
 * units, and every sum is checked for overflow (docs/architecture.md §Money).
 */
#ifndef SOKO_MONEY_H
#define SOKO_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest amount any single transaction or balance may hold, in minor
 * units: 10^15 (ten trillion KES).  Far below INT64_MAX so that a batch of
 * sums can be checked once at the end as well as step by step. */
#define MONEY_MAX_MINOR 1000000000000000LL

struct money {
	int64_t minor;     /* count of minor units (cents, ngwee...) */
	uint16_t currency; /* ISO 4217 numeric code */
};

struct currency {
	const char *alpha; /* "KES" */
	uint16_t numeric;  /* 404 */
	uint8_t exponent;  /* 2: 1 KES = 100 minor units */
};

enum money_rc {
	MONEY_OK,
	MONEY_ZERO,         /* amount is zero where a positive one is needed */
	MONEY_NEGATIVE,     /* amount below zero */
	MONEY_TOO_LARGE,    /* above MONEY_MAX_MINOR */
	MONEY_BAD_FORMAT,   /* not a decimal number */
	MONEY_PRECISION,    /* more fraction digits than the currency has */
	MONEY_OVERFLOW,     /* a sum left the int64 / MONEY_MAX_MINOR range */
	MONEY_BAD_CURRENCY, /* unknown ISO 4217 code */
};

/* Currency by alphabetic code ("KES") or numeric code; NULL if unknown. */
const struct currency *money_currency_by_alpha(const char *alpha);
const struct currency *money_currency_by_numeric(uint16_t numeric);

/*
 * Parses a positive decimal amount "1500", "1500.5", "1500.25" in currency
 * cur into minor units.  Accepts at most cur->exponent fraction digits, no
 * sign, no exponent, no spaces, no leading '.', at most 19 digits.
 * Returns MONEY_OK, MONEY_ZERO, MONEY_NEGATIVE (leading '-'),
 * MONEY_TOO_LARGE, MONEY_BAD_FORMAT or MONEY_PRECISION; *out is set only on
 * MONEY_OK.
 */
enum money_rc money_parse(int64_t *out, const struct currency *cur,
                          const char *s, size_t len);

/*
 * Formats minor units of cur as a decimal string ("-1500.25") into dst of
 * cap bytes, NUL-terminated.  Returns the length written, or 0 if cap is
 * too small.
 */
size_t money_format(char *dst, size_t cap, const struct currency *cur,
                    int64_t minor);

/* *acc += delta, refusing to leave [-MONEY_MAX_MINOR, MONEY_MAX_MINOR].
 * Returns MONEY_OK or MONEY_OVERFLOW (and leaves *acc unchanged). */
enum money_rc money_add(int64_t *acc, int64_t delta);

/* Stable lower-case name of rc, for logs and API error codes. */
const char *money_rc_name(enum money_rc rc);

#endif
