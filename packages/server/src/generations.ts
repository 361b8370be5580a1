/** Engine generations: one engine (with its API keys) per loaded config, swapped on reload without dropping
 *  requests.
 *
 *  Each request leases the generation that is current when it arrives and keeps it to the end, so a reload never
 *  changes the engine or the keys under a request in flight. A retired generation is disposed (store closed,
 *  event subscription dropped) when its last lease is released. The in-memory token store is shared by all
 *  generations, so a reload does not throw away every cached token; its keys hash the connection's inputs, so a
 *  connection whose inputs changed gets a fresh token. */
import { Layer, ManagedRuntime } from "effect"
import { Engine, Runtime, TokenStore, type Config, type Events } from "@tessera/engine"
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
  /** Disposes every generation (call after the last request ended). */
  readonly dispose: () => Promise<void>
}

export interface Options {
  /** "memory" (default unless the config names a store), "file", or a store implementation shared by all. */
  readonly store?: Runtime.StoreChoice | undefined
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

export const make = async (config: Config.Config, options: Options = {}): Promise<Generations> => {
  const sharedMemory = TokenStore.makeMemory()
  const storeFor = (c: Config.Config): Runtime.StoreChoice => {
    if (typeof options.store === "object") return options.store
    const type = c.store?.type ?? options.store ?? "memory"
    if (type === "redis") throw new TypeError("store type redis is not available to the server yet; use memory or file")
    return type === "memory" ? sharedMemory : "file"
  }

  let next = 1
  const build = async (c: Config.Config): Promise<Slot> => {
    // API keys first: a bad key list must fail before any store is opened.
    const auth = ApiKeyAuth.make(c.server.apiKeys)
    const store = storeFor(c)
    const runtime = ManagedRuntime.make(Runtime.layer(c, store) as Layer.Layer<Engine.Engine, unknown>)
    const engine = await runtime.runPromise(Engine.Engine).catch(async (e: unknown) => {
      await runtime.dispose()
      throw e
    })
    const unsubscribe = options.onEvent ? engine.subscribe(options.onEvent) : () => {}
    const generation: Generation = { id: next++, config: c, engine, auth }
    return {
      generation,
      leases: 0,
      retired: false,
      dispose: () => {
        unsubscribe()
        return runtime.dispose()
      }
    }
  }

  const disposeSlot = (s: Slot): Promise<void> => (s.disposing ??= s.dispose())
  const live = new Set<Slot>()
  let current = await build(config)
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
      const slot = await build(c)
      const old = current
      current = slot
      live.add(slot)
      retire(old)
      return slot.generation
    },
    dispose: async () => {
      await Promise.all([...live].map(disposeSlot))
      live.clear()
    }
  }
}
