/*
 * sokoctl.c - soko's admin command line (docs/operations.md §sokoctl).
 *
 *   sokoctl [-c FILE | -s STORE] [-o KEY=VALUE]... COMMAND ...
 *     migrate                              apply pending migrations
 *     account create CODE TYPE CUR [--floor AMOUNT | --no-floor]
 *     account show CODE
 *     balances                             every account and balance
 *     limit set KIND SUBJECT CUR [--per-txn A] [--daily A]
 *                                [--velocity N/SECONDS]
 *     limit list
 *     verify                               check every ledger invariant
 *     purge-idempotency [--days N]         drop keys older than N (>=30)
 *     agent create CODE FLOAT_ACCOUNT_CODE POS agent and its float
 *     agent block CODE | unblock CODE      refuse / allow its terminals'
 *                                          logins and transfers to it
 *     terminal add ID AGENT_CODE           new K_t, printed once in hex
 *     terminal rekey ID                    a new K_t, printed once
 *     terminal block ID | unblock ID       refuse / allow its logins
 *     terminal list                        never prints keys
 *     rpc-key create NAME agent|merchant|terminal SCOPE
 *                                          an /rpc partner key, printed
 *                                          once; only its SHA-256 kept
 *     rpc-key revoke NAME | rpc-key list
 *     payments unknown [--after ID] [--limit N]   reconciliation list
 *     payment show REF                     a provider payment, resolution
 *     payment requery REF                  one more status query (sokod)
 *     payment resolve REF succeeded|failed --actor WHO --evidence TEXT
 *                     [--provider-ref REF] [--key KEY]
 *                                          settle an unknown payment by
 *                                          hand (docs/payments.md
 *                                          §Reconciliation)
 *
 * -o sets a configuration key as sokod's -o does (pos_kek_file for
 * terminal add; store).
 * The store comes from -s, else the `store` key of -c FILE, else
 * $SOKO_STORE, else sqlite:soko.db.  Exit status: 0 ok, 1 failure or
 * violations found, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "config.h"
#include "keywrap.h"
#include "ledger.h"
#include "money.h"
#include "payment.h"
#include "store.h"
#include "svc_pos.h"
#include "svc_recon.h"
#include "util.h"

static void
usage(void)
{
	fprintf(stderr,
	        "usage: sokoctl [-c FILE | -s STORE] [-o KEY=VALUE]... "
	        "COMMAND ...\n"
	        "  migrate\n"
	        "  account create CODE TYPE CURRENCY [--floor AMOUNT | "
	        "--no-floor]\n"
	        "  account show CODE\n"
	        "  balances\n"
	        "  limit set KIND SUBJECT CURRENCY [--per-txn AMOUNT] "
	        "[--daily AMOUNT] [--velocity N/SECONDS]\n"
	        "  limit list\n"
	        "  verify\n"
	        "  purge-idempotency [--days N]\n"
	        "  agent create CODE FLOAT_ACCOUNT_CODE\n"
	        "  agent block CODE | agent unblock CODE\n"
	        "  merchant create CODE PAYABLE_ACCOUNT_CODE\n"
	        "  terminal add ID AGENT_CODE [--merchant CODE]   (needs pos_kek_file)\n"
	        "  terminal rekey ID   (needs pos_kek_file)\n"
	        "  terminal block ID | terminal unblock ID | terminal list\n"
	        "  rpc-key create NAME agent|merchant|terminal SCOPE\n"
	        "  rpc-key revoke NAME | rpc-key list\n"
	        "  payments unknown [--after ID] [--limit N]\n"
	        "  payment show REF | payment requery REF\n"
	        "  payment resolve REF succeeded|failed --actor WHO "
	        "--evidence TEXT [--provider-ref REF] [--key KEY]\n"
	        "TYPE: provider_clearing merchant_payable agent_float "
	        "biller_payable\n"
	        "      fees_revenue commission_revenue suspense "
	        "customer_wallet\n"
	        "KIND: msisdn agent terminal merchant;  SUBJECT: an id or * (default)\n");
}

static int
amount_arg(int64_t *out, const struct currency *cur, const char *s,
           bool allow_negative)
{
	enum money_rc rc;
	bool neg = allow_negative && s[0] == '-';

	rc = money_parse(out, cur, neg ? s + 1 : s, strlen(neg ? s + 1 : s));
	if (rc == MONEY_ZERO) {
		*out = 0;
		return 0;
	}
	if (rc != MONEY_OK) {
		fprintf(stderr, "sokoctl: amount \"%s\": %s\n", s,
		        money_rc_name(rc));
		return -1;
	}
	if (neg)
		*out = -*out;
	return 0;
}

static void
print_account(const struct ledger_account *a)
{
	const struct currency *c = money_currency_by_numeric(a->currency);
	char bal[40], fl[40];

	money_format(bal, sizeof bal, c, a->balance_minor);
	money_format(fl, sizeof fl, c, a->floor_minor);
	printf("%-6lld %-32s %-18s %s %20s  floor=%s%s\n", (long long)a->id,
	       a->code, ledger_account_type_name(a->type), c ? c->alpha : "?",
	       bal, a->has_floor ? fl : "none", a->is_closed ? " closed" : "");
}

static int
list_cb(void *arg, const struct ledger_account *a)
{
	(void)arg;
	print_account(a);
	return 0;
}

static void
violation_cb(void *arg, const char *what, const char *detail)
{
	(void)arg;
	printf("VIOLATION %s %s\n", what, detail);
}

static int
cmd_account_create(struct store *st, int argc, char **argv)
{
	struct ledger_account a;
	const struct currency *cur;
	int type, i;
	enum store_rc rc;

	if (argc < 3) {
		usage();
		return 2;
	}
	memset(&a, 0, sizeof a);
	if (strlen(argv[0]) > LEDGER_CODE_MAX || argv[0][0] == '\0') {
		fprintf(stderr, "sokoctl: code must be 1..%d bytes\n",
		        LEDGER_CODE_MAX);
		return 1;
	}
	strlcpy_s(a.code, argv[0], sizeof a.code);
	if ((type = ledger_account_type_parse(argv[1])) < 0) {
		fprintf(stderr, "sokoctl: unknown account type \"%s\"\n",
		        argv[1]);
		return 1;
	}
	if ((cur = money_currency_by_alpha(argv[2])) == NULL) {
		fprintf(stderr, "sokoctl: unknown currency \"%s\"\n", argv[2]);
		return 1;
	}
	a.type = (uint8_t)type;
	a.currency = cur->numeric;
	/* floats and wallets cannot go below zero unless told otherwise */
	a.has_floor = type == LEDGER_ACCT_AGENT_FLOAT ||
	              type == LEDGER_ACCT_CUSTOMER_WALLET;
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--no-floor") == 0) {
			a.has_floor = false;
		} else if (strcmp(argv[i], "--floor") == 0 && i + 1 < argc) {
			if (amount_arg(&a.floor_minor, cur, argv[++i], true))
				return 1;
			a.has_floor = true;
		} else {
			usage();
			return 2;
		}
	}
	a.created_ms = util_now_ms();
	rc = st->ops->account_create(st, &a);
	if (rc == STORE_CONFLICT) {
		fprintf(stderr, "sokoctl: account %s already exists\n", a.code);
		return 1;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	print_account(&a);
	return 0;
}

static int
cmd_limit_set(struct store *st, int argc, char **argv)
{
	struct ledger_limit_rule r;
	const struct currency *cur;
	int kind, i;

	if (argc < 3) {
		usage();
		return 2;
	}
	memset(&r, 0, sizeof r);
	if ((kind = ledger_subject_kind_parse(argv[0])) < 0) {
		fprintf(stderr, "sokoctl: unknown limit kind \"%s\"\n", argv[0]);
		return 1;
	}
	if (strlen(argv[1]) == 0 || strlen(argv[1]) > LEDGER_SUBJECT_MAX) {
		fprintf(stderr, "sokoctl: subject must be 1..%d bytes\n",
		        LEDGER_SUBJECT_MAX);
		return 1;
	}
	if ((cur = money_currency_by_alpha(argv[2])) == NULL) {
		fprintf(stderr, "sokoctl: unknown currency \"%s\"\n", argv[2]);
		return 1;
	}
	r.subject_kind = (uint8_t)kind;
	strlcpy_s(r.subject, argv[1], sizeof r.subject);
	r.currency = cur->numeric;
	for (i = 3; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--per-txn") == 0) {
			if (amount_arg(&r.per_txn_max, cur, argv[i + 1], false))
				return 1;
		} else if (strcmp(argv[i], "--daily") == 0) {
			if (amount_arg(&r.daily_max, cur, argv[i + 1], false))
				return 1;
		} else if (strcmp(argv[i], "--velocity") == 0) {
			int n, s;

			if (sscanf(argv[i + 1], "%d/%d", &n, &s) != 2 || n < 1 ||
			    s < 1 || s > 86400 * 31) {
				fprintf(stderr, "sokoctl: --velocity wants "
				                "N/SECONDS\n");
				return 1;
			}
			r.velocity_max = n;
			r.velocity_window_s = s;
		} else {
			usage();
			return 2;
		}
	}
	if (i != argc) {
		usage();
		return 2;
	}
	if (st->ops->limit_set(st, &r) != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	printf("limit %s %s %s set (running sokod sees it within %d ms)\n",
	       argv[0], argv[1], argv[2], LEDGER_LIMITS_TTL_MS);
	return 0;
}

static int
cmd_limit_list(struct store *st)
{
	struct ledger_limit_rule *v = NULL;
	size_t n = 0, i;

	if (st->ops->limit_list(st, &v, &n) != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	for (i = 0; i < n; i++) {
		const struct currency *c =
			money_currency_by_numeric(v[i].currency);
		char pt[40], dl[40];

		money_format(pt, sizeof pt, c, v[i].per_txn_max);
		money_format(dl, sizeof dl, c, v[i].daily_max);
		printf("%-8s %-20s %s per_txn=%s daily=%s velocity=%d/%ds\n",
		       ledger_subject_kind_name(v[i].subject_kind),
		       v[i].subject, c ? c->alpha : "?",
		       v[i].per_txn_max ? pt : "none",
		       v[i].daily_max ? dl : "none", v[i].velocity_max,
		       v[i].velocity_window_s);
	}
	free(v);
	return 0;
}

/* A terminal id or agent code: 1..32 bytes of [A-Za-z0-9._-]. */
static int
pos_id_arg(const char *what, const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > STORE_POS_ID_MAX ||
	    strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	              "0123456789._-") != n) {
		fprintf(stderr,
		        "sokoctl: %s must be 1..%d bytes of A-Z a-z 0-9 . _ -\n",
		        what, STORE_POS_ID_MAX);
		return -1;
	}
	return 0;
}

/* The account named code, which must be of type; 0, or -1 (said). */
static int
account_typed(struct store *st, const char *code,
              enum ledger_account_type type, struct ledger_account *a)
{
	enum store_rc rc = st->ops->account_by_code(st, code, a);

	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc == STORE_NOT_FOUND ? "no such account" : st->errstr);
		return -1;
	}
	if (a->type != type) {
		fprintf(stderr, "sokoctl: %s is not a%s %s account\n", code,
		        type == LEDGER_ACCT_AGENT_FLOAT ? "n" : "",
		        ledger_account_type_name((uint8_t)type));
		return -1;
	}
	return 0;
}

static int
cmd_agent_create(struct store *st, const char *code, const char *acct)
{
	struct ledger_account a;
	struct store_agent ag;
	enum store_rc rc;

	if (pos_id_arg("agent code", code) != 0 ||
	    account_typed(st, acct, LEDGER_ACCT_AGENT_FLOAT, &a) != 0)
		return 1;
	memset(&ag, 0, sizeof ag);
	strlcpy_s(ag.code, code, sizeof ag.code);
	ag.float_account_id = a.id;
	ag.status = STORE_POS_ACTIVE;
	ag.created_ms = util_now_ms();
	rc = st->ops->agent_create(st, &ag);
	if (rc == STORE_CONFLICT) {
		fprintf(stderr, "sokoctl: agent %s already exists\n", code);
		return 1;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	printf("agent %s float=%s\n", ag.code, a.code);
	return 0;
}

/* A merchant: its terminals' COLLECTs credit acct (merchant_payable). */
static int
cmd_merchant_create(struct store *st, const char *code, const char *acct)
{
	struct ledger_account a;
	struct store_merchant m;
	enum store_rc rc;

	if (pos_id_arg("merchant code", code) != 0 ||
	    account_typed(st, acct, LEDGER_ACCT_MERCHANT_PAYABLE, &a) != 0)
		return 1;
	memset(&m, 0, sizeof m);
	strlcpy_s(m.code, code, sizeof m.code);
	m.payable_account_id = a.id;
	m.created_ms = util_now_ms();
	rc = st->ops->merchant_create(st, &m);
	if (rc == STORE_CONFLICT) {
		fprintf(stderr, "sokoctl: merchant %s already exists\n", code);
		return 1;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	printf("merchant %s payable=%s\n", m.code, a.code);
	return 0;
}

/* A fresh K_t for terminal id into kt, wrapped under pos_kek_file's KEK
 * into wrapped; 0, or -1 (said). */
static int
new_terminal_key(const struct config *cfg, const char *id,
                 uint8_t kt[KEYWRAP_KEY_LEN],
                 uint8_t wrapped[STORE_KEY_WRAPPED_LEN])
{
	uint8_t kek[KEYWRAP_KEY_LEN];
	char err[256];
	int ret = -1;

	if (keywrap_load_kek(kek, cfg->pos_kek_file, err, sizeof err) != 0) {
		fprintf(stderr, "sokoctl: %s\n", err);
		return -1;
	}
	if (RAND_bytes(kt, KEYWRAP_KEY_LEN) == 1 &&
	    keywrap_wrap(wrapped, kek, kt, id) == 0)
		ret = 0;
	else
		fprintf(stderr, "sokoctl: cannot generate or wrap the key\n");
	explicit_bzero(kek, sizeof kek);
	return ret;
}

/* Generates K_t, stores it wrapped under the KEK, prints it once. */
static int
cmd_terminal_add(struct store *st, const struct config *cfg, const char *id,
                 const char *agent, const char *merchant)
{
	uint8_t kt[KEYWRAP_KEY_LEN];
	char hex[2 * KEYWRAP_KEY_LEN + 1];
	struct store_terminal t;
	struct store_agent ag;
	struct store_merchant m;
	enum store_rc rc;
	int ret = 1;

	memset(&t, 0, sizeof t);
	if (pos_id_arg("terminal id", id) != 0)
		return 1;
	rc = st->ops->agent_get(st, agent, &ag);
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc == STORE_NOT_FOUND ? "no such agent" : st->errstr);
		goto out;
	}
	memset(&m, 0, sizeof m);
	if (merchant != NULL &&
	    (rc = st->ops->merchant_get(st, merchant, &m)) != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc == STORE_NOT_FOUND ? "no such merchant" : st->errstr);
		goto out;
	}
	if (new_terminal_key(cfg, id, kt, t.key_wrapped) != 0)
		goto out;
	strlcpy_s(t.id, id, sizeof t.id);
	t.agent_id = ag.id;
	t.merchant_id = m.id; /* 0: none */
	t.status = STORE_POS_ACTIVE;
	t.created_ms = util_now_ms();
	rc = st->ops->terminal_create(st, &t);
	if (rc == STORE_CONFLICT) {
		fprintf(stderr, "sokoctl: terminal %s already exists\n", id);
		goto out;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		goto out;
	}
	/* the only time K_t leaves the server in clear: load it into the
	 * terminal's secure storage now; it cannot be shown again */
	util_hex(hex, kt, sizeof kt);
	printf("terminal %s agent=%s%s%s key=%s\n", id, ag.code,
	       m.id != 0 ? " merchant=" : "", m.code, hex);
	ret = 0;
out:
	explicit_bzero(hex, sizeof hex);
	explicit_bzero(kt, sizeof kt);
	explicit_bzero(&t, sizeof t);
	return ret;
}

/* A new K_t for terminal id (lost or exposed key): wrapped under the KEK
 * and stored, printed once; the old key stops working at the terminal's
 * next login.  Its history (transactions, batches) stays. */
static int
cmd_terminal_rekey(struct store *st, const struct config *cfg, const char *id)
{
	uint8_t kt[KEYWRAP_KEY_LEN], wrapped[STORE_KEY_WRAPPED_LEN];
	char hex[2 * KEYWRAP_KEY_LEN + 1];
	enum store_rc rc;
	int ret = 1;

	if (pos_id_arg("terminal id", id) != 0 ||
	    new_terminal_key(cfg, id, kt, wrapped) != 0)
		goto out;
	rc = st->ops->terminal_set_key(st, id, wrapped);
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc == STORE_NOT_FOUND ? "no such terminal" : st->errstr);
		goto out;
	}
	util_hex(hex, kt, sizeof kt);
	printf("terminal %s key=%s (its next login needs this key; the old "
	       "one is refused)\n",
	       id, hex);
	ret = 0;
out:
	explicit_bzero(hex, sizeof hex);
	explicit_bzero(kt, sizeof kt);
	explicit_bzero(wrapped, sizeof wrapped);
	return ret;
}

/* `agent|terminal block|unblock KEY`: the row's status; running sokod
 * see it at the next login (and, for an agent, in transfers to it
 * within a second). */
static int
cmd_pos_status(struct store *st, bool is_agent, const char *key,
               uint8_t status)
{
	enum store_rc rc = is_agent
	                       ? st->ops->agent_set_status(st, key, status)
	                       : st->ops->terminal_set_status(st, key, status);

	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc != STORE_NOT_FOUND ? st->errstr
		        : is_agent            ? "no such agent"
		                              : "no such terminal");
		return 1;
	}
	printf("%s %s %s (%s)\n", is_agent ? "agent" : "terminal", key,
	       store_pos_status_name(status),
	       is_agent ? "running sokod refuse or allow its terminals' next "
	                  "login, and transfers to it within a second"
	                : "running sokod refuses or allows its next login");
	return 0;
}

static int
terminal_list_cb(void *arg, const struct store_terminal *t)
{
	(void)arg;
	printf("%-32s agent=%-20s %s%s%s%s\n", t->id, t->agent.code,
	       store_pos_status_name(t->status),
	       t->agent.status == STORE_POS_BLOCKED ? " (agent blocked)" : "",
	       t->merchant_id != 0 ? " merchant=" : "", t->merchant.code);
	return 0;
}

/* ---- /rpc partner keys (docs/operations.md "Partner keys") ---- */

static const char *const rpc_scope_names[] = {
    [STORE_RPC_SCOPE_AGENT] = "agent",
    [STORE_RPC_SCOPE_MERCHANT] = "merchant",
    [STORE_RPC_SCOPE_TERMINAL] = "terminal"};

/* A new partner key for the terminals of scope (an agent, a merchant or
 * one terminal, which must exist): printed once, only its SHA-256
 * kept. */
static int
cmd_rpc_key_create(struct store *st, const char *name, const char *kind,
                   const char *scope)
{
	char key[SVC_POS_RPC_KEY_LEN + 1];
	uint8_t raw[32];
	struct store_rpc_key k;
	struct store_agent ag;
	struct store_merchant m;
	struct store_terminal t;
	enum store_rc rc;
	int ret = 1;
	uint8_t sk;

	if (pos_id_arg("key name", name) != 0 ||
	    pos_id_arg("scope", scope) != 0)
		return 1;
	for (sk = STORE_RPC_SCOPE_AGENT; sk <= STORE_RPC_SCOPE_TERMINAL; sk++)
		if (strcmp(kind, rpc_scope_names[sk]) == 0)
			break;
	if (sk > STORE_RPC_SCOPE_TERMINAL) {
		fprintf(stderr, "sokoctl: scope kind must be agent, merchant "
		                "or terminal\n");
		return 1;
	}
	rc = sk == STORE_RPC_SCOPE_AGENT ? st->ops->agent_get(st, scope, &ag)
	     : sk == STORE_RPC_SCOPE_MERCHANT
	         ? st->ops->merchant_get(st, scope, &m)
	         : st->ops->terminal_get(st, scope, &t);
	if (sk == STORE_RPC_SCOPE_TERMINAL)
		explicit_bzero(&t, sizeof t); /* its wrapped key */
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n",
		        rc == STORE_NOT_FOUND ? "no such scope" : st->errstr);
		return 1;
	}
	memset(&k, 0, sizeof k);
	memcpy(key, SVC_POS_RPC_KEY_PREFIX, sizeof SVC_POS_RPC_KEY_PREFIX);
	if (RAND_bytes(raw, sizeof raw) != 1) {
		fprintf(stderr, "sokoctl: cannot generate the key\n");
		goto out;
	}
	util_hex(key + sizeof SVC_POS_RPC_KEY_PREFIX - 1, raw, sizeof raw);
	if (!svc_pos_rpc_key_hash(key, k.key_hash))
		goto out; /* cannot happen: our own format */
	strlcpy_s(k.name, name, sizeof k.name);
	k.scope_kind = sk;
	strlcpy_s(k.scope, scope, sizeof k.scope);
	k.created_ms = util_now_ms();
	rc = st->ops->rpc_key_create(st, &k);
	if (rc == STORE_CONFLICT) {
		fprintf(stderr, "sokoctl: rpc key %s already exists\n", name);
		goto out;
	}
	if (rc != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		goto out;
	}
	/* the only time the key is shown: give it to the partner now */
	printf("rpc-key %s scope=%s:%s key=%s\n", name, kind, scope, key);
	ret = 0;
out:
	explicit_bzero(key, sizeof key);
	explicit_bzero(raw, sizeof raw);
	return ret;
}

static int
rpc_key_list_cb(void *arg, const struct store_rpc_key *k)
{
	(void)arg;
	printf("%-32s scope=%s:%s %s\n", k->name,
	       k->scope_kind >= STORE_RPC_SCOPE_AGENT &&
	               k->scope_kind <= STORE_RPC_SCOPE_TERMINAL
	           ? rpc_scope_names[k->scope_kind]
	           : "?",
	       k->scope, k->is_revoked ? "revoked" : "active");
	return 0;
}

/* ---- reconciliation (docs/payments.md §Reconciliation) ---- */

static const char *
kind_name(uint8_t kind)
{
	return kind == STORE_PROV_COLLECT ? "collection"
	       : kind == STORE_PROV_BILL  ? "bill"
	                                  : "disbursement";
}

static void
print_prov(const struct store_prov *p)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	char amount[48] = "?";

	if (cur != NULL)
		money_format(amount, sizeof amount, cur, p->pay.amount_minor);
	printf("%-8lld %-24s %-12s %-9s %-9s %s %s call=%d ref=%s "
	       "provider_ref=%s created_ms=%lld\n",
	       (long long)p->pay.id, p->pay.ref, kind_name(p->kind),
	       p->provider, payment_state_name(p->pay.state), amount,
	       cur != NULL ? cur->alpha : "?", p->call_state, p->client_ref,
	       p->provider_ref[0] != '\0' ? p->provider_ref : "-",
	       (long long)p->pay.created_ms);
}

static int
cmd_payments_unknown(struct store *st, int argc, char **argv)
{
	struct store_prov rows[SVC_RECON_PAGE_MAX];
	long long after = 0, limit = 50;
	size_t n = 0, i;
	int a;

	for (a = 0; a < argc; a += 2) {
		char *end = NULL;
		long long v = a + 1 < argc ? strtoll(argv[a + 1], &end, 10) : -1;

		if (end == NULL || *end != '\0' || v < 0) {
			usage();
			return 2;
		}
		if (strcmp(argv[a], "--after") == 0)
			after = v;
		else if (strcmp(argv[a], "--limit") == 0 && v >= 1 &&
		         v <= SVC_RECON_PAGE_MAX)
			limit = v;
		else {
			usage();
			return 2;
		}
	}
	if (st->ops->prov_unknown(st, after, rows, (size_t)limit, &n) !=
	    STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	for (i = 0; i < n; i++)
		print_prov(&rows[i]);
	if (n == (size_t)limit)
		printf("more: --after %lld\n", (long long)rows[n - 1].pay.id);
	return 0;
}

static int
prov_by_ref(struct store *st, const char *ref, struct store_prov *p)
{
	enum store_rc r;

	if (strlen(ref) > PAYMENT_REF_MAX) {
		fprintf(stderr, "sokoctl: no such provider payment\n");
		return 1;
	}
	r = st->ops->prov_get(st, ref, NULL, NULL, NULL, p);
	if (r == STORE_OK)
		return 0;
	fprintf(stderr, "sokoctl: %s\n",
	        r == STORE_NOT_FOUND ? "no such provider payment" : st->errstr);
	return 1;
}

static int
cmd_payment_show(struct store *st, const char *ref)
{
	struct store_prov p;
	struct store_prov_resolution res;
	enum store_rc r;

	if (prov_by_ref(st, ref, &p) != 0)
		return 1;
	print_prov(&p);
	r = st->ops->prov_resolution_get(st, p.pay.id, &res);
	if (r == STORE_OK)
		printf("resolved by hand: %s by %s at %lld provider_ref=%s "
		       "key=%s\nevidence: %s\n",
		       payment_state_name(res.outcome), res.actor,
		       (long long)res.created_ms,
		       res.provider_ref[0] != '\0' ? res.provider_ref : "-",
		       res.idem_key, res.evidence);
	else if (r != STORE_NOT_FOUND) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	return 0;
}

/* sokoctl cannot call the provider: it reopens the payment, and the
 * janitor of a running sokod asks (or, when the provider cannot be
 * asked, closes it again: resolve it by hand). */
static int
cmd_payment_requery(struct store *st, const char *ref)
{
	struct store_prov p;
	struct store_prov_update u;
	struct svc_error e;

	if (prov_by_ref(st, ref, &p) != 0)
		return 1;
	if (svc_recon_requery(&p, true, util_now_ms(), &u, &e) != 0) {
		fprintf(stderr, "sokoctl: %s: %s\n", e.code, e.message);
		return 1;
	}
	if (st->ops->prov_update(st, &u, util_now_ms()) != STORE_OK) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	printf("%s reopened: sokod's janitor asks the provider on its next "
	       "tick\n", p.pay.ref);
	return 0;
}

static int
cmd_payment_resolve(struct store *st, int argc, char **argv)
{
	struct store_prov p;
	struct store_prov_resolution res, prior;
	struct store_prov_update u;
	struct ledger_req r;
	struct ledger_result lr;
	struct ledger *lg;
	struct svc_error e;
	const char *key = "sokoctl";
	char err[256];
	enum store_rc sr;
	int a, rc = 1;

	if (argc < 2) {
		usage();
		return 2;
	}
	memset(&res, 0, sizeof res);
	res.outcome = strcmp(argv[1], "succeeded") == 0 ? PAY_SUCCEEDED
	              : strcmp(argv[1], "failed") == 0  ? PAY_FAILED
	                                                : 0;
	for (a = 2; a < argc; a += 2) {
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;
		char *dst = NULL;
		size_t cap = 0;

		if (v == NULL) {
			usage();
			return 2;
		}
		if (strcmp(argv[a], "--actor") == 0) {
			dst = res.actor;
			cap = sizeof res.actor;
		} else if (strcmp(argv[a], "--evidence") == 0) {
			dst = res.evidence;
			cap = sizeof res.evidence;
		} else if (strcmp(argv[a], "--provider-ref") == 0) {
			dst = res.provider_ref;
			cap = sizeof res.provider_ref;
		} else if (strcmp(argv[a], "--key") == 0) {
			key = v;
		} else {
			usage();
			return 2;
		}
		if (dst != NULL && strlen(v) >= cap) {
			fprintf(stderr, "sokoctl: %s: too long\n", argv[a]);
			return 2;
		}
		if (dst != NULL)
			memcpy(dst, v, strlen(v) + 1);
	}
	if (svc_recon_check(&res, &e) != 0 ||
	    svc_admin_check_key(key, &e) != 0) {
		fprintf(stderr, "sokoctl: %s: %s\n", e.code, e.message);
		return 2;
	}
	strlcpy_s(res.idem_key, key, sizeof res.idem_key);
	if (prov_by_ref(st, argv[0], &p) != 0)
		return 1;
	svc_recon_hash(&res, p.pay.ref);
	sr = st->ops->prov_resolution_get(st, p.pay.id, &prior);
	if (sr != STORE_OK && sr != STORE_NOT_FOUND) {
		fprintf(stderr, "sokoctl: %s\n", st->errstr);
		return 1;
	}
	switch (svc_recon_resolve(&p, sr == STORE_OK ? &prior : NULL, &res,
	                          &u, &r, &e)) {
	case SVC_RECON_REPLAY:
		printf("%s already resolved %s by this request\n", p.pay.ref,
		       payment_state_name(res.outcome));
		return 0;
	case SVC_RECON_REFUSED:
		fprintf(stderr, "sokoctl: %s: %s\n", e.code, e.message);
		return 1;
	case SVC_RECON_WRITE:
		if (st->ops->prov_update(st, &u, util_now_ms()) != STORE_OK) {
			fprintf(stderr, "sokoctl: %s\n", st->errstr);
			return 1;
		}
		printf("%s resolved %s (no posting)\n", p.pay.ref,
		       payment_state_name(res.outcome));
		return 0;
	case SVC_RECON_POST:
		break;
	}
	/* the postings, the state and the resolution: one commit */
	if ((lg = ledger_new(st, err, sizeof err)) == NULL) {
		fprintf(stderr, "sokoctl: %s\n", err);
		return 1;
	}
	if (ledger_commit_batch(lg, &r, 1, &lr, util_now_ms()) != 0 ||
	    lr.rc != LEDGER_OK || lr.is_replay)
		fprintf(stderr, "sokoctl: not resolved: %s%s\n",
		        ledger_rc_name(lr.rc),
		        lr.rc == LEDGER_RETRY ? " (the payment changed "
		                                "meanwhile, or storage)"
		                              : "");
	else {
		printf("%s resolved %s, txn %lld\n", p.pay.ref,
		       payment_state_name(res.outcome), (long long)lr.txn_id);
		rc = 0;
	}
	ledger_free(lg);
	return rc;
}

static int
cmd_payment(struct store *st, int argc, char **argv)
{
	if (strcmp(argv[0], "payments") == 0 && argc >= 2 &&
	    strcmp(argv[1], "unknown") == 0)
		return cmd_payments_unknown(st, argc - 2, argv + 2);
	if (argc == 3 && strcmp(argv[1], "show") == 0)
		return cmd_payment_show(st, argv[2]);
	if (argc == 3 && strcmp(argv[1], "requery") == 0)
		return cmd_payment_requery(st, argv[2]);
	if (argc >= 3 && strcmp(argv[1], "resolve") == 0)
		return cmd_payment_resolve(st, argc - 2, argv + 2);
	usage();
	return 2;
}

int
main(int argc, char **argv)
{
	const char *url = NULL, *file = NULL;
	const char *over[32];
	struct config *cfg = config_new();
	struct store *st = NULL;
	char err[512];
	int i = 1, rc = 1, n_over = 0, j;
	bool has_store = false;

	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			url = argv[i + 1];
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			file = argv[i + 1];
		else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc &&
		         n_over < (int)ARRAY_LEN(over))
			over[n_over++] = argv[i + 1];
		else {
			usage();
			rc = 2;
			goto out;
		}
		i += 2;
	}
	if (i >= argc) {
		usage();
		rc = 2;
		goto out;
	}
	if (file != NULL) {
		if (config_load(cfg, file, err, sizeof err) != 0) {
			fprintf(stderr, "sokoctl: %s\n", err);
			goto out;
		}
		has_store = true;
	}
	for (j = 0; j < n_over; j++) {
		char key[128];
		const char *eq = strchr(over[j], '=');

		if (eq == NULL || (size_t)(eq - over[j]) >= sizeof key) {
			fprintf(stderr, "sokoctl: -o %s: expected KEY=VALUE\n",
			        over[j]);
			goto out;
		}
		memcpy(key, over[j], (size_t)(eq - over[j]));
		key[eq - over[j]] = '\0';
		if (config_set(cfg, key, eq + 1, err, sizeof err) != 0) {
			fprintf(stderr, "sokoctl: -o %s: %s\n", over[j], err);
			goto out;
		}
		if (strcmp(key, "store") == 0)
			has_store = true;
	}
	if (url == NULL && has_store)
		url = cfg->store;
	if (url == NULL)
		url = getenv("SOKO_STORE");
	if (url == NULL)
		url = "sqlite:soko.db";
	/* opening migrates: sokod does the same at start-up */
	if ((st = store_open(url, err, sizeof err)) == NULL) {
		fprintf(stderr, "sokoctl: %s\n", err);
		goto out;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "migrate") == 0) {
		int from = 0, to = 0;

		if (st->ops->migrate(st, &from, &to) != STORE_OK) {
			fprintf(stderr, "sokoctl: migrate: %s\n", st->errstr);
			goto out;
		}
		printf("schema at version %d (%s)\n", to, st->ops->name);
		rc = 0;
	} else if (strcmp(argv[0], "account") == 0 && argc >= 2 &&
	           strcmp(argv[1], "create") == 0) {
		rc = cmd_account_create(st, argc - 2, argv + 2);
	} else if (strcmp(argv[0], "account") == 0 && argc == 3 &&
	           strcmp(argv[1], "show") == 0) {
		struct ledger_account a;
		enum store_rc r = st->ops->account_by_code(st, argv[2], &a);

		if (r == STORE_OK) {
			print_account(&a);
			rc = 0;
		} else {
			fprintf(stderr, "sokoctl: %s\n",
			        r == STORE_NOT_FOUND ? "no such account"
			                             : st->errstr);
		}
	} else if (strcmp(argv[0], "balances") == 0) {
		rc = st->ops->account_list(st, list_cb, NULL) == STORE_OK ? 0
		                                                          : 1;
	} else if (strcmp(argv[0], "limit") == 0 && argc >= 2 &&
	           strcmp(argv[1], "set") == 0) {
		rc = cmd_limit_set(st, argc - 2, argv + 2);
	} else if (strcmp(argv[0], "limit") == 0 && argc == 2 &&
	           strcmp(argv[1], "list") == 0) {
		rc = cmd_limit_list(st);
	} else if (strcmp(argv[0], "verify") == 0) {
		size_t n = 0;

		if (st->ops->verify(st, violation_cb, NULL, &n) != STORE_OK) {
			fprintf(stderr, "sokoctl: verify: %s\n", st->errstr);
			goto out;
		}
		printf("verify: %zu violation%s\n", n, n == 1 ? "" : "s");
		rc = n == 0 ? 0 : 1;
	} else if (strcmp(argv[0], "agent") == 0 && argc == 4 &&
	           strcmp(argv[1], "create") == 0) {
		rc = cmd_agent_create(st, argv[2], argv[3]);
	} else if (strcmp(argv[0], "merchant") == 0 && argc == 4 &&
	           strcmp(argv[1], "create") == 0) {
		rc = cmd_merchant_create(st, argv[2], argv[3]);
	} else if (strcmp(argv[0], "terminal") == 0 && argc == 4 &&
	           strcmp(argv[1], "add") == 0) {
		rc = cmd_terminal_add(st, cfg, argv[2], argv[3], NULL);
	} else if (strcmp(argv[0], "terminal") == 0 && argc == 6 &&
	           strcmp(argv[1], "add") == 0 &&
	           strcmp(argv[4], "--merchant") == 0) {
		rc = cmd_terminal_add(st, cfg, argv[2], argv[3], argv[5]);
	} else if (strcmp(argv[0], "terminal") == 0 && argc == 3 &&
	           strcmp(argv[1], "rekey") == 0) {
		rc = cmd_terminal_rekey(st, cfg, argv[2]);
	} else if ((strcmp(argv[0], "agent") == 0 ||
	            strcmp(argv[0], "terminal") == 0) &&
	           argc == 3 &&
	           (strcmp(argv[1], "block") == 0 ||
	            strcmp(argv[1], "unblock") == 0)) {
		rc = cmd_pos_status(st, argv[0][0] == 'a', argv[2],
		                    argv[1][0] == 'b' ? STORE_POS_BLOCKED
		                                      : STORE_POS_ACTIVE);
	} else if (strcmp(argv[0], "rpc-key") == 0 && argc == 5 &&
	           strcmp(argv[1], "create") == 0) {
		rc = cmd_rpc_key_create(st, argv[2], argv[3], argv[4]);
	} else if (strcmp(argv[0], "rpc-key") == 0 && argc == 3 &&
	           strcmp(argv[1], "revoke") == 0) {
		enum store_rc r = st->ops->rpc_key_revoke(st, argv[2]);

		if (r == STORE_OK) {
			printf("rpc-key %s revoked\n", argv[2]);
			rc = 0;
		} else {
			fprintf(stderr, "sokoctl: %s\n",
			        r == STORE_NOT_FOUND ? "no such rpc key"
			                             : st->errstr);
		}
	} else if (strcmp(argv[0], "rpc-key") == 0 && argc == 2 &&
	           strcmp(argv[1], "list") == 0) {
		rc = st->ops->rpc_key_list(st, rpc_key_list_cb, NULL) ==
		                     STORE_OK
		             ? 0
		             : 1;
	} else if (strcmp(argv[0], "terminal") == 0 && argc == 2 &&
	           strcmp(argv[1], "list") == 0) {
		rc = st->ops->terminal_list(st, terminal_list_cb, NULL) ==
		                     STORE_OK
		             ? 0
		             : 1;
	} else if ((strcmp(argv[0], "payments") == 0 ||
	            strcmp(argv[0], "payment") == 0) && argc >= 2) {
		rc = cmd_payment(st, argc, argv);
	} else if (strcmp(argv[0], "purge-idempotency") == 0) {
		long days = 30;
		int64_t n = 0;

		if (argc == 3 && strcmp(argv[1], "--days") == 0)
			days = atol(argv[2]);
		else if (argc != 1) {
			usage();
			rc = 2;
			goto out;
		}
		if (days < 30) {
			fprintf(stderr, "sokoctl: keys are kept at least 30 "
			                "days\n");
			goto out;
		}
		if (st->ops->idem_purge(st, util_now_ms() - days * 86400000LL,
		                        &n) != STORE_OK) {
			fprintf(stderr, "sokoctl: %s\n", st->errstr);
			goto out;
		}
		printf("purged %lld idempotency keys older than %ld days\n",
		       (long long)n, days);
		rc = 0;
	} else {
		usage();
		rc = 2;
	}
out:
	store_close(st);
	config_free(cfg);
	return rc;
}
