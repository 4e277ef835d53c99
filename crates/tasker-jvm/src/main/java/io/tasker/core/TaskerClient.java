package io.tasker.core;

import java.lang.ref.Reference;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Supplier;

/**
 * A handle on one store: {@code memory:}, {@code sqlite::memory:}, {@code sqlite://path} or
 * {@code postgres://user:pw@host/db}. Thread-safe: share one client between threads. Every method blocks the
 * calling thread until the store answers; the {@code *Async} variants run the same call on the client's
 * executor. {@link #close()} (or try-with-resources) closes it; any later call throws {@link ClosedException}.
 *
 * <pre>{@code
 * try (TaskerClient client = TaskerClient.connect("sqlite://tasker.db")) {
 *     client.registerTemplate(yaml);
 *     Task task = client.createTask("shop", "order", CreateTask.withContext(Map.of("order_id", 42L)));
 * }
 * }</pre>
 */
public final class TaskerClient implements AutoCloseable {
    private static final AtomicInteger THREADS = new AtomicInteger();
    private static final ExecutorService DEFAULT_EXECUTOR = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "tasker-async-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        return t;
    });

    final long h;
    private final Executor executor;

    private TaskerClient(long h, Executor executor) {
        this.h = h;
        this.executor = executor == null ? DEFAULT_EXECUTOR : executor;
        Native.track(this, h);
    }

    /** Opens the store {@code url} with the default options (system clock, migrations run). */
    public static TaskerClient connect(String url) {
        return connect(url, ClientOptions.builder().build());
    }

    public static TaskerClient connect(String url, ClientOptions options) {
        return new TaskerClient(Native.open(url, options == null ? null : options.map),
                options == null ? null : options.executor);
    }

    public static CompletableFuture<TaskerClient> connectAsync(String url, ClientOptions options) {
        Executor executor = options == null || options.executor == null ? DEFAULT_EXECUTOR : options.executor;
        return CompletableFuture.supplyAsync(() -> connect(url, options), executor);
    }

    private <T> CompletableFuture<T> async(Supplier<T> call) {
        return CompletableFuture.supplyAsync(call, executor);
    }

    /** Closes the store's connections; idempotent. Subscriptions return what they buffered, then nothing. */
    @Override
    public void close() {
        Native.close(h);
        Reference.reachabilityFence(this);
    }

    public boolean isClosed() {
        return kept(Native.isClosed(h));
    }

    /** Checks the store with a round trip and, if that fails, reconnects; true when it reconnected. */
    public boolean validateOrRefresh() {
        return kept((Boolean) Native.validateOrRefresh(h));
    }

    /** Rebuilds the connection pool now (after a failover or a credential rotation). */
    public void refresh() {
        Native.refresh(h);
        Reference.reachabilityFence(this);
    }

    /** What the handle reports about itself; the URL's password is replaced by {@code ***}. */
    public ClientHealth health() {
        return kept((ClientHealth) Native.health(h));
    }

    /** The engine's clock. */
    public Instant now() {
        return kept((Instant) Native.now(h));
    }

    /** Moves a manual clock forward (tests); a {@link ConfigurationException} on the system clock. */
    public Instant advanceClock(Duration by) {
        return kept((Instant) Native.advanceClockMs(h, by.toMillis()));
    }

    /** Every event published from now on. */
    public Subscription subscribe() {
        return subscribe(EventFilter.all());
    }

    public Subscription subscribe(EventFilter filter) {
        return kept(new Subscription(this, Native.subscribe(h, filter == null ? null : filter.map)));
    }

    /** A worker session for these options' handler keys (what {@link Worker} drives). */
    public WorkerSession workerSession(WorkerOptions options, List<String> handlerKeys) {
        return kept(new WorkerSession(Native.workerSession(h, options.sessionMap(handlerKeys))));
    }

    // -- templates ---------------------------------------------------------------------------------------

    /** Registers a template given as YAML (or JSON) text. */
    public Registration registerTemplate(String yaml) {
        return kept((Registration) Native.registerTemplate(h, yaml));
    }

    /** Registers a template given as a map, as the YAML would parse. */
    public Registration registerTemplate(Map<String, ?> definition) {
        return kept((Registration) Native.registerTemplate(h, definition));
    }

    /** The newest version of a template. */
    public TemplateInfo template(String namespace, String name) {
        return template(namespace, name, null);
    }

    public TemplateInfo template(String namespace, String name, String version) {
        return kept((TemplateInfo) Native.template(h, namespace, name, version));
    }

    @SuppressWarnings("unchecked")
    public List<TemplateInfo> templates() {
        return kept((List<TemplateInfo>) Native.templates(h));
    }

    // -- tasks -------------------------------------------------------------------------------------------

    public Task createTask(String namespace, String name) {
        return createTask(namespace, name, CreateTask.builder().build());
    }

    public Task createTask(String namespace, String name, CreateTask options) {
        return kept((Task) Native.createTask(h, namespace, name, options == null ? null : options.map));
    }

    public CompletableFuture<Task> createTaskAsync(String namespace, String name, CreateTask options) {
        return async(() -> createTask(namespace, name, options));
    }

    public Task task(String taskId) {
        return kept((Task) Native.task(h, taskId));
    }

    public CompletableFuture<Task> taskAsync(String taskId) {
        return async(() -> task(taskId));
    }

    @SuppressWarnings("unchecked")
    public List<Task> tasks(TaskFilter filter) {
        return kept((List<Task>) Native.tasks(h, filter == null ? null : filter.map));
    }

    public CompletableFuture<List<Task>> tasksAsync(TaskFilter filter) {
        return async(() -> tasks(filter));
    }

    @SuppressWarnings("unchecked")
    public List<Step> steps(String taskId) {
        return kept((List<Step>) Native.steps(h, taskId));
    }

    public CompletableFuture<List<Step>> stepsAsync(String taskId) {
        return async(() -> steps(taskId));
    }

    public Step step(String stepId) {
        return kept((Step) Native.step(h, stepId));
    }

    /** Why each step of a task is or is not ready. */
    public Explain explain(String taskId) {
        return kept((Explain) Native.explain(h, taskId));
    }

    /** The audit trail of a task and its steps. */
    public Transitions transitions(String taskId) {
        return kept((Transitions) Native.transitions(h, taskId));
    }

    public Task cancelTask(String taskId) {
        return cancelTask(taskId, null);
    }

    public Task cancelTask(String taskId, String reason) {
        return kept((Task) Native.cancelTask(h, taskId, reason));
    }

    public CompletableFuture<Task> cancelTaskAsync(String taskId, String reason) {
        return async(() -> cancelTask(taskId, reason));
    }

    /** Gives failed steps of a task a fresh attempt budget. */
    /** Starts a task created to start later now; one already started is returned as it is. */
    public Task runTaskNow(String taskId) {
        return kept((Task) Native.runTaskNow(h, taskId));
    }

    public CompletableFuture<Task> runTaskNowAsync(String taskId) {
        return async(() -> runTaskNow(taskId));
    }

    public Task retryTask(String taskId) {
        return kept((Task) Native.retryTask(h, taskId));
    }

    public CompletableFuture<Task> retryTaskAsync(String taskId) {
        return async(() -> retryTask(taskId));
    }

    /** Marks a step resolved by an operator, with the result its dependents see. */
    public Step resolveStep(String stepId, Object result) {
        return kept((Step) Native.resolveStep(h, stepId, result));
    }

    public Task resolveTask(String taskId, String reason) {
        return kept((Task) Native.resolveTask(h, taskId, reason));
    }

    /** Recovers steps whose lease expired (crashed workers), at most {@code limit}. */
    public ReapReport reapExpiredLeases(int limit) {
        return kept((ReapReport) Native.reapExpiredLeases(h, limit));
    }

    // -- schedules ---------------------------------------------------------------------------------------

    /** A schedule with the default options (UTC, an empty context, the template's priority, misfire skip). */
    public Schedule registerSchedule(String name, String namespace, String template, String cron) {
        return registerSchedule(name, namespace, template, cron, ScheduleOptions.builder().build());
    }

    /**
     * Registers (or replaces) the schedule {@code name}: a task of {@code namespace}/{@code template} at each
     * occurrence of {@code cron} (5 or 6 fields, or {@code @daily} and the like). Registering an unchanged
     * definition again leaves the schedule as it is, so every process may register its schedules at start-up.
     */
    public Schedule registerSchedule(String name, String namespace, String template, String cron,
            ScheduleOptions options) {
        return kept((Schedule) Native.registerSchedule(h, name, namespace, template, cron,
                options == null ? null : options.map));
    }

    public CompletableFuture<Schedule> registerScheduleAsync(String name, String namespace, String template,
            String cron, ScheduleOptions options) {
        return async(() -> registerSchedule(name, namespace, template, cron, options));
    }

    /** Stops a schedule from firing until it is resumed; a paused schedule has no next fire time. */
    public Schedule pauseSchedule(String name) {
        return kept((Schedule) Native.pauseSchedule(h, name));
    }

    /** Lets a paused schedule fire again, from its next occurrence after now. */
    public Schedule resumeSchedule(String name) {
        return kept((Schedule) Native.resumeSchedule(h, name));
    }

    /** Removes a schedule and returns it as it was; the tasks it created stay. */
    public Schedule removeSchedule(String name) {
        return kept((Schedule) Native.removeSchedule(h, name));
    }

    public Schedule schedule(String name) {
        return kept((Schedule) Native.schedule(h, name));
    }

    /** Every registered schedule, by name. */
    @SuppressWarnings("unchecked")
    public List<Schedule> schedules() {
        return kept((List<Schedule>) Native.schedules(h));
    }

    public CompletableFuture<List<Schedule>> schedulesAsync() {
        return async(this::schedules);
    }

    /**
     * Creates the tasks of the schedules that fell due, one per occurrence however many processes call it.
     * Workers do this in their maintenance passes; call it yourself with a manual clock.
     */
    public ScheduleReport fireSchedules() {
        return kept((ScheduleReport) Native.fireSchedules(h));
    }

    public CompletableFuture<ScheduleReport> fireSchedulesAsync() {
        return async(this::fireSchedules);
    }

    // -- analytics ---------------------------------------------------------------------------------------

    public ExecutionContext executionContext(String taskId) {
        return kept((ExecutionContext) Native.executionContext(h, taskId));
    }

    @SuppressWarnings("unchecked")
    public List<DependencyLevel> dependencyLevels(String taskId) {
        return kept((List<DependencyLevel>) Native.dependencyLevels(h, taskId));
    }

    public HealthCounts healthCounts() {
        return kept((HealthCounts) Native.healthCounts(h));
    }

    public CompletableFuture<HealthCounts> healthCountsAsync() {
        return async(this::healthCounts);
    }

    public AnalyticsMetrics analyticsMetrics(Instant since) {
        return kept((AnalyticsMetrics) Native.analyticsMetrics(h, since.toEpochMilli()));
    }

    @SuppressWarnings("unchecked")
    public List<SlowStep> slowestSteps(AnalyticsFilter filter, int limit) {
        return kept((List<SlowStep>) Native.slowestSteps(h, filter == null ? null : filter.map, limit));
    }

    @SuppressWarnings("unchecked")
    public List<SlowTask> slowestTasks(AnalyticsFilter filter, int limit) {
        return kept((List<SlowTask>) Native.slowestTasks(h, filter == null ? null : filter.map, limit));
    }

    /** No URL: it may hold a password. {@link #health()} has the redacted one. */
    @Override
    public String toString() {
        return "TaskerClient[" + (isClosed() ? "closed" : "open") + "]";
    }

    /** {@code v}, with this object kept reachable until here, so its Cleaner cannot free the handle mid-call. */
    private <T> T kept(T v) {
        Reference.reachabilityFence(this);
        return v;
    }
}
