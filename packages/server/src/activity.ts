/** What this instance has seen of each connection's renewals, for the status page: the last renewal, the last
 *  error, and whether renewals are failing now (from the first failure until one works again). Fed by the engine's
 *  events; holds names, codes, times and the engine's reason scrubbed of the connection's secrets, never a token.
 *  Bounded: past `max` connections the one least recently changed is forgotten. */
import type { Events } from "@tessera/engine"

export interface Renewal {
  /** Epoch ms. */
  readonly at: number
  readonly action: "acquired" | "refreshed"
  readonly durationMs?: number | undefined
}

export interface Failure {
  readonly at: number
  /** The engine's error code (`_tag`). */
  readonly code: string
  readonly reason: string
}

export interface Seen {
  readonly lastRenewal?: Renewal | undefined
  readonly lastError?: Failure | undefined
  readonly failing: boolean
}

export interface Activity {
  readonly onEngineEvent: Events.Listener
  readonly get: (connection: string) => Seen | undefined
}

/** `scrub` masks a connection's secrets in a reason (the server's registry knows them). */
export const make = (scrub: (connection: string, text: string) => string, max = 10_000): Activity => {
  const seen = new Map<string, Seen>()
  const set = (name: string, s: Seen) => {
    seen.delete(name) // re-inserted last: Map order is least recently changed first
    seen.set(name, s)
    if (seen.size > max) seen.delete(seen.keys().next().value!)
  }
  return {
    onEngineEvent: (e) => {
      // A cache hit (every hot-path request) changes nothing here.
      if (e.type === "reused") return
      const before = seen.get(e.connection) ?? { failing: false }
      switch (e.type) {
        case "acquired":
        case "refreshed":
          set(e.connection, {
            ...before,
            failing: false,
            lastRenewal: { at: e.at, action: e.type, durationMs: e.durationMs }
          })
          break
        case "recovered":
          set(e.connection, { ...before, failing: false })
          break
        case "failed":
          set(e.connection, {
            ...before,
            failing: true,
            lastError: { at: e.at, code: e.error ?? "unknown", reason: scrub(e.connection, e.reason) }
          })
          break
        default:
          break
      }
    },
    get: (name) => seen.get(name)
  }
}
