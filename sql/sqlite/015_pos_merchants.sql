-- 015_pos_merchants.sql (SQLite): merchant terminals (docs/payments.md
-- §9a, docs/operations.md "POS terminals").  A merchant is a code and
-- the merchant_payable account its sales are credited to; a terminal
-- may belong to one (terminals.merchant_id): then its COLLECTs credit
-- the merchant's account instead of the float of the terminal's agent
-- (a shop's till taking mobile money).  Everything else a terminal does
-- (cash-in, cash-out, float transfers, bills) stays on its agent's float.
-- Same columns as sql/pg/015_pos_merchants.sql.

CREATE TABLE merchants (
	id                 INTEGER PRIMARY KEY,
	code               TEXT    NOT NULL UNIQUE,
	payable_account_id INTEGER NOT NULL REFERENCES accounts (id),
	created_ms         INTEGER NOT NULL
);

ALTER TABLE terminals ADD COLUMN merchant_id INTEGER
	REFERENCES merchants (id);
