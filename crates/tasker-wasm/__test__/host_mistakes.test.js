// The host mistakes of docs/bindings.md §6 on the wasm build: the checks @tasker/core runs, from the same file.
import { hostMistakes } from './helpers.js'

hostMistakes()
