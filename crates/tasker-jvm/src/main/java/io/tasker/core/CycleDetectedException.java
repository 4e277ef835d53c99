package io.tasker.core;

/** A Tasker Core error of its kind; see {@link TaskerException} and docs/bindings.md §5. */
public class CycleDetectedException extends TaskerException {
    public CycleDetectedException(String message, String code, Object details, Object causes) {
        super(message, code, details, causes);
    }
}
