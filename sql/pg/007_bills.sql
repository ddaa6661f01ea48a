-- 007_bills.sql (PostgreSQL): bill payments through Flutterwave
-- (docs/payments.md §Bill payments).
--
-- A bill payment is a provider payment (payments + prov_payments, the
-- same outbox and janitor) of kind 3, plus one bill_payments row with
-- what only a bill has: the account that paid (debited at creation,
-- refunded on a final failure), the biller and item codes, the customer
-- number and the name the biller gave for it.
ALTER TABLE prov_payments DROP CONSTRAINT prov_payments_kind_check;
ALTER TABLE prov_payments ADD CONSTRAINT prov_payments_kind_check
	CHECK (kind IN (1, 2, 3));

CREATE TABLE bill_payments (
	payment_id        bigint PRIMARY KEY
	                  REFERENCES prov_payments (payment_id),
	source_account_id bigint NOT NULL REFERENCES accounts (id),
	biller_code       text   COLLATE "C" NOT NULL,
	item_code         text   COLLATE "C" NOT NULL,
	customer          text   COLLATE "C" NOT NULL,
	customer_name     text   NOT NULL DEFAULT ''
);
