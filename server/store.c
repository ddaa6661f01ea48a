/*
 * store.c - backend selection by URL and names (store.h).
 */
#include "store.h"
#include "store_int.h"

#include <stdio.h>
#include <string.h>

struct store *
store_open(const char *url, char *err, size_t errlen)
{
	if (strncmp(url, "sqlite:", 7) == 0)
		return store_sqlite_open(url + 7, err, errlen);
	if (strncmp(url, "pg:", 3) == 0)
		return store_pg_open(url + 3, err, errlen);
	if (strncmp(url, "postgresql://", 13) == 0 ||
	    strncmp(url, "postgres://", 11) == 0)
		return store_pg_open(url, err, errlen);
	snprintf(err, errlen,
	         "unknown store URL \"%s\" (want sqlite:PATH or "
	         "postgresql://...)",
	         url);
	return NULL;
}

const char *
store_rc_name(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:
		return "ok";
	case STORE_NOT_FOUND:
		return "not_found";
	case STORE_CONFLICT:
		return "conflict";
	case STORE_RETRY:
		return "retry";
	case STORE_FAIL:
		return "fail";
	}
	return "?";
}

const char *
store_pos_status_name(uint8_t status)
{
	return status == STORE_POS_BLOCKED ? "blocked" : "active";
}

uint8_t
store_pos_status_parse(const char *s)
{
	if (strcmp(s, "active") == 0)
		return STORE_POS_ACTIVE;
	if (strcmp(s, "blocked") == 0)
		return STORE_POS_BLOCKED;
	return 0;
}

enum store_rc
store_pos_pay_taken(struct store *st, struct store_prov *p,
                    const struct store_pos_link *l)
{
	/* the ref (or the terminal's txn id) is taken: hand back the
	 * payment of this terminal's txn id */
	enum store_rc g =
	    st->ops->pos_pay_get(st, l->terminal_id, l->txn_id, p, NULL);

	if (g == STORE_NOT_FOUND) {
		p->pay.id = 0;
		return store_fail(st, STORE_FAIL,
		                  "pos payment %s: its txn id is taken (by a "
		                  "ledger request under its claimed key, or "
		                  "another payment's ref)", p->pay.ref);
	}
	return g == STORE_OK ? STORE_CONFLICT : g;
}
