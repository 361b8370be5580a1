/** Injectable faults and the per-provider queues that hand them to the next matching requests. */
import type { ProviderId } from "./types.ts"

export type Fault =
  | { type: "status"; status: number; body?: string; headers?: Record<string, string> }
  | { type: "rateLimit"; retryAfterSeconds: number }
  | { type: "delay"; ms: number }
  | { type: "slowBody"; ms: number }
  | { type: "reset" }
  | { type: "resetMidBody" }
  | { type: "html200" }
  | { type: "empty" }
  | { type: "invalidJson" }
  | { type: "wrongContentType" }
  | { type: "huge"; bytes: number }
  | { type: "envelopeError" }
  | { type: "expiresIn"; value: unknown }
  /** An error (status, default 400) whose message field quotes the whole request received: request line, raw
   *  body and every header (Authorization included), as a careless provider's debug output does. */
  | { type: "echo"; status?: number }

export type RequestKind = "token" | "api"

interface Pending {
  fault: Fault
  remaining: number
}

export class FaultQueues {
  readonly #queues = new Map<string, Pending[]>()

  /** Queues the fault for the next `times` requests of that kind (a positive integer, or Infinity for all). */
  add(provider: ProviderId, kind: RequestKind, fault: Fault, times = 1): void {
    if (!(times === Number.POSITIVE_INFINITY || (Number.isInteger(times) && times >= 1))) {
      throw new RangeError(`times must be a positive integer or Infinity, got ${String(times)}`)
    }
    const key = `${provider} ${kind}`
    const queue = this.#queues.get(key) ?? []
    queue.push({ fault, remaining: times })
    this.#queues.set(key, queue)
  }

  /** The fault for this request, if any, counting it against its `times`. */
  take(provider: ProviderId, kind: RequestKind): Fault | undefined {
    const queue = this.#queues.get(`${provider} ${kind}`)
    const head = queue?.[0]
    if (queue === undefined || head === undefined) return undefined
    head.remaining -= 1
    if (head.remaining <= 0) queue.shift()
    return head.fault
  }

  clear(): void {
    this.#queues.clear()
  }
}
