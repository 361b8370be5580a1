/** Durable grants on real stores: a refresh token a user granted (and, with `connection_store:` configured, any
 *  connection's, such as a password grant's) lives in the connection store (SQLite file, PostgreSQL), so it survives
 *  an engine restart and a Redis FLUSHDB of the token cache; and two engines sharing PostgreSQL, refreshing at the
 *  same time, redeem each one-time refresh token exactly once (the loopback server refuses and counts reuse). */
import { Effect, type Layer, ManagedRuntime, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { afterEach, describe, expect, it } from "vitest"
import { startSandbox } from "@tessera/testkit"
import { startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import {
  ConnectionStore,
  ConnectionStoreError as ConnectionStoreErrorClass,
  type ConnectionStoreShape,
  type ConnectionStoreError
} from "../src/connection-store.ts"
import * as RedisStore from "../src/redis-store.ts"
import * as Grants from "../src/grants.ts"
import { makeMemory, TokenStore, type TokenStoreShape } from "../src/token-store.ts"
import type { StoreError } from "../src/token-error.ts"
import { consent, grantInputs, makeGrantEngine } from "./services/grant-engine.ts"
import { leaks } from "./services/connection-stores.ts"
import { durableStores, need as needFor } from "./services/durable-stores.ts"
import { postgresUp, rawClient as pgClient } from "./services/postgres-available.ts"
import { newEncryptionKey, rawClient, redisUp, redisUrl } from "./services/redis-available.ts"

// A Redis database of its own on the shared server, so that FLUSHDB empties only what this file wrote.
const redisDb = `${redisUrl.replace(/\/\d*$/, "")}/13`
const cacheKey = newEncryptionKey()

const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, unknown>> = []
const open = async <S, E>(layer: Layer.Layer<S, E>, get: Effect.Effect<unknown, never, S>) => {
  const rt = ManagedRuntime.make(layer)
  runtimes.push(rt as ManagedRuntime.ManagedRuntime<unknown, unknown>)
  return rt.runPromise(get)
}
const tokenStore = () =>
  open<TokenStore, StoreError>(
    RedisStore.layer({ url: Redacted.make(redisDb), encryptionKey: Redacted.make(cacheKey), keyPrefix: "grants:" }),
    Effect.map(TokenStore, (s) => s)
  ) as Promise<TokenStoreShape>
const connectionStore = (layer: Layer.Layer<ConnectionStore, ConnectionStoreError>) =>
  open(
    layer,
    Effect.map(ConnectionStore, (s) => s)
  ) as Promise<ConnectionStoreShape>

const rawRows = async (sql: string) => {
  const c = await pgClient()
  try {
    return (await c.query(sql)).rows
  } finally {
    await c.end()
  }
}

const flushRedis = async () => {
  const c = await rawClient(redisDb)
  try {
    await c.flushDb()
    expect(await c.dbSize()).toBe(0)
  } finally {
    c.destroy()
  }
}

let gs: GrantServer | undefined
const durable = durableStores("tessera-grants-")
const { stores } = durable
const need = needFor("durable grant test")
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  await gs?.close()
  gs = undefined
  await durable.cleanup()
})

/** A new grant server and an engine over `make`'s connection store, with the user's grant of `app` completed. */
const withGrant = async (make: () => Layer.Layer<ConnectionStore, ConnectionStoreError>) => {
  const server = await startGrantServer()
  gs = server
  const connections = { app: { provider: "oauth2", inputs: grantInputs(server) } }
  const a = await makeGrantEngine({
    connections,
    connectionStore: await connectionStore(make()),
    tokenStore: await tokenStore()
  })
  const p = await a.run(a.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
  await a.run(a.engine.grants.complete("app", p, await consent(p.url)))
  return { a, connections, gs: server }
}

for (const [kind, s] of Object.entries(stores)) {
  describe(`durable grants on ${kind} with the token cache in Redis`, () => {
    it("a refresh token from a user's grant survives an engine restart and a Redis FLUSHDB", async () => {
      if (!need(redisUp, "Redis") || !need(s.up, kind)) return
      const { connections, gs } = await withGrant(s.make)
      const granted = gs.live()
      expect(granted).toHaveLength(1)
      // At rest the refresh token is sealed: not in the database in any encoding.
      await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
      const atRest =
        kind === "sqlite"
          ? readFileSync(durable.file())
          : JSON.stringify(await rawRows(`SELECT * FROM "${durable.schema()}".grants`))
      expect(leaks(atRest, granted)).toEqual([])
      // Restart: every store closed, Redis emptied, then a new engine over the same database.
      await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
      await flushRedis()
      const b = await makeGrantEngine({
        connections,
        connectionStore: await connectionStore(s.make()),
        tokenStore: await tokenStore()
      })
      const r = await b.run(b.engine.getToken("app"))
      expect(r.decision.action).toBe("refreshed")
      expect(gs.redeemed).toEqual(granted)
      expect(gs.reused).toEqual([])
      expect(gs.requests.filter((x) => x.form["grant_type"] === "authorization_code")).toHaveLength(1)
    })

    it("an unusable refresh answer (expires_in: 0) that rotated the refresh token: the next renewal redeems the new one", async () => {
      if (!need(redisUp, "Redis") || !need(s.up, kind)) return
      const { a, gs } = await withGrant(s.make)
      gs.unusableRefreshes = 1
      // The renewal fails (the cached token, still valid, is served meanwhile); the new refresh token is kept.
      const stale = await a.run(a.engine.getToken("app", { force: true }))
      expect(stale.decision).toMatchObject({ action: "served_stale" })
      expect(stale.decision.reason).toContain("ResponseInvalid")
      const r = await a.run(a.engine.getToken("app", { force: true }))
      expect(r.decision.action).toBe("refreshed")
      // Each refresh token redeemed once; the one the unusable answer carried was not lost.
      expect(gs.reused).toEqual([])
      expect(gs.redeemed).toHaveLength(2)
      expect(gs.requests.filter((x) => x.form["grant_type"] === "authorization_code")).toHaveLength(1)
    })

    it("with connection_store configured, a password grant's refresh token survives a FLUSHDB: no second password grant", async () => {
      if (!need(redisUp, "Redis") || !need(s.up, kind)) return
      gs = await startGrantServer()
      const connections = {
        svc: {
          provider: "oauth2",
          inputs: grantInputs(gs, { grant_type: "password", username: "u", password: "p-4f1c0e9a" })
        }
      }
      const a = await makeGrantEngine({
        connections,
        explicitStore: true,
        connectionStore: await connectionStore(s.make()),
        tokenStore: await tokenStore()
      })
      await a.run(a.engine.getToken("svc"))
      await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
      await flushRedis()
      const b = await makeGrantEngine({
        connections,
        explicitStore: true,
        connectionStore: await connectionStore(s.make()),
        tokenStore: await tokenStore()
      })
      expect((await b.run(b.engine.getToken("svc"))).decision.action).toBe("refreshed")
      expect(gs.requests.filter((x) => x.form["grant_type"] === "password")).toHaveLength(1)
      expect(gs.reused).toEqual([])
    })

    it("brandbox (password grant): its refresh token is kept in the grant, so a FLUSHDB sends no second password", async () => {
      if (!need(redisUp, "Redis") || !need(s.up, kind)) return
      const sb = await startSandbox()
      try {
        const connections = { bb: { provider: "brandbox", inputs: sb.credentials.brandbox } }
        const a = await makeGrantEngine({
          connections,
          explicitStore: true,
          connectionStore: await connectionStore(s.make()),
          tokenStore: await tokenStore()
        })
        expect((await a.run(a.engine.getToken("bb"))).hasRefreshToken).toBe(true)
        await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
        await flushRedis()
        const b = await makeGrantEngine({
          connections,
          explicitStore: true,
          connectionStore: await connectionStore(s.make()),
          tokenStore: await tokenStore()
        })
        expect((await b.run(b.engine.getToken("bb"))).decision.action).toBe("refreshed")
        const grants = sb.tokenRequests("brandbox").map((r) => r.form?.["grant_type"])
        expect(grants).toEqual(["password", "refresh_token"])
      } finally {
        await sb.close()
      }
    })
  })
}

describe("rotation across two engines sharing PostgreSQL", () => {
  it("concurrent refreshes from both use each one-time refresh token exactly once", async () => {
    if (!need(postgresUp, "PostgreSQL")) return
    gs = await startGrantServer({ tokenDelayMs: 100 })
    const connections = { app: { provider: "oauth2", inputs: grantInputs(gs) } }
    // Each engine has a token cache of its own (no shared lock): only the durable grant's claim keeps them apart.
    const one = await makeGrantEngine({
      connections,
      connectionStore: await connectionStore(stores["postgres"]!.make()),
      tokenStore: makeMemory()
    })
    const two = await makeGrantEngine({
      connections,
      connectionStore: await connectionStore(stores["postgres"]!.make()),
      tokenStore: makeMemory()
    })
    const p = await one.run(one.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await one.run(one.engine.grants.complete("app", p, await consent(p.url)))
    for (let round = 0; round < 5; round++) {
      const results = await Promise.all([
        one.run(one.engine.getToken("app", { force: true })),
        two.run(two.engine.getToken("app", { force: true })),
        one.run(one.engine.getToken("app", { force: true })),
        two.run(two.engine.getToken("app", { force: true }))
      ])
      for (const r of results) expect(["refreshed", "reused"]).toContain(r.decision.action)
    }
    expect(gs.reused).toEqual([])
    expect(new Set(gs.redeemed).size).toBe(gs.redeemed.length)
    expect(gs.redeemed.length).toBeGreaterThanOrEqual(5)
    // The grant holds the one refresh token still valid.
    const store = await connectionStore(stores["postgres"]!.make())
    const g = await Effect.runPromise(store.getGrant("app"))
    expect(gs.live()).toEqual([Redacted.value(g!.refreshToken)])
  })
})

describe("rotation by two flights of one engine (a caller's and a forced one) without a lock between them", () => {
  it("the second waits for the first instead of redeeming the same refresh token (Redis went down mid-flight)", async () => {
    if (!need(postgresUp, "PostgreSQL")) return
    gs = await startGrantServer({ tokenDelayMs: 150 })
    const connections = { app: { provider: "oauth2", inputs: grantInputs(gs) } }
    // A token store whose lock gives no exclusion: what a flight sees when Redis dies while another flight of the
    // same process holds the Redis lock (the resilient store falls back to a local lock the first never took).
    const memory = makeMemory()
    const unlocked: TokenStoreShape = { ...memory, withLock: (_key, effect) => effect }
    const one = await makeGrantEngine({
      connections,
      connectionStore: await connectionStore(stores["postgres"]!.make()),
      tokenStore: unlocked
    })
    const p = await one.run(one.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await one.run(one.engine.grants.complete("app", p, await consent(p.url)))
    for (let round = 0; round < 3; round++) {
      await one.run(one.engine.invalidate("app"))
      const results = await Promise.all([
        one.run(one.engine.getToken("app")),
        one.run(one.engine.getToken("app", { force: true }))
      ])
      for (const r of results) expect(["refreshed", "reused"]).toContain(r.decision.action)
    }
    expect(gs.reused).toEqual([])
    expect(new Set(gs.redeemed).size).toBe(gs.redeemed.length)
    const store = await connectionStore(stores["postgres"]!.make())
    const g = await Effect.runPromise(store.getGrant("app"))
    expect(gs.live()).toEqual([Redacted.value(g!.refreshToken)])
  })
})

describe("the rotated refresh token's write is retried while the claim lasts", () => {
  it("a connection store that fails the write twice (restarting) still ends with the rotated refresh token", async () => {
    if (!need(postgresUp, "PostgreSQL")) return
    gs = await startGrantServer()
    const connections = { app: { provider: "oauth2", inputs: grantInputs(gs) } }
    const real = await connectionStore(stores["postgres"]!.make())
    // The claim goes through; the next two writes of an active, unclaimed grant (the rotated one) fail, as they
    // would while PostgreSQL restarts.
    let failing = 0
    const restarting: ConnectionStoreShape = {
      ...real,
      putGrant: (name, grant, expected) =>
        Effect.suspend(() => {
          if (failing === 0 || grant.detail !== undefined) return real.putGrant(name, grant, expected)
          failing--
          return Effect.fail(
            new ConnectionStoreErrorClass({ store: "postgres", operation: "put grant", reason: "restarting" })
          )
        })
    }
    const one = await makeGrantEngine({ connections, connectionStore: restarting, tokenStore: makeMemory() })
    const p = await one.run(one.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await one.run(one.engine.grants.complete("app", p, await consent(p.url)))
    failing = 2
    const r = await one.run(one.engine.getToken("app", { force: true }))
    expect(r.decision.action).toBe("refreshed")
    expect(failing).toBe(0)
    const g = await Effect.runPromise(real.getGrant("app"))
    expect(g?.detail).toBeUndefined()
    expect(gs.live()).toEqual([Redacted.value(g!.refreshToken)])
    // The next refresh redeems it: nothing was lost.
    await one.run(one.engine.getToken("app", { force: true }))
    expect(gs.reused).toEqual([])
  })
})

describe("the window in which a kill loses a rotated refresh token", () => {
  it("is one CAS write of the grant on PostgreSQL after the provider's answer (measured, printed)", async () => {
    if (!need(postgresUp, "PostgreSQL")) return
    const store = await connectionStore(stores["postgres"]!.make())
    const w = { name: "w", binding: "b" }
    await Effect.runPromise(Grants.save(store, w, Redacted.make("rt-0")))
    const took: number[] = []
    for (let i = 1; i <= 100; i++) {
      const g = (await Effect.runPromise(Grants.read(store, "w")))!
      expect(await Effect.runPromise(Grants.claim(store, w, g, "me", Date.now() + 10_000))).toBe(true)
      // What renewal.ts does between the provider's answer and anyone seeing the new token: this write.
      const t = performance.now()
      expect(
        await Effect.runPromise(Grants.complete(store, w, g.version + 1, Redacted.make(`rt-${i}`), undefined))
      ).toBe(true)
      took.push(performance.now() - t)
    }
    took.sort((a, b) => a - b)
    const at = (q: number) => took[Math.min(took.length - 1, Math.floor(q * took.length))]!.toFixed(1)
    console.log(`durable write of a rotated refresh token: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, max ${at(1)} ms`)
    expect(Redacted.value((await Effect.runPromise(Grants.read(store, "w")))!.refreshToken)).toBe("rt-100")
  })
})
