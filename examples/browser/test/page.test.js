// The page in a real headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core; no browser is
// downloaded): a cyclic template shows the cycle by name, a valid one is drawn, Run executes it with the demo
// handlers (some fail once and are retried), every step completes, and explain is shown. The screenshot is
// the record a person can look at: SCREENSHOT names its path.
import test from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'
import { serve } from '../serve.js'

const DIST = fileURLToPath(new URL('../dist/', import.meta.url))
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium'
const SCREENSHOT = process.env.SCREENSHOT ?? fileURLToPath(new URL('../../../target/browser/wasm-page.png', import.meta.url))

const CYCLE = `namespace: demo
name: loop
version: 1.0.0
steps:
  - { name: fetch, handler: demo.fetch, depends_on: [store] }
  - { name: transform, handler: demo.transform, depends_on: [fetch] }
  - { name: store, handler: demo.store, depends_on: [transform] }
`
const VALID = `namespace: demo
name: etl
version: 1.0.0
defaults:
  retry: { max_attempts: 3, backoff: exponential, base_ms: 200, jitter: 0 }
steps:
  - { name: extract, handler: demo.extract }
  - { name: transform, handler: demo.transform, depends_on: [extract] }
  - { name: enrich, handler: demo.enrich, depends_on: [extract] }
  - { name: load, handler: demo.load, depends_on: [transform, enrich] }
`

test('the page validates, draws and runs a workflow in headless Chromium', async () => {
  const server = await serve(DIST)
  // Root needs no sandbox; the rest keeps Chromium off the (closed) network. playwright-core gives every
  // launch a fresh, empty profile of its own (it refuses a --user-data-dir).
  const args = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync']
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args })
  const errors = []
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(`http://127.0.0.1:${server.address().port}/`)
    await page.locator('#status[data-state="ready"]').waitFor({ timeout: 30_000 })
    await page.locator('#dag svg').waitFor()

    await page.locator('#template').fill(CYCLE)
    const cycle = page.locator('#problems li', { hasText: 'cycle detected' })
    await cycle.waitFor()
    const text = await cycle.textContent()
    for (const name of ['fetch', 'transform', 'store']) assert.match(text, new RegExp(name))
    assert.equal(await page.locator('#run').isDisabled(), true)
    assert.equal(await page.locator('#dag svg').count(), 0)

    await page.locator('#template').fill(VALID)
    await page.locator('#problems[data-count="0"]').waitFor({ state: 'attached' })
    await page.locator('#dag svg').waitFor()
    for (const name of ['extract', 'transform', 'enrich', 'load']) {
      assert.ok((await page.locator('#dag svg').textContent()).includes(name), `the DAG shows ${name}`)
    }

    await page.locator('#run').click()
    await page.locator('#task-state', { hasText: /^complete$/ }).waitFor({ timeout: 60_000 })
    const states = await page.locator('#steps tbody tr').evaluateAll((trs) => trs.map((tr) => [tr.dataset.step, tr.dataset.state]))
    assert.deepEqual(states, [['extract', 'complete'], ['transform', 'complete'], ['enrich', 'complete'], ['load', 'complete']])
    const attempts = await page.locator('#steps tbody td.attempts').allTextContents()
    assert.ok(attempts.some((a) => Number(a) > 1), `a demo failure was retried (attempts ${attempts})`)
    const explain = JSON.parse(await page.locator('#explain').textContent())
    assert.equal(explain.taskState, 'complete')
    assert.equal(explain.steps.length, 4)

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true })
    await page.screenshot({ path: SCREENSHOT, fullPage: true })
    console.log(`screenshot: ${SCREENSHOT}`)
    assert.deepEqual(errors, [])
  } finally {
    await browser.close()
    server.close()
  }
})
