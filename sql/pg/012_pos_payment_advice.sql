-- 012_pos_payment_advice.sql (PostgreSQL): as
-- sql/sqlite/012_pos_payment_advice.sql (see there for the meaning).
ALTER TABLE pos_payments ADD COLUMN is_advice boolean NOT NULL
	DEFAULT false;
