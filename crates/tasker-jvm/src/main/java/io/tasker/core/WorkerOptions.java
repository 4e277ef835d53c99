package io.tasker.core;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a {@link Worker} runs: {@code concurrency} handler threads (4), the worker id, the lease of each claim
 * (30 s), the heartbeat interval (lease / 3; {@code Duration.ZERO} never), the poll and maintenance
 * intervals (1 s, 5 s; zero maintenance never), how long one claim waits (1 s), the handler keys to claim for
 * (default: the keys with a handler), deadline enforcement (on), and the JVM shutdown hook (on).
 */
public final class WorkerOptions {
    final int concurrency;
    final Duration claimWait;
    final List<String> handlerKeys;
    final boolean shutdownHook;
    private final Map<String, Object> session;

    private WorkerOptions(Builder b) {
        this.concurrency = b.concurrency;
        this.claimWait = b.claimWait;
        this.handlerKeys = b.handlerKeys;
        this.shutdownHook = b.shutdownHook;
        this.session = new LinkedHashMap<>(b.session);
    }

    public static Builder builder() {
        return new Builder();
    }

    public static WorkerOptions defaults() {
        return builder().build();
    }

    public int concurrency() {
        return concurrency;
    }

    Map<String, Object> sessionMap(List<String> keys) {
        Map<String, Object> m = new LinkedHashMap<>(session);
        m.put("handler_keys", keys);
        return m;
    }

    public static final class Builder {
        private int concurrency = 4;
        private Duration claimWait = Duration.ofSeconds(1);
        private List<String> handlerKeys;
        private boolean shutdownHook = true;
        private final Map<String, Object> session = new LinkedHashMap<>();

        public Builder concurrency(int n) {
            if (n < 1) throw new IllegalArgumentException("concurrency: expected at least 1, found " + n);
            this.concurrency = n;
            return this;
        }

        public Builder workerId(String id) {
            session.put("worker_id", id);
            return this;
        }

        public Builder lease(Duration lease) {
            session.put("lease_ms", lease.toMillis());
            return this;
        }

        public Builder heartbeatInterval(Duration interval) {
            session.put("heartbeat_interval_ms", interval.toMillis());
            return this;
        }

        public Builder pollInterval(Duration interval) {
            session.put("poll_interval_ms", interval.toMillis());
            return this;
        }

        public Builder maintenanceInterval(Duration interval) {
            session.put("maintenance_interval_ms", interval.toMillis());
            return this;
        }

        public Builder enforceDeadlines(boolean on) {
            session.put("enforce_deadlines", on);
            return this;
        }

        /** How long one claim waits for work before the loop looks again (1 s). */
        public Builder claimWait(Duration wait) {
            this.claimWait = wait;
            return this;
        }

        /** The keys to claim steps for; a key without a handler fails its steps as {@code HandlerMissing}. */
        public Builder handlerKeys(List<String> keys) {
            this.handlerKeys = List.copyOf(keys);
            return this;
        }

        /** Whether {@link Worker#run()} installs a JVM shutdown hook that stops it gracefully (default true). */
        public Builder shutdownHook(boolean on) {
            this.shutdownHook = on;
            return this;
        }

        public WorkerOptions build() {
            return new WorkerOptions(this);
        }
    }
}
