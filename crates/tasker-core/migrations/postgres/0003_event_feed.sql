-- The event feed: every process reads the transition rows other processes commit, in commit order, with
-- nothing lost while its connection is away (docs/adr/0005-events-across-processes.md).
--
-- Each transition row records the transaction that wrote it. A reader keeps the snapshot of its previous
-- read and asks for the rows whose transaction is visible in its new snapshot and was not in the previous
-- one (pg_visible_in_snapshot). A transaction becomes visible in exactly one such read, after it committed,
-- so no row is read twice or skipped, however long the reader was disconnected, and a transaction still
-- running (or one that committed after the snapshot) is picked up by a later read. xid8 is the 64-bit
-- transaction id, which never wraps around, so it compares correctly however old the rows are.
--
-- The column is added with the constant default '0' first, which PostgreSQL 11+ stores in the catalog
-- instead of rewriting the table, and the default that records the writer is set afterwards: rows written
-- before this migration read as transaction 0, which precedes every snapshot's xmin and so never reaches a
-- feed (they are history; no reader started before they existed). A volatile default in ADD COLUMN would
-- rewrite every row of the two largest tables under an exclusive lock.
--
-- pg_current_xact_id() is the top-level transaction's id (it assigns one if the transaction has none yet,
-- which an inserting transaction has anyway), so rows written in a subtransaction or a savepoint carry the
-- id whose commit makes them visible. The insert statements of the store name their columns and leave xid
-- to its default.

ALTER TABLE tasker.task_transitions ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE tasker.task_transitions ALTER COLUMN xid SET DEFAULT pg_current_xact_id();
ALTER TABLE tasker.step_transitions ADD COLUMN xid xid8 NOT NULL DEFAULT '0';
ALTER TABLE tasker.step_transitions ALTER COLUMN xid SET DEFAULT pg_current_xact_id();

-- A read asks for xid >= the previous snapshot's xmin: the transactions that were running or not yet
-- started at the previous read, normally a few hundred milliseconds of history (more while some other
-- transaction stays open for long, since it holds xmin back). PostgreSQL 15 has no BRIN operator class for
-- xid8 (only btree and hash), so a btree it is. New rows carry ever larger ids, so inserts land on the
-- right-most leaf page, which PostgreSQL keeps cached for exactly this pattern (the fastpath for
-- monotonically increasing keys), and the index costs one small entry per transition row.
CREATE INDEX task_transitions_xid_idx ON tasker.task_transitions (xid);
CREATE INDEX step_transitions_xid_idx ON tasker.step_transitions (xid);
