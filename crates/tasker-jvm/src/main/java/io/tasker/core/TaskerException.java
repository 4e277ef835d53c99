package io.tasker.core;

import java.util.List;
import java.util.Map;

/**
 * Every error Tasker Core throws: one subclass per kind ({@link ValidationException}, {@link NotFoundException},
 * …), each with its stable {@link #code()}, a {@link #details()} map (docs/bindings.md §5) and the underlying
 * messages as the {@link #getCause()} chain. Switch on the class or the code, never on the message.
 */
public class TaskerException extends RuntimeException {
    private final String code;
    private final Map<String, Object> details;
    private final List<String> causes;

    @SuppressWarnings("unchecked")
    public TaskerException(String message, String code, Object details, Object causes) {
        super(message);
        this.code = code;
        this.details = details instanceof Map<?, ?> m ? (Map<String, Object>) m : Map.of();
        this.causes = causes instanceof List<?> l ? (List<String>) l : List.of();
        Throwable at = this;
        for (String cause : this.causes) {
            Throwable next = new Cause(cause);
            at.initCause(next);
            at = next;
        }
    }

    /** The kind's stable string: {@code validation}, {@code not_found}, {@code stale_claim}, …. */
    public String code() {
        return code;
    }

    /** Structured facts about the error; always a map (empty when there are none). */
    public Map<String, Object> details() {
        return details;
    }

    /** The messages of the underlying errors, outermost first. */
    public List<String> causes() {
        return causes;
    }

    /** One underlying error of a {@link TaskerException}, as its message. */
    public static final class Cause extends RuntimeException {
        Cause(String message) {
            super(message);
        }
    }
}
