import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "../src/index.ts"
import { at, bearer, claims, postForm, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

function valid(): Record<string, string> {
  const c = sb.credentials["usage-engine"]
  return {
    grant_type: "client_credentials",
    client_id: str(c["client_id"]),
    client_secret: str(c["client_secret"]),
    audience: str(c["audience"])
  }
}

describe("usage-engine", () => {
  it("issues a one-hour token for the exact audience, with scope and no refresh token", async () => {
    const res = await postForm(str(sb.credentials["usage-engine"]["token_url"]), { ...valid(), scope: "read:usage" })
    expect(res.status).toBe(200)
    const body = await readJson(res)
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 3600, scope: "read:usage" })
    expect(Object.keys(body as object)).not.toContain("refresh_token")
    expect(claims(str(at(body, "access_token")))["aud"]).toBe(`${sb.url}/usage-engine/api`)
  })

  it("grants the default scope when none is asked for", async () => {
    const body = await readJson(await postForm(sb.tokenUrl("usage-engine"), valid()))
    expect(at(body, "scope")).toBe("read:usage write:usage")
  })

  it("answers 403 access_denied for any other audience", async () => {
    const res = await postForm(sb.tokenUrl("usage-engine"), { ...valid(), audience: `${sb.url}/usage-engine/api/` })
    expect(res.status).toBe(403)
    expect(await readJson(res)).toEqual({
      error: "access_denied",
      error_description: `Service not enabled within domain: ${sb.url}/usage-engine/api/`
    })
  })

  it("answers 401 access_denied for wrong client credentials and 400 without audience", async () => {
    const bad = await postForm(sb.tokenUrl("usage-engine"), { ...valid(), client_id: "someone" })
    expect(bad.status).toBe(401)
    expect(await readJson(bad)).toEqual({ error: "access_denied", error_description: "Unauthorized" })
    const { audience: _omitted, ...noAudience } = valid()
    const missing = await postForm(sb.tokenUrl("usage-engine"), noAudience)
    expect(missing.status).toBe(400)
    expect(at(await readJson(missing), "error")).toBe("invalid_request")
  })

  it("serves the API at the audience address", async () => {
    const token = str(at(await readJson(await postForm(sb.tokenUrl("usage-engine"), valid())), "access_token"))
    const res = await fetch(`${str(sb.credentials["usage-engine"]["audience"])}/v1/usage`, { headers: bearer(token) })
    expect(res.status).toBe(200)
    expect(at(await readJson(res), "path")).toBe("/usage-engine/api/v1/usage")
  })
})
