/** Resolves config values: literals, `${env:VAR}`, `${env:VAR:-fallback}` and `${file:PATH}` (relative to the config
 *  file, trailing newline trimmed). A reference is resolved where it is read, so the secret it yields can be
 *  wrapped in Redacted at once. */
import { readFileSync } from "node:fs"
import { isAbsolute, resolve, dirname } from "node:path"

export type Raw = string | number | boolean

export type Resolved =
  | { readonly _tag: "Value"; readonly value: string; readonly literal: boolean }
  | { readonly _tag: "Unresolved"; readonly message: string; readonly hint: string }

const reference = /^\$\{(env|file):([^}]*)\}$/

export const isReference = (raw: Raw): boolean => typeof raw === "string" && reference.test(raw)

export const resolveValue = (raw: Raw, configFile: string, env: NodeJS.ProcessEnv = process.env): Resolved => {
  if (typeof raw !== "string") return { _tag: "Value", value: String(raw), literal: true }
  const m = reference.exec(raw)
  if (!m) return { _tag: "Value", value: raw, literal: true }
  const [, kind, arg = ""] = m
  if (kind === "env") {
    const [name = "", fallback] = arg.split(/:-(.*)/s, 2)
    const v = env[name]
    if (v !== undefined && v !== "") return { _tag: "Value", value: v, literal: false }
    if (fallback !== undefined) return { _tag: "Value", value: fallback, literal: false }
    return {
      _tag: "Unresolved",
      message: `environment variable ${name} is not set`,
      hint: `export ${name}=... before running tessera, or give a fallback: \${env:${name}:-value}`
    }
  }
  const path = isAbsolute(arg) ? arg : resolve(dirname(configFile), arg)
  try {
    return { _tag: "Value", value: readFileSync(path, "utf8").replace(/\r?\n$/, ""), literal: false }
  } catch (e) {
    return {
      _tag: "Unresolved",
      message: `cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`,
      hint: "check the path; relative paths are taken from the config file's directory"
    }
  }
}
