/** Api, the one "call the API with the token" path: the API base compiled once per connection and checked, paths
 *  kept below it, absolute URLs kept on its origin unless the caller opts in (logged), hop-by-hop headers, and the
 *  401 rule with its cool-down under TestClock, against a loopback API that refuses every token. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger, Redacted, Result } from "effect"
import { TestClock } from "effect/testing"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll } from "vitest"
import * as Api from "../src/api.ts"
import * as Config from "../src/config.ts"
import type { Connection } from "../src/connection.ts"
import { coolDownMs } from "../src/internal/unauthorized.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness
let api: http.Server
let apiUrl: string
/** What the loopback API answers on /flaky: 401 while `refuseAll`, else 200. */
let refuseAll = true
const seen: Array<{ path: string; authorization: string | undefined }> = []

beforeAll(async () => {
  api = http.createServer((req, res) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization })
    if (req.url?.startsWith("/plain/redirect")) {
      res.writeHead(302, { location: `${apiUrl}/plain/landed` }).end()
      return
    }
    if (req.url?.startsWith("/plain/slow")) {
      setTimeout(() => res.end("late"), 1500)
      return
    }
    if (req.url?.startsWith("/plain")) {
      res.end("x".repeat(64))
      return
    }
    res.statusCode = req.url?.startsWith("/flaky") && !refuseAll ? 200 : 401
    res.end(res.statusCode === 200 ? '{"ok":true}' : '{"error":"invalid_token"}')
  })
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
  h = await makeHarness({
    extra: (sb) => ({
      refused: { provider: "oauth2", inputs: { ...sb.credentials.oauth2, api_base_url: `${apiUrl}/refused` } },
      flaky: { provider: "oauth2", inputs: { ...sb.credentials.oauth2, api_base_url: `${apiUrl}/flaky` } },
      plain: { provider: "oauth2", inputs: { ...sb.credentials.oauth2, api_base_url: `${apiUrl}/plain` } },
      // Nothing listens on port 1.
      gone: { provider: "oauth2", inputs: { ...sb.credentials.oauth2, api_base_url: "http://127.0.0.1:1/v1" } }
    })
  })
})
afterAll(async () => {
  await h?.close()
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()))
})

const connection = (config: Config.Config, name: string): Connection => {
  const c = config.connections.get(name)
  if (!c) throw new Error(`no connection ${name}: ${JSON.stringify([...config.broken.keys()])}`)
  return c
}

const loadConnections = (connections: Record<string, unknown>) =>
  Config.fromObject({ connections } as Config.ConfigDocument)

const usageEngine = (audience: string, extra: Record<string, unknown> = {}) => ({
  provider: "usage-engine",
  inputs: { token_url: "https://idp.example/token", client_id: "c", client_secret: "s", audience },
  ...extra
})

/** Runs `effect`, collecting the messages it logs. */
const withLogs = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const lines: string[] = []
    const logger = Logger.make<unknown, void>((o) => void lines.push(`${String(o.logLevel)} ${String(o.message)}`))
    const result = yield* Effect.result(effect.pipe(Effect.provide(Logger.layer([logger]))))
    return { result, lines }
  })

describe("Api.base", () => {
  it.effect("is compiled once per connection; plain http only to loopback unless allow_insecure_http", () =>
    Effect.gen(function* () {
      const config = yield* loadConnections({
        remote: usageEngine("http://api.example.test/v1"),
        insecure: usageEngine("http://api.example.test/v1", { allow_insecure_http: true }),
        loopback: usageEngine("http://[::1]:8080/v1/"),
        creds: usageEngine("https://user:pw@api.example.test/v1")
      })
      const remote = yield* Effect.flip(Api.base(connection(config, "remote")))
      assert.strictEqual(remote._tag, "InputInvalid")
      assert.match(remote.message, /api\.base_url uses plain http:\/\/ to api\.example\.test/)
      const creds = yield* Effect.flip(Api.base(connection(config, "creds")))
      assert.match(creds.message, /carries credentials in the URL/)
      const insecure = yield* Api.base(connection(config, "insecure"))
      assert.strictEqual(insecure.origin, "http://api.example.test")
      const loopback = connection(config, "loopback")
      const first = yield* Api.base(loopback)
      assert.deepStrictEqual([first.origin, first.path], ["http://[::1]:8080", "/v1"])
      assert.strictEqual(yield* Api.base(loopback), first) // the same compiled object, not rendered again
    })
  )

  it.effect("says which inputs a missing base needs, or that the provider declares none", () =>
    Effect.gen(function* () {
      const noBase = yield* Effect.flip(Api.base(connection(h.config, "cube")))
      assert.deepStrictEqual(
        [noBase._tag, noBase.message],
        [
          "NoApiBaseUrl",
          'provider "cube" declares no api.base_url, so connection "cube" has no API to resolve a path against'
        ]
      )
      const config = yield* loadConnections({
        idp: { provider: "oauth2", inputs: { token_url: "https://idp.example/t", client_id: "c", client_secret: "s" } }
      })
      const missing = yield* Effect.flip(Api.resolve(connection(config, "idp"), "/me"))
      assert.deepStrictEqual(
        missing,
        new Api.NoApiBaseUrl({ connection: "idp", provider: "oauth2", missing: ["inputs.api_base_url"] })
      )
    })
  )
})

describe("Api.resolve", () => {
  const jobs = () => connection(h.config, "dvinci")
  const href = (target: string) => Effect.map(Api.resolve(jobs(), target), (t) => t.href)

  it.effect("joins a path below the base path, even one that looks like an authority", () =>
    Effect.gen(function* () {
      const base = (yield* Api.base(jobs())).text
      assert.strictEqual(yield* href("/users?active=true"), `${base}/users?active=true`)
      assert.strictEqual(yield* href("users"), `${base}/users`)
      assert.strictEqual(yield* href("//evil.example/x"), `${base}//evil.example/x`)
      assert.strictEqual(yield* href("/http://evil.example/x"), `${base}/http://evil.example/x`)
    })
  )

  it.effect("refuses a path that climbs out of the base, however the .. is spelled", () =>
    Effect.gen(function* () {
      for (const path of ["/../x", "/a/%2e%2e/%2E%2E/x", "/..%2fx", "/a\\..\\..\\x", "/.%2e", "/%zz"]) {
        const e = yield* Effect.flip(Api.resolve(jobs(), path))
        assert.strictEqual(e._tag, "TargetRefused", path)
      }
      const dots = yield* Effect.flip(Api.resolve(jobs(), "/a/../../b?x=1"))
      assert.strictEqual(
        dots.message,
        `dvinci (dvinci): /a/../../b has a ".." segment; a path reaches only what is below the connection's API base URL`
      )
    })
  )

  it.effect("keeps absolute URLs on the API origin; another origin only with allowForeignOrigin, logged", () =>
    Effect.gen(function* () {
      const base = yield* Api.base(jobs())
      assert.strictEqual(yield* href(`${base.origin}/elsewhere?q=1`), `${base.origin}/elsewhere?q=1`)
      const foreign = yield* Effect.flip(Api.resolve(jobs(), "https://other.example/collect?token=x"))
      assert.deepStrictEqual(
        foreign,
        new Api.ForeignOrigin({
          connection: "dvinci",
          provider: "dvinci",
          origin: "https://other.example",
          apiOrigin: base.origin
        })
      )
      assert.include(foreign.message, `sends its token only to its API origin ${base.origin}`)
      assert.include(foreign.message, "allowForeignOrigin: true")
      // `localhost` is another origin than 127.0.0.1, even on the same port.
      const host = yield* Effect.flip(Api.resolve(jobs(), base.text.replace("127.0.0.1", "localhost")))
      assert.strictEqual(host._tag, "ForeignOrigin")
      const { result, lines } = yield* withLogs(
        Api.resolve(jobs(), "https://other.example/collect", { allowForeignOrigin: true })
      )
      assert.strictEqual(Result.getOrThrow(result).href, "https://other.example/collect")
      assert.deepStrictEqual(lines, [
        `Warn sending connection dvinci's token to https://other.example, outside its API origin ${base.origin}, because the caller allowed a foreign origin`
      ])
      // Opting in to another origin does not opt in to plain http to a remote host.
      const plain = yield* Effect.flip(Api.resolve(jobs(), "http://other.example/x", { allowForeignOrigin: true }))
      assert.strictEqual(plain._tag, "TargetRefused")
      assert.match(plain.message, /plain http:\/\/ to other\.example/)
    })
  )
})

describe("Api.endToEnd", () => {
  it("drops hop-by-hop headers, the ones Connection names, Proxy-* and the given names", () => {
    assert.deepStrictEqual(
      Api.endToEnd(
        {
          connection: "close, X-A",
          "x-a": "1",
          "keep-alive": "5",
          te: "trailers",
          "proxy-foo": "1",
          upgrade: "h2c",
          "x-b": "2",
          "set-cookie": ["a=1", "b=2"],
          authorization: "x"
        },
        ["authorization"]
      ),
      { "x-b": "2", "set-cookie": ["a=1", "b=2"] }
    )
  })
})

describe("Api.call", () => {
  const call = (path: string, options: Api.CallOptions = {}) =>
    Api.call(h.engine, "plain", { method: "GET", target: path }, options)

  it.effect("follows no redirect: the 3xx goes back to the caller, and its Location gets no token", () =>
    Effect.gen(function* () {
      const r = yield* call("/redirect")
      assert.strictEqual(r.status, 302)
      assert.deepInclude(r.headers, ["location", `${apiUrl}/plain/landed`])
      assert.isFalse(seen.some((x) => x.path === "/plain/landed"))
    })
  )

  it.effect("reads at most maxResponseBytes of an answer", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* call("/big", { maxResponseBytes: 64 })).body.length, 64)
      const e = yield* Effect.flip(call("/big", { maxResponseBytes: 63 }))
      assert.strictEqual(
        e.message,
        "plain (oauth2): cannot reach " + `${apiUrl}/plain/big: response larger than 63 bytes`
      )
    })
  )

  it.effect('refuses a ".", "/" or "\\" encoded twice before any request; other %25 escapes go as given', () =>
    Effect.gen(function* () {
      const before = seen.length
      for (const path of [
        "/%252e%252e/x",
        "/a/%252E%252E/b",
        "/a%252f..%252fb",
        "/a/%255c..%255cb",
        "/%25252e%25252e/x",
        "/%25%32%65%25%32%65/x",
        "/%252%2565%252%2565/x",
        "/a/%252e",
        "/a%252Fb",
        "/a%255Cb"
      ]) {
        const e = yield* Effect.flip(call(path))
        assert.strictEqual(e._tag, "TargetRefused", path)
        assert.match(e.message, /percent-encoded twice/, path)
      }
      assert.strictEqual(seen.length, before)
      // A literal percent sign, %2541 (%41 once decoded) and the same escapes in the query are ordinary.
      for (const path of ["/100%25", "/a%2541b", "/x?after=%252e%252e"]) {
        assert.strictEqual((yield* call(path)).status, 200, path)
        assert.strictEqual(seen.at(-1)?.path, `/plain${path}`)
      }
    })
  )

  it.effect(
    'refuses a ".." in the spellings some servers read as one, before any request; ".", "a..b" and "x.y" go',
    () =>
      Effect.gen(function* () {
        const before = seen.length
        const dots: ReadonlyArray<readonly [string, RegExp]> = [
          ["/..;/admin", /".." segment/], // Tomcat, Jetty, Spring: path parameters cut
          ["/%2e%2e;/admin", /".." segment/],
          ["/..%3bx/admin", /".." segment/],
          ["/..%00/admin", /".." segment/], // NUL truncation
          ["/..%3F/admin", /".." segment/], // decoded once more, "?" ends the path (mod_rewrite backreferences)
          ["/..%23x/admin", /".." segment/], // and "#" too
          ["/..::$INDEX_ALLOCATION/admin", /".." segment/], // NTFS: the directory's stream is the directory
          ["/.%09./admin", /".." segment/], // a URL parser, after a decoding, drops tabs and line breaks
          ["/%0a%0d../admin", /".." segment/],
          ["/..%20.", /".." segment/], // Windows: a last segment's trailing dots and spaces dropped
          ["/%20../admin", /".." segment/], // a segment trimmed
          ["/..%C2%85/admin", /".." segment/], // trimmed of a NEL (U+0085), which JavaScript's \s leaves
          ["/..%20/admin", /".." segment/], // trailing space trimmed (Windows)
          ["/.../admin", /".." segment/], // trailing dot trimmed
          ["/%EF%BC%8E%EF%BC%8E/admin", /".." segment/], // fullwidth dots (NFKC)
          ["/%E2%80%A5/admin", /".." segment/], // two dot leader (NFKC: "..")
          // A separator that NFKC folds, after dots: "..／admin" is "../admin" to a server that folds.
          ["/..%EF%BC%8Fadmin", /".." segment/], // fullwidth solidus U+FF0F
          ["/..%EF%BC%BCadmin", /".." segment/], // fullwidth reverse solidus U+FF3C
          ["/..%EF%B9%A8admin", /".." segment/], // small reverse solidus U+FE68
          ["/%E2%80%A5%EF%BC%8Fadmin", /".." segment/], // two dot leader, then a fullwidth solidus
          ["/..%EF%BC%9Bx/admin", /".." segment/], // fullwidth ";" (U+FF1B): "..;x"
          ["/..%EF%BC%9F/admin", /".." segment/], // fullwidth "?" (U+FF1F)
          ["/..%EF%BC%9A%EF%BC%9A$I30/admin", /".." segment/], // fullwidth ":" (U+FF1A)
          ["/..%25EF%25BC%258Fadmin", /percent-encoded twice/], // the fullwidth solidus, encoded twice
          ["/%25c0%25ae%25c0%25ae/admin", /percent-encoded twice/], // overlong UTF-8, encoded twice
          ["/%25u002e%25u002e/admin", /percent-encoded twice/], // IIS %u, encoded twice
          ["/%25EF%25BC%258E%25EF%25BC%258E/admin", /percent-encoded twice/], // fullwidth dots, encoded twice
          ["/%252e%252e;/admin", /percent-encoded twice/],
          // Beside a malformed escape, which a lenient decoder leaves alone: decoded twice, "..?%" and "..\0%".
          ["/..%253F%25/admin", /percent-encoded twice/],
          ["/..%2500%25/admin", /percent-encoded twice/]
        ]
        for (const [path, why] of dots) {
          const e = yield* Effect.flip(call(path))
          assert.strictEqual(e._tag, "TargetRefused", path)
          assert.match(e.message, why, path)
        }
        assert.strictEqual(seen.length, before)
        for (const path of [
          "/./x",
          "/a..b",
          "/x.y;v=1",
          "/v1.2/items",
          "/caf%C3%A9",
          "/a%EF%BC%8Fb",
          "/v1.2%EF%BC%8Fx"
        ]) {
          assert.strictEqual((yield* call(path)).status, 200, path)
        }
      })
  )

  it.live("an answer slower than the time limit is an UpstreamTimeout", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(call("/slow", { timeoutMs: 300 }))
      assert.strictEqual(e.message, `plain (oauth2): no answer from ${apiUrl}/plain/slow within 300 ms`)
    })
  )
})

describe("Api.forwardFast", () => {
  const fast = (c: Connection, path: string) =>
    Api.forwardFast(
      h.engine,
      c,
      { method: "GET", path, headers: {}, source: { headers: {} } as http.IncomingMessage },
      { maxBodyBytes: 1024, replayBytes: 1024, timeoutMs: 2000, run: (e) => Effect.runPromiseExit(e) }
    )

  it("leaves every path `forward` refuses to it (undefined, nothing sent), not only a plain `..`", async () => {
    await h.run(Api.call(h.engine, "plain", { method: "GET", target: "/warm" })) // a fresh token: the fast case
    const c = h.engine.registry.peek("plain")!
    const answered = await fast(c, "/ok")!
    assert.strictEqual(answered._tag, "Answered")
    if (answered._tag === "Answered") answered.answer.discard()
    const before = seen.length
    for (const path of [
      "/..",
      "/..;/admin",
      "/..%3bx/admin",
      "/..%00/admin",
      "/..%20/admin",
      "/.../admin",
      "/..::$INDEX_ALLOCATION/admin",
      "/.%09./admin",
      "/%EF%BC%8E%EF%BC%8E/admin",
      "/..%EF%BC%8Fadmin",
      "/%252e%252e/admin",
      "/a%252fb",
      "/%zz"
    ]) {
      assert.strictEqual(fast(c, path), undefined, path)
      const e = await h.fail(Api.call(h.engine, "plain", { method: "GET", target: path }))
      assert.strictEqual(e._tag, "TargetRefused", path)
    }
    assert.strictEqual(seen.length, before)
  })
})

describe("the 401 rule", () => {
  const tokenRequests = () => h.sb.tokenRequests("oauth2").length
  const get = (name: string, path: string) => Api.call(h.engine, name, { method: "GET", target: path })

  it.effect("an API that refuses every token: one replacement, then a cool-down (5 s doubling to 60 s)", () =>
    Effect.gen(function* () {
      const before = tokenRequests()
      const first = yield* Effect.all(
        Array.from({ length: 30 }, (_, i) => get("refused", `/item/${i}`)),
        { concurrency: 6 }
      )
      assert.deepStrictEqual(new Set(first.map((r) => r.status)), new Set([401]))
      assert.strictEqual(tokenRequests() - before, 2) // the token the calls had, and one replacement
      const tokens = new Set(seen.filter((s) => s.path.startsWith("/refused")).map((s) => s.authorization))
      assert.strictEqual(tokens.size, 2)

      // Within the cool-down no 401 invalidates; once it has run out, one more replacement is tried.
      yield* TestClock.adjust(coolDownMs(1) - 1)
      yield* get("refused", "/still-cooling")
      assert.strictEqual(tokenRequests() - before, 2)
      yield* TestClock.adjust(1)
      yield* Effect.all(
        Array.from({ length: 10 }, () => get("refused", "/probe")),
        { concurrency: 5 }
      )
      assert.strictEqual(tokenRequests() - before, 3)
      // That replacement was refused too: the next cool-down is twice as long.
      assert.strictEqual(coolDownMs(2), 10_000)
      yield* TestClock.adjust(coolDownMs(2) - 1)
      yield* get("refused", "/still-cooling")
      assert.strictEqual(tokenRequests() - before, 3)
      yield* TestClock.adjust(1)
      yield* get("refused", "/probe-again")
      assert.strictEqual(tokenRequests() - before, 4)
      assert.deepStrictEqual([3, 4, 5, 9].map(coolDownMs), [20_000, 40_000, 60_000, 60_000])
    })
  )

  it.effect("a revoked token is replaced once and the call retried; a 401 for a token already replaced is not", () =>
    Effect.gen(function* () {
      refuseAll = false
      const ok = yield* get("flaky", "/warm")
      assert.strictEqual(ok.status, 200)
      const before = tokenRequests()
      refuseAll = true
      // Every call's first attempt is refused (their token is "revoked"); the retry is refused too, so the
      // connection cools down, but the token was replaced only once for all of them.
      const calls = yield* Effect.all(
        Array.from({ length: 8 }, () => get("flaky", "/revoked")),
        {
          concurrency: "unbounded"
        }
      )
      assert.strictEqual(tokenRequests() - before, 1)
      assert.deepStrictEqual(new Set(calls.map((r) => r.status)), new Set([401]))
      // An answer other than 401 ends the row of refusals; after the cool-down a revoked token is replaced again.
      yield* TestClock.adjust(coolDownMs(1))
      refuseAll = false
      assert.strictEqual((yield* get("flaky", "/accepted")).status, 200)
      assert.strictEqual(tokenRequests() - before, 1)
      refuseAll = true
      yield* get("flaky", "/revoked-again")
      assert.strictEqual(tokenRequests() - before, 2)
      refuseAll = false
    })
  )

  it.effect("engine.invalidateIfCurrent forgets a token only while it is still the current one", () =>
    Effect.gen(function* () {
      const old = (yield* h.engine.getToken("oauth2")).accessToken
      const renewed = (yield* h.engine.getToken("oauth2", { force: true })).accessToken
      assert.isFalse(yield* h.engine.invalidateIfCurrent("oauth2", old))
      const cached = (yield* h.engine.getToken("oauth2")).accessToken
      assert.strictEqual(Redacted.value(cached), Redacted.value(renewed)) // still cached
      assert.isTrue(yield* h.engine.invalidateIfCurrent("oauth2", renewed))
      assert.isFalse(yield* h.engine.invalidateIfCurrent("oauth2", renewed)) // once
      const next = (yield* h.engine.getToken("oauth2")).accessToken
      assert.notStrictEqual(Redacted.value(next), Redacted.value(renewed))
    })
  )

  it.effect("an API that cannot be reached: TransportError naming the connection and URL, never the token", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(get("gone", "/x?secret=1"))
      assert.strictEqual(e._tag, "TransportError")
      assert.strictEqual(e.message, "gone (oauth2): cannot reach http://127.0.0.1:1/v1/x: connection refused")
    })
  )
})
