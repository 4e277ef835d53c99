package io.tasker.core;

import java.util.LinkedHashMap;
import java.util.Map;

/** Which tasks {@link TaskerClient#tasks(TaskFilter)} lists: namespace, name, state, limit, and a page cursor. */
public final class TaskFilter {
    final Map<String, Object> map = new LinkedHashMap<>();

    public static TaskFilter all() {
        return new TaskFilter();
    }

    public TaskFilter namespace(String namespace) {
        map.put("namespace", namespace);
        return this;
    }

    public TaskFilter name(String name) {
        map.put("name", name);
        return this;
    }

    public TaskFilter state(String state) {
        map.put("state", state);
        return this;
    }

    public TaskFilter limit(int limit) {
        map.put("limit", (long) limit);
        return this;
    }

    /** Only tasks older than the task with this id (the last id of the previous page). */
    public TaskFilter before(String taskId) {
        map.put("before", taskId);
        return this;
    }
}
