/** node:http loaded as CommonJS. An ESM import of node:http (a named import too) evaluates every export of the
 *  module, among them the lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters, which load Node's bundled undici
 *  and what it needs (http2, tls, web streams, worker_threads...): about 10 MB of RSS in every command, `tessera
 *  serve` included, since the command modules load together. `require` hands over the module object without
 *  touching those getters (the server's src/node-http.ts does the same). Types stay `import type`. */
import { createRequire } from "node:module"

const http = createRequire(import.meta.url)("node:http") as typeof import("node:http")

export const createServer: typeof import("node:http").createServer = http.createServer
export const STATUS_CODES: typeof import("node:http").STATUS_CODES = http.STATUS_CODES
