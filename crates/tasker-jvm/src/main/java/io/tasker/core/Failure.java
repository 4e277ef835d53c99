package io.tasker.core;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * How a handler failed, as it is reported: {@link #retryable}, {@link #permanent}, or {@link #of} an exception
 * ({@link RetryableException} is retryable with its retry-after, {@link PermanentException} permanent with its
 * code, any other exception retryable with its class, message and stack trace).
 */
public final class Failure {
    final Map<String, Object> map = new LinkedHashMap<>();

    private Failure(String kind, String message) {
        map.put("kind", kind);
        map.put("message", message);
    }

    public static Failure retryable(String message) {
        return new Failure("retryable", message);
    }

    public static Failure permanent(String message) {
        return new Failure("permanent", message);
    }

    public Failure errorClass(String errorClass) {
        map.put("error_class", errorClass);
        return this;
    }

    public Failure code(String code) {
        map.put("code", code);
        return this;
    }

    public Failure retryAfter(Duration retryAfter) {
        map.put("retry_after_ms", retryAfter == null ? null : retryAfter.toMillis());
        return this;
    }

    public Failure backtrace(List<String> lines) {
        map.put("backtrace", lines);
        return this;
    }

    /** The failure a handler's exception reports. */
    public static Failure of(Throwable t) {
        // A plain RetryableException / PermanentException records the engine's `RetryableError` /
        // `PermanentError`, as in every language; a subclass records its own name.
        String errorClass = t instanceof HandlerFailure hf ? hf.errorClass() : className(t);
        String message = t.getMessage() == null || t.getMessage().isEmpty() ? className(t) : t.getMessage();
        Failure f = t instanceof PermanentException ? permanent(message) : retryable(message);
        if (errorClass != null) f.errorClass(errorClass);
        f.backtrace(backtraceOf(t));
        if (t instanceof RetryableException r) f.retryAfter(r.retryAfter());
        if (t instanceof PermanentException p) f.code(p.code());
        return f;
    }

    static String className(Throwable t) {
        String simple = t.getClass().getSimpleName();
        return simple.isEmpty() ? t.getClass().getName() : simple;
    }

    /** The stack trace, outermost call first (as every binding records it), then the exception itself. */
    static List<String> backtraceOf(Throwable t) {
        StackTraceElement[] frames = t.getStackTrace();
        List<String> lines = new ArrayList<>(frames.length + 1);
        for (int i = frames.length - 1; i >= 0; i--) lines.add("at " + frames[i]);
        lines.add(t.toString());
        return lines;
    }

    /** A handler exception that chooses the class name recorded on the step (null: the engine's default). */
    interface HandlerFailure {
        String errorClass();
    }

    /** The class name a handler exception records: none for the two base classes themselves. */
    static String handlerClass(Throwable t) {
        Class<?> c = t.getClass();
        return c == RetryableException.class || c == PermanentException.class ? null : className(t);
    }
}
