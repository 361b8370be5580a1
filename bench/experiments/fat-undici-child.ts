/** Experiment (not a bench): the bare undici proxy of lib/undici-proxy-child.ts, in a process that has also loaded
 *  and started a tessera server for $BENCH_CONFIG (idle). Answers whether the bare proxy's cost per request grows
 *  with the process's working set alone. */
import { Config } from "@tessera/engine"
import { startServer } from "@tessera/server"
import * as Effect from "effect/Effect"
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { Pool } from "undici"
import { serve } from "../lib/child.ts"

const config = await Effect.runPromise(
  Config.parse("/tmp/tessera-bench/tessera.yaml", process.env["BENCH_CONFIG"] ?? "", process.env)
)
const tessera = await startServer(config, { port: 0, host: "127.0.0.1", log: false, trimHeap: true })
const upstream = new URL(process.env["BENCH_UPSTREAM"] ?? "http://127.0.0.1:1")
const basePath = upstream.pathname.replace(/\/+$/, "")
const authorization = `Bearer ${process.env["BENCH_TOKEN"] ?? "x"}`
const pool = new Pool(upstream.origin, { connections: 32 })
const hop = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"])
const endToEnd = (h: IncomingHttpHeaders | Record<string, string | string[] | undefined>) => {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !hop.has(k)) out[k] = v
  return out
}
const server = createServer((req, res) => {
  const headers = endToEnd(req.headers)
  headers["authorization"] = authorization
  pool.stream(
    { path: `${basePath}${req.url ?? "/"}`, method: req.method ?? "GET", headers, body: null },
    ({ statusCode, headers: h }) => {
      res.writeHead(statusCode, endToEnd(h))
      return res
    },
    (err) => {
      if (err && !res.headersSent) res.writeHead(502).end()
      else if (err) res.destroy()
    }
  )
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const { port } = server.address() as AddressInfo
serve({ url: `http://127.0.0.1:${port}`, tessera: tessera.url }, {}, async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await pool.close()
  await tessera.close()
})
