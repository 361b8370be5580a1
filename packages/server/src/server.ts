/** Runs the tessera HTTP server for a loaded config: `startServer` (Promise API) and `layer` (Effect API).
 *
 *  Holds the Node server's lifecycle; the routes are app.ts on Effect's HttpRouter. The Node server is created
 *  here rather than by `NodeHttpServer.layer` because shutdown and reload need control the layer does not give:
 *  - Each request leases the engine generation current when it arrives (generations.ts) and is counted in flight
 *    until its response has been fully sent (body streaming included); its access-log line is written then.
 *  - `close()` stops accepting at once (the listening socket closes, so new connections are refused), lets the
 *    requests in flight finish (up to `drainTimeoutMs`, then cuts them), closes the idle keep-alive connections,
 *    and only then disposes the engines.
 *  - `reload(config)` builds a new generation and makes it current; requests in flight finish on the old one,
 *    which is disposed after its last request. The bind address cannot change without a restart.
 *  - A host that is not loopback is refused unless the config has API keys: without keys every route is open. */
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { HttpServerError } from "effect/http"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { Connection, TokenError, type Config, type Runtime } from "@tessera/engine"
import * as AccessLog from "./access-log.ts"
import * as App from "./app.ts"
import * as Generations from "./generations.ts"
import * as Metrics from "./metrics.ts"
import * as OpenApi from "./openapi.ts"
import * as Proxy from "./proxy.ts"
import * as RequestCtx from "./request-context.ts"
import * as TokenFastPath from "./token-fast-path.ts"
import { routes, type Deps } from "./routes.ts"

export interface ServerOptions {
  /** Default: `server.port` of the config (8787). 0 picks a free port. */
  readonly port?: number | undefined
  /** Default: `server.host` of the config (127.0.0.1). */
  readonly host?: string | undefined
  /** Token store: "memory" (default unless the config names one), "file", or an implementation. */
  readonly store?: Runtime.StoreChoice | undefined
  /** Access and error log lines (JSON, one per line). Default process.stdout; false for none. */
  readonly log?: AccessLog.LogSink | false | undefined
  /** Proxy limits: body size, replay buffer, upstream time limit (proxy.ts). */
  readonly limits?: Partial<Proxy.Limits> | undefined
  /** How long `close()` waits for requests in flight before cutting them. Default 30 s. */
  readonly drainTimeoutMs?: number | undefined
}

export interface RunningServer {
  /** e.g. "http://127.0.0.1:8787" */
  readonly url: string
  /** Stops accepting, drains requests in flight, then releases everything. Idempotent. */
  readonly close: () => Promise<void>
  /** Swaps in a new config without dropping requests. Rejects (keeping the current config) when it cannot. */
  readonly reload: (config: Config.Config) => Promise<void>
}

/** Loopback hosts, where a server without API keys is reachable only from this machine: the engine's one rule,
 *  the same that allows plain http to an API. */
export const isLoopback = Connection.isLoopback

const checkBind = (host: string, config: Config.Config) => {
  if (!isLoopback(host) && config.server.apiKeys.length === 0) {
    throw new TypeError(
      `refusing to listen on ${host} without API keys: every token would be open to the network. ` +
        "Add server.api_keys to the config, or bind 127.0.0.1"
    )
  }
}

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])

const sleep = (ms: number) =>
  new Promise<void>((resolve) => {
    setTimeout(resolve, ms).unref()
  })

export const startServer = async (config: Config.Config, options: ServerOptions = {}): Promise<RunningServer> => {
  const host = options.host ?? config.server.host
  const port = options.port ?? config.server.port
  checkBind(host, config)
  const limits = Proxy.checkLimits({ ...Proxy.defaultLimits, ...options.limits })
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000
  if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0)
    throw new TypeError("drainTimeoutMs must be a non-negative number")
  const log = options.log === false ? AccessLog.silent : (options.log ?? process.stdout)

  const metrics = Metrics.make()
  const generations = await Generations.make(config, { store: options.store, onEvent: metrics.onEngineEvent })
  const agents = Proxy.makeAgents()
  let openapi: unknown
  const deps: Deps = { limits, agents, metrics, openapi: () => (openapi ??= OpenApi.document(routes)) }
  const scope = Effect.runSync(Scope.make())
  const release = async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    agents.destroy()
    await generations.dispose()
  }

  let handler: (req: http.IncomingMessage, res: http.ServerResponse) => void
  const server = http.createServer()
  try {
    handler = await Effect.runPromise(App.make(routes, deps, log).pipe(Scope.provide(scope)))
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

  let inFlight = 0
  let draining = false
  let drained: (() => void) | undefined
  server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => {
    const started = performance.now()
    const lease = generations.acquire()
    const meta: RequestCtx.RequestMeta = {
      id: RequestCtx.requestId(req.headers["x-request-id"]),
      generation: lease.generation
    }
    RequestCtx.attach(req, meta)
    res.setHeader("x-request-id", meta.id)
    if (draining) res.setHeader("connection", "close")
    metrics.inFlight.set(++inFlight)
    res.once("close", () => {
      lease.release()
      metrics.inFlight.set(--inFlight)
      const method = knownMethods.has(req.method ?? "") ? req.method! : "OTHER"
      const route = meta.route ?? "unmatched"
      // 499: the caller went away before an answer was sent (nginx's convention).
      const status = res.headersSent ? res.statusCode : 499
      const durationMs = performance.now() - started
      metrics.httpRequests.inc({ method, route, status: String(status) })
      metrics.httpDuration.observe(durationMs / 1000, { method, route })
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
      if (draining && inFlight === 0) drained?.()
    })
    if (!TokenFastPath.tryAnswer(req, res, lease.generation, meta)) handler(req, res)
  })

  const address = server.address() as AddressInfo
  const url = `http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`

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

  const reload = async (next: Config.Config) => {
    if (closing) throw new Error("the server is closing; it cannot reload")
    try {
      checkBind(host, next)
      if (next.server.host !== config.server.host || next.server.port !== config.server.port) {
        AccessLog.info(
          log,
          "server.host/port changed in the config; still listening on the old address until a restart",
          { url }
        )
      }
      const g = await generations.load(next)
      metrics.reloads.inc({ result: "ok" })
      AccessLog.info(log, "config reloaded", { generation: g.id, connections: g.config.connections.size })
    } catch (e) {
      metrics.reloads.inc({ result: "error" })
      throw e
    }
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
