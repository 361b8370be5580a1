/** Engine behaviour: single-flight, caching and the early-refresh margin, refresh with rotation, falling back to
 *  acquire when a refresh token is rejected, invalidation, serve-stale, and events. In-process: the provider's
 *  answers are its recorded fixtures (test/services/replay-harness.ts), time is TestClock. */
import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Fiber, Redacted } from "effect"
import { TestClock } from "effect/testing"
import type { TokenEvent } from "../src/events.ts"
import * as Replayed from "./services/replay-harness.ts"
import { form, recordedAt, statusAnswer, tokenAnswer } from "./services/replay-harness.ts"

const value = (r: { readonly accessToken: Redacted.Redacted<string> }) => Redacted.value(r.accessToken)
const events = (h: Replayed.Replayed) => {
  const seen: TokenEvent[] = []
  h.engine.subscribe((e) => seen.push(e))
  return seen
}
const start = TestClock.setTime(recordedAt)

describe("single-flight", () => {
  it.effect("1000 concurrent cold callers cause exactly one upstream request and all get the same token", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("cube", {}, 50)] })
      const all = yield* Effect.forkChild(
        Effect.all(
          Array.from({ length: 1000 }, () => h.engine.getToken("cube")),
          { concurrency: "unbounded" }
        )
      )
      yield* TestClock.adjust(50)
      const results = yield* Fiber.join(all)
      assert.strictEqual(h.replay.sent.length, 1)
      assert.strictEqual(new Set(results.map(value)).size, 1)
    })
  )

  it.effect("concurrent callers share the leader's failure instead of each asking", () =>
    Effect.gen(function* () {
      const h = yield* Replayed.make({ answers: [Replayed.statusAnswer("dvinci", 401, { error: "invalid_client" })] })
      const results = yield* Effect.all(
        Array.from({ length: 50 }, () => Effect.result(h.engine.getToken("dvinci"))),
        { concurrency: "unbounded" }
      )
      assert.isTrue(results.every((r) => r._tag === "Failure"))
      assert.strictEqual(h.replay.sent.length, 1)
    })
  )

  it.effect("interrupting the caller that started a renewal does not wedge the others (a client hanging up)", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("cube", {}, 300)] })
      const leader = yield* Effect.forkChild(Effect.timeoutOption(h.engine.getToken("cube"), "50 millis"))
      yield* TestClock.adjust(50)
      assert.strictEqual((yield* Fiber.join(leader))._tag, "None") // interrupted mid-renewal
      const follower = yield* Effect.forkChild(h.engine.getToken("cube"))
      yield* TestClock.adjust(250)
      assert.match((yield* Fiber.join(follower)).decision.action, /acquired|reused/)
      assert.strictEqual(h.replay.sent.length, 1)
      assert.strictEqual((yield* h.engine.getToken("cube")).decision.action, "reused")
    })
  )

  it.effect("connections with different inputs do not share a token", () =>
    Effect.gen(function* () {
      yield* start
      const cube = Replayed.fixture("cube", "success").inputs
      const h = yield* Replayed.make({
        answers: [tokenAnswer("cube", { access_token: "token-a" }), tokenAnswer("cube", { access_token: "token-b" })],
        extra: { cube2: { provider: "cube", inputs: { ...cube } } }
      })
      const [a, b] = yield* Effect.all([h.engine.getToken("cube"), h.engine.getToken("cube2")], { concurrency: 2 })
      assert.notStrictEqual(value(a), value(b))
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )
})

describe("expiry and the early-refresh margin", () => {
  it.effect("a token is renewed inside min(60 s, 10 % of its life), not before", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("dvinci", { access_token: "first", expires_in: 30 }),
          tokenAnswer("dvinci", { access_token: "second", expires_in: 30 })
        ]
      })
      const first = yield* h.engine.getToken("dvinci")
      assert.strictEqual((yield* h.engine.getToken("dvinci")).decision.action, "reused")
      // margin = 10 % of 30 s = 3 s (above the 1 s serve floor): at 26.99 s still fresh, at 27 s inside the margin.
      yield* TestClock.adjust(26_990)
      assert.strictEqual((yield* h.engine.getToken("dvinci")).decision.action, "reused")
      yield* TestClock.adjust(10)
      const renewed = yield* h.engine.getToken("dvinci")
      assert.strictEqual(renewed.decision.action, "acquired")
      assert.notStrictEqual(value(renewed), value(first))
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )

  it.effect("peek answers synchronously: nothing when cold, the token when fresh, nothing inside the margin", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("dvinci", { expires_in: 2 })] })
      assert.isUndefined(h.engine.peek("dvinci"))
      assert.isUndefined(h.engine.peek("no-such-connection"))
      const r = yield* h.engine.getToken("dvinci")
      const hit = h.engine.peek("dvinci")
      assert.strictEqual(hit?.decision.action, "reused")
      assert.strictEqual(hit?.decision.reason, "cached token valid for 2 s more")
      assert.strictEqual(value(hit!), value(r))
      yield* TestClock.adjust(1000)
      // The reason is rendered again once the seconds left change.
      assert.strictEqual(h.engine.peek("dvinci")?.decision.reason, "cached token valid for 1 s more")
      yield* TestClock.adjust(800) // margin: 10 % of 2 s
      assert.isUndefined(h.engine.peek("dvinci"))
    })
  )

  it.effect(
    "the repeated-hit lookups (peek, peekValue, peekAuthorization) agree with getToken through every change",
    () =>
      Effect.gen(function* () {
        yield* start
        const h = yield* Replayed.make({
          answers: [
            tokenAnswer("dvinci", { access_token: "tok-1", expires_in: 100 }),
            tokenAnswer("dvinci", { access_token: "tok-2", expires_in: 100 }),
            tokenAnswer("dvinci", { access_token: "tok-3", expires_in: 100 })
          ]
        })
        const agree = function* () {
          yield* h.engine.getToken("dvinci") // acquires when there is no token: a result of its own
          const viaEffect = yield* h.engine.getToken("dvinci") // a hit
          assert.strictEqual(viaEffect.decision.action, "reused")
          const auth = yield* h.engine.authorization("dvinci")
          for (let i = 0; i < 3; i++) {
            // Asked repeatedly, so the second and third answers come from the hot entry.
            assert.strictEqual(h.engine.peek("dvinci"), viaEffect)
            assert.strictEqual(h.engine.peekValue("dvinci"), value(viaEffect))
            const fast = h.engine.peekAuthorization("dvinci")
            assert.strictEqual(fast?.header, auth.header)
            assert.strictEqual(Redacted.value(fast!.value), Redacted.value(auth.value))
            assert.strictEqual(fast?.result, viaEffect)
          }
          return value(viaEffect)
        }
        assert.strictEqual(yield* agree(), "tok-1")
        // Invalidated: the hot entry must not outlive the token it holds.
        yield* h.engine.invalidate("dvinci")
        assert.isUndefined(h.engine.peek("dvinci"))
        assert.isUndefined(h.engine.peekValue("dvinci"))
        assert.strictEqual(yield* agree(), "tok-2")
        // Replaced by a forced renewal: the new token at once.
        yield* h.engine.getToken("dvinci", { force: true })
        assert.strictEqual(h.engine.peekValue("dvinci"), "tok-3")
        assert.strictEqual(yield* agree(), "tok-3")
        // Inside the refresh margin (10 % of 100 s): no longer fresh, for the hot entry as for getToken's rule.
        yield* TestClock.adjust(89_000)
        assert.strictEqual(h.engine.peekValue("dvinci"), "tok-3")
        yield* TestClock.adjust(2_000)
        assert.isUndefined(h.engine.peek("dvinci"))
        assert.isUndefined(h.engine.peekValue("dvinci"))
        assert.isUndefined(h.engine.peekAuthorization("dvinci"))
      })
  )

  it.effect("force renews a fresh token", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("usage-engine")] })
      yield* h.engine.getToken("usage-engine")
      const r = yield* h.engine.getToken("usage-engine", { force: true })
      assert.strictEqual(r.decision.action, "acquired")
      assert.match(r.decision.reason, /forced/)
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )

  it.effect("noCache neither reads nor writes the store", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("cube")] })
      yield* h.engine.getToken("cube", { noCache: true })
      yield* h.engine.getToken("cube", { noCache: true })
      assert.strictEqual(h.replay.sent.length, 2)
      assert.lengthOf(yield* h.store.list(), 0)
    })
  )
})

describe("refresh tokens", () => {
  it.effect(
    "brandbox: an expiring token is renewed with the refresh token, which rotates and is stored before return",
    () =>
      Effect.gen(function* () {
        yield* start
        const h = yield* Replayed.make({
          answers: [
            tokenAnswer("brandbox", { access_token: "first", refresh_token: "refresh-1", expires_in: 2 }),
            tokenAnswer("brandbox", { access_token: "second", refresh_token: "refresh-2", expires_in: 2 })
          ]
        })
        const first = yield* h.engine.getToken("brandbox")
        assert.strictEqual(form(h.replay.sent[0])["grant_type"], "password")
        yield* TestClock.adjust(2000)
        const seen = events(h)
        const r = yield* h.engine.getToken("brandbox")
        assert.strictEqual(r.decision.action, "refreshed")
        assert.deepInclude(form(h.replay.sent[1]), {
          grant_type: "refresh_token",
          client_id: "42",
          client_secret: "-",
          refresh_token: "refresh-1"
        })
        assert.notStrictEqual(value(r), value(first))
        assert.deepStrictEqual(
          seen.map((e) => e.type),
          ["rotated", "refreshed"]
        )
        // The rotated refresh token is what the store holds now.
        const [, entry] = (yield* h.store.list())[0]!
        assert.strictEqual(entry.token.refresh_token, "refresh-2")
      })
  )

  it.effect("a refresh without a new refresh token keeps the old one (RFC 6749 §6)", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("brandbox", { refresh_token: "refresh-1", expires_in: 2 }),
          tokenAnswer("brandbox", { access_token: "second", expires_in: 2, refresh_token: "" })
        ]
      })
      yield* h.engine.getToken("brandbox")
      yield* TestClock.adjust(2000)
      assert.strictEqual(
        (yield* h.engine.getToken("brandbox")).decision.reason,
        "cached token expired: redeemed the refresh token"
      )
      assert.strictEqual((yield* h.store.list())[0]![1].token.refresh_token, "refresh-1")
    })
  )

  it.effect("a rejected refresh token (invalid_grant) falls back to a full acquire", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("oauth2", { refresh_token: "refresh-1", expires_in: 2 }),
          statusAnswer("oauth2", 400, { error: "invalid_grant", error_description: "refresh token revoked" }),
          tokenAnswer("oauth2", { access_token: "again", expires_in: 60 })
        ]
      })
      yield* h.engine.getToken("oauth2")
      yield* TestClock.adjust(2000)
      const seen = events(h)
      const r = yield* h.engine.getToken("oauth2")
      assert.strictEqual(r.decision.action, "acquired")
      assert.match(r.decision.reason, /refresh token rejected/)
      assert.deepStrictEqual(
        h.replay.sent.map((q) => form(q)["grant_type"]),
        ["password", "refresh_token", "password"]
      )
      assert.include(
        seen.map((e) => e.type),
        "refresh_rejected"
      )
    })
  )

  it.effect("invalidate keeps the refresh token, so the next call refreshes instead of logging in again", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("brandbox", { refresh_token: "refresh-1" })] })
      yield* h.engine.getToken("brandbox")
      yield* h.engine.invalidate("brandbox")
      assert.strictEqual((yield* h.engine.getToken("brandbox")).decision.action, "refreshed")
      assert.deepStrictEqual(
        h.replay.sent.map((q) => form(q)["grant_type"]),
        ["password", "refresh_token"]
      )
    })
  )

  it.effect("invalidate without a refresh token forgets the token", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({ answers: [tokenAnswer("cube")] })
      yield* h.engine.getToken("cube")
      yield* h.engine.invalidate("cube")
      assert.strictEqual((yield* h.engine.getToken("cube")).decision.action, "acquired")
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )

  it.effect("invalidateIfCurrent leaves a token alone that another caller already replaced", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [tokenAnswer("cube", { access_token: "old" }), tokenAnswer("cube", { access_token: "new" })]
      })
      const old = yield* h.engine.getToken("cube")
      yield* h.engine.getToken("cube", { force: true })
      assert.isFalse(yield* h.engine.invalidateIfCurrent("cube", old.accessToken))
      assert.strictEqual(value(yield* h.engine.getToken("cube")), "new")
      assert.isTrue(yield* h.engine.invalidateIfCurrent("cube", Redacted.make("new")))
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )
})

describe("the serve floor: no token is handed out with less than min(1 s, a quarter of its life) left", () => {
  it.effect(
    "a 3 s token is renewed 0.75 s before its expiry (its 0.3 s margin is below the floor), on every path",
    () =>
      Effect.gen(function* () {
        yield* start
        const h = yield* Replayed.make({
          answers: [
            tokenAnswer("dvinci", { access_token: "first", expires_in: 3 }),
            tokenAnswer("dvinci", { access_token: "second", expires_in: 3 })
          ]
        })
        yield* h.engine.getToken("dvinci")
        yield* TestClock.adjust(2249)
        assert.strictEqual(h.engine.peekValue("dvinci"), "first")
        assert.strictEqual((yield* h.engine.getToken("dvinci")).decision.action, "reused")
        yield* TestClock.adjust(1)
        assert.isUndefined(h.engine.peek("dvinci"))
        assert.isUndefined(h.engine.peekAuthorization("dvinci"))
        const renewed = yield* h.engine.getToken("dvinci")
        assert.strictEqual(renewed.decision.action, "acquired")
        assert.strictEqual(value(renewed), "second")
        assert.strictEqual((yield* h.engine.cacheState("dvinci")).freshness, "fresh")
      })
  )

  it.effect("a 1 s token is served for its first three quarters only", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [tokenAnswer("dvinci", { access_token: "first", expires_in: 1 }), tokenAnswer("dvinci")]
      })
      yield* h.engine.getToken("dvinci")
      yield* TestClock.adjust(749)
      assert.strictEqual(h.engine.peekValue("dvinci"), "first")
      yield* TestClock.adjust(1)
      assert.isUndefined(h.engine.peek("dvinci"))
      assert.strictEqual((yield* h.engine.cacheState("dvinci")).freshness, "expired")
      assert.strictEqual((yield* h.engine.getToken("dvinci")).decision.action, "acquired")
    })
  )

  it.effect("a token that arrives below the floor (a slow exchange) is renewed once more, not served", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("dvinci", { access_token: "late", expires_in: 2 }, 1600),
          tokenAnswer("dvinci", { access_token: "timely", expires_in: 2 }, 100)
        ]
      })
      const f = yield* Effect.forkChild(h.engine.getToken("dvinci"))
      yield* TestClock.adjust(1700)
      const r = yield* Fiber.join(f)
      assert.strictEqual(value(r), "timely")
      assert.isAtLeast(r.expiresAt.getTime() - (yield* Clock.currentTimeMillis), 500)
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )

  it.effect("two tokens in a row below the floor: a typed failure, and neither is served", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("dvinci", { access_token: "late-1", expires_in: 2 }, 1700),
          tokenAnswer("dvinci", { access_token: "late-2", expires_in: 2 }, 1700)
        ]
      })
      const f = yield* Effect.forkChild(Effect.flip(h.engine.getToken("dvinci")))
      yield* TestClock.adjust(3400)
      const e = yield* Fiber.join(f)
      assert.strictEqual(e._tag, "UpstreamRejected")
      assert.strictEqual(e._tag === "UpstreamRejected" && e.code, "below_serve_floor")
      assert.match(e.message, /300 ms left when it arrived, less than its serve floor of 500 ms/)
      assert.isUndefined(h.engine.peek("dvinci"))
      assert.strictEqual(h.replay.sent.length, 2)
    })
  )

  it.effect("a refresh answered below the floor keeps its rotated refresh token: the retry redeems the new one", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [
          tokenAnswer("brandbox", { access_token: "first", refresh_token: "refresh-1", expires_in: 3 }),
          tokenAnswer("brandbox", { access_token: "late", refresh_token: "refresh-2", expires_in: 2 }, 1700),
          tokenAnswer("brandbox", { access_token: "timely", refresh_token: "refresh-3", expires_in: 2 })
        ]
      })
      yield* h.engine.getToken("brandbox")
      yield* TestClock.adjust(2250)
      const f = yield* Effect.forkChild(h.engine.getToken("brandbox"))
      yield* TestClock.adjust(1700)
      const r = yield* Fiber.join(f)
      assert.strictEqual(value(r), "timely")
      assert.deepStrictEqual(
        h.replay.sent.map((q) => [form(q)["grant_type"], form(q)["refresh_token"]]),
        [
          ["password", undefined],
          ["refresh_token", "refresh-1"],
          ["refresh_token", "refresh-2"]
        ]
      )
      assert.strictEqual((yield* h.store.list())[0]![1].token.refresh_token, "refresh-3")
    })
  )

  it.effect(
    "a refresh whose JWT exp passed on arrival keeps its rotated refresh token (never redeems a spent one)",
    () =>
      Effect.gen(function* () {
        yield* start
        const jwt = (exp: number) =>
          [{ alg: "none" }, { exp }].map((o) => Buffer.from(JSON.stringify(o)).toString("base64url")).join(".") + "."
        const h = yield* Replayed.make({
          answers: [
            tokenAnswer("brandbox", { access_token: "first", refresh_token: "refresh-1", expires_in: 3 }),
            // Sent at 2.25 s, answered at 3.25 s; the recorded Date header reads 0 s, so the measured skew is -3.25 s
            // and the whole-second exp of 0 s is 3.25 s on this clock: expired as it arrives.
            tokenAnswer(
              "brandbox",
              { access_token: jwt(recordedAt / 1000), refresh_token: "refresh-2", expires_in: 2 },
              1000
            ),
            tokenAnswer("brandbox", { access_token: "timely", refresh_token: "refresh-3", expires_in: 2 })
          ]
        })
        yield* h.engine.getToken("brandbox")
        yield* TestClock.adjust(2250)
        const f = yield* Effect.forkChild(h.engine.getToken("brandbox"))
        yield* TestClock.adjust(1000)
        const r = yield* Fiber.join(f)
        assert.strictEqual(value(r), "timely")
        assert.deepStrictEqual(
          h.replay.sent.map((q) => form(q)["refresh_token"]),
          [undefined, "refresh-1", "refresh-2"]
        )
      })
  )
})

describe("an unusable answer that carries a new refresh token", () => {
  for (const [what, answer] of [
    ["an expiry already past (expires_in: 0)", { access_token: "dead", refresh_token: "refresh-2", expires_in: 0 }],
    ["an expiry that cannot be read", { access_token: "odd", refresh_token: "refresh-2", expires_in: "soon" }],
    ["an empty access token", { access_token: "", refresh_token: "refresh-2", expires_in: 2 }]
  ] as const)
    it.effect(`${what}: ResponseInvalid, and the next renewal redeems the new refresh token, not the spent one`, () =>
      Effect.gen(function* () {
        yield* start
        const h = yield* Replayed.make({
          answers: [
            tokenAnswer("brandbox", { access_token: "first", refresh_token: "refresh-1", expires_in: 3 }),
            tokenAnswer("brandbox", answer),
            tokenAnswer("brandbox", { access_token: "timely", refresh_token: "refresh-3", expires_in: 3 })
          ]
        })
        yield* h.engine.getToken("brandbox")
        yield* TestClock.adjust(2900)
        const failed = yield* Effect.flip(h.engine.getToken("brandbox"))
        assert.strictEqual(failed._tag, "ResponseInvalid")
        assert.notInclude(JSON.stringify(failed) + failed.message, "refresh-2")
        const r = yield* h.engine.getToken("brandbox")
        assert.strictEqual(value(r), "timely")
        assert.deepStrictEqual(
          h.replay.sent.map((q) => form(q)["refresh_token"]),
          [undefined, "refresh-1", "refresh-2"]
        )
      })
    )
})

describe("serve stale while the provider fails", () => {
  it.effect("serves a token inside its margin when renewal fails, and never one below its serve floor", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [tokenAnswer("dvinci", { expires_in: 30 }), statusAnswer("dvinci", 503), statusAnswer("dvinci", 503)],
        http: { retries: 0 }
      })
      const first = yield* h.engine.getToken("dvinci")
      // Inside the 3 s margin, 2.5 s before expiry: served stale.
      yield* TestClock.adjust(27_500)
      const stale = yield* h.logged(h.engine.getToken("dvinci"))
      assert.strictEqual(stale.decision.action, "served_stale")
      assert.strictEqual(value(stale), value(first))
      assert.isAbove(stale.expiresAt.getTime(), (yield* Clock.currentTimeMillis) + 1000)
      // 1 s before expiry: still valid for real, but below the serve floor, so never handed out.
      yield* TestClock.adjust(1500)
      const e = yield* Effect.flip(h.engine.getToken("dvinci"))
      assert.strictEqual(e._tag, "UpstreamRejected")
      assert.isTrue(h.logs.some((l) => l.includes("serving the cached token")))
    })
  )

  it.effect("emits recovered once the provider answers again", () =>
    Effect.gen(function* () {
      yield* start
      const h = yield* Replayed.make({
        answers: [statusAnswer("dvinci", 503), tokenAnswer("dvinci")],
        http: { retries: 0 }
      })
      const seen = events(h)
      yield* Effect.flip(h.engine.getToken("dvinci"))
      yield* h.engine.getToken("dvinci")
      assert.deepStrictEqual(
        seen.map((e) => e.type),
        ["failed", "acquired", "recovered"]
      )
    })
  )
})
