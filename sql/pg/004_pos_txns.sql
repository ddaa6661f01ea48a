-- 004_pos_txns.sql (PostgreSQL): as sql/sqlite/004_pos_txns.sql column
-- for column (see there for the meaning).

CREATE TABLE pos_txns (
	terminal_id   text     COLLATE "C" NOT NULL,
	txn_id        bytea    NOT NULL CHECK (length(txn_id) = 16),
	type          integer  NOT NULL CHECK (type BETWEEN 0 AND 16383),
	is_advice     boolean  NOT NULL DEFAULT false,
	currency      integer  NOT NULL,
	amount_minor  bigint   NOT NULL CHECK (amount_minor >= 0),
	counterparty  text     NOT NULL DEFAULT '',
	local_time_ms bigint   NOT NULL DEFAULT 0,
	rc            smallint NOT NULL,
	ledger_txn_id bigint,
	created_ms    bigint   NOT NULL,
	batch_no      bigint,
	PRIMARY KEY (terminal_id, txn_id)
);
CREATE INDEX pos_txns_batch ON pos_txns (terminal_id, batch_no);

CREATE TABLE pos_batches (
	terminal_id text   COLLATE "C" NOT NULL,
	batch_no    bigint NOT NULL,
	closed_ms   bigint NOT NULL,
	PRIMARY KEY (terminal_id, batch_no)
);
