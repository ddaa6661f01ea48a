-- 008_reconciliation_fees.sql (SQLite): payments settled by hand and fees
-- (docs/payments.md §12 Reconciliation, §13 Fees).
--
-- An unknown payment is resolved from evidence the provider gave outside
-- its API (a statement line, a support ticket): succeeded or failed,
-- by whom and why.  The row is written in the same transaction as the
-- payment's unknown -> succeeded | failed transition and its posting, so
-- a resolution exists exactly when the payment was settled by hand.  One
-- per payment (a final state is never flipped), never changed.
CREATE TABLE prov_resolutions (
	payment_id   INTEGER PRIMARY KEY
	             REFERENCES prov_payments (payment_id),
	outcome      INTEGER NOT NULL CHECK (outcome IN (3, 4)),
	actor        TEXT    NOT NULL CHECK (length(actor) BETWEEN 1 AND 64),
	evidence     TEXT    NOT NULL
	             CHECK (length(evidence) BETWEEN 1 AND 256),
	provider_ref TEXT    NOT NULL DEFAULT '',
	idem_key     TEXT    NOT NULL,
	req_hash     BLOB    NOT NULL CHECK (length(req_hash) = 32),
	created_ms   INTEGER NOT NULL
);
CREATE TRIGGER prov_resolutions_no_update BEFORE UPDATE ON prov_resolutions
BEGIN SELECT RAISE(ABORT, 'a resolution is never changed'); END;
CREATE TRIGGER prov_resolutions_no_delete BEFORE DELETE ON prov_resolutions
BEGIN SELECT RAISE(ABORT, 'a resolution is never changed'); END;

-- The reconciliation list (GET /v1/payments?state=unknown): unknown
-- payments are few, so a partial index keeps it cheap without costing
-- every other payment's writes much.
CREATE INDEX payments_unknown ON payments (id) WHERE state = 6;

-- Fees and commissions (docs/payments.md §13), fixed when the payment is
-- created so a change of the schedule never changes a payment in flight:
-- the fee (minor units; a collection's is taken from what the merchant
-- gets, a disbursement's and a bill's are paid by the source on top of
-- the amount and held with it), the fees_revenue account it is posted
-- to, and the agent's commission out of it (a bill paid from an agent
-- float).
ALTER TABLE prov_payments ADD COLUMN fee_minor INTEGER NOT NULL DEFAULT 0
	CHECK (fee_minor >= 0);
ALTER TABLE prov_payments ADD COLUMN fee_account_id INTEGER
	REFERENCES accounts (id);
ALTER TABLE prov_payments ADD COLUMN commission_minor INTEGER NOT NULL
	DEFAULT 0 CHECK (commission_minor >= 0 AND commission_minor <= fee_minor);
