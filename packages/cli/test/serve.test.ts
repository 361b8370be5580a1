/** `tessera serve`: the real binary runs the server from the discovered config, answers a token request, and
 *  drains and exits 0 on SIGTERM; a non-loopback bind without API keys is refused with exit 2. */
import { spawn } from "node:child_process"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { bin, cleanup, configText, tempDir, tessera, write } from "./services/cli.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(async () => {
  cleanup()
  await sb?.close()
})

describe("tessera serve", () => {
  it("serves tokens from the config until SIGTERM, then exits 0", async () => {
    const dir = tempDir()
    const config = write(
      join(dir, "tessera.yaml"),
      configText({ jobs: { provider: "dvinci", inputs: sb.credentials.dvinci } })
    )
    // process.execPath, not a wrapper script: the signal must reach the server's own process.
    const child = spawn(process.execPath, [bin, "serve", "--config", config, "--port", "0"], {
      cwd: dir,
      env: { ...process.env, NO_COLOR: "1", XDG_DATA_HOME: join(dir, ".data") },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString()
    })
    child.stderr.on("data", (d: Buffer) => {
      out += d.toString()
    })
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const t = setInterval(() => {
          const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(out)
          if (m) {
            clearInterval(t)
            resolve(m[1]!)
          }
        }, 50)
        setTimeout(() => {
          clearInterval(t)
          reject(new Error(`server did not start:\n${out}`))
        }, 15_000)
      })
      const res = await fetch(`${url}/v1/connections/jobs/token`)
      expect(res.status).toBe(200)
      const body = (await res.json()) as { connection: string; provider: string; access_token: string }
      expect(body).toMatchObject({ connection: "jobs", provider: "dvinci" })
      expect(sb.tokenRequests("dvinci").length).toBeGreaterThanOrEqual(1)
      child.kill("SIGTERM")
      expect(await exited).toBe(0)
      expect(out).not.toContain(body.access_token)
      expect(out).not.toContain(sb.credentials.dvinci["client_secret"]!)
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  })

  it("refuses a non-loopback address without API keys (exit 2, says why)", async () => {
    const dir = tempDir()
    const config = write(
      join(dir, "tessera.yaml"),
      configText({ jobs: { provider: "dvinci", inputs: sb.credentials.dvinci } })
    )
    const r = await tessera(["serve", "--config", config, "--host", "0.0.0.0", "--port", "0"], { cwd: dir })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/api_keys|API key/i)
  })
})
