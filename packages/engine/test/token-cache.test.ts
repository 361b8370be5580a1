/** TokenCache on its own: a token is stored before it is kept here, invalidation keeps a refresh token (expired),
 *  single-flight shares one run per key, and eviction forgets a connection here and in the store. */
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Redacted } from "effect"
import { TestClock } from "effect/testing"
import * as Config from "../src/config.ts"
import type { Connection } from "../src/connection.ts"
import * as TokenCache from "../src/token-cache.ts"
import type { Token } from "../src/token.ts"
import { makeMemory } from "../src/token-store.ts"

const connection = Effect.gen(function* () {
  const config = yield* Effect.orDie(
    Config.fromObject({
      connections: {
        crm: {
          provider: "cube",
          inputs: { client_id: "c", client_secret: "s", tenant: "t", token_url: "https://idp.invalid/token" }
        }
      }
    })
  )
  return config.connections.get("crm")!
})

const token = (access: string, refresh?: string): Token => ({
  accessToken: Redacted.make(access),
  refreshToken: refresh === undefined ? undefined : Redacted.make(refresh),
  tokenType: "Bearer",
  expiresAt: 60_000,
  obtainedAt: 0,
  expirySource: "expires_in"
})

const setup = Effect.map(connection, (c: Connection) => {
  const store = makeMemory()
  return { c, store, cache: TokenCache.make(store) }
})

describe("TokenCache", () => {
  it.effect("save stores, then keeps; forget keeps a refresh token in the store, expired, and drops the rest", () =>
    Effect.gen(function* () {
      const { c, store, cache } = yield* setup
      yield* cache.save(c, token("a1", "r1"))
      assert.strictEqual(Redacted.value(cache.local(c)!.accessToken), "a1")
      yield* TestClock.adjust(1000)
      yield* cache.forget(c, yield* cache.entry(c))
      assert.isUndefined(cache.local(c))
      const kept = (yield* store.get(cache.key(c)))!.token
      assert.deepStrictEqual([kept.refresh_token, kept.expires_at], ["r1", 999])
      yield* cache.save(c, token("a2"))
      yield* cache.forget(c, yield* cache.entry(c))
      assert.isUndefined(yield* store.get(cache.key(c)))
    })
  )

  it.effect("single-flight: callers of one key share one run, which outlives the caller that started it", () =>
    Effect.gen(function* () {
      const { c, cache } = yield* setup
      let runs = 0
      const gate = yield* Deferred.make<void>()
      const work = Effect.andThen(
        Effect.sync(() => ++runs),
        Effect.as(Deferred.await(gate), "done")
      )
      const leader = yield* Effect.forkChild(cache.singleFlight(c, (k) => k, work))
      yield* Effect.yieldNow
      const follower = yield* Effect.forkChild(cache.singleFlight(c, (k) => k, work))
      yield* Effect.yieldNow
      yield* Fiber.interrupt(leader)
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(follower), "done")
      assert.strictEqual(runs, 1)
    })
  )

  it.effect("evict forgets the connection here and in the store", () =>
    Effect.gen(function* () {
      const { c, store, cache } = yield* setup
      yield* cache.save(c, token("a1"))
      const key = cache.key(c)
      cache.evict(c.name)
      assert.isUndefined(cache.local(c))
      yield* Effect.yieldNow
      assert.isUndefined(yield* store.get(key))
    })
  )
})
