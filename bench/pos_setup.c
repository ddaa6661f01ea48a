/*
 * pos_setup.c - provisions a POS benchmark fleet in one process
 * (bench/pos.sh, docs/benchmarks.md "POS channel").
 *
 *   pos_setup --store URL --kek FILE --terminals N --csv OUT
 *             [--prefix P] [--fund MINOR]
 *
 * Creates, through the store API exactly as `sokoctl account create`,
 * `agent create` and `terminal add` do (but 1,000 per transaction instead
 * of one process per row): a provider_clearing account P:clearing, N
 * agent_float accounts P:A<i>:float (floor 0), N agents P<i>A and one
 * terminal P<i>T per agent with a fresh key wrapped under the KEK; then
 * funds every float with MINOR from the clearing account through the
 * ledger (float_topup, 1,000 per commit).  Writes the soko-pos
 * provisioning CSV (terminal_id,agent_code,key_hex,float_account; mode
 * 0600: it holds the keys).  Setup only: nothing here is measured.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/rand.h>

#include "keywrap.h"
#include "ledger.h"
#include "store.h"
#include "util.h"

#define CURRENCY  404 /* KES */
#define PER_TXN   1000
#define FUND_STEP 1000

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "pos_setup: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(1);
}

static int64_t
account(struct store *st, const char *code, uint8_t type, bool has_floor)
{
	struct ledger_account a;
	enum store_rc rc;

	memset(&a, 0, sizeof a);
	strlcpy_s(a.code, code, sizeof a.code);
	a.type = type;
	a.currency = CURRENCY;
	a.has_floor = has_floor;
	a.created_ms = util_now_ms();
	if ((rc = st->ops->account_create(st, &a)) != STORE_OK)
		die("account %s: %s: %s", code, store_rc_name(rc), st->errstr);
	return a.id;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"store", required_argument, NULL, 's'},
	    {"kek", required_argument, NULL, 'k'},
	    {"terminals", required_argument, NULL, 'n'},
	    {"csv", required_argument, NULL, 'c'},
	    {"prefix", required_argument, NULL, 'p'},
	    {"fund", required_argument, NULL, 'f'},
	    {NULL, 0, NULL, 0},
	};
	const char *url = NULL, *kek_path = NULL, *csv = NULL, *prefix = "B";
	uint8_t kek[KEYWRAP_KEY_LEN], kt[KEYWRAP_KEY_LEN];
	char err[256], hex[2 * KEYWRAP_KEY_LEN + 1], code[64];
	int64_t fund = 100000000, clearing, *floats;
	struct ledger_req *reqs;
	struct ledger_result *res;
	struct store *st;
	struct ledger *lg;
	size_t n = 0, i, k, m;
	enum store_rc rc;
	FILE *out;
	int c;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 's': url = optarg; break;
		case 'k': kek_path = optarg; break;
		case 'n': n = (size_t)strtoul(optarg, NULL, 10); break;
		case 'c': csv = optarg; break;
		case 'p': prefix = optarg; break;
		case 'f': fund = strtoll(optarg, NULL, 10); break;
		default: return 2;
		}
	}
	if (url == NULL || kek_path == NULL || csv == NULL || n == 0 ||
	    fund <= 0) {
		fprintf(stderr, "usage: pos_setup --store URL --kek FILE "
		                "--terminals N --csv OUT [--prefix P] "
		                "[--fund MINOR]\n");
		return 2;
	}
	if (keywrap_load_kek(kek, kek_path, err, sizeof err) != 0)
		die("%s", err);
	if ((st = store_open(url, err, sizeof err)) == NULL)
		die("store_open: %s", err);
	if ((lg = ledger_new(st, err, sizeof err)) == NULL)
		die("ledger_new: %s", err);
	umask(077);
	if ((out = fopen(csv, "w")) == NULL)
		die("%s: cannot create", csv);
	fprintf(out, "terminal_id,agent_code,key_hex,float_account\n");
	snprintf(code, sizeof code, "%s:clearing", prefix);
	clearing = account(st, code, LEDGER_ACCT_PROVIDER_CLEARING, false);
	floats = xcalloc(n, sizeof *floats);
	for (i = 0; i < n; i++) {
		struct store_agent ag;
		struct store_terminal t;
		char acct[64], tid[STORE_POS_ID_MAX + 1];

		if (i % PER_TXN == 0 && (rc = st->ops->begin(st)) != STORE_OK)
			die("begin: %s", st->errstr);
		snprintf(acct, sizeof acct, "%s:A%06zu:float", prefix, i);
		floats[i] = account(st, acct, LEDGER_ACCT_AGENT_FLOAT, true);
		memset(&ag, 0, sizeof ag);
		snprintf(ag.code, sizeof ag.code, "%sA%06zu", prefix, i);
		ag.float_account_id = floats[i];
		ag.status = STORE_POS_ACTIVE;
		ag.created_ms = util_now_ms();
		if ((rc = st->ops->agent_create(st, &ag)) != STORE_OK)
			die("agent %s: %s", ag.code, st->errstr);
		memset(&t, 0, sizeof t);
		snprintf(tid, sizeof tid, "%sT%06zu", prefix, i);
		if (RAND_bytes(kt, sizeof kt) != 1 ||
		    keywrap_wrap(t.key_wrapped, kek, kt, tid) != 0)
			die("cannot generate or wrap a key");
		strlcpy_s(t.id, tid, sizeof t.id);
		t.agent_id = ag.id;
		t.status = STORE_POS_ACTIVE;
		t.created_ms = util_now_ms();
		if ((rc = st->ops->terminal_create(st, &t)) != STORE_OK)
			die("terminal %s: %s", tid, st->errstr);
		util_hex(hex, kt, sizeof kt);
		fprintf(out, "%s,%s,%s,%s\n", tid, ag.code, hex, acct);
		if ((i % PER_TXN == PER_TXN - 1 || i + 1 == n) &&
		    (rc = st->ops->commit(st)) != STORE_OK)
			die("commit: %s", st->errstr);
	}
	explicit_bzero(hex, sizeof hex);
	explicit_bzero(kt, sizeof kt);
	explicit_bzero(kek, sizeof kek);
	if (fclose(out) != 0)
		die("%s: write failed", csv);
	reqs = xcalloc(FUND_STEP, sizeof *reqs);
	res = xcalloc(FUND_STEP, sizeof *res);
	for (i = 0; i < n; i += m) {
		m = MIN((size_t)FUND_STEP, n - i);
		for (k = 0; k < m; k++) {
			struct ledger_req *r = &reqs[k];

			memset(r, 0, sizeof *r);
			snprintf(r->idem_key, sizeof r->idem_key,
			         "pos_setup:%s:fund:%zu", prefix, i + k);
			r->kind = LEDGER_TXN_FLOAT_TOPUP;
			r->currency = CURRENCY;
			r->n_legs = 2;
			r->legs[0].account_id = clearing;
			r->legs[0].amount_minor = -fund;
			r->legs[1].account_id = floats[i + k];
			r->legs[1].amount_minor = fund;
			r->limit_amount = fund;
			ledger_req_hash(r);
		}
		if (ledger_commit_batch(lg, reqs, m, res, util_now_ms()) != 0)
			die("funding: %s", st->errstr);
		for (k = 0; k < m; k++)
			if (res[k].rc != LEDGER_OK)
				die("funding %zu: %s", i + k,
				    ledger_rc_name(res[k].rc));
	}
	printf("pos_setup terminals=%zu fund_minor=%" PRId64 " csv=%s\n", n,
	       fund, csv);
	free(reqs);
	free(res);
	free(floats);
	ledger_free(lg);
	st->ops->close(st);
	return 0;
}
