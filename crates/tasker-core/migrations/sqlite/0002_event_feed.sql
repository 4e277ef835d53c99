-- The event feed: other processes read the transition rows this database commits, in commit order, by a
-- cursor (docs/adr/0005-events-across-processes.md).
--
-- SQLite runs one writer at a time (every write transaction is BEGIN IMMEDIATE), so rows are inserted in
-- commit order, and a reader's snapshot holds a prefix of the commits. A column that grows with every
-- insert is then exactly commit-ordered, and "rows above the last one I read" is a cursor that loses and
-- repeats nothing. The implicit rowid is not that column: on a table without an INTEGER PRIMARY KEY, VACUUM
-- may renumber it, and without AUTOINCREMENT a deleted largest rowid can be handed out again. So each table
-- gets `seq INTEGER PRIMARY KEY AUTOINCREMENT`, which aliases the rowid (persistent across VACUUM) and is
-- never reused (sqlite_sequence keeps the high-water mark).
--
-- SQLite cannot add a primary key to a table, so both tables are rebuilt, keeping their rows in rowid
-- order (the order they were inserted in), and `id` keeps its uniqueness with a UNIQUE constraint. The
-- store's insert statements name their columns, so seq takes the next value by itself. The migration runs
-- in one transaction; the tables are referenced by nothing, so dropping the old ones checks no foreign key.

CREATE TABLE task_transitions_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    event       TEXT,
    metadata    TEXT    NOT NULL,
    sort_key    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO task_transitions_new (id, task_id, from_state, to_state, event, metadata, sort_key, created_at)
    SELECT id, task_id, from_state, to_state, event, metadata, sort_key, created_at
    FROM task_transitions ORDER BY rowid;
DROP TABLE task_transitions;
ALTER TABLE task_transitions_new RENAME TO task_transitions;
CREATE UNIQUE INDEX task_transitions_task_sort_idx ON task_transitions (task_id, sort_key);

CREATE TABLE step_transitions_new (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT    NOT NULL UNIQUE,
    step_id     TEXT    NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    event       TEXT,
    attempt     INTEGER NOT NULL,
    worker_id   TEXT,
    metadata    TEXT    NOT NULL,
    sort_key    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);
INSERT INTO step_transitions_new (id, step_id, task_id, from_state, to_state, event, attempt, worker_id, metadata,
                                  sort_key, created_at)
    SELECT id, step_id, task_id, from_state, to_state, event, attempt, worker_id, metadata, sort_key, created_at
    FROM step_transitions ORDER BY rowid;
DROP TABLE step_transitions;
ALTER TABLE step_transitions_new RENAME TO step_transitions;
CREATE UNIQUE INDEX step_transitions_step_sort_idx ON step_transitions (step_id, sort_key);
CREATE INDEX step_transitions_task_idx ON step_transitions (task_id);
CREATE INDEX step_transitions_created_at_idx ON step_transitions (created_at);
