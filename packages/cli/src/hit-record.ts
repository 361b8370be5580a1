/** Writes the hit-index record (hit-index.ts) after `tessera token` printed a token kept in the default file cache,
 *  so that the next identical call is answered by the fast path (fast-path.ts). Best effort: a record that cannot be
 *  written, or that would bind a file changed while this process ran, is skipped, and the next call takes the full
 *  path again. Configs with a store of their own (Redis, memory, another path or an encryption key) get no record. */
import { Catalog, Engine, Expiry, FileStore, type Config } from "@tessera/engine"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, isAbsolute, join, resolve } from "node:path"
import { parse } from "yaml"
import * as HitIndex from "./hit-index.ts"
import { version } from "./version.ts"

/** Variables that choose where the bundled manifests come from (src/assets.ts in the engine). */
const catalogEnv = ["TESSERA_BUNDLED_PROVIDERS"]

// The reference syntax of the engine's config-value.ts: a whole value `${env:NAME}`, `${env:NAME:-fallback}` or
// `${file:PATH}` (relative to the config file).
const reference = /^\$\{(env|file):([^}]*)\}$/

/** Every `${env:…}` name and `${file:…}` path anywhere in the config document: a superset of what loading it read. */
const references = (doc: unknown, configFile: string) => {
  const env = new Set<string>(catalogEnv),
    files = new Set<string>()
  const walk = (v: unknown): void => {
    if (typeof v === "string") {
      const m = reference.exec(v)
      if (m?.[1] === "env") env.add((m[2] ?? "").split(/:-(.*)/s, 2)[0] ?? "")
      else if (m?.[1] === "file") {
        const arg = m[2] ?? ""
        files.add(isAbsolute(arg) ? arg : resolve(dirname(configFile), arg))
      }
    } else if (Array.isArray(v)) v.forEach(walk)
    else if (v !== null && typeof v === "object") Object.values(v).forEach(walk)
  }
  walk(doc)
  return { env: [...env].sort(), files: [...files].sort() }
}

/** Whether a path was last changed before this process started (so what loading the config read is what is
 *  hashed now). A missing path counts as unchanged: its absence is bound as such. */
const settledBefore = (path: string, origin: number): boolean => {
  try {
    return statSync(path).mtimeMs < origin
  } catch {
    return true
  }
}

const usesDefaultFileCache = (config: Config.Config): boolean =>
  config.store === undefined ||
  (config.store.type === "file" && config.store.path === undefined && config.store.encryptionKey === undefined)

const recordNow = async (config: Config.Config, result: Engine.TokenResult): Promise<void> => {
  const c = config.connections.get(result.connection)
  if (!c || !usesDefaultFileCache(config)) return
  const cacheDir = FileStore.defaultDir()
  const secret = FileStore.keySecretOf(cacheDir)
  if (!secret) return
  const key = Engine.cacheKey(c, secret)
  const entry = await FileStore.readEntry(cacheDir, key)
  if (!entry || entry.token.access_token !== Redacted.value(result.accessToken)) return
  const doc: unknown = parse(readFileSync(config.file, "utf8"))
  const given = doc !== null && typeof doc === "object" && "providers" in doc ? doc.providers : undefined
  const providerDirs = [
    Catalog.bundledDir,
    ...(Array.isArray(given) ? given.filter((d) => typeof d === "string") : []).map((d) =>
      resolve(dirname(config.file), d)
    )
  ]
  const { env, files } = references(doc, config.file)
  const manifestFiles = providerDirs.flatMap((d) => {
    try {
      return [d, ...readdirSync(d).map((n) => join(d, n))]
    } catch {
      return [d]
    }
  })
  if (![config.file, ...files, ...manifestFiles].every((p) => settledBefore(p, performance.timeOrigin))) return
  const t = entry.token
  const freshUntil = t.expires_at - Expiry.marginMs(c.manifest, t.expires_at - t.obtained_at)
  const binding: HitIndex.Binding = {
    version,
    connection: c.name,
    configFile: config.file,
    cacheDir,
    env,
    files,
    providerDirs
  }
  const times = { key, freshUntil, expiresAt: t.expires_at, obtainedAt: t.obtained_at }
  const digest = HitIndex.digest(t.access_token, binding, times, process.env)
  await HitIndex.write({ v: 1, ...binding, key, freshUntil, digest })
}

/** Records the token `result` that the full path just printed; never fails. */
export const record = (config: Config.Config, result: Engine.TokenResult): Effect.Effect<void> =>
  Effect.tryPromise(() => recordNow(config, result)).pipe(Effect.ignore)
