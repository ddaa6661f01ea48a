/*
 * sb_main.c - soko-sandbox: command line, start-up, signals
 * (tests/sandbox/README.md).
 *
 *   soko-sandbox --listen 127.0.0.1:0 --ctl 127.0.0.1:0 --tls-dir DIR
 *       [--callback-delay-ms 200] [--seed N] [--webhook paystack=URL]
 *       [--webhook flutterwave=URL] [credential flags...]
 *
 * After both listeners are bound it prints exactly one line on stdout,
 * "soko-sandbox ready https=H:P ctl=H:Q pid=N", and flushes it.  SIGTERM
 * and SIGINT end it cleanly with status 0.
 */
#include "sb.h"

#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include <openssl/rand.h>

enum {
	O_LISTEN = 256,
	O_CTL,
	O_TLS_DIR,
	O_DELAY,
	O_SEED,
	O_WEBHOOK,
	O_CB_TIMEOUT,
	O_MAX_CHARGES,
	O_MAX_CONNS,
	O_TOKEN_TTL,
	O_VERBOSE,
	O_QUIET,
	O_MPESA_KEY,
	O_MPESA_SECRET,
	O_MPESA_SHORTCODE,
	O_MPESA_PASSKEY,
	O_MPESA_INITIATOR,
	O_MPESA_INITIATOR_PW,
	O_MPESA_EXPIRES_STR,
	O_MPESA_SINGLE_TOKEN,
	O_MOMO_USER,
	O_MOMO_APIKEY,
	O_MOMO_COLL_KEY,
	O_MOMO_DISB_KEY,
	O_MOMO_ENV,
	O_MOMO_CURRENCY,
	O_MOMO_CB_METHOD,
	O_ORANGE_ID,
	O_ORANGE_SECRET,
	O_ORANGE_MERCHANT,
	O_ORANGE_CURRENCY,
	O_FLW_SECRET,
	O_FLW_HASH,
	O_PAYSTACK_SECRET,
	O_HELP,
};

static const struct option opts[] = {
    {"listen", required_argument, NULL, O_LISTEN},
    {"ctl", required_argument, NULL, O_CTL},
    {"tls-dir", required_argument, NULL, O_TLS_DIR},
    {"callback-delay-ms", required_argument, NULL, O_DELAY},
    {"seed", required_argument, NULL, O_SEED},
    {"webhook", required_argument, NULL, O_WEBHOOK},
    {"callback-timeout-ms", required_argument, NULL, O_CB_TIMEOUT},
    {"max-charges", required_argument, NULL, O_MAX_CHARGES},
    {"max-connections", required_argument, NULL, O_MAX_CONNS},
    {"token-ttl-s", required_argument, NULL, O_TOKEN_TTL},
    {"verbose", no_argument, NULL, O_VERBOSE},
    {"quiet", no_argument, NULL, O_QUIET},
    {"mpesa-consumer-key", required_argument, NULL, O_MPESA_KEY},
    {"mpesa-consumer-secret", required_argument, NULL, O_MPESA_SECRET},
    {"mpesa-shortcode", required_argument, NULL, O_MPESA_SHORTCODE},
    {"mpesa-passkey", required_argument, NULL, O_MPESA_PASSKEY},
    {"mpesa-initiator", required_argument, NULL, O_MPESA_INITIATOR},
    {"mpesa-initiator-password", required_argument, NULL, O_MPESA_INITIATOR_PW},
    {"mpesa-expires-in-string", no_argument, NULL, O_MPESA_EXPIRES_STR},
    {"mpesa-single-token", no_argument, NULL, O_MPESA_SINGLE_TOKEN},
    {"momo-api-user", required_argument, NULL, O_MOMO_USER},
    {"momo-api-key", required_argument, NULL, O_MOMO_APIKEY},
    {"momo-collection-key", required_argument, NULL, O_MOMO_COLL_KEY},
    {"momo-disbursement-key", required_argument, NULL, O_MOMO_DISB_KEY},
    {"momo-target-environment", required_argument, NULL, O_MOMO_ENV},
    {"momo-currency", required_argument, NULL, O_MOMO_CURRENCY},
    {"momo-callback-method", required_argument, NULL, O_MOMO_CB_METHOD},
    {"orange-client-id", required_argument, NULL, O_ORANGE_ID},
    {"orange-client-secret", required_argument, NULL, O_ORANGE_SECRET},
    {"orange-merchant-key", required_argument, NULL, O_ORANGE_MERCHANT},
    {"orange-currency", required_argument, NULL, O_ORANGE_CURRENCY},
    {"flw-secret-key", required_argument, NULL, O_FLW_SECRET},
    {"flw-secret-hash", required_argument, NULL, O_FLW_HASH},
    {"paystack-secret-key", required_argument, NULL, O_PAYSTACK_SECRET},
    {"help", no_argument, NULL, O_HELP},
    {NULL, 0, NULL, 0},
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: soko-sandbox --listen HOST:PORT --ctl HOST:PORT "
	           "--tls-dir DIR\n"
	           "       [--callback-delay-ms N] [--seed N] "
	           "[--webhook paystack=URL] [--webhook flutterwave=URL]\n"
	           "       [--callback-timeout-ms N] [--max-charges N] "
	           "[--max-connections N] [--token-ttl-s N]\n"
	           "       [--verbose|--quiet] [credential flags: see "
	           "tests/sandbox/README.md]\n");
}

static bool
parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
	char *end;
	long long v;

	if (*s == '\0')
		return false;
	v = strtoll(s, &end, 10);
	if (*end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sb *sb = arg;

	(void)what;
	sb_log(sb, SB_LOG_INFO, "event=signal sig=%d action=exit", (int)sig);
	event_base_loopbreak(sb->base);
}

static void
defaults(struct sb *sb)
{
	struct sb_creds *c = &sb->cr;

	/* wire-formats.md §1.1 sample credentials, §1.9 shortcode/passkey */
	c->mpesa_key = "CdmNbdt0iBN1oqDfKasm4dabdpKmtaNn";
	c->mpesa_secret = "DLKG7PBun720GZim";
	c->mpesa_shortcode = "174379";
	c->mpesa_passkey =
	    "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
	c->mpesa_initiator = "testapi";
	c->mpesa_initiator_pw = "Safaricom999!*!";
	c->momo_user = "f4d5b7a0-5c1e-4b8e-9d3a-2b6c8e1f0a91";
	c->momo_apikey = "1e89774dabd944b4b112c30aaef5b9c8"; /* §2.2 sample */
	c->momo_coll_key = "a3c9e1f2b4d64e7f8a9b0c1d2e3f4a5b";
	c->momo_disb_key = "b4d0f2a3c5e74f80a9b1c2d3e4f5a6b7";
	c->momo_env = "sandbox";
	c->momo_currency = "EUR";
	c->momo_cb_method = "POST";
	c->orange_id = "soko-orange-client";
	c->orange_secret = "soko-orange-secret";
	c->orange_merchant_key = "e9afd305"; /* §3.1 sample */
	c->orange_currency = "OUV";
	c->flw_secret = "FLWSECK_TEST-sokosandbox0000000000000000000-X";
	c->flw_hash = "soko-flw-secret-hash";
	c->paystack_secret = "sk_test_simulator"; /* §5.4 test vector key */
}

static int
run(int argc, char **argv)
{
	struct sb *sb = sb_xcalloc(1, sizeof(*sb));
	struct event_config *cfg = NULL;
	const char *listen = NULL, *ctl = NULL, *tls_dir = NULL;
	char https_addr[80], ctl_addr[80], err[512];
	int64_t v;
	bool has_seed = false;
	int o, rc = 2, i;

	defaults(sb);
	sb->log_level = SB_LOG_INFO;
	sb->callback_delay_ms = 200;
	sb->callback_timeout_ms = 10000;
	sb->max_charges = SB_MAX_CHARGES_DEF;
	sb->max_conns = SB_MAX_CONNS_DEF;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case O_LISTEN:
			listen = optarg;
			break;
		case O_CTL:
			ctl = optarg;
			break;
		case O_TLS_DIR:
			tls_dir = optarg;
			break;
		case O_DELAY:
			if (!parse_i64(optarg, 0, 3600000,
			               &sb->callback_delay_ms))
				goto bad;
			break;
		case O_CB_TIMEOUT:
			if (!parse_i64(optarg, 1, 600000,
			               &sb->callback_timeout_ms))
				goto bad;
			break;
		case O_SEED:
			if (!parse_i64(optarg, 0, INT64_MAX, &v))
				goto bad;
			sb->seed = (uint64_t)v;
			has_seed = true;
			break;
		case O_MAX_CHARGES:
			if (!parse_i64(optarg, 1, 100000000, &v))
				goto bad;
			sb->max_charges = (size_t)v;
			break;
		case O_MAX_CONNS:
			if (!parse_i64(optarg, 1, 1000000, &v))
				goto bad;
			sb->max_conns = (size_t)v;
			break;
		case O_TOKEN_TTL:
			if (!parse_i64(optarg, 1, 100000000,
			               &sb->cr.token_ttl_s))
				goto bad;
			break;
		case O_WEBHOOK: {
			const char *eq = strchr(optarg, '=');
			struct sb_url u;
			int p = -1;

			if (eq != NULL && strncmp(optarg, "paystack=", 9) == 0)
				p = SB_PAYSTACK;
			else if (eq != NULL &&
			         strncmp(optarg, "flutterwave=", 12) == 0)
				p = SB_FLW;
			if (p < 0 || sb_url_parse(&u, eq + 1) != 0)
				goto bad;
			free(sb->webhook[p]);
			sb->webhook[p] = sb_xstrdup(eq + 1);
			break;
		}
		case O_VERBOSE:
			sb->log_level = SB_LOG_DEBUG;
			break;
		case O_QUIET:
			sb->log_level = SB_LOG_WARN;
			break;
		case O_MPESA_KEY:
			sb->cr.mpesa_key = optarg;
			break;
		case O_MPESA_SECRET:
			sb->cr.mpesa_secret = optarg;
			break;
		case O_MPESA_SHORTCODE:
			if (!sb_all_digits(optarg) || strlen(optarg) > 12)
				goto bad;
			sb->cr.mpesa_shortcode = optarg;
			break;
		case O_MPESA_PASSKEY:
			sb->cr.mpesa_passkey = optarg;
			break;
		case O_MPESA_INITIATOR:
			sb->cr.mpesa_initiator = optarg;
			break;
		case O_MPESA_INITIATOR_PW:
			sb->cr.mpesa_initiator_pw = optarg;
			break;
		case O_MPESA_EXPIRES_STR:
			sb->cr.mpesa_expires_str = true;
			break;
		case O_MPESA_SINGLE_TOKEN:
			sb->cr.mpesa_single_token = true;
			break;
		case O_MOMO_USER:
			sb->cr.momo_user = optarg;
			break;
		case O_MOMO_APIKEY:
			sb->cr.momo_apikey = optarg;
			break;
		case O_MOMO_COLL_KEY:
			sb->cr.momo_coll_key = optarg;
			break;
		case O_MOMO_DISB_KEY:
			sb->cr.momo_disb_key = optarg;
			break;
		case O_MOMO_ENV:
			sb->cr.momo_env = optarg;
			break;
		case O_MOMO_CURRENCY:
			sb->cr.momo_currency = optarg;
			break;
		case O_MOMO_CB_METHOD:
			if (strcmp(optarg, "POST") != 0 &&
			    strcmp(optarg, "PUT") != 0)
				goto bad;
			sb->cr.momo_cb_method = optarg;
			break;
		case O_ORANGE_ID:
			sb->cr.orange_id = optarg;
			break;
		case O_ORANGE_SECRET:
			sb->cr.orange_secret = optarg;
			break;
		case O_ORANGE_MERCHANT:
			sb->cr.orange_merchant_key = optarg;
			break;
		case O_ORANGE_CURRENCY:
			sb->cr.orange_currency = optarg;
			break;
		case O_FLW_SECRET:
			sb->cr.flw_secret = optarg;
			break;
		case O_FLW_HASH:
			sb->cr.flw_hash = optarg;
			break;
		case O_PAYSTACK_SECRET:
			sb->cr.paystack_secret = optarg;
			break;
		case O_HELP:
			usage(stdout);
			rc = 0;
			goto out;
		default:
			goto bad;
		}
	}
	if (optind != argc || listen == NULL || ctl == NULL ||
	    tls_dir == NULL) {
	bad:
		usage(stderr);
		if (o != -1 && o >= O_LISTEN)
			fprintf(stderr, "soko-sandbox: bad value for --%s\n",
			        opts[o - O_LISTEN].name);
		goto out;
	}
	if (!has_seed) {
		if (RAND_bytes((unsigned char *)&sb->seed, sizeof(sb->seed)) !=
		    1)
			sb->seed = (uint64_t)sb_now_ms();
		sb->seed &= INT64_MAX;
	}
	sb_rng_seed(&sb->rng_fault, sb->seed);
	sb_rng_seed(&sb->rng_id, sb->seed ^ 0x5eed5eed5eed5eedu);
	sb_ledger_init(sb);
	signal(SIGPIPE, SIG_IGN);
	if (mkdir(tls_dir, 0700) != 0 && access(tls_dir, W_OK) != 0) {
		fprintf(stderr, "soko-sandbox: --tls-dir %s: not writable\n",
		        tls_dir);
		goto out;
	}
	if (sb_tls_init(sb, tls_dir, err, sizeof(err)) != 0) {
		fprintf(stderr, "soko-sandbox: tls: %s\n", err);
		goto out;
	}
	/* the changelist folds evhttp's read/write interest toggles of one
	 * loop iteration into one epoll_ctl (hot path, README) */
	cfg = event_config_new();
	if (cfg == NULL || event_config_set_flag(
			       cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) != 0)
		goto out;
	sb->base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	if (sb->base == NULL)
		goto out;
	sb->due_ev = evtimer_new(sb->base, sb_due_cb, sb);
	sb->sig_term = evsignal_new(sb->base, SIGTERM, on_signal, sb);
	sb->sig_int = evsignal_new(sb->base, SIGINT, on_signal, sb);
	if (sb->due_ev == NULL || sb->sig_term == NULL || sb->sig_int == NULL ||
	    event_add(sb->sig_term, NULL) != 0 ||
	    event_add(sb->sig_int, NULL) != 0)
		goto out;
	if (sb_http_start(sb, listen, ctl, https_addr, ctl_addr,
	                  sizeof(https_addr)) != 0) {
		fprintf(stderr, "soko-sandbox: cannot listen on %s / %s\n",
		        listen, ctl);
		goto out;
	}
	sb_log(sb, SB_LOG_INFO,
	       "event=listening https=%s ctl=%s seed=%" PRIu64
	       " callback_delay_ms=%" PRId64,
	       https_addr, ctl_addr, sb->seed, sb->callback_delay_ms);
	printf("soko-sandbox ready https=%s ctl=%s pid=%ld\n", https_addr,
	       ctl_addr, (long)getpid());
	fflush(stdout);
	event_base_dispatch(sb->base);
	rc = 0;
out:
	sb_http_stop(sb);
	sb_mpesa_reset(sb);
	sb_ledger_free(sb);
	if (sb->due_ev)
		event_free(sb->due_ev);
	if (sb->sig_term)
		event_free(sb->sig_term);
	if (sb->sig_int)
		event_free(sb->sig_int);
	if (sb->base)
		event_base_free(sb->base);
	sb_tls_fini(sb);
	for (i = 0; i < SB_PROV_N; i++)
		free(sb->webhook[i]);
	free(sb);
	return rc;
}

int
main(int argc, char **argv)
{
	return run(argc, argv);
}
