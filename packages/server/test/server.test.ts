/** The server's lifecycle: the loopback-only rule without keys, draining on close, reload without dropping
 *  requests, the Effect layer, and main.ts as a process (SIGHUP reloads, each on its own; SIGTERM drains and exits
 *  0; a config whose API keys do not resolve is refused). */
import type { Sandbox } from "@tessera/testkit"
import { Context, Effect, Layer } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Server, startServer } from "../src/index.ts"
import { Config } from "@tessera/engine"
import {
  JOBS_KEY,
  OPS_KEY,
  capture,
  configText,
  leaks,
  parseConfig,
  raw,
  sample,
  sandbox,
  start
} from "./services/harness.ts"

let sb: Sandbox
const captured = capture()
const key = { "x-tessera-key": OPS_KEY }
const dir = mkdtempSync(join(tmpdir(), "tessera-server-"))

beforeAll(async () => {
  sb = await sandbox()
})
afterAll(async () => {
  await sb?.close()
  rmSync(dir, { recursive: true, force: true })
})

const until = async (check: () => boolean | Promise<boolean>, ms = 3000) => {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}
const apiSeen = (suffix: string) => () => sb.requests.some((r) => r.kind === "api" && r.path.endsWith(suffix))

describe("binding", () => {
  it("refuses a non-loopback host without API keys, from the options or the config", async () => {
    const open = await parseConfig(configText(sb, { keys: false, connections: ["jobs"] }))
    await expect(startServer(open, { host: "0.0.0.0", port: 0, log: false })).rejects.toThrow(
      /refusing to listen on 0\.0\.0\.0 without API keys/
    )
    await expect(startServer(open, { host: "::", port: 0, log: false })).rejects.toThrow(TypeError)
    const fromConfig = await parseConfig(
      configText(sb, { keys: false, connections: ["jobs"], extra: "server: { host: 0.0.0.0 }" })
    )
    await expect(startServer(fromConfig, { port: 0, log: false })).rejects.toThrow(/server\.api_keys/)
  })

  it("without keys on loopback every route is open; with keys a non-loopback host is fine", async () => {
    const open = await start(await parseConfig(configText(sb, { keys: false, connections: ["jobs"] })), captured)
    try {
      const r = await raw(open.url, "/v1/connections/jobs/token", {}, captured)
      expect(r.status).toBe(200)
      captured.tokens.add(r.json().access_token)
      expect(open.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    } finally {
      await open.close()
    }
    const keyed = await start(await parseConfig(configText(sb, { connections: ["jobs"] })), captured, {
      host: "0.0.0.0"
    })
    try {
      expect(keyed.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/)
      expect((await raw(keyed.url.replace("0.0.0.0", "127.0.0.1"), "/v1/connections", {}, captured)).status).toBe(401)
      // A reload may not drop the keys while bound to the network.
      await expect(
        keyed.reload(await parseConfig(configText(sb, { keys: false, connections: ["jobs"] })))
      ).rejects.toThrow(/without API keys/)
      expect(
        (await raw(keyed.url.replace("0.0.0.0", "127.0.0.1"), "/v1/connections", { headers: key }, captured)).status
      ).toBe(200)
    } finally {
      await keyed.close()
    }
  })

  it("checks its options and the key list at construction", async () => {
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    await expect(startServer(config, { port: 0, log: false, limits: { maxBodyBytes: 0 } })).rejects.toThrow(
      /maxBodyBytes/
    )
    await expect(
      startServer(config, { port: 0, log: false, limits: { replayBytes: 2048, maxBodyBytes: 1024 } })
    ).rejects.toThrow(/replayBytes/)
    const twins = await parseConfig(
      configText(sb, {
        keys: false,
        connections: ["jobs"],
        extra: `server:\n  api_keys:\n    - { name: a, key: "\${env:OPS_KEY}" }\n    - { name: b, key: "\${env:OPS_KEY}" }`
      })
    )
    await expect(startServer(twins, { port: 0, log: false })).rejects.toThrow(/"a" and "b" have the same value/)
    // A key read from a variable set by a CRLF file keeps its CR: no client can send it, so it is refused at start.
    const crlf = await Effect.runPromise(
      Config.parse(
        "/tmp/tessera-server-test/tessera.yaml",
        `server:\n  api_keys:\n    - { name: ops, key: "\${env:CRLF_KEY}" }\n`,
        { CRLF_KEY: "crlf-key-5e9a1c3d7b\r" }
      )
    )
    await expect(startServer(crlf, { port: 0, log: false })).rejects.toThrow(/"ops" .*no client can send it/)
  })
})

describe("close()", () => {
  it("refuses new connections at once, lets the request in flight finish with 200, then resolves", async () => {
    const s = await start(await parseConfig(configText(sb, { connections: ["jobs"] })), captured)
    await raw(s.url, "/v1/connections/jobs/token", { headers: key }) // warm the token so the request waits only on the API
    sb.injectApi("dvinci", { type: "delay", ms: 500 })
    const inFlight = raw(s.url, "/v1/proxy/jobs/drain-me", { headers: key }, captured)
    await until(apiSeen("/drain-me"))
    const t0 = performance.now()
    // When close() resolves, the in-flight request must already have been answered in full (its access-log line
    // is written once the response has been sent).
    let answeredBeforeClosed = false
    const closing = s.close().then(() => {
      answeredBeforeClosed = captured.logs.some(
        (l) => l.includes(`"path":"/v1/proxy/jobs/drain-me"`) && l.includes(`"status":200`)
      )
    })
    await expect(raw(s.url, "/healthz")).rejects.toMatchObject({ code: "ECONNREFUSED" })
    const r = await inFlight
    expect(r.status).toBe(200)
    expect(r.json()).toMatchObject({ ok: true, path: "/dvinci/restApi/drain-me" })
    await closing
    expect(answeredBeforeClosed).toBe(true)
    expect(performance.now() - t0).toBeGreaterThan(300)
    await expect(raw(s.url, "/healthz")).rejects.toMatchObject({ code: "ECONNREFUSED" })
    await s.close() // idempotent
  })

  it("cuts requests still running after drainTimeoutMs", async () => {
    const s = await start(await parseConfig(configText(sb, { connections: ["jobs"] })), captured, {
      drainTimeoutMs: 100
    })
    await raw(s.url, "/v1/connections/jobs/token", { headers: key })
    sb.injectApi("dvinci", { type: "delay", ms: 3000 })
    const inFlight = raw(s.url, "/v1/proxy/jobs/too-slow", { headers: key }).then(
      () => "answered",
      () => "cut"
    )
    await until(apiSeen("/too-slow"))
    const t0 = performance.now()
    await s.close()
    expect(performance.now() - t0).toBeLessThan(1500)
    expect(await inFlight).toBe("cut")
  })
})

describe("reload()", () => {
  it("finishes requests in flight on the old engine; new requests get the new connections and keys", async () => {
    const s = await start(await parseConfig(configText(sb, { connections: ["jobs", "cube"] })), captured)
    try {
      await raw(s.url, "/v1/connections/jobs/token", { headers: key })
      sb.injectApi("dvinci", { type: "delay", ms: 500 })
      const inFlight = raw(s.url, "/v1/proxy/jobs/reload-me", { headers: key }, captured)
      await until(apiSeen("/reload-me"))
      const NEW_KEY = "ops-key-rotated-9c4d2e"
      const next = configText(sb, {
        keys: false,
        connections: ["cube"],
        extra: `server:\n  api_keys:\n    - { name: ops2, key: "${NEW_KEY}", scopes: [token, proxy, "connections:read"] }`
      })
      await s.reload(await parseConfig(next))
      // jobs is gone from the new config, yet the request that started before the reload completes.
      const r = await inFlight
      expect(r.status).toBe(200)
      expect(r.json()).toMatchObject({ path: "/dvinci/restApi/reload-me" })
      expect((await raw(s.url, "/v1/connections", { headers: key }, captured)).status).toBe(401)
      const list = await raw(s.url, "/v1/connections", { headers: { authorization: `Bearer ${NEW_KEY}` } }, captured)
      expect(list.json().items.map((c: { name: string }) => c.name)).toEqual(["cube"])
      expect(
        (await raw(s.url, "/v1/proxy/jobs/x", { headers: { "x-tessera-key": NEW_KEY } }, captured)).json().code
      ).toBe("UnknownConnection")
      const metrics = (await raw(s.url, "/metrics", { headers: { "x-tessera-key": NEW_KEY } })).text
      expect(sample(metrics, "tessera_config_reloads_total", `{result="ok"}`)).toBe(1)
    } finally {
      await s.close()
    }
  })

  it("keeps the running config when the new one cannot be used", async () => {
    const s = await start(await parseConfig(configText(sb, { connections: ["jobs"] })), captured)
    try {
      const empty = await parseConfig(
        configText(sb, {
          keys: false,
          connections: ["jobs"],
          extra: `server:\n  api_keys:\n    - { name: nobody, key: "k-1234567890", connections: [] }`
        })
      )
      await expect(s.reload(empty)).rejects.toThrow(/allows no connection/)
      expect((await raw(s.url, "/v1/connections", { headers: key })).status).toBe(200)
      // A key that does not resolve would leave fewer keys than the file lists: refused, with where it is.
      const unresolved = await parseConfig(
        configText(sb, {
          keys: false,
          connections: ["jobs"],
          extra: `server:\n  api_keys:\n    - { name: ops, key: "\${env:TESSERA_TEST_UNSET_KEY}" }`
        })
      )
      await expect(s.reload(unresolved)).rejects.toThrow(/tessera\.yaml:\d+:\d+: error: server\.api_keys\[0\]\.key/)
      expect((await raw(s.url, "/v1/connections", { headers: key })).status).toBe(200)
      const metrics = (await raw(s.url, "/metrics", { headers: key })).text
      expect(sample(metrics, "tessera_config_reloads_total", `{result="error"}`)).toBe(2)
      expect(captured.logs.filter((l) => l.includes(`"code":"ReloadFailed"`)).length).toBeGreaterThanOrEqual(2)
    } finally {
      await s.close()
    }
  })
})

describe("Effect layer", () => {
  it("Server.layer starts the server for the scope and closes it with the scope", async () => {
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    const url = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const ctx = yield* Layer.build(Server.layer(config, { port: 0, log: false }))
          const server = Context.get(ctx, Server.Server)
          const r = yield* Effect.promise(() => raw(server.url, "/healthz"))
          expect(r.status).toBe(200)
          return server.url
        })
      )
    )
    await expect(raw(url, "/healthz")).rejects.toMatchObject({ code: "ECONNREFUSED" })
  })
})

describe("main.ts", () => {
  const main = fileURLToPath(new URL("../src/main.ts", import.meta.url))
  const dataHome = mkdtempSync(join(tmpdir(), "tessera-server-data-"))
  afterAll(() => rmSync(dataHome, { recursive: true, force: true }))
  const run = (args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}) => {
    const child = spawn(process.execPath, [main, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      // The default connection store is a SQLite file in the user data dir: keep it out of the real one.
      env: { ...process.env, XDG_DATA_HOME: dataHome, ...env }
    })
    const lines: string[] = []
    let stderr = ""
    createInterface({ input: child.stdout }).on("line", (l) => {
      lines.push(l)
      captured.logs.push(l)
    })
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    const exit = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    return { child, lines, exit, stderr: () => stderr }
  }

  it("serves the file, reloads it on SIGHUP, drains and exits 0 on SIGTERM", async () => {
    const file = join(dir, "tessera.yaml")
    writeFileSync(file, configText(sb, { keys: false, connections: ["jobs"] }))
    const p = run(["--config", file, "--port", "0"])
    try {
      await until(() => p.lines.some((l) => l.includes(`"message":"listening"`)), 10_000)
      const url = JSON.parse(p.lines.find((l) => l.includes(`"message":"listening"`))!).url as string
      const names = async () => (await raw(url, "/v1/connections")).json().items.map((c: { name: string }) => c.name)
      expect(await names()).toEqual(["jobs"])

      writeFileSync(file, configText(sb, { keys: false, connections: ["jobs", "cube"] }))
      p.child.kill("SIGHUP")
      await until(async () => (await names()).includes("cube"))

      await raw(url, "/v1/connections/jobs/token")
      sb.injectApi("dvinci", { type: "delay", ms: 500 })
      const inFlight = raw(url, "/v1/proxy/jobs/sigterm-me", {}, captured)
      await until(apiSeen("/sigterm-me"))
      p.child.kill("SIGTERM")
      const r = await inFlight
      expect(r.status).toBe(200)
      expect(await p.exit).toBe(0)
      expect(p.lines.some((l) => l.includes(`"message":"config reloaded"`))).toBe(true)
    } finally {
      p.child.kill("SIGKILL")
    }
  }, 20_000)

  it("each SIGHUP reload stands alone: after a broken file, the fixed one is loaded and a removed key gets 401", async () => {
    const file = join(dir, "keyed.yaml")
    writeFileSync(file, configText(sb, { connections: ["jobs"] }))
    const p = run(["--config", file, "--port", "0"], { OPS_KEY, JOBS_KEY })
    const logged = (message: string) => p.lines.filter((l) => l.includes(message)).length
    try {
      await until(() => logged(`"message":"listening"`) > 0, 10_000)
      const url = JSON.parse(p.lines.find((l) => l.includes(`"message":"listening"`))!).url as string
      const jobsKey = { "x-tessera-key": JOBS_KEY }
      expect((await raw(url, "/v1/connections", { headers: jobsKey })).status).toBe(200)

      writeFileSync(file, configText(sb, { connections: ["jobs"], extra: "bogus_key: 1" }))
      p.child.kill("SIGHUP")
      await until(() => logged(`"code":"ReloadFailed"`) === 1)
      const failed = JSON.parse(p.lines.find((l) => l.includes(`"code":"ReloadFailed"`))!)
      expect(failed.message).toMatch(/keyed\.yaml:\d+:1: error: .*unknown key "bogus_key"/)
      expect((await raw(url, "/v1/connections", { headers: jobsKey })).status).toBe(200) // the old config serves

      // The fix also revokes the jobs-only key.
      writeFileSync(
        file,
        configText(sb, {
          keys: false,
          connections: ["jobs"],
          extra: `server:\n  api_keys:\n    - { name: ops, key: "\${env:OPS_KEY}", scopes: [token, 'connections:read'] }`
        })
      )
      p.child.kill("SIGHUP")
      await until(() => logged(`"message":"config reloaded"`) === 1)
      expect((await raw(url, "/v1/connections", { headers: jobsKey })).status).toBe(401)
      expect((await raw(url, "/v1/connections", { headers: key })).status).toBe(200)
      const metrics = (await raw(url, "/metrics", { headers: key })).text
      expect(sample(metrics, "tessera_config_reloads_total", `{result="error"}`)).toBe(1)
      expect(sample(metrics, "tessera_config_reloads_total", `{result="ok"}`)).toBe(1)
      expect(logged(`"code":"ReloadFailed"`)).toBe(1)
    } finally {
      p.child.kill("SIGKILL")
    }
  }, 20_000)

  it("refuses to start when an API key does not resolve, rather than serve with fewer keys (exit 2)", async () => {
    const file = join(dir, "unset-key.yaml")
    writeFileSync(
      file,
      configText(sb, {
        keys: false,
        connections: ["jobs"],
        extra: `server:\n  api_keys:\n    - { name: ops, key: "\${env:TESSERA_TEST_UNSET_KEY}" }`
      })
    )
    const p = run(["--config", file, "--port", "0"])
    try {
      expect(await p.exit).toBe(2)
      expect(p.stderr()).toMatch(/unset-key\.yaml:\d+:\d+: error: server\.api_keys\[0\]\.key: .*TESSERA_TEST_UNSET_KEY/)
    } finally {
      p.child.kill("SIGKILL")
    }
  }, 15_000)

  it("exits 2 with located problems for a broken config, and 2 for bad usage", async () => {
    const file = join(dir, "broken.yaml")
    writeFileSync(file, "connections: {}\nbogus_key: 1\n")
    const p = run(["--config", file, "--port", "0"])
    const q = run(["--port", "abc"])
    const l = run(["--config", file, "--port", "0"], { TESSERA_LOG_LEVEL: "loud" })
    try {
      expect(await p.exit).toBe(2)
      expect(p.stderr()).toMatch(/broken\.yaml:2:1: error: .*unknown key "bogus_key"/)
      expect(await q.exit).toBe(2)
      expect(q.stderr()).toMatch(/--port/)
      expect(await l.exit).toBe(2)
      expect(l.stderr()).toMatch(/TESSERA_LOG_LEVEL="loud" names no log level; use one of: all, trace/)
    } finally {
      p.child.kill("SIGKILL")
      q.child.kill("SIGKILL")
      l.child.kill("SIGKILL")
    }
  }, 15_000)
})

describe("secrets", () => {
  it("nothing secret in the logs or problems of these servers and processes", () => {
    expect(captured.logs.length).toBeGreaterThan(10)
    expect(leaks(sb, captured, "")).toEqual([])
  })
})
