/** The proxy baseline itself: a bare forwarding proxy on node:http + undici, what anyone would write in 30 lines.
 *  Every request goes to `upstream` (origin + base path) plus the request's own path and query, with the caller's
 *  headers minus hop-by-hop ones and Host, a fixed `Authorization: Bearer <token>`, and the answer streamed back
 *  (`Pool.stream` writes the upstream body straight into the ServerResponse). No limits, no logging. Run in its
 *  own process by undici-proxy-child.ts, and beside an idle tessera server by experiments/fat-undici-child.ts. */
import { createServer, type IncomingHttpHeaders } from "node:http"
import type { AddressInfo } from "node:net"
import { Pool } from "undici"

const hop = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"])

const endToEnd = (h: IncomingHttpHeaders | Record<string, string | string[] | undefined>) => {
  const out: Record<string, string | string[]> = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !hop.has(k)) out[k] = v
  return out
}

export const startUndiciProxy = async (
  upstreamUrl: string,
  token: string
): Promise<{ readonly url: string; readonly close: () => Promise<void> }> => {
  const upstream = new URL(upstreamUrl)
  const basePath = upstream.pathname.replace(/\/+$/, "")
  const authorization = `Bearer ${token}`
  const pool = new Pool(upstream.origin, { connections: 32 })
  const server = createServer((req, res) => {
    const headers = endToEnd(req.headers)
    headers["authorization"] = authorization
    const hasBody = req.headers["content-length"] !== undefined || req.headers["transfer-encoding"] !== undefined
    pool.stream(
      { path: `${basePath}${req.url ?? "/"}`, method: req.method ?? "GET", headers, body: hasBody ? req : null },
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
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await pool.close()
    }
  }
}
