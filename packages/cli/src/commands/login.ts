/** `tessera login <connection>`: a user grants tessera access to a provider account, and the grant is kept in the
 *  connection store (the config's `connection_store:`, else SQLite in the user data dir), from where every later
 *  `tessera token` or server renews it.
 *
 *  - Authorization code with PKCE over an RFC 8252 loopback redirect: a one-shot HTTP listener on 127.0.0.1 (a free
 *    port, or the manifest's `authorization.redirect_port`) takes the redirect `http://127.0.0.1:<port>/callback`,
 *    the browser is opened on the authorization URL ($BROWSER, else xdg-open / open / start) or, with
 *    --no-browser, the URL is printed, and the callback's state is checked before the code is exchanged.
 *  - `--device` (RFC 8628): prints where to go and the code to enter, then polls at the provider's interval.
 *  Messages go to stderr; the one-line result goes to stdout (or --json). The code, state, verifier, device code
 *  and tokens are never printed. */
import { AuthorizationError, Engine, FileStore, Runtime, type Config, type TokenError } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as References from "effect/References"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { spawn } from "node:child_process"
import type { Server, ServerResponse } from "node:http"
import { createServer } from "../node-http.ts"
import type { AddressInfo } from "node:net"
import { InvalidArgument } from "../cli-error.ts"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"

const flags = {
  connection: Argument.String("connection").pipe(
    Argument.withDescription("the connection to authorize (config file or connection store)")
  ),
  config: ConfigDiscovery.flag,
  device: Flags.toggle(
    "device",
    "use the device flow (RFC 8628) for a machine without a browser: prints a URL and a code to enter elsewhere"
  ),
  noBrowser: Flags.toggle("no-browser", "print the authorization URL instead of opening a browser"),
  timeout: Flag.Int("timeout").pipe(
    Flag.withMetavar("SECONDS"),
    Flag.withDefault(300),
    Flag.withDescription("how long to wait for the user (default 300)")
  ),
  json: Flags.toggle(
    "json",
    "print {connection, provider, expires_at, refresh_token_stored} on success (never a token); failures as {error: {code, message}}"
  )
}

export interface Options {
  readonly connection: string
  readonly config: Option.Option<string>
  readonly device: boolean
  readonly noBrowser: boolean
  readonly timeout: number
  readonly json: boolean
}

const page = (title: string, text: string) => {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
  return `<!doctype html><html><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1><p>${esc(text)}</p></body></html>`
}

interface Callback {
  readonly query: URLSearchParams
  readonly respond: (status: number, title: string, text: string) => void
}

/** The loopback listener: resolves with the first request to /callback; anything else is 404. */
const listen = (port: number) =>
  Effect.acquireRelease(
    Effect.callback<{ server: Server; port: number; callback: Deferred.Deferred<Callback> }, InvalidArgument>(
      (resume) => {
        const callback = Deferred.makeUnsafe<Callback>()
        const server = createServer((req, res: ServerResponse) => {
          const url = new URL(req.url ?? "/", "http://127.0.0.1")
          if (req.method !== "GET" || url.pathname !== "/callback") {
            res.writeHead(404, { "content-type": "text/plain" }).end("not found")
            return
          }
          const respond = (status: number, title: string, text: string) => {
            res.writeHead(status, {
              "content-type": "text/html; charset=utf-8",
              "cache-control": "no-store",
              "referrer-policy": "no-referrer"
            })
            res.end(page(title, text))
          }
          Deferred.doneUnsafe(callback, Effect.succeed({ query: url.searchParams, respond }))
        })
        server.once("error", (e: NodeJS.ErrnoException) =>
          resume(
            Effect.fail(
              new InvalidArgument({
                argument: `redirect port ${port}`,
                reason: `cannot be listened on (${e.code ?? e.message})`,
                hint: "free that port, or remove authorization.redirect_port from the manifest to use a random one"
              })
            )
          )
        )
        server.listen(port, "127.0.0.1", () =>
          resume(Effect.succeed({ server, port: (server.address() as AddressInfo).port, callback }))
        )
      }
    ),
    ({ server }) =>
      Effect.callback<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

/** Opens the URL in the user's browser; never fails (the URL is printed too). */
const openBrowser = (url: string) =>
  Effect.sync(() => {
    const browser = process.env["BROWSER"]
    const [cmd, args] =
      browser !== undefined && browser !== ""
        ? [browser, [url]]
        : process.platform === "darwin"
          ? ["open", [url]]
          : process.platform === "win32"
            ? ["cmd", ["/c", "start", "", url]]
            : ["xdg-open", [url]]
    try {
      const child = spawn(cmd, args, { detached: true, stdio: "ignore" })
      child.on("error", () => undefined)
      child.unref()
    } catch {
      /* the URL is on the screen */
    }
  })

const timedOut = (c: { name: string; manifest: { id: string } }, seconds: number) =>
  new AuthorizationError.AuthorizationFailed({
    connection: c.name,
    provider: c.manifest.id,
    reason: "expired",
    detail: `no answer within ${seconds} s (--timeout)`
  })

const codeFlow = (engine: Engine.EngineShape, o: Options) =>
  Effect.scoped(
    Effect.gen(function* () {
      const c = yield* engine.connection(o.connection)
      const fixed = c.manifest.authorization?.redirectPort
      const l = yield* listen(fixed ?? 0)
      const redirectUri = `http://127.0.0.1:${l.port}/callback`
      const pending = yield* engine.grants.authorize(o.connection, redirectUri)
      if (o.noBrowser) yield* Console.error(`To authorize ${o.connection}, open this URL in a browser:\n${pending.url}`)
      else {
        yield* Console.error(
          `Opening the browser to authorize ${o.connection}. If it does not open, visit:\n${pending.url}`
        )
        yield* openBrowser(pending.url)
      }
      yield* Console.error(`Waiting for the redirect to ${redirectUri} ...`)
      const cb = yield* Deferred.await(l.callback).pipe(
        Effect.timeoutOrElse({
          duration: Duration.seconds(o.timeout),
          orElse: () => Effect.fail(timedOut(c, o.timeout))
        })
      )
      return yield* engine.grants.complete(o.connection, pending, cb.query).pipe(
        Effect.tap(() =>
          Effect.sync(() =>
            cb.respond(200, "tessera: authorized", `${o.connection} is authorized. You can close this window.`)
          )
        ),
        Effect.tapError((e) =>
          Effect.sync(() =>
            cb.respond(e._tag === "AuthorizationFailed" ? 400 : 502, "tessera: not authorized", e.message)
          )
        )
      )
    })
  )

const deviceFlow = (engine: Engine.EngineShape, o: Options) =>
  Effect.gen(function* () {
    const c = yield* engine.connection(o.connection)
    const started = yield* engine.grants.startDevice(o.connection)
    yield* Console.error(
      [
        `To authorize ${o.connection}, open ${started.verificationUri} and enter the code: ${started.userCode}`,
        ...(started.verificationUriComplete ? [`(or open ${started.verificationUriComplete})`] : []),
        `Waiting for approval (polling every ${started.interval} s) ...`
      ].join("\n")
    )
    return yield* engine.grants
      .completeDevice(o.connection, started, (w) =>
        Effect.logDebug(`still waiting (${w.reason}); next poll in ${w.intervalSeconds} s`)
      )
      .pipe(
        Effect.timeoutOrElse({
          duration: Duration.seconds(o.timeout),
          orElse: () => Effect.fail(timedOut(c, o.timeout))
        })
      )
  })

const storeFor = (config: Config.Config): Effect.Effect<Runtime.StoreChoice, TokenError.StoreError> =>
  (config.store?.type ?? "file") !== "file"
    ? Effect.succeed("file")
    : FileStore.makeFileOrMemory({ dir: config.store?.path, encryptionKey: config.store?.encryptionKey, create: true })

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const style = { json: o.json }
    if (!(o.timeout >= 1 && o.timeout <= 86_400))
      return yield* Report.failWith(style)(
        new InvalidArgument({ argument: "--timeout", reason: `is ${o.timeout}`, hint: "give 1 to 86400 seconds" })
      )
    const { config, missing } = yield* ConfigDiscovery.loadOrBundled(o.config).pipe(
      Effect.catch(Report.failWith(style))
    )
    const level = yield* References.MinimumLogLevel
    const secrets = Report.secretsOf(config)
    const store = yield* storeFor(config).pipe(Effect.catch(Report.failWith({ ...style, secrets })))
    const program = Effect.gen(function* () {
      const engine = yield* Engine.Engine
      const r = yield* o.device ? deviceFlow(engine, o) : codeFlow(engine, o)
      const where = (yield* engine.registry.store()).describe
      if (o.json)
        return yield* Report.json({
          connection: r.connection,
          provider: r.provider,
          expires_at: r.expiresAt.toISOString(),
          refresh_token_stored: r.hasRefreshToken
        })
      yield* Console.log(
        Terminal.sanitize(
          `authorized ${r.connection} (${r.provider}): ${r.hasRefreshToken ? `grant stored in ${where}` : "no refresh token was issued: log in again when the token expires"}; access token valid until ${r.expiresAt.toISOString()}`
        )
      )
    })
    yield* program.pipe(
      Effect.provide(Runtime.layer(config, store, { logLevel: level, connections: "sqlite" })),
      Effect.catchTag("UnknownConnection", (e) => Effect.fail(missing ?? e)),
      Effect.catch(Report.failWith({ ...style, secrets }))
    )
  }).pipe(Effect.withSpan("tessera.cli.login"))

export const command = Command.make("login", flags, handler).pipe(
  Command.withDescription(
    "Authorize a connection as its user: the authorization code flow with PKCE over a loopback redirect on " +
      "127.0.0.1 (RFC 8252), or the device flow (--device, RFC 8628). The refresh token is kept in the connection " +
      "store (connection_store:, else SQLite in the user data dir), from where tessera renews the token; when the " +
      "provider later refuses it, the connection shows needs_reauth until you log in again. " +
      "Exit 0 when authorized, 1 when the user declines, the state does not match, the wait times out or the provider fails, 2 for a config or usage error."
  ),
  Command.withShortDescription("Authorize a connection in a browser (or with --device) and store the grant"),
  Command.withExamples([
    { command: "tessera login github", description: "Open the browser, wait for the redirect, store the grant" },
    { command: "tessera login github --no-browser", description: "Print the URL to open (e.g. over SSH)" },
    { command: "tessera login tv --device", description: "Show a code to enter on another device, then wait" }
  ])
)
