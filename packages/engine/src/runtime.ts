/** Builds a ready Engine layer from a loaded config: the store it names (memory by default for libraries, the
 *  encrypted file store for the CLI), over the engine. Shared by the Promise API, the CLI and the server. */
import { Effect, Layer, References } from "effect"
import type { LogLevel } from "effect/LogLevel"
import type { Config } from "./config.ts"
import * as Engine from "./engine.ts"
import * as FileStore from "./file-store.ts"
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
      return FileStore.layerFile({ dir: config.store?.path, encryptionKey: config.store?.encryptionKey })
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
  opts: { readonly logLevel?: LogLevel } = {}
): Layer.Layer<Engine.Engine, StoreError> =>
  Layer.merge(
    Engine.layer(config).pipe(
      Layer.provide(typeof store === "string" ? storeLayer(config, store) : Layer.succeed(TokenStore, store))
    ),
    Layer.succeed(References.MinimumLogLevel, opts.logLevel ?? logLevel())
  ) as Layer.Layer<Engine.Engine, StoreError>
