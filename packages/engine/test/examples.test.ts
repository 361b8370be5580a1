/** The runnable examples in examples/ keep working: each is run as a child process and its output checked. */
import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

const run = (file: string) =>
  execFileSync(process.execPath, [fileURLToPath(new URL(`../../../examples/${file}`, import.meta.url))], {
    encoding: "utf8",
    timeout: 30_000
  })

describe("examples", () => {
  it("library-promise.ts: shared token, authenticated API call, explained decision", () => {
    const out = run("library-promise.ts")
    expect(out).toContain("crm token shared by concurrent callers: true")
    expect(out).toMatch(/GET \/restApi\/dvinciUsers\/ -> 200/)
    expect(out).toMatch(/jobs: reused - cached token valid for \d+ s more/)
  })

  it("library-effect.ts: invalidate then refresh, typed rejection, redacted printing", () => {
    const out = run("library-effect.ts")
    expect(out).toMatch(/after invalidate: refreshed/)
    expect(out).toMatch(
      /UpstreamRejected \(reauthenticate\): brandbox-wrong \(brandbox\): provider answered HTTP 401: Invalid credentials/
    )
    expect(out).toContain("<redacted:access_token>")
    expect(out).not.toContain("not-the-password")
  })
})
