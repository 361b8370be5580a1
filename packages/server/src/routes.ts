/** The server's route table, as data: method, path, who may call it, what it answers, and its handler. The
 *  router (app.ts) and the OpenAPI generator (openapi.ts) both read this one table, so the document cannot drift
 *  from what is served.
 *
 *  Handlers find the request's engine generation in `RequestContext` and fail with engine errors or `Refusal`s;
 *  app.ts turns those into problem+json. Authentication happens before a handler runs (see `Access`). */
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Effect from "effect/Effect"
import * as FindMyWay from "effect/http/FindMyWay"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as Http from "node:http"
import { Engine, type Config } from "@tessera/engine"
import type * as Activity from "./activity.ts"
import type * as ApiKeyAuth from "./api-key-auth.ts"
import { connectRoutes } from "./connect-routes.ts"
import { connectionRoutes } from "./connection-routes.ts"
import * as Metrics from "./metrics.ts"
import type { Failure } from "./problem.ts"
import * as Proxy from "./proxy.ts"
import { RequestContext } from "./request-context.ts"
import { statusPageRoutes } from "./status-page.ts"

/** Who may call a route:
 *  - `public`: anyone (the liveness probe);
 *  - `key`: an API key as `Authorization: Bearer <key>` or `X-Tessera-Key: <key>`;
 *  - `proxyKey`: an API key as `X-Tessera-Key` only, because Authorization belongs to the proxied call;
 *  - `pageKey`: as `key`, or as the password of HTTP Basic, the one way a browser can send it (the status page);
 *    its 401 challenges with Basic so that a browser asks for it;
 *  - `link`: no API key; a sealed link or state in the query is the credential, checked by the handler (the
 *    connect flow's browser routes, connect-routes.ts).
 *  A route with a `:name` parameter also needs the key to allow that connection. A route with a `publicAs` name
 *  is open when `server.public_routes` lists that name. Without configured keys every route is open (the server
 *  then binds loopback only and answers loopback Host values only, request-guard.ts). */
export type Access = "public" | "key" | "proxyKey" | "pageKey" | "link"

export type Method = "GET" | "POST" | "PUT" | "DELETE" | "*"

export interface ResponseDoc {
  readonly description: string
  /** A component schema name (openapi.ts) or an inline media type with no schema. */
  readonly schema?: string | undefined
  readonly mediaType?: string | undefined
}

export interface Deps extends Proxy.Deps {
  /** What this instance saw of each connection's renewals (the status page). */
  readonly activity: Activity.Activity
  /** The OpenAPI document for a config's public routes (built once per set from this table). */
  readonly openapi: (publicRoutes: ReadonlyArray<Config.PublicRoute>) => unknown
}

export type Handler = (
  deps: Deps
) => Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  Failure,
  RequestContext | HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext
>

export interface RouteSpec {
  readonly method: Method
  /** Router syntax: `:param`, and a trailing `/*` for the rest of the path. */
  readonly path: `/${string}`
  readonly operationId: string
  readonly summary: string
  readonly description?: string | undefined
  readonly tag: "tokens" | "connections" | "connect" | "catalog" | "proxy" | "operations"
  readonly access: Access
  /** What the key must be allowed to do (server.api_keys[].scopes); none: any valid key. */
  readonly scope?: ApiKeyAuth.Scope | undefined
  /** The route shows every connection at once: a key limited to some (its allowlist or its tags) gets 403. */
  readonly everyConnection?: true | undefined
  /** Query parameters, for the OpenAPI document. */
  readonly query?: ReadonlyArray<{ readonly name: string; readonly description: string; readonly required?: boolean }>
  /** A component schema name for the JSON request body. */
  readonly requestSchema?: string | undefined
  /** The name `server.public_routes` opens this route by (operations routes only). */
  readonly publicAs?: Config.PublicRoute | undefined
  readonly responses: Readonly<Record<number, ResponseDoc>>
  readonly handler: Handler
}

/** Whether a route answers callers without a key (access.ts, where the access rules live). */
export { isOpen } from "./access.ts"

/** The route table as a matcher, with the router's matching rules (Effect's FindMyWay): the route a method and URL
 *  go to with its parameters, and the methods a path answers (for 405 + Allow). The router dispatches on the same
 *  table (app.ts); the token fast path matches with this. */
export const matcher = (table: ReadonlyArray<RouteSpec>) => {
  const byMethod = FindMyWay.make<RouteSpec>()
  for (const r of table) {
    if (r.method === "*") byMethod.all(r.path, r)
    else byMethod.on(r.method, r.path, r)
  }
  return {
    match: (method: string, url: string) => byMethod.find(method, url),
    methods: (url: string) =>
      ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].filter((m) => byMethod.find(m, url) !== undefined)
  }
}

const noStore = { "cache-control": "no-store" }

const param = (name: string): Effect.Effect<string, never, HttpRouter.RouteContext> =>
  Effect.map(HttpRouter.params, (p) => p[name] ?? "")

const problem = (description: string): ResponseDoc => ({
  description,
  schema: "Problem",
  mediaType: "application/problem+json"
})

/** Failures every connection route can answer with. */
const connectionFailures: Readonly<Record<number, ResponseDoc>> = {
  401: problem("No API key, or a wrong one (code Unauthorized)."),
  403: problem("The key does not allow this connection (code Forbidden)."),
  404: problem("Unknown connection (code UnknownConnection)."),
  500: problem("The connection is misconfigured on the server (code InputInvalid)."),
  502: problem("The provider failed or refused (codes TransportError, UpstreamRejected, ResponseInvalid)."),
  503: problem("The token store is unavailable (code StoreError)."),
  504: problem("The provider did not answer in time (code UpstreamTimeout).")
}

/** A static credential (manifest kind api_key or basic) is the long-lived secret itself: never handed out. */
const staticFailure: Readonly<Record<number, ResponseDoc>> = {
  409: problem(
    "The connection's credential is static (kind api_key or basic): there is no token, and the key itself is never handed out; call the API through the proxy (code StaticCredential)."
  )
}

const token =
  (force: boolean): Handler =>
  () =>
    Effect.gen(function* () {
      const ctx = yield* RequestContext
      const name = yield* param("name")
      const result = yield* ctx.generation.engine.getToken(name, force ? { force: true } : undefined)
      return HttpServerResponse.jsonUnsafe(Engine.toJson(result), { headers: noStore })
    })

const ownRoutes: ReadonlyArray<RouteSpec> = [
  {
    method: "GET",
    path: "/v1/connections/:name/token",
    operationId: "getToken",
    tag: "tokens",
    access: "key",
    scope: "token",
    summary: "Get a connection's access token",
    description: "Answers from the cache while the token is fresh, else renews it (refresh flow when possible).",
    responses: { 200: { description: "The token.", schema: "Token" }, ...connectionFailures, ...staticFailure },
    handler: token(false)
  },
  {
    method: "POST",
    path: "/v1/connections/:name/refresh",
    operationId: "refreshToken",
    tag: "tokens",
    access: "key",
    scope: "token",
    summary: "Renew a connection's token now",
    description: "Forces a renewal even if the cached token is fresh, and answers with the new token.",
    responses: { 200: { description: "The renewed token.", schema: "Token" }, ...connectionFailures, ...staticFailure },
    handler: token(true)
  },
  {
    method: "DELETE",
    path: "/v1/connections/:name/token",
    operationId: "invalidateToken",
    tag: "tokens",
    access: "key",
    scope: "token",
    summary: "Forget a connection's access token",
    description: "The next request gets a new one. A refresh token, if any, is kept for that renewal.",
    responses: { 204: { description: "Invalidated." }, ...connectionFailures },
    handler: () =>
      Effect.gen(function* () {
        const ctx = yield* RequestContext
        yield* ctx.generation.engine.invalidate(yield* param("name"))
        return HttpServerResponse.empty({ status: 204 })
      })
  },
  {
    method: "GET",
    path: "/v1/providers",
    operationId: "listProviders",
    tag: "catalog",
    access: "key",
    summary: "List the provider manifests the server knows",
    description: "Each provider's id, name, docs link and inputs with their required/secret flags; no values.",
    responses: {
      200: { description: "The providers.", schema: "ProviderList" },
      401: problem("No API key, or a wrong one.")
    },
    handler: () =>
      Effect.gen(function* () {
        const ctx = yield* RequestContext
        const providers = [...ctx.generation.config.catalog.manifests.values()]
          .sort((a, b) => a.id.localeCompare(b.id))
          .map((m) => ({
            id: m.id,
            name: m.name,
            docs: m.docs ?? null,
            proxy: m.api !== undefined,
            inputs: [...m.inputs.values()].map((i) => ({
              name: i.name,
              type: i.type,
              required: i.required,
              secret: i.secret,
              ...(i.title !== undefined ? { title: i.title } : {}),
              ...(i.description !== undefined ? { description: i.description } : {})
            }))
          }))
        return HttpServerResponse.jsonUnsafe({ providers })
      })
  },
  {
    method: "*",
    path: "/v1/proxy/:name/*",
    operationId: "proxy",
    tag: "proxy",
    access: "proxyKey",
    scope: "proxy",
    summary: "Call the connection's API with its token applied",
    description:
      "Forwards to the provider's api.base_url + the rest of the path + the query, streaming both bodies. " +
      "Send the tessera key in X-Tessera-Key; the caller's Authorization is not forwarded. An upstream 401 is retried " +
      "once with a new token when the body was small enough to buffer; a token is invalidated at most once, and not " +
      "at all for a cool-down (5 s, doubling to 60 s) once a new token was refused too. A `..` segment is refused, " +
      "and so is a `.`, `/` or `\\` percent-encoded twice (`%252e`, `%252f`, `%255c`).",
    responses: {
      200: { description: "Whatever the API answered (any status), streamed through.", mediaType: "*/*" },
      400: problem("A `..` segment, a `.`, `/` or `\\` encoded twice, or a malformed path (code BadRequest)."),
      ...connectionFailures,
      404: problem("Unknown connection, or its provider has no api.base_url (codes UnknownConnection, NoApiBaseUrl)."),
      413: problem("The request body is larger than the server's limit (code PayloadTooLarge)."),
      502: problem(
        "The token could not be obtained or the API could not be reached (codes TransportError, UpstreamRejected, ResponseInvalid)."
      ),
      504: problem("The token endpoint or the API did not answer in time (code UpstreamTimeout).")
    },
    handler: (deps) =>
      Effect.gen(function* () {
        const ctx = yield* RequestContext
        const request = yield* HttpServerRequest.HttpServerRequest
        const source = NodeHttpServerRequest.toIncomingMessage(request) as Http.IncomingMessage
        const sink = NodeHttpServerRequest.toServerResponse(request) as Http.ServerResponse
        const target = yield* Proxy.parseTarget(source.url ?? "")
        const c = yield* ctx.generation.engine.connection(yield* param("name"))
        return yield* Proxy.forward(deps, ctx.generation.engine, c, target, source, sink, ctx.id)
      })
  },
  {
    method: "GET",
    path: "/openapi.json",
    operationId: "openapi",
    tag: "operations",
    access: "key",
    publicAs: "openapi",
    summary: "This API's OpenAPI 3.1 document",
    description: "Needs a key (any valid one) unless server.public_routes lists `openapi`.",
    responses: {
      200: { description: "The document.", mediaType: "application/json" },
      401: problem("No API key, or a wrong one (code Unauthorized).")
    },
    handler: (deps) =>
      Effect.gen(function* () {
        const ctx = yield* RequestContext
        return HttpServerResponse.jsonUnsafe(deps.openapi(ctx.generation.config.server.publicRoutes))
      })
  },
  {
    method: "GET",
    path: "/healthz",
    operationId: "health",
    tag: "operations",
    access: "public",
    summary: "Liveness: the process answers",
    responses: { 200: { description: "Alive.", schema: "Health" } },
    handler: () => Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "ok" }, { headers: noStore }))
  },
  {
    method: "GET",
    path: "/readyz",
    operationId: "ready",
    tag: "operations",
    access: "key",
    publicAs: "readyz",
    summary: "Readiness: the token store answers",
    description:
      '200 when the store is ok, 200 with status "degraded" when it runs on a local fallback, 503 when it is down. ' +
      "Needs a key (any valid one) unless server.public_routes lists `readyz`.",
    responses: {
      200: { description: "Ready (ok or degraded).", schema: "Ready" },
      401: problem("No API key, or a wrong one (code Unauthorized)."),
      503: { description: "The store is down.", schema: "Ready" }
    },
    handler: () =>
      Effect.gen(function* () {
        const ctx = yield* RequestContext
        const health = yield* ctx.generation.engine.storeHealth()
        return HttpServerResponse.jsonUnsafe(
          { status: health.status, store: health },
          { status: health.status === "down" ? 503 : 200, headers: noStore }
        )
      })
  },
  {
    method: "GET",
    path: "/metrics",
    operationId: "metrics",
    tag: "operations",
    access: "key",
    publicAs: "metrics",
    everyConnection: true,
    summary: "Prometheus metrics",
    description:
      "Needs a key that sees every connection (connections `*`, no tags; any scopes) unless server.public_routes " +
      "lists `metrics`: the series cover every connection's provider, traffic and failures.",
    responses: {
      200: { description: "Text exposition format 0.0.4.", mediaType: Metrics.contentType },
      401: problem("No API key, or a wrong one (code Unauthorized)."),
      403: problem("The key sees only some connections: its allowlist or its tags (code Forbidden).")
    },
    handler: (deps) =>
      Effect.sync(() =>
        HttpServerResponse.text(deps.metrics.registry.render(), { contentType: Metrics.contentType, headers: noStore })
      )
  }
]

export const routes: ReadonlyArray<RouteSpec> = [
  ...ownRoutes,
  ...connectionRoutes,
  ...connectRoutes,
  ...statusPageRoutes
]
