-- Cron schedules (docs/adr/0007-cron-schedules.md). The definition and the counters live in `body`; the next
-- occurrence (NULL while paused) is a column of its own, so that the pass that fires due schedules reads one
-- small index and locks the rows it fires with FOR UPDATE SKIP LOCKED.

CREATE TABLE tasker.schedules (
    name text PRIMARY KEY,
    next_fire_at timestamptz,
    body jsonb NOT NULL
);

CREATE INDEX schedules_next_fire_idx ON tasker.schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
