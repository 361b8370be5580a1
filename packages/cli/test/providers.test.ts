/** `tessera providers`: the bundled providers without a config, plus the config's own provider directories. */
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, tempDir, tessera, write } from "./services/cli.ts"

import { readdirSync } from "node:fs"

/** Every bundled manifest id: providers/*.yaml. */
const BUNDLED = readdirSync(new URL("../../../providers/", import.meta.url))
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => f.replace(/\.yaml$/, ""))

afterAll(cleanup)

interface Input {
  name: string
  type: string
  secret: boolean
  default?: string
}
interface Entry {
  id: string
  name: string
  source: string
  required: Input[]
  optional: Input[]
  connections: string[]
}

describe.concurrent("tessera providers", () => {
  it("lists every bundled provider in a table, marking secret inputs", async () => {
    const r = await tessera(["providers"], { cwd: tempDir() })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.split("\n")
    expect(lines[0]).toMatch(/^ID +NAME +SOURCE +REQUIRED INPUTS +OPTIONAL INPUTS$/)
    for (const id of BUNDLED) expect(lines.some((l) => l.startsWith(`${id} `) && l.includes("bundled"))).toBe(true)
    expect(lines.find((l) => l.startsWith("cube "))).toMatch(
      /client_id, client_secret\*, tenant +scope, resource, acr_values, token_url$/
    )
    expect(r.stdout).toContain("* secret input")
  })

  it("--json lists bundled and configured providers with their inputs", async () => {
    const cwd = tempDir()
    write(
      `${cwd}/tessera.yaml`,
      "providers: [./mine]\nconnections:\n  acme-prod:\n    provider: acme\n    inputs: { api_key: k }\n"
    )
    write(
      `${cwd}/mine/acme.yaml`,
      `id: acme
name: Acme
inputs:
  api_key: { secret: true }
  region: { default: eu, enum: [eu, us] }
  token_url: { type: url, default: "https://{{ inputs.region }}.acme.example/token" }
flows:
  acquire:
    url: "{{ inputs.token_url }}"
    grant_type: client_credentials
    client_auth: { method: client_secret_basic, id: "{{ inputs.api_key }}", secret: "" }
`
    )
    const r = await tessera(["providers", "--json"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const list = (JSON.parse(r.stdout) as { providers: Entry[] }).providers
    expect(list.map((p) => p.id)).toEqual([...BUNDLED, "acme"].sort())
    for (const id of BUNDLED) expect(list.find((p) => p.id === id)?.source).toBe("bundled")
    const cube = list.find((p) => p.id === "cube")!
    expect(cube.source).toBe("bundled")
    expect(cube.required).toEqual([
      { name: "client_id", type: "string", secret: false, title: "Client ID" },
      { name: "client_secret", type: "string", secret: true, title: "Client secret" },
      { name: "tenant", type: "string", secret: false, title: "Tenant" }
    ])
    expect(cube.optional.find((i) => i.name === "scope")).toEqual({
      name: "scope",
      type: "string",
      secret: false,
      default: "profile"
    })

    const acme = list.find((p) => p.id === "acme")!
    expect(acme).toMatchObject({ name: "Acme", source: "mine/acme.yaml", connections: ["acme-prod"] })
    expect(acme.required).toEqual([{ name: "api_key", type: "string", secret: true }])
    expect(acme.optional.map((i) => i.name)).toEqual(["region", "token_url"])
  })
})
