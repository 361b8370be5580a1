/** HTTP load with autocannon: keep-alive connections, fixed duration. Latencies are taken per response with
 *  sub-millisecond precision (autocannon's own histogram has 1 ms buckets, too coarse for loopback). */
import autocannon from "autocannon"
import { cpuOf, machineBusy } from "./child.ts"
import { median, percentile } from "./stats.ts"

export interface LoadOptions {
  readonly url: string
  readonly durationS: number
  readonly connections: number
  readonly headers?: Record<string, string>
  /** Processes whose CPU use during the run is reported (name -> pid); "client" (this process) is always added. */
  readonly pids?: Record<string, number>
}

export interface LoadResult {
  readonly reqPerSec: number
  readonly ok: number
  readonly bad: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly durationS: number
  /** CPU used during the run per process, as a share of one core (1 = one core busy all the time). */
  readonly cpu: Record<string, number>
}

export const load = async (o: LoadOptions): Promise<LoadResult> => {
  const latencies: number[] = []
  const pids = Object.entries(o.pids ?? {})
  const cpu0 = await Promise.all(pids.map(([, pid]) => cpuOf(pid)))
  const self0 = process.cpuUsage()
  const busy0 = await machineBusy()
  const t0 = performance.now()
  const instance = autocannon({
    url: o.url,
    connections: o.connections,
    duration: o.durationS,
    headers: o.headers ?? {},
    timeout: 10
  })
  instance.on("response", (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms)
  })
  const r = await instance
  const wall = (performance.now() - t0) / 1000
  const cpu1 = await Promise.all(pids.map(([, pid]) => cpuOf(pid)))
  const selfUsed = process.cpuUsage(self0)
  const busy1 = await machineBusy()
  const cpu: Record<string, number> = {
    client: Math.round(((selfUsed.user + selfUsed.system) / 1e6 / wall) * 100) / 100
  }
  pids.forEach(([name], i) => {
    const a = cpu0[i],
      b = cpu1[i]
    if (a !== undefined && b !== undefined) cpu[name] = Math.round(((b - a) / wall) * 100) / 100
  })
  // Everything else the machine did meanwhile: other sessions, CI, the kernel. High values make a round suspect.
  if (busy0 !== undefined && busy1 !== undefined)
    cpu["other"] = Math.max(
      0,
      Math.round(((busy1 - busy0) / wall - Object.values(cpu).reduce((x, y) => x + y, 0)) * 100) / 100
    )
  const bad = r.non2xx + r.errors + r.timeouts
  return {
    reqPerSec: r["2xx"] / r.duration,
    ok: r["2xx"],
    bad,
    p50Ms: median(latencies),
    p99Ms: percentile(latencies, 99),
    durationS: r.duration,
    cpu
  }
}

export interface Compared {
  readonly target: ReadonlyArray<LoadResult>
  readonly baseline: ReadonlyArray<LoadResult>
}

/** Warms both up, then runs `rounds` rounds of each, alternating which goes first, so drift (thermal, GC, JIT)
 *  falls on both alike. Throws if any round saw a failed request: a fast error is not a result. */
export const compare = async (
  target: LoadOptions,
  baseline: LoadOptions,
  s: { readonly rounds: number; readonly warmupS: number },
  log: (line: string) => void
): Promise<Compared> => {
  await load({ ...target, durationS: s.warmupS })
  await load({ ...baseline, durationS: s.warmupS })
  const t: LoadResult[] = []
  const b: LoadResult[] = []
  const check = (name: string, r: LoadResult) => {
    if (r.bad > 0 || r.ok === 0) throw new Error(`${name}: ${r.bad} failed requests of ${r.ok + r.bad} (${target.url})`)
    log(
      `${name}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms; CPU (cores) ${Object.entries(
        r.cpu
      )
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}`
    )
  }
  for (let i = 0; i < s.rounds; i++) {
    const order = i % 2 === 0 ? (["target", "baseline"] as const) : (["baseline", "target"] as const)
    for (const which of order) {
      const r = await load(which === "target" ? target : baseline)
      check(`  round ${i + 1} ${which}`, r)
      ;(which === "target" ? t : b).push(r)
    }
  }
  return { target: t, baseline: b }
}

/** `compare` for several sides: warms each up, then `rounds` rounds of all of them, the order rotating each round
 *  (and reversed every other round), so drift falls on every side alike. Throws on any failed request. */
export const compareMany = async <K extends string>(
  sides: Readonly<Record<K, LoadOptions>>,
  s: { readonly rounds: number; readonly warmupS: number },
  log: (line: string) => void
): Promise<Record<K, LoadResult[]>> => {
  const names = Object.keys(sides) as K[]
  const out = Object.fromEntries(names.map((n) => [n, [] as LoadResult[]])) as Record<K, LoadResult[]>
  for (const n of names) await load({ ...sides[n], durationS: s.warmupS })
  for (let i = 0; i < s.rounds; i++) {
    const rotated = names.map((_, k) => names[(k + i) % names.length]!)
    const order = i % 2 === 0 ? rotated : rotated.reverse()
    for (const n of order) {
      const r = await load(sides[n])
      if (r.bad > 0 || r.ok === 0)
        throw new Error(`${n}: ${r.bad} failed requests of ${r.ok + r.bad} (${sides[n].url})`)
      log(
        `  round ${i + 1} ${n}: ${Math.round(r.reqPerSec)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms; CPU (cores) ${Object.entries(
          r.cpu
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")}`
      )
      out[n].push(r)
    }
  }
  return out
}
