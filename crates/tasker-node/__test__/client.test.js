'use strict'
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const tc = require('../lib/index.js')
const { Client, testing } = tc
const native = require('../lib/native')
const { stores, pgSkip, DIAMOND, tmpDir } = require('./helpers')

for (const [label, fresh] of stores()) {
  test(`client calls on ${label}`, pgSkip(fresh), async (t) => {
    const client = await Client.connect(fresh(), { clock: 'manual' })
    t.after(() => client.close())

    await t.test('registerTemplate takes an object or YAML text and is idempotent', async () => {
      const reg = await client.registerTemplate(DIAMOND)
      assert.equal(reg.created, true)
      assert.deepEqual(
        reg.template.steps.map((s) => [s.name, s.handlerKey, s.dependsOn]),
        [
          ['validate', 'shop.validate', []],
          ['charge', 'shop.charge', ['validate']],
          ['reserve', 'shop.reserve', ['validate']],
          ['ship', 'shop.ship', ['charge', 'reserve']],
        ],
      )
      const again = await client.registerTemplate(JSON.stringify(DIAMOND))
      assert.equal(again.created, false)
      assert.equal(again.template.id, reg.template.id)
      const yaml = 'namespace: y\nname: one\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: y.a\n'
      assert.equal((await client.registerTemplate(yaml)).template.namespace, 'y')
      assert.equal((await client.template('shop', 'order')).version, '1.0.0')
      assert.deepEqual(
        (await client.templates()).map((x) => `${x.namespace}/${x.name}`),
        ['shop/order', 'y/one'],
      )
    })

    let task
    await t.test('createTask returns a plain object: camelCased fields, string ids, Dates, null', async () => {
      task = await client.createTask('shop', 'order', {
        context: { orderId: 7, items: [{ sku: 'a' }] },
        idempotencyKey: 'order-7',
        tags: { team: 'shop' },
      })
      assert.equal(Object.getPrototypeOf(task), Object.prototype)
      assert.deepEqual(Object.keys(task), native.objects.Task)
      assert.match(task.id, /^[0-9a-f-]{36}$/)
      assert.equal(task.state, 'pending')
      assert.deepEqual(task.context, { orderId: 7, items: [{ sku: 'a' }] })
      assert.deepEqual(task.tags, { team: 'shop' })
      assert.equal(task.idempotencyKey, 'order-7')
      assert.equal(task.initiator, null)
      assert.ok(task.createdAt instanceof Date)
      assert.equal(task.createdAt.toISOString(), '2030-01-01T00:00:00.000Z')
      assert.equal(task.startedAt, null)
      assert.equal(task.stepsTotal, 4)
      const same = await client.createTask('shop', 'order', { context: { orderId: 7 }, idempotencyKey: 'order-7' })
      assert.equal(same.id, task.id)
      assert.deepEqual(await client.task(task.id), task)
    })

    await t.test('tasks, steps, explain, transitions and the analytics', async () => {
      assert.deepEqual((await client.tasks({ namespace: 'shop' })).map((x) => x.id), [task.id])
      assert.deepEqual(await client.tasks({ state: 'complete' }), [])
      const steps = await client.steps(task.id)
      assert.deepEqual(steps.map((s) => s.name), ['validate', 'charge', 'reserve', 'ship'])
      assert.deepEqual(Object.keys(steps[0]), native.objects.Step)
      assert.deepEqual(Object.keys(steps[0].retry), native.objects.RetryPolicy)
      assert.equal(steps[0].error, null)
      assert.deepEqual(await client.step(steps[0].id), steps[0])
      const explain = await client.explain(task.id)
      assert.deepEqual(
        explain.steps.map((s) => [s.name, s.ready, s.blockedBy]),
        [
          ['validate', true, []],
          ['charge', false, ['validate']],
          ['reserve', false, ['validate']],
          ['ship', false, ['charge', 'reserve']],
        ],
      )
      const trail = await client.transitions(task.id)
      assert.equal(trail.task[0].toState, 'pending')
      assert.equal(trail.steps.length, 4)
      const ctx = await client.executionContext(task.id)
      assert.equal(ctx.executionStatus, 'has_ready_steps')
      assert.deepEqual(
        (await client.dependencyLevels(task.id)).map((l) => [l.name, l.level]),
        [
          ['validate', 0],
          ['charge', 1],
          ['reserve', 1],
          ['ship', 2],
        ],
      )
      const counts = await client.healthCounts()
      assert.equal(counts.totalTasks, 1)
      assert.equal(counts.tasks.pending, 1)
      const metrics = await client.analyticsMetrics(new Date('2029-12-31T00:00:00Z'))
      assert.ok(metrics.since instanceof Date)
      assert.equal(metrics.tasksCompleted, 0)
      assert.deepEqual(await client.slowestSteps({ limit: 5 }), [])
      assert.deepEqual(await client.slowestTasks({ namespace: 'shop' }), [])
    })

    await t.test('operator actions: resolveStep, cancelTask, retryTask refused on a cancelled task', async () => {
      const steps = await client.steps(task.id)
      const resolved = await client.resolveStep(steps[0].id, { byHand: true })
      assert.equal(resolved.state, 'resolved_manually')
      assert.deepEqual(resolved.result, { byHand: true })
      const cancelled = await client.cancelTask(task.id, { reason: 'customer asked' })
      assert.equal(cancelled.state, 'cancelled')
      await assert.rejects(client.cancelTask(task.id), tc.InvalidTransitionError)
      // Retrying is for tasks in error (see the worker tests); a cancelled task stays cancelled.
      await assert.rejects(client.retryTask(task.id), (e) => {
        assert.ok(e instanceof tc.InvalidTransitionError)
        assert.deepEqual([e.details.entity, e.details.from, e.details.event], ['task', 'cancelled', 'retry'])
        return true
      })
    })

    await t.test('health, clock, validateOrRefresh', async () => {
      const h = client.health()
      assert.deepEqual(Object.keys(h), native.objects.ClientHealth)
      assert.equal(h.clock, 'manual')
      assert.equal(h.pid, process.pid)
      assert.ok(h.openedAt instanceof Date)
      assert.equal(client.now().toISOString(), '2030-01-01T00:00:00.000Z')
      assert.equal(client.advanceClock(1500).toISOString(), '2030-01-01T00:00:01.500Z')
      assert.equal(await client.validateOrRefresh(), false)
      assert.deepEqual(await client.reapExpiredLeases(), { retried: 0, failed: 0 })
    })
  })
}

test('a postgres URL password never reaches health or errors', async () => {
  await assert.rejects(
    Client.connect('postgres://tasker:s3cret-pw@127.0.0.1:1/nodb', { maxConnections: 1 }),
    (e) => e instanceof tc.TaskerError && !e.message.includes('s3cret-pw') && !JSON.stringify(e.details).includes('s3cret-pw'),
  )
})

test('runAt (a Date), delayMs and priority start tasks later and order claims; runTaskNow starts one early', async () => {
  const client = await Client.connect('memory:', { clock: 'manual' })
  try {
    await client.registerTemplate(DIAMOND)
    const start = new Date(client.now().getTime() + 5 * 60_000)
    const later = await client.createTask('shop', 'order', { runAt: start, priority: 7 })
    assert.deepEqual([later.priority, later.runAt, later.heldUntil], [7, start, start])
    const ex = await client.explain(later.id)
    assert.deepEqual(ex.scheduledFor, start)
    assert.equal(ex.steps[0].ready, false)
    assert.deepEqual(ex.steps[0].reasons, [`scheduled for ${start.toISOString().replace('.000Z', '+00:00')}`])
    const delayed = await client.createTask('shop', 'order', { delayMs: 90_000 })
    assert.equal(delayed.heldUntil.getTime(), client.now().getTime() + 90_000)
    const started = await client.runTaskNow(delayed.id)
    assert.equal(started.heldUntil, null)
    assert.equal((await client.explain(delayed.id)).steps[0].ready, true)
    for (const [options, path] of [
      [{ runAt: new Date(NaN) }, 'run_at'],
      [{ runAt: 'tomorrow' }, 'run_at'],
      [{ priority: 5000 }, 'priority'],
      [{ runAt: start, delayMs: 1000 }, 'delay_seconds'],
    ]) {
      await assert.rejects(
        client.createTask('shop', 'order', options),
        (e) => e instanceof tc.ValidationError && e.details.errors[0].path === path,
      )
    }
    assert.equal((await client.tasks()).length, 2)
    await client.cancelTask(later.id)
    await assert.rejects(client.runTaskNow(later.id), tc.InvalidTransitionError)
  } finally {
    await client.close()
  }
})

test('use after close rejects with ClosedError; close is idempotent; asyncDispose closes', async () => {
  const client = await Client.connect('memory:')
  await client.registerTemplate(DIAMOND)
  await client.close()
  await client.close()
  assert.equal(client.closed, true)
  await assert.rejects(client.tasks(), (e) => e instanceof tc.ClosedError && e.code === 'closed')
  await assert.rejects(client.createTask('shop', 'order'), tc.ClosedError)
  assert.throws(() => client.health(), tc.ClosedError)
  assert.throws(() => client.subscribe(), tc.ClosedError)
  assert.throws(() => client.workerSession(['shop.validate']), tc.ClosedError)
  // `await using c = await Client.connect(…)` calls this at the end of its block (Node 22+ syntax).
  const c = await Client.connect('memory:')
  assert.equal(typeof c[Symbol.asyncDispose], 'function')
  assert.equal(c.closed, false)
  await c[Symbol.asyncDispose]()
  assert.equal(c.closed, true)
})

test('wrong argument types: TypeError, or ValidationError with the field path', async (t) => {
  const client = await Client.connect('memory:')
  t.after(() => client.close())
  await client.registerTemplate(DIAMOND)
  assert.throws(() => client.task(42), { name: 'TypeError', message: 'taskId: expected a string id, found number' })
  assert.throws(() => client.createTask('shop', 'order', { idempotencyKy: 'x' }), TypeError)
  assert.throws(() => client.tasks('shop'), TypeError)
  await assert.rejects(client.task('not-a-uuid'), (e) => {
    assert.ok(e instanceof tc.ValidationError)
    assert.deepEqual(e.details.errors, [{ path: 'task_id', message: 'expected a UUID, found "not-a-uuid"' }])
    return true
  })
  const bad = [
    [{ items: [1, 2, new Map()] }, 'context.items[2]', 'expected a JSON value, found Map'],
    [{ n: NaN }, 'context.n', 'expected a JSON value, found NaN'],
    [{ f: () => 1 }, 'context.f', 'expected a JSON value, found function'],
    [{ b: 10n }, 'context.b', 'expected a JSON value, found bigint'],
    [{ c: new (class Money {})() }, 'context.c', 'expected a JSON value, found Money'],
  ]
  for (const [context, p, message] of bad) {
    await assert.rejects(client.createTask('shop', 'order', { context }), (e) => {
      assert.ok(e instanceof tc.ValidationError, String(e))
      assert.deepEqual(e.details.errors, [{ path: p, message }])
      return true
    })
  }
  await assert.rejects(client.tasks({ limit: 'ten' }), (e) => e instanceof tc.ValidationError && e.details.errors[0].path === 'filter.limit')
  await assert.rejects(client.registerTemplate(42), tc.ValidationError)
  await assert.rejects(client.analyticsMetrics('yesterday'), (e) => e instanceof tc.ValidationError && e.details.errors[0].path === 'since')
  assert.throws(() => client.advanceClock(5), (e) => e instanceof tc.ConfigurationError)
})

test('a cycle is a CycleDetectedError whose details name the path', async (t) => {
  const client = await Client.connect('memory:')
  t.after(() => client.close())
  const cyclic = {
    namespace: 'c',
    name: 'loop',
    version: '1.0.0',
    steps: [
      { name: 'a', handler: 'c.a', depends_on: ['b'] },
      { name: 'b', handler: 'c.b', depends_on: ['a'] },
    ],
  }
  await assert.rejects(client.registerTemplate(cyclic), (e) => {
    assert.ok(e instanceof tc.CycleDetectedError && e instanceof tc.TaskerError && e instanceof Error)
    assert.equal(e.code, 'cycle_detected')
    assert.ok(Array.isArray(e.details.path) && e.details.path.length >= 3)
    return true
  })
})

test('every error kind maps to its class, with code, details and the causes as a cause chain', () => {
  const codes = native.errorKinds.map((k) => k.code)
  assert.deepEqual(codes, [
    'validation',
    'not_found',
    'conflict',
    'invalid_transition',
    'stale_claim',
    'cycle_detected',
    'closed',
    'timeout',
    'database',
    'configuration',
    'handler',
    'internal',
  ])
  for (const { code, className } of native.errorKinds) {
    const e = native.errorOf(code)
    assert.ok(e instanceof tc[className], `${code} → ${className}`)
    assert.ok(e instanceof tc.TaskerError)
    assert.equal(e.name, className)
    assert.equal(e.code, code)
    assert.deepEqual(e.details, { k: 1 })
    assert.equal(e.message, 'outer')
    assert.equal(e.cause.message, 'inner')
    assert.equal(tc.errorClass(code), tc[className])
  }
})

test('the event loop stays free while a claim waits', async (t) => {
  const client = await Client.connect('memory:')
  t.after(() => client.close())
  await client.registerTemplate(DIAMOND)
  const session = client.workerSession(['shop.validate'], { maintenanceIntervalMs: 0 })
  let ticks = 0
  const timer = setInterval(() => ticks++, 5)
  // Nothing is ready, so the claim waits its full 300 ms on the engine's threads.
  const claimed = await session.nextBatch(1, 300)
  clearInterval(timer)
  session.shutdown()
  assert.deepEqual(claimed, [])
  assert.ok(ticks >= 5, `the timer fired ${ticks} times while the claim waited`)
})

test('a SQLite file keeps tasks across clients', async (t) => {
  const url = `sqlite://${path.join(tmpDir(), 'keep.db')}`
  let id
  const c = await Client.connect(url)
  await c.registerTemplate(DIAMOND)
  id = (await c.createTask('shop', 'order')).id
  await c.close()
  const again = await Client.connect(url)
  t.after(() => again.close())
  assert.equal((await again.task(id)).id, id)
  await assert.rejects(again.task('01a23468-a9c0-7796-969a-d176ab54400e'), tc.NotFoundError)
})
