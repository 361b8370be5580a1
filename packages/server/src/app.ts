/** The HTTP application: the route table mounted on Effect's `HttpRouter`, each route behind its access check,
 *  and every failure turned into problem+json in one place (unknown routes: 404, or 405 with `Allow`).
 *  `make` returns a Node request listener (via `NodeHttpServer.makeHandler`), so server.ts keeps the Node
 *  server itself: it owns listening, draining and reloads. */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import type * as Scope from "effect/Scope"
import * as HttpMiddleware from "effect/http/HttpMiddleware"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerError from "effect/http/HttpServerError"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import type * as NodeHttp from "node:http"
import { ConnectionStore, Http, Runtime, Upstream } from "@tessera/engine"
import * as Access from "./access.ts"
import * as AccessLog from "./access-log.ts"
import * as Problem from "./problem.ts"
import * as RequestCtx from "./request-context.ts"
import { RequestContext } from "./request-context.ts"
import { matcher, type Deps, type RouteSpec } from "./routes.ts"

/** Runs the route's access check (access.ts, shared with the token fast path), then its handler. The request guard
 *  (Host, Origin) has already run, in server.ts, before the request reached this app. */
const guarded = (spec: RouteSpec, deps: Deps) =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    const name = (yield* HttpRouter.params)["name"]
    RequestCtx.label(ctx, spec.path, name)
    const req = yield* HttpServerRequest.HttpServerRequest
    const { auth, config } = ctx.generation
    const caller = Access.identify(spec, config.server.publicRoutes, auth, (n) => Http.header(req.headers, n))
    if (caller._tag === "Refused") return yield* caller.refusal
    if (caller._tag === "Principal") {
      const principal = caller.principal
      ctx.principal = principal
      const forbidden = Access.allowed(principal, name)
      if (forbidden) return yield* forbidden
      const held = name !== undefined && ctx.generation.engine.registry.held(name)
      const tags = name !== undefined && Access.needsTags(principal) ? yield* tagsOf(name) : undefined
      const refused = Access.permitted(spec, principal, name, tags)
      if (refused?._tag === "UnknownConnection" && held) yield* storeRead(refused.connection)
      if (refused) return yield* refused
    }
    return yield* spec.handler(deps)
  })

/** The tags of connection `name`, config or stored (a broken one's too); undefined when there is none. */
const tagsOf = (name: string) =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    const found = yield* ctx.generation.engine.registry.find(name)
    return found === undefined ? undefined : found._tag === "Found" ? found.connection.tags : found.tags
  })

/** The store read that a name this instance does not hold costs (`registry.find`), for one it holds but the key must
 *  not see: else another tenant's connection, answered from memory, would be a faster 404 than a name that does not
 *  exist, and during a store outage a 404 where a free name is a 503. */
const storeRead = (name: string) =>
  Effect.gen(function* () {
    const registry = (yield* RequestContext).generation.engine.registry
    if (!registry.hasStore || !ConnectionStore.namePattern.test(name)) return
    yield* Effect.flatMap(registry.store(), (s) => s.get(name))
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
): Effect.Effect<(req: NodeHttp.IncomingMessage, res: NodeHttp.ServerResponse) => void, never, Scope.Scope> =>
  Effect.gen(function* () {
    const router = yield* HttpRouter.make
    // The cast drops the router's "Requires RequestContext" marker: `app` below provides it to every request.
    yield* router.addAll(
      routes.map((spec) => HttpRouter.route(spec.method, spec.path, guarded(spec, deps)))
    ) as Effect.Effect<void>

    // The table's matcher (routes.ts, also the token fast path's) answers "which methods does this path take?" for
    // 405 + Allow.
    const table = matcher(routes)

    const level = Runtime.logLevel()
    const app = Effect.gen(function* () {
      const request = yield* HttpServerRequest.HttpServerRequest
      const meta = RequestCtx.of(NodeHttpServerRequest.toIncomingMessage(request) as NodeHttp.IncomingMessage)
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
              const allow = table.methods(request.url)
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
