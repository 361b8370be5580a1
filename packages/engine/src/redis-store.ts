/** The shared token store for several tessera instances: tokens in Redis, encrypted, with a cross-process lock so
 *  that one instance renews a credential while the others wait for its result.
 *
 *  Client: node-redis (`redis`), the client Redis itself maintains and develops (ioredis is in maintenance mode);
 *  it is also the client `@effect/platform-node` supports.
 *
 *  - Values are sealed with AES-256-GCM (secret-box.ts) under `store.encryption_key`, which is
 *    required here. Each value names its key id, so after a key rotation an old entry reads as a miss and the next
 *    write replaces it. The entry's cache key is the associated data: a value copied under another key fails to
 *    open (a miss, with one warning) instead of being served as that entry's token.
 *  - Keys hold no secret: `<prefix>token:<key>`, the key being the engine's cache key, an HMAC under a secret
 *    derived from the encryption key (token-store.ts `keySecretFrom`), so every instance with that key finds the
 *    same entries and nobody without it can recompute one.
 *  - TTL: an entry lives until its access token expires. An entry holding a refresh token lives at least
 *    `refreshTokenTtlMs` (default 30 days): providers rarely say how long a refresh token lasts and it outlives the
 *    access token, so dropping it with the access token would force a full login; the cap bounds how long an
 *    abandoned credential stays in Redis.
 *  - Lock (`withLock`): `SET <prefix>lock:<hash> <holder> NX PX lease`. The holder renews the lease every third of
 *    it while it works, so a slow provider does not lose it and a dead holder frees it after one lease at most.
 *    Sooner, when its death is certain: the value names the Redis server's run id and the holder's connection id
 *    (`<run id>.<client id>.<random>`), and a waiter that finds that connection gone (`CLIENT LIST ID` answers
 *    nothing; a SIGKILLed process's socket is closed by its kernel) on the same server run frees the lock at once
 *    (compare-and-delete). A holder that reconnected (a new connection id) stamps its new id into the value at its
 *    next renewal; until then a waiter may take over, as after a lost lease. The engine's durable grants (grants.ts)
 *    never depend on this lock: a refresh token is redeemed under the connection store's claim.
 *    Release is a compare-and-delete script that also publishes the key on `<prefix>lock-released`; waiters wake on
 *    that message, or poll with backoff (capped by the lock's remaining lease) when pub/sub is unavailable, then take
 *    the lock themselves and run their effect, which re-reads the store and finds the new token.
 *  - Bounded when Redis is down: a connect timeout, no offline queue (commands fail at once while disconnected), a
 *    timeout on every command and a capped reconnect backoff that never gives up. `make`/`layer` wrap the store in
 *    `ResilientStore` (memory fallback, logged once, `degraded` health, recovery); `makeRedis` is the bare store. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { createClient } from "redis"
import { isSealed, keyId, open, parseKey, seal } from "./secret-box.ts"
import * as ResilientStore from "./resilient-store.ts"
import { StoreError } from "./token-error.ts"
import {
  decodeEntry,
  keySecretFrom,
  TokenStore,
  type Entry,
  type StoreHealth,
  type TokenStoreShape
} from "./token-store.ts"

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (required). */
  readonly url?: Redacted.Redacted<string> | undefined
  /** Prepended to every key and to the release channel (default "tessera:"). */
  readonly keyPrefix?: string | undefined
  /** 32 bytes, base64 or 64 hex digits (required). */
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /** Lock lease: how long a dead holder can block the others at most (default 10 s; renewed while held); one whose
   *  connection is seen gone is freed at once. */
  readonly leaseMs?: number | undefined
  /** How long a caller waits for another instance's lock before failing (default 60 s). */
  readonly lockWaitMs?: number | undefined
  /** Per connection attempt (default 2 s). */
  readonly connectTimeoutMs?: number | undefined
  /** Per command (default 2 s): a request never waits longer on Redis. */
  readonly commandTimeoutMs?: number | undefined
  /** Cap of the reconnect backoff (default 2 s). */
  readonly reconnectMaxMs?: number | undefined
  /** How long an entry holding a refresh token is kept at least (default 30 days). */
  readonly refreshTokenTtlMs?: number | undefined
  /** `make`/`layer`: while Redis is down, how often to check whether it is back (default 1 s). */
  readonly probeIntervalMs?: number | undefined
}

export const defaults = {
  keyPrefix: "tessera:",
  leaseMs: 10_000,
  lockWaitMs: 60_000,
  connectTimeoutMs: 2_000,
  commandTimeoutMs: 2_000,
  reconnectMaxMs: 2_000,
  refreshTokenTtlMs: 30 * 24 * 3600 * 1000
} as const

/** The bare Redis store, with the key layout tests and tools need. */
export interface RedisStoreShape extends TokenStoreShape {
  readonly tokenKey: (key: string) => string
  readonly lockKey: (key: string) => string
  readonly channel: string
}

type Client = ReturnType<typeof createClient>

/** A lock this process holds: its random part, and the value stored now (restamped with a new connection id). */
interface Held {
  readonly token: string
  value: string
}

// KEYS[1] lock; ARGV value, lease ms. {1} when taken, else {0, remaining lease ms, the holder's value}.
const ACQUIRE = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {0, redis.call('PTTL', KEYS[1]), redis.call('GET', KEYS[1])}`
// Compare-and-delete: a holder whose lease ran out must not free the lock another instance holds now.
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1]); redis.call('PUBLISH', ARGV[2], ARGV[3]); return 1 end
return 0`
// KEYS[1] lock; ARGV held value, lease ms, new value (the holder's current connection id stamped in).
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[2]); return 1 end
return 0`

const configError = (reason: string) => new StoreError({ store: "redis", operation: "configure", reason })

/** The URL without credentials, for messages and health. */
export const describeUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.protocol}//${u.host}${u.pathname.length > 1 ? u.pathname : ""}`
  } catch {
    return "(unparsable url)"
  }
}

const reasonOf = (e: unknown): string => {
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message || e.name
  }
  return String(e)
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, "\\$&")

const sleepMs = (ms: number) =>
  new Promise<void>((r) => {
    setTimeout(r, ms).unref()
  })

/** Closes a client without waiting on a dead server: a graceful close when connected, else a hard stop. */
const shut = async (c: Client, ms: number) => {
  if (!c.isOpen) return
  if (c.isReady) await Promise.race([c.close().catch(() => undefined), sleepMs(ms)])
  if (c.isOpen) c.destroy()
}

const settings = (opts: RedisStoreOptions): Effect.Effect<{ readonly url: string; readonly key: Buffer }, StoreError> =>
  Effect.suspend(() => {
    if (!opts.url) return Effect.fail(configError("store.url is required for type: redis (e.g. url: ${env:REDIS_URL})"))
    const url = Redacted.value(opts.url)
    if (!/^rediss?:\/\/[^/]/.test(url))
      return Effect.fail(
        configError(`store.url must be redis://host:port or rediss://host:port, got ${describeUrl(url)}`)
      )
    if (!opts.encryptionKey) {
      return Effect.fail(
        configError(
          "store.encryption_key is required for type: redis: tokens in a shared Redis are encrypted with it " +
            "(32 bytes as base64 or 64 hex digits, e.g. encryption_key: ${env:TESSERA_ENCRYPTION_KEY}; make one with `openssl rand -base64 32`)"
        )
      )
    }
    const key = parseKey(Redacted.value(opts.encryptionKey))
    if (!key) return Effect.fail(configError("store.encryption_key must be 32 bytes, given as base64 or 64 hex digits"))
    return Effect.succeed({ url, key })
  })

/** The bare Redis store: its calls fail with StoreError while Redis is unreachable. Both clients (commands and the
 *  release subscription) are closed when the scope closes. Building it waits at most one connect timeout. */
export const makeRedis = (opts: RedisStoreOptions): Effect.Effect<RedisStoreShape, StoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const { url, key } = yield* settings(opts)
    const prefix = opts.keyPrefix ?? defaults.keyPrefix
    const leaseMs = opts.leaseMs ?? defaults.leaseMs
    const lockWaitMs = opts.lockWaitMs ?? defaults.lockWaitMs
    const connectTimeoutMs = opts.connectTimeoutMs ?? defaults.connectTimeoutMs
    const commandTimeoutMs = opts.commandTimeoutMs ?? defaults.commandTimeoutMs
    const reconnectMaxMs = opts.reconnectMaxMs ?? defaults.reconnectMaxMs
    const refreshTokenTtlMs = opts.refreshTokenTtlMs ?? defaults.refreshTokenTtlMs
    const where = describeUrl(url)
    const channel = `${prefix}lock-released`
    const tokenKey = (k: string) => `${prefix}token:${k}`
    const lockKey = (k: string) => `${prefix}lock:${k}`

    // Wake-ups for waiters: a count of release messages seen per key, and who is waiting.
    const released = new Map<string, number>()
    const waiting = new Map<string, Set<() => void>>()
    const onReleased = (k: string) => {
      released.set(k, (released.get(k) ?? 0) + 1)
      for (const wake of waiting.get(k) ?? []) wake()
    }

    // `<run id>.<client id>` of the command connection, once learned after each (re)connect; "-.-" while unknown.
    let identity = "-.-"
    const identify = (c: Client): Promise<void> =>
      Promise.all([c.sendCommand(["CLIENT", "ID"]), c.sendCommand(["INFO", "server"])]).then(
        ([id, info]) => {
          const run = /run_id:([0-9a-f]+)/.exec(String(info))?.[1]
          identity = run !== undefined && /^\d+$/.test(String(id)) ? `${run}.${String(id)}` : "-.-"
        },
        () => undefined
      )
    let lastError: string | undefined
    const offline = () => (client.isReady || !lastError ? "" : ` (last connection error: ${lastError})`)
    const { client } = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const client: Client = createClient({
            url,
            // Fail at once instead of queueing while disconnected: the resilient wrapper then serves from memory.
            disableOfflineQueue: true,
            socket: {
              connectTimeout: connectTimeoutMs,
              // Never give up (a client that stops reconnecting would stay down after Redis returns); capped and jittered.
              // node-redis asks this callback for each delay, outside any fiber: no place for a Schedule.
              reconnectStrategy: (retries: number) =>
                Math.round(Math.min(50 * 2 ** Math.min(retries, 10), reconnectMaxMs) * (0.8 + Math.random() * 0.4))
            }
          })
          const sub = client.duplicate()
          // Connection errors surface as failed commands (and the wrapper's one warning); unhandled they would crash.
          client.on("error", (e: unknown) => {
            lastError = reasonOf(e)
          })
          client.on("ready", () => {
            lastError = undefined
            identity = "-.-"
            void identify(client)
          })
          sub.on("error", () => undefined)
          const ready = client.connect().then(
            () => true,
            () => false
          )
          sub
            .connect()
            .then(() => sub.subscribe(channel, onReleased))
            .catch(() => undefined)
          await Promise.race([ready, sleepMs(connectTimeoutMs)])
          return { client, sub }
        },
        catch: (e) => configError(`store.url ${where}: ${reasonOf(e)}`)
      }), // connection failures are retried, not thrown: only a bad URL ends here
      ({ client, sub }) =>
        Effect.promise(() => Promise.all([shut(sub, commandTimeoutMs), shut(client, commandTimeoutMs)]))
    )

    const call = <A>(operation: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
      Effect.tryPromise({
        try: f,
        catch: (e) => new StoreError({ store: "redis", operation, reason: `${where}: ${reasonOf(e)}${offline()}` })
      }).pipe(
        Effect.timeoutOrElse({
          duration: commandTimeoutMs,
          orElse: () =>
            Effect.fail(
              new StoreError({ store: "redis", operation, reason: `${where}: no answer within ${commandTimeoutMs} ms` })
            )
        })
      )

    // Once per store: a value that does not open under our key and its own entry key was tampered with or copied
    // from another entry. Either way it is a miss (the next write replaces it), worth saying once, not per read.
    let warnedMisplaced = false
    const misplaced = (k: string): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (warnedMisplaced) return Effect.void
        warnedMisplaced = true
        return Effect.logWarning(
          `Redis entry ${tokenKey(k)} does not open under this store's key for this entry (tampered with, or copied from another entry); treated as a miss`
        ).pipe(Effect.annotateLogs({ store: "redis" }))
      })

    /** The entry stored under `k`, or undefined: absent, sealed under another key (rotated), corrupt or misplaced. */
    const decode = (k: string, raw: string | null | undefined): { entry?: Entry; misplaced?: true } => {
      if (!raw) return {}
      try {
        const sealed: unknown = JSON.parse(raw)
        if (!isSealed(sealed)) return {}
        const opened = open(key, sealed, k)
        if (opened._tag === "Damaged") return { misplaced: true }
        if (opened._tag === "UnknownKey") return {}
        const entry = decodeEntry(opened.plain)
        return entry ? { entry } : {}
      } catch {
        return {}
      }
    }
    const decodeOrWarn = (k: string, raw: string | null | undefined): Effect.Effect<Entry | undefined> => {
      const d = decode(k, raw)
      return d.misplaced ? Effect.as(misplaced(k), undefined) : Effect.succeed(d.entry)
    }

    const ttlFor = (entry: Entry, now: number): number => {
      const left = Math.max(1000, Math.ceil(entry.token.expires_at - now))
      return entry.token.refresh_token ? Math.max(left, refreshTokenTtlMs) : left
    }

    const scanKeys = (operation: string) =>
      call(operation, async () => {
        const out: string[] = []
        for await (const batch of client.scanIterator({ MATCH: `${escapeGlob(prefix)}token:*`, COUNT: 200 }))
          out.push(...batch)
        return [...new Set(out)]
      })

    const kid = keyId(key)

    // Waits until a release of `k` is announced after `seen`, or `ms` pass.
    const awaitRelease = (k: string, seen: number, ms: number) =>
      Effect.callback<void>((resume) => {
        if ((released.get(k) ?? 0) !== seen) return resume(Effect.void)
        const set = waiting.get(k) ?? new Set<() => void>()
        waiting.set(k, set)
        const wake = () => resume(Effect.void)
        set.add(wake)
        const timer = setTimeout(wake, ms)
        return Effect.sync(() => {
          clearTimeout(timer)
          set.delete(wake)
          if (set.size === 0) waiting.delete(k)
        })
      })

    const tryAcquire = (k: string, token: string) =>
      call("lock", async () => {
        const r = (await client.eval(ACQUIRE, {
          keys: [lockKey(k)],
          arguments: [token, String(leaseMs)]
        })) as unknown as ReadonlyArray<number>
        return r[0] === 1
          ? { held: true as const }
          : { held: false as const, leftMs: Number(r[1] ?? -1), holder: r[2] === undefined ? undefined : String(r[2]) }
      })

    // The identity once known: asked again while unknown (just after a (re)connect, before `identify` answered), so
    // that a lock taken then is stamped too, and a waiter can tell when its holder dies.
    const identified: Effect.Effect<void> = Effect.suspend(() =>
      identity === "-.-" ? Effect.promise(() => identify(client)) : Effect.void
    )

    // Whether a lock's holder is certainly dead: stamped on this server run with a connection id that is neither
    // ours nor open any more. Unknown (no stamp, another run, CLIENT LIST refused) counts as alive.
    const holderGone = (holder: string | undefined): Effect.Effect<boolean> =>
      Effect.gen(function* () {
        const [run, id] = (holder ?? "").split(".")
        if (!run || !id || run === "-" || !/^\d+$/.test(id)) return false
        yield* identified
        const [ourRun, ourId] = identity.split(".")
        if (run !== ourRun || id === ourId) return false
        return yield* call("client list", () => client.sendCommand(["CLIENT", "LIST", "ID", id])).pipe(
          Effect.map((reply) => String(reply ?? "").trim() === ""),
          Effect.orElseSucceed(() => false)
        )
      })

    const release = (k: string, value: string) =>
      call("unlock", () => client.eval(RELEASE, { keys: [lockKey(k)], arguments: [value, channel, k] })).pipe(
        Effect.ignore
      )

    // While held, the lease is renewed every third of it; a renewal that finds the lock gone ends it. Redis down:
    // keep trying, the work goes on under the local fallback anyway.
    const every = Math.max(50, Math.floor(leaseMs / 3))
    const renewLease = (k: string, held: Held): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const next = `${identity}.${held.token}`
        return call("renew lock", () =>
          client.eval(RENEW, { keys: [lockKey(k)], arguments: [held.value, String(leaseMs), next] })
        ).pipe(
          Effect.result,
          Effect.map((r) => {
            if (r._tag === "Success" && Number(r.success) === 1) held.value = next
            return !(r._tag === "Success" && Number(r.success) === 0)
          })
        )
      })
    const keepLease = (k: string, held: Held): Effect.Effect<void> =>
      Effect.sleep(every).pipe(
        Effect.andThen(renewLease(k, held)),
        Effect.repeat(
          Schedule.spaced(every).pipe(
            Schedule.setInputType<boolean>(),
            Schedule.while(({ input }) => input)
          )
        ),
        Effect.andThen(
          Effect.logWarning(
            "lost the Redis lock lease before the renewal finished; another instance may renew too"
          ).pipe(Effect.annotateLogs({ store: "redis" }))
        )
      )

    const withLock = <A, E, R>(k: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | StoreError, R> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function* () {
          const token = randomBytes(16).toString("hex")
          yield* identified
          const held: Held = { token, value: `${identity}.${token}` }
          const start = yield* Clock.currentTimeMillis
          for (let attempt = 0; ; attempt++) {
            const seen = released.get(k) ?? 0
            held.value = `${identity}.${token}`
            const value = held.value
            // On a timeout the SET may still have landed: free it beside, without making the caller wait again.
            const r = yield* tryAcquire(k, value).pipe(Effect.tapError(() => Effect.forkDetach(release(k, value))))
            if (r.held) break
            if (yield* holderGone(r.holder)) {
              // Its process died holding it: free it (only that value) and try again at once.
              yield* release(k, r.holder!)
              yield* Effect.logDebug("freed a Redis lock whose holder's connection is gone").pipe(
                Effect.annotateLogs({ store: "redis" })
              )
              continue
            }
            const now = yield* Clock.currentTimeMillis
            if (now - start >= lockWaitMs) {
              return yield* new StoreError({
                store: "redis",
                operation: "lock",
                reason: `another instance held the lock for more than ${lockWaitMs} ms`
              })
            }
            // Pub/sub normally wakes us first; polling covers a lost message, and never sleeps past the lease's end.
            // Not a Schedule: a Schedule's delay is a sleep, and this wait must end early when a release is announced.
            const backoff = Math.min(25 * 2 ** attempt, 500)
            yield* restore(awaitRelease(k, seen, r.leftMs > 0 ? Math.min(backoff, r.leftMs + 5) : backoff))
          }
          const renewing = yield* Effect.forkChild(keepLease(k, held), { uninterruptible: false })
          const exit = yield* Effect.exit(restore(effect))
          yield* Fiber.interrupt(renewing)
          yield* release(k, held.value)
          return yield* exit
        })
      )

    const health = (): Effect.Effect<StoreHealth> =>
      Effect.suspend(() =>
        client.isReady
          ? call("ping", () => client.ping()).pipe(Effect.as<StoreHealth>({ status: "ok", detail: `redis ${where}` }))
          : Effect.fail(
              new StoreError({ store: "redis", operation: "ping", reason: `${where}: not connected${offline()}` })
            )
      ).pipe(Effect.catch((e) => Effect.succeed<StoreHealth>({ status: "down", detail: `redis ${e.reason}` })))

    const store: RedisStoreShape = {
      name: "redis",
      keySecret: keySecretFrom(key),
      tokenKey,
      lockKey,
      channel,
      get: (k) => call("read", () => client.get(tokenKey(k))).pipe(Effect.flatMap((raw) => decodeOrWarn(k, raw))),
      set: (k, entry) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          call("write", () =>
            client.set(tokenKey(k), JSON.stringify(seal(key, JSON.stringify(entry), k)), {
              expiration: { type: "PX", value: ttlFor(entry, now) }
            })
          ).pipe(Effect.asVoid)
        ),
      delete: (k) => call("delete", () => client.del(tokenKey(k))).pipe(Effect.asVoid),
      list: () =>
        Effect.gen(function* () {
          const keys = (yield* scanKeys("list")).sort()
          if (keys.length === 0) return []
          const values = yield* call("list", () => client.mGet(keys))
          const out: Array<readonly [string, Entry]> = []
          for (const [i, full] of keys.entries()) {
            const k = full.slice(tokenKey("").length)
            const e = yield* decodeOrWarn(k, values[i])
            if (e) out.push([k, e])
          }
          return out
        }),
      clear: () =>
        Effect.gen(function* () {
          const keys = yield* scanKeys("clear")
          if (keys.length === 0) return 0
          return yield* call("clear", () => client.unlink(keys))
        }),
      withLock,
      health
    }
    yield* Effect.logDebug(
      `redis store ${where}, prefix ${JSON.stringify(prefix)}, key id ${kid}, ${client.isReady ? "connected" : "not connected yet"}`
    )
    return store
  })

/** The Redis store behind the resilient wrapper: served from memory while Redis is unreachable. */
export const make = (opts: RedisStoreOptions): Effect.Effect<TokenStoreShape, StoreError, Scope.Scope> =>
  Effect.map(makeRedis(opts), (redis) => ResilientStore.make(redis, { probeIntervalMs: opts.probeIntervalMs }))

/** `make` as the TokenStore; the Redis clients close when the layer is released. */
export const layer = (opts: RedisStoreOptions): Layer.Layer<TokenStore, StoreError> =>
  Layer.effect(TokenStore, make(opts))

/** The bare store as the TokenStore (no fallback): for tools that must see Redis failures. */
export const layerStrict = (opts: RedisStoreOptions): Layer.Layer<TokenStore, StoreError> =>
  Layer.effect(TokenStore, makeRedis(opts))
