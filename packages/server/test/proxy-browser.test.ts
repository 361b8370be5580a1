/** What an API answers through the proxy is the API's document, never a page of this server's origin. A server
 *  without keys (the default: loopback only) is reached by a user's own browser too: a link opened from another
 *  program is a navigation with `Sec-Fetch-Site: none`, which the request guard lets through. If the API answers
 *  HTML (a hostile provider, or a file someone uploaded to it), its script would run on the server's origin, and
 *  its same-origin `fetch()` of `/v1/connections/<name>/token` passes the guard (Sec-Fetch-Site: same-origin, its
 *  own Origin): every token of the server, read by a page. The proxy's answers carry
 *  `Content-Security-Policy: sandbox`, so such a document runs no script and has an opaque origin. Checked in a
 *  real headless Chromium. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import type { Browser } from "playwright-core"
import { afterAll, beforeAll, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { describeBrowser, launch } from "./services/chromium-available.ts"
import { capture, configText, parseConfig, raw, sandbox, start } from "./services/harness.ts"

/** The API's "file": a page that reads a token from wherever it was loaded and shows what it got. */
const page = `<!doctype html><html><body><pre id="out">not run</pre><script>
fetch("/v1/connections/files/token").then((r) => r.text()).then(
  (t) => { document.getElementById("out").textContent = "read: " + t },
  (e) => { document.getElementById("out").textContent = "refused: " + e })
</script></body></html>`

describeBrowser("an HTML answer of the API, opened in a browser", () => {
  let sb: Sandbox
  let api: http.Server
  let s: RunningServer
  let browser: Browser
  const captured = capture()

  beforeAll(async () => {
    sb = await sandbox()
    api = http.createServer((_req, res) => {
      res.setHeader("content-type", "text/html; charset=utf-8")
      res.end(page)
    })
    await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
    const base = `http://127.0.0.1:${(api.address() as AddressInfo).port}/base`
    const inputs = { ...sb.credentials.oauth2, api_base_url: base }
    const own = `  files:\n    provider: oauth2\n    inputs:\n${Object.entries(inputs)
      .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
      .join("\n")}`
    // No API keys: the default loopback server.
    const text = configText(sb, { keys: false, connections: ["jobs"] }).replace(
      "connections:\n",
      `connections:\n${own}\n`
    )
    s = await start(await parseConfig(text), captured)
    browser = await launch()
  }, 60_000)
  afterAll(async () => {
    await browser?.close()
    await s?.close()
    await sb?.close()
    await new Promise<void>((r) => (api ? api.close(() => r()) : r()))
  })

  it("runs no script on the server's origin: no token is read", async () => {
    const tab = await browser.newPage()
    try {
      // Both paths: the router's first answer, then the fast path's with the token cached.
      for (const path of ["router", "fast"]) {
        const answer = await tab.goto(`${s.url}/v1/proxy/files/report.html`)
        expect(answer?.status(), path).toBe(200)
        expect(answer?.headers()["content-security-policy"], path).toBe("sandbox")
        await new Promise((r) => setTimeout(r, 300))
        const shown = await tab.locator("#out").textContent()
        expect(shown, path).toBe("not run")
      }
    } finally {
      await tab.close()
    }
    // The route itself still answers a program.
    expect((await raw(s.url, "/v1/connections/files/token")).status).toBe(200)
  })
})
