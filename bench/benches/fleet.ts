/** fleet: three tessera servers on one Redis (tokens) and one PostgreSQL (connections) holding 10 000 tenants'
 *  connections; the token route at 200 concurrent connections spread over the three, each request for a random
 *  tenant's connection. Recorded: req/s and p99 per instance and in all, RSS per instance, and the token requests
 *  that reached the IdP during the load (each credential's first fetch, then none: they live for an hour).
 *  Needs Redis (BENCH_REDIS_URL) and PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/test). */
import autocannon from "autocannon"
import { randomBytes } from "node:crypto"
import { request } from "node:http"
import pg from "pg"
import { rssOf, start, type Child } from "../lib/child.ts"
import { configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { percentile } from "../lib/stats.ts"

const MB = 1024 * 1024

const send = (url: string, method: string, body?: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers: body ? { "content-type": "application/json", "content-length": Buffer.byteLength(body) } : {}
      },
      (res) => {
        res.resume()
        res.on("end", () => resolve(res.statusCode ?? 0))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const pool = async (n: number, concurrency: number, f: (i: number) => Promise<void>) => {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) await f(i)
    })
  )
}

const name = (i: number) => `tenant-${String(i).padStart(5, "0")}`

export const bench: Bench = {
  name: "fleet",
  title: "Three instances, 10 000 tenants, token route at 200 concurrency",
  run: async ({ settings: s, log }) => {
    const n = s.quick ? 500 : 10_000
    const databaseUrl = process.env["BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
    const schema = `tessera_bench_${randomBytes(4).toString("hex")}`
    const sb = await startSandbox()
    const extra = [
      "connection_store:",
      "  type: postgres",
      `  url: ${databaseUrl}`,
      `  schema: ${schema}`,
      `  encryption_keys: ["${randomBytes(32).toString("base64")}"]`,
      "store:",
      "  type: redis",
      `  url: ${s.redisUrl}`,
      `  key_prefix: "tessera-bench:${randomBytes(4).toString("hex")}:"`,
      `  encryption_key: "${randomBytes(32).toString("base64")}"`
    ]
    const servers: Array<Child<{ url: string }>> = []
    try {
      for (let i = 0; i < 3; i++)
        servers.push(
          await start<{ url: string }>(script("server-child.ts"), {
            env: { BENCH_CONFIG: configYaml(sb.info, extra), BENCH_SERVER_LOG: s.serverLog }
          })
        )
      const [first] = servers
      const body = JSON.stringify({ provider: "oauth2", inputs: sb.info.credentials })
      const t0 = performance.now()
      await pool(n, 20, async (i) => {
        const status = await send(`${first!.info.url}/v1/connections/${name(i)}`, "PUT", body)
        if (status !== 201 && status !== 200) throw new Error(`PUT ${name(i)} answered ${status}`)
      })
      const putPerSecond = n / ((performance.now() - t0) / 1000)
      log(`PUT ${n} connections through one instance: ${Math.round(putPerSecond)} per second`)
      // Every credential fetched once, spread over the three (the others find it in Redis).
      await pool(n, 50, async (i) => {
        const status = await send(`${servers[i % 3]!.info.url}/v1/connections/${name(i)}/token`, "GET")
        if (status !== 200) throw new Error(`token of ${name(i)} answered ${status}`)
      })
      const tokensBefore = await sb.call<number>("tokenCount")
      const durationS = Math.max(s.durationS * 2, 2)
      const results = await Promise.all(
        servers.map(async (server, k) => {
          const latencies: number[] = []
          const instance = autocannon({
            url: server.info.url,
            connections: k === 0 ? 68 : 66,
            duration: durationS,
            timeout: 10,
            requests: [
              {
                setupRequest: (req: Record<string, unknown>) => ({
                  ...req,
                  path: `/v1/connections/${name(Math.floor(Math.random() * n))}/token`
                })
              }
            ]
          })
          instance.on("response", (_c: unknown, status: number, _b: number, ms: number) => {
            if (status === 200) latencies.push(ms)
          })
          const r = await instance
          return {
            reqPerSec: r["2xx"] / r.duration,
            bad: r.non2xx + r.errors + r.timeouts,
            p99Ms: percentile(latencies, 99),
            rssMB: ((await rssOf(server.pid)) ?? NaN) / MB
          }
        })
      )
      const upstream = (await sb.call<number>("tokenCount")) - tokensBefore
      const bad = results.reduce((x, r) => x + r.bad, 0)
      if (bad > 0) throw new Error(`${bad} requests failed during the load`)
      results.forEach((r, k) =>
        log(
          `instance ${k + 1}: ${Math.round(r.reqPerSec)} req/s, p99 ${r.p99Ms.toFixed(2)} ms, RSS ${Math.round(r.rssMB)} MB`
        )
      )
      return {
        rows: [
          { label: `PUT /v1/connections (${n}, 20 at a time)`, unit: "conn/s", value: putPerSecond, better: "higher" },
          {
            label: "req/s, all three, 200 connections",
            unit: "req/s",
            value: results.reduce((x, r) => x + r.reqPerSec, 0),
            better: "higher"
          },
          ...results.flatMap((r, k) => [
            { label: `instance ${k + 1}: p99`, unit: "ms", value: r.p99Ms, better: "lower" as const },
            { label: `instance ${k + 1}: RSS`, unit: "MB", value: r.rssMB, better: "lower" as const }
          ]),
          {
            label: "token requests to the IdP during the load",
            unit: "calls",
            value: upstream,
            target: { on: "value", op: "==", limit: 0 },
            better: "lower"
          }
        ],
        details: { tenants: n, durationS, results }
      }
    } finally {
      await Promise.all([...servers.map((c) => c.stop()), sb.stop()])
      const c = new pg.Client({ connectionString: databaseUrl })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
    }
  }
}
