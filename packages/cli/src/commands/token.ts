/** `tessera token <connection>`: prints a connection's access token (alone, so `$(tessera token x)` works), or
 *  with --dry-run / --curl the request that would get one. Tokens live in the encrypted file store, so later
 *  invocations reuse them until the manifest's early-refresh margin.
 *
 *  The cache never stands between the caller and a token: --no-cache uses no cache directory at all, --dry-run and
 *  --curl only read one (and create nothing), a cache that cannot be opened is replaced by none, and a token that
 *  cannot be cached (a full disk) is printed anyway; each with a warning on stderr naming the path. */
import { Engine, FileStore, Runtime, TokenRequest, TokenStore, type Config, type TokenError } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as HitRecord from "../hit-record.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"

const flags = {
  connection: Argument.String("connection").pipe(Argument.withDescription("a connection name from the config")),
  config: ConfigDiscovery.flag,
  json: Flags.toggle(
    "json",
    "print one JSON object {connection, provider, access_token, token_type, expires_at, expiry_source}: expires_at is when tessera treats the token as expired, expiry_source where that came from (expires_in, expires_at, jwt_exp, ttl, or default: the manifest's default lifetime); failures as {error: {code, message}} on stderr"
  ),
  noCache: Flags.toggle(
    "no-cache",
    "neither read nor write the token cache (no cache directory is needed): always ask the provider"
  ),
  force: Flags.toggle(
    "force",
    "renew even if the cached token is still fresh (uses the refresh token when there is one)"
  ),
  dryRun: Flags.toggle(
    "dry-run",
    "print the request that would be sent, secrets masked as ***, and send nothing (the cache is only read, never created)"
  ),
  curl: Flags.toggle("curl", "print the request as a curl command, secrets masked, and send nothing"),
  showSecrets: Flags.toggle("show-secrets", "with --dry-run or --curl: print secrets instead of ***")
}

export interface Options {
  readonly connection: string
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly noCache: boolean
  readonly force: boolean
  readonly dryRun: boolean
  readonly curl: boolean
  readonly showSecrets: boolean
}

/** The flow the engine would run next: refresh when a refresh token is cached and the manifest has that flow. */
const nextFlow = (
  engine: Engine.EngineShape,
  o: Options
): Effect.Effect<"acquire" | "refresh", TokenError.TokenError> =>
  Effect.gen(function* () {
    if (o.noCache) return "acquire"
    const c = yield* engine.connection(o.connection)
    if (!c.manifest.flows.refresh) return "acquire"
    const state = yield* engine.cacheState(o.connection)
    return state.cached && state.hasRefreshToken ? "refresh" : "acquire"
  })

/** The request as an HTTP message: request line, headers, blank line, body. */
const httpText = (method: string, e: ReturnType<typeof TokenRequest.encode>): string =>
  [
    `${method} ${e.url}`,
    ...Object.entries(e.headers).map(([k, v]) => `${k}: ${v}`),
    ...(e.body === undefined ? [] : ["", e.body])
  ].join("\n")

const describe = (engine: Engine.EngineShape, o: Options) =>
  Effect.gen(function* () {
    const req = yield* engine.describeRequest(o.connection, yield* nextFlow(engine, o))
    if (o.curl) return yield* Console.log(TokenRequest.toCurl(req, { showSecrets: o.showSecrets }))
    const e = TokenRequest.encode(req, { mask: !o.showSecrets })
    if (o.json)
      return yield* Report.json({
        flow: req.flow,
        method: req.method,
        url: e.url,
        headers: e.headers,
        body: e.body ?? null
      })
    yield* Console.log(httpText(req.method, e))
  })

/** The store for this invocation: a memory store for --no-cache (the engine neither reads nor writes it), the file
 *  cache opened without creating anything for --dry-run / --curl, else the configured store, a file cache that
 *  cannot be opened giving way to none (with a warning). */
const storeFor = (config: Config.Config, o: Options): Effect.Effect<Runtime.StoreChoice, TokenError.StoreError> => {
  if (o.noCache) return Effect.succeed(TokenStore.makeMemory())
  // memory or redis: Runtime builds what the config names.
  if ((config.store?.type ?? "file") !== "file") return Effect.succeed("file")
  return FileStore.makeFileOrMemory({
    dir: config.store?.path,
    encryptionKey: config.store?.encryptionKey,
    create: !(o.dryRun || o.curl)
  })
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const { config, missing } = yield* ConfigDiscovery.loadOrBundled(o.config).pipe(
      Effect.catch(Report.failWith({ json: o.json }))
    )
    // The level the CLI chose (--log-level, else $TESSERA_LOG_LEVEL) also governs the engine's logs.
    const level = yield* References.MinimumLogLevel
    const store = yield* storeFor(config, o).pipe(
      Effect.catch(Report.failWith({ json: o.json, secrets: Report.secretsOf(config) }))
    )
    const program = Effect.gen(function* () {
      const engine = yield* Engine.Engine
      if (o.dryRun || o.curl) return yield* describe(engine, o)
      const result = yield* engine
        .getToken(o.connection, { force: o.force, noCache: o.noCache })
        .pipe(Terminal.withSpinner(`getting a token for ${o.connection}`))
      yield* Effect.logInfo(`${result.decision.action}: ${result.decision.reason}`).pipe(
        Effect.annotateLogs({ connection: result.connection, provider: result.provider })
      )
      yield* o.json ? Report.json(Engine.toJson(result)) : Console.log(Redacted.value(result.accessToken))
      // Lets the next plain `tessera token` for this connection answer from the fast path (src/fast-path.ts).
      if (!o.noCache) yield* HitRecord.record(config, result)
    })
    yield* program.pipe(
      Effect.provide(Runtime.layer(config, store, { logLevel: level, connections: "sqlite" })),
      // Without a config file, a connection that is not stored either is best explained by the missing file.
      Effect.catchTag("UnknownConnection", (e) => Effect.fail(missing ?? e)),
      Effect.catch(Report.failWith({ json: o.json, secrets: Report.secretsOf(config) }))
    )
  }).pipe(Effect.withSpan("tessera.cli.token"))

export const command = Command.make("token", flags, handler).pipe(
  Command.withDescription(
    "Print a connection's access token on stdout, from the cache while it is fresh, renewed otherwise. " +
      "Exit 0 on success, 1 when the provider, the network or the cache fails, 2 when the config or the command line is wrong."
  ),
  Command.withShortDescription("Print a connection's access token"),
  Command.withExamples([
    {
      command: `curl -H "Authorization: Bearer $(tessera token crm)" https://api.example.com/v1/me`,
      description: "Use the token of connection crm in a script"
    },
    { command: "tessera token crm --json --config ./tessera.yaml", description: "Token, type and expiry as JSON" },
    {
      command: "tessera token crm --curl",
      description: "Show the token request as a curl command (secrets masked), send nothing"
    }
  ])
)
