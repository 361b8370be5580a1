/** The connections API over real sockets: PUT/GET/DELETE/list with the engine's validation, scopes, and tenant
 *  isolation (a key for tenant A gets 404 for tenant B's connection on every route, exactly as for a name that
 *  does not exist). */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, leaks, metricsText, parseConfig, raw, sandbox, start, type Reply } from "./services/harness.ts"

const ADMIN = "admin-key-4c1d9e7b2a6f"
const ACME = "acme-key-8e2b5d1c7f3a"
const GLOBEX = "globex-key-3f9a6c2e1b7d"
const READER = "reader-key-1a2b3c4d5e6f"

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const text = [
    "connections:",
    "  shared:",
    "    provider: dvinci",
    "    tags: { tenant: acme }",
    "    inputs:",
    ...Object.entries(sb.credentials.dvinci).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    "server:",
    "  tenant_private_targets: true # the sandbox is on 127.0.0.1",
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: globex, key: "${GLOBEX}", tags: { tenant: globex }, scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: reader, key: "${READER}", scopes: ["connections:read"] }`,
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const call = (key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  keyed(s.url, key, method, path, body, captured)

const dvinci = (tenant: string) => ({
  provider: "dvinci",
  inputs: { ...sb.credentials.dvinci },
  tags: { tenant }
})

describe("PUT, GET, DELETE", () => {
  it("201 when created, 200 when replaced, the view without secrets, 204 on delete, then 404", async () => {
    const created = await call(ADMIN, "PUT", "/v1/connections/crud-1", dvinci("acme"))
    expect(created.status).toBe(201)
    expect(created.json()).toMatchObject({
      name: "crud-1",
      provider: "dvinci",
      source: "api",
      tags: { tenant: "acme" }
    })
    expect(created.json().inputs.client_secret).toBe("***")
    expect(created.text).not.toContain(sb.credentials.dvinci["client_secret"])
    const replaced = await call(ADMIN, "PUT", "/v1/connections/crud-1", dvinci("acme"))
    expect(replaced.status).toBe(200)
    expect(replaced.json().created_at).toBe(created.json().created_at)
    const shown = await call(ADMIN, "GET", "/v1/connections/crud-1")
    expect(shown.status).toBe(200)
    expect(shown.json()).toEqual(replaced.json())
    const tok = await call(ADMIN, "GET", "/v1/connections/crud-1/token")
    expect(tok.status).toBe(200)
    captured.tokens.add(tok.json().access_token)
    expect((await call(ADMIN, "DELETE", "/v1/connections/crud-1")).status).toBe(204)
    expect((await call(ADMIN, "GET", "/v1/connections/crud-1")).json().code).toBe("UnknownConnection")
    expect((await call(ADMIN, "GET", "/v1/connections/crud-1/token")).status).toBe(404)
    expect((await call(ADMIN, "DELETE", "/v1/connections/crud-1")).status).toBe(404)
  })

  it("422 with every problem located; nothing stored", async () => {
    const r = await call(ADMIN, "PUT", "/v1/connections/bad-1", {
      provider: "dvinci",
      inputs: { base_url: "http://remote.example", nope: "1" }
    })
    expect(r.status).toBe(422)
    expect(r.headers["content-type"]).toBe("application/problem+json")
    const paths = (r.json().errors as Array<{ path: string }>).map((e) => e.path).sort()
    expect(paths).toEqual(["/inputs/base_url", "/inputs/client_id", "/inputs/client_secret", "/inputs/nope"])
    expect((await call(ADMIN, "GET", "/v1/connections/bad-1")).status).toBe(404)
    const shape = await call(ADMIN, "PUT", "/v1/connections/bad-1", { provider: 3, inputs: [] })
    expect(shape.status).toBe(422)
    expect(
      shape
        .json()
        .errors.map((e: { path: string }) => e.path)
        .sort()
    ).toEqual(["/inputs", "/provider"])
  })

  it("a config-file name is a 409; a body that is not JSON is a 400; a huge one a 413", async () => {
    expect((await call(ADMIN, "PUT", "/v1/connections/shared", dvinci("acme"))).json().code).toBe("ConnectionConflict")
    expect((await call(ADMIN, "DELETE", "/v1/connections/shared")).status).toBe(409)
    const notJson = await raw(s.url, "/v1/connections/x1", {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "text/plain" },
      body: "provider=dvinci"
    })
    expect(notJson.status).toBe(400)
    const huge = await raw(s.url, "/v1/connections/x1", {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({ provider: "dvinci", inputs: { base_url: "x".repeat(70_000) } })
    })
    expect(huge.status).toBe(413)
  })

  it("scopes: a key without connections:write gets 403; the default scopes cannot read", async () => {
    await call(ADMIN, "PUT", "/v1/connections/scoped-1", dvinci("acme"))
    expect((await call(READER, "GET", "/v1/connections/scoped-1")).status).toBe(200)
    const put = await call(READER, "PUT", "/v1/connections/scoped-1", dvinci("acme"))
    expect(put.status).toBe(403)
    expect(put.json().detail).toMatch(/connections:write/)
    expect((await call(READER, "DELETE", "/v1/connections/scoped-1")).status).toBe(403)
    expect((await call(READER, "GET", "/v1/connections/scoped-1/token")).status).toBe(403)
  })

  it("scopes hold on a cache hit too: the fast path answers only a key with the token scope", async () => {
    await call(ADMIN, "PUT", "/v1/connections/scoped-hit", dvinci("acme"))
    const first = await call(ADMIN, "GET", "/v1/connections/scoped-hit/token")
    captured.tokens.add(first.json().access_token)
    expect((await call(ADMIN, "GET", "/v1/connections/scoped-hit/token")).status).toBe(200) // a fresh hit
    const refused = await call(READER, "GET", "/v1/connections/scoped-hit/token")
    expect(refused.status).toBe(403)
    expect(refused.json().detail).toMatch(/lacks the scope "token"/)
  })
})

describe("tenant isolation", () => {
  it("a tenant key sees its own connections and 404s for another tenant's on every route", async () => {
    expect((await call(ACME, "PUT", "/v1/connections/acme-1", dvinci("acme"))).status).toBe(201)
    expect((await call(GLOBEX, "PUT", "/v1/connections/globex-1", dvinci("globex"))).status).toBe(201)
    const missing = await call(ACME, "GET", "/v1/connections/no-such-connection")
    const strip = (r: Reply) => {
      const { request_id: _id, instance: _instance, connection: _connection, detail: _detail, ...rest } = r.json()
      return rest
    }
    const routes: Array<[string, string, unknown?]> = [
      ["GET", "/v1/connections/globex-1"],
      ["GET", "/v1/connections/globex-1/token"],
      ["POST", "/v1/connections/globex-1/refresh"],
      ["DELETE", "/v1/connections/globex-1/token"],
      ["DELETE", "/v1/connections/globex-1"],
      ["PUT", "/v1/connections/globex-1", dvinci("acme")],
      ["GET", "/v1/proxy/globex-1/dvinciUsers/"]
    ]
    for (const [method, path, body] of routes) {
      const r =
        method === "GET" && path.startsWith("/v1/proxy")
          ? await raw(s.url, path, { headers: { "x-tessera-key": ACME } }, captured)
          : await call(ACME, method, path, body)
      expect(r.status, `${method} ${path}`).toBe(404)
      expect(strip(r), `${method} ${path}`).toEqual(strip(missing))
      expect(r.json().provider, `${method} ${path}`).toBeUndefined()
    }
    // Still there for its own tenant, untouched.
    expect((await call(GLOBEX, "GET", "/v1/connections/globex-1")).status).toBe(200)
    const list = await call(ACME, "GET", "/v1/connections")
    const names = list.json().items.map((c: { name: string }) => c.name)
    expect(names).toContain("acme-1")
    expect(names).toContain("shared") // a config connection tagged tenant: acme
    expect(names).not.toContain("globex-1")
    const asked = await call(ACME, "GET", "/v1/connections?tag=tenant:globex")
    expect(asked.json().items).toEqual([])
  })

  it("a tenant key may only write connections carrying its tags", async () => {
    const r = await call(ACME, "PUT", "/v1/connections/acme-2", dvinci("globex"))
    expect(r.status).toBe(422)
    expect(r.json().errors).toEqual([{ path: "/tags/tenant", message: expect.stringMatching(/tenant: acme/) }])
  })

  it("the token of a tenant connection, through the fast path too, only for its tenant", async () => {
    const first = await call(ACME, "GET", "/v1/connections/acme-1/token")
    expect(first.status).toBe(200)
    captured.tokens.add(first.json().access_token)
    const again = await call(ACME, "GET", "/v1/connections/acme-1/token") // a fresh hit: the fast path answers
    expect(again.json().access_token).toBe(first.json().access_token)
    expect((await call(GLOBEX, "GET", "/v1/connections/acme-1/token")).status).toBe(404)
  })
})

describe("list", () => {
  it("pages in a stable order with next_cursor null on the last page, and rejects a bad cursor", async () => {
    for (let i = 0; i < 7; i++) await call(ADMIN, "PUT", `/v1/connections/page-${i}`, dvinci("paging"))
    const names: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const q: string = `/v1/connections?tag=tenant:paging&limit=3${cursor ? `&cursor=${cursor}` : ""}`
      const r = await call(ADMIN, "GET", q)
      expect(r.status).toBe(200)
      names.push(...r.json().items.map((c: { name: string }) => c.name))
      cursor = r.json().next_cursor
      pages++
    } while (cursor !== null && pages < 10)
    expect(names).toEqual(["page-0", "page-1", "page-2", "page-3", "page-4", "page-5", "page-6"])
    expect(pages).toBe(3)
    expect((await call(ADMIN, "GET", "/v1/connections?cursor=garbage!")).status).toBe(400)
    expect((await call(ADMIN, "GET", "/v1/connections?tag=novalue")).status).toBe(400)
  })

  it("no secret reached a log line, problem body or /metrics", async () => {
    expect(leaks(sb, captured, await metricsText(s.url))).toEqual([])
  })
})
