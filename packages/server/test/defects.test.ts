/** Nothing thrown while one request is answered ends the process: a throw in the token fast path, the router or the
 *  access log becomes a 500 problem for that request (request id, no stack) with the stack in the error log, and
 *  the next request is answered. */
import type { Sandbox } from "@tessera/testkit"
import { spawn } from "node:child_process"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { capture, configText, parseConfig, raw, sandbox, start, type Reply } from "./services/harness.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await sandbox()
})
afterAll(async () => {
  await sb?.close()
})

const until = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time")
    await new Promise((r) => setTimeout(r, 20))
  }
}

const expectInternal = (r: Reply) => {
  expect(r.status).toBe(500)
  expect(r.headers["content-type"]).toBe("application/problem+json")
  const p = r.json()
  expect(p).toMatchObject({ code: "Internal", status: 500, request_id: r.headers["x-request-id"] })
  expect(p.detail).toContain(p.request_id)
  expect(r.text).not.toMatch(/RangeError|\bat \S+:\d+/)
  return p
}

describe("a throw while answering a request", () => {
  it("in the router and then in the token fast path: 500 each time, and the process keeps serving", async () => {
    const script = fileURLToPath(new URL("./services/far-future-server.ts", import.meta.url))
    const child = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "pipe"] })
    const lines: string[] = []
    let stderr = ""
    createInterface({ input: child.stdout }).on("line", (l) => lines.push(l))
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString()
    })
    try {
      await until(() => lines.some((l) => l.startsWith("ready ")))
      const url = lines.find((l) => l.startsWith("ready "))!.slice("ready ".length)
      // First: the router reads the token from the store and fails formatting its expiry (a defect in Effect).
      const first = expectInternal(
        await raw(url, "/v1/connections/jobs/token", { headers: { "x-request-id": "far-1" } })
      )
      // Second: the token now sits in the engine's own cache, so the fast path answers and throws outside Effect.
      const second = expectInternal(
        await raw(url, "/v1/connections/jobs/token", { headers: { "x-request-id": "far-2" } })
      )
      expect([first.request_id, second.request_id]).toEqual(["far-1", "far-2"])
      expect((await raw(url, "/healthz")).status).toBe(200)
      expect((await raw(url, "/v1/connections")).json().items[0].name).toBe("jobs")
      expect(child.exitCode).toBeNull()
      // Log lines reach stdout in batches (up to 20 ms later).
      await until(() => lines.filter((l) => l.includes(`"type":"access"`) && l.includes(`"status":500`)).length >= 2)
      const errors = lines.filter((l) => l.includes(`"type":"error"`)).map((l) => JSON.parse(l))
      const fastPath = errors.find((e) => e.request_id === "far-2")
      expect(fastPath).toMatchObject({ code: "Internal" })
      expect(fastPath.message).toMatch(/RangeError: Invalid time value[\s\S]*token-fast-path/)
      expect(errors.find((e) => e.request_id === "far-1")?.message).toContain("RangeError")
      const failed = lines.filter((l) => l.includes(`"type":"access"`) && l.includes(`"status":500`))
      expect(failed).toHaveLength(2)
      // Both are the token route's 500s, the fast path's too: in the access log and in the metrics.
      for (const l of failed)
        expect(JSON.parse(l)).toMatchObject({ route: "/v1/connections/:name/token", connection: "jobs" })
      expect((await raw(url, "/metrics")).text).toMatch(
        /^tessera_http_requests_total\{method="GET",route="\/v1\/connections\/:name\/token",status="500"\} 2$/m
      )
      expect(lines.join("\n") + stderr).not.toContain("far-future-token-8d2f")
    } finally {
      child.kill("SIGKILL")
    }
  }, 20_000)

  it("in the access log: the line is lost, reported, and the next requests are answered", async () => {
    const captured = capture()
    let failures = 0
    const log = {
      write: (line: string) => {
        if (failures === 0 && line.includes(`"type":"access"`)) {
          failures++
          throw new Error("log disk full")
        }
        captured.logs.push(line)
        return true
      }
    }
    const s = await start(await parseConfig(configText(sb, { keys: false, connections: ["jobs"] })), captured, { log })
    try {
      expect((await raw(s.url, "/healthz", { headers: { "x-request-id": "lost-line" } })).status).toBe(200)
      for (let i = 0; i < 3; i++) expect((await raw(s.url, "/healthz")).status).toBe(200)
      expect(failures).toBe(1)
      await until(() => captured.logs.some((l) => l.includes(`"request_id":"lost-line"`)))
      const reported = JSON.parse(captured.logs.find((l) => l.includes(`"request_id":"lost-line"`))!)
      expect(reported).toMatchObject({ type: "error", code: "Internal" })
      expect(reported.message).toContain("log disk full")
      // The request still left the in-flight count: only the /metrics request itself is in flight.
      const metrics = (await raw(s.url, "/metrics")).text
      expect(metrics).toMatch(/^tessera_http_requests_in_flight 1$/m)
    } finally {
      await s.close()
    }
  })
})
