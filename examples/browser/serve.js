// Serves the built page (dist/) on localhost: `node serve.js [port]` (what `cargo xtask serve-example` runs),
// and `serve(dir, port)` for the browser test. The .wasm goes out as application/wasm, so the browser
// compiles it while it streams.
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
}

/** Starts a server of `dir` on 127.0.0.1:`port` (0: any free port); resolves to it, listening. */
export function serve(dir, port = 0) {
  const root = path.resolve(dir)
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    const file = path.join(root, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname))
    if (!file.startsWith(root + path.sep)) {
      res.writeHead(403).end()
      return
    }
    try {
      const body = await readFile(file)
      res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' }).end(body)
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found')
    }
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => resolve(server))
  })
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const dist = fileURLToPath(new URL('./dist/', import.meta.url))
  const server = await serve(dist, Number(process.argv[2] ?? 4173))
  console.log(`serving ${dist} on http://127.0.0.1:${server.address().port}/ (Ctrl-C stops)`)
}
