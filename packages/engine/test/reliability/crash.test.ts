/** Crash consistency of the connection store: a process writing without pause is killed with SIGKILL during a PUT,
 *  during a grant rotation and during a re-encryption. Opened again, every connection is one whole version (every
 *  input of one generation, never a mix), every secret decrypts, and a grant's refresh token is the one its version
 *  says. SQLite on a real file and PostgreSQL on a fresh schema. */
import { Effect, Redacted } from "effect"
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import * as Postgres from "../../src/connection-store-postgres.ts"
import * as Sqlite from "../../src/connection-store-sqlite.ts"
import type { ConnectionStoreShape } from "../../src/connection-store.ts"
import { newKey, redactAll } from "../services/connection-stores.ts"
import { inputsFor } from "../services/crash-data.ts"
import { databaseUrl, describePostgres, dropSchemas, uniqueSchema } from "../services/postgres-available.ts"

const worker = fileURLToPath(new URL("../services/crash-worker.ts", import.meta.url))
const rounds = process.env["TESSERA_LONG"] ? 20 : 4

interface Target {
  readonly kind: "sqlite" | "postgres"
  readonly where: string
  readonly schema: string
}

/** Runs the worker in `mode` and SIGKILLs it `afterMs` after it opened the store. */
const killDuring = (t: Target, mode: string, keys: ReadonlyArray<string>, afterMs: number): Promise<void> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [worker, t.kind, t.where, t.schema, mode], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, TESSERA_TEST_KEYS: keys.join(",") }
    })
    let stderr = ""
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    child.on("exit", (code, signal) =>
      signal === "SIGKILL" ? resolve() : reject(new Error(`worker ended on its own (${code}): ${stderr}`))
    )
    createInterface({ input: child.stdout }).on("line", (l) => {
      if (l === "ready") setTimeout(() => child.kill("SIGKILL"), afterMs)
    })
  })

const openStore = (t: Target, keys: ReadonlyArray<string>) => {
  const encryptionKeys = redactAll(keys)
  return t.kind === "sqlite"
    ? Sqlite.make({ path: t.where, encryptionKeys })
    : Postgres.make({ url: t.where, encryptionKeys, schema: t.schema })
}

const withStore = <A>(
  t: Target,
  keys: ReadonlyArray<string>,
  f: (s: ConnectionStoreShape) => Effect.Effect<A, unknown>
) => Effect.runPromise(Effect.scoped(Effect.flatMap(openStore(t, keys), f)))

/** Every stored connection is one whole generation, and its secrets decrypt. Returns how many there are. */
const checkWhole = (t: Target, keys: ReadonlyArray<string>) =>
  withStore(t, keys, (s) =>
    Effect.gen(function* () {
      const page = yield* s.list({ limit: 1000 })
      for (const r of page.items) {
        const generation = Number(r.tags["generation"])
        const expected = inputsFor(generation)
        expect(
          Object.fromEntries([...r.inputs].map(([k, v]) => [k, Redacted.isRedacted(v) ? Redacted.value(v) : v]))
        ).toEqual(Object.fromEntries(expected.map((i) => [i.name, i.value])))
      }
      return page.items.length
    })
  )

const suite = (label: string, target: () => Target) =>
  describe(label, { timeout: 180_000 }, () => {
    const k1 = newKey()
    const k2 = newKey()
    it("SIGKILL during PUTs: each connection is one whole version, and every secret decrypts", async () => {
      const t = target()
      for (let i = 0; i < rounds; i++) {
        await killDuring(t, "put", [k1], 50 + Math.floor(Math.random() * 400))
        expect(await checkWhole(t, [k1])).toBeGreaterThan(0)
      }
    })

    it("SIGKILL during grant rotations: the grant decrypts and is the version it says", async () => {
      const t = target()
      for (let i = 0; i < rounds; i++) {
        await killDuring(t, "grant", [k1], 50 + Math.floor(Math.random() * 400))
        const g = await withStore(t, [k1], (s) => s.getGrant("g0"))
        expect(g).toBeDefined()
        expect(Redacted.value(g!.refreshToken)).toBe(`refresh-${g!.version}`)
      }
    })

    it("SIGKILL during a re-encryption: everything opens under [new, old]; finished, under [new] alone", async () => {
      const t = target()
      await withStore(t, [k1], (s) =>
        Effect.forEach(
          Array.from({ length: 300 }, (_, i) => i),
          (i) =>
            s.put({
              name: `r${i}`,
              provider: "oauth2",
              inputs: inputsFor(1000 + i),
              tags: { generation: String(1000 + i) }
            }),
          { discard: true }
        )
      )
      for (let i = 0; i < rounds; i++) {
        // Everything back under k1 first, so each kill lands in a re-encryption with rows left to rewrite.
        await withStore(t, [k1, k2], (s) => s.reencrypt())
        await killDuring(t, "reencrypt", [k2, k1], 10 + Math.floor(Math.random() * 100))
        expect(await checkWhole(t, [k2, k1])).toBeGreaterThanOrEqual(300)
      }
      await withStore(t, [k2, k1], (s) => s.reencrypt())
      expect(await checkWhole(t, [k2])).toBeGreaterThanOrEqual(300)
    })
  })

const dir = mkdtempSync(join(tmpdir(), "tessera-crash-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
suite("SQLite", () => ({
  kind: "sqlite",
  where: join(dir, `crash-${Math.random().toString(36).slice(2)}.db`),
  schema: "-"
}))

const schemas: string[] = []
describePostgres("PostgreSQL crash consistency", () => {
  afterAll(() => dropSchemas(schemas))
  suite("PostgreSQL", () => {
    const schema = uniqueSchema()
    schemas.push(schema)
    return { kind: "postgres", where: databaseUrl, schema }
  })
})
