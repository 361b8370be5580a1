/** The oidc-provider starter: discovery at the issuer (with and without a path) and a client_credentials token for a
 *  private_key_jwt client whose assertion is signed here with jose. */
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from "jose"
import { randomUUID } from "node:crypto"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startOidcIdp, type OidcIdp } from "../src/oidc-idp.ts"
import { postForm } from "./helpers.ts"

const assertionFor = async (key: CryptoKey, clientId: string, aud: string, jti = randomUUID()) =>
  new SignJWT({})
    .setProtectedHeader({ alg: "RS256", kid: "client-1" })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(aud)
    .setJti(jti)
    .setIssuedAt()
    .setExpirationTime("60s")
    .sign(key)

describe("startOidcIdp", () => {
  let idp: OidcIdp
  let key: CryptoKey
  beforeAll(async () => {
    const pair = await generateKeyPair("RS256", { extractable: true })
    key = pair.privateKey
    idp = await startOidcIdp({
      issuerPath: "/tenant-a",
      clients: [
        {
          client_id: "svc",
          token_endpoint_auth_method: "private_key_jwt",
          jwks: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: "client-1", alg: "RS256", use: "sig" }] },
          grant_types: ["client_credentials"],
          redirect_uris: [],
          response_types: [],
          scope: "api:read"
        }
      ]
    })
  })
  afterAll(() => idp.close())

  it("publishes OpenID configuration at the issuer, and 404 at the RFC 8414 inserted path it does not serve", async () => {
    expect(idp.issuer).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/tenant-a$/)
    const oidc = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<
      string,
      unknown
    >
    expect(oidc["issuer"]).toBe(idp.issuer)
    expect(oidc["token_endpoint"]).toBe(idp.tokenEndpoint)
    expect(oidc["token_endpoint_auth_methods_supported"]).toContain("private_key_jwt")
    const inserted = await fetch(`${idp.origin}/.well-known/oauth-authorization-server/tenant-a`)
    expect(inserted.status).toBe(404)
    expect(idp.requests.map((r) => r.path)).toEqual([
      "/tenant-a/.well-known/openid-configuration",
      "/.well-known/oauth-authorization-server/tenant-a"
    ])
  })

  it("issues a client_credentials token to a private_key_jwt client, and refuses a replayed assertion", async () => {
    const assertion = await assertionFor(key, "svc", idp.issuer)
    const form = {
      grant_type: "client_credentials",
      scope: "api:read",
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: assertion
    }
    const res = await postForm(idp.tokenEndpoint, form)
    const body = (await res.json()) as Record<string, unknown>
    expect(res.status).toBe(200)
    expect(body).toMatchObject({ token_type: "Bearer", expires_in: 300, scope: "api:read" })
    expect(typeof body["access_token"]).toBe("string")
    const again = await postForm(idp.tokenEndpoint, form)
    expect(again.status).toBe(401)
    expect(((await again.json()) as Record<string, unknown>)["error"]).toBe("invalid_client")
  })
})
