-- Keyed concurrency limits (docs/adr/0008-keyed-concurrency-limits.md).
--
-- A template step may cap how many of its runs that share a key (a value of the task context) are in_progress
-- at once. `concurrency_key` is that key, resolved at creation, and `concurrency_limit` the cap; both are NULL
-- for a step without a limit, which is every row that exists before this migration (adding a nullable column
-- rewrites nothing). Nothing counts the runs: the number running for a key is the number of in_progress rows
-- with that key, read through steps_concurrency_running_idx, so finishing, failing, retrying, cancelling or
-- reaping a step frees its slot in the transaction that moves it out of in_progress, and no counter can drift.

ALTER TABLE tasker.steps
    ADD COLUMN concurrency_key   text,
    ADD COLUMN concurrency_limit integer;

-- The claims of unkeyed work (every claim, the hot path) leave keyed steps to a claim of their own, so their
-- indexes hold only unkeyed rows and the plan stays what it was: an ordered index read, no sort, no count.
DROP INDEX tasker.steps_claim_idx;
CREATE INDEX steps_claim_idx ON tasker.steps (handler_key, priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0 AND concurrency_key IS NULL;

DROP INDEX tasker.steps_claim_order_idx;
CREATE INDEX steps_claim_order_idx ON tasker.steps (priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0 AND concurrency_key IS NULL;

-- The keyed claim: the claimable keyed rows of one key in claim order.
CREATE INDEX steps_keyed_claim_idx ON tasker.steps (concurrency_key, priority DESC, ready_at, id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0 AND concurrency_key IS NOT NULL;

-- How many steps of a key run now.
CREATE INDEX steps_concurrency_running_idx ON tasker.steps (concurrency_key)
    WHERE state = 'in_progress' AND concurrency_key IS NOT NULL;
