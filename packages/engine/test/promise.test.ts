/** The Promise API: getToken, fetch with the token applied, one invalidate-and-retry on 401, paths below the API
 *  base URL, and absolute URLs only on the API origin unless the caller opts in. */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { createTessera, type Tessera } from "../src/promise.ts"

let sb: Sandbox
let t: Tessera
/** Another origin on this machine, recording the Authorization header of every request it gets. */
let other: http.Server
let otherUrl: string
const otherSaw: Array<string | undefined> = []
beforeAll(async () => {
  other = http.createServer((req, res) => {
    otherSaw.push(req.headers.authorization)
    res.setHeader("content-type", "application/json")
    res.end('{"other":true}')
  })
  await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()))
  otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
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
  await new Promise<void>((r) => other.close(() => r()))
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

  it("an absolute URL on the API origin is used as is, with the token", async () => {
    const res = await t.fetch("jobs", `${sb.base("dvinci")}/restApi/abs?x=1`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ path: "/dvinci/restApi/abs", query: { x: "1" } })
  })

  it("refuses an absolute URL on another origin: the token is not sent, unless allowForeignOrigin", async () => {
    const refused = await t.fetch("jobs", `${otherUrl}/collect`).then(
      () => undefined,
      (e: unknown) => e
    )
    expect(refused).toMatchObject({ _tag: "ForeignOrigin", connection: "jobs", origin: otherUrl })
    const message = (refused as Error).message
    expect(message).toContain(new URL(sb.base("dvinci")).origin) // the API origin it would accept
    expect(message).toContain("allowForeignOrigin: true")
    expect(otherSaw).toEqual([])
    const allowed = await t.fetch("jobs", `${otherUrl}/collect`, { allowForeignOrigin: true })
    expect(allowed.status).toBe(200)
    expect(otherSaw).toEqual([`Bearer ${await t.getToken("jobs")}`])
  })

  it("a relative path needs an api.base_url, and stays below it", async () => {
    await expect(t.fetch("cube", "/me")).rejects.toMatchObject({ _tag: "NoApiBaseUrl", connection: "cube" })
    await expect(t.fetch("cube", `${otherUrl}/x`)).rejects.toMatchObject({ _tag: "ForeignOrigin" })
    for (const path of ["/../../cube/token", "/a/%2e%2e/%2E%2E/x", "/..%2fx", "/a/%252e%252e/x", "/a%252Fb"])
      await expect(t.fetch("jobs", path), path).rejects.toMatchObject({ _tag: "TargetRefused", connection: "jobs" })
  })

  it("sends a body as fetch() would encode it, and answers with a WHATWG Response", async () => {
    const res = await t.fetch("jobs", "/form", { method: "post", body: new URLSearchParams({ a: "1", b: "x y" }) })
    expect(res).toBeInstanceOf(Response)
    expect(res.headers.get("content-type")).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({ method: "POST", path: "/dvinci/restApi/form" })
    const seen = sb.requests.filter((r) => r.kind === "api" && r.path === "/dvinci/restApi/form").at(-1)!
    expect(seen.headers["content-type"]).toBe("application/x-www-form-urlencoded;charset=UTF-8")
    expect(seen.rawBody).toBe("a=1&b=x+y")
    const aborted = new AbortController()
    aborted.abort(new Error("caller gave up"))
    await expect(t.fetch("jobs", "/x", { signal: aborted.signal })).rejects.toThrow("caller gave up")
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
