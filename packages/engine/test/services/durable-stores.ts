/** The two durable connection stores the grant tests run on, SQLite and PostgreSQL: one file or schema per test
 *  (shared by every engine the test opens over it, as instances and restarts share them), the same key, and the
 *  clean-up after the test; and `need`, the SKIP rule for a server that is down (a failure under CI=true). */
import { type Layer, Redacted } from "effect"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { ConnectionStore, ConnectionStoreError } from "../../src/connection-store.ts"
import * as Postgres from "../../src/connection-store-postgres.ts"
import * as Sqlite from "../../src/connection-store-sqlite.ts"
import { newKey, redactAll } from "./connection-stores.ts"
import { databaseUrl, dropSchemas, postgresUp, uniqueSchema } from "./postgres-available.ts"

export interface DurableStore {
  readonly up: boolean
  readonly make: () => Layer.Layer<ConnectionStore, ConnectionStoreError>
}

/** `tmpPrefix` names the SQLite files' directories. `file()` and `schema()`: the current test's, once made. */
export const durableStores = (tmpPrefix: string) => {
  const dirs: string[] = []
  const schemas: string[] = []
  const keys = [newKey()]
  const stores: Record<"sqlite" | "postgres", DurableStore> = {
    sqlite: {
      up: true,
      make: () => {
        if (dirs.length === 0) dirs.push(mkdtempSync(join(tmpdir(), tmpPrefix)))
        return Sqlite.layer({ path: join(dirs[0]!, "connections.db"), encryptionKeys: redactAll(keys) })
      }
    },
    postgres: {
      up: postgresUp,
      make: () => {
        if (schemas.length === 0) schemas.push(uniqueSchema())
        return Postgres.layer({ url: Redacted.make(databaseUrl), encryptionKeys: redactAll(keys), schema: schemas[0]! })
      }
    }
  }
  return {
    stores,
    file: () => join(dirs[0]!, "connections.db"),
    schema: () => schemas[0]!,
    cleanup: async () => {
      for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
      await dropSchemas(schemas.splice(0))
    }
  }
}

/** Whether a test's server is up; a SKIP line naming `test` when it is not, and a failure under CI=true. */
export const need = (test: string) => (up: boolean, what: string) => {
  if (up) return true
  if (process.env["CI"] === "true") throw new Error(`${what} is needed on CI`)
  console.log(`SKIP ${test}: no ${what}`)
  return false
}
