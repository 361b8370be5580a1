/** The API proxy on a real server against the sandbox's d.vinci /restApi (and, where the sandbox cannot show
 *  it, an own upstream behind an oauth2 connection): forwarding, header hygiene, the one 401 retry, traversal,
 *  size and time limits, streaming both ways, and a secret scan. */
import type { Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Effect, Result } from "effect"
import { Proxy, type RunningServer } from "../src/index.ts"
import {
  JOBS_KEY,
  OPS_KEY,
  capture,
  configText,
  leaks,
  metricsText,
  parseConfig,
  raw,
  sample,
  sandbox,
  start,
  type Reply
} from "./services/harness.ts"

const MAX_BODY = 32 * 1024
const REPLAY = 4 * 1024

let sb: Sandbox
let s: RunningServer
let upstream: http.Server
let upstreamUrl: string
const captured = capture()
/** Set by the own upstream when the first chunk of a streamed request arrives. */
let onFirstChunk: (() => void) | undefined
/** Calls the own upstream's /refused API got. */
let refusedCalls = 0

beforeAll(async () => {
  sb = await sandbox()
  upstream = http.createServer((req, res) => {
    if (req.url?.startsWith("/base/stream-in")) {
      let bytes = 0
      req.on("data", (c: Buffer) => {
        if (bytes === 0) onFirstChunk?.()
        bytes += c.length
      })
      req.on("end", () => res.end(JSON.stringify({ bytes })))
      return
    }
    if (req.url?.startsWith("/base/trailers")) {
      res.setHeader("trailer", "X-Checksum")
      res.setHeader("x-kept", "yes")
      res.write("part1")
      res.addTrailers({ "x-checksum": "abc" })
      res.end("part2")
      return
    }
    if (req.url?.startsWith("/base/cookies")) {
      res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Path=/"])
      res.setHeader("x-request-id", "upstream-made-this-up")
      res.end("ok")
      return
    }
    if (req.url?.startsWith("/refused")) {
      refusedCalls++
      res.statusCode = 401
      res.setHeader("www-authenticate", 'Bearer error="invalid_token"')
      res.end('{"error":"invalid_token"}')
      return
    }
    res.statusCode = 404
    res.end()
  })
  await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()))
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
  const connection = (name: string, provider: string, inputs: Record<string, string>) =>
    `  ${name}:\n    provider: ${provider}\n    inputs:\n${Object.entries(inputs)
      .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
      .join("\n")}`
  const own = [
    connection("own", "oauth2", { ...sb.credentials.oauth2, api_base_url: `${upstreamUrl}/base` }),
    // An API that refuses every token (a misconfigured audience, say).
    connection("refused", "oauth2", { ...sb.credentials.oauth2, api_base_url: `${upstreamUrl}/refused` }),
    // Its own cool-down, so a test of repeated 401s does not disturb the calls of the others on jobs.
    connection("loop", "dvinci", sb.credentials.dvinci),
    // api.base_url is {{ inputs.audience }}, a plain string input: here plain http to a host that is not loopback.
    connection("remote", "usage-engine", { ...sb.credentials["usage-engine"], audience: "http://api.example.test/v1" })
  ].join("\n")
  const text = configText(sb, { connections: ["jobs", "cube"] }).replace("connections:\n", `connections:\n${own}\n`)
  s = await start(await parseConfig(text), captured, {
    limits: { maxBodyBytes: MAX_BODY, replayBytes: REPLAY, timeoutMs: 1000 }
  })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()))
})

const key = { "x-tessera-key": OPS_KEY }
const proxy = (path: string, init: Parameters<typeof raw>[2] = {}): Promise<Reply> =>
  raw(s.url, path, { ...init, headers: { ...key, ...init.headers } }, captured)
const apiRequests = (path: string) => sb.requests.filter((r) => r.kind === "api" && r.path.startsWith(path))
const currentToken = async (name: string) => {
  const t = (await raw(s.url, `/v1/connections/${name}/token`, { headers: key })).json().access_token as string
  captured.tokens.add(t)
  return t
}
const expectProblem = (r: Reply, status: number, code: string) => {
  expect(r.status).toBe(status)
  expect(r.headers["content-type"]).toBe("application/problem+json")
  expect(r.json()).toMatchObject({ status, code })
  return r.json()
}

describe("Proxy helpers", () => {
  const target = (url: string) => Effect.runPromise(Effect.result(Proxy.parseTarget(url)))

  it("parseTarget splits name, rest and query as sent", async () => {
    expect(await target("/v1/proxy/jobs/a/b%20c/?x=1&y")).toEqual(
      Result.succeed({ name: "jobs", rest: "/a/b%20c/", search: "?x=1&y" })
    )
    expect(await target("/v1/proxy/jobs")).toEqual(Result.succeed({ name: "jobs", rest: "", search: "" }))
  })

  it("parseTarget refuses .. however it is spelled, and malformed escapes", async () => {
    for (const bad of [
      "/v1/proxy/j/..",
      "/v1/proxy/j/%2E%2E/x",
      "/v1/proxy/j/.%2e/x",
      "/v1/proxy/j/x%2f..%2fy",
      "/v1/proxy/j/x%5c..%5cy",
      "/v1/proxy/j/%zz"
    ]) {
      const r = await target(bad)
      expect(Result.isFailure(r), bad).toBe(true)
    }
  })
})

describe("forwarding to the d.vinci-style /restApi", () => {
  it("GET with a query reaches base_url + rest + query with the connection's Bearer token", async () => {
    const r = await proxy("/v1/proxy/jobs/dvinciUsers/?page=2&q=a%20b")
    expect(r.status).toBe(200)
    expect(r.json()).toEqual({
      ok: true,
      method: "GET",
      path: "/dvinci/restApi/dvinciUsers/",
      query: { page: "2", q: "a b" },
      body: null
    })
    const seen = apiRequests("/dvinci/restApi/dvinciUsers/").at(-1)!
    expect(seen.path).toBe("/dvinci/restApi/dvinciUsers/?page=2&q=a%20b")
    expect(seen.headers["authorization"]).toBe(`Bearer ${await currentToken("jobs")}`)
    expect(seen.headers["x-request-id"]).toBe(r.headers["x-request-id"])
  })

  it("POST with a JSON body is forwarded and echoed", async () => {
    const body = JSON.stringify({ name: "Ada", tags: ["x", "y"] })
    const r = await proxy("/v1/proxy/jobs/jobOpenings", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" }
    })
    expect(r.status).toBe(200)
    expect(r.json()).toMatchObject({
      method: "POST",
      path: "/dvinci/restApi/jobOpenings",
      body: { name: "Ada", tags: ["x", "y"] }
    })
    expect(apiRequests("/dvinci/restApi/jobOpenings").at(-1)!.headers["content-type"]).toBe("application/json")
  })

  it("every method passes through", async () => {
    for (const method of ["PUT", "PATCH", "DELETE", "OPTIONS"]) {
      const r = await proxy("/v1/proxy/jobs/items/7", {
        method,
        ...(method === "DELETE" || method === "OPTIONS" ? {} : { body: "{}" }),
        headers: { "content-type": "application/json" }
      })
      expect(r.json()).toMatchObject({ method, path: "/dvinci/restApi/items/7" })
    }
  })

  it("the caller's Authorization and X-Tessera-Key are not forwarded", async () => {
    const r = await proxy("/v1/proxy/jobs/me", { headers: { authorization: "Bearer callers-own-token-123" } })
    expect(r.status).toBe(200)
    const seen = apiRequests("/dvinci/restApi/me").at(-1)!
    expect(seen.headers["authorization"]).toBe(`Bearer ${await currentToken("jobs")}`)
    expect(JSON.stringify(seen.headers)).not.toContain("callers-own-token-123")
    expect(seen.headers["x-tessera-key"]).toBeUndefined()
    expect(JSON.stringify(seen.headers)).not.toContain(OPS_KEY)
  })

  it("hop-by-hop request headers, and those named in Connection, are dropped", async () => {
    const r = await proxy("/v1/proxy/jobs/hop", {
      method: "POST",
      body: [Buffer.from("chunked, so a Trailer header is legal")],
      headers: {
        connection: "keep-alive, X-Hop",
        "x-hop": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        trailer: "X-Checksum",
        "proxy-authorization": "Basic Zm9vOmJhcg==",
        "proxy-connection": "keep-alive",
        "x-kept": "yes"
      }
    })
    expect(r.status).toBe(200)
    const h = apiRequests("/dvinci/restApi/hop").at(-1)!.headers
    expect(h["x-kept"]).toBe("yes")
    for (const gone of ["x-hop", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-connection"])
      expect(h[gone], gone).toBeUndefined()
  })

  it("hop-by-hop response headers, and those named in Connection, are dropped", async () => {
    sb.injectApi("dvinci", {
      type: "status",
      status: 200,
      body: '{"ok":true}',
      headers: {
        Connection: "X-Hop-Resp",
        "X-Hop-Resp": "1",
        "Keep-Alive": "timeout=99",
        "Proxy-Authenticate": "Basic",
        Upgrade: "h2c",
        "X-Kept": "yes"
      }
    })
    const r = await proxy("/v1/proxy/jobs/hop-back")
    expect(r.status).toBe(200)
    expect(r.text).toBe('{"ok":true}')
    expect(r.headers["x-kept"]).toBe("yes")
    for (const gone of ["x-hop-resp", "proxy-authenticate", "upgrade"]) expect(r.headers[gone], gone).toBeUndefined()
    expect(r.headers["keep-alive"]).not.toBe("timeout=99")
    // A chunked answer announcing trailers (the sandbox only sends fixed lengths): body kept, Trailer dropped.
    const t = await proxy("/v1/proxy/own/trailers")
    expect(t.status).toBe(200)
    expect(t.text).toBe("part1part2")
    expect(t.headers["trailer"]).toBeUndefined()
    expect(t.headers["x-kept"]).toBe("yes")
  })

  it("keeps repeated Set-Cookie headers apart and answers with its own X-Request-Id", async () => {
    const r = await proxy("/v1/proxy/own/cookies", { headers: { "x-request-id": "mine-1" } })
    expect(r.status).toBe(200)
    // Apart, and scoped to the connection's proxy prefix (own-cookies.ts).
    expect(r.headers["set-cookie"]).toEqual(["a=1; Path=/v1/proxy/own/", "b=2; Path=/v1/proxy/own/"])
    expect(r.headers["x-request-id"]).toBe("mine-1")
  })
})

describe("an upstream 401", () => {
  it("invalidates the token and retries once with a new one (buffered body sent again)", async () => {
    const before = await currentToken("jobs")
    const retries0 = sample(await metricsText(s.url), "tessera_proxy_retries_total", `{provider="dvinci"}`)
    sb.revokeTokens("dvinci")
    const body = JSON.stringify({ a: 1 })
    const r = await proxy("/v1/proxy/jobs/after-revoke", {
      method: "POST",
      body,
      headers: { "content-type": "application/json" }
    })
    expect(r.status).toBe(200)
    expect(r.json()).toMatchObject({ ok: true, body: { a: 1 } })
    const seen = apiRequests("/dvinci/restApi/after-revoke")
    expect(seen.map((x) => x.status)).toEqual([401, 200])
    expect(seen.map((x) => x.rawBody)).toEqual([body, body])
    const after = await currentToken("jobs")
    expect(after).not.toBe(before)
    expect(seen[1]!.headers["authorization"]).toBe(`Bearer ${after}`)
    expect(sample(await metricsText(s.url), "tessera_proxy_retries_total", `{provider="dvinci"}`)).toBe(retries0 + 1)
  })

  it("a second 401 goes back to the caller: no retry loop", async () => {
    sb.injectApi("dvinci", { type: "status", status: 401 }, 2)
    const r = await proxy("/v1/proxy/loop/twice")
    expect(r.status).toBe(401)
    expect(apiRequests("/dvinci/restApi/twice")).toHaveLength(2)
  })

  it("an API that refuses every token: 30 calls make at most 2 token requests (the token and one replacement)", async () => {
    const tokenRequests0 = sb.tokenRequests("oauth2").length
    const statuses: number[] = []
    // Six at a time, so that 401s for the same token arrive together and race for its invalidation.
    for (let i = 0; i < 30; i += 6)
      statuses.push(
        ...(await Promise.all(Array.from({ length: 6 }, (_, j) => proxy(`/v1/proxy/refused/item/${i + j}`)))).map(
          (r) => r.status
        )
      )
    expect(statuses).toEqual(Array(30).fill(401))
    expect(sb.tokenRequests("oauth2").length - tokenRequests0).toBe(2)
    // The calls that had the first token were retried once with its replacement; after that, none was.
    expect(refusedCalls).toBeLessThanOrEqual(30 + 6)
  })

  it("is returned as is when the body was too large to buffer; the next call gets a new token", async () => {
    await currentToken("jobs")
    sb.revokeTokens("dvinci")
    const big = "x".repeat(REPLAY * 2)
    const r = await proxy("/v1/proxy/jobs/big-after-revoke", {
      method: "POST",
      body: big,
      headers: { "content-type": "text/plain" }
    })
    expect(r.status).toBe(401)
    expect(apiRequests("/dvinci/restApi/big-after-revoke")).toHaveLength(1)
    expect(apiRequests("/dvinci/restApi/big-after-revoke")[0]!.rawBody).toBe(big)
    expect((await proxy("/v1/proxy/jobs/next")).status).toBe(200)
  })
})

describe("refusals", () => {
  it("a `..` segment, plain or percent-encoded, is 400 and never reaches the API", async () => {
    const before = sb.requests.length
    for (const path of [
      "/v1/proxy/jobs/../../cube/x",
      "/v1/proxy/jobs/%2e%2e/x",
      "/v1/proxy/jobs/a/%2E%2e/b",
      "/v1/proxy/jobs/..%2f..%2fx",
      "/v1/proxy/jobs/a/..",
      "/v1/proxy/jobs/a\\..\\b",
      "/v1/proxy/%2e%2e/jobs/x",
      "/v1/proxy/jobs/%2e./x",
      // Spellings some API servers read as "..": path parameters, NUL, trailing space or dot, fullwidth dots.
      "/v1/proxy/jobs/..;/cube/x",
      "/v1/proxy/jobs/%2e%2e;/x",
      "/v1/proxy/jobs/..%00/x",
      "/v1/proxy/jobs/..%20/x",
      "/v1/proxy/jobs/.../x",
      "/v1/proxy/jobs/%EF%BC%8E%EF%BC%8E/x",
      // A separator NFKC folds after dots: "..／x" is "../x" to a server that folds (fullwidth solidus, reverse
      // solidus, semicolon).
      "/v1/proxy/jobs/..%EF%BC%8Fcube/x",
      "/v1/proxy/jobs/..%EF%BC%BCcube/x",
      "/v1/proxy/jobs/..%EF%BC%9B/x",
      // An encoded "?" or "#" that a server decoding the path once more (mod_rewrite's backreferences) reads as the
      // end of the path: "/..?/x" is "..".
      "/v1/proxy/jobs/..%3F/x",
      "/v1/proxy/jobs/.%2e%3fx/y",
      "/v1/proxy/jobs/..%23/x",
      // NTFS reads "..::$INDEX_ALLOCATION" (the directory's stream) as "..".
      "/v1/proxy/jobs/..::$INDEX_ALLOCATION/x",
      "/v1/proxy/jobs/..%3A%3A$I30/x",
      // A URL parser drops tabs and line breaks anywhere: a server that decodes the path and parses it again reads
      // ".\t." as "..".
      "/v1/proxy/jobs/.%09./x",
      "/v1/proxy/jobs/%0A../x",
      "/v1/proxy/jobs/.%0d%0a./x",
      // Dots and spaces only: Windows drops a last segment's trailing dots and spaces (".. ." is ".."), and a server
      // that trims a segment drops leading ones too.
      "/v1/proxy/jobs/..%20.",
      "/v1/proxy/jobs/%20../x"
    ]) {
      const p = expectProblem(await proxy(path), 400, "BadRequest")
      expect(p.detail, path).toMatch(/\.\./)
    }
    expect(sb.requests.length).toBe(before)
    expect((await proxy("/v1/proxy/jobs/a..b/x.y;v=1")).status).toBe(200) // dots inside a name are fine
  })

  it('a ".", "/" or "\\" percent-encoded twice is 400 on both paths and never reaches the API', async () => {
    await currentToken("jobs") // a fresh token: a bodiless call could take the fast path
    const before = sb.requests.length
    for (const path of [
      "/v1/proxy/jobs/%252e%252e/cube/x",
      "/v1/proxy/jobs/a/%252E%252E/b",
      "/v1/proxy/jobs/..%252f..%252fx",
      "/v1/proxy/jobs/a%255c..%255cb",
      "/v1/proxy/jobs/a%252Fb",
      "/v1/proxy/jobs/%25252e%25252e/x",
      "/v1/proxy/jobs/%25%32%65%25%32%65/x",
      "/v1/proxy/%252e%252e/jobs/x",
      // Beside a malformed escape, which a lenient decoder leaves alone: decoded twice, "..;%" is "..".
      "/v1/proxy/jobs/..%253b%25/x"
    ]) {
      for (const body of [{}, { method: "POST", body: "{}", headers: { "content-type": "application/json" } }]) {
        const p = expectProblem(await proxy(path, body), 400, "BadRequest")
        expect(p.detail, path).toMatch(/percent-encoded twice/)
      }
    }
    expect(sb.requests.length).toBe(before)
    // Any other %25 is a percent sign: sent as given.
    const r = await proxy("/v1/proxy/jobs/a%2541b/100%25?q=%252e%252e")
    expect(r.status).toBe(200)
    expect(apiRequests("/dvinci/restApi/a%2541b").at(-1)!.path).toBe("/dvinci/restApi/a%2541b/100%25?q=%252e%252e")
  })

  it("a body over the limit is 413: at once by Content-Length, or when a chunked body passes it", async () => {
    const before = apiRequests("/dvinci/restApi/upload").length
    const big = Buffer.alloc(MAX_BODY + 1, 120)
    expectProblem(await proxy("/v1/proxy/jobs/upload", { method: "POST", body: big }), 413, "PayloadTooLarge")
    expect(apiRequests("/dvinci/restApi/upload").length).toBe(before)
    const chunks = Array.from({ length: 5 }, () => Buffer.alloc(MAX_BODY / 4, 121))
    expectProblem(await proxy("/v1/proxy/jobs/upload", { method: "POST", body: chunks }), 413, "PayloadTooLarge")
    // Exactly at the limit is accepted.
    const ok = await proxy("/v1/proxy/jobs/upload", {
      method: "POST",
      body: Buffer.alloc(MAX_BODY, 122),
      headers: { "content-type": "text/plain" }
    })
    expect(ok.status).toBe(200)
  })

  it("an API that does not answer in time: 504 UpstreamTimeout", async () => {
    sb.injectApi("dvinci", { type: "delay", ms: 2500 })
    const t0 = performance.now()
    const p = expectProblem(await proxy("/v1/proxy/jobs/slow"), 504, "UpstreamTimeout")
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(p).toMatchObject({ connection: "jobs", provider: "dvinci" })
  })

  it("an API whose body stalls longer than the time limit: the caller's response is cut", async () => {
    sb.injectApi("dvinci", { type: "slowBody", ms: 3000 })
    const t0 = performance.now()
    await expect(proxy("/v1/proxy/jobs/stalled")).rejects.toThrow()
    expect(performance.now() - t0).toBeLessThan(2500)
    expect((await proxy("/v1/proxy/jobs/after-stall")).status).toBe(200)
  })

  it("an API that dies mid-body: the caller's response is cut, not completed", async () => {
    sb.injectApi("dvinci", { type: "resetMidBody" })
    await expect(proxy("/v1/proxy/jobs/mid-body")).rejects.toThrow()
    expect((await proxy("/v1/proxy/jobs/after-cut")).status).toBe(200)
  })

  it("an API that drops the connection: 502 TransportError", async () => {
    sb.injectApi("dvinci", { type: "reset" })
    expectProblem(await proxy("/v1/proxy/jobs/reset"), 502, "TransportError")
  })

  it("plain http to an API host that is not loopback: 500 InputInvalid, and no token is even requested", async () => {
    const tokens0 = sb.tokenRequests("usage-engine").length
    const p = expectProblem(await proxy("/v1/proxy/remote/anything"), 500, "InputInvalid")
    expect(p).toMatchObject({ connection: "remote", provider: "usage-engine" })
    expect(sb.tokenRequests("usage-engine")).toHaveLength(tokens0)
  })

  it("a provider without api.base_url: 404 NoApiBaseUrl with a clear detail", async () => {
    const p = expectProblem(await proxy("/v1/proxy/cube/anything"), 404, "NoApiBaseUrl")
    expect(p.detail).toMatch(/declares no api\.base_url/)
    expect(p).toMatchObject({ connection: "cube", provider: "cube" })
  })

  it("auth: the key must come in X-Tessera-Key, and allow the connection", async () => {
    const bearerOnly = await raw(
      s.url,
      "/v1/proxy/jobs/x",
      { headers: { authorization: `Bearer ${OPS_KEY}` } },
      captured
    )
    expect(expectProblem(bearerOnly, 401, "Unauthorized").detail).toMatch(/X-Tessera-Key/)
    expectProblem(
      await raw(s.url, "/v1/proxy/jobs/x", { headers: { "x-tessera-key": "wrong" } }, captured),
      401,
      "Unauthorized"
    )
    expectProblem(
      await raw(s.url, "/v1/proxy/cube/x", { headers: { "x-tessera-key": JOBS_KEY } }, captured),
      403,
      "Forbidden"
    )
    expect((await raw(s.url, "/v1/proxy/jobs/x", { headers: { "x-tessera-key": JOBS_KEY } }, captured)).status).toBe(
      200
    )
    expectProblem(await proxy("/v1/proxy/nope/x"), 404, "UnknownConnection")
  })
})

describe("streaming", () => {
  it("streams the response: headers arrive before a slow body is complete", async () => {
    sb.injectApi("dvinci", { type: "slowBody", ms: 600 })
    const t0 = performance.now()
    const { headersAt, doneAt, text } = await new Promise<{ headersAt: number; doneAt: number; text: string }>(
      (resolve, reject) => {
        const u = new URL(s.url)
        http
          .get(
            { host: u.hostname, port: u.port, path: "/v1/proxy/jobs/slow-body", headers: key, agent: false },
            (res) => {
              const headersAt = performance.now() - t0
              let text = ""
              res.on("data", (c: Buffer) => {
                text += c.toString()
              })
              res.on("end", () => resolve({ headersAt, doneAt: performance.now() - t0, text }))
            }
          )
          .on("error", reject)
      }
    )
    expect(JSON.parse(text)).toMatchObject({ ok: true, path: "/dvinci/restApi/slow-body" })
    expect(headersAt).toBeLessThan(400)
    expect(doneAt).toBeGreaterThanOrEqual(550)
  })

  it("streams the request: the API sees the first chunk before the caller sent the last", async () => {
    const firstChunk = new Promise<void>((resolve) => {
      onFirstChunk = resolve
    })
    const u = new URL(s.url)
    const done = new Promise<Reply>((resolve, reject) => {
      const req = http.request(
        { host: u.hostname, port: u.port, path: "/v1/proxy/own/stream-in", method: "POST", headers: key, agent: false },
        (res) => {
          let text = ""
          res.on("data", (c: Buffer) => {
            text += c.toString()
          })
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
          )
        }
      )
      req.on("error", reject)
      req.write(Buffer.alloc(10_000, 97))
      // Only once the API has the first chunk does the caller send the rest: a buffering proxy would hang here.
      const timer = setTimeout(
        () => reject(new Error("the API never saw the first chunk: the proxy buffered the body")),
        3000
      )
      void firstChunk.then(() => {
        clearTimeout(timer)
        req.end(Buffer.alloc(20_000, 98))
      })
    })
    const r = await done
    expect(r.status).toBe(200)
    expect(r.json()).toEqual({ bytes: 30_000 })
  })
})

describe("secrets", () => {
  it("no secret or token reaches the access log, problem bodies or /metrics", async () => {
    const metrics = await metricsText(s.url)
    expect(captured.logs.some((l) => l.includes(`"route":"/v1/proxy/:name/*"`))).toBe(true)
    expect(captured.problems.length).toBeGreaterThan(8)
    // The caller's own token and query strings are not secrets of ours, but they must not be logged either.
    expect(captured.logs.join("")).not.toContain("callers-own-token-123")
    expect(captured.logs.join("")).not.toContain("page=2")
    expect(leaks(sb, captured, metrics)).toEqual([])
  })
})
