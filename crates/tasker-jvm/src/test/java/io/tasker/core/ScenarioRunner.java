package io.tasker.core;

import static io.tasker.core.Stores.show;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Supplier;

/**
 * The JUnit replay of tests/scenarios/*.yaml (docs/bindings.md §9), with real Java handlers that follow each
 * file's script through {@link Worker}. It mirrors tasker_shared_ffi::scenario, the Rust reference runner, as
 * the RSpec, pytest and node:test runners do: the same replay rules, the same checks, and a failure lists every
 * difference with the observed state.
 */
final class ScenarioRunner {
    /** An unexpected error that ends the replay, as in the reference runner. */
    static final class Stop extends RuntimeException {
        Stop(String message) {
            super(message);
        }
    }

    static final class ScenarioFailed extends AssertionError {
        ScenarioFailed(String message) {
            super(message);
        }
    }

    private static final Object MISSING = new Object();

    private record Claim(String taskId, String stepName, long attempt, Map<String, Object> dependencyResults) {}

    private final Map<String, Object> s;
    private final String url;
    private final Map<String, Object> handlers;
    private TaskerClient client;
    private Subscription sub;
    private Worker worker;
    private final List<Event> events = new ArrayList<>();
    private final Map<String, Task> tasks = new TreeMap<>();
    private final Map<String, StepContext> saved = new LinkedHashMap<>();
    private final List<Claim> claims = new ArrayList<>();
    private final List<String> problems = new ArrayList<>();

    @SuppressWarnings("unchecked")
    private ScenarioRunner(Map<String, Object> scenario, String url) {
        this.s = scenario;
        this.url = url;
        Object h = scenario.get("handlers");
        this.handlers = h == null ? Map.of() : (Map<String, Object>) h;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> map(Object o) {
        return o == null ? Map.of() : (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) {
        return o == null ? List.of() : (List<Object>) o;
    }

    private static String str(Object o) {
        return o == null ? null : o.toString();
    }

    /** Equality of a scenario value and an observed one: integers by value whatever their box. */
    private static boolean same(Object want, Object found) {
        if (want instanceof Number a && found instanceof Number b
                && !(a instanceof Double) && !(b instanceof Double)) {
            return a.longValue() == b.longValue();
        }
        return Objects.equals(want, found);
    }

    // -- the host handler that follows the script -------------------------------------------------------

    private Object handle(StepContext ctx) {
        Object outcome = TestHelpers.scriptOutcome(handlers, ctx.stepName(), ctx.handlerKey(), ctx.attempt());
        if ("overrun_lease".equals(outcome)) throw new TestHelpers.OverrunLease();
        Map.Entry<String, Object> only = map(outcome).entrySet().iterator().next();
        if (only.getKey().equals("succeed")) return only.getValue();
        Map<String, Object> f = map(only.getValue());
        String message = f.get("message") == null || str(f.get("message")).isEmpty()
                ? "scripted failure" : str(f.get("message"));
        switch (only.getKey()) {
            case "fail_retryable": {
                Object ms = f.get("retry_after_ms");
                Duration after = ms == null ? null : Duration.ofMillis(((Number) ms).longValue());
                String cls = str(f.get("error_class"));
                throw new RetryableException(message, after) {
                    @Override
                    public String errorClass() {
                        return cls;
                    }
                };
            }
            default: {
                String cls = str(f.get("error_class"));
                throw new PermanentException(message, str(f.get("code"))) {
                    @Override
                    public String errorClass() {
                        return cls;
                    }
                };
            }
        }
    }

    // -- replay -----------------------------------------------------------------------------------------

    private static String mismatch(TaskerException e, Object wantObj) {
        Map<String, Object> want = wantObj instanceof String k ? Map.of("kind", k) : map(wantObj);
        if (!e.code().equals(want.get("kind"))) {
            return "expected error " + want.get("kind") + ", found " + e.code() + " (" + e.getMessage() + ")";
        }
        Object contains = want.get("message_contains");
        if (contains != null && !e.getMessage().contains(str(contains))) {
            return "expected the message to contain " + show(contains) + ", found " + show(e.getMessage());
        }
        Object details = want.get("details");
        if (details != null && !TestHelpers.jsonContains(e.details(), details)) {
            return "expected details to include " + show(details) + ", found " + show(e.details());
        }
        return null;
    }

    private Object expectOutcome(String at, Supplier<Object> fn, Object want) {
        Object value;
        try {
            value = fn.get();
        } catch (TaskerException e) {
            if (want == null) throw new Stop(at + ": unexpected error (" + e.code() + "): " + e.getMessage());
            String problem = mismatch(e, want);
            if (problem != null) problems.add(at + ": " + problem);
            return MISSING;
        }
        if (want != null) {
            Object kind = want instanceof String k ? k : map(want).get("kind");
            problems.add(at + ": expected error " + kind + ", but the call succeeded");
            return MISSING;
        }
        return value;
    }

    private void replay() {
        List<Object> templates = list(s.get("templates"));
        for (int i = 0; i < templates.size(); i++) register("templates[" + i + "]", map(templates.get(i)));
        Set<String> keys = new TreeSet<>();
        for (TemplateInfo t : client.templates()) for (TemplateStep st : t.steps()) keys.add(st.handlerKey());
        if (!keys.isEmpty()) {
            Object lease = s.get("lease_ms");
            worker = new Worker(client, WorkerOptions.builder()
                    .concurrency(1)
                    .workerId("scenario")
                    .lease(Duration.ofMillis(lease == null ? 30000 : ((Number) lease).longValue()))
                    // Leases move only with the scenario's clock and its `reap` actions.
                    .heartbeatInterval(Duration.ZERO)
                    .maintenanceInterval(Duration.ZERO)
                    .enforceDeadlines(false)
                    .shutdownHook(false)
                    .build());
            for (String key : keys) worker.handle(key, this::handle);
        }
        List<Object> taskList = list(s.get("tasks"));
        for (int i = 0; i < taskList.size(); i++) create("tasks[" + i + "]", map(taskList.get(i)));
        List<Object> script = s.containsKey("script") ? list(s.get("script")) : List.of("run");
        for (int i = 0; i < script.size(); i++) {
            Object action = script.get(i);
            String name;
            Object arg;
            if (action instanceof String a) {
                name = a;
                arg = null;
            } else {
                Map.Entry<String, Object> e = map(action).entrySet().iterator().next();
                name = e.getKey();
                arg = e.getValue();
            }
            String at = "script[" + i + "] " + name;
            try {
                if (name.equals("advance_ms")) {
                    client.advanceClock(Duration.ofMillis(((Number) arg).longValue()));
                    continue;
                }
                act(at, name, arg instanceof Map ? map(arg) : Map.of());
            } catch (TaskerException e) {
                throw new Stop(at + ": " + e.getMessage());
            }
        }
        collectEvents();
        Map<String, Object> expect = map(s.get("expect"));
        if (expect.get("templates") != null) {
            List<String> found = new ArrayList<>();
            for (TemplateInfo t : client.templates()) found.add(t.namespace() + "/" + t.name() + "@" + t.version());
            if (!found.equals(expect.get("templates"))) {
                problems.add("expect.templates: expected " + show(expect.get("templates")) + ", found " + show(found));
            }
        }
        Map<String, Object> expectTasks = new TreeMap<>(map(expect.get("tasks")));
        for (Map.Entry<String, Object> e : expectTasks.entrySet()) {
            checkTask("expect.tasks." + e.getKey(), e.getKey(), map(e.getValue()));
        }
        for (String alias : tasks.keySet()) checkTrail(alias);
        if (sub.dropped() > 0) problems.add("the event subscription dropped " + sub.dropped() + " events");
    }

    @SuppressWarnings("unchecked")
    private void register(String at, Map<String, Object> t) {
        Supplier<Object> fn;
        if (t.containsKey("definition")) {
            fn = () -> client.registerTemplate((Map<String, Object>) t.get("definition"));
        } else if (t.containsKey("text")) {
            fn = () -> client.registerTemplate(str(t.get("text")));
        } else {
            Map<String, Object> spec = new LinkedHashMap<>(map(t.get("pattern")));
            String pattern = str(spec.remove("pattern"));
            fn = () -> TestHelpers.registerPattern(client, pattern, spec);
        }
        Object reg = expectOutcome(at, fn, t.get("expect_error"));
        Object wantCreated = t.get("expect_created");
        if (reg != MISSING && wantCreated != null && !wantCreated.equals(((Registration) reg).created())) {
            problems.add(at + ".created: expected " + wantCreated + ", found " + ((Registration) reg).created());
        }
    }

    @SuppressWarnings("unchecked")
    private void create(String at, Map<String, Object> t) {
        CreateTask.Builder b = CreateTask.builder().initiator("scenario").reason(str(s.get("name")));
        if (t.get("version") != null) b.version(str(t.get("version")));
        if (t.get("context") != null) b.contextValue(t.get("context"));
        if (t.get("idempotency_key") != null) b.idempotencyKey(str(t.get("idempotency_key")));
        if (t.get("tags") != null) b.tags((Map<String, String>) t.get("tags"));
        if (t.get("priority") != null) b.priority(((Number) t.get("priority")).longValue());
        if (t.get("delay_ms") != null) b.delay(Duration.ofMillis(((Number) t.get("delay_ms")).longValue()));
        Object task = expectOutcome(at,
                () -> client.createTask(str(t.get("namespace")), str(t.get("name")), b.build()), t.get("expect_error"));
        if (task == MISSING) return;
        Task created = (Task) task;
        Object sameAs = t.get("same_as");
        if (sameAs != null) {
            if (!tasks.containsKey(str(sameAs))) throw new Stop(at + ".same_as: no task has alias " + show(sameAs));
            String first = tasks.get(str(sameAs)).id();
            if (!first.equals(created.id())) {
                problems.add(at + ": expected the task of " + show(sameAs) + " (" + first + "), found a new task "
                        + created.id());
            }
        }
        if (t.get("alias") != null) tasks.put(str(t.get("alias")), created);
    }

    private String taskId(String at, Object alias) {
        if (!tasks.containsKey(str(alias))) throw new Stop(at + ": no task has alias " + show(alias));
        return tasks.get(str(alias)).id();
    }

    private WorkerSession session(String at) {
        if (worker == null) throw new Stop(at + ": no template is registered, so nothing can be claimed");
        return worker.session();
    }

    private void act(String at, String name, Map<String, Object> a) {
        switch (name) {
            case "run" -> {
                if (worker == null) return;
                Object max = a.get("max_claims");
                RunReport report = worker.runUntilIdle(RunOptions.defaults().batchSize(1)
                        .maxClaims(max == null ? null : ((Number) max).longValue()).autoAdvanceClock(false));
                for (HandlerCall call : report.calls()) {
                    if (call.rejected() != null) {
                        problems.add(at + ": the outcome of " + call.stepName() + "#" + call.attempt()
                                + " was rejected (" + call.rejected() + ")");
                    }
                    claims.add(new Claim(call.taskId(), call.stepName(), call.attempt(), call.dependencyResults()));
                }
            }
            default -> actMore(at, name, a);
        }
    }

    private void actMore(String at, String name, Map<String, Object> a) {
        switch (name) {
            case "reap" -> {
                ReapReport r = client.reapExpiredLeases(1000);
                Object er = a.get("expect_retried");
                Object ef = a.get("expect_failed");
                if ((er != null && !same(er, r.retried())) || (ef != null && !same(ef, r.failed()))) {
                    problems.add(at + ": expected retried " + er + " and failed " + ef + ", found " + r.retried()
                            + " and " + r.failed());
                }
            }
            case "create_task" -> create(at, a);
            case "cancel" -> {
                String id = taskId(at, a.get("task"));
                expectOutcome(at, () -> client.cancelTask(id, str(a.get("reason"))), a.get("expect_error"));
            }
            case "run_now" -> {
                String id = taskId(at, a.get("task"));
                expectOutcome(at, () -> client.runTaskNow(id), a.get("expect_error"));
            }
            case "retry" -> {
                String id = taskId(at, a.get("task"));
                expectOutcome(at, () -> client.retryTask(id), a.get("expect_error"));
            }
            case "resolve_task" -> {
                String id = taskId(at, a.get("task"));
                expectOutcome(at, () -> client.resolveTask(id, str(a.get("reason"))), a.get("expect_error"));
            }
            case "resolve_step" -> {
                String id = taskId(at, a.get("task"));
                Step step = client.steps(id).stream().filter(x -> x.name().equals(a.get("step"))).findFirst()
                        .orElseThrow(() -> new Stop(at + ": task " + show(a.get("task")) + " has no step "
                                + show(a.get("step"))));
                expectOutcome(at, () -> client.resolveStep(step.id(), a.get("result")), a.get("expect_error"));
            }
            case "claim" -> {
                List<StepContext> got = session(at).claim(1, Duration.ZERO);
                if (Boolean.TRUE.equals(a.get("expect_none"))) {
                    if (!got.isEmpty()) {
                        problems.add(at + ": expected nothing claimable, claimed " + got.get(0).stepName() + "#"
                                + got.get(0).attempt());
                    }
                    return;
                }
                if (got.isEmpty()) throw new Stop(at + ": expected a claimable step, found none");
                StepContext ctx = got.get(0);
                if (a.get("expect_step") != null && !a.get("expect_step").equals(ctx.stepName())) {
                    problems.add(at + ": expected to claim " + show(a.get("expect_step")) + ", claimed "
                            + show(ctx.stepName()));
                }
                if (a.get("expect_attempt") != null && !same(a.get("expect_attempt"), ctx.attempt())) {
                    problems.add(at + ": expected attempt " + a.get("expect_attempt") + ", claimed attempt "
                            + ctx.attempt());
                }
                claims.add(new Claim(ctx.taskId(), ctx.stepName(), ctx.attempt(), ctx.dependencyResults()));
                if (a.get("as") != null) saved.put(str(a.get("as")), ctx);
            }
            case "complete" -> {
                StepContext ctx = savedClaim(at, a.get("claim"));
                Object result = a.containsKey("result") ? a.get("result") : Map.of("ok", true, "step", ctx.stepName());
                WorkerSession session = session(at);
                expectOutcome(at, () -> session.complete(ctx.token(), result), a.get("expect_error"));
            }
            case "fail" -> {
                StepContext ctx = savedClaim(at, a.get("claim"));
                WorkerSession session = session(at);
                String message = a.get("message") == null || str(a.get("message")).isEmpty()
                        ? "scripted failure" : str(a.get("message"));
                Failure f = "permanent".equals(a.get("kind")) ? Failure.permanent(message) : Failure.retryable(message);
                if (a.get("error_class") != null) f.errorClass(str(a.get("error_class")));
                if (a.get("retry_after_ms") != null) {
                    f.retryAfter(Duration.ofMillis(((Number) a.get("retry_after_ms")).longValue()));
                }
                if (a.get("code") != null) f.code(str(a.get("code")));
                expectOutcome(at, () -> session.fail(ctx.token(), f), a.get("expect_error"));
            }
            case "check" -> {
                collectEvents();
                for (Map.Entry<String, Object> e : new TreeMap<>(a).entrySet()) {
                    checkTask(at + "." + e.getKey(), e.getKey(), map(e.getValue()));
                }
            }
            default -> actOnSchedules(at, name, a);
        }
    }

    /** The schedule actions of rule 5. */
    private void actOnSchedules(String at, String name, Map<String, Object> a) {
        switch (name) {
            case "register_schedule" -> {
                ScheduleOptions.Builder b = ScheduleOptions.builder();
                if (a.get("context") != null) b.contextValue(a.get("context"));
                if (a.get("timezone") != null) b.timezone(str(a.get("timezone")));
                if (a.get("version") != null) b.version(str(a.get("version")));
                if (a.get("priority") != null) b.priority(((Number) a.get("priority")).longValue());
                if (a.get("misfire") != null) {
                    b.misfire(ScheduleOptions.Misfire.valueOf(str(a.get("misfire")).toUpperCase()));
                }
                Object got = expectOutcome(at, () -> client.registerSchedule(str(a.get("name")),
                        str(a.get("namespace")), str(a.get("template")), str(a.get("cron")), b.build()),
                        a.get("expect_error"));
                if (got != MISSING) checkSchedule(at, (Schedule) got, a.get("expect"));
            }
            case "pause_schedule", "resume_schedule", "remove_schedule" -> {
                String schedule = str(a.get("schedule"));
                Supplier<Object> call = switch (name) {
                    case "pause_schedule" -> () -> client.pauseSchedule(schedule);
                    case "resume_schedule" -> () -> client.resumeSchedule(schedule);
                    default -> () -> client.removeSchedule(schedule);
                };
                Object got = expectOutcome(at, call, a.get("expect_error"));
                if (got != MISSING) checkSchedule(at, (Schedule) got, a.get("expect"));
            }
            case "fire_schedules" -> {
                ScheduleReport r = client.fireSchedules();
                for (var c : List.of(Map.entry("fired", r.fired()), Map.entry("missed", r.missed()),
                        Map.entry("failed", r.failed()))) {
                    Object want = a.get("expect_" + c.getKey());
                    if (want != null && !same(want, c.getValue())) {
                        problems.add(at + ": expected " + c.getKey() + " " + want + ", found " + c.getValue());
                    }
                }
                for (Map.Entry<String, Object> e : new TreeMap<>(map(a.get("tasks"))).entrySet()) {
                    String taskId = client.schedule(str(e.getValue())).lastTaskId();
                    String where = at + ".tasks." + e.getKey();
                    if (taskId == null) throw new Stop(where + ": schedule " + show(e.getValue()) + " has created no task");
                    if (tasks.values().stream().anyMatch(t -> t.id().equals(taskId))) {
                        throw new Stop(where + ": the last task of schedule " + show(e.getValue())
                                + " is not new to this pass");
                    }
                    tasks.put(e.getKey(), client.task(taskId));
                }
            }
            case "check_schedules" -> {
                for (Map.Entry<String, Object> e : new TreeMap<>(a).entrySet()) {
                    checkSchedule(at + "." + e.getKey(), client.schedule(e.getKey()), e.getValue());
                }
            }
            default -> throw new Stop(at + ": unknown action " + show(name));
        }
    }

    private void checkSchedule(String at, Schedule found, Object expectation) {
        Map<String, Object> w = map(expectation);
        for (var c : List.of(Map.entry("paused", (Object) found.paused()), Map.entry("fired", found.fired()),
                Map.entry("missed", found.missed()))) {
            Object want = w.get(c.getKey());
            if (want != null && !same(want, c.getValue())) {
                problems.add(at + "." + c.getKey() + ": expected " + want + ", found " + c.getValue());
            }
        }
        for (var c : List.of(Map.entry("next_fire_at", Optional.ofNullable(found.nextFireAt())),
                Map.entry("last_fire_at", Optional.ofNullable(found.lastFireAt())))) {
            if (!w.containsKey(c.getKey())) continue;
            Object want = w.get(c.getKey());
            Optional<Instant> expected = want == null ? Optional.empty() : Optional.of(Instant.parse(str(want)));
            if (!expected.equals(c.getValue())) {
                problems.add(at + "." + c.getKey() + ": expected " + expected.map(Instant::toString).orElse("none")
                        + ", found " + c.getValue().map(Instant::toString).orElse("none"));
            }
        }
    }

    private StepContext savedClaim(String at, Object name) {
        if (!saved.containsKey(str(name))) throw new Stop(at + ": no claim was kept as " + show(name));
        return saved.get(str(name));
    }

    private void collectEvents() {
        events.addAll(sub.drain());
    }

    /** An event as scenario files write it (rule 6): {@code task.completed}, {@code step.claimed b#2}. */
    private static String eventLine(Event e) {
        if (e.stepName() == null) return e.name();
        long attempt = e.attempt() == null ? 0 : e.attempt();
        return attempt > 0 ? e.name() + " " + e.stepName() + "#" + attempt : e.name() + " " + e.stepName();
    }

    private List<String> eventLines(String taskId) {
        List<String> out = new ArrayList<>();
        for (Event e : events) if (e.taskId().equals(taskId)) out.add(eventLine(e));
        return out;
    }

    // -- checks -----------------------------------------------------------------------------------------

    private void checkTask(String at, String alias, Map<String, Object> want) {
        if (!tasks.containsKey(alias)) {
            problems.add(at + ": no task has alias " + show(alias));
            return;
        }
        String id = tasks.get(alias).id();
        Task task = client.task(id);
        ExecutionContext ctx = client.executionContext(id);
        Map<String, Object> found = Map.of("state", task.state(), "execution_status", ctx.executionStatus(),
                "recommended_action", ctx.recommendedAction());
        for (String key : List.of("state", "execution_status", "recommended_action")) {
            if (want.containsKey(key) && !Objects.equals(want.get(key), found.get(key))) {
                problems.add(at + "." + key + ": expected " + want.get(key) + ", found " + found.get(key));
            }
        }
        Object stepsWant = want.get("steps");
        Object allSteps = want.get("all_steps");
        if (stepsWant != null || allSteps != null) {
            Explain explain = client.explain(id);
            List<Step> steps = client.steps(id);
            Set<String> names = new LinkedHashSet<>();
            for (Step st : steps) names.add(st.name());
            for (String n : new TreeSet<>(map(stepsWant).keySet())) {
                if (!names.contains(n)) problems.add(at + ".steps." + n + ": the task has no such step");
            }
            for (Step st : steps) {
                Object w = map(stepsWant).get(st.name());
                if (w == null) {
                    if (allSteps == null) {
                        if (stepsWant != null) {
                            problems.add(at + ".steps: step " + st.name() + " is not listed (list it or add all_steps)");
                        }
                        continue;
                    }
                    w = allSteps;
                }
                StepReadiness r = explain.steps().stream().filter(x -> x.stepId().equals(st.id())).findFirst()
                        .orElse(null);
                checkStep(at + ".steps." + st.name(), id, st, r, map(w));
            }
        }
        if (want.containsKey("events")) {
            collectEvents();
            List<String> lines = eventLines(id);
            if (!lines.equals(want.get("events"))) {
                problems.add(at + ".events: " + sequenceDiff(list(want.get("events")), lines));
            }
        }
    }

    private void checkStep(String at, String taskId, Step st, StepReadiness r, Map<String, Object> w) {
        if (w.containsKey("state") && !Objects.equals(w.get("state"), st.state())) {
            problems.add(at + ".state: expected " + w.get("state") + ", found " + st.state());
        }
        if (w.containsKey("attempts") && !same(w.get("attempts"), st.attempts())) {
            problems.add(at + ".attempts: expected " + w.get("attempts") + ", found " + st.attempts());
        }
        if (w.containsKey("result") && !Objects.equals(w.get("result"), st.result())) {
            problems.add(at + ".result: expected " + show(w.get("result")) + ", found " + show(st.result()));
        }
        if (w.containsKey("error")) {
            Object we = w.get("error");
            StepError e = st.error();
            if (we == null) {
                if (e != null) problems.add(at + ".error: expected none, found " + e.errorClass() + ": " + e.message());
            } else if (e == null) {
                problems.add(at + ".error: expected " + show(we) + ", found none");
            } else {
                Map<String, Object> wm = map(we);
                Map<String, Object> em = new LinkedHashMap<>();
                em.put("error_class", e.errorClass());
                em.put("code", e.code());
                em.put("retryable", e.retryable());
                for (String key : List.of("error_class", "code", "retryable")) {
                    if (wm.containsKey(key) && !Objects.equals(wm.get(key), em.get(key))) {
                        problems.add(at + ".error." + key + ": expected " + show(wm.get(key)) + ", found "
                                + show(em.get(key)));
                    }
                }
                Object contains = wm.get("message_contains");
                if (contains != null && !e.message().contains(str(contains))) {
                    problems.add(at + ".error.message: expected it to contain " + show(contains) + ", found "
                            + show(e.message()));
                }
            }
        }
        if (w.containsKey("ready") && (r == null || !Objects.equals(w.get("ready"), r.ready()))) {
            problems.add(at + ".ready: expected " + w.get("ready") + ", found " + (r == null ? null : r.ready()));
        }
        if (w.containsKey("blocked_by_failure")
                && (r == null || !Objects.equals(w.get("blocked_by_failure"), r.blockedByFailure()))) {
            problems.add(at + ".blocked_by_failure: expected " + show(w.get("blocked_by_failure")) + ", found "
                    + show(r == null ? null : r.blockedByFailure()));
        }
        if (w.containsKey("claims")) {
            List<Claim> found = new ArrayList<>();
            for (Claim c : claims) if (c.taskId().equals(taskId) && c.stepName().equals(st.name())) found.add(c);
            List<Long> attempts = new ArrayList<>();
            for (Claim c : found) attempts.add(c.attempt());
            List<Long> wanted = new ArrayList<>();
            for (Object c : list(w.get("claims"))) wanted.add(((Number) map(c).get("attempt")).longValue());
            if (!attempts.equals(wanted)) {
                problems.add(at + ".claims: expected attempts " + show(wanted) + ", found " + show(attempts));
            } else {
                List<Object> wc = list(w.get("claims"));
                for (int i = 0; i < wc.size(); i++) {
                    Object deps = map(wc.get(i)).get("dependency_results");
                    if (deps != null && !Objects.equals(deps, found.get(i).dependencyResults())) {
                        problems.add(at + ".claims[attempt " + wanted.get(i) + "].dependency_results: expected "
                                + show(deps) + ", found " + show(found.get(i).dependencyResults()));
                    }
                }
            }
        }
    }

    /**
     * Every event of the task must match its transition rows one for one: events follow commits. Rows and
     * events are compared by (from_state, to_state[, attempt]), which needs no copy of the engine's naming.
     */
    private void checkTrail(String alias) {
        String id = taskId("trail", alias);
        Transitions trail = client.transitions(id);
        List<List<Object>> taskRows = new ArrayList<>();
        for (TaskTransition r : trail.task()) taskRows.add(java.util.Arrays.asList(r.fromState(), r.toState()));
        List<List<Object>> taskEvents = new ArrayList<>();
        for (Event e : events) {
            if (e.taskId().equals(id) && e.stepId() == null) {
                taskEvents.add(java.util.Arrays.asList(e.fromState(), e.toState()));
            }
        }
        if (!taskRows.equals(taskEvents)) {
            problems.add("tasks." + alias + ": task events " + show(taskEvents)
                    + " do not match the task's transition rows " + show(taskRows));
        }
        Set<String> stepIds = new LinkedHashSet<>();
        for (StepTransition r : trail.steps()) stepIds.add(r.stepId());
        for (String sid : stepIds) {
            List<List<Object>> rows = new ArrayList<>();
            for (StepTransition r : trail.steps()) {
                if (r.stepId().equals(sid)) rows.add(java.util.Arrays.asList(r.fromState(), r.toState(), r.attempt()));
            }
            List<List<Object>> evs = new ArrayList<>();
            for (Event e : events) {
                if (sid.equals(e.stepId())) {
                    evs.add(java.util.Arrays.asList(e.fromState(), e.toState(), e.attempt() == null ? 0L : e.attempt()));
                }
            }
            if (!rows.equals(evs)) {
                problems.add("tasks." + alias + ": events of step " + sid + " " + show(evs)
                        + " do not match its transition rows " + show(rows));
            }
        }
    }

    private Map<String, Object> observeAll() {
        collectEvents();
        Map<String, Object> out = new TreeMap<>();
        for (Map.Entry<String, Task> e : tasks.entrySet()) {
            String id = e.getValue().id();
            try {
                Map<String, Object> steps = new LinkedHashMap<>();
                for (Step st : client.steps(id)) {
                    Map<String, Object> m = new LinkedHashMap<>();
                    m.put("state", st.state());
                    m.put("attempts", st.attempts());
                    m.put("result", st.result());
                    m.put("error", st.error() == null ? null : st.error().errorClass() + ": " + st.error().message());
                    steps.put(st.name(), m);
                }
                out.put(e.getKey(), Map.of("state", client.task(id).state(), "steps", steps, "events", eventLines(id)));
            } catch (TaskerException ex) {
                out.put(e.getKey(), Map.of("unavailable", ex.getMessage()));
            }
        }
        return out;
    }

    private static String sequenceDiff(List<Object> want, List<String> found) {
        int first = 0;
        while (first < want.size() && first < found.size() && Objects.equals(want.get(first), found.get(first))) {
            first++;
        }
        return "sequences differ from position " + first + " (expected " + want.size() + " events, found "
                + found.size() + "); expected from there: " + show(want.subList(first, want.size()))
                + "; found from there: " + show(found.subList(first, found.size()));
    }

    /** Replays {@code scenario} on a fresh store at {@code url}; throws ScenarioFailed listing every difference. */
    static Map<String, Object> run(Map<String, Object> scenario, String url) {
        ScenarioRunner r = new ScenarioRunner(scenario, url);
        Object clock = scenario.get("clock");
        r.client = TaskerClient.connect(url, ClientOptions.builder().clock(clock == null ? "manual" : str(clock))
                .eventCapacity(1 << 16).build());
        Map<String, Object> observed;
        try {
            r.sub = r.client.subscribe();
            try {
                r.replay();
            } catch (Stop e) {
                r.problems.add(e.getMessage());
            }
            observed = r.observeAll();
        } finally {
            if (r.worker != null) r.worker.stop();
            r.client.close();
        }
        if (!r.problems.isEmpty()) {
            StringBuilder b = new StringBuilder("scenario " + scenario.get("name") + " failed on " + url + ":\n");
            for (String p : r.problems) b.append("  - ").append(p).append('\n');
            b.append("observed:\n").append(show(observed));
            throw new ScenarioFailed(b.toString());
        }
        return observed;
    }
}
