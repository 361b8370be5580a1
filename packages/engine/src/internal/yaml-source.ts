/** Parses YAML while keeping source positions, so every later problem can point at file:line:col.
 *  @internal */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
  type Alias,
  type Document,
  type Node
} from "yaml"
import type { Problem, Severity } from "../problem.ts"
import { joinPath } from "../problem.ts"

export interface YamlSource {
  readonly file: string
  readonly text: string
  readonly value: unknown
  readonly doc: Document.Parsed
  readonly lines: LineCounter
}

export type Parsed =
  { readonly ok: true; readonly source: YamlSource } | { readonly ok: false; readonly problems: ReadonlyArray<Problem> }

export const parse = (file: string, text: string): Parsed => {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true })
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        // With prettyErrors: false the parser leaves linePos unset, so place the error from its offset.
        const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0])
        const message =
          e.code === "DUPLICATE_KEY"
            ? "duplicate key: a key may appear only once in a mapping"
            : (e.message.split("\n")[0] ?? e.message)
        return {
          severity: "error",
          file,
          line: pos.line,
          col: pos.col,
          path: "",
          message,
          hint:
            e.code === "DUPLICATE_KEY" ? "remove or rename one of the two keys" : "fix the YAML syntax at this position"
        }
      })
    }
  }
  // maxAliasCount bounds "billion laughs" alias expansion. toJS throws on that and on an alias with no anchor,
  // which must be a located problem, not a crash.
  try {
    return { ok: true, source: { file, text, doc, lines, value: doc.toJS({ maxAliasCount: 100 }) } }
  } catch (e) {
    let first: Alias | undefined
    let dangling: Alias | undefined
    visit(doc, {
      Alias: (_, node) => {
        first ??= node
        if (node.resolve(doc) !== undefined) return undefined
        dangling = node
        return visit.BREAK
      }
    })
    const pos = lines.linePos((dangling ?? first)?.range?.[0] ?? 0)
    const message = e instanceof Error ? e.message : String(e)
    const hint = dangling
      ? "define the anchor (&name) before its alias (*name)"
      : "aliases expanding to this many copies are refused; write the values out"
    return { ok: false, problems: [{ severity: "error", file, line: pos.line, col: pos.col, path: "", message, hint }] }
  }
}

/** Position of the node at `path`. With `key: true`, the position of the mapping key holding it (for unknown keys).
 *  With `index`, the position of that character of a string value, when the value is written on one line as is
 *  (plain, or quoted without escapes); otherwise the value's own position. */
export const positionOf = (
  src: YamlSource,
  path: ReadonlyArray<string | number>,
  opts: { key?: boolean; index?: number | undefined } = {}
): { line: number; col: number } => {
  let node: unknown = src.doc.contents
  let offset = (node as Node | null)?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      const last = i === path.length - 1
      const keyNode = pair.key as Node
      if (last && opts.key) {
        offset = keyNode.range?.[0] ?? offset
        node = undefined
        break
      }
      node = pair.value
      offset = (node as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg]
      offset = (node as Node | null)?.range?.[0] ?? offset
    } else break
  }
  if (opts.index !== undefined && isScalar(node) && typeof node.value === "string" && node.range) {
    const raw = src.text.slice(node.range[0], node.range[1])
    if (raw === node.value) offset = node.range[0] + opts.index
    else if (raw.length === node.value.length + 2 && raw.slice(1, -1) === node.value)
      offset = node.range[0] + 1 + opts.index
  }
  return src.lines.linePos(offset)
}

export const problemAt = (
  src: YamlSource,
  path: ReadonlyArray<string | number>,
  message: string,
  opts: { hint?: string | undefined; severity?: Severity; key?: boolean; index?: number | undefined } = {}
): Problem => {
  const pos = positionOf(src, path, { key: opts.key ?? false, index: opts.index })
  return {
    severity: opts.severity ?? "error",
    file: src.file,
    line: pos.line,
    col: pos.col,
    path: joinPath(path),
    message,
    hint: opts.hint
  }
}
