/** The status page: over sockets, `GET /ui` is keyed like the API (Basic for a browser, with a Basic challenge),
 *  sends a strict Content-Security-Policy, escapes what it shows, shows a tag-scoped key only its connections and
 *  holds no secret; in a real headless Chromium the page loads, refreshes itself under its CSP, shows a connection as
 *  failing after a provider fault, and a screenshot is written under test-results/. */
import type { Sandbox } from "@tessera/testkit"
import { mkdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import * as StatusPage from "../src/status-page.ts"
import { describeBrowser, launch } from "./services/chromium-available.ts"
import {
  JOBS_KEY,
  OPS_KEY,
  capture,
  configText,
  parseConfig,
  raw,
  sandbox,
  secretsOf,
  start,
  type Captured
} from "./services/harness.ts"

const ACME_KEY = "acme-page-key-5e2c8b1d9f"
const TOKENS_KEY = "tokens-only-key-8a3f6c0e2b"
const results = fileURLToPath(new URL("../../../test-results/", import.meta.url))

let sb: Sandbox
let s: RunningServer
let captured: Captured
beforeAll(async () => {
  sb = await sandbox()
  captured = capture()
  const text = configText(sb, { connections: ["jobs", "cube", "crm", "broken"] })
    .replace(
      "  cube:\n    provider: cube\n",
      '  cube:\n    provider: cube\n    tags: { tenant: acme, note: "<img src=x onerror=alert(1)>" }\n'
    )
    .replace(
      "  api_keys:\n",
      `  api_keys:\n    - { name: acme, key: "${ACME_KEY}", tags: { tenant: acme }, scopes: ["connections:read", token] }\n` +
        `    - { name: tokens-only, key: "${TOKENS_KEY}", scopes: [token] }\n`
    )
  s = await start(await parseConfig(text), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})
afterEach(() => sb.reset())

const basic = (key: string, user = "someone") => `Basic ${Buffer.from(`${user}:${key}`).toString("base64")}`

describe("GET /ui over sockets", () => {
  it("asks a browser for the key with a Basic challenge, takes it as the Basic password, and needs connections:read", async () => {
    const none = await raw(s.url, "/ui")
    expect(none.status).toBe(401)
    expect(none.headers["www-authenticate"]).toBe('Basic realm="tessera", charset="UTF-8"')
    expect((await raw(s.url, "/ui", { headers: { authorization: basic("wrong-key-123") } })).status).toBe(401)
    const page = await raw(s.url, "/ui", { headers: { authorization: basic(OPS_KEY) } })
    expect(page.status).toBe(200)
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8")
    expect((await raw(s.url, "/ui", { headers: { authorization: `Bearer ${OPS_KEY}` } })).status).toBe(200)
    // The jobs-only key lacks nothing but may see only jobs; a key without connections:read gets 403.
    const tokenOnly = await raw(s.url, "/v1/connections/jobs/token", { headers: { authorization: basic(OPS_KEY) } })
    expect(tokenOnly.status).toBe(401) // Basic is the page's alone
    expect((await raw(s.url, "/ui", { headers: { authorization: basic(JOBS_KEY) } })).status).toBe(200)
    const noScope = await raw(s.url, "/ui", { headers: { authorization: basic(TOKENS_KEY) } })
    expect(noScope.status).toBe(403)
    expect(noScope.json().detail).toContain("connections:read")
  })

  it("answers without a key on a server that has none (loopback only)", async () => {
    const open = await start(await parseConfig(configText(sb, { connections: ["jobs"], keys: false })), capture())
    try {
      const page = await raw(open.url, "/ui")
      expect(page.status).toBe(200)
      expect(page.text).toContain('data-connection="jobs"')
    } finally {
      await open.close()
    }
  })

  it("sends a strict Content-Security-Policy whose hashes match the page's one script and one style", async () => {
    const page = await raw(s.url, "/ui", { headers: { authorization: basic(OPS_KEY) } })
    const csp = String(page.headers["content-security-policy"])
    expect(csp).toBe(StatusPage.contentSecurityPolicy)
    expect(csp).toMatch(
      /^default-src 'none'; script-src 'sha256-[A-Za-z0-9+/]+=*'; style-src 'sha256-[A-Za-z0-9+/]+=*';/
    )
    expect(csp).not.toMatch(/unsafe-inline|unsafe-eval|\*/)
    expect(page.headers["x-frame-options"]).toBe("DENY")
    expect(page.headers["x-content-type-options"]).toBe("nosniff")
    expect(page.text.match(/<script>/g)).toHaveLength(1)
    expect(page.text).toContain('data-refresh-ms="5000"')
    expect((await raw(s.url, "/ui?refresh=2", { headers: { authorization: basic(OPS_KEY) } })).text).toContain(
      'data-refresh-ms="2000"'
    )
    expect(page.text).not.toMatch(/<script src|<link|<img|<iframe|<[^>]*\son[a-z]+=/i)
  })

  it("escapes what it shows, filters by tag, and shows a tag-scoped key only its own connections", async () => {
    const page = await raw(s.url, "/ui", { headers: { authorization: basic(OPS_KEY) } })
    expect(page.text).toContain("note=&lt;img src=x onerror=alert(1)&gt;")
    expect(page.text).not.toContain("<img")
    const rows = (html: string) => [...html.matchAll(/data-connection="([^"]+)"/g)].map((m) => m[1])
    expect(rows(page.text)).toEqual(["broken", "crm", "cube", "jobs"])
    const filtered = await raw(s.url, "/ui?tag=tenant:acme", { headers: { authorization: basic(OPS_KEY) } })
    expect(rows(filtered.text)).toEqual(["cube"])
    expect(filtered.text).toContain('value="tenant:acme"')
    const acme = await raw(s.url, "/ui/status", { headers: { authorization: basic(ACME_KEY) } })
    expect(acme.json().items.map((r: { name: string }) => r.name)).toEqual(["cube"])
    const jobsOnly = await raw(s.url, "/ui/status", { headers: { authorization: basic(JOBS_KEY) } })
    expect(jobsOnly.json().items.map((r: { name: string }) => r.name)).toEqual(["jobs"])
  })

  it("shows a token as fresh, then expiring inside its margin, then expired below its serve floor", async () => {
    // 14 s: the margin (10 %, 1.4 s) is wider than the serve floor (1 s), so "expiring" lasts 0.4 s.
    sb.setTtl("dvinci", 14)
    const text = configText(sb, {
      connections: ["jobs"],
      keys: false,
      server: ["background_refresh: { enabled: false }"]
    })
    const quiet = await start(await parseConfig(text), capture())
    try {
      const statusOf = async () => (await raw(quiet.url, "/ui/status")).json().items[0].status
      const got = await raw(quiet.url, "/v1/connections/jobs/token")
      expect(got.status).toBe(200)
      const expiresAt = Date.parse(got.json().expires_at)
      const until = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - Date.now())))
      expect(await statusOf()).toBe("fresh")
      await until(expiresAt - 1200)
      expect(await statusOf()).toBe("expiring")
      await until(expiresAt - 800) // below the floor: still valid for real, never served
      expect(await statusOf()).toBe("expired")
    } finally {
      await quiet.close()
    }
  }, 30_000)

  it("shows freshness, expiry, the last renewal and the last error, and no secret", async () => {
    const got = await raw(s.url, "/v1/connections/jobs/token", { headers: { authorization: `Bearer ${OPS_KEY}` } })
    captured.tokens.add(got.json().access_token)
    sb.inject("crm-com", { type: "echo" }) // an error that quotes the whole request, secrets and all
    expect(
      (await raw(s.url, "/v1/connections/crm/token", { headers: { authorization: `Bearer ${OPS_KEY}` } })).status
    ).toBe(502)
    const status = await raw(s.url, "/ui/status", { headers: { authorization: basic(OPS_KEY) } })
    const items: ReadonlyArray<StatusPage.Row> = status.json().items
    const byName = Object.fromEntries(items.map((r) => [r.name, r] as const))
    expect(byName["jobs"]).toMatchObject({ status: "fresh", last_error: null, last_renewal: { action: "acquired" } })
    expect(Date.parse(byName["jobs"]!.expires_at!)).toBeGreaterThan(Date.now())
    expect(byName["jobs"]!.cells.renewal).toMatch(/^acquired \d+ s ago$/)
    expect(byName["crm"]).toMatchObject({ status: "failing", last_error: { code: "UpstreamRejected" } })
    expect(byName["cube"]).toMatchObject({ status: "no token", expires_at: null, last_error: null })
    expect(byName["broken"]).toMatchObject({ status: "misconfigured", cells: { error: "misconfigured inputs" } })
    const page = await raw(s.url, "/ui", { headers: { authorization: basic(OPS_KEY) } })
    const leaked = secretsOf(sb, captured).filter((x) => page.text.includes(x) || status.text.includes(x))
    expect(leaked).toEqual([])
  })
})

describeBrowser("the status page in headless Chromium", () => {
  it("loads, shows a connection as failing after a provider fault without a reload, and is screenshotted", async () => {
    const browser = await launch()
    try {
      const context = await browser.newContext({ httpCredentials: { username: "ops", password: OPS_KEY } })
      const page = await context.newPage()
      const violations: string[] = []
      page.on("console", (m) => {
        if (m.type() === "error") violations.push(m.text())
      })
      const bearer = { authorization: `Bearer ${OPS_KEY}` }
      expect((await raw(s.url, "/v1/connections/cube/token", { headers: bearer })).status).toBe(200)
      const loaded = await page.goto(`${s.url}/ui?refresh=1`)
      expect(loaded?.status()).toBe(200)
      expect(await page.title()).toBe("tessera: connections")
      const cube = page.locator('tr[data-connection="cube"]')
      expect(await cube.getAttribute("data-status")).toBe("fresh")
      expect(await cube.locator("td").nth(2).textContent()).toBe("tenant=acme, note=<img src=x onerror=alert(1)>")

      // A provider fault: the next renewal fails (the cached token is still served), and the open page shows it.
      sb.inject("cube", { type: "status", status: 503 }, Number.POSITIVE_INFINITY)
      const refresh = await raw(s.url, "/v1/connections/cube/refresh", { method: "POST", headers: bearer })
      expect(refresh.status).toBe(200)
      captured.tokens.add(refresh.json().access_token)
      await page.waitForSelector('tr[data-connection="cube"][data-status="failing"]', { timeout: 5_000 })
      expect(await cube.locator("td.error").textContent()).toMatch(/^UpstreamRejected \d+ s ago: .*503/)
      const failing = (await raw(s.url, "/ui/status", { headers: bearer })).json().failing
      expect(failing).toBeGreaterThanOrEqual(1)
      expect(await page.locator("#summary").textContent()).toBe(`4 connections, ${failing} failing`)
      expect(violations).toEqual([])

      mkdirSync(results, { recursive: true })
      const file = `${results}status-page.png`
      await page.screenshot({ path: file, fullPage: true })
      const content = await page.content()
      expect(secretsOf(sb, captured).filter((x) => content.includes(x))).toEqual([])
      console.log(`status page screenshot: ${file}`)
    } finally {
      await browser.close()
    }
  }, 60_000)
})
