/** A process that writes to a connection store without pause until it is killed, for the crash-consistency test.
 *  argv: kind ("sqlite" | "postgres"), where (a file path, or a URL), schema (postgres; "-" for sqlite), mode:
 *  - "put": replaces connections c0..c9 in turn; every input of a write carries the same generation number;
 *  - "grant": rotates the grant of g0 with compare-and-set, the refresh token carrying its version;
 *  - "reencrypt": rewrites every secret under the first key (TESSERA_TEST_KEYS lists [new, old]).
 *  Keys come from TESSERA_TEST_KEYS (comma-separated). Prints "ready" once the store is open. */
import { Effect, Redacted } from "effect"
import * as Postgres from "../../src/connection-store-postgres.ts"
import * as Sqlite from "../../src/connection-store-sqlite.ts"
import type { ConnectionStoreShape } from "../../src/connection-store.ts"
import { inputsFor } from "./crash-data.ts"

const [kind, where, schema, mode] = process.argv.slice(2)
const keys = (process.env["TESSERA_TEST_KEYS"] ?? "").split(",").map((k) => Redacted.make(k))

const open = (): Effect.Effect<ConnectionStoreShape, unknown, import("effect").Scope.Scope> =>
  kind === "sqlite"
    ? Sqlite.make({ path: where, encryptionKeys: keys })
    : Postgres.make({ url: where, encryptionKeys: keys, schema })

const loop = (store: ConnectionStoreShape): Effect.Effect<void, unknown> =>
  Effect.gen(function* () {
    if (mode === "reencrypt") {
      for (;;) yield* store.reencrypt()
    }
    if (mode === "grant") {
      for (;;) {
        const g = yield* store.getGrant("g0")
        const next = (g?.version ?? 0) + 1
        yield* store.putGrant("g0", { refreshToken: Redacted.make(`refresh-${next}`), status: "active" }, g?.version)
      }
    }
    for (let generation = 1; ; generation++) {
      yield* store.put({
        name: `c${generation % 10}`,
        provider: "oauth2",
        inputs: inputsFor(generation),
        tags: { generation: String(generation) }
      })
    }
  })

await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* open()
      process.stdout.write("ready\n")
      yield* loop(store)
    })
  )
)
