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
