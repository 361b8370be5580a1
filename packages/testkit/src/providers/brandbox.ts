/** brandbox's wrapped password/refresh-token endpoint at /rest/v4/accessToken and its /rest/v4 API. */
import { DEMO_VALUES } from "../demo.ts"
import { checkForm, grantType } from "../form.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, type Reply } from "../reply.ts"
import { formPostProblem } from "./oauth-shape.ts"
import { applyExpiresIn, type ProviderContext, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES.brandbox
const TOKEN_PATH = "/brandbox/rest/v4/accessToken"
const REFRESH_PREFIX = "def50200"

/** brandbox's wrapped error: {code: <http status>, message, error?, body: null}. */
function wrappedError(status: number, message: string, error?: string): Reply {
  return jsonReply(
    status,
    error === undefined ? { code: status, message, body: null } : { code: status, message, error, body: null }
  )
}

function issue(ctx: ProviderContext, clientId: string, username: string): Reply {
  const access = ctx.tokens.issueAccess("brandbox", ctx.ttl, (iat, exp) => ({
    aud: clientId,
    jti: randomHex(40),
    iat,
    nbf: iat,
    exp,
    sub: username,
    scopes: []
  }))
  const refresh = ctx.tokens.issueRefresh("brandbox", { clientId, subject: username }, REFRESH_PREFIX)
  const body = applyExpiresIn(
    { token_type: "Bearer", expires_in: ctx.ttl, access_token: access.token, refresh_token: refresh },
    ctx.expiresIn
  )
  return jsonReply(200, { code: 0, message: "Success", body })
}

/**
 * Password grant (tenant id as client_id, "-" as client_secret) and rotating refresh tokens on the same URL. Every
 * answer, errors included, is wrapped as {code, message, body}; only code 0 is success.
 */
export const brandbox: ProviderSpec = {
  id: "brandbox",
  tokenPath: TOKEN_PATH,
  apiPrefix: "/brandbox/rest/v4",
  defaultTtl: 3600,

  credentials: (url) => ({
    base_url: `${url}/brandbox`,
    client_id: DEMO.client_id,
    username: DEMO.username,
    password: DEMO.password
  }),

  token(req, ctx) {
    const problem = formPostProblem(req)
    if (problem !== undefined) return wrappedError(400, problem, "invalid_request")
    const grant = grantType(req.rawBody)
    if (grant !== undefined && grant !== "password" && grant !== "refresh_token") {
      return wrappedError(
        400,
        "The authorization grant type is not supported by the authorization server.",
        "unsupported_grant_type"
      )
    }
    const form = checkForm(req.rawBody, {
      required:
        grant === "refresh_token"
          ? ["grant_type", "client_id", "client_secret", "refresh_token"]
          : ["grant_type", "client_id", "client_secret", "username", "password"]
    })
    if (!form.ok) return wrappedError(400, form.message, "invalid_request")
    const { client_id = "", client_secret, username, password, refresh_token } = form.fields
    if (client_id !== DEMO.client_id || client_secret !== DEMO.client_secret) {
      return wrappedError(401, "Client authentication failed", "invalid_client")
    }
    if (grant === "refresh_token") {
      const previous = ctx.tokens.peekRefresh("brandbox", refresh_token ?? "", client_id)
      if (previous === undefined) return wrappedError(400, "The refresh token is invalid.", "invalid_grant")
      ctx.tokens.consumeRefresh(refresh_token ?? "")
      return issue(ctx, client_id, previous.subject)
    }
    if (username !== DEMO.username || password !== DEMO.password) return wrappedError(401, "Invalid credentials")
    return issue(ctx, client_id, username)
  },

  error: (status, code, message) => wrappedError(status, message, code),
  envelopeError: () => jsonReply(200, { code: 5, message: "Tenant locked", body: null }),
  unauthorized: () =>
    jsonReply(
      401,
      { code: 401, message: "Access token is invalid or expired", body: null },
      { "WWW-Authenticate": 'Bearer error="invalid_token"' }
    )
}
