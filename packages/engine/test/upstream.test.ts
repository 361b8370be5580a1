/** Upstream.exchange: its retries (the Schedule keyed on the error's kind, under TestClock on recorded answers),
 *  and its errors name the token endpoint, never a secret in it: a manifest that puts a secret input into the token
 *  URL's path gets it masked in TransportError and UpstreamTimeout messages. */
import { Effect } from "effect"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { assert, it as effect } from "@effect/vitest"
import { Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Replayed from "./services/replay-harness.ts"
import { recordedAt, statusAnswer, tokenAnswer } from "./services/replay-harness.ts"
import * as Config from "../src/config.ts"
import * as Engine from "../src/engine.ts"
import * as Http from "../src/http.ts"
import { makeMemory } from "../src/token-store.ts"

const dir = mkdtempSync(join(tmpdir(), "tessera-upstream-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const closedPort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port
      s.close(() => resolve(p))
    })
  })

describe("a secret in the token URL", () => {
  it("is masked in the error that names the endpoint", async () => {
    const port = await closedPort()
    writeFileSync(
      join(dir, "keyed.yaml"),
      [
        "id: keyed",
        "name: Keyed",
        "inputs: { key: { secret: true } }",
        "flows:",
        "  acquire:",
        `    url: "http://127.0.0.1:${port}/t/{{ inputs.key }}/token"`,
        "    grant_type: client_credentials",
        "    client_auth: { method: none }"
      ].join("\n")
    )
    const key = "url-path-secret-7781"
    const config = await Effect.runPromise(
      Config.fromObject(
        { providers: [dir], connections: { k: { provider: "keyed", inputs: { key: "${env:KEY}" } } } },
        {
          KEY: key
        }
      )
    )
    const engine = Effect.runSync(
      Engine.make(config, makeMemory(), {
        http: { timeoutMs: 500, totalTimeoutMs: 1000, retries: 0, maxResponseBytes: 1024 }
      }).pipe(Effect.provide(Http.layer))
    )
    const e = await Effect.runPromise(Effect.flip(engine.getToken("k")))
    expect(e._tag).toBe("TransportError")
    expect(e.message).toContain(`http://127.0.0.1:${port}/t/***/token`)
    expect(JSON.stringify(e)).not.toContain(key)
  })
})

const sentAfter = (h: Replayed.Replayed, ms: number) => Effect.map(TestClock.adjust(ms), () => h.replay.sent.length)

describe("retries: a Schedule keyed on the error's kind", () => {
  effect.effect("transient failures back off exponentially from 250 ms, with jitter of at most 20 %", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(recordedAt)
      const h = yield* Replayed.make({
        answers: [statusAnswer("cube", 503), statusAnswer("cube", 502), tokenAnswer("cube")]
      })
      const got = yield* Effect.forkChild(h.engine.getToken("cube"))
      assert.strictEqual(yield* sentAfter(h, 199), 1) // the first delay is 250 ms x 0.8..1.2
      assert.strictEqual(yield* sentAfter(h, 101), 2)
      assert.strictEqual(yield* sentAfter(h, 299), 2) // the second is 500 ms x 0.8..1.2 after the first (sent by 300 ms)
      assert.strictEqual(yield* sentAfter(h, 301), 3)
      assert.strictEqual((yield* Fiber.join(got)).decision.action, "acquired")
    })
  )

  effect.effect("429 waits exactly the Retry-After the provider sent", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(recordedAt)
      const limited = statusAnswer("usage-engine", 429, { error: "slow_down" }, { "retry-after": "1" })
      const h = yield* Replayed.make({
        answers: [limited, tokenAnswer("usage-engine")]
      })
      const got = yield* Effect.forkChild(h.engine.getToken("usage-engine"))
      assert.strictEqual(yield* sentAfter(h, 999), 1)
      assert.strictEqual(yield* sentAfter(h, 1), 2)
      assert.strictEqual((yield* Fiber.join(got)).decision.action, "acquired")
    })
  )

  effect.effect("a Retry-After beyond the overall time limit fails at once instead of sleeping", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(recordedAt)
      const limited = statusAnswer("usage-engine", 429, { error: "slow_down" }, { "retry-after": "30" })
      const h = yield* Replayed.make({
        answers: [limited],
        http: { totalTimeoutMs: 2000 }
      })
      const e = yield* Effect.flip(h.engine.getToken("usage-engine"))
      assert.deepInclude(e, { _tag: "UpstreamRejected", status: 429, kind: "rate_limit", attempts: 1 })
      assert.strictEqual(h.replay.sent.length, 1)
    })
  )

  effect.effect("gives up after the configured retries; a credential rejection is never retried", () =>
    Effect.gen(function* () {
      yield* TestClock.setTime(recordedAt)
      const h = yield* Replayed.make({
        answers: [statusAnswer("cube", 502), statusAnswer("dvinci", 401, { error: "invalid_client" })],
        http: { retries: 2 }
      })
      const failed = yield* Effect.forkChild(Effect.flip(h.engine.getToken("cube")))
      yield* TestClock.adjust(10_000)
      assert.deepInclude(yield* Fiber.join(failed), { _tag: "UpstreamRejected", kind: "transient", attempts: 3 })
      const rejected = yield* Effect.flip(h.engine.getToken("dvinci"))
      assert.deepInclude(rejected, { _tag: "UpstreamRejected", kind: "reauthenticate", attempts: 1 })
      assert.strictEqual(h.replay.sent.length, 4)
    })
  )
})
