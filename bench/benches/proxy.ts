/** proxy: GET through tessera's proxy (`/v1/proxy/api/items?page=1`, token applied by the server) vs the same GET
 *  sent straight to the sandbox API with a valid Bearer token. Sandbox, server and autocannon each run in their
 *  own process; same connections and duration, alternating rounds. Targets: ≥ 0.7× req/s, p99 ≤ 1.5×. */
import { start } from "../lib/child.ts"
import { compare } from "../lib/load.ts"
import { CONNECTION, configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"
import { get } from "./server.ts"

export const bench: Bench = {
  name: "proxy",
  title: "Proxied GET vs direct GET to the sandbox API",
  run: async ({ settings: s, log }) => {
    const sb = await startSandbox()
    const server = await start<{ url: string }>(script("server-child.ts"), {
      env: { BENCH_CONFIG: configYaml(sb.info), BENCH_SERVER_LOG: s.serverLog }
    })
    try {
      const path = "/items?page=1"
      const proxied = `${server.info.url}/v1/proxy/${CONNECTION}${path}`
      const direct = `${sb.info.apiBase}${path}`
      const token = await sb.call<string>("issueToken")
      const headers = { authorization: `Bearer ${token}` }
      const first = await get(proxied)
      if (first.status !== 200) throw new Error(`proxy answered ${first.status}: ${first.body}`)
      const tokensBefore = await sb.call<number>("tokenCount")
      const r = await compare(
        {
          url: proxied,
          durationS: s.durationS,
          connections: s.connections,
          pids: { server: server.pid, sandbox: sb.pid }
        },
        {
          url: direct,
          durationS: s.durationS,
          connections: s.connections,
          headers,
          pids: { server: server.pid, sandbox: sb.pid }
        },
        s,
        log
      )
      const upstream = (await sb.call<number>("tokenCount")) - tokensBefore
      const base = "direct to sandbox"
      return {
        rows: [
          {
            label: "req/s",
            unit: "req/s",
            value: median(r.target.map((x) => x.reqPerSec)),
            baseline: { label: base, value: median(r.baseline.map((x) => x.reqPerSec)) },
            target: { on: "ratio", op: ">=", limit: 0.7 },
            better: "higher"
          },
          {
            label: "p99 latency",
            unit: "ms",
            value: median(r.target.map((x) => x.p99Ms)),
            baseline: { label: base, value: median(r.baseline.map((x) => x.p99Ms)) },
            target: { on: "ratio", op: "<=", limit: 1.5 },
            better: "lower"
          },
          {
            label: "p50 latency",
            unit: "ms",
            value: median(r.target.map((x) => x.p50Ms)),
            baseline: { label: base, value: median(r.baseline.map((x) => x.p50Ms)) },
            better: "lower"
          }
        ],
        details: {
          path,
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
      await Promise.all([server.stop(), sb.stop()])
    }
  }
}
