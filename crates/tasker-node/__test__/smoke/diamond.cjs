// The packaging smoke test (CommonJS): run from a folder where only the packed tarball is installed.
const assert = require('node:assert/strict')
const { Client, Worker, ValidationError } = require('@tasker/core')

const DIAMOND = `
namespace: shop
name: order
version: 1.0.0
steps:
  - { name: validate, handler: shop.step }
  - { name: charge, handler: shop.step, depends_on: [validate] }
  - { name: reserve, handler: shop.step, depends_on: [validate] }
  - { name: ship, handler: shop.step, depends_on: [charge, reserve] }
`

async function main() {
  assert.ok(require.resolve('@tasker/core').includes('node_modules'), 'loaded from the installed package')
  const client = await Client.connect('sqlite::memory:')
  await client.registerTemplate(DIAMOND)
  const task = await client.createTask('shop', 'order', { context: { order: 1 } })
  const worker = new Worker(client, { concurrency: 4 })
  worker.handle('shop.step', async (ctx) => ({ step: ctx.stepName, after: Object.keys(ctx.dependencyResults).sort() }))
  const report = await worker.runUntilIdle()
  assert.equal(report.completed, 4)
  assert.equal((await client.task(task.id)).state, 'complete')
  await assert.rejects(client.task('nope'), ValidationError)
  await client.close()
  console.log('commonjs: diamond complete')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
