/** Resolves config values: literals with references to the environment or a file written into them.
 *
 *  - `${env:NAME}` is an environment variable (unset or empty is an error), `${env:NAME:-fallback}` gives a value
 *    for that case. `${file:PATH}` is a file's text, trailing newline trimmed; a relative PATH is taken from the
 *    config file's directory. Only a regular file of at most 1 MiB is read (internal/read-limited.ts).
 *  - References may sit inside text and several may share a value (`https://${env:HOST}/v1`). `$${` is a literal
 *    `${`. Anything else starting with `${` is an error with a hint, never taken literally: an unknown or wrongly
 *    cased kind (`${FILE:x}`), a shell-style `${HOME}`, an empty name, a missing `}`.
 *  - A value with at least one reference is not "literal" (the loader warns about secrets written literally).
 *
 *  A reference is resolved where it is read, so the secret it yields can be wrapped in Redacted at once. */
import { dirname, isAbsolute, resolve } from "node:path"
import { closest } from "./internal/did-you-mean.ts"
import { formatBytes, readText } from "./internal/read-limited.ts"

export type Raw = string | number | boolean

export type Resolved =
  | { readonly _tag: "Value"; readonly value: string; readonly literal: boolean }
  /** `index`: where in the value the failing reference starts, so a problem can point at it. */
  | { readonly _tag: "Unresolved"; readonly message: string; readonly hint: string; readonly index: number }

/** The most a `${file:...}` reference reads: a secret file is small, anything bigger is a wrong path. */
export const maxFileBytes = 1_048_576

type Kind = "env" | "file"
const kinds: ReadonlyArray<Kind> = ["env", "file"]

type Part =
  | { readonly _tag: "Text"; readonly text: string }
  | { readonly _tag: "Ref"; readonly kind: Kind; readonly arg: string; readonly at: number }

type Unresolved = Extract<Resolved, { _tag: "Unresolved" }>

const unresolved = (index: number, message: string, hint: string): Unresolved => ({
  _tag: "Unresolved",
  message,
  hint,
  index
})

const escapeHint = 'to write a literal "${", write "$${"'
const envName = /^[A-Za-z_][A-Za-z0-9_]*$/

/** One `${...}` starting at `at` whose inside is `body`: a reference, or why it is none. Messages quote the kind and
 *  name only, never a fallback (which may be a secret). */
const reference = (body: string, at: number): Part | Unresolved => {
  const colon = body.indexOf(":")
  if (colon === -1) {
    const asEnv = envName.test(body) ? `write \${env:${body}} for an environment variable; ` : ""
    return unresolved(at, `"\${${envName.test(body) ? body : "..."}}" is not a reference`, asEnv + escapeHint)
  }
  const kind = body.slice(0, colon)
  const arg = body.slice(colon + 1)
  if (kind !== "env" && kind !== "file") {
    const guess = kinds.find((k) => k === kind.toLowerCase()) ?? closest(kind, kinds)
    return unresolved(
      at,
      `unknown reference kind "${kind}": references are \${env:NAME} and \${file:PATH}, in lower case`,
      guess ? `did you mean \${${guess}:...}? (${escapeHint})` : escapeHint
    )
  }
  if (kind === "env") {
    const name = arg.split(":-", 1)[0] ?? ""
    if (name === "") return unresolved(at, "empty variable name in ${env:}", "name the variable: ${env:NAME}")
    if (!envName.test(name))
      return unresolved(
        at,
        `"${name}" is not an environment variable name`,
        "a name is letters, digits and _, not starting with a digit; a fallback follows :- (${env:NAME:-value})"
      )
  }
  if (kind === "file" && arg === "")
    return unresolved(at, "empty path in ${file:}", "give the file: ${file:./secrets/name}")
  return { _tag: "Ref", kind, arg, at }
}

/** Splits a string into text and references, or says what is wrong with the first bad `${`. */
const scan = (s: string): { readonly _tag: "Parts"; readonly parts: ReadonlyArray<Part> } | Unresolved => {
  const parts: Part[] = []
  let text = ""
  let i = 0
  for (;;) {
    const at = s.indexOf("${", i)
    if (at === -1) break
    if (at > i && s[at - 1] === "$") {
      text += `${s.slice(i, at - 1)}\${`
      i = at + 2
      continue
    }
    text += s.slice(i, at)
    const close = s.indexOf("}", at + 2)
    if (close === -1) return unresolved(at, 'unterminated reference: "${" without a closing "}"', escapeHint)
    const ref = reference(s.slice(at + 2, close), at)
    if (ref._tag === "Unresolved") return ref
    if (text !== "") parts.push({ _tag: "Text", text })
    text = ""
    parts.push(ref)
    i = close + 1
  }
  text += s.slice(i)
  if (text !== "") parts.push({ _tag: "Text", text })
  return { _tag: "Parts", parts }
}

/** Whether the value holds at least one well-formed reference. */
export const isReference = (raw: Raw): boolean => {
  if (typeof raw !== "string") return false
  const scanned = scan(raw)
  return scanned._tag === "Parts" && scanned.parts.some((p) => p._tag === "Ref")
}

const fromEnv = (arg: string, at: number, env: NodeJS.ProcessEnv): string | Unresolved => {
  const fallbackAt = arg.indexOf(":-")
  const name = fallbackAt === -1 ? arg : arg.slice(0, fallbackAt)
  const v = env[name]
  if (v !== undefined && v !== "") return v
  if (fallbackAt !== -1) return arg.slice(fallbackAt + 2)
  return unresolved(
    at,
    `environment variable ${name} is not set`,
    `export ${name}=... before running tessera, or give a fallback: \${env:${name}:-value}`
  )
}

const fromFile = (arg: string, at: number, configFile: string): string | Unresolved => {
  const path = isAbsolute(arg) ? arg : resolve(dirname(configFile), arg)
  const r = readText(
    path,
    maxFileBytes,
    `\${file:...} reads one secret from a regular file of at most ${formatBytes(maxFileBytes)}: check the path`
  )
  if (r._tag === "Text") return r.text.replace(/\r?\n$/, "")
  return unresolved(
    at,
    `cannot read ${path}: it ${r.reason}`,
    `${r.hint}; relative paths are taken from the config file's directory`
  )
}

export const resolveValue = (raw: Raw, configFile: string, env: NodeJS.ProcessEnv = process.env): Resolved => {
  if (typeof raw !== "string") return { _tag: "Value", value: String(raw), literal: true }
  const scanned = scan(raw)
  if (scanned._tag === "Unresolved") return scanned
  const { parts } = scanned
  let value = ""
  for (const p of parts) {
    if (p._tag === "Text") {
      value += p.text
      continue
    }
    const v = p.kind === "env" ? fromEnv(p.arg, p.at, env) : fromFile(p.arg, p.at, configFile)
    if (typeof v !== "string") return v
    value += v
  }
  return { _tag: "Value", value, literal: !parts.some((p) => p._tag === "Ref") }
}
