/** server: cached-token `GET /v1/connections/:name/token` on the tessera server vs a bare node:http server that
 *  answers a fixed JSON body of the same size. Both run in their own process; autocannon drives both with the same
 *  connections and duration, in alternating rounds. Target: tessera ≥ 0.8× the baseline's req/s. */
import { request } from "node:http"
import { start } from "../lib/child.ts"
import { compare } from "../lib/load.ts"
import { CONNECTION, configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"

export const get = (url: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> =>
  new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = ""
      res
        .setEncoding("utf8")
        .on("data", (c: string) => {
          body += c
        })
        .on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
      .on("error", reject)
      .end()
  })

export const bench: Bench = {
  name: "server",
  title: "Cached token route req/s vs bare node:http",
  run: async ({ settings: s, log }) => {
    const sb = await startSandbox()
    const server = await start<{ url: string }>(script("server-child.ts"), {
      env: { BENCH_CONFIG: configYaml(sb.info), BENCH_SERVER_LOG: s.serverLog }
    })
    let bare: Awaited<ReturnType<typeof start<{ url: string }>>> | undefined
    try {
      const tokenUrl = `${server.info.url}/v1/connections/${CONNECTION}/token`
      const first = await get(tokenUrl) // acquires and caches the token
      if (first.status !== 200) throw new Error(`token route answered ${first.status}: ${first.body}`)
      const size = Buffer.byteLength(first.body)
      bare = await start<{ url: string }>(script("bare-child.ts"), {
        env: { BENCH_BODY: JSON.stringify({ pad: "x".repeat(Math.max(0, size - 10)) }) }
      })
      const check = await get(bare.info.url)
      if (Buffer.byteLength(check.body) !== size)
        throw new Error(`baseline body is ${Buffer.byteLength(check.body)} bytes, tessera's ${size}`)
      const tokensBefore = await sb.call<number>("tokenCount")
      const r = await compare(
        { url: tokenUrl, durationS: s.durationS, connections: s.connections, pids: { server: server.pid } },
        { url: bare.info.url, durationS: s.durationS, connections: s.connections, pids: { bare: bare.pid } },
        s,
        log
      )
      const upstream = (await sb.call<number>("tokenCount")) - tokensBefore
      const t = median(r.target.map((x) => x.reqPerSec))
      const b = median(r.baseline.map((x) => x.reqPerSec))
      return {
        rows: [
          {
            label: "req/s, cached token",
            unit: "req/s",
            value: t,
            baseline: { label: "bare node:http", value: b },
            target: { on: "ratio", op: ">=", limit: 0.8 },
            better: "higher"
          },
          {
            label: "p99 latency",
            unit: "ms",
            value: median(r.target.map((x) => x.p99Ms)),
            baseline: { label: "bare node:http", value: median(r.baseline.map((x) => x.p99Ms)) },
            better: "lower"
          }
        ],
        details: {
          bodyBytes: size,
          connections: s.connections,
          durationS: s.durationS,
          rounds: s.rounds,
          accessLog: s.serverLog,
          upstreamTokenCallsDuringLoad: upstream,
          target: r.target,
          baseline: r.baseline
        },
        notes:
          upstream > 0 ? [`${upstream} token requests reached the sandbox during the load: the cache did not hold`] : []
      }
    } finally {
      await Promise.all([server.stop(), bare?.stop(), sb.stop()])
    }
  }
}
