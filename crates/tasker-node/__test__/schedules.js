'use strict'
// Cron schedules through the client, one set of node:test checks for both JS bindings (as host_mistakes.js):
// @tasker/core runs it from schedules.test.js on every store, and @tasker/wasm from its own
// __test__/schedules.test.js on its memory engine. They mirror tasker-shared-ffi's
// tests/suite/client.rs (`schedules_fire_one_task_per_occurrence_and_are_managed_by_name` and
// `bad_schedules_are_typed_errors_naming_the_field_and_write_nothing`) on the manual clock, which starts at
// 2030-01-01T00:00:00Z.
const test = require('node:test')
const assert = require('node:assert/strict')

const TEMPLATE = {
  namespace: 'shop',
  name: 'order',
  version: '1.0.0',
  steps: [
    { name: 'validate', handler: 'shop.validate' },
    { name: 'ship', handler: 'shop.ship', depends_on: ['validate'] },
  ],
}

/**
 * Registers the checks for a package's `{ Client, ValidationError, NotFoundError, … }`. `objects` holds the
 * camelCased fields of every object; `stores` is `[label, () => fresh url]` (a null url function skips it with
 * the reason), memory only when absent.
 */
function define(api, { objects, stores = [['memory', () => 'memory:']], skip = () => ({}) } = {}) {
  const { Client } = api
  const connect = async (t, url) => {
    const client = await Client.connect(url, { clock: 'manual' })
    t.after(() => client.close())
    await client.registerTemplate(TEMPLATE)
    return client
  }

  for (const [label, fresh] of stores) {
    test(`schedules fire one task per occurrence and are managed by name (${label})`, skip(fresh), async (t) => {
      const client = await connect(t, fresh())
      const start = client.now()
      const minute = (n) => new Date(start.getTime() + n * 60_000)
      const options = { context: { order: 1 }, priority: 3 }

      const s = await client.registerSchedule('orders', 'shop', 'order', '* * * * *', options)
      assert.equal(Object.getPrototypeOf(s), Object.prototype)
      assert.deepEqual(Object.keys(s), objects.Schedule)
      assert.deepEqual(
        [s.name, s.namespace, s.template, s.version, s.cron, s.timezone, s.misfire, s.priority, s.paused],
        ['orders', 'shop', 'order', null, '* * * * *', 'UTC', 'skip', 3, false],
      )
      assert.deepEqual(s.context, { order: 1 })
      assert.deepEqual([s.nextFireAt, s.lastFireAt, s.lastTaskId, s.fired, s.missed, s.lastError], [minute(1), null, null, 0, 0, null])
      assert.ok(s.nextFireAt instanceof Date && s.createdAt instanceof Date && s.updatedAt instanceof Date)
      const again = await client.registerSchedule('orders', 'shop', 'order', '* * * * *', options)
      assert.deepEqual(again, s, 'an unchanged definition is left as it is')
      assert.equal((await client.fireSchedules()).fired, 0, 'nothing is due yet')

      client.advanceClock(60_000)
      const report = await client.fireSchedules()
      assert.deepEqual(Object.keys(report), objects.ScheduleReport)
      assert.deepEqual(report, { fired: 1, missed: 0, failed: 0, nextFireAt: minute(2) })
      assert.equal((await client.fireSchedules()).fired, 0, 'one task per occurrence')
      const fired = await client.schedule('orders')
      assert.deepEqual([fired.fired, fired.lastFireAt], [1, minute(1)])
      assert.match(fired.lastTaskId, /^[0-9a-f-]{36}$/)
      const task = await client.task(fired.lastTaskId)
      assert.deepEqual([task.priority, task.context, task.initiator], [3, { order: 1 }, 'schedule:orders'])
      assert.deepEqual((await client.tasks({ namespace: 'shop' })).map((x) => x.id), [task.id])
      const ex = await client.explain(task.id)
      assert.deepEqual([ex.schedule, ex.scheduleNextFireAt], ['orders', minute(2)])

      const paused = await client.pauseSchedule('orders')
      assert.deepEqual([paused.paused, paused.nextFireAt], [true, null])
      assert.equal((await client.explain(task.id)).scheduleNextFireAt, null)
      client.advanceClock(120_000)
      assert.equal((await client.fireSchedules()).fired, 0, 'a paused schedule fires nothing')
      const resumed = await client.resumeSchedule('orders')
      assert.deepEqual([resumed.paused, resumed.nextFireAt], [false, minute(4)])
      assert.deepEqual(await client.schedules(), [resumed])

      const removed = await client.removeSchedule('orders')
      assert.equal(removed.fired, 1)
      assert.deepEqual(await client.schedules(), [])
      await assert.rejects(client.schedule('orders'), (e) => e instanceof api.NotFoundError && e.code === 'not_found')
      await assert.rejects(client.removeSchedule('orders'), api.NotFoundError)
      assert.equal((await client.explain(task.id)).schedule, null)
      assert.equal((await client.task(task.id)).state, 'pending', 'its tasks stay')
    })
  }

  test('bad schedules are ValidationErrors naming the field, unknown options are refused, nothing is written', async (t) => {
    const client = await connect(t, 'memory:')
    const every = '* * * * *'
    for (const [cron, options, path] of [
      ['61 * * * *', {}, 'cron'],
      [every, { timezone: 'Mars/Olympus' }, 'timezone'],
      [every, { misfire: 'never' }, 'misfire'],
      [every, { priority: 2 ** 40 }, 'priority'],
      [every, { priority: 5000 }, 'priority'],
      [every, { context: [1] }, 'context'],
      [every, { context: { at: new Map() } }, 'context.at'],
      [every, { timezone: 7 }, 'timezone'],
    ]) {
      await assert.rejects(client.registerSchedule('s', 'shop', 'order', cron, options), (e) => {
        assert.ok(e instanceof api.ValidationError, `${JSON.stringify(options)}: ${e}`)
        assert.equal(e.code, 'validation')
        assert.equal(e.details.errors[0].path, path, e.message)
        return true
      })
    }
    // A misspelt option would otherwise be dropped, and a schedule registered that is not the one meant.
    assert.throws(() => client.registerSchedule('s', 'shop', 'order', every, { timeZone: 'UTC' }), {
      name: 'TypeError',
      message: 'options: unknown option "timeZone"',
    })
    assert.throws(() => client.registerSchedule('s', 'shop', 'order', 5), { name: 'TypeError', message: 'cron: expected a cron expression string, found number' })
    assert.throws(() => client.registerSchedule('s', 'shop', 'order', every, 'daily'), TypeError)
    assert.throws(() => client.pauseSchedule(1), TypeError)
    await assert.rejects(client.registerSchedule('s', 'shop', 'missing', every), api.NotFoundError)
    assert.deepEqual(await client.schedules(), [], 'bad input writes nothing')
    await assert.rejects(client.pauseSchedule('s'), api.NotFoundError)
    await assert.rejects(client.resumeSchedule('s'), api.NotFoundError)
    assert.deepEqual(await client.fireSchedules(), { fired: 0, missed: 0, failed: 0, nextFireAt: null })
  })

  test('a schedule reads its cron in its time zone, and run_once makes one task for missed occurrences', async (t) => {
    const client = await connect(t, 'memory:')
    // 02:00 in Berlin on 2030-01-01 (UTC+1 in winter) is 01:00 UTC.
    const berlin = await client.registerSchedule('nightly', 'shop', 'order', '0 2 * * *', {
      timezone: 'Europe/Berlin',
      misfire: 'run_once',
      version: '1.0.0',
    })
    assert.deepEqual([berlin.timezone, berlin.misfire, berlin.version], ['Europe/Berlin', 'run_once', '1.0.0'])
    assert.deepEqual(berlin.nextFireAt, new Date('2030-01-01T01:00:00Z'))
    client.advanceClock(3 * 24 * 3_600_000)
    assert.deepEqual(await client.fireSchedules(), { fired: 1, missed: 3, failed: 0, nextFireAt: new Date('2030-01-04T01:00:00Z') })
    const s = await client.schedule('nightly')
    assert.deepEqual([s.fired, s.missed, s.lastFireAt], [1, 3, new Date('2030-01-03T01:00:00Z')])
  })
}

module.exports = { define }
