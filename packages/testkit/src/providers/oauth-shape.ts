/** RFC 6749 response shapes shared by the OAuth-style providers (cube, dvinci, usage-engine, oauth2). */
import { jsonReply, NO_STORE, type Reply } from "../reply.ts"
import { FORM, type TokenRequest } from "./provider.ts"

/** RFC 6749 §5.2 error: {error, error_description}, never cached. */
export function oauthError(
  status: number,
  error: string,
  description: string,
  headers: Record<string, string> = {}
): Reply {
  return jsonReply(status, { error, error_description: description }, { ...NO_STORE, ...headers })
}

/** RFC 6750 §3 answer for an API call without a valid Bearer token. */
export function bearerUnauthorized(): Reply {
  return jsonReply(
    401,
    { error: "invalid_token", error_description: "The access token is missing, invalid, revoked or expired." },
    {
      "WWW-Authenticate": 'Bearer error="invalid_token"'
    }
  )
}

/** HTTP 200 with an OAuth error body: the "success status, failed answer" case for providers without an envelope. */
export function oauthEnvelopeError(): Reply {
  return jsonReply(
    200,
    { error: "server_error", error_description: "The authorization server encountered an unexpected condition." },
    NO_STORE
  )
}

/**
 * For providers whose documents put client credentials in the form body (client_secret_post): the problem with
 * the request's framing, if any.
 */
export function formPostProblem(req: TokenRequest): string | undefined {
  if (req.contentType !== FORM) return `Content-Type must be ${FORM}.`
  if (req.headers["authorization"] !== undefined) {
    return "Client credentials must be sent in the request body; no Authorization header is expected."
  }
  return undefined
}
