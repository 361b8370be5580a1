/** The connect flow in a real headless Chromium against a real IdP (the npm package oidc-provider, started by
 *  @tessera/testkit/oidc-idp), with the bundled generic `oauth2` manifest finding the IdP's endpoints by discovery
 *  (`issuer`): the app's link opens the IdP's login page, the test signs in and consents on the
 *  IdP's own pages, the browser comes back to the server's callback and ends on "Account connected" under the
 *  page's CSP, and the grant is stored in the connection store (SQLite): after the server is gone, a new one on the
 *  same store gets a token with the user's refresh token. Denied consent ends on the ConsentDenied page. A
 *  screenshot of each result is written under test-results/. */
import { startOidcIdp, type OidcIdp } from "@tessera/testkit/oidc-idp"
import { mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import type { Browser, Page } from "playwright-core"
import { randomBytes } from "node:crypto"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { ACME, ADMIN, parse, serverLines } from "./services/connect-harness.ts"
import { describeBrowser, launch } from "./services/chromium-available.ts"
import { capture, keyed, start, type Reply } from "./services/harness.ts"

const results = fileURLToPath(new URL("../../../test-results/", import.meta.url))
const STORE_KEY = randomBytes(32).toString("base64")
const CLIENT_SECRET = `idp-secret-${randomBytes(12).toString("hex")}`

describeBrowser("the connect flow in Chromium against oidc-provider", () => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-connect-browser-"))
  const file = join(dir, "tessera.yaml")
  const text = (publicUrl: string | undefined) =>
    [
      `connection_store: { type: sqlite, path: ./connections.db, encryption_keys: ["${STORE_KEY}"] }`,
      ...serverLines(publicUrl, { allowlisted: false }),
      "http: { timeout_ms: 5000, total_timeout_ms: 8000, retries: 0 }"
    ].join("\n")

  let s: RunningServer
  let idp: OidcIdp
  let browser: Browser
  const captured = capture()

  beforeAll(async () => {
    s = await start(await parse(text(undefined), file), captured)
    await s.reload(await parse(text(s.url), file))
    idp = await startOidcIdp({
      clients: [
        {
          client_id: "tessera-web",
          client_secret: CLIENT_SECRET,
          redirect_uris: [`${s.url}/v1/connect/callback`],
          grant_types: ["authorization_code", "refresh_token"],
          response_types: ["code"],
          token_endpoint_auth_method: "client_secret_basic"
        }
      ],
      // A refresh token for every code exchange (else oidc-provider wants offline_access and prompt=consent).
      configuration: { issueRefreshToken: async () => true }
    })
    browser = await launch()
    mkdirSync(results, { recursive: true })
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await s?.close()
    await idp?.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const api = (base: string, key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
    keyed(base, key, method, path, body, captured)

  const connect = async (name: string): Promise<string> => {
    const put = await api(s.url, ADMIN, "PUT", `/v1/connections/${name}`, {
      provider: "oauth2",
      inputs: {
        issuer: idp.issuer,
        grant_type: "authorization_code",
        client_id: "tessera-web",
        client_secret: CLIENT_SECRET,
        scope: "openid"
      },
      tags: { tenant: "acme" }
    })
    expect(put.status).toBe(201)
    const link = await api(s.url, ACME, "POST", "/v1/connect-links", { connection: name })
    expect(link.status).toBe(201)
    return link.json().url
  }

  /** Signs in on oidc-provider's login page (any login is accepted) and answers its consent page. */
  const signIn = async (page: Page, login: string, consent: "Continue" | "Abort") => {
    await page.waitForSelector('input[name="login"]', { timeout: 15_000 })
    expect(page.url().startsWith(idp.origin)).toBe(true)
    await page.fill('input[name="login"]', login)
    await page.fill('input[name="password"]', "any-password")
    await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')])
    if (consent === "Continue") {
      await Promise.all([page.waitForURL((u) => u.href.startsWith(s.url)), page.click('button[type="submit"]')])
    } else {
      await Promise.all([page.waitForURL((u) => u.href.startsWith(s.url)), page.click('a[href*="abort"]')])
    }
    await page.waitForSelector("main[data-code]")
  }

  it("the user signs in and consents at the IdP and ends on 'Account connected'; the grant is stored", async () => {
    const url = await connect("acme-idp")
    const context = await browser.newContext()
    const page = await context.newPage()
    const violations: string[] = []
    page.on("console", (m) => {
      if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text())
    })
    try {
      await page.goto(url)
      await signIn(page, "alice", "Continue")
      expect(page.url().startsWith(`${s.url}/v1/connect/callback?`)).toBe(true)
      expect(await page.getAttribute("main", "data-code")).toBe("Connected")
      expect(await page.textContent("h1")).toBe("Account connected")
      expect(await page.textContent("main")).toContain("acme-idp")
      expect(violations).toEqual([])
      await page.screenshot({ path: join(results, "connect-connected.png") })
      // The exchange happened at the IdP's token endpoint, once.
      const tokenPath = new URL(idp.tokenEndpoint).pathname
      expect(idp.requests.filter((r) => r.method === "POST" && r.path === tokenPath)).toHaveLength(1)
      // The token the grant produced is served like any other.
      const token = await api(s.url, ADMIN, "GET", "/v1/connections/acme-idp/token")
      expect(token.status).toBe(200)
      expect(token.json()).toMatchObject({ connection: "acme-idp", provider: "oauth2", token_type: "Bearer" })
    } finally {
      await context.close()
    }
  }, 60_000)

  it("declining consent ends on the ConsentDenied page (403), and nothing is stored", async () => {
    const url = await connect("acme-declined")
    const context = await browser.newContext()
    const page = await context.newPage()
    try {
      const seen: number[] = []
      page.on("response", (r) => {
        if (r.url().startsWith(`${s.url}/v1/connect/callback`)) seen.push(r.status())
      })
      await page.goto(url)
      await signIn(page, "bob", "Abort")
      expect(await page.getAttribute("main", "data-code")).toBe("ConsentDenied")
      expect(seen).toEqual([403])
      await page.screenshot({ path: join(results, "connect-denied.png") })
      const token = await api(s.url, ADMIN, "GET", "/v1/connections/acme-declined/token")
      expect(token.status).toBe(409)
      expect(token.json().code).toBe("AuthorizationRequired")
    } finally {
      await context.close()
    }
  }, 60_000)

  it("the user's refresh token survives the server: a new server on the same store refreshes at the IdP", async () => {
    await s.close()
    const tokenPath = new URL(idp.tokenEndpoint).pathname
    const before = idp.requests.filter((r) => r.method === "POST" && r.path === tokenPath).length
    const next = await start(await parse(text(undefined), file), capture())
    try {
      const token = await api(next.url, ADMIN, "GET", "/v1/connections/acme-idp/token")
      expect(token.status).toBe(200)
      expect(idp.requests.filter((r) => r.method === "POST" && r.path === tokenPath)).toHaveLength(before + 1)
      // And once more after a forced renewal: the rotated refresh token was stored too.
      const again = await api(next.url, ADMIN, "POST", "/v1/connections/acme-idp/refresh")
      expect(again.status).toBe(200)
      expect(again.json().access_token).not.toBe(token.json().access_token)
    } finally {
      await next.close()
    }
  }, 60_000)

  it("no secret reached a log line or a problem", () => {
    for (const h of [...captured.logs, ...captured.problems]) {
      expect(h).not.toContain(CLIENT_SECRET)
      expect(h).not.toContain(STORE_KEY)
    }
  })
})
