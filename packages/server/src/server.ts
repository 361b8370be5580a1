/** Runs the tessera HTTP server for a loaded config: `startServer` (Promise API) and `layer` (Effect API).
 *
 *  Holds the Node server's lifecycle and the first code every request meets; the routes are app.ts on Effect's
 *  HttpRouter. The Node server is created here rather than by `NodeHttpServer.layer` because shutdown and reload
 *  need control the layer does not give:
 *  - Each request leases the engine generation current when it arrives (generations.ts) and is counted in flight
 *    until its response has been fully sent (body streaming included); its access-log line is written then. A
 *    cached token the fast path answers is written in one synchronous step, and settled right after it.
 *  - Every request passes the request guard (request-guard.ts: Host and Origin) before the token fast path or the
 *    router sees it. Whatever throws while one request is answered becomes a 500 problem for that request, logged
 *    with its stack and counted under the route it matched; it never ends the process.
 *  - `close()` stops accepting at once (the listening socket closes, so new connections are refused), lets the
 *    requests in flight finish (up to `drainTimeoutMs`, then cuts them), closes the idle keep-alive connections,
 *    and only then disposes the engines.
 *  - `reload(config)` builds a new generation and makes it current; requests in flight finish on the old one,
 *    which is disposed after its last request. Reloads run one at a time and each stands alone: a failed one
 *    leaves the running config in place and does not affect the next. The bind address cannot change without a
 *    restart.
 *  - A host that is not loopback is refused unless the config has API keys: without keys every route is open. A
 *    config whose server settings have errors (say, an API key from an unset variable) is refused too, rather
 *    than run with fewer keys than it lists. */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as References from "effect/References"
import * as Scope from "effect/Scope"
import * as HttpServerError from "effect/http/HttpServerError"
import type * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Writable } from "node:stream"
import {
  type Engine,
  ManifestError,
  Problem as Located,
  Redaction,
  TokenError,
  Upstream,
  type Config,
  Runtime,
  type Events
} from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import * as Activity from "./activity.ts"
import * as App from "./app.ts"
import * as BackgroundRefresh from "./background-refresh.ts"
import * as Generations from "./generations.ts"
import * as HeapTrim from "./heap-trim.ts"
import * as Metrics from "./metrics.ts"
import * as OpenApi from "./openapi.ts"
import * as Problem from "./problem.ts"
import * as Proxy from "./proxy.ts"
import * as RequestCtx from "./request-context.ts"
import * as RequestGuard from "./request-guard.ts"
import * as Telemetry from "./telemetry.ts"
import * as ProxyFastPath from "./proxy-fast-path.ts"
import * as TokenFastPath from "./token-fast-path.ts"
import * as Webhooks from "./webhooks.ts"
import { createServer } from "./node-http.ts"
import { routes, type Deps } from "./routes.ts"

export { isLoopback } from "./request-guard.ts"

export interface ServerOptions {
  /** Default: `server.port` of the config (8787). 0 picks a free port. */
  readonly port?: number | undefined
  /** Default: `server.host` of the config (127.0.0.1). */
  readonly host?: string | undefined
  /** Token store: "memory" (default unless the config names one), "file", or an implementation. */
  readonly store?: Runtime.StoreChoice | undefined
  /** Connection store when the config has no connection_store: "memory" (default), "sqlite" (the default file in
   *  the user data dir; `serve` and `tessera serve` use it), "none", or an implementation. */
  readonly connections?: Runtime.ConnectionStoreChoice | undefined
  /** Access and error log lines (JSON, one per line). Default process.stdout; false for none. A stream gets them in
   *  batches, and `close()` resolves once it has written the last one. */
  readonly log?: AccessLog.LogSink | false | undefined
  /** Proxy limits: body size, replay buffer, upstream time limit (proxy.ts). */
  readonly limits?: Partial<Proxy.Limits> | undefined
  /** How long `close()` waits for requests in flight before cutting them. Default 30 s. */
  readonly drainTimeoutMs?: number | undefined
  /** Where the OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`, ...) are read (telemetry.ts). Default
   *  process.env. */
  readonly env?: NodeJS.ProcessEnv | undefined
  /** Webhook delivery: retry Schedule, request time limit, outbox poll interval (webhooks.ts). */
  readonly webhooks?: Webhooks.Tuning | undefined
  /** Once loaded, before listening, run one memory-reducing garbage collection that shrinks V8's young generation
   *  back from what start-up grew it to (heap-trim.ts; about 35 MB less RSS under traffic). Default false here: a
   *  program embedding the server owns its heap, and a full collection of a large one is a long pause. `serve`
   *  (main.ts, `tessera serve`), which owns its process, defaults it to true. */
  readonly trimHeap?: boolean | undefined
}

export interface RunningServer {
  /** e.g. "http://127.0.0.1:8787" */
  readonly url: string
  /** Stops accepting, drains requests in flight, then releases everything. Idempotent. */
  readonly close: () => Promise<void>
  /** Swaps in a new config without dropping requests; `config` may be a function that loads it. Rejects (keeping
   *  the current config) when it cannot. Either way the outcome is logged and counted in
   *  `tessera_config_reloads_total`. Reloads run one at a time, each on its own. */
  readonly reload: (config: Config.Config | (() => Promise<Config.Config>)) => Promise<void>
}

/** What a config must satisfy to be served on `host`: server settings without errors (a key that did not
 *  resolve must not leave the server with fewer keys than the file lists), and keys unless `host` is loopback. */
const checkConfig = (host: string, config: Config.Config) => {
  const serverErrors = config.problems.filter((p) => p.severity === "error" && /^(server|notify)(\.|\[|$)/.test(p.path))
  if (serverErrors.length > 0) throw new ManifestError.ConfigInvalid({ problems: serverErrors })
  RequestGuard.parseAllowed(config.server.allowedHosts)
  if (!RequestGuard.isLoopback(host) && config.server.apiKeys.length === 0) {
    throw new TypeError(
      `refusing to listen on ${host} without API keys: every token would be open to the network. ` +
        "Add server.api_keys to the config, or bind 127.0.0.1"
    )
  }
}

/** How long `close()` waits at most for the access log's stream to write its last lines. */
const logSettleMs = 5_000

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref()
  })

/** Why a reload failed, as the operator should read it: located problems for a config, else the message. */
const reloadFailure = (e: unknown): string =>
  e instanceof ManifestError.ConfigInvalid ? Located.formatAll(e.problems) : e instanceof Error ? e.message : String(e)

/** What a request's span learns while it is handled: the connection and the key's name (never the key). */
const spanExtra = (meta: RequestCtx.RequestMeta): Record<string, string> => ({
  "tessera.request_id": meta.id,
  ...(meta.connection === undefined ? {} : { "tessera.connection": meta.connection }),
  ...(meta.principal === undefined ? {} : { "tessera.api_key": meta.principal.name })
})

const sendProblem = Problem.send

/** Logs something that threw while one request was answered. If the log itself throws, stderr gets the line. */
const logDefect = (log: AccessLog.LogSink, requestId: string, e: unknown) => {
  const entry = { requestId, code: "Internal", message: e instanceof Error ? (e.stack ?? e.message) : String(e) }
  try {
    AccessLog.error(log, entry)
  } catch {
    AccessLog.error(process.stderr, entry)
  }
}

/** Labels a request whose handling threw before a route labelled it (the token fast path's `answerHot`, say) with
 *  the route it matches, so that its 500 is counted and logged there and not as "unmatched". */
const labelMatched = (req: http.IncomingMessage, meta: RequestCtx.RequestMeta) => {
  if (meta.route !== undefined) return
  try {
    const found = TokenFastPath.match(req)
    if (found) RequestCtx.label(meta, found.handler.path, found.params["name"])
  } catch {
    /* unmatched, then */
  }
}

/** The answer to a request whose handling threw: a 500 problem (the request id, never the stack), or a cut
 *  connection when the response had already begun. */
const answerDefect = (
  log: AccessLog.LogSink,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  id: string,
  e: unknown
) => {
  logDefect(log, id, e)
  try {
    if (res.headersSent) res.destroy()
    else {
      RequestCtx.stamp(res, id)
      sendProblem(res, Problem.internal(AccessLog.pathOf(req.url ?? "/"), id))
    }
  } catch {
    res.destroy()
  }
}

export const startServer = async (config: Config.Config, options: ServerOptions = {}): Promise<RunningServer> => {
  const host = options.host ?? config.server.host
  const port = options.port ?? config.server.port
  checkConfig(host, config)
  const limits = Proxy.checkLimits({ ...Proxy.defaultLimits, ...options.limits })
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000
  if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0)
    throw new TypeError("drainTimeoutMs must be a non-negative number")
  // A stream (process.stdout, a file) gets its lines in batches (access-log.ts `batched`; one made already, as
  // `serve` does, is used as it is); any other sink (a test's, a logger's) gets one call per line, as written.
  const sink = options.log === false ? AccessLog.silent : (options.log ?? process.stdout)
  const batch = sink instanceof Writable ? AccessLog.batched(sink) : AccessLog.isBatched(sink) ? sink : undefined
  const log: AccessLog.LogSink = batch ?? sink

  const metrics = Metrics.make()
  const telemetry = await Telemetry.make({ env: options.env ?? process.env, metrics: metrics.registry.context, routes })
  // Engine events go to every listener, each on its own: one that throws does not keep the others from it.
  const listeners: Events.Listener[] = [metrics.onEngineEvent]
  const onEvent: Events.Listener = (e) => {
    for (const l of listeners) {
      try {
        l(e)
      } catch {
        /* a listener's bug must not cost the others their event */
      }
    }
  }
  const generations = await Generations.make(config, {
    store: options.store,
    connections: options.connections,
    onEvent
  }).catch(async (e: unknown) => {
    await telemetry.close()
    throw e
  })
  const webhooks = Webhooks.start({
    endpoints: () => generations.current().config.notify,
    outbox: generations.outbox,
    connection: (name) => generations.current().engine.registry.peek(name),
    log,
    metrics,
    context: telemetry.context,
    tuning: options.webhooks
  })
  listeners.push(webhooks.onEngineEvent)
  const refresher = BackgroundRefresh.start({
    engine: () => generations.current().engine,
    settings: () => generations.current().config.server.backgroundRefresh,
    store: generations.tokenStore,
    log,
    metrics,
    context: telemetry.context
  })
  listeners.push(refresher.onEngineEvent)
  const activity = Activity.make((name, text) => {
    const c = generations.current().engine.registry.peek(name)
    return Redaction.scrub(text, c ? Upstream.secretsOf(c) : [])
  })
  listeners.push(activity.onEngineEvent)
  void refresher.seed()
  const agents = Proxy.makeAgents()
  const documents = new Map<string, unknown>()
  const openapi = (publicRoutes: ReadonlyArray<Config.PublicRoute>) => {
    const key = [...publicRoutes].sort().join(",")
    if (!documents.has(key)) documents.set(key, OpenApi.document(routes, { publicRoutes }))
    return documents.get(key)
  }
  const deps: Deps = { limits, agents, metrics, openapi, activity }
  const scope = Effect.runSync(Scope.make())
  const release = async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    agents.destroy()
    await refresher.close()
    await webhooks.close()
    await generations.dispose()
    // Last: the spans of the final requests and renewals are flushed, and the last log lines written: a stream
    // (a file) has them when close() resolves, so a process may exit then (a stuck one is waited for 5 s at most).
    await telemetry.close()
    if (batch) await Promise.race([batch.settled(), sleep(logSettleMs)])
  }

  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void
  const server = createServer()
  try {
    handler = await Effect.runPromise(
      App.make(routes, deps, log).pipe(Scope.provide(scope), Effect.provide(telemetry.context))
    )
    if (options.trimHeap === true) HeapTrim.trim()
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen({ port, host }, () => {
        server.off("error", reject)
        resolve()
      })
    })
  } catch (e) {
    await release()
    throw e
  }
  const address = server.address() as AddressInfo
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`

  const guardFor = (c: Config.Config) =>
    RequestGuard.make({
      port: address.port,
      keyed: c.server.apiKeys.length > 0,
      allowedHosts: c.server.allowedHosts,
      publicUrl: c.server.publicUrl
    })
  const guards = new WeakMap<Generations.Generation, RequestGuard.Check>()
  guards.set(generations.current(), guardFor(config))
  const guardOf = (g: Generations.Generation): RequestGuard.Check => {
    let check = guards.get(g)
    if (!check) guards.set(g, (check = guardFor(g.config)))
    return check
  }

  let inFlight = 0
  let draining = false
  let drained: (() => void) | undefined
  /** Counts, meters and logs one request once its response has gone (or the caller has). */
  const finish = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    meta: RequestCtx.RequestMeta,
    started: number
  ) => {
    const method = knownMethods.has(req.method ?? "") ? req.method! : "OTHER"
    const route = meta.route ?? "unmatched"
    // 499: the caller went away before an answer was sent (nginx's convention).
    const status = res.headersSent ? res.statusCode : 499
    const durationMs = performance.now() - started
    const series = metrics.requestSeries(method, route)
    series.count(status)
    series.observe(durationMs / 1000)
    if (meta.span) telemetry.endRequest(meta.span, res.headersSent ? status : undefined, spanExtra(meta))
    AccessLog.access(log, {
      method,
      path: req.url ?? "/",
      status,
      durationMs,
      requestId: meta.id,
      route: meta.route,
      connection: meta.connection,
      key: meta.principal?.name
    })
  }
  // The proxy fast path's rare Effect part (after a 401) runs as the router's effects do: the same services
  // (telemetry.context), log level and parent span.
  const level = Runtime.logLevel()
  const fastDeps: ProxyFastPath.FastDeps = {
    ...deps,
    log,
    run: (meta) => (effect) =>
      Effect.runPromiseExit(
        (meta.span ? Effect.withParentSpan(effect, meta.span) : effect).pipe(
          Effect.provideService(References.MinimumLogLevel, level),
          Effect.provide(telemetry.context)
        )
      )
  }
  /** What `answerHot` learnt of a request it passed on: the guard let it through, and the route it matched. */
  interface Passed {
    readonly generation: Generations.Generation
    readonly found: TokenFastPath.Match
  }

  // The token fast path's series, bound once: its every answer is a GET of one route with status 200.
  let hotSeries: { readonly count: () => void; readonly duration: (seconds: number) => void } | undefined
  // Its access lines' fixed parts, rendered once per cached token (and path and key): a hit renders three fields.
  const hotLines = new WeakMap<
    Engine.TokenResult,
    { readonly path: string; readonly key: string | undefined; readonly parts: AccessLog.LineParts }
  >()
  const hotParts = (path: string, answered: TokenFastPath.Answered): AccessLog.LineParts => {
    const key = answered.principal?.name
    const cached = hotLines.get(answered.hit)
    if (cached !== undefined && cached.path === path && cached.key === key) return cached.parts
    const route = TokenFastPath.route
    const parts = AccessLog.partsOf({ method: "GET", path, status: 200, route, connection: answered.connection, key })
    hotLines.set(answered.hit, { path, key, parts })
    return parts
  }
  /** Meters and logs a cached token the fast path answered: the same series and line `finish` writes. */
  const finishHot = (req: http.IncomingMessage, id: string, answered: TokenFastPath.Answered, started: number) => {
    const durationMs = performance.now() - started
    hotSeries ??= {
      count: metrics.httpRequests.bind({ method: "GET", route: TokenFastPath.route, status: "200" }),
      duration: metrics.httpDuration.bind({ method: "GET", route: TokenFastPath.route })
    }
    hotSeries.count()
    hotSeries.duration(durationMs / 1000)
    AccessLog.accessWith(log, hotParts(AccessLog.pathOf(req.url ?? "/"), answered), durationMs, id)
  }

  /** A cached token, answered and settled in one synchronous step, before any lease, gauge or listener: nothing can
   *  observe them within it, and the generation cannot be disposed. True: answered. The request guard runs first;
   *  while tracing (a span per request) or draining (`connection: close`), `handle` covers the token route too. */
  const answerHot = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
    started: number
  ): true | Passed | undefined => {
    if (draining || telemetry.tracing) return undefined
    const generation = generations.current()
    if (guardOf(generation)(req.headers, req.method, req.url)) return undefined
    const found = TokenFastPath.match(req)
    const answered = TokenFastPath.tryAnswer(req, res, generation, id, found)
    if (!answered) return { generation, found }
    try {
      finishHot(req, id, answered, started)
    } catch (e) {
      logDefect(log, id, e)
    }
    return true
  }

  /** The request guard first, then the token fast path (true: answered, synchronously), else the proxy fast path
   *  or the router (false: the answer comes later). */
  const dispatch = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    meta: RequestCtx.RequestMeta,
    passed: Passed | undefined
  ): boolean => {
    // Guarded and matched by `answerHot` already (on the same generation), or not yet.
    const seen = passed?.generation === meta.generation ? passed : undefined
    const refusal = seen ? undefined : guardOf(meta.generation)(req.headers, req.method, req.url)
    if (refusal) {
      RequestCtx.stamp(res, meta.id)
      sendProblem(res, Problem.fromFailure(refusal, AccessLog.pathOf(req.url ?? "/"), meta.id))
      return false
    }
    const found = seen ? seen.found : TokenFastPath.match(req)
    const answered = seen ? undefined : TokenFastPath.tryAnswer(req, res, meta.generation, meta.id, found)
    if (answered) {
      RequestCtx.label(meta, TokenFastPath.route, answered.connection)
      meta.principal = answered.principal
      return true
    }
    if (ProxyFastPath.tryForward(req, res, meta.generation, meta, fastDeps, found)) return false
    RequestCtx.attach(req, meta)
    RequestCtx.stamp(res, meta.id)
    handler(req, res)
    return false
  }

  /** Every request but a hot cached token: leased, counted in flight, logged once its response has gone. */
  const handle = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    id: string,
    started: number,
    passed?: Passed,
    thrown?: { readonly defect: unknown }
  ) => {
    const lease = generations.acquire()
    const meta: RequestCtx.RequestMeta = { id, generation: lease.generation, span: telemetry.startRequest(req) }
    // X-Request-Id is set by whatever writes the answer (RequestCtx.stamp, or a fast path's writeHead).
    if (draining && !res.headersSent) res.setHeader("connection", "close")
    // Counted before dispatch: a route that answers synchronously (/metrics can) counts itself.
    metrics.inFlight.set(++inFlight)
    // Logs and meters the request, then gives back its lease (once its response has gone, or the caller has).
    const done = () => {
      try {
        finish(req, res, meta, started)
      } catch (e) {
        logDefect(log, meta.id, e)
      } finally {
        lease.release()
        metrics.inFlight.set(--inFlight)
        if (draining && inFlight === 0) drained?.()
      }
    }
    let answered = false
    if (thrown) {
      labelMatched(req, meta)
      answerDefect(log, req, res, meta.id, thrown.defect)
    } else
      try {
        answered = dispatch(req, res, meta, passed)
      } catch (e) {
        labelMatched(req, meta)
        answerDefect(log, req, res, meta.id, e)
      }
    // A cached token was answered in full, synchronously: settled now, with no listener.
    if (answered) done()
    else res.once("close", done)
  }

  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now()
    const id = RequestCtx.requestId(req.headers["x-request-id"])
    let hot: ReturnType<typeof answerHot>
    try {
      hot = answerHot(req, res, id, started)
    } catch (defect) {
      // Answered as any other request whose handling threw: a 500 problem (or a cut), logged and metered.
      handle(req, res, id, started, undefined, { defect })
      return
    }
    if (hot !== true) handle(req, res, id, started, hot)
  })

  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      draining = true
      // Stops accepting now; Node also closes the connections that are idle. Resolves once every connection ended.
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      if (inFlight > 0) {
        const allDone = new Promise<void>((resolve) => {
          drained = resolve
        })
        await Promise.race([allDone, sleep(drainTimeoutMs)])
      }
      // Connections whose last response went out keep-alive are idle now. Past the drain timeout, the rest are cut.
      server.closeIdleConnections()
      if (inFlight > 0) server.closeAllConnections()
      await Promise.race([closed, sleep(1000)])
      server.closeAllConnections()
      await closed
      await release()
    })())

  const reloadOnce = async (source: Config.Config | (() => Promise<Config.Config>)) => {
    try {
      if (closing) throw new Error("the server is closing; it cannot reload")
      const next = typeof source === "function" ? await source() : source
      checkConfig(host, next)
      const guard = guardFor(next)
      if (next.server.host !== config.server.host || next.server.port !== config.server.port) {
        AccessLog.info(
          log,
          "server.host/port changed in the config; still listening on the old address until a restart",
          { url }
        )
      }
      if (generations.storesDiffer(next)) {
        AccessLog.info(
          log,
          "store or connection_store changed in the config; the running stores stay until a restart",
          {
            url
          }
        )
      }
      const g = await generations.load(next)
      guards.set(g, guard)
      metrics.reloads.inc({ result: "ok" })
      AccessLog.info(log, "config reloaded", { generation: g.id, connections: g.config.connections.size })
    } catch (e) {
      metrics.reloads.inc({ result: "error" })
      AccessLog.error(log, {
        code: "ReloadFailed",
        message: `config not reloaded, the running one stays:\n${reloadFailure(e)}`
      })
      throw e
    }
  }
  // One at a time, each on its own: the queue forgets how the previous reload ended.
  let queue: Promise<void> = Promise.resolve()
  const reload = (source: Config.Config | (() => Promise<Config.Config>)) => {
    const run = queue.then(() => reloadOnce(source))
    queue = run.catch(() => undefined)
    return run
  }

  return { url, close, reload }
}

/** The running server, for Effect programs. */
export class Server extends Context.Service<Server, RunningServer>()("tessera/Server") {}

/** Starts the server when the layer is built and drains and closes it when the layer's scope closes. */
export const layer = (
  config: Config.Config,
  options: ServerOptions = {}
): Layer.Layer<Server, HttpServerError.ServeError | TokenError.StoreError> =>
  Layer.effect(
    Server,
    Effect.acquireRelease(
      Effect.tryPromise({
        try: () => startServer(config, options),
        catch: (cause) => (cause instanceof TokenError.StoreError ? cause : new HttpServerError.ServeError({ cause }))
      }),
      (s) => Effect.promise(() => s.close())
    )
  )
