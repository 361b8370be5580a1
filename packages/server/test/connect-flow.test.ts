/** The connect flow end to end against a loopback OAuth provider (test/services/loopback-oauth.ts), wire-exact:
 *  the link, the 302 to the authorization endpoint with exactly response_type, client_id, redirect_uri, scope,
 *  state and an S256 code_challenge; the token request with exactly grant_type, code, redirect_uri and a
 *  code_verifier whose SHA-256 is that challenge; the grant stored in the connection store (SQLite here), the
 *  lifecycle event counted, a replayed callback refused before any exchange, a provider's refusal shown as a page
 *  with no secret; a callback answered by a second instance sharing the store; and the grant's refresh token
 *  still working after both servers are gone and a new one starts on the same store, or after every key the
 *  server had in Redis is deleted. */
import { Effect } from "effect"
import { createHash, randomBytes } from "node:crypto"
import { rmSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { ConnectionStore } from "@tessera/engine"
import {
  describeRedis,
  dropPrefix,
  keysUnder,
  rawClient,
  redisUrl,
  uniquePrefix
} from "../../engine/test/services/redis-available.ts"
import type { RunningServer } from "../src/index.ts"
import * as Seal from "../src/connect-seal.ts"
import { ACME, ADMIN, CONNECT_KEY, GLOBEX, pageCode, parse, ring, serverLines } from "./services/connect-harness.ts"
import { capture, keyed, raw, sample, start, type Reply } from "./services/harness.ts"
import { configDir, startLoopbackOAuth, type LoopbackOAuth } from "./services/loopback-oauth.ts"

const STORE_KEY = randomBytes(32).toString("base64")
const { dir, file } = configDir("connect-flow")

let idp: LoopbackOAuth
let a: RunningServer
const captured = capture()

const text = (publicUrl: string | undefined) =>
  [
    "providers: [./providers]",
    `connection_store: { type: sqlite, path: ./connections.db, encryption_keys: ["${STORE_KEY}"] }`,
    ...serverLines(publicUrl, { allowlisted: false }),
    "http: { timeout_ms: 2000, total_timeout_ms: 3000, retries: 0 }"
  ].join("\n")

const load = (publicUrl: string | undefined) => parse(text(publicUrl), file)

beforeAll(async () => {
  idp = await startLoopbackOAuth()
  a = await start(await load(undefined), captured)
  await a.reload(await load(a.url))
})
afterAll(async () => {
  await a?.close()
  await idp?.close()
  rmSync(dir, { recursive: true, force: true })
})

const api = (base: string, key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  keyed(base, key, method, path, body, captured)

const navigate = (url: string, cookie?: string) => {
  const u = new URL(url)
  return raw(`${u.protocol}//${u.host}`, u.pathname + u.search, {
    headers: {
      "sec-fetch-site": "cross-site",
      "sec-fetch-mode": "navigate",
      "sec-fetch-dest": "document",
      ...(cookie ? { cookie } : {})
    }
  })
}

const putConnection = (name: string, tenant = "acme") =>
  api(a.url, ADMIN, "PUT", `/v1/connections/${name}`, {
    provider: "user-oauth",
    inputs: {
      authorize_url: idp.authorizeUrl,
      token_url: idp.tokenUrl,
      client_id: idp.clientId,
      client_secret: idp.clientSecret,
      scope: "crm.read crm.write"
    },
    tags: { tenant }
  })

/** Every link and state handed out: bearer credentials, never logged. */
const issued: string[] = []

/** The link, the 302 to the provider, and the provider's redirect back (code + state), as a browser would go. */
const beginFlow = async (name: string, body: Record<string, unknown> = {}) => {
  const link = await api(a.url, ACME, "POST", "/v1/connect-links", { connection: name, ...body })
  expect(link.status).toBe(201)
  const toProvider = await navigate(link.json().url)
  expect(toProvider.status).toBe(302)
  const cookie = String(toProvider.headers["set-cookie"]).split(";")[0]!
  const authorize = new URL(String(toProvider.headers.location))
  issued.push(new URL(link.json().url).searchParams.get("link")!, authorize.searchParams.get("state")!)
  const back = await fetch(authorize, { redirect: "manual" })
  expect(back.status).toBe(302)
  return { link, toProvider, authorize, cookie, callback: new URL(back.headers.get("location")!) }
}

const metricsText = async (base: string) =>
  (await raw(base, "/metrics", { headers: { authorization: `Bearer ${ADMIN}` } })).text

const s256 = (v: string) => createHash("sha256").update(v).digest("base64url")

describe("the connect flow, wire-exact", () => {
  let flow: Awaited<ReturnType<typeof beginFlow>>
  let page: Reply

  it("POST /v1/connect-links answers {url, expires_at}: the server's public URL and a 15-minute link", async () => {
    expect((await putConnection("acme-crm")).status).toBe(201)
    const before = Date.now()
    flow = await beginFlow("acme-crm")
    const body = flow.link.json()
    expect(Object.keys(body).sort()).toEqual(["expires_at", "url"])
    expect(body.url).toMatch(new RegExp(`^${a.url}/v1/connect/acme-crm\\?link=[0-9a-f]{8}(\\.[A-Za-z0-9_-]+){3}$`))
    const ttl = (Date.parse(body.expires_at) - before) / 1000
    expect(ttl).toBeGreaterThan(898)
    expect(ttl).toBeLessThanOrEqual(901)
    expect(flow.link.headers["cache-control"]).toBe("no-store")
  })

  it("GET the link: 302 to the authorization endpoint with exactly the RFC 6749 §4.1.1 + RFC 7636 parameters", () => {
    const q = Object.fromEntries(flow.authorize.searchParams)
    expect(flow.authorize.origin + flow.authorize.pathname).toBe(idp.authorizeUrl)
    expect(Object.keys(q).sort()).toEqual([
      "client_id",
      "code_challenge",
      "code_challenge_method",
      "redirect_uri",
      "response_type",
      "scope",
      "state"
    ])
    expect(q).toMatchObject({
      response_type: "code",
      client_id: idp.clientId,
      redirect_uri: `${a.url}/v1/connect/callback`,
      scope: "crm.read crm.write",
      code_challenge_method: "S256"
    })
    expect(q["code_challenge"]).toMatch(/^[A-Za-z0-9_-]{43}$/)
    // The state is sealed: it is not the link, and shows nothing of the connection or the verifier.
    expect(q["state"]).toMatch(/^[0-9a-f]{8}(\.[A-Za-z0-9_-]+){3}$/)
    expect(q["state"]).not.toContain("acme-crm")
    expect(new URL(flow.link.json().url).searchParams.get("link")).not.toBe(q["state"])
    expect(String(flow.toProvider.headers["set-cookie"])).toMatch(
      /^tessera_connect_[A-Za-z0-9_-]+=[A-Za-z0-9_-]{32}; Path=\/v1\/connect\/callback; Max-Age=600; HttpOnly; SameSite=Lax$/
    )
    // Sealed with the server's connect key: 10 minutes to come back, the verifier of this challenge inside.
    const opened = Seal.openState(ring, q["state"]!, Math.floor(Date.now() / 1000))
    expect(opened._tag).toBe("Opened")
    if (opened._tag === "Opened") {
      expect(opened.value.exp - Date.now() / 1000).toBeGreaterThan(598)
      expect(opened.value.exp - Date.now() / 1000).toBeLessThanOrEqual(601)
      expect(s256(opened.value.pv)).toBe(q["code_challenge"])
      expect(opened.value.c).toBe("acme-crm")
    }
    expect(flow.toProvider.headers["referrer-policy"]).toBe("no-referrer")
    expect(flow.toProvider.headers["cache-control"]).toBe("no-store")
  })

  it("the callback exchanges the code: exactly grant_type, code, redirect_uri and a code_verifier matching the S256 challenge", async () => {
    const before = await metricsText(a.url)
    const acquiredBefore = sample(before, "tessera_token_events_total", '{provider="user-oauth",event="acquired"}')
    page = await navigate(flow.callback.href, flow.cookie)
    expect(page.status).toBe(200)
    expect(pageCode(page.text)).toBe("Connected")
    const [exchange, ...more] = idp.tokenRequests()
    expect(more).toEqual([])
    expect(exchange!.method).toBe("POST")
    expect(exchange!.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/)
    expect(exchange!.headers.authorization).toBe(
      `Basic ${Buffer.from(`${idp.clientId}:${idp.clientSecret}`).toString("base64")}`
    )
    const f = exchange!.form
    expect(Object.keys(f).sort()).toEqual(["code", "code_verifier", "grant_type", "redirect_uri"])
    expect(f["grant_type"]).toBe("authorization_code")
    expect(f["code"]).toBe(flow.callback.searchParams.get("code"))
    expect(f["redirect_uri"]).toBe(`${a.url}/v1/connect/callback`)
    expect(f["code_verifier"]).toMatch(/^[A-Za-z0-9_-]{43,128}$/)
    expect(s256(f["code_verifier"]!)).toBe(flow.authorize.searchParams.get("code_challenge"))
    // The lifecycle event: a token acquired by the user's grant.
    const after = await metricsText(a.url)
    expect(sample(after, "tessera_token_events_total", '{provider="user-oauth",event="acquired"}')).toBe(
      acquiredBefore + 1
    )
  })

  it("the result page holds no code, state, verifier or token, and clears the browser cookie", () => {
    const f = idp.tokenRequests()[0]!.form
    for (const secret of [
      f["code"]!,
      f["code_verifier"]!,
      flow.callback.searchParams.get("state")!,
      ...idp.refreshTokens()
    ])
      expect(page.text).not.toContain(secret)
    expect(page.text).not.toContain(idp.clientSecret)
    expect(page.text).toContain("Account connected")
    expect(page.text).toContain("acme-crm")
    expect(String(page.headers["set-cookie"])).toContain("Max-Age=0")
  })

  it("the grant is stored: the next token comes from a refresh with the refresh token the provider issued", async () => {
    const rt = idp.refreshTokens()[0]!
    const r = await api(a.url, ADMIN, "POST", "/v1/connections/acme-crm/refresh")
    expect(r.status).toBe(200)
    const last = idp.tokenRequests().at(-1)!
    expect(last.form).toEqual({ grant_type: "refresh_token", refresh_token: rt })
  })

  it("a replayed callback is refused (409 AlreadyUsed) before the code is sent anywhere", async () => {
    const n = idp.tokenRequests().length
    const again = await navigate(flow.callback.href, flow.cookie)
    expect(again.status).toBe(409)
    expect(pageCode(again.text)).toBe("AlreadyUsed")
    expect(idp.tokenRequests().length).toBe(n)
  })

  it("a link can be opened again until it expires: each opening starts its own flow (own state, own verifier)", async () => {
    const url = flow.link.json().url
    const [one, two] = [await navigate(url), await navigate(url)]
    expect([one.status, two.status]).toEqual([302, 302])
    const stateOf = (r: Reply) => new URL(String(r.headers.location)).searchParams
    expect(stateOf(one).get("state")).not.toBe(stateOf(two).get("state"))
    expect(stateOf(one).get("code_challenge")).not.toBe(stateOf(two).get("code_challenge"))
  })

  it("a key outside the connection's tags cannot make a link for it (404, as if absent)", async () => {
    const r = await api(a.url, GLOBEX, "POST", "/v1/connect-links", { connection: "acme-crm" })
    expect(r.status).toBe(404)
    expect(r.json().code).toBe("UnknownConnection")
  })
})

describe("the provider refuses", () => {
  it("a refused code (invalid_grant) is a 502 ExchangeFailed page naming no secret", async () => {
    expect((await putConnection("acme-refused")).status).toBe(201)
    const flow = await beginFlow("acme-refused")
    idp.fail = () => ({ status: 400, body: { error: "invalid_grant", error_description: "code expired" } })
    try {
      const r = await navigate(flow.callback.href, flow.cookie)
      expect(r.status).toBe(502)
      expect(pageCode(r.text)).toBe("ExchangeFailed")
      expect(r.text).not.toContain(flow.callback.searchParams.get("code")!)
      expect(r.text).not.toContain(idp.clientSecret)
      expect(r.text).not.toMatch(/\bat [\w.<>]+ \(|node:internal|\.ts:\d+/)
    } finally {
      idp.fail = undefined
    }
  })

  it("a provider that is down is a 502 page too, and the flow can be started again", async () => {
    const flow = await beginFlow("acme-refused")
    idp.fail = () => ({ status: 503, body: { error: "temporarily_unavailable" } })
    try {
      const r = await navigate(flow.callback.href, flow.cookie)
      expect(r.status).toBe(502)
      expect(pageCode(r.text)).toBe("ExchangeFailed")
    } finally {
      idp.fail = undefined
    }
    const retry = await beginFlow("acme-refused")
    expect(pageCode((await navigate(retry.callback.href, retry.cookie)).text)).toBe("Connected")
  })

  it("redirect_after gets the outcome: connected, or failed with its code", async () => {
    expect((await putConnection("acme-back")).status).toBe(201)
    const ok = await beginFlow("acme-back", { redirect_after: "https://app.example.com/connected" })
    const r = await navigate(ok.callback.href, ok.cookie)
    expect(r.status).toBe(303)
    expect(String(r.headers.location)).toBe(
      "https://app.example.com/connected?tessera_connection=acme-back&tessera_status=connected"
    )
  })
})

describe("reconnecting a user whose grant was refused", () => {
  it("a connection marked needs_reauth is active again after a new connect flow", async () => {
    expect((await putConnection("acme-reauth")).status).toBe(201)
    const first = await beginFlow("acme-reauth")
    expect(pageCode((await navigate(first.callback.href, first.cookie)).text)).toBe("Connected")
    idp.fail = (r) =>
      r.form["grant_type"] === "refresh_token" ? { status: 400, body: { error: "invalid_grant" } } : undefined
    try {
      const refused = await api(a.url, ADMIN, "POST", "/v1/connections/acme-reauth/refresh")
      expect(refused.status).toBeGreaterThanOrEqual(400)
    } finally {
      idp.fail = undefined
    }
    expect((await api(a.url, ADMIN, "GET", "/v1/connections/acme-reauth")).json().grant?.status).toBe("needs_reauth")
    const again = await beginFlow("acme-reauth")
    expect(pageCode((await navigate(again.callback.href, again.cookie)).text)).toBe("Connected")
    expect((await api(a.url, ADMIN, "GET", "/v1/connections/acme-reauth")).json().grant?.status).toBe("active")
    const rt = idp.refreshTokens().at(-1)!
    expect((await api(a.url, ADMIN, "POST", "/v1/connections/acme-reauth/refresh")).status).toBe(200)
    expect(idp.tokenRequests().at(-1)!.form).toEqual({ grant_type: "refresh_token", refresh_token: rt })
  })
})

describe("several instances, and a restart", () => {
  it("a callback answered by a second instance sharing the connection store stores the grant for both", async () => {
    // Both instances are behind one public URL (here: a's address); the browser's callback reaches b.
    const b = await start(await load(a.url), capture())
    try {
      expect((await putConnection("acme-multi")).status).toBe(201)
      const flow = await beginFlow("acme-multi")
      const onB = new URL(flow.callback.pathname + flow.callback.search, b.url)
      const r = await navigate(onB.href, flow.cookie)
      expect(r.status).toBe(200)
      expect(pageCode(r.text)).toBe("Connected")
      // The exchange named the one registered redirect_uri, whichever instance made it.
      expect(idp.tokenRequests().at(-1)!.form["redirect_uri"]).toBe(`${a.url}/v1/connect/callback`)
      // a uses the grant b stored.
      const rt = idp.refreshTokens().at(-1)!
      expect((await api(a.url, ADMIN, "POST", "/v1/connections/acme-multi/refresh")).status).toBe(200)
      expect(idp.tokenRequests().at(-1)!.form).toEqual({ grant_type: "refresh_token", refresh_token: rt })
      // And a replay on a is refused: one use holds across instances.
      const replay = new URL(flow.callback.pathname + flow.callback.search, a.url)
      expect(pageCode((await navigate(replay.href, flow.cookie)).text)).toBe("AlreadyUsed")
    } finally {
      await b.close()
    }
  })

  it("the grant's refresh token survives the server: a new server on the same store refreshes with it", async () => {
    await a.close()
    const c = await start(await load(undefined), capture())
    try {
      const n = idp.tokenRequests().length
      const r = await api(c.url, ADMIN, "GET", "/v1/connections/acme-crm/token")
      expect(r.status).toBe(200)
      const sent = idp.tokenRequests().slice(n)
      expect(sent.map((x) => x.form["grant_type"])).toEqual(["refresh_token"])
      expect(idp.refreshTokens()).not.toContain(sent[0]!.form["refresh_token"])
      expect(r.json().access_token).toMatch(/^at-/)
    } finally {
      await c.close()
    }
  })
})

describeRedis("the token cache on Redis", () => {
  it("a user's refresh token survives a flush of every key the server had in Redis, and a restart", async () => {
    const prefix = uniquePrefix("connect")
    const cacheKey = randomBytes(32).toString("base64")
    const onRedis = (u: string | undefined) =>
      [
        "providers: [./providers]",
        `connection_store: { type: sqlite, path: ./connections-redis.db, encryption_keys: ["${STORE_KEY}"] }`,
        `store: { type: redis, url: "${redisUrl}", key_prefix: "${prefix}", encryption_key: "${cacheKey}" }`,
        ...serverLines(u, { allowlisted: false }),
        "http: { timeout_ms: 2000, total_timeout_ms: 3000, retries: 0 }"
      ].join("\n")
    const redis = await rawClient()
    const own = capture()
    let t = await start(await parse(onRedis(undefined), file), own)
    try {
      await t.reload(await parse(onRedis(t.url), file))
      const put = await api(t.url, ADMIN, "PUT", "/v1/connections/acme-redis", {
        provider: "user-oauth",
        inputs: {
          authorize_url: idp.authorizeUrl,
          token_url: idp.tokenUrl,
          client_id: idp.clientId,
          client_secret: idp.clientSecret
        },
        tags: { tenant: "acme" }
      })
      expect(put.status).toBe(201)
      const link = await api(t.url, ACME, "POST", "/v1/connect-links", { connection: "acme-redis" })
      const nav = await navigate(link.json().url)
      const back = await fetch(String(nav.headers.location), { redirect: "manual" })
      const done = await navigate(back.headers.get("location")!, String(nav.headers["set-cookie"]).split(";")[0]!)
      expect(pageCode(done.text)).toBe("Connected")
      const rt = idp.refreshTokens().at(-1)!
      expect((await keysUnder(redis, prefix)).length).toBeGreaterThan(0)
      await t.close()
      expect(await dropPrefix(redis, prefix)).toBeGreaterThan(0)
      expect(await keysUnder(redis, prefix)).toEqual([])
      t = await start(await parse(onRedis(undefined), file), own)
      const n = idp.tokenRequests().length
      const token = await api(t.url, ADMIN, "GET", "/v1/connections/acme-redis/token")
      expect(token.status).toBe(200)
      expect(
        idp
          .tokenRequests()
          .slice(n)
          .map((r) => r.form)
      ).toEqual([{ grant_type: "refresh_token", refresh_token: rt }])
    } finally {
      await t.close()
      await dropPrefix(redis, prefix)
      redis.destroy()
    }
  })
})

describe("the connection store fails", () => {
  it("a grant that cannot be saved is a 503 page, and the user can start again later", async () => {
    const base = ConnectionStore.makeMemory()
    let failing = true
    const store: ConnectionStore.ConnectionStoreShape = {
      ...base,
      putGrant: (name, grant, expected) =>
        failing
          ? Effect.fail(
              new ConnectionStore.ConnectionStoreError({
                store: "test",
                operation: "put grant",
                reason: "disk on fire"
              })
            )
          : base.putGrant(name, grant, expected)
    }
    const noStore = (u: string | undefined) =>
      [
        "providers: [./providers]",
        ...serverLines(u, { allowlisted: false }),
        "http: { timeout_ms: 2000, total_timeout_ms: 3000, retries: 0 }"
      ].join("\n")
    const own = capture()
    const t = await start(await parse(noStore(undefined), file), own, { connections: store })
    try {
      await t.reload(await parse(noStore(t.url), file))
      const put = await api(t.url, ADMIN, "PUT", "/v1/connections/acme-fragile", {
        provider: "user-oauth",
        inputs: {
          authorize_url: idp.authorizeUrl,
          token_url: idp.tokenUrl,
          client_id: idp.clientId,
          client_secret: idp.clientSecret
        },
        tags: { tenant: "acme" }
      })
      expect(put.status).toBe(201)
      const link = await api(t.url, ACME, "POST", "/v1/connect-links", { connection: "acme-fragile" })
      const toProvider = await navigate(link.json().url)
      const cookie = String(toProvider.headers["set-cookie"]).split(";")[0]!
      const back = await fetch(String(toProvider.headers.location), { redirect: "manual" })
      const r = await navigate(back.headers.get("location")!, cookie)
      expect(r.status).toBe(503)
      expect(pageCode(r.text)).toBe("ConnectionStoreError")
      expect(r.text).not.toContain("disk on fire")
      failing = false
      const again = await api(t.url, ACME, "POST", "/v1/connect-links", { connection: "acme-fragile" })
      const nav = await navigate(again.json().url)
      const back2 = await fetch(String(nav.headers.location), { redirect: "manual" })
      const ok = await navigate(back2.headers.get("location")!, String(nav.headers["set-cookie"]).split(";")[0]!)
      expect(pageCode(ok.text)).toBe("Connected")
    } finally {
      await t.close()
    }
  })
})

describe("secrets", () => {
  it("no client secret, code, verifier, refresh token, link, state or connect key in any log line or problem", () => {
    expect(issued.length).toBeGreaterThan(8)
    expect(captured.logs.length).toBeGreaterThan(20)
    const secrets = [
      ...issued,
      idp.clientSecret,
      CONNECT_KEY,
      STORE_KEY,
      ...idp.refreshTokens(),
      ...idp.tokenRequests().flatMap((r) => [r.form["code"], r.form["code_verifier"], r.form["refresh_token"]])
    ].filter((s): s is string => typeof s === "string" && s.length > 8)
    for (const h of [...captured.logs, ...captured.problems]) for (const s of secrets) expect(h).not.toContain(s)
  })
})
