/** Every bundled provider against its sandbox: the exact wire request (method, path, content type, client
 *  authentication, body fields) and the token that comes back. */
import { Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { DEMO_VALUES } from "@tessera/testkit"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness
beforeAll(async () => {
  h = await makeHarness()
})
afterAll(() => h.close())

const lastToken = (id: Parameters<Harness["sb"]["tokenRequests"]>[0]) => {
  const reqs = h.sb.tokenRequests(id)
  return reqs[reqs.length - 1]!
}

describe("bundled providers against the sandbox", () => {
  it("cube: form client_credentials with scope, resource and acr_values=tenant:<tenant>", async () => {
    const r = await h.run(h.engine.getToken("cube"))
    const req = lastToken("cube")
    expect(req.method).toBe("POST")
    expect(req.path).toBe("/cube/connect/token")
    expect(req.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
    expect(req.headers["authorization"]).toBeUndefined()
    expect(req.form).toEqual({
      grant_type: "client_credentials",
      client_id: h.sb.credentials.cube["client_id"],
      client_secret: h.sb.credentials.cube["client_secret"],
      scope: "profile",
      resource: "connectapi",
      acr_values: `tenant:${h.sb.credentials.cube["tenant"]}`
    })
    expect(r.tokenType).toBe("Bearer")
    expect(r.expiresAt!.getTime() - Date.now()).toBeGreaterThan(86_390_000) // 24 h
    expect(r.decision.action).toBe("acquired")
  })

  it("cube: reuses the token until it expires (no second request)", async () => {
    const before = h.sb.tokenRequests("cube").length
    const r = await h.run(h.engine.getToken("cube"))
    expect(r.decision.action).toBe("reused")
    expect(h.sb.tokenRequests("cube").length).toBe(before)
  })

  it("dvinci: client credentials on the customer host, then Bearer calls to /restApi", async () => {
    const auth = await h.run(h.engine.authorization("dvinci"))
    const req = lastToken("dvinci")
    expect(req.path).toBe("/dvinci/plt/oauth2/token")
    expect(req.form).toEqual({
      grant_type: "client_credentials",
      client_id: h.sb.credentials.dvinci["client_id"],
      client_secret: h.sb.credentials.dvinci["client_secret"]
    })
    expect(auth.header).toBe("Authorization")
    const res = await fetch(`${h.sb.base("dvinci")}/restApi/dvinciUsers/`, {
      headers: { authorization: Redacted.value(auth.value) }
    })
    expect(res.status).toBe(200)
    expect(Redacted.value(auth.value)).toBe(`Bearer ${Redacted.value(auth.result.accessToken)}`)
  })

  it("usage-engine: client credentials with the audience, expiry from expires_in", async () => {
    const r = await h.run(h.engine.getToken("usage-engine"))
    const req = lastToken("usage-engine")
    expect(req.form).toEqual({
      grant_type: "client_credentials",
      client_id: h.sb.credentials["usage-engine"]["client_id"],
      client_secret: h.sb.credentials["usage-engine"]["client_secret"],
      audience: h.sb.credentials["usage-engine"]["audience"]
    })
    expect(Math.round((r.expiresAt!.getTime() - Date.now()) / 1000)).toBeGreaterThan(3590)
    expect(r.hasRefreshToken).toBe(false)
  })

  it("brandbox: password grant with client_secret '-', token read from the body envelope", async () => {
    const r = await h.run(h.engine.getToken("brandbox"))
    const req = lastToken("brandbox")
    expect(req.path).toBe("/brandbox/rest/v4/accessToken")
    expect(req.form).toEqual({
      grant_type: "password",
      client_id: h.sb.credentials.brandbox["client_id"],
      client_secret: "-",
      username: h.sb.credentials.brandbox["username"],
      password: h.sb.credentials.brandbox["password"]
    })
    expect(r.hasRefreshToken).toBe(true)
  })

  it("crm-com: JSON body, Basic with the key and an empty password, token at data.token, expiry from a string exp", async () => {
    const r = await h.run(h.engine.getToken("crm-com"))
    const req = lastToken("crm-com")
    expect(req.path).toBe("/crm-com/authentication/consumer_application_key/token")
    expect(req.headers["content-type"]).toMatch(/^application\/json/)
    expect(req.headers["authorization"]).toBe(
      `Basic ${Buffer.from(`${h.sb.credentials["crm-com"]["api_key"]}:`).toString("base64")}`
    )
    expect(req.json).toEqual({
      access_token_identifier: { authentication_code: h.sb.credentials["crm-com"]["authentication_code"] }
    })
    const payload = JSON.parse(Buffer.from(Redacted.value(r.accessToken).split(".")[1]!, "base64url").toString()) as {
      exp: unknown
    }
    expect(typeof payload.exp).toBe("string")
    expect(r.expiresAt!.getTime()).toBe(Number(payload.exp) * 1000)
  })

  it("oauth2: client_secret_basic by default, no client secret in the body", async () => {
    await h.run(h.engine.getToken("oauth2"))
    const req = lastToken("oauth2")
    expect(req.form).toEqual({ grant_type: "client_credentials" })
    const [id, secret] = Buffer.from(req.headers["authorization"]!.replace(/^Basic /, ""), "base64")
      .toString()
      .split(":")
    expect(id).toBe(h.sb.credentials.oauth2["client_id"])
    expect(secret).toBe(h.sb.credentials.oauth2["client_secret"])
  })
})

describe("crm-com credential variants", () => {
  it("identifier + pass_code go inside access_token_identifier, unit at the top; jwt + organisation at the top", async () => {
    const v = await makeHarness({
      extra: (sb) => ({
        "crm-ident": {
          provider: "crm-com",
          inputs: {
            base_url: sb.base("crm-com"),
            api_key: sb.credentials["crm-com"]["api_key"]!,
            identifier: "crm-ident",
            pass_code: "crm-pass",
            unit: "1"
          }
        },
        "crm-jwt": {
          provider: "crm-com",
          inputs: {
            base_url: sb.base("crm-com"),
            api_key: sb.credentials["crm-com"]["api_key"]!,
            jwt: "crm-idm-jwt",
            organisation: "ps_dev"
          }
        }
      })
    })
    try {
      await v.run(v.engine.getToken("crm-ident"))
      expect(v.sb.tokenRequests("crm-com").at(-1)!.json).toEqual({
        access_token_identifier: { identifier: "crm-ident", pass_code: "crm-pass" },
        unit: "1"
      })
      await v.run(v.engine.getToken("crm-jwt"))
      expect(v.sb.tokenRequests("crm-com").at(-1)!.json).toEqual({ jwt: "crm-idm-jwt", organisation: "ps_dev" })
    } finally {
      await v.close()
    }
  })
})

describe("client authentication encoding (RFC 6749 §2.3.1)", () => {
  it("form-encodes the client id and secret before Basic, and the server decodes them back", async () => {
    const special = DEMO_VALUES["oauth2-special"]
    const v = await makeHarness({
      extra: (sb) => ({
        basic: {
          provider: "oauth2",
          inputs: {
            token_url: sb.tokenUrl("oauth2"),
            client_id: special.client_id,
            client_secret: special.client_secret
          }
        },
        post: {
          provider: "oauth2",
          inputs: {
            token_url: sb.tokenUrl("oauth2"),
            client_id: special.client_id,
            client_secret: special.client_secret,
            client_auth: "client_secret_post"
          }
        }
      })
    })
    try {
      await v.run(v.engine.getToken("basic"))
      const basic = v.sb.tokenRequests("oauth2").at(-1)!
      expect(basic.status).toBe(200)
      const decoded = Buffer.from(basic.headers["authorization"]!.replace(/^Basic /, ""), "base64").toString("utf8")
      expect(decoded).toBe("app%3A42+%C3%BC:s3%3Acr%2Bt+%252B+%C3%BC")
      await v.run(v.engine.getToken("post"))
      const post = v.sb.tokenRequests("oauth2").at(-1)!
      expect(post.status).toBe(200)
      expect(post.form).toMatchObject({ client_id: special.client_id, client_secret: special.client_secret })
      expect(post.headers["authorization"]).toBeUndefined()
    } finally {
      await v.close()
    }
  })
})
