/** Forwards `ANY /v1/proxy/:name/*` straight from the node:http listener, without an Effect fiber, when nothing
 *  but the exchange itself is left to do: the caller's key is admitted (access.ts, the router's own check), the
 *  connection is held in this process, the request has no body, and the engine holds a fresh token
 *  (Api.forwardFast: the same headers, limits, client and 401 rule as Api.forward). The upstream answer is
 *  written to the caller straight from the API's socket, with backpressure; a body that fails or stalls cuts the
 *  caller's response, and a caller that goes away aborts the upstream exchange. Anything else (a refusal, a body, a token to fetch, a path
 *  that does not resolve) returns false before anything was read or written, and the router answers it on its one
 *  code path (routes.ts `proxy`, proxy.ts). The request guard and the net that turns a throw into a 500 run
 *  before this, in server.ts; the access log line and the metrics are written there when the response closes. */
import { Api, Upstream, type Connection } from "@tessera/engine"
import type * as http from "node:http"
import * as AccessLog from "./access-log.ts"
import type { Generation } from "./generations.ts"
import * as Problem from "./problem.ts"
import * as Proxy from "./proxy.ts"
import * as RequestCtx from "./request-context.ts"
import { routes, type RouteSpec } from "./routes.ts"
import * as TokenFastPath from "./token-fast-path.ts"

const proxyRoute: RouteSpec = routes.find((r) => r.operationId === "proxy")!

export interface FastDeps extends Proxy.Deps {
  readonly log: AccessLog.LogSink
  /** Runs the rare Effect part (after a 401) for one request, under that request's span. */
  readonly run: (meta: RequestCtx.RequestMeta) => Api.Runner
}

/** How many requests this path took, for the tests that check which path answered. @internal */
export const stats = { forwarded: 0 }

// Statuses whose answers have no body (RFC 9110 §15.3.5, §15.4.5).
const noBody = new Set([204, 304])

/** Writes the API's answer: its head, then its body straight from the API's socket (Api.HeldAnswer `into`, with
 *  backpressure); a caller that goes away aborts the exchange, and a body that fails or stalls cuts the response. */
const stream = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  a: Api.HeldAnswer,
  requestId: string,
  connection: string,
  publicUrl: string | undefined
) => {
  if (res.destroyed) {
    a.discard()
    return
  }
  try {
    const headers = Proxy.answerHeaders(a.headers, connection, publicUrl)
    headers["x-request-id"] = requestId
    res.writeHead(a.status, a.statusText, headers)
  } catch (e) {
    // Answered as a 500 by the caller's catch; the held answer must not keep its socket paused meanwhile.
    a.discard()
    throw e
  }
  if (req.method === "HEAD" || noBody.has(a.status)) {
    res.end()
    a.discard()
    return
  }
  a.into(res)
}

const fail = (
  deps: FastDeps,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  meta: RequestCtx.RequestMeta,
  c: Connection.Connection,
  error: Api.ApiError | Parameters<typeof Problem.fromFailure>[0]
) => {
  const failure = Api.isApiError(error) ? Proxy.refusal(c, error) : error
  const p = Problem.fromFailure(failure, AccessLog.pathOf(req.url ?? "/"), meta.id, Upstream.secretsOf(c))
  if (p.logDetail) AccessLog.error(deps.log, { requestId: meta.id, code: p.body.code, message: p.logDetail })
  if (res.headersSent || res.destroyed) res.destroy()
  else {
    RequestCtx.stamp(res, meta.id)
    Problem.send(res, p)
  }
}

// A connection's two proxy series (by provider), bound once per connection object (and server: its metrics).
const meters = new WeakMap<
  Connection.Connection,
  { readonly deps: FastDeps; readonly exchange: (seconds: number) => void; readonly retry: () => void }
>()
const metersOf = (deps: FastDeps, c: Connection.Connection) => {
  let m = meters.get(c)
  if (m === undefined || m.deps !== deps) {
    const labels = { provider: c.manifest.id }
    const { proxyUpstreamDuration: duration, proxyRetries: retries } = deps.metrics
    m = { deps, exchange: duration.bind(labels), retry: retries.bind(labels) }
    meters.set(c, m)
  }
  return m
}

/** Takes the request when the fast path can answer it all (see the header); false leaves it untouched. */
export const tryForward = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  generation: Generation,
  meta: RequestCtx.RequestMeta,
  deps: FastDeps,
  found: TokenFastPath.Match = TokenFastPath.match(req)
): boolean => {
  const url = req.url ?? ""
  const method = (req.method ?? "GET").toUpperCase()
  const name = found?.handler === proxyRoute ? found.params["name"] : undefined
  if (name === undefined) return false
  const target = Proxy.targetOf(url)
  if (target instanceof Problem.Refusal) return false
  const { engine } = generation
  const admission = TokenFastPath.admit(proxyRoute, req, generation, name)
  if (!admission) return false
  const c = engine.registry.peek(name)
  if (!c) return false
  const headers = Proxy.requestHeaders(req.headers, meta.id)
  const meters = metersOf(deps, c)
  const pending = Api.forwardFast(
    engine,
    c,
    { method, path: `${target.rest}${target.search}`, headers, source: req },
    {
      ...deps.limits,
      client: deps.agents,
      onExchange: meters.exchange,
      onRetry: meters.retry,
      run: deps.run(meta)
    }
  )
  if (!pending) return false
  RequestCtx.label(meta, proxyRoute.path, name)
  meta.principal = admission.principal
  stats.forwarded++
  pending
    .then((outcome) =>
      outcome._tag === "Answered"
        ? stream(req, res, outcome.answer, meta.id, c.name, engine.config.server.publicUrl)
        : fail(deps, req, res, meta, c, outcome.error)
    )
    .catch((e: unknown) => {
      AccessLog.error(deps.log, {
        requestId: meta.id,
        code: "Internal",
        message: e instanceof Error ? (e.stack ?? e.message) : String(e)
      })
      // Nothing may throw out of here: it would be an unhandled rejection, which ends the process.
      try {
        if (res.headersSent || res.destroyed) res.destroy()
        else {
          RequestCtx.stamp(res, meta.id)
          Problem.send(res, Problem.internal(AccessLog.pathOf(url), meta.id))
        }
      } catch {
        res.destroy()
      }
    })
  return true
}
