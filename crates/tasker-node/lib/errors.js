'use strict'
// The errors of Tasker Core: `TaskerError` with `.code` (the stable kind string, e.g. "not_found"), `.details`
// (a plain object) and `.cause` (the underlying errors, outermost first), one subclass per kind, made from the
// kinds the addon exports; and the two a handler throws to say how it failed. Switch on the class or on
// `.code`, never on the message.
const native = require('./native')

class TaskerError extends Error {
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

/** The class of each kind, by class name (`ValidationError`, …) and by code (`validation`, …). */
const classes = {}
const byCode = {}
for (const { code, className } of native.errorKinds) {
  const cls = { [className]: class extends TaskerError {} }[className]
  classes[className] = cls
  byCode[code] = cls
}
native.defineErrorClasses(classes)

/** Thrown by a handler for a failure worth retrying; `retryAfterMs` asks for a delay before the next attempt. */
class RetryableError extends Error {
  constructor(message = 'retryable failure', { retryAfterMs = null } = {}) {
    const ok = retryAfterMs === null || (Number.isFinite(retryAfterMs) && retryAfterMs >= 0)
    expect(ok, 'retryAfterMs', 'a non-negative number of milliseconds', retryAfterMs)
    super(message)
    this.name = new.target.name
    this.retryAfterMs = retryAfterMs
  }
}

/** Thrown by a handler for a failure that must not be retried; `code` is recorded on the step. */
class PermanentError extends Error {
  constructor(message = 'permanent failure', { code = null } = {}) {
    expect(code === null || typeof code === 'string', 'code', 'a string', code)
    super(message)
    this.name = new.target.name
    this.code = code
  }
}

/** A TypeError for an argument of the wrong type, named as the caller wrote it. */
function expect(ok, what, expected, value) {
  if (!ok) {
    const found = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value
    throw new TypeError(`${what}: expected ${expected}, found ${found}`)
  }
}

module.exports = { TaskerError, ...classes, errorClass: (code) => byCode[code], RetryableError, PermanentError, expect }
