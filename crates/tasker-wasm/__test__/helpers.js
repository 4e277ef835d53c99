// Shared by the node:test files: the repository's scenario directory, and the @tasker/core scenario runner
// and host-mistake checks bound to this package (the same rules, checks and failure reports for both JS
// bindings).
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
// Both shared files open their store with `Client.connect(url, options)`; the wasm build's only store is
// `memory:`.
const bound = { ...api, Client: { connect: (url, options) => api.Engine.open(url, options) } }
export const runner = require('../../tasker-node/__test__/scenario_runner.js').use(bound)
/** Registers @tasker/core's host-mistake checks (tasker-node/__test__/host_mistakes.js) on this package. */
export const hostMistakes = () => require('../../tasker-node/__test__/host_mistakes.js').define(bound)
/** Registers @tasker/core's cron schedule checks (tasker-node/__test__/schedules.js) on this package. */
export const schedules = () => require('../../tasker-node/__test__/schedules.js').define(bound, { objects: api.objects })
