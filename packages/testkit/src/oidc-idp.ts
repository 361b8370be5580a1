/** A real OpenID Provider for tests: the npm package `oidc-provider` (panva's certified implementation), started
 *  in-process on loopback, port 0. tessera's flows are tested against it rather than against a sandbox of our own
 *  making, so what it accepts is what a standards-following IdP accepts.
 *
 *  `startOidcIdp(options)` listens on 127.0.0.1 (a free port), builds the provider with the issuer
 *  `http://127.0.0.1:<port><issuerPath>` and answers with its URLs, the provider itself (to add listeners or read
 *  its adapter), every request it received (method and path, for "was discovery fetched once?") and `close`.
 *  An `issuerPath` mounts the provider below that path: its OpenID configuration is then at
 *  `<issuer>/.well-known/openid-configuration` (OIDC Discovery §4, appended), while the RFC 8414 §3 location
 *  `/.well-known/oauth-authorization-server<issuerPath>` answers 404, as many real IdPs do.
 *
 *  Defaults: no clients, `features.clientCredentials`, `devInteractions` (its built-in login and consent pages) and
 *  `deviceFlow` on, short TTLs (access tokens 300 s), signing keys and cookie keys made fresh per start. Anything
 *  else goes through `configuration`, merged last (see oidc-provider's docs for every key). */
import { exportJWK, generateKeyPair } from "jose"
import { randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import Provider, { type ClientMetadata, type Configuration } from "oidc-provider"

export type { ClientMetadata, Configuration } from "oidc-provider"

export interface OidcIdpOptions {
  /** Registered clients, e.g. `{ client_id: "svc", token_endpoint_auth_method: "private_key_jwt", jwks: { keys:
   *  [publicJwk] }, grant_types: ["client_credentials"], redirect_uris: [], response_types: [] }`. */
  readonly clients?: ReadonlyArray<ClientMetadata> | undefined
  /** Merged over the defaults `{ clientCredentials, devInteractions, deviceFlow }` (all enabled). */
  readonly features?: Configuration["features"] | undefined
  /** Lifetimes in seconds, merged over `{ AccessToken: 300, ClientCredentials: 300, AuthorizationCode: 60,
   *  DeviceCode: 300, RefreshToken: 3600, IdToken: 300, Interaction: 600, Session: 3600, Grant: 3600 }`. */
  readonly ttl?: Configuration["ttl"] | undefined
  /** Scopes the provider knows besides `openid` and `offline_access`. Default `["api:read", "api:write"]`. */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** A path for the issuer, e.g. "/tenant-a" (RFC 8414 §3 path-insertion case). Default none. */
  readonly issuerPath?: string | undefined
  /** Anything else, merged last over what the options above produce. */
  readonly configuration?: Configuration | undefined
}

export interface IdpRequest {
  readonly method: string
  /** Path and query as received (before the issuer path is stripped). */
  readonly path: string
}

export interface OidcIdp {
  /** The issuer identifier, e.g. "http://127.0.0.1:41234" or "http://127.0.0.1:41234/tenant-a". */
  readonly issuer: string
  /** The server's origin, "http://127.0.0.1:PORT". */
  readonly origin: string
  /** The token endpoint (from the provider's own metadata). */
  readonly tokenEndpoint: string
  readonly provider: Provider
  /** Every request received, in order. */
  readonly requests: ReadonlyArray<IdpRequest>
  readonly close: () => Promise<void>
}

const defaultTtl = {
  AccessToken: 300,
  ClientCredentials: 300,
  AuthorizationCode: 60,
  DeviceCode: 300,
  RefreshToken: 3600,
  IdToken: 300,
  Interaction: 600,
  Session: 3600,
  Grant: 3600
} as const

/** Starts an oidc-provider on 127.0.0.1, port 0. Close it with `close()`. */
export async function startOidcIdp(options: OidcIdpOptions = {}): Promise<OidcIdp> {
  const issuerPath = (options.issuerPath ?? "").replace(/\/+$/, "")
  if (issuerPath !== "" && !/^\/[A-Za-z0-9._~/-]+$/.test(issuerPath))
    throw new TypeError(`issuerPath must look like "/tenant", got ${JSON.stringify(options.issuerPath)}`)
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject)
      resolve()
    })
  })
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const issuer = `${origin}${issuerPath}`

  const { privateKey } = await generateKeyPair("RS256", { extractable: true })
  const signing = { ...(await exportJWK(privateKey)), kid: "idp-rs256", alg: "RS256", use: "sig" }
  const configuration: Configuration = {
    clients: [...(options.clients ?? [])],
    jwks: { keys: [signing] },
    cookies: { keys: [randomBytes(32).toString("base64url")] },
    scopes: ["openid", "offline_access", ...(options.scopes ?? ["api:read", "api:write"])],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: true },
      deviceFlow: { enabled: true },
      ...options.features
    },
    ttl: { ...defaultTtl, ...options.ttl },
    ...options.configuration
  }
  const provider = new Provider(issuer, configuration)
  // The IdP is plain http on loopback: tell it the connection is what it is, and keep its log quiet.
  provider.proxy = false
  const handle = provider.callback()
  const requests: IdpRequest[] = []
  server.on("request", (req: IncomingMessage & { originalUrl?: string }, res: ServerResponse) => {
    const path = req.url ?? "/"
    requests.push({ method: req.method ?? "GET", path })
    if (issuerPath !== "") {
      if (path !== issuerPath && !path.startsWith(`${issuerPath}/`) && !path.startsWith(`${issuerPath}?`)) {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error":"not_found"}')
        return
      }
      // Mounted below the issuer path: the provider reads its mount path from originalUrl minus url.
      req.originalUrl = path
      req.url = path.slice(issuerPath.length) || "/"
    }
    void handle(req, res)
  })
  const metadata = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    token_endpoint: string
  }
  requests.length = 0 // the start-up read above is not the test's
  let closing: Promise<void> | undefined
  return {
    issuer,
    origin,
    tokenEndpoint: metadata.token_endpoint,
    provider,
    get requests() {
      return requests
    },
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}
