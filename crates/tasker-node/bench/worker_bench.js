'use strict'
// The Node half of `cargo xtask bench --bindings`: one `Worker` of @tasker/core running no-op handlers on a
// fresh PostgreSQL database, measured from outside the library. Prints one JSON line; exits non-zero unless
// every task and step completed.
//
//     node bench/worker_bench.js --url postgres://postgres@127.0.0.1:5432/postgres [--tasks 2000]
//         [--concurrency 64] [--quick]
//
// The URL names a server; the script creates its own database there (`CREATE DATABASE` through psql), so
// every run starts from empty tables, and drops it afterwards.
//
// Node runs every handler and every native call on one thread, the JS thread, so the host CPU per step is
// read off that thread alone: `/proc/self/task/<pid>/schedstat` (nanoseconds on the CPU) at the start and
// the end of the run. That figure holds everything the JS thread did: the native calls (lifting the
// arguments, queueing an outcome, and lowering each claimed batch into JS objects when its Promise
// settles), the worker loop, the handler calls, Promise bookkeeping and garbage collection. It is the upper
// bound judged against the aim. The synchronous native calls are also timed one by one (wall time on the
// JS thread, which never waits in them); the lowering of a settled batch cannot be timed from outside the
// addon, so it is only in the thread's total.
const { execFileSync } = require('node:child_process')
const { readFileSync } = require('node:fs')
const { randomBytes } = require('node:crypto')

const { Client, Worker, testing } = require('../lib')

const STEPS_PER_TASK = 4

function args(argv) {
  const out = { tasks: 2000, concurrency: 64, quick: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') out.quick = true
    else if (a === '--url') out.url = argv[++i]
    else if (a === '--tasks') out.tasks = Number.parseInt(argv[++i], 10)
    else if (a === '--concurrency') out.concurrency = Number.parseInt(argv[++i], 10)
    else throw new Error(`unknown argument ${a}`)
  }
  if (!out.url) throw new Error('--url is required')
  return out
}

/** Nanoseconds the JS thread (the main thread, whose tid is the pid) has spent on a CPU. */
function jsThreadCpuNs() {
  return BigInt(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0])
}

const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const psql = (url, sql) => execFileSync('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { stdio: 'ignore' })

/** Per kind of native call: [calls, wall seconds]. A claim that returns nothing is the loop waiting for work. */
class FfiClock {
  static KINDS = ['claim', 'claim_empty', 'claim_sync', 'report', 'report_failure', 'flush']
  stats = Object.fromEntries(FfiClock.KINDS.map((k) => [k, [0, 0]]))
  add(kind, ns) {
    const e = this.stats[kind]
    e[0] += 1
    e[1] += Number(ns) / 1e9
  }
}

/**
 * Stands in for the native session: the loop's calls into the addon pass through here and are timed;
 * everything else goes straight to the native object. Timing lives in this script, not in the library.
 */
function timedSession(native, clock) {
  const sync = (kind, name) =>
    function (...a) {
      const t = process.hrtime.bigint()
      try {
        return native[name](...a)
      } finally {
        clock.add(kind, process.hrtime.bigint() - t)
      }
    }
  const wrapped = {
    report: sync('report', 'report'),
    reportFailure: sync('report_failure', 'reportFailure'),
    reportMissing: sync('report_failure', 'reportMissing'),
    async nextBatch(...a) {
      const t = process.hrtime.bigint()
      const p = native.nextBatch(...a)
      const started = process.hrtime.bigint()
      clock.add('claim_sync', started - t)
      const batch = await p
      clock.add(batch.length > 0 ? 'claim' : 'claim_empty', process.hrtime.bigint() - t)
      return batch
    },
    async flush() {
      const t = process.hrtime.bigint()
      try {
        return await native.flush()
      } finally {
        clock.add('flush', process.hrtime.bigint() - t)
      }
    },
  }
  return new Proxy(native, {
    get(target, prop) {
      if (Object.hasOwn(wrapped, prop)) return wrapped[prop]
      const v = target[prop]
      return typeof v === 'function' ? v.bind(target) : v
    },
  })
}

/** The library's Worker with its session wrapped; the loop itself is unchanged. */
class TimedWorker extends Worker {
  #timed = null
  #native = null
  clock = new FfiClock()
  get session() {
    const native = super.session
    if (native !== this.#native) {
      this.#native = native
      this.#timed = timedSession(native, this.clock)
    }
    return this.#timed
  }
}

const round = (x, digits) => Number(x.toFixed(digits))

async function main() {
  const opts = args(process.argv.slice(2))
  const tasks = opts.quick ? 200 : opts.tasks
  const steps = tasks * STEPS_PER_TASK
  const db = `tasker_bench_node_${randomBytes(4).toString('hex')}`
  const dbUrl = opts.url.replace(/^(\w+:\/\/[^/?]*)(\/[^?]*)?/, (_, server) => `${server}/${db}`)
  psql(opts.url, `CREATE DATABASE ${db}`)
  let result
  try {
    const client = await Client.connect(dbUrl)
    try {
      const t = performance.now()
      await testing.linear(client, { n: STEPS_PER_TASK, count: tasks })
      const createdS = (performance.now() - t) / 1000

      const worker = new TimedWorker(client, { concurrency: opts.concurrency })
      worker.handle('testkit.noop', () => ({}))
      // Outcomes are written by the session's reporter, not by a call of the loop, so a watcher sees the
      // last completion (polling every 20 ms) and stops the worker, so the run ends when the work does.
      let completedAt = null
      const giveUp = performance.now() + (120 + steps / 100) * 1000
      const watcher = (async () => {
        while (performance.now() < giveUp) {
          await new Promise((r) => setTimeout(r, 20))
          if (((await client.healthCounts()).tasks.complete ?? 0) === tasks) {
            completedAt = performance.now()
            break
          }
        }
        worker.stop()
      })()

      const loadBefore = loadavg()
      const cpuStarted = process.cpuUsage()
      const threadStarted = jsThreadCpuNs()
      const started = performance.now()
      await worker.run({ handleSignals: false })
      const ended = performance.now()
      const threadCpuS = Number(jsThreadCpuNs() - threadStarted) / 1e9
      const cpu = process.cpuUsage(cpuStarted)
      const processCpuS = (cpu.user + cpu.system) / 1e6
      await watcher
      const loadAfter = loadavg()

      const counts = await client.healthCounts()
      const s = worker.clock.stats
      const tasksDone = counts.tasks.complete ?? 0
      const stepsDone = counts.steps.complete ?? 0
      const ok =
        counts.totalTasks === tasks &&
        tasksDone === tasks &&
        counts.totalSteps === steps &&
        stepsDone === steps &&
        s.report_failure[0] === 0
      const toLast = ((completedAt ?? ended) - started) / 1000
      const syncNative = s.claim_sync[1] + s.report[1] + s.report_failure[1]
      const claimWall = s.claim[1] + s.report[1] + s.report_failure[1] + s.flush[1]
      result = {
        binding: 'node',
        node: process.version,
        tasks,
        steps,
        concurrency: opts.concurrency,
        created_s: round(createdS, 3),
        run_s: round((ended - started) / 1000, 3),
        to_last_complete_s: round(toLast, 3),
        steps_per_s: round(steps / toLast, 1),
        // The JS thread's CPU over the run ÷ steps: the upper bound judged against the aim (see the top).
        ffi_cpu_us_per_step: round((threadCpuS / steps) * 1e6, 2),
        // Wall time in the synchronous native calls alone (claim arguments and spawn, outcome queueing).
        sync_native_us_per_step: round((syncNative / steps) * 1e6, 2),
        // Wall time from calling a claim to its settled batch, plus the report and flush calls, ÷ steps.
        ffi_wall_us_per_step: round((claimWall / steps) * 1e6, 1),
        process_cpu_us_per_step: round((processCpuS / steps) * 1e6, 1),
        empty_claim_wall_us_per_step: round((s.claim_empty[1] / steps) * 1e6, 1),
        calls: Object.fromEntries(Object.entries(s).map(([k, [n, wall]]) => [k, { calls: n, wall_s: round(wall, 6) }])),
        js_thread_cpu_s: round(threadCpuS, 6),
        loadavg_before: loadBefore,
        loadavg_after: loadAfter,
        tasks_complete: tasksDone,
        steps_complete: stepsDone,
        ok,
      }
    } finally {
      await client.close()
    }
  } finally {
    psql(opts.url, `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`)
  }
  console.log(JSON.stringify(result))
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
