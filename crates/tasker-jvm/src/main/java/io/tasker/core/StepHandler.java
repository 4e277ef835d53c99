package io.tasker.core;

/**
 * Runs one claimed step: returns its result (a JSON value: Map / List / String / Long / Integer / Double /
 * Boolean / null) or throws. {@link RetryableException} and {@link PermanentException} choose how the failure
 * is treated; any other exception is retryable, with its class, message and stack trace recorded on the step.
 */
@FunctionalInterface
public interface StepHandler {
    Object handle(StepContext ctx) throws Exception;
}
