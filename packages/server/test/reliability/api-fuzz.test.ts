/** Fuzzing the connections API over a real socket (fast-check): random JSON bodies, names, paths, tags, query
 *  strings and headers. Every answer is below 500 (a 4xx is an application/problem+json), the process never
 *  crashes, and nothing a fuzzed caller wrote is served as a usable connection unless it validated.
 *  10,000 cases per target (TESSERA_LONG=1: 10x). */
import * as fc from "fast-check"
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../../src/index.ts"
import { capture, leaks, parseConfig, raw, sandbox, start } from "../services/harness.ts"

const KEY = "fuzz-admin-key-5c2e8a1f9b3d"
const TENANT = "fuzz-tenant-key-7d4b1e9c3a6f"
const runs = (n: number) => (process.env["TESSERA_LONG"] ? n * 10 : n)
const counts: Record<string, number> = {}

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  const text = [
    "connections:",
    "  fixed:",
    "    provider: dvinci",
    "    inputs:",
    ...Object.entries(sb.credentials.dvinci).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    "server:",
    "  api_keys:",
    `    - { name: admin, key: "${KEY}", scopes: [token, proxy, "connections:read", "connections:write"] }`,
    `    - { name: tenant, key: "${TENANT}", tags: { tenant: a }, scopes: ["connections:read", "connections:write"] }`
  ].join("\n")
  s = await start(await parseConfig(text), captured, { connections: "memory" })
})
afterAll(async () => {
  console.log(`api fuzz cases run: ${JSON.stringify(counts)}`)
  await s?.close()
  await sb?.close()
})

const json = fc.jsonValue({ maxDepth: 4 })
const tagMap = fc.dictionary(fc.string({ maxLength: 70 }), fc.oneof(fc.string({ maxLength: 300 }), json), {
  maxKeys: 40
})
const providerIds = fc.constantFrom("dvinci", "cube", "oauth2", "brandbox", "crm-com", "usage-engine", "nope", "")
const inputs = fc.dictionary(
  fc.oneof(fc.constantFrom("base_url", "client_id", "client_secret", "token_url", "__proto__", "tenant"), fc.string()),
  fc.oneof(
    fc.string(),
    fc.webUrl(),
    fc.constantFrom("http://remote.example", "https://x", "${env:HOME}", "${file:/etc/passwd}"),
    json
  ),
  { maxKeys: 8 }
)
const body = fc.oneof(
  json,
  fc.record(
    { provider: fc.oneof(providerIds, json), inputs: fc.oneof(inputs, json), tags: fc.oneof(tagMap, json) },
    { requiredKeys: [] }
  ),
  fc.record({ provider: providerIds, inputs, tags: tagMap, allow_insecure_http: fc.oneof(fc.boolean(), json) })
)
const segment = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_.-]{1,20}$/),
  fc.string({ maxLength: 40 }).map((x) => encodeURIComponent(x)),
  fc.constantFrom("..", "%2e%2e", "%00", "fixed", "a".repeat(200), "%ZZ", "~", "")
)
const header = fc.oneof(
  fc.constant({}),
  fc.record(
    {
      "content-type": fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8", ""),
      "x-request-id": fc.string({ maxLength: 200 }).map((x) => x.replace(/[^\t\x20-\x7e]/g, "")),
      accept: fc.string({ maxLength: 50 }).map((x) => x.replace(/[^\t\x20-\x7e]/g, ""))
    },
    { requiredKeys: [] }
  )
)

const ok = (status: number, contentType: unknown) => {
  expect(status).toBeGreaterThanOrEqual(200)
  expect(status).toBeLessThan(500)
  if (status >= 400) expect(String(contentType)).toMatch(/^application\/problem\+json/)
}

describe("connections API fuzz", { timeout: 600_000 }, () => {
  it("PUT /v1/connections/:name with random names, bodies and headers: only 2xx/4xx", async () => {
    const n = runs(10_000)
    await fc.assert(
      fc.asyncProperty(segment, body, header, fc.boolean(), async (name, b, h, tenant) => {
        const text = JSON.stringify(b) ?? "null"
        const r = await raw(s.url, `/v1/connections/${name}`, {
          method: "PUT",
          headers: { "content-type": "application/json", ...h, authorization: `Bearer ${tenant ? TENANT : KEY}` },
          body: text
        })
        ok(r.status, r.headers["content-type"])
        if (r.status === 200 || r.status === 201) {
          // Stored: then it validated, and it shows no secret value.
          expect(r.json().inputs["client_secret"] ?? "***").toBe("***")
        }
      }),
      { numRuns: n }
    )
    counts["put"] = n
  })

  it("GET, DELETE and list with random paths, tags and query strings: only 2xx/4xx", async () => {
    const n = runs(10_000)
    const query = fc.array(
      fc.tuple(
        fc.constantFrom("tag", "limit", "cursor", "x", "tag"),
        fc.oneof(fc.string({ maxLength: 40 }), fc.integer().map(String), fc.constantFrom("tenant:a", "0", "1001"))
      ),
      { maxLength: 5 }
    )
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("GET", "DELETE", "POST", "PATCH", "HEAD", "OPTIONS"),
        fc.array(segment, { minLength: 0, maxLength: 4 }),
        query,
        fc.boolean(),
        async (method, segments, q, tenant) => {
          const qs = q.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")
          const path = `/v1/connections${segments.length ? `/${segments.join("/")}` : ""}${qs ? `?${qs}` : ""}`
          const r = await raw(s.url, path, { method, headers: { authorization: `Bearer ${tenant ? TENANT : KEY}` } })
          ok(r.status, r.headers["content-type"])
        }
      ),
      { numRuns: n }
    )
    counts["paths"] = n
  })

  it("afterwards the server answers, its config connection is intact, and nothing leaked", async () => {
    expect((await raw(s.url, "/healthz")).status).toBe(200)
    const t = await raw(s.url, "/v1/connections/fixed/token", { headers: { authorization: `Bearer ${KEY}` } })
    expect(t.status).toBe(200)
    captured.tokens.add(t.json().access_token)
    const metrics = await raw(s.url, "/metrics", { headers: { "x-tessera-key": KEY } })
    expect(metrics.status).toBe(200)
    expect(leaks(sb, captured, metrics.text)).toEqual([])
  })
})
