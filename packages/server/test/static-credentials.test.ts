/** Static credentials (kind api_key and basic) on a real server: the proxy applies them in place of the caller's
 *  Authorization, and the token routes refuse them with 409 StaticCredential, never showing the key. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { OPS_KEY, capture, configText, parseConfig, raw, sandbox, start } from "./services/harness.ts"

const KEY = "static-key-9c2e7a41b0d3"
let sb: Sandbox
let s: RunningServer
let upstream: http.Server
const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = []
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  upstream = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers })
    res.setHeader("content-type", "application/json")
    res.end('{"ok":true}')
  })
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const own = [
    `  keyed:\n    provider: api-key\n    inputs: { api_key: "${KEY}", header: X-API-Key, base_url: "${base}/v1" }`,
    `  queried:\n    provider: api-key\n    inputs: { api_key: "${KEY}", query: key, base_url: "${base}/v1" }`,
    `  basic:\n    provider: basic\n    inputs: { username: svc, password: "${KEY}", base_url: "${base}/v1" }`
  ].join("\n")
  const text = configText(sb, { connections: ["jobs"] }).replace("connections:\n", `connections:\n${own}\n`)
  s = await start(await parseConfig(text), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()))
})

const key = { "x-tessera-key": OPS_KEY }

describe("static credentials through the proxy", () => {
  it("api_key: the key in its header; the caller's Authorization is stripped", async () => {
    const r = await raw(s.url, "/v1/proxy/keyed/items?page=2", { headers: { ...key, authorization: "Bearer caller" } })
    expect(r.status).toBe(200)
    const last = seen.at(-1)!
    expect(last.url).toBe("/v1/items?page=2")
    expect(last.headers["x-api-key"]).toBe(KEY)
    expect(last.headers["authorization"]).toBeUndefined()
  })

  it("api_key in a query parameter", async () => {
    await raw(s.url, "/v1/proxy/queried/items?page=2", { headers: key })
    expect(seen.at(-1)!.url).toBe(`/v1/items?page=2&key=${KEY}`)
  })

  it("basic: Authorization: Basic base64(user:password)", async () => {
    await raw(s.url, "/v1/proxy/basic/items", { headers: key })
    expect(seen.at(-1)!.headers["authorization"]).toBe(`Basic ${Buffer.from(`svc:${KEY}`).toString("base64")}`)
  })
})

describe("the token routes refuse a static credential", () => {
  for (const [method, path] of [
    ["GET", "/v1/connections/keyed/token"],
    ["POST", "/v1/connections/basic/refresh"]
  ] as const)
    it(`${method} ${path}: 409 StaticCredential, the key nowhere in the answer`, async () => {
      const r = await raw(s.url, path, { method, headers: key })
      expect(r.status).toBe(409)
      expect(r.headers["content-type"]).toBe("application/problem+json")
      expect(r.json()).toMatchObject({ status: 409, code: "StaticCredential" })
      expect(r.json().detail).toMatch(/static credential \(kind: (api_key|basic)\).*proxy/)
      expect(r.text).not.toContain(KEY)
      expect(r.text).not.toContain(Buffer.from(`svc:${KEY}`).toString("base64"))
    })

  it("the OpenAPI document lists the 409", async () => {
    const doc = (await raw(s.url, "/openapi.json", { headers: key })).json()
    expect(Object.keys(doc.paths["/v1/connections/{name}/token"].get.responses)).toContain("409")
  })
})
