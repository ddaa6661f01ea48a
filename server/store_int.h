/*
 * store_int.h - shared by the storage backends only (not by services).
 */
#ifndef SOKO_STORE_INT_H
#define SOKO_STORE_INT_H

#include <stdarg.h>

#include "store.h"

struct store_check {
	const char *what; /* invariant name, e.g. "unbalanced_txn" */
	const char *sql;  /* one row per violation */
};
extern const struct store_check store_checks[]; /* NULL-terminated */

/* Sets st->errstr (printf-style) and returns rc. */
enum store_rc store_fail(struct store *st, enum store_rc rc, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));

/* pos_pay_create's insert met a unique key (STORE_CONFLICT), its
 * transaction rolled back: the payment this terminal's txn id already has
 * into *p and CONFLICT, or FAIL when the key is another payment's. */
enum store_rc store_pos_pay_taken(struct store *st, struct store_prov *p,
                                  const struct store_pos_link *l);

#endif
