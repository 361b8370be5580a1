/** Where tokens are kept between calls and shared between processes. The engine keeps its own in-process copy in
 *  front of the store, so a store is read on a miss and written on every new token. `withLock` gives
 *  cross-process single-flight where the store supports it (file: a lock file; Redis: SET NX PX); the memory store
 *  needs none beyond the engine's own single-flight.
 *
 *  Every store holds a `keySecret`: the engine names entries with an HMAC of the connection's inputs under it
 *  (token-cache.ts `cacheKey`), so a key listed in a directory, in `cache list --json` or in Redis cannot be used to test
 *  guesses of a secret input offline. Stores that persist derive it from their encryption key (`keySecretFrom`), so
 *  every process holding that key finds the same entries; the memory store draws a random one. */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomBytes } from "node:crypto"
import { Stored } from "./token.ts"
import type { StoreError } from "./token-error.ts"

/** What a store keeps under a key: whose token it is, and the token. */
export const Entry = Schema.Struct({ connection: Schema.String, provider: Schema.String, token: Stored })
export type Entry = typeof Entry.Type

const decodeEntryJson = Schema.decodeUnknownOption(Schema.fromJsonString(Entry))

/** An entry from the JSON text a store opened; undefined when it is not JSON or not an entry of this version
 *  (damaged, or written by another version: a miss, which the next write replaces). */
export const decodeEntry = (text: string): Entry | undefined => Option.getOrUndefined(decodeEntryJson(text))

export interface TokenStoreShape {
  readonly name: string
  /** The HMAC key of this store's entry keys (32 bytes). Processes sharing the store must hold the same one. */
  readonly keySecret: Buffer
  readonly get: (key: string) => Effect.Effect<Entry | undefined, StoreError>
  readonly set: (key: string, entry: Entry) => Effect.Effect<void, StoreError>
  readonly delete: (key: string) => Effect.Effect<void, StoreError>
  readonly list: () => Effect.Effect<ReadonlyArray<readonly [string, Entry]>, StoreError>
  readonly clear: () => Effect.Effect<number, StoreError>
  /** Runs `effect` while holding the store-wide lock for `key` (a lease, so a dead holder frees it). */
  readonly withLock: <A, E, R>(key: string, effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /** Whether the store is reachable; `degraded` means it works on a local fallback (readyz reports it). */
  readonly health: () => Effect.Effect<StoreHealth>
}

export interface StoreHealth {
  readonly status: "ok" | "degraded" | "down"
  readonly detail: string
}

export class TokenStore extends Context.Service<TokenStore, TokenStoreShape>()("tessera/TokenStore") {}

/** The entry-key secret of a store whose values are sealed under `encryptionKey`: HKDF-SHA256 with its own label, so
 *  the secret is not the encryption key itself and neither reveals the other (secret-box.ts, which needs no Effect). */
export { keySecretFrom } from "./secret-box.ts"

/** This process only. */
export const makeMemory = (): TokenStoreShape => {
  const entries = new Map<string, Entry>()
  return {
    name: "memory",
    keySecret: randomBytes(32),
    get: (key) => Effect.sync(() => entries.get(key)),
    set: (key, entry) =>
      Effect.sync(() => {
        entries.set(key, entry)
      }),
    delete: (key) =>
      Effect.sync(() => {
        entries.delete(key)
      }),
    list: () => Effect.sync(() => [...entries]),
    clear: () =>
      Effect.sync(() => {
        const n = entries.size
        entries.clear()
        return n
      }),
    withLock: (_key, effect) => effect,
    health: () => Effect.succeed({ status: "ok", detail: "memory" })
  }
}

export const layerMemory: Layer.Layer<TokenStore> = Layer.sync(TokenStore, makeMemory)
