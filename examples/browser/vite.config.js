import { defineConfig } from 'vite'

export default defineConfig({
  // Top-level await: @tasker/wasm loads its module when it is imported.
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 4096 },
  // The package is linked from crates/tasker-wasm; its module is loaded by URL, not pre-bundled.
  optimizeDeps: { exclude: ['@tasker/wasm'], esbuildOptions: { target: 'es2022' } },
  server: { fs: { allow: ['../..'] } },
})
