-- 008_reconciliation.sql (PostgreSQL): payments settled by hand
-- (docs/payments.md §Reconciliation).
--
-- An unknown payment is resolved from evidence the provider gave outside
-- its API (a statement line, a support ticket): succeeded or failed,
-- by whom and why.  The row is written in the same transaction as the
-- payment's unknown -> succeeded | failed transition and its posting, so
-- a resolution exists exactly when the payment was settled by hand.  One
-- per payment (a final state is never flipped), never changed.
CREATE TABLE prov_resolutions (
	payment_id   bigint  PRIMARY KEY
	             REFERENCES prov_payments (payment_id),
	outcome      integer NOT NULL CHECK (outcome IN (3, 4)),
	actor        text    COLLATE "C" NOT NULL
	             CHECK (length(actor) BETWEEN 1 AND 64),
	evidence     text    NOT NULL
	             CHECK (length(evidence) BETWEEN 1 AND 256),
	provider_ref text    COLLATE "C" NOT NULL DEFAULT '',
	idem_key     text    COLLATE "C" NOT NULL,
	req_hash     bytea   NOT NULL CHECK (length(req_hash) = 32),
	created_ms   bigint  NOT NULL
);
CREATE TRIGGER prov_resolutions_no_update BEFORE UPDATE ON prov_resolutions
	FOR EACH ROW EXECUTE FUNCTION soko_append_only();
CREATE TRIGGER prov_resolutions_no_delete BEFORE DELETE ON prov_resolutions
	FOR EACH ROW EXECUTE FUNCTION soko_append_only();
CREATE TRIGGER prov_resolutions_no_truncate BEFORE TRUNCATE ON prov_resolutions
	FOR EACH STATEMENT EXECUTE FUNCTION soko_append_only();

-- The reconciliation list (GET /v1/payments?state=unknown): unknown
-- payments are few, so a partial index keeps it cheap without costing
-- every other payment's writes much.
CREATE INDEX payments_unknown ON payments (id) WHERE state = 6;
