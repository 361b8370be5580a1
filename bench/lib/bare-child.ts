/** The baseline server: bare node:http answering every request with one fixed JSON body ($BENCH_BODY), with the
 *  same Content-Type and Cache-Control as tessera's token route. Nothing else: no routing, no logging. Ops as
 *  server-child.ts: `memory`, `spaces`, `gc`. */
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { getHeapSpaceStatistics } from "node:v8"
import { serve } from "./child.ts"

const body = Buffer.from(process.env["BENCH_BODY"] ?? "{}")
const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store", "content-length": body.length })
  res.end(body)
})
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
const { port } = server.address() as AddressInfo

serve(
  { url: `http://127.0.0.1:${port}` },
  {
    memory: () => process.memoryUsage(),
    spaces: () => getHeapSpaceStatistics(),
    gc: () => {
      ;(globalThis as { gc?: () => void }).gc?.()
      return process.memoryUsage()
    }
  },
  () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
)
