/** OpenTelemetry over real sockets: a server whose OTEL_* variables point at a loopback OTLP/HTTP receiver the test
 *  starts exports a server span per request (semantic-convention names, the path without its query, a caller's
 *  traceparent continued), the engine's renewal and exchange spans as its children (provider, connection,
 *  outcome, duration), the server's metrics, and no secret in any payload; without an endpoint nothing is built. */
import type { Sandbox } from "@tessera/testkit"
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest"
import { Metrics, startServer } from "../src/index.ts"
import * as Telemetry from "../src/telemetry.ts"
import { OPS_KEY, capture, configText, parseConfig, raw, sandbox, secretsOf, start } from "./services/harness.ts"
import { startReceiver, type Receiver, type Span } from "./services/otlp-receiver.ts"

let sb: Sandbox
let receiver: Receiver
beforeAll(async () => {
  sb = await sandbox()
})
afterAll(() => sb.close())
afterEach(async () => {
  await receiver?.close()
  sb.reset()
})

const key = { authorization: `Bearer ${OPS_KEY}` }
const one = (spans: Span[], name: string, where: (s: Span) => boolean = () => true) => {
  const found = spans.filter((s) => s.name === name && where(s))
  expect(found, `${name} spans: ${JSON.stringify(spans.map((s) => s.name))}`).toHaveLength(1)
  return found[0]!
}

describe("traces", () => {
  it("exports request spans with the engine's renewal and exchange spans as children, and no secret", async () => {
    receiver = await startReceiver()
    const captured = capture()
    const config = await parseConfig(configText(sb, { connections: ["jobs", "bad-secret", "cube"] }))
    const s = await start(config, captured, {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_SERVICE_NAME: "tessera-test",
        OTEL_RESOURCE_ATTRIBUTES: "deployment.environment=test,service.namespace=ops"
      }
    })
    const got = await raw(s.url, "/v1/connections/jobs/token?page=secret-query-value", { headers: key })
    expect(got.status).toBe(200)
    captured.tokens.add(got.json().access_token)
    expect((await raw(s.url, "/v1/connections/jobs/token", { headers: key })).status).toBe(200) // fast path
    expect((await raw(s.url, "/v1/connections/bad-secret/token", { headers: key })).status).toBe(502)
    sb.inject("cube", { type: "echo" })
    expect((await raw(s.url, "/v1/connections/cube/token", { headers: key })).status).toBe(502)
    const parent = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" }
    const traceparent = `00-${parent.traceId}-${parent.spanId}-01`
    expect((await raw(s.url, "/healthz", { headers: { traceparent } })).status).toBe(200)
    await s.close() // flushes

    expect(receiver.received.every((r) => r.contentType === "application/x-protobuf")).toBe(true)
    expect(receiver.resources()[0]).toMatchObject({
      "service.name": "tessera-test",
      "deployment.environment": "test",
      "service.namespace": "ops"
    })
    const spans = receiver.spans()
    const tokenRoute = "GET /v1/connections/:name/token"
    const first = one(spans, tokenRoute, (x) => x.attributes["tessera.connection"] === "jobs" && hasChild(spans, x))
    expect(first.kind).toBe(2)
    expect(first.attributes).toMatchObject({
      "http.request.method": "GET",
      "http.route": "/v1/connections/:name/token",
      "url.path": "/v1/connections/jobs/token",
      "http.response.status_code": 200,
      "tessera.api_key": "ops"
    })
    const renew = one(spans, "tessera.renew", (x) => x.attributes["tessera.connection"] === "jobs")
    expect(renew.parentSpanId).toBe(first.spanId)
    expect(renew.traceId).toBe(first.traceId)
    expect(renew.attributes).toMatchObject({
      "tessera.provider": "dvinci",
      "tessera.outcome": "acquired"
    })
    expect(renew.attributes["tessera.duration_ms"]).toEqual(expect.any(Number))
    const exchange = one(spans, "tessera.upstream", (x) => x.attributes["tessera.connection"] === "jobs")
    expect(exchange.parentSpanId).toBe(renew.spanId)
    expect(exchange.attributes).toMatchObject({
      "tessera.flow": "acquire",
      "tessera.outcome": "ok",
      "tessera.attempts": 1
    })

    // The second request was answered by the fast path: a span, but no renewal.
    expect(spans.filter((x) => x.name === tokenRoute && x.attributes["tessera.connection"] === "jobs")).toHaveLength(2)
    const failed = one(spans, "tessera.renew", (x) => x.attributes["tessera.connection"] === "bad-secret")
    expect(failed.attributes).toMatchObject({ "tessera.outcome": "failed", "tessera.error": "UpstreamRejected" })
    expect(failed.statusCode).toBe(2)
    const failedRequest = spans.find((x) => x.spanId === failed.parentSpanId)!
    expect(failedRequest.attributes).toMatchObject({ "http.response.status_code": 502, "error.type": "502" })
    expect(failedRequest.statusCode).toBe(2)

    const health = one(spans, "GET /healthz")
    expect(health.traceId).toBe(parent.traceId)
    expect(health.parentSpanId).toBe(parent.spanId)
    expect(health.statusCode).toBe(1)

    const payload = Buffer.concat(receiver.received.map((r) => r.body)).toString("latin1")
    expect(payload).not.toContain("secret-query-value")
    const leaked = secretsOf(sb, captured).filter((secret) => payload.includes(secret))
    expect(leaked).toEqual([])
  })

  it("traces each background renewal on its own, with the engine's renewal under it", async () => {
    receiver = await startReceiver()
    sb.setTtl("dvinci", 1)
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    const s = await start(config, capture(), {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }
    })
    expect((await raw(s.url, "/v1/connections/jobs/token", { headers: key })).status).toBe(200)
    await new Promise((r) => setTimeout(r, 1_500)) // 1 s tokens: renewed in the background about 0.45 s in
    await s.close()
    expect(receiver.received.every((r) => r.contentType.startsWith("application/json"))).toBe(true)
    expect(receiver.resources()[0]).toMatchObject({ "service.name": "tessera", "service.version": "0.1.0" })
    const spans = receiver.spans()
    const background = spans.filter((x) => x.name === "tessera.background_renewal")
    expect(background.length).toBeGreaterThanOrEqual(1)
    expect(background[0]!.parentSpanId).toBe("")
    expect(background[0]!.attributes).toMatchObject({
      "tessera.connection": "jobs",
      "tessera.provider": "dvinci",
      "tessera.kind": "warm",
      "tessera.outcome": "renewed"
    })
    const renew = spans.find((x) => x.name === "tessera.renew" && x.parentSpanId === background[0]!.spanId)
    expect(renew?.attributes).toMatchObject({ "tessera.outcome": "acquired" })
  })

  it("takes a per-signal endpoint and JSON, exports the server's metrics, and no traces when they are off", async () => {
    receiver = await startReceiver()
    const captured = capture()
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    const s = await start(config, captured, {
      env: {
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${receiver.url}/custom/v1/metrics`,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json",
        OTEL_EXPORTER_OTLP_HEADERS: "x-team=ops%20team",
        OTEL_TRACES_EXPORTER: "none"
      }
    })
    expect((await raw(s.url, "/v1/connections/jobs/token", { headers: key })).status).toBe(200)
    await s.close()
    expect(receiver.received.map((r) => r.path)).toEqual(expect.arrayContaining(["/custom/v1/metrics"]))
    expect(receiver.received.filter((r) => r.path.endsWith("/traces"))).toEqual([])
    expect(receiver.received.every((r) => r.headers["x-team"] === "ops team")).toBe(true)
    const payload = receiver.received.map((r) => r.body.toString("utf8")).join("\n")
    expect(secretsOf(sb, captured).filter((secret) => payload.includes(secret))).toEqual([])
    expect(receiver.points()).toEqual(
      expect.arrayContaining([
        {
          metric: "tessera_http_requests_total",
          attributes: { method: "GET", route: "/v1/connections/:name/token", status: "200" }
        },
        { metric: "tessera_token_acquisitions_total", attributes: { provider: "dvinci" } }
      ])
    )
  })
})

describe("off", () => {
  it("builds nothing and starts no span without an endpoint", async () => {
    const t = await Telemetry.make({
      env: { OTEL_SERVICE_NAME: "x" },
      metrics: Metrics.makeRegistry().context,
      routes: []
    })
    expect([t.tracing, t.exporting]).toEqual([false, false])
    expect(t.startRequest({} as never)).toBeUndefined()
    const disabled = await Telemetry.make({
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:9", OTEL_SDK_DISABLED: "true" },
      metrics: Metrics.makeRegistry().context,
      routes: []
    })
    expect([disabled.tracing, disabled.exporting]).toEqual([false, false])
  })

  it("refuses OTLP over gRPC at start, naming the variable", async () => {
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    await expect(
      startServer(config, {
        port: 0,
        log: false,
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }
      })
    ).rejects.toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported/)
  })

  it("refuses a malformed endpoint at start, naming the variable", async () => {
    const config = await parseConfig(configText(sb, { connections: ["jobs"] }))
    await expect(
      startServer(config, { port: 0, log: false, env: { OTEL_EXPORTER_OTLP_ENDPOINT: "not a url" } })
    ).rejects.toThrow(/OpenTelemetry is misconfigured: .*OTEL_EXPORTER_OTLP_ENDPOINT/s)
  })
})

const hasChild = (spans: Span[], s: Span) => spans.some((x) => x.parentSpanId === s.spanId)
