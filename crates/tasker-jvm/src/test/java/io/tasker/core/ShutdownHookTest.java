package io.tasker.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * JVM shutdown stops a running worker gracefully: a child JVM runs {@link #main} (a worker whose handlers are
 * still running), gets SIGTERM, and the shutdown hook lets those handlers finish and their outcomes be written
 * before the JVM exits.
 */
class ShutdownHookTest {
    /** The child: three slow steps claimed at once, "running" printed once all three handlers started. */
    public static void main(String[] args) throws Exception {
        TaskerClient client = TaskerClient.connect(args[0]);
        TestHelpers.linear(client, 1, 3);
        Worker worker = new Worker(client, WorkerOptions.builder().concurrency(3).build());
        java.util.concurrent.CountDownLatch started = new java.util.concurrent.CountDownLatch(3);
        worker.handle("testkit.noop", ctx -> {
            started.countDown();
            Thread.sleep(1500);
            return Map.of("finished", true);
        });
        new Thread(() -> {
            try {
                started.await();
                System.out.println("running");
                System.out.flush();
            } catch (InterruptedException ignored) {
                // the JVM is going away
            }
        }).start();
        worker.run();
    }

    @Test
    void sigtermLetsRunningHandlersFinishAndReportBeforeTheJvmExits() throws Exception {
        String url = "sqlite://" + Stores.TMP.resolve(UUID.randomUUID() + ".db");
        List<String> command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path")));
        String library = System.getProperty("tasker.native.library");
        if (library != null && !library.isEmpty()) command.add("-Dtasker.native.library=" + library);
        command.addAll(List.of(ShutdownHookTest.class.getName(), url));
        Process child = new ProcessBuilder(command).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(child.getInputStream()));
        List<String> lines = new ArrayList<>();
        String line;
        while ((line = out.readLine()) != null) {
            lines.add(line);
            if (line.equals("running")) break;
        }
        assertTrue(lines.contains("running"), "the child never ran its handlers: " + lines);
        // SIGTERM by `kill`, since Process.destroy() also closes the child's output here.
        new ProcessBuilder("kill", "-TERM", Long.toString(child.pid())).inheritIO().start().waitFor();
        assertTrue(child.waitFor(30, TimeUnit.SECONDS), "the child did not exit");
        while ((line = out.readLine()) != null) lines.add(line);
        try (TaskerClient client = TaskerClient.connect(url)) {
            HealthCounts counts = client.healthCounts();
            assertEquals(3L, counts.steps().get("complete"), "every running handler's outcome was written");
            assertEquals(0L, counts.steps().get("in_progress"));
            for (Task t : client.tasks(TaskFilter.all())) {
                assertEquals(Map.of("finished", true), client.steps(t.id()).get(0).result());
            }
        }
    }
}
