/** The engine's traces: one span per renewal (`tessera.renew`) and one per token-endpoint exchange
 *  (`tessera.upstream`), with the attributes an operator filters on. Whatever tracer the running Effect context
 *  holds records them: Effect's native one by default (nothing leaves the process), the OTLP exporter when the
 *  server has an endpoint (server/src/telemetry.ts).
 *
 *  Attributes are names and codes only, never an input's value or a token: `tessera.connection`,
 *  `tessera.provider`, `tessera.outcome` (reused, acquired, refreshed, served_stale or failed for a renewal; ok or
 *  the error's code for an exchange), `tessera.duration_ms`, `tessera.error` (the error's stable `_tag`), and for
 *  an exchange `tessera.flow` and `tessera.attempts`. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

export const spanNames = { renewal: "tessera.renew", exchange: "tessera.upstream" } as const

export const attributes = {
  connection: "tessera.connection",
  provider: "tessera.provider",
  outcome: "tessera.outcome",
  durationMs: "tessera.duration_ms",
  error: "tessera.error",
  flow: "tessera.flow",
  attempts: "tessera.attempts"
} as const

/** Runs `self` in a span named `name`, annotated on exit with its outcome, its duration and, on failure, the
 *  error's code. */
const traced =
  <Shape>(name: string, fixed: Readonly<Record<string, string>>, onSuccess: (a: Shape) => Record<string, unknown>) =>
  <A extends Shape, E extends { readonly _tag: string }, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(Clock.currentTimeMillis, (started) =>
      self.pipe(
        Effect.onExit((exit) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => {
            const duration = { [attributes.durationMs]: now - started }
            if (exit._tag === "Success") return Effect.annotateCurrentSpan({ ...duration, ...onSuccess(exit.value) })
            const failure = exit.cause.reasons.find((r) => r._tag === "Fail")
            const code = failure?._tag === "Fail" ? failure.error._tag : "defect"
            return Effect.annotateCurrentSpan({ ...duration, [attributes.outcome]: "failed", [attributes.error]: code })
          })
        ),
        // No stack trace: it would always point here, and capturing it (an Error per span) cost more than the
        // rest of the engine's work on a cold acquisition.
        Effect.withSpan(name, { attributes: fixed }, { captureStackTrace: false })
      )
    )

/** The span of one renewal of `connection` (single-flight leader only: its waiters share it). */
export const renewalSpan = (connection: string, provider: string) =>
  traced<{ readonly decision: { readonly action: string } }>(
    spanNames.renewal,
    { [attributes.connection]: connection, [attributes.provider]: provider },
    (r) => ({ [attributes.outcome]: r.decision.action })
  )

/** The span of one exchange with a token endpoint, retries included. */
export const exchangeSpan = (connection: string, provider: string, flow: string) =>
  traced<{ readonly attempts: number }>(
    spanNames.exchange,
    { [attributes.connection]: connection, [attributes.provider]: provider, [attributes.flow]: flow },
    (x) => ({ [attributes.outcome]: "ok", [attributes.attempts]: x.attempts })
  )
