/** proxy: GET through tessera's proxy (`/v1/proxy/api/items?page=1`, token applied by the server) against a bare
 *  undici forwarding proxy (lib/undici-proxy-child.ts, `Pool.stream`, a fixed Authorization header) as the
 *  baseline, and nginx forwarding with `proxy_set_header Authorization` as a peer row when the `nginx` binary is
 *  installed (SKIP otherwise). Behind every proxy is the same static, fast API answer (nginx's `return 200` when
 *  installed, else a bare node:http server), so that the proxies' own cost shows; a direct GET to it is an info
 *  row. The token comes from the sandbox IdP, once. Every process runs on its own; same connections and duration,
 *  rounds rotating through the sides. Targets: ≥ 0.9× the undici proxy's req/s, p99 ≤ 1.5× its p99. */
import { start, type Child } from "../lib/child.ts"
import { compareMany, type LoadOptions, type LoadResult } from "../lib/load.ts"
import { nginxBinary, startNginx, type Nginx } from "../lib/nginx.ts"
import type { Row } from "../lib/report.ts"
import { apiBody, CONNECTION, configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"
import { get } from "./server.ts"

export const bench: Bench = {
  name: "proxy",
  title: "Proxied GET vs a bare undici forwarding proxy (nginx as a peer)",
  run: async ({ settings: s, log }) => {
    const bin = nginxBinary()
    const stops: Array<() => Promise<void>> = []
    const sb = await startSandbox()
    stops.push(() => sb.stop())
    try {
      // The API behind the proxies.
      let api: { url: string; pid: number }
      if (bin) {
        const n = await startNginx(bin, { body: apiBody })
        stops.push(n.stop)
        api = { url: n.staticUrl!, pid: n.pid }
      } else {
        const c = await start<{ url: string }>(script("bare-child.ts"), { env: { BENCH_BODY: apiBody } })
        stops.push(c.stop)
        api = { url: c.info.url, pid: c.pid }
      }
      log(
        `API behind the proxies: ${bin ? "nginx static answer" : "bare node:http static answer (nginx not installed)"}`
      )
      const apiBase = `${api.url}/api`
      const server = await start<{ url: string }>(script("server-child.ts"), {
        env: {
          BENCH_CONFIG: configYaml({ ...sb.info, credentials: { ...sb.info.credentials, api_base_url: apiBase } }),
          BENCH_SERVER_LOG: s.serverLog
        }
      })
      stops.push(server.stop)
      const token = await sb.call<string>("issueToken")
      const undici: Child<{ url: string }> = await start<{ url: string }>(script("undici-proxy-child.ts"), {
        env: { BENCH_UPSTREAM: apiBase, BENCH_TOKEN: token }
      })
      stops.push(undici.stop)
      let nginx: Nginx | undefined
      if (bin) {
        nginx = await startNginx(bin, { proxyTo: apiBase, token })
        stops.push(nginx.stop)
      }

      const path = "/items?page=1"
      const urls: Record<string, string> = {
        tessera: `${server.info.url}/v1/proxy/${CONNECTION}${path}`,
        undici: `${undici.info.url}${path}`,
        ...(nginx ? { nginx: `${nginx.proxyUrl!}${path}` } : {}),
        direct: `${apiBase}${path}`
      }
      for (const [side, url] of Object.entries(urls)) {
        const r = await get(url)
        if (r.status !== 200 || r.body !== apiBody) throw new Error(`${side} answered ${r.status}: ${r.body}`)
      }
      const tokensBefore = await sb.call<number>("tokenCount")
      const opts = (url: string, proxyPid?: number): LoadOptions => ({
        url,
        durationS: s.durationS,
        connections: s.connections,
        pids: { ...(proxyPid ? { proxy: proxyPid } : {}), api: api.pid }
      })
      const sides: Record<string, LoadOptions> = {
        tessera: opts(urls["tessera"]!, server.pid),
        undici: opts(urls["undici"]!, undici.pid),
        ...(nginx ? { nginx: opts(urls["nginx"]!, nginx.pid) } : {}),
        direct: opts(urls["direct"]!)
      }
      const r: Record<string, LoadResult[]> = await compareMany(sides, s, log)
      const upstream = (await sb.call<number>("tokenCount")) - tokensBefore
      const rps = (k: string) => median(r[k]!.map((x) => x.reqPerSec))
      const p99 = (k: string) => median(r[k]!.map((x) => x.p99Ms))
      const p50 = (k: string) => median(r[k]!.map((x) => x.p50Ms))
      const cpuPerReq = (k: string) => median(r[k]!.map((x) => ((x.cpu["proxy"] ?? 0) / x.reqPerSec) * 1e6))
      const base = "bare undici proxy"
      const rows: Row[] = [
        {
          label: "req/s",
          unit: "req/s",
          value: rps("tessera"),
          baseline: { label: base, value: rps("undici") },
          target: { on: "ratio", op: ">=", limit: 0.9 },
          better: "higher"
        },
        {
          label: "p99 latency",
          unit: "ms",
          value: p99("tessera"),
          baseline: { label: base, value: p99("undici") },
          target: { on: "ratio", op: "<=", limit: 1.5 },
          better: "lower"
        },
        {
          label: "p50 latency",
          unit: "ms",
          value: p50("tessera"),
          baseline: { label: base, value: p50("undici") },
          better: "lower"
        },
        {
          label: "proxy CPU per request",
          unit: "µs",
          value: cpuPerReq("tessera"),
          baseline: { label: base, value: cpuPerReq("undici") },
          better: "lower"
        },
        nginx
          ? {
              label: "req/s (peer)",
              unit: "req/s",
              value: rps("tessera"),
              baseline: { label: "nginx proxy_pass", value: rps("nginx") },
              better: "higher"
            }
          : {
              label: "req/s (peer)",
              unit: "req/s",
              value: rps("tessera"),
              baseline: { label: "nginx proxy_pass", value: NaN },
              skipped: "nginx is not installed (Debian package nginx)",
              better: "higher"
            },
        {
          label: "req/s",
          unit: "req/s",
          value: rps("tessera"),
          baseline: { label: "direct to the API, no proxy", value: rps("direct") },
          better: "higher"
        }
      ]
      return {
        rows,
        details: {
          path,
          api: bin ? "nginx" : "node:http",
          connections: s.connections,
          durationS: s.durationS,
          rounds: s.rounds,
          accessLog: s.serverLog,
          upstreamTokenCallsDuringLoad: upstream,
          results: r
        },
        notes: [
          ...(nginx ? [] : ["nginx peer row SKIPPED: the nginx binary is not installed"]),
          ...(upstream > 0
            ? [`${upstream} token requests reached the sandbox during the load: the cache did not hold`]
            : [])
        ]
      }
    } finally {
      await Promise.all(stops.map((f) => f()))
    }
  }
}
