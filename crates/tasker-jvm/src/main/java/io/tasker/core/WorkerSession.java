package io.tasker.core;

import java.lang.ref.Reference;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * The one worker session of docs/bindings.md §6: claims steps for its handler keys, heartbeats their leases
 * and takes their outcomes. {@link Worker} drives it; tests and scenario replays call it directly.
 */
public class WorkerSession implements Worker.Reporter {
    final long h;
    /** The session whose handle this one shares (kept reachable while this one is), or null. */
    private final WorkerSession owner;

    WorkerSession(long h) {
        this.h = h;
        this.owner = null;
        Native.track(this, h);
    }

    /** A view of {@code other} (the same native session), for a subclass that observes the calls. */
    WorkerSession(WorkerSession other) {
        this.h = other.h;
        this.owner = other;
    }

    public String workerId() {
        return kept((String) Native.workerId(h));
    }

    public boolean isShutdown() {
        return kept(Native.isShutdown(h));
    }

    /** Claims up to {@code max} ready steps, waiting up to {@code wait} when none is ready; store errors are retried. */
    @SuppressWarnings("unchecked")
    public List<StepContext> nextBatch(int max, Duration wait) {
        return kept((List<StepContext>) Native.nextBatch(h, max, wait.toMillis()));
    }

    /** The same claim without retries: a store error is thrown (tests, scenario replays). */
    @SuppressWarnings("unchecked")
    public List<StepContext> claim(int max, Duration wait) {
        return kept((List<StepContext>) Native.claim(h, max, wait.toMillis()));
    }

    /** Hands a handler's result to the session's reporter; returns at once. */
    @Override
    public void report(ClaimToken token, Object result) {
        Native.report(h, token.stepId(), token.attempt(), result);
        Reference.reachabilityFence(this);
    }

    @Override
    public void reportFailure(ClaimToken token, Failure failure) {
        Native.reportFailure(h, token.stepId(), token.attempt(), failure.map);
        Reference.reachabilityFence(this);
    }

    @Override
    public void reportMissing(ClaimToken token, String handlerKey) {
        Native.reportMissing(h, token.stepId(), token.attempt(), handlerKey);
        Reference.reachabilityFence(this);
    }

    /** Waits until everything reported so far has been written. */
    public void flush() {
        Native.flush(h);
        Reference.reachabilityFence(this);
    }

    /** Records a success now and returns the step. */
    public Step complete(ClaimToken token, Object result) {
        return kept((Step) Native.complete(h, token.stepId(), token.attempt(), result));
    }

    /** Records a failure now and returns the step. */
    public Step fail(ClaimToken token, Failure failure) {
        return kept((Step) Native.fail(h, token.stepId(), token.attempt(), failure.map));
    }

    /** One outcome of {@link #finishMany}: a result, or a failure. */
    public record Outcome(ClaimToken token, Object result, Failure failure) {
        public static Outcome success(ClaimToken token, Object result) {
            return new Outcome(token, result, null);
        }

        public static Outcome failure(ClaimToken token, Failure failure) {
            return new Outcome(token, null, failure);
        }
    }

    /**
     * Records many outcomes now, in one transaction. Each answer is the {@link Step}, or the
     * {@link TaskerException} (not thrown) of an item rejected alone (a stale claim, a cancelled step).
     */
    public List<Object> finishMany(List<Outcome> outcomes) {
        List<Object> items = new java.util.ArrayList<>(outcomes.size());
        for (Outcome o : outcomes) {
            Map<String, Object> item = new java.util.LinkedHashMap<>();
            item.put("step_id", o.token().stepId());
            item.put("attempt", o.token().attempt());
            if (o.failure() == null) {
                item.put("success", o.result());
            } else {
                item.put("failure", o.failure().map);
            }
            items.add(item);
        }
        @SuppressWarnings("unchecked")
        List<Object> answers = (List<Object>) Native.finishMany(h, items);
        Reference.reachabilityFence(this);
        return answers;
    }

    /** Stops heartbeating a claim without an outcome; the reaper recovers the step when its lease expires. */
    @Override
    public void forget(ClaimToken token) {
        Native.forget(h, token.stepId(), token.attempt());
        Reference.reachabilityFence(this);
    }

    /** Stops claiming and wakes a waiting claim; outstanding claims keep their lease until reported. */
    public void shutdown() {
        Native.shutdown(h);
        Reference.reachabilityFence(this);
    }

    @SuppressWarnings("unchecked")
    public List<ClaimToken> outstanding() {
        return kept((List<ClaimToken>) Native.outstanding(h));
    }

    public SessionStats stats() {
        return kept((SessionStats) Native.stats(h));
    }

    /** When the next scheduled retry of this session's keys falls due, or null. */
    public Instant nextRetryAt() {
        return kept((Instant) Native.nextRetryAt(h));
    }

    /** {@code v}, with this object kept reachable until here, so its Cleaner cannot free the handle mid-call. */
    private <T> T kept(T v) {
        Reference.reachabilityFence(this);
        return v;
    }
}
