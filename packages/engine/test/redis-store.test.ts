/** The Redis token store in one process: config wiring (`type: redis`), encrypted values with a key id, TTLs from
 *  the token's expiry, the lock (mutual exclusion, wake-up on release, compare-and-delete), and degrading to memory
 *  while Redis is down, then recovering. Cross-process behaviour is in redis-fleet.test.ts. */
import { Effect, Layer, Logger, ManagedRuntime, Redacted } from "effect"
import { afterEach, expect, it } from "vitest"
import * as Config from "../src/config.ts"
import * as Engine from "../src/engine.ts"
import { keyId, openOrUndefined as open_, parseKey } from "../src/secret-box.ts"
import * as RedisStore from "../src/redis-store.ts"
import * as Runtime from "../src/runtime.ts"
import type { StoreError } from "../src/token-error.ts"
import { TokenStore, type TokenStoreShape } from "../src/token-store.ts"
import { makeHarness, type Harness } from "./services/harness.ts"
import {
  describeRedis,
  dropPrefix,
  eventually,
  keysUnder,
  newEncryptionKey,
  rawClient,
  redisUrl,
  uniquePrefix,
  type RawClient
} from "./services/redis-available.ts"
import { hasRedisServer, redisServer, type RedisServer } from "./services/redis-server.ts"

let h: Harness | undefined
let raw: RawClient | undefined
let srv: RedisServer | undefined
const prefixes: string[] = []
const runtimes: Array<ManagedRuntime.ManagedRuntime<TokenStore, StoreError>> = []

afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  await h?.close()
  h = undefined
  await srv?.stop()
  srv = undefined
  if (prefixes.length > 0) {
    const c = await rawClient()
    for (const p of prefixes.splice(0)) await dropPrefix(c, p)
    c.destroy()
  }
  raw?.destroy()
  raw = undefined
})

const prefix = (label: string) => {
  const p = uniquePrefix(label)
  prefixes.push(p)
  return p
}

/** A Redis store (resilient, as `type: redis` builds it) whose clients close after the test. */
const openStore = async (opts: RedisStore.RedisStoreOptions): Promise<TokenStoreShape> => {
  const rt = ManagedRuntime.make(RedisStore.layer(opts))
  runtimes.push(rt)
  return rt.runPromise(Effect.map(TokenStore, (s) => s))
}

const bareStore = async (opts: RedisStore.RedisStoreOptions): Promise<RedisStore.RedisStoreShape> => {
  const rt = ManagedRuntime.make(Layer.effect(TokenStore, RedisStore.makeRedis(opts)))
  runtimes.push(rt as ManagedRuntime.ManagedRuntime<TokenStore, StoreError>)
  return (await rt.runPromise(Effect.map(TokenStore, (s) => s))) as RedisStore.RedisStoreShape
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

it("type: redis without encryption_key is a config error at load, with its position", async () => {
  const r = await Effect.runPromise(
    Effect.result(
      Config.fromObject(
        { store: { type: "redis", url: "${env:REDIS_URL_FOR_TEST}" } },
        { REDIS_URL_FOR_TEST: "redis://127.0.0.1:1" }
      )
    )
  )
  expect(r._tag).toBe("Failure")
  if (r._tag !== "Failure") return
  expect(r.failure._tag).toBe("ConfigInvalid")
  expect(r.failure.message).toMatch(/:\d+:\d+: error: store: missing required key "encryption_key"/)
})

it("the store itself also refuses to start without an encryption key, before connecting (programmatic use)", async () => {
  const rt = ManagedRuntime.make(RedisStore.layer({ url: Redacted.make("redis://127.0.0.1:1"), keyPrefix: "t:" }))
  const error = await rt.runPromise(Effect.void).then(
    () => undefined,
    (e: StoreError) => e
  )
  await rt.dispose()
  expect(error?._tag).toBe("StoreError")
  expect(error?.operation).toBe("configure")
  expect(error?.message).toMatch(/store\.encryption_key is required for type: redis/)
})

describeRedis("Redis token store", () => {
  it("type: redis in the config stores ciphertext under the key id, never the token; TTL follows expiry, longer with a refresh token", async () => {
    const p = prefix("cipher")
    const key = newEncryptionKey()
    const config = await Effect.runPromise(
      Config.fromObject(
        {
          store: { type: "redis", url: "${env:T_REDIS_URL}", key_prefix: p, encryption_key: "${env:T_KEY}" }
        },
        { T_REDIS_URL: redisUrl, T_KEY: key }
      )
    )
    const rt = ManagedRuntime.make(Runtime.storeLayer(config))
    runtimes.push(rt)
    const store = await rt.runPromise(Effect.map(TokenStore, (s) => s))
    expect(store.name).toBe("redis")
    expect((await Effect.runPromise(store.health())).status).toBe("ok")
    h = await makeHarness({ store, sandbox: { ttlSeconds: { cube: 600, brandbox: 600 } } })
    const cube = await h.run(h.engine.getToken("cube"))
    await h.run(h.engine.getToken("brandbox"))

    raw = await rawClient()
    const cubeCacheKey = Engine.cacheKey(h.config.connections.get("cube")!, store.keySecret)
    const cubeKey = `${p}token:${cubeCacheKey}`
    const brandboxKey = `${p}token:${Engine.cacheKey(h.config.connections.get("brandbox")!, store.keySecret)}`
    expect(await keysUnder(raw, p)).toEqual([cubeKey, brandboxKey].sort())
    const value = (await raw.get(cubeKey))!
    const access = Redacted.value(cube.accessToken)
    expect(value).not.toContain(access)
    expect(value).not.toContain(access.slice(0, 16))
    for (const field of ["access_token", "refresh_token", "token_type", "expires_at", "cube"])
      expect(value).not.toContain(field)
    const sealed = JSON.parse(value) as { v: 1; kid: string; iv: string; tag: string; ct: string }
    expect(Object.keys(sealed).sort()).toEqual(["ct", "iv", "kid", "tag", "v"])
    expect(sealed.kid).toBe(keyId(parseKey(key)!))
    const plain = JSON.parse(open_(parseKey(key)!, sealed, cubeCacheKey)!) as {
      connection: string
      token: { access_token: string }
    }
    expect(plain.connection).toBe("cube")
    expect(plain.token.access_token).toBe(access)
    // Under another key the same value does not open, nor under the right key as another entry's value.
    expect(open_(parseKey(newEncryptionKey())!, sealed, cubeCacheKey)).toBeUndefined()
    expect(open_(parseKey(key)!, sealed, "another-entry")).toBeUndefined()

    const cubeTtl = await raw.pTTL(cubeKey)
    expect(cubeTtl).toBeGreaterThan(590_000)
    expect(cubeTtl).toBeLessThanOrEqual(600_000)
    const brandboxTtl = await raw.pTTL(brandboxKey)
    expect(brandboxTtl).toBeGreaterThan(RedisStore.defaults.refreshTokenTtlMs - 60_000)
  })

  it("reads, lists and clears its own entries; an entry sealed under another key is a miss", async () => {
    const p = prefix("crud")
    const key = newEncryptionKey()
    const store = await openStore({ url: Redacted.make(redisUrl), keyPrefix: p, encryptionKey: Redacted.make(key) })
    const rotated = await openStore({
      url: Redacted.make(redisUrl),
      keyPrefix: p,
      encryptionKey: Redacted.make(newEncryptionKey())
    })
    const now = Date.now()
    const entry = (n: number) => ({
      connection: `c${n}`,
      provider: "cube",
      token: {
        v: 1 as const,
        access_token: `at-${n}`,
        token_type: "Bearer",
        expires_at: now + 60_000,
        obtained_at: now,
        expiry_source: "expires_in" as const
      }
    })
    await Effect.runPromise(Effect.all([store.set("k1", entry(1)), store.set("k2", entry(2))]))
    expect(await Effect.runPromise(store.get("k1"))).toEqual(entry(1))
    expect(await Effect.runPromise(store.get("nope"))).toBeUndefined()
    expect((await Effect.runPromise(store.list())).map(([k]) => k)).toEqual(["k1", "k2"])
    expect(await Effect.runPromise(rotated.get("k1"))).toBeUndefined()
    expect(await Effect.runPromise(rotated.list())).toEqual([])
    await Effect.runPromise(store.delete("k1"))
    expect(await Effect.runPromise(store.get("k1"))).toBeUndefined()
    expect(await Effect.runPromise(store.clear())).toBe(1)
    raw = await rawClient()
    expect(await keysUnder(raw, p)).toEqual([])
  })

  it("a value copied under another entry's key does not open there: a miss, with one warning", async () => {
    const p = prefix("aad")
    const store = await openStore({
      url: Redacted.make(redisUrl),
      keyPrefix: p,
      encryptionKey: Redacted.make(newEncryptionKey())
    })
    const now = Date.now()
    const token = (at: string) => ({
      v: 1 as const,
      access_token: at,
      token_type: "Bearer",
      expires_at: now + 60_000,
      obtained_at: now,
      expiry_source: "expires_in" as const
    })
    await Effect.runPromise(store.set("victim", { connection: "victim", provider: "cube", token: token("at-victim") }))
    await Effect.runPromise(store.set("other", { connection: "other", provider: "cube", token: token("at-other") }))
    raw = await rawClient()
    await raw.set(`${p}token:victim`, (await raw.get(`${p}token:other`))!) // an attacker with write access swaps values
    await raw.set(`${p}token:third`, (await raw.get(`${p}token:other`))!)
    const logged: string[] = []
    const logger = Logger.make<unknown, void>((o) => {
      logged.push(`${String(o.logLevel)} ${String(o.message)}`)
    })
    const withLogs = <A, E>(eff: Effect.Effect<A, E>) =>
      Effect.runPromise(eff.pipe(Effect.provide(Logger.layer([logger]))))
    expect(await withLogs(store.get("victim"))).toBeUndefined()
    expect(await withLogs(store.get("third"))).toBeUndefined()
    expect((await withLogs(store.get("other")))?.token.access_token).toBe("at-other")
    expect((await withLogs(store.list())).map(([k]) => k)).toEqual(["other"])
    const warned = logged.filter((l) => l.startsWith("Warn"))
    expect(warned).toHaveLength(1)
    expect(warned[0]).toContain(`Redis entry ${p}token:victim does not open`)
  })

  it("cache keys are an HMAC under a secret derived from the encryption key: stable per key, different across keys", async () => {
    const config = await Effect.runPromise(
      Config.fromObject({
        connections: {
          api: {
            provider: "oauth2",
            inputs: { token_url: "https://idp.example/token", client_id: "c", client_secret: "guessable" }
          }
        }
      })
    )
    const c = config.connections.get("api")!
    const k1 = newEncryptionKey()
    const open = (key: string) =>
      openStore({ url: Redacted.make(redisUrl), keyPrefix: prefix("hmac"), encryptionKey: Redacted.make(key) })
    const [a, again, b] = await Promise.all([open(k1), open(k1), open(newEncryptionKey())])
    expect(Engine.cacheKey(c, a.keySecret)).toBe(Engine.cacheKey(c, again.keySecret))
    expect(Engine.cacheKey(c, a.keySecret)).not.toBe(Engine.cacheKey(c, b.keySecret))
    expect(a.keySecret.equals(parseKey(k1)!)).toBe(false) // derived, not the encryption key itself
  })

  it("withLock excludes a second store instance, which is woken by the release message rather than by polling", async () => {
    const p = prefix("lock")
    const opts = { url: Redacted.make(redisUrl), keyPrefix: p, encryptionKey: Redacted.make(newEncryptionKey()) }
    const [a, b] = await Promise.all([bareStore(opts), bareStore(opts)])
    const spans: Array<{ who: string; start: number; end: number }> = []
    const hold = (who: string, ms: number) =>
      Effect.promise(async () => {
        const start = Date.now()
        await sleep(ms)
        spans.push({ who, start, end: Date.now() })
      })
    raw = await rawClient()
    const first = Effect.runPromise(a.withLock("k", hold("a", 900)))
    expect(await eventually(async () => (await raw!.exists(a.lockKey("k"))) === 1, 2000, 5)).toBe(true)
    const second = Effect.runPromise(b.withLock("k", hold("b", 10)))
    await Promise.all([first, second])
    const [sa, sb] = [spans.find((s) => s.who === "a")!, spans.find((s) => s.who === "b")!]
    expect(sb.start).toBeGreaterThanOrEqual(sa.end)
    // b polls at 0, 25, 75, 175, 375, 775, 1275 ms (backoff capped at 500): alone, polling would find the lock free
    // some 300 ms after the release at ~900 ms.
    expect(sb.start - sa.end).toBeLessThan(150)
    expect(await raw.exists(a.lockKey("k"))).toBe(0)
  })

  it("the holder renews its lease while it works, so a holder slower than the lease keeps the lock", async () => {
    const p = prefix("renew")
    const opts = {
      url: Redacted.make(redisUrl),
      keyPrefix: p,
      encryptionKey: Redacted.make(newEncryptionKey()),
      leaseMs: 300
    }
    const [a, b] = await Promise.all([bareStore(opts), bareStore(opts)])
    let aDone = 0
    let bStart = 0
    const first = Effect.runPromise(
      a.withLock(
        "k",
        Effect.promise(async () => {
          await sleep(1200)
          aDone = Date.now()
        })
      )
    )
    raw = await rawClient()
    expect(await eventually(async () => (await raw!.exists(a.lockKey("k"))) === 1, 2000, 5)).toBe(true)
    await Effect.runPromise(
      b.withLock(
        "k",
        Effect.sync(() => {
          bStart = Date.now()
        })
      )
    )
    await first
    expect(bStart).toBeGreaterThanOrEqual(aDone)
  })

  it("release is compare-and-delete: a holder whose lease ran out does not free the next holder's lock", async () => {
    const p = prefix("cad")
    const opts = { url: Redacted.make(redisUrl), keyPrefix: p, encryptionKey: Redacted.make(newEncryptionKey()) }
    const [a, b] = await Promise.all([bareStore(opts), bareStore(opts)])
    raw = await rawClient()
    const lock = a.lockKey("k")
    let bHolds = false
    let releaseB!: () => void
    const bDone = new Promise<void>((r) => {
      releaseB = r
    })
    let second: Promise<void> | undefined
    await Effect.runPromise(
      a.withLock(
        "k",
        Effect.promise(async () => {
          second = Effect.runPromise(
            b.withLock(
              "k",
              Effect.promise(async () => {
                bHolds = true
                await bDone
              })
            )
          )
          await sleep(50)
          expect(bHolds).toBe(false)
          await raw!.del(lock) // as if a's lease had expired
          expect(await eventually(() => bHolds, 2000, 10)).toBe(true)
        })
      )
    )
    // a has released: b's lock must still be there.
    const held = await raw.get(lock)
    expect(held).toMatch(/^([0-9a-f]{40}|-)\.(\d+|-)\.[0-9a-f]{32}$/)
    releaseB()
    await second
    expect(await raw.exists(lock)).toBe(0)
  })

  // A holder's process killed (SIGKILL): its kernel closes its Redis connection at once. Played by a raw client that
  // takes the lock stamped with its own connection id, then drops the connection without releasing.
  const holdAs = async (c: RawClient, lock: string, leaseMs: number, run?: string) => {
    const id = String(await c.sendCommand(["CLIENT", "ID"]))
    const runId = run ?? /run_id:([0-9a-f]+)/.exec(String(await c.sendCommand(["INFO", "server"])))![1]!
    expect(await c.set(lock, `${runId}.${id}.${"d".repeat(32)}`, { NX: true, PX: leaseMs })).toBe("OK")
    return id
  }
  const timeToLock = async (store: RedisStore.RedisStoreShape, k: string) => {
    const t = Date.now()
    await Effect.runPromise(store.withLock(k, Effect.void))
    return Date.now() - t
  }

  it("a waiter frees at once a lock whose holder's connection is gone (a killed process), not after its lease", async () => {
    const p = prefix("dead")
    const b = await bareStore({
      url: Redacted.make(redisUrl),
      keyPrefix: p,
      encryptionKey: Redacted.make(newEncryptionKey())
    })
    raw = await rawClient()
    const holder = await rawClient()
    const id = await holdAs(holder, b.lockKey("k"), 10_000)
    holder.destroy()
    expect(
      await eventually(async () => String(await raw!.sendCommand(["CLIENT", "LIST", "ID", id])).trim() === "", 2000, 10)
    ).toBe(true)
    expect(await timeToLock(b, "k")).toBeLessThan(1000)
    expect(await raw.exists(b.lockKey("k"))).toBe(0)
  })

  it("a live holder's lock, or one stamped on another Redis run, is waited for until its lease ends", async () => {
    const p = prefix("alive")
    const b = await bareStore({
      url: Redacted.make(redisUrl),
      keyPrefix: p,
      encryptionKey: Redacted.make(newEncryptionKey())
    })
    raw = await rawClient()
    const holder = await rawClient()
    try {
      await holdAs(holder, b.lockKey("live"), 1500)
      expect(await timeToLock(b, "live")).toBeGreaterThanOrEqual(1300)
    } finally {
      holder.destroy()
    }
    // Another server run (a restart that kept its keys): connection ids start again, so a missing one proves nothing.
    const gone = await rawClient()
    await holdAs(gone, b.lockKey("old-run"), 1500, "0".repeat(40))
    gone.destroy()
    expect(await timeToLock(b, "old-run")).toBeGreaterThanOrEqual(1300)
  })

  if (!hasRedisServer && process.env["CI"] !== "true")
    console.log("SKIP redis outage test: redis-server is not on PATH")
  it.skipIf(!hasRedisServer && process.env["CI"] !== "true")(
    "Redis down at start, up, down, up: tokens are served throughout, health says degraded, values reach Redis when it returns",
    async () => {
      srv = await redisServer() // a free port with nothing on it yet
      const p = "tessera:" // a private server: the default prefix
      const t0 = Date.now()
      const store = await openStore({
        url: Redacted.make(srv.url),
        keyPrefix: p,
        encryptionKey: Redacted.make(newEncryptionKey()),
        connectTimeoutMs: 300,
        commandTimeoutMs: 500,
        reconnectMaxMs: 100,
        probeIntervalMs: 100
      })
      expect(Date.now() - t0).toBeLessThan(1500) // building waits for one connect timeout at most
      h = await makeHarness({ store })
      const warnings = () => h!.logs.filter((l) => l.startsWith("Warn") && l.includes("unreachable")).length

      // 1. Dead port: served from memory, without waiting on Redis.
      let t = Date.now()
      expect((await h.run(h.engine.getToken("cube"))).decision.action).toBe("acquired")
      expect(Date.now() - t).toBeLessThan(1000)
      expect(await h.run(h.engine.storeHealth())).toMatchObject({ status: "degraded" })
      expect((await h.run(h.engine.storeHealth())).detail).toMatch(/redis unreachable since .*serving from memory/)
      expect(warnings()).toBe(1)

      // 2. Redis comes up: health ok, and the token kept in memory meanwhile is copied to it.
      await srv.start()
      expect(await eventually(async () => (await h!.run(h!.engine.storeHealth())).status === "ok", 5000)).toBe(true)
      raw = await rawClient(srv.url)
      const keyOf = (name: string) =>
        `${p}token:${Engine.cacheKey(h!.config.connections.get(name)!, h!.store.keySecret)}`
      expect(await keysUnder(raw, `${p}token:`)).toEqual([keyOf("cube")])
      raw.destroy()
      raw = undefined

      // 3. Redis dies: still served (new credentials and forced renewals, concurrently), one warning for the outage.
      await srv.stop()
      t = Date.now()
      const during = await h.run(
        Effect.all(
          [
            h.engine.getToken("dvinci"),
            h.engine.getToken("brandbox"),
            h.engine.getToken("crm-com"),
            h.engine.getToken("cube", { force: true })
          ],
          { concurrency: "unbounded" }
        )
      )
      expect(during.map((r) => r.decision.action)).toEqual(["acquired", "acquired", "acquired", "acquired"])
      expect((await h.run(h.engine.getToken("dvinci"))).decision.action).toBe("reused")
      expect(Date.now() - t).toBeLessThan(3000)
      expect((await h.run(h.engine.storeHealth())).status).toBe("degraded")
      expect(warnings()).toBe(2)

      // 4. Back (empty: no persistence): health ok, what was kept is in Redis, and new writes go to Redis again.
      await srv.start()
      expect(await eventually(async () => (await h!.run(h!.engine.storeHealth())).status === "ok", 5000)).toBe(true)
      raw = await rawClient(srv.url)
      const kept = ["cube", "dvinci", "brandbox", "crm-com"].map(keyOf)
      expect(await keysUnder(raw, `${p}token:`)).toEqual([...kept].sort())
      await h.run(h.engine.getToken("usage-engine"))
      expect(await keysUnder(raw, `${p}token:`)).toEqual([...kept, keyOf("usage-engine")].sort())
      expect(h.logs.filter((l) => l.includes("reachable again")).length).toBe(2)

      // Releasing the layer closes its clients: only ours is left. The server frees a closed client when it reads
      // the socket's end, which may come after our CLIENT LIST on a busy machine: polled, not sampled once.
      await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
      const others = async () =>
        ((await raw!.sendCommand(["CLIENT", "LIST"])) as unknown as string).trim().split("\n").length - 1
      expect(await eventually(async () => (await others()) === 0, 3000, 20)).toBe(true)
      // And none comes back: a client that reconnected after the release would show here.
      await new Promise((r) => setTimeout(r, 300))
      expect(await others()).toBe(0)
    }
  )
})
