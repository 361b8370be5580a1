/** One tessera instance in its own process for the 3-process herd: an engine over the Redis store (the resilient
 *  `RedisStore.layer` that Runtime uses for `store: { type: redis }`), for the connection in $BENCH_WORKER (JSON:
 *  { redisUrl, encryptionKey, connections }). Adapted from packages/engine/test/services/redis-worker.ts.
 *  Ops:
 *    prepare { prefix }  -> builds a fresh engine whose Redis keys start with `prefix` (a cold cache), connected
 *    get { n }           -> n concurrent getToken calls; { actions: {acquired: 1, reused: 999}, errors: [...], ms }
 *    health              -> the store's health */
import { Engine, Config, Http } from "@tessera/engine"
import { RedisStore } from "@tessera/engine/redis"
import { Effect, Layer, ManagedRuntime, Redacted, References } from "effect"
import { serve } from "./child.ts"

interface Settings {
  readonly redisUrl: string
  readonly encryptionKey: string
  readonly connections: Record<string, unknown>
}
const settings = JSON.parse(process.env["BENCH_WORKER"] ?? "{}") as Settings
const config = await Effect.runPromise(
  Config.fromObject({
    connections: settings.connections,
    http: { timeout_ms: 10_000, total_timeout_ms: 15_000, retries: 0 }
  } as never)
)
const name = Object.keys(settings.connections)[0]!

let current: { rt: ManagedRuntime.ManagedRuntime<Engine.Engine, unknown>; engine: Engine.EngineShape } | undefined

const prepare = async (prefix: string) => {
  await current?.rt.dispose()
  const store = RedisStore.layer({
    url: Redacted.make(settings.redisUrl),
    keyPrefix: prefix,
    encryptionKey: Redacted.make(settings.encryptionKey)
  })
  const rt = ManagedRuntime.make(
    Layer.merge(
      // The engine's token exchanges go through the Http service (issue 13): the Node one, over undici.
      Engine.layer(config).pipe(Layer.provide(store), Layer.provide(Http.layer)),
      Layer.succeed(References.MinimumLogLevel, "Warn")
    ) as Layer.Layer<Engine.Engine, unknown>
  )
  const engine = await rt.runPromise(Engine.Engine)
  current = { rt, engine }
  return rt.runPromise(engine.storeHealth())
}

serve(
  { pid: process.pid },
  {
    prepare: ({ prefix }) => prepare(String(prefix)),
    health: () => (current ? current.rt.runPromise(current.engine.storeHealth()) : undefined),
    get: async ({ n }) => {
      if (!current) throw new Error("prepare first")
      const { rt, engine } = current
      const t0 = performance.now()
      const outcomes = await rt.runPromise(
        Effect.all(
          Array.from({ length: Number(n) }, () => Effect.result(engine.getToken(name))),
          { concurrency: "unbounded" }
        )
      )
      const ms = performance.now() - t0
      const actions: Record<string, number> = {}
      const errors: string[] = []
      const tokens = new Set<string>()
      for (const o of outcomes) {
        if (o._tag === "Success") {
          actions[o.success.decision.action] = (actions[o.success.decision.action] ?? 0) + 1
          tokens.add(Redacted.value(o.success.accessToken).slice(-16))
        } else errors.push(`${o.failure._tag}: ${o.failure.message}`)
      }
      return { actions, errors: errors.slice(0, 5), errorCount: errors.length, distinctTokens: tokens.size, ms }
    }
  },
  async () => {
    await current?.rt.dispose()
  }
)
