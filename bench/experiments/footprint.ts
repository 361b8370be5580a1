/** What the tessera server loads at start, and what it costs: `node --expose-gc bench/experiments/footprint.ts`
 *  starts the server for a one-connection config (no sandbox needed: no token is fetched at start), then prints
 *  RSS and heap after a full GC, and the modules loaded per package (a `module.registerHooks` load hook).
 *  Not part of `pnpm bench`; the figures are in bench/README.md (step 4). */
import { registerHooks } from "node:module"
import { getHeapSpaceStatistics } from "node:v8"

const loaded = new Map<string, number>()
registerHooks({
  load(url, context, next) {
    const m = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url)
    const key = m
      ? m[1]!
      : url.startsWith("node:")
        ? "node:*"
        : url.includes("/packages/")
          ? url.replace(/.*\/packages\/([^/]+)\/.*/, "@tessera/$1")
          : "other"
    loaded.set(key, (loaded.get(key) ?? 0) + 1)
    return next(url, context)
  }
})
const gc = (globalThis as { gc?: () => void }).gc
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`
const report = (label: string) => {
  gc?.()
  const m = process.memoryUsage()
  const space = (name: string) => getHeapSpaceStatistics().find((s) => s.space_name === name)!.physical_space_size
  console.log(
    `${label}: rss ${mb(m.rss)}, heap used ${mb(m.heapUsed)}, heap total ${mb(m.heapTotal)} (new space ${mb(space("new_space"))}, old ${mb(space("old_space"))}), external ${mb(m.external)}`
  )
}
report("node itself")
const { Config } = await import("@tessera/engine")
const Effect = await import("effect/Effect")
report("after @tessera/engine + effect")
const { startServer } = await import("@tessera/server")
report("after @tessera/server")
const yaml = `connections:\n  api:\n    provider: oauth2\n    inputs:\n      token_url: "http://127.0.0.1:9/token"\n      client_id: "a"\n      client_secret: "b"\n      api_base_url: "http://127.0.0.1:9/api"\n`
const config = await Effect.runPromise(Config.parse("/tmp/tessera-footprint/tessera.yaml", yaml, process.env))
report("after Config.parse")
const server = await startServer(config, { port: 0, host: "127.0.0.1", log: false })
report("after startServer")
console.log("modules loaded per package:")
for (const [k, v] of [...loaded.entries()].sort((a, b) => b[1] - a[1]).slice(0, 25))
  console.log(`  ${String(v).padStart(5)}  ${k}`)
await server.close()
