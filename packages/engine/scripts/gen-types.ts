/** Generates the Manifest and Config TypeScript types from the JSON Schemas, so the schemas stay the one source.
 *  `node scripts/gen-types.ts` writes src/generated/; `--check` exits 1 when the committed files are stale. */
import { readFileSync, writeFileSync } from "node:fs"
import { compile, type JSONSchema } from "json-schema-to-typescript"

const root = new URL("../../../schemas/", import.meta.url)
const out = new URL("../src/generated/", import.meta.url)
const banner =
  "/* Generated from schemas/*.schema.json by packages/engine/scripts/gen-types.ts. Do not edit: run `pnpm gen:types`. */"

export const generate = async (): Promise<Record<string, string>> => {
  const result: Record<string, string> = {}
  for (const [schemaFile, name] of [
    ["provider.schema.json", "ManifestDocument"],
    ["config.schema.json", "ConfigDocument"]
  ] as const) {
    const schema = JSON.parse(readFileSync(new URL(schemaFile, root), "utf8")) as JSONSchema
    schema.title = name
    result[schemaFile.replace(".schema.json", ".ts")] = await compile(schema, name, {
      bannerComment: banner,
      additionalProperties: false,
      unreachableDefinitions: false,
      strictIndexSignatures: true,
      format: false,
      style: { semi: false }
    })
  }
  return result
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const files = await generate()
  const check = process.argv.includes("--check")
  let stale = false
  for (const [file, text] of Object.entries(files)) {
    const target = new URL(file, out)
    if (check) {
      let current = ""
      try {
        current = readFileSync(target, "utf8")
      } catch {
        /* missing counts as stale */
      }
      if (current !== text) {
        stale = true
        console.error(`stale: src/generated/${file}`)
      }
    } else writeFileSync(target, text)
  }
  if (stale) process.exit(1)
}
