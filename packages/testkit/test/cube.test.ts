import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "../src/index.ts"
import { at, bearer, claims, basic, postForm, postJson, readJson, str } from "./helpers.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(() => sb.close())
beforeEach(() => sb.reset())

function valid(): Record<string, string> {
  const c = sb.credentials.cube
  return {
    grant_type: "client_credentials",
    client_id: str(c["client_id"]),
    client_secret: str(c["client_secret"]),
    scope: "profile",
    resource: "connectapi",
    acr_values: `tenant:${str(c["tenant"])}`
  }
}

describe("cube token endpoint", () => {
  it("issues a 24 h Bearer JWT for the documented form", async () => {
    const res = await postForm(str(sb.credentials.cube["token_url"]), valid())
    expect(res.status).toBe(200)
    expect(res.headers.get("cache-control")).toBe("no-store")
    const body = await readJson(res)
    expect(Object.keys(body as object)).toEqual(["access_token", "expires_in", "token_type", "scope"])
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 86400, scope: "profile" })
    const c = claims(str(at(body, "access_token")))
    expect(Number(c["exp"]) - Number(c["iat"])).toBe(86400)
    expect(c["sub"]).toBe("cube-demo-client")
    expect(sb.tokenRequests("cube")[0]?.form).toEqual(valid())
  })

  it("issues a distinct token each time and honours setTtl", async () => {
    sb.setTtl("cube", 120)
    const a = await readJson(await postForm(sb.tokenUrl("cube"), valid()))
    const b = await readJson(await postForm(sb.tokenUrl("cube"), valid()))
    expect(at(a, "access_token")).not.toBe(at(b, "access_token"))
    expect(at(a, "expires_in")).toBe(120)
    sb.setTtl("cube", 86400)
  })

  const rejections: Array<[string, () => Promise<Response>, number, string]> = [
    ["wrong secret", () => postForm(sb.tokenUrl("cube"), { ...valid(), client_secret: "nope" }), 400, "invalid_client"],
    ["empty acr_values", () => postForm(sb.tokenUrl("cube"), { ...valid(), acr_values: "" }), 400, "invalid_request"],
    [
      "acr_values with a space",
      () => postForm(sb.tokenUrl("cube"), { ...valid(), acr_values: "tenant: acme" }),
      400,
      "invalid_request"
    ],
    [
      "unknown tenant",
      () => postForm(sb.tokenUrl("cube"), { ...valid(), acr_values: "tenant:other" }),
      400,
      "invalid_grant"
    ],
    ["other scope", () => postForm(sb.tokenUrl("cube"), { ...valid(), scope: "openid" }), 400, "invalid_scope"],
    ["other resource", () => postForm(sb.tokenUrl("cube"), { ...valid(), resource: "api" }), 400, "invalid_target"],
    ["extra field", () => postForm(sb.tokenUrl("cube"), { ...valid(), audience: "x" }), 400, "invalid_request"],
    [
      "repeated field",
      () => postForm(sb.tokenUrl("cube"), `${new URLSearchParams(valid()).toString()}&scope=profile`),
      400,
      "invalid_request"
    ],
    [
      "password grant",
      () => postForm(sb.tokenUrl("cube"), { ...valid(), grant_type: "password" }),
      400,
      "unsupported_grant_type"
    ],
    ["JSON body", () => postJson(sb.tokenUrl("cube"), valid()), 400, "invalid_request"],
    [
      "HTTP Basic as well",
      () => postForm(sb.tokenUrl("cube"), valid(), { authorization: basic("cube-demo-client", "cube-demo-secret") }),
      400,
      "invalid_request"
    ]
  ]
  it.each(rejections)("rejects %s with an RFC 6749 error", async (_name, send, status, error) => {
    const res = await send()
    expect(res.status).toBe(status)
    const body = await readJson(res)
    expect(Object.keys(body as object)).toEqual(["error", "error_description"])
    expect(at(body, "error")).toBe(error)
    expect(sb.tokenRequests("cube").at(-1)?.status).toBe(status)
  })

  it("serves API calls under /cube with the issued token only", async () => {
    const token = str(at(await readJson(await postForm(sb.tokenUrl("cube"), valid())), "access_token"))
    expect((await fetch(`${sb.base("cube")}/v1/orders`, { headers: bearer(token) })).status).toBe(200)
    expect((await fetch(`${sb.base("cube")}/v1/orders`)).status).toBe(401)
  })
})
