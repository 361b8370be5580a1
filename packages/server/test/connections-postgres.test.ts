/** The connections API's list on a PostgreSQL connection store, where a tag filter that can match nothing (another
 *  tenant's tag for a tenant key, two values for one tag) used to reach the database as a U+0000 value that jsonb
 *  cannot hold: a 503 ConnectionStoreError instead of an empty page. And a U+0000 in a tag or an input, which
 *  SQLite stores and PostgreSQL cannot, is a 422 on every store. */
import type { Sandbox } from "@tessera/testkit"
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, expect, it } from "vitest"
import {
  databaseUrl,
  describePostgres,
  dropSchemas,
  uniqueSchema
} from "../../engine/test/services/postgres-available.ts"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, parseConfig, sandbox, start, type Reply } from "./services/harness.ts"

const ADMIN = "pg-admin-key-4c1d9e7b2a6f"
const ACME = "pg-acme-key-8e2b5d1c7f3a"
const schema = uniqueSchema()
let sb: Sandbox
let s: RunningServer
const captured = capture()

const call = (key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  keyed(s.url, key, method, path, body, captured)

const names = (r: Reply) => {
  expect(r.status, r.text).toBe(200)
  return (r.json().items as Array<{ name: string }>).map((i) => i.name)
}

describePostgres("the connections list on PostgreSQL", () => {
  beforeAll(async () => {
    sb = await sandbox()
    const text = [
      "connection_store:",
      "  type: postgres",
      `  url: ${databaseUrl}`,
      `  schema: ${schema}`,
      `  encryption_keys: ["${randomBytes(32).toString("base64")}"]`,
      "server:",
      "  api_keys:",
      `    - { name: admin, key: "${ADMIN}", scopes: ["connections:read", "connections:write"] }`,
      `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: ["connections:read", "connections:write"] }`
    ].join("\n")
    s = await start(await parseConfig(text), captured)
    for (const [name, tags] of [
      ["pg-acme", { tenant: "acme", constructor: "x" }],
      ["pg-globex", { tenant: "globex" }]
    ] as const) {
      const put = await call(ADMIN, "PUT", `/v1/connections/${name}`, {
        provider: "dvinci",
        inputs: sb.credentials.dvinci,
        tags
      })
      expect(put.status, put.text).toBe(201)
    }
  })
  afterAll(async () => {
    await s?.close()
    await sb?.close()
    await dropSchemas([schema])
  })

  it("a filter that can match nothing is an empty page, not a 503", async () => {
    expect(names(await call(ACME, "GET", "/v1/connections"))).toEqual(["pg-acme"])
    expect(names(await call(ACME, "GET", "/v1/connections?tag=tenant:globex"))).toEqual([])
    expect(names(await call(ADMIN, "GET", "/v1/connections?tag=tenant:acme&tag=tenant:globex"))).toEqual([])
    expect(names(await call(ADMIN, "GET", "/v1/connections?tag=tenant:%00"))).toEqual([])
    expect(names(await call(ADMIN, "GET", "/v1/connections?tag=tenant:acme"))).toEqual(["pg-acme"])
    expect(captured.logs.filter((l) => l.includes("ConnectionStoreError"))).toEqual([])
  })

  it("a tag named like an Object.prototype member filters like any other", async () => {
    expect(names(await call(ADMIN, "GET", "/v1/connections?tag=constructor:x"))).toEqual(["pg-acme"])
    expect(names(await call(ACME, "GET", "/v1/connections?tag=constructor:x"))).toEqual(["pg-acme"])
  })

  it("a U+0000 in a tag or an input value is a 422 naming it, not a 503", async () => {
    const r = await call(ACME, "PUT", "/v1/connections/pg-nul", {
      provider: "dvinci",
      inputs: { ...sb.credentials.dvinci, client_id: "a\u0000b" },
      tags: { tenant: "acme", team: "x\u0000" }
    })
    expect(r.status, r.text).toBe(422)
    // With the default (no server.tenant_private_targets), the tenant's sandbox host on 127.0.0.1 is refused too.
    expect((r.json().errors as Array<{ path: string }>).map((e) => e.path).sort()).toEqual([
      "/inputs/base_url",
      "/inputs/client_id",
      "/tags/team"
    ])
    expect((await call(ADMIN, "GET", "/v1/connections/pg-nul")).status).toBe(404)
  })
})
