/** Prometheus metrics for the server, rendered in the text exposition format (version 0.0.4) at `/metrics`.
 *
 *  Holds a minimal registry (counters, gauges, histograms with labels) and the server's metric set: HTTP requests
 *  by route template and status, request latency, the engine's credential events by provider (acquisitions,
 *  refreshes, failures, cache hits) and upstream latencies. Labels are route templates, provider ids and codes,
 *  never raw paths, connection inputs or tokens, so no secret can reach a label and cardinality stays bounded. */
import type { Events } from "@tessera/engine"

type Labels = Readonly<Record<string, string>>

interface Family {
  readonly render: () => string
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')

const labelText = (names: ReadonlyArray<string>, labels: Labels, extra?: readonly [string, string]): string => {
  const parts = names.map((n) => `${n}="${escapeLabel(labels[n] ?? "")}"`)
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`)
  return parts.length ? `{${parts.join(",")}}` : ""
}

const keyOf = (names: ReadonlyArray<string>, labels: Labels) => names.map((n) => labels[n] ?? "").join("\u0000")

const formatNumber = (n: number) => (Number.isFinite(n) ? String(n) : n > 0 ? "+Inf" : n < 0 ? "-Inf" : "NaN")

export interface Counter {
  readonly inc: (labels?: Labels, by?: number) => void
  readonly get: (labels?: Labels) => number
}
export interface Gauge {
  readonly set: (value: number, labels?: Labels) => void
}
export interface Histogram {
  readonly observe: (value: number, labels?: Labels) => void
}

export interface Registry {
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

const checkName = (name: string, labelNames: ReadonlyArray<string>) => {
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new TypeError(`invalid metric name "${name}"`)
  for (const l of labelNames)
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(l) || l === "le") throw new TypeError(`invalid label name "${l}" on ${name}`)
}

export const makeRegistry = (): Registry => {
  const families: Family[] = []
  const names = new Set<string>()
  const register = (name: string, labelNames: ReadonlyArray<string>) => {
    checkName(name, labelNames)
    if (names.has(name)) throw new TypeError(`metric "${name}" registered twice`)
    names.add(name)
  }

  const scalar = (kind: "counter" | "gauge", name: string, help: string, labelNames: ReadonlyArray<string>) => {
    register(name, labelNames)
    const values = new Map<string, { labels: Labels; value: number }>()
    families.push({
      render: () =>
        [
          `# HELP ${name} ${help}`,
          `# TYPE ${name} ${kind}`,
          ...[...values.values()].map((v) => `${name}${labelText(labelNames, v.labels)} ${formatNumber(v.value)}`)
        ].join("\n")
    })
    const slot = (labels: Labels) => {
      const k = keyOf(labelNames, labels)
      let v = values.get(k)
      if (!v) {
        v = { labels, value: 0 }
        values.set(k, v)
      }
      return v
    }
    return { values, slot }
  }

  return {
    counter: (name, help, labelNames = []) => {
      const { values, slot } = scalar("counter", name, help, labelNames)
      return {
        inc: (labels = {}, by = 1) => {
          if (by < 0) throw new RangeError("a counter only goes up")
          slot(labels).value += by
        },
        get: (labels = {}) => values.get(keyOf(labelNames, labels))?.value ?? 0
      }
    },
    gauge: (name, help, labelNames = []) => {
      const { slot } = scalar("gauge", name, help, labelNames)
      return {
        set: (value, labels = {}) => {
          slot(labels).value = value
        }
      }
    },
    histogram: (name, help, labelNames, buckets) => {
      register(name, labelNames)
      const bounds = [...buckets].sort((a, b) => a - b)
      const series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>()
      families.push({
        render: () => {
          const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`]
          for (const s of series.values()) {
            bounds.forEach((b, i) =>
              lines.push(`${name}_bucket${labelText(labelNames, s.labels, ["le", formatNumber(b)])} ${s.counts[i]}`)
            )
            lines.push(`${name}_bucket${labelText(labelNames, s.labels, ["le", "+Inf"])} ${s.count}`)
            lines.push(`${name}_sum${labelText(labelNames, s.labels)} ${formatNumber(s.sum)}`)
            lines.push(`${name}_count${labelText(labelNames, s.labels)} ${s.count}`)
          }
          return lines.join("\n")
        }
      })
      return {
        observe: (value, labels = {}) => {
          const k = keyOf(labelNames, labels)
          let s = series.get(k)
          if (!s) {
            s = { labels, counts: bounds.map(() => 0), sum: 0, count: 0 }
            series.set(k, s)
          }
          // Buckets are cumulative: an observation counts in every bucket whose bound it does not exceed.
          bounds.forEach((b, i) => {
            if (value <= b) s.counts[i]! += 1
          })
          s.sum += value
          s.count += 1
        }
      }
    },
    render: () => families.map((f) => f.render()).join("\n\n") + "\n"
  }
}

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** The server's metric set. */
export interface Metrics {
  readonly registry: Registry
  readonly httpRequests: Counter
  readonly httpDuration: Histogram
  readonly inFlight: Gauge
  readonly proxyUpstreamDuration: Histogram
  readonly proxyRetries: Counter
  readonly reloads: Counter
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

  const onEngineEvent: Events.Listener = (e) => {
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
      case "reused":
        cacheHits.inc(provider)
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

  return { registry, httpRequests, httpDuration, inFlight, proxyUpstreamDuration, proxyRetries, reloads, onEngineEvent }
}

export const contentType = "text/plain; version=0.0.4; charset=utf-8"
