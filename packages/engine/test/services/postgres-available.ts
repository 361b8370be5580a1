/** Whether the PostgreSQL the tests use is reachable, and the SKIP rule: without one the PostgreSQL suites are
 *  skipped with a clear line, except on CI (`CI=true`), where they fail. Also what every PostgreSQL test needs: a
 *  schema of its own (dropped afterwards) and a plain client to look at raw rows. */
import { randomBytes } from "node:crypto"
import { Client } from "pg"
import { describe, it } from "vitest"

export const databaseUrl = process.env["DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/test"

const withoutPassword = (url: string) => {
  try {
    const u = new URL(url)
    if (u.password !== "") u.password = "***"
    return u.toString()
  } catch {
    return "(unparsable DATABASE_URL)"
  }
}

const reachable = async (url: string): Promise<string | undefined> => {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 1500 })
  c.on("error", () => undefined)
  try {
    await c.connect()
    await c.query("SELECT 1")
    return undefined
  } catch (e) {
    return e instanceof Error ? e.message || e.name : String(e)
  } finally {
    await c.end().catch(() => undefined)
  }
}

const unreachable: string | undefined = await reachable(databaseUrl)
export const postgresUp = unreachable === undefined

/** `describe` when PostgreSQL is up; otherwise a printed SKIP line (or, on CI, one failing test that says why). */
export const describePostgres = (name: string, body: () => void): void => {
  if (postgresUp) {
    describe(name, body)
    return
  }
  const why = `no PostgreSQL at ${withoutPassword(databaseUrl)} (${unreachable}; set DATABASE_URL)`
  if (process.env["CI"] === "true") {
    describe(name, () => {
      it("needs a reachable PostgreSQL on CI", () => {
        throw new Error(`postgres tests cannot run: ${why}`)
      })
    })
    return
  }
  console.log(`SKIP postgres tests (${name}): ${why}`)
  describe.skip(name, body)
}

/** A plain client, without tessera in between. */
export const rawClient = async (url = databaseUrl): Promise<Client> => {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 2000 })
  c.on("error", () => undefined)
  await c.connect()
  return c
}

/** A schema name no other test (or run) uses. */
export const uniqueSchema = () => `tessera_test_${randomBytes(6).toString("hex")}`

export const dropSchemas = async (schemas: ReadonlyArray<string>) => {
  if (schemas.length === 0) return
  const c = await rawClient()
  try {
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`)
  } finally {
    await c.end()
  }
}
