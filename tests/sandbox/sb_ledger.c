/*
 * sb_ledger.c - soko-sandbox's own ledger of charges and its access
 * tokens (sb.h).
 *
 * Every charge a provider accepted is kept, keyed by the provider's
 * reference and indexed by the client's reference and by an alternate id
 * (M-Pesa receipt, Flutterwave numeric id): three chained hash tables,
 * so the hot status paths (STK query, MoMo GET status) are O(1).  Charges
 * complete in creation order (one delay for all), so one FIFO and one
 * timer serve them all instead of one event per charge.
 *
 * Tokens are stateless: serial, expiry and the issuing endpoint, signed
 * with HMAC-SHA256 under a key drawn at start; checking one costs one
 * HMAC and no lookup.
 */
#include "sb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

const char *const sb_state_names[4] = {"pending", "succeeded", "failed",
                                       "reversed"};
const char *const sb_kind_names[SB_K_N] = {
    "stkpush",    "c2b",  "b2c",    "requesttopay", "transfer",
    "webpayment", "bill", "charge", "charge"};

/* ------------------------------------------------------------ hashing */

static const char *
key_of(const struct sb_charge *c, int idx)
{
	return idx == SB_IDX_REF    ? c->ref
	       : idx == SB_IDX_CREF ? c->cref
	                            : c->alt;
}

static uint64_t
key_hash(int prov, const char *key)
{
	uint8_t p = (uint8_t)prov;

	return sb_hash(key, strlen(key), sb_hash(&p, 1, 0xcbf29ce484222325u));
}

static void
htab_grow(struct sb_htab *t, int idx)
{
	size_t ncap = t->cap ? t->cap * 2 : 1024, i;
	struct sb_charge **nb = sb_xcalloc(ncap, sizeof(*nb));

	for (i = 0; i < t->cap; i++) {
		struct sb_charge *c = t->b[i], *next;

		for (; c != NULL; c = next) {
			size_t h =
			    key_hash(c->prov, key_of(c, idx)) & (ncap - 1);

			next = c->next[idx];
			c->next[idx] = nb[h];
			nb[h] = c;
		}
	}
	free(t->b);
	t->b = nb;
	t->cap = ncap;
}

static void
htab_add(struct sb_htab *t, int idx, struct sb_charge *c)
{
	size_t h;

	if (t->n + 1 > t->cap)
		htab_grow(t, idx);
	h = key_hash(c->prov, key_of(c, idx)) & (t->cap - 1);
	c->next[idx] = t->b[h];
	t->b[h] = c;
	t->n++;
}

static struct sb_charge *
htab_get(const struct sb_htab *t, int idx, int prov, const char *key)
{
	struct sb_charge *c;

	if (t->cap == 0 || *key == '\0')
		return NULL;
	c = t->b[key_hash(prov, key) & (t->cap - 1)];
	for (; c != NULL; c = c->next[idx])
		if (c->prov == prov && strcmp(key_of(c, idx), key) == 0)
			return c;
	return NULL;
}

/* ------------------------------------------------------------ charges */

void
sb_ledger_init(struct sb *sb)
{
	memset(sb->idx, 0, sizeof(sb->idx));
	sb->all = NULL;
	sb->n_all = sb->cap_all = 0;
	sb->due_head = sb->due_tail = NULL;
	sb->next_numeric_id = 1000001;
}

static void
charge_free(struct sb_charge *c)
{
	free(c->url);
	json_decref(c->echo);
	free(c);
}

void
sb_ledger_free(struct sb *sb)
{
	size_t i;

	for (i = 0; i < sb->n_all; i++)
		charge_free(sb->all[i]);
	free(sb->all);
	for (i = 0; i < SB_IDX_N; i++)
		free(sb->idx[i].b);
	sb_ledger_init(sb);
}

void
sb_ledger_reset(struct sb *sb)
{
	if (sb->due_ev != NULL)
		event_del(sb->due_ev);
	sb_ledger_free(sb);
}

struct sb_charge *
sb_charge_new(struct sb *sb, enum sb_prov prov, enum sb_kind kind)
{
	struct sb_charge *c;

	if (sb->n_all >= sb->max_charges) {
		sb->st_charges_refused++;
		sb_log(sb, SB_LOG_WARN,
		       "event=charge_refused reason=max_charges "
		       "max=%zu",
		       sb->max_charges);
		return NULL;
	}
	if (sb->n_all == sb->cap_all) {
		size_t ncap = sb->cap_all ? sb->cap_all * 2 : 1024;
		struct sb_charge **na = realloc(sb->all, ncap * sizeof(*na));

		if (na == NULL)
			abort();
		sb->all = na;
		sb->cap_all = ncap;
	}
	c = sb_xcalloc(1, sizeof(*c));
	c->prov = (uint8_t)prov;
	c->kind = (uint8_t)kind;
	c->state = SB_PENDING;
	c->outcome = SB_SUCCEEDED;
	c->created_ms = sb_now_ms();
	sb->all[sb->n_all++] = c;
	return c;
}

void
sb_charge_index(struct sb *sb, struct sb_charge *c)
{
	htab_add(&sb->idx[SB_IDX_REF], SB_IDX_REF, c);
	if (c->cref[0] != '\0')
		htab_add(&sb->idx[SB_IDX_CREF], SB_IDX_CREF, c);
	if (c->alt[0] != '\0')
		htab_add(&sb->idx[SB_IDX_ALT], SB_IDX_ALT, c);
}

struct sb_charge *
sb_charge_by_ref(struct sb *sb, enum sb_prov p, const char *ref)
{
	return htab_get(&sb->idx[SB_IDX_REF], SB_IDX_REF, p, ref);
}

struct sb_charge *
sb_charge_by_alt(struct sb *sb, enum sb_prov p, const char *alt)
{
	return htab_get(&sb->idx[SB_IDX_ALT], SB_IDX_ALT, p, alt);
}

struct sb_charge *
sb_charge_by_cref(struct sb *sb, enum sb_prov p, const char *cref)
{
	return htab_get(&sb->idx[SB_IDX_CREF], SB_IDX_CREF, p, cref);
}

static void
arm_due(struct sb *sb)
{
	struct timeval tv;
	int64_t wait;

	if (sb->due_head == NULL)
		return;
	wait = sb->due_head->due_ms - sb_mono_ms();
	if (wait < 0)
		wait = 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	event_add(sb->due_ev, &tv);
}

void
sb_charge_schedule(struct sb *sb, struct sb_charge *c)
{
	c->due_ms = sb_mono_ms() + sb->callback_delay_ms;
	c->next_due = NULL;
	if (sb->due_tail != NULL)
		sb->due_tail->next_due = c;
	else
		sb->due_head = c;
	sb->due_tail = c;
	if (sb->due_head == c)
		arm_due(sb);
}

void
sb_charge_complete(struct sb *sb, struct sb_charge *c, bool callbacks)
{
	if (c->state != SB_PENDING)
		return;
	c->state = c->outcome;
	c->done_ms = sb_now_ms();
	if (sb_log_on(sb, SB_LOG_DEBUG))
		sb_log(sb, SB_LOG_DEBUG,
		       "event=charge_done provider=%s ref=%s state=%s code=%s",
		       sb_prov_names[c->prov], c->ref, sb_state_names[c->state],
		       c->code);
	if (callbacks)
		sb_send_callbacks(sb, c, NULL, NULL);
}

void
sb_due_cb(int fd, short what, void *arg)
{
	struct sb *sb = arg;
	int64_t now = sb_mono_ms();
	int n = 0;

	(void)fd;
	(void)what;
	/* bounded work per wake-up, so a burst never starves the listener */
	while (sb->due_head != NULL && sb->due_head->due_ms <= now &&
	       n++ < 1024) {
		struct sb_charge *c = sb->due_head;

		sb->due_head = c->next_due;
		if (sb->due_head == NULL)
			sb->due_tail = NULL;
		c->next_due = NULL;
		sb_charge_complete(sb, c, true);
	}
	arm_due(sb);
}

/* ------------------------------------------------------------ report */

static void
render_charge(struct evbuffer *out, const struct sb_charge *c, bool first)
{
	json_t *j = json_pack(
	    "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i}",
	    "provider", sb_prov_names[c->prov], "op", sb_kind_names[c->kind],
	    "provider_ref", c->ref, "client_ref", c->cref, "msisdn", c->msisdn,
	    "amount", "", "currency", c->currency, "state",
	    sb_state_names[c->state], "code", c->code, "callbacks_sent",
	    (json_int_t)c->callbacks_sent, "callbacks_ok",
	    (json_int_t)c->callbacks_ok);
	char amt[32];
	char *s;

	if (j == NULL)
		abort();
	sb_amount_fmt(amt, sizeof(amt), c->cents);
	json_object_set_new(j, "amount", json_string(amt));
	if (c->alt[0] != '\0')
		json_object_set_new(j, "alt_ref", json_string(c->alt));
	s = json_dumps(j, JSON_COMPACT);
	if (s == NULL)
		abort();
	evbuffer_add_printf(out, "%s%s", first ? "" : ",", s);
	free(s);
	json_decref(j);
}

/* Whether c counts for "by_client_ref_succeeded_max". */
static bool
counts(const struct sb_charge *c)
{
	return c->cref[0] != '\0' && c->state == SB_SUCCEEDED;
}

void
sb_ledger_render(struct sb *sb, struct evbuffer *out, const char *prov,
                 const char *cref)
{
	const struct sb_htab *t = &sb->idx[SB_IDX_CREF];
	size_t i, n = 0;
	int64_t max = 0;
	uint64_t by_state[4] = {0};

	evbuffer_add_printf(out, "{\"charges\":[");
	for (i = 0; i < sb->n_all; i++) {
		const struct sb_charge *c = sb->all[i];

		if (prov != NULL && strcmp(prov, sb_prov_names[c->prov]) != 0)
			continue;
		if (cref != NULL && strcmp(cref, c->cref) != 0)
			continue;
		by_state[c->state]++;
		render_charge(out, c, n++ == 0);
	}
	/* For each client reference (per provider), the number of its
	 * charges in state succeeded: a chain holds every charge whose key
	 * hashes there, so count each distinct key at its first charge. */
	for (i = 0; i < t->cap; i++) {
		const struct sb_charge *a, *b, *p;

		for (a = t->b[i]; a != NULL; a = a->next[SB_IDX_CREF]) {
			int64_t k = 0;
			bool seen = false;

			for (p = t->b[i]; p != a; p = p->next[SB_IDX_CREF])
				if (p->prov == a->prov &&
				    strcmp(p->cref, a->cref) == 0) {
					seen = true;
					break;
				}
			if (seen || (prov != NULL &&
			             strcmp(prov, sb_prov_names[a->prov]) != 0))
				continue;
			for (b = a; b != NULL; b = b->next[SB_IDX_CREF])
				if (b->prov == a->prov && counts(b) &&
				    strcmp(b->cref, a->cref) == 0)
					k++;
			if (k > max)
				max = k;
		}
	}
	evbuffer_add_printf(
	    out,
	    "],\"by_client_ref_succeeded_max\":%" PRId64
	    ",\"count\":%zu,\"pending\":%" PRIu64 ",\"succeeded\":%" PRIu64
	    ",\"failed\":%" PRIu64 ",\"reversed\":%" PRIu64 "}",
	    max, n, by_state[0], by_state[1], by_state[2], by_state[3]);
}

/* ------------------------------------------------------------ tokens */

/* Token text: 16 hex serial, 12 hex expiry (unix s), 2 hex kind, then
 * 24 hex of HMAC-SHA256 over those 30 characters: 54 characters. */
#define TOK_BODY 30
#define TOK_MAC  24

void
sb_token_issue(struct sb *sb, enum sb_op kind, int64_t ttl_s, char *dst,
               size_t cap)
{
	uint8_t mac[32];
	char body[TOK_BODY + 1];
	char hex[65];
	uint64_t serial = ++sb->token_serial;
	int64_t exp = sb_now_ms() / 1000 + ttl_s;

	snprintf(body, sizeof(body), "%016" PRIx64 "%012" PRIx64 "%02x", serial,
	         (uint64_t)exp & 0xffffffffffffu, (unsigned)kind);
	sb_hmac256(mac, sb->token_key, sizeof(sb->token_key), body, TOK_BODY);
	sb_hex(hex, mac, sizeof(mac));
	snprintf(dst, cap, "%s%.*s", body, TOK_MAC, hex);
	sb->token_latest[kind] = serial;
}

static uint64_t
hexval(const char *s, size_t n, bool *ok)
{
	uint64_t v = 0;

	while (n-- > 0) {
		char ch = *s++;
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
		        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
		                                 : -1;
		if (d < 0) {
			*ok = false;
			return 0;
		}
		v = v << 4 | (uint64_t)d;
	}
	return v;
}

enum sb_tok_rc
sb_token_check(struct sb *sb, enum sb_op kind, const char *tok)
{
	uint8_t mac[32];
	char hex[65];
	bool ok = true;
	uint64_t serial, exp, k;

	if (tok == NULL || strlen(tok) != TOK_BODY + TOK_MAC)
		return SB_TOK_INVALID;
	sb_hmac256(mac, sb->token_key, sizeof(sb->token_key), tok, TOK_BODY);
	sb_hex(hex, mac, sizeof(mac));
	if (!sb_ct_eq(hex, tok + TOK_BODY, TOK_MAC))
		return SB_TOK_INVALID;
	serial = hexval(tok, 16, &ok);
	exp = hexval(tok + 16, 12, &ok);
	k = hexval(tok + 28, 2, &ok);
	if (!ok || k != (uint64_t)kind)
		return SB_TOK_INVALID;
	if (serial <= sb->token_min_serial ||
	    (int64_t)exp <= sb_now_ms() / 1000)
		return SB_TOK_EXPIRED;
	if (kind == SB_OP_MPESA_OAUTH && sb->cr.mpesa_single_token &&
	    serial != sb->token_latest[kind])
		return SB_TOK_EXPIRED;
	return SB_TOK_OK;
}

const char *
sb_bearer(const char *auth)
{
	if (auth == NULL || strncmp(auth, "Bearer ", 7) != 0)
		return NULL;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return *auth ? auth : NULL;
}

bool
sb_basic_ok(const char *auth, const char *user, const char *pass)
{
	char want[512], plain[512];
	uint8_t got[512];
	long n;
	int m;

	if (auth == NULL || strncmp(auth, "Basic ", 6) != 0)
		return false;
	auth += 6;
	while (*auth == ' ')
		auth++;
	if (strlen(auth) > 4 * (sizeof(got) / 3))
		return false;
	n = sb_unb64(got, sizeof(got), auth);
	m = snprintf(plain, sizeof(plain), "%s:%s", user, pass);
	if (n < 0 || m < 0 || (size_t)m >= sizeof(plain) || n != m)
		return false;
	memcpy(want, plain, (size_t)m);
	return sb_ct_eq(got, want, (size_t)m) != 0;
}
