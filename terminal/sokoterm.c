/*
 * sokoterm.c - libsokoterm's I/O-free session engine (docs/pos-protocol.md
 * §3.3 terminal side, §4 security, §9 transactions; issue #3).
 *
 * Layer: terminal/ (STYLE.md §1).  Never touches a socket or a clock: bytes
 * come in through sokoterm_feed(), go out through the outbox, time through
 * sokoterm_tick().  Never aborts, prints or keeps global state; all memory
 * is one block from the caller's allocator (plus SQLite's own in queue.c).
 *
 * Invariants:
 * - store-then-send: a money request's frame is appended to the outbox only
 *   after its queue row committed and STORED fired;
 * - a queue row leaves the open set only through sokoterm_queue_done(),
 *   i.e. once the server's answer is durable here;
 * - a request whose answer never came is resolved by STATUS (or REVERSAL
 *   by policy) and resent, with the same txn_id, only after STATUS said
 *   UNKNOWN_TXN or the server said it was not processed;
 * - K_t and K_s are wiped when no longer needed; no key leaves the struct.
 *
 * SOKOTERM_FAULTS builds only (build/canary/libsokoterm.a, linked into
 * build/soko-pos-canary and nothing else) carry a test switch that breaks
 * the first invariant on purpose; see "canary" below.
 */
#include "sokoterm.h"

#include <stdlib.h>
#include <string.h>

#include "pos.h"
#include "sha256.h"
#include "queue.h"

#define SLOTS_MAX        16 /* requests in flight we track */
#define OUT_CAP          (2 * POS_FRAME_MAX)
#define ACKS_MAX         8 /* COLLECT_RESULT_ACKs waiting for outbox room */
#define LOGIN_TIMEOUT_MS 10000 /* §3.2 */
#define ECHO_TIMEOUT_MS  10000 /* §3.2 */
#define PENDING_RETRY_MS 60000 /* §7 PENDING: STATUS after 60 s */
#define BACKOFF_MAX_MS   60000
#define REQ_TIMEOUT_MS   30000 /* §3.2 default */
#define DEF_MAX_ENTRIES  1000
#define DEF_MAX_ATTEMPTS 20
#define TERMINAL_ID_MAX  32
#define FIRMWARE_MAX     32

enum slot_kind {
	K_FREE,
	K_ONLINE,    /* ECHO/STATUS/RECEIPT/BILL_VALIDATE from submit */
	K_MONEY,     /* a queued transaction's request */
	K_RESOLVE,   /* STATUS for a queued transaction */
	K_REVERSAL,  /* REVERSAL for a queued transaction */
	K_ADVICE,    /* ADVICE_BATCH of queued offline transactions */
	K_HEARTBEAT, /* our own ECHO */
};

struct slot {
	uint8_t kind;      /* enum slot_kind */
	uint8_t row_state; /* K_RESOLVE/K_REVERSAL: the row's state */
	enum sokoterm_op op;
	uint16_t type; /* request type sent */
	uint32_t req_id;
	uint64_t op_id; /* 0 for replayed entries */
	uint64_t sent_ms;
	uint8_t txn_id[SOKOTERM_ID_LEN];
	size_t n_items; /* K_ADVICE */
	uint8_t items[POS_BATCH_MAX][SOKOTERM_ID_LEN];
};

/* An event held back until its group's queue writes are committed
 * (answer groups, below): a copy with its own strings. */
#define DEFER_MAX POS_BATCH_MAX /* one ADVICE_BATCH answer: one commit */
struct deferred {
	struct sokoterm_event ev;
	char ref[33], token[65], units[33], text[65];
};

/* A result-shaped answer (§6.2 result keys, plus the extras some carry). */
struct res {
	unsigned code;
	uint8_t txn_id[SOKOTERM_ID_LEN];
	bool has_orig;
	unsigned orig;
	bool has_time, has_balance;
	uint64_t time_ms, balance;
	struct pos_bytes ref, text, token, units, lines;
};

struct sokoterm {
	struct sokoterm_mem mem;
	char terminal_id[TERMINAL_ID_MAX + 1];
	size_t terminal_id_len;
	char firmware[FIRMWARE_MAX + 1];
	uint8_t kt[POS_KEY_LEN]; /* provisioned key; wiped at free */
	/* session key, as its HMAC schedule: made once at LOGIN_OK, so each
	 * frame's MAC costs 3 compressions, not 5; wiped at disconnect */
	struct pos_key ks;
	struct sokoterm_offline_policy pol;
	uint32_t req_timeout_ms;
	uint32_t keep_batches; /* cfg.keep_batches */
	bool is_reverse_on_timeout;
	bool is_txn_id_v4;
	uint16_t id_seq;     /* version 7: counter within id_ms (12 bits) */
	uint64_t id_ms;      /* version 7: ms field of the last id */
	sokoterm_random_fn random;
	void *random_ctx;
	sokoterm_event_fn on_event;
	void *event_ctx;
	struct sokoterm_queue *q;

	enum sokoterm_state state;
	uint64_t now; /* ms, never decreases */
	uint8_t client_nonce[POS_NONCE_LEN];
	uint32_t login_req_id;
	uint64_t login_ms;
	uint64_t last_rx, next_tx; /* §4.4 */
	uint64_t session_id;
	uint64_t heartbeat_ms;
	uint32_t max_inflight;
	size_t max_frame;
	uint64_t last_tx_ms;
	uint32_t next_req_id;
	uint64_t next_op_id;
	uint32_t n_reconnects; /* since the last good login, for back-off */
	int64_t replay_cursor; /* seq of the last row the replay picked */
	struct slot slots[SLOTS_MAX];

	uint8_t rx[POS_FRAME_MAX];
	size_t rx_len;
	uint8_t out[OUT_CAP];
	size_t out_off, out_len;
	uint8_t frame[POS_FRAME_MAX]; /* scratch: frame being built */
	uint8_t body[POS_BODY_MAX];   /* scratch: body being built */
	struct pos_msg msg;           /* scratch: received message */
	struct pos_msg tx;            /* scratch: message being sent */
	struct pos_msg tmp;           /* scratch: stored body, decoded */
	struct sokoterm_qrow rows[POS_BATCH_MAX];
	struct sokoterm_qrow row;
	char ev_ref[33], ev_token[65], ev_units[33], ev_text[65];
	char ev_name[65], ev_vref[33], ev_lines[1025];
	/* EOD_TOTALS in flight (one at a time): its batch and the lines
	 * sent, and the server's lines for the event */
	/* COLLECT_RESULT_ACKs that found the outbox full: sent as soon as
	 * there is room (sokoterm_sent, tick); beyond ACKS_MAX, or after a
	 * disconnect, the server's redelivery after the next login */
	uint8_t acks[ACKS_MAX][SOKOTERM_ID_LEN];
	uint8_t n_acks;
	uint32_t eod_no;
	struct sokoterm_total eod_own[SOKOTERM_TOTALS_MAX];
	size_t n_eod_own;
	struct sokoterm_total eod_srv[SOKOTERM_TOTALS_MAX];
	size_t n_eod_srv;
	bool is_group; /* inside an answer group (sokoterm_feed) */
	enum sokoterm_err group_err; /* a commit of this group failed */
	size_t n_defer;              /* events waiting for the group's commit */
	struct deferred defer[DEFER_MAX];
#ifdef SOKOTERM_FAULTS
	bool fault_send_first;     /* SOKOTERM_FAULT=send_before_store */
	uint64_t fault_out_total;  /* bytes ever put in the outbox */
	uint64_t fault_sent_total; /* bytes ever reported sent (or dropped) */
	size_t n_fault;            /* rows sent, not yet stored */
	struct fault_defer {
		struct sokoterm_qrow row;
		uint64_t end; /* fault_out_total after its frame */
		uint64_t op_id;
		enum sokoterm_op op;
	} fault[SLOTS_MAX];
#endif
};

/* ---- small helpers ------------------------------------------------- */

const char *
sokoterm_strerror(enum sokoterm_err e)
{
	switch (e) {
	case SOKOTERM_OK:
		return "ok";
	case SOKOTERM_ERR_NOMEM:
		return "out of memory";
	case SOKOTERM_ERR_ARG:
		return "invalid argument";
	case SOKOTERM_ERR_STATE:
		return "not allowed in this connection state";
	case SOKOTERM_ERR_BUSY:
		return "too many requests in flight";
	case SOKOTERM_ERR_RANDOM:
		return "random source failed";
	case SOKOTERM_ERR_QUEUE:
		return "offline queue error";
	case SOKOTERM_ERR_QUEUE_CORRUPT:
		return "offline queue failed its integrity check";
	case SOKOTERM_ERR_QUEUE_FULL:
		return "offline queue full";
	case SOKOTERM_ERR_OFFLINE_REFUSED:
		return "operation not allowed offline";
	case SOKOTERM_ERR_OFFLINE_LIMIT:
		return "offline limit reached";
	case SOKOTERM_ERR_NOT_FOUND:
		return "no such transaction";
	case SOKOTERM_ERR_PROTOCOL:
		return "protocol error";
	case SOKOTERM_ERR_AUTH:
		return "authentication failed";
	case SOKOTERM_ERR_TIMEOUT:
		return "timed out";
	case SOKOTERM_ERR_CLOSED:
		return "connection closed";
	case SOKOTERM_ERR_IO:
		return "i/o error";
	}
	return "unknown error";
}

const char *
sokoterm_code_name(unsigned code)
{
	return pos_code_name(code);
}

static void *
def_alloc(void *ctx, size_t n)
{
	(void)ctx;
	return malloc(n);
}

static void
def_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static struct pos_bytes
view(const char *s)
{
	struct pos_bytes b = {(const uint8_t *)s, s != NULL ? strlen(s) : 0};

	return b;
}

/* Copies b into dst[0..cap) as a NUL-terminated string (truncated). */
static const char *
cstr(char *dst, size_t cap, struct pos_bytes b)
{
	size_t n = b.len < cap - 1 ? b.len : cap - 1;

	if (n > 0)
		memcpy(dst, b.ptr, n);
	dst[n] = '\0';
	return dst;
}

static bool
is_money_op(enum sokoterm_op op)
{
	return op == SOKOTERM_OP_COLLECT || op == SOKOTERM_OP_CASH_IN ||
	       op == SOKOTERM_OP_CASH_OUT || op == SOKOTERM_OP_FLOAT_TRANSFER ||
	       op == SOKOTERM_OP_BILL_PAY;
}

static uint16_t
op_type(enum sokoterm_op op)
{
	switch (op) {
	case SOKOTERM_OP_ECHO:
		return POS_MSG_ECHO;
	case SOKOTERM_OP_COLLECT:
		return POS_MSG_COLLECT;
	case SOKOTERM_OP_CASH_IN:
		return POS_MSG_CASH_IN;
	case SOKOTERM_OP_CASH_OUT:
		return POS_MSG_CASH_OUT;
	case SOKOTERM_OP_FLOAT_TRANSFER:
		return POS_MSG_FLOAT_TRANSFER;
	case SOKOTERM_OP_BILL_VALIDATE:
		return POS_MSG_BILL_VALIDATE;
	case SOKOTERM_OP_BILL_PAY:
		return POS_MSG_BILL_PAY;
	case SOKOTERM_OP_STATUS:
		return POS_MSG_STATUS;
	case SOKOTERM_OP_REVERSAL:
		return POS_MSG_REVERSAL;
	case SOKOTERM_OP_RECEIPT:
		return POS_MSG_RECEIPT;
	case SOKOTERM_OP_EOD_TOTALS:
		return POS_MSG_EOD_TOTALS;
	case SOKOTERM_OP_NONE:
		break;
	}
	return 0;
}

static enum sokoterm_op
type_op(uint16_t type)
{
	enum sokoterm_op op;

	type &= 0x3fff;
	for (op = SOKOTERM_OP_ECHO; op <= SOKOTERM_OP_EOD_TOTALS; op++)
		if (op_type(op) == type)
			return op;
	return SOKOTERM_OP_NONE;
}

static void
ev_init(struct sokoterm_event *ev, enum sokoterm_event_type type)
{
	memset(ev, 0, sizeof *ev);
	ev->type = type;
	ev->ref = ev->token = ev->units = ev->text = "";
	ev->customer_name = ev->validation_ref = ev->lines = "";
}

/*
 * Answer groups.  sokoterm_feed() takes in every complete frame it was
 * given; each answer about a queued transaction is recorded by a queue
 * write, and its event may fire only once that write is durable.  Instead
 * of one commit per answer, the writes of one feed call share one
 * transaction (queue.h, sokoterm_queue_group) and the events they report
 * wait in t->defer until group_flush() has committed it; then they fire in
 * order.  An event that cannot wait (its strings do not fit a deferred
 * copy) flushes the group first, so the host still sees every event in
 * the order it happened.  Nothing leaves the terminal in between: the
 * host sends only after feed returns, and feed flushes before returning.
 * A failed commit loses the group's writes as a whole: none of its events
 * fires, and the transactions stay open in the queue, to be resolved by
 * STATUS like any lost answer.
 */
static void
strcopy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);

	n = n < cap ? n : cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static enum sokoterm_err
group_flush(struct sokoterm *t)
{
	enum sokoterm_err e;
	size_t i, n = t->n_defer;

	e = sokoterm_queue_group_end(t->q, true);
	t->n_defer = 0;
	if (t->is_group)
		sokoterm_queue_group(t->q); /* later writes: a new group */
	if (e != SOKOTERM_OK) {
		if (t->group_err == SOKOTERM_OK)
			t->group_err = e;
		return e;
	}
	for (i = 0; i < n; i++) {
		struct deferred *d = &t->defer[i];

		d->ev.ref = d->ref;
		d->ev.token = d->token;
		d->ev.units = d->units;
		d->ev.text = d->text;
		t->on_event(t->event_ctx, &d->ev);
	}
	return SOKOTERM_OK;
}

static void
group_begin(struct sokoterm *t)
{
	t->is_group = true;
	t->group_err = SOKOTERM_OK;
	t->n_defer = 0;
	sokoterm_queue_group(t->q);
}

/* Ends the group; e is the caller's result so far, returned unless the
 * commit failed. */
static enum sokoterm_err
group_end(struct sokoterm *t, enum sokoterm_err e)
{
	enum sokoterm_err ef;

	t->is_group = false;
	(void)group_flush(t);
	ef = t->group_err;
	return e != SOKOTERM_OK ? e : ef;
}

static void
emit(struct sokoterm *t, const struct sokoterm_event *ev)
{
	struct deferred *d;

	if (t->is_group) {
		if (ev->customer_name[0] == '\0' &&
		    ev->validation_ref[0] == '\0' && ev->lines[0] == '\0' &&
		    ev->totals == NULL && ev->server_totals == NULL) {
			if (t->n_defer == DEFER_MAX)
				(void)group_flush(t);
			d = &t->defer[t->n_defer++];
			d->ev = *ev;
			strcopy(d->ref, sizeof d->ref, ev->ref);
			strcopy(d->token, sizeof d->token, ev->token);
			strcopy(d->units, sizeof d->units, ev->units);
			strcopy(d->text, sizeof d->text, ev->text);
			return;
		}
		(void)group_flush(t); /* keep the order */
	}
	t->on_event(t->event_ctx, ev);
}

/* Emits EV_CLOSE and moves to CLOSING; returns err for the caller. */
static enum sokoterm_err
fail(struct sokoterm *t, enum sokoterm_err err)
{
	struct sokoterm_event ev;

	if (t->state == SOKOTERM_CLOSING || t->state == SOKOTERM_OFFLINE)
		return err;
	t->state = SOKOTERM_CLOSING;
	ev_init(&ev, SOKOTERM_EV_CLOSE);
	ev.err = err;
	emit(t, &ev);
	return err;
}

static uint64_t
backoff_ms(uint32_t attempts)
{
	uint64_t ms = 1000u << (attempts < 6 ? attempts : 6);

	return ms < BACKOFF_MAX_MS ? ms : BACKOFF_MAX_MS;
}

static int64_t
now_i(const struct sokoterm *t)
{
	return (int64_t)(t->now & (uint64_t)INT64_MAX);
}

/* ---- canary (SOKOTERM_FAULTS builds only) ------------------------------ */

#ifdef SOKOTERM_FAULTS
/*
 * Test-only canary, never in the production library:
 * SOKOTERM_FAULT=send_before_store makes an online money request go to the
 * outbox BEFORE its queue row is written.  The row is written (and STORED
 * fires) only at the first engine call after the host reported every byte
 * of its frame sent (sokoterm_sent), i.e. after the request left the
 * terminal.  A terminal that loses power in between has sent a
 * transaction it has no record of: the server moved money the terminal
 * cannot resolve, print or reconcile.  tests/integration/test_pos_kill.py
 * must catch this when it kills soko-pos-canary.
 */
static void
fault_init(struct sokoterm *t)
{
	const char *f = getenv("SOKOTERM_FAULT");

	t->fault_send_first = f != NULL && strcmp(f, "send_before_store") == 0;
}

/* Stores the deferred rows whose frames were sent (all of them when
 * is_all: the link is going down), in submission order, then reports
 * STORED.  A queue error drops the row: the canary is broken anyway. */
static void
fault_store_sent(struct sokoterm *t, bool is_all)
{
	struct sokoterm_event ev;

	while (t->n_fault > 0 &&
	       (is_all || t->fault[0].end <= t->fault_sent_total)) {
		struct fault_defer *d = &t->fault[0];

		if (sokoterm_queue_insert(t->q, &d->row) == SOKOTERM_OK) {
			ev_init(&ev, SOKOTERM_EV_STORED);
			ev.op = d->op;
			ev.op_id = d->op_id;
			ev.has_txn_id = true;
			memcpy(ev.txn_id, d->row.txn_id, SOKOTERM_ID_LEN);
			ev.code = POS_CODE_PENDING;
			emit(t, &ev);
		}
		t->n_fault--;
		memmove(&t->fault[0], &t->fault[1],
		        t->n_fault * sizeof t->fault[0]);
	}
}
#define FAULT_STORE_SENT(t, is_all) fault_store_sent(t, is_all)
#else
#define FAULT_STORE_SENT(t, is_all) ((void)0)
#endif

/* ---- lifecycle ----------------------------------------------------- */

enum sokoterm_err
sokoterm_new(struct sokoterm **out, const struct sokoterm_config *cfg)
{
	struct sokoterm_mem mem = {def_alloc, def_free, NULL};
	struct sokoterm *t;
	enum sokoterm_err e;
	size_t id_len, fw_len;
	const char *fw;

	if (out == NULL)
		return SOKOTERM_ERR_ARG;
	*out = NULL;
	if (cfg == NULL || cfg->terminal_id == NULL || cfg->key == NULL ||
	    cfg->queue_path == NULL || cfg->random == NULL ||
	    cfg->on_event == NULL ||
	    (cfg->mem_alloc == NULL) != (cfg->mem_free == NULL))
		return SOKOTERM_ERR_ARG;
	fw = cfg->firmware != NULL ? cfg->firmware : "libsokoterm";
	id_len = strlen(cfg->terminal_id);
	fw_len = strlen(fw);
	if (id_len == 0 || id_len > TERMINAL_ID_MAX || fw_len > FIRMWARE_MAX ||
	    !cbor_utf8_valid((const uint8_t *)cfg->terminal_id, id_len) ||
	    !cbor_utf8_valid((const uint8_t *)fw, fw_len))
		return SOKOTERM_ERR_ARG;
	if (cfg->mem_alloc != NULL) {
		mem.alloc = cfg->mem_alloc;
		mem.free = cfg->mem_free;
		mem.ctx = cfg->mem_ctx;
	}
	if ((t = mem.alloc(mem.ctx, sizeof *t)) == NULL)
		return SOKOTERM_ERR_NOMEM;
	memset(t, 0, sizeof *t);
	t->mem = mem;
	memcpy(t->terminal_id, cfg->terminal_id, id_len);
	t->terminal_id_len = id_len;
	memcpy(t->firmware, fw, fw_len);
	memcpy(t->kt, cfg->key, POS_KEY_LEN);
	t->pol = cfg->offline;
	if (t->pol.max_entries == 0)
		t->pol.max_entries = DEF_MAX_ENTRIES;
	if (t->pol.max_attempts == 0)
		t->pol.max_attempts = DEF_MAX_ATTEMPTS;
	t->req_timeout_ms = cfg->request_timeout_ms != 0
	                        ? cfg->request_timeout_ms
	                        : REQ_TIMEOUT_MS;
	t->is_reverse_on_timeout = cfg->is_reverse_on_timeout;
	t->keep_batches = cfg->keep_batches;
	t->is_txn_id_v4 = cfg->is_txn_id_v4;
	t->random = cfg->random;
	t->random_ctx = cfg->random_ctx;
	t->on_event = cfg->on_event;
	t->event_ctx = cfg->event_ctx;
	t->state = SOKOTERM_OFFLINE;
	t->next_req_id = 1;
	t->next_op_id = 1;
#ifdef SOKOTERM_FAULTS
	fault_init(t);
#endif
	if ((e = sokoterm_queue_open(&t->q, cfg->queue_path, &t->mem)) !=
	    SOKOTERM_OK) {
		sokoterm_free(t);
		return e;
	}
	*out = t;
	return SOKOTERM_OK;
}

void
sokoterm_free(struct sokoterm *t)
{
	struct sokoterm_mem mem;

	if (t == NULL)
		return;
	sokoterm_queue_close(t->q);
	mem = t->mem;
	sha256_wipe(t->kt, sizeof t->kt);
	sha256_wipe(&t->ks, sizeof t->ks);
	mem.free(mem.ctx, t);
}

enum sokoterm_state
sokoterm_state(const struct sokoterm *t)
{
	return t->state;
}

/* ---- output ---------------------------------------------------------- */

static void acks_flush(struct sokoterm *t);

void
sokoterm_outbox(const struct sokoterm *t, const uint8_t **p, size_t *len)
{
	*p = t->out + t->out_off;
	*len = t->out_len;
}

void
sokoterm_sent(struct sokoterm *t, size_t n)
{
	if (n > t->out_len)
		n = t->out_len;
#ifdef SOKOTERM_FAULTS
	t->fault_sent_total += n;
#endif
	t->out_off += n;
	t->out_len -= n;
	if (t->out_len == 0)
		t->out_off = 0;
	if (t->n_acks > 0 && n > 0)
		acks_flush(t); /* room now */
}

/* Room for n more bytes in the outbox, compacting if needed. */
static bool
out_room(struct sokoterm *t, size_t n)
{
	if (t->out_off + t->out_len + n <= OUT_CAP)
		return true;
	if (t->out_len + n > OUT_CAP)
		return false;
	memmove(t->out, t->out + t->out_off, t->out_len);
	t->out_off = 0;
	return true;
}

static uint32_t
take_req_id(struct sokoterm *t)
{
	uint32_t id = t->next_req_id++;

	if (t->next_req_id == 0)
		t->next_req_id = 1; /* 0 is the server's notifications */
	return id;
}

/* Encodes t->tx as the next frame under K_s into t->frame (nothing is
 * consumed).  CODEC_NEED_MORE: larger than the server's max_frame. */
static enum codec_rc
encode_tx(struct sokoterm *t, uint32_t req_id, size_t *n)
{
	struct pos_hdr h;
	const char *why = "";

	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = t->tx.type;
	h.req_id = req_id;
	h.counter = t->next_tx;
	*n = 0;
	return pos_encode_key(t->frame, t->max_frame, &h, &t->tx, &t->ks, n,
	                      &why);
}

/* Moves the n-byte frame in t->frame to the outbox and consumes its
 * counter; false (nothing changed) if there is no room. */
static bool
append_frame(struct sokoterm *t, size_t n)
{
	if (!out_room(t, n))
		return false;
	memcpy(t->out + t->out_off + t->out_len, t->frame, n);
	t->out_len += n;
#ifdef SOKOTERM_FAULTS
	t->fault_out_total += n;
#endif
	t->next_tx++;
	t->last_tx_ms = t->now;
	return true;
}

/*
 * t->tx as the next frame into the outbox.  Nothing is consumed (counter,
 * req_id) unless it fits.  ARG: the codec refused the message (a field
 * over its limit); BUSY: no room.
 */
static enum sokoterm_err
send_tx(struct sokoterm *t, uint32_t req_id)
{
	size_t n = 0;
	enum codec_rc rc = encode_tx(t, req_id, &n);

	if (rc == CODEC_NEED_MORE)
		return SOKOTERM_ERR_BUSY;
	if (rc != CODEC_OK)
		return SOKOTERM_ERR_ARG;
	return append_frame(t, n) ? SOKOTERM_OK : SOKOTERM_ERR_BUSY;
}

/* A frame around a body already encoded (a stored request), as send_tx. */
static enum sokoterm_err
send_body(struct sokoterm *t, uint16_t type, uint32_t req_id,
          const uint8_t *body, size_t body_len)
{
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0;
	enum codec_rc rc;

	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = type;
	h.req_id = req_id;
	h.counter = t->next_tx;
	rc = pos_frame_encode_key(t->frame, t->max_frame, &h, body, body_len,
	                          &t->ks, &n, &why);
	if (rc == CODEC_NEED_MORE)
		return SOKOTERM_ERR_BUSY;
	if (rc != CODEC_OK)
		return SOKOTERM_ERR_ARG;
	return append_frame(t, n) ? SOKOTERM_OK : SOKOTERM_ERR_BUSY;
}

/* ---- slots ----------------------------------------------------------- */

static size_t
n_inflight(const struct sokoterm *t)
{
	size_t i, n = 0;

	for (i = 0; i < SLOTS_MAX; i++)
		n += t->slots[i].kind != K_FREE;
	return n;
}

/* A free slot if the server's max_inflight allows one more, else NULL. */
static struct slot *
slot_get(struct sokoterm *t)
{
	size_t i;

	if (n_inflight(t) >= t->max_inflight)
		return NULL;
	for (i = 0; i < SLOTS_MAX; i++)
		if (t->slots[i].kind == K_FREE)
			return &t->slots[i];
	return NULL;
}

static struct slot *
slot_by_req(struct sokoterm *t, uint32_t req_id)
{
	size_t i;

	for (i = 0; i < SLOTS_MAX; i++)
		if (t->slots[i].kind != K_FREE && t->slots[i].req_id == req_id)
			return &t->slots[i];
	return NULL;
}

/* true iff a request about txn_id is in flight. */
static bool
txn_in_flight(const struct sokoterm *t, const uint8_t *txn_id)
{
	size_t i, j;

	for (i = 0; i < SLOTS_MAX; i++) {
		const struct slot *s = &t->slots[i];

		if (s->kind == K_MONEY || s->kind == K_RESOLVE ||
		    s->kind == K_REVERSAL) {
			if (memcmp(s->txn_id, txn_id, SOKOTERM_ID_LEN) == 0)
				return true;
		} else if (s->kind == K_ADVICE) {
			for (j = 0; j < s->n_items; j++)
				if (memcmp(s->items[j], txn_id,
				           SOKOTERM_ID_LEN) == 0)
					return true;
		}
	}
	return false;
}

static void
slot_fill(struct slot *s, uint8_t kind, enum sokoterm_op op, uint16_t type,
          uint32_t req_id, uint64_t op_id, const uint8_t *txn_id, uint64_t now)
{
	memset(s, 0, sizeof *s);
	s->kind = kind;
	s->op = op;
	s->type = type;
	s->req_id = req_id;
	s->op_id = op_id;
	s->sent_ms = now;
	if (txn_id != NULL)
		memcpy(s->txn_id, txn_id, SOKOTERM_ID_LEN);
}

/* ---- connection ------------------------------------------------------ */

enum sokoterm_err
sokoterm_connect(struct sokoterm *t, uint64_t now_ms)
{
	struct pos_hdr h;
	const char *why = "";
	size_t n = 0;

	if (t->state != SOKOTERM_OFFLINE)
		return SOKOTERM_ERR_STATE;
	if (now_ms > t->now)
		t->now = now_ms;
	if (t->random(t->random_ctx, t->client_nonce, POS_NONCE_LEN) != 0)
		return SOKOTERM_ERR_RANDOM;
	memset(&t->tx, 0, sizeof t->tx);
	t->tx.type = POS_MSG_LOGIN;
	t->tx.u.login.terminal_id.ptr = (const uint8_t *)t->terminal_id;
	t->tx.u.login.terminal_id.len = t->terminal_id_len;
	memcpy(t->tx.u.login.client_nonce, t->client_nonce, POS_NONCE_LEN);
	t->tx.u.login.firmware = view(t->firmware);
	memset(&h, 0, sizeof h);
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = POS_MSG_LOGIN;
	h.req_id = t->login_req_id = take_req_id(t);
	if (pos_encode(t->out, OUT_CAP, &h, &t->tx, t->kt, &n, &why) !=
	    CODEC_OK)
		return SOKOTERM_ERR_ARG; /* id/firmware were checked in new */
	t->out_off = 0;
	t->out_len = n;
	t->rx_len = 0;
#ifdef SOKOTERM_FAULTS
	t->fault_sent_total = t->fault_out_total; /* nothing pending */
	t->fault_out_total += n;
#endif
	t->login_ms = t->now;
	t->max_frame = POS_FRAME_MAX;
	t->state = SOKOTERM_LOGGING_IN;
	return SOKOTERM_OK;
}

void
sokoterm_disconnect(struct sokoterm *t)
{
	struct sokoterm_event ev;
	size_t i;

	if (t->state == SOKOTERM_OFFLINE)
		return;
	FAULT_STORE_SENT(t, true); /* before the slots set their rows */
	t->state = SOKOTERM_OFFLINE;
	t->n_acks = 0; /* the server redelivers them after the next login */
	for (i = 0; i < SLOTS_MAX; i++) {
		struct slot *s = &t->slots[i];

		if (s->kind == K_ONLINE) {
			ev_init(&ev, SOKOTERM_EV_RESULT);
			ev.op = s->op;
			ev.op_id = s->op_id;
			ev.err = SOKOTERM_ERR_CLOSED;
			emit(t, &ev);
		} else if (s->kind == K_MONEY) {
			/* Maybe processed: resolve by STATUS next session.
			 * A queue error leaves the row as it was, which is
			 * resolved the same way or resent as not processed
			 * (RETRY), both safe by idempotency (§9.1). */
			(void)sokoterm_queue_set(t->q, s->txn_id,
			                         SOKOTERM_Q_NEW, 0, false, 0);
			if (s->op_id != 0) {
				ev_init(&ev, SOKOTERM_EV_DELAYED);
				ev.op = s->op;
				ev.op_id = s->op_id;
				ev.has_txn_id = true;
				memcpy(ev.txn_id, s->txn_id, SOKOTERM_ID_LEN);
				ev.err = SOKOTERM_ERR_CLOSED;
				emit(t, &ev);
			}
		}
		s->kind = K_FREE;
	}
	t->rx_len = 0;
	t->out_off = t->out_len = 0;
#ifdef SOKOTERM_FAULTS
	t->fault_sent_total = t->fault_out_total;
#endif
	sha256_wipe(&t->ks, sizeof t->ks);
	if (t->n_reconnects < 16)
		t->n_reconnects++;
}

uint32_t
sokoterm_reconnect_delay_ms(struct sokoterm *t)
{
	uint32_t n = t->n_reconnects > 0 ? t->n_reconnects - 1 : 0;
	uint32_t ms = 1000u << (n < 6 ? n : 6);
	uint8_t r[2];
	uint32_t span, jit;

	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	if (t->random(t->random_ctx, r, sizeof r) != 0)
		return ms; /* no jitter rather than no reconnect */
	span = ms / 5;     /* +-20 % */
	jit = ((uint32_t)r[0] << 8 | r[1]) % (2 * span + 1);
	return ms - span + jit;
}

/* ---- queue results --------------------------------------------------- */

enum cls {
	C_FINAL,       /* record and never resend */
	C_PENDING,     /* COLLECT: outcome later */
	C_RETRY,       /* not processed: resend the same request later */
	C_UNKNOWN_TXN, /* server never saw it */
	C_UNKNOWN,     /* outcome unknown: STATUS later */
};

/* §7 "terminal does" column, and §8 for codes this version does not know. */
static enum cls
classify(unsigned code)
{
	switch (code) {
	case POS_CODE_APPROVED:
	case POS_CODE_STORED:
	case POS_CODE_REVERSED:
		return C_FINAL;
	case POS_CODE_PENDING:
		return C_PENDING;
	case POS_CODE_UNKNOWN_TXN:
		return C_UNKNOWN_TXN;
	case POS_CODE_RETRY_LATER:
	case POS_CODE_BUSY:
		return C_RETRY;
	case POS_CODE_SYSTEM_ERROR:
	case POS_CODE_DUPLICATE: /* without orig_code: ask */
		return C_UNKNOWN;
	default:
		break;
	}
	if (code < 10 || code >= 40) /* protocol codes never end a txn */
		return C_UNKNOWN;
	return C_FINAL;
}

static void
ev_from_res(struct sokoterm *t, struct sokoterm_event *ev, const struct res *r)
{
	ev->has_txn_id = true;
	memcpy(ev->txn_id, r->txn_id, SOKOTERM_ID_LEN);
	ev->time_ms = r->has_time ? r->time_ms : 0;
	ev->has_balance = r->has_balance;
	ev->balance = r->balance;
	ev->ref = cstr(t->ev_ref, sizeof t->ev_ref, r->ref);
	ev->text = cstr(t->ev_text, sizeof t->ev_text, r->text);
	ev->token = cstr(t->ev_token, sizeof t->ev_token, r->token);
	ev->units = cstr(t->ev_units, sizeof t->ev_units, r->units);
	ev->lines = cstr(t->ev_lines, sizeof t->ev_lines, r->lines);
}

/*
 * Applies a server answer about a queued transaction: records a final
 * outcome durably, then reports it (once: a second answer for a done row
 * changes nothing and reports nothing), or reschedules the row.  via is
 * the kind of request the answer came for (K_MONEY, K_RESOLVE, K_ADVICE;
 * K_FREE for a late or pushed answer).  retry_after_ms 0 = back-off.
 */
static enum sokoterm_err
apply_result(struct sokoterm *t, const struct res *r, uint8_t via,
             uint64_t op_id, uint64_t retry_after_ms)
{
	struct sokoterm_qrow *row = &t->row;
	struct sokoterm_event ev;
	enum sokoterm_err e;
	unsigned code = r->code;
	bool is_dup = false, changed = false;
	uint8_t st_retry, st_unknown;
	uint64_t wait;
	enum cls c;

	e = sokoterm_queue_get(t->q, r->txn_id, row);
	if (e == SOKOTERM_ERR_NOT_FOUND)
		return SOKOTERM_OK; /* not ours (or long gone): ignore */
	if (e != SOKOTERM_OK)
		return e;
	if (row->state == SOKOTERM_Q_DONE)
		return SOKOTERM_OK; /* duplicate answer: idempotent */
	if (row->state == SOKOTERM_Q_REVERSE && via != K_REVERSAL)
		return SOKOTERM_OK; /* the reversal decides now */
	if (code == POS_CODE_DUPLICATE && r->has_orig) {
		code = r->orig;
		is_dup = true;
	}
	ev_init(&ev, SOKOTERM_EV_RESULT);
	ev.op = type_op(row->type);
	ev.op_id = op_id;
	ev.is_offline = row->is_offline;
	ev.is_duplicate = is_dup;
	ev.code = code;
	ev_from_res(t, &ev, r);
	/* Where a non-final answer sends the row: advices stay advices. */
	st_retry = row->is_offline ? SOKOTERM_Q_ADVICE : SOKOTERM_Q_RETRY;
	st_unknown = row->is_offline ? SOKOTERM_Q_ADVICE : SOKOTERM_Q_NEW;
	wait = retry_after_ms != 0 ? retry_after_ms : backoff_ms(row->attempts);
	c = classify(code);
	if (via == K_FREE && c != C_FINAL)
		return SOKOTERM_OK; /* late or pushed: only outcomes count */
	if (c == C_UNKNOWN_TXN && via != K_RESOLVE)
		c = C_UNKNOWN; /* only STATUS may say "never seen" */
	switch (c) {
	case C_FINAL:
		e = sokoterm_queue_done(t->q, r->txn_id, code, now_i(t),
		                        &changed);
		if (e == SOKOTERM_OK && changed)
			emit(t, &ev);
		return e;
	case C_PENDING:
		e = sokoterm_queue_set(t->q, r->txn_id, SOKOTERM_Q_PENDING,
		                       now_i(t) + PENDING_RETRY_MS, false, 0);
		if (e == SOKOTERM_OK && op_id != 0)
			emit(t, &ev); /* PENDING now, the outcome later */
		return e;
	case C_UNKNOWN_TXN:
		if (t->is_reverse_on_timeout && !row->is_offline)
			e = sokoterm_queue_set(t->q, r->txn_id,
			                       SOKOTERM_Q_REVERSE, now_i(t),
			                       true, 1);
		else /* never seen: the same request again (§7) */
			e = sokoterm_queue_set(t->q, r->txn_id, st_retry,
			                       now_i(t), true, 0);
		return e;
	case C_RETRY:
		e = sokoterm_queue_set(t->q, r->txn_id,
		                       via == K_RESOLVE ? st_unknown : st_retry,
		                       now_i(t) + (int64_t)wait, true, 0);
		break;
	case C_UNKNOWN:
		e = sokoterm_queue_set(t->q, r->txn_id, st_unknown,
		                       now_i(t) + (int64_t)wait, true, 0);
		break;
	}
	if (e == SOKOTERM_OK && op_id != 0) {
		ev.type = SOKOTERM_EV_DELAYED;
		emit(t, &ev);
	}
	return e;
}

/* Result keys 1-7 (§6.2) of any result-shaped body into *r. */
#define RES_FROM(r, m)                                                         \
	do {                                                                   \
		(r)->code = (unsigned)(m).code;                                \
		memcpy((r)->txn_id, (m).txn_id, SOKOTERM_ID_LEN);              \
		if ((m).has_ref)                                               \
			(r)->ref = (m).ref;                                    \
		if ((m).has_text)                                              \
			(r)->text = (m).text;                                  \
		(r)->has_time = (m).has_time_ms;                               \
		(r)->time_ms = (m).time_ms;                                    \
		(r)->has_balance = (m).has_balance;                            \
		(r)->balance = (m).balance;                                    \
		(r)->has_orig = (m).has_orig_code;                             \
		(r)->orig = (unsigned)(m).orig_code;                           \
	} while (0)

/* Fills *r from a decoded result-shaped message; false if m is not one. */
static bool
res_of(const struct pos_msg *m, struct res *r)
{
	memset(r, 0, sizeof *r);
	switch (m->type) {
	case POS_MSG_COLLECT_RESP:
		RES_FROM(r, m->u.collect_resp);
		return true;
	case POS_MSG_COLLECT_RESULT:
		RES_FROM(r, m->u.collect_result);
		if (m->u.collect_result.has_token) /* a BILL_PAY's */
			r->token = m->u.collect_result.token;
		return true;
	case POS_MSG_CASH_IN_RESP:
		RES_FROM(r, m->u.cash_in_resp);
		return true;
	case POS_MSG_CASH_OUT_RESP:
		RES_FROM(r, m->u.cash_out_resp);
		return true;
	case POS_MSG_FLOAT_TRANSFER_RESP:
		RES_FROM(r, m->u.float_transfer_resp);
		return true;
	case POS_MSG_BILL_PAY_RESP:
		RES_FROM(r, m->u.bill_pay_resp);
		if (m->u.bill_pay_resp.has_token)
			r->token = m->u.bill_pay_resp.token;
		if (m->u.bill_pay_resp.has_units)
			r->units = m->u.bill_pay_resp.units;
		return true;
	case POS_MSG_STATUS_RESP:
		RES_FROM(r, m->u.status_resp);
		if (m->u.status_resp.has_token)
			r->token = m->u.status_resp.token;
		return true;
	case POS_MSG_REVERSAL_RESP:
		RES_FROM(r, m->u.reversal_resp);
		return true;
	case POS_MSG_RECEIPT_RESP:
		RES_FROM(r, m->u.receipt_resp);
		if (m->u.receipt_resp.has_token)
			r->token = m->u.receipt_resp.token;
		if (m->u.receipt_resp.has_lines)
			r->lines = m->u.receipt_resp.lines;
		return true;
	default:
		return false;
	}
}

/* Reschedules every row of an advice batch that got no per-item answer. */
static enum sokoterm_err
advice_backoff(struct sokoterm *t, const struct slot *s, uint64_t wait)
{
	enum sokoterm_err e = SOKOTERM_OK;
	size_t i;

	for (i = 0; i < s->n_items && e == SOKOTERM_OK; i++)
		e = sokoterm_queue_set(t->q, s->items[i], SOKOTERM_Q_ADVICE,
		                       now_i(t) + (int64_t)wait, true, 0);
	return e;
}

/* A REVERSAL answer (§9.3) for a queued row. */
static enum sokoterm_err
apply_reversal(struct sokoterm *t, const struct res *r, uint64_t op_id)
{
	struct sokoterm_qrow *row = &t->row;
	struct sokoterm_event ev;
	enum sokoterm_err e;
	bool changed = false;

	e = sokoterm_queue_get(t->q, r->txn_id, row);
	if (e == SOKOTERM_ERR_NOT_FOUND)
		return SOKOTERM_OK;
	if (e != SOKOTERM_OK)
		return e;
	if (row->state != SOKOTERM_Q_REVERSE)
		return SOKOTERM_OK; /* answered already */
	ev_init(&ev, SOKOTERM_EV_RESULT);
	ev.op = SOKOTERM_OP_REVERSAL;
	ev.op_id = op_id;
	ev.code = r->code;
	ev_from_res(t, &ev, r);
	if (r->code == POS_CODE_APPROVED) {
		/* Voided: the transaction did not and will not happen. */
		e = sokoterm_queue_done(t->q, r->txn_id, POS_CODE_REVERSED,
		                        now_i(t), &changed);
	} else if (r->code == POS_CODE_NOT_REVERSIBLE) {
		if (row->was_done) /* back to its earlier final outcome */
			e = sokoterm_queue_done(t->q, r->txn_id, row->code,
			                        now_i(t), &changed);
		else /* happened or not: ask */
			e = sokoterm_queue_set(t->q, r->txn_id, SOKOTERM_Q_NEW,
			                       now_i(t), false, 0);
		changed = true;
	} else { /* RETRY_LATER, SYSTEM_ERROR ...: keep it queued */
		return sokoterm_queue_set(
		    t->q, r->txn_id, SOKOTERM_Q_REVERSE,
		    now_i(t) + (int64_t)backoff_ms(row->attempts), true,
		    row->reason);
	}
	if (e == SOKOTERM_OK && changed)
		emit(t, &ev);
	return e;
}

/* EOD_TOTALS_RESP: the batch is closed (APPROVED: the totals agree;
 * TOTALS_MISMATCH: they do not, the server's are authoritative).  The
 * close is recorded, committed, then reported with both sets of lines;
 * a failed write is reported with err QUEUE (the close is sent again
 * later, the server answers the same batch again).  Another code: not
 * closed. */
static void
eod_result(struct sokoterm *t, struct sokoterm_event *ev,
           const struct pos_eod_totals_resp *b)
{
	enum sokoterm_err e = SOKOTERM_OK;
	uint64_t n_pruned = 0;
	size_t i;

	ev->code = (unsigned)b->code;
	ev->batch_no = t->eod_no;
	ev->totals = t->eod_own;
	ev->n_totals = t->n_eod_own;
	t->n_eod_srv = 0;
	for (i = 0; i < b->n_totals && i < SOKOTERM_TOTALS_MAX; i++) {
		struct sokoterm_total *l = &t->eod_srv[t->n_eod_srv++];

		l->op = type_op((uint16_t)b->totals[i].type);
		if (!is_money_op(l->op))
			l->op = SOKOTERM_OP_NONE;
		l->currency = (uint16_t)b->totals[i].currency;
		l->count = (uint32_t)b->totals[i].count;
		l->sum = b->totals[i].sum;
	}
	ev->server_totals = t->eod_srv;
	ev->n_server_totals = t->n_eod_srv;
	if (b->batch_no != t->eod_no) {
		ev->code = POS_CODE_SYSTEM_ERROR; /* not ours: not closed */
	} else if (b->code == POS_CODE_APPROVED ||
	           b->code == POS_CODE_TOTALS_MISMATCH) {
		if (t->is_group)
			e = group_flush(t); /* earlier answers first */
		if (e == SOKOTERM_OK)
			e = sokoterm_queue_batch_closed(t->q, t->eod_no,
			                                (unsigned)b->code,
			                                now_i(t));
		if (e == SOKOTERM_OK && t->is_group)
			e = group_flush(t);
		if (e != SOKOTERM_OK) {
			/* not recorded: the host hears it (err), and the
			 * next close sends this batch again */
			ev->err = e;
			emit(t, ev);
			return;
		}
		/* cfg.keep_batches: older batches' done entries go (one
		 * statement; a failure keeps them until the next close) */
		if (t->keep_batches > 0 &&
		    sokoterm_queue_prune(t->q, t->keep_batches, &n_pruned) ==
		        SOKOTERM_OK &&
		    t->is_group)
			(void)group_flush(t);
	}
	emit(t, ev);
}

/* A non-money answer for a K_ONLINE slot: report it as it is. */
static void
online_result(struct sokoterm *t, const struct slot *s, const struct pos_msg *m)
{
	struct sokoterm_event ev;
	struct res r;

	ev_init(&ev, SOKOTERM_EV_RESULT);
	ev.op = s->op;
	ev.op_id = s->op_id;
	if (m->type == POS_MSG_ECHO_RESP) {
		ev.code = POS_CODE_APPROVED;
		ev.time_ms = m->u.echo_resp.time_ms;
	} else if (m->type == POS_MSG_BILL_VALIDATE_RESP) {
		const struct pos_bill_validate_resp *b =
		    &m->u.bill_validate_resp;
		struct pos_bytes none = {NULL, 0};

		ev.code = (unsigned)b->code;
		ev.has_amount_due = b->has_amount_due;
		ev.amount_due = b->amount_due;
		ev.customer_name =
		    cstr(t->ev_name, sizeof t->ev_name,
		         b->has_customer_name ? b->customer_name : none);
		ev.validation_ref =
		    cstr(t->ev_vref, sizeof t->ev_vref,
		         b->has_validation_ref ? b->validation_ref : none);
		ev.text = cstr(t->ev_text, sizeof t->ev_text,
		               b->has_text ? b->text : none);
	} else if (m->type == POS_MSG_EOD_TOTALS_RESP) {
		eod_result(t, &ev, &m->u.eod_totals_resp);
		return;
	} else if (res_of(m, &r)) {
		ev.code = r.code;
		if (r.code == POS_CODE_DUPLICATE && r.has_orig) {
			ev.code = r.orig;
			ev.is_duplicate = true;
		}
		ev_from_res(t, &ev, &r);
	} else {
		ev.code = POS_CODE_SYSTEM_ERROR;
	}
	emit(t, &ev);
}

/* The answer to an ADVICE_BATCH: results[i] answers items[i] (§6.15); each
 * is matched by its txn_id anyway, and items left unanswered back off. */
static enum sokoterm_err
advice_result(struct sokoterm *t, const struct slot *s,
              const struct pos_advice_batch_resp *b)
{
	enum sokoterm_err e = SOKOTERM_OK;
	struct res r;
	size_t i, j;
	bool is_answered;

	for (i = 0; i < b->n_results && e == SOKOTERM_OK; i++) {
		const struct pos_advice_result *a = &b->results[i];

		memset(&r, 0, sizeof r);
		r.code = (unsigned)a->code;
		memcpy(r.txn_id, a->txn_id, SOKOTERM_ID_LEN);
		if (a->has_ref)
			r.ref = a->ref;
		if (a->has_token)
			r.token = a->token;
		r.has_orig = a->has_orig_code;
		r.orig = (unsigned)a->orig_code;
		e = apply_result(t, &r, K_ADVICE, 0, 0);
	}
	for (j = 0; j < s->n_items && e == SOKOTERM_OK; j++) {
		is_answered = false;
		for (i = 0; i < b->n_results; i++)
			if (memcmp(b->results[i].txn_id, s->items[j],
			           SOKOTERM_ID_LEN) == 0)
				is_answered = true;
		if (!is_answered)
			e = sokoterm_queue_set(
			    t->q, s->items[j], SOKOTERM_Q_ADVICE,
			    now_i(t) + (int64_t)backoff_ms(0), true, 0);
	}
	return e;
}

/* T | 0xC000: the request was not processed (§6.1). */
static enum sokoterm_err
on_refusal(struct sokoterm *t, uint32_t req_id, const struct pos_error *er)
{
	struct slot *s = slot_by_req(t, req_id);
	struct sokoterm_event ev;
	struct slot copy;
	enum sokoterm_err e = SOKOTERM_OK;
	uint64_t wait = er->has_retry_after_s ? er->retry_after_s * 1000u : 0;
	bool changed = false;

	switch (er->code) {
	case POS_CODE_BAD_MAC:
	case POS_CODE_BAD_COUNTER:
	case POS_CODE_NOT_LOGGED_IN:
		return fail(t, SOKOTERM_ERR_AUTH); /* the server closes too */
	case POS_CODE_MALFORMED:
	case POS_CODE_UNSUPPORTED_VERSION:
		if (req_id == 0 || s == NULL)
			return fail(t, SOKOTERM_ERR_PROTOCOL);
		break;
	default:
		break;
	}
	if (s == NULL)
		return SOKOTERM_OK;
	copy = *s;
	s->kind = K_FREE;
	if (wait == 0)
		wait = backoff_ms(0);
	switch (copy.kind) {
	case K_ONLINE:
		ev_init(&ev, SOKOTERM_EV_RESULT);
		ev.op = copy.op;
		ev.op_id = copy.op_id;
		ev.code = (unsigned)er->code;
		emit(t, &ev);
		break;
	case K_MONEY:
		if (er->code == POS_CODE_BUSY ||
		    er->code == POS_CODE_RETRY_LATER) {
			e = sokoterm_queue_set(
			    t->q, copy.txn_id, SOKOTERM_Q_RETRY,
			    now_i(t) + (int64_t)wait, true, 0);
			if (e == SOKOTERM_OK && copy.op_id != 0) {
				ev_init(&ev, SOKOTERM_EV_DELAYED);
				ev.op = copy.op;
				ev.op_id = copy.op_id;
				ev.code = (unsigned)er->code;
				ev.has_txn_id = true;
				memcpy(ev.txn_id, copy.txn_id, SOKOTERM_ID_LEN);
				emit(t, &ev);
			}
			break;
		}
		/* MALFORMED, UNSUPPORTED_TYPE ...: nothing happened and
		 * resending unchanged cannot help (§7): final. */
		e = sokoterm_queue_done(t->q, copy.txn_id, (unsigned)er->code,
		                        now_i(t), &changed);
		if (e == SOKOTERM_OK && changed) {
			ev_init(&ev, SOKOTERM_EV_RESULT);
			ev.op = copy.op;
			ev.op_id = copy.op_id;
			ev.code = (unsigned)er->code;
			ev.has_txn_id = true;
			memcpy(ev.txn_id, copy.txn_id, SOKOTERM_ID_LEN);
			emit(t, &ev);
		}
		break;
	case K_RESOLVE:
	case K_REVERSAL:
		e = sokoterm_queue_set(t->q, copy.txn_id, copy.row_state,
		                       now_i(t) + (int64_t)wait, true, 0);
		break;
	case K_ADVICE:
		e = advice_backoff(t, &copy, wait);
		break;
	default:
		break;
	}
	return e;
}

/* A response T | 0x8000 from the server. */
static enum sokoterm_err
on_response(struct sokoterm *t, uint32_t req_id, const struct pos_msg *m)
{
	struct slot *s = slot_by_req(t, req_id);
	struct slot copy;
	struct res r;

	if (s != NULL && (s->type | POS_TYPE_RESP) != m->type)
		s = NULL; /* req_id reused by a confused peer: not ours */
	if (s == NULL) {
		/* Late (after a timeout) or repeated: a result about a
		 * queued transaction is still the truth about it. */
		if (m->type != POS_MSG_REVERSAL_RESP && res_of(m, &r))
			return apply_result(t, &r, K_FREE, 0, 0);
		return SOKOTERM_OK;
	}
	copy = *s;
	s->kind = K_FREE;
	switch (copy.kind) {
	case K_HEARTBEAT:
		return SOKOTERM_OK;
	case K_ONLINE:
		online_result(t, &copy, m);
		return SOKOTERM_OK;
	case K_MONEY:
	case K_RESOLVE:
		if (!res_of(m, &r))
			return SOKOTERM_OK;
		if (memcmp(r.txn_id, copy.txn_id, SOKOTERM_ID_LEN) != 0)
			return fail(t, SOKOTERM_ERR_PROTOCOL);
		return apply_result(t, &r, copy.kind, copy.op_id, 0);
	case K_REVERSAL:
		if (!res_of(m, &r))
			return SOKOTERM_OK;
		return apply_reversal(t, &r, copy.op_id);
	case K_ADVICE:
		if (m->u.advice_batch_resp.code != POS_CODE_APPROVED &&
		    m->u.advice_batch_resp.n_results == 0)
			return advice_backoff(t, &copy, 0);
		return advice_result(t, &copy, &m->u.advice_batch_resp);
	default:
		return SOKOTERM_OK;
	}
}

/* One COLLECT_RESULT_ACK into the outbox; BUSY when it has no room. */
static enum sokoterm_err
send_ack(struct sokoterm *t, const uint8_t *txn_id)
{
	memset(&t->tx, 0, sizeof t->tx);
	t->tx.type = POS_MSG_COLLECT_RESULT_ACK;
	memcpy(t->tx.u.collect_result_ack.txn_id, txn_id, SOKOTERM_ID_LEN);
	return send_tx(t, 0);
}

/* The ACKs that waited for room, in order, as far as room goes. */
static void
acks_flush(struct sokoterm *t)
{
	uint8_t i = 0;

	if (t->state != SOKOTERM_READY)
		return;
	while (i < t->n_acks && send_ack(t, t->acks[i]) == SOKOTERM_OK)
		i++;
	if (i == 0)
		return;
	memmove(t->acks[0], t->acks[i], (size_t)(t->n_acks - i) *
	                                     SOKOTERM_ID_LEN);
	t->n_acks = (uint8_t)(t->n_acks - i);
}

/* COLLECT_RESULT (§6.6): record, then acknowledge once durable. */
static enum sokoterm_err
on_collect_result(struct sokoterm *t, const struct pos_msg *m)
{
	uint8_t txn_id[SOKOTERM_ID_LEN];
	enum sokoterm_err e;
	struct res r;

	res_of(m, &r);
	memcpy(txn_id, r.txn_id, SOKOTERM_ID_LEN);
	if (classify(r.code) != C_FINAL)
		return SOKOTERM_OK; /* not an outcome: STATUS will tell */
	if ((e = apply_result(t, &r, K_FREE, 0, 0)) != SOKOTERM_OK)
		return e; /* no ACK: the server redelivers */
	/* The ACK must not even be queued before the record is durable. */
	if (t->is_group && (e = group_flush(t)) != SOKOTERM_OK)
		return e;
	if ((t->n_acks > 0 || send_ack(t, txn_id) != SOKOTERM_OK) &&
	    t->n_acks < ACKS_MAX) {
		/* no room (or older ones wait): sent when there is; past
		 * ACKS_MAX the server redelivers after the next login */
		memcpy(t->acks[t->n_acks++], txn_id, SOKOTERM_ID_LEN);
	}
	return SOKOTERM_OK;
}

/* ---- input ----------------------------------------------------------- */

static enum sokoterm_err
on_login_frame(struct sokoterm *t, const struct pos_frame *f)
{
	struct sokoterm_event ev;
	uint8_t ks[POS_KEY_LEN];
	const char *why = "";
	const struct pos_login_ok *ok = &t->msg.u.login_ok;

	if (f->hdr.type == POS_MSG_LOGIN_FAIL) {
		ev_init(&ev, SOKOTERM_EV_LOGIN_FAIL);
		ev.code = POS_CODE_AUTH_FAILED;
		/* MAC'd with K_t (BLOCKED) or a zero-MAC hint; either way
		 * nothing durable changes (§4.2). */
		if (pos_msg_decode(&t->msg, POS_MSG_LOGIN_FAIL, f->body,
		                   f->body_len, &why) == CODEC_OK)
			ev.code = (unsigned)t->msg.u.error.code;
		emit(t, &ev);
		return fail(t, SOKOTERM_ERR_AUTH);
	}
	if (f->hdr.type != POS_MSG_LOGIN_OK)
		return fail(t, SOKOTERM_ERR_PROTOCOL);
	if (pos_frame_open(&t->msg, f, t->kt, POS_S2T, NULL, &why) !=
	    POS_CODE_APPROVED)
		return fail(t, SOKOTERM_ERR_AUTH);
	if (f->hdr.req_id != t->login_req_id ||
	    !sha256_equal(ok->client_nonce, t->client_nonce, POS_NONCE_LEN))
		return fail(t, SOKOTERM_ERR_AUTH); /* not this login's answer */
	pos_session_key(ks, t->kt, (const uint8_t *)t->terminal_id,
	                t->terminal_id_len, t->client_nonce, ok->server_nonce);
	pos_key_init(&t->ks, ks);
	sha256_wipe(ks, sizeof ks);
	t->last_rx = 0;
	t->next_tx = 1;
	t->session_id = ok->session_id;
	t->heartbeat_ms = ok->heartbeat_s * 1000u;
	t->max_inflight = ok->max_inflight < SLOTS_MAX
	                      ? (uint32_t)ok->max_inflight
	                      : SLOTS_MAX;
	if (t->max_inflight == 0)
		t->max_inflight = 1;
	t->max_frame = ok->max_frame >= POS_FRAME_MIN ? (size_t)ok->max_frame
	                                              : POS_FRAME_MAX;
	t->last_tx_ms = t->now;
	t->n_reconnects = 0;
	t->replay_cursor = 0;
	t->state = SOKOTERM_READY;
	ev_init(&ev, SOKOTERM_EV_LOGIN);
	ev.session_id = t->session_id;
	ev.time_ms = ok->time_ms;
	emit(t, &ev);
	return SOKOTERM_OK;
}

static enum sokoterm_err
on_frame(struct sokoterm *t, const struct pos_frame *f)
{
	const char *why = "";
	enum pos_code rc;
	uint16_t type = f->hdr.type;

	if (t->state == SOKOTERM_LOGGING_IN)
		return on_login_frame(t, f);
	rc = pos_frame_open_key(&t->msg, f, &t->ks, POS_S2T, &t->last_rx,
	                        &why);
	if (rc == POS_CODE_BAD_MAC)
		return fail(t, SOKOTERM_ERR_AUTH);
	if (rc == POS_CODE_BAD_COUNTER)
		return fail(t, SOKOTERM_ERR_PROTOCOL);
	if (rc != POS_CODE_APPROVED)
		return SOKOTERM_OK; /* authentic but unknown (§8): skip */
	if ((type & POS_TYPE_FAIL) == POS_TYPE_FAIL)
		return on_refusal(t, f->hdr.req_id, &t->msg.u.error);
	if (type == POS_MSG_COLLECT_RESULT)
		return on_collect_result(t, &t->msg);
	if ((type & POS_TYPE_RESP) != 0)
		return on_response(t, f->hdr.req_id, &t->msg);
	return SOKOTERM_OK;
}

static void pump(struct sokoterm *t);

enum sokoterm_err
sokoterm_feed(struct sokoterm *t, const uint8_t *buf, size_t len)
{
	struct pos_frame f;
	const char *why = "";
	enum sokoterm_err e = SOKOTERM_OK;
	enum codec_rc rc;
	size_t n, used;

	if (t->state == SOKOTERM_OFFLINE)
		return SOKOTERM_ERR_STATE;
	FAULT_STORE_SENT(t, false); /* an answer can only follow a send */
	group_begin(t);
	while (len > 0 && t->state != SOKOTERM_CLOSING) {
		n = sizeof t->rx - t->rx_len;
		n = n < len ? n : len;
		memcpy(t->rx + t->rx_len, buf, n);
		t->rx_len += n;
		buf += n;
		len -= n;
		for (;;) {
			if (t->state == SOKOTERM_CLOSING)
				break;
			rc =
			    pos_frame_decode(&f, t->rx, t->rx_len, &used, &why);
			if (rc == CODEC_NEED_MORE)
				break;
			if (rc == CODEC_BAD) {
				e = fail(t, SOKOTERM_ERR_PROTOCOL);
				break;
			}
			e = on_frame(t, &f);
			memmove(t->rx, t->rx + used, t->rx_len - used);
			t->rx_len -= used;
			if (e != SOKOTERM_OK)
				break;
		}
		if (e != SOKOTERM_OK)
			break;
	}
	if (t->state == SOKOTERM_CLOSING) {
		e = group_end(t, e);
		return e != SOKOTERM_OK ? e : SOKOTERM_ERR_PROTOCOL;
	}
	pump(t);
	return group_end(t, e);
}

/* ---- replay ---------------------------------------------------------- */

static bool
replay_in_flight(const struct sokoterm *t)
{
	size_t i;

	for (i = 0; i < SLOTS_MAX; i++)
		if (t->slots[i].kind == K_RESOLVE ||
		    t->slots[i].kind == K_REVERSAL ||
		    t->slots[i].kind == K_ADVICE ||
		    (t->slots[i].kind == K_MONEY && t->slots[i].op_id == 0))
			return true;
	return false;
}

/* true (and EV_HELD reported) if row must stop being retried. */
static bool
hold(struct sokoterm *t, const struct sokoterm_qrow *r)
{
	struct sokoterm_event ev;

	/* a released entry's age counts from its release */
	int64_t since = r->released_ms > r->created_ms ? r->released_ms
	                                               : r->created_ms;

	if (r->attempts < t->pol.max_attempts &&
	    (t->pol.replay_max_age_ms == 0 ||
	     now_i(t) - since <= (int64_t)t->pol.replay_max_age_ms))
		return false;
	if (sokoterm_queue_set(t->q, r->txn_id, SOKOTERM_Q_HELD, 0, false, 0) !=
	    SOKOTERM_OK)
		return true; /* skip it this round all the same */
	ev_init(&ev, SOKOTERM_EV_HELD);
	ev.op = type_op(r->type);
	ev.has_txn_id = true;
	memcpy(ev.txn_id, r->txn_id, SOKOTERM_ID_LEN);
	ev.is_offline = r->is_offline;
	ev.err = SOKOTERM_ERR_TIMEOUT;
	emit(t, &ev);
	return true;
}

/* An advice item (§6.15) from a stored request body; false if the body
 * does not decode (then the row is held: it cannot be sent). */
static bool
advice_of(struct sokoterm *t, const struct sokoterm_qrow *r,
          struct pos_advice *a)
{
	const struct pos_msg *m = &t->tmp;
	const char *why = "";

	memset(a, 0, sizeof *a);
	if (pos_msg_decode(&t->tmp, r->type, r->body, r->body_len, &why) !=
	    CODEC_OK)
		return false;
	memcpy(a->txn_id, r->txn_id, SOKOTERM_ID_LEN);
	a->type = r->type;
	a->amount = r->amount;
	a->currency = r->currency;
	a->local_time_ms = (uint64_t)r->created_ms;
	switch (r->type) {
	case POS_MSG_CASH_IN:
		a->msisdn = m->u.cash_in.msisdn;
		a->has_msisdn = true;
		a->provider = m->u.cash_in.provider;
		a->has_provider = m->u.cash_in.has_provider;
		break;
	case POS_MSG_CASH_OUT:
		a->msisdn = m->u.cash_out.msisdn;
		a->has_msisdn = true;
		a->provider = m->u.cash_out.provider;
		a->has_provider = m->u.cash_out.has_provider;
		break;
	case POS_MSG_FLOAT_TRANSFER:
		a->to_agent = m->u.float_transfer.to_agent;
		a->has_to_agent = true;
		break;
	case POS_MSG_BILL_PAY:
		a->biller = m->u.bill_pay.biller;
		a->has_biller = true;
		a->account = m->u.bill_pay.account;
		a->has_account = true;
		a->msisdn = m->u.bill_pay.msisdn;
		a->has_msisdn = m->u.bill_pay.has_msisdn;
		break;
	default:
		return false;
	}
	return true;
}

/*
 * Sends one ADVICE_BATCH of consecutive advice rows from the start of
 * rows[0..n), as many as fit in max_frame (at most POS_BATCH_MAX).  Leading
 * rows that cannot go (in flight, held) are skipped.  Returns how many rows
 * it consumed, 0 if nothing could be sent now (outbox full).
 */
static size_t
send_advice(struct sokoterm *t, struct slot *s, struct sokoterm_qrow *rows,
            size_t n)
{
	struct pos_advice_batch *b;
	size_t i, k, first = 0, fsz = 0;
	uint32_t req_id = t->next_req_id;
	bool is_skip;

	memset(&t->tx, 0, sizeof t->tx);
	t->tx.type = POS_MSG_ADVICE_BATCH;
	b = &t->tx.u.advice_batch;
	for (i = 0; i < n && rows[i].state == SOKOTERM_Q_ADVICE; i++) {
		is_skip = txn_in_flight(t, rows[i].txn_id) || hold(t, &rows[i]);
		/* advice_of() decodes into t->tmp; the item's views point
		 * into rows[i].body, which outlives the frame. */
		if (!is_skip &&
		    !advice_of(t, &rows[i], &b->items[b->n_items])) {
			(void)sokoterm_queue_set(t->q, rows[i].txn_id,
			                         SOKOTERM_Q_HELD, 0, false, 0);
			is_skip = true;
		}
		if (is_skip) {
			if (b->n_items > 0)
				break; /* keep the batch contiguous */
			first = i + 1;
			continue;
		}
		b->n_items++;
	}
	if (b->n_items == 0)
		return first;
	for (k = b->n_items; k > 0; k--) {
		b->n_items = k;
		if (encode_tx(t, req_id, &fsz) == CODEC_OK)
			break;
	}
	if (k == 0 || !append_frame(t, fsz))
		return 0;
	(void)take_req_id(t);
	slot_fill(s, K_ADVICE, SOKOTERM_OP_NONE, POS_MSG_ADVICE_BATCH, req_id,
	          0, NULL, t->now);
	for (i = 0; i < k; i++)
		memcpy(s->items[i], b->items[i].txn_id, SOKOTERM_ID_LEN);
	s->n_items = k;
	return first + k;
}

/* Sends what one due row needs.  Returns false if nothing could be sent
 * (no room): the caller stops for now. */
static bool
replay_row(struct sokoterm *t, struct slot *s, const struct sokoterm_qrow *r)
{
	uint32_t req_id = t->next_req_id;
	uint8_t kind;
	uint16_t type;

	switch (r->state) {
	case SOKOTERM_Q_RETRY:
		if (r->body_len == 0)
			return true;
		if (send_body(t, r->type, req_id, r->body, r->body_len) !=
		    SOKOTERM_OK)
			return false;
		kind = K_MONEY;
		type = r->type;
		break;
	case SOKOTERM_Q_NEW:
	case SOKOTERM_Q_PENDING:
		memset(&t->tx, 0, sizeof t->tx);
		t->tx.type = POS_MSG_STATUS;
		memcpy(t->tx.u.status.txn_id, r->txn_id, SOKOTERM_ID_LEN);
		if (send_tx(t, req_id) != SOKOTERM_OK)
			return false;
		kind = K_RESOLVE;
		type = POS_MSG_STATUS;
		break;
	case SOKOTERM_Q_REVERSE:
		memset(&t->tx, 0, sizeof t->tx);
		t->tx.type = POS_MSG_REVERSAL;
		memcpy(t->tx.u.reversal.txn_id, r->txn_id, SOKOTERM_ID_LEN);
		if (r->reason != 0) {
			t->tx.u.reversal.reason = r->reason;
			t->tx.u.reversal.has_reason = true;
		}
		if (send_tx(t, req_id) != SOKOTERM_OK)
			return false;
		kind = K_REVERSAL;
		type = POS_MSG_REVERSAL;
		break;
	default:
		return true;
	}
	(void)take_req_id(t);
	slot_fill(s, kind, type_op(r->type), type, req_id, 0, r->txn_id,
	          t->now);
	s->row_state = r->state;
	return true;
}

/*
 * Replays due queue rows in seq order while slots and outbox room allow:
 * advices in batches, unknown outcomes by STATUS, not-processed requests
 * resent as they were, reversals until acknowledged.  A queue error stops
 * this round; the next tick tries again.
 */
static void
pump(struct sokoterm *t)
{
	struct slot *s;
	size_t n, used;
	bool is_reset = false;
	int guard;

	for (guard = 0; guard < 4 * SLOTS_MAX; guard++) {
		if (t->state != SOKOTERM_READY || (s = slot_get(t)) == NULL)
			return;
		if (sokoterm_queue_due(t->q, t->replay_cursor, now_i(t),
		                       t->rows, POS_BATCH_MAX,
		                       &n) != SOKOTERM_OK)
			return;
		if (n == 0) {
			if (is_reset || t->replay_cursor == 0 ||
			    replay_in_flight(t))
				return;
			t->replay_cursor = 0; /* sweep again from the start */
			is_reset = true;
			continue;
		}
		if (t->rows[0].state == SOKOTERM_Q_ADVICE) {
			used = send_advice(t, s, t->rows, n);
			if (used == 0)
				return;
			t->replay_cursor = t->rows[used - 1].seq;
			continue;
		}
		if (!txn_in_flight(t, t->rows[0].txn_id) &&
		    !hold(t, &t->rows[0]) && !replay_row(t, s, &t->rows[0]))
			return;
		t->replay_cursor = t->rows[0].seq;
	}
}

/* ---- time -------------------------------------------------------------- */

enum sokoterm_err
sokoterm_tick(struct sokoterm *t, uint64_t now_ms)
{
	struct sokoterm_event ev;
	enum sokoterm_err e = SOKOTERM_OK;
	struct slot copy;
	size_t i;

	if (now_ms > t->now)
		t->now = now_ms;
	FAULT_STORE_SENT(t, false);
	if (t->state == SOKOTERM_LOGGING_IN &&
	    t->now - t->login_ms >= LOGIN_TIMEOUT_MS)
		return fail(t, SOKOTERM_ERR_TIMEOUT);
	if (t->state != SOKOTERM_READY)
		return SOKOTERM_OK;
	acks_flush(t);
	for (i = 0; i < SLOTS_MAX; i++) {
		struct slot *s = &t->slots[i];
		uint64_t limit = s->kind == K_HEARTBEAT ? ECHO_TIMEOUT_MS
		                                        : t->req_timeout_ms;

		if (s->kind == K_FREE || t->now - s->sent_ms < limit)
			continue;
		copy = *s;
		s->kind = K_FREE;
		switch (copy.kind) {
		case K_HEARTBEAT: /* §3.2: close and log in again */
			return fail(t, SOKOTERM_ERR_TIMEOUT);
		case K_ONLINE:
			ev_init(&ev, SOKOTERM_EV_RESULT);
			ev.op = copy.op;
			ev.op_id = copy.op_id;
			ev.err = SOKOTERM_ERR_TIMEOUT;
			emit(t, &ev);
			break;
		case K_MONEY: /* §9.2: unknown outcome; ask, never resend */
			if (t->is_reverse_on_timeout)
				e = sokoterm_queue_set(t->q, copy.txn_id,
				                       SOKOTERM_Q_REVERSE,
				                       now_i(t), true, 1);
			else
				e = sokoterm_queue_set(t->q, copy.txn_id,
				                       SOKOTERM_Q_NEW, now_i(t),
				                       true, 0);
			if (copy.op_id != 0) {
				ev_init(&ev, SOKOTERM_EV_DELAYED);
				ev.op = copy.op;
				ev.op_id = copy.op_id;
				ev.has_txn_id = true;
				memcpy(ev.txn_id, copy.txn_id, SOKOTERM_ID_LEN);
				ev.err = SOKOTERM_ERR_TIMEOUT;
				emit(t, &ev);
			}
			t->replay_cursor = 0;
			break;
		case K_RESOLVE:
		case K_REVERSAL:
			e = sokoterm_queue_set(
			    t->q, copy.txn_id, copy.row_state,
			    now_i(t) + (int64_t)backoff_ms(1), true, 0);
			break;
		case K_ADVICE:
			e = advice_backoff(t, &copy, backoff_ms(1));
			break;
		default:
			break;
		}
	}
	if (t->heartbeat_ms != 0 && t->now - t->last_tx_ms >= t->heartbeat_ms) {
		struct slot *s = slot_get(t);

		memset(&t->tx, 0, sizeof t->tx);
		t->tx.type = POS_MSG_ECHO;
		t->tx.u.echo.time_ms = t->now & POS_TIME_MAX;
		if (s != NULL && send_tx(t, t->next_req_id) == SOKOTERM_OK) {
			slot_fill(s, K_HEARTBEAT, SOKOTERM_OP_ECHO,
			          POS_MSG_ECHO, take_req_id(t), 0, NULL,
			          t->now);
		}
	}
	pump(t);
	return e;
}

/* ---- operations -------------------------------------------------------- */

/* Optional text: absent when NULL. */
#define OPT_TEXT(m, f, s)                                                      \
	do {                                                                   \
		if ((s) != NULL) {                                             \
			(m).f = view(s);                                       \
			(m).has_##f = true;                                    \
		}                                                              \
	} while (0)

/* Builds t->tx for a money op with txn_id.  ARG if a required field is
 * missing (the codec checks lengths and UTF-8 when encoding). */
static enum sokoterm_err
build_money(struct sokoterm *t, const struct sokoterm_request *r,
            const uint8_t *txn_id)
{
	struct pos_msg *m = &t->tx;

	memset(m, 0, sizeof *m);
	m->type = op_type(r->op);
	switch (r->op) {
	case SOKOTERM_OP_COLLECT:
		if (r->msisdn == NULL || r->provider == NULL)
			return SOKOTERM_ERR_ARG;
		memcpy(m->u.collect.txn_id, txn_id, SOKOTERM_ID_LEN);
		m->u.collect.amount = r->amount;
		m->u.collect.currency = r->currency;
		m->u.collect.msisdn = view(r->msisdn);
		m->u.collect.provider = view(r->provider);
		OPT_TEXT(m->u.collect, note, r->note);
		break;
	case SOKOTERM_OP_CASH_IN:
		if (r->msisdn == NULL)
			return SOKOTERM_ERR_ARG;
		memcpy(m->u.cash_in.txn_id, txn_id, SOKOTERM_ID_LEN);
		m->u.cash_in.amount = r->amount;
		m->u.cash_in.currency = r->currency;
		m->u.cash_in.msisdn = view(r->msisdn);
		OPT_TEXT(m->u.cash_in, provider, r->provider);
		break;
	case SOKOTERM_OP_CASH_OUT:
		if (r->msisdn == NULL)
			return SOKOTERM_ERR_ARG;
		memcpy(m->u.cash_out.txn_id, txn_id, SOKOTERM_ID_LEN);
		m->u.cash_out.amount = r->amount;
		m->u.cash_out.currency = r->currency;
		m->u.cash_out.msisdn = view(r->msisdn);
		OPT_TEXT(m->u.cash_out, provider, r->provider);
		OPT_TEXT(m->u.cash_out, otp, r->otp);
		break;
	case SOKOTERM_OP_FLOAT_TRANSFER:
		if (r->to_agent == NULL)
			return SOKOTERM_ERR_ARG;
		memcpy(m->u.float_transfer.txn_id, txn_id, SOKOTERM_ID_LEN);
		m->u.float_transfer.amount = r->amount;
		m->u.float_transfer.currency = r->currency;
		m->u.float_transfer.to_agent = view(r->to_agent);
		break;
	case SOKOTERM_OP_BILL_PAY:
		if (r->biller == NULL || r->account == NULL)
			return SOKOTERM_ERR_ARG;
		memcpy(m->u.bill_pay.txn_id, txn_id, SOKOTERM_ID_LEN);
		m->u.bill_pay.amount = r->amount;
		m->u.bill_pay.currency = r->currency;
		m->u.bill_pay.biller = view(r->biller);
		m->u.bill_pay.account = view(r->account);
		OPT_TEXT(m->u.bill_pay, validation_ref, r->validation_ref);
		OPT_TEXT(m->u.bill_pay, msisdn, r->msisdn);
		break;
	default:
		return SOKOTERM_ERR_ARG;
	}
	return SOKOTERM_OK;
}

/* Offline policy checks (issue #3), before anything is stored. */
static enum sokoterm_err
offline_allowed(struct sokoterm *t, const struct sokoterm_request *r)
{
	uint64_t n_open = 0, sum = 0;
	int64_t oldest = 0;
	enum sokoterm_err e;

	/* COLLECT and CASH_OUT need the customer's wallet debited before
	 * anything is handed over, CASH_IN credits it after the cash was
	 * taken: none can be settled later (sokod declines them as
	 * advices), whatever allowed_ops says */
	if (r->op == SOKOTERM_OP_COLLECT || r->op == SOKOTERM_OP_CASH_OUT ||
	    r->op == SOKOTERM_OP_CASH_IN ||
	    (t->pol.allowed_ops & SOKOTERM_OP_BIT(r->op)) == 0)
		return SOKOTERM_ERR_OFFLINE_REFUSED;
	/* no time given yet (sokoterm_tick): the entry would be stored at
	 * ms 0, its advice would say so, the age limits would take it for
	 * decades old and its txn id would sort before every real one */
	if (t->now == 0)
		return SOKOTERM_ERR_STATE;
	if ((e = sokoterm_queue_stats(t->q, &n_open, &sum,
	                              t->pol.max_age_ms != 0 ? &oldest
	                                                     : NULL)) !=
	    SOKOTERM_OK)
		return e;
	if (n_open >= t->pol.max_entries)
		return SOKOTERM_ERR_QUEUE_FULL;
	if (r->amount > t->pol.floor_limit || sum > t->pol.total_limit ||
	    r->amount > t->pol.total_limit - sum)
		return SOKOTERM_ERR_OFFLINE_LIMIT;
	if (t->pol.max_age_ms != 0 && n_open > 0 &&
	    now_i(t) - oldest > (int64_t)t->pol.max_age_ms)
		return SOKOTERM_ERR_OFFLINE_LIMIT;
	return SOKOTERM_OK;
}

static enum sokoterm_err
submit_money(struct sokoterm *t, const struct sokoterm_request *r,
             uint64_t *op_id, uint8_t *txn_out)
{
	struct sokoterm_qrow *row = &t->row;
	struct sokoterm_event ev;
	struct slot *s = NULL;
	uint8_t txn_id[SOKOTERM_ID_LEN];
	uint64_t n_open = 0, sum = 0;
	const char *why = "";
	bool is_online = t->state == SOKOTERM_READY;
	enum sokoterm_err e;
	uint32_t req_id = t->next_req_id;
	size_t n = 0;

	if (is_online) {
		if ((s = slot_get(t)) == NULL)
			return SOKOTERM_ERR_BUSY;
		if ((e = sokoterm_queue_stats(t->q, &n_open, &sum, NULL)) !=
		    SOKOTERM_OK)
			return e;
		if (n_open >= t->pol.max_entries)
			return SOKOTERM_ERR_QUEUE_FULL;
	} else if ((e = offline_allowed(t, r)) != SOKOTERM_OK) {
		return e;
	}
	if (t->random(t->random_ctx, txn_id, sizeof txn_id) != 0)
		return SOKOTERM_ERR_RANDOM;
	if (t->is_txn_id_v4) {
		txn_id[6] = (uint8_t)((txn_id[6] & 0x0f) | 0x40);
	} else {
		/* version 7: ids of one terminal sort by time, so each of
		 * its inserts lands at the end of its range in the server's
		 * idempotency and pos_txns trees (and the queue's txn_id
		 * index): one page per terminal per commit, however large
		 * the trees grow, instead of one random page per id.  Within
		 * one ms a 12-bit counter
		 * in rand_a keeps them increasing (RFC 9562 §6.2, method 1);
		 * the 62 random bits of rand_b keep them unique. */
		uint64_t ms = t->now & 0xffffffffffffu;
		int i;

		if (ms > t->id_ms) {
			t->id_ms = ms;
			t->id_seq = 0;
		} else if (++t->id_seq > 0xfff) {
			t->id_ms = (t->id_ms + 1) & 0xffffffffffffu;
			t->id_seq = 0;
		}
		for (i = 0; i < 6; i++)
			txn_id[i] = (uint8_t)(t->id_ms >> (40 - 8 * i));
		txn_id[6] = (uint8_t)(0x70 | (t->id_seq >> 8));
		txn_id[7] = (uint8_t)t->id_seq;
	}
	txn_id[8] = (uint8_t)((txn_id[8] & 0x3f) | 0x80); /* RFC variant */
	if ((e = build_money(t, r, txn_id)) != SOKOTERM_OK)
		return e;
	memset(row, 0, sizeof *row);
	if (pos_msg_encode(row->body, sizeof row->body, &t->tx, &n, &why) !=
	    CODEC_OK)
		return SOKOTERM_ERR_ARG;
	row->body_len = n;
	if (is_online) {
		/* Reserve the frame before storing, so that nothing can fail
		 * between the commit and the send. */
		struct pos_hdr h;

		memset(&h, 0, sizeof h);
		h.ver_major = POS_VER_MAJOR;
		h.ver_minor = POS_VER_MINOR;
		h.type = t->tx.type;
		h.req_id = req_id;
		h.counter = t->next_tx;
		if (pos_frame_encode_key(t->frame, t->max_frame, &h,
		                         row->body, row->body_len, &t->ks, &n,
		                         &why) != CODEC_OK ||
		    !out_room(t, n))
			return SOKOTERM_ERR_BUSY;
	}
	memcpy(row->txn_id, txn_id, SOKOTERM_ID_LEN);
	row->type = t->tx.type;
	row->amount = r->amount;
	row->currency = r->currency;
	row->is_offline = !is_online;
	row->state = is_online ? SOKOTERM_Q_NEW : SOKOTERM_Q_ADVICE;
	row->created_ms = now_i(t);
	/* An online row is not due while its request is in flight. */
	row->next_try_ms =
	    is_online ? now_i(t) + (int64_t)t->req_timeout_ms : now_i(t);
#ifdef SOKOTERM_FAULTS
	if (is_online && t->fault_send_first) {
		/* the canary: send now, store (and report STORED) later */
		struct fault_defer *d;

		if (t->n_fault == SLOTS_MAX)
			return SOKOTERM_ERR_BUSY;
		(void)append_frame(t, n); /* room reserved above */
		slot_fill(s, K_MONEY, r->op, t->tx.type, take_req_id(t),
		          t->next_op_id, txn_id, t->now);
		d = &t->fault[t->n_fault++];
		d->row = *row;
		d->end = t->fault_out_total;
		d->op_id = t->next_op_id;
		d->op = r->op;
		if (op_id != NULL)
			*op_id = t->next_op_id;
		if (txn_out != NULL)
			memcpy(txn_out, txn_id, SOKOTERM_ID_LEN);
		t->next_op_id++;
		return SOKOTERM_OK;
	}
#endif
	if ((e = sokoterm_queue_insert(t->q, row)) != SOKOTERM_OK)
		return e;
	if (op_id != NULL)
		*op_id = t->next_op_id;
	if (txn_out != NULL)
		memcpy(txn_out, txn_id, SOKOTERM_ID_LEN);
	ev_init(&ev, SOKOTERM_EV_STORED);
	ev.op = r->op;
	ev.op_id = t->next_op_id;
	ev.has_txn_id = true;
	memcpy(ev.txn_id, txn_id, SOKOTERM_ID_LEN);
	ev.is_offline = !is_online;
	ev.code = is_online ? POS_CODE_PENDING : POS_CODE_STORED;
	emit(t, &ev); /* after the commit returned */
	if (is_online) {
		(void)append_frame(t, n); /* room reserved above */
		slot_fill(s, K_MONEY, r->op, t->tx.type, take_req_id(t),
		          t->next_op_id, txn_id, t->now);
	}
	t->next_op_id++;
	return SOKOTERM_OK;
}

static enum sokoterm_err
submit_reversal(struct sokoterm *t, const struct sokoterm_request *r,
                uint64_t *op_id)
{
	struct sokoterm_qrow *row = &t->row;
	struct sokoterm_event ev;
	struct slot *s;
	enum sokoterm_err e;
	uint8_t reason = r->reason != 0 ? r->reason : 2;

	e = sokoterm_queue_get(t->q, r->txn_id, row);
	if (e == SOKOTERM_OK) {
		if (row->state == SOKOTERM_Q_ADVICE)
			return SOKOTERM_ERR_STATE; /* never sent: not yet */
		e = sokoterm_queue_set(t->q, r->txn_id, SOKOTERM_Q_REVERSE,
		                       now_i(t), false, reason);
	} else if (e == SOKOTERM_ERR_NOT_FOUND) {
		/* Not ours or long gone: a tombstone on the server is still
		 * the right outcome (§9.3). */
		memset(row, 0, sizeof *row);
		memcpy(row->txn_id, r->txn_id, SOKOTERM_ID_LEN);
		row->type = POS_MSG_REVERSAL;
		row->state = SOKOTERM_Q_REVERSE;
		row->reason = reason;
		row->created_ms = row->next_try_ms = now_i(t);
		e = sokoterm_queue_insert(t->q, row);
	}
	if (e != SOKOTERM_OK)
		return e;
	if (op_id != NULL)
		*op_id = t->next_op_id;
	ev_init(&ev, SOKOTERM_EV_STORED);
	ev.op = SOKOTERM_OP_REVERSAL;
	ev.op_id = t->next_op_id++;
	ev.has_txn_id = true;
	memcpy(ev.txn_id, r->txn_id, SOKOTERM_ID_LEN);
	ev.is_offline = t->state != SOKOTERM_READY;
	emit(t, &ev);
	/* Online with a free slot: send it now, so that its RESULT carries
	 * op_id; else the replay sends it when it can (op_id 0). */
	if (t->state == SOKOTERM_READY && (s = slot_get(t)) != NULL &&
	    !txn_in_flight(t, r->txn_id)) {
		memset(&t->tx, 0, sizeof t->tx);
		t->tx.type = POS_MSG_REVERSAL;
		memcpy(t->tx.u.reversal.txn_id, r->txn_id, SOKOTERM_ID_LEN);
		t->tx.u.reversal.reason = reason;
		t->tx.u.reversal.has_reason = true;
		if (send_tx(t, t->next_req_id) == SOKOTERM_OK) {
			slot_fill(s, K_REVERSAL, SOKOTERM_OP_REVERSAL,
			          POS_MSG_REVERSAL, take_req_id(t), ev.op_id,
			          r->txn_id, t->now);
			s->row_state = SOKOTERM_Q_REVERSE;
		}
	}
	t->replay_cursor = 0; /* the row may be behind the cursor */
	return SOKOTERM_OK;
}

/* EOD_TOTALS (§6.16): the batch recorded (before it is sent), its
 * lines counted from the queue into t->eod_own and into m. */
static enum sokoterm_err
eod_build(struct sokoterm *t, const struct sokoterm_request *r,
          struct pos_msg *m)
{
	struct sokoterm_qtotal qt[SOKOTERM_TOTALS_MAX];
	enum sokoterm_err e;
	uint64_t n_unsettled = 0;
	size_t i, n = 0;

	for (i = 0; i < SLOTS_MAX; i++)
		if (t->slots[i].kind == K_ONLINE &&
		    t->slots[i].op == SOKOTERM_OP_EOD_TOTALS)
			return SOKOTERM_ERR_BUSY; /* one close at a time */
	if ((e = sokoterm_queue_unsettled(t->q, &n_unsettled)) !=
	    SOKOTERM_OK)
		return e;
	if (n_unsettled > 0)
		return SOKOTERM_ERR_BUSY; /* replay first */
	if ((e = sokoterm_queue_batch_begin(t->q, r->batch_no, now_i(t),
	                                    &t->eod_no)) != SOKOTERM_OK ||
	    (e = sokoterm_queue_batch_totals(t->q, t->eod_no, qt,
	                                     SOKOTERM_TOTALS_MAX, &n)) !=
	        SOKOTERM_OK)
		return e;
	/* more than 16 lines (5 money types in 4+ currencies): the first
	 * 16 go; the server answers TOTALS_MISMATCH with its own */
	t->n_eod_own = n;
	m->u.eod_totals.batch_no = t->eod_no;
	m->u.eod_totals.time_ms = t->now & POS_TIME_MAX;
	m->u.eod_totals.n_totals = n;
	for (i = 0; i < n; i++) {
		t->eod_own[i].op = type_op(qt[i].type);
		t->eod_own[i].currency = qt[i].currency;
		t->eod_own[i].count = qt[i].count;
		t->eod_own[i].sum = qt[i].sum;
		m->u.eod_totals.totals[i].type = qt[i].type;
		m->u.eod_totals.totals[i].currency = qt[i].currency;
		m->u.eod_totals.totals[i].count = qt[i].count;
		m->u.eod_totals.totals[i].sum = qt[i].sum;
	}
	return SOKOTERM_OK;
}

static enum sokoterm_err
submit_online(struct sokoterm *t, const struct sokoterm_request *r,
              uint64_t *op_id)
{
	struct pos_msg *m = &t->tx;
	struct slot *s;
	enum sokoterm_err e;
	uint32_t req_id = t->next_req_id;

	if (t->state != SOKOTERM_READY)
		return SOKOTERM_ERR_STATE;
	if ((s = slot_get(t)) == NULL)
		return SOKOTERM_ERR_BUSY;
	memset(m, 0, sizeof *m);
	m->type = op_type(r->op);
	switch (r->op) {
	case SOKOTERM_OP_ECHO:
		m->u.echo.time_ms = t->now & POS_TIME_MAX;
		break;
	case SOKOTERM_OP_STATUS:
		memcpy(m->u.status.txn_id, r->txn_id, SOKOTERM_ID_LEN);
		break;
	case SOKOTERM_OP_RECEIPT:
		memcpy(m->u.receipt.txn_id, r->txn_id, SOKOTERM_ID_LEN);
		break;
	case SOKOTERM_OP_EOD_TOTALS:
		if ((e = eod_build(t, r, m)) != SOKOTERM_OK)
			return e;
		break;
	case SOKOTERM_OP_BILL_VALIDATE:
		if (r->biller == NULL || r->account == NULL)
			return SOKOTERM_ERR_ARG;
		m->u.bill_validate.biller = view(r->biller);
		m->u.bill_validate.account = view(r->account);
		if (r->amount != 0) {
			m->u.bill_validate.amount = r->amount;
			m->u.bill_validate.has_amount = true;
			m->u.bill_validate.currency = r->currency;
			m->u.bill_validate.has_currency = true;
		}
		break;
	default:
		return SOKOTERM_ERR_ARG;
	}
	if ((e = send_tx(t, req_id)) != SOKOTERM_OK)
		return e;
	slot_fill(s, K_ONLINE, r->op, m->type, take_req_id(t), t->next_op_id,
	          NULL, t->now);
	if (op_id != NULL)
		*op_id = t->next_op_id;
	t->next_op_id++;
	return SOKOTERM_OK;
}

enum sokoterm_err
sokoterm_submit(struct sokoterm *t, const struct sokoterm_request *r,
                uint64_t *op_id, uint8_t txn_id[SOKOTERM_ID_LEN])
{
	if (t == NULL || r == NULL)
		return SOKOTERM_ERR_ARG;
	FAULT_STORE_SENT(t, false);
	if (is_money_op(r->op))
		return submit_money(t, r, op_id, txn_id);
	if (r->op == SOKOTERM_OP_REVERSAL)
		return submit_reversal(t, r, op_id);
	return submit_online(t, r, op_id);
}

enum sokoterm_err
sokoterm_release_held(struct sokoterm *t, uint64_t *n_released)
{
	uint64_t n = 0;
	enum sokoterm_err e;

	if (t == NULL)
		return SOKOTERM_ERR_ARG;
	e = sokoterm_queue_release(t->q, now_i(t), &n);
	if (n_released != NULL)
		*n_released = n;
	if (e == SOKOTERM_OK && n > 0)
		t->replay_cursor = 0; /* the rows may be behind the cursor */
	return e;
}

enum sokoterm_err
sokoterm_queue_count(struct sokoterm *t, uint64_t *n_open,
                     uint64_t *offline_total)
{
	return sokoterm_queue_stats(t->q, n_open, offline_total, NULL);
}

enum sokoterm_err
sokoterm_queue_lookup(struct sokoterm *t, const uint8_t txn_id[SOKOTERM_ID_LEN],
                      bool *is_done, unsigned *code)
{
	enum sokoterm_err e = sokoterm_queue_get(t->q, txn_id, &t->row);

	if (e != SOKOTERM_OK)
		return e;
	*is_done = t->row.state == SOKOTERM_Q_DONE;
	*code = *is_done ? t->row.code : 0;
	return SOKOTERM_OK;
}
