/** `tessera init`: a starter tessera.yaml that passes validate as written and once an example is uncommented,
 *  the right schema line inside and outside the repository, and no overwrite without --force. */
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { schemaRef } from "../src/commands/init.ts"
import { cleanup, tempDir, tessera } from "./services/cli.ts"

/** Every bundled manifest id: providers/*.yaml. */
const BUNDLED = readdirSync(new URL("../../../providers/", import.meta.url))
  .filter((f) => f.endsWith(".yaml"))
  .map((f) => f.replace(/\.yaml$/, ""))

afterAll(cleanup)

const repo = fileURLToPath(new URL("../../../", import.meta.url))

describe.concurrent("tessera init", () => {
  it("writes a starter that validates, then refuses to overwrite it without --force", async () => {
    const cwd = tempDir()
    const first = await tessera(["init"], { cwd })
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout.split("\n")[0]).toBe(
      `Wrote tessera.yaml with ${BUNDLED.length} example connections (commented out).`
    )
    const text = readFileSync(join(cwd, "tessera.yaml"), "utf8")
    // Outside the repository the schema is referenced by its $id.
    expect(text.split("\n")[0]).toBe("# yaml-language-server: $schema=https://tessera.dev/schemas/config.schema.json")
    expect(text).toMatch(/^connections: \{\}$/m)
    for (const id of BUNDLED) expect(text).toContain(`#  ${id}:\n#    provider: ${id}\n`)
    expect(text).toContain('#      client_secret: "${env:DVINCI_CLIENT_SECRET}"')
    expect(text).toContain('#      api_key: "${env:CRM_COM_API_KEY}"')
    expect(text).not.toMatch(/^[^#\n].*\$\{env:/m) // every secret reference is commented out

    // The d.vinci example, uncommented as an editor would, with its variable set.
    const lines = text.split("\n")
    const start = lines.indexOf("#  dvinci:")
    const dvinci = lines
      .slice(start, lines.indexOf("", start))
      .map((l) => l.slice(1))
      .join("\n")
    expect(dvinci).toMatch(/^ {2}dvinci:\n {4}provider: dvinci\n {4}inputs:\n {6}base_url: /)
    const edited = join(cwd, "edited.yaml")
    writeFileSync(edited, text.replace("connections: {}", `connections:\n${dvinci}`))
    const [valid, again, editedValid] = await Promise.all([
      tessera(["validate"], { cwd }),
      tessera(["init", "--json"], { cwd }),
      tessera(["validate", "--config", edited], { cwd, env: { DVINCI_CLIENT_SECRET: "s3cret" } })
    ])
    expect(valid.code, valid.stdout).toBe(0)
    expect(valid.stdout).toBe(`✓ ${BUNDLED.length} manifests, 1 config: no errors\n`)
    expect(editedValid.code, editedValid.stdout).toBe(0)
    expect(again.code).toBe(2)
    expect(JSON.parse(again.stderr)).toEqual({
      error: {
        code: "FileExists",
        message: `${join(cwd, "tessera.yaml")} already exists (pass --force to overwrite it)`
      }
    })
    expect(readFileSync(join(cwd, "tessera.yaml"), "utf8")).toBe(text)

    writeFileSync(join(cwd, "tessera.yaml"), "connections: {}\n")
    const forced = await tessera(["init", "--force"], { cwd })
    expect(forced.code, forced.stderr).toBe(0)
    expect(readFileSync(join(cwd, "tessera.yaml"), "utf8")).toBe(text)
  })

  it("inside the repository, points at schemas/*.schema.json by a relative path", () => {
    expect(schemaRef(join(repo, "tessera.yaml"), "config")).toBe("./schemas/config.schema.json")
    expect(schemaRef(join(repo, "examples", "tessera.yaml"), "config")).toBe("../schemas/config.schema.json")
    expect(schemaRef(join(repo, "providers", "acme.yaml"), "provider")).toBe("../schemas/provider.schema.json")
    expect(schemaRef("/elsewhere/tessera.yaml", "config")).toBe("https://tessera.dev/schemas/config.schema.json")
  })
})
