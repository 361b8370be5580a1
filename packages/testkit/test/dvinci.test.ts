import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "../src/index.ts"
import { at, bearer, postForm, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

function valid(): Record<string, string> {
  const c = sb.credentials.dvinci
  return { grant_type: "client_credentials", client_id: str(c["client_id"]), client_secret: str(c["client_secret"]) }
}

async function token(): Promise<string> {
  return str(
    at(
      await readJson(await postForm(`${str(sb.credentials.dvinci["base_url"])}/plt/oauth2/token`, valid())),
      "access_token"
    )
  )
}

describe("dvinci", () => {
  it("issues a token with the configured TTL", async () => {
    const res = await postForm(sb.tokenUrl("dvinci"), valid())
    expect(res.status).toBe(200)
    const body = await readJson(res)
    expect(Object.keys(body as object)).toEqual(["token_type", "expires_in", "access_token"])
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 1800 })
  })

  it("rejects a wrong API token with 401 invalid_client", async () => {
    const res = await postForm(sb.tokenUrl("dvinci"), { ...valid(), client_secret: "wrong" })
    expect(res.status).toBe(401)
    expect(await readJson(res)).toEqual({ error: "invalid_client", error_description: "Client authentication failed" })
  })

  it("rejects any field beyond grant_type, client_id and client_secret", async () => {
    const res = await postForm(sb.tokenUrl("dvinci"), { ...valid(), scope: "read" })
    expect(res.status).toBe(400)
    expect(await readJson(res)).toEqual({ error: "invalid_request", error_description: "Unexpected parameter: scope." })
  })

  it("echoes authorised API calls under /restApi", async () => {
    const res = await fetch(`${sb.base("dvinci")}/restApi/dvinciUsers/?page=2`, {
      method: "PUT",
      headers: { ...bearer(await token()), "content-type": "application/json" },
      body: JSON.stringify({ name: "x" })
    })
    expect(res.status).toBe(200)
    expect(await readJson(res)).toEqual({
      ok: true,
      method: "PUT",
      path: "/dvinci/restApi/dvinciUsers/",
      query: { page: "2" },
      body: { name: "x" }
    })
  })

  it("answers 401 invalid_token with WWW-Authenticate for a missing or foreign token", async () => {
    for (const headers of [{}, bearer("not-a-token")]) {
      const res = await fetch(`${sb.base("dvinci")}/restApi/dvinciUsers/`, { headers })
      expect(res.status).toBe(401)
      expect(res.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"')
      expect(at(await readJson(res), "error")).toBe("invalid_token")
    }
  })

  it("answers 404 outside /restApi and the token path", async () => {
    const res = await fetch(`${sb.base("dvinci")}/elsewhere`, { headers: bearer(await token()) })
    expect(res.status).toBe(404)
  })
})
