/** Static credentials (manifest kind api_key and basic) through the one API-call path, Api.call, against a loopback
 *  API that records what it got: the key in the header or the query parameter the inputs name, Basic as RFC 7617
 *  says, no token endpoint touched, no retry after a 401, and every token operation refused (StaticCredential). */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll } from "vitest"
import * as Api from "../src/api.ts"
import * as Manifest from "../src/manifest.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness
let api: http.Server
let apiUrl: string
const seen: Array<{ url: string; headers: http.IncomingHttpHeaders }> = []

beforeAll(async () => {
  api = http.createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers })
    res.statusCode = req.url?.startsWith("/refuse") ? 401 : 200
    res.end('{"ok":true}')
  })
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
  h = await makeHarness({
    extra: () => ({
      "key-header": {
        provider: "api-key",
        inputs: { api_key: "k-123456789", header: "X-API-Key", base_url: `${apiUrl}/v1` }
      },
      "key-prefix": {
        provider: "api-key",
        inputs: { api_key: "k-abcdef", header: "Authorization", prefix: "Token ", base_url: `${apiUrl}/v1` }
      },
      "key-query": { provider: "api-key", inputs: { api_key: "k q&=/x", query: "key", base_url: `${apiUrl}/v1` } },
      "key-refused": {
        provider: "api-key",
        inputs: { api_key: "k-refused", header: "X-API-Key", base_url: `${apiUrl}/refuse` }
      },
      basic: {
        provider: "basic",
        inputs: { username: "Aladdin", password: "open sesame:ü", base_url: `${apiUrl}/v1` }
      },
      "basic-colon": { provider: "basic", inputs: { username: "a:b", password: "p", base_url: `${apiUrl}/v1` } }
    })
  })
})
afterAll(async () => {
  await h?.close()
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()))
})

const get = (name: string, target = "/things?page=2", headers: ReadonlyArray<readonly [string, string]> = []) =>
  Api.call(h.engine, name, { method: "GET", target, headers })

describe("kind api_key", () => {
  it.effect("puts the key in the header the inputs name, in place of the caller's, with no token request", () =>
    Effect.gen(function* () {
      const tokenRequests = h.sb.tokenRequests().length
      const r = yield* get("key-header", "/things?page=2", [["x-api-key", "caller's own"]])
      assert.strictEqual(r.status, 200)
      const last = seen.at(-1)!
      assert.strictEqual(last.url, "/v1/things?page=2")
      assert.strictEqual(last.headers["x-api-key"], "k-123456789")
      assert.isUndefined(last.headers["authorization"])
      assert.strictEqual(h.sb.tokenRequests().length, tokenRequests)
      assert.strictEqual(Redacted.value(r.token), "k-123456789")
    })
  )

  it.effect("a prefix goes before the key", () =>
    Effect.gen(function* () {
      yield* get("key-prefix")
      assert.strictEqual(seen.at(-1)!.headers["authorization"], "Token k-abcdef")
    })
  )

  it.effect("or in the query parameter the inputs name, percent-encoded, replacing the caller's", () =>
    Effect.gen(function* () {
      yield* get("key-query", "/things?key=mine&page=2")
      const url = new URL(seen.at(-1)!.url, apiUrl)
      assert.strictEqual(url.pathname, "/v1/things")
      assert.deepStrictEqual(
        [...url.searchParams],
        [
          ["key", "k q&=/x"],
          ["page", "2"]
        ]
      )
      assert.isUndefined(seen.at(-1)!.headers["authorization"])
    })
  )

  it.effect("a 401 goes back as it is: nothing to invalidate, no second call", () =>
    Effect.gen(function* () {
      const before = seen.length
      const r = yield* get("key-refused")
      assert.strictEqual(r.status, 401)
      assert.strictEqual(seen.length, before + 1)
    })
  )
})

describe("kind basic", () => {
  it.effect("sends Authorization: Basic base64(user:password) in UTF-8, the password's colon kept (RFC 7617)", () =>
    Effect.gen(function* () {
      yield* get("basic")
      const auth = seen.at(-1)!.headers["authorization"]!
      assert.strictEqual(auth, `Basic ${Buffer.from("Aladdin:open sesame:ü", "utf8").toString("base64")}`)
    })
  )

  it.effect("a user name with a colon is refused, naming the rule and not the password", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(get("basic-colon"))
      assert.strictEqual(e._tag, "InputInvalid")
      assert.match(e.message, /basic-colon.*apply\.username contains ":".*RFC 7617/s)
    })
  )
})

describe("token operations on a static credential", () => {
  it.effect("getToken, a forced renewal and --dry-run fail with StaticCredential, naming the kind", () =>
    Effect.gen(function* () {
      for (const e of [
        yield* Effect.flip(h.engine.getToken("key-header")),
        yield* Effect.flip(h.engine.getToken("basic", { force: true })),
        yield* Effect.flip(h.engine.describeRequest("key-header"))
      ]) {
        assert.strictEqual(e._tag, "StaticCredential")
        assert.notInclude(e.message, "k-123456789")
      }
      const e = yield* Effect.flip(h.engine.getToken("basic"))
      assert.match(e.message, /connection "basic" \(basic\) uses a static credential \(kind: basic\)/)
    })
  )

  it.effect("authorization answers the header, and the result says static", () =>
    Effect.gen(function* () {
      const a = yield* h.engine.authorization("key-header")
      assert.strictEqual(a.header, "X-API-Key")
      assert.strictEqual(a.result.decision.action, "static")
      const q = yield* h.engine.authorization("key-query")
      assert.strictEqual(q.query, "key")
      assert.strictEqual(q.header, "")
    })
  )

  it.effect("nothing is cached", () =>
    Effect.gen(function* () {
      yield* get("key-header")
      assert.isFalse((yield* h.engine.cacheState("key-header")).cached)
    })
  )
})

describe("each kind validated on its own terms", () => {
  const manifest = (body: string) => `id: demo\nname: Demo\n${body}`
  const problems = (text: string) =>
    Effect.map(Effect.flip(Manifest.parse("demo.yaml", text)), (e) =>
      e.problems.map((p) => `${p.line}:${p.col} ${p.path}: ${p.message}`)
    )

  it.effect("api_key with flows: each token-endpoint key is refused at its place", () =>
    Effect.gen(function* () {
      const p = yield* problems(
        manifest(
          [
            "kind: api_key",
            "inputs: { key: { secret: true } }",
            "flows:",
            "  acquire: { url: https://x.example/token, grant_type: client_credentials }",
            'apply: { header: X-Key, value: "{{ inputs.key }}" }',
            ""
          ].join("\n")
        )
      )
      assert.deepStrictEqual(p, ['5:1 flows: key "flows" does not apply to kind: api_key'])
    })
  )

  it.effect("basic with errors and discovery: both refused, each at its key", () =>
    Effect.gen(function* () {
      const p = yield* problems(
        manifest(
          [
            "kind: basic",
            "inputs: { username: {}, password: { secret: true } }",
            "apply: {}",
            "errors: { reauthenticate: { status: [401] } }",
            'discovery: { issuer: "https://idp.example" }',
            ""
          ].join("\n")
        )
      )
      assert.deepStrictEqual(p, [
        '6:1 errors: key "errors" does not apply to kind: basic',
        '7:1 discovery: key "discovery" does not apply to kind: basic'
      ])
    })
  )

  it.effect("api_key without apply, and basic with a value", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* problems(manifest("kind: api_key\ninputs: { key: {} }\n")), [
        '1:1 : missing required key "apply"'
      ])
      const p = yield* problems(
        manifest('kind: basic\ninputs: { username: {}, password: {} }\napply: { value: "x {{ inputs.username }}" }\n')
      )
      assert.deepStrictEqual(p, [
        "5:17 apply.value: kind basic sends Authorization: Basic from apply.username and apply.password"
      ])
    })
  )

  it.effect("api_key needs a place and a value from an input", () =>
    Effect.gen(function* () {
      const p = yield* problems(manifest('kind: api_key\ninputs: { key: {} }\napply: { value: "literal" }\n'))
      assert.deepStrictEqual(p, [
        "5:8 apply: kind api_key needs apply.header or apply.query: where the key goes",
        "5:17 apply.value: apply.value uses no input: the key would be written in the manifest"
      ])
    })
  )

  it.effect("oauth2 (the default) still needs flows, and says how to declare a static credential", () =>
    Effect.gen(function* () {
      const p = yield* problems(manifest("inputs: { key: {} }\n"))
      assert.deepStrictEqual(p, ['1:1 : missing required key "flows"'])
      const e = yield* Effect.flip(Manifest.parse("demo.yaml", manifest("inputs: { key: {} }\n")))
      assert.match(e.message, /kind: api_key or basic/)
    })
  )
})
