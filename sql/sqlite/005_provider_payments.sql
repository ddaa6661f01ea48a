-- 005_provider_payments.sql (SQLite): payments that go through a mobile-
-- money provider (docs/providers.md §Payments through providers).
--
-- One row per payment (payments.id).  call_state is the outbox: a row in
-- to_send (0) may be sent; the dispatcher moves it to sending (1) in a
-- committed transaction BEFORE the call leaves the process, so a crash
-- can never make a call go out twice; accepted (2) = the provider took
-- it (provider_ref known); answer_lost (3) = it may have reached the
-- provider but the answer never came: it is queried, never re-sent;
-- done (4) = the payment is final.
CREATE TABLE prov_payments (
	payment_id          INTEGER PRIMARY KEY REFERENCES payments (id),
	kind                INTEGER NOT NULL CHECK (kind IN (1, 2)),
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
	UNIQUE (provider, client_ref)
);
CREATE UNIQUE INDEX prov_payments_pref ON prov_payments (provider, provider_ref)
	WHERE provider_ref <> '';
CREATE INDEX prov_payments_due ON prov_payments (next_at_ms)
	WHERE call_state < 4;

-- Every callback that passed its signature/token check, with what soko
-- made of it: the evidence for reconciliation and for alerts.
CREATE TABLE prov_callbacks (
	id           INTEGER PRIMARY KEY,
	provider     TEXT    NOT NULL,
	provider_ref TEXT    NOT NULL,
	payment_id   INTEGER,
	verdict      TEXT    NOT NULL,
	detail       TEXT    NOT NULL DEFAULT '',
	received_ms  INTEGER NOT NULL
);
CREATE INDEX prov_callbacks_ref ON prov_callbacks (provider, provider_ref);
