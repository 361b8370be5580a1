/** The canned answers of faults that replace a provider's response outright (status, 429, HTML, empty, huge...). */
import { STATUS_CODES } from "node:http"
import type { Fault, RequestKind } from "./faults.ts"
import type { ProviderSpec } from "./providers/provider.ts"
import type { Reply } from "./reply.ts"
import type { RecordedRequest } from "./types.ts"

const HTML_PAGE =
  "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>" +
  "<body><h1>Service Unavailable</h1><p>The server is temporarily unable to service your request.</p></body></html>"

function defaultCode(status: number, kind: RequestKind): string {
  if (status === 400) return "invalid_request"
  if (status === 401) return kind === "token" ? "invalid_client" : "invalid_token"
  if (status === 403) return "access_denied"
  if (status === 404) return "not_found"
  if (status === 429) return "too_many_requests"
  if (status === 503) return "temporarily_unavailable"
  return "server_error"
}

function looksLikeJson(body: string): boolean {
  try {
    JSON.parse(body)
    return true
  } catch {
    return false
  }
}

/**
 * A JSON body of exactly `bytes` bytes: a token-looking object padded to size, or (when too small for that) a
 * number such as "1000".
 */
export function hugeBody(bytes: number, kind: RequestKind): string {
  const [head, tail] =
    kind === "token"
      ? ['{"access_token":"', '","token_type":"Bearer","expires_in":3600}']
      : ['{"ok":true,"data":"', '"}']
  const padding = bytes - head.length - tail.length
  if (padding >= 0) return `${head}${"A".repeat(padding)}${tail}`
  return bytes <= 0 ? "" : `1${"0".repeat(bytes - 1)}`
}

/** The reply for a replacing fault, or undefined for faults that shape the normal answer instead. */
export function faultReply(fault: Fault, spec: ProviderSpec, kind: RequestKind): Reply | undefined {
  switch (fault.type) {
    case "status": {
      const body =
        fault.body ??
        spec.error(fault.status, defaultCode(fault.status, kind), STATUS_CODES[fault.status] ?? "Error").body
      const contentType = looksLikeJson(body) ? "application/json" : "text/plain; charset=utf-8"
      return { status: fault.status, headers: { "Content-Type": contentType, ...fault.headers }, body }
    }
    case "rateLimit": {
      const reply = spec.error(429, "too_many_requests", "Too many requests; retry later.")
      return { ...reply, headers: { ...reply.headers, "Retry-After": String(fault.retryAfterSeconds) } }
    }
    case "html200":
      return { status: 200, headers: { "Content-Type": "text/html; charset=utf-8" }, body: HTML_PAGE }
    case "empty":
      return { status: 200, headers: { "Content-Type": "application/json" }, body: "" }
    case "invalidJson":
      return { status: 200, headers: { "Content-Type": "application/json" }, body: "{not json" }
    case "huge":
      return { status: 200, headers: { "Content-Type": "application/json" }, body: hugeBody(fault.bytes, kind) }
    case "envelopeError":
      return spec.envelopeError()
    default:
      return undefined
  }
}

/** The request as text: the request line, the raw body, then the headers as received (names lower-cased). The
 *  body comes first so that a client that shortens long messages still shows (or must scrub) it. */
export function echoText(request: RecordedRequest): string {
  const headers = Object.entries(request.headers).map(([k, v]) => `${k}: ${v}`)
  return [`${request.method} ${request.path}`, `body: ${request.rawBody}`, ...headers].join("\r\n")
}

/** The echo fault's answer: the provider's own error shape, with the whole request as its message. */
export function echoReply(status: number, spec: ProviderSpec, request: RecordedRequest): Reply {
  return spec.error(status, defaultCode(status, request.kind), `could not process your request: ${echoText(request)}`)
}
