/** Signed JWTs a flow sends: the JWT bearer grant's `assertion` (RFC 7523 §2.1), the `client_assertion` of
 *  private_key_jwt / client_secret_jwt client authentication (RFC 7523 §2.2), and a JWT sent as
 *  `Authorization: Bearer` (a GitHub App's JWT). Claims are manifest templates over the connection's inputs; `iat`,
 *  `exp` and `jti` are set here, fresh for every attempt (a server refuses a replayed `jti`). Signed with jose.
 *
 *  Holds the compiled spec (`JwtSpec`, compiled by `compile` from the manifest), key reading (`readKey`: PEM PKCS#1,
 *  PKCS#8 and SEC1, a private JWK, a JSON key file with a `private_key` field, or an HMAC secret) and `sign`. Keys
 *  are secrets: they stay Redacted, and a key that cannot be read gives an InputInvalid naming the connection and
 *  the input, never the key or the parser's text about it. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { SignJWT } from "jose/jwt/sign"
import { createPrivateKey, createSecretKey, randomUUID, type KeyObject } from "node:crypto"
import type { Connection } from "./connection.ts"
import type { SignedJWT } from "./generated/provider.ts"
import type { TokenRequest } from "./token-request.ts"
import * as Template from "./template.ts"
import { InputInvalid } from "./token-error.ts"

/** JWS algorithms tessera signs with (RFC 7518 §3.1); `none` never. */
export const algorithms = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512"
] as const
export type Algorithm = (typeof algorithms)[number]

/** RFC 7523 §2.2. */
export const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/** RFC 7523 §2.1. */
export const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

export interface JwtSpec {
  readonly alg?: Template.Template | undefined
  readonly key: Template.Template
  readonly kid?: Template.Template | undefined
  readonly claims: ReadonlyArray<readonly [string, Template.Template]>
  readonly lifetimeSeconds: number
  readonly iatBackdateSeconds: number
  readonly jti: boolean
  /** Client assertions: HS* by default (client_secret_jwt) or an asymmetric algorithm (private_key_jwt). */
  readonly symmetric: boolean
}

export interface FlowAssertion extends JwtSpec {
  readonly send: "body" | "authorization"
}

/** Compiles a manifest's JWT block; `defaults` fill the claims and key the block leaves out. `parse` is the
 *  manifest compiler's template parser (it checks references and reports problems at `path`). */
export const compile = (
  doc: SignedJWT | undefined,
  path: ReadonlyArray<string | number>,
  parse: (path: ReadonlyArray<string | number>, source: string) => Template.Template,
  defaults: {
    readonly claims?: Readonly<Record<string, string>>
    readonly key: string
    readonly symmetric: boolean
  }
): JwtSpec => {
  const claims = new Map<string, Template.Template>()
  for (const [k, v] of Object.entries(defaults.claims ?? {})) claims.set(k, parse(path, v))
  for (const [k, v] of Object.entries(doc?.claims ?? {})) claims.set(k, parse([...path, "claims", k], v ?? ""))
  return {
    alg: doc?.alg !== undefined ? parse([...path, "alg"], doc.alg) : undefined,
    key: parse([...path, ...(doc?.key !== undefined ? ["key"] : [])], doc?.key ?? defaults.key),
    kid: doc?.kid !== undefined ? parse([...path, "kid"], doc.kid) : undefined,
    claims: [...claims],
    lifetimeSeconds: doc?.lifetime_seconds ?? 60,
    iatBackdateSeconds: doc?.iat_backdate_seconds ?? 0,
    jti: doc?.jti ?? true,
    symmetric: defaults.symmetric
  }
}

/** Claims tessera sets itself: a template for one of these would be overwritten, so the compiler refuses it. */
export const reservedClaims = ["iat", "exp", "jti", "nbf"] as const

type KeyRead =
  { readonly _tag: "Key"; readonly key: KeyObject } | { readonly _tag: "Unreadable"; readonly problem: string }

const kinds =
  'PEM (PKCS#1 "BEGIN RSA PRIVATE KEY", PKCS#8 "BEGIN PRIVATE KEY", SEC1 "BEGIN EC PRIVATE KEY"), a private JWK as JSON, or a JSON key file with a "private_key" field'

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v)

/** Reads a private key from its text. Never says anything about the text but what kind of thing it is. */
export const readKey = (text: string): KeyRead => {
  const trimmed = text.trim()
  if (trimmed === "") return { _tag: "Unreadable", problem: `is empty; give ${kinds}` }
  if (/-----BEGIN (RSA |EC )?PUBLIC KEY-----|-----BEGIN CERTIFICATE-----/.test(trimmed))
    return { _tag: "Unreadable", problem: "holds a public key or a certificate; the private key is needed to sign" }
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----/.test(trimmed))
    return { _tag: "Unreadable", problem: "is an encrypted private key; decrypt it first (openssl pkcs8 -in k.pem)" }
  try {
    if (trimmed.startsWith("{")) {
      let json: unknown
      try {
        json = JSON.parse(trimmed)
      } catch {
        return { _tag: "Unreadable", problem: `is neither valid JSON nor PEM; give ${kinds}` }
      }
      if (!isRecord(json)) return { _tag: "Unreadable", problem: `is not a JSON object; give ${kinds}` }
      if (typeof json["private_key"] === "string") return readKey(json["private_key"])
      if (typeof json["kty"] !== "string")
        return { _tag: "Unreadable", problem: 'is JSON but neither a JWK ("kty") nor a key file ("private_key")' }
      if (json["kty"] === "oct")
        return { _tag: "Unreadable", problem: "is a symmetric JWK; an HS* algorithm signs with the secret itself" }
      if (json["d"] === undefined)
        return { _tag: "Unreadable", problem: 'is a public JWK (no "d"); the private key is needed to sign' }
      return { _tag: "Key", key: createPrivateKey({ key: json as never, format: "jwk" }) }
    }
    if (!trimmed.startsWith("-----BEGIN")) return { _tag: "Unreadable", problem: `is not a key; give ${kinds}` }
    // A PEM pasted into an env var often has literal "\n" for its line breaks.
    return { _tag: "Key", key: createPrivateKey(trimmed.replace(/\\n/g, "\n")) }
  } catch {
    return { _tag: "Unreadable", problem: `cannot be read as a private key; give ${kinds}` }
  }
}

const curves: Readonly<Record<string, Algorithm>> = { prime256v1: "ES256", secp384r1: "ES384", secp521r1: "ES512" }

/** The algorithm a key signs with when the manifest names none. */
const defaultAlg = (key: KeyObject): Algorithm | undefined => {
  switch (key.asymmetricKeyType) {
    case "rsa":
      return "RS256"
    case "rsa-pss":
      return "PS256"
    case "ed25519":
      return "EdDSA"
    case "ec":
      return curves[key.asymmetricKeyDetails?.namedCurve ?? ""]
    default:
      return undefined
  }
}

/** The key type an algorithm needs, for a mismatch message. */
const needs = (alg: Algorithm): string =>
  alg.startsWith("HS")
    ? "a shared secret"
    : alg.startsWith("ES")
      ? "an EC key"
      : alg === "EdDSA"
        ? "an Ed25519 key"
        : "an RSA key"

export interface SignContext {
  readonly connection: Connection
  /** Where the spec sits in the manifest, for messages: `flows.acquire.assertion`. */
  readonly where: string
  /** Claims known only at send time (`aud` = the token endpoint): used where the manifest gives none. */
  readonly defaults?: Readonly<Record<string, string>> | undefined
  /** Epoch ms (the Clock). */
  readonly now: number
}

/** Renders the claims, reads the key and signs. A fresh `jti` (UUID v4) each call. */
export const sign = (spec: JwtSpec, ctx: SignContext): Effect.Effect<Redacted.Redacted<string>, InputInvalid> =>
  Effect.suspend(() => {
    const c = ctx.connection
    const invalid = (...details: string[]) =>
      Effect.fail(new InputInvalid({ connection: c.name, provider: c.manifest.id, details }))
    const tctx: Template.Context = { inputs: (n) => c.inputs.get(n) }
    const inputsOf = (t: Template.Template) => Template.refs(t, "inputs").map((r) => `"${r.name}"`)
    const keyInputs = inputsOf(spec.key)
    const keyName = keyInputs.length > 0 ? `input ${keyInputs.join(", ")}` : `${ctx.where}.key`

    const keyValue = Template.render(spec.key, tctx)
    if (keyValue._tag === "Missing")
      return invalid(`${ctx.where} needs ${keyValue.names.join(", ")} to sign the JWT, which is not set`)
    const keyText = Template.reveal(keyValue.value)
    let alg: string | undefined
    if (spec.alg) {
      const a = Template.render(spec.alg, tctx)
      if (a._tag === "Value") alg = Template.reveal(a.value)
    }
    if (alg !== undefined && !(algorithms as ReadonlyArray<string>).includes(alg))
      return invalid(`${ctx.where}.alg "${alg}" is not one of ${algorithms.join(", ")}`)
    let key: KeyObject
    if (spec.symmetric && (alg === undefined || alg.startsWith("HS"))) {
      if (keyText === "") return invalid(`${keyName} is empty: client_secret_jwt signs with the client secret`)
      key = createSecretKey(Buffer.from(keyText, "utf8"))
      alg ??= "HS256"
    } else {
      const read = readKey(keyText)
      if (read._tag === "Unreadable") return invalid(`${keyName} ${read.problem} (signing ${ctx.where})`)
      key = read.key
      alg ??= defaultAlg(key)
      if (alg === undefined)
        return invalid(`${keyName}: tessera cannot tell which algorithm this key signs with; set alg`)
    }
    const algorithm = alg as Algorithm
    const claims: Record<string, string> = { ...ctx.defaults }
    for (const [k, t] of spec.claims) {
      const r = Template.render(t, tctx)
      // A claim whose inputs are unset is left out, or keeps the value known at send time (`aud`).
      if (r._tag === "Value") claims[k] = Template.reveal(r.value)
    }
    const now = Math.floor(ctx.now / 1000)
    const header: { alg: string; typ: string; kid?: string } = { alg: algorithm, typ: "JWT" }
    if (spec.kid) {
      const k = Template.render(spec.kid, tctx)
      if (k._tag === "Value" && Template.reveal(k.value) !== "") header.kid = Template.reveal(k.value)
    }
    const payload: Record<string, unknown> = {
      ...claims,
      iat: now - spec.iatBackdateSeconds,
      exp: now + spec.lifetimeSeconds,
      ...(spec.jti ? { jti: randomUUID() } : {})
    }
    return Effect.tryPromise({
      try: () => new SignJWT(payload).setProtectedHeader(header).sign(key),
      // jose says why (a key of the wrong type or size); nothing of the key itself is in it, but say it our way.
      catch: () =>
        new InputInvalid({
          connection: c.name,
          provider: c.manifest.id,
          details: [
            `${keyName} cannot sign ${algorithm} (signing ${ctx.where}): ${algorithm} needs ${needs(algorithm)}${key.asymmetricKeyType ? `, the key is ${key.asymmetricKeyType.toUpperCase()}` : ""}`
          ]
        })
    }).pipe(Effect.map((jwt) => Redacted.make(jwt, { label: "assertion" })))
  })

/** The request with its JWTs signed (a fresh `iat`, `exp` and `jti` each call) and put where they go. */
export const complete = (
  connection: Connection,
  request: TokenRequest,
  now: number
): Effect.Effect<TokenRequest, InputInvalid> =>
  Effect.gen(function* () {
    if (!request.jwts || request.jwts.length === 0) return request
    let form = request.form
    let json = request.json
    let headers = request.headers
    for (const p of request.jwts) {
      const jwt = yield* sign(p.spec, { connection, where: p.where, defaults: p.defaults, now })
      if (p.target === "authorization")
        headers = [
          ...headers,
          ["Authorization", Redacted.make(`Bearer ${Redacted.value(jwt)}`, { label: "authorization" })]
        ]
      else if (request.encoding === "json") json = { ...json, [p.target]: jwt }
      else form = [...(form ?? []), [p.target, jwt]]
    }
    return { ...request, headers, form, json, jwts: [] }
  })
