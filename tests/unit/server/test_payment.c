/*
 * test_payment.c - unit tests for server/payment.c: every (from, to) pair
 * of states 0..7 against the documented edges, final states, names, and
 * the payment_edges table of the SQLite schema against payment_edges[].
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "payment.h"
#include "store.h"

#define N_PROBE 8 /* states 0..7: every real one plus one either side */

/* The edges documented in payment.h, written out independently. */
static bool
documented_edge(unsigned from, unsigned to)
{
	switch (from) {
	case PAY_CREATED:
		return to == PAY_PENDING || to == PAY_FAILED;
	case PAY_PENDING:
		return to == PAY_SUCCEEDED || to == PAY_FAILED ||
		       to == PAY_UNKNOWN;
	case PAY_UNKNOWN:
		return to == PAY_SUCCEEDED || to == PAY_FAILED;
	case PAY_SUCCEEDED:
		return to == PAY_REVERSED;
	}
	return false;
}

static void
test_transitions_exhaustive(void)
{
	unsigned from, to, n = 0;

	for (from = 0; from < N_PROBE; from++)
		for (to = 0; to < N_PROBE; to++) {
			bool want = documented_edge(from, to);
			bool got = payment_can_transition((uint8_t)from,
			                                  (uint8_t)to);

			if (got != want)
				fprintf(stderr, "  %u -> %u: got %d\n", from,
				        to, got);
			CHECK_EQ_INT(got, want);
			n += want;
		}
	CHECK_EQ_INT(n, 8);
	/* out-of-range bytes never match */
	CHECK(!payment_can_transition(255, PAY_PENDING));
	CHECK(!payment_can_transition(PAY_CREATED, 255));
}

static void
test_edge_table(void)
{
	unsigned i, j;

	CHECK_EQ_INT(payment_n_edges, 8);
	for (i = 0; i < payment_n_edges; i++) {
		CHECK(documented_edge(payment_edges[i][0],
		                      payment_edges[i][1]));
		for (j = 0; j < i; j++)
			CHECK(payment_edges[i][0] != payment_edges[j][0] ||
			      payment_edges[i][1] != payment_edges[j][1]);
	}
}

static void
test_final(void)
{
	unsigned s;

	for (s = 0; s < N_PROBE; s++) {
		bool want = s == PAY_FAILED || s == PAY_REVERSED;

		if (payment_is_final((uint8_t)s) != want)
			fprintf(stderr, "  state %u\n", s);
		CHECK_EQ_INT(payment_is_final((uint8_t)s), want);
	}
	CHECK(!payment_is_final(255));
}

static void
test_names(void)
{
	static const char *const want[N_PROBE] = {
		NULL,     "created",  "pending", "succeeded",
		"failed", "reversed", "unknown", NULL,
	};
	unsigned s;

	for (s = 0; s < N_PROBE; s++) {
		const char *name = payment_state_name((uint8_t)s);

		if (want[s] == NULL) {
			CHECK_EQ_STR(name, "?");
			continue;
		}
		CHECK_EQ_STR(name, want[s]);
		CHECK_EQ_INT(payment_state_parse(name), s);
	}
	CHECK_EQ_INT(payment_state_parse("?"), -1);
	CHECK_EQ_INT(payment_state_parse(""), -1);
	CHECK_EQ_INT(payment_state_parse("CREATED"), -1);
	CHECK_EQ_INT(payment_state_parse("create"), -1);
	CHECK_EQ_INT(payment_state_parse("created "), -1);
	CHECK_EQ_STR(payment_state_name(255), "?");
}

/* The schema's edge table (sql/sqlite/002_payments.sql) is the database's
 * own copy of payment_edges[]: its trigger refuses anything else. */
static void
test_schema_edges(void)
{
	char path[] = "/tmp/soko_test_payment_XXXXXX";
	char err[256] = "";
	bool seen[N_PROBE][N_PROBE];
	struct store *st;
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	unsigned i, n_rows = 0;
	int fd, rc;

	memset(seen, 0, sizeof seen);
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd < 0)
		return;
	close(fd);
	st = store_sqlite_open(path, err, sizeof err);
	if (st == NULL)
		fprintf(stderr, "  store_sqlite_open: %s\n", err);
	CHECK(st != NULL);
	store_close(st);
	if (st == NULL)
		goto out;

	CHECK_EQ_INT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL),
	             SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(db,
	                                "SELECT from_state, to_state "
	                                "FROM payment_edges",
	                                -1, &q, NULL),
	             SQLITE_OK);
	while (q != NULL && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		int from = sqlite3_column_int(q, 0);
		int to = sqlite3_column_int(q, 1);

		n_rows++;
		CHECK(from >= 0 && from < N_PROBE && to >= 0 && to < N_PROBE);
		if (from < 0 || from >= N_PROBE || to < 0 || to >= N_PROBE)
			continue;
		if (!payment_can_transition((uint8_t)from, (uint8_t)to))
			fprintf(stderr, "  schema has %d -> %d\n", from, to);
		CHECK(payment_can_transition((uint8_t)from, (uint8_t)to));
		CHECK(!seen[from][to]);
		seen[from][to] = true;
	}
	CHECK(q != NULL);
	CHECK_EQ_INT(n_rows, payment_n_edges);
	for (i = 0; i < payment_n_edges; i++) {
		if (!seen[payment_edges[i][0]][payment_edges[i][1]])
			fprintf(stderr, "  schema lacks %u -> %u\n",
			        payment_edges[i][0], payment_edges[i][1]);
		CHECK(seen[payment_edges[i][0]][payment_edges[i][1]]);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
out:
	unlink(path);
	/* WAL mode leaves these beside the database */
	{
		char side[sizeof path + 8];

		snprintf(side, sizeof side, "%s-wal", path);
		unlink(side);
		snprintf(side, sizeof side, "%s-shm", path);
		unlink(side);
	}
}

int
main(void)
{
	RUN(test_transitions_exhaustive);
	RUN(test_edge_table);
	RUN(test_final);
	RUN(test_names);
	RUN(test_schema_edges);
	return check_report("payment");
}
