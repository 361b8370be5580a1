/** Engine behaviour: single-flight, caching and the early-refresh margin, refresh with rotation, falling back to
 *  acquire when a refresh token is rejected, invalidation, serve-stale, and events. */
import { Effect, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { TokenEvent } from "../src/events.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

describe("single-flight", () => {
  it("1000 concurrent cold callers cause exactly one upstream request and all get the same token", async () => {
    h = await makeHarness()
    h.sb.inject("cube", { type: "delay", ms: 50 })
    const results = await h.run(
      Effect.all(
        Array.from({ length: 1000 }, () => h!.engine.getToken("cube")),
        { concurrency: "unbounded" }
      )
    )
    expect(h.sb.tokenRequests("cube")).toHaveLength(1)
    expect(new Set(results.map((r) => Redacted.value(r.accessToken))).size).toBe(1)
  })

  it("concurrent callers share the leader's failure instead of each asking", async () => {
    h = await makeHarness({ inputs: { dvinci: { client_secret: "wrong-secret-value" } } })
    const results = await h.run(
      Effect.all(
        Array.from({ length: 50 }, () => Effect.result(h!.engine.getToken("dvinci"))),
        { concurrency: "unbounded" }
      )
    )
    expect(results.every((r) => r._tag === "Failure")).toBe(true)
    expect(h.sb.tokenRequests("dvinci")).toHaveLength(1)
  })

  it("interrupting the caller that started a renewal does not wedge the others (a client hanging up)", async () => {
    h = await makeHarness()
    h.sb.inject("cube", { type: "delay", ms: 300 })
    const leader = await h.run(Effect.timeoutOption(h.engine.getToken("cube"), "50 millis"))
    expect(leader._tag).toBe("None") // interrupted mid-renewal
    const follower = await h.run(Effect.timeout(h.engine.getToken("cube"), "3 seconds"))
    expect(follower.decision.action).toMatch(/acquired|reused/)
    expect(h.sb.tokenRequests("cube")).toHaveLength(1)
    const later = await h.run(Effect.timeout(h.engine.getToken("cube"), "3 seconds"))
    expect(later.decision.action).toBe("reused")
  })

  it("connections with different inputs do not share a token", async () => {
    h = await makeHarness({ extra: (sb) => ({ cube2: { provider: "cube", inputs: { ...sb.credentials.cube } } }) })
    const [a, b] = await h.run(Effect.all([h.engine.getToken("cube"), h.engine.getToken("cube2")], { concurrency: 2 }))
    expect(Redacted.value(a.accessToken)).not.toBe(Redacted.value(b.accessToken))
    expect(h.sb.tokenRequests("cube")).toHaveLength(2)
  })
})

describe("expiry and the early-refresh margin", () => {
  it("a short-lived token is renewed inside min(60 s, 10 % of its life), not before", async () => {
    h = await makeHarness({ sandbox: { ttlSeconds: { dvinci: 3 } } })
    const first = await h.run(h.engine.getToken("dvinci"))
    const again = await h.run(h.engine.getToken("dvinci"))
    expect(again.decision.action).toBe("reused")
    // margin = 10 % of 3 s = 0.3 s: at 2.8 s the token is inside it.
    await new Promise((r) => setTimeout(r, 2800))
    const renewed = await h.run(h.engine.getToken("dvinci"))
    expect(renewed.decision.action).toBe("acquired")
    expect(Redacted.value(renewed.accessToken)).not.toBe(Redacted.value(first.accessToken))
    expect(h.sb.tokenRequests("dvinci")).toHaveLength(2)
  })

  it("peek answers synchronously: nothing when cold, the token when fresh, nothing inside the margin", async () => {
    h = await makeHarness({ sandbox: { ttlSeconds: { dvinci: 2 } } })
    expect(h.engine.peek("dvinci")).toBeUndefined()
    expect(h.engine.peek("no-such-connection")).toBeUndefined()
    const r = await h.run(h.engine.getToken("dvinci"))
    const hit = h.engine.peek("dvinci")
    expect(hit?.decision.action).toBe("reused")
    expect(Redacted.value(hit!.accessToken)).toBe(Redacted.value(r.accessToken))
    await new Promise((res) => setTimeout(res, 1850)) // margin: 10 % of 2 s
    expect(h.engine.peek("dvinci")).toBeUndefined()
  })

  it("force renews a fresh token", async () => {
    h = await makeHarness()
    await h.run(h.engine.getToken("usage-engine"))
    const r = await h.run(h.engine.getToken("usage-engine", { force: true }))
    expect(r.decision.action).toBe("acquired")
    expect(r.decision.reason).toMatch(/forced/)
    expect(h.sb.tokenRequests("usage-engine")).toHaveLength(2)
  })

  it("noCache neither reads nor writes the store", async () => {
    h = await makeHarness()
    await h.run(h.engine.getToken("cube", { noCache: true }))
    await h.run(h.engine.getToken("cube", { noCache: true }))
    expect(h.sb.tokenRequests("cube")).toHaveLength(2)
    expect(await h.run(h.store.list())).toHaveLength(0)
  })
})

describe("refresh tokens", () => {
  it("brandbox: an expiring token is renewed with the refresh token, which rotates and is stored before return", async () => {
    h = await makeHarness({ sandbox: { ttlSeconds: { brandbox: 2 } } })
    const first = await h.run(h.engine.getToken("brandbox"))
    const initialRefresh = h.sb.tokenRequests("brandbox")[0]!
    expect(initialRefresh.form?.["grant_type"]).toBe("password")
    await new Promise((r) => setTimeout(r, 2000))
    const events: TokenEvent[] = []
    h.engine.subscribe((e) => events.push(e))
    const r = await h.run(h.engine.getToken("brandbox"))
    expect(r.decision.action).toBe("refreshed")
    const req = h.sb.tokenRequests("brandbox")[1]!
    expect(req.form).toMatchObject({
      grant_type: "refresh_token",
      client_id: h.sb.credentials.brandbox["client_id"],
      client_secret: "-"
    })
    expect(req.form?.["refresh_token"]).toBeTruthy()
    expect(Redacted.value(r.accessToken)).not.toBe(Redacted.value(first.accessToken))
    expect(events.map((e) => e.type)).toEqual(["rotated", "refreshed"])
    // The rotated refresh token is what the store holds now.
    const [, entry] = (await h.run(h.store.list()))[0]!
    expect(entry.token.refresh_token).toBeTruthy()
    expect(entry.token.refresh_token).not.toBe(req.form?.["refresh_token"])
  })

  it("a rejected refresh token (invalid_grant) falls back to a full acquire", async () => {
    h = await makeHarness({
      sandbox: { ttlSeconds: { oauth2: 2 } },
      inputs: { oauth2: { grant_type: "password", username: "alice", password: "alice-password" } }
    })
    await h.run(h.engine.getToken("oauth2"))
    h.sb.inject("oauth2", {
      type: "status",
      status: 400,
      body: JSON.stringify({ error: "invalid_grant", error_description: "refresh token revoked" }),
      headers: { "content-type": "application/json" }
    })
    await new Promise((r) => setTimeout(r, 2000))
    const events: TokenEvent[] = []
    h.engine.subscribe((e) => events.push(e))
    const r = await h.run(h.engine.getToken("oauth2"))
    expect(r.decision.action).toBe("acquired")
    expect(r.decision.reason).toMatch(/refresh token rejected/)
    expect(h.sb.tokenRequests("oauth2").map((q) => q.form?.["grant_type"])).toEqual([
      "password",
      "refresh_token",
      "password"
    ])
    expect(events.map((e) => e.type)).toContain("refresh_rejected")
  })

  it("invalidate keeps the refresh token, so the next call refreshes instead of logging in again", async () => {
    h = await makeHarness()
    await h.run(h.engine.getToken("brandbox"))
    await h.run(h.engine.invalidate("brandbox"))
    const r = await h.run(h.engine.getToken("brandbox"))
    expect(r.decision.action).toBe("refreshed")
    expect(h.sb.tokenRequests("brandbox").map((q) => q.form?.["grant_type"])).toEqual(["password", "refresh_token"])
  })

  it("invalidate without a refresh token forgets the token", async () => {
    h = await makeHarness()
    await h.run(h.engine.getToken("cube"))
    await h.run(h.engine.invalidate("cube"))
    expect((await h.run(h.engine.getToken("cube"))).decision.action).toBe("acquired")
    expect(h.sb.tokenRequests("cube")).toHaveLength(2)
  })
})

describe("serve stale while the provider fails", () => {
  it("serves a token inside its margin when renewal fails, and never one past its real expiry", async () => {
    h = await makeHarness({ sandbox: { ttlSeconds: { dvinci: 3 } }, http: { retries: 0 } })
    const first = await h.run(h.engine.getToken("dvinci"))
    // 150 ms before it expires: inside the margin (10 % of a 2-3 s lifetime; the JWT's exp is whole seconds).
    await new Promise((r) => setTimeout(r, first.expiresAt!.getTime() - Date.now() - 150))
    h.sb.inject("dvinci", { type: "status", status: 503 }, 10)
    const stale = await h.run(h.engine.getToken("dvinci"))
    expect(stale.decision.action).toBe("served_stale")
    expect(Redacted.value(stale.accessToken)).toBe(Redacted.value(first.accessToken))
    expect(stale.expiresAt!.getTime()).toBeGreaterThan(Date.now())
    await new Promise((r) => setTimeout(r, 400))
    const e = await h.fail(h.engine.getToken("dvinci"))
    expect(e._tag).toBe("UpstreamRejected")
    expect(h.logs.some((l) => l.includes("serving the cached token"))).toBe(true)
  })

  it("emits recovered once the provider answers again", async () => {
    h = await makeHarness({ sandbox: { ttlSeconds: { dvinci: 2 } }, http: { retries: 0 } })
    const events: TokenEvent[] = []
    h.engine.subscribe((e) => events.push(e))
    h.sb.inject("dvinci", { type: "status", status: 503 })
    await h.fail(h.engine.getToken("dvinci"))
    await h.run(h.engine.getToken("dvinci"))
    expect(events.map((e) => e.type)).toEqual(["failed", "acquired", "recovered"])
  })
})
