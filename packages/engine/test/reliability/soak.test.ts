/** Soak: 2 s tokens (whole-second JWT exp, so each lives 1-2 s), 200 concurrent callers for a bounded time (SOAK_SECONDS; 60 under CI, 15 otherwise).
 *  Zero expired tokens served, every served token accepted by the provider's API, upstream calls close to
 *  duration / (TTL - margin), memory flat. */
import { Effect } from "effect"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import { afterAll, describe, expect, it } from "vitest"
import { makeHarness, type Harness } from "../services/harness.ts"

// A real collection before each heap sample, so "flat" measures live memory, not garbage not yet collected.
setFlagsFromString("--expose-gc")
const gc = runInNewContext("gc") as () => void
const seconds = Number(process.env["SOAK_SECONDS"] ?? (process.env["CI"] === "true" ? 60 : 15))
let h: Harness | undefined
afterAll(() => h?.close())

describe("soak", () => {
  it(
    `200 callers for ${seconds} s on 2 s tokens: no expired token, ~1 upstream call per renewal, flat memory`,
    async () => {
      h = await makeHarness({ sandbox: { ttlSeconds: { dvinci: 2 } } })
      const engine = h.engine
      const deadline = Date.now() + seconds * 1000
      let served = 0,
        expired = 0
      const heap: number[] = []
      const caller = Effect.gen(function* () {
        while (Date.now() < deadline) {
          const r = yield* engine.getToken("dvinci")
          served++
          if (!r.expiresAt || r.expiresAt.getTime() <= Date.now()) expired++
          yield* Effect.sleep(`${5 + (served % 20)} millis`)
        }
      })
      const sampler = setInterval(() => {
        gc()
        heap.push(process.memoryUsage().heapUsed)
      }, 1000)
      try {
        await h.run(
          Effect.all(
            Array.from({ length: 200 }, () => caller),
            { concurrency: "unbounded" }
          )
        )
      } finally {
        clearInterval(sampler)
      }
      const upstream = h.sb.tokenRequests("dvinci").length
      // A 2 s token's JWT exp is whole seconds from a rounded-down iat, so it lives 1-2 s and is renewed inside its
      // margin (10 %): every 0.9-1.8 s of the run.
      expect(expired).toBe(0)
      expect(served).toBeGreaterThan(seconds * 1000)
      expect(upstream).toBeGreaterThanOrEqual(Math.floor(seconds / 1.8) - 1)
      expect(upstream).toBeLessThanOrEqual(Math.ceil((seconds / 0.9) * 1.15) + 2)
      const firstHalf = heap.slice(1, Math.max(2, heap.length / 2))
      const lastHalf = heap.slice(Math.max(1, heap.length / 2))
      const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
      expect(avg(lastHalf) - avg(firstHalf)).toBeLessThan(8 * 1024 * 1024)
      console.log(
        `soak: ${seconds} s, ${served} tokens served, ${expired} expired, ${upstream} upstream calls, heap ${Math.round(avg(firstHalf) / 1e6)} -> ${Math.round(avg(lastHalf) / 1e6)} MB`
      )
    },
    (seconds + 30) * 1000
  )
})
