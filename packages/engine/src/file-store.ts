/** The encrypted file store used by the CLI: one file per credential in a directory tessera owns (0700 dir, 0600
 *  files), AES-256-GCM with a key id for rotation and the entry's key as associated data, atomic writes, and a lock
 *  file per credential so concurrent `tessera` processes make one upstream call. The key comes from the config or,
 *  failing that, a random key file in the cache directory.
 *
 *  The cache is disposable, so its damage never blocks work:
 *  - a directory, key file or lock tessera cannot use is recovered from or worked around with a warning naming the
 *    path (internal/cache-dir.ts, internal/file-lock.ts);
 *  - `get` that cannot read is a miss, `set` that cannot write (full disk, read-only directory) leaves no temp file
 *    behind and does not fail the call, `withLock` that cannot write a lock runs without it: each with a warning
 *    (once per store and kind of failure) naming the path;
 *  - `delete`, `list` and `clear` fail with a StoreError naming the path: whoever asked for them must know.
 *  A file that does not open under this store's key for its own entry (tampered with, or copied from another
 *  entry's file) is a miss, with a warning once. */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { randomBytes } from "node:crypto"
import { lstatSync } from "node:fs"
import { readdir, rename, stat, unlink, writeFile } from "node:fs/promises"
import { homedir, platform } from "node:os"
import { join } from "node:path"
import { fault, keyName, loadKey, markerName, resolveDir, subdirName } from "./internal/cache-dir.ts"
import * as FileLock from "./internal/file-lock.ts"
import { readText } from "./internal/read-limited.ts"
import { StoreError } from "./token-error.ts"
import { isSealed, keySecretFrom, open, parseKey, seal } from "./secret-box.ts"
import { decodeEntry, makeMemory, TokenStore, type Entry, type TokenStoreShape } from "./token-store.ts"

/** $TESSERA_CACHE_DIR, else the platform's user cache dir. */
export const defaultDir = (): string => {
  const explicit = process.env["TESSERA_CACHE_DIR"]
  if (explicit) return explicit
  if (platform() === "darwin") return join(homedir(), "Library", "Caches", "tessera")
  if (platform() === "win32")
    return join(process.env["LOCALAPPDATA"] ?? join(homedir(), "AppData", "Local"), "tessera", "Cache")
  return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "tessera")
}

type Opened =
  | { readonly _tag: "Found"; readonly plain: string }
  /** Absent, corrupt, or sealed under another key (rotated): the next write replaces it. */
  | { readonly _tag: "Miss" }
  | { readonly _tag: "Unreadable"; readonly kind: string; readonly reason: string }
  /** Opens under this key but not as this entry's: tampered with, or copied from another entry's file. */
  | { readonly _tag: "Misplaced" }

/** One entry file, read and opened with the cache's `key` and the entry key `k` as associated data; its JSON text
 *  when it opens. Synchronous and Effect-free, so the CLI's cache-hit path can use it (`readEntry`). */
const openEntryFile = (key: Buffer, k: string, path: string): Opened => {
  const r = readText(path, maxEntryBytes, "a cache entry is a small JSON file")
  if (r._tag === "Refused")
    return r.code === "ENOENT" ? { _tag: "Miss" } : { _tag: "Unreadable", kind: r.code ?? r.reason, reason: r.reason }
  const sealed = parseJson(r.text)
  if (!isSealed(sealed)) return { _tag: "Miss" }
  const opened = open(key, sealed, k)
  if (opened._tag === "UnknownKey") return { _tag: "Miss" }
  if (opened._tag === "Damaged") return { _tag: "Misplaced" }
  return { _tag: "Found", plain: opened.plain }
}

/** What the cache-hit path reads of an entry. */
export interface EntryView {
  readonly connection: string
  readonly token: { readonly access_token: string; readonly expires_at: number; readonly obtained_at: number }
}

/** The hit path's view of an entry's JSON, checked field by field rather than with the entry's Schema
 *  (`decodeEntry`), which would load Effect into that path. The text opened under the cache's key with the entry key
 *  as associated data, so tessera wrote it; the hit path also checks a digest over these very fields. */
export const entryView = (plain: string): EntryView | undefined => {
  const e = parseJson(plain)
  if (typeof e !== "object" || e === null || !("connection" in e) || !("token" in e)) return undefined
  const t = e.token
  if (typeof e.connection !== "string" || typeof t !== "object" || t === null) return undefined
  if (!("access_token" in t) || !("expires_at" in t) || !("obtained_at" in t)) return undefined
  const { access_token, expires_at, obtained_at } = t
  if (typeof access_token !== "string" || typeof expires_at !== "number" || typeof obtained_at !== "number")
    return undefined
  return { connection: e.connection, token: { access_token, expires_at, obtained_at } }
}

/** The directory the file store would use for `dir` without creating anything: `dir` when it carries tessera's
 *  marker, else its `tessera/` subdirectory when that does (internal/cache-dir.ts), else none. */
const existingDir = (dir: string): string | undefined =>
  [dir, join(dir, subdirName)].find((d) => {
    try {
      return lstatSync(join(d, markerName)).isFile()
    } catch {
      return false
    }
  })

/** Reads the entry `key` of the file cache at `dir` under the cache's own key file, as `get` does, with no Effect
 *  runtime, no lock, no warning and nothing created: the CLI's cache-hit path (packages/cli/src/fast-path.ts) calls
 *  it before it loads anything else. undefined when there is no such cache, key or entry, or the entry does not
 *  open (the full path then says why). */
export const readEntry = async (dir: string, key: string): Promise<EntryView | undefined> => {
  const found = existingKey(dir)
  if (!found) return undefined
  const r = openEntryFile(found.key, key, join(found.dir, `${key}.token`))
  return r._tag === "Found" ? entryView(r.plain) : undefined
}

/** The cache directory tessera owns for `dir` and the key in its key file, when both are there. */
const existingKey = (dir: string): { readonly dir: string; readonly key: Buffer } | undefined => {
  const owned = existingDir(dir)
  if (owned === undefined) return undefined
  const keyFile = readText(join(owned, keyName), 1024, "a cache key file holds one base64 key")
  const key = keyFile._tag === "Text" ? parseKey(keyFile.text) : undefined
  return key ? { dir: owned, key } : undefined
}

/** The secret the file cache at `dir` keys its entries with (`TokenStoreShape.keySecret`), read as `readEntry`
 *  reads: undefined when there is no cache with a key file yet. */
export const keySecretOf = (dir: string): Buffer | undefined => {
  const found = existingKey(dir)
  return found ? keySecretFrom(found.key) : undefined
}

export interface FileStoreOptions {
  readonly dir?: string | undefined
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /** How long a lock is held at most before others may take it (a hung holder, or one on another host). */
  readonly leaseMs?: number | undefined
  /** How long a caller waits for another process's lock before it says so on stderr (default 1 s). */
  readonly lockNoticeMs?: number | undefined
  /** false: create nothing on disk (for --dry-run, `cache list`, `cache clear`): no directory, key file or lock is
   *  made and nothing is chmod-ed, a missing directory or key is an empty cache and `set` fails; `delete` and
   *  `clear` still remove what exists. Default true. */
  readonly create?: boolean | undefined
}

/** The file store, with the directory it settled on (the configured one, or its `tessera/` subdirectory). */
export interface FileStoreShape extends TokenStoreShape {
  /** Undefined when `create: false` found no cache directory. */
  readonly dir: string | undefined
}

const maxEntryBytes = 1_048_576

const configured = (opts: FileStoreOptions): Effect.Effect<Buffer | undefined, StoreError> => {
  if (!opts.encryptionKey) return Effect.succeed(undefined)
  const k = parseKey(Redacted.value(opts.encryptionKey))
  return k
    ? Effect.succeed(k)
    : Effect.fail(
        new StoreError({
          store: "file",
          operation: "configure",
          reason: "encryption_key must be 32 bytes, given as base64 or 64 hex digits"
        })
      )
}

export const makeFile = (opts: FileStoreOptions = {}): Effect.Effect<FileStoreShape, StoreError> =>
  Effect.gen(function* () {
    const mayCreate = opts.create ?? true
    const given = yield* configured(opts)
    const dir = yield* resolveDir(opts.dir ?? defaultDir(), mayCreate)
    if (dir === undefined) return absent(opts.dir ?? defaultDir(), given)
    const loaded = given ? { key: given } : yield* loadKey(dir, mayCreate)
    if (loaded.warning) yield* Effect.logWarning(loaded.warning).pipe(Effect.annotateLogs({ store: "file" }))
    return loaded.key ? present(dir, loaded.key, opts, mayCreate) : absent(dir, undefined, dir)
  })

/** Removes the token files (and temp files left by killed runs) in `dir`, which tessera owns; returns how many
 *  tokens it removed. */
const clearDir = (dir: string): Effect.Effect<number, StoreError> =>
  Effect.gen(function* () {
    const all = yield* Effect.tryPromise({ try: () => readdir(dir), catch: fault("clear", dir) })
    const tokens = all.filter((n) => n.endsWith(".token"))
    // Only entry temp files (<key>.token.<pid>.<random>.tmp): a key or lock temp file may belong to a live run.
    const doomed = [...tokens, ...all.filter((n) => n.endsWith(".tmp") && n.includes(".token."))]
    yield* Effect.forEach(doomed, (n) =>
      Effect.tryPromise({
        try: () =>
          unlink(join(dir, n)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== "ENOENT") throw e
          }),
        catch: fault("clear", join(dir, n))
      })
    )
    return tokens.length
  })

/** No usable cache on disk, and none may be made: reads find nothing, `set` fails naming the path, `clear` still
 *  removes what an existing directory holds. */
const absent = (where: string, key: Buffer | undefined, dir?: string): FileStoreShape => {
  const memory = makeMemory()
  const none = new StoreError({
    store: "file",
    operation: "write",
    reason: `${where}: no usable cache there, and none is created in this mode`
  })
  return {
    ...memory,
    name: "file",
    dir,
    keySecret: key ? keySecretFrom(key) : memory.keySecret,
    set: () => Effect.fail(none),
    clear: () => (dir ? clearDir(dir) : Effect.succeed(0)),
    health: () => Effect.succeed({ status: "ok", detail: `file ${where} (no cache yet)` })
  }
}

const present = (dir: string, key: Buffer, opts: FileStoreOptions, writable: boolean): FileStoreShape => {
  const leaseMs = opts.leaseMs ?? 30_000
  const lockNoticeMs = opts.lockNoticeMs ?? 1000
  const file = (k: string) => join(dir, `${k}.token`)

  // One warning per kind of failure and store: a full disk says so once, not on every write.
  const warned = new Set<string>()
  const warnOnce = (kind: string, message: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (warned.has(kind)) return Effect.void
      warned.add(kind)
      return Effect.logWarning(message).pipe(Effect.annotateLogs({ store: "file" }))
    })

  /** The entry in `path` for key `k`: undefined when absent, unreadable, damaged, sealed under another key, or not
   *  this entry's (the associated data is the key); the last ones with a warning once. */
  const readEntry = (k: string, path: string): Effect.Effect<Entry | undefined> =>
    Effect.suspend(() => {
      const r = openEntryFile(key, k, path)
      switch (r._tag) {
        case "Found":
          return Effect.succeed(decodeEntry(r.plain))
        case "Miss":
          return Effect.succeed(undefined)
        case "Unreadable":
          return Effect.as(
            warnOnce(`read:${r.kind}`, `cannot read cache entry ${path}: it ${r.reason}; treated as a miss`),
            undefined
          )
        case "Misplaced":
          return Effect.as(
            warnOnce(
              "misplaced",
              `cache entry ${path} does not open under this cache's key for this entry (tampered with, or copied from another entry's file); treated as a miss`
            ),
            undefined
          )
      }
    })

  const writeEntry = (k: string, entry: Entry): Effect.Effect<void> => {
    const path = file(k)
    const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
    return Effect.tryPromise({
      try: async () => {
        try {
          await writeFile(tmp, JSON.stringify(seal(key, JSON.stringify(entry), k)), { mode: 0o600 })
          await rename(tmp, path)
        } catch (e) {
          await unlink(tmp).catch(() => undefined) // a full disk must not collect a 0-byte temp file per run
          throw e
        }
      },
      catch: fault("write", path)
    }).pipe(
      Effect.catch((e) =>
        warnOnce(`write:${e.reason}`, `cannot write the token cache (${e.reason}); the token is used but not cached`)
      )
    )
  }

  const withLock: TokenStoreShape["withLock"] = (k, effect) =>
    !writable
      ? effect
      : Effect.acquireUseRelease(
          FileLock.acquire(join(dir, `${k}.lock`), { leaseMs, noticeMs: lockNoticeMs }).pipe(
            Effect.map((held): FileLock.Held | undefined => held),
            Effect.catch((e) =>
              Effect.as(
                warnOnce(
                  `lock:${e.reason}`,
                  `cannot write a cache lock (${e.reason}); going on without the cross-process lock`
                ),
                undefined
              )
            )
          ),
          () => effect,
          (held) => (held ? FileLock.release(held) : Effect.void)
        )

  const tokenFiles = Effect.tryPromise({
    try: async () => (await readdir(dir)).filter((n) => n.endsWith(".token")).sort(),
    catch: fault("list", dir)
  })

  return {
    name: "file",
    dir,
    keySecret: keySecretFrom(key),
    get: (k) => readEntry(k, file(k)),
    set: (k, entry) =>
      writable
        ? writeEntry(k, entry)
        : Effect.fail(new StoreError({ store: "file", operation: "write", reason: `${dir}: opened read-only` })),
    delete: (k) =>
      Effect.tryPromise({
        try: () =>
          unlink(file(k)).catch((e: NodeJS.ErrnoException) => {
            if (e.code !== "ENOENT") throw e
          }),
        catch: fault("delete", file(k))
      }),
    list: () =>
      Effect.gen(function* () {
        const out: Array<readonly [string, Entry]> = []
        for (const n of yield* tokenFiles) {
          const k = n.slice(0, -".token".length)
          const e = yield* readEntry(k, join(dir, n))
          if (e) out.push([k, e])
        }
        return out
      }),
    clear: () => clearDir(dir),
    withLock,
    health: () =>
      Effect.promise(() =>
        stat(dir).then(
          () => ({ status: "ok" as const, detail: `file ${dir}` }),
          (e: NodeJS.ErrnoException) => ({ status: "down" as const, detail: `file ${dir}: ${e.code ?? "unreadable"}` })
        )
      )
  }
}

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return undefined
  }
}

/** The file store, or, when it cannot be opened (a directory tessera may not use, a file system that refuses),
 *  a memory store with a warning naming why: the cache is disposable, so a broken one never blocks getting a token.
 *  A wrong `encryption_key` still fails: that is a config error to fix. */
export const makeFileOrMemory = (opts: FileStoreOptions = {}): Effect.Effect<TokenStoreShape, StoreError> =>
  makeFile(opts).pipe(
    Effect.catch((e) =>
      e.operation === "configure"
        ? Effect.fail(e)
        : Effect.as(
            Effect.logWarning(`token cache unavailable (${e.reason}); going on without a cache`).pipe(
              Effect.annotateLogs({ store: "file" })
            ),
            makeMemory()
          )
    )
  )

export const layerFile = (opts: FileStoreOptions = {}): Layer.Layer<TokenStore, StoreError> =>
  Layer.effect(TokenStore, makeFile(opts))
