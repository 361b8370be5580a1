/** Minimal HS256 JSON Web Tokens: signing the sandbox's tokens and decoding them in tests. */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"

const HEADER = { typ: "JWT", alg: "HS256" } as const

export function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString("base64url")
}

function signature(signingInput: string, key: Buffer): string {
  return createHmac("sha256", key).update(signingInput).digest("base64url")
}

/** Signs the claims with header {"typ":"JWT","alg":"HS256"}; claim order and types are kept as given. */
export function signJwt(claims: Record<string, unknown>, key: Buffer): string {
  const signingInput = `${base64url(JSON.stringify(HEADER))}.${base64url(JSON.stringify(claims))}`
  return `${signingInput}.${signature(signingInput, key)}`
}

export interface DecodedJwt {
  header: Record<string, unknown>
  payload: Record<string, unknown>
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

/** Decodes a JWT without checking its signature; undefined when it is not JWT-shaped. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  const parts = token.split(".")
  if (parts.length !== 3) return undefined
  try {
    const header: unknown = JSON.parse(Buffer.from(parts[0] ?? "", "base64url").toString("utf8"))
    const payload: unknown = JSON.parse(Buffer.from(parts[1] ?? "", "base64url").toString("utf8"))
    return isRecord(header) && isRecord(payload) ? { header, payload } : undefined
  } catch {
    return undefined
  }
}

/** True when the token is signed with the key (HS256). */
export function verifyJwt(token: string, key: Buffer): boolean {
  const lastDot = token.lastIndexOf(".")
  if (lastDot < 0) return false
  const expected = Buffer.from(signature(token.slice(0, lastDot), key))
  const actual = Buffer.from(token.slice(lastDot + 1))
  return expected.length === actual.length && timingSafeEqual(expected, actual)
}

/** Random hex of `bytes` bytes, e.g. for jti claims. */
export function randomHex(bytes: number, upper = false): string {
  const hex = randomBytes(bytes).toString("hex")
  return upper ? hex.toUpperCase() : hex
}
