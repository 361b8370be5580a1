/** The picture of a run: every row with a target as one horizontal bar, how far its figure is from the target, as
 *  an SVG document (a hand-written string, no dependency). `pnpm bench` writes it beside latest.json
 *  (results/latest.svg) and the README shows it.
 *
 *  The bar's length is the row's standing against its target on one scale: 1 is exactly the target, more is
 *  better. For a "≥ L" target it is x / L, for "≤ L" it is L / x (x the ratio or the value the target is on), for
 *  "= L" 1 when met, else 0.5. The scale is logarithmic from 0.1 to 10, so that 0.2× and 5× are equally far from
 *  the target line. Green: PASS, red: MISS, grey: SKIP. Each bar is labelled with its figure and target. */
import type { BenchResult, EvaluatedRow } from "./report.ts"
import { targetText } from "./report.ts"

export interface ChartRow {
  readonly label: string
  /** The figure the target is on, as shown: "0.55×" or "213 MB". */
  readonly figure: string
  readonly target: string
  /** Standing against the target: 1 = exactly met, > 1 better; undefined when skipped. */
  readonly score: number | undefined
  readonly pass: boolean | undefined
}

const shown = (x: number): string => (Number.isInteger(x) || x >= 100 ? String(Math.round(x)) : x.toPrecision(3))

export const chartRows = (results: ReadonlyArray<BenchResult>): ChartRow[] =>
  results.flatMap((r) =>
    r.rows
      .filter((row): row is EvaluatedRow & { target: NonNullable<EvaluatedRow["target"]> } => row.target !== undefined)
      .map((row) => {
        const x = row.target.on === "ratio" ? row.ratio : row.value
        const limit = row.target.limit
        const score =
          row.skipped !== undefined || x === undefined || !Number.isFinite(x)
            ? undefined
            : row.target.op === "=="
              ? x === limit
                ? 1
                : 0.5
              : row.target.op === ">="
                ? x / limit
                : x === 0
                  ? 10
                  : limit / x
        return {
          label: `${r.name}: ${row.label}${row.baseline && row.target.on === "ratio" ? ` vs ${row.baseline.label}` : ""}`,
          figure:
            x === undefined || !Number.isFinite(x)
              ? "-"
              : row.target.on === "ratio"
                ? `${shown(x)}×`
                : `${shown(x)} ${row.unit}`,
          target: targetText(row.target, row.unit),
          score,
          pass: row.skipped !== undefined ? undefined : row.pass
        }
      })
  )

const escape = (s: string) =>
  s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;").replaceAll('"', "&quot;")

/** The SVG document for `rows`, with `caption` lines under the title (when and where it was measured). */
export const svg = (rows: ReadonlyArray<ChartRow>, caption: ReadonlyArray<string>): string => {
  const rowH = 26
  const labelW = 470
  const barW = 360
  const textW = 200
  const top = 46 + caption.length * 16
  const width = labelW + barW + textW
  const height = top + rows.length * rowH + 34
  const min = Math.log10(0.1)
  const max = Math.log10(10)
  const xOf = (score: number) => labelW + ((Math.log10(Math.min(10, Math.max(0.1, score))) - min) / (max - min)) * barW
  const x1 = xOf(1)
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="ui-sans-serif, system-ui, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600">tessera benchmarks: each figure against its target</text>`,
    ...caption.map((line, i) => `<text x="12" y="${42 + i * 16}" fill="#555555">${escape(line)}</text>`)
  ]
  for (const tick of [0.1, 0.2, 0.5, 1, 2, 5, 10]) {
    const x = xOf(tick)
    out.push(
      `<line x1="${x.toFixed(1)}" y1="${top - 6}" x2="${x.toFixed(1)}" y2="${top + rows.length * rowH}" stroke="${tick === 1 ? "#222222" : "#e3e3e3"}" stroke-width="${tick === 1 ? 1.5 : 1}"/>`,
      `<text x="${x.toFixed(1)}" y="${top + rows.length * rowH + 16}" text-anchor="middle" fill="#555555">${tick === 1 ? "target" : `${tick}×`}</text>`
    )
  }
  rows.forEach((r, i) => {
    const y = top + i * rowH
    out.push(`<text x="12" y="${y + 17}">${escape(r.label)}</text>`)
    if (r.score === undefined) {
      out.push(`<text x="${x1 + 6}" y="${y + 17}" fill="#888888">SKIP</text>`)
    } else {
      const x = xOf(r.score)
      const [from, to] = x >= x1 ? [x1, x] : [x, x1]
      out.push(
        `<rect x="${from.toFixed(1)}" y="${y + 5}" width="${Math.max(1, to - from).toFixed(1)}" height="${rowH - 10}" fill="${r.pass ? "#2e9e4f" : "#d0453a"}"/>`
      )
    }
    const verdict = r.pass === undefined ? "SKIP" : r.pass ? "PASS" : "MISS"
    out.push(
      `<text x="${labelW + barW + 10}" y="${y + 17}" fill="${r.pass === undefined ? "#888888" : r.pass ? "#1f7a3a" : "#b0302a"}">${escape(`${r.figure} (${r.target}) ${verdict}`)}</text>`
    )
  })
  out.push("</svg>")
  return out.join("\n") + "\n"
}
