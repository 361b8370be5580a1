/** The Effect API: the engine is a service, built by a layer from a loaded config; errors are typed and tagged.
 *  Runnable without accounts (sandbox providers on loopback). `pnpm example:effect` */
import { Config, Engine, Runtime } from "@tessera/engine"
import { startSandbox } from "@tessera/testkit"
import { Effect, Redacted } from "effect"

const sandbox = await startSandbox()

const program = Effect.gen(function* () {
  const engine = yield* Engine.Engine
  const token = yield* engine.getToken("brandbox")
  console.log(
    "brandbox:",
    token.decision.action,
    "expires",
    token.expiresAt.toISOString(),
    "refresh token:",
    token.hasRefreshToken
  )

  // After the API answered 401: forget the access token; the refresh token is kept, so this refreshes.
  yield* engine.invalidate("brandbox")
  const renewed = yield* engine.getToken("brandbox")
  console.log("after invalidate:", renewed.decision.action, "-", renewed.decision.reason)

  // Typed failures: a wrong password is an UpstreamRejected with the provider's own message.
  const failure = yield* engine.getToken("brandbox-wrong").pipe(
    Effect.map(() => "unexpected success"),
    Effect.catchTag("UpstreamRejected", (e) => Effect.succeed(`${e._tag} (${e.kind}): ${e.message}`))
  )
  console.log(failure)
  console.log(
    "token value stays redacted when printed:",
    `${token.accessToken}`,
    "| revealed length:",
    Redacted.value(token.accessToken).length
  )
})

try {
  const config = await Effect.runPromise(
    Config.fromObject({
      connections: {
        brandbox: { provider: "brandbox", inputs: sandbox.credentials.brandbox },
        "brandbox-wrong": {
          provider: "brandbox",
          inputs: { ...sandbox.credentials.brandbox, password: "not-the-password" }
        }
      }
    })
  )
  await Effect.runPromise(program.pipe(Effect.provide(Runtime.layer(config, "memory"))))
} finally {
  await sandbox.close()
}
