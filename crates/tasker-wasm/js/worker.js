// The worker: claims steps through the one shared worker session (its waits are timers on the JS event
// loop), runs up to `concurrency` handler Promises at once, and hands each outcome back to the session, which
// batches it and never drops it. All engine rules (retries, DAG, leases, what a bad result or a missing
// handler means) stay in Rust; this file only decides which function runs and how what it threw is described.
// It is @tasker/core's Worker without the process signals a browser does not have.
import { Engine } from './engine.js'
import { PermanentError, RetryableError, expect, unknown } from './errors.js'

/**
 * Throw from a handler in tests to act like a crashed worker: the claim is never reported and its lease
 * expires.
 */
export class OverrunLease extends Error {
  constructor() {
    super('overrun lease')
    this.name = 'OverrunLease'
  }
}

/** The class name of a thrown value: its constructor's name (so subclasses keep theirs), else its `name`. */
function className(e, fallback) {
  const ctor = e?.constructor?.name
  return ctor && ctor !== 'Object' ? ctor : e?.name || fallback
}

/**
 * How a handler's throw is reported: `RetryableError` → retryable (with `retryAfterMs`), `PermanentError` →
 * permanent (with `code`), anything else → retryable, with its class name, message and stack frames.
 */
export function failureOf(e) {
  if (!(e instanceof Error)) {
    const type = e === null ? 'null' : typeof e
    return { kind: 'retryable', message: String(e), error_class: type, backtrace: [] }
  }
  const backtrace = String(e.stack ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('at ') || l.includes('@'))
  const failure = {
    kind: e instanceof PermanentError ? 'permanent' : 'retryable',
    message: e.message || className(e, 'Error'),
    error_class: className(e, 'Error'),
    backtrace,
  }
  if (e instanceof RetryableError && e.retryAfterMs != null) failure.retry_after_ms = Math.round(e.retryAfterMs)
  if (e instanceof PermanentError && e.code != null) failure.code = e.code
  return failure
}

const nonNegative = (what, v) => expect(v == null || (Number.isInteger(v) && v >= 0), what, 'a non-negative integer', v)

export class Worker {
  #engine
  #options
  #claimWaitMs
  #claimKeys
  #handlers = new Map()
  #session = null
  #stopping = false

  /**
   * Runs JS handlers for the steps of registered templates.
   *
   *     const worker = new Worker(engine, { concurrency: 4 })
   *     worker.handle('shop.charge', async (ctx) => ({ charged: ctx.context.amount }))
   *     await worker.run({ signal })      // until the signal aborts or stop()
   *
   * Options: `concurrency` (4), `workerId`, `leaseMs` (30 000), `heartbeatIntervalMs` (lease / 3; 0 never),
   * `pollIntervalMs` (1000), `maintenanceIntervalMs` (5000; 0 never), `claimWaitMs` (1000), `handlerKeys`
   * (the keys with a handler), `enforceDeadlines` (true).
   */
  constructor(engine, options = {}) {
    expect(engine instanceof Engine, 'engine', 'an Engine', engine)
    expect(options !== null && typeof options === 'object', 'options', 'an options object', options)
    const {
      concurrency = 4,
      workerId,
      leaseMs,
      heartbeatIntervalMs,
      pollIntervalMs,
      maintenanceIntervalMs,
      claimWaitMs = 1000,
      handlerKeys,
      enforceDeadlines,
      ...rest
    } = options
    unknown('options', rest)
    expect(Number.isInteger(concurrency) && concurrency >= 1, 'concurrency', 'an integer >= 1', concurrency)
    for (const [what, v] of Object.entries({ leaseMs, heartbeatIntervalMs, pollIntervalMs, maintenanceIntervalMs, claimWaitMs })) {
      nonNegative(what, v)
    }
    expect(handlerKeys === undefined || Array.isArray(handlerKeys), 'handlerKeys', 'an array of strings', handlerKeys)
    this.#engine = engine
    this.concurrency = concurrency
    this.#options = { workerId, leaseMs, heartbeatIntervalMs, pollIntervalMs, maintenanceIntervalMs, enforceDeadlines }
    this.#claimWaitMs = claimWaitMs
    this.#claimKeys = handlerKeys ? [...handlerKeys] : null
  }

  /** Registers a handler: a (sync or async) function `(ctx) => result`, or an object with `call(ctx)`. */
  handle(key, handler) {
    expect(typeof key === 'string' && key.length > 0, 'key', 'a non-empty string', key)
    let fn
    if (typeof handler === 'function') fn = handler
    else if (handler !== null && typeof handler === 'object' && typeof handler.call === 'function') {
      fn = (ctx) => handler.call(ctx)
    } else {
      expect(false, `handler for ${JSON.stringify(key)}`, 'a function or an object with call(ctx)', handler)
    }
    if (this.#session !== null) throw new Error('register handlers before the worker starts')
    this.#handlers.set(key, fn)
    return this
  }

  get handlerKeys() {
    return [...this.#handlers.keys()].sort()
  }

  /** The worker's session, opened on first use for the registered handler keys. */
  get session() {
    if (this.#session !== null && this.#session.isShutdown) this.#session = null
    if (this.#session === null) {
      if (this.#handlers.size === 0) throw new Error('register at least one handler before starting the worker')
      this.#session = this.#engine.workerSession(this.#claimKeys ?? this.handlerKeys, this.#options)
    }
    return this.#session
  }

  /** Runs the handler of `ctx` and hands what happened to `target` (the session, or an idle run). */
  async #deliver(target, ctx) {
    const { stepId, attempt } = ctx.token
    const fn = this.#handlers.get(ctx.handlerKey)
    if (fn === undefined) {
      target.reportMissing(stepId, attempt, ctx.handlerKey)
      return
    }
    let result
    try {
      result = await fn(ctx)
    } catch (e) {
      if (e instanceof OverrunLease) target.forget(stepId, attempt)
      else target.reportFailure(stepId, attempt, failureOf(e))
      return
    }
    target.report(stepId, attempt, result)
  }

  /**
   * Claims and runs steps until `signal` aborts or `stop()` is called; then stops claiming, lets running
   * handlers finish and report, waits until every outcome is written, and resolves to the session's stats.
   */
  async run({ signal } = {}) {
    const session = this.session
    const stop = () => this.stop()
    if (signal?.aborted) stop()
    signal?.addEventListener('abort', stop, { once: true })
    const inFlight = new Set()
    let failure = null
    try {
      while (!this.#stopping) {
        if (inFlight.size >= this.concurrency) {
          await Promise.race(inFlight)
          continue
        }
        const batch = await session.nextBatch(this.concurrency - inFlight.size, this.#claimWaitMs)
        for (const ctx of batch) {
          const p = this.#deliver(session, ctx).then(
            () => inFlight.delete(p),
            (e) => {
              inFlight.delete(p)
              failure ??= e
              this.stop()
            },
          )
          inFlight.add(p)
        }
      }
    } catch (e) {
      failure ??= e
    } finally {
      session.shutdown()
      await Promise.all(inFlight)
      signal?.removeEventListener('abort', stop)
      this.#stopping = false
    }
    if (failure === null) await session.flush()
    else {
      await session.flush().catch(() => {})
      throw failure
    }
    return session.stats()
  }

  /** Asks `run()` to stop: wakes a waiting claim at once; running handlers still finish and report. */
  stop() {
    this.#stopping = true
    this.#session?.shutdown()
  }

  /**
   * Runs handlers until nothing is left to do, with the one idle rule (docs/bindings.md §8): claim up to
   * `batchSize` (default: `concurrency`) without waiting, run the batch's handlers (`concurrency` at once; one
   * at a time in claim order by default), report them; when a claim finds nothing, stop if no retry is
   * scheduled, else move a manual clock to it (unless `autoAdvanceClock` is false) or wait for it. Rejects
   * with `TimeoutError` after `timeoutMs`. Resolves to the `RunReport`.
   */
  async runUntilIdle({ batchSize, maxClaims, timeoutMs, autoAdvanceClock, ...rest } = {}) {
    unknown('options', rest)
    const run = this.session.untilIdle({
      batch_size: batchSize ?? this.concurrency,
      max_claims: maxClaims,
      timeout_ms: timeoutMs,
      auto_advance_clock: autoAdvanceClock,
    })
    let batch
    while ((batch = await run.nextBatch()) !== null) {
      if (this.concurrency === 1) for (const ctx of batch) await this.#deliver(run, ctx)
      else await Promise.all(batch.map((ctx) => this.#deliver(run, ctx)))
    }
    return run.finish()
  }
}
