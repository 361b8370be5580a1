/** One exchange on undici's handler API whose answer is held at its status and headers, then either written straight
 *  into a Writable (`into`) or thrown away (`discard`): the proxy's hot path (Api.forwardFast). Against `request`
 *  + `pipe`, no Readable stands between the API's socket and the caller's, and the 401 rule can look at the
 *  status before a byte of the body is read (undici pauses the socket meanwhile).
 *
 *  - Backpressure: a chunk the destination does not take pauses the socket until the destination drains.
 *  - A destination that closes before the answer has ended (the caller went away) aborts the exchange, and an
 *    exchange that fails after the head (a reset or a stall mid-body) destroys the destination: the caller's
 *    response is cut, never ended as if complete.
 *  - `discard` reads and drops a small body, so the connection stays reusable, and aborts a large one.
 *
 *  @internal */
import type { Writable } from "node:stream"
import type { Dispatcher } from "undici"
import type { HeaderMap } from "./api-http.ts"
import { reasonOf } from "./api-http.ts"

/** An answer held at its head. */
export interface Held {
  readonly status: number
  readonly statusText: string
  readonly headers: Readonly<Record<string, string | ReadonlyArray<string> | undefined>>
  /** Writes the body into `destination` and ends it (destroys it if the exchange fails). Once. */
  readonly into: (destination: Writable) => void
  /** Drops the body. Once, instead of `into`. */
  readonly discard: () => void
}

// What `discard` reads to keep the connection for the next request; past this the exchange is aborted.
const discardBytes = 64 * 1024

class Cut extends Error {
  constructor(why: string) {
    super(why)
    this.name = "Cut"
  }
}

/** undici's handler for one exchange, in three states: held (paused at the head, chunks kept should any come),
 *  flowing into a destination, or discarding. */
class Handler implements Dispatcher.DispatchHandler {
  private controller: Dispatcher.DispatchController | undefined
  private head: Held | undefined
  private destination: Writable | undefined
  private discarding = false
  private discarded = 0
  private kept: Buffer[] = []
  private ended = false
  private failure: Error | undefined

  private readonly resolve: (held: Held) => void
  private readonly reject: (e: unknown) => void

  constructor(resolve: (held: Held) => void, reject: (e: unknown) => void) {
    this.resolve = resolve
    this.reject = reject
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    status: number,
    headers: Record<string, string | ReadonlyArray<string> | undefined>,
    statusMessage?: string
  ): void {
    if (status < 200) return // 1xx: informational, the real answer follows
    controller.pause()
    this.head = {
      status,
      statusText: reasonOf(statusMessage),
      headers,
      into: (d) => this.into(d),
      discard: () => this.discard()
    }
    this.resolve(this.head)
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.discarding) {
      this.discarded += chunk.length
      if (this.discarded > discardBytes) controller.abort(new Cut("a discarded body was too long"))
    } else if (this.destination) {
      if (!this.destination.write(chunk)) controller.pause()
    } else this.kept.push(chunk)
  }

  onResponseEnd(): void {
    this.ended = true
    this.destination?.end()
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.failure = error
    if (this.head === undefined) this.reject(error)
    else this.destination?.destroy()
  }

  private into(d: Writable): void {
    if (this.destination || this.discarding) return
    this.destination = d
    const c = this.controller
    d.on("drain", () => c?.resume())
    d.once("close", () => {
      if (!this.ended && !this.failure) c?.abort(new Cut("the destination closed before the answer ended"))
    })
    if (this.failure) {
      d.destroy()
      return
    }
    for (const chunk of this.kept) d.write(chunk)
    this.kept = []
    if (this.ended) d.end()
    else c?.resume()
  }

  private discard(): void {
    if (this.destination || this.discarding) return
    this.discarding = true
    this.kept = []
    if (!this.ended && !this.failure) this.controller?.resume()
  }
}

/** Sends one request (no body: the hot path's requests have none) and resolves with its answer held at the head,
 *  or rejects as `sendTo` does (refused, reset, timed out before the head). */
export const hold = (
  dispatcher: Dispatcher,
  request: {
    readonly origin: string
    readonly path: string
    readonly method: string
    readonly headers: HeaderMap
    readonly timeoutMs: number
    /** Called when the head has arrived (as the promise settles): the exchange's latency. Must not throw. */
    readonly onHead?: (() => void) | undefined
  }
): Promise<Held> =>
  new Promise<Held>((resolve, reject) => {
    const onHead = request.onHead
    const handler = new Handler(
      onHead
        ? (held) => {
            resolve(held)
            // Inside undici's callback: a throw would cut the socket after the head, and the promise (settled
            // now) would hide it. A metrics callback's failure must not end the exchange.
            try {
              onHead()
            } catch {
              /* ignored */
            }
          }
        : resolve,
      reject
    )
    try {
      dispatcher.dispatch(
        {
          origin: request.origin,
          path: request.path,
          method: request.method,
          headers: request.headers,
          body: null,
          headersTimeout: request.timeoutMs,
          bodyTimeout: request.timeoutMs
        },
        handler
      )
    } catch (e) {
      reject(e)
    }
  })
