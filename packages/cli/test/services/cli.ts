/** Runs the real `tessera` binary as a child process, in a temp directory with its own token cache, and makes
 *  the configs the tests point it at. `tesseraTty` runs it on a pseudo-terminal (through util-linux `script`), to
 *  see what a person at a terminal sees: colors, the spinner, prompts. */
import { execFile, execFileSync, spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { availableParallelism, tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../../bin/tessera.mjs", import.meta.url))
export const repoProviders = fileURLToPath(new URL("../../../../providers/", import.meta.url))

export interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly cwd: string
  /** Extra environment; TESSERA_* and color settings of the test process are never passed on. */
  readonly env?: Readonly<Record<string, string>>
  /** Standard input; stdin is closed (empty) without it. */
  readonly input?: string
  /** Run under `ulimit -f` of this many 1 KiB blocks (0: no file may grow at all, as on a full disk). Needs sh. */
  readonly fileSizeLimit?: number
  /** Another `tessera` executable (the bundle, say) instead of the repository's bin/tessera.mjs. */
  readonly bin?: string
  /** Node options before the executable, e.g. `--import` of a module-load recorder. */
  readonly nodeArgs?: ReadonlyArray<string>
}

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("TESSERA_") || k === "FORCE_COLOR" || k === "NODE_OPTIONS") continue
    env[k] = v
  }
  return { ...env, NO_COLOR: "1" }
}

// Each process needs about a second of CPU. Started all at once on a small machine, they share it so thinly that
// one may run into its timeout; queued, each finishes quickly and the whole takes as long.
const slots = { free: Math.max(4, availableParallelism() * 2), waiting: [] as Array<() => void> }
const limited = <A>(start: () => Promise<A>): Promise<A> => {
  const run = () =>
    start().finally(() => {
      const next = slots.waiting.shift()
      if (next) next()
      else slots.free++
    })
  if (slots.free > 0) {
    slots.free--
    return run()
  }
  return new Promise<A>((resolve, reject) =>
    slots.waiting.push(() => {
      run().then(resolve, reject)
    })
  )
}

/** The token cache in `<cwd>/.cache` and the user data dir (the default connection store) in `<cwd>/.data`, so no
 *  test writes to the real home directory. */
const ownDirs = (cwd: string) => ({ TESSERA_CACHE_DIR: join(cwd, ".cache"), XDG_DATA_HOME: join(cwd, ".data") })

/** `node bin/tessera.mjs ...args` (or `opts.bin`); the token cache is `<cwd>/.cache` unless env says otherwise. */
export const tessera = (args: ReadonlyArray<string>, opts: RunOptions): Promise<Result> =>
  limited(
    () =>
      new Promise((resolve, reject) => {
        const env = { ...baseEnv(), ...ownDirs(opts.cwd), ...opts.env }
        // RLIMIT_FSIZE makes every write past the limit fail with EFBIG (Node ignores SIGXFSZ), with no root needed.
        const command = [...(opts.nodeArgs ?? []), opts.bin ?? bin, ...args]
        const [file, argv] =
          opts.fileSizeLimit === undefined
            ? [process.execPath, command]
            : ["/bin/sh", ["-c", `ulimit -f ${opts.fileSizeLimit} && exec "$0" "$@"`, process.execPath, ...command]]
        const child = execFile(
          file,
          argv,
          { cwd: opts.cwd, env, timeout: 30_000, encoding: "utf8" },
          (error, stdout, stderr) => {
            if (error && typeof error.code !== "number")
              return reject(new Error(`tessera ${args.join(" ")}: ${error.message}\n${stderr}`))
            resolve({ code: error ? Number(error.code) : 0, stdout, stderr })
          }
        )
        child.stdin?.end(opts.input)
      })
  )

/** Whether util-linux `script` is there to give `tesseraTty` a pseudo-terminal. */
export const hasScript: boolean = (() => {
  try {
    return /util-linux/.test(execFileSync("script", ["--version"], { encoding: "utf8" }))
  } catch {
    return false
  }
})()

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

export interface TtyOptions extends RunOptions {
  /** Keys to type: each is sent once the output (since the previous answer) matches its prompt. */
  readonly answers?: ReadonlyArray<readonly [prompt: string | RegExp, keys: string]>
}

/** `tessera ...args` with stdin, stdout and stderr on one pseudo-terminal; `output` is everything it showed. */
export const tesseraTty = (
  args: ReadonlyArray<string>,
  opts: TtyOptions
): Promise<{ readonly code: number; readonly output: string }> =>
  limited(
    () =>
      new Promise((resolve, reject) => {
        const env = { ...baseEnv(), ...ownDirs(opts.cwd), TERM: "xterm-256color", ...opts.env }
        const command = [process.execPath, bin, ...args].map(shellQuote).join(" ")
        const child = spawn("script", ["-qefc", command, "/dev/null"], {
          cwd: opts.cwd,
          env,
          stdio: ["pipe", "pipe", "pipe"]
        })
        const pending = [...(opts.answers ?? [])]
        let output = "",
          since = 0
        const timer = setTimeout(() => {
          child.kill("SIGKILL")
          reject(new Error(`tessera ${args.join(" ")} on a tty timed out:\n${output}`))
        }, 30_000)
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString("utf8")
          const next = pending[0]
          if (
            next &&
            (typeof next[0] === "string" ? output.slice(since).includes(next[0]) : next[0].test(output.slice(since)))
          ) {
            pending.shift()
            since = output.length
            child.stdin.write(next[1])
          }
        })
        child.on("error", reject)
        child.on("close", (code) => {
          clearTimeout(timer)
          resolve({ code: code ?? -1, output })
        })
      })
  )

/** A fresh temp directory; `cleanup` removes every one made. */
const made: string[] = []
export const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-cli-"))
  made.push(dir)
  return dir
}
export const cleanup = () => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true })
}

export const write = (file: string, text: string): string => {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
  return file
}

/** A tessera.yaml text with the given connections: name -> provider and inputs. */
export const configText = (
  connections: Readonly<Record<string, { provider: string; inputs: Readonly<Record<string, string>> }>>
): string =>
  [
    "connections:",
    ...Object.entries(connections).flatMap(([name, c]) => [
      `  ${name}:`,
      `    provider: ${c.provider}`,
      "    inputs:",
      ...Object.entries(c.inputs).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
    ])
  ].join("\n") + "\n"

/** 1-based line and column of the first occurrence of `needle` in `text`. */
export const positionOf = (text: string, needle: string): { line: number; col: number } => {
  const at = text.indexOf(needle)
  if (at < 0) throw new Error(`"${needle}" not in text`)
  const before = text.slice(0, at).split("\n")
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 }
}

export interface Live {
  /** Resolves with the first match of `pattern` in stderr (what the command printed so far and later). */
  readonly waitFor: (pattern: RegExp, ms?: number) => Promise<RegExpMatchArray>
  readonly done: Promise<Result>
  readonly stderr: () => string
}

/** `tessera ...args` running in the background, for commands that wait on something the test does (`login`). */
export const tesseraLive = (args: ReadonlyArray<string>, opts: RunOptions): Live => {
  const env = { ...baseEnv(), ...ownDirs(opts.cwd), ...opts.env }
  const child = spawn(process.execPath, [opts.bin ?? bin, ...args], {
    cwd: opts.cwd,
    env,
    stdio: ["pipe", "pipe", "pipe"]
  })
  child.stdin.end(opts.input)
  let stdout = "",
    stderr = ""
  const watchers: Array<() => void> = []
  child.stdout.on("data", (c: Buffer) => void (stdout += c.toString("utf8")))
  child.stderr.on("data", (c: Buffer) => {
    stderr += c.toString("utf8")
    for (const w of watchers.slice()) w()
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
  const done = new Promise<Result>((resolve) =>
    child.on("close", (code) => {
      clearTimeout(timer)
      for (const w of watchers.slice()) w()
      resolve({ code: code ?? -1, stdout, stderr })
    })
  )
  let exited = false
  void done.then(() => (exited = true))
  const waitFor = (pattern: RegExp, ms = 20_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const timeout = setTimeout(() => reject(new Error(`no ${pattern} in stderr:\n${stderr}`)), ms)
      const check = () => {
        const m = stderr.match(pattern)
        if (m || exited) {
          watchers.splice(watchers.indexOf(check), 1)
          clearTimeout(timeout)
          if (m) resolve(m)
          else reject(new Error(`exited before ${pattern}:\n${stderr}`))
        }
      }
      watchers.push(check)
      check()
    })
  return { waitFor, done, stderr: () => stderr }
}
