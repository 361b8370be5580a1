/** d.vinci's client-credentials token endpoint on the customer host and its /restApi. */
import { DEMO_VALUES } from "../demo.ts"
import { checkForm, grantType } from "../form.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, NO_STORE } from "../reply.ts"
import { bearerUnauthorized, formPostProblem, oauthEnvelopeError, oauthError } from "./oauth-shape.ts"
import { applyExpiresIn, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES.dvinci

/**
 * Exactly grant_type, client_id (API user name) and client_secret (API token) in the form body at
 * /plt/oauth2/token; API calls under /restApi need the Bearer token.
 */
export const dvinci: ProviderSpec = {
  id: "dvinci",
  tokenPath: "/dvinci/plt/oauth2/token",
  apiPrefix: "/dvinci/restApi",
  defaultTtl: 1800,

  credentials: (url) => ({ base_url: `${url}/dvinci`, client_id: DEMO.client_id, client_secret: DEMO.client_secret }),

  token(req, ctx) {
    const problem = formPostProblem(req)
    if (problem !== undefined) return oauthError(400, "invalid_request", problem)
    const grant = grantType(req.rawBody)
    if (grant !== undefined && grant !== "client_credentials") {
      return oauthError(
        400,
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server."
      )
    }
    const form = checkForm(req.rawBody, { required: ["grant_type", "client_id", "client_secret"] })
    if (!form.ok) return oauthError(400, "invalid_request", form.message)
    const { client_id, client_secret } = form.fields
    if (client_id !== DEMO.client_id || client_secret !== DEMO.client_secret) {
      return oauthError(401, "invalid_client", "Client authentication failed")
    }
    const issued = ctx.tokens.issueAccess("dvinci", ctx.ttl, (iat, exp) => ({
      aud: client_id,
      jti: randomHex(20),
      iat,
      nbf: iat,
      exp,
      sub: client_id,
      scopes: []
    }))
    const body = applyExpiresIn(
      { token_type: "Bearer", expires_in: ctx.ttl, access_token: issued.token },
      ctx.expiresIn
    )
    return jsonReply(200, body, NO_STORE)
  },

  error: (status, code, message) => oauthError(status, code, message),
  envelopeError: oauthEnvelopeError,
  unauthorized: bearerUnauthorized
}
