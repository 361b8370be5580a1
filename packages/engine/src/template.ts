/** The manifest template language: text with `{{ inputs.name }}` / `{{ token.field }}` placeholders and an optional
 *  `| default: "text"` fallback. Parsed once at load time; rendering is lookup and concatenation, never evaluation.
 *  A rendered value is secret when any value it used was secret, so secrets stay redacted through templates. */
import * as Redacted from "effect/Redacted"

export type Scope = "inputs" | "token"

export type Segment =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "ref"; readonly scope: Scope; readonly name: string; readonly fallback?: string | undefined }

export interface Template {
  readonly source: string
  readonly segments: ReadonlyArray<Segment>
}

export class TemplateSyntaxError extends Error {
  readonly column: number
  constructor(message: string, column: number) {
    super(message)
    this.name = "TemplateSyntaxError"
    this.column = column
  }
}

const placeholder =
  /^\s*(inputs|token)\.([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|\s*default\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')\s*)?$/

/** Parses a template; throws TemplateSyntaxError (with a 0-based column into the source) on bad syntax. */
export const parse = (source: string): Template => {
  const segments: Segment[] = []
  let i = 0
  while (i < source.length) {
    const open = source.indexOf("{{", i)
    if (open === -1) {
      segments.push({ kind: "text", text: source.slice(i) })
      break
    }
    if (open > i) segments.push({ kind: "text", text: source.slice(i, open) })
    const close = source.indexOf("}}", open + 2)
    if (close === -1) throw new TemplateSyntaxError(`unclosed "{{" in template`, open)
    const inner = source.slice(open + 2, close)
    const m = placeholder.exec(inner)
    if (!m) {
      const scope = /^\s*([A-Za-z_]+)\./.exec(inner)?.[1]
      throw new TemplateSyntaxError(
        scope && scope !== "inputs" && scope !== "token"
          ? `unknown scope "${scope}" in "{{${inner}}}": use inputs.<name> or token.<field>`
          : `invalid placeholder "{{${inner}}}": expected {{ inputs.name }} or {{ inputs.name | default: "text" }}`,
        open
      )
    }
    const fallback = m[3] !== undefined ? m[3].replace(/\\(.)/g, "$1") : m[4]
    segments.push({ kind: "ref", scope: m[1] as Scope, name: m[2]!, fallback })
    i = close + 2
  }
  return { source, segments }
}

export const literal = (text: string): Template => ({ source: text, segments: [{ kind: "text", text }] })

export const refs = (t: Template, scope?: Scope): ReadonlyArray<Extract<Segment, { kind: "ref" }>> =>
  t.segments.filter(
    (s): s is Extract<Segment, { kind: "ref" }> => s.kind === "ref" && (scope === undefined || s.scope === scope)
  )

/** A value a template may read: plain text, or a secret kept redacted. */
export type Value = string | Redacted.Redacted<string>

export interface Context {
  readonly inputs: (name: string) => Value | undefined
  readonly token?: ((field: string) => Value | undefined) | undefined
}

export type Rendered =
  | { readonly _tag: "Value"; readonly value: Value }
  | { readonly _tag: "Missing"; readonly names: ReadonlyArray<string> }

export const isSecret = (v: Value): v is Redacted.Redacted<string> => Redacted.isRedacted(v)
export const reveal = (v: Value): string => (isSecret(v) ? Redacted.value(v) : v)

/** Renders a template. Placeholders with no value and no fallback make the result Missing (the caller decides
 *  whether that drops an optional field or is an error). */
export const render = (t: Template, ctx: Context): Rendered => {
  let out = ""
  let secret = false
  const missing: string[] = []
  for (const s of t.segments) {
    if (s.kind === "text") {
      out += s.text
      continue
    }
    const v = s.scope === "inputs" ? ctx.inputs(s.name) : ctx.token?.(s.name)
    if (v === undefined || (!isSecret(v) && v === "" && s.fallback !== undefined)) {
      if (s.fallback !== undefined) out += s.fallback
      else missing.push(`${s.scope}.${s.name}`)
      continue
    }
    if (isSecret(v)) secret = true
    out += reveal(v)
  }
  if (missing.length > 0) return { _tag: "Missing", names: missing }
  return { _tag: "Value", value: secret ? Redacted.make(out) : out }
}
