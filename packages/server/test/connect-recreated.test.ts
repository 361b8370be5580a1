/** A connect link or state names one connection, not just a name: a stored connection deleted and created again
 *  under the same name (here by another tenant) starts at version 1 again, and neither the link made for the old
 *  one (with its tenant's `redirect_after`) may send a user to the new one's authorization endpoint, nor a state
 *  begun for the old one hand its code and verifier to the new one's token endpoint or store its grant there. And
 *  a grant is bound the same way: a PUT that re-points a connection drops it, so its refresh token never goes to
 *  the new endpoint. */
import { rmSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { ACME, ADMIN, GLOBEX, pageCode, parse, serverLines } from "./services/connect-harness.ts"
import { capture, keyed, raw, start, type Reply } from "./services/harness.ts"
import { configDir, startLoopbackOAuth, type LoopbackOAuth } from "./services/loopback-oauth.ts"

const { dir, file } = configDir("connect-recreated")

/** The provider Globex's users consent at, and the one Acme's re-created connection points at instead. */
let idp: LoopbackOAuth
let hostile: LoopbackOAuth
let s: RunningServer
const captured = capture()

const text = (publicUrl: string | undefined) =>
  [
    "providers: [./providers]",
    ...serverLines(publicUrl, { allowlisted: false }),
    "http: { timeout_ms: 2000, total_timeout_ms: 3000, retries: 0 }"
  ].join("\n")

beforeAll(async () => {
  idp = await startLoopbackOAuth()
  hostile = await startLoopbackOAuth()
  s = await start(await parse(text(undefined), file), captured, { connections: "memory" })
  await s.reload(await parse(text(s.url), file))
})
afterAll(async () => {
  await s?.close()
  await idp?.close()
  await hostile?.close()
  rmSync(dir, { recursive: true, force: true })
})

const api = (key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  keyed(s.url, key, method, path, body, captured)

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

const connection = (tenant: string, provider: LoopbackOAuth) => ({
  provider: "user-oauth",
  inputs: {
    authorize_url: provider.authorizeUrl,
    token_url: provider.tokenUrl,
    client_id: provider.clientId,
    client_secret: provider.clientSecret
  },
  tags: { tenant }
})

/** Globex's connection `name` and a link for it, then the connection deleted and Acme's created in its place. */
const globexThenAcme = async (name: string, between?: (link: string) => Promise<void>) => {
  expect((await api(GLOBEX, "PUT", `/v1/connections/${name}`, connection("globex", idp))).status).toBe(201)
  const link = await api(GLOBEX, "POST", "/v1/connect-links", {
    connection: name,
    redirect_after: "https://globex.example/integrations"
  })
  expect(link.status).toBe(201)
  const url: string = link.json().url
  await between?.(url)
  expect((await api(GLOBEX, "DELETE", `/v1/connections/${name}`)).status).toBe(204)
  const again = await api(ACME, "PUT", `/v1/connections/${name}`, connection("acme", hostile))
  expect(again.status).toBe(201)
  return url
}

describe("a connection deleted and created again under its name", () => {
  it("the old link does not open the new connection: 409 ConnectionReplaced, no redirect to its provider", async () => {
    const link = await globexThenAcme("recreated-link")
    const r = await navigate(link)
    expect(r.status).toBe(409)
    expect(pageCode(r.text)).toBe("ConnectionReplaced")
    expect(r.headers.location).toBeUndefined()
    expect(r.headers["set-cookie"]).toBeUndefined()
  })

  it("a state begun for the old one: no code sent to the new one's token endpoint, no grant stored", async () => {
    let callback: URL | undefined
    let cookie = ""
    await globexThenAcme("recreated-state", async (link) => {
      const toProvider = await navigate(link)
      expect(toProvider.status).toBe(302)
      cookie = String(toProvider.headers["set-cookie"]).split(";")[0]!
      const back = await fetch(String(toProvider.headers.location), { redirect: "manual" })
      expect(back.status).toBe(302)
      callback = new URL(back.headers.get("location")!)
    })
    const r = await navigate(callback!.href, cookie)
    // Back to the app that made the link (Globex's), saying it failed.
    expect(r.status).toBe(303)
    const back = new URL(String(r.headers.location))
    expect(back.origin + back.pathname).toBe("https://globex.example/integrations")
    expect(back.searchParams.get("tessera_code")).toBe("ConnectionReplaced")
    expect(hostile.tokenRequests()).toEqual([])
    expect(idp.tokenRequests()).toEqual([])
    const shown = await api(ACME, "GET", "/v1/connections/recreated-state")
    expect(shown.json().grant).toBeUndefined()
  })

  it("a user's grant stays through a tags-only PUT and is dropped by one that re-points the token endpoint", async () => {
    const name = "repointed"
    expect((await api(ACME, "PUT", `/v1/connections/${name}`, connection("acme", idp))).status).toBe(201)
    const link = await api(ACME, "POST", "/v1/connect-links", { connection: name })
    const toProvider = await navigate(link.json().url)
    const cookie = String(toProvider.headers["set-cookie"]).split(";")[0]!
    const back = await fetch(String(toProvider.headers.location), { redirect: "manual" })
    expect((await navigate(back.headers.get("location")!, cookie)).status).toBe(200)
    const grantOf = async () => (await api(ADMIN, "GET", `/v1/connections/${name}`)).json().grant
    expect((await grantOf())?.status).toBe("active")
    // Tags only: the grant stays.
    const retagged = { ...connection("acme", idp), tags: { tenant: "acme", tier: "gold" } }
    expect((await api(ACME, "PUT", `/v1/connections/${name}`, retagged)).status).toBe(200)
    expect((await grantOf())?.status).toBe("active")
    // Another token endpoint: the grant is gone, and the refresh token never reaches that host.
    const repointed = { ...retagged, inputs: { ...retagged.inputs, token_url: hostile.tokenUrl } }
    expect((await api(ACME, "PUT", `/v1/connections/${name}`, repointed)).status).toBe(200)
    expect(await grantOf()).toBeUndefined()
    const token = await api(ADMIN, "GET", `/v1/connections/${name}/token`)
    expect(token.status).toBe(409)
    expect(token.json().code).toBe("AuthorizationRequired")
    expect(token.json().detail).toMatch(/connect link/)
    expect(hostile.tokenRequests()).toEqual([])
    for (const rt of idp.refreshTokens()) expect(JSON.stringify(hostile.requests)).not.toContain(rt)
  })

  it("a link still opens its own connection, and the same connection re-created identically", async () => {
    expect((await api(ACME, "PUT", "/v1/connections/same-again", connection("acme", idp))).status).toBe(201)
    const link = await api(ACME, "POST", "/v1/connect-links", { connection: "same-again" })
    expect((await navigate(link.json().url)).status).toBe(302)
    expect((await api(ACME, "DELETE", "/v1/connections/same-again")).status).toBe(204)
    expect((await api(ACME, "PUT", "/v1/connections/same-again", connection("acme", idp))).status).toBe(201)
    expect((await navigate(link.json().url)).status).toBe(302)
  })
})
