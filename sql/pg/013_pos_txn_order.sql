-- 013_pos_txn_order.sql (PostgreSQL): pos_txns keyed (txn_id,
-- terminal_id) instead of (terminal_id, txn_id); see
-- sql/sqlite/013_pos_txn_order.sql for why (time-ordered txn ids: new
-- index entries land at the right edge of the primary key's B-tree
-- instead of one leaf page per terminal in every commit).
ALTER TABLE pos_txns DROP CONSTRAINT pos_txns_pkey;
ALTER TABLE pos_txns ADD PRIMARY KEY (txn_id, terminal_id);
