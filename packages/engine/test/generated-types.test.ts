/** The Manifest and Config types are generated from the JSON Schemas; this fails when they drift apart. */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { generate } from "../scripts/gen-types.ts"

describe("generated types", () => {
  it("src/generated/ matches what the schemas generate (run `pnpm gen:types` after a schema change)", async () => {
    const files = await generate()
    expect(Object.keys(files).sort()).toEqual(["config.ts", "provider.ts"])
    for (const [file, text] of Object.entries(files)) {
      expect(readFileSync(new URL(`../src/generated/${file}`, import.meta.url), "utf8"), file).toBe(text)
    }
  })
})
