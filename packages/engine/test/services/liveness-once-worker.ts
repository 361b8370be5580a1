/** A process with nothing of its own to keep it running (a script using the library, say): opens a PostgreSQL
 *  connection store, never closes it, marks an owner alive as a rotation's claim does, prints "held" (or "not held")
 *  and returns. argv: url, schema, owner. It must print, then exit of itself. */
import { Effect, Redacted, Scope } from "effect"
import * as Postgres from "../../src/connection-store-postgres.ts"

const [url, schema, owner] = process.argv.slice(2)
const keys = (process.env["TESSERA_TEST_KEYS"] ?? "").split(",").map((k) => Redacted.make(k))

const scope = Effect.runSync(Scope.make())
const store = await Effect.runPromise(Scope.provide(Postgres.make({ url: url!, encryptionKeys: keys, schema }), scope))
const held = await Effect.runPromise(store.liveness!.register(owner!))
process.stdout.write(held ? "held\n" : "not held\n")
