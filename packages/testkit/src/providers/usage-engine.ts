/** Usage Engine's IdP token endpoint (client credentials + audience) and the API at the audience address. */
import { DEMO_VALUES } from "../demo.ts"
import { checkForm, grantType } from "../form.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, NO_STORE } from "../reply.ts"
import { bearerUnauthorized, formPostProblem, oauthEnvelopeError, oauthError } from "./oauth-shape.ts"
import { applyExpiresIn, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES["usage-engine"]
const TOKEN_PATH = "/usage-engine/oauth/token"
const API_PATH = "/usage-engine/api"
/** Scope granted when the request names none. */
export const USAGE_ENGINE_DEFAULT_SCOPE = "read:usage write:usage"

/**
 * Auth0-style: credentials in the form body; bad client credentials are 401 access_denied and an unknown audience
 * is 403 access_denied, as Auth0 answers.
 */
export const usageEngine: ProviderSpec = {
  id: "usage-engine",
  tokenPath: TOKEN_PATH,
  apiPrefix: API_PATH,
  defaultTtl: 3600,

  credentials: (url) => ({
    token_url: `${url}${TOKEN_PATH}`,
    client_id: DEMO.client_id,
    client_secret: DEMO.client_secret,
    audience: `${url}${API_PATH}`
  }),

  token(req, ctx) {
    const problem = formPostProblem(req)
    if (problem !== undefined) return oauthError(400, "invalid_request", problem)
    const grant = grantType(req.rawBody)
    if (grant !== undefined && grant !== "client_credentials") {
      return oauthError(400, "unsupported_grant_type", `Unsupported grant type: ${grant}`)
    }
    const form = checkForm(req.rawBody, {
      required: ["grant_type", "client_id", "client_secret", "audience"],
      optional: ["scope"]
    })
    if (!form.ok) return oauthError(400, "invalid_request", form.message)
    const { client_id, client_secret, audience, scope } = form.fields
    if (client_id !== DEMO.client_id || client_secret !== DEMO.client_secret) {
      return oauthError(401, "access_denied", "Unauthorized")
    }
    if (audience !== `${ctx.url}${API_PATH}`) {
      return oauthError(403, "access_denied", `Service not enabled within domain: ${audience ?? ""}`)
    }
    const granted = scope ?? USAGE_ENGINE_DEFAULT_SCOPE
    const issued = ctx.tokens.issueAccess("usage-engine", ctx.ttl, (iat, exp) => ({
      iss: `${ctx.url}/usage-engine/`,
      sub: `${client_id}@clients`,
      aud: audience,
      iat,
      exp,
      jti: randomHex(16),
      scope: granted,
      gty: "client-credentials",
      azp: client_id
    }))
    const body = applyExpiresIn(
      { access_token: issued.token, scope: granted, expires_in: ctx.ttl, token_type: "Bearer" },
      ctx.expiresIn
    )
    return jsonReply(200, body, NO_STORE)
  },

  error: (status, code, message) => oauthError(status, code, message),
  envelopeError: oauthEnvelopeError,
  unauthorized: bearerUnauthorized
}
