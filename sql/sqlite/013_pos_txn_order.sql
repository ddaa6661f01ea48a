-- 013_pos_txn_order.sql (SQLite): pos_txns keyed (txn_id, terminal_id)
-- instead of (terminal_id, txn_id).  Same change as
-- sql/pg/013_pos_txn_order.sql.
--
-- Why: a group commit of N POS transactions from N terminals dirtied one
-- leaf page of this table per terminal (each terminal's rows were
-- clustered together), so every commit wrote about 4 KB per transaction
-- to the WAL for this table alone (docs/benchmarks.md "Write volume per
-- POS transaction").  Terminal transaction ids are time-ordered (UUIDv7,
-- docs/pos-protocol.md §6.2), so with the txn id first new rows land at
-- the right edge of the tree: a commit dirties a few pages whatever the
-- number of terminals.  Lookups are by both columns (equality), so the
-- order changes nothing else.  The POS idempotency keys of the ledger
-- (idem, txns.idem_key) now put the txn id first for the same reason
-- ("pos:<txn id hex>:<terminal>", server/svc_pos.c); keys written before
-- keep the old order and are still found.
CREATE TABLE pos_txns_013 (
	terminal_id   TEXT    NOT NULL,
	txn_id        BLOB    NOT NULL CHECK (length(txn_id) = 16),
	type          INTEGER NOT NULL CHECK (type BETWEEN 0 AND 16383),
	is_advice     INTEGER NOT NULL DEFAULT 0 CHECK (is_advice IN (0, 1)),
	currency      INTEGER NOT NULL,
	amount_minor  INTEGER NOT NULL CHECK (amount_minor >= 0),
	counterparty  TEXT    NOT NULL DEFAULT '',
	local_time_ms INTEGER NOT NULL DEFAULT 0,
	rc            INTEGER NOT NULL,
	ledger_txn_id INTEGER,
	created_ms    INTEGER NOT NULL,
	batch_no      INTEGER,
	PRIMARY KEY (txn_id, terminal_id)
) WITHOUT ROWID;
INSERT INTO pos_txns_013 (terminal_id, txn_id, type, is_advice, currency,
	amount_minor, counterparty, local_time_ms, rc, ledger_txn_id,
	created_ms, batch_no)
	SELECT terminal_id, txn_id, type, is_advice, currency, amount_minor,
	       counterparty, local_time_ms, rc, ledger_txn_id, created_ms,
	       batch_no
	FROM pos_txns;
DROP TABLE pos_txns;
ALTER TABLE pos_txns_013 RENAME TO pos_txns;
-- EOD totals and the close: a terminal's open (NULL) or closed batch.
CREATE INDEX pos_txns_batch ON pos_txns (terminal_id, batch_no);
