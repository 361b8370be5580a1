/** A loopback OAuth 2.0 server for the user-grant flows, built to check tessera's side of the wire exactly: it
 *  records every request (method, path, headers, raw body) and enforces the rules a strict server enforces.
 *
 *  - `GET /authorize`: answers 302 to the `redirect_uri` with `code` and the given `state` (consent is automatic),
 *    or with `error=access_denied` when `deny` is set. It keeps the PKCE challenge for the code.
 *  - `POST /token`, client auth by HTTP Basic `client:secret` (or `client_id` alone for the public client `public`):
 *    `authorization_code` (code once, same redirect_uri, S256(code_verifier) == code_challenge), `refresh_token`
 *    (one-time refresh tokens: each is rotated on use and a reused one is refused with invalid_grant and counted
 *    in `reused`), `password`, and the device code grant (`authorization_pending` until `approve(userCode)`, then
 *    the token; `slow_down` answered for the first `slowDowns` polls; `access_denied` after `deny(userCode)`).
 *  - `POST /device`: RFC 8628 §3.2 answer with `interval`.
 *  - `revoke(refreshToken)` makes a refresh token unknown (invalid_grant on use): a user who revoked consent.
 *  - `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata with its origin as the issuer, its endpoints
 *    and `authorization_response_iss_parameter_supported` as `issParameter` says (RFC 9207); the redirect from
 *    `/authorize` carries `iss` when `iss` is set (the issuer, or any other value a test wants to send). */
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

export interface GrantRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | string[] | undefined>>
  readonly body: string
  readonly form: Readonly<Record<string, string>>
}

export interface GrantServerOptions {
  /** Seconds an access token lives (default 3600). */
  readonly accessTtl?: number | undefined
  /** Device flow: polling interval it asks for (default 1) and how many first polls get slow_down (default 0). */
  readonly interval?: number | undefined
  readonly slowDowns?: number | undefined
  readonly deviceExpiresIn?: number | undefined
  /** Milliseconds each token answer is held back (to make concurrent refreshes overlap). */
  readonly tokenDelayMs?: number | undefined
  /** A refresh asking for this scope is answered `invalid_scope` (RFC 6749 §5.2). */
  readonly refuseScope?: string | undefined
  /** The metadata's `authorization_response_iss_parameter_supported` (RFC 9207 §3); left out when undefined. */
  readonly issParameter?: boolean | undefined
}

export interface GrantServer {
  readonly origin: string
  readonly requests: GrantRequest[]
  /** Refresh tokens presented again after they were spent. */
  readonly reused: string[]
  /** Every refresh token redeemed successfully, in order. */
  readonly redeemed: string[]
  deny: boolean
  /** The `iss` the authorization redirect carries (RFC 9207), when set: `origin` for the true one. */
  iss: string | undefined
  /** The next this many refresh answers rotate the refresh token but carry `expires_in: 0` (unusable). */
  unusableRefreshes: number
  readonly approve: (userCode: string) => void
  readonly denyDevice: (userCode: string) => void
  readonly revoke: (refreshToken: string) => void
  /** Issued refresh tokens still valid. */
  readonly live: () => ReadonlyArray<string>
  readonly close: () => Promise<void>
}

export const client = { id: "client-1", secret: "grant-secret-9b1f6e" }

/** The bundled `oauth2` manifest's inputs for a user's connection to this server (authorization code, with the
 *  device endpoint and this client); `more` adds or replaces inputs (a `${env:}` secret, a scope). */
export const oauth2Inputs = (
  server: { readonly origin: string },
  more: Readonly<Record<string, string>> = {}
): Record<string, string> => ({
  token_url: `${server.origin}/token`,
  authorize_url: `${server.origin}/authorize`,
  device_authorization_url: `${server.origin}/device`,
  client_id: client.id,
  client_secret: client.secret,
  grant_type: "authorization_code",
  ...more
})

const token = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`

export const startGrantServer = async (opts: GrantServerOptions = {}): Promise<GrantServer> => {
  const requests: GrantRequest[] = []
  const reused: string[] = []
  const redeemed: string[] = []
  const codes = new Map<string, { challenge: string; redirectUri: string; scope: string }>()
  const refresh = new Map<string, "live" | "spent">()
  const devices = new Map<string, { userCode: string; state: "pending" | "approved" | "denied"; polls: number }>()
  let deny = false
  let iss: string | undefined
  let unusable = 0

  const issue = (scope: string) => {
    const rt = token("rt")
    refresh.set(rt, "live")
    return {
      access_token: token("at"),
      token_type: "Bearer",
      expires_in: opts.accessTtl ?? 3600,
      refresh_token: rt,
      ...(scope ? { scope } : {})
    }
  }

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body)
    res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" })
    res.end(text)
  }
  const oauthError = (res: ServerResponse, error: string, status = 400) => json(res, status, { error })

  const authenticated = (req: IncomingMessage, form: Record<string, string>) => {
    const h = req.headers.authorization
    if (h?.startsWith("Basic ")) {
      const [id, secret] = Buffer.from(h.slice(6), "base64").toString("utf8").split(":")
      return decodeURIComponent(id ?? "") === client.id && decodeURIComponent(secret ?? "") === client.secret
    }
    if (form["client_id"] === client.id && form["client_secret"] === client.secret) return true
    return form["client_id"] === "public" && form["client_secret"] === undefined
  }

  const token$ = (req: IncomingMessage, res: ServerResponse, form: Record<string, string>) => {
    if (!authenticated(req, form)) return oauthError(res, "invalid_client", 401)
    switch (form["grant_type"]) {
      case "authorization_code": {
        const c = codes.get(form["code"] ?? "")
        codes.delete(form["code"] ?? "")
        if (!c) return oauthError(res, "invalid_grant")
        if (c.redirectUri !== form["redirect_uri"]) return oauthError(res, "invalid_grant")
        const s256 = createHash("sha256")
          .update(form["code_verifier"] ?? "")
          .digest("base64url")
        if (s256 !== c.challenge) return oauthError(res, "invalid_grant")
        return json(res, 200, issue(c.scope))
      }
      case "refresh_token": {
        const rt = form["refresh_token"] ?? ""
        if (opts.refuseScope !== undefined && form["scope"] === opts.refuseScope)
          return oauthError(res, "invalid_scope")
        const state = refresh.get(rt)
        if (state === "spent") reused.push(rt)
        if (state !== "live") return oauthError(res, "invalid_grant")
        refresh.set(rt, "spent")
        redeemed.push(rt)
        const answer = issue(form["scope"] ?? "")
        if (unusable > 0) {
          unusable--
          return json(res, 200, { ...answer, expires_in: 0 })
        }
        return json(res, 200, answer)
      }
      case "password":
        return json(res, 200, issue(""))
      case "urn:ietf:params:oauth:grant-type:device_code": {
        const d = devices.get(form["device_code"] ?? "")
        if (!d) return oauthError(res, "invalid_grant")
        d.polls++
        if (d.polls <= (opts.slowDowns ?? 0)) return oauthError(res, "slow_down")
        if (d.state === "denied") return oauthError(res, "access_denied")
        if (d.state === "pending") return oauthError(res, "authorization_pending")
        devices.delete(form["device_code"] ?? "")
        return json(res, 200, issue(""))
      }
      default:
        return oauthError(res, "unsupported_grant_type")
    }
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const url = new URL(req.url ?? "/", "http://127.0.0.1")
      const form = Object.fromEntries(new URLSearchParams(body))
      requests.push({
        method: req.method ?? "",
        path: `${url.pathname}${url.search}`,
        headers: req.headers,
        body,
        form
      })
      const answer = () => {
        if (req.method === "GET" && url.pathname === "/authorize") {
          const q = url.searchParams
          const redirect = new URL(q.get("redirect_uri") ?? "http://127.0.0.1/")
          if (q.get("state")) redirect.searchParams.set("state", q.get("state")!)
          if (iss !== undefined) redirect.searchParams.set("iss", iss)
          if (deny) redirect.searchParams.set("error", "access_denied")
          else {
            const code = token("code")
            codes.set(code, {
              challenge: q.get("code_challenge") ?? "",
              redirectUri: q.get("redirect_uri") ?? "",
              scope: q.get("scope") ?? ""
            })
            redirect.searchParams.set("code", code)
          }
          res.writeHead(302, { location: redirect.toString() })
          return res.end()
        }
        if (req.method === "POST" && url.pathname === "/token") return token$(req, res, form)
        if (req.method === "GET" && url.pathname === "/.well-known/oauth-authorization-server")
          return json(res, 200, {
            issuer: origin,
            authorization_endpoint: `${origin}/authorize`,
            token_endpoint: `${origin}/token`,
            device_authorization_endpoint: `${origin}/device`,
            ...(opts.issParameter === undefined
              ? {}
              : { authorization_response_iss_parameter_supported: opts.issParameter })
          })
        if (req.method === "POST" && url.pathname === "/device") {
          if (!authenticated(req, form)) return oauthError(res, "invalid_client", 401)
          const deviceCode = token("dc")
          const userCode = randomBytes(4).toString("hex").toUpperCase()
          devices.set(deviceCode, { userCode, state: "pending", polls: 0 })
          return json(res, 200, {
            device_code: deviceCode,
            user_code: userCode,
            verification_uri: `${origin}/activate`,
            verification_uri_complete: `${origin}/activate?user_code=${userCode}`,
            expires_in: opts.deviceExpiresIn ?? 600,
            interval: opts.interval ?? 1
          })
        }
        res.writeHead(404).end()
      }
      if (url.pathname === "/token" && opts.tokenDelayMs) setTimeout(answer, opts.tokenDelayMs)
      else answer()
    })
  })
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const byUserCode = (userCode: string) => [...devices.values()].find((d) => d.userCode === userCode)
  return {
    origin,
    requests,
    reused,
    redeemed,
    get deny() {
      return deny
    },
    set deny(v: boolean) {
      deny = v
    },
    get iss() {
      return iss
    },
    set iss(v: string | undefined) {
      iss = v
    },
    get unusableRefreshes() {
      return unusable
    },
    set unusableRefreshes(n: number) {
      unusable = n
    },
    approve: (u) => {
      const d = byUserCode(u)
      if (d) d.state = "approved"
    },
    denyDevice: (u) => {
      const d = byUserCode(u)
      if (d) d.state = "denied"
    },
    revoke: (rt) => void refresh.delete(rt),
    live: () => [...refresh].filter(([, s]) => s === "live").map(([k]) => k),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections()
        server.close(() => r())
      })
  }
}
