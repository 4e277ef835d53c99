'use strict'
// The host mistakes of docs/bindings.md §6, one set of node:test checks for both JS bindings: a result JSON
// cannot hold (a cycle, nesting past MAX_JSON_DEPTH, a bigint, a function, a symbol, …), a handler key with
// no handler, a handler past its timeout, and calls on a closed client. @tasker/core runs it from
// host_mistakes.test.js and @tasker/wasm from its own __test__/host_mistakes.test.js, so the two bindings
// are held to the same answer by construction.
const test = require('node:test')
const assert = require('node:assert/strict')

/** `depth` arrays one inside another, the innermost holding 1. */
const nested = (depth) => {
  let v = 1
  for (let i = 0; i < depth; i++) v = [v]
  return v
}

const cyclic = () => {
  const a = { name: 'a' }
  a.self = a
  return a
}

class Point {
  constructor() {
    this.x = 1
  }
}

const deep = /^result(\[0\]){127}: expected a JSON value nested at most 127 levels deep, found a deeper one$/

/** [name, handler result, the step's error message (InvalidResult, not retried)]. */
const BAD_RESULTS = [
  ['bigint', () => ({ n: 1n }), 'result.n: expected a JSON value, found bigint'],
  ['top_bigint', () => 10n, 'result: expected a JSON value, found bigint'],
  ['function', () => ({ f: () => 1 }), 'result.f: expected a JSON value, found function'],
  ['symbol', () => ({ s: Symbol('x') }), 'result.s: expected a JSON value, found symbol'],
  ['map', () => ({ m: new Map() }), 'result.m: expected a JSON value, found Map'],
  ['nan', () => ({ n: NaN }), 'result.n: expected a JSON value, found NaN'],
  ['instance', () => ({ p: new Point() }), 'result.p: expected a JSON value, found Point'],
  ['cyclic', cyclic, 'result.self: expected a JSON value, found a cycle back to result'],
  ['cyclic_array', () => {
    const a = [1]
    a.push({ back: a })
    return a
  }, 'result[1].back: expected a JSON value, found a cycle back to result'],
  ['cyclic_below', () => ({ ok: 1, inner: { list: [cyclic()] } }), 'result.inner.list[0].self: expected a JSON value, found a cycle back to result.inner.list[0]'],
  ['deep', () => nested(200), deep],
]

/** [name, handler result, the step's result]. */
const GOOD_RESULTS = [
  ['undefined', () => undefined, null],
  ['date', () => ({ at: new Date(0), skipped: undefined }), { at: '1970-01-01T00:00:00.000Z' }],
  ['limit', () => nested(127), nested(127)],
  ['shared', () => {
    const x = { v: 1 }
    return { a: x, b: [x, x] }
  }, { a: { v: 1 }, b: [{ v: 1 }, { v: 1 }] }],
]

const template = (name, steps, extra = {}) => ({
  namespace: 'mistakes',
  name,
  version: '1.0.0',
  defaults: { retry: { max_attempts: 3, backoff: 'none' } },
  steps,
  ...extra,
})

/** Asserts that `call()` throws or rejects with `Cls`. */
async function refuses(call, Cls, what) {
  let outcome
  try {
    outcome = await call()
  } catch (e) {
    assert.ok(e instanceof Cls, `${what}: expected ${Cls.name}, got ${e?.constructor?.name}: ${e?.message}`)
    return e
  }
  assert.fail(`${what}: expected ${Cls.name}, but it gave ${JSON.stringify(outcome)}`)
}

/** Registers the checks for a package's `{ Client, Worker, testing, ValidationError, ClosedError, … }`. */
function define(api) {
  const { Client, Worker, testing } = api
  const connect = async (t, options) => {
    const client = await Client.connect('memory:', options)
    t.after(() => client.close())
    return client
  }

  test('a result JSON cannot hold fails its step once as InvalidResult, naming the field path', async (t) => {
    const client = await connect(t, { clock: 'manual' })
    const cases = [...BAD_RESULTS, ...GOOD_RESULTS]
    await client.registerTemplate(template('results', cases.map(([name]) => ({ name, handler: `r.${name}` }))))
    const task = await client.createTask('mistakes', 'results')
    const handlers = Object.fromEntries(cases.map(([name, fn]) => [`r.${name}`, fn]))
    const report = await testing.runUntilIdle(client, handlers)
    const steps = Object.fromEntries((await client.steps(task.id)).map((s) => [s.name, s]))
    for (const [name, , message] of BAD_RESULTS) {
      const { state, attempts, error } = steps[name]
      assert.deepEqual([state, attempts, error.errorClass, error.code, error.retryable], ['error', 1, 'InvalidResult', 'invalid_result', false], name)
      if (typeof message === 'string') assert.equal(error.message, message, name)
      else assert.match(error.message, message, name)
      assert.equal(report.calls.find((c) => c.stepName === name).outcome, 'fail_permanent', name)
    }
    for (const [name, , result] of GOOD_RESULTS) {
      assert.deepEqual([steps[name].state, steps[name].result], ['complete', result], name)
    }
    assert.equal((await client.task(task.id)).state, 'error')
  })

  test('a cyclic or too deeply nested argument is a ValidationError and nothing is written', async (t) => {
    const client = await connect(t, { clock: 'manual' })
    await client.registerTemplate(template('args', [{ name: 'work', handler: 'a.work' }]))
    const deepContext = { items: nested(200) }
    let e = await refuses(() => client.createTask('mistakes', 'args', { context: deepContext }), api.ValidationError, 'deep context')
    assert.equal(e.code, 'validation')
    assert.match(e.details.errors[0].path, /^context\.items(\[0\]){126}$/)
    assert.match(e.details.errors[0].message, /nested at most 127 levels deep/)
    e = await refuses(() => client.createTask('mistakes', 'args', { context: cyclic() }), api.ValidationError, 'cyclic context')
    assert.deepEqual(e.details.errors[0], { path: 'context.self', message: 'expected a JSON value, found a cycle back to context' })
    assert.deepEqual(await client.tasks(), [], 'no task was written')
    const doc = template('cyclic_doc', [{ name: 'work', handler: 'a.work' }])
    doc.steps[0].config = cyclic()
    await refuses(() => client.registerTemplate(doc), api.ValidationError, 'cyclic template')
    assert.equal((await client.templates()).length, 1, 'no template was written')
    // The limit counts the context's own levels: 127, as for a result.
    const task = await client.createTask('mistakes', 'args', { context: { depth: nested(126) } })
    assert.deepEqual(task.context, { depth: nested(126) })
    const [step] = await client.steps(task.id)
    await refuses(() => client.resolveStep(step.id, cyclic()), api.ValidationError, 'cyclic resolveStep result')
    assert.equal((await client.step(step.id)).state, 'pending')
  })

  test('a step whose key has no handler is claimed only when listed, then fails as HandlerMissing and is retried', async (t) => {
    const client = await connect(t, { clock: 'manual' })
    await client.registerTemplate(template('missing', [{ name: 'here', handler: 'm.here' }, { name: 'gone', handler: 'm.gone' }]))
    const task = await client.createTask('mistakes', 'missing')
    // Only the keys given are claimed: the other step waits for a worker that has its handler.
    const first = await testing.runUntilIdle(client, { 'm.here': () => ({ ok: true }) })
    assert.deepEqual(first.calls.map((c) => c.stepName), ['here'])
    let steps = Object.fromEntries((await client.steps(task.id)).map((s) => [s.name, s]))
    assert.deepEqual([steps.here.state, steps.gone.state, steps.gone.attempts], ['complete', 'pending', 0])
    // A worker that claims a key it has no handler for reports it missing, a retryable failure.
    const worker = new Worker(client, { handlerKeys: ['m.gone'] }).handle('m.here', () => ({}))
    const report = await worker.runUntilIdle({ autoAdvanceClock: false })
    assert.deepEqual(report.calls.map((c) => c.outcome), ['fail_retryable', 'fail_retryable', 'fail_retryable'])
    steps = Object.fromEntries((await client.steps(task.id)).map((s) => [s.name, s]))
    const { state, attempts, error } = steps.gone
    assert.deepEqual([state, attempts, error.errorClass, error.retryable], ['error', 3, 'HandlerMissing', true])
    assert.ok(error.message.includes('"m.gone"'), error.message)
  })

  test('a handler past timeout_seconds fails with timeout and its late outcome is rejected', async (t) => {
    const client = await connect(t)
    await client.registerTemplate(
      template('slow', [{ name: 'work', handler: 's.slow', timeout_seconds: 1 }], { defaults: { retry: { max_attempts: 2, backoff: 'none' } } }),
    )
    const task = await client.createTask('mistakes', 'slow')
    const worker = new Worker(client, { concurrency: 2, claimWaitMs: 50 })
    worker.handle('s.slow', () => new Promise((resolve) => setTimeout(() => resolve({ late: true }), 1500)))
    const controller = new AbortController()
    const running = worker.run({ signal: controller.signal, handleSignals: false })
    const deadline = Date.now() + 20000
    while ((await client.task(task.id)).state !== 'error') {
      assert.ok(Date.now() < deadline, 'timed out waiting for the task to fail')
      await new Promise((r) => setTimeout(r, 20))
    }
    controller.abort()
    const stats = await running
    const [step] = await client.steps(task.id)
    assert.deepEqual([step.state, step.attempts], ['error', 2])
    assert.deepEqual([step.error.errorClass, step.error.code, step.error.retryable], ['TimeoutError', 'timeout', true])
    assert.deepEqual([stats.timedOut, stats.late, stats.rejected], [2, 2, 2])
  })

  test('finishMany answers each outcome alone: a stale or malformed one is its own error, the rest are written', async (t) => {
    const client = await connect(t, { clock: 'manual' })
    const { tasks: [task] } = await testing.parallel(client, { n: 2 })
    const session = client.workerSession(['testkit.noop'], { heartbeatIntervalMs: 0, maintenanceIntervalMs: 0 })
    t.after(() => session.shutdown())
    assert.deepEqual(session.handlerKeys, ['testkit.noop'])
    const [start] = await session.claim(1, 0)
    await session.complete(start.token.stepId, start.token.attempt, { started: true })
    const [left, right] = await session.claim(2, 0)
    const answers = await session.finishMany([
      { step_id: left.token.stepId, attempt: left.token.attempt, success: { side: 'left' } },
      { step_id: right.token.stepId, attempt: right.token.attempt + 1, success: {} },
      { step_id: 'not-a-uuid', attempt: 1, success: {} },
      { step_id: right.token.stepId, attempt: right.token.attempt, failure: { kind: 'permanent', message: 'no', code: 'nope' } },
    ])
    assert.deepEqual(answers.map((a) => a.constructor.name), ['Object', 'StaleClaimError', 'ValidationError', 'Object'])
    assert.deepEqual([answers[0].state, answers[0].result], ['complete', { side: 'left' }])
    assert.deepEqual([answers[3].state, answers[3].error.code], ['error', 'nope'])
    await refuses(() => session.finishMany([{ step_id: left.token.stepId }]), api.ValidationError, 'an outcome with no attempt')
    assert.equal((await client.task(task.id)).state, 'error')
  })

  test('every call on a closed client is a ClosedError, and close stays idempotent', async () => {
    const client = await Client.connect('memory:', { clock: 'manual' })
    await client.registerTemplate(template('closed', [{ name: 'work', handler: 'c.work' }]))
    const task = await client.createTask('mistakes', 'closed')
    const [step] = await client.steps(task.id)
    const session = client.workerSession(['c.work'])
    const worker = new Worker(client).handle('c.work', () => ({}))
    await client.close()
    await client.close()
    assert.equal(client.closed, true)
    const calls = {
      registerTemplate: () => client.registerTemplate(template('later', [{ name: 'w', handler: 'c.w' }])),
      templates: () => client.templates(),
      createTask: () => client.createTask('mistakes', 'closed'),
      task: () => client.task(task.id),
      tasks: () => client.tasks(),
      steps: () => client.steps(task.id),
      step: () => client.step(step.id),
      explain: () => client.explain(task.id),
      transitions: () => client.transitions(task.id),
      cancelTask: () => client.cancelTask(task.id),
      retryTask: () => client.retryTask(task.id),
      resolveStep: () => client.resolveStep(step.id, {}),
      executionContext: () => client.executionContext(task.id),
      dependencyLevels: () => client.dependencyLevels(task.id),
      healthCounts: () => client.healthCounts(),
      reapExpiredLeases: () => client.reapExpiredLeases(),
      advanceClock: () => client.advanceClock(1000),
      subscribe: () => client.subscribe(),
      workerSession: () => client.workerSession(['c.work']),
      'session.nextBatch': () => session.nextBatch(1, 0),
      'session.claim': () => session.claim(1, 0),
      'worker.session': () => worker.session,
      'worker.runUntilIdle': () => worker.runUntilIdle(),
      'worker.run': () => worker.run({ handleSignals: false }),
      'testing.runUntilIdle': () => testing.runUntilIdle(client, { 'c.work': () => ({}) }),
      'testing.createPatternTasks': () => testing.createPatternTasks(client, 'linear', { n: 2 }),
    }
    for (const [what, call] of Object.entries(calls)) {
      const e = await refuses(call, api.ClosedError, what)
      assert.equal(e.code, 'closed', what)
    }
  })
}

module.exports = { define }
