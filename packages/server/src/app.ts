/** The HTTP application: the route table mounted on Effect's `HttpRouter`, each route behind its access check,
 *  and every failure turned into problem+json in one place (unknown routes: 404, or 405 with `Allow`).
 *  `make` returns a Node request listener (via `NodeHttpServer.makeHandler`), so server.ts keeps the Node
 *  server itself: it owns listening, draining and reloads. */
import { NodeHttpServer, NodeHttpServerRequest } from "@effect/platform-node"
import { Cause, Effect, References, type Scope } from "effect"
import {
  FindMyWay,
  HttpMiddleware,
  HttpRouter,
  HttpServerError,
  HttpServerRequest,
  HttpServerResponse
} from "effect/http"
import type * as Http from "node:http"
import { Runtime, TokenError, Upstream } from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import * as ApiKeyAuth from "./api-key-auth.ts"
import * as Problem from "./problem.ts"
import * as RequestCtx from "./request-context.ts"
import { RequestContext } from "./request-context.ts"
import { isOpen, type Deps, type RouteSpec } from "./routes.ts"

const header = (req: HttpServerRequest.HttpServerRequest, name: string): string | undefined => {
  const v = req.headers[name]
  return v === undefined || v === "" ? undefined : v
}

/** Runs the route's access check (see `Access` and `isOpen` in routes.ts), then its handler. The request guard
 *  (Host, Origin) has already run, in server.ts, before the request reached this app. */
const guarded = (spec: RouteSpec, deps: Deps) =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    ctx.route = spec.path
    const name = (yield* HttpRouter.params)["name"]
    if (name !== undefined) ctx.connection = name
    if (spec.access !== "public" && !isOpen(spec, ctx.generation.config.server.publicRoutes)) {
      const auth = ctx.generation.auth
      if (!auth.enabled) ctx.principal = ApiKeyAuth.anonymous
      else {
        const req = yield* HttpServerRequest.HttpServerRequest
        const presented = ApiKeyAuth.presentedKey((name) => header(req, name), spec.access)
        const principal = auth.verify(presented)
        if (!principal) {
          const how =
            spec.access === "proxyKey"
              ? "in the X-Tessera-Key header (Authorization is forwarded to the API, not read)"
              : spec.access === "pageKey"
                ? "as the password your browser asks for (HTTP Basic), as Authorization: Bearer <key> or in X-Tessera-Key"
                : "as Authorization: Bearer <key> or in X-Tessera-Key"
          return yield* new Problem.Refusal({
            code: "Unauthorized",
            detail: presented === undefined ? `send a tessera API key ${how}` : "the API key is not valid",
            ...(spec.access === "pageKey" ? { challenge: "basic" as const } : {})
          })
        }
        ctx.principal = principal
        if (name !== undefined && !principal.allows(name)) {
          return yield* new Problem.Refusal({
            code: "Forbidden",
            connection: name,
            detail: `API key "${principal.name}" may not use connection "${name}"`
          })
        }
        if (name !== undefined) yield* visible(principal, name)
        if (spec.scope !== undefined && !principal.can(spec.scope)) {
          return yield* new Problem.Refusal({
            code: "Forbidden",
            ...(name !== undefined ? { connection: name } : {}),
            detail: `API key "${principal.name}" lacks the scope "${spec.scope}" (server.api_keys[].scopes)`
          })
        }
      }
    }
    return yield* spec.handler(deps)
  })

/** A connection outside a key's tags does not exist for that key: the same 404 as an unknown name, on every route
 *  and before any scope check, so a key cannot even learn that another tenant's connection is there. */
const visible = (principal: ApiKeyAuth.Principal, name: string) =>
  Effect.gen(function* () {
    if (Object.keys(principal.tags).length === 0) return
    const ctx = yield* RequestContext
    const found = yield* ctx.generation.engine.registry.find(name)
    const tags = found === undefined ? undefined : found._tag === "Found" ? found.connection.tags : found.tags
    if (tags !== undefined && !principal.sees(tags))
      return yield* new TokenError.UnknownConnection({ connection: name, known: [] })
  })

const isFailure = (e: unknown): e is Problem.Failure =>
  typeof e === "object" &&
  e !== null &&
  "_tag" in e &&
  (e._tag === "Refusal" || Object.hasOwn(Problem.status, String(e._tag)))

/** A Node request listener serving `routes`. Expects server.ts to have attached a `RequestMeta` to each request. */
export const make = (
  routes: ReadonlyArray<RouteSpec>,
  deps: Deps,
  log: AccessLog.LogSink
): Effect.Effect<(req: Http.IncomingMessage, res: Http.ServerResponse) => void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const router = yield* HttpRouter.make
    // The cast drops the router's "Requires RequestContext" marker: `app` below provides it to every request.
    yield* router.addAll(
      routes.map((spec) => HttpRouter.route(spec.method, spec.path, guarded(spec, deps)))
    ) as Effect.Effect<void>

    // A second matcher over the same table answers "which methods does this path take?" for 405 + Allow.
    const methods = FindMyWay.make<string>()
    for (const r of routes) {
      if (r.method === "*") methods.all(r.path, "*")
      else methods.on(r.method, r.path, r.method)
    }
    const allowed = (url: string) =>
      ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].filter((m) => methods.find(m, url) !== undefined)

    const level = Runtime.logLevel()
    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const meta = RequestCtx.of(NodeHttpServerRequest.toIncomingMessage(request) as Http.IncomingMessage)
      if (!meta) return yield* Effect.die(new Error("request reached the app without a RequestMeta"))
      const instance = AccessLog.pathOf(request.url)
      const respond = (failure: Problem.Failure) => {
        // The failing connection's own secrets, in every encoding, are masked from what goes back (and to the log).
        const c = meta.connection === undefined ? undefined : meta.generation.engine.registry.peek(meta.connection)
        const p = Problem.fromFailure(failure, instance, meta.id, c ? Upstream.secretsOf(c) : [])
        if (p.logDetail) AccessLog.error(log, { requestId: meta.id, code: p.body.code, message: p.logDetail })
        return Problem.toResponse(p)
      }
      return yield* router.asHttpEffect().pipe(
        Effect.catchCause((cause): Effect.Effect<HttpServerResponse.HttpServerResponse, unknown> => {
          if (Cause.hasInterruptsOnly(cause)) return Effect.failCause(cause) // the caller went away: nothing to answer
          const error = Cause.findErrorOption(cause)
          if (error._tag === "Some") {
            const e = error.value
            if (isFailure(e)) return Effect.succeed(respond(e))
            if (HttpServerError.isHttpServerError(e) && e.reason._tag === "RouteNotFound") {
              const allow = allowed(request.url)
              return Effect.succeed(
                respond(
                  allow.length > 0
                    ? new Problem.Refusal({
                        code: "MethodNotAllowed",
                        detail: `${request.method} is not allowed here; use ${allow.join(", ")}`,
                        allow
                      })
                    : new Problem.Refusal({
                        code: "RouteNotFound",
                        detail: `no route for ${request.method} ${instance}`
                      })
                )
              )
            }
            if (HttpServerError.isHttpServerError(e) && e.reason._tag === "RequestParseError") {
              return Effect.succeed(
                respond(new Problem.Refusal({ code: "BadRequest", detail: "the request could not be read" }))
              )
            }
          }
          AccessLog.error(log, { requestId: meta.id, code: "Internal", message: Cause.pretty(cause) })
          return Effect.succeed(Problem.toResponse(Problem.internal(instance, meta.id)))
        }),
        Effect.provideService(RequestContext, meta),
        Effect.provideService(References.MinimumLogLevel, level),
        (self) => (meta.span ? Effect.withParentSpan(self, meta.span) : self)
      )
    })
    const scope = yield* Effect.scope
    return yield* NodeHttpServer.makeHandler(
      app as Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, HttpServerRequest.HttpServerRequest>,
      { scope }
    ).pipe(
      // A request's server span is server.ts's own (telemetry.ts), so that the token fast path has one too; Effect's
      // would be a second one, and it records the query string.
      Effect.provideService(HttpMiddleware.TracerDisabledWhen, () => true)
    )
  })
