package io.tasker.core;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executor;

/**
 * How {@link TaskerClient#connect(String, ClientOptions)} opens a store: {@code clock} ({@code "system"} or
 * {@code "manual"}), the manual clock's start, {@code migrate} (true), {@code maxConnections} (8),
 * {@code eventCapacity} (4096), and the executor the {@code *Async} methods run on.
 */
public final class ClientOptions {
    final Map<String, Object> map;
    final Executor executor;

    private ClientOptions(Builder b) {
        this.map = Map.copyOf(b.map);
        this.executor = b.executor;
    }

    public static Builder builder() {
        return new Builder();
    }

    public static final class Builder {
        private final Map<String, Object> map = new LinkedHashMap<>();
        private Executor executor;

        /** {@code "system"} (the default) or {@code "manual"} (tests: time moves only with advanceClock). */
        public Builder clock(String clock) {
            map.put("clock", clock);
            return this;
        }

        public Builder manualClock() {
            return clock("manual");
        }

        public Builder manualClockStart(Instant start) {
            map.put("manual_clock_start", start.toString());
            return this;
        }

        public Builder migrate(boolean migrate) {
            map.put("migrate", migrate);
            return this;
        }

        public Builder maxConnections(int n) {
            map.put("max_connections", (long) n);
            return this;
        }

        public Builder eventCapacity(int n) {
            map.put("event_capacity", (long) n);
            return this;
        }

        /** Where the {@code *Async} methods run their blocking call (default: a shared pool of daemon threads). */
        public Builder executor(Executor executor) {
            this.executor = executor;
            return this;
        }

        public ClientOptions build() {
            return new ClientOptions(this);
        }
    }
}
