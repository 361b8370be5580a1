/** The fast path of `tessera`: answers `tessera --version` (`-v`) and a `tessera token <connection> [--config PATH]` cache
 *  hit before anything heavy is loaded (neither Effect, nor the manifest compiler, nor Ajv: only the config file,
 *  the hit index and the file cache; see hit-index.ts). Any other invocation, and any doubt, returns false and the
 *  full CLI runs, so the output is always the one the full CLI would give: `tessera v<version>`, or the token alone.
 *
 *  What keeps a call off this path: any flag but `--config`/`-c` (`--json`, `--force`, `--no-cache`, `--log-level`,
 *  `--help`...), a $TESSERA_LOG_LEVEL that the full CLI would reject or that shows info logs, a config that cannot be
 *  found, and a record that does not match what the full path would read now (hit-index.ts). */
import { statSync } from "node:fs"
import { resolve } from "node:path"
import { version } from "./version.ts"

/** The values of $TESSERA_LOG_LEVEL, as the engine's `Runtime.levels` (a test keeps the two equal). From "info" on,
 *  a hit logs its "reused: ..." line, which only the full CLI writes. */
export const levels = ["all", "trace", "debug", "info", "warn", "error", "fatal", "none"]
const quiet = ["warn", "error", "fatal", "none"]

const levelOf = (env: NodeJS.ProcessEnv): string => (env["TESSERA_LOG_LEVEL"] ?? "").toLowerCase()

interface TokenCall {
  readonly connection: string
  readonly config: string | undefined
}

/** `token <connection>` with at most one `--config PATH`, `-c PATH` or `--config=PATH`, in any order; else undefined. */
export const tokenCall = (argv: ReadonlyArray<string>): TokenCall | undefined => {
  if (argv[0] !== "token") return undefined
  let connection: string | undefined, config: string | undefined
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i] ?? ""
    const value = a === "--config" || a === "-c" ? argv[++i] : a.startsWith("--config=") ? a.slice(9) : undefined
    if (value !== undefined || a === "--config" || a === "-c") {
      if (config !== undefined || !value || value.startsWith("-")) return undefined
      config = value
    } else if (a === "" || a.startsWith("-") || connection !== undefined) return undefined
    else connection = a
  }
  return connection === undefined ? undefined : { connection, config }
}

/** The config file as ConfigDiscovery finds it (--config, else $TESSERA_CONFIG, else ./tessera.yaml), if it is one. */
const configFile = (given: string | undefined, env: NodeJS.ProcessEnv, cwd: string): string | undefined => {
  const named = given ?? (env["TESSERA_CONFIG"] || undefined)
  const file = resolve(cwd, named ?? "tessera.yaml")
  try {
    return statSync(file).isFile() ? file : undefined
  } catch {
    return undefined
  }
}

const hit = async (call: TokenCall, env: NodeJS.ProcessEnv): Promise<string | undefined> => {
  if (!quiet.includes(levelOf(env)) && levelOf(env) !== "") return undefined
  const file = configFile(call.config, env, process.cwd())
  if (file === undefined) return undefined
  // Loaded here, not above: `--version` needs neither the file cache nor node:crypto.
  const HitIndex = await import("./hit-index.ts")
  return HitIndex.lookup(
    { cacheDir: HitIndex.defaultDir(), configFile: file, connection: call.connection, version },
    Date.now(),
    env
  )
}

/** Answers `argv` if the fast path can; true when it has written the whole output. Never throws. */
export const answer = async (argv: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Promise<boolean> => {
  if (argv.length === 1 && (argv[0] === "--version" || argv[0] === "-v")) {
    if (levelOf(env) !== "" && !levels.includes(levelOf(env))) return false
    process.stdout.write(`tessera v${version}\n`)
    return true
  }
  const call = tokenCall(argv)
  const token = call ? await hit(call, env).catch(() => undefined) : undefined
  if (token === undefined) return false
  process.stdout.write(`${token}\n`)
  return true
}
