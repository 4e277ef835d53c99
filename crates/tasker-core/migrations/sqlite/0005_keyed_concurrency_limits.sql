-- Keyed concurrency limits (docs/adr/0008-keyed-concurrency-limits.md), as in the PostgreSQL migration 0006:
-- `concurrency_key` and `concurrency_limit` are fixed at creation (NULL for a step without a limit, and for
-- every row that exists), and the number running for a key is the number of its in_progress rows, never a
-- counter. SQLite claims under the one write lock, so one claim statement counts and claims; the claim index
-- keeps every claimable row.

ALTER TABLE steps ADD COLUMN concurrency_key TEXT;
ALTER TABLE steps ADD COLUMN concurrency_limit INTEGER;

CREATE INDEX steps_concurrency_running_idx ON steps (concurrency_key)
    WHERE state = 'in_progress' AND concurrency_key IS NOT NULL;
