/** The fallback wrapper the Redis store runs behind (ResilientStore), over a fake primary that can be switched
 *  off: no request fails while it is down, one warning per outage, `degraded` health, recovery that copies what was
 *  kept without overwriting newer shared entries, and lock failures that are not outages staying failures. Needs no
 *  Redis. */
import { Effect, Logger, References } from "effect"
import { describe, expect, it } from "vitest"
import * as ResilientStore from "../src/resilient-store.ts"
import { StoreError } from "../src/token-error.ts"
import { makeMemory, type Entry, type TokenStoreShape } from "../src/token-store.ts"

const entry = (connection: string, obtainedAt: number): Entry => ({
  connection,
  provider: "cube",
  token: {
    v: 1,
    access_token: `at-${connection}-${obtainedAt}`,
    token_type: "Bearer",
    expires_at: obtainedAt + 60_000,
    obtained_at: obtainedAt,
    expiry_source: "expires_in"
  }
})

/** A memory store that fails every call while `up` is false, like a Redis store whose server went away. */
const switchable = (opts: { lockFails?: StoreError } = {}) => {
  const inner = makeMemory()
  const state = { up: true, calls: 0 }
  const guard = <A>(eff: Effect.Effect<A, StoreError>) =>
    Effect.suspend(() => {
      state.calls++
      return state.up ? eff : Effect.fail(new StoreError({ store: "fake", operation: "call", reason: "ECONNREFUSED" }))
    })
  const store: TokenStoreShape = {
    name: "fake",
    keySecret: inner.keySecret,
    get: (k) => guard(inner.get(k)),
    set: (k, e) => guard(inner.set(k, e)),
    delete: (k) => guard(inner.delete(k)),
    list: () => guard(inner.list()),
    clear: () => guard(inner.clear()),
    withLock: (k, eff) =>
      opts.lockFails ? Effect.fail(opts.lockFails) : Effect.andThen(guard(Effect.void), inner.withLock(k, eff)),
    health: () =>
      Effect.succeed(state.up ? { status: "ok", detail: "fake" } : { status: "down", detail: "fake: ECONNREFUSED" })
  }
  return { store, state, inner }
}

const logged: string[] = []
const run = <A, E>(eff: Effect.Effect<A, E>) =>
  Effect.runPromise(
    eff.pipe(
      Effect.provide(
        Logger.layer([
          Logger.make<unknown, void>((o) => {
            logged.push(`${String(o.logLevel)} ${JSON.stringify(o.message)}`)
          })
        ])
      ),
      Effect.provideService(References.MinimumLogLevel, "Trace")
    )
  )
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe("ResilientStore", () => {
  it("serves from memory while the primary fails, warns once, reports degraded, and recovers", async () => {
    logged.length = 0
    const { store: primary, state, inner } = switchable()
    const store = ResilientStore.make(primary, { probeIntervalMs: 20 })
    await run(store.set("a", entry("a", 1)))
    state.up = false
    expect(await run(store.get("a"))).toBeUndefined() // the primary's copy is out of reach
    await run(
      Effect.all([store.set("b", entry("b", 2)), store.set("a", entry("a", 5)), store.set("c", entry("c", 3))], {
        concurrency: "unbounded"
      })
    )
    expect(await run(store.get("b"))).toEqual(entry("b", 2))
    expect(await run(store.withLock("b", Effect.succeed(42)))).toBe(42)
    expect((await run(store.health())).status).toBe("degraded")
    expect(logged.filter((l) => l.startsWith("Warn")).length).toBe(1)
    // Meanwhile another instance wrote a newer "c" to the primary.
    await run(inner.set("c", entry("c", 9)))
    state.up = true
    await sleep(25)
    expect(await run(store.health())).toEqual({ status: "ok", detail: "fake" })
    expect(await run(inner.get("a"))).toEqual(entry("a", 5)) // newer than the primary's: copied
    expect(await run(inner.get("b"))).toEqual(entry("b", 2)) // missing there: copied
    expect(await run(inner.get("c"))).toEqual(entry("c", 9)) // the primary's is newer: kept
    expect(logged.some((l) => l.startsWith("Info") && l.includes("reachable again"))).toBe(true)
    const before = state.calls
    await run(store.set("d", entry("d", 4)))
    expect(state.calls).toBeGreaterThan(before) // writes go to the primary again
    expect(await run(inner.get("d"))).toEqual(entry("d", 4))
  })

  it("a call during an outage does not wait for the probe", async () => {
    const { store: primary, state } = switchable()
    const slow: TokenStoreShape = {
      ...primary,
      health: () => Effect.andThen(Effect.sleep("1 second"), primary.health())
    }
    const store = ResilientStore.make(slow, { probeIntervalMs: 0 })
    state.up = false
    await run(store.set("a", entry("a", 1)))
    const t = Date.now()
    expect(await run(store.get("a"))).toEqual(entry("a", 1))
    expect(Date.now() - t).toBeLessThan(500) // the probe takes a second
  })

  it("a lock failure while the primary answers (say, a lock wait that timed out) is not an outage", async () => {
    const lockFails = new StoreError({
      store: "fake",
      operation: "lock",
      reason: "another instance held the lock for more than 60000 ms"
    })
    const { store: primary } = switchable({ lockFails })
    const store = ResilientStore.make(primary)
    let ran = false
    const failure = await run(
      Effect.flip(
        store.withLock(
          "k",
          Effect.sync(() => {
            ran = true
          })
        )
      )
    )
    expect(failure).toBe(lockFails)
    expect(ran).toBe(false)
    expect((await run(store.health())).status).toBe("ok")
  })

  it("a failure of the locked effect itself is the caller's, even a StoreError", async () => {
    const { store: primary } = switchable()
    const store = ResilientStore.make(primary)
    const own = new StoreError({ store: "other", operation: "x", reason: "y" })
    let runs = 0
    const failure = await run(
      Effect.flip(
        store.withLock(
          "k",
          Effect.andThen(
            Effect.sync(() => {
              runs++
            }),
            Effect.fail(own)
          )
        )
      )
    )
    expect(failure).toBe(own)
    expect(runs).toBe(1)
    expect((await run(store.health())).status).toBe("ok")
  })
})
