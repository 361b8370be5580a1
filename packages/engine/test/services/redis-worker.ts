/** One tessera instance in its own process, for the cross-process Redis tests: an engine over the Redis store
 *  (`RedisStore.layer`) for the connections in $TESSERA_REDIS_WORKER (JSON). It reads one JSON command per stdin line
 *  and answers one JSON line on stdout; logs go to stderr. It exits when stdin closes, so it never outlives its
 *  parent.
 *    {"id":1,"op":"get","connection":"cube","n":300}  ->  {"id":1,"results":[{"token":"<sha256 prefix>","action":"acquired"}],"errors":[]}
 *    {"id":2,"op":"health"}                            ->  {"id":2,"health":{"status":"ok","detail":"..."}}
 *  Tokens are reported as a hash prefix, enough to compare them without printing secrets. */
import { Effect, Layer, Logger, ManagedRuntime, Redacted, References } from "effect"
import { createHash } from "node:crypto"
import { createInterface } from "node:readline"
import * as Config from "../../src/config.ts"
import * as Engine from "../../src/engine.ts"
import * as Http from "../../src/http.ts"
import * as RedisStore from "../../src/redis-store.ts"

export interface WorkerSettings {
  readonly redisUrl: string
  readonly keyPrefix: string
  readonly encryptionKey: string
  readonly leaseMs?: number
  readonly connections: Record<string, { readonly provider: string; readonly inputs: Record<string, string> }>
}

export type Command =
  | { readonly id: number; readonly op: "get"; readonly connection: string; readonly n: number }
  | { readonly id: number; readonly op: "health" }

export interface GetReply {
  readonly id: number
  readonly results: ReadonlyArray<{ readonly token: string; readonly action: string }>
  readonly errors: ReadonlyArray<string>
}

const settings = JSON.parse(process.env["TESSERA_REDIS_WORKER"] ?? "{}") as WorkerSettings
const hash = (s: string) => createHash("sha256").update(s).digest("hex").slice(0, 16)
const toStderr = Logger.make<unknown, void>((o) => {
  process.stderr.write(`[worker ${process.pid}] ${String(o.logLevel)} ${JSON.stringify(o.message)}\n`)
})

const main = async () => {
  const config = await Effect.runPromise(Config.fromObject({ connections: settings.connections }))
  const store = RedisStore.layer({
    url: Redacted.make(settings.redisUrl),
    keyPrefix: settings.keyPrefix,
    encryptionKey: Redacted.make(settings.encryptionKey),
    leaseMs: settings.leaseMs
  })
  const rt = ManagedRuntime.make(
    Layer.mergeAll(
      Engine.layer(config, {
        http: { timeoutMs: 15_000, totalTimeoutMs: 20_000, retries: 0, maxResponseBytes: 64 * 1024 }
      }).pipe(Layer.provide(store), Layer.provide(Http.layer)),
      Logger.layer([toStderr]),
      Layer.succeed(References.MinimumLogLevel, "Warn")
    )
  )
  const engine = await rt.runPromise(Effect.map(Engine.Engine, (e) => e))
  const reply = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`)
  const run = async (cmd: Command) => {
    switch (cmd.op) {
      case "get": {
        const outcomes = await rt.runPromise(
          Effect.all(
            Array.from({ length: cmd.n }, () => Effect.result(engine.getToken(cmd.connection))),
            { concurrency: "unbounded" }
          )
        )
        const results: Array<{ token: string; action: string }> = []
        const errors: string[] = []
        for (const o of outcomes) {
          if (o._tag === "Success")
            results.push({ token: hash(Redacted.value(o.success.accessToken)), action: o.success.decision.action })
          else errors.push(`${o.failure._tag}: ${o.failure.message}`)
        }
        return reply({ id: cmd.id, results, errors } satisfies GetReply)
      }
      case "health":
        return reply({ id: cmd.id, health: await rt.runPromise(engine.storeHealth()) })
    }
  }
  const lines = createInterface({ input: process.stdin })
  lines.on("line", (line) => {
    if (line.trim()) run(JSON.parse(line) as Command).catch((e) => reply({ error: String(e) }))
  })
  lines.on("close", () => {
    rt.dispose().finally(() => process.exit(0))
  })
  reply({ ready: true })
}

main().catch((e) => {
  process.stderr.write(`worker failed: ${String(e)}\n`)
  process.exit(1)
})
