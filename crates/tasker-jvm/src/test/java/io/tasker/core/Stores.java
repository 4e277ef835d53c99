package io.tasker.core;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.Arguments;

/** The stores every behaviour runs on, and small templates shared by the suite. */
final class Stores {
    private Stores() {}

    static final String PG_URL = System.getenv("TASKER_TEST_PG_URL");

    /** The repository root (the pom passes it; the working directory is crates/tasker-jvm otherwise). */
    static Path repoRoot() {
        String root = System.getProperty("tasker.repo.root");
        return Path.of(root == null || root.isEmpty() ? "../.." : root).toAbsolutePath().normalize();
    }

    static final Path TMP;

    static {
        try {
            TMP = Files.createTempDirectory("tasker-jvm-");
        } catch (IOException e) {
            throw new RuntimeException(e);
        }
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try (Stream<Path> files = Files.walk(TMP)) {
                files.sorted((a, b) -> b.compareTo(a)).forEach(p -> p.toFile().delete());
            } catch (IOException ignored) {
                // best effort
            }
        }));
    }

    /** An empty PostgreSQL database on TASKER_TEST_PG_URL's server, made with psql (xtask puts it on PATH). */
    static String freshPg() {
        assumeTrue(PG_URL != null, "TASKER_TEST_PG_URL is not set");
        String name = "jvm_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        try {
            Process p = new ProcessBuilder("psql", PG_URL, "-q", "-c", "CREATE DATABASE " + name)
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) throw new IllegalStateException("psql failed: " + out);
        } catch (IOException e) {
            throw new IllegalStateException("psql is not on PATH", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
        return PG_URL.substring(0, PG_URL.lastIndexOf('/')) + "/" + name;
    }

    /** {@code [label, () -> fresh url]}: memory, SQLite in memory and in a file, PostgreSQL. */
    static Stream<Arguments> all() {
        List<Arguments> out = new ArrayList<>();
        out.add(Arguments.of("memory", (Supplier<String>) () -> "memory:"));
        out.add(Arguments.of("sqlite memory", (Supplier<String>) () -> "sqlite::memory:"));
        out.add(Arguments.of("sqlite file",
                (Supplier<String>) () -> "sqlite://" + TMP.resolve(UUID.randomUUID() + ".db")));
        out.add(Arguments.of("postgres", (Supplier<String>) Stores::freshPg));
        return out.stream();
    }

    static TaskerClient manual(String url) {
        return TaskerClient.connect(url, ClientOptions.builder().manualClock().build());
    }

    static final Map<String, Object> DIAMOND = Map.of(
            "namespace", "shop",
            "name", "order",
            "version", "1.0.0",
            "steps", List.of(
                    Map.of("name", "validate", "handler", "shop.validate"),
                    Map.of("name", "charge", "handler", "shop.charge", "depends_on", List.of("validate")),
                    Map.of("name", "reserve", "handler", "shop.reserve", "depends_on", List.of("validate")),
                    Map.of("name", "ship", "handler", "shop.ship", "depends_on", List.of("charge", "reserve"))));

    /** A one-step template {@code w/<name>} whose step {@code work} runs {@code handler}, 3 attempts, no backoff. */
    static Map<String, Object> oneStep(String name, String handler) {
        return Map.of(
                "namespace", "w",
                "name", name,
                "version", "1.0.0",
                "defaults", Map.of("retry", Map.of("max_attempts", 3L, "backoff", "none")),
                "steps", List.of(Map.of("name", "work", "handler", handler)));
    }

    /** JSON text of a value, for messages. */
    static String show(Object v) {
        if (v == null) return "null";
        if (v instanceof String s) return "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\"";
        if (v instanceof TaskerObject o) return show(o.toMap());
        if (v instanceof Map<?, ?> m) {
            StringBuilder b = new StringBuilder("{");
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (b.length() > 1) b.append(", ");
                b.append(show(String.valueOf(e.getKey()))).append(": ").append(show(e.getValue()));
            }
            return b.append('}').toString();
        }
        if (v instanceof List<?> l) {
            StringBuilder b = new StringBuilder("[");
            for (Object x : l) {
                if (b.length() > 1) b.append(", ");
                b.append(show(x));
            }
            return b.append(']').toString();
        }
        return String.valueOf(v);
    }
}
