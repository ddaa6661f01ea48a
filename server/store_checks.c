/*
 * store_checks.c - the ledger invariants as SQL that both backends run for
 * verify() (docs/architecture.md §Invariants).  Every query returns one row
 * per violation; columns are named so the report reads "txn_id=7 sum=3".
 * Standard SQL only: SQLite and PostgreSQL run the same text.
 */
#include "store_int.h"

const struct store_check store_checks[] = {
	{"unbalanced_txn",
	 "SELECT txn_id, currency, SUM(amount_minor) AS sum FROM postings "
	 "GROUP BY txn_id, currency HAVING SUM(amount_minor) <> 0"},
	{"currency_sum_nonzero",
	 "SELECT currency, SUM(amount_minor) AS sum FROM postings "
	 "GROUP BY currency HAVING SUM(amount_minor) <> 0"},
	{"txn_too_few_postings",
	 "SELECT t.id AS txn_id, (SELECT COUNT(*) FROM postings p "
	 "WHERE p.txn_id = t.id) AS n FROM txns t WHERE (SELECT COUNT(*) "
	 "FROM postings p WHERE p.txn_id = t.id) < 2"},
	{"posting_currency_mismatch",
	 "SELECT p.txn_id, p.leg, p.currency, a.currency AS account_currency, "
	 "t.currency AS txn_currency FROM postings p "
	 "JOIN accounts a ON a.id = p.account_id "
	 "JOIN txns t ON t.id = p.txn_id "
	 "WHERE p.currency <> a.currency OR p.currency <> t.currency"},
	{"txn_amount_mismatch",
	 "SELECT t.id AS txn_id, t.amount_minor, s.credits FROM txns t "
	 "JOIN (SELECT txn_id, SUM(CASE WHEN amount_minor > 0 THEN amount_minor "
	 "ELSE 0 END) AS credits FROM postings GROUP BY txn_id) s "
	 "ON s.txn_id = t.id WHERE s.credits <> t.amount_minor"},
	{"balance_cache_mismatch",
	 "SELECT a.id AS account_id, a.code, a.balance_minor, "
	 "COALESCE(s.total, 0) AS postings_sum FROM accounts a "
	 "LEFT JOIN (SELECT account_id, SUM(amount_minor) AS total "
	 "FROM postings GROUP BY account_id) s ON s.account_id = a.id "
	 "WHERE a.balance_minor <> COALESCE(s.total, 0)"},
	{"below_floor",
	 "SELECT id AS account_id, code, balance_minor, floor_minor "
	 "FROM accounts WHERE has_floor = 1 AND balance_minor < floor_minor"},
	{"reversal_not_compensating",
	 "SELECT r.id AS txn_id, r.reverses_txn_id FROM txns r "
	 "WHERE r.reverses_txn_id IS NOT NULL AND ("
	 "(SELECT COUNT(*) FROM postings p WHERE p.txn_id = r.id) <> "
	 "(SELECT COUNT(*) FROM postings o WHERE o.txn_id = r.reverses_txn_id) "
	 "OR EXISTS (SELECT 1 FROM postings p WHERE p.txn_id = r.id AND NOT "
	 "EXISTS (SELECT 1 FROM postings o WHERE o.txn_id = r.reverses_txn_id "
	 "AND o.leg = p.leg AND o.account_id = p.account_id "
	 "AND o.amount_minor = -p.amount_minor)))"},
	{"reversal_of_reversal",
	 "SELECT r.id AS txn_id, r.reverses_txn_id FROM txns r "
	 "JOIN txns o ON o.id = r.reverses_txn_id WHERE o.kind = 3"},
	{"idem_txn_missing",
	 "SELECT i.key, i.txn_id FROM idem i WHERE i.rc = 0 AND NOT EXISTS "
	 "(SELECT 1 FROM txns t WHERE t.id = i.txn_id)"},
	{"payment_illegal_transition",
	 "SELECT e.payment_id, e.id AS event_id, e.from_state, e.to_state "
	 "FROM payment_events e WHERE e.from_state IS NOT NULL AND NOT EXISTS "
	 "(SELECT 1 FROM payment_edges g WHERE g.from_state = e.from_state "
	 "AND g.to_state = e.to_state)"},
	{"payment_broken_trail",
	 "SELECT e.payment_id, e.id AS event_id, e.from_state FROM "
	 "payment_events e WHERE COALESCE(e.from_state, 0) <> COALESCE((SELECT "
	 "e2.to_state FROM payment_events e2 WHERE e2.payment_id = "
	 "e.payment_id AND e2.id < e.id ORDER BY e2.id DESC LIMIT 1), 0)"},
	{"payment_state_not_trail",
	 "SELECT p.id AS payment_id, p.state FROM payments p WHERE p.state <> "
	 "COALESCE((SELECT e.to_state FROM payment_events e WHERE "
	 "e.payment_id = p.id ORDER BY e.id DESC LIMIT 1), 0)"},
	/* provider payments: a succeeded one was settled by its ledger
	 * transaction (ledger_req.prov), of its amount and currency (a
	 * disbursement's and a bill's move their fee with the amount:
	 * docs/payments.md §13) */
	{"prov_succeeded_without_txn",
	 "SELECT p.id AS payment_id, p.ref FROM payments p "
	 "JOIN prov_payments v ON v.payment_id = p.id "
	 "WHERE p.state = 3 AND p.txn_id IS NULL"},
	{"prov_txn_mismatch",
	 "SELECT p.id AS payment_id, p.txn_id, p.amount_minor, p.currency, "
	 "t.amount_minor AS txn_amount, t.currency AS txn_currency "
	 "FROM payments p JOIN prov_payments v ON v.payment_id = p.id "
	 "JOIN txns t ON t.id = p.txn_id "
	 "WHERE t.amount_minor <> p.amount_minor + CASE WHEN v.kind IN "
	 "(2, 3) THEN v.fee_minor ELSE 0 END OR t.currency <> p.currency"},
	/* disbursements (docs/payments.md §Disbursements): a holding
	 * account holds exactly the disbursements not yet final (created,
	 * pending, unknown) */
	{"disb_hold_mismatch",
	 "SELECT a.id AS account_id, a.code, a.balance_minor, h.held "
	 "FROM accounts a JOIN (SELECT v.hold_account_id AS id, "
	 "SUM(CASE WHEN p.state IN (1, 2, 6) THEN p.amount_minor + "
	 "v.fee_minor ELSE 0 END) "
	 "AS held FROM payments p JOIN prov_payments v ON v.payment_id = p.id "
	 "WHERE v.kind = 2 GROUP BY v.hold_account_id) h ON h.id = a.id "
	 "WHERE a.balance_minor <> h.held"},
	{"posting_orphan",
	 "SELECT p.txn_id, p.leg, p.account_id FROM postings p "
	 "WHERE NOT EXISTS (SELECT 1 FROM accounts a "
	 "WHERE a.id = p.account_id) "
	 "OR NOT EXISTS (SELECT 1 FROM txns t WHERE t.id = p.txn_id)"},
	{NULL, NULL},
};
