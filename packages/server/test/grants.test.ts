/** A user's grant behind `tessera serve`: granted once (through the engine's grants API, as `tessera login` and the
 *  connect routes do), kept in the SQLite connection store with tokens in Redis, the server renews from it, and it
 *  survives a server restart plus a Redis FLUSHDB without the provider seeing a reused refresh token. When the
 *  provider refuses the refresh token, the connection is `needs_reauth` in its GET view, the token route answers
 *  409 AuthorizationRequired without retrying, and /metrics counts the event. */
import { Config, Engine, Runtime } from "@tessera/engine"
import { client, oauth2Inputs, startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { Effect, ManagedRuntime } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { rawClient, redisUp } from "../../engine/test/services/redis-available.ts"
import { afterAll, describe, expect, it } from "vitest"
import { capture, raw, start } from "./services/harness.ts"

import { redisUrl as sharedRedis } from "../../engine/test/services/redis-available.ts"
// A Redis database of its own on the shared server, so that FLUSHDB empties only what this file wrote.
const redisUrl = `${sharedRedis.replace(/\/\d*$/, "")}/14`
const reachable = redisUp
const flush = async () => {
  const c = await rawClient(redisUrl)
  await c.flushDb()
  expect(await c.dbSize()).toBe(0)
  c.destroy()
}

const dir = mkdtempSync(join(tmpdir(), "tessera-server-grants-"))
let gs: GrantServer
afterAll(async () => {
  await gs?.close()
  rmSync(dir, { recursive: true, force: true })
})

const env = {
  APP_SECRET: client.secret,
  REDIS_URL: redisUrl,
  CACHE_KEY: randomBytes(32).toString("base64"),
  STORE_KEY: randomBytes(32).toString("base64")
}
const configOf = (s: GrantServer) =>
  Effect.runPromise(
    Config.fromObject(
      {
        store: { type: "redis", url: "${env:REDIS_URL}", encryption_key: "${env:CACHE_KEY}" },
        connection_store: { type: "sqlite", path: join(dir, "connections.db"), encryption_keys: ["${env:STORE_KEY}"] },
        connections: {
          app: {
            provider: "oauth2",
            inputs: oauth2Inputs(s, { client_secret: "${env:APP_SECRET}" })
          }
        }
      },
      env
    )
  )

const run = (describeIf: boolean) => (describeIf ? describe : describe.skip)
if (!reachable) {
  if (process.env["CI"] === "true") throw new Error(`no Redis at ${redisUrl}`)
  console.log(`SKIP server grant tests: no Redis at ${redisUrl}`)
}

run(reachable)("a user's grant behind tessera serve", () => {
  it("survives a server restart and a Redis FLUSHDB; a refused refresh token is needs_reauth in GET, 409 and /metrics", async () => {
    gs = await startGrantServer()
    const config = await configOf(gs)
    // The user authorizes once, through the engine over the same stores (what `tessera login` does).
    const rt = ManagedRuntime.make(Runtime.layer(config, "memory", { connections: "sqlite" }))
    await rt.runPromise(
      Effect.gen(function* () {
        const engine = yield* Engine.Engine
        const p = yield* engine.grants.authorize("app", "http://127.0.0.1:5555/callback")
        const auth = yield* Effect.promise(() => fetch(p.url, { redirect: "manual" }))
        const query = new URL(auth.headers.get("location")!).searchParams
        yield* engine.grants.complete("app", p, query)
      })
    )
    await rt.dispose()
    const granted = gs.live()
    expect(granted).toHaveLength(1)

    const serveOnce = async () => {
      const s = await start(await configOf(gs), capture(), { connections: "sqlite" })
      try {
        const r = await raw(s.url, "/v1/connections/app/token")
        expect(r.status, r.text).toBe(200)
        return r.json<{ access_token: string }>()
      } finally {
        await s.close()
      }
    }
    await flush()
    await serveOnce() // renewed from the durable grant: nothing was in Redis
    await flush()
    await serveOnce() // again after a restart and a second flush, with the rotated refresh token
    expect(gs.redeemed).toHaveLength(2)
    expect(gs.redeemed[0]).toBe(granted[0])
    expect(gs.reused).toEqual([])
    expect(gs.requests.filter((x) => x.form["grant_type"] === "authorization_code")).toHaveLength(1)

    // The user revokes consent: the next renewal is refused, once, and the connection says so.
    for (const t of gs.live()) gs.revoke(t)
    const s = await start(await configOf(gs), capture(), { connections: "sqlite" })
    try {
      const before = gs.requests.length
      const refused = await raw(s.url, "/v1/connections/app/refresh", { method: "POST" })
      expect(refused.status, refused.text).toBe(409)
      expect(refused.json()).toMatchObject({ code: "AuthorizationRequired", connection: "app" })
      expect(refused.json<{ detail: string }>().detail).toContain("tessera login app")
      // The access token already issued stays usable until it expires; once it is gone, the route says why.
      expect((await raw(s.url, "/v1/connections/app/token")).status).toBe(200)
      expect((await raw(s.url, "/v1/connections/app/token", { method: "DELETE" })).status).toBe(204)
      const again = await raw(s.url, "/v1/connections/app/token")
      expect(again.status).toBe(409)
      expect(gs.requests.length - before).toBe(1) // no retry, no fallback
      const view = await raw(s.url, "/v1/connections/app")
      expect(view.json()).toMatchObject({ name: "app", status: "needs_reauth", grant: { status: "needs_reauth" } })
      expect(view.text).not.toContain(granted[0]!)
      const metrics = await raw(s.url, "/metrics")
      expect(metrics.text).toContain(`tessera_token_events_total{provider="oauth2",event="needs_reauth"} 1`)
    } finally {
      await s.close()
    }
  })
})
