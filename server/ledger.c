/*
 * ledger.c - double-entry decisions and group commit (ledger.h).
 *
 * One batch = one storage transaction:
 *   1. begin (the store takes the ledger's write lock, shared by every
 *      sokod on one PostgreSQL); re-read limit rules if stale;
 *   2. look up every idempotency key of the batch (sorted, unique);
 *   3. load reversal targets, limit usage rows and accounts;
 *   4. decide each request in arrival order against in-memory copies of
 *      those rows (so a hot account costs one row update per batch);
 *   5. write postings, transactions, one balance delta per touched account,
 *      usage deltas and the new idempotency records; commit.
 * Nothing is acknowledged before 5 returns (the caller releases replies).
 *
 * Invariants kept here: postings of a transaction sum to zero; every leg's
 * account exists, is open and has the transaction's currency; a floor is
 * never crossed; no limit is overshot; a key decides once.
 */
#include "ledger.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "money.h"
#include "store.h"
#include "util.h"

#define LEDGER_BATCH_ATTEMPTS 5 /* retries of a batch on RETRY/CONFLICT */

struct ledger {
	struct store *st;
	struct ledger_limit_rule *rules; /* sorted by rule_cmp */
	size_t n_rules;
	int64_t rules_loaded_ms; /* 0: reload on next batch */
};

/* ---------------------------------------------------------------- names */

const char *
ledger_rc_name(enum ledger_rc rc)
{
	switch (rc) {
#define X(name, str)                                                         \
	case LEDGER_##name:                                                  \
		return str;
		LEDGER_RCS(X)
#undef X
	case LEDGER_RC_COUNT:
		break;
	}
	return "unknown";
}

#define NAME_FNS(fn_name, fn_parse, LIST)                                    \
	const char *fn_name(uint8_t v)                                       \
	{                                                                    \
		switch (v) {                                                 \
			LIST(NAME_CASE)                                      \
		}                                                            \
		return "?";                                                  \
	}                                                                    \
	int fn_parse(const char *s)                                          \
	{                                                                    \
		LIST(PARSE_IF)                                               \
		return -1;                                                   \
	}
#define NAME_CASE(name, val, str)                                            \
	case val:                                                            \
		return str;
#define PARSE_IF(name, val, str)                                             \
	if (strcmp(s, str) == 0)                                             \
		return val;

NAME_FNS(ledger_account_type_name, ledger_account_type_parse,
         LEDGER_ACCOUNT_TYPES)
NAME_FNS(ledger_txn_kind_name, ledger_txn_kind_parse, LEDGER_TXN_KINDS)
NAME_FNS(ledger_subject_kind_name, ledger_subject_kind_parse,
         LEDGER_SUBJECT_KINDS)

int64_t
ledger_day(int64_t now_ms)
{
	return now_ms >= 0 ? now_ms / 86400000 : -1 - (-1 - now_ms) / 86400000;
}

/* ----------------------------------------------------------------- hash */

/* The canonical encoding of a request (below) is at most this long:
 * 4 u64, LEDGER_LEGS_MAX legs of 2 u64, 2 u64, LEDGER_SUBJECTS_MAX
 * subjects of a u64 and a string, the memo string (u64 length, bytes). */
#define HASH_IN_MAX                                                          \
	(8 * (4 + 2 * LEDGER_LEGS_MAX + 2) +                                 \
	 LEDGER_SUBJECTS_MAX * (16 + LEDGER_SUBJECT_MAX) + 8 + LEDGER_MEMO_MAX)

static size_t
put_u64(uint8_t *b, size_t o, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		b[o + (size_t)i] = (uint8_t)(v >> (56 - 8 * i));
	return o + 8;
}

/* s as its length (u64) and bytes, at most max of them (a field's size:
 * a longer string cannot be in a valid request, which its NUL ends) */
static size_t
put_str(uint8_t *b, size_t o, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	o = put_u64(b, o, n);
	memcpy(b + o, s, n);
	return o + n;
}

static EVP_MD *sha256_md;

static void
sha256_md_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/*
 * The request's content in one buffer, hashed at once with a SHA-256
 * fetched once per process: the same bytes, so the same digest, as
 * feeding them field by field (what stored idempotency records hold),
 * without a context per field and an algorithm lookup per request.
 */
void
ledger_req_hash(struct ledger_req *r)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	uint8_t b[HASH_IN_MAX];
	unsigned len = 0;
	size_t i, o = 0;

	o = put_u64(b, o, 1); /* version of this encoding */
	o = put_u64(b, o, r->kind);
	o = put_u64(b, o, r->currency);
	o = put_u64(b, o, r->n_legs);
	for (i = 0; i < r->n_legs && i < LEDGER_LEGS_MAX; i++) {
		o = put_u64(b, o, (uint64_t)r->legs[i].account_id);
		o = put_u64(b, o, (uint64_t)r->legs[i].amount_minor);
	}
	o = put_u64(b, o, (uint64_t)r->reverses_txn_id);
	o = put_u64(b, o, (uint64_t)r->limit_amount);
	for (i = 0; i < LEDGER_SUBJECTS_MAX; i++) {
		o = put_u64(b, o, r->subjects[i].kind);
		o = put_str(b, o, r->subjects[i].kind ? r->subjects[i].id : "",
		            LEDGER_SUBJECT_MAX);
	}
	o = put_str(b, o, r->memo, LEDGER_MEMO_MAX);
	if (pthread_once(&once, sha256_md_fetch) != 0 || sha256_md == NULL ||
	    EVP_Digest(b, o, r->hash, &len, sha256_md, NULL) != 1)
		abort(); /* libcrypto out of memory: nothing sane to do */
}

/* --------------------------------------------------------------- limits */

static int
rule_cmp(const void *a, const void *b)
{
	const struct ledger_limit_rule *x = a, *y = b;
	int c;

	if (x->subject_kind != y->subject_kind)
		return x->subject_kind < y->subject_kind ? -1 : 1;
	if ((c = strcmp(x->subject, y->subject)) != 0)
		return c;
	return x->currency < y->currency ? -1 : x->currency > y->currency;
}

const struct ledger_limit_rule *
ledger_limit_find(const struct ledger *lg, uint8_t kind, const char *subject,
                  uint16_t currency)
{
	struct ledger_limit_rule key;
	const struct ledger_limit_rule *r;

	if (lg->n_rules == 0)
		return NULL; /* lg->rules is NULL: bsearch must not see it */
	memset(&key, 0, sizeof key);
	key.subject_kind = kind;
	key.currency = currency;
	strlcpy_s(key.subject, subject, sizeof key.subject);
	r = bsearch(&key, lg->rules, lg->n_rules, sizeof *r, rule_cmp);
	if (r != NULL)
		return r;
	strlcpy_s(key.subject, "*", sizeof key.subject);
	return bsearch(&key, lg->rules, lg->n_rules, sizeof *r, rule_cmp);
}

static enum store_rc
limits_reload(struct ledger *lg, int64_t now_ms)
{
	struct ledger_limit_rule *rules = NULL;
	size_t n = 0;
	enum store_rc rc;

	if ((rc = lg->st->ops->limit_list(lg->st, &rules, &n)) != STORE_OK)
		return rc;
	if (n > 0) /* rules is NULL when there are none */
		qsort(rules, n, sizeof *rules, rule_cmp);
	free(lg->rules);
	lg->rules = rules;
	lg->n_rules = n;
	lg->rules_loaded_ms = now_ms;
	return STORE_OK;
}

/* Re-reads the rules when they are older than LEDGER_LIMITS_TTL_MS. */
static enum store_rc
limits_fresh(struct ledger *lg, int64_t now_ms)
{
	if (lg->rules_loaded_ms == 0 ||
	    now_ms - lg->rules_loaded_ms >= LEDGER_LIMITS_TTL_MS ||
	    now_ms < lg->rules_loaded_ms)
		return limits_reload(lg, now_ms);
	return STORE_OK;
}

void
ledger_limits_changed(struct ledger *lg)
{
	lg->rules_loaded_ms = 0;
}

struct ledger *
ledger_new(struct store *st, char *err, size_t errlen)
{
	struct ledger *lg = xcalloc(1, sizeof *lg);

	lg->st = st;
	if (limits_reload(lg, 1) != STORE_OK) {
		strlcpy_s(err, st->errstr, errlen);
		ledger_free(lg);
		return NULL;
	}
	return lg;
}

void
ledger_free(struct ledger *lg)
{
	if (lg == NULL)
		return;
	free(lg->rules);
	free(lg);
}

/* ---------------------------------------------------------------- batch */

/* Per-request working state. */
struct work {
	const struct ledger_req *req;
	size_t key_slot;   /* index into the batch's unique keys */
	bool is_first_key; /* first request of the batch with this key */
	bool is_invalid;   /* LEDGER_BAD_REQUEST: takes no part in the batch */
	struct store_txn_info target; /* LEDGER_TXN_REVERSAL */
	bool has_target;
	const struct ledger_leg *legs; /* req->legs or target's negation */
	struct ledger_leg neg[LEDGER_LEGS_MAX];
	uint8_t n_legs;
	const struct ledger_limit_rule *rule[LEDGER_SUBJECTS_MAX];
	size_t n_use; /* limit checks of this request */
	struct use {
		size_t slot; /* into batch.usage */
		const struct ledger_limit_rule *rule;
		bool is_daily; /* else velocity */
	} use[2 * LEDGER_SUBJECTS_MAX];
};

struct batch {
	size_t n;
	struct work *w;
	/* unique idempotency keys, sorted */
	const char **keys;
	size_t n_keys;
	struct store_idem *idem; /* stored record per unique key */
	int *key_first;          /* first request index deciding each key */
	/* accounts */
	int64_t *ids;
	size_t n_ids;
	struct ledger_account *acct; /* loaded (then updated in memory) */
	int64_t *bal0;               /* balance as loaded */
	/* limit usage */
	struct store_usage *usage;
	size_t n_usage;
	int64_t *use_amt0, *use_cnt0;
};

static void
batch_free(struct batch *b)
{
	free(b->w);
	free(b->keys);
	free(b->idem);
	free(b->key_first);
	free(b->ids);
	free(b->acct);
	free(b->bal0);
	free(b->usage);
	free(b->use_amt0);
	free(b->use_cnt0);
	memset(b, 0, sizeof *b);
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
i64_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

int
store_usage_cmp(const void *a, const void *b)
{
	const struct store_usage *x = a, *y = b;
	int c;

	if (x->subject_kind != y->subject_kind)
		return x->subject_kind < y->subject_kind ? -1 : 1;
	if ((c = strcmp(x->subject, y->subject)) != 0)
		return c;
	if (x->currency != y->currency)
		return x->currency < y->currency ? -1 : 1;
	if (x->window_s != y->window_s)
		return x->window_s < y->window_s ? -1 : 1;
	return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

static size_t
account_slot(const struct batch *b, int64_t id)
{
	const int64_t *p = bsearch(&id, b->ids, b->n_ids, sizeof id, i64_cmp);

	return p != NULL ? (size_t)(p - b->ids) : SIZE_MAX;
}

/* Is s well-formed UTF-8 (no overlongs, no surrogates)?  PostgreSQL
 * refuses anything else, and one bad string would fail a whole batch. */
static bool
utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p != '\0') {
		unsigned c = *p, n, i;
		uint32_t cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		p += n + 1;
	}
	return true;
}

/* What no storage can hold: an empty key, text that is not UTF-8. */
static bool
subjects_ok(const struct ledger_req *r)
{
	size_t k;

	for (k = 0; k < LEDGER_SUBJECTS_MAX; k++)
		if (r->subjects[k].kind != LEDGER_SUBJ_NONE &&
		    (r->subjects[k].id[0] == '\0' ||
		     !utf8_ok(r->subjects[k].id)))
			return false;
	return true;
}

static bool
req_is_valid(const struct ledger_req *r)
{
	return r->idem_key[0] != '\0' && utf8_ok(r->idem_key) &&
	       utf8_ok(r->memo) && subjects_ok(r);
}

/* Keys: sort, dedupe, look up. */
static enum store_rc
batch_keys(struct ledger *lg, struct batch *b)
{
	size_t i, j, n;
	const char **sorted = xcalloc(b->n, sizeof *sorted);
	enum store_rc rc;

	for (i = 0, n = 0; i < b->n; i++)
		if (!b->w[i].is_invalid)
			sorted[n++] = b->w[i].req->idem_key;
	qsort(sorted, n, sizeof *sorted, strp_cmp);
	for (i = 0, j = 0; i < n; i++)
		if (j == 0 || strcmp(sorted[j - 1], sorted[i]) != 0)
			sorted[j++] = sorted[i];
	b->keys = sorted;
	b->n_keys = j;
	b->idem = xcalloc(j, sizeof *b->idem);
	b->key_first = xcalloc(j, sizeof *b->key_first);
	for (i = 0; i < j; i++)
		b->key_first[i] = -1;
	for (i = 0; i < b->n; i++) {
		const char *k = b->w[i].req->idem_key;

		if (b->w[i].is_invalid)
			continue;
		const char **p = bsearch(&k, b->keys, j, sizeof *b->keys,
		                         strp_cmp);

		b->w[i].key_slot = (size_t)(p - b->keys);
		if (b->key_first[b->w[i].key_slot] == -1) {
			b->key_first[b->w[i].key_slot] = (int)i;
			b->w[i].is_first_key = true;
		}
	}
	rc = lg->st->ops->idem_get(lg->st, b->keys, j, b->idem);
	return rc;
}

/* Does request i need deciding (new key, first in batch)? */
static bool
needs_decision(const struct batch *b, size_t i)
{
	return !b->w[i].is_invalid && b->w[i].is_first_key &&
	       b->idem[b->w[i].key_slot].key[0] == '\0';
}

/* The usage row of w's subject k for its daily (or velocity) limit; false
 * if the rule has no such limit. */
static bool
use_key(struct store_usage *u, const struct work *w, size_t k, bool daily,
        int64_t now_ms)
{
	const struct ledger_limit_rule *rule = w->rule[k];
	int32_t win = daily ? 86400 : rule->velocity_window_s;

	if (daily ? rule->daily_max <= 0
	          : rule->velocity_max <= 0 || win <= 0)
		return false;
	memset(u, 0, sizeof *u);
	u->subject_kind = w->req->subjects[k].kind;
	strlcpy_s(u->subject, w->req->subjects[k].id, sizeof u->subject);
	u->currency = w->req->currency;
	u->window_s = win;
	u->bucket = (now_ms / 1000) / win;
	return true;
}

/* Reversal targets, usage keys and account ids of the requests that need
 * deciding; then lock usage rows and accounts. */
static enum store_rc
batch_load(struct ledger *lg, struct batch *b, int64_t now_ms)
{
	struct store *st = lg->st;
	size_t i, k, j, cap_use = 0, n_ids = 0;
	struct store_usage u;
	enum store_rc rc;

	b->ids = xcalloc(b->n * LEDGER_LEGS_MAX, sizeof *b->ids);
	b->usage = NULL;
	for (i = 0; i < b->n; i++) {
		struct work *w = &b->w[i];
		const struct ledger_req *r = w->req;

		w->legs = r->legs;
		w->n_legs = r->n_legs > LEDGER_LEGS_MAX ? 0 : r->n_legs;
		if (!needs_decision(b, i))
			continue;
		if (r->kind == LEDGER_TXN_REVERSAL && r->reverses_txn_id > 0) {
			rc = st->ops->txn_info(st, r->reverses_txn_id,
			                       &w->target);
			if (rc == STORE_OK) {
				w->has_target = true;
				for (k = 0; k < w->target.n_legs; k++) {
					w->neg[k].account_id =
						w->target.legs[k].account_id;
					w->neg[k].amount_minor =
						-w->target.legs[k].amount_minor;
				}
				w->legs = w->neg;
				w->n_legs = w->target.n_legs;
			} else if (rc != STORE_NOT_FOUND) {
				return rc;
			}
		}
		for (k = 0; k < w->n_legs; k++)
			b->ids[n_ids++] = w->legs[k].account_id;
		/* limit usage rows this request counts against */
		for (k = 0; k < LEDGER_SUBJECTS_MAX; k++) {
			const struct ledger_subject *s = &r->subjects[k];

			w->rule[k] = NULL;
			if (s->kind != LEDGER_SUBJ_NONE)
				w->rule[k] = ledger_limit_find(
					lg, s->kind, s->id, r->currency);
			for (j = 0; w->rule[k] != NULL && j < 2; j++) {
				if (!use_key(&u, w, k, j == 0, now_ms))
					continue;
				if (b->n_usage == cap_use) {
					cap_use = cap_use ? 2 * cap_use : 64;
					b->usage = xreallocarray(
						b->usage, cap_use,
						sizeof *b->usage);
				}
				b->usage[b->n_usage++] = u;
			}
		}
	}
	/* usage rows: sort, dedupe, lock */
	if (b->n_usage > 0) {
		qsort(b->usage, b->n_usage, sizeof *b->usage, store_usage_cmp);
		for (i = 0, j = 0; i < b->n_usage; i++)
			if (j == 0 ||
			    store_usage_cmp(&b->usage[j - 1], &b->usage[i]) != 0)
				b->usage[j++] = b->usage[i];
		b->n_usage = j;
		if ((rc = st->ops->usage_load(st, b->usage, b->n_usage)) !=
		    STORE_OK)
			return rc;
	}
	b->use_amt0 = xcalloc(b->n_usage ? b->n_usage : 1, sizeof *b->use_amt0);
	b->use_cnt0 = xcalloc(b->n_usage ? b->n_usage : 1, sizeof *b->use_cnt0);
	for (i = 0; i < b->n_usage; i++) {
		b->use_amt0[i] = b->usage[i].amount_minor;
		b->use_cnt0[i] = b->usage[i].count;
	}
	/* map each request's limit checks to their usage slots */
	for (i = 0; i < b->n; i++) {
		struct work *w = &b->w[i];

		w->n_use = 0;
		if (!needs_decision(b, i))
			continue;
		for (k = 0; k < LEDGER_SUBJECTS_MAX; k++)
			for (j = 0; w->rule[k] != NULL && j < 2; j++) {
				const struct store_usage *p;

				if (!use_key(&u, w, k, j == 0, now_ms))
					continue;
				p = bsearch(&u, b->usage, b->n_usage,
				            sizeof u, store_usage_cmp);
				if (p == NULL)
					continue; /* cannot happen */
				w->use[w->n_use].slot = (size_t)(p - b->usage);
				w->use[w->n_use].rule = w->rule[k];
				w->use[w->n_use++].is_daily = j == 0;
			}
	}
	/* accounts: sort, dedupe, lock */
	qsort(b->ids, n_ids, sizeof *b->ids, i64_cmp);
	for (i = 0, j = 0; i < n_ids; i++)
		if (j == 0 || b->ids[j - 1] != b->ids[i])
			b->ids[j++] = b->ids[i];
	b->n_ids = j;
	b->acct = xcalloc(j, sizeof *b->acct);
	b->bal0 = xcalloc(j, sizeof *b->bal0);
	if (j > 0 &&
	    (rc = st->ops->accounts_load(st, b->ids, j, b->acct)) != STORE_OK)
		return rc;
	for (i = 0; i < j; i++)
		b->bal0[i] = b->acct[i].balance_minor;
	return STORE_OK;
}

/* Static checks of the legs: accounts, currencies, amounts, balance. */
static enum ledger_rc
check_legs(const struct batch *b, const struct work *w)
{
	const struct ledger_req *r = w->req;
	int64_t sum = 0;
	size_t k, s;

	if (r->kind == LEDGER_TXN_REVERSAL) {
		if (r->reverses_txn_id <= 0 || !w->has_target)
			return LEDGER_REVERSAL_UNKNOWN;
		if (w->target.kind == LEDGER_TXN_REVERSAL)
			return LEDGER_REVERSAL_OF_REVERSAL;
		if (w->target.reversed_by != 0)
			return LEDGER_REVERSAL_TWICE;
		if (r->currency != 0 && r->currency != w->target.currency)
			return LEDGER_CURRENCY_MISMATCH;
	} else if (r->reverses_txn_id != 0) {
		return LEDGER_BAD_AMOUNT;
	}
	if (w->n_legs < 2 || r->n_legs > LEDGER_LEGS_MAX)
		return LEDGER_UNBALANCED;
	for (k = 0; k < w->n_legs; k++) {
		int64_t a = w->legs[k].amount_minor;

		if (a == 0 || a > MONEY_MAX_MINOR || a < -MONEY_MAX_MINOR)
			return LEDGER_BAD_AMOUNT;
		if (money_add(&sum, a) != MONEY_OK)
			return LEDGER_OVERFLOW;
		s = account_slot(b, w->legs[k].account_id);
		if (s == SIZE_MAX || b->acct[s].id == 0)
			return LEDGER_UNKNOWN_ACCOUNT;
		if (b->acct[s].is_closed)
			return LEDGER_ACCOUNT_CLOSED;
		if (b->acct[s].currency !=
		    (r->kind == LEDGER_TXN_REVERSAL ? w->target.currency
		                                    : r->currency))
			return LEDGER_CURRENCY_MISMATCH;
	}
	if (sum != 0)
		return LEDGER_UNBALANCED;
	if (r->limit_amount < 0 || r->limit_amount > MONEY_MAX_MINOR)
		return LEDGER_BAD_AMOUNT;
	return LEDGER_OK;
}

static enum ledger_rc
check_limits(const struct batch *b, const struct work *w)
{
	const struct ledger_req *r = w->req;
	size_t k;

	for (k = 0; k < LEDGER_SUBJECTS_MAX; k++)
		if (w->rule[k] != NULL && w->rule[k]->per_txn_max > 0 &&
		    r->limit_amount > w->rule[k]->per_txn_max)
			return LEDGER_LIMIT_PER_TXN;
	for (k = 0; k < w->n_use; k++) {
		const struct use *u = &w->use[k];
		const struct store_usage *us = &b->usage[u->slot];

		/* both terms are <= MONEY_MAX_MINOR: no overflow */
		if (u->is_daily &&
		    us->amount_minor + r->limit_amount > u->rule->daily_max)
			return LEDGER_LIMIT_DAILY;
		if (!u->is_daily && us->count + 1 > u->rule->velocity_max)
			return LEDGER_LIMIT_VELOCITY;
	}
	return LEDGER_OK;
}

/* Applies w's legs to the in-memory balances, or leaves them untouched and
 * says why not. */
static enum ledger_rc
apply_legs(struct batch *b, const struct work *w)
{
	int64_t old[LEDGER_LEGS_MAX];
	size_t slot[LEDGER_LEGS_MAX];
	enum ledger_rc rc = LEDGER_OK;
	size_t k, done = 0;

	for (k = 0; k < w->n_legs; k++) {
		slot[k] = account_slot(b, w->legs[k].account_id);
		old[k] = b->acct[slot[k]].balance_minor;
	}
	for (k = 0; k < w->n_legs; k++, done++)
		if (money_add(&b->acct[slot[k]].balance_minor,
		              w->legs[k].amount_minor) != MONEY_OK) {
			rc = LEDGER_OVERFLOW;
			goto undo;
		}
	for (k = 0; k < w->n_legs; k++) {
		const struct ledger_account *a = &b->acct[slot[k]];

		if (w->legs[k].amount_minor < 0 && a->has_floor &&
		    a->balance_minor < a->floor_minor) {
			rc = LEDGER_INSUFFICIENT_FUNDS;
			goto undo;
		}
	}
	return LEDGER_OK;
undo:
	/* restore in reverse so a repeated account gets its first value */
	while (done-- > 0)
		b->acct[slot[done]].balance_minor = old[done];
	return rc;
}

static void
apply_usage(struct batch *b, const struct work *w)
{
	size_t k, j;

	for (k = 0; k < w->n_use; k++) {
		struct store_usage *us = &b->usage[w->use[k].slot];

		/* a daily and a velocity check may share one row (window
		 * 86400): count it once */
		for (j = 0; j < k; j++)
			if (w->use[j].slot == w->use[k].slot)
				break;
		if (j < k)
			continue;
		us->amount_minor += w->req->limit_amount;
		us->count += 1;
	}
}

static enum ledger_rc
decide(struct batch *b, const struct work *w)
{
	enum ledger_rc rc;

	if ((rc = check_legs(b, w)) != LEDGER_OK)
		return rc;
	if (!w->req->count_only && (rc = check_limits(b, w)) != LEDGER_OK)
		return rc;
	if ((rc = apply_legs(b, w)) != LEDGER_OK)
		return rc;
	apply_usage(b, w);
	return LEDGER_OK;
}

enum ledger_rc
ledger_limits_check(struct ledger *lg, const struct ledger_req *r,
                    int64_t now_ms)
{
	struct store_usage u[2 * LEDGER_SUBJECTS_MAX];
	struct store_usage v[2 * LEDGER_SUBJECTS_MAX];
	struct batch b;
	struct work w;
	size_t k, j, n = 0;

	memset(&b, 0, sizeof b);
	memset(&w, 0, sizeof w);
	w.req = r;
	if (!subjects_ok(r) || r->limit_amount < 0 ||
	    r->limit_amount > MONEY_MAX_MINOR)
		return LEDGER_BAD_REQUEST;
	if (limits_fresh(lg, now_ms) != STORE_OK)
		return LEDGER_RETRY;
	/* the rows this request counts against, as batch_load finds them */
	for (k = 0; k < LEDGER_SUBJECTS_MAX; k++) {
		if (r->subjects[k].kind == LEDGER_SUBJ_NONE)
			continue;
		w.rule[k] = ledger_limit_find(lg, r->subjects[k].kind,
		                              r->subjects[k].id, r->currency);
		for (j = 0; w.rule[k] != NULL && j < 2; j++)
			if (use_key(&u[n], &w, k, j == 0, now_ms)) {
				w.use[w.n_use].slot = n;
				w.use[w.n_use].rule = w.rule[k];
				w.use[w.n_use++].is_daily = j == 0;
				n++;
			}
	}
	/* one load of the sorted unique rows; each check to its row */
	memcpy(v, u, n * sizeof *u);
	qsort(v, n, sizeof *v, store_usage_cmp);
	for (k = 0, j = 0; k < n; k++)
		if (j == 0 || store_usage_cmp(&v[j - 1], &v[k]) != 0)
			v[j++] = v[k];
	if (j > 0 && lg->st->ops->usage_load(lg->st, v, j) != STORE_OK)
		return LEDGER_RETRY;
	for (k = 0; k < w.n_use; k++) {
		const struct store_usage *row = bsearch(
			&u[w.use[k].slot], v, j, sizeof *v, store_usage_cmp);

		w.use[k].slot = (size_t)(row - v); /* always found */
	}
	b.usage = v;
	b.n_usage = j;
	return check_limits(&b, &w);
}

static enum store_rc
try_batch(struct ledger *lg, const struct ledger_req *reqs, size_t n,
          struct ledger_result *res, int64_t now_ms)
{
	struct store *st = lg->st;
	struct batch b;
	struct store_batch wb;
	struct store_txn_row *txns = NULL;
	struct store_posting_row *posts = NULL;
	struct store_balance_delta *deltas = NULL;
	struct store_idem *idem = NULL;
	struct store_pos_txn *pos = NULL;
	struct store_prov_update *prov = NULL;
	struct store_prov *prov_new = NULL;
	int64_t *txn_ids = NULL;
	size_t i, k, n_ok = 0, n_posts = 0, n_deltas = 0, n_idem = 0, n_use = 0;
	size_t n_pos = 0, n_prov = 0, n_prov_new = 0;
	enum store_rc rc;

	memset(&b, 0, sizeof b);
	memset(&wb, 0, sizeof wb);
	b.n = n;
	b.w = xcalloc(n, sizeof *b.w);
	for (i = 0; i < n; i++) {
		b.w[i].req = &reqs[i];
		b.w[i].is_invalid = !req_is_valid(&reqs[i]);
	}

	if ((rc = st->ops->begin(st)) != STORE_OK)
		goto out;
	if ((rc = limits_fresh(lg, now_ms)) != STORE_OK)
		goto out;
	if ((rc = batch_keys(lg, &b)) != STORE_OK)
		goto out;
	if ((rc = batch_load(lg, &b, now_ms)) != STORE_OK)
		goto out;

	/* decide, in arrival order */
	for (i = 0; i < n; i++) {
		struct work *w = &b.w[i];
		const struct store_idem *stored =
			w->is_invalid ? NULL : &b.idem[w->key_slot];

		memset(&res[i], 0, sizeof res[i]);
		if (stored == NULL) {
			res[i].rc = LEDGER_BAD_REQUEST;
			continue;
		}
		if (stored->key[0] != '\0') {
			/* decided by an earlier batch */
			if (util_ct_memcmp(stored->hash, w->req->hash,
			                   LEDGER_HASH_LEN) != 0) {
				res[i].rc = LEDGER_IDEM_MISMATCH;
				continue;
			}
			res[i].rc = (enum ledger_rc)stored->rc;
			res[i].txn_id = stored->txn_id;
			res[i].created_ms = stored->created_ms;
			res[i].is_replay = true;
			continue;
		}
		if (!w->is_first_key) {
			/* decided earlier in this batch */
			int f = b.key_first[w->key_slot];

			if (memcmp(reqs[f].hash, w->req->hash,
			           LEDGER_HASH_LEN) != 0) {
				res[i].rc = LEDGER_IDEM_MISMATCH;
				continue;
			}
			res[i] = res[f];
			res[i].is_replay = true;
			continue;
		}
		res[i].rc = decide(&b, w);
		res[i].created_ms = now_ms;
		if (res[i].rc == LEDGER_OK) {
			n_ok++;
			n_posts += w->n_legs;
			if (w->has_target) /* a later request may not reverse
			                      it again */
				for (k = i + 1; k < n; k++)
					if (b.w[k].has_target &&
					    b.w[k].target.id == w->target.id)
						b.w[k].target.reversed_by = -1;
		}
	}

	/* rows to write */
	txn_ids = xcalloc(n_ok ? n_ok : 1, sizeof *txn_ids);
	if (n_ok > 0 && (rc = st->ops->txn_ids(st, n_ok, txn_ids)) != STORE_OK)
		goto out;
	txns = xcalloc(n_ok ? n_ok : 1, sizeof *txns);
	posts = xcalloc(n_posts ? n_posts : 1, sizeof *posts);
	idem = xcalloc(b.n_keys ? b.n_keys : 1, sizeof *idem);
	for (i = 0; i < n; i++) /* only POS batches pay for POS rows */
		if (reqs[i].pos != NULL)
			n_pos++;
	pos = xcalloc(n_pos ? n_pos : 1, sizeof *pos);
	n_pos = 0;
	for (i = 0; i < n; i++)
		if (reqs[i].prov != NULL)
			n_prov++;
	prov = xcalloc(n_prov ? n_prov : 1, sizeof *prov);
	n_prov = 0;
	for (i = 0; i < n; i++)
		if (reqs[i].prov_new != NULL)
			n_prov_new++;
	prov_new = xcalloc(n_prov_new ? n_prov_new : 1, sizeof *prov_new);
	n_prov_new = 0;
	for (i = 0, k = 0, n_posts = 0; i < n; i++) {
		const struct work *w = &b.w[i];
		struct store_idem *d;
		size_t l;

		if (!needs_decision(&b, i) || res[i].is_replay)
			continue;
		if (res[i].rc == LEDGER_OK) {
			struct store_txn_row *t = &txns[k];

			res[i].txn_id = txn_ids[k++];
			t->id = res[i].txn_id;
			t->kind = w->req->kind;
			t->currency = w->has_target ? w->target.currency
			                            : w->req->currency;
			t->reverses_txn_id = w->req->reverses_txn_id;
			t->idem_key = w->req->idem_key;
			t->memo = w->req->memo;
			t->created_ms = now_ms;
			for (l = 0; l < w->n_legs; l++) {
				struct store_posting_row *p = &posts[n_posts++];

				p->txn_id = t->id;
				p->leg = (uint8_t)l;
				p->account_id = w->legs[l].account_id;
				p->amount_minor = w->legs[l].amount_minor;
				p->currency = t->currency;
				if (p->amount_minor > 0)
					t->amount_minor += p->amount_minor;
			}
		}
		d = &idem[n_idem++];
		strlcpy_s(d->key, w->req->idem_key, sizeof d->key);
		memcpy(d->hash, w->req->hash, LEDGER_HASH_LEN);
		d->rc = (uint8_t)res[i].rc;
		d->txn_id = res[i].txn_id;
		d->created_ms = now_ms;
		if (w->req->pos != NULL) {
			/* the POS row shares the key's fate: written once,
			 * with the first outcome */
			struct store_pos_txn *pr = &pos[n_pos++];

			*pr = *w->req->pos;
			pr->rc = (uint8_t)res[i].rc;
			pr->ledger_txn_id = res[i].txn_id;
			pr->created_ms = now_ms;
			pr->reversed_by = pr->reversed_ms = 0;
		}
		if (w->req->prov != NULL && res[i].rc == LEDGER_OK) {
			prov[n_prov] = *w->req->prov;
			prov[n_prov++].txn_id = res[i].txn_id;
		}
		if (w->req->prov_new != NULL && res[i].rc == LEDGER_OK) {
			prov_new[n_prov_new] = *w->req->prov_new;
			prov_new[n_prov_new++].pay.txn_id = res[i].txn_id;
		}
	}
	/* in-batch repeats take the txn id their first request got */
	for (i = 0; i < n; i++)
		if (!b.w[i].is_invalid && !b.w[i].is_first_key &&
		    b.idem[b.w[i].key_slot].key[0] == '\0' &&
		    res[i].rc != LEDGER_IDEM_MISMATCH)
			res[i].txn_id = res[b.key_first[b.w[i].key_slot]].txn_id;

	deltas = xcalloc(b.n_ids ? b.n_ids : 1, sizeof *deltas);
	for (i = 0; i < b.n_ids; i++)
		if (b.acct[i].balance_minor != b.bal0[i]) {
			deltas[n_deltas].account_id = b.ids[i];
			deltas[n_deltas++].delta_minor =
				b.acct[i].balance_minor - b.bal0[i];
		}
	for (i = 0; i < b.n_usage; i++) {
		int64_t da = b.usage[i].amount_minor - b.use_amt0[i];
		int64_t dc = b.usage[i].count - b.use_cnt0[i];

		if (da == 0 && dc == 0)
			continue;
		b.usage[n_use] = b.usage[i];
		b.usage[n_use].amount_minor = da;
		b.usage[n_use++].count = dc;
	}
	wb.txns = txns;
	wb.n_txns = n_ok;
	wb.postings = posts;
	wb.n_postings = n_posts;
	wb.deltas = deltas;
	wb.n_deltas = n_deltas;
	wb.usage = b.usage;
	wb.n_usage = n_use;
	wb.idem = idem;
	wb.n_idem = n_idem;
	wb.pos_txns = pos;
	wb.n_pos_txns = n_pos;
	wb.prov = prov;
	wb.n_prov = n_prov;
	wb.prov_new = prov_new;
	wb.n_prov_new = n_prov_new;
	wb.now_ms = now_ms;
	if ((rc = st->ops->batch_write(st, &wb)) != STORE_OK)
		goto out;
	rc = st->ops->commit(st);
out:
	if (rc != STORE_OK)
		st->ops->rollback(st);
	free(txn_ids);
	free(txns);
	free(posts);
	free(deltas);
	free(idem);
	free(pos);
	free(prov);
	free(prov_new);
	batch_free(&b);
	return rc;
}

static bool
has_prov(const struct ledger_req *reqs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (reqs[i].prov != NULL || reqs[i].prov_new != NULL)
			return true;
	return false;
}

/* Commits the requests of reqs[0..n) that settle or create no provider
 * payment; the ones that do get LEDGER_RETRY (nothing written: their
 * janitor comes back to a settlement, a creation's caller answers
 * retry).  0 when the rest committed, else -1 (all RETRY). */
static int
without_prov(struct ledger *lg, const struct ledger_req *reqs, size_t n,
             struct ledger_result *res, int64_t now_ms)
{
	struct ledger_req *sub = xcalloc(n, sizeof *sub);
	struct ledger_result *sres = xcalloc(n, sizeof *sres);
	size_t *map = xcalloc(n, sizeof *map);
	size_t i, m = 0;
	int rc = -1; /* nothing left: nothing committed */

	for (i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof res[i]);
		res[i].rc = LEDGER_RETRY;
		if (reqs[i].prov == NULL && reqs[i].prov_new == NULL) {
			sub[m] = reqs[i];
			map[m++] = i;
		}
	}
	if (m > 0) {
		rc = ledger_commit_batch(lg, sub, m, sres, now_ms);
		for (i = 0; i < m; i++)
			res[map[i]] = sres[i];
	}
	free(sub);
	free(sres);
	free(map);
	return rc;
}

int
ledger_commit_batch(struct ledger *lg, const struct ledger_req *reqs,
                    size_t n, struct ledger_result *res, int64_t now_ms)
{
	enum store_rc rc = STORE_FAIL;
	int attempt;
	size_t i;

	if (n == 0)
		return 0;
	for (attempt = 0; attempt < LEDGER_BATCH_ATTEMPTS; attempt++) {
		rc = try_batch(lg, reqs, n, res, now_ms);
		if (rc == STORE_OK)
			return 0;
		if (rc == STORE_CONFLICT && has_prov(reqs, n))
			/* a settled payment changed meanwhile, or a created
			 * one's unique key (its ref, its POS txn id's claim)
			 * is taken: it must not hold back the batch it
			 * shares */
			return without_prov(lg, reqs, n, res, now_ms);
		if (rc != STORE_RETRY && rc != STORE_CONFLICT)
			break;
	}
	for (i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof res[i]);
		res[i].rc = LEDGER_RETRY;
	}
	return -1;
}
