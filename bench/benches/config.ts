/** config: loading a tessera.yaml of 10 000 connections, in-process, with `Config.load` (read, YAML with positions,
 *  nesting limit, duplicate keys, JSON Schema, every connection's inputs resolved).
 *  Baseline: the `yaml` package's `parse` of the same file to plain JS with its own duplicate-key check off (the
 *  bare YAML cost any loader pays). Rounds alternate the two after a warm-up (the catalog and the schema
 *  validators are built once per process); the figure is the median round.
 *  Targets: ≤ 2× the bare YAML parse, and under 2 s. Before the loader had its own duplicate-key check, the `yaml`
 *  package's quadratic one made 32 000 connections take 25 s; the info rows show 32 000 (full runs only). */
import { Config } from "@tessera/engine"
import { Effect } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parse } from "yaml"
import type { Row } from "../lib/report.ts"
import type { Bench } from "../lib/setup.ts"
import { median } from "../lib/stats.ts"

const configText = (n: number): string => {
  const lines = ["connections:"]
  for (let i = 0; i < n; i++)
    lines.push(
      `  conn-${i}:`,
      "    provider: oauth2",
      "    inputs:",
      `      token_url: https://idp-${i % 97}.example.com/oauth/token`,
      `      client_id: client-${i}`,
      "      client_secret: ${env:BENCH_SECRET}"
    )
  return `${lines.join("\n")}\n`
}

const env = { BENCH_SECRET: "bench-secret-value" }

/** ms for one load of each, alternating which goes first. */
const rounds = async (file: string, n: number, count: number) => {
  const tessera: number[] = []
  const bare: number[] = []
  const load = async () => {
    const t0 = performance.now()
    const c = await Effect.runPromise(Config.load(file, env))
    tessera.push(performance.now() - t0)
    if (c.connections.size !== n)
      throw new Error(`loaded ${c.connections.size} connections of ${n}: ${c.problems[0]?.message}`)
  }
  const yaml = () => {
    const t0 = performance.now()
    const v = parse(readFileSync(file, "utf8"), { uniqueKeys: false }) as { connections: Record<string, unknown> }
    bare.push(performance.now() - t0)
    if (Object.keys(v.connections).length !== n) throw new Error("the bare parse lost connections")
  }
  for (let r = 0; r < count; r++) {
    if (r % 2 === 0) {
      await load()
      yaml()
    } else {
      yaml()
      await load()
    }
  }
  return { tessera: median(tessera), bare: median(bare), samples: { tessera, bare } }
}

export const bench: Bench = {
  name: "config",
  title: "Config.load of 10 000 connections vs the bare YAML parse",
  run: async ({ settings: s, log }) => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-bench-config-"))
    try {
      const file = join(dir, "tessera.yaml")
      writeFileSync(file, configText(10_000))
      await Effect.runPromise(Config.load(file, env)) // warm-up: catalog, schema validators, JIT
      const ten = await rounds(file, 10_000, s.quick ? 2 : 6)
      log(`10k: Config.load ${ten.tessera.toFixed(0)} ms, bare yaml.parse ${ten.bare.toFixed(0)} ms`)
      const rows: Row[] = [
        {
          label: "Config.load, 10k connections",
          unit: "ms",
          value: ten.tessera,
          baseline: { label: "yaml.parse, no duplicate check", value: ten.bare },
          target: { on: "ratio", op: "<=", limit: 2 },
          better: "lower"
        },
        {
          label: "Config.load, 10k connections (absolute)",
          unit: "ms",
          value: ten.tessera,
          target: { on: "value", op: "<=", limit: 2000 },
          better: "lower"
        }
      ]
      const details: Record<string, unknown> = { bytes10k: readFileSync(file).length, samples10k: ten.samples }
      if (!s.quick) {
        writeFileSync(file, configText(32_000))
        const big = await rounds(file, 32_000, 2)
        log(`32k: Config.load ${big.tessera.toFixed(0)} ms, bare yaml.parse ${big.bare.toFixed(0)} ms`)
        rows.push({
          label: "Config.load, 32k connections",
          unit: "ms",
          value: big.tessera,
          baseline: { label: "yaml.parse, no duplicate check", value: big.bare },
          better: "lower"
        })
        details["samples32k"] = big.samples
      }
      return { rows, details }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }
}
