/** Validates a parsed YAML document against one of tessera's JSON Schemas (draft 2020-12) and turns Ajv's errors
 *  into located problems: one per real mistake, with a hint, instead of Ajv's raw branch-by-branch noise.
 *  @internal */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { schemasDir } from "../assets.ts"
import type { Problem } from "../problem.ts"
import { problemAt, type YamlSource } from "./yaml-source.ts"
import { closest } from "./did-you-mean.ts"

const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, validateFormats: true })
ajv.addFormat("uri", { type: "string", validate: (s: string) => URL.canParse(s) })
ajv.addFormat("regex", {
  type: "string",
  validate: (s: string) => {
    try {
      new RegExp(s, "u")
      return true
    } catch {
      return false
    }
  }
})

let compiled: { provider: ValidateFunction; config: ValidateFunction } | undefined
const schema = (file: string): object => JSON.parse(readFileSync(join(schemasDir, file), "utf8")) as object
const validators = () =>
  (compiled ??= {
    provider: ajv.compile(schema("provider.schema.json")),
    config: ajv.compile(schema("config.schema.json"))
  })

const pointerToPath = (pointer: string): Array<string | number> =>
  pointer === ""
    ? []
    : pointer
        .slice(1)
        .split("/")
        .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s))

const typeName = (v: unknown): string =>
  v === null
    ? "null"
    : Array.isArray(v)
      ? "a list"
      : typeof v === "object"
        ? "a mapping"
        : `${typeof v} ${JSON.stringify(v)}`

const valueAt = (root: unknown, path: ReadonlyArray<string | number>): unknown =>
  path.reduce<unknown>(
    (v, k) => (v !== null && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined),
    root
  )

/** Ajv reports every branch of a failed oneOf/anyOf. Keep the branch that came closest (fewest errors) so the
 *  user reads about the shape they were most likely writing. */
const pruneBranches = (errors: ReadonlyArray<ErrorObject>): ReadonlyArray<ErrorObject> => {
  let result = [...errors]
  const unions = result.filter((e) => e.keyword === "oneOf" || e.keyword === "anyOf")
  for (const u of unions) {
    const prefix = `${u.schemaPath}/`
    const branchErrors = result.filter(
      (e) => e.schemaPath.startsWith(prefix) && e.instancePath.startsWith(u.instancePath)
    )
    if (branchErrors.length === 0) continue
    const byBranch = new Map<string, ErrorObject[]>()
    for (const e of branchErrors) {
      const branch = e.schemaPath.slice(prefix.length).split("/")[0] ?? ""
      byBranch.set(branch, [...(byBranch.get(branch) ?? []), e])
    }
    const allTypeErrorsHere = branchErrors.every((e) => e.keyword === "type" && e.instancePath === u.instancePath)
    if (allTypeErrorsHere) {
      const expected = [...new Set(branchErrors.map((e) => String(e.params["type"])))].join(" or ")
      result = result.filter((e) => !branchErrors.includes(e) && e !== u)
      result.push({ ...u, keyword: "type", params: { type: expected }, message: `must be ${expected}` })
      continue
    }
    // A branch whose discriminator (a const or enum) failed is a worse guess than one that only misses a key.
    const score = (es: ReadonlyArray<ErrorObject>) => es.length + 10 * es.filter((e) => e.keyword === "const").length
    const best = [...byBranch.values()].sort((a, b) => score(a) - score(b))[0] ?? []
    result = result.filter((e) => e !== u && (!branchErrors.includes(e) || best.includes(e)))
  }
  return result
}

const kindOf = (src: YamlSource): unknown =>
  src.value !== null && typeof src.value === "object" ? (src.value as Record<string, unknown>)["kind"] : undefined

const toProblem = (src: YamlSource, e: ErrorObject): Problem => {
  const path = pointerToPath(e.instancePath)
  const value = valueAt(src.value, path)
  switch (e.keyword) {
    case "additionalProperties": {
      const key = String(e.params["additionalProperty"])
      const allowed = Object.keys(
        (e.parentSchema as { properties?: Record<string, unknown> } | undefined)?.properties ?? {}
      )
      const guess = closest(key, allowed)
      return problemAt(src, [...path, key], `unknown key "${key}"`, {
        key: true,
        hint: guess ? `did you mean "${guess}"?` : allowed.length ? `allowed keys: ${allowed.join(", ")}` : "remove it"
      })
    }
    case "required": {
      const missing = String(e.params["missingProperty"])
      // The provider schema's one kind-dependent requirement: say what the kinds are.
      const kindHint =
        path.length === 0 && missing === "flows"
          ? "kind oauth2 (the default) gets tokens from flows; a static credential says kind: api_key or basic and needs only apply"
          : path.length === 0 && missing === "apply" && typeof kindOf(src) === "string"
            ? `kind ${String(kindOf(src))} needs apply: where the credential goes`
            : undefined
      return problemAt(src, path, `missing required key "${missing}"`, { hint: kindHint ?? `add "${missing}:" here` })
    }
    case "false schema": {
      // Only `kind: api_key | basic` forbids keys this way (schemas/provider.schema.json allOf).
      const key = path[path.length - 1]
      return problemAt(src, path, `key "${String(key)}" does not apply to kind: ${String(kindOf(src))}`, {
        key: true,
        hint: "a static credential has no token endpoint: remove it (apply says where the credential goes)"
      })
    }
    case "enum": {
      const allowed = (e.params["allowedValues"] as ReadonlyArray<unknown>).map((v) => JSON.stringify(v))
      return problemAt(src, path, `${typeName(value)} is not allowed`, { hint: `use one of: ${allowed.join(", ")}` })
    }
    case "const":
      return problemAt(src, path, `${typeName(value)} is not allowed`, {
        hint: `use ${JSON.stringify(e.params["allowedValue"])}`
      })
    case "type": {
      const expected = e.params["type"] as string | ReadonlyArray<string>
      return problemAt(
        src,
        path,
        `expected ${typeof expected === "string" ? expected : expected.join(" or ")}, found ${typeName(value)}`
      )
    }
    case "pattern":
      return problemAt(src, path, `${typeName(value)} does not match ${String(e.params["pattern"])}`, {
        hint: String(e.params["pattern"]).includes("a-z0-9]+(-")
          ? "use lower-case kebab-case, e.g. my-provider"
          : undefined
      })
    case "propertyNames": {
      // Input names are snake_case; connection names are freer. Say what this mapping's names must look like.
      const pattern = (e.schema as { pattern?: string } | undefined)?.pattern
      const hint =
        pattern === undefined || pattern === "^[a-z][a-z0-9_]*$"
          ? "keys are snake_case: lower-case letters, digits and _"
          : `keys here must match ${pattern}`
      return problemAt(
        src,
        [...path, String(e.params["propertyName"])],
        `invalid key "${String(e.params["propertyName"])}"`,
        { key: true, hint }
      )
    }
    case "minProperties": {
      const description = (e.parentSchema as { description?: string } | undefined)?.description
      return problemAt(src, path, `needs at least ${String(e.params["limit"])} keys`, { hint: description })
    }
    case "format":
      return problemAt(src, path, `${typeName(value)} is not a valid ${String(e.params["format"])}`)
    default:
      return problemAt(src, path, e.message ?? `fails ${e.keyword}`)
  }
}

export const check = (kind: "provider" | "config", src: YamlSource): ReadonlyArray<Problem> => {
  const validate = validators()[kind]
  if (validate(src.value)) return []
  const errors = pruneBranches(validate.errors ?? [])
  // A propertyNames failure also yields a "pattern" error for the name itself; report the name once.
  // An if/then failure also yields an "if" error saying only "must match then schema": the then error says what.
  const filtered = errors.filter(
    (e) => !(e.keyword === "pattern" && e.propertyName !== undefined) && e.keyword !== "if"
  )
  const seen = new Set<string>()
  return filtered
    .map((e) => toProblem(src, e))
    .filter((p) => {
      const k = `${p.line}:${p.col}:${p.message}`
      return seen.has(k) ? false : (seen.add(k), true)
    })
}
