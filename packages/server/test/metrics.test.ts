/** The Prometheus registry (Effect's `Metric` registry rendered by `PrometheusMetrics`) and the engine-event mapping:
 *  exposition format, escaping, cumulative buckets, one registry per server. */
import { Metric } from "effect"
import { describe, expect, it } from "vitest"
import { Metrics } from "../src/index.ts"

describe("Metrics.makeRegistry", () => {
  it("renders counters with escaped labels and HELP/TYPE lines", () => {
    const r = Metrics.makeRegistry()
    const c = r.counter("x_total", "Things.", ["path"])
    c.inc({ path: 'a"b\\c\nd' })
    c.inc({ path: 'a"b\\c\nd' }, 2)
    expect(r.render()).toBe(`# HELP x_total Things.\n# TYPE x_total counter\nx_total{path="a\\"b\\\\c\\nd"} 3\n`)
    expect(() => c.inc({}, -1)).toThrow(RangeError)
  })

  it("renders histograms with cumulative buckets, +Inf, sum and count", () => {
    const r = Metrics.makeRegistry()
    const h = r.histogram("d_seconds", "Durations.", ["route"], [0.1, 1])
    h.observe(0.05, { route: "/a" })
    h.observe(0.5, { route: "/a" })
    h.observe(5, { route: "/a" })
    expect(r.render().split("\n")).toEqual(
      expect.arrayContaining([
        `d_seconds_bucket{route="/a",le="0.1"} 1`,
        `d_seconds_bucket{route="/a",le="1"} 2`,
        `d_seconds_bucket{route="/a",le="+Inf"} 3`,
        `d_seconds_sum{route="/a"} 5.55`,
        `d_seconds_count{route="/a"} 3`
      ])
    )
  })

  it("refuses bad and duplicate names at registration", () => {
    const r = Metrics.makeRegistry()
    r.counter("ok_total", "x")
    expect(() => r.counter("ok_total", "x")).toThrow(/twice/)
    expect(() => r.counter("bad-name", "x")).toThrow(/invalid metric name/)
    expect(() => r.histogram("h", "x", ["le"], [1])).toThrow(/invalid label/)
    expect(() => r.counter("u_total", "x", ["unit"])).toThrow(/invalid label/)
  })

  it("keeps its series in Effect's MetricRegistry, one registry per server", () => {
    const a = Metrics.makeRegistry()
    const b = Metrics.makeRegistry()
    a.counter("hits_total", "Hits.", ["provider"]).inc({ provider: "cube" }, 2)
    b.counter("hits_total", "Hits.", ["provider"]).inc({ provider: "cube" })
    const snapshot = Metric.snapshotUnsafe(a.context)
    expect(snapshot.map((s) => [s.id, s.type, s.attributes, s.state])).toEqual([
      ["hits_total", "Counter", { provider: "cube" }, { count: 2, incremental: true }]
    ])
    expect(b.render()).toContain(`hits_total{provider="cube"} 1`)
  })
})

describe("Metrics.make", () => {
  it("counts engine events by provider: acquisitions, refreshes, failures by code, cache hits, upstream latency", () => {
    const m = Metrics.make()
    const at = Date.now()
    m.onEngineEvent({ type: "acquired", connection: "c", provider: "cube", at, reason: "r", durationMs: 120 })
    m.onEngineEvent({ type: "refreshed", connection: "c", provider: "oauth2", at, reason: "r", durationMs: 30 })
    m.onEngineEvent({ type: "failed", connection: "c", provider: "cube", at, reason: "r", error: "UpstreamTimeout" })
    m.onEngineEvent({ type: "reused", connection: "c", provider: "cube", at, reason: "r" })
    m.onEngineEvent({ type: "reused", connection: "c", provider: "cube", at, reason: "r" })
    const text = m.registry.render()
    expect(text).toContain(`tessera_token_acquisitions_total{provider="cube"} 1`)
    expect(text).toContain(`tessera_token_refreshes_total{provider="oauth2"} 1`)
    expect(text).toContain(`tessera_token_failures_total{provider="cube",code="UpstreamTimeout"} 1`)
    expect(text).toContain(`tessera_token_cache_hits_total{provider="cube"} 2`)
    expect(text).toContain(`tessera_token_events_total{provider="cube",event="reused"} 2`)
    expect(text).toContain(`tessera_token_upstream_duration_seconds_sum{provider="cube",flow="acquire"} 0.12`)
    expect(text).toContain(`tessera_token_upstream_duration_seconds_count{provider="oauth2",flow="refresh"} 1`)
  })
})
