-- Tasker Core schema for SQLite.
--
-- Ids are UUIDv7 as lowercase hyphenated TEXT, so text order is creation order. Timestamps are INTEGER
-- unix milliseconds. JSON is TEXT. States and events are the engine's stable strings; there are no CHECK
-- constraints on them because SQLite cannot alter a CHECK without rebuilding the table, and the engine's
-- state tables are the only writer.

CREATE TABLE namespaces (
    name        TEXT    NOT NULL PRIMARY KEY,
    created_at  INTEGER NOT NULL
);

CREATE TABLE templates (
    id            TEXT    NOT NULL PRIMARY KEY,
    namespace     TEXT    NOT NULL REFERENCES namespaces (name),
    name          TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    content_hash  TEXT    NOT NULL,
    template      TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (namespace, name, version)
);

CREATE TABLE tasks (
    id                TEXT    NOT NULL PRIMARY KEY,
    template_id       TEXT    NOT NULL REFERENCES templates (id),
    namespace         TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    version           TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    context           TEXT    NOT NULL,
    tags              TEXT    NOT NULL,
    idempotency_key   TEXT,
    initiator         TEXT,
    source_system     TEXT,
    reason            TEXT,
    steps_total       INTEGER NOT NULL,
    steps_succeeded   INTEGER NOT NULL,
    steps_failed      INTEGER NOT NULL,
    transition_count  INTEGER NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    -- NULLs are distinct in a UNIQUE constraint, so tasks without a key never collide.
    UNIQUE (namespace, name, idempotency_key)
);

CREATE INDEX tasks_namespace_name_id_idx ON tasks (namespace, name, id);
CREATE INDEX tasks_state_idx ON tasks (state);
CREATE INDEX tasks_finished_at_idx ON tasks (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE steps (
    id                  TEXT    NOT NULL PRIMARY KEY,
    task_id             TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    name                TEXT    NOT NULL,
    handler_key         TEXT    NOT NULL,
    position            INTEGER NOT NULL,
    state               TEXT    NOT NULL,
    attempts            INTEGER NOT NULL,
    max_attempts        INTEGER NOT NULL,
    retry               TEXT    NOT NULL,
    timeout_seconds     INTEGER NOT NULL,
    config              TEXT    NOT NULL,
    unfinished_parents  INTEGER NOT NULL,
    next_attempt_at     INTEGER,
    lease_expires_at    INTEGER,
    worker_id           TEXT,
    -- SQL NULL is "no result"; the JSON text 'null' is a handler that returned null.
    result              TEXT,
    error               TEXT,
    transition_count    INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    started_at          INTEGER,
    finished_at         INTEGER,
    UNIQUE (task_id, name)
);

CREATE INDEX steps_task_position_idx ON steps (task_id, position);
-- The claim path: only ready-shaped rows are in it, so it stays small however much history piles up. The
-- claim query repeats this WHERE clause literally so that the planner can use the index.
CREATE INDEX steps_claim_idx ON steps (handler_key, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;
CREATE INDEX steps_lease_idx ON steps (state, lease_expires_at) WHERE state = 'in_progress';
CREATE INDEX steps_finished_at_idx ON steps (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE step_edges (
    task_id    TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    parent_id  TEXT NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    child_id   TEXT NOT NULL REFERENCES steps (id) ON DELETE CASCADE,
    -- Also serves lookups by parent_id (releasing children).
    PRIMARY KEY (parent_id, child_id)
);

CREATE INDEX step_edges_child_idx ON step_edges (child_id);
CREATE INDEX step_edges_task_idx ON step_edges (task_id);

CREATE TABLE task_transitions (
    id          TEXT    NOT NULL PRIMARY KEY,
    task_id     TEXT    NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    from_state  TEXT,
    to_state    TEXT    NOT NULL,
    event       TEXT,
    metadata    TEXT    NOT NULL,
    sort_key    INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

-- Unique, so two writers that both think they wrote transition n of a task cannot both succeed.
CREATE UNIQUE INDEX task_transitions_task_sort_idx ON task_transitions (task_id, sort_key);

CREATE TABLE step_transitions (
    id          TEXT    NOT NULL PRIMARY KEY,
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

CREATE UNIQUE INDEX step_transitions_step_sort_idx ON step_transitions (step_id, sort_key);
CREATE INDEX step_transitions_task_idx ON step_transitions (task_id);
CREATE INDEX step_transitions_created_at_idx ON step_transitions (created_at);
