-- 012_pos_payment_advice.sql (PostgreSQL): as
-- sql/sqlite/012_pos_payment_advice.sql (see there for the meaning).
ALTER TABLE pos_payments ADD COLUMN is_advice boolean NOT NULL
	DEFAULT false;
ALTER TABLE pos_payments ADD COLUMN batch_no bigint
	CHECK (batch_no IS NULL OR batch_no >= 0);
CREATE INDEX pos_payments_batch ON pos_payments (terminal_id, batch_no);
