/** Builds a ready Engine layer from a loaded config: the store it names (memory by default for libraries, the
 *  encrypted file store for the CLI), over the engine. Shared by the Promise API, the CLI and the server. */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import type { LogLevel } from "effect/LogLevel"
import type { Config, ConnectionStoreSettings } from "./config.ts"
import * as ConnectionStore from "./connection-store.ts"
import * as Engine from "./engine.ts"
import * as FileStore from "./file-store.ts"
import * as Http from "./http.ts"
import type { StoreError } from "./token-error.ts"
import { TokenStore, layerMemory, type TokenStoreShape } from "./token-store.ts"

export type StoreChoice = "memory" | "file" | TokenStoreShape

export const storeLayer = (
  config: Config,
  fallback: "memory" | "file" = "memory"
): Layer.Layer<TokenStore, StoreError> => {
  const type = config.store?.type ?? fallback
  switch (type) {
    case "memory":
      return layerMemory
    case "file":
      // The file cache is disposable: one that cannot be opened gives way to none, with a warning naming the path.
      return Layer.effect(
        TokenStore,
        FileStore.makeFileOrMemory({ dir: config.store?.path, encryptionKey: config.store?.encryptionKey })
      )
    // Loaded on demand: most processes (the CLI above all) never need the Redis client, and it costs start-up time.
    case "redis":
      return Layer.unwrap(
        Effect.promise(() => import("./redis-store.ts")).pipe(
          Effect.map((RedisStore) =>
            RedisStore.layer({
              url: config.store?.url,
              keyPrefix: config.store?.keyPrefix,
              encryptionKey: config.store?.encryptionKey
            })
          )
        )
      )
  }
}

/** Where runtime connections live when the config has no `connection_store:`: "none" (only the config's), "memory",
 *  "sqlite" (the default file in the user data dir), or a store implementation. */
export type ConnectionStoreChoice = "none" | "memory" | "sqlite" | ConnectionStore.ConnectionStoreShape

/** Opens the store that `settings` describe, within the current scope. The SQLite and PostgreSQL modules are loaded
 *  only here, so a process that never needs them does not pay for loading them. */
export const openConnectionStore = (
  settings: ConnectionStoreSettings
): Effect.Effect<ConnectionStore.ConnectionStoreShape, ConnectionStore.ConnectionStoreError, Scope.Scope> => {
  switch (settings.type) {
    case "memory":
      return Effect.sync(() => ConnectionStore.makeMemory())
    case "sqlite":
      return Effect.flatMap(
        Effect.promise(() => import("./connection-store-sqlite.ts")),
        (Sqlite) => Sqlite.make({ path: settings.path, encryptionKeys: settings.encryptionKeys })
      )
    case "postgres":
      return Effect.flatMap(
        Effect.promise(() => import("./connection-store-postgres.ts")),
        (Postgres) =>
          Postgres.make({ url: settings.url, encryptionKeys: settings.encryptionKeys, schema: settings.schema })
      )
  }
}

/** The connection store for `config`, opened on first use (once) inside `scope`; undefined for "none". */
export const connectionStoreOpener = (
  config: Config,
  fallback: ConnectionStoreChoice,
  scope: Scope.Scope
):
  | Effect.Effect<Effect.Effect<ConnectionStore.ConnectionStoreShape, ConnectionStore.ConnectionStoreError>>
  | undefined => {
  if (typeof fallback === "object" && config.connectionStore === undefined)
    return Effect.succeed(Effect.succeed(fallback))
  const settings: ConnectionStoreSettings | undefined =
    config.connectionStore ??
    (fallback === "none" || typeof fallback === "object" ? undefined : { type: fallback, encryptionKeys: [] })
  if (!settings) return undefined
  return Effect.cached(openConnectionStore(settings).pipe(Scope.provide(scope)))
}

/** The values $TESSERA_LOG_LEVEL accepts (in any case), from the most verbose. */
export const levels: ReadonlyArray<LogLevel> = ["All", "Trace", "Debug", "Info", "Warn", "Error", "Fatal", "None"]

/** $TESSERA_LOG_LEVEL (any case) as a level, Warn when it is unset or empty (a library should not chatter on its
 *  host's console), undefined when it names no level (the CLI then stops with exit 2). */
export const parseLogLevel = (env: NodeJS.ProcessEnv = process.env): LogLevel | undefined => {
  const given = env["TESSERA_LOG_LEVEL"] ?? ""
  return given === "" ? "Warn" : levels.find((l) => l.toLowerCase() === given.toLowerCase())
}

/** $TESSERA_LOG_LEVEL as `parseLogLevel` reads it, Warn for a value that names no level (a library cannot refuse
 *  to start over its logging; the CLI checks the variable first). */
export const logLevel = (env: NodeJS.ProcessEnv = process.env): LogLevel => parseLogLevel(env) ?? "Warn"

/** The engine over the chosen store. `logLevel` defaults to `logLevel()` ($TESSERA_LOG_LEVEL, else Warn); the CLI
 *  passes the level its --log-level flag chose. */
export const layer = (
  config: Config,
  store: StoreChoice = "memory",
  opts: {
    readonly logLevel?: LogLevel
    readonly connections?: ConnectionStoreChoice | undefined
    /** How token exchanges are sent (default: `Http.layer`, undici; tests give `Http.layerReplay`). */
    readonly http?: Layer.Layer<Http.Http> | undefined
  } = {}
): Layer.Layer<Engine.Engine, StoreError> =>
  Layer.merge(
    engineLayer(config, opts.connections ?? "memory").pipe(
      Layer.provide(typeof store === "string" ? storeLayer(config, store) : Layer.succeed(TokenStore, store)),
      Layer.provide(opts.http ?? Http.layer)
    ),
    Layer.succeed(References.MinimumLogLevel, opts.logLevel ?? logLevel())
  ) as Layer.Layer<Engine.Engine, StoreError>

/** The engine over the TokenStore in context, with the connection store opened on first need and closed with the
 *  layer. */
const engineLayer = (
  config: Config,
  connections: ConnectionStoreChoice
): Layer.Layer<Engine.Engine, never, TokenStore | Http.Http> =>
  Layer.effect(
    Engine.Engine,
    Effect.gen(function* () {
      const store = yield* TokenStore
      const scope = yield* Effect.scope
      const opener = connectionStoreOpener(config, connections, scope)
      const connectionStore = opener ? yield* opener : undefined
      return yield* Engine.make(config, store, { connectionStore })
    })
  )
