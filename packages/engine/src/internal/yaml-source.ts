/** Parses YAML while keeping source positions, so every later problem can point at file:line:col.
 *  @internal */
import {
  Composer,
  CST,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
  visit,
  YAMLParseError,
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

/** How deeply collections may nest. tessera's own files need fewer than ten levels; the YAML composer and every
 *  later walk recurse, so a document 3000 levels deep would otherwise end in "Maximum call stack size exceeded". */
export const maxDepth = 64

const depthHint = `tessera files nest at most ${maxDepth} levels of mappings and lists: flatten this part`

/** Offset of the first collection nested deeper than `maxDepth`, found without recursion on the parser's tokens,
 *  and whether the document uses aliases at all (only they can make the value deeper than its text). */
const shape = (tokens: ReadonlyArray<CST.Token>): { readonly deep?: number; readonly aliases: boolean } => {
  const stack: Array<readonly [CST.Token, number]> = tokens.map((t) => [t, 0] as const).reverse()
  let aliases = false
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [t, depth] = next
    if (t.type === "alias") aliases = true
    else if (t.type === "document") {
      if (t.value) stack.push([t.value, depth])
    } else if (CST.isCollection(t)) {
      if (depth + 1 > maxDepth) return { deep: t.offset, aliases }
      for (let i = t.items.length - 1; i >= 0; i--) {
        const item: CST.CollectionItem = t.items[i]!
        if (item.value) stack.push([item.value, depth + 1])
        if (item.key) stack.push([item.key, depth + 1])
      }
    }
  }
  return { aliases }
}

/** Duplicate keys, found with one Set per mapping (the `yaml` package's own check compares each key with every
 *  earlier one: quadratic, 25 s for 32 000 connections). Keys compare as the property names they become, so
 *  `1` and `"1"` are duplicates too. */
const duplicateKeys = (doc: Document.Parsed): Array<{ offset: number; path: Array<string | number> }> => {
  // Paths are kept as parent links and spelled out only for a duplicate, so a large document allocates little.
  interface At {
    readonly seg: string | number
    readonly up: At | undefined
  }
  const pathOf = (at: At | undefined): Array<string | number> => {
    const out: Array<string | number> = []
    for (let a = at; a; a = a.up) out.unshift(a.seg)
    return out
  }
  const found: Array<{ offset: number; path: Array<string | number> }> = []
  const stack: Array<readonly [unknown, At | undefined]> = [[doc.contents, undefined]]
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [node, at] = next
    if (isMap(node)) {
      const seen = new Set<string>()
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined
        const here: At = { seg: key ?? "?", up: at }
        if (key !== undefined && seen.has(key))
          found.push({ offset: (pair.key as Node).range?.[0] ?? 0, path: pathOf(here) })
        if (key !== undefined) seen.add(key)
        if (pair.value !== null && typeof pair.value === "object") stack.push([pair.value, here])
      }
    } else if (isSeq(node)) node.items.forEach((item, i) => stack.push([item, { seg: i, up: at }]))
  }
  return found.sort((a, b) => a.offset - b.offset)
}

/** The JS value's depth, counting what aliases bring in, or "cycle" for an alias inside its own anchor. Memoized
 *  per object, so shared (aliased) parts are walked once. */
const valueDepth = (root: unknown): number | "cycle" => {
  const depth = new Map<object, number>()
  const open = new Set<object>()
  const stack: Array<{ readonly v: object; entered: boolean }> = []
  const children = (v: object): unknown[] => (Array.isArray(v) ? v : Object.values(v))
  if (root !== null && typeof root === "object") stack.push({ v: root, entered: false })
  for (let top = stack.at(-1); top; top = stack.at(-1)) {
    if (!top.entered) {
      top.entered = true
      open.add(top.v)
      for (const c of children(top.v)) {
        if (c === null || typeof c !== "object" || depth.has(c)) continue
        if (open.has(c)) return "cycle"
        stack.push({ v: c, entered: false })
      }
      continue
    }
    stack.pop()
    open.delete(top.v)
    let d = 1
    for (const c of children(top.v)) if (c !== null && typeof c === "object") d = Math.max(d, (depth.get(c) ?? 0) + 1)
    if (d > maxDepth) return d
    depth.set(top.v, d)
  }
  return root !== null && typeof root === "object" ? (depth.get(root) ?? 0) : 0
}

const syntaxProblem = (file: string, lines: LineCounter, e: YAMLParseError): Problem => {
  // With prettyErrors: false the parser leaves linePos unset, so place the error from its offset.
  const pos = e.linePos?.[0] ?? lines.linePos(e.pos[0])
  return errorAt(file, pos, e.message.split("\n")[0] ?? e.message, "fix the YAML syntax at this position")
}

/** An error at a place in the document (not at a config path). */
const errorAt = (file: string, pos: { readonly line: number; readonly col: number }, message: string, hint: string) =>
  ({ severity: "error", file, line: pos.line, col: pos.col, path: "", message, hint }) satisfies Problem

/** Composes the first document from the parser's tokens, as `parseDocument` does (a second document is an error). */
const compose = (tokens: ReadonlyArray<CST.Token>, length: number): Document.Parsed => {
  const composer = new Composer({ prettyErrors: false, uniqueKeys: false, strict: true })
  let doc: Document.Parsed | undefined
  for (const d of composer.compose(tokens, true, length)) {
    if (!doc) doc = d
    else {
      doc.errors.push(
        new YAMLParseError([d.range[0], d.range[1]], "MULTIPLE_DOCS", "Source contains multiple documents")
      )
      break
    }
  }
  // compose(..., true) always ends with a document, an empty one for an empty stream.
  return doc!
}

export const parse = (file: string, text: string): Parsed => {
  const lines = new LineCounter()
  const tokens = [...new Parser(lines.addNewLine).parse(text)]
  const { deep, aliases } = shape(tokens)
  if (deep !== undefined) {
    const pos = lines.linePos(deep)
    const message = `nested more than ${maxDepth} levels deep`
    return {
      ok: false,
      problems: [{ severity: "error", file, line: pos.line, col: pos.col, path: "", message, hint: depthHint }]
    }
  }
  const doc = compose(tokens, text.length)
  const duplicates = duplicateKeys(doc).map(({ offset, path }): Problem => {
    const pos = lines.linePos(offset)
    const message = "duplicate key: a key may appear only once in a mapping"
    return {
      severity: "error",
      file,
      line: pos.line,
      col: pos.col,
      path: joinPath(path),
      message,
      hint: "remove or rename one of the two keys"
    }
  })
  if (doc.errors.length > 0 || duplicates.length > 0) {
    const syntax = doc.errors.map((e) => syntaxProblem(file, lines, e))
    return { ok: false, problems: [...syntax, ...duplicates].sort((a, b) => a.line - b.line || a.col - b.col) }
  }
  // maxAliasCount bounds "billion laughs" alias expansion. toJS throws on that and on an alias with no anchor,
  // which must be a located problem, not a crash.
  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount: 100 })
  } catch (e) {
    return { ok: false, problems: [aliasProblem(file, lines, doc, e)] }
  }
  const depth = aliases ? valueDepth(value) : 0
  if (depth === "cycle" || depth > maxDepth)
    return { ok: false, problems: [aliasDepthProblem(file, lines, doc, depth)] }
  return { ok: true, source: { file, text, doc, lines, value } }
}

const firstAlias = (doc: Document.Parsed): { first: Alias | undefined; dangling: Alias | undefined } => {
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
  return { first, dangling }
}

const aliasProblem = (file: string, lines: LineCounter, doc: Document.Parsed, e: unknown): Problem => {
  const { first, dangling } = firstAlias(doc)
  const pos = lines.linePos((dangling ?? first)?.range?.[0] ?? 0)
  const message = e instanceof Error ? e.message : String(e)
  const hint = dangling
    ? "define the anchor (&name) before its alias (*name)"
    : "aliases expanding to this many copies are refused; write the values out"
  return { severity: "error", file, line: pos.line, col: pos.col, path: "", message, hint }
}

const aliasDepthProblem = (
  file: string,
  lines: LineCounter,
  doc: Document.Parsed,
  depth: number | "cycle"
): Problem => {
  const pos = lines.linePos(firstAlias(doc).first?.range?.[0] ?? 0)
  const message =
    depth === "cycle"
      ? "an alias refers to a collection that contains it"
      : `nested more than ${maxDepth} levels deep once aliases are expanded`
  return errorAt(file, pos, message, "write the values out instead of aliasing them")
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
