/** The delays of a retry Schedule for retries counted outside Effect's `retry`: a webhook's attempts live in the
 *  outbox (they survive a restart), a background renewal's failures in the refresher's loop. The policy stays an
 *  ordinary Schedule, composed with Effect's combinators; `after` reads the delay it gives after n attempts. */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Pull from "effect/Pull"
import * as Schedule from "effect/Schedule"

/** The delay before the next attempt once `attempts` have failed, or none when `policy` gives up. */
export const after = (
  policy: Schedule.Schedule<unknown>,
  attempts: number,
  now: number
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(policy)
    let delay = Option.none<Duration.Duration>()
    for (let i = 0; i < attempts; i++) {
      delay = yield* step(now, undefined).pipe(
        Effect.map(([, d]) => Option.some(d)),
        Pull.catchDone(() => Effect.succeed(Option.none<Duration.Duration>()))
      )
      if (Option.isNone(delay)) return delay
    }
    return delay
  })
