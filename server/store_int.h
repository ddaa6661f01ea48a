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

#endif
