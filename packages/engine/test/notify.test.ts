/** Lifecycle notifications: which engine events become webhooks (a failure once until it recovers), the body a
 *  receiver gets, the outbox's endpoint names, and the retry Schedule's delays. */
import { Duration, Effect, Option } from "effect"
import { describe, expect, it } from "vitest"
import type { TokenEvent } from "../src/events.ts"
import * as Notify from "../src/notify.ts"
import * as RetryDelay from "../src/retry-delay.ts"

const event = (type: TokenEvent["type"], connection = "crm", extra: Partial<TokenEvent> = {}): TokenEvent => ({
  type,
  connection,
  provider: "crm-com",
  at: Date.UTC(2025, 0, 2, 3, 4, 5),
  reason: "r",
  ...extra
})

describe("Notify.makeTracker", () => {
  it("tells a failure once per connection until it recovers, and passes recovered, rotated and needs_reauth", () => {
    const track = Notify.makeTracker()
    const seen = [
      event("failed"),
      event("failed"),
      event("served_stale"),
      event("failed", "other"),
      event("refresh_rejected"),
      event("recovered"),
      event("failed"),
      event("acquired"),
      event("failed"),
      event("rotated"),
      event("needs_reauth"),
      event("reused"),
      event("invalidated")
    ].map((e) => track(e) ?? "-")
    expect(seen).toEqual([
      "refresh_failed",
      "-",
      "-",
      "refresh_failed",
      "-",
      "recovered",
      "refresh_failed",
      "-",
      "refresh_failed",
      "rotated",
      "needs_reauth",
      "-",
      "-"
    ])
  })
})

describe("Notify.body", () => {
  it("is {type, timestamp, data} with the connection, provider, tags, reason and the failure's code", () => {
    const failed = Notify.notice(
      "refresh_failed",
      event("failed", "crm", { error: "UpstreamRejected" }),
      { t: "a" },
      "why"
    )
    expect(failed.id).toMatch(/^msg_[0-9a-f]{32}$/)
    expect(JSON.parse(Notify.body(failed))).toEqual({
      type: "connection.refresh_failed",
      timestamp: "2025-01-02T03:04:05.000Z",
      data: { connection: "crm", provider: "crm-com", tags: { t: "a" }, reason: "why", error: "UpstreamRejected" }
    })
    const rotated = Notify.notice("rotated", event("rotated", "crm", { error: "x" }), {}, "new refresh token")
    expect(JSON.parse(Notify.body(rotated)).data).toEqual({
      connection: "crm",
      provider: "crm-com",
      tags: {},
      reason: "new refresh token"
    })
    expect(Notify.notice("rotated", event("rotated"), {}, "").id).not.toBe(rotated.id)
  })

  it("names an endpoint by a digest that holds no part of its URL", () => {
    const id = Notify.endpointId("https://hooks.example.com/T0/secret-token-1234")
    expect(id).toMatch(/^[0-9a-f]{32}$/)
    expect(id).toBe(Notify.endpointId("https://hooks.example.com/T0/secret-token-1234"))
    expect(id).not.toBe(Notify.endpointId("https://hooks.example.com/T0/secret-token-1235"))
  })
})

describe("Notify.retryPolicy", () => {
  it("waits 10 s doubling up to 4 h, jittered by 20 %, and gives up after 16 attempts", async () => {
    const delays = await Effect.runPromise(
      Effect.forEach(
        Array.from({ length: 16 }, (_, i) => i + 1),
        (attempts) => Effect.map(RetryDelay.after(Notify.retryPolicy, attempts, 0), Option.map(Duration.toSeconds))
      )
    )
    const expected = [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10240, 14400, 14400, 14400, 14400]
    for (const [i, base] of expected.entries()) {
      const d = Option.getOrThrow(delays[i]!)
      expect(d).toBeGreaterThanOrEqual(base * 0.8)
      expect(d).toBeLessThanOrEqual(base * 1.2)
    }
    expect(Option.isNone(delays[15]!)).toBe(true)
    const total = expected.reduce((a, b) => a + b, 0) / 3600
    expect(total).toBeGreaterThan(21)
    expect(total).toBeLessThan(22)
  })
})
