/** The fault matrix against the sandbox, over real sockets: for each fault the typed error or the right recovery,
 *  retries only where they can help, and no expired or invalid token ever returned. Retry timing (backoff,
 *  Retry-After, the overall limit) is in upstream.test.ts, under TestClock. */
import { Redacted } from "effect"
import { createServer } from "node:net"
import { afterEach, describe, expect, it } from "vitest"
import * as TokenResponse from "../src/token-response.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })

describe("transient failures are retried with backoff", () => {
  it("503 once, then success: two requests, one token", async () => {
    h = await makeHarness()
    h.sb.inject("cube", { type: "status", status: 503 })
    const r = await h.run(h.engine.getToken("cube"))
    expect(r.decision.action).toBe("acquired")
    expect(h.sb.tokenRequests("cube").map((q) => q.status)).toEqual([503, 200])
  })

  it("persistent 502 gives up after the configured retries with UpstreamRejected(transient)", async () => {
    h = await makeHarness({ http: { retries: 2 } })
    h.sb.inject("cube", { type: "status", status: 502 }, 10)
    const e = await h.fail(h.engine.getToken("cube"))
    expect(e).toMatchObject({ _tag: "UpstreamRejected", status: 502, kind: "transient", attempts: 3 })
    expect(h.sb.tokenRequests("cube")).toHaveLength(3)
  })

  it("connection reset is retried", async () => {
    h = await makeHarness()
    h.sb.inject("dvinci", { type: "reset" })
    await h.run(h.engine.getToken("dvinci"))
    expect(h.sb.tokenRequests("dvinci")).toHaveLength(2)
  })

  it("reset mid-body is retried", async () => {
    h = await makeHarness()
    h.sb.inject("dvinci", { type: "resetMidBody" })
    const r = await h.run(h.engine.getToken("dvinci"))
    expect(Redacted.value(r.accessToken)).toMatch(/^ey/)
  })

  it("connection refused: TransportError naming the endpoint, after retries", async () => {
    const port = await freePort()
    h = await makeHarness({
      http: { retries: 1 },
      inputs: { cube: { token_url: `http://127.0.0.1:${port}/connect/token` } }
    })
    const e = await h.fail(h.engine.getToken("cube"))
    expect(e).toMatchObject({ _tag: "TransportError", attempts: 2 })
    expect(e.message).toContain(`127.0.0.1:${port}/connect/token`)
    expect(e.message).toContain("connection refused")
  })
})

describe("timeouts", () => {
  it("slow headers beyond the per-attempt timeout: UpstreamTimeout", async () => {
    h = await makeHarness({ http: { timeoutMs: 300, retries: 0 } })
    h.sb.inject("cube", { type: "delay", ms: 1500 })
    const e = await h.fail(h.engine.getToken("cube"))
    expect(e).toMatchObject({ _tag: "UpstreamTimeout", timeoutMs: 300 })
  })

  it("a slow body beyond the timeout: UpstreamTimeout", async () => {
    h = await makeHarness({ http: { timeoutMs: 300, retries: 0 } })
    h.sb.inject("cube", { type: "slowBody", ms: 1500 })
    const e = await h.fail(h.engine.getToken("cube"))
    expect(e._tag).toBe("UpstreamTimeout")
  })

  it("a slow attempt is retried and the next one succeeds", async () => {
    h = await makeHarness({ http: { timeoutMs: 300, retries: 2 } })
    h.sb.inject("cube", { type: "delay", ms: 1000 })
    await h.run(h.engine.getToken("cube"))
    expect(h.sb.tokenRequests("cube").length).toBeGreaterThanOrEqual(2)
  })
})

describe("credential rejections are never retried", () => {
  it("wrong client secret: one request, UpstreamRejected(reauthenticate) with the provider's message", async () => {
    h = await makeHarness({ inputs: { oauth2: { client_secret: "not-the-secret-123" } } })
    const e = await h.fail(h.engine.getToken("oauth2"))
    expect(e).toMatchObject({
      _tag: "UpstreamRejected",
      status: 401,
      code: "invalid_client",
      kind: "reauthenticate",
      attempts: 1
    })
    expect(h.sb.tokenRequests("oauth2")).toHaveLength(1)
    expect(e.message).toContain("oauth2")
    expect(e.message).toContain("401")
    expect(e.message).not.toContain("not-the-secret-123")
  })

  it("brandbox: code != 0 on HTTP 200 is a rejection carrying brandbox's message", async () => {
    h = await makeHarness()
    h.sb.inject("brandbox", { type: "envelopeError" })
    const e = await h.fail(h.engine.getToken("brandbox"))
    expect(e).toMatchObject({ _tag: "UpstreamRejected", status: 200, code: "5", providerMessage: "Tenant locked" })
    expect(h.sb.tokenRequests("brandbox")).toHaveLength(1)
  })

  it("crm-com: HTTP 200 whose status.code is not OK is a failure", async () => {
    h = await makeHarness({ inputs: { "crm-com": { authentication_code: "wrong-code-value" } } })
    const e = await h.fail(h.engine.getToken("crm-com"))
    expect(e).toMatchObject({ _tag: "UpstreamRejected", status: 200 })
    expect((e as { code?: string }).code).not.toBe("OK")
    expect(e.message).not.toContain("wrong-code-value")
  })
})

describe("unusable responses", () => {
  const cases = [
    ["an HTML error page with 200", { type: "html200" }, "content-type", /HTML page/],
    ["an empty body", { type: "empty" }, "body", /empty/],
    ["invalid JSON", { type: "invalidJson" }, "body", /not valid JSON/],
    [
      "a JSON token with a wrong content type",
      { type: "wrongContentType" },
      "content-type",
      /expected application\/json/
    ],
    ["a body over the size cap", { type: "huge", bytes: 200_000 }, "body", /larger than/],
    ["expires_in 0", { type: "expiresIn", value: 0 }, "expires_in", /already expired/],
    ["a negative expires_in", { type: "expiresIn", value: -5 }, "expires_in", /already expired/],
    ["a non-numeric expires_in", { type: "expiresIn", value: "1h" }, "expires_in", /expected a number/]
  ] as const
  for (const [name, fault, field, problem] of cases) {
    it(`${name}: ResponseInvalid(${field}), not retried, nothing cached`, async () => {
      h = await makeHarness()
      h.sb.inject("dvinci", fault)
      const e = await h.fail(h.engine.getToken("dvinci"))
      expect(e).toMatchObject({ _tag: "ResponseInvalid", field })
      expect((e as { problem: string }).problem).toMatch(problem)
      expect(h.sb.tokenRequests("dvinci")).toHaveLength(1)
      expect(await h.run(h.store.list())).toHaveLength(0)
    })
  }
})

describe("expiry sources", () => {
  it("expires_in as a digit string is accepted", async () => {
    h = await makeHarness()
    h.sb.inject("dvinci", { type: "expiresIn", value: "120" })
    const r = await h.run(h.engine.getToken("dvinci"))
    expect(Math.round((r.expiresAt!.getTime() - Date.now()) / 1000)).toBeGreaterThan(115)
    expect(Math.round((r.expiresAt!.getTime() - Date.now()) / 1000)).toBeLessThanOrEqual(120)
  })

  it("missing expires_in falls back to the JWT exp claim", async () => {
    h = await makeHarness()
    h.sb.inject("dvinci", { type: "expiresIn", value: undefined })
    const r = await h.run(h.engine.getToken("dvinci"))
    const exp = JSON.parse(Buffer.from(Redacted.value(r.accessToken).split(".")[1]!, "base64url").toString())
      .exp as number
    expect(r.expiresAt!.getTime()).toBe(exp * 1000)
  })

  for (const skewMin of [5, -5]) {
    it(`clock skew ${skewMin > 0 ? "+" : ""}${skewMin} min: a JWT exp on the server's clock is moved onto ours`, async () => {
      h = await makeHarness({ sandbox: { clockSkewMs: skewMin * 60_000 } })
      const r = await h.run(h.engine.getToken("crm-com"))
      const left = (r.expiresAt!.getTime() - Date.now()) / 1000
      // CRM.COM tokens live 2 h on the server's clock; corrected, about 2 h on ours too.
      expect(left).toBeGreaterThan(7200 - 5)
      expect(left).toBeLessThan(7200 + 5)
    })
  }

  it("a token already expired on arrival is refused, never returned", async () => {
    h = await makeHarness()
    const c = h.config.connections.get("crm-com")!
    const jwt = (claims: object) =>
      `${Buffer.from('{"alg":"HS256"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`
    const now = Date.now()
    const response = (token: string) => ({
      status: 200,
      receivedAt: now,
      headers: { "content-type": "application/json", date: new Date(now).toUTCString() },
      body: new TextEncoder().encode(JSON.stringify({ data: { token }, status: { code: "OK" } }))
    })
    const past = TokenResponse.decode(response(jwt({ exp: String(Math.floor(now / 1000) - 30) })), {
      connection: c,
      sentAt: now - 50,
      attempts: 1,
      secrets: []
    })
    expect(past._tag).toBe("Invalid")
    expect(past._tag === "Invalid" && past.error.problem).toMatch(/already expired/)
    const future = TokenResponse.decode(response(jwt({ exp: String(Math.floor(now / 1000) + 600) })), {
      connection: c,
      sentAt: now - 50,
      attempts: 1,
      secrets: []
    })
    expect(future._tag).toBe("Token")
  })
})
