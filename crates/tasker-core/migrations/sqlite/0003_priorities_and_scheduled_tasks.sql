-- Priorities and tasks that start later (docs/adr/0006-priorities-and-scheduled-tasks.md), as in the
-- PostgreSQL migration 0004: claims take the highest priority first, then the step ready longest, then the
-- oldest id; a held task's root steps count its start time as one more unfinished parent until the first
-- claim at or after it. Times are unix milliseconds, as everywhere in this store; rows that exist get
-- ready_at 0 (so queued work keeps its id order), except waiting retries, whose ready_at is their due time.

ALTER TABLE tasks ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN run_at INTEGER;
ALTER TABLE tasks ADD COLUMN held_until INTEGER;

ALTER TABLE steps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN ready_at INTEGER NOT NULL DEFAULT 0;

UPDATE steps SET ready_at = next_attempt_at WHERE state = 'waiting_for_retry' AND next_attempt_at IS NOT NULL;

DROP INDEX steps_claim_idx;
CREATE INDEX steps_claim_idx ON steps (handler_key, priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;

CREATE INDEX tasks_held_idx ON tasks (held_until) WHERE held_until IS NOT NULL;
