-- 006_disbursements.sql (PostgreSQL): disbursements through providers
-- (docs/payments.md §Disbursements).
--
-- A disbursement debits its source account (merchant payable or agent
-- float) into a holding account in the same commit as its payment row;
-- the hold is moved to the provider's clearing account on success, or
-- back to the source on a final failure.  hold_account_id names that
-- holding account (NULL for collections).  A holding account is used by
-- disbursements only, so its balance always equals the sum of the
-- disbursements not yet final (the disb_hold_mismatch check).
ALTER TABLE prov_payments ADD COLUMN hold_account_id bigint
	REFERENCES accounts (id);
