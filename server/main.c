/*
 * main.c - sokod: the soko payment server.
 *
 *   sokod [-c FILE] [-o KEY=VALUE]... [-t] [--help-config] [--version]
 *
 * Reads the configuration (defaults, then FILE, then -o overrides), opens
 * and migrates the store, and hands over to the event loop (net_http.c).
 * -t checks the configuration and exits (0 if valid).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keywrap.h"
#include "ledger.h"
#include "log.h"
#include "net_http.h"
#include "store.h"
#include "util.h"

#define SOKO_VERSION "0.1.0"

static void
usage(FILE *f)
{
	fprintf(f, "usage: sokod [-c FILE] [-o KEY=VALUE]... [-t] "
	           "[--help-config] [--version]\n"
	           "  -c FILE         configuration file "
	           "(docs/configuration.md)\n"
	           "  -o KEY=VALUE    override one key (after the file)\n"
	           "  -t              check the configuration and exit\n"
	           "  --help-config   list every key with default and range\n");
}

int
main(int argc, char **argv)
{
	struct config *cfg = config_new();
	const char *file = NULL;
	char err[512], *api_key = NULL;
	struct store *st = NULL;
	struct ledger *lg = NULL;
	int i, check_only = 0, rc = 1, bad = 0, n_over = 0;
	const char *over[64];
	uint8_t kek[KEYWRAP_KEY_LEN];
	bool has_kek = false;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
			if (n_over == (int)ARRAY_LEN(over)) {
				fprintf(stderr, "sokod: too many -o\n");
				goto out;
			}
			over[n_over++] = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0)
			check_only = 1;
		else if (strcmp(argv[i], "--help-config") == 0) {
			config_help(stdout);
			rc = 0;
			goto out;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("sokod %s\n", SOKO_VERSION);
			rc = 0;
			goto out;
		} else {
			usage(stderr);
			rc = 2;
			goto out;
		}
	}
	if (file != NULL && config_load(cfg, file, err, sizeof err) != 0) {
		fprintf(stderr, "sokod: %s\n", err);
		goto out;
	}
	for (i = 0; i < n_over; i++) {
		char key[128], why[256];
		const char *eq = strchr(over[i], '=');

		if (eq == NULL || (size_t)(eq - over[i]) >= sizeof key) {
			fprintf(stderr, "sokod: -o %s: expected KEY=VALUE\n",
			        over[i]);
			goto out;
		}
		memcpy(key, over[i], (size_t)(eq - over[i]));
		key[eq - over[i]] = '\0';
		if (config_set(cfg, key, eq + 1, why, sizeof why) != 0) {
			fprintf(stderr, "sokod: -o %s: %s\n", over[i], why);
			goto out;
		}
	}
	if (config_check(cfg, err, sizeof err) != 0) {
		fprintf(stderr, "sokod: %s%s%s\n", file ? file : "",
		        file ? ": " : "", err);
		goto out;
	}
	api_key = config_secret(cfg->admin_api_key_file, "SOKO_ADMIN_API_KEY",
	                        &bad, err, sizeof err);
	if (bad) {
		fprintf(stderr, "sokod: admin_api_key_file: %s\n", err);
		goto out;
	}
	if (api_key != NULL && strlen(api_key) < 16) {
		fprintf(stderr, "sokod: the admin API key must be at least 16 "
		                "bytes\n");
		goto out;
	}
	if (cfg->pos_listen[0] != '\0') {
		if (keywrap_load_kek(kek, cfg->pos_kek_file, err, sizeof err) !=
		    0) {
			fprintf(stderr, "sokod: pos_kek_file: %s\n", err);
			goto out;
		}
		has_kek = true;
	}
	if (check_only) {
		printf("sokod: configuration %s is valid\n",
		       file ? file : "(defaults)");
		rc = 0;
		goto out;
	}
	log_set_levels(cfg->log_level, err, sizeof err);
	log_set_redact_msisdn(cfg->log_redact_msisdn);
	signal(SIGPIPE, SIG_IGN);

	if ((st = store_open(cfg->store, err, sizeof err)) == NULL) {
		log_msg(LOG_STORE, LOG_LEVEL_ERROR,
		        "event=store_open_failed reason=\"%s\"", err);
		goto out;
	}
	if ((lg = ledger_new(st, err, sizeof err)) == NULL) {
		log_msg(LOG_LEDGER, LOG_LEVEL_ERROR,
		        "event=ledger_failed reason=\"%s\"", err);
		goto out;
	}
	if (api_key == NULL)
		log_msg(LOG_CORE, LOG_LEVEL_WARN,
		        "event=no_admin_api_key effect=\"admin API answers "
		        "401\"");
	log_msg(LOG_CORE, LOG_LEVEL_NOTICE, "event=starting version=%s store=%s",
	        SOKO_VERSION, st->ops->name);
	rc = net_http_run(cfg, st, lg, api_key, has_kek ? kek : NULL) == 0 ? 0
	                                                                  : 1;
	log_msg(LOG_CORE, LOG_LEVEL_NOTICE, "event=stopped rc=%d", rc);
out:
	explicit_bzero(kek, sizeof kek);
	if (api_key != NULL) {
		explicit_bzero(api_key, strlen(api_key));
		free(api_key);
	}
	ledger_free(lg);
	store_close(st);
	config_free(cfg);
	return rc;
}
