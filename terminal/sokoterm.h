/*
 * sokoterm.h - libsokoterm, the soko POS terminal client library.
 *
 * Layer: terminal/ (STYLE.md §1), built on the pure codec in protocols/
 * (docs/pos-protocol.md, wire protocol v1).  Embedded by POS firmware and by
 * soko-pos.  The core is I/O-free (BearSSL style): the firmware moves bytes
 * between its transport and the engine, and gives it the time:
 *
 *   sokoterm_new(&t, &cfg)              open the offline queue (SQLite)
 *   transport up:    sokoterm_connect(t, now_ms)       -> LOGIN queued
 *   bytes received:  sokoterm_feed(t, buf, len)
 *   bytes to send:   sokoterm_outbox(t, &p, &len); write; sokoterm_sent(t, n)
 *   every 100..1000 ms: sokoterm_tick(t, now_ms)  (timeouts, heartbeat,
 *                                                  queue replay)
 *   transport down:  sokoterm_disconnect(t)
 *   operations:      sokoterm_submit(t, &req, &op_id, txn_id)
 *   results:         cfg.on_event(ctx, &ev)  (callback, see below)
 *
 * Guarantees: no global state (any number of instances per process, one
 * thread at a time per instance), never aborts, never prints; every error
 * is an enum sokoterm_err (sokoterm_strerror() names it).  The library's
 * own memory comes from the caller's allocator hooks when set (SQLite keeps
 * its own allocator: its failures come back as SOKOTERM_ERR_QUEUE).
 *
 * Money-moving operations are stored in the queue, with their terminal
 * transaction id, before any byte is sent (store-then-send); the STORED
 * event fires only after the SQLite commit returned.  A request whose
 * answer never came is resolved by STATUS (or REVERSAL, by policy), never
 * sent again as a new transaction.  See terminal/README.md.
 */
#ifndef SOKOTERM_H
#define SOKOTERM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SOKOTERM_KEY_LEN 32 /* K_t, bytes */
#define SOKOTERM_ID_LEN  16 /* terminal transaction id, bytes */

struct sokoterm; /* opaque: one terminal, one queue, one connection */

enum sokoterm_err {
	SOKOTERM_OK = 0,
	SOKOTERM_ERR_NOMEM,         /* an allocation failed; nothing changed */
	SOKOTERM_ERR_ARG,           /* bad argument or missing field */
	SOKOTERM_ERR_STATE,         /* not allowed in this connection state */
	SOKOTERM_ERR_BUSY,          /* too many requests in flight or outbox
	                               full: try again after sending */
	SOKOTERM_ERR_RANDOM,        /* the random function failed */
	SOKOTERM_ERR_QUEUE,         /* SQLite error on the queue */
	SOKOTERM_ERR_QUEUE_CORRUPT, /* integrity_check failed on open */
	SOKOTERM_ERR_QUEUE_FULL,    /* policy max_entries reached */
	SOKOTERM_ERR_OFFLINE_REFUSED, /* operation not allowed offline */
	SOKOTERM_ERR_OFFLINE_LIMIT,   /* floor, cumulative or age limit */
	SOKOTERM_ERR_NOT_FOUND,       /* no such transaction in the queue */
	SOKOTERM_ERR_PROTOCOL,        /* peer broke the protocol: close */
	SOKOTERM_ERR_AUTH,            /* bad MAC, nonce or LOGIN_FAIL: close */
	SOKOTERM_ERR_TIMEOUT,         /* no answer in time */
	SOKOTERM_ERR_CLOSED,          /* connection lost before an answer */
	SOKOTERM_ERR_IO,              /* io_posix helpers only */
};

/* Static English name of e, never NULL. */
const char *sokoterm_strerror(enum sokoterm_err e);

/* Operations (docs/pos-protocol.md §6).  Money-moving ones (COLLECT,
 * CASH_IN, CASH_OUT, FLOAT_TRANSFER, BILL_PAY) get a new txn_id and go
 * through the queue; the others are online only. */
enum sokoterm_op {
	SOKOTERM_OP_NONE = 0,
	SOKOTERM_OP_ECHO,
	SOKOTERM_OP_COLLECT,
	SOKOTERM_OP_CASH_IN,
	SOKOTERM_OP_CASH_OUT,
	SOKOTERM_OP_FLOAT_TRANSFER,
	SOKOTERM_OP_BILL_VALIDATE,
	SOKOTERM_OP_BILL_PAY,
	SOKOTERM_OP_STATUS,
	SOKOTERM_OP_REVERSAL, /* queued until acknowledged */
	SOKOTERM_OP_RECEIPT,
	SOKOTERM_OP_EOD_TOTALS, /* batch close (§6.16): online only */
};

/* One line of end-of-day totals (§6.16): the APPROVED and STORED
 * transactions of one op and currency in a batch. */
struct sokoterm_total {
	enum sokoterm_op op; /* COLLECT, CASH_IN, CASH_OUT, FLOAT_TRANSFER,
	                        BILL_PAY (SOKOTERM_OP_NONE: a type this
	                        version does not know) */
	uint16_t currency;   /* ISO 4217 numeric */
	uint32_t count;
	uint64_t sum; /* minor units */
};

#define SOKOTERM_TOTALS_MAX 16 /* lines in one batch close */

/* Bit of op in sokoterm_offline_policy.allowed_ops. */
#define SOKOTERM_OP_BIT(op) (1u << (op))

/* Response codes are the §7 numbers; these are the ones firmware usually
 * branches on (any other value may come: codes >= 10 are declines). */
#define SOKOTERM_CODE_APPROVED    0u
#define SOKOTERM_CODE_PENDING     1u
#define SOKOTERM_CODE_STORED      2u
#define SOKOTERM_CODE_REVERSED    4u
#define SOKOTERM_CODE_DECLINED    10u
#define SOKOTERM_CODE_UNKNOWN_TXN 13u

/* Stable lower-case name of a §7 code ("insufficient_float"), never NULL. */
const char *sokoterm_code_name(unsigned code);

/*
 * What may happen while the server cannot be reached (issue #3).  All
 * amounts in minor units; 0 in a limit means "nothing allowed" except where
 * noted.  COLLECT, CASH_OUT and CASH_IN are never accepted offline (they
 * move the customer's wallet, which only the server can do at once;
 * sokod declines them as advices), whatever allowed_ops says.
 */
struct sokoterm_offline_policy {
	uint32_t allowed_ops;  /* SOKOTERM_OP_BIT() of ops accepted offline */
	uint64_t floor_limit;  /* largest single offline amount */
	uint64_t total_limit;  /* sum of offline amounts not yet uploaded */
	uint64_t max_age_ms;   /* refuse offline work once the oldest open
	                          entry is older; 0 = no age limit */
	uint32_t max_entries;  /* open entries (online or offline) the queue
	                          holds; 0 = 1000 */
	uint32_t max_attempts; /* replay attempts per entry before it is
	                          held (SOKOTERM_EV_HELD); 0 = 20 */
	uint64_t replay_max_age_ms; /* hold an entry older than this instead of
	                               replaying it; 0 = no limit */
};

enum sokoterm_event_type {
	SOKOTERM_EV_LOGIN,      /* LOGIN_OK verified; session_id set */
	SOKOTERM_EV_LOGIN_FAIL, /* code: AUTH_FAILED, BLOCKED, ...; closing */
	SOKOTERM_EV_STORED,     /* txn durably in the queue (commit returned);
	                           is_offline: accepted offline, will be sent
	                           as an advice ("stored, will be sent") */
	SOKOTERM_EV_RESULT,     /* the answer: code (DUPLICATE already replaced
	                           by orig_code), or err when none came */
	SOKOTERM_EV_DELAYED,    /* money op: answer lost (timeout, link down);
	                           the engine resolves it (STATUS) and reports
	                           a RESULT later */
	SOKOTERM_EV_HELD,       /* queue entry gave up after max_attempts or
	                           replay_max_age_ms; stays in the queue */
	SOKOTERM_EV_CLOSE,      /* close the transport, then call
	                           sokoterm_disconnect(); err says why */
};

/* Passed to on_event; every pointer is valid during the callback only.
 * Strings are NUL-terminated, "" when the server did not send them. */
struct sokoterm_event {
	enum sokoterm_event_type type;
	enum sokoterm_op op;
	uint64_t op_id; /* from sokoterm_submit(); 0 for entries of an
	                   earlier session or process (replay) */
	bool has_txn_id;
	uint8_t txn_id[SOKOTERM_ID_LEN];
	bool is_offline;       /* STORED offline / RESULT of an advice */
	bool is_duplicate;     /* the server answered DUPLICATE */
	unsigned code;         /* §7 code (RESULT, LOGIN_FAIL) */
	enum sokoterm_err err; /* RESULT without answer, CLOSE, HELD */
	uint64_t time_ms;      /* server time, 0 if absent */
	bool has_balance;
	uint64_t balance; /* agent float after the transaction */
	bool has_amount_due;
	uint64_t amount_due;        /* BILL_VALIDATE */
	uint64_t session_id;        /* LOGIN */
	const char *ref;            /* server reference to print */
	const char *token;          /* BILL_PAY token, STATUS/RECEIPT token */
	const char *units;          /* BILL_PAY units */
	const char *text;           /* message for the agent's screen */
	const char *customer_name;  /* BILL_VALIDATE */
	const char *validation_ref; /* BILL_VALIDATE, pass to BILL_PAY */
	const char *lines;          /* RECEIPT: preformatted lines */
	/* EOD_TOTALS: the batch, the terminal's own lines (as sent) and
	 * the server's (code APPROVED: equal; TOTALS_MISMATCH: print both,
	 * the server's ledger is authoritative; either way closed, unless
	 * err is set: the close could not be recorded and is sent again
	 * by the next EOD_TOTALS) */
	uint32_t batch_no;
	const struct sokoterm_total *totals;
	size_t n_totals;
	const struct sokoterm_total *server_totals;
	size_t n_server_totals;
};

/*
 * Called from inside sokoterm_connect/feed/tick/submit/disconnect.  It must
 * not call sokoterm_free, feed, tick, connect, disconnect or submit on the
 * same instance (read-only calls are fine); queue work and do it after the
 * call returns.
 */
typedef void (*sokoterm_event_fn)(void *ctx, const struct sokoterm_event *ev);
/* Fills buf[0..len) from a CSPRNG; returns 0, or -1 on failure. */
typedef int (*sokoterm_random_fn)(void *ctx, uint8_t *buf, size_t len);
typedef void *(*sokoterm_alloc_fn)(void *ctx, size_t n);
typedef void (*sokoterm_free_fn)(void *ctx, void *p);

struct sokoterm_config {
	const char *terminal_id; /* provisioned id, UTF-8, <= 32 bytes */
	const uint8_t *key;      /* K_t, SOKOTERM_KEY_LEN bytes; copied (the
	                            caller wipes its copy) and wiped at free */
	const char *firmware;    /* <= 32 bytes; NULL = "libsokoterm" */
	/* SQLite file of the offline queue; one instance per file at a
	 * time (it keeps running totals of the file's open entries) */
	const char *queue_path;
	struct sokoterm_offline_policy offline;
	uint32_t request_timeout_ms; /* money request -> STATUS; 0 = 30000 */
	bool is_reverse_on_timeout;  /* REVERSAL instead of STATUS after a
	                                lost answer (customer has left) */
	/* End of day: the entries of the newest keep_batches closed
	 * batches stay in the queue (lookups, a batch's totals sent again);
	 * the done entries of older closed batches are deleted after each
	 * close, so the file stops growing.  0 = keep every entry. */
	uint32_t keep_batches;
	/* txn_ids are UUID version 7 (RFC 9562: the 48-bit ms of the
	 * caller's clock as last given to sokoterm_tick/_connect, then 74
	 * random bits), so that one terminal's ids
	 * sort in time and the server's and the queue's indexes append
	 * instead of inserting at random; true = version 4 (122 random
	 * bits), e.g. to reproduce docs/pos-protocol.md §10 */
	bool is_txn_id_v4;
	sokoterm_random_fn random;   /* required; sokoterm_posix_random()
	                                is one (io_posix.c) */
	void *random_ctx;
	sokoterm_event_fn on_event; /* required */
	void *event_ctx;
	sokoterm_alloc_fn mem_alloc; /* both NULL = malloc/free */
	sokoterm_free_fn mem_free;
	void *mem_ctx;
};

/*
 * Creates a terminal: copies cfg (strings and key), opens the queue at
 * cfg->queue_path (WAL, synchronous=FULL) and runs PRAGMA integrity_check.
 * Returns SOKOTERM_OK with *out set (free with sokoterm_free), or an error
 * with *out NULL: ARG, NOMEM, QUEUE, QUEUE_CORRUPT (the file is kept
 * untouched for support; never silently recreated).
 */
enum sokoterm_err sokoterm_new(struct sokoterm **out,
                               const struct sokoterm_config *cfg);
/* Closes the queue, wipes keys, frees everything.  NULL is a no-op. */
void sokoterm_free(struct sokoterm *t);

enum sokoterm_state {
	SOKOTERM_OFFLINE,    /* no transport */
	SOKOTERM_LOGGING_IN, /* LOGIN sent, waiting <= 10 s for LOGIN_OK */
	SOKOTERM_READY,      /* session up: requests go out */
	SOKOTERM_CLOSING,    /* the engine asked to close (EV_CLOSE) */
};
enum sokoterm_state sokoterm_state(const struct sokoterm *t);

/* The transport is connected: starts a session (fresh nonce from
 * cfg.random) and queues LOGIN.  STATE unless OFFLINE; RANDOM. */
enum sokoterm_err sokoterm_connect(struct sokoterm *t, uint64_t now_ms);
/* The transport is gone (or was closed after EV_CLOSE).  Unanswered online
 * requests get RESULT err CLOSED; money ones stay queued (EV_DELAYED) and
 * are resolved after the next login.  Output not yet sent is dropped. */
void sokoterm_disconnect(struct sokoterm *t);
/* Milliseconds to wait before the next connect: 1, 2, 4 ... 60 s with
 * +-20 % jitter, reset by a successful login (§3.3). */
uint32_t sokoterm_reconnect_delay_ms(struct sokoterm *t);

/*
 * Received bytes, any split.  Borrows buf.  OK (consumed; events may have
 * fired), STATE when no connection, PROTOCOL or AUTH when the peer broke
 * the protocol (EV_CLOSE fired; the state is CLOSING).
 */
enum sokoterm_err sokoterm_feed(struct sokoterm *t, const uint8_t *buf,
                                size_t len);
/* Bytes waiting to be sent: *p valid until the next call that changes the
 * instance.  *len 0 when nothing is pending. */
void sokoterm_outbox(const struct sokoterm *t, const uint8_t **p, size_t *len);
/* n of those bytes were written to the transport. */
void sokoterm_sent(struct sokoterm *t, size_t n);
/*
 * Time passes.  now_ms is the caller's clock in ms (UTC wall time if the
 * terminal has one: the queue records it for ages and advices); a value
 * lower than a previous one is treated as the previous one.  Runs login,
 * request and echo timeouts, the heartbeat and the queue replay.  Call it
 * once right after sokoterm_new: until the instance has been given a
 * time (here or by sokoterm_connect), an offline submit is refused with
 * SOKOTERM_ERR_STATE (its entry, advice and txn id need one).
 */
enum sokoterm_err sokoterm_tick(struct sokoterm *t, uint64_t now_ms);

/* One operation; fields not used by op are ignored.  Strings are borrowed
 * for the call only (NULL = absent). */
struct sokoterm_request {
	enum sokoterm_op op;
	uint64_t amount;      /* minor units, money ops and BILL_VALIDATE */
	uint16_t currency;    /* ISO 4217 numeric */
	const char *msisdn;   /* COLLECT, CASH_IN, CASH_OUT (req); BILL_PAY */
	const char *provider; /* COLLECT (req); CASH_IN, CASH_OUT */
	const char *note;     /* COLLECT */
	const char *otp;      /* CASH_OUT; never stored in logs */
	const char *to_agent; /* FLOAT_TRANSFER (req) */
	const char *biller;   /* BILL_VALIDATE, BILL_PAY (req) */
	const char *account;  /* BILL_VALIDATE, BILL_PAY (req) */
	const char *validation_ref;      /* BILL_PAY */
	uint8_t txn_id[SOKOTERM_ID_LEN]; /* STATUS, REVERSAL, RECEIPT: target */
	uint8_t
	    reason; /* REVERSAL: 1 timeout, 2 cancelled, 3 printer, 4 other */
	/* EOD_TOTALS: 0 = the queue's batch (the one whose close is still
	 * unanswered, else the last closed + 1; a new queue file starts at
	 * 1); else this number: a new batch (above every batch the queue
	 * knows), or an earlier one again (its totals recomputed and sent:
	 * the server answers that batch's again, closing nothing new) */
	uint32_t batch_no;
};

/*
 * Submits r.  On SOKOTERM_OK: *op_id (if not NULL) names the events of
 * this operation; a money op's new txn_id is in txn_id (if not NULL) and
 * its STORED event has fired before the return (when the session is not
 * READY, the op was accepted offline: STORED with is_offline).  Errors,
 * with nothing stored or sent: ARG, BUSY, RANDOM, QUEUE, QUEUE_FULL,
 * OFFLINE_REFUSED (op not allowed offline; COLLECT always),
 * OFFLINE_LIMIT, STATE (an online-only op while not READY).
 * EOD_TOTALS counts the batch's done APPROVED and STORED entries (not
 * the reversed) from the queue, records the batch before it is sent
 * (an unanswered close is sent again with the same number) and is BUSY
 * while another close is in flight or the queue holds entries whose
 * outcome is not known or not uploaded yet (new, to retry, offline, a
 * reversal to send: let the replay finish; PENDING and HELD entries do
 * not hold it back); ARG for a batch_no below the queue's newest that it
 * does not know, or a new one while a close is unanswered.
 */
enum sokoterm_err sokoterm_submit(struct sokoterm *t,
                                  const struct sokoterm_request *r,
                                  uint64_t *op_id,
                                  uint8_t txn_id[SOKOTERM_ID_LEN]);

/* Open queue entries (not yet answered durably) and the sum of offline
 * amounts not yet uploaded.  QUEUE on SQLite error. */
enum sokoterm_err sokoterm_queue_count(struct sokoterm *t, uint64_t *n_open,
                                       uint64_t *offline_total);

/* HELD entries (SOKOTERM_EV_HELD: max_attempts or replay_max_age_ms
 * reached) go back to the replay: a reversal to send, an advice to
 * upload, or an outcome to find out by STATUS (resent only if the server
 * never saw it), with max_attempts and replay_max_age_ms counted afresh
 * from now.  For support, after the cause is fixed (a server that was
 * refusing, a clock set wrong).  *n_released (may be NULL) is how many.
 * Not from inside a callback.  QUEUE. */
enum sokoterm_err sokoterm_release_held(struct sokoterm *t,
                                        uint64_t *n_released);

/* The queue's record of txn_id: *is_done and, if done, its final *code.
 * NOT_FOUND, QUEUE. */
enum sokoterm_err sokoterm_queue_lookup(struct sokoterm *t,
                                        const uint8_t txn_id[SOKOTERM_ID_LEN],
                                        bool *is_done, unsigned *code);

/* ---- terminal/io_posix.c: optional POSIX helpers --------------------- */

/* cfg.random for POSIX hosts: getrandom(2).  ctx unused. */
int sokoterm_posix_random(void *ctx, uint8_t *buf, size_t len);
/* CLOCK_REALTIME in ms, for sokoterm_tick(). */
uint64_t sokoterm_posix_now_ms(void);
/* Blocking TCP connect to host:port within timeout_ms; *fd on OK.  IO. */
enum sokoterm_err sokoterm_posix_connect(const char *host, const char *port,
                                         uint32_t timeout_ms, int *fd);
/*
 * One round of a blocking loop: writes the outbox, waits up to wait_ms for
 * input, feeds it, ticks.  Returns OK, IO (transport failed or closed by
 * the peer: the caller closes fd and calls sokoterm_disconnect) or the
 * engine's error.
 */
enum sokoterm_err sokoterm_posix_pump(struct sokoterm *t, int fd,
                                      uint32_t wait_ms);

/* ---- terminal/io_tls.c: optional TLS for the POSIX helper ------------
 * In libsokoterm_tls.a, which links OpenSSL (-lssl -lcrypto); the rest of
 * the library never needs it.  TLS is an extra layer under the protocol
 * (docs/pos-protocol.md §4.6): frames keep their MAC and counters. */

struct sokoterm_tls; /* opaque: one TLS session over a connected socket */

/*
 * TLS 1.2+ client handshake on fd (connected, e.g. by
 * sokoterm_posix_connect), within timeout_ms.  The server's certificate
 * must chain to a certificate in ca_file (PEM) and name host: a DNS name
 * (also sent as SNI) or an IP address literal.  Verification is always
 * on; there is no switch to turn it off.  On OK *out holds the session
 * (fd stays the caller's: close it after sokoterm_tls_close).  Else ARG,
 * NOMEM or IO, with a static or short reason in why (cap bytes; may be
 * NULL).  IO.
 */
enum sokoterm_err sokoterm_tls_open(struct sokoterm_tls **out, int fd,
                                    const char *host, const char *ca_file,
                                    uint32_t timeout_ms, char *why, size_t cap);
/* sokoterm_posix_pump() through the TLS session s.  Same results. */
enum sokoterm_err sokoterm_tls_pump(struct sokoterm *t, struct sokoterm_tls *s,
                                    uint32_t wait_ms);
/* Sends close_notify (best effort, never blocks long) and frees s.
 * Does not close the socket.  NULL-safe. */
void sokoterm_tls_close(struct sokoterm_tls *s);

#endif
