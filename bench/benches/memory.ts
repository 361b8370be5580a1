/** memory: the tessera server's resident set size after N sequential requests, each on a NEW TCP connection (no
 *  keep-alive), to the cached-token route; sampled every N/10 requests, so growth shows as a trend rather than one
 *  number. Baseline: the bare node:http server of `server`, given the same N connections. RSS is read from
 *  /proc/<pid>/status by the parent (no GC is forced). Targets: tessera ≤ 150 MB after N = 10 000, and ≤ 1.3× the
 *  bare server's RSS after the same connections (issue 14).
 *  Info rows: RSS at start, and the heap after one forced full GC at the end vs at start (a leak would stay); and
 *  the same connections to the server as it ships, `tessera serve` from the CLI bundle, against the bare server in
 *  plain JavaScript (lib/shipped.ts): a source run pays for TypeScript stripping, a release does not. */
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { request } from "node:http"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { bundle } from "../../packages/cli/scripts/build.ts"
import { rssOf, start, type Child } from "../lib/child.ts"
import { CONNECTION, configYaml, script, startSandbox, type Bench } from "../lib/setup.ts"
import { bareJs, serveBundled, type Plain } from "../lib/shipped.ts"
import { get } from "./server.ts"

const MB = 1024 * 1024

/** One request on its own connection (agent: false, Connection: close), body drained. */
const once = (url: string): Promise<number> =>
  new Promise((resolve, reject) => {
    request(url, { agent: false, headers: { connection: "close" } }, (res) => {
      res.resume()
      res.on("end", () => resolve(res.statusCode ?? 0))
    })
      .on("error", reject)
      .end()
  })

const drive = async (child: Child<{ url: string }>, url: string, n: number) => {
  const samples: Array<{ after: number; rssMB: number; heapUsedMB: number }> = []
  const sample = async (after: number) => {
    const rssMB = ((await rssOf(child.pid)) ?? NaN) / MB
    const heapUsedMB = (await child.call<NodeJS.MemoryUsage>("memory")).heapUsed / MB
    samples.push({ after, rssMB, heapUsedMB })
  }
  await sample(0)
  const every = Math.max(1, Math.round(n / 10))
  const t0 = performance.now()
  for (let i = 1; i <= n; i++) {
    const status = await once(url)
    if (status !== 200) throw new Error(`request ${i} answered ${status}`)
    if (i % every === 0 || i === n) await sample(i)
  }
  const seconds = (performance.now() - t0) / 1000
  // Then a full GC: if the heap falls back to where it started, the growth was garbage not yet collected, not a leak.
  const gc = await child.call<NodeJS.MemoryUsage>("gc")
  await new Promise((r) => setTimeout(r, 200))
  const afterGc = { rssMB: ((await rssOf(child.pid)) ?? NaN) / MB, heapUsedMB: gc.heapUsed / MB }
  return { samples, seconds, final: samples.at(-1)!.rssMB, start: samples[0]!.rssMB, afterGc }
}

/** `drive` for a process without the IPC channel (no heap figures): RSS at start, every N/10 and at the end. */
const driveRss = async (p: Plain, url: string, n: number) => {
  const rss = async () => ((await rssOf(p.pid)) ?? NaN) / MB
  const samples = [await rss()]
  const every = Math.max(1, Math.round(n / 10))
  for (let i = 1; i <= n; i++) {
    const status = await once(url)
    if (status !== 200) throw new Error(`request ${i} answered ${status}`)
    if (i % every === 0 || i === n) samples.push(await rss())
  }
  return { samples, start: samples[0]!, final: samples.at(-1)! }
}

/** The shipped pair: `tessera serve` from the bundle and the plain-JS bare server, one after the other. */
const shipped = async (
  sb: { info: Parameters<typeof configYaml>[0] },
  body: string,
  n: number,
  log: (l: string) => void
) => {
  await bundle()
  const dir = await mkdtemp(join(tmpdir(), "tessera-bench-memory-"))
  let served: Plain | undefined
  let bare: Plain | undefined
  try {
    const config = join(dir, "tessera.yaml")
    await writeFile(config, configYaml(sb.info))
    const path = `/v1/connections/${CONNECTION}/token`
    served = await serveBundled(config, path, {
      ...process.env,
      TESSERA_CACHE_DIR: join(dir, "cache"),
      TESSERA_LOG_LEVEL: ""
    })
    const t = await driveRss(served, `${served.url}${path}`, n)
    await served.stop()
    bare = await bareJs(body)
    const b = await driveRss(bare, bare.url, n)
    const line = (x: typeof t) => `${x.start.toFixed(1)} MB at start -> ${x.final.toFixed(1)} MB after ${n} connections`
    log(`tessera serve (bundle): ${line(t)}; RSS samples: ${t.samples.map((x) => x.toFixed(0)).join(" ")}`)
    log(`bare (plain JS):        ${line(b)}`)
    return { tessera: t, bare: b }
  } finally {
    await Promise.all([served?.stop(), bare?.stop()])
    await rm(dir, { recursive: true, force: true })
  }
}

export const bench: Bench = {
  name: "memory",
  title: "Server RSS after sequential new-connection requests",
  run: async ({ settings: s, log }) => {
    const n = s.memoryConns
    const sb = await startSandbox()
    const server = await start<{ url: string }>(script("server-child.ts"), {
      env: { BENCH_CONFIG: configYaml(sb.info), BENCH_SERVER_LOG: s.serverLog },
      execArgv: ["--expose-gc"]
    })
    let bare: Child<{ url: string }> | undefined
    try {
      const url = `${server.info.url}/v1/connections/${CONNECTION}/token`
      const first = await get(url)
      if (first.status !== 200) throw new Error(`token route answered ${first.status}`)
      bare = await start<{ url: string }>(script("bare-child.ts"), {
        env: { BENCH_BODY: first.body },
        execArgv: ["--expose-gc"]
      })
      const before = await sb.call<number>("tokenCount")
      const t = await drive(server, url, n)
      const line = (x: typeof t) =>
        `${x.start.toFixed(1)} MB at start -> ${x.final.toFixed(1)} MB after ${n} connections (${(n / x.seconds).toFixed(0)} conn/s); ` +
        `heap used ${x.samples[0]!.heapUsedMB.toFixed(1)} -> ${x.samples.at(-1)!.heapUsedMB.toFixed(1)} MB; after a full GC: RSS ${x.afterGc.rssMB.toFixed(1)} MB, heap used ${x.afterGc.heapUsedMB.toFixed(1)} MB`
      log(`tessera: ${line(t)}`)
      log(`  RSS samples: ${t.samples.map((x) => x.rssMB.toFixed(0)).join(" ")}`)
      const b = await drive(bare, bare.info.url, n)
      log(`bare:    ${line(b)}`)
      const upstream = (await sb.call<number>("tokenCount")) - before
      const heap = await server.call<NodeJS.MemoryUsage>("memory")
      await Promise.all([server.stop(), bare.stop()])
      const ship = await shipped(sb, first.body, n, log)
      return {
        rows: [
          {
            label: `RSS after ${n} new connections`,
            unit: "MB",
            value: t.final,
            baseline: { label: "bare node:http", value: b.final },
            target: { on: "value", op: "<=", limit: 150 },
            better: "lower"
          },
          {
            label: `RSS after ${n} new connections`,
            unit: "MB",
            value: t.final,
            baseline: { label: "bare node:http", value: b.final },
            target: { on: "ratio", op: "<=", limit: 1.3 },
            better: "lower"
          },
          {
            label: "RSS at start (after 1 request)",
            unit: "MB",
            value: t.start,
            baseline: { label: "bare node:http", value: b.start },
            better: "lower"
          },
          {
            label: "heap used after the run + full GC",
            unit: "MB",
            value: t.afterGc.heapUsedMB,
            baseline: { label: "same, at start", value: t.samples[0]!.heapUsedMB },
            better: "lower"
          },
          {
            label: `RSS after ${n} new connections, tessera serve (bundle)`,
            unit: "MB",
            value: ship.tessera.final,
            baseline: { label: "bare node:http, plain JS", value: ship.bare.final },
            better: "lower"
          },
          {
            label: "RSS at start (after 1 request), tessera serve (bundle)",
            unit: "MB",
            value: ship.tessera.start,
            baseline: { label: "bare node:http, plain JS", value: ship.bare.start },
            better: "lower"
          }
        ],
        details: {
          connections: n,
          tessera: t,
          bare: b,
          serverMemoryUsageMB: Object.fromEntries(
            Object.entries(heap).map(([k, v]) => [k, Math.round((v / MB) * 10) / 10])
          ),
          upstreamTokenCalls: upstream,
          shipped: ship
        }
      }
    } finally {
      await Promise.all([server.stop(), bare?.stop(), sb.stop()])
    }
  }
}
