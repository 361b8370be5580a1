/** Header and request injection attempts over a raw socket: none elevates access, smuggles a header upstream or
 *  reaches the provider's API with the caller's own credentials. */
import type { Sandbox } from "@tessera/testkit"
import { connect } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { JOBS_KEY, OPS_KEY, capture, configText, parseConfig, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()
beforeAll(async () => {
  sb = await sandbox()
  s = await start(await parseConfig(configText(sb)), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

/** Sends bytes as they are and returns the status line's code (0 when the server closed without answering). */
const rawRequest = (text: string) =>
  new Promise<{ status: number; text: string }>((resolve, reject) => {
    const { port } = new URL(s.url)
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(text)) // no half-close: the server closes after answering (Connection: close)
    let out = ""
    socket.setEncoding("latin1")
    socket.on("data", (d) => {
      out += d
    })
    socket.on("close", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0), text: out }))
    socket.on("error", reject)
    socket.setTimeout(5000, () => {
      socket.destroy()
      reject(new Error("timeout"))
    })
  })

describe("injection attempts", () => {
  it("a restricted key cannot borrow another key's rights by repeating the key header", async () => {
    const r = await rawRequest(
      `GET /v1/connections/cube/token HTTP/1.1\r\nHost: x\r\nX-Tessera-Key: ${JOBS_KEY}\r\nX-Tessera-Key: ${OPS_KEY}\r\nConnection: close\r\n\r\n`
    )
    expect([401, 403]).toContain(r.status)
    expect(r.text).not.toContain("access_token")
  })

  it("a raw CR or LF inside a header value is refused by the parser", async () => {
    const r = await rawRequest(
      `GET /v1/connections/jobs/token HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\rInjected: 1\r\nAuthorization: Bearer ${OPS_KEY}\r\nConnection: close\r\n\r\n`
    )
    expect(r.status === 400 || r.status === 0).toBe(true)
    expect(r.text).not.toContain("access_token")
  })

  it("CRLF encoded in a proxied path stays encoded: no header is smuggled upstream", async () => {
    const before = sb.requests.length
    const r = await rawRequest(
      `GET /v1/proxy/jobs/dvinciUsers/%0d%0aX-Injected:%20yes HTTP/1.1\r\nHost: x\r\nX-Tessera-Key: ${OPS_KEY}\r\nConnection: close\r\n\r\n`
    )
    expect(r.status).toBe(200)
    const upstream = sb.requests.slice(before).filter((q) => q.kind === "api")
    expect(upstream).toHaveLength(1)
    expect(upstream[0]!.headers["x-injected"]).toBeUndefined()
    expect(upstream[0]!.path.toLowerCase()).toContain("%0d%0a")
  })

  it("the caller's own Authorization never reaches the provider's API; the manifest's token does", async () => {
    const before = sb.requests.length
    const r = await rawRequest(
      `GET /v1/proxy/jobs/dvinciUsers/ HTTP/1.1\r\nHost: x\r\nX-Tessera-Key: ${OPS_KEY}\r\nAuthorization: Bearer attacker-chosen-token\r\nConnection: close\r\n\r\n`
    )
    expect(r.status).toBe(200)
    const upstream = sb.requests.slice(before).filter((q) => q.kind === "api")
    expect(upstream[0]!.headers["authorization"]).toMatch(/^Bearer ey/)
    expect(upstream[0]!.headers["authorization"]).not.toContain("attacker-chosen-token")
  })

  it("an absolute URL or a scheme-relative path in the proxy target cannot redirect the call to another host", async () => {
    for (const target of ["//evil.example/x", "http://evil.example/x", "%2F%2Fevil.example/x"]) {
      const before = sb.requests.length
      const r = await rawRequest(
        `GET /v1/proxy/jobs/${target} HTTP/1.1\r\nHost: x\r\nX-Tessera-Key: ${OPS_KEY}\r\nConnection: close\r\n\r\n`
      )
      const upstream = sb.requests.slice(before).filter((q) => q.kind === "api")
      // Either refused outright, or sent to the sandbox under /dvinci/restApi/ (the only place the proxy may go).
      // A 502/504 would mean it tried to reach some other host.
      if (upstream.length > 0) expect(upstream[0]!.path.startsWith("/dvinci/restApi/")).toBe(true)
      else expect([400, 404]).toContain(r.status)
    }
  })
})
