/** An API that writes what a Node server may not write back: a reason phrase outside visible ASCII (obs-text,
 *  which undici decodes as UTF-8). The proxy answers with the API's status and body and no reason phrase, through
 *  the router (no token yet) and through the fast path (the token cached), and the process keeps serving: before,
 *  the router cut the connection, and the fast path's writeHead threw twice, the second time out of its
 *  rejection handler, an unhandled rejection that ends a `tessera serve` process. */
import type { Sandbox } from "@tessera/testkit"
import * as net from "node:net"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ProxyFastPath from "../src/proxy-fast-path.ts"
import type { RunningServer } from "../src/index.ts"
import { OPS_KEY, capture, configText, parseConfig, raw, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
let api: net.Server
const captured = capture()

/** Raw answers, byte for byte, by the last segment of the path. */
const answers: Record<string, Buffer> = {
  // "été" in Latin-1: not UTF-8, so undici's reason phrase holds U+FFFD.
  latin1: Buffer.concat([
    Buffer.from("HTTP/1.1 200 "),
    Buffer.from([0xe9, 0x74, 0xe9]),
    Buffer.from("\r\nContent-Length: 2\r\n\r\nok")
  ]),
  // U+2028 in UTF-8.
  utf8: Buffer.concat([
    Buffer.from("HTTP/1.1 201 A"),
    Buffer.from([0xe2, 0x80, 0xa8]),
    Buffer.from("B\r\nContent-Length: 2\r\n\r\nok")
  ]),
  plain: Buffer.from("HTTP/1.1 202 Accepted For Later\r\nContent-Length: 2\r\n\r\nok")
}

beforeAll(async () => {
  sb = await sandbox()
  api = net.createServer((socket) => {
    let head = ""
    socket.on("data", (c: Buffer) => {
      head += c.toString("latin1")
      if (!head.includes("\r\n\r\n")) return
      const which = /^[A-Z]+ \/base\/([a-z0-9]+)/.exec(head)?.[1] ?? ""
      socket.end(answers[which] ?? Buffer.from("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    })
    socket.on("error", () => undefined)
  })
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
  const base = `http://127.0.0.1:${(api.address() as AddressInfo).port}/base`
  const inputs = { ...sb.credentials.oauth2, api_base_url: base }
  const own = `  hostile:\n    provider: oauth2\n    inputs:\n${Object.entries(inputs)
    .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
    .join("\n")}`
  const text = configText(sb, { connections: ["jobs"] }).replace("connections:\n", `connections:\n${own}\n`)
  s = await start(await parseConfig(text), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  await new Promise<void>((r) => (api ? api.close(() => r()) : r()))
})

/** The raw status line of an answer (node:http's client would hide the reason phrase's bytes). */
const statusLine = (path: string): Promise<string> =>
  new Promise((resolve, reject) => {
    const u = new URL(s.url)
    const socket = net.connect(Number(u.port), u.hostname, () =>
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\nX-Tessera-Key: ${OPS_KEY}\r\nConnection: close\r\n\r\n`)
    )
    let got = ""
    socket.on("data", (c: Buffer) => {
      got += c.toString("latin1")
    })
    socket.on("end", () => resolve(got))
    socket.on("error", reject)
    setTimeout(() => {
      socket.destroy()
      reject(new Error(`no complete answer to ${path} within 3 s`))
    }, 3000).unref()
  })

describe("a reason phrase Node cannot write", () => {
  it("router then fast path: the API's status and body, no reason phrase, and the server keeps serving", async () => {
    for (const [which, status] of [
      ["latin1", 200],
      ["utf8", 201]
    ] as const) {
      const before = ProxyFastPath.stats.forwarded
      // First through the router (the token is fetched), then through the fast path (the token is cached).
      for (const path of ["router", "fast"]) {
        const answer = await statusLine(`/v1/proxy/hostile/${which}`)
        expect(answer.split("\r\n")[0], path).toBe(`HTTP/1.1 ${status} `)
        expect(answer.endsWith("\r\n\r\nok"), path).toBe(true)
      }
      expect(ProxyFastPath.stats.forwarded).toBeGreaterThan(before)
    }
    expect(captured.logs.filter((l) => l.includes('"code":"Internal"'))).toEqual([])
    expect((await raw(s.url, "/healthz")).status).toBe(200)
  })

  it("a reason phrase of visible ASCII is passed on", async () => {
    expect((await statusLine("/v1/proxy/hostile/plain")).split("\r\n")[0]).toBe("HTTP/1.1 202 Accepted For Later")
  })
})
