/** The access log: its batching sink (access-log.ts `batched`, what the server puts in front of a stream) and its
 *  lines, written field by field. */
import { once } from "node:events"
import { createServer, Socket, type AddressInfo } from "node:net"
import { PassThrough } from "node:stream"
import { describe, expect, it } from "vitest"
import * as AccessLog from "../src/access-log.ts"

const target = () => {
  const writes: string[] = []
  return {
    writes,
    sink: {
      write: (s: string | Uint8Array) => writes.push(typeof s === "string" ? s : Buffer.from(s).toString("utf8"))
    }
  }
}
const after = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

describe("AccessLog.batched", () => {
  it("hands the lines of each 20 ms to the target in one write, in order, UTF-8 intact", async () => {
    const t = target()
    const log = AccessLog.batched(t.sink)
    AccessLog.info(log, "one")
    AccessLog.info(log, "two é \u2028 😀")
    AccessLog.access(log, { method: "GET", path: "/x?secret=1", status: 200, durationMs: 1, requestId: "r" })
    await after(5)
    expect(t.writes).toEqual([])
    await after(40)
    expect(t.writes).toHaveLength(1)
    const lines = t.writes[0]!.trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l))
    expect(lines.map((l) => l.message ?? l.path)).toEqual(["one", "two é \u2028 😀", "/x"])
    AccessLog.info(log, "three")
    await after(40)
    expect(t.writes).toHaveLength(2)
  })

  it("flush writes what is pending at once; a batch that would pass 64 KiB is written without waiting", async () => {
    const t = target()
    const log = AccessLog.batched(t.sink)
    AccessLog.info(log, "pending")
    log.flush()
    expect(t.writes).toHaveLength(1)
    log.flush()
    expect(t.writes).toHaveLength(1)
    for (let i = 0; i < 1000; i++) AccessLog.info(log, "x".repeat(100))
    expect(t.writes.length).toBeGreaterThan(1)
    for (const w of t.writes) expect(Buffer.byteLength(w)).toBeLessThanOrEqual(64 * 1024)
    await after(40)
    expect(t.writes.join("").split("\n").filter(Boolean)).toHaveLength(1001)
  })

  it("a line longer than a batch is written on its own, after what was pending", () => {
    const t = target()
    const log = AccessLog.batched(t.sink)
    AccessLog.info(log, "before")
    AccessLog.info(log, "y".repeat(40_000))
    expect(t.writes).toHaveLength(2)
    expect(JSON.parse(t.writes[0]!).message).toBe("before")
    expect(JSON.parse(t.writes[1]!).message).toHaveLength(40_000)
    log.flush()
    expect(t.writes).toHaveLength(2)
  })
})

/** A socket that notes the memory of each chunk it is handed (it is a real socket to a loopback peer). */
class Noting extends Socket {
  readonly memory: ArrayBufferLike[] = []
  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (error?: Error | null) => void) {
    this.memory.push(chunk.buffer)
    super._write(chunk, encoding, cb)
  }
}

/** A loopback peer that reads nothing until `read()`, then everything; `received` is what it got. */
const peer = async () => {
  const chunks: Buffer[] = []
  let accepted: Socket | undefined
  const server = createServer((s) => {
    accepted = s
    s.pause()
    s.on("data", (c: Buffer) => chunks.push(c))
  })
  server.listen(0, "127.0.0.1")
  await once(server, "listening")
  const { port } = server.address() as AddressInfo
  const socket = new Noting()
  socket.connect(port, "127.0.0.1")
  await once(socket, "connect")
  while (accepted === undefined) await after(1)
  return {
    socket,
    read: () => accepted!.resume(),
    received: () => Buffer.concat(chunks).toString("utf8"),
    close: async () => {
      socket.destroy()
      accepted?.destroy()
      server.close()
      await once(server, "close")
    }
  }
}

/** Lines `from` to `to` (exclusive), each naming its number and padded to ~200 bytes. */
const numbered = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => `{"n":${from + i},"pad":"${"p".repeat(180)}"}\n`)

const inOrder = (text: string, count: number) => {
  const lines = text.split("\n").filter(Boolean)
  expect(lines).toHaveLength(count)
  lines.forEach((l, i) => expect(JSON.parse(l).n).toBe(i))
}

describe("AccessLog.batched buffers", () => {
  it("a batch's buffer takes the next batch once the socket has written it", async () => {
    const p = await peer()
    try {
      const log = AccessLog.batched(p.socket)
      AccessLog.info(log, "one")
      await log.settled()
      AccessLog.info(log, "two")
      await log.settled()
      AccessLog.info(log, "three")
      await log.settled()
      expect(p.socket.memory).toHaveLength(3)
      expect(new Set(p.socket.memory).size).toBeLessThanOrEqual(2)
      p.read()
      while (p.received().split("\n").length < 4) await after(5)
      expect(
        p
          .received()
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).message)
      ).toEqual(["one", "two", "three"])
    } finally {
      await p.close()
    }
  })

  it("never while a slow socket still holds it: every line arrives intact and in order", async () => {
    const p = await peer()
    try {
      const log = AccessLog.batched(p.socket)
      // ~16 MB in bursts of ~200 KB, one event-loop turn apart: the peer reads nothing at first, so the kernel's
      // buffers fill and the socket holds batches unwritten while the next ones are collected.
      let n = 0
      let bytes = 0
      for (let burst = 0; burst < 80; burst++) {
        for (const l of numbered(n, n + 1000)) {
          log.write(l)
          bytes += l.length
        }
        n += 1000
        if (burst === 40) p.read()
        await new Promise((r) => setImmediate(r))
      }
      await log.settled()
      while (p.received().length < bytes) await after(10)
      inOrder(p.received(), n)
      expect(new Set(p.socket.memory).size).toBeLessThan(p.socket.memory.length) // buffers were taken again
    } finally {
      await p.close()
    }
  }, 30_000)

  it("a stream that keeps a chunk after calling back (a PassThrough) gets a new buffer per batch", async () => {
    const through = new PassThrough()
    // The reader keeps every chunk as it was handed over (the PassThrough passes the batch's own memory on).
    const chunks: Buffer[] = []
    through.on("data", (c: Buffer) => chunks.push(c))
    const log = AccessLog.batched(through)
    for (let round = 0; round < 4; round++) {
      for (const l of numbered(round * 500, round * 500 + 500)) log.write(l)
      await log.settled()
    }
    inOrder(Buffer.concat(chunks).toString("utf8"), 2000)
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

describe("AccessLog.batched at exit", () => {
  it("a process that exits with lines pending writes them first (process.exit, within the 20 ms)", async () => {
    const { execFileSync } = await import("node:child_process")
    const module = new URL("../src/access-log.ts", import.meta.url).href
    const script =
      `import * as L from ${JSON.stringify(module)}; const log = L.batched(process.stdout); ` +
      `L.info(log, "last words"); process.exit(0)`
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })
    expect(JSON.parse(out.trim()).message).toBe("last words")
  })
})
