/** Small HTTP helpers: reading capped bodies, media types, header records and Authorization parsing. */
import type { IncomingHttpHeaders, IncomingMessage } from "node:http"

export interface ReadBody {
  text: string
  /** The body was longer than the limit; `text` is then empty. */
  tooLarge: boolean
}

/**
 * Reads the whole request body. Past `limit` bytes it keeps draining (so a 413 can still be answered) but stops
 * keeping data; past `hardCap` bytes it destroys the request, which rejects the promise.
 */
export function readBody(req: IncomingMessage, limit: number, hardCap: number): Promise<ReadBody> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    let done = false
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > hardCap) {
        req.destroy()
      } else if (size <= limit) {
        chunks.push(chunk)
      }
    })
    req.on("end", () => {
      done = true
      const tooLarge = size > limit
      resolve({ text: tooLarge ? "" : Buffer.concat(chunks).toString("utf8"), tooLarge })
    })
    req.on("error", reject)
    req.on("close", () => {
      if (!done) reject(new Error("request closed before its body ended"))
    })
  })
}

/** The lower-cased media type of a Content-Type value, without parameters ("" when absent). */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? "").split(";")[0]?.trim().toLowerCase() ?? ""
}

/** Header record with lower-cased names and repeated values joined by ", ". */
export function headerRecord(headers: IncomingHttpHeaders): Record<string, string> {
  const record: Record<string, string> = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) record[name] = Array.isArray(value) ? value.join(", ") : value
  }
  return record
}

export interface BasicCredentials {
  user: string
  password: string
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * The user and password of an `Authorization: Basic` header, exactly as encoded (no URL decoding).
 * undefined when there is no Authorization header; "malformed" for another scheme or bad encoding.
 */
export function basicCredentials(authorization: string | undefined): BasicCredentials | "malformed" | undefined {
  if (authorization === undefined) return undefined
  const match = /^Basic ([^\s]+)$/i.exec(authorization.trim())
  const encoded = match?.[1]
  if (encoded === undefined || !BASE64.test(encoded)) return "malformed"
  const decoded = Buffer.from(encoded, "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  if (colon < 0) return "malformed"
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

/** application/x-www-form-urlencoded decoding of one value (RFC 6749 §2.3.1); undefined if invalid. */
export function formDecode(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, " "))
  } catch {
    return undefined
  }
}

/** The token of an `Authorization: Bearer <token>` header, if that is what was sent. */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^Bearer ([^\s]+)$/i.exec(authorization?.trim() ?? "")?.[1]
}
