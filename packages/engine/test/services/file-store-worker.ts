/** A separate process using a file store shared with other processes. argv: cache dir, then either token URL,
 *  client id and client secret (gets one token through the engine and prints it: the cross-process single-flight
 *  test), or `--seal <key>` (opens the store, writes one entry and prints "sealed": the first-run key race test). */
import { Effect, Redacted, References } from "effect"
import * as Config from "../../src/config.ts"
import * as Engine from "../../src/engine.ts"
import * as Http from "../../src/http.ts"
import * as FileStore from "../../src/file-store.ts"

const [dir, a, b, c] = process.argv.slice(2)
const quiet = <X, E>(eff: Effect.Effect<X, E>) => eff.pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))
const store = await Effect.runPromise(quiet(FileStore.makeFile({ dir })))
if (a === "--seal") {
  const token = {
    v: 1 as const,
    access_token: `at-${b}`,
    token_type: "Bearer",
    expires_at: 2e12,
    obtained_at: 1e12,
    expiry_source: "expires_in" as const
  }
  await Effect.runPromise(quiet(store.set(b!, { connection: b!, provider: "p", token })))
  process.stdout.write("sealed\n")
} else {
  const config = await Effect.runPromise(
    Config.fromObject({
      connections: { api: { provider: "oauth2", inputs: { token_url: a!, client_id: b!, client_secret: c! } } }
    })
  )
  const engine = Effect.runSync(Engine.make(config, store).pipe(Effect.provide(Http.layer)))
  // Quiet, as Runtime.layer makes library use: stdout carries only the token.
  const r = await Effect.runPromise(quiet(engine.getToken("api")))
  process.stdout.write(`${Redacted.value(r.accessToken)}\n`)
}
