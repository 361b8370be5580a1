/** The token engine: interprets any manifest to get, cache, renew and apply a connection's token. No provider
 *  has code here; everything provider-specific is in its manifest.
 *
 *  This module is the composition: `getToken` answers from the token cache's in-process copy (`peek`) when the
 *  token is fresh, else it runs the renewal policy (renewal.ts: reuse from the store, refresh or acquire, rotation,
 *  serve-stale) under the token cache's single-flight (token-cache.ts: keys, local copy, store, single-flight,
 *  invalidation). Token exchanges go through the `Http` service (http.ts) and time through the Clock, so tests run
 *  it in-process on recorded exchanges under TestClock. Also here: invalidation on the caller's word, the header
 *  that applies a token (`authorization`), the request a flow would send (`describeRequest`, for --dry-run) and
 *  the connections (connection-registry.ts, whose changes evict cached tokens). */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { Config, HttpSettings } from "./config.ts"
import { defaultHttp } from "./config.ts"
import * as Authorization from "./authorization.ts"
import type { AuthorizationFailed } from "./authorization-error.ts"
import * as DeviceFlow from "./device-flow.ts"
import * as GrantBinding from "./grant-binding.ts"
import * as Grants from "./grants.ts"
import type { Connection } from "./connection.ts"
import type { ConnectionStoreError, ConnectionStoreShape } from "./connection-store.ts"
import * as Registry from "./connection-registry.ts"
import * as Observability from "./observability.ts"
import * as Events from "./events.ts"
import * as Expiry from "./expiry.ts"
import { Http } from "./http.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Assertion from "./assertion.ts"
import * as Renewal from "./renewal.ts"
import * as Upstream from "./upstream.ts"
import * as StaticCredential from "./static-credential.ts"
import * as Template from "./template.ts"
import type { Token } from "./token.ts"
import * as TokenCache from "./token-cache.ts"
import { InputInvalid, StoreError, type TokenError } from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import { TokenStore, type StoreHealth, type TokenStoreShape } from "./token-store.ts"

export type { Action, GetOptions, TokenResult } from "./renewal.ts"
type TokenResult = Renewal.TokenResult
type GetOptions = Renewal.GetOptions

/** The cache key of a connection under a store's secret (token-cache.ts). */
export const cacheKey = TokenCache.cacheKey

/** The JSON shape of `tessera token --json` and the server's token route. */
export const toJson = (r: TokenResult) => ({
  connection: r.connection,
  provider: r.provider,
  access_token: Redacted.value(r.accessToken),
  token_type: r.tokenType,
  expires_at: r.expiresAt.toISOString(),
  expiry_source: r.expirySource
})

export interface CacheState {
  readonly key: string
  readonly cached: boolean
  readonly obtainedAt?: Date | undefined
  readonly expiresAt?: Date | undefined
  readonly freshness?: Expiry.Freshness | undefined
  readonly hasRefreshToken?: boolean | undefined
  readonly expirySource?: string | undefined
}

/** What a user-grant operation can fail with: a token failure, or the user's authorization not completing. */
export type GrantError = TokenError | AuthorizationFailed

/** A connection's durable grant as shown (GET, `tessera connections show`): never the refresh token. A grant bound
 *  elsewhere (grant-binding.ts) is shown needs_reauth, as renewal will treat it, before a renewal has marked it. */
export interface GrantView {
  readonly status: "active" | "needs_reauth"
  readonly scope?: string | undefined
  readonly detail?: string | undefined
  readonly updated_at: string
  readonly version: number
}

/** The user-grant flows on one connection (authorization.ts, device-flow.ts), their grants kept in the connection
 *  store (grants.ts). The server's connect routes and `tessera login` are built on these. */
export interface GrantsShape {
  /** The authorization URL (state + PKCE S256) for `redirectUri`; keep the result until the callback. */
  readonly authorize: (connection: string, redirectUri: string) => Effect.Effect<Authorization.Pending, GrantError>
  /** Checks the redirect's query against `pending` (state first), exchanges the code and stores the grant. */
  readonly complete: (
    connection: string,
    pending: Authorization.Pending,
    callback: URLSearchParams
  ) => Effect.Effect<TokenResult, GrantError>
  /** Asks for a device code: show `userCode` and `verificationUri` to the user. */
  readonly startDevice: (connection: string) => Effect.Effect<DeviceFlow.Started, GrantError>
  /** Polls until the user approves (interval, slow_down), then stores the grant. */
  readonly completeDevice: (
    connection: string,
    started: DeviceFlow.Started,
    onWait?: (info: { readonly intervalSeconds: number; readonly reason: string }) => Effect.Effect<void>
  ) => Effect.Effect<TokenResult, GrantError>
  /** Stores a token a user's grant produced: its refresh token durably as the connection's grant, then the token
   *  in the token cache. Fails with StoreError when no connection store is configured. */
  readonly save: (connection: string, token: Token, how: string) => Effect.Effect<TokenResult, GrantError>
  /** The stored grant, if any. */
  readonly get: (connection: string) => Effect.Effect<GrantView | undefined, GrantError>
}

export interface EngineShape {
  /** The cached token if it is fresh, synchronously; undefined means "call getToken". The hot path of hot paths. */
  readonly peek: (connection: string) => TokenResult | undefined
  /** `peek`'s access token, as a string: the Promise API's `getToken` on a hit. */
  readonly peekValue: (connection: string) => string | undefined
  readonly getToken: (connection: string, options?: GetOptions) => Effect.Effect<TokenResult, TokenError>
  /** Forgets the access token (after a 401 from the API); a refresh token is kept for the next renewal. */
  readonly invalidate: (connection: string) => Effect.Effect<void, TokenError>
  /** Forgets the access token only while it is still `token` (the one an API refused), and says whether it did: a
   *  401 that arrives after another caller already replaced the token leaves the new one alone. */
  readonly invalidateIfCurrent: (
    connection: string,
    token: Redacted.Redacted<string>
  ) => Effect.Effect<boolean, TokenError>
  /** `authorization` for a fresh cached token, synchronously (one object per token, reused by every hit);
   *  undefined means "call authorization" (always for a static credential or a query-applied rule). The proxy's hot
   *  path. */
  readonly peekAuthorization: (connection: string) => AppliedAuthorization | undefined
  /** The header that authorizes an API call, per the manifest's apply rule; with `query` set (a static api_key
   *  applied as a query parameter) the value goes in that query parameter instead, and `header` is "". A static
   *  credential's `result` has action "static" and its credential as `accessToken` (for masking an API's echo). */
  readonly authorization: (connection: string, options?: GetOptions) => Effect.Effect<AppliedAuthorization, TokenError>
  /** The request the acquire (or refresh) flow would send, without sending it. */
  readonly describeRequest: (
    connection: string,
    flow?: FlowSpec["name"]
  ) => Effect.Effect<TokenRequest.TokenRequest, TokenError>
  readonly cacheState: (connection: string) => Effect.Effect<CacheState, TokenError>
  readonly connection: (name: string) => Effect.Effect<Connection, TokenError>
  /** The config file's connections (stored ones are in `registry`). */
  readonly connections: () => ReadonlyArray<Connection>
  /** Every connection, config and stored: find, create, replace, delete, list. */
  readonly registry: Registry.Registry
  readonly subscribe: (listener: Events.Listener) => () => void
  readonly storeHealth: () => Effect.Effect<StoreHealth>
  readonly config: Config
  /** User grants: authorization code with PKCE, device flow, durable grants. */
  readonly grants: GrantsShape
}

/** The header that authorizes an API call with a token. */
export interface AppliedAuthorization {
  readonly header: string
  readonly value: Redacted.Redacted<string>
  readonly result: TokenResult
  /** Set when the value goes in this query parameter instead of a header. */
  readonly query?: string | undefined
}

export class Engine extends Context.Service<Engine, EngineShape>()("tessera/Engine") {}

export interface Options {
  readonly http?: HttpSettings | undefined
  /** Opens the connection store on first need; without one only the config's connections exist. */
  readonly connectionStore?: Effect.Effect<ConnectionStoreShape, ConnectionStoreError> | undefined
  /** A registry to share (tests); by default one is made over the config and `connectionStore`. */
  readonly registry?: Registry.Registry | undefined
}

const storeError = (e: ConnectionStoreError) =>
  new StoreError({ store: `connections (${e.store})`, operation: e.operation, reason: e.reason })

/** The header that authorizes an API call: the manifest's apply rule rendered with the token, or the names the
 *  rule needs and the connection lacks. */
const applyRule = (c: Connection, r: TokenResult): AppliedAuthorization | ReadonlyArray<string> => {
  const rendered = Template.render(c.manifest.apply.value, {
    inputs: (n) => c.inputs.get(n),
    token: (f) => (f === "access_token" ? r.accessToken : f === "token_type" ? r.tokenType : undefined)
  })
  if (rendered._tag === "Missing") return rendered.names
  const v = rendered.value
  return {
    header: c.manifest.apply.header,
    value: Template.isSecret(v) ? v : Redacted.make(v),
    result: r,
    query: c.manifest.apply.query
  }
}

const isApplied = (a: AppliedAuthorization | ReadonlyArray<string>): a is AppliedAuthorization => "header" in a

const apply = (c: Connection, r: TokenResult): Effect.Effect<AppliedAuthorization, InputInvalid> => {
  const a = applyRule(c, r)
  return isApplied(a)
    ? Effect.succeed(a)
    : Effect.fail(
        new InputInvalid({
          connection: c.name,
          provider: c.manifest.id,
          details: [`apply.value needs ${a.join(", ")}`]
        })
      )
}

/** A static credential applied: no token, no cache; the result says so. */
const applyStatic = (c: Connection) =>
  Effect.map(StaticCredential.render(c), (a) => ({
    header: a.place === "header" ? a.name : "",
    value: a.value,
    query: a.place === "query" ? a.name : undefined,
    result: {
      connection: c.name,
      provider: c.manifest.id,
      accessToken: a.value,
      tokenType: c.manifest.kind,
      expiresAt: new Date(8.64e15),
      expirySource: "default" as const,
      hasRefreshToken: false,
      decision: { action: "static" as const, reason: `static credential (kind: ${c.manifest.kind}) from the inputs` }
    }
  }))

/** The request a flow would send now, for --dry-run: the refresh flow with the stored refresh token. */
const dryRun = (c: Connection, flow: FlowSpec["name"], cache: TokenCache.TokenCacheShape, settings: HttpSettings) =>
  Effect.gen(function* () {
    const where = { connection: c.name, provider: c.manifest.id }
    if (StaticCredential.isStatic(c.manifest)) return yield* StaticCredential.staticCredential(c)
    const spec = flow === "refresh" ? c.manifest.flows.refresh : c.manifest.flows.acquire
    if (!spec) return yield* new InputInvalid({ ...where, details: [`${c.manifest.id} has no ${flow} flow`] })
    const token = flow === "refresh" ? yield* cache.read(c) : undefined
    const request = yield* Upstream.prepare(c, spec, settings, token)
    return yield* Assertion.complete(c, request, yield* Clock.currentTimeMillis)
  })

const cacheStateOf = (c: Connection, cache: TokenCache.TokenCacheShape): Effect.Effect<CacheState, StoreError> =>
  Effect.gen(function* () {
    const key = cache.key(c)
    const t = yield* cache.read(c)
    if (!t) return { key, cached: false }
    const now = yield* Clock.currentTimeMillis
    return {
      key,
      cached: true,
      obtainedAt: new Date(t.obtainedAt),
      expiresAt: new Date(t.expiresAt),
      freshness: Expiry.freshness(c.manifest, t, now),
      hasRefreshToken: t.refreshToken !== undefined,
      expirySource: t.expirySource
    }
  })

/** One result object per cached token, reused by every hit; its reason is computed only when read. */
const hitResults = (clock: Clock.Clock) => {
  const hits = new WeakMap<Token, TokenResult>()
  return (c: Connection, t: Token): TokenResult => {
    let r = hits.get(t)
    if (!r) {
      const base = Renewal.result(c, t, "reused", "")
      // Rendered when read (every hit's event reads it), once per second left.
      let shown = Number.NaN
      let text = ""
      r = {
        ...base,
        decision: {
          action: "reused",
          get reason() {
            const left = Renewal.secondsLeft(t, clock.currentTimeMillisUnsafe())
            if (left !== shown) {
              shown = left
              text = `cached token valid for ${left} s more`
            }
            return text
          }
        }
      }
      hits.set(t, r)
    }
    return r
  }
}

/** The engine over `store`, its token exchanges through the `Http` in context, its time from the Clock in
 *  context (read once here, so that the synchronous `peek` keeps to it too). */
export const make = (
  config: Config,
  store: TokenStoreShape,
  opts: Options = {}
): Effect.Effect<EngineShape, never, Http> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const http = yield* Http
    const emitter = Events.makeEmitter()
    const cache = TokenCache.make(store)
    const emit: Renewal.Emit = (c, type, reason, extra = {}) =>
      Effect.flatMap(Clock.currentTimeMillis, (at) =>
        Effect.sync(() =>
          emitter.emit({
            type,
            connection: c.name,
            provider: c.manifest.id,
            at,
            reason,
            tags: c.tags,
            ...(c.createdAt !== undefined ? { createdAt: c.createdAt } : {}),
            ...extra
          })
        )
      )
    const registry = opts.registry ?? Registry.make(config, opts.connectionStore)
    // Refresh tokens live in the connection store's grants (grants.ts) for every connection when `connection_store:`
    // is configured, and for stored and user-granted connections whenever there is a store at all.
    const explicitStore = config.connectionStore !== undefined
    const grantsFor = (c: Connection) =>
      registry.hasStore && (explicitStore || c.source === "api" || Authorization.isUserGranted(c))
        ? Effect.mapError(registry.store(), storeError)
        : Effect.succeed(undefined)
    const settings = opts.http ?? config.http ?? defaultHttp
    const renewal = Renewal.make({ cache, http, settings, emit, grants: grantsFor })
    // A connection that changed or went away (on any instance): nobody is served a token got with the old inputs.
    registry.onChange(cache.evict)
    const connection = (name: string): Effect.Effect<Connection, TokenError> =>
      registry.get(name).pipe(Effect.catchTag("ConnectionStoreError", (e) => Effect.fail(storeError(e))))
    const reused = hitResults(clock)

    // The hit of the last peek per name, while the token cache's in-process copy has not changed since (its stamp)
    // and the token is fresh: a repeated hit is one Map lookup and a clock read. Filled and checked by `peek`.
    interface Hot {
      readonly stamp: number
      /** Until when (epoch ms) the token is fresh (Expiry.freshness). */
      readonly freshUntil: number
      readonly result: TokenResult
      readonly value: string
    }
    const hot = new Map<string, Hot>()
    const hotMax = 10_000

    const lookup = (name: string, now: number): Hot | undefined => {
      const h = hot.get(name)
      if (h !== undefined && h.stamp === cache.stamp() && now < h.freshUntil) return h
      const stamp = cache.stamp()
      const c = registry.peek(name)
      const t = c && cache.local(c)
      if (!c || !t) return undefined
      if (Expiry.freshness(c.manifest, t, now) !== "fresh") return undefined
      const result = reused(c, t)
      const next: Hot = {
        stamp,
        freshUntil: Math.min(t.expiresAt, t.expiresAt - Expiry.marginMs(c.manifest, t.expiresAt - t.obtainedAt)),
        result,
        value: Redacted.value(result.accessToken)
      }
      // Bounded: past 10 000 names the oldest entry goes (Map order), not all of them, so that a fleet of tenants
      // larger than the bound never empties it at once.
      if (hot.size >= hotMax && !hot.has(name)) hot.delete(hot.keys().next().value!)
      hot.set(name, next)
      return next
    }

    const peekHot = (name: string): Hot | undefined => {
      const now = clock.currentTimeMillisUnsafe()
      const h = lookup(name, now)
      if (h !== undefined && emitter.active()) {
        // A plain object: one with a getter (to render the reason only when read) costs ~300 ns to build, the
        // reason ~50 ns.
        emitter.emit({
          type: "reused",
          connection: h.result.connection,
          provider: h.result.provider,
          at: now,
          reason: h.result.decision.reason
        })
      }
      return h
    }

    const peek = (name: string): TokenResult | undefined => peekHot(name)?.result
    const peekValue = (name: string): string | undefined => peekHot(name)?.value

    // One rendered header per hit result (itself one per cached token): a proxied call on a fresh token renders
    // nothing.
    const applied = new WeakMap<TokenResult, AppliedAuthorization>()
    const peekAuthorization = (name: string): AppliedAuthorization | undefined => {
      const r = peek(name)
      if (!r) return undefined
      let a = applied.get(r)
      if (!a) {
        const c = registry.peek(name)
        const x = c && applyRule(c, r)
        if (!x || !isApplied(x) || x.query !== undefined) return undefined
        applied.set(r, (a = x))
      }
      return a
    }

    const obtain = (name: string, options: GetOptions): Effect.Effect<TokenResult, TokenError> =>
      Effect.flatMap(connection(name), (c) => {
        if (StaticCredential.isStatic(c.manifest)) return StaticCredential.staticCredential(c)
        if (options.noCache) return renewal.renew(c, options)
        const work = renewal.renew(c, options).pipe(Observability.renewalSpan(c.name, c.manifest.id))
        return cache.singleFlight(c, (key) => (options.force ? `${key}:force` : key), work)
      })

    // A fresh hit is answered by peek without building a generator; everything else takes the full path.
    const getToken = (name: string, options: GetOptions = {}): Effect.Effect<TokenResult, TokenError> =>
      Effect.suspend(() => {
        const hit = options.force || options.noCache ? undefined : peek(name)
        return hit ? Effect.succeed(hit) : obtain(name, options)
      })

    const invalidate = (name: string): Effect.Effect<void, TokenError> =>
      Effect.gen(function* () {
        const c = yield* connection(name)
        yield* cache.forget(c, yield* cache.entry(c))
        yield* emit(c, "invalidated", "invalidated by the caller")
      })

    const invalidateIfCurrent: EngineShape["invalidateIfCurrent"] = (name, token) =>
      Effect.gen(function* () {
        const c = yield* connection(name)
        const forgot = yield* cache.forgetIfCurrent(c, token)
        if (forgot) yield* emit(c, "invalidated", "the API refused the token")
        return forgot
      })

    const grantStore = Effect.suspend(() =>
      registry.hasStore
        ? Effect.mapError(registry.store(), storeError)
        : Effect.fail(
            new StoreError({
              store: "connections (none)",
              operation: "put grant",
              reason: "a user's grant must be kept durably: add connection_store: to the config"
            })
          )
    )
    const saveGrant: GrantsShape["save"] = (name, token, how) =>
      Effect.gen(function* () {
        const c = yield* connection(name)
        const s = yield* grantStore
        if (token.refreshToken) yield* Grants.save(s, Grants.bound(c), token.refreshToken, token.scope)
        else
          yield* Effect.logWarning(
            "the provider issued no refresh token: the user must authorize again when this token expires"
          ).pipe(Effect.annotateLogs({ connection: c.name, provider: c.manifest.id }))
        yield* cache.save(c, token)
        const reason = `${how}: the user granted access${token.refreshToken ? " (refresh token stored in the connection store)" : ""}`
        yield* emit(c, "acquired", reason)
        return Renewal.result(c, token, "acquired", reason)
      })
    const grants: GrantsShape = {
      authorize: (name, redirectUri) =>
        Effect.flatMap(connection(name), (c) =>
          Authorization.start(c, redirectUri, settings).pipe(Effect.provideService(Http, http))
        ),
      complete: (name, pending, query) =>
        Effect.gen(function* () {
          const c = yield* connection(name)
          const issuer = yield* Authorization.expectedIssuer(c, settings).pipe(Effect.provideService(Http, http))
          const code = yield* Authorization.callback(c, query, pending.state, issuer)
          const x = yield* Authorization.exchange(
            c,
            { code, verifier: pending.verifier, redirectUri: pending.redirectUri },
            settings
          ).pipe(Effect.provideService(Http, http))
          return yield* saveGrant(name, x.token, "authorization code")
        }),
      startDevice: (name) =>
        Effect.flatMap(connection(name), (c) => DeviceFlow.start(c, settings).pipe(Effect.provideService(Http, http))),
      completeDevice: (name, started, onWait) =>
        Effect.gen(function* () {
          const c = yield* connection(name)
          const x = yield* DeviceFlow.poll(c, started, settings, onWait).pipe(Effect.provideService(Http, http))
          return yield* saveGrant(name, x.token, "device authorization")
        }),
      save: saveGrant,
      get: (name) =>
        Effect.gen(function* () {
          const c = yield* connection(name)
          const g = yield* Grants.read(yield* grantStore, c.name)
          if (!g) return undefined
          // Bound elsewhere: shown as renewal will treat it, before a renewal has marked it so.
          const shown = GrantBinding.shownAs(g, c, Authorization.isUserGranted(c))
          const detail = shown.refused ? shown.detail : g.detail
          return {
            status: shown.refused ? "needs_reauth" : "active",
            ...(g.scope !== undefined ? { scope: g.scope } : {}),
            ...(detail !== undefined ? { detail } : {}),
            updated_at: new Date(g.updatedAt).toISOString(),
            version: g.version
          }
        })
    }

    return {
      grants,
      peek,
      peekValue,
      getToken,
      invalidate,
      invalidateIfCurrent,
      peekAuthorization,
      authorization: (name, options) =>
        Effect.flatMap(connection(name), (c) =>
          StaticCredential.isStatic(c.manifest)
            ? applyStatic(c)
            : Effect.flatMap(getToken(name, options), (r) => apply(c, r))
        ),
      describeRequest: (name, flow = "acquire") =>
        Effect.flatMap(connection(name), (c) =>
          dryRun(c, flow, cache, opts.http ?? config.http ?? defaultHttp).pipe(Effect.provideService(Http, http))
        ),
      cacheState: (name) => Effect.flatMap(connection(name), (c) => cacheStateOf(c, cache)),
      connection,
      connections: () => [...config.connections.values()],
      registry,
      subscribe: emitter.subscribe,
      storeHealth: store.health,
      config
    } satisfies EngineShape
  })

export const layer = (config: Config, opts: Options = {}): Layer.Layer<Engine, never, TokenStore | Http> =>
  Layer.effect(
    Engine,
    Effect.flatMap(TokenStore, (store) => make(config, store, opts))
  )
