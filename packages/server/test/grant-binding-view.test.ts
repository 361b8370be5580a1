/** `GET /v1/connections/:name` behind `tessera serve` is honest about a grant bound elsewhere (grant-binding.ts): a
 *  user's grant kept in the SQLite connection store, then the config file's connection edited (a non-secret input,
 *  then a restart over the same file), shows `needs_reauth` at once, before any renewal has run, and the provider is
 *  not asked; the same config unchanged shows it `active`. */
import { Config, Engine, Runtime } from "@tessera/engine"
import { client, oauth2Inputs, startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { Effect, ManagedRuntime } from "effect"
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { capture, raw, start } from "./services/harness.ts"

const dir = mkdtempSync(join(tmpdir(), "tessera-server-binding-"))
let gs: GrantServer
afterAll(async () => {
  await gs?.close()
  rmSync(dir, { recursive: true, force: true })
})

const env = { APP_SECRET: client.secret, STORE_KEY: randomBytes(32).toString("base64") }
const configOf = (s: GrantServer, scope: string) =>
  Effect.runPromise(
    Config.fromObject(
      {
        connection_store: { type: "sqlite", path: join(dir, "connections.db"), encryption_keys: ["${env:STORE_KEY}"] },
        connections: {
          app: {
            provider: "oauth2",
            inputs: oauth2Inputs(s, { client_secret: "${env:APP_SECRET}", scope })
          }
        }
      },
      env
    )
  )

const viewOn = async (scope: string) => {
  const s = await start(await configOf(gs, scope), capture(), { connections: "sqlite" })
  try {
    const r = await raw(s.url, "/v1/connections/app")
    expect(r.status, r.text).toBe(200)
    return r
  } finally {
    await s.close()
  }
}

describe("a grant bound elsewhere, in the connection's view", () => {
  it("is needs_reauth in GET as soon as the config's non-secret input changed, active while it did not", async () => {
    gs = await startGrantServer()
    // The user authorizes once, through the engine over the same store (what `tessera login` does).
    const rt = ManagedRuntime.make(Runtime.layer(await configOf(gs, "read write"), "memory", { connections: "sqlite" }))
    await rt.runPromise(
      Effect.gen(function* () {
        const engine = yield* Engine.Engine
        const p = yield* engine.grants.authorize("app", "http://127.0.0.1:5555/callback")
        const auth = yield* Effect.promise(() => fetch(p.url, { redirect: "manual" }))
        yield* engine.grants.complete("app", p, new URL(auth.headers.get("location")!).searchParams)
      })
    )
    await rt.dispose()
    const requests = gs.requests.length

    const same = await viewOn("read write")
    expect(same.json()).toMatchObject({ status: "ok", grant: { status: "active" } })

    const edited = await viewOn("read")
    expect(edited.json()).toMatchObject({
      name: "app",
      status: "needs_reauth",
      grant: { status: "needs_reauth", detail: expect.stringContaining("authorize again") }
    })
    for (const t of gs.live()) expect(edited.text).not.toContain(t)
    expect(gs.requests.length).toBe(requests)
  })
})
