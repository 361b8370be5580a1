/** Background refresh: the server renews tokens before their early-refresh margin, so that callers are answered
 *  from the cache and never wait on a provider, and keeps unused refresh tokens alive.
 *
 *  - Which connections: those a caller used (a token served, acquired or refreshed for a caller) within
 *    `server.background_refresh.idle_after_seconds` are kept warm; a connection with a refresh token is also kept
 *    alive on its manifest's `refresh.keep_alive_seconds` (seeded at start from the token store's entries that hold
 *    one). Nothing else: 10 000 stored connections nobody calls cost nothing.
 *  - When (`plan`, a pure function): a warm token `lead_seconds` before its margin begins (at most half of the time
 *    before it) plus a random jitter (at most a quarter), so instances sharing a store wake apart; a refresh token
 *    `keep_alive_seconds` after its last renewal. After a failure, the next try waits on a Schedule (5 s doubling
 *    up to 5 min, jittered).
 *  - How: under the store's lock for the connection (`background:<key>`, so across processes sharing Redis one at
 *    a time), the store is read again: a token another instance renewed meanwhile is left alone (`skipped`);
 *    otherwise the renewal is forced through the engine (refresh flow when possible), at most `concurrency` at
 *    once and `per_provider_per_second` per provider.
 *  - Time is read only through Effect's Clock, and waits are Effect sleeps. */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Semaphore from "effect/Semaphore"
import {
  Expiry,
  RetryDelay,
  type Config,
  type Engine,
  type Events,
  type Manifest,
  type TokenStore
} from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import type * as Metrics from "./metrics.ts"

/** What the store says about a connection's token (Engine `cacheState`), in epoch ms. */
export interface TokenState {
  readonly obtainedAt: number
  readonly expiresAt: number
  readonly hasRefreshToken: boolean
}

export interface Plan {
  /** Epoch ms. */
  readonly at: number
  readonly kind: "warm" | "keep_alive"
  /** The token the plan was made for (undefined: none cached): a different one at renewal time was renewed by
   *  someone else. */
  readonly obtainedAt: number | undefined
}

export interface PlanInput {
  readonly state: TokenState | undefined
  readonly manifest: Manifest.Manifest
  readonly settings: Config.BackgroundRefreshSettings
  /** When a caller last used the connection (epoch ms), if ever. */
  readonly lastUsed: number | undefined
  readonly now: number
  /** In [0, 1): the jitter's share. */
  readonly random: number
}

const isWarm = (lastUsed: number | undefined, now: number, s: Config.BackgroundRefreshSettings) =>
  lastUsed !== undefined && now - lastUsed < s.idleAfterSeconds * 1000

/** The next renewal of one connection, or none (not used lately and no refresh token to keep alive). */
export const plan = (i: PlanInput): Plan | undefined => {
  const { state, manifest, settings: s, now, random } = i
  const plans: Plan[] = []
  if (isWarm(i.lastUsed, now, s)) {
    if (!state) plans.push({ at: now, kind: "warm", obtainedAt: undefined })
    else {
      const marginStart = state.expiresAt - Expiry.marginMs(manifest, state.expiresAt - state.obtainedAt)
      const before = Math.max(0, marginStart - state.obtainedAt)
      const lead = Math.min(s.leadSeconds * 1000, before / 2) + random * Math.min(s.jitterSeconds * 1000, before / 4)
      plans.push({ at: marginStart - lead, kind: "warm", obtainedAt: state.obtainedAt })
    }
  }
  const keepAliveMs = manifest.refresh.keepAliveSeconds * 1000
  if (state?.hasRefreshToken && manifest.flows.refresh && keepAliveMs > 0) {
    const jitter = random * Math.min(s.jitterSeconds * 1000, keepAliveMs / 10)
    plans.push({ at: state.obtainedAt + keepAliveMs + jitter, kind: "keep_alive", obtainedAt: state.obtainedAt })
  }
  return plans.sort((a, b) => a.at - b.at)[0]
}

/** Spaces renewals at one provider at least `1 / perSecond` apart. */
export const makeLimiter = () => {
  const next = new Map<string, number>()
  return (provider: string, perSecond: number): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const at = Math.max(now, next.get(provider) ?? 0)
      next.set(provider, at + 1000 / perSecond)
      return at > now ? Effect.sleep(Duration.millis(at - now)) : Effect.void
    })
}

/** After a failed renewal: 5 s doubling up to 5 min, jittered, for as long as it fails. */
export const failurePolicy: Schedule.Schedule<unknown> = Schedule.exponential("5 seconds", 2).pipe(
  Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.minutes(5)))),
  Schedule.jittered
)

export interface Options {
  /** The current generation's engine and settings (they change on reload). */
  readonly engine: () => Engine.EngineShape
  readonly settings: () => Config.BackgroundRefreshSettings
  /** The shared token store: its lock makes one instance renew each token. */
  readonly store: TokenStore.TokenStoreShape
  readonly log: AccessLog.LogSink
  readonly metrics: Metrics.Metrics
  /** What renewals run with (telemetry.ts: a trace per background renewal). */
  readonly context: Context.Context<never>
  readonly failurePolicy?: Schedule.Schedule<unknown> | undefined
}

export interface BackgroundRefresh {
  readonly onEngineEvent: Events.Listener
  /** Watches every connection the token store holds a refresh token for (their keep-alive). */
  readonly seed: () => Promise<void>
  /** Connections watched now. */
  readonly watched: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

type Outcome = "renewed" | "skipped" | "idle" | "failed"

const used = new Set<Events.EventType>(["reused", "acquired", "refreshed", "served_stale"])

export const start = (options: Options): BackgroundRefresh => {
  const { store, log, metrics } = options
  const policy = options.failurePolicy ?? failurePolicy
  const run = Effect.runForkWith(options.context)
  const lastUsed = new Map<string, number>()
  const watching = new Map<string, Fiber.Fiber<void>>()
  // Connections this refresher is renewing now: their events are not a caller's use.
  const ours = new Set<string>()
  const limiter = makeLimiter()
  const permits = Semaphore.makeUnsafe(options.settings().concurrency)
  // Plans read the store; many at once (a seed of thousands) would flood it.
  const planning = Semaphore.makeUnsafe(16)
  let closed = false

  const stateOf = (c: Engine.CacheState): TokenState | undefined =>
    c.cached && c.obtainedAt && c.expiresAt
      ? {
          obtainedAt: c.obtainedAt.getTime(),
          expiresAt: c.expiresAt.getTime(),
          hasRefreshToken: c.hasRefreshToken === true
        }
      : undefined

  const planNext = (name: string, failures: number) =>
    Effect.gen(function* () {
      const settings = options.settings()
      if (!settings.enabled) return undefined
      const engine = options.engine()
      const c = yield* engine.connection(name)
      const state = stateOf(yield* engine.cacheState(name))
      const now = yield* Clock.currentTimeMillis
      const p = plan({
        state,
        manifest: c.manifest,
        settings,
        lastUsed: lastUsed.get(name),
        now,
        random: yield* Random.next
      })
      if (!p || failures === 0) return p && { plan: p, provider: c.manifest.id }
      const backoff = yield* RetryDelay.after(policy, failures, now)
      const after = now + Option.match(backoff, { onNone: () => 300_000, onSome: Duration.toMillis })
      return { plan: { ...p, at: Math.max(p.at, after) }, provider: c.manifest.id }
    }).pipe(Semaphore.withPermits(planning, 1))

  const renew = (name: string, p: Plan, provider: string): Effect.Effect<Outcome> =>
    Effect.gen(function* () {
      const engine = options.engine()
      const key = (yield* engine.cacheState(name)).key
      return yield* store.withLock(
        `background:${key}`,
        Effect.gen(function* () {
          // The store's view now: another instance may have renewed while this one slept or waited for the lock.
          const state = stateOf(yield* engine.cacheState(name))
          if (state?.obtainedAt !== p.obtainedAt) return "skipped" as const
          const now = yield* Clock.currentTimeMillis
          if (p.kind === "warm" && !isWarm(lastUsed.get(name), now, options.settings())) return "idle" as const
          const settings = options.settings()
          yield* limiter(provider, settings.perProviderPerSecond)
          // A reload may have changed it.
          yield* Semaphore.resize(permits, settings.concurrency)
          ours.add(name)
          const r = yield* Semaphore.withPermits(
            permits,
            1
          )(engine.getToken(name, { force: true })).pipe(Effect.ensuring(Effect.sync(() => ours.delete(name))))
          return r.decision.action === "served_stale" ? ("failed" as const) : ("renewed" as const)
        })
      )
    }).pipe(
      Effect.catch((e) =>
        Effect.sync(() => {
          AccessLog.info(log, "background renewal failed", { connection: name, provider, code: e._tag })
          return "failed" as const
        })
      ),
      Effect.tap((outcome) => Effect.annotateCurrentSpan("tessera.outcome", outcome)),
      Effect.withSpan("tessera.background_renewal", {
        attributes: { "tessera.connection": name, "tessera.provider": provider, "tessera.kind": p.kind },
        root: true
      })
    )

  const watch = (name: string) =>
    Effect.gen(function* () {
      let failures = 0
      for (;;) {
        // A connection that went away (or a store that cannot say) ends the watch; the next use starts another.
        const planned = yield* planNext(name, failures).pipe(Effect.catch(() => Effect.succeed(undefined)))
        if (!planned) return
        const now = yield* Clock.currentTimeMillis
        if (planned.plan.at > now) yield* Effect.sleep(Duration.millis(planned.plan.at - now))
        const outcome = yield* renew(name, planned.plan, planned.provider)
        if (outcome !== "idle") metrics.backgroundRenewals.inc({ provider: planned.provider, outcome })
        failures = outcome === "failed" ? failures + 1 : 0
      }
    })

  const ensureWatch = (name: string) => {
    if (closed || watching.has(name) || !options.settings().enabled) return
    const fiber = run(watch(name).pipe(Effect.ensuring(Effect.sync(() => watching.delete(name)))))
    watching.set(name, fiber)
  }

  return {
    onEngineEvent: (e) => {
      if (!used.has(e.type) || ours.has(e.connection)) return
      lastUsed.set(e.connection, e.at)
      ensureWatch(e.connection)
    },
    seed: () =>
      Effect.runPromise(
        store.list().pipe(
          Effect.map((entries) => {
            for (const [, entry] of entries) if (entry.token.refresh_token) ensureWatch(entry.connection)
          }),
          Effect.catch((e) =>
            Effect.sync(() =>
              AccessLog.error(log, { code: "BackgroundRefresh", message: `cannot list the token store: ${e.message}` })
            )
          )
        )
      ),
    watched: () => [...watching.keys()],
    close: async () => {
      closed = true
      await Effect.runPromise(Fiber.interruptAll([...watching.values()]))
    }
  }
}
