/** `tessera serve`: runs the HTTP token service and auth-injecting proxy (@tessera/server) from the discovered
 *  config until SIGTERM/SIGINT (drain, exit 0); SIGHUP reloads the config. The server package is loaded only
 *  here, on demand, so the CLI does not depend on it for anything else (cli and server both sit on the engine). */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import * as ConfigDiscovery from "../config-discovery.ts"
import { InvalidArgument } from "../cli-error.ts"
import * as Report from "../report.ts"

const flags = {
  config: ConfigDiscovery.flag,
  port: Flag.Int("port").pipe(
    Flag.optional,
    Flag.withDescription("port to listen on (default: server.port in the config, else 8787; 0 picks a free one)")
  ),
  host: Flag.String("host").pipe(
    Flag.optional,
    Flag.withDescription(
      "address to bind (default: server.host, else 127.0.0.1); a non-loopback address needs server.api_keys"
    )
  )
}

type Options = {
  readonly config: Option.Option<string>
  readonly port: Option.Option<number>
  readonly host: Option.Option<string>
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const found = yield* ConfigDiscovery.discover(o.config).pipe(Effect.catch(Report.failWith({ json: false })))
    const { serve } = yield* Effect.promise(() => import("@tessera/server"))
    const serving = yield* Effect.tryPromise({
      try: () =>
        serve({
          config: found.file,
          ...(Option.isSome(o.port) ? { port: o.port.value } : {}),
          ...(Option.isSome(o.host) ? { host: o.host.value } : {})
        }),
      catch: (e) =>
        e !== null && typeof e === "object" && "_tag" in e
          ? (e as { _tag: string; message: string })
          : new InvalidArgument({ argument: "serve", reason: e instanceof Error ? e.message : String(e) })
    }).pipe(Effect.catch(Report.failWith({ json: false })))
    // Runs until a signal closes the server. The server's own SIGTERM/SIGINT handlers drain requests in flight; the
    // CLI runtime would interrupt this fiber on the same signal and exit 130 before the drain ends, so the wait is
    // uninterruptible and a drained server ends the process with 0.
    yield* Effect.uninterruptible(Effect.promise(() => serving.closed.then(() => process.exit(0))))
  })

export const command = Command.make("serve", flags, handler).pipe(
  Command.withDescription(
    "Run the HTTP token service and auth-injecting proxy for the config's connections. Binds 127.0.0.1 " +
      "by default; refuses a non-loopback address unless server.api_keys is configured. SIGTERM/SIGINT drain requests in " +
      "flight and exit 0; SIGHUP reloads the config without dropping requests.\n\n" +
      "Examples:\n  tessera serve --config tessera.yaml\n  tessera serve --port 8787\n" +
      '  curl -s -H "Authorization: Bearer $KEY" http://127.0.0.1:8787/v1/connections/crm/token'
  )
)
