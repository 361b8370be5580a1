/** The engine's token cache: where a connection's token is found and kept. Holds, each once:
 *  - the cache key (`cacheKey`): an HMAC of the provider, the connection and its inputs under the store's secret,
 *    recomputed when a stored connection changes version (or is created anew under its name);
 *  - the in-process copy in front of the store (`local`, `keep`), which answers fresh tokens without a store read;
 *  - the store's reads and writes (`entry`, `read`, `save`), a new token stored before it is kept here;
 *  - invalidation (`forget`, `forgetIfCurrent`): the access token goes, a refresh token stays (expired) for the next
 *    renewal;
 *  - single-flight (`singleFlight`): one renewal per credential in this process, under the store's cross-process
 *    lock, detached from the caller that started it;
 *  - eviction (`evict`) of a connection that changed or went away.
 *  When to renew and how is renewal.ts; engine.ts puts the two together. */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { createHmac } from "node:crypto"
import type { Connection } from "./connection.ts"
import * as Template from "./template.ts"
import { fromStored, toStored, type Token } from "./token.ts"
import type { StoreError } from "./token-error.ts"
import { TokenStore, type Entry, type TokenStoreShape } from "./token-store.ts"

/** Cache key: an HMAC-SHA256 of the provider, the connection and its effective inputs under the store's
 *  `keySecret` (token-store.ts). A key holds no secret, and without the store's secret it cannot be recomputed, so
 *  whoever can list keys cannot test guesses of a secret input offline. What a key does reveal: it is stable for the
 *  same inputs under the same store key, so one who sees keys can count the cached credentials and tell when a
 *  connection's inputs change (its key changes). */
export const cacheKey = (c: Connection, secret: Buffer): string => {
  const h = createHmac("sha256", secret).update(c.manifest.id).update("\0").update(c.name)
  for (const [k, v] of [...c.inputs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    h.update("\0").update(k).update("=").update(Template.reveal(v))
  // A replaced stored connection must not find the token of its previous version, even with equal inputs; nor one
  // created anew under a deleted one's name (its version starts again at 1) the token the deleted one left.
  if (c.source === "api") h.update("\0@version=").update(String(c.version))
  if (c.source === "api" && c.createdAt !== undefined) h.update("\0@created=").update(String(c.createdAt))
  return h.digest("hex").slice(0, 40)
}

export interface TokenCacheShape {
  readonly store: TokenStoreShape
  /** The cache key of the connection as resolved now; a new version of a stored connection gets a new key. */
  readonly key: (c: Connection) => string
  /** The in-process copy, fresh or not; undefined when this process holds none. */
  readonly local: (c: Connection) => Token | undefined
  /** A number that changes whenever the in-process copy does (a token kept, replaced or forgotten, a key
   *  changed): what `local` answered stays true while it is the same. */
  readonly stamp: () => number
  /** Keeps a token read from the store in the in-process copy. */
  readonly keep: (c: Connection, t: Token) => void
  /** The store's entry for the connection. */
  readonly entry: (c: Connection) => Effect.Effect<Entry | undefined, StoreError>
  /** The store's token for the connection. */
  readonly read: (c: Connection) => Effect.Effect<Token | undefined, StoreError>
  /** Stores a new token, then keeps it here: a rotated refresh token is in the store before anyone is given it. */
  readonly save: (c: Connection, t: Token) => Effect.Effect<void, StoreError>
  /** Forgets the access token, here and in the store; an entry holding a refresh token stays there, expired. */
  readonly forget: (c: Connection, entry: Entry | undefined) => Effect.Effect<void, StoreError>
  /** `forget`, only while the store still holds `token` unexpired (another caller may have replaced it); says
   *  whether it did. The in-process copy goes if it is `token`, whatever the store says. */
  readonly forgetIfCurrent: (c: Connection, token: Redacted.Redacted<string>) => Effect.Effect<boolean, StoreError>
  /** Runs `work` for the connection once at a time per `flight` (a key, or a key with a suffix for forced renewals),
   *  under the store's lock for its key; callers arriving meanwhile share the outcome. The work runs detached from
   *  the caller that started it: if that caller is interrupted, the others still get the result. */
  readonly singleFlight: <A, E>(
    c: Connection,
    flight: (key: string) => string,
    work: Effect.Effect<A, E>
  ) => Effect.Effect<A, E | StoreError>
  /** Forgets what is kept for a connection name that changed or went away, here and in the store. With `version`
   *  (a put of that version was reported), a key computed for that version or a newer one stays: its token is the
   *  current one, and dropping it from a shared store would send every instance back to the provider. */
  readonly evict: (name: string, version?: number) => void
}

export class TokenCache extends Context.Service<TokenCache, TokenCacheShape>()("tessera/TokenCache") {}

/** A Map whose every change bumps `stamp.value`. */
class StampedMap<K, V> extends Map<K, V> {
  private readonly stamp: { value: number }
  constructor(stamp: { value: number }) {
    super()
    this.stamp = stamp
  }
  override set(k: K, v: V): this {
    this.stamp.value++
    return super.set(k, v)
  }
  override delete(k: K): boolean {
    this.stamp.value++
    return super.delete(k)
  }
  override clear(): void {
    this.stamp.value++
    super.clear()
  }
}

const localCopy = () => {
  const stamp = { value: 0 }
  const tokens = new StampedMap<string, Token>(stamp)
  // name -> cache key of the connection as last resolved, with the version and creation it was computed for.
  const keys = new StampedMap<
    string,
    { readonly key: string; readonly version: number; readonly createdAt: number | undefined }
  >(stamp)
  return { tokens, keys, stamp }
}

export const make = (store: TokenStoreShape): TokenCacheShape => {
  const { tokens, keys, stamp } = localCopy()
  const inflight = new Map<string, Deferred.Deferred<unknown, unknown>>()

  const key = (c: Connection) => {
    const known = keys.get(c.name)
    if (known && known.version === c.version && known.createdAt === c.createdAt) return known.key
    const k = cacheKey(c, store.keySecret)
    keys.set(c.name, { key: k, version: c.version, createdAt: c.createdAt })
    return k
  }

  const save = (c: Connection, t: Token) =>
    Effect.andThen(
      store.set(key(c), { connection: c.name, provider: c.manifest.id, token: toStored(t) }),
      Effect.sync(() => void tokens.set(key(c), t))
    )

  const forget = (c: Connection, entry: Entry | undefined) =>
    Effect.gen(function* () {
      const k = key(c)
      tokens.delete(k)
      if (!entry?.token.refresh_token) return yield* store.delete(k)
      const now = yield* Clock.currentTimeMillis
      yield* store.set(k, {
        ...entry,
        token: { ...entry.token, expires_at: Math.min(entry.token.expires_at, now - 1) }
      })
    })

  const forgetIfCurrent: TokenCacheShape["forgetIfCurrent"] = (c, token) =>
    Effect.gen(function* () {
      const refused = Redacted.value(token)
      const held = tokens.get(key(c))
      if (held && Redacted.value(held.accessToken) === refused) tokens.delete(key(c))
      const entry = yield* store.get(key(c))
      const now = yield* Clock.currentTimeMillis
      // The store is the truth across processes: another instance may have replaced the token already.
      if (!entry || entry.token.access_token !== refused || entry.token.expires_at <= now) return false
      yield* forget(c, entry)
      return true
    })

  const singleFlight = <A, E>(c: Connection, flight: (key: string) => string, work: Effect.Effect<A, E>) =>
    Effect.suspend((): Effect.Effect<A, E | StoreError> => {
      const k = key(c)
      const id = flight(k)
      const existing = inflight.get(id) as Deferred.Deferred<A, E | StoreError> | undefined
      if (existing) return Deferred.await(existing)
      const d = Deferred.makeUnsafe<A, E | StoreError>()
      inflight.set(id, d as Deferred.Deferred<unknown, unknown>)
      const leader = store.withLock(k, work).pipe(
        Effect.onExit((exit) =>
          Effect.andThen(
            Effect.sync(() => inflight.delete(id)),
            Deferred.done(d, exit)
          )
        )
      )
      return Effect.andThen(Effect.forkDetach(leader), Deferred.await(d))
    })

  return {
    store,
    key,
    local: (c) => tokens.get(key(c)),
    stamp: () => stamp.value,
    keep: (c, t) => void tokens.set(key(c), t),
    entry: (c) => store.get(key(c)),
    read: (c) => Effect.map(store.get(key(c)), (e) => (e ? fromStored(e.token) : undefined)),
    save,
    forget,
    forgetIfCurrent,
    singleFlight,
    evict: (name, version) => {
      const known = keys.get(name)
      if (known === undefined || (version !== undefined && known.version >= version)) return
      keys.delete(name)
      tokens.delete(known.key)
      Effect.runFork(Effect.ignore(store.delete(known.key)))
    }
  }
}

export const layer: Layer.Layer<TokenCache, never, TokenStore> = Layer.effect(TokenCache, Effect.map(TokenStore, make))
