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
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { readdir, rename, stat, unlink, writeFile } from "node:fs/promises"
import { homedir, platform } from "node:os"
import { join } from "node:path"
import { fault, loadKey, resolveDir } from "./internal/cache-dir.ts"
import * as FileLock from "./internal/file-lock.ts"
import { readText } from "./internal/read-limited.ts"
import { isSealed, open, parseKey, seal } from "./secret-box.ts"
import { StoreError } from "./token-error.ts"
import { decodeEntry, keySecretFrom, makeMemory, TokenStore, type Entry, type TokenStoreShape } from "./token-store.ts"

/** $TESSERA_CACHE_DIR, else the platform's user cache dir. */
export const defaultDir = (): string => {
  const explicit = process.env["TESSERA_CACHE_DIR"]
  if (explicit) return explicit
  if (platform() === "darwin") return join(homedir(), "Library", "Caches", "tessera")
  if (platform() === "win32")
    return join(process.env["LOCALAPPDATA"] ?? join(homedir(), "AppData", "Local"), "tessera", "Cache")
  return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "tessera")
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
   *  this entry's (the associated data is the key). */
  const readEntry = (k: string, path: string): Effect.Effect<Entry | undefined> =>
    Effect.suspend(() => {
      const r = readText(path, maxEntryBytes, "a cache entry is a small JSON file")
      if (r._tag === "Refused") {
        if (r.code === "ENOENT") return Effect.succeed(undefined)
        return Effect.as(
          warnOnce(`read:${r.code ?? r.reason}`, `cannot read cache entry ${path}: it ${r.reason}; treated as a miss`),
          undefined
        )
      }
      const sealed = parseJson(r.text)
      if (!isSealed(sealed)) return Effect.succeed(undefined) // corrupt: a miss, the next write replaces it
      const opened = open(key, sealed, k)
      if (opened._tag === "UnknownKey") return Effect.succeed(undefined) // another key (rotated): a miss
      if (opened._tag === "Damaged")
        return Effect.as(
          warnOnce(
            "misplaced",
            `cache entry ${path} does not open under this cache's key for this entry (tampered with, or copied from another entry's file); treated as a miss`
          ),
          undefined
        )
      return Effect.succeed(decodeEntry(opened.plain))
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
