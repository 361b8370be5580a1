/** Test helpers: wire-level requests against the sandbox with global fetch, and small JSON accessors. */
import { decodeJwt } from "../src/jwt.ts"

export const FORM = "application/x-www-form-urlencoded"

export function postForm(
  url: string,
  fields: Record<string, string> | string,
  headers: Record<string, string> = {}
): Promise<Response> {
  const body = typeof fields === "string" ? fields : new URLSearchParams(fields).toString()
  return fetch(url, { method: "POST", headers: { "content-type": FORM, ...headers }, body })
}

export function postJson(url: string, value: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(value)
  })
}

export function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` }
}

/** The value at a dotted path of a JSON value (undefined when absent). */
export function at(value: unknown, path: string): unknown {
  let current: unknown = value
  for (const key of path.split(".")) {
    if (typeof current !== "object" || current === null) return undefined
    current = (current as Record<string, unknown>)[key]
  }
  return current
}

export function str(value: unknown): string {
  if (typeof value !== "string") throw new TypeError(`expected a string, got ${JSON.stringify(value)}`)
  return value
}

export function claims(token: string): Record<string, unknown> {
  const decoded = decodeJwt(token)
  if (decoded === undefined) throw new TypeError(`not a JWT: ${token}`)
  return decoded.payload
}

export async function readJson(res: Response): Promise<unknown> {
  return (await res.json()) as unknown
}
