/** Finds the config file a command uses: `--config PATH`, else `$TESSERA_CONFIG`, else `./tessera.yaml`.
 *  Holds the shared `--config` flag, `discover` (the file and where it came from), `load` (discover, then
 *  `Config.load`) and `ConfigNotFound`, the one failure of discovery. */
import { Config, type ManifestError } from "@tessera/engine"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Flag from "effect/cli/Flag"
import { statSync } from "node:fs"
import { resolve } from "node:path"

export type Source = "--config" | "TESSERA_CONFIG" | "./tessera.yaml"

export interface Found {
  readonly file: string
  readonly source: Source
}

export const envVar = "TESSERA_CONFIG"
export const defaultName = "tessera.yaml"

/** No config file: the one named by --config or $TESSERA_CONFIG does not exist, or neither was given and there
 *  is no ./tessera.yaml. `source` is where the missing path came from, undefined when nothing named one. */
export class ConfigNotFound extends Schema.TaggedError<ConfigNotFound>()("ConfigNotFound", {
  source: Schema.optional(Schema.Literals(["--config", "TESSERA_CONFIG"])),
  path: Schema.String
}) {
  override get message() {
    if (this.source === undefined) {
      return (
        `no config file found: no --config flag, ${envVar} is not set, and there is no ${this.path}` +
        ` (pass --config PATH, set ${envVar}=PATH, or create ./${defaultName})`
      )
    }
    return `config file ${this.path} (from ${this.source}) does not exist or is not a file`
  }
}

export const flag = Flag.String("config").pipe(
  Flag.withAlias("c"),
  Flag.withMetavar("PATH"),
  Flag.withDescription(`config file (default: $${envVar}, else ./${defaultName})`),
  Flag.optional
)

const isFile = (path: string): boolean => {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

/** The config file to use, or undefined when nothing names one and ./tessera.yaml does not exist. */
export const discoverOptional = (
  given: Option.Option<string>,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd()
): Effect.Effect<Found | undefined, ConfigNotFound> =>
  Effect.suspend(() => {
    const named: Found | undefined = Option.isSome(given)
      ? { file: resolve(cwd, given.value), source: "--config" }
      : env[envVar]
        ? { file: resolve(cwd, env[envVar]), source: "TESSERA_CONFIG" }
        : undefined
    if (named) {
      return isFile(named.file)
        ? Effect.succeed(named)
        : Effect.fail(new ConfigNotFound({ source: named.source as "--config" | "TESSERA_CONFIG", path: named.file }))
    }
    const local = resolve(cwd, defaultName)
    return Effect.succeed(isFile(local) ? { file: local, source: "./tessera.yaml" } : undefined)
  })

/** The config file to use; fails with ConfigNotFound naming all three places when there is none. */
export const discover = (
  given: Option.Option<string>,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd()
): Effect.Effect<Found, ConfigNotFound> =>
  Effect.flatMap(discoverOptional(given, env, cwd), (found) =>
    found ? Effect.succeed(found) : Effect.fail(new ConfigNotFound({ path: resolve(cwd, defaultName) }))
  )

/** Discovers and loads the config. */
export const load = (
  given: Option.Option<string>
): Effect.Effect<Config.Config, ConfigNotFound | ManifestError.ConfigInvalid> =>
  Effect.flatMap(discover(given), (found) => Config.load(found.file))

/** The config, or when nothing names one and there is no ./tessera.yaml, the bundled providers alone (connections
 *  may still be in the connection store). `missing` is then the ConfigNotFound to report if the connection a
 *  command asked for is not stored either, so a mistyped setup still says where tessera looked. */
export const loadOrBundled = (
  given: Option.Option<string>
): Effect.Effect<
  { readonly config: Config.Config; readonly missing?: ConfigNotFound | undefined },
  ConfigNotFound | ManifestError.ConfigInvalid
> =>
  Effect.flatMap(discoverOptional(given), (found) =>
    found
      ? Effect.map(Config.load(found.file), (config) => ({ config }))
      : Effect.map(Config.fromObject({}), (config) => ({
          config,
          missing: new ConfigNotFound({ path: resolve(process.cwd(), defaultName) })
        }))
  )
