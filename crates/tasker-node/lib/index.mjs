// The ES module entry of @tasker/core: the CommonJS package's exports, by name.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const core = require('./index.js')

export const {
  version,
  Client,
  Worker,
  Subscription,
  OverrunLease,
  failureOf,
  testing,
  errorClass,
  TaskerError,
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
  RetryableError,
  PermanentError,
} = core
export default core
