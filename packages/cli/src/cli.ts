/** The `tessera` command tree and `run`, which parses an argv, runs the command and turns every outcome into an
 *  exit code (see exit-code.ts). Nothing here writes to the terminal directly: commands use Console, so `run` can
 *  be driven in-process as well as by bin/tessera.mjs. */
import { Runtime } from "@tessera/engine"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as References from "effect/References"
import * as CliConfig from "effect/cli/CliConfig"
import * as CliOutput from "effect/cli/CliOutput"
import * as Command from "effect/cli/Command"
import * as GlobalFlag from "effect/cli/GlobalFlag"
import * as Cache from "./commands/cache.ts"
import * as Connections from "./commands/connections.ts"
import * as Init from "./commands/init.ts"
import * as Inspect from "./commands/inspect.ts"
import * as Login from "./commands/login.ts"
import * as New from "./commands/new.ts"
import * as Providers from "./commands/providers.ts"
import * as Request from "./commands/request.ts"
import * as Serve from "./commands/serve.ts"
import * as Token from "./commands/token.ts"
import * as Validate from "./commands/validate.ts"
import { InvalidArgument } from "./cli-error.ts"
import * as ExitCode from "./exit-code.ts"
import * as Report from "./report.ts"
import * as Terminal from "./terminal.ts"
import { version } from "./version.ts"

export { version } from "./version.ts"

export const command = Command.make("tessera").pipe(
  Command.withDescription(
    "Gets and keeps API credentials for SaaS providers, as declared in provider manifests and a config file " +
      "(--config, else $TESSERA_CONFIG, else ./tessera.yaml). Exit codes: 0 ok, 1 provider/network/cache failure (for request: " +
      "also an API answer of 400 or more), 2 usage or config error. Colors only on a terminal and never with NO_COLOR; " +
      "shell completion: --completions bash|zsh|fish prints a script to source. Logs go to stderr: --log-level, else " +
      "$TESSERA_LOG_LEVEL (all, trace, debug, info, warn, error, fatal or none; default warn; any other value is an error)."
  ),
  Command.withExamples([
    { command: "tessera init", description: "Write a starter ./tessera.yaml (one commented example per provider)" },
    { command: "tessera validate", description: "Check the config and every manifest it loads" },
    { command: "TOKEN=$(tessera token crm)", description: "Get the access token of connection crm" },
    { command: "tessera request crm GET /contacts -i", description: "Call the provider's API with the token applied" },
    {
      command: "tessera inspect crm",
      description: "Provider, inputs (secrets masked), flows, cache state and JWT claims"
    },
    { command: "tessera cache list", description: "Cached tokens, their expiry and freshness" },
    {
      command:
        "tessera connections put acme --provider cube --input tenant=acme --input client_id=x --input-env client_secret=S",
      description: "Store a connection for one customer (SQLite in the user data dir unless connection_store: says)"
    },
    {
      command: "tessera login github",
      description: "Authorize a connection in the browser and store the user's grant"
    },
    { command: "tessera new provider acme-hr", description: "Scaffold a provider manifest and its fixture" },
    { command: "tessera serve --port 8787", description: "Run the HTTP token service and auth-injecting proxy" },
    {
      command: "source <(tessera --completions bash)",
      description: "Tab completion in bash (zsh: --completions zsh; fish: tessera --completions fish | source)"
    }
  ]),
  Command.withSubcommands([
    Init.command,
    Validate.command,
    Providers.command,
    Token.command,
    Request.command,
    Inspect.command,
    Cache.command,
    Connections.command,
    Login.command,
    New.command,
    Serve.command
  ])
)

// --wizard prompts interactively, which a credentials tool run from scripts should never do.
const builtIns = [GlobalFlag.Help, GlobalFlag.Version, GlobalFlag.Completions, GlobalFlag.LogLevel] as const

/** Command-line mistakes: the error alone on stderr (not the whole help on stdout, which `$(...)` would capture). */
const presenter = (json: boolean): CliOutput.Presenter => ({
  present: (event) => {
    if (event._tag !== "InvalidInvocation") return CliOutput.defaultPresenter.present(event)
    const message = event.errors.map((e) => e.message).join("; ")
    const code = event.errors[0]?._tag ?? "UsageError"
    return json
      ? Console.error(JSON.stringify({ error: { code, message } }))
      : Console.error(`tessera: ${message}\nRun "${event.commandPath.join(" ")} --help" for usage.`)
  }
})

/** Runs `tessera` with `argv` (without "node" and the script) and returns the exit code; never fails. */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<ExitCode.ExitCode, never, Command.Environment> => {
  const json = argv.includes("--json")
  // A mistyped level would otherwise hide the logs asked for without a word.
  if (Runtime.parseLogLevel() === undefined) {
    const e = new InvalidArgument({
      argument: "TESSERA_LOG_LEVEL",
      reason: `is ${JSON.stringify(process.env["TESSERA_LOG_LEVEL"])}, not a log level`,
      hint: `use one of ${Runtime.levels.map((l) => l.toLowerCase()).join(", ")}; unset means warn`
    })
    return Effect.as(Console.error(Report.errorText(e, { json })), ExitCode.of(e))
  }
  return Command.runWith(command, { version })(argv).pipe(
    Effect.as(ExitCode.success),
    Effect.catch((e): Effect.Effect<ExitCode.ExitCode> => {
      if (e._tag === "Reported") return Effect.succeed(e.code)
      // Bare `tessera` shows the help and is not an error; a parse error was already presented.
      if (e._tag === "ShowHelp") return Effect.succeed(e.errors.length === 0 ? ExitCode.success : ExitCode.usage)
      return Effect.as(Console.error(Report.errorText(e, { json })), ExitCode.of(e))
    }),
    Effect.catchCause((cause) => {
      if (Cause.hasInterruptsOnly(cause)) return Effect.interrupt // Ctrl-C: runMain exits with 130
      const defect = Cause.squash(cause)
      const message = defect instanceof Error ? defect.message : String(defect)
      return Effect.as(
        Console.error(Report.errorText({ _tag: "InternalError", message: `internal error: ${message}` }, { json })),
        ExitCode.failure
      )
    }),
    Effect.provideService(CliOutput.Presenter, presenter(json)),
    Effect.provideService(CliConfig.CliConfig, CliConfig.make({ builtIns })),
    // Logs go to stderr, so stdout carries only the command's output. --log-level (handled by runWith) wins over this.
    Effect.provideService(Logger.LogToStderr, true),
    // Engine logs can quote a provider's text: every command logs terminal-safe.
    Effect.provide(Logger.layer([Terminal.logger])),
    Effect.provideService(References.MinimumLogLevel, Runtime.logLevel())
  )
}
