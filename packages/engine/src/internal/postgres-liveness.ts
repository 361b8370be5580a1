/** Liveness of the processes sharing a PostgreSQL connection store (connection-store.ts `LivenessShape`). A process
 *  that registers an owner id takes a session-level advisory lock, shared, on a key derived from it, on a dedicated
 *  connection kept for the store's life: when the process dies, even by SIGKILL, its socket closes, its session ends
 *  and PostgreSQL releases the lock. Another process asks whether the owner is alive by looking for that lock in
 *  `pg_locks`, through its pool: the probe takes no lock, so no pooled connection keeps one, and no session (behind
 *  a pooler, say) can find a lock it holds itself free.
 *
 *  - The dedicated connection lost while the process lives (a PostgreSQL restart or failover, a terminated backend):
 *    its locks went with it. It reconnects at once, then every `reconnectMs`, and takes every lock again; meanwhile
 *    `register` answers false (a claim made then is not watched, and is waited on until its lease ends). A session
 *    ended with no word to this process (a NAT or load balancer dropping the idle flow, the server's keepalive
 *    ending it: a half-open connection) is found by a heartbeat (`SELECT 1` every `heartbeatMs`, answered within
 *    `pingTimeoutMs`) and by `register`, which asks the session each time instead of trusting what it took earlier.
 *  - A lock PostgreSQL refuses (a role without EXECUTE on `pg_try_advisory_lock_shared`) leaves the session as it
 *    is: the owner is not marked, and `register` answers false.
 *  - The connection holds the process only while a caller waits on it (its first locks, a registration): idle, it
 *    does not (like the pool's idle connections: a library that forgets to close).
 *  - A probe that cannot reach PostgreSQL fails: unknown is never dead. An owner is dead only when its lock was
 *    missing at two successful probes `confirmMs` or more apart with none in between finding it or failing, and
 *    none more than twice `confirmMs` after the one before (a long silence between two looks says nothing of what
 *    the owner held meanwhile: it starts over), and PostgreSQL had been up for `graceMs` at the second: an owner
 *    still taking its lock again after a restart (or after a failover, within `confirmMs`) is not taken for dead. A
 *    crash restart (a backend killed: every session ended, the server reinitialised) keeps
 *    `pg_postmaster_start_time()`, so has no grace: the owner must take its lock again within `confirmMs` of the
 *    recovery's end (it retries every `reconnectMs`).
 *  - Keys are 64 bits of a SHA-256 of the owner id, in the one-bigint advisory-lock space (the migrations' lock has
 *    two int keys: a space of its own). A collision, with another owner's key or another application's lock, can
 *    only make a dead owner look alive (its claim is then waited on until its lease ends, as without liveness),
 *    never a live one dead: the owners' locks are shared, so colliding owners both hold theirs.
 *  - A process whose machine vanishes (a power loss: no socket closed) keeps its session, so looks alive, until
 *    PostgreSQL's TCP keepalive (`tcp_keepalives_*`) ends it; its claims are waited on until their leases end.
 *  - Behind a pooler in transaction mode (PgBouncer) a session lock stays on a server connection that outlives its
 *    owner: owners look alive, and claims are waited on until their leases end.
 *  @internal */
import { createHash } from "node:crypto"
import * as Effect from "effect/Effect"
import { Client, DatabaseError, type Pool } from "pg"
import type { ConnectionStoreError, LivenessShape } from "../connection-store.ts"

export interface LivenessOptions {
  readonly url: string
  readonly pool: Pool
  readonly applicationName: string
  readonly connectTimeoutMs: number
  /** Between reconnect attempts of the dedicated connection. */
  readonly reconnectMs: number
  /** How long an owner's lock must stay missing before it is dead. */
  readonly confirmMs: number
  /** How long PostgreSQL must have been up for a missing lock to count. */
  readonly graceMs: number
  /** Between heartbeats of the dedicated connection. */
  readonly heartbeatMs: number
  /** How long a heartbeat, or a lock taken, may go unanswered before the connection is taken for lost. */
  readonly pingTimeoutMs: number
  readonly fail: (e: unknown) => ConnectionStoreError
}

export const defaults = {
  reconnectMs: 500,
  confirmMs: 1_000,
  graceMs: 5_000,
  heartbeatMs: 1_000,
  pingTimeoutMs: 2_000
} as const

/** The advisory-lock key of an owner: the bigint, and its two halves as `pg_locks` shows them. */
export const keyOf = (owner: string) => {
  const d = createHash("sha256").update(`tessera liveness ${owner}`).digest()
  return { key: d.readBigInt64BE(0).toString(), hi: d.readUInt32BE(0), lo: d.readUInt32BE(4) }
}

const PROBE = `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1
    AND classid::bigint = $1 AND objid::bigint = $2
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS held,
  (extract(epoch FROM now() - pg_postmaster_start_time()) * 1000)::float8 AS up_ms`

/** An error PostgreSQL answered a statement with, its session still up (not a lost connection, a timeout or a
 *  FATAL that ends the session). */
const answered = (e: unknown) => e instanceof DatabaseError && e.severity === "ERROR"

/** Whether a connection holds the process (pg's `ref`/`unref`, missing from its types). */
const holding = (client: Client, on: boolean) => {
  const c = client as Client & { ref?: () => void; unref?: () => void }
  if (on) c.ref?.()
  else c.unref?.()
}

interface Session {
  readonly client: Client
  /** The owners whose locks this session holds. */
  readonly held: Set<string>
  /** Ends the session and schedules its replacement (idempotent). */
  readonly drop: () => void
  /** Queries in flight that a caller waits for: while there are any, the connection holds the process. */
  holds: number
}

export const makeLiveness = (o: LivenessOptions): LivenessShape & { readonly close: () => Promise<void> } => {
  const owners = new Set<string>()
  let live: Session | undefined
  let connecting: Promise<void> | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let closed = false
  // owner -> when probes first and last found its lock missing (this process's clock), with no probe between them
  // finding it, failing, or more than twice `confirmMs` after the one before.
  const missing = new Map<string, { readonly first: number; readonly last: number }>()

  /** A query on the dedicated session, answered within `pingTimeoutMs`; else (or failed) the session is dropped.
   *  `hold`: a caller waits for it, so the process does not exit before it is answered (an idle connection does not
   *  hold the process; one a caller waits on must, or a process with nothing else to do exits in the middle). */
  const ask = async <R extends object>(s: Session, sql: string, values: ReadonlyArray<string>, hold: boolean) => {
    let timeout: ReturnType<typeof setTimeout> | undefined
    if (hold && s.holds++ === 0) holding(s.client, true)
    try {
      return await Promise.race([
        s.client.query<R>(sql, [...values]),
        new Promise<never>((_, reject) => {
          // After the poll phase (setImmediate): an answer that arrived while the event loop was busy past the
          // deadline is read first, and wins; only a session that did not answer is taken for lost.
          timeout = setTimeout(() => setImmediate(() => reject(new Error("liveness: no answer"))), o.pingTimeoutMs)
          timeout.unref()
        })
      ])
    } catch (e) {
      if (!answered(e)) s.drop()
      throw e
    } finally {
      clearTimeout(timeout)
      if (hold && --s.holds === 0) holding(s.client, false)
    }
  }

  const lock = async (s: Session, owner: string, hold: boolean) => {
    try {
      const r = await ask<{ ok: boolean }>(
        s,
        "SELECT pg_try_advisory_lock_shared($1::bigint) AS ok",
        [keyOf(owner).key],
        hold
      )
      if (r.rows[0]?.ok === true) s.held.add(owner)
    } catch (e) {
      // Refused by PostgreSQL (a role without EXECUTE on the lock function, say): the session is fine and the
      // owner not marked (its claims are waited on until their leases end); reconnecting would change nothing.
      if (!answered(e)) throw e
    }
  }

  const schedule = (ms: number) => {
    if (closed || timer !== undefined) return
    timer = setTimeout(() => {
      timer = undefined
      void connect()
    }, ms)
    timer.unref()
  }

  const connect = (): Promise<void> =>
    (connecting ??= (async () => {
      const client = new Client({
        connectionString: o.url,
        connectionTimeoutMillis: o.connectTimeoutMs,
        application_name: o.applicationName,
        keepAlive: true
      })
      let up = false
      let dropped = false
      let heartbeat: ReturnType<typeof setInterval> | undefined
      const drop = () => {
        if (dropped) return
        dropped = true
        clearInterval(heartbeat)
        if (live === s) live = undefined
        client.end().catch(() => undefined)
        // A session that was up is taken again at once: its locks are gone while this process lives.
        schedule(up ? 0 : o.reconnectMs)
      }
      const s: Session = { client, held: new Set(), drop, holds: 0 }
      client.on("error", drop)
      client.on("end", drop)
      try {
        await client.connect()
        // An idle session must not be ended by the server (PostgreSQL 14+; older ones have no such setting).
        await client.query("SET idle_session_timeout = 0").catch(() => undefined)
        for (const owner of owners) await lock(s, owner, false)
        // Like the pool's idle connections, this one does not hold the process once its locks are taken (a library
        // that forgets to close); until then it does (a first registration waits for them).
        holding(client, false)
        if (closed || dropped) return void client.end().catch(() => undefined)
        up = true
        live = s
        let beating = false
        heartbeat = setInterval(() => {
          if (beating) return
          beating = true
          ask(s, "SELECT 1", [], false)
            .catch(() => undefined)
            .finally(() => {
              beating = false
            })
        }, o.heartbeatMs)
        heartbeat.unref()
      } catch {
        drop()
      }
    })().finally(() => {
      connecting = undefined
    }))

  return {
    register: (owner) =>
      Effect.promise(async () => {
        if (closed) return false
        owners.add(owner)
        try {
          // The first registration waits for the connection; later ones never wait for a reconnect.
          if (live === undefined && timer === undefined) await connect()
          const s = live
          if (s === undefined) return false
          // Asked each time: a session that ended with no word to this process still says it holds its locks.
          if (s.held.has(owner)) await ask(s, "SELECT 1", [], true)
          else await lock(s, owner, true)
          return live === s && s.held.has(owner)
        } catch {
          return false
        }
      }),
    dead: (owner) =>
      Effect.tryPromise({
        try: async () => {
          const { hi, lo } = keyOf(owner)
          const r = (await o.pool.query<{ held: boolean; up_ms: number }>(PROBE, [hi, lo])).rows[0]
          const now = Date.now()
          for (const [k, m] of missing) if (now - m.last > 2 * o.confirmMs) missing.delete(k)
          if (r === undefined || r.held || r.up_ms < o.graceMs) {
            missing.delete(owner)
            return false
          }
          const first = missing.get(owner)?.first ?? now
          missing.set(owner, { first, last: now })
          return now - first >= o.confirmMs
        },
        catch: (e) => {
          missing.delete(owner)
          return o.fail(e)
        }
      }),
    close: async () => {
      closed = true
      if (timer !== undefined) clearTimeout(timer)
      await connecting?.catch(() => undefined)
      await live?.client.end().catch(() => undefined)
      live = undefined
    }
  }
}
