/** The status page's "failing", last renewal and last error belong to one connection, not to its name: a connection
 *  deleted and created again under the name, for another tenant, starts with none of them. (This instance's record
 *  of renewals was kept by name, so the new tenant's key read the old tenant's last error, its reason naming the
 *  old connection's token endpoint, and saw its connection "failing" before it had been used.) A replacement keeps
 *  them: it is the same connection. The same for webhooks: the new connection's first failure is a
 *  `refresh_failed` of its own, not one told already for the old connection (and so never sent); and a failure of
 *  the old one told after the name went to the other tenant carries the old one's tags, not the new one's (a
 *  receiver routing by tags sent Acme's failure, naming Acme's token endpoint, to Globex). */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, parseConfig, sandbox, start } from "./services/harness.ts"
import { newSecret, startReceiver, type Receiver } from "./services/webhook-receiver.ts"

const ADMIN = "status-reuse-admin-key-7c2e9a4d1f6b"
const ACME = "status-reuse-acme-key-3a8d5f1c9e2b"
const GLOBEX = "status-reuse-globex-key-6f1b4e8a2c7d"

let sb: Sandbox
let s: RunningServer
let hooks: Receiver
/** A token endpoint that answers 503, slowly: a renewal still in flight when its connection is deleted. */
let slow: http.Server
let slowUrl: string
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const secret = newSecret()
  hooks = await startReceiver(secret)
  slow = http.createServer((_req, res) => setTimeout(() => res.writeHead(503).end("busy"), 1500))
  await new Promise<void>((resolve) => slow.listen(0, "127.0.0.1", resolve))
  slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/acme-slow-sso/token`
  const text = [
    `notify: [{ url: "${hooks.url}", events: [refresh_failed], secret: "${secret}" }]`,
    "server:",
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: [token, "connections:read"] }`,
    `    - { name: globex, key: "${GLOBEX}", tags: { tenant: globex }, scopes: [token, "connections:read"] }`,
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
})
afterAll(async () => {
  await s?.close()
  await hooks?.close()
  slow?.closeAllConnections()
  await new Promise((resolve) => slow?.close(resolve))
  await sb?.close()
})

const row = async (key: string, name: string) => {
  const r = await keyed(s.url, key, "GET", "/ui/status")
  expect(r.status).toBe(200)
  return (r.json().items as Array<Record<string, any>>).find((i) => i.name === name)
}

it("a name deleted and created again for another tenant shows none of the old connection's renewals or errors", async () => {
  // Acme's connection fails: its token endpoint (an address of Acme's own) does not answer.
  const acmeInputs = { ...sb.credentials.dvinci, token_url: "http://127.0.0.1:9/acme-internal-sso/token" }
  const put = await keyed(s.url, ADMIN, "PUT", "/v1/connections/crm-7f3a", {
    provider: "dvinci",
    inputs: acmeInputs,
    tags: { tenant: "acme" }
  })
  expect(put.status).toBe(201)
  expect((await keyed(s.url, ACME, "GET", "/v1/connections/crm-7f3a/token")).status).toBeGreaterThanOrEqual(500)
  const acme = await row(ACME, "crm-7f3a")
  expect(acme?.["status"]).toBe("failing")
  expect(acme?.["last_error"]).not.toBeNull()

  // A replacement is the same connection: what was seen of it stays.
  const replaced = await keyed(s.url, ADMIN, "PUT", "/v1/connections/crm-7f3a", {
    provider: "dvinci",
    inputs: acmeInputs,
    tags: { tenant: "acme", team: "sales" }
  })
  expect(replaced.status).toBe(200)
  expect((await row(ACME, "crm-7f3a"))?.["last_error"]).toEqual(acme?.["last_error"])

  expect((await keyed(s.url, ADMIN, "DELETE", "/v1/connections/crm-7f3a")).status).toBe(204)
  const created = await keyed(s.url, ADMIN, "PUT", "/v1/connections/crm-7f3a", {
    provider: "dvinci",
    inputs: sb.credentials.dvinci,
    tags: { tenant: "globex" }
  })
  expect(created.status).toBe(201)
  const globex = await row(GLOBEX, "crm-7f3a")
  expect(globex).toMatchObject({ status: "no token", last_error: null, last_renewal: null })
  expect(JSON.stringify(globex)).not.toContain("acme")
  expect((await keyed(s.url, GLOBEX, "GET", "/ui")).text).not.toContain("acme-internal-sso")

  // Its own renewals show as before.
  expect((await keyed(s.url, GLOBEX, "GET", "/v1/connections/crm-7f3a/token")).status).toBe(200)
  expect(await row(GLOBEX, "crm-7f3a")).toMatchObject({ status: "fresh", last_error: null })
})

it("the new connection's first failure is its own refresh_failed webhook, with its tags", async () => {
  const failing = (tenant: string) => ({
    provider: "dvinci",
    inputs: { ...sb.credentials.dvinci, token_url: `http://127.0.0.1:9/${tenant}-sso/token` },
    tags: { tenant }
  })
  const told = async (n: number) => {
    for (let i = 0; i < 100 && hooks.accepted().length < n; i++) await new Promise((r) => setTimeout(r, 20))
    return hooks.accepted().map((d) => JSON.parse(d.body) as { type: string; data: Record<string, any> })
  }
  const before = hooks.accepted().length
  expect((await keyed(s.url, ADMIN, "PUT", "/v1/connections/erp-9b2e", failing("acme"))).status).toBe(201)
  expect((await keyed(s.url, ACME, "GET", "/v1/connections/erp-9b2e/token")).status).toBeGreaterThanOrEqual(500)
  expect((await told(before + 1)).at(-1)).toMatchObject({
    type: "connection.refresh_failed",
    data: { connection: "erp-9b2e", tags: { tenant: "acme" } }
  })
  expect((await keyed(s.url, ADMIN, "DELETE", "/v1/connections/erp-9b2e")).status).toBe(204)
  expect((await keyed(s.url, ADMIN, "PUT", "/v1/connections/erp-9b2e", failing("globex"))).status).toBe(201)
  expect((await keyed(s.url, GLOBEX, "GET", "/v1/connections/erp-9b2e/token")).status).toBeGreaterThanOrEqual(500)
  expect((await told(before + 2)).slice(before)).toMatchObject([
    { data: { tags: { tenant: "acme" } } },
    { type: "connection.refresh_failed", data: { connection: "erp-9b2e", tags: { tenant: "globex" } } }
  ])
})

it("a failure of the old connection, told after its name went to another tenant, carries the old one's tags", async () => {
  const before = hooks.accepted().length
  expect(
    (
      await keyed(s.url, ADMIN, "PUT", "/v1/connections/hr-5d8c", {
        provider: "dvinci",
        inputs: { ...sb.credentials.dvinci, token_url: slowUrl },
        tags: { tenant: "acme" }
      })
    ).status
  ).toBe(201)
  const renewal = keyed(s.url, ACME, "GET", "/v1/connections/hr-5d8c/token")
  await new Promise((r) => setTimeout(r, 150))
  // While Acme's renewal waits on its token endpoint, the name goes to Globex, whose connection is used at once.
  expect((await keyed(s.url, ADMIN, "DELETE", "/v1/connections/hr-5d8c")).status).toBe(204)
  const created = await keyed(s.url, ADMIN, "PUT", "/v1/connections/hr-5d8c", {
    provider: "dvinci",
    inputs: sb.credentials.dvinci,
    tags: { tenant: "globex" }
  })
  expect(created.status).toBe(201)
  expect((await keyed(s.url, GLOBEX, "GET", "/v1/connections/hr-5d8c/token")).status).toBe(200)
  expect((await renewal).status).toBeGreaterThanOrEqual(500)
  for (let i = 0; i < 100 && hooks.accepted().length <= before; i++) await new Promise((r) => setTimeout(r, 20))
  const told = hooks
    .accepted()
    .slice(before)
    .map((d) => JSON.parse(d.body) as { type: string; data: Record<string, any> })
  expect(told).toHaveLength(1)
  expect(told[0]).toMatchObject({
    type: "connection.refresh_failed",
    data: { connection: "hr-5d8c", tags: { tenant: "acme" } }
  })
})
