-- 010_pos_payments.sql (SQLite): provider payments started by a POS
-- terminal (COLLECT, CASH_OUT: docs/pos-protocol.md §6.5-6.8, §12;
-- docs/payments.md §POS).  Same columns as sql/pg/010_pos_payments.sql.
--
-- One row per (terminal, terminal txn id), written in the same
-- transaction as the payment it names (store pos_pay_create), so a
-- terminal's txn id has at most one provider payment, ever.  type is the
-- POS request type (0x0010 COLLECT, 0x0012 CASH_OUT,
-- 0x0021 BILL_PAY).  acked_ms is NULL
-- until the terminal acknowledges the payment's final outcome
-- (COLLECT_RESULT_ACK): the rows of a terminal whose payment is final
-- and acked_ms NULL are the results redelivered after its next login.
-- A BILL_PAY is written with acked_ms set: its outcome carries a token
-- COLLECT_RESULT has no key for, so the terminal learns it by STATUS.
CREATE TABLE pos_payments (
	payment_id  INTEGER PRIMARY KEY
	            REFERENCES prov_payments (payment_id),
	terminal_id TEXT    NOT NULL,
	txn_id      BLOB    NOT NULL CHECK (length(txn_id) = 16),
	type        INTEGER NOT NULL CHECK (type BETWEEN 1 AND 16383),
	acked_ms    INTEGER,
	UNIQUE (terminal_id, txn_id)
);
-- the results still to deliver, per terminal
CREATE INDEX pos_payments_open ON pos_payments (terminal_id, payment_id)
	WHERE acked_ms IS NULL;
