/** The README's first command ends in `pnpm demo` (scripts/demo.mjs): it must keep working end to end. */
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { describe, expect, it } from "vitest"

describe("pnpm demo", () => {
  it("gets tokens from all six sandbox providers through the library and the CLI, the second CLI call from the cache", async () => {
    const script = fileURLToPath(new URL("../../../scripts/demo.mjs", import.meta.url))
    const { stdout } = await promisify(execFile)(process.execPath, [script], { encoding: "utf8", timeout: 50_000 })
    for (const id of ["cube", "dvinci", "usage-engine", "brandbox", "crm-com", "oauth2"])
      expect(stdout).toMatch(new RegExp(`  ${id}\\s+acquired\\s+then reused`))
    expect(stdout).toContain("$ tessera token cube --json   (0 token request)")
    expect(stdout).toContain("password=***")
    expect(stdout).toContain("HTTP/1.1 200 OK")
    expect(stdout).not.toContain("cli failed")
    expect(stdout).not.toContain("bb-password")
  })
})
