/** The Promise API for services that do not use Effect: load a config, get tokens, make authenticated calls.
 *
 *    const tessera = await createTessera({ config: "tessera.yaml" })
 *    const token = await tessera.getToken("crm")            // the access token, renewed as needed
 *    const res = await tessera.fetch("dvinci", "/dvinciUsers/")   // relative to the manifest's api.base_url
 *    await tessera.close()
 */
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as Config from "./config.ts"
import type { ConfigDocument } from "./generated/config.ts"
import type * as Registry from "./connection-registry.ts"
import * as Engine from "./engine.ts"
import type { Listener } from "./events.ts"
import * as Runtime from "./runtime.ts"
import * as Template from "./template.ts"

export interface CreateOptions {
  /** A path to tessera.yaml, or the config itself as an object. */
  readonly config: string | ConfigDocument
  /** Token store: "memory" (default unless the config names one), "file", or your own implementation. */
  readonly store?: Runtime.StoreChoice | undefined
  /** Where runtime connections live when the config has no connection_store: "memory" (default), "sqlite", "none",
   *  or your own implementation. */
  readonly connectionStore?: Runtime.ConnectionStoreChoice | undefined
  readonly env?: NodeJS.ProcessEnv | undefined
}

export interface Tessera {
  /** The access token for a connection, from cache or renewed. */
  readonly getToken: (connection: string, options?: Engine.GetOptions) => Promise<string>
  /** The token with its type, expiry and the engine's decision. */
  readonly getTokenResult: (connection: string, options?: Engine.GetOptions) => Promise<Engine.TokenResult>
  /** fetch() with the connection's token applied; a relative URL is resolved against the manifest's api.base_url.
   *  On a 401 the token is invalidated and the call retried once (when the body can be sent again). */
  readonly fetch: (connection: string, url: string | URL, init?: RequestInit) => Promise<Response>
  readonly invalidate: (connection: string) => Promise<void>
  readonly subscribe: (listener: Listener) => () => void
  /** Called: the names of the config file's connections. Its methods (`put`, `get`, `delete`, `list`) manage
   *  connections created at runtime (one per customer), kept in the connection store beside the config's. */
  readonly connections: (() => ReadonlyArray<string>) & ConnectionsApi
  readonly close: () => Promise<void>
  /** The Effect runtime, for mixing with Effect code. */
  readonly runtime: ManagedRuntime.ManagedRuntime<Engine.Engine, unknown>
}

const replayable = (body: RequestInit["body"]) =>
  body === undefined ||
  body === null ||
  typeof body === "string" ||
  body instanceof URLSearchParams ||
  body instanceof Uint8Array ||
  body instanceof ArrayBuffer ||
  body instanceof Blob

/** Resolves `url` against the connection's API base URL unless it is absolute. */
export const apiUrl = (base: string | undefined, url: string | URL): URL => {
  if (url instanceof URL) return url
  if (/^https?:\/\//i.test(url)) return new URL(url)
  if (!base) throw new TypeError(`"${url}" is relative but the connection's provider has no api.base_url`)
  return new URL(`${base.replace(/\/+$/, "")}/${url.replace(/^\/+/, "")}`)
}

/** The connection store through the Promise API. Failures reject with the engine's tagged errors
 *  (`ConnectionInvalid` with every problem located, `ConnectionConflict`, `ConnectionStoreError`). */
export interface ConnectionsApi {
  /** Creates or replaces a connection: `{ provider, inputs, tags, allow_insecure_http }`, values taken literally. */
  readonly put: (
    name: string,
    connection: ConnectionInput
  ) => Promise<{ readonly created: boolean; readonly connection: Registry.ConnectionView }>
  /** The connection (secret inputs as "***"), or undefined. */
  readonly get: (name: string) => Promise<Registry.ConnectionView | undefined>
  /** True when it existed; its cached tokens are forgotten. */
  readonly delete: (name: string) => Promise<boolean>
  /** Config and stored connections in name order, a page at a time. */
  readonly list: (query?: Registry.ListQuery) => Promise<Registry.ListPage>
}

export interface ConnectionInput {
  readonly provider: string
  readonly inputs?: Readonly<Record<string, string | number | boolean>> | undefined
  readonly tags?: Readonly<Record<string, string>> | undefined
  readonly allow_insecure_http?: boolean | undefined
}

export const createTessera = async (options: CreateOptions): Promise<Tessera> => {
  const config = await Effect.runPromise(
    typeof options.config === "string"
      ? Config.load(options.config, options.env)
      : Config.fromObject(options.config, options.env)
  )
  const runtime = ManagedRuntime.make(
    Runtime.layer(config, options.store ?? "memory", {
      connections: options.connectionStore ?? "memory"
    }) as Layer.Layer<Engine.Engine, unknown>
  )
  const engine: Engine.EngineShape = await runtime.runPromise(Engine.Engine)
  const run = <A>(eff: Effect.Effect<A, unknown, Engine.Engine>, signal?: AbortSignal | null): Promise<A> =>
    runtime.runPromise(eff, signal ? { signal } : undefined)
  const baseUrl = (name: string): string | undefined => {
    const c = config.connections.get(name)
    if (!c?.manifest.api) return undefined
    const r = Template.render(c.manifest.api.baseUrl, { inputs: (n) => c.inputs.get(n) })
    return r._tag === "Value" ? Template.reveal(r.value) : undefined
  }
  const authorizedFetch = async (name: string, url: string | URL, init: RequestInit = {}): Promise<Response> => {
    const target = apiUrl(baseUrl(name), url)
    const call = async (force: boolean) => {
      const auth = await run(engine.authorization(name, force ? { force: true } : undefined), init.signal)
      const headers = new Headers(init.headers)
      headers.set(auth.header, Redacted.value(auth.value))
      return fetch(target, { ...init, headers, redirect: init.redirect ?? "manual" })
    }
    const res = await call(false)
    if (res.status !== 401 || !replayable(init.body)) return res
    await res.body?.cancel()
    await run(engine.invalidate(name))
    return call(false)
  }
  return {
    // Not async: a cache hit costs one resolved promise, not an async function's machinery as well.
    getToken: (name, opts) => {
      const hit = opts?.force || opts?.noCache ? undefined : engine.peek(name)
      return hit
        ? Promise.resolve(Redacted.value(hit.accessToken))
        : run(engine.getToken(name, opts)).then((r) => Redacted.value(r.accessToken))
    },
    getTokenResult: (name, opts) => run(engine.getToken(name, opts)),
    fetch: authorizedFetch,
    invalidate: (name) => run(engine.invalidate(name)),
    subscribe: engine.subscribe,
    connections: Object.assign(() => [...config.connections.keys()], {
      put: (name: string, connection: ConnectionInput) =>
        run(engine.registry.put(name, connection)).then((r) => ({ created: r.created, connection: r.view })),
      get: (name: string) => run(engine.registry.view(name)),
      delete: (name: string) => run(engine.registry.remove(name)),
      list: (query?: Registry.ListQuery) => run(engine.registry.list(query))
    }),
    close: () => runtime.dispose(),
    runtime
  }
}
