/** Lifecycle webhooks over real sockets: loopback receivers verify every Standard Webhooks signature, see a failure
 *  once (not once per caller), the recovery and a rotated refresh token, only the events they asked for, retries
 *  with the same webhook-id after 500s, and no token or secret in any body or header; a bad `notify:` entry keeps
 *  the server from starting; and a server killed with SIGKILL before it delivered delivers after a restart on the
 *  same SQLite file. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { Schedule } from "effect"
import { spawn, type ChildProcess } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { ManifestError } from "@tessera/engine"
import { startServer, type RunningServer } from "../src/index.ts"
import {
  OPS_KEY,
  capture,
  configText,
  metricsText,
  parseConfig,
  raw,
  sample,
  secretsOf,
  start
} from "./services/harness.ts"
import { newSecret, startReceiver, type Receiver } from "./services/webhook-receiver.ts"

let sb: Sandbox
const open: Array<{ close: () => Promise<void> }> = []
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close()
  sb.reset()
})

const key = { authorization: `Bearer ${OPS_KEY}` }
const fast = { retry: Schedule.spaced("50 millis"), timeoutMs: 2_000, pollMs: 50 }

const until = async (check: () => boolean, ms = 5_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error("not within time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

const notifyBlock = (entries: ReadonlyArray<{ url: string; secret: string; events?: string[] }>) =>
  [
    "notify:",
    ...entries.map(
      (e) => `  - { url: "${e.url}", secret: "${e.secret}"${e.events ? `, events: [${e.events.join(", ")}]` : ""} }`
    )
  ].join("\n")

const types = (r: Receiver) => r.accepted().map((d) => (JSON.parse(d.body) as { type: string }).type)

describe("webhooks", () => {
  it("signs every delivery, tells a failure once, the recovery and a rotation, and retries after 500s", async () => {
    const [s1, s2] = [newSecret(), newSecret()]
    const all = await startReceiver(s1)
    const onlyRecovered = await startReceiver(s2)
    open.push(all, onlyRecovered)
    all.answer([500, 500])
    const captured = capture()
    const text = configText(sb, {
      connections: ["jobs", "cube", "oauth-pw"],
      extra: notifyBlock([
        { url: all.url, secret: s1 },
        { url: onlyRecovered.url, secret: s2, events: ["recovered"] }
      ])
    })
    const s = await start(await parseConfig(text), captured, { webhooks: fast })
    open.push(s)

    // rotated: the second renewal redeems the refresh token, and the provider issues a new one.
    for (let i = 0; i < 2; i++) {
      const r = await raw(s.url, "/v1/connections/oauth-pw/refresh", { method: "POST", headers: key })
      expect(r.status).toBe(200)
      captured.tokens.add(r.json().access_token)
    }
    // refresh_failed once, however many callers hit the outage; then recovered.
    sb.inject("cube", { type: "status", status: 503 }, 3)
    for (let i = 0; i < 3; i++)
      expect((await raw(s.url, "/v1/connections/cube/token", { headers: key })).status).toBe(502)
    const ok = await raw(s.url, "/v1/connections/cube/token", { headers: key })
    expect(ok.status).toBe(200)
    captured.tokens.add(ok.json().access_token)

    await until(() => all.accepted().length === 3 && onlyRecovered.accepted().length === 1)
    expect(types(all).sort()).toEqual(["connection.recovered", "connection.refresh_failed", "connection.rotated"])
    expect(types(onlyRecovered)).toEqual(["connection.recovered"])
    expect([...all.deliveries, ...onlyRecovered.deliveries].map((d) => d.verdict)).toEqual(
      Array(all.deliveries.length + onlyRecovered.deliveries.length).fill("ok")
    )
    // The two 500s were retried with the same webhook-id, each attempt freshly signed.
    const failed = all.deliveries.filter((d) => d.status === 500)
    expect(failed).toHaveLength(2)
    const acceptedIds = all.accepted().map((d) => d.headers["webhook-id"])
    for (const f of failed) expect(acceptedIds).toContain(f.headers["webhook-id"])
    expect(all.deliveries.every((d) => /^msg_[0-9a-f]{32}$/.test(String(d.headers["webhook-id"])))).toBe(true)

    const failure = JSON.parse(all.accepted().find((d) => d.body.includes("refresh_failed"))!.body)
    expect(failure.data).toMatchObject({ connection: "cube", provider: "cube", tags: {}, error: "UpstreamRejected" })
    expect(failure.data.reason).toContain("503")
    expect(Date.parse(failure.timestamp)).toBeGreaterThan(Date.now() - 60_000)

    const metrics = await metricsText(s.url)
    expect(sample(metrics, "tessera_webhook_deliveries_total", `{outcome="retry"}`)).toBe(2)
    expect(sample(metrics, "tessera_webhook_deliveries_total", `{outcome="delivered"}`)).toBe(4)

    const wire = [...all.deliveries, ...onlyRecovered.deliveries].map((d) => JSON.stringify(d.headers) + d.body)
    const leaked = secretsOf(sb, captured).filter((secret) => wire.some((w) => w.includes(secret)))
    expect(leaked).toEqual([])
    expect(wire.some((w) => w.includes(s1) || w.includes(s2.slice(6)))).toBe(false)
    // The log names a receiver by its origin, never by its URL.
    expect(captured.logs.some((l) => l.includes("webhook attempt failed") && l.includes(all.url))).toBe(false)
    expect(captured.logs.some((l) => l.includes("webhook attempt failed"))).toBe(true)
  })

  it("gives a message up at once on 410 Gone, and keeps delivering the others", async () => {
    const secret = newSecret()
    const r = await startReceiver(secret)
    open.push(r)
    r.answer([410])
    const captured = capture()
    const text = configText(sb, { connections: ["jobs", "cube"], extra: notifyBlock([{ url: r.url, secret }]) })
    const s = await start(await parseConfig(text), captured, { webhooks: fast })
    open.push(s)
    sb.inject("cube", { type: "status", status: 503 })
    expect((await raw(s.url, "/v1/connections/cube/token", { headers: key })).status).toBe(502)
    await until(() => r.deliveries.length === 1)
    expect((await raw(s.url, "/v1/connections/cube/token", { headers: key })).status).toBe(200)
    await until(() => r.accepted().length === 1)
    await new Promise((res) => setTimeout(res, 300))
    expect(r.deliveries.map((d) => d.status)).toEqual([410, 200])
    expect(types(r)).toEqual(["connection.recovered"])
    expect(captured.logs.some((l) => l.includes("WebhookGivenUp") && l.includes("HTTP 410"))).toBe(true)
  })

  it("waits as long as a Retry-After asks, and takes a redirect as a failed attempt, not as a place to go", async () => {
    const secret = newSecret()
    const r = await startReceiver(secret)
    const elsewhere = await startReceiver(secret)
    open.push(r, elsewhere)
    r.answer([
      { status: 302, headers: { location: elsewhere.url } },
      { status: 503, headers: { "retry-after": "1" } }
    ])
    const text = configText(sb, { connections: ["jobs", "cube"], extra: notifyBlock([{ url: r.url, secret }]) })
    const s = await start(await parseConfig(text), capture(), { webhooks: fast })
    open.push(s)
    sb.inject("cube", { type: "status", status: 503 })
    expect((await raw(s.url, "/v1/connections/cube/token", { headers: key })).status).toBe(502)
    await until(() => r.accepted().length === 1)
    expect(r.deliveries.map((d) => d.status)).toEqual([302, 503, 200])
    expect(elsewhere.deliveries).toEqual([])
    // The schedule alone would have waited 50 ms; Retry-After said 1 s.
    expect(r.deliveries[2]!.at - r.deliveries[1]!.at).toBeGreaterThanOrEqual(950)
    expect(r.deliveries[1]!.at - r.deliveries[0]!.at).toBeLessThan(900)
  })

  it("refuses to start with a notify entry that has a bad secret or a plain http URL to another host", async () => {
    const text = configText(sb, {
      connections: ["jobs", "cube"],
      extra: notifyBlock([
        { url: "http://hooks.example.com/x", secret: newSecret() },
        { url: "https://hooks.example.com/y", secret: "hunter2-not-a-whsec" }
      ])
    })
    const config = await parseConfig(text)
    const problems = config.problems.filter((p) => p.path.startsWith("notify") && p.severity === "error")
    expect(problems.map((p) => [p.path, p.message])).toEqual([
      ["notify[0].url", expect.stringContaining("plain http:// to hooks.example.com")],
      ["notify[1].secret", "a webhook secret starts with whsec_ (then base64 of 24 to 64 bytes)"]
    ])
    expect(problems.every((p) => p.line > 0)).toBe(true)
    expect(JSON.stringify(problems)).not.toContain("hunter2")
    const e = await startServer(config, { port: 0, log: false }).then(
      (s: RunningServer) => s.close().then(() => undefined),
      (err: unknown) => err
    )
    expect(e).toBeInstanceOf(ManifestError.ConfigInvalid)
  })
})

const script = fileURLToPath(new URL("./services/webhook-server.ts", import.meta.url))

const spawnServer = (config: string): Promise<{ child: ChildProcess; url: string }> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, config], { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    child.stderr!.on("data", (c: Buffer) => (stderr += c.toString()))
    child.on("exit", (code, signal) => reject(new Error(`server exited ${code ?? signal}: ${stderr}`)))
    createInterface({ input: child.stdout! }).on("line", (l) => {
      const m = /^ready (\S+)$/.exec(l)
      if (m) resolve({ child, url: m[1]! })
    })
  })

const stop = (child: ChildProcess, signal: NodeJS.Signals) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.removeAllListeners("exit")
    child.on("exit", () => resolve())
    child.kill(signal)
  })

describe("webhooks across a restart", () => {
  it("delivers, after a restart, an event a server killed with SIGKILL had not delivered", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-webhooks-"))
    open.push({ close: async () => rmSync(dir, { recursive: true, force: true }) })
    const secret = newSecret()
    const receiver = await startReceiver(secret)
    open.push(receiver)
    receiver.answer([], 500) // down for now: every attempt fails
    const db = join(dir, "connections.db")
    const config = join(dir, "tessera.yaml")
    writeFileSync(
      config,
      [
        configText(sb, { connections: ["bad-secret"], keys: false }).replace(/^http:.*$/m, "http: { retries: 0 }"),
        `connection_store: { type: sqlite, path: ${db} }`,
        notifyBlock([{ url: receiver.url, secret, events: ["refresh_failed"] }])
      ].join("\n")
    )
    const first = await spawnServer(config)
    const children = [first.child]
    open.push({ close: async () => void (await Promise.all(children.map((c) => stop(c, "SIGTERM")))) })
    expect((await raw(first.url, "/v1/connections/bad-secret/token")).status).toBe(502)
    await until(() => receiver.deliveries.length >= 2)
    const pending = () => {
      const d = new DatabaseSync(db, { readOnly: true })
      try {
        return d.prepare("SELECT id, attempts FROM outbox WHERE status = 'pending'").all()
      } finally {
        d.close()
      }
    }
    expect(pending()).toHaveLength(1)
    await stop(first.child, "SIGKILL")
    const id = pending()[0]!["id"]
    expect(receiver.deliveries.every((d) => d.headers["webhook-id"] === id && d.status === 500)).toBe(true)

    receiver.answer([], 200)
    const second = await spawnServer(config)
    children.push(second.child)
    await until(() => receiver.accepted().length === 1, 10_000)
    const delivered = receiver.accepted()[0]!
    expect(delivered.headers["webhook-id"]).toBe(id)
    expect(delivered.verdict).toBe("ok")
    expect(JSON.parse(delivered.body)).toMatchObject({
      type: "connection.refresh_failed",
      data: { connection: "bad-secret", provider: "cube" }
    })
    await until(() => pending().length === 0)
  }, 30_000)
})
