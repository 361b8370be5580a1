/** Another tenant's connection costs a tenant's key what a name that does not exist costs: the connection store's
 *  read. A connection this instance holds (resolved already) was answered from memory, so its 404 came at once
 *  while a free name's waited for the store: with a store some milliseconds away, the time of a 404 told a taken
 *  name from a free one. And while the store is down a free name is a 503, so another tenant's connection is too,
 *  not a 404 that only a taken name gets. The store here is the memory store behind a delay, as a database across
 *  a network is, and one the test can take down. */
import { ConnectionStore } from "@tessera/engine"
import type { Sandbox } from "@tessera/testkit"
import { Effect } from "effect"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, parseConfig, raw, sandbox, start, type Reply } from "./services/harness.ts"

const ADMIN = "store-read-admin-key-1c7e4a9d2f6b"
const ACME = "store-read-acme-key-8d2b6f1a9c4e"
const DELAY_MS = 120

let sb: Sandbox
let s: RunningServer
const captured = capture()
const base = ConnectionStore.makeMemory()
const state = { down: false }
const store: ConnectionStore.ConnectionStoreShape = {
  ...base,
  get: (name) =>
    state.down
      ? Effect.fail(
          new ConnectionStore.ConnectionStoreError({
            store: "memory",
            operation: "get",
            reason: "the database is away"
          })
        )
      : Effect.delay(base.get(name), `${DELAY_MS} millis`)
}

beforeAll(async () => {
  sb = await sandbox()
  const text = [
    "server:",
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: [token, proxy, "connections:read"] }`,
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: store })
  const put = await keyed(s.url, ADMIN, "PUT", "/v1/connections/globex-4e1a", {
    provider: "dvinci",
    inputs: sb.credentials.dvinci,
    tags: { tenant: "globex" }
  })
  expect(put.status).toBe(201)
  // Globex uses it: this instance now holds it resolved.
  expect((await keyed(s.url, ADMIN, "GET", "/v1/connections/globex-4e1a/token")).status).toBe(200)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const timed = async (path: string): Promise<{ ms: number; r: Reply }> => {
  const t0 = performance.now()
  const r = path.startsWith("/v1/proxy/")
    ? await raw(s.url, path, { headers: { "x-tessera-key": ACME } }, captured)
    : await keyed(s.url, ACME, "GET", path)
  return { ms: performance.now() - t0, r }
}

it("another tenant's connection, held here, waits for the store as a free name does", async () => {
  for (const route of ["/v1/connections/:n/token", "/v1/connections/:n", "/v1/proxy/:n/x"]) {
    const other = await timed(route.replace(":n", "globex-4e1a"))
    const free = await timed(route.replace(":n", "free-9c2d"))
    expect(other.r.status, route).toBe(404)
    expect(free.r.status, route).toBe(404)
    expect(free.ms, route).toBeGreaterThanOrEqual(DELAY_MS * 0.9)
    expect(other.ms, route).toBeGreaterThanOrEqual(DELAY_MS * 0.9)
  }
})

it("while the store is down, another tenant's connection is the 503 a free name is", async () => {
  state.down = true
  try {
    const other = await timed("/v1/connections/globex-4e1a/token")
    const free = await timed("/v1/connections/free-9c2d/token")
    expect(free.r.status).toBe(503)
    expect(other.r.status).toBe(503)
    expect(other.r.json().code).toBe(free.r.json().code)
  } finally {
    state.down = false
  }
  // The admin's key, which sees it, is still answered from memory.
  expect((await keyed(s.url, ADMIN, "GET", "/v1/connections/globex-4e1a/token")).status).toBe(200)
})
