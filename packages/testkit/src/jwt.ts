/** HS256 JSON Web Tokens for the sandbox: signing its tokens (synchronously, with node:crypto: the sandbox issues a
 *  token inside a request handler, and jose signs only asynchronously), checking them, and decoding them in tests
 *  (jose). */
import { decodeJwt as joseDecodeJwt, decodeProtectedHeader } from "jose"
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

/** Decodes a JWT without checking its signature (jose); undefined when it is not JWT-shaped. */
export function decodeJwt(token: string): DecodedJwt | undefined {
  try {
    return { header: decodeProtectedHeader(token), payload: joseDecodeJwt(token) }
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
