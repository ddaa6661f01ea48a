/*
 * test_money.c - unit tests for protocols/money.c: parsing for every
 * currency exponent, limits and one past them, every truncation of a valid
 * amount, formatting, parse(format(x)) == x, checked addition and the ISO
 * 4217 table.  Includes money.c to walk its static currency table.
 */
#include "../../../protocols/money.c"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static const struct currency *kes, *ugx, *tnd;

/* Parses s from a heap copy of exactly strlen(s) bytes, no NUL after it,
 * so that ASan catches a read past len. */
static enum money_rc
parse(int64_t *out, const struct currency *cur, const char *s)
{
	size_t n = strlen(s);
	char *buf = malloc(n ? n : 1);
	enum money_rc rc;

	memcpy(buf, s, n);
	rc = money_parse(out, cur, buf, n);
	free(buf);
	return rc;
}

/* Expects s to parse as rc; on MONEY_OK also expects the value want, and
 * on any other rc expects *out untouched. */
static void
expect(const struct currency *cur, const char *s, enum money_rc rc,
       int64_t want)
{
	int64_t v = -42;
	enum money_rc got = parse(&v, cur, s);

	if (got != rc)
		fprintf(stderr, "  %s \"%s\": got %s, want %s\n", cur->alpha,
		        s, money_rc_name(got), money_rc_name(rc));
	CHECK_EQ_INT(got, rc);
	CHECK_EQ_INT(v, rc == MONEY_OK ? want : -42);
}

static void
test_parse_valid(void)
{
	expect(kes, "1", MONEY_OK, 100);
	expect(kes, "1500", MONEY_OK, 150000);
	expect(kes, "1500.5", MONEY_OK, 150050);
	expect(kes, "1500.25", MONEY_OK, 150025);
	expect(kes, "0.01", MONEY_OK, 1);
	expect(kes, "0.1", MONEY_OK, 10);
	expect(kes, "00012.30", MONEY_OK, 1230);
	expect(ugx, "1", MONEY_OK, 1);
	expect(ugx, "1500", MONEY_OK, 1500);
	expect(ugx, "007", MONEY_OK, 7);
	expect(tnd, "1", MONEY_OK, 1000);
	expect(tnd, "1.5", MONEY_OK, 1500);
	expect(tnd, "1.25", MONEY_OK, 1250);
	expect(tnd, "1.125", MONEY_OK, 1125);
	expect(tnd, "0.001", MONEY_OK, 1);
}

static void
test_parse_zero_negative_precision(void)
{
	expect(kes, "0", MONEY_ZERO, 0);
	expect(kes, "0.0", MONEY_ZERO, 0);
	expect(kes, "0.00", MONEY_ZERO, 0);
	expect(kes, "000", MONEY_ZERO, 0);
	expect(ugx, "0", MONEY_ZERO, 0);
	expect(tnd, "0.000", MONEY_ZERO, 0);

	expect(kes, "-1", MONEY_NEGATIVE, 0);
	expect(kes, "-1.50", MONEY_NEGATIVE, 0);
	expect(kes, "-0.01", MONEY_NEGATIVE, 0);
	expect(ugx, "-1500", MONEY_NEGATIVE, 0);
	expect(tnd, "-1.125", MONEY_NEGATIVE, 0);

	expect(kes, "1.001", MONEY_PRECISION, 0);
	expect(kes, "0.000", MONEY_PRECISION, 0);
	expect(ugx, "1.0", MONEY_PRECISION, 0);
	expect(ugx, "1.5", MONEY_PRECISION, 0);
	expect(ugx, "0.00", MONEY_PRECISION, 0);
	expect(tnd, "1.0001", MONEY_PRECISION, 0);
}

static void
test_parse_garbage(void)
{
	static const char *const bad[] = {
		"",     ".",     "1.",    ".5",   "1e3",  " 1",     "1 ",
		"1,000", "+1",   "0x10",  "--1",  "1.2.3", "-",     "-.",
		"-.5",  "-1.",   "-1.2.3", "-x",  "- 1",  "1-",     "abc",
		"1..2", "..",    "1.-5",  "\t1",  "1\n",  "-1e3",   "\xd9\xa3",
		/* garbage whose first error on the way is something else */
		"1.2345.6", "1.5e3", "1.0000x", "99999999999999999999x",
		"-1.0000x",
	};
	const struct currency *curs[] = {kes, ugx, tnd};
	size_t i, c;

	for (c = 0; c < 3; c++)
		for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
			expect(curs[c], bad[i], MONEY_BAD_FORMAT, 0);
}

static void
test_parse_nul_inside(void)
{
	int64_t v = 0;

	/* len counts, not the NUL: "1\0" is two bytes, one of them garbage */
	CHECK_EQ_INT(money_parse(&v, kes, "1\0" "2", 3), MONEY_BAD_FORMAT);
	CHECK_EQ_INT(money_parse(&v, kes, "12", 1), MONEY_OK);
	CHECK_EQ_INT(v, 100);
	CHECK_EQ_INT(money_parse(&v, NULL, "1", 1), MONEY_BAD_CURRENCY);
}

static void
test_parse_max_boundary(void)
{
	/* MONEY_MAX_MINOR = 10^15 minor units, and one minor unit past it */
	expect(kes, "10000000000000", MONEY_OK, MONEY_MAX_MINOR);
	expect(kes, "10000000000000.00", MONEY_OK, MONEY_MAX_MINOR);
	expect(kes, "9999999999999.99", MONEY_OK, MONEY_MAX_MINOR - 1);
	expect(kes, "10000000000000.01", MONEY_TOO_LARGE, 0);
	expect(kes, "10000000000001", MONEY_TOO_LARGE, 0);
	expect(ugx, "1000000000000000", MONEY_OK, MONEY_MAX_MINOR);
	expect(ugx, "999999999999999", MONEY_OK, MONEY_MAX_MINOR - 1);
	expect(ugx, "1000000000000001", MONEY_TOO_LARGE, 0);
	expect(tnd, "1000000000000", MONEY_OK, MONEY_MAX_MINOR);
	expect(tnd, "1000000000000.000", MONEY_OK, MONEY_MAX_MINOR);
	expect(tnd, "1000000000000.001", MONEY_TOO_LARGE, 0);
	/* leading zeros do not count against the value */
	expect(ugx, "0001000000000000000", MONEY_OK, MONEY_MAX_MINOR);
}

static void
test_parse_long_and_overflow(void)
{
	/* 19 digits: the most accepted, but all of these exceed the max */
	expect(ugx, "1000000000000000000", MONEY_TOO_LARGE, 0);
	expect(ugx, "9223372036854775807", MONEY_TOO_LARGE, 0); /* INT64_MAX */
	expect(ugx, "9223372036854775808", MONEY_TOO_LARGE, 0);
	expect(ugx, "9999999999999999999", MONEY_TOO_LARGE, 0);
	expect(kes, "92233720368547758.07", MONEY_TOO_LARGE, 0);
	/* 19 digits that are small: accepted */
	expect(ugx, "0000000000000000001", MONEY_OK, 1);
	expect(kes, "00000000000000001.00", MONEY_OK, 100);
	/* 20 digits, even small ones: refused */
	expect(ugx, "00000000000000000001", MONEY_TOO_LARGE, 0);
	expect(ugx, "18446744073709551616", MONEY_TOO_LARGE, 0); /* 2^64 */
	expect(ugx, "99999999999999999999", MONEY_TOO_LARGE, 0);
	expect(kes, "184467440737095516.16", MONEY_TOO_LARGE, 0);
	/* wraps to a small number if multiplied unchecked */
	expect(ugx, "18446744073709551617", MONEY_TOO_LARGE, 0);
	/* scaling by the exponent must not overflow either */
	expect(tnd, "9223372036854775", MONEY_TOO_LARGE, 0);
	expect(tnd, "9999999999999999", MONEY_TOO_LARGE, 0);
	expect(kes, "999999999999999999", MONEY_TOO_LARGE, 0);
}

/* Every prefix of a valid amount: the result must be exactly what the
 * grammar says for that prefix. */
static void
test_parse_truncations(void)
{
	static const struct {
		const char *cur;
		const char *s;
	} full[] = {
		{"KES", "1234567.89"}, {"KES", "0.05"},  {"UGX", "150000"},
		{"TND", "12.345"},     {"TND", "0.007"},
		{"KES", "10000000000000.00"},
	};
	size_t i, n;

	for (i = 0; i < sizeof full / sizeof full[0]; i++) {
		const struct currency *cur =
			money_currency_by_alpha(full[i].cur);
		size_t len = strlen(full[i].s);

		CHECK(cur != NULL);
		if (cur == NULL)
			continue;
		for (n = 0; n <= len; n++) {
			char *buf = malloc(n ? n : 1);
			int64_t v = -1, want = 0;
			enum money_rc rc, exp_rc;
			const char *dot;
			size_t k, n_frac = 0;
			bool all_zero = true;

			memcpy(buf, full[i].s, n);
			rc = money_parse(&v, cur, buf, n);
			/* expected result, computed the slow way */
			dot = memchr(full[i].s, '.', n);
			if (dot != NULL)
				n_frac = n - (size_t)(dot - full[i].s) - 1;
			for (k = 0; k < n; k++)
				if (buf[k] != '.') {
					want = want * 10 + (buf[k] - '0');
					all_zero &= buf[k] == '0';
				}
			for (k = n_frac; k < cur->exponent; k++)
				want *= 10;
			if (n == 0 || (dot != NULL && n_frac == 0))
				exp_rc = MONEY_BAD_FORMAT;
			else if (all_zero)
				exp_rc = MONEY_ZERO;
			else if (want > MONEY_MAX_MINOR)
				exp_rc = MONEY_TOO_LARGE;
			else
				exp_rc = MONEY_OK;
			if (rc != exp_rc)
				fprintf(stderr, "  prefix \"%.*s\": %s\n",
				        (int)n, full[i].s, money_rc_name(rc));
			CHECK_EQ_INT(rc, exp_rc);
			if (exp_rc == MONEY_OK)
				CHECK_EQ_INT(v, want);
			free(buf);
		}
	}
}

/* Formats into a buffer of exactly cap bytes. */
static void
expect_format(const struct currency *cur, int64_t minor, const char *want)
{
	char buf[64];
	size_t len = strlen(want), n;
	char *exact;

	memset(buf, 'x', sizeof buf);
	n = money_format(buf, sizeof buf, cur, minor);
	CHECK_EQ_INT(n, len);
	CHECK_EQ_STR(buf, want);
	/* exactly len + 1 bytes is enough; len bytes is not */
	exact = malloc(len + 1);
	CHECK_EQ_INT(money_format(exact, len + 1, cur, minor), len);
	CHECK(memcmp(exact, want, len + 1) == 0);
	free(exact);
	exact = malloc(len);
	CHECK_EQ_INT(money_format(exact, len, cur, minor), 0);
	free(exact);
}

static void
test_format(void)
{
	char buf[8];

	expect_format(kes, 150025, "1500.25");
	expect_format(kes, 150000, "1500.00");
	expect_format(kes, 5, "0.05");
	expect_format(kes, 50, "0.50");
	expect_format(kes, 0, "0.00");
	expect_format(kes, -5, "-0.05");
	expect_format(kes, -150025, "-1500.25");
	expect_format(kes, MONEY_MAX_MINOR, "10000000000000.00");
	expect_format(kes, INT64_MAX, "92233720368547758.07");
	expect_format(kes, INT64_MIN, "-92233720368547758.08");
	expect_format(ugx, 0, "0");
	expect_format(ugx, 1500, "1500");
	expect_format(ugx, -7, "-7");
	expect_format(ugx, INT64_MIN, "-9223372036854775808");
	expect_format(tnd, 1, "0.001");
	expect_format(tnd, 1125, "1.125");
	expect_format(tnd, -1000, "-1.000");
	expect_format(tnd, INT64_MIN, "-9223372036854775.808");
	expect_format(NULL, 42, "42"); /* no currency: exponent 0 */
	CHECK_EQ_INT(money_format(buf, 0, kes, 1), 0);
	CHECK_EQ_INT(money_format(NULL, 0, kes, 1), 0);
	CHECK_EQ_INT(money_format(buf, 1, ugx, 0), 0);
	CHECK_EQ_INT(money_format(buf, 2, ugx, 0), 1);
	CHECK_EQ_STR(buf, "0");
}

static void
test_round_trip(void)
{
	const struct currency *curs[] = {kes, ugx, tnd};
	static const int64_t fixed[] = {
		1, 9, 10, 11, 99, 100, 101, 999, 1000, 1001, 123456789,
		MONEY_MAX_MINOR - 1, MONEY_MAX_MINOR,
	};
	uint64_t x = 0x9e3779b97f4a7c15u;
	size_t c, i;
	int bad = 0;

	for (c = 0; c < 3; c++) {
		for (i = 0; i < 20000 + sizeof fixed / sizeof fixed[0]; i++) {
			char buf[40];
			int64_t v, back = 0;
			size_t n;

			if (i < sizeof fixed / sizeof fixed[0]) {
				v = fixed[i];
			} else {
				/* xorshift, then a random magnitude */
				x ^= x << 13;
				x ^= x >> 7;
				x ^= x << 17;
				v = (int64_t)(x % MONEY_MAX_MINOR) + 1;
				v >>= (x >> 58) % 48;
				if (v == 0)
					v = 1;
			}
			n = money_format(buf, sizeof buf, curs[c], v);
			if (n == 0 ||
			    money_parse(&back, curs[c], buf, n) != MONEY_OK ||
			    back != v) {
				if (bad++ < 5)
					fprintf(stderr, "  %s %" PRId64
					        " -> \"%s\" -> %" PRId64 "\n",
					        curs[c]->alpha, v, buf, back);
			}
		}
	}
	CHECK_EQ_INT(bad, 0);
}

static void
test_add(void)
{
	int64_t acc;

	acc = 100;
	CHECK_EQ_INT(money_add(&acc, 50), MONEY_OK);
	CHECK_EQ_INT(acc, 150);
	CHECK_EQ_INT(money_add(&acc, -200), MONEY_OK);
	CHECK_EQ_INT(acc, -50);

	/* exactly to the bounds: fine */
	acc = MONEY_MAX_MINOR - 1;
	CHECK_EQ_INT(money_add(&acc, 1), MONEY_OK);
	CHECK_EQ_INT(acc, MONEY_MAX_MINOR);
	acc = -MONEY_MAX_MINOR + 1;
	CHECK_EQ_INT(money_add(&acc, -1), MONEY_OK);
	CHECK_EQ_INT(acc, -MONEY_MAX_MINOR);
	acc = MONEY_MAX_MINOR;
	CHECK_EQ_INT(money_add(&acc, -2 * MONEY_MAX_MINOR), MONEY_OK);
	CHECK_EQ_INT(acc, -MONEY_MAX_MINOR);

	/* one past: refused, *acc unchanged */
	acc = MONEY_MAX_MINOR;
	CHECK_EQ_INT(money_add(&acc, 1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, MONEY_MAX_MINOR);
	acc = -MONEY_MAX_MINOR;
	CHECK_EQ_INT(money_add(&acc, -1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, -MONEY_MAX_MINOR);
	acc = 0;
	CHECK_EQ_INT(money_add(&acc, MONEY_MAX_MINOR + 1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, 0);
	CHECK_EQ_INT(money_add(&acc, -MONEY_MAX_MINOR - 1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, 0);

	/* int64 overflow at both ends */
	acc = 1;
	CHECK_EQ_INT(money_add(&acc, INT64_MAX), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, 1);
	acc = -1;
	CHECK_EQ_INT(money_add(&acc, INT64_MIN), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, -1);
	acc = INT64_MAX;
	CHECK_EQ_INT(money_add(&acc, 1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, INT64_MAX);
	acc = INT64_MIN;
	CHECK_EQ_INT(money_add(&acc, -1), MONEY_OVERFLOW);
	CHECK_EQ_INT(acc, INT64_MIN);
}

static void
test_currency_lookup(void)
{
	const struct currency *c;
	size_t i, j;

	c = money_currency_by_alpha("KES");
	CHECK(c != NULL && c->numeric == 404 && c->exponent == 2);
	c = money_currency_by_alpha("UGX");
	CHECK(c != NULL && c->numeric == 800 && c->exponent == 0);
	c = money_currency_by_alpha("TND");
	CHECK(c != NULL && c->numeric == 788 && c->exponent == 3);
	CHECK(money_currency_by_numeric(404) == kes);
	CHECK(money_currency_by_numeric(800) == ugx);
	CHECK(money_currency_by_numeric(788) == tnd);
	CHECK(money_currency_by_alpha("XXX") == NULL);
	CHECK(money_currency_by_alpha("kes") == NULL);
	CHECK(money_currency_by_alpha("KE") == NULL);
	CHECK(money_currency_by_alpha("KESS") == NULL);
	CHECK(money_currency_by_alpha("") == NULL);
	CHECK(money_currency_by_alpha(NULL) == NULL);
	CHECK(money_currency_by_numeric(0) == NULL);
	CHECK(money_currency_by_numeric(999) == NULL);
	CHECK(money_currency_by_numeric(65535) == NULL);

	/* the table: codes unique, both lookups find each entry */
	for (i = 0; i < N_CURRENCIES; i++) {
		const struct currency *e = &currencies[i];

		CHECK_EQ_INT(strlen(e->alpha), 3);
		CHECK(e->numeric >= 1 && e->numeric <= 999);
		CHECK(e->exponent <= 3);
		CHECK(money_currency_by_alpha(e->alpha) == e);
		CHECK(money_currency_by_numeric(e->numeric) == e);
		for (j = 0; j < i; j++) {
			CHECK(strcmp(currencies[j].alpha, e->alpha) != 0);
			CHECK(currencies[j].numeric != e->numeric);
		}
	}
}

static void
test_rc_names(void)
{
	int i, j;

	for (i = MONEY_OK; i <= MONEY_BAD_CURRENCY; i++) {
		CHECK(strcmp(money_rc_name((enum money_rc)i), "unknown") != 0);
		for (j = MONEY_OK; j < i; j++)
			CHECK(strcmp(money_rc_name((enum money_rc)i),
			             money_rc_name((enum money_rc)j)) != 0);
	}
	CHECK_EQ_STR(money_rc_name(MONEY_OK), "ok");
}

int
main(void)
{
	kes = money_currency_by_alpha("KES");
	ugx = money_currency_by_alpha("UGX");
	tnd = money_currency_by_alpha("TND");
	if (kes == NULL || ugx == NULL || tnd == NULL) {
		fprintf(stderr, "currency table lacks KES, UGX or TND\n");
		return 1;
	}
	RUN(test_parse_valid);
	RUN(test_parse_zero_negative_precision);
	RUN(test_parse_garbage);
	RUN(test_parse_nul_inside);
	RUN(test_parse_max_boundary);
	RUN(test_parse_long_and_overflow);
	RUN(test_parse_truncations);
	RUN(test_format);
	RUN(test_round_trip);
	RUN(test_add);
	RUN(test_currency_lookup);
	RUN(test_rc_names);
	return check_report("money");
}
