/** Http: the Node layer's guarantees against a loopback server (no redirect followed, a time limit for the whole
 *  attempt, a size cap counted after decompression, the request aborted when the fiber is interrupted, keep-alive),
 *  and the replay layer's answers under TestClock. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { gzipSync } from "node:zlib"
import { afterAll, beforeAll } from "vitest"
import * as Http from "../src/http.ts"

let server: http.Server
let base: string
let connections = 0
const seen: string[] = []
const closed: string[] = []

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push(req.url ?? "")
    req.on("close", () => closed.push(req.url ?? ""))
    res.on("close", () => closed.push(`res ${req.url ?? ""}`))
    switch (req.url) {
      case "/redirect":
        return void res.writeHead(302, { location: `${base}/elsewhere` }).end()
      case "/trickle": {
        res.writeHead(200, { "content-type": "application/json" })
        const t = setInterval(() => res.write(" "), 50)
        return void setTimeout(() => (clearInterval(t), res.end("{}")), 2000)
      }
      case "/big":
        return void res.end("x".repeat(10_000))
      case "/gzip-bomb":
        return void res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync(Buffer.alloc(1_000_000)))
      case "/gzip":
        return void res.writeHead(200, { "content-encoding": "gzip" }).end(gzipSync('{"ok":true}'))
      case "/hang":
        return // never answers
      default:
        return void res.end(`ok ${req.headers["user-agent"]}`)
    }
  })
  server.on("connection", () => connections++)
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((r) => server.close(() => r())))

const node = Http.make()
const limits = { timeoutMs: 2000, maxResponseBytes: 4096 }
const get = (path: string, l: Http.Limits = limits) =>
  node.send({ method: "GET", url: `${base}${path}`, headers: {} }, l)
const text = (r: Http.Response) => Buffer.from(r.body).toString("utf8")

describe("Http.make (Node, undici)", () => {
  it.live("follows no redirect: the 3xx is the answer, and the Location is never asked", () =>
    Effect.gen(function* () {
      const r = yield* get("/redirect")
      assert.strictEqual(r.status, 302)
      assert.notInclude(seen, "/elsewhere")
    })
  )

  it.live("a body that trickles past the attempt's time limit is a timeout", () =>
    Effect.gen(function* () {
      const started = Date.now()
      const e = yield* Effect.flip(get("/trickle", { ...limits, timeoutMs: 300 }))
      assert.deepStrictEqual([e.reason, e.detail], ["timeout", "timed out"])
      assert.isBelow(Date.now() - started, 1500)
    })
  )

  it.live("a body over the cap is refused, also when it is over only once decompressed", () =>
    Effect.gen(function* () {
      const big = yield* Effect.flip(get("/big"))
      assert.deepStrictEqual([big.reason, big.detail], ["too_large", "response larger than 4096 bytes"])
      const bomb = yield* Effect.flip(get("/gzip-bomb"))
      assert.strictEqual(bomb.reason, "too_large")
      assert.strictEqual(text(yield* get("/gzip")), '{"ok":true}')
    })
  )

  it.live("interrupting the caller aborts the request on the wire", () =>
    Effect.gen(function* () {
      const fiber = yield* Effect.forkChild(get("/hang"))
      yield* Effect.promise(() => waitFor(() => seen.includes("/hang")))
      yield* Fiber.interrupt(fiber)
      yield* Effect.promise(() => waitFor(() => closed.includes("res /hang")))
      assert.include(closed, "res /hang")
    })
  )

  it.live("keeps the connection alive between exchanges, and says who it is", () =>
    Effect.gen(function* () {
      yield* get("/one")
      const before = connections
      const r = yield* get("/two")
      yield* get("/three")
      assert.strictEqual(connections, before)
      assert.strictEqual(text(r), "ok tessera/0.1")
    })
  )

  it.live("a closed port is a network failure that says so", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(node.send({ method: "GET", url: "http://127.0.0.1:1/x", headers: {} }, limits))
      assert.deepStrictEqual([e.reason, e.detail], ["network", "connection refused"])
    })
  )
})

const waitFor = async (ok: () => boolean) => {
  for (let i = 0; i < 200 && !ok(); i++) await new Promise((r) => setTimeout(r, 10))
}

const answer = (status: number, body: string): Http.Response => ({
  status,
  headers: { "content-type": "application/json" },
  body: new TextEncoder().encode(body)
})
const post = { method: "POST", url: "https://idp.invalid/token", headers: {} }

describe("Http.makeReplay", () => {
  it.effect("answers in order per method and URL, the last again, and keeps what was sent", () =>
    Effect.gen(function* () {
      const replay = Http.makeReplay([
        { request: post, response: answer(503, "") },
        { request: post, response: answer(200, "{}") }
      ])
      const statuses = []
      for (let i = 0; i < 3; i++) statuses.push((yield* replay.send({ ...post, body: `n=${i}` }, limits)).status)
      assert.deepStrictEqual(statuses, [503, 200, 200])
      assert.deepStrictEqual(
        replay.sent.map((r) => r.body),
        ["n=0", "n=1", "n=2"]
      )
      const e = yield* Effect.flip(replay.send({ ...post, url: "https://other.invalid/" }, limits))
      assert.strictEqual(e.detail, "no recorded exchange for POST https://other.invalid/")
    })
  )

  it.effect("a delay passes on the Clock, and one past the time limit is a timeout", () =>
    Effect.gen(function* () {
      const replay = Http.makeReplay([{ request: post, response: answer(200, "{}"), delayMs: 500 }])
      const slow = yield* Effect.forkChild(replay.send(post, limits))
      yield* TestClock.adjust(499)
      assert.isUndefined(slow.pollUnsafe())
      yield* TestClock.adjust(1)
      assert.strictEqual((yield* Fiber.join(slow)).status, 200)
      const late = yield* Effect.forkChild(replay.send(post, { ...limits, timeoutMs: 200 }))
      yield* TestClock.adjust(200)
      const exit = yield* Fiber.await(late)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual((yield* Effect.flip(Fiber.join(late))).reason, "timeout")
    })
  )
})
