-- 004_pos_txns.sql (SQLite): what each POS request decided, and batch
-- closes (docs/pos-protocol.md §6.13-6.16, §9).  Same columns as
-- sql/pg/004_pos_txns.sql.
--
-- pos_txns: one row per (terminal, terminal txn id), written by the
-- ledger batch that decides the request, in the same transaction as its
-- idempotency record ("pos:<terminal>:<txn id hex>"), never updated.
-- type 0 is a tombstone: a REVERSAL of a txn id the server never saw,
-- holding the key so a late original moves nothing (§9.3).  Whether a
-- row was reversed is read through txns.reverses_txn_id (unique index
-- txns_reverses).  batch_no is NULL until EOD_TOTALS closes the
-- terminal's batch: the close stamps every row the terminal has then, so
-- a batch is exactly what was committed before its close.
CREATE TABLE pos_txns (
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
	PRIMARY KEY (terminal_id, txn_id)
) WITHOUT ROWID;
-- EOD totals and the close: a terminal's open (NULL) or closed batch.
CREATE INDEX pos_txns_batch ON pos_txns (terminal_id, batch_no);

-- EOD_TOTALS: one row per closed batch; idempotent by batch_no.
CREATE TABLE pos_batches (
	terminal_id TEXT    NOT NULL,
	batch_no    INTEGER NOT NULL,
	closed_ms   INTEGER NOT NULL,
	PRIMARY KEY (terminal_id, batch_no)
) WITHOUT ROWID;
