'use strict'
// `Client`: a handle on one store, over the native client. Every method that touches the store returns a
// Promise (the work runs on the engine's own threads); the objects it returns are plain objects with
// camelCased fields, `Date` timestamps and string ids. Options are camelCased here and handed to the addon as
// the engine's snake_case option maps.
const native = require('./native')
const { expect } = require('./errors')
const { Subscription } = require('./events')

// Node 20 has the symbol for `await using` (from 20.4); the fallback is the one Node registers.
const asyncDispose = Symbol.asyncDispose ?? Symbol.for('nodejs.asyncDispose')

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)
const id = (what, v) => expect(typeof v === 'string', what, 'a string id', v)
const opts = (what, v) => expect(v === undefined || isObject(v), what, 'an options object', v)
const str = (what, v) => expect(v === undefined || v === null || typeof v === 'string', what, 'a string', v)

class Client {
  #native

  /** @internal Use `Client.connect`. */
  constructor(handle) {
    expect(handle instanceof native.Client, 'Client', 'a handle from Client.connect', handle)
    this.#native = handle
  }

  /**
   * Opens `memory:`, `sqlite::memory:`, `sqlite://path` or `postgres://…`. Options: `clock` ("system" |
   * "manual"), `manualClockStart` (Date), `migrate` (true), `maxConnections` (8), `eventCapacity` (4096).
   */
  static async connect(url, options = {}) {
    expect(typeof url === 'string', 'url', 'a string', url)
    opts('options', options)
    const { clock, manualClockStart, migrate, maxConnections, eventCapacity, ...rest } = options
    unknown('options', rest)
    const handle = await native.Client.open(url, {
      clock,
      manual_clock_start: time(manualClockStart),
      migrate,
      max_connections: maxConnections,
      event_capacity: eventCapacity,
    })
    return new Client(handle)
  }

  /** @internal The native handle, for the worker and the test kit. */
  get native() {
    return this.#native
  }

  /** Closes the client for every holder of it; idempotent. Every later call rejects with `ClosedError`. */
  close() {
    return this.#native.close()
  }

  async [asyncDispose]() {
    await this.close()
  }

  get closed() {
    return this.#native.isClosed()
  }

  /** Checks the store with a round trip and rebuilds the pool if that fails; `true` when it rebuilt. */
  validateOrRefresh() {
    return this.#native.validateOrRefresh()
  }

  /** Rebuilds the pool now, even if it answers (after a failover or a credential rotation). */
  refresh() {
    return this.#native.refresh()
  }

  /** Store kind, pool size, idle connections, age, the URL with the password redacted; never waits. */
  health() {
    return this.#native.health()
  }

  /** The engine's clock (a manual clock under `clock: "manual"`). */
  now() {
    return this.#native.now()
  }

  /** Moves a manual clock forward by `ms` milliseconds; returns the new time. */
  advanceClock(ms) {
    expect(Number.isInteger(ms), 'ms', 'an integer number of milliseconds', ms)
    return this.#native.advanceClockMs(ms)
  }

  /** Events published from now on, as an async iterable; `names` match exactly or by prefix (`"step"`). */
  subscribe({ taskId, names } = {}) {
    return new Subscription(this.#native.subscribe({ task_id: taskId, names }), this)
  }

  /**
   * A worker session for `handlerKeys` (the protocol `Worker` drives). Durations in milliseconds;
   * `heartbeatIntervalMs` null means lease / 3 and 0 never.
   */
  workerSession(handlerKeys, options = {}) {
    opts('options', options)
    const { workerId, leaseMs, heartbeatIntervalMs, pollIntervalMs, maintenanceIntervalMs, enforceDeadlines, ...rest } =
      options
    unknown('options', rest)
    return this.#native.workerSession({
      worker_id: workerId,
      handler_keys: handlerKeys,
      lease_ms: leaseMs,
      heartbeat_interval_ms: heartbeatIntervalMs,
      poll_interval_ms: pollIntervalMs,
      maintenance_interval_ms: maintenanceIntervalMs,
      enforce_deadlines: enforceDeadlines,
    })
  }

  /** Registers a template given as YAML/JSON text or as an object; idempotent for identical content. */
  registerTemplate(definition) {
    return this.#native.registerTemplate(definition)
  }

  /** One template version; the newest when `version` is absent. */
  template(namespace, name, version) {
    id('namespace', namespace)
    id('name', name)
    str('version', version)
    return this.#native.template(namespace, name, version ?? null)
  }

  templates() {
    return this.#native.templates()
  }

  /**
   * Creates a task of the newest (or the given) version; a repeat with the same `idempotencyKey` returns the
   * existing task. Options: `context`, `version`, `idempotencyKey`, `tags`, `initiator`, `sourceSystem`,
   * `reason`, `priority` (-1000..=1000, higher is claimed first), and `runAt` (a Date) or `delayMs` to start
   * it later.
   */
  createTask(namespace, name, options = {}) {
    id('namespace', namespace)
    id('name', name)
    opts('options', options)
    const { context, version, idempotencyKey, tags, initiator, sourceSystem, reason, priority, runAt, delayMs, ...rest } =
      options
    unknown('options', rest)
    return this.#native.createTask(namespace, name, {
      context,
      version,
      idempotency_key: idempotencyKey,
      tags,
      initiator,
      source_system: sourceSystem,
      reason,
      priority,
      run_at: time(runAt),
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

  /** Tasks, newest first; filter: `namespace`, `name`, `state`, `limit`, `before` (an id, to page). */
  tasks(filter = {}) {
    opts('filter', filter)
    const { namespace, name, state, limit, before, ...rest } = filter
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

  /** Why each step of the task is or is not ready. */
  explain(taskId) {
    id('taskId', taskId)
    return this.#native.explain(taskId)
  }

  /** The durable record of every transition of the task and its steps. */
  transitions(taskId) {
    id('taskId', taskId)
    return this.#native.transitions(taskId)
  }

  cancelTask(taskId, { reason } = {}) {
    id('taskId', taskId)
    str('reason', reason)
    return this.#native.cancelTask(taskId, reason ?? null)
  }

  retryTask(taskId) {
    id('taskId', taskId)
    return this.#native.retryTask(taskId)
  }

  /** Resolves a step by hand with `result`, unblocking its dependants. */
  resolveStep(stepId, result) {
    id('stepId', stepId)
    return this.#native.resolveStep(stepId, result)
  }

  resolveTask(taskId, { reason } = {}) {
    id('taskId', taskId)
    str('reason', reason)
    return this.#native.resolveTask(taskId, reason ?? null)
  }

  /** Recovers steps whose lease expired (workers do this in their maintenance pass). */
  reapExpiredLeases(limit = 1000) {
    expect(Number.isInteger(limit) && limit >= 0, 'limit', 'a non-negative integer', limit)
    return this.#native.reapExpiredLeases(limit)
  }

  // Cron schedules: each occurrence creates one task of the template, however many processes fire them.

  /**
   * Registers (or replaces) the schedule `name`: a task of `namespace`/`template` at each occurrence of `cron`
   * (5 or 6 fields, or `@daily` and the like). Registering an unchanged definition again returns the schedule
   * as it is. Options: `context` (an object, checked against the template's schema now), `timezone` (an IANA
   * zone, "UTC" when absent), `priority` (-1000..=1000), `version` (the newest at each fire when absent) and
   * `misfire` ("skip", the default, or "run_once": what happens to occurrences missed while nothing ran).
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

  /** Every registered schedule, by name. */
  schedules() {
    return this.#native.schedules()
  }

  schedule(name) {
    id('name', name)
    return this.#native.schedule(name)
  }

  /**
   * Creates the tasks of the schedules that fell due (workers do this in their maintenance pass): a
   * `ScheduleReport` of what was fired, missed and failed.
   */
  fireSchedules() {
    return this.#native.fireSchedules()
  }

  // The analytics (DESIGN §5), computed by the engine from stored data.

  executionContext(taskId) {
    id('taskId', taskId)
    return this.#native.executionContext(taskId)
  }

  dependencyLevels(taskId) {
    id('taskId', taskId)
    return this.#native.dependencyLevels(taskId)
  }

  /** Tasks and steps by state, with retrying and exhausted steps. */
  healthCounts() {
    return this.#native.healthCounts()
  }

  /** Throughput, rates and durations of the work finished since `since` (a Date). */
  analyticsMetrics(since) {
    return this.#native.analyticsMetrics(since)
  }

  slowestSteps({ limit = 10, ...filter } = {}) {
    return this.#native.slowestSteps(analyticsFilter(filter), limit)
  }

  slowestTasks({ limit = 10, ...filter } = {}) {
    return this.#native.slowestTasks(analyticsFilter(filter), limit)
  }

  get [Symbol.toStringTag]() {
    return this.closed ? 'Client (closed)' : 'Client'
  }
}

function analyticsFilter({ since, namespace, name, version, ...rest }) {
  unknown('filter', rest)
  return { since: time(since), namespace, name, version }
}

/** A Date as the engine takes times (RFC 3339); anything else goes as it is, for the engine to judge. */
function time(value) {
  if (!(value instanceof Date)) return value
  // An invalid Date has no ISO form; its text ("Invalid Date") gets the engine's validation error instead.
  return Number.isNaN(value.getTime()) ? String(value) : value.toISOString()
}

/** Unknown option keys are mistakes (a misspelt `idempotencyKey` would silently create a second task). */
function unknown(what, rest) {
  const keys = Object.keys(rest)
  if (keys.length > 0) throw new TypeError(`${what}: unknown option ${keys.map((k) => JSON.stringify(k)).join(', ')}`)
}

module.exports = { Client }
