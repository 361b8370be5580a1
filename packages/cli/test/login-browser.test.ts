/** `tessera login` against a real OpenID Provider (the npm package oidc-provider, through the testkit's starter),
 *  its login and consent pages driven in headless Chromium: the authorization code flow with PKCE (the printed URL
 *  of --no-browser opened in the browser, the loopback redirect taken by tessera) and the device flow (the
 *  verification URI opened and the user code typed in), endpoints found by discovery from the issuer, and the
 *  stored grant then renewed by `tessera token`. */
import { startOidcIdp, type OidcIdp } from "@tessera/testkit/oidc-idp"
import { join } from "node:path"
import type { Browser, Page } from "playwright-core"
import { afterAll, beforeAll, expect, it } from "vitest"
import { cleanup, tempDir, tessera, tesseraLive, write } from "./services/cli.ts"
import { describeBrowser, launch } from "./services/chromium-available.ts"

const secret = "oidc-cli-secret-3c9e71a2"
let idp: OidcIdp
let browser: Browser | undefined

beforeAll(async () => {
  idp = await startOidcIdp({
    scopes: ["api:read"],
    clients: [
      {
        client_id: "cli",
        client_secret: secret,
        application_type: "native",
        // RFC 8252 §7.3: a native client's loopback redirect may use any port.
        redirect_uris: ["http://127.0.0.1/callback"],
        grant_types: ["authorization_code", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic"
      }
    ],
    configuration: { issueRefreshToken: () => true }
  })
})
afterAll(async () => {
  await browser?.close()
  await idp?.close()
  cleanup()
})

const configFor = (grantType: string) => {
  const cwd = tempDir()
  write(
    join(cwd, "tessera.yaml"),
    [
      "connections:",
      "  app:",
      "    provider: oauth2",
      "    inputs:",
      `      issuer: ${JSON.stringify(idp.issuer)}`,
      "      client_id: cli",
      '      client_secret: "${env:APP_SECRET}"',
      `      grant_type: ${JSON.stringify(grantType)}`,
      '      scope: "openid offline_access"',
      ""
    ].join("\n")
  )
  return cwd
}
const env = { APP_SECRET: secret }

/** oidc-provider's development login page (any name is accepted), then its consent page. */
const signInAndConsent = async (page: Page) => {
  await page.locator('input[name="login"]').fill("alice")
  await page.locator('input[name="password"]').fill("wonderland")
  await page.locator('button[type="submit"]').click()
  await page.locator('button[type="submit"]', { hasText: /continue/i }).click()
}

describeBrowser("tessera login against oidc-provider in headless Chromium", () => {
  it("authorization code + PKCE: --no-browser's URL opened in Chromium, the redirect taken, the grant stored and renewed", async () => {
    browser ??= await launch()
    const cwd = configFor("authorization_code")
    const live = tesseraLive(["login", "app", "--no-browser"], { cwd, env })
    const [, url] = await live.waitFor(/\n(http:\/\/127\.0\.0\.1:\d+\/\S*auth\S*)\n/)
    const authorize = new URL(url!)
    expect(authorize.searchParams.get("code_challenge_method")).toBe("S256")
    const page = await (await browser.newContext()).newPage()
    await page.goto(url!)
    await signInAndConsent(page)
    await page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\/callback\?/)
    expect(await page.locator("h1").textContent()).toBe("tessera: authorized")
    const r = await live.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("authorized app (oauth2): grant stored in sqlite")
    const token = await tessera(["token", "app", "--force", "--json"], { cwd, env })
    expect(token.code, token.stderr).toBe(0)
    expect(JSON.parse(token.stdout)).toMatchObject({ connection: "app", token_type: "Bearer" })
    const show = await tessera(["connections", "show", "app"], { cwd, env })
    expect(show.stdout).toMatch(/grant: {5}active/)
  })

  it("device flow: the verification URI opened in Chromium and the user code entered", async () => {
    browser ??= await launch()
    const cwd = configFor("urn:ietf:params:oauth:grant-type:device_code")
    const live = tesseraLive(["login", "app", "--device"], { cwd, env })
    const [, uri, code] = await live.waitFor(/open (\S+) and enter the code: (\S+)\n/)
    expect(uri!.startsWith(idp.origin)).toBe(true)
    const page = await (await browser.newContext()).newPage()
    await page.goto(uri!)
    await page.locator('input[name="user_code"]').fill(code!)
    await page.locator('button[type="submit"]').click()
    // oidc-provider asks to confirm the device's request, then signs the user in and asks for consent.
    const steps: string[] = []
    for (let i = 0; i < 6 && !/sign-in success|success/i.test(await page.locator("body").innerText()); i++) {
      await page.waitForLoadState()
      if (await page.locator('input[name="login"]').count()) {
        steps.push("login")
        await page.locator('input[name="login"]').fill("alice")
        await page.locator('input[name="password"]').fill("wonderland")
      } else steps.push((await page.locator("h1").first().textContent()) ?? "?")
      await page.locator('button[type="submit"]').first().click()
    }
    expect(steps).toContain("login")
    expect(await page.locator("body").innerText()).toMatch(/success/i)
    const r = await live.done
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain("authorized app (oauth2): grant stored in sqlite")
    const token = await tessera(["token", "app", "--force"], { cwd, env })
    expect(token.code, token.stderr).toBe(0)
  })
})
