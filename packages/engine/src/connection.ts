/** A connection: one provider manifest plus the inputs that identify one account at it. Resolving checks every
 *  input against the manifest (unknown, missing, enum, pattern, type, rules between inputs), fills defaults in
 *  dependency order and wraps secret inputs in Redacted before anything else sees them. */
import * as Redacted from "effect/Redacted"
import { isIPv4, isIPv6 } from "node:net"
import type { Manifest, InputSpec } from "./manifest.ts"
import * as Template from "./template.ts"
import { closest } from "./internal/did-you-mean.ts"

export interface Connection {
  readonly name: string
  readonly manifest: Manifest
  readonly inputs: ReadonlyMap<string, Template.Value>
  readonly allowInsecureHttp: boolean
  /** Labels such as `tenant: acme`: API keys are scoped by them and lists filter on them. */
  readonly tags: Readonly<Record<string, string>>
  /** "config": named in the config file; "api": created at runtime and kept in the connection store. */
  readonly source: "config" | "api"
  /** The stored version (0 for config connections): part of the token cache key, so a replaced connection never
   *  reuses a token obtained with its old inputs. */
  readonly version: number
  /** When a stored connection was created (epoch ms; a replacement keeps it). Versions start again at 1 when a name
   *  is deleted and created anew, possibly for another tenant: this tells the new connection from the old one in
   *  token cache keys, so it never finds a token the old one left in a shared store. Undefined for config ones. */
  readonly createdAt?: number | undefined
}

/** One finding about an input; `input` is undefined for findings about the connection as a whole. */
export interface InputIssue {
  readonly input?: string | undefined
  readonly severity: "error" | "warning"
  readonly message: string
  readonly hint?: string | undefined
}

/** A value the connection gave: its text, and whether it was written literally in a file. */
export interface GivenInput {
  readonly value: string
  readonly literal: boolean
}

/** Whether a host name is this machine's loopback: `localhost`, 127.0.0.0/8 or ::1 (bracketed or not, in any
 *  spelling, also IPv4-mapped). The one rule for "plain http is safe here" (checkUrl, the API calls) and "a server
 *  without keys may listen here" (the server's bind check). */
export const isLoopback = (host: string): boolean => {
  const h = host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host
  if (h.toLowerCase() === "localhost") return true
  if (isIPv4(h)) return h.startsWith("127.")
  if (!isIPv6(h)) return false
  // The URL parser writes every IPv6 spelling one way: 0:0:0:0:0:0:0:1 is [::1], ::ffff:127.0.0.1 is [::ffff:7f00:1].
  const canonical = new URL(`http://[${h}]/`).hostname
  return canonical === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(canonical)
}

/** Checks a URL value: absolute http(s); plain http only to loopback unless allowed. */
export const checkUrl = (value: string, allowInsecureHttp: boolean): { message: string; hint: string } | undefined => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return { message: "is not an absolute URL", hint: "e.g. https://api.example.com" }
  }
  if (url.protocol !== "https:" && url.protocol !== "http:")
    return { message: `uses ${url.protocol} (only https: and http: are allowed)`, hint: "use an https:// URL" }
  if (url.protocol === "http:" && !allowInsecureHttp && !isLoopback(url.hostname)) {
    return {
      message: `uses plain http:// to ${url.hostname}; tokens and secrets would cross the network unencrypted`,
      hint: "use https://, or set allow_insecure_http: true on the connection if you really mean it"
    }
  }
  if (url.username || url.password)
    return { message: "carries credentials in the URL", hint: "use the manifest's client credential inputs instead" }
  return undefined
}

const checkValue = (spec: InputSpec, value: string, allowInsecureHttp: boolean): InputIssue | undefined => {
  // Secret values never appear in messages: say what is wrong, not what was given.
  const shown = spec.secret ? "the value" : JSON.stringify(value)
  if (spec.enum && !spec.enum.includes(value))
    return {
      input: spec.name,
      severity: "error",
      message: `${shown} is not allowed`,
      hint: `use one of: ${spec.enum.join(", ")}`
    }
  if (spec.pattern && !spec.pattern.test(value))
    return {
      input: spec.name,
      severity: "error",
      message: `${shown} does not match ${spec.pattern.source}`,
      hint: spec.example ? `e.g. ${spec.example}` : undefined
    }
  if (spec.type === "integer" && !/^\d+$/.test(value))
    return { input: spec.name, severity: "error", message: `${shown} is not a whole number` }
  if (spec.type === "url") {
    const bad = checkUrl(value, allowInsecureHttp)
    if (bad) return { input: spec.name, severity: "error", message: `${shown} ${bad.message}`, hint: bad.hint }
  }
  return undefined
}

export const resolveInputs = (
  manifest: Manifest,
  given: ReadonlyMap<string, GivenInput>,
  opts: { allowInsecureHttp?: boolean } = {}
): { inputs: Map<string, Template.Value>; issues: InputIssue[] } => {
  const issues: InputIssue[] = []
  const allowInsecureHttp = opts.allowInsecureHttp ?? false
  const inputs = new Map<string, Template.Value>()
  const declared = [...manifest.inputs.keys()]
  for (const [name, v] of given) {
    const spec = manifest.inputs.get(name)
    if (!spec) {
      const guess = closest(name, declared)
      issues.push({
        input: name,
        severity: "error",
        message: `${manifest.id} has no input "${name}"`,
        hint: guess ? `did you mean "${guess}"?` : `its inputs are: ${declared.join(", ")}`
      })
      continue
    }
    if (spec.secret && v.literal && v.value !== "" && v.value !== "-") {
      issues.push({
        input: name,
        severity: "warning",
        message: "secret input written literally in the config file",
        hint: `use \${env:VAR} or \${file:PATH} so the secret stays out of the file`
      })
    }
    inputs.set(name, spec.secret ? Redacted.make(v.value, { label: name }) : v.value)
  }
  // Defaults may reference other inputs (acyclic: checked at load), so resolve on demand with memoisation.
  const lookup = (name: string): Template.Value | undefined => {
    if (inputs.has(name)) return inputs.get(name)
    const spec = manifest.inputs.get(name)
    if (!spec?.default) return undefined
    const r = Template.render(spec.default, { inputs: lookup })
    if (r._tag === "Missing") return undefined
    const value = spec.secret && !Template.isSecret(r.value) ? Redacted.make(r.value, { label: name }) : r.value
    inputs.set(name, value)
    return value
  }
  // A default built from a bad value fails for the same reason (token_url from an http:// base_url): report the
  // value the connection gave, once, not again at every default derived from it.
  const check = (spec: InputSpec): InputIssue | undefined => {
    const v = lookup(spec.name)
    return v === undefined ? undefined : checkValue(spec, Template.reveal(v), allowInsecureHttp)
  }
  const failing = new Set(
    [...manifest.inputs.values()].filter((spec) => check(spec) !== undefined).map((spec) => spec.name)
  )
  const derivedFromFailing = (name: string): boolean =>
    !given.has(name) &&
    Template.refs(manifest.inputs.get(name)?.default ?? Template.literal(""), "inputs").some(
      (r) => failing.has(r.name) || derivedFromFailing(r.name)
    )
  for (const spec of manifest.inputs.values()) {
    const v = lookup(spec.name)
    if (v === undefined) {
      if (spec.required)
        issues.push({
          input: spec.name,
          severity: "error",
          message: `missing required input "${spec.name}"${spec.title ? ` (${spec.title})` : ""}`,
          hint: spec.description ?? (spec.example ? `e.g. ${spec.name}: ${spec.example}` : undefined)
        })
      continue
    }
    const bad = check(spec)
    if (bad && !derivedFromFailing(spec.name))
      issues.push(given.has(spec.name) ? bad : { ...bad, message: `default of "${spec.name}": ${bad.message}` })
  }
  const isSet = (n: string) => inputs.has(n) && Template.reveal(inputs.get(n)!) !== ""
  for (const rule of manifest.inputRules) {
    if (rule.kind === "one_of") {
      const complete = rule.groups.filter((g) => g.every(isSet))
      const touched = rule.groups.filter((g) => g.some((n) => given.has(n)))
      if (complete.length !== 1 || touched.length !== 1) {
        const groups = rule.groups.map((g) => g.join(" + ")).join(" | ")
        issues.push({
          severity: "error",
          message:
            complete.length === 0
              ? `none of the input groups is complete: ${groups}`
              : `give exactly one input group of: ${groups}`,
          hint: rule.message
        })
      }
    } else if (inputs.has(rule.input) && Template.reveal(inputs.get(rule.input)!) === rule.equals) {
      for (const n of rule.require)
        if (!isSet(n))
          issues.push({
            input: n,
            severity: "error",
            message: `"${n}" is required when ${rule.input} is ${rule.equals}`,
            hint: rule.message
          })
    }
  }
  return { inputs, issues }
}
