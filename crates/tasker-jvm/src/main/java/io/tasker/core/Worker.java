package io.tasker.core;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;

/**
 * Runs Java handlers for the steps of registered templates, on a pool of {@code concurrency} threads.
 *
 * <pre>{@code
 * Worker worker = new Worker(client, WorkerOptions.builder().concurrency(16).build());
 * worker.handle("shop.charge", ctx -> Map.of("charged", ctx.context()));
 * worker.run();   // until stop() or JVM shutdown
 * }</pre>
 *
 * All engine rules (claims, retries, leases, deadlines, batching, what a bad result or a missing handler
 * means) live in the shared worker session; this class only runs handlers and describes their exceptions.
 */
public final class Worker {
    private final TaskerClient client;
    private final WorkerOptions options;
    private final Map<String, StepHandler> handlers = new TreeMap<>();
    private final Object lock = new Object();
    private WorkerSession session;
    /** Wraps the session when it opens (the benchmark times the loop's calls from outside this way). */
    UnaryOperator<WorkerSession> wrap = UnaryOperator.identity();
    private volatile boolean stopping;
    private volatile CountDownLatch running;

    public Worker(TaskerClient client, WorkerOptions options) {
        if (client == null) throw new NullPointerException("client must not be null");
        this.client = client;
        this.options = options == null ? WorkerOptions.defaults() : options;
    }

    public Worker(TaskerClient client) {
        this(client, WorkerOptions.defaults());
    }

    /** Registers the handler of {@code key}; before the worker starts. */
    public Worker handle(String key, StepHandler handler) {
        if (key == null || key.isEmpty()) throw new IllegalArgumentException("key: expected a non-empty String");
        if (handler == null) throw new NullPointerException("handler must not be null");
        synchronized (lock) {
            if (session != null) throw new IllegalStateException("register handlers before the worker starts");
            handlers.put(key, handler);
        }
        return this;
    }

    public List<String> handlerKeys() {
        synchronized (lock) {
            return List.copyOf(handlers.keySet());
        }
    }

    /** The worker's session, opened on first use for the handler keys (a stopped one is replaced). */
    public WorkerSession session() {
        synchronized (lock) {
            if (session != null && session.isShutdown()) session = null;
            if (session == null) {
                if (handlers.isEmpty()) throw new IllegalStateException("register at least one handler first");
                List<String> keys = options.handlerKeys != null ? options.handlerKeys : List.copyOf(handlers.keySet());
                session = wrap.apply(client.workerSession(options, keys));
            }
            return session;
        }
    }

    /** What takes a handler's outcome: the session, or a run until idle. */
    interface Reporter {
        void report(ClaimToken token, Object result);

        void reportFailure(ClaimToken token, Failure failure);

        void reportMissing(ClaimToken token, String handlerKey);

        void forget(ClaimToken token);
    }

    /** A run until idle (docs/bindings.md §8), over its native handle. */
    private record IdleRun(long h) implements Reporter {
        @Override
        public void report(ClaimToken t, Object result) {
            Native.report(h, t.stepId(), t.attempt(), result);
        }

        @Override
        public void reportFailure(ClaimToken t, Failure failure) {
            Native.reportFailure(h, t.stepId(), t.attempt(), failure.map);
        }

        @Override
        public void reportMissing(ClaimToken t, String handlerKey) {
            Native.reportMissing(h, t.stepId(), t.attempt(), handlerKey);
        }

        @Override
        public void forget(ClaimToken t) {
            Native.forget(h, t.stepId(), t.attempt());
        }
    }

    /** Runs the handler of {@code ctx} and hands what happened to {@code to}. */
    private void deliver(Reporter to, StepContext ctx) {
        StepHandler fn = handlers.get(ctx.handlerKey());
        if (fn == null) {
            to.reportMissing(ctx.token(), ctx.handlerKey());
            return;
        }
        Object result;
        try {
            result = fn.handle(ctx);
        } catch (TestHelpers.OverrunLease overrun) {
            to.forget(ctx.token());
            return;
        } catch (Throwable e) {
            to.reportFailure(ctx.token(), Failure.of(e));
            return;
        }
        to.report(ctx.token(), result);
    }

    /**
     * Claims and runs steps until {@link #stop()} (or JVM shutdown, through a shutdown hook), then stops
     * claiming, waits for running handlers, writes every outcome and returns the session's stats. A database
     * outage does not end it: the session retries claims and reports.
     */
    public SessionStats run() {
        WorkerSession s = session();
        CountDownLatch done = new CountDownLatch(1);
        running = done;
        Thread hook = null;
        if (options.shutdownHook) {
            hook = new Thread(() -> {
                stop();
                try {
                    done.await(60, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }, "tasker-worker-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
        }
        int n = options.concurrency;
        AtomicInteger threads = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(n, r -> {
            Thread t = new Thread(r, "tasker-worker-" + threads.incrementAndGet());
            t.setDaemon(true);
            return t;
        });
        Semaphore free = new Semaphore(n);
        try {
            while (!stopping) {
                // Wait for a free thread (bounded, so stop() is noticed), then claim for every free thread.
                if (!free.tryAcquire(200, TimeUnit.MILLISECONDS)) continue;
                int slots = 1;
                while (slots < n && free.tryAcquire()) slots++;
                List<StepContext> batch = s.nextBatch(slots, options.claimWait);
                free.release(slots - batch.size());
                for (StepContext ctx : batch) {
                    pool.execute(() -> {
                        try {
                            deliver(s, ctx);
                        } finally {
                            free.release();
                        }
                    });
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            s.shutdown();
            pool.shutdown();
            try {
                while (!pool.awaitTermination(1, TimeUnit.SECONDS)) {
                    // Running handlers finish and report; their leases are heartbeated meanwhile.
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            s.flush();
            if (hook != null) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException shuttingDown) {
                    // The JVM is already shutting down: the hook is what stopped us.
                }
            }
            // Cleared on the way out, not the way in, so a stop() that raced ahead of run() is not lost.
            stopping = false;
            done.countDown();
        }
        return s.stats();
    }

    /** Asks {@link #run()} to stop: wakes a waiting claim at once; running handlers still report. */
    public void stop() {
        stopping = true;
        synchronized (lock) {
            if (session != null) session.shutdown();
        }
    }

    /** Waits until a {@link #run()} in progress has returned, at most {@code timeout}; true when it has. */
    public boolean awaitStopped(Duration timeout) throws InterruptedException {
        CountDownLatch done = running;
        return done == null || done.await(timeout.toMillis(), TimeUnit.MILLISECONDS);
    }

    /** {@link #runUntilIdle(RunOptions)} with the defaults. */
    public RunReport runUntilIdle() {
        return runUntilIdle(RunOptions.defaults());
    }

    /**
     * Runs handlers on the calling thread until nothing is left to do, by the one idle rule of
     * docs/bindings.md §8: claim a batch without waiting, run each in claim order, report the batch; when a
     * claim finds nothing, stop unless a retry is scheduled, else move a manual clock to it (unless
     * {@code autoAdvanceClock} is off) or wait for it. A {@link TaskerTimeoutException} past the timeout.
     */
    @SuppressWarnings("unchecked")
    public RunReport runUntilIdle(RunOptions runOptions) {
        IdleRun run = new IdleRun(Native.untilIdle(session().h, runOptions == null ? null : runOptions.map));
        try {
            List<StepContext> batch;
            while ((batch = (List<StepContext>) Native.runNextBatch(run.h())) != null) {
                for (StepContext ctx : batch) deliver(run, ctx);
            }
            return (RunReport) Native.runFinish(run.h());
        } finally {
            Native.free(run.h());
        }
    }
}
