/** Prints bench/results/latest.json (or the file given) as the Markdown table used in bench/README.md.
 *    node bench/lib/markdown-table.ts [results.json] */
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { markdown, tableRows, type BenchResult } from "./report.ts"

const file = process.argv[2] ?? fileURLToPath(new URL("../results/latest.json", import.meta.url))
const doc = JSON.parse(await readFile(file, "utf8")) as {
  at: string
  totalS?: number
  machine: Record<string, unknown>
  benches: Record<string, BenchResult>
}
const order = ["server", "proxy", "cold", "cached", "herd", "cli", "memory"]
const results = Object.values(doc.benches).sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name))
console.log(markdown(tableRows(results)))
const m = doc.machine
console.log(
  `\n${doc.at.slice(0, 10)}, ${m["cores"]} cores (${m["cpu"]}), ${m["memoryGiB"]} GiB, node ${m["node"]}; ` +
    `${doc.totalS ? `whole run ${doc.totalS.toFixed(0)} s; ` : ""}other work on the machine at start: ${m["backgroundCoresAtStart"] ?? "?"} cores.`
)
