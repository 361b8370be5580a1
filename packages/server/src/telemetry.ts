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
import type * as Context from "effect/Context"
import type * as Tracer from "effect/Tracer"
import * as FindMyWay from "effect/http/FindMyWay"
import type * as http from "node:http"

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

const endpointSet = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS") =>
  Boolean(env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`] || env["OTEL_EXPORTER_OTLP_ENDPOINT"])

const exporterOn = (env: NodeJS.ProcessEnv, signal: "TRACES" | "METRICS") =>
  endpointSet(env, signal) &&
  (env[`OTEL_${signal}_EXPORTER`] ?? "otlp")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .includes("otlp")

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

const off = (metrics: Context.Context<never>): Telemetry => ({
  tracing: false,
  exporting: false,
  context: metrics,
  startRequest: () => undefined,
  endRequest: () => undefined,
  close: async () => undefined
})

export interface Options {
  readonly env: NodeJS.ProcessEnv
  readonly metrics: Context.Context<never>
  readonly routes: ReadonlyArray<{ readonly method: string; readonly path: `/${string}` }>
}

/** Builds the exporters the environment asks for, within a scope `close()` ends. `metrics` is the server's
 *  registry context (metrics.ts), exported as it is. Off (the usual case), none of the exporters' modules is
 *  loaded: Effect's OTLP tracer, metrics exporter, serializers and fetch client live in telemetry-otlp.ts, imported
 *  only when a signal is on. */
export const make = async (options: Options): Promise<Telemetry> => {
  const { env, metrics } = options
  if ((env["OTEL_SDK_DISABLED"] ?? "").trim().toLowerCase() === "true") return off(metrics)
  const tracing = exporterOn(env, "TRACES")
  const exporting = exporterOn(env, "METRICS")
  if (!tracing && !exporting) return off(metrics)
  const { start } = await import("./telemetry-otlp.ts")
  return start(options, tracing, exporting)
}

/** The trace id of a span as OTLP writes it (32 hex digits), for the access log. */
export const traceIdOf = (span: Tracer.Span): string => span.traceId.padStart(32, "0")
