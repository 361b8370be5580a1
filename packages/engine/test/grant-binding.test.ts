/** A durable grant is bound to where it was issued (grant-binding.ts), also for a connection of the config file: an
 *  edit of its token_url (then a reload or a restart, over the same SQLite file or PostgreSQL schema) never sends the
 *  stored refresh token to the new endpoint. A user's grant becomes needs_reauth; a password grant acquires anew; a
 *  change of a secret input only keeps the grant; a grant stored before bindings is used, then bound. */
import { Effect, type Layer, ManagedRuntime, Redacted } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { ConnectionStore, type ConnectionStoreError, type ConnectionStoreShape } from "../src/connection-store.ts"
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
  })
}
