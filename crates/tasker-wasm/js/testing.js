// The test kit (docs/bindings.md §8), as @tasker/core's `testing`: factory workflows (linear, diamond,
// parallel, tree, mixed) registered in an engine, tasks of them, scripted handlers run until idle, and the
// scenario helpers the replay of tests/scenarios uses.
import native from './native.js'
import { Engine } from './engine.js'
import { expect } from './errors.js'

function spec(pattern, { n, depth, fanout, namespace, handlerKey, retry } = {}) {
  expect(typeof pattern === 'string', 'pattern', 'a pattern name', pattern)
  return { pattern, n, depth, fanout, namespace, handler_key: handlerKey, retry }
}

function handle(engine) {
  expect(engine instanceof Engine, 'engine', 'an Engine', engine)
  return engine.native
}

/** The template document of a factory pattern, as an object. */
export const patternTemplate = (pattern, options) => native.patternTemplate(spec(pattern, options))

/** Registers a factory pattern's template; resolves to its `Registration`. */
export const registerPattern = (engine, pattern, options) => native.registerPattern(handle(engine), spec(pattern, options))

/** Registers a pattern and creates `count` tasks of it; resolves to a `PatternTasks`. */
export function createPatternTasks(engine, pattern, { count = 1, context, ...options } = {}) {
  return native.createPatternTasks(handle(engine), spec(pattern, options), count, context ?? null)
}

export const linear = (engine, { n = 3, ...o } = {}) => createPatternTasks(engine, 'linear', { n, ...o })
export const diamond = (engine, o = {}) => createPatternTasks(engine, 'diamond', o)
export const parallel = (engine, { n = 3, ...o } = {}) => createPatternTasks(engine, 'parallel', { n, ...o })
export const tree = (engine, { depth = 2, fanout = 2, ...o } = {}) => createPatternTasks(engine, 'tree', { depth, fanout, ...o })
export const mixed = (engine, o = {}) => createPatternTasks(engine, 'mixed', o)

/** Runs *scripted* handlers until idle (`{ step: [{ succeed: … }, { fail_retryable: … }] }`); a `RunReport`. */
export function runScripted(engine, script, { handlerKeys, batchSize, maxClaims, timeoutMs, autoAdvanceClock, leaseMs } = {}) {
  return native.runScripted(handle(engine), script, {
    handler_keys: handlerKeys,
    batch_size: batchSize,
    max_claims: maxClaims,
    timeout_ms: timeoutMs,
    auto_advance_clock: autoAdvanceClock,
    lease_ms: leaseMs,
  })
}

/** Runs JS `handlers` until idle; see `Engine#runUntilIdle`. */
export const runUntilIdle = (engine, handlers, options) => engine.runUntilIdle(handlers, options)

export const scriptOutcome = native.scriptOutcome
/** A scenario file's text (and its name, for errors), checked by the reference parser, as an object. */
export const loadScenario = native.loadScenario
export const jsonContains = native.jsonContains
/** @internal The JS error an engine error of kind `code` becomes, for the per-kind test. */
export const errorOf = native.errorOf
