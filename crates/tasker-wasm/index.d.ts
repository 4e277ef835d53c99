// Types of @tasker/wasm. The object interfaces between the GENERATED markers come from tasker-shared-ffi's
// object table (`cargo xtask gen`, as for @tasker/core); the rest is written by hand.

/** A JSON value: what contexts, configs, results, metadata and details hold. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

// BEGIN GENERATED: objects (cargo xtask gen, from tasker-shared-ffi's object table; do not edit)
/** One run of a template. */
export interface Task {
  /** UUID */
  readonly id: string
  /** UUID of the template version the task runs */
  readonly templateId: string
  readonly namespace: string
  /** the template name */
  readonly name: string
  /** the template version (semver) */
  readonly version: string
  /** `pending`, `in_progress`, `complete`, `error`, `cancelled` or `resolved_manually` */
  readonly state: string
  /** the task context, a JSON object */
  readonly context: Json
  readonly tags: Record<string, string>
  readonly idempotencyKey: string | null
  /** who asked for the task */
  readonly initiator: string | null
  /** which system asked for it */
  readonly sourceSystem: string | null
  /** why */
  readonly reason: string | null
  /** how many steps the task has */
  readonly stepsTotal: number
  /** steps `complete` or `resolved_manually` */
  readonly stepsSucceeded: number
  /** steps in `error` */
  readonly stepsFailed: number
  readonly createdAt: Date
  readonly updatedAt: Date
  /** when its first step was claimed */
  readonly startedAt: Date | null
  /** when it last reached a terminal state */
  readonly finishedAt: Date | null
  /** claims take higher priorities first; the default of its steps */
  readonly priority: number
  /** when it was asked to start, if it was created to start later */
  readonly runAt: Date | null
  /** while set, no step runs before this time (its start time) */
  readonly heldUntil: Date | null
}

/** One step of one task. */
export interface Step {
  /** UUID */
  readonly id: string
  /** UUID */
  readonly taskId: string
  readonly name: string
  readonly handlerKey: string
  /** declaration order within the template */
  readonly position: number
  /** `pending`, `in_progress`, `waiting_for_retry`, `complete`, `error`, `cancelled` or `resolved_manually` */
  readonly state: string
  /** attempts made so far; never reset */
  readonly attempts: number
  /** the attempt number at which the current budget ends */
  readonly maxAttempts: number
  readonly retry: RetryPolicy
  /** how long one attempt may run */
  readonly timeoutSeconds: number
  /** the step's config from the template */
  readonly config: Json
  /** when a scheduled retry falls due */
  readonly nextAttemptAt: Date | null
  /** when the current claim's lease ends */
  readonly leaseExpiresAt: Date | null
  /** the worker that last claimed the step */
  readonly workerId: string | null
  /** the handler's (or operator's) result */
  readonly result: Json | null
  /** the last failure */
  readonly error: StepError | null
  readonly createdAt: Date
  readonly updatedAt: Date
  /** when the current or last attempt was claimed */
  readonly startedAt: Date | null
  /** when the step last reached a terminal state */
  readonly finishedAt: Date | null
  /** claims take higher priorities first */
  readonly priority: number
}

/** What a handler reported when it failed, as recorded on the step. */
export interface StepError {
  /** the exception class, or `worker_lost` when a lease expired */
  readonly errorClass: string
  readonly message: string
  /** backtrace lines, outermost first */
  readonly backtrace: string[]
  /** an error code the handler gave */
  readonly code: string | null
  /** whether the handler called the failure retryable */
  readonly retryable: boolean
}

/** The retry policy of a step, after template defaults are applied. */
export interface RetryPolicy {
  /** attempts in one budget, including the first */
  readonly maxAttempts: number
  /** `false` means the step runs once */
  readonly retryable: boolean
  /** `exponential`, `linear` or `none` */
  readonly backoff: string
  /** milliseconds */
  readonly baseMs: number
  /** milliseconds; caps the delay and any `retry_after` */
  readonly maxMs: number
  /** 0.0..=1.0, the fraction of the delay added or removed at random */
  readonly jitter: number
}

/** Everything a handler needs to run one claimed step. */
export interface StepContext {
  /** UUID */
  readonly taskId: string
  /** UUID */
  readonly stepId: string
  /** the step's name within its template */
  readonly stepName: string
  /** the handler key the step runs under */
  readonly handlerKey: string
  /** this attempt, from 1; never reset, not even by `retry_task` */
  readonly attempt: number
  /** the attempt number at which the current budget ends */
  readonly maxAttempts: number
  /** the task context */
  readonly context: Json
  /** the step's config from the template */
  readonly config: Json
  /** the results of the step's parents, by step name */
  readonly dependencyResults: Record<string, Json>
  /** when the handler's time runs out (`timeout_seconds` after the claim) */
  readonly deadline: Date
  /** when the claim's lease ends unless a heartbeat extends it */
  readonly leaseExpiresAt: Date
  /** the task's template namespace */
  readonly namespace: string
  /** the task's template name */
  readonly taskName: string
  /** present it to `complete` or `fail`; also the handler's idempotency key */
  readonly token: ClaimToken
}

/** Proof of a claim: the step and the attempt the claim made. */
export interface ClaimToken {
  /** UUID of the claimed step */
  readonly stepId: string
  /** the attempt this claim made, from 1 */
  readonly attempt: number
}

/** A registered template version. */
export interface TemplateInfo {
  /** UUID */
  readonly id: string
  readonly namespace: string
  readonly name: string
  /** semver */
  readonly version: string
  readonly description: string | null
  /** SHA-256 (hex) of the canonical content */
  readonly contentHash: string
  /** the JSON Schema task contexts are checked against */
  readonly inputSchema: Json | null
  /** the priority of its tasks unless `create_task` gives one */
  readonly priority: number | null
  /** in declaration order */
  readonly steps: TemplateStep[]
  readonly createdAt: Date
}

/** One step of a registered template. */
export interface TemplateStep {
  readonly name: string
  readonly handlerKey: string
  readonly description: string | null
  /** the steps this one waits for */
  readonly dependsOn: string[]
  /** handed to the handler as-is */
  readonly config: Json
  readonly retry: RetryPolicy
  readonly timeoutSeconds: number
  /** overrides the task's priority for this step */
  readonly priority: number | null
}

/** The result of registering a template. */
export interface Registration {
  /** the registered version */
  readonly template: TemplateInfo
  /** false when the same content was already registered under this version */
  readonly created: boolean
}

/** The audit trail of a task. */
export interface Transitions {
  /** by sort key */
  readonly task: TaskTransition[]
  /** by step, then sort key */
  readonly steps: StepTransition[]
}

/** One row of a task's audit trail. */
export interface TaskTransition {
  /** UUID */
  readonly id: string
  /** UUID */
  readonly taskId: string
  /** absent on the row written at creation */
  readonly fromState: string | null
  readonly toState: string
  /** the task event (`start`, `complete`, …); absent on the creation row */
  readonly event: string | null
  readonly metadata: Json
  /** 1, 2, … in order */
  readonly sortKey: number
  readonly createdAt: Date
}

/** One row of a step's audit trail. */
export interface StepTransition {
  /** UUID */
  readonly id: string
  /** UUID */
  readonly stepId: string
  /** UUID */
  readonly taskId: string
  /** absent on the row written at creation */
  readonly fromState: string | null
  readonly toState: string
  /** the step event (`claim`, `complete`, `fail_retryable`, …); absent on the creation row */
  readonly event: string | null
  /** the step's attempt count when the row was written */
  readonly attempt: number
  readonly workerId: string | null
  readonly metadata: Json
  /** 1, 2, … in order, per step */
  readonly sortKey: number
  readonly createdAt: Date
}

/** Why each step of a task is or is not ready. */
export interface Explain {
  /** UUID */
  readonly taskId: string
  readonly taskState: string
  /** when the task starts, if that time is still to come */
  readonly scheduledFor: Date | null
  /** the schedule that created the task, if one did and it is still registered */
  readonly schedule: string | null
  /** that schedule's next occurrence; absent while it is paused */
  readonly scheduleNextFireAt: Date | null
  /** in template order */
  readonly steps: StepReadiness[]
}

/** Why one step is or is not ready. */
export interface StepReadiness {
  /** UUID */
  readonly stepId: string
  readonly name: string
  readonly handlerKey: string
  /** the step state */
  readonly state: string
  /** a claim would take it now */
  readonly ready: boolean
  readonly attempts: number
  readonly maxAttempts: number
  /** parents not yet `complete` or `resolved_manually` */
  readonly blockedBy: string[]
  /** parents in `error` or `cancelled`, which block until an operator acts */
  readonly blockedByFailure: string[]
  /** when a waiting retry falls due, if not yet */
  readonly retryAt: Date | null
  /** for a root step of a task that starts later, when it starts */
  readonly scheduledFor: Date | null
  /** claims take higher priorities first */
  readonly priority: number
  /** the step failed and has no attempts left in its budget */
  readonly attemptsExhausted: boolean
  /** the task is `pending` or `in_progress` */
  readonly taskRunnable: boolean
  /** for a running step, when its lease ends */
  readonly leaseExpiresAt: Date | null
  /** the step's concurrency key, if its template step declares a concurrency limit */
  readonly concurrencyKey: string | null
  /** how many steps of that key may run at once */
  readonly concurrencyLimit: number | null
  /** how many steps of that key are `in_progress` now */
  readonly concurrencyRunning: number | null
  /** human-readable reasons */
  readonly reasons: string[]
}

/** Where a task stands and what should happen next. */
export interface ExecutionContext {
  /** UUID */
  readonly taskId: string
  readonly taskState: string
  readonly totalSteps: number
  readonly pendingSteps: number
  /** claimable now */
  readonly readySteps: number
  readonly inProgressSteps: number
  readonly waitingForRetrySteps: number
  readonly completedSteps: number
  /** in `error` */
  readonly failedSteps: number
  readonly cancelledSteps: number
  readonly resolvedManuallySteps: number
  /** pending steps held up by a failed or cancelled ancestor */
  readonly blockedSteps: number
  /** `all_complete`, `has_ready_steps`, `processing`, `waiting_for_retry`, `blocked_by_failures` or `cancelled` */
  readonly executionStatus: string
  /** `none`, `execute_ready_steps`, `wait_for_completion`, `wait_for_retry` or `handle_failures` */
  readonly recommendedAction: string
  /** share of steps that succeeded, 0.0..=1.0 */
  readonly completionRatio: number
}

/** A step and the level of the DAG it sits on. */
export interface DependencyLevel {
  /** UUID */
  readonly stepId: string
  /** the step name */
  readonly name: string
  /** roots are 0; every other step is one more than its deepest parent */
  readonly level: number
}

/** Tasks and steps by state. */
export interface HealthCounts {
  /** task state to count, every state present */
  readonly tasks: Record<string, number>
  /** step state to count, every state present */
  readonly steps: Record<string, number>
  readonly totalTasks: number
  readonly totalSteps: number
  /** steps waiting for a retry */
  readonly retrying: number
  /** steps in `error` that used their whole budget */
  readonly exhausted: number
}

/** Throughput, rates and durations of work finished in a window, computed from stored data. */
export interface AnalyticsMetrics {
  /** start of the window */
  readonly since: Date
  /** end of the window (now, by the engine's clock) */
  readonly until: Date
  readonly windowSeconds: number
  readonly tasksCompleted: number
  readonly tasksFailed: number
  /** completed ÷ (completed + failed); 0 when none finished */
  readonly taskCompletionRate: number
  readonly taskErrorRate: number
  /** tasks completed per second */
  readonly taskThroughputPerSecond: number
  readonly stepsCompleted: number
  readonly stepsFailed: number
  /** failed attempts scheduled to run again (handler failures and expired leases) */
  readonly stepRetries: number
  /** steps completed per second */
  readonly stepThroughputPerSecond: number
  /** creation to completion, for tasks completed in the window */
  readonly taskDuration: DurationStats
  /** claim of the final attempt to completion, for steps completed in the window */
  readonly stepDuration: DurationStats
}

/** Summary statistics of durations, in milliseconds. */
export interface DurationStats {
  /** how many durations */
  readonly count: number
  readonly meanMs: number
  /** nearest-rank */
  readonly p50Ms: number
  /** nearest-rank */
  readonly p95Ms: number
  readonly maxMs: number
}

/** A finished step and how long its final attempt took. */
export interface SlowStep {
  /** UUID */
  readonly stepId: string
  /** UUID */
  readonly taskId: string
  readonly namespace: string
  readonly taskName: string
  readonly version: string
  readonly stepName: string
  /** `complete` or `error` */
  readonly state: string
  readonly attempts: number
  readonly durationMs: number
  readonly startedAt: Date | null
  readonly finishedAt: Date
}

/** A finished task and how long it took from creation. */
export interface SlowTask {
  /** UUID */
  readonly taskId: string
  readonly namespace: string
  readonly name: string
  readonly version: string
  /** `complete` or `error` */
  readonly state: string
  readonly stepsTotal: number
  readonly durationMs: number
  readonly createdAt: Date
  readonly finishedAt: Date
}

/** Something that happened to a task or a step: one per transition row. */
export interface Event {
  /** for example `task.created`, `step.claimed`, `step.completed`, `step.retry_scheduled` */
  readonly name: string
  /** UUID */
  readonly taskId: string
  /** UUID; absent on task events */
  readonly stepId: string | null
  /** absent on task events */
  readonly stepName: string | null
  /** the step's attempt count; absent on task events */
  readonly attempt: number | null
  /** absent on creation events */
  readonly fromState: string | null
  readonly toState: string
  readonly workerId: string | null
  /** the transition row's metadata */
  readonly metadata: Json
  readonly timestamp: Date
}

/** What a pass of lease reaping did. */
export interface ReapReport {
  /** expired steps that will be retried */
  readonly retried: number
  /** expired steps with no attempts left, now `error` with `worker_lost` */
  readonly failed: number
}

/** A registered cron schedule and where it stands. */
export interface Schedule {
  /** unique among schedules */
  readonly name: string
  readonly namespace: string
  /** the template's name */
  readonly template: string
  /** the template version; the newest at each fire when absent */
  readonly version: string | null
  /** the cron expression (5 or 6 fields, or `@daily` and the like) */
  readonly cron: string
  /** the IANA zone the expression is read in */
  readonly timezone: string
  /** the context of every task it creates */
  readonly context: Json
  /** the priority of its tasks; the template's when absent */
  readonly priority: number | null
  /** what happens to occurrences missed while nothing ran: `skip` or `run_once` */
  readonly misfire: string
  readonly paused: boolean
  /** the next occurrence; absent while paused */
  readonly nextFireAt: Date | null
  /** the occurrence that last created a task */
  readonly lastFireAt: Date | null
  /** UUID of the task it created last */
  readonly lastTaskId: string | null
  /** tasks created */
  readonly fired: number
  /** occurrences missed while nothing ran */
  readonly missed: number
  /** why the last occurrence could not create its task; cleared by the next that does */
  readonly lastError: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** What one pass over due schedules did. */
export interface ScheduleReport {
  /** tasks created */
  readonly fired: number
  /** occurrences missed (more than the misfire grace late) */
  readonly missed: number
  /** occurrences whose task could not be created (see `Schedule.last_error`) */
  readonly failed: number
  /** the earliest next occurrence of any schedule not paused */
  readonly nextFireAt: Date | null
}

/** What the handle of a client reports about itself. */
export interface ClientHealth {
  /** `memory`, `sqlite` or `postgres` */
  readonly storeKind: string
  /** the URL the client opened, with any password replaced by `***` */
  readonly url: string
  /** connections in the pool (1 for the memory store) */
  readonly poolSize: number
  readonly idleConnections: number
  /** milliseconds since the client was opened */
  readonly ageMs: number
  /** when the client was opened (wall clock) */
  readonly openedAt: Date
  /** the process that opened the client */
  readonly pid: number
  /** how many times `validate_or_refresh` rebuilt the store connection */
  readonly refreshes: number
  /** `system` or `manual` */
  readonly clock: string
}

/** What a worker session did so far. */
export interface SessionStats {
  /** steps claimed */
  readonly claimed: number
  /** completions the engine accepted */
  readonly completed: number
  /** failures the engine accepted (timeouts included) */
  readonly failed: number
  /** outcomes rejected (stale claim, cancelled step, malformed token, …) */
  readonly rejected: number
  /** claims whose lease a heartbeat found already lost */
  readonly lost: number
  /** handlers failed with `timeout` for running past their deadline */
  readonly timedOut: number
  /** outcomes reported after their handler was timed out (each rejected as a stale claim) */
  readonly late: number
  /** outcomes the reporter gave up on; their steps are recovered when their leases expire */
  readonly abandoned: number
  /** claims, reports, heartbeats and maintenance passes that failed on a store error and were retried */
  readonly storeErrors: number
  /** claims not yet reported */
  readonly outstanding: number
}

/** A factory workflow and the tasks made of it. */
export interface PatternTasks {
  /** the registered template */
  readonly template: TemplateInfo
  /** in creation order */
  readonly tasks: Task[]
}

/** One handler run of a run until idle. */
export interface HandlerCall {
  /** UUID */
  readonly taskId: string
  /** UUID */
  readonly stepId: string
  readonly stepName: string
  readonly handlerKey: string
  readonly attempt: number
  /** what the handler saw of its parents */
  readonly dependencyResults: Record<string, Json>
  /** `succeed`, `fail_retryable`, `fail_permanent` or `overrun_lease` */
  readonly outcome: string
  /** the error kind when the engine rejected the outcome */
  readonly rejected: string | null
}

/** What a run until idle did: every `run_until_idle` returns one. */
export interface RunReport {
  /** in the order the handlers ran */
  readonly calls: HandlerCall[]
  /** successes the engine accepted */
  readonly completed: number
  /** failures the engine accepted */
  readonly failed: number
  /** claims left to expire */
  readonly overrun: number
  /** outcomes the engine rejected */
  readonly rejected: number
  /** milliseconds a manual clock was moved forward to reach scheduled retries */
  readonly advancedMs: number
  /** handlers the session failed with `timeout` for running past their deadline */
  readonly timedOut: number
}

// END GENERATED: objects

export declare const version: string
/** The camelCased fields of every object, in table order. */
export declare const objects: Record<string, string[]>

export interface EngineOptions {
  /** `"system"` (default) or `"manual"`: a clock only `advanceClock` and `runUntilIdle` move. */
  clock?: 'system' | 'manual'
  manualClockStart?: Date | string
  /** Events each subscription buffers before it drops the oldest (default 4096). */
  eventCapacity?: number
}

export interface CreateTaskOptions {
  context?: { [key: string]: Json }
  version?: string
  idempotencyKey?: string
  tags?: Record<string, string>
  initiator?: string
  sourceSystem?: string
  reason?: string
  /** -1000..=1000; higher is claimed first. The template's priority, else 0, when absent. */
  priority?: number
  /** No step runs before this time. */
  runAt?: Date | string
  /** The same as `runAt` this many milliseconds from now. */
  delayMs?: number
}

export interface ScheduleOptions {
  /** The context of every task it creates; checked against the template's schema when registered. */
  context?: { [key: string]: Json }
  /** The IANA zone the expression is read in (default "UTC"). */
  timezone?: string
  /** -1000..=1000; the template's priority when absent. */
  priority?: number
  /** The template version; the newest registered at each fire when absent. */
  version?: string
  /** What happens to occurrences missed while nothing ran (default "skip"). */
  misfire?: 'skip' | 'run_once'
}

export interface TaskFilter {
  namespace?: string
  name?: string
  state?: string
  limit?: number
  before?: string
}

export interface AnalyticsFilter {
  since?: Date | string
  namespace?: string
  name?: string
  version?: string
  limit?: number
}

export interface RunOptions {
  /** Steps claimed per batch (default: `concurrency`). */
  batchSize?: number
  maxClaims?: number | null
  /** Rejects with `TimeoutError` past this (default 30 000). */
  timeoutMs?: number
  /** Move a manual clock to the next scheduled retry (default true). */
  autoAdvanceClock?: boolean
}

export interface RunUntilIdleOptions extends RunOptions {
  /** Handlers at once (default 1: one at a time, in claim order). */
  concurrency?: number
  leaseMs?: number
}

export type Handler = (ctx: StepContext) => Json | void | Promise<Json | void>

/** One problem `validateTemplate` found; a cycle has `code: "cycle_detected"` and `cycle`. */
export interface TemplateProblem {
  path: string
  message: string
  code: 'validation' | 'cycle_detected'
  cycle?: string[]
}

export interface BackoffRow {
  attempt: number
  delayMs: number
  minMs: number
  maxMs: number
}

export declare function validateTemplate(definition: string | object): TemplateProblem[]
export declare function renderDefinition(definition: string | object, format?: 'mermaid' | 'dot'): string
export declare function backoffPreview(retryPolicy?: object, attempts?: number): BackoffRow[]

export declare class Subscription implements AsyncIterable<Event> {
  next(timeoutMs?: number): Promise<Event | null>
  tryNext(): Event | null
  drain(): Event[]
  readonly dropped: number
  close(): void
  [Symbol.asyncIterator](): AsyncIterator<Event>
}

/** How `finishMany` takes one outcome: a result, or a failure as `failureOf` describes it. */
export type Outcome = { step_id: string; attempt: number } & ({ success: Json } | { failure: object })

/** The worker session `Worker` drives (docs/bindings.md §6). Tokens are passed as the step id and the attempt. */
export interface WorkerSession {
  readonly workerId: string
  readonly handlerKeys: string[]
  readonly isShutdown: boolean
  nextBatch(max: number, waitMs: number): Promise<StepContext[]>
  claim(max: number, waitMs: number): Promise<StepContext[]>
  report(stepId: string, attempt: number, result: unknown): void
  reportFailure(stepId: string, attempt: number, failure: object): void
  reportMissing(stepId: string, attempt: number, handlerKey: string): void
  flush(): Promise<void>
  complete(stepId: string, attempt: number, result: Json): Promise<Step>
  fail(stepId: string, attempt: number, failure: object): Promise<Step>
  /** Writes every outcome now, in one transaction: one `Step`, or the error of that item, per outcome. */
  finishMany(outcomes: Outcome[]): Promise<(Step | TaskerError)[]>
  forget(stepId: string, attempt: number): void
  shutdown(): void
  outstanding(): ClaimToken[]
  stats(): SessionStats
  nextRetryAt(): Promise<Date | null>
}

export declare class Engine {
  static memory(options?: EngineOptions): Promise<Engine>
  close(): Promise<null>
  readonly closed: boolean
  health(): ClientHealth
  now(): Date
  advanceClock(ms: number): Date
  subscribe(filter?: { taskId?: string; names?: string[] }): Subscription
  workerSession(handlerKeys: string[], options?: Omit<WorkerOptions, 'concurrency' | 'claimWaitMs' | 'handlerKeys'>): WorkerSession
  registerTemplate(definition: string | object): Promise<Registration>
  validateTemplate(definition: string | object): TemplateProblem[]
  template(namespace: string, name: string, version?: string): Promise<TemplateInfo>
  templates(): Promise<TemplateInfo[]>
  renderTemplate(namespace: string, name: string, format?: 'mermaid' | 'dot', options?: { version?: string }): Promise<string>
  backoffPreview(retryPolicy?: object, attempts?: number): BackoffRow[]
  createTask(namespace: string, name: string, options?: CreateTaskOptions): Promise<Task>
  task(taskId: string): Promise<Task>
  tasks(filter?: TaskFilter): Promise<Task[]>
  steps(taskId: string): Promise<Step[]>
  step(stepId: string): Promise<Step>
  explain(taskId: string): Promise<Explain>
  transitions(taskId: string): Promise<Transitions>
  cancelTask(taskId: string, options?: { reason?: string }): Promise<Task>
  runTaskNow(taskId: string): Promise<Task>
  retryTask(taskId: string): Promise<Task>
  resolveStep(stepId: string, result?: Json): Promise<Step>
  resolveTask(taskId: string, options?: { reason?: string }): Promise<Task>
  reapExpiredLeases(limit?: number): Promise<ReapReport>
  registerSchedule(name: string, namespace: string, template: string, cron: string, options?: ScheduleOptions): Promise<Schedule>
  pauseSchedule(name: string): Promise<Schedule>
  resumeSchedule(name: string): Promise<Schedule>
  removeSchedule(name: string): Promise<Schedule>
  schedules(): Promise<Schedule[]>
  schedule(name: string): Promise<Schedule>
  fireSchedules(): Promise<ScheduleReport>
  executionContext(taskId: string): Promise<ExecutionContext>
  dependencyLevels(taskId: string): Promise<DependencyLevel[]>
  healthCounts(): Promise<HealthCounts>
  analyticsMetrics(since: Date): Promise<AnalyticsMetrics>
  slowestSteps(filter?: AnalyticsFilter): Promise<SlowStep[]>
  slowestTasks(filter?: AnalyticsFilter): Promise<SlowTask[]>
  runUntilIdle(handlers: Record<string, Handler>, options?: RunUntilIdleOptions): Promise<RunReport>
}

export interface WorkerOptions {
  concurrency?: number
  workerId?: string
  leaseMs?: number
  heartbeatIntervalMs?: number
  pollIntervalMs?: number
  maintenanceIntervalMs?: number
  claimWaitMs?: number
  handlerKeys?: string[]
  enforceDeadlines?: boolean
}

export declare class Worker {
  constructor(engine: Engine, options?: WorkerOptions)
  readonly concurrency: number
  readonly handlerKeys: string[]
  readonly session: WorkerSession
  handle(key: string, handler: Handler | { call(ctx: StepContext): unknown }): this
  run(options?: { signal?: AbortSignal }): Promise<SessionStats>
  stop(): void
  runUntilIdle(options?: RunOptions): Promise<RunReport>
}

/** Thrown by a handler to act like a crashed worker: the claim's lease expires. */
export declare class OverrunLease extends Error {}
export declare function failureOf(e: unknown): object

export declare class TaskerError extends Error {
  readonly code: string
  readonly details: { [key: string]: Json }
  readonly causes: string[]
}
export declare class ValidationError extends TaskerError {}
export declare class NotFoundError extends TaskerError {}
export declare class ConflictError extends TaskerError {}
export declare class InvalidTransitionError extends TaskerError {}
export declare class StaleClaimError extends TaskerError {}
export declare class CycleDetectedError extends TaskerError {}
export declare class ClosedError extends TaskerError {}
export declare class TimeoutError extends TaskerError {}
export declare class DatabaseError extends TaskerError {}
export declare class ConfigurationError extends TaskerError {}
export declare class HandlerError extends TaskerError {}
export declare class InternalError extends TaskerError {}
export declare const errorClasses: Record<string, typeof TaskerError>
export declare function errorClass(code: string): typeof TaskerError | undefined

export declare class RetryableError extends Error {
  constructor(message?: string, options?: { retryAfterMs?: number | null })
  readonly retryAfterMs: number | null
}
export declare class PermanentError extends Error {
  constructor(message?: string, options?: { code?: string | null })
  readonly code: string | null
}

export declare namespace testing {
  function patternTemplate(pattern: string, options?: object): Json
  function registerPattern(engine: Engine, pattern: string, options?: object): Promise<Registration>
  function createPatternTasks(engine: Engine, pattern: string, options?: object): Promise<PatternTasks>
  function runScripted(engine: Engine, script: Json, options?: object): Promise<RunReport>
  function runUntilIdle(engine: Engine, handlers: Record<string, Handler>, options?: RunUntilIdleOptions): Promise<RunReport>
  function linear(engine: Engine, options?: object): Promise<PatternTasks>
  function diamond(engine: Engine, options?: object): Promise<PatternTasks>
  function parallel(engine: Engine, options?: object): Promise<PatternTasks>
  function tree(engine: Engine, options?: object): Promise<PatternTasks>
  function mixed(engine: Engine, options?: object): Promise<PatternTasks>
  function scriptOutcome(script: Json, stepName: string, key: string, attempt: number): Json
  function loadScenario(text: string, name: string): Json
  function jsonContains(actual: Json, expected: Json): boolean
}
