/** A separate process that gets one token through a file store shared with other processes (for the
 *  cross-process single-flight test). argv: cache dir, token URL, client id, client secret. Prints the token. */
import { Effect, Redacted, References } from "effect"
import * as Config from "../../src/config.ts"
import * as Engine from "../../src/engine.ts"
import * as FileStore from "../../src/file-store.ts"

const [dir, tokenUrl, clientId, clientSecret] = process.argv.slice(2)
const config = await Effect.runPromise(
  Config.fromObject({
    connections: {
      api: { provider: "oauth2", inputs: { token_url: tokenUrl!, client_id: clientId!, client_secret: clientSecret! } }
    }
  })
)
const store = await Effect.runPromise(FileStore.makeFile({ dir }))
const engine = Engine.make(config, store)
// Quiet, as Runtime.layer makes library use: stdout carries only the token.
const r = await Effect.runPromise(
  engine.getToken("api").pipe(Effect.provideService(References.MinimumLogLevel, "Warn"))
)
process.stdout.write(`${Redacted.value(r.accessToken)}\n`)
