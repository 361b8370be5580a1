/** Where the connection stores are loaded from: SQLite with the main entry, PostgreSQL only through
 *  "@tessera/engine/postgres", so a process that never uses PostgreSQL (the CLI on its SQLite file) never loads
 *  the `pg` client. Checked in a fresh process, whose module cache holds only what its imports loaded. */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { expect, it } from "vitest"

const probe = `
import { createRequire } from "node:module"
const require = createRequire(import.meta.url)
const pgLoaded = () => Object.keys(require.cache).some((k) => /[\\\\/]node_modules[\\\\/]pg[\\\\/]/.test(k))
const engine = await import("@tessera/engine")
const withMain = pgLoaded()
const postgres = await import("@tessera/engine/postgres")
console.log(JSON.stringify({
  withMain,
  withSubpath: pgLoaded(),
  sqlite: typeof engine.ConnectionStoreSqlite.make,
  postgres: typeof postgres.ConnectionStorePostgres.make
}))
`

it("loads the pg client only through @tessera/engine/postgres", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", probe], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    timeout: 20_000
  })
  expect(JSON.parse(stdout)).toEqual({ withMain: false, withSubpath: true, sqlite: "function", postgres: "function" })
})
