/** The token engine: interprets any manifest to get, cache, renew and apply a connection's token. No provider
 *  has code here; everything provider-specific is in its manifest.
 *
 *  getToken: an in-process copy answers fresh tokens at once. Otherwise one caller per credential (single-flight,
 *  then the store's cross-process lock) re-reads the store and renews: the refresh flow when a refresh token and a
 *  refresh flow exist (falling back to acquire when the provider rejects it), else acquire. A rotated refresh
 *  token is stored before the new access token is returned. While the provider fails, a token inside its
 *  early-refresh margin is still served (never past its real expiry). */
import { Clock, Context, Deferred, Effect, Exit, Layer, Redacted } from "effect"
import { createHmac } from "node:crypto"
import type { Config, HttpSettings } from "./config.ts"
import { defaultHttp } from "./config.ts"
import type { Connection } from "./connection.ts"
import * as Events from "./events.ts"
import * as Expiry from "./expiry.ts"
import type { FlowSpec } from "./manifest.ts"
import * as Observability from "./observability.ts"
import type { ConnectionStoreError, ConnectionStoreShape } from "./connection-store.ts"
import * as Registry from "./connection-registry.ts"
import * as Template from "./template.ts"
import { fromStored, toStored, type ExpirySource, type Token } from "./token.ts"
import { InputInvalid, StoreError, type TokenError, type UpstreamError } from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import { TokenStore, type Entry, type StoreHealth, type TokenStoreShape } from "./token-store.ts"
import * as Upstream from "./upstream.ts"

export type Action = "reused" | "acquired" | "refreshed" | "served_stale"

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

/** The JSON shape of `tessera token --json` and the server's token route. */
export const toJson = (r: TokenResult) => ({
  connection: r.connection,
  provider: r.provider,
  access_token: Redacted.value(r.accessToken),
  token_type: r.tokenType,
  expires_at: r.expiresAt.toISOString(),
  expiry_source: r.expirySource
})

export interface GetOptions {
  /** Renew even if the cached token is fresh (refresh flow when possible). */
  readonly force?: boolean | undefined
  /** Neither read nor write any cache: always a new token. */
  readonly noCache?: boolean | undefined
}

export interface CacheState {
  readonly key: string
  readonly cached: boolean
  readonly obtainedAt?: Date | undefined
  readonly expiresAt?: Date | undefined
  readonly freshness?: Expiry.Freshness | undefined
  readonly hasRefreshToken?: boolean | undefined
  readonly expirySource?: string | undefined
}

export interface EngineShape {
  /** The cached token if it is fresh, synchronously; undefined means "call getToken". The hot path of hot paths. */
  readonly peek: (connection: string) => TokenResult | undefined
  readonly getToken: (connection: string, options?: GetOptions) => Effect.Effect<TokenResult, TokenError>
  /** Forgets the access token (after a 401 from the API); a refresh token is kept for the next renewal. */
  readonly invalidate: (connection: string) => Effect.Effect<void, TokenError>
  /** Forgets the access token only while it is still `token` (the one an API refused), and says whether it did: a
   *  401 that arrives after another caller already replaced the token leaves the new one alone. */
  readonly invalidateIfCurrent: (
    connection: string,
    token: Redacted.Redacted<string>
  ) => Effect.Effect<boolean, TokenError>
  /** The header that authorizes an API call, per the manifest's apply rule. */
  readonly authorization: (
    connection: string,
    options?: GetOptions
  ) => Effect.Effect<
    { readonly header: string; readonly value: Redacted.Redacted<string>; readonly result: TokenResult },
    TokenError
  >
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
}

export class Engine extends Context.Service<Engine, EngineShape>()("tessera/Engine") {}

/** Cache key: an HMAC-SHA256 of the provider, the connection and its effective inputs under the store's
 *  `keySecret` (token-store.ts). A key holds no secret, and without the store's secret it cannot be recomputed, so
 *  whoever can list keys cannot test guesses of a secret input offline. What a key does reveal: it is stable for the
 *  same inputs under the same store key, so one who sees keys can count the cached credentials and tell when a
 *  connection's inputs change (its key changes). */
export const cacheKey = (c: Connection, secret: Buffer): string => {
  const h = createHmac("sha256", secret).update(c.manifest.id).update("\0").update(c.name)
  for (const [k, v] of [...c.inputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    h.update("\0").update(k).update("=").update(Template.reveal(v))
  // A replaced stored connection must not find the token of its previous version, even with equal inputs.
  if (c.source === "api") h.update("\0@version=").update(String(c.version))
  return h.digest("hex").slice(0, 40)
}

const secondsLeft = (t: Token, now: number) => Math.max(0, Math.round((t.expiresAt - now) / 1000))

export interface Options {
  readonly http?: HttpSettings | undefined
  /** Opens the connection store on first need; without one only the config's connections exist. */
  readonly connectionStore?: Effect.Effect<ConnectionStoreShape, ConnectionStoreError> | undefined
  /** A registry to share (tests); by default one is made over the config and `connectionStore`. */
  readonly registry?: Registry.Registry | undefined
}

export const make = (config: Config, store: TokenStoreShape, opts: Options = {}): EngineShape => {
  const http = opts.http ?? config.http ?? defaultHttp
  const emitter = Events.makeEmitter()
  const local = new Map<string, Token>()
  const inflight = new Map<string, Deferred.Deferred<TokenResult, TokenError>>()
  // name -> cache key of the connection as last resolved; a new version of a stored connection gets a new key.
  const keys = new Map<string, string>()
  const versions = new Map<string, number>()
  const keyOf = (c: Connection) => {
    let k = keys.get(c.name)
    if (!k || versions.get(c.name) !== c.version) {
      k = cacheKey(c, store.keySecret)
      keys.set(c.name, k)
      versions.set(c.name, c.version)
    }
    return k
  }

  const registry = opts.registry ?? Registry.make(config, opts.connectionStore)
  // A connection that changed or went away (on any instance): forget its resolved form, its key and its token here,
  // and its token in the shared store, so nobody is served a token obtained with the old inputs.
  registry.onChange((name) => {
    const k = keys.get(name)
    if (k === undefined) return
    keys.delete(name)
    local.delete(k)
    Effect.runFork(Effect.ignore(store.delete(k)))
  })

  const connection = (name: string): Effect.Effect<Connection, TokenError> =>
    registry
      .get(name)
      .pipe(
        Effect.catchTag("ConnectionStoreError", (e) =>
          Effect.fail(new StoreError({ store: `connections (${e.store})`, operation: e.operation, reason: e.reason }))
        )
      )

  const emit = (
    c: Connection,
    type: Events.EventType,
    reason: string,
    extra: { durationMs?: number; error?: string } = {}
  ) =>
    Effect.flatMap(Clock.currentTimeMillis, (at) =>
      Effect.sync(() => emitter.emit({ type, connection: c.name, provider: c.manifest.id, at, reason, ...extra }))
    )

  const result = (c: Connection, t: Token, action: Action, reason: string): TokenResult => ({
    connection: c.name,
    provider: c.manifest.id,
    accessToken: t.accessToken,
    tokenType: t.tokenType,
    expiresAt: new Date(t.expiresAt),
    expirySource: t.expirySource,
    hasRefreshToken: t.refreshToken !== undefined,
    decision: { action, reason }
  })

  const save = (c: Connection, key: string, t: Token): Effect.Effect<void, StoreError> =>
    Effect.andThen(
      store.set(key, { connection: c.name, provider: c.manifest.id, token: toStored(t) }),
      Effect.sync(() => {
        local.set(key, t)
      })
    )

  /** Renews a credential: refresh when possible, else acquire. Runs under single-flight and the store lock. */
  const renew = (c: Connection, key: string, options: GetOptions): Effect.Effect<TokenResult, TokenError> =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      let cached: Token | undefined
      if (!options.noCache) {
        const entry = yield* store.get(key)
        cached = entry ? fromStored(entry.token) : undefined
        if (cached && !options.force && Expiry.freshness(c.manifest, cached, now) === "fresh") {
          local.set(key, cached)
          const r = result(
            c,
            cached,
            "reused",
            `found in the ${store.name} store (from an earlier run or another caller); valid for ${secondsLeft(cached, now)} s more`
          )
          yield* emit(c, "reused", r.decision.reason)
          return r
        }
      }
      const refreshFlow = c.manifest.flows.refresh
      const attemptRefresh = cached?.refreshToken !== undefined && refreshFlow !== undefined
      const why = options.force
        ? "renewal forced"
        : !cached
          ? "no cached token"
          : Expiry.freshness(c.manifest, cached, now) === "expired"
            ? "cached token expired"
            : "cached token inside the early-refresh margin"

      const acquire = (reason: string) =>
        Effect.gen(function* () {
          const x = yield* Upstream.exchange(c, c.manifest.flows.acquire, http)
          if (!options.noCache) yield* save(c, key, x.token)
          yield* emit(c, "acquired", reason, { durationMs: x.durationMs })
          yield* Effect.logInfo("token acquired").pipe(
            Effect.annotateLogs({
              connection: c.name,
              provider: c.manifest.id,
              durationMs: x.durationMs,
              expiresIn: secondsLeft(x.token, now),
              expirySource: x.token.expirySource
            })
          )
          return result(c, x.token, "acquired", `${reason}: acquired a new token (expiry from ${x.token.expirySource})`)
        })

      const renewal: Effect.Effect<TokenResult, UpstreamError | InputInvalid | StoreError> = attemptRefresh
        ? Upstream.exchange(c, refreshFlow!, http, cached).pipe(
            Effect.flatMap((x) =>
              Effect.gen(function* () {
                const rotated = x.token.refreshToken !== undefined
                // RFC 6749 §6: without a new refresh token the old one stays valid, so keep it.
                const token: Token = rotated ? x.token : { ...x.token, refreshToken: cached!.refreshToken }
                if (!options.noCache) yield* save(c, key, token) // stored before it is returned: a rotated refresh token must never be lost
                if (rotated) yield* emit(c, "rotated", "the provider issued a new refresh token")
                yield* emit(c, "refreshed", why, { durationMs: x.durationMs })
                return result(c, token, "refreshed", `${why}: redeemed the refresh token${rotated ? " (rotated)" : ""}`)
              })
            ),
            Effect.catchTag("UpstreamRejected", (e) =>
              e.kind === "reauthenticate" || e.kind === "other"
                ? Effect.andThen(
                    emit(
                      c,
                      "refresh_rejected",
                      `refresh token rejected (${e.code ?? `HTTP ${e.status}`}); acquiring a new token`,
                      { error: e._tag }
                    ),
                    acquire(`${why}, refresh token rejected`)
                  )
                : Effect.fail(e)
            )
          )
        : acquire(why)

      return yield* renewal.pipe(
        Effect.tapError((e) => emit(c, "failed", e.message, { error: e._tag })),
        Effect.catch((e): Effect.Effect<TokenResult, TokenError> =>
          Effect.gen(function* () {
            const at = yield* Clock.currentTimeMillis
            // Serve stale: the provider is failing, but the cached token is still valid for real.
            if (cached && at < cached.expiresAt && e._tag !== "InputInvalid" && !options.noCache) {
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
            }
            return yield* Effect.fail(e)
          })
        )
      )
    })

  // One result object per cached token, reused by every hit; its reason is computed only when read.
  const hits = new WeakMap<Token, TokenResult>()
  const reused = (c: Connection, t: Token): TokenResult => {
    let r = hits.get(t)
    if (!r) {
      r = {
        ...result(c, t, "reused", ""),
        decision: {
          action: "reused",
          get reason() {
            return `cached token valid for ${secondsLeft(t, Date.now())} s more`
          }
        }
      }
      hits.set(t, r)
    }
    return r
  }

  const peek = (name: string): TokenResult | undefined => {
    const c = registry.peek(name)
    if (!c) return undefined
    const t = local.get(keyOf(c))
    if (!t) return undefined
    const now = Date.now()
    if (Expiry.freshness(c.manifest, t, now) !== "fresh") return undefined
    const r = reused(c, t)
    if (emitter.active())
      emitter.emit({ type: "reused", connection: c.name, provider: c.manifest.id, at: now, reason: r.decision.reason })
    return r
  }

  const failing = new Set<string>()
  // A fresh hit is answered by peek without building a generator; everything else takes the full path.
  const getToken = (name: string, options: GetOptions = {}): Effect.Effect<TokenResult, TokenError> =>
    Effect.suspend(() => {
      const hit = options.force || options.noCache ? undefined : peek(name)
      return hit ? Effect.succeed(hit) : obtain(name, options)
    })

  const obtain = (name: string, options: GetOptions): Effect.Effect<TokenResult, TokenError> =>
    Effect.gen(function* () {
      const c = yield* connection(name)
      const key = keyOf(c)
      if (options.noCache) return yield* renew(c, key, options)
      const flightKey = options.force ? `${key}:force` : key
      const existing = inflight.get(flightKey)
      if (existing) return yield* Deferred.await(existing)
      const d = Deferred.makeUnsafe<TokenResult, TokenError>()
      inflight.set(flightKey, d)
      // The renewal runs detached from the caller that started it: if that caller is interrupted (say, an HTTP client
      // hung up), the others waiting on the same credential still get the result instead of waiting forever.
      yield* Effect.forkDetach(
        store.withLock(key, renew(c, key, options)).pipe(
          Observability.renewalSpan(c.name, c.manifest.id),
          Effect.onExit((exit) =>
            Effect.gen(function* () {
              inflight.delete(flightKey)
              if (Exit.isSuccess(exit)) {
                const r = exit.value
                if (failing.has(key) && r.decision.action !== "served_stale") {
                  failing.delete(key)
                  yield* emit(c, "recovered", "the provider answers again")
                }
                if (r.decision.action === "served_stale") failing.add(key)
              } else failing.add(key)
              yield* Deferred.done(d, exit)
            })
          )
        )
      )
      return yield* Deferred.await(d)
    })

  const forget = (c: Connection, key: string, entry: Entry | undefined, reason: string) =>
    Effect.gen(function* () {
      local.delete(key)
      if (entry?.token.refresh_token) {
        const now = yield* Clock.currentTimeMillis
        yield* store.set(key, {
          ...entry,
          token: { ...entry.token, expires_at: Math.min(entry.token.expires_at, now - 1) }
        })
      } else yield* store.delete(key)
      yield* emit(c, "invalidated", reason)
    })

  const invalidate = (name: string): Effect.Effect<void, TokenError> =>
    Effect.gen(function* () {
      const c = yield* connection(name)
      const key = keyOf(c)
      yield* forget(c, key, yield* store.get(key), "invalidated by the caller")
    })

  const invalidateIfCurrent: EngineShape["invalidateIfCurrent"] = (name, token) =>
    Effect.gen(function* () {
      const c = yield* connection(name)
      const key = keyOf(c)
      const refused = Redacted.value(token)
      const held = local.get(key)
      if (held && Redacted.value(held.accessToken) === refused) local.delete(key)
      const entry = yield* store.get(key)
      const now = yield* Clock.currentTimeMillis
      // The store is the truth across processes: another instance may have replaced the token already.
      if (!entry || entry.token.access_token !== refused || entry.token.expires_at <= now) return false
      yield* forget(c, key, entry, "the API refused the token")
      return true
    })

  const authorization: EngineShape["authorization"] = (name, options) =>
    Effect.gen(function* () {
      const r = yield* getToken(name, options)
      const c = yield* connection(name)
      const rendered = Template.render(c.manifest.apply.value, {
        inputs: (n) => c.inputs.get(n),
        token: (f) => (f === "access_token" ? r.accessToken : f === "token_type" ? r.tokenType : undefined)
      })
      if (rendered._tag === "Missing")
        return yield* new InputInvalid({
          connection: c.name,
          provider: c.manifest.id,
          details: [`apply.value needs ${rendered.names.join(", ")}`]
        })
      const v = rendered.value
      return { header: c.manifest.apply.header, value: Template.isSecret(v) ? v : Redacted.make(v), result: r }
    })

  const describeRequest: EngineShape["describeRequest"] = (name, flow = "acquire") =>
    Effect.gen(function* () {
      const c = yield* connection(name)
      const spec = flow === "refresh" ? c.manifest.flows.refresh : c.manifest.flows.acquire
      if (!spec)
        return yield* new InputInvalid({
          connection: c.name,
          provider: c.manifest.id,
          details: [`${c.manifest.id} has no ${flow} flow`]
        })
      let token: Token | undefined
      if (flow === "refresh") {
        const e = yield* store.get(keyOf(c))
        token = e ? fromStored(e.token) : undefined
      }
      const built = TokenRequest.build(c, spec, token)
      if (built._tag === "Invalid")
        return yield* new InputInvalid({ connection: c.name, provider: c.manifest.id, details: built.details })
      return built.request
    })

  const cacheState: EngineShape["cacheState"] = (name) =>
    Effect.gen(function* () {
      const c = yield* connection(name)
      const key = keyOf(c)
      const entry = yield* store.get(key)
      if (!entry) return { key, cached: false }
      const t = fromStored(entry.token)
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

  return {
    peek,
    getToken,
    invalidate,
    invalidateIfCurrent,
    authorization,
    describeRequest,
    cacheState,
    connection,
    connections: () => [...config.connections.values()],
    registry,
    subscribe: emitter.subscribe,
    storeHealth: store.health,
    config
  }
}

export const layer = (config: Config, opts: Options = {}): Layer.Layer<Engine, never, TokenStore> =>
  Layer.effect(
    Engine,
    Effect.map(TokenStore, (store) => make(config, store, opts))
  )
