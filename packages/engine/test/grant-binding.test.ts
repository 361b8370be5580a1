/** A durable grant is bound to where it was issued (grant-binding.ts), also for a connection of the config file: an
 *  edit of its token_url (then a reload or a restart, over the same SQLite file or PostgreSQL schema) never sends the
 *  stored refresh token to the new endpoint. A user's grant becomes needs_reauth; a password grant acquires anew; a
 *  change of a secret input only keeps the grant; a grant stored before bindings is used, then bound. The connection's
 *  view (GET, `tessera connections show`) and the grants API say needs_reauth for a grant bound elsewhere at once,
 *  before any renewal has marked it. */
import { Effect, type Layer, ManagedRuntime, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { ConnectionStore, type ConnectionStoreError, type ConnectionStoreShape } from "../src/connection-store.ts"
import { movedDetail, supersededDetail } from "../src/grant-binding.ts"
import { makeMemory, type TokenStoreShape } from "../src/token-store.ts"
import { consent, grantInputs, makeGrantEngine } from "./services/grant-engine.ts"
import { durableStores, need as needFor } from "./services/durable-stores.ts"

const runtimes: Array<ManagedRuntime.ManagedRuntime<ConnectionStore, ConnectionStoreError>> = []
const servers: GrantServer[] = []
const durable = durableStores("tessera-binding-")
const { stores } = durable
const need = needFor("grant binding test")
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  await Promise.all(servers.splice(0).map((s) => s.close()))
  await durable.cleanup()
})

const server = async () => {
  const s = await startGrantServer()
  servers.push(s)
  return s
}

/** The connection store as a fresh process opens it (a restart): the previous instances are closed first. */
const reopen = async (
  make: () => Layer.Layer<ConnectionStore, ConnectionStoreError>
): Promise<ConnectionStoreShape> => {
  await Promise.all(runtimes.splice(0).map((rt) => rt.dispose()))
  const rt = ManagedRuntime.make(make())
  runtimes.push(rt)
  return rt.runPromise(Effect.map(ConnectionStore, (s) => s))
}

type Connections = Record<string, { provider: string; inputs: Record<string, string> }>

/** An engine over the config `connections` (a config file as loaded), the connection store and the token cache. */
const engineOf = async (
  make: () => Layer.Layer<ConnectionStore, ConnectionStoreError>,
  connections: Connections,
  tokenStore: TokenStoreShape,
  explicitStore = false
) => makeGrantEngine({ connections, connectionStore: await reopen(make), tokenStore, explicitStore })

/** Every request that carried one of `tokens` (a refresh token) anywhere in its body or headers. */
const carrying = (s: GrantServer, tokens: ReadonlyArray<string>) =>
  s.requests.filter((r) => tokens.some((t) => r.body.includes(t) || JSON.stringify(r.headers).includes(t)))

const grantOf = async (make: () => Layer.Layer<ConnectionStore, ConnectionStoreError>, name: string) =>
  Effect.runPromise((await reopen(make)).getGrant(name))

for (const [kind, s] of Object.entries(stores)) {
  describe(`grant binding on ${kind}`, () => {
    it("a user's grant: the config's token_url edited, the refresh token never reaches it; needs_reauth", async () => {
      if (!need(s.up, kind)) return
      const [prod, mock] = [await server(), await server()]
      const tokens = makeMemory()
      const before = await engineOf(s.make, { crm: { provider: "oauth2", inputs: grantInputs(prod) } }, tokens)
      const p = await before.run(before.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await before.run(before.engine.grants.complete("crm", p, await consent(p.url)))
      const issued = prod.live()
      expect(issued).toHaveLength(1)
      // The file now points crm at another token endpoint (a reload or a restart over the same stores).
      const edited = {
        crm: { provider: "oauth2", inputs: { ...grantInputs(prod), token_url: `${mock.origin}/token` } }
      }
      const after = await engineOf(s.make, edited, tokens)
      const e = await after.fail(after.engine.getToken("crm", { force: true }))
      expect(e).toMatchObject({ _tag: "AuthorizationRequired", reason: "needs_reauth" })
      expect(String((e as { detail?: string }).detail)).toContain("provider or inputs changed")
      expect(after.events.map((x) => x.type)).toContain("needs_reauth")
      expect(carrying(mock, issued)).toEqual([])
      expect(mock.requests).toEqual([])
      expect(prod.redeemed).toEqual([])
      expect(JSON.stringify(e) + String(e)).not.toContain(issued[0]!)
      const g = await grantOf(s.make, "crm")
      expect(g?.status).toBe("needs_reauth")
      expect(g?.detail).toContain("authorize again")
      // Authorizing again (the file now points every endpoint at the new server) makes the grant usable there.
      const again = await engineOf(s.make, { crm: { provider: "oauth2", inputs: grantInputs(mock) } }, tokens)
      const q = await again.run(again.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await again.run(again.engine.grants.complete("crm", q, await consent(q.url)))
      expect((await again.run(again.engine.getToken("crm", { force: true }))).decision.action).toBe("refreshed")
      expect(carrying(mock, issued)).toEqual([])
    })

    it("a password grant: the config's token_url edited, it acquires anew there and never sends the old refresh token", async () => {
      if (!need(s.up, kind)) return
      const [prod, mock] = [await server(), await server()]
      const inputs = (gs: GrantServer) => ({
        ...grantInputs(gs),
        grant_type: "password",
        username: "u",
        password: "p-5d2a"
      })
      const tokens = makeMemory()
      const before = await engineOf(s.make, { svc: { provider: "oauth2", inputs: inputs(prod) } }, tokens, true)
      await before.run(before.engine.getToken("svc"))
      const issued = prod.live()
      expect(issued).toHaveLength(1)
      const after = await engineOf(s.make, { svc: { provider: "oauth2", inputs: inputs(mock) } }, tokens, true)
      // Shown as it will be treated, before any renewal: not redeemed, and no user is needed.
      expect(await after.run(after.engine.registry.view("svc"))).toMatchObject({
        status: "ok",
        grant: { status: "needs_reauth", detail: supersededDetail }
      })
      expect((await after.run(after.engine.getToken("svc", { force: true }))).decision.action).toBe("acquired")
      expect(carrying(mock, issued)).toEqual([])
      expect(mock.requests.map((r) => r.form["grant_type"])).toEqual(["password"])
      // The grant now holds the new endpoint's refresh token, which the next renewal redeems there.
      const g = await grantOf(s.make, "svc")
      expect(g && Redacted.value(g.refreshToken)).toBe(mock.live()[0])
      const next = await engineOf(s.make, { svc: { provider: "oauth2", inputs: inputs(mock) } }, tokens, true)
      expect((await next.run(next.engine.getToken("svc", { force: true }))).decision.action).toBe("refreshed")
      expect(mock.requests.map((r) => r.form["grant_type"])).toEqual(["password", "refresh_token"])
    })

    it("a change of a secret input only (the password rotated in the file) keeps the grant", async () => {
      if (!need(s.up, kind)) return
      const gs = await server()
      const inputs = (password: string) => ({ ...grantInputs(gs), grant_type: "password", username: "u", password })
      const tokens = makeMemory()
      const before = await engineOf(s.make, { svc: { provider: "oauth2", inputs: inputs("p-old-71") } }, tokens, true)
      await before.run(before.engine.getToken("svc"))
      const bound = (await grantOf(s.make, "svc"))?.binding
      const after = await engineOf(s.make, { svc: { provider: "oauth2", inputs: inputs("p-new-72") } }, tokens, true)
      expect((await after.run(after.engine.getToken("svc", { force: true }))).decision.action).toBe("refreshed")
      expect(gs.requests.map((r) => r.form["grant_type"])).toEqual(["password", "refresh_token"])
      const g = await grantOf(s.make, "svc")
      expect(g?.binding).toMatch(/^[0-9a-f]{64}$/)
      expect(g?.binding).toBe(bound)
    })

    it("a grant stored before bindings (none recorded) is redeemed, and then bound", async () => {
      if (!need(s.up, kind)) return
      const gs = await server()
      const connections = { crm: { provider: "oauth2", inputs: grantInputs(gs) } }
      const tokens = makeMemory()
      const first = await engineOf(s.make, connections, tokens)
      const p = await first.run(first.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await first.run(first.engine.grants.complete("crm", p, await consent(p.url)))
      const current = await grantOf(s.make, "crm")
      const bound = current?.binding
      expect(bound).toMatch(/^[0-9a-f]{64}$/)
      // What older code stored: the same grant without a binding.
      const store = await reopen(s.make)
      const legacy = { refreshToken: current!.refreshToken, status: "active" as const, scope: current!.scope }
      expect(await Effect.runPromise(store.putGrant("crm", legacy, current!.version))).toBe(true)
      expect((await Effect.runPromise(store.getGrant("crm")))?.binding).toBeUndefined()
      const upgraded = await engineOf(s.make, connections, makeMemory())
      expect((await upgraded.run(upgraded.engine.getToken("crm", { force: true }))).decision.action).toBe("refreshed")
      const g = await grantOf(s.make, "crm")
      expect(g?.status).toBe("active")
      expect(g?.binding).toBe(bound)
      expect(gs.reused).toEqual([])
    })

    it("the view of a config connection whose non-secret input was edited says needs_reauth before any renewal", async () => {
      if (!need(s.up, kind)) return
      const gs = await server()
      const tokens = makeMemory()
      const connections = { crm: { provider: "oauth2", inputs: grantInputs(gs) } }
      const before = await engineOf(s.make, connections, tokens)
      const p = await before.run(before.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await before.run(before.engine.grants.complete("crm", p, await consent(p.url)))
      const same = await engineOf(s.make, connections, tokens)
      expect(await same.run(same.engine.registry.view("crm"))).toMatchObject({
        status: "ok",
        grant: { status: "active" }
      })
      const requests = gs.requests.length
      // The file now asks for another scope (a non-secret input): nothing has been renewed since.
      const edited = { crm: { provider: "oauth2", inputs: { ...grantInputs(gs), scope: "read" } } }
      const after = await engineOf(s.make, edited, tokens)
      const v = await after.run(after.engine.registry.view("crm"))
      expect(v).toMatchObject({ status: "needs_reauth", grant: { status: "needs_reauth", detail: movedDetail } })
      expect(await after.run(after.engine.grants.get("crm"))).toMatchObject({
        status: "needs_reauth",
        detail: movedDetail
      })
      expect(JSON.stringify(v)).not.toContain(gs.live()[0]!)
      // Only shown so: the stored grant is untouched, and the provider was not asked.
      expect((await grantOf(s.make, "crm"))?.status).toBe("active")
      expect(gs.requests.length).toBe(requests)
      // A grant stored before bindings (none recorded) is shown as stored.
      const store = await reopen(s.make)
      const g = (await Effect.runPromise(store.getGrant("crm")))!
      const legacy = { refreshToken: g.refreshToken, status: "active" as const, scope: g.scope }
      expect(await Effect.runPromise(store.putGrant("crm", legacy, g.version))).toBe(true)
      const upgraded = await makeGrantEngine({ connections: edited, connectionStore: store, tokenStore: tokens })
      expect(await upgraded.run(upgraded.engine.registry.view("crm"))).toMatchObject({
        status: "ok",
        grant: { status: "active" }
      })
    })

    it("a user's refused grant, the config since changed to a password grant: the connection is ok, as renewal acquires anew", async () => {
      if (!need(s.up, kind)) return
      const gs = await server()
      const tokens = makeMemory()
      const before = await engineOf(s.make, { crm: { provider: "oauth2", inputs: grantInputs(gs) } }, tokens)
      const p = await before.run(before.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await before.run(before.engine.grants.complete("crm", p, await consent(p.url)))
      // The provider refused the refresh token (renewal marked it so), and the file was edited to a password grant.
      const store = await reopen(s.make)
      const g = (await Effect.runPromise(store.getGrant("crm")))!
      const refused = {
        ...g,
        status: "needs_reauth" as const,
        detail: "the provider refused the refresh token (invalid_grant)"
      }
      expect(await Effect.runPromise(store.putGrant("crm", refused, g.version))).toBe(true)
      const edited = {
        crm: {
          provider: "oauth2",
          inputs: { ...grantInputs(gs), grant_type: "password", username: "u", password: "p-9c1e" }
        }
      }
      const after = await engineOf(s.make, edited, tokens)
      // No user is needed: the grant is not redeemed, and the next renewal acquires with the password.
      expect(await after.run(after.engine.registry.view("crm"))).toMatchObject({
        status: "ok",
        grant: { status: "needs_reauth" }
      })
      expect((await after.run(after.engine.getToken("crm", { force: true }))).decision.action).toBe("acquired")
      expect(gs.requests.at(-1)?.form["grant_type"]).toBe("password")
    })

    it("a stored connection PUT with another non-secret input: a grant written for the old inputs shows needs_reauth", async () => {
      if (!need(s.up, kind)) return
      const gs = await server()
      const store = await reopen(s.make)
      const e = await makeGrantEngine({ connections: {}, connectionStore: store, tokenStore: makeMemory() })
      const put = (scope: string) =>
        e.run(e.engine.registry.put("crm", { provider: "oauth2", inputs: { ...grantInputs(gs), scope } }))
      await put("read write")
      const p = await e.run(e.engine.grants.authorize("crm", "http://127.0.0.1:5555/callback"))
      await e.run(e.engine.grants.complete("crm", p, await consent(p.url)))
      expect(await e.run(e.engine.registry.view("crm"))).toMatchObject({ grant: { status: "active" } })
      const old = (await Effect.runPromise(store.getGrant("crm")))!
      await put("read")
      // The replacement dropped the grant; one written for the old inputs after it (a callback that an instance which
      // had not seen the PUT yet completed) is refused by renewal, and the view says so at once.
      expect(await e.run(e.engine.registry.view("crm"))).not.toHaveProperty("grant")
      const written = { refreshToken: old.refreshToken, status: "active" as const, binding: old.binding }
      expect(await Effect.runPromise(store.putGrant("crm", written, undefined))).toBe(true)
      const fresh = await makeGrantEngine({ connections: {}, connectionStore: store, tokenStore: makeMemory() })
      expect(await fresh.run(fresh.engine.registry.view("crm"))).toMatchObject({
        status: "needs_reauth",
        grant: { status: "needs_reauth", detail: movedDetail }
      })
      const refused = await fresh.fail(fresh.engine.getToken("crm", { force: true }))
      expect(refused).toMatchObject({ _tag: "AuthorizationRequired", reason: "needs_reauth" })
    })
  })
}
