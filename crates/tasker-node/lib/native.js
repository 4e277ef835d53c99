'use strict'
// Loads the native addon: `TASKER_CORE_NATIVE` (a path) when set, as `cargo xtask test-all` does with the
// addon it just built; else the packaged `tasker_core.<platform>.node` (`napi build --platform`); else a
// development build copied to `tasker_core.node`.
const { existsSync } = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const platform = `${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}`
const candidates = [
  process.env.TASKER_CORE_NATIVE,
  path.join(root, `tasker_core.${platform}.node`),
  path.join(root, 'tasker_core.node'),
].filter(Boolean)

const found = candidates.find((p) => existsSync(p))
if (!found) {
  throw new Error(
    `@tasker/core: no native addon for ${platform}; looked for ${candidates.join(', ')} ` +
      '(build it with `npm run build` in crates/tasker-node, or `cargo xtask test-all --only node`)',
  )
}
module.exports = require(found)
