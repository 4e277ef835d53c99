// Shared by the node:test files: the repository's scenario directory, and the @tasker/core scenario runner
// bound to this package (the same replay rules, checks and failure report for both JS bindings).
import { readdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import * as api from '../js/index.js'

export const SCENARIO_DIR = fileURLToPath(new URL('../../../tests/scenarios/', import.meta.url))

/** The scenario files, `*.yaml` and `*.yml`, sorted by name (the reference runner's rule). */
export const scenarioFiles = () =>
  readdirSync(SCENARIO_DIR)
    .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
    .sort()
    .map((f) => path.join(SCENARIO_DIR, f))

const require = createRequire(import.meta.url)
// The runner opens its store with `Client.connect(url, options)`; the wasm build's only store is `memory:`.
export const runner = require('../../tasker-node/__test__/scenario_runner.js').use({
  ...api,
  Client: { connect: (url, options) => api.Engine.open(url, options) },
})
