/** The authorization code flow with PKCE against a loopback server that checks every rule (grant-server.ts): the
 *  authorization URL, the callback checks, the code exchange on the wire, the grant kept in the connection store,
 *  renewal from the durable grant with rotation, and `invalid_grant` turning into needs_reauth instead of a retry;
 *  the authorization response's `iss` (RFC 9207) against a discovered issuer or one the manifest declares. */
import { Redacted } from "effect"
import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterEach, describe, expect, it } from "vitest"
import { client, startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { makeMemory } from "../src/connection-store.ts"
import type * as Authorization from "../src/authorization.ts"
import * as Discovery from "../src/discovery.ts"
import { consent, grantInputs, makeGrantEngine } from "./services/grant-engine.ts"

let gs: GrantServer
afterEach(async () => gs?.close())

const setup = async (inputs: Record<string, string> = {}, options: Parameters<typeof startGrantServer>[0] = {}) => {
  gs = await startGrantServer(options)
  const store = makeMemory()
  const g = await makeGrantEngine({
    connections: { app: { provider: "oauth2", inputs: grantInputs(gs, inputs) } },
    connectionStore: store
  })
  return { ...g, store }
}

const tokenRequests = () => gs.requests.filter((r) => r.path === "/token")

/** A callback naming the right issuer and then another one: refused as a mix-up, the code sent nowhere. */
const refusedTwice = async ({
  engine,
  p,
  fail
}: Awaited<ReturnType<typeof makeGrantEngine>> & { readonly p: Authorization.Pending }) => {
  gs.iss = gs.origin
  const query = await consent(p.url)
  query.append("iss", "https://as.attacker.example")
  const e = await fail(engine.grants.complete("app", p, query))
  expect(e).toMatchObject({ reason: "issuer_mismatch" })
  expect(e.message).toContain("more than once")
  expect(tokenRequests()).toHaveLength(0)
}

describe("authorization code + PKCE", () => {
  it("builds the authorization URL: response_type, client_id, redirect_uri, scope, state and an S256 challenge", async () => {
    const { engine, run } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    const u = new URL(p.url)
    expect(`${u.origin}${u.pathname}`).toBe(`${gs.origin}/authorize`)
    expect([...u.searchParams.keys()]).toEqual([
      "response_type",
      "client_id",
      "redirect_uri",
      "scope",
      "state",
      "code_challenge",
      "code_challenge_method"
    ])
    expect(u.searchParams.get("response_type")).toBe("code")
    expect(u.searchParams.get("client_id")).toBe(client.id)
    expect(u.searchParams.get("redirect_uri")).toBe("http://127.0.0.1:5555/callback")
    expect(u.searchParams.get("scope")).toBe("read write")
    expect(u.searchParams.get("state")).toBe(Redacted.value(p.state))
    expect(Redacted.value(p.state)).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(Redacted.value(p.verifier)).toMatch(/^[A-Za-z0-9_-]{43}$/) // RFC 7636 §4.1: 43-128 unreserved characters
    expect(u.searchParams.get("code_challenge")).toBe(
      createHash("sha256").update(Redacted.value(p.verifier)).digest("base64url")
    )
    expect(u.searchParams.get("code_challenge_method")).toBe("S256")
    const again = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    expect(Redacted.value(again.state)).not.toBe(Redacted.value(p.state))
    expect(Redacted.value(again.verifier)).not.toBe(Redacted.value(p.verifier))
    expect(`${p.state}`).toBe("<redacted:state>")
  })

  it("exchanges the code exactly as RFC 6749 §4.1.3 + RFC 7636 §4.5 say and keeps the grant in the connection store", async () => {
    const { engine, run, store, events } = await setup()
    const redirect = "http://127.0.0.1:5555/callback"
    const p = await run(engine.grants.authorize("app", redirect))
    const query = await consent(p.url)
    const r = await run(engine.grants.complete("app", p, query))
    const [sent] = tokenRequests()
    expect(tokenRequests()).toHaveLength(1)
    expect(sent!.headers["authorization"]).toBe(
      `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`
    )
    expect(sent!.headers["content-type"]).toBe("application/x-www-form-urlencoded")
    expect(sent!.body).toBe(
      new URLSearchParams({
        grant_type: "authorization_code",
        code: query.get("code")!,
        redirect_uri: redirect,
        code_verifier: Redacted.value(p.verifier)
      }).toString()
    )
    expect(r.decision.action).toBe("acquired")
    expect(r.hasRefreshToken).toBe(true)
    const grant = await run(store.getGrant("app"))
    expect(grant?.status).toBe("active")
    expect(gs.live()).toEqual([Redacted.value(grant!.refreshToken)])
    // The token is cached: the next call sends nothing.
    const again = await run(engine.getToken("app"))
    expect(Redacted.value(again.accessToken)).toBe(Redacted.value(r.accessToken))
    expect(tokenRequests()).toHaveLength(1)
    expect(events.map((e) => e.type)).toContain("acquired")
    const view = await run(engine.registry.view("app"))
    expect(view?.status).toBe("ok")
    expect(view?.grant?.status).toBe("active")
    expect(JSON.stringify(view)).not.toContain(Redacted.value(grant!.refreshToken))
  })

  it("refuses a callback whose state differs (checked before anything else), a denied consent and a callback without code", async () => {
    const { engine, run, fail } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    const query = await consent(p.url)
    const forged = new URLSearchParams(query)
    forged.set("state", "not-the-state")
    const mismatch = await fail(engine.grants.complete("app", p, forged))
    expect(mismatch).toMatchObject({ _tag: "AuthorizationFailed", reason: "state_mismatch" })
    const denied = await fail(
      engine.grants.complete("app", p, new URLSearchParams({ state: "x", error: "access_denied" }))
    )
    expect(denied).toMatchObject({ reason: "state_mismatch" }) // a forged refusal is still a mismatch
    gs.deny = true
    const refused = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(refused).toMatchObject({ _tag: "AuthorizationFailed", reason: "denied", detail: "access_denied" })
    expect(refused.message).toContain("the user declined")
    const empty = await fail(engine.grants.complete("app", p, new URLSearchParams({ state: Redacted.value(p.state) })))
    expect(empty).toMatchObject({ reason: "invalid_callback" })
    expect(tokenRequests()).toHaveLength(0)
    expect(JSON.stringify([mismatch, refused, empty])).not.toContain(Redacted.value(p.state))
  })

  it("never runs the acquire flow of a user-granted connection: no grant is AuthorizationRequired, nothing sent", async () => {
    const { engine, fail } = await setup()
    const e = await fail(engine.getToken("app"))
    expect(e).toMatchObject({ _tag: "AuthorizationRequired", reason: "no_grant", connection: "app" })
    expect(e.message).toContain("tessera login app")
    expect(gs.requests).toHaveLength(0)
  })

  it("renews from the durable grant, rotating it under CAS, and the spent refresh token is never sent again", async () => {
    const { engine, run, store } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await run(engine.grants.complete("app", p, await consent(p.url)))
    const first = await run(store.getGrant("app"))
    const r = await run(engine.getToken("app", { force: true }))
    expect(r.decision.action).toBe("refreshed")
    const [, refresh] = tokenRequests()
    expect(refresh!.body).toBe(
      new URLSearchParams({
        grant_type: "refresh_token",
        scope: "read write",
        refresh_token: Redacted.value(first!.refreshToken)
      }).toString()
    )
    const second = await run(store.getGrant("app"))
    expect(second!.version).toBeGreaterThan(first!.version)
    expect(Redacted.value(second!.refreshToken)).not.toBe(Redacted.value(first!.refreshToken))
    expect(second!.detail).toBeUndefined() // the rotation claim is released
    await run(engine.getToken("app", { force: true }))
    expect(gs.reused).toEqual([])
    expect(gs.redeemed).toEqual([Redacted.value(first!.refreshToken), Redacted.value(second!.refreshToken)])
  })

  it("invalid_grant on refresh marks the grant needs_reauth: no retry, no fallback, visible in the view and events", async () => {
    const { engine, run, fail, store, events } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await run(engine.grants.complete("app", p, await consent(p.url)))
    gs.revoke(Redacted.value((await run(store.getGrant("app")))!.refreshToken))
    const before = gs.requests.length
    const e = await fail(engine.getToken("app", { force: true }))
    expect(e).toMatchObject({ _tag: "AuthorizationRequired", reason: "needs_reauth" })
    expect(e.message).toContain("invalid_grant")
    expect(gs.requests.length - before).toBe(1) // one refresh attempt, no retry, no acquire
    expect((await run(store.getGrant("app")))?.status).toBe("needs_reauth")
    expect(events.filter((x) => x.type === "needs_reauth")).toHaveLength(1)
    const view = await run(engine.registry.view("app"))
    expect(view).toMatchObject({ status: "needs_reauth", grant: { status: "needs_reauth" } })
    // Later calls fail at once, without asking the provider again.
    const again = await fail(engine.getToken("app", { force: true }))
    expect(again).toMatchObject({ reason: "needs_reauth" })
    expect(gs.requests.length - before).toBe(1)
    // A new authorization restores it.
    const p2 = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await run(engine.grants.complete("app", p2, await consent(p2.url)))
    expect((await run(engine.registry.view("app")))?.status).toBe("ok")
    expect((await run(engine.getToken("app", { force: true }))).decision.action).toBe("refreshed")
  })

  it("another rejection (invalid_scope) is reported as it is and leaves the grant active", async () => {
    gs = await startGrantServer({ refuseScope: "admin" })
    const store = makeMemory()
    const { engine, run, events } = await makeGrantEngine({
      connections: { app: { provider: "oauth2", inputs: grantInputs(gs, { scope: "admin" }) } },
      connectionStore: store
    })
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await run(engine.grants.complete("app", p, await consent(p.url)))
    // The token in hand is still valid, so it is served stale; the failure is the provider's answer as it is.
    const r = await run(engine.getToken("app", { force: true }))
    expect(r.decision.action).toBe("served_stale")
    expect(events.find((e) => e.type === "failed")).toMatchObject({ error: "UpstreamRejected" })
    expect(events.find((e) => e.type === "failed")?.reason).toContain("invalid_scope")
    expect(events.some((e) => e.type === "needs_reauth")).toBe(false)
    const g = await run(store.getGrant("app"))
    expect(g).toMatchObject({ status: "active" })
    expect(g?.detail).toBeUndefined() // the claim was released
  })

  it("waits for another instance's live rotation claim and uses its result; takes over a dead claimer's expired one", async () => {
    const { engine, run, store } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    await run(engine.grants.complete("app", p, await consent(p.url)))
    const g = (await run(store.getGrant("app")))!
    // Another instance claims the rotation (its lease holds for a minute) ...
    const claim = {
      refreshToken: g.refreshToken,
      status: "active" as const,
      detail: `rotating until ${Date.now() + 60_000} by other1`
    }
    expect(await run(store.putGrant("app", claim, g.version))).toBe(true)
    const waiting = run(engine.getToken("app", { force: true }))
    await new Promise((r) => setTimeout(r, 300))
    expect(tokenRequests()).toHaveLength(1) // nothing redeemed while the claim holds
    // ... and finishes: it redeemed the refresh token and wrote the rotated one.
    const rotated = await fetch(`${gs.origin}/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded"
      },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: Redacted.value(g.refreshToken) })
    }).then((r) => r.json() as Promise<{ refresh_token: string }>)
    const next = { refreshToken: Redacted.make(rotated.refresh_token), status: "active" as const }
    expect(await run(store.putGrant("app", next, g.version + 1))).toBe(true)
    const r = await waiting
    expect(r.decision.action).toBe("refreshed")
    expect(gs.reused).toEqual([])
    expect(gs.redeemed).toEqual([Redacted.value(g.refreshToken), rotated.refresh_token])
    // A claimer that died: its lease ran out, so the next renewal takes the claim over at once.
    const h = (await run(store.getGrant("app")))!
    const dead = {
      refreshToken: h.refreshToken,
      status: "active" as const,
      detail: `rotating until ${Date.now() - 1} by dead1`
    }
    expect(await run(store.putGrant("app", dead, h.version))).toBe(true)
    expect((await run(engine.getToken("app", { force: true }))).decision.action).toBe("refreshed")
    expect(gs.reused).toEqual([])
    expect(gs.redeemed.at(-1)).toBe(Redacted.value(h.refreshToken))
  })

  it("a public client (client_auth none) sends its client_id in the body and no secret", async () => {
    const { engine, run } = await setup({ client_id: "public", client_auth: "none", client_secret: "" })
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    const query = await consent(p.url)
    await run(engine.grants.complete("app", p, query))
    const [sent] = tokenRequests()
    expect(sent!.headers["authorization"]).toBeUndefined()
    expect(sent!.form).toEqual({
      grant_type: "authorization_code",
      client_id: "public",
      code: query.get("code")!,
      redirect_uri: "http://127.0.0.1:5555/callback",
      code_verifier: Redacted.value(p.verifier)
    })
  })

  it("without a connection store a user's grant is refused rather than kept only in a cache", async () => {
    gs = await startGrantServer()
    const { engine, run, fail } = await makeGrantEngine({
      connections: { app: { provider: "oauth2", inputs: grantInputs(gs) } }
    })
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ _tag: "StoreError" })
    expect(e.message).toContain("connection_store")
  })
})

describe("the authorization response's issuer (RFC 9207, the mix-up defence)", () => {
  afterEach(() => Discovery.clearCache())
  // A connection that discovers its issuer (the grant server's RFC 8414 metadata), with a flow started.
  const withIssuer = async (issParameter?: boolean) => {
    gs = await startGrantServer({ issParameter })
    const store = makeMemory()
    const g = await makeGrantEngine({
      connections: {
        app: {
          provider: "oauth2",
          inputs: {
            ...Object.fromEntries(Object.entries(grantInputs(gs)).filter(([k]) => !k.endsWith("_url"))),
            issuer: gs.origin
          }
        }
      },
      connectionStore: store
    })
    const p = await g.run(g.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    return { ...g, p }
  }

  it("redeems a response that names the connection's issuer, and one without iss when the metadata does not promise it", async () => {
    const a = await withIssuer(true)
    gs.iss = gs.origin
    await a.run(a.engine.grants.complete("app", a.p, await consent(a.p.url)))
    expect(tokenRequests()).toHaveLength(1)
    await gs.close()
    Discovery.clearCache()
    const b = await withIssuer(undefined)
    await b.run(b.engine.grants.complete("app", b.p, await consent(b.p.url)))
    expect(tokenRequests()).toHaveLength(1)
  })

  it("refuses another issuer's response, also an error response, and sends the code nowhere", async () => {
    const { engine, p, fail } = await withIssuer(true)
    gs.iss = "https://as.attacker.example"
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ _tag: "AuthorizationFailed", reason: "issuer_mismatch" })
    expect(e.message).toContain('the response names the issuer "https://as.attacker.example", not ' + gs.origin)
    expect(e.message).toContain("mix-up")
    gs.deny = true
    const refused = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(refused).toMatchObject({ reason: "issuer_mismatch" }) // not believed as the user's refusal
    expect(tokenRequests()).toHaveLength(0)
    expect(JSON.stringify([e, refused])).not.toContain(Redacted.value(p.state))
  })

  it("refuses a response that names its issuer twice, the right one first", async () => {
    await refusedTwice(await withIssuer(false))
  })

  it("refuses a response without iss when the issuer's metadata says it always sends one", async () => {
    const { engine, p, fail } = await withIssuer(true)
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ reason: "issuer_mismatch" })
    expect(e.message).toContain("has no iss")
    expect(tokenRequests()).toHaveLength(0)
  })

  it("quotes a hostile iss escaped and bounded", async () => {
    const { engine, p, fail } = await withIssuer(false)
    gs.iss = `https://x.example/\u001b[31m\r\n${"a".repeat(5000)}`
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ reason: "issuer_mismatch" })
    expect([...e.message].some((ch) => ch.charCodeAt(0) < 0x20)).toBe(false)
    expect(e.message.length).toBeLessThan(800)
  })

  it("without discovery no issuer is known, and an iss is not compared", async () => {
    const { engine, run } = await setup()
    const p = await run(engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    gs.iss = "https://anything.example"
    await run(engine.grants.complete("app", p, await consent(p.url)))
    expect(tokenRequests()).toHaveLength(1)
  })
})

describe("a manifest's declared authorization.issuer (RFC 9207 without discovery)", () => {
  afterEach(() => Discovery.clearCache())
  const dirs: string[] = []
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })
  /** The bundled oauth2 manifest as `oauth2-iss`, with `authorization.issuer` over an input (default `byDefault`). */
  const manifestDir = (byDefault?: string) => {
    const dir = mkdtempSync(join(tmpdir(), "tessera-declared-iss-"))
    dirs.push(dir)
    const text = readFileSync(new URL("../../../providers/oauth2.yaml", import.meta.url), "utf8")
    const input = `  as_issuer: { type: url, required: false${byDefault ? `, default: "${byDefault}"` : ""} }\n`
    const manifest = text
      .replace("id: oauth2", "id: oauth2-iss")
      .replace("inputs:\n", `inputs:\n${input}`)
      .replace('issuer: "{{ inputs.authorization_issuer }}"', 'issuer: "{{ inputs.as_issuer }}"')
    expect(manifest).toContain('issuer: "{{ inputs.as_issuer }}"')
    writeFileSync(join(dir, "oauth2-iss.yaml"), manifest)
    return dir
  }
  /** A connection of that manifest with these inputs (no discovery unless they give an issuer), a flow started. */
  const declared = async (
    inputs: (gs: GrantServer) => Record<string, string>,
    opts: { byDefault?: (gs: GrantServer) => string; issParameter?: boolean } = {}
  ) => {
    gs = await startGrantServer({ issParameter: opts.issParameter })
    const g = await makeGrantEngine({
      connections: { app: { provider: "oauth2-iss", inputs: inputs(gs) } },
      connectionStore: makeMemory(),
      providers: [manifestDir(opts.byDefault?.(gs))]
    })
    const p = await g.run(g.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    return { ...g, p }
  }

  it("redeems a response whose iss is the declared issuer (a connection's input overriding the manifest's default)", async () => {
    const { engine, p, run } = await declared((s) => grantInputs(s, { as_issuer: s.origin }), {
      byDefault: () => "https://as.elsewhere.example"
    })
    gs.iss = gs.origin
    await run(engine.grants.complete("app", p, await consent(p.url)))
    expect(tokenRequests()).toHaveLength(1)
  })

  it("uses the manifest's default when the connection does not override it", async () => {
    const { engine, p, fail } = await declared((s) => grantInputs(s), {
      byDefault: () => "https://as.elsewhere.example"
    })
    gs.iss = gs.origin
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ _tag: "AuthorizationFailed", reason: "issuer_mismatch" })
    expect(e.message).toContain(`the response names the issuer "${gs.origin}", not https://as.elsewhere.example`)
    expect(tokenRequests()).toHaveLength(0)
  })

  it("refuses another issuer's response, also an error response, and sends the code nowhere", async () => {
    const { engine, p, fail } = await declared((s) => grantInputs(s, { as_issuer: s.origin }))
    gs.iss = "https://as.attacker.example"
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ _tag: "AuthorizationFailed", reason: "issuer_mismatch" })
    expect(e.message).toContain('the response names the issuer "https://as.attacker.example", not ' + gs.origin)
    gs.deny = true
    const refused = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(refused).toMatchObject({ reason: "issuer_mismatch" })
    // Exactly: a trailing slash is another issuer.
    gs.deny = false
    gs.iss = `${gs.origin}/`
    expect(await fail(engine.grants.complete("app", p, await consent(p.url)))).toMatchObject({
      reason: "issuer_mismatch"
    })
    expect(tokenRequests()).toHaveLength(0)
    expect(JSON.stringify([e, refused])).not.toContain(Redacted.value(p.state))
  })

  it("requires iss: declaring the issuer says the server sends it (RFC 9207 §2.4)", async () => {
    const { engine, p, fail } = await declared((s) => grantInputs(s, { as_issuer: s.origin }))
    const e = await fail(engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ reason: "issuer_mismatch" })
    expect(e.message).toContain("has no iss")
    expect(e.message).toContain("authorization.issuer")
    expect(tokenRequests()).toHaveLength(0)
  })

  it("refuses a response that names its issuer twice, the right one first", async () => {
    await refusedTwice(await declared((s) => grantInputs(s, { as_issuer: s.origin })))
  })

  it("the bundled oauth2 manifest declares it over the input authorization_issuer", async () => {
    gs = await startGrantServer()
    const g = await makeGrantEngine({
      connections: { app: { provider: "oauth2", inputs: grantInputs(gs, { authorization_issuer: gs.origin }) } },
      connectionStore: makeMemory()
    })
    const p = await g.run(g.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    gs.iss = "https://as.attacker.example"
    const e = await g.fail(g.engine.grants.complete("app", p, await consent(p.url)))
    expect(e).toMatchObject({ _tag: "AuthorizationFailed", reason: "issuer_mismatch" })
    expect(tokenRequests()).toHaveLength(0)
    gs.iss = gs.origin
    await g.run(g.engine.grants.complete("app", p, await consent(p.url)))
    expect(tokenRequests()).toHaveLength(1)
  })

  it("declared with its inputs unset: nothing changes, an iss is not compared", async () => {
    const { engine, p, run } = await declared((s) => grantInputs(s))
    gs.iss = "https://anything.example"
    await run(engine.grants.complete("app", p, await consent(p.url)))
    expect(tokenRequests()).toHaveLength(1)
  })

  it("is no issuer identifier (a query, a fragment, whitespace): InputInvalid before the user is sent anywhere", async () => {
    // (An input of type url refuses plain http to another host already; a manifest may declare no type.) A URL
    // parser drops spaces at the ends and tabs or line breaks anywhere, which iss, compared exactly, never has.
    for (const [bad, why] of [
      ["https://as.example.com/?tenant=1", "query or fragment"],
      ["https://as.example.com/#frag", "query or fragment"],
      ["https://as.example.com ", 'issuer "https://as.example.com " has whitespace'],
      [" https://as.example.com", "whitespace or a control character"],
      ["https://as.exa\tmple.com", 'issuer "https://as.exa\\tmple.com" has whitespace'],
      ["https://as.example.com/\n", "whitespace or a control character"]
    ] as const) {
      gs = await startGrantServer()
      const g = await makeGrantEngine({
        connections: { app: { provider: "oauth2-iss", inputs: { ...grantInputs(gs), as_issuer: bad } } },
        connectionStore: makeMemory(),
        providers: [manifestDir()]
      })
      const e = await g.fail(g.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
      expect(e, JSON.stringify(bad)).toMatchObject({ _tag: "InputInvalid" })
      expect(e.message).toContain("authorization.issuer")
      expect(e.message).toContain(why)
      await gs.close()
    }
  })

  it("with discovery too: the discovered issuer must be the declared one, and iss is then required", async () => {
    const discovering = (s: GrantServer) => ({
      ...Object.fromEntries(Object.entries(grantInputs(s)).filter(([k]) => !k.endsWith("_url"))),
      issuer: s.origin
    })
    // The metadata does not promise iss; the declaration does.
    const same = await declared((s) => ({ ...discovering(s), as_issuer: s.origin }), { issParameter: false })
    const e = await same.fail(same.engine.grants.complete("app", same.p, await consent(same.p.url)))
    expect(e).toMatchObject({ reason: "issuer_mismatch" })
    expect(e.message).toContain("has no iss")
    gs.iss = gs.origin
    await same.run(same.engine.grants.complete("app", same.p, await consent(same.p.url)))
    expect(tokenRequests()).toHaveLength(1)
    await gs.close()
    Discovery.clearCache()
    gs = await startGrantServer()
    const other = await makeGrantEngine({
      connections: {
        app: { provider: "oauth2-iss", inputs: { ...discovering(gs), as_issuer: "https://as.elsewhere.example" } }
      },
      connectionStore: makeMemory(),
      providers: [manifestDir()]
    })
    const conflict = await other.fail(other.engine.grants.authorize("app", "http://127.0.0.1:5555/callback"))
    expect(conflict).toMatchObject({ _tag: "InputInvalid" })
    expect(conflict.message).toContain("is not the issuer the connection discovers")
  })
})
