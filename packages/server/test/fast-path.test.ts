/** The token route's fast path (cache hits answered before the router): same answer as the router, same access
 *  rules, still counted in the access log and metrics. */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { JOBS_KEY, OPS_KEY, capture, configText, parseConfig, raw, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()
beforeAll(async () => {
  sb = await sandbox()
  s = await start(await parseConfig(configText(sb)), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

describe("token fast path", () => {
  it("a cache hit answers like the router did: same body shape, headers and token; no upstream call", async () => {
    const first = await raw(
      s.url,
      "/v1/connections/cube/token",
      { headers: { authorization: `Bearer ${OPS_KEY}` } },
      captured
    )
    const requests = sb.tokenRequests("cube").length
    const second = await raw(
      s.url,
      "/v1/connections/cube/token?x=1",
      { headers: { authorization: `Bearer ${OPS_KEY}`, "x-request-id": "fast-1" } },
      captured
    )
    expect(second.status).toBe(200)
    expect(second.json()).toEqual(first.json())
    for (const h of ["content-type", "cache-control"]) expect(second.headers[h]).toBe(first.headers[h])
    expect(second.headers["x-request-id"]).toBe("fast-1")
    expect(sb.tokenRequests("cube").length).toBe(requests)
  })

  it("the key rules hold on a hit: another key's allowlist is 403, no key is 401", async () => {
    await raw(s.url, "/v1/connections/cube/token", { headers: { authorization: `Bearer ${OPS_KEY}` } }, captured)
    expect(
      (await raw(s.url, "/v1/connections/cube/token", { headers: { "x-tessera-key": JOBS_KEY } }, captured)).status
    ).toBe(403)
    expect((await raw(s.url, "/v1/connections/cube/token", {}, captured)).status).toBe(401)
  })

  it("hits are logged and counted under the route", async () => {
    await raw(
      s.url,
      "/v1/connections/cube/token",
      { headers: { authorization: `Bearer ${OPS_KEY}`, "x-request-id": "fast-log" } },
      captured
    )
    const line = captured.logs.find((l) => l.includes("fast-log"))
    expect(line).toContain("/v1/connections/:name/token")
    expect(line).toContain("cube")
    const metrics = (await raw(s.url, "/metrics", { headers: { "x-tessera-key": OPS_KEY } }, captured)).text
    expect(metrics).toMatch(/route="\/v1\/connections\/:name\/token",status="200"\} [1-9]/)
  })
})
