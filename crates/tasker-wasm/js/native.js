// Loads the wasm module once, at import: in Node by reading the .wasm file of this package, in a browser by
// fetching it from beside the glue (bundlers see wasm-bindgen's `new URL(…, import.meta.url)` and ship it).
import init, * as native from '../pkg/tasker_wasm.js'

const inNode = typeof process !== 'undefined' && process.versions?.node != null && typeof window === 'undefined'
let input
if (inNode) {
  const { readFile } = await import('node:fs/promises')
  input = await readFile(new URL('../pkg/tasker_wasm_bg.wasm', import.meta.url))
}
await init(input === undefined ? undefined : { module_or_path: input })

export default native
