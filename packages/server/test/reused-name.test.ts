/** A name another tenant once held starts from nothing: its tokens are not the ones the token store still keeps for
 *  the connection that had the name before. A stored connection's token cache key names its provider, name,
 *  inputs and version, and versions start again at 1 after a delete; an instance that never resolved the old
 *  connection (a restart, another instance that was down) cannot evict its tokens when it is deleted, so a new
 *  connection under the name with the same inputs found the old one's token in the store (for a user's grant,
 *  another tenant's user's access token). The key now also names when the connection was created. */
import { ConnectionStore, TokenStore } from "@tessera/engine"
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, parseConfig, sandbox, start } from "./services/harness.ts"

const ADMIN = "reused-admin-key-5e2c9a7d1b4f"
const ACME = "reused-acme-key-9b3f6d2a8c1e"
const GLOBEX = "reused-globex-key-2d7a4c9e6f1b"

let sb: Sandbox
const servers: RunningServer[] = []
const captured = capture()
const tokens = TokenStore.makeMemory()
const connections = ConnectionStore.makeMemory()

const text = [
  "server:",
  "  api_keys:",
  `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
  `    - { name: acme, key: "${ACME}", tags: { tenant: acme } }`,
  `    - { name: globex, key: "${GLOBEX}", tags: { tenant: globex } }`,
  "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
].join("\n")

/** An instance on the shared token store and connection store (as several instances on one Redis and one database). */
const instance = async () => {
  const s = await start(await parseConfig(text), captured, { store: tokens, connections })
  servers.push(s)
  return s
}

beforeAll(async () => {
  sb = await sandbox()
})
afterAll(async () => {
  for (const s of servers) await s.close()
  await sb?.close()
})

it("a connection deleted and created again under its name, for another tenant, gets a token of its own", async () => {
  const body = (tenant: string) => ({ provider: "dvinci", inputs: sb.credentials.dvinci, tags: { tenant } })
  const first = await instance()
  expect((await keyed(first.url, ADMIN, "PUT", "/v1/connections/crm-7f3a", body("acme"))).status).toBe(201)
  const acme = await keyed(first.url, ACME, "GET", "/v1/connections/crm-7f3a/token")
  expect(acme.status).toBe(200)
  const acmeToken: string = acme.json().access_token
  // That instance goes (a deploy); the next one never resolved crm-7f3a before it is deleted and handed on.
  await first.close()
  const next = await instance()
  expect((await keyed(next.url, ADMIN, "DELETE", "/v1/connections/crm-7f3a")).status).toBe(204)
  expect((await keyed(next.url, ADMIN, "PUT", "/v1/connections/crm-7f3a", body("globex"))).status).toBe(201)
  const globex = await keyed(next.url, GLOBEX, "GET", "/v1/connections/crm-7f3a/token")
  expect(globex.status).toBe(200)
  expect(globex.json().access_token).not.toBe(acmeToken)
  // A replacement (same name, same creation) keeps its cache across instances as before: a new version, new token.
  const again = await keyed(next.url, GLOBEX, "GET", "/v1/connections/crm-7f3a/token")
  expect(again.json().access_token).toBe(globex.json().access_token)
})
