/** A loopback OTLP/HTTP receiver for tests: takes POST /v1/traces and /v1/metrics (any path ending so), keeps every
 *  raw body, and decodes what Effect's exporters send, protobuf (`application/x-protobuf`, the OTel default) or
 *  JSON, into spans and metric points. The protobuf decoder reads the wire format directly (field numbers from
 *  opentelemetry-proto's trace.proto, metrics.proto and common.proto), only the fields the tests look at. */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

export interface Span {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string
  readonly name: string
  /** 1 internal, 2 server, 3 client. */
  readonly kind: number
  readonly attributes: Record<string, unknown>
  /** 0 unset, 1 ok, 2 error. */
  readonly statusCode: number
}

export interface Point {
  readonly metric: string
  readonly attributes: Record<string, unknown>
}

export interface Received {
  readonly path: string
  readonly headers: http.IncomingHttpHeaders
  readonly contentType: string
  readonly body: Buffer
}

export interface Receiver {
  readonly url: string
  readonly received: Received[]
  readonly spans: () => Span[]
  readonly resources: () => Array<Record<string, unknown>>
  readonly points: () => Point[]
  readonly close: () => Promise<void>
}

// ---- protobuf wire format ----

type Field = { readonly wire: number; readonly value: bigint | Buffer }

const varint = (b: Buffer, at: number): [bigint, number] => {
  let v = 0n
  let shift = 0n
  for (let i = at; ; i++) {
    const byte = b[i]!
    v |= BigInt(byte & 0x7f) << shift
    if ((byte & 0x80) === 0) return [v, i + 1]
    shift += 7n
  }
}

const fields = (b: Buffer): Map<number, Field[]> => {
  const out = new Map<number, Field[]>()
  for (let at = 0; at < b.length;) {
    const [key, next] = varint(b, at)
    const no = Number(key >> 3n)
    const wire = Number(key & 7n)
    let value: bigint | Buffer
    if (wire === 0) [value, at] = varint(b, next)
    else if (wire === 1) [value, at] = [b.subarray(next, next + 8), next + 8]
    else if (wire === 5) [value, at] = [b.subarray(next, next + 4), next + 4]
    else if (wire === 2) {
      const [len, start] = varint(b, next)
      value = b.subarray(start, start + Number(len))
      at = start + Number(len)
    } else throw new Error(`unsupported wire type ${wire}`)
    out.set(no, [...(out.get(no) ?? []), { wire, value }])
  }
  return out
}

const bytes = (m: Map<number, Field[]>, no: number): Buffer[] =>
  (m.get(no) ?? []).flatMap((f) => (Buffer.isBuffer(f.value) ? [f.value] : []))
const str = (m: Map<number, Field[]>, no: number) => bytes(m, no)[0]?.toString("utf8") ?? ""
const hex = (m: Map<number, Field[]>, no: number) => bytes(m, no)[0]?.toString("hex") ?? ""
const int = (m: Map<number, Field[]>, no: number) => {
  const v = m.get(no)?.[0]?.value
  return typeof v === "bigint" ? Number(v) : 0
}

const anyValue = (b: Buffer): unknown => {
  const m = fields(b)
  if (m.has(1)) return str(m, 1)
  if (m.has(2)) return int(m, 2) !== 0
  if (m.has(3)) return int(m, 3)
  if (m.has(4)) return bytes(m, 4)[0]!.readDoubleLE(0)
  if (m.has(5)) return bytes(fields(bytes(m, 5)[0]!), 1).map(anyValue)
  return undefined
}

const keyValues = (m: Map<number, Field[]>, no: number): Record<string, unknown> =>
  Object.fromEntries(
    bytes(m, no).map((kv) => {
      const f = fields(kv)
      return [str(f, 1), bytes(f, 2)[0] ? anyValue(bytes(f, 2)[0]!) : undefined]
    })
  )

const protoTraces = (b: Buffer) => {
  const spans: Span[] = []
  const resources: Array<Record<string, unknown>> = []
  for (const rs of bytes(fields(b), 1)) {
    const r = fields(rs)
    const resource = bytes(r, 1)[0]
    resources.push(resource ? keyValues(fields(resource), 1) : {})
    for (const ss of bytes(r, 2))
      for (const sp of bytes(fields(ss), 2)) {
        const s = fields(sp)
        const status = bytes(s, 15)[0]
        spans.push({
          traceId: hex(s, 1),
          spanId: hex(s, 2),
          parentSpanId: hex(s, 4),
          name: str(s, 5),
          kind: int(s, 6),
          attributes: keyValues(s, 9),
          statusCode: status ? int(fields(status), 3) : 0
        })
      }
  }
  return { spans, resources }
}

// ---- OTLP/JSON ----

interface JsonKeyValue {
  readonly key: string
  readonly value: Record<string, unknown>
}
const jsonAttributes = (list: ReadonlyArray<JsonKeyValue> | undefined): Record<string, unknown> =>
  Object.fromEntries(
    (list ?? []).map((kv) => [kv.key, kv.value["stringValue"] ?? kv.value["intValue"] ?? kv.value["doubleValue"]])
  )

interface JsonMetric {
  readonly name: string
  readonly [kind: string]: unknown
}
const jsonPoints = (body: Buffer): Point[] => {
  const data = JSON.parse(body.toString("utf8")) as {
    resourceMetrics: Array<{ scopeMetrics: Array<{ metrics: JsonMetric[] }> }>
  }
  return data.resourceMetrics.flatMap((rm) =>
    rm.scopeMetrics.flatMap((sm) =>
      sm.metrics.flatMap((m) => {
        const shape = (m["sum"] ?? m["gauge"] ?? m["histogram"]) as
          { dataPoints: Array<{ attributes?: JsonKeyValue[] }> } | undefined
        return (shape?.dataPoints ?? []).map((p) => ({ metric: m.name, attributes: jsonAttributes(p.attributes) }))
      })
    )
  )
}

const jsonTraces = (body: Buffer) => {
  const data = JSON.parse(body.toString("utf8")) as {
    resourceSpans: Array<{
      resource: { attributes: JsonKeyValue[] }
      scopeSpans: Array<{
        spans: Array<{
          traceId: string
          spanId: string
          parentSpanId?: string
          name: string
          kind: number
          attributes: JsonKeyValue[]
          status: { code: number }
        }>
      }>
    }>
  }
  return {
    resources: data.resourceSpans.map((r) => jsonAttributes(r.resource.attributes)),
    spans: data.resourceSpans.flatMap((r) =>
      r.scopeSpans.flatMap((ss) =>
        ss.spans.map((s) => ({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ?? "",
          name: s.name,
          kind: s.kind,
          attributes: jsonAttributes(s.attributes),
          statusCode: s.status.code
        }))
      )
    )
  }
}

const isJson = (r: Received) => r.contentType.startsWith("application/json")

export const startReceiver = async (): Promise<Receiver> => {
  const received: Received[] = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      received.push({
        path: req.url ?? "",
        headers: req.headers,
        contentType: String(req.headers["content-type"] ?? ""),
        body: Buffer.concat(chunks)
      })
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as AddressInfo
  const traces = () =>
    received
      .filter((r) => r.path.endsWith("/traces"))
      .map((r) => (isJson(r) ? jsonTraces(r.body) : protoTraces(r.body)))
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    spans: () => traces().flatMap((t) => t.spans),
    resources: () => traces().flatMap((t) => t.resources),
    points: () => received.filter((r) => r.path.endsWith("/metrics") && isJson(r)).flatMap((r) => jsonPoints(r.body)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
