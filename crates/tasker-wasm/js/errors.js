// The errors of Tasker Core, as in @tasker/core: `TaskerError` with `.code` (the stable kind string, e.g.
// "not_found"), `.details` (a plain object) and `.cause` (the underlying errors, outermost first), one
// subclass per kind, made from the kinds the module exports; and the two a handler throws to say how it
// failed. Switch on the class or on `.code`, never on the message.
import native from './native.js'

export class TaskerError extends Error {
  constructor(message, { code = 'internal', details = {}, causes = [] } = {}) {
    let cause
    for (const m of [...causes].reverse()) cause = new Error(m, cause ? { cause } : undefined)
    super(message, cause ? { cause } : undefined)
    this.name = new.target.name
    this.code = code
    this.details = details
    this.causes = causes
  }
}

/** The class of each kind, by class name (`ValidationError`, …); `errorClass(code)` finds one by code. */
export const errorClasses = {}
const byCode = {}
for (const { code, className } of native.errorKinds()) {
  const cls = { [className]: class extends TaskerError {} }[className]
  errorClasses[className] = cls
  byCode[code] = cls
}
native.defineErrorClasses(errorClasses)
export const errorClass = (code) => byCode[code]

/** Thrown by a handler for a failure worth retrying; `retryAfterMs` asks for a delay before the next attempt. */
export class RetryableError extends Error {
  constructor(message = 'retryable failure', { retryAfterMs = null } = {}) {
    const ok = retryAfterMs === null || (Number.isFinite(retryAfterMs) && retryAfterMs >= 0)
    expect(ok, 'retryAfterMs', 'a non-negative number of milliseconds', retryAfterMs)
    super(message)
    this.name = new.target.name
    this.retryAfterMs = retryAfterMs
  }
}

/** Thrown by a handler for a failure that must not be retried; `code` is recorded on the step. */
export class PermanentError extends Error {
  constructor(message = 'permanent failure', { code = null } = {}) {
    expect(code === null || typeof code === 'string', 'code', 'a string', code)
    super(message)
    this.name = new.target.name
    this.code = code
  }
}

/** A TypeError for an argument of the wrong type, named as the caller wrote it. */
export function expect(ok, what, expected, value) {
  if (!ok) {
    const found = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
    throw new TypeError(`${what}: expected ${expected}, found ${found}`)
  }
}

/** A TypeError naming options the caller passed that do not exist. */
export function unknown(what, rest) {
  const keys = Object.keys(rest)
  if (keys.length > 0) throw new TypeError(`${what}: unknown option ${keys.map((k) => JSON.stringify(k)).join(', ')}`)
}
