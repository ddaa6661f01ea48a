-- 012_pos_payment_advice.sql (SQLite): POS provider payments uploaded as
-- advices, and in end-of-day batches (docs/pos-protocol.md §6.15, §6.16,
-- §12).  Same columns as sql/pg/012_pos_payment_advice.sql.
--
-- is_advice: the payment came in an ADVICE_BATCH (a bill paid in cash
-- offline, answered STORED); rows written before are online requests.
-- Such a row is written with acked_ms set (nothing to push: the terminal
-- finished it at STORED); an online BILL_PAY's, unlike 010 says, from
-- now on with acked_ms NULL: its outcome is pushed with its token
-- (COLLECT_RESULT key 9).
-- batch_no: the terminal's EOD batch the payment belongs to, stamped by
-- the close (store pos_batch_close) like pos_txns.batch_no, in the same
-- transaction; NULL while the batch is open.
ALTER TABLE pos_payments ADD COLUMN is_advice INTEGER NOT NULL DEFAULT 0
	CHECK (is_advice IN (0, 1));
ALTER TABLE pos_payments ADD COLUMN batch_no INTEGER
	CHECK (batch_no IS NULL OR batch_no >= 0);
CREATE INDEX pos_payments_batch ON pos_payments (terminal_id, batch_no);
