/*
 * test_svc_pos.c - svc_pos decisions without sockets, storage or a real
 * clock (STYLE.md §1, §12): frames are encoded with the reference codec,
 * storage results are filled in by hand, the EOD call runs against a fake
 * store, and the service's clock is a fake.
 *
 * Covers REVERSAL (tombstone, lost race, compensation, NOT_REVERSIBLE),
 * ADVICE_BATCH (per-item results, one group, the answer after the last
 * item), EOD_TOTALS (the fake clock reaches the close; equal and
 * mismatching totals), RECEIPT, and STATUS served by a reader (a miss
 * goes on to the writer).
 */
#include "svc_pos.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ledger.h"
#include "money.h"
#include "svc_admin.h"
#include "payment.h"
#include "log.h"
#include "sha256.h"
#include "util.h"

static const uint8_t KS[POS_KEY_LEN] = {7, 7, 7};
static uint8_t buf[POS_FRAME_MAX], rbuf[POS_FRAME_MAX];
static uint64_t term_ctr, srv_last;

static int64_t fake_now = 1735689600000;
static int64_t
fake_clock(void)
{
	return fake_now;
}

static struct svc_pos svc = {
    .heartbeat_s = 30, .max_inflight = 8, .clock_ms = fake_clock};

static void
logged_in(struct svc_pos_session *ss)
{
	svc_pos_session_init(&svc, ss);
	ss->state = SVC_POS_LOGGED_IN;
	strlcpy_s(ss->terminal_id, "T1", sizeof ss->terminal_id);
	strlcpy_s(ss->agent_code, "A1", sizeof ss->agent_code);
	ss->float_account_id = 10;
	memcpy(ss->ks, KS, sizeof KS);
	term_ctr = 0;
	srv_last = 0;
}

static struct svc_pos_out
out_new(void)
{
	struct svc_pos_out o;

	memset(&o, 0, sizeof o);
	o.buf = rbuf;
	o.cap = sizeof rbuf;
	return o;
}

/* Sends m from the terminal; returns what the service decided. */
static struct svc_pos_out
send_req(struct svc_pos_session *ss, struct pos_msg *m)
{
	struct pos_hdr h = {POS_VER_MAJOR, POS_VER_MINOR, m->type, 9, 0};
	struct svc_pos_out o = out_new();
	struct pos_frame f;
	const char *why = "";
	size_t n = 0, used = 0;

	h.counter = ++term_ctr;
	CHECK_EQ_INT(pos_encode(buf, sizeof buf, &h, m, KS, &n, &why),
	             CODEC_OK);
	CHECK_EQ_INT(pos_frame_decode(&f, buf, n, &used, &why), CODEC_OK);
	svc_pos_frame(&svc, ss, &f, fake_now, &o);
	return o;
}

/* Decodes the service's reply in o. */
static struct pos_msg
reply(const struct svc_pos_out *o)
{
	struct pos_msg m;
	struct pos_frame f;
	const char *why = "";
	size_t used = 0;

	memset(&m, 0, sizeof m);
	CHECK(o->len > 0);
	if (o->len == 0)
		return m;
	CHECK_EQ_INT(pos_frame_decode(&f, o->buf, o->len, &used, &why),
	             CODEC_OK);
	CHECK_EQ_INT(pos_frame_open(&m, &f, KS, POS_S2T, &srv_last, &why),
	             POS_CODE_APPROVED);
	m.type = f.hdr.type;
	return m;
}

static struct svc_pos_out
done(struct svc_pos_session *ss, struct svc_pos_op *op)
{
	struct svc_pos_out o = out_new();

	svc_pos_done(&svc, ss, op, fake_now, &o);
	return o;
}

static const uint8_t TXN[POS_ID_LEN] = {0x6f, 0x1c, 0x2b, 0x8e};

static struct svc_pos_out
reversal(struct svc_pos_session *ss)
{
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_REVERSAL;
	memcpy(m.u.reversal.txn_id, TXN, POS_ID_LEN);
	return send_req(ss, &m);
}

static void
test_reversal_tombstone(void)
{
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;

	logged_in(&ss);
	o = reversal(&ss);
	CHECK(o.post != NULL && o.len == 0);
	op = o.post;
	CHECK_EQ_INT(op->kind, SVC_POS_OP_REV_LOOKUP);
	CHECK_EQ_INT(ss.n_inflight, 1);
	/* never seen: a tombstone under the original's own key */
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	o = done(&ss, op);
	CHECK(o.post == op && o.len == 0);
	CHECK_EQ_INT(op->kind, SVC_POS_OP_REV);
	CHECK(op->job.call == NULL);
	CHECK_EQ_STR(op->job.req.idem_key,
	             "pos:6f1c2b8e000000000000000000000000:T1");
	CHECK_EQ_INT(op->job.req.kind, LEDGER_TXN_REVERSAL);
	CHECK_EQ_INT(op->job.req.reverses_txn_id, 0);
	CHECK_EQ_INT(op->job.req.n_legs, 0);
	CHECK(op->job.req.pos == &op->row);
	CHECK_EQ_INT(op->row.type, 0);
	/* the original took the key meanwhile: look again */
	op->job.res.rc = LEDGER_IDEM_MISMATCH;
	o = done(&ss, op);
	CHECK(o.post == op);
	CHECK_EQ_INT(op->kind, SVC_POS_OP_REV_LOOKUP);
	/* ... and reverse it */
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	memset(&op->found, 0, sizeof op->found);
	op->found.type = POS_MSG_FLOAT_TRANSFER;
	op->found.rc = LEDGER_OK;
	op->found.ledger_txn_id = 41;
	o = done(&ss, op);
	CHECK(o.post == op);
	CHECK_EQ_STR(op->job.req.idem_key,
	             "pos:6f1c2b8e000000000000000000000000:T1:rev");
	CHECK_EQ_INT(op->job.req.reverses_txn_id, 41);
	CHECK(op->job.req.pos == NULL);
	CHECK_EQ_INT(op->job.req.limit_amount, 0);
	CHECK_EQ_INT(op->job.req.subjects[0].kind, LEDGER_SUBJ_NONE);
	op->job.res.rc = LEDGER_OK;
	op->job.res.txn_id = 77;
	op->job.res.created_ms = fake_now;
	o = done(&ss, op);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_REVERSAL_RESP);
	CHECK_EQ_INT(r.u.reversal_resp.code, POS_CODE_APPROVED);
	CHECK(r.u.reversal_resp.has_ref && r.u.reversal_resp.ref.len == 5 &&
	      memcmp(r.u.reversal_resp.ref.ptr, "RV-77", 5) == 0);
	CHECK_EQ_INT(ss.n_inflight, 0);

	/* a tombstone decided (or found again): APPROVED */
	o = reversal(&ss);
	op = o.post;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	o = done(&ss, op);
	op->job.res.rc = LEDGER_REVERSAL_UNKNOWN;
	op->job.res.is_replay = true;
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.u.reversal_resp.code, POS_CODE_APPROVED);

	/* the receiver spent it: NOT_REVERSIBLE */
	o = reversal(&ss);
	op = o.post;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	memset(&op->found, 0, sizeof op->found);
	op->found.type = POS_MSG_FLOAT_TRANSFER;
	op->found.ledger_txn_id = 42;
	o = done(&ss, op);
	op->job.res.rc = LEDGER_INSUFFICIENT_FUNDS;
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.u.reversal_resp.code, POS_CODE_NOT_REVERSIBLE);

	/* a reversal of a reversal is refused by the ledger */
	o = reversal(&ss);
	op = o.post;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	memset(&op->found, 0, sizeof op->found);
	op->found.type = POS_MSG_FLOAT_TRANSFER;
	op->found.ledger_txn_id = 43;
	o = done(&ss, op);
	op->job.res.rc = LEDGER_REVERSAL_OF_REVERSAL;
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.u.reversal_resp.code, POS_CODE_NOT_REVERSIBLE);

	/* already tombstoned: answered without the ledger */
	o = reversal(&ss);
	op = o.post;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	memset(&op->found, 0, sizeof op->found);
	o = done(&ss, op);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.reversal_resp.code, POS_CODE_APPROVED);
	CHECK_EQ_INT(ss.n_inflight, 0);
	svc_pos_session_fini(&ss);
}

static void
test_advice_batch(void)
{
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op, *kids[POS_BATCH_MAX];
	struct pos_msg m, r;
	size_t i, n;
	static const uint16_t types[5] = {
	    POS_MSG_FLOAT_TRANSFER, POS_MSG_FLOAT_TRANSFER,
	    POS_MSG_FLOAT_TRANSFER, POS_MSG_BILL_PAY, POS_MSG_COLLECT};

	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_ADVICE_BATCH;
	m.u.advice_batch.n_items = 5;
	for (i = 0; i < 5; i++) {
		struct pos_advice *a = &m.u.advice_batch.items[i];

		a->txn_id[0] = (uint8_t)(i + 1);
		a->type = types[i];
		a->amount = 100 * (i + 1);
		a->currency = 404;
		a->local_time_ms = 5;
		a->has_to_agent = true;
		a->to_agent.ptr = (const uint8_t *)"A2";
		a->to_agent.len = 2;
	}
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL);
	CHECK_EQ_INT(op->kind, SVC_POS_OP_ADVICE);
	CHECK_EQ_INT(op->n_items, 5);
	CHECK(!op->items[0].is_decided);
	/* no bills served here (svc.pay NULL): kept queued */
	CHECK(op->items[3].is_decided && !op->items[3].is_bill);
	CHECK_EQ_INT(op->items[3].code, POS_CODE_RETRY_LATER);
	CHECK_EQ_INT(op->items[4].code, POS_CODE_DECLINED);
	/* item 0 new, item 1 seen before (same content), item 2 new */
	op->job.call_rc = STORE_OK;
	for (i = 0; i < 3; i++) {
		op->items[i].found_rc = STORE_NOT_FOUND;
		op->items[i].agent_rc = STORE_OK;
		op->items[i].agent.status = STORE_POS_ACTIVE;
		op->items[i].agent.float_account_id = 20;
	}
	op->items[1].found_rc = STORE_OK;
	op->items[1].found.type = POS_MSG_FLOAT_TRANSFER;
	op->items[1].found.amount_minor = 200;
	op->items[1].found.currency = 404;
	strlcpy_s(op->items[1].found.counterparty, "A2",
	          sizeof op->items[1].found.counterparty);
	op->items[1].found.rc = LEDGER_OK;
	op->items[1].found.is_advice = true;
	op->items[1].found.ledger_txn_id = 9;
	o = done(&ss, op);
	CHECK(o.len == 0 && o.post == NULL);
	n = o.n_group;
	CHECK_EQ_INT(n, 2);
	for (i = 0; i < n && i < 2; i++) {
		kids[i] = o.group[i];
		CHECK_EQ_INT(kids[i]->kind, SVC_POS_OP_ADVICE_ITEM);
		CHECK(kids[i]->job.req.pos == &kids[i]->row);
		CHECK(kids[i]->row.is_advice);
		CHECK_EQ_INT(kids[i]->row.local_time_ms, 5);
		CHECK_EQ_INT(kids[i]->job.req.subjects[0].kind,
		             LEDGER_SUBJ_TERMINAL);
		CHECK_EQ_INT(kids[i]->job.req.subjects[1].kind,
		             LEDGER_SUBJ_AGENT);
		CHECK_EQ_INT(kids[i]->job.req.limit_amount,
		             kids[i]->job.req.legs[1].amount_minor);
	}
	if (n != 2)
		return;
	CHECK_EQ_INT(kids[0]->idx, 0);
	CHECK_EQ_INT(kids[1]->idx, 2);
	/* the first child back: no answer yet */
	kids[0]->job.res.rc = LEDGER_OK;
	kids[0]->job.res.txn_id = 50;
	o = done(&ss, kids[0]);
	CHECK_EQ_INT(o.len, 0);
	CHECK_EQ_INT(ss.n_inflight, 1);
	kids[1]->job.res.rc = LEDGER_LIMIT_DAILY;
	o = done(&ss, kids[1]);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_ADVICE_BATCH_RESP);
	CHECK_EQ_INT(r.u.advice_batch_resp.code, POS_CODE_APPROVED);
	CHECK_EQ_INT(r.u.advice_batch_resp.n_results, 5);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[0].code, POS_CODE_STORED);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[1].code, POS_CODE_DUPLICATE);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[1].orig_code,
	             POS_CODE_STORED);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[2].code,
	             POS_CODE_LIMIT_EXCEEDED);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[3].code,
	             POS_CODE_RETRY_LATER);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[4].code, POS_CODE_DECLINED);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[2].txn_id[0], 3);
	CHECK_EQ_INT(ss.n_inflight, 0);
	svc_pos_session_fini(&ss);
}

/* ---- a fake store for the EOD call: records the clock it was given */

static int64_t seen_now;

static enum store_rc
fake_close(struct store *st, const char *terminal_id, int64_t batch_no,
           int64_t now_ms, int64_t *closed_ms, bool *is_repeat)
{
	(void)st;
	(void)terminal_id;
	(void)batch_no;
	seen_now = now_ms;
	*closed_ms = now_ms;
	*is_repeat = false;
	return STORE_OK;
}

static enum store_rc
fake_totals(struct store *st, const char *terminal_id, int64_t batch_no,
            struct store_pos_total *out, size_t cap, size_t *n)
{
	(void)st;
	(void)terminal_id;
	(void)batch_no;
	*n = 2;
	if (cap >= 2) {
		out[0] = (struct store_pos_total){0x13, 404, 2, 500};
		out[1] = (struct store_pos_total){0x13, 800, 1, 7};
	}
	return STORE_OK;
}

static void
test_eod(void)
{
	static const struct store_ops ops = {.pos_batch_close = fake_close,
	                                     .pos_totals = fake_totals};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;
	int pass;

	logged_in(&ss);
	for (pass = 0; pass < 2; pass++) {
		memset(&m, 0, sizeof m);
		m.type = POS_MSG_EOD_TOTALS;
		m.u.eod_totals.batch_no = 3;
		m.u.eod_totals.time_ms = 1;
		/* the terminal's lines in another order, plus an empty one */
		m.u.eod_totals.n_totals = 3;
		m.u.eod_totals.totals[0] =
		    (struct pos_total){0x13, 800, 1, pass == 0 ? 7 : 8};
		m.u.eod_totals.totals[1] = (struct pos_total){0x21, 404, 0, 0};
		m.u.eod_totals.totals[2] =
		    (struct pos_total){0x13, 404, 2, 500};
		o = send_req(&ss, &m);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_EOD);
		if (op == NULL)
			return;
		fake_now += 1000;
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK_EQ_INT(seen_now, fake_now); /* the worker's clock */
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_EOD_TOTALS_RESP);
		CHECK_EQ_INT(r.u.eod_totals_resp.code,
		             pass == 0 ? POS_CODE_APPROVED
		                       : POS_CODE_TOTALS_MISMATCH);
		CHECK_EQ_INT(r.u.eod_totals_resp.batch_no, 3);
		CHECK_EQ_INT(r.u.eod_totals_resp.n_totals, 2);
		CHECK_EQ_INT(r.u.eod_totals_resp.totals[1].currency, 800);
	}
	CHECK_EQ_INT(ss.n_inflight, 0);
	svc_pos_session_fini(&ss);
}

static void
test_receipt(void)
{
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;

	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_RECEIPT;
	memcpy(m.u.receipt.txn_id, TXN, POS_ID_LEN);
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_RECEIPT);
	if (op == NULL)
		return;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	op->found.type = POS_MSG_FLOAT_TRANSFER;
	op->found.rc = LEDGER_OK;
	op->found.amount_minor = 150000;
	op->found.currency = 404;
	op->found.ledger_txn_id = 12;
	op->found.created_ms = 1735689600000;
	strlcpy_s(op->found.counterparty, "A-0042",
	          sizeof op->found.counterparty);
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_RECEIPT_RESP);
	CHECK_EQ_INT(r.u.receipt_resp.code, POS_CODE_APPROVED);
	CHECK_EQ_INT(r.u.receipt_resp.amount, 150000);
	CHECK(r.u.receipt_resp.has_lines);
	{
		char lines[1100];
		size_t n = r.u.receipt_resp.lines.len;

		memcpy(lines, r.u.receipt_resp.lines.ptr, n);
		lines[n] = '\0';
		CHECK(strstr(lines, "KES 1500.00") != NULL);
		CHECK(strstr(lines, "A-0042") != NULL);
		CHECK(strstr(lines, "FT-12") != NULL);
		CHECK(strstr(lines, "2025-01-01 00:00:00 UTC") != NULL);
	}
	svc_pos_session_fini(&ss);
}

/* STATUS on a reader (svc_pos_op.is_read): a row found there is the
 * answer; a miss or a failed read goes on to the writer, whose answer is
 * final.  REVERSAL's lookup is never a reader's. */
static void
test_status_reader(void)
{
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;
	int round;

	logged_in(&ss);
	for (round = 0; round < 2; round++) {
		memset(&m, 0, sizeof m);
		m.type = POS_MSG_STATUS;
		memcpy(m.u.status.txn_id, TXN, POS_ID_LEN);
		o = send_req(&ss, &m);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_STATUS);
		if (op == NULL)
			return;
		CHECK(op->is_read);
		CHECK_EQ_INT(ss.n_inflight, 1);
		/* the reader: not found (round 0) or failed (round 1) */
		op->job.call_rc = round == 0 ? STORE_OK : STORE_RETRY;
		op->found_rc = STORE_NOT_FOUND;
		o = done(&ss, op);
		CHECK_EQ_INT(o.len, 0);
		CHECK(o.post == op);
		CHECK(!op->is_read);
		CHECK_EQ_INT(ss.n_inflight, 1);
		/* the writer, after the commits queued before it: found */
		op->job.call_rc = STORE_OK;
		op->found_rc = STORE_OK;
		memset(&op->found, 0, sizeof op->found);
		op->found.type = POS_MSG_FLOAT_TRANSFER;
		op->found.rc = LEDGER_OK;
		op->found.amount_minor = 500;
		op->found.currency = 404;
		op->found.ledger_txn_id = 7;
		o = done(&ss, op);
		CHECK(o.post == NULL);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_STATUS_RESP);
		CHECK_EQ_INT(r.u.status_resp.code, POS_CODE_APPROVED);
		CHECK_EQ_INT(ss.n_inflight, 0);
	}
	/* found by the reader: answered at once */
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_STATUS;
	memcpy(m.u.status.txn_id, TXN, POS_ID_LEN);
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL);
	if (op == NULL)
		return;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_OK;
	op->found.type = POS_MSG_FLOAT_TRANSFER;
	op->found.rc = LEDGER_OK;
	op->found.ledger_txn_id = 8;
	o = done(&ss, op);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.status_resp.code, POS_CODE_APPROVED);
	CHECK_EQ_INT(ss.n_inflight, 0);
	/* a REVERSAL's lookup stays on the writer */
	o = reversal(&ss);
	CHECK(o.post != NULL && !o.post->is_read);
	svc_pos_op_free(o.post);
	svc_pos_session_fini(&ss);
}

/* STATUS or RECEIPT of (ss's terminal, txn) answered by the writer with
 * no row: the code it gets. */
static int
lookup_miss(struct svc_pos_session *ss, uint16_t type, const uint8_t *txn)
{
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;

	memset(&m, 0, sizeof m);
	m.type = type;
	if (type == POS_MSG_STATUS)
		memcpy(m.u.status.txn_id, txn, POS_ID_LEN);
	else
		memcpy(m.u.receipt.txn_id, txn, POS_ID_LEN);
	o = send_req(ss, &m);
	op = o.post;
	CHECK(op != NULL);
	if (op == NULL)
		return -1;
	op->is_read = false; /* the writer's answer */
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	o = done(ss, op);
	r = reply(&o);
	return type == POS_MSG_STATUS ? (int)r.u.status_resp.code
	                              : (int)r.u.receipt_resp.code;
}

/* A request of several steps (a transfer to an agent looked up first)
 * is not UNKNOWN_TXN to a STATUS or RECEIPT the writer answers before
 * its first commit: RETRY_LATER until it is answered; other ids and
 * other terminals are unaffected. */
static void
test_status_in_flight(void)
{
	static const uint8_t other[POS_ID_LEN] = {0x6f, 0x1c, 0x2b, 0x8f};
	struct svc_pos_session ss, ss2;
	struct svc_pos_out o;
	struct svc_pos_op *xfer, *xfer2;
	struct pos_msg m;

	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_FLOAT_TRANSFER;
	memcpy(m.u.float_transfer.txn_id, TXN, POS_ID_LEN);
	m.u.float_transfer.amount = 500;
	m.u.float_transfer.currency = 404;
	m.u.float_transfer.to_agent.ptr = (const uint8_t *)"A-NEW";
	m.u.float_transfer.to_agent.len = 5;
	o = send_req(&ss, &m);
	xfer = o.post;
	CHECK(xfer != NULL && xfer->kind == SVC_POS_OP_XFER_RESOLVE);
	if (xfer == NULL)
		return;
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_STATUS, TXN),
	             POS_CODE_RETRY_LATER);
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_RECEIPT, TXN),
	             POS_CODE_RETRY_LATER);
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_STATUS, other),
	             POS_CODE_UNKNOWN_TXN);
	/* the same id from another terminal is another transaction */
	logged_in(&ss2);
	strlcpy_s(ss2.terminal_id, "T2", sizeof ss2.terminal_id);
	CHECK_EQ_INT(lookup_miss(&ss2, POS_MSG_STATUS, TXN),
	             POS_CODE_UNKNOWN_TXN);
	/* a second one in the same chain, then both gone: unknown again */
	logged_in(&ss);
	m.u.float_transfer.txn_id[15] = 1;
	o = send_req(&ss, &m);
	xfer2 = o.post;
	CHECK(xfer2 != NULL);
	svc_pos_op_free(xfer);
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_STATUS, TXN),
	             POS_CODE_UNKNOWN_TXN);
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_STATUS,
	                         m.u.float_transfer.txn_id),
	             POS_CODE_RETRY_LATER);
	svc_pos_op_free(xfer2);
	CHECK_EQ_INT(lookup_miss(&ss, POS_MSG_STATUS,
	                         m.u.float_transfer.txn_id),
	             POS_CODE_UNKNOWN_TXN);
	svc_pos_session_fini(&ss);
	svc_pos_session_fini(&ss2);
}

/* A FLOAT_TRANSFER of ss to agent "A-HOT" (a fresh txn id each time):
 * what the service decided; its op is freed unless it is a lookup
 * (XFER_RESOLVE), which the caller completes.  The refresh, if any, is
 * left in the result for the caller. */
static struct svc_pos_out
xfer_hot(struct svc_pos_session *ss)
{
	static uint8_t seq;
	struct svc_pos_out o;
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_FLOAT_TRANSFER;
	memcpy(m.u.float_transfer.txn_id, TXN, POS_ID_LEN);
	m.u.float_transfer.txn_id[14] = 0x5a;
	m.u.float_transfer.txn_id[15] = ++seq;
	m.u.float_transfer.amount = 500;
	m.u.float_transfer.currency = 404;
	m.u.float_transfer.to_agent.ptr = (const uint8_t *)"A-HOT";
	m.u.float_transfer.to_agent.len = 5;
	o = send_req(ss, &m);
	CHECK(o.post != NULL);
	if (o.post != NULL && o.post->kind != SVC_POS_OP_XFER_RESOLVE) {
		svc_pos_op_free(o.post);
		o.post = NULL;
	}
	ss->n_inflight = 0; /* answered, as far as this test goes */
	return o;
}

/* The lookup of "A-HOT" in o comes back active (float 30): remembered. */
static void
resolve_hot(struct svc_pos_session *ss, struct svc_pos_out o)
{
	struct svc_pos_op *op = o.post;

	CHECK(op != NULL && op->kind == SVC_POS_OP_XFER_RESOLVE);
	if (op == NULL)
		return;
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	op->agent.status = STORE_POS_ACTIVE;
	op->agent.float_account_id = 30;
	o = done(ss, op);
	CHECK(o.post != NULL && o.post->kind == SVC_POS_OP_XFER);
	if (o.post != NULL)
		svc_pos_op_free(o.post);
	ss->n_inflight = 0;
}

/* The agent cache's refresh-ahead (svc_pos.h): past half its life an
 * entry in use is read again, once at a time; an active answer renews
 * it (no transfer waits for a lookup), a blocked one drops it (the next
 * transfer is looked up), a failed read changes nothing. */
static void
test_agent_refresh_ahead(void)
{
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *r;
	int64_t t0;

	logged_in(&ss);
	fake_now += 10 * SVC_POS_AGENT_TTL_MS; /* earlier tests' entries */
	o = xfer_hot(&ss);
	CHECK(o.refresh == NULL);
	resolve_hot(&ss, o);
	t0 = fake_now;
	/* young entry: served, nothing read */
	fake_now = t0 + 400;
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh == NULL);
	/* past half its life: served, and one refresh asked for */
	fake_now = t0 + 600;
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh != NULL);
	r = o.refresh;
	if (r == NULL)
		return;
	CHECK(r->kind == SVC_POS_OP_AGENT_REFRESH && r->is_read &&
	      r->job.call != NULL && strcmp(r->to_agent, "A-HOT") == 0);
	fake_now = t0 + 650;
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh == NULL); /* one at a time */
	/* it comes back active: the entry lives a TTL from now */
	fake_now = t0 + 700;
	r->job.call_rc = STORE_OK;
	r->agent.status = STORE_POS_ACTIVE;
	r->agent.float_account_id = 30;
	svc_pos_refreshed(&svc, r, fake_now);
	fake_now = t0 + 1100; /* expired without the refresh */
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh == NULL);
	/* a failed read changes nothing, and another may be asked for */
	fake_now = t0 + 1300;
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh != NULL);
	if (o.refresh == NULL)
		return;
	o.refresh->job.call_rc = STORE_RETRY;
	svc_pos_refreshed(&svc, o.refresh, fake_now);
	fake_now = t0 + 1699;
	o = xfer_hot(&ss);
	CHECK(o.post == NULL && o.refresh != NULL);
	r = o.refresh;
	fake_now = t0 + 1700; /* the entry read at t0 + 700 expires */
	o = xfer_hot(&ss);
	CHECK(o.post != NULL && o.refresh == NULL);
	resolve_hot(&ss, o);
	/* the refresh of the old entry comes back blocked after the lookup
	 * renewed it: the agent is blocked now, the entry goes */
	if (r == NULL)
		return;
	r->job.call_rc = STORE_OK;
	r->agent.status = STORE_POS_BLOCKED;
	svc_pos_refreshed(&svc, r, fake_now);
	o = xfer_hot(&ss);
	CHECK(o.post != NULL && o.post->kind == SVC_POS_OP_XFER_RESOLVE);
	if (o.post != NULL)
		svc_pos_op_free(o.post);
	svc_pos_session_fini(&ss);
}

static int
fake_rand(unsigned char *dst, int n)
{
	memset(dst, 0x42, (size_t)n);
	return 1;
}

/* An /rpc login of terminal term ("T1" of agent A1, merchant M1; "T0"
 * unknown) with a partner key of scope (kind, scope), or the admin key
 * (kind 0); key_rc the key's read, revoked: its state.  The code. */
static int
rpc_login(const char *term, uint8_t kind, const char *scope,
          enum store_rc key_rc, bool revoked)
{
	static const uint8_t hash[STORE_RPC_KEY_HASH_LEN] = {1, 2, 3};
	struct svc_pos_session ss;
	struct svc_pos_out o = out_new();
	struct svc_pos_op *op;
	int code;

	svc.rand_bytes = fake_rand;
	svc_pos_session_init(&svc, &ss);
	svc_pos_rpc_login(&svc, &ss, term, kind != 0 ? hash : NULL, &o);
	op = o.post;
	CHECK(op != NULL && op->is_rpc && op->has_rpc_key == (kind != 0));
	if (op == NULL)
		return -1;
	CHECK(kind == 0 || memcmp(op->rpc_key_hash, hash, sizeof hash) == 0);
	/* what login_call would have read */
	op->job.call_rc = strcmp(term, "T1") == 0 ? STORE_OK : STORE_NOT_FOUND;
	strlcpy_s(op->term.agent.code, "A1", sizeof op->term.agent.code);
	op->term.merchant_id = 3;
	strlcpy_s(op->term.merchant.code, "M1", sizeof op->term.merchant.code);
	op->term.status = STORE_POS_ACTIVE;
	op->term.agent.status = STORE_POS_ACTIVE;
	op->rpc_key_rc = key_rc;
	op->rpc_key.scope_kind = kind;
	strlcpy_s(op->rpc_key.scope, scope, sizeof op->rpc_key.scope);
	op->rpc_key.is_revoked = revoked;
	o = done(&ss, op);
	code = o.is_answer ? o.code : -1;
	svc_pos_session_fini(&ss);
	return code;
}

/* /rpc partner keys: the key first (unknown or revoked: BAD_MAC, the
 * 401), then the scope (out of it, or an unknown terminal: DECLINED, the
 * 403), then the terminal as for the admin key; the key's form. */
static void
test_rpc_keys(void)
{
	static const char good[] = "soko_rpc_0123456789abcdef0123456789abcdef"
	                           "0123456789abcdef0123456789abcdef";
	uint8_t h[STORE_RPC_KEY_HASH_LEN], h2[STORE_RPC_KEY_HASH_LEN];
	char bad[sizeof good];

	CHECK_EQ_INT(rpc_login("T1", 0, "", STORE_OK, false),
	             POS_CODE_APPROVED);
	CHECK_EQ_INT(rpc_login("T0", 0, "", STORE_OK, false),
	             POS_CODE_AUTH_FAILED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_AGENT, "A1", STORE_OK,
	                       false),
	             POS_CODE_APPROVED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_MERCHANT, "M1", STORE_OK,
	                       false),
	             POS_CODE_APPROVED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_TERMINAL, "T1", STORE_OK,
	                       false),
	             POS_CODE_APPROVED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_AGENT, "A2", STORE_OK,
	                       false),
	             POS_CODE_DECLINED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_MERCHANT, "M2", STORE_OK,
	                       false),
	             POS_CODE_DECLINED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_TERMINAL, "T2", STORE_OK,
	                       false),
	             POS_CODE_DECLINED);
	CHECK_EQ_INT(rpc_login("T1", 9, "A1", STORE_OK, false),
	             POS_CODE_DECLINED);
	CHECK_EQ_INT(rpc_login("T0", STORE_RPC_SCOPE_AGENT, "A1", STORE_OK,
	                       false),
	             POS_CODE_DECLINED);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_AGENT, "A1",
	                       STORE_NOT_FOUND, false),
	             POS_CODE_BAD_MAC);
	CHECK_EQ_INT(rpc_login("T0", STORE_RPC_SCOPE_AGENT, "A1",
	                       STORE_NOT_FOUND, false),
	             POS_CODE_BAD_MAC);
	CHECK_EQ_INT(rpc_login("T1", STORE_RPC_SCOPE_AGENT, "A1", STORE_OK,
	                       true),
	             POS_CODE_BAD_MAC);
	/* the form: prefix, 64 lower-case hex digits; the hash is SHA-256 */
	CHECK(svc_pos_rpc_key_hash(good, h));
	sha256_digest(h2, good, strlen(good));
	CHECK(memcmp(h, h2, sizeof h) == 0);
	memcpy(bad, good, sizeof good);
	bad[20] = 'A';
	CHECK(!svc_pos_rpc_key_hash(bad, h));
	bad[20] = '0';
	bad[0] = 'S';
	CHECK(!svc_pos_rpc_key_hash(bad, h));
	bad[sizeof good - 2] = '\0';
	CHECK(!svc_pos_rpc_key_hash(bad, h));
	CHECK(!svc_pos_rpc_key_hash("", h));
}

/* ---- provider-backed requests: a fake payment service and store ---- */

static int n_kicks, n_stores;
/* the terminal's merchant payable account (0: none), and the account a
 * collection must credit */
static int64_t merchant_acct, want_target = 10;
static uint8_t stored_hash[32];

static const char *
fake_prep(void *arg, const struct svc_collection *c, const char *ref,
          int64_t now_ms, struct store_prov *p, char *clearing, size_t cap,
          const char **msg)
{
	(void)arg;
	*msg = "";
	if (strcmp(c->provider, "mpesa") != 0)
		return "provider_unknown";
	if (strcmp(c->msisdn, "254000000000") == 0)
		return "msisdn_invalid";
	memset(p, 0, sizeof *p);
	strlcpy_s(p->pay.ref, ref, sizeof p->pay.ref);
	p->pay.amount_minor = c->amount_minor;
	p->pay.currency = c->cur->numeric;
	p->pay.created_ms = now_ms;
	p->kind = STORE_PROV_COLLECT;
	strlcpy_s(p->provider, c->provider, sizeof p->provider);
	strlcpy_s(p->msisdn, c->msisdn, sizeof p->msisdn);
	strlcpy_s(clearing, "clearing:mpesa", cap);
	return NULL;
}

/* The first payment is created; every later one is a repeat of it. */
static enum store_rc
fake_store(void *arg, struct store *st, struct store_prov *p,
           const char *clearing, const struct ledger_account *target,
           const struct store_pos_link *link, const char **err)
{
	(void)arg;
	(void)st;
	*err = NULL;
	CHECK_EQ_STR(clearing, "clearing:mpesa");
	CHECK_EQ_INT(target->id, want_target);
	CHECK_EQ_INT(link->type, POS_MSG_COLLECT);
	CHECK_EQ_STR(link->terminal_id, "T1");
	/* the txn id's ledger key, claimed with the payment */
	CHECK_EQ_STR(link->idem_key, "pos:6f1c2b8e000000000000000000000000:T1");
	if (n_stores++ == 0) {
		memcpy(stored_hash, p->req_hash, sizeof stored_hash);
		p->pay.id = 7;
		p->pay.state = PAY_CREATED;
		return STORE_OK;
	}
	memcpy(p->req_hash, stored_hash, sizeof stored_hash);
	p->pay.id = 7;
	p->pay.state = PAY_SUCCEEDED;
	return STORE_CONFLICT;
}

/* The payment a resend finds before anything is checked: the one
 * fake_store created, if it did. */
static enum store_rc
fake_pay_get(struct store *st, const char *terminal_id, const uint8_t *txn,
             struct store_prov *out, struct store_pos_link *link)
{
	(void)st;
	(void)txn;
	CHECK(link == NULL);
	CHECK_EQ_STR(terminal_id, "T1");
	if (n_stores == 0)
		return STORE_NOT_FOUND;
	memset(out, 0, sizeof *out);
	memcpy(out->req_hash, stored_hash, sizeof stored_hash);
	out->kind = STORE_PROV_COLLECT;
	out->pay.id = 7;
	out->pay.state = PAY_SUCCEEDED;
	return STORE_OK;
}

/* The limits of the tests' ledger (svc.lg): terminal T1 takes at most
 * 500.00 a transaction and 1,000.00 a day in KES, of which t1_used is
 * used; merchant M1 at most 200.00 a transaction (none used); agent A1
 * has no rule.  usage_fail makes the usage read fail. */
static int64_t t1_used;
static bool usage_fail;

static enum store_rc
fake_limit_list(struct store *st, struct ledger_limit_rule **out, size_t *n)
{
	(void)st;
	*out = calloc(2, sizeof **out);
	if (*out == NULL)
		return STORE_FAIL;
	(*out)[0].subject_kind = LEDGER_SUBJ_TERMINAL;
	strlcpy_s((*out)[0].subject, "T1", sizeof (*out)[0].subject);
	(*out)[0].currency = 404;
	(*out)[0].per_txn_max = 50000;
	(*out)[0].daily_max = 100000;
	(*out)[1].subject_kind = LEDGER_SUBJ_MERCHANT;
	strlcpy_s((*out)[1].subject, "M1", sizeof (*out)[1].subject);
	(*out)[1].currency = 404;
	(*out)[1].per_txn_max = 20000;
	*n = 2;
	return STORE_OK;
}

static enum store_rc
fake_usage_load(struct store *st, struct store_usage *keys, size_t n)
{
	size_t i;

	(void)st;
	if (usage_fail)
		return STORE_FAIL;
	for (i = 0; i < n; i++) {
		CHECK_EQ_INT(keys[i].subject_kind, LEDGER_SUBJ_TERMINAL);
		CHECK_EQ_STR(keys[i].subject, "T1");
		CHECK_EQ_INT(keys[i].window_s, 86400);
		keys[i].amount_minor = t1_used;
		keys[i].count = 1;
	}
	return STORE_OK;
}

static void
fake_kick(void *arg)
{
	(void)arg;
	n_kicks++;
}

/* set by taken_store when take_on_fail: a float transfer now holds
 * the txn id */
static bool txn_taken, take_on_fail;

static enum store_rc
fake_txn_get(struct store *st, const char *terminal_id, const uint8_t *txn,
             struct store_pos_txn *out)
{
	(void)st;
	(void)txn;
	if (!txn_taken)
		return STORE_NOT_FOUND;
	memset(out, 0, sizeof *out);
	strlcpy_s(out->terminal_id, terminal_id, sizeof out->terminal_id);
	out->type = POS_MSG_FLOAT_TRANSFER;
	out->rc = LEDGER_OK;
	out->ledger_txn_id = 44;
	return STORE_OK;
}

/* The creation loses the txn id's key to a float transfer committed
 * after the lookup (another sokod): the store's FAIL. */
static enum store_rc
taken_store(void *arg, struct store *st, struct store_prov *p,
            const char *clearing, const struct ledger_account *target,
            const struct store_pos_link *link, const char **err)
{
	(void)arg;
	(void)st;
	(void)p;
	(void)clearing;
	(void)target;
	(void)link;
	*err = NULL;
	txn_taken = take_on_fail;
	return STORE_FAIL;
}

static enum store_rc
fake_acct(struct store *st, int64_t id, struct ledger_account *out)
{
	(void)st;
	memset(out, 0, sizeof *out);
	out->id = id;
	/* 55: a merchant_payable in KES, 56: one in EUR */
	out->type = id >= 55 ? LEDGER_ACCT_MERCHANT_PAYABLE
	                     : LEDGER_ACCT_AGENT_FLOAT;
	out->currency = id == 56 ? 978 : 404;
	return STORE_OK;
}

/* T1, with the merchant of merchant_acct (none when 0). */
static enum store_rc
fake_term(struct store *st, const char *id, struct store_terminal *out)
{
	(void)st;
	CHECK_EQ_STR(id, "T1");
	memset(out, 0, sizeof *out);
	strlcpy_s(out->id, id, sizeof out->id);
	out->agent.float_account_id = 10;
	if (merchant_acct != 0) {
		out->merchant_id = 3;
		out->merchant.id = 3;
		out->merchant.payable_account_id = merchant_acct;
		strlcpy_s(out->merchant.code, "M1", sizeof out->merchant.code);
	}
	return STORE_OK;
}

static enum store_rc
fake_results(struct store *st, const char *terminal_id,
             struct store_prov *out, struct store_pos_link *links,
             size_t cap, size_t *n)
{
	size_t i;

	(void)st;
	CHECK(cap >= 3);
	*n = 3;
	for (i = 0; i < 3; i++) {
		memset(&out[i], 0, sizeof out[i]);
		memset(&links[i], 0, sizeof links[i]);
		out[i].pay.id = 20 + (int64_t)i;
		out[i].pay.amount_minor = 100;
		out[i].pay.currency = 404;
		out[i].pay.updated_ms = fake_now;
		strlcpy_s(links[i].terminal_id, terminal_id,
		          sizeof links[i].terminal_id);
		links[i].txn_id[0] = (uint8_t)(i + 1);
		links[i].type = POS_MSG_COLLECT;
	}
	out[0].pay.state = PAY_SUCCEEDED;
	strlcpy_s(out[0].receipt, "QKX123", sizeof out[0].receipt);
	out[1].pay.state = PAY_FAILED;
	strlcpy_s(out[1].result_code, "1032", sizeof out[1].result_code);
	/* the provider's words, with a byte a CBOR text may not carry */
	strlcpy_s(out[1].result_desc, "Request cancelled by user\x01",
	          sizeof out[1].result_desc);
	/* a bill: its receipt is the token (key 9), no provider_ref */
	out[2].pay.state = PAY_SUCCEEDED;
	out[2].kind = STORE_PROV_BILL;
	links[2].type = POS_MSG_BILL_PAY;
	strlcpy_s(out[2].receipt, "1234-5678", sizeof out[2].receipt);
	return STORE_OK;
}

/* ---- a transaction from before migration 004: idempotency record only */

static char idem_asked[LEDGER_KEY_MAX + 1];

static enum store_rc
legacy_idem(struct store *st, const char *key, struct store_idem *out)
{
	(void)st;
	strlcpy_s(idem_asked, key, sizeof idem_asked);
	/* written terminal first, as before migration 013 */
	if (strcmp(key, "pos:T1:6f1c2b8e000000000000000000000000") != 0)
		return STORE_NOT_FOUND;
	memset(out, 0, sizeof *out);
	out->rc = LEDGER_OK;
	out->txn_id = 41;
	out->created_ms = 1700000000000;
	return STORE_OK;
}

static enum store_rc
legacy_info(struct store *st, int64_t id, struct store_txn_info *out)
{
	(void)st;
	memset(out, 0, sizeof *out);
	out->id = id;
	out->currency = 404;
	out->n_legs = 2;
	out->legs[0].account_id = 10;
	out->legs[0].amount_minor = -500;
	out->legs[1].account_id = 11;
	out->legs[1].amount_minor = 500;
	return STORE_OK;
}

static void
test_status_legacy_key(void)
{
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .idem_lookup = legacy_idem,
	                                     .txn_info = legacy_info};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;

	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_STATUS;
	memcpy(m.u.status.txn_id, TXN, POS_ID_LEN);
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_STATUS);
	if (op == NULL)
		return;
	/* no pos_txns row: the old-order key is read, and found */
	op->job.call_rc = op->job.call(&fake, &op->job);
	CHECK_EQ_INT(op->job.call_rc, STORE_OK);
	CHECK_EQ_STR(idem_asked, "pos:T1:6f1c2b8e000000000000000000000000");
	CHECK_EQ_INT(op->found_rc, STORE_OK);
	CHECK_EQ_INT(op->found.ledger_txn_id, 41);
	op->is_read = false; /* as if the writer had answered */
	o = done(&ss, op);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_STATUS_RESP);
	CHECK_EQ_INT(r.u.status_resp.code, POS_CODE_APPROVED);
	svc_pos_session_fini(&ss);
}

static struct svc_pos_out
collect(struct svc_pos_session *ss, uint64_t amount, uint16_t currency,
        const char *msisdn, const char *provider)
{
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = POS_MSG_COLLECT;
	memcpy(m.u.collect.txn_id, TXN, POS_ID_LEN);
	m.u.collect.amount = amount;
	m.u.collect.currency = currency;
	m.u.collect.msisdn.ptr = (const uint8_t *)msisdn;
	m.u.collect.msisdn.len = strlen(msisdn);
	m.u.collect.provider.ptr = (const uint8_t *)provider;
	m.u.collect.provider.len = strlen(provider);
	return send_req(ss, &m);
}

static void
test_collect(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .pos_pay_get = fake_pay_get,
	                                     .account_by_id = fake_acct,
	                                     .terminal_get = fake_term,
	                                     .pos_pay_results = fake_results};
	static const struct {
		uint64_t amount;
		uint16_t currency;
		const char *msisdn, *provider;
		enum pos_code want;
	} refused[] = {
	    {100, 404, "2547123", "mpesa", POS_CODE_INVALID_MSISDN},
	    {100, 404, "25470000000a", "mpesa", POS_CODE_INVALID_MSISDN},
	    {100, 404, "254000000000", "mpesa", POS_CODE_INVALID_MSISDN},
	    {100, 404, "254708374149", "", POS_CODE_UNKNOWN_PROVIDER},
	    {100, 404, "254708374149", "nosuch", POS_CODE_UNKNOWN_PROVIDER},
	    {100, 404, "254708374149", "provider-16chars",
	     POS_CODE_UNKNOWN_PROVIDER},
	    {0, 404, "254708374149", "mpesa", POS_CODE_AMOUNT_INVALID},
	    {100, 999, "254708374149", "mpesa", POS_CODE_CURRENCY_INVALID},
	};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;
	size_t i, used = 0;
	int pass;

	svc.pay = &pay;
	logged_in(&ss);
	/* refused at once: nothing posted, nothing stored, nothing sent */
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		o = collect(&ss, refused[i].amount, refused[i].currency,
		            refused[i].msisdn, refused[i].provider);
		CHECK(o.post == NULL);
		/* told to the caller for its metrics too */
		CHECK(o.is_answer && o.n_pushes == 0);
		CHECK_EQ_INT(o.code, refused[i].want);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_COLLECT_RESP);
		CHECK_EQ_INT(r.u.collect_resp.code, refused[i].want);
	}
	CHECK_EQ_INT(n_stores, 0);
	/* the terminal's limits, checked on the worker before anything is
	 * stored: per transaction, then the day's total; a failed read
	 * of the usage is RETRY_LATER */
	for (pass = 0; pass < 3; pass++) {
		t1_used = pass == 1 ? 99950 : 0;
		usage_fail = pass == 2;
		o = collect(&ss, pass == 0 ? 50001 : 100, 404, "254708374149",
		            "mpesa");
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_COLLECT);
		if (op == NULL)
			break;
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK_EQ_INT(op->job.call_rc,
		             pass == 2 ? STORE_FAIL : STORE_OK);
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_COLLECT_RESP);
		CHECK_EQ_INT(r.u.collect_resp.code,
		             pass == 2 ? POS_CODE_RETRY_LATER
		                       : POS_CODE_LIMIT_EXCEEDED);
		/* which limit, in the answer's text */
		if (pass == 0)
			CHECK(r.u.collect_resp.has_text &&
			      r.u.collect_resp.text.len == 21 &&
			      memcmp(r.u.collect_resp.text.ptr,
			             "limit_per_transaction", 21) == 0);
		if (pass == 1)
			CHECK(r.u.collect_resp.has_text &&
			      r.u.collect_resp.text.len == 11 &&
			      memcmp(r.u.collect_resp.text.ptr, "limit_daily",
			             11) == 0);
		if (pass == 2)
			CHECK(!r.u.collect_resp.has_text);
		CHECK_EQ_INT(ss.n_inflight, 0);
	}
	usage_fail = false;
	t1_used = 99900; /* 100 more fits exactly */
	CHECK_EQ_INT(n_stores, 0);
	/* created (PENDING, kicked), then a repeat (DUPLICATE with the
	 * stored state, found before the limits: now over them), then
	 * other content (TXN_ID_REUSED) */
	for (pass = 0; pass < 3; pass++) {
		o = collect(&ss, pass == 2 ? 200 : 100, 404, "254708374149",
		            "mpesa");
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_COLLECT);
		if (op == NULL)
			break;
		CHECK_EQ_INT(ss.n_inflight, 1);
		CHECK_EQ_STR(op->prov->pay.ref, "pos:T1:bxwrjgAAAAAAAAAAAAAAAA");
		op->job.call_rc = op->job.call(&fake, &op->job);
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_COLLECT_RESP);
		CHECK_EQ_INT(r.u.collect_resp.code,
		             pass == 0   ? POS_CODE_PENDING
		             : pass == 1 ? POS_CODE_DUPLICATE
		                         : POS_CODE_TXN_ID_REUSED);
		if (pass < 2)
			CHECK(r.u.collect_resp.has_ref &&
			      r.u.collect_resp.ref.len == 4 &&
			      memcmp(r.u.collect_resp.ref.ptr, "CO-7", 4) == 0);
		if (pass == 1)
			CHECK_EQ_INT(r.u.collect_resp.orig_code,
			             POS_CODE_APPROVED);
		CHECK_EQ_INT(ss.n_inflight, 0);
		t1_used = 100000;
	}
	CHECK_EQ_INT(n_kicks, 1);
	CHECK_EQ_INT(n_stores, 1);
	t1_used = 0;
	/* a merchant's terminal: the collection credits the merchant's
	 * payable account (55), not the agent's float; one in another
	 * currency than the collection's is CURRENCY_INVALID, nothing
	 * stored */
	n_stores = 0; /* no payment for the txn id yet */
	for (pass = 0; pass < 2; pass++) {
		merchant_acct = pass == 0 ? 56 : 55;
		want_target = 55;
		o = collect(&ss, 100, 404, "254708374149", "mpesa");
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_COLLECT);
		if (op == NULL)
			break;
		op->job.call_rc = op->job.call(&fake, &op->job);
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.u.collect_resp.code,
		             pass == 0 ? POS_CODE_CURRENCY_INVALID
		                       : POS_CODE_PENDING);
		CHECK_EQ_INT(n_stores, pass); /* fake_store saw target 55 */
	}
	/* the merchant's limits too: 300.00 is within T1's 500.00 a
	 * transaction, over M1's 200.00; nothing stored */
	n_stores = 0;
	o = collect(&ss, 30000, 404, "254708374149", "mpesa");
	op = o.post;
	CHECK(op != NULL);
	if (op != NULL) {
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK_EQ_INT(op->job.req.subjects[2].kind,
		             LEDGER_SUBJ_MERCHANT);
		CHECK_EQ_STR(op->job.req.subjects[2].id, "M1");
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.u.collect_resp.code, POS_CODE_LIMIT_EXCEEDED);
		CHECK_EQ_INT(n_stores, 0);
	}
	merchant_acct = 0;
	want_target = 10;

	/* results: one lookup, all pushed in one output, no inflight */
	o = out_new();
	svc_pos_results(&svc, &ss, &o);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_RESULTS);
	if (op == NULL)
		goto out;
	o = out_new();
	svc_pos_results(&svc, &ss, &o); /* while one is out: later */
	CHECK(o.post == NULL && ss.is_results_again);
	op->job.call_rc = op->job.call(&fake, &op->job);
	o = done(&ss, op);
	CHECK(!o.is_answer && o.n_pushes == 3);
	CHECK(o.post != NULL && o.post->kind == SVC_POS_OP_RESULTS);
	svc_pos_op_free(o.post);
	ss.is_results_pending = false;
	for (i = 0; i < 3; i++) {
		struct pos_frame f;
		const char *why = "";
		size_t n = 0;

		CHECK_EQ_INT(pos_frame_decode(&f, o.buf + used, o.len - used,
		                              &n, &why),
		             CODEC_OK);
		CHECK_EQ_INT(f.hdr.type, POS_MSG_COLLECT_RESULT);
		CHECK_EQ_INT(f.hdr.req_id, 0);
		CHECK_EQ_INT(pos_frame_open(&r, &f, KS, POS_S2T, &srv_last,
		                            &why),
		             POS_CODE_APPROVED);
		CHECK_EQ_INT(r.u.collect_result.code,
		             i == 1 ? POS_CODE_CUSTOMER_DECLINED
		                    : POS_CODE_APPROVED);
		CHECK_EQ_INT(r.u.collect_result.txn_id[0], i + 1);
		CHECK_EQ_INT(r.u.collect_result.has_provider_ref, i == 0);
		/* a decline says why (key 6), printable ASCII only */
		CHECK_EQ_INT(r.u.collect_result.has_text, i == 1);
		if (i == 1 && r.u.collect_result.has_text)
			CHECK(r.u.collect_result.text.len == 26 &&
			      memcmp(r.u.collect_result.text.ptr,
			             "Request cancelled by user?", 26) == 0);
		CHECK_EQ_INT(r.u.collect_result.has_token, i == 2);
		if (i == 2 && r.u.collect_result.has_token)
			CHECK(r.u.collect_result.token.len == 9 &&
			      memcmp(r.u.collect_result.token.ptr, "1234-5678",
			             9) == 0);
		used += n;
	}
	CHECK_EQ_INT(used, o.len);
	CHECK_EQ_INT(ss.n_inflight, 0);

	/* COLLECT_RESULT_ACK: an op, no answer */
	memset(&r, 0, sizeof r);
	r.type = POS_MSG_COLLECT_RESULT_ACK;
	r.u.collect_result_ack.txn_id[0] = 1;
	o = send_req(&ss, &r);
	CHECK_EQ_INT(o.len, 0);
	CHECK(o.post != NULL && o.post->kind == SVC_POS_OP_ACK);
	svc_pos_op_free(o.post);
out:
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* A collection whose creation fails because a float transfer took its
 * txn id since the lookup is answered from that transfer's row
 * (TXN_ID_REUSED), not RETRY_LATER; a failure with nothing there stays
 * RETRY_LATER. */
static void
test_collect_key_taken(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = taken_store,
	    .kick = fake_kick};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .pos_pay_get = fake_pay_get,
	                                     .account_by_id = fake_acct,
	                                     .terminal_get = fake_term};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;
	int pass, kicks0, stores0;

	svc.pay = &pay;
	logged_in(&ss);
	stores0 = n_stores;
	n_stores = 0; /* no payment for the txn id (fake_pay_get) */
	kicks0 = n_kicks;
	for (pass = 0; pass < 2; pass++) {
		take_on_fail = pass == 0;
		o = collect(&ss, 100, 404, "254708374149", "mpesa");
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_COLLECT);
		if (op == NULL)
			break;
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK_EQ_INT(op->job.call_rc, pass == 0 ? STORE_OK : STORE_FAIL);
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_COLLECT_RESP);
		CHECK_EQ_INT(r.u.collect_resp.code,
		             pass == 0 ? POS_CODE_TXN_ID_REUSED
		                       : POS_CODE_RETRY_LATER);
		CHECK_EQ_INT(ss.n_inflight, 0);
		txn_taken = false;
	}
	CHECK_EQ_INT(n_kicks, kicks0); /* no provider call either way */
	n_stores = stores0;
	txn_taken = false;
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* ---- bills: a fake payment service; the ledger's answer by hand ---- */

static const char *
fake_bill_prep(void *arg, const struct svc_bill_pay *b, const char *ref,
               int64_t now_ms, struct store_prov *p)
{
	(void)arg;
	memset(p, 0, sizeof *p);
	strlcpy_s(p->pay.ref, ref, sizeof p->pay.ref);
	p->pay.amount_minor = b->amount_minor;
	p->pay.currency = b->cur->numeric;
	p->pay.created_ms = now_ms;
	p->kind = STORE_PROV_BILL;
	strlcpy_s(p->bill.biller_code, b->v.biller_code,
	          sizeof p->bill.biller_code);
	strlcpy_s(p->bill.item_code, b->v.item_code, sizeof p->bill.item_code);
	p->call_state = STORE_CALL_TO_SEND;
	return NULL;
}

static int64_t bill_src;
static uint16_t bill_link_type;
static bool bill_link_advice;

static enum store_rc
fake_bill_store(void *arg, struct store *st, struct store_prov *p,
                const struct ledger_account *src,
                const struct store_pos_link *link, const char **err)
{
	(void)arg;
	(void)st;
	*err = NULL;
	bill_src = src->id;
	bill_link_type = link->type;
	bill_link_advice = link->is_advice;
	/* an online bill's outcome is pushed, an advised one's not */
	CHECK((link->acked_ms != 0) == link->is_advice);
	p->pay.id = 9;
	p->pay.state = PAY_CREATED;
	p->bill.source_account_id = src->id;
	return STORE_OK;
}

static enum store_rc
fake_ngn_acct(struct store *st, int64_t id, struct ledger_account *out)
{
	(void)st;
	memset(out, 0, sizeof *out);
	out->id = id;
	out->type = LEDGER_ACCT_AGENT_FLOAT;
	out->currency = 566;
	return STORE_OK;
}

static int n_updates;

static enum store_rc
fake_update(struct store *st, const struct store_prov_update *u,
            int64_t now_ms)
{
	(void)st;
	(void)now_ms;
	n_updates++;
	CHECK_EQ_INT(u->to_state, PAY_FAILED);
	CHECK_EQ_STR(u->result_code, "insufficient_funds");
	return STORE_OK;
}

static struct svc_pos_out
bill_req(struct svc_pos_session *ss, uint16_t type, const char *biller,
         const char *account, uint64_t amount, uint16_t currency)
{
	struct pos_msg m;

	memset(&m, 0, sizeof m);
	m.type = type;
	if (type == POS_MSG_BILL_VALIDATE) {
		m.u.bill_validate.biller.ptr = (const uint8_t *)biller;
		m.u.bill_validate.biller.len = strlen(biller);
		m.u.bill_validate.account.ptr = (const uint8_t *)account;
		m.u.bill_validate.account.len = strlen(account);
	} else {
		memcpy(m.u.bill_pay.txn_id, TXN, POS_ID_LEN);
		m.u.bill_pay.amount = amount;
		m.u.bill_pay.currency = currency;
		m.u.bill_pay.biller.ptr = (const uint8_t *)biller;
		m.u.bill_pay.biller.len = strlen(biller);
		m.u.bill_pay.account.ptr = (const uint8_t *)account;
		m.u.bill_pay.account.len = strlen(account);
	}
	return send_req(ss, &m);
}

static void
test_bills(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .bill_prep = fake_bill_prep,
	    .bill_store = fake_bill_store};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .account_by_id = fake_ngn_acct,
	                                     .prov_update = fake_update};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;
	int pass, kicks;

	svc.pay = &pay;
	logged_in(&ss);
	/* BILL_VALIDATE: refused at once, or the call's outcome mapped */
	o = bill_req(&ss, POS_MSG_BILL_VALIDATE, "BIL112:", "4506", 0, 0);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.bill_validate_resp.code, POS_CODE_UNKNOWN_BILLER);
	o = bill_req(&ss, POS_MSG_BILL_VALIDATE, "BIL112:UB157", "a b", 0, 0);
	r = reply(&o);
	CHECK_EQ_INT(r.u.bill_validate_resp.code, POS_CODE_INVALID_ACCOUNT);
	o = bill_req(&ss, POS_MSG_BILL_VALIDATE, "BIL112:UB157", "4506", 0, 0);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_CHECK &&
	      op->job.call == NULL);
	if (op != NULL) {
		CHECK_EQ_STR(op->bill.biller_code, "BIL112");
		CHECK_EQ_STR(op->bill.item_code, "UB157");
		CHECK_EQ_STR(op->bill.customer, "4506");
		op->check.outcome = SVC_BILL_VALID;
		/* a name longer than the 64 bytes of the key, in UTF-8 */
		memset(op->check.name, 'A', 63);
		memcpy(op->check.name + 63, "\xc3\xa9", 3);
		op->check.has_due = true;
		op->check.due_minor = 2500;
		o = done(&ss, op);
		r = reply(&o);
		CHECK_EQ_INT(r.u.bill_validate_resp.code, POS_CODE_APPROVED);
		CHECK_EQ_INT(r.u.bill_validate_resp.customer_name.len, 63);
		CHECK_EQ_INT(r.u.bill_validate_resp.amount_due, 2500);
		CHECK_EQ_INT(r.u.bill_validate_resp.currency, 566);
	}
	CHECK_EQ_INT(svc_pos_bill_check_code(SVC_BILL_CUSTOMER_UNKNOWN),
	             POS_CODE_INVALID_ACCOUNT);
	CHECK_EQ_INT(svc_pos_bill_check_code(SVC_BILL_ITEM_UNKNOWN),
	             POS_CODE_UNKNOWN_BILLER);
	CHECK_EQ_INT(svc_pos_bill_check_code(SVC_BILL_UNANSWERED),
	             POS_CODE_RETRY_LATER);
	CHECK_EQ_INT(svc_pos_bill_check_code(SVC_BILL_PROVIDER_ERROR),
	             POS_CODE_RETRY_LATER);
	/* BILL_PAY: NGN only */
	o = bill_req(&ss, POS_MSG_BILL_PAY, "BIL112:UB157", "4506", 100, 404);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.bill_pay_resp.code, POS_CODE_CURRENCY_INVALID);
	/* written, then funded: the float declines (the bill is failed,
	 * INSUFFICIENT_FLOAT), then accepts (PENDING, kicked) */
	for (pass = 0; pass < 2; pass++) {
		kicks = n_kicks;
		o = bill_req(&ss, POS_MSG_BILL_PAY, "BIL112:UB157", "4506",
		             150000, 566);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL);
		if (op == NULL)
			break;
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK_EQ_INT(bill_src, 10);
		CHECK_EQ_INT(bill_link_type, POS_MSG_BILL_PAY);
		o = done(&ss, op);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_FUND);
		if (op == NULL)
			break;
		CHECK(strncmp(op->job.req.idem_key, "bill:pos:T1:", 12) == 0);
		/* the funding counts against the terminal and the agent */
		CHECK_EQ_INT(op->job.req.limit_amount,
		             op->prov->pay.amount_minor);
		CHECK(op->job.req.subjects[0].kind == LEDGER_SUBJ_TERMINAL &&
		      strcmp(op->job.req.subjects[0].id, "T1") == 0);
		CHECK(op->job.req.subjects[1].kind == LEDGER_SUBJ_AGENT &&
		      strcmp(op->job.req.subjects[1].id, "A1") == 0);
		CHECK(!op->job.req.count_only);
		CHECK_EQ_INT(o.len, 0); /* no answer before the funding */
		op->job.res.rc = pass == 0 ? LEDGER_INSUFFICIENT_FUNDS
		                           : LEDGER_OK;
		op->job.res.txn_id = pass == 0 ? 0 : 77;
		o = done(&ss, op);
		if (pass == 0) {
			op = o.post;
			CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_DECLINE);
			if (op == NULL)
				break;
			op->job.call_rc = op->job.call(&fake, &op->job);
			o = done(&ss, op);
		}
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_BILL_PAY_RESP);
		CHECK_EQ_INT(r.u.bill_pay_resp.code,
		             pass == 0 ? POS_CODE_INSUFFICIENT_FLOAT
		                       : POS_CODE_PENDING);
		CHECK_EQ_INT(n_kicks - kicks, pass);
		CHECK_EQ_INT(ss.n_inflight, 0);
	}
	CHECK_EQ_INT(n_updates, 1);
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* An advised bill sent again while its payment is pending (funded):
 * DUPLICATE with orig_code STORED, its reference, nothing funded again. */
static void
test_advice_bill_repeat(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .bill_prep = fake_bill_prep,
	    .bill_store = fake_bill_store};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;
	struct pos_advice *a;

	svc.pay = &pay;
	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_ADVICE_BATCH;
	m.u.advice_batch.n_items = 1;
	a = &m.u.advice_batch.items[0];
	a->txn_id[0] = 0x51;
	a->type = POS_MSG_BILL_PAY;
	a->amount = 1000;
	a->currency = 566;
	a->has_biller = a->has_account = true;
	a->biller.ptr = (const uint8_t *)"BIL112:UB157";
	a->biller.len = 12;
	a->account.ptr = (const uint8_t *)"4506";
	a->account.len = 4;
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_BILL && op->prov != NULL);
	if (op == NULL || op->prov == NULL)
		goto out;
	/* the call's answer by hand: the payment exists, same content
	 * (the hash bill_start set), funded and pending */
	op->job.call_rc = STORE_OK;
	op->found_rc = STORE_NOT_FOUND;
	op->pay_rc = STORE_CONFLICT;
	op->pay_err = NULL;
	op->prov->pay.id = 12;
	op->prov->pay.state = PAY_PENDING;
	op->prov->call_state = STORE_CALL_ACCEPTED;
	o = done(&ss, op);
	CHECK(o.post == NULL); /* not funded again */
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_ADVICE_BATCH_RESP);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[0].code,
	             POS_CODE_DUPLICATE);
	CHECK(r.u.advice_batch_resp.results[0].has_orig_code);
	CHECK_EQ_INT(r.u.advice_batch_resp.results[0].orig_code,
	             POS_CODE_STORED);
	CHECK(r.u.advice_batch_resp.results[0].has_ref);
	CHECK_EQ_INT(ss.n_inflight, 0);
out:
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* BILL_PAY with an item code alone: its biller resolved first (the op
 * comes back as BILL_RESOLVE, no job.call); resolved, the bill goes on
 * as one named in full; an unknown item is UNKNOWN_BILLER, categories
 * not fetched RETRY_LATER, nothing created. */
static void
test_bill_item_only(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .bill_prep = fake_bill_prep,
	    .bill_store = fake_bill_store};
	static const enum svc_bill_outcome outs[3] = {
	    SVC_BILL_VALID, SVC_BILL_ITEM_UNKNOWN, SVC_BILL_UNANSWERED};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;
	int k;

	svc.pay = &pay;
	logged_in(&ss);
	for (k = 0; k < 3; k++) {
		o = bill_req(&ss, POS_MSG_BILL_PAY, "UB157", "4506", 150000,
		             566);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_RESOLVE &&
		      op->job.call == NULL);
		CHECK_EQ_INT(o.len, 0);
		if (op == NULL)
			break;
		CHECK_EQ_STR(op->bill.item_code, "UB157");
		CHECK_EQ_STR(op->bill.biller_code, "");
		CHECK(op->prov == NULL); /* nothing prepared yet */
		if (outs[k] == SVC_BILL_VALID)
			strlcpy_s(op->bill.biller_code, "BIL112",
			          sizeof op->bill.biller_code);
		op->check.outcome = outs[k];
		op->job.call_rc = STORE_OK;
		o = done(&ss, op);
		if (k == 0) {
			op = o.post;
			CHECK(op != NULL && op->kind == SVC_POS_OP_BILL &&
			      op->job.call != NULL && op->prov != NULL);
			CHECK_EQ_INT(o.len, 0);
			if (op == NULL)
				break;
			CHECK_EQ_STR(op->prov->bill.biller_code, "BIL112");
			CHECK_EQ_STR(op->prov->bill.item_code, "UB157");
			svc_pos_op_free(op); /* the rest is test_bills' */
			ss.n_inflight--;
			continue;
		}
		CHECK(o.post == NULL);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_BILL_PAY_RESP);
		CHECK_EQ_INT(r.u.bill_pay_resp.code,
		             k == 1 ? POS_CODE_UNKNOWN_BILLER
		                    : POS_CODE_RETRY_LATER);
		CHECK_EQ_INT(ss.n_inflight, 0);
	}
	/* a malformed item code alone is refused at once */
	o = bill_req(&ss, POS_MSG_BILL_PAY, "UB 157", "4506", 1, 566);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.bill_pay_resp.code, POS_CODE_UNKNOWN_BILLER);
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* BILL_PAY with a bounded wait: once funded the op comes back as
 * BILL_WAIT (nothing answered yet); the outcome brought back final is
 * answered (APPROVED with the token), else PENDING as without a wait. */
static void
test_bill_wait(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .bill_prep = fake_bill_prep,
	    .bill_store = fake_bill_store};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .account_by_id = fake_ngn_acct,
	                                     .prov_update = fake_update};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg r;
	int pass;

	svc.pay = &pay;
	svc.bill_wait_ms = 2000;
	logged_in(&ss);
	for (pass = 0; pass < 2; pass++) {
		o = bill_req(&ss, POS_MSG_BILL_PAY, "BIL112:UB157", "4506",
		             150000, 566);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL);
		if (op == NULL)
			break;
		op->job.call_rc = op->job.call(&fake, &op->job);
		o = done(&ss, op);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_FUND);
		if (op == NULL)
			break;
		op->job.res.rc = LEDGER_OK;
		op->job.res.txn_id = 77;
		o = done(&ss, op);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_WAIT &&
		      op->job.call == NULL);
		CHECK_EQ_INT(o.len, 0); /* the answer waits */
		if (op == NULL)
			break;
		CHECK_EQ_INT(op->prov->pay.state, PAY_PENDING);
		if (pass == 0) {
			/* the caller brings the payment back final */
			op->prov->pay.state = PAY_SUCCEEDED;
			strlcpy_s(op->prov->receipt, "1234-5678-9012",
			          sizeof op->prov->receipt);
		}
		op->job.call_rc = STORE_OK;
		o = done(&ss, op);
		CHECK(o.post == NULL);
		r = reply(&o);
		CHECK_EQ_INT(r.type, POS_MSG_BILL_PAY_RESP);
		CHECK_EQ_INT(r.u.bill_pay_resp.code,
		             pass == 0 ? POS_CODE_APPROVED : POS_CODE_PENDING);
		CHECK(r.u.bill_pay_resp.has_ref);
		CHECK(r.u.bill_pay_resp.has_token == (pass == 0));
		if (pass == 0 && r.u.bill_pay_resp.has_token)
			CHECK(r.u.bill_pay_resp.token.len == 14 &&
			      memcmp(r.u.bill_pay_resp.token.ptr,
			             "1234-5678-9012", 14) == 0);
		CHECK_EQ_INT(ss.n_inflight, 0);
	}
	svc.bill_wait_ms = 0;
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* ADVICE_BATCH with bills paid in cash offline: each good BILL_PAY goes
 * as an online one (written, funded), one at a time; the batch answer
 * has STORED with its BP- reference, or the refusal's code; CASH_IN
 * advised is DECLINED. */
static void
test_advice_bills(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .bill_prep = fake_bill_prep,
	    .bill_store = fake_bill_store};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .account_by_id = fake_ngn_acct,
	                                     .prov_update = fake_update};
	static const char *const billers[4] = {"BIL112:UB157", "BIL1:UB1/x",
	                                       "BIL112:UB157", NULL};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;
	const struct pos_advice_batch_resp *b = &r.u.advice_batch_resp;
	int k, kicks = n_kicks, updates = n_updates;
	size_t i;

	svc.pay = &pay;
	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_ADVICE_BATCH;
	m.u.advice_batch.n_items = 4;
	for (i = 0; i < 4; i++) {
		struct pos_advice *a = &m.u.advice_batch.items[i];

		a->txn_id[0] = (uint8_t)(0x40 + i);
		a->type = billers[i] != NULL ? POS_MSG_BILL_PAY : POS_MSG_CASH_IN;
		a->amount = 1000 * (i + 1);
		a->currency = 566;
		a->local_time_ms = 5;
		if (billers[i] != NULL) {
			a->has_biller = a->has_account = true;
			a->biller.ptr = (const uint8_t *)billers[i];
			a->biller.len = strlen(billers[i]);
			a->account.ptr = (const uint8_t *)"4506";
			a->account.len = 4;
		}
	}
	o = send_req(&ss, &m);
	CHECK_EQ_INT(ss.n_inflight, 1);
	/* item 0 then item 2 (item 1 has no item code: refused at once) */
	for (k = 0; k < 2; k++) {
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL &&
		      op->parent != NULL);
		if (op == NULL || op->parent == NULL)
			goto out;
		CHECK_EQ_INT(op->idx, k == 0 ? 0 : 2);
		CHECK_EQ_INT(op->amount, k == 0 ? 1000 : 3000);
		CHECK_EQ_INT(o.len, 0);
		bill_link_advice = false;
		op->job.call_rc = op->job.call(&fake, &op->job);
		CHECK(bill_link_advice);
		CHECK_EQ_INT(bill_link_type, POS_MSG_BILL_PAY);
		o = done(&ss, op);
		op = o.post;
		CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_FUND);
		if (op == NULL)
			goto out;
		op->job.res.rc = k == 0 ? LEDGER_OK : LEDGER_INSUFFICIENT_FUNDS;
		op->job.res.txn_id = k == 0 ? 78 : 0;
		o = done(&ss, op);
		if (k == 1) {
			op = o.post;
			CHECK(op != NULL && op->kind == SVC_POS_OP_BILL_DECLINE);
			if (op == NULL)
				goto out;
			op->job.call_rc = op->job.call(&fake, &op->job);
			o = done(&ss, op);
		}
	}
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_ADVICE_BATCH_RESP);
	CHECK_EQ_INT(b->n_results, 4);
	CHECK_EQ_INT(b->results[0].code, POS_CODE_STORED);
	CHECK(b->results[0].has_ref && b->results[0].ref.len > 3 &&
	      memcmp(b->results[0].ref.ptr, "BP-", 3) == 0);
	CHECK_EQ_INT(b->results[1].code, POS_CODE_UNKNOWN_BILLER);
	CHECK(!b->results[1].has_ref);
	CHECK_EQ_INT(b->results[2].code, POS_CODE_INSUFFICIENT_FLOAT);
	CHECK_EQ_INT(b->results[3].code, POS_CODE_DECLINED);
	CHECK_EQ_INT(b->results[2].txn_id[0], 0x42);
	CHECK_EQ_INT(n_kicks - kicks, 1);
	CHECK_EQ_INT(n_updates - updates, 1);
	CHECK_EQ_INT(ss.n_inflight, 0);
out:
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* ---- CASH_IN: prep, the accounts, then the hold creates the payment */

static const char *
fake_disb_prep(void *arg, const struct svc_collection *c, const char *ref,
               int64_t now_ms, struct store_prov *p, char *clearing,
               char *hold, size_t cap, const char **msg)
{
	const char *err = fake_prep(arg, c, ref, now_ms, p, clearing, cap, msg);

	if (err == NULL) {
		p->kind = STORE_PROV_DISBURSE;
		strlcpy_s(hold, "hold:mpesa", cap);
	}
	return err;
}

static enum store_rc
fake_disb_accounts(void *arg, struct store *st, struct store_prov *p,
                   const char *clearing, const char *hold,
                   const struct ledger_account *src, const char **err)
{
	(void)arg;
	(void)st;
	CHECK_EQ_STR(clearing, "clearing:mpesa");
	CHECK_EQ_STR(hold, "hold:mpesa");
	*err = NULL;
	p->target_account_id = src->id;
	p->clearing_account_id = 3;
	p->hold_account_id = 4;
	return STORE_OK;
}

static enum store_rc
fake_pay_none(struct store *st, const char *terminal_id, const uint8_t *txn,
              struct store_prov *out, struct store_pos_link *link)
{
	(void)st;
	(void)terminal_id;
	(void)txn;
	(void)link;
	memset(out, 0, sizeof *out);
	out->pay.id = 31;
	out->pay.state = PAY_PENDING;
	return n_stores++ == 0 ? STORE_NOT_FOUND : STORE_OK;
}

static void
test_cash_in(void)
{
	static const struct svc_pos_pay pay = {
	    .collect_prep = fake_prep,
	    .collect_store = fake_store,
	    .kick = fake_kick,
	    .disb_prep = fake_disb_prep,
	    .disb_accounts = fake_disb_accounts};
	static const struct store_ops ops = {.pos_txn_get = fake_txn_get,
	                                     .account_by_id = fake_acct,
	                                     .pos_pay_get = fake_pay_none};
	struct store fake = {.ops = &ops};
	struct svc_pos_session ss;
	struct svc_pos_out o;
	struct svc_pos_op *op;
	struct pos_msg m, r;
	int kicks = n_kicks;

	n_stores = 0;
	svc.pay = &pay;
	logged_in(&ss);
	memset(&m, 0, sizeof m);
	m.type = POS_MSG_CASH_IN;
	memcpy(m.u.cash_in.txn_id, TXN, POS_ID_LEN);
	m.u.cash_in.amount = 500;
	m.u.cash_in.currency = 404;
	m.u.cash_in.msisdn.ptr = (const uint8_t *)"254708374149";
	m.u.cash_in.msisdn.len = 12;
	/* no provider: there is no soko wallet */
	o = send_req(&ss, &m);
	CHECK(o.post == NULL);
	r = reply(&o);
	CHECK_EQ_INT(r.u.cash_in_resp.code, POS_CODE_UNKNOWN_PROVIDER);
	m.u.cash_in.has_provider = true;
	m.u.cash_in.provider.ptr = (const uint8_t *)"mpesa";
	m.u.cash_in.provider.len = 5;
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_CASH_IN);
	if (op == NULL)
		goto out;
	op->job.call_rc = op->job.call(&fake, &op->job);
	o = done(&ss, op);
	op = o.post;
	/* the hold: float -500, holding +500, the payment and its link
	 * created by the same request, limits counted */
	CHECK(op != NULL && op->kind == SVC_POS_OP_CASH_IN_HOLD);
	if (op == NULL)
		goto out;
	CHECK_EQ_INT(o.len, 0);
	CHECK(op->job.req.prov_new == op->prov);
	CHECK_EQ_INT(op->prov->pos.type, POS_MSG_CASH_IN);
	CHECK_EQ_INT(op->job.req.legs[0].account_id, 10);
	CHECK_EQ_INT(op->job.req.legs[0].amount_minor, -500);
	CHECK_EQ_INT(op->job.req.legs[1].account_id, 4);
	CHECK_EQ_INT(op->job.req.limit_amount, 500);
	CHECK_EQ_INT(op->job.req.subjects[0].kind, LEDGER_SUBJ_MSISDN);
	CHECK_EQ_INT(op->job.req.subjects[1].kind, LEDGER_SUBJ_TERMINAL);
	CHECK_EQ_INT(op->job.req.subjects[2].kind, LEDGER_SUBJ_AGENT);
	op->job.res.rc = LEDGER_OK;
	op->job.res.txn_id = 40;
	o = done(&ss, op);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_CASH_IN_GET);
	CHECK_EQ_INT(n_kicks - kicks, 1);
	if (op == NULL)
		goto out;
	op->job.call_rc = op->job.call(&fake, &op->job);
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.type, POS_MSG_CASH_IN_RESP);
	CHECK_EQ_INT(r.u.cash_in_resp.code, POS_CODE_PENDING);
	CHECK(r.u.cash_in_resp.has_ref && r.u.cash_in_resp.ref.len == 5 &&
	      memcmp(r.u.cash_in_resp.ref.ptr, "CI-31", 5) == 0);
	CHECK_EQ_INT(ss.n_inflight, 0);
	/* the hold refused by the float: nothing created, its code */
	o = send_req(&ss, &m);
	op = o.post;
	CHECK(op != NULL);
	if (op == NULL)
		goto out;
	n_stores = 0;
	op->job.call_rc = op->job.call(&fake, &op->job);
	o = done(&ss, op);
	op = o.post;
	CHECK(op != NULL && op->kind == SVC_POS_OP_CASH_IN_HOLD);
	if (op == NULL)
		goto out;
	op->job.res.rc = LEDGER_LIMIT_DAILY;
	o = done(&ss, op);
	r = reply(&o);
	CHECK_EQ_INT(r.u.cash_in_resp.code, POS_CODE_LIMIT_EXCEEDED);
	CHECK_EQ_INT(ss.n_inflight, 0);
out:
	svc.pay = NULL;
	svc_pos_session_fini(&ss);
}

/* The state of a provider payment as the terminal sees it. */
static void
test_pay_code(void)
{
	static const struct {
		uint8_t state;
		const char *code;
		enum pos_code want;
	} cases[] = {
	    {PAY_CREATED, "", POS_CODE_PENDING},
	    {PAY_PENDING, "", POS_CODE_PENDING},
	    {PAY_UNKNOWN, "deadline", POS_CODE_PENDING},
	    {PAY_SUCCEEDED, "0", POS_CODE_APPROVED},
	    {PAY_REVERSED, "0", POS_CODE_REVERSED},
	    {PAY_FAILED, "1032", POS_CODE_CUSTOMER_DECLINED},
	    {PAY_FAILED, "APPROVAL_REJECTED", POS_CODE_CUSTOMER_DECLINED},
	    {PAY_FAILED, "1037", POS_CODE_EXPIRED},
	    {PAY_FAILED, "EXPIRED", POS_CODE_EXPIRED},
	    {PAY_FAILED, "1", POS_CODE_DECLINED},
	    {PAY_FAILED, "not_sent", POS_CODE_DECLINED},
	    {PAY_FAILED, "", POS_CODE_DECLINED},
	};
	struct store_prov p;
	char ref[PAYMENT_REF_MAX + 1];
	uint8_t id[POS_ID_LEN];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(&p, 0, sizeof p);
		p.pay.state = cases[i].state;
		strlcpy_s(p.result_code, cases[i].code, sizeof p.result_code);
		CHECK_EQ_INT(svc_pos_pay_code(&p), cases[i].want);
	}
	memset(id, 0xff, sizeof id);
	svc_pos_pay_ref(ref, "T1", id);
	CHECK_EQ_STR(ref, "pos:T1:_____________________w");
	/* the longest terminal id fits a payment ref */
	svc_pos_pay_ref(ref, "T234567890123456789012345678901X", id);
	CHECK_EQ_INT(strlen(ref), 59);
}

int
main(void)
{
	static const struct store_ops lops = {.limit_list = fake_limit_list,
	                                      .usage_load = fake_usage_load};
	static struct store lst = {.ops = &lops};
	char err[64];

	log_set_levels("error", err, sizeof err);
	if ((svc.lg = ledger_new(&lst, err, sizeof err)) == NULL)
		return 1;
	RUN(test_reversal_tombstone);
	RUN(test_advice_batch);
	RUN(test_eod);
	RUN(test_receipt);
	RUN(test_status_reader);
	RUN(test_status_in_flight);
	RUN(test_agent_refresh_ahead);
	RUN(test_rpc_keys);
	RUN(test_status_legacy_key);
	RUN(test_collect);
	RUN(test_collect_key_taken);
	RUN(test_pay_code);
	RUN(test_bills);
	RUN(test_advice_bills);
	RUN(test_bill_wait);
	RUN(test_bill_item_only);
	RUN(test_advice_bill_repeat);
	RUN(test_cash_in);
	ledger_free(svc.lg);
	return check_report("svc_pos");
}
