/** The exporting half of telemetry.ts, loaded only when a traces or metrics exporter is on: Effect's OTLP tracer and
 *  metrics exporter, their serializers and the fetch client they send with (12 modules a server without
 *  OpenTelemetry never needs). What each variable means is in telemetry.ts. */
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Tracer from "effect/Tracer"
import * as FetchHttpClient from "effect/http/FetchHttpClient"
import * as Headers from "effect/http/Headers"
import * as HttpTraceContext from "effect/http/HttpTraceContext"
import * as OtlpMetrics from "effect/observability/OtlpMetrics"
import * as OtlpSerialization from "effect/observability/OtlpSerialization"
import * as OtlpTracer from "effect/observability/OtlpTracer"
import type * as http from "node:http"
import { readFileSync } from "node:fs"
import { Redaction } from "@tessera/engine"
import { routeMatcher, type Options, type Telemetry } from "./telemetry.ts"

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

/** A start-up error naming the variable at fault, with the collector headers (they may hold a token) masked. */
const misconfigured = (env: NodeJS.ProcessEnv, e: unknown): TypeError => {
  const headers = Object.entries(env).flatMap(([k, v]) => (/^OTEL_EXPORTER_OTLP_.*HEADERS$/.test(k) && v ? [v] : []))
  const text = Redaction.scrub(e instanceof Error ? e.message : String(e), headers)
  return new TypeError(`OpenTelemetry is misconfigured: ${text}. Fix the OTEL_* variable, or unset it`)
}

/** telemetry.ts `make` once it has found a signal on: builds its exporters. */
export const start = async (options: Options, tracing: boolean, exporting: boolean): Promise<Telemetry> => {
  const { env, metrics } = options
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
