/** The server's log lines: one JSON line per request (the access log) and one per failure the caller only saw
 *  summarized. A line holds the method, the path WITHOUT its query string (queries often carry keys), status,
 *  duration, request id, route template, connection and API key NAME: never a header, body, key or token. */
import { WriteStream } from "node:fs"
import { Socket } from "node:net"
import { Writable } from "node:stream"

/** Where lines go: process.stdout, a file stream, or anything with `write` (tests capture lines). */
export interface LogSink {
  readonly write: (line: string) => unknown
}

export const silent: LogSink = { write: () => true }

// The batches with lines pending, written out when the process exits.
const atExit = new Set<() => void>()
process.once("exit", () => {
  for (const flush of atExit) flush()
})

/** What `batched` writes to: a stream (process.stdout, a file), which takes bytes. */
export interface ByteSink {
  readonly write: (chunk: Uint8Array | string) => unknown
}

/** A batched sink: `flush` writes what is pending now; `settled` also waits until the target has written every
 *  batch handed to it (a stream's write callbacks; at once for a target that is not a stream). */
export interface Batched extends LogSink {
  readonly flush: () => void
  readonly settled: () => Promise<void>
}

const batchBytes = 64 * 1024

const made = new WeakSet<LogSink>()

/** Whether `sink` is one `batched` made (a server given one writes through it and settles it when it closes). */
export const isBatched = (sink: LogSink): sink is Batched => made.has(sink)

/** Whether a stream holds nothing of a chunk once it has called back for it, so that the chunk's memory can take
 *  the next batch: a file stream, a socket (a pipe, a TTY), the process's stdout and stderr (a synchronous file
 *  write when redirected to one). Any other stream (a PassThrough, say, keeps the chunk for its reader after
 *  calling back) gets a new buffer per batch. */
const releasesChunks = (t: ByteSink): boolean =>
  t === process.stdout || t === process.stderr || t instanceof WriteStream || t instanceof Socket

/** A sink that collects lines as UTF-8 in a buffer and hands `target` the batch in one write: `everyMs` (20 ms)
 *  after the first line of a batch, or at once when the next line would not fit in 64 KiB. A server writing a
 *  line per request thus makes a few system calls a second instead of one per request (or per event-loop turn),
 *  at the price of lines reaching the file up to `everyMs` later. A batch's buffer takes a later batch once the
 *  target has written it (see `releasesChunks`), never while the target may still read it. `flush` writes what is
 *  pending now, and `settled` waits for the target too; the server awaits it when it closes. At exit `flush` runs
 *  by itself, which saves the last lines of a synchronous target only (process.stdout on a file or, on Linux, a
 *  pipe); a process killed with SIGKILL loses at most the last `everyMs` of lines. */
export const batched = (target: ByteSink, everyMs = 20): Batched => {
  const stream = target instanceof Writable ? target : undefined
  const reuse = stream !== undefined && releasesChunks(target)
  let buffer: Buffer = Buffer.allocUnsafeSlow(batchBytes)
  // A written batch's buffer, free for the next one.
  let spare: Buffer | undefined
  let used = 0
  let timer: NodeJS.Timeout | undefined
  // Writes handed to the stream that it has not called back for yet, and who waits for none to be left.
  let pending = 0
  const waiting: Array<() => void> = []
  const written = (full: Buffer | undefined) => () => {
    pending--
    if (full !== undefined) spare ??= full
    if (pending === 0) for (const resolve of waiting.splice(0)) resolve()
  }
  const send = (chunk: Uint8Array | string, full?: Buffer) => {
    if (stream === undefined) return void target.write(chunk)
    pending++
    try {
      stream.write(chunk, written(reuse ? full : undefined))
    } catch (e) {
      pending--
      throw e
    }
  }
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    atExit.delete(flush)
    if (used === 0) return
    // The target holds the chunk until it has written it (a file, a pipe): the next batch goes into another buffer.
    const full = buffer
    const chunk = full.subarray(0, used)
    buffer = spare ?? Buffer.allocUnsafeSlow(batchBytes)
    spare = undefined
    used = 0
    send(chunk, full)
  }
  const sink: Batched = {
    write: (line: string) => {
      // At most 3 bytes per UTF-16 unit: a line that might not fit ends the batch first.
      if (line.length * 3 > batchBytes - used) {
        flush()
        if (line.length * 3 > batchBytes) {
          send(line)
          return true
        }
      }
      used += buffer.write(line, used)
      if (timer === undefined) {
        atExit.add(flush)
        timer = setTimeout(flush, everyMs).unref()
      }
      return true
    },
    flush,
    settled: () => {
      flush()
      return pending === 0 ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve))
    }
  }
  made.add(sink)
  return sink
}

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

// The time of the lines written within one millisecond, formatted once (the access log's hot path).
let stampMs = Number.NaN
let stamp = ""
const timeOf = (now: Date | undefined): string => {
  if (now !== undefined) return now.toISOString()
  const ms = Date.now()
  if (ms !== stampMs) {
    stampMs = ms
    stamp = new Date(ms).toISOString()
  }
  return stamp
}

const text = JSON.stringify
const optional = (name: string, value: string | undefined) => (value === undefined ? "" : `,"${name}":${text(value)}`)

/** The parts of an access line that repeat from one request to the next of a hot route (all but the time, the
 *  duration and the request id), rendered once by `partsOf` and written by `accessWith`. Field by field: the same
 *  JSON, in the same order, as an object handed to JSON.stringify would give, at a fraction of its cost. */
export interface LineParts {
  /** From the type to `"duration_ms":`. */
  readonly head: string
  /** From the route on. */
  readonly tail: string
}

export const partsOf = (e: Omit<AccessEntry, "durationMs" | "requestId">): LineParts => ({
  head:
    `","type":"access","method":${text(e.method)},"path":${text(pathOf(e.path))}` +
    `,"status":${Number.isFinite(e.status) ? e.status : null},"duration_ms":`,
  tail: `${optional("route", e.route)}${optional("connection", e.connection)}${optional("key", e.key)}}\n`
})

const write = (sink: LogSink, parts: LineParts, durationMs: number, requestIdJson: string, now?: Date) => {
  const ms = Math.round(durationMs * 10) / 10
  sink.write(
    `{"time":"${timeOf(now)}${parts.head}${Number.isFinite(ms) ? ms : null},"request_id":${requestIdJson}${parts.tail}`
  )
}

/** One access line from parts rendered once (the token fast path keeps them per cached token). `requestId` must be
 *  one `RequestCtx.requestId` gave (only [A-Za-z0-9._-]): on this hot path it is not escaped. */
export const accessWith = (sink: LogSink, parts: LineParts, durationMs: number, requestId: string, now?: Date) =>
  write(sink, parts, durationMs, `"${requestId}"`, now)

/** One access line. */
export const access = (sink: LogSink, e: AccessEntry, now?: Date): void =>
  write(sink, partsOf(e), e.durationMs, text(e.requestId), now)

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
