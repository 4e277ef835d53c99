// A strict TypeScript consumer of index.d.ts: compiled (not run) by types.test.js with `tsc --strict`.
import { Client, Worker, RetryableError, PermanentError, TaskerError, testing } from '../index'
import type { Step, StepContext, Task, RunReport, Schedule, ScheduleReport } from '../index'

export async function main(signal: AbortSignal): Promise<number> {
  const client: Client = await Client.connect('sqlite::memory:', { clock: 'manual' })
  try {
    await client.registerTemplate({ namespace: 'shop', name: 'order', version: '1.0.0', steps: [{ name: 'a', handler: 'shop.a' }] })
    const task: Task = await client.createTask('shop', 'order', { context: { orderId: 7 }, idempotencyKey: 'o-7' })
    const nightly: Schedule = await client.registerSchedule('nightly', 'shop', 'order', '0 2 * * *', {
      context: { orderId: 8 },
      timezone: 'Europe/Berlin',
      misfire: 'run_once',
    })
    const next: Date | null = nightly.nextFireAt
    const fired: ScheduleReport = await client.fireSchedules()
    const all: Schedule[] = await client.schedules()
    await client.pauseSchedule(all[0].name)
    await client.removeSchedule((await client.resumeSchedule('nightly')).name)
    if (next === null || fired.fired < 0) return -1
    const worker = new Worker(client, { concurrency: 16 })
    worker.handle('shop.a', async (ctx: StepContext) => {
      const deadline: Date = ctx.deadline
      if (ctx.attempt === 1) throw new RetryableError('later', { retryAfterMs: 1000 })
      if (deadline.getTime() < 0) throw new PermanentError('never', { code: 'impossible' })
      return { order: ctx.context, parents: Object.keys(ctx.dependencyResults) }
    })
    const report: RunReport = await worker.runUntilIdle({ batchSize: 4 })
    const steps: Step[] = await client.steps(task.id)
    const failed: string | null = steps[0].error?.code ?? null
    await worker.run({ signal })
    await testing.diamond(client, { count: 2 })
    for await (const event of client.subscribe({ names: ['task'] })) {
      if (event.stepName === null) break
    }
    return report.completed + steps.length + (failed === null ? 0 : 1)
  } catch (e) {
    if (e instanceof TaskerError) return e.code.length
    throw e
  } finally {
    await client.close()
  }
}
