// `Engine`: the real Tasker Core engine on its memory store, in this JS realm. Every method that touches the
// store returns a Promise; the objects it returns are plain objects with camelCased fields, `Date` timestamps
// and string ids, exactly as in @tasker/core (whose `Client` has the same methods). The rules (validation,
// readiness, retries, backoff, the idle rule) are the engine's, the same code that runs on PostgreSQL.
import native from './native.js'
import { expect, unknown } from './errors.js'
import { Subscription } from './events.js'
import { Worker } from './worker.js'

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const id = (what, v) => expect(typeof v === 'string', what, 'a string id', v)
const opts = (what, v) => expect(v === undefined || isObject(v), what, 'an options object', v)

export class Engine {
  #native

  /** @internal Use `Engine.memory`. */
  constructor(handle) {
    expect(handle instanceof native.Client, 'Engine', 'a handle from Engine.memory', handle)
    this.#native = handle
  }

  /**
   * A fresh engine on the memory store. Options: `clock` ("system" | "manual": time moves only with
   * `advanceClock(ms)`, or to each due retry in `runUntilIdle`), `manualClockStart` (Date), `eventCapacity`
   * (4096, per subscription).
   */
  static memory(options = {}) {
    return Engine.open('memory:', options)
  }

  /** @internal The engine on the store `url` names; a wasm build has only `memory:`. */
  static async open(url, options = {}) {
    opts('options', options)
    const { clock, manualClockStart, eventCapacity, ...rest } = options
    unknown('options', rest)
    const start = iso(manualClockStart)
    return new Engine(await native.Client.open(url, { clock, manual_clock_start: start, event_capacity: eventCapacity }))
  }

  /** @internal The native handle, for the worker and the test kit. */
  get native() {
    return this.#native
  }

  /** Closes the engine; idempotent. Later calls reject with `ClosedError`. */
  close() {
    return this.#native.close()
  }

  get closed() {
    return this.#native.isClosed()
  }

  health() {
    return this.#native.health()
  }

  /** The engine's time (the manual clock's, when it has one). */
  now() {
    return this.#native.now()
  }

  /** Moves a manual clock forward; a `ConfigurationError` on the system clock. */
  advanceClock(ms) {
    expect(Number.isInteger(ms), 'ms', 'an integer', ms)
    return this.#native.advanceClockMs(ms)
  }

  /** Events from now on: `{ taskId, names }` filter them (`names: ['step']` matches every `step.*`). */
  subscribe({ taskId, names, ...rest } = {}) {
    unknown('filter', rest)
    return new Subscription(this.#native.subscribe({ task_id: taskId, names }))
  }

  /**
   * A worker session for `handlerKeys` (the protocol `Worker` drives; docs/bindings.md §6). Durations in
   * milliseconds; `heartbeatIntervalMs` null means lease / 3 and 0 never.
   */
  workerSession(handlerKeys, o = {}) {
    return this.#native.workerSession({
      handler_keys: handlerKeys,
      worker_id: o.workerId,
      lease_ms: o.leaseMs,
      heartbeat_interval_ms: o.heartbeatIntervalMs,
      poll_interval_ms: o.pollIntervalMs,
      maintenance_interval_ms: o.maintenanceIntervalMs,
      enforce_deadlines: o.enforceDeadlines,
    })
  }

  /** Validates and registers a template: YAML or JSON text, or an object. Resolves to a `Registration`. */
  registerTemplate(definition) {
    return this.#native.registerTemplate(definition)
  }

  /**
   * Checks a template (text or object) exactly as `registerTemplate` would, without registering it: every
   * problem as `{ path, message, code }` (an empty list when it is valid). A cycle is one problem at `steps`
   * with `code: "cycle_detected"` and `cycle`, the step names around it.
   */
  validateTemplate(definition) {
    return validateTemplate(definition)
  }

  /** A registered template (the newest version unless `version`). */
  template(namespace, name, version) {
    return this.#native.template(namespace, name, version ?? null)
  }

  templates() {
    return this.#native.templates()
  }

  /** A registered template drawn as text: `"mermaid"` (a flowchart) or `"dot"` (Graphviz). */
  renderTemplate(namespace, name, format = 'mermaid', { version } = {}) {
    return this.#native.renderTemplate(namespace, name, format, version ?? null)
  }

  /** The delays of a retry policy; see `backoffPreview`. */
  backoffPreview(retryPolicy, attempts) {
    return backoffPreview(retryPolicy, attempts)
  }

  /**
   * Creates a task. Options: `context`, `idempotencyKey`, `tags`, `initiator`, `sourceSystem`, `reason`,
   * `version`, `priority` (-1000..=1000, higher is claimed first), and `runAt` (a Date) or `delayMs` to start
   * it later.
   */
  createTask(namespace, name, options = {}) {
    opts('options', options)
    const { context, idempotencyKey, tags, initiator, sourceSystem, reason, version, priority, runAt, delayMs, ...rest } =
      options
    unknown('options', rest)
    return this.#native.createTask(namespace, name, {
      context,
      idempotency_key: idempotencyKey,
      tags,
      initiator,
      source_system: sourceSystem,
      reason,
      version,
      priority,
      run_at: iso(runAt),
      delay_seconds: typeof delayMs === 'number' ? delayMs / 1000 : delayMs,
    })
  }

  /** Starts a task created to start later now; one already started is returned as it is. */
  runTaskNow(taskId) {
    id('taskId', taskId)
    return this.#native.runTaskNow(taskId)
  }

  task(taskId) {
    id('taskId', taskId)
    return this.#native.task(taskId)
  }

  /** Tasks, newest first: `{ namespace, name, state, limit, before }`. */
  tasks({ namespace, name, state, limit, before, ...rest } = {}) {
    unknown('filter', rest)
    return this.#native.tasks({ namespace, name, state, limit, before })
  }

  steps(taskId) {
    id('taskId', taskId)
    return this.#native.steps(taskId)
  }

  step(stepId) {
    id('stepId', stepId)
    return this.#native.step(stepId)
  }

  /** Why each step of a task is or is not ready: an `Explain`. */
  explain(taskId) {
    id('taskId', taskId)
    return this.#native.explain(taskId)
  }

  /** The audit trail of a task. */
  transitions(taskId) {
    id('taskId', taskId)
    return this.#native.transitions(taskId)
  }

  cancelTask(taskId, { reason } = {}) {
    id('taskId', taskId)
    return this.#native.cancelTask(taskId, reason ?? null)
  }

  retryTask(taskId) {
    id('taskId', taskId)
    return this.#native.retryTask(taskId)
  }

  /** Marks a step resolved by an operator, with `result` as its result. */
  resolveStep(stepId, result = null) {
    id('stepId', stepId)
    return this.#native.resolveStep(stepId, result)
  }

  resolveTask(taskId, { reason } = {}) {
    id('taskId', taskId)
    return this.#native.resolveTask(taskId, reason ?? null)
  }

  reapExpiredLeases(limit = 1000) {
    return this.#native.reapExpiredLeases(limit)
  }

  /**
   * Registers (or replaces) the cron schedule `name`: a task of `namespace`/`template` at each occurrence of
   * `cron` (5 or 6 fields, or `@daily` and the like); an unchanged definition again is left as it is. Options:
   * `context`, `timezone` (IANA, "UTC"), `priority` (-1000..=1000), `version` (the newest at each fire) and
   * `misfire` ("skip" or "run_once"). The memory engine fires schedules on `fireSchedules()` and in a
   * worker's maintenance pass.
   */
  registerSchedule(name, namespace, template, cron, options = {}) {
    id('name', name)
    id('namespace', namespace)
    id('template', template)
    expect(typeof cron === 'string', 'cron', 'a cron expression string', cron)
    opts('options', options)
    const { context, timezone, priority, version, misfire, ...rest } = options
    unknown('options', rest)
    return this.#native.registerSchedule(name, namespace, template, cron, { context, timezone, priority, version, misfire })
  }

  /** Stops the schedule from firing until it is resumed; a paused schedule has no `nextFireAt`. */
  pauseSchedule(name) {
    id('name', name)
    return this.#native.pauseSchedule(name)
  }

  /** Lets a paused schedule fire again, from its next occurrence after now. */
  resumeSchedule(name) {
    id('name', name)
    return this.#native.resumeSchedule(name)
  }

  /** Removes the schedule and resolves to it as it was; the tasks it created stay. */
  removeSchedule(name) {
    id('name', name)
    return this.#native.removeSchedule(name)
  }

  schedules() {
    return this.#native.schedules()
  }

  schedule(name) {
    id('name', name)
    return this.#native.schedule(name)
  }

  /** Creates the tasks of the schedules that fell due: a `ScheduleReport`. */
  fireSchedules() {
    return this.#native.fireSchedules()
  }

  executionContext(taskId) {
    id('taskId', taskId)
    return this.#native.executionContext(taskId)
  }

  /** The steps of a task by dependency level (roots are level 0). */
  dependencyLevels(taskId) {
    id('taskId', taskId)
    return this.#native.dependencyLevels(taskId)
  }

  healthCounts() {
    return this.#native.healthCounts()
  }

  analyticsMetrics(since) {
    return this.#native.analyticsMetrics(since)
  }

  slowestSteps({ limit = 10, since, namespace, name, version } = {}) {
    return this.#native.slowestSteps({ since: iso(since), namespace, name, version }, limit)
  }

  slowestTasks({ limit = 10, since, namespace, name, version } = {}) {
    return this.#native.slowestTasks({ since: iso(since), namespace, name, version }, limit)
  }

  /**
   * Runs JS handlers until nothing is left to do: `{ "billing.fetch": async (ctx) => result, … }` (sync or
   * async functions). Options: `concurrency` (handlers at once, 1), `batchSize`, `maxClaims`, `timeoutMs`,
   * `autoAdvanceClock` (a manual clock jumps to each due retry, true), `leaseMs`. Resolves to the `RunReport`.
   */
  async runUntilIdle(handlers, { concurrency = 1, leaseMs, ...options } = {}) {
    expect(isObject(handlers), 'handlers', 'an object of handler key → function', handlers)
    const worker = new Worker(this, { concurrency, leaseMs, maintenanceIntervalMs: 0, workerId: 'run-until-idle' })
    for (const [key, fn] of Object.entries(handlers)) worker.handle(key, fn)
    try {
      return await worker.runUntilIdle(options)
    } finally {
      worker.stop()
    }
  }

  get [Symbol.toStringTag]() {
    return 'Engine'
  }
}

// An invalid Date has no ISO form; its text ("Invalid Date") gets the engine's validation error instead.
const iso = (t) => (t instanceof Date ? (Number.isNaN(t.getTime()) ? String(t) : t.toISOString()) : t)

/** See `Engine#validateTemplate`; needs no engine. */
export function validateTemplate(definition) {
  try {
    native.validateTemplate(definition)
    return []
  } catch (e) {
    if (e?.code === 'validation') return e.details.errors.map((f) => ({ path: f.path, message: f.message, code: e.code }))
    if (e?.code === 'cycle_detected') return [{ path: 'steps', message: e.message, code: e.code, cycle: e.details.path }]
    throw e
  }
}

/** A template (text or object) drawn as `"mermaid"` or `"dot"` text before it is registered; throws the
 * `ValidationError` or `CycleDetectedError` registering it would. Needs no engine. */
export function renderDefinition(definition, format = 'mermaid') {
  return native.renderDefinition(definition, format)
}

/**
 * The delays a retry policy (a template's `retry` block: `maxAttempts`/`max_attempts`, `backoff`, `baseMs`,
 * `maxMs`, `jitter`, `retryable`) gives, for up to `attempts` retries: `[{ attempt, delayMs, minMs, maxMs }]`,
 * the delay at the middle of its jitter range and the range's ends. Needs no engine.
 */
export function backoffPreview(retryPolicy = {}, attempts = 10) {
  expect(isObject(retryPolicy), 'retryPolicy', 'an object', retryPolicy)
  const snake = Object.fromEntries(Object.entries(retryPolicy).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]))
  return native
    .backoffPreview(snake, attempts)
    .map((r) => ({ attempt: r.attempt, delayMs: r.delay_ms, minMs: r.min_ms, maxMs: r.max_ms }))
}
