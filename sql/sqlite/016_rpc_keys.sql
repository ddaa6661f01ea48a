-- 016_rpc_keys.sql (SQLite): credentials of the HTTP /rpc clients
-- (docs/api.md "POS messages over HTTP", docs/operations.md "Partner
-- keys").  Same columns as sql/pg/016_rpc_keys.sql.
--
-- A partner key lets a server-to-server client send POS messages for
-- the terminals of one agent, one merchant or one terminal (scope_kind
-- 1, 2, 3; scope the code or id), and nothing else: not the admin API,
-- not other terminals.  Only the SHA-256 of the key is kept (the key is
-- shown once by `sokoctl rpc-key create`); a revoked key (status 1)
-- stays, so its name is never reused by mistake.
CREATE TABLE rpc_keys (
	id         INTEGER PRIMARY KEY,
	name       TEXT    NOT NULL UNIQUE,
	key_hash   BLOB    NOT NULL UNIQUE CHECK (length(key_hash) = 32),
	scope_kind INTEGER NOT NULL CHECK (scope_kind IN (1, 2, 3)),
	scope      TEXT    NOT NULL,
	status     INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),
	created_ms INTEGER NOT NULL
);
