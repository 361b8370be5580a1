/** Strict checking of application/x-www-form-urlencoded token requests: exact field sets, no repeats, no empties. */

export interface FormSpec {
  required: readonly string[]
  optional?: readonly string[]
}

export type FormCheck = { ok: true; fields: Record<string, string> } | { ok: false; message: string }

/** Parses the body and checks it holds every required field, only known fields, each once and non-empty. */
export function checkForm(rawBody: string, spec: FormSpec): FormCheck {
  const params = new URLSearchParams(rawBody)
  const fields: Record<string, string> = {}
  const allowed = new Set([...spec.required, ...(spec.optional ?? [])])
  for (const [name, value] of params) {
    if (!allowed.has(name)) return { ok: false, message: `Unexpected parameter: ${name}.` }
    if (Object.hasOwn(fields, name)) return { ok: false, message: `Parameter ${name} is included more than once.` }
    if (value === "") return { ok: false, message: `Parameter ${name} has an empty value.` }
    fields[name] = value
  }
  const missing = spec.required.filter((name) => !Object.hasOwn(fields, name))
  if (missing.length > 0) return { ok: false, message: `Missing parameter: ${missing.join(", ")}.` }
  return { ok: true, fields }
}

/** The single grant_type value of a form body, if present exactly once. */
export function grantType(rawBody: string): string | undefined {
  const values = new URLSearchParams(rawBody).getAll("grant_type")
  return values.length === 1 ? values[0] : undefined
}
