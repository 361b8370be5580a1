/** tessera's own cookies (own-cookies.ts) on a real server against an own upstream, through both proxy paths (the
 *  fast path for a bodiless call on a fresh token, the router for one with a body): the caller's Cookie reaches
 *  the API without them (and without the header when nothing else is left), an API's other cookies scoped to its
 *  proxy prefix, an API's Set-Cookie naming one
 *  never comes back, however its name is spelled, and neither does a Clear-Site-Data that would wipe them. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import * as ProxyFastPath from "../src/proxy-fast-path.ts"
import { OPS_KEY, capture, configText, parseConfig, raw, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
let upstream: http.Server
const captured = capture()
/** The Cookie header lines the upstream got, per request path. */
const seen = new Map<string, ReadonlyArray<string>>()
/** What the upstream answers in Set-Cookie for /base/set/<case>. */
const setCookies: Record<string, ReadonlyArray<string>> = {
  mixed: [
    "tessera_connect_abc=planted; Path=/v1/connect/callback; HttpOnly",
    "session=keep; Path=/",
    "TESSERA_CONNECT_Shout=1; Path=/v1/connect/callback",
    "=tessera_connect_nameless=2; Path=/v1/connect/callback",
    " tessera_connect_spaced=3",
    "tessera_connect_bare",
    "other=tessera_connect_in_value; Path=/"
  ],
  ownOnly: ["tessera_connect_abc=planted; Path=/v1/connect/callback"],
  widening: [
    "junk=xxxx; Path=/v1/connect/callback; Max-Age=31536000",
    "wide=1; Domain=127.0.0.1; path=/; Secure; HttpOnly; SameSite=Lax",
    "bare=2",
    "odd=3;PATH ;  Domain"
  ]
}

beforeAll(async () => {
  sb = await sandbox()
  upstream = http.createServer((req, res) => {
    const path = req.url ?? "/"
    seen.set(path, req.headersDistinct["cookie"] ?? [])
    const set = /^\/base\/set\/(\w+)/.exec(path)?.[1]
    if (set !== undefined) res.setHeader("set-cookie", [...setCookies[set]!])
    if (path.startsWith("/base/clear")) res.setHeader("clear-site-data", '"cookies", "storage"')
    res.end("ok")
  })
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/base`
  const inputs = Object.entries({ ...sb.credentials.oauth2, api_base_url: base })
    .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
    .join("\n")
  const text = configText(sb, { connections: ["jobs"] }).replace(
    "connections:\n",
    `connections:\n  own:\n    provider: oauth2\n    inputs:\n${inputs}\n`
  )
  s = await start(await parseConfig(text), captured)
  // A fresh token, so that a bodiless call takes the fast path.
  expect((await call("/v1/proxy/own/warm", "router")).status).toBe(200)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()))
})

type Path = "fast" | "router"

/** One proxied GET, on the path asked for (Content-Length: 0 makes it a call with a body: the router's). */
async function call(path: string, via: Path, cookie?: string | ReadonlyArray<string>) {
  const before = ProxyFastPath.stats.forwarded
  const r = await raw(
    s.url,
    path,
    {
      headers: {
        "x-tessera-key": OPS_KEY,
        ...(via === "router" ? { "content-length": "0" } : {}),
        ...(cookie !== undefined ? { cookie: cookie as string | string[] } : {})
      }
    },
    captured
  )
  expect(ProxyFastPath.stats.forwarded - before, `${path} on the ${via} path`).toBe(via === "fast" ? 1 : 0)
  return r
}

describe.each<Path>(["fast", "router"])("on the %s path", (via) => {
  it("the caller's Cookie goes upstream without tessera's own cookies, the others kept in order", async () => {
    const cases: ReadonlyArray<[string | ReadonlyArray<string>, ReadonlyArray<string>]> = [
      ["a=1; tessera_connect_abc=binding-value; b=2", ["a=1; b=2"]],
      ["Tessera_Connect_X=1;c=3", ["c=3"]],
      [["a=1", "tessera_connect_q=2"], ["a=1"]],
      ["a=1; b=tessera_connect_in_value", ["a=1; b=tessera_connect_in_value"]],
      ["plain=1", ["plain=1"]]
    ]
    for (const [i, [cookie, expected]] of cases.entries()) {
      const path = `/v1/proxy/own/cookie-${via}-${i}`
      expect((await call(path, via, cookie)).status).toBe(200)
      expect(seen.get(`/base/cookie-${via}-${i}`), JSON.stringify(cookie)).toEqual(expected)
    }
  })

  it("a Cookie holding only tessera's cookies is not sent at all", async () => {
    for (const [i, cookie] of [
      "tessera_connect_abc=binding-value",
      "tessera_connect_a=1; TESSERA_CONNECT_b=2"
    ].entries()) {
      expect((await call(`/v1/proxy/own/only-${via}-${i}`, via, cookie)).status).toBe(200)
      expect(seen.get(`/base/only-${via}-${i}`)).toEqual([])
    }
  })

  it("an API's Set-Cookie naming one of tessera's cookies is dropped; the others come back", async () => {
    const mixed = await call(`/v1/proxy/own/set/mixed?via=${via}`, via)
    expect(mixed.status).toBe(200)
    expect(mixed.headers["set-cookie"]).toEqual([
      "session=keep; Path=/v1/proxy/own/",
      "other=tessera_connect_in_value; Path=/v1/proxy/own/"
    ])
    const own = await call(`/v1/proxy/own/set/ownOnly?via=${via}`, via)
    expect(own.status).toBe(200)
    expect(own.headers["set-cookie"]).toBeUndefined()
  })

  it("an API's other cookies are scoped to its own proxy prefix: its Path and Domain never widen them", async () => {
    const r = await call(`/v1/proxy/own/set/widening?via=${via}`, via)
    expect(r.status).toBe(200)
    expect(r.headers["set-cookie"]).toEqual([
      "junk=xxxx; Max-Age=31536000; Path=/v1/proxy/own/",
      "wide=1; Secure; HttpOnly; SameSite=Lax; Path=/v1/proxy/own/",
      "bare=2; Path=/v1/proxy/own/",
      "odd=3; Path=/v1/proxy/own/"
    ])
  })

  it("an API's Clear-Site-Data, which would wipe the browser's cookies for tessera's origin, is dropped", async () => {
    const r = await call(`/v1/proxy/own/clear?via=${via}`, via)
    expect(r.status).toBe(200)
    expect(r.headers["clear-site-data"]).toBeUndefined()
  })
})
