/** cli: `tessera token api --config F` answered from a warm file cache, as a user's shell runs it (the real
 *  binary, `node packages/cli/bin/tessera.mjs`), vs `node -e ''` (Node's own start-up and exit). Hyperfine-style:
 *  warm-up runs (they also fill the token cache and Node's compile cache), then alternating timed runs; median and
 *  mean ± stddev of the wall time. Target: median ≤ 2.5× that of `node -e ''`. */
import { spawnSync } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { CONNECTION, configYaml, startSandbox, type Bench } from "../lib/setup.ts"
import { summarize } from "../lib/stats.ts"

const bin = fileURLToPath(new URL("../../packages/cli/bin/tessera.mjs", import.meta.url))

export const bench: Bench = {
  name: "cli",
  title: "`tessera token` from the file cache vs `node -e ''`",
  run: async ({ settings: s, log }) => {
    const sb = await startSandbox()
    const dir = await mkdtemp(join(tmpdir(), "tessera-bench-cli-"))
    try {
      const config = join(dir, "tessera.yaml")
      await writeFile(config, configYaml(sb.info))
      const env = { ...process.env, TESSERA_CACHE_DIR: join(dir, "cache"), NO_COLOR: "1", TESSERA_LOG_LEVEL: "" }
      const commands = {
        tessera: [bin, "token", CONNECTION, "--config", config],
        "node -e ''": ["-e", ""]
      } as const
      const runOnce = (args: ReadonlyArray<string>) => {
        const t0 = performance.now()
        const r = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 30_000 })
        const ms = performance.now() - t0
        if (r.status !== 0)
          throw new Error(`${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 500)}`)
        return { ms, stdout: r.stdout }
      }
      const before = await sb.call<number>("tokenCount")
      const first = runOnce(commands.tessera) // acquires and caches the token
      if (!/^\S{20,}\n?$/.test(first.stdout))
        throw new Error(`tessera token printed ${JSON.stringify(first.stdout.slice(0, 80))}, not a token`)
      const warmup = s.quick ? 1 : 3
      for (let i = 0; i < warmup; i++) {
        runOnce(commands.tessera)
        runOnce(commands["node -e ''"])
      }
      const times: Record<string, number[]> = { tessera: [], "node -e ''": [] }
      for (let i = 0; i < s.cliRuns; i++) {
        const order = i % 2 === 0 ? (["tessera", "node -e ''"] as const) : (["node -e ''", "tessera"] as const)
        for (const name of order) {
          const r = runOnce(commands[name])
          if (name === "tessera" && r.stdout !== first.stdout)
            throw new Error("tessera token printed a different token: the cache did not hold")
          times[name]!.push(r.ms)
        }
      }
      const upstream = (await sb.call<number>("tokenCount")) - before
      if (upstream !== 1) throw new Error(`expected 1 token request (the first run), the sandbox saw ${upstream}`)
      const t = summarize(times["tessera"]!),
        b = summarize(times["node -e ''"]!)
      log(
        `tessera token   median ${t.median.toFixed(1)} ms, mean ${t.mean.toFixed(1)} ± ${t.stddev.toFixed(1)} ms, min ${t.min.toFixed(1)} (n=${t.n})`
      )
      log(
        `node -e ''      median ${b.median.toFixed(1)} ms, mean ${b.mean.toFixed(1)} ± ${b.stddev.toFixed(1)} ms, min ${b.min.toFixed(1)} (n=${b.n})`
      )
      return {
        rows: [
          {
            label: "token (cache hit), median",
            unit: "ms",
            value: t.median,
            baseline: { label: "node -e ''", value: b.median },
            target: { on: "ratio", op: "<=", limit: 2.5 },
            better: "lower"
          },
          {
            label: "token (cache hit), mean",
            unit: "ms",
            value: t.mean,
            baseline: { label: "node -e ''", value: b.mean },
            better: "lower"
          }
        ],
        details: {
          runs: s.cliRuns,
          warmup,
          tessera: t,
          node: b,
          command: `node packages/cli/bin/tessera.mjs token ${CONNECTION} --config <tmp>/tessera.yaml`
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
      await sb.stop()
    }
  }
}
