import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { DEMO_VALUES, startSandbox, type Sandbox } from "../src/index.ts"
import { at, basic, bearer, claims, postForm, postJson, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

const dv = DEMO_VALUES.dvinci

function dvToken(): Promise<Response> {
  return postForm(sb.tokenUrl("dvinci"), {
    grant_type: "client_credentials",
    client_id: dv.client_id,
    client_secret: dv.client_secret
  })
}

function brandboxToken(): Promise<Response> {
  const b = DEMO_VALUES.brandbox
  return postForm(sb.tokenUrl("brandbox"), {
    grant_type: "password",
    client_id: b.client_id,
    client_secret: b.client_secret,
    username: b.username,
    password: b.password
  })
}

function crmToken(): Promise<Response> {
  const c = DEMO_VALUES["crm-com"]
  return postJson(
    sb.tokenUrl("crm-com"),
    { access_token_identifier: { authentication_code: c.authentication_code } },
    { authorization: basic(c.api_key, "") }
  )
}

describe("status faults", () => {
  it("answers the status with the provider's error shape, for `times` requests, then normally", async () => {
    sb.inject("dvinci", { type: "status", status: 503 }, 2)
    for (let i = 0; i < 2; i++) {
      const res = await dvToken()
      expect(res.status).toBe(503)
      expect(await readJson(res)).toEqual({
        error: "temporarily_unavailable",
        error_description: "Service Unavailable"
      })
    }
    expect((await dvToken()).status).toBe(200)
    expect(sb.tokenRequests("dvinci").map((r) => r.status)).toEqual([503, 503, 200])
  })

  it("uses a given body and headers verbatim", async () => {
    sb.inject("dvinci", {
      type: "status",
      status: 400,
      body: '{"error":"invalid_grant"}',
      headers: { "X-Trace": "t1" }
    })
    const res = await dvToken()
    expect(res.status).toBe(400)
    expect(res.headers.get("content-type")).toBe("application/json")
    expect(res.headers.get("x-trace")).toBe("t1")
    expect(await res.text()).toBe('{"error":"invalid_grant"}')
  })

  it("wraps the default body in brandbox's envelope", async () => {
    sb.inject("brandbox", { type: "status", status: 500 })
    const res = await brandboxToken()
    expect(res.status).toBe(500)
    expect(await readJson(res)).toEqual({
      code: 500,
      message: "Internal Server Error",
      error: "server_error",
      body: null
    })
  })

  it("rateLimit answers 429 with Retry-After", async () => {
    sb.inject("dvinci", { type: "rateLimit", retryAfterSeconds: 7 })
    const res = await dvToken()
    expect(res.status).toBe(429)
    expect(res.headers.get("retry-after")).toBe("7")
    expect(at(await readJson(res), "error")).toBe("too_many_requests")
  })

  it("keeps token faults and API faults, and providers, apart", async () => {
    sb.inject("cube", { type: "status", status: 500 })
    sb.injectApi("dvinci", { type: "status", status: 502 })
    const token = str(at(await readJson(await dvToken()), "access_token"))
    expect((await fetch(`${sb.base("dvinci")}/restApi/x`, { headers: bearer(token) })).status).toBe(502)
    expect((await fetch(`${sb.base("dvinci")}/restApi/x`, { headers: bearer(token) })).status).toBe(200)
  })

  it("rejects a non-positive times", () => {
    expect(() => sb.inject("dvinci", { type: "reset" }, 0)).toThrow(RangeError)
  })
})

describe("timing faults", () => {
  it("delay holds the whole answer back", async () => {
    sb.inject("dvinci", { type: "delay", ms: 250 })
    const started = performance.now()
    const res = await dvToken()
    expect(performance.now() - started).toBeGreaterThanOrEqual(240)
    expect(res.status).toBe(200)
    expect(at(await readJson(res), "token_type")).toBe("Bearer")
  })

  it("slowBody sends headers at once and the rest of the body later", async () => {
    sb.inject("dvinci", { type: "slowBody", ms: 300 })
    const started = performance.now()
    const res = await dvToken()
    const headersAt = performance.now() - started
    const text = await res.text()
    const bodyAt = performance.now() - started
    expect(headersAt).toBeLessThan(200)
    expect(bodyAt).toBeGreaterThanOrEqual(290)
    expect(at(JSON.parse(text) as unknown, "token_type")).toBe("Bearer")
  })
})

describe("connection faults", () => {
  it("reset destroys the socket without an answer", async () => {
    sb.inject("dvinci", { type: "reset" })
    await expect(dvToken()).rejects.toThrow()
    expect(sb.tokenRequests("dvinci")[0]?.status).toBe(0)
    expect((await dvToken()).status).toBe(200)
  })

  it("resetMidBody sends the headers, then cuts the body", async () => {
    sb.inject("dvinci", { type: "resetMidBody" })
    const res = await dvToken()
    expect(res.status).toBe(200)
    await expect(res.text()).rejects.toThrow()
  })
})

describe("body faults", () => {
  it("html200 answers a 200 HTML page", async () => {
    sb.inject("dvinci", { type: "html200" })
    const res = await dvToken()
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/html/)
    expect(await res.text()).toMatch(/^<!DOCTYPE html>/)
  })

  it("empty answers 200 application/json with no body", async () => {
    sb.inject("dvinci", { type: "empty" })
    const res = await dvToken()
    expect(res.headers.get("content-type")).toBe("application/json")
    expect(res.headers.get("content-length")).toBe("0")
    expect(await res.text()).toBe("")
  })

  it("invalidJson answers unparseable JSON", async () => {
    sb.inject("dvinci", { type: "invalidJson" })
    const res = await dvToken()
    expect(res.status).toBe(200)
    await expect(res.json()).rejects.toThrow(SyntaxError)
  })

  it("wrongContentType sends a real token body as text/plain", async () => {
    sb.inject("dvinci", { type: "wrongContentType" })
    const res = await dvToken()
    expect(res.status).toBe(200)
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/)
    const token = str(at(JSON.parse(await res.text()) as unknown, "access_token"))
    expect((await fetch(`${sb.base("dvinci")}/restApi/x`, { headers: bearer(token) })).status).toBe(200)
  })

  it("huge answers exactly that many bytes of JSON", async () => {
    sb.inject("dvinci", { type: "huge", bytes: 300_000 })
    const res = await dvToken()
    const bytes = Buffer.from(await res.arrayBuffer())
    expect(bytes.length).toBe(300_000)
    expect(at(JSON.parse(bytes.toString()) as unknown, "token_type")).toBe("Bearer")
    sb.inject("dvinci", { type: "huge", bytes: 5 })
    expect(await (await dvToken()).text()).toBe("10000")
  })
})

describe("envelopeError", () => {
  it("answers HTTP 200 with each provider's failure envelope", async () => {
    sb.inject("brandbox", { type: "envelopeError" })
    const bb = await brandboxToken()
    expect(bb.status).toBe(200)
    expect(await readJson(bb)).toEqual({ code: 5, message: "Tenant locked", body: null })

    sb.inject("crm-com", { type: "envelopeError" })
    const crm = await crmToken()
    expect(crm.status).toBe(200)
    const crmBody = await readJson(crm)
    expect(at(crmBody, "data")).toBeNull()
    expect(at(crmBody, "status.code")).not.toBe("OK")

    sb.inject("dvinci", { type: "envelopeError" })
    const oauth = await dvToken()
    expect(oauth.status).toBe(200)
    expect(at(await readJson(oauth), "error")).toBe("server_error")
  })
})

describe("expiresIn", () => {
  it.each([0, -5, "3600", null])("replaces expires_in with %j", async (value) => {
    sb.inject("dvinci", { type: "expiresIn", value })
    const body = await readJson(await dvToken())
    expect(at(body, "expires_in")).toEqual(value)
    expect(typeof at(body, "access_token")).toBe("string")
  })

  it("leaves expires_in out when the value is undefined, also inside brandbox's envelope", async () => {
    sb.inject("dvinci", { type: "expiresIn", value: undefined })
    expect(Object.keys((await readJson(await dvToken())) as object)).toEqual(["token_type", "access_token"])
    sb.inject("brandbox", { type: "expiresIn", value: 0 })
    expect(at(await readJson(await brandboxToken()), "body.expires_in")).toBe(0)
  })

  it("reshapes the exp claim for crm-com, which sends no expires_in", async () => {
    sb.inject("crm-com", { type: "expiresIn", value: 60 })
    const c = claims(str(at(await readJson(await crmToken()), "data.token")))
    expect(Number(c["exp"]) - Number(c["iat"])).toBe(60)
    sb.inject("crm-com", { type: "expiresIn", value: undefined })
    expect(Object.keys(claims(str(at(await readJson(await crmToken()), "data.token"))))).not.toContain("exp")
  })
})

describe("echo", () => {
  it("answers the provider's error shape with the whole request, Authorization and body included, as its message", async () => {
    const c = DEMO_VALUES["crm-com"]
    sb.inject("crm-com", { type: "echo" })
    const crm = await crmToken()
    expect(crm.status).toBe(400)
    const message = str(at(await readJson(crm), "status.message"))
    expect(message).toContain(
      `POST /crm-com/authentication/consumer_application_key/token\r\nbody: {"access_token_identifier":{"authentication_code":"${c.authentication_code}"}}\r\n`
    )
    expect(message).toContain(`\r\nauthorization: ${basic(c.api_key, "")}`)

    sb.inject("dvinci", { type: "echo", status: 401 })
    const dv = await dvToken()
    expect(dv.status).toBe(401)
    const body = await readJson(dv)
    expect(at(body, "error")).toBe("invalid_client")
    expect(str(at(body, "error_description"))).toContain(
      `client_secret=${encodeURIComponent(DEMO_VALUES.dvinci.client_secret)}`
    )
    sb.inject("brandbox", { type: "echo" })
    expect(str(at(await readJson(await brandboxToken()), "message"))).toContain(
      `password=${DEMO_VALUES.brandbox.password}`
    )
    expect((await dvToken()).status).toBe(200) // once only
  })
})
