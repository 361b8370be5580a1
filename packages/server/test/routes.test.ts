/** The token, catalog and operations routes on a real server (127.0.0.1:0) against the sandbox: every route,
 *  every auth rule, every error status, request ids, the access log, /openapi.json, /metrics and a secret scan. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { Problem } from "../src/index.ts"
import {
  JOBS_KEY,
  OPS_KEY,
  capture,
  configText,
  controllableStore,
  leaks,
  parseConfig,
  raw,
  sample,
  sandbox,
  start,
  type Reply
} from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()
const control = controllableStore()
const ops = { authorization: `Bearer ${OPS_KEY}` }

beforeAll(async () => {
  sb = await sandbox()
  s = await start(await parseConfig(configText(sb)), captured, { store: control.store })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const get = (path: string, headers: Record<string, string> = ops, method = "GET"): Promise<Reply> =>
  raw(s.url, path, { method, headers }, captured)
const token = async (path: string, headers: Record<string, string> = ops, method = "GET") => {
  const r = await get(path, headers, method)
  if (r.status === 200) captured.tokens.add(r.json().access_token)
  return r
}
const expectProblem = (r: Reply, status: number, code: string) => {
  expect(r.status).toBe(status)
  expect(r.headers["content-type"]).toBe("application/problem+json")
  const p = r.json()
  expect(p).toMatchObject({
    status,
    code,
    type: Problem.typeUri(code as Problem.Code),
    request_id: r.headers["x-request-id"]
  })
  expect(typeof p.title).toBe("string")
  expect(typeof p.detail).toBe("string")
  return p
}

describe("token routes", () => {
  it("GET /v1/connections/:name/token answers exactly the token JSON, from cache the second time", async () => {
    const before = sb.tokenRequests("cube").length
    const a = await token("/v1/connections/cube/token")
    expect(a.status).toBe(200)
    expect(a.headers["cache-control"]).toBe("no-store")
    const body = a.json()
    expect(Object.keys(body).sort()).toEqual([
      "access_token",
      "connection",
      "expires_at",
      "expiry_source",
      "provider",
      "token_type"
    ])
    expect(body).toMatchObject({ connection: "cube", provider: "cube", token_type: "Bearer" })
    expect(body.access_token).toMatch(/^ey/)
    expect(new Date(body.expires_at).getTime()).toBeGreaterThan(Date.now())
    const b = await token("/v1/connections/cube/token")
    expect(b.json().access_token).toBe(body.access_token)
    expect(sb.tokenRequests("cube").length).toBe(before + 1)
  })

  it("POST /v1/connections/:name/refresh forces a new token", async () => {
    const old = (await token("/v1/connections/cube/token")).json().access_token
    const before = sb.tokenRequests("cube").length
    const r = await token("/v1/connections/cube/refresh", ops, "POST")
    expect(r.status).toBe(200)
    expect(r.json()).toMatchObject({ connection: "cube", provider: "cube" })
    expect(r.json().access_token).not.toBe(old)
    expect(sb.tokenRequests("cube").length).toBe(before + 1)
  })

  it("DELETE /v1/connections/:name/token invalidates: 204, and the next GET fetches a new token", async () => {
    const old = (await token("/v1/connections/cube/token")).json().access_token
    const d = await get("/v1/connections/cube/token", ops, "DELETE")
    expect(d.status).toBe(204)
    expect(d.text).toBe("")
    const before = sb.tokenRequests("cube").length
    const r = await token("/v1/connections/cube/token")
    expect(r.json().access_token).not.toBe(old)
    expect(sb.tokenRequests("cube").length).toBe(before + 1)
  })

  it("a refresh flow is used when the connection has a refresh token", async () => {
    await token("/v1/connections/oauth-pw/token")
    const r = await token("/v1/connections/oauth-pw/refresh", ops, "POST")
    expect(r.status).toBe(200)
    expect(sb.tokenRequests("oauth2").at(-1)?.form?.["grant_type"]).toBe("refresh_token")
  })
})

describe("callers that hang up", () => {
  it("a caller leaving during a renewal does not wedge the connection for the next ones", async () => {
    expect((await get("/v1/connections/cube/token", ops, "DELETE")).status).toBe(204)
    sb.inject("cube", { type: "delay", ms: 400 })
    const u = new URL(s.url)
    const gone = http.get({
      host: u.hostname,
      port: u.port,
      path: "/v1/connections/cube/token",
      headers: ops,
      agent: false
    })
    gone.on("error", () => {})
    await new Promise((r) => setTimeout(r, 100))
    gone.destroy()
    const t0 = performance.now()
    const next = await token("/v1/connections/cube/token")
    expect(next.status).toBe(200)
    expect(performance.now() - t0).toBeLessThan(2000)
  })
})

describe("API keys", () => {
  it("no key: 401 with WWW-Authenticate and a hint where to put it", async () => {
    const p = expectProblem(await get("/v1/connections/cube/token", {}), 401, "Unauthorized")
    expect(p.detail).toMatch(/Authorization: Bearer/)
    expect((await get("/v1/connections/cube/token", {})).headers["www-authenticate"]).toBe(`Bearer realm="tessera"`)
  })

  it("a wrong key: 401", async () => {
    const p = expectProblem(
      await get("/v1/connections/cube/token", { authorization: "Bearer not-a-key" }),
      401,
      "Unauthorized"
    )
    expect(p.detail).toBe("the API key is not valid")
    expectProblem(await get("/v1/connections/cube/token", { authorization: `Bearer ${OPS_KEY}x` }), 401, "Unauthorized")
    expectProblem(await get("/v1/connections/cube/token", { authorization: `Basic ${OPS_KEY}` }), 401, "Unauthorized")
  })

  it("a key whose allowlist lacks the connection: 403, also for unknown names (no existence oracle)", async () => {
    const p = expectProblem(
      await get("/v1/connections/cube/token", { authorization: `Bearer ${JOBS_KEY}` }),
      403,
      "Forbidden"
    )
    expect(p).toMatchObject({ connection: "cube" })
    expect(p.detail).toContain(`"jobs-only"`)
    expectProblem(await get("/v1/connections/nope/token", { authorization: `Bearer ${JOBS_KEY}` }), 403, "Forbidden")
    expectProblem(await get("/v1/connections/cube/refresh", { "x-tessera-key": JOBS_KEY }, "POST"), 403, "Forbidden")
    expectProblem(await get("/v1/connections/cube/token", { "x-tessera-key": JOBS_KEY }, "DELETE"), 403, "Forbidden")
  })

  it("good keys: Bearer (any case of the scheme) or X-Tessera-Key, within their allowlist", async () => {
    expect((await token("/v1/connections/jobs/token", { authorization: `Bearer ${JOBS_KEY}` })).status).toBe(200)
    expect((await token("/v1/connections/jobs/token", { authorization: `bearer ${JOBS_KEY}` })).status).toBe(200)
    expect((await token("/v1/connections/cube/token", { "x-tessera-key": OPS_KEY })).status).toBe(200)
  })

  it("listing routes need a key; so do readiness and the OpenAPI document (any valid key) and metrics (a key that sees every connection); liveness does not", async () => {
    expectProblem(await get("/v1/connections", {}), 401, "Unauthorized")
    expectProblem(await get("/v1/providers", { authorization: "Bearer nope" }), 401, "Unauthorized")
    for (const p of ["/readyz", "/metrics", "/openapi.json"]) {
      const p401 = expectProblem(await get(p, {}), 401, "Unauthorized")
      expect(p401.detail).toMatch(/Authorization: Bearer/)
      expectProblem(await get(p, { authorization: "Bearer nope" }), 401, "Unauthorized")
      // A key limited to other connections still may read the two that name no connection; metrics show them all.
      if (p === "/metrics") expectProblem(await get(p, { authorization: `Bearer ${JOBS_KEY}` }), 403, "Forbidden")
      else expect((await get(p, { authorization: `Bearer ${JOBS_KEY}` })).status).toBe(200)
      expect((await get(p, { "x-tessera-key": OPS_KEY })).status).toBe(200)
    }
    expect((await get("/healthz", {})).status).toBe(200)
  })
})

describe("catalog routes", () => {
  it("GET /v1/connections lists config connections with their inputs, secrets as ***", async () => {
    const r = await get("/v1/connections")
    expect(r.status).toBe(200)
    const body = r.json() as { items: Array<Record<string, unknown>>; next_cursor: string | null }
    expect(body.next_cursor).toBeNull()
    expect(body.items.map((c) => c["name"])).toEqual(["bad-secret", "broken", "crm", "cube", "jobs", "oauth-pw"])
    expect(body.items.find((c) => c["name"] === "jobs")).toEqual({
      name: "jobs",
      provider: "dvinci",
      tags: {},
      source: "config",
      status: "ok",
      created_at: null,
      updated_at: null,
      inputs: {
        base_url: sb.base("dvinci"),
        client_id: sb.credentials.dvinci["client_id"],
        client_secret: "***",
        token_url: `${sb.base("dvinci")}/plt/oauth2/token`
      }
    })
    expect(body.items.find((c) => c["name"] === "broken")).toMatchObject({ status: "misconfigured", inputs: {} })
    for (const v of ["dvinci-api-token", "cube-demo-secret", "EE73C0AE64524371B5DDEFF5F7BB2192", "alice-password"])
      expect(r.text).not.toContain(v)
  })

  it("GET /v1/connections shows a restricted key only its connections", async () => {
    const r = await get("/v1/connections", { authorization: `Bearer ${JOBS_KEY}` })
    expect(r.json().items.map((c: { name: string }) => c.name)).toEqual(["jobs"])
  })

  it("GET /v1/providers lists every manifest with input flags and no values", async () => {
    const r = await get("/v1/providers")
    expect(r.status).toBe(200)
    const providers = r.json().providers as Array<{
      id: string
      name: string
      docs: string | null
      proxy: boolean
      inputs: Array<Record<string, unknown>>
    }>
    expect(providers.map((p) => p.id)).toEqual([
      "api-key",
      "basic",
      "brandbox",
      "crm-com",
      "cube",
      "dvinci",
      "github-app",
      "google-service-account",
      "oauth2",
      "salesforce-jwt",
      "usage-engine"
    ])
    const cube = providers.find((p) => p.id === "cube")!
    expect(cube).toMatchObject({ name: expect.any(String), docs: expect.stringMatching(/^https:/), proxy: false })
    expect(cube.inputs.find((i) => i["name"] === "client_secret")).toMatchObject({ required: true, secret: true })
    expect(cube.inputs.find((i) => i["name"] === "client_id")).toMatchObject({ required: true, secret: false })
    expect(providers.find((p) => p.id === "dvinci")?.proxy).toBe(true)
    for (const p of providers)
      for (const i of p.inputs)
        expect(
          Object.keys(i).filter((k) => !["name", "type", "required", "secret", "title", "description"].includes(k))
        ).toEqual([])
  })
})

describe("errors as problem+json", () => {
  it("unknown connection: 404 UnknownConnection, without listing the configured ones", async () => {
    const p = expectProblem(await get("/v1/connections/nope/token"), 404, "UnknownConnection")
    expect(p).toMatchObject({ connection: "nope", instance: "/v1/connections/nope/token" })
    expect(p.detail).not.toContain("cube")
  })

  it("misconfigured connection: 500 InputInvalid; the details go to the server log only", async () => {
    const r = await get("/v1/connections/broken/token")
    const p = expectProblem(r, 500, "InputInvalid")
    expect(p).toMatchObject({ connection: "broken", provider: "cube" })
    expect(p.detail).not.toContain("client_secret")
    const logged = captured.logs.find((l) => l.includes(`"type":"error"`) && l.includes(p.request_id))
    expect(logged).toMatch(/missing required input/)
  })

  it("credentials refused by the provider: 502 UpstreamRejected with the provider's status, code and message", async () => {
    const p = expectProblem(await get("/v1/connections/bad-secret/token"), 502, "UpstreamRejected")
    expect(p).toMatchObject({
      connection: "bad-secret",
      provider: "cube",
      upstream_status: 400,
      upstream_code: "invalid_client"
    })
    expect(p.provider_message).toMatch(/invalid client secret/)
    expect(p.detail).toContain(p.provider_message)
  })

  it("provider unreachable mid-exchange: 502 TransportError", async () => {
    sb.inject("crm-com", { type: "reset" })
    expectProblem(await get("/v1/connections/crm/token"), 502, "TransportError")
  })

  it("provider answers garbage: 502 ResponseInvalid", async () => {
    sb.inject("crm-com", { type: "html200" })
    expectProblem(await get("/v1/connections/crm/token"), 502, "ResponseInvalid")
  })

  it("provider too slow: 504 UpstreamTimeout", async () => {
    sb.inject("crm-com", { type: "delay", ms: 2500 })
    const p = expectProblem(await get("/v1/connections/crm/token"), 504, "UpstreamTimeout")
    expect(p.detail).toMatch(/within \d+ ms/)
  })

  it("token store failing: 503 StoreError, the store's reason only in the log", async () => {
    control.state.failing = true
    try {
      const p = expectProblem(await get("/v1/connections/crm/token"), 503, "StoreError")
      expect(p.detail).not.toContain("disk on fire")
      expect(captured.logs.find((l) => l.includes(p.request_id) && l.includes(`"type":"error"`))).toContain(
        "disk on fire"
      )
    } finally {
      control.state.failing = false
    }
    expect((await token("/v1/connections/crm/token")).status).toBe(200)
  })

  it("unknown route: 404 RouteNotFound; wrong method on a known path: 405 with Allow", async () => {
    const p = expectProblem(await get("/v2/whatever?x=1", {}), 404, "RouteNotFound")
    expect(p.instance).toBe("/v2/whatever")
    const r = await get("/v1/connections/cube/token", ops, "PUT")
    expectProblem(r, 405, "MethodNotAllowed")
    expect(r.headers["allow"]).toBe("GET, DELETE")
  })

  it("every engine error code has a status in the one table", () => {
    for (const code of [
      "UnknownConnection",
      "InputInvalid",
      "TransportError",
      "UpstreamRejected",
      "ResponseInvalid",
      "UpstreamTimeout",
      "StoreError"
    ] as const) {
      expect(Problem.status[code]).toBeGreaterThanOrEqual(400)
    }
    expect(Problem.status).toMatchObject({
      UnknownConnection: 404,
      InputInvalid: 500,
      UpstreamRejected: 502,
      UpstreamTimeout: 504,
      StoreError: 503,
      PayloadTooLarge: 413
    })
  })
})

describe("request ids and the access log", () => {
  it("echoes a sane X-Request-Id and replaces an unsafe one", async () => {
    expect((await get("/healthz", { "x-request-id": "abc-123.X_y" })).headers["x-request-id"]).toBe("abc-123.X_y")
    const fresh = new Set<unknown>()
    for (const bad of ["has space", "x".repeat(129), 'a"b', "<script>"]) {
      const id = (await get("/healthz", { "x-request-id": bad })).headers["x-request-id"]
      // A new id: this process's random prefix and a sequence number, never the caller's text.
      expect(id).toMatch(/^[A-Za-z0-9_-]{16}\.[0-9a-z]+$/)
      fresh.add(id)
    }
    expect(fresh.size).toBe(4)
    const p = (await get("/v1/connections/nope/token", { ...ops, "x-request-id": "trace-42" })).json()
    expect(p.request_id).toBe("trace-42")
  })

  it("writes one JSON line per request: method, path without query, status, duration, id, route, connection, key name", async () => {
    await get("/v1/connections/cube/token?secret_query=hunter2", { ...ops, "x-request-id": "log-check-1" })
    const lines = captured.logs.filter((l) => l.includes(`"request_id":"log-check-1"`))
    expect(lines).toHaveLength(1)
    const entry = JSON.parse(lines[0]!)
    expect(entry).toMatchObject({
      type: "access",
      method: "GET",
      path: "/v1/connections/cube/token",
      status: 200,
      route: "/v1/connections/:name/token",
      connection: "cube",
      key: "ops"
    })
    expect(typeof entry.duration_ms).toBe("number")
    expect(lines[0]).not.toContain("hunter2")
  })
})

describe("operations routes", () => {
  it("GET /healthz: 200 ok", async () => {
    const r = await get("/healthz", {})
    expect(r.status).toBe(200)
    expect(r.json()).toEqual({ status: "ok" })
  })

  it("GET /readyz follows the store's health: ok 200, degraded 200, down 503", async () => {
    expect((await get("/readyz")).json()).toMatchObject({ status: "ok" })
    control.state.health = { status: "degraded", detail: "redis unreachable; local fallback" }
    const d = await get("/readyz")
    expect(d.status).toBe(200)
    expect(d.json()).toEqual({
      status: "degraded",
      store: { status: "degraded", detail: "redis unreachable; local fallback" }
    })
    control.state.health = { status: "down", detail: "redis unreachable" }
    const down = await get("/readyz")
    expect(down.status).toBe(503)
    expect(down.json().status).toBe("down")
    control.state.health = { status: "ok", detail: "memory" }
    expect((await get("/readyz")).status).toBe(200)
  })

  it("the token route's JSON is what the OpenAPI Token schema says: every field, expires_at always a date", async () => {
    const schema = (await get("/openapi.json")).json().components.schemas.Token
    const body = (await token("/v1/connections/cube/token")).json()
    expect(Object.keys(body).sort()).toEqual(Object.keys(schema.properties).sort())
    expect([...schema.required].sort()).toEqual(Object.keys(body).sort())
    expect(schema.properties.expiry_source.enum).toContain(body.expiry_source)
    expect(schema.properties.expires_at.type).toBe("string")
    expect(new Date(body.expires_at).toISOString()).toBe(body.expires_at)
  })

  it("GET /openapi.json is OpenAPI 3.1 and lists every route, each of which the router serves", async () => {
    const doc = (await get("/openapi.json")).json()
    expect(doc.openapi).toBe("3.1.0")
    const expected: Array<[string, string]> = [
      ["get", "/v1/connections/{name}/token"],
      ["post", "/v1/connections/{name}/refresh"],
      ["delete", "/v1/connections/{name}/token"],
      ["get", "/v1/connections"],
      ["get", "/v1/providers"],
      ["get", "/openapi.json"],
      ["get", "/healthz"],
      ["get", "/readyz"],
      ["get", "/metrics"],
      ...["get", "post", "put", "patch", "delete"].map((m): [string, string] => [m, "/v1/proxy/{name}/{path}"])
    ]
    for (const [m, p] of expected) expect(doc.paths[p]?.[m], `${m} ${p}`).toBeDefined()
    expect(doc.paths["/v1/proxy/{name}/{path}"].get.security).toEqual([{ tesseraKey: [] }])
    expect(doc.paths["/v1/connections/{name}/token"].get.responses["200"].content["application/json"].schema.$ref).toBe(
      "#/components/schemas/Token"
    )
    expect(doc.paths["/healthz"].get.security).toEqual([])
    for (const p of ["/metrics", "/readyz", "/openapi.json"]) {
      expect(doc.paths[p].get.security, p).toEqual([{ bearerKey: [] }, { tesseraKey: [] }])
      expect(doc.paths[p].get.responses["401"], p).toBeDefined()
    }
    // Every route documents the request guard's refusals.
    expect(doc.paths["/healthz"].get.responses["403"].description).toMatch(/HostNotAllowed.*CrossSiteRequest/)
    expect(doc.paths["/v1/connections/{name}/token"].get.responses["403"].description).toMatch(
      /Forbidden.*HostNotAllowed/
    )
    expect(doc.components.schemas.Problem.properties.code.enum).toEqual(
      expect.arrayContaining(["HostNotAllowed", "CrossSiteRequest"])
    )
    // Everything the document lists is served (no 404/405 from the router).
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      for (const m of Object.keys(ops)) {
        const r = await get(path.replace("{name}", "cube").replace("{path}", "x"), {}, m.toUpperCase())
        expect(
          [404, 405].includes(r.status) && ["RouteNotFound", "MethodNotAllowed"].includes(r.json().code),
          `${m} ${path}`
        ).toBe(false)
      }
    }
  })

  it("GET /metrics: counters move with requests and engine events", async () => {
    const m0 = (await get("/metrics")).text
    expect((await get("/metrics")).headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8")
    await token("/v1/connections/jobs/token")
    await token("/v1/connections/jobs/token")
    await token("/v1/connections/jobs/refresh", ops, "POST")
    await token("/v1/connections/oauth-pw/refresh", ops, "POST")
    await get("/v1/connections/bad-secret/token")
    await get("/nope", {})
    const m1 = (await get("/metrics")).text
    const delta = (name: string, labels: string) => sample(m1, name, labels) - sample(m0, name, labels)
    expect(
      delta("tessera_http_requests_total", `{method="GET",route="/v1/connections/:name/token",status="200"}`)
    ).toBe(2)
    expect(
      delta("tessera_http_requests_total", `{method="POST",route="/v1/connections/:name/refresh",status="200"}`)
    ).toBe(2)
    expect(
      delta("tessera_http_requests_total", `{method="GET",route="/v1/connections/:name/token",status="502"}`)
    ).toBe(1)
    expect(delta("tessera_http_requests_total", `{method="GET",route="unmatched",status="404"}`)).toBe(1)
    expect(delta("tessera_token_cache_hits_total", `{provider="dvinci"}`)).toBeGreaterThanOrEqual(1)
    expect(delta("tessera_token_acquisitions_total", `{provider="dvinci"}`)).toBeGreaterThanOrEqual(1)
    expect(delta("tessera_token_refreshes_total", `{provider="oauth2"}`)).toBe(1)
    expect(delta("tessera_token_failures_total", `{provider="cube",code="UpstreamRejected"}`)).toBe(1)
    expect(
      delta("tessera_http_request_duration_seconds_count", `{method="GET",route="/v1/connections/:name/token"}`)
    ).toBe(3)
    expect(
      sample(m1, "tessera_token_upstream_duration_seconds_count", `{provider="dvinci",flow="acquire"}`)
    ).toBeGreaterThanOrEqual(1)
    expect(m1).toMatch(
      /^tessera_http_request_duration_seconds_bucket\{method="GET",route="\/healthz",le="\+Inf"\} \d+$/m
    )
    expect(m1).toContain("# TYPE tessera_http_request_duration_seconds histogram")
  })
})

describe("server.public_routes", () => {
  it("opens the listed operations routes to callers without a key, and only those; OpenAPI shows it", async () => {
    const paths = { metrics: "/metrics", readyz: "/readyz", openapi: "/openapi.json" } as const
    for (const listed of [["metrics"], ["readyz", "openapi"]] as const) {
      const config = await parseConfig(
        configText(sb, { connections: ["jobs"], server: [`public_routes: [${listed.join(", ")}]`] })
      )
      const open = await start(config, captured)
      try {
        const anonymous = (path: string) => raw(open.url, path, {}, captured)
        const doc = (await raw(open.url, "/openapi.json", { headers: ops })).json()
        for (const [name, path] of Object.entries(paths)) {
          const isListed = (listed as ReadonlyArray<string>).includes(name)
          if (isListed) expect((await anonymous(path)).status, path).toBe(200)
          else expectProblem(await anonymous(path), 401, "Unauthorized")
          expect(doc.paths[path].get.security, path).toEqual(isListed ? [] : [{ bearerKey: [] }, { tesseraKey: [] }])
          expect(doc.paths[path].get.responses["401"] === undefined, path).toBe(isListed)
        }
        expect((await anonymous("/healthz")).status).toBe(200)
        expectProblem(await anonymous("/v1/connections"), 401, "Unauthorized")
        // An open route is open to every caller: a key limited to some connections reads open metrics too.
        const limited = await raw(open.url, "/metrics", { headers: { authorization: `Bearer ${JOBS_KEY}` } }, captured)
        expect(limited.status).toBe((listed as ReadonlyArray<string>).includes("metrics") ? 200 : 403)
      } finally {
        await open.close()
      }
    }
  })

  it("an unknown name is a located config error", async () => {
    await expect(
      parseConfig(configText(sb, { connections: ["jobs"], server: ["public_routes: [metrics, tokens]"] }))
    ).rejects.toThrow(/tessera\.yaml:\d+:\d+: error: server\.public_routes\[1\]/)
  })
})

describe("secrets", () => {
  it("no client secret, password, API key or issued token appears in logs, problem bodies or /metrics", async () => {
    const metrics = (await get("/metrics")).text
    expect(captured.tokens.size).toBeGreaterThan(3)
    expect(captured.problems.length).toBeGreaterThan(10)
    expect(captured.logs.length).toBeGreaterThan(30)
    expect(leaks(sb, captured, metrics)).toEqual([])
  })
})
