/** OpenTelemetry for the server: traces and metrics over OTLP/HTTP with Effect's own exporters
 *  (`effect/observability` OtlpTracer and OtlpMetrics), configured by the standard environment variables.
 *
 *  - On when `OTEL_EXPORTER_OTLP_ENDPOINT` (or a per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` /
 *    `..._METRICS_ENDPOINT`) is set, unless `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER` /
 *    `OTEL_METRICS_EXPORTER` is `none`. Off, nothing is built: no tracer, no exporter, no span on any request.
 *  - `OTEL_SERVICE_NAME` (default `tessera`) and `OTEL_RESOURCE_ATTRIBUTES` describe the resource;
 *    `OTEL_EXPORTER_OTLP_PROTOCOL` (or the per-signal one) picks `http/protobuf` (the default, as the OTel spec
 *    says) or `http/json`; `grpc` is refused at start. Headers, compression, timeouts and intervals are the
 *    exporters' own variables (`OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_SCHEDULE_DELAY`,
 *    `OTEL_METRIC_EXPORT_INTERVAL`, ...).
 *  - Traces: a server span per request, named `{method} {route}` with semantic-convention attributes
 *    (`http.request.method`, `http.route`, `url.path` without the query, `http.response.status_code`), continuing
 *    an incoming W3C `traceparent`; the engine's renewal and exchange spans (engine observability.ts) become its
 *    children, and background renewals are traces of their own.
 *  - Metrics: the server's Prometheus registry (metrics.ts) is exported as it is, so both views agree.
 *  - `close()` flushes what is buffered (within the exporters' shutdown timeout) and stops them. */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as FindMyWay from "effect/http/FindMyWay"
import * as Headers from "effect/http/Headers"
import * as HttpTraceContext from "effect/http/HttpTraceContext"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import type * as http from "node:http"
import { readFileSync } from "node:fs"
import { Redaction } from "@tessera/engine"

export interface Telemetry {
  /** Whether request spans are recorded (a traces endpoint is set). */
  readonly tracing: boolean
  /** Whether metrics are exported. */
  readonly exporting: boolean
  /** What every effect the server runs is given: the metrics registry, and the OTLP tracer when tracing. */
  readonly context: Context.Context<never>
  /** Starts the server span of a request; undefined when tracing is off. */
  readonly startRequest: (req: http.IncomingMessage) => Tracer.Span | undefined
  /** Ends it once the response has gone: `status` undefined when the caller left before an answer. */
  readonly endRequest: (span: Tracer.Span, status: number | undefined, extra: Readonly<Record<string, string>>) => void
  /** Flushes and stops the exporters. Idempotent. */
  readonly close: () => Promise<void>
}

type Protocol = "http/protobuf" | "http/json"

const protocolOf = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS"): Protocol => {
  const name = env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] ? `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL` : undefined
  const variable = name ?? "OTEL_EXPORTER_OTLP_PROTOCOL"
  const value = (env[variable] ?? "http/protobuf").trim().toLowerCase()
  if (value === "http/protobuf" || value === "http/json") return value
  throw new TypeError(
    `${variable}=${value} is not supported: tessera exports over OTLP/HTTP, so use http/protobuf (the default) or http/json`
  )
}

const endpointSet = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS") =>
  Boolean(env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`] || env["OTEL_EXPORTER_OTLP_ENDPOINT"])

const exporterOn = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS") =>
  endpointSet(env, signal) &&
  (env[`OTEL_${signal}_EXPORTER`] ?? "otlp")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .includes("otlp")

const attributeGiven = (env: NodeJS.ProcessEnv, key: string) =>
  new RegExp(`(^|,)\\s*${key.replace(".", "\\.")}\\s*=`).test(env["OTEL_RESOURCE_ATTRIBUTES"] ?? "")

const serverVersion = (): string =>
  (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version

/** The variables the exporters read, with the OTel spec's defaults where Effect has none: the exporters are `otlp`
 *  unless set otherwise, and the service is `tessera` at this version unless the operator names it. */
const effectiveEnv = (env: NodeJS.ProcessEnv): Record<string, string> => {
  const out: Record<string, string> = { OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp" }
  if (!env["OTEL_SERVICE_NAME"] && !attributeGiven(env, "service.name")) out["OTEL_SERVICE_NAME"] = "tessera"
  if (!env["OTEL_SERVICE_VERSION"] && !attributeGiven(env, "service.version"))
    out["OTEL_SERVICE_VERSION"] = serverVersion()
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") out[k] = v
  return out
}

const serialization = (p: Protocol) =>
  p === "http/json" ? OtlpSerialization.layerJson : OtlpSerialization.layerProtobuf

const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"])

/** Epoch nanoseconds, as Effect's clock gives span times. */
const nowNanos = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n

const pathOf = (url: string | undefined) => {
  const u = url ?? "/"
  const q = u.indexOf("?")
  return q === -1 ? u : u.slice(0, q)
}

/** A route-template matcher over the server's table, so a span is named before the router runs. */
export const routeMatcher = (
  routes: ReadonlyArray<{ readonly method: string; readonly path: `/${string}` }>
): ((method: string, path: string) => string | undefined) => {
  const router = FindMyWay.make<string>()
  for (const r of routes) {
    if (r.method === "*") router.all(r.path, r.path)
    else router.on(r.method, r.path, r.path)
  }
  return (method, path) => router.find(method === "HEAD" ? "GET" : method, path)?.handler
}

/** A start-up error naming the variable at fault, with the collector headers (they may hold a token) masked. */
const misconfigured = (env: NodeJS.ProcessEnv, e: unknown): TypeError => {
  const headers = Object.entries(env).flatMap(([k, v]) => (/^OTEL_EXPORTER_OTLP_.*HEADERS$/.test(k) && v ? [v] : []))
  const text = Redaction.scrub(e instanceof Error ? e.message : String(e), headers)
  return new TypeError(`OpenTelemetry is misconfigured: ${text}. Fix the OTEL_* variable, or unset it`)
}

const off = (metrics: Context.Context<never>): Telemetry => ({
  tracing: false,
  exporting: false,
  context: metrics,
  startRequest: () => undefined,
  endRequest: () => undefined,
  close: async () => undefined
})

/** Builds the exporters the environment asks for, within a scope `close()` ends. `metrics` is the server's
 *  registry context (metrics.ts), exported as it is. */
export const make = async (options: {
  readonly env: NodeJS.ProcessEnv
  readonly metrics: Context.Context<never>
  readonly routes: ReadonlyArray<{ readonly method: string; readonly path: `/${string}` }>
}): Promise<Telemetry> => {
  const { env, metrics } = options
  if ((env["OTEL_SDK_DISABLED"] ?? "").trim().toLowerCase() === "true") return off(metrics)
  const tracing = exporterOn(env, "TRACES")
  const exporting = exporterOn(env, "METRICS")
  if (!tracing && !exporting) return off(metrics)
  const layers = [
    ...(tracing ? [OtlpTracer.layerFromConfig().pipe(Layer.provide(serialization(protocolOf(env, "TRACES"))))] : []),
    ...(exporting ? [OtlpMetrics.layerFromConfig().pipe(Layer.provide(serialization(protocolOf(env, "METRICS"))))] : [])
  ]
  const layer = Layer.mergeAll(...(layers as [(typeof layers)[number]])).pipe(
    Layer.provide(FetchHttpClient.layer),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnvRecord(effectiveEnv(env)))),
    Layer.provide(Layer.succeedContext(metrics))
  )
  const scope = Effect.runSync(Scope.make())
  const built = await Effect.runPromise(Layer.buildWithScope(layer, scope)).catch(async (e: unknown) => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    throw misconfigured(env, e)
  })
  const context = Context.merge(metrics, built)
  const tracer = Context.get(context, Tracer.Tracer)
  const match = routeMatcher(options.routes)

  const startRequest = (req: http.IncomingMessage): Tracer.Span | undefined => {
    if (!tracing) return undefined
    const method = knownMethods.has(req.method ?? "") ? req.method! : "_OTHER"
    const path = pathOf(req.url)
    const route = match(req.method ?? "GET", path)
    const parent = HttpTraceContext.fromHeaders(Headers.fromInput(req.headers))
    const span = tracer.span({
      name: route === undefined ? method : `${method} ${route}`,
      parent,
      annotations: Context.empty(),
      links: [],
      startTime: nowNanos(),
      kind: "server",
      root: Option.isNone(parent),
      sampled: Option.isSome(parent) ? parent.value.sampled : true
    })
    span.attribute("http.request.method", method)
    span.attribute("url.path", path)
    span.attribute("url.scheme", "http")
    if (route !== undefined) span.attribute("http.route", route)
    span.attribute("network.protocol.version", req.httpVersion)
    if (req.socket.remoteAddress) span.attribute("client.address", req.socket.remoteAddress)
    if (req.socket.localPort) span.attribute("server.port", req.socket.localPort)
    return span
  }

  const endRequest: Telemetry["endRequest"] = (span, status, extra) => {
    for (const [k, v] of Object.entries(extra)) span.attribute(k, v)
    if (status !== undefined) span.attribute("http.response.status_code", status)
    // OTel: a server span is an error for a 5xx answer only; a caller that left got no answer at all.
    if (status === undefined) span.attribute("error.type", "client_aborted")
    else if (status >= 500) span.attribute("error.type", String(status))
    const failed = status === undefined || status >= 500
    span.end(nowNanos(), failed ? Exit.fail(`HTTP ${status ?? "(no answer)"}`) : Exit.void)
  }

  let closing: Promise<void> | undefined
  return {
    tracing,
    exporting,
    context,
    startRequest,
    endRequest,
    close: () => (closing ??= Effect.runPromise(Scope.close(scope, Exit.void)))
  }
}

/** The trace id of a span as OTLP writes it (32 hex digits), for the access log. */
export const traceIdOf = (span: Tracer.Span): string => span.traceId.padStart(32, "0")
