/** CRM.COM's consumer-application-key token endpoint (Basic key + JSON body, status.code envelope) and its API. */
import { DEMO_VALUES } from "../demo.ts"
import { basicCredentials } from "../http-util.ts"
import { randomHex } from "../jwt.ts"
import { jsonReply, type Reply } from "../reply.ts"
import { JSON_TYPE, type ExpiresInOverride, type ProviderSpec } from "./provider.ts"

const DEMO = DEMO_VALUES["crm-com"]
const TOKEN_PATH = "/crm-com/authentication/consumer_application_key/token"
/** The consumer id (cii claim) of the demo key. */
const CONSUMER_ID = "2695FED3FCFD4084AB39F44B18889123"

/** CRM.COM's envelope for failures: {data: null, status: {code, description, message}}. */
function failure(
  httpStatus: number,
  code: string,
  description: string,
  message: string,
  headers: Record<string, string> = {}
): Reply {
  return jsonReply(httpStatus, { data: null, status: { code, description, message } }, headers)
}

type Identity =
  | { kind: "authentication_code"; authentication_code: string }
  | { kind: "identifier"; identifier: string; pass_code: string }
  | { kind: "jwt"; jwt: string; organisation: string }

type Parsed = { ok: true; identity: Identity; unit: string | undefined } | { ok: false; message: string }

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value !== ""
}

function sameKeys(record: Record<string, unknown>, keys: readonly string[]): boolean {
  const actual = Object.keys(record).sort()
  return actual.length === keys.length && [...keys].sort().every((key, i) => actual[i] === key)
}

/** Accepts exactly one documented body shape, plus an optional non-empty `unit` string. */
function parseBody(rawBody: string): Parsed {
  let value: unknown
  try {
    value = JSON.parse(rawBody)
  } catch {
    return { ok: false, message: "The request body is not valid JSON." }
  }
  if (!isRecord(value)) return { ok: false, message: "The request body must be a JSON object." }
  const unknown = Object.keys(value).filter(
    (key) => !["access_token_identifier", "jwt", "organisation", "unit"].includes(key)
  )
  if (unknown.length > 0) return { ok: false, message: `Unexpected field: ${unknown.join(", ")}.` }
  const { access_token_identifier: ati, unit } = value
  if (unit !== undefined && !nonEmptyString(unit)) return { ok: false, message: "unit must be a non-empty string." }
  const hasJwt = "jwt" in value || "organisation" in value
  if (ati !== undefined && hasJwt)
    return { ok: false, message: "Give access_token_identifier or jwt and organisation, not both." }
  if (ati !== undefined) {
    if (!isRecord(ati)) return { ok: false, message: "access_token_identifier must be an object." }
    if (sameKeys(ati, ["authentication_code"]) && nonEmptyString(ati["authentication_code"])) {
      return {
        ok: true,
        identity: { kind: "authentication_code", authentication_code: ati["authentication_code"] },
        unit
      }
    }
    if (
      sameKeys(ati, ["identifier", "pass_code"]) &&
      nonEmptyString(ati["identifier"]) &&
      nonEmptyString(ati["pass_code"])
    ) {
      return {
        ok: true,
        identity: { kind: "identifier", identifier: ati["identifier"], pass_code: ati["pass_code"] },
        unit
      }
    }
    return {
      ok: false,
      message: "access_token_identifier must hold authentication_code alone, or identifier with pass_code."
    }
  }
  if (hasJwt) {
    if (nonEmptyString(value["jwt"]) && nonEmptyString(value["organisation"])) {
      return { ok: true, identity: { kind: "jwt", jwt: value["jwt"], organisation: value["organisation"] }, unit }
    }
    return { ok: false, message: "jwt and organisation must both be non-empty strings." }
  }
  return { ok: false, message: "Give access_token_identifier, or jwt and organisation." }
}

function identityProblem(identity: Identity): string | undefined {
  switch (identity.kind) {
    case "authentication_code":
      return identity.authentication_code === DEMO.authentication_code
        ? undefined
        : "The authentication code is not valid."
    case "identifier":
      return identity.identifier === DEMO.identifier && identity.pass_code === DEMO.pass_code
        ? undefined
        : "The identifier or pass code is not valid."
    case "jwt":
      if (identity.jwt !== DEMO.jwt) return "The identity management token is not valid."
      return identity.organisation === DEMO.organisation ? undefined : `Unknown organisation ${identity.organisation}.`
  }
}

/** The exp claim: iat + ttl as a string, or as the expiresIn fault shapes it (left out, iat + n, or verbatim). */
function expClaim(iat: number, exp: number, override: ExpiresInOverride | undefined): unknown {
  if (override === undefined) return String(exp)
  if (typeof override.value === "number") return String(iat + override.value)
  return override.value
}

/**
 * The key is the HTTP Basic user name with an empty password; the JSON body names the access token. Success and
 * credential failures are both HTTP 200, told apart by status.code; the token is an HS256 JWT whose exp and iat are
 * numeric strings.
 */
export const crmCom: ProviderSpec = {
  id: "crm-com",
  tokenPath: TOKEN_PATH,
  apiPrefix: "/crm-com",
  defaultTtl: 7200,

  credentials: (url) => ({
    base_url: `${url}/crm-com`,
    api_key: DEMO.api_key,
    authentication_code: DEMO.authentication_code
  }),

  token(req, ctx) {
    const basic = basicCredentials(req.headers["authorization"])
    if (basic === undefined || basic === "malformed") {
      return failure(
        401,
        "UNAUTHORIZED",
        "The consumer application key must be sent as the HTTP Basic user name.",
        "Unauthorized",
        {
          "WWW-Authenticate": 'Basic realm="CRM.COM"'
        }
      )
    }
    if (basic.password !== "")
      return failure(400, "INVALID_REQUEST", "The HTTP Basic password must be empty.", "Invalid request")
    if (req.contentType !== JSON_TYPE)
      return failure(400, "INVALID_REQUEST", `Content-Type must be ${JSON_TYPE}.`, "Invalid request")
    const parsed = parseBody(req.rawBody)
    if (!parsed.ok) return failure(400, "INVALID_REQUEST", parsed.message, "Invalid request")
    if (basic.user !== DEMO.api_key)
      return failure(200, "AUTH_FAILED", "The consumer application key is not valid.", "Invalid credentials")
    const problem = identityProblem(parsed.identity)
    if (problem !== undefined) return failure(200, "AUTH_FAILED", problem, "Invalid credentials")

    const { identity, unit } = parsed
    const issued = ctx.tokens.issueAccess("crm-com", ctx.ttl, (iat, exp) => {
      const claims: Record<string, unknown> = {
        cii: CONSUMER_ID,
        usr: identity.kind === "identifier" ? identity.identifier : "crm-demo-user",
        org: identity.kind === "jwt" ? identity.organisation : DEMO.organisation,
        ari: randomHex(16, true),
        oun: unit ?? "1",
        exp: expClaim(iat, exp, ctx.expiresIn),
        iat: String(iat),
        jti: randomHex(16, true)
      }
      if (claims["exp"] === undefined) delete claims["exp"]
      return claims
    })
    return jsonReply(200, { data: { token: issued.token }, status: { code: "OK", description: "", message: "" } })
  },

  error: (status, code, message) => failure(status, code.toUpperCase(), message, message),
  envelopeError: () => failure(200, "GENERAL_ERROR", "The service is temporarily unavailable.", "Internal error"),
  unauthorized: () =>
    failure(401, "INVALID_TOKEN", "The authentication token is invalid or has expired.", "Unauthorized", {
      "WWW-Authenticate": 'Bearer error="invalid_token"'
    })
}
