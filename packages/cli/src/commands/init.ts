/** `tessera init`: writes a starter tessera.yaml that passes `tessera validate` as it is: the schema line for
 *  editors, then one commented-out example connection per bundled provider, with its required inputs and every
 *  secret as `${env:...}`. It never overwrites a file without --force. */
import { Catalog, type Manifest } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { existsSync, readFileSync, statSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import { dirname, isAbsolute, relative, resolve, sep } from "node:path"
import { fileURLToPath } from "node:url"
import { FileExists } from "../cli-error.ts"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"

/** The repository's schemas/ directory (present when tessera runs from a checkout). */
export const schemasDir: string = fileURLToPath(new URL("../../../../schemas/", import.meta.url))

/** What a `# yaml-language-server: $schema=` line should say for a file written to `file`: the schema's path
 *  relative to it when both are in the same repository, else the schema's published `$id` URL. */
export const schemaRef = (file: string, schema: "config" | "provider"): string => {
  const path = resolve(schemasDir, `${schema}.schema.json`)
  let id = `https://tessera.dev/schemas/${schema}.schema.json`
  try {
    id = (JSON.parse(readFileSync(path, "utf8")) as { $id?: string }).$id ?? id
  } catch {
    return id
  }
  const root = resolve(schemasDir, "..")
  const rel = relative(root, resolve(file))
  if (rel.startsWith("..") || isAbsolute(rel)) return id
  const ref = relative(dirname(resolve(file)), path)
    .split(sep)
    .join("/")
  return ref.startsWith(".") ? ref : `./${ref}`
}

const envName = (provider: string, input: string) => `${provider}_${input}`.toUpperCase().replace(/[^A-Z0-9]+/g, "_")

/** A placeholder for a non-secret input: its example, else something that says what to put there. */
const placeholder = (i: Manifest.InputSpec): string =>
  i.example ??
  (i.type === "url"
    ? i.name.includes("token")
      ? "https://auth.example.com/oauth/token"
      : "https://api.example.com"
    : i.type === "integer"
      ? "0"
      : `your-${i.name.replace(/_/g, "-")}`)

const yamlValue = (v: string) =>
  /^[\w./:@-]+$/.test(v) && !/^(true|false|null|yes|no|~)$/i.test(v) ? v : JSON.stringify(v)

/** One example connection, commented out: the inputs a connection must give, plus those its first input rule
 *  requires (CRM.COM needs one of several groups). */
export const example = (m: Manifest.Manifest): ReadonlyArray<string> => {
  const names = new Set([...m.inputs.values()].filter((i) => i.required).map((i) => i.name))
  for (const rule of m.inputRules)
    if (rule.kind === "one_of" && rule.groups[0]) for (const n of rule.groups[0]) names.add(n)
  const inputs = [...m.inputs.values()]
    .filter((i) => names.has(i.name))
    .map(
      (i) =>
        [`${i.name}: ${i.secret ? `"\${env:${envName(m.id, i.name)}}"` : yamlValue(placeholder(i))}`, i.title] as const
    )
  const width = Math.max(0, ...inputs.map(([line]) => line.length))
  const optional = [...m.inputs.values()].filter((i) => !names.has(i.name)).map((i) => i.name)
  return [
    `#  # ${m.name}${m.docs ? ` (${m.docs})` : ""}`,
    `#  ${m.id}:`,
    `#    provider: ${m.id}`,
    "#    inputs:",
    ...inputs.map(([line, title]) => `#      ${line.padEnd(width)}${title ? `  # ${title}` : ""}`.trimEnd()),
    ...(optional.length ? [`#      # optional: ${optional.join(", ")}`] : [])
  ]
}

export const starter = (manifests: ReadonlyArray<Manifest.Manifest>, schema: string): string =>
  [
    `# yaml-language-server: $schema=${schema}`,
    "#",
    "# tessera config: your connections to providers. Secrets come from the environment (${env:VAR}) or from files",
    '# (${file:./path}), never from this file. To add a connection, uncomment an example below, delete the "{}" after',
    "# connections:, set the environment variables it names, then run:",
    "#   tessera validate        # every problem with its file:line:col",
    "#   tessera token <name>    # the connection's access token",
    "# `tessera providers` lists every provider's inputs.",
    "",
    "# Extra provider manifests (directories of <id>.yaml), e.g. from `tessera new provider`:",
    "# providers: [./providers]",
    "",
    "connections: {}",
    ...manifests.flatMap((m) => ["", ...example(m)]),
    ""
  ].join("\n")

/** The file init writes: --config, else $TESSERA_CONFIG, else ./tessera.yaml (where every other command looks). */
export const target = (given: Option.Option<string>, env: NodeJS.ProcessEnv = process.env): string =>
  resolve(Option.isSome(given) ? given.value : env[ConfigDiscovery.envVar] || ConfigDiscovery.defaultName)

export interface Options {
  readonly config: Option.Option<string>
  readonly force: boolean
  readonly json: boolean
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const file = target(o.config)
    if (existsSync(file) && (!o.force || statSync(file).isDirectory())) return yield* new FileExists({ path: file })
    const manifests = [...(yield* Catalog.load()).manifests.values()].sort((a, b) => a.id.localeCompare(b.id))
    const text = starter(manifests, schemaRef(file, "config"))
    yield* Effect.promise(async () => {
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, text)
    })
    if (o.json) return yield* Report.json({ file, connections: manifests.map((m) => m.id) })
    const shown = relative(process.cwd(), file)
    yield* Console.log(
      [
        `Wrote ${shown && !shown.startsWith("..") ? shown : file} with ${Report.plural(manifests.length, "example connection")} (commented out).`,
        'Next: uncomment one, delete the "{}" after connections:, set the variables it names, then:',
        "  tessera validate",
        "  tessera token <connection>"
      ].join("\n")
    )
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.init"))

const flags = {
  config: ConfigDiscovery.flag.pipe(
    Flag.withDescription(
      `the file to write (default: $${ConfigDiscovery.envVar}, else ./${ConfigDiscovery.defaultName})`
    )
  ),
  force: Flags.toggle("force", "overwrite the file if it exists"),
  json: Flags.toggle("json", "print {file, connections} as JSON")
}

export const command = Command.make("init", flags, handler).pipe(
  Command.withDescription(
    "Write a starter tessera.yaml: the schema line for editor completion, then one commented-out example " +
      "connection per bundled provider, its secrets as ${env:...}. The file passes `tessera validate` as written. Refuses to " +
      "overwrite an existing file unless --force (exit 2)."
  ),
  Command.withShortDescription("Write a starter tessera.yaml"),
  Command.withExamples([
    { command: "tessera init", description: "Write ./tessera.yaml" },
    { command: "tessera init --config ops/tessera.yaml --force", description: "Write (or overwrite) another file" }
  ])
)
