/*
 * fuzz_movement.c - libFuzzer target for the admin movement body parser
 * (server/svc_admin.c, JSON through jansson).
 *
 * Asserts: a parsed movement has a known type and currency, an amount in
 * 1..MONEY_MAX_MINOR, NUL-terminated codes; a refusal carries a 4xx status
 * and a code; building and rendering an accepted movement never fails.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "svc_admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct svc_movement m;
	struct svc_error e = {0, NULL, NULL};
	struct ledger_account a, b;
	struct ledger_result res;
	struct ledger_req r;
	char *out;

	if (svc_admin_parse_movement(&m, (const char *)data, size, &e) != 0) {
		if (e.status < 400 || e.status > 499 || e.code == NULL)
			abort();
		return 0;
	}
	if ((m.kind != LEDGER_TXN_FLOAT_TOPUP &&
	     m.kind != LEDGER_TXN_ADJUSTMENT) ||
	    m.cur == NULL || m.amount_minor < 1 ||
	    m.amount_minor > MONEY_MAX_MINOR ||
	    memchr(m.debit, 0, sizeof m.debit) == NULL ||
	    memchr(m.credit, 0, sizeof m.credit) == NULL)
		abort();
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.id = 1;
	b.id = 2;
	a.currency = b.currency = m.cur->numeric;
	b.type = LEDGER_ACCT_AGENT_FLOAT;
	if (svc_admin_build(&r, &m, "fuzz", &a, &b, &e) != 0)
		abort();
	if (r.legs[0].amount_minor + r.legs[1].amount_minor != 0)
		abort();
	memset(&res, 0, sizeof res);
	res.rc = LEDGER_OK;
	res.txn_id = 7;
	out = svc_admin_render(&m, &res);
	free(out);
	return 0;
}
