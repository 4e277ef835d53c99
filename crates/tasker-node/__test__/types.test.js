'use strict'
// index.d.ts holds: a strict TypeScript consumer compiles against it, and its generated object interfaces
// list exactly the fields the addon lowers (the same table, camelCased).
const test = require('node:test')
const assert = require('node:assert/strict')
const { execFileSync } = require('node:child_process')
const { readFileSync, existsSync } = require('node:fs')
const path = require('node:path')
const native = require('../lib/native')

const root = path.join(__dirname, '..')

test('a strict TypeScript consumer compiles against index.d.ts', () => {
  const tsc = path.join(root, 'node_modules', '.bin', 'tsc')
  assert.ok(existsSync(tsc), `${tsc} is missing: run \`npm ci\` in crates/tasker-node`)
  execFileSync(
    tsc,
    ['--strict', '--noEmit', '--target', 'es2022', '--module', 'commonjs', '--lib', 'es2022,esnext.disposable,dom', '__test__/consumer.ts'],
    { cwd: root, stdio: 'pipe' },
  )
})

test('the generated interfaces of index.d.ts match the lowered objects field for field', () => {
  const dts = readFileSync(path.join(root, 'index.d.ts'), 'utf8')
  for (const [name, fields] of Object.entries(native.objects)) {
    const body = dts.match(new RegExp(`export interface ${name} \\{\\n([\\s\\S]*?)\\n\\}`))
    assert.ok(body, `index.d.ts has no interface ${name}; run \`cargo xtask gen\``)
    const declared = [...body[1].matchAll(/^ {2}readonly (\w+):/gm)].map((m) => m[1])
    assert.deepEqual(declared, fields, name)
  }
})

test('the ES module entry exports what the CommonJS one does', async () => {
  const esm = await import('../lib/index.mjs')
  const cjs = require('../lib/index.js')
  for (const key of Object.keys(cjs)) assert.equal(esm[key], cjs[key], key)
  assert.equal(esm.default, cjs)
})
