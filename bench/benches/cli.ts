/** cli: `tessera token api --config F` answered from a warm file cache, and `tessera --version`, as a user's shell
 *  runs them, vs `node -e ''` (Node's own start-up and exit). Each is run twice over: from the bundle that a packed
 *  @tessera/cli ships (dist/tessera.mjs, built here first with packages/cli/scripts/build.ts; the README's install
 *  path) and from the TypeScript sources (bin/tessera.mjs, as in development). `--json` cache hits show what the
 *  full CLI costs, since the fast path leaves every flag to it. Hyperfine-style: warm-up runs (they also fill the
 *  token cache, the hit index and Node's compile cache), then rounds that run every command once in a rotating
 *  order; median and mean ± stddev of the wall time.
 *  Targets (issue 14), on the bundle: token hit ≤ 2× and --version ≤ 1.5× the median of `node -e ''`. */
import { spawnSync } from "node:child_process"
import { mkdtemp, rm, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { bundle } from "../../packages/cli/scripts/build.ts"
import { CONNECTION, configYaml, startSandbox, type Bench } from "../lib/setup.ts"
import { summarize } from "../lib/stats.ts"

const source = fileURLToPath(new URL("../../packages/cli/bin/tessera.mjs", import.meta.url))
const built = fileURLToPath(new URL("../../packages/cli/dist/tessera.mjs", import.meta.url))
const node = "node -e ''"

export const bench: Bench = {
  name: "cli",
  title: "`tessera token` from the file cache and `tessera --version` vs `node -e ''`",
  run: async ({ settings: s, log }) => {
    await bundle()
    const sb = await startSandbox()
    const dir = await mkdtemp(join(tmpdir(), "tessera-bench-cli-"))
    try {
      const config = join(dir, "tessera.yaml")
      await writeFile(config, configYaml(sb.info))
      const env = { ...process.env, TESSERA_CACHE_DIR: join(dir, "cache"), NO_COLOR: "1", TESSERA_LOG_LEVEL: "" }
      const token = [CONNECTION, "--config", config]
      const commands: Record<string, ReadonlyArray<string>> = {
        [node]: ["-e", ""],
        "token, bundle": [built, "token", ...token],
        "--version, bundle": [built, "--version"],
        "token --json, bundle": [built, "token", ...token, "--json"],
        "token, source": [source, "token", ...token],
        "--version, source": [source, "--version"],
        "token --json, source": [source, "token", ...token, "--json"]
      }
      const runOnce = (name: string) => {
        const args = commands[name]!
        const t0 = performance.now()
        const r = spawnSync(process.execPath, args, { env, encoding: "utf8", timeout: 30_000 })
        const ms = performance.now() - t0
        if (r.status !== 0)
          throw new Error(`${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr.slice(0, 500)}`)
        return { ms, stdout: r.stdout }
      }
      const before = await sb.call<number>("tokenCount")
      const first = runOnce("token, bundle") // acquires and caches the token
      if (!/^\S{20,}\n$/.test(first.stdout))
        throw new Error(`tessera token printed ${JSON.stringify(first.stdout.slice(0, 80))}, not a token`)
      const expected: Record<string, (out: string) => boolean> = {
        "token, bundle": (out) => out === first.stdout,
        "token, source": (out) => out === first.stdout,
        "token --json, bundle": (out) => out.includes(`"access_token":"${first.stdout.trim()}"`),
        "token --json, source": (out) => out.includes(`"access_token":"${first.stdout.trim()}"`),
        "--version, bundle": (out) => /^tessera v\d+\.\d+\.\d+\n$/.test(out),
        "--version, source": (out) => /^tessera v\d+\.\d+\.\d+\n$/.test(out)
      }
      const names = Object.keys(commands)
      const warmup = s.quick ? 1 : 3
      for (let i = 0; i < warmup; i++) for (const name of names) runOnce(name)
      const times: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]))
      for (let i = 0; i < s.cliRuns; i++) {
        const order = [...names.slice(i % names.length), ...names.slice(0, i % names.length)]
        for (const name of order) {
          const r = runOnce(name)
          if (expected[name] && !expected[name](r.stdout))
            throw new Error(`${name} printed ${JSON.stringify(r.stdout.slice(0, 120))}: the cache did not hold`)
          times[name]!.push(r.ms)
        }
      }
      const upstream = (await sb.call<number>("tokenCount")) - before
      if (upstream !== 1) throw new Error(`expected 1 token request (the first run), the sandbox saw ${upstream}`)
      const stats = Object.fromEntries(names.map((n) => [n, summarize(times[n]!)] as const))
      for (const n of names) {
        const t = stats[n]!
        log(
          `${n.padEnd(22)} median ${t.median.toFixed(1)} ms, mean ${t.mean.toFixed(1)} ± ${t.stddev.toFixed(1)} ms, min ${t.min.toFixed(1)} (n=${t.n})`
        )
      }
      const b = stats[node]!
      const row = (name: string, label: string, limit?: number) => ({
        label,
        unit: "ms",
        value: stats[name]!.median,
        baseline: { label: node, value: b.median },
        ...(limit === undefined ? {} : { target: { on: "ratio" as const, op: "<=" as const, limit } }),
        better: "lower" as const
      })
      return {
        rows: [
          row("token, bundle", "token (cache hit), bundle, median", 2),
          row("--version, bundle", "--version, bundle, median", 1.5),
          {
            label: "token (cache hit), bundle, mean",
            unit: "ms",
            value: stats["token, bundle"]!.mean,
            baseline: { label: node, value: b.mean },
            better: "lower"
          },
          row("token --json, bundle", "token --json (hit, full CLI), bundle, median"),
          row("token, source", "token (cache hit), source, median"),
          row("--version, source", "--version, source, median"),
          row("token --json, source", "token --json (hit, full CLI), source, median")
        ],
        details: {
          runs: s.cliRuns,
          warmup,
          stats,
          commands: {
            bundle: `node packages/cli/dist/tessera.mjs token ${CONNECTION} --config <tmp>/tessera.yaml`,
            source: `node packages/cli/bin/tessera.mjs token ${CONNECTION} --config <tmp>/tessera.yaml`
          }
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
      await sb.stop()
    }
  }
}
