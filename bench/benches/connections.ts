/** connections: a server holding 10 000 stored connections (SQLite connection store) against one whose config names
 *  a single connection. Both in their own process, same sandbox IdP.
 *  - PUT throughput: 10 000 `PUT /v1/connections/:name` (10 at a time), in connections per second (info).
 *  - Start-up with 10 000 stored: time to listen, and no token request before the first call (lazy, not eager).
 *  - Token route req/s on a stored connection (cached) vs the one-connection config's: target ≥ 0.9x.
 *  - RSS of the server holding 10 000 connections, after the loads: target ≤ 250 MB. */
import { request } from "node:http"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { rssOf, start, type Child } from "../lib/child.ts"
import { compare } from "../lib/load.ts"
import { CONNECTION, configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"
import { get } from "./server.ts"

const MB = 1024 * 1024

const put = (base: string, name: string, body: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(
      `${base}/v1/connections/${name}`,
      { method: "PUT", headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const putAll = async (base: string, n: number, body: string, concurrency = 10): Promise<number> => {
  let next = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (;;) {
        const i = next++
        if (i >= n) return
        const status = await put(base, `tenant-${String(i).padStart(5, "0")}`, body)
        if (status !== 201 && status !== 200) throw new Error(`PUT tenant-${i} answered ${status}`)
      }
    })
  )
  return n / ((performance.now() - t0) / 1000)
}

export const bench: Bench = {
  name: "connections",
  title: "10 000 stored connections: PUT rate, lazy start-up, token route and RSS",
  run: async ({ settings: s, log }) => {
    const n = s.quick ? 500 : 10_000
    const dir = mkdtempSync(join(tmpdir(), "tessera-bench-connections-"))
    const sb = await startSandbox()
    const storeYaml = ["connection_store:", "  type: sqlite", `  path: ${join(dir, "connections.db")}`]
    const children: Array<Child<{ url: string }>> = []
    const server = (extra: ReadonlyArray<string>) =>
      start<{ url: string }>(script("server-child.ts"), {
        env: { BENCH_CONFIG: configYaml(sb.info, extra), BENCH_SERVER_LOG: s.serverLog }
      }).then((c) => {
        children.push(c)
        return c
      })
    try {
      let many = await server(storeYaml)
      const body = JSON.stringify({ provider: "oauth2", inputs: sb.info.credentials, tags: { tenant: "bench" } })
      const perSecond = await putAll(many.info.url, n, body)
      log(`PUT ${n} connections: ${Math.round(perSecond)} per second`)

      // A restart over the filled store: it must listen without touching the IdP.
      await many.stop()
      children.splice(children.indexOf(many), 1)
      const tokensBefore = await sb.call<number>("tokenCount")
      const t0 = performance.now()
      many = await server(storeYaml)
      const startupMs = performance.now() - t0
      const eager = (await sb.call<number>("tokenCount")) - tokensBefore

      const one = await server([])
      const stored = `${many.info.url}/v1/connections/tenant-${String(n - 1).padStart(5, "0")}/token`
      const single = `${one.info.url}/v1/connections/${CONNECTION}/token`
      for (const url of [stored, single]) {
        const r = await get(url)
        if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${r.body}`)
      }
      const r = await compare(
        { url: stored, durationS: s.durationS, connections: s.connections, pids: { server: many.pid } },
        { url: single, durationS: s.durationS, connections: s.connections, pids: { server: one.pid } },
        s,
        log
      )
      const rss = ((await rssOf(many.pid)) ?? NaN) / MB
      const rssOne = ((await rssOf(one.pid)) ?? NaN) / MB
      return {
        rows: [
          {
            label: `PUT /v1/connections (${n}, 10 at a time)`,
            unit: "conn/s",
            value: perSecond,
            better: "higher"
          },
          {
            label: `start-up with ${n} stored`,
            unit: "ms",
            value: startupMs,
            better: "lower"
          },
          {
            label: "token requests at start-up",
            unit: "calls",
            value: eager,
            target: { on: "value", op: "==", limit: 0 },
            better: "lower"
          },
          {
            label: `req/s, cached token, ${n} stored`,
            unit: "req/s",
            value: median(r.target.map((x) => x.reqPerSec)),
            baseline: { label: "one-connection config", value: median(r.baseline.map((x) => x.reqPerSec)) },
            target: { on: "ratio", op: ">=", limit: 0.9 },
            better: "higher"
          },
          {
            label: `RSS holding ${n} connections`,
            unit: "MB",
            value: rss,
            baseline: { label: "one-connection config, same load", value: rssOne },
            target: { on: "value", op: "<=", limit: 250 },
            better: "lower"
          }
        ],
        details: { connections: n, target: r.target, baseline: r.baseline }
      }
    } finally {
      await Promise.all([...children.map((c) => c.stop()), sb.stop()])
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
