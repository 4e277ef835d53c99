'use strict'
// The node:test replay of tests/scenarios/*.yaml (docs/bindings.md §9), with real JS handlers that follow each
// file's script through `Worker`. It mirrors tasker_shared_ffi::scenario, the Rust reference runner, as the
// RSpec and pytest runners do: the same replay rules, the same checks, and a failure lists every difference
// with the observed state.
const { isDeepStrictEqual } = require('node:util')
// The package under test, set by `use`: @tasker/core (scenarios.test.js), or @tasker/wasm, whose replay
// (crates/tasker-wasm/__test__) hands over the same names over its engine, so both follow one runner.
let Client, Worker, RetryableError, PermanentError, OverrunLease, TaskerError, testing

/** Binds the runner to a package's `{ Client, Worker, RetryableError, …, testing }`; returns the runner. */
function use(api) {
  ;({ Client, Worker, RetryableError, PermanentError, OverrunLease, TaskerError, testing } = api)
  return module.exports
}

const MISSING = Symbol('missing')

/** An unexpected error that ends the replay, as in the reference runner. */
class Stop extends Error {}

class ScenarioFailed extends Error {}

/** A handler error whose class name is the script's `error_class` (default: the base's name). */
function scriptedError(Base, failure) {
  const name = failure.error_class || Base.name
  const Cls = name === Base.name ? Base : { [name]: class extends Base {} }[name]
  const message = failure.message || 'scripted failure'
  if (Base === RetryableError) return new Cls(message, { retryAfterMs: failure.retry_after_ms ?? null })
  return new Cls(message, { code: failure.code ?? null })
}

/** An event as scenario files write it (rule 6): `task.completed`, `step.claimed b#2`. */
function eventLine(e) {
  if (e.stepName === null) return e.name
  return (e.attempt ?? 0) > 0 ? `${e.name} ${e.stepName}#${e.attempt}` : `${e.name} ${e.stepName}`
}

const describe = (want) => (typeof want === 'string' ? want : want.kind)
const show = (v) => JSON.stringify(v)

function errorMismatch(e, want) {
  if (typeof want === 'string') want = { kind: want }
  if (e.code !== want.kind) return `expected error ${want.kind}, found ${e.code} (${e.message})`
  if (want.message_contains != null && !e.message.includes(want.message_contains)) {
    return `expected the message to contain ${show(want.message_contains)}, found ${show(e.message)}`
  }
  if (want.details != null && !testing.jsonContains(e.details, want.details)) {
    return `expected details to include ${show(want.details)}, found ${show(e.details)}`
  }
  return null
}

class Replay {
  constructor(scenario, url) {
    this.s = scenario
    this.url = url
    this.handlers = scenario.handlers ?? {}
    this.worker = null
    this.events = []
    this.tasks = {}
    this.saved = {}
    this.claims = []
    this.problems = []
  }

  async open() {
    this.client = await Client.connect(this.url, { clock: this.s.clock ?? 'manual', eventCapacity: 1 << 16 })
    this.sub = this.client.subscribe()
  }

  // -- the host handler that follows the script ---------------------------------------------------------

  handle(ctx) {
    const outcome = testing.scriptOutcome(this.handlers, ctx.stepName, ctx.handlerKey, ctx.attempt)
    if (outcome === 'overrun_lease') throw new OverrunLease()
    const [[kind, payload]] = Object.entries(outcome)
    if (kind === 'succeed') return payload
    if (kind === 'fail_retryable') throw scriptedError(RetryableError, payload)
    throw scriptedError(PermanentError, payload)
  }

  // -- replay -------------------------------------------------------------------------------------------

  async expectOutcome(at, fn, want) {
    let value
    try {
      value = await fn()
    } catch (e) {
      if (!(e instanceof TaskerError)) throw e
      if (want == null) throw new Stop(`${at}: unexpected error (${e.code}): ${e.message}`)
      const problem = errorMismatch(e, want)
      if (problem) this.problems.push(`${at}: ${problem}`)
      return MISSING
    }
    if (want != null) {
      this.problems.push(`${at}: expected error ${describe(want)}, but the call succeeded`)
      return MISSING
    }
    return value
  }

  async replay() {
    for (const [i, t] of (this.s.templates ?? []).entries()) await this.register(`templates[${i}]`, t)
    const keys = [...new Set((await this.client.templates()).flatMap((t) => t.steps.map((s) => s.handlerKey)))].sort()
    if (keys.length > 0) {
      this.worker = new Worker(this.client, {
        concurrency: 1,
        workerId: 'scenario',
        leaseMs: this.s.lease_ms ?? 30000,
        // Leases move only with the scenario's clock and its `reap` actions.
        heartbeatIntervalMs: 0,
        maintenanceIntervalMs: 0,
        enforceDeadlines: false,
      })
      for (const key of keys) this.worker.handle(key, (ctx) => this.handle(ctx))
    }
    for (const [i, t] of (this.s.tasks ?? []).entries()) await this.create(`tasks[${i}]`, t)
    for (const [i, action] of (this.s.script ?? ['run']).entries()) {
      let name
      let arg
      if (typeof action === 'string') [name, arg] = [action, {}]
      else [[name, arg]] = Object.entries(action)
      await this.act(`script[${i}] ${name}`, name, arg ?? {})
    }
    this.collectEvents()
    const expect = this.s.expect ?? {}
    if (expect.templates != null) {
      const found = (await this.client.templates()).map((t) => `${t.namespace}/${t.name}@${t.version}`)
      if (!isDeepStrictEqual(found, expect.templates)) {
        this.problems.push(`expect.templates: expected ${show(expect.templates)}, found ${show(found)}`)
      }
    }
    for (const alias of Object.keys(expect.tasks ?? {}).sort()) {
      await this.checkTask(`expect.tasks.${alias}`, alias, expect.tasks[alias])
    }
    for (const alias of Object.keys(this.tasks).sort()) await this.checkTrail(alias)
    if (this.sub.dropped > 0) this.problems.push(`the event subscription dropped ${this.sub.dropped} events`)
  }

  async register(at, t) {
    let fn
    if ('definition' in t) fn = () => this.client.registerTemplate(t.definition)
    else if ('text' in t) fn = () => this.client.registerTemplate(t.text)
    else {
      const { pattern, handler_key: handlerKey, ...spec } = t.pattern
      fn = () => testing.registerPattern(this.client, pattern, { ...spec, handlerKey })
    }
    const reg = await this.expectOutcome(at, fn, t.expect_error)
    if (reg !== MISSING && t.expect_created != null && reg.created !== t.expect_created) {
      this.problems.push(`${at}.created: expected ${t.expect_created}, found ${reg.created}`)
    }
  }

  async create(at, t) {
    const task = await this.expectOutcome(
      at,
      () =>
        this.client.createTask(t.namespace, t.name, {
          version: t.version ?? undefined,
          context: t.context ?? undefined,
          idempotencyKey: t.idempotency_key ?? undefined,
          tags: t.tags ?? undefined,
          initiator: 'scenario',
          reason: this.s.name,
          priority: t.priority ?? undefined,
          delayMs: t.delay_ms ?? undefined,
        }),
      t.expect_error,
    )
    if (task === MISSING) return
    if (t.same_as != null) {
      if (!(t.same_as in this.tasks)) throw new Stop(`${at}.same_as: no task has alias ${show(t.same_as)}`)
      if (this.tasks[t.same_as].id !== task.id) {
        this.problems.push(`${at}: expected the task of ${show(t.same_as)} (${this.tasks[t.same_as].id}), found a new task ${task.id}`)
      }
    }
    if (t.alias) this.tasks[t.alias] = task
  }

  taskId(at, alias) {
    if (!(alias in this.tasks)) throw new Stop(`${at}: no task has alias ${show(alias)}`)
    return this.tasks[alias].id
  }

  session(at) {
    if (this.worker === null) throw new Stop(`${at}: no template is registered, so nothing can be claimed`)
    return this.worker.session
  }

  async act(at, name, a) {
    try {
      await this.#act(at, name, a)
    } catch (e) {
      if (e instanceof TaskerError) throw new Stop(`${at}: ${e.message}`)
      throw e
    }
  }

  async #act(at, name, a) {
    const c = this.client
    switch (name) {
      case 'run': {
        if (this.worker === null) return
        const report = await this.worker.runUntilIdle({ batchSize: 1, maxClaims: a.max_claims ?? null, autoAdvanceClock: false })
        for (const call of report.calls) {
          if (call.rejected) this.problems.push(`${at}: the outcome of ${call.stepName}#${call.attempt} was rejected (${call.rejected})`)
          this.claims.push({ taskId: call.taskId, stepName: call.stepName, attempt: call.attempt, dependencyResults: call.dependencyResults })
        }
        return
      }
      case 'advance_ms':
        c.advanceClock(a)
        return
      case 'reap': {
        const r = await c.reapExpiredLeases(1000)
        const [er, ef] = [a.expect_retried, a.expect_failed]
        if ((er != null && er !== r.retried) || (ef != null && ef !== r.failed)) {
          this.problems.push(`${at}: expected retried ${er} and failed ${ef}, found ${r.retried} and ${r.failed}`)
        }
        return
      }
      case 'create_task':
        return this.create(at, a)
      case 'cancel': {
        const id = this.taskId(at, a.task)
        await this.expectOutcome(at, () => c.cancelTask(id, { reason: a.reason ?? undefined }), a.expect_error)
        return
      }
      case 'run_now': {
        const id = this.taskId(at, a.task)
        await this.expectOutcome(at, () => c.runTaskNow(id), a.expect_error)
        return
      }
      case 'retry': {
        const id = this.taskId(at, a.task)
        await this.expectOutcome(at, () => c.retryTask(id), a.expect_error)
        return
      }
      case 'resolve_task': {
        const id = this.taskId(at, a.task)
        await this.expectOutcome(at, () => c.resolveTask(id, { reason: a.reason ?? undefined }), a.expect_error)
        return
      }
      case 'resolve_step': {
        const id = this.taskId(at, a.task)
        const step = (await c.steps(id)).find((s) => s.name === a.step)
        if (step === undefined) throw new Stop(`${at}: task ${show(a.task)} has no step ${show(a.step)}`)
        await this.expectOutcome(at, () => c.resolveStep(step.id, a.result ?? null), a.expect_error)
        return
      }
      case 'claim': {
        const got = await this.session(at).claim(1, 0)
        if (a.expect_none) {
          if (got.length > 0) this.problems.push(`${at}: expected nothing claimable, claimed ${got[0].stepName}#${got[0].attempt}`)
          return
        }
        if (got.length === 0) throw new Stop(`${at}: expected a claimable step, found none`)
        const [ctx] = got
        if (a.expect_step != null && a.expect_step !== ctx.stepName) {
          this.problems.push(`${at}: expected to claim ${show(a.expect_step)}, claimed ${show(ctx.stepName)}`)
        }
        if (a.expect_attempt != null && a.expect_attempt !== ctx.attempt) {
          this.problems.push(`${at}: expected attempt ${a.expect_attempt}, claimed attempt ${ctx.attempt}`)
        }
        this.claims.push({ taskId: ctx.taskId, stepName: ctx.stepName, attempt: ctx.attempt, dependencyResults: ctx.dependencyResults })
        if (a.as) this.saved[a.as] = ctx
        return
      }
      case 'complete': {
        const ctx = this.savedClaim(at, a.claim)
        const result = 'result' in a ? a.result : { ok: true, step: ctx.stepName }
        const session = this.session(at)
        await this.expectOutcome(at, () => session.complete(ctx.token.stepId, ctx.token.attempt, result), a.expect_error)
        return
      }
      case 'fail': {
        const ctx = this.savedClaim(at, a.claim)
        const session = this.session(at)
        const failure = {
          kind: a.kind ?? 'retryable',
          message: a.message || 'scripted failure',
          error_class: a.error_class ?? undefined,
          retry_after_ms: a.retry_after_ms ?? undefined,
          code: a.code ?? undefined,
        }
        await this.expectOutcome(at, () => session.fail(ctx.token.stepId, ctx.token.attempt, failure), a.expect_error)
        return
      }
      case 'check':
        this.collectEvents()
        for (const alias of Object.keys(a).sort()) await this.checkTask(`${at}.${alias}`, alias, a[alias])
        return
      case 'register_schedule': {
        const { name: sname, namespace, template, cron, version, timezone, context, priority, misfire, expect_error, expect } = a
        const options = { version, timezone, context, priority, misfire }
        for (const k of Object.keys(options)) if (options[k] == null) delete options[k]
        const s = await this.expectOutcome(at, () => c.registerSchedule(sname, namespace, template, cron, options), expect_error)
        if (s !== MISSING) this.checkSchedule(at, s, expect)
        return
      }
      case 'pause_schedule':
      case 'resume_schedule':
      case 'remove_schedule': {
        const method = { pause_schedule: 'pauseSchedule', resume_schedule: 'resumeSchedule', remove_schedule: 'removeSchedule' }[name]
        const s = await this.expectOutcome(at, () => c[method](a.schedule), a.expect_error)
        if (s !== MISSING) this.checkSchedule(at, s, a.expect)
        return
      }
      case 'fire_schedules': {
        const r = await c.fireSchedules()
        for (const key of ['fired', 'missed', 'failed']) {
          const want = a[`expect_${key}`]
          if (want != null && want !== r[key]) this.problems.push(`${at}: expected ${key} ${want}, found ${r[key]}`)
        }
        for (const [alias, schedule] of Object.entries(a.tasks ?? {})) {
          const s = await c.schedule(schedule)
          const tid = s.lastTaskId
          if (tid === null) throw new Stop(`${at}.tasks.${alias}: schedule ${show(schedule)} has created no task`)
          if (Object.values(this.tasks).some((t) => t.id === tid)) {
            throw new Stop(`${at}.tasks.${alias}: the last task of schedule ${show(schedule)} is not new to this pass`)
          }
          this.tasks[alias] = await c.task(tid)
        }
        return
      }
      case 'check_schedules':
        for (const sname of Object.keys(a).sort()) this.checkSchedule(`${at}.${sname}`, await c.schedule(sname), a[sname])
        return
      default:
        throw new Stop(`${at}: unknown action ${show(name)}`)
    }
  }

  /** A `ScheduleExpectation` (rule 5): counts as numbers, times as RFC 3339 compared as instants, `null` for none. */
  checkSchedule(at, s, want) {
    if (want == null) return
    const p = this.problems
    for (const [key, js] of [
      ['paused', 'paused'],
      ['fired', 'fired'],
      ['missed', 'missed'],
    ]) {
      if (key in want && want[key] !== s[js]) p.push(`${at}.${key}: expected ${show(want[key])}, found ${show(s[js])}`)
    }
    for (const [key, js] of [
      ['next_fire_at', 'nextFireAt'],
      ['last_fire_at', 'lastFireAt'],
    ]) {
      if (!(key in want)) continue
      const found = s[js]
      if (found !== null && !(found instanceof Date)) {
        p.push(`${at}.${key}: expected the binding to return a Date or null, found ${show(found)}`)
        continue
      }
      let expected = null
      if (want[key] !== null) {
        expected = typeof want[key] === 'string' ? new Date(want[key]) : null
        if (expected === null || Number.isNaN(expected.getTime())) {
          p.push(`${at}.${key}: malformed expectation ${show(want[key])} (expected an RFC 3339 time or null)`)
          continue
        }
      }
      if ((expected?.getTime() ?? null) !== (found?.getTime() ?? null)) {
        p.push(`${at}.${key}: expected ${expected?.toISOString() ?? 'none'}, found ${found?.toISOString() ?? 'none'}`)
      }
    }
  }

  savedClaim(at, name) {
    if (!(name in this.saved)) throw new Stop(`${at}: no claim was kept as ${show(name)}`)
    return this.saved[name]
  }

  collectEvents() {
    this.events.push(...this.sub.drain())
  }

  eventLines(taskId) {
    return this.events.filter((e) => e.taskId === taskId).map(eventLine)
  }

  // -- checks -------------------------------------------------------------------------------------------

  async checkTask(at, alias, want) {
    if (!(alias in this.tasks)) {
      this.problems.push(`${at}: no task has alias ${show(alias)}`)
      return
    }
    const p = this.problems
    const id = this.tasks[alias].id
    const task = await this.client.task(id)
    const ctx = await this.client.executionContext(id)
    for (const [key, found] of [
      ['state', task.state],
      ['execution_status', ctx.executionStatus],
      ['recommended_action', ctx.recommendedAction],
    ]) {
      if (key in want && want[key] !== found) p.push(`${at}.${key}: expected ${want[key]}, found ${found}`)
    }
    const stepsWant = want.steps
    const allSteps = want.all_steps
    if (stepsWant != null || allSteps != null) {
      const explain = await this.client.explain(id)
      const steps = await this.client.steps(id)
      const names = new Set(steps.map((s) => s.name))
      for (const n of Object.keys(stepsWant ?? {}).sort()) {
        if (!names.has(n)) p.push(`${at}.steps.${n}: the task has no such step`)
      }
      for (const s of steps) {
        let w = (stepsWant ?? {})[s.name]
        if (w == null) {
          if (allSteps == null) {
            if (stepsWant != null) p.push(`${at}.steps: step ${s.name} is not listed (list it or add all_steps)`)
            continue
          }
          w = allSteps
        }
        const r = explain.steps.find((x) => x.stepId === s.id)
        this.checkStep(`${at}.steps.${s.name}`, id, s, r, w)
      }
    }
    if ('events' in want) {
      this.collectEvents()
      const found = this.eventLines(id)
      if (!isDeepStrictEqual(found, want.events)) p.push(`${at}.events: ${sequenceDiff(want.events, found)}`)
    }
  }

  checkStep(at, taskId, s, r, w) {
    const p = this.problems
    for (const key of ['state', 'attempts']) {
      if (key in w && w[key] !== s[key]) p.push(`${at}.${key}: expected ${w[key]}, found ${s[key]}`)
    }
    if ('result' in w && !isDeepStrictEqual(w.result, s.result)) {
      p.push(`${at}.result: expected ${show(w.result)}, found ${show(s.result)}`)
    }
    if ('error' in w) {
      const [we, e] = [w.error, s.error]
      if (we === null) {
        if (e !== null) p.push(`${at}.error: expected none, found ${e.errorClass}: ${e.message}`)
      } else if (e === null) {
        p.push(`${at}.error: expected ${show(we)}, found none`)
      } else {
        for (const [key, js] of [
          ['error_class', 'errorClass'],
          ['code', 'code'],
          ['retryable', 'retryable'],
        ]) {
          if (key in we && we[key] !== e[js]) p.push(`${at}.error.${key}: expected ${show(we[key])}, found ${show(e[js])}`)
        }
        if ('message_contains' in we && !e.message.includes(we.message_contains)) {
          p.push(`${at}.error.message: expected it to contain ${show(we.message_contains)}, found ${show(e.message)}`)
        }
      }
    }
    if ('ready' in w && (r == null || w.ready !== r.ready)) p.push(`${at}.ready: expected ${w.ready}, found ${r?.ready ?? null}`)
    if ('blocked_by_failure' in w && (r == null || !isDeepStrictEqual(w.blocked_by_failure, r.blockedByFailure))) {
      p.push(`${at}.blocked_by_failure: expected ${show(w.blocked_by_failure)}, found ${show(r?.blockedByFailure ?? null)}`)
    }
    if ('claims' in w) {
      const found = this.claims.filter((c) => c.taskId === taskId && c.stepName === s.name)
      const attempts = found.map((c) => c.attempt)
      const wanted = w.claims.map((c) => c.attempt)
      if (!isDeepStrictEqual(attempts, wanted)) p.push(`${at}.claims: expected attempts ${show(wanted)}, found ${show(attempts)}`)
      else {
        w.claims.forEach((c, i) => {
          if (c.dependency_results != null && !isDeepStrictEqual(c.dependency_results, found[i].dependencyResults)) {
            p.push(
              `${at}.claims[attempt ${c.attempt}].dependency_results: expected ${show(c.dependency_results)}, found ${show(found[i].dependencyResults)}`,
            )
          }
        })
      }
    }
  }

  /**
   * Every event of the task must match its transition rows one for one: events follow commits. Rows and
   * events are compared by (from_state, to_state[, attempt]), which needs no copy of the engine's naming.
   */
  async checkTrail(alias) {
    const id = this.taskId('trail', alias)
    const trail = await this.client.transitions(id)
    const taskRows = trail.task.map((r) => [r.fromState, r.toState])
    const taskEvents = this.events.filter((e) => e.taskId === id && e.stepId === null).map((e) => [e.fromState, e.toState])
    if (!isDeepStrictEqual(taskRows, taskEvents)) {
      this.problems.push(`tasks.${alias}: task events ${show(taskEvents)} do not match the task's transition rows ${show(taskRows)}`)
    }
    const stepIds = [...new Set(trail.steps.map((r) => r.stepId))]
    for (const sid of stepIds) {
      const rows = trail.steps.filter((r) => r.stepId === sid).map((r) => [r.fromState, r.toState, r.attempt])
      const events = this.events.filter((e) => e.stepId === sid).map((e) => [e.fromState, e.toState, e.attempt ?? 0])
      if (!isDeepStrictEqual(rows, events)) {
        this.problems.push(`tasks.${alias}: events of step ${sid} ${show(events)} do not match its transition rows ${show(rows)}`)
      }
    }
  }

  async observeAll() {
    this.collectEvents()
    const out = {}
    for (const alias of Object.keys(this.tasks).sort()) {
      const t = this.tasks[alias]
      try {
        const steps = {}
        for (const s of await this.client.steps(t.id)) {
          steps[s.name] = {
            state: s.state,
            attempts: s.attempts,
            result: s.result,
            error: s.error === null ? null : `${s.error.errorClass}: ${s.error.message}`,
          }
        }
        out[alias] = { state: (await this.client.task(t.id)).state, steps, events: this.eventLines(t.id) }
      } catch (e) {
        if (!(e instanceof TaskerError)) throw e
        out[alias] = { unavailable: e.message }
      }
    }
    return out
  }
}

function sequenceDiff(want, found) {
  let first = want.findIndex((w, i) => i >= found.length || w !== found[i])
  if (first === -1) first = Math.min(want.length, found.length)
  return (
    `sequences differ from position ${first} (expected ${want.length} events, found ${found.length}); ` +
    `expected from there: ${show(want.slice(first))}; found from there: ${show(found.slice(first))}`
  )
}

/** Replays `scenario` on a fresh store at `url`; rejects with ScenarioFailed listing every difference. */
async function run(scenario, url) {
  const r = new Replay(scenario, url)
  await r.open()
  let observed
  try {
    try {
      await r.replay()
    } catch (e) {
      if (!(e instanceof Stop)) throw e
      r.problems.push(e.message)
    }
    observed = await r.observeAll()
  } finally {
    r.worker?.stop()
    await r.client.close()
  }
  if (r.problems.length > 0) {
    const lines = [`scenario ${scenario.name} failed on ${url}:`, ...r.problems.map((p) => `  - ${p}`), 'observed:']
    lines.push(JSON.stringify(observed, null, 2))
    throw new ScenarioFailed(lines.join('\n'))
  }
  return observed
}

module.exports = { run, ScenarioFailed, use }
