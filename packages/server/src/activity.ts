/** What this instance has seen of each connection's renewals, for the status page: the last renewal, the last
 *  error, and whether renewals are failing now (from the first failure until one works again). Fed by the engine's
 *  events; holds names, codes, times and the engine's reason scrubbed of the connection's secrets, never a token.
 *  Bounded: past `max` connections the one least recently changed is forgotten. Kept per connection, not per name:
 *  a connection deleted and created again under its name (for another tenant, say) starts with nothing seen, its
 *  creation time (the events' `createdAt`) telling the two apart; a replacement keeps it. */
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
  /** The creation time of the connection this was seen for (undefined: a config connection). */
  readonly createdAt?: number | undefined
}

export interface Activity {
  readonly onEngineEvent: Events.Listener
  /** What was seen of the connection `connection` names now, created at `createdAt` (undefined: a config one). */
  readonly get: (connection: string, createdAt: number | undefined) => Seen | undefined
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
      const kept = seen.get(e.connection)
      const before: Seen =
        kept !== undefined && kept.createdAt === e.createdAt ? kept : { failing: false, createdAt: e.createdAt }
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
    get: (name, createdAt) => {
      const s = seen.get(name)
      return s?.createdAt === createdAt ? s : undefined
    }
  }
}
