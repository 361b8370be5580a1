/** Keeps tokens flowing when a shared store (Redis) is unreachable: a wrapper that answers from a process-local
 *  fallback store (memory) with local single-flight while the primary fails, and goes back to the primary as soon
 *  as it answers again.
 *
 *  - A failing primary call is answered by the fallback instead, so no request fails only because the shared store
 *    is down. The switch is logged once per outage (a warning) and `health()` reports `degraded`.
 *  - While degraded, the primary is probed (its `health()`) at most once per `probeIntervalMs`, triggered by the
 *    next call (beside it, so the call never waits) or health check (which waits for the answer).
 *  - On recovery the entries kept meanwhile are copied to the primary where it has none or an older one (by
 *    `obtained_at`), so a refresh token rotated during the outage is not lost; then the fallback is emptied.
 *  - `withLock` falls back to the local lock only when taking the primary lock failed and the primary does not answer
 *    a health check, never after the locked effect started: a failure of the effect itself is the caller's.
 *  - While degraded, `list` and `clear` see only what this process kept. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import { StoreError } from "./token-error.ts"
import { makeMemory, type Entry, type StoreHealth, type TokenStoreShape } from "./token-store.ts"

export interface ResilientOptions {
  /** Where tokens go while the primary is down (default: a fresh memory store). */
  readonly fallback?: TokenStoreShape | undefined
  /** While degraded, the least time between two checks of whether the primary is back (default 1000 ms). */
  readonly probeIntervalMs?: number | undefined
}

interface Outage {
  readonly since: number
  readonly reason: string
}

export const make = (primary: TokenStoreShape, opts: ResilientOptions = {}): TokenStoreShape => {
  const fallback = opts.fallback ?? makeMemory()
  const probeIntervalMs = opts.probeIntervalMs ?? 1000
  let outage: Outage | undefined
  let lastProbe = 0
  let probing = false

  const degrade = (e: StoreError): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      if (outage) return Effect.void
      outage = { since: now, reason: `${e.operation}: ${e.reason}` }
      lastProbe = now
      return Effect.logWarning(
        `token store ${primary.name} unreachable (${e.operation}: ${e.reason}); serving tokens from ${fallback.name} in this process until it answers again`
      ).pipe(Effect.annotateLogs({ store: primary.name }))
    })

  /** Copies what the fallback holds to the primary unless the primary has something newer; drops it from the fallback. */
  const drain: Effect.Effect<void, StoreError> = Effect.gen(function* () {
    for (const [key, kept] of yield* fallback.list()) {
      const current = yield* primary.get(key)
      if (!current || current.token.obtained_at < kept.token.obtained_at) yield* primary.set(key, kept)
      // Only forget it if nobody replaced it meanwhile; a newer one is copied by the next pass.
      if ((yield* fallback.get(key)) === kept) yield* fallback.delete(key)
    }
  })

  const recover: Effect.Effect<void> = Effect.gen(function* () {
    yield* drain
    const was = outage
    outage = undefined
    yield* drain // entries written while the first pass ran
    const now = yield* Clock.currentTimeMillis
    yield* Effect.logInfo(
      `token store ${primary.name} reachable again after ${Math.round((now - (was?.since ?? now)) / 1000)} s; back to shared tokens`
    ).pipe(Effect.annotateLogs({ store: primary.name }))
  }).pipe(
    Effect.catch((e: StoreError) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        outage = { since: outage?.since ?? now, reason: `${e.operation}: ${e.reason}` }
      })
    )
  )

  const due = (now: number) => outage !== undefined && !probing && now - lastProbe >= probeIntervalMs

  /** Checks whether the primary is back, and recovers if so. */
  const probe: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    if (!due(now)) return Effect.void
    probing = true
    lastProbe = now
    return primary.health().pipe(
      Effect.flatMap((h) =>
        h.status === "ok"
          ? recover
          : Effect.sync(() => {
              if (outage) outage = { ...outage, reason: h.detail }
            })
      ),
      Effect.ensuring(
        Effect.sync(() => {
          probing = false
        })
      )
    )
  })

  // A request never waits for the probe (a half-dead Redis can take a command timeout to answer): it runs beside it.
  const probeBeside: Effect.Effect<void> = Effect.flatMap(Clock.currentTimeMillis, (now) =>
    due(now) ? Effect.asVoid(Effect.forkDetach(probe)) : Effect.void
  )

  /** The primary's answer, or the fallback's when the primary is (or just became) unreachable. */
  const route = <A>(
    onPrimary: () => Effect.Effect<A, StoreError>,
    onFallback: () => Effect.Effect<A, StoreError>
  ): Effect.Effect<A, StoreError> =>
    Effect.andThen(
      probeBeside,
      Effect.suspend(() =>
        outage
          ? onFallback()
          : onPrimary().pipe(Effect.catchTag("StoreError", (e) => Effect.andThen(degrade(e), onFallback())))
      )
    )

  return {
    name: primary.name,
    // The engine keys entries for the primary; the fallback only holds them meanwhile under the same keys.
    keySecret: primary.keySecret,
    get: (key) =>
      route(
        () => primary.get(key),
        () => fallback.get(key)
      ),
    set: (key, entry: Entry) =>
      route(
        () => primary.set(key, entry),
        () => fallback.set(key, entry)
      ),
    delete: (key) =>
      route(
        () => primary.delete(key),
        () => fallback.delete(key)
      ),
    list: () =>
      route(
        () => primary.list(),
        () => fallback.list()
      ),
    clear: () =>
      route(
        () => primary.clear(),
        () => fallback.clear()
      ),
    withLock: (key, effect) =>
      Effect.andThen(
        probeBeside,
        Effect.suspend(() => {
          if (outage) return fallback.withLock(key, effect)
          let started = false
          return primary
            .withLock(
              key,
              Effect.suspend(() => {
                started = true
                return effect
              })
            )
            .pipe(
              // A lock that could not be taken because the primary is down: take the local one. A primary that answers
              // (say, a lock wait that timed out) is no outage, so its failure stands.
              Effect.catch((e) =>
                !started && isStoreError(e)
                  ? Effect.flatMap(primary.health(), (h) =>
                      h.status === "ok" ? Effect.fail(e) : Effect.andThen(degrade(e), fallback.withLock(key, effect))
                    )
                  : Effect.fail(e)
              )
            )
        })
      ),
    health: () =>
      Effect.gen(function* () {
        yield* probe
        if (!outage) {
          const h = yield* primary.health()
          if (h.status === "ok") return h
          yield* degrade(new StoreError({ store: primary.name, operation: "health", reason: h.detail }))
        }
        return degradedHealth(primary.name, fallback.name, outage!)
      })
  }
}

const isStoreError = (e: unknown): e is StoreError => e instanceof StoreError

const degradedHealth = (primary: string, fallback: string, o: Outage): StoreHealth => ({
  status: "degraded",
  detail: `${primary} unreachable since ${new Date(o.since).toISOString()} (${o.reason}); serving from ${fallback} in this process`
})
