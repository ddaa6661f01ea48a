/*
 * fuzz_money.c - libFuzzer target for protocols/money.c.
 *
 * Input: byte 0 picks a currency, the rest is an amount string.  Asserts
 * the properties, not just "no crash": a parsed amount is in
 * 1..MONEY_MAX_MINOR and survives format -> parse unchanged; money_add
 * never leaves the range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codes[] = {"KES", "UGX", "TND", "NGN", "XOF",
                                    "USD", "LYD", "RWF"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct currency *cur;
	char buf[64];
	int64_t v = 0, w = 0, acc;
	size_t n;

	if (size < 1)
		return 0;
	cur = money_currency_by_alpha(codes[data[0] % 8]);
	if (cur == NULL)
		abort();
	if (money_parse(&v, cur, (const char *)data + 1, size - 1) !=
	    MONEY_OK)
		return 0;
	if (v < 1 || v > MONEY_MAX_MINOR)
		abort();
	n = money_format(buf, sizeof buf, cur, v);
	if (n == 0 || money_parse(&w, cur, buf, n) != MONEY_OK || w != v)
		abort();
	acc = MONEY_MAX_MINOR - v + 1;
	if (money_add(&acc, v) != MONEY_OVERFLOW ||
	    acc != MONEY_MAX_MINOR - v + 1)
		abort();
	acc = -v;
	if (money_add(&acc, v) != MONEY_OK || acc != 0)
		abort();
	return 0;
}
