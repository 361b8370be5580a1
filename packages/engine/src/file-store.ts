/** The encrypted file store used by the CLI: one file per credential in the user's cache directory (0700 dir,
 *  0600 files), AES-256-GCM with a key id for rotation, atomic writes, and a lock file per credential so
 *  concurrent `tessera` processes make one upstream call. The key comes from the config or, failing that, a
 *  random key file created beside the cache on first use. */
import { Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { chmod, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises"
import { homedir, platform } from "node:os"
import { join } from "node:path"
import { isSealed, openOrUndefined, parseKey, seal } from "./secret-box.ts"
import { isStored } from "./token.ts"
import { StoreError } from "./token-error.ts"
import { TokenStore, type Entry, type TokenStoreShape } from "./token-store.ts"

/** $TESSERA_CACHE_DIR, else the platform's user cache dir. */
export const defaultDir = (): string => {
  const explicit = process.env["TESSERA_CACHE_DIR"]
  if (explicit) return explicit
  if (platform() === "darwin") return join(homedir(), "Library", "Caches", "tessera")
  if (platform() === "win32")
    return join(process.env["LOCALAPPDATA"] ?? join(homedir(), "AppData", "Local"), "tessera", "Cache")
  return join(process.env["XDG_CACHE_HOME"] || join(homedir(), ".cache"), "tessera")
}

const fail = (operation: string) => (e: unknown) =>
  new StoreError({ store: "file", operation, reason: (e as NodeJS.ErrnoException).code ?? String(e) })

/** One entry file opened with `key`: undefined when it does not exist or does not open. */
const readEntryFile = async (key: Buffer, path: string): Promise<Entry | undefined> => {
  let text: string
  try {
    text = await readFile(path, "utf8")
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw e
  }
  let plain: string | undefined
  try {
    const sealed: unknown = JSON.parse(text)
    plain = isSealed(sealed) ? openOrUndefined(key, sealed) : undefined
  } catch {
    plain = undefined
  }
  if (plain === undefined) return undefined // another key, or corrupt: treat as a miss, the next write replaces it
  const e = JSON.parse(plain) as Entry
  return isStored(e.token) ? e : undefined
}

/** Reads the entry `key` of the file cache in `dir` under the cache's own key file, as `get` does but with no Effect
 *  runtime, no lock and nothing created: the CLI's cache-hit path (packages/cli/src/fast-path.ts) calls it before
 *  it loads anything else. undefined when the cache has no key file yet, no such entry, or the entry does not open. */
export const readEntry = async (dir: string, key: string): Promise<Entry | undefined> => {
  const keyText = await readFile(join(dir, "key"), "utf8").catch(() => undefined)
  const k = keyText === undefined ? undefined : parseKey(keyText)
  return k ? readEntryFile(k, join(dir, `${key}.token`)) : undefined
}

export interface FileStoreOptions {
  readonly dir?: string | undefined
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
  /** How long a lock is held at most before others may take it (a crashed holder). */
  readonly leaseMs?: number | undefined
}

export const makeFile = (opts: FileStoreOptions = {}): Effect.Effect<TokenStoreShape, StoreError> =>
  Effect.gen(function* () {
    const dir = opts.dir ?? defaultDir()
    const leaseMs = opts.leaseMs ?? 30_000
    yield* Effect.tryPromise({
      try: async () => {
        await mkdir(dir, { recursive: true, mode: 0o700 })
        await chmod(dir, 0o700)
      },
      catch: fail("create cache dir")
    })
    const key = yield* Effect.tryPromise({
      try: async () => {
        if (opts.encryptionKey) {
          const k = parseKey(Redacted.value(opts.encryptionKey))
          if (!k)
            throw Object.assign(new Error("encryption_key must be 32 bytes, base64 or hex"), {
              code: "encryption_key must be 32 bytes, given as base64 or 64 hex digits"
            })
          return k
        }
        const keyFile = join(dir, "key")
        try {
          return (
            parseKey(await readFile(keyFile, "utf8")) ??
            Promise.reject(
              Object.assign(new Error(), { code: `corrupt key file ${keyFile}: delete it to start a new cache` })
            )
          )
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
          const k = randomBytes(32)
          try {
            await writeFile(keyFile, k.toString("base64"), { mode: 0o600, flag: "wx" })
            return k
          } catch (e2) {
            if ((e2 as NodeJS.ErrnoException).code === "EEXIST") return parseKey(await readFile(keyFile, "utf8"))! // another process won the race
            throw e2
          }
        }
      },
      catch: fail("load key")
    })
    const file = (k: string) => join(dir, `${k}.token`)
    const readEntry = (path: string) => readEntryFile(key, path)
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
    const acquireLock = async (k: string): Promise<string> => {
      const path = join(dir, `${k}.lock`)
      for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
        try {
          const h = await open(path, "wx", 0o600)
          await h.writeFile(JSON.stringify({ pid: process.pid, until: Date.now() + leaseMs }))
          await h.close()
          return path
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e
          const s = await stat(path).catch(() => undefined)
          if (s && Date.now() - s.mtimeMs > leaseMs) await unlink(path).catch(() => undefined) // the holder died
          await sleep(wait)
        }
      }
    }
    const store: TokenStoreShape = {
      name: "file",
      get: (k) => Effect.tryPromise({ try: () => readEntry(file(k)), catch: fail("read") }),
      set: (k, entry) =>
        Effect.tryPromise({
          try: async () => {
            const tmp = `${file(k)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
            await writeFile(tmp, JSON.stringify(seal(key, JSON.stringify(entry))), { mode: 0o600 })
            await rename(tmp, file(k))
          },
          catch: fail("write")
        }),
      delete: (k) =>
        Effect.tryPromise({
          try: () =>
            unlink(file(k)).catch((e: NodeJS.ErrnoException) => {
              if (e.code !== "ENOENT") throw e
            }),
          catch: fail("delete")
        }),
      list: () =>
        Effect.tryPromise({
          try: async () => {
            const names = (await readdir(dir)).filter((n) => n.endsWith(".token")).sort()
            const out: Array<readonly [string, Entry]> = []
            for (const n of names) {
              const e = await readEntry(join(dir, n))
              if (e) out.push([n.slice(0, -".token".length), e])
            }
            return out
          },
          catch: fail("list")
        }),
      clear: () =>
        Effect.tryPromise({
          try: async () => {
            const names = (await readdir(dir)).filter((n) => n.endsWith(".token"))
            await Promise.all(names.map((n) => unlink(join(dir, n)).catch(() => undefined)))
            return names.length
          },
          catch: fail("clear")
        }),
      withLock: (k, effect) =>
        Effect.acquireUseRelease(
          Effect.tryPromise({ try: () => acquireLock(k), catch: fail("lock") }),
          () => effect,
          (path) => Effect.promise(() => unlink(path).catch(() => undefined))
        ),
      health: () =>
        Effect.promise(() =>
          stat(dir).then(
            () => ({ status: "ok" as const, detail: `file ${dir}` }),
            (e: NodeJS.ErrnoException) => ({
              status: "down" as const,
              detail: `file ${dir}: ${e.code ?? "unreadable"}`
            })
          )
        )
    }
    return store
  })

export const layerFile = (opts: FileStoreOptions = {}): Layer.Layer<TokenStore, StoreError> =>
  Layer.effect(TokenStore, makeFile(opts))
