package io.tasker.core;

import java.util.Map;

/** An object of the table (Task, Step, StepContext, …): a record with a plain-data view. */
public interface TaskerObject {
    /** The fields as plain data, keyed by their table names ({@code snake_case}); nested objects as maps too. */
    Map<String, Object> toMap();
}
