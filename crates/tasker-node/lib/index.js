'use strict'
// @tasker/core: DAG workflows with retries on SQLite or PostgreSQL, from Node.
//
//     const { Client, Worker } = require('@tasker/core')
//     await using client = await Client.connect('sqlite://tasker.db')
//     await client.registerTemplate(yamlText)
//     await client.createTask('billing', 'invoice_sync', { context: { accountId: 42 } })
//     const worker = new Worker(client, { concurrency: 16 })
//     worker.handle('billing.fetch', async (ctx) => ({ invoices: await fetchInvoices(ctx.context) }))
//     await worker.run({ signal })
const native = require('./native')
const errors = require('./errors')
const { Client } = require('./client')
const { Worker, OverrunLease, failureOf } = require('./worker')
const { Subscription } = require('./events')
const testing = require('./testing')

const { expect, errorClass, ...errorClasses } = errors

module.exports = {
  version: native.version,
  Client,
  Worker,
  Subscription,
  OverrunLease,
  failureOf,
  testing,
  ...errorClasses,
  errorClass,
}
