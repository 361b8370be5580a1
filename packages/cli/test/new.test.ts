/** `tessera new provider`: scaffolds that pass `tessera validate` and replay their own fixture with
 *  `--fixtures`, from flags (--yes, and without a terminal) or from prompts on a terminal; no overwrite without
 *  --force; a bad id or token URL exits 2. */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, hasScript, tempDir, tessera, tesseraTty } from "./services/cli.ts"

afterAll(cleanup)

describe.concurrent("tessera new provider", () => {
  it("scaffolds with the defaults (no terminal, no prompt): the manifest validates and its fixture replays clean", async () => {
    const cwd = tempDir()
    const r = await tessera(["new", "provider", "acme-hr"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe(
      [
        "Created providers/acme-hr.yaml",
        "Created providers/fixtures/acme-hr/success.json (synthetic: replace it with a recorded exchange)",
        "Next:",
        "  tessera validate providers/acme-hr.yaml --fixtures",
        '  add "providers: [./providers]" to tessera.yaml, then a connection with provider: acme-hr',
        ""
      ].join("\n")
    )
    const manifest = readFileSync(join(cwd, "providers/acme-hr.yaml"), "utf8")
    expect(manifest.split("\n").slice(0, 3)).toEqual([
      "# yaml-language-server: $schema=https://tessera.dev/schemas/provider.schema.json",
      "id: acme-hr",
      "name: Acme Hr"
    ])
    expect(manifest).toContain("grant_type: client_credentials")
    expect(manifest).toContain("client_auth: { method: client_secret_basic }")
    const fixture = JSON.parse(readFileSync(join(cwd, "providers/fixtures/acme-hr/success.json"), "utf8")) as Record<
      string,
      any
    >
    expect(fixture).toMatchObject({
      format: "tessera-fixture/1",
      provider: "acme-hr",
      flow: "acquire",
      request: { method: "POST", form: { grant_type: "client_credentials" } }
    })
    expect(fixture["request"].headers.authorization).toMatch(/^Basic /)

    const [checked, again, badId, badUrl] = await Promise.all([
      tessera(["validate", "providers/acme-hr.yaml", "--fixtures"], { cwd }),
      tessera(["new", "provider", "acme-hr", "--yes"], { cwd }),
      tessera(["new", "provider", "Acme_HR", "--yes", "--json"], { cwd }),
      tessera(["new", "provider", "acme-x", "--token-url", "http://auth.acme.example/token", "--yes"], { cwd })
    ])
    expect(checked.code, checked.stdout).toBe(0)
    // Its own fixture only, not the bundled providers' (no warning either).
    expect(checked.stdout).toBe("✓ 1 manifest, 1 fixture: no errors\n")
    expect(again.code).toBe(2)
    expect(again.stderr).toBe("tessera: providers/acme-hr.yaml already exists (pass --force to overwrite it)\n")
    expect(badId.code).toBe(2)
    expect(JSON.parse(badId.stderr)).toMatchObject({
      error: { code: "InvalidArgument", message: expect.stringContaining("Acme_HR is not a provider id") }
    })
    expect(badUrl.code).toBe(2)
    expect(badUrl.stderr).toMatch(/^tessera: --token-url http:\/\/auth\.acme\.example\/token uses plain http:\/\//)
  })

  it("scaffolds from flags: password grant, JSON, body client auth, an envelope, a token URL, another directory", async () => {
    const cwd = tempDir()
    const r = await tessera(
      [
        "new",
        "provider",
        "acme-crm",
        "--name",
        "ACME CRM",
        "--grant",
        "password",
        "--encoding",
        "json",
        "--client-auth",
        "client_secret_post",
        "--envelope",
        "data.auth",
        "--token-url",
        "https://auth.acme.example/token",
        "--dir",
        "mine",
        "--yes"
      ],
      { cwd }
    )
    expect(r.code, r.stderr).toBe(0)
    const manifest = readFileSync(join(cwd, "mine/acme-crm.yaml"), "utf8")
    expect(manifest).toContain("name: ACME CRM")
    expect(manifest).toContain(
      'token_url: { type: url, title: Token endpoint, default: "https://auth.acme.example/token", required: false }'
    )
    expect(manifest).toMatch(
      /grant_type: password\n {4}encoding: json\n {4}client_auth: \{ method: client_secret_post \}/
    )
    expect(manifest).toContain("grant_type: refresh_token")
    expect(manifest).toContain("envelope: data.auth")
    const fixture = JSON.parse(readFileSync(join(cwd, "mine/fixtures/acme-crm/success.json"), "utf8")) as Record<
      string,
      any
    >
    expect(fixture["request"]).toMatchObject({
      url: "https://auth.acme.example/token",
      headers: { authorization: null, "content-type": "application/json" }
    })
    expect(fixture["request"].json).toMatchObject({
      grant_type: "password",
      client_id: "acme-crm-client-id",
      username: "acme-crm-user"
    })
    expect(fixture["response"].body.data.auth).toMatchObject({
      access_token: "acme-crm-access-token",
      refresh_token: "acme-crm-refresh-token"
    })
    // The directory, as a config would list it: validate sees the manifest and replays its fixture.
    const checked = await tessera(["validate", "mine", "--fixtures", "--json"], { cwd })
    expect(checked.code, checked.stdout).toBe(0)
    const out = JSON.parse(checked.stdout) as {
      ok: boolean
      files: Array<{ file: string; kind: string }>
      problems: unknown[]
    }
    expect(out.problems).toEqual([])
    expect(out.files).toContainEqual({
      file: "mine/fixtures/acme-crm/success.json",
      kind: "fixture",
      errors: 0,
      warnings: 0
    })
  })

  it.skipIf(!hasScript)("on a terminal, asks for what the flags leave open", async () => {
    const cwd = tempDir()
    const down = "\x1b[B"
    const r = await tesseraTty(["new", "provider", "acme-erp", "--encoding", "json"], {
      cwd,
      env: { NO_COLOR: "1" },
      answers: [
        ["Provider name", "\x7f\x7f\x7fERP\r"], // the default "Acme Erp", edited to "Acme ERP"
        ["Grant", `${down}\r`], // password
        ["Token endpoint URL", "https://erp.acme.example/oauth/token\r"],
        ["Client authentication", "\r"], // client_secret_basic
        ["Path to the token fields", "result\r"]
      ]
    })
    expect(r.code, r.output).toBe(0)
    expect(r.output).not.toContain("Token request encoding") // given by a flag: not asked
    expect(r.output).toContain("Created providers/acme-erp.yaml")
    const manifest = readFileSync(join(cwd, "providers/acme-erp.yaml"), "utf8")
    expect(manifest).toContain("name: Acme ERP")
    expect(manifest).toContain("grant_type: password")
    expect(manifest).toContain('default: "https://erp.acme.example/oauth/token"')
    expect(manifest).toContain("encoding: json")
    expect(manifest).toContain("client_auth: { method: client_secret_basic }")
    expect(manifest).toContain("envelope: result")
    expect(r.output).not.toContain("\x1b[3") // NO_COLOR: the prompts draw without colors
  })
})
