/** The hit index of `tessera token`: one small record per config file and connection, kept beside the file cache
 *  (`<cache dir>/hits/`), that lets a later call answer a cache hit without loading the config, the manifests or
 *  Effect (fast-path.ts). The full CLI writes a record after each token it prints (hit-record.ts).
 *
 *  A record names the cache entry the engine chose and until when its token is fresh (its expiry less the
 *  manifest's early-refresh margin), and it binds, in an HMAC keyed by that token, everything the full path read to
 *  make that choice: the config file's bytes, the value of every environment variable and the bytes of every file
 *  the config references, every manifest the catalog loads, the cache directory, the CLI version and the entry's
 *  expiry. A reader recomputes the HMAC from what it finds now and answers only when it matches, the entry opens
 *  (through the file store's own `readEntry`) and the token is still fresh; anything else falls through to the full
 *  CLI, which then writes a new record. Holds the record format, `digest`, `write` and `lookup`. */
import { createHash, createHmac, timingSafeEqual, type Hmac } from "node:crypto"
import { readdirSync, readFileSync } from "node:fs"
import { mkdir, readFile, rename, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { readEntry } from "@tessera/engine/file-store"

/** The file cache's directory ($TESSERA_CACHE_DIR, else the user cache dir), where the records live too. */
export { defaultDir } from "@tessera/engine/file-store"

/** What the full path read, by name; the record carries it so that a reader knows what to hash. */
export interface Binding {
  readonly version: string
  readonly connection: string
  readonly configFile: string
  readonly cacheDir: string
  /** Environment variables the config references (`${env:NAME}`), plus those that choose the manifests. */
  readonly env: ReadonlyArray<string>
  /** Files the config references (`${file:PATH}`), absolute. */
  readonly files: ReadonlyArray<string>
  /** Every directory the catalog loads manifests from: the bundled one, then the config's `providers:`. */
  readonly providerDirs: ReadonlyArray<string>
}

export interface HitRecord extends Binding {
  readonly v: 1
  /** The file store key of the entry. */
  readonly key: string
  /** Epoch ms: the token is fresh before this (its expiry less the early-refresh margin). */
  readonly freshUntil: number
  readonly digest: string
}

/** The token's expiry as stored, bound into the digest so that a renewed entry invalidates the record. */
export interface EntryTimes {
  readonly expiresAt: number
  readonly obtainedAt: number
}

export const hitsDir = (cacheDir: string): string => join(cacheDir, "hits")

export const recordPath = (cacheDir: string, configFile: string, connection: string): string =>
  join(
    hitsDir(cacheDir),
    `${createHash("sha256").update(configFile).update("\0").update(connection).digest("hex").slice(0, 40)}.json`
  )

/** Length-prefixed, so that no two different sequences of parts hash alike. */
const part = (h: Hmac, data: string | Buffer): Hmac => h.update(`${Buffer.byteLength(data)}:`).update(data)

// Synchronous reads: a handful of small files, and no thread-pool round trip per file on the fast path.
const readOrCode = (path: string): readonly [tag: string, data: string | Buffer] => {
  try {
    return ["bytes", readFileSync(path)]
  } catch (e) {
    return ["error", (e as NodeJS.ErrnoException).code ?? "unreadable"]
  }
}

/** Every manifest file in `dir` with its bytes, in the order the catalog lists them (*.yaml and *.yml, sorted). */
const manifests = (dir: string): ReadonlyArray<readonly [tag: string, data: string | Buffer]> => {
  let names: string[]
  try {
    names = readdirSync(dir)
      .filter((f) => /\.ya?ml$/.test(f))
      .sort()
  } catch (e) {
    return [["error", (e as NodeJS.ErrnoException).code ?? "unreadable"]]
  }
  return names.flatMap((n) => [["name", n] as const, readOrCode(join(dir, n))])
}

/** The HMAC, keyed by the access token, of the binding's names and of what they hold now. */
export const digest = (
  token: string,
  b: Binding,
  entry: EntryTimes & { readonly key: string; readonly freshUntil: number },
  env: NodeJS.ProcessEnv
): string => {
  const h = createHmac("sha256", token)
  for (const s of ["tessera-hit/1", b.version, b.connection, b.configFile, b.cacheDir, entry.key]) part(h, s)
  for (const n of [entry.expiresAt, entry.obtainedAt, entry.freshUntil]) part(h, String(n))
  const [configTag, configData] = readOrCode(b.configFile)
  part(part(h, configTag), configData)
  part(h, `env:${b.env.length}`)
  for (const name of b.env) {
    const v = env[name]
    part(part(h, name), v === undefined ? "unset" : `=${v}`)
  }
  part(h, `files:${b.files.length}`)
  for (const f of b.files) {
    const [tag, data] = readOrCode(f)
    part(part(part(h, f), tag), data)
  }
  part(h, `dirs:${b.providerDirs.length}`)
  for (const d of b.providerDirs) {
    part(h, d)
    const list = manifests(d)
    part(h, `entries:${list.length}`)
    for (const [tag, data] of list) part(part(h, tag), data)
  }
  return h.digest("hex")
}

/** Writes (atomically) the record for a token the full path just printed. */
export const write = async (record: HitRecord): Promise<void> => {
  const path = recordPath(record.cacheDir, record.configFile, record.connection)
  await mkdir(hitsDir(record.cacheDir), { recursive: true, mode: 0o700 })
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(record), { mode: 0o600 })
  await rename(tmp, path)
}

const isStringArray = (u: unknown): u is ReadonlyArray<string> =>
  Array.isArray(u) && u.every((s) => typeof s === "string")

const isRecord = (u: unknown): u is HitRecord => {
  if (u === null || typeof u !== "object") return false
  const r = u as Record<string, unknown>
  return (
    r["v"] === 1 &&
    ["version", "connection", "configFile", "cacheDir", "key", "digest"].every((k) => typeof r[k] === "string") &&
    typeof r["freshUntil"] === "number" &&
    isStringArray(r["env"]) &&
    isStringArray(r["files"]) &&
    isStringArray(r["providerDirs"])
  )
}

/** The access token when the record for `configFile` and `connection` still holds at `now`, else undefined. */
export const lookup = async (
  q: { readonly cacheDir: string; readonly configFile: string; readonly connection: string; readonly version: string },
  now: number,
  env: NodeJS.ProcessEnv
): Promise<string | undefined> => {
  const text = await readFile(recordPath(q.cacheDir, q.configFile, q.connection), "utf8").catch(() => undefined)
  if (text === undefined) return undefined
  const r: unknown = JSON.parse(text)
  if (!isRecord(r) || now >= r.freshUntil) return undefined
  if (r.version !== q.version || r.cacheDir !== q.cacheDir || r.configFile !== q.configFile) return undefined
  if (r.connection !== q.connection) return undefined
  const entry = await readEntry(q.cacheDir, r.key)
  if (!entry || entry.connection !== q.connection) return undefined
  const t = entry.token
  const expected = digest(
    t.access_token,
    r,
    { key: r.key, freshUntil: r.freshUntil, expiresAt: t.expires_at, obtainedAt: t.obtained_at },
    env
  )
  const a = Buffer.from(expected, "hex"),
    b = Buffer.from(r.digest, "hex")
  return a.length === b.length && timingSafeEqual(a, b) ? t.access_token : undefined
}
