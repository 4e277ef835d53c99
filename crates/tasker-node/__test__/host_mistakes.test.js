'use strict'
// The host mistakes of docs/bindings.md §6 on @tasker/core; crates/tasker-wasm runs the same checks on its build.
require('./host_mistakes').define(require('../lib/index.js'))
