/** A process that marks an owner alive in a PostgreSQL connection store and then only waits, for the liveness tests
 *  to SIGKILL. argv: url, schema, owner. Prints "held" (or "not held") once the store is open and the mark taken. */
import { Effect, Redacted } from "effect"
import * as Postgres from "../../src/connection-store-postgres.ts"

const [url, schema, owner] = process.argv.slice(2)
const keys = (process.env["TESSERA_TEST_KEYS"] ?? "").split(",").map((k) => Redacted.make(k))

// Kept alive as a server is by its listener (the store's reconnect timers do not hold a process).
setInterval(() => undefined, 60_000)

await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Postgres.make({ url: url!, encryptionKeys: keys, schema })
      const held = yield* store.liveness!.register(owner!)
      process.stdout.write(held ? "held\n" : "not held\n")
      yield* Effect.never
    })
  )
)
