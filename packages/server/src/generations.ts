/** Engine generations: one engine (with its API keys) per loaded config, swapped on reload without dropping
 *  requests.
 *
 *  Each request leases the generation that is current when it arrives and keeps it to the end, so a reload never
 *  changes the engine or the keys under a request in flight. A retired generation is disposed (its event and
 *  change subscriptions dropped) when its last lease is released.
 *
 *  The token store (memory, file or Redis) and the connection store are opened once, from the config the server
 *  started with, and shared by every generation: a reload keeps every cached token (keys hash the connection's
 *  inputs, so a connection whose inputs changed gets a fresh one) and never reconnects to Redis or PostgreSQL.
 *  Changing `store:` or `connection_store:` takes a restart; a reload that changes them says so in the log. The
 *  webhook outbox is the connection store's (a process-local one without a store). */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import { ConnectionStore, Engine, Http, Runtime, TokenStore, type Config, type Events } from "@tessera/engine"
import * as ApiKeyAuth from "./api-key-auth.ts"

export interface Generation {
  /** 1 for the config the server started with, +1 per reload. */
  readonly id: number
  readonly config: Config.Config
  readonly engine: Engine.EngineShape
  readonly auth: ApiKeyAuth.ApiKeyAuth
}

export interface Lease {
  readonly generation: Generation
  /** Idempotent. */
  readonly release: () => void
}

export interface Generations {
  readonly current: () => Generation
  readonly acquire: () => Lease
  /** Builds a generation for `config` and makes it current. On failure the current one stays. */
  readonly load: (config: Config.Config) => Promise<Generation>
  /** Disposes every generation, then closes the shared stores (call after the last request ended). */
  readonly dispose: () => Promise<void>
  /** Whether `config` names other stores than the running ones (a restart applies them). */
  readonly storesDiffer: (config: Config.Config) => boolean
  /** The shared token store (background refresh takes its lock). */
  readonly tokenStore: TokenStore.TokenStoreShape
  /** The webhook outbox: the connection store's, or one in this process when there is none. */
  readonly outbox: ConnectionStore.OutboxShape
}

export interface Options {
  /** "memory" (default unless the config names a store), "file", or a store implementation shared by all. */
  readonly store?: Runtime.StoreChoice | undefined
  /** Where runtime connections live when the config has no connection_store: (default "memory"). */
  readonly connections?: Runtime.ConnectionStoreChoice | undefined
  /** Subscribed to each generation's engine. */
  readonly onEvent?: Events.Listener | undefined
}

interface Slot {
  readonly generation: Generation
  readonly dispose: () => Promise<void>
  leases: number
  retired: boolean
  disposing?: Promise<void>
}

/** Opens the shared stores inside `scope`. */
const openStores = async (config: Config.Config, options: Options, scope: Scope.Scope) => {
  const tokenLayer =
    typeof options.store === "object"
      ? Layer.succeed(TokenStore.TokenStore, options.store)
      : Runtime.storeLayer(config, options.store ?? "memory")
  const tokenStore = await Effect.runPromise(
    Effect.map(Layer.buildWithScope(tokenLayer, scope), (ctx) => Context.get(ctx, TokenStore.TokenStore))
  )
  const opener = Runtime.connectionStoreOpener(config, options.connections ?? "memory", scope)
  const connectionStore = opener ? await Effect.runPromise(opener) : undefined
  return { tokenStore, connectionStore }
}

export const make = async (config: Config.Config, options: Options = {}): Promise<Generations> => {
  const scope = Effect.runSync(Scope.make())
  const closeScope = () => Effect.runPromise(Scope.close(scope, Exit.void))
  const shared = await openStores(config, options, scope).catch(async (e: unknown) => {
    await closeScope()
    throw e
  })
  // Fail at start, not at the first request, when the connection store cannot be opened or migrated.
  const opened = shared.connectionStore
    ? await Effect.runPromise(shared.connectionStore).catch(async (e: unknown) => {
        await closeScope()
        throw e
      })
    : undefined
  const outbox = opened?.outbox ?? ConnectionStore.makeMemoryOutbox()
  const storeSettings = (c: Config.Config) => JSON.stringify([c.store ?? null, c.connectionStore ?? null])
  const started = storeSettings(config)

  let next = 1
  const build = (c: Config.Config): Slot => {
    const auth = ApiKeyAuth.make(c.server.apiKeys)
    const engine = Effect.runSync(
      Engine.make(c, shared.tokenStore, { connectionStore: shared.connectionStore }).pipe(Effect.provide(Http.layer))
    )
    const unsubscribe = options.onEvent ? engine.subscribe(options.onEvent) : () => {}
    const generation: Generation = { id: next++, config: c, engine, auth }
    return {
      generation,
      leases: 0,
      retired: false,
      dispose: async () => {
        unsubscribe()
        engine.registry.dispose()
      }
    }
  }

  const disposeSlot = (s: Slot): Promise<void> => (s.disposing ??= s.dispose())
  const live = new Set<Slot>()
  let current = build(config)
  live.add(current)

  const retire = (s: Slot) => {
    s.retired = true
    if (s.leases === 0) void disposeSlot(s).finally(() => live.delete(s))
  }

  return {
    current: () => current.generation,
    acquire: () => {
      const slot = current
      slot.leases++
      let released = false
      return {
        generation: slot.generation,
        release: () => {
          if (released) return
          released = true
          slot.leases--
          if (slot.retired && slot.leases === 0) void disposeSlot(slot).finally(() => live.delete(slot))
        }
      }
    },
    load: async (c) => {
      const slot = build(c)
      const old = current
      current = slot
      live.add(slot)
      retire(old)
      return slot.generation
    },
    dispose: async () => {
      await Promise.all([...live].map(disposeSlot))
      live.clear()
      await closeScope()
    },
    storesDiffer: (c) => storeSettings(c) !== started,
    tokenStore: shared.tokenStore,
    outbox
  }
}
