// @tasker/wasm: the real Tasker Core engine on its memory store, in a browser tab or in Node.
//
//     import { Engine, RetryableError } from '@tasker/wasm'
//     const engine = await Engine.memory()
//     await engine.registerTemplate(yamlText)
//     const task = await engine.createTask('billing', 'invoice_sync', { context: { accountId: 42 } })
//     await engine.runUntilIdle({ 'billing.fetch': async (ctx) => ({ invoices: [] }) })
//     console.log(await engine.explain(task.id))
import native from './native.js'
import * as testing from './testing.js'
import { errorClasses } from './errors.js'

export { Engine, validateTemplate, renderDefinition, backoffPreview } from './engine.js'
export { Worker, OverrunLease, failureOf } from './worker.js'
export { Subscription } from './events.js'
export { TaskerError, RetryableError, PermanentError, errorClass, errorClasses } from './errors.js'
export { testing }
export const version = native.version()
export const objects = native.objects()

// ESM exports are static, so the classes errors.js made from the module's kinds are named here once;
// __test__/client.test.js checks that this list is every kind the module has.
export const {
  ValidationError,
  NotFoundError,
  ConflictError,
  InvalidTransitionError,
  StaleClaimError,
  CycleDetectedError,
  ClosedError,
  TimeoutError,
  DatabaseError,
  ConfigurationError,
  HandlerError,
  InternalError,
} = errorClasses
