/** A fully formed HTTP answer (status, headers, body) that handlers build and the sandbox delivers. */

export interface Reply {
  status: number
  headers: Record<string, string>
  body: string
}

export function jsonReply(status: number, value: unknown, headers: Record<string, string> = {}): Reply {
  return { status, headers: { "Content-Type": "application/json", ...headers }, body: JSON.stringify(value) }
}

/** Headers RFC 6749 §5.1 requires on token responses. */
export const NO_STORE: Readonly<Record<string, string>> = { "Cache-Control": "no-store", Pragma: "no-cache" }
