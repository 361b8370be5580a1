/** The server's log lines: one JSON line per request (the access log) and one per failure the caller only saw
 *  summarized. A line holds the method, the path WITHOUT its query string (queries often carry keys), status,
 *  duration, request id, route template, connection and API key NAME: never a header, body, key or token. */

/** Where lines go: process.stdout, a file stream, or anything with `write` (tests capture lines). */
export interface LogSink {
  readonly write: (line: string) => unknown
}

export const silent: LogSink = { write: () => true }

export interface AccessEntry {
  readonly method: string
  /** The request path; the query string is cut off here, whatever the caller passes. */
  readonly path: string
  readonly status: number
  readonly durationMs: number
  readonly requestId: string
  readonly route?: string | undefined
  readonly connection?: string | undefined
  readonly key?: string | undefined
}

const maxPath = 2048

/** The path of a request target, without query or fragment, capped in length. */
export const pathOf = (target: string): string => {
  const cut = target.search(/[?#]/)
  const path = cut === -1 ? target : target.slice(0, cut)
  return path.length > maxPath ? `${path.slice(0, maxPath)}...` : path
}

// JSON.stringify leaves out the fields whose value is undefined.
const line = (fields: Record<string, unknown>) => JSON.stringify(fields) + "\n"

export const access = (sink: LogSink, e: AccessEntry, now: Date = new Date()): void => {
  sink.write(
    line({
      time: now.toISOString(),
      type: "access",
      method: e.method,
      path: pathOf(e.path),
      status: e.status,
      duration_ms: Math.round(e.durationMs * 10) / 10,
      request_id: e.requestId,
      route: e.route,
      connection: e.connection,
      key: e.key
    })
  )
}

export interface ErrorEntry {
  readonly requestId?: string | undefined
  readonly code: string
  readonly message: string
}

/** A failure in full for the operator (the caller got a summary). Messages come from the engine's errors, which
 *  never hold a secret, or from defects. */
export const error = (sink: LogSink, e: ErrorEntry, now: Date = new Date()): void => {
  sink.write(
    line({ time: now.toISOString(), type: "error", request_id: e.requestId, code: e.code, message: e.message })
  )
}

export const info = (
  sink: LogSink,
  message: string,
  fields: Record<string, unknown> = {},
  now: Date = new Date()
): void => {
  sink.write(line({ time: now.toISOString(), type: "info", message, ...fields }))
}
