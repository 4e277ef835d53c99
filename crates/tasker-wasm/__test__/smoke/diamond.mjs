// Run from an empty folder where the packed tarball was installed: a diamond workflow on the wasm engine from
// plain `node`, one step failing once, to completion.
import assert from 'node:assert/strict'
import { Engine, RetryableError, version } from '@tasker/wasm'

const engine = await Engine.memory({ clock: 'manual' })
await engine.registerTemplate(`namespace: smoke
name: diamond
version: 1.0.0
steps:
  - { name: start, handler: smoke.start }
  - { name: left, handler: smoke.left, depends_on: [start] }
  - { name: right, handler: smoke.right, depends_on: [start] }
  - { name: join, handler: smoke.join, depends_on: [left, right] }
`)
const task = await engine.createTask('smoke', 'diamond', { context: { n: 2 } })
let flaky = true
const report = await engine.runUntilIdle({
  'smoke.start': (ctx) => ({ n: ctx.context.n }),
  'smoke.left': (ctx) => {
    if (flaky) {
      flaky = false
      throw new RetryableError('once')
    }
    return { v: ctx.dependencyResults.start.n + 1 }
  },
  'smoke.right': async (ctx) => ({ v: ctx.dependencyResults.start.n * 10 }),
  'smoke.join': (ctx) => ({ sum: ctx.dependencyResults.left.v + ctx.dependencyResults.right.v }),
})
assert.equal((await engine.task(task.id)).state, 'complete')
const join = (await engine.steps(task.id)).find((s) => s.name === 'join')
assert.deepEqual(join.result, { sum: 23 })
assert.equal(report.completed, 4)
console.log(`@tasker/wasm ${version}: diamond complete, ${report.calls.length} handler calls, clock moved ${report.advancedMs} ms`)
