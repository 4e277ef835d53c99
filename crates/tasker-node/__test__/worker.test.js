'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const tc = require('../lib/index.js')
const { Client, Worker, RetryableError, PermanentError, OverrunLease, testing } = tc
const { stores, pgSkip, ONE_STEP, DIAMOND, until } = require('./helpers')

async function connect(t, url, options) {
  const client = await Client.connect(url, options)
  t.after(() => client.close())
  return client
}

const oneStep = (name, handler, extra = {}) => ({ ...ONE_STEP, name, steps: [{ name: 'work', handler, ...extra }] })

for (const [label, fresh] of stores()) {
  test(`a diamond workflow runs to completion with run({ signal }) on ${label}`, pgSkip(fresh), async (t) => {
    const client = await connect(t, fresh())
    await client.registerTemplate(DIAMOND)
    const tasks = []
    for (let i = 0; i < 3; i++) tasks.push(await client.createTask('shop', 'order', { context: { order: i } }))
    const worker = new Worker(client, { concurrency: 4, claimWaitMs: 50 })
    worker
      .handle('shop.validate', async (ctx) => ({ valid: ctx.context.order }))
      .handle('shop.charge', async (ctx) => ({ charged: ctx.dependencyResults.validate.valid }))
      .handle('shop.reserve', (ctx) => ({ reserved: ctx.attempt }))
      .handle('shop.ship', async (ctx) => ({ shipped: Object.keys(ctx.dependencyResults).sort() }))
    const controller = new AbortController()
    const running = worker.run({ signal: controller.signal, handleSignals: false })
    await until(async () => (await client.tasks({ state: 'complete' })).length === 3, 'three complete tasks')
    controller.abort()
    const stats = await running
    assert.equal(stats.completed, 12)
    assert.equal(stats.outstanding, 0)
    for (const task of tasks) {
      const steps = Object.fromEntries((await client.steps(task.id)).map((s) => [s.name, s]))
      assert.deepEqual(steps.ship.result, { shipped: ['charge', 'reserve'] })
      assert.deepEqual(steps.charge.result, { charged: task.context.order })
      assert.equal((await client.executionContext(task.id)).executionStatus, 'all_complete')
    }
  })
}

test('RetryableError with retryAfterMs schedules the retry; runUntilIdle moves a manual clock to it', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate(oneStep('flaky', 'w.flaky'))
  const task = await client.createTask('w', 'flaky')
  const worker = new Worker(client)
  worker.handle('w.flaky', async (ctx) => {
    if (ctx.attempt === 1) throw new RetryableError('rate limited', { retryAfterMs: 5000 })
    return { attempt: ctx.attempt }
  })
  const first = await worker.runUntilIdle({ autoAdvanceClock: false })
  assert.deepEqual(first.calls.map((c) => c.outcome), ['fail_retryable'])
  let [step] = await client.steps(task.id)
  assert.equal(step.state, 'waiting_for_retry')
  assert.deepEqual([step.error.errorClass, step.error.message, step.error.retryable], ['RetryableError', 'rate limited', true])
  assert.equal(step.nextAttemptAt.getTime() - client.now().getTime(), 5000)
  const second = await worker.runUntilIdle()
  assert.equal(second.advancedMs, 5000)
  ;[step] = await client.steps(task.id)
  assert.deepEqual([step.state, step.attempts, step.result], ['complete', 2, { attempt: 2 }])
})

test('PermanentError is not retried and keeps its code; retryTask runs the step again', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate(oneStep('card', 'w.card'))
  const task = await client.createTask('w', 'card')
  let fail = true
  class CardDeclined extends PermanentError {}
  const worker = new Worker(client).handle('w.card', () => {
    if (fail) throw new CardDeclined('card declined', { code: 'card_declined' })
    return { charged: true }
  })
  const report = await worker.runUntilIdle()
  assert.deepEqual(report.calls.map((c) => c.outcome), ['fail_permanent'])
  let [step] = await client.steps(task.id)
  assert.deepEqual(
    [step.state, step.attempts, step.error.errorClass, step.error.code, step.error.retryable],
    ['error', 1, 'CardDeclined', 'card_declined', false],
  )
  assert.equal((await client.task(task.id)).state, 'error')
  fail = false
  assert.equal((await client.retryTask(task.id)).state, 'in_progress')
  await worker.runUntilIdle()
  ;[step] = await client.steps(task.id)
  assert.deepEqual([step.state, step.attempts, step.result], ['complete', 2, { charged: true }])
})

test('any other throw is retried with its class, message and stack', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate(oneStep('raises', 'w.raises'))
  const task = await client.createTask('w', 'raises')
  const worker = new Worker(client).handle('w.raises', async (ctx) => {
    if (ctx.attempt < 3) return ctx.context.missing.sku
    throw 'a bare string'
  })
  const report = await worker.runUntilIdle()
  assert.deepEqual(report.calls.map((c) => c.outcome), ['fail_retryable', 'fail_retryable', 'fail_retryable'])
  const [step] = await client.steps(task.id)
  assert.deepEqual([step.state, step.attempts, step.error.errorClass, step.error.retryable], ['error', 3, 'string', true])
  assert.equal(step.error.message, 'a bare string')
  const trail = await client.transitions(task.id)
  const firstFailure = trail.steps.find((r) => r.toState === 'waiting_for_retry')
  assert.equal(firstFailure.metadata.error_class ?? firstFailure.metadata.error?.error_class, 'TypeError')
})

test('a TypeError keeps its stack frames on the step', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate({ ...oneStep('once', 'w.once'), defaults: { retry: { max_attempts: 1 } } })
  const task = await client.createTask('w', 'once')
  await new Worker(client).handle('w.once', (ctx) => ctx.context.missing.sku).runUntilIdle()
  const [step] = await client.steps(task.id)
  assert.equal(step.error.errorClass, 'TypeError')
  assert.match(step.error.message, /Cannot read properties of undefined/)
  assert.ok(step.error.backtrace.some((l) => l.includes('worker.test.js')), step.error.backtrace.join('\n'))
})

// The same three host mistakes give the same step error in Rust, Ruby, Python and Node (docs/bindings.md §6).
test('each host mistake gives the step error every binding gives', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  const keys = ['w.bad', 'w.missing', 'w.raises']
  const steps = {}
  for (const key of keys) {
    const name = key.replace('.', '_')
    await client.registerTemplate(oneStep(name, key))
    steps[key] = (await client.steps((await client.createTask('w', name, { context: {} })).id))[0]
  }
  const worker = new Worker(client, { handlerKeys: keys })
  worker.handle('w.bad', async () => ({ at: new Map() }))
  worker.handle('w.raises', (ctx) => ctx.context.sku.name)
  const report = await worker.runUntilIdle({ autoAdvanceClock: false })
  // The invalid result runs once; the other two are retried until their three attempts are spent.
  assert.deepEqual(report.calls.map((c) => c.outcome).sort(), ['fail_permanent', ...Array(6).fill('fail_retryable')])
  const [bad, missing, raises] = await Promise.all(keys.map((k) => client.step(steps[k].id)))
  assert.deepEqual(
    [bad.state, bad.attempts, bad.error.errorClass, bad.error.code, bad.error.retryable],
    ['error', 1, 'InvalidResult', 'invalid_result', false],
  )
  assert.equal(bad.error.message, 'result.at: expected a JSON value, found Map')
  assert.deepEqual([missing.attempts, missing.error.errorClass, missing.error.retryable], [3, 'HandlerMissing', true])
  assert.ok(missing.error.message.includes('"w.missing"'), missing.error.message)
  assert.deepEqual([raises.attempts, raises.error.errorClass, raises.error.retryable], [3, 'TypeError', true])
})

test('an AbortSignal stops the worker gracefully: running handlers finish and report', async (t) => {
  const client = await connect(t, 'memory:')
  const { tasks } = await testing.linear(client, { n: 1, count: 8 })
  const worker = new Worker(client, { concurrency: 8, claimWaitMs: 50 })
  let started = 0
  let release
  const released = new Promise((r) => (release = r))
  worker.handle('testkit.noop', async () => {
    started++
    await released
    return { held: true }
  })
  const controller = new AbortController()
  const running = worker.run({ signal: controller.signal, handleSignals: false })
  await until(() => started === 8, 'eight handlers to start')
  controller.abort()
  release()
  const stats = await running
  assert.deepEqual([stats.completed, stats.outstanding], [8, 0])
  for (const task of tasks) assert.equal((await client.task(task.id)).state, 'complete')
  // A stopped worker runs again with a new session.
  await testing.linear(client, { n: 1, count: 1 })
  const again = await worker.runUntilIdle()
  assert.equal(again.completed, 1)
})

test('run keeps at most `concurrency` handler Promises in flight', async (t) => {
  const client = await connect(t, 'memory:')
  await testing.parallel(client, { n: 12 })
  const worker = new Worker(client, { concurrency: 3, claimWaitMs: 20 })
  let running = 0
  let most = 0
  let done = 0
  worker.handle('testkit.noop', async () => {
    most = Math.max(most, ++running)
    await new Promise((r) => setImmediate(r))
    running--
    done++
    return {}
  })
  const controller = new AbortController()
  const run = worker.run({ signal: controller.signal, handleSignals: false })
  await until(() => done === 14, 'every step to run')
  controller.abort()
  await run
  assert.ok(most <= 3, `at most 3 in flight, saw ${most}`)
  assert.ok(most >= 2, `several in flight at once, saw ${most}`)
})

test('an aborted signal before run stops at once; SIGTERM stops a running worker', async (t) => {
  const client = await connect(t, 'memory:')
  const worker = new Worker(client, { claimWaitMs: 50 }).handle('x.y', () => ({}))
  const stats = await worker.run({ signal: AbortSignal.abort(), handleSignals: false })
  assert.equal(stats.claimed, 0)
  const running = worker.run()
  setImmediate(() => process.emit('SIGTERM', 'SIGTERM'))
  assert.equal((await running).claimed, 0)
  assert.equal(process.listenerCount('SIGTERM'), 0)
})

test('OverrunLease leaves the claim to expire; the reaper retries it', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate(oneStep('crash', 'w.crash'))
  const task = await client.createTask('w', 'crash')
  const worker = new Worker(client, { leaseMs: 1000, heartbeatIntervalMs: 0, maintenanceIntervalMs: 0 })
  worker.handle('w.crash', (ctx) => {
    if (ctx.attempt === 1) throw new OverrunLease()
    return { recovered: true }
  })
  const first = await worker.runUntilIdle()
  assert.deepEqual([first.overrun, first.calls[0].outcome], [1, 'overrun_lease'])
  client.advanceClock(1001)
  assert.deepEqual(await client.reapExpiredLeases(), { retried: 1, failed: 0 })
  await worker.runUntilIdle()
  const [step] = await client.steps(task.id)
  assert.deepEqual([step.state, step.attempts, step.result], ['complete', 2, { recovered: true }])
})

test('wrong worker arguments are TypeErrors', async (t) => {
  const client = await connect(t, 'memory:')
  assert.throws(() => new Worker({}), TypeError)
  assert.throws(() => new Worker(client, { concurrency: 0 }), TypeError)
  assert.throws(() => new Worker(client, { concurency: 2 }), TypeError)
  assert.throws(() => new Worker(client).handle('', () => {}), TypeError)
  assert.throws(() => new Worker(client).handle('k', 42), TypeError)
  await assert.rejects(new Worker(client).runUntilIdle(), /register at least one handler/)
})

const PATTERNS = [
  ['linear', { n: 4 }, 'linear_4', 4],
  ['diamond', {}, 'diamond', 4],
  ['parallel', { n: 3 }, 'parallel_3', 5],
  ['tree', { depth: 2, fanout: 2 }, 'tree_2x2', 7],
  ['mixed', {}, 'mixed', 7],
]

for (const [pattern, options, name, steps] of PATTERNS) {
  test(`the ${pattern} factory pattern runs until idle with JS handlers and scripted ones`, async (t) => {
    const client = await connect(t, 'memory:', { clock: 'manual' })
    const made = await testing[pattern](client, { ...options, count: 2 })
    assert.equal(made.template.name, name)
    assert.equal(made.tasks.length, 2)
    assert.equal(made.template.steps.length, steps)
    const report = await testing.runUntilIdle(client, { 'testkit.noop': (ctx) => ({ step: ctx.stepName }) })
    assert.equal(report.completed, 2 * steps)
    for (const task of made.tasks) assert.equal((await client.task(task.id)).state, 'complete')
    const more = await testing.createPatternTasks(client, pattern, { ...options, count: 1 })
    const scripted = await testing.runScripted(client, {})
    assert.equal(scripted.completed, steps)
    assert.equal((await client.task(more.tasks[0].id)).state, 'complete')
  })
}

test('patternTemplate and a custom handler key', async (t) => {
  const doc = testing.patternTemplate('linear', { n: 2, handlerKey: 'app.{step}' })
  assert.deepEqual(doc.steps.map((s) => s.handler), ['app.step_1', 'app.step_2'])
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await testing.registerPattern(client, 'linear', { n: 2, handlerKey: 'app.{step}' })
  assert.deepEqual((await client.template('testkit', 'linear_2')).steps.map((s) => s.handlerKey), ['app.step_1', 'app.step_2'])
})

test('runUntilIdle on the system clock rejects with TimeoutError past timeoutMs', async (t) => {
  const client = await connect(t, 'memory:')
  await client.registerTemplate({ ...oneStep('later', 'w.later'), defaults: { retry: { max_attempts: 2, backoff: 'linear', base_ms: 60000 } } })
  await client.createTask('w', 'later')
  const worker = new Worker(client).handle('w.later', () => {
    throw new RetryableError('not yet')
  })
  await assert.rejects(worker.runUntilIdle({ timeoutMs: 200 }), (e) => e instanceof tc.TimeoutError && e.code === 'timeout')
})

test('events: a subscription is an async iterable of the engine events', async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  const sub = client.subscribe({ names: ['task'] })
  const { tasks: [task] } = await testing.linear(client, { n: 1 })
  await testing.runUntilIdle(client, { 'testkit.noop': () => ({}) })
  const names = []
  for await (const event of sub) {
    assert.equal(event.taskId, task.id)
    assert.ok(event.timestamp instanceof Date)
    names.push(event.name)
    if (event.name === 'task.completed') break
  }
  assert.deepEqual(names, ['task.created', 'task.started', 'task.completed'])
  assert.equal(sub.dropped, 0)
  const steps = client.subscribe({ taskId: task.id, names: ['step'] })
  assert.equal(await steps.next(10), null)
  assert.deepEqual(steps.drain(), [])
  assert.equal(steps.tryNext(), null)
})

test("the guide's testing example: the diamond completes after one retry, with no sleeping", async (t) => {
  const client = await connect(t, 'memory:', { clock: 'manual' })
  const { tasks } = await testing.diamond(client, { count: 2 })
  const report = await testing.runUntilIdle(client, {
    'testkit.noop': async (ctx) => {
      if (ctx.stepName === 'left' && ctx.attempt === 1) throw new RetryableError('flaky', { retryAfterMs: 5000 })
      return { step: ctx.stepName }
    },
  })
  assert.equal(report.advancedMs, 5000)
  for (const task of tasks) assert.equal((await client.task(task.id)).state, 'complete')
})

test('RetryableError and PermanentError check their options; a bad one fails the step, not the worker', async (t) => {
  assert.throws(() => new RetryableError('x', { retryAfterMs: -1 }), TypeError)
  assert.throws(() => new RetryableError('x', { retryAfterMs: '5s' }), TypeError)
  assert.throws(() => new PermanentError('x', { code: 42 }), TypeError)
  const client = await connect(t, 'memory:', { clock: 'manual' })
  await client.registerTemplate(oneStep('odd', 'w.odd'))
  const task = await client.createTask('w', 'odd')
  const worker = new Worker(client).handle('w.odd', (ctx) => {
    if (ctx.attempt === 1) throw new RetryableError('soon', { retryAfterMs: 1500.4 })
    if (ctx.attempt === 2) throw new RetryableError('bad', { retryAfterMs: -5 })
    return { attempt: ctx.attempt }
  })
  const report = await worker.runUntilIdle()
  assert.equal(report.advancedMs, 1500)
  const trail = await client.transitions(task.id)
  const failures = trail.steps.filter((r) => r.toState === 'waiting_for_retry').map((r) => r.metadata.error_class)
  assert.deepEqual(failures, ['RetryableError', 'TypeError'])
  const [step] = await client.steps(task.id)
  assert.deepEqual([step.state, step.result], ['complete', { attempt: 3 }])
})
