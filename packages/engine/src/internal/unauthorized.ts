/** The 401 rule of API calls (api.ts): what to do when the API refuses the token, so that a misconfigured API
 *  cannot make tessera hammer the identity provider.
 *
 *  RFC 6750 §3.1: a 401 `invalid_token` means the token is no good (revoked, rotated elsewhere), so a new one may
 *  well work: the token is invalidated and the call retried once when its body can be sent again. But:
 *  - a token is invalidated at most once: a 401 for a token already replaced just retries with the current one
 *    (engine.invalidateIfCurrent also leaves a token alone that another caller or process has replaced);
 *  - when the new token is refused as well, the API is not refusing a stale token but every token: the connection
 *    cools down, and 401s within the cool-down go back to the caller without invalidating anything. The cool-down
 *    starts at 5 s and doubles with each new token refused in a row, up to a minute; an answer other than 401
 *    ends the row. Time comes from Effect's Clock.
 *
 *  So while an API refuses every token, one connection costs at most one token request per cool-down: 2 for the
 *  first burst of calls (the token they had and its replacement), then one more when each cool-down has run out.
 *
 *  State is per engine (one per config generation) and per connection, in this process. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Connection } from "../connection.ts"
import type { EngineShape } from "../engine.ts"
import type { TokenError } from "../token-error.ts"

export const coolDown = { initialMs: 5_000, maxMs: 60_000 } as const

/** The cool-down after `refusals` new tokens in a row were refused: 5 s, 10 s, 20 s, 40 s, then 60 s. */
export const coolDownMs = (refusals: number): number =>
  Math.min(coolDown.maxMs, coolDown.initialMs * 2 ** Math.max(0, refusals - 1))

interface State {
  /** The token this process last invalidated after a 401. */
  invalidated: Redacted.Redacted<string> | undefined
  /** Set by that invalidation: the token now current is its replacement, not yet accepted by the API. */
  replaced: boolean
  /** Replacement tokens refused in a row. */
  refusals: number
  /** Epoch ms (Clock) until which 401s invalidate nothing. */
  coolUntil: number
}

const states = new WeakMap<EngineShape, Map<string, State>>()

const stateOf = (engine: EngineShape, name: string): State => {
  let byName = states.get(engine)
  if (!byName) {
    byName = new Map()
    states.set(engine, byName)
  }
  let s = byName.get(name)
  if (!s) {
    s = { invalidated: undefined, replaced: false, refusals: 0, coolUntil: 0 }
    byName.set(name, s)
  }
  return s
}

const same = (a: Redacted.Redacted<string> | undefined, b: Redacted.Redacted<string>) =>
  a !== undefined && Redacted.value(a) === Redacted.value(b)

type Step = "cooling" | "replaced_already" | "cool_down" | "invalidate"

/** The rule itself, synchronous so that concurrent 401s see each other's decisions: checked and recorded with no
 *  yield between. */
const decide = (s: State, now: number, token: Redacted.Redacted<string>): Step => {
  if (now < s.coolUntil) return "cooling"
  if (same(s.invalidated, token)) return "replaced_already"
  if (s.replaced) {
    s.refusals += 1
    s.replaced = false
    s.coolUntil = now + coolDownMs(s.refusals)
    return "cool_down"
  }
  s.invalidated = token
  s.replaced = true
  return "invalidate"
}

/** After the API answered 401 to a call made with `token`: "retry" (with the token now current) or "return" (the
 *  401 goes back to the caller). Invalidates the token when the rule says so. */
export const onUnauthorized = (
  engine: EngineShape,
  c: Connection,
  token: Redacted.Redacted<string>
): Effect.Effect<"retry" | "return", TokenError> =>
  Effect.gen(function* () {
    const s = stateOf(engine, c.name)
    const step = decide(s, yield* Clock.currentTimeMillis, token)
    const where = { connection: c.name, provider: c.manifest.id }
    switch (step) {
      case "cooling":
        return "return"
      case "replaced_already":
        return "retry"
      case "cool_down":
        yield* Effect.logWarning(
          `the API refused a new token too: 401s invalidate no token for ${coolDownMs(s.refusals) / 1000} s (check the connection's API settings)`
        ).pipe(Effect.annotateLogs(where))
        return "return"
      case "invalidate":
        yield* Effect.logInfo("the API answered 401: invalidating the token and retrying once").pipe(
          Effect.annotateLogs(where)
        )
        yield* engine.invalidateIfCurrent(c.name, token)
        return "retry"
    }
  })

/** After the API answered anything but 401: its tokens work, so the row of refusals ends. */
export const onAccepted = (engine: EngineShape, c: Connection): void => {
  const s = states.get(engine)?.get(c.name)
  if (s) {
    s.replaced = false
    s.refusals = 0
  }
}

interface Attempted {
  readonly status: number
  readonly token: Redacted.Redacted<string>
}

/** How `retryOnce` may run the attempt again: only a replayable body is sent twice; `discard` drops the first
 *  answer; `onRetry` counts the retry. */
export interface RetryOptions<A> {
  readonly replayable: boolean
  readonly discard?: ((a: A) => Effect.Effect<void>) | undefined
  readonly onRetry?: (() => void) | undefined
}

/** Runs `attempt`; after a 401, applies the rule and runs it once more when the rule says retry and the body
 *  can be sent again (`discard` drops the first answer). Never more than two attempts. */
export const retryOnce = <A extends Attempted, E>(
  engine: EngineShape,
  c: Connection,
  attempt: Effect.Effect<A, E>,
  options: RetryOptions<A>
): Effect.Effect<A, E | TokenError> =>
  Effect.gen(function* () {
    const first = yield* attempt
    if (first.status !== 401) {
      onAccepted(engine, c)
      return first
    }
    const decision = yield* onUnauthorized(engine, c, first.token)
    if (decision === "return" || !options.replayable) return first
    if (options.discard) yield* options.discard(first)
    options.onRetry?.()
    const second = yield* attempt
    if (second.status === 401) yield* onUnauthorized(engine, c, second.token)
    else onAccepted(engine, c)
    return second
  })
