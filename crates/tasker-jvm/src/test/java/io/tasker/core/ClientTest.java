package io.tasker.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The client on every store: templates, tasks, operator actions, analytics, records and async variants. */
class ClientTest {
    private static final Instant START = Instant.parse("2030-01-01T00:00:00Z");

    @ParameterizedTest(name = "on {0}")
    @MethodSource("io.tasker.core.Stores#all")
    void clientCalls(String label, Supplier<String> fresh) throws Exception {
        try (TaskerClient client = Stores.manual(fresh.get())) {
            Registration reg = client.registerTemplate(Stores.DIAMOND);
            assertTrue(reg.created());
            assertEquals(List.of("validate", "charge", "reserve", "ship"),
                    reg.template().steps().stream().map(TemplateStep::name).toList());
            assertEquals(List.of("charge", "reserve"), reg.template().steps().get(3).dependsOn());
            assertFalse(client.registerTemplate(Stores.DIAMOND).created());
            String yaml = "namespace: y\nname: one\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: y.a\n";
            assertEquals("y", client.registerTemplate(yaml).template().namespace());
            assertEquals("1.0.0", client.template("shop", "order").version());
            assertEquals(List.of("shop/order", "y/one"),
                    client.templates().stream().map(t -> t.namespace() + "/" + t.name()).toList());

            Task task = client.createTask("shop", "order", CreateTask.builder()
                    .context(Map.of("order_id", 7, "items", List.of(Map.of("sku", "a"))))
                    .idempotencyKey("order-7")
                    .tags(Map.of("team", "shop"))
                    .build());
            assertTrue(task.id().matches("[0-9a-f-]{36}"));
            assertEquals("pending", task.state());
            assertEquals(Map.of("order_id", 7L, "items", List.of(Map.of("sku", "a"))), task.context());
            assertEquals(Map.of("team", "shop"), task.tags());
            assertEquals("order-7", task.idempotencyKey());
            assertNull(task.initiator());
            assertEquals(START, task.createdAt());
            assertNull(task.startedAt());
            assertEquals(4, task.stepsTotal());
            Task same = client.createTask("shop", "order",
                    CreateTask.builder().context(Map.of("order_id", 7)).idempotencyKey("order-7").build());
            assertEquals(task.id(), same.id());
            assertEquals(task, client.task(task.id()));
            assertEquals(task.id(), client.taskAsync(task.id()).get(10, TimeUnit.SECONDS).id());

            assertEquals(List.of(task.id()),
                    client.tasks(TaskFilter.all().namespace("shop")).stream().map(Task::id).toList());
            assertEquals(List.of(), client.tasks(TaskFilter.all().state("complete")));
            List<Step> steps = client.steps(task.id());
            assertEquals(List.of("validate", "charge", "reserve", "ship"), steps.stream().map(Step::name).toList());
            assertEquals(3, steps.get(0).retry().maxAttempts());
            assertNull(steps.get(0).error());
            assertEquals(steps.get(0), client.step(steps.get(0).id()));
            Explain explain = client.explain(task.id());
            assertEquals(List.of(true, false, false, false),
                    explain.steps().stream().map(StepReadiness::ready).toList());
            assertEquals(List.of("charge", "reserve"), explain.steps().get(3).blockedBy());
            Transitions trail = client.transitions(task.id());
            assertEquals("pending", trail.task().get(0).toState());
            assertEquals(4, trail.steps().size());

            // Analytics.
            assertEquals("has_ready_steps", client.executionContext(task.id()).executionStatus());
            assertEquals(List.of(0L, 1L, 1L, 2L),
                    client.dependencyLevels(task.id()).stream().map(DependencyLevel::level).toList());
            HealthCounts counts = client.healthCounts();
            assertEquals(1, counts.totalTasks());
            assertEquals(1L, counts.tasks().get("pending"));
            AnalyticsMetrics metrics = client.analyticsMetrics(START.minus(Duration.ofDays(1)));
            assertEquals(START.minus(Duration.ofDays(1)), metrics.since());
            assertEquals(0, metrics.tasksCompleted());
            assertEquals(List.of(), client.slowestSteps(AnalyticsFilter.lastDay(), 5));
            assertEquals(List.of(), client.slowestTasks(AnalyticsFilter.lastDay().namespace("shop"), 5));

            // Plain data of a record, with the table's names.
            Map<String, Object> plain = steps.get(0).toMap();
            assertEquals("validate", plain.get("name"));
            assertTrue(plain.get("retry") instanceof Map);
            assertTrue(steps.get(0).toString().startsWith("Step[id="));

            // Operator actions.
            Step resolved = client.resolveStep(steps.get(0).id(), Map.of("by_hand", true));
            assertEquals("resolved_manually", resolved.state());
            assertEquals(Map.of("by_hand", true), resolved.result());
            assertEquals("cancelled", client.cancelTask(task.id(), "customer asked").state());
            InvalidTransitionException again = assertThrows(InvalidTransitionException.class,
                    () -> client.cancelTask(task.id()));
            assertEquals("invalid_transition", again.code());
            InvalidTransitionException retry = assertThrows(InvalidTransitionException.class,
                    () -> client.retryTask(task.id()));
            assertEquals(List.of("task", "cancelled", "retry"),
                    List.of(retry.details().get("entity"), retry.details().get("from"), retry.details().get("event")));

            // The clock, health, reaping.
            assertEquals(START.plusSeconds(5), client.advanceClock(Duration.ofSeconds(5)));
            assertEquals(START.plusSeconds(5), client.now());
            ClientHealth health = client.health();
            assertEquals("manual", health.clock());
            assertEquals(ProcessHandle.current().pid(), health.pid());
            assertEquals(0, client.reapExpiredLeases(10).retried());

            // A healthy store is not rebuilt; refresh() rebuilds a rebuildable one and counts it.
            assertFalse(client.validateOrRefresh());
            if (!health.url().contains("memory")) {
                client.refresh();
                assertEquals(1, client.health().refreshes());
                assertEquals(task.id(), client.task(task.id()).id());
            }
        }
    }

    @Test
    void notFoundAndValidationCarryTheirDetails() {
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            String missing = "01900000-0000-7000-8000-000000000000";
            NotFoundException nf = assertThrows(NotFoundException.class, () -> client.task(missing));
            assertEquals("not_found", nf.code());
            assertEquals("task", nf.details().get("entity"));
            ValidationException v = assertThrows(ValidationException.class, () -> client.task("nope"));
            assertTrue(v.getMessage().contains("task_id"), v.getMessage());
            CycleDetectedException cycle = assertThrows(CycleDetectedException.class, () -> client.registerTemplate(
                    "namespace: c\nname: c\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: c.a\n    depends_on: [b]\n"
                            + "  - name: b\n    handler: c.b\n    depends_on: [a]\n"));
            assertTrue(cycle.details().get("path") instanceof List);
            ConfigurationException system = assertThrows(ConfigurationException.class,
                    () -> client.advanceClock(Duration.ofSeconds(1)));
            assertEquals("configuration", system.code());
        }
    }

    @Test
    void tasksStartAtAnInstantOrAfterADelayByPriorityAndRunNowStartsThemEarly() {
        try (TaskerClient client = TaskerClient.connect("memory:", ClientOptions.builder().manualClock().build())) {
            client.registerTemplate(Stores.DIAMOND);
            Instant start = START.plusSeconds(300);
            Task later = client.createTask("shop", "order",
                    CreateTask.builder().context(Map.of()).runAt(start).priority(7).build());
            assertEquals(List.of(7L, start, start), List.of((long) later.priority(), later.runAt(), later.heldUntil()));
            Explain ex = client.explain(later.id());
            assertEquals(start, ex.scheduledFor());
            assertFalse(ex.steps().get(0).ready());
            assertEquals(List.of("scheduled for 2030-01-01T00:05:00+00:00"), ex.steps().get(0).reasons());
            Task delayed = client.createTask("shop", "order",
                    CreateTask.builder().context(Map.of()).delay(Duration.ofSeconds(90)).build());
            assertEquals(START.plusSeconds(90), delayed.heldUntil());
            assertNull(client.runTaskNow(delayed.id()).heldUntil());
            assertTrue(client.explain(delayed.id()).steps().get(0).ready());
            for (var bad : List.of(
                    Map.entry(CreateTask.builder().priority(5000).build(), "priority"),
                    Map.entry(CreateTask.builder().runAt(start).delay(Duration.ofSeconds(1)).build(), "delay_seconds"),
                    Map.entry(CreateTask.builder().delay(Duration.ofSeconds(-1)).build(), "delay_seconds"))) {
                ValidationException v = assertThrows(ValidationException.class,
                        () -> client.createTask("shop", "order", bad.getKey()));
                var first = ((List<?>) v.details().get("errors")).get(0);
                assertEquals(bad.getValue(), ((Map<?, ?>) first).get("path"), v.getMessage());
            }
            assertEquals(2, client.tasks(TaskFilter.all()).size());
            client.cancelTask(later.id());
            assertThrows(InvalidTransitionException.class, () -> client.runTaskNow(later.id()));
        }
    }

    @ParameterizedTest(name = "on {0}")
    @MethodSource("io.tasker.core.Stores#all")
    void schedulesFireOneTaskPerOccurrenceAndAreManagedByName(String label, Supplier<String> fresh) throws Exception {
        try (TaskerClient client = Stores.manual(fresh.get())) {
            client.registerTemplate(Stores.DIAMOND);
            ScheduleOptions options = ScheduleOptions.builder().context(Map.of("order", 1)).priority(3)
                    .timezone(java.time.ZoneId.of("Europe/Berlin")).build();
            Schedule s = client.registerSchedule("orders", "shop", "order", "* * * * *", options);
            assertEquals(List.of("orders", "Europe/Berlin", "skip", 3L, false),
                    List.of(s.name(), s.timezone(), s.misfire(), s.priority(), s.paused()));
            assertEquals(START.plusSeconds(60), s.nextFireAt());
            assertEquals(0, s.fired());
            assertNull(s.lastTaskId());
            assertEquals(s, client.registerSchedule("orders", "shop", "order", "* * * * *", options),
                    "an unchanged definition is left as it is");
            assertEquals(0, client.fireSchedules().fired());

            client.advanceClock(Duration.ofSeconds(60));
            ScheduleReport report = client.fireSchedulesAsync().get(10, TimeUnit.SECONDS);
            assertEquals(List.of(1L, 0L, 0L), List.of(report.fired(), report.missed(), report.failed()));
            assertEquals(START.plusSeconds(120), report.nextFireAt());
            assertEquals(0, client.fireSchedules().fired(), "one task per occurrence");
            String taskId = client.schedule("orders").lastTaskId();
            Task task = client.task(taskId);
            assertEquals(List.of(3L, Map.of("order", 1L), "schedule:orders"),
                    List.of((long) task.priority(), task.context(), task.initiator()));
            Explain ex = client.explain(taskId);
            assertEquals("orders", ex.schedule());
            assertEquals(START.plusSeconds(120), ex.scheduleNextFireAt());

            Schedule paused = client.pauseSchedule("orders");
            assertTrue(paused.paused());
            assertNull(paused.nextFireAt());
            assertNull(client.explain(taskId).scheduleNextFireAt());
            client.advanceClock(Duration.ofSeconds(120));
            assertEquals(0, client.fireSchedules().fired());
            Schedule resumed = client.resumeSchedule("orders");
            assertFalse(resumed.paused());
            assertEquals(START.plusSeconds(240), resumed.nextFireAt());
            assertEquals(List.of(resumed), client.schedules());
            assertEquals(List.of(resumed), client.schedulesAsync().get(10, TimeUnit.SECONDS));

            assertEquals(1, client.removeSchedule("orders").fired());
            assertTrue(client.schedules().isEmpty());
            assertThrows(NotFoundException.class, () -> client.schedule("orders"));
            assertThrows(NotFoundException.class, () -> client.removeSchedule("orders"));
            assertNull(client.explain(taskId).schedule());
            assertEquals("pending", client.task(taskId).state(), "its tasks stay");
        }
    }

    @Test
    void badSchedulesAreValidationExceptionsNamingTheFieldAndWriteNothing() {
        try (TaskerClient client = TaskerClient.connect("memory:", ClientOptions.builder().manualClock().build())) {
            client.registerTemplate(Stores.DIAMOND);
            ScheduleOptions none = ScheduleOptions.builder().build();
            for (var bad : List.of(
                    Map.entry(Map.entry("61 * * * *", none), "cron"),
                    Map.entry(Map.entry("* * * * *", ScheduleOptions.builder().timezone("Mars/Olympus").build()),
                            "timezone"),
                    Map.entry(Map.entry("* * * * *", ScheduleOptions.builder().priority(5000).build()), "priority"),
                    Map.entry(Map.entry("* * * * *", ScheduleOptions.builder().contextValue(List.of(1)).build()),
                            "context"))) {
                ValidationException v = assertThrows(ValidationException.class, () -> client.registerSchedule(
                        "s", "shop", "order", bad.getKey().getKey(), bad.getKey().getValue()));
                var first = ((List<?>) v.details().get("errors")).get(0);
                assertEquals(bad.getValue(), ((Map<?, ?>) first).get("path"), v.getMessage());
            }
            assertThrows(NotFoundException.class,
                    () -> client.registerSchedule("s", "shop", "nope", "* * * * *", none));
            assertTrue(client.schedules().isEmpty(), "bad input writes nothing");
            assertThrows(NotFoundException.class, () -> client.pauseSchedule("s"));
            Schedule once = client.registerSchedule("s", "shop", "order", "@hourly",
                    ScheduleOptions.builder().misfire(ScheduleOptions.Misfire.RUN_ONCE).build());
            assertEquals("run_once", once.misfire());
        }
    }

    @Test
    void asyncVariantsCompleteOnTheClientsExecutor() throws Exception {
        try (TaskerClient client = TaskerClient.connectAsync("memory:", ClientOptions.builder().manualClock().build())
                .get(10, TimeUnit.SECONDS)) {
            client.registerTemplate(Stores.DIAMOND);
            Task t = client.createTaskAsync("shop", "order", CreateTask.withContext(Map.of())).get(10, TimeUnit.SECONDS);
            assertEquals(4, client.stepsAsync(t.id()).get(10, TimeUnit.SECONDS).size());
            assertEquals(1, client.tasksAsync(TaskFilter.all()).get(10, TimeUnit.SECONDS).size());
            assertEquals(1, client.healthCountsAsync().get(10, TimeUnit.SECONDS).totalTasks());
            assertEquals("cancelled", client.cancelTaskAsync(t.id(), null).get(10, TimeUnit.SECONDS).state());
            // A failure completes the future exceptionally with the typed exception as its cause.
            var failed = client.taskAsync("nope");
            var e = assertThrows(java.util.concurrent.ExecutionException.class, () -> failed.get(10, TimeUnit.SECONDS));
            assertTrue(e.getCause() instanceof ValidationException);
        }
    }

    @Test
    void aPasswordNeverAppearsInErrorsHealthOrToString() {
        String url = "postgres://tasker:s3cret-pw@127.0.0.1:1/nowhere";
        DatabaseException e = assertThrows(DatabaseException.class, () -> TaskerClient.connect(url));
        assertFalse(e.getMessage().contains("s3cret-pw"), e.getMessage());
        assertFalse(String.valueOf(e.details()).contains("s3cret-pw"));
        for (String cause : e.causes()) assertFalse(cause.contains("s3cret-pw"), cause);
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            assertFalse(client.toString().contains("memory"));
        }
    }
}
