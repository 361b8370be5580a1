/** The connect flow's edges over real sockets, whatever the provider: the config it needs (server.public_url,
 *  server.connect_keys), `POST /v1/connect-links` under the connections API's rules (scope 403, allowlist 403, out
 *  of the key's tags 404 exactly as an unknown name), a clear HTML page with the right status for every bad link
 *  and every bad callback (never a stack or a secret), and the request guard admitting the two browser routes'
 *  navigations from other sites while every other route stays as strict. The flow itself, against a loopback
 *  provider and a real IdP, is in connect-flow.test.ts. */
import type { Sandbox } from "@tessera/testkit"
import { Effect } from "effect"
import { randomBytes } from "node:crypto"
import { readFileSync } from "node:fs"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Config } from "@tessera/engine"
import type { RunningServer } from "../src/index.ts"
import * as Page from "../src/connect-page.ts"
import {
  altered,
  ACME,
  ADMIN,
  CONNECT_KEY,
  GLOBEX,
  ONLY_OTHER,
  READER,
  nowSeconds,
  pageCode,
  parse,
  sealLink,
  sealState,
  serverLines,
  startWithPublicUrl
} from "./services/connect-harness.ts"
import { capture, raw, sandbox, start, type Reply } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()

const text = (publicUrl: string | undefined) =>
  [
    "connections:",
    "  cube:",
    "    provider: cube",
    "    tags: { tenant: acme }",
    "    inputs:",
    ...Object.entries(sb.credentials.cube).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    "  other:",
    "    provider: cube",
    "    tags: { tenant: globex }",
    "    inputs:",
    ...Object.entries(sb.credentials.cube).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    "  cc-oauth2:",
    "    provider: oauth2",
    "    tags: { tenant: acme }",
    "    inputs:",
    ...Object.entries(sb.credentials.oauth2).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    "  broken:",
    "    provider: cube",
    "    inputs: {}",
    "  callback:",
    "    provider: cube",
    "    inputs:",
    ...Object.entries(sb.credentials.cube).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    ...serverLines(publicUrl),
    "http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }"
  ].join("\n")

beforeAll(async () => {
  sb = await sandbox()
  s = await startWithPublicUrl(text, captured, { connections: "memory" })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const post = (key: string | undefined, body: unknown, headers: Record<string, string> = {}): Promise<Reply> =>
  raw(
    s.url,
    "/v1/connect-links",
    {
      method: "POST",
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        "content-type": "application/json",
        ...headers
      },
      body: typeof body === "string" ? body : JSON.stringify(body)
    },
    captured
  )

const browse = (path: string, headers: Record<string, string> = {}) =>
  raw(s.url, path, {
    headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document", ...headers }
  })

/** A result page: HTML with the strict headers, the given status and code, and nothing a user should not see. */
const expectPage = (r: Reply, status: number, code: string) => {
  expect(r.status).toBe(status)
  expect(r.headers["content-type"]).toBe("text/html; charset=utf-8")
  expect(r.headers["content-security-policy"]).toBe(Page.contentSecurityPolicy)
  expect(r.headers["content-security-policy"]).toContain("default-src 'none'")
  expect(r.headers["referrer-policy"]).toBe("no-referrer")
  expect(r.headers["cache-control"]).toBe("no-store")
  expect(r.headers["x-frame-options"]).toBe("DENY")
  expect(pageCode(r.text)).toBe(code)
  expect(r.text).not.toMatch(/\bat [\w.<>]+ \(|Error:|node:internal|\.ts:\d+/)
  expect(r.text).not.toContain(CONNECT_KEY)
  for (const v of Object.values(sb.credentials.cube)) if (v.length > 8) expect(r.text).not.toContain(v)
}

describe("config", () => {
  /** The config's problems (a server refuses to start on any under server.*). */
  const problemsOf = async (lines: string[]) =>
    (await Effect.runPromise(Config.parse("/tmp/c/tessera.yaml", ["server:", ...lines].join("\n"), { K: "short" })))
      .problems

  it("server.public_url: https, or http to loopback; no query, fragment, credentials or ';'; trailing slash dropped", async () => {
    const ok = await parse("server:\n  public_url: https://tessera.example.com/base/\n")
    expect(ok.server.publicUrl).toBe("https://tessera.example.com/base")
    expect((await parse("server:\n  public_url: http://127.0.0.1:8787\n")).server.publicUrl).toBe(
      "http://127.0.0.1:8787"
    )
    const cases: Array<[string, string]> = [
      ["http://tessera.example.com", "plain http://"],
      ["https://tessera.example.com/?a=1", "query or fragment"],
      ["https://tessera.example.com/#x", "query or fragment"],
      ["https://user:pw@tessera.example.com", "credentials"],
      ["ftp://tessera.example.com", "ftp:"],
      // The path prefixes cookie Paths, where a ";" would start another attribute.
      ["https://tessera.example.com/a;Domain=evil.example", "a cookie Path cannot hold"]
    ]
    for (const [url, says] of cases) {
      const problems = await problemsOf([`  public_url: "${url}"`])
      expect(problems.map((p) => p.message).join("\n")).toContain(says)
      expect(problems[0]?.path).toBe("server.public_url")
      expect(problems[0]?.severity).toBe("error")
    }
  })

  it("server.connect_keys: 32 bytes in base64 or hex, each checked where it is written", async () => {
    const problems = await problemsOf(['  connect_keys: ["${env:K}"]'])
    const p = problems.find((x) => x.path === "server.connect_keys[0]")
    expect(p?.message).toContain("32 random bytes")
    expect(p?.hint).toContain("openssl rand -base64 32")
    const good = await parse('server:\n  connect_keys: ["${env:CONNECT_KEY}"]\n')
    expect(good.server.connectKeys).toHaveLength(1)
    expect(good.problems).toEqual([])
    // A server refuses to start with a broken one, rather than run a flow whose links nobody can open.
    const broken = await Effect.runPromise(
      Config.parse("/tmp/c/tessera.yaml", 'server:\n  connect_keys: ["${env:K}"]\n', { K: "short" })
    )
    await expect(start(broken, capture())).rejects.toThrow(/32 random bytes/)
  })

  it("without public_url or connect_keys, POST /v1/connect-links is a 501 ConnectNotConfigured saying what to set", async () => {
    const bare = await start(
      await parse(text(undefined).replace('  connect_keys: ["${env:CONNECT_KEY}"]\n', "")),
      capture()
    )
    try {
      const r = await raw(bare.url, "/v1/connect-links", {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify({ connection: "cube" })
      })
      expect(r.status).toBe(501)
      expect(r.json()).toMatchObject({ code: "ConnectNotConfigured" })
      expect(r.json().detail).toContain("server.public_url and server.connect_keys")
      const page = await raw(bare.url, "/v1/connect/cube?link=x")
      expectPage(page, 501, "ConnectNotConfigured")
      expect(page.text).toContain("server.public_url")
    } finally {
      await bare.close()
    }
  })
})

describe("POST /v1/connect-links: the connections API's rules", () => {
  it("needs a key (401) with connections:write (403)", async () => {
    expect((await post(undefined, { connection: "cube" })).status).toBe(401)
    const r = await post(READER, { connection: "cube" })
    expect(r.status).toBe(403)
    expect(r.json().detail).toContain('lacks the scope "connections:write"')
  })

  it("a key's allowlist: 403 for a connection it does not name", async () => {
    const r = await post(ONLY_OTHER, { connection: "cube" })
    expect(r.status).toBe(403)
    expect(r.json()).toMatchObject({ code: "Forbidden", connection: "cube" })
  })

  it("a connection outside the key's tags is a 404, exactly as one that does not exist", async () => {
    const outside = await post(GLOBEX, { connection: "cube" })
    const missing = await post(GLOBEX, { connection: "no-such" })
    expect(outside.status).toBe(404)
    expect(missing.status).toBe(404)
    const strip = (j: Record<string, unknown>) => ({ ...j, request_id: "", connection: "", detail: "", instance: "" })
    expect(strip(outside.json())).toEqual(strip(missing.json()))
    expect(outside.json().detail).toBe('unknown connection "cube"')
  })

  it("a provider without an authorization-code flow: 409 NotAuthorizationCode, for a key that sees it", async () => {
    const r = await post(ACME, { connection: "cube" })
    expect(r.status).toBe(409)
    expect(r.json()).toMatchObject({ code: "NotAuthorizationCode", connection: "cube", provider: "cube" })
  })

  it("a client-credentials connection of a provider that has the flow: 409 too (no user to ask)", async () => {
    const r = await post(ACME, { connection: "cc-oauth2" })
    expect(r.status).toBe(409)
    expect(r.json()).toMatchObject({ code: "NotAuthorizationCode", connection: "cc-oauth2" })
    expect(r.json().detail).toContain("does not take a user's grant")
  })

  it("a bad body is a 400 saying which field", async () => {
    const cases: Array<[unknown, string]> = [
      ["not json", "not JSON"],
      [[1], "send {"],
      [{}, "connection:"],
      [{ connection: "cube", ttl_seconds: 0 }, "ttl_seconds"],
      [{ connection: "cube", ttl_seconds: 3601 }, "from 1 to 3600"],
      [{ connection: "cube", ttl_seconds: 1.5 }, "ttl_seconds"],
      [{ connection: "cube", redirect_after: "http://app.example.com/done" }, "redirect_after uses plain http://"],
      [{ connection: "cube", redirect_after: "javascript:alert(1)" }, "redirect_after uses javascript:"],
      [{ connection: "cube", redirect_after: "https://app.example.com/#x" }, "fragment"],
      [{ connection: "cube", extra: 1 }, 'unknown field "extra"']
    ]
    for (const [body, says] of cases) {
      const r = await post(ADMIN, body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.json().detail).toContain(says)
    }
    const plain = await post(ADMIN, "{}", { "content-type": "text/plain" })
    expect(plain.status).toBe(400)
    expect(plain.json().detail).toContain("application/json")
  })
})

describe("GET /v1/connect/:name: a bad link is a page", () => {
  it("no link, garbage, or an altered one: 400 LinkInvalid", async () => {
    expectPage(await browse("/v1/connect/cube"), 400, "LinkInvalid")
    expectPage(await browse("/v1/connect/cube?link=garbage"), 400, "LinkInvalid")
    const good = sealLink({ c: "cube", cv: 0, exp: nowSeconds() + 60 })
    expectPage(await browse(`/v1/connect/cube?link=${altered(good)}`), 400, "LinkInvalid")
  })

  it("a link for another connection: 400 LinkInvalid", async () => {
    const link = sealLink({ c: "other", cv: 0, exp: nowSeconds() + 60 })
    expectPage(await browse(`/v1/connect/cube?link=${link}`), 400, "LinkInvalid")
  })

  it("a connection misconfigured on the server: 500 InputInvalid, saying the operator must fix it", async () => {
    const link = sealLink({ c: "broken", cv: 0, exp: nowSeconds() + 60 })
    const r = await browse(`/v1/connect/broken?link=${link}`)
    expectPage(r, 500, "InputInvalid")
    expect(r.text).toContain("operator must fix this connection")
  })

  it("an expired link: 410 LinkExpired", async () => {
    const link = sealLink({ c: "cube", cv: 0, exp: nowSeconds() - 1 })
    const r = await browse(`/v1/connect/cube?link=${link}`)
    expectPage(r, 410, "LinkExpired")
    expect(r.text).toContain("Ask the application that sent you here for a new link")
  })

  it("a link sealed with a key the server does not hold: 410 (as good as expired)", async () => {
    const { SecretBox } = await import("@tessera/engine")
    const { sealLink: seal } = await import("../src/connect-seal.ts")
    const foreign = seal(SecretBox.ring([Buffer.alloc(32, 7)]), { c: "cube", cv: 0, exp: nowSeconds() + 60 })
    expectPage(await browse(`/v1/connect/cube?link=${foreign}`), 410, "LinkExpired")
  })

  it("a deleted connection: 404; a replaced one (its version moved on): 409 ConnectionReplaced", async () => {
    const put = (body: unknown) =>
      raw(s.url, "/v1/connections/stored-1", {
        method: "PUT",
        headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
        body: JSON.stringify(body)
      })
    const created = await put({ provider: "cube", inputs: sb.credentials.cube, tags: { tenant: "acme" } })
    expect(created.status).toBe(201)
    const v1 = sealLink({ c: "stored-1", cv: 1, exp: nowSeconds() + 60 })
    // Version 1 is current: the link gets as far as the provider check.
    expectPage(await browse(`/v1/connect/stored-1?link=${v1}`), 409, "NotAuthorizationCode")
    expect((await put({ provider: "cube", inputs: sb.credentials.cube, tags: { tenant: "acme" } })).status).toBe(200)
    expectPage(await browse(`/v1/connect/stored-1?link=${v1}`), 409, "ConnectionReplaced")
    const del = await raw(s.url, "/v1/connections/stored-1", {
      method: "DELETE",
      headers: { authorization: `Bearer ${ADMIN}` }
    })
    expect(del.status).toBe(204)
    expectPage(await browse(`/v1/connect/stored-1?link=${v1}`), 404, "UnknownConnection")
  })
})

describe("the provider cannot be reached", () => {
  it("discovery of the authorization endpoint failing is a 502 ProviderUnreachable page", async () => {
    const put = await raw(s.url, "/v1/connections/disc-down", {
      method: "PUT",
      headers: { authorization: `Bearer ${ADMIN}`, "content-type": "application/json" },
      body: JSON.stringify({
        provider: "oauth2",
        tags: { tenant: "acme" },
        inputs: {
          issuer: "http://127.0.0.1:9",
          grant_type: "authorization_code",
          client_id: "x",
          client_secret: "secret-disc-down-123"
        }
      })
    })
    expect(put.status).toBe(201)
    const link = await post(ACME, { connection: "disc-down" })
    expect(link.status).toBe(201)
    const r = await browse(new URL(link.json().url).pathname + new URL(link.json().url).search)
    expectPage(r, 502, "ProviderUnreachable")
    expect(r.text).not.toContain("secret-disc-down-123")
  })
})

describe("a connection named callback", () => {
  it("is reached at /v1/connect/callback by its link (link=, not state=)", async () => {
    const link = sealLink({ c: "callback", cv: 0, exp: nowSeconds() + 60 })
    // Past the link's checks: the provider check answers, so the link was read as a link.
    expectPage(await browse(`/v1/connect/callback?link=${link}`), 409, "NotAuthorizationCode")
  })
})

describe("GET /v1/connect/callback: every failure is a clear page", () => {
  const cb = (query: string, cookie?: string) => browse(`/v1/connect/callback?${query}`, cookie ? { cookie } : {})

  it("no state, or an altered or foreign one: 400 StateInvalid", async () => {
    expectPage(await cb("code=abc"), 400, "StateInvalid")
    expectPage(await cb("state=nonsense&code=abc"), 400, "StateInvalid")
    const { text, cookie } = sealState({ c: "cube" })
    expectPage(await cb(`state=${altered(text)}&code=abc`, cookie), 400, "StateInvalid")
    // A link is not a state.
    expectPage(
      await cb(`state=${sealLink({ c: "cube", cv: 0, exp: nowSeconds() + 60 })}&code=abc`),
      400,
      "StateInvalid"
    )
  })

  it("an expired state: 410 StateExpired", async () => {
    const { text, cookie } = sealState({ c: "cube", exp: nowSeconds() - 1 })
    expectPage(await cb(`state=${text}&code=abc`, cookie), 410, "StateExpired")
  })

  it("a state without its browser's cookie (or with another's): 400 BrowserMismatch", async () => {
    const { text, cookie } = sealState({ c: "cube" })
    expectPage(await cb(`state=${text}&code=abc`), 400, "BrowserMismatch")
    const other = sealState({ c: "cube" })
    expectPage(await cb(`state=${text}&code=abc`, other.cookie), 400, "BrowserMismatch")
    const forged = cookie.replace(/=.*/, "=not-the-value")
    expectPage(await cb(`state=${text}&code=abc`, forged), 400, "BrowserMismatch")
  })

  it("denied consent (error=access_denied): 403 ConsentDenied", async () => {
    const { text, cookie } = sealState({ c: "cube" })
    const r = await cb(`state=${text}&error=access_denied&error_description=The+user+said+no`, cookie)
    expectPage(r, 403, "ConsentDenied")
    expect(r.text).toContain("You declined to give access")
    // The cookie is cleared once the state is spent.
    expect(String(r.headers["set-cookie"])).toMatch(/tessera_connect_[^=]+=; Path=\/v1\/connect\/callback; Max-Age=0/)
  })

  it("another provider error: 502 ProviderError, its code shown escaped", async () => {
    const { text, cookie } = sealState({ c: "cube" })
    const r = await cb(`state=${text}&error=${encodeURIComponent("<script>alert(1)</script>")}`, cookie)
    expectPage(r, 502, "ProviderError")
    expect(r.text).not.toContain("<script>")
    expect(r.text).toContain("&lt;script&gt;alert(1)&lt;/script&gt;")
    const quoted = await cb(`state=${text}&error=${encodeURIComponent('a"b')}`, cookie)
    expect(quoted.text).toContain("a&quot;b")
  })

  it("a state whose grant has moved on (a replayed or superseded callback): 409 AlreadyUsed, before any exchange", async () => {
    const { text, cookie } = sealState({ c: "cube", gv: 4 })
    const before = sb.requests.length
    expectPage(await cb(`state=${text}&code=abc`, cookie), 409, "AlreadyUsed")
    expect(sb.requests.length).toBe(before)
  })

  it("a state for a connection since replaced: 409; since deleted: 404", async () => {
    const replaced = sealState({ c: "cube", cv: 7 })
    expectPage(await cb(`state=${replaced.text}&code=abc`, replaced.cookie), 409, "ConnectionReplaced")
    const gone = sealState({ c: "gone" })
    expectPage(await cb(`state=${gone.text}&code=abc`, gone.cookie), 404, "UnknownConnection")
  })

  it("no code: 400", async () => {
    const { text, cookie } = sealState({ c: "cube" })
    expectPage(await cb(`state=${text}`, cookie), 400, "StateInvalid")
  })

  it("with redirect_after in the state, the outcome goes back to the app as a 303", async () => {
    const { text, cookie } = sealState({ c: "cube", ra: "https://app.example.com/done?x=1" })
    const r = await cb(`state=${text}&error=access_denied`, cookie)
    expect(r.status).toBe(303)
    const to = new URL(String(r.headers.location))
    expect(to.origin + to.pathname).toBe("https://app.example.com/done")
    expect(Object.fromEntries(to.searchParams)).toEqual({
      x: "1",
      tessera_connection: "cube",
      tessera_status: "denied",
      tessera_code: "ConsentDenied"
    })
    expect(r.headers["referrer-policy"]).toBe("no-referrer")
    // An altered state never redirects anywhere: its redirect_after cannot be trusted.
    const bad = await cb(`state=${altered(text)}&error=access_denied`, cookie)
    expectPage(bad, 400, "StateInvalid")
  })
})

describe("the request guard and the connect routes", () => {
  it("admits a top-level navigation from another site to the two browser routes", async () => {
    for (const site of ["cross-site", "same-site", "none"]) {
      const r = await browse("/v1/connect/cube?link=x", { "sec-fetch-site": site })
      expectPage(r, 400, "LinkInvalid")
    }
    expectPage(await browse("/v1/connect/callback?state=x", { "sec-fetch-site": "cross-site" }), 400, "StateInvalid")
    // A program following the link (no Fetch Metadata) is answered too.
    expectPage(await raw(s.url, "/v1/connect/cube?link=x"), 400, "LinkInvalid")
  })

  it("refuses a cross-site fetch, an iframe, or a cross-site POST to them", async () => {
    const cors = await browse("/v1/connect/cube?link=x", { "sec-fetch-mode": "cors", "sec-fetch-dest": "empty" })
    expect(cors.status).toBe(403)
    expect(cors.json().code).toBe("CrossSiteRequest")
    const frame = await browse("/v1/connect/callback?state=x", { "sec-fetch-dest": "iframe" })
    expect(frame.json().code).toBe("CrossSiteRequest")
    const postNav = await raw(s.url, "/v1/connect/callback?state=x", {
      method: "POST",
      headers: { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", origin: "https://evil.example" }
    })
    expect(postNav.status).toBe(403)
    expect(postNav.json().code).toBe("CrossSiteRequest")
  })

  it("keeps every other route as strict: a cross-site navigation to the API or to POST /v1/connect-links is refused", async () => {
    for (const path of [
      "/v1/connections",
      "/v1/connections/cube/token",
      "/ui",
      "/v1/connect-links",
      "/v1/connect/cube/x"
    ]) {
      const r = await browse(path, { authorization: `Bearer ${ADMIN}` })
      expect(r.status, path).toBe(403)
      expect(r.json().code, path).toBe("CrossSiteRequest")
    }
    const linkPost = await post(
      ADMIN,
      { connection: "cube" },
      { "sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate" }
    )
    expect(linkPost.json().code).toBe("CrossSiteRequest")
  })

  it("answers public_url's host even when allowed_hosts lists others", async () => {
    const narrowed = (u: string | undefined) =>
      text(u).replace("server:\n", "server:\n  allowed_hosts: [tessera.internal]\n")
    const t = await startWithPublicUrl(
      (u) => narrowed(u === undefined ? undefined : "https://connect.example.com"),
      capture(),
      { connections: "memory" }
    )
    try {
      const at = (host: string) => raw(t.url, "/v1/connect/cube?link=x", { headers: { host } })
      expectPage(await at("connect.example.com"), 400, "LinkInvalid")
      expect((await at("elsewhere.example.com")).status).toBe(403)
      expect((await at("elsewhere.example.com")).json().code).toBe("HostNotAllowed")
    } finally {
      await t.close()
    }
  })
})

describe("OpenAPI", () => {
  it("documents the link route (scope connections:write) and the two browser routes (no key, their query)", async () => {
    const doc = (await raw(s.url, "/openapi.json", { headers: { authorization: `Bearer ${ADMIN}` } })).json()
    const link = doc.paths["/v1/connect-links"].post
    expect(link).toMatchObject({ operationId: "createConnectLink", "x-tessera-scope": "connections:write" })
    expect(link.requestBody.content["application/json"].schema.$ref).toBe("#/components/schemas/ConnectLinkRequest")
    expect(Object.keys(link.responses)).toEqual(
      expect.arrayContaining(["201", "400", "401", "403", "404", "409", "501"])
    )
    const begin = doc.paths["/v1/connect/{name}"].get
    expect(begin.security).toEqual([])
    expect(begin.parameters).toContainEqual(expect.objectContaining({ name: "link", in: "query", required: true }))
    expect(Object.keys(begin.responses)).toEqual(expect.arrayContaining(["302", "400", "404", "409", "410"]))
    const callback = doc.paths["/v1/connect/callback"].get
    expect(callback.security).toEqual([])
    expect(callback.description).toContain("/v1/connect/callback")
    expect(callback.parameters.map((p: { name?: string }) => p.name)).toEqual(
      expect.arrayContaining(["state", "code", "error"])
    )
    expect(Object.keys(callback.responses)).toEqual(
      expect.arrayContaining(["200", "303", "400", "403", "404", "409", "410", "502", "503"])
    )
    expect(doc.components.schemas.ConnectLink.required).toEqual(["url", "expires_at"])
  })
})

describe("the README's connect example", () => {
  it("is a valid config: the public URL, one connect key, the onboarding key's scopes", async () => {
    const readme = readFileSync(new URL("../../../README.md", import.meta.url), "utf8")
    const section = readme.slice(readme.indexOf("## Connecting a user's account"))
    const example = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
    expect(example).toContain("public_url:")
    const config = await Effect.runPromise(
      Config.parse("/tmp/readme/tessera.yaml", example!, {
        DATABASE_URL: "postgres://postgres@127.0.0.1:5432/test",
        TESSERA_KEY_1: randomBytes(32).toString("base64"),
        TESSERA_CONNECT_KEY: randomBytes(32).toString("base64"),
        ONBOARDING_KEY: "onboarding-key-1234567890"
      })
    )
    expect(config.problems.filter((p) => p.severity === "error")).toEqual([])
    expect(config.server.publicUrl).toBe("https://tessera.example.com")
    expect(config.server.connectKeys).toHaveLength(1)
    expect(config.server.apiKeys[0]?.scopes).toEqual(["connections:read", "connections:write"])
    // The one redirect URI the section says to register.
    const { redirectUriOf } = await import("../src/connect-routes.ts")
    expect(redirectUriOf(config.server.publicUrl!)).toBe("https://tessera.example.com/v1/connect/callback")
    expect(section).toContain("`https://tessera.example.com/v1/connect/callback`")
  })
})
