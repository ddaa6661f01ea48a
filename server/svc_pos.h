/*
 * svc_pos.h - the POS terminal service: what sokod does with each decoded
 * frame of a terminal connection (docs/pos-protocol.md §3, §4, §9).
 *
 * Layer: svc_ (STYLE.md §1).  No libevent and no sockets: net_pos.c
 * decodes frames, calls svc_pos_frame(), writes out->buf, posts out->post
 * to the storage writer, and hands the finished job back to
 * svc_pos_done().  Time is a parameter.  Storage is reached only through
 * dbq jobs whose call functions (worker thread) live here.
 *
 * Session states: CONNECTED -> LOGGED_IN -> CLOSING (§3.1).  Keys (K_t,
 * K_s) never leave this file's structs, are wiped by svc_pos_session_fini
 * and svc_pos_op_free, and are never logged.
 */
#ifndef SOKO_SVC_POS_H
#define SOKO_SVC_POS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dbq.h"
#include "pos.h"
#include "store.h"
#include "svc_bill.h"

enum svc_pos_state {
	SVC_POS_CONNECTED,  /* accepted; only LOGIN is allowed */
	SVC_POS_LOGGED_IN,  /* K_s agreed; requests are served */
	SVC_POS_CLOSING,    /* flush what is queued, read nothing, close */
	SVC_POS_STATE_COUNT /* sentinel: not a state */
};

/*
 * The loop thread's cache of active agents (to_agent -> float account),
 * so a FLOAT_TRANSFER to a known agent goes to the storage writer once
 * (its ledger request) instead of twice (agent lookup, then ledger).  An
 * entry lives SVC_POS_AGENT_TTL_MS from its read: an agent blocked in the
 * database is refused by new transfers at most that much later.  A
 * transfer served from an entry past half its life also asks for the
 * agent to be read again (SVC_POS_OP_AGENT_REFRESH, out->refresh: one at
 * a time per entry, on a reader when there is one), so an agent in use
 * stays cached and its transfers never wait for a lookup of their own;
 * before, every transfer to it that arrived while its entry was expired
 * made one (a storm on a loaded PostgreSQL: two round trips each on the
 * writer).  Direct-mapped, no allocation.
 */
#define SVC_POS_AGENT_SLOTS  4096
#define SVC_POS_AGENT_TTL_MS 1000
/*
 * Requests of several steps still in flight in this process (a transfer
 * whose payee is looked up first, COLLECT, CASH_OUT, CASH_IN, BILL_PAY):
 * chained by a hash of (terminal, txn_id), so that a STATUS or RECEIPT
 * the writer finds no row for answers RETRY_LATER instead of
 * UNKNOWN_TXN while such a request has not reached its first commit
 * (docs/pos-protocol.md §6.12).  A transfer posted straight to the
 * ledger is not listed: the writer runs a later lookup after its commit.
 * The slot count bounds nothing but chain lengths (in-flight requests
 * are bounded by connections × pos_max_inflight).
 */
#define SVC_POS_INFLIGHT_SLOTS 4096

struct svc_pos_agent_slot {
	char code[STORE_POS_ID_MAX + 1]; /* "" = empty */
	int64_t float_account_id;
	int64_t expires_ms;
	int64_t refresh_ms; /* a refresh of this slot posted then; 0: none */
};

struct ledger_account;
struct svc_collection;
struct svc_bill_pay;

/*
 * The payment service (net_prov.h "in-process payments", reached through
 * net_pos.c) for the provider-backed requests (COLLECT, CASH_OUT).  NULL
 * in struct svc_pos: they are answered UNSUPPORTED_TYPE.  Tests replace
 * it.
 */
struct svc_pos_pay {
	void *arg;
	/* loop thread: net_prov_collect_prep */
	const char *(*collect_prep)(void *arg, const struct svc_collection *c,
	                            const char *ref, int64_t now_ms,
	                            struct store_prov *p, char *clearing,
	                            size_t cap, const char **msg);
	/* storage worker: net_prov_collect_store */
	enum store_rc (*collect_store)(void *arg, struct store *st,
	                               struct store_prov *p,
	                               const char *clearing_code,
	                               const struct ledger_account *target,
	                               const struct store_pos_link *link,
	                               const char **err_code);
	/* loop thread: a payment was created, send it now */
	void (*kick)(void *arg);
	/* CASH_IN (NULL: UNSUPPORTED_TYPE).  loop thread:
	 * net_prov_disburse_prep; worker: net_prov_disburse_accounts */
	const char *(*disb_prep)(void *arg, const struct svc_collection *c,
	                         const char *ref, int64_t now_ms,
	                         struct store_prov *p, char *clearing,
	                         char *hold, size_t cap, const char **msg);
	enum store_rc (*disb_accounts)(void *arg, struct store *st,
	                               struct store_prov *p,
	                               const char *clearing_code,
	                               const char *hold_code,
	                               const struct ledger_account *src,
	                               const char **err_code);
	/* bills (NULL: BILL_VALIDATE and BILL_PAY are UNSUPPORTED_TYPE).
	 * loop thread: net_bill_prep; worker: net_bill_store.  The
	 * validation call (op SVC_POS_OP_BILL_CHECK) is made by the caller
	 * of svc_pos (net_pos.c) with net_bill_validate, which fills
	 * op->check and completes the op like a storage job.  So is the
	 * resolution of an item code alone (SVC_POS_OP_BILL_RESOLVE,
	 * net_bill_resolve): op->bill.biller_code filled and
	 * op->check.outcome SVC_BILL_VALID, or the outcome that refuses
	 * it. */
	const char *(*bill_prep)(void *arg, const struct svc_bill_pay *b,
	                         const char *ref, int64_t now_ms,
	                         struct store_prov *p);
	enum store_rc (*bill_store)(void *arg, struct store *st,
	                            struct store_prov *p,
	                            const struct ledger_account *src,
	                            const struct store_pos_link *link,
	                            const char **err_code);
};

/* COLLECT_RESULTs pushed per round (each < 200 bytes: they share one
 * output buffer of POS_FRAME_MAX). */
#define SVC_POS_RESULTS_MAX 16

/* One per listener.  Borrowed by every session and op. */
struct svc_pos {
	const uint8_t *kek;    /* POS_KEY_LEN bytes: unwraps K_t */
	uint32_t heartbeat_s;  /* told to terminals in LOGIN_OK */
	uint32_t max_inflight; /* requests unanswered per connection */
	uint64_t next_session_id;
	/* CSPRNG for server nonces: RAND_bytes-like, 1 on success.  Tests
	 * replace it to reproduce the spec's vectors. */
	int (*rand_bytes)(unsigned char *buf, int n);
	/* Wall clock (UTC ms) read on the storage worker for EOD_TOTALS,
	 * whose window must include every commit before it; tests replace
	 * it. */
	int64_t (*clock_ms)(void);
	struct svc_pos_agent_slot agents[SVC_POS_AGENT_SLOTS];
	struct svc_pos_op *inflight[SVC_POS_INFLIGHT_SLOTS]; /* chains */
	const struct svc_pos_pay *pay; /* NULL: no provider operations */
	/* BILL_PAY (online): once funded, the op comes back as
	 * SVC_POS_OP_BILL_WAIT (job.call NULL) for the caller to wait at
	 * most this long for the payment's final state: it copies the
	 * payment as written into op->prov if it ends in time, then
	 * completes the op like a storage job (call_rc STORE_OK).  0: no
	 * wait, PENDING at once. */
	uint32_t bill_wait_ms;
	/* the storage writer's ledger: COLLECT and CASH_OUT check the
	 * terminal's and the agent's limits with it on the worker
	 * (ledger_limits_check) */
	struct ledger *lg;
};

/*
 * One connection's session.  Kept small: an idle logged-in terminal costs
 * its struct conn (net_pos.c) and this, nothing else (pos.idle_conn_bytes,
 * docs/benchmarks.md), so fields are ordered by size and narrow.
 */
struct svc_pos_session {
	uint8_t ks[POS_KEY_LEN]; /* session key; wiped by _fini */
	uint64_t session_id;
	uint64_t last_rx;         /* last accepted terminal counter */
	uint64_t next_tx;         /* next counter the server sends */
	int64_t float_account_id; /* the agent's float */
	char terminal_id[STORE_POS_ID_MAX + 1]; /* after LOGIN_OK */
	char agent_code[STORE_POS_ID_MAX + 1];
	/* "ADDR:PORT", for logs; set by the caller (an IPv6 address with
	 * its port fits: INET6_ADDRSTRLEN - 1 + ":65535") */
	char peer[52];
	uint16_t n_inflight;   /* requests posted, not yet answered */
	uint8_t state;         /* enum svc_pos_state */
	bool is_login_pending; /* LOGIN posted, its lookup not back yet */
	/* COLLECT_RESULT delivery (svc_pos_results): a lookup is posted;
	 * another is wanted when it is back; the last round was full */
	bool is_results_pending, is_results_again, is_results_full;
};

enum svc_pos_op_kind {
	SVC_POS_OP_LOGIN,        /* call: terminal_get */
	SVC_POS_OP_XFER_RESOLVE, /* call: agent_get(to_agent) */
	SVC_POS_OP_XFER,         /* ledger request */
	SVC_POS_OP_STATUS,       /* call: pos_txn_get, else idem_lookup */
	SVC_POS_OP_REV_LOOKUP,   /* call: pos_txn_get of the target */
	SVC_POS_OP_REV,          /* ledger: reversal or tombstone */
	SVC_POS_OP_RECEIPT,      /* call: pos_txn_get */
	SVC_POS_OP_EOD,          /* call: pos_batch_close + pos_totals */
	SVC_POS_OP_ADVICE,       /* call: pos_txn_get + agent_get per item */
	SVC_POS_OP_ADVICE_ITEM,  /* ledger: one item of parent's batch */
	SVC_POS_OP_COLLECT,      /* call: pos_txn_get, then the payment */
	SVC_POS_OP_RESULTS,      /* call: pos_pay_results (server's own) */
	SVC_POS_OP_ACK,          /* call: pos_pay_ack (no answer) */
	SVC_POS_OP_CASH_IN,      /* call: pos_txn_get, the accounts */
	SVC_POS_OP_CASH_IN_HOLD, /* ledger: the hold, creating the payment */
	SVC_POS_OP_CASH_IN_GET,  /* call: pos_pay_get (its id) */
	SVC_POS_OP_BILL_CHECK,   /* the validation call (see svc_pos_pay) */
	SVC_POS_OP_BILL,         /* call: pos_txn_get, then the bill row */
	SVC_POS_OP_BILL_FUND,    /* ledger: the funding (float -> holding) */
	SVC_POS_OP_BILL_DECLINE, /* call: prov_update (funding declined) */
	SVC_POS_OP_BILL_WAIT,    /* the wait for the bill's outcome (see
	                            svc_pos.bill_wait_ms) */
	SVC_POS_OP_BILL_RESOLVE, /* BILL_PAY with an item code alone: its
	                            biller from the categories (see
	                            svc_pos_pay), then SVC_POS_OP_BILL */
	SVC_POS_OP_AGENT_REFRESH, /* call: agent_get (the server's own:
	                             the agent cache's refresh-ahead) */
};

/* One ADVICE_BATCH item on its way (§6.15). */
struct svc_pos_advice {
	uint8_t txn_id[POS_ID_LEN];
	uint16_t type;
	uint64_t amount;
	uint16_t currency;
	int64_t local_time_ms;
	char to_agent[STORE_POS_ID_MAX + 1];
	bool is_decided;    /* code/orig_code/ledger_txn final */
	uint8_t code;       /* enum pos_code */
	int orig_code;      /* with DUPLICATE, else -1 */
	int64_t ledger_txn; /* for ref, or 0 */
	/* BILL_PAY: waits its turn (is_bill, code RETRY_LATER until then:
	 * an item never reached is sent again); its biller, item and
	 * customer; the payment's reference and token once known */
	bool is_bill;
	struct svc_bill_validate bill;
	char ref[24];
	char token[65];
	/* read by the ADVICE call (worker thread) */
	enum store_rc found_rc; /* pos_txn_get */
	struct store_pos_txn found;
	enum store_rc agent_rc; /* agent_get(to_agent) */
	struct store_agent agent;
};

/* One request on its way through storage.  Owned by the connection until
 * posted, by dbq until done, then by svc_pos_done(). */
struct svc_pos_op {
	struct dbq_job job; /* job.arg, job.done: the caller's */
	enum svc_pos_op_kind kind;
	int64_t rx_us; /* the caller's: when its request was read (metrics) */
	/* a read-only call (LOGIN, STATUS, RECEIPT): the caller may run it
	 * on a reader connection instead of the storage writer, and clears
	 * it when it posts to the writer.  A reader's miss or failure goes
	 * back to the writer (svc_pos_done returns it in out->post), so an
	 * answer is never older than what the writer would have given. */
	bool is_read;
	bool is_rpc; /* LOGIN: a trusted session for /rpc, no LOGIN frame */
	/* is_rpc with a partner key: its hash, and the key read with the
	 * terminal (rpc_key_rc) */
	bool has_rpc_key;
	uint8_t rpc_key_hash[STORE_RPC_KEY_HASH_LEN];
	enum store_rc rpc_key_rc;
	struct store_rpc_key rpc_key;
	const struct svc_pos *svc;
	/* listed in svc->inflight (SVC_POS_INFLIGHT_SLOTS) until freed:
	 * its chain's head (NULL: not listed), next, (terminal, txn_id)
	 * hash */
	struct svc_pos_op **inflight_head, *inflight_next;
	uint32_t inflight_hash;
	uint16_t type; /* the request's type */
	uint32_t req_id;
	char terminal_id[STORE_POS_ID_MAX + 1];
	char to_agent[STORE_POS_ID_MAX + 1];
	uint8_t txn_id[POS_ID_LEN];
	uint64_t amount;
	uint16_t currency;
	/* LOGIN: the frame's MAC'd bytes and MAC, checked once K_t is known */
	uint8_t client_nonce[POS_NONCE_LEN];
	uint8_t *login_auth; /* malloc'd copy */
	size_t login_auth_len;
	uint8_t login_mac[POS_MAC_LEN];
	/* results of the call functions (worker thread) */
	struct store_terminal term;
	struct store_agent agent;
	struct store_idem idem;
	struct store_txn_info info;
	bool has_info;
	/* POS row: the one this request writes (ledger_req.pos) ... */
	struct store_pos_txn row;
	/* ... and the one a call read (STATUS, REVERSAL, RECEIPT) */
	enum store_rc found_rc;
	struct store_pos_txn found;
	uint8_t n_retry;   /* lookups repeated after a lost race */
	bool is_fast;      /* XFER posted from the agent cache, unresolved */
	bool is_tombstone; /* SVC_POS_OP_REV: the tombstone, not a reversal */
	/* EOD_TOTALS */
	int64_t batch_no;
	bool is_repeat;
	int64_t closed_ms;
	struct store_pos_total totals[POS_TOTALS_MAX];      /* the server's */
	size_t n_totals;                                    /* may exceed cap */
	struct store_pos_total term_totals[POS_TOTALS_MAX]; /* terminal's */
	size_t n_term_totals;
	/* ADVICE_BATCH: the parent owns items; each ledger child points
	 * back to it, and the last child to go frees it */
	struct svc_pos_advice *items; /* parent: malloc'd [n_items] */
	size_t n_items;
	size_t n_children;         /* parent: children not yet freed */
	struct svc_pos_op *parent; /* child */
	size_t idx;                /* child: its item */
	/* COLLECT, CASH_OUT: the provider payment (malloc'd), its POS link
	 * and clearing account; the outcome of the call */
	struct store_prov *prov;
	struct store_pos_link link;
	uint8_t want[32]; /* the request's content hash (§9.1) */
	bool is_replay;   /* CASH_IN: the hold was a repeat */
	char clearing[64], hold[64];
	int64_t float_account_id;
	const char *pay_err;   /* collect_store's error code, or NULL */
	enum store_rc pay_rc;  /* OK created, CONFLICT: prov is the stored */
	bool is_float_wrong;   /* the agent float's currency differs */
	enum ledger_rc limit_rc; /* COLLECT, CASH_OUT: ledger_limits_check */
	/* BILL_VALIDATE, BILL_PAY: the biller, item and customer; the
	 * validation's answer; the funding's update and outcome */
	struct svc_bill_validate bill;
	struct svc_bill_check check;
	struct store_prov_update upd;
	enum ledger_rc fund_rc;
	/* RESULTS: malloc'd [SVC_POS_RESULTS_MAX] each */
	struct store_prov *results;
	struct store_pos_link *links;
	size_t n_results;
};

/* What the caller does next.  buf/cap are the caller's. */
struct svc_pos_out {
	uint8_t *buf; /* in: room for one frame (POS_FRAME_MAX) */
	size_t cap;
	size_t len;              /* out: frame bytes to send (0: none) */
	bool is_close;           /* out: close once the output is flushed */
	struct svc_pos_op *post; /* out: post post->job (caller sets
	                            job.arg/done); on a full queue call
	                            svc_pos_busy() */
	/* out: ledger ops to post together with dbq_post_group (caller
	 * sets job.arg/done of each); if refused, call
	 * svc_pos_group_busy() */
	struct svc_pos_op *group[POS_BATCH_MAX];
	size_t n_group;
	/* out: an agent cache refresh to post (no connection: the caller
	 * sets job.arg/done, and hands it back to svc_pos_refreshed() when
	 * done, or at once if it cannot be posted).  The caller clears it. */
	struct svc_pos_op *refresh;
	/* out, for metrics: whether buf holds the answer to a request
	 * (req_id != 0) and its code (pos_msg_code: -1 none), and how many
	 * server pushes (COLLECT_RESULT) it holds.  The caller clears them
	 * (is_answer false, code -1, n_pushes 0). */
	bool is_answer;
	int code;
	size_t n_pushes;
};

void svc_pos_session_init(struct svc_pos *s, struct svc_pos_session *ss);
/* Wipes the session key.  The session may be reused after _init. */
void svc_pos_session_fini(struct svc_pos_session *ss);

/*
 * One frame decoded by pos_frame_decode() (CODEC_OK) from the terminal.
 * Borrows f (views die when the caller drains its buffer: everything kept
 * is copied).  now_ms: UTC wall clock.  Fills *out.  Loop thread.
 */
void svc_pos_frame(struct svc_pos *s, struct svc_pos_session *ss,
                   const struct pos_frame *f, int64_t now_ms,
                   struct svc_pos_out *out);

/*
 * A trusted session for terminal_id (HTTP /rpc, docs/api.md): no
 * challenge-response (the caller authenticated the client), the terminal
 * loaded and checked on the worker like a LOGIN (unknown, blocked
 * terminal or agent: refused), then a fresh random session key K_s that
 * the caller uses to MAC the frames it feeds.  key_hash: NULL for the
 * admin key, else the SHA-256 of the partner key the client gave
 * (STORE_RPC_KEY_HASH_LEN bytes), read on the worker with the terminal:
 * the key must exist, not be revoked, and its scope hold the terminal.
 * Posts the op in out->post; when it is done, out->is_answer with
 * out->code APPROVED (ss LOGGED_IN), AUTH_FAILED (unknown terminal, admin
 * key), BAD_MAC (the partner key is unknown or revoked), DECLINED (the
 * terminal is not in the partner key's scope, or unknown to it), BLOCKED
 * or BUSY; nothing is written to out->buf and no result is redelivered
 * (pushes stay for the terminal's own sessions).  terminal_id: 1..32
 * bytes.
 */
void svc_pos_rpc_login(struct svc_pos *s, struct svc_pos_session *ss,
                       const char *terminal_id, const uint8_t *key_hash,
                       struct svc_pos_out *out);

/* A partner key of /rpc: "soko_rpc_" and 64 lower-case hex digits (32
 * random bytes, made by `sokoctl rpc-key create`).  True if key has
 * that form; then its SHA-256, what the store keeps, into hash. */
#define SVC_POS_RPC_KEY_PREFIX "soko_rpc_"
#define SVC_POS_RPC_KEY_LEN    (sizeof SVC_POS_RPC_KEY_PREFIX - 1 + 64)
bool svc_pos_rpc_key_hash(const char *key,
                          uint8_t hash[STORE_RPC_KEY_HASH_LEN]);

/* pos_frame_decode() said CODEC_BAD: answer 0xC000 with f->refusal (zero
 * MAC before login, K_s after) and close (§2, §3.1). */
void svc_pos_refused(struct svc_pos *s, struct svc_pos_session *ss,
                     const struct pos_frame *f, const char *why,
                     struct svc_pos_out *out);

/* A posted op is back (job.call_rc / job.res filled, after commit for a
 * ledger op).  Takes op: frees it, or returns it in out->post for its
 * next step.  Loop thread. */
void svc_pos_done(struct svc_pos *s, struct svc_pos_session *ss,
                  struct svc_pos_op *op, int64_t now_ms,
                  struct svc_pos_out *out);

/* An agent cache refresh (out->refresh) is back, or could not be
 * posted (job.call_rc not STORE_OK): an active agent's entry lives
 * SVC_POS_AGENT_TTL_MS from now, a blocked or unknown one's is dropped
 * (its next transfer is looked up and refused), a failed read changes
 * nothing.  Takes op. */
void svc_pos_refreshed(struct svc_pos *s, struct svc_pos_op *op,
                       int64_t now_ms);

/* The storage queue refused op (full or stopping): answers BUSY.  Takes
 * op. */
void svc_pos_busy(struct svc_pos *s, struct svc_pos_session *ss,
                  struct svc_pos_op *op, struct svc_pos_out *out);

/* The storage queue refused out->group: answers the batch BUSY.  Takes
 * the ops. */
void svc_pos_group_busy(struct svc_pos *s, struct svc_pos_session *ss,
                        struct svc_pos_op *const *group, size_t n,
                        struct svc_pos_out *out);

/* Frees op, wiping what it holds.  NULL-safe.  For ops whose connection
 * went away.  An advice child frees its parent when it is the last. */
void svc_pos_op_free(struct svc_pos_op *op);

/* The LOGIN_FAIL BUSY frame (zero MAC, req_id 0) for a connection over
 * pos_max_conns.  Returns its length, or 0 if cap is too small. */
size_t svc_pos_conn_refusal(uint8_t *buf, size_t cap, uint32_t retry_after_s);

/* Asks storage for the terminal's undelivered COLLECT_RESULTs and
 * pushes them (after login, and when one of its payments ended): posts
 * out->post, or marks the session to ask again when the lookup in
 * flight is back.  Loop thread; nothing when logged out or no pay. */
void svc_pos_results(struct svc_pos *s, struct svc_pos_session *ss,
                     struct svc_pos_out *out);

/* The POS code of a provider payment's state (§6.6, §6.12): APPROVED,
 * REVERSED, PENDING (created, pending, unknown), or for a failure
 * CUSTOMER_DECLINED, EXPIRED or DECLINED by its result code. */
enum pos_code svc_pos_pay_code(const struct store_prov *p);

/* The POS code of a bill validation's outcome (BILL_VALIDATE_RESP). */
enum pos_code svc_pos_bill_check_code(enum svc_bill_outcome o);

/* The payment reference of (terminal, txn_id): "pos:<terminal>:" and the
 * txn id in unpadded base64url (22), at most 59 bytes, into
 * dst[PAYMENT_REF_MAX + 1]. */
void svc_pos_pay_ref(char *dst, const char *terminal_id,
                     const uint8_t txn_id[POS_ID_LEN]);

/* The POS response code of a ledger outcome (FLOAT_TRANSFER, STATUS). */
enum pos_code svc_pos_code(enum ledger_rc rc);

/* "pos:<txn id hex>:<terminal id>" into dst[LEDGER_KEY_MAX + 1]: the txn id
 * first, so time-ordered ids keep the idem index appending (migration
 * 013). */
void svc_pos_idem_key(char *dst, const char *terminal_id,
                      const uint8_t txn_id[POS_ID_LEN]);

#endif
