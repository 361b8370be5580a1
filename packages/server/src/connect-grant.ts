/** The connect flow's seam to the engine's authorization-code grant (engine.ts `grants`, authorization.ts): whether
 *  a connection has one, the provider's authorization URL with the connect flow's own sealed state in place of the
 *  engine's, the callback's completion (the code exchange with the PKCE verifier, the grant stored durably in the
 *  connection store and the lifecycle event, all the engine's), and the grant's version, which makes a state good
 *  for one use. The protocol is the engine's; this module only adapts it to what connect-routes.ts asks and says
 *  in words what went wrong. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import {
  Authorization,
  Redaction,
  TokenError,
  type AuthorizationError,
  type Connection,
  type Engine
} from "@tessera/engine"
import { Refusal } from "./problem.ts"

export const unknown = (name: string) => Effect.fail(new TokenError.UnknownConnection({ connection: name, known: [] }))

/** Fails with NotAuthorizationCode unless the connection's provider has an authorization-code flow and the
 *  connection's tokens come from a user's grant (a client-credentials connection of the same provider has no user
 *  to ask). */
export const check = (c: Connection.Connection): Effect.Effect<void, Refusal> =>
  c.manifest.authorization !== undefined && Authorization.isUserGranted(c)
    ? Effect.void
    : Effect.fail(
        new Refusal({
          code: "NotAuthorizationCode",
          connection: c.name,
          provider: c.manifest.id,
          detail:
            c.manifest.authorization === undefined
              ? `provider "${c.manifest.id}" has no authorization-code flow (an authorization: section in its manifest)`
              : `connection "${c.name}" does not take a user's grant (its grant_type is not authorization_code)`
        })
      )

/** The stored grant's version, undefined when there is none. */
export const grantVersion = (
  engine: Engine.EngineShape,
  name: string
): Effect.Effect<number | undefined, Engine.GrantError> => Effect.map(engine.grants.get(name), (g) => g?.version)

export interface AuthorizationRequest {
  /** The authorization URL carrying `state` instead of the engine's own. */
  readonly url: (state: string) => string
  /** The PKCE verifier of the URL's code_challenge: it goes into the sealed state. */
  readonly verifier: Redacted.Redacted<string>
}

/** The engine's authorization request for `redirectUri` (response_type, client_id, redirect_uri, scope,
 *  code_challenge S256, the manifest's params). Its state is replaced by the caller's sealed one: that is what lets
 *  the callback land on any instance, where the engine's state would have to be kept in this process. */
export const authorize = (
  engine: Engine.EngineShape,
  c: Connection.Connection,
  redirectUri: string
): Effect.Effect<AuthorizationRequest, Engine.GrantError> =>
  Effect.map(engine.grants.authorize(c.name, redirectUri), (pending) => ({
    verifier: pending.verifier,
    url: (state) => {
      const u = new URL(pending.url)
      u.searchParams.set("state", state)
      return u.href
    }
  }))

export interface Callback {
  readonly redirectUri: string
  /** The state as received (already opened and checked by the caller). */
  readonly state: string
  readonly verifier: Redacted.Redacted<string>
  readonly query: URLSearchParams
}

/** The callback's verdict (error, or code), the code exchange and the grant stored: the engine's `complete`. */
export const complete = (
  engine: Engine.EngineShape,
  c: Connection.Connection,
  cb: Callback
): Effect.Effect<Engine.TokenResult, Engine.GrantError> =>
  engine.grants.complete(
    c.name,
    {
      url: "",
      redirectUri: cb.redirectUri,
      state: Redacted.make(cb.state, { label: "state" }),
      verifier: cb.verifier
    },
    cb.query
  )

/** What went wrong, for the result page. */
export type Failure =
  | { readonly _tag: "Denied" }
  | { readonly _tag: "ProviderError"; readonly detail: string }
  | { readonly _tag: "NoCode" }
  | { readonly _tag: "Exchange"; readonly detail: string }
  | { readonly _tag: "Misconfigured" }
  | { readonly _tag: "Store" }
  | { readonly _tag: "Unknown" }

/** Sorts a failed completion; texts are scrubbed of the connection's secrets and of `also` (the code, the
 *  verifier, the state) in every encoding, and kept short. */
export const classify = (
  e: Engine.GrantError | AuthorizationError.AuthorizationFailed,
  secrets: ReadonlyArray<string>
): Failure => {
  const words = (text: string) => {
    const t = Redaction.scrub(text, secrets)
    return t.length > 300 ? `${t.slice(0, 300)}...` : t
  }
  switch (e._tag) {
    case "AuthorizationFailed":
      return e.reason === "denied"
        ? { _tag: "Denied" }
        : e.reason === "provider_error"
          ? { _tag: "ProviderError", detail: words(e.detail ?? "an error without a code") }
          : e.reason === "invalid_callback" || e.reason === "state_mismatch"
            ? { _tag: "NoCode" }
            : { _tag: "Exchange", detail: words(e.message) }
    case "UnknownConnection":
      return { _tag: "Unknown" }
    case "InputInvalid":
    case "StaticCredential":
      return { _tag: "Misconfigured" }
    case "StoreError":
      return { _tag: "Store" }
    case "TransportError":
    case "UpstreamTimeout":
    case "UpstreamRejected":
    case "ResponseInvalid":
    case "AuthorizationRequired":
      return { _tag: "Exchange", detail: words(e.message) }
  }
}
