/** The generic oauth2 manifest against a real IdP, oidc-provider (@tessera/testkit/oidc-idp), in-process on
 *  loopback: discovery from an issuer with a path (RFC 8414's location answers 404, OpenID Connect Discovery's
 *  answers) and client_credentials with private_key_jwt (RS256 from a PKCS#1 PEM, ES256 from a SEC1 PEM, PS256
 *  from a JWK, with kid) and client_secret_jwt (HS256), each assertion checked by oidc-provider itself (signature,
 *  iss = sub = client_id, aud, exp, a jti never seen before). Plus the failures a user meets: the wrong key, a key
 *  that cannot be read, metadata for another issuer. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { exportJWK } from "jose"
import { generateKeyPairSync } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll } from "vitest"
import { startOidcIdp, type OidcIdp } from "@tessera/testkit/oidc-idp"
import * as Discovery from "../src/discovery.ts"
import * as Http from "../src/http.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
const pss = generateKeyPairSync("rsa", { modulusLength: 2048 })
const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 })
const rsaPkcs1 = rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString()
const ecSec1 = ec.privateKey.export({ type: "sec1", format: "pem" }).toString()
const pssJwk = JSON.stringify({ ...pss.privateKey.export({ format: "jwk" }), kid: "pss-1" })
const hsSecret = "a-shared-client-secret-of-more-than-32-bytes-0123456789"

let idp: OidcIdp
let h: Harness
let wrongIssuer: http.Server
let wrongIssuerUrl: string

const client = (client_id: string, extra: Record<string, unknown>) => ({
  client_id,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  scope: "api:read",
  ...extra
})

beforeAll(async () => {
  const jwk = async (k: typeof rsa.publicKey, kid: string, alg: string) => ({
    ...(await exportJWK(k)),
    kid,
    alg,
    use: "sig"
  })
  idp = await startOidcIdp({
    issuerPath: "/tenant-a",
    clients: [
      client("svc-rs256", {
        token_endpoint_auth_method: "private_key_jwt",
        jwks: { keys: [await jwk(rsa.publicKey, "rsa-1", "RS256")] }
      }),
      client("svc-es256", {
        token_endpoint_auth_method: "private_key_jwt",
        jwks: { keys: [await jwk(ec.publicKey, "ec-1", "ES256")] }
      }),
      client("svc-ps256", {
        token_endpoint_auth_method: "private_key_jwt",
        token_endpoint_auth_signing_alg: "PS256",
        jwks: { keys: [await jwk(pss.publicKey, "pss-1", "PS256")] }
      }),
      client("svc-hs256", { token_endpoint_auth_method: "client_secret_jwt", client_secret: hsSecret })
    ]
  })
  // Metadata that names another issuer (RFC 8414 §3.3: must not be used).
  wrongIssuer = http.createServer((req, res) => {
    res.setHeader("content-type", "application/json")
    // Under /insecure: the right issuer, but a token endpoint over plain http to another host.
    const insecure = req.url?.includes("/insecure") ?? false
    res.end(
      JSON.stringify(
        insecure
          ? { issuer: `${wrongIssuerUrl}/insecure`, token_endpoint: "http://evil.example/token" }
          : { issuer: "https://evil.example", token_endpoint: `${wrongIssuerUrl}/token` }
      )
    )
  })
  await new Promise<void>((r) => wrongIssuer.listen(0, "127.0.0.1", () => r()))
  wrongIssuerUrl = `http://127.0.0.1:${(wrongIssuer.address() as AddressInfo).port}`
  const oauth2 = (inputs: Record<string, string>) => ({
    provider: "oauth2",
    inputs: { issuer: idp.issuer, scope: "api:read", ...inputs }
  })
  h = await makeHarness({
    extra: () => ({
      rs256: oauth2({ client_id: "svc-rs256", client_auth: "private_key_jwt", private_key: rsaPkcs1, key_id: "rsa-1" }),
      es256: oauth2({ client_id: "svc-es256", client_auth: "private_key_jwt", private_key: ecSec1 }),
      ps256: oauth2({
        client_id: "svc-ps256",
        client_auth: "private_key_jwt",
        private_key: pssJwk,
        assertion_alg: "PS256",
        key_id: "pss-1"
      }),
      hs256: oauth2({ client_id: "svc-hs256", client_auth: "client_secret_jwt", client_secret: hsSecret }),
      direct: {
        provider: "oauth2",
        inputs: {
          token_url: idp.tokenEndpoint,
          client_id: "svc-rs256",
          client_auth: "private_key_jwt",
          private_key: rsaPkcs1,
          scope: "api:read"
        }
      },
      "wrong-key": oauth2({
        client_id: "svc-rs256",
        client_auth: "private_key_jwt",
        private_key: stranger.privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      }),
      "public-key": oauth2({
        client_id: "svc-rs256",
        client_auth: "private_key_jwt",
        private_key: rsa.publicKey.export({ type: "spki", format: "pem" }).toString()
      }),
      "not-a-key": oauth2({
        client_id: "svc-rs256",
        client_auth: "private_key_jwt",
        private_key: "-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----"
      }),
      "wrong-issuer": oauth2({ issuer: wrongIssuerUrl, client_id: "x", client_secret: "y" }),
      "insecure-endpoint": oauth2({ issuer: `${wrongIssuerUrl}/insecure`, client_id: "x", client_secret: "y" })
    })
  })
})
afterAll(async () => {
  await h?.close()
  await idp?.close()
  await new Promise<void>((r) => (wrongIssuer ? wrongIssuer.close(() => r()) : r()))
})

describe("discovery (RFC 8414, then OpenID Connect Discovery) from an issuer with a path", () => {
  it("tries the RFC 8414 inserted path first, then the appended OIDC one", () => {
    assert.deepStrictEqual(Discovery.metadataUrls("https://as.example/tenant-a/"), [
      "https://as.example/.well-known/oauth-authorization-server/tenant-a",
      "https://as.example/tenant-a/.well-known/openid-configuration"
    ])
    assert.deepStrictEqual(Discovery.metadataUrls("https://as.example"), [
      "https://as.example/.well-known/oauth-authorization-server",
      "https://as.example/.well-known/openid-configuration"
    ])
  })

  it.live(
    "finds the token endpoint, reads the metadata once per process, and gives other endpoints to other flows",
    () =>
      Effect.gen(function* () {
        Discovery.clearCache()
        const before = idp.requests.length
        const r = yield* h.engine.getToken("rs256")
        assert.strictEqual(r.decision.action, "acquired")
        assert.strictEqual(r.tokenType, "Bearer")
        const paths = idp.requests.slice(before).map((x) => `${x.method} ${x.path}`)
        assert.deepStrictEqual(paths, [
          "GET /.well-known/oauth-authorization-server/tenant-a",
          "GET /tenant-a/.well-known/openid-configuration",
          `POST ${new URL(idp.tokenEndpoint).pathname}`
        ])
        const c = yield* h.engine.connection("rs256")
        const device = yield* Discovery.endpoint(c, "device_authorization_endpoint").pipe(Effect.provide(Http.layer))
        assert.match(device!, /^http:\/\/127\.0\.0\.1:\d+\/tenant-a\//)
        yield* h.engine.getToken("es256")
        assert.strictEqual(idp.requests.filter((x) => x.path.includes(".well-known")).length, 2)
      })
  )

  it.live("metadata naming another issuer is refused (RFC 8414 §3.3)", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(h.engine.getToken("wrong-issuer"))
      assert.strictEqual(e._tag, "ResponseInvalid")
      assert.match(e.message, /issuer: says "https:\/\/evil\.example", expected exactly "http:\/\/127\.0\.0\.1:\d+"/)
      assert.match(e.message, /RFC 8414 §3\.3/)
    })
  )
})

describe("discovered endpoints are checked like inputs", () => {
  it.live("a token endpoint over plain http to another host is refused, naming the field", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(h.engine.getToken("insecure-endpoint"))
      assert.strictEqual(e._tag, "ResponseInvalid")
      assert.match(e.message, /token_endpoint: http:\/\/evil\.example\/token uses plain http:\/\/ to evil\.example/)
    })
  )
})

describe("private_key_jwt and client_secret_jwt, accepted by oidc-provider", () => {
  for (const name of ["rs256", "es256", "ps256", "hs256", "direct"])
    it.live(`${name}: a token for client_credentials`, () =>
      Effect.gen(function* () {
        const r = yield* h.engine.getToken(name, { force: true })
        assert.isAbove(Redacted.value(r.accessToken).length, 10)
        assert.isAbove(r.expiresAt.getTime() - Date.now(), 290_000)
      })
    )

  it.live("each attempt signs a fresh jti: renewals in a row are all accepted", () =>
    Effect.gen(function* () {
      for (let i = 0; i < 3; i++) yield* h.engine.getToken("rs256", { force: true })
    })
  )

  it.live("--dry-run shows the signed assertion masked, with its type", () =>
    Effect.gen(function* () {
      const req = yield* h.engine.describeRequest("rs256")
      const form = Object.fromEntries(req.form!.map(([k, v]) => [k, typeof v === "string" ? v : "(redacted)"]))
      assert.deepStrictEqual(form, {
        grant_type: "client_credentials",
        client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        scope: "api:read",
        client_assertion: "(redacted)"
      })
      assert.strictEqual(req.url, idp.tokenEndpoint)
    })
  )

  it.live("another key: invalid_client, a credential problem, not retried", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(h.engine.getToken("wrong-key"))
      assert.strictEqual(e._tag, "UpstreamRejected")
      if (e._tag !== "UpstreamRejected") return
      assert.strictEqual(e.code, "invalid_client")
      assert.strictEqual(e.kind, "reauthenticate")
      assert.strictEqual(e.attempts, 1)
    })
  )

  it.live("a public key or a broken one: InputInvalid naming the connection and the input, never the key", () =>
    Effect.gen(function* () {
      const pub = yield* Effect.flip(h.engine.getToken("public-key"))
      assert.strictEqual(pub._tag, "InputInvalid")
      assert.match(pub.message, /connection "public-key" \(oauth2\)/)
      assert.match(pub.message, /input "private_key" holds a public key/)
      const broken = yield* Effect.flip(h.engine.getToken("not-a-key"))
      assert.match(broken.message, /input "private_key" cannot be read as a private key; give PEM/)
      const publicBody = rsa.publicKey.export({ type: "spki", format: "pem" }).toString().split("\n")[1]!
      for (const e of [pub, broken]) {
        assert.notInclude(e.message, "bm9wZQ")
        assert.notInclude(e.message, publicBody)
        assert.notInclude(e.message, "END PRIVATE KEY")
      }
    })
  )
})
