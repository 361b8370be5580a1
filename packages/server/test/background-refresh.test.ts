/** Background refresh: when a connection is renewed (`plan`, on bundled manifests), the per-provider spacing on
 *  Effect's TestClock, and over real sockets that a caller polling a token that a slow provider renews every second
 *  is always answered from the cache, while the same server with background refresh off makes callers wait. */
import { assert, describe, it } from "@effect/vitest"
import type { Sandbox } from "@tessera/testkit"
import { Duration, Effect, Fiber, Option } from "effect"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { TestClock } from "effect/testing"
import { afterAll, beforeAll, expect, it as test } from "vitest"
import { Catalog, Config, RetryDelay, TokenStore, type Manifest } from "@tessera/engine"
import * as BackgroundRefresh from "../src/background-refresh.ts"
import {
  OPS_KEY,
  capture,
  configText,
  metricsText,
  parseConfig,
  raw,
  sample,
  sandbox,
  start
} from "./services/harness.ts"

const manifests = await Effect.runPromise(Catalog.load())
const manifest = (id: string): Manifest.Manifest => manifests.manifests.get(id)!
const settings = Config.defaultBackgroundRefresh
const hour = 3_600_000

describe("plan", () => {
  const now = 1_000 * hour
  const state = { obtainedAt: now, expiresAt: now + hour, hasRefreshToken: false }

  it("renews a used token lead_seconds plus jitter before its margin", () => {
    // d.vinci: margin min(60 s, 10 % of 1 h) = 60 s; lead 30 s; jitter up to 10 s.
    const base = { state, manifest: manifest("dvinci"), settings, lastUsed: now, now }
    assert.deepStrictEqual(BackgroundRefresh.plan({ ...base, random: 0 }), {
      at: now + hour - 60_000 - 30_000,
      kind: "warm",
      obtainedAt: now
    })
    assert.strictEqual(BackgroundRefresh.plan({ ...base, random: 0.5 })?.at, now + hour - 60_000 - 35_000)
  })

  it("leads a short-lived token by at most half the time before its margin, jitter by at most a quarter", () => {
    const short = { obtainedAt: now, expiresAt: now + 10_000, hasRefreshToken: false }
    // margin 1 s (10 % of 10 s); 9 s before it: lead 4.5 s, jitter up to 2.25 s.
    const p = (random: number) =>
      BackgroundRefresh.plan({ state: short, manifest: manifest("dvinci"), settings, lastUsed: now, now, random })
    assert.strictEqual(p(0)?.at, now + 9_000 - 4_500)
    assert.strictEqual(p(0.5)?.at, now + 9_000 - 4_500 - 1_125)
  })

  it("keeps nothing warm that no caller used within idle_after_seconds, and acquires at once for one that has no token", () => {
    const base = { state, manifest: manifest("dvinci"), settings, now, random: 0 }
    assert.strictEqual(BackgroundRefresh.plan({ ...base, lastUsed: undefined }), undefined)
    assert.strictEqual(BackgroundRefresh.plan({ ...base, lastUsed: now - settings.idleAfterSeconds * 1000 }), undefined)
    assert.deepStrictEqual(BackgroundRefresh.plan({ ...base, state: undefined, lastUsed: now }), {
      at: now,
      kind: "warm",
      obtainedAt: undefined
    })
  })

  it("keeps an unused refresh token alive keep_alive_seconds (a day by default) after its last renewal", () => {
    const withRefresh = { ...state, hasRefreshToken: true }
    const oauth2 = manifest("oauth2")
    assert.strictEqual(oauth2.refresh.keepAliveSeconds, 86_400)
    const p = BackgroundRefresh.plan({
      state: withRefresh,
      manifest: oauth2,
      settings,
      lastUsed: undefined,
      now,
      random: 0
    })
    assert.deepStrictEqual(p, { at: now + 24 * hour, kind: "keep_alive", obtainedAt: now })
    // Used too: the earlier of the two.
    const warm = BackgroundRefresh.plan({
      state: withRefresh,
      manifest: oauth2,
      settings,
      lastUsed: now,
      now,
      random: 0
    })
    assert.strictEqual(warm?.kind, "warm")
    // Off with keep_alive_seconds: 0, and meaningless without a refresh flow (d.vinci has none).
    const off = { ...oauth2, refresh: { ...oauth2.refresh, keepAliveSeconds: 0 } }
    assert.strictEqual(
      BackgroundRefresh.plan({ state: withRefresh, manifest: off, settings, lastUsed: undefined, now, random: 0 }),
      undefined
    )
    const dvinci = manifest("dvinci")
    assert.strictEqual(
      BackgroundRefresh.plan({ state: withRefresh, manifest: dvinci, settings, lastUsed: undefined, now, random: 0 }),
      undefined
    )
  })

  it("has the documented defaults, and reads server.background_refresh", async () => {
    assert.deepStrictEqual(Config.defaultBackgroundRefresh, {
      enabled: true,
      concurrency: 4,
      perProviderPerSecond: 5,
      leadSeconds: 30,
      jitterSeconds: 10,
      idleAfterSeconds: 3600
    })
    const text = [
      "connections: {}",
      "server:",
      "  background_refresh: { enabled: false, concurrency: 2, per_provider_per_second: 0.5, lead_seconds: 5, jitter_seconds: 0, idle_after_seconds: 600 }"
    ].join("\n")
    const c = await Effect.runPromise(Config.parse("/tmp/bg.yaml", text, {}))
    assert.deepStrictEqual(c.server.backgroundRefresh, {
      enabled: false,
      concurrency: 2,
      perProviderPerSecond: 0.5,
      leadSeconds: 5,
      jitterSeconds: 0,
      idleAfterSeconds: 600
    })
  })

  it("waits 5 s after a failure, doubling up to 5 min, jittered", async () => {
    const delays = await Effect.runPromise(
      Effect.forEach([1, 2, 3, 7, 20], (n) =>
        Effect.map(RetryDelay.after(BackgroundRefresh.failurePolicy, n, 0), (d) =>
          Duration.toSeconds(Option.getOrThrow(d))
        )
      )
    )
    for (const [i, base] of [5, 10, 20, 300, 300].entries()) {
      assert.isAtLeast(delays[i]!, base * 0.8)
      assert.isAtMost(delays[i]!, base * 1.2)
    }
  })

  it.effect("spaces renewals at one provider 1/per_second apart, each provider on its own (TestClock)", () =>
    Effect.gen(function* () {
      const slot = BackgroundRefresh.makeLimiter()
      const done: string[] = []
      const take = (p: string, n: number) =>
        Effect.andThen(
          slot(p, 2),
          Effect.sync(() => done.push(`${p}${n}`))
        )
      const fibers = yield* Effect.forEach(
        [
          ["a", 1],
          ["a", 2],
          ["a", 3],
          ["b", 1]
        ] as const,
        ([p, n]) => Effect.forkChild(take(p, n))
      )
      yield* Effect.yieldNow
      assert.deepStrictEqual(done, ["a1", "b1"])
      yield* TestClock.adjust("499 millis")
      assert.deepStrictEqual(done, ["a1", "b1"])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(done, ["a1", "b1", "a2"])
      yield* TestClock.adjust("500 millis")
      assert.deepStrictEqual(done, ["a1", "b1", "a2", "a3"])
      yield* Fiber.joinAll(fibers)
    })
  )
})

let sb: Sandbox
beforeAll(async () => {
  sb = await sandbox()
})
afterAll(() => sb.close())

const key = { authorization: `Bearer ${OPS_KEY}` }

/** Polls the token route for `ms`, returning each answer's latency and token. */
const poll = async (url: string, ms: number) => {
  const out: Array<{ ms: number; token: string }> = []
  const end = Date.now() + ms
  while (Date.now() < end) {
    const t0 = performance.now()
    const r = await raw(url, "/v1/connections/jobs/token", { headers: key })
    expect(r.status).toBe(200)
    out.push({ ms: performance.now() - t0, token: r.json().access_token })
    await new Promise((res) => setTimeout(res, 40))
  }
  return out
}

describe("over sockets", () => {
  const server = (enabled: boolean) =>
    parseConfig(
      configText(sb, {
        connections: ["jobs"],
        server: [`background_refresh: { enabled: ${enabled}, lead_seconds: 1, jitter_seconds: 0 }`]
      }).replace(/^http:.*$/m, "http: { timeout_ms: 3000, total_timeout_ms: 5000, retries: 0 }")
    )

  test("answers every caller from the cache while a slow provider's 2 s tokens are renewed behind it", async () => {
    sb.reset()
    sb.setTtl("dvinci", 2)
    const s = await start(await server(true), capture())
    try {
      expect((await raw(s.url, "/v1/connections/jobs/token", { headers: key })).status).toBe(200) // cold: waits once
      sb.inject("dvinci", { type: "delay", ms: 400 }, Number.POSITIVE_INFINITY)
      const before = sb.tokenRequests("dvinci").length
      const answers = await poll(s.url, 4_000)
      const renewals = sb.tokenRequests("dvinci").length - before
      // Tokens of 2 s renewed 0.75 s in (the margin is the 0.5 s serve floor, lead 0.75 s: half the time before it):
      // 3 or more in 4 s.
      expect(renewals).toBeGreaterThanOrEqual(3)
      expect(new Set(answers.map((a) => a.token)).size).toBeGreaterThanOrEqual(3)
      // Never the provider's 400 ms: every answer came from the cache.
      expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(300)
      // Every renewal the provider saw is counted once it completes: between two renewals (400 ms each, 1.1 s
      // apart) the counts agree.
      const counted = async () =>
        sample(await metricsText(s.url), "tessera_background_renewals_total", `{provider="dvinci",outcome="renewed"}`)
      const deadline = Date.now() + 3000
      let agreed = false
      while (!agreed && Date.now() < deadline) {
        agreed = (await counted()) === sb.tokenRequests("dvinci").length - before
        if (!agreed) await new Promise((r) => setTimeout(r, 50))
      }
      expect(agreed).toBe(true)
    } finally {
      await s.close()
    }
  }, 20_000)

  test("renews at most `concurrency` tokens at once", async () => {
    // A token endpoint that counts the requests in flight: 2 s tokens, answered after 300 ms.
    let inFlight = 0
    let most = 0
    let served = 0
    const endpoint = http.createServer((req, res) => {
      req.resume()
      inFlight++
      most = Math.max(most, inFlight)
      setTimeout(() => {
        inFlight--
        served++
        res.writeHead(200, { "content-type": "application/json" })
        res.end(JSON.stringify({ access_token: `t-${served}-${Math.random()}`, token_type: "Bearer", expires_in: 2 }))
      }, 300)
    })
    await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r))
    const url = `http://127.0.0.1:${(endpoint.address() as AddressInfo).port}/token`
    const names = ["c1", "c2", "c3", "c4"]
    const text = [
      "connections:",
      ...names.map(
        (n) =>
          `  ${n}: { provider: oauth2, inputs: { token_url: "${url}", client_id: ${n}, client_secret: s3cr3t-${n} } }`
      ),
      "server:",
      "  background_refresh: { concurrency: 2, per_provider_per_second: 1000, lead_seconds: 1, jitter_seconds: 0 }",
      "http: { timeout_ms: 3000, total_timeout_ms: 5000, retries: 0 }"
    ].join("\n")
    const s = await start(await parseConfig(text), capture())
    try {
      // Used at once: their tokens come due together.
      await Promise.all(names.map((n) => raw(s.url, `/v1/connections/${n}/token`)))
      most = 0
      const before = served
      await new Promise((r) => setTimeout(r, 3_000))
      expect(served - before).toBeGreaterThanOrEqual(4)
      expect(most).toBe(2)
    } finally {
      await s.close()
      await new Promise<void>((r) => endpoint.close(() => r()))
    }
  }, 20_000)

  test("keeps alive, on keep_alive_seconds, a refresh token this instance never served (found in the store)", async () => {
    sb.reset()
    const dir = mkdtempSync(join(tmpdir(), "tessera-keepalive-"))
    try {
      const manifestPath = new URL("../../../providers/oauth2.yaml", import.meta.url)
      writeFileSync(
        join(dir, "oauth2.yaml"),
        `${readFileSync(manifestPath, "utf8")}refresh:\n  keep_alive_seconds: 1\n`
      )
      const text = configText(sb, { connections: ["jobs", "oauth-pw"], extra: `providers: ["${dir}"]` })
      const store = TokenStore.makeMemory()
      const refreshes = () =>
        sb.tokenRequests("oauth2").filter((r) => r.form?.["grant_type"] === "refresh_token").length
      const first = await start(await parseConfig(text), capture(), { store })
      expect((await raw(first.url, "/v1/connections/oauth-pw/token", { headers: key })).status).toBe(200)
      await first.close()
      expect(refreshes()).toBe(0)
      // A new instance on the same store: nobody calls it, and it still redeems the idle refresh token.
      const second = await start(await parseConfig(text), capture(), { store })
      try {
        const t0 = Date.now()
        while (refreshes() === 0 && Date.now() - t0 < 5_000) await new Promise((r) => setTimeout(r, 50))
        expect(refreshes()).toBe(1)
        expect(second.url).toBeTruthy()
      } finally {
        await second.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 20_000)

  test("without it, a caller waits for the provider when the token enters its margin", async () => {
    sb.reset()
    sb.setTtl("dvinci", 2)
    const s = await start(await server(false), capture())
    try {
      expect((await raw(s.url, "/v1/connections/jobs/token", { headers: key })).status).toBe(200)
      sb.inject("dvinci", { type: "delay", ms: 400 }, Number.POSITIVE_INFINITY)
      const answers = await poll(s.url, 3_000)
      expect(Math.max(...answers.map((a) => a.ms))).toBeGreaterThan(390)
    } finally {
      await s.close()
    }
  }, 20_000)
})
