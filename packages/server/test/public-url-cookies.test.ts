/** Behind a reverse proxy that adds a path prefix (`server.public_url: https://example.com/tessera`, the proxy
 *  stripping `/tessera` before the request reaches tessera), the browser sees `/tessera/v1/...`: every cookie Path
 *  tessera sets carries that prefix, both proxy paths' scoping of an API's Set-Cookie and the connect flow's binding
 *  cookie, or the browser would never send them back. Without a path (unset, or "/"), the Paths are unchanged. A
 *  reload that changes public_url changes them with it (each case below is one). */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import * as ProxyFastPath from "../src/proxy-fast-path.ts"
import { ADMIN, parse, sealState, serverLines } from "./services/connect-harness.ts"
import { capture, raw, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
let upstream: http.Server
let apiBase = ""
const captured = capture()

const text = (publicUrl: string | undefined) =>
  [
    "connections:",
    "  own:",
    "    provider: oauth2",
    "    inputs:",
    ...Object.entries({ ...sb.credentials.oauth2, api_base_url: apiBase }).map(
      ([k, v]) => `      ${k}: ${JSON.stringify(v)}`
    ),
    ...serverLines(publicUrl, { allowlisted: false }),
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")

/** Makes `publicUrl` the server's (a reload), with a fresh token so that a bodiless call takes the fast path. */
const serveAs = async (publicUrl: string | undefined) => {
  await s.reload(await parse(text(publicUrl)))
  expect((await call("/v1/proxy/own/warm", "router")).status).toBe(200)
}

beforeAll(async () => {
  sb = await sandbox()
  upstream = http.createServer((req, res) => {
    res.setHeader("set-cookie", ["session=keep; Path=/", "wide=1; Domain=127.0.0.1; Path=/v1; HttpOnly"])
    res.end("ok")
  })
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
  apiBase = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/base`
  s = await start(await parse(text(undefined)), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()))
})

type Path = "fast" | "router"

/** One proxied GET on the path asked for (Content-Length: 0 makes it a call with a body: the router's). */
async function call(path: string, via: Path) {
  const before = ProxyFastPath.stats.forwarded
  const r = await raw(
    s.url,
    path,
    { headers: { "x-tessera-key": ADMIN, ...(via === "router" ? { "content-length": "0" } : {}) } },
    captured
  )
  expect(ProxyFastPath.stats.forwarded - before, `${path} on the ${via} path`).toBe(via === "fast" ? 1 : 0)
  return r
}

const cookiesOf = async (via: Path) => {
  const r = await call(`/v1/proxy/own/set?via=${via}`, via)
  expect(r.status).toBe(200)
  return r.headers["set-cookie"]
}

/** The Set-Cookie of a callback whose user declined: it clears the browser's binding cookie. */
const clearedCookie = async () => {
  const { text: state, cookie } = sealState({ c: "own" })
  const r = await raw(s.url, `/v1/connect/callback?state=${state}&error=access_denied`, {
    headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", cookie }
  })
  expect(r.status).toBe(403)
  return String(r.headers["set-cookie"])
}

const cases: ReadonlyArray<readonly [string | undefined, string]> = [
  ["https://tessera.example.com/tessera", "/tessera"],
  // A deeper prefix, its percent-encoding kept as the browser sends it; a trailing slash is not doubled.
  ["https://tessera.example.com/a%20b/tessera/", "/a%20b/tessera"],
  [undefined, ""],
  ["https://tessera.example.com/", ""],
  ["https://tessera.example.com", ""]
]

describe.each<Path>(["fast", "router"])("on the %s path", (via) => {
  it("every cookie Path carries public_url's path prefix, and none without one", async () => {
    for (const [publicUrl, prefix] of cases) {
      await serveAs(publicUrl)
      expect(await cookiesOf(via), String(publicUrl)).toEqual([
        `session=keep; Path=${prefix}/v1/proxy/own/`,
        `wide=1; HttpOnly; Path=${prefix}/v1/proxy/own/`
      ])
      // Without public_url there is no connect flow (501), so no cookie of its own either.
      if (publicUrl === undefined) continue
      expect(await clearedCookie(), publicUrl).toMatch(
        new RegExp(`^tessera_connect_[^=]+=; Path=${prefix}/v1/connect/callback; Max-Age=0; HttpOnly; SameSite=Lax$`)
      )
    }
  })
})
