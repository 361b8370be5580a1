/** A generic RFC 6749 token endpoint (client_credentials, password, refresh_token) and its /oauth2/api. */
import { DEMO_VALUES } from "../demo.ts"
import { checkForm, type FormSpec } from "../form.ts"
import { basicCredentials, formDecode } from "../http-util.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, NO_STORE, type Reply } from "../reply.ts"
import type { RefreshGrant } from "../tokens.ts"
import { bearerUnauthorized, oauthEnvelopeError, oauthError } from "./oauth-shape.ts"
import { applyExpiresIn, FORM, type ProviderContext, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES.oauth2
const TOKEN_PATH = "/oauth2/token"
const API_PATH = "/oauth2/api"

const GRANTS: Record<string, FormSpec> = {
  client_credentials: { required: ["grant_type"], optional: ["scope", "audience", "resource"] },
  password: { required: ["grant_type", "username", "password"], optional: ["scope", "audience", "resource"] },
  refresh_token: { required: ["grant_type", "refresh_token"], optional: ["scope"] }
}

/** RFC 6749 §3.3 scope syntax: space-delimited tokens of %x21 / %x23-5B / %x5D-7E. */
const SCOPE = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/

function invalidClient(description: string): Reply {
  return oauthError(401, "invalid_client", description, { "WWW-Authenticate": 'Basic realm="oauth2"' })
}

/** RFC 8707 §2: an absolute URI without a fragment. */
function validResource(resource: string): boolean {
  try {
    return !resource.includes("#") && new URL(resource).protocol !== ""
  } catch {
    return false
  }
}

function issue(
  ctx: ProviderContext,
  grant: RefreshGrant,
  withRefresh: boolean,
  audience: string,
  responseScope: string | undefined
): Reply {
  const access = ctx.tokens.issueAccess("oauth2", ctx.ttl, (iat, exp) => ({
    iss: `${ctx.url}/oauth2`,
    sub: grant.subject,
    aud: audience,
    client_id: grant.clientId,
    ...(responseScope === undefined ? {} : { scope: responseScope }),
    iat,
    exp,
    jti: randomHex(16)
  }))
  const body: Record<string, unknown> = { access_token: access.token, token_type: "Bearer", expires_in: ctx.ttl }
  if (withRefresh) body["refresh_token"] = ctx.tokens.issueRefresh("oauth2", grant)
  if (responseScope !== undefined) body["scope"] = responseScope
  return jsonReply(200, applyExpiresIn(body, ctx.expiresIn), NO_STORE)
}

/**
 * Client authentication by HTTP Basic (§2.3.1, form-urlencoded id and secret) or in the body, never both; rotating
 * refresh tokens. Stricter than the RFC on purpose: unknown, repeated or empty parameters are invalid_request.
 */
export const oauth2: ProviderSpec = {
  id: "oauth2",
  tokenPath: TOKEN_PATH,
  apiPrefix: API_PATH,
  defaultTtl: 3600,

  credentials: (url) => ({
    token_url: `${url}${TOKEN_PATH}`,
    client_id: DEMO.client_id,
    client_secret: DEMO.client_secret,
    api_base_url: `${url}${API_PATH}`
  }),

  token(req, ctx) {
    if (req.contentType !== FORM) return oauthError(400, "invalid_request", `Content-Type must be ${FORM}.`)
    const basic = basicCredentials(req.headers["authorization"])
    if (basic === "malformed") return invalidClient("The Authorization header is not valid HTTP Basic.")
    const params = new URLSearchParams(req.rawBody)
    const bodyAuth = params.has("client_id") || params.has("client_secret")
    if (basic !== undefined && bodyAuth) {
      return oauthError(
        400,
        "invalid_request",
        "The client used more than one authentication method (HTTP Basic and body credentials)."
      )
    }
    const grants = params.getAll("grant_type")
    if (grants.length !== 1)
      return oauthError(
        400,
        "invalid_request",
        grants.length === 0 ? "Missing parameter: grant_type." : "Parameter grant_type is included more than once."
      )
    const grantType = grants[0] ?? ""
    const grantSpec = GRANTS[grantType]
    if (grantSpec === undefined)
      return oauthError(400, "unsupported_grant_type", `Grant type ${grantType} is not supported.`)
    if (basic === undefined && !(params.has("client_id") && params.has("client_secret"))) {
      return invalidClient("Client authentication failed: no client credentials were sent.")
    }
    const spec: FormSpec =
      basic === undefined
        ? { ...grantSpec, required: [...grantSpec.required, "client_id", "client_secret"] }
        : grantSpec
    const form = checkForm(req.rawBody, spec)
    if (!form.ok) return oauthError(400, "invalid_request", form.message)
    const f = form.fields

    const clientId = basic === undefined ? f["client_id"] : formDecode(basic.user)
    const clientSecret = basic === undefined ? f["client_secret"] : formDecode(basic.password)
    const special = DEMO_VALUES["oauth2-special"]
    const known =
      (clientId === DEMO.client_id && clientSecret === DEMO.client_secret) ||
      (clientId === special.client_id && clientSecret === special.client_secret)
    if (!known) return invalidClient("Client authentication failed.")

    const scope = f["scope"]
    if (scope !== undefined && !SCOPE.test(scope)) return oauthError(400, "invalid_scope", "The scope is malformed.")
    const resource = f["resource"]
    if (resource !== undefined && !validResource(resource))
      return oauthError(400, "invalid_target", "resource must be an absolute URI without a fragment.")
    const audience = f["audience"] ?? resource ?? `${ctx.url}${API_PATH}`

    switch (grantType) {
      case "client_credentials":
        return issue(ctx, { clientId, subject: clientId }, false, audience, scope)
      case "password": {
        if (f["username"] !== DEMO.username || f["password"] !== DEMO.password) {
          return oauthError(400, "invalid_grant", "The resource owner credentials are invalid.")
        }
        const grant: RefreshGrant =
          scope === undefined ? { clientId, subject: DEMO.username } : { clientId, subject: DEMO.username, scope }
        return issue(ctx, grant, true, audience, scope)
      }
      default: {
        const refreshToken = f["refresh_token"] ?? ""
        const previous = ctx.tokens.peekRefresh("oauth2", refreshToken, clientId)
        if (previous === undefined)
          return oauthError(
            400,
            "invalid_grant",
            "The refresh token is invalid, expired, revoked or was issued to another client."
          )
        if (scope !== undefined) {
          const granted = new Set((previous.scope ?? "").split(" "))
          if (!scope.split(" ").every((s) => granted.has(s))) {
            return oauthError(400, "invalid_scope", "The requested scope exceeds the scope originally granted.")
          }
        }
        ctx.tokens.consumeRefresh(refreshToken)
        return issue(ctx, previous, true, audience, scope ?? previous.scope)
      }
    }
  },

  error: (status, code, message) => oauthError(status, code, message),
  envelopeError: oauthEnvelopeError,
  unauthorized: bearerUnauthorized
}
