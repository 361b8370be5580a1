/** Prometheus metrics for the server, kept in Effect's `Metric` registry and rendered at `/metrics` by Effect's
 *  `PrometheusMetrics` (text exposition format 0.0.4); the OTLP exporter (telemetry.ts) reads the same registry.
 *
 *  Holds a thin typed layer over `Metric` (families with fixed label names, checked when they are defined, and one
 *  Effect metric per label set, so an update is one map lookup) and the server's metric set: HTTP requests by route
 *  template and status, request latency, the engine's credential events by provider (acquisitions, refreshes,
 *  failures, cache hits), upstream latencies, background renewals and webhook deliveries. Labels are route
 *  templates, provider ids and codes, never raw paths, connection inputs or tokens, so no secret can reach a label
 *  and cardinality stays bounded. Each server has a registry of its own (`Metric.MetricRegistry`), so two servers
 *  in one process never count into each other. */
import * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import * as PrometheusMetrics from "effect/observability/PrometheusMetrics"
import type { Events } from "@tessera/engine"

type Labels = Readonly<Record<string, string>>

export interface Counter {
  readonly inc: (labels?: Labels, by?: number) => void
  /** `inc` for one label set, looked up once: for a hot path that counts the same series on every call. */
  readonly bind: (labels?: Labels) => (by?: number) => void
  readonly get: (labels?: Labels) => number
}
export interface Gauge {
  readonly set: (value: number, labels?: Labels) => void
}
export interface Histogram {
  readonly observe: (value: number, labels?: Labels) => void
  /** `observe` for one label set, looked up once. */
  readonly bind: (labels?: Labels) => (value: number) => void
}

export interface Registry {
  /** The Effect context holding this registry (`Metric.MetricRegistry`): exporters snapshot it. */
  readonly context: Context.Context<never>
  readonly counter: (name: string, help: string, labelNames?: ReadonlyArray<string>) => Counter
  readonly gauge: (name: string, help: string, labelNames?: ReadonlyArray<string>) => Gauge
  readonly histogram: (
    name: string,
    help: string,
    labelNames: ReadonlyArray<string>,
    buckets: ReadonlyArray<number>
  ) => Histogram
  readonly render: () => string
}

// `le` is the bucket label; `unit` and `time_unit` are attributes Effect's formatter leaves out.
const reservedLabels = new Set(["le", "unit", "time_unit"])

const checkName = (name: string, labelNames: ReadonlyArray<string>) => {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new TypeError(`invalid metric name "${name}"`)
  for (const l of labelNames)
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l) || reservedLabels.has(l))
      throw new TypeError(`invalid label name "${l}" on ${name}`)
}

/** One Effect metric per label set, its attributes in the family's label order (the order they render in). */
const seriesOf = <M>(labelNames: ReadonlyArray<string>, make: (attributes: Labels) => M) => {
  const series = new Map<string, M>()
  return (labels: Labels): M => {
    let key = ""
    for (let i = 0; i < labelNames.length; i++) key += (i === 0 ? "" : "\u0000") + (labels[labelNames[i]!] ?? "")
    let m = series.get(key)
    if (m === undefined) {
      m = make(Object.fromEntries(labelNames.map((n) => [n, labels[n] ?? ""])))
      series.set(key, m)
    }
    return m
  }
}

export const makeRegistry = (): Registry => {
  const context = Context.make(Metric.MetricRegistry, new Map())
  const names = new Set<string>()
  const register = (name: string, labelNames: ReadonlyArray<string>) => {
    checkName(name, labelNames)
    if (names.has(name)) throw new TypeError(`metric "${name}" registered twice`)
    names.add(name)
  }
  return {
    context,
    counter: (name, help, labelNames = []) => {
      register(name, labelNames)
      const series = seriesOf(labelNames, (attributes) =>
        Metric.counter(name, { description: help, attributes, incremental: true })
      )
      const inc = (m: Metric.Counter<number>, by: number) => {
        if (by < 0) throw new RangeError("a counter only goes up")
        m.updateUnsafe(by, context)
      }
      return {
        inc: (labels = {}, by = 1) => inc(series(labels), by),
        bind: (labels = {}) => {
          const m = series(labels)
          return (by = 1) => inc(m, by)
        },
        get: (labels = {}) => series(labels).valueUnsafe(context).count
      }
    },
    gauge: (name, help, labelNames = []) => {
      register(name, labelNames)
      // A set is a plain assignment: the registry reads the value when it is scraped (Metric.registerUnsafe).
      const series = seriesOf(labelNames, (attributes) => {
        const holder = { value: 0 }
        Metric.registerUnsafe(Metric.gauge(name, { description: help, attributes }), context, {
          get: () => ({ value: holder.value }),
          update: (value) => {
            holder.value = value
          },
          modify: (by) => {
            holder.value += by
          }
        })
        return holder
      })
      return {
        set: (value, labels = {}) => {
          series(labels).value = value
        }
      }
    },
    histogram: (name, help, labelNames, buckets) => {
      register(name, labelNames)
      const boundaries = [...buckets].sort((a, b) => a - b)
      const series = seriesOf(labelNames, (attributes) =>
        Metric.histogram(name, { description: help, attributes, boundaries })
      )
      return {
        observe: (value, labels = {}) => series(labels).updateUnsafe(value, context),
        bind: (labels = {}) => {
          const m = series(labels)
          return (value) => m.updateUnsafe(value, context)
        }
      }
    },
    render: () => PrometheusMetrics.formatUnsafe(context)
  }
}

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The HTTP series of one method and route, bound once (server.ts `finish` counts every request into them). */
export interface RequestSeries {
  readonly count: (status: number) => void
  readonly observe: (seconds: number) => void
}

/** The server's metric set. */
export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter
  readonly httpDuration: Histogram
  /** `httpRequests` and `httpDuration` for one method and route, looked up once per status: a request's labels are
   *  a known method (or OTHER), a route template and a status, so the series stay few. */
  readonly requestSeries: (method: string, route: string) => RequestSeries
  readonly inFlight: Gauge
  readonly proxyUpstreamDuration: Histogram
  readonly proxyRetries: Counter
  readonly reloads: Counter
  /** Renewals the background refresher started, by provider and outcome (`renewed`, `skipped`, `failed`). */
  readonly backgroundRenewals: Counter
  /** Webhook delivery attempts, by outcome (`delivered`, `retry`, `dead`). */
  readonly webhookDeliveries: Counter
  /** Subscribe this to each engine: counts its credential events. */
  readonly onEngineEvent: Events.Listener
}

export const make = (): Metrics => {
  const registry = makeRegistry()
  const httpRequests = registry.counter(
    "tessera_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"]
  )
  const httpDuration = registry.histogram(
    "tessera_http_request_duration_seconds",
    "Time from request to the end of the response.",
    ["method", "route"],
    latencyBuckets
  )
  const bound = new Map<string, Map<string, RequestSeries>>()
  const requestSeries = (method: string, route: string): RequestSeries => {
    let byRoute = bound.get(method)
    if (byRoute === undefined) bound.set(method, (byRoute = new Map()))
    let series = byRoute.get(route)
    if (series === undefined) {
      const counts = new Map<number, () => void>()
      const count = (status: number) => {
        let inc = counts.get(status)
        if (inc === undefined) counts.set(status, (inc = httpRequests.bind({ method, route, status: String(status) })))
        inc()
      }
      byRoute.set(route, (series = { count, observe: httpDuration.bind({ method, route }) }))
    }
    return series
  }
  const inFlight = registry.gauge("tessera_http_requests_in_flight", "Requests being handled now.")
  const acquisitions = registry.counter(
    "tessera_token_acquisitions_total",
    "New tokens obtained from a provider with the acquire flow.",
    ["provider"]
  )
  const refreshes = registry.counter("tessera_token_refreshes_total", "Tokens renewed with a refresh token.", [
    "provider"
  ])
  const failures = registry.counter("tessera_token_failures_total", "Failed renewals, by the engine's error code.", [
    "provider",
    "code"
  ])
  const cacheHits = registry.counter("tessera_token_cache_hits_total", "Token requests answered from the cache.", [
    "provider"
  ])
  const events = registry.counter("tessera_token_events_total", "Every credential lifecycle event, by type.", [
    "provider",
    "event"
  ])
  const upstreamDuration = registry.histogram(
    "tessera_token_upstream_duration_seconds",
    "Round trips to providers' token endpoints.",
    ["provider", "flow"],
    latencyBuckets
  )
  const proxyUpstreamDuration = registry.histogram(
    "tessera_proxy_upstream_duration_seconds",
    "Time until a proxied API answered with its headers.",
    ["provider"],
    latencyBuckets
  )
  const proxyRetries = registry.counter(
    "tessera_proxy_retries_total",
    "Proxied calls retried once with a new token after the API answered 401.",
    ["provider"]
  )
  const reloads = registry.counter("tessera_config_reloads_total", "Config reloads, by result.", ["result"])
  const backgroundRenewals = registry.counter(
    "tessera_background_renewals_total",
    "Renewals started by the background refresher, by outcome (renewed, skipped when another instance had, failed).",
    ["provider", "outcome"]
  )
  const webhookDeliveries = registry.counter(
    "tessera_webhook_deliveries_total",
    "Webhook delivery attempts, by outcome (delivered, retry, dead).",
    ["outcome"]
  )

  // A cache hit is an event on every hot-path request: its two series per provider are looked up once.
  const hits = new Map<string, { readonly event: () => void; readonly hit: () => void }>()
  const hitOf = (provider: string) => {
    let h = hits.get(provider)
    if (h === undefined) {
      h = { event: events.bind({ provider, event: "reused" }), hit: cacheHits.bind({ provider }) }
      hits.set(provider, h)
    }
    return h
  }

  const onEngineEvent: Events.Listener = (e) => {
    if (e.type === "reused") {
      const h = hitOf(e.provider)
      h.event()
      h.hit()
      return
    }
    const provider = { provider: e.provider }
    events.inc({ provider: e.provider, event: e.type })
    switch (e.type) {
      case "acquired":
        acquisitions.inc(provider)
        break
      case "refreshed":
        refreshes.inc(provider)
        break
      case "failed":
        failures.inc({ provider: e.provider, code: e.error ?? "unknown" })
        break
      default:
        break
    }
    if (e.durationMs !== undefined && (e.type === "acquired" || e.type === "refreshed")) {
      upstreamDuration.observe(e.durationMs / 1000, {
        provider: e.provider,
        flow: e.type === "acquired" ? "acquire" : "refresh"
      })
    }
  }

  return {
    registry,
    httpRequests,
    httpDuration,
    requestSeries,
    inFlight,
    proxyUpstreamDuration,
    proxyRetries,
    reloads,
    backgroundRenewals,
    webhookDeliveries,
    onEngineEvent
  }
}

export const contentType = "text/plain; version=0.0.4; charset=utf-8"
