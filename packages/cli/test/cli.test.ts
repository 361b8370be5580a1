/** The command line itself: --help and examples on every command, --version, usage errors (exit 2), shell
 *  completion scripts, and colors only where they belong (a terminal, without NO_COLOR). */
import { readFileSync } from "node:fs"
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, hasScript, tempDir, tessera, tesseraTty, write } from "./services/cli.ts"

afterAll(cleanup)

const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version

describe.concurrent("tessera", () => {
  it("--help on every command shows its description and examples", async () => {
    const cwd = tempDir()
    const help = (...command: string[]) => tessera([...command, "--help"], { cwd })
    const [root, validate, providers, token] = await Promise.all([
      help(),
      help("validate"),
      help("providers"),
      help("token")
    ])
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
    expect(token.stdout).toContain("$(tessera token crm)")
    expect(token.stdout).not.toContain("--wizard")
    expect(root.stdout).toContain("--completions bash|zsh|fish")
    expect(root.stdout).toContain("source <(tessera --completions bash)")
    expect(root.stdout).toContain(
      "$TESSERA_LOG_LEVEL (all, trace, debug, info, warn, error, fatal or none; default warn; any other value is an error)"
    )
  })

  it("--help on the new commands shows their description, flags and examples", async () => {
    const cwd = tempDir()
    const help = (...command: string[]) => tessera([...command, "--help"], { cwd })
    const [request, inspect, cache, init, provider] = await Promise.all([
      help("request"),
      help("inspect"),
      help("cache"),
      help("init"),
      help("new", "provider")
    ])
    for (const r of [request, inspect, cache, init, provider]) {
      expect(r.code).toBe(0)
      expect(r.stdout).toContain("DESCRIPTION")
      expect(r.stdout).toContain("EXAMPLES")
    }
    expect(request.stdout).toContain("tessera request [flags] <connection> <method> <path-or-url>")
    expect(request.stdout).toContain(
      "Exit 0 for a 2xx or 3xx answer (redirects are not followed), 1 for an answer of 400 or more"
    )
    expect(request.stdout).toMatch(/--header, -H 'Name: value' +an extra request header; repeat for more/)
    expect(request.stdout).toContain("the Authorization value is never printed")
    expect(inspect.stdout).toContain("decoded, NOT verified")
    expect(cache.stdout).toMatch(/list +List cached tokens \(no secrets\)/)
    expect(cache.stdout).toMatch(/clear +Remove cached tokens/)
    expect(init.stdout).toContain("--force")
    expect(provider.stdout).toContain("--yes, -y")
    expect(provider.stdout).toContain("--grant")
  })

  it("--completions prints a completion script for bash, zsh and fish", async () => {
    const cwd = tempDir()
    const [bash, zsh, fish] = await Promise.all(
      ["bash", "zsh", "fish"].map((shell) => tessera(["--completions", shell], { cwd }))
    )
    for (const r of [bash!, zsh!, fish!]) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.split("\n").length).toBeGreaterThan(20)
      for (const sub of ["request", "inspect", "cache", "init", "new"]) expect(r.stdout).toContain(sub)
    }
    expect(bash!.stdout).toContain("complete -F")
    expect(zsh!.stdout.split("\n")[0]).toBe("#compdef tessera")
    expect(fish!.stdout).toContain("complete -c tessera")
  })

  it("--version prints the package version", async () => {
    const r = await tessera(["--version"], { cwd: tempDir() })
    expect(r.code).toBe(0)
    expect(r.stdout.trim()).toBe(`tessera v${version}`)
  })

  it("a command-line mistake exits 2 with the error alone on stderr", async () => {
    const cwd = tempDir()
    const [unknown, json] = await Promise.all([
      tessera(["validate", "--frobnicate"], { cwd }),
      tessera(["token", "--json"], { cwd })
    ])
    expect(unknown.code).toBe(2)
    expect(unknown.stdout).toBe("")
    expect(unknown.stderr).toBe(
      'tessera: Unrecognized flag: --frobnicate in command tessera validate\nRun "tessera validate --help" for usage.\n'
    )
    expect(json.code).toBe(2)
    expect(JSON.parse(json.stderr)).toEqual({
      error: { code: "MissingArgument", message: "Missing required argument: connection" }
    })
  })
})

describe.concurrent("colors", () => {
  // validate colors its summary and inspect its headings, but only on a terminal and without NO_COLOR.
  const setup = () => {
    const cwd = tempDir()
    write(
      `${cwd}/tessera.yaml`,
      'connections:\n  c:\n    provider: cube\n    inputs: { client_id: a, client_secret: "${env:S}", tenant: t }\n'
    )
    return { cwd, env: { S: "secret-value" } }
  }

  it("none off a terminal, with NO_COLOR unset too", async () => {
    const { cwd, env } = setup()
    const r = await tessera(["validate"], { cwd, env: { ...env, NO_COLOR: "" } })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe("✓ 11 manifests, 1 config: no errors\n")
    expect(r.stdout + r.stderr).not.toContain("\x1b[")
  })

  it.skipIf(!hasScript)("on a terminal, unless NO_COLOR is set", async () => {
    const { cwd, env } = setup()
    const [colored, plain] = await Promise.all([
      tesseraTty(["validate"], { cwd, env: { ...env, NO_COLOR: "" } }),
      tesseraTty(["inspect", "c"], { cwd, env: { ...env, NO_COLOR: "1" } })
    ])
    expect(colored.code, colored.output).toBe(0)
    expect(colored.output).toContain("\x1b[32m✓ 11 manifests, 1 config: no errors\x1b[39m")
    expect(plain.code, plain.output).toBe(0)
    expect(plain.output).toContain("Inputs")
    expect(plain.output).not.toContain("\x1b[")
  })
})
