/** Test harness: a sandbox on loopback plus an engine over a memory store, configured with one connection per
 *  bundled provider (named after the provider) pointing at the sandbox. */
import { Cause, Effect, Logger, References } from "effect"
import { startSandbox, type ProviderId, type Sandbox, type SandboxOptions } from "@tessera/testkit"
import * as Config from "../../src/config.ts"
import * as Engine from "../../src/engine.ts"
import * as Http from "../../src/http.ts"
import type { HttpSettings } from "../../src/config.ts"
import { makeMemory, type TokenStoreShape } from "../../src/token-store.ts"

export const providerIds: ReadonlyArray<ProviderId> = [
  "cube",
  "dvinci",
  "usage-engine",
  "brandbox",
  "crm-com",
  "oauth2"
]

export interface Harness {
  readonly sb: Sandbox
  readonly config: Config.Config
  readonly engine: Engine.EngineShape
  readonly store: TokenStoreShape
  /** Every log line the engine wrote, for secret scans. */
  readonly logs: string[]
  readonly run: <A, E>(eff: Effect.Effect<A, E>) => Promise<A>
  /** Runs and returns the failure (fails the test if it succeeds). */
  readonly fail: <A, E>(eff: Effect.Effect<A, E>) => Promise<E>
  readonly close: () => Promise<void>
}

export const fastHttp: HttpSettings = { timeoutMs: 2000, totalTimeoutMs: 8000, retries: 3, maxResponseBytes: 64 * 1024 }

export const makeHarness = async (
  opts: {
    sandbox?: SandboxOptions
    http?: Partial<HttpSettings>
    inputs?: Partial<Record<ProviderId, Record<string, string>>>
    extra?: (sb: Sandbox) => Record<string, { provider: string; inputs: Record<string, string> }>
    store?: TokenStoreShape
  } = {}
): Promise<Harness> => {
  const sb = await startSandbox(opts.sandbox)
  const connections: Record<string, { provider: string; inputs: Record<string, string> }> = {}
  for (const id of providerIds)
    connections[id] = { provider: id, inputs: { ...sb.credentials[id], ...opts.inputs?.[id] } }
  for (const [k, v] of Object.entries(opts.extra?.(sb) ?? {})) connections[k] = v
  const config = await Effect.runPromise(Config.fromObject({ connections }))
  const store = opts.store ?? makeMemory()
  const engine = Effect.runSync(
    Engine.make(config, store, { http: { ...fastHttp, ...opts.http } }).pipe(Effect.provide(Http.layer))
  )
  const logs: string[] = []
  const logger = Logger.make<unknown, void>((o) => {
    logs.push(
      `${String(o.logLevel)} ${JSON.stringify(o.message)} ${JSON.stringify(o.fiber.getRef(References.CurrentLogAnnotations))} ${Cause.pretty(o.cause)}`
    )
  })
  const withLogs = <A, E>(eff: Effect.Effect<A, E>) =>
    eff.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Trace"))
  return {
    sb,
    config,
    engine,
    store,
    logs,
    run: (eff) => Effect.runPromise(withLogs(eff)),
    fail: async (eff) => {
      const r = await Effect.runPromise(withLogs(Effect.result(eff)))
      if (r._tag === "Success") throw new Error(`expected a failure, got ${JSON.stringify(r.success)}`)
      return r.failure
    },
    close: () => sb.close()
  }
}
