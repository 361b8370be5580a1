/** Runs the real `tessera` binary as a child process, in a temp directory with its own token cache, and makes
 *  the configs the tests point it at. */
import { execFile } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const bin = fileURLToPath(new URL("../../bin/tessera.mjs", import.meta.url))
export const repoProviders = fileURLToPath(new URL("../../../../providers/", import.meta.url))

export interface Result { readonly code: number; readonly stdout: string; readonly stderr: string }

export interface RunOptions {
  readonly cwd: string
  /** Extra environment; TESSERA_* and color settings of the test process are never passed on. */
  readonly env?: Readonly<Record<string, string>>
}

const baseEnv = (): Record<string, string> => {
  const env: Record<string, string> = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith("TESSERA_") || k === "FORCE_COLOR" || k === "NODE_OPTIONS") continue
    env[k] = v
  }
  return { ...env, NO_COLOR: "1" }
}

/** `node bin/tessera.mjs ...args`; the token cache is `<cwd>/.cache` unless env says otherwise. */
export const tessera = (args: ReadonlyArray<string>, opts: RunOptions): Promise<Result> =>
  new Promise((resolve, reject) => {
    const env = { ...baseEnv(), TESSERA_CACHE_DIR: join(opts.cwd, ".cache"), ...opts.env }
    execFile(process.execPath, [bin, ...args], { cwd: opts.cwd, env, timeout: 30_000, encoding: "utf8" }, (error, stdout, stderr) => {
      if (error && typeof error.code !== "number") return reject(new Error(`tessera ${args.join(" ")}: ${error.message}\n${stderr}`))
      resolve({ code: error ? Number(error.code) : 0, stdout, stderr })
    })
  })

/** A fresh temp directory; `cleanup` removes every one made. */
const made: string[] = []
export const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), "tessera-cli-"))
  made.push(dir)
  return dir
}
export const cleanup = () => { for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true }) }

export const write = (file: string, text: string): string => {
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, text)
  return file
}

/** A tessera.yaml text with the given connections: name -> provider and inputs. */
export const configText = (connections: Readonly<Record<string, { provider: string; inputs: Readonly<Record<string, string>> }>>): string =>
  ["connections:", ...Object.entries(connections).flatMap(([name, c]) => [
    `  ${name}:`, `    provider: ${c.provider}`, "    inputs:",
    ...Object.entries(c.inputs).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
  ])].join("\n") + "\n"

/** 1-based line and column of the first occurrence of `needle` in `text`. */
export const positionOf = (text: string, needle: string): { line: number; col: number } => {
  const at = text.indexOf(needle)
  if (at < 0) throw new Error(`"${needle}" not in text`)
  const before = text.slice(0, at).split("\n")
  return { line: before.length, col: (before.at(-1)?.length ?? 0) + 1 }
}
