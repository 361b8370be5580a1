/** The bundled JWT manifests over a real socket: a loopback server in the role of Google's token endpoint,
 *  Salesforce's and GitHub's API checks each request exactly (method, path, headers, body fields) and verifies the
 *  JWT with jose against the public key, as the provider would; then the token is used for an API call. Every
 *  endpoint is overridden through the connection's inputs. */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from "jose"
import { generateKeyPairSync } from "node:crypto"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll } from "vitest"
import * as Api from "../src/api.ts"
import { makeHarness, type Harness } from "./services/harness.ts"

const key = generateKeyPairSync("rsa", { modulusLength: 2048 })
const pkcs1 = key.privateKey.export({ type: "pkcs1", format: "pem" }).toString()
const pkcs8 = key.privateKey.export({ type: "pkcs8", format: "pem" }).toString()

interface Seen {
  readonly method: string
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly jwt?: { readonly header: Record<string, unknown>; readonly claims: JWTPayload } | undefined
}
const seen: Seen[] = []
let server: http.Server
let origin: string
let h: Harness

const verify = async (jwt: string | null | undefined) => {
  if (!jwt) return undefined
  const { payload } = await jwtVerify(jwt, key.publicKey)
  return { header: decodeProtectedHeader(jwt) as Record<string, unknown>, claims: payload }
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = ""
    req.on("data", (c: Buffer) => (body += c.toString()))
    req.on("end", () => {
      void (async () => {
        const path = req.url ?? ""
        const json = (status: number, v: unknown) =>
          res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(v))
        try {
          if (path === "/google/token" || path === "/sf/services/oauth2/token") {
            const jwt = await verify(new URLSearchParams(body).get("assertion"))
            seen.push({ method: req.method!, path, headers: req.headers, body, jwt })
            return path.startsWith("/google")
              ? json(200, { access_token: "ya29.loopback", expires_in: 3599, token_type: "Bearer" })
              : json(200, { access_token: "00D!loopback", instance_url: `${origin}/sf-instance`, token_type: "Bearer" })
          }
          if (path === "/gh/app/installations/4242/access_tokens") {
            const jwt = await verify(req.headers.authorization?.replace(/^Bearer /, ""))
            seen.push({ method: req.method!, path, headers: req.headers, body, jwt })
            return json(201, { token: "ghs_loopback", expires_at: new Date(Date.now() + 3_600_000).toISOString() })
          }
          seen.push({ method: req.method!, path, headers: req.headers, body })
          return json(200, { ok: true })
        } catch {
          seen.push({ method: req.method!, path, headers: req.headers, body })
          return json(401, { error: "invalid_grant", error_description: "bad signature" })
        }
      })()
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  h = await makeHarness({
    extra: () => ({
      google: {
        provider: "google-service-account",
        inputs: {
          client_email: "svc@p.iam.gserviceaccount.com",
          private_key: JSON.stringify({ type: "service_account", private_key: pkcs8, private_key_id: "kid-9" }),
          private_key_id: "kid-9",
          scope: "https://www.googleapis.com/auth/cloud-platform",
          token_url: `${origin}/google/token`,
          api_base_url: `${origin}/google-api`
        }
      },
      salesforce: {
        provider: "salesforce-jwt",
        inputs: {
          client_id: "3MVG9.consumer",
          username: "integration@acme.example",
          private_key: pkcs1,
          audience: "https://login.salesforce.com",
          token_url: `${origin}/sf/services/oauth2/token`,
          instance_url: `${origin}/sf-instance`
        }
      },
      github: {
        provider: "github-app",
        inputs: { app_id: "Iv23liApp", installation_id: "4242", private_key: pkcs1, api_url: `${origin}/gh` }
      }
    })
  })
})
afterAll(async () => {
  await h?.close()
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()))
})

const lastAt = (path: string) => seen.filter((s) => s.path === path).at(-1)!

describe("JWT bearer grant (RFC 7523 §2.1)", () => {
  it.live("google-service-account: the form and the verified JWT, as Google documents them", () =>
    Effect.gen(function* () {
      const started = Math.floor(Date.now() / 1000)
      const r = yield* h.engine.getToken("google")
      const s = lastAt("/google/token")
      assert.strictEqual(s.method, "POST")
      assert.match(String(s.headers["content-type"]), /^application\/x-www-form-urlencoded/)
      assert.isUndefined(s.headers.authorization)
      const form = Object.fromEntries(new URLSearchParams(s.body))
      assert.deepStrictEqual(Object.keys(form).sort(), ["assertion", "grant_type"])
      assert.strictEqual(form["grant_type"], "urn:ietf:params:oauth:grant-type:jwt-bearer")
      assert.deepStrictEqual(s.jwt!.header, { alg: "RS256", typ: "JWT", kid: "kid-9" })
      const { iat, exp, ...rest } = s.jwt!.claims
      assert.deepStrictEqual(rest, {
        iss: "svc@p.iam.gserviceaccount.com",
        scope: "https://www.googleapis.com/auth/cloud-platform",
        aud: `${origin}/google/token`
      })
      assert.closeTo(iat!, started, 2)
      assert.strictEqual(exp! - iat!, 3600)
      assert.strictEqual(Redacted.value(r.accessToken), "ya29.loopback")
      const call = yield* Api.call(h.engine, "google", { method: "GET", target: "/storage/v1/b" })
      assert.strictEqual(call.status, 200)
      assert.strictEqual(lastAt("/google-api/storage/v1/b").headers.authorization, "Bearer ya29.loopback")
    })
  )

  it.live("salesforce-jwt: sub = the username, aud = the login host, exp 3 minutes; no expires_in: 2 h", () =>
    Effect.gen(function* () {
      const r = yield* h.engine.getToken("salesforce")
      const s = lastAt("/sf/services/oauth2/token")
      const { iat, exp, ...rest } = s.jwt!.claims
      assert.deepStrictEqual(rest, {
        iss: "3MVG9.consumer",
        sub: "integration@acme.example",
        aud: "https://login.salesforce.com"
      })
      assert.strictEqual(exp! - iat!, 180)
      assert.strictEqual(r.expirySource, "ttl")
      assert.closeTo((r.expiresAt.getTime() - Date.now()) / 1000, 7200, 5)
      yield* Api.call(h.engine, "salesforce", { method: "GET", target: "/services/data/v62.0/limits" })
      assert.strictEqual(lastAt("/sf-instance/services/data/v62.0/limits").headers.authorization, "Bearer 00D!loopback")
    })
  )
})

describe("GitHub App installation token: two steps", () => {
  it.live("an app JWT as Authorization: Bearer to POST /app/installations/{id}/access_tokens, then token calls", () =>
    Effect.gen(function* () {
      const started = Math.floor(Date.now() / 1000)
      const r = yield* h.engine.getToken("github")
      const s = lastAt("/gh/app/installations/4242/access_tokens")
      assert.strictEqual(s.method, "POST")
      assert.strictEqual(s.headers.accept, "application/vnd.github+json")
      assert.strictEqual(s.headers["x-github-api-version"], "2022-11-28")
      assert.strictEqual(s.body, "{}")
      assert.deepStrictEqual(s.jwt!.header, { alg: "RS256", typ: "JWT" })
      const { iat, exp, ...rest } = s.jwt!.claims
      assert.deepStrictEqual(rest, { iss: "Iv23liApp" })
      assert.closeTo(iat!, started - 60, 2)
      assert.isAtMost(exp! - (iat! + 60), 600)
      assert.strictEqual(r.expirySource, "expires_at")
      assert.closeTo((r.expiresAt.getTime() - Date.now()) / 1000, 3600, 5)
      yield* Api.call(h.engine, "github", { method: "GET", target: "/repos/acme/app" })
      assert.strictEqual(lastAt("/gh/repos/acme/app").headers.authorization, "Bearer ghs_loopback")
    })
  )
})
