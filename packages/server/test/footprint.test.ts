/** What a server loads that it does not use: each a few MB of RSS that a lazy import spares (bench/README.md, "Issue
 *  14, fourth round: memory"). The server runs in its own process (footprint-server.ts) so that nothing this test
 *  runner loaded counts. */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const script = fileURLToPath(new URL("./services/footprint-server.ts", import.meta.url))

interface Loaded {
  readonly status: number
  readonly builtins: ReadonlyArray<string>
  readonly urls: ReadonlyArray<string>
  readonly newSpace: number
  readonly gcGlobal: string
  readonly gcInNewContext: string
}

const run = (env: Record<string, string>, nodeArgs: ReadonlyArray<string> = []): Promise<Loaded> =>
  new Promise((resolve, reject) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("OTEL_")))
    execFile(
      process.execPath,
      [...nodeArgs, script],
      { env: { ...clean, ...env }, timeout: 30_000 },
      (e, stdout, stderr) => {
        if (e) reject(new Error(`${e.message}\n${stderr}`))
        else resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as Loaded)
      }
    )
  })

const otlp = (l: Loaded) => l.urls.filter((u) => /effect\/dist\/observability\/Otlp|telemetry-otlp\.ts$/.test(u))

describe("a server's start-up footprint", () => {
  it("without OpenTelemetry: neither Node's bundled undici (an ESM import of node:http) nor the OTLP exporters", async () => {
    const l = await run({})
    expect(l.status).toBe(200)
    expect(l.builtins).toContain("NativeModule http")
    expect(l.builtins).not.toContain("NativeModule internal/deps/undici/undici")
    expect(otlp(l)).toEqual([])
  })

  it("with an OTLP endpoint set, the exporters are loaded", async () => {
    const l = await run({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_METRICS_EXPORTER: "none" })
    expect(l.status).toBe(200)
    expect(otlp(l).some((u) => u.endsWith("OtlpTracer.js"))).toBe(true)
    expect(otlp(l).some((u) => u.endsWith("telemetry-otlp.ts"))).toBe(true)
  })

  // Start-up grows V8's semi-spaces to 16-32 MB each; the trim brings them back to V8's minimum (heap-trim.ts).
  it("serve (main.ts, tessera serve) listens with V8's young generation trimmed, and no gc global left behind", async () => {
    const MB = 1024 * 1024
    const served = await run({ START: "serve" })
    const untrimmed = await run({ TRIM_HEAP: "false" })
    expect(served.status).toBe(200)
    expect(served.newSpace).toBeGreaterThan(0)
    expect(served.newSpace).toBeLessThanOrEqual(4 * MB)
    expect(untrimmed.newSpace).toBeGreaterThanOrEqual(16 * MB)
    expect(served.gcGlobal).toBe("undefined")
    expect(served.gcInNewContext).toBe("undefined")
  })

  it("startServer leaves an embedding program's heap alone unless asked (trimHeap: true)", async () => {
    const MB = 1024 * 1024
    const embedded = await run({})
    const asked = await run({ TRIM_HEAP: "true" })
    expect(embedded.newSpace).toBeGreaterThanOrEqual(16 * MB)
    expect(asked.newSpace).toBeLessThanOrEqual(4 * MB)
  })

  it("started with --expose-gc, trims with that collector and leaves the flag as it was", async () => {
    const l = await run({ TRIM_HEAP: "true" }, ["--expose-gc"])
    expect(l.newSpace).toBeLessThanOrEqual(4 * 1024 * 1024)
    expect(l.gcGlobal).toBe("function")
    expect(l.gcInNewContext).toBe("function")
  })
})
