package io.tasker.core;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The test kit (docs/bindings.md §8–§9): factory workflows ({@code linear}, {@code diamond},
 * {@code parallel}, {@code tree}, {@code mixed}), scripted handlers, run until idle, and the scenario files.
 *
 * <pre>{@code
 * PatternTasks made = TestHelpers.diamond(client, 3);
 * RunReport report = TestHelpers.runScripted(client, Map.of(), RunOptions.defaults());
 * }</pre>
 *
 * A {@code spec} map holds the keys of {@code PatternSpec}: {@code n}, {@code depth}, {@code fanout},
 * {@code namespace} (testkit), {@code handler_key} (testkit.noop; {@code {step}} becomes the step name) and
 * {@code retry}.
 */
public final class TestHelpers {
    private TestHelpers() {}

    /** Throw from a handler to act like a crashed worker: the claim is never reported and its lease expires. */
    public static final class OverrunLease extends Error {
        public OverrunLease() {
            super("overrun_lease", null, false, false);
        }
    }

    private static Map<String, Object> spec(String pattern, Map<String, ?> spec) {
        Map<String, Object> m = new LinkedHashMap<>();
        if (spec != null) m.putAll(spec);
        m.put("pattern", pattern);
        return m;
    }

    /** The template document of a factory pattern, as a map. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> patternTemplate(String pattern, Map<String, ?> spec) {
        return (Map<String, Object>) Native.patternTemplate(spec(pattern, spec));
    }

    /** Registers only the template of a factory pattern. */
    public static Registration registerPattern(TaskerClient client, String pattern, Map<String, ?> spec) {
        return (Registration) Native.registerPattern(client.h, spec(pattern, spec));
    }

    /** Registers a factory pattern and creates {@code count} tasks of it with {@code context} (or {}). */
    public static PatternTasks createPatternTasks(TaskerClient client, String pattern, Map<String, ?> spec, int count,
            Map<String, ?> context) {
        return (PatternTasks) Native.createPatternTasks(client.h, spec(pattern, spec), count, context);
    }

    /** {@code count} tasks of {@code n} steps in a chain. */
    public static PatternTasks linear(TaskerClient client, int n, int count) {
        return createPatternTasks(client, "linear", Map.of("n", (long) n), count, null);
    }

    /** {@code count} tasks of a diamond: one root, two branches, one join. */
    public static PatternTasks diamond(TaskerClient client, int count) {
        return createPatternTasks(client, "diamond", Map.of(), count, null);
    }

    /** {@code count} tasks of {@code n} independent branches. */
    public static PatternTasks parallel(TaskerClient client, int n, int count) {
        return createPatternTasks(client, "parallel", Map.of("n", (long) n), count, null);
    }

    /** {@code count} tasks of a tree {@code depth} levels deep with {@code fanout} children per node. */
    public static PatternTasks tree(TaskerClient client, int depth, int fanout, int count) {
        return createPatternTasks(client, "tree", Map.of("depth", (long) depth, "fanout", (long) fanout), count, null);
    }

    /** {@code count} tasks of the mixed pattern (fan-out, chain and join together). */
    public static PatternTasks mixed(TaskerClient client, int count) {
        return createPatternTasks(client, "mixed", Map.of(), count, null);
    }

    /**
     * Runs scripted handlers until idle: {@code script} maps a step name (or handler key) to the outcomes of
     * attempts 1, 2, … ({@code {succeed: …}}, {@code {fail_retryable: {…}}}, {@code {fail_permanent: {…}}},
     * {@code "overrun_lease"}); an unlisted step succeeds.
     */
    public static RunReport runScripted(TaskerClient client, Map<String, ?> script, RunOptions options) {
        return (RunReport) Native.runScripted(client.h, script, options == null ? null : options.map);
    }

    /** Runs the worker's Java handlers on the calling thread until idle. */
    public static RunReport runUntilIdle(Worker worker) {
        return worker.runUntilIdle();
    }

    public static RunReport runUntilIdle(Worker worker, RunOptions options) {
        return worker.runUntilIdle(options);
    }

    /** The outcome a handler script gives one attempt (the default result filled in). */
    public static Object scriptOutcome(Map<String, ?> script, String stepName, String handlerKey, long attempt) {
        return Native.scriptOutcome(script, stepName, handlerKey, attempt);
    }

    /** The scenario files of a directory, sorted. */
    @SuppressWarnings("unchecked")
    public static List<Path> scenarioFiles(Path dir) {
        List<Path> out = new ArrayList<>();
        for (String p : (List<String>) Native.scenarioFiles(dir.toString())) out.add(Path.of(p));
        return out;
    }

    /** A scenario file, checked by the reference parser, as the map it holds. */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> loadScenario(Path path) {
        return (Map<String, Object>) Native.loadScenario(path.toString());
    }

    /** The reference runner's subset rule: objects a subset of keys, lists the same length, element by element. */
    public static boolean jsonContains(Object actual, Object expected) {
        return Native.jsonContains(actual, expected);
    }
}
