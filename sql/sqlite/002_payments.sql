-- 002_payments.sql (SQLite): the payment state machine and its audit
-- trail.  The legal edges are data; triggers refuse every other
-- transition, so an illegal one cannot be written even by hand.

CREATE TABLE payment_edges (
	from_state INTEGER NOT NULL,
	to_state   INTEGER NOT NULL,
	PRIMARY KEY (from_state, to_state)
) WITHOUT ROWID;
-- Must match payment_edges[] in server/payment.c (a unit test checks).
INSERT INTO payment_edges VALUES
	(1, 2), (1, 4), (2, 3), (2, 4), (2, 6), (6, 3), (6, 4), (3, 5);

CREATE TABLE payments (
	id           INTEGER PRIMARY KEY,
	ref          TEXT    NOT NULL UNIQUE,
	state        INTEGER NOT NULL,
	currency     INTEGER NOT NULL,
	amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
	txn_id       INTEGER REFERENCES txns (id),
	created_ms   INTEGER NOT NULL,
	updated_ms   INTEGER NOT NULL
);

CREATE TABLE payment_events (
	id         INTEGER PRIMARY KEY,
	payment_id INTEGER NOT NULL REFERENCES payments (id),
	from_state INTEGER,
	to_state   INTEGER NOT NULL,
	reason     TEXT    NOT NULL DEFAULT '',
	at_ms      INTEGER NOT NULL
);
CREATE INDEX payment_events_payment ON payment_events (payment_id, id);

CREATE TRIGGER payments_new_state BEFORE INSERT ON payments
WHEN NEW.state <> 1
BEGIN SELECT RAISE(ABORT, 'a payment starts in state created'); END;

CREATE TRIGGER payments_legal_edge BEFORE UPDATE OF state ON payments
WHEN NEW.state <> OLD.state AND NOT EXISTS (
	SELECT 1 FROM payment_edges
	WHERE from_state = OLD.state AND to_state = NEW.state)
BEGIN SELECT RAISE(ABORT, 'illegal payment transition'); END;

CREATE TRIGGER payment_events_legal BEFORE INSERT ON payment_events
WHEN NEW.from_state IS NOT NULL AND NOT EXISTS (
	SELECT 1 FROM payment_edges
	WHERE from_state = NEW.from_state AND to_state = NEW.to_state)
BEGIN SELECT RAISE(ABORT, 'illegal payment transition'); END;

CREATE TRIGGER payment_events_no_update BEFORE UPDATE ON payment_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER payment_events_no_delete BEFORE DELETE ON payment_events
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
