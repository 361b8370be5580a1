/** `pnpm bench [name...] [--quick]`: runs the benches (all by default) one after the other, prints a table of
 *  ratio / target / PASS-MISS and writes bench/results/latest.json (bench/results/quick.json with --quick).
 *  Exit code: 0 when every bench ran (a MISS is a finding, not a failure), 1 when one could not run. */
import { loadavg } from "node:os"
import { fileURLToPath } from "node:url"
import { backgroundLoad, stopAll } from "./lib/child.ts"
import { evaluate, machine, table, tableRows, write, type BenchResult } from "./lib/report.ts"
import { settings } from "./lib/settings.ts"
import type { Bench } from "./lib/setup.ts"

const all: ReadonlyArray<() => Promise<Bench>> = [
  async () => (await import("./benches/server.ts")).bench,
  async () => (await import("./benches/proxy.ts")).bench,
  async () => (await import("./benches/cold.ts")).bench,
  async () => (await import("./benches/cached.ts")).bench,
  async () => (await import("./benches/herd.ts")).bench,
  async () => (await import("./benches/cli.ts")).bench,
  async () => (await import("./benches/memory.ts")).bench,
  async () => (await import("./benches/connections.ts")).bench,
  async () => (await import("./benches/config.ts")).bench,
  async () => (await import("./benches/fleet.ts")).bench
]
const names = ["server", "proxy", "cold", "cached", "herd", "cli", "memory", "connections", "config", "fleet"]

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const wanted = args.filter((a) => !a.startsWith("--"))
for (const w of wanted)
  if (!names.includes(w)) {
    console.error(`unknown bench "${w}"; known: ${names.join(", ")}`)
    process.exit(2)
  }
const chosen = wanted.length === 0 ? names : names.filter((n) => wanted.includes(n))
const s = settings(quick)
const m = machine()
console.log(
  `tessera benches${quick ? " (--quick)" : ""}: ${chosen.join(", ")} on ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, node ${m.node}`
)
// Other work on the machine skews every figure; ratios to a baseline measured alongside cancel part of it, not all.
const loadStart = loadavg().map((x) => Math.round(x * 100) / 100)
console.log(`load average at start (uptime): ${loadStart.join(", ")}`)
const background = await backgroundLoad(1000)
if (background !== undefined) {
  console.log(
    `background load before the run: ${background} cores busy with other work${background > 0.25 ? ' (!) figures will be noisy; the autocannon rounds print "other" CPU as they go' : ""}`
  )
}

const results: BenchResult[] = []
let failed = 0
const started = performance.now()
for (const name of chosen) {
  const bench = await all[names.indexOf(name)]!()
  console.log(`\n▶ ${bench.name}: ${bench.title}`)
  const t0 = performance.now()
  try {
    const out = await bench.run({ settings: s, log: (line) => console.log(`  ${line}`) })
    const r: BenchResult = {
      name,
      title: bench.title,
      rows: out.rows.map(evaluate),
      details: out.details ?? {},
      notes: out.notes ?? [],
      elapsedS: (performance.now() - t0) / 1000
    }
    results.push(r)
    console.log(
      table(tableRows([r]))
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n")
    )
    for (const n of r.notes) console.log(`  note: ${n}`)
    console.log(`  (${r.elapsedS.toFixed(1)} s)`)
  } catch (e) {
    failed++
    console.error(`  ✗ ${name} could not run: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`)
  } finally {
    await stopAll()
  }
}
const totalS = (performance.now() - started) / 1000
const loadEnd = loadavg().map((x) => Math.round(x * 100) / 100)

console.log(`\n${table(tableRows(results))}`)
const rows = results.flatMap((r) => r.rows)
console.log(
  `\n${rows.filter((r) => r.pass === true).length} PASS, ${rows.filter((r) => r.pass === false).length} MISS${failed ? `, ${failed} bench(es) failed to run` : ""}; total ${totalS.toFixed(1)} s; load average at the end: ${loadEnd.join(", ")}`
)
const file = fileURLToPath(new URL(`./results/${quick ? "quick" : "latest"}.json`, import.meta.url))
await write(
  file,
  {
    all: wanted.length === 0,
    quick,
    totalS,
    backgroundCores: background,
    loadAverage: { start: loadStart, end: loadEnd }
  },
  results
)
console.log(`results: ${file}`)
process.exit(failed ? 1 : 0)
