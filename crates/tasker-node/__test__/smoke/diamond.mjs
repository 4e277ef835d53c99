// The packaging smoke test (ES module): run from a folder where only the packed tarball is installed.
import assert from 'node:assert/strict'
import { Client, Worker, TaskerError, testing } from '@tasker/core'

const client = await Client.connect('memory:', { clock: 'manual' })
const { tasks } = await testing.diamond(client, { count: 2 })
const worker = new Worker(client)
worker.handle('testkit.noop', async (ctx) => ({ step: ctx.stepName }))
const report = await worker.runUntilIdle()
assert.equal(report.completed, 8)
for (const t of tasks) assert.equal((await client.task(t.id)).state, 'complete')
await client.close()
await assert.rejects(client.tasks(), TaskerError)
console.log('esm: diamond complete')
