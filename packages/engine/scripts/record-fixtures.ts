/** Records providers/fixtures/<id>/<case>.json from the @tessera/testkit sandbox, the offline evidence that
 *  `tessera validate --fixtures` replays (format: src/fixture.ts).
 *
 *  Each case sends the request the engine builds for a connection to the sandbox, then writes down what the
 *  sandbox received (its own record of method, path, headers and parsed body) and what it answered. The
 *  expectation is written here by hand per case, from what the sandbox is known to issue (its TTLs, where each
 *  provider puts the token, which error it sends), not from the engine's decoder. The sandbox origin
 *  (http://127.0.0.1:<random port>) is replaced by https://sandbox.invalid everywhere, inputs included, so the
 *  files are stable and the replay, which never touches the network, rebuilds the same URLs. Tokens are signed
 *  JWTs and are kept byte for byte; their claims still name the loopback origin.
 *
 *  Run from the repository root: node packages/engine/scripts/record-fixtures.ts
 *  It rewrites every fixture it knows, then replays the whole directory and exits 1 on any mismatch. */
import { decodeJwt, startSandbox, type ProviderId, type RecordedRequest, type Sandbox } from "@tessera/testkit"
import { Effect, Redacted } from "effect"
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Catalog from "../src/catalog.ts"
import * as Connection from "../src/connection.ts"
import * as Fixture from "../src/fixture.ts"
import type { Token } from "../src/token.ts"
import * as TokenRequest from "../src/token-request.ts"

const placeholder = "https://sandbox.invalid"
const outDir = fileURLToPath(new URL("../../../providers/fixtures/", import.meta.url))
/** Response headers worth keeping: the ones a decoder may read. Transport noise (content-length, keep-alive) is dropped. */
const keptResponseHeaders = ["content-type", "date", "cache-control", "pragma", "www-authenticate", "retry-after"]

interface Exchange {
  readonly request: RecordedRequest
  readonly status: number
  readonly headers: Record<string, string>
  readonly text: string
  readonly json: unknown
}

type Expect = Fixture.Fixture["expect"]

interface Case {
  readonly provider: ProviderId
  readonly name: string
  readonly description: string
  readonly flow: "acquire" | "refresh"
  /** Changes to the sandbox's demo inputs for this provider. */
  readonly inputs?: (sb: Sandbox) => Record<string, string>
  readonly before?: (sb: Sandbox) => void
  /** Refresh cases: the refresh token to redeem, from earlier exchanges (by "provider/name"). */
  readonly refreshToken?: (done: ReadonlyMap<string, Exchange>) => string
  readonly expect: (x: Exchange, done: ReadonlyMap<string, Exchange>) => Expect
}

const get = (v: unknown, path: string): unknown =>
  path
    .split(".")
    .reduce<unknown>((o, k) => (o !== null && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), v)
const str = (v: unknown, what: string): string => {
  if (typeof v !== "string") throw new Error(`expected a string at ${what}, found ${JSON.stringify(v)}`)
  return v
}
const dateSeconds = (x: Exchange) => Date.parse(x.headers["date"] ?? "") / 1000

/** A successful exchange: status 200, the token where the provider puts it, the lifetime the sandbox issued. */
const issued = (
  x: Exchange,
  at: string,
  opts: { refresh?: string; lifetime: number; source: "expires_in" | "jwt_exp"; scope?: string }
): Expect => {
  if (x.status !== 200) throw new Error(`expected HTTP 200, got ${x.status}: ${x.text}`)
  return {
    access_token: str(get(x.json, `${at}access_token`) ?? get(x.json, `${at}token`), "access token"),
    token_type: "Bearer",
    refresh_token: opts.refresh === undefined ? null : str(get(x.json, opts.refresh), opts.refresh),
    ...(opts.scope !== undefined ? { scope: opts.scope } : {}),
    expiry_source: opts.source,
    lifetime_seconds: opts.lifetime
  }
}

const rejected = (
  x: Exchange,
  status: number,
  kind: "reauthenticate" | "transient" | "rate_limit" | "other",
  code: string
): Expect => {
  if (x.status !== status) throw new Error(`expected HTTP ${status}, got ${x.status}: ${x.text}`)
  return { error: "UpstreamRejected", status, kind, code }
}

const cases: ReadonlyArray<Case> = [
  {
    provider: "cube",
    name: "success",
    flow: "acquire",
    description:
      "client_credentials with client_secret_post and scope=profile, resource=connectapi, acr_values=tenant:<tenant>; a 24 h Bearer token from expires_in",
    expect: (x) => issued(x, "", { lifetime: 86400, source: "expires_in" })
  },
  {
    provider: "cube",
    name: "invalid-client",
    flow: "acquire",
    description:
      "a wrong client secret: CUBE (IdentityServer) answers 400 invalid_client, which means re-authenticate, not retry",
    inputs: () => ({ client_secret: "not-the-secret" }),
    expect: (x) => rejected(x, 400, "reauthenticate", "invalid_client")
  },
  {
    provider: "dvinci",
    name: "success",
    flow: "acquire",
    description:
      "client_credentials on the customer host with exactly grant_type, client_id and client_secret in the form; a 30 min token from expires_in",
    expect: (x) => issued(x, "", { lifetime: 1800, source: "expires_in" })
  },
  {
    provider: "dvinci",
    name: "bad-secret",
    flow: "acquire",
    description: "a wrong API token: 401 invalid_client, re-authenticate",
    inputs: () => ({ client_secret: "not-the-api-token" }),
    expect: (x) => rejected(x, 401, "reauthenticate", "invalid_client")
  },
  {
    provider: "usage-engine",
    name: "success",
    flow: "acquire",
    description: "client_credentials with the audience in the form; a 1 h token from expires_in and the granted scope",
    expect: (x) => issued(x, "", { lifetime: 3600, source: "expires_in", scope: "read:usage write:usage" })
  },
  {
    provider: "usage-engine",
    name: "wrong-audience",
    flow: "acquire",
    description:
      "an audience the IdP does not serve: 403 access_denied (Auth0 style), neither a credentials nor a transient failure",
    inputs: (sb) => ({ audience: `${sb.url}/usage-engine/other-api` }),
    expect: (x) => rejected(x, 403, "other", "access_denied")
  },
  {
    provider: "brandbox",
    name: "success",
    flow: "acquire",
    description:
      "password grant with the tenant id as client_id and '-' as client_secret; the token wrapped in {code: 0, body: {...}}",
    expect: (x) => issued(x, "body.", { refresh: "body.refresh_token", lifetime: 3600, source: "expires_in" })
  },
  {
    provider: "brandbox",
    name: "envelope-error",
    flow: "acquire",
    description: "HTTP 200 whose envelope says code 5 (tenant locked): a rejection, whatever the status",
    before: (sb) => sb.inject("brandbox", { type: "envelopeError" }),
    expect: (x) => rejected(x, 200, "other", "5")
  },
  {
    provider: "brandbox",
    name: "refresh-rotation",
    flow: "refresh",
    description: "grant_type=refresh_token with the client fields on the same URL; brandbox rotates the refresh token",
    refreshToken: (done) =>
      str(get(done.get("brandbox/success")!.json, "body.refresh_token"), "brandbox refresh token"),
    expect: (x, done) => {
      const e = issued(x, "body.", { refresh: "body.refresh_token", lifetime: 3600, source: "expires_in" })
      if ("refresh_token" in e && e.refresh_token === get(done.get("brandbox/success")!.json, "body.refresh_token"))
        throw new Error("brandbox did not rotate the refresh token")
      return e
    }
  },
  {
    provider: "crm-com",
    name: "success",
    flow: "acquire",
    description:
      "the consumer key as the Basic user name with an empty password and a JSON body; token at data.token, expiry from the JWT exp claim sent as a numeric string",
    expect: (x) => {
      const token = str(get(x.json, "data.token"), "data.token")
      const exp = decodeJwt(token)?.payload["exp"]
      if (typeof exp !== "string") throw new Error(`expected exp as a numeric string, found ${JSON.stringify(exp)}`)
      return issued(x, "data.", { lifetime: Number(exp) - dateSeconds(x), source: "jwt_exp" })
    }
  },
  {
    provider: "crm-com",
    name: "auth-failed",
    flow: "acquire",
    description:
      "a wrong authentication code: HTTP 200 with status.code AUTH_FAILED instead of OK, which is a rejection",
    inputs: () => ({ authentication_code: "not-the-code" }),
    expect: (x) => rejected(x, 200, "other", "AUTH_FAILED")
  },
  {
    provider: "oauth2",
    name: "client-secret-basic",
    flow: "acquire",
    description:
      "RFC 6749 §4.4 client_credentials with HTTP Basic client authentication (the default, §2.3.1); no refresh token",
    expect: (x) => issued(x, "", { lifetime: 3600, source: "expires_in" })
  },
  {
    provider: "oauth2",
    name: "client-secret-post",
    flow: "acquire",
    description: "client_credentials with client_id and client_secret in the form body and no Authorization header",
    inputs: () => ({ client_auth: "client_secret_post" }),
    expect: (x) => issued(x, "", { lifetime: 3600, source: "expires_in" })
  },
  {
    provider: "oauth2",
    name: "password",
    flow: "acquire",
    description: "RFC 6749 §4.3 password grant with a scope; the server issues a refresh token",
    inputs: () => ({ grant_type: "password", username: "alice", password: "alice-password", scope: "read" }),
    expect: (x) => issued(x, "", { refresh: "refresh_token", lifetime: 3600, source: "expires_in", scope: "read" })
  },
  {
    provider: "oauth2",
    name: "refresh-rotation",
    flow: "refresh",
    description: "RFC 6749 §6 refresh with the scope repeated; the server rotates the refresh token",
    inputs: () => ({ grant_type: "password", username: "alice", password: "alice-password", scope: "read" }),
    refreshToken: (done) => str(get(done.get("oauth2/password")!.json, "refresh_token"), "oauth2 refresh token"),
    expect: (x, done) => {
      const e = issued(x, "", { refresh: "refresh_token", lifetime: 3600, source: "expires_in", scope: "read" })
      if ("refresh_token" in e && e.refresh_token === get(done.get("oauth2/password")!.json, "refresh_token"))
        throw new Error("oauth2 did not rotate the refresh token")
      return e
    }
  },
  {
    provider: "oauth2",
    name: "refresh-invalid-grant",
    flow: "refresh",
    description:
      "redeeming a refresh token that was already rotated away: 400 invalid_grant, re-authenticate (fall back to acquire)",
    inputs: () => ({ grant_type: "password", username: "alice", password: "alice-password", scope: "read" }),
    refreshToken: (done) => str(get(done.get("oauth2/password")!.json, "refresh_token"), "oauth2 refresh token"),
    expect: (x) => rejected(x, 400, "reauthenticate", "invalid_grant")
  }
]

const run = async () => {
  const catalog = await Effect.runPromise(Catalog.load())
  const sb = await startSandbox()
  const done = new Map<string, Exchange>()
  try {
    for (const c of cases) {
      const manifest = catalog.manifests.get(c.provider)
      if (!manifest) throw new Error(`no manifest for ${c.provider}`)
      const flow = manifest.flows[c.flow]
      if (!flow) throw new Error(`${c.provider} has no ${c.flow} flow`)
      const givenInputs = { ...sb.credentials[c.provider], ...c.inputs?.(sb) }
      const { inputs, issues } = Connection.resolveInputs(
        manifest,
        new Map(Object.entries(givenInputs).map(([k, value]) => [k, { value, literal: false }])),
        { allowInsecureHttp: true }
      )
      const errors = issues.filter((i) => i.severity === "error")
      if (errors.length > 0) throw new Error(`${c.provider}/${c.name}: ${errors.map((i) => i.message).join("; ")}`)
      const refreshToken = c.refreshToken?.(done)
      const token: Token | undefined =
        refreshToken === undefined
          ? undefined
          : {
              accessToken: Redacted.make("unused"),
              refreshToken: Redacted.make(refreshToken),
              tokenType: "Bearer",
              expiresAt: 0,
              obtainedAt: 0,
              expirySource: "default"
            }
      const built = TokenRequest.build(
        { name: c.name, manifest, inputs, allowInsecureHttp: true, tags: {}, source: "config" as const, version: 0 },
        flow,
        token
      )
      if (built._tag === "Invalid") throw new Error(`${c.provider}/${c.name}: ${built.details.join("; ")}`)
      const wire = TokenRequest.encode(built.request)
      c.before?.(sb)
      const seen = sb.requests.length
      const res = await fetch(wire.url, {
        method: built.request.method,
        headers: wire.headers,
        body: wire.body ?? null,
        redirect: "manual"
      })
      const text = await res.text()
      const request = sb.requests.slice(seen).find((r) => r.kind === "token")
      if (!request) throw new Error(`${c.provider}/${c.name}: the sandbox recorded no token request`)
      const headers = Object.fromEntries(
        keptResponseHeaders.flatMap((h) => (res.headers.has(h) ? [[h, res.headers.get(h)!]] : []))
      )
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
      const x: Exchange = { request, status: res.status, headers, text, json }
      const expect = c.expect(x, done)
      done.set(`${c.provider}/${c.name}`, x)

      const sentHeaders = ["accept", "content-type", "authorization", ...flow.headers.map(([k]) => k.toLowerCase())]
      const fixture: Fixture.Fixture = {
        format: Fixture.formatVersion,
        description: c.description,
        provider: c.provider,
        flow: c.flow,
        recorded: { with: "@tessera/testkit sandbox", at: new Date().toISOString() },
        inputs: givenInputs,
        ...(refreshToken !== undefined ? { token: { refresh_token: refreshToken } } : {}),
        request: {
          method: request.method === "GET" ? "GET" : "POST",
          url: `${sb.url}${request.path}`,
          headers: Object.fromEntries(sentHeaders.map((h) => [h, request.headers[h] ?? null])),
          ...(request.form !== undefined
            ? { form: request.form }
            : { json: request.json as Fixture.Fixture["request"]["json"] & {} })
        },
        response: {
          status: x.status,
          headers,
          ...(json !== undefined ? { body: json as Fixture.Fixture["response"]["body"] & {} } : { text })
        },
        expect
      }
      const out = join(outDir, c.provider, `${c.name}.json`)
      await mkdir(join(outDir, c.provider), { recursive: true })
      await writeFile(out, `${JSON.stringify(fixture, null, 2).split(sb.url).join(placeholder)}\n`)
      console.log(`recorded ${c.provider}/${c.name} (HTTP ${x.status})`)
    }
  } finally {
    await sb.close()
  }
  const all = await Effect.runPromise(Fixture.replayAll(outDir, catalog))
  for (const r of all.replays) console.log(Fixture.format(r))
  for (const e of all.invalid) console.log(e.message)
  if (all.invalid.length > 0 || all.replays.some((r) => !Fixture.isClean(r))) process.exitCode = 1
}

await run()
