/** The durable connection store: connections created at runtime (one per customer, through the server's
 *  connections API, the CLI or the library), beside the ones a config file names. The token cache (`store:`)
 *  stays what it is; this store holds what a connection IS (provider, inputs, tags) and, for user-granted
 *  credentials, the grant (the refresh token that is the only way back to a user's consent).
 *
 *  - Secret inputs (the manifest marks them `secret: true`) are sealed (secret-box.ts) each on its own, bound by
 *    associated data to the connection and input name, so no plaintext secret is in any column, index or key name.
 *    Non-secret inputs and tags are stored in clear: tags are what keys are scoped by and lists filter on.
 *  - `version` grows with every write of a connection; token cache keys include it, so a replaced connection never
 *    reuses a token obtained with its old inputs.
 *  - `subscribe` reports changes made by ANY process sharing the store (PostgreSQL: LISTEN/NOTIFY with a change log
 *    to catch up after a reconnect; SQLite: polling the change log), so every instance forgets a replaced or
 *    deleted connection's cached state within a second.
 *  - `outbox` holds webhook messages until they are delivered (the server's notify dispatcher), claimed with a
 *    lease so that with several instances one delivers each.
 *  - `liveness` (PostgreSQL only) tells whether another process sharing the store is alive, so that a grant rotation
 *    claimed by a killed process is taken over within about a second (grants.ts, renewal.ts).
 *  - Implementations: `layerMemory` here (tests, libraries); SQLite (connection-store-sqlite.ts, Node's built-in
 *    node:sqlite, the embedded default); PostgreSQL (`@tessera/engine/postgres`, for several instances). */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

/** A connection as stored; secret inputs come back decrypted and wrapped in Redacted. */
export interface ConnectionRecord {
  readonly name: string
  readonly provider: string
  readonly inputs: ReadonlyMap<string, string | Redacted.Redacted<string>>
  readonly tags: Readonly<Record<string, string>>
  readonly allowInsecureHttp: boolean
  /** Epoch ms. */
  readonly createdAt: number
  readonly updatedAt: number
  /** 1 when created, +1 on every replacement. */
  readonly version: number
}

export interface InputValue {
  readonly name: string
  readonly value: string
  /** Sealed at rest when true. */
  readonly secret: boolean
}

export interface PutInput {
  readonly name: string
  readonly provider: string
  readonly inputs: ReadonlyArray<InputValue>
  readonly tags: Readonly<Record<string, string>>
  readonly allowInsecureHttp?: boolean | undefined
}

export interface ListQuery {
  /** Every given tag must match exactly. */
  readonly tags?: Readonly<Record<string, string>> | undefined
  /** Only names sorting after this one (byte order): the cursor of the previous page. */
  readonly after?: string | undefined
  /** At most this many items (1..1000). */
  readonly limit: number
}

export interface ListPage {
  /** In ascending name order (byte order, as SQL `COLLATE "C"` / BINARY). */
  readonly items: ReadonlyArray<ConnectionRecord>
  /** True when more items may follow the last one. */
  readonly more: boolean
}

export interface Change {
  readonly name: string
  readonly kind: "put" | "delete"
  /** The version written; for a delete, the version that was deleted. */
  readonly version: number
}

/** A user's grant for a connection (authorization code or device flow): durable, rotated atomically. */
export interface Grant {
  readonly refreshToken: Redacted.Redacted<string>
  readonly scope?: string | undefined
  /** "active", or "needs_reauth" after the provider rejected the refresh token. */
  readonly status: "active" | "needs_reauth"
  /** Why the status is what it is (never a secret). */
  readonly detail?: string | undefined
  /** What the refresh token was issued for (grant-binding.ts: a digest of the provider and non-secret inputs);
   *  undefined for a grant stored before bindings existed. */
  readonly binding?: string | undefined
  readonly updatedAt: number
  /** 1 when first stored, +1 on every rotation. */
  readonly version: number
}

export interface GrantInput {
  readonly refreshToken: Redacted.Redacted<string>
  readonly scope?: string | undefined
  readonly status: "active" | "needs_reauth"
  readonly detail?: string | undefined
  readonly binding?: string | undefined
}

/** A webhook message waiting for delivery to one endpoint (the server's notify dispatcher): the outbox makes a
 *  lifecycle event survive a restart in a durable store, and lets several instances share the work, each message
 *  claimed by one of them for a lease. Its body is the JSON payload, which never holds a secret, so it is stored in
 *  clear; the endpoint is named by a digest of its URL (a URL can hold a token), never the URL itself. */
export interface OutboxMessage {
  /** The `webhook-id`: the same on every attempt, for the receiver's idempotency. */
  readonly id: string
  readonly endpoint: string
  readonly body: string
  /** Epoch ms. */
  readonly createdAt: number
  /** Attempts made so far. */
  readonly attempts: number
  readonly nextAttemptAt: number
  /** Why the last attempt failed (never a secret). */
  readonly lastError?: string | undefined
}

export interface OutboxInput {
  readonly id: string
  readonly endpoint: string
  readonly body: string
}

export interface OutboxClaim {
  /** Who claims: an id unique to this process. */
  readonly owner: string
  /** Only messages for these endpoints (the ones the running config has). */
  readonly endpoints: ReadonlyArray<string>
  readonly limit: number
  /** How long the claim holds: an owner that dies frees its messages when it ends. */
  readonly leaseMs: number
}

export interface OutboxAttempt {
  /** When the message is due again (ignored when `dead`). */
  readonly nextAttemptAt: number
  readonly error: string
  /** Give up: the message is kept, for inspection, until pruned, and never claimed again. */
  readonly dead?: boolean | undefined
}

export interface OutboxShape {
  /** Adds messages; one whose id is already there is left as it is. */
  readonly add: (messages: ReadonlyArray<OutboxInput>) => Effect.Effect<void, ConnectionStoreError>
  /** Claims up to `limit` messages that are due (oldest due first) and not claimed by anyone whose lease holds. */
  readonly claim: (claim: OutboxClaim) => Effect.Effect<ReadonlyArray<OutboxMessage>, ConnectionStoreError>
  /** Delivered: removes the message, if `owner` still holds its claim (else false: another owner has it). */
  readonly complete: (id: string, owner: string) => Effect.Effect<boolean, ConnectionStoreError>
  /** A failed attempt: counts it, records why, and frees the message until `nextAttemptAt` (if `owner` holds it). */
  readonly retry: (id: string, owner: string, attempt: OutboxAttempt) => Effect.Effect<boolean, ConnectionStoreError>
  readonly stats: () => Effect.Effect<{ readonly pending: number; readonly dead: number }, ConnectionStoreError>
  /** Removes messages created before `before` (epoch ms), whatever their state; returns how many. */
  readonly prune: (before: number) => Effect.Effect<number, ConnectionStoreError>
}

/** The store failed: unreachable, a migration failed, a row could not be decrypted. Never carries a secret. */
export class ConnectionStoreError extends Schema.TaggedError<ConnectionStoreError>()("ConnectionStoreError", {
  store: Schema.String,
  operation: Schema.String,
  reason: Schema.String,
  connection: Schema.optional(Schema.String)
}) {
  override get message() {
    return `connection store (${this.store}) ${this.operation}${this.connection ? ` of "${this.connection}"` : ""} failed: ${this.reason}`
  }
}

export interface ConnectionStoreShape {
  /** "memory", "sqlite" or "postgres". */
  readonly kind: string
  /** Where it is, without credentials: "sqlite /var/lib/tessera/connections.db", "postgres db.internal:5432/app". */
  readonly describe: string
  readonly get: (name: string) => Effect.Effect<ConnectionRecord | undefined, ConnectionStoreError>
  /** Creates or replaces; a replacement keeps `createdAt` and bumps `version`. The grant stays only when the
   *  replacement keeps the connection's binding (`sameBinding`: provider, every input, allow_insecure_http), in the
   *  same write; a creation never inherits one (a grant left under the name, say by a connection once in the config
   *  file, is dropped). A refresh token belongs to the client and the endpoints it was issued for: a PUT that points
   *  the connection elsewhere must not send it there. */
  readonly put: (
    input: PutInput
  ) => Effect.Effect<{ readonly created: boolean; readonly record: ConnectionRecord }, ConnectionStoreError>
  /** True when it existed. Its grant goes with it. */
  readonly delete: (name: string) => Effect.Effect<boolean, ConnectionStoreError>
  readonly list: (query: ListQuery) => Effect.Effect<ListPage, ConnectionStoreError>
  readonly count: () => Effect.Effect<number, ConnectionStoreError>
  /** Rewrites every secret sealed under a key other than the first, without changing versions (safe while servers
   *  run: each row is compared and swapped on its own). After it, keys other than the first can be dropped.
   *  `total` counts the rows looked at (connections and grants), `rewritten` those that were sealed otherwise. */
  readonly reencrypt: () => Effect.Effect<{ readonly rewritten: number; readonly total: number }, ConnectionStoreError>
  readonly getGrant: (name: string) => Effect.Effect<Grant | undefined, ConnectionStoreError>
  /** Writes the grant if the stored one still has `expectedVersion` (undefined: none stored yet). False when
   *  another writer got there first: re-read and decide again. A rotated refresh token is written this way
   *  before the new access token is used, so it is never only in a cache. */
  readonly putGrant: (
    name: string,
    grant: GrantInput,
    expectedVersion: number | undefined
  ) => Effect.Effect<boolean, ConnectionStoreError>
  /** Changes by any process sharing the store. Returns the unsubscribe function. */
  readonly subscribe: (listener: (change: Change) => void) => () => void
  /** Webhook messages awaiting delivery. */
  readonly outbox: OutboxShape
  readonly health: () => Effect.Effect<{ readonly status: "ok" | "down"; readonly detail: string }>
  /** Whether the processes sharing the store are alive, when the store can tell (PostgreSQL); absent otherwise. */
  readonly liveness?: LivenessShape | undefined
}

/** Liveness of the processes sharing a store, by owner id (random per process, grants.ts): what lets a rotation
 *  claim whose claimer was killed be taken over at once instead of at the end of its lease. */
export interface LivenessShape {
  /** Marks `owner` alive for as long as this process keeps the store open. True when it is marked now (a claim may
   *  then name it as watched); false while the store cannot mark it (unreachable, reconnecting). Idempotent. */
  readonly register: (owner: string) => Effect.Effect<boolean>
  /** True only when the store knows that `owner`, registered by some process sharing it, is no longer alive (its
   *  mark gone twice, a second or more apart). Fails when the store cannot tell: an unknown owner is not dead. */
  readonly dead: (owner: string) => Effect.Effect<boolean, ConnectionStoreError>
}

export class ConnectionStore extends Context.Service<ConnectionStore, ConnectionStoreShape>()(
  "tessera/ConnectionStore"
) {}

/** Names are what URLs carry: 1 to 128 of [A-Za-z0-9_.-], starting with a letter or digit. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/

export const matchesTags = (tags: Readonly<Record<string, string>>, wanted: Readonly<Record<string, string>> = {}) =>
  Object.entries(wanted).every(([k, v]) => Object.hasOwn(tags, k) && tags[k] === v)

interface Held {
  message: OutboxMessage
  dead: boolean
  owner?: string | undefined
  leaseUntil: number
}

/** An outbox in this process only (a memory connection store's, or the server's when it has no connection store). */
export const makeMemoryOutbox = (): OutboxShape => {
  const rows = new Map<string, Held>()
  const owned = (id: string, owner: string) => {
    const r = rows.get(id)
    return r !== undefined && r.owner === owner ? r : undefined
  }
  return {
    add: (messages) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        for (const m of messages)
          if (!rows.has(m.id))
            rows.set(m.id, {
              message: { ...m, createdAt: now, attempts: 0, nextAttemptAt: now },
              dead: false,
              leaseUntil: 0
            })
      }),
    claim: (c) =>
      Effect.map(Clock.currentTimeMillis, (now) => {
        const due = [...rows.values()]
          .filter((r) => !r.dead && r.message.nextAttemptAt <= now && r.leaseUntil <= now)
          .filter((r) => c.endpoints.includes(r.message.endpoint))
          .sort((a, b) => a.message.nextAttemptAt - b.message.nextAttemptAt || (a.message.id < b.message.id ? -1 : 1))
          .slice(0, c.limit)
        for (const r of due) {
          r.owner = c.owner
          r.leaseUntil = now + c.leaseMs
        }
        return due.map((r) => r.message)
      }),
    complete: (id, owner) => Effect.sync(() => owned(id, owner) !== undefined && rows.delete(id)),
    retry: (id, owner, a) =>
      Effect.sync(() => {
        const r = owned(id, owner)
        if (!r) return false
        r.message = {
          ...r.message,
          attempts: r.message.attempts + 1,
          nextAttemptAt: a.nextAttemptAt,
          lastError: a.error
        }
        r.dead = a.dead ?? false
        r.owner = undefined
        r.leaseUntil = 0
        return true
      }),
    stats: () =>
      Effect.sync(() => {
        const all = [...rows.values()]
        return { pending: all.filter((r) => !r.dead).length, dead: all.filter((r) => r.dead).length }
      }),
    prune: (before) =>
      Effect.sync(() => {
        let n = 0
        for (const [id, r] of rows) if (r.message.createdAt < before && rows.delete(id)) n++
        return n
      })
  }
}

/** This process only, nothing at rest: for tests and for libraries that keep connections themselves. */
/** The record a write stored, built from what was written (no re-read). */
export const recordOf = (input: PutInput, createdAt: number, updatedAt: number, version: number): ConnectionRecord => ({
  name: input.name,
  provider: input.provider,
  inputs: new Map(
    input.inputs.map((i) => [i.name, i.secret ? Redacted.make(i.value, { label: i.name }) : i.value] as const)
  ),
  tags: { ...input.tags },
  allowInsecureHttp: input.allowInsecureHttp ?? false,
  createdAt,
  updatedAt,
  version
})

/** Whether `next` keeps the binding of the stored connection `prev` (its grant may stay): the same provider, the
 *  same inputs with the same values (secret ones compared in the clear, never logged) and the same
 *  allow_insecure_http. Tags may change. */
export const sameBinding = (prev: ConnectionRecord, next: PutInput): boolean => {
  if (prev.provider !== next.provider || prev.allowInsecureHttp !== (next.allowInsecureHttp ?? false)) return false
  const values = new Map(next.inputs.map((i) => [i.name, i.value]))
  if (values.size !== prev.inputs.size) return false
  for (const [name, v] of prev.inputs) {
    const value = values.get(name)
    if (value === undefined || value !== (Redacted.isRedacted(v) ? Redacted.value(v) : v)) return false
  }
  return true
}

export const makeMemory = (clock: () => number = Date.now): ConnectionStoreShape => {
  const rows = new Map<string, ConnectionRecord>()
  const grants = new Map<string, Grant>()
  const listeners = new Set<(c: Change) => void>()
  const notify = (c: Change) => {
    for (const l of listeners) {
      try {
        l(c)
      } catch {
        /* a subscriber's bug must not break a write */
      }
    }
  }
  const toRecord = (input: PutInput, previous: ConnectionRecord | undefined, now: number): ConnectionRecord =>
    recordOf(input, previous?.createdAt ?? now, now, (previous?.version ?? 0) + 1)
  return {
    kind: "memory",
    describe: "memory (this process only)",
    get: (name) => Effect.sync(() => rows.get(name)),
    put: (input) =>
      Effect.sync(() => {
        const previous = rows.get(input.name)
        if (previous === undefined || !sameBinding(previous, input)) grants.delete(input.name)
        const record = toRecord(input, previous, clock())
        rows.set(input.name, record)
        notify({ name: input.name, kind: "put", version: record.version })
        return { created: previous === undefined, record }
      }),
    delete: (name) =>
      Effect.sync(() => {
        const previous = rows.get(name)
        if (!previous) return false
        rows.delete(name)
        grants.delete(name)
        notify({ name, kind: "delete", version: previous.version })
        return true
      }),
    list: (q) =>
      Effect.sync(() => {
        const names = [...rows.keys()].filter((n) => q.after === undefined || n > q.after).sort()
        const items: ConnectionRecord[] = []
        for (const n of names) {
          const r = rows.get(n)!
          if (!matchesTags(r.tags, q.tags)) continue
          if (items.length === q.limit) return { items, more: true }
          items.push(r)
        }
        return { items, more: false }
      }),
    count: () => Effect.sync(() => rows.size),
    reencrypt: () => Effect.sync(() => ({ rewritten: 0, total: rows.size + grants.size })),
    getGrant: (name) => Effect.sync(() => grants.get(name)),
    putGrant: (name, grant, expectedVersion) =>
      Effect.sync(() => {
        const current = grants.get(name)
        if (current?.version !== expectedVersion) return false
        grants.set(name, { ...grant, updatedAt: clock(), version: (current?.version ?? 0) + 1 })
        return true
      }),
    subscribe: (listener) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    health: () => Effect.succeed({ status: "ok", detail: "memory" }),
    outbox: makeMemoryOutbox()
  }
}

export const layerMemory: Layer.Layer<ConnectionStore> = Layer.sync(ConnectionStore, () => makeMemory())
