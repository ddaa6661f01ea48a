-- 001_ledger.sql (SQLite): accounts, transactions, postings, idempotency,
-- limits.  docs/architecture.md explains the model.  Money columns are
-- INTEGER minor units; currency is the ISO 4217 numeric code.

CREATE TABLE accounts (
	id            INTEGER PRIMARY KEY,
	code          TEXT    NOT NULL UNIQUE,
	type          INTEGER NOT NULL CHECK (type BETWEEN 1 AND 8),
	currency      INTEGER NOT NULL CHECK (currency BETWEEN 1 AND 999),
	balance_minor INTEGER NOT NULL DEFAULT 0,
	has_floor     INTEGER NOT NULL CHECK (has_floor IN (0, 1)),
	floor_minor   INTEGER NOT NULL DEFAULT 0,
	is_closed     INTEGER NOT NULL DEFAULT 0 CHECK (is_closed IN (0, 1)),
	created_ms    INTEGER NOT NULL
);

CREATE TABLE txns (
	id              INTEGER PRIMARY KEY,
	kind            INTEGER NOT NULL,
	currency        INTEGER NOT NULL,
	amount_minor    INTEGER NOT NULL CHECK (amount_minor > 0),
	reverses_txn_id INTEGER REFERENCES txns (id),
	idem_key        TEXT,
	memo            TEXT    NOT NULL DEFAULT '',
	created_ms      INTEGER NOT NULL
);
-- A transaction is reversed at most once.
CREATE UNIQUE INDEX txns_reverses ON txns (reverses_txn_id)
	WHERE reverses_txn_id IS NOT NULL;

-- Clustered by transaction: appends at the end as ids grow.  No FOREIGN
-- KEY clauses: the ledger writes a transaction and its postings in one
-- statement batch after loading every account it posts to, per-row key
-- checks cost a quarter of the batch write, and verify() reports any orphan
-- (posting_orphan).  Accounts are never deleted (closed instead).
CREATE TABLE postings (
	txn_id       INTEGER NOT NULL,
	leg          INTEGER NOT NULL,
	account_id   INTEGER NOT NULL,
	amount_minor INTEGER NOT NULL CHECK (amount_minor <> 0),
	currency     INTEGER NOT NULL,
	PRIMARY KEY (txn_id, leg)
) WITHOUT ROWID;

-- Append-only: a correction is a new, compensating transaction.
CREATE TRIGGER postings_no_update BEFORE UPDATE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER postings_no_delete BEFORE DELETE ON postings
BEGIN SELECT RAISE(ABORT, 'postings are append-only'); END;
CREATE TRIGGER txns_no_update BEFORE UPDATE ON txns
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER txns_no_delete BEFORE DELETE ON txns
BEGIN SELECT RAISE(ABORT, 'transactions are append-only'); END;
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
BEGIN SELECT RAISE(ABORT, 'accounts are closed, never deleted'); END;

-- First outcome of every idempotency key (kept >= 30 days).
CREATE TABLE idem (
	key        TEXT    PRIMARY KEY,
	hash       BLOB    NOT NULL,
	rc         INTEGER NOT NULL,
	txn_id     INTEGER,
	created_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE limit_rules (
	subject_kind      INTEGER NOT NULL,
	subject           TEXT    NOT NULL,
	currency          INTEGER NOT NULL,
	per_txn_max       INTEGER NOT NULL DEFAULT 0 CHECK (per_txn_max >= 0),
	daily_max         INTEGER NOT NULL DEFAULT 0 CHECK (daily_max >= 0),
	velocity_max      INTEGER NOT NULL DEFAULT 0 CHECK (velocity_max >= 0),
	velocity_window_s INTEGER NOT NULL DEFAULT 0
		CHECK (velocity_window_s >= 0),
	PRIMARY KEY (subject_kind, subject, currency)
) WITHOUT ROWID;

CREATE TABLE limit_usage (
	subject_kind INTEGER NOT NULL,
	subject      TEXT    NOT NULL,
	currency     INTEGER NOT NULL,
	window_s     INTEGER NOT NULL,
	bucket       INTEGER NOT NULL,
	amount_minor INTEGER NOT NULL DEFAULT 0,
	count        INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (subject_kind, subject, currency, window_s, bucket)
) WITHOUT ROWID;
