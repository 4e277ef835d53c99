package io.tasker.core;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Which events a {@link Subscription} sees: one task's, and names matched exactly or by prefix ({@code "step"}). */
public final class EventFilter {
    final Map<String, Object> map = new LinkedHashMap<>();

    public static EventFilter all() {
        return new EventFilter();
    }

    public EventFilter taskId(String taskId) {
        map.put("task_id", taskId);
        return this;
    }

    public EventFilter names(String... names) {
        map.put("names", List.of(names));
        return this;
    }
}
