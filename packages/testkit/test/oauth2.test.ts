import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "../src/index.ts"
import { at, basic, bearer, claims, postForm, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

function url(): string {
  return str(sb.credentials.oauth2["token_url"])
}

function clientBasic(): Record<string, string> {
  return { authorization: basic(str(sb.credentials.oauth2["client_id"]), str(sb.credentials.oauth2["client_secret"])) }
}

const post = { client_id: "oauth2-client", client_secret: "oauth2-secret" }

async function passwordTokens(scope?: string): Promise<unknown> {
  const fields: Record<string, string> = { grant_type: "password", username: "alice", password: "alice-password" }
  if (scope !== undefined) fields["scope"] = scope
  return readJson(await postForm(url(), fields, clientBasic()))
}

describe("oauth2 client authentication", () => {
  it("accepts client_secret_basic for client_credentials, without a refresh token", async () => {
    const res = await postForm(
      url(),
      { grant_type: "client_credentials", scope: "read write", audience: "https://api.example" },
      clientBasic()
    )
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("no-store")
    expect(res.headers.get("pragma")).toBe("no-cache")
    const body = await readJson(res)
    expect(Object.keys(body as object)).toEqual(["access_token", "token_type", "expires_in", "scope"])
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "read write" })
    expect(claims(str(at(body, "access_token")))["aud"]).toBe("https://api.example")
  })

  it("form-decodes the Basic user and password (RFC 6749 §2.3.1)", async () => {
    const res = await postForm(
      url(),
      { grant_type: "client_credentials" },
      { authorization: basic("oauth2%2Dclient", "oauth2%2dsecret") }
    )
    expect(res.status).toBe(200)
  })

  it("accepts client_secret_post", async () => {
    const res = await postForm(url(), { grant_type: "client_credentials", ...post })
    expect(res.status).toBe(200)
    expect(Object.keys((await readJson(res)) as object)).toEqual(["access_token", "token_type", "expires_in"])
  })

  it("rejects both methods at once with 400 invalid_request", async () => {
    const res = await postForm(url(), { grant_type: "client_credentials", ...post }, clientBasic())
    expect(res.status).toBe(400)
    expect(await readJson(res)).toEqual({
      error: "invalid_request",
      error_description: "The client used more than one authentication method (HTTP Basic and body credentials)."
    })
  })

  it("answers 401 invalid_client with WWW-Authenticate: Basic for bad or missing client credentials", async () => {
    for (const send of [
      () => postForm(url(), { grant_type: "client_credentials" }, { authorization: basic("oauth2-client", "wrong") }),
      () => postForm(url(), { grant_type: "client_credentials", client_id: "oauth2-client", client_secret: "wrong" }),
      () => postForm(url(), { grant_type: "client_credentials" })
    ]) {
      const res = await send()
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic /)
      const body = await readJson(res)
      expect(Object.keys(body as object)).toEqual(["error", "error_description"])
      expect(at(body, "error")).toBe("invalid_client")
    }
  })
})

describe("oauth2 grants", () => {
  it("rejects unknown grants, unknown parameters and bad resources", async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ grant_type: "authorization_code", code: "x" }, "unsupported_grant_type"],
      [{ grant_type: "client_credentials", username: "alice" }, "invalid_request"],
      [{ grant_type: "client_credentials", scope: "" }, "invalid_request"],
      [{ grant_type: "client_credentials", resource: "not a uri" }, "invalid_target"],
      [{ grant_type: "client_credentials", scope: 'bad"scope' }, "invalid_scope"]
    ]
    for (const [fields, error] of cases) {
      const res = await postForm(url(), fields, clientBasic())
      expect(res.status, JSON.stringify(fields)).toBe(400)
      expect(at(await readJson(res), "error")).toBe(error)
    }
  })

  it("issues a refresh token for the password grant and rejects bad user credentials", async () => {
    const body = await passwordTokens("read")
    expect(typeof at(body, "refresh_token")).toBe("string")
    expect(claims(str(at(body, "access_token")))["sub"]).toBe("alice")
    const bad = await postForm(url(), { grant_type: "password", username: "alice", password: "nope" }, clientBasic())
    expect(bad.status).toBe(400)
    expect(at(await readJson(bad), "error")).toBe("invalid_grant")
  })

  it("rotates refresh tokens and rejects a used one with invalid_grant", async () => {
    const r1 = str(at(await passwordTokens("read write"), "refresh_token"))
    const res = await postForm(url(), { grant_type: "refresh_token", refresh_token: r1 }, clientBasic())
    expect(res.status).toBe(200)
    const second = await readJson(res)
    expect(at(second, "scope")).toBe("read write")
    const r2 = str(at(second, "refresh_token"))
    expect(r2).not.toBe(r1)

    const reused = await postForm(url(), { grant_type: "refresh_token", refresh_token: r1 }, clientBasic())
    expect(reused.status).toBe(400)
    expect(at(await readJson(reused), "error")).toBe("invalid_grant")

    const wider = await postForm(
      url(),
      { grant_type: "refresh_token", refresh_token: r2, scope: "admin" },
      clientBasic()
    )
    expect(at(await readJson(wider), "error")).toBe("invalid_scope")
    const narrower = await postForm(url(), { grant_type: "refresh_token", refresh_token: r2, scope: "read", ...post })
    expect(narrower.status).toBe(200)
    expect(at(await readJson(narrower), "scope")).toBe("read")
  })

  it("protects /oauth2/api with the access token", async () => {
    const token = str(at(await passwordTokens(), "access_token"))
    const res = await fetch(`${str(sb.credentials.oauth2["api_base_url"])}/me`, { headers: bearer(token) })
    expect(res.status).toBe(200)
    expect((await fetch(`${sb.base("oauth2")}/api/me`)).status).toBe(401)
  })
})
