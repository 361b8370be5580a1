import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { DEMO_VALUES, startSandbox, type Sandbox } from "../src/index.ts"
import { at, basic, bearer, claims, postForm, postJson, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

const KEY = DEMO_VALUES["crm-com"].api_key

function tokenUrl(): string {
  return `${str(sb.credentials["crm-com"]["base_url"])}/authentication/consumer_application_key/token`
}

function keyAuth(): Record<string, string> {
  return { authorization: basic(str(sb.credentials["crm-com"]["api_key"]), "") }
}

const byCode = { access_token_identifier: { authentication_code: "p_kestora1!" } }

describe("crm-com", () => {
  it("sends the documented Basic header for the demo key", () => {
    expect(keyAuth()["authorization"]).toBe("Basic RUU3M0MwQUU2NDUyNDM3MUI1RERFRkY1RjdCQjIxOTI6")
  })

  it("returns a JWT in data.token with string exp/iat two hours apart", async () => {
    const res = await postJson(tokenUrl(), { ...byCode, unit: "7" }, keyAuth())
    expect(res.status).toBe(200)
    const body = await readJson(res)
    expect(at(body, "status")).toEqual({ code: "OK", description: "", message: "" })
    expect(Object.keys(at(body, "data") as object)).toEqual(["token"])
    const token = str(at(body, "data.token"))
    expect(Buffer.from(str(token.split(".")[0]), "base64url").toString()).toBe('{"typ":"JWT","alg":"HS256"}')
    const c = claims(token)
    expect(Object.keys(c)).toEqual(["cii", "usr", "org", "ari", "oun", "exp", "iat", "jti"])
    expect(c["exp"]).toMatch(/^\d+$/)
    expect(c["iat"]).toMatch(/^\d+$/)
    expect(Number(c["exp"]) - Number(c["iat"])).toBe(7200)
    expect(c["oun"]).toBe("7")
  })

  it("accepts identifier + pass_code and jwt + organisation", async () => {
    const a = await readJson(
      await postJson(
        tokenUrl(),
        { access_token_identifier: { identifier: "crm-ident", pass_code: "crm-pass" } },
        keyAuth()
      )
    )
    expect(at(a, "status.code")).toBe("OK")
    expect(claims(str(at(a, "data.token")))["usr"]).toBe("crm-ident")
    const b = await readJson(await postJson(tokenUrl(), { jwt: "crm-idm-jwt", organisation: "ps_dev" }, keyAuth()))
    expect(at(b, "status.code")).toBe("OK")
  })

  it("reports wrong credentials as HTTP 200 with status.code AUTH_FAILED", async () => {
    for (const [body, auth] of [
      [{ access_token_identifier: { authentication_code: "wrong" } }, keyAuth()],
      [byCode, { authorization: basic("0000", "") }],
      [{ jwt: "crm-idm-jwt", organisation: "elsewhere" }, keyAuth()]
    ] as const) {
      const res = await postJson(tokenUrl(), body, auth)
      expect(res.status).toBe(200)
      const json = await readJson(res)
      expect(at(json, "data")).toBeNull()
      expect(at(json, "status.code")).toBe("AUTH_FAILED")
      expect(at(json, "status.message")).toBe("Invalid credentials")
      expect(typeof at(json, "status.description")).toBe("string")
    }
  })

  it("answers 401 without the Basic header", async () => {
    const res = await postJson(tokenUrl(), byCode)
    expect(res.status).toBe(401)
    expect(at(await readJson(res), "status.code")).toBe("UNAUTHORIZED")
  })

  const malformed: Array<[string, unknown, Record<string, string>?]> = [
    ["both identifier kinds", { ...byCode, jwt: "crm-idm-jwt", organisation: "ps_dev" }],
    [
      "code with identifier",
      { access_token_identifier: { authentication_code: "p_kestora1!", identifier: "crm-ident" } }
    ],
    ["identifier without pass_code", { access_token_identifier: { identifier: "crm-ident" } }],
    ["jwt without organisation", { jwt: "crm-idm-jwt" }],
    ["unknown field", { ...byCode, key: KEY }],
    ["numeric unit", { ...byCode, unit: 1 }],
    ["empty object", {}],
    ["array", [byCode]],
    ["non-empty Basic password", byCode, { authorization: basic(KEY, "x") }]
  ]
  it.each(malformed)("answers 400 INVALID_REQUEST for %s", async (_name, body, auth) => {
    const res = await postJson(tokenUrl(), body, auth ?? keyAuth())
    expect(res.status).toBe(400)
    const json = await readJson(res)
    expect(Object.keys(json as object)).toEqual(["data", "status"])
    expect(at(json, "status.code")).toBe("INVALID_REQUEST")
  })

  it("answers 400 for a form-encoded body", async () => {
    const res = await postForm(tokenUrl(), { authentication_code: "p_kestora1!" }, keyAuth())
    expect(res.status).toBe(400)
  })

  it("protects every other /crm-com path with the token until it expires", async () => {
    const token = str(at(await readJson(await postJson(tokenUrl(), byCode, keyAuth())), "data.token"))
    expect((await fetch(`${sb.base("crm-com")}/contacts`, { headers: bearer(token) })).status).toBe(200)
    sb.setClockSkew(7200_000)
    const expired = await fetch(`${sb.base("crm-com")}/contacts`, { headers: bearer(token) })
    sb.setClockSkew(0)
    expect(expired.status).toBe(401)
    expect(at(await readJson(expired), "status.code")).toBe("INVALID_TOKEN")
  })
})
