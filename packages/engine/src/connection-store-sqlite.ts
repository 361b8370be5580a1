/** The embedded connection store: one SQLite file, through Node's built-in `node:sqlite` (no native build, no npm
 *  package), for the CLI and a single server; processes sharing the file see each other's changes.
 *
 *  - Where: `path`, else `defaultPath()`: `$XDG_DATA_HOME/tessera/connections.db` (else `~/.local/share/tessera/`),
 *    `~/Library/Application Support/tessera/` on macOS, `%APPDATA%\tessera\` on Windows. The file is created 0600,
 *    its directory 0700 when tessera creates it. WAL mode with `synchronous = FULL` (a committed write survives a
 *    power loss); a write waits up to `busyTimeoutMs` for another process's write (node:sqlite is synchronous, so
 *    that wait blocks this thread; writes are short).
 *  - Keys: given `encryptionKeys` always win (the first seals, all open). Without any, a random key is made on
 *    first use and kept in a key file beside the database (`<path>.key`, 0600; written to a temp file and linked
 *    into place, so two first runs at once agree on one key). Back that file up with the database: without it the
 *    secret inputs and grants cannot be read.
 *  - Migrations (`migrations`, recorded in `tessera_migrations`) run on start inside `BEGIN IMMEDIATE`, so
 *    processes starting at once on a new file apply each exactly once; a file at a newer version than this code
 *    knows is refused.
 *  - Changes: every write appends to `connection_changes` in its own transaction. A subscriber gets this instance's
 *    writes at once and other processes' by polling (`PRAGMA data_version` first: an idle poll reads no table), so
 *    a CLI writing the file is seen by a server within a poll interval. The log keeps `changeRetentionMs`.
 *  - Tag filters use the `connection_tags` side table (indexed by key, value, name) in name order.
 *  - A grant's binding (grant-binding.ts) is the `binding` column of `grants` (migration 4), in clear; re-encryption
 *    rewrites only `refresh_token`, so the binding survives a key rotation.
 *  - The webhook outbox (`outbox` table, migration 3) is claimed with one UPDATE ... RETURNING, so processes sharing
 *    the file each get their own messages. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { randomBytes } from "node:crypto"
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs"
import { homedir, platform } from "node:os"
import { dirname, isAbsolute, join } from "node:path"
import { DatabaseSync, type SQLInputValue, type SQLOutputValue, type StatementSync } from "node:sqlite"
import {
  ConnectionStore,
  ConnectionStoreError,
  type Change,
  type ConnectionStoreShape,
  type GrantInput,
  type ListQuery,
  type OutboxMessage,
  type OutboxShape,
  type PutInput
} from "./connection-store.ts"
import * as Rows from "./internal/connection-rows.ts"
import { parseKey, ring, type KeyRing } from "./secret-box.ts"

export interface SqliteOptions {
  /** The database file (default `defaultPath()`). */
  readonly path?: string | undefined
  /** `connection_store.encryption_keys`; none: a key file beside the database. */
  readonly encryptionKeys?: ReadonlyArray<Redacted.Redacted<string>> | undefined
  /** How often a subscribed instance looks for other processes' changes (default 250 ms). */
  readonly pollIntervalMs?: number | undefined
  /** How long the change log keeps a change (default 1 h). */
  readonly changeRetentionMs?: number | undefined
  /** How long a write waits for another process's write (default 5 s). */
  readonly busyTimeoutMs?: number | undefined
}

export const defaults = { pollIntervalMs: 250, changeRetentionMs: 3_600_000, busyTimeoutMs: 5_000 } as const

/** The platform's user data directory for tessera. */
export const defaultDir = (): string => {
  if (platform() === "darwin") return join(homedir(), "Library", "Application Support", "tessera")
  if (platform() === "win32") return join(process.env["APPDATA"] || join(homedir(), "AppData", "Roaming"), "tessera")
  const xdg = process.env["XDG_DATA_HOME"]
  // The XDG spec ignores a relative XDG_DATA_HOME.
  return join(xdg && isAbsolute(xdg) ? xdg : join(homedir(), ".local", "share"), "tessera")
}

export const defaultPath = (): string => join(defaultDir(), "connections.db")

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

/** Forward only: a released migration is never edited, a change is a new one. */
export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "connections",
    sql: `CREATE TABLE connections (
  name TEXT COLLATE BINARY PRIMARY KEY,
  provider TEXT NOT NULL,
  inputs TEXT NOT NULL,
  secrets TEXT NOT NULL,
  tags TEXT NOT NULL,
  allow_insecure_http INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL
) STRICT`
  },
  {
    version: 2,
    name: "grants, change log, tag index",
    sql: `CREATE TABLE grants (
  name TEXT COLLATE BINARY PRIMARY KEY,
  refresh_token TEXT NOT NULL,
  scope TEXT,
  status TEXT NOT NULL CHECK (status IN ('active', 'needs_reauth')),
  detail TEXT,
  updated_at INTEGER NOT NULL,
  version INTEGER NOT NULL
) STRICT;
CREATE TABLE connection_changes (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('put', 'delete')),
  version INTEGER NOT NULL,
  at INTEGER NOT NULL
) STRICT;
CREATE INDEX connection_changes_at ON connection_changes (at);
CREATE TABLE connection_tags (
  name TEXT NOT NULL COLLATE BINARY,
  key TEXT NOT NULL COLLATE BINARY,
  value TEXT NOT NULL COLLATE BINARY,
  PRIMARY KEY (name, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX connection_tags_match ON connection_tags (key, value, name);
INSERT INTO connection_tags (name, key, value) SELECT c.name, t.key, t.value FROM connections c, json_each(c.tags) t`
  },
  {
    version: 3,
    name: "webhook outbox",
    sql: `CREATE TABLE outbox (
  id TEXT COLLATE BINARY PRIMARY KEY,
  endpoint TEXT NOT NULL,
  body TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'dead')),
  last_error TEXT,
  lease_owner TEXT,
  lease_until INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
CREATE INDEX outbox_created ON outbox (created_at)`
  },
  {
    version: 4,
    name: "grant binding",
    // Null for the grants already there: accepted once, then bound by their next write (grant-binding.ts).
    sql: "ALTER TABLE grants ADD COLUMN binding TEXT"
  }
]

export const latestVersion = migrations.at(-1)?.version ?? 0

type Row = Record<string, SQLOutputValue>

const { text, textOrNull } = Rows
const int = (r: Row, k: string): number => {
  const v = r[k]
  if (typeof v === "number") return v
  if (typeof v === "bigint") return Number(v)
  throw new TypeError(`column ${k} is not an integer`)
}
const changesOf = (r: { readonly changes: number | bigint }) => Number(r.changes)

const isErrno = (e: unknown, code: string) => e instanceof Error && "code" in e && e.code === code

const configError = (reason: string) => new ConnectionStoreError({ store: "sqlite", operation: "open", reason })

const inTransaction = <A>(db: DatabaseSync, f: () => A): A => {
  db.exec("BEGIN IMMEDIATE")
  try {
    const a = f()
    db.exec("COMMIT")
    return a
  } catch (e) {
    if (db.isTransaction) db.exec("ROLLBACK")
    throw e
  }
}

/** Creates the directory (0700) and the file (0600) when missing, then opens it in WAL mode. */
const openDatabase = (path: string, busyTimeoutMs: number): DatabaseSync => {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  // SQLite gives the -wal and -shm files the mode of the database file.
  closeSync(openSync(path, "a", 0o600))
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs })
  try {
    db.exec("PRAGMA journal_mode = WAL")
    // FULL: a committed write (a rotated refresh token above all) survives a power loss, not only a crash of this
    // process; NORMAL would be faster and could lose the last commits.
    db.exec("PRAGMA synchronous = FULL")
    return db
  } catch (e) {
    db.close()
    throw e
  }
}

const newerThanKnown = (found: number) =>
  Rows.newerThanKnown("sqlite", found, latestVersion, "connection_store.path at another file")

const migrateDb = (db: DatabaseSync, upTo: number) =>
  inTransaction(db, () => {
    db.exec(
      "CREATE TABLE IF NOT EXISTS tessera_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT"
    )
    const from = int(db.prepare("SELECT coalesce(max(version), 0) AS v FROM tessera_migrations").get() ?? {}, "v")
    if (from > latestVersion) throw newerThanKnown(from)
    const record = db.prepare("INSERT INTO tessera_migrations (version, name, applied_at) VALUES (?, ?, ?)")
    for (const m of migrations) {
      if (m.version <= from || m.version > upTo) continue
      db.exec(m.sql)
      record.run(m.version, m.name, Date.now())
    }
    return { from, to: Math.max(from, Math.min(upTo, latestVersion)) }
  })

const failWith = (operation: string, where: string, connection?: string) => (e: unknown) =>
  e instanceof ConnectionStoreError
    ? e
    : new ConnectionStoreError({
        store: "sqlite",
        operation,
        reason: `${where}: ${Rows.reasonOf(e)}`,
        ...(connection === undefined ? {} : { connection })
      })

/** Brings the file at `path` to schema version `upTo` (default: the latest) and closes it; for tools and tests.
 *  Returns the version found and the version reached. */
export const migrate = (opts: {
  readonly path?: string | undefined
  readonly upTo?: number | undefined
  readonly busyTimeoutMs?: number | undefined
}): Effect.Effect<{ readonly from: number; readonly to: number }, ConnectionStoreError> => {
  const path = opts.path ?? defaultPath()
  return Effect.try({
    try: () => {
      const db = openDatabase(path, opts.busyTimeoutMs ?? defaults.busyTimeoutMs)
      try {
        return migrateDb(db, opts.upTo ?? latestVersion)
      } finally {
        db.close()
      }
    },
    catch: failWith("migrate", path)
  })
}

/** The key file beside the database: read it, or create it atomically (temp file, then a hard link that fails
 *  when another process linked its key first, whose key is then read). */
const keyFileKey = (keyFile: string): Buffer => {
  const read = () => {
    const k = parseKey(readFileSync(keyFile, "utf8"))
    if (!k)
      throw configError(
        `key file ${keyFile} holds no key (32 bytes as base64 or 64 hex digits); restore it from a backup, ` +
          `or give ${Rows.keySetting}`
      )
    return k
  }
  try {
    return read()
  } catch (e) {
    if (!isErrno(e, "ENOENT")) throw e
  }
  const tmp = `${keyFile}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
  const fd = openSync(tmp, "wx", 0o600)
  try {
    writeSync(fd, `${randomBytes(32).toString("base64")}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(tmp, keyFile)
  } catch (e) {
    if (!isErrno(e, "EEXIST")) throw e
  } finally {
    unlinkSync(tmp)
  }
  return read()
}

const keyRing = (opts: SqliteOptions, path: string): KeyRing => {
  if (opts.encryptionKeys && opts.encryptionKeys.length > 0) {
    const r = Rows.ringFrom(opts.encryptionKeys)
    if (typeof r === "string") throw configError(r)
    return r
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
  return ring([keyFileKey(`${path}.key`)])
}

const COLUMNS = "name, provider, inputs, secrets, tags, allow_insecure_http, created_at, updated_at, version"

const { connectionRow, grantRow } = Rows.readers({ num: int, bool: (r, k) => int(r, k) !== 0 })

const statements = (db: DatabaseSync) => ({
  get: db.prepare(`SELECT ${COLUMNS} FROM connections WHERE name = ?`),
  versionOf: db.prepare("SELECT created_at, version FROM connections WHERE name = ?"),
  upsert: db.prepare(
    `INSERT INTO connections (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (name) DO UPDATE SET provider = excluded.provider, inputs = excluded.inputs,
       secrets = excluded.secrets, tags = excluded.tags, allow_insecure_http = excluded.allow_insecure_http,
       updated_at = excluded.updated_at, version = excluded.version`
  ),
  deleteConnection: db.prepare("DELETE FROM connections WHERE name = ?"),
  deleteTags: db.prepare("DELETE FROM connection_tags WHERE name = ?"),
  insertTag: db.prepare("INSERT INTO connection_tags (name, key, value) VALUES (?, ?, ?)"),
  deleteGrant: db.prepare("DELETE FROM grants WHERE name = ?"),
  logChange: db.prepare("INSERT INTO connection_changes (name, kind, version, at) VALUES (?, ?, ?, ?) RETURNING seq"),
  listAll: db.prepare(`SELECT ${COLUMNS} FROM connections WHERE name > ? ORDER BY name LIMIT ?`),
  count: db.prepare("SELECT count(*) AS n FROM connections"),
  secretsPage: db.prepare("SELECT name, secrets FROM connections WHERE name > ? ORDER BY name LIMIT ?"),
  secretsOf: db.prepare("SELECT secrets FROM connections WHERE name = ?"),
  swapSecrets: db.prepare("UPDATE connections SET secrets = ? WHERE name = ? AND secrets = ?"),
  getGrant: db.prepare(
    "SELECT refresh_token, scope, status, detail, binding, updated_at, version FROM grants WHERE name = ?"
  ),
  insertGrant: db.prepare(
    `INSERT INTO grants (name, refresh_token, scope, status, detail, binding, updated_at, version)
     VALUES (?, ?, ?, ?, ?, ?, ?, 1) ON CONFLICT (name) DO NOTHING`
  ),
  updateGrant: db.prepare(
    `UPDATE grants SET refresh_token = ?, scope = ?, status = ?, detail = ?, binding = ?, updated_at = ?,
       version = version + 1 WHERE name = ? AND version = ?`
  ),
  tokensPage: db.prepare("SELECT name, refresh_token FROM grants WHERE name > ? ORDER BY name LIMIT ?"),
  tokenOf: db.prepare("SELECT refresh_token FROM grants WHERE name = ?"),
  swapToken: db.prepare("UPDATE grants SET refresh_token = ? WHERE name = ? AND refresh_token = ?"),
  maxSeq: db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM connection_changes"),
  changesAfter: db.prepare(
    "SELECT seq, name, kind, version FROM connection_changes WHERE seq > ? ORDER BY seq LIMIT ?"
  ),
  prune: db.prepare("DELETE FROM connection_changes WHERE at < ?"),
  dataVersion: db.prepare("PRAGMA data_version"),
  ping: db.prepare("SELECT 1 AS ok")
})

const OUTBOX_COLUMNS = "id, endpoint, body, created_at, attempts, next_attempt_at, last_error"

const outboxStatements = (db: DatabaseSync) => ({
  add: db.prepare(
    `INSERT INTO outbox (id, endpoint, body, created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (id) DO NOTHING`
  ),
  // One statement: the due rows are picked and leased together, so two processes never claim the same row.
  claim: db.prepare(
    `UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN (
       SELECT id FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? AND lease_until <= ?
         AND endpoint IN (SELECT value FROM json_each(?)) ORDER BY next_attempt_at, id LIMIT ?)
     RETURNING ${OUTBOX_COLUMNS}`
  ),
  complete: db.prepare("DELETE FROM outbox WHERE id = ? AND lease_owner = ?"),
  retry: db.prepare(
    `UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, status = ?, lease_owner = NULL,
       lease_until = 0 WHERE id = ? AND lease_owner = ?`
  ),
  stats: db.prepare("SELECT status, count(*) AS n FROM outbox GROUP BY status"),
  prune: db.prepare("DELETE FROM outbox WHERE created_at < ?")
})

const outboxRow = (r: Row): OutboxMessage => {
  const lastError = textOrNull(r, "last_error")
  return {
    id: text(r, "id"),
    endpoint: text(r, "endpoint"),
    body: text(r, "body"),
    createdAt: int(r, "created_at"),
    attempts: int(r, "attempts"),
    nextAttemptAt: int(r, "next_attempt_at"),
    ...(lastError === null ? {} : { lastError })
  }
}

/** The outbox on the same file: every operation one statement (or one transaction), so processes share it safely. */
const makeOutbox = (db: DatabaseSync, attempt: Attempt): OutboxShape => {
  const st = outboxStatements(db)
  const now = <A>(operation: string, f: (now: number) => A) =>
    Effect.flatMap(Clock.currentTimeMillis, (t) => attempt(operation, () => f(t)))
  return {
    add: (messages) =>
      now("outbox add", (t) =>
        inTransaction(db, () => {
          for (const m of messages) st.add.run(m.id, m.endpoint, m.body, t, t)
        })
      ),
    claim: (c) =>
      now("outbox claim", (t) =>
        st.claim
          .all(c.owner, t + c.leaseMs, t, t, JSON.stringify(c.endpoints), c.limit)
          .map(outboxRow)
          .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || (a.id < b.id ? -1 : 1))
      ),
    complete: (id, owner) => attempt("outbox complete", () => changesOf(st.complete.run(id, owner)) === 1),
    retry: (id, owner, a) =>
      attempt(
        "outbox retry",
        () => changesOf(st.retry.run(a.nextAttemptAt, a.error, a.dead ? "dead" : "pending", id, owner)) === 1
      ),
    stats: () =>
      attempt("outbox stats", () => {
        const by = new Map(st.stats.all().map((r) => [text(r, "status"), int(r, "n")] as const))
        return { pending: by.get("pending") ?? 0, dead: by.get("dead") ?? 0 }
      }),
    prune: (before) => attempt("outbox prune", () => changesOf(st.prune.run(before)))
  }
}

/** The tag filter, driven by the first tag's index range in name order; one statement per number of tags. */
const tagQuery = (db: DatabaseSync, cache: Map<number, StatementSync>, n: number): StatementSync => {
  const cached = cache.get(n)
  if (cached) return cached
  const more = Array.from(
    { length: n - 1 },
    () => "AND EXISTS (SELECT 1 FROM connection_tags t WHERE t.name = c.name AND t.key = ? AND t.value = ?)"
  ).join(" ")
  const s = db.prepare(
    `SELECT ${COLUMNS.split(", ")
      .map((col) => `c.${col}`)
      .join(", ")} FROM connection_tags t0 JOIN connections c ON c.name = t0.name
     WHERE t0.key = ? AND t0.value = ? AND t0.name > ? ${more} ORDER BY t0.name LIMIT ?`
  )
  cache.set(n, s)
  return s
}

const PAGE = 200
/** A row changed by someone else between read and swap this many times in a row is reported, not retried. */
const SWAP_TRIES = 10

interface Opened {
  readonly store: ConnectionStoreShape
  readonly close: () => void
}

type Statements = ReturnType<typeof statements>

/** Other processes' changes, polled from the change log while anyone here subscribes, and this instance's own
 *  writes told at once. Writes are serialized by SQLite, so seqs are taken in commit order: an own write whose
 *  seq follows the cursor means nothing else is pending; otherwise the poll skips it when it gets there. */
const makePoller = (st: Statements, pollMs: number) => {
  const fanout = Rows.makeFanout()
  let cursor = 0
  let lastDataVersion = -1
  let timer: ReturnType<typeof setInterval> | undefined
  const ownPending = new Set<number>()
  const poll = () => {
    try {
      const dv = int(st.dataVersion.get() ?? {}, "data_version")
      if (dv === lastDataVersion) return // nothing committed by another connection since the last look
      for (let more = true; more;) {
        const rows = st.changesAfter.all(cursor, 500)
        for (const r of rows) {
          const seq = int(r, "seq")
          cursor = Math.max(cursor, seq)
          if (ownPending.delete(seq)) continue
          const kind = text(r, "kind")
          if (Rows.isKind(kind)) fanout.emit({ name: text(r, "name"), kind, version: int(r, "version") })
        }
        more = rows.length === 500
      }
      for (const s of ownPending) if (s <= cursor) ownPending.delete(s)
      lastDataVersion = dv
    } catch {
      // Busy or closing: the next tick tries again from the same cursor.
    }
  }
  const stop = () => {
    if (timer !== undefined) clearInterval(timer)
    timer = undefined
    ownPending.clear()
  }
  return {
    subscribe: (listener: (change: Change) => void) => {
      const unsubscribe = fanout.add(listener)
      if (timer === undefined) {
        cursor = int(st.maxSeq.get() ?? {}, "seq")
        lastDataVersion = int(st.dataVersion.get() ?? {}, "data_version")
        timer = setInterval(poll, pollMs)
        timer.unref()
      }
      return () => {
        unsubscribe()
        if (fanout.size === 0) stop()
      }
    },
    afterWrite: (seq: number, change: Change) => {
      if (timer !== undefined) {
        if (seq === cursor + 1) cursor = seq
        else ownPending.add(seq)
      }
      fanout.emit(change)
    },
    stop
  }
}

type Poller = ReturnType<typeof makePoller>
type Attempt = <A>(operation: string, f: () => A, connection?: string) => Effect.Effect<A, ConnectionStoreError>

const put = (db: DatabaseSync, st: Statements, codec: Rows.Codec, poller: Poller, input: PutInput, now: number) => {
  const cols = Rows.encodeInputs(codec.keys, input)
  const { createdAt, version, seq } = inTransaction(db, () => {
    const prev = st.get.get(input.name)
    const createdAt = prev ? int(prev, "created_at") : now
    const version = prev ? int(prev, "version") + 1 : 1
    const insecure = input.allowInsecureHttp ? 1 : 0
    if (!prev || !Rows.keepsBinding(codec, connectionRow(prev), input)) st.deleteGrant.run(input.name)
    st.upsert.run(input.name, input.provider, cols.inputs, cols.secrets, cols.tags, insecure, createdAt, now, version)
    st.deleteTags.run(input.name)
    for (const [k, v] of Object.entries(input.tags)) st.insertTag.run(input.name, k, v)
    return { createdAt, version, seq: int(st.logChange.get(input.name, "put", version, now) ?? {}, "seq") }
  })
  poller.afterWrite(seq, { name: input.name, kind: "put", version })
  return { created: version === 1, record: Rows.recordOf(input, createdAt, now, version) }
}

const del = (db: DatabaseSync, st: Statements, poller: Poller, name: string, now: number) => {
  const done = inTransaction(db, () => {
    const prev = st.versionOf.get(name)
    if (!prev) return undefined
    const version = int(prev, "version")
    st.deleteConnection.run(name)
    st.deleteTags.run(name)
    st.deleteGrant.run(name)
    return { version, seq: int(st.logChange.get(name, "delete", version, now) ?? {}, "seq") }
  })
  if (!done) return false
  poller.afterWrite(done.seq, { name, kind: "delete", version: done.version })
  return true
}

const list = (
  db: DatabaseSync,
  st: Statements,
  tagQueries: Map<number, StatementSync>,
  codec: Rows.Codec,
  q: ListQuery
) => {
  const n = Rows.pageSize(q.limit)
  const after = q.after ?? ""
  const tags = Object.entries(q.tags ?? {})
  const [first, ...rest] = tags
  const rows = first
    ? tagQuery(db, tagQueries, tags.length).all(first[0], first[1], after, ...rest.flat(), n + 1)
    : st.listAll.all(after, n + 1)
  return {
    items: rows.slice(0, n).map((r) => Rows.decodeConnection(codec, "list", connectionRow(r))),
    more: rows.length > n
  }
}

/** One table's sealed column: pages of (name, value), the re-read of one row and its compare-and-swap. */
interface Sealed {
  readonly page: StatementSync
  readonly reread: StatementSync
  readonly swap: StatementSync
  readonly column: string
  readonly reseal: (name: string, current: string) => string | undefined
}

/** Compare-and-swap of one row's sealed column, re-reading when another process changed it in between. */
const swapRow = (t: Sealed, name: string, found: string): boolean => {
  let current = found
  for (let i = 0; i < SWAP_TRIES; i++) {
    const next = t.reseal(name, current)
    if (next === undefined) return false
    if (changesOf(t.swap.run(next, name, current)) === 1) return true
    const r = t.reread.get(name)
    if (!r) return false
    current = text(r, t.column)
  }
  throw new ConnectionStoreError({
    store: "sqlite",
    operation: "reencrypt",
    connection: name,
    reason: `the row changed ${SWAP_TRIES} times while it was being re-encrypted: run reencrypt again`
  })
}

/** Every row of one table, page by page in name order, each its own step (other writers go on in between). */
const reencryptTable = (attempt: Attempt, t: Sealed) =>
  Effect.gen(function* () {
    let rewritten = 0
    let total = 0
    let after = ""
    for (;;) {
      const rows = yield* attempt("reencrypt", () =>
        t.page.all(after, PAGE).map((r) => [text(r, "name"), text(r, t.column)] as const)
      )
      for (const [name, value] of rows) {
        total++
        if (yield* attempt("reencrypt", () => swapRow(t, name, value), name)) rewritten++
      }
      const last = rows.at(-1)
      if (!last || rows.length < PAGE) return { rewritten, total }
      after = last[0]
    }
  })

const reencrypt = (attempt: Attempt, st: Statements, codec: Rows.Codec) =>
  Effect.gen(function* () {
    const columns = [
      ["secrets", st.secretsPage, st.secretsOf, st.swapSecrets, Rows.resealSecrets],
      ["refresh_token", st.tokensPage, st.tokenOf, st.swapToken, Rows.resealRefreshToken]
    ] as const
    let rewritten = 0
    let total = 0
    for (const [column, page, reread, swap, reseal] of columns) {
      const n = yield* reencryptTable(attempt, {
        column,
        page,
        reread,
        swap,
        reseal: (name, cur) => reseal(codec, name, cur)
      })
      rewritten += n.rewritten
      total += n.total
    }
    return { rewritten, total }
  })

const putGrant = (
  st: Statements,
  keys: KeyRing,
  name: string,
  grant: GrantInput,
  expected: number | undefined,
  now: number
) => {
  const common: SQLInputValue[] = [...Rows.grantValues(keys, name, grant, now)]
  const r = expected === undefined ? st.insertGrant.run(name, ...common) : st.updateGrant.run(...common, name, expected)
  return changesOf(r) === 1
}

const build = (db: DatabaseSync, keys: KeyRing, path: string, opts: SqliteOptions): Opened => {
  const codec: Rows.Codec = { store: "sqlite", keys }
  const st = statements(db)
  const tagQueries = new Map<number, StatementSync>()
  const retentionMs = opts.changeRetentionMs ?? defaults.changeRetentionMs
  const attempt: Attempt = (operation, f, connection) =>
    Effect.try({ try: f, catch: failWith(operation, path, connection) })
  const timed = <A>(operation: string, connection: string, f: (now: number) => A) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => attempt(operation, () => f(now), connection))
  const poller = makePoller(st, opts.pollIntervalMs ?? defaults.pollIntervalMs)
  const prune = () => {
    try {
      st.prune.run(Date.now() - retentionMs)
    } catch {
      // Busy: the next round prunes.
    }
  }
  prune()
  const pruner = setInterval(prune, Math.min(retentionMs, 60_000))
  pruner.unref()

  const store: ConnectionStoreShape = {
    kind: "sqlite",
    describe: `sqlite ${path}`,
    get: (name) =>
      attempt(
        "get",
        () => {
          const r = st.get.get(name)
          return r ? Rows.decodeConnection(codec, "get", connectionRow(r)) : undefined
        },
        name
      ),
    put: (input) => timed("put", input.name, (now) => put(db, st, codec, poller, input, now)),
    delete: (name) => timed("delete", name, (now) => del(db, st, poller, name, now)),
    list: (q) => attempt("list", () => list(db, st, tagQueries, codec, q)),
    count: () => attempt("count", () => int(st.count.get() ?? {}, "n")),
    reencrypt: () => reencrypt(attempt, st, codec),
    getGrant: (name) =>
      attempt(
        "get grant",
        () => {
          const r = st.getGrant.get(name)
          return r ? Rows.decodeGrant(codec, "get grant", name, grantRow(r)) : undefined
        },
        name
      ),
    putGrant: (name, grant, expected) =>
      timed("put grant", name, (now) => putGrant(st, keys, name, grant, expected, now)),
    subscribe: (listener) => (db.isOpen ? poller.subscribe(listener) : () => undefined),
    health: () =>
      attempt("health", () => st.ping.get()).pipe(
        Effect.as({ status: "ok" as const, detail: `sqlite ${path}` }),
        Effect.catch((e) => Effect.succeed({ status: "down" as const, detail: `sqlite ${e.reason}` }))
      ),
    outbox: makeOutbox(db, attempt)
  }
  return {
    store,
    close: () => {
      poller.stop()
      clearInterval(pruner)
      if (db.isOpen) db.close()
    }
  }
}

/** Opens (creating when missing) and migrates the database; it closes with the scope. */
export const make = (
  opts: SqliteOptions = {}
): Effect.Effect<ConnectionStoreShape, ConnectionStoreError, Scope.Scope> => {
  const path = opts.path ?? defaultPath()
  return Effect.map(
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          const keys = keyRing(opts, path)
          const db = openDatabase(path, opts.busyTimeoutMs ?? defaults.busyTimeoutMs)
          try {
            migrateDb(db, latestVersion)
            return build(db, keys, path, opts)
          } catch (e) {
            db.close()
            throw e
          }
        },
        catch: failWith("open", path)
      }),
      (opened) => Effect.sync(opened.close)
    ),
    (opened) => opened.store
  )
}

/** `make` as the ConnectionStore; the database closes when the layer is released. */
export const layer = (opts: SqliteOptions = {}): Layer.Layer<ConnectionStore, ConnectionStoreError> =>
  Layer.effect(ConnectionStore, make(opts))
