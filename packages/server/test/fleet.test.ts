/** Three `tessera serve` processes (main.ts) on one Redis (tokens) and one PostgreSQL (connections): a connection
 *  PUT through one instance is served by the others within a second, a replacement or deletion reaches them as
 *  fast, 300 concurrent token requests spread over the three make one upstream call, and a refresh token rotated
 *  on one instance is the one the next refresh uses on another, and a token all three keep warm in the background
 *  is renewed by one of them each time. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, expect, it } from "vitest"
import {
  databaseUrl,
  describePostgres,
  dropSchemas,
  uniqueSchema
} from "../../engine/test/services/postgres-available.ts"
import { redisUp, redisUrl, uniquePrefix } from "../../engine/test/services/redis-available.ts"
import { raw, sample, type Reply } from "./services/harness.ts"

const KEY = "fleet-admin-key-6b1e9d4c2a7f"
const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))

let sb: Sandbox
let dir: string
const schema = uniqueSchema()
const children: ChildProcess[] = []
const urls: string[] = []

const startInstance = (config: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, "--config", config, "--port", "0"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, XDG_DATA_HOME: join(dir, ".data") }
    })
    children.push(child)
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    child.on("exit", (code) => reject(new Error(`instance exited ${code}: ${stderr}`)))
    createInterface({ input: child.stdout }).on("line", (l) => {
      const m = /"url":"(http:\/\/[^"]+)"/.exec(l)
      if (l.includes('"listening"') && m) resolve(m[1]!)
    })
  })

const describeFleet = (name: string, body: () => void) => {
  if (!redisUp) {
    if (process.env["CI"] === "true")
      return it("needs Redis on CI", () => {
        throw new Error(`no Redis at ${redisUrl}`)
      })
    console.log(`SKIP ${name}: no Redis at ${redisUrl}`)
    return
  }
  describePostgres(name, body)
}

const call = (i: number, method: string, path: string, body?: unknown): Promise<Reply> =>
  raw(urls[i]!, path, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {})
  })

/** Polls until `check` passes, returning how long it took; fails after `ms`. */
const within = async (ms: number, check: () => Promise<boolean>): Promise<number> => {
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    if (await check()) return performance.now() - t0
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`not within ${ms} ms`)
}

describeFleet("three instances on one Redis and one PostgreSQL", () => {
  beforeAll(async () => {
    sb = await startSandbox()
    dir = mkdtempSync(join(tmpdir(), "tessera-fleet-"))
    const config = join(dir, "tessera.yaml")
    writeFileSync(
      config,
      [
        "connection_store:",
        "  type: postgres",
        `  url: ${databaseUrl}`,
        `  schema: ${schema}`,
        `  encryption_keys: ["${randomBytes(32).toString("base64")}"]`,
        "store:",
        "  type: redis",
        `  url: ${redisUrl}`,
        `  key_prefix: "${uniquePrefix("fleet")}"`,
        `  encryption_key: "${randomBytes(32).toString("base64")}"`,
        "server:",
        "  api_keys:",
        `    - { name: admin, key: "${KEY}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
        "http: { timeout_ms: 3000, total_timeout_ms: 5000, retries: 0 }"
      ].join("\n") + "\n"
    )
    urls.push(...(await Promise.all([startInstance(config), startInstance(config), startInstance(config)])))
  }, 60_000)

  afterAll(async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null) return resolve()
            c.removeAllListeners("exit")
            c.on("exit", () => resolve())
            c.kill("SIGTERM")
          })
      )
    )
    await sb?.close()
    await dropSchemas([schema])
    rmSync(dir, { recursive: true, force: true })
  })

  it("a PUT on one instance is served by the others within 1 s; 300 concurrent token requests make 1 upstream call", async () => {
    sb.inject("dvinci", { type: "delay", ms: 300 })
    const before = sb.tokenRequests("dvinci").length
    const put = await call(0, "PUT", "/v1/connections/acme", {
      provider: "dvinci",
      inputs: sb.credentials.dvinci,
      tags: { tenant: "acme" }
    })
    expect(put.status).toBe(201)
    const replies = await Promise.all(
      Array.from({ length: 300 }, (_, i) => call(i % 3, "GET", "/v1/connections/acme/token"))
    )
    expect(replies.map((r) => r.status)).toEqual(Array(300).fill(200))
    expect(new Set(replies.map((r) => r.json().access_token)).size).toBe(1)
    expect(sb.tokenRequests("dvinci").length - before).toBe(1)
  })

  it("a replacement and a deletion reach the other instances within 1 s", async () => {
    const first = (await call(1, "GET", "/v1/connections/acme/token")).json().access_token
    expect((await call(2, "GET", "/v1/connections/acme/token")).json().access_token).toBe(first)
    const replaced = await call(0, "PUT", "/v1/connections/acme", {
      provider: "dvinci",
      inputs: sb.credentials.dvinci,
      tags: { tenant: "acme", plan: "gold" }
    })
    expect(replaced.status).toBe(200)
    // The replacement's version has no token yet: instance 1 gets a new one instead of serving the old.
    const took = await within(1000, async () => {
      const r = await call(1, "GET", "/v1/connections/acme/token")
      return r.status === 200 && r.json().access_token !== first
    })
    expect(took).toBeLessThan(1000)
    expect((await call(2, "GET", "/v1/connections/acme")).json().tags).toEqual({ tenant: "acme", plan: "gold" })
    expect((await call(2, "DELETE", "/v1/connections/acme")).status).toBe(204)
    for (const i of [0, 1])
      await within(1000, async () => (await call(i, "GET", "/v1/connections/acme/token")).status === 404)
  })

  it("a refresh token rotated on one instance is the one the next refresh uses on another", async () => {
    const put = await call(0, "PUT", "/v1/connections/users", {
      provider: "oauth2",
      inputs: { ...sb.credentials.oauth2, grant_type: "password", username: "alice", password: "alice-password" }
    })
    expect(put.status).toBe(201)
    expect((await call(0, "GET", "/v1/connections/users/token")).status).toBe(200)
    const passwordGrants = () => sb.tokenRequests("oauth2").filter((r) => r.form?.["grant_type"] === "password").length
    const grants = passwordGrants()
    for (const i of [1, 2, 0, 1]) {
      const r = await call(i, "POST", "/v1/connections/users/refresh")
      expect(r.status, r.text).toBe(200)
    }
    const refreshes = sb.tokenRequests("oauth2").filter((r) => r.form?.["grant_type"] === "refresh_token")
    expect(refreshes.length).toBeGreaterThanOrEqual(4)
    // Each refresh used a new refresh token (the provider rotates and rejects reuse), and none fell back to a login.
    expect(new Set(refreshes.map((r) => r.form?.["refresh_token"])).size).toBe(refreshes.length)
    expect(passwordGrants()).toBe(grants)
  })

  it("background refresh: one instance renews a token all three keep warm, the others find it renewed", async () => {
    sb.setTtl("dvinci", 6)
    const put = await call(0, "PUT", "/v1/connections/warm", { provider: "dvinci", inputs: sb.credentials.dvinci })
    expect(put.status).toBe(201)
    for (const i of [0, 1, 2]) expect((await call(i, "GET", "/v1/connections/warm/token")).status).toBe(200)
    const before = sb.tokenRequests("dvinci").length
    await new Promise((r) => setTimeout(r, 8_000))
    const renewals = sb.tokenRequests("dvinci").length - before
    const counted = async (outcome: string) => {
      let n = 0
      for (const i of [0, 1, 2])
        n += sample(
          (await call(i, "GET", "/metrics")).text,
          "tessera_background_renewals_total",
          `{provider="dvinci",outcome="${outcome}"}`
        )
      return n
    }
    // 6 s tokens, renewed 1.35 to 2.7 s after they were obtained: 3 to 6 renewals in 8 s, each by one instance.
    expect(renewals).toBeGreaterThanOrEqual(2)
    expect(renewals).toBeLessThanOrEqual(7)
    expect(await counted("renewed")).toBe(renewals)
    // The instances that woke later found the token renewed under the lock and left it alone.
    expect(await counted("skipped")).toBeGreaterThanOrEqual(renewals)
    expect(await counted("failed")).toBe(0)
  }, 30_000)
})
