/** The renewal policy: what the engine does when the in-process copy cannot answer, and why (the `decision` of
 *  every TokenResult). In order:
 *  - a fresh token in the store (another process or an earlier run got it) is reused;
 *  - else the refresh flow, when a refresh token and a refresh flow exist; a rotated refresh token is stored before
 *    the new access token is returned, and without a new one the old one is kept (RFC 6749 §6); a refresh token
 *    the provider rejects (reauthenticate, other) falls back to the acquire flow;
 *  - else the acquire flow;
 *  - while the provider fails, a token inside its early-refresh margin but above its serve floor is served stale;
 *  - no token is handed out below its serve floor (expiry.ts): one obtained below it (a slow exchange) is renewed
 *    once more, its refresh token durable by then, and a second one fails `below_serve_floor`.
 *  Durable grants (grants.ts): with a connection store for the connection (every connection when `connection_store:`
 *  is configured; stored and user-granted ones whenever there is a store), the refresh token is read from the
 *  store's grant, its rotation claimed by CAS before it is redeemed (an instance that loses waits for the winner's
 *  result, never redeeming a spent token; so does a second flight of the same process), and the rotated one written
 *  under the claim before the access token is cached, that write retried while the claim lasts (the provider has
 *  spent the old one, and this process holds the only copy of the new one). A claim whose claimer the store knows
 *  dead (connection-store.ts `liveness`, PostgreSQL: asked every half second while waiting) is taken over without
 *  waiting for its lease; the refresh token it left may be spent, and is then refused like any other. A user-granted connection (authorization code, device flow) never runs its acquire flow: without a
 *  grant it fails AuthorizationRequired, and a refused refresh token (a reauthenticate error such as
 *  invalid_grant) marks the grant needs_reauth, emits `needs_reauth` and fails, with no retry and no fallback.
 *  A grant issued for another provider or other inputs (grant-binding.ts: a config file edited since) is never
 *  redeemed: a user's grant becomes needs_reauth the same way, any other connection runs its acquire flow, whose
 *  grant replaces it.
 *  It runs under the token cache's single-flight (token-cache.ts); engine.ts puts the two together. */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { isUserGranted } from "./authorization.ts"
import type { HttpSettings } from "./config.ts"
import type { Connection } from "./connection.ts"
import type { ConnectionStoreShape, Grant } from "./connection-store.ts"
import * as GrantBinding from "./grant-binding.ts"
import * as Grants from "./grants.ts"
import type * as Events from "./events.ts"
import * as Expiry from "./expiry.ts"
import { Http, type HttpShape } from "./http.ts"
import type { ExpirySource, Token } from "./token.ts"
import { TokenCache, type TokenCacheShape } from "./token-cache.ts"
import {
  AuthorizationRequired,
  type InputInvalid,
  type StaticCredential,
  type StoreError,
  type TokenError,
  type UpstreamError,
  UpstreamRejected
} from "./token-error.ts"
import * as TokenResponse from "./token-response.ts"
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

/** How often a renewal waiting on another process's claim asks the store whether that process is alive. */
const askEveryMs = 500

/** The code of the UpstreamRejected a renewal fails with when its new token arrived below the serve floor. */
export const shortOnArrival = "below_serve_floor"

/** A renewal's failure because its new token arrived below the serve floor (`admit`). */
const isShortOnArrival = (e: unknown): boolean => e instanceof UpstreamRejected && e.code === shortOnArrival

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
  /** The connection store that keeps grants (grants.ts), when one is configured: refresh tokens then live there,
   *  durably, and are rotated under a claim; without one they live in the token cache only. */
  readonly grants?: ((c: Connection) => Effect.Effect<ConnectionStoreShape | undefined, StoreError>) | undefined
}

type Renewed = Effect.Effect<
  TokenResult,
  UpstreamError | InputInvalid | StoreError | AuthorizationRequired | StaticCredential
>

/** A token to fill `{{ token.* }}` of the refresh flow when only the durable grant is at hand. */
const withRefreshToken = (cached: Token | undefined, refreshToken: Redacted.Redacted<string>): Token =>
  cached
    ? { ...cached, refreshToken }
    : {
        accessToken: Redacted.make("", { label: "access_token" }),
        refreshToken,
        tokenType: "Bearer",
        expiresAt: 0,
        obtainedAt: 0,
        expirySource: "default"
      }

const why = (c: Connection, cached: Token | undefined, options: GetOptions, now: number) =>
  options.force
    ? "renewal forced"
    : !cached
      ? "no cached token"
      : Expiry.freshness(c.manifest, cached, now) === "expired"
        ? "cached token expired"
        : "cached token inside the early-refresh margin"

const where = (c: Connection) => ({ connection: c.name, provider: c.manifest.id })

export const make = (deps: Deps): RenewalShape => {
  const { cache, emit } = deps
  const exchange = (c: Connection, flow: NonNullable<Connection["manifest"]["flows"]["refresh"]>, current?: Token) =>
    Upstream.exchange(c, flow, deps.settings, current).pipe(Effect.provideService(Http, deps.http))

  const acquire = (
    c: Connection,
    options: GetOptions,
    reason: string,
    store?: ConnectionStoreShape | undefined
  ): Renewed =>
    Effect.gen(function* () {
      // A user's grant cannot be started unattended: only `tessera login` or a connect link can.
      if (isUserGranted(c)) return yield* new AuthorizationRequired({ ...where(c), reason: "no_grant" })
      const started = yield* Clock.currentTimeMillis
      const flow = c.manifest.flows.acquire
      // Only kind oauth2 has flows, and the engine never renews a static credential (static-credential.ts).
      if (!flow) return yield* staticCredential(c)
      const x = yield* exchange(c, flow)
      // The refresh token goes to the durable grant before anything else has it (never only in a cache).
      if (store && x.token.refreshToken && !options.noCache)
        yield* Grants.save(store, Grants.bound(c), x.token.refreshToken, x.token.scope)
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
      return yield* admit(
        c,
        x.token,
        result(c, x.token, "acquired", `${reason}: acquired a new token (expiry from ${x.token.expirySource})`)
      )
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
          return yield* admit(
            c,
            token,
            result(c, token, "refreshed", `${reason}: redeemed the refresh token${rotated ? " (rotated)" : ""}`)
          )
        })
      ),
      Effect.catchTag("UpstreamRejected", (e) =>
        !isShortOnArrival(e) && rejectsRefresh(e) ? fallBack(c, e, options, reason) : Effect.fail(e)
      ),
      // An answer that could not be used but carried a new refresh token: the provider may have spent the old one,
      // so the new one is kept for the next renewal (the access token stays what it was).
      Effect.catchTag("ResponseInvalid", (e) => {
        const kept = TokenResponse.rotatedIn(e)
        if (kept === undefined || options.noCache) return Effect.fail(e)
        return cache
          .save(c, { ...cached, refreshToken: kept })
          .pipe(Effect.andThen(keptNote(c)), Effect.andThen(Effect.fail(e)))
      })
    )

  const claimExpired = (c: Connection) =>
    Effect.logWarning("the grant's rotation claim expired before the rotated refresh token was written").pipe(
      Effect.annotateLogs(where(c))
    )

  const keptNote = (c: Connection) =>
    Effect.logWarning(
      "the provider's answer could not be used, but it carried a new refresh token: kept for the next renewal"
    ).pipe(Effect.annotateLogs(where(c)))

  const owner = randomBytes(9).toString("base64url")
  // The name claims are made under while the store's liveness marks this process alive (grants.ts).
  const watched = Grants.watchedOwner(owner)
  const mine = (claimer: string) => claimer === owner || claimer === watched
  const leaseMs = deps.settings.totalTimeoutMs + 5_000
  // The connections this process is redeeming now. A claim under this process's owner is busy while its name is
  // here: two flights of one process (a caller's and a forced one, whose Redis lock gave no exclusion when Redis
  // went down mid-flight) must not both redeem. A claim of ours that is not here is left over from a flight that
  // ended without releasing it (its store write failed): taken over at once.
  const rotating = new Set<string>()

  /** The name to claim under: the watched one when the store's liveness holds this process's mark now, so that a
   *  kill of this process frees the claim within about a second; else the plain one (waited on for its lease). */
  const claimer = (store: ConnectionStoreShape): Effect.Effect<string> =>
    store.liveness
      ? Effect.map(store.liveness.register(watched), (held) => (held ? watched : owner))
      : Effect.succeed(owner)

  /** Whether a live claim of another process may be taken over now: its claimer is watched, and the store knows
   *  that process dead. Asked at most every `askEveryMs` per renewal; a store that cannot tell means wait on. */
  const claimerDead = (
    c: Connection,
    store: ConnectionStoreShape,
    claimed: { readonly owner: string } | undefined,
    now: number,
    asked: { at: number }
  ): Effect.Effect<boolean> => {
    const liveness = store.liveness
    if (!liveness || !claimed || !Grants.isWatched(claimed.owner) || now - asked.at < askEveryMs)
      return Effect.succeed(false)
    asked.at = now
    return liveness.dead(claimed.owner).pipe(
      Effect.catch(() => Effect.succeed(false)),
      Effect.tap((dead) =>
        dead
          ? Effect.logWarning("the process that claimed the grant's rotation is dead: taking its claim over").pipe(
              Effect.annotateLogs({ ...where(c), claimer: claimed.owner })
            )
          : Effect.void
      )
    )
  }

  /** The refresh flow for a connection whose refresh token lives in the connection store: read the grant, claim its
   *  rotation (CAS), redeem it once, write the rotated one under the claim, then cache the access token. */
  const durable = (
    c: Connection,
    store: ConnectionStoreShape,
    cached: Token | undefined,
    options: GetOptions,
    reason: string
  ): Renewed =>
    Effect.gen(function* () {
      const user = isUserGranted(c)
      const bound = Grants.bound(c)
      const asked = { at: -Infinity }
      for (let round = 0; round < 20; round++) {
        const g = yield* Grants.read(store, c.name)
        if (g?.status === "needs_reauth") {
          if (user) return yield* new AuthorizationRequired({ ...where(c), reason: "needs_reauth", detail: g.detail })
          return yield* acquire(c, options, `${reason}, stored refresh token refused earlier`, store)
        }
        const refreshToken = g?.refreshToken ?? cached?.refreshToken
        if (refreshToken === undefined || c.manifest.flows.refresh === undefined)
          return yield* acquire(c, options, reason, store)
        if (g === undefined) {
          // A refresh token only the cache held (from before a connection store was configured): make it durable.
          yield* Grants.save(store, bound, refreshToken, cached?.scope)
          continue
        }
        const now = yield* Clock.currentTimeMillis
        const claimed = Grants.claimOf(g)
        const busy = rotating.has(c.name) || (claimed !== undefined && claimed.until > now && !mine(claimed.owner))
        // Another instance (or another flight of this one) is redeeming this refresh token: wait for its rotation,
        // then use what it left; unless that instance is known dead (its claim is then taken over by the CAS below,
        // which of several waiters only one wins).
        const takeOver = busy && !rotating.has(c.name) && (yield* claimerDead(c, store, claimed, now, asked))
        // (Looked at again after the question: a flight of this process may have claimed meanwhile.)
        if (busy && (!takeOver || rotating.has(c.name))) {
          yield* Effect.sleep("100 millis")
          const t = yield* cache.read(c)
          const at = yield* Clock.currentTimeMillis
          if (t && !options.force && Expiry.freshness(c.manifest, t, at) === "fresh") return yield* reuse(c, t, at)
          round--
          continue
        }
        // Issued for another provider or other endpoints (a config file edited since): never sent anywhere.
        if (!GrantBinding.issuedFor(g, bound.binding)) {
          if (!user) return yield* acquire(c, options, `${reason}, stored grant issued for other inputs`, store)
          if (!(yield* Grants.needsReauth(store, bound, g.version, g, GrantBinding.movedDetail))) continue
          yield* emit(c, "needs_reauth", GrantBinding.movedDetail)
          return yield* new AuthorizationRequired({
            ...where(c),
            reason: "needs_reauth",
            detail: GrantBinding.movedDetail
          })
        }
        // Marked before the claim, not after: a second flight of this process whose read of the grant lands while
        // this claim is in flight (committed, its answer not yet here) sees its own owner on the claim, and only
        // the mark makes it wait instead of claiming the same version and redeeming the same refresh token.
        rotating.add(c.name)
        const won = yield* claimer(store).pipe(
          Effect.flatMap((name) => Grants.claim(store, bound, g, name, now + leaseMs)),
          Effect.onExit((exit) =>
            Exit.isSuccess(exit) && exit.value ? Effect.void : Effect.sync(() => rotating.delete(c.name))
          )
        )
        if (!won) continue
        return yield* redeem(c, store, bound, g, g.version + 1, now + leaseMs, cached, options, reason, user).pipe(
          Effect.ensuring(Effect.sync(() => rotating.delete(c.name)))
        )
      }
      return yield* Effect.die(new Error(`${c.name}: the grant kept changing under concurrent rotations`))
    })

  const redeem = (
    c: Connection,
    store: ConnectionStoreShape,
    bound: Grants.Bound,
    g: Grant,
    claimed: number,
    until: number,
    cached: Token | undefined,
    options: GetOptions,
    reason: string,
    user: boolean
  ): Renewed => {
    const release = Effect.ignore(Grants.complete(store, bound, claimed, g.refreshToken, g.scope))
    return exchange(c, c.manifest.flows.refresh!, withRefreshToken(cached, g.refreshToken)).pipe(
      Effect.onInterrupt(() => release),
      Effect.flatMap((x) =>
        Effect.gen(function* () {
          const rotated = x.token.refreshToken !== undefined
          const refreshToken = x.token.refreshToken ?? g.refreshToken
          const token: Token = { ...x.token, refreshToken }
          // Durable first: the rotated refresh token is in the connection store before anyone is given a token.
          // The provider has spent the old one, so a failed write (the connection store restarting) is retried
          // while the claim is still ours: the process holds the only copy of the new one.
          const kept = yield* durably(
            Grants.complete(store, bound, claimed, refreshToken, x.token.scope ?? g.scope),
            until
          )
          if (!kept) yield* claimExpired(c)
          if (!options.noCache) yield* cache.save(c, token)
          if (rotated) yield* emit(c, "rotated", "the provider issued a new refresh token")
          yield* emit(c, "refreshed", reason, { durationMs: x.durationMs })
          return yield* admit(
            c,
            token,
            result(c, token, "refreshed", `${reason}: redeemed the refresh token${rotated ? " (rotated)" : ""}`)
          )
        })
      ),
      Effect.catch((e): Renewed => {
        // Too short on arrival: the rotation is complete (the claim is released), so only the caller's retry remains.
        if (isShortOnArrival(e)) return Effect.fail(e)
        // An unusable answer that carried a new refresh token: that one is written under the claim, not the old
        // one the provider may have spent (as a usable answer's would be, durably).
        const kept = TokenResponse.rotatedIn(e)
        if (kept !== undefined)
          return durably(Grants.complete(store, bound, claimed, kept, g.scope), until).pipe(
            Effect.flatMap((written) => (written ? keptNote(c) : claimExpired(c))),
            Effect.andThen(Effect.fail(e))
          )
        if (e._tag !== "UpstreamRejected" || !rejectsRefresh(e)) return Effect.andThen(release, Effect.fail(e))
        if (!user) return fallBack(c, e, options, reason, store)
        // Only a refused grant (invalid_grant and its kin) needs the user; another rejection (invalid_scope, say) is
        // a configuration problem: the grant stays active and the error is reported as it is.
        if (e.kind !== "reauthenticate") return Effect.andThen(release, Effect.fail(e))
        const detail = `the provider refused the refresh token (${e.code ?? `HTTP ${e.status}`})`
        return Effect.gen(function* () {
          yield* Grants.needsReauth(store, bound, claimed, g, detail)
          yield* emit(c, "needs_reauth", detail, { error: e._tag })
          return yield* new AuthorizationRequired({ ...where(c), reason: "needs_reauth", detail })
        })
      })
    )
  }

  /** `write`, retried every 200 ms on a StoreError until `until` (the end of the claim). */
  const durably = <A>(write: Effect.Effect<A, StoreError>, until: number): Effect.Effect<A, StoreError> =>
    Effect.catchTag(write, "StoreError", (e) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        now + 200 >= until ? Effect.fail(e) : Effect.andThen(Effect.sleep("200 millis"), durably(write, until))
      )
    )

  const rejectsRefresh = (e: UpstreamRejected) => e.kind === "reauthenticate" || e.kind === "other"

  const fallBack = (
    c: Connection,
    e: UpstreamRejected,
    options: GetOptions,
    reason: string,
    store?: ConnectionStoreShape | undefined
  ): Renewed =>
    Effect.andThen(
      emit(c, "refresh_rejected", `refresh token rejected (${e.code ?? `HTTP ${e.status}`}); acquiring a new token`, {
        error: e._tag
      }),
      acquire(c, options, `${reason}, refresh token rejected`, store)
    )

  /** The provider failed: the cached token while it is still valid for real, else the failure. */
  const serveStale = (c: Connection, cached: Token | undefined, options: GetOptions, e: TokenError) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      if (
        !cached ||
        !Expiry.servable(cached, at) ||
        e._tag === "InputInvalid" ||
        e._tag === "AuthorizationRequired" ||
        options.noCache
      )
        return yield* Effect.fail(e)
      yield* Effect.logWarning(`renewal failed, serving the cached token until its serve floor: ${e.message}`).pipe(
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

  /** A token just obtained must clear the serve floor too (expiry.ts `servable`): a slow exchange (a loaded machine,
   *  a provider slow to answer) can leave a short-lived token with less. By then its refresh token is durable and
   *  cached, so the caller's renewal is run once more; a second short token fails, and is never served. */
  const admit = (c: Connection, t: Token, r: TokenResult): Effect.Effect<TokenResult, UpstreamRejected> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Expiry.servable(t, now)
        ? Effect.succeed(r)
        : Effect.fail(
            new UpstreamRejected({
              ...where(c),
              status: 200,
              kind: "transient",
              code: shortOnArrival,
              providerMessage: `the token had ${Math.max(0, t.expiresAt - now)} ms left when it arrived, less than its serve floor of ${Math.round(Expiry.floorMs(t.expiresAt - t.obtainedAt))} ms`,
              attempts: 1
            })
          )
    )

  const decide = (c: Connection, options: GetOptions, again = false): Effect.Effect<TokenResult, TokenError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const cached = options.noCache ? undefined : yield* cache.read(c)
      if (cached && !options.force && Expiry.freshness(c.manifest, cached, now) === "fresh")
        return yield* reuse(c, cached, now)
      const reason = why(c, cached, options, now)
      const store = deps.grants && !options.noCache ? yield* deps.grants(c) : undefined
      const renewal = store
        ? durable(c, store, cached, options, reason)
        : cached?.refreshToken !== undefined && c.manifest.flows.refresh !== undefined
          ? refresh(c, cached, options, reason)
          : acquire(c, options, reason)
      return yield* renewal.pipe(
        Effect.catchIf(
          (e) => !again && isShortOnArrival(e),
          () => decide(c, { ...options, force: true }, true)
        ),
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
