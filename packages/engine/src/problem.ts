/** A problem found while loading a manifest or config: where it is (file:line:col and the JSON path), what is wrong
 *  and what to do. Loaders collect every problem before failing, so one run lists them all. */

export type Severity = "error" | "warning"

export interface Problem {
  readonly severity: Severity
  readonly file: string
  readonly line: number
  readonly col: number
  /** Dot path of the offending value, e.g. `flows.acquire.url` or `connections.crm.inputs.api_key`. */
  readonly path: string
  readonly message: string
  readonly hint?: string | undefined
}

export const format = (p: Problem): string =>
  `${p.file}:${p.line}:${p.col}: ${p.severity}: ${p.path ? `${p.path}: ` : ""}${p.message}${p.hint ? `\n  hint: ${p.hint}` : ""}`

export const formatAll = (problems: ReadonlyArray<Problem>): string => problems.map(format).join("\n")

export const errors = (problems: ReadonlyArray<Problem>): ReadonlyArray<Problem> =>
  problems.filter((p) => p.severity === "error")

export const warnings = (problems: ReadonlyArray<Problem>): ReadonlyArray<Problem> =>
  problems.filter((p) => p.severity === "warning")

/** Joins a JSON path for display: `["flows", "acquire", "body", 0]` -> `flows.acquire.body[0]`. */
export const joinPath = (segments: ReadonlyArray<string | number>): string =>
  segments.reduce<string>((acc, s) => (typeof s === "number" ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), "")
