/** `tessera providers`: the providers this installation knows, bundled and from the config's provider
 *  directories, with the inputs a connection to each must (and may) give. The config is optional here. */
import { Catalog, Config, type Manifest } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import { relative, resolve, sep } from "node:path"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"

const flags = {
  config: ConfigDiscovery.flag,
  json: Flags.toggle("json", "print {providers: [...]} as JSON")
}

export interface InputEntry {
  readonly name: string
  readonly type: string
  readonly secret: boolean
  readonly title?: string
  readonly default?: string
}

export interface ProviderEntry {
  readonly id: string
  readonly name: string
  /** "bundled", or the manifest's path relative to the working directory. */
  readonly source: string
  readonly file: string
  readonly docs?: string
  readonly required: ReadonlyArray<InputEntry>
  readonly optional: ReadonlyArray<InputEntry>
  /** Configured connections using this provider. */
  readonly connections: ReadonlyArray<string>
}

const inputEntry = (i: Manifest.InputSpec): InputEntry => ({
  name: i.name,
  type: i.type,
  secret: i.secret,
  ...(i.title !== undefined ? { title: i.title } : {}),
  ...(i.default !== undefined ? { default: i.default.source } : {})
})

export const isBundled = (file: string): boolean => resolve(file).startsWith(resolve(Catalog.bundledDir) + sep)

/** Where a manifest came from: "bundled", or its path relative to the working directory. */
export const sourceOf = (file: string): string => (isBundled(file) ? "bundled" : relative(process.cwd(), file) || file)

export const entries = (catalog: Catalog.Catalog, config?: Config.Config): ReadonlyArray<ProviderEntry> =>
  [...catalog.manifests.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((m) => {
      const inputs = [...m.inputs.values()]
      const connections = config
        ? [...config.connections.values()]
            .filter((c) => c.manifest.id === m.id)
            .map((c) => c.name)
            .concat([...config.broken].filter(([, b]) => b.provider === m.id).map(([n]) => n))
            .sort()
        : []
      return {
        id: m.id,
        name: m.name,
        source: sourceOf(m.file),
        file: m.file,
        ...(m.docs !== undefined ? { docs: m.docs } : {}),
        required: inputs.filter((i) => i.required).map(inputEntry),
        optional: inputs.filter((i) => !i.required).map(inputEntry),
        connections
      }
    })

const names = (inputs: ReadonlyArray<InputEntry>) =>
  inputs.map((i) => (i.secret ? `${i.name}*` : i.name)).join(", ") || "-"

export const render = (list: ReadonlyArray<ProviderEntry>): string =>
  Report.table(
    ["ID", "NAME", "SOURCE", "REQUIRED INPUTS", "OPTIONAL INPUTS"],
    list.map((p) => [p.id, p.name, p.source, names(p.required), names(p.optional)])
  ) + "\n\n* secret input"

export const handler = (o: { readonly config: Option.Option<string>; readonly json: boolean }) =>
  Effect.gen(function* () {
    const found = yield* ConfigDiscovery.discoverOptional(o.config)
    const config = found ? yield* Config.load(found.file) : undefined
    const catalog = config?.catalog ?? (yield* Catalog.load())
    const list = entries(catalog, config)
    yield* o.json ? Report.json({ providers: list }, { pretty: true }) : Console.log(render(list))
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.providers"))

export const command = Command.make("providers", flags, handler).pipe(
  Command.withDescription(
    "List the providers tessera knows (bundled, and those in the config's providers: directories) " +
      "with the inputs a connection must give (required) and may give (optional); * marks a secret input. " +
      "Without a config, lists the bundled providers."
  ),
  Command.withShortDescription("List known providers and their inputs"),
  Command.withExamples([
    { command: "tessera providers", description: "Table of providers and their inputs" },
    { command: "tessera providers --json | jq -r '.providers[].id'", description: "Provider ids, for scripts" }
  ])
)
