/** Bench results: rows with a ratio to a baseline measured in the same run, a target and PASS/MISS; the table
 *  printed at the end and the JSON written to bench/results/. */
import { mkdir, readFile, writeFile } from "node:fs/promises"
import { cpus, totalmem } from "node:os"
import { dirname } from "node:path"
import { round } from "./stats.ts"

export interface Target {
  /** What the target limits: the ratio to the baseline, or the measured value itself. */
  readonly on: "ratio" | "value"
  readonly op: ">=" | "<=" | "=="
  readonly limit: number
}

export interface Row {
  readonly label: string
  readonly unit: string
  readonly value: number
  readonly baseline?: { readonly label: string; readonly value: number } | undefined
  readonly target?: Target | undefined
  /** Lower is better (times, memory, calls) or higher is better (req/s); shapes nothing but the README wording. */
  readonly better?: "lower" | "higher" | undefined
  /** Why the row could not be measured in this run (a peer that is not installed): shown as SKIP. */
  readonly skipped?: string | undefined
}

export interface EvaluatedRow extends Row {
  readonly ratio?: number | undefined
  /** undefined: an informational row without a target. */
  readonly pass?: boolean | undefined
}

export interface BenchResult {
  readonly name: string
  readonly title: string
  readonly rows: ReadonlyArray<EvaluatedRow>
  readonly details: Record<string, unknown>
  readonly notes: ReadonlyArray<string>
  readonly elapsedS: number
}

const compareOp = (x: number, op: Target["op"], limit: number) =>
  op === ">=" ? x >= limit : op === "<=" ? x <= limit : x === limit

export const evaluate = (r: Row): EvaluatedRow => {
  if (r.skipped !== undefined) return { ...r, ratio: undefined, pass: undefined }
  const ratio = r.baseline && r.baseline.value !== 0 ? r.value / r.baseline.value : undefined
  if (!r.target) return { ...r, ratio }
  const x = r.target.on === "ratio" ? ratio : r.value
  return { ...r, ratio, pass: x !== undefined && Number.isFinite(x) && compareOp(x, r.target.op, r.target.limit) }
}

export const targetText = (t: Target | undefined, unit: string): string => {
  if (!t) return "-"
  const op = t.op === ">=" ? "≥" : t.op === "<=" ? "≤" : "="
  return t.on === "ratio" ? `${op} ${t.limit}×` : `${op} ${t.limit} ${unit}`
}

const fmt = (x: number | undefined, unit = ""): string => {
  if (x === undefined || Number.isNaN(x)) return "-"
  const v = round(x)
  const s = Math.abs(v) >= 10_000 ? v.toLocaleString("en-US") : String(v)
  return unit ? `${s} ${unit}` : s
}

export const tableRows = (results: ReadonlyArray<BenchResult>): string[][] => {
  const rows: string[][] = [["bench", "measure", "tessera", "baseline", "ratio", "target", "result"]]
  for (const r of results) {
    for (const row of r.rows) {
      rows.push([
        r.name,
        row.label,
        fmt(row.value, row.unit),
        row.baseline ? `${fmt(row.baseline.value, row.unit)} (${row.baseline.label})` : "-",
        row.ratio === undefined ? "-" : `${row.ratio >= 100 ? Math.round(row.ratio) : row.ratio.toPrecision(3)}×`,
        targetText(row.target, row.unit),
        row.skipped !== undefined ? "SKIP" : row.pass === undefined ? "info" : row.pass ? "PASS" : "MISS"
      ])
    }
  }
  return rows
}

export const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => [...(r[i] ?? "")].length)))
  const line = (r: ReadonlyArray<string>) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd()
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n")
}

/** The same table as Markdown (for bench/README.md). */
export const markdown = (rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [rows[0]!, rows[0]!.map(() => "---"), ...rows.slice(1)]
    .map((r) => `| ${r.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`)
    .join("\n")

export const machine = () => ({
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? "unknown",
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform}-${process.arch}`
})

/** Writes the run to `file`. A run of some benches only merges them into the file's existing results. */
export const write = async (
  file: string,
  run: {
    readonly all: boolean
    readonly quick: boolean
    readonly totalS: number
    readonly backgroundCores?: number | undefined
    /** `uptime`'s 1, 5 and 15 minute load averages when the run started and ended. */
    readonly loadAverage?: { readonly start: ReadonlyArray<number>; readonly end: ReadonlyArray<number> } | undefined
  },
  results: ReadonlyArray<BenchResult>
): Promise<void> => {
  let previous: { benches?: Record<string, unknown> } = {}
  if (!run.all) {
    try {
      previous = JSON.parse(await readFile(file, "utf8"))
    } catch {
      /* none yet */
    }
  }
  const at = new Date().toISOString()
  const benches: Record<string, unknown> = { ...previous.benches }
  for (const r of results) benches[r.name] = { ...r, at }
  const doc = {
    at,
    quick: run.quick,
    totalS: run.all ? run.totalS : undefined,
    machine: { ...machine(), backgroundCoresAtStart: run.backgroundCores, loadAverage: run.loadAverage },
    summary: {
      pass: Object.values(benches)
        .flatMap((b) => (b as BenchResult).rows)
        .filter((x) => x.pass === true).length,
      miss: Object.values(benches)
        .flatMap((b) => (b as BenchResult).rows)
        .filter((x) => x.pass === false).length
    },
    benches
  }
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, JSON.stringify(doc, null, 2) + "\n")
  // The picture beside it (chart.ts), of every bench the file now holds.
  const { chartRows, svg } = await import("./chart.ts")
  const m = doc.machine
  const caption = [
    `${at.slice(0, 16).replace("T", " ")} UTC, ${m.cores} cores (${m.cpu}), node ${m.node}${run.quick ? ", --quick" : ""}${
      run.all ? "" : "; the rows of benches not in this run are from earlier runs"
    }`,
    `${m.loadAverage ? `load average ${m.loadAverage.start[0]} at the start, ${m.loadAverage.end[0]} at the end; ` : ""}${
      m.backgroundCoresAtStart === undefined ? "" : `other work at the start: ${m.backgroundCoresAtStart} cores`
    }`
  ]
  await writeFile(
    file.replace(/\.json$/, ".svg"),
    svg(chartRows(Object.values(benches) as ReadonlyArray<BenchResult>), caption)
  )
}
