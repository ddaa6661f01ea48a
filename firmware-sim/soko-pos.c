/*
 * soko-pos.c - the POS terminal firmware simulator (issue #3): one
 * terminal scripted or at a console, or a fleet of thousands in one
 * process, all through libsokoterm (terminal/sokoterm.h) as firmware
 * would use it.  See firmware-sim/README.md.
 *
 *   soko-pos script      --server H:P (--terminal ID --key HEX |
 *                        --provision F --terminal ID) --queue FILE
 *                        [--tls-ca FILE] < script
 *   soko-pos interactive  the same options; a console menu
 *   soko-pos fleet       --server H:P --provision F --queue-dir DIR
 *                        [--terminals N] (--duration S | --count N)
 *                        (--rate R [--uniform] | --closed-loop W)
 *                        [--mix NAME=W,...] [--amount A]
 *                        [--provider P --msisdn LIST]
 *                        [--biller B:I --bill-account LIST]
 *                        [--currency KES] [--http H:P --admin-key-file F
 *                        [--fund-from ACCOUNT --fund A]]
 *                        [--drop-every S] [--drain S] [--seed N]
 *
 * Exit status: 0 ok; 1 a failed wait (script) or a failed check (fleet);
 * 2 usage or set-up error.
 */
#include "sim.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <sqlite3.h>

static void
usage(void)
{
	fprintf(stderr,
	        "usage: soko-pos script|interactive --server HOST:PORT "
	        "(--terminal ID --key HEX | --provision FILE --terminal ID) "
	        "--queue FILE [--timeout S] [--tls-ca FILE]\n"
	        "                [--offline-floor MINOR [--offline-total "
	        "MINOR]] [--keep-batches N]\n"
	        "       soko-pos fleet --server HOST:PORT --provision FILE "
	        "--queue-dir DIR [--terminals N]\n"
	        "                (--duration S | --count N) (--rate R "
	        "[--uniform] | --closed-loop W)\n"
	        "                [--mix NAME=W,...] [--amount 1.00] "
	        "[--currency KES]\n"
	        "                [--provider NAME --msisdn LIST] "
	        "[--biller BILLER:ITEM --bill-account LIST]\n"
	        "                [--http HOST:PORT --admin-key-file FILE "
	        "[--fund-from ACCOUNT --fund AMOUNT]]\n"
	        "                [--drop-every S] [--drain S] [--seed N] "
	        "[--max-reconnect-ms MS]\n"
	        "                [--threads N] [--warmup S] [--status] "
	        "[--offline N] [--idle] [--queue-vfs NAME] [--eod]\n");
}

enum {
	O_SERVER = 1,
	O_TERMINAL,
	O_KEY,
	O_PROVISION,
	O_QUEUE,
	O_QUEUE_DIR,
	O_TIMEOUT,
	O_TERMINALS,
	O_DURATION,
	O_COUNT,
	O_RATE,
	O_UNIFORM,
	O_CLOSED,
	O_MIX,
	O_AMOUNT,
	O_CURRENCY,
	O_HTTP,
	O_ADMIN_KEY_FILE,
	O_FUND_FROM,
	O_FUND,
	O_DROP_EVERY,
	O_DRAIN,
	O_SEED,
	O_MAX_RECONNECT,
	O_THREADS,
	O_WARMUP,
	O_STATUS,
	O_OFFLINE,
	O_IDLE,
	O_QUEUE_VFS,
	O_TLS_CA,
	O_OFFLINE_FLOOR,
	O_OFFLINE_TOTAL,
	O_PROVIDER,
	O_MSISDN,
	O_BILLER,
	O_BILL_ACCOUNT,
	O_KEEP_BATCHES,
	O_EOD,
};

static const struct option longopts[] = {
    {"server", required_argument, NULL, O_SERVER},
    {"terminal", required_argument, NULL, O_TERMINAL},
    {"key", required_argument, NULL, O_KEY},
    {"provision", required_argument, NULL, O_PROVISION},
    {"queue", required_argument, NULL, O_QUEUE},
    {"queue-dir", required_argument, NULL, O_QUEUE_DIR},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"terminals", required_argument, NULL, O_TERMINALS},
    {"duration", required_argument, NULL, O_DURATION},
    {"count", required_argument, NULL, O_COUNT},
    {"rate", required_argument, NULL, O_RATE},
    {"uniform", no_argument, NULL, O_UNIFORM},
    {"closed-loop", required_argument, NULL, O_CLOSED},
    {"mix", required_argument, NULL, O_MIX},
    {"amount", required_argument, NULL, O_AMOUNT},
    {"currency", required_argument, NULL, O_CURRENCY},
    {"http", required_argument, NULL, O_HTTP},
    {"admin-key-file", required_argument, NULL, O_ADMIN_KEY_FILE},
    {"fund-from", required_argument, NULL, O_FUND_FROM},
    {"fund", required_argument, NULL, O_FUND},
    {"drop-every", required_argument, NULL, O_DROP_EVERY},
    {"drain", required_argument, NULL, O_DRAIN},
    {"seed", required_argument, NULL, O_SEED},
    {"max-reconnect-ms", required_argument, NULL, O_MAX_RECONNECT},
    {"threads", required_argument, NULL, O_THREADS},
    {"warmup", required_argument, NULL, O_WARMUP},
    {"status", no_argument, NULL, O_STATUS},
    {"offline", required_argument, NULL, O_OFFLINE},
    {"idle", no_argument, NULL, O_IDLE},
    {"queue-vfs", required_argument, NULL, O_QUEUE_VFS},
    {"tls-ca", required_argument, NULL, O_TLS_CA},
    {"offline-floor", required_argument, NULL, O_OFFLINE_FLOOR},
    {"offline-total", required_argument, NULL, O_OFFLINE_TOTAL},
    {"provider", required_argument, NULL, O_PROVIDER},
    {"msisdn", required_argument, NULL, O_MSISDN},
    {"biller", required_argument, NULL, O_BILLER},
    {"bill-account", required_argument, NULL, O_BILL_ACCOUNT},
    {"keep-batches", required_argument, NULL, O_KEEP_BATCHES},
    {"eod", no_argument, NULL, O_EOD},
    {NULL, 0, NULL, 0},
};

/* A number > 0 (or >= 0 when is_zero_ok); -1 if not. */
static int
num_arg(double *out, const char *s, bool is_zero_ok)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || *out < 0 ||
	    (*out == 0 && !is_zero_ok))
		return -1;
	return 0;
}

/* --mix NAME=W[,NAME=W...]: weights of the fleet's operations
 * (sim_fleet_op_name); a repeated name takes the last weight. */
static int
mix_arg(struct sim_fleet_opts *o, const char *s)
{
	char buf[512], *save = NULL, *tok;
	unsigned op, total = 0;

	if (strlen(s) >= sizeof buf)
		goto bad;
	memcpy(buf, s, strlen(s) + 1);
	memset(o->mix, 0, sizeof o->mix);
	for (tok = strtok_r(buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		double w;

		if (eq == NULL)
			goto bad;
		*eq = '\0';
		for (op = 0; op < SIM_MIX_OPS; op++)
			if (sim_fleet_op_name(op) != NULL &&
			    strcmp(sim_fleet_op_name(op), tok) == 0)
				break;
		if (op == SIM_MIX_OPS || num_arg(&w, eq + 1, true) != 0 ||
		    w > 1e6)
			goto bad;
		o->mix[op] = (unsigned)w;
	}
	for (op = 0; op < SIM_MIX_OPS; op++)
		total += o->mix[op];
	if (total == 0)
		goto bad;
	o->mix_total = total;
	return 0;
bad:
	fprintf(stderr,
	        "soko-pos: --mix %s: NAME=WEIGHT,... with NAME one of "
	        "float_transfer collect cash_in cash_out bill_pay "
	        "bill_validate status receipt reversal, weights 0-1000000, "
	        "not all 0\n",
	        s);
	return -1;
}

/* --msisdn, --bill-account: a comma-separated list, copied into *buf
 * (the words point into it; the caller frees *buf and *out). */
static int
list_arg(char ***out, size_t *n, char **buf, const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok, **v;
	size_t k = 1;
	const char *p;

	for (p = s; *p != '\0'; p++)
		k += *p == ',';
	if (copy == NULL || (v = calloc(k, sizeof *v)) == NULL) {
		free(copy);
		return -1;
	}
	*n = 0;
	for (tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save))
		v[(*n)++] = tok;
	if (*n == 0) {
		free(v);
		free(copy);
		return -1;
	}
	free(*out); /* the option given twice: the last one counts */
	free(*buf);
	*out = v;
	*buf = copy;
	return 0;
}

/* Finds --terminal's key in the provisioning file. */
static int
key_from_prov(struct sim_term_opts *t, const char *path)
{
	struct sim_prov *p = NULL;
	size_t n = 0, i;
	char err[512];
	int rc = -1;

	if (sim_prov_load(&p, &n, path, err, sizeof err) != 0) {
		fprintf(stderr, "soko-pos: %s\n", err);
		return -1;
	}
	for (i = 0; i < n; i++)
		if (strcmp(p[i].terminal_id, t->terminal_id) == 0) {
			memcpy(t->key, p[i].key, sizeof t->key);
			rc = 0;
		}
	if (rc != 0)
		fprintf(stderr, "soko-pos: %s: no terminal %s\n", path,
		        t->terminal_id);
	explicit_bzero(p, n * sizeof *p);
	free(p);
	return rc;
}

int
main(int argc, char **argv)
{
	struct sim_term_opts t;
	struct sim_fleet_opts f;
	const char *mode, *key_hex = NULL, *prov = NULL, *key_file = NULL;
	const char *amount = "1.00";
	char *msisdn_buf = NULL, *account_buf = NULL;
	bool has_key = false;
	double d;
	int c, rc;

	if (argc < 2) {
		usage();
		return 2;
	}
	mode = argv[1];
	memset(&t, 0, sizeof t);
	memset(&f, 0, sizeof f);
	t.timeout_ms = 30000;
	f.cur = sim_prov_currency("KES");
	f.mix[SOKOTERM_OP_FLOAT_TRANSFER] = f.mix_total = 100;
	f.drain_s = 30;
	f.fund = "10000.00";
	if (getrandom(&f.seed, sizeof f.seed, 0) != sizeof f.seed)
		f.seed = 1;
	(void)signal(SIGPIPE, SIG_IGN);
	optind = 2;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_SERVER:
			t.server = f.server = optarg;
			break;
		case O_TERMINAL:
			t.terminal_id = optarg;
			break;
		case O_KEY:
			key_hex = optarg;
			break;
		case O_PROVISION:
			prov = f.provision_path = optarg;
			break;
		case O_QUEUE:
			t.queue_path = optarg;
			break;
		case O_QUEUE_DIR:
			f.queue_dir = optarg;
			break;
		case O_TIMEOUT:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			t.timeout_ms = (uint32_t)(d * 1000);
			break;
		case O_TERMINALS:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			f.n_terminals = (size_t)d;
			break;
		case O_DURATION:
			if (num_arg(&f.duration_s, optarg, false) != 0)
				goto bad;
			break;
		case O_COUNT:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			f.count = (uint64_t)d;
			break;
		case O_RATE:
			if (num_arg(&f.rate, optarg, false) != 0)
				goto bad;
			break;
		case O_UNIFORM:
			f.is_uniform = true;
			break;
		case O_CLOSED:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			f.window = (unsigned)d;
			break;
		case O_MIX:
			if (mix_arg(&f, optarg) != 0)
				return 2;
			break;
		case O_AMOUNT:
			amount = optarg;
			break;
		case O_CURRENCY:
			if ((f.cur = sim_prov_currency(optarg)) == NULL)
				goto bad;
			break;
		case O_HTTP:
			f.http = optarg;
			break;
		case O_ADMIN_KEY_FILE:
			key_file = optarg;
			break;
		case O_FUND_FROM:
			f.fund_from = optarg;
			break;
		case O_FUND:
			f.fund = optarg;
			break;
		case O_DROP_EVERY:
			if (num_arg(&f.drop_every_s, optarg, false) != 0)
				goto bad;
			break;
		case O_DRAIN:
			if (num_arg(&f.drain_s, optarg, false) != 0)
				goto bad;
			break;
		case O_SEED:
			f.seed = strtoull(optarg, NULL, 0);
			break;
		case O_THREADS:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			f.threads = (unsigned)d;
			break;
		case O_WARMUP:
			if (num_arg(&f.warmup_s, optarg, true) != 0)
				goto bad;
			break;
		case O_STATUS:
			f.is_status = true;
			break;
		case O_OFFLINE:
			if (num_arg(&d, optarg, false) != 0)
				goto bad;
			f.offline = (uint32_t)d;
			break;
		case O_IDLE:
			f.is_idle = true;
			break;
		case O_QUEUE_VFS: {
			/* the host picks SQLite's VFS for every queue it
			 * opens (e.g. unix-excl: one process per queue file,
			 * no POSIX lock calls); durability is the same */
			sqlite3_vfs *v = sqlite3_vfs_find(optarg);

			if (v == NULL || sqlite3_vfs_register(v, 1) != SQLITE_OK)
				goto bad;
			break;
		}
		case O_TLS_CA:
			/* TLS to sokod's POS listener, the server verified
			 * against this CA (script and interactive modes) */
			t.tls_ca = optarg;
			break;
		case O_OFFLINE_FLOOR:
		case O_OFFLINE_TOTAL:
			/* script and interactive modes: FLOAT_TRANSFER and
			 * BILL_PAY accepted offline up to these limits
			 * (minor units; the total defaults to the floor) */
			if (num_arg(&d, optarg, false) != 0 || d < 1 ||
			    d > 1e15)
				goto bad;
			if (c == O_OFFLINE_FLOOR)
				t.offline_floor = (uint64_t)d;
			else
				t.offline_total = (uint64_t)d;
			break;
		case O_PROVIDER:
			f.provider = optarg;
			break;
		case O_MSISDN:
			if (list_arg(&f.msisdns, &f.n_msisdns, &msisdn_buf,
			             optarg) != 0)
				goto bad;
			break;
		case O_BILLER:
			f.biller = optarg;
			break;
		case O_BILL_ACCOUNT:
			if (list_arg(&f.accounts, &f.n_accounts, &account_buf,
			             optarg) != 0)
				goto bad;
			break;
		case O_EOD:
			f.is_eod = true;
			break;
		case O_KEEP_BATCHES:
			/* script and interactive modes: entries of older
			 * closed batches are deleted after each `eod` */
			if (num_arg(&d, optarg, false) != 0 || d > 1e6)
				goto bad;
			t.keep_batches = (uint32_t)d;
			break;
		case O_MAX_RECONNECT:
			if (num_arg(&d, optarg, false) != 0 || d < 1)
				goto bad;
			f.max_reconnect_ms = (uint32_t)d;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc || t.server == NULL) {
		usage();
		return 2;
	}
	if (strcmp(mode, "script") == 0 || strcmp(mode, "interactive") == 0) {
		if (t.terminal_id == NULL || t.queue_path == NULL) {
			usage();
			return 2;
		}
		if (key_hex != NULL) {
			if (sim_prov_unhex(t.key, sizeof t.key, key_hex) != 0) {
				fprintf(stderr,
				        "soko-pos: --key: %d bytes in "
				        "hex\n",
				        SOKOTERM_KEY_LEN);
				return 2;
			}
			has_key = true;
		} else if (prov != NULL) {
			if (key_from_prov(&t, prov) != 0)
				return 2;
			has_key = true;
		}
		if (!has_key) {
			usage();
			return 2;
		}
		rc = strcmp(mode, "script") == 0 ? sim_term_script(&t)
		                                 : sim_term_interactive(&t);
		explicit_bzero(t.key, sizeof t.key);
		return rc;
	}
	if (strcmp(mode, "fleet") != 0) {
		usage();
		return 2;
	}
	f.tls_ca = t.tls_ca; /* sim_fleet.c runs TLS on its own loop */
	if (f.provision_path == NULL || f.queue_dir == NULL ||
	    (f.offline == 0 && (f.duration_s == 0) == (f.count == 0)) ||
	    (f.offline == 0 && !f.is_idle &&
	     (f.rate == 0) == (f.window == 0)) ||
	    (f.is_status && f.window == 0)) {
		fprintf(stderr,
		        "soko-pos fleet: needs --provision, "
		        "--queue-dir, one of --duration/--count and one "
		        "of --rate/--closed-loop\n");
		usage();
		return 2;
	}
	if ((f.mix[SOKOTERM_OP_COLLECT] > 0 || f.mix[SOKOTERM_OP_CASH_IN] > 0 ||
	     f.mix[SOKOTERM_OP_CASH_OUT] > 0) &&
	    f.n_msisdns == 0) {
		fprintf(stderr, "soko-pos: --mix with collect, cash_in or "
		                "cash_out needs --msisdn\n");
		return 2;
	}
	if ((f.mix[SOKOTERM_OP_BILL_PAY] > 0 ||
	     f.mix[SOKOTERM_OP_BILL_VALIDATE] > 0) &&
	    (f.biller == NULL || f.n_accounts == 0)) {
		fprintf(stderr, "soko-pos: --mix with bill_pay or "
		                "bill_validate needs --biller and "
		                "--bill-account\n");
		return 2;
	}
	if (f.offline > 0 &&
	    f.mix_total != f.mix[SOKOTERM_OP_FLOAT_TRANSFER] +
	                       f.mix[SOKOTERM_OP_BILL_PAY]) {
		fprintf(stderr, "soko-pos: --offline stores float_transfer "
		                "and bill_pay (what a terminal accepts "
		                "offline): no other op in --mix\n");
		return 2;
	}
	if (f.mix[SOKOTERM_OP_REVERSAL] > 0 &&
	    f.mix[SOKOTERM_OP_FLOAT_TRANSFER] == 0) {
		fprintf(stderr, "soko-pos: --mix reversal voids the "
		                "terminal's own float transfers: give "
		                "float_transfer a weight\n");
		return 2;
	}
	if (f.mix[SOKOTERM_OP_STATUS] + f.mix[SOKOTERM_OP_RECEIPT] > 0 &&
	    f.mix_total == f.mix[SOKOTERM_OP_STATUS] +
	                       f.mix[SOKOTERM_OP_RECEIPT] +
	                       f.mix[SOKOTERM_OP_BILL_VALIDATE]) {
		fprintf(stderr, "soko-pos: --mix needs a money operation "
		                "(STATUS asks about the terminal's own; "
		                "--status is the read-only load)\n");
		return 2;
	}
	if (f.provider == NULL)
		f.provider = "mpesa";
	if (sim_prov_amount(&f.amount, f.cur, amount) != 0 || f.amount == 0) {
		fprintf(stderr, "soko-pos: bad --amount %s\n", amount);
		return 2;
	}
	if (f.http != NULL) {
		if (key_file == NULL ||
		    sim_prov_read_secret(f.api_key, sizeof f.api_key,
		                         key_file) != 0) {
			fprintf(stderr, "soko-pos: --http needs a readable "
			                "--admin-key-file\n");
			return 2;
		}
	}
	if (f.fund_from != NULL && f.http == NULL) {
		fprintf(stderr, "soko-pos: --fund-from needs --http\n");
		return 2;
	}
	rc = sim_fleet_run(&f);
	explicit_bzero(f.api_key, sizeof f.api_key);
	free(f.msisdns);
	free(msisdn_buf);
	free(f.accounts);
	free(account_buf);
	return rc;
bad:
	fprintf(stderr, "soko-pos: bad value for --%s: %s\n",
	        longopts[c - 1].name, optarg);
	return 2;
}
