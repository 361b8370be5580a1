/** A tenant key without a route's scope learns nothing about other tenants' connections either: the scope does not
 *  depend on the connection, so its 403 comes first, the same for the key's own connection, another tenant's and a
 *  name that does not exist. (Before, another tenant's connection answered 404 and the two others 403: an
 *  existence oracle on every route the key may not use.) With the scope, another tenant's connection is the 404
 *  of a name that does not exist, as before. */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, parseConfig, raw, sandbox, start, type Reply } from "./services/harness.ts"

const ADMIN = "scopes-admin-key-4c1d9e7b2a6f"
/** Tenant acme, the default scopes (token, proxy): no connections:read or :write. */
const BACKEND = "scopes-backend-key-8e2b5d1c7f3a"
/** Tenant acme, connections:read only: no token or proxy. */
const READER = "scopes-reader-key-3f9a6c2e1b7d"
/** Every connection, no scope: a Prometheus scraper's key. */
const SCRAPER = "scopes-scraper-key-6d2a8f4c1e9b"

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const text = [
    "server:",
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: backend, key: "${BACKEND}", tags: { tenant: acme } }`,
    `    - { name: reader, key: "${READER}", tags: { tenant: acme }, scopes: ["connections:read"] }`,
    `    - { name: scraper, key: "${SCRAPER}", scopes: [] }`,
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
  for (const [name, tenant] of [
    ["acme-own", "acme"],
    ["globex-other", "globex"]
  ] as const) {
    const put = await call(ADMIN, "PUT", `/v1/connections/${name}`, {
      provider: "dvinci",
      inputs: sb.credentials.dvinci,
      tags: { tenant }
    })
    expect(put.status).toBe(201)
    // A cached token for each, so that the token fast path could answer too.
    expect((await call(ADMIN, "GET", `/v1/connections/${name}/token`)).status).toBe(200)
  }
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

function call(key: string, method: string, path: string, body?: unknown): Promise<Reply> {
  const proxy = path.startsWith("/v1/proxy/")
  return raw(
    s.url,
    path,
    {
      method,
      headers: {
        ...(proxy ? { "x-tessera-key": key } : { authorization: `Bearer ${key}` }),
        ...(body !== undefined ? { "content-type": "application/json" } : {})
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    },
    captured
  )
}

/** What a caller can compare: the status and the problem's code, title and type. */
const shape = (r: Reply) => {
  const p = r.headers["content-type"] === "application/problem+json" ? r.json() : {}
  return { status: r.status, code: p.code, title: p.title, type: p.type }
}

const names = ["acme-own", "globex-other", "no-such-connection"]

describe("a tenant key without the route's scope", () => {
  const cases: Array<[string, string, string, (n: string) => unknown]> = [
    ["backend", "GET", "/v1/connections/:n", () => undefined],
    ["backend", "DELETE", "/v1/connections/:n", () => undefined],
    [
      "backend",
      "PUT",
      "/v1/connections/:n",
      () => ({ provider: "dvinci", inputs: sb.credentials.dvinci, tags: { tenant: "acme" } })
    ],
    ["reader", "GET", "/v1/connections/:n/token", () => undefined],
    ["reader", "POST", "/v1/connections/:n/refresh", () => undefined],
    ["reader", "DELETE", "/v1/connections/:n/token", () => undefined],
    ["reader", "GET", "/v1/proxy/:n/dvinciUsers/", () => undefined]
  ]
  for (const [who, method, path, body] of cases) {
    it(`${who} ${method} ${path}: the same 403 for its own connection, another tenant's and an unknown name`, async () => {
      const key = who === "backend" ? BACKEND : READER
      const answers = await Promise.all(names.map((n) => call(key, method, path.replace(":n", n), body(n))))
      for (const [i, r] of answers.entries()) expect(shape(r), names[i]).toEqual(shape(answers[0]!))
      expect(answers[0]!.status).toBe(403)
      expect(answers[0]!.json().code).toBe("Forbidden")
    })
  }

  it("with the scope, another tenant's connection is still the 404 of an unknown name", async () => {
    const other = await call(READER, "GET", "/v1/connections/globex-other")
    const unknown = await call(READER, "GET", "/v1/connections/no-such-connection")
    expect(shape(other)).toEqual(shape(unknown))
    expect(other.status).toBe(404)
    expect((await call(READER, "GET", "/v1/connections/acme-own")).status).toBe(200)
    const token = await call(BACKEND, "GET", "/v1/connections/globex-other/token")
    expect(shape(token)).toEqual(shape(await call(BACKEND, "GET", "/v1/connections/no-such-connection/token")))
    expect(token.status).toBe(404)
  })

  it("a path the proxy refuses tells nothing either: 404 for another tenant's connection and an unknown name alike, 400 only for its own", async () => {
    // Before, the path was checked before the connection was looked up: a name that does not exist answered 400
    // and another tenant's 404, so the default scopes (token, proxy) could tell a taken name from a free one.
    for (const rest of ["%2e%2e/admin", "..;/admin", "a/%252e%252e/b", "..%00/x"]) {
      const other = await call(BACKEND, "GET", `/v1/proxy/globex-other/${rest}`)
      const unknown = await call(BACKEND, "GET", `/v1/proxy/no-such-connection/${rest}`)
      expect(shape(unknown), rest).toEqual(shape(other))
      expect(shape(other), rest).toMatchObject({ status: 404, code: "UnknownConnection" })
      expect(shape(await call(BACKEND, "GET", `/v1/proxy/acme-own/${rest}`)), rest).toMatchObject({
        status: 400,
        code: "BadRequest"
      })
    }
  })

  it("GET /metrics, whose series cover every tenant: 403 for a tenant's key, however it is sent; a key that sees every connection reads it", async () => {
    for (const key of [BACKEND, READER]) {
      for (const headers of [{ authorization: `Bearer ${key}` }, { "x-tessera-key": key }]) {
        const r = await raw(s.url, "/metrics", { headers }, captured)
        expect(shape(r)).toMatchObject({ status: 403, code: "Forbidden" })
        expect(r.text).not.toContain("tessera_")
      }
      // Readiness and the OpenAPI document show nothing of any connection: any valid key still reads them.
      expect((await call(key, "GET", "/readyz")).status).toBe(200)
      expect((await call(key, "GET", "/openapi.json")).status).toBe(200)
      // The provider catalogue is shared (README): a tenant's key lists the same manifests as the admin's.
      const providers = await call(key, "GET", "/v1/providers")
      expect(providers.status).toBe(200)
      expect(providers.text).toBe((await call(ADMIN, "GET", "/v1/providers")).text)
    }
    for (const key of [ADMIN, SCRAPER]) {
      const r = await call(key, "GET", "/metrics")
      expect(r.status).toBe(200)
      expect(r.text).toContain("tessera_http_requests_total")
    }
    // The scraper's key reads the metrics and nothing else.
    expect((await call(SCRAPER, "GET", "/v1/connections/acme-own/token")).status).toBe(403)
  })

  it("nothing was changed by the refused calls", async () => {
    expect((await call(ADMIN, "GET", "/v1/connections/globex-other")).status).toBe(200)
    expect((await call(ADMIN, "GET", "/v1/connections/acme-own")).status).toBe(200)
    expect((await call(ADMIN, "GET", "/v1/connections/no-such-connection")).status).toBe(404)
  })
})
