/** Webhook signatures the Standard Webhooks way (standardwebhooks.com, spec 1.0.0, symmetric scheme): the signed
 *  content is `{webhook-id}.{webhook-timestamp}.{body}`, signed with HMAC-SHA256 under the secret, and sent as
 *  `webhook-signature: v1,<base64 signature>` (a space-separated list, for secret rotation). A secret is written
 *  `whsec_<base64>` and is 24 to 64 random bytes.
 *
 *  Holds `parseSecret`, `sign`, `headers` (what a sender adds) and `verify` (what a receiver checks: a signature
 *  that matches in constant time, and a timestamp within the tolerance, against replays). */
import { createHmac, timingSafeEqual } from "node:crypto"

export const secretPrefix = "whsec_"
export const minSecretBytes = 24
export const maxSecretBytes = 64

/** The key bytes of a `whsec_<base64>` secret, or why it is not one (the reason never quotes the value). */
export const parseSecret = (secret: string): Buffer | { readonly problem: string } => {
  if (!secret.startsWith(secretPrefix))
    return { problem: `a webhook secret starts with ${secretPrefix} (then base64 of ${minSecretBytes} to 64 bytes)` }
  const b64 = secret.slice(secretPrefix.length)
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0)
    return { problem: `what follows ${secretPrefix} is not base64` }
  const key = Buffer.from(b64, "base64")
  if (key.length < minSecretBytes || key.length > maxSecretBytes)
    return { problem: `a webhook secret holds ${minSecretBytes} to ${maxSecretBytes} bytes, this one ${key.length}` }
  return key
}

/** `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. `timestamp` is in seconds since the epoch. */
export const sign = (key: Buffer, id: string, timestamp: number, body: string): string =>
  `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`

/** The three headers of one delivery attempt. */
export const headers = (key: Buffer, id: string, timestamp: number, body: string): Record<string, string> => ({
  "webhook-id": id,
  "webhook-timestamp": String(timestamp),
  "webhook-signature": sign(key, id, timestamp, body)
})

export type Verdict = "ok" | "bad_signature" | "stale" | "malformed"

/** Checks a received webhook: `headers` as received (lower-case names), `body` exactly as received (not re-encoded
 *  JSON), `now` in seconds. A timestamp more than `toleranceSeconds` (default 300) away is `stale`. */
export const verify = (
  key: Buffer,
  received: { readonly [name: string]: string | ReadonlyArray<string> | undefined },
  body: string,
  now: number,
  toleranceSeconds = 300
): Verdict => {
  const one = (name: string) => {
    const v = received[name]
    return typeof v === "string" ? v : undefined
  }
  const id = one("webhook-id")
  const timestamp = one("webhook-timestamp")
  const signatures = one("webhook-signature")
  if (!id || !timestamp || !signatures || !/^\d+$/.test(timestamp)) return "malformed"
  if (Math.abs(now - Number(timestamp)) > toleranceSeconds) return "stale"
  const expected = Buffer.from(sign(key, id, Number(timestamp), body))
  const match = signatures.split(" ").some((s) => {
    const given = Buffer.from(s)
    return given.length === expected.length && timingSafeEqual(given, expected)
  })
  return match ? "ok" : "bad_signature"
}
