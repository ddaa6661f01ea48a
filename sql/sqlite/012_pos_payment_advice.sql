-- 012_pos_payment_advice.sql (SQLite): a POS provider payment uploaded
-- by ADVICE_BATCH (a bill paid in cash while the terminal was offline,
-- answered STORED: docs/pos-protocol.md §6.15, §12).  Same column as
-- sql/pg/012_pos_payment_advice.sql.  Rows written before are online
-- requests (0).
ALTER TABLE pos_payments ADD COLUMN is_advice INTEGER NOT NULL DEFAULT 0
	CHECK (is_advice IN (0, 1));
