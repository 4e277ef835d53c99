package io.tasker.core;

/**
 * Thrown by a handler: the attempt failed and must not be retried; the step goes to {@code error} with
 * {@code code}. The step records the class name {@code PermanentError} (as in every language), or a subclass's name.
 */
public class PermanentException extends RuntimeException implements Failure.HandlerFailure {
    private final String code;

    public PermanentException(String message) {
        this(message, null);
    }

    public PermanentException(String message, String code) {
        super(message);
        this.code = code;
    }

    /** The error code recorded on the step, or null. */
    public String code() {
        return code;
    }

    /** The class name recorded on the step: a subclass's simple name, or null (PermanentError) for this class. */
    @Override
    public String errorClass() {
        return Failure.handlerClass(this);
    }
}
