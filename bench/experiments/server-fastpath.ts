/** What-if for the `server` miss (not a bench, not run by `pnpm bench`): a prototype that answers cache hits in the
 *  node:http listener, before Effect's router (server-fastpath-child.ts: engine.peek, Engine.toJson, the same
 *  headers, a request id and one access-log line), vs the bare node:http baseline, then the real server vs the same
 *  baseline. Same autocannon harness and settings as `pnpm bench server`.
 *    node bench/experiments/server-fastpath.ts */
import { fileURLToPath } from "node:url"
import { start, stopAll } from "../lib/child.ts"
import { compare } from "../lib/load.ts"
import { configYaml, startSandbox } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"

const sb = await startSandbox()
const env = { BENCH_CONFIG: configYaml(sb.info) }
const real = await start<{ url: string }>(fileURLToPath(new URL("../lib/server-child.ts", import.meta.url)), { env })
const fast = await start<{ url: string }>(fileURLToPath(new URL("./server-fastpath-child.ts", import.meta.url)), {
  env
})
const path = "/v1/connections/api/token"
const body = await (await fetch(`${real.info.url}${path}`)).text()
await fetch(`${fast.info.url}${path}`)
const bare = await start<{ url: string }>(fileURLToPath(new URL("../lib/bare-child.ts", import.meta.url)), {
  env: { BENCH_BODY: body }
})
const s = { rounds: 3, warmupS: 1 }
const b = { url: bare.info.url, durationS: 3, connections: 10, pids: { bare: bare.pid } }
for (const [name, child] of [
  ["fast path", fast],
  ["real server", real]
] as const) {
  const r = await compare(
    { url: `${child.info.url}${path}`, durationS: 3, connections: 10, pids: { [name]: child.pid } },
    b,
    s,
    (line) => console.log(line.replace("target", name))
  )
  const t = median(r.target.map((x) => x.reqPerSec)),
    base = median(r.baseline.map((x) => x.reqPerSec))
  console.log(`${name}: ${Math.round(t)} req/s vs bare ${Math.round(base)} req/s = ${(t / base).toFixed(2)}x\n`)
}
await stopAll()
process.exit(0)
