'use strict'
// Cron schedules on @tasker/core, on every store; crates/tasker-wasm runs the same checks on its build.
const { stores, pgSkip } = require('./helpers')
const native = require('../lib/native')

require('./schedules').define(require('../lib/index.js'), { objects: native.objects, stores: stores(), skip: pgSkip })
