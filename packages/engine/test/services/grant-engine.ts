/** An engine over one `oauth2` connection that takes a user's grant from the loopback grant server
 *  (@tessera/testkit/grant-server), with a given token store and connection store: what the grant tests share. */
import { Effect } from "effect"
import { oauth2Inputs, type GrantServer } from "@tessera/testkit/grant-server"
import * as Config from "../../src/config.ts"
import type { ConnectionStoreShape } from "../../src/connection-store.ts"
import * as Engine from "../../src/engine.ts"
import * as Events from "../../src/events.ts"
import * as Http from "../../src/http.ts"
import { makeMemory, type TokenStoreShape } from "../../src/token-store.ts"
import { fastHttp } from "./harness.ts"

export const grantInputs = (gs: GrantServer, more: Record<string, string> = {}): Record<string, string> =>
  oauth2Inputs(gs, { scope: "read write", ...more })

export interface GrantEngine {
  readonly engine: Engine.EngineShape
  readonly events: Events.TokenEvent[]
  readonly run: <A, E>(e: Effect.Effect<A, E>) => Promise<A>
  readonly fail: <A, E>(e: Effect.Effect<A, E>) => Promise<E>
}

export const makeGrantEngine = async (opts: {
  readonly connections: Record<string, { provider: string; inputs: Record<string, string> }>
  readonly connectionStore?: ConnectionStoreShape | undefined
  readonly tokenStore?: TokenStoreShape | undefined
  /** Declares `connection_store:` in the config (so every connection's refresh token is kept in grants). */
  readonly explicitStore?: boolean | undefined
  /** Directories of extra provider manifests (absolute paths), as the config's `providers:`. */
  readonly providers?: ReadonlyArray<string> | undefined
}): Promise<GrantEngine> => {
  const config = await Effect.runPromise(
    Config.fromObject({
      connections: opts.connections,
      ...(opts.explicitStore ? { connection_store: { type: "memory" } } : {}),
      ...(opts.providers ? { providers: [...opts.providers] } : {})
    })
  )
  const engine = Effect.runSync(
    Engine.make(config, opts.tokenStore ?? makeMemory(), {
      http: fastHttp,
      ...(opts.connectionStore ? { connectionStore: Effect.succeed(opts.connectionStore) } : {})
    }).pipe(Effect.provide(Http.layer))
  )
  const events: Events.TokenEvent[] = []
  engine.subscribe((e) => events.push(e))
  return {
    engine,
    events,
    run: (e) => Effect.runPromise(e),
    fail: async (e) => {
      const r = await Effect.runPromise(Effect.result(e))
      if (r._tag === "Success") throw new Error("expected a failure")
      return r.failure
    }
  }
}

/** Follows the authorization URL as a browser would (the grant server consents at once) and answers the query the
 *  redirect brings back. */
export const consent = async (url: string): Promise<URLSearchParams> => {
  const res = await fetch(url, { redirect: "manual" })
  const location = res.headers.get("location")
  if (res.status !== 302 || !location) throw new Error(`authorize answered ${res.status}`)
  return new URL(location).searchParams
}
