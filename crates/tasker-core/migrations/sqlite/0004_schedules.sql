-- Cron schedules (docs/adr/0007-cron-schedules.md), as in the PostgreSQL migration 0005. The definition and
-- the counters live in `body` (JSON); `next_fire_at` (unix milliseconds, NULL while paused) is a column of
-- its own so that the pass that fires due schedules reads one small index.

CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    next_fire_at INTEGER,
    body TEXT NOT NULL
);

CREATE INDEX schedules_next_fire_idx ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
