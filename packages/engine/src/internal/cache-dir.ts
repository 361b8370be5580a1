/** The file store's directory and its key file: which directory tessera may treat as its own, and the encryption
 *  key kept there when the config gives none.
 *
 *  - Ownership: tessera owns only a directory it created, marked by a `.tessera-cache` file, owned by the current
 *    user; it is created with its marker under a temporary name and renamed into place, so it never exists unmarked. Only an owned directory is ever chmod-ed (0700) or cleared. A configured directory that exists without
 *    the marker (say `TESSERA_CACHE_DIR=/tmp`) is left alone: the cache goes into a `tessera/` subdirectory of it
 *    instead, created and marked. If that subdirectory exists without the marker too, the directory is refused.
 *  - Key file: created atomically (a complete temp file hard-linked into place), so two first runs never read a
 *    half-written key: the loser of the link reads the winner's key. A damaged key file (empty, garbage, not a
 *    regular file, unreadable) is moved aside and replaced with a warning: the cache is disposable, so tokens
 *    sealed under the old key become misses instead of blocking every call.
 *  @internal */
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import { chmod, link, lstat, mkdir, rename, rm, stat, unlink, writeFile } from "node:fs/promises"
import { dirname, join } from "node:path"
import { parseKey } from "../secret-box.ts"
import { StoreError } from "../token-error.ts"
import { readText } from "./read-limited.ts"

export const markerName = ".tessera-cache"
export const subdirName = "tessera"
export const keyName = "key"
const markerText =
  "This directory is tessera's token cache: tessera created it, keeps it private (0700) and may delete the\n" +
  "*.token, *.lock and *.tmp files in it. Deleting the whole directory is safe: tokens are fetched again.\n"

const codeOf = (e: unknown): string => (e as NodeJS.ErrnoException).code ?? String(e)

export const fault = (operation: string, path: string) => (e: unknown) =>
  e instanceof StoreError ? e : new StoreError({ store: "file", operation, reason: `${path}: ${codeOf(e)}` })

const refuse = (operation: string, reason: string) => new StoreError({ store: "file", operation, reason })

type State = "owned" | "foreign" | "missing"

/** Whether `dir` is a directory tessera created (its marker is there), another one, or absent. */
const stateOf = async (dir: string): Promise<{ readonly state: State; readonly mode?: number }> => {
  const s = await stat(dir).catch((e: NodeJS.ErrnoException) => {
    // ENOTDIR: a part of the path is a file, so the directory cannot exist (creating it then fails, naming it).
    if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined
    throw e
  })
  if (!s) return { state: "missing" }
  if (!s.isDirectory()) throw refuse("open cache dir", `${dir} is not a directory`)
  const m = await lstat(join(dir, markerName)).catch(() => undefined)
  if (!m?.isFile()) return { state: "foreign" }
  // A marked directory of another user (say, planted in a shared /tmp) is not ours to keep tokens in.
  const uid = process.getuid?.()
  if (uid !== undefined && s.uid !== uid)
    throw refuse(
      "open cache dir",
      `${dir} belongs to another user (uid ${s.uid}); tessera keeps its cache only in a directory of its own`
    )
  return { state: "owned", mode: s.mode & 0o777 }
}

/** Creates `dir` (its parents as needed) with the marker, atomically: a complete directory (marker inside, 0700) is
 *  made under a temporary name beside it and renamed into place, so no other process ever sees `dir` without its
 *  marker (and takes it for a foreign one: it would then use the `tessera/` subdirectory, under another key). When
 *  another process got there first, its directory is the one used. */
const create = async (dir: string): Promise<State> => {
  await mkdir(dirname(dir), { recursive: true, mode: 0o700 }).catch((e: unknown) => {
    const code = codeOf(e)
    if (code === "EEXIST" || code === "ENOTDIR")
      throw refuse("open cache dir", `cannot create ${dir}: a part of its path is a file, not a directory`)
    throw e
  })
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
  await mkdir(tmp, { mode: 0o700 })
  try {
    await writeFile(join(tmp, markerName), markerText, { mode: 0o600, flag: "wx" })
    await chmod(tmp, 0o700) // mkdir's mode is masked by the umask
    await rename(tmp, dir)
    return "owned"
  } catch (e) {
    const code = codeOf(e)
    // `dir` appeared meanwhile, with something in it: another process's complete directory, or a foreign one.
    if (code !== "EEXIST" && code !== "ENOTEMPTY") throw e
    return (await stateOf(dir)).state
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined)
  }
}

/** The state of `dir`, after creating it when absent and allowed. An owned directory that lost its 0700 mode gets it
 *  back (it is ours), unless nothing may be written. */
const claim = async (dir: string, mayCreate: boolean): Promise<State> => {
  const { state, mode } = await stateOf(dir)
  if (state === "missing" && mayCreate) return create(dir)
  if (state === "owned" && mayCreate && mode !== 0o700) await chmod(dir, 0o700)
  return state
}

/** The directory the store uses: `dir` when tessera owns it (creating it if absent and allowed), else its `tessera/`
 *  subdirectory. Undefined when nothing exists and creating is not allowed. */
export const resolveDir = (dir: string, mayCreate: boolean): Effect.Effect<string | undefined, StoreError> =>
  Effect.tryPromise({
    try: async () => {
      const top = await claim(dir, mayCreate)
      if (top === "owned") return dir
      if (top === "missing") return undefined
      const sub = join(dir, subdirName)
      const inner = await claim(sub, mayCreate)
      if (inner === "owned") return sub
      if (inner === "missing") return undefined
      throw refuse(
        "open cache dir",
        `neither ${dir} nor ${sub} is a tessera cache directory (no ${markerName} file); tessera does not take over a directory it did not create: point TESSERA_CACHE_DIR (or store.path) at a new path`
      )
    },
    catch: fault("open cache dir", dir)
  })

export interface LoadedKey {
  /** Undefined only when nothing may be written and there is no usable key file. */
  readonly key?: Buffer | undefined
  /** A damaged key file: moved aside (or, when nothing may be written, left as it is). The warning to log. */
  readonly warning?: string | undefined
}

type KeyRead =
  | { readonly _tag: "Key"; readonly key: Buffer }
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Damaged"; readonly why: string }

const readKey = (path: string): KeyRead => {
  const r = readText(path, 1024, "the key file holds 32 bytes in base64")
  if (r._tag === "Refused") return r.code === "ENOENT" ? { _tag: "Missing" } : { _tag: "Damaged", why: r.reason }
  const key = parseKey(r.text)
  if (key) return { _tag: "Key", key }
  return { _tag: "Damaged", why: r.text.trim() === "" ? "is empty" : "does not hold a 32-byte key" }
}

/** Writes a new random key into place unless another process did first; either way returns the key in place. */
const createKey = async (path: string): Promise<Buffer> => {
  const fresh = randomBytes(32)
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
  try {
    await writeFile(tmp, fresh.toString("base64"), { mode: 0o600, flag: "wx" })
    await link(tmp, path)
    return fresh
  } catch (e) {
    if (codeOf(e) !== "EEXIST") throw e
    const winner = readKey(path) // complete: it was linked into place only after it was written in full
    if (winner._tag === "Key") return winner.key
    throw refuse("load key", `${path} ${winner._tag === "Damaged" ? winner.why : "vanished while read"}`)
  } finally {
    await unlink(tmp).catch(() => undefined)
  }
}

/** The key file's key; a missing one is created, a damaged one moved aside and replaced (with a warning). With
 *  `mayCreate: false` nothing is written: a missing or damaged key gives no key. */
export const loadKey = (dir: string, mayCreate: boolean): Effect.Effect<LoadedKey, StoreError> => {
  const path = join(dir, keyName)
  return Effect.tryPromise({
    try: async (): Promise<LoadedKey> => {
      const found = readKey(path)
      if (found._tag === "Key") return { key: found.key }
      if (found._tag === "Missing") return mayCreate ? { key: await createKey(path) } : {}
      if (!mayCreate)
        return {
          warning: `cache key file ${path} ${found.why}; the next tessera token moves it aside and starts a new key`
        }
      const aside = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, "-")}`
      // Another process may have replaced it meanwhile: move only what is still damaged.
      const again = readKey(path)
      if (again._tag === "Key") return { key: again.key }
      if (again._tag === "Damaged")
        await rename(path, aside).catch((e: unknown) => {
          if (codeOf(e) !== "ENOENT") throw e
        })
      return {
        key: await createKey(path),
        warning: `cache key file ${path} ${found.why}: moved it to ${aside} and started a new key; tokens cached under the old key will be fetched again`
      }
    },
    catch: fault("load key", path)
  })
}
