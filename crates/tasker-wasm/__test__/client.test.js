// The JS surface of @tasker/wasm on the wasm build: errors, objects, template checks, runs, events.
import test from 'node:test'
import assert from 'node:assert/strict'
import * as pkg from '../js/index.js'

const { Engine, TaskerError, RetryableError, PermanentError, testing, objects } = pkg

const PAIR = `namespace: demo
name: pair
version: 1.0.0
defaults:
  retry: { max_attempts: 3, backoff: exponential, base_ms: 1000, jitter: 0 }
steps:
  - { name: fetch, handler: demo.fetch }
  - { name: store, handler: demo.store, depends_on: [fetch] }
`
const CYCLE = `namespace: demo
name: loop
version: 1.0.0
steps:
  - { name: a, handler: demo.a, depends_on: [c] }
  - { name: b, handler: demo.b, depends_on: [a] }
  - { name: c, handler: demo.c, depends_on: [b] }
`

test('every error kind becomes its exported class, with code, details and the cause chain', () => {
  const kinds = Object.keys(pkg.errorClasses)
  assert.equal(kinds.length, 12)
  for (const className of kinds) {
    const cls = pkg[className]
    assert.equal(typeof cls, 'function', `${className} is exported by name`)
    const code = Object.entries(pkg.errorClasses).find(([n]) => n === className)[1]
    const e = testing.errorOf(codeOf(className))
    assert.ok(e instanceof cls && e instanceof TaskerError && e instanceof Error, className)
    assert.equal(e.name, className)
    assert.equal(pkg.errorClass(e.code), code)
    assert.deepEqual(e.details, { k: 1 })
    assert.equal(e.message, 'outer')
    assert.equal(e.cause.message, 'inner')
    assert.deepEqual(e.causes, ['inner'])
  }
})

const codeOf = (className) =>
  className
    .replace(/Error$/, '')
    .replace(/[A-Z]/g, (c, i) => (i ? '_' : '') + c.toLowerCase())

test('validateTemplate lists every problem with its path, and names a cycle, without registering', async () => {
  const problems = pkg.validateTemplate('namespace: demo\nname: Bad Name\nversion: x\nsteps:\n  - { handler: 7 }\n')
  const paths = problems.map((p) => p.path)
  for (const p of ['name', 'version', 'steps[0].name', 'steps[0].handler']) assert.ok(paths.includes(p), `${p} in ${paths}`)
  assert.ok(problems.every((p) => p.code === 'validation' && p.message.length > 0))
  const [cycle] = pkg.validateTemplate(CYCLE)
  assert.equal(cycle.code, 'cycle_detected')
  assert.deepEqual(new Set(cycle.cycle), new Set(['a', 'b', 'c']))
  assert.equal(cycle.cycle[0], cycle.cycle.at(-1))
  assert.deepEqual(pkg.validateTemplate(PAIR), [])
  const engine = await Engine.memory()
  assert.deepEqual(engine.validateTemplate({ namespace: 'demo', name: 'x', version: '1.0.0', steps: [{ name: 's', handler: 'h' }] }), [])
  assert.deepEqual(await engine.templates(), [], 'nothing was registered')
  await assert.rejects(engine.registerTemplate(CYCLE), pkg.CycleDetectedError)
})

test('renderTemplate draws a registered template; backoffPreview follows the policy', async () => {
  const engine = await Engine.memory()
  await engine.registerTemplate(PAIR)
  assert.match(await engine.renderTemplate('demo', 'pair', 'mermaid'), /fetch --> store/)
  assert.match(await engine.renderTemplate('demo', 'pair', 'dot'), /"fetch" -> "store"/)
  await assert.rejects(engine.renderTemplate('demo', 'pair', 'svg'), pkg.ValidationError)
  await assert.rejects(engine.renderTemplate('demo', 'nope'), pkg.NotFoundError)
  assert.equal(pkg.renderDefinition(PAIR, 'mermaid'), await engine.renderTemplate('demo', 'pair'))
  assert.throws(() => pkg.renderDefinition(CYCLE), pkg.CycleDetectedError)
  const rows = pkg.backoffPreview({ maxAttempts: 4, backoff: 'linear', baseMs: 250, jitter: 0.2 })
  assert.deepEqual(rows.map((r) => r.delayMs), [250, 500, 750])
  assert.deepEqual([rows[0].minMs, rows[0].maxMs], [200, 300])
  assert.throws(() => pkg.backoffPreview({ backoff: 'sometimes' }), (e) => e.code === 'validation' && e.details.errors[0].path === 'retry.backoff')
})

test('runUntilIdle runs sync and async handlers, retries on a manual clock at once, and records failures', async () => {
  const engine = await Engine.memory({ clock: 'manual' })
  await engine.registerTemplate(PAIR)
  const task = await engine.createTask('demo', 'pair', { context: { accountId: 42 } })
  let calls = 0
  const report = await engine.runUntilIdle({
    'demo.fetch': (ctx) => {
      calls += 1
      if (ctx.attempt < 3) throw new RetryableError('flaky', { retryAfterMs: 5000 })
      return { invoices: [ctx.context.accountId] }
    },
    'demo.store': async (ctx) => ({ stored: ctx.dependencyResults.fetch.invoices }),
  })
  assert.equal(calls, 3)
  assert.equal(report.completed, 2)
  assert.equal(report.failed, 2)
  assert.equal(report.advancedMs, 10000, 'two retry_after delays, jumped over by the manual clock')
  const done = await engine.task(task.id)
  assert.equal(done.state, 'complete')
  assert.ok(done.finishedAt instanceof Date)
  const steps = await engine.steps(task.id)
  assert.deepEqual(steps.find((s) => s.name === 'store').result, { stored: [42] })
  assert.deepEqual(Object.keys(steps[0]), objects.Step)

  const other = await engine.createTask('demo', 'pair')
  await engine.runUntilIdle({
    'demo.fetch': () => {
      throw new PermanentError('gone', { code: 'gone' })
    },
  })
  const failed = await engine.steps(other.id)
  assert.equal(failed[0].state, 'error')
  assert.deepEqual([failed[0].error.errorClass, failed[0].error.code, failed[0].error.retryable], ['PermanentError', 'gone', false])
  assert.equal((await engine.task(other.id)).state, 'error')
  const explain = await engine.explain(other.id)
  assert.deepEqual(Object.keys(explain), objects.Explain)
})

test('concurrency runs a batch of handlers at once', async () => {
  const engine = await Engine.memory()
  await testing.registerPattern(engine, 'parallel', { n: 4, handlerKey: 'fan.{step}' })
  const { tasks } = await testing.createPatternTasks(engine, 'parallel', { n: 4, handlerKey: 'fan.{step}' })
  let running = 0
  let peak = 0
  const slow = async () => {
    running += 1
    peak = Math.max(peak, running)
    await new Promise((r) => setTimeout(r, 5))
    running -= 1
    return {}
  }
  const handlers = Object.fromEntries((await engine.templates())[0].steps.map((s) => [s.handlerKey, slow]))
  const report = await engine.runUntilIdle(handlers, { concurrency: 4 })
  assert.equal(report.completed, 6)
  assert.ok(peak >= 2, `at most ${peak} handler(s) ran at once`)
  assert.equal((await engine.task(tasks[0].id)).state, 'complete')
})

test('subscribe is an async iterable of events; operator actions and levels work', async () => {
  const engine = await Engine.memory({ clock: 'manual' })
  await engine.registerTemplate(PAIR)
  const sub = engine.subscribe({ names: ['task'] })
  const task = await engine.createTask('demo', 'pair')
  const seen = []
  const reading = (async () => {
    for await (const e of sub) {
      seen.push(e.name)
      if (e.name === 'task.cancelled') break
    }
  })()
  assert.deepEqual((await engine.dependencyLevels(task.id)).map((l) => l.level), [0, 1])
  await engine.cancelTask(task.id, { reason: 'test' })
  await reading
  assert.deepEqual(seen, ['task.created', 'task.cancelled'])
  await assert.rejects(engine.cancelTask(task.id), pkg.InvalidTransitionError)
  assert.equal(await sub.next(5), null)
  const t2 = await engine.createTask('demo', 'pair')
  const [first] = await engine.steps(t2.id)
  await engine.resolveStep(first.id, { by: 'hand' })
  assert.equal((await engine.step(first.id)).state, 'resolved_manually')
  await engine.close()
  await engine.close()
  await assert.rejects(engine.task(t2.id), pkg.ClosedError)
})

test('on the system clock a run waits for a due retry on the JS timers; any other throw is retryable', async () => {
  const engine = await Engine.memory()
  await engine.registerTemplate(PAIR.replace('base_ms: 1000', 'base_ms: 40'))
  const task = await engine.createTask('demo', 'pair')
  const started = Date.now()
  let n = 0
  const report = await engine.runUntilIdle({
    'demo.fetch': () => {
      n += 1
      if (n === 1) throw new TypeError('boom')
      return {}
    },
    'demo.store': () => ({}),
  })
  assert.ok(Date.now() - started >= 35, 'the second attempt waited for its backoff')
  assert.equal(report.advancedMs, 0)
  assert.equal((await engine.task(task.id)).state, 'complete')
  const trail = await engine.transitions(task.id)
  assert.ok(trail.steps.some((r) => r.toState === 'waiting_for_retry'))
  const events = (await engine.steps(task.id))[0]
  assert.equal(events.attempts, 2)
})
