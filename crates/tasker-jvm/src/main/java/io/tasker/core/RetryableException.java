package io.tasker.core;

import java.time.Duration;

/**
 * Thrown by a handler: the attempt failed and may be retried (while attempts are left), no sooner than
 * {@code retryAfter} when it is given (capped by the step's retry policy). The step records the class name
 * {@code RetryableError} (as in every language), or a subclass's name.
 */
public class RetryableException extends RuntimeException implements Failure.HandlerFailure {
    private final Duration retryAfter;

    public RetryableException(String message) {
        this(message, null);
    }

    public RetryableException(String message, Duration retryAfter) {
        super(message);
        this.retryAfter = retryAfter;
    }

    /** The delay asked for before the next attempt, or null for the policy's backoff. */
    public Duration retryAfter() {
        return retryAfter;
    }

    /** The class name recorded on the step: a subclass's simple name, or null (RetryableError) for this class. */
    @Override
    public String errorClass() {
        return Failure.handlerClass(this);
    }
}
