'use strict'
// Shared setup of the node:test suite: the stores every behaviour runs on, and small templates.
const { execFileSync } = require('node:child_process')
const { mkdtempSync, rmSync } = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { randomUUID } = require('node:crypto')

const PG_URL = process.env.TASKER_TEST_PG_URL || null
/** tests/scenarios of the repository. */
const SCENARIO_DIR = process.env.TASKER_SCENARIO_DIR || path.join(__dirname, '..', '..', '..', 'tests', 'scenarios')

/** A temporary directory removed when the process exits. */
function tmpDir() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tasker-node-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/**
 * An empty PostgreSQL database on the server of TASKER_TEST_PG_URL, as the Rust and Python suites make them:
 * with `psql` (the xtask part puts PostgreSQL's bin dir on PATH), since the package has no DDL API.
 */
function freshPgDatabase() {
  const name = `node_${randomUUID().replaceAll('-', '').slice(0, 12)}`
  execFileSync('psql', [PG_URL, '-q', '-c', `CREATE DATABASE ${name}`], { stdio: 'pipe' })
  return `${PG_URL.slice(0, PG_URL.lastIndexOf('/'))}/${name}`
}

/**
 * The stores a behaviour runs on: `[label, () => fresh url]`. PostgreSQL is listed always and skipped, with
 * the reason in the summary, when TASKER_TEST_PG_URL is not set.
 */
function stores() {
  const dir = tmpDir()
  return [
    ['memory', () => 'memory:'],
    ['sqlite memory', () => 'sqlite::memory:'],
    ['sqlite file', () => `sqlite://${path.join(dir, `${randomUUID()}.db`)}`],
    ['postgres', PG_URL ? freshPgDatabase : null],
  ]
}

/** node:test options that skip a PostgreSQL test, with its reason, when no server is configured. */
const pgSkip = (fresh) => (fresh ? {} : { skip: 'TASKER_TEST_PG_URL is not set' })

const ONE_STEP = { namespace: 'w', version: '1.0.0', defaults: { retry: { max_attempts: 3, backoff: 'none' } } }

const DIAMOND = {
  namespace: 'shop',
  name: 'order',
  version: '1.0.0',
  steps: [
    { name: 'validate', handler: 'shop.validate' },
    { name: 'charge', handler: 'shop.charge', depends_on: ['validate'] },
    { name: 'reserve', handler: 'shop.reserve', depends_on: ['validate'] },
    { name: 'ship', handler: 'shop.ship', depends_on: ['charge', 'reserve'] },
  ],
}

/** Waits for `cond()` to hold, polling on the event loop; fails loudly after `ms`. */
async function until(cond, what, ms = 10000) {
  const deadline = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

module.exports = { PG_URL, SCENARIO_DIR, stores, pgSkip, tmpDir, ONE_STEP, DIAMOND, until }
