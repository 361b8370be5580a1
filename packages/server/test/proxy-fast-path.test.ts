/** The proxy's fast path (proxy-fast-path.ts, Api.forwardFast) on a real server against the sandbox's d.vinci
 *  /restApi: which requests it takes (a bodiless call on a fresh token, admitted) and which it leaves to the
 *  router (a body, a token to fetch, a refusal), that its answers agree with the router's for the same call, and
 *  that the proxy's guarantees hold on it: header hygiene, the one 401 retry, the time limit, metrics and the
 *  access log. proxy.test.ts runs every guarantee through both paths as well. */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import * as ProxyFastPath from "../src/proxy-fast-path.ts"
import {
  JOBS_KEY,
  OPS_KEY,
  capture,
  configText,
  metricsText,
  parseConfig,
  raw,
  sample,
  sandbox,
  start
} from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()

beforeAll(async () => {
  sb = await sandbox()
  s = await start(await parseConfig(configText(sb, { connections: ["jobs", "cube"] })), captured, {
    limits: { maxBodyBytes: 32 * 1024, replayBytes: 4 * 1024, timeoutMs: 1000 }
  })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const key = { "x-tessera-key": OPS_KEY }
const proxy = (path: string, init: Parameters<typeof raw>[2] = {}) =>
  raw(s.url, path, { ...init, headers: { ...key, ...init.headers } }, captured)
const apiRequests = (path: string) => sb.requests.filter((r) => r.kind === "api" && r.path.startsWith(path))
/** Runs `f` and says how many requests the fast path took meanwhile. */
const counted = async <A>(f: () => Promise<A>): Promise<{ value: A; fast: number }> => {
  const before = ProxyFastPath.stats.forwarded
  const value = await f()
  return { value, fast: ProxyFastPath.stats.forwarded - before }
}

describe("which path answers", () => {
  it("the first call fetches the token on the router; the next ones, on a fresh token, take the fast path", async () => {
    const first = await counted(() => proxy("/v1/proxy/jobs/first"))
    expect(first.value.status).toBe(200)
    expect(first.fast).toBe(0)
    const next = await counted(() => Promise.all([1, 2, 3].map((i) => proxy(`/v1/proxy/jobs/next/${i}?q=${i}`))))
    expect(next.fast).toBe(3)
    expect(next.value.map((r) => r.json().query)).toEqual([{ q: "1" }, { q: "2" }, { q: "3" }])
  })

  it("a request with a body, a refused key or a traversal (also double-encoded) goes to the router", async () => {
    await proxy("/v1/proxy/jobs/warm")
    const r = await counted(async () => [
      await proxy("/v1/proxy/jobs/post", {
        method: "POST",
        body: "{}",
        headers: { "content-type": "application/json" }
      }),
      await raw(s.url, "/v1/proxy/jobs/no-key"),
      await raw(s.url, "/v1/proxy/cube/other", { headers: { "x-tessera-key": JOBS_KEY } }),
      await proxy("/v1/proxy/nope/x"),
      await proxy("/v1/proxy/jobs/a/%2e%2e/b"),
      await proxy("/v1/proxy/jobs/a/%252e%252e/b")
    ])
    expect(r.fast).toBe(0)
    expect(r.value.map((x) => x.status)).toEqual([200, 401, 403, 404, 400, 400])
    expect(r.value[5]!.json().detail).toMatch(/percent-encoded twice/)
  })

  it("its answer agrees with the router's for the same call (status, body, headers both ways)", async () => {
    await proxy("/v1/proxy/jobs/warm")
    const call = (id: string, extra: Record<string, string>) =>
      proxy(`/v1/proxy/jobs/same/path?x=1`, {
        headers: {
          "x-request-id": id,
          authorization: "Bearer caller-own",
          connection: "x-drop",
          "x-drop": "1",
          ...extra
        }
      })
    // Content-Length: 0 makes it a request with a body (empty): the router's path.
    const slow = await counted(() => call("slow-one", { "content-length": "0" }))
    const fast = await counted(() => call("fast-one", {}))
    expect([slow.fast, fast.fast]).toEqual([0, 1])
    expect(fast.value.status).toBe(slow.value.status)
    expect(fast.value.json()).toEqual(slow.value.json())
    const same = (h: Record<string, unknown>) => {
      const { date: _d, "x-request-id": _id, ...rest } = h
      return rest
    }
    expect(same(fast.value.headers)).toEqual(same(slow.value.headers))
    expect(fast.value.headers["x-request-id"]).toBe("fast-one")
    const [seenSlow, seenFast] = apiRequests("/dvinci/restApi/same/path")
      .slice(-2)
      .map((x) => x.headers)
    expect(seenFast!["x-request-id"]).toBe("fast-one")
    expect(seenFast!["authorization"]).toBe(seenSlow!["authorization"])
    expect(seenFast!["authorization"]).not.toBe("Bearer caller-own")
    for (const h of ["x-tessera-key", "x-drop"]) expect(seenFast![h]).toBeUndefined()
    const strip = (h: Record<string, string>) => {
      const { "x-request-id": _id, "content-length": _cl, ...rest } = h
      return rest
    }
    expect(strip(seenFast!)).toEqual(strip(seenSlow!))
  })
})

describe("the guarantees on the fast path", () => {
  it("a 401 invalidates the token and retries once with a new one, counted in the retry metric", async () => {
    await proxy("/v1/proxy/jobs/warm")
    const retries0 = sample(await metricsText(s.url), "tessera_proxy_retries_total", `{provider="dvinci"}`)
    sb.revokeTokens("dvinci")
    const r = await counted(() => proxy("/v1/proxy/jobs/fast-revoked"))
    expect(r.fast).toBe(1)
    expect(r.value.status).toBe(200)
    expect(apiRequests("/dvinci/restApi/fast-revoked").map((x) => x.status)).toEqual([401, 200])
    expect(sample(await metricsText(s.url), "tessera_proxy_retries_total", `{provider="dvinci"}`)).toBe(retries0 + 1)
  })

  it("an API that does not answer in time: 504 UpstreamTimeout, logged with the route and connection", async () => {
    await proxy("/v1/proxy/jobs/warm")
    sb.injectApi("dvinci", { type: "delay", ms: 2500 })
    const r = await counted(() => proxy("/v1/proxy/jobs/fast-slow", { headers: { "x-request-id": "fast-timeout" } }))
    expect(r.fast).toBe(1)
    expect(r.value.status).toBe(504)
    expect(r.value.json()).toMatchObject({ code: "UpstreamTimeout", connection: "jobs", request_id: "fast-timeout" })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const line = captured.logs
      .map((l) => JSON.parse(l))
      .find((l) => l.type === "access" && l.request_id === "fast-timeout")
    expect(line).toMatchObject({ status: 504, route: "/v1/proxy/:name/*", connection: "jobs", key: "ops" })
  })

  it("HEAD is answered with the API's headers and no body", async () => {
    await proxy("/v1/proxy/jobs/warm")
    const r = await counted(() => proxy("/v1/proxy/jobs/head", { method: "HEAD" }))
    expect(r.fast).toBe(1)
    expect(r.value.status).toBe(200)
    expect(r.value.text).toBe("")
  })
})
