-- Claims take ready steps oldest id first. steps_claim_idx (handler_key, id) cannot hand back rows in id
-- order for a set of handler keys, so the planner chose to walk steps_pkey in id order and skip every
-- finished step on the way: a claim took 60-90 ms once some 67,000 steps had finished, and got slower as
-- history grew. This index holds only the claimable rows, in id order, so a claim reads a few pages however
-- long the history is. Like steps_claim_idx it names only columns a claim or completion changes anyway (state,
-- unfinished_parents), so heartbeats stay HOT updates.
CREATE INDEX steps_claimable_id_idx ON tasker.steps (id)
    WHERE state IN ('pending', 'waiting_for_retry') AND unfinished_parents = 0;

-- Idle workers ask when their next retry falls due, and the maintenance pass counts retries that fell due.
-- Only waiting rows matter; without this index both read every waiting step (50-80 ms at 20,000 waiting).
CREATE INDEX steps_retry_due_idx ON tasker.steps (next_attempt_at) WHERE state = 'waiting_for_retry';
