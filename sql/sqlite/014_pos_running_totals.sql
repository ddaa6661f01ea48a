-- 014_pos_running_totals.sql (SQLite): EOD totals of POS transactions
-- (pos_txns) kept as running totals in the commit that decides each
-- transaction, instead of stamped on every row by the close and summed
-- through the index pos_txns_batch (docs/pos-protocol.md §6.16,
-- docs/benchmarks.md "pos_txns_batch measured alone").  SQLite only:
-- PostgreSQL keeps 004's stamping (see below).
--
-- Why: pos_txns_batch was keyed (terminal_id, batch_no), so every group
-- commit dirtied one leaf page of it per terminal in the commit; dropping
-- it gave +14 % end to end.  pos_open_totals holds one row per
-- (terminal, type, currency) of the open batch: a few thousand short rows
-- in a few dozen pages that every commit shares.
--
-- pos_open_totals: count and sum of the terminal's approved (rc 0), not
-- reversed pos_txns rows committed since its last close; the batch
-- write adds each new approved row (store_sqlite.c S_OPEN_ADD).
-- pos_batch_totals: the same, per closed batch: the close moves the
-- terminal's open totals here, in the transaction that records it.
-- pos_batches.upto_txn_id: the highest ledger transaction id when the
-- batch closed.  SQLite has one writer and ledger ids grow with every
-- commit, so an approved row belongs to the terminal's first close with
-- upto_txn_id >= its ledger_txn_id, or to the open batch if none.  A
-- reversal (txns.reverses_txn_id) takes its original, found through
-- pos_txns_ledger, out of that batch's totals in the reversal's own
-- commit, so a repeated EOD_TOTALS of a closed batch still shows it
-- reversed, as before.
-- PostgreSQL: several sokod commit at once, so "the highest ledger id at
-- the close" does not split what committed before it from what did not;
-- there the close still stamps the rows (004), which is exact under
-- concurrency.
--
-- pos_txns.batch_no is neither written nor read from now on (rows keep
-- the stamps they had; dropping the column would copy the table).
ALTER TABLE pos_batches ADD COLUMN upto_txn_id INTEGER NOT NULL DEFAULT 0;
-- earlier closes: the highest ledger id of the terminal's rows stamped
-- by this close or an earlier one (closes ordered by closed_ms, then
-- batch_no): each batch's own maximum in one pass over pos_txns, then
-- a running maximum per terminal, so the cost grows with the rows, not
-- with batches times rows
CREATE TEMP TABLE m014 AS
	SELECT b.terminal_id, b.batch_no, b.closed_ms, x.m
	FROM pos_batches b LEFT JOIN (
		SELECT terminal_id, batch_no, MAX(ledger_txn_id) AS m
		FROM pos_txns WHERE batch_no IS NOT NULL
		GROUP BY terminal_id, batch_no) x
	ON x.terminal_id = b.terminal_id AND x.batch_no = b.batch_no;
UPDATE pos_batches SET upto_txn_id = COALESCE(w.u, 0)
	FROM (SELECT terminal_id, batch_no, MAX(m) OVER (
	          PARTITION BY terminal_id ORDER BY closed_ms, batch_no
	          ROWS UNBOUNDED PRECEDING) AS u
	      FROM m014) AS w
	WHERE w.terminal_id = pos_batches.terminal_id
	AND w.batch_no = pos_batches.batch_no;
DROP TABLE temp.m014;
CREATE INDEX pos_batches_upto ON pos_batches (terminal_id, upto_txn_id);

CREATE TABLE pos_open_totals (
	terminal_id TEXT    NOT NULL,
	type        INTEGER NOT NULL,
	currency    INTEGER NOT NULL,
	count       INTEGER NOT NULL,
	sum_minor   INTEGER NOT NULL,
	PRIMARY KEY (terminal_id, type, currency)
) WITHOUT ROWID;
CREATE TABLE pos_batch_totals (
	terminal_id TEXT    NOT NULL,
	batch_no    INTEGER NOT NULL,
	type        INTEGER NOT NULL,
	currency    INTEGER NOT NULL,
	count       INTEGER NOT NULL,
	sum_minor   INTEGER NOT NULL,
	PRIMARY KEY (terminal_id, batch_no, type, currency)
) WITHOUT ROWID;
INSERT INTO pos_open_totals (terminal_id, type, currency, count, sum_minor)
	SELECT terminal_id, type, currency, COUNT(*), SUM(amount_minor)
	FROM pos_txns p WHERE p.batch_no IS NULL AND p.rc = 0
	AND NOT EXISTS (SELECT 1 FROM txns r
	                WHERE r.reverses_txn_id = p.ledger_txn_id)
	GROUP BY terminal_id, type, currency;
INSERT INTO pos_batch_totals (terminal_id, batch_no, type, currency, count,
	sum_minor)
	SELECT terminal_id, batch_no, type, currency, COUNT(*),
	       SUM(amount_minor)
	FROM pos_txns p WHERE p.batch_no IS NOT NULL AND p.rc = 0
	AND NOT EXISTS (SELECT 1 FROM txns r
	                WHERE r.reverses_txn_id = p.ledger_txn_id)
	GROUP BY terminal_id, batch_no, type, currency;

DROP INDEX pos_txns_batch;
-- a reversal's original; ledger ids grow, so new entries land at the
-- right edge of this index
CREATE INDEX pos_txns_ledger ON pos_txns (ledger_txn_id)
	WHERE ledger_txn_id IS NOT NULL;
