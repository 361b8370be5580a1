/** Lifecycle events of credentials, for subscribers (metrics, audit logs, tests). Never carries a secret. */

export type EventType =
  | "acquired"
  | "reused"
  | "refreshed"
  | "rotated"
  | "failed"
  | "recovered"
  | "served_stale"
  | "invalidated"
  | "refresh_rejected"
  /** A user-granted connection's refresh token was refused: only the user can restore it by authorizing again. */
  | "needs_reauth"

export interface TokenEvent {
  readonly type: EventType
  readonly connection: string
  readonly provider: string
  /** Epoch ms. */
  readonly at: number
  /** Upstream round trip, for acquired/refreshed/failed. */
  readonly durationMs?: number | undefined
  /** Why this happened, in words. */
  readonly reason: string
  /** The error's stable code (`_tag`) for failures. */
  readonly error?: string | undefined
  /** When the stored connection was created (epoch ms; undefined for a config one): tells it from an earlier
   *  connection under the same name, deleted since (possibly another tenant's). Not on `reused`. */
  readonly createdAt?: number | undefined
  /** The connection's tags when this happened (its name may belong to another connection by the time a listener
   *  reads it). Not on `reused`. */
  readonly tags?: Readonly<Record<string, string>> | undefined
}

export type Listener = (event: TokenEvent) => void

export interface Emitter {
  /** Whether anyone listens: lets hot paths skip building an event nobody reads. */
  readonly active: () => boolean
  readonly emit: (event: TokenEvent) => void
  readonly subscribe: (listener: Listener) => () => void
}

export const makeEmitter = (): Emitter => {
  const listeners = new Set<Listener>()
  return {
    active: () => listeners.size > 0,
    emit: (event) => {
      for (const l of listeners) {
        try {
          l(event)
        } catch {
          /* a subscriber's bug must not break token delivery */
        }
      }
    },
    subscribe: (listener) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    }
  }
}
