/** The access log's batching sink (access-log.ts `batched`): what the server puts in front of a stream. */
import { describe, expect, it } from "vitest"
import * as AccessLog from "../src/access-log.ts"

const target = () => {
  const writes: string[] = []
  return { writes, sink: { write: (s: string) => writes.push(s) } }
}
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("AccessLog.batched", () => {
  it("hands the lines of one event-loop turn to the target in one write, in order", async () => {
    const t = target()
    const log = AccessLog.batched(t.sink)
    AccessLog.info(log, "one")
    AccessLog.info(log, "two")
    AccessLog.access(log, { method: "GET", path: "/x?secret=1", status: 200, durationMs: 1, requestId: "r" })
    expect(t.writes).toEqual([])
    await turn()
    expect(t.writes).toHaveLength(1)
    const lines = t.writes[0]!.trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.message ?? l.path)).toEqual(["one", "two", "/x"])
    AccessLog.info(log, "three")
    await turn()
    expect(t.writes).toHaveLength(2)
  })

  it("flush writes what is pending at once; past 64 KiB a batch is written without waiting", async () => {
    const t = target()
    const log = AccessLog.batched(t.sink)
    AccessLog.info(log, "pending")
    log.flush()
    expect(t.writes).toHaveLength(1)
    for (let i = 0; i < 1000; i++) AccessLog.info(log, "x".repeat(100))
    expect(t.writes.length).toBeGreaterThan(1)
    await turn()
    expect(t.writes.join("").split("\n").filter(Boolean)).toHaveLength(1001)
  })
})

describe("AccessLog.access and accessWith", () => {
  // What a line must be: the fields as JSON.stringify gives them, in this order, undefined ones left out.
  const reference = (e: AccessLog.AccessEntry, now: Date) =>
    JSON.stringify({
      time: now.toISOString(),
      type: "access",
      method: e.method,
      path: AccessLog.pathOf(e.path),
      status: e.status,
      duration_ms: Math.round(e.durationMs * 10) / 10,
      request_id: e.requestId,
      route: e.route,
      connection: e.connection,
      key: e.key
    }) + "\n"
  const entries: ReadonlyArray<AccessLog.AccessEntry> = [
    {
      method: "GET",
      path: "/v1/connections/api/token?k=secret",
      status: 200,
      durationMs: 0.1234,
      requestId: "a.1",
      route: "/v1/connections/:name/token",
      connection: "api"
    },
    {
      method: "OTHER",
      path: '/a"b\\c\u0000\u2028é\n',
      status: 499,
      durationMs: 12345.678,
      requestId: "r-2",
      connection: 'x"y\u001f',
      key: 'k\n"'
    },
    { method: "GET", path: "x".repeat(3000), status: 500, durationMs: Number.NaN, requestId: "r", key: "ops" }
  ]

  it("writes field by field exactly the JSON an object would give, escapes included, the query cut", () => {
    const now = new Date("2026-12-02T18:00:00.123Z")
    for (const e of entries) {
      const t = target()
      AccessLog.access(t.sink, e, now)
      AccessLog.accessWith(t.sink, AccessLog.partsOf(e), e.durationMs, e.requestId, now)
      expect(t.writes).toEqual([reference(e, now), reference(e, now)])
      expect(JSON.parse(t.writes[0]!).path).not.toContain("secret")
    }
  })

  it("stamps each line with the time it was written (the stamp is formatted once per millisecond)", async () => {
    const t = target()
    const before = Date.now()
    AccessLog.access(t.sink, entries[0]!)
    await new Promise((r) => setTimeout(r, 5))
    AccessLog.accessWith(t.sink, AccessLog.partsOf(entries[0]!), 1, "b.2")
    const [a, b] = t.writes.map((l) => Date.parse(JSON.parse(l).time))
    expect(a).toBeGreaterThanOrEqual(before)
    expect(b! - a!).toBeGreaterThanOrEqual(4)
  })
})
