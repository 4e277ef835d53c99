package io.tasker.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** JNI safety and the error mapping: every kind's class, nulls, use after close, panics, wrong JSON, threads. */
class SafetyTest {
    @Test
    @SuppressWarnings("unchecked")
    void everyKindThrowsItsClassUnderTaskerException() throws Exception {
        List<List<String>> kinds = (List<List<String>>) Native.errorKinds();
        assertEquals(12, kinds.size());
        for (List<String> kind : kinds) {
            String code = kind.get(0);
            Class<?> cls = Class.forName("io.tasker.core." + kind.get(1));
            TaskerException e = assertThrows(TaskerException.class, () -> Native.raise(code));
            assertEquals(cls, e.getClass(), code);
            assertEquals(code, e.code());
            assertEquals(1L, e.details().get("k"));
            assertEquals("it went wrong", e.getMessage());
        }
        assertEquals("TaskerTimeoutException", kinds.stream().filter(k -> k.get(0).equals("timeout")).findFirst()
                .orElseThrow().get(1));
    }

    @Test
    void aRustPanicIsAnInternalExceptionNeverACrash() {
        InternalException e = assertThrows(InternalException.class, Native::panic);
        assertEquals("internal", e.code());
        assertEquals("a test asked for a panic", e.details().get("panic"));
        // The library is still usable afterwards.
        try (TaskerClient client = TaskerClient.connect("memory:")) {
            assertEquals("memory", client.health().storeKind());
        }
    }

    private static void npe(String parameter, Executable call) {
        NullPointerException e = assertThrows(NullPointerException.class, call);
        assertEquals(parameter + " must not be null", e.getMessage());
    }

    @Test
    void aNullArgumentIsANullPointerExceptionNamingTheParameter() {
        npe("url", () -> TaskerClient.connect(null));
        try (TaskerClient client = Stores.manual("memory:")) {
            client.registerTemplate(Stores.DIAMOND);
            npe("taskId", () -> client.task(null));
            npe("taskId", () -> client.steps(null));
            npe("stepId", () -> client.step(null));
            npe("namespace", () -> client.createTask(null, "order"));
            npe("name", () -> client.createTask("shop", null));
            npe("definition", () -> client.registerTemplate((String) null));
            npe("taskId", () -> client.executionContext(null));
            WorkerSession session = client.workerSession(WorkerOptions.defaults(), List.of("shop.validate"));
            npe("token.stepId", () -> session.report(new ClaimToken(null, 1), Map.of()));
            npe("handlerKey", () -> session.reportMissing(new ClaimToken("x", 1), null));
        }
    }

    @Test
    void useAfterCloseIsAClosedException() throws Exception {
        TaskerClient client = TaskerClient.connect("memory:");
        client.registerTemplate(Stores.DIAMOND);
        Subscription sub = client.subscribe();
        Task task = client.createTask("shop", "order");
        client.close();
        client.close(); // idempotent
        assertTrue(client.isClosed());
        assertThrows(ClosedException.class, () -> client.task(task.id()));
        assertThrows(ClosedException.class, () -> client.createTask("shop", "order"));
        assertThrows(ClosedException.class, client::healthCounts);
        // After close a subscription returns what it had buffered, then nothing; iteration ends.
        List<String> names = new ArrayList<>();
        for (Event e : sub) names.add(e.name());
        assertTrue(names.contains("task.created"), names.toString());
        sub.close();
        ClosedException closed = assertThrows(ClosedException.class, () -> sub.next(Duration.ZERO));
        assertTrue(closed.getMessage().contains("subscription"), closed.getMessage());
        assertThrows(ClosedException.class, sub::dropped);
    }

    private static void invalid(String message, Executable call) {
        ValidationException e = assertThrows(ValidationException.class, call);
        assertTrue(e.getMessage().contains(message), e.getMessage());
    }

    @Test
    void aValueJsonCannotHoldIsAValidationExceptionWithTheFieldPathAndNothingIsWritten() {
        try (TaskerClient client = Stores.manual("memory:")) {
            client.registerTemplate(Stores.DIAMOND);
            invalid("context.at: expected a JSON value, found Instant",
                    () -> client.createTask("shop", "order", CreateTask.withContext(Map.of("at", Instant.EPOCH))));
            invalid("context.items[1]: expected a JSON value, found BigDecimal", () -> client.createTask("shop",
                    "order", CreateTask.withContext(Map.of("items", List.of(1, BigDecimal.ONE)))));
            invalid("context.tags: expected a JSON value, found", () -> client.createTask("shop", "order",
                    CreateTask.withContext(Map.of("tags", Set.of("a")))));
            invalid("context.x: expected a JSON value, found NaN",
                    () -> client.createTask("shop", "order", CreateTask.withContext(Map.of("x", Double.NaN))));
            Map<Object, Object> intKeys = new HashMap<>();
            intKeys.put(1, "one");
            invalid("context.m: expected String keys, found Integer",
                    () -> client.createTask("shop", "order", CreateTask.withContext(Map.of("m", intKeys))));
            invalid("context", () -> client.createTask("shop", "order",
                    CreateTask.builder().contextValue(List.of(1)).build()));
            TaskFilter wrong = TaskFilter.all();
            wrong.map.put("limit", "ten");
            invalid("filter.limit", () -> client.tasks(wrong));
            invalid("definition", () -> client.registerTemplate(Map.of("namespace", Instant.EPOCH)));
            assertEquals(0, client.tasks(TaskFilter.all()).size());
            // Wrong types in a handler's failure are refused before anything is queued.
            WorkerSession session = client.workerSession(WorkerOptions.defaults(), List.of("shop.validate"));
            ClaimToken token = new ClaimToken("01900000-0000-7000-8000-000000000000", 1);
            Failure odd = Failure.retryable("x");
            odd.map.put("kind", "sometimes");
            invalid("failure.kind", () -> session.reportFailure(token, odd));
            assertEquals(0, session.stats().outstanding());
        }
    }

    @Test
    void manyThreadsShareOneClient() throws Exception {
        try (TaskerClient client = TaskerClient.connect("sqlite::memory:")) {
            client.registerTemplate(Stores.DIAMOND);
            ExecutorService pool = Executors.newFixedThreadPool(16);
            try {
                List<Future<String>> made = new ArrayList<>();
                for (int i = 0; i < 200; i++) {
                    int n = i;
                    made.add(pool.submit(() -> {
                        Task t = client.createTask("shop", "order", CreateTask.withContext(Map.of("n", n)));
                        assertEquals(4, client.steps(t.id()).size());
                        assertEquals((long) n, ((Map<?, ?>) client.task(t.id()).context()).get("n"));
                        return t.id();
                    }));
                }
                Set<String> ids = ConcurrentHashMap.newKeySet();
                for (Future<String> f : made) ids.add(f.get(60, TimeUnit.SECONDS));
                assertEquals(200, ids.size());
            } finally {
                pool.shutdownNow();
            }
            assertEquals(200, client.healthCounts().totalTasks());
        }
    }

    @Test
    void eventsASubscriptionIsIterableWithTimeoutsAndFilters() throws Exception {
        try (TaskerClient client = Stores.manual("memory:")) {
            client.registerTemplate(Stores.DIAMOND);
            try (Subscription all = client.subscribe();
                    Subscription steps = client.subscribe(EventFilter.all().names("step.completed"))) {
                assertNull(all.next(Duration.ofMillis(20)));
                assertNull(all.tryNext());
                Task task = client.createTask("shop", "order");
                Event first = all.next(Duration.ofSeconds(5));
                assertEquals(task.id(), first.taskId());
                assertTrue(first.timestamp() instanceof Instant);
                Worker worker = new Worker(client);
                for (String key : List.of("shop.validate", "shop.charge", "shop.reserve", "shop.ship")) {
                    worker.handle(key, ctx -> Map.of());
                }
                worker.runUntilIdle();
                List<Event> rest = all.drain();
                assertEquals("task.completed", rest.get(rest.size() - 1).name());
                List<String> done = new ArrayList<>();
                for (Event e : steps) {
                    done.add(e.stepName() + "#" + e.attempt());
                    if (done.size() == 4) break;
                }
                assertEquals(List.of("validate#1", "charge#1", "reserve#1", "ship#1"), done);
                assertEquals(0, all.dropped());
                try (Subscription mine = client.subscribe(EventFilter.all().taskId(task.id()))) {
                    client.cancelTask(client.createTask("shop", "order").id());
                    assertNull(mine.next(Duration.ofMillis(50)));
                }
            }
        }
        try (TaskerClient small = TaskerClient.connect("memory:", ClientOptions.builder().eventCapacity(2).build());
                Subscription sub = small.subscribe()) {
            small.registerTemplate(Stores.DIAMOND);
            small.createTask("shop", "order");
            List<Event> kept = sub.drain();
            assertEquals(2, kept.size());
            assertTrue(sub.dropped() > 0, "dropped " + sub.dropped());
        }
    }
}
