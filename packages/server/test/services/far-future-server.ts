/** A server in its own process whose token store holds a token that expires past the largest date JavaScript can
 *  format (1e16 ms), so answering with it throws a RangeError: defects.test.ts checks that the process survives.
 *  Prints `ready <url>` once listening; log lines go to stdout. */
import { Effect } from "effect"
import { Config, TokenStore } from "@tessera/engine"
import { startServer } from "../../src/index.ts"

const text = [
  "connections:",
  "  jobs:",
  "    provider: dvinci",
  "    inputs: { base_url: http://127.0.0.1:9, client_id: api-user, client_secret: not-used-1234 }"
].join("\n")
const config = await Effect.runPromise(Config.parse("/tmp/tessera-far-future/tessera.yaml", text, {}))

const memory = TokenStore.makeMemory()
const store: TokenStore.TokenStoreShape = {
  ...memory,
  name: "far-future",
  get: (key) =>
    Effect.map(memory.get(key), () => ({
      connection: "jobs",
      provider: "dvinci",
      token: {
        v: 1,
        access_token: "far-future-token-8d2f",
        token_type: "Bearer",
        expires_at: 1e16,
        obtained_at: Date.now(),
        expiry_source: "expires_in"
      }
    }))
}

const server = await startServer(config, { port: 0, host: "127.0.0.1", store, log: process.stdout })
process.stdout.write(`ready ${server.url}\n`)
process.on("SIGTERM", () => void server.close().then(() => process.exit(0)))
