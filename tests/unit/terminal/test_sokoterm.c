/*
 * test_sokoterm.c - unit tests for libsokoterm (terminal/): the I/O-free
 * engine driven byte by byte against an in-test fake server built from the
 * protocols/ codec (server side of LOGIN/LOGIN_OK with K_t, answers with
 * chosen codes, dropped replies, replayed frames), the spec vectors of
 * docs/pos-protocol.md §10 byte for byte, the offline policy, queue replay
 * and durability, and a failing-allocator loop (STYLE.md §12).
 */
#include "sokoterm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "pos.h"
#include "queue.h"
#include "sha256.h"
#include "check.h"

#define T0 1735689600000u /* 2025-01-01T00:00:00Z */

static char dir[64];
static int path_n;

/* A fresh queue file path in the test directory. */
static const char *
new_path(char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/q%d.db", dir, path_n++);
	return buf;
}

static size_t
unhex(uint8_t *out, const char *hex)
{
	size_t i, n = strlen(hex) / 2;

	for (i = 0; i < n; i++) {
		unsigned v;

		sscanf(hex + 2 * i, "%2x", &v);
		out[i] = (uint8_t)v;
	}
	return n;
}

/* ---- fake server ------------------------------------------------------ */

#define SRV_MAX 1024

struct srv {
	uint8_t kt[POS_KEY_LEN], ks[POS_KEY_LEN];
	bool is_up;
	uint64_t last_rx, next_tx;
	uint8_t in[3 * POS_FRAME_MAX];
	size_t in_len;
	uint8_t out[16 * POS_FRAME_MAX];
	size_t out_len;
	/* behaviour */
	unsigned money_code; /* outcome of new money requests */
	unsigned refuse;     /* != 0: refuse money requests T|0xC000 */
	bool is_drop;        /* process, but send no answer */
	bool is_ignore;      /* lost before the server: no record at all */
	bool is_bad_mac;     /* LOGIN_OK with a wrong MAC */
	bool is_bad_nonce;   /* LOGIN_OK echoing another nonce */
	bool is_eod_mismatch; /* EOD_TOTALS: answer one more transfer */
	/* the last EOD_TOTALS received */
	uint64_t eod_batch;
	size_t eod_n;
	struct pos_total eod_lines[POS_TOTALS_MAX];
	size_t n_bad;        /* frames from the terminal that failed checks */
	/* what arrived */
	size_t n_req;
	uint16_t req_type[SRV_MAX];
	uint64_t req_counter[SRV_MAX];
	uint8_t req_txn[SRV_MAX][POS_ID_LEN];
	/* the server's ledger */
	size_t n_txn;
	uint8_t txn[SRV_MAX][POS_ID_LEN];
	unsigned txn_code[SRV_MAX];
	size_t n_advice;
	uint8_t advice[SRV_MAX][POS_ID_LEN];
	size_t n_ack;
	uint8_t last_frame[POS_FRAME_MAX];
	size_t last_len;
	struct pos_msg m, r;
};

static void
srv_init(struct srv *s)
{
	size_t i;

	memset(s, 0, sizeof *s);
	for (i = 0; i < POS_KEY_LEN; i++)
		s->kt[i] = (uint8_t)i;
}

static void
srv_send(struct srv *s, uint32_t req_id, const struct pos_msg *m)
{
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0;
	int rc;

	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.type = m->type;
	h.req_id = req_id;
	h.counter = s->next_tx++;
	rc = pos_encode(s->out + s->out_len, sizeof s->out - s->out_len, &h, m,
	                s->ks, &n, &why);
	if (rc != CODEC_OK) {
		fprintf(stderr, "srv_send: %s\n", why);
		abort();
	}
	memcpy(s->last_frame, s->out + s->out_len, n);
	s->last_len = n;
	s->out_len += n;
}

static long
srv_find(const struct srv *s, const uint8_t *id)
{
	size_t i;

	for (i = 0; i < s->n_txn; i++)
		if (memcmp(s->txn[i], id, POS_ID_LEN) == 0)
			return (long)i;
	return -1;
}

static void
srv_add(struct srv *s, const uint8_t *id, unsigned code)
{
	memcpy(s->txn[s->n_txn], id, POS_ID_LEN);
	s->txn_code[s->n_txn++] = code;
}

/* A money request: ledger + result fields of the response in *r. */
#define SRV_RESULT(R, id, code_, orig)                                         \
	do {                                                                   \
		(R).code = (code_);                                            \
		memcpy((R).txn_id, (id), POS_ID_LEN);                          \
		(R).ref.ptr = (const uint8_t *)"REF1";                         \
		(R).ref.len = 4;                                               \
		(R).has_ref = true;                                            \
		if ((code_) == POS_CODE_DUPLICATE) {                           \
			(R).orig_code = (orig);                                \
			(R).has_orig_code = true;                              \
		}                                                              \
	} while (0)

static void
srv_login(struct srv *s, const struct pos_frame *f)
{
	const char *why = "";
	uint8_t cn[POS_NONCE_LEN], sn[POS_NONCE_LEN];
	struct pos_hdr h;
	size_t i, n = 0;

	if (pos_frame_open(&s->m, f, s->kt, POS_T2S, NULL, &why) !=
	        POS_CODE_APPROVED ||
	    s->m.type != POS_MSG_LOGIN) {
		s->n_bad++;
		return;
	}
	memcpy(cn, s->m.u.login.client_nonce, POS_NONCE_LEN);
	for (i = 0; i < POS_NONCE_LEN; i++)
		sn[i] = (uint8_t)(0x20 + i);
	pos_session_key(s->ks, s->kt, s->m.u.login.terminal_id.ptr,
	                s->m.u.login.terminal_id.len, cn, sn);
	memset(&s->r, 0, sizeof s->r);
	s->r.type = POS_MSG_LOGIN_OK;
	memcpy(s->r.u.login_ok.server_nonce, sn, POS_NONCE_LEN);
	memcpy(s->r.u.login_ok.client_nonce, cn, POS_NONCE_LEN);
	if (s->is_bad_nonce)
		s->r.u.login_ok.client_nonce[0] ^= 1;
	s->r.u.login_ok.time_ms = T0;
	s->r.u.login_ok.session_id = 42;
	s->r.u.login_ok.max_frame = POS_FRAME_MAX;
	s->r.u.login_ok.heartbeat_s = 30;
	s->r.u.login_ok.max_inflight = 8;
	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.type = POS_MSG_LOGIN_OK;
	h.req_id = f->hdr.req_id;
	pos_encode(s->out + s->out_len, sizeof s->out - s->out_len, &h, &s->r,
	           s->kt, &n, &why);
	if (s->is_bad_mac)
		s->out[s->out_len + n - 1] ^= 1;
	s->out_len += n;
	s->is_up = true;
	s->last_rx = 0;
	s->next_tx = 1;
}

static void
srv_money(struct srv *s, uint32_t req_id, const uint8_t *id, uint16_t resp_type)
{
	long k = srv_find(s, id);
	unsigned code;

	memset(&s->r, 0, sizeof s->r);
	if (s->refuse != 0) {
		s->r.type = (uint16_t)((resp_type & 0x3fff) | POS_TYPE_FAIL);
		s->r.u.error.code = s->refuse;
		if (!s->is_drop)
			srv_send(s, req_id, &s->r);
		return;
	}
	s->r.type = resp_type;
	if (k >= 0) {
		code = POS_CODE_DUPLICATE;
	} else {
		code = resp_type == POS_MSG_COLLECT_RESP ? POS_CODE_PENDING
		                                         : s->money_code;
		srv_add(s, id, code);
	}
	/* every result-shaped body starts with the same members */
	switch (resp_type) {
	case POS_MSG_BILL_PAY_RESP:
		SRV_RESULT(s->r.u.bill_pay_resp, id, code,
		           k >= 0 ? s->txn_code[k] : 0);
		s->r.u.bill_pay_resp.token.ptr =
		    (const uint8_t *)"12345678901234567890";
		s->r.u.bill_pay_resp.token.len = 20;
		s->r.u.bill_pay_resp.has_token = true;
		break;
	default:
		SRV_RESULT(s->r.u.cash_in_resp, id, code,
		           k >= 0 ? s->txn_code[k] : 0);
		break;
	}
	if (!s->is_drop)
		srv_send(s, req_id, &s->r);
}

static void
srv_request(struct srv *s, const struct pos_frame *f)
{
	const char *why = "";
	struct pos_msg *m = &s->m, *r = &s->r;
	uint32_t rid = f->hdr.req_id;
	size_t i;
	long k;

	if (pos_frame_open(m, f, s->ks, POS_T2S, &s->last_rx, &why) !=
	    POS_CODE_APPROVED) {
		s->n_bad++;
		return;
	}
	if (s->is_ignore)
		return;
	if (s->n_req < SRV_MAX) {
		s->req_type[s->n_req] = m->type;
		s->req_counter[s->n_req] = f->hdr.counter;
		/* txn_id is key 1 of every money request, STATUS, REVERSAL */
		if (m->type >= POS_MSG_COLLECT && m->type <= POS_MSG_RECEIPT &&
		    m->type != POS_MSG_BILL_VALIDATE)
			memcpy(s->req_txn[s->n_req], m->u.cash_in.txn_id,
			       POS_ID_LEN);
		s->n_req++;
	}
	memset(r, 0, sizeof *r);
	switch (m->type) {
	case POS_MSG_ECHO:
		r->type = POS_MSG_ECHO_RESP;
		r->u.echo_resp.time_ms = T0;
		break;
	case POS_MSG_COLLECT:
	case POS_MSG_CASH_IN:
	case POS_MSG_CASH_OUT:
	case POS_MSG_FLOAT_TRANSFER:
	case POS_MSG_BILL_PAY:
		srv_money(s, rid, m->u.cash_in.txn_id,
		          (uint16_t)(m->type | POS_TYPE_RESP));
		return;
	case POS_MSG_STATUS:
		k = srv_find(s, m->u.status.txn_id);
		r->type = POS_MSG_STATUS_RESP;
		SRV_RESULT(r->u.status_resp, m->u.status.txn_id,
		           k >= 0 ? s->txn_code[k] : POS_CODE_UNKNOWN_TXN, 0);
		break;
	case POS_MSG_REVERSAL:
		k = srv_find(s, m->u.reversal.txn_id);
		if (k >= 0)
			s->txn_code[k] = POS_CODE_REVERSED;
		else
			srv_add(s, m->u.reversal.txn_id, POS_CODE_REVERSED);
		r->type = POS_MSG_REVERSAL_RESP;
		SRV_RESULT(r->u.reversal_resp, m->u.reversal.txn_id,
		           POS_CODE_APPROVED, 0);
		break;
	case POS_MSG_RECEIPT:
		k = srv_find(s, m->u.receipt.txn_id);
		r->type = POS_MSG_RECEIPT_RESP;
		SRV_RESULT(r->u.receipt_resp, m->u.receipt.txn_id,
		           k >= 0 ? s->txn_code[k] : POS_CODE_UNKNOWN_TXN, 0);
		r->u.receipt_resp.lines.ptr = (const uint8_t *)"line1\nline2";
		r->u.receipt_resp.lines.len = 11;
		r->u.receipt_resp.has_lines = true;
		break;
	case POS_MSG_BILL_VALIDATE:
		r->type = POS_MSG_BILL_VALIDATE_RESP;
		r->u.bill_validate_resp.code = POS_CODE_APPROVED;
		r->u.bill_validate_resp.customer_name.ptr =
		    (const uint8_t *)"JANE DOE";
		r->u.bill_validate_resp.customer_name.len = 8;
		r->u.bill_validate_resp.has_customer_name = true;
		r->u.bill_validate_resp.amount_due = 1234;
		r->u.bill_validate_resp.has_amount_due = true;
		break;
	case POS_MSG_ADVICE_BATCH:
		r->type = POS_MSG_ADVICE_BATCH_RESP;
		r->u.advice_batch_resp.code = POS_CODE_APPROVED;
		for (i = 0; i < m->u.advice_batch.n_items; i++) {
			const uint8_t *id = m->u.advice_batch.items[i].txn_id;
			struct pos_advice_result *a =
			    &r->u.advice_batch_resp.results[i];

			k = srv_find(s, id);
			a->code = k >= 0 ? POS_CODE_DUPLICATE : POS_CODE_STORED;
			if (k >= 0) {
				a->orig_code = s->txn_code[k];
				a->has_orig_code = true;
			} else {
				srv_add(s, id, POS_CODE_STORED);
			}
			memcpy(a->txn_id, id, POS_ID_LEN);
			memcpy(s->advice[s->n_advice++], id, POS_ID_LEN);
		}
		r->u.advice_batch_resp.n_results = m->u.advice_batch.n_items;
		break;
	case POS_MSG_EOD_TOTALS:
		/* the server's totals are the terminal's, or one more
		 * FLOAT_TRANSFER of 1 KES (a transaction it never saw) */
		s->eod_batch = m->u.eod_totals.batch_no;
		s->eod_n = m->u.eod_totals.n_totals;
		memcpy(s->eod_lines, m->u.eod_totals.totals,
		       sizeof s->eod_lines);
		r->type = POS_MSG_EOD_TOTALS_RESP;
		r->u.eod_totals_resp.batch_no = m->u.eod_totals.batch_no;
		r->u.eod_totals_resp.n_totals = m->u.eod_totals.n_totals;
		memcpy(r->u.eod_totals_resp.totals, m->u.eod_totals.totals,
		       sizeof r->u.eod_totals_resp.totals);
		r->u.eod_totals_resp.code = POS_CODE_APPROVED;
		if (s->is_eod_mismatch) {
			struct pos_total *l = &r->u.eod_totals_resp.totals
			                          [r->u.eod_totals_resp.n_totals++];

			l->type = POS_MSG_FLOAT_TRANSFER;
			l->currency = 404;
			l->count = 1;
			l->sum = 100;
			r->u.eod_totals_resp.code = POS_CODE_TOTALS_MISMATCH;
		}
		break;
	case POS_MSG_COLLECT_RESULT_ACK:
		s->n_ack++;
		return;
	default:
		return;
	}
	if (!s->is_drop)
		srv_send(s, rid, r);
}

static void
srv_feed(struct srv *s, const uint8_t *p, size_t len)
{
	struct pos_frame f;
	const char *why = "";
	size_t used;

	if (len > sizeof s->in - s->in_len)
		abort();
	memcpy(s->in + s->in_len, p, len);
	s->in_len += len;
	for (;;) {
		int rc = pos_frame_decode(&f, s->in, s->in_len, &used, &why);

		if (rc == CODEC_NEED_MORE)
			return;
		if (rc == CODEC_BAD) {
			s->n_bad++;
			s->in_len = 0;
			return;
		}
		if (!s->is_up)
			srv_login(s, &f);
		else
			srv_request(s, &f);
		memmove(s->in, s->in + used, s->in_len - used);
		s->in_len -= used;
	}
}

/* The terminal dropped the link: the server side forgets the session. */
static void
srv_drop_link(struct srv *s)
{
	s->is_up = false;
	s->in_len = s->out_len = 0;
}

/* ---- terminal harness -------------------------------------------------- */

#define REC_MAX 512

struct rec {
	enum sokoterm_event_type type;
	enum sokoterm_op op;
	uint64_t op_id;
	uint8_t txn_id[SOKOTERM_ID_LEN];
	unsigned code;
	enum sokoterm_err err;
	bool is_offline, is_duplicate;
	char token[65], ref[33], name[65], lines[64];
	uint64_t balance;
	uint32_t batch_no; /* EOD_TOTALS */
	size_t n_totals, n_server_totals;
	struct sokoterm_total totals[4], server_totals[4];
};

struct term {
	struct sokoterm *t;
	uint64_t now;
	uint8_t script[64]; /* random bytes handed out first */
	size_t n_script, script_pos;
	uint64_t rng;
	bool is_rng_fail;
	size_t n_ev;
	struct rec ev[REC_MAX];
	size_t n_stored;
	uint8_t stored[REC_MAX][SOKOTERM_ID_LEN]; /* STORED fired for */
	const char *path; /* the queue file (t_config) */
};

static int
t_random(void *ctx, uint8_t *buf, size_t len)
{
	struct term *tm = ctx;
	size_t i;

	if (tm->is_rng_fail)
		return -1;
	for (i = 0; i < len; i++) {
		if (tm->script_pos < tm->n_script) {
			buf[i] = tm->script[tm->script_pos++];
			continue;
		}
		tm->rng ^= tm->rng << 13;
		tm->rng ^= tm->rng >> 7;
		tm->rng ^= tm->rng << 17;
		buf[i] = (uint8_t)tm->rng;
	}
	return 0;
}

static void
t_event(void *ctx, const struct sokoterm_event *ev)
{
	struct term *tm = ctx;
	struct rec *r;

	if (ev->type == SOKOTERM_EV_STORED && tm->n_stored < REC_MAX)
		memcpy(tm->stored[tm->n_stored++], ev->txn_id, SOKOTERM_ID_LEN);
	if (tm->n_ev >= REC_MAX)
		return;
	r = &tm->ev[tm->n_ev++];
	memset(r, 0, sizeof *r);
	r->type = ev->type;
	r->op = ev->op;
	r->op_id = ev->op_id;
	memcpy(r->txn_id, ev->txn_id, SOKOTERM_ID_LEN);
	r->code = ev->code;
	r->err = ev->err;
	r->is_offline = ev->is_offline;
	r->is_duplicate = ev->is_duplicate;
	r->balance = ev->balance;
	snprintf(r->token, sizeof r->token, "%s", ev->token);
	snprintf(r->ref, sizeof r->ref, "%s", ev->ref);
	snprintf(r->name, sizeof r->name, "%s", ev->customer_name);
	snprintf(r->lines, sizeof r->lines, "%s", ev->lines);
	r->batch_no = ev->batch_no;
	r->n_totals = ev->n_totals;
	r->n_server_totals = ev->n_server_totals;
	if (ev->n_totals > 0)
		memcpy(r->totals, ev->totals,
		       (ev->n_totals < 4 ? ev->n_totals : 4) *
		           sizeof *ev->totals);
	if (ev->n_server_totals > 0)
		memcpy(r->server_totals, ev->server_totals,
		       (ev->n_server_totals < 4 ? ev->n_server_totals : 4) *
		           sizeof *ev->server_totals);
}

static const uint8_t *
test_key(void)
{
	static const uint8_t k[POS_KEY_LEN] = {
	    0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
	    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

	return k;
}

static struct sokoterm_config
t_config(struct term *tm, const char *path)
{
	struct sokoterm_config c;

	memset(&c, 0, sizeof c);
	c.terminal_id = "T-000123";
	c.key = test_key();
	c.firmware = "soko-pos-sim 1.0.0";
	c.queue_path = path;
	tm->path = path;
	c.random = t_random;
	c.random_ctx = tm;
	c.on_event = t_event;
	c.event_ctx = tm;
	c.offline.allowed_ops = SOKOTERM_OP_BIT(SOKOTERM_OP_BILL_PAY) |
	                        SOKOTERM_OP_BIT(SOKOTERM_OP_COLLECT);
	c.offline.floor_limit = 100000;
	c.offline.total_limit = 10000000;
	c.offline.max_entries = 200;
	return c;
}

static int
term_open_cfg(struct term *tm, const struct sokoterm_config *c)
{
	memset(tm, 0, sizeof *tm);
	tm->now = T0;
	tm->rng = 0x9e3779b97f4a7c15u + (uint64_t)path_n;
	tm->path = c->queue_path;
	enum sokoterm_err rc = sokoterm_new(&tm->t, c);

	/* the time, as firmware gives it right after sokoterm_new
	 * (sokoterm.h): offline entries need one */
	return (int)(rc != SOKOTERM_OK ? rc : sokoterm_tick(tm->t, tm->now));
}

static int
term_open(struct term *tm, const char *path)
{
	struct sokoterm_config c;
	int rc;

	memset(tm, 0, sizeof *tm);
	c = t_config(tm, path);
	rc = term_open_cfg(tm, &c);
	return rc;
}

/* Moves bytes both ways until both sides are quiet; the terminal is fed
 * one byte at a time. */
static void
xfer(struct term *tm, struct srv *s)
{
	static uint8_t buf[sizeof((struct srv *)0)->out];
	const uint8_t *p;
	size_t len, i, n;
	int round;

	for (round = 0; round < 10000; round++) {
		bool is_moved = false;

		sokoterm_outbox(tm->t, &p, &len);
		if (len > 0) {
			srv_feed(s, p, len);
			sokoterm_sent(tm->t, len);
			is_moved = true;
		}
		if (s->out_len > 0) {
			n = s->out_len;
			memcpy(buf, s->out, n);
			s->out_len = 0;
			for (i = 0; i < n; i++)
				if (sokoterm_feed(tm->t, buf + i, 1) !=
				    SOKOTERM_OK)
					break;
			is_moved = true;
		}
		if (!is_moved)
			return;
	}
}

static void
tick(struct term *tm, struct srv *s, uint64_t ms)
{
	tm->now += ms;
	sokoterm_tick(tm->t, tm->now);
	if (s != NULL)
		xfer(tm, s);
}

static int
login(struct term *tm, struct srv *s)
{
	if (sokoterm_connect(tm->t, tm->now) != SOKOTERM_OK)
		return -1;
	xfer(tm, s);
	return sokoterm_state(tm->t) == SOKOTERM_READY ? 0 : -1;
}

static void
term_close(struct term *tm)
{
	sokoterm_free(tm->t);
	tm->t = NULL;
}

/* Last recorded event of type for op_id (any op_id if 0), or NULL. */
static const struct rec *
find_ev(const struct term *tm, enum sokoterm_event_type type, uint64_t op_id)
{
	size_t i;

	for (i = tm->n_ev; i-- > 0;)
		if (tm->ev[i].type == type &&
		    (op_id == 0 || tm->ev[i].op_id == op_id))
			return &tm->ev[i];
	return NULL;
}

static size_t
count_ev(const struct term *tm, enum sokoterm_event_type type)
{
	size_t i, n = 0;

	for (i = 0; i < tm->n_ev; i++)
		n += tm->ev[i].type == type;
	return n;
}

static size_t
count_req(const struct srv *s, uint16_t type)
{
	size_t i, n = 0;

	for (i = 0; i < s->n_req; i++)
		n += s->req_type[i] == type;
	return n;
}

static struct sokoterm_request
req_money(enum sokoterm_op op, uint64_t amount)
{
	struct sokoterm_request r;

	memset(&r, 0, sizeof r);
	r.op = op;
	r.amount = amount;
	r.currency = 404;
	r.msisdn = "254712345678";
	r.provider = "mpesa";
	r.to_agent = "A-0042";
	r.biller = "KPLC";
	r.account = "12345678";
	return r;
}

static unsigned
q_code(struct term *tm, const uint8_t *id, bool *is_done)
{
	unsigned code = 999;

	*is_done = false;
	if (sokoterm_queue_lookup(tm->t, id, is_done, &code) != SOKOTERM_OK)
		return 998;
	return code;
}

/* Open rows and offline sum as the file says (another connection),
 * or -1 on any failure. */
static int
file_stats(const char *path, uint64_t *n, uint64_t *sum)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db,
	                       "SELECT count(*), coalesce(sum(CASE WHEN "
	                       "is_offline THEN amount END), 0) FROM q "
	                       "WHERE state <> 9",
	                       -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW) {
		*n = (uint64_t)sqlite3_column_int64(st, 0);
		*sum = (uint64_t)sqlite3_column_int64(st, 1);
		rc = 0;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}

/* Open rows (the library's running totals), 997 when they differ from
 * what the file holds: the totals must never drift. */
static uint64_t
q_open(struct term *tm)
{
	uint64_t n = 999, sum, fn = 0, fsum = 0;

	if (sokoterm_queue_count(tm->t, &n, &sum) != SOKOTERM_OK)
		return 998;
	if (tm->path != NULL && file_stats(tm->path, &fn, &fsum) == 0 &&
	    (fn != n || fsum != sum))
		return 997;
	return n;
}

/* ---- tests: login and vectors ----------------------------------------- */

/* §10.2-10.5: with the spec's nonce and txn_id from the random function,
 * the terminal's frames are the vectors byte for byte, and it accepts the
 * server's vectors. */
static void
test_spec_vectors(void)
{
	static const char login_hex[] =
	    "005101000001000000010000000000000000a30168542d3030303132330250101"
	    "112131415161718191a1b1c1d1e1f0372736f6b6f2d706f732d73696d20312e30"
	    "2e302eab386777ebb5344d34cce5e0be638a";
	static const char login_ok_hex[] =
	    "005b01008001000000010000000000000000a70150202122232425262728292a2"
	    "b2c2d2e2f0250101112131415161718191a1b1c1d1e1f031b000001941f297c00"
	    "04182a0519100006181e0708be0953a306b55e040b62c30b90803717";
	static const char ft_hex[] =
	    "004501000013000000020000000000000001a401506f1c2b8e4d3a4f5e9a7b0c1"
	    "d2e3f4a5b021a000249f0031901940466412d30303432ecc9d3e2683bfa8c3cd7"
	    "a69a389c5bf8";
	static const char ft_resp_hex[] =
	    "005901008013000000020000000000000001a5010002506f1c2b8e4d3a4f5e9a7"
	    "b0c1d2e3f4a5b037246542d32303235303130312d303030303031041b00000194"
	    "1f2980d2051a004a01506518594389478a81614570663f0067ae";
	uint8_t want[256], got_txn[SOKOTERM_ID_LEN];
	struct sokoterm_request r =
	    req_money(SOKOTERM_OP_FLOAT_TRANSFER, 150000);
	const struct rec *ev;
	struct term tm;
	const uint8_t *p;
	size_t n, len, i;
	char path[128];
	uint64_t op = 0;
	bool is_done;

	struct sokoterm_config c;

	/* the spec's txn_id is a version-4 UUID */
	c = t_config(&tm, new_path(path, sizeof path));
	c.is_txn_id_v4 = true;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	for (i = 0; i < 16; i++)
		tm.script[i] = (uint8_t)(0x10 + i);
	unhex(tm.script + 16, "6f1c2b8e4d3a4f5e9a7b0c1d2e3f4a5b");
	tm.n_script = 32;
	CHECK_EQ_INT(sokoterm_connect(tm.t, tm.now), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_LOGGING_IN);
	n = unhex(want, login_hex);
	sokoterm_outbox(tm.t, &p, &len);
	CHECK_EQ_INT(len, n);
	CHECK(len == n && memcmp(p, want, n) == 0);
	sokoterm_sent(tm.t, len);
	n = unhex(want, login_ok_hex);
	for (i = 0; i < n; i++)
		CHECK_EQ_INT(sokoterm_feed(tm.t, want + i, 1), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_READY);
	CHECK(find_ev(&tm, SOKOTERM_EV_LOGIN, 0) != NULL);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, got_txn), SOKOTERM_OK);
	n = unhex(want, ft_hex);
	sokoterm_outbox(tm.t, &p, &len);
	CHECK_EQ_INT(len, n);
	CHECK(len == n && memcmp(p, want, n) == 0);
	sokoterm_sent(tm.t, len);
	/* stored before sent: the STORED event is already there */
	ev = find_ev(&tm, SOKOTERM_EV_STORED, op);
	CHECK(ev != NULL && memcmp(ev->txn_id, want + 21, 16) == 0);
	n = unhex(want, ft_resp_hex);
	CHECK_EQ_INT(sokoterm_feed(tm.t, want, n), SOKOTERM_OK);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL);
	if (ev != NULL) {
		CHECK_EQ_INT(ev->code, SOKOTERM_CODE_APPROVED);
		CHECK_EQ_STR(ev->ref, "FT-20250101-000001");
		CHECK_EQ_INT(ev->balance, 4850000);
	}
	CHECK_EQ_INT(q_code(&tm, got_txn, &is_done), SOKOTERM_CODE_APPROVED);
	CHECK(is_done);
	term_close(&tm);
}

static void
test_login_ok(void)
{
	struct term tm;
	struct srv s;
	char path[128];

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_OFFLINE);
	CHECK_EQ_INT(login(&tm, &s), 0);
	CHECK_EQ_INT(s.n_bad, 0);
	CHECK(find_ev(&tm, SOKOTERM_EV_LOGIN, 0) != NULL);
	CHECK_EQ_INT(sokoterm_connect(tm.t, tm.now), SOKOTERM_ERR_STATE);
	term_close(&tm);
}

static void
test_login_bad_mac_refused(void)
{
	struct term tm;
	struct srv s;
	char path[128];
	const struct rec *ev;

	srv_init(&s);
	s.is_bad_mac = true;
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), -1);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	CHECK(find_ev(&tm, SOKOTERM_EV_LOGIN, 0) == NULL);
	ev = find_ev(&tm, SOKOTERM_EV_CLOSE, 0);
	CHECK(ev != NULL && ev->err == SOKOTERM_ERR_AUTH);
	sokoterm_disconnect(tm.t);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_OFFLINE);
	/* a fresh login works once the server behaves */
	srv_init(&s);
	CHECK_EQ_INT(login(&tm, &s), 0);
	term_close(&tm);
}

static void
test_login_wrong_nonce_refused(void)
{
	struct term tm;
	struct srv s;
	char path[128];
	const struct rec *ev;

	srv_init(&s);
	s.is_bad_nonce = true;
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), -1);
	ev = find_ev(&tm, SOKOTERM_EV_CLOSE, 0);
	CHECK(ev != NULL && ev->err == SOKOTERM_ERR_AUTH);
	term_close(&tm);
}

/* §10.6: LOGIN_FAIL AUTH_FAILED with a zero MAC is reported, the session
 * closes, and the queue is untouched. */
static void
test_login_fail(void)
{
	uint8_t f[64];
	struct term tm;
	char path[128];
	const struct rec *ev;
	size_t n;

	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_connect(tm.t, tm.now), SOKOTERM_OK);
	n = unhex(f, "00240100c001000000010000000000000000a101182e"
	             "00000000000000000000000000000000");
	CHECK_EQ_INT(sokoterm_feed(tm.t, f, n), SOKOTERM_ERR_AUTH);
	ev = find_ev(&tm, SOKOTERM_EV_LOGIN_FAIL, 0);
	CHECK(ev != NULL && ev->code == 46);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	term_close(&tm);
}

static void
test_login_timeout(void)
{
	struct term tm;
	char path[128];

	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_connect(tm.t, tm.now), SOKOTERM_OK);
	tick(&tm, NULL, 9999);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_LOGGING_IN);
	tick(&tm, NULL, 1);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	term_close(&tm);
}

static void
test_garbage_closes(void)
{
	static const uint8_t junk[] = {0xff, 0xff, 0x01, 0x00};
	struct term tm;
	struct srv s;
	char path[128];

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	CHECK_EQ_INT(sokoterm_feed(tm.t, junk, sizeof junk),
	             SOKOTERM_ERR_PROTOCOL);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	term_close(&tm);
}

/* ---- tests: requests ---------------------------------------------------- */

static void
test_every_request_type(void)
{
	static const enum sokoterm_op money[] = {
	    SOKOTERM_OP_CASH_IN, SOKOTERM_OP_CASH_OUT,
	    SOKOTERM_OP_FLOAT_TRANSFER, SOKOTERM_OP_BILL_PAY};
	uint8_t ids[4][SOKOTERM_ID_LEN], cid[SOKOTERM_ID_LEN];
	struct sokoterm_request r;
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t op = 0, op_c = 0;
	size_t i;
	bool is_done;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	for (i = 0; i < 4; i++) {
		r = req_money(money[i], 1000 + i);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, ids[i]),
		             SOKOTERM_OK);
		xfer(&tm, &s);
		ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
		CHECK(ev != NULL && ev->code == SOKOTERM_CODE_APPROVED &&
		      ev->op == money[i] &&
		      memcmp(ev->txn_id, ids[i], SOKOTERM_ID_LEN) == 0);
		if (money[i] == SOKOTERM_OP_BILL_PAY && ev != NULL)
			CHECK_EQ_STR(ev->token, "12345678901234567890");
		CHECK_EQ_INT(q_code(&tm, ids[i], &is_done), 0);
		CHECK(is_done);
	}
	/* COLLECT: PENDING now, the outcome pushed later and acknowledged */
	r = req_money(SOKOTERM_OP_COLLECT, 500);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op_c, cid), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op_c);
	CHECK(ev != NULL && ev->code == SOKOTERM_CODE_PENDING);
	q_code(&tm, cid, &is_done);
	CHECK(!is_done);
	memset(&s.r, 0, sizeof s.r);
	s.r.type = POS_MSG_COLLECT_RESULT;
	SRV_RESULT(s.r.u.collect_result, cid, POS_CODE_APPROVED, 0);
	/* key 9 (a bill's token) reaches the event */
	s.r.u.collect_result.token.ptr = (const uint8_t *)"TOK-9";
	s.r.u.collect_result.token.len = 5;
	s.r.u.collect_result.has_token = true;
	srv_send(&s, 0, &s.r);
	xfer(&tm, &s);
	CHECK_EQ_INT(q_code(&tm, cid, &is_done), 0);
	CHECK(is_done);
	CHECK_EQ_INT(s.n_ack, 1);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, 0);
	CHECK(ev != NULL && ev->code == SOKOTERM_CODE_APPROVED);
	if (ev != NULL)
		CHECK_EQ_STR(ev->token, "TOK-9");
	/* pushed again (redelivery): acknowledged, not reported twice */
	i = count_ev(&tm, SOKOTERM_EV_RESULT);
	memset(&s.r, 0, sizeof s.r);
	s.r.type = POS_MSG_COLLECT_RESULT;
	SRV_RESULT(s.r.u.collect_result, cid, POS_CODE_APPROVED, 0);
	srv_send(&s, 0, &s.r);
	xfer(&tm, &s);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_RESULT), i);
	CHECK_EQ_INT(s.n_ack, 2);
	/* STATUS, RECEIPT, BILL_VALIDATE, ECHO */
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_STATUS;
	memcpy(r.txn_id, ids[0], SOKOTERM_ID_LEN);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_STATUS && ev->code == 0);
	r.op = SOKOTERM_OP_RECEIPT;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_RECEIPT);
	if (ev != NULL)
		CHECK_EQ_STR(ev->lines, "line1\nline2");
	r = req_money(SOKOTERM_OP_BILL_VALIDATE, 0);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_BILL_VALIDATE);
	if (ev != NULL)
		CHECK_EQ_STR(ev->name, "JANE DOE");
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_ECHO;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_ECHO && ev->code == 0);
	/* REVERSAL of a done transaction: queued, acknowledged, REVERSED */
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_REVERSAL;
	r.reason = 3;
	memcpy(r.txn_id, ids[2], SOKOTERM_ID_LEN);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_REVERSAL && ev->code == 0);
	CHECK_EQ_INT(q_code(&tm, ids[2], &is_done), SOKOTERM_CODE_REVERSED);
	CHECK(is_done);
	CHECK_EQ_INT(q_open(&tm), 0);
	/* missing required fields are refused before anything is stored */
	r = req_money(SOKOTERM_OP_CASH_IN, 1);
	r.msisdn = NULL;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_ERR_ARG);
	r = req_money(SOKOTERM_OP_CASH_IN, 1);
	r.msisdn = "1234567890123456"; /* 16 > 15 */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_ERR_ARG);
	CHECK_EQ_INT(q_open(&tm), 0);
	CHECK_EQ_INT(s.n_bad, 0);
	term_close(&tm);
}

/* EOD_TOTALS (§6.16) from the queue: approved and stored money entries
 * of the batch, not the declined or reversed; one close at a time, none
 * while an outcome is unknown; an unanswered close is sent again with
 * the same number; a mismatch still closes; the numbering survives a
 * reopen of the queue file; batch N again recomputes batch N. */
static void
test_eod_totals(void)
{
	struct sokoterm_request r, eod;
	uint8_t ids[4][SOKOTERM_ID_LEN];
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t op = 0;

	srv_init(&s);
	s.money_code = POS_CODE_APPROVED;
	new_path(path, sizeof path);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	memset(&eod, 0, sizeof eod);
	eod.op = SOKOTERM_OP_EOD_TOTALS;
	/* an empty batch: no lines either side */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->op == SOKOTERM_OP_EOD_TOTALS &&
	      ev->code == SOKOTERM_CODE_APPROVED && ev->batch_no == 1 &&
	      ev->n_totals == 0);
	/* two transfers (one reversed later), a bill, a declined cash-in */
	r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 1000);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[0]), SOKOTERM_OK);
	r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 250);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[1]), SOKOTERM_OK);
	r = req_money(SOKOTERM_OP_BILL_PAY, 700);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[2]), SOKOTERM_OK);
	xfer(&tm, &s);
	s.money_code = 11; /* INSUFFICIENT_FLOAT */
	r = req_money(SOKOTERM_OP_CASH_IN, 5000);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[3]), SOKOTERM_OK);
	xfer(&tm, &s);
	memset(&r, 0, sizeof r);
	r.op = SOKOTERM_OP_REVERSAL;
	memcpy(r.txn_id, ids[1], SOKOTERM_ID_LEN);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	/* the close's answer is lost: RESULT without answer, not closed */
	s.is_drop = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	/* a second close while one is in flight: BUSY */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL),
	             SOKOTERM_ERR_BUSY);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 2);
	CHECK_EQ_INT(s.eod_n, 2); /* FLOAT_TRANSFER 10.00, BILL_PAY 7.00 */
	CHECK(s.eod_lines[0].type == POS_MSG_FLOAT_TRANSFER &&
	      s.eod_lines[0].currency == 404 && s.eod_lines[0].count == 1 &&
	      s.eod_lines[0].sum == 1000);
	CHECK(s.eod_lines[1].type == POS_MSG_BILL_PAY &&
	      s.eod_lines[1].count == 1 && s.eod_lines[1].sum == 700);
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->err == SOKOTERM_ERR_CLOSED);
	/* a new process on the same file sends the same batch again */
	term_close(&tm);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	tm.rng ^= 0x9E3779B97F4A7C15ULL; /* new txn ids in the new process */
	s.is_drop = false;
	s.eod_batch = 0;
	CHECK_EQ_INT(login(&tm, &s), 0);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 2);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->code == SOKOTERM_CODE_APPROVED &&
	      ev->batch_no == 2 && ev->n_totals == 2 &&
	      ev->n_server_totals == 2);
	if (ev != NULL && ev->n_totals == 2)
		CHECK(ev->totals[0].op == SOKOTERM_OP_FLOAT_TRANSFER &&
		      ev->totals[0].sum == 1000 &&
		      ev->totals[1].op == SOKOTERM_OP_BILL_PAY &&
		      ev->totals[1].count == 1);
	/* an outcome not known yet holds the close back */
	s.money_code = POS_CODE_APPROVED;
	s.is_drop = true;
	r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 300);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[0]), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL),
	             SOKOTERM_ERR_BUSY);
	s.is_drop = false;
	tick(&tm, &s, 31000); /* timeout: STATUS resolves it */
	tick(&tm, &s, 1000);
	/* the server counted one more: TOTALS_MISMATCH, closed anyway */
	s.is_eod_mismatch = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, op);
	CHECK(ev != NULL && ev->code == POS_CODE_TOTALS_MISMATCH &&
	      ev->batch_no == 3 && ev->n_totals == 1 &&
	      ev->n_server_totals == 2);
	if (ev != NULL && ev->n_totals == 1)
		CHECK(ev->totals[0].sum == 300 && ev->totals[0].count == 1);
	s.is_eod_mismatch = false;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 4);
	/* batch 2 again: its own entries, recomputed */
	eod.batch_no = 2;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 2);
	CHECK_EQ_INT(s.eod_n, 2);
	/* a number the queue does not know, below its newest: refused */
	eod.batch_no = 3000;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 3000);
	eod.batch_no = 2999;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL),
	             SOKOTERM_ERR_ARG);
	/* the default continues after the newest */
	eod.batch_no = 0;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, &op, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 3001);
	/* offline: STATE */
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL),
	             SOKOTERM_ERR_STATE);
	CHECK_EQ_INT(s.n_bad, 0);
	term_close(&tm);
}

/* COLLECT_RESULTs pushed faster than the outbox drains: the ACKs that
 * find it full wait (up to 8) and go as soon as there is room; past
 * that the server's redelivery after the next login takes over. */
static void
test_ack_retry(void)
{
	struct term tm;
	struct srv s;
	char path[128];
	uint8_t id[SOKOTERM_ID_LEN];
	size_t i, n = 200;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	/* 200 pushes in one go: the terminal takes them all before its
	 * outbox (8 KB) is written once; ~55 bytes per ACK */
	for (i = 0; i < n; i++) {
		memset(id, 0, sizeof id);
		id[0] = (uint8_t)(i + 1);
		id[1] = (uint8_t)(i >> 8);
		memset(&s.r, 0, sizeof s.r);
		s.r.type = POS_MSG_COLLECT_RESULT;
		SRV_RESULT(s.r.u.collect_result, id, POS_CODE_APPROVED, 0);
		srv_send(&s, 0, &s.r);
	}
	xfer(&tm, &s);
	/* what one outbox holds, plus the 8 that waited for room */
	{
		struct pos_hdr h;
		struct pos_msg m;
		uint8_t buf[POS_FRAME_MAX];
		const char *why = "";
		size_t one = 0;

		memset(&h, 0, sizeof h);
		h.ver_major = POS_VER_MAJOR;
		h.type = POS_MSG_COLLECT_RESULT_ACK;
		memset(&m, 0, sizeof m);
		m.type = POS_MSG_COLLECT_RESULT_ACK;
		CHECK_EQ_INT(pos_encode(buf, sizeof buf, &h, &m, s.ks, &one,
		                        &why),
		             CODEC_OK);
		CHECK_EQ_INT(s.n_ack, (2 * POS_FRAME_MAX) / one + 8);
	}
	/* one at a time, every ACK fits: none waits */
	s.n_ack = 0;
	for (i = 0; i < 10; i++) {
		memset(id, 0, sizeof id);
		id[0] = (uint8_t)(i + 1);
		memset(&s.r, 0, sizeof s.r);
		s.r.type = POS_MSG_COLLECT_RESULT;
		SRV_RESULT(s.r.u.collect_result, id, POS_CODE_APPROVED, 0);
		srv_send(&s, 0, &s.r);
		xfer(&tm, &s);
	}
	CHECK_EQ_INT(s.n_ack, 10);
	CHECK_EQ_INT(s.n_bad, 0);
	term_close(&tm);
}

/* Rows in the queue file (all states), or -1. */
static long
file_rows(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	long n = -1;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) ==
	        SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM q", -1, &st, NULL) ==
	        SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* cfg.keep_batches: after each close, the done entries of the closed
 * batches older than the newest keep_batches are deleted; open entries
 * and the newest entry never are (an empty batch closed after a full
 * one leaves the newest row), and new ids still sort after old ones. */
static void
test_eod_prune(void)
{
	struct sokoterm_request r, eod;
	struct sokoterm_config c;
	uint8_t ids[7][SOKOTERM_ID_LEN];
	struct term tm;
	struct srv s;
	char path[128];
	bool is_done;
	int b, k;

	srv_init(&s);
	s.money_code = POS_CODE_APPROVED;
	c = t_config(&tm, new_path(path, sizeof path));
	c.keep_batches = 1;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	memset(&eod, 0, sizeof eod);
	eod.op = SOKOTERM_OP_EOD_TOTALS;
	for (b = 0; b < 3; b++) { /* batches 1-3: two transfers each */
		for (k = 0; k < 2; k++) {
			r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 100);
			CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL,
			                             ids[2 * b + k]),
			             SOKOTERM_OK);
		}
		xfer(&tm, &s);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL),
		             SOKOTERM_OK);
		xfer(&tm, &s);
		CHECK_EQ_INT(s.eod_batch, (uint64_t)b + 1);
		CHECK_EQ_INT(s.eod_n, 1);
		/* the newest closed batch stays; older ones go */
		CHECK_EQ_INT(file_rows(path), 2);
	}
	CHECK_EQ_INT(q_code(&tm, ids[0], &is_done), 998); /* NOT_FOUND */
	CHECK_EQ_INT(q_code(&tm, ids[3], &is_done), 998);
	CHECK_EQ_INT(q_code(&tm, ids[5], &is_done), SOKOTERM_CODE_APPROVED);
	/* an open entry in an old batch stays: a collection still pending */
	r = req_money(SOKOTERM_OP_COLLECT, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[6]), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s); /* batch 4: batch 3 goes */
	CHECK_EQ_INT(file_rows(path), 1);
	/* batch 5 is empty: batch 4's rows would go, but the newest (the
	 * pending collection) is open anyway; done rows of batch 4 none */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(file_rows(path), 1);
	CHECK_EQ_INT(q_code(&tm, ids[6], &is_done), 0);
	CHECK(!is_done);
	/* its outcome comes: done, the newest row: never deleted */
	memset(&s.r, 0, sizeof s.r);
	s.r.type = POS_MSG_COLLECT_RESULT;
	SRV_RESULT(s.r.u.collect_result, ids[6], POS_CODE_APPROVED, 0);
	srv_send(&s, 0, &s.r);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 7);
	CHECK_EQ_INT(file_rows(path), 1);
	/* the next entry still belongs to the open batch (8) only */
	r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[0]), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &eod, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(s.eod_batch, 8);
	CHECK_EQ_INT(s.eod_n, 1);
	CHECK(s.eod_lines[0].count == 1 && s.eod_lines[0].sum == 100);
	CHECK_EQ_INT(s.n_bad, 0);
	term_close(&tm);
}

/* Responses that come back in another order still go to their request. */
static void
test_response_matching(void)
{
	uint8_t ids[3][SOKOTERM_ID_LEN], frames[3][POS_FRAME_MAX];
	size_t lens[3], i, start;
	struct sokoterm_request r;
	uint64_t ops[3];
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	for (i = 0; i < 3; i++) {
		const uint8_t *p;
		size_t len;

		r = req_money(SOKOTERM_OP_CASH_IN, 100 * (i + 1));
		s.money_code = i == 1 ? POS_CODE_INSUFFICIENT_FLOAT : 0;
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &ops[i], ids[i]),
		             SOKOTERM_OK);
		sokoterm_outbox(tm.t, &p, &len);
		start = s.out_len;
		srv_feed(&s, p, len);
		sokoterm_sent(tm.t, len);
		lens[i] = s.out_len - start;
		memcpy(frames[i], s.out + start, lens[i]);
	}
	s.out_len = 0;
	/* the server's counters must still increase in the order sent, so
	 * re-encode: answer 3, then 1, then 2 with fresh counters */
	s.next_tx = 1;
	for (i = 0; i < 3; i++) {
		static const size_t order[3] = {2, 0, 1};
		size_t k = order[i];

		memset(&s.r, 0, sizeof s.r);
		s.r.type = POS_MSG_CASH_IN_RESP;
		SRV_RESULT(s.r.u.cash_in_resp, ids[k],
		           k == 1 ? POS_CODE_INSUFFICIENT_FLOAT : 0, 0);
		/* the req_id of frame k */
		srv_send(&s,
		         (uint32_t)frames[k][6] << 24 |
		             (uint32_t)frames[k][7] << 16 |
		             (uint32_t)frames[k][8] << 8 | frames[k][9],
		         &s.r);
	}
	xfer(&tm, &s);
	for (i = 0; i < 3; i++) {
		ev = find_ev(&tm, SOKOTERM_EV_RESULT, ops[i]);
		CHECK(ev != NULL &&
		      memcmp(ev->txn_id, ids[i], SOKOTERM_ID_LEN) == 0 &&
		      ev->code == (i == 1 ? 11u : 0u));
	}
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_RESULT), 3);
	term_close(&tm);
}

/* Counters go 1, 2, 3 ... per direction; a replayed server frame is
 * refused and closes the session. */
static void
test_counter_and_replay(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 100);
	uint8_t again[POS_FRAME_MAX];
	struct term tm;
	struct srv s;
	char path[128];
	size_t i, n;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	for (i = 0; i < 5; i++) {
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
		             SOKOTERM_OK);
		xfer(&tm, &s);
	}
	CHECK_EQ_INT(s.n_req, 5);
	for (i = 0; i < s.n_req; i++)
		CHECK_EQ_INT(s.req_counter[i], i + 1);
	CHECK_EQ_INT(s.n_bad, 0);
	n = s.last_len;
	memcpy(again, s.last_frame, n);
	CHECK_EQ_INT(sokoterm_feed(tm.t, again, n), SOKOTERM_ERR_PROTOCOL);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	/* a frame with a flipped bit fails the MAC */
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	CHECK_EQ_INT(login(&tm, &s), 0);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	{
		const uint8_t *p;
		size_t len;

		sokoterm_outbox(tm.t, &p, &len);
		srv_feed(&s, p, len);
		sokoterm_sent(tm.t, len);
	}
	s.out[20] ^= 0x01;
	n = s.out_len;
	s.out_len = 0;
	CHECK_EQ_INT(sokoterm_feed(tm.t, s.out, n), SOKOTERM_ERR_AUTH);
	term_close(&tm);
}

/* The same answer twice (fresh counter) changes nothing the second time;
 * a DUPLICATE answer is reported as its orig_code. */
static void
test_duplicate_answers_idempotent(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_OUT, 700);
	uint8_t id[SOKOTERM_ID_LEN];
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t op;
	size_t n_res;
	bool is_done;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id), SOKOTERM_OK);
	xfer(&tm, &s);
	n_res = count_ev(&tm, SOKOTERM_EV_RESULT);
	CHECK_EQ_INT(n_res, 1);
	/* re-send the response with the next counter */
	memset(&s.r, 0, sizeof s.r);
	s.r.type = POS_MSG_CASH_OUT_RESP;
	SRV_RESULT(s.r.u.cash_out_resp, id, POS_CODE_DECLINED, 0);
	srv_send(&s, 77, &s.r);
	xfer(&tm, &s);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_RESULT), n_res);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), 0); /* first answer stays */
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_READY);
	/* server already has it: DUPLICATE with orig_code */
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	s.is_ignore = false;
	{
		uint8_t id2[SOKOTERM_ID_LEN];

		/* lost answer: the server processed it, the terminal asks */
		CHECK_EQ_INT(login(&tm, &s), 0);
		s.is_drop = true;
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id2), SOKOTERM_OK);
		xfer(&tm, &s);
		s.is_drop = false;
		/* resend of the same request (not a new txn): DUPLICATE */
		s.refuse = 0;
		memset(&s.r, 0, sizeof s.r);
		s.r.type = POS_MSG_CASH_OUT_RESP;
		SRV_RESULT(s.r.u.cash_out_resp, id2, POS_CODE_DUPLICATE, 0);
		s.r.u.cash_out_resp.orig_code = POS_CODE_APPROVED;
		s.r.u.cash_out_resp.has_orig_code = true;
		srv_send(&s, 0x7fffffff, &s.r); /* late: no slot matches */
		xfer(&tm, &s);
		ev = find_ev(&tm, SOKOTERM_EV_RESULT, 0);
		CHECK(ev != NULL && ev->is_duplicate && ev->code == 0 &&
		      memcmp(ev->txn_id, id2, SOKOTERM_ID_LEN) == 0);
		CHECK_EQ_INT(q_code(&tm, id2, &is_done), 0);
		CHECK(is_done);
	}
	term_close(&tm);
}

static void
test_heartbeat(void)
{
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 29000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ECHO), 0);
	tick(&tm, &s, 1000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ECHO), 1);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_READY);
	/* unanswered ECHO: close after 10 s */
	s.is_drop = true;
	tick(&tm, &s, 30000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ECHO), 2);
	tick(&tm, &s, 9999);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_READY);
	tick(&tm, &s, 1);
	CHECK_EQ_INT(sokoterm_state(tm.t), SOKOTERM_CLOSING);
	ev = find_ev(&tm, SOKOTERM_EV_CLOSE, 0);
	CHECK(ev != NULL && ev->err == SOKOTERM_ERR_TIMEOUT);
	term_close(&tm);
}

/* §9.2: a lost answer is resolved by STATUS, never by a blind resend. */
static void
test_timeout_status_resolution(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_FLOAT_TRANSFER, 900);
	uint8_t id[SOKOTERM_ID_LEN];
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t op;
	bool is_done;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	/* 1. processed by the server, answer lost */
	s.is_drop = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id), SOKOTERM_OK);
	xfer(&tm, &s);
	s.is_drop = false;
	tick(&tm, &s, 10000); /* the heartbeat keeps the link */
	CHECK(find_ev(&tm, SOKOTERM_EV_DELAYED, op) == NULL);
	tick(&tm, &s, 20000);
	ev = find_ev(&tm, SOKOTERM_EV_DELAYED, op);
	CHECK(ev != NULL && ev->err == SOKOTERM_ERR_TIMEOUT);
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 1);
	CHECK_EQ_INT(count_req(&s, POS_MSG_FLOAT_TRANSFER), 1);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), 0);
	CHECK(is_done);
	ev = find_ev(&tm, SOKOTERM_EV_RESULT, 0);
	CHECK(ev != NULL && ev->code == 0 &&
	      memcmp(ev->txn_id, id, SOKOTERM_ID_LEN) == 0);
	/* 2. lost before the server: STATUS says UNKNOWN_TXN, then the same
	 * request (same txn_id) goes again */
	s.is_ignore = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id), SOKOTERM_OK);
	xfer(&tm, &s);
	s.is_ignore = false;
	tick(&tm, &s, 30000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 2);
	CHECK_EQ_INT(count_req(&s, POS_MSG_FLOAT_TRANSFER), 2);
	CHECK(memcmp(s.req_txn[s.n_req - 1], id, SOKOTERM_ID_LEN) == 0);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), 0);
	CHECK(is_done);
	CHECK_EQ_INT(s.n_txn, 2);
	CHECK_EQ_INT(q_open(&tm), 0);
	term_close(&tm);
}

/* Policy: REVERSAL instead of STATUS, kept queued until acknowledged. */
static void
test_timeout_reversal(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 900);
	uint8_t id[SOKOTERM_ID_LEN];
	struct sokoterm_config c;
	struct term tm;
	struct srv s;
	char path[128];
	bool is_done;

	srv_init(&s);
	c = t_config(&tm, new_path(path, sizeof path));
	c.is_reverse_on_timeout = true;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_OK);
	xfer(&tm, &s);
	/* the REVERSAL is not answered either: link drops, it stays */
	tick(&tm, &s, 30000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_REVERSAL), 1);
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	s.is_drop = false;
	q_code(&tm, id, &is_done);
	CHECK(!is_done);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 2000); /* after its back-off */
	CHECK_EQ_INT(count_req(&s, POS_MSG_REVERSAL), 2);
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 0);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), SOKOTERM_CODE_REVERSED);
	CHECK(is_done);
	term_close(&tm);
}

/* BUSY: not processed, resent with the same txn_id after back-off; held
 * after max_attempts. */
static void
test_busy_retry_and_hold(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 900);
	uint8_t id[SOKOTERM_ID_LEN];
	struct sokoterm_config c;
	const struct rec *ev;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t op;
	bool is_done;
	int i;

	srv_init(&s);
	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.max_attempts = 3;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.refuse = POS_CODE_BUSY;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id), SOKOTERM_OK);
	xfer(&tm, &s);
	ev = find_ev(&tm, SOKOTERM_EV_DELAYED, op);
	CHECK(ev != NULL && ev->code == POS_CODE_BUSY);
	s.refuse = 0;
	tick(&tm, &s, 1000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 2);
	CHECK(memcmp(s.req_txn[s.n_req - 1], id, SOKOTERM_ID_LEN) == 0);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), 0);
	CHECK(is_done);
	/* always BUSY: three attempts, then held (still open) */
	s.refuse = POS_CODE_BUSY;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, id), SOKOTERM_OK);
	for (i = 0; i < 20; i++)
		tick(&tm, &s, 5000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 2 + 3);
	ev = find_ev(&tm, SOKOTERM_EV_HELD, 0);
	CHECK(ev != NULL && memcmp(ev->txn_id, id, SOKOTERM_ID_LEN) == 0);
	q_code(&tm, id, &is_done);
	CHECK(!is_done);
	CHECK_EQ_INT(q_open(&tm), 1);
	term_close(&tm);
}

/* ---- tests: offline -------------------------------------------------- */

/* txn_ids are UUID version 7 by default: the caller's ms in the first 6
 * bytes, version 7, RFC variant, random bits after; one terminal's ids
 * sort in the order they were made (the server's indexes append). */
static void
test_txn_id_v7(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_BILL_PAY, 10);
	uint8_t ids[4][SOKOTERM_ID_LEN];
	struct term tm;
	char path[128];
	uint64_t ms;
	size_t i, k;

	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	for (i = 0; i < 4; i++) {
		/* the clock as last told (tick, connect) */
		tm.now += 1000 * i + (i > 0); /* later, ms apart */
		CHECK_EQ_INT(sokoterm_tick(tm.t, tm.now), SOKOTERM_OK);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[i]),
		             SOKOTERM_OK);
		for (ms = 0, k = 0; k < 6; k++)
			ms = ms << 8 | ids[i][k];
		CHECK_EQ_INT(ms, tm.now);
		CHECK_EQ_INT(ids[i][6] >> 4, 7);
		CHECK_EQ_INT(ids[i][8] >> 6, 2);
		if (i > 0)
			CHECK(memcmp(ids[i - 1], ids[i], SOKOTERM_ID_LEN) < 0);
	}
	/* the same ms: the counter keeps them increasing */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[0]), SOKOTERM_OK);
	CHECK(memcmp(ids[0], ids[3], 6) == 0);
	CHECK(memcmp(ids[3], ids[0], SOKOTERM_ID_LEN) < 0);
	CHECK_EQ_INT(((ids[0][6] & 0x0f) << 8 | ids[0][7]), 1);
	/* a clock going back (treated as the last one) changes nothing */
	CHECK_EQ_INT(sokoterm_tick(tm.t, tm.now - 5000), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[1]), SOKOTERM_OK);
	CHECK(memcmp(ids[0], ids[1], SOKOTERM_ID_LEN) < 0);
	CHECK_EQ_INT(q_open(&tm), 6);
	sokoterm_free(tm.t);
}

/* Offline storing before the host gave any time is refused (STATE): the
 * entry, its advice and its txn id would all say 1970.  After a tick the
 * same request is stored, its id carrying that time. */
static void
test_offline_needs_time(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_BILL_PAY, 5000);
	struct sokoterm_config c;
	struct term tm;
	char path[128];
	uint8_t id[SOKOTERM_ID_LEN];
	uint64_t ms = 0;
	int i;

	c = t_config(&tm, new_path(path, sizeof path));
	memset(&tm, 0, sizeof tm);
	tm.now = T0;
	tm.rng = 0x51;
	tm.path = path;
	CHECK_EQ_INT(sokoterm_new(&tm.t, &c), SOKOTERM_OK);
	if (tm.t == NULL)
		return;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_ERR_STATE);
	CHECK_EQ_INT(q_open(&tm), 0);
	CHECK_EQ_INT(sokoterm_tick(tm.t, T0), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_OK);
	CHECK_EQ_INT(q_open(&tm), 1);
	for (i = 0; i < 6; i++)
		ms = ms << 8 | id[i];
	CHECK_EQ_INT(ms, T0);
	sokoterm_free(tm.t);
}

static void
test_offline_policy(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_BILL_PAY, 5000);
	struct sokoterm_config c;
	const struct rec *ev;
	struct term tm;
	char path[128];
	uint64_t op, n, sum;

	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.allowed_ops = SOKOTERM_OP_BIT(SOKOTERM_OP_BILL_PAY) |
	                        SOKOTERM_OP_BIT(SOKOTERM_OP_COLLECT) |
	                        SOKOTERM_OP_BIT(SOKOTERM_OP_CASH_OUT);
	c.offline.floor_limit = 10000;
	c.offline.total_limit = 15000;
	c.offline.max_entries = 3;
	c.offline.max_age_ms = 3600000;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	/* within limits: accepted, STORED offline */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, &op, NULL), SOKOTERM_OK);
	ev = find_ev(&tm, SOKOTERM_EV_STORED, op);
	CHECK(ev != NULL && ev->is_offline && ev->code == SOKOTERM_CODE_STORED);
	/* over the floor limit */
	r.amount = 10001;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_LIMIT);
	r.amount = 6000;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	/* cumulative: 11000 + 5000 > 15000 */
	r.amount = 5000;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_LIMIT);
	CHECK_EQ_INT(sokoterm_queue_count(tm.t, &n, &sum), SOKOTERM_OK);
	CHECK_EQ_INT(n, 2);
	CHECK_EQ_INT(sum, 11000);
	/* collect needs the customer's wallet: refused even if allowed */
	r = req_money(SOKOTERM_OP_COLLECT, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_REFUSED);
	/* cash-out and cash-in move the wallet: refused even if allowed */
	r = req_money(SOKOTERM_OP_CASH_OUT, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_REFUSED);
	r = req_money(SOKOTERM_OP_CASH_IN, 100); /* not in allowed_ops */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_REFUSED);
	/* online-only ops */
	r.op = SOKOTERM_OP_ECHO;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_ERR_STATE);
	/* full: the third entry fits, the fourth is refused before store */
	r = req_money(SOKOTERM_OP_BILL_PAY, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_QUEUE_FULL);
	CHECK_EQ_INT(q_open(&tm), 3);
	CHECK_EQ_INT(tm.n_stored, 3);
	term_close(&tm);

	/* max age: offline work stops once the oldest entry is too old */
	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.max_age_ms = 60000;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	r = req_money(SOKOTERM_OP_BILL_PAY, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	tick(&tm, NULL, 60001);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_OFFLINE_LIMIT);
	/* the random source failing stores nothing */
	term_close(&tm);
	c = t_config(&tm, new_path(path, sizeof path));
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	tm.is_rng_fail = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_RANDOM);
	CHECK_EQ_INT(q_open(&tm), 0);
	term_close(&tm);
}

/* Offline advices replay in order after reconnect, in batches of at most
 * POS_BATCH_MAX; an answer lost in an earlier session is resolved by
 * STATUS; replaying again changes nothing. */
static void
test_replay_order(void)
{
	uint8_t ids[40][SOKOTERM_ID_LEN], lost[SOKOTERM_ID_LEN];
	struct sokoterm_request r;
	struct term tm;
	struct srv s;
	char path[128];
	size_t i, n_ok = 0;
	bool is_done;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	/* online first: one request whose answer is lost with the link */
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true;
	r = req_money(SOKOTERM_OP_CASH_IN, 10);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, lost), SOKOTERM_OK);
	xfer(&tm, &s);
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	s.is_drop = false;
	CHECK(find_ev(&tm, SOKOTERM_EV_DELAYED, 0) != NULL);
	for (i = 0; i < 40; i++) {
		r = req_money(SOKOTERM_OP_BILL_PAY, 100 + i);
		tick(&tm, NULL, 10);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, ids[i]),
		             SOKOTERM_OK);
	}
	CHECK_EQ_INT(q_open(&tm), 41);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 100);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ADVICE_BATCH), 2);
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 1);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 1);
	CHECK_EQ_INT(s.n_advice, 40);
	for (i = 0; i < 40 && i < s.n_advice; i++)
		n_ok += memcmp(s.advice[i], ids[i], SOKOTERM_ID_LEN) == 0;
	CHECK_EQ_INT(n_ok, 40);
	for (i = 0; i < 40; i++) {
		CHECK_EQ_INT(q_code(&tm, ids[i], &is_done),
		             SOKOTERM_CODE_STORED);
		CHECK(is_done);
	}
	CHECK_EQ_INT(q_code(&tm, lost, &is_done), 0);
	CHECK(is_done);
	CHECK_EQ_INT(q_open(&tm), 0);
	/* every advice reported once, as offline */
	n_ok = 0;
	for (i = 0; i < tm.n_ev; i++)
		n_ok +=
		    tm.ev[i].type == SOKOTERM_EV_RESULT && tm.ev[i].is_offline;
	CHECK_EQ_INT(n_ok, 40);
	/* another reconnect: nothing left to send */
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 100000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ADVICE_BATCH), 2);
	CHECK_EQ_INT(s.n_txn, 41);
	term_close(&tm);
}

/* Forced reconnect in the middle of a replay: no advice is lost, none is
 * recorded twice by the server (the second upload gets DUPLICATE). */
static void
test_replay_interrupted(void)
{
	struct sokoterm_request r;
	struct term tm;
	struct srv s;
	char path[128];
	const uint8_t *p;
	size_t i, len;

	srv_init(&s);
	CHECK_EQ_INT(term_open(&tm, new_path(path, sizeof path)), SOKOTERM_OK);
	for (i = 0; i < 70; i++) {
		r = req_money(SOKOTERM_OP_BILL_PAY, 100 + i);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
		             SOKOTERM_OK);
	}
	/* log in by hand: LOGIN_OK starts the replay; the batches reach
	 * the server, its answers never come back */
	CHECK_EQ_INT(sokoterm_connect(tm.t, tm.now), SOKOTERM_OK);
	sokoterm_outbox(tm.t, &p, &len);
	srv_feed(&s, p, len);
	sokoterm_sent(tm.t, len);
	CHECK_EQ_INT(sokoterm_feed(tm.t, s.out, s.out_len), SOKOTERM_OK);
	s.out_len = 0;
	sokoterm_outbox(tm.t, &p, &len);
	srv_feed(&s, p, len);
	sokoterm_sent(tm.t, len);
	s.out_len = 0;
	CHECK(s.n_advice > 0);
	sokoterm_disconnect(tm.t);
	srv_drop_link(&s);
	CHECK_EQ_INT(q_open(&tm), 70);
	CHECK_EQ_INT(login(&tm, &s), 0);
	for (i = 0; i < 5; i++)
		tick(&tm, &s, 5000);
	CHECK_EQ_INT(q_open(&tm), 0);
	CHECK_EQ_INT(s.n_txn, 70);
	term_close(&tm);
}

/* Every transaction whose STORED event fired is in the queue after
 * close and reopen, and the file passes PRAGMA integrity_check. */
static void
test_queue_survives_reopen(void)
{
	struct sokoterm_request r;
	struct term tm;
	struct srv s;
	char path[128];
	size_t i, n_stored, n_found = 0;
	uint8_t stored[REC_MAX][SOKOTERM_ID_LEN];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool is_done;
	unsigned code;

	srv_init(&s);
	new_path(path, sizeof path);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	for (i = 0; i < 10; i++) {
		r = req_money(SOKOTERM_OP_BILL_PAY, 100 + i);
		CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
		             SOKOTERM_OK);
	}
	/* online ones stored, sent, never answered */
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true;
	r = req_money(SOKOTERM_OP_CASH_IN, 5);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	n_stored = tm.n_stored;
	memcpy(stored, tm.stored, sizeof stored);
	term_close(&tm); /* as if power was cut: no disconnect */
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	for (i = 0; i < n_stored; i++)
		n_found += sokoterm_queue_lookup(tm.t, stored[i], &is_done,
		                                 &code) == SOKOTERM_OK;
	CHECK_EQ_INT(n_found, n_stored);
	CHECK_EQ_INT(n_stored, 11);
	term_close(&tm);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
	    SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
	CHECK_EQ_INT(
	    sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
	    SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_STR((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	/* a queue file made by the library has 1 KB pages (queue.c) */
	CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL),
	             SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(st, 0), 1024);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* Issue #3 bounds: a full queue refuses new work online too, before
 * anything is stored or sent. */
static void
test_queue_full_online(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 10);
	struct sokoterm_config c;
	struct term tm;
	struct srv s;
	char path[128];

	srv_init(&s);
	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.max_entries = 2;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true; /* answers lost: both stay open */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	xfer(&tm, &s);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL),
	             SOKOTERM_ERR_QUEUE_FULL);
	xfer(&tm, &s);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 2);
	CHECK_EQ_INT(tm.n_stored, 2);
	CHECK_EQ_INT(q_open(&tm), 2);
	term_close(&tm);
}

/* Bounded replay: an advice older than replay_max_age_ms is held (EV_HELD,
 * still open for support), never sent; a STATUS that is never answered is
 * asked max_attempts times, then held. */
static void
test_replay_bounds_held(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_BILL_PAY, 100);
	uint8_t id[SOKOTERM_ID_LEN];
	struct sokoterm_config c;
	struct term tm;
	struct srv s;
	char path[128];
	bool is_done;
	uint64_t n_rel = 0;
	int i;

	srv_init(&s);
	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.replay_max_age_ms = 60000;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, NULL), SOKOTERM_OK);
	tick(&tm, NULL, 60001);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 1000);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_HELD), 2);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ADVICE_BATCH), 0);
	CHECK_EQ_INT(q_open(&tm), 2);
	tick(&tm, &s, 120000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ADVICE_BATCH), 0);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_HELD), 2);
	/* released: their age counts from now, so they are uploaded */
	CHECK_EQ_INT(sokoterm_release_held(tm.t, &n_rel), SOKOTERM_OK);
	CHECK_EQ_INT(n_rel, 2);
	tick(&tm, &s, 1000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_ADVICE_BATCH), 1);
	CHECK_EQ_INT(q_open(&tm), 0);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_HELD), 2);
	CHECK_EQ_INT(sokoterm_release_held(tm.t, &n_rel), SOKOTERM_OK);
	CHECK_EQ_INT(n_rel, 0);
	term_close(&tm);

	srv_init(&s);
	c = t_config(&tm, new_path(path, sizeof path));
	c.offline.max_attempts = 3;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true; /* the server never answers again */
	r = req_money(SOKOTERM_OP_CASH_IN, 100);
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_OK);
	for (i = 0; i < 60; i++) { /* 600 s: timeouts, back-offs */
		tick(&tm, &s, 10000);
		if (sokoterm_state(tm.t) != SOKOTERM_READY) {
			/* no heartbeat answer either: log in again */
			sokoterm_disconnect(tm.t);
			srv_drop_link(&s);
			CHECK_EQ_INT(login(&tm, &s), 0);
		}
	}
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 1); /* never resent */
	CHECK(count_req(&s, POS_MSG_STATUS) >= 1);
	CHECK(count_req(&s, POS_MSG_STATUS) <= 3);
	CHECK_EQ_INT(count_ev(&tm, SOKOTERM_EV_HELD), 1);
	q_code(&tm, id, &is_done);
	CHECK(!is_done);
	CHECK_EQ_INT(q_open(&tm), 1);
	/* the server answers again; released, the entry is resolved by
	 * STATUS (the server has it), never sent a second time */
	s.is_drop = false;
	CHECK_EQ_INT(sokoterm_release_held(tm.t, &n_rel), SOKOTERM_OK);
	CHECK_EQ_INT(n_rel, 1);
	tick(&tm, &s, 1000);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), SOKOTERM_CODE_APPROVED);
	CHECK(is_done);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 1);
	CHECK_EQ_INT(q_open(&tm), 0);
	term_close(&tm);
}

/* A queue file made before released_ms existed opens (the column is
 * added) and its open entry is resolved as before. */
static void
test_queue_old_file(void)
{
	static const uint8_t id[SOKOTERM_ID_LEN] = {1, 2, 3, 4, 5, 6, 7, 8,
	                                            9, 10, 11, 12, 13, 14,
	                                            15, 16};
	struct term tm;
	struct srv s;
	char path[128];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	bool is_done, has = false;

	new_path(path, sizeof path);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(
	    sqlite3_exec(db,
	                 "PRAGMA journal_mode=WAL;"
	                 "CREATE TABLE q (seq INTEGER PRIMARY KEY,"
	                 " txn_id BLOB NOT NULL UNIQUE, type INTEGER NOT NULL,"
	                 " amount INTEGER NOT NULL, currency INTEGER NOT NULL,"
	                 " is_offline INTEGER NOT NULL, state INTEGER NOT NULL,"
	                 " reason INTEGER NOT NULL DEFAULT 0,"
	                 " attempts INTEGER NOT NULL DEFAULT 0,"
	                 " created_ms INTEGER NOT NULL,"
	                 " next_try_ms INTEGER NOT NULL, code INTEGER,"
	                 " done_ms INTEGER, body BLOB NOT NULL);",
	                 NULL, NULL, NULL),
	    SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(db,
	                                "INSERT INTO q (txn_id, type, amount,"
	                                " currency, is_offline, state,"
	                                " created_ms, next_try_ms, body)"
	                                " VALUES (?, 19, 100, 404, 0, 0, 1,"
	                                " 1, x'')",
	                                -1, &st, NULL),
	             SQLITE_OK);
	sqlite3_bind_blob(st, 1, id, SOKOTERM_ID_LEN, SQLITE_STATIC);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	srv_init(&s);
	srv_add(&s, id, POS_CODE_APPROVED);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 100);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), SOKOTERM_CODE_APPROVED);
	CHECK(is_done);
	term_close(&tm);
	CHECK_EQ_INT(sqlite3_open(path, &db), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(db, "PRAGMA table_info(q)", -1, &st,
	                                NULL),
	             SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		has = has || strcmp((const char *)sqlite3_column_text(st, 1),
		                    "released_ms") == 0;
	sqlite3_finalize(st);
	sqlite3_close(db);
	CHECK(has);
}

/* The terminal loses power with an answer outstanding: after the restart
 * (same queue file) the transaction is resolved by STATUS right after the
 * login, not a request timeout later, and never resent blind. */
static void
test_restart_resolves_by_status(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 700);
	uint8_t id[SOKOTERM_ID_LEN];
	struct term tm;
	struct srv s;
	char path[128];
	bool is_done;

	srv_init(&s);
	new_path(path, sizeof path);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true; /* processed, the answer lost with the power */
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_OK);
	xfer(&tm, &s);
	term_close(&tm); /* no disconnect: the process is gone */
	srv_drop_link(&s);
	s.is_drop = false;
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0); /* no tick: due at once */
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 1);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 1);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), SOKOTERM_CODE_APPROVED);
	CHECK(is_done);
	CHECK_EQ_INT(s.n_txn, 1);
	CHECK_EQ_INT(q_open(&tm), 0);
	term_close(&tm);
}

/* Policy REVERSAL: the reversal of a lost answer is held in the queue
 * across a power cut and sent again after the restart until it is
 * acknowledged. */
static void
test_reversal_survives_restart(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 900);
	uint8_t id[SOKOTERM_ID_LEN];
	struct sokoterm_config c;
	struct term tm;
	struct srv s;
	char path[128];
	uint64_t now;
	bool is_done;

	srv_init(&s);
	new_path(path, sizeof path);
	c = t_config(&tm, path);
	c.is_reverse_on_timeout = true;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	CHECK_EQ_INT(login(&tm, &s), 0);
	s.is_drop = true;
	CHECK_EQ_INT(sokoterm_submit(tm.t, &r, NULL, id), SOKOTERM_OK);
	xfer(&tm, &s);
	tick(&tm, &s, 30000); /* timeout: REVERSAL, its answer lost too */
	CHECK_EQ_INT(count_req(&s, POS_MSG_REVERSAL), 1);
	now = tm.now;
	term_close(&tm);
	srv_drop_link(&s);
	s.is_drop = false;
	c = t_config(&tm, path);
	c.is_reverse_on_timeout = true;
	CHECK_EQ_INT(term_open_cfg(&tm, &c), SOKOTERM_OK);
	tm.now = now + 5000; /* the wall clock went on */
	q_code(&tm, id, &is_done);
	CHECK(!is_done);
	CHECK_EQ_INT(login(&tm, &s), 0);
	tick(&tm, &s, 2000);
	CHECK_EQ_INT(count_req(&s, POS_MSG_REVERSAL), 2);
	CHECK_EQ_INT(count_req(&s, POS_MSG_STATUS), 0);
	CHECK_EQ_INT(count_req(&s, POS_MSG_CASH_IN), 1);
	CHECK_EQ_INT(q_code(&tm, id, &is_done), SOKOTERM_CODE_REVERSED);
	CHECK(is_done);
	CHECK_EQ_INT(q_open(&tm), 0);
	term_close(&tm);
}

/* A queue file that is not a sound database is reported, not replaced. */
static void
test_corrupt_queue_reported(void)
{
	struct term tm;
	char path[128];
	FILE *f;
	long size = -1;
	int i;

	new_path(path, sizeof path);
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (f == NULL)
		return;
	for (i = 0; i < 4096; i++)
		fputc(i * 7 & 0xff, f);
	fclose(f);
	CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_ERR_QUEUE_CORRUPT);
	CHECK(tm.t == NULL);
	f = fopen(path, "rb");
	if (f != NULL) {
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fclose(f);
	}
	CHECK_EQ_INT(size, 4096);
	/* a real database with a damaged page fails integrity_check */
	{
		sqlite3 *db = NULL;

		new_path(path, sizeof path);
		CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_OK);
		term_close(&tm);
		sqlite3_open(path, &db);
		sqlite3_exec(
		    db,
		    "PRAGMA journal_mode=DELETE;"
		    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL "
		    "SELECT x+1 FROM c WHERE x<400) INSERT INTO q "
		    "(txn_id,type,amount,currency,is_offline,state,"
		    "created_ms,next_try_ms,body) SELECT randomblob(16),"
		    "33,x,404,1,3,x,x,randomblob(60) FROM c",
		    NULL, NULL, NULL);
		sqlite3_close(db);
		f = fopen(path, "r+b");
		CHECK(f != NULL);
		if (f != NULL) {
			fseek(f, 4096 * 3, SEEK_SET); /* a b-tree page header */
			for (i = 0; i < 64; i++)
				fputc(0x5a, f);
			fclose(f);
		}
		CHECK_EQ_INT(term_open(&tm, path), SOKOTERM_ERR_QUEUE_CORRUPT);
		CHECK(tm.t == NULL);
	}
}

/* Two terminals in one process, interleaved: no shared state. */
static void
test_two_instances(void)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_CASH_IN, 1);
	static struct term a, b;
	static struct srv sa, sb;
	char pa[128], pb[128];
	uint64_t oa, ob;

	srv_init(&sa);
	srv_init(&sb);
	CHECK_EQ_INT(term_open(&a, new_path(pa, sizeof pa)), SOKOTERM_OK);
	CHECK_EQ_INT(term_open(&b, new_path(pb, sizeof pb)), SOKOTERM_OK);
	CHECK_EQ_INT(login(&a, &sa), 0);
	CHECK_EQ_INT(sokoterm_connect(b.t, b.now), SOKOTERM_OK);
	CHECK_EQ_INT(sokoterm_submit(a.t, &r, &oa, NULL), SOKOTERM_OK);
	xfer(&b, &sb);
	CHECK_EQ_INT(sokoterm_submit(b.t, &r, &ob, NULL), SOKOTERM_OK);
	xfer(&a, &sa);
	xfer(&b, &sb);
	CHECK(find_ev(&a, SOKOTERM_EV_RESULT, oa) != NULL);
	CHECK(find_ev(&b, SOKOTERM_EV_RESULT, ob) != NULL);
	CHECK_EQ_INT(sa.n_req, 1);
	CHECK_EQ_INT(sb.n_req, 1);
	term_close(&a);
	term_close(&b);
}

/* ---- failing allocator (STYLE.md §12) ------------------------------- */

struct fail_alloc {
	long n_calls, fail_at; /* fail the fail_at-th call (1-based) */
	long n_live;
	bool has_failed;
};

static void *
fa_alloc(void *ctx, size_t n)
{
	struct fail_alloc *fa = ctx;

	if (++fa->n_calls == fa->fail_at) {
		fa->has_failed = true;
		return NULL;
	}
	fa->n_live++;
	return malloc(n);
}

static void
fa_free(void *ctx, void *p)
{
	struct fail_alloc *fa = ctx;

	if (p != NULL)
		fa->n_live--;
	free(p);
}

static struct term sc_tm; /* the scenario's terminal, kept for checks */

/* One whole session; returns true if every step succeeded. */
static bool
alloc_scenario(struct fail_alloc *fa, const char *path)
{
	struct sokoterm_request r = req_money(SOKOTERM_OP_BILL_PAY, 10);
	struct sokoterm_config c;
	struct term *tm = &sc_tm;
	static struct srv s;
	bool is_ok = false;

	srv_init(&s);
	c = t_config(tm, path);
	c.mem_alloc = fa_alloc;
	c.mem_free = fa_free;
	c.mem_ctx = fa;
	if (term_open_cfg(tm, &c) != SOKOTERM_OK)
		return false;
	if (sokoterm_submit(tm->t, &r, NULL, NULL) != SOKOTERM_OK)
		goto out;
	if (login(tm, &s) != 0)
		goto out;
	r.op = SOKOTERM_OP_CASH_IN;
	if (sokoterm_submit(tm->t, &r, NULL, NULL) != SOKOTERM_OK)
		goto out;
	xfer(tm, &s);
	is_ok = q_open(tm) == 0;
out:
	term_close(tm);
	return is_ok;
}

static void
test_alloc_failures(void)
{
	struct fail_alloc fa;
	char path[128];
	long n;
	bool is_done = false;

	for (n = 1; n < 1000 && !is_done; n++) {
		memset(&fa, 0, sizeof fa);
		fa.fail_at = n;
		is_done = alloc_scenario(&fa, new_path(path, sizeof path));
		CHECK_EQ_INT(fa.n_live, 0);
		if (!is_done)
			CHECK(fa.has_failed);
		unlink(path);
	}
	CHECK(is_done);
	CHECK(n > 2); /* the instance and the queue at least */
}

/* SQLite's own allocations failing (test-only global hook): every call
 * returns an error, nothing crashes or leaks, and whatever was reported
 * STORED is in the queue afterwards. */
static long sq_n, sq_fail_at;

/* Each block carries its size in front: SQLite asks for it (xSize). */
static void *
sq_malloc(int n)
{
	long long *p;

	if (++sq_n == sq_fail_at)
		return NULL;
	if ((p = malloc((size_t)n + sizeof *p)) == NULL)
		return NULL;
	p[0] = n;
	return p + 1;
}

static void
sq_free(void *p)
{
	if (p != NULL)
		free((long long *)p - 1);
}

static void *
sq_realloc(void *p, int n)
{
	long long *q;

	if (++sq_n == sq_fail_at)
		return NULL;
	q = realloc((long long *)p - 1, (size_t)n + sizeof *q);
	if (q == NULL)
		return NULL;
	q[0] = n;
	return q + 1;
}

static int
sq_size(void *p)
{
	return p != NULL ? (int)((long long *)p)[-1] : 0;
}

static int
sq_roundup(int n)
{
	return (n + 7) & ~7;
}

static int
sq_init(void *p)
{
	(void)p;
	return SQLITE_OK;
}

static void
sq_shutdown(void *p)
{
	(void)p;
}

static void
test_sqlite_alloc_failures(void)
{
	static const sqlite3_mem_methods mm = {
	    sq_malloc,  sq_free, sq_realloc,  sq_size,
	    sq_roundup, sq_init, sq_shutdown, NULL};
	struct fail_alloc fa;
	char path[128];
	long n;
	bool is_done = false;
	struct term tm;

	if (sqlite3_shutdown() != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) != SQLITE_OK ||
	    sqlite3_config(SQLITE_CONFIG_MALLOC, &mm) != SQLITE_OK) {
		CHECK(0);
		return;
	}
	for (n = 1; n < 5000 && !is_done; n++) {
		memset(&fa, 0, sizeof fa);
		sq_n = 0;
		sq_fail_at = n;
		is_done = alloc_scenario(&fa, new_path(path, sizeof path));
		CHECK_EQ_INT(fa.n_live, 0);
		sq_fail_at = 0;
		/* what the scenario reported STORED is there */
		if (term_open(&tm, path) == SOKOTERM_OK) {
			size_t i, n_found = 0;
			bool is_d;
			unsigned code;

			for (i = 0; i < sc_tm.n_stored; i++)
				n_found += sokoterm_queue_lookup(
					       tm.t, sc_tm.stored[i], &is_d,
					       &code) == SOKOTERM_OK;
			CHECK_EQ_INT(n_found, sc_tm.n_stored);
			term_close(&tm);
		}
		unlink(path);
	}
	CHECK(is_done);
	CHECK(n > 50); /* 87 with SQLite 3.40: the loop really ran */
	sqlite3_shutdown();
}

/* ---- main -------------------------------------------------------------- */

static void
cleanup(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", dir);
}

static void *
q_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void
q_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

/* A queue file of the due-query tests, opened (NULL on failure). */
static struct sokoterm_queue *
steps_queue(const char *name)
{
	static const struct sokoterm_mem mem = {q_alloc, q_free, NULL};
	struct sokoterm_queue *q = NULL;
	char path[128];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	CHECK_EQ_INT(sokoterm_queue_open(&q, path, &mem), SOKOTERM_OK);
	return q;
}

/* Stores open entry i (seq i + 1), due at next_try_ms. */
static void
put_entry(struct sokoterm_queue *q, int i, int64_t next_try_ms)
{
	struct sokoterm_qrow row;

	memset(&row, 0, sizeof row);
	memcpy(row.txn_id, &i, sizeof i);
	row.type = POS_MSG_FLOAT_TRANSFER;
	row.amount = 100;
	row.currency = 404;
	row.state = SOKOTERM_Q_NEW;
	row.created_ms = 1000 + i;
	row.next_try_ms = next_try_ms;
	row.body[0] = 0xa0;
	row.body_len = 1;
	CHECK_EQ_INT(sokoterm_queue_insert(q, &row), SOKOTERM_OK);
}

/* VM steps of one due query after cursor at time 5000, which must find
 * exactly the entry of seq expect; closes q. */
static uint64_t
due_call_steps(struct sokoterm_queue *q, uint64_t cursor, int64_t expect)
{
	struct sokoterm_qrow rows[8];
	uint64_t before = sokoterm_queue_due_steps(q), steps;
	size_t n = 0;

	CHECK_EQ_INT(sokoterm_queue_due(q, cursor, 5000, rows, 8, &n),
	             SOKOTERM_OK);
	steps = sokoterm_queue_due_steps(q) - before;
	CHECK(n == 1 && rows[0].seq == expect);
	sokoterm_queue_close(q);
	return steps;
}

/* Steps of one due query from the start of a queue of n_done done
 * entries and 3 open ones (one of them due). */
static uint64_t
due_steps(const char *name, int n_done)
{
	struct sokoterm_queue *q = steps_queue(name);
	int i;

	if (q == NULL)
		return 0;
	for (i = 0; i < n_done + 3; i++) {
		bool changed = false;

		/* the last two in flight (not due), the one before due */
		put_entry(q, i, i >= n_done + 1 ? 1000000 : 1000 + i);
		if (i < n_done) {
			uint8_t txn[SOKOTERM_ID_LEN] = {0};

			memcpy(txn, &i, sizeof i);
			CHECK_EQ_INT(sokoterm_queue_done(q, txn, 0, 2000,
			                                 &changed),
			             SOKOTERM_OK);
		}
	}
	/* the due one, whatever the done ones */
	return due_call_steps(q, 0, n_done + 1);
}

/* Steps of one due query with n_open open entries, every one in flight
 * (not due) but the last, from a cursor just before the last five. */
static uint64_t
due_open_steps(const char *name, int n_open)
{
	struct sokoterm_queue *q = steps_queue(name);
	int i;

	if (q == NULL)
		return 0;
	for (i = 0; i < n_open; i++)
		put_entry(q, i, i == n_open - 1 ? 1000 + i : 1000000);
	return due_call_steps(q, (uint64_t)(n_open - 5), n_open);
}

/* A replay: thousands of open entries, the cursor moving through them.
 * The due query from the cursor reads the few entries after it, not
 * every open entry (it read and sorted all of them at each call: a
 * replay of 10,000 offline entries took 1 s instead of 0.35 s in
 * make bench). */
static void
test_due_query_seeks_cursor(void)
{
	uint64_t few = due_open_steps("due_open_few.db", 10);
	uint64_t many = due_open_steps("due_open_many.db", 3000);

	printf("# due query steps from the cursor: %llu with 10 open "
	       "entries, %llu with 3000\n",
	       (unsigned long long)few, (unsigned long long)many);
	CHECK(few > 0);
	CHECK(many < 2 * few + 50);
}

/* The pump's due query after a sweep from the start visits the open
 * entries only: its cost does not grow with the done entries a
 * terminal keeps (it read every one of them at each answer: 2-3 ms with
 * 10,000 of them on the bench VM, more on a terminal's CPU). */
static void
test_due_query_open_rows_only(void)
{
	uint64_t few = due_steps("due_few.db", 10);
	uint64_t many = due_steps("due_many.db", 1500);

	printf("# due query steps: %llu with 10 done entries, %llu with "
	       "1500\n",
	       (unsigned long long)few, (unsigned long long)many);
	CHECK(few > 0);
	CHECK(many < 2 * few + 50);
}

int
main(void)
{
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";

	snprintf(dir, sizeof dir, "%s/sokoterm-XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_spec_vectors);
	RUN(test_login_ok);
	RUN(test_login_bad_mac_refused);
	RUN(test_login_wrong_nonce_refused);
	RUN(test_login_fail);
	RUN(test_login_timeout);
	RUN(test_garbage_closes);
	RUN(test_every_request_type);
	RUN(test_eod_totals);
	RUN(test_eod_prune);
	RUN(test_due_query_open_rows_only);
	RUN(test_due_query_seeks_cursor);
	RUN(test_ack_retry);
	RUN(test_response_matching);
	RUN(test_counter_and_replay);
	RUN(test_duplicate_answers_idempotent);
	RUN(test_heartbeat);
	RUN(test_timeout_status_resolution);
	RUN(test_timeout_reversal);
	RUN(test_busy_retry_and_hold);
	RUN(test_offline_needs_time);
	RUN(test_offline_policy);
	RUN(test_replay_order);
	RUN(test_replay_interrupted);
	RUN(test_queue_survives_reopen);
	RUN(test_queue_full_online);
	RUN(test_replay_bounds_held);
	RUN(test_queue_old_file);
	RUN(test_restart_resolves_by_status);
	RUN(test_reversal_survives_restart);
	RUN(test_corrupt_queue_reported);
	RUN(test_two_instances);
	RUN(test_txn_id_v7);
	RUN(test_alloc_failures);
	RUN(test_sqlite_alloc_failures);
	cleanup();
	return check_report("sokoterm");
}
