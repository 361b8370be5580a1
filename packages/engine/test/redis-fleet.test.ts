/** Several tessera instances (separate processes, see services/redis-worker.ts) sharing one Redis store: one
 *  upstream acquisition for 1000 concurrent cold requests, a killed lock holder's lock freed as soon as its
 *  connection is gone, and a rotating refresh token redeemed by exactly one instance. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { afterEach, expect, it } from "vitest"
import {
  describeRedis,
  dropPrefix,
  eventually,
  keysUnder,
  newEncryptionKey,
  rawClient,
  redisUrl,
  uniquePrefix,
  type RawClient
} from "./services/redis-available.ts"
import { startWorker, stopAll } from "./services/redis-fleet.ts"
import type { WorkerSettings } from "./services/redis-worker.ts"

let sb: Sandbox | undefined
let raw: RawClient | undefined
let prefix: string | undefined

afterEach(async () => {
  await stopAll()
  await sb?.close()
  sb = undefined
  if (prefix) {
    raw ??= await rawClient()
    await dropPrefix(raw, prefix)
    prefix = undefined
  }
  raw?.destroy()
  raw = undefined
})

const settings = (s: Sandbox, label: string, extra: Partial<WorkerSettings> = {}): WorkerSettings => {
  prefix = uniquePrefix(label)
  return {
    redisUrl,
    keyPrefix: prefix,
    encryptionKey: newEncryptionKey(),
    connections: {
      cube: { provider: "cube", inputs: s.credentials.cube },
      brandbox: { provider: "brandbox", inputs: s.credentials.brandbox }
    },
    ...extra
  }
}

describeRedis("Redis store across processes", () => {
  it("1000 concurrent cold requests over 3 instances cause exactly one upstream acquisition, and all get the same token", async () => {
    sb = await startSandbox()
    const s = settings(sb, "fleet")
    const workers = await Promise.all([0, 1, 2].map(() => startWorker(s)))
    sb.inject("cube", { type: "delay", ms: 200 }) // widens the window in which the other instances race
    const replies = await Promise.all(workers.map((w, i) => w.get("cube", i === 0 ? 334 : 333)))
    expect(replies.flatMap((r) => r.errors)).toEqual([])
    const results = replies.flatMap((r) => r.results)
    expect(results).toHaveLength(1000)
    expect(sb.tokenRequests("cube")).toHaveLength(1)
    expect(new Set(results.map((r) => r.token)).size).toBe(1)
    // One instance acquired; the other two waited for its lock and found the token in Redis.
    const acquiring = replies.filter((r) => r.results.some((x) => x.action === "acquired"))
    expect(acquiring).toHaveLength(1)
    expect(replies.filter((r) => r !== acquiring[0]).flatMap((r) => r.results.map((x) => x.action))).toSatisfy(
      (a: string[]) => a.every((x) => x === "reused")
    )
  })

  it("a lock holder killed while its upstream request hangs frees the lock at once (its connection closes), not after the lease", async () => {
    sb = await startSandbox()
    const leaseMs = 10_000
    const s = settings(sb, "kill", { leaseMs })
    const [holder, other] = await Promise.all([startWorker(s), startWorker(s)])
    sb.inject("cube", { type: "delay", ms: 15_000 })
    void holder.get("cube", 1).catch(() => undefined)
    raw = await rawClient()
    expect(await eventually(async () => (await keysUnder(raw!, `${prefix}lock:`)).length === 1, 5000, 10)).toBe(true)
    expect(await eventually(() => sb!.tokenRequests("cube").length === 1, 5000, 10)).toBe(true) // its request is upstream now
    await holder.kill()
    const killedAt = Date.now()
    const r = await other.get("cube", 1)
    const waited = Date.now() - killedAt
    expect(r.errors).toEqual([])
    expect(r.results.map((x) => x.action)).toEqual(["acquired"])
    // Not the dead holder's lease (10 s, renewed every third of it until the kill): its connection is gone, so the
    // other frees its lock as soon as it finds it held.
    expect(waited).toBeLessThan(3000)
    expect(sb.tokenRequests("cube")).toHaveLength(2) // the dead holder's (never answered) and the other's
  })

  it("refresh-token rotation across two instances: exactly one refresh_token grant redeems the token", async () => {
    sb = await startSandbox({ ttlSeconds: { brandbox: 2 } })
    const s = settings(sb, "rotate")
    const [a, b] = await Promise.all([startWorker(s), startWorker(s)])
    const first = await a.get("brandbox", 1)
    const shared = await b.get("brandbox", 1)
    expect(first.results[0]!.action).toBe("acquired")
    expect(shared.results[0]).toEqual({ token: first.results[0]!.token, action: "reused" })
    await new Promise((r) => setTimeout(r, 2000)) // the access token is now expired; the refresh token is not
    sb.inject("brandbox", { type: "delay", ms: 200 })
    const [ra, rb] = await Promise.all([a.get("brandbox", 20), b.get("brandbox", 20)])
    expect([...ra.errors, ...rb.errors]).toEqual([])
    // The sandbox rejects a reused refresh token, so a second redemption would show up as a refresh_token grant
    // answered invalid_grant followed by a password login.
    expect(sb.tokenRequests("brandbox").map((q) => q.form?.["grant_type"])).toEqual(["password", "refresh_token"])
    const tokens = new Set([...ra.results, ...rb.results].map((x) => x.token))
    expect(tokens.size).toBe(1)
    expect(tokens.has(first.results[0]!.token)).toBe(false)
    expect([ra, rb].map((r) => r.results[0]!.action).sort()).toEqual(["refreshed", "reused"])
  })
})
