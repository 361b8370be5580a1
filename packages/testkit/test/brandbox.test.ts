import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "../src/index.ts"
import { at, bearer, postForm, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

function tokenUrl(): string {
  return `${str(sb.credentials.brandbox["base_url"])}/rest/v4/accessToken`
}

function passwordGrant(): Record<string, string> {
  const c = sb.credentials.brandbox
  return {
    grant_type: "password",
    client_id: str(c["client_id"]),
    client_secret: "-",
    username: str(c["username"]),
    password: str(c["password"])
  }
}

function refreshGrant(refreshToken: string): Record<string, string> {
  return { grant_type: "refresh_token", client_id: "42", client_secret: "-", refresh_token: refreshToken }
}

describe("brandbox", () => {
  it("answers the password grant inside the {code, message, body} envelope", async () => {
    const res = await postForm(tokenUrl(), passwordGrant())
    expect(res.status).toBe(200)
    const body = await readJson(res)
    expect(at(body, "code")).toBe(0)
    expect(at(body, "message")).toBe("Success")
    expect(Object.keys(at(body, "body") as object)).toEqual([
      "token_type",
      "expires_in",
      "access_token",
      "refresh_token"
    ])
    expect(at(body, "body.expires_in")).toBe(3600)
    expect(str(at(body, "body.refresh_token"))).toMatch(/^def50200[0-9a-f]+$/)
  })

  it("rotates refresh tokens: each is single use", async () => {
    const first = await readJson(await postForm(tokenUrl(), passwordGrant()))
    const r1 = str(at(first, "body.refresh_token"))
    const second = await readJson(await postForm(tokenUrl(), refreshGrant(r1)))
    expect(at(second, "code")).toBe(0)
    const r2 = str(at(second, "body.refresh_token"))
    expect(r2).not.toBe(r1)
    expect(at(second, "body.access_token")).not.toBe(at(first, "body.access_token"))

    const reused = await postForm(tokenUrl(), refreshGrant(r1))
    expect(reused.status).toBe(400)
    expect(await readJson(reused)).toEqual({
      code: 400,
      message: "The refresh token is invalid.",
      error: "invalid_grant",
      body: null
    })
    expect(at(await readJson(await postForm(tokenUrl(), refreshGrant(r2))), "code")).toBe(0)
  })

  it("answers bad credentials with HTTP 401 and a wrapped error", async () => {
    const res = await postForm(tokenUrl(), { ...passwordGrant(), password: "wrong" })
    expect(res.status).toBe(401)
    expect(await readJson(res)).toEqual({ code: 401, message: "Invalid credentials", body: null })
  })

  it("rejects a client_secret other than '-' and a malformed request", async () => {
    const secret = await postForm(tokenUrl(), { ...passwordGrant(), client_secret: "secret" })
    expect(secret.status).toBe(401)
    expect(await readJson(secret)).toEqual({
      code: 401,
      message: "Client authentication failed",
      error: "invalid_client",
      body: null
    })
    const { username: _u, ...noUser } = passwordGrant()
    const malformed = await postForm(tokenUrl(), noUser)
    expect(malformed.status).toBe(400)
    expect(await readJson(malformed)).toEqual({
      code: 400,
      message: "Missing parameter: username.",
      error: "invalid_request",
      body: null
    })
  })

  it("protects /rest/v4 with the access token", async () => {
    const token = str(at(await readJson(await postForm(tokenUrl(), passwordGrant())), "body.access_token"))
    expect((await fetch(`${sb.base("brandbox")}/rest/v4/products`, { headers: bearer(token) })).status).toBe(200)
    const denied = await fetch(`${sb.base("brandbox")}/rest/v4/products`)
    expect(denied.status).toBe(401)
    expect(await readJson(denied)).toEqual({ code: 401, message: "Access token is invalid or expired", body: null })
  })
})
