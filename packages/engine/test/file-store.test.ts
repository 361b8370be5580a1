/** The encrypted file store: private permissions, ciphertext bound to its entry, key ids, corrupt files as misses,
 *  one upstream request for several processes sharing the cache, and a cache whose damage never blocks work: a
 *  damaged key file, a lock left by a dead process, a directory tessera does not own, a write that fails. */
import { Cause, Effect, Logger, Redacted, References } from "effect"
import { execFile, spawn } from "node:child_process"
import {
  chownSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync
} from "node:fs"
import { hostname, tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterEach, beforeEach, describe, expect, it } from "vitest"
import { startSandbox } from "@tessera/testkit"
import * as Config from "../src/config.ts"
import * as Engine from "../src/engine.ts"
import * as FileStore from "../src/file-store.ts"
import { makeMemory, type Entry } from "../src/token-store.ts"

let root: string
/** A cache directory that does not exist yet: the store creates it, so tessera owns it. */
let dir: string
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), "tessera-fs-"))
  dir = join(root, "cache")
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

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

/** Runs an effect, collecting its log lines (warnings included). */
const logged: string[] = []
const run = <A, E>(eff: Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(
    eff.pipe(
      Effect.provide(
        Logger.layer([
          Logger.make<unknown, void>((o) => {
            logged.push(
              `${String(o.logLevel)} ${String(o.message)}${Cause.hasFails(o.cause) ? Cause.pretty(o.cause) : ""}`
            )
          })
        ])
      ),
      Effect.provideService(References.MinimumLogLevel, "Trace")
    )
  )
const warnings = () => logged.filter((l) => l.startsWith("Warn"))
beforeEach(() => {
  logged.length = 0
})

const open = (opts: FileStore.FileStoreOptions = {}) => run(FileStore.makeFile({ dir, ...opts }))
const worker = fileURLToPath(new URL("./services/file-store-worker.ts", import.meta.url))

describe("file store", () => {
  it("writes 0600 files in a 0700 directory it marks as its own, holding only ciphertext", async () => {
    const store = await open()
    await run(store.set("k1", entry))
    expect(store.dir).toBe(dir)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    expect(readFileSync(join(dir, ".tessera-cache"), "utf8")).toContain("tessera's token cache")
    const file = join(dir, "k1.token")
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const raw = readFileSync(file, "utf8")
    expect(raw).not.toContain("SECRET-VALUE")
    expect(raw).not.toContain("access_token")
    expect(JSON.parse(raw)).toMatchObject({ v: 1, kid: expect.stringMatching(/^[0-9a-f]{8}$/) })
    expect(await run(store.get("k1"))).toEqual(entry)
  })

  it("a configured key is used, and an entry sealed with another key reads as a miss", async () => {
    const key = Buffer.alloc(32, 7).toString("base64")
    const a = await open({ encryptionKey: Redacted.make(key) })
    await run(a.set("k", entry))
    expect(await run(a.get("k"))).toEqual(entry)
    const b = await open({ encryptionKey: Redacted.make(Buffer.alloc(32, 8).toString("hex")) })
    expect(await run(b.get("k"))).toBeUndefined()
    expect(existsSync(join(dir, "key"))).toBe(false)
  })

  it("rejects an encryption key that is not 32 bytes, without echoing it", async () => {
    const r = await run(Effect.result(FileStore.makeFile({ dir, encryptionKey: Redacted.make("short-key-material") })))
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") {
      expect(r.failure.message).toMatch(/32 bytes/)
      expect(r.failure.message).not.toContain("short-key-material")
    }
  })

  it("a tampered or corrupt file is a miss, not a crash", async () => {
    const store = await open()
    await run(store.set("k", entry))
    const sealed = JSON.parse(readFileSync(join(dir, "k.token"), "utf8"))
    sealed.ct = Buffer.from("tampered").toString("base64")
    writeFileSync(join(dir, "k.token"), JSON.stringify(sealed))
    expect(await run(store.get("k"))).toBeUndefined()
    writeFileSync(join(dir, "k.token"), "{not json")
    expect(await run(store.get("k"))).toBeUndefined()
  })

  it("a file copied to another entry's name does not open there: a miss, with one warning", async () => {
    const store = await open()
    await run(store.set("aaa", entry))
    await run(store.set("bbb", { ...entry, connection: "other" }))
    copyFileSync(join(dir, "aaa.token"), join(dir, "bbb.token"))
    copyFileSync(join(dir, "aaa.token"), join(dir, "ccc.token"))
    expect(await run(store.get("aaa"))).toEqual(entry)
    expect(await run(store.get("bbb"))).toBeUndefined()
    expect(await run(store.get("ccc"))).toBeUndefined()
    expect((await run(store.list())).map(([k]) => k)).toEqual(["aaa"])
    const w = warnings().filter((l) => l.includes("does not open"))
    expect(w).toHaveLength(1)
    expect(w[0]).toContain(join(dir, "bbb.token"))
  })

  it("list and clear see only token files, and clear removes temp files left by killed runs", async () => {
    const store = await open()
    await run(store.set("a", entry))
    await run(store.set("b", entry))
    writeFileSync(join(dir, "a.token.123.abcd.tmp"), "")
    expect((await run(store.list())).map(([k]) => k)).toEqual(["a", "b"])
    expect(await run(store.clear())).toBe(2)
    expect(readdirSync(dir).sort()).toEqual([".tessera-cache", "key"])
  })

  it("four processes sharing one cache make a single upstream request", async () => {
    const sb = await startSandbox()
    try {
      sb.inject("oauth2", { type: "delay", ms: 300 })
      const c = sb.credentials.oauth2
      const once = () =>
        promisify(execFile)(process.execPath, [worker, dir, c["token_url"]!, c["client_id"]!, c["client_secret"]!], {
          timeout: 20_000
        })
      const outs = await Promise.all([once(), once(), once(), once()])
      const tokens = outs.map((o) => o.stdout.trim())
      expect(new Set(tokens).size).toBe(1)
      expect(sb.tokenRequests("oauth2")).toHaveLength(1)
    } finally {
      await sb.close()
    }
  })
})

describe("the key file", () => {
  it("eight first runs at once agree on one directory and one key: none sees either half made", async () => {
    // Three rounds, each on a directory not there yet: a run that saw the directory before its marker took it for a
    // foreign one and used its tessera/ subdirectory, under a key of its own (its token then missing from the list).
    for (const round of [1, 2, 3]) {
      const at = join(root, `cache-${round}`)
      const once = (i: number) =>
        promisify(execFile)(process.execPath, [worker, at, "--seal", `k${i}`], { timeout: 20_000 })
      const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => once(i)))
      expect(outs.map((o) => o.stdout.trim())).toEqual(Array.from({ length: 8 }, () => "sealed"))
      expect(existsSync(join(at, "tessera")), `round ${round}: a run used the subdirectory`).toBe(false)
      const store = await open({ dir: at })
      expect((await run(store.list())).map(([k]) => k)).toEqual(["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"])
      expect(readdirSync(at).filter((n) => n.endsWith(".tmp"))).toEqual([])
      expect(readdirSync(root).filter((n) => n.endsWith(".tmp"))).toEqual([])
    }
  })

  for (const [what, content] of [
    ["garbage", "not a key at all"],
    ["empty (a write cut short)", ""]
  ] as const) {
    it(`a damaged key file (${what}) is moved aside with a warning, and the cache works again`, async () => {
      const first = await open()
      await run(first.set("k", entry))
      writeFileSync(join(dir, "key"), content)
      const store = await open()
      const w = warnings()
      expect(w).toHaveLength(1)
      expect(w[0]).toContain(`cache key file ${join(dir, "key")}`)
      expect(w[0]).toMatch(/moved it to .*key\.damaged-.* and started a new key/)
      const aside = readdirSync(dir).filter((n) => n.startsWith("key.damaged-"))
      expect(aside).toHaveLength(1)
      expect(readFileSync(join(dir, aside[0]!), "utf8")).toBe(content)
      expect(await run(store.get("k"))).toBeUndefined() // sealed under the old key: a miss
      await run(store.set("k", entry))
      expect(await run((await open()).get("k"))).toEqual(entry)
    })
  }

  it("a key file that is a directory is moved aside too", async () => {
    mkdirSync(join(dir, "key"), { recursive: true })
    writeFileSync(join(dir, ".tessera-cache"), "")
    const store = await open()
    expect(warnings()[0]).toContain("is a directory")
    await run(store.set("k", entry))
    expect(await run(store.get("k"))).toEqual(entry)
  })
})

describe("locks", () => {
  const lockOf = (pid: number, host = hostname()) =>
    JSON.stringify({ pid, host, started_at: new Date().toISOString(), nonce: "n0nce" })

  /** The pid of a process that has just exited. */
  const deadPid = async () => {
    const child = spawn(process.execPath, ["-e", ""])
    await new Promise((r) => child.on("exit", r))
    return child.pid!
  }

  it("a lock left by a dead process on this host (Ctrl-C, SIGKILL) is taken over at once", async () => {
    const store = await open()
    writeFileSync(join(dir, "k.lock"), lockOf(await deadPid()))
    const t0 = Date.now()
    const v = await run(Effect.timeout(store.withLock("k", Effect.succeed("ran")), "3 seconds"))
    expect(v).toBe("ran")
    expect(Date.now() - t0).toBeLessThan(1000)
    expect(warnings()).toEqual([])
    expect(existsSync(join(dir, "k.lock"))).toBe(false)
  })

  it("a lock in the old format, or from another host, is taken over after the lease", async () => {
    const store = await open({ leaseMs: 1000 })
    for (const content of [JSON.stringify({ pid: 999999, until: 0 }), lockOf(process.pid, "another-host")]) {
      writeFileSync(join(dir, "k.lock"), content)
      const past = new Date(Date.now() - 60_000)
      utimesSync(join(dir, "k.lock"), past, past)
      expect(await run(Effect.timeout(store.withLock("k", Effect.succeed("ran")), "3 seconds"))).toBe("ran")
    }
    expect(warnings().filter((l) => l.includes("taking over the cache lock"))).toHaveLength(2)
  })

  it("a live holder is waited for, with a message after a second naming it", async () => {
    const store = await open()
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"])
    try {
      writeFileSync(join(dir, "k.lock"), lockOf(holder.pid!))
      setTimeout(() => rmSync(join(dir, "k.lock")), 1600)
      const t0 = Date.now()
      expect(await run(store.withLock("k", Effect.succeed("ran")))).toBe("ran")
      expect(Date.now() - t0).toBeGreaterThanOrEqual(1500)
      const w = warnings()
      expect(w).toHaveLength(1)
      expect(w[0]).toContain(
        `waiting for the cache lock ${join(dir, "k.lock")}, held by pid ${holder.pid} on ${hostname()}`
      )
    } finally {
      holder.kill()
    }
  })

  it("a lock records its holder while held, and is gone after", async () => {
    const store = await open()
    const seen = await run(
      store.withLock(
        "k",
        Effect.sync(() => JSON.parse(readFileSync(join(dir, "k.lock"), "utf8")) as Record<string, unknown>)
      )
    )
    expect(seen).toMatchObject({ pid: process.pid, host: hostname(), started_at: expect.stringMatching(/^\d{4}-/) })
    expect(existsSync(join(dir, "k.lock"))).toBe(false)
  })
})

describe("a directory tessera does not own", () => {
  it("an existing directory without the marker is left alone: the cache goes into its tessera/ subdirectory", async () => {
    mkdirSync(dir, { mode: 0o755 })
    writeFileSync(join(dir, "someone-elses.token"), "not ours")
    const store = await open()
    expect(store.dir).toBe(join(dir, "tessera"))
    await run(store.set("k", entry))
    expect(await run(store.clear())).toBe(1)
    expect(statSync(dir).mode & 0o777).toBe(0o755)
    expect(readFileSync(join(dir, "someone-elses.token"), "utf8")).toBe("not ours")
    expect(statSync(join(dir, "tessera")).mode & 0o777).toBe(0o700)
  })

  it("a marked directory is used as is, and gets its 0700 back", async () => {
    mkdirSync(dir, { mode: 0o755 })
    writeFileSync(join(dir, ".tessera-cache"), "")
    const store = await open()
    expect(store.dir).toBe(dir)
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })

  it("when the tessera/ subdirectory is not tessera's either, the store refuses, naming both", async () => {
    mkdirSync(join(dir, "tessera"), { recursive: true })
    const r = await run(Effect.result(FileStore.makeFile({ dir })))
    expect(r._tag).toBe("Failure")
    if (r._tag === "Failure") {
      expect(r.failure.message).toContain(`neither ${dir} nor ${join(dir, "tessera")} is a tessera cache directory`)
      expect(r.failure.message).toContain("TESSERA_CACHE_DIR")
    }
  })

  it.runIf(process.getuid?.() === 0)(
    "a marked directory of another user is refused (checked as root with chown)",
    async () => {
      mkdirSync(dir, { mode: 0o700 })
      writeFileSync(join(dir, ".tessera-cache"), "")
      chownSync(dir, 65534, 65534)
      const r = await run(Effect.result(FileStore.makeFile({ dir })))
      expect(r._tag).toBe("Failure")
      if (r._tag === "Failure") expect(r.failure.message).toContain(`${dir} belongs to another user (uid 65534)`)
    }
  )

  it("a path that is a file is refused, naming it", async () => {
    writeFileSync(dir, "")
    const r = await run(Effect.result(FileStore.makeFile({ dir })))
    expect(r._tag === "Failure" && r.failure.message).toContain(`${dir} is not a directory`)
  })
})

describe("failures that do not block work", () => {
  it("create: false makes nothing on disk: reads are misses, a write fails naming the path", async () => {
    const store = await open({ create: false })
    expect(existsSync(dir)).toBe(false)
    expect(await run(store.get("k"))).toBeUndefined()
    expect(await run(store.list())).toEqual([])
    expect(await run(store.withLock("k", Effect.succeed(1)))).toBe(1)
    const r = await run(Effect.result(store.set("k", entry)))
    expect(r._tag === "Failure" && r.failure.message).toContain(dir)
    expect(existsSync(dir)).toBe(false)
  })

  it("a write that fails leaves no temp file, warns once naming the path, and does not fail the call", async () => {
    const store = await open()
    mkdirSync(join(dir, "k.token")) // rename(tmp, k.token) fails: a directory is in the way
    await run(store.set("k", entry))
    await run(store.set("k", entry))
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([])
    const w = warnings()
    expect(w).toHaveLength(1)
    expect(w[0]).toContain(`cannot write the token cache (${join(dir, "k.token")}: EISDIR)`)
  })

  it("an entry that cannot be read is a miss with a warning naming it", async () => {
    const store = await open()
    mkdirSync(join(dir, "k.token"))
    expect(await run(store.get("k"))).toBeUndefined()
    expect(warnings()[0]).toContain(`cannot read cache entry ${join(dir, "k.token")}: it is a directory`)
  })

  it("makeFileOrMemory: a cache that cannot be opened gives a memory store and a warning naming why", async () => {
    mkdirSync(join(dir, "tessera"), { recursive: true })
    const store = await run(FileStore.makeFileOrMemory({ dir }))
    expect(store.name).toBe("memory")
    expect(warnings()[0]).toContain(`token cache unavailable`)
    expect(warnings()[0]).toContain(dir)
  })
})

describe("cache keys", () => {
  const connection = async () => {
    const config = await Effect.runPromise(
      Config.fromObject({
        connections: {
          api: {
            provider: "oauth2",
            inputs: { token_url: "https://idp.example/token", client_id: "c", client_secret: "guessable" }
          }
        }
      })
    )
    return config.connections.get("api")!
  }

  it("are an HMAC under the store's secret: two store keys give two cache keys; one key gives the same across runs", async () => {
    const c = await connection()
    const a1 = await open({
      dir: join(root, "a"),
      encryptionKey: Redacted.make(Buffer.alloc(32, 1).toString("base64"))
    })
    const a2 = await open({
      dir: join(root, "a2"),
      encryptionKey: Redacted.make(Buffer.alloc(32, 1).toString("base64"))
    })
    const b = await open({ dir: join(root, "b"), encryptionKey: Redacted.make(Buffer.alloc(32, 2).toString("base64")) })
    expect(Engine.cacheKey(c, a1.keySecret)).toBe(Engine.cacheKey(c, a2.keySecret))
    expect(Engine.cacheKey(c, a1.keySecret)).not.toBe(Engine.cacheKey(c, b.keySecret))
    // The key file's key: the same on the next run over the same directory, another in another directory.
    const f1 = Engine.cacheKey(c, (await open()).keySecret)
    expect(Engine.cacheKey(c, (await open()).keySecret)).toBe(f1)
    expect(Engine.cacheKey(c, (await open({ dir: join(root, "other") })).keySecret)).not.toBe(f1)
    // Memory: a random secret per store.
    expect(Engine.cacheKey(c, makeMemory().keySecret)).not.toBe(Engine.cacheKey(c, makeMemory().keySecret))
  })

  it("cannot be recomputed from the inputs alone (no unsalted hash of the secret)", async () => {
    const c = await connection()
    const { createHash } = await import("node:crypto")
    const h = createHash("sha256").update("oauth2").update("\0").update("api")
    for (const [k, v] of [...c.inputs].sort(([x], [y]) => (x < y ? -1 : 1)))
      h.update("\0")
        .update(k)
        .update("=")
        .update(typeof v === "string" ? v : Redacted.value(v))
    const unsalted = h.digest("hex").slice(0, 40)
    expect(Engine.cacheKey(c, (await open()).keySecret)).not.toBe(unsalted)
  })

  it("readEntry reads what the store wrote, without Effect and without creating anything", async () => {
    const empty = join(dir, "none")
    expect(await FileStore.readEntry(empty, "k")).toBeUndefined()
    expect(() => statSync(empty)).toThrow()
    const store = await open()
    await run(store.set("k", entry))
    expect(await FileStore.readEntry(dir, "k")).toEqual(FileStore.entryView(JSON.stringify(entry)))
    expect(await FileStore.readEntry(dir, "other")).toBeUndefined()
    // Copied to another entry's name: it does not open there either.
    copyFileSync(join(dir, "k.token"), join(dir, "other.token"))
    expect(await FileStore.readEntry(dir, "other")).toBeUndefined()
    writeFileSync(join(dir, "k.token"), "{not json")
    expect(await FileStore.readEntry(dir, "k")).toBeUndefined()
  })
})

describe("the cache-hit path's view of an entry", () => {
  it("agrees with the entry Schema on what it reads, and refuses what the Schema refuses there", async () => {
    const { decodeEntry } = await import("../src/token-store.ts")
    const good = JSON.stringify(entry)
    expect(FileStore.entryView(good)).toEqual({
      connection: entry.connection,
      token: {
        access_token: entry.token.access_token,
        expires_at: entry.token.expires_at,
        obtained_at: entry.token.obtained_at
      }
    })
    expect(decodeEntry(good)).toEqual(entry)
    const broken = [
      "{",
      "null",
      JSON.stringify({ ...entry, connection: 1 }),
      JSON.stringify({ ...entry, token: { ...entry.token, access_token: 7 } }),
      JSON.stringify({ ...entry, token: { ...entry.token, expires_at: "soon" } }),
      JSON.stringify({ connection: "x" })
    ]
    for (const b of broken) {
      expect(FileStore.entryView(b), b).toBeUndefined()
      expect(decodeEntry(b), b).toBeUndefined()
    }
  })
})
