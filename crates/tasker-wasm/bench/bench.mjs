// The wasm build's figures for docs/benchmarks.md, in Node (`node bench/bench.mjs`, after `cargo xtask package
// wasm` put the release module in pkg/): B1 no-op steps end to end on the memory store (2,000 × linear_4, one
// runUntilIdle with a no-op JS handler, batches of 32) and B2 explain of a 1,000-step task (parallel_998,
// fresh; 200 runs after 10 warm-ups). Prints one JSON line.
import { performance } from 'node:perf_hooks'
import { Engine, testing } from '../js/index.js'

const engine = await Engine.memory()
const created = performance.now()
const { tasks } = await testing.createPatternTasks(engine, 'linear', { n: 4, count: 2000 })
const createMs = performance.now() - created
const handlers = Object.fromEntries((await engine.templates())[0].steps.map((s) => [s.handlerKey, () => null]))
const started = performance.now()
const report = await engine.runUntilIdle(handlers, { batchSize: 32, timeoutMs: 600_000 })
const runMs = performance.now() - started
const counts = await engine.healthCounts()
if (report.completed !== tasks.length * 4) throw new Error(`expected ${tasks.length * 4} completions, found ${report.completed}`)

// The test kit's patterns stop at 500 branches; B2's parallel_998 is written out: start, 998 branches, join.
const branches = Array.from({ length: 998 }, (_, i) => ({ name: `b${i}`, handler: 'bench.noop', depends_on: ['start'] }))
await engine.registerTemplate({
  namespace: 'bench',
  name: 'parallel_998',
  version: '1.0.0',
  steps: [{ name: 'start', handler: 'bench.noop' }, ...branches, { name: 'join', handler: 'bench.noop', depends_on: branches.map((b) => b.name) }],
})
const wide = await engine.createTask('bench', 'parallel_998')
if ((await engine.steps(wide.id)).length !== 1000) throw new Error('parallel_998 has 1,000 steps')
for (let i = 0; i < 10; i++) await engine.explain(wide.id)
const times = []
for (let i = 0; i < 200; i++) {
  const t = performance.now()
  await engine.explain(wide.id)
  times.push(performance.now() - t)
}
times.sort((a, b) => a - b)
const pct = (p) => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))]
console.log(
  JSON.stringify({
    b1: { steps: report.completed, seconds: runMs / 1000, steps_per_s: report.completed / (runMs / 1000), create_ms: createMs },
    b2: { p50_ms: pct(50), p95_ms: pct(95), mean_ms: times.reduce((a, b) => a + b, 0) / times.length },
    health: counts.tasks ?? counts,
  }),
)
