-- Tasker Core schema for PostgreSQL (13 or newer: the transition tables use insert-driven autovacuum).
--
-- Everything lives in the tasker schema, and every statement the store runs names its tables tasker.xxx,
-- so the connecting role's search_path never matters.
--
-- Ids are uuid (UUIDv7, minted in Rust, so id order is creation order). Timestamps are timestamptz: the
-- engine writes whole milliseconds, which its microsecond precision keeps exactly. Documents are jsonb.
-- Counters are bigint. States and events are text with a CHECK listing the engine's values rather than an
-- enum type, because a later migration can swap a CHECK inside a transaction, while ALTER TYPE ... ADD
-- VALUE cannot be used in the transaction that adds it.
--
-- Scale (DESIGN.md §8): the only foreign keys that leave a task are task -> template -> namespace, so a
-- namespace's rows can move to a database of their own. The transition tables have no foreign keys and keys
-- that include created_at, so they can be partitioned by time later (see below).

CREATE SCHEMA IF NOT EXISTS tasker;

CREATE TABLE tasker.namespaces (
    name        text        NOT NULL PRIMARY KEY,
    created_at  timestamptz NOT NULL
);

CREATE TABLE tasker.templates (
    id            uuid        NOT NULL PRIMARY KEY,
    namespace     text        NOT NULL REFERENCES tasker.namespaces (name),
    name          text        NOT NULL,
    version       text        NOT NULL,
    content_hash  text        NOT NULL,
    template      jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT templates_namespace_name_version_key UNIQUE (namespace, name, version)
);

CREATE TABLE tasker.tasks (
    id                uuid        NOT NULL PRIMARY KEY,
    template_id       uuid        NOT NULL REFERENCES tasker.templates (id),
    namespace         text        NOT NULL,
    name              text        NOT NULL,
    version           text        NOT NULL,
    state             text        NOT NULL CONSTRAINT tasks_state_check
        CHECK (state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    context           jsonb       NOT NULL,
    tags              jsonb       NOT NULL,
    idempotency_key   text,
    initiator         text,
    source_system     text,
    reason            text,
    steps_total       bigint      NOT NULL,
    steps_succeeded   bigint      NOT NULL,
    steps_failed      bigint      NOT NULL,
    transition_count  bigint      NOT NULL,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    -- NULLs are distinct in a UNIQUE constraint, so tasks without a key never collide.
    CONSTRAINT tasks_idempotency_key_key UNIQUE (namespace, name, idempotency_key)
)
-- A task row is rewritten on every step completion (counters, updated_at) but its indexed columns (id,
-- namespace, name, idempotency_key, state, finished_at) change only on its few state changes. Leaving 20%
-- of each page free lets those rewrites be HOT updates: the new version goes on the same page and no index
-- gets a new entry.
-- Those rewrites leave a dead version each, so autovacuum starts at 2% dead rows instead of the default
-- 20%: on a large table 20% is millions of dead rows between passes, and bloat on the hot rows' pages
-- is what stops the next update from being HOT. Analyze follows the same fraction so that the planner's
-- state counts keep up with work moving through states.
WITH (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- tasks(namespace, name) listing, newest first.
CREATE INDEX tasks_namespace_name_id_idx ON tasker.tasks (namespace, name, id);
-- tasks(state) listing, newest first.
CREATE INDEX tasks_state_id_idx ON tasker.tasks (state, id);
-- Analytics over finished tasks; unfinished tasks are not in it.
CREATE INDEX tasks_finished_at_idx ON tasker.tasks (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE tasker.steps (
    id                  uuid        NOT NULL PRIMARY KEY,
    task_id             uuid        NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    name                text        NOT NULL,
    handler_key         text        NOT NULL,
    position            integer     NOT NULL,
    state               text        NOT NULL CONSTRAINT steps_state_check
        CHECK (state IN ('pending', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled',
                         'resolved_manually')),
    attempts            bigint      NOT NULL CONSTRAINT steps_attempts_check CHECK (attempts >= 0),
    max_attempts        bigint      NOT NULL,
    retry               jsonb       NOT NULL,
    timeout_seconds     bigint      NOT NULL,
    config              jsonb       NOT NULL,
    unfinished_parents  bigint      NOT NULL CONSTRAINT steps_unfinished_parents_check
        CHECK (unfinished_parents >= 0),
    next_attempt_at     timestamptz,
    lease_expires_at    timestamptz,
    worker_id           text,
    -- SQL NULL is "no result"; the jsonb value null is a handler that returned null.
    result              jsonb,
    error               jsonb,
    transition_count    bigint      NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL,
    started_at          timestamptz,
    finished_at         timestamptz,
    -- Also serves every per-task read (step_list, step_lock_all, active step counts); a task has at most
    -- 1,000 steps, so ordering them by position after the lookup is cheap and needs no index of its own.
    CONSTRAINT steps_task_id_name_key UNIQUE (task_id, name)
)
-- Steps are the hottest table: every claim, heartbeat, completion and child release rewrites a row.
-- fillfactor 70 keeps room on each page for the new versions (rows are wide: config, result and error
-- are jsonb) so that updates which change no indexed column stay HOT. The indexed columns are id, task_id,
-- name, handler_key, finished_at, and state and unfinished_parents through the partial indexes' WHERE
-- clauses (PostgreSQL counts predicate columns as indexed). That is why nothing indexes lease_expires_at,
-- next_attempt_at, worker_id, attempts or updated_at: a heartbeat, which changes only lease_expires_at and
-- updated_at, is then a HOT update that adds no index entries at all.
-- Autovacuum at 2% dead rows (default 20%) for the same reason as tasks, and because dead versions of
-- claimed steps linger as dead entries in steps_claim_idx that every claim has to step over until vacuum
-- removes them; the claim index stays small only if vacuum comes often.
WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- The claim path. Only ready-shaped rows are in it (a small fraction of the table once history piles
-- up), ordered by id within a handler key, which is the claim's order. The claim and next-retry queries
-- repeat this WHERE clause word for word so that the planner can prove the predicate and use the index.
CREATE INDEX steps_claim_idx ON tasker.steps (handler_key, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;

-- The reaper's path: only running steps are in it, at most the total concurrency of all workers. It is
-- keyed by id rather than lease_expires_at on purpose: heartbeats change lease_expires_at all the time, and
-- indexing it would make every heartbeat a non-HOT update writing new entries into every index of steps.
-- The reaper reads the few running rows through this index and filters and sorts them by lease itself.
CREATE INDEX steps_in_progress_idx ON tasker.steps (id) WHERE state = 'in_progress';

-- Analytics over finished steps.
CREATE INDEX steps_finished_at_idx ON tasker.steps (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE tasker.step_edges (
    task_id    uuid    NOT NULL REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    parent_id  uuid    NOT NULL REFERENCES tasker.steps (id) ON DELETE CASCADE,
    child_id   uuid    NOT NULL REFERENCES tasker.steps (id) ON DELETE CASCADE,
    -- The edge's place in the list the task was created with (PostgreSQL has no insertion order to
    -- return them in, and explain lists blocking parents in this order).
    position   integer NOT NULL,
    -- Also serves lookups by parent_id (releasing children).
    PRIMARY KEY (parent_id, child_id)
);

-- A claimed step's parents, for its dependency results.
CREATE INDEX step_edges_child_idx ON tasker.step_edges (child_id);
-- edge_list, in creation order.
CREATE INDEX step_edges_task_position_idx ON tasker.step_edges (task_id, position);

-- The transition tables are the append-only audit trail: rows are inserted in the transaction that
-- changes the state column and never updated.
--
-- They have no foreign keys, on purpose:
-- * partitioning by time (the §8 path) is then a matter of attaching this table as the first partition of a
--   partitioned table; old partitions can be detached or dropped without foreign key checks or cascades;
-- * an FK check on every insert would look up and share-lock the step or task row, on the hot path of every
--   transition, for a guarantee the engine already gives: it writes each row in the transaction that
--   updates the state column, holding that row's lock;
-- * retention of tasks and of their audit trail can then follow different schedules.
-- The primary keys include created_at, which a partitioned table requires of every unique index, so the
-- existing table and its indexes can be attached as a partition as they are.
--
-- Append-only tables produce no dead rows, so the default dead-row trigger never vacuums them. Vacuum
-- still has to visit them, to set visibility-map bits (index-only scans of the event counts) and to freeze
-- old rows a little at a time instead of in one huge anti-wraparound pass. The insert-driven trigger
-- (autovacuum_vacuum_insert_*, PostgreSQL 13+) at 2% new rows (default 20%) does that, and analyze keeps
-- up with the rows' time range, which time-range queries estimate from.

CREATE TABLE tasker.task_transitions (
    id          uuid        NOT NULL,
    task_id     uuid        NOT NULL,
    from_state  text        CONSTRAINT task_transitions_from_state_check
        CHECK (from_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    to_state    text        NOT NULL CONSTRAINT task_transitions_to_state_check
        CHECK (to_state IN ('pending', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually')),
    event       text        CONSTRAINT task_transitions_event_check
        CHECK (event IN ('start', 'complete', 'fail', 'cancel', 'retry', 'resume', 'resolve_manually')),
    metadata    jsonb       NOT NULL,
    sort_key    bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
)
WITH (autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- Unique, so two writers that both think they wrote transition n of a task cannot both succeed (the task
-- row lock already orders them; this is the second line). It also serves the per-task list. Under time
-- partitioning it would become a per-partition index, with the row lock still ordering writers.
CREATE UNIQUE INDEX task_transitions_task_sort_idx ON tasker.task_transitions (task_id, sort_key);

CREATE TABLE tasker.step_transitions (
    id          uuid        NOT NULL,
    step_id     uuid        NOT NULL,
    task_id     uuid        NOT NULL,
    from_state  text        CONSTRAINT step_transitions_from_state_check
        CHECK (from_state IN ('pending', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled',
                              'resolved_manually')),
    to_state    text        NOT NULL CONSTRAINT step_transitions_to_state_check
        CHECK (to_state IN ('pending', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled',
                            'resolved_manually')),
    event       text        CONSTRAINT step_transitions_event_check
        CHECK (event IN ('claim', 'complete', 'fail_retryable', 'fail_permanent', 'lease_expired',
                         'worker_lost', 'cancel', 'retry', 'resolve_manually')),
    attempt     bigint      NOT NULL,
    worker_id   text,
    metadata    jsonb       NOT NULL,
    sort_key    bigint      NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (id, created_at)
)
WITH (autovacuum_vacuum_insert_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);

-- One index for two jobs: a step belongs to one task, so uniqueness of (task_id, step_id, sort_key) is
-- uniqueness of (step_id, sort_key), the guard against two writers recording transition n of a step; and
-- its leading task_id serves the per-task trail in (step, sort key) order. Every index is paid for on
-- every transition insert, so there is no separate one.
CREATE UNIQUE INDEX step_transitions_task_step_sort_idx ON tasker.step_transitions (task_id, step_id, sort_key);

-- Event counts since a time: a range scan that, with event included, is answered from the index alone
-- once vacuum has marked the pages all-visible.
CREATE INDEX step_transitions_created_at_idx ON tasker.step_transitions (created_at) INCLUDE (event);
