/** In-process test harness: the real engine over a memory store, its token exchanges answered by `Http.makeReplay`
 *  from the recorded provider fixtures (providers/fixtures/<id>/*.json), its time the Clock of the calling fiber
 *  (TestClock under `it.effect`). One connection per bundled provider, named after it, with its fixture's inputs.
 *  No socket, no real sleep. */
import { Cause, Effect, Logger, References, Schema } from "effect"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Config from "../../src/config.ts"
import * as Engine from "../../src/engine.ts"
import * as Fixture from "../../src/fixture.ts"
import * as Http from "../../src/http.ts"
import type { HttpSettings } from "../../src/config.ts"
import { makeMemory, type TokenStoreShape } from "../../src/token-store.ts"

const fixturesDir = fileURLToPath(new URL("../../../../providers/fixtures/", import.meta.url))
const decode = Schema.decodeUnknownSync(Fixture.Fixture)

export const fixture = (id: string, name: string): Fixture.Fixture =>
  decode(JSON.parse(readFileSync(join(fixturesDir, id, `${name}.json`), "utf8")))

/** Which recording gives each provider's connection its inputs. */
const base: Readonly<Record<string, string>> = {
  cube: "success",
  dvinci: "success",
  "usage-engine": "success",
  brandbox: "success",
  "crm-com": "success",
  oauth2: "password"
}

/** When the recordings were made: the harness's clock starts here, so their Date headers show no skew. */
export const recordedAt = Date.parse("Mon, 23 Nov 2026 11:36:18 GMT")

export interface TokenChange {
  readonly access_token?: string
  readonly refresh_token?: string
  /** A string too: a provider that sends one (numeric or not). */
  readonly expires_in?: number | string
}

/** The object of a recorded body that holds the token (brandbox's is `body`). */
const holder = (body: Record<string, unknown>): Record<string, unknown> => {
  const inner = body["body"]
  return inner !== null && typeof inner === "object" && !Array.isArray(inner) && "access_token" in inner
    ? (inner as Record<string, unknown>)
    : body
}

/** A provider's recorded success, with the token fields changed. */
export const tokenAnswer = (id: string, change: TokenChange = {}, delayMs?: number): Http.Recorded => {
  const f = fixture(id, base[id] ?? "success")
  const body = structuredClone(f.response.body) as Record<string, unknown>
  Object.assign(holder(body), change)
  return { ...Fixture.recorded({ ...f, response: { ...f.response, body: body as Schema.Json } }), delayMs }
}

/** A provider's answer with this status, JSON body and extra headers, on its token URL. */
export const statusAnswer = (
  id: string,
  status: number,
  body: unknown = {},
  headers: Record<string, string> = {}
): Http.Recorded => {
  const f = fixture(id, base[id] ?? "success")
  return Fixture.recorded({
    ...f,
    response: { status, headers: { "content-type": "application/json", ...headers }, body: body as Schema.Json }
  })
}

/** The form fields a sent request carried. */
export const form = (r: Http.Request | undefined): Record<string, string> =>
  Object.fromEntries(new URLSearchParams(typeof r?.body === "string" ? r.body : ""))

export const fastHttp: HttpSettings = { timeoutMs: 2000, totalTimeoutMs: 8000, retries: 3, maxResponseBytes: 64 * 1024 }

export interface Replayed {
  readonly engine: Engine.EngineShape
  readonly replay: Http.Replay
  readonly store: TokenStoreShape
  readonly config: Config.Config
  /** Every log line the engine wrote. */
  readonly logs: string[]
  /** Provides the harness's logger (and Trace level) to an effect. */
  readonly logged: <A, E, R>(eff: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

export const make = (
  opts: {
    readonly answers?: ReadonlyArray<Http.Recorded>
    readonly http?: Partial<HttpSettings>
    readonly extra?: Record<string, { provider: string; inputs: Record<string, string> }>
  } = {}
): Effect.Effect<Replayed> =>
  Effect.gen(function* () {
    const connections: Record<string, { provider: string; inputs: Record<string, string> }> = { ...opts.extra }
    for (const [id, name] of Object.entries(base)) connections[id] = { provider: id, inputs: fixture(id, name).inputs }
    const config = yield* Effect.orDie(Config.fromObject({ connections }))
    const replay = Http.makeReplay(opts.answers ?? [])
    const store = makeMemory()
    const engine = yield* Engine.make(config, store, { http: { ...fastHttp, ...opts.http } }).pipe(
      Effect.provideService(Http.Http, replay)
    )
    const logs: string[] = []
    const logger = Logger.make<unknown, void>((o) => {
      logs.push(`${String(o.logLevel)} ${JSON.stringify(o.message)} ${Cause.pretty(o.cause)}`)
    })
    const logged = <A, E, R>(eff: Effect.Effect<A, E, R>) =>
      eff.pipe(Effect.provide(Logger.layer([logger])), Effect.provideService(References.MinimumLogLevel, "Trace"))
    return { engine, replay, store, config, logs, logged }
  })
