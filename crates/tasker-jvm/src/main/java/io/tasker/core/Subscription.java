package io.tasker.core;

import java.lang.ref.Reference;
import java.time.Duration;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;

/**
 * A bounded subscription to events ({@link TaskerClient#subscribe}): it sees the events published after it
 * was made, at most {@code eventCapacity} waiting (older ones are dropped and counted in {@link #dropped()}).
 * Iterating blocks for the next event and ends once the client or the subscription is closed and the buffer
 * is empty. {@link #close()} lets it go; later calls throw {@link ClosedException}.
 */
public final class Subscription implements AutoCloseable, Iterable<Event> {
    private final TaskerClient client;
    private final long h;
    private volatile boolean closed;

    Subscription(TaskerClient client, long h) {
        this.client = client;
        this.h = h;
        Native.track(this, h);
    }

    /** The next event, waiting at most {@code timeout}; null when none came. */
    public Event next(Duration timeout) {
        return kept((Event) Native.subNext(h, timeout.toMillis()));
    }

    /** The next buffered event without waiting, or null. */
    public Event tryNext() {
        return kept((Event) Native.subTryNext(h));
    }

    /** Every buffered event, without waiting. */
    @SuppressWarnings("unchecked")
    public List<Event> drain() {
        return kept((List<Event>) Native.subDrain(h));
    }

    /** How many events were lost because the buffer was full. */
    public long dropped() {
        return kept(Native.subDropped(h));
    }

    @Override
    public void close() {
        closed = true;
        Native.free(h);
        Reference.reachabilityFence(this);
    }

    @Override
    public Iterator<Event> iterator() {
        return new Iterator<>() {
            private Event ahead;

            @Override
            public boolean hasNext() {
                while (ahead == null) {
                    if (closed) return false;
                    boolean ending = client.isClosed();
                    ahead = ending ? tryNext() : Subscription.this.next(Duration.ofMillis(200));
                    if (ahead == null && ending) return false;
                }
                return true;
            }

            @Override
            public Event next() {
                if (!hasNext()) throw new NoSuchElementException();
                Event e = ahead;
                ahead = null;
                return e;
            }
        };
    }

    /** {@code v}, with this object kept reachable until here, so its Cleaner cannot free the handle mid-call. */
    private <T> T kept(T v) {
        Reference.reachabilityFence(this);
        return v;
    }
}
