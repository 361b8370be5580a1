/** A loopback OAuth 2.0 provider for the connect flow's wire tests, written from RFC 6749 §4.1 and RFC 7636: an
 *  authorization endpoint that records what it was sent and "approves" by redirecting with a code, and a token
 *  endpoint that redeems a code once, only with the redirect_uri it was issued for and a code_verifier whose S256
 *  matches the challenge, and then refreshes (rotating the refresh token). It records every request as received,
 *  so a test can assert the exchange byte for byte, and can be told to fail. */
import { createHash, randomBytes } from "node:crypto"
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

export interface Recorded {
  readonly method: string
  readonly path: string
  readonly query: Record<string, string>
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  readonly form: Record<string, string>
}

export interface LoopbackOAuth {
  readonly url: string
  readonly authorizeUrl: string
  readonly tokenUrl: string
  readonly clientId: string
  readonly clientSecret: string
  readonly requests: Recorded[]
  /** Token requests only. */
  readonly tokenRequests: () => Recorded[]
  /** Makes the next token requests answer this (status, JSON body) instead. */
  fail: ((r: Recorded) => { status: number; body: unknown } | undefined) | undefined
  /** The refresh token currently valid. */
  readonly refreshTokens: () => ReadonlyArray<string>
  /** A code issued as the authorization endpoint would, for this authorization request's query. */
  readonly issueCode: (query: Record<string, string>) => string
  readonly close: () => Promise<void>
}

const s256 = (v: string) => createHash("sha256").update(v).digest("base64url")

export const startLoopbackOAuth = async (): Promise<LoopbackOAuth> => {
  const clientId = "connect-client"
  const clientSecret = `cs-${randomBytes(12).toString("hex")}`
  const requests: Recorded[] = []
  const codes = new Map<string, { challenge: string; method: string; redirectUri: string; clientId: string }>()
  const refresh = new Set<string>()
  let n = 0
  const issueCode = (q: Record<string, string>) => {
    const code = `code-${randomBytes(12).toString("hex")}`
    codes.set(code, {
      challenge: q["code_challenge"] ?? "",
      method: q["code_challenge_method"] ?? "",
      redirectUri: q["redirect_uri"] ?? "",
      clientId: q["client_id"] ?? ""
    })
    return code
  }
  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
    res.end(text)
  }
  const tokens = () => {
    n++
    const rt = `rt-${n}-${randomBytes(10).toString("hex")}`
    refresh.add(rt)
    return {
      access_token: `at-${n}-${randomBytes(10).toString("hex")}`,
      token_type: "Bearer",
      expires_in: 3600,
      refresh_token: rt
    }
  }
  const self: LoopbackOAuth = {
    url: "",
    authorizeUrl: "",
    tokenUrl: "",
    clientId,
    clientSecret,
    requests,
    tokenRequests: () => requests.filter((r) => r.path === "/token"),
    fail: undefined,
    refreshTokens: () => [...refresh],
    issueCode,
    close: async () => {}
  }
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const u = new URL(req.url ?? "/", "http://x")
      const body = Buffer.concat(chunks).toString("utf8")
      const r: Recorded = {
        method: req.method ?? "",
        path: u.pathname,
        query: Object.fromEntries(u.searchParams),
        headers: req.headers,
        body,
        form: Object.fromEntries(new URLSearchParams(body))
      }
      requests.push(r)
      if (u.pathname === "/authorize") {
        // Approves at once: back to redirect_uri with a code and the state, as §4.1.2 says.
        const back = new URL(r.query["redirect_uri"] ?? "")
        back.searchParams.set("code", issueCode(r.query))
        if (r.query["state"] !== undefined) back.searchParams.set("state", r.query["state"])
        res.writeHead(302, { location: back.href })
        res.end()
        return
      }
      if (u.pathname !== "/token" || req.method !== "POST") return json(res, 404, { error: "not_found" })
      const failure = self.fail?.(r)
      if (failure) return json(res, failure.status, failure.body)
      const basic = `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`
      if (req.headers.authorization !== basic) return json(res, 401, { error: "invalid_client" })
      const f = r.form
      if (f["grant_type"] === "authorization_code") {
        const issued = codes.get(f["code"] ?? "")
        codes.delete(f["code"] ?? "") // one use (§4.1.2)
        if (!issued) return json(res, 400, { error: "invalid_grant", error_description: "unknown or used code" })
        if (issued.redirectUri !== f["redirect_uri"])
          return json(res, 400, { error: "invalid_grant", error_description: "redirect_uri mismatch" })
        if (issued.method !== "S256" || s256(f["code_verifier"] ?? "") !== issued.challenge)
          return json(res, 400, { error: "invalid_grant", error_description: "PKCE verification failed" })
        return json(res, 200, tokens())
      }
      if (f["grant_type"] === "refresh_token") {
        if (!refresh.delete(f["refresh_token"] ?? "")) return json(res, 400, { error: "invalid_grant" })
        return json(res, 200, tokens())
      }
      return json(res, 400, { error: "unsupported_grant_type" })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return Object.assign(self, {
    url,
    authorizeUrl: `${url}/authorize`,
    tokenUrl: `${url}/token`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  })
}

/** A provider manifest for it (written to the test's providers directory). */
export const manifestYaml = `# yaml-language-server: $schema=../schemas/provider.schema.json
id: user-oauth
name: User OAuth (loopback)
inputs:
  authorize_url: { type: url }
  token_url: { type: url }
  client_id: {}
  client_secret: { secret: true }
  scope: { required: false }
flows:
  acquire:
    url: "{{ inputs.token_url }}"
    grant_type: authorization_code
    encoding: form
    client_auth: { method: client_secret_basic }
  refresh:
    url: "{{ inputs.token_url }}"
    grant_type: refresh_token
    encoding: form
    client_auth: { method: client_secret_basic }
authorization:
  url: "{{ inputs.authorize_url }}"
  scope: "{{ inputs.scope }}"
`

/** A new temporary directory for a test's config: `file` (tessera.yaml, not written) beside `providers/` holding
 *  this provider's manifest as `user-oauth`. The test removes `dir`. */
export const configDir = (label: string): { readonly dir: string; readonly file: string } => {
  const dir = mkdtempSync(join(tmpdir(), `tessera-${label}-`))
  mkdirSync(join(dir, "providers"))
  writeFileSync(join(dir, "providers", "user-oauth.yaml"), manifestYaml)
  return { dir, file: join(dir, "tessera.yaml") }
}
