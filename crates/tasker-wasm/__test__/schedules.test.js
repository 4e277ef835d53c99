// Cron schedules on the wasm build's memory engine: the checks @tasker/core runs, from the same file.
import { schedules } from './helpers.js'

schedules()
