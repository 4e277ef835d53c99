// Replays every tests/scenarios/*.yaml on the wasm build's memory engine, with real JS handlers that follow
// each file's script (docs/bindings.md §9), through the same runner as @tasker/core.
import test from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { testing } from '../js/index.js'
import { SCENARIO_DIR, runner, scenarioFiles } from './helpers.js'

const load = (file) => testing.loadScenario(readFileSync(file, 'utf8'), path.basename(file))
const FILES = scenarioFiles()

test('the scenario directory is not empty', () => {
  assert.ok(FILES.length >= 10, `expected the scenario files in ${SCENARIO_DIR}`)
})

test('every scenario on memory (wasm)', async (t) => {
  for (const file of FILES) {
    await t.test(path.basename(file, '.yaml'), async () => {
      await runner.run(load(file), 'memory:')
    })
  }
})

test('the runner reports every difference', async () => {
  const scenario = load(path.join(SCENARIO_DIR, 'linear_success.yaml'))
  const task = Object.values(scenario.expect.tasks)[0]
  task.state = 'error'
  await assert.rejects(runner.run(scenario, 'memory:'), (e) => {
    assert.ok(e instanceof runner.ScenarioFailed)
    assert.match(e.message, /\.state: expected error, found complete/)
    assert.match(e.message, /observed:/)
    return true
  })
})

test('a malformed scenario is refused by the reference parser, naming the file', () => {
  assert.throws(
    () => testing.loadScenario('name: x\ndescription: y\nsurprise: 1\n', 'bad.yaml'),
    (e) => e.code === 'validation' && /bad\.yaml/.test(e.message),
  )
})
