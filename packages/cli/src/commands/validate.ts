/** `tessera validate [paths...]`: checks provider manifests and configs and lists every problem with its
 *  file:line:col, then a one-line summary. With --fixtures it also replays the recorded provider exchanges
 *  offline. Exit 0 when there is no error (warnings allowed), 2 otherwise. */
import { Catalog, Config, Fixture, Manifest, Problem } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import { readdirSync, readFileSync, statSync } from "node:fs"
import { dirname, isAbsolute, join, relative, resolve } from "node:path"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as ExitCode from "../exit-code.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"
import { isBundled } from "./providers.ts"

export type Kind = "manifest" | "config" | "fixture"

export interface FileResult {
  readonly file: string
  readonly kind: Kind
  readonly errors: number
  readonly warnings: number
}

export interface Outcome {
  readonly ok: boolean
  readonly files: ReadonlyArray<FileResult>
  readonly problems: ReadonlyArray<Problem.Problem>
}

const problem = (file: string, message: string, hint?: string): Problem.Problem => ({
  severity: "error",
  file,
  line: 1,
  col: 1,
  path: "",
  message,
  hint
})

/** A manifest has a top-level `flows:` (or `id:`); a config has `connections:`, `providers:` or its other
 *  sections. Read from the raw text so a file whose YAML is broken is still checked as what it is. */
export const kindOf = (file: string, text: string): Kind | undefined => {
  if (/^(flows|id)\s*:/m.test(text)) return "manifest"
  if (/^(connections|providers|store|server|http)\s*:/m.test(text)) return "config"
  if (/(^|[\\/])tessera\.ya?ml$/.test(file)) return "config"
  return undefined
}

type Target =
  { readonly file: string; readonly kind: Kind } | { readonly file: string; readonly problem: Problem.Problem }

const isDirectory = (path: string): boolean => {
  try {
    return statSync(resolve(path)).isDirectory()
  } catch {
    return false
  }
}

/** Expands the paths given on the command line: a directory stands for the manifests (*.yaml, *.yml) in it. */
const targets = (paths: ReadonlyArray<string>): ReadonlyArray<Target> =>
  paths.flatMap((p): Target[] => {
    const file = resolve(p)
    let isDir: boolean
    try {
      isDir = statSync(file).isDirectory()
    } catch (e) {
      return [
        {
          file,
          problem: problem(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "check the path")
        }
      ]
    }
    if (isDir) {
      const names = readdirSync(file)
        .filter((n) => /\.ya?ml$/.test(n))
        .sort()
      if (names.length === 0)
        return [
          {
            file,
            problem: problem(
              file,
              "directory holds no *.yaml manifests",
              "pass manifest files, a directory of them, or a config"
            )
          }
        ]
      return names.map((n) => ({ file: join(file, n), kind: "manifest" }))
    }
    let text: string
    try {
      text = readFileSync(file, "utf8")
    } catch (e) {
      return [
        {
          file,
          problem: problem(file, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`, "check the path")
        }
      ]
    }
    const kind = kindOf(file, text)
    if (!kind)
      return [
        {
          file,
          problem: problem(
            file,
            "neither a provider manifest nor a config",
            "a manifest has a top-level flows: key; a config has connections: or providers:"
          )
        }
      ]
    return [{ file, kind }]
  })

const problemsOf = (e: { readonly problems: ReadonlyArray<Problem.Problem> }) => e.problems

/** The recorded exchanges that --fixtures replays: `<bundled providers>/fixtures/<provider id>/<case>.json`. */
export const fixturesDir: string = join(Catalog.bundledDir, "fixtures")

const shownValue = (v: unknown): string => (v === undefined ? "(absent)" : JSON.stringify(v))

/** The `*.json` files in `dir`, sorted; none when it cannot be read. */
const jsonFiles = (dir: string): ReadonlyArray<string> => {
  try {
    return readdirSync(dir)
      .filter((n) => n.endsWith(".json"))
      .sort()
      .map((n) => join(dir, n))
  } catch {
    return []
  }
}

/** The fixtures of the manifests outside the bundled directory, beside each: `<its dir>/fixtures/<id>/<case>.json`. */
const ownFixtures = (catalog: Catalog.Catalog, only?: ReadonlySet<string>): ReadonlyArray<string> =>
  [...catalog.manifests.values()]
    .filter((m) => !isBundled(m.file) && (only === undefined || only.has(m.id)))
    .flatMap((m) => jsonFiles(join(dirname(m.file), "fixtures", m.id)))

/** Replays each file; like `Fixture.replayAll`, one that cannot be replayed does not stop the others. */
const replayEach = (files: ReadonlyArray<string>, catalog: Catalog.Catalog): Effect.Effect<Fixture.ReplayAll> =>
  Effect.map(
    Effect.forEach(files, (f) => Effect.result(Fixture.replay(f, catalog))),
    (rs): Fixture.ReplayAll => ({
      replays: rs.flatMap((x) => (x._tag === "Success" ? [x.success] : [])),
      invalid: rs.flatMap((x) => (x._tag === "Failure" ? [x.failure] : []))
    })
  )

/** Replays the fixtures against `catalog`: all of them (the bundled ones and those beside the other manifests), or,
 *  given `only`, those of these provider ids. Every mismatch and every unreplayable fixture is an error at its file. */
const replayFixtures = (catalog: Catalog.Catalog, only?: ReadonlySet<string>) =>
  Effect.gen(function* () {
    const r = yield* Effect.result(
      only === undefined
        ? Fixture.replayAll(fixturesDir, catalog)
        : replayEach(
            [...only].sort().flatMap((id) => jsonFiles(join(fixturesDir, id))),
            catalog
          )
    )
    if (r._tag === "Failure") return { files: [], problems: r.failure.problems.map((m) => problem(r.failure.file, m)) }
    const own = yield* replayEach(
      ownFixtures(catalog, only).filter((f) => !r.success.replays.some((x) => x.file === f)),
      catalog
    )
    const replays = [...r.success.replays, ...own.replays]
    const invalids = [...r.success.invalid, ...own.invalid]
    const problems: Problem.Problem[] = []
    for (const replay of replays) {
      for (const m of replay.mismatches) {
        // A fixture is JSON without positions: the problem points at the file and names the field.
        problems.push({
          ...problem(
            replay.file,
            `expected ${shownValue(m.expected)}, got ${shownValue(m.actual)}`,
            `recorded exchange: ${replay.description}`
          ),
          path: m.field
        })
      }
    }
    for (const invalid of invalids)
      problems.push(...invalid.problems.map((m) => problem(invalid.file, `not a replayable fixture: ${m}`)))
    return { files: [...replays.map((x) => x.file), ...invalids.map((x) => x.file)], problems }
  })

/** Validates the given files (or the discovered config when there are none) and collects every problem. */
export const check = (
  paths: ReadonlyArray<string>,
  opts: { readonly config?: Option.Option<string>; readonly fixtures?: boolean } = {}
) =>
  Effect.gen(function* () {
    const given = opts.config ?? Option.none()
    // No paths: the discovered config; with --fixtures and no config at all, the bundled manifests.
    const found =
      paths.length > 0
        ? undefined
        : opts.fixtures
          ? yield* ConfigDiscovery.discoverOptional(given)
          : yield* ConfigDiscovery.discover(given)
    const list =
      paths.length > 0
        ? targets(paths)
        : found
          ? [{ file: found.file, kind: "config" as const }]
          : targets([Catalog.bundledDir])
    const problems: Problem.Problem[] = []
    const kinds = new Map<string, Kind>()
    let catalog: Catalog.Catalog | undefined
    const checked: Manifest.Manifest[] = []
    for (const t of list) {
      if ("problem" in t) {
        problems.push(t.problem)
        continue
      }
      if (kinds.has(t.file)) continue
      kinds.set(t.file, t.kind)
      if (t.kind === "manifest") {
        const r = yield* Effect.result(Manifest.load(t.file))
        problems.push(...(r._tag === "Success" ? r.success.warnings : problemsOf(r.failure)))
        if (r._tag === "Success") checked.push(r.success)
      } else {
        const r = yield* Effect.result(Config.load(t.file))
        if (r._tag === "Failure") {
          problems.push(...problemsOf(r.failure))
          continue
        }
        problems.push(...r.success.problems)
        catalog ??= r.success.catalog
        // The config loads manifests too (bundled and its providers: directories): they are part of what it checks.
        for (const m of r.success.catalog.manifests.values()) {
          if (kinds.has(m.file)) continue
          kinds.set(m.file, "manifest")
          problems.push(...m.warnings)
        }
      }
    }
    // Manifest files named on the command line (no directory of them, no config) replay only their own fixtures.
    const onlyNamed =
      paths.length > 0 && !paths.some(isDirectory) && !list.some((t) => "kind" in t && t.kind === "config")
        ? new Set(checked.map((m) => m.id))
        : undefined
    if (opts.fixtures) {
      // Against the config's catalog when one was checked (its manifests may replace bundled ones), else the bundled,
      // either with the manifests checked by path on top: a new manifest's fixtures replay before it is configured.
      const replayed = yield* (catalog ? Effect.succeed(catalog) : Catalog.load()).pipe(
        Effect.map((base): Catalog.Catalog => ({
          manifests: new Map([...base.manifests, ...checked.map((m) => [m.id, m] as const)]),
          bundled: base.bundled
        })),
        Effect.flatMap((c) => replayFixtures(c, onlyNamed)),
        Effect.catchTag("ManifestInvalid", (e) => Effect.succeed({ files: [], problems: e.problems }))
      )
      for (const f of replayed.files) kinds.set(f, "fixture")
      problems.push(...replayed.problems)
    }
    for (const p of problems)
      if (!kinds.has(p.file))
        kinds.set(p.file, p.file.endsWith(".json") ? "fixture" : /\.ya?ml$/.test(p.file) ? "manifest" : "config")
    // Like a compiler: files in the order they were checked, each file's problems top to bottom.
    const order = [...kinds.keys()]
    problems.sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file) || a.line - b.line || a.col - b.col)
    const files = [...kinds].map(([file, kind]): FileResult => ({
      file,
      kind,
      errors: problems.filter((p) => p.file === file && p.severity === "error").length,
      warnings: problems.filter((p) => p.file === file && p.severity === "warning").length
    }))
    return { ok: !problems.some((p) => p.severity === "error"), files, problems } satisfies Outcome
  })

/** A path for display: relative to the working directory when inside it. */
const shown = (file: string): string => {
  const r = relative(process.cwd(), file)
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : file
}

export const summary = (o: Outcome): string => {
  const errors = o.problems.filter((p) => p.severity === "error").length
  const warnings = o.problems.length - errors
  const w = warnings > 0 ? `, ${Report.plural(warnings, "warning")}` : ""
  if (errors === 0) {
    const counted = (["manifest", "config", "fixture"] as const)
      .map((kind) => [kind, o.files.filter((f) => f.kind === kind).length] as const)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => Report.plural(n, kind))
      .join(", ")
    return `✓ ${counted || "nothing to check"}: no errors${w}`
  }
  return `✗ ${Report.plural(errors, "error")}${w} in ${Report.plural(new Set(o.problems.map((p) => p.file)).size, "file")}`
}

export const toJson = (o: Outcome) => ({
  ok: o.ok,
  files: o.files.map((f) => ({ ...f, file: shown(f.file) })),
  problems: o.problems.map((p) => ({
    file: shown(p.file),
    line: p.line,
    col: p.col,
    severity: p.severity,
    path: p.path,
    message: p.message,
    hint: p.hint ?? null
  }))
})

export interface Options {
  readonly paths: ReadonlyArray<string>
  readonly config: Option.Option<string>
  readonly json: boolean
  readonly fixtures: boolean
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const outcome = yield* check(o.paths, { config: o.config, fixtures: o.fixtures })
    if (o.json) yield* Report.json(toJson(outcome), { pretty: true })
    else {
      for (const p of outcome.problems) yield* Console.log(Problem.format({ ...p, file: shown(p.file) }))
      const p = yield* Terminal.paint("stdout")
      const line = summary(outcome)
      yield* Console.log(outcome.ok ? p.green(line) : p.red(line))
    }
    if (!outcome.ok) return yield* new Report.Reported({ code: ExitCode.usage })
  }).pipe(Effect.catchTag("ConfigNotFound", Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.validate"))

const flags = {
  paths: Argument.String("paths").pipe(
    Argument.withDescription("manifest files, directories of manifests, or config files (default: the config)"),
    Argument.variadic()
  ),
  config: ConfigDiscovery.flag,
  json: Flags.toggle("json", "print {ok, files, problems} as JSON"),
  fixtures: Flags.toggle(
    "fixtures",
    `also replay the recorded provider exchanges offline (${shown(fixturesDir)}/<id>/<case>.json, and fixtures/<id>/<case>.json beside any other manifest): does each manifest still send what its provider accepted and read what it answered?`
  )
}

export const command = Command.make("validate", flags, handler).pipe(
  Command.withDescription(
    "Check provider manifests and configs: YAML, the JSON Schema, template references and connection inputs. " +
      "Prints every problem as file:line:col: error|warning: path: message, then a summary. " +
      "Exit 0 when there are no errors (warnings allowed), 2 otherwise."
  ),
  Command.withShortDescription("Check manifests and configs"),
  Command.withExamples([
    {
      command: "tessera validate",
      description: "Check the config (--config, $TESSERA_CONFIG or ./tessera.yaml) and the manifests it loads"
    },
    {
      command: "tessera validate providers/ my-provider.yaml",
      description: "Check a directory of manifests and one more manifest"
    },
    {
      command: "tessera validate providers/ --fixtures --json",
      description: "Also replay the recorded provider exchanges; JSON for CI"
    }
  ])
)
