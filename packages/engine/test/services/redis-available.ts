/** Whether the Redis the tests use is reachable, and the SKIP rule: without one the Redis suites are skipped with a
 *  clear line, except on CI (`CI=true`), where they fail. Also small helpers every Redis test needs: a unique key
 *  prefix per test, a plain client to look at raw keys, and a key for the encrypted values. */
import { randomBytes } from "node:crypto"
import { createClient } from "redis"
import { describe, it } from "vitest"

export const redisUrl = process.env["REDIS_URL"] || "redis://127.0.0.1:6379"

export type RawClient = ReturnType<typeof createClient>

const reachable = async (url: string): Promise<boolean> => {
  const c: RawClient = createClient({
    url,
    disableOfflineQueue: true,
    socket: { connectTimeout: 1000, reconnectStrategy: false }
  })
  c.on("error", () => undefined)
  try {
    await Promise.race([
      c.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error("timeout")), 1500).unref())
    ])
    return (await c.ping()) === "PONG"
  } catch {
    return false
  } finally {
    if (c.isOpen) c.destroy()
  }
}

export const redisUp: boolean = await reachable(redisUrl)

/** `describe` when Redis is up; otherwise a printed SKIP line (or, on CI, one failing test that says why). */
export const describeRedis = (name: string, body: () => void): void => {
  if (redisUp) {
    describe(name, body)
    return
  }
  const why = `no Redis at ${redisUrl} (set REDIS_URL)`
  if (process.env["CI"] === "true") {
    describe(name, () => {
      it("needs a reachable Redis on CI", () => {
        throw new Error(`redis tests cannot run: ${why}`)
      })
    })
    return
  }
  console.log(`SKIP redis tests (${name}): ${why}`)
  describe.skip(name, body)
}

/** A key prefix no other test (or run) uses. */
export const uniquePrefix = (label: string) => `tessera-test:${label}:${randomBytes(4).toString("hex")}:`

/** A plain client, without tessera in between (one connection attempt, no reconnecting). */
export const rawClient = async (url = redisUrl): Promise<RawClient> => {
  const c: RawClient = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } })
  c.on("error", () => undefined)
  await c.connect()
  return c
}

/** Deletes every key under the prefix. */
export const dropPrefix = async (c: RawClient, prefix: string): Promise<number> => {
  const keys: string[] = []
  for await (const batch of c.scanIterator({ MATCH: `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, COUNT: 500 }))
    keys.push(...batch)
  return keys.length > 0 ? c.unlink(keys) : 0
}

export const keysUnder = async (c: RawClient, prefix: string): Promise<string[]> => {
  const keys: string[] = []
  for await (const batch of c.scanIterator({ MATCH: `${prefix.replace(/[*?[\]\\]/g, "\\$&")}*`, COUNT: 500 }))
    keys.push(...batch)
  return [...new Set(keys)].sort()
}

export const newEncryptionKey = () => randomBytes(32).toString("base64")

/** Polls `check` until it holds or `ms` pass; returns whether it held. */
export const eventually = async (
  check: () => boolean | Promise<boolean>,
  ms: number,
  everyMs = 50
): Promise<boolean> => {
  const until = Date.now() + ms
  for (;;) {
    if (await check()) return true
    if (Date.now() > until) return false
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
