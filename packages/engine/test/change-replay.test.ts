/** A change an instance already holds, told again by the PostgreSQL change feed (its catch-up after the first
 *  connect replays what was logged since the store opened), keeps the token: neither the instance's copy nor the
 *  shared Redis entry is dropped, so no other instance goes back to the IdP for it. Real PostgreSQL and Redis. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { Effect, type Layer, ManagedRuntime, Redacted } from "effect"
import { afterEach, expect, it } from "vitest"
import * as Config from "../src/config.ts"
import { ConnectionStore, type ConnectionStoreError, type ConnectionStoreShape } from "../src/connection-store.ts"
import * as Postgres from "../src/connection-store-postgres.ts"
import * as Engine from "../src/engine.ts"
import * as Http from "../src/http.ts"
import * as RedisStore from "../src/redis-store.ts"
import type { StoreError } from "../src/token-error.ts"
import { TokenStore, type TokenStoreShape } from "../src/token-store.ts"
import { newKey, redactAll } from "./services/connection-stores.ts"
import { fastHttp } from "./services/harness.ts"
import {
  databaseUrl,
  dropSchemas,
  postgresUp,
  rawClient as pgClient,
  uniqueSchema
} from "./services/postgres-available.ts"
import {
  dropPrefix,
  keysUnder,
  newEncryptionKey,
  rawClient,
  redisUp,
  redisUrl,
  uniquePrefix
} from "./services/redis-available.ts"

const runtimes: Array<ManagedRuntime.ManagedRuntime<unknown, unknown>> = []
const open = <S, E, A>(layer: Layer.Layer<S, E>, get: Effect.Effect<A, never, S>): Promise<A> => {
  const rt = ManagedRuntime.make(layer)
  runtimes.push(rt as ManagedRuntime.ManagedRuntime<unknown, unknown>)
  return rt.runPromise(get)
}

let sb: Sandbox | undefined
const schemas: string[] = []
const prefixes: string[] = []
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  await sb?.close()
  sb = undefined
  await dropSchemas(schemas.splice(0))
  const raw = await rawClient()
  for (const p of prefixes.splice(0)) await dropPrefix(raw, p)
  raw.destroy()
})

/** One tessera instance: its own Redis client and PostgreSQL store (and change listener), shared keys. */
const instance = async (schema: string, prefix: string, keys: { readonly cache: string; readonly rows: string }) => {
  const tokens = await open<TokenStore, StoreError, TokenStoreShape>(
    RedisStore.layer({ url: Redacted.make(redisUrl), encryptionKey: Redacted.make(keys.cache), keyPrefix: prefix }),
    Effect.map(TokenStore, (s) => s)
  )
  const connections = await open<ConnectionStore, ConnectionStoreError, ConnectionStoreShape>(
    Postgres.layer({ url: Redacted.make(databaseUrl), encryptionKeys: redactAll([keys.rows]), schema }),
    Effect.map(ConnectionStore, (s) => s)
  )
  const config = await Effect.runPromise(Config.fromObject({ connections: {} }))
  return Effect.runSync(
    Engine.make(config, tokens, { http: fastHttp, connectionStore: Effect.succeed(connections) }).pipe(
      Effect.provide(Http.layer)
    )
  )
}

const run = <A, E>(e: Effect.Effect<A, E>) => Effect.runPromise(e)

it.skipIf(!redisUp || !postgresUp)(
  "a put told again after the instance resolved that version keeps its token, here and in Redis",
  async () => {
    sb = await startSandbox()
    const schema = uniqueSchema()
    schemas.push(schema)
    const prefix = uniquePrefix("replay")
    prefixes.push(prefix)
    const keys = { cache: newEncryptionKey(), rows: newKey() }
    const writer = await instance(schema, prefix, keys)
    const reader = await instance(schema, prefix, keys) // its store opened before the write: the write is replayed
    await run(writer.registry.put("acme", { provider: "oauth2", inputs: { ...sb.credentials.oauth2 } }))

    // Hold the reader's catch-up (it reads the change log) until it has its token, as a loaded machine may.
    const lock = await pgClient()
    await lock.query("BEGIN")
    await lock.query(`LOCK TABLE "${schema}".connection_changes IN ACCESS EXCLUSIVE MODE`)
    const told = new Promise<void>((resolve) => reader.registry.onChange((n) => n === "acme" && resolve()))
    const first = await run(reader.getToken("acme"))
    expect(first.decision.action).toBe("acquired")
    const raw = await rawClient()
    try {
      expect(await keysUnder(raw, `${prefix}token:`)).toHaveLength(1)
      await lock.query("COMMIT")
      await told
      await new Promise((r) => setTimeout(r, 200)) // an eviction's Redis delete runs beside
      expect(await keysUnder(raw, `${prefix}token:`)).toHaveLength(1)
    } finally {
      raw.destroy()
      await lock.end()
    }
    expect(reader.peek("acme")?.accessToken).toBe(first.accessToken)
    // Another instance finds it in Redis: the IdP was asked once.
    const second = await run(writer.getToken("acme"))
    expect(second.decision.action).toBe("reused")
    expect(sb.tokenRequests("oauth2")).toHaveLength(1)

    // A new version still evicts it on the other instance.
    const replaced = new Promise<void>((resolve) =>
      reader.registry.onChange((n, version) => n === "acme" && version === 2 && resolve())
    )
    await run(writer.registry.put("acme", { provider: "oauth2", inputs: { ...sb.credentials.oauth2 } }))
    await replaced
    expect(reader.peek("acme")).toBeUndefined()
    expect((await run(reader.getToken("acme"))).decision.action).toBe("acquired")
    expect(sb.tokenRequests("oauth2")).toHaveLength(2)
  },
  20_000
)
