/** The `tessera` executable as a newcomer meets it: `pnpm exec tessera` works at the repository root, and an older
 *  Node (this machine's own Node 20, when there is one on the PATH) gets a clear message naming Node 24 and how to
 *  get it, with exit 2 and no stack trace. */
import { execFile, execFileSync } from "node:child_process"
import { existsSync } from "node:fs"
import { delimiter, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"
import { bin } from "./services/cli.ts"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const version = (
  JSON.parse(
    execFileSync(process.execPath, ["-p", "JSON.stringify(require('./package.json'))"], {
      cwd: join(repo, "packages/cli"),
      encoding: "utf8"
    })
  ) as { version: string }
).version
const pnpmVersion = (
  JSON.parse(
    execFileSync(process.execPath, ["-p", "JSON.stringify(require('./package.json'))"], {
      cwd: repo,
      encoding: "utf8"
    })
  ) as { packageManager: string }
).packageManager.replace(/^pnpm@/, "")

/** A `node` on the PATH older than 24, outside any node_modules (the pinned Node 24 shim lives there). */
const oldNode = ((process.env["PATH"] ?? "").split(delimiter) as string[])
  .filter((d) => d !== "" && !d.includes("node_modules"))
  .map((d) => join(d, "node"))
  .find((p) => {
    if (!existsSync(p)) return false
    try {
      return Number(execFileSync(p, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" })) < 24
    } catch {
      return false
    }
  })

describe("the tessera executable", () => {
  it.skipIf(oldNode === undefined)(
    `on an older Node (${oldNode ?? "none on the PATH"}) says it needs Node 24 and how to get it`,
    async () => {
      const r = await promisify(execFile)(oldNode!, [bin, "token", "x"], { encoding: "utf8" }).then(
        () => ({ code: 0, stdout: "", stderr: "" }),
        (e: { code: number; stdout: string; stderr: string }) => e
      )
      expect(r.code).toBe(2)
      expect(r.stdout).toBe("")
      expect(r.stderr).toMatch(/^tessera needs Node\.js 24 or later, but this is Node\.js \d+\.\d+\.\d+ \(/)
      expect(r.stderr).toContain("https://nodejs.org")
      expect(r.stderr).toContain("nvm install 24")
      expect(r.stderr).toContain("pnpm@10.34.9 exec tessera")
      expect(r.stderr).not.toMatch(/\n\s+at |Error/)
    }
  )

  it("runs as `pnpm exec tessera` at the repository root", async () => {
    const { stdout } = await promisify(execFile)("npx", ["-y", `pnpm@${pnpmVersion}`, "exec", "tessera", "--version"], {
      cwd: repo,
      encoding: "utf8"
    })
    expect(stdout).toBe(`tessera v${version}\n`)
  })
})
