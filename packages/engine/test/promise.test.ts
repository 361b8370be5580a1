/** The Promise API: getToken, fetch with the token applied, one invalidate-and-retry on 401, relative URLs. */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { apiUrl, createTessera, type Tessera } from "../src/promise.ts"

let sb: Sandbox
let t: Tessera
beforeAll(async () => {
  sb = await startSandbox()
  t = await createTessera({
    config: {
      connections: {
        jobs: { provider: "dvinci", inputs: sb.credentials.dvinci },
        cube: { provider: "cube", inputs: sb.credentials.cube }
      }
    }
  })
})
afterAll(async () => {
  await t.close()
  await sb.close()
})

describe("Promise API", () => {
  it("getToken returns the access token string and caches it", async () => {
    const a = await t.getToken("cube")
    const b = await t.getToken("cube")
    expect(a).toMatch(/^ey/)
    expect(b).toBe(a)
    expect(sb.tokenRequests("cube")).toHaveLength(1)
  })

  it("fetch applies the token and resolves paths against api.base_url", async () => {
    const res = await t.fetch("jobs", "/dvinciUsers/?page=2")
    expect(res.status).toBe(200)
    const body = (await res.json()) as { path: string; query: Record<string, string> }
    expect(body.path).toBe("/dvinci/restApi/dvinciUsers/")
    expect(body.query).toEqual({ page: "2" })
    const apiReq = sb.requests.filter((r) => r.kind === "api").at(-1)!
    expect(apiReq.headers["authorization"]).toBe(`Bearer ${await t.getToken("jobs")}`)
  })

  it("on a 401 the token is invalidated and the call retried once with a new token", async () => {
    const before = await t.getToken("jobs")
    sb.revokeTokens("dvinci")
    const res = await t.fetch("jobs", "/dvinciUsers/", {
      method: "POST",
      body: JSON.stringify({ a: 1 }),
      headers: { "content-type": "application/json" }
    })
    expect(res.status).toBe(200)
    expect(await t.getToken("jobs")).not.toBe(before)
    const posts = sb.requests.filter((r) => r.kind === "api" && r.method === "POST")
    expect(posts.map((r) => r.status)).toEqual([401, 200])
    expect(posts[1]!.rawBody).toBe('{"a":1}')
  })

  it("a second 401 is returned to the caller, not retried forever", async () => {
    sb.injectApi("dvinci", { type: "status", status: 401 }, 2)
    const res = await t.fetch("jobs", "/x")
    expect(res.status).toBe(401)
  })

  it("unknown connections reject with a typed error", async () => {
    await expect(t.getToken("nope")).rejects.toMatchObject({ _tag: "UnknownConnection", connection: "nope" })
  })

  it("apiUrl keeps absolute URLs and refuses relative ones without a base", () => {
    expect(apiUrl(undefined, "https://x.example/a").toString()).toBe("https://x.example/a")
    expect(apiUrl("https://h.example/restApi/", "/u").toString()).toBe("https://h.example/restApi/u")
    expect(() => apiUrl(undefined, "/u")).toThrow(/no api.base_url/)
  })
})

describe("Promise API: connections at runtime", () => {
  it("put, get, list and delete a connection, and get its token like a config one", async () => {
    expect(t.connections()).toEqual(["jobs", "cube"])
    const put = await t.connections.put("acme-jobs", {
      provider: "dvinci",
      inputs: sb.credentials.dvinci,
      tags: { tenant: "acme" }
    })
    expect(put.created).toBe(true)
    expect(put.connection).toMatchObject({ name: "acme-jobs", source: "api", tags: { tenant: "acme" } })
    expect(put.connection.inputs["client_secret"]).toBe("***")
    expect(await t.getToken("acme-jobs")).toMatch(/\S/)
    expect((await t.connections.get("acme-jobs"))?.provider).toBe("dvinci")
    expect((await t.connections.list({ tags: { tenant: "acme" } })).items.map((c) => c.name)).toEqual(["acme-jobs"])
    expect(await t.connections.delete("acme-jobs")).toBe(true)
    expect(await t.connections.get("acme-jobs")).toBeUndefined()
    await expect(t.getToken("acme-jobs")).rejects.toMatchObject({ _tag: "UnknownConnection" })
  })

  it("rejects an invalid connection with every problem located", async () => {
    await expect(t.connections.put("bad", { provider: "dvinci", inputs: { base_url: "nope" } })).rejects.toMatchObject({
      _tag: "ConnectionInvalid",
      errors: expect.arrayContaining([expect.objectContaining({ path: "/inputs/base_url" })])
    })
  })
})
