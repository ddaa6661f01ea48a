/*
 * svc_pos.c - POS terminal service decisions (svc_pos.h,
 * docs/pos-protocol.md §3, §4, §9).
 *
 * Served in this increment: LOGIN, ECHO, FLOAT_TRANSFER, STATUS (and
 * COLLECT_RESULT_ACK is accepted silently).  Every other request type is
 * refused T|0xC000 UNSUPPORTED_TYPE: the terminal knows the feature is
 * absent and that nothing was processed (§6.1, §8).
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

#include "keywrap.h"
#include "log.h"
#include "util.h"

#define RETRY_AFTER_S 1

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
	if (op == NULL)
		return;
	if (op->login_auth != NULL) {
		explicit_bzero(op->login_auth, op->login_auth_len);
		free(op->login_auth);
	}
	explicit_bzero(op, sizeof *op);
	free(op);
}

void
svc_pos_idem_key(char *dst, const char *terminal_id,
                 const uint8_t txn_id[POS_ID_LEN])
{
	char hex[2 * POS_ID_LEN + 1];

	util_hex(hex, txn_id, POS_ID_LEN);
	snprintf(dst, LEDGER_KEY_MAX + 1, "pos:%s:%s", terminal_id, hex);
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

/* The result keys of a FLOAT_TRANSFER_RESP or STATUS_RESP (same layout:
 * POS_RESULT in pos_msg.def), filled through the float_transfer_resp
 * member. */
static void
send_result(struct svc_pos_session *ss, struct svc_pos_out *out,
            uint16_t resp_type, uint32_t req_id, enum pos_code code,
            const uint8_t txn_id[POS_ID_LEN], int64_t ledger_txn,
            int64_t time_ms, int orig_code, const char *text,
            const struct store_txn_info *info)
{
	struct pos_msg m;
	char ref[24];

	memset(&m, 0, sizeof m);
	m.type = resp_type;
	if (resp_type == POS_MSG_STATUS_RESP) {
		struct pos_status_resp *r = &m.u.status_resp;

		r->code = code;
		memcpy(r->txn_id, txn_id, POS_ID_LEN);
		if (ledger_txn > 0) {
			snprintf(ref, sizeof ref, "FT-%lld",
			         (long long)ledger_txn);
			r->has_ref = true;
			r->ref.ptr = (const uint8_t *)ref;
			r->ref.len = strlen(ref);
		}
		if (time_ms > 0) {
			r->has_time_ms = true;
			r->time_ms = (uint64_t)time_ms;
		}
		if (info != NULL) {
			uint8_t i;

			if (info->kind == LEDGER_TXN_FLOAT_TRANSFER) {
				r->has_type = true;
				r->type = POS_MSG_FLOAT_TRANSFER;
			}
			for (i = 0; i < info->n_legs; i++)
				if (info->legs[i].amount_minor > 0) {
					r->has_amount = true;
					r->amount += (uint64_t)info->legs[i]
					                 .amount_minor;
				}
			r->has_currency = true;
			r->currency = info->currency;
		}
	} else {
		struct pos_float_transfer_resp *r = &m.u.float_transfer_resp;

		r->code = code;
		memcpy(r->txn_id, txn_id, POS_ID_LEN);
		if (ledger_txn > 0) {
			snprintf(ref, sizeof ref, "FT-%lld",
			         (long long)ledger_txn);
			r->has_ref = true;
			r->ref.ptr = (const uint8_t *)ref;
			r->ref.len = strlen(ref);
		}
		if (time_ms > 0) {
			r->has_time_ms = true;
			r->time_ms = (uint64_t)time_ms;
		}
		if (orig_code >= 0) {
			r->has_orig_code = true;
			r->orig_code = (uint64_t)orig_code;
		}
		if (text != NULL) {
			r->has_text = true;
			r->text.ptr = (const uint8_t *)text;
			r->text.len = strlen(text);
		}
	}
	send_msg(ss, out, &m, req_id, MAC_KS, NULL);
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

	return st->ops->terminal_get(st, op->terminal_id, &op->term);
}

static enum store_rc
resolve_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;

	return st->ops->agent_get(st, op->to_agent, &op->agent);
}

static enum store_rc
status_call(struct store *st, struct dbq_job *job)
{
	struct svc_pos_op *op = (struct svc_pos_op *)job;
	char key[LEDGER_KEY_MAX + 1];
	enum store_rc rc;

	svc_pos_idem_key(key, op->terminal_id, op->txn_id);
	rc = st->ops->idem_lookup(st, key, &op->idem);
	if (rc != STORE_OK || op->idem.txn_id <= 0)
		return rc;
	/* the amount and type are nice to have: a failure here still
	 * answers the outcome */
	op->has_info =
	    st->ops->txn_info(st, op->idem.txn_id, &op->info) == STORE_OK;
	return STORE_OK;
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

/* ------------------------------------------------------------- frames */

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
	op->job.call = login_call;
	ss->is_login_pending = true;
	out->post = op;
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

static void
on_float_transfer(struct svc_pos *s, struct svc_pos_session *ss,
                  const struct pos_frame *f, const struct pos_msg *m,
                  struct svc_pos_out *out)
{
	const struct pos_float_transfer *ft = &m->u.float_transfer;
	struct svc_pos_op *op;

	if (inflight_full(s, ss, f, out))
		return;
	if (ft->amount == 0) {
		send_result(ss, out, POS_MSG_FLOAT_TRANSFER_RESP, f->hdr.req_id,
		            POS_CODE_AMOUNT_INVALID, ft->txn_id, 0, 0, -1, NULL,
		            NULL);
		return;
	}
	if (ft->to_agent.len == 0 || ft->to_agent.len > STORE_POS_ID_MAX ||
	    memchr(ft->to_agent.ptr, '\0', ft->to_agent.len) != NULL) {
		send_result(ss, out, POS_MSG_FLOAT_TRANSFER_RESP, f->hdr.req_id,
		            POS_CODE_UNKNOWN_AGENT, ft->txn_id, 0, 0, -1, NULL,
		            NULL);
		return;
	}
	op = op_new(s, SVC_POS_OP_XFER_RESOLVE, f->hdr.type, f->hdr.req_id);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	memcpy(op->to_agent, ft->to_agent.ptr, ft->to_agent.len);
	memcpy(op->txn_id, ft->txn_id, POS_ID_LEN);
	op->amount = ft->amount;
	op->currency = (uint16_t)ft->currency;
	op->job.call = resolve_call;
	ss->n_inflight++;
	out->post = op;
}

static void
on_status(struct svc_pos *s, struct svc_pos_session *ss,
          const struct pos_frame *f, const struct pos_msg *m,
          struct svc_pos_out *out)
{
	struct svc_pos_op *op;

	if (inflight_full(s, ss, f, out))
		return;
	op = op_new(s, SVC_POS_OP_STATUS, f->hdr.type, f->hdr.req_id);
	strlcpy_s(op->terminal_id, ss->terminal_id, sizeof op->terminal_id);
	memcpy(op->txn_id, m->u.status.txn_id, POS_ID_LEN);
	op->job.call = status_call;
	ss->n_inflight++;
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
		on_float_transfer(s, ss, f, &m, out);
		return;
	case POS_MSG_STATUS:
		on_status(s, ss, f, &m, out);
		return;
	case POS_MSG_COLLECT_RESULT_ACK:
		return; /* nothing is pushed yet; an ack needs no answer */
	default:
		/* known to the catalogue, not served yet (docs/pos-protocol.md
		 * §12): nothing was processed, the terminal may retry later */
		log_msg(LOG_POS, LOG_LEVEL_INFO,
		        "event=refused peer=%s terminal=%s type=%s req_id=%u "
		        "code=unsupported_type why=\"not served yet\"",
		        ss->peer, ss->terminal_id, pos_msg_name(f->hdr.type),
		        (unsigned)f->hdr.req_id);
		send_error(ss, out, f->hdr.type, f->hdr.req_id,
		           POS_CODE_UNSUPPORTED_TYPE, MAC_KS, NULL);
		return;
	}
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
	strlcpy_s(ss->terminal_id, op->terminal_id, sizeof ss->terminal_id);
	strlcpy_s(ss->agent_code, op->term.agent.code, sizeof ss->agent_code);
	ss->float_account_id = op->term.agent.float_account_id;
	ss->last_rx = 0;
	ss->next_tx = 1;
	ss->state = SVC_POS_LOGGED_IN;
	log_msg(LOG_POS, LOG_LEVEL_INFO,
	        "event=login peer=%s terminal=%s agent=%s session=%llu",
	        ss->peer, ss->terminal_id, ss->agent_code,
	        (unsigned long long)ss->session_id);
out:
	explicit_bzero(kt, sizeof kt);
	svc_pos_op_free(op);
}

/* to_agent resolved: build the ledger request, or answer now. */
static void
resolve_done(struct svc_pos_session *ss, struct svc_pos_op *op,
             struct svc_pos_out *out)
{
	struct ledger_req *r = &op->job.req;
	enum pos_code code = POS_CODE_APPROVED;
	const char *text = NULL;

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
		send_result(ss, out, POS_MSG_FLOAT_TRANSFER_RESP, op->req_id,
		            code, op->txn_id, 0, 0, -1, text, NULL);
		ss->n_inflight--;
		svc_pos_op_free(op);
		return;
	}
	memset(r, 0, sizeof *r);
	svc_pos_idem_key(r->idem_key, op->terminal_id, op->txn_id);
	r->kind = LEDGER_TXN_FLOAT_TRANSFER;
	r->currency = op->currency;
	r->n_legs = 2;
	r->legs[0].account_id = ss->float_account_id;
	r->legs[0].amount_minor = -(int64_t)op->amount;
	r->legs[1].account_id = op->agent.float_account_id;
	r->legs[1].amount_minor = (int64_t)op->amount;
	r->limit_amount = (int64_t)op->amount;
	r->subjects[0].kind = LEDGER_SUBJ_TERMINAL;
	strlcpy_s(r->subjects[0].id, op->terminal_id, sizeof r->subjects[0].id);
	r->subjects[1].kind = LEDGER_SUBJ_AGENT;
	strlcpy_s(r->subjects[1].id, ss->agent_code, sizeof r->subjects[1].id);
	snprintf(r->memo, sizeof r->memo, "pos float_transfer %s -> %s",
	         ss->agent_code, op->to_agent);
	ledger_req_hash(r);
	op->kind = SVC_POS_OP_XFER;
	op->job.call = NULL;
	out->post = op;
}

static void
xfer_done(struct svc_pos_session *ss, struct svc_pos_op *op,
          struct svc_pos_out *out)
{
	const struct ledger_result *res = &op->job.res;
	enum pos_code code = svc_pos_code(res->rc);
	int orig = -1;

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
	send_result(ss, out, POS_MSG_FLOAT_TRANSFER_RESP, op->req_id, code,
	            op->txn_id, res->txn_id,
	            res->rc == LEDGER_RETRY ? 0 : res->created_ms, orig, NULL,
	            NULL);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

static void
status_done(struct svc_pos_session *ss, struct svc_pos_op *op,
            struct svc_pos_out *out)
{
	enum pos_code code;

	if (op->job.call_rc == STORE_NOT_FOUND)
		code = POS_CODE_UNKNOWN_TXN;
	else if (op->job.call_rc != STORE_OK)
		code = POS_CODE_RETRY_LATER;
	else
		code = svc_pos_code((enum ledger_rc)op->idem.rc);
	if (op->job.call_rc == STORE_OK)
		send_result(ss, out, POS_MSG_STATUS_RESP, op->req_id, code,
		            op->txn_id, op->idem.txn_id, op->idem.created_ms,
		            -1, NULL, op->has_info ? &op->info : NULL);
	else
		send_result(ss, out, POS_MSG_STATUS_RESP, op->req_id, code,
		            op->txn_id, 0, 0, -1, NULL, NULL);
	ss->n_inflight--;
	svc_pos_op_free(op);
}

void
svc_pos_done(struct svc_pos *s, struct svc_pos_session *ss,
             struct svc_pos_op *op, int64_t now_ms, struct svc_pos_out *out)
{
	out->len = 0;
	out->is_close = false;
	out->post = NULL;
	if (ss->state == SVC_POS_CLOSING) {
		/* the connection is going: a committed transfer stays
		 * committed; the terminal learns it by STATUS or resend */
		if (op->kind != SVC_POS_OP_LOGIN && ss->n_inflight > 0)
			ss->n_inflight--;
		ss->is_login_pending = false;
		svc_pos_op_free(op);
		return;
	}
	switch (op->kind) {
	case SVC_POS_OP_LOGIN:
		login_done(s, ss, op, now_ms, out);
		return;
	case SVC_POS_OP_XFER_RESOLVE:
		resolve_done(ss, op, out);
		return;
	case SVC_POS_OP_XFER:
		xfer_done(ss, op, out);
		return;
	case SVC_POS_OP_STATUS:
		status_done(ss, op, out);
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
