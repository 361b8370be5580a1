/** Parses YAML while keeping source positions, so every later problem can point at file:line:col.
 *  @internal */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from "yaml"
import type { Problem, Severity } from "../problem.ts"
import { joinPath } from "../problem.ts"

export interface YamlSource {
  readonly file: string
  readonly value: unknown
  readonly doc: Document.Parsed
  readonly lines: LineCounter
}

export type Parsed = { readonly ok: true; readonly source: YamlSource } | { readonly ok: false; readonly problems: ReadonlyArray<Problem> }

export const parse = (file: string, text: string): Parsed => {
  const lines = new LineCounter()
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true })
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 }
        const message = e.code === "DUPLICATE_KEY" ? "duplicate key: a key may appear only once in a mapping" : e.message.split("\n")[0] ?? e.message
        return { severity: "error", file, line: pos.line, col: pos.col, path: "", message, hint: e.code === "DUPLICATE_KEY" ? "remove or rename one of the two keys" : "fix the YAML syntax at this position" }
      })
    }
  }
  // maxAliasCount bounds "billion laughs" alias expansion.
  return { ok: true, source: { file, doc, lines, value: doc.toJS({ maxAliasCount: 100 }) } }
}

/** Position of the node at `path`. With `key: true`, the position of the mapping key holding it (for unknown keys). */
export const positionOf = (src: YamlSource, path: ReadonlyArray<string | number>, opts: { key?: boolean } = {}): { line: number; col: number } => {
  let node: unknown = src.doc.contents
  let offset = (node as Node | null)?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      const last = i === path.length - 1
      const keyNode = pair.key as Node
      if (last && opts.key) { offset = keyNode.range?.[0] ?? offset; node = undefined; break }
      node = pair.value
      offset = (node as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset
    } else if (isSeq(node) && typeof seg === "number") {
      node = node.items[seg]
      offset = (node as Node | null)?.range?.[0] ?? offset
    } else break
  }
  return src.lines.linePos(offset)
}

export const problemAt = (
  src: YamlSource, path: ReadonlyArray<string | number>, message: string,
  opts: { hint?: string | undefined; severity?: Severity; key?: boolean } = {}
): Problem => {
  const pos = positionOf(src, path, { key: opts.key ?? false })
  return { severity: opts.severity ?? "error", file: src.file, line: pos.line, col: pos.col, path: joinPath(path), message, hint: opts.hint }
}
