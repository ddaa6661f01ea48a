/*
 * sim.h - soko-pos, the POS terminal firmware simulator (issue #3).
 *
 * Layer: firmware-sim/ (STYLE.md §1): drives libsokoterm exactly as
 * firmware would (terminal/sokoterm.h) and never includes a codec or a
 * server header.  Files:
 *
 *   soko-pos.c    main: option parsing, mode dispatch
 *   sim_prov.c    provisioning CSV, hex, currencies, clock, host:port
 *   sim_http.c    a tiny blocking HTTP/1.1 client for sokod's admin API
 *   sim_term.c    one terminal over blocking POSIX I/O: script and
 *                 interactive modes
 *   sim_fleet.c   N terminals in one process over epoll: fleet mode
 *
 * A simulator is allowed to print (stdout: machine-readable results and
 * reports; stderr: diagnostics); the library it drives never does.
 */
#ifndef SIM_H
#define SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sokoterm.h"

/* ---- sim_prov.c ------------------------------------------------------ */

struct sim_currency {
	const char *alpha; /* ISO 4217 "KES" */
	uint16_t numeric;  /* ISO 4217 404 */
	unsigned exponent; /* minor-unit digits */
};

/* The currency named by s ("KES" or "404"); NULL if unknown. */
const struct sim_currency *sim_prov_currency(const char *s);

/* "1500.50" in cur's major unit -> minor units; 0 ok, -1 bad. */
int sim_prov_amount(uint64_t *minor, const struct sim_currency *cur,
                    const char *s);
/* minor units -> "1500.50" into buf. */
void sim_prov_amount_str(char *buf, size_t cap, const struct sim_currency *cur,
                         int64_t minor);

/* One line of a provisioning file: terminal_id,agent_code,key_hex[,float]. */
struct sim_prov {
	char terminal_id[33];
	char agent[33];
	char float_account[80]; /* default agent:<agent>:float */
	uint8_t key[SOKOTERM_KEY_LEN];
};

/* Loads path (CSV; '#' lines and a "terminal_id,..." header are skipped).
 * *out is malloc'd (caller frees, after wiping the keys); 0 ok, -1 with a
 * reason in err. */
int sim_prov_load(struct sim_prov **out, size_t *n, const char *path, char *err,
                  size_t errlen);

/* 2*len hex digits -> out; 0 ok, -1 bad. */
int sim_prov_unhex(uint8_t *out, size_t len, const char *hex);
/* len bytes -> 2*len lower-case hex digits and a NUL. */
void sim_prov_hex(char *out, const uint8_t *in, size_t len);

/* "host:port" (or "[v6]:port") split into host and port; 0 ok, -1 bad. */
int sim_prov_hostport(char *host, size_t hcap, char *port, size_t pcap,
                      const char *hp);

/* CLOCK_MONOTONIC in microseconds (latencies, timers). */
uint64_t sim_prov_mono_us(void);

/* Reads the first line of a secret file (trailing newline removed);
 * 0 ok, -1 (errno). */
int sim_prov_read_secret(char *buf, size_t cap, const char *path);

/* ---- sim_http.c ------------------------------------------------------ */

/*
 * One request on a new connection (Connection: close), blocking, at most
 * timeout_ms per step.  body may be NULL.  On 0: *status and resp (NUL-
 * terminated, truncated to cap) hold the answer; -1: transport failure.
 */
int sim_http_request(const char *hostport, const char *api_key,
                     const char *method, const char *path, const char *idem,
                     const char *body, int *status, char *resp, size_t cap);

/* GET /v1/accounts/{code} -> balance in minor units; 0 ok, -1 (err). */
int sim_http_balance(const char *hostport, const char *api_key,
                     const char *account, const struct sim_currency *cur,
                     int64_t *minor, char *err, size_t errlen);

/* POST /v1/movements float_topup of amount (major-unit string); 0 on 201
 * (or an idempotent replay of one), -1 (err). */
int sim_http_topup(const char *hostport, const char *api_key, const char *idem,
                   const char *debit, const char *credit,
                   const struct sim_currency *cur, const char *amount,
                   char *err, size_t errlen);

/* ---- sim_term.c ------------------------------------------------------ */

struct sim_term_opts {
	const char *server; /* host:port of sokod's POS listener */
	const char *terminal_id;
	uint8_t key[SOKOTERM_KEY_LEN];
	const char *queue_path;
	uint32_t timeout_ms; /* per wait */
	const char *tls_ca;  /* --tls-ca: TLS, server verified against this
	                        CA file (PEM); NULL: plaintext */
	/* --offline-floor/--offline-total (minor units): FLOAT_TRANSFER and
	 * BILL_PAY accepted offline (libsokoterm's offline policy); 0:
	 * nothing offline.  The total defaults to the floor. */
	uint64_t offline_floor;
	uint64_t offline_total;
	uint32_t keep_batches; /* --keep-batches: libsokoterm's cfg */
};

/* soko-pos's name of op ("float_transfer", "eod", ...; "none"). */
const char *sim_op_name(enum sokoterm_op op);

/* Scripted mode: operations from stdin, one result line each on stdout.
 * Returns the exit status (0 ok, 1 a wait timed out or failed). */
int sim_term_script(const struct sim_term_opts *o);
/* Interactive mode: a console menu on stdin/stdout. */
int sim_term_interactive(const struct sim_term_opts *o);

/* ---- sim_fleet.c ----------------------------------------------------- */

#define SIM_MIX_OPS (SOKOTERM_OP_RECEIPT + 1)

struct sim_fleet_opts {
	const char *server;         /* POS listener host:port */
	const char *http;           /* admin API host:port (check, funding) */
	char api_key[256];          /* from --admin-key-file */
	const char *provision_path; /* CSV */
	const char *queue_dir;
	size_t n_terminals; /* 0 = every line of the provisioning file */
	double duration_s;  /* run length, or */
	uint64_t count;     /* number of transactions */
	double rate;        /* open loop: transactions/s offered, or */
	unsigned window;    /* closed loop: in flight per terminal */
	bool is_uniform;    /* open loop: uniform ticks, not Poisson */
	/* --mix: weights by enum sokoterm_op (money ops and the reads
	 * STATUS, BILL_VALIDATE); mix_total their sum */
	unsigned mix[SIM_MIX_OPS];
	unsigned mix_total;
	const char *provider;  /* --provider: COLLECT, CASH_IN, CASH_OUT */
	char **msisdns;        /* --msisdn: customers, one picked per op */
	size_t n_msisdns;
	const char *biller;    /* --biller: BILL_VALIDATE, BILL_PAY */
	char **accounts;       /* --bill-account: one picked per bill op */
	size_t n_accounts;
	const struct sim_currency *cur;
	uint64_t amount;       /* per transfer, minor units */
	const char *fund_from; /* clearing account for the top-ups, or NULL */
	const char *fund;      /* top-up per agent, major-unit string */
	double drop_every_s;   /* drop a random link this often; 0 never */
	double drain_s;        /* wait for answers and queues after the run */
	uint64_t seed;
	uint32_t max_reconnect_ms; /* cap on libsokoterm's back-off; 0 none */
	/* benchmarks (bench/pos.sh) */
	unsigned threads;     /* terminals split over this many threads */
	double warmup_s;      /* RUN: the window figures start after this */
	bool is_status;       /* RUN: STATUS requests instead of transfers */
	uint32_t offline;     /* queue this many transfers per terminal
	                         offline, then connect: replay */
	bool is_idle;         /* log in, then only heartbeats (memory) */
	bool is_eod;          /* --eod: CHECK closes each terminal's batch,
	                         whose totals must agree with the server's */
	const char *tls_ca;   /* --tls-ca: TLS to the listener, the server
	                         verified against this CA file; NULL: TCP */
};

/* The --mix name of op ("float_transfer", "collect", "cash_in",
 * "cash_out", "bill_pay", "bill_validate", "status"); NULL for an op
 * fleet mode does not simulate. */
const char *sim_fleet_op_name(enum sokoterm_op op);

/* Fleet mode; returns the exit status (0: check ok). */
int sim_fleet_run(const struct sim_fleet_opts *o);

#endif
