/** Lifecycle webhooks: the engine's events become signed POSTs to the config's `notify:` receivers, delivered at
 *  least once through the connection store's outbox.
 *
 *  - An event (engine notify.ts says which) is written to the outbox at once, one message per receiver that wants
 *    it; with SQLite or PostgreSQL it survives a restart from then on. A loop claims due messages under a lease
 *    (so with several instances one of them delivers each), POSTs each signed as Standard Webhooks says
 *    (webhook-signature.ts), and removes it on a 2xx. Anything else is an attempt that failed: it is counted and
 *    tried again after the retry Schedule's next delay (or a longer Retry-After); a 410 Gone, or the schedule's
 *    end, gives up and keeps the message as dead for inspection. Messages older than a week are pruned.
 *  - Requests: 15 s time limit, redirects not followed, no body read. The receiver's URL may hold its token, so
 *    logs name it by its origin only and the outbox by a digest.
 *  - A webhook carries names, tags, codes and the engine's reason, scrubbed of the connection's secrets: never a
 *    token or a secret. */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schedule from "effect/Schedule"
import { randomUUID } from "node:crypto"
import { hostname } from "node:os"
import {
  Notify,
  Redaction,
  RetryDelay,
  Upstream,
  WebhookSignature,
  type Config,
  type Connection,
  type ConnectionStore,
  type Events
} from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import type * as Metrics from "./metrics.ts"

export interface Options {
  /** The running config's receivers (they change on reload). */
  readonly endpoints: () => ReadonlyArray<Config.NotifySetting>
  readonly outbox: ConnectionStore.OutboxShape
  /** The connection as the current engine resolved it, for its tags and secrets. */
  readonly connection: (name: string) => Connection.Connection | undefined
  readonly log: AccessLog.LogSink
  readonly metrics: Metrics.Metrics
  /** What the loop runs with (telemetry.ts). */
  readonly context: Context.Context<never>
  readonly tuning?: Tuning | undefined
}

/** For embedding and tests: the retry Schedule (default `Notify.retryPolicy`), the request time limit, how often
 *  the outbox is looked at when nothing woke the loop. */
export interface Tuning {
  readonly retry?: Schedule.Schedule<unknown> | undefined
  readonly timeoutMs?: number | undefined
  readonly pollMs?: number | undefined
}

export interface Webhooks {
  readonly onEngineEvent: Events.Listener
  /** Stops the loop after the writes already started; claimed messages are freed when their lease ends. */
  readonly close: () => Promise<void>
}

const userAgent = "tessera-webhooks/1"
const batch = 4
const pruneAfterMs = 7 * 24 * 3_600_000

type Outcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: string; readonly gone: boolean; readonly retryAfterMs?: number | undefined }

/** Retry-After in seconds or as a date, at most a day. */
const retryAfterMs = (value: string | null, now: number): number | undefined => {
  if (value === null) return undefined
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - now
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, 86_400_000) : undefined
}

/** Why a request failed, in words that hold no part of the URL but its origin. */
const failureText = (e: unknown, ep: Config.NotifySetting): string => {
  const cause = e instanceof Error && e.cause instanceof Error ? e.cause : e
  const code = typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined
  const text = code ?? (cause instanceof Error ? cause.message : String(cause))
  return text.split(Redacted.value(ep.url)).join(ep.origin)
}

const post = (ep: Config.NotifySetting, m: ConnectionStore.OutboxMessage, now: number, timeoutMs: number) =>
  Effect.promise(async (signal): Promise<Outcome> => {
    const key = WebhookSignature.parseSecret(Redacted.value(ep.secret))
    if (!Buffer.isBuffer(key)) return { ok: false, error: key.problem, gone: true }
    try {
      const res = await fetch(Redacted.value(ep.url), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": userAgent,
          ...WebhookSignature.headers(key, m.id, Math.floor(now / 1000), m.body)
        },
        body: m.body,
        redirect: "manual",
        signal: AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)])
      })
      await res.body?.cancel().catch(() => undefined)
      if (res.status >= 200 && res.status < 300) return { ok: true }
      return {
        ok: false,
        error: `HTTP ${res.status}`,
        gone: res.status === 410,
        retryAfterMs: retryAfterMs(res.headers.get("retry-after"), now)
      }
    } catch (e) {
      return { ok: false, error: failureText(e, ep), gone: false }
    }
  })

export const start = (options: Options): Webhooks => {
  const { outbox, log, metrics } = options
  const retry = options.tuning?.retry ?? Notify.retryPolicy
  const timeoutMs = options.tuning?.timeoutMs ?? 15_000
  const pollMs = options.tuning?.pollMs ?? 1_000
  const leaseMs = timeoutMs * 2 + 1_000
  const owner = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`
  const run = Effect.runForkWith(options.context)
  const wake = Latch.makeUnsafe(false)
  const tracker = Notify.makeTracker()
  const writes = new Set<Fiber.Fiber<void>>()

  const settle = (m: ConnectionStore.OutboxMessage, ep: Config.NotifySetting, outcome: Outcome, now: number) =>
    Effect.gen(function* () {
      if (outcome.ok) {
        yield* outbox.complete(m.id, owner)
        metrics.webhookDeliveries.inc({ outcome: "delivered" })
        return
      }
      const attempts = m.attempts + 1
      const delay = outcome.gone ? Option.none() : yield* RetryDelay.after(retry, attempts, now)
      const fields = { id: m.id, receiver: ep.origin, attempt: attempts, error: outcome.error }
      if (Option.isNone(delay)) {
        yield* outbox.retry(m.id, owner, { nextAttemptAt: now, error: outcome.error, dead: true })
        metrics.webhookDeliveries.inc({ outcome: "dead" })
        AccessLog.error(log, {
          code: "WebhookGivenUp",
          message: `webhook ${m.id} to ${ep.origin} given up after ${attempts} attempts: ${outcome.error}`
        })
        return
      }
      const waitMs = Math.max(Duration.toMillis(delay.value), outcome.retryAfterMs ?? 0)
      yield* outbox.retry(m.id, owner, { nextAttemptAt: now + waitMs, error: outcome.error })
      metrics.webhookDeliveries.inc({ outcome: "retry" })
      AccessLog.info(log, "webhook attempt failed; will retry", { ...fields, retry_in_ms: Math.round(waitMs) })
    })

  const deliver = (m: ConnectionStore.OutboxMessage, endpoints: ReadonlyArray<Config.NotifySetting>) =>
    Effect.gen(function* () {
      const ep = endpoints.find((e) => e.endpoint === m.endpoint)
      if (!ep) return // the receiver left the config since the claim: the lease frees the message
      const now = yield* Clock.currentTimeMillis
      yield* settle(m, ep, yield* post(ep, m, now, timeoutMs), now)
    })

  let lastPrune = 0
  const round = Effect.gen(function* () {
    const endpoints = options.endpoints()
    const now = yield* Clock.currentTimeMillis
    if (now - lastPrune > 3_600_000) {
      lastPrune = now
      yield* outbox.prune(now - pruneAfterMs)
    }
    if (endpoints.length === 0) return 0
    const due = yield* outbox.claim({ owner, endpoints: endpoints.map((e) => e.endpoint), limit: batch, leaseMs })
    yield* Effect.forEach(due, (m) => deliver(m, endpoints), { concurrency: batch, discard: true })
    return due.length
  }).pipe(
    Effect.catch((e) =>
      Effect.sync(() => {
        AccessLog.error(log, { code: "WebhookOutbox", message: `webhook outbox: ${e.message}; trying again` })
        return 0
      })
    )
  )

  const loop = Effect.gen(function* () {
    for (;;) {
      // A full batch: more may be due at once.
      if ((yield* round) === batch) continue
      yield* Effect.raceFirst(Effect.sleep(pollMs), wake.await)
      wake.closeUnsafe()
    }
  })
  const fiber = run(loop)

  const onEngineEvent: Events.Listener = (e) => {
    const type = tracker(e)
    if (type === undefined) return
    const targets = options.endpoints().filter((ep) => ep.events.includes(type))
    if (targets.length === 0) return
    // The connection the name holds now, only if it is the one the event is about: a renewal still running when its
    // connection was deleted and the name created anew (for another tenant, say) is told with its own tags.
    const now = options.connection(e.connection)
    const c = now !== undefined && now.createdAt === e.createdAt ? now : undefined
    const reason = Redaction.scrub(e.reason, c ? Upstream.secretsOf(c) : [])
    const messages = targets.map((ep) => {
      const n = Notify.notice(type, e, e.tags ?? c?.tags ?? {}, reason)
      return { id: n.id, endpoint: ep.endpoint, body: Notify.body(n) }
    })
    const write = run(
      outbox.add(messages).pipe(
        Effect.tap(() => Effect.sync(() => wake.openUnsafe())),
        Effect.catch((err) =>
          Effect.sync(() =>
            AccessLog.error(log, { code: "WebhookOutbox", message: `a ${type} webhook was not queued: ${err.message}` })
          )
        )
      )
    )
    writes.add(write)
    write.addObserver(() => writes.delete(write))
  }

  let closing: Promise<void> | undefined
  return {
    onEngineEvent,
    close: () =>
      (closing ??= (async () => {
        await Effect.runPromise(Fiber.joinAll([...writes]).pipe(Effect.ignore))
        await Effect.runPromise(Fiber.interrupt(fiber))
      })())
  }
}
