/** CUBE's IdentityServer-style token endpoint (client credentials + scope, resource, acr_values tenant) and API. */
import { DEMO_VALUES } from "../demo.ts"
import { checkForm, grantType } from "../form.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, NO_STORE } from "../reply.ts"
import { bearerUnauthorized, formPostProblem, oauthEnvelopeError, oauthError } from "./oauth-shape.ts"
import { applyExpiresIn, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES.cube
const TOKEN_PATH = "/cube/connect/token"

/**
 * Client credentials at /connect/token with scope=profile, resource=connectapi and acr_values=tenant:<tenant>.
 * Like IdentityServer, every rejection (invalid_client included) is HTTP 400.
 */
export const cube: ProviderSpec = {
  id: "cube",
  tokenPath: TOKEN_PATH,
  apiPrefix: "/cube",
  defaultTtl: 86400,

  credentials: (url) => ({
    client_id: DEMO.client_id,
    client_secret: DEMO.client_secret,
    tenant: DEMO.tenant,
    token_url: `${url}${TOKEN_PATH}`
  }),

  token(req, ctx) {
    const problem = formPostProblem(req)
    if (problem !== undefined) return oauthError(400, "invalid_request", problem)
    const grant = grantType(req.rawBody)
    if (grant !== undefined && grant !== "client_credentials") {
      return oauthError(400, "unsupported_grant_type", `Grant type ${grant} is not supported; use client_credentials.`)
    }
    const form = checkForm(req.rawBody, {
      required: ["grant_type", "client_id", "client_secret", "scope", "resource", "acr_values"]
    })
    if (!form.ok) return oauthError(400, "invalid_request", form.message)
    const { client_id, client_secret, scope, resource, acr_values } = form.fields
    if (client_id !== DEMO.client_id || client_secret !== DEMO.client_secret) {
      return oauthError(400, "invalid_client", "Unknown client or invalid client secret.")
    }
    if (scope !== "profile") return oauthError(400, "invalid_scope", "The only allowed scope is profile.")
    if (resource !== "connectapi") return oauthError(400, "invalid_target", "The only allowed resource is connectapi.")
    const tenant = /^tenant:(\S+)$/.exec(acr_values ?? "")?.[1]
    if (tenant === undefined)
      return oauthError(400, "invalid_request", "acr_values must be tenant:<tenant>, without spaces.")
    if (tenant !== DEMO.tenant) return oauthError(400, "invalid_grant", `Unknown tenant ${tenant}.`)

    const issued = ctx.tokens.issueAccess("cube", ctx.ttl, (iat, exp) => ({
      iss: `${ctx.url}/cube`,
      nbf: iat,
      iat,
      exp,
      aud: "connectapi",
      scope: ["profile"],
      client_id,
      tenant,
      sub: client_id,
      jti: randomHex(16, true)
    }))
    const body = applyExpiresIn(
      { access_token: issued.token, expires_in: ctx.ttl, token_type: "Bearer", scope: "profile" },
      ctx.expiresIn
    )
    return jsonReply(200, body, NO_STORE)
  },

  error: (status, code, message) => oauthError(status, code, message),
  envelopeError: oauthEnvelopeError,
  unauthorized: bearerUnauthorized
}
