package io.tasker.core;

import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The options of {@link TaskerClient#registerSchedule(String, String, String, String, ScheduleOptions)}: the
 * time zone the cron expression is read in, the context and priority of every task it creates, the template
 * version, and what happens to occurrences missed while nothing ran.
 */
public final class ScheduleOptions {
    /** What a schedule does with occurrences missed while no worker ran (more than 60 s late). */
    public enum Misfire {
        /** They are skipped; the schedule carries on with its next occurrence (the default). */
        SKIP("skip"),
        /** One task is created for them all, keyed by the latest missed occurrence. */
        RUN_ONCE("run_once");

        final String wire;

        Misfire(String wire) {
            this.wire = wire;
        }
    }

    final Map<String, Object> map;

    private ScheduleOptions(Map<String, Object> map) {
        this.map = map;
    }

    public static Builder builder() {
        return new Builder();
    }

    /** A schedule whose tasks get this context. */
    public static ScheduleOptions withContext(Map<String, ?> context) {
        return builder().context(context).build();
    }

    public static final class Builder {
        private final Map<String, Object> map = new LinkedHashMap<>();

        /** The context of every task: a JSON object, checked against the template's schema at registration. */
        public Builder context(Map<String, ?> context) {
            map.put("context", context);
            return this;
        }

        /** Any value as the context, checked by the engine (a non-object is a ValidationException). */
        Builder contextValue(Object context) {
            map.put("context", context);
            return this;
        }

        /** An IANA zone name such as {@code Europe/Berlin} (default UTC); an unknown one is a ValidationException. */
        public Builder timezone(String zone) {
            map.put("timezone", zone);
            return this;
        }

        public Builder timezone(ZoneId zone) {
            return timezone(zone == null ? null : zone.getId());
        }

        /** The template version of every task (default: the newest registered at each occurrence). */
        public Builder version(String version) {
            map.put("version", version);
            return this;
        }

        /** -1000..=1000, the priority of every task (default: the template's priority). */
        public Builder priority(long priority) {
            map.put("priority", priority);
            return this;
        }

        public Builder misfire(Misfire misfire) {
            map.put("misfire", misfire == null ? null : misfire.wire);
            return this;
        }

        public ScheduleOptions build() {
            return new ScheduleOptions(new LinkedHashMap<>(map));
        }
    }
}
