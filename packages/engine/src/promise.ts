/** The Promise API for services that do not use Effect: load a config, get tokens, make authenticated calls.
 *
 *    const tessera = await createTessera({ config: "tessera.yaml" })
 *    const token = await tessera.getToken("crm")            // the access token, renewed as needed
 *    const res = await tessera.fetch("dvinci", "/dvinciUsers/")   // below the manifest's api.base_url
 *    await tessera.close()
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Api from "./api.ts"
import * as Config from "./config.ts"
import type { ConfigDocument } from "./generated/config.ts"
import type * as Registry from "./connection-registry.ts"
import * as Engine from "./engine.ts"
import type { Listener } from "./events.ts"
import * as Runtime from "./runtime.ts"

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

export interface FetchInit extends RequestInit {
  /** WARNING: lets an absolute URL on another origin than the connection's API origin carry its token. Each such
   *  call is logged as a warning. */
  readonly allowForeignOrigin?: boolean | undefined
}

export interface Tessera {
  /** The access token for a connection, from cache or renewed. */
  readonly getToken: (connection: string, options?: Engine.GetOptions) => Promise<string>
  /** The token with its type, expiry and the engine's decision. */
  readonly getTokenResult: (connection: string, options?: Engine.GetOptions) => Promise<Engine.TokenResult>
  /** fetch() with the connection's token applied (Api.call): a path is resolved below the manifest's api.base_url;
   *  an absolute URL must be on that API origin unless `init.allowForeignOrigin` is set. On a 401 the token is
   *  invalidated (once per token) and the call retried once. Redirects are not followed; both bodies are buffered
   *  (answers up to 100 MiB), within the config's http.total_timeout_ms. */
  readonly fetch: (connection: string, url: string | URL, init?: FetchInit) => Promise<Response>
  readonly invalidate: (connection: string) => Promise<void>
  readonly subscribe: (listener: Listener) => () => void
  /** Called: the names of the config file's connections. Its methods (`put`, `get`, `delete`, `list`) manage
   *  connections created at runtime (one per customer), kept in the connection store beside the config's. */
  readonly connections: (() => ReadonlyArray<string>) & ConnectionsApi
  readonly close: () => Promise<void>
  /** The Effect runtime, for mixing with Effect code. */
  readonly runtime: ManagedRuntime.ManagedRuntime<Engine.Engine, unknown>
}

// RFC 9110 §15: these answers have no body, and a WHATWG Response refuses one for them.
const nullBodyStatus = new Set([101, 103, 204, 205, 304])

// Fetch §2.2.1: these methods are normalized to upper case; any other is sent as written.
const normalizedMethods = new Set(["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"])

/** The call as fetch() would send it: its method, header lines and body bytes (fetch's own extraction, so a string,
 *  URLSearchParams, Blob, FormData or stream body gets the same bytes and default Content-Type). */
const toCall = async (url: string | URL, init: FetchInit): Promise<Api.CallRequest> => {
  const { allowForeignOrigin: _, ...rest } = init
  const given = rest.method ?? "GET"
  const method = normalizedMethods.has(given.toUpperCase()) ? given.toUpperCase() : given
  const headers = new Headers(rest.headers)
  if (rest.body === undefined || rest.body === null) return { method, target: url, headers: [...headers] }
  if (method === "GET" || method === "HEAD") throw new TypeError("Request with GET/HEAD method cannot have body.")
  const extracted = new Response(rest.body)
  const body = new Uint8Array(await extracted.arrayBuffer())
  const type = extracted.headers.get("content-type")
  if (type !== null && !headers.has("content-type")) headers.set("content-type", type)
  return { method, target: url, headers: [...headers], body }
}

const toResponse = (r: Api.CallResponse): Response => {
  const headers = new Headers()
  for (const [k, v] of r.headers) headers.append(k, v)
  const body = nullBodyStatus.has(r.status) ? null : new Uint8Array(r.body)
  return new Response(body, { status: r.status, statusText: r.statusText, headers })
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
  const authorizedFetch = async (name: string, url: string | URL, init: FetchInit = {}): Promise<Response> => {
    const call = await toCall(url, init)
    try {
      const options = { allowForeignOrigin: init.allowForeignOrigin }
      return toResponse(await run(Api.call(engine, name, call, options), init.signal))
    } catch (e) {
      // Like fetch: an aborted call rejects with the signal's reason.
      if (init.signal?.aborted) throw init.signal.reason
      throw e
    }
  }
  // The last hit's resolved promise: the same token asked for again is given the same promise (a promise is
  // immutable once resolved), so a repeated hit allocates nothing.
  let last: { readonly name: string; readonly value: string; readonly promise: Promise<string> } | undefined
  return {
    // Not async: a cache hit costs one resolved promise, not an async function's machinery as well.
    getToken: (name, opts) => {
      const hit = opts?.force || opts?.noCache ? undefined : engine.peekValue(name)
      if (hit === undefined) return run(engine.getToken(name, opts)).then((r) => Redacted.value(r.accessToken))
      if (last !== undefined && last.value === hit && last.name === name) return last.promise
      const promise = Promise.resolve(hit)
      last = { name, value: hit, promise }
      return promise
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
