/** `pnpm test` shows progress: scripts/test.mjs runs vitest through scripts/tee.mjs, which passes each line on as it
 *  comes (vitest prints one per finished test file) instead of holding the whole output until the end. */
import { spawn } from "node:child_process"
import { fileURLToPath, pathToFileURL } from "node:url"
import { expect, it } from "vitest"

const tee = pathToFileURL(fileURLToPath(new URL("../../../scripts/tee.mjs", import.meta.url))).href

it("passes a command's output on while it runs, and keeps all of it", async () => {
  const slow = "console.log('first'); setTimeout(() => console.log('second'), 1500)"
  const driver = `const { runTee } = await import(${JSON.stringify(tee)})
const r = await runTee(process.execPath, ["-e", ${JSON.stringify(slow)}])
console.log(JSON.stringify(r))`
  const child = spawn(process.execPath, ["--input-type=module", "-e", driver], { stdio: ["ignore", "pipe", "inherit"] })
  const seen: Array<{ text: string; at: number }> = []
  child.stdout.on("data", (d: Buffer) => seen.push({ text: d.toString("utf8"), at: performance.now() }))
  const exitAt = await new Promise<number>((resolve) => child.on("close", () => resolve(performance.now())))
  const first = seen.find((s) => s.text.includes("first"))
  expect(first).toBeDefined()
  expect(exitAt - first!.at).toBeGreaterThan(1000)
  const kept = JSON.parse(
    seen
      .map((s) => s.text)
      .join("")
      .trim()
      .split("\n")
      .at(-1)!
  ) as { status: number; stdout: string }
  expect(kept).toEqual({ status: 0, stdout: "first\nsecond\n", stderr: "" })
})
