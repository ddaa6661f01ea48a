/*
 * svc_pos.c - POS terminal service decisions (svc_pos.h,
 * docs/pos-protocol.md §3, §4, §9).
 *
 * Served: LOGIN, ECHO, FLOAT_TRANSFER, STATUS, REVERSAL, RECEIPT,
 * ADVICE_BATCH (float transfers), EOD_TOTALS, and through the payment
 * service (struct svc_pos_pay, net_prov) COLLECT and CASH_OUT (their
 * outcomes pushed as COLLECT_RESULT, COLLECT_RESULT_ACK recorded),
 * CASH_IN, BILL_VALIDATE and BILL_PAY.  Every other request type is
 * refused T|0xC000 UNSUPPORTED_TYPE: the terminal knows the feature is
 * absent and that nothing was processed (§6.1, §8).
 *
 * Every POS ledger movement is one ledger request whose POS row
 * (store_pos_txn) the ledger writes in the same commit; STATUS, REVERSAL,
 * RECEIPT and repeats read that row.  A provider payment is found by its
 * pos_payments row instead (store pos_pay_*), written with the payment.
 *
 * Invariants: a money-moving reply is built only in svc_pos_done() from a
 * ledger result, i.e. after its commit (dbq.h); refusals before login carry
 * a zero MAC and reveal nothing; K_t lives only inside svc_pos_done() for
 * one login and is wiped there.
 */
#include "svc_pos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keywrap.h"
#include "ledger.h"
#include "log.h"
#include "money.h"
#include "payment.h"
#include "sha256.h"
#include "svc_admin.h"
#include "svc_prov.h"
#include "util.h"

#define RETRY_AFTER_S 1

#ifdef SOKO_FAULTS
/*
 * Test-only canary (build/sokod-canary, never production sokod):
 * SOKO_FAULT=skip_duplicate_check makes the POS duplicate check know only
 * what this process decided.  A FLOAT_TRANSFER's idempotency key gets
 * ":b<start ms>" (so the ledger's idempotency cannot match an attempt
 * made before a restart), the pos_txns repeat lookup ignores rows of
 * earlier processes (the transfer is committed again, without a second
 * POS row) and STATUS answers UNKNOWN_TXN for them, so the terminal
 * resends a transfer whose answer was lost in a kill and it moves money
 * twice.  test_fleet_crash.py must catch this.
 */
static bool fault_skip_dup;
static int64_t fault_boot_ms = -1;

static void
fault_init(void)
{
	const char *f;

	if (fault_boot_ms >= 0)
		return;
	fault_boot_ms = util_now_ms();
	f = getenv("SOKO_FAULT");
	fault_skip_dup = f != NULL && strcmp(f, "skip_duplicate_check") == 0;
	if (fault_skip_dup)
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=fault fault=skip_duplicate_check boot_ms=%lld",
		        (long long)fault_boot_ms);
}

/* A row decided by an earlier process: forgotten under the fault. */
static bool
fault_forgets(const struct store_pos_txn *r)
{
	return fault_skip_dup && r->created_ms < fault_boot_ms;
}
#endif

static bool
is_login_family(uint16_t type)
{
	return type == POS_MSG_LOGIN || type == POS_MSG_LOGIN_OK ||
	       type == POS_MSG_LOGIN_FAIL;
}

void
svc_pos_session_init(struct svc_pos *s, struct svc_pos_session *ss)
{
	memset(ss, 0, sizeof *ss);
	ss->state = SVC_POS_CONNECTED;
	ss->session_id = ++s->next_session_id;
	ss->next_tx = 1;
#ifdef SOKO_FAULTS
	fault_init(); /* the loop thread, before any job of this session */
#endif
}

void
svc_pos_session_fini(struct svc_pos_session *ss)
{
	explicit_bzero(ss->ks, sizeof ss->ks);
	ss->state = SVC_POS_CLOSING;
}

void
svc_pos_op_free(struct svc_pos_op *op)
{
	struct svc_pos_op *parent;

	if (op == NULL)
		return;
	if (op->inflight_head != NULL) {
		struct svc_pos_op **pp = op->inflight_head;

		while (*pp != op)
			pp = &(*pp)->inflight_next;
		*pp = op->inflight_next;
	}
	parent = op->parent;
	if (op->login_auth != NULL) {
		explicit_bzero(op->login_auth, op->login_auth_len);
		free(op->login_auth);
	}
	free(op->items);
	free(op->prov);
	free(op->results);
	free(op->links);
	explicit_bzero(op, sizeof *op);
	free(op);
	if (parent != NULL && --parent->n_children == 0)
		svc_pos_op_free(parent);
}

/* The POS idempotency key, txn id first (svc_pos.h), or terminal first
 * as written before migration 013 (is_v1: only read, by lookup_call, for
 * transactions that have no pos_txns row). */
static void
idem_key(char *dst, const char *terminal_id, const uint8_t txn_id[POS_ID_LEN],
         bool is_v1)
{
	char hex[2 * POS_ID_LEN + 1];

	util_hex(hex, txn_id, POS_ID_LEN);
	snprintf(dst, LEDGER_KEY_MAX + 1, "pos:%s:%s", is_v1 ? terminal_id : hex,
	         is_v1 ? hex : terminal_id);
}

void
svc_pos_idem_key(char *dst, const char *terminal_id,
                 const uint8_t txn_id[POS_ID_LEN])
{
	idem_key(dst, terminal_id, txn_id, false);
}

enum pos_code
svc_pos_code(enum ledger_rc rc)
{
	switch (rc) {
	case LEDGER_OK:
		return POS_CODE_APPROVED;
	case LEDGER_INSUFFICIENT_FUNDS:
		return POS_CODE_INSUFFICIENT_FLOAT;
	case LEDGER_LIMIT_PER_TXN:
	case LEDGER_LIMIT_DAILY:
	case LEDGER_LIMIT_VELOCITY:
		return POS_CODE_LIMIT_EXCEEDED;
	case LEDGER_IDEM_MISMATCH:
		return POS_CODE_TXN_ID_REUSED;
	case LEDGER_RETRY:
		return POS_CODE_RETRY_LATER;
	case LEDGER_CURRENCY_MISMATCH:
		return POS_CODE_CURRENCY_INVALID;
	case LEDGER_BAD_AMOUNT:
	case LEDGER_OVERFLOW:
		return POS_CODE_AMOUNT_INVALID;
	case LEDGER_UNKNOWN_ACCOUNT:
	case LEDGER_ACCOUNT_CLOSED:
		return POS_CODE_DECLINED;
	case LEDGER_REVERSAL_TWICE:
		return POS_CODE_REVERSED;
	case LEDGER_UNBALANCED:
	case LEDGER_REVERSAL_UNKNOWN:
	case LEDGER_REVERSAL_OF_REVERSAL:
	case LEDGER_BAD_REQUEST:
	case LEDGER_RC_COUNT:
		break;
	}
	return POS_CODE_SYSTEM_ERROR; /* a request we built wrong: a bug */
}

/* ------------------------------------------------------------- replies */

enum mac_key { MAC_ZERO, MAC_KT, MAC_KS };

/*
 * Encodes m as the reply to req_id into out->buf.  Counter: 0 for the
 * LOGIN family, else the session's next.  A refusal of a type that has no
 * T|0xC000 in the catalogue (unknown T) falls back to 0xC000.
 */
static void
send_msg(struct svc_pos_session *ss, struct svc_pos_out *out, struct pos_msg *m,
         uint32_t req_id, enum mac_key mk, const uint8_t *kt)
{
	struct pos_hdr h;
	const uint8_t *key = mk == MAC_KT ? kt : mk == MAC_KS ? ss->ks : NULL;
	const char *why = "";
	size_t n = 0;

	if ((m->type & POS_TYPE_FAIL) == POS_TYPE_FAIL &&
	    pos_msg_info(m->type) == NULL)
		m->type = POS_TYPE_FAIL;
	h.ver_major = POS_VER_MAJOR;
	h.ver_minor = POS_VER_MINOR;
	h.type = m->type;
	h.req_id = req_id;
	h.counter =
	    is_login_family(m->type) || mk == MAC_ZERO ? 0 : ss->next_tx;
	if (pos_encode(out->buf, out->cap, &h, m, key, &n, &why) != CODEC_OK) {
		/* our own message: a bug, not input */
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=encode_failed peer=%s type=%s why=\"%s\"",
		        ss->peer, pos_msg_name(m->type), why);
		out->len = 0;
		out->is_close = true;
		return;
	}
	if (h.counter != 0)
		ss->next_tx++;
	out->len = n;
	/* a push has req_id 0; so has the refusal of a frame whose header
	 * could not be read */
	if (req_id != 0 || (m->type & POS_TYPE_FAIL) == POS_TYPE_FAIL) {
		out->is_answer = true;
		out->code = pos_msg_code(m);
	}
}

/* T|0xC000 (or LOGIN_FAIL for T = LOGIN) with code. */
static void
send_error(struct svc_pos_session *ss, struct svc_pos_out *out,
           uint16_t req_type, uint32_t req_id, enum pos_code code,
           enum mac_key mk, const uint8_t *kt)
{
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = (uint16_t)((req_type & 0x3fffu) | POS_TYPE_FAIL);
	m.u.error.code = code;
	if (code == POS_CODE_BUSY || code == POS_CODE_RETRY_LATER) {
		m.u.error.has_retry_after_s = true;
		m.u.error.retry_after_s = RETRY_AFTER_S;
	}
	if (code == POS_CODE_UNSUPPORTED_VERSION) {
		m.u.error.has_ver_major = m.u.error.has_ver_minor = true;
		m.u.error.ver_major = POS_VER_MAJOR;
		m.u.error.ver_minor = POS_VER_MINOR;
	}
	send_msg(ss, out, &m, req_id, mk, kt);
}

static void
close_after(struct svc_pos_session *ss, struct svc_pos_out *out)
{
	ss->state = SVC_POS_CLOSING;
	out->is_close = true;
}

/* The result keys 1-7 (§6.2) and, for STATUS_RESP and RECEIPT_RESP, the
 * transaction's details. */
struct result {
	enum pos_code code;
	const uint8_t *txn_id;
	char ref[24];    /* "" for none */
	int64_t time_ms; /* 0 for none */
	int orig_code;   /* with DUPLICATE; -1 for none */
	const char *text;
	bool has_detail; /* type, amount, currency */
	uint16_t type;
	uint64_t amount;
	uint16_t currency;
	const char *counterparty; /* RECEIPT_RESP */
	const char *lines;        /* RECEIPT_RESP */
	const char *token;        /* STATUS, RECEIPT, BILL_PAY_RESP */
	char reason[65];          /* text's storage (result_reason) */
};

static void
result_init(struct result *x, enum pos_code code, const uint8_t *txn_id)
{
	memset(x, 0, sizeof *x);
	x->code = code;
	x->txn_id = txn_id;
	x->orig_code = -1;
}

/* Why x->code refused (§7 "declined with reason": key 6 `text`), from s
 * (a ledger outcome, a provider's description ...): printable ASCII
 * only, at most 64 bytes; nothing for an empty s or a code that is no
 * refusal the code alone explains. */
static void
result_reason(struct result *x, const char *s)
{
	size_t i;

	if (s == NULL || s[0] == '\0' ||
	    (x->code != POS_CODE_DECLINED &&
	     x->code != POS_CODE_LIMIT_EXCEEDED &&
	     x->code != POS_CODE_NOT_REVERSIBLE &&
	     x->code != POS_CODE_CUSTOMER_DECLINED &&
	     x->code != POS_CODE_EXPIRED))
		return;
	for (i = 0; s[i] != '\0' && i < sizeof x->reason - 1; i++)
		x->reason[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	x->reason[i] = '\0';
	x->text = x->reason;
}

static void
set_text(struct pos_bytes *dst, bool *has, const char *s)
{
	if (s == NULL || s[0] == '\0')
		return;
	*has = true;
	dst->ptr = (const uint8_t *)s;
	dst->len = strlen(s);
}

/* Every *_RESP with POS_RESULT has the same first members. */
#define FILL_RESULT(r, x)                                                      \
	do {                                                                   \
		(r)->code = (x)->code;                                         \
		memcpy((r)->txn_id, (x)->txn_id, POS_ID_LEN);                  \
		set_text(&(r)->ref, &(r)->has_ref, (x)->ref);                  \
		if ((x)->time_ms > 0) {                                        \
			(r)->has_time_ms = true;                               \
			(r)->time_ms = (uint64_t)(x)->time_ms;                 \
		}                                                              \
		set_text(&(r)->text, &(r)->has_text, (x)->text);               \
		if ((x)->orig_code >= 0) {                                     \
			(r)->has_orig_code = true;                             \
			(r)->orig_code = (uint64_t)(x)->orig_code;             \
		}                                                              \
	} while (0)

#define FILL_DETAIL(r, x)                                                      \
	do {                                                                   \
		if ((x)->has_detail) {                                         \
			(r)->has_type = (r)->has_amount = true;                \
			(r)->has_currency = true;                              \
			(r)->type = (x)->type;                                 \
			(r)->amount = (x)->amount;                             \
			(r)->currency = (x)->currency;                         \
		}                                                              \
	} while (0)

static void
send_result(struct svc_pos_session *ss, struct svc_pos_out *out,
            uint16_t resp_type, uint32_t req_id, const struct result *x)
{
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = resp_type;
	switch (resp_type) {
	case POS_MSG_STATUS_RESP:
		FILL_RESULT(&m.u.status_resp, x);
		FILL_DETAIL(&m.u.status_resp, x);
		set_text(&m.u.status_resp.token, &m.u.status_resp.has_token,
		         x->token);
		break;
	case POS_MSG_BILL_PAY_RESP:
		FILL_RESULT(&m.u.bill_pay_resp, x);
		set_text(&m.u.bill_pay_resp.token,
		         &m.u.bill_pay_resp.has_token, x->token);
		break;
	case POS_MSG_RECEIPT_RESP:
		FILL_RESULT(&m.u.receipt_resp, x);
		FILL_DETAIL(&m.u.receipt_resp, x);
		set_text(&m.u.receipt_resp.token, &m.u.receipt_resp.has_token,
		         x->token);
		set_text(&m.u.receipt_resp.counterparty,
		         &m.u.receipt_resp.has_counterparty, x->counterparty);
		set_text(&m.u.receipt_resp.lines, &m.u.receipt_resp.has_lines,
		         x->lines);
		break;
	case POS_MSG_REVERSAL_RESP:
		FILL_RESULT(&m.u.reversal_resp, x);
		break;
	default:
		FILL_RESULT(&m.u.float_transfer_resp, x);
		break;
	}
	send_msg(ss, out, &m, req_id, MAC_KS, NULL);
}

/* The FLOAT_TRANSFER_RESP fields of the old callers. */
static void
send_xfer(struct svc_pos_session *ss, struct svc_pos_out *out, uint32_t req_id,
          enum pos_code code, const uint8_t txn_id[POS_ID_LEN],
          int64_t ledger_txn, int64_t time_ms, int orig_code, const char *text)
{
	struct result x;

	result_init(&x, code, txn_id);
	if (ledger_txn > 0)
		snprintf(x.ref, sizeof x.ref, "FT-%lld", (long long)ledger_txn);
	x.time_ms = time_ms;
	x.orig_code = orig_code;
	result_reason(&x, text);
	send_result(ss, out, POS_MSG_FLOAT_TRANSFER_RESP, req_id, &x);
}

size_t
svc_pos_conn_refusal(uint8_t *buf, size_t cap, uint32_t retry_after_s)
{
	struct pos_msg m;
	struct pos_hdr h = {POS_VER_MAJOR, POS_VER_MINOR, POS_MSG_LOGIN_FAIL, 0,
	                    0};
	const char *why;
	size_t n = 0;

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_LOGIN_FAIL;
	m.u.error.code = POS_CODE_BUSY;
	m.u.error.has_retry_after_s = true;
	m.u.error.retry_after_s = retry_after_s;
	if (pos_encode(buf, cap, &h, &m, NULL, &n, &why) != CODEC_OK)
		return 0;
	return n;
}

/* --------------------------------------------- storage calls (worker) */

static enum store_rc
login_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	enum store_rc rc = st->ops->terminal_get(st, op->terminal_id,
	                                         &op->term);

	if (!op->has_rpc_key || (rc != STORE_OK && rc != STORE_NOT_FOUND))
		return rc;
	/* an /rpc partner's key, read with the terminal it names */
	op->rpc_key_rc = st->ops->rpc_key_get(st, op->rpc_key_hash,
	                                      &op->rpc_key);
	if (op->rpc_key_rc != STORE_OK && op->rpc_key_rc != STORE_NOT_FOUND)
		return op->rpc_key_rc;
	return rc;
}

/* FLOAT_TRANSFER: a repeat is answered from its row (even if to_agent was
 * blocked since); a new txn_id needs to_agent's float. */
static enum store_rc
resolve_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
#ifdef SOKO_FAULTS
	/* op->found stays filled in: xfer_req writes no second row */
	if (op->found_rc == STORE_OK && fault_forgets(&op->found))
		op->found_rc = STORE_NOT_FOUND;
#endif
	if (op->found_rc == STORE_OK)
		return STORE_OK;
	if (op->found_rc != STORE_NOT_FOUND)
		return op->found_rc;
	return st->ops->agent_get(st, op->to_agent, &op->agent);
}

/*
 * The POS row of (terminal, txn_id) into op->found (op->found_rc).  A
 * transaction decided before migration 004 has only its idempotency
 * record: it is read from there and the ledger (type FLOAT_TRANSFER, the
 * only one served then).  NOT_FOUND is a result (found_rc), not a failure.
 */
static enum store_rc
lookup_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	char key[LEDGER_KEY_MAX + 1];
	struct store_pos_txn *f = &op->found;
	enum store_rc rc;

	op->found_rc = st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, f);
#ifdef SOKO_FAULTS
	if (fault_skip_dup && op->kind == SVC_POS_OP_STATUS &&
	    (op->found_rc == STORE_NOT_FOUND ||
	     (op->found_rc == STORE_OK && fault_forgets(f)))) {
		memset(f, 0, sizeof *f);
		op->found_rc = STORE_NOT_FOUND;
		return STORE_OK;
	}
#endif
	if (op->found_rc != STORE_NOT_FOUND)
		return op->found_rc == STORE_OK ? STORE_OK : op->found_rc;
	/* only rows from before migration 004 lack a pos_txns row, and
	 * their keys were written terminal first */
	idem_key(key, op->terminal_id, op->txn_id, true);
	rc = st->ops->idem_lookup(st, key, &op->idem);
	if (rc == STORE_NOT_FOUND && op->prov != NULL) {
		/* a provider payment (COLLECT, CASH_OUT): op->link.type */
		memset(&op->link, 0, sizeof op->link);
		rc = st->ops->pos_pay_get(st, op->terminal_id, op->txn_id,
		                          op->prov, &op->link);
		if (rc == STORE_OK)
			op->found_rc = STORE_OK;
		return rc == STORE_NOT_FOUND ? STORE_OK : rc;
	}
	if (rc == STORE_NOT_FOUND)
		return STORE_OK;
	if (rc != STORE_OK)
		return rc;
	memset(f, 0, sizeof *f);
	f->type = POS_MSG_FLOAT_TRANSFER;
	f->rc = op->idem.rc;
	f->ledger_txn_id = op->idem.txn_id;
	f->created_ms = op->idem.created_ms;
	if (op->idem.txn_id > 0 &&
	    st->ops->txn_info(st, op->idem.txn_id, &op->info) == STORE_OK) {
		uint8_t i;

		f->currency = op->info.currency;
		f->reversed_by = op->info.reversed_by;
		for (i = 0; i < op->info.n_legs; i++)
			if (op->info.legs[i].amount_minor > 0)
				f->amount_minor +=
				    op->info.legs[i].amount_minor;
	}
	op->found_rc = STORE_OK;
	return STORE_OK;
}

/* EOD_TOTALS: close the batch (idempotent by batch_no: it holds what
 * was committed before the close, which runs after every commit queued
 * before it), then sum it. */
static enum store_rc
eod_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	enum store_rc rc;

	rc = st->ops->pos_batch_close(st, op->terminal_id, op->batch_no,
	                              op->svc->clock_ms(), &op->closed_ms,
	                              &op->is_repeat);
	if (rc != STORE_OK)
		return rc;
	return st->ops->pos_totals(st, op->terminal_id, op->batch_no,
	                           op->totals, POS_TOTALS_MAX, &op->n_totals);
}

/* A read transaction around a job's lookups, when the store has them
 * (store.h read_begin); false: the reads run one by one. */
static bool
reads_begin(struct store *st)
{
	return st->ops->read_begin != NULL && st->ops->read_begin(st) == STORE_OK;
}

static void
reads_end(struct store *st, bool is_grouped)
{
	if (is_grouped)
		st->ops->read_end(st);
}

/* ADVICE_BATCH: each undecided item's row, and its to_agent if new. */
static enum store_rc
advice_lookups(struct store *st, struct svc_pos_op *op)
{
	size_t i;

	for (i = 0; i < op->n_items; i++) {
		struct svc_pos_advice *a = &op->items[i];

		if (a->is_decided)
			continue;
		a->found_rc = st->ops->pos_txn_get(st, op->terminal_id,
		                                   a->txn_id, &a->found);
		if (a->found_rc == STORE_OK)
			continue;
		if (a->found_rc != STORE_NOT_FOUND)
			return a->found_rc;
		a->agent_rc = st->ops->agent_get(st, a->to_agent, &a->agent);
		if (a->agent_rc != STORE_OK && a->agent_rc != STORE_NOT_FOUND)
			return a->agent_rc;
	}
	return STORE_OK;
}

/* Up to 2 reads per item of the batch: in one read transaction. */
static enum store_rc
advice_call(struct store *st, struct dbq_job *job)
{
	bool is_grouped = reads_begin(st);
	enum store_rc rc = advice_lookups(st, (struct svc_pos_op *)job);

	reads_end(st, is_grouped);
	return rc;
}

/* An advice item posted from the agent cache that the ledger saw before
 * (a resend): its row, to answer it as the lookup path would. */
static enum store_rc
advice_item_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
	return op->found_rc == STORE_NOT_FOUND ? STORE_OK : op->found_rc;
}

static struct svc_pos_op *
op_new(const struct svc_pos *s, enum svc_pos_op_kind kind, uint16_t type,
       uint32_t req_id)
{
	struct svc_pos_op *op = xcalloc(1, sizeof *op);

	op->svc = s;
	op->kind = kind;
	op->type = type;
	op->req_id = req_id;
	return op;
}

/* ------------------------------------------------------ shared rules */

/* The state of a decided POS transaction, as STATUS reports it (§6.12). */
static enum pos_code
row_state(const struct store_pos_txn *r)
{
	if (r->type == 0 || r->reversed_by != 0)
		return POS_CODE_REVERSED;
	if (r->rc == LEDGER_OK)
		return r->is_advice ? POS_CODE_STORED : POS_CODE_APPROVED;
	return svc_pos_code((enum ledger_rc)r->rc);
}

/*
 * The answer to a money request whose txn_id already has a row (§9.1):
 * after a tombstone DUPLICATE/REVERSED whatever the content (§9.3); the
 * same type, amount, currency and counterparty: DUPLICATE with the
 * original's state; else TXN_ID_REUSED.
 */
static enum pos_code
repeat_code(const struct store_pos_txn *r, uint16_t type, uint64_t amount,
            uint16_t currency, const char *counterparty, int *orig)
{
	*orig = -1;
	if (r->type != 0 &&
	    (r->type != type || (uint64_t)r->amount_minor != amount ||
	     r->currency != currency ||
	     strcmp(r->counterparty, counterparty) != 0))
		return POS_CODE_TXN_ID_REUSED;
	*orig = (int)row_state(r);
	return POS_CODE_DUPLICATE;
}

/* A valid agent code from a text field into dst[STORE_POS_ID_MAX + 1];
 * false if empty, too long or holding a NUL. */
static bool
copy_id(char *dst, const struct pos_bytes *b)
{
	dst[0] = '\0';
	if (b->len == 0 || b->len > STORE_POS_ID_MAX ||
	    memchr(b->ptr, '\0', b->len) != NULL)
		return false;
	memcpy(dst, b->ptr, b->len);
	dst[b->len] = '\0';
	return true;
}

/* r counts amount against the limits of the logged-in terminal and its
 * agent (the limit subjects `terminal` and `agent`, §12), after the
 * subjects it already has (a hold's MSISDN). */
static void
pos_limited(struct ledger_req *r, const struct svc_pos_session *ss,
            int64_t amount)
{
	size_t i = 0;

	while (i < LEDGER_SUBJECTS_MAX && r->subjects[i].kind != 0)
		i++;
	if (i + 2 > LEDGER_SUBJECTS_MAX)
		abort(); /* at most one is there: a bug */
	r->limit_amount = amount;
	r->subjects[i].kind = LEDGER_SUBJ_TERMINAL;
	strlcpy_s(r->subjects[i].id, ss->terminal_id, sizeof r->subjects[i].id);
	r->subjects[i + 1].kind = LEDGER_SUBJ_AGENT;
	strlcpy_s(r->subjects[i + 1].id, ss->agent_code,
	          sizeof r->subjects[i + 1].id);
}

/*
 * The ledger request of a float transfer (online or advised) from this
 * terminal's agent to agent_float, with its POS row: limits count it
 * against the terminal and the agent (§12).
 */
static void
xfer_req(struct svc_pos_session *ss, struct svc_pos_op *op,
         const uint8_t txn_id[POS_ID_LEN], uint64_t amount, uint16_t currency,
         const char *to_agent, int64_t to_float, bool is_advice,
         int64_t local_time_ms)
{
	struct ledger_req *r = &op->job.req;
	struct store_pos_txn *row = &op->row;

	memset(r, 0, sizeof *r);
	svc_pos_idem_key(r->idem_key, ss->terminal_id, txn_id);
#ifdef SOKO_FAULTS
	if (fault_skip_dup && !is_advice) {
		size_t n = strlen(r->idem_key);

		snprintf(r->idem_key + n, sizeof r->idem_key - n, ":b%lld",
		         (long long)fault_boot_ms);
	}
#endif
	r->kind = LEDGER_TXN_FLOAT_TRANSFER;
	r->currency = currency;
	r->n_legs = 2;
	r->legs[0].account_id = ss->float_account_id;
	r->legs[0].amount_minor = -(int64_t)amount;
	r->legs[1].account_id = to_float;
	r->legs[1].amount_minor = (int64_t)amount;
	pos_limited(r, ss, (int64_t)amount);
	/* the same memo online and advised: a resend of either is the same
	 * request (§9.1) */
	snprintf(r->memo, sizeof r->memo, "pos float_transfer %s -> %s",
	         ss->agent_code, to_agent);
	ledger_req_hash(r);
	memset(row, 0, sizeof *row);
	strlcpy_s(row->terminal_id, ss->terminal_id, sizeof row->terminal_id);
	memcpy(row->txn_id, txn_id, POS_ID_LEN);
	row->type = POS_MSG_FLOAT_TRANSFER;
	row->is_advice = is_advice;
	row->currency = currency;
	row->amount_minor = (int64_t)amount;
	strlcpy_s(row->counterparty, to_agent, sizeof row->counterparty);
	row->local_time_ms = local_time_ms;
	r->pos = row;
#ifdef SOKO_FAULTS
	if (fault_skip_dup && !is_advice && op->found.created_ms != 0)
		r->pos = NULL; /* an earlier process's row exists */
#endif
	op->job.call = NULL;
}

/* ------------------------------------------------------------- frames */

/* A LOGIN's lookup (the terminal, its agent) goes to a reader. */
static void
login_post(struct svc_pos_session *ss, struct svc_pos_op *op,
           struct svc_pos_out *out)
{
	op->job.call = login_call;
	op->is_read = true;
	ss->is_login_pending = true;
	out->post = op;
}

static void
on_login(struct svc_pos *s, struct svc_pos_session *ss,
         const struct pos_frame *f, struct svc_pos_out *out)
{
	struct pos_msg m;
	const struct pos_login *l = &m.u.login;
	struct svc_pos_op *op;
	const char *why = "";
	enum pos_code rc;

	rc = pos_frame_open(&m, f, NULL, POS_T2S, NULL, &why);
	if (rc == POS_CODE_APPROVED &&
	    (l->terminal_id.len == 0 ||
	     memchr(l->terminal_id.ptr, '\0', l->terminal_id.len) != NULL)) {
		rc = POS_CODE_MALFORMED;
		why = "terminal_id empty or with NUL";
	}
	if (rc != POS_CODE_APPROVED) {
		log_msg(LOG_POS, LOG_LEVEL_NOTICE,
		        "event=login_fail peer=%s reason=malformed why=\"%s\"",
		        ss->peer, why);
		send_error(ss, out, POS_MSG_LOGIN, f->hdr.req_id,
		           POS_CODE_MALFORMED, MAC_ZERO, NULL);
		close_after(ss, out);
		return;
	}
	op = op_new(s, SVC_POS_OP_LOGIN, POS_MSG_LOGIN, f->hdr.req_id);
	memcpy(op->terminal_id, l->terminal_id.ptr, l->terminal_id.len);
	memcpy(op->client_nonce, l->client_nonce, POS_NONCE_LEN);
	op->login_auth = xmalloc(f->auth_len);
	memcpy(op->login_auth, f->auth, f->auth_len);
	op->login_auth_len = f->auth_len;
	memcpy(op->login_mac, f->mac, POS_MAC_LEN);
	login_post(ss, op, out);
}

void
svc_pos_rpc_login(struct svc_pos *s, struct svc_pos_session *ss,
                  const char *terminal_id, const uint8_t *key_hash,
                  struct svc_pos_out *out)
{
	struct svc_pos_op *op = op_new(s, SVC_POS_OP_LOGIN, POS_MSG_LOGIN, 0);

	strlcpy_s(op->terminal_id, terminal_id, sizeof op->terminal_id);
	op->is_rpc = true;
	if (key_hash != NULL) {
		op->has_rpc_key = true;
		memcpy(op->rpc_key_hash, key_hash, sizeof op->rpc_key_hash);
	}
	login_post(ss, op, out);
}

bool
svc_pos_rpc_key_hash(const char *key, uint8_t hash[STORE_RPC_KEY_HASH_LEN])
{
	const size_t np = sizeof SVC_POS_RPC_KEY_PREFIX - 1;
	size_t i;

	if (strlen(key) != SVC_POS_RPC_KEY_LEN ||
	    memcmp(key, SVC_POS_RPC_KEY_PREFIX, np) != 0)
		return false;
	for (i = np; i < SVC_POS_RPC_KEY_LEN; i++)
		if (!((key[i] >= '0' && key[i] <= '9') ||
		      (key[i] >= 'a' && key[i] <= 'f')))
			return false;
	sha256_digest(hash, key, SVC_POS_RPC_KEY_LEN);
	return true;
}

/* Does the partner key's scope hold the terminal read with it? */
static bool
rpc_in_scope(const struct svc_pos_op *op)
{
	const struct store_rpc_key *k = &op->rpc_key;

	switch (k->scope_kind) {
	case STORE_RPC_SCOPE_AGENT:
		return strcmp(op->term.agent.code, k->scope) == 0;
	case STORE_RPC_SCOPE_MERCHANT:
		return op->term.merchant_id != 0 &&
		       strcmp(op->term.merchant.code, k->scope) == 0;
	case STORE_RPC_SCOPE_TERMINAL:
		return strcmp(op->terminal_id, k->scope) == 0;
	default:
		return false;
	}
}

/* ss is the terminal's session from now on (LOGIN_OK sent, or a trusted
 * /rpc login checked): its terminal and agent, counters from the start. */
static void
session_open(struct svc_pos_session *ss, const struct svc_pos_op *op)
{
	strlcpy_s(ss->terminal_id, op->terminal_id, sizeof ss->terminal_id);
	strlcpy_s(ss->agent_code, op->term.agent.code, sizeof ss->agent_code);
	ss->float_account_id = op->term.agent.float_account_id;
	ss->last_rx = 0;
	ss->next_tx = 1;
	ss->state = SVC_POS_LOGGED_IN;
}

/* A trusted session's login is done (svc_pos_rpc_login). */
static void
rpc_login_done(struct svc_pos *s, struct svc_pos_session *ss,
               struct svc_pos_op *op, struct svc_pos_out *out)
{
	enum pos_code code = POS_CODE_APPROVED;
	bool is_read_ok = op->job.call_rc == STORE_OK ||
	                  op->job.call_rc == STORE_NOT_FOUND;

	ss->is_login_pending = false;
	if (op->has_rpc_key && is_read_ok &&
	    (op->rpc_key_rc != STORE_OK || op->rpc_key.is_revoked))
		code = POS_CODE_BAD_MAC; /* the key first: 401, nothing told */
	else if (op->has_rpc_key && is_read_ok &&
	         (op->job.call_rc == STORE_NOT_FOUND || !rpc_in_scope(op)))
		code = POS_CODE_DECLINED; /* unknown and foreign alike */
	else if (op->job.call_rc == STORE_NOT_FOUND)
		code = POS_CODE_AUTH_FAILED;
	else if (op->job.call_rc != STORE_OK)
		code = POS_CODE_BUSY;
	else if (op->term.status != STORE_POS_ACTIVE ||
	         op->term.agent.status != STORE_POS_ACTIVE)
		code = POS_CODE_BLOCKED;
	else if (s->rand_bytes(ss->ks, sizeof ss->ks) != 1)
		code = POS_CODE_BUSY;
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=rpc_login peer=%s terminal=%s key=%s code=%s", ss->peer,
	        op->terminal_id,
	        !op->has_rpc_key             ? "admin"
	        : op->rpc_key_rc == STORE_OK ? op->rpc_key.name
	                                     : "unknown",
	        pos_code_name(code));
	out->is_answer = true;
	out->code = (int)code;
	if (code != POS_CODE_APPROVED) {
		ss->state = SVC_POS_CLOSING;
		return;
	}
	session_open(ss, op);
}

static bool
inflight_full(struct svc_pos *s, struct svc_pos_session *ss,
              const struct pos_frame *f, struct svc_pos_out *out)
{
	if (ss->n_inflight < s->max_inflight)
		return false;
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=busy peer=%s terminal=%s type=%s req_id=%u "
	        "reason=max_inflight",
	        ss->peer, ss->terminal_id, pos_msg_name(f->hdr.type),
	        (unsigned)f->hdr.req_id);
	send_error(ss, out, f->hdr.type, f->hdr.req_id, POS_CODE_BUSY, MAC_KS,
	           NULL);
	return true;
}

static struct svc_pos_agent_slot *
agent_slot(struct svc_pos *s, const char *code)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (; *code != '\0'; code++)
		h = (h ^ (uint8_t)*code) * 16777619u;
	return &s->agents[h % SVC_POS_AGENT_SLOTS];
}

/* ------------------------------------- requests of several steps */

static uint32_t
inflight_hash(const char *terminal_id, const uint8_t txn_id[POS_ID_LEN])
{
	uint32_t h = 2166136261u; /* FNV-1a */
	size_t i;

	for (; *terminal_id != '\0'; terminal_id++)
		h = (h ^ (uint8_t)*terminal_id) * 16777619u;
	for (i = 0; i < POS_ID_LEN; i++)
		h = (h ^ txn_id[i]) * 16777619u;
	return h;
}

/* Lists op (see SVC_POS_INFLIGHT_SLOTS) if it is a request of several
 * steps of ss's terminal and not listed yet; svc_pos_op_free takes it
 * off. */
static void
inflight_list(struct svc_pos *s, const struct svc_pos_session *ss,
              struct svc_pos_op *op)
{
	struct svc_pos_op **head;

	if (op == NULL || op->inflight_head != NULL)
		return;
	switch (op->kind) {
	case SVC_POS_OP_XFER_RESOLVE:
	case SVC_POS_OP_COLLECT:
	case SVC_POS_OP_CASH_IN:
	case SVC_POS_OP_BILL:
	case SVC_POS_OP_BILL_RESOLVE:
		break;
	default:
		return;
	}
	op->inflight_hash = inflight_hash(ss->terminal_id, op->txn_id);
	head = &s->inflight[op->inflight_hash % SVC_POS_INFLIGHT_SLOTS];
	op->inflight_next = *head;
	op->inflight_head = head;
	*head = op;
}

/* Is a request of several steps of (terminal, txn_id) in flight? */
static bool
inflight_has(const struct svc_pos *s, const char *terminal_id,
             const uint8_t txn_id[POS_ID_LEN])
{
	uint32_t h = inflight_hash(terminal_id, txn_id);
	const struct svc_pos_op *op;

	for (op = s->inflight[h % SVC_POS_INFLIGHT_SLOTS]; op != NULL;
	     op = op->inflight_next)
		if (op->inflight_hash == h &&
		    memcmp(op->txn_id, txn_id, POS_ID_LEN) == 0)
			return true;
	return false;
}

/* to_agent's float from the cache, or 0 (unknown or expired). */
static int64_t
agent_cached(struct svc_pos *s, const char *code, int64_t now_ms)
{
	const struct svc_pos_agent_slot *a = agent_slot(s, code);

#ifdef SOKO_FAULTS
	if (fault_skip_dup)
		return 0; /* the canary's duplicate fault lives on the slow path */
#endif
	if (a->code[0] == '\0' || now_ms >= a->expires_ms ||
	    strcmp(a->code, code) != 0)
		return 0;
	return a->float_account_id;
}

/* code is an active agent with float account float_id (just read). */
static void
agent_remember(struct svc_pos *s, const char *code, int64_t float_id,
               int64_t now_ms)
{
	struct svc_pos_agent_slot *a = agent_slot(s, code);

	strlcpy_s(a->code, code, sizeof a->code);
	a->float_account_id = float_id;
	a->expires_ms = now_ms + SVC_POS_AGENT_TTL_MS;
}

static enum store_rc
refresh_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	return st->ops->agent_get(st, op->to_agent, &op->agent);
}

/* A transfer was just served from code's entry: past half its life, ask
 * for a new read (one at a time per slot), so that the entry of an agent
 * in use is renewed before it expires (svc_pos.h). */
static void
agent_refresh_ahead(struct svc_pos *s, const char *code, int64_t now_ms,
                    struct svc_pos_out *out)
{
	struct svc_pos_agent_slot *a = agent_slot(s, code);
	struct svc_pos_op *op;

	if (out->refresh != NULL || a->refresh_ms != 0 ||
	    now_ms < a->expires_ms - SVC_POS_AGENT_TTL_MS / 2)
		return;
	op = op_new(s, SVC_POS_OP_AGENT_REFRESH, 0, 0);
	strlcpy_s(op->to_agent, code, sizeof op->to_agent);
	op->job.call = refresh_call;
	op->is_read = true; /* a reader's snapshot is as new as any commit */
	a->refresh_ms = now_ms;
	out->refresh = op;
}

void
svc_pos_refreshed(struct svc_pos *s, struct svc_pos_op *op, int64_t now_ms)
{
	struct svc_pos_agent_slot *a = agent_slot(s, op->to_agent);

	a->refresh_ms = 0;
	/* the slot may hold another agent now, or none: left alone */
	if (strcmp(a->code, op->to_agent) == 0) {
		if (op->job.call_rc == STORE_OK &&
		    op->agent.status == STORE_POS_ACTIVE)
			agent_remember(s, op->to_agent,
			               op->agent.float_account_id, now_ms);
		else if (op->job.call_rc == STORE_OK ||
		         op->job.call_rc == STORE_NOT_FOUND)
			a->code[0] = '\0'; /* blocked or gone: looked up next */
	}
	svc_pos_op_free(op);
}

static void
on_float_transfer(struct svc_pos *s, struct svc_pos_session *ss,
                  const struct pos_frame *f, const struct pos_msg *m,
                  int64_t now_ms, struct svc_pos_out *out)
{
	int64_t to_float;
	const struct pos_float_transfer *ft = &m->u.float_transfer;
	struct svc_pos_op *op;

	if (inflight_full(s, ss, f, out))
		return;
	if (ft->amount == 0) {
		send_xfer(ss, out, f->hdr.req_id, POS_CODE_AMOUNT_INVALID,
		          ft->txn_id, 0, 0, -1, NULL);
		return;
	}
	op = op_new(s, SVC_POS_OP_XFER_RESOLVE, f->hdr.type, f->hdr.req_id);
	if (!copy_id(op->to_agent, &ft->to_agent)) {
		svc_pos_op_free(op);
		send_xfer(ss, out, f->hdr.req_id, POS_CODE_UNKNOWN_AGENT,
		          ft->txn_id, 0, 0, -1, NULL);
		return;
	}
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	memcpy(op->txn_id, ft->txn_id, POS_ID_LEN);
	op->amount = ft->amount;
	op->currency = (uint16_t)ft->currency;
	ss->n_inflight++;
	to_float = agent_cached(s, op->to_agent, now_ms);
	if (to_float != 0 && to_float != ss->float_account_id) {
		/* a known active agent: straight to the ledger; its
		 * idempotency record catches a repeat, which is then answered
		 * from its row like any other (xfer_done) */
		xfer_req(ss, op, op->txn_id, op->amount, op->currency,
		         op->to_agent, to_float, false, 0);
		op->kind = SVC_POS_OP_XFER;
		op->is_fast = true;
		out->post = op;
		agent_refresh_ahead(s, op->to_agent, now_ms, out);
		return;
	}
	op->job.call = resolve_call;
	out->post = op;
}

/* STATUS, REVERSAL, RECEIPT: one lookup of (this terminal, txn_id). */
static void
on_lookup(struct svc_pos *s, struct svc_pos_session *ss,
          const struct pos_frame *f, enum svc_pos_op_kind kind,
          const uint8_t txn_id[POS_ID_LEN], struct svc_pos_out *out)
{
	struct svc_pos_op *op;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, kind, f->hdr.type, f->hdr.req_id);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	memcpy(op->txn_id, txn_id, POS_ID_LEN);
	op->job.call = lookup_call;
	if (s->pay != NULL)
		op->prov = xcalloc(1, sizeof *op->prov);
	/* REV_LOOKUP is the first step of a write: it stays on the writer */
	op->is_read = kind == SVC_POS_OP_STATUS || kind == SVC_POS_OP_RECEIPT;
	ss->n_inflight++;
	out->post = op;
}

/* ------------------------------------------ provider-backed requests */

/* An op the terminal sent and waits for (counted in n_inflight); the
 * server's own lookups and the ACKs are not. */
static bool
is_request(const struct svc_pos_op *op)
{
	return op->kind != SVC_POS_OP_LOGIN && op->kind != SVC_POS_OP_RESULTS &&
	       op->kind != SVC_POS_OP_ACK &&
	       op->kind != SVC_POS_OP_AGENT_REFRESH;
}

void
svc_pos_pay_ref(char *dst, const char *terminal_id,
                const uint8_t txn_id[POS_ID_LEN])
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"
	                          "qrstuvwxyz0123456789-_";
	char enc[23];
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (i = 0; i < POS_ID_LEN; i++) {
		acc = (acc << 8) | txn_id[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			enc[o++] = b64[(acc >> bits) & 63];
		}
	}
	if (bits > 0)
		enc[o++] = b64[(acc << (6 - bits)) & 63];
	enc[o] = '\0';
	snprintf(dst, PAYMENT_REF_MAX + 1, "pos:%s:%s", terminal_id, enc);
}

/* Provider result codes that say the customer refused, or never
 * answered in time (M-Pesa STK ResultCode, MoMo reason, Orange status;
 * docs/pos-protocol.md §12). */
static bool
code_in(const char *code, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(code, *list) == 0)
			return true;
	return false;
}

enum pos_code
svc_pos_pay_code(const struct store_prov *p)
{
	static const char *const refused[] = {"1032", "2001",
	                                      "APPROVAL_REJECTED", NULL};
	static const char *const expired[] = {"1037", "1019", "EXPIRED",
	                                      NULL};

	int i;

	switch (p->pay.state) {
	case PAY_SUCCEEDED:
		return POS_CODE_APPROVED;
	case PAY_REVERSED:
		return POS_CODE_REVERSED;
	case PAY_FAILED:
		/* a bill whose funding the ledger declined: its reason */
		for (i = 0; p->kind == STORE_PROV_BILL && p->pay.txn_id == 0 &&
		            i < LEDGER_RC_COUNT;
		     i++)
			if (i != LEDGER_OK &&
			    strcmp(p->result_code,
			           ledger_rc_name((enum ledger_rc)i)) == 0)
				return svc_pos_code((enum ledger_rc)i);
		if (code_in(p->result_code, refused))
			return POS_CODE_CUSTOMER_DECLINED;
		if (code_in(p->result_code, expired))
			return POS_CODE_EXPIRED;
		return POS_CODE_DECLINED;
	default:
		return POS_CODE_PENDING; /* created, pending, unknown */
	}
}

/* "CO-<payment id>" (COLLECT) or "CW-<payment id>" (CASH_OUT). */
static void
pay_ref_text(char *dst, size_t cap, const struct store_prov *p,
             uint16_t type)
{
	snprintf(dst, cap, "%s-%lld",
	         type == POS_MSG_CASH_OUT   ? "CW"
	         : type == POS_MSG_CASH_IN  ? "CI"
	         : type == POS_MSG_BILL_PAY ? "BP"
	                                    : "CO",
	         (long long)p->pay.id);
}

/* The result of a provider payment: STATUS, RECEIPT, COLLECT_RESULT. */
static void
pay_result(struct result *x, const struct store_prov *p, uint16_t type)
{
	x->code = svc_pos_pay_code(p);
	pay_ref_text(x->ref, sizeof x->ref, p, type);
	x->time_ms = p->pay.updated_ms > 0 ? p->pay.updated_ms
	                                   : p->pay.created_ms;
	x->has_detail = true;
	x->type = type;
	x->amount = (uint64_t)p->pay.amount_minor;
	x->currency = p->pay.currency;
	/* a bill's receipt is its token (docs/payments.md §8) */
	if (p->kind == STORE_PROV_BILL && p->receipt[0] != '\0')
		x->token = p->receipt;
	/* a failure in the provider's (or the biller's) words */
	result_reason(x, p->result_desc[0] != '\0' ? p->result_desc
	                                            : p->result_code);
}

/* STATUS and RECEIPT of a provider payment a terminal started: as
 * pay_result, but a bill that came as an advice is STORED while it is
 * funded and not final (what the terminal recorded, and what a repeat
 * of the advice answers: §6.15), not PENDING. */
static void
link_result(struct result *x, const struct store_prov *p,
            const struct store_pos_link *link)
{
	pay_result(x, p, link->type);
	if (link->is_advice && x->code == POS_CODE_PENDING)
		x->code = POS_CODE_STORED;
}

static void fmt_time(char *dst, size_t cap, int64_t ms);

/* Receipt lines of a provider payment; masked: the customer's MSISDN
 * with all but its last 3 digits hidden. */
static void
pay_receipt(char *dst, size_t cap, char *masked, size_t mcap,
            const char *terminal_id, const struct store_prov *p,
            const struct result *x)
{
	const struct currency *cur = money_currency_by_numeric(p->pay.currency);
	size_t n = strlen(p->msisdn);
	char amt[40] = "?", when[40];

	if (p->kind == STORE_PROV_BILL) {
		/* a meter or smartcard number is printed in full */
		snprintf(masked, mcap, "%s", p->bill.customer);
		if (cur != NULL)
			money_format(amt, sizeof amt, cur, p->pay.amount_minor);
		fmt_time(when, sizeof when, p->pay.created_ms);
		snprintf(dst, cap,
		         "*** REPRINT ***\nTerminal: %s\nBILL PAY\n"
		         "Biller: %s/%s\nAccount: %s\nAmount: %s %s\n"
		         "Token: %s\nRef: %s\nTime: %s\nStatus: %s",
		         terminal_id, p->bill.biller_code, p->bill.item_code,
		         p->bill.customer, cur != NULL ? cur->alpha : "", amt,
		         p->receipt[0] ? p->receipt : "-", x->ref, when,
		         pos_code_name(x->code));
		return;
	}
	snprintf(masked, mcap, "***%s", n > 3 ? p->msisdn + n - 3 : "");
	if (cur != NULL)
		money_format(amt, sizeof amt, cur, p->pay.amount_minor);
	fmt_time(when, sizeof when, p->pay.created_ms);
	snprintf(dst, cap,
	         "*** REPRINT ***\nTerminal: %s\n%s\nCustomer: %s\n"
	         "Provider: %s\nAmount: %s %s\nRef: %s\nReceipt: %s\n"
	         "Time: %s\nStatus: %s",
	         terminal_id,
	         x->type == POS_MSG_CASH_OUT  ? "CASH OUT"
	         : x->type == POS_MSG_CASH_IN ? "CASH IN"
	                                      : "COLLECT",
	         masked, p->provider, cur != NULL ? cur->alpha : "", amt,
	         x->ref, p->receipt[0] ? p->receipt : "-", when,
	         pos_code_name(x->code));
}

/* The content of a COLLECT / CASH_OUT, for §9.1: a resend with the same
 * content is the same request. */
static void
collect_hash(uint8_t out[SHA256_LEN], uint16_t type, uint64_t amount,
             uint16_t currency, const char *msisdn, const char *provider)
{
	char canon[128];
	int n = snprintf(canon, sizeof canon, "pos|%u|%llu|%u|%s|%s",
	                 (unsigned)type, (unsigned long long)amount,
	                 (unsigned)currency, msisdn, provider);

	sha256_digest(out, canon, n > 0 ? (size_t)n : 0);
}

/* An MSISDN as the providers take it: 9..15 digits, international. */
static bool
msisdn_ok(const struct pos_bytes *b)
{
	size_t i;

	if (b->len < 9 || b->len > 15)
		return false;
	for (i = 0; i < b->len; i++)
		if (b->ptr[i] < '0' || b->ptr[i] > '9')
			return false;
	return true;
}

/* The POS code for an API error code of the payment service. */
static enum pos_code
prep_code(const char *api)
{
	if (strcmp(api, "provider_unknown") == 0 ||
	    strcmp(api, "provider_disabled") == 0 ||
	    strcmp(api, "disbursement_disabled") == 0)
		return POS_CODE_UNKNOWN_PROVIDER;
	if (strcmp(api, "retry_later") == 0 ||
	    strcmp(api, "provider_misconfigured") == 0)
		return POS_CODE_RETRY_LATER;
	if (strstr(api, "msisdn") != NULL)
		return POS_CODE_INVALID_MSISDN;
	if (strstr(api, "currency") != NULL)
		return POS_CODE_CURRENCY_INVALID;
	if (strstr(api, "amount") != NULL)
		return POS_CODE_AMOUNT_INVALID;
	return POS_CODE_DECLINED;
}

/* The agent's float (op->float_account_id) into *fl, for the storage
 * half of a provider-backed request: op->is_float_wrong when it is not
 * an agent float in currency (answered CURRENCY_INVALID, nothing
 * stored). */
static enum store_rc
float_load(struct store *st, struct svc_pos_op *op, uint16_t currency,
           struct ledger_account *fl)
{
	enum store_rc rc = st->ops->account_by_id(st, op->float_account_id, fl);

	if (rc == STORE_OK)
		op->is_float_wrong = fl->type != LEDGER_ACCT_AGENT_FLOAT ||
		                     fl->currency != currency;
	return rc;
}

/* What a COLLECT credits (docs/payments.md §9a): the merchant's
 * merchant_payable account when the terminal belongs to a merchant (read
 * here, on the worker, so an assignment applies to the next collection
 * without a new login and costs an idle session nothing), else the
 * agent's float; CASH_OUT always the float.  A merchant's collection
 * also counts against the merchant's limits (its code added to the
 * request's subjects, after the terminal and the agent).
 * op->is_float_wrong when the account is not of its type or not in the
 * collection's currency (CURRENCY_INVALID, nothing stored). */
static enum store_rc
collect_target(struct store *st, struct svc_pos_op *op,
               struct ledger_account *tg)
{
	struct ledger_subject *sub = &op->job.req.subjects[2];
	struct store_terminal t;
	enum store_rc rc;
	int64_t id;

	if (op->type != POS_MSG_COLLECT)
		return float_load(st, op, op->currency, tg);
	memset(&t, 0, sizeof t);
	rc = st->ops->terminal_get(st, op->terminal_id, &t);
	id = t.merchant_id != 0 ? t.merchant.payable_account_id : 0;
	memset(sub, 0, sizeof *sub);
	if (id != 0) {
		sub->kind = LEDGER_SUBJ_MERCHANT;
		strlcpy_s(sub->id, t.merchant.code, sizeof sub->id);
	}
	explicit_bzero(&t, sizeof t); /* its wrapped key */
	if (rc != STORE_OK)
		return rc == STORE_NOT_FOUND ? STORE_FAIL : rc;
	if (id == 0)
		return float_load(st, op, op->currency, tg);
	if ((rc = st->ops->account_by_id(st, id, tg)) == STORE_OK)
		op->is_float_wrong = tg->type != LEDGER_ACCT_MERCHANT_PAYABLE ||
		                     tg->currency != op->currency;
	return rc;
}

/* After a POS payment's creation (worker): created, or a resend of one
 * (CONFLICT: the stored payment answers).  A creation that failed may
 * have lost its txn id's ledger key to a float transfer or a REVERSAL's
 * tombstone committed since the lookup (another sokod on the same
 * PostgreSQL, §12 "A txn id is one transaction"): look again, and that
 * row answers (TXN_ID_REUSED, or the tombstone's DUPLICATE) instead of
 * RETRY_LATER. */
static enum store_rc
created_or_taken(struct store *st, struct svc_pos_op *op)
{
	if (op->pay_rc == STORE_OK || op->pay_rc == STORE_CONFLICT)
		return STORE_OK;
	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
	if (op->found_rc == STORE_OK)
		return STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	return op->pay_rc;
}

/* The storage half of COLLECT / CASH_OUT (worker): a float transfer or
 * tombstone holding the txn id answers, and so does a payment already
 * made for it (a resend); else the agent's float (the account credited),
 * the terminal's and the agent's limits (checked, not counted: the
 * success counts, docs/payments.md §9a), then the payment with its POS
 * link. */
static enum store_rc
collect_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	struct ledger_account fl;
	enum store_rc rc;

	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
	if (op->found_rc != STORE_NOT_FOUND)
		return op->found_rc;
	rc = st->ops->pos_pay_get(st, op->terminal_id, op->txn_id, op->prov,
	                          NULL);
	if (rc == STORE_OK) {
		op->pay_rc = STORE_CONFLICT;
		return STORE_OK;
	}
	if (rc != STORE_NOT_FOUND)
		return rc;
	if ((rc = collect_target(st, op, &fl)) != STORE_OK ||
	    op->is_float_wrong)
		return rc;
	op->limit_rc = ledger_limits_check(op->svc->lg, &op->job.req,
	                                   op->svc->clock_ms());
	if (op->limit_rc == LEDGER_RETRY)
		return STORE_FAIL;
	if (op->limit_rc != LEDGER_OK)
		return STORE_OK;
	op->pay_rc = op->svc->pay->collect_store(op->svc->pay->arg, st,
	                                         op->prov, op->clearing, &fl,
	                                         &op->link, &op->pay_err);
	return created_or_taken(st, op);
}

static void
collect_answer(struct svc_pos_session *ss, struct svc_pos_op *op,
               struct svc_pos_out *out, enum pos_code code, int orig,
               const char *why)
{
	struct result x;

	result_init(&x, code, op->txn_id);
	if (op->prov != NULL && op->prov->pay.id > 0 &&
	    (code == POS_CODE_PENDING || code == POS_CODE_DUPLICATE)) {
		pay_ref_text(x.ref, sizeof x.ref, op->prov, op->type);
		x.time_ms = op->prov->pay.created_ms;
	}
	x.orig_code = orig;
	result_reason(&x, why);
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=%s terminal=%s req_id=%u code=%s ref=%s why=%s",
	        op->type == POS_MSG_CASH_OUT  ? "cash_out"
	        : op->type == POS_MSG_CASH_IN ? "cash_in"
	                                      : "collect",
	        ss->terminal_id, (unsigned)op->req_id, pos_code_name(code),
	        x.ref[0] ? x.ref : "-", why);
	send_result(ss, out, (uint16_t)(op->type | 0x8000u), op->req_id, &x);
}

/* CASH_IN (worker): as collect_call, but nothing is written here: a
 * payment already there is the answer; else the accounts of the
 * disbursement, whose hold request then creates it (cash_in_done). */
static enum store_rc
cash_in_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	struct ledger_account fl;
	struct store_prov old;
	enum store_rc rc;

	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
	if (op->found_rc != STORE_NOT_FOUND)
		return op->found_rc;
	rc = st->ops->pos_pay_get(st, op->terminal_id, op->txn_id, &old, NULL);
	if (rc == STORE_OK) {
		*op->prov = old;
		op->pay_rc = STORE_CONFLICT;
		return STORE_OK;
	}
	if (rc != STORE_NOT_FOUND)
		return rc;
	if ((rc = float_load(st, op, op->currency, &fl)) != STORE_OK ||
	    op->is_float_wrong)
		return rc;
	op->pay_rc = STORE_OK;
	return op->svc->pay->disb_accounts(op->svc->pay->arg, st, op->prov,
	                                   op->clearing, op->hold, &fl,
	                                   &op->pay_err);
}

static enum store_rc
cash_in_get_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	return st->ops->pos_pay_get(st, op->terminal_id, op->txn_id, op->prov,
	                            NULL);
}

static void
collect_answer(struct svc_pos_session *ss, struct svc_pos_op *op,
               struct svc_pos_out *out, enum pos_code code, int orig,
               const char *why);
static void collect_done(struct svc_pos *s, struct svc_pos_session *ss,
                         struct svc_pos_op *op, struct svc_pos_out *out);

/* The hold request of a new CASH_IN: the float debited into the
 * provider's holding account and the payment created (with its POS
 * link) in one commit, counted against the terminal's and the agent's
 * limits like a float transfer (§12). */
static void
cash_in_hold(struct svc_pos_session *ss, struct svc_pos_op *op,
             struct svc_pos_out *out)
{
	struct ledger_req *r = &op->job.req;

	op->prov->pos = op->link;
	svc_prov_hold_req(op->prov, r);
	pos_limited(r, ss, op->prov->pay.amount_minor);
	op->kind = SVC_POS_OP_CASH_IN_HOLD;
	op->job.call = NULL;
	out->post = op;
}

static void
cash_in_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, struct svc_pos_out *out)
{
	(void)s;
	if (op->job.call_rc == STORE_OK && op->found_rc != STORE_OK &&
	    !op->is_float_wrong && op->pay_err == NULL &&
	    op->pay_rc == STORE_OK) {
		cash_in_hold(ss, op, out);
		return;
	}
	if (op->pay_err != NULL &&
	    strcmp(op->pay_err, "account_without_floor") == 0)
		op->pay_err = "declined"; /* an agent float without a floor */
	collect_done(s, ss, op, out);
}

static void
cash_in_hold_done(struct svc_pos *s, struct svc_pos_session *ss,
                  struct svc_pos_op *op, struct svc_pos_out *out)
{
	enum ledger_rc rc = op->job.res.rc;

	if (rc == LEDGER_OK) {
		/* created (or, in a race, by a twin request): its id */
		if (!op->job.res.is_replay)
			s->pay->kick(s->pay->arg);
		op->is_replay = op->job.res.is_replay;
		op->kind = SVC_POS_OP_CASH_IN_GET;
		op->job.call = cash_in_get_call;
		out->post = op;
		return;
	}
	/* refused (float too low, a limit, closed): nothing created;
	 * the decline is kept with the hold's key (§9.1) */
	collect_answer(ss, op, out,
	               rc == LEDGER_RETRY ? POS_CODE_RETRY_LATER
	                                  : svc_pos_code(rc),
	               -1, ledger_rc_name(rc));
	ss->n_inflight--;
	svc_pos_op_free(op);
}

static void
cash_in_get_done(struct svc_pos_session *ss, struct svc_pos_op *op,
                 struct svc_pos_out *out)
{
	if (op->job.call_rc != STORE_OK)
		/* committed, not read back: STATUS will tell */
		collect_answer(ss, op, out, POS_CODE_RETRY_LATER, -1, "read");
	else if (op->is_replay)
		collect_answer(ss, op, out, POS_CODE_DUPLICATE,
		               (int)svc_pos_pay_code(op->prov), "repeat");
	else
		collect_answer(ss, op, out, POS_CODE_PENDING, -1, "held");
	ss->n_inflight--;
	svc_pos_op_free(op);
}

static void
on_collect(struct svc_pos *s, struct svc_pos_session *ss,
           const struct pos_frame *f, const struct pos_msg *m,
           int64_t now_ms, struct svc_pos_out *out)
{
	uint16_t type = f->hdr.type;
	bool is_co = type == POS_MSG_CASH_OUT, is_ci = type == POS_MSG_CASH_IN;
	const uint8_t *txn_id = is_co   ? m->u.cash_out.txn_id
	                        : is_ci ? m->u.cash_in.txn_id
	                                : m->u.collect.txn_id;
	uint64_t amount = is_co   ? m->u.cash_out.amount
	                  : is_ci ? m->u.cash_in.amount
	                          : m->u.collect.amount;
	uint16_t currency = (uint16_t)(is_co   ? m->u.cash_out.currency
	                               : is_ci ? m->u.cash_in.currency
	                                       : m->u.collect.currency);
	const struct pos_bytes *msisdn = is_co   ? &m->u.cash_out.msisdn
	                                 : is_ci ? &m->u.cash_in.msisdn
	                                         : &m->u.collect.msisdn;
	const struct pos_bytes *prov = is_co   ? &m->u.cash_out.provider
	                               : is_ci ? &m->u.cash_in.provider
	                                       : &m->u.collect.provider;
	bool has_prov = is_co   ? m->u.cash_out.has_provider
	                : is_ci ? m->u.cash_in.has_provider
	                        : true;
	struct svc_collection c;
	struct svc_pos_op *op;
	char ref[PAYMENT_REF_MAX + 1];
	const char *err, *msg = "";
	enum pos_code code = POS_CODE_APPROVED;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, is_ci ? SVC_POS_OP_CASH_IN : SVC_POS_OP_COLLECT, type,
	            f->hdr.req_id);
	memcpy(op->txn_id, txn_id, POS_ID_LEN);
	op->amount = amount;
	op->currency = currency;
	memset(&c, 0, sizeof c);
	c.cur = money_currency_by_numeric(currency);
	/* a CASH_OUT or CASH_IN without a provider would be a soko
	 * wallet's: there is none (docs/pos-protocol.md §12) */
	if (!has_prov || prov->len == 0 || prov->len >= sizeof c.provider ||
	    memchr(prov->ptr, '\0', prov->len) != NULL)
		code = POS_CODE_UNKNOWN_PROVIDER;
	else if (!msisdn_ok(msisdn))
		code = POS_CODE_INVALID_MSISDN;
	else if (amount == 0 || amount > (uint64_t)INT64_MAX)
		code = POS_CODE_AMOUNT_INVALID;
	else if (c.cur == NULL)
		code = POS_CODE_CURRENCY_INVALID;
	if (code != POS_CODE_APPROVED) {
		collect_answer(ss, op, out, code, -1, "request");
		svc_pos_op_free(op);
		return;
	}
	memcpy(c.provider, prov->ptr, prov->len);
	memcpy(c.msisdn, msisdn->ptr, msisdn->len);
	c.amount_minor = (int64_t)amount;
	svc_pos_pay_ref(ref, ss->terminal_id, txn_id);
	op->prov = xcalloc(1, sizeof *op->prov);
	err = is_ci ? s->pay->disb_prep(s->pay->arg, &c, ref, now_ms, op->prov,
	                                op->clearing, op->hold,
	                                sizeof op->clearing, &msg)
	            : s->pay->collect_prep(s->pay->arg, &c, ref, now_ms,
	                                   op->prov, op->clearing,
	                                   sizeof op->clearing, &msg);
	if (err != NULL) {
		/* nothing was stored: a resend is decided afresh */
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=collect_refused terminal=%s provider=%s "
		        "error=%s why=\"%s\"",
		        ss->terminal_id, c.provider, err, msg);
		collect_answer(ss, op, out, prep_code(err), -1, err);
		svc_pos_op_free(op);
		return;
	}
	collect_hash(op->want, type, amount, currency, c.msisdn, c.provider);
	memcpy(op->prov->req_hash, op->want, sizeof op->want);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	strlcpy_s(op->link.terminal_id, ss->terminal_id,
	          sizeof op->link.terminal_id);
	memcpy(op->link.txn_id, txn_id, POS_ID_LEN);
	op->link.type = type;
	svc_pos_idem_key(op->link.idem_key, ss->terminal_id, txn_id);
	op->float_account_id = ss->float_account_id;
	if (!is_ci) { /* what collect_call checks the limits with */
		op->job.req.currency = currency;
		pos_limited(&op->job.req, ss, (int64_t)amount);
	}
	op->job.call = is_ci ? cash_in_call : collect_call;
	ss->n_inflight++;
	out->post = op;
}

/*
 * The answers a provider-backed request's creation job (COLLECT,
 * CASH_OUT, CASH_IN, BILL_PAY) ends with before there is a payment to
 * speak of: the storage failed; the txn id is a float transfer's, or a
 * tombstone's (§9.3); the agent's float is in another currency; the
 * payment service refused the request.  True with the answer in *code,
 * *orig (-1: none) and *why; false when the payment was created or
 * found, and the caller answers from it.
 */
static bool
pre_answer(const struct svc_pos_op *op, enum pos_code *code, int *orig,
           const char **why)
{
	*orig = -1;
	if (op->job.call_rc != STORE_OK) {
		*code = POS_CODE_RETRY_LATER;
		*why = "store";
	} else if (op->found_rc == STORE_OK && op->found.type == 0) {
		*code = POS_CODE_DUPLICATE;
		*orig = POS_CODE_REVERSED;
		*why = "tombstone";
	} else if (op->found_rc == STORE_OK) {
		*code = POS_CODE_TXN_ID_REUSED;
		*why = "other_request";
	} else if (op->is_float_wrong) {
		*code = POS_CODE_CURRENCY_INVALID;
		*why = "float_currency";
	} else if (op->limit_rc != LEDGER_OK) {
		*code = svc_pos_code(op->limit_rc);
		*why = ledger_rc_name(op->limit_rc);
	} else if (op->pay_err != NULL) {
		*code = prep_code(op->pay_err);
		*why = op->pay_err;
	} else {
		return false;
	}
	return true;
}

static void
collect_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, struct svc_pos_out *out)
{
	const uint8_t *want = op->want;
	enum pos_code code;
	const char *why;
	int orig;

	if (pre_answer(op, &code, &orig, &why)) {
		collect_answer(ss, op, out, code, orig, why);
	} else if (op->pay_rc == STORE_CONFLICT) {
		/* a resend (§9.1): the stored payment answers; the
		 * provider is never asked twice */
		if (util_ct_memcmp(want, op->prov->req_hash, SHA256_LEN) == 0)
			collect_answer(ss, op, out, POS_CODE_DUPLICATE,
			               (int)svc_pos_pay_code(op->prov), "repeat");
		else
			collect_answer(ss, op, out, POS_CODE_TXN_ID_REUSED, -1,
			               "other_content");
	} else {
		char m[16];

		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=payment_created terminal=%s ref=%s provider=%s "
		        "msisdn=%s amount=%lld",
		        ss->terminal_id, op->prov->pay.ref, op->prov->provider,
		        log_msisdn(m, sizeof m, op->prov->msisdn),
		        (long long)op->prov->pay.amount_minor);
		s->pay->kick(s->pay->arg);
		collect_answer(ss, op, out, POS_CODE_PENDING, -1, "created");
	}
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/* ------------------------------------------------------------- bills */

#define NGN 566 /* Flutterwave bills are Nigeria-only */

/* "BILLER:ITEM" (Flutterwave's biller_code and item_code, each 1..32 of
 * [A-Za-z0-9_-]) and the account (1..40 printable ASCII, no blank) into
 * *v: APPROVED, or UNKNOWN_BILLER / INVALID_ACCOUNT. */
static enum pos_code
bill_codes(struct svc_bill_validate *v, const struct pos_bytes *biller,
           const struct pos_bytes *account)
{
	const uint8_t *colon = memchr(biller->ptr, ':', biller->len);
	size_t i, nb, ni;

	memset(v, 0, sizeof *v);
	/* "<biller_code>:<item_code>", or the item code alone (its biller
	 * from the categories, as the HTTP API does: biller_code "") */
	nb = colon != NULL ? (size_t)(colon - biller->ptr) : 0;
	ni = colon != NULL ? biller->len - nb - 1 : biller->len;
	if ((colon != NULL && nb == 0) || ni == 0 ||
	    nb > STORE_BILL_CODE_MAX || ni > STORE_BILL_CODE_MAX)
		return POS_CODE_UNKNOWN_BILLER;
	for (i = 0; i < biller->len; i++) {
		uint8_t ch = biller->ptr[i];

		if ((colon == NULL || i != nb) &&
		    !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
			return POS_CODE_UNKNOWN_BILLER;
	}
	memcpy(v->biller_code, biller->ptr, nb);
	memcpy(v->item_code, colon != NULL ? colon + 1 : biller->ptr, ni);
	if (account->len == 0 || account->len > STORE_BILL_CUSTOMER_MAX)
		return POS_CODE_INVALID_ACCOUNT;
	for (i = 0; i < account->len; i++)
		if (account->ptr[i] < 0x21 || account->ptr[i] > 0x7e)
			return POS_CODE_INVALID_ACCOUNT;
	memcpy(v->customer, account->ptr, account->len);
	return POS_CODE_APPROVED;
}

/* The POS code of a validation outcome (§6.10). */
enum pos_code
svc_pos_bill_check_code(enum svc_bill_outcome o)
{
	switch (o) {
	case SVC_BILL_VALID:
		return POS_CODE_APPROVED;
	case SVC_BILL_CUSTOMER_UNKNOWN:
		return POS_CODE_INVALID_ACCOUNT;
	case SVC_BILL_ITEM_UNKNOWN:
	case SVC_BILL_DISABLED:
		return POS_CODE_UNKNOWN_BILLER;
	case SVC_BILL_UNANSWERED:
	case SVC_BILL_PROVIDER_ERROR:
		break;
	}
	return POS_CODE_RETRY_LATER;
}

/* text cut to at most max bytes, never inside a UTF-8 sequence */
static void
utf8_cut(char *dst, size_t cap, const char *src, size_t max)
{
	size_t n = strlen(src);

	if (n > max) {
		n = max;
		while (n > 0 && ((uint8_t)src[n] & 0xc0) == 0x80)
			n--;
	}
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void
bill_check_answer(struct svc_pos_session *ss, struct svc_pos_op *op,
                  struct svc_pos_out *out, enum pos_code code)
{
	struct pos_msg m;
	char name[65];

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_BILL_VALIDATE_RESP;
	m.u.bill_validate_resp.code = code;
	if (code == POS_CODE_APPROVED) {
		utf8_cut(name, sizeof name, op->check.name, 64);
		set_text(&m.u.bill_validate_resp.customer_name,
		         &m.u.bill_validate_resp.has_customer_name, name);
		if (op->check.has_due && op->check.due_minor >= 0) {
			m.u.bill_validate_resp.has_amount_due = true;
			m.u.bill_validate_resp.amount_due =
			    (uint64_t)op->check.due_minor;
			m.u.bill_validate_resp.has_currency = true;
			m.u.bill_validate_resp.currency = NGN;
		}
	}
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=bill_validate terminal=%s biller=%s item=%s code=%s",
	        ss->terminal_id, op->bill.biller_code, op->bill.item_code,
	        pos_code_name(code));
	send_msg(ss, out, &m, op->req_id, MAC_KS, NULL);
}

static void
on_bill_validate(struct svc_pos *s, struct svc_pos_session *ss,
                 const struct pos_frame *f, const struct pos_msg *m,
                 struct svc_pos_out *out)
{
	struct svc_pos_op *op;
	enum pos_code code;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, SVC_POS_OP_BILL_CHECK, f->hdr.type, f->hdr.req_id);
	code = bill_codes(&op->bill, &m->u.bill_validate.biller,
	                  &m->u.bill_validate.account);
	if (code != POS_CODE_APPROVED) {
		bill_check_answer(ss, op, out, code);
		svc_pos_op_free(op);
		return;
	}
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	ss->n_inflight++;
	out->post = op; /* no job.call: the caller makes the call */
}

static void
bill_check_done(struct svc_pos_session *ss, struct svc_pos_op *op,
                struct svc_pos_out *out)
{
	bill_check_answer(ss, op, out,
	                  svc_pos_bill_check_code(op->check.outcome));
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/* The content of a BILL_PAY (§9.1). */
static void
bill_hash(uint8_t out[SHA256_LEN], uint64_t amount, uint16_t currency,
          const struct svc_bill_validate *v)
{
	char canon[192];
	int n = snprintf(canon, sizeof canon, "pos|%u|%llu|%u|%s|%s|%s",
	                 (unsigned)POS_MSG_BILL_PAY,
	                 (unsigned long long)amount, (unsigned)currency,
	                 v->biller_code, v->item_code, v->customer);

	sha256_digest(out, canon, n > 0 ? (size_t)n : 0);
}

static enum store_rc
bill_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	struct ledger_account fl;
	enum store_rc rc;

	op->found_rc =
	    st->ops->pos_txn_get(st, op->terminal_id, op->txn_id, &op->found);
	if (op->found_rc != STORE_NOT_FOUND)
		return op->found_rc;
	if ((rc = float_load(st, op, NGN, &fl)) != STORE_OK ||
	    op->is_float_wrong)
		return rc;
	op->pay_rc = op->svc->pay->bill_store(op->svc->pay->arg, st, op->prov,
	                                      &fl, &op->link, &op->pay_err);
	return created_or_taken(st, op);
}

static void
bill_answer(struct svc_pos_session *ss, struct svc_pos_op *op,
            struct svc_pos_out *out, enum pos_code code, int orig,
            const char *why)
{
	struct result x;

	result_init(&x, code, op->txn_id);
	if (op->prov != NULL && op->prov->pay.id > 0 &&
	    (code == POS_CODE_PENDING || code == POS_CODE_DUPLICATE ||
	     op->kind == SVC_POS_OP_BILL_WAIT)) {
		pay_result(&x, op->prov, POS_MSG_BILL_PAY);
		x.code = code;
		x.has_detail = false;
	}
	x.orig_code = orig;
	if (x.text == NULL)
		result_reason(&x, why);
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=bill_pay terminal=%s req_id=%u code=%s ref=%s why=%s "
	        "advice=%d",
	        ss->terminal_id, (unsigned)op->req_id, pos_code_name(code),
	        x.ref[0] ? x.ref : "-", why, op->parent != NULL);
	if (op->parent != NULL) {
		/* an advised bill (§6.15): its item's result, answered with
		 * the batch; funded is STORED, a repeat DUPLICATE with the
		 * payment's code (STORED while it is funded and pending: the
		 * terminal's advice is final there), a refusal its code */
		struct svc_pos_advice *a = &op->parent->items[op->idx];

		a->code = code == POS_CODE_PENDING ? POS_CODE_STORED : code;
		a->orig_code = x.orig_code == POS_CODE_PENDING
		                   ? POS_CODE_STORED
		                   : x.orig_code;
		strlcpy_s(a->ref, x.ref, sizeof a->ref);
		a->token[0] = '\0';
		if (x.token != NULL)
			utf8_cut(a->token, sizeof a->token, x.token, 64);
		return;
	}
	send_result(ss, out, POS_MSG_BILL_PAY_RESP, op->req_id, &x);
}

static void advice_next(struct svc_pos *s, struct svc_pos_session *ss,
                        struct svc_pos_op *parent, int64_t now_ms,
                        struct svc_pos_out *out);

/* A BILL_PAY op is answered: an online one frees its slot; an advised
 * one lets the next item of its batch go (advice_next). */
static void
bill_end(struct svc_pos *s, struct svc_pos_session *ss, struct svc_pos_op *op,
         int64_t now_ms, struct svc_pos_out *out)
{
	if (op->parent != NULL)
		advice_next(s, ss, op->parent, now_ms, out);
	else
		ss->n_inflight--;
	svc_pos_op_free(op); /* the last child frees its batch */
}

/* The amount and currency of a BILL_PAY (online or advised). */
static enum pos_code
bill_money_code(uint64_t amount, uint64_t currency)
{
	if (amount == 0 || amount > (uint64_t)INT64_MAX)
		return POS_CODE_AMOUNT_INVALID;
	if (currency != NGN)
		return POS_CODE_CURRENCY_INVALID;
	return POS_CODE_APPROVED;
}

/*
 * A BILL_PAY op whose bill, amount, currency and txn_id are set and
 * checked: its payment row prepared (not funded), content hash and POS
 * link (is_advice: uploaded by ADVICE_BATCH), job.call set.  APPROVED,
 * or the code that refuses it (nothing created) with *why.
 */
static enum pos_code
bill_start(struct svc_pos *s, struct svc_pos_session *ss,
           struct svc_pos_op *op, bool is_advice, int64_t now_ms,
           const char **why)
{
	struct svc_bill_pay b;
	char ref[PAYMENT_REF_MAX + 1];
	const char *err;

	memset(&b, 0, sizeof b);
	b.v = op->bill;
	b.cur = money_currency_by_numeric(NGN);
	b.amount_minor = (int64_t)op->amount;
	svc_pos_pay_ref(ref, ss->terminal_id, op->txn_id);
	op->prov = xcalloc(1, sizeof *op->prov);
	err = s->pay->bill_prep(s->pay->arg, &b, ref, now_ms, op->prov);
	if (err != NULL) {
		*why = err;
		return strcmp(err, "provider_disabled") == 0
		               ? POS_CODE_UNKNOWN_BILLER
		               : prep_code(err);
	}
	bill_hash(op->prov->req_hash, op->amount, NGN, &op->bill);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	strlcpy_s(op->link.terminal_id, ss->terminal_id,
	          sizeof op->link.terminal_id);
	memcpy(op->link.txn_id, op->txn_id, POS_ID_LEN);
	op->link.type = POS_MSG_BILL_PAY;
	svc_pos_idem_key(op->link.idem_key, ss->terminal_id, op->txn_id);
	op->link.is_advice = is_advice;
	/* an online bill's outcome is pushed (COLLECT_RESULT with its
	 * token); an advised one's is not: the terminal finished it at
	 * STORED and asks STATUS or RECEIPT for the token */
	op->link.acked_ms = is_advice ? now_ms : 0;
	op->float_account_id = ss->float_account_id;
	op->job.call = bill_call;
	return POS_CODE_APPROVED;
}

static void
on_bill_pay(struct svc_pos *s, struct svc_pos_session *ss,
            const struct pos_frame *f, const struct pos_msg *m,
            int64_t now_ms, struct svc_pos_out *out)
{
	const struct pos_bill_pay *bp = &m->u.bill_pay;
	struct svc_pos_op *op;
	const char *why = "request";
	enum pos_code code;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, SVC_POS_OP_BILL, f->hdr.type, f->hdr.req_id);
	memcpy(op->txn_id, bp->txn_id, POS_ID_LEN);
	op->amount = bp->amount;
	op->currency = (uint16_t)bp->currency;
	code = bill_codes(&op->bill, &bp->biller, &bp->account);
	if (code == POS_CODE_APPROVED)
		code = bill_money_code(bp->amount, bp->currency);
	if (code == POS_CODE_APPROVED && op->bill.biller_code[0] == '\0') {
		/* an item code alone: its biller first (bill_resolved) */
		strlcpy_s(op->terminal_id, ss->terminal_id,
		          sizeof op->terminal_id);
		op->kind = SVC_POS_OP_BILL_RESOLVE;
		ss->n_inflight++;
		out->post = op; /* no job.call: the caller resolves */
		return;
	}
	if (code == POS_CODE_APPROVED)
		code = bill_start(s, ss, op, false, now_ms, &why);
	if (code != POS_CODE_APPROVED) {
		bill_answer(ss, op, out, code, -1, why);
		svc_pos_op_free(op);
		return;
	}
	ss->n_inflight++;
	out->post = op;
}

static enum store_rc
bill_decline_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	return st->ops->prov_update(st, &op->upd, op->svc->clock_ms());
}

static void
bill_done(struct svc_pos *s, struct svc_pos_session *ss,
          struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	uint8_t want[SHA256_LEN];
	enum pos_code code;
	const char *why;
	int orig;

	bill_hash(want, op->amount, op->currency, &op->bill);
	if (pre_answer(op, &code, &orig, &why)) {
		bill_answer(ss, op, out, code, orig, why);
	} else if (op->pay_rc == STORE_CONFLICT &&
	           (op->prov->kind != STORE_PROV_BILL ||
	            util_ct_memcmp(want, op->prov->req_hash, sizeof want) !=
	                0)) {
		bill_answer(ss, op, out, POS_CODE_TXN_ID_REUSED, -1,
		            "other_content");
	} else if (op->prov->pay.state == PAY_CREATED &&
	           op->prov->call_state == STORE_CALL_TO_SEND) {
		/* new, or a repeat of one whose funding was never decided:
		 * fund it now from the float; the ledger's key makes a
		 * second funding impossible (docs/payments.md §8) */
		svc_bill_fund_req(op->prov, now_ms, &op->upd, &op->job.req);
		pos_limited(&op->job.req, ss, op->prov->pay.amount_minor);
		op->kind = SVC_POS_OP_BILL_FUND;
		op->job.call = NULL;
		out->post = op;
		return;
	} else {
		bill_answer(ss, op, out, POS_CODE_DUPLICATE,
		            (int)svc_pos_pay_code(op->prov), "repeat");
	}
	bill_end(s, ss, op, now_ms, out);
}

static void
bill_fund_done(struct svc_pos *s, struct svc_pos_session *ss,
               struct svc_pos_op *op, int64_t now_ms,
               struct svc_pos_out *out)
{
	enum ledger_rc rc = op->job.res.rc;

	if (rc == LEDGER_OK) {
		op->prov->pay.state = PAY_PENDING;
		op->prov->pay.txn_id = op->job.res.txn_id;
		s->pay->kick(s->pay->arg);
		if (op->parent == NULL && s->bill_wait_ms > 0) {
			/* the token within a bounded wait (§12): the caller
			 * brings the payment back final, or as it is */
			op->kind = SVC_POS_OP_BILL_WAIT;
			op->job.call = NULL;
			out->post = op;
			return;
		}
		bill_answer(ss, op, out, POS_CODE_PENDING, -1, "funded");
	} else if (rc == LEDGER_RETRY) {
		bill_answer(ss, op, out, POS_CODE_RETRY_LATER, -1, "ledger");
	} else {
		/* declined (float too low, a limit, closed): the bill fails,
		 * nothing was sent or moved; recorded, then answered */
		svc_bill_fund_declined(op->prov, rc, &op->upd);
		op->fund_rc = rc;
		op->kind = SVC_POS_OP_BILL_DECLINE;
		op->job.call = bill_decline_call;
		out->post = op;
		return;
	}
	bill_end(s, ss, op, now_ms, out);
}

static void
bill_decline_done(struct svc_pos *s, struct svc_pos_session *ss,
                  struct svc_pos_op *op, int64_t now_ms,
                  struct svc_pos_out *out)
{
	/* an update that did not land leaves the bill unfunded: its
	 * deadline fails it, and nothing moved either way */
	bill_answer(ss, op, out, svc_pos_code(op->fund_rc), -1,
	            ledger_rc_name(op->fund_rc));
	bill_end(s, ss, op, now_ms, out);
}

/* The biller of a BILL_PAY's item code alone is known (or not): the bill
 * goes on as one named in full, or is refused (UNKNOWN_BILLER: no biller
 * or two list the item; RETRY_LATER: the categories could not be had). */
static void
bill_resolved(struct svc_pos *s, struct svc_pos_session *ss,
              struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	enum pos_code code = svc_pos_bill_check_code(op->check.outcome);
	const char *why = "categories";

	if (code == POS_CODE_APPROVED && op->bill.biller_code[0] == '\0')
		code = POS_CODE_UNKNOWN_BILLER;
	if (code == POS_CODE_APPROVED) {
		op->kind = SVC_POS_OP_BILL;
		code = bill_start(s, ss, op, op->parent != NULL, now_ms, &why);
		if (code == POS_CODE_APPROVED) {
			out->post = op;
			return;
		}
	}
	bill_answer(ss, op, out, code, -1, why);
	bill_end(s, ss, op, now_ms, out);
}

/* The wait for a funded bill's outcome is over: APPROVED with the token,
 * a failure's code (the float refunded in its commit), or PENDING (not
 * final yet: STATUS tells). */
static void
bill_wait_done(struct svc_pos *s, struct svc_pos_session *ss,
               struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	enum pos_code code = svc_pos_pay_code(op->prov);

	bill_answer(ss, op, out, code, -1,
	            code == POS_CODE_PENDING ? "wait_over" : "final");
	bill_end(s, ss, op, now_ms, out);
}

/* -------------------------------------------- COLLECT_RESULT delivery */

/*
 * The result buffers (16 payments, ~30 KB) are taken here, on the
 * storage worker, and kept only when something is to be pushed: every
 * login asks, few have anything, and 10,000 terminals logging in at once
 * must not hold 10,000 such buffers while their jobs queue (the idle
 * connection budget, docs/benchmarks.md).
 */
static enum store_rc
results_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	enum store_rc rc;

	op->n_results = 0;
	op->results = calloc(SVC_POS_RESULTS_MAX, sizeof *op->results);
	op->links = calloc(SVC_POS_RESULTS_MAX, sizeof *op->links);
	if (op->results == NULL || op->links == NULL) {
		rc = STORE_RETRY;
	} else {
		rc = st->ops->pos_pay_results(st, op->terminal_id, op->results,
		                              op->links, SVC_POS_RESULTS_MAX,
		                              &op->n_results);
		if (rc == STORE_OK && op->n_results > 0)
			return rc;
	}
	free(op->results);
	free(op->links);
	op->results = NULL;
	op->links = NULL;
	op->n_results = 0;
	return rc;
}

void
svc_pos_results(struct svc_pos *s, struct svc_pos_session *ss,
                struct svc_pos_out *out)
{
	struct svc_pos_op *op;

	if (s->pay == NULL || ss->state != SVC_POS_LOGGED_IN ||
	    out->post != NULL)
		return;
	if (ss->is_results_pending) {
		ss->is_results_again = true;
		return;
	}
	op = op_new(s, SVC_POS_OP_RESULTS, 0, 0);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	op->job.call = results_call;
	ss->is_results_pending = true;
	ss->is_results_again = false;
	out->post = op;
}

/* Pushes one COLLECT_RESULT after what out->buf holds already. */
static void
push_result(struct svc_pos_session *ss, struct svc_pos_out *out,
            const struct store_prov *p, const struct store_pos_link *l)
{
	struct svc_pos_out one = *out;
	struct pos_msg m;
	struct result x;

	result_init(&x, POS_CODE_PENDING, l->txn_id);
	pay_result(&x, p, l->type);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_COLLECT_RESULT;
	FILL_RESULT(&m.u.collect_result, &x);
	/* a bill's receipt is its token (key 9, as BILL_PAY_RESP's 8) */
	set_text(&m.u.collect_result.token, &m.u.collect_result.has_token,
	         x.token);
	/* key 8 is at most 32 bytes: a longer receipt is left out */
	if (x.token == NULL && p->receipt[0] != '\0' &&
	    strlen(p->receipt) <= 32)
		set_text(&m.u.collect_result.provider_ref,
		         &m.u.collect_result.has_provider_ref, p->receipt);
	one.buf = out->buf + out->len;
	one.cap = out->cap - out->len;
	one.len = 0;
	send_msg(ss, &one, &m, 0, MAC_KS, NULL);
	out->len += one.len;
	out->n_pushes += one.len > 0;
	out->is_close |= one.is_close;
}

static void
results_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, struct svc_pos_out *out)
{
	size_t i;

	ss->is_results_pending = false;
	if (op->job.call_rc != STORE_OK) {
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=results_failed terminal=%s rc=%d "
		        "(pushed at the next login or completion)",
		        ss->terminal_id, (int)op->job.call_rc);
	} else {
		for (i = 0; i < op->n_results && !out->is_close; i++) {
			push_result(ss, out, &op->results[i], &op->links[i]);
			log_msg(LOG_POS, LOG_LEVEL_INFO,
			        "event=collect_result terminal=%s ref=%s "
			        "code=%s",
			        ss->terminal_id, op->results[i].pay.ref,
			        pos_code_name(
			                svc_pos_pay_code(&op->results[i])));
		}
		ss->is_results_full = op->n_results == SVC_POS_RESULTS_MAX;
	}
	svc_pos_op_free(op);
	if (ss->is_results_again)
		svc_pos_results(s, ss, out);
}

static enum store_rc
ack_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	return st->ops->pos_pay_ack(st, op->terminal_id, op->txn_id,
	                            op->svc->clock_ms());
}

/* COLLECT_RESULT_ACK: recorded, never answered (§6.6); one that cannot
 * be recorded now leaves the result to be pushed again. */
static void
on_ack(struct svc_pos *s, struct svc_pos_session *ss, const struct pos_msg *m,
       struct svc_pos_out *out)
{
	struct svc_pos_op *op;

	if (s->pay == NULL)
		return;
	op = op_new(s, SVC_POS_OP_ACK, POS_MSG_COLLECT_RESULT_ACK, 0);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	memcpy(op->txn_id, m->u.collect_result_ack.txn_id, POS_ID_LEN);
	op->job.call = ack_call;
	out->post = op;
}

static void
ack_done(struct svc_pos *s, struct svc_pos_session *ss, struct svc_pos_op *op,
         struct svc_pos_out *out)
{
	if (op->job.call_rc != STORE_OK)
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=ack_failed terminal=%s rc=%d (pushed again)",
		        ss->terminal_id, (int)op->job.call_rc);
	svc_pos_op_free(op);
	/* a full round may have left results behind: the next ones */
	if (ss->is_results_full) {
		ss->is_results_full = false;
		svc_pos_results(s, ss, out);
	}
}

static int
total_cmp(const void *pa, const void *pb)
{
	const struct store_pos_total *a = pa, *b = pb;

	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if (a->currency != b->currency)
		return a->currency < b->currency ? -1 : 1;
	return 0;
}

static void
on_eod(struct svc_pos *s, struct svc_pos_session *ss, const struct pos_frame *f,
       const struct pos_msg *m, struct svc_pos_out *out)
{
	const struct pos_eod_totals *e = &m->u.eod_totals;
	struct svc_pos_op *op;
	size_t i;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, SVC_POS_OP_EOD, f->hdr.type, f->hdr.req_id);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	op->batch_no = (int64_t)e->batch_no;
	for (i = 0; i < e->n_totals && i < POS_TOTALS_MAX; i++) {
		struct store_pos_total *t;

		if (e->totals[i].count == 0)
			continue; /* an empty line says nothing */
		t = &op->term_totals[op->n_term_totals++];
		t->type = (uint16_t)e->totals[i].type;
		t->currency = (uint16_t)e->totals[i].currency;
		t->count = (int64_t)e->totals[i].count;
		t->sum_minor = (int64_t)e->totals[i].sum;
	}
	qsort(op->term_totals, op->n_term_totals, sizeof *op->term_totals,
	      total_cmp);
	op->job.call = eod_call;
	ss->n_inflight++;
	out->post = op;
}

/*
 * ADVICE_BATCH (§6.15, §9.4).  Items that need no storage are decided
 * here: a type that may not be advised (CASH_OUT, CASH_IN, COLLECT) gets
 * DECLINED; a BILL_PAY whose request is wrong its code, a good one waits
 * for the FLOAT_TRANSFER items (advice_next); without the payment
 * service (no provider layer) a BILL_PAY gets RETRY_LATER, so the
 * terminal keeps it and nothing is lost.
 */
/*
 * The advice items still undecided all go to agents the loop thread knows
 * as active (the agent cache, as for FLOAT_TRANSFER): they become the
 * ledger children at once, one group, one commit, without the lookup
 * call first.  An item the ledger has seen before (a resend) is looked up
 * then and answered from its row (advice_item_done).  false (nothing
 * posted) if any undecided item is not in the cache, or none is left.
 */
static bool
advice_fast(struct svc_pos *s, struct svc_pos_session *ss,
            struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	int64_t to_float[POS_BATCH_MAX];
	size_t i, n = 0;

	if (op->n_items > POS_BATCH_MAX)
		return false;
	for (i = 0; i < op->n_items; i++) {
		const struct svc_pos_advice *a = &op->items[i];

		if (a->is_decided)
			continue;
		to_float[i] = agent_cached(s, a->to_agent, now_ms);
		if (to_float[i] == 0 || to_float[i] == ss->float_account_id)
			return false;
		n++;
	}
	if (n == 0)
		return false;
	for (i = 0; i < op->n_items; i++) {
		struct svc_pos_advice *a = &op->items[i];
		struct svc_pos_op *c;

		if (a->is_decided)
			continue;
		c = op_new(s, SVC_POS_OP_ADVICE_ITEM, op->type, op->req_id);
		strlcpy_s(c->terminal_id, ss->terminal_id,
		          sizeof c->terminal_id);
		memcpy(c->txn_id, a->txn_id, POS_ID_LEN);
		c->parent = op;
		c->idx = i;
		xfer_req(ss, c, a->txn_id, a->amount, a->currency, a->to_agent,
		         to_float[i], true, a->local_time_ms);
		c->is_fast = true;
		out->group[out->n_group++] = c;
	}
	op->n_children = out->n_group;
	return true;
}

/* An advised BILL_PAY's request: APPROVED (it can go), its code, or
 * RETRY_LATER without the payment service (kept queued); bills not
 * configured are bill_prep's UNKNOWN_BILLER, as online. */
static enum pos_code
advice_bill_code(const struct svc_pos *s, struct svc_pos_advice *a,
                 const struct pos_advice *in)
{
	enum pos_code code;

	if (s->pay == NULL || s->pay->bill_prep == NULL)
		return POS_CODE_RETRY_LATER;
	if (!in->has_biller || in->biller.len == 0)
		return POS_CODE_UNKNOWN_BILLER;
	if (!in->has_account)
		return POS_CODE_INVALID_ACCOUNT;
	code = bill_codes(&a->bill, &in->biller, &in->account);
	if (code == POS_CODE_APPROVED)
		code = bill_money_code(in->amount, in->currency);
	return code;
}

static void
on_advice(struct svc_pos *s, struct svc_pos_session *ss,
          const struct pos_frame *f, const struct pos_msg *m, int64_t now_ms,
          struct svc_pos_out *out)
{
	const struct pos_advice_batch *b = &m->u.advice_batch;
	struct svc_pos_op *op;
	size_t i;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, SVC_POS_OP_ADVICE, f->hdr.type, f->hdr.req_id);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	op->n_items = b->n_items;
	op->items = xcalloc(b->n_items ? b->n_items : 1, sizeof *op->items);
	for (i = 0; i < b->n_items; i++) {
		const struct pos_advice *in = &b->items[i];
		struct svc_pos_advice *a = &op->items[i];

		memcpy(a->txn_id, in->txn_id, POS_ID_LEN);
		a->type = (uint16_t)in->type;
		a->amount = in->amount;
		a->currency = (uint16_t)in->currency;
		a->local_time_ms = (int64_t)in->local_time_ms;
		a->orig_code = -1;
		a->is_decided = true;
		switch (in->type) {
		case POS_MSG_FLOAT_TRANSFER:
			if (in->amount == 0)
				a->code = POS_CODE_AMOUNT_INVALID;
			else if (!in->has_to_agent ||
			         !copy_id(a->to_agent, &in->to_agent))
				a->code = POS_CODE_UNKNOWN_AGENT;
			else
				a->is_decided = false;
			break;
		case POS_MSG_BILL_PAY:
			/* a bill paid in cash offline (§6.15): processed
			 * as an online BILL_PAY (advice_next) */
			a->code = advice_bill_code(s, a, in);
			a->is_bill = a->code == POS_CODE_APPROVED;
			if (a->is_bill)
				a->code = POS_CODE_RETRY_LATER; /* until then */
			break;
		case POS_MSG_CASH_OUT:
			/* never valid offline: the agent pays the cash only
			 * after the wallet debit is APPROVED (§6.8), which
			 * needs the customer's approval now */
			a->code = POS_CODE_DECLINED;
			break;
		case POS_MSG_CASH_IN:
			/* never valid offline either: the customer's wallet
			 * is credited by the provider's transfer, which may
			 * fail (a wrong MSISDN, a wallet limit) long after
			 * the agent took the cash and let the customer go;
			 * only an online PENDING/APPROVED tells the agent
			 * the money will arrive (§6.7, §6.15) */
			a->code = POS_CODE_DECLINED;
			break;
		default:
			a->code = POS_CODE_DECLINED;
			break;
		}
	}
	ss->n_inflight++;
	if (advice_fast(s, ss, op, now_ms, out))
		return;
	for (i = 0; i < op->n_items && op->items[i].is_decided; i++)
		;
	if (i == op->n_items) {
		/* no FLOAT_TRANSFER to look up: the bills, if any */
		advice_next(s, ss, op, now_ms, out);
		if (op->n_children == 0)
			svc_pos_op_free(op);
		return;
	}
	op->job.call = advice_call;
	out->post = op;
}

void
svc_pos_frame(struct svc_pos *s, struct svc_pos_session *ss,
              const struct pos_frame *f, int64_t now_ms,
              struct svc_pos_out *out)
{
	struct pos_msg m;
	const char *why = "";
	enum pos_code rc;

	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	switch (ss->state) {
	case SVC_POS_CONNECTED:
		if (f->hdr.type == POS_MSG_LOGIN && !ss->is_login_pending) {
			on_login(s, ss, f, out);
			return;
		}
		log_msg(LOG_POS, LOG_LEVEL_NOTICE,
		        "event=refused peer=%s type=%s req_id=%u "
		        "code=not_logged_in",
		        ss->peer, pos_msg_name(f->hdr.type),
		        (unsigned)f->hdr.req_id);
		send_error(ss, out, f->hdr.type, f->hdr.req_id,
		           POS_CODE_NOT_LOGGED_IN, MAC_ZERO, NULL);
		close_after(ss, out);
		return;
	case SVC_POS_LOGGED_IN:
		break;
	case SVC_POS_CLOSING:
	case SVC_POS_STATE_COUNT:
		return; /* ignore input (§3.1) */
	}

	rc = pos_frame_open(&m, f, ss->ks, POS_T2S, &ss->last_rx, &why);
	if (rc == POS_CODE_BAD_MAC || rc == POS_CODE_BAD_COUNTER) {
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=refused peer=%s terminal=%s type=%s req_id=%u "
		        "code=%s why=\"%s\"",
		        ss->peer, ss->terminal_id, pos_msg_name(f->hdr.type),
		        (unsigned)f->hdr.req_id, pos_code_name(rc), why);
		send_error(ss, out, f->hdr.type, f->hdr.req_id, rc, MAC_KS,
		           NULL);
		close_after(ss, out);
		return;
	}
	if (rc != POS_CODE_APPROVED) {
		log_msg(LOG_POS, LOG_LEVEL_NOTICE,
		        "event=refused peer=%s terminal=%s type=%s req_id=%u "
		        "code=%s why=\"%s\"",
		        ss->peer, ss->terminal_id, pos_msg_name(f->hdr.type),
		        (unsigned)f->hdr.req_id, pos_code_name(rc), why);
		send_error(ss, out, f->hdr.type, f->hdr.req_id, rc, MAC_KS,
		           NULL);
		return;
	}
	switch (f->hdr.type) {
	case POS_MSG_ECHO: {
		struct pos_msg r;

		memset(&r, 0, sizeof r);
		r.type = POS_MSG_ECHO_RESP;
		r.u.echo_resp.time_ms = (uint64_t)now_ms;
		send_msg(ss, out, &r, f->hdr.req_id, MAC_KS, NULL);
		return;
	}
	case POS_MSG_FLOAT_TRANSFER:
		on_float_transfer(s, ss, f, &m, now_ms, out);
		inflight_list(s, ss, out->post);
		return;
	case POS_MSG_STATUS:
		on_lookup(s, ss, f, SVC_POS_OP_STATUS, m.u.status.txn_id, out);
		return;
	case POS_MSG_REVERSAL:
		on_lookup(s, ss, f, SVC_POS_OP_REV_LOOKUP, m.u.reversal.txn_id,
		          out);
		return;
	case POS_MSG_RECEIPT:
		on_lookup(s, ss, f, SVC_POS_OP_RECEIPT, m.u.receipt.txn_id,
		          out);
		return;
	case POS_MSG_EOD_TOTALS:
		on_eod(s, ss, f, &m, out);
		return;
	case POS_MSG_ADVICE_BATCH:
		on_advice(s, ss, f, &m, now_ms, out);
		return;
	case POS_MSG_COLLECT:
	case POS_MSG_CASH_OUT:
	case POS_MSG_CASH_IN:
		if (s->pay == NULL ||
		    (f->hdr.type == POS_MSG_CASH_IN && s->pay->disb_prep == NULL))
			break;
		on_collect(s, ss, f, &m, now_ms, out);
		inflight_list(s, ss, out->post);
		return;
	case POS_MSG_BILL_VALIDATE:
		if (s->pay == NULL || s->pay->bill_prep == NULL)
			break;
		on_bill_validate(s, ss, f, &m, out);
		return;
	case POS_MSG_BILL_PAY:
		if (s->pay == NULL || s->pay->bill_prep == NULL)
			break;
		on_bill_pay(s, ss, f, &m, now_ms, out);
		inflight_list(s, ss, out->post);
		return;
	case POS_MSG_COLLECT_RESULT_ACK:
		on_ack(s, ss, &m, out); /* an ack needs no answer */
		return;
	default:
		break;
	}
	/* known to the catalogue, not served (yet, or without the payment
	 * service; docs/pos-protocol.md §12): nothing was processed, the
	 * terminal may retry later */
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=refused peer=%s terminal=%s type=%s req_id=%u "
	        "code=unsupported_type why=\"not served\"",
	        ss->peer, ss->terminal_id, pos_msg_name(f->hdr.type),
	        (unsigned)f->hdr.req_id);
	send_error(ss, out, f->hdr.type, f->hdr.req_id,
	           POS_CODE_UNSUPPORTED_TYPE, MAC_KS, NULL);
}

void
svc_pos_refused(struct svc_pos *s, struct svc_pos_session *ss,
                const struct pos_frame *f, const char *why,
                struct svc_pos_out *out)
{
	bool is_in = ss->state == SVC_POS_LOGGED_IN;

	(void)s;
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	if (ss->state == SVC_POS_CLOSING)
		return;
	log_msg(LOG_POS, LOG_LEVEL_NOTICE,
	        "event=refused peer=%s terminal=%s code=%s why=\"%s\"",
	        ss->peer, is_in ? ss->terminal_id : "-",
	        pos_code_name(f->refusal), why);
	send_error(ss, out, 0, 0, f->refusal, is_in ? MAC_KS : MAC_ZERO, NULL);
	close_after(ss, out);
}

/* --------------------------------------------------------- completions */

static void
login_done(struct svc_pos *s, struct svc_pos_session *ss, struct svc_pos_op *op,
           int64_t now_ms, struct svc_pos_out *out)
{
	uint8_t kt[POS_KEY_LEN], sn[POS_NONCE_LEN];
	struct pos_frame f;
	struct pos_msg m;
	const char *reason = NULL;

	if (op->is_rpc) {
		rpc_login_done(s, ss, op, out);
		explicit_bzero(&op->term, sizeof op->term);
		svc_pos_op_free(op);
		return;
	}
	ss->is_login_pending = false;
	if (op->job.call_rc == STORE_NOT_FOUND) {
		reason = "unknown_terminal";
	} else if (op->job.call_rc != STORE_OK) {
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=login_fail peer=%s terminal=%s reason=store "
		        "code=busy",
		        ss->peer, op->terminal_id);
		send_error(ss, out, POS_MSG_LOGIN, op->req_id, POS_CODE_BUSY,
		           MAC_ZERO, NULL);
		close_after(ss, out);
		return;
	} else if (keywrap_unwrap(kt, s->kek, op->term.key_wrapped,
	                          op->term.id) != 0) {
		/* wrong pos_kek_file or a damaged row: the operator's
		 * problem; the terminal sees the same as an unknown one */
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=key_unwrap_failed terminal=%s "
		        "hint=\"pos_kek_file differs from the one used at "
		        "provisioning?\"",
		        op->terminal_id);
		reason = "key_unwrap";
	} else {
		memset(&f, 0, sizeof f);
		f.auth = op->login_auth;
		f.auth_len = op->login_auth_len;
		f.mac = op->login_mac;
		if (!pos_frame_verify(&f, kt))
			reason = "bad_mac";
	}
	if (reason != NULL) {
		log_msg(LOG_POS, LOG_LEVEL_NOTICE,
		        "event=login_fail peer=%s terminal=%s reason=%s "
		        "code=auth_failed",
		        ss->peer, op->terminal_id, reason);
		send_error(ss, out, POS_MSG_LOGIN, op->req_id,
		           POS_CODE_AUTH_FAILED, MAC_ZERO, NULL);
		close_after(ss, out);
		goto out;
	}
	if (op->term.status != STORE_POS_ACTIVE ||
	    op->term.agent.status != STORE_POS_ACTIVE) {
		log_msg(LOG_POS, LOG_LEVEL_NOTICE,
		        "event=login_fail peer=%s terminal=%s reason=%s "
		        "code=blocked",
		        ss->peer, op->terminal_id,
		        op->term.status != STORE_POS_ACTIVE ? "terminal_blocked"
		                                            : "agent_blocked");
		send_error(ss, out, POS_MSG_LOGIN, op->req_id, POS_CODE_BLOCKED,
		           MAC_KT, kt);
		close_after(ss, out);
		goto out;
	}
	if (s->rand_bytes(sn, sizeof sn) != 1) {
		log_msg(LOG_POS, LOG_LEVEL_ERROR,
		        "event=login_fail peer=%s terminal=%s reason=rng",
		        ss->peer, op->terminal_id);
		send_error(ss, out, POS_MSG_LOGIN, op->req_id, POS_CODE_BUSY,
		           MAC_ZERO, NULL);
		close_after(ss, out);
		goto out;
	}
	pos_session_key(ss->ks, kt, (const uint8_t *)op->terminal_id,
	                strlen(op->terminal_id), op->client_nonce, sn);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_LOGIN_OK;
	memcpy(m.u.login_ok.server_nonce, sn, POS_NONCE_LEN);
	memcpy(m.u.login_ok.client_nonce, op->client_nonce, POS_NONCE_LEN);
	m.u.login_ok.time_ms = (uint64_t)now_ms;
	m.u.login_ok.session_id = ss->session_id;
	m.u.login_ok.max_frame = POS_FRAME_MAX;
	m.u.login_ok.heartbeat_s = s->heartbeat_s;
	m.u.login_ok.max_inflight = s->max_inflight;
	send_msg(ss, out, &m, op->req_id, MAC_KT, kt);
	if (out->len == 0)
		goto out;
	session_open(ss, op);
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=login peer=%s terminal=%s agent=%s session=%llu",
	        ss->peer, ss->terminal_id, ss->agent_code,
	        (unsigned long long)ss->session_id);
	/* results not acknowledged before: redelivered now (§6.6) */
	svc_pos_results(s, ss, out);
out:
	explicit_bzero(kt, sizeof kt);
	svc_pos_op_free(op);
}

/* to_agent resolved (or the txn_id's row found): build the ledger
 * request, or answer now. */
static void
resolve_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	enum pos_code code = POS_CODE_APPROVED;
	const char *text = NULL;
	int orig = -1;

	if (op->job.call_rc == STORE_OK && op->found_rc == STORE_OK) {
		code =
		    repeat_code(&op->found, POS_MSG_FLOAT_TRANSFER, op->amount,
		                op->currency, op->to_agent, &orig);
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=float_transfer peer=%s terminal=%s req_id=%u "
		        "to_agent=%s code=%s orig=%s txn=%lld",
		        ss->peer, ss->terminal_id, (unsigned)op->req_id,
		        op->to_agent, pos_code_name(code),
		        orig >= 0 ? pos_code_name((unsigned)orig) : "-",
		        (long long)op->found.ledger_txn_id);
		send_xfer(ss, out, op->req_id, code, op->txn_id,
		          code == POS_CODE_DUPLICATE ? op->found.ledger_txn_id
		                                     : 0,
		          code == POS_CODE_DUPLICATE ? op->found.created_ms : 0,
		          orig, NULL);
		ss->n_inflight--;
		svc_pos_op_free(op);
		return;
	}
	if (op->job.call_rc == STORE_NOT_FOUND ||
	    (op->job.call_rc == STORE_OK &&
	     op->agent.status != STORE_POS_ACTIVE))
		code = POS_CODE_UNKNOWN_AGENT;
	else if (op->job.call_rc != STORE_OK)
		code = POS_CODE_RETRY_LATER;
	else if (op->agent.float_account_id == ss->float_account_id) {
		code = POS_CODE_DECLINED;
		text = "cannot transfer to own float";
	}
	if (code != POS_CODE_APPROVED) {
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=float_transfer peer=%s terminal=%s req_id=%u "
		        "to_agent=%s code=%s",
		        ss->peer, ss->terminal_id, (unsigned)op->req_id,
		        op->to_agent, pos_code_name(code));
		send_xfer(ss, out, op->req_id, code, op->txn_id, 0, 0, -1,
		          text);
		ss->n_inflight--;
		svc_pos_op_free(op);
		return;
	}
	agent_remember(s, op->to_agent, op->agent.float_account_id, now_ms);
	xfer_req(ss, op, op->txn_id, op->amount, op->currency, op->to_agent,
	         op->agent.float_account_id, false, 0);
	op->kind = SVC_POS_OP_XFER;
	out->post = op;
}

static void
xfer_done(struct svc_pos_session *ss, struct svc_pos_op *op,
          struct svc_pos_out *out)
{
	const struct ledger_result *res = &op->job.res;
	enum pos_code code = svc_pos_code(res->rc);
	int orig = -1;

	if ((res->rc == LEDGER_IDEM_MISMATCH ||
	     (op->is_fast && res->is_replay)) &&
	    op->n_retry == 0) {
		/* (from the agent cache: a repeat is answered from its row,
		 * as if it had been resolved first) */
		/* the key was taken after our lookup (a tombstone of a
		 * REVERSAL that overtook this request, or another resend):
		 * look again and answer from the row */
		op->n_retry++;
		op->kind = SVC_POS_OP_XFER_RESOLVE;
		op->job.call = resolve_call;
		out->post = op;
		return;
	}
	if (res->is_replay && res->rc != LEDGER_IDEM_MISMATCH) {
		orig = (int)code;
		code = POS_CODE_DUPLICATE;
	}
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=float_transfer peer=%s terminal=%s req_id=%u "
	        "to_agent=%s amount=%llu currency=%u code=%s orig=%s txn=%lld",
	        ss->peer, ss->terminal_id, (unsigned)op->req_id, op->to_agent,
	        (unsigned long long)op->amount, (unsigned)op->currency,
	        pos_code_name(code),
	        orig >= 0 ? pos_code_name((unsigned)orig) : "-",
	        (long long)res->txn_id);
	send_xfer(ss, out, op->req_id, code, op->txn_id, res->txn_id,
	          res->rc == LEDGER_RETRY ? 0 : res->created_ms, orig,
	          ledger_rc_name(res->rc));
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/* The result of a found row: its state, ref, time and details. */
static void
row_result(struct result *x, const struct store_pos_txn *r)
{
	x->code = row_state(r);
	if (r->ledger_txn_id > 0)
		snprintf(x->ref, sizeof x->ref, "FT-%lld",
		         (long long)r->ledger_txn_id);
	x->time_ms = r->reversed_by != 0 && r->reversed_ms > 0 ? r->reversed_ms
	                                                       : r->created_ms;
	if (r->type != 0) {
		x->has_detail = true;
		x->type = r->type;
		x->amount = (uint64_t)r->amount_minor;
		x->currency = r->currency;
	}
}

/* A lookup's answer when nothing was found: UNKNOWN_TXN, unless a
 * request of several steps with that id is still on its way here
 * (RETRY_LATER: its row is not written yet). */
static enum pos_code
not_found_code(const struct svc_pos *s, const struct svc_pos_session *ss,
               const struct svc_pos_op *op)
{
	return inflight_has(s, ss->terminal_id, op->txn_id)
	           ? POS_CODE_RETRY_LATER
	           : POS_CODE_UNKNOWN_TXN;
}

static void
status_done(const struct svc_pos *s, struct svc_pos_session *ss,
            struct svc_pos_op *op, struct svc_pos_out *out)
{
	struct result x;

	result_init(&x, not_found_code(s, ss, op), op->txn_id);
	if (op->job.call_rc != STORE_OK)
		x.code = POS_CODE_RETRY_LATER;
	else if (op->found_rc == STORE_OK && op->link.type != 0)
		link_result(&x, op->prov, &op->link);
	else if (op->found_rc == STORE_OK)
		row_result(&x, &op->found);
	send_result(ss, out, POS_MSG_STATUS_RESP, op->req_id, &x);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/* "2025-01-01 00:00:00 UTC" */
static void
fmt_time(char *dst, size_t cap, int64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(dst, cap, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(dst, cap, "%lld ms", (long long)ms);
}

/* The receipt lines (§6.14) of a found row, for a reprint. */
static void
receipt_lines(char *dst, size_t cap, const char *terminal_id,
              const struct store_pos_txn *r, const struct result *x)
{
	const struct currency *cur = money_currency_by_numeric(r->currency);
	char amt[40] = "?", when[40];

	if (cur != NULL)
		money_format(amt, sizeof amt, cur, r->amount_minor);
	fmt_time(when, sizeof when, r->created_ms);
	snprintf(dst, cap,
	         "*** REPRINT ***\nTerminal: %s\n%s\nTo agent: %s\n"
	         "Amount: %s %s\nRef: %s\nTime: %s\nStatus: %s",
	         terminal_id,
	         r->type == POS_MSG_FLOAT_TRANSFER ? "FLOAT TRANSFER"
	                                           : pos_msg_name(r->type),
	         r->counterparty[0] ? r->counterparty : "-",
	         cur != NULL ? cur->alpha : "", amt, x->ref[0] ? x->ref : "-",
	         when, pos_code_name(x->code));
}

static void
receipt_done(const struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, struct svc_pos_out *out)
{
	char lines[512], masked[48];
	struct result x;

	result_init(&x, not_found_code(s, ss, op), op->txn_id);
	if (op->job.call_rc != STORE_OK) {
		x.code = POS_CODE_RETRY_LATER;
	} else if (op->found_rc == STORE_OK && op->link.type != 0) {
		link_result(&x, op->prov, &op->link);
		x.counterparty = masked;
		pay_receipt(lines, sizeof lines, masked, sizeof masked,
		            ss->terminal_id, op->prov, &x);
		x.lines = lines;
	} else if (op->found_rc == STORE_OK) {
		row_result(&x, &op->found);
		if (op->found.type != 0) {
			x.counterparty = op->found.counterparty;
			receipt_lines(lines, sizeof lines, ss->terminal_id,
			              &op->found, &x);
			x.lines = lines;
		}
	}
	send_result(ss, out, POS_MSG_RECEIPT_RESP, op->req_id, &x);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

static void
reversal_answer(struct svc_pos_session *ss, struct svc_pos_op *op,
                struct svc_pos_out *out, enum pos_code code, int64_t rev_txn,
                int64_t time_ms, const char *why)
{
	struct result x;

	result_init(&x, code, op->txn_id);
	if (rev_txn > 0)
		snprintf(x.ref, sizeof x.ref, "RV-%lld", (long long)rev_txn);
	x.time_ms = time_ms;
	result_reason(&x, why);
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=reversal peer=%s terminal=%s req_id=%u code=%s "
	        "why=%s txn=%lld",
	        ss->peer, ss->terminal_id, (unsigned)op->req_id,
	        pos_code_name(code), why, (long long)rev_txn);
	send_result(ss, out, POS_MSG_REVERSAL_RESP, op->req_id, &x);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/*
 * REVERSAL's target looked up (§9.3): answer now (already void, nothing
 * to void, not reversible), or post the ledger's reversal of the original
 * (own key "<key>:rev", no limits: a void must always be possible and it
 * gives nothing new), or, for a txn_id never seen, a tombstone under the
 * original's own key: a REVERSAL of nothing, which the ledger decides
 * REVERSAL_UNKNOWN and stores, so the original's key is taken for good.
 */
static void
rev_lookup_done(struct svc_pos_session *ss, struct svc_pos_op *op,
                struct svc_pos_out *out)
{
	const struct store_pos_txn *f = &op->found;
	struct ledger_req *r = &op->job.req;

	if (op->job.call_rc != STORE_OK) {
		reversal_answer(ss, op, out, POS_CODE_RETRY_LATER, 0, 0,
		                "store");
		return;
	}
	if (op->found_rc == STORE_OK && op->link.type != 0) {
		/* a provider payment (§9.3, §12): one that failed moved
		 * nothing; any other may have reached the customer's
		 * wallet, and soko does not reverse it */
		if (op->prov->pay.state == PAY_FAILED)
			reversal_answer(ss, op, out, POS_CODE_APPROVED, 0,
			                op->prov->pay.updated_ms,
			                "original_failed");
		else
			reversal_answer(ss, op, out, POS_CODE_NOT_REVERSIBLE,
			                0, 0, "provider_payment");
		return;
	}
	memset(r, 0, sizeof *r);
	r->kind = LEDGER_TXN_REVERSAL;
	if (op->found_rc == STORE_NOT_FOUND) {
		struct store_pos_txn *row = &op->row;

		svc_pos_idem_key(r->idem_key, ss->terminal_id, op->txn_id);
		snprintf(r->memo, sizeof r->memo, "pos tombstone %s",
		         ss->terminal_id);
		ledger_req_hash(r);
		memset(row, 0, sizeof *row);
		strlcpy_s(row->terminal_id, ss->terminal_id,
		          sizeof row->terminal_id);
		memcpy(row->txn_id, op->txn_id, POS_ID_LEN);
		r->pos = row; /* type 0: the tombstone */
		op->is_tombstone = true;
	} else if (f->type == 0) {
		reversal_answer(ss, op, out, POS_CODE_APPROVED, 0,
		                f->created_ms, "tombstone_exists");
		return;
	} else if (f->reversed_by != 0) {
		reversal_answer(ss, op, out, POS_CODE_APPROVED, f->reversed_by,
		                f->reversed_ms, "already_reversed");
		return;
	} else if (f->rc != LEDGER_OK) {
		/* declined: it moved nothing and never will */
		reversal_answer(ss, op, out, POS_CODE_APPROVED, 0,
		                f->created_ms, "original_declined");
		return;
	} else if (f->type != POS_MSG_FLOAT_TRANSFER) {
		reversal_answer(ss, op, out, POS_CODE_NOT_REVERSIBLE, 0, 0,
		                "type");
		return;
	} else {
		size_t n;

		/* "pos:<32 hex>:<terminal>" is at most 69 bytes */
		svc_pos_idem_key(r->idem_key, ss->terminal_id, op->txn_id);
		n = strlen(r->idem_key);
		if (n + sizeof ":rev" > sizeof r->idem_key)
			abort(); /* impossible: ids are <= 32 bytes */
		memcpy(r->idem_key + n, ":rev", sizeof ":rev");
		r->reverses_txn_id = f->ledger_txn_id;
		snprintf(r->memo, sizeof r->memo, "pos reversal %s",
		         ss->terminal_id);
		ledger_req_hash(r);
		op->is_tombstone = false;
	}
	op->kind = SVC_POS_OP_REV;
	op->job.call = NULL;
	out->post = op;
}

static void
rev_done(struct svc_pos_session *ss, struct svc_pos_op *op,
         struct svc_pos_out *out)
{
	const struct ledger_result *res = &op->job.res;

	if (res->rc == LEDGER_RETRY) {
		reversal_answer(ss, op, out, POS_CODE_RETRY_LATER, 0, 0,
		                "commit");
		return;
	}
	if (op->is_tombstone) {
		if (res->rc == LEDGER_REVERSAL_UNKNOWN) {
			reversal_answer(
			    ss, op, out, POS_CODE_APPROVED, 0, res->created_ms,
			    res->is_replay ? "tombstone_exists" : "tombstone");
			return;
		}
		if (res->rc == LEDGER_IDEM_MISMATCH && op->n_retry < 2) {
			/* the original landed since the lookup: reverse it */
			op->n_retry++;
			op->kind = SVC_POS_OP_REV_LOOKUP;
			op->job.call = lookup_call;
			out->post = op;
			return;
		}
		reversal_answer(ss, op, out, POS_CODE_SYSTEM_ERROR, 0, 0,
		                ledger_rc_name(res->rc));
		return;
	}
	switch (res->rc) {
	case LEDGER_OK:
		reversal_answer(ss, op, out, POS_CODE_APPROVED, res->txn_id,
		                res->created_ms,
		                res->is_replay ? "repeat" : "reversed");
		return;
	case LEDGER_REVERSAL_TWICE: /* voided by someone else (API) */
		reversal_answer(ss, op, out, POS_CODE_APPROVED, 0, 0,
		                "already_reversed");
		return;
	case LEDGER_INSUFFICIENT_FUNDS: /* the receiver spent it */
	case LEDGER_ACCOUNT_CLOSED:
	case LEDGER_UNKNOWN_ACCOUNT:
	case LEDGER_CURRENCY_MISMATCH:
	case LEDGER_REVERSAL_OF_REVERSAL:
		reversal_answer(ss, op, out, POS_CODE_NOT_REVERSIBLE, 0, 0,
		                ledger_rc_name(res->rc));
		return;
	default:
		reversal_answer(ss, op, out, POS_CODE_SYSTEM_ERROR, 0, 0,
		                ledger_rc_name(res->rc));
		return;
	}
}

static void
eod_done(struct svc_pos_session *ss, struct svc_pos_op *op,
         struct svc_pos_out *out)
{
	struct pos_msg m;
	struct pos_eod_totals_resp *r = &m.u.eod_totals_resp;
	size_t i, n = MIN(op->n_totals, (size_t)POS_TOTALS_MAX);
	bool is_equal;

	if (op->job.call_rc != STORE_OK) {
		/* idempotent by batch_no: the terminal sends it again */
		send_error(ss, out, op->type, op->req_id, POS_CODE_RETRY_LATER,
		           MAC_KS, NULL);
		ss->n_inflight--;
		svc_pos_op_free(op);
		return;
	}
	is_equal = op->n_totals == op->n_term_totals;
	for (i = 0; is_equal && i < n; i++)
		is_equal =
		    total_cmp(&op->totals[i], &op->term_totals[i]) == 0 &&
		    op->totals[i].count == op->term_totals[i].count &&
		    op->totals[i].sum_minor == op->term_totals[i].sum_minor;
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_EOD_TOTALS_RESP;
	r->code = is_equal ? POS_CODE_APPROVED : POS_CODE_TOTALS_MISMATCH;
	r->batch_no = (uint64_t)op->batch_no;
	r->n_totals = n;
	for (i = 0; i < n; i++) {
		r->totals[i].type = op->totals[i].type;
		r->totals[i].currency = op->totals[i].currency;
		r->totals[i].count = (uint64_t)op->totals[i].count;
		r->totals[i].sum = (uint64_t)op->totals[i].sum_minor;
	}
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=eod_totals peer=%s terminal=%s req_id=%u batch=%lld "
	        "closed_ms=%lld repeat=%d lines=%zu code=%s",
	        ss->peer, ss->terminal_id, (unsigned)op->req_id,
	        (long long)op->batch_no, (long long)op->closed_ms,
	        op->is_repeat, op->n_totals, pos_code_name(r->code));
	send_msg(ss, out, &m, op->req_id, MAC_KS, NULL);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

/* Every item of parent has its result: ADVICE_BATCH_RESP (§6.15). */
static void
advice_answer(struct svc_pos_session *ss, struct svc_pos_op *parent,
              struct svc_pos_out *out)
{
	char refs[POS_BATCH_MAX][24];
	struct pos_msg m;
	struct pos_advice_batch_resp *r = &m.u.advice_batch_resp;
	size_t i, n_stored = 0;

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_ADVICE_BATCH_RESP;
	r->code = POS_CODE_APPROVED;
	r->n_results = parent->n_items;
	for (i = 0; i < parent->n_items && i < POS_BATCH_MAX; i++) {
		const struct svc_pos_advice *a = &parent->items[i];
		struct pos_advice_result *x = &r->results[i];

		x->code = a->code;
		memcpy(x->txn_id, a->txn_id, POS_ID_LEN);
		if (a->ledger_txn > 0) {
			snprintf(refs[i], sizeof refs[i], "FT-%lld",
			         (long long)a->ledger_txn);
			set_text(&x->ref, &x->has_ref, refs[i]);
		} else {
			set_text(&x->ref, &x->has_ref, a->ref); /* BP- */
		}
		set_text(&x->token, &x->has_token, a->token);
		if (a->orig_code >= 0) {
			x->has_orig_code = true;
			x->orig_code = (uint64_t)a->orig_code;
		}
		if (a->code == POS_CODE_STORED)
			n_stored++;
	}
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=advice_batch peer=%s terminal=%s req_id=%u items=%zu "
	        "stored=%zu",
	        ss->peer, ss->terminal_id, (unsigned)parent->req_id,
	        parent->n_items, n_stored);
	send_msg(ss, out, &m, parent->req_id, MAC_KS, NULL);
	ss->n_inflight--;
}

/*
 * The batch's FLOAT_TRANSFER items are decided: its BILL_PAY items go
 * one at a time, in order, each exactly as an online BILL_PAY
 * (bill_start: the same payment reference, content hash and funding from
 * the float), its end coming back here (bill_end); then the batch is
 * answered.  One child at a time keeps the batch's one slot of
 * pos_max_inflight and one storage job in flight.
 */
static void
advice_next(struct svc_pos *s, struct svc_pos_session *ss,
            struct svc_pos_op *parent, int64_t now_ms,
            struct svc_pos_out *out)
{
	size_t i;

	for (i = 0; i < parent->n_items; i++) {
		struct svc_pos_advice *a = &parent->items[i];
		struct svc_pos_op *c;
		const char *why = "request";
		enum pos_code code;

		if (!a->is_bill)
			continue;
		a->is_bill = false;
		c = op_new(s, SVC_POS_OP_BILL, parent->type, parent->req_id);
		memcpy(c->txn_id, a->txn_id, POS_ID_LEN);
		c->amount = a->amount;
		c->currency = a->currency;
		c->bill = a->bill;
		if (c->bill.biller_code[0] == '\0') {
			/* an item code alone: its biller first */
			strlcpy_s(c->terminal_id, ss->terminal_id,
			          sizeof c->terminal_id);
			c->kind = SVC_POS_OP_BILL_RESOLVE;
			code = POS_CODE_APPROVED;
		} else {
			code = bill_start(s, ss, c, true, now_ms, &why);
		}
		if (code != POS_CODE_APPROVED) {
			a->code = code;
			log_msg(LOG_POS, LOG_LEVEL_INFO,
			        "event=bill_pay terminal=%s req_id=%u code=%s "
			        "ref=- why=%s advice=1",
			        ss->terminal_id, (unsigned)parent->req_id,
			        pos_code_name(code), why);
			svc_pos_op_free(c);
			continue;
		}
		c->parent = parent;
		c->idx = i;
		parent->n_children++;
		out->post = c;
		return;
	}
	advice_answer(ss, parent, out);
}

/*
 * The ADVICE call is back: items already known are answered from their
 * rows, the others become ledger children posted as one group (one
 * commit); the answer leaves when the last child is back.
 */
static void
advice_done(struct svc_pos *s, struct svc_pos_session *ss,
            struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	size_t i;

	if (op->job.call_rc != STORE_OK) {
		/* nothing was processed: the whole batch again (§9.4) */
		send_error(ss, out, op->type, op->req_id, POS_CODE_RETRY_LATER,
		           MAC_KS, NULL);
		ss->n_inflight--;
		svc_pos_op_free(op);
		return;
	}
	for (i = 0; i < op->n_items; i++) {
		struct svc_pos_advice *a = &op->items[i];
		struct svc_pos_op *c;

		if (a->is_decided)
			continue;
		a->is_decided = true;
		if (a->found_rc == STORE_OK) {
			a->code = repeat_code(&a->found, a->type, a->amount,
			                      a->currency, a->to_agent,
			                      &a->orig_code);
			if (a->code == POS_CODE_DUPLICATE)
				a->ledger_txn = a->found.ledger_txn_id;
			continue;
		}
		if (a->agent_rc != STORE_OK ||
		    a->agent.status != STORE_POS_ACTIVE) {
			a->code = POS_CODE_UNKNOWN_AGENT;
			continue;
		}
		if (a->agent.float_account_id == ss->float_account_id) {
			a->code = POS_CODE_DECLINED;
			continue;
		}
		agent_remember(s, a->to_agent, a->agent.float_account_id,
		               now_ms);
		c = op_new(op->svc, SVC_POS_OP_ADVICE_ITEM, op->type,
		           op->req_id);
		strlcpy_s(c->terminal_id, ss->terminal_id,
		          sizeof c->terminal_id);
		memcpy(c->txn_id, a->txn_id, POS_ID_LEN);
		c->parent = op;
		c->idx = i;
		xfer_req(ss, c, a->txn_id, a->amount, a->currency, a->to_agent,
		         a->agent.float_account_id, true, a->local_time_ms);
		a->is_decided = false; /* the ledger decides */
		out->group[out->n_group++] = c;
	}
	op->n_children = out->n_group;
	if (out->n_group == 0) {
		advice_next(s, ss, op, now_ms, out);
		if (op->n_children == 0)
			svc_pos_op_free(op);
	}
}

static void
advice_item_done(struct svc_pos *s, struct svc_pos_session *ss,
                 struct svc_pos_op *op, int64_t now_ms,
                 struct svc_pos_out *out)
{
	const struct ledger_result *res = &op->job.res;
	struct svc_pos_op *parent = op->parent;
	struct svc_pos_advice *a = &parent->items[op->idx];

	if (op->is_fast && op->n_retry == 0 &&
	    (res->rc == LEDGER_IDEM_MISMATCH || res->is_replay)) {
		/* posted from the agent cache and seen before: answer from
		 * its row, as the lookup path would (repeat_code) */
		op->n_retry++;
		op->job.call = advice_item_call;
		out->post = op;
		return;
	}
	a->is_decided = true;
	a->orig_code = -1;
	if (res->rc == LEDGER_OK)
		a->ledger_txn = res->txn_id;
	if (op->job.call != NULL && op->job.call_rc == STORE_OK &&
	    op->found_rc == STORE_OK) {
		/* the row of a repeat posted from the cache */
		a->ledger_txn = 0;
		a->code = repeat_code(&op->found, a->type, a->amount,
		                      a->currency, a->to_agent, &a->orig_code);
		if (a->code == POS_CODE_DUPLICATE)
			a->ledger_txn = op->found.ledger_txn_id;
	} else if (res->rc == LEDGER_IDEM_MISMATCH) {
		a->code = POS_CODE_TXN_ID_REUSED;
	} else if (res->is_replay) {
		/* a txn_id twice in this batch, or decided since the
		 * lookup */
		a->code = POS_CODE_DUPLICATE;
		a->orig_code = res->rc == LEDGER_OK
		                   ? POS_CODE_STORED
		                   : (int)svc_pos_code(res->rc);
	} else if (res->rc == LEDGER_OK) {
		a->code = POS_CODE_STORED;
	} else {
		a->code = svc_pos_code(res->rc);
	}
	if (parent->n_children == 1)
		advice_next(s, ss, parent, now_ms, out);
	svc_pos_op_free(op); /* the last child frees the parent */
}

static void done_step(struct svc_pos *s, struct svc_pos_session *ss,
                      struct svc_pos_op *op, int64_t now_ms,
                      struct svc_pos_out *out);

void
svc_pos_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	done_step(s, ss, op, now_ms, out);
	/* an ADVICE_BATCH's bill goes on as a request of its own */
	inflight_list(s, ss, out->post);
}

static void
done_step(struct svc_pos *s, struct svc_pos_session *ss,
          struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	if (ss->state == SVC_POS_CLOSING) {
		/* the connection is going: a committed transfer stays
		 * committed; the terminal learns it by STATUS or resend */
		bool is_last = op->kind != SVC_POS_OP_ADVICE_ITEM ||
		               op->parent->n_children == 1;

		if (is_request(op) && is_last && ss->n_inflight > 0)
			ss->n_inflight--;
		if (op->kind == SVC_POS_OP_LOGIN)
			ss->is_login_pending = false;
		svc_pos_op_free(op);
		return;
	}
	if (op->is_read) {
		/*
		 * Served by a reader (svc_pos_op.is_read).  A row found there
		 * is committed, so it is the answer.  A miss may be a request
		 * still queued on the writer (a transfer sent just before,
		 * possibly on the terminal's previous connection): the writer
		 * runs its calls after the commits queued before them, so it
		 * answers exactly as before readers existed.  A failed read
		 * is retried there too.  An unknown terminal at LOGIN is an
		 * answer: provisioning commits before a terminal can use it.
		 */
		bool is_miss = op->job.call_rc != STORE_OK &&
		               !(op->kind == SVC_POS_OP_LOGIN &&
		                 op->job.call_rc == STORE_NOT_FOUND);

		if (!is_miss && op->kind != SVC_POS_OP_LOGIN)
			is_miss = op->found_rc != STORE_OK;
		op->is_read = false;
		if (is_miss) {
			out->post = op;
			return;
		}
	}
	switch (op->kind) {
	case SVC_POS_OP_LOGIN:
		login_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_XFER_RESOLVE:
		resolve_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_XFER:
		xfer_done(ss, op, out);
		return;
	case SVC_POS_OP_STATUS:
		status_done(s, ss, op, out);
		return;
	case SVC_POS_OP_REV_LOOKUP:
		rev_lookup_done(ss, op, out);
		return;
	case SVC_POS_OP_REV:
		rev_done(ss, op, out);
		return;
	case SVC_POS_OP_RECEIPT:
		receipt_done(s, ss, op, out);
		return;
	case SVC_POS_OP_EOD:
		eod_done(ss, op, out);
		return;
	case SVC_POS_OP_ADVICE:
		advice_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_ADVICE_ITEM:
		advice_item_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_COLLECT:
		collect_done(s, ss, op, out);
		return;
	case SVC_POS_OP_RESULTS:
		results_done(s, ss, op, out);
		return;
	case SVC_POS_OP_ACK:
		ack_done(s, ss, op, out);
		return;
	case SVC_POS_OP_CASH_IN:
		cash_in_done(s, ss, op, out);
		return;
	case SVC_POS_OP_CASH_IN_HOLD:
		cash_in_hold_done(s, ss, op, out);
		return;
	case SVC_POS_OP_CASH_IN_GET:
		cash_in_get_done(ss, op, out);
		return;
	case SVC_POS_OP_BILL_CHECK:
		bill_check_done(ss, op, out);
		return;
	case SVC_POS_OP_BILL:
		bill_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_BILL_FUND:
		bill_fund_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_BILL_DECLINE:
		bill_decline_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_BILL_WAIT:
		bill_wait_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_BILL_RESOLVE:
		bill_resolved(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_AGENT_REFRESH:
		/* no connection's: the caller hands it to svc_pos_refreshed */
		svc_pos_refreshed(s, op, now_ms);
		return;
	}
	svc_pos_op_free(op);
}

void
svc_pos_busy(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, struct svc_pos_out *out)
{
	(void)s;
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	if (op->parent != NULL && op->kind != SVC_POS_OP_ADVICE_ITEM) {
		/* an advised bill's step found no room: that item and the
		 * bills after it are not processed (RETRY_LATER), the
		 * terminal sends them again; a bill created but not
		 * funded is funded by that repeat (bill_done) */
		struct svc_pos_op *parent = op->parent;
		struct svc_pos_advice *a = &parent->items[op->idx];

		a->code = POS_CODE_RETRY_LATER;
		a->orig_code = -1;
		a->ref[0] = '\0';
		a->token[0] = '\0';
		if (ss->state != SVC_POS_CLOSING)
			advice_answer(ss, parent, out);
		else if (ss->n_inflight > 0)
			ss->n_inflight--;
		svc_pos_op_free(op); /* frees the batch */
		return;
	}
	if (op->kind == SVC_POS_OP_ADVICE_ITEM) {
		/* a fast advice child's lookup (advice_item_done) found no
		 * room: that item is not processed, the terminal sends it
		 * again; its batch is answered when its last child is */
		struct svc_pos_op *parent = op->parent;
		struct svc_pos_advice *a = &parent->items[op->idx];

		a->is_decided = true;
		a->orig_code = -1;
		a->ledger_txn = 0;
		a->code = POS_CODE_RETRY_LATER;
		if (parent->n_children == 1) {
			if (ss->state != SVC_POS_CLOSING)
				advice_answer(ss, parent, out);
			else if (ss->n_inflight > 0)
				ss->n_inflight--;
		}
		svc_pos_op_free(op);
		return;
	}
	if (!is_request(op) && op->kind != SVC_POS_OP_LOGIN) {
		/* the server's own lookup or an ACK: the results stay
		 * undelivered (or unacknowledged) and are pushed again
		 * at the next login or completion */
		if (op->kind == SVC_POS_OP_RESULTS)
			ss->is_results_pending = false;
		svc_pos_op_free(op);
		return;
	}
	if (ss->state != SVC_POS_CLOSING) {
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=busy peer=%s terminal=%s type=%s req_id=%u "
		        "reason=storage_queue",
		        ss->peer, op->terminal_id, pos_msg_name(op->type),
		        (unsigned)op->req_id);
		if (op->kind == SVC_POS_OP_LOGIN) {
			ss->is_login_pending = false;
			send_error(ss, out, POS_MSG_LOGIN, op->req_id,
			           POS_CODE_BUSY, MAC_ZERO, NULL);
			close_after(ss, out);
		} else {
			send_error(ss, out, op->type, op->req_id, POS_CODE_BUSY,
			           MAC_KS, NULL);
		}
	}
	if (op->kind != SVC_POS_OP_LOGIN && ss->n_inflight > 0)
		ss->n_inflight--;
	svc_pos_op_free(op);
}

void
svc_pos_group_busy(struct svc_pos *s, struct svc_pos_session *ss,
                   struct svc_pos_op *const *group, size_t n,
                   struct svc_pos_out *out)
{
	size_t i;

	(void)s;
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	out->n_group = 0;
	if (n == 0)
		return;
	if (ss->state != SVC_POS_CLOSING) {
		log_msg(LOG_POS, LOG_LEVEL_WARN,
		        "event=busy peer=%s terminal=%s type=%s req_id=%u "
		        "reason=storage_queue items=%zu",
		        ss->peer, ss->terminal_id, pos_msg_name(group[0]->type),
		        (unsigned)group[0]->req_id, n);
		/* nothing was posted: the whole batch may be sent again */
		send_error(ss, out, group[0]->type, group[0]->req_id,
		           POS_CODE_BUSY, MAC_KS, NULL);
	}
	if (ss->n_inflight > 0)
		ss->n_inflight--;
	for (i = 0; i < n; i++)
		svc_pos_op_free(group[i]); /* the last frees the parent */
}
