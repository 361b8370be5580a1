/** The renewal policy: what the engine does when the in-process copy cannot answer, and why (the `decision` of
 *  every TokenResult). In order:
 *  - a fresh token in the store (another process or an earlier run got it) is reused;
 *  - else the refresh flow, when a refresh token and a refresh flow exist; a rotated refresh token is stored before
 *    the new access token is returned, and without a new one the old one is kept (RFC 6749 §6); a refresh token
 *    the provider rejects (reauthenticate, other) falls back to the acquire flow;
 *  - else the acquire flow;
 *  - while the provider fails, a token still valid for real (inside its early-refresh margin) is served stale.
 *  It runs under the token cache's single-flight (token-cache.ts); engine.ts puts the two together. */
import { Clock, Context, Effect, Exit, Layer, Redacted } from "effect"
import type { HttpSettings } from "./config.ts"
import type { Connection } from "./connection.ts"
import type * as Events from "./events.ts"
import * as Expiry from "./expiry.ts"
import { Http, type HttpShape } from "./http.ts"
import type { ExpirySource, Token } from "./token.ts"
import { TokenCache, type TokenCacheShape } from "./token-cache.ts"
import type {
  InputInvalid,
  StaticCredential,
  StoreError,
  TokenError,
  UpstreamError,
  UpstreamRejected
} from "./token-error.ts"
import * as Upstream from "./upstream.ts"
import { staticCredential } from "./static-credential.ts"

/** `static`: a static credential (kind api_key or basic) applied from the inputs; nothing was renewed. */
export type Action = "reused" | "acquired" | "refreshed" | "served_stale" | "static"

export interface TokenResult {
  readonly connection: string
  readonly provider: string
  readonly accessToken: Redacted.Redacted<string>
  readonly tokenType: string
  /** When the engine treats the token as expired: from the response, or the manifest's default lifetime. */
  readonly expiresAt: Date
  /** Where `expiresAt` came from: a response field, the JWT exp, a fixed ttl, or "default" (the manifest's
   *  `refresh.default_ttl_seconds`, when no source gave a value). */
  readonly expirySource: ExpirySource
  readonly hasRefreshToken: boolean
  /** What the engine did and why, e.g. reused: "cached token valid for 3540 s more". */
  readonly decision: { readonly action: Action; readonly reason: string }
}

export interface GetOptions {
  /** Renew even if the cached token is fresh (refresh flow when possible). */
  readonly force?: boolean | undefined
  /** Neither read nor write any cache: always a new token. */
  readonly noCache?: boolean | undefined
}

export const secondsLeft = (t: Token, now: number): number => Math.max(0, Math.round((t.expiresAt - now) / 1000))

export const result = (c: Connection, t: Token, action: Action, reason: string): TokenResult => ({
  connection: c.name,
  provider: c.manifest.id,
  accessToken: t.accessToken,
  tokenType: t.tokenType,
  expiresAt: new Date(t.expiresAt),
  expirySource: t.expirySource,
  hasRefreshToken: t.refreshToken !== undefined,
  decision: { action, reason }
})

/** Emits an engine event for a connection (events.ts), stamped by the Clock. */
export type Emit = (
  c: Connection,
  type: Events.EventType,
  reason: string,
  extra?: { readonly durationMs?: number; readonly error?: string }
) => Effect.Effect<void>

export interface RenewalShape {
  /** Renews the connection's token (or finds a fresh one in the store), as the policy above says. */
  readonly renew: (c: Connection, options: GetOptions) => Effect.Effect<TokenResult, TokenError>
}

export class Renewal extends Context.Service<Renewal, RenewalShape>()("tessera/Renewal") {}

export interface Deps {
  readonly cache: TokenCacheShape
  readonly http: HttpShape
  readonly settings: HttpSettings
  readonly emit: Emit
}

type Renewed = Effect.Effect<TokenResult, UpstreamError | InputInvalid | StoreError | StaticCredential>

const why = (c: Connection, cached: Token | undefined, options: GetOptions, now: number) =>
  options.force
    ? "renewal forced"
    : !cached
      ? "no cached token"
      : Expiry.freshness(c.manifest, cached, now) === "expired"
        ? "cached token expired"
        : "cached token inside the early-refresh margin"

export const make = (deps: Deps): RenewalShape => {
  const { cache, emit } = deps
  const exchange = (c: Connection, flow: NonNullable<Connection["manifest"]["flows"]["refresh"]>, current?: Token) =>
    Upstream.exchange(c, flow, deps.settings, current).pipe(Effect.provideService(Http, deps.http))

  const acquire = (c: Connection, options: GetOptions, reason: string): Renewed =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const flow = c.manifest.flows.acquire
      // Only kind oauth2 has flows, and the engine never renews a static credential (static-credential.ts).
      if (!flow) return yield* staticCredential(c)
      const x = yield* exchange(c, flow)
      if (!options.noCache) yield* cache.save(c, x.token)
      yield* emit(c, "acquired", reason, { durationMs: x.durationMs })
      yield* Effect.logInfo("token acquired").pipe(
        Effect.annotateLogs({
          connection: c.name,
          provider: c.manifest.id,
          durationMs: x.durationMs,
          expiresIn: secondsLeft(x.token, started),
          expirySource: x.token.expirySource
        })
      )
      return result(c, x.token, "acquired", `${reason}: acquired a new token (expiry from ${x.token.expirySource})`)
    })

  const refresh = (c: Connection, cached: Token, options: GetOptions, reason: string): Renewed =>
    exchange(c, c.manifest.flows.refresh!, cached).pipe(
      Effect.flatMap((x) =>
        Effect.gen(function* () {
          const rotated = x.token.refreshToken !== undefined
          // RFC 6749 §6: without a new refresh token the old one stays valid, so keep it.
          const token: Token = rotated ? x.token : { ...x.token, refreshToken: cached.refreshToken }
          if (!options.noCache) yield* cache.save(c, token) // stored before it is returned: a rotated refresh token must never be lost
          if (rotated) yield* emit(c, "rotated", "the provider issued a new refresh token")
          yield* emit(c, "refreshed", reason, { durationMs: x.durationMs })
          return result(c, token, "refreshed", `${reason}: redeemed the refresh token${rotated ? " (rotated)" : ""}`)
        })
      ),
      Effect.catchTag("UpstreamRejected", (e) => (rejectsRefresh(e) ? fallBack(c, e, options, reason) : Effect.fail(e)))
    )

  const rejectsRefresh = (e: UpstreamRejected) => e.kind === "reauthenticate" || e.kind === "other"

  const fallBack = (c: Connection, e: UpstreamRejected, options: GetOptions, reason: string): Renewed =>
    Effect.andThen(
      emit(c, "refresh_rejected", `refresh token rejected (${e.code ?? `HTTP ${e.status}`}); acquiring a new token`, {
        error: e._tag
      }),
      acquire(c, options, `${reason}, refresh token rejected`)
    )

  /** The provider failed: the cached token while it is still valid for real, else the failure. */
  const serveStale = (c: Connection, cached: Token | undefined, options: GetOptions, e: TokenError) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      if (!cached || at >= cached.expiresAt || e._tag === "InputInvalid" || options.noCache)
        return yield* Effect.fail(e)
      yield* Effect.logWarning(`renewal failed, serving the cached token until it expires: ${e.message}`).pipe(
        Effect.annotateLogs({ connection: c.name, provider: c.manifest.id })
      )
      const r = result(
        c,
        cached,
        "served_stale",
        `renewal failed (${e._tag}); cached token still valid for ${secondsLeft(cached, at)} s`
      )
      yield* emit(c, "served_stale", r.decision.reason, { error: e._tag })
      return r
    })

  /** A fresh token some other process or an earlier run stored. */
  const reuse = (c: Connection, cached: Token, now: number) =>
    Effect.gen(function* () {
      cache.keep(c, cached)
      const r = result(
        c,
        cached,
        "reused",
        `found in the ${cache.store.name} store (from an earlier run or another caller); valid for ${secondsLeft(cached, now)} s more`
      )
      yield* emit(c, "reused", r.decision.reason)
      return r
    })

  const decide = (c: Connection, options: GetOptions): Effect.Effect<TokenResult, TokenError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const cached = options.noCache ? undefined : yield* cache.read(c)
      if (cached && !options.force && Expiry.freshness(c.manifest, cached, now) === "fresh")
        return yield* reuse(c, cached, now)
      const reason = why(c, cached, options, now)
      const renewal =
        cached?.refreshToken !== undefined && c.manifest.flows.refresh !== undefined
          ? refresh(c, cached, options, reason)
          : acquire(c, options, reason)
      return yield* renewal.pipe(
        Effect.tapError((e) => emit(c, "failed", e.message, { error: e._tag })),
        Effect.catch((e) => serveStale(c, cached, options, e))
      )
    })

  // Credentials whose last renewal failed (or was served stale): the next success says "recovered".
  const failing = new Set<string>()
  const track = (c: Connection, exit: Exit.Exit<TokenResult, TokenError>) =>
    Effect.suspend(() => {
      const key = cache.key(c)
      const stale = Exit.isFailure(exit) || exit.value.decision.action === "served_stale"
      const recovered = !stale && failing.delete(key)
      if (stale) failing.add(key)
      return recovered ? emit(c, "recovered", "the provider answers again") : Effect.void
    })

  return {
    renew: (c, options) =>
      options.noCache ? decide(c, options) : decide(c, options).pipe(Effect.onExit((exit) => track(c, exit)))
  }
}

export const layer = (settings: HttpSettings, emit: Emit): Layer.Layer<Renewal, never, TokenCache | Http> =>
  Layer.effect(
    Renewal,
    Effect.gen(function* () {
      return make({ cache: yield* TokenCache, http: yield* Http, settings, emit })
    })
  )
