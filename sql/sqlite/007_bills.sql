-- 007_bills.sql (SQLite): bill payments through Flutterwave
-- (docs/payments.md §Bill payments).
--
-- A bill payment is a provider payment (payments + prov_payments, the
-- same outbox and janitor) of kind 3, plus one bill_payments row with
-- what only a bill has: the account that paid (debited at creation,
-- refunded on a final failure), the biller and item codes, the customer
-- number and the name the biller gave for it.
--
-- SQLite cannot change a CHECK in place: prov_payments is rebuilt (the
-- documented 12-step procedure; nothing references it, it has no
-- triggers) so that kind may be 3.
CREATE TABLE prov_payments_new (
	payment_id          INTEGER PRIMARY KEY REFERENCES payments (id),
	kind                INTEGER NOT NULL CHECK (kind IN (1, 2, 3)),
	provider            TEXT    NOT NULL,
	msisdn              TEXT    NOT NULL,
	clearing_account_id INTEGER NOT NULL REFERENCES accounts (id),
	target_account_id   INTEGER NOT NULL REFERENCES accounts (id),
	client_ref          TEXT    NOT NULL,
	provider_ref        TEXT    NOT NULL DEFAULT '',
	call_state          INTEGER NOT NULL CHECK (call_state BETWEEN 0 AND 4),
	send_attempts       INTEGER NOT NULL DEFAULT 0,
	checks              INTEGER NOT NULL DEFAULT 0,
	next_at_ms          INTEGER NOT NULL,
	deadline_ms         INTEGER NOT NULL,
	result_code         TEXT    NOT NULL DEFAULT '',
	result_desc         TEXT    NOT NULL DEFAULT '',
	receipt             TEXT    NOT NULL DEFAULT '',
	req_hash            BLOB    NOT NULL CHECK (length(req_hash) = 32),
	hold_account_id     INTEGER REFERENCES accounts (id), -- 006
	UNIQUE (provider, client_ref)
);
INSERT INTO prov_payments_new (payment_id, kind, provider, msisdn,
	clearing_account_id, target_account_id, client_ref, provider_ref,
	call_state, send_attempts, checks, next_at_ms, deadline_ms,
	result_code, result_desc, receipt, req_hash, hold_account_id)
SELECT payment_id, kind, provider, msisdn, clearing_account_id,
	target_account_id, client_ref, provider_ref, call_state,
	send_attempts, checks, next_at_ms, deadline_ms, result_code,
	result_desc, receipt, req_hash, hold_account_id FROM prov_payments;
DROP TABLE prov_payments;
ALTER TABLE prov_payments_new RENAME TO prov_payments;
CREATE UNIQUE INDEX prov_payments_pref ON prov_payments (provider, provider_ref)
	WHERE provider_ref <> '';
CREATE INDEX prov_payments_due ON prov_payments (next_at_ms)
	WHERE call_state < 4;

CREATE TABLE bill_payments (
	payment_id        INTEGER PRIMARY KEY REFERENCES prov_payments (payment_id),
	source_account_id INTEGER NOT NULL REFERENCES accounts (id),
	biller_code       TEXT    NOT NULL,
	item_code         TEXT    NOT NULL,
	customer          TEXT    NOT NULL,
	customer_name     TEXT    NOT NULL DEFAULT ''
);
