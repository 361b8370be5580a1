/** Lifecycle notifications: which of the engine's events a webhook receiver hears of, what the webhook says, and
 *  how often a failed delivery is tried again. The server's dispatcher (server/src/webhooks.ts) delivers them
 *  through the connection store's outbox, signed as webhook-signature.ts says.
 *
 *  - Events: `refresh_failed` (the engine's `failed`, once per connection until it works again: a provider that
 *    is down causes one webhook, not one per caller), `recovered`, `rotated` and `needs_reauth` (the engine's
 *    events of those names). `refresh_rejected` is not sent: the engine falls back to a full acquire, and tells
 *    `failed` if that fails too.
 *  - Body: `{type: "connection.<event>", timestamp, data: {connection, provider, tags, reason, error}}`. Names,
 *    tags, codes and the engine's reason only: the caller scrubs the reason of the connection's secrets first.
 *  - Retries: `retryPolicy`, a Schedule: 10 s doubling up to 4 h, jittered, 16 attempts in all (about 22 hours);
 *    retry-delay.ts reads its delays, since the outbox, not a fiber, counts the attempts. */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { createHash, randomUUID } from "node:crypto"
import type { TokenEvent } from "./events.ts"

export const eventTypes = ["refresh_failed", "needs_reauth", "recovered", "rotated"] as const

export type EventType = (typeof eventTypes)[number]

export interface Notice {
  /** The `webhook-id` (`msg_<uuid>`): the same on every attempt. */
  readonly id: string
  readonly type: EventType
  readonly connection: string
  readonly provider: string
  readonly tags: Readonly<Record<string, string>>
  /** Epoch ms of the engine event. */
  readonly at: number
  readonly reason: string
  readonly error?: string | undefined
}

/** Follows engine events and says which ones are notices. Failures are told once per connection until it recovers
 *  (or renews again), so an outage is one `refresh_failed`, however many callers hit it. Per connection, not per
 *  name: one deleted and created again under its name (`createdAt` tells them apart) has its own first failure. */
export const makeTracker = () => {
  const failing = new Set<string>()
  const idOf = (e: TokenEvent) => (e.createdAt === undefined ? e.connection : `${e.connection}\0${e.createdAt}`)
  return (e: TokenEvent): EventType | undefined => {
    switch (e.type) {
      case "failed":
        if (failing.has(idOf(e))) return undefined
        failing.add(idOf(e))
        return "refresh_failed"
      case "recovered":
        failing.delete(idOf(e))
        return "recovered"
      case "acquired":
      case "refreshed":
        failing.delete(idOf(e))
        return undefined
      case "rotated":
        return "rotated"
      case "needs_reauth":
        return "needs_reauth"
      default:
        return undefined
    }
  }
}

export const notice = (
  type: EventType,
  e: TokenEvent,
  tags: Readonly<Record<string, string>>,
  reason: string
): Notice => ({
  id: `msg_${randomUUID().replace(/-/g, "")}`,
  type,
  connection: e.connection,
  provider: e.provider,
  tags,
  at: e.at,
  reason,
  ...(e.error === undefined || type !== "refresh_failed" ? {} : { error: e.error })
})

/** The JSON body, exactly as it is signed and sent. */
export const body = (n: Notice): string =>
  JSON.stringify({
    type: `connection.${n.type}`,
    timestamp: new Date(n.at).toISOString(),
    data: {
      connection: n.connection,
      provider: n.provider,
      tags: n.tags,
      reason: n.reason,
      ...(n.error === undefined ? {} : { error: n.error })
    }
  })

/** How the outbox names an endpoint: a digest of its URL, which may hold the receiver's token and so is never
 *  stored. */
export const endpointId = (url: string): string =>
  createHash("sha256").update("tessera/notify/endpoint\u0000").update(url).digest("hex").slice(0, 32)

/** The delay before each retry of a failed delivery; it stops after 16 attempts. */
export const retryPolicy: Schedule.Schedule<unknown> = Schedule.max([
  Schedule.exponential("10 seconds", 2).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.hours(4)))),
    Schedule.jittered
  ),
  Schedule.recurs(15)
])
