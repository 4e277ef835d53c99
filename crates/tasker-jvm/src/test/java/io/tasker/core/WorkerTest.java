package io.tasker.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The Java worker: the thread pool, the handler failure kinds, the host mistakes, stopping, the test kit. */
class WorkerTest {
    private static Map<String, Step> stepsByName(TaskerClient client, String taskId) {
        Map<String, Step> out = new HashMap<>();
        for (Step s : client.steps(taskId)) out.put(s.name(), s);
        return out;
    }

    private static void until(Supplier<Boolean> cond, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!cond.get()) {
            if (System.nanoTime() > deadline) throw new AssertionError("timed out waiting for " + what);
            Thread.sleep(10);
        }
    }

    @ParameterizedTest(name = "on {0}")
    @MethodSource("io.tasker.core.Stores#all")
    void aDiamondRunsToCompletionOnTheThreadPool(String label, Supplier<String> fresh) throws Exception {
        try (TaskerClient client = TaskerClient.connect(fresh.get())) {
            client.registerTemplate(Stores.DIAMOND);
            List<Task> tasks = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                tasks.add(client.createTask("shop", "order", CreateTask.withContext(Map.of("order", i))));
            }
            Worker worker = new Worker(client, WorkerOptions.builder().concurrency(4).shutdownHook(false)
                    .claimWait(Duration.ofMillis(100)).build());
            List<String> threads = Collections.synchronizedList(new ArrayList<>());
            for (String key : List.of("shop.validate", "shop.charge", "shop.reserve", "shop.ship")) {
                worker.handle(key, ctx -> {
                    threads.add(Thread.currentThread().getName());
                    return Map.of("step", ctx.stepName(), "parents", new ArrayList<>(ctx.dependencyResults().keySet()));
                });
            }
            java.util.concurrent.atomic.AtomicReference<SessionStats> ran = new java.util.concurrent.atomic.AtomicReference<>();
            Thread runner = new Thread(() -> ran.set(worker.run()));
            runner.start();
            until(() -> tasks.stream().allMatch(t -> client.task(t.id()).state().equals("complete")), "the tasks");
            worker.stop();
            runner.join(20_000);
            assertFalse(runner.isAlive());
            assertTrue(threads.stream().allMatch(n -> n.startsWith("tasker-worker-")), threads.toString());
            Step ship = stepsByName(client, tasks.get(0).id()).get("ship");
            assertEquals("ship", ((Map<?, ?>) ship.result()).get("step"));
            assertEquals(12, ran.get().completed());
        }
    }

    private static Task oneStepTask(TaskerClient client, String name, String key) {
        client.registerTemplate(Stores.oneStep(name, key));
        return client.createTask("w", name, CreateTask.withContext(Map.of()));
    }

    @Test
    void aRetryableExceptionWithRetryAfterSchedulesTheRetryAndRunUntilIdleMovesTheClock() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Task task = oneStepTask(client, "flaky", "w.flaky");
            Worker worker = new Worker(client);
            AtomicInteger calls = new AtomicInteger();
            worker.handle("w.flaky", ctx -> {
                if (calls.incrementAndGet() == 1) throw new RetryableException("rate limited", Duration.ofSeconds(5));
                return Map.of("attempt", ctx.attempt());
            });
            RunReport report = worker.runUntilIdle();
            assertEquals(List.of("fail_retryable", "succeed"), report.calls().stream().map(HandlerCall::outcome).toList());
            assertTrue(report.advancedMs() >= 5000, "advanced " + report.advancedMs());
            Step step = client.steps(task.id()).get(0);
            assertEquals("complete", step.state());
            assertEquals(Map.of("attempt", 2L), step.result());
        }
    }

    @Test
    void aPermanentExceptionIsNotRetriedAndKeepsItsCode() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Task task = oneStepTask(client, "card", "w.card");
            Worker worker = new Worker(client);
            worker.handle("w.card", ctx -> {
                throw new PermanentException("card declined", "card_declined");
            });
            RunReport report = worker.runUntilIdle();
            assertEquals(List.of("fail_permanent"), report.calls().stream().map(HandlerCall::outcome).toList());
            Step step = client.steps(task.id()).get(0);
            assertEquals("error", step.state());
            assertEquals(List.of("PermanentError", "card_declined", false, "card declined"),
                    List.of(step.error().errorClass(), step.error().code(), step.error().retryable(),
                            step.error().message()));
            // retryTask gives it a fresh budget.
            Worker fixed = new Worker(client);
            fixed.handle("w.card", ctx -> Map.of("ok", true));
            client.retryTask(task.id());
            fixed.runUntilIdle();
            assertEquals("complete", client.task(task.id()).state());
        }
    }

    static final class CardDeclined extends PermanentException {
        CardDeclined() {
            super("declined", "card_declined");
        }
    }

    @Test
    void anyOtherExceptionIsRetriedWithItsClassMessageAndStackTrace() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Task task = oneStepTask(client, "boom", "w.boom");
            Task sub = oneStepTask(client, "sub", "w.sub");
            Worker worker = new Worker(client);
            worker.handle("w.boom", ctx -> {
                throw new IllegalStateException("boom");
            });
            worker.handle("w.sub", ctx -> {
                throw new CardDeclined();
            });
            worker.runUntilIdle();
            Step step = client.steps(task.id()).get(0);
            assertEquals("error", step.state());
            assertEquals(3, step.attempts());
            assertEquals(List.of("IllegalStateException", "boom", true),
                    List.of(step.error().errorClass(), step.error().message(), step.error().retryable()));
            List<String> trace = step.error().backtrace();
            assertTrue(trace.stream().anyMatch(l -> l.contains("WorkerTest")), trace.toString());
            assertEquals("java.lang.IllegalStateException: boom", trace.get(trace.size() - 1));
            Step subStep = client.steps(sub.id()).get(0);
            assertEquals(List.of("CardDeclined", "card_declined", 1L),
                    List.of(subStep.error().errorClass(), subStep.error().code(), subStep.attempts()));
        }
    }

    private static Object nested(int depth) {
        Object v = 1L;
        for (int i = 0; i < depth; i++) v = List.of(v);
        return v;
    }

    private static Map<String, Object> cyclic() {
        Map<String, Object> a = new HashMap<>();
        a.put("self", a);
        return a;
    }

    private static String firstErrorPath(TaskerException e) {
        return (String) ((Map<?, ?>) ((List<?>) e.details().get("errors")).get(0)).get("path");
    }

    // The JS bindings' host_mistakes.js holds Node and WASM to the same answers (docs/bindings.md §3, §6).
    @Test
    void aCyclicOrTooDeepResultFailsAsInvalidResultAndSuchAContextIsRefused() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Task cyclicTask = oneStepTask(client, "cyclic", "w.cyclic");
            Task deepTask = oneStepTask(client, "deep", "w.deep");
            Task limitTask = oneStepTask(client, "limit", "w.limit");
            Worker worker = new Worker(client);
            worker.handle("w.cyclic", ctx -> cyclic());
            worker.handle("w.deep", ctx -> nested(200));
            worker.handle("w.limit", ctx -> nested(127));
            worker.runUntilIdle(RunOptions.defaults());
            Step bad = client.steps(cyclicTask.id()).get(0);
            assertEquals(List.of("error", 1L, "InvalidResult"),
                    List.of(bad.state(), bad.attempts(), bad.error().errorClass()));
            assertEquals("result.self: expected a JSON value, found a cycle back to result", bad.error().message());
            assertEquals("result" + "[0]".repeat(127)
                    + ": expected a JSON value nested at most 127 levels deep, found a deeper one",
                    client.steps(deepTask.id()).get(0).error().message());
            Step limit = client.steps(limitTask.id()).get(0);
            assertEquals(List.of("complete", nested(127)), List.of(limit.state(), limit.result()));
            ValidationException deep = assertThrows(ValidationException.class,
                    () -> client.createTask("w", "limit", CreateTask.withContext(Map.of("items", nested(200)))));
            assertEquals("context.items" + "[0]".repeat(126), firstErrorPath(deep));
            ValidationException loop = assertThrows(ValidationException.class,
                    () -> client.createTask("w", "limit", CreateTask.withContext(cyclic())));
            assertEquals("context.self", firstErrorPath(loop));
            assertEquals(3, client.tasks(TaskFilter.all()).size());
        }
    }

    @Test
    void eachHostMistakeGivesTheStepErrorEveryBindingGives() {
        try (TaskerClient client = Stores.manual("memory:")) {
            List<String> keys = List.of("w.bad", "w.missing", "w.raises");
            Map<String, Task> tasks = new HashMap<>();
            for (String key : keys) tasks.put(key, oneStepTask(client, key.replace('.', '_'), key));
            Worker worker = new Worker(client, WorkerOptions.builder().handlerKeys(keys).build());
            worker.handle("w.bad", ctx -> Map.of("at", Instant.EPOCH));
            worker.handle("w.raises", ctx -> ((Map<?, ?>) ctx.context().getClass().cast(null)).get("sku"));
            RunReport report = worker.runUntilIdle(RunOptions.defaults().autoAdvanceClock(false));
            // The invalid result runs once; the other two are retried until their three attempts are spent.
            List<String> outcomes = new ArrayList<>(report.calls().stream().map(HandlerCall::outcome).toList());
            Collections.sort(outcomes);
            List<String> want = new ArrayList<>(List.of("fail_permanent"));
            want.addAll(Collections.nCopies(6, "fail_retryable"));
            assertEquals(want, outcomes);
            Step bad = client.steps(tasks.get("w.bad").id()).get(0);
            assertEquals(List.of("error", 1L, "InvalidResult", "invalid_result", false),
                    List.of(bad.state(), bad.attempts(), bad.error().errorClass(), bad.error().code(),
                            bad.error().retryable()));
            assertEquals("result.at: expected a JSON value, found Instant", bad.error().message());
            Step missing = client.steps(tasks.get("w.missing").id()).get(0);
            assertEquals(List.of(3L, "HandlerMissing", true),
                    List.of(missing.attempts(), missing.error().errorClass(), missing.error().retryable()));
            assertTrue(missing.error().message().contains("\"w.missing\""), missing.error().message());
            Step raises = client.steps(tasks.get("w.raises").id()).get(0);
            assertEquals(List.of(3L, "NullPointerException", true),
                    List.of(raises.attempts(), raises.error().errorClass(), raises.error().retryable()));
        }
    }

    @Test
    void stopWithStepsInFlightLetsRunningHandlersFinishAndReport() throws Exception {
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            TestHelpers.linear(client, 2, 6);
            Worker worker = new Worker(client, WorkerOptions.builder().concurrency(3).shutdownHook(false).build());
            CountDownLatch started = new CountDownLatch(3);
            CountDownLatch release = new CountDownLatch(1);
            worker.handle("testkit.noop", ctx -> {
                started.countDown();
                release.await();
                return Map.of("done", ctx.stepName());
            });
            java.util.concurrent.atomic.AtomicReference<SessionStats> ran = new java.util.concurrent.atomic.AtomicReference<>();
            Thread runner = new Thread(() -> ran.set(worker.run()));
            runner.start();
            assertTrue(started.await(20, TimeUnit.SECONDS), "three handlers running");
            worker.stop();
            Thread.sleep(100);
            assertTrue(runner.isAlive(), "run waits for the running handlers");
            release.countDown();
            runner.join(20_000);
            assertFalse(runner.isAlive());
            assertTrue(worker.awaitStopped(Duration.ofSeconds(1)));
            SessionStats stats = ran.get();
            // Exactly the three in flight were written; nothing more was claimed after the stop.
            assertEquals(3, stats.claimed());
            assertEquals(3, stats.completed());
            assertEquals(0, stats.outstanding());
            HealthCounts counts = client.healthCounts();
            assertEquals(3L, counts.steps().get("complete"));
            assertEquals(9L, counts.steps().get("pending"));
        }
    }

    @Test
    void overrunLeaseLeavesTheClaimToExpireAndTheReaperRetriesIt() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Task task = oneStepTask(client, "crash", "w.crash");
            Worker worker = new Worker(client, WorkerOptions.builder().lease(Duration.ofSeconds(10)).build());
            worker.handle("w.crash", ctx -> {
                if (ctx.attempt() == 1) throw new TestHelpers.OverrunLease();
                return Map.of("ok", true);
            });
            RunReport first = worker.runUntilIdle(RunOptions.defaults().maxClaims(1L));
            assertEquals(1, first.overrun());
            client.advanceClock(Duration.ofSeconds(11));
            assertEquals(1, client.reapExpiredLeases(10).retried());
            worker.runUntilIdle();
            assertEquals("complete", client.task(task.id()).state());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"linear", "diamond", "parallel", "tree", "mixed"})
    void everyFactoryPatternRunsUntilIdleWithJavaHandlersAndScriptedOnes(String pattern) {
        try (TaskerClient client = Stores.manual("memory:")) {
            PatternTasks made = switch (pattern) {
                case "linear" -> TestHelpers.linear(client, 4, 2);
                case "diamond" -> TestHelpers.diamond(client, 2);
                case "parallel" -> TestHelpers.parallel(client, 3, 2);
                case "tree" -> TestHelpers.tree(client, 2, 2, 2);
                default -> TestHelpers.mixed(client, 2);
            };
            assertEquals(2, made.tasks().size());
            Worker worker = new Worker(client);
            worker.handle("testkit.noop", ctx -> Map.of("step", ctx.stepName()));
            RunReport report = TestHelpers.runUntilIdle(worker);
            long steps = made.tasks().get(0).stepsTotal();
            assertEquals(steps * 2, report.completed());
            for (Task t : made.tasks()) assertEquals("complete", client.task(t.id()).state());

            PatternTasks more = TestHelpers.createPatternTasks(client, pattern, Map.of(), 1, Map.of("k", 1));
            assertEquals(Map.of("k", 1L), more.tasks().get(0).context());
            RunReport scripted = TestHelpers.runScripted(client, Map.of(), RunOptions.defaults());
            assertEquals(more.tasks().get(0).stepsTotal(), scripted.completed());
            assertEquals("complete", client.task(more.tasks().get(0).id()).state());
        }
    }

    @Test
    void patternTemplateAndACustomHandlerKey() {
        Map<String, Object> doc = TestHelpers.patternTemplate("linear", Map.of("n", 2L, "handler_key", "shop.{step}"));
        assertEquals("linear_2", doc.get("name"));
        try (TaskerClient client = Stores.manual("memory:")) {
            Registration reg = TestHelpers.registerPattern(client, "linear", Map.of("n", 2L, "handler_key", "shop.{step}"));
            assertTrue(reg.template().steps().stream().allMatch(s -> s.handlerKey().startsWith("shop.")));
        }
        ValidationException e = assertThrows(ValidationException.class,
                () -> TestHelpers.patternTemplate("linear", Map.of("bogus", 1L)));
        assertTrue(e.getMessage().contains("spec"), e.getMessage());
    }

    @Test
    void theScriptedOutcomesFollowTheScript() {
        Map<String, Object> script = Map.of("a", List.of(Map.of("fail_retryable", Map.of("message", "x")), "overrun_lease"));
        assertEquals("x", ((Map<?, ?>) ((Map<?, ?>) TestHelpers.scriptOutcome(script, "a", "k", 1)).get("fail_retryable"))
                .get("message"));
        assertEquals("overrun_lease", TestHelpers.scriptOutcome(script, "a", "k", 2));
        assertEquals(Map.of("succeed", Map.of("ok", true, "step", "b")), TestHelpers.scriptOutcome(script, "b", "k", 1));
        assertTrue(TestHelpers.jsonContains(Map.of("a", 1L, "b", 2L), Map.of("a", 1L)));
        assertFalse(TestHelpers.jsonContains(List.of(1L, 2L), List.of(1L)));
    }

    @Test
    void runUntilIdleOnTheSystemClockFailsWithTaskerTimeoutExceptionPastItsTimeout() {
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            oneStepTask(client, "later", "w.later");
            Worker worker = new Worker(client);
            worker.handle("w.later", ctx -> {
                throw new RetryableException("later", Duration.ofSeconds(30));
            });
            TaskerTimeoutException e = assertThrows(TaskerTimeoutException.class,
                    () -> worker.runUntilIdle(RunOptions.defaults().timeout(Duration.ofMillis(300))));
            assertEquals("timeout", e.code());
        }
    }

    @Test
    void aWorkerOnAClosedClientThrowsClosedException() {
        TaskerClient client = TaskerClient.connect("memory:");
        client.registerTemplate(Stores.oneStep("x", "w.x"));
        Worker worker = new Worker(client, WorkerOptions.builder().shutdownHook(false).build());
        worker.handle("w.x", ctx -> null);
        client.close();
        assertThrows(ClosedException.class, worker::run);
        assertThrows(IllegalArgumentException.class, () -> WorkerOptions.builder().concurrency(0));
    }

    @Test
    void sessionCallsForTestsClaimCompleteFailForgetAndStats() {
        try (TaskerClient client = Stores.manual("memory:")) {
            TestHelpers.linear(client, 1, 3);
            WorkerSession session = client.workerSession(WorkerOptions.builder().workerId("me").build(),
                    List.of("testkit.noop"));
            assertEquals("me", session.workerId());
            List<StepContext> got = session.claim(3, Duration.ZERO);
            assertEquals(3, got.size());
            assertEquals(3, session.outstanding().size());
            Step done = session.complete(got.get(0).token(), Map.of("ok", true));
            assertEquals("complete", done.state());
            Step failed = session.fail(got.get(1).token(), Failure.retryable("again").retryAfter(Duration.ofSeconds(3)));
            assertEquals("waiting_for_retry", failed.state());
            assertEquals(client.now().plusSeconds(3), session.nextRetryAt());
            StaleClaimException stale = assertThrows(StaleClaimException.class,
                    () -> session.complete(got.get(0).token(), Map.of()));
            assertEquals("stale_claim", stale.code());
            List<Object> answers = session.finishMany(List.of(
                    WorkerSession.Outcome.success(got.get(0).token(), Map.of("again", true)),
                    WorkerSession.Outcome.failure(got.get(2).token(), Failure.permanent("no").code("nope"))));
            assertTrue(answers.get(0) instanceof StaleClaimException, String.valueOf(answers.get(0)));
            assertEquals(List.of("error", "nope"),
                    List.of(((Step) answers.get(1)).state(), ((Step) answers.get(1)).error().code()));
            session.forget(got.get(2).token());
            session.report(got.get(2).token(), Map.of("late", true));
            session.flush();
            SessionStats stats = session.stats();
            assertEquals(3, stats.claimed());
            session.shutdown();
            assertTrue(session.isShutdown());
            assertNull(session.nextBatch(1, Duration.ofMillis(10)).isEmpty() ? null : "claimed after shutdown");
        }
    }

    @Test
    void theGuidesTestingExampleCompletesTheDiamondsAfterOneRetryWithNoSleeping() {
        try (TaskerClient client = TaskerClient.connect("memory:", ClientOptions.builder().manualClock().build())) {
            PatternTasks made = TestHelpers.diamond(client, 3);
            Worker worker = new Worker(client);
            AtomicInteger calls = new AtomicInteger();
            worker.handle("testkit.noop", ctx -> {
                if (ctx.stepName().equals("end") && calls.incrementAndGet() == 1) {
                    throw new RetryableException("busy", Duration.ofSeconds(30));
                }
                return Map.of("ok", true);
            });
            RunReport report = worker.runUntilIdle();
            assertEquals(1, report.calls().stream().filter(c -> c.outcome().equals("fail_retryable")).count());
            assertTrue(report.advancedMs() >= 30_000);
            for (Task t : made.tasks()) assertEquals("complete", client.task(t.id()).state());
        }
    }

    @Test
    void theAnalyticsSeeTheFinishedWork() {
        try (TaskerClient client = Stores.manual("memory:")) {
            Instant since = client.now();
            PatternTasks made = TestHelpers.diamond(client, 2);
            client.advanceClock(Duration.ofSeconds(1));
            TestHelpers.runScripted(client, Map.of(), RunOptions.defaults());
            AnalyticsMetrics m = client.analyticsMetrics(since);
            assertEquals(2, m.tasksCompleted());
            assertEquals(8, m.stepsCompleted());
            assertEquals(1.0, m.taskCompletionRate());
            assertEquals(2, m.taskDuration().count());
            List<SlowStep> slow = client.slowestSteps(AnalyticsFilter.lastDay().allTime(), 3);
            assertEquals(3, slow.size());
            assertEquals("complete", slow.get(0).state());
            List<SlowTask> tasks = client.slowestTasks(AnalyticsFilter.lastDay().since(since).namespace("testkit"), 5);
            assertEquals(2, tasks.size());
            String id = made.tasks().get(0).id();
            ExecutionContext ctx = client.executionContext(id);
            assertEquals(List.of("all_complete", "none", 1.0),
                    List.of(ctx.executionStatus(), ctx.recommendedAction(), ctx.completionRatio()));
            assertEquals(4, client.dependencyLevels(id).size());
            assertEquals(8L, client.healthCounts().steps().get("complete"));
        }
    }

    @Test
    void aHandlerPastTimeoutSecondsFailsWithTimeoutAndItsLateOutcomeIsRejected() throws Exception {
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            client.registerTemplate(Map.of(
                    "namespace", "w", "name", "slow", "version", "1.0.0",
                    "defaults", Map.of("retry", Map.of("max_attempts", 2L, "backoff", "none")),
                    "steps", List.of(Map.of("name", "work", "handler", "w.slow", "timeout_seconds", 1L))));
            Task task = client.createTask("w", "slow");
            Worker worker = new Worker(client, WorkerOptions.builder().concurrency(2).shutdownHook(false)
                    .claimWait(Duration.ofMillis(50)).build());
            worker.handle("w.slow", ctx -> {
                Thread.sleep(1500);
                return Map.of("late", true);
            });
            java.util.concurrent.atomic.AtomicReference<SessionStats> ran = new java.util.concurrent.atomic.AtomicReference<>();
            Thread runner = new Thread(() -> ran.set(worker.run()));
            runner.start();
            until(() -> client.task(task.id()).state().equals("error"), "the task to fail");
            worker.stop();
            runner.join(20_000);
            Step step = client.steps(task.id()).get(0);
            assertEquals(List.of("error", 2L), List.of(step.state(), step.attempts()));
            assertEquals(List.of("TimeoutError", "timeout", true),
                    List.of(step.error().errorClass(), step.error().code(), step.error().retryable()));
            // Both handlers finished after their deadline: their outcomes came too late and were rejected.
            SessionStats stats = ran.get();
            assertEquals(List.of(2L, 2L, 2L), List.of(stats.timedOut(), stats.late(), stats.rejected()));
        }
    }
}
