/** Whose name a PUT writes is decided when its body has arrived, not when its headers did. A tenant key's PUT on a
 *  free name passes the router's check at once (nothing is there); before, the handler then read the body for as
 *  long as its sender liked and wrote whatever stood under the name by then: a tenant that held such a request
 *  open replaced, with its own inputs and tags, the connection another tenant (or the onboarding key) created
 *  meanwhile, and a connect link made for that name then sent the other tenant's users to its authorize_url. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, parseConfig, raw, sandbox, start, type Reply } from "./services/harness.ts"

const ACME = "slow-acme-key-8e2b5d1c7f3a"
const GLOBEX = "slow-globex-key-3f9a6c2e1b7d"

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const text = [
    "server:",
    "  tenant_private_targets: true # the sandbox is on 127.0.0.1",
    "  api_keys:",
    `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: ["connections:read", "connections:write"] }`,
    `    - { name: globex, key: "${GLOBEX}", tags: { tenant: globex }, scopes: ["connections:read", "connections:write"] }`
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const body = (tenant: string, clientId: string) =>
  JSON.stringify({ provider: "dvinci", inputs: { ...sb.credentials.dvinci, client_id: clientId }, tags: { tenant } })

const call = (key: string, method: string, path: string, data?: string): Promise<Reply> =>
  raw(
    s.url,
    path,
    {
      method,
      headers: { authorization: `Bearer ${key}`, ...(data ? { "content-type": "application/json" } : {}) },
      ...(data ? { body: data } : {})
    },
    captured
  )

/** A PUT whose headers and first half of the body go now, and the rest when `finish` is called. */
const slowPut = (key: string, path: string, data: string) => {
  const u = new URL(s.url)
  let resolveReply: (r: { status: number; text: string }) => void = () => undefined
  const reply = new Promise<{ status: number; text: string }>((r) => (resolveReply = r))
  const req = http.request(
    {
      host: u.hostname,
      port: u.port,
      path,
      method: "PUT",
      agent: false,
      headers: {
        authorization: `Bearer ${key}`,
        "content-type": "application/json",
        "content-length": String(Buffer.byteLength(data))
      }
    },
    (res) => {
      let text = ""
      res.on("data", (c: Buffer) => (text += c.toString()))
      res.on("end", () => resolveReply({ status: res.statusCode ?? 0, text }))
    }
  )
  const half = Math.floor(data.length / 2)
  req.write(data.slice(0, half))
  return {
    finish: () => {
      req.end(data.slice(half))
      return reply
    }
  }
}

describe("a PUT whose body is slow", () => {
  it("cannot replace a connection another tenant created while it was being sent", async () => {
    const held = slowPut(ACME, "/v1/connections/onboarded", body("acme", "acme-client"))
    await new Promise((r) => setTimeout(r, 200)) // the router has let it through: the name was free
    expect((await call(GLOBEX, "PUT", "/v1/connections/onboarded", body("globex", "globex-client"))).status).toBe(201)
    const late = await held.finish()
    expect(late.status, late.text).toBe(404)
    expect(JSON.parse(late.text).code).toBe("UnknownConnection")
    const kept = await call(GLOBEX, "GET", "/v1/connections/onboarded")
    expect(kept.status).toBe(200)
    expect(kept.json()).toMatchObject({ tags: { tenant: "globex" }, inputs: { client_id: "globex-client" } })
  })

  it("still creates a free name, and replaces its own tenant's connection", async () => {
    const held = slowPut(ACME, "/v1/connections/acme-slow", body("acme", "first"))
    await new Promise((r) => setTimeout(r, 100))
    expect((await held.finish()).status).toBe(201)
    const again = slowPut(ACME, "/v1/connections/acme-slow", body("acme", "second"))
    await new Promise((r) => setTimeout(r, 100))
    expect((await again.finish()).status).toBe(200)
    expect((await call(ACME, "GET", "/v1/connections/acme-slow")).json().inputs.client_id).toBe("second")
  })
})
