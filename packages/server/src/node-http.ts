/** node:http loaded as CommonJS. An ESM import of node:http (`import * as http` or a named import alike) evaluates
 *  every export of the module, among them the lazy `WebSocket`, `CloseEvent` and `MessageEvent` getters, which load
 *  Node's bundled undici and what it needs (http2, tls, web streams, worker_threads, perf_hooks, assert...): about
 *  10 MB of RSS and 2.3 MB of heap in a server that uses none of it (`node --expose-gc` on a file importing
 *  node:http: 75 vs 65 MB RSS). `require` hands over the module object without touching those getters, as
 *  @effect/platform-node's internal/http.js does for the same reason. Types stay `import type ... from "node:http"`. */
import { createRequire } from "node:module"

const http = createRequire(import.meta.url)("node:http") as typeof import("node:http")

export const createServer: typeof import("node:http").createServer = http.createServer
