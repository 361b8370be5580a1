/** The device authorization grant (RFC 8628) against the loopback grant server: the device authorization request
 *  and the polls on the wire, the interval and slow_down on the Clock (TestClock: virtual seconds, real sockets),
 *  access_denied and expired_token, and the grant kept in the connection store. */
import { it as effectIt } from "@effect/vitest"
import { Effect, Fiber, Redacted } from "effect"
import { TestClock } from "effect/testing"
import { afterEach, describe, expect, it } from "vitest"
import { client, startGrantServer, type GrantServer } from "@tessera/testkit/grant-server"
import { makeMemory } from "../src/connection-store.ts"
import { grantInputs, makeGrantEngine } from "./services/grant-engine.ts"

let gs: GrantServer | undefined
afterEach(async () => {
  await gs?.close()
  gs = undefined
})

const setup = async (opts: Parameters<typeof startGrantServer>[0] = {}, inputs: Record<string, string> = {}) => {
  gs = await startGrantServer(opts)
  const store = makeMemory()
  const g = await makeGrantEngine({
    connections: {
      tv: {
        provider: "oauth2",
        inputs: grantInputs(gs, { grant_type: "urn:ietf:params:oauth:grant-type:device_code", ...inputs })
      }
    },
    connectionStore: store
  })
  return { ...g, store, gs }
}

const polls = (s: GrantServer) => s.requests.filter((r) => r.path === "/token")
const basic = `Basic ${Buffer.from(`${client.id}:${client.secret}`).toString("base64")}`

describe("device authorization grant", () => {
  it("asks for a device code and polls with the device_code grant, exactly as RFC 8628 §3.1 and §3.4 say", async () => {
    const { engine, run, store, gs } = await setup({ interval: 1 })
    const started = await run(engine.grants.startDevice("tv"))
    const [ask] = gs.requests
    expect(ask!.path).toBe("/device")
    expect(ask!.headers["authorization"]).toBe(basic)
    expect(ask!.body).toBe("scope=read+write")
    expect(started.userCode).toMatch(/^[0-9A-F]{8}$/)
    expect(started.verificationUri).toBe(`${gs.origin}/activate`)
    expect(started.verificationUriComplete).toBe(`${gs.origin}/activate?user_code=${started.userCode}`)
    expect(started.interval).toBe(1)
    const waits: string[] = []
    const done = run(engine.grants.completeDevice("tv", started, (w) => Effect.sync(() => void waits.push(w.reason))))
    while (polls(gs).length === 0) await new Promise((r) => setTimeout(r, 20))
    gs.approve(started.userCode)
    const r = await done
    expect(waits).toEqual(["authorization_pending"])
    expect(polls(gs)).toHaveLength(2)
    for (const p of polls(gs)) {
      expect(p.headers["authorization"]).toBe(basic)
      expect(p.body).toBe(
        new URLSearchParams({
          grant_type: "urn:ietf:params:oauth:grant-type:device_code",
          device_code: Redacted.value(started.deviceCode)
        }).toString()
      )
    }
    expect(r.hasRefreshToken).toBe(true)
    expect((await run(store.getGrant("tv")))?.status).toBe("active")
    expect((await run(engine.getToken("tv", { force: true }))).decision.action).toBe("refreshed")
  })

  it("ends with a clear failure on access_denied and on expired_token", async () => {
    const { engine, run, fail, gs } = await setup({ interval: 1 })
    const started = await run(engine.grants.startDevice("tv"))
    gs.denyDevice(started.userCode)
    const denied = await fail(engine.grants.completeDevice("tv", started))
    expect(denied).toMatchObject({ _tag: "AuthorizationFailed", reason: "denied" })
    const expired = await fail(
      engine.grants.completeDevice("tv", { ...(await run(engine.grants.startDevice("tv"))), expiresAt: 0 })
    )
    expect(expired).toMatchObject({ _tag: "AuthorizationFailed", reason: "expired" })
    expect(expired.message).toContain("start again")
  })

  effectIt.effect("waits `interval` seconds between polls on the Clock, and slow_down adds 5 s for good", () =>
    Effect.gen(function* () {
      const { engine, gs } = yield* Effect.promise(() => setup({ interval: 2, slowDowns: 1 }))
      const started = yield* engine.grants.startDevice("tv")
      expect(started.interval).toBe(2)
      const fiber = yield* Effect.forkChild(engine.grants.completeDevice("tv", started))
      const at: number[] = []
      for (let second = 1; second <= 20; second++) {
        yield* TestClock.adjust("1 second")
        // The poll that became due goes over a real socket: give it real time to arrive and be answered.
        const seen = polls(gs).length
        const until = Date.now() + 150
        while (Date.now() < until && polls(gs).length === seen)
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 20)))
        for (let i = at.length; i < polls(gs).length; i++) at.push(second)
        if (at.length === 2) gs.approve(started.userCode)
        if (at.length === 3) break
      }
      yield* Fiber.join(fiber)
      // 2 s, then slow_down: 7 s, then authorization_pending keeps the new 7 s, then the approved poll.
      expect(at).toEqual([2, 9, 16])
    })
  )

  it("refuses an unusable device authorization answer and a manifest without a device section", async () => {
    const { engine, fail } = await setup({}, { device_authorization_url: "http://127.0.0.1:1/nothing" })
    const e = await fail(engine.grants.startDevice("tv"))
    expect(e._tag).toBe("TransportError")
    const cube = await makeGrantEngine({
      connections: { c: { provider: "cube", inputs: { tenant: "t", client_id: "i", client_secret: "s" } } },
      connectionStore: makeMemory()
    })
    expect(await cube.fail(cube.engine.grants.startDevice("c"))).toMatchObject({ reason: "unsupported" })
  })
})
