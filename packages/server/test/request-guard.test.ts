/** The request guard over real sockets: which Host values a server answers (DNS rebinding), with and without keys
 *  and with `server.allowed_hosts`, and the refusal of requests sent by web pages of another origin on every route,
 *  the token fast path and the proxy included. */
import type { Sandbox } from "@tessera/testkit"
import { Effect } from "effect"
import { readFileSync } from "node:fs"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Config, ManifestError } from "@tessera/engine"
import type { RunningServer } from "../src/index.ts"
import {
  OPS_KEY,
  capture,
  configText,
  env,
  leaks,
  parseConfig,
  raw,
  sample,
  sandbox,
  start,
  type Reply
} from "./services/harness.ts"

let sb: Sandbox
const captured = capture()
const servers: RunningServer[] = []
const key = { "x-tessera-key": OPS_KEY }

beforeAll(async () => {
  sb = await sandbox()
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  await sb?.close()
})

const serve = async (opts: { keys?: boolean; server?: ReadonlyArray<string>; host?: string } = {}) => {
  const config = await parseConfig(configText(sb, { keys: opts.keys ?? false, connections: ["jobs"], ...opts }))
  const s = await start(config, captured, opts.host ? { host: opts.host } : {})
  servers.push(s)
  return { s, port: Number(new URL(s.url).port) }
}

const get = (s: RunningServer, path: string, headers: Record<string, string> = {}, method = "GET") =>
  raw(s.url, path, { method, headers }, captured)

const token = async (s: RunningServer, headers: Record<string, string> = {}) => {
  const r = await get(s, "/v1/connections/jobs/token", headers)
  if (r.status === 200) captured.tokens.add(r.json().access_token)
  return r
}

const expectRefused = (r: Reply, code: "HostNotAllowed" | "CrossSiteRequest") => {
  expect(r.status).toBe(403)
  expect(r.headers["content-type"]).toBe("application/problem+json")
  const p = r.json()
  expect(p).toMatchObject({ status: 403, code, request_id: r.headers["x-request-id"] })
  expect(r.text).not.toContain("access_token")
  return p
}

/** Sends bytes as they are (for a request without a Host header) and returns the status code. */
const rawRequest = (s: RunningServer, text: string) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const socket = connect(Number(new URL(s.url).port), "127.0.0.1", () => socket.write(text))
    let out = ""
    socket.setEncoding("latin1")
    socket.on("data", (d) => {
      out += d
    })
    socket.on("close", () => resolve({ status: Number(/^HTTP\/1\.\d (\d{3})/.exec(out)?.[1] ?? 0), text: out }))
    socket.on("error", reject)
  })

describe("Host without API keys (DNS rebinding)", () => {
  it("answers 127.x.x.x, [::1] and localhost on its own port, on the fast path and the router alike", async () => {
    const { s, port } = await serve()
    expect((await token(s)).status).toBe(200) // the token is cached: the next GETs take the fast path
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      `LOCALHOST:${port}`,
      `127.0.0.2:${port}`
    ]) {
      expect((await token(s, { host })).status, host).toBe(200)
      expect((await get(s, "/v1/connections", { host })).status, host).toBe(200)
    }
  })

  it("refuses any other Host with 403 HostNotAllowed on every route, the fast path included", async () => {
    const { s, port } = await serve()
    expect((await token(s)).status).toBe(200) // warm: without the guard the fast path would answer 200
    const rebound = `attacker.example:${port}`
    const p = expectRefused(await token(s, { host: rebound }), "HostNotAllowed")
    expect(p.detail).toContain(`127.0.0.1:${port}`)
    expect(p.detail).toContain("server.allowed_hosts")
    expect(p.detail).toContain("attacker.example")
    for (const path of ["/v1/connections", "/v1/providers", "/metrics", "/readyz", "/openapi.json", "/healthz"])
      expectRefused(await get(s, path, { host: rebound }), "HostNotAllowed")
    expectRefused(await get(s, "/v1/connections/jobs/refresh", { host: rebound }, "POST"), "HostNotAllowed")
    expectRefused(await get(s, "/v1/connections/jobs/token", { host: rebound }, "DELETE"), "HostNotAllowed")
    for (const host of [
      "127.0.0.1", // no port means 80, not this server's port
      `127.0.0.1:${port + 1}`,
      `localhost.attacker.example:${port}`,
      `127.0.0.1.nip.io:${port}`,
      `localhost:${port}@attacker.example`
    ])
      expectRefused(await token(s, { host }), "HostNotAllowed")
  })

  it("refuses a request without a Host header", async () => {
    const { s } = await serve()
    const r = await rawRequest(s, "GET /v1/connections/jobs/token HTTP/1.0\r\n\r\n")
    expect(r.status).toBe(403)
    expect(r.text).toContain(`"code":"HostNotAllowed"`)
    expect(r.text).toContain("without a Host header")
  })

  it("is what a client calling the server by its address sends (fetch over IPv4 and IPv6)", async () => {
    const v4 = await serve()
    expect((await fetch(`${v4.s.url}/v1/connections`)).status).toBe(200)
    const v6 = await serve({ host: "::1" })
    expect(v6.s.url).toMatch(/^http:\/\/\[::1\]:\d+$/)
    expect((await fetch(`${v6.s.url}/v1/connections`)).status).toBe(200)
  })

  it("refusals are logged and counted like any answer", async () => {
    const { s, port } = await serve()
    await token(s, { host: `attacker.example:${port}`, "x-request-id": "rebind-1" })
    const line = captured.logs.find((l) => l.includes(`"request_id":"rebind-1"`))
    expect(JSON.parse(line!)).toMatchObject({ type: "access", status: 403, path: "/v1/connections/jobs/token" })
    const metrics = (await get(s, "/metrics")).text
    expect(sample(metrics, "tessera_http_requests_total", `{method="GET",route="unmatched",status="403"}`)).toBe(1)
  })
})

describe("server.allowed_hosts", () => {
  it("lets a keyless server answer a listed name: any port for `name`, exactly for `name:port`", async () => {
    const { s, port } = await serve({ server: ["allowed_hosts: [tessera.internal, Other.Internal:9999]"] })
    for (const host of ["tessera.internal", `tessera.internal:${port}`, "TESSERA.internal:1", "other.internal:9999"])
      expect((await token(s, { host })).status, host).toBe(200)
    expect((await token(s, { host: `127.0.0.1:${port}` })).status).toBe(200) // loopback stays answered
    for (const host of ["other.internal", "other.internal:9998", `attacker.example:${port}`])
      expectRefused(await token(s, { host }), "HostNotAllowed")
  })

  it("with keys, any Host is answered by default (behind a reverse proxy), and the key still decides", async () => {
    const { s } = await serve({ keys: true, host: "0.0.0.0" })
    const local = s.url.replace("0.0.0.0", "127.0.0.1")
    const r = await raw(local, "/v1/connections/jobs/token", { headers: { ...key, host: "tessera.example.com" } })
    expect(r.status).toBe(200)
    captured.tokens.add(r.json().access_token)
    expect((await raw(local, "/v1/connections", { headers: { host: "tessera.example.com" } })).status).toBe(401)
  })

  it("with keys, a list narrows the Hosts answered to loopback and the listed names, even with a valid key", async () => {
    const { s, port } = await serve({ keys: true, server: ["allowed_hosts: [tessera.example.com]"] })
    expect((await token(s, { ...key, host: "tessera.example.com" })).status).toBe(200)
    expect((await token(s, { ...key, host: `localhost:${port}` })).status).toBe(200)
    const p = expectRefused(await token(s, { ...key, host: "elsewhere.example.com" }), "HostNotAllowed")
    expect(p.detail).toContain("tessera.example.com")
  })

  it("an entry that is not a Host value is a located config error", async () => {
    const text = configText(sb, { keys: false, connections: ["jobs"], server: ["allowed_hosts: [http://x.example/]"] })
    const error = await Effect.runPromise(Effect.flip(Config.parse("/tmp/t/tessera.yaml", text, env)))
    expect(error).toBeInstanceOf(ManifestError.ConfigInvalid)
    expect(error.message).toMatch(/tessera\.yaml:\d+:\d+: error: server\.allowed_hosts\[0\]/)
  })
})

describe("requests from web pages of another origin", () => {
  it("are refused with 403 CrossSiteRequest, by Origin or by Sec-Fetch-Site, on the fast path too", async () => {
    const { s, port } = await serve()
    expect((await token(s)).status).toBe(200)
    for (const headers of [
      { origin: "http://attacker.example" },
      { origin: `http://attacker.example:${port}` },
      { origin: "null" }, // sandboxed frames, file: pages
      { origin: `http://localhost:${port + 1}` }, // another local app is another origin
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { "sec-fetch-site": "same-origin, cross-site" }
    ]) {
      const p = expectRefused(await token(s, headers), "CrossSiteRequest")
      expect(p.detail).toMatch(/web page of another origin.*Call the server from a program/)
      expectRefused(await get(s, "/healthz", headers), "CrossSiteRequest")
    }
  })

  it("from the server's own origin, or the user's own navigation, are answered", async () => {
    const { s, port } = await serve()
    for (const headers of [
      { origin: `http://127.0.0.1:${port}`, "sec-fetch-site": "same-origin" },
      { origin: `http://localhost:${port}`, host: `localhost:${port}` },
      { "sec-fetch-site": "none" }
    ])
      expect((await token(s, headers)).status, JSON.stringify(headers)).toBe(200)
  })

  it("a cross-site text/plain POST to the proxy is never forwarded, with keys or without", async () => {
    const keyless = (await serve()).s
    const keyed = (await serve({ keys: true })).s
    const before = sb.requests.filter((r) => r.kind === "api").length
    const post = (s: RunningServer, headers: Record<string, string>) =>
      raw(
        s.url,
        "/v1/proxy/jobs/dvinciUsers/",
        { method: "POST", headers: { "content-type": "text/plain", ...headers }, body: '{"evil":true}' },
        captured
      )
    for (const browser of [
      { origin: "https://attacker.example", "sec-fetch-site": "cross-site" },
      { origin: "https://attacker.example" }, // a browser without Fetch Metadata
      { "sec-fetch-site": "cross-site" }
    ]) {
      expectRefused(await post(keyless, browser), "CrossSiteRequest")
      expectRefused(await post(keyed, { ...browser, ...key }), "CrossSiteRequest")
    }
    expect(sb.requests.filter((r) => r.kind === "api").length).toBe(before)
    // The same POST from a program goes through.
    expect((await post(keyless, {})).status).toBe(200)
    expect(sb.requests.filter((r) => r.kind === "api").length).toBe(before + 1)
  })
})

describe("the README's Security example", () => {
  it("keyed on 0.0.0.0, answers loopback and tessera.internal only, readyz and metrics without a key", async () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    const security = readme.slice(readme.indexOf("## Security"))
    const example = /```yaml\n(server:[\s\S]*?)```/.exec(security)?.[1]
    expect(example).toBeDefined()
    const text = configText(sb, { keys: false, connections: ["jobs"], extra: example! })
    const config = await Effect.runPromise(
      Config.parse("/tmp/t/tessera.yaml", text, { ...env, TESSERA_API_KEY: OPS_KEY })
    )
    const s = await start(config, captured, { host: undefined })
    servers.push(s)
    expect(s.url).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/)
    const local = s.url.replace("0.0.0.0", "127.0.0.1")
    const call = (path: string, headers: Record<string, string>) => raw(local, path, { headers }, captured)
    const r = await call("/v1/connections/jobs/token", { ...key, host: "tessera.internal" })
    expect(r.status).toBe(200)
    captured.tokens.add(r.json().access_token)
    expectRefused(await call("/v1/connections/jobs/token", { ...key, host: "tessera.example.com" }), "HostNotAllowed")
    expect((await call("/readyz", {})).status).toBe(200)
    expect((await call("/metrics", {})).status).toBe(200)
    expect((await call("/openapi.json", {})).status).toBe(401)
  })
})

describe("secrets", () => {
  it("nothing secret in the logs or problem bodies of these servers", async () => {
    expect(captured.problems.length).toBeGreaterThan(20)
    expect(leaks(sb, captured, "")).toEqual([])
  })
})
