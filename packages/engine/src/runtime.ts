/** Builds a ready Engine layer from a loaded config: the store it names (memory by default for libraries, the
 *  encrypted file store for the CLI), over the engine. Shared by the Promise API, the CLI and the server. */
import { Layer, References } from "effect"
import type { LogLevel } from "effect/LogLevel"
import type { Config } from "./config.ts"
import * as Engine from "./engine.ts"
import * as FileStore from "./file-store.ts"
import * as RedisStore from "./redis-store.ts"
import type { StoreError } from "./token-error.ts"
import { TokenStore, layerMemory, type TokenStoreShape } from "./token-store.ts"

export type StoreChoice = "memory" | "file" | TokenStoreShape

export const storeLayer = (config: Config, fallback: "memory" | "file" = "memory"): Layer.Layer<TokenStore, StoreError> => {
  const type = config.store?.type ?? fallback
  switch (type) {
    case "memory": return layerMemory
    case "file": return FileStore.layerFile({ dir: config.store?.path, encryptionKey: config.store?.encryptionKey })
    case "redis": return RedisStore.layer({ url: config.store?.url, keyPrefix: config.store?.keyPrefix, encryptionKey: config.store?.encryptionKey })
  }
}

const levels: ReadonlyArray<LogLevel> = ["All", "Fatal", "Error", "Warn", "Info", "Debug", "Trace", "None"]

/** $TESSERA_LOG_LEVEL (any case), else Warn: a library should not chatter on its host's console. */
export const logLevel = (env: NodeJS.ProcessEnv = process.env): LogLevel =>
  levels.find((l) => l.toLowerCase() === (env["TESSERA_LOG_LEVEL"] ?? "").toLowerCase()) ?? "Warn"

export const layer = (config: Config, store: StoreChoice = "memory"): Layer.Layer<Engine.Engine, StoreError> =>
  Layer.merge(
    Engine.layer(config).pipe(Layer.provide(typeof store === "string" ? storeLayer(config, store) : Layer.succeed(TokenStore, store))),
    Layer.succeed(References.MinimumLogLevel, logLevel())
  ) as Layer.Layer<Engine.Engine, StoreError>
