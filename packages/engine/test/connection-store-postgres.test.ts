/** The PostgreSQL connection store: the shared contract on a real server (a schema of its own per test, dropped
 *  after), plus what only PostgreSQL shows: secrets absent from a pg_dump, required keys, the URL's password kept out
 *  of every message, migrations from empty, from the previous version, against a newer schema and by three
 *  instances at once, and the change listener catching up after its connection was killed. */
import { Redacted } from "effect"
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { afterEach, expect, it } from "vitest"
import { ConnectionStoreError } from "../src/connection-store.ts"
import * as Postgres from "../src/connection-store-postgres.ts"
import { parseKey, seal } from "../src/secret-box.ts"
import { runConnectionStoreSuite } from "./connection-store.case.ts"
import {
  eventually,
  failure,
  leaks,
  makeOpener,
  newKey,
  newSecret,
  recorder,
  redactAll,
  run,
  sleep
} from "./services/connection-stores.ts"
import { databaseUrl, describePostgres, dropSchemas, rawClient, uniqueSchema } from "./services/postgres-available.ts"

const opener = makeOpener()
const schemas: string[] = []
const freshSchema = () => {
  const s = uniqueSchema()
  schemas.push(s)
  return s
}
const cleanup = async () => {
  await opener.closeAll()
  await dropSchemas(schemas.splice(0))
}

const openIn = (schema: string, keys: ReadonlyArray<string>, more: Partial<Postgres.PostgresOptions> = {}) =>
  opener.open(
    Postgres.layer({ url: Redacted.make(databaseUrl), encryptionKeys: redactAll(keys), schema, poolSize: 8, ...more })
  )

const openError = (opts: Postgres.PostgresOptions) =>
  opener.open(Postgres.layer(opts)).then(
    () => undefined,
    (e: unknown) => e
  )

const query = async (text: string, values: unknown[] = []) => {
  const c = await rawClient()
  try {
    return (await c.query<Record<string, unknown>>(text, values)).rows
  } finally {
    await c.end()
  }
}

const migrated = async (schema: string) =>
  (await query(`SELECT version FROM "${schema}".tessera_migrations ORDER BY version`)).map((r) => r["version"])

const tablesIn = async (schema: string) =>
  (await query("SELECT tablename FROM pg_tables WHERE schemaname = $1 ORDER BY tablename", [schema])).map(
    (r) => r["tablename"]
  )

describePostgres("postgres connection store", () => {
  runConnectionStoreSuite({
    name: "postgres",
    durable: true,
    fresh: async () => {
      const schema = freshSchema()
      const key = newKey()
      return {
        open: (keys) => openIn(schema, keys ?? [key]),
        closeInstances: async () => void (await opener.closeAll())
      }
    },
    cleanup
  })

  afterEach(cleanup)

  it("keeps no secret in a pg_dump of its schema, in plain, hex or base64", async () => {
    const schema = freshSchema()
    const key = newKey()
    const store = await openIn(schema, [key])
    const secrets = [newSecret("client-secret"), newSecret("api-key"), newSecret("refresh")]
    const marker = newSecret("clear-input")
    await run(
      store.put({
        name: "crm",
        provider: "crm-com",
        inputs: [
          { name: "base_url", value: marker, secret: false },
          { name: "api_key", value: secrets[0]!, secret: true },
          { name: "pass_code", value: secrets[1]!, secret: true }
        ],
        tags: { tenant: "acme" }
      })
    )
    await run(store.putGrant("crm", { refreshToken: Redacted.make(secrets[2]!), status: "active" }, undefined))
    const { stdout } = await promisify(execFile)(
      "/usr/bin/pg_dump",
      [`--dbname=${databaseUrl}`, `--schema=${schema}`],
      {
        maxBuffer: 64 * 1024 * 1024
      }
    )
    expect(stdout).toContain(marker) // the dump holds the rows the store wrote
    expect(stdout).toContain("connection_changes")
    expect(leaks(stdout, [...secrets, key])).toEqual([])
  })

  it("requires encryption keys, saying which setting and how to make one", async () => {
    for (const encryptionKeys of [undefined, []]) {
      const e = await openError({ url: databaseUrl, encryptionKeys, schema: freshSchema() })
      expect(e).toBeInstanceOf(ConnectionStoreError)
      const msg = e instanceof Error ? e.message : ""
      expect(msg).toContain("connection_store.encryption_keys is required")
      expect(msg).toContain("openssl rand -base64 32")
    }
    const noUrl = await openError({ url: undefined, encryptionKeys: redactAll([newKey()]) })
    expect(noUrl instanceof Error ? noUrl.message : "").toContain("connection_store.url is required")
    const badSchema = await openError({ url: databaseUrl, encryptionKeys: redactAll([newKey()]), schema: 'x"; drop' })
    expect(badSchema instanceof Error ? badSchema.message : "").toContain("connection_store.schema must be")
  })

  it("keeps the URL's password out of describe, health and errors", async () => {
    const password = newSecret("pg-password")
    const withPassword = (host: string) =>
      databaseUrl.replace("postgres@", `postgres:${password}@`).replace("127.0.0.1:5432", host)
    // Trust authentication accepts any password, so the store opens with it.
    const schema = freshSchema()
    const store = await opener.open(
      Postgres.layer({
        url: Redacted.make(withPassword("127.0.0.1:5432")),
        encryptionKeys: redactAll([newKey()]),
        schema
      })
    )
    expect(store.describe).toBe(`postgres 127.0.0.1:5432/test (schema ${schema})`)
    expect(JSON.stringify(await run(store.health()))).not.toContain(password)
    await query(`INSERT INTO "${schema}".tessera_migrations (version, name) VALUES (99, 'future')`)
    const newer = await openError({
      url: withPassword("127.0.0.1:5432"),
      encryptionKeys: redactAll([newKey()]),
      schema
    })
    const down = await openError({
      url: withPassword("127.0.0.1:1"),
      encryptionKeys: redactAll([newKey()]),
      schema,
      connectTimeoutMs: 500
    })
    const bad = await openError({ url: `postgres://u:${password}@[bad`, encryptionKeys: redactAll([newKey()]) })
    for (const e of [newer, down, bad]) {
      expect(e).toBeInstanceOf(ConnectionStoreError)
      expect(`${JSON.stringify(e)} ${e instanceof Error ? `${e.message} ${e.stack}` : ""}`).not.toContain(password)
    }
    expect(newer instanceof Error ? newer.message : "").toContain("schema version 99")
    expect(down instanceof Error ? down.message : "").toContain("127.0.0.1:1/test")
  })

  it("migrates an empty schema (creating it) to the latest version once", async () => {
    const schema = freshSchema()
    expect(await run(Postgres.migrate({ url: databaseUrl, schema }))).toEqual({ from: 0, to: 4 })
    expect(Postgres.latestVersion).toBe(4)
    expect(await migrated(schema)).toEqual([1, 2, 3, 4])
    expect(await tablesIn(schema)).toEqual([
      "connection_changes",
      "connections",
      "grants",
      "outbox",
      "tessera_migrations"
    ])
    await openIn(schema, [newKey()])
    await opener.closeAll()
    expect(await migrated(schema)).toEqual([1, 2, 3, 4])
    expect(await run(Postgres.migrate({ url: databaseUrl, schema }))).toEqual({ from: 4, to: 4 })
  })

  it("lets three instances migrate the same empty schema at once", async () => {
    const schema = freshSchema()
    const key = newKey()
    const stores = await Promise.all([openIn(schema, [key]), openIn(schema, [key]), openIn(schema, [key])])
    expect(await migrated(schema)).toEqual([1, 2, 3, 4])
    await Promise.all(
      stores.map((s, i) => run(s.put({ name: `i${i}`, provider: "p", inputs: [], tags: { by: String(i) } })))
    )
    expect(await run(stores[0]!.count())).toBe(3)
  })

  it("migrates a schema from version 1, keeping its connections readable and filterable by tag", async () => {
    const schema = freshSchema()
    expect(await run(Postgres.migrate({ url: databaseUrl, schema, upTo: 1 }))).toEqual({ from: 0, to: 1 })
    expect(await tablesIn(schema)).toEqual(["connections", "tessera_migrations"])
    const key = newKey()
    const secret = newSecret("v1")
    const sealed = seal(parseKey(key)!, secret, "tessera/connection/old-1/client_secret")
    // What version-1 code wrote: the columns of migration 1 only.
    const insert = `INSERT INTO "${schema}".connections
      (name, provider, inputs, secrets, tags, allow_insecure_http, created_at, updated_at, version)
      VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8, $9)`
    await query(insert, [
      "old-1",
      "oauth2",
      '{"client_id":"c1"}',
      JSON.stringify({ client_secret: sealed }),
      '{"tenant":"acme","tier":"gold"}',
      false,
      1000,
      2000,
      3
    ])
    await query(insert, [
      "old-2",
      "dvinci",
      '{"base_url":"https://x.example"}',
      "{}",
      '{"tenant":"beta"}',
      true,
      1000,
      1000,
      1
    ])

    const store = await openIn(schema, [key])
    expect(await migrated(schema)).toEqual([1, 2, 3, 4])
    const got = await run(store.get("old-1"))
    expect(got?.version).toBe(3)
    expect(got?.createdAt).toBe(1000)
    expect(got?.updatedAt).toBe(2000)
    expect(got?.inputs.get("client_id")).toBe("c1")
    expect(got && Redacted.value(got.inputs.get("client_secret") as Redacted.Redacted<string>)).toBe(secret)
    expect((await run(store.get("old-2")))?.allowInsecureHttp).toBe(true)
    const byTag = await run(store.list({ tags: { tenant: "acme", tier: "gold" }, limit: 10 }))
    expect(byTag.items.map((r) => r.name)).toEqual(["old-1"])
    expect(await run(store.putGrant("old-1", { refreshToken: Redacted.make("rt"), status: "active" }, undefined))).toBe(
      true
    )
    const r = recorder(store)
    expect((await run(store.put({ name: "old-1", provider: "oauth2", inputs: [], tags: {} }))).record.version).toBe(4)
    expect(r.seen).toEqual([{ name: "old-1", kind: "put", version: 4 }])
  })

  it("migrates a schema from version 2 to the outbox, keeping its connections and grants", async () => {
    const schema = freshSchema()
    const key = newKey()
    expect(await run(Postgres.migrate({ url: databaseUrl, schema, upTo: 2 }))).toEqual({ from: 0, to: 2 })
    expect(await tablesIn(schema)).not.toContain("outbox")
    await query(
      `INSERT INTO "${schema}".connections (name, provider, inputs, secrets, tags, allow_insecure_http, created_at, updated_at, version)
       VALUES ('kept', 'oauth2', '{}'::jsonb, '{}'::jsonb, '{"tenant":"acme"}'::jsonb, false, 1000, 1000, 1)`
    )
    const store = await openIn(schema, [key])
    expect(await migrated(schema)).toEqual([1, 2, 3, 4])
    expect((await run(store.get("kept")))?.tags).toEqual({ tenant: "acme" })
    await run(store.outbox.add([{ id: "msg_1", endpoint: "ep", body: "{}" }]))
    expect(await run(store.outbox.stats())).toEqual({ pending: 1, dead: 0 })
  })

  it("refuses a schema at a newer version than it knows, and changes nothing in it", async () => {
    const schema = freshSchema()
    await query(`CREATE SCHEMA "${schema}"`)
    await query(
      `CREATE TABLE "${schema}".tessera_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`
    )
    await query(`INSERT INTO "${schema}".tessera_migrations (version, name) VALUES (7, 'from the future')`)
    const e = await openError({ url: databaseUrl, encryptionKeys: redactAll([newKey()]), schema })
    expect(e).toBeInstanceOf(ConnectionStoreError)
    const msg = e instanceof Error ? e.message : ""
    expect(msg).toContain("schema version 7")
    expect(msg).toContain("knows (4)")
    expect(await tablesIn(schema)).toEqual(["tessera_migrations"])
    expect((await failure(Postgres.migrate({ url: databaseUrl, schema }))).reason).toContain("schema version 7")
  })

  it("catches up a change that took a lower seq but committed while the listener was away", async () => {
    const schema = freshSchema()
    const key = newKey()
    const writer = await openIn(schema, [key])
    const reader = await openIn(schema, [key], { reconnectMinMs: 500, reconnectMaxMs: 1000 })
    const r = recorder(reader)
    // A slow writer: its change-log row (and so its seq) is taken now, its commit comes later.
    const slow = await rawClient()
    try {
      await slow.query("BEGIN")
      await slow.query(
        `INSERT INTO "${schema}".connections (name, provider, inputs, secrets, tags, created_at, updated_at, version)
         VALUES ('slow', 'p', '{}', '{}', '{}', 1, 1, 1)`
      )
      await slow.query(`INSERT INTO "${schema}".connection_changes (name, kind, version) VALUES ('slow', 'put', 1)`)
      await run(writer.put({ name: "fast", provider: "p", inputs: [], tags: {} }))
      expect(await eventually(() => r.seen.length === 1, 1000)).toBe(true)
      await query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND query = $2", [
        "tessera connection listener",
        `LISTEN "${Postgres.channelFor(schema)}"`
      ])
      await slow.query("COMMIT")
    } finally {
      await slow.end()
    }
    expect(await eventually(() => r.seen.length === 2, 3000)).toBe(true)
    await sleep(300)
    expect(r.seen).toEqual([
      { name: "fast", kind: "put", version: 1 },
      { name: "slow", kind: "put", version: 1 }
    ])
  })

  it("catches up from the change log after its listener connection was killed", async () => {
    const schema = freshSchema()
    const key = newKey()
    const writer = await openIn(schema, [key])
    const reader = await openIn(schema, [key], { reconnectMinMs: 500, reconnectMaxMs: 1000 })
    const r = recorder(reader)
    await run(writer.put({ name: "before", provider: "p", inputs: [], tags: {} }))
    expect(await eventually(() => r.seen.length === 1, 1000)).toBe(true)
    const channel = Postgres.channelFor(schema)
    const killed = await query(
      "SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE application_name = $1 AND query = $2",
      ["tessera connection listener", `LISTEN "${channel}"`]
    )
    expect(killed.length).toBeGreaterThan(0)
    // Written while the reader is away (its first retry waits at least 400 ms): only the log has these.
    await run(writer.put({ name: "while-away", provider: "p", inputs: [], tags: {} }))
    await run(writer.delete("before"))
    expect((await run(reader.health())).detail).toContain("change listener reconnecting")
    expect(await eventually(() => r.seen.length === 3, 3000)).toBe(true)
    await run(writer.put({ name: "after", provider: "p", inputs: [], tags: {} }))
    expect(await eventually(() => r.seen.length === 4, 1000)).toBe(true)
    await sleep(300)
    expect(r.seen).toEqual([
      { name: "before", kind: "put", version: 1 },
      { name: "while-away", kind: "put", version: 1 },
      { name: "before", kind: "delete", version: 1 },
      { name: "after", kind: "put", version: 1 }
    ])
    expect((await run(reader.health())).detail).not.toContain("reconnecting")
  })
})
