/** Reads a value at an explicit dot path (`data.token`) in decoded JSON. No key search, no wildcards: a manifest
 *  says exactly where a value is, so a response with the value elsewhere is an error, not a guess. */

export const split = (path: string): ReadonlyArray<string> => path.split(".")

export const get = (value: unknown, path: string | undefined): unknown => {
  if (path === undefined || path === "") return value
  let v: unknown = value
  for (const key of split(path)) {
    if (v === null || typeof v !== "object" || Array.isArray(v) || !Object.hasOwn(v, key)) return undefined
    v = (v as Record<string, unknown>)[key]
  }
  return v
}
