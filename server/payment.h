/*
 * payment.h - the payment state machine (docs/architecture.md §Payments).
 *
 *   created -> pending -> succeeded | failed | unknown
 *   created -> failed                (refused before reaching a provider)
 *   unknown -> succeeded | failed    (status query or reconciliation only)
 *   succeeded -> reversed
 *
 * Pure: no I/O, no clock.  The same edge table is loaded into the database
 * (sql/<backend>/002_payments.sql) whose trigger refuses any other transition, so
 * an illegal transition is impossible, not merely unlikely.
 */
#ifndef SOKO_PAYMENT_H
#define SOKO_PAYMENT_H

#include <stdbool.h>
#include <stdint.h>

#define PAYMENT_STATES(X)                                                    \
	X(CREATED, 1, "created")                                             \
	X(PENDING, 2, "pending")                                             \
	X(SUCCEEDED, 3, "succeeded")                                         \
	X(FAILED, 4, "failed")                                               \
	X(REVERSED, 5, "reversed")                                           \
	X(UNKNOWN, 6, "unknown")

enum payment_state {
#define X(name, val, str) PAY_##name = val,
	PAYMENT_STATES(X)
#undef X
};

#define PAYMENT_REF_MAX    64
#define PAYMENT_REASON_MAX 128

struct payment {
	int64_t id;
	char ref[PAYMENT_REF_MAX + 1]; /* unique external reference */
	uint8_t state;                 /* enum payment_state */
	uint16_t currency;
	int64_t amount_minor;
	int64_t txn_id; /* ledger transaction once posted, or 0 */
	int64_t created_ms;
	int64_t updated_ms;
};

struct payment_event {
	uint8_t from; /* 0 for the creation event */
	uint8_t to;
	char reason[PAYMENT_REASON_MAX + 1];
	int64_t at_ms;
};

/* Is from -> to an allowed edge? */
bool payment_can_transition(uint8_t from, uint8_t to);
/* Is s final (no edge leaves it)? */
bool payment_is_final(uint8_t s);
const char *payment_state_name(uint8_t s); /* "?" if unknown */
int payment_state_parse(const char *s);    /* -1 if unknown */

/* The edge table, for migrations and docs: pairs {from, to}, n_edges. */
extern const uint8_t payment_edges[][2];
extern const unsigned payment_n_edges;

#endif
