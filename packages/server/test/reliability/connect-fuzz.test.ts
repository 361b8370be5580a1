/** Fuzzing the connect flow's three endpoints over a real socket (fast-check): `POST /v1/connect-links` with random
 *  JSON bodies and keys, `GET /v1/connect/:name?link=` with random, truncated and altered links, and
 *  `GET /v1/connect/callback` with random, altered and genuine states beside random `code`, `error`,
 *  `error_description` and cookies. Every answer is below 500, an API answer of 4xx is application/problem+json, a
 *  browser answer is a result page (502 only for the one saying the provider answered an error) or a redirect to
 *  the provider's authorization endpoint or the app a sealed link names, a page never reflects
 *  markup a caller sent, the process never crashes, and no grant is stored for anything but a real exchange.
 *  10,000 cases per target (TESSERA_LONG=1: 10x). */
import * as fc from "fast-check"
import { rmSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../../src/index.ts"
import {
  ACME,
  ADMIN,
  GLOBEX,
  altered,
  nowSeconds,
  pageCode,
  parse,
  sealLink,
  sealState,
  serverLines
} from "../services/connect-harness.ts"
import { capture, raw, start, type Reply } from "../services/harness.ts"
import { configDir, startLoopbackOAuth, type LoopbackOAuth } from "../services/loopback-oauth.ts"

const runs = (n: number) => (process.env["TESSERA_LONG"] ? n * 10 : n)
const counts: Record<string, number> = {}
const { dir, file } = configDir("connect-fuzz")

let idp: LoopbackOAuth
let s: RunningServer
const captured = capture()
// The markup a fuzzed caller may send; a page that reflects it unescaped would let a link inject HTML.
const MARK = "<zq-injected"

const text = (publicUrl: string | undefined) =>
  [
    "providers: [./providers]",
    ...serverLines(publicUrl, { allowlisted: false }),
    "http: { timeout_ms: 1000, total_timeout_ms: 1500, retries: 0 }"
  ].join("\n")

const put = (name: string, tenant: string) =>
  raw(s.url, `/v1/connections/${name}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
    body: JSON.stringify({
      provider: "user-oauth",
      inputs: {
        authorize_url: idp.authorizeUrl,
        token_url: idp.tokenUrl,
        client_id: idp.clientId,
        client_secret: idp.clientSecret,
        scope: "crm.read"
      },
      tags: { tenant }
    })
  })

beforeAll(async () => {
  idp = await startLoopbackOAuth()
  s = await start(await parse(text(undefined), file), captured, { connections: "memory" })
  await s.reload(await parse(text(s.url), file))
  for (const [name, tenant] of [
    ["acme-crm", "acme"],
    ["globex-crm", "globex"]
  ] as const)
    expect((await put(name, tenant)).status).toBe(201)
})
afterAll(async () => {
  console.log(`connect fuzz cases run: ${JSON.stringify(counts)}`)
  console.log(
    `connect fuzz outcomes: ${JSON.stringify(Object.fromEntries(Object.entries(seen).map(([k, v]) => [k, [...v].sort()])))}`
  )
  await s?.close()
  await idp?.close()
  rmSync(dir, { recursive: true, force: true })
})

const printable = (max: number) => fc.string({ maxLength: max }).map((x) => x.replace(/[^\t\x20-\x7e]/g, ""))
const json = fc.jsonValue({ maxDepth: 3 })
const names = fc.oneof(
  fc.constantFrom("acme-crm", "globex-crm", "nope", "", "..", "%2e%2e", "a".repeat(300)),
  fc.string({ maxLength: 40 }),
  json
)
const pathNames = fc.oneof(
  fc.constantFrom("acme-crm", "globex-crm", "nope", "", "..", "a".repeat(300)),
  fc.string({ maxLength: 40 })
)
const redirectAfter = fc.oneof(
  fc.webUrl(),
  fc.constantFrom("javascript:alert(1)", "//evil.example", "http://evil.example/x", "https://app.example/done", ""),
  printable(60),
  json
)
const linkBody = fc.oneof(
  json,
  fc.record(
    {
      connection: fc.constantFrom("acme-crm", "globex-crm"),
      redirect_after: fc.constantFrom("https://app.example/done", "javascript:alert(1)", "//evil.example")
    },
    { requiredKeys: ["connection"] }
  ),
  fc.record(
    { connection: names, redirect_after: redirectAfter, ttl_seconds: fc.oneof(fc.integer(), json), extra: json },
    { requiredKeys: [] }
  )
)
const keys = fc.constantFrom(ADMIN, ACME, GLOBEX, "not-a-key", undefined)
const cookies = fc.oneof(
  fc.constant(undefined),
  printable(120),
  fc.tuple(printable(20), printable(60)).map(([k, v]) => `tessera_connect_${k}=${v}`)
)
const navigation = (cookie: string | undefined) => ({
  "sec-fetch-site": "cross-site",
  "sec-fetch-mode": "navigate",
  "sec-fetch-dest": "document",
  ...(cookie ? { cookie } : {})
})

/** What each target answered (status, and a page's code), so that a run proves it reached every outcome. */
const seen: Record<string, Set<string>> = { links: new Set(), redirect: new Set(), callback: new Set() }
const outcome = (r: Reply) =>
  r.status === 302 || r.status === 303 ? String(r.status) : `${r.status} ${pageCode(r.text) ?? ""}`.trim()

/** A browser answer: a result page (HTML, never the caller's markup) or a redirect to the provider. */
const okPage = (r: Reply) => {
  expect(r.status).toBeGreaterThanOrEqual(200)
  // 502 only for the page that says the provider answered an error instead of a code (its fault, not tessera's).
  if (r.status === 502) expect(pageCode(r.text)).toBe("ProviderError")
  else expect(r.status).toBeLessThan(500)
  if (r.status >= 300 && r.status < 400) {
    // To the provider, or back to the app a sealed link or state names (its outcome in the query, encoded).
    const to = String(r.headers.location)
    expect(to.startsWith(idp.authorizeUrl) || to.startsWith("https://app.example/")).toBe(true)
    expect(to).not.toContain(MARK)
    return
  }
  if (r.status >= 400 && String(r.headers["content-type"]).startsWith("application/problem+json")) return
  expect(r.headers["content-type"]).toBe("text/html; charset=utf-8")
  expect(r.text).not.toContain(MARK)
  expect(r.text).not.toMatch(/\bat [\w.<>]+ \(|node:internal|\.ts:\d+/)
}

describe("connect endpoints fuzz", { timeout: 600_000 }, () => {
  it("POST /v1/connect-links with random bodies, keys and content types: only 2xx/4xx, problems for 4xx", async () => {
    const n = runs(10_000)
    await fc.assert(
      fc.asyncProperty(
        linkBody,
        keys,
        fc.constantFrom("application/json", "text/plain", "application/json; charset=utf-8", ""),
        async (b, key, type) => {
          const r = await raw(s.url, "/v1/connect-links", {
            method: "POST",
            headers: { "content-type": type, ...(key ? { authorization: `Bearer ${key}` } : {}) },
            body: JSON.stringify(b) ?? "null"
          })
          seen["links"]!.add(String(r.status))
          expect(r.status).toBeGreaterThanOrEqual(200)
          expect(r.status).toBeLessThan(500)
          if (r.status >= 400) expect(String(r.headers["content-type"])).toMatch(/^application\/problem\+json/)
          if (r.status === 201) {
            expect(key === ADMIN || key === ACME || key === GLOBEX).toBe(true)
            expect(new URL(r.json().url).origin).toBe(new URL(s.url).origin)
            // Only an https:// app gets the browser back: never javascript:, a scheme-relative or a plain-http URL.
            const ra = b !== null && typeof b === "object" && !Array.isArray(b) ? b["redirect_after"] : undefined
            if (ra !== undefined) expect(String(ra)).toMatch(/^https:\/\//)
          }
        }
      ),
      { numRuns: n }
    )
    counts["links"] = n
    for (const o of ["201", "400", "401", "404"]) expect([...seen["links"]!]).toContain(o)
  })

  it("GET /v1/connect/:name with random, truncated and altered links and cookies: a page or the provider", async () => {
    const n = runs(10_000)
    const valid = (c: string, exp: number, ra?: string) => sealLink({ c, cv: 1, exp, ...(ra ? { ra } : {}) })
    const link = fc.oneof(
      printable(200),
      fc.constantFrom("", "v1", "v1.x.y.z", "%ZZ", `${MARK}>`),
      fc.constantFrom("acme-crm", "globex-crm", "nope").map((c) => valid(c, nowSeconds() + 600)),
      fc
        .constantFrom("https://app.example/done", `https://app.example/${MARK}>`)
        .map((ra) => valid("acme-crm", nowSeconds() + 600, ra)),
      fc.constantFrom("acme-crm", "globex-crm").map((c) => altered(valid(c, nowSeconds() + 600))),
      fc.constantFrom("acme-crm").map((c) => valid(c, nowSeconds() - 5)),
      fc.tuple(fc.nat(80)).map(([k]) => valid("acme-crm", nowSeconds() + 600).slice(0, k))
    )
    await fc.assert(
      fc.asyncProperty(pathNames, link, cookies, async (name, l, cookie) => {
        const path = `/v1/connect/${encodeURIComponent(name)}?link=${encodeURIComponent(l)}`
        const r = await raw(s.url, path, { headers: navigation(cookie) })
        seen["redirect"]!.add(outcome(r))
        okPage(r)
      }),
      { numRuns: n }
    )
    counts["redirect"] = n
    for (const o of ["302", "400 LinkInvalid", "410 LinkExpired", "404 UnknownConnection"])
      expect([...seen["redirect"]!]).toContain(o)
  })

  it("GET /v1/connect/callback with random, altered and genuine states, codes and errors: only pages", async () => {
    const n = runs(10_000)
    const stateOf = fc.oneof(
      printable(200).map((t) => ({ text: t, cookie: undefined as string | undefined })),
      fc.constant(undefined).map(() => {
        const st = sealState({ c: "acme-crm", cv: 1 })
        return { text: altered(st.text), cookie: st.cookie }
      }),
      // Genuine states with an `error` answer (consent denied, or anything a provider may send): no exchange.
      fc
        .tuple(fc.constantFrom("acme-crm", "globex-crm", "nope"), fc.constantFrom(0, 1), fc.boolean(), fc.boolean())
        .map(([c, cv, withCookie, ra]) => {
          const st = sealState({ c, cv, ...(ra ? { ra: `https://app.example/${MARK}>` } : {}) })
          return { text: st.text, cookie: withCookie ? st.cookie : undefined }
        })
    )
    const param = fc.oneof(printable(80), fc.constantFrom("access_denied", "server_error", `${MARK} x="1">`, ""))
    await fc.assert(
      fc.asyncProperty(stateOf, param, param, cookies, async (st, error, description, extraCookie) => {
        const q = new URLSearchParams({ state: st.text, error: error === "" ? "access_denied" : error })
        q.set("error_description", description)
        const cookie = [st.cookie, extraCookie].filter((c) => c !== undefined).join("; ")
        const r = await raw(s.url, `/v1/connect/callback?${q}`, { headers: navigation(cookie || undefined) })
        seen["callback"]!.add(outcome(r))
        okPage(r)
      }),
      { numRuns: n }
    )
    counts["callback"] = n
    for (const o of ["400 StateInvalid", "403 ConsentDenied", "502 ProviderError", "400 BrowserMismatch", "303"])
      expect([...seen["callback"]!]).toContain(o)
  })

  it("afterwards the server answers, no grant was stored, and the IdP was never asked for a token", async () => {
    expect((await raw(s.url, "/healthz")).status).toBe(200)
    expect(idp.tokenRequests()).toEqual([])
    for (const name of ["acme-crm", "globex-crm"]) {
      const r = await raw(s.url, `/v1/connections/${name}`, { headers: { authorization: `Bearer ${ADMIN}` } })
      expect(r.status).toBe(200)
      expect(r.json().grant).toBeUndefined()
    }
  })
})
