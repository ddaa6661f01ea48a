/*
 * sim_term.c - one simulated POS terminal over blocking POSIX I/O
 * (terminal/io_posix.c): the scripted mode used by the tests and the
 * interactive console.
 *
 * Layer: firmware-sim/ (sim.h).  Drives libsokoterm as firmware would:
 * connect, pump (write the outbox, read, feed, tick), submit; reconnects
 * after sokoterm_reconnect_delay_ms() when the link drops, unless the
 * script said `disconnect`.  Events are printed from the callback (the
 * simulator may print; the library never does) and never call back into
 * the engine.
 *
 * Script lines (stdin; '#' comments):
 *   float_transfer TO_AGENT AMOUNT CURRENCY   AMOUNT in major units
 *   collect|cash_out|cash_in MSISDN PROVIDER AMOUNT CURRENCY
 *   bill_validate BILLER:ITEM ACCOUNT
 *   bill_pay BILLER:ITEM ACCOUNT AMOUNT CURRENCY
 *   status TXN_HEX|last     echo     wait     sleep MS
 *   disconnect              reconnect
 * Output lines (stdout), key=value:
 *   login session=N | login_fail code=C
 *   stored op=O txn=H offline=0|1
 *   delayed op=O txn=H err=E
 *   result op=O [txn=H] code=C [err=E] [ref=R] [token=T] dup=0|1
 *          offline=0|1 [why="the server's reason"]
 *   link down err=E | link up
 *   wait ok | wait timeout open=N
 *   queue open=N
 */
#include "sim.h"

#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MONEY_MAX  256 /* outstanding money txns a script may have */
#define ONLINE_MAX 32  /* outstanding online ops */

struct receipt {
	bool is_set;
	char op[24];
	char txn[2 * SOKOTERM_ID_LEN + 1];
	char code[40];
	char ref[64];
	char detail[96];
	char why[72]; /* the server's reason, or "" */
	char token[65]; /* a bill's (electricity token), or "" */
	uint64_t time_ms;
};

struct term {
	const struct sim_term_opts *o;
	struct sokoterm *t;
	char host[256], port[16];
	int fd;
	struct sokoterm_tls *tls; /* with --tls-ca, while the link is up */
	bool is_manual_down;   /* `disconnect`: stay down until `reconnect` */
	uint64_t reconnect_at; /* monotonic ms */
	uint8_t money[MONEY_MAX][SOKOTERM_ID_LEN]; /* awaiting a RESULT */
	size_t n_money;
	uint64_t online[ONLINE_MAX]; /* op_ids of online ops pending */
	size_t n_online;
	bool has_last;
	uint8_t last_txn[SOKOTERM_ID_LEN];
	bool is_quiet; /* interactive: no protocol chatter */
	struct receipt rcpt;
	char pending_detail[96]; /* what the next money op is, for receipts */
	/* the last BILL_VALIDATE's answer, for the interactive bill screen */
	char bill_name[65];
	bool has_bill_due;
	uint64_t bill_due;
};

static uint64_t
mono_ms(void)
{
	return sim_prov_mono_us() / 1000u;
}

const char *
sim_op_name(enum sokoterm_op op)
{
	switch (op) {
	case SOKOTERM_OP_ECHO:
		return "echo";
	case SOKOTERM_OP_COLLECT:
		return "collect";
	case SOKOTERM_OP_CASH_IN:
		return "cash_in";
	case SOKOTERM_OP_CASH_OUT:
		return "cash_out";
	case SOKOTERM_OP_FLOAT_TRANSFER:
		return "float_transfer";
	case SOKOTERM_OP_BILL_VALIDATE:
		return "bill_validate";
	case SOKOTERM_OP_BILL_PAY:
		return "bill_pay";
	case SOKOTERM_OP_STATUS:
		return "status";
	case SOKOTERM_OP_REVERSAL:
		return "reversal";
	case SOKOTERM_OP_RECEIPT:
		return "receipt";
	case SOKOTERM_OP_EOD_TOTALS:
		return "eod";
	case SOKOTERM_OP_NONE:
		break;
	}
	return "none";
}

/* Machine-readable name of an engine error ("CLOSED"). */
static const char *
err_name(enum sokoterm_err e)
{
	static const char *const names[] = {"OK",
	                                    "NOMEM",
	                                    "ARG",
	                                    "STATE",
	                                    "BUSY",
	                                    "RANDOM",
	                                    "QUEUE",
	                                    "QUEUE_CORRUPT",
	                                    "QUEUE_FULL",
	                                    "OFFLINE_REFUSED",
	                                    "OFFLINE_LIMIT",
	                                    "NOT_FOUND",
	                                    "PROTOCOL",
	                                    "AUTH",
	                                    "TIMEOUT",
	                                    "CLOSED",
	                                    "IO"};

	if ((size_t)e < sizeof names / sizeof names[0])
		return names[e];
	return "UNKNOWN";
}

/* Upper-case §7 code name ("INSUFFICIENT_FLOAT") into buf. */
static const char *
code_upper(char *buf, size_t cap, unsigned code)
{
	size_t i;

	snprintf(buf, cap, "%s", sokoterm_code_name(code));
	for (i = 0; buf[i] != '\0'; i++)
		buf[i] = (char)toupper((unsigned char)buf[i]);
	return buf;
}

static void
money_drop(struct term *c, const uint8_t *txn)
{
	size_t i;

	for (i = 0; i < c->n_money; i++)
		if (memcmp(c->money[i], txn, SOKOTERM_ID_LEN) == 0) {
			memmove(c->money[i], c->money[i + 1],
			        (c->n_money - i - 1) * SOKOTERM_ID_LEN);
			c->n_money--;
			return;
		}
}

static void
online_drop(struct term *c, uint64_t op_id)
{
	size_t i;

	for (i = 0; i < c->n_online; i++)
		if (c->online[i] == op_id) {
			c->online[i] = c->online[--c->n_online];
			return;
		}
}

static bool
is_money(enum sokoterm_op op)
{
	return op == SOKOTERM_OP_COLLECT || op == SOKOTERM_OP_CASH_IN ||
	       op == SOKOTERM_OP_CASH_OUT || op == SOKOTERM_OP_FLOAT_TRANSFER ||
	       op == SOKOTERM_OP_BILL_PAY;
}

/* The server's reason (its `text`), printable and without quotes, for
 * the why="..." of a result line. */
static void
why_text(char *dst, size_t cap, const char *s)
{
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < cap; i++)
		dst[i] = s[i] == '"' || s[i] < 0x20 || s[i] > 0x7e ? '\''
		                                                  : s[i];
	dst[i] = '\0';
}

/* " NAME=op/currency/count/sum,..." (sum in minor units), or
 * " NAME=-" for no lines. */
static void
eod_lines(const char *name, const struct sokoterm_total *l, size_t n)
{
	size_t i;

	printf(" %s=%s", name, n == 0 ? "-" : "");
	for (i = 0; i < n; i++)
		printf("%s%s/%u/%u/%llu", i > 0 ? "," : "", sim_op_name(l[i].op),
		       l[i].currency, l[i].count,
		       (unsigned long long)l[i].sum);
}

static void
on_result(struct term *c, const struct sokoterm_event *ev)
{
	char txn[2 * SOKOTERM_ID_LEN + 1] = "", code[40], why[72];

	if (ev->has_txn_id)
		sim_prov_hex(txn, ev->txn_id, SOKOTERM_ID_LEN);
	if (is_money(ev->op) && ev->has_txn_id)
		money_drop(c, ev->txn_id);
	else
		online_drop(c, ev->op_id);
	if (ev->err != SOKOTERM_OK)
		snprintf(code, sizeof code, "NONE");
	else
		code_upper(code, sizeof code, ev->code);
	why_text(why, sizeof why, ev->text);
	printf("result op=%s%s%s code=%s%s%s%s%s%s%s dup=%d offline=%d%s%s%s\n",
	       sim_op_name(ev->op), txn[0] != '\0' ? " txn=" : "", txn, code,
	       ev->err != SOKOTERM_OK ? " err=" : "",
	       ev->err != SOKOTERM_OK ? err_name(ev->err) : "",
	       ev->ref != NULL && ev->ref[0] != '\0' ? " ref=" : "",
	       ev->ref != NULL ? ev->ref : "",
	       ev->token != NULL && ev->token[0] != '\0' ? " token=" : "",
	       ev->token != NULL ? ev->token : "", ev->is_duplicate,
	       ev->is_offline, why[0] != '\0' ? " why=\"" : "", why,
	       why[0] != '\0' ? "\"" : "");
	if (ev->op == SOKOTERM_OP_BILL_VALIDATE) {
		snprintf(c->bill_name, sizeof c->bill_name, "%s",
		         ev->err == SOKOTERM_OK && ev->customer_name != NULL
		             ? ev->customer_name
		             : "");
		c->has_bill_due = ev->err == SOKOTERM_OK && ev->has_amount_due;
		c->bill_due = ev->amount_due;
	}
	if (ev->op == SOKOTERM_OP_EOD_TOTALS && ev->err == SOKOTERM_OK) {
		printf("eod batch=%u", ev->batch_no);
		eod_lines("terminal", ev->totals, ev->n_totals);
		eod_lines("server", ev->server_totals, ev->n_server_totals);
		printf("\n");
	}
	if (ev->err == SOKOTERM_OK && ev->op != SOKOTERM_OP_ECHO &&
	    ev->op != SOKOTERM_OP_EOD_TOTALS) {
		struct receipt *r = &c->rcpt;

		r->is_set = true;
		snprintf(r->op, sizeof r->op, "%s", sim_op_name(ev->op));
		snprintf(r->txn, sizeof r->txn, "%s", txn);
		snprintf(r->code, sizeof r->code, "%s", code);
		snprintf(r->ref, sizeof r->ref, "%s",
		         ev->ref != NULL ? ev->ref : "");
		snprintf(r->why, sizeof r->why, "%s", why);
		snprintf(r->token, sizeof r->token, "%s",
		         ev->token != NULL ? ev->token : "");
		snprintf(r->detail, sizeof r->detail, "%s",
		         is_money(ev->op) ? c->pending_detail : "");
		r->time_ms = ev->time_ms;
	}
}

static void
on_event(void *ctx, const struct sokoterm_event *ev)
{
	struct term *c = ctx;
	char txn[2 * SOKOTERM_ID_LEN + 1] = "", code[40];

	if (ev->has_txn_id)
		sim_prov_hex(txn, ev->txn_id, SOKOTERM_ID_LEN);
	switch (ev->type) {
	case SOKOTERM_EV_LOGIN:
		if (!c->is_quiet)
			printf("login session=%llu\n",
			       (unsigned long long)ev->session_id);
		break;
	case SOKOTERM_EV_LOGIN_FAIL:
		printf("login_fail code=%s\n",
		       code_upper(code, sizeof code, ev->code));
		break;
	case SOKOTERM_EV_STORED:
		if (!c->is_quiet)
			printf("stored op=%s txn=%s offline=%d\n",
			       sim_op_name(ev->op), txn, ev->is_offline);
		break;
	case SOKOTERM_EV_DELAYED:
		printf("delayed op=%s txn=%s err=%s\n", sim_op_name(ev->op), txn,
		       err_name(ev->err));
		break;
	case SOKOTERM_EV_HELD:
		printf("held op=%s txn=%s\n", sim_op_name(ev->op), txn);
		money_drop(c, ev->txn_id);
		break;
	case SOKOTERM_EV_RESULT:
		on_result(c, ev);
		break;
	case SOKOTERM_EV_CLOSE:
		if (!c->is_quiet)
			printf("close err=%s\n", err_name(ev->err));
		break;
	}
	fflush(stdout);
}

/* Closes the transport: TLS session (if any), then the socket. */
static void
link_close(struct term *c)
{
	sokoterm_tls_close(c->tls);
	c->tls = NULL;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void
link_down(struct term *c, enum sokoterm_err why)
{
	sokoterm_tls_close(c->tls);
	c->tls = NULL;
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	sokoterm_disconnect(c->t);
	c->reconnect_at = mono_ms() + sokoterm_reconnect_delay_ms(c->t);
	if (!c->is_quiet)
		printf("link down err=%s\n", err_name(why));
	fflush(stdout);
}

static void
link_up(struct term *c)
{
	enum sokoterm_err e;

	e = sokoterm_posix_connect(c->host, c->port, 5000, &c->fd);
	if (e == SOKOTERM_OK && c->o->tls_ca != NULL) {
		char why[200];

		/* the name checked is the one dialled: --server's host */
		e = sokoterm_tls_open(&c->tls, c->fd, c->host, c->o->tls_ca,
		                      5000, why, sizeof why);
		if (e != SOKOTERM_OK)
			fprintf(stderr, "soko-pos: TLS to %s:%s: %s\n", c->host,
			        c->port, why);
	}
	if (e == SOKOTERM_OK)
		e = sokoterm_connect(c->t, sokoterm_posix_now_ms());
	if (e != SOKOTERM_OK) {
		link_close(c);
		c->reconnect_at = mono_ms() + sokoterm_reconnect_delay_ms(c->t);
		if (!c->is_quiet)
			printf("link down err=%s\n", err_name(e));
		fflush(stdout);
		return;
	}
	if (!c->is_quiet)
		printf("link up\n");
}

/* One round: bytes both ways, timers; at most wait_ms of waiting. */
static void
step(struct term *c, uint32_t wait_ms)
{
	enum sokoterm_err e;
	uint64_t now = mono_ms();

	if (c->fd >= 0) {
		e = c->tls != NULL ? sokoterm_tls_pump(c->t, c->tls, wait_ms)
		                   : sokoterm_posix_pump(c->t, c->fd, wait_ms);
		if (e != SOKOTERM_OK ||
		    sokoterm_state(c->t) == SOKOTERM_CLOSING)
			link_down(c, e);
		return;
	}
	if (!c->is_manual_down && now >= c->reconnect_at) {
		link_up(c);
		return;
	}
	if (!c->is_manual_down && c->reconnect_at - now < wait_ms)
		wait_ms = (uint32_t)(c->reconnect_at - now);
	(void)poll(NULL, 0, (int)wait_ms);
	(void)sokoterm_tick(c->t, sokoterm_posix_now_ms());
}

/* Steps until the session is READY; 0, or -1 after timeout_ms. */
static int
wait_ready(struct term *c)
{
	uint64_t end = mono_ms() + c->o->timeout_ms;

	if (c->is_manual_down)
		return sokoterm_state(c->t) == SOKOTERM_READY ? 0 : -1;
	while (sokoterm_state(c->t) != SOKOTERM_READY) {
		if (mono_ms() >= end)
			return -1;
		step(c, 50);
	}
	return 0;
}

/* Sends what is in the outbox now (a submit should not wait for a tick). */
static void
flush(struct term *c)
{
	if (c->fd >= 0)
		step(c, 0);
}

/* Submits r, waiting for the session and for a free slot when online.
 * Prints a `result ... err=` line for a refusal. */
static enum sokoterm_err
submit(struct term *c, const struct sokoterm_request *r)
{
	uint64_t end = mono_ms() + c->o->timeout_ms, op_id = 0;
	uint8_t txn[SOKOTERM_ID_LEN];
	enum sokoterm_err e;

	if (!c->is_manual_down)
		(void)wait_ready(c);
	for (;;) {
		e = sokoterm_submit(c->t, r, &op_id, txn);
		if (e != SOKOTERM_ERR_BUSY || mono_ms() >= end ||
		    c->is_manual_down)
			break;
		step(c, 20);
	}
	if (e != SOKOTERM_OK) {
		printf("result op=%s code=NONE err=%s dup=0 offline=0\n",
		       sim_op_name(r->op), err_name(e));
		fflush(stdout);
		return e;
	}
	if (is_money(r->op)) {
		if (c->n_money < MONEY_MAX)
			memcpy(c->money[c->n_money++], txn, SOKOTERM_ID_LEN);
		memcpy(c->last_txn, txn, SOKOTERM_ID_LEN);
		c->has_last = true;
	} else if (c->n_online < ONLINE_MAX) {
		c->online[c->n_online++] = op_id;
	}
	flush(c);
	return SOKOTERM_OK;
}

static uint64_t
queue_open(struct term *c)
{
	uint64_t n = 0, sum = 0;

	(void)sokoterm_queue_count(c->t, &n, &sum);
	return n;
}

/* Steps until every submitted op has its RESULT and the queue is empty;
 * 0, or -1 after the timeout (or at once while manually disconnected). */
static int
wait_all(struct term *c)
{
	uint64_t end = mono_ms() + c->o->timeout_ms;

	for (;;) {
		bool is_idle = c->n_money == 0 && c->n_online == 0;

		if (is_idle && (c->is_manual_down || queue_open(c) == 0))
			return 0;
		if (c->is_manual_down || mono_ms() >= end)
			return -1;
		step(c, 20);
	}
}

/* Splits s at blanks into at most max words; returns the count. */
static size_t
split(char *s, char **w, size_t max)
{
	size_t n = 0;

	while (n < max) {
		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0' || *s == '#')
			break;
		w[n++] = s;
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\r' &&
		       *s != '\n')
			s++;
		if (*s == '\0')
			break;
		*s++ = '\0';
	}
	return n;
}

static int
term_open(struct term *c, const struct sim_term_opts *o, bool is_quiet)
{
	struct sokoterm_config cfg;
	enum sokoterm_err e;

	memset(c, 0, sizeof *c);
	c->o = o;
	c->fd = -1;
	c->is_quiet = is_quiet;
	if (sim_prov_hostport(c->host, sizeof c->host, c->port, sizeof c->port,
	                      o->server) != 0) {
		fprintf(stderr, "soko-pos: bad --server %s\n", o->server);
		return -1;
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.terminal_id = o->terminal_id;
	cfg.key = o->key;
	cfg.firmware = "soko-pos";
	cfg.queue_path = o->queue_path;
	cfg.random = sokoterm_posix_random;
	cfg.on_event = on_event;
	cfg.event_ctx = c;
	cfg.keep_batches = o->keep_batches;
	if (o->offline_floor > 0) {
		/* the ops sokod accepts as advice (docs/pos-protocol.md
		 * §6.15) */
		cfg.offline.allowed_ops =
		    SOKOTERM_OP_BIT(SOKOTERM_OP_FLOAT_TRANSFER) |
		    SOKOTERM_OP_BIT(SOKOTERM_OP_BILL_PAY);
		cfg.offline.floor_limit = o->offline_floor;
		cfg.offline.total_limit = o->offline_total > 0
		                              ? o->offline_total
		                              : o->offline_floor;
	}
	if ((e = sokoterm_new(&c->t, &cfg)) != SOKOTERM_OK) {
		fprintf(stderr, "soko-pos: queue %s: %s\n", o->queue_path,
		        sokoterm_strerror(e));
		return -1;
	}
	/* the time before anything is stored (sokoterm.h) */
	(void)sokoterm_tick(c->t, sokoterm_posix_now_ms());
	return 0;
}

static void
term_close(struct term *c)
{
	link_close(c);
	if (c->t != NULL)
		sokoterm_disconnect(c->t);
	sokoterm_free(c->t);
	c->t = NULL;
}

/* One script line; -1 if it failed (the script goes on). */
static int
script_line(struct term *c, char *line)
{
	struct sokoterm_request r;
	const struct sim_currency *cur;
	char *w[8];
	size_t n = split(line, w, 8);

	if (n == 0)
		return 0;
	memset(&r, 0, sizeof r);
	if (strcmp(w[0], "float_transfer") == 0 && n == 4) {
		if ((cur = sim_prov_currency(w[3])) == NULL ||
		    sim_prov_amount(&r.amount, cur, w[2]) != 0) {
			fprintf(stderr,
			        "soko-pos: bad amount/currency: %s %s\n", w[2],
			        w[3]);
			return -1;
		}
		r.op = SOKOTERM_OP_FLOAT_TRANSFER;
		r.currency = cur->numeric;
		r.to_agent = w[1];
		snprintf(c->pending_detail, sizeof c->pending_detail,
		         "to %s %s %s", w[1], cur->alpha, w[2]);
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "bill_pay") == 0 && n == 5) {
		/* bill_pay BILLER:ITEM ACCOUNT AMOUNT CURRENCY */
		if ((cur = sim_prov_currency(w[4])) == NULL ||
		    sim_prov_amount(&r.amount, cur, w[3]) != 0) {
			fprintf(stderr,
			        "soko-pos: bad amount/currency: %s %s\n", w[3],
			        w[4]);
			return -1;
		}
		r.op = SOKOTERM_OP_BILL_PAY;
		r.currency = cur->numeric;
		r.biller = w[1];
		r.account = w[2];
		snprintf(c->pending_detail, sizeof c->pending_detail,
		         "bill %s %s %s %s", w[1], w[2], cur->alpha, w[3]);
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "bill_validate") == 0 && n == 3) {
		/* bill_validate BILLER:ITEM ACCOUNT */
		r.op = SOKOTERM_OP_BILL_VALIDATE;
		r.biller = w[1];
		r.account = w[2];
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if ((strcmp(w[0], "collect") == 0 || strcmp(w[0], "cash_out") == 0 ||
	     strcmp(w[0], "cash_in") == 0) &&
	    n == 5) {
		/* collect|cash_out|cash_in MSISDN PROVIDER AMOUNT CURRENCY */
		if ((cur = sim_prov_currency(w[4])) == NULL ||
		    sim_prov_amount(&r.amount, cur, w[3]) != 0) {
			fprintf(stderr,
			        "soko-pos: bad amount/currency: %s %s\n", w[3],
			        w[4]);
			return -1;
		}
		r.op = w[0][1] == 'o'   ? SOKOTERM_OP_COLLECT
		       : w[0][5] == 'o' ? SOKOTERM_OP_CASH_OUT
		                        : SOKOTERM_OP_CASH_IN;
		r.currency = cur->numeric;
		r.msisdn = w[1];
		r.provider = w[2];
		snprintf(c->pending_detail, sizeof c->pending_detail,
		         "%s %s via %s %s %s",
		         r.op == SOKOTERM_OP_CASH_IN ? "to" : "from", w[1], w[2],
		         cur->alpha, w[3]);
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if ((strcmp(w[0], "status") == 0 || strcmp(w[0], "receipt") == 0 ||
	     strcmp(w[0], "reversal") == 0) &&
	    n == 2) {
		r.op = w[0][0] == 's'   ? SOKOTERM_OP_STATUS
		       : w[0][2] == 'c' ? SOKOTERM_OP_RECEIPT
		                        : SOKOTERM_OP_REVERSAL;
		if (strcmp(w[1], "last") == 0 && c->has_last) {
			memcpy(r.txn_id, c->last_txn, SOKOTERM_ID_LEN);
		} else if (sim_prov_unhex(r.txn_id, SOKOTERM_ID_LEN, w[1]) !=
		           0) {
			fprintf(stderr, "soko-pos: bad txn id %s\n", w[1]);
			return -1;
		}
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "echo") == 0 && n == 1) {
		r.op = SOKOTERM_OP_ECHO;
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "release_held") == 0 && n == 1) {
		/* support: held entries back to the replay */
		uint64_t k = 0;
		enum sokoterm_err e = sokoterm_release_held(c->t, &k);

		printf("released n=%llu%s%s\n", (unsigned long long)k,
		       e != SOKOTERM_OK ? " err=" : "",
		       e != SOKOTERM_OK ? err_name(e) : "");
		flush(c);
		return e == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "eod") == 0 && (n == 1 || n == 2)) {
		/* batch close: the queue's batch, or batch N */
		char *end = NULL;

		r.op = SOKOTERM_OP_EOD_TOTALS;
		if (n == 2) {
			unsigned long long v = strtoull(w[1], &end, 10);

			if (end == w[1] || *end != '\0' || v == 0 ||
			    v > 0xffffffffULL) {
				fprintf(stderr, "soko-pos: bad batch %s\n",
				        w[1]);
				return -1;
			}
			r.batch_no = (uint32_t)v;
		}
		return submit(c, &r) == SOKOTERM_OK ? 0 : -1;
	}
	if (strcmp(w[0], "wait") == 0 && n == 1) {
		if (wait_all(c) == 0) {
			printf("wait ok\n");
			return 0;
		}
		printf("wait timeout open=%zu queue=%llu\n",
		       c->n_money + c->n_online,
		       (unsigned long long)queue_open(c));
		return -1;
	}
	if (strcmp(w[0], "sleep") == 0 && n == 2) {
		uint64_t end = mono_ms() + strtoull(w[1], NULL, 10);

		while (mono_ms() < end)
			step(c, 10);
		return 0;
	}
	if (strcmp(w[0], "disconnect") == 0 && n == 1) {
		c->is_manual_down = true;
		if (c->fd >= 0)
			link_down(c, SOKOTERM_ERR_CLOSED);
		return 0;
	}
	if (strcmp(w[0], "reconnect") == 0 && n == 1) {
		c->is_manual_down = false;
		c->reconnect_at = 0;
		return wait_ready(c);
	}
	fprintf(stderr, "soko-pos: unknown script line: %s\n", w[0]);
	return -1;
}

int
sim_term_script(const struct sim_term_opts *o)
{
	struct term *c = malloc(sizeof *c);
	char line[512];
	int rc = 0;

	if (c == NULL || term_open(c, o, false) != 0) {
		free(c);
		return 1;
	}
	if (wait_ready(c) != 0)
		fprintf(stderr, "soko-pos: no session with %s yet\n",
		        o->server);
	while (fgets(line, sizeof line, stdin) != NULL) {
		if (script_line(c, line) != 0)
			rc = 1;
		fflush(stdout);
	}
	if (!c->is_manual_down && wait_all(c) != 0) {
		printf("wait timeout open=%zu queue=%llu\n",
		       c->n_money + c->n_online,
		       (unsigned long long)queue_open(c));
		rc = 1;
	}
	printf("queue open=%llu\n", (unsigned long long)queue_open(c));
	fflush(stdout);
	term_close(c);
	free(c);
	return rc;
}

/* ---- interactive ------------------------------------------------------ */

static void
receipt_print(const struct term *c)
{
	const struct receipt *r = &c->rcpt;
	char when[32] = "-";

	if (!r->is_set) {
		printf("  (no receipt yet)\n");
		return;
	}
	if (r->time_ms != 0) {
		time_t s = (time_t)(r->time_ms / 1000u);
		struct tm tm;

		if (gmtime_r(&s, &tm) != NULL)
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
	}
	printf("  ================================\n"
	       "        SOKO AGENT RECEIPT\n"
	       "  terminal  %s\n"
	       "  operation %s %s\n"
	       "  result    %s%s%s\n"
	       "  ref       %s\n"
	       "%s%s%s"
	       "  txn       %.16s\n"
	       "            %s\n"
	       "  time      %s\n"
	       "  ================================\n",
	       c->o->terminal_id, r->op, r->detail, r->code,
	       r->why[0] != '\0' ? "\n            " : "", r->why,
	       r->ref[0] != '\0' ? r->ref : "-",
	       r->token[0] != '\0' ? "  TOKEN     " : "", r->token,
	       r->token[0] != '\0' ? "\n" : "", r->txn,
	       r->txn[0] != '\0' ? r->txn + 16 : "", when);
}

/* Prompts and reads one trimmed line into buf; false at EOF. */
static bool
ask(const char *prompt, char *buf, size_t cap)
{
	char *w[1];

	printf("%s", prompt);
	fflush(stdout);
	if (fgets(buf, (int)cap, stdin) == NULL)
		return false;
	if (split(buf, w, 1) == 0)
		buf[0] = '\0';
	else
		memmove(buf, w[0], strlen(w[0]) + 1);
	return true;
}

int
sim_term_interactive(const struct sim_term_opts *o)
{
	struct term *c = malloc(sizeof *c);
	char in[128], to[64], amt[64], prov[32], cur[8], line[256];

	if (c == NULL || term_open(c, o, true) != 0) {
		free(c);
		return 1;
	}
	printf("soko-pos terminal %s, server %s\n", o->terminal_id, o->server);
	if (wait_ready(c) != 0)
		printf("  OFFLINE: will keep trying\n");
	for (;;) {
		printf("\n[%s] 1 float transfer  2 status  3 echo  "
		       "4 reprint receipt  5 quit  6 collect  7 cash out  "
		       "8 cash in  9 end of day  10 pay a bill  11 void last\n",
		       sokoterm_state(c->t) == SOKOTERM_READY ? "online"
		                                              : "offline");
		if (!ask("> ", in, sizeof in) || strcmp(in, "5") == 0 ||
		    strcmp(in, "q") == 0)
			break;
		if (strcmp(in, "1") == 0) {
			if (!ask("  to agent: ", to, sizeof to) ||
			    !ask("  amount (KES): ", amt, sizeof amt))
				break;
			snprintf(line, sizeof line, "float_transfer %s %s KES",
			         to, amt);
		} else if (strcmp(in, "2") == 0) {
			if (!ask("  txn id (hex, or last): ", to, sizeof to))
				break;
			snprintf(line, sizeof line, "status %s", to);
		} else if (strcmp(in, "6") == 0 || strcmp(in, "7") == 0 ||
		           strcmp(in, "8") == 0) {
			/* the answer is PENDING; the outcome is pushed
			 * (COLLECT_RESULT) and waited for like any other */
			if (!ask("  customer msisdn: ", to, sizeof to) ||
			    !ask("  provider (mpesa, momo, ...): ", prov,
			         sizeof prov) ||
			    !ask("  amount: ", amt, sizeof amt) ||
			    !ask("  currency (KES, EUR, ...): ", cur,
			         sizeof cur))
				break;
			snprintf(line, sizeof line, "%s %s %s %s %s",
			         in[0] == '6'   ? "collect"
			         : in[0] == '7' ? "cash_out"
			                        : "cash_in",
			         to, prov, amt, cur);
		} else if (strcmp(in, "10") == 0) {
			/* validate (the customer's name and what is due),
			 * confirm, pay from the float: the token is printed */
			const struct sim_currency *ngn = sim_prov_currency("NGN");
			char due[64] = "-";

			if (!ask("  biller (BILLER:ITEM): ", prov, sizeof prov) ||
			    !ask("  account / meter: ", to, sizeof to))
				break;
			snprintf(line, sizeof line, "bill_validate %s %s", prov,
			         to);
			c->bill_name[0] = '\0';
			c->has_bill_due = false;
			if (script_line(c, line) != 0 || wait_all(c) != 0 ||
			    c->bill_name[0] == '\0') {
				printf("  not a customer of this biller, or no "
				       "answer: nothing paid\n");
				continue;
			}
			if (c->has_bill_due)
				sim_prov_amount_str(due, sizeof due, ngn,
				                    (int64_t)c->bill_due);
			printf("  customer  %s\n  due       NGN %s\n",
			       c->bill_name, due);
			if (!ask("  amount (NGN, empty: cancel): ", amt,
			         sizeof amt))
				break;
			if (amt[0] == '\0')
				continue;
			snprintf(line, sizeof line, "bill_pay %s %s %s NGN",
			         prov, to, amt);
		} else if (strcmp(in, "11") == 0) {
			/* the agent voids the last transaction (queued
			 * until the server answers) */
			snprintf(line, sizeof line, "reversal last");
		} else if (strcmp(in, "9") == 0) {
			/* batch close: the totals of both sides printed */
			snprintf(line, sizeof line, "eod");
			if (script_line(c, line) != 0 || wait_all(c) != 0)
				printf("  no answer yet: close again later "
				       "(the same batch is sent)\n");
			continue;
		} else if (strcmp(in, "3") == 0) {
			snprintf(line, sizeof line, "echo");
		} else if (strcmp(in, "4") == 0) {
			receipt_print(c);
			continue;
		} else {
			continue;
		}
		if (script_line(c, line) == 0 && wait_all(c) == 0 &&
		    strcmp(in, "3") != 0)
			receipt_print(c);
		else if (strcmp(in, "3") != 0)
			printf("  no answer yet: the terminal keeps it queued "
			       "and resolves it later\n");
	}
	term_close(c);
	free(c);
	return 0;
}
