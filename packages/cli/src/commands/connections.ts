/** `tessera connections put | ls | show | rm | reencrypt`: connections kept in the connection store (the config's
 *  `connection_store:`, else SQLite in the user data dir), beside the config file's own. The same validation as
 *  the server's connections API; secrets given with --input-env or --input-file stay out of the shell history. */
import { Config, ConfigValue, Engine, Runtime, TokenError, type ConnectionRegistry } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { join } from "node:path"
import { InvalidArgument } from "../cli-error.ts"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"

const json = Flags.toggle("json", "print JSON")
const name = Argument.String("name").pipe(Argument.withDescription("the connection's name"))
const pairs = (flag: string, description: string) =>
  Flag.String(flag).pipe(Flag.withMetavar("KEY=VALUE"), Flag.withDescription(description), Flag.atLeast(0))

/** The config when there is one, else the bundled providers alone, and an engine over the configured stores. */
const withEngine = <A, E>(
  given: Option.Option<string>,
  use: (engine: Engine.EngineShape, config: Config.Config) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    const found = yield* ConfigDiscovery.discoverOptional(given)
    const config = found ? yield* Config.load(found.file) : yield* Config.fromObject({})
    return yield* Effect.flatMap(Engine.Engine, (engine) => use(engine, config)).pipe(
      Effect.provide(Runtime.layer(config, "file", { connections: "sqlite" }))
    )
  })

/** `k=v` into [k, v]; the value may contain "=". */
const split = (flag: string, pair: string): Effect.Effect<readonly [string, string], InvalidArgument> => {
  const i = pair.indexOf("=")
  return i <= 0
    ? Effect.fail(
        new InvalidArgument({ argument: `--${flag}`, reason: "needs NAME=VALUE", hint: `--${flag} name=value` })
      )
    : Effect.succeed([pair.slice(0, i), pair.slice(i + 1)] as const)
}

const inputsOf = (o: {
  readonly input: ReadonlyArray<string>
  readonly inputEnv: ReadonlyArray<string>
  readonly inputFile: ReadonlyArray<string>
}) =>
  Effect.gen(function* () {
    const out: Record<string, string> = {}
    for (const p of o.input) {
      const [k, v] = yield* split("input", p)
      out[k] = v
    }
    for (const p of o.inputEnv) {
      const [k, variable] = yield* split("input-env", p)
      const v = process.env[variable]
      if (v === undefined || v === "")
        return yield* new InvalidArgument({
          argument: `--input-env ${k}=${variable}`,
          reason: `names environment variable ${variable}, which is not set`
        })
      out[k] = v
    }
    for (const p of o.inputFile) {
      const [k, path] = yield* split("input-file", p)
      // The config's ${file:} rules (regular files, size limit, trailing newline trimmed), relative to the cwd.
      const r = ConfigValue.resolveValue(`\${file:${path}}`, join(process.cwd(), "tessera.yaml"))
      if (r._tag === "Unresolved")
        return yield* new InvalidArgument({ argument: `--input-file ${k}=${path}`, reason: r.message, hint: r.hint })
      out[k] = r.value
    }
    return out
  })

const tagsOf = (given: ReadonlyArray<string>) =>
  Effect.map(
    Effect.forEach(given, (p) => split("tag", p)),
    (entries) => Object.fromEntries(entries)
  )

const shown = (v: ConnectionRegistry.ConnectionView): string =>
  [
    `name:      ${v.name}`,
    `provider:  ${v.provider}`,
    `source:    ${v.source}${v.status === "ok" ? "" : ` (${v.status})`}`,
    `tags:      ${Object.entries(v.tags)
      .map(([k, x]) => `${k}=${x}`)
      .join(" ")}`,
    ...(v.created_at ? [`created:   ${v.created_at}`, `updated:   ${v.updated_at}`] : []),
    ...(v.grant
      ? [
          `grant:     ${v.grant.status} (updated ${v.grant.updated_at})${v.grant.detail ? `: ${Terminal.sanitize(v.grant.detail)}` : ""}`
        ]
      : []),
    "inputs:",
    ...Object.entries(v.inputs).map(([k, x]) => `  ${k}: ${Terminal.sanitize(x)}`)
  ].join("\n")

const put = Command.make(
  "put",
  {
    name,
    provider: Flag.String("provider").pipe(Flag.withDescription("the provider id (tessera providers)")),
    input: pairs("input", "an input value, taken literally (repeatable)"),
    inputEnv: pairs("input-env", "an input from an environment variable: NAME=VAR (repeatable)"),
    inputFile: pairs("input-file", "an input from a file (trailing newline trimmed): NAME=PATH (repeatable)"),
    tag: pairs("tag", "a tag, e.g. tenant=acme (repeatable)"),
    allowInsecureHttp: Flags.toggle("allow-insecure-http", "WARNING: allow plain http:// to hosts other than loopback"),
    config: ConfigDiscovery.flag,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const inputs = yield* inputsOf(o)
      const tags = yield* tagsOf(o.tag)
      const body = { provider: o.provider, inputs, tags, ...(o.allowInsecureHttp ? { allow_insecure_http: true } : {}) }
      const r = yield* withEngine(o.config, (engine) => engine.registry.put(o.name, body))
      if (o.json) return yield* Report.json({ created: r.created, connection: r.view })
      yield* Console.log(`${r.created ? "created" : "replaced"} ${o.name} (${r.view.provider})`)
    }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.connections.put"))
).pipe(
  Command.withDescription(
    "Create or replace a connection in the connection store. Exit 2 with every problem listed when it is invalid."
  ),
  Command.withShortDescription("Create or replace a stored connection"),
  Command.withExamples([
    {
      command:
        "tessera connections put acme-jobs --provider dvinci --input base_url=https://acme.dvinci.example --input client_id=api --input-env client_secret=ACME_TOKEN --tag tenant=acme",
      description: "One d.vinci connection per customer, its secret from the environment"
    }
  ])
)

const ls = Command.make(
  "ls",
  {
    tag: pairs("tag", "only connections with this tag, e.g. tenant=acme (repeatable)"),
    config: ConfigDiscovery.flag,
    json
  },
  (o) =>
    Effect.gen(function* () {
      const tags = yield* tagsOf(o.tag)
      const items = yield* withEngine(o.config, (engine) =>
        Effect.gen(function* () {
          const all: ConnectionRegistry.ConnectionView[] = []
          let cursor: string | undefined
          for (;;) {
            const page = yield* engine.registry.list({ tags, limit: 1000, cursor })
            all.push(...page.items)
            if (page.next_cursor === null) return all
            cursor = page.next_cursor
          }
        })
      )
      if (o.json) return yield* Report.json({ items })
      if (items.length === 0) return yield* Console.log("No connections.")
      yield* Console.log(
        Report.table(
          ["NAME", "PROVIDER", "SOURCE", "STATUS", "TAGS"],
          items.map((v) => [
            v.name,
            v.provider,
            v.source,
            v.status,
            Object.entries(v.tags)
              .map(([k, x]) => Terminal.sanitize(`${k}=${x}`))
              .join(" ")
          ])
        )
      )
    }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.connections.ls"))
).pipe(Command.withDescription("List connections: the config file's and the stored ones, in name order."))

const show = Command.make("show", { name, config: ConfigDiscovery.flag, json }, (o) =>
  Effect.gen(function* () {
    const v = yield* withEngine(o.config, (engine) => engine.registry.view(o.name))
    if (!v) return yield* new TokenError.UnknownConnection({ connection: o.name, known: [] })
    yield* o.json ? Report.json(v) : Console.log(shown(v))
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.connections.show"))
).pipe(Command.withDescription("Show a connection: provider, tags, inputs (secrets as ***), source and times."))

const rm = Command.make("rm", { name, config: ConfigDiscovery.flag, json }, (o) =>
  Effect.gen(function* () {
    const existed = yield* withEngine(o.config, (engine) => engine.registry.remove(o.name))
    if (!existed) return yield* new TokenError.UnknownConnection({ connection: o.name, known: [] })
    yield* o.json ? Report.json({ removed: o.name }) : Console.log(`removed ${o.name}`)
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.connections.rm"))
).pipe(Command.withDescription("Delete a stored connection; its cached tokens are forgotten."))

const reencrypt = Command.make("reencrypt", { config: ConfigDiscovery.flag, json }, (o) =>
  Effect.gen(function* () {
    const r = yield* withEngine(o.config, (engine) =>
      Effect.flatMap(engine.registry.store(), (store) => store.reencrypt())
    )
    if (o.json) return yield* Report.json(r)
    yield* Console.log(
      `re-encrypted ${Report.plural(r.rewritten, "secret")} of ${Report.plural(r.total, "connection")} under the first of connection_store.encryption_keys`
    )
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.connections.reencrypt"))
).pipe(
  Command.withDescription(
    "Rewrite every stored secret under the first of connection_store.encryption_keys, so older keys can be " +
      "removed from the list afterwards. Safe while servers run."
  )
)

export const command = Command.make("connections").pipe(
  Command.withDescription(
    "Connections created at runtime (one per customer), kept in the connection store beside the config file's."
  ),
  Command.withShortDescription("Manage stored connections"),
  Command.withSubcommands([put, ls, show, rm, reencrypt])
)
