package io.tasker.core;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/** The options of {@link TaskerClient#createTask(String, String, CreateTask)}: context, version, idempotency key, tags, …. */
public final class CreateTask {
    final Map<String, Object> map;

    private CreateTask(Map<String, Object> map) {
        this.map = map;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A task of the newest version with this context. */
    public static CreateTask withContext(Map<String, ?> context) {
        return builder().context(context).build();
    }

    public static final class Builder {
        private final Map<String, Object> map = new LinkedHashMap<>();

        /** The task context: a JSON object of Map / List / String / Long / Double / Boolean / null. */
        public Builder context(Map<String, ?> context) {
            map.put("context", context);
            return this;
        }

        /** Any value as the context, checked by the engine (a non-object is a ValidationException). */
        Builder contextValue(Object context) {
            map.put("context", context);
            return this;
        }

        /** The template version (default: the newest). */
        public Builder version(String version) {
            map.put("version", version);
            return this;
        }

        /** Creating again with the same key returns the task created first. */
        public Builder idempotencyKey(String key) {
            map.put("idempotency_key", key);
            return this;
        }

        public Builder tags(Map<String, String> tags) {
            map.put("tags", tags);
            return this;
        }

        public Builder initiator(String initiator) {
            map.put("initiator", initiator);
            return this;
        }

        public Builder sourceSystem(String sourceSystem) {
            map.put("source_system", sourceSystem);
            return this;
        }

        public Builder reason(String reason) {
            map.put("reason", reason);
            return this;
        }

        /** -1000..=1000; higher is claimed first (default: the template's priority, else 0). */
        public Builder priority(long priority) {
            map.put("priority", priority);
            return this;
        }

        /** No step of the task runs before this instant. */
        public Builder runAt(Instant runAt) {
            map.put("run_at", runAt == null ? null : runAt.toString());
            return this;
        }

        /** The same as {@link #runAt} this long from now (by the client's clock). */
        public Builder delay(Duration delay) {
            map.put("delay_seconds", delay == null ? null : delay.toNanos() / 1e9);
            return this;
        }

        public CreateTask build() {
            return new CreateTask(new LinkedHashMap<>(map));
        }
    }
}
