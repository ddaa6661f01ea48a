-- 003_pos.sql (SQLite): POS provisioning (docs/pos-protocol.md §4.1,
-- docs/operations.md §POS terminals).  Agents own a float account;
-- terminals belong to an agent and hold their key K_t only wrapped
-- (AES-256-GCM under the key-encryption key of pos_kek_file: 12-byte
-- nonce || 32-byte ciphertext || 16-byte tag, the terminal id as AAD).
-- Same columns as sql/pg/003_pos.sql.

CREATE TABLE agents (
	id               INTEGER PRIMARY KEY,
	code             TEXT    NOT NULL UNIQUE,
	float_account_id INTEGER NOT NULL REFERENCES accounts (id),
	status           TEXT    NOT NULL DEFAULT 'active'
	                 CHECK (status IN ('active', 'blocked')),
	created_ms       INTEGER NOT NULL
);

CREATE TABLE terminals (
	id          TEXT    NOT NULL PRIMARY KEY,
	agent_id    INTEGER NOT NULL REFERENCES agents (id),
	key_wrapped BLOB    NOT NULL CHECK (length(key_wrapped) = 60),
	status      TEXT    NOT NULL DEFAULT 'active'
	            CHECK (status IN ('active', 'blocked')),
	created_ms  INTEGER NOT NULL
);
CREATE INDEX terminals_agent ON terminals (agent_id);
