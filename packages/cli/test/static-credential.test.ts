/** Static credentials from the command line: `tessera request` applies the key or Basic credential, `tessera token`
 *  (and --dry-run) refuses with exit 2 and says what to use instead, `tessera inspect` shows the kind and where the
 *  credential goes, masked. The key is printed nowhere. */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, configText, tempDir, tessera, write } from "./services/cli.ts"

const KEY = "cli-static-key-51f0e9a2"
let api: http.Server
let cwd: string
const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = []

beforeAll(async () => {
  api = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers })
    res.setHeader("content-type", "application/json")
    res.end('{"ok":true}')
  })
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
  const base = `http://127.0.0.1:${(api.address() as AddressInfo).port}/v1`
  cwd = tempDir()
  write(
    `${cwd}/tessera.yaml`,
    configText({
      keyed: { provider: "api-key", inputs: { api_key: "${env:THE_KEY}", header: "X-API-Key", base_url: base } },
      basic: { provider: "basic", inputs: { username: "svc", password: "${env:THE_KEY}", base_url: base } }
    })
  )
})
afterAll(async () => {
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()))
  cleanup()
})

const run = (args: ReadonlyArray<string>) => tessera(args, { cwd, env: { THE_KEY: KEY } })

describe("static credentials in the CLI", () => {
  it("tessera request applies the key, and the Basic credential", async () => {
    const r = await run(["request", "keyed", "GET", "/items?x=1"])
    expect(r.code, r.stderr).toBe(0)
    expect(seen.at(-1)!.headers["x-api-key"]).toBe(KEY)
    const b = await run(["request", "basic", "GET", "/items"])
    expect(b.code, b.stderr).toBe(0)
    expect(seen.at(-1)!.headers["authorization"]).toBe(`Basic ${Buffer.from(`svc:${KEY}`).toString("base64")}`)
    for (const x of [r, b]) expect(x.stdout + x.stderr).not.toContain(KEY)
  })

  it("tessera request refuses a -H that names the header the key goes in, whatever input names it", async () => {
    const before = seen.length
    for (const [name, header] of [
      ["keyed", "x-api-key: mine"],
      ["basic", "Authorization: Basic bWluZQ=="]
    ] as const) {
      const r = await run(["request", name, "GET", "/items", "-H", header])
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/is set by tessera, from the connection's credential/)
      expect(r.stderr).toContain(name === "keyed" ? "in X-API-Key" : "in Authorization")
      expect(r.stdout + r.stderr).not.toContain(KEY)
    }
    expect(seen.length).toBe(before)
    // Another header passes.
    expect((await run(["request", "keyed", "GET", "/items", "-H", "X-Other: 1"])).code).toBe(0)
  })

  it("tessera token and --dry-run: exit 2, StaticCredential, pointing at tessera request", async () => {
    for (const args of [
      ["token", "keyed"],
      ["token", "basic", "--dry-run"],
      ["token", "keyed", "--json"]
    ]) {
      const r = await run(args)
      expect(r.code, args.join(" ")).toBe(2)
      expect(r.stdout + r.stderr).toMatch(/static credential \(kind: (api_key|basic)\)/)
      expect(r.stdout + r.stderr).toMatch(/tessera request/)
      expect(r.stdout + r.stderr).not.toContain(KEY)
    }
  })

  it("tessera inspect shows the kind and where the credential goes, the key masked", async () => {
    const r = await run(["inspect", "keyed", "--json"])
    expect(r.code, r.stderr).toBe(0)
    const i = JSON.parse(r.stdout)
    expect(i.kind).toBe("api_key")
    expect(i.flows).toBeNull()
    expect(i.request).toBeNull()
    expect(i.api.header).toBe("X-API-Key")
    expect(i.api.value).toBe("{{ inputs.prefix }}{{ inputs.api_key }}")
    expect(i.inputs.find((x: { name: string }) => x.name === "api_key").value).toBe("***")
    const t = await run(["inspect", "basic"])
    expect(t.code, t.stderr).toBe(0)
    expect(t.stdout).toMatch(/static credential \(kind: basic\)/)
    expect(t.stdout).toMatch(/Authorization: Basic base64\(\{\{ inputs\.username \}\}:\{\{ inputs\.password \}\}\)/)
    expect(t.stdout + r.stdout).not.toContain(KEY)
  })
})
