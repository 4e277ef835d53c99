'use strict'
// Replays every tests/scenarios/*.yaml through the Node client and worker (docs/bindings.md §9), on memory,
// SQLite (memory and file) and, with TASKER_TEST_PG_URL, PostgreSQL.
const test = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const api = require('../lib/index.js')
const { run, ScenarioFailed } = require('./scenario_runner').use(api)

const { testing } = api
const { SCENARIO_DIR, stores, pgSkip } = require('./helpers')

const FILES = testing.scenarioFiles(SCENARIO_DIR)

test('the scenario directory is not empty', () => {
  assert.ok(FILES.length >= 10, `expected the scenario files in ${SCENARIO_DIR}`)
})

for (const [label, fresh] of stores()) {
  test(`every scenario on ${label}`, pgSkip(fresh), async (t) => {
    for (const file of FILES) {
      await t.test(path.basename(file, '.yaml'), async () => {
        await run(testing.loadScenario(file), fresh())
      })
    }
  })
}

test('the runner reports every difference', async () => {
  // The replay is only worth something if a wrong expectation fails it, with the place named.
  const scenario = testing.loadScenario(path.join(SCENARIO_DIR, 'linear_success.yaml'))
  const task = Object.values(scenario.expect.tasks)[0]
  task.state = 'error'
  if (task.events) task.events = task.events.slice(0, -1)
  await assert.rejects(run(scenario, 'memory:'), (e) => {
    assert.ok(e instanceof ScenarioFailed)
    assert.match(e.message, /\.state: expected error, found complete/)
    if (task.events) assert.match(e.message, /sequences differ/)
    assert.match(e.message, /observed:/)
    return true
  })
})

test('the runner reports a wrong schedule expectation, comparing times as instants', async () => {
  const scenario = testing.loadScenario(path.join(SCENARIO_DIR, 'cron_schedule.yaml'))
  const step = (name) => scenario.script.find((a) => a[name]?.expect != null || a[name]?.every_minute != null)[name]
  // The same instant in another offset still holds; a different one, or a wrong count, does not.
  step('register_schedule').expect.next_fire_at = '2030-01-01T01:01:00+01:00'
  step('check_schedules').every_minute.next_fire_at = '2030-01-01T00:03:00Z'
  step('pause_schedule').expect.next_fire_at = '2030-01-01T00:03:00Z'
  scenario.script.find((a) => a.fire_schedules?.tasks?.first).fire_schedules.expect_fired = 2
  await assert.rejects(run(scenario, 'memory:'), (e) => {
    assert.ok(e instanceof ScenarioFailed)
    assert.doesNotMatch(e.message, /register_schedule\.next_fire_at/)
    assert.match(e.message, /check_schedules\.every_minute\.next_fire_at: expected 2030-01-01T00:03:00\.000Z, found 2030-01-01T00:02:00\.000Z/)
    assert.match(e.message, /pause_schedule\.next_fire_at: expected 2030-01-01T00:03:00\.000Z, found none/)
    assert.match(e.message, /fire_schedules: expected fired 2, found 1/)
    return true
  })
})
