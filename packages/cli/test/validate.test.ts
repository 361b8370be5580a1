/** `tessera validate`: bundled manifests pass, and broken manifests and configs fail with exit 2 and every
 *  problem at its exact file:line:col. */
import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, positionOf, repoProviders, tempDir, tessera, write } from "./services/cli.ts"

afterAll(cleanup)

/** Three semantic mistakes the schema cannot see. */
const semantic = `id: semantic
name: Semantic mistakes
inputs:
  client_id: { title: Client ID }
  client_secret: { secret: true }
flows:
  acquire:
    url: "{{ inputs.token_url }}"
    grant_type: refresh_token
    client_auth: { method: client_secret_post }
apply:
  value: "Token {{ inputs.client_id }}"
`

/** Three mistakes against the JSON Schema. */
const schema = `id: schema
name: Schema mistakes
inputs:
  client_id: { title: Client ID, colour: red }
  token_url: { type: url }
flows:
  acquire:
    url: 42
    grant_type: client_credentials
    encoding: xml
`

/** Valid, with one warning: a fixed token URL. */
const warned = `id: warned
name: Warned
inputs:
  client_id: { title: Client ID }
  client_secret: { secret: true }
flows:
  acquire:
    url: https://auth.example.com/token
    grant_type: client_credentials
`

const at = (text: string, needle: string) => {
  const p = positionOf(text, needle)
  return `${p.line}:${p.col}`
}

describe.concurrent("tessera validate", () => {
  it("reports each manifest mistake at its file:line:col, sorted, and exits 2", async () => {
    const cwd = tempDir()
    write(`${cwd}/bad/semantic.yaml`, semantic)
    write(`${cwd}/bad/schema.yaml`, schema)
    const r = await tessera(["validate", "bad/semantic.yaml", "bad/schema.yaml"], { cwd })
    expect(r.code).toBe(2)
    expect(r.stdout.split("\n").filter((l) => l.includes(": error: "))).toEqual([
      `bad/semantic.yaml:${at(semantic, "{{ inputs.token_url }}")}: error: flows.acquire.url: template uses undeclared input "token_url"`,
      `bad/semantic.yaml:${at(semantic, "refresh_token")}: error: flows.acquire.grant_type: the acquire flow cannot use refresh_token: there is no token yet`,
      `bad/semantic.yaml:${at(semantic, '"Token')}: error: apply.value: apply.value never uses {{ token.access_token }}`,
      `bad/schema.yaml:${at(schema, "colour")}: error: inputs.client_id.colour: unknown key "colour"`,
      `bad/schema.yaml:${at(schema, "42")}: error: flows.acquire.url: expected string, found number 42`,
      `bad/schema.yaml:${at(schema, "xml")}: error: flows.acquire.encoding: string "xml" is not allowed`
    ])
    // The positions above are computed from the text; pin three of them so a drift in both is caught too.
    expect(r.stdout).toContain("bad/semantic.yaml:9:17: error:")
    expect(r.stdout).toContain("bad/schema.yaml:4:34: error:")
    expect(r.stdout).toContain("bad/schema.yaml:8:10: error:")
    expect(r.stdout).toContain("  hint: put it under flows.refresh")
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe("✗ 6 errors in 2 files")
  })

  it("validates the discovered config, with the manifests it loads, and fails on a broken connection", async () => {
    const cwd = tempDir()
    const text = `providers: [./custom]
connections:
  crm:
    provider: cubee
  cube:
    provider: cube
    inputs:
      client_id: abc
      client_secret: \${env:TESSERA_TEST_NEVER_SET}
      tenant: acme
      region: eu
`
    write(`${cwd}/tessera.yaml`, text)
    write(`${cwd}/custom/warned.yaml`, warned)
    const r = await tessera(["validate"], { cwd })
    expect(r.code).toBe(2)
    const lines = r.stdout.split("\n")
    expect(lines).toContain(
      `tessera.yaml:${at(text, "cubee")}: error: connections.crm.provider: unknown provider "cubee"`
    )
    expect(lines).toContain('  hint: did you mean "cube"?')
    expect(lines).toContain(
      `tessera.yaml:${at(text, "${env")}: error: connections.cube.inputs.client_secret: environment variable TESSERA_TEST_NEVER_SET is not set`
    )
    expect(lines).toContain(
      `tessera.yaml:${at(text, "region")}: error: connections.cube.inputs.region: cube has no input "region"`
    )
    expect(lines).toContain(
      `custom/warned.yaml:${at(warned, "https://auth")}: warning: flows.acquire.url: the token URL is fixed, so connections cannot point it at a sandbox or regional host`
    )
    expect(lines.at(-2)).toBe("✗ 3 errors, 1 warning in 2 files")
  })

  it("passes with warnings only, and a YAML syntax error is located too", async () => {
    const cwd = tempDir()
    write(`${cwd}/warned.yaml`, warned)
    write(`${cwd}/tessera.yaml`, "connections:\n  a:\n    provider: cube\n   inputs: {}\n")
    const [ok, syntax] = await Promise.all([
      tessera(["validate", "warned.yaml"], { cwd }),
      tessera(["validate", "tessera.yaml"], { cwd })
    ])
    expect(ok.code).toBe(0)
    expect(ok.stdout.trimEnd().split("\n").at(-1)).toBe("✓ 1 manifest: no errors, 1 warning")
    expect(syntax.code).toBe(2)
    expect(syntax.stdout).toMatch(/^tessera\.yaml:4:\d+: error: /m)
  })

  it("a config nested 3000 deep: the nesting limit at its file:line:col, exit 2 (tessera token and validate)", async () => {
    const cwd = tempDir()
    write(
      `${cwd}/tessera.yaml`,
      `connections:\n  a:\n    provider: oauth2\n    inputs:\n      x: ${"[".repeat(3000)}${"]".repeat(3000)}\n`
    )
    const [token, validate] = await Promise.all([tessera(["token", "a"], { cwd }), tessera(["validate"], { cwd })])
    expect(token.code, token.stderr).toBe(2)
    expect(token.stderr).toContain("tessera.yaml:5:70: error: nested more than 64 levels deep")
    expect(validate.code).toBe(2)
    expect(validate.stdout).toContain("tessera.yaml:5:70: error: nested more than 64 levels deep")
    expect(token.stderr + validate.stdout).not.toContain("call stack")
  })

  it("--json prints {ok, files, problems}", async () => {
    const cwd = tempDir()
    write(`${cwd}/m/schema.yaml`, schema)
    write(`${cwd}/m/warned.yaml`, warned)
    const r = await tessera(["validate", "m", "--json"], { cwd })
    expect(r.code).toBe(2)
    const out = JSON.parse(r.stdout) as { ok: boolean; files: unknown[]; problems: Array<Record<string, unknown>> }
    expect(Object.keys(out)).toEqual(["ok", "files", "problems"])
    expect(out.ok).toBe(false)
    expect(out.files).toEqual([
      { file: "m/schema.yaml", kind: "manifest", errors: 3, warnings: 0 },
      { file: "m/warned.yaml", kind: "manifest", errors: 0, warnings: 1 }
    ])
    expect(out.problems).toHaveLength(4)
    for (const p of out.problems)
      expect(Object.keys(p)).toEqual(["file", "line", "col", "severity", "path", "message", "hint"])
    expect(out.problems[0]).toEqual({
      file: "m/schema.yaml",
      line: 4,
      col: 34,
      severity: "error",
      path: "inputs.client_id.colour",
      message: 'unknown key "colour"',
      hint: "allowed keys: title, description, type, required, secret, default, enum, pattern, example"
    })
    expect(out.problems[3]).toMatchObject({ file: "m/warned.yaml", severity: "warning", path: "flows.acquire.url" })
  })

  it("passes the bundled manifests and their recorded exchanges (--fixtures); a drifted fixture is an error at its file", async () => {
    const recorded = readdirSync(join(repoProviders, "fixtures"), { recursive: true }).filter((f) =>
      String(f).endsWith(".json")
    ).length
    // A copy of the bundled providers (TESSERA_BUNDLED_PROVIDERS points the engine at it) with one fixture changed.
    const cwd = tempDir()
    cpSync(repoProviders, join(cwd, "providers"), { recursive: true })
    const file = join(cwd, "providers/fixtures/cube/success.json")
    const fixture = JSON.parse(readFileSync(file, "utf8")) as {
      request: { form: Record<string, string> }
      expect: Record<string, unknown>
    }
    fixture.request.form["scope"] = "openid"
    fixture.expect["lifetime_seconds"] = 3600
    writeFileSync(file, JSON.stringify(fixture, null, 2))
    const [clean, drifted] = await Promise.all([
      tessera(["validate", repoProviders, "--fixtures"], { cwd: tempDir() }),
      tessera(["validate", "--fixtures"], { cwd, env: { TESSERA_BUNDLED_PROVIDERS: join(cwd, "providers") } })
    ])
    expect(clean.code, clean.stdout).toBe(0)
    expect(clean.stdout).toBe(`✓ 11 manifests, ${recorded} fixtures: no errors\n`)
    expect(drifted.code).toBe(2)
    expect(drifted.stdout.split("\n").filter((l) => l.includes(": error: "))).toEqual([
      'providers/fixtures/cube/success.json:1:1: error: request.form.scope: expected "openid", got "profile"',
      "providers/fixtures/cube/success.json:1:1: error: expect.lifetime_seconds: expected 3600, got 86400"
    ])
    expect(drifted.stdout.trimEnd().split("\n").at(-1)).toBe("✗ 2 errors in 1 file")
  })

  it("--fixtures on manifest files replays only those manifests' fixtures", async () => {
    // A copy of the bundled providers where another provider's fixture drifted: checking cube must not report it.
    const cwd = tempDir()
    cpSync(repoProviders, join(cwd, "providers"), { recursive: true })
    const file = join(cwd, "providers/fixtures/dvinci/success.json")
    const fixture = JSON.parse(readFileSync(file, "utf8")) as { expect: Record<string, unknown> }
    fixture.expect["lifetime_seconds"] = 1
    writeFileSync(file, JSON.stringify(fixture, null, 2))
    const env = { TESSERA_BUNDLED_PROVIDERS: join(cwd, "providers") }
    const count = (id: string) => readdirSync(join(repoProviders, "fixtures", id)).length
    const [cube, two, json] = await Promise.all([
      tessera(["validate", "providers/cube.yaml", "--fixtures"], { cwd, env }),
      tessera(["validate", "providers/cube.yaml", "providers/oauth2.yaml", "--fixtures"], { cwd, env }),
      tessera(["validate", "providers/cube.yaml", "--fixtures", "--json"], { cwd, env })
    ])
    expect(cube).toMatchObject({ code: 0, stdout: `✓ 1 manifest, ${count("cube")} fixtures: no errors\n` })
    expect(two).toMatchObject({
      code: 0,
      stdout: `✓ 2 manifests, ${count("cube") + count("oauth2")} fixtures: no errors\n`
    })
    const files = (JSON.parse(json.stdout) as { files: Array<{ file: string; kind: string }> }).files
    expect(files.filter((f) => f.kind === "fixture").map((f) => f.file)).toEqual(
      readdirSync(join(repoProviders, "fixtures", "cube"))
        .sort()
        .map((n) => `providers/fixtures/cube/${n}`)
    )
    // The drift is still found where it belongs.
    const dvinci = await tessera(["validate", "providers/dvinci.yaml", "--fixtures"], { cwd, env })
    expect(dvinci.code).toBe(2)
    expect(dvinci.stdout).toContain("providers/fixtures/dvinci/success.json:1:1: error: expect.lifetime_seconds")
  })
})
