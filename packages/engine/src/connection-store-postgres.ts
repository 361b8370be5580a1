/** The shared connection store for several tessera instances: PostgreSQL through node-postgres (`pg`). Only
 *  "@tessera/engine/postgres" imports it, so processes that never use PostgreSQL never load the client.
 *
 *  - `encryptionKeys` are required (a shared database is not this machine's to protect): the first seals, all open.
 *  - `schema` (default `public`) holds every table; it is created when missing.
 *  - Migrations (`migrations`, recorded in `<schema>.tessera_migrations`) run on start in one transaction that
 *    first takes an advisory lock (`pg_advisory_xact_lock`), so instances starting at once on an empty database
 *    apply each exactly once; a database at a newer version than this code knows is refused.
 *  - Every write is one statement: the row, its change-log entry and `pg_notify`, committed together (so a
 *    notification is sent exactly when its change is there to read). PostgreSQL serializes the commits of
 *    notifying transactions, so connection writes commit one at a time: their throughput is bounded by commit
 *    latency, which is plenty for connections created as customers onboard. Grant writes do not notify.
 *  - Changes across instances: LISTEN/NOTIFY on a dedicated connection with a catch-up from the change log after
 *    every reconnect (internal/postgres-change-feed.ts), so an instance that lost its connection misses nothing
 *    the log still holds; it keeps `changeRetentionMs` (an instance cut off for longer should be restarted).
 *  - Names sort in byte order (`COLLATE "C"`); tag filters are `tags @> $1` on a GIN index.
 *  - A grant's binding (grant-binding.ts) is the `binding` column of `grants` (migration 4), in clear; re-encryption
 *    rewrites only `refresh_token`, so the binding survives a key rotation.
 *  - The webhook outbox (`outbox` table, migration 3) is claimed with `FOR UPDATE SKIP LOCKED` under a lease, so each
 *    message goes to one instance at a time and a dead instance's messages are taken over when its lease ends.
 *  - Liveness (internal/postgres-liveness.ts): a process that claims a grant's rotation holds a session-level
 *    advisory lock for its owner id on one dedicated connection while it runs; others find the lock gone once that
 *    process is dead (its session ended with its socket), and take its claim over (renewal.ts).
 *  - The URL's password is in no `describe`, error or log. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Client, Pool, type ClientBase } from "pg"
import {
  ConnectionStore,
  ConnectionStoreError,
  type ConnectionStoreShape,
  type GrantInput,
  type ListQuery,
  type OutboxMessage,
  type OutboxShape,
  type PutInput
} from "./connection-store.ts"
import * as Rows from "./internal/connection-rows.ts"
import { makeFeed, type Logged } from "./internal/postgres-change-feed.ts"
import { defaults as livenessDefaults, makeLiveness } from "./internal/postgres-liveness.ts"
import type { KeyRing } from "./secret-box.ts"

export interface PostgresOptions {
  /** `postgres://user[:password]@host:port/database` (required). */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** `connection_store.encryption_keys` (required). */
  readonly encryptionKeys?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** Where the tables live (default `public`; created when missing). */
  readonly schema?: string | undefined
  /** Connections in the pool (default 10), plus one for the change listener once something subscribes, and one for
   *  liveness once a grant rotation is claimed. */
  readonly poolSize?: number | undefined
  /** Per connection attempt (default 5 s). */
  readonly connectTimeoutMs?: number | undefined
  /** Per statement (default 10 s; migrations have none). */
  readonly statementTimeoutMs?: number | undefined
  /** How long the change log keeps a change (default 1 h). */
  readonly changeRetentionMs?: number | undefined
  /** The change listener's reconnect backoff: first delay and cap (defaults 100 ms and 5 s). */
  readonly reconnectMinMs?: number | undefined
  readonly reconnectMaxMs?: number | undefined
}

export const defaults = {
  schema: "public",
  poolSize: 10,
  connectTimeoutMs: 5_000,
  statementTimeoutMs: 10_000,
  changeRetentionMs: 3_600_000,
  reconnectMinMs: 100,
  reconnectMaxMs: 5_000,
  catchUpWindowMs: 30_000
} as const

export interface Migration {
  readonly version: number
  readonly name: string
  /** The statements, for tables in schema `s` (a quoted identifier). */
  readonly sql: (s: string) => string
}

/** Forward only: a released migration is never edited, a change is a new one. */
export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "connections",
    sql: (s) => `CREATE TABLE ${s}.connections (
  name text COLLATE "C" PRIMARY KEY,
  provider text NOT NULL,
  inputs jsonb NOT NULL,
  secrets jsonb NOT NULL,
  tags jsonb NOT NULL,
  allow_insecure_http boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  version integer NOT NULL
)`
  },
  {
    version: 2,
    name: "grants, change log, tag index",
    sql: (s) => `CREATE TABLE ${s}.grants (
  name text COLLATE "C" PRIMARY KEY,
  refresh_token jsonb NOT NULL,
  scope text,
  status text NOT NULL CHECK (status IN ('active', 'needs_reauth')),
  detail text,
  updated_at bigint NOT NULL,
  version integer NOT NULL
);
CREATE TABLE ${s}.connection_changes (
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('put', 'delete')),
  version integer NOT NULL,
  at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX connection_changes_at ON ${s}.connection_changes (at);
CREATE INDEX connections_tags ON ${s}.connections USING gin (tags jsonb_path_ops)`
  },
  {
    version: 3,
    name: "webhook outbox",
    sql: (s) => `CREATE TABLE ${s}.outbox (
  id text COLLATE "C" PRIMARY KEY,
  endpoint text NOT NULL,
  body text NOT NULL,
  created_at bigint NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
  last_error text,
  lease_owner text,
  lease_until bigint NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON ${s}.outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_created ON ${s}.outbox (created_at)`
  },
  {
    version: 4,
    name: "grant binding",
    // Null for the grants already there: accepted once, then bound by their next write (grant-binding.ts).
    sql: (s) => `ALTER TABLE ${s}.grants ADD COLUMN binding text`
  }
]

export const latestVersion = migrations.at(-1)?.version ?? 0

const schemaPattern = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/
const quote = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`
// The advisory lock's first key: "tess" in ASCII; the second is the schema's hash.
const LOCK_CLASS = 0x74657373
const LISTENER_NAME = "tessera connection listener"
const LIVENESS_NAME = "tessera liveness"

/** The channel a schema's changes are announced on (a fixed length, whatever the schema's name). */
export const channelFor = (schema: string) =>
  schema === "public" ? "tessera_connections" : `tessera_connections_${schema}`.slice(0, 63)

const configError = (reason: string) => new ConnectionStoreError({ store: "postgres", operation: "open", reason })

interface Settings {
  readonly url: string
  readonly keys: KeyRing
  readonly schema: string
  readonly where: string
  readonly scrub: (text: string) => string
}

/** The URL without credentials: "host:port/database". */
export const describeUrl = (url: string): string => {
  try {
    const u = new URL(url)
    return `${u.host}${u.pathname.length > 1 ? u.pathname : ""}`
  } catch {
    return "(unparsable url)"
  }
}

/** Replaces the URL's password, wherever a driver message might quote it. */
const scrubber = (url: string) => {
  const found: string[] = []
  try {
    const u = new URL(url)
    for (const p of [u.password, u.searchParams.get("password") ?? ""]) {
      if (p === "") continue
      found.push(p)
      try {
        found.push(decodeURIComponent(p))
      } catch {
        // not percent-encoded
      }
    }
  } catch {
    // an unparsable URL is refused before anything could quote it
  }
  return (text: string) => found.reduce((t, p) => t.split(p).join("***"), text)
}

const settings = (opts: PostgresOptions): Settings => {
  if (opts.url === undefined)
    throw configError("connection_store.url is required for type: postgres (e.g. url: ${env:DATABASE_URL})")
  const url = Redacted.isRedacted(opts.url) ? Redacted.value(opts.url) : opts.url
  if (!/^postgres(ql)?:\/\/[^/]/.test(url) || !URL.canParse(url))
    throw configError(
      `connection_store.url must be postgres://user@host:port/database, got ${scrubber(url)(describeUrl(url))}`
    )
  if (!opts.encryptionKeys || opts.encryptionKeys.length === 0)
    throw configError(
      `${Rows.keySetting} is required for type: postgres: secret inputs and grants in a shared database are ` +
        `encrypted with them (a list of keys, each ${Rows.keyHelp}; the first encrypts, all decrypt), e.g. ` +
        'encryption_keys: ["${env:TESSERA_CONNECTION_KEY}"]'
    )
  const keys = Rows.ringFrom(opts.encryptionKeys)
  if (typeof keys === "string") throw configError(keys)
  const schema = opts.schema ?? defaults.schema
  if (!schemaPattern.test(schema))
    throw configError(
      `connection_store.schema must be 1 to 63 letters, digits or _, starting with a letter or _, got ${JSON.stringify(schema)}`
    )
  const where = `${describeUrl(url)}${schema === "public" ? "" : ` (schema ${schema})`}`
  return { url, keys, schema, where, scrub: scrubber(url) }
}

type Row = Record<string, unknown>

const { text, textOrNull } = Rows
const num = (r: Row, k: string): number => {
  const v = r[k]
  if (typeof v === "number") return v
  if (typeof v === "string" && /^-?\d+(\.\d+)?$/.test(v)) return Number(v)
  throw new TypeError(`column ${k} is not a number`)
}
const bool = (r: Row, k: string): boolean => {
  const v = r[k]
  if (typeof v === "boolean") return v
  throw new TypeError(`column ${k} is not a boolean`)
}

const newerThanKnown = (found: number) =>
  Rows.newerThanKnown("postgres", found, latestVersion, "connection_store at another database or schema")

/** Runs the missing migrations up to `upTo` in one transaction under the schema's advisory lock. */
const migrateWith = async (c: ClientBase, schema: string, upTo: number) => {
  const s = quote(schema)
  await c.query("BEGIN")
  try {
    await c.query("SET LOCAL statement_timeout = 0")
    await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [LOCK_CLASS, schema])
    // Only when missing: CREATE SCHEMA needs a privilege that a user owning just its schema may not have.
    const exists = await c.query("SELECT 1 FROM pg_namespace WHERE nspname = $1", [schema])
    if (exists.rowCount === 0) await c.query(`CREATE SCHEMA ${s}`)
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${s}.tessera_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
    )
    const found = await c.query<Row>(`SELECT coalesce(max(version), 0) AS v FROM ${s}.tessera_migrations`)
    const from = num(found.rows[0] ?? {}, "v")
    if (from > latestVersion) throw newerThanKnown(from)
    for (const m of migrations) {
      if (m.version <= from || m.version > upTo) continue
      await c.query(m.sql(s))
      await c.query(`INSERT INTO ${s}.tessera_migrations (version, name) VALUES ($1, $2)`, [m.version, m.name])
    }
    await c.query("COMMIT")
    return { from, to: Math.max(from, Math.min(upTo, latestVersion)) }
  } catch (e) {
    await c.query("ROLLBACK").catch(() => undefined)
    throw e
  }
}

const failWith =
  (operation: string, where: string, scrub: (t: string) => string, connection?: string) => (e: unknown) =>
    e instanceof ConnectionStoreError
      ? e
      : new ConnectionStoreError({
          store: "postgres",
          operation,
          reason: scrub(`${where}: ${Rows.reasonOf(e)}`),
          ...(connection === undefined ? {} : { connection })
        })

/** Brings the schema to version `upTo` (default: the latest) over one connection; for tools and tests. Needs no
 *  keys. Returns the version found and the version reached. */
export const migrate = (opts: {
  readonly url: string | Redacted.Redacted<string>
  readonly schema?: string | undefined
  readonly upTo?: number | undefined
}): Effect.Effect<{ readonly from: number; readonly to: number }, ConnectionStoreError> =>
  Effect.suspend(() => {
    const url = Redacted.isRedacted(opts.url) ? Redacted.value(opts.url) : opts.url
    const schema = opts.schema ?? defaults.schema
    const scrub = scrubber(url)
    return Effect.tryPromise({
      try: async () => {
        if (!schemaPattern.test(schema))
          throw configError(`connection_store.schema ${JSON.stringify(schema)} is not a name`)
        const c = new Client({ connectionString: url, connectionTimeoutMillis: defaults.connectTimeoutMs })
        c.on("error", () => undefined)
        await c.connect()
        try {
          return await migrateWith(c, schema, opts.upTo ?? latestVersion)
        } finally {
          await c.end().catch(() => undefined)
        }
      },
      catch: failWith("migrate", describeUrl(url), scrub)
    })
  })

const COLUMNS =
  "name, provider, inputs::text AS inputs, secrets::text AS secrets, tags::text AS tags, allow_insecure_http, created_at, updated_at, version"

const { connectionRow, grantRow } = Rows.readers({ num, bool })

const loggedOf = (r: Row): Logged | undefined => {
  const kind = r["kind"]
  if (!Rows.isKind(kind)) return undefined
  return { seq: num(r, "seq"), at: num(r, "at"), change: { name: text(r, "name"), kind, version: num(r, "version") } }
}

const sql = (s: string) => {
  const notify = `pg_notify($1, json_build_object('seq', ch.seq, 'name', ch.name, 'kind', ch.kind, 'version', ch.version, 'at', ch.at_ms)::text)`
  const logged = `RETURNING seq, name, kind, version, (extract(epoch FROM at) * 1000)::float8 AS at_ms`
  return {
    get: `SELECT ${COLUMNS} FROM ${s}.connections WHERE name = $1`,
    // One statement: the row, its change and the notification commit together.
    put: `WITH up AS (
        INSERT INTO ${s}.connections AS c (name, provider, inputs, secrets, tags, allow_insecure_http, created_at, updated_at, version)
        VALUES ($2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $8, 1)
        ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, inputs = excluded.inputs,
          secrets = excluded.secrets, tags = excluded.tags, allow_insecure_http = excluded.allow_insecure_http,
          updated_at = excluded.updated_at, version = c.version + 1
        RETURNING name, version, created_at),
      g AS (DELETE FROM ${s}.grants WHERE name = $2 AND ($9::boolean
        OR NOT EXISTS (SELECT 1 FROM ${s}.connections WHERE name = $2 AND version = $10::int))),
      ch AS (INSERT INTO ${s}.connection_changes (name, kind, version) SELECT name, 'put', version FROM up ${logged})
      SELECT up.version, up.created_at, ch.seq, ch.at_ms AS at, ${notify} FROM up, ch`,
    delete: `WITH d AS (DELETE FROM ${s}.connections WHERE name = $2 RETURNING name, version),
      g AS (DELETE FROM ${s}.grants WHERE name IN (SELECT name FROM d)),
      ch AS (INSERT INTO ${s}.connection_changes (name, kind, version) SELECT name, 'delete', version FROM d ${logged})
      SELECT ch.version, ch.seq, ch.at_ms AS at, ${notify} FROM ch`,
    listAll: `SELECT ${COLUMNS} FROM ${s}.connections WHERE name > $1 ORDER BY name LIMIT $2`,
    listTagged: `SELECT ${COLUMNS} FROM ${s}.connections WHERE name > $1 AND tags @> $3::jsonb ORDER BY name LIMIT $2`,
    count: `SELECT count(*)::int AS n FROM ${s}.connections`,
    secretsPage: `SELECT name, secrets::text AS value FROM ${s}.connections WHERE name > $1 ORDER BY name LIMIT $2`,
    secretsOf: `SELECT secrets::text AS value FROM ${s}.connections WHERE name = $1`,
    swapSecrets: `UPDATE ${s}.connections SET secrets = $2::jsonb WHERE name = $1 AND secrets = $3::jsonb`,
    tokensPage: `SELECT name, refresh_token::text AS value FROM ${s}.grants WHERE name > $1 ORDER BY name LIMIT $2`,
    tokenOf: `SELECT refresh_token::text AS value FROM ${s}.grants WHERE name = $1`,
    swapToken: `UPDATE ${s}.grants SET refresh_token = $2::jsonb WHERE name = $1 AND refresh_token = $3::jsonb`,
    getGrant: `SELECT refresh_token::text AS refresh_token, scope, status, detail, binding, updated_at, version
      FROM ${s}.grants WHERE name = $1`,
    insertGrant: `INSERT INTO ${s}.grants (name, refresh_token, scope, status, detail, binding, updated_at, version)
      VALUES ($1, $2::jsonb, $3, $4, $5, $6, $7, 1) ON CONFLICT (name) DO NOTHING`,
    updateGrant: `UPDATE ${s}.grants SET refresh_token = $2::jsonb, scope = $3, status = $4, detail = $5, binding = $6,
      updated_at = $7, version = version + 1 WHERE name = $1 AND version = $8`,
    cursor: `SELECT coalesce(max(seq), 0) AS seq, coalesce((extract(epoch FROM max(at)) * 1000)::float8, 0) AS at FROM ${s}.connection_changes`,
    // Also what was logged shortly before the latest change seen: it may have committed since.
    catchUp: `SELECT seq, name, kind, version, (extract(epoch FROM at) * 1000)::float8 AS at FROM ${s}.connection_changes
      WHERE seq > $1 OR at > to_timestamp($2 / 1000.0) - make_interval(secs => $3 / 1000.0) ORDER BY seq`,
    prune: `DELETE FROM ${s}.connection_changes WHERE at < clock_timestamp() - make_interval(secs => $1 / 1000.0)`,
    outboxAdd: `INSERT INTO ${s}.outbox (id, endpoint, body, created_at, next_attempt_at)
      SELECT m.id, m.endpoint, m.body, $4, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS m(id, endpoint, body)
      ON CONFLICT (id) DO NOTHING`,
    // SKIP LOCKED: instances claiming at once each take other rows instead of waiting for one another.
    outboxClaim: `UPDATE ${s}.outbox o SET lease_owner = $1, lease_until = $2 FROM (
        SELECT id FROM ${s}.outbox WHERE status = 'pending' AND next_attempt_at <= $3 AND lease_until <= $3
          AND endpoint = ANY($4::text[]) ORDER BY next_attempt_at, id LIMIT $5 FOR UPDATE SKIP LOCKED) due
      WHERE o.id = due.id RETURNING o.id, o.endpoint, o.body, o.created_at, o.attempts, o.next_attempt_at, o.last_error`,
    outboxComplete: `DELETE FROM ${s}.outbox WHERE id = $1 AND lease_owner = $2`,
    outboxRetry: `UPDATE ${s}.outbox SET attempts = attempts + 1, next_attempt_at = $3, last_error = $4, status = $5,
      lease_owner = NULL, lease_until = 0 WHERE id = $1 AND lease_owner = $2`,
    outboxStats: `SELECT status, count(*)::int AS n FROM ${s}.outbox GROUP BY status`,
    outboxPrune: `DELETE FROM ${s}.outbox WHERE created_at < $1`
  }
}

const outboxRow = (r: Row): OutboxMessage => {
  const lastError = textOrNull(r, "last_error")
  return {
    id: text(r, "id"),
    endpoint: text(r, "endpoint"),
    body: text(r, "body"),
    createdAt: num(r, "created_at"),
    attempts: num(r, "attempts"),
    nextAttemptAt: num(r, "next_attempt_at"),
    ...(lastError === null ? {} : { lastError })
  }
}

/** The outbox: every operation one statement, so instances share it without a lock of their own. */
const makeOutbox = (ctx: Ctx): OutboxShape => {
  const { q } = ctx
  const now = <A>(operation: string, f: (now: number) => Promise<A>) =>
    Effect.flatMap(Clock.currentTimeMillis, (t) => call(ctx, operation, () => f(t)))
  return {
    add: (messages) =>
      now("outbox add", async (t) => {
        const cols = [messages.map((m) => m.id), messages.map((m) => m.endpoint), messages.map((m) => m.body)]
        await ctx.pool.query(q.outboxAdd, [...cols, t])
      }),
    claim: (c) =>
      now("outbox claim", async (t) =>
        (await rows(ctx, q.outboxClaim, [c.owner, t + c.leaseMs, t, [...c.endpoints], c.limit]))
          .map(outboxRow)
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
      ),
    complete: (id, owner) =>
      call(ctx, "outbox complete", async () => (await ctx.pool.query(q.outboxComplete, [id, owner])).rowCount === 1),
    retry: (id, owner, a) =>
      call(
        ctx,
        "outbox retry",
        async () =>
          (await ctx.pool.query(q.outboxRetry, [id, owner, a.nextAttemptAt, a.error, a.dead ? "dead" : "pending"]))
            .rowCount === 1
      ),
    stats: () =>
      call(ctx, "outbox stats", async () => {
        const by = new Map((await rows(ctx, q.outboxStats, [])).map((r) => [text(r, "status"), num(r, "n")] as const))
        return { pending: by.get("pending") ?? 0, dead: by.get("dead") ?? 0 }
      }),
    prune: (before) =>
      call(ctx, "outbox prune", async () => (await ctx.pool.query(q.outboxPrune, [before])).rowCount ?? 0)
  }
}

const PAGE = 200
/** A row changed by someone else between read and swap this many times in a row is reported, not retried. */
const SWAP_TRIES = 10

interface Opened {
  readonly store: ConnectionStoreShape
  readonly close: () => Promise<void>
}

const open = async (st: Settings, opts: PostgresOptions): Promise<Opened> => {
  const pool = new Pool({
    connectionString: st.url,
    max: opts.poolSize ?? defaults.poolSize,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? defaults.connectTimeoutMs,
    statement_timeout: opts.statementTimeoutMs ?? defaults.statementTimeoutMs,
    idleTimeoutMillis: 30_000,
    // A library user who forgets to close the store must not keep the process alive.
    allowExitOnIdle: true,
    application_name: "tessera"
  })
  // An idle connection's error (a restart, a terminated backend) must not crash the process; the pool replaces it.
  pool.on("error", () => undefined)
  try {
    const c = await pool.connect()
    try {
      await migrateWith(c, st.schema, latestVersion)
    } finally {
      c.release()
    }
    const q = sql(quote(st.schema))
    const first = (await pool.query<Row>(q.cursor)).rows[0] ?? {}
    return build(st, opts, pool, q, { seq: num(first, "seq"), at: num(first, "at") })
  } catch (e) {
    await pool.end().catch(() => undefined)
    throw e
  }
}

/** What every operation of one open store works with. */
interface Ctx {
  readonly st: Settings
  readonly pool: Pool
  readonly q: ReturnType<typeof sql>
  readonly codec: Rows.Codec
  readonly channel: string
}

const call = <A>(ctx: Ctx, operation: string, f: () => Promise<A>, connection?: string) =>
  Effect.tryPromise({ try: f, catch: failWith(operation, ctx.st.where, ctx.st.scrub, connection) })

const rows = async (ctx: Ctx, text: string, values: ReadonlyArray<unknown>) =>
  (await ctx.pool.query<Row>(text, [...values])).rows

/** Compare-and-swap of one sealed column, re-reading when another writer changed it in between. */
const swapRow = async (
  ctx: Ctx,
  t: Table,
  name: string,
  found: string,
  reseal: (name: string, current: string) => string | undefined
) => {
  let current = found
  for (let i = 0; i < SWAP_TRIES; i++) {
    const next = reseal(name, current)
    if (next === undefined) return false
    if ((await ctx.pool.query(t.swap, [name, next, current])).rowCount === 1) return true
    const again = (await rows(ctx, t.reread, [name]))[0]
    if (!again) return false
    current = text(again, "value")
  }
  throw new ConnectionStoreError({
    store: "postgres",
    operation: "reencrypt",
    connection: name,
    reason: `the row changed ${SWAP_TRIES} times while it was being re-encrypted: run reencrypt again`
  })
}

interface Table {
  readonly page: string
  readonly reread: string
  readonly swap: string
}

/** Every row of one table, page by page in name order, each swapped on its own. */
const reencryptTable = (ctx: Ctx, t: Table, reseal: (name: string, current: string) => string | undefined) =>
  Effect.gen(function* () {
    let rewritten = 0
    let total = 0
    let after = ""
    for (;;) {
      const found = yield* call(ctx, "reencrypt", () => rows(ctx, t.page, [after, PAGE]))
      for (const r of found) {
        total++
        const name = text(r, "name")
        if (yield* call(ctx, "reencrypt", () => swapRow(ctx, t, name, text(r, "value"), reseal), name)) rewritten++
      }
      const last = found.at(-1)
      if (!last || found.length < PAGE) return { rewritten, total }
      after = text(last, "name")
    }
  })

const reencrypt = (ctx: Ctx) =>
  Effect.gen(function* () {
    const { q, codec } = ctx
    const c = yield* reencryptTable(ctx, { page: q.secretsPage, reread: q.secretsOf, swap: q.swapSecrets }, (n, v) =>
      Rows.resealSecrets(codec, n, v)
    )
    const g = yield* reencryptTable(ctx, { page: q.tokensPage, reread: q.tokenOf, swap: q.swapToken }, (n, v) =>
      Rows.resealRefreshToken(codec, n, v)
    )
    return { rewritten: c.rewritten + g.rewritten, total: c.total + g.total }
  })

const list = (ctx: Ctx, query: ListQuery) =>
  call(ctx, "list", async () => {
    const n = Rows.pageSize(query.limit)
    const tags = query.tags ?? {}
    const found =
      Object.keys(tags).length === 0
        ? await rows(ctx, ctx.q.listAll, [query.after ?? "", n + 1])
        : await rows(ctx, ctx.q.listTagged, [query.after ?? "", n + 1, JSON.stringify(tags)])
    return {
      items: found.slice(0, n).map((r) => Rows.decodeConnection(ctx.codec, "list", connectionRow(r))),
      more: found.length > n
    }
  })

type Feed = ReturnType<typeof makeFeed>

const put = (ctx: Ctx, feed: Feed, input: PutInput) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    call(
      ctx,
      "put",
      async () => {
        const cols = Rows.encodeInputs(ctx.st.keys, input)
        // The binding is judged on the version read here; the write drops the grant too when another version was
        // written in between (the CTE sees the table as it was before this statement).
        const found = (await rows(ctx, ctx.q.get, [input.name]))[0]
        const prev = found ? connectionRow(found) : undefined
        const drop = prev === undefined || !Rows.keepsBinding(ctx.codec, prev, input)
        const values = [ctx.channel, input.name, input.provider, cols.inputs, cols.secrets, cols.tags]
        const extra = [input.allowInsecureHttp ?? false, now, drop, prev?.version ?? 0]
        const r = (await rows(ctx, ctx.q.put, [...values, ...extra]))[0]
        if (!r) throw new TypeError("the write returned no row")
        const version = num(r, "version")
        feed.afterWrite({ seq: num(r, "seq"), at: num(r, "at"), change: { name: input.name, kind: "put", version } })
        return { created: version === 1, record: Rows.recordOf(input, num(r, "created_at"), now, version) }
      },
      input.name
    )
  )

const del = (ctx: Ctx, feed: Feed, name: string) =>
  call(
    ctx,
    "delete",
    async () => {
      const r = (await rows(ctx, ctx.q.delete, [ctx.channel, name]))[0]
      if (!r) return false
      const version = num(r, "version")
      feed.afterWrite({ seq: num(r, "seq"), at: num(r, "at"), change: { name, kind: "delete", version } })
      return true
    },
    name
  )

const putGrant = (ctx: Ctx, name: string, grant: GrantInput, expectedVersion: number | undefined) =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    call(
      ctx,
      "put grant",
      async () => {
        const values = [name, ...Rows.grantValues(ctx.st.keys, name, grant, now)]
        const r =
          expectedVersion === undefined
            ? await ctx.pool.query(ctx.q.insertGrant, values)
            : await ctx.pool.query(ctx.q.updateGrant, [...values, expectedVersion])
        return r.rowCount === 1
      },
      name
    )
  )

const build = (
  st: Settings,
  opts: PostgresOptions,
  pool: Pool,
  q: ReturnType<typeof sql>,
  initial: { readonly seq: number; readonly at: number }
): Opened => {
  const ctx: Ctx = { st, pool, q, codec: { store: "postgres", keys: st.keys }, channel: channelFor(st.schema) }
  const retentionMs = opts.changeRetentionMs ?? defaults.changeRetentionMs
  const feed = makeFeed({
    url: st.url,
    channel: ctx.channel,
    applicationName: LISTENER_NAME,
    scrub: st.scrub,
    connectTimeoutMs: opts.connectTimeoutMs ?? defaults.connectTimeoutMs,
    reconnectMinMs: opts.reconnectMinMs ?? defaults.reconnectMinMs,
    reconnectMaxMs: opts.reconnectMaxMs ?? defaults.reconnectMaxMs,
    catchUpWindowMs: defaults.catchUpWindowMs,
    initial,
    catchUp: async (seq, at, windowMs) =>
      (await rows(ctx, q.catchUp, [seq, at, windowMs])).flatMap((r) => loggedOf(r) ?? [])
  })
  // Unreachable now: the next round prunes.
  const prune = () =>
    pool.query(q.prune, [retentionMs]).then(
      () => undefined,
      () => undefined
    )
  void prune()
  const housekeeping = setInterval(
    () => {
      void prune()
      feed.forgetOld()
    },
    Math.min(retentionMs, 60_000)
  )
  housekeeping.unref()

  const liveness = makeLiveness({
    url: st.url,
    pool,
    applicationName: LIVENESS_NAME,
    connectTimeoutMs: opts.connectTimeoutMs ?? defaults.connectTimeoutMs,
    ...livenessDefaults,
    fail: failWith("liveness", st.where, st.scrub)
  })

  const store: ConnectionStoreShape = {
    kind: "postgres",
    describe: `postgres ${st.where}`,
    get: (name) =>
      call(
        ctx,
        "get",
        async () => {
          const r = (await rows(ctx, q.get, [name]))[0]
          return r ? Rows.decodeConnection(ctx.codec, "get", connectionRow(r)) : undefined
        },
        name
      ),
    put: (input) => put(ctx, feed, input),
    delete: (name) => del(ctx, feed, name),
    list: (query) => list(ctx, query),
    count: () => call(ctx, "count", async () => num((await rows(ctx, q.count, []))[0] ?? {}, "n")),
    reencrypt: () => reencrypt(ctx),
    getGrant: (name) =>
      call(
        ctx,
        "get grant",
        async () => {
          const r = (await rows(ctx, q.getGrant, [name]))[0]
          return r ? Rows.decodeGrant(ctx.codec, "get grant", name, grantRow(r)) : undefined
        },
        name
      ),
    putGrant: (name, grant, expectedVersion) => putGrant(ctx, name, grant, expectedVersion),
    subscribe: feed.subscribe,
    health: () =>
      call(ctx, "health", () => pool.query("SELECT 1")).pipe(
        Effect.map(() => {
          const trouble = feed.trouble()
          return { status: "ok" as const, detail: `postgres ${st.where}${trouble ? `; ${trouble}` : ""}` }
        }),
        Effect.catch((e) => Effect.succeed({ status: "down" as const, detail: `postgres ${e.reason}` }))
      ),
    outbox: makeOutbox(ctx),
    liveness: { register: liveness.register, dead: liveness.dead }
  }
  return {
    store,
    close: async () => {
      clearInterval(housekeeping)
      await Promise.all([feed.close(), liveness.close(), pool.end().catch(() => undefined)])
    }
  }
}

/** Connects, migrates and starts the store; the pool and the listener close with the scope. */
export const make = (opts: PostgresOptions): Effect.Effect<ConnectionStoreShape, ConnectionStoreError, Scope.Scope> =>
  Effect.gen(function* () {
    const st = yield* Effect.try({ try: () => settings(opts), catch: failWith("open", "postgres", (t) => t) })
    const opened = yield* Effect.acquireRelease(
      Effect.tryPromise({ try: () => open(st, opts), catch: failWith("open", st.where, st.scrub) }),
      (o) => Effect.promise(o.close)
    )
    return opened.store
  })

/** `make` as the ConnectionStore; the pool and the listener close when the layer is released. */
export const layer = (opts: PostgresOptions): Layer.Layer<ConnectionStore, ConnectionStoreError> =>
  Layer.effect(ConnectionStore, make(opts))
