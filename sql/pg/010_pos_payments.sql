-- 010_pos_payments.sql (PostgreSQL): as sql/sqlite/010_pos_payments.sql
-- column for column (see there for the meaning).
CREATE TABLE pos_payments (
	payment_id  bigint  PRIMARY KEY
	            REFERENCES prov_payments (payment_id),
	terminal_id text    COLLATE "C" NOT NULL,
	txn_id      bytea   NOT NULL CHECK (length(txn_id) = 16),
	type        integer NOT NULL CHECK (type BETWEEN 1 AND 16383),
	acked_ms    bigint,
	UNIQUE (terminal_id, txn_id)
);
CREATE INDEX pos_payments_open ON pos_payments (terminal_id, payment_id)
	WHERE acked_ms IS NULL;
