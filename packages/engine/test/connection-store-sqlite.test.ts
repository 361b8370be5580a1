/** The SQLite connection store: the shared contract on a real file, plus what only the file shows: secrets absent
 *  from its bytes (WAL and SHM included), file modes, the key file two first runs agree on, migrations from empty,
 *  from the previous version and against a newer file, processes starting at once, another process's write seen
 *  by a subscriber, a busy file, and the change log's pruning. */
import { Redacted } from "effect"
import { execFile } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterEach, describe, expect, it } from "vitest"
import { ConnectionStoreError } from "../src/connection-store.ts"
import * as Sqlite from "../src/connection-store-sqlite.ts"
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

const opener = makeOpener()
const dirs: string[] = []
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "tessera-connections-"))
  dirs.push(d)
  return d
}
const cleanup = async () => {
  await opener.closeAll()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

const openAt = (path: string, keys?: ReadonlyArray<string>, more: Partial<Sqlite.SqliteOptions> = {}) =>
  opener.open(Sqlite.layer({ path, encryptionKeys: keys && redactAll(keys), ...more }))

runConnectionStoreSuite({
  name: "sqlite",
  durable: true,
  fresh: async () => {
    const path = join(tempDir(), "connections.db")
    const key = newKey()
    return { open: (keys) => openAt(path, keys ?? [key]), closeInstances: async () => void (await opener.closeAll()) }
  },
  cleanup
})

const worker = fileURLToPath(new URL("./services/connection-store-worker.ts", import.meta.url))
const runWorker = (path: string, name: string, secret: string, keys: ReadonlyArray<string> = []) =>
  promisify(execFile)(process.execPath, [worker, path, name, secret], {
    timeout: 20_000,
    env: { ...process.env, TESSERA_TEST_KEYS: keys.join(",") }
  })

const raw = (path: string) => new DatabaseSync(path)
const versions = (path: string) => {
  const db = raw(path)
  try {
    return db
      .prepare("SELECT version, name, applied_at FROM tessera_migrations ORDER BY version")
      .all()
      .map((r) => r["version"])
  } finally {
    db.close()
  }
}
const tables = (path: string) => {
  const db = raw(path)
  try {
    return db
      .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
      .all()
      .map((r) => r["name"])
  } finally {
    db.close()
  }
}
const mode = (path: string) => statSync(path).mode & 0o777
const fileBytes = (path: string) =>
  Buffer.concat([path, `${path}-wal`, `${path}-shm`].filter((p) => existsSync(p)).map((p) => readFileSync(p)))

describe("sqlite connection store", () => {
  afterEach(cleanup)

  it("keeps no secret in the file, its WAL or its SHM, in plain, hex or base64", async () => {
    const path = join(tempDir(), "connections.db")
    const key = newKey()
    const store = await openAt(path, [key])
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
    const live = fileBytes(path)
    expect(live.toString("latin1")).toContain(marker) // the scan reads the rows the store wrote
    expect(leaks(live, [...secrets, key])).toEqual([])
    await opener.closeAll() // checkpoints the WAL into the file
    const closed = fileBytes(path)
    expect(closed.toString("latin1")).toContain(marker)
    expect(leaks(closed, [...secrets, key])).toEqual([])
  })

  it("creates its directory 0700, the database, WAL and SHM 0600, and a 0600 key file when given no key", async () => {
    const path = join(tempDir(), "new", "dir", "connections.db")
    const store = await openAt(path)
    await run(store.put({ name: "a", provider: "p", inputs: [{ name: "s", value: "v", secret: true }], tags: {} }))
    expect(mode(join(path, ".."))).toBe(0o700)
    for (const p of [path, `${path}-wal`, `${path}-shm`, `${path}.key`]) expect([p, mode(p)]).toEqual([p, 0o600])
    expect(parseKey(readFileSync(`${path}.key`, "utf8"))).toBeDefined()
    expect(store.describe).toBe(`sqlite ${path}`)
    await opener.closeAll()
    const again = await openAt(path)
    const got = await run(again.get("a"))
    expect(got && Redacted.value(got.inputs.get("s") as Redacted.Redacted<string>)).toBe("v")
    // Given keys always win over the key file.
    const other = await openAt(path, [newKey()])
    expect((await failure(other.get("a"))).reason).toContain("none of the configured")
  })

  it("lets three processes start at once on a new file: migrations applied once, one key file agreed on", async () => {
    const path = join(tempDir(), "connections.db")
    const secrets = [newSecret("p1"), newSecret("p2"), newSecret("p3")]
    const outs = await Promise.all(secrets.map((s, i) => runWorker(path, `proc-${i}`, s)))
    expect(outs.map((o) => o.stdout.trim())).toEqual(["ok", "ok", "ok"])
    expect(versions(path)).toEqual([1, 2, 3, 4])
    const store = await openAt(path)
    for (const [i, s] of secrets.entries()) {
      const got = await run(store.get(`proc-${i}`))
      expect(got && Redacted.value(got.inputs.get("client_secret") as Redacted.Redacted<string>)).toBe(s)
    }
    expect(existsSync(join(path, ".."))).toBe(true)
  })

  it("migrates an empty file to the latest version once", async () => {
    const path = join(tempDir(), "connections.db")
    expect(await run(Sqlite.migrate({ path }))).toEqual({ from: 0, to: Sqlite.latestVersion })
    expect(Sqlite.latestVersion).toBe(4)
    expect(versions(path)).toEqual([1, 2, 3, 4])
    expect(tables(path)).toEqual([
      "connection_changes",
      "connection_tags",
      "connections",
      "grants",
      "outbox",
      "tessera_migrations"
    ])
    await openAt(path, [newKey()])
    await opener.closeAll()
    expect(versions(path)).toEqual([1, 2, 3, 4])
    expect(await run(Sqlite.migrate({ path }))).toEqual({ from: 4, to: 4 })
  })

  it("migrates a file from version 1, keeping its connections readable, filterable by tag and subscribable", async () => {
    const path = join(tempDir(), "connections.db")
    expect(await run(Sqlite.migrate({ path, upTo: 1 }))).toEqual({ from: 0, to: 1 })
    expect(tables(path)).toEqual(["connections", "tessera_migrations"])
    const key = newKey()
    const secret = newSecret("v1")
    // What version-1 code wrote: the columns of migration 1 only.
    const db = raw(path)
    const insert = db.prepare(
      `INSERT INTO connections (name, provider, inputs, secrets, tags, allow_insecure_http, created_at, updated_at, version)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
    )
    const sealed = seal(parseKey(key)!, secret, "tessera/connection/old-1/client_secret")
    insert.run(
      "old-1",
      "oauth2",
      '{"client_id":"c1"}',
      JSON.stringify({ client_secret: sealed }),
      '{"tenant":"acme","tier":"gold"}',
      0,
      1000,
      2000,
      3
    )
    insert.run("old-2", "dvinci", '{"base_url":"https://x.example"}', "{}", '{"tenant":"beta"}', 1, 1000, 1000, 1)
    db.close()

    const store = await openAt(path, [key])
    expect(versions(path)).toEqual([1, 2, 3, 4])
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
    const replaced = await run(store.put({ name: "old-1", provider: "oauth2", inputs: [], tags: { tenant: "acme" } }))
    expect(replaced.record.version).toBe(4)
    expect(r.seen).toEqual([{ name: "old-1", kind: "put", version: 4 }])
    expect((await run(store.list({ tags: { tier: "gold" }, limit: 10 }))).items).toEqual([])
  })

  it("migrates a file from version 2 to the outbox, keeping its connections, grants and change log", async () => {
    const path = join(tempDir(), "connections.db")
    const key = newKey()
    expect(await run(Sqlite.migrate({ path, upTo: 2 }))).toEqual({ from: 0, to: 2 })
    const v2 = await openAt(path, [key])
    await run(v2.put({ name: "kept", provider: "oauth2", inputs: [], tags: { tenant: "acme" } }))
    await run(v2.putGrant("kept", { refreshToken: Redacted.make("rt-2"), status: "active" }, undefined))
    await opener.closeAll()
    // The open above migrated to the latest already; a file left at version 2 by older code:
    const db = raw(path)
    db.exec("DROP TABLE outbox")
    db.exec("ALTER TABLE grants DROP COLUMN binding")
    db.exec("DELETE FROM tessera_migrations WHERE version >= 3")
    db.close()
    expect(await run(Sqlite.migrate({ path }))).toEqual({ from: 2, to: 4 })
    const store = await openAt(path, [key])
    expect((await run(store.get("kept")))?.tags).toEqual({ tenant: "acme" })
    const g = await run(store.getGrant("kept"))
    expect(g && Redacted.value(g.refreshToken)).toBe("rt-2")
    // Written before migration 4: no binding (accepted once, bound by its next write).
    expect(g?.binding).toBeUndefined()
    await run(store.outbox.add([{ id: "msg_1", endpoint: "ep", body: "{}" }]))
    expect(await run(store.outbox.stats())).toEqual({ pending: 1, dead: 0 })
  })

  it("refuses a file at a newer schema version than it knows, and changes nothing in it", async () => {
    const path = join(tempDir(), "connections.db")
    const db = raw(path)
    db.exec(
      "CREATE TABLE tessera_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    db.exec("INSERT INTO tessera_migrations VALUES (7, 'from the future', 0)")
    db.close()
    const e = await opener.open(Sqlite.layer({ path, encryptionKeys: redactAll([newKey()]) })).then(
      () => undefined,
      (err: unknown) => err
    )
    expect(e).toBeInstanceOf(ConnectionStoreError)
    const msg = e instanceof Error ? e.message : ""
    expect(msg).toContain("schema version 7")
    expect(msg).toContain("knows (4)")
    expect(msg).toContain("upgrade tessera")
    expect(tables(path)).toEqual(["tessera_migrations"])
    expect((await failure(Sqlite.migrate({ path }))).reason).toContain("schema version 7")
  })

  it("tells a subscriber of another process's write within 1 s", async () => {
    const path = join(tempDir(), "connections.db")
    const key = newKey()
    const server = await openAt(path, [key])
    const r = recorder(server)
    const secret = newSecret("cli")
    await runWorker(path, "from-cli", secret, [key])
    expect(await eventually(() => r.seen.length > 0, 1000)).toBe(true)
    expect(r.seen).toEqual([{ name: "from-cli", kind: "put", version: 1 }])
    const got = await run(server.get("from-cli"))
    expect(got && Redacted.value(got.inputs.get("client_secret") as Redacted.Redacted<string>)).toBe(secret)
  })

  it("fails a write clearly while another process holds the file's write lock, and works once it is free", async () => {
    const path = join(tempDir(), "connections.db")
    const store = await openAt(path, [newKey()], { busyTimeoutMs: 100 })
    const other = raw(path)
    other.exec("BEGIN IMMEDIATE")
    const e = await failure(store.put({ name: "a", provider: "p", inputs: [], tags: {} }))
    expect(e).toBeInstanceOf(ConnectionStoreError)
    expect(e.message).toContain("database is locked")
    expect(e.connection).toBe("a")
    expect(await run(store.get("a"))).toBeUndefined() // reads go on under WAL
    other.exec("ROLLBACK")
    other.close()
    expect((await run(store.put({ name: "a", provider: "p", inputs: [], tags: {} }))).created).toBe(true)
  })

  it("reports a secret moved to another connection's row as damaged, naming that connection", async () => {
    const path = join(tempDir(), "connections.db")
    const store = await openAt(path, [newKey()])
    const input = (name: string) => ({
      name,
      provider: "p",
      inputs: [{ name: "client_secret", value: newSecret(name), secret: true }],
      tags: {}
    })
    await run(store.put(input("a")))
    await run(store.put(input("b")))
    const db = raw(path)
    db.exec("UPDATE connections SET secrets = (SELECT secrets FROM connections WHERE name = 'a') WHERE name = 'b'")
    db.close()
    const e = await failure(store.get("b"))
    expect(e.connection).toBe("b")
    expect(e.reason).toContain('secret input "client_secret" does not authenticate')
  })

  it("prunes the change log on start and on a schedule", async () => {
    const path = join(tempDir(), "connections.db")
    const key = newKey()
    const writer = await openAt(path, [key])
    for (const n of ["a", "b", "c"]) await run(writer.put({ name: n, provider: "p", inputs: [], tags: {} }))
    const logged = () => {
      const db = raw(path)
      try {
        return Number(db.prepare("SELECT count(*) AS n FROM connection_changes").get()?.["n"])
      } finally {
        db.close()
      }
    }
    expect(logged()).toBe(3)
    await sleep(120)
    const store = await openAt(path, [key], { changeRetentionMs: 50 })
    expect(logged()).toBe(0)
    await run(store.put({ name: "d", provider: "p", inputs: [], tags: {} }))
    expect(await eventually(() => logged() === 0, 2000, 20)).toBe(true)
  })

  it("defaults to the user data directory", () => {
    const saved = process.env["XDG_DATA_HOME"]
    try {
      process.env["XDG_DATA_HOME"] = "/srv/data"
      if (process.platform === "linux") expect(Sqlite.defaultPath()).toBe("/srv/data/tessera/connections.db")
      process.env["XDG_DATA_HOME"] = "relative/dir"
      if (process.platform === "linux")
        expect(Sqlite.defaultPath()).toMatch(/\/\.local\/share\/tessera\/connections\.db$/)
    } finally {
      if (saved === undefined) delete process.env["XDG_DATA_HOME"]
      else process.env["XDG_DATA_HOME"] = saved
    }
  })
})
