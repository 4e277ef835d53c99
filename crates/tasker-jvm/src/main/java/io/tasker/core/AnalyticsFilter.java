package io.tasker.core;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;

/** Which finished work the slowest-steps and slowest-tasks calls look at (default: the last 24 hours). */
public final class AnalyticsFilter {
    final Map<String, Object> map = new LinkedHashMap<>();

    public static AnalyticsFilter lastDay() {
        return new AnalyticsFilter();
    }

    /** Work finished at or after {@code since}. */
    public AnalyticsFilter since(Instant since) {
        map.put("since", since.toString());
        return this;
    }

    /** The whole history. */
    public AnalyticsFilter allTime() {
        map.put("since", null);
        return this;
    }

    public AnalyticsFilter namespace(String namespace) {
        map.put("namespace", namespace);
        return this;
    }

    public AnalyticsFilter name(String name) {
        map.put("name", name);
        return this;
    }

    public AnalyticsFilter version(String version) {
        map.put("version", version);
        return this;
    }
}
