/** A server in its own process for footprint.test.ts: starts on a one-connection config with the environment it is
 *  given (OTEL_* included; TRIM_HEAP and START below), answers one request through the router
 *  (/healthz), closes, and prints one JSON line: the Node built-ins it loaded (`process.moduleLoadList`), the URLs
 *  of the modules it imported, V8's young generation (new space, committed bytes) once the server listened, and
 *  whether a `gc` global is visible (here and in a new V8 context). */
import { createRequire, registerHooks } from "node:module"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { getHeapSpaceStatistics } from "node:v8"
import { runInNewContext } from "node:vm"

const urls: string[] = []
registerHooks({
  load(url, context, next) {
    urls.push(url)
    return next(url, context)
  }
})
const { Config } = await import("@tessera/engine")
const Effect = await import("effect/Effect")
const { serve, startServer } = await import("../../src/index.ts")
const text = [
  "connections:",
  "  api:",
  "    provider: oauth2",
  "    inputs: { token_url: http://127.0.0.1:9/token, client_id: a, client_secret: not-used-1234 }"
].join("\n")
// START=serve runs `serve` (as main.ts and `tessera serve` do) on the same text in a file; else `startServer`,
// with TRIM_HEAP=true|false as `trimHeap` (unset: its default).
const trim = process.env["TRIM_HEAP"]
const options = {
  port: 0,
  host: "127.0.0.1",
  log: false as const,
  ...(trim === undefined ? {} : { trimHeap: trim === "true" })
}
const start = async () => {
  if (process.env["START"] !== "serve") {
    const config = await Effect.runPromise(Config.parse("/tmp/tessera-footprint-test/tessera.yaml", text, {}))
    return startServer(config, options)
  }
  const dir = mkdtempSync(join(tmpdir(), "tessera-footprint-"))
  writeFileSync(join(dir, "tessera.yaml"), text)
  return serve({ ...options, config: join(dir, "tessera.yaml"), signals: false, connections: "memory" })
}
const server = await start()
const newSpace = getHeapSpaceStatistics().find((s) => s.space_name === "new_space")?.space_size ?? -1
// As the server does (src/node-http.ts): an ESM import of node:http would itself load what the test looks for.
const { request } = createRequire(import.meta.url)("node:http") as typeof import("node:http")
const status = await new Promise<number>((resolve, reject) => {
  request(`${server.url}/healthz`, (res) => {
    res.resume()
    res.on("end", () => resolve(res.statusCode ?? 0))
  })
    .on("error", reject)
    .end()
})
await server.close()
process.stdout.write(
  `${JSON.stringify({
    status,
    builtins: (process as unknown as { moduleLoadList: string[] }).moduleLoadList,
    urls,
    newSpace,
    gcGlobal: typeof (globalThis as { gc?: unknown }).gc,
    gcInNewContext: runInNewContext("typeof gc") as unknown
  })}\n`
)
