/** The command line itself: --help and examples on every command, --version, and usage errors (exit 2). */
import { readFileSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, tempDir, tessera } from "./services/cli.ts"

afterAll(cleanup)

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version

describe.concurrent("tessera", () => {
  it("--help on every command shows its description and examples", async () => {
    const cwd = tempDir()
    const help = (...command: string[]) => tessera([...command, "--help"], { cwd })
    const [root, validate, providers, token] = await Promise.all([help(), help("validate"), help("providers"), help("token")])
    for (const r of [root, validate, providers, token]) {
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("DESCRIPTION")
      expect(r.stdout).toContain("EXAMPLES")
    }
    expect(root.stdout).toMatch(/validate +Check manifests and configs/)
    expect(root.stdout).toMatch(/token +Print a connection's access token/)
    expect(validate.stdout).toContain("tessera validate providers/ my-provider.yaml")
    expect(providers.stdout).toContain("tessera providers --json")
    expect(token.stdout).toContain("--dry-run")
    expect(token.stdout).toContain("--show-secrets")
    expect(token.stdout).toContain('$(tessera token crm)')
    expect(token.stdout).not.toContain("--wizard")
  })

  it("--version prints the package version", async () => {
    const r = await tessera(["--version"], { cwd: tempDir() })
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(`tessera v${version}`)
  })

  it("a command-line mistake exits 2 with the error alone on stderr", async () => {
    const cwd = tempDir()
    const [unknown, json] = await Promise.all([tessera(["validate", "--frobnicate"], { cwd }), tessera(["token", "--json"], { cwd })])
    expect(unknown.code).toBe(2)
    expect(unknown.stdout).toBe("")
    expect(unknown.stderr).toBe('tessera: Unrecognized flag: --frobnicate in command tessera validate\nRun "tessera validate --help" for usage.\n')
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stderr)).toEqual({ error: { code: "MissingArgument", message: "Missing required argument: connection" } })
  })
})
