/** A separate process that opens a SQLite connection store (running its migrations) and puts one connection, as
 *  a CLI would beside a running server. argv: database path, connection name, secret value. Keys come from
 *  TESSERA_TEST_KEYS (comma-separated; none: the key file). Prints "ok" when the write committed. */
import { Effect, Redacted } from "effect"
import * as Sqlite from "../../src/connection-store-sqlite.ts"

const [path, name, secret] = process.argv.slice(2)
const keys = (process.env["TESSERA_TEST_KEYS"] ?? "").split(",").filter((k) => k !== "")
await Effect.runPromise(
  Effect.scoped(
    Effect.gen(function* () {
      const store = yield* Sqlite.make({ path, encryptionKeys: keys.map((k) => Redacted.make(k)) })
      yield* store.put({
        name: name!,
        provider: "oauth2",
        inputs: [{ name: "client_secret", value: secret!, secret: true }],
        tags: { writer: String(process.pid) }
      })
    })
  )
)
process.stdout.write("ok\n")
