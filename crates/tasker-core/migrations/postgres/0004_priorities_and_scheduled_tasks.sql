-- Priorities and tasks that start later (docs/adr/0006-priorities-and-scheduled-tasks.md).
--
-- Claims take the highest priority first, then the step that has been ready longest, then the oldest id.
-- `steps.ready_at` is when a step became claimable (or, waiting for a retry, becomes so); `steps.priority`
-- is the template step's priority, else its task's. A task created to start later is held: `held_until` is
-- its start time, and its root steps count it as one more unfinished parent, so they stay out of the claim
-- indexes (whose predicate says unfinished_parents = 0) however many tasks wait, and claims never step over
-- them. The first claim at or after that time takes the extra parent away. Claims find due holds in
-- tasker.task_holds, one row per held task, empty most of the time: a scan of an empty table reads nothing,
-- whatever plan the planner picks. (A partial index on tasks.held_until was tried first: on a fresh table
-- without statistics the planner estimated a third of all tasks due and scanned the whole table in every
-- claim, which halved P1 with four worker processes.)
--
-- Each column is added with a constant default, which PostgreSQL 11+ keeps in the catalog instead of
-- rewriting the table. Rows that exist get ready_at 1970-01-01, so work already queued keeps its order (by
-- id) and goes before work queued after the upgrade, except waiting retries, whose ready_at must be their
-- due time: only those rows are rewritten.

ALTER TABLE tasker.tasks
    ADD COLUMN priority   integer     NOT NULL DEFAULT 0,
    ADD COLUMN run_at     timestamptz,
    ADD COLUMN held_until timestamptz;

ALTER TABLE tasker.steps
    ADD COLUMN priority integer     NOT NULL DEFAULT 0,
    ADD COLUMN ready_at timestamptz NOT NULL DEFAULT '1970-01-01 00:00:00+00';

UPDATE tasker.steps SET ready_at = next_attempt_at
WHERE state = 'waiting_for_retry' AND next_attempt_at IS NOT NULL;

-- The claim of one handler key reads its claimable rows in claim order.
DROP INDEX tasker.steps_claim_idx;
CREATE INDEX steps_claim_idx ON tasker.steps (handler_key, priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;

-- The claim of several handler keys reads every claimable row in claim order and filters the keys (the role
-- steps_claimable_id_idx had for id order).
DROP INDEX tasker.steps_claimable_id_idx;
CREATE INDEX steps_claim_order_idx ON tasker.steps (priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;

-- Written when a held task is created; a claim deletes the rows that fell due. A row whose task is no longer
-- held (started early, cancelled) is deleted at its time without effect.
CREATE TABLE tasker.task_holds (
    task_id    uuid        PRIMARY KEY REFERENCES tasker.tasks (id) ON DELETE CASCADE,
    held_until timestamptz NOT NULL
);
