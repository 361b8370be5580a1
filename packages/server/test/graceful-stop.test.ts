/** A graceful stop leaves no access-log line behind on a stream target (a file): `close()` resolves once the
 *  stream has written the last batch, so a process that exits then (SIGTERM, `tessera serve`) keeps every line. */
import type { Sandbox } from "@tessera/testkit"
import { spawn } from "node:child_process"
import { once } from "node:events"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll, expect, it } from "vitest"
import { startServer } from "../src/index.ts"
import { configText, parseConfig, raw, sandbox } from "./services/harness.ts"
import { slowFile } from "./services/slow-file.ts"

let sb: Sandbox
let dir: string
beforeAll(async () => {
  sb = await sandbox()
  dir = mkdtempSync(join(tmpdir(), "tessera-stop-"))
})
afterAll(async () => {
  await sb?.close()
  rmSync(dir, { recursive: true, force: true })
})

const linesOf = (file: string) =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))

it("close() resolves once the last lines are in the file", async () => {
  const file = join(dir, "close.log")
  writeFileSync(file, "")
  const config = await parseConfig(configText(sb, { keys: false, connections: ["jobs"] }))
  const s = await startServer(config, { port: 0, host: "127.0.0.1", log: slowFile(file, 100) })
  expect((await raw(s.url, "/healthz", { headers: { "x-request-id": "last-one" } })).status).toBe(200)
  await s.close()
  expect(linesOf(file).filter((l) => l.request_id === "last-one")).toHaveLength(1)
})

it("SIGTERM: the process exits 0 after its last lines reached the file", async () => {
  const file = join(dir, "sigterm.log")
  writeFileSync(file, "")
  const configFile = join(dir, "tessera.yaml")
  writeFileSync(configFile, configText(sb, { keys: false, connections: ["jobs"] }))
  const script = fileURLToPath(new URL("./services/stopping-server.ts", import.meta.url))
  const child = spawn(process.execPath, [script, configFile, file], { stdio: ["ignore", "pipe", "inherit"] })
  try {
    const lines = createInterface({ input: child.stdout })
    const [ready] = (await once(lines, "line")) as [string]
    const url = ready.slice("ready ".length)
    expect((await raw(url, "/healthz", { headers: { "x-request-id": "before-term" } })).status).toBe(200)
    const exited = once(child, "exit")
    child.kill("SIGTERM")
    expect(await exited).toEqual([0, null])
    const logged = linesOf(file)
    expect(logged.filter((l) => l.request_id === "before-term")).toHaveLength(1)
    expect(logged.at(-1)).toMatchObject({ type: "info", message: "stopping: draining requests in flight" })
  } finally {
    child.kill("SIGKILL")
  }
}, 20_000)
