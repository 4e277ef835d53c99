'use strict'
// The test kit: factory workflows (linear, diamond, parallel, tree, mixed), `runUntilIdle` with real JS
// handlers, and scripted (Rust) handlers. For users' tests as well as ours:
//
//     const made = await testing.diamond(client, { count: 2 })     // made.template, made.tasks
//     const report = await testing.runUntilIdle(client, { 'testkit.noop': async () => ({}) })
const native = require('./native')
const { Client } = require('./client')
const { Worker, OverrunLease } = require('./worker')
const { expect } = require('./errors')

/** A pattern spec for the engine: `{ pattern, n, depth, fanout, namespace, handlerKey, retry }`. */
function spec(pattern, { n, depth, fanout, namespace, handlerKey, retry } = {}) {
  expect(typeof pattern === 'string', 'pattern', 'a string', pattern)
  return { pattern, n, depth, fanout, namespace, handler_key: handlerKey, retry }
}

const handle = (client) => {
  expect(client instanceof Client, 'client', 'a Client', client)
  return client.native
}

/** The template document of a pattern, without registering it. */
function patternTemplate(pattern, options) {
  return native.patternTemplate(spec(pattern, options))
}

/** Registers the template of a pattern (idempotently). */
function registerPattern(client, pattern, options) {
  return native.registerPattern(handle(client), spec(pattern, options))
}

/** Registers a pattern and creates `count` tasks of it with `context`; resolves to `{ template, tasks }`. */
function createPatternTasks(client, pattern, { count = 1, context, ...options } = {}) {
  return native.createPatternTasks(handle(client), spec(pattern, options), count, context ?? null)
}

const linear = (client, { n = 3, ...o } = {}) => createPatternTasks(client, 'linear', { n, ...o })
const diamond = (client, o = {}) => createPatternTasks(client, 'diamond', o)
const parallel = (client, { n = 3, ...o } = {}) => createPatternTasks(client, 'parallel', { n, ...o })
const tree = (client, { depth = 2, fanout = 2, ...o } = {}) => createPatternTasks(client, 'tree', { depth, fanout, ...o })
const mixed = (client, o = {}) => createPatternTasks(client, 'mixed', o)

/**
 * Runs scripted handlers (in Rust, no JS code) until idle: `script` maps a step name or handler key to the
 * outcomes per attempt (`{ succeed: … }`, `{ fail_retryable: {…} }`, `{ fail_permanent: {…} }`,
 * `"overrun_lease"`). Options: `handlerKeys`, `batchSize`, `maxClaims`, `timeoutMs`, `autoAdvanceClock`,
 * `leaseMs`.
 */
function runScripted(client, script, { handlerKeys, batchSize, maxClaims, timeoutMs, autoAdvanceClock, leaseMs } = {}) {
  return native.runScripted(handle(client), script, {
    handler_keys: handlerKeys,
    batch_size: batchSize,
    max_claims: maxClaims,
    timeout_ms: timeoutMs,
    auto_advance_clock: autoAdvanceClock,
    lease_ms: leaseMs,
  })
}

/**
 * Runs `handlers` (handler key → async function) until nothing is left to do; see `Worker#runUntilIdle`.
 * Maintenance is off, so only this call moves work along.
 */
async function runUntilIdle(client, handlers, { leaseMs, ...options } = {}) {
  const worker = new Worker(client, { concurrency: 1, workerId: 'testkit', leaseMs, maintenanceIntervalMs: 0 })
  for (const [key, fn] of Object.entries(handlers)) worker.handle(key, fn)
  try {
    return await worker.runUntilIdle(options)
  } finally {
    worker.stop()
  }
}

module.exports = {
  patternTemplate,
  registerPattern,
  createPatternTasks,
  linear,
  diamond,
  parallel,
  tree,
  mixed,
  runScripted,
  runUntilIdle,
  OverrunLease,
  scriptOutcome: native.scriptOutcome,
  scenarioFiles: native.scenarioFiles,
  loadScenario: native.loadScenario,
  jsonContains: native.jsonContains,
}
