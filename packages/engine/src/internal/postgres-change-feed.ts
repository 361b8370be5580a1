/** Changes to a PostgreSQL connection store from every instance sharing it, told to this instance's subscribers
 *  once each: a dedicated connection LISTENs on the store's channel, reconnects with capped, jittered backoff, and
 *  after every (re)connect catches up from the change log, so nothing is missed while it was away.
 *
 *  Seqs are taken when a change is written, not when it commits, so a slower transaction can commit a lower seq
 *  after a higher one was told. A catch-up therefore asks for every seq after the highest seen and for every
 *  change logged up to `catchUpWindowMs` before the latest one seen (on the first connect: the log's end when the
 *  store opened, so a subscriber may also hear of a change from just before); `seen` remembers what was told (for
 *  twice that window, by the database's clock) so that nothing is told twice. Only a write whose transaction took
 *  longer than the window between its write and its commit could be missed.
 *  @internal */
import { Client } from "pg"
import type { Change } from "../connection-store.ts"
import { isKind, makeFanout, reasonOf } from "./connection-rows.ts"

/** A change-log entry: `at` is the database's clock, in epoch ms. */
export interface Logged {
  readonly seq: number
  readonly at: number
  readonly change: Change
}

export interface FeedOptions {
  readonly url: string
  readonly channel: string
  readonly applicationName: string
  readonly scrub: (text: string) => string
  readonly connectTimeoutMs: number
  readonly reconnectMinMs: number
  readonly reconnectMaxMs: number
  readonly catchUpWindowMs: number
  /** The log's end when the store opened: the first connect catches up from here. */
  readonly initial: { readonly seq: number; readonly at: number }
  /** Entries after `seq`, and those logged within `windowMs` before `at`; in seq order. */
  readonly catchUp: (seq: number, at: number, windowMs: number) => Promise<ReadonlyArray<Logged>>
}

/** A notification's payload as the store's writes build it; anything else on the channel is not ours. */
const parsePayload = (payload: string | undefined): Logged | undefined => {
  let p: unknown
  try {
    p = JSON.parse(payload ?? "")
  } catch {
    return undefined
  }
  if (p === null || typeof p !== "object") return undefined
  const fields: Record<string, unknown> = { ...p }
  const { seq, at, name, kind, version } = fields
  if (typeof seq !== "number" || typeof at !== "number" || typeof name !== "string") return undefined
  if (!isKind(kind) || typeof version !== "number") return undefined
  return { seq, at, change: { name, kind, version } }
}

export const makeFeed = (o: FeedOptions) => {
  const fanout = makeFanout()
  let cursor = o.initial.seq
  let cursorAt = o.initial.at
  const seen = new Map<number, number>()
  let closed = false
  let started = false
  let listening: Client | undefined
  let lastError: string | undefined
  let reconnectTimer: ReturnType<typeof setTimeout> | undefined

  const deliver = (l: Logged) => {
    cursor = Math.max(cursor, l.seq)
    cursorAt = Math.max(cursorAt, l.at)
    if (seen.has(l.seq)) return
    seen.set(l.seq, l.at)
    fanout.emit(l.change)
  }

  const scheduleReconnect = (attempt: number) => {
    if (closed || reconnectTimer !== undefined) return
    const base = Math.min(o.reconnectMaxMs, o.reconnectMinMs * 2 ** Math.min(attempt, 16))
    reconnectTimer = setTimeout(
      () => {
        reconnectTimer = undefined
        void listen(attempt + 1)
      },
      base * (0.8 + Math.random() * 0.4)
    )
    reconnectTimer.unref()
  }

  /** One connection's life: connect, LISTEN, catch up; on any failure or loss, schedule the next. */
  const listen = async (attempt: number) => {
    if (closed) return
    const c = new Client({
      connectionString: o.url,
      connectionTimeoutMillis: o.connectTimeoutMs,
      application_name: o.applicationName,
      keepAlive: true
    })
    let dropped = false
    let backoff = attempt
    const drop = (e?: unknown) => {
      if (e !== undefined) lastError = o.scrub(reasonOf(e))
      if (dropped) return
      dropped = true
      if (listening === c) listening = undefined
      c.end().catch(() => undefined)
      scheduleReconnect(backoff)
    }
    c.on("error", drop)
    c.on("end", () => drop())
    c.on("notification", (m) => {
      const l = m.channel === o.channel ? parsePayload(m.payload) : undefined
      if (l) deliver(l)
    })
    try {
      await c.connect()
      await c.query(`LISTEN "${o.channel.replace(/"/g, '""')}"`)
      if (closed) return void c.end().catch(() => undefined)
      listening = c
      for (const l of await o.catchUp(cursor, cursorAt, o.catchUpWindowMs)) deliver(l)
      lastError = undefined
      backoff = 0
    } catch (e) {
      drop(e)
    }
  }

  return {
    subscribe: (listener: (change: Change) => void) => {
      if (closed) return () => undefined
      const unsubscribe = fanout.add(listener)
      if (!started) {
        started = true
        void listen(0)
      }
      return unsubscribe
    },
    /** A write by this instance: told at once, unless its notification came first (then that told it). */
    afterWrite: (l: Logged) => {
      if (started) {
        if (seen.has(l.seq)) return
        seen.set(l.seq, l.at)
      }
      fanout.emit(l.change)
    },
    /** Drops what no catch-up can return again. */
    forgetOld: () => {
      const before = cursorAt - 2 * o.catchUpWindowMs
      for (const [seq, at] of seen) if (at < before) seen.delete(seq)
    },
    /** Empty while listening (or not started); else why not. */
    trouble: () =>
      started && !listening ? `change listener reconnecting${lastError ? ` (${lastError})` : ""}` : undefined,
    close: async () => {
      closed = true
      if (reconnectTimer !== undefined) clearTimeout(reconnectTimer)
      const c = listening
      listening = undefined
      await c?.end().catch(() => undefined)
    }
  }
}
