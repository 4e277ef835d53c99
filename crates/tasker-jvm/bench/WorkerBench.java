package io.tasker.core;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The Java half of {@code cargo xtask bench --bindings}: the library's own {@link Worker} running no-op handlers
 * on a fresh PostgreSQL database, measured from outside the library. Prints one JSON line, with the keys of
 * crates/tasker-python/bench/worker_bench.py; exits non-zero unless every task and step completed.
 *
 * <pre>
 * java -Dtasker.native.library=… -cp &lt;classes&gt;:&lt;bench classes&gt; io.tasker.core.WorkerBench
 *     --url postgres://postgres@127.0.0.1:5432/postgres [--tasks 2000] [--concurrency 64] [--quick]
 * </pre>
 *
 * The URL names a server; the program creates its own database there (psql), so every run starts from empty
 * tables, and drops it afterwards. It lives in the library's package only to wrap the worker's session; the
 * timing is all here.
 */
public final class WorkerBench {
    static final int STEPS_PER_TASK = 4;
    static final String[] KINDS = {"claim", "claim_empty", "report", "report_failure", "flush"};
    static final ThreadMXBean THREADS = ManagementFactory.getThreadMXBean();

    /**
     * Sums per kind of native call: wall time, and the calling thread's CPU time, which is what crossing the
     * boundary costs the host (argument and result conversion, the JNI transitions, handing the call to the
     * engine's runtime); blocked time uses no CPU. A claim that returns nothing is the loop waiting for work,
     * so it is kept apart.
     */
    static final class Clock {
        final Map<String, AtomicLong[]> stats = new LinkedHashMap<>();

        Clock() {
            for (String k : KINDS) stats.put(k, new AtomicLong[] {new AtomicLong(), new AtomicLong(), new AtomicLong()});
        }

        void add(String kind, long wallNs, long cpuNs) {
            AtomicLong[] e = stats.get(kind);
            e[0].incrementAndGet();
            e[1].addAndGet(wallNs);
            e[2].addAndGet(cpuNs);
        }
    }

    /** The worker's session with the loop's calls into the library timed; the loop itself is unchanged. */
    static final class TimedSession extends WorkerSession {
        private final Clock clock;

        TimedSession(WorkerSession native_, Clock clock) {
            super(native_);
            this.clock = clock;
        }

        @Override
        public List<StepContext> nextBatch(int max, Duration wait) {
            long c = THREADS.getCurrentThreadCpuTime(), t = System.nanoTime();
            List<StepContext> out = super.nextBatch(max, wait);
            clock.add(out.isEmpty() ? "claim_empty" : "claim", System.nanoTime() - t,
                    THREADS.getCurrentThreadCpuTime() - c);
            return out;
        }

        @Override
        public void report(ClaimToken token, Object result) {
            long c = THREADS.getCurrentThreadCpuTime(), t = System.nanoTime();
            super.report(token, result);
            clock.add("report", System.nanoTime() - t, THREADS.getCurrentThreadCpuTime() - c);
        }

        @Override
        public void reportFailure(ClaimToken token, Failure failure) {
            long c = THREADS.getCurrentThreadCpuTime(), t = System.nanoTime();
            super.reportFailure(token, failure);
            clock.add("report_failure", System.nanoTime() - t, THREADS.getCurrentThreadCpuTime() - c);
        }

        @Override
        public void flush() {
            long c = THREADS.getCurrentThreadCpuTime(), t = System.nanoTime();
            super.flush();
            clock.add("flush", System.nanoTime() - t, THREADS.getCurrentThreadCpuTime() - c);
        }
    }

    static void psql(String url, String sql) throws Exception {
        Process p = new ProcessBuilder("psql", url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        if (p.waitFor() != 0) throw new IllegalStateException("psql failed: " + sql);
    }

    static String loadavg() throws Exception {
        String[] parts = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
        return parts[0] + " " + parts[1] + " " + parts[2];
    }

    static double round(double v, int places) {
        double f = Math.pow(10, places);
        return Math.round(v * f) / f;
    }

    static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof String s) return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
        if (v instanceof Map<?, ?> m) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (b.length() > 1) b.append(", ");
                b.append(json(e.getKey().toString())).append(": ").append(json(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof Double d) return String.format(Locale.ROOT, "%s", d);
        return v.toString();
    }

    public static void main(String[] argv) throws Exception {
        String url = null;
        int tasks = 2000;
        int concurrency = 64;
        boolean quick = false;
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--url" -> url = argv[++i];
                case "--tasks" -> tasks = Integer.parseInt(argv[++i]);
                case "--concurrency" -> concurrency = Integer.parseInt(argv[++i]);
                case "--quick" -> quick = true;
                default -> throw new IllegalArgumentException("unknown argument " + argv[i]
                        + "; usage: --url URL [--tasks N] [--concurrency N] [--quick]");
            }
        }
        if (url == null) throw new IllegalArgumentException("--url is required");
        if (quick) tasks = 200;
        int steps = tasks * STEPS_PER_TASK;

        byte[] random = new byte[4];
        new SecureRandom().nextBytes(random);
        StringBuilder hex = new StringBuilder();
        for (byte b : random) hex.append(String.format("%02x", b));
        String db = "tasker_bench_java_" + hex;
        String dbUrl = url.replaceFirst("^(\\w+://[^/?]*)(/[^?]*)?", "$1/" + db);
        psql(url, "CREATE DATABASE " + db);
        Map<String, Object> result = new LinkedHashMap<>();
        try (TaskerClient client = TaskerClient.connect(dbUrl)) {
            long t0 = System.nanoTime();
            TestHelpers.linear(client, STEPS_PER_TASK, tasks);
            double createdS = (System.nanoTime() - t0) / 1e9;

            Clock clock = new Clock();
            Worker worker = new Worker(client, WorkerOptions.builder().concurrency(concurrency).shutdownHook(false).build());
            worker.wrap = s -> new TimedSession(s, clock);
            worker.handle("testkit.noop", ctx -> Map.of());
            // Outcomes are written by the session's reporter, not by a call of the loop, so a watcher sees the
            // last completion (polling every 20 ms) and stops the worker, so the run ends when the work does.
            final int wantTasks = tasks;
            AtomicLong completedAt = new AtomicLong();
            Thread watcher = new Thread(() -> {
                long giveUp = System.nanoTime() + (long) ((120 + steps / 100.0) * 1e9);
                try {
                    while (System.nanoTime() < giveUp) {
                        Thread.sleep(20);
                        if (client.healthCounts().tasks().getOrDefault("complete", 0L) == wantTasks) {
                            completedAt.set(System.nanoTime());
                            break;
                        }
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                worker.stop();
            }, "bench-watcher");
            watcher.setDaemon(true);
            watcher.start();

            String loadBefore = loadavg();
            // The whole process's CPU over the run (every Java thread, the engine's runtime threads), to set
            // beside the Rust worker process's CPU per step.
            var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            long cpuStarted = os.getProcessCpuTime();
            long started = System.nanoTime();
            worker.run();
            long ended = System.nanoTime();
            long processCpu = os.getProcessCpuTime() - cpuStarted;
            watcher.join();
            String loadAfter = loadavg();

            HealthCounts counts = client.healthCounts();
            long tasksDone = counts.tasks().getOrDefault("complete", 0L);
            long stepsDone = counts.steps().getOrDefault("complete", 0L);
            Map<String, AtomicLong[]> s = clock.stats;
            boolean ok = counts.totalTasks() == tasks && tasksDone == tasks && counts.totalSteps() == steps
                    && stepsDone == steps && s.get("report_failure")[0].get() == 0;
            double toLast = ((completedAt.get() != 0 ? completedAt.get() : ended) - started) / 1e9;
            long nativeWall = 0;
            long nativeCpu = 0;
            for (String k : List.of("claim", "report", "report_failure", "flush")) {
                nativeWall += s.get(k)[1].get();
                nativeCpu += s.get(k)[2].get();
            }
            Map<String, Object> calls = new LinkedHashMap<>();
            for (Map.Entry<String, AtomicLong[]> e : s.entrySet()) {
                Map<String, Object> c = new LinkedHashMap<>();
                c.put("calls", e.getValue()[0].get());
                c.put("wall_s", round(e.getValue()[1].get() / 1e9, 6));
                c.put("thread_cpu_s", round(e.getValue()[2].get() / 1e9, 6));
                calls.put(e.getKey(), c);
            }
            result.put("binding", "java");
            result.put("java", System.getProperty("java.version"));
            result.put("tasks", tasks);
            result.put("steps", steps);
            result.put("concurrency", concurrency);
            result.put("created_s", round(createdS, 3));
            result.put("run_s", round((ended - started) / 1e9, 3));
            result.put("to_last_complete_s", round(toLast, 3));
            result.put("steps_per_s", round(steps / toLast, 1));
            result.put("ffi_cpu_us_per_step", round(nativeCpu / 1e3 / steps, 2));
            result.put("ffi_wall_us_per_step", round(nativeWall / 1e3 / steps, 1));
            result.put("process_cpu_us_per_step", round(processCpu / 1e3 / steps, 1));
            result.put("empty_claim_wall_us_per_step", round(s.get("claim_empty")[1].get() / 1e3 / steps, 1));
            result.put("calls", calls);
            result.put("loadavg_before", loadBefore);
            result.put("loadavg_after", loadAfter);
            result.put("tasks_complete", tasksDone);
            result.put("steps_complete", stepsDone);
            result.put("ok", ok);
        } finally {
            psql(url, "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
        }
        System.out.println(json(result));
        System.exit(Boolean.TRUE.equals(result.get("ok")) ? 0 : 1);
    }
}
