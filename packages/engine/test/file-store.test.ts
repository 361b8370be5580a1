/** The encrypted file store: private permissions, ciphertext at rest, key ids, corrupt files as misses, and one
 *  upstream request for several processes sharing the cache. */
import { Effect, Redacted } from "effect"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { startSandbox } from "@tessera/testkit"
import * as FileStore from "../src/file-store.ts"
import type { Entry } from "../src/token-store.ts"

let dir: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "tessera-fs-"))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

const entry: Entry = {
  connection: "c",
  provider: "p",
  token: {
    v: 1,
    access_token: "at-SECRET-VALUE-123",
    refresh_token: "rt-SECRET-VALUE-456",
    token_type: "Bearer",
    expires_at: 2e12,
    obtained_at: 1e12,
    expiry_source: "expires_in"
  }
}

describe("file store", () => {
  it("writes 0600 files in a 0700 directory, holding only ciphertext", async () => {
    const store = await Effect.runPromise(FileStore.makeFile({ dir }))
    await Effect.runPromise(store.set("k1", entry))
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    const file = join(dir, "k1.token")
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const raw = readFileSync(file, "utf8")
    expect(raw).not.toContain("SECRET-VALUE")
    expect(raw).not.toContain("access_token")
    expect(JSON.parse(raw)).toMatchObject({ v: 1, kid: expect.stringMatching(/^[0-9a-f]{8}$/) })
    expect(await Effect.runPromise(store.get("k1"))).toEqual(entry)
  })

  it("a configured key is used, and an entry sealed with another key reads as a miss", async () => {
    const key = Buffer.alloc(32, 7).toString("base64")
    const a = await Effect.runPromise(FileStore.makeFile({ dir, encryptionKey: Redacted.make(key) }))
    await Effect.runPromise(a.set("k", entry))
    expect(await Effect.runPromise(a.get("k"))).toEqual(entry)
    const b = await Effect.runPromise(
      FileStore.makeFile({ dir, encryptionKey: Redacted.make(Buffer.alloc(32, 8).toString("hex")) })
    )
    expect(await Effect.runPromise(b.get("k"))).toBeUndefined()
  })

  it("rejects an encryption key that is not 32 bytes, without echoing it", async () => {
    const r = await Effect.runPromise(
      Effect.result(FileStore.makeFile({ dir, encryptionKey: Redacted.make("short-key-material") }))
    )
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") {
      expect(r.failure.message).toMatch(/32 bytes/)
      expect(r.failure.message).not.toContain("short-key-material")
    }
  })

  it("a tampered or corrupt file is a miss, not a crash", async () => {
    const store = await Effect.runPromise(FileStore.makeFile({ dir }))
    await Effect.runPromise(store.set("k", entry))
    const sealed = JSON.parse(readFileSync(join(dir, "k.token"), "utf8"))
    sealed.ct = Buffer.from("tampered").toString("base64")
    writeFileSync(join(dir, "k.token"), JSON.stringify(sealed))
    expect(await Effect.runPromise(store.get("k"))).toBeUndefined()
    writeFileSync(join(dir, "k.token"), "{not json")
    expect(await Effect.runPromise(store.get("k"))).toBeUndefined()
  })

  it("readEntry reads what the store wrote, without Effect and without creating anything", async () => {
    const empty = join(dir, "none")
    expect(await FileStore.readEntry(empty, "k")).toBeUndefined()
    expect(() => statSync(empty)).toThrow()
    const store = await Effect.runPromise(FileStore.makeFile({ dir }))
    await Effect.runPromise(store.set("k", entry))
    expect(await FileStore.readEntry(dir, "k")).toEqual(entry)
    expect(await FileStore.readEntry(dir, "other")).toBeUndefined()
    writeFileSync(join(dir, "k.token"), "{not json")
    expect(await FileStore.readEntry(dir, "k")).toBeUndefined()
  })

  it("list and clear see only token files", async () => {
    const store = await Effect.runPromise(FileStore.makeFile({ dir }))
    await Effect.runPromise(store.set("a", entry))
    await Effect.runPromise(store.set("b", entry))
    expect((await Effect.runPromise(store.list())).map(([k]) => k)).toEqual(["a", "b"])
    expect(await Effect.runPromise(store.clear())).toBe(2)
    expect(readdirSync(dir).filter((f) => f.endsWith(".token"))).toEqual([])
  })

  it("a stale lock left by a dead process is taken over after the lease", async () => {
    writeFileSync(join(dir, "k.lock"), JSON.stringify({ pid: 999999, until: 0 }))
    const past = new Date(Date.now() - 60_000)
    const { utimesSync } = await import("node:fs")
    utimesSync(join(dir, "k.lock"), past, past)
    const store = await Effect.runPromise(FileStore.makeFile({ dir, leaseMs: 1000 }))
    const v = await Effect.runPromise(Effect.timeout(store.withLock("k", Effect.succeed("ran")), "3 seconds"))
    expect(v).toBe("ran")
  })

  it("four processes sharing one cache make a single upstream request", async () => {
    const sb = await startSandbox()
    try {
      sb.inject("oauth2", { type: "delay", ms: 300 })
      const worker = fileURLToPath(new URL("./services/file-store-worker.ts", import.meta.url))
      const c = sb.credentials.oauth2
      const run = () =>
        promisify(execFile)(process.execPath, [worker, dir, c["token_url"]!, c["client_id"]!, c["client_secret"]!], {
          timeout: 20_000
        })
      const outs = await Promise.all([run(), run(), run(), run()])
      const tokens = outs.map((o) => o.stdout.trim())
      expect(new Set(tokens).size).toBe(1)
      expect(sb.tokenRequests("oauth2")).toHaveLength(1)
    } finally {
      await sb.close()
    }
  })
})
