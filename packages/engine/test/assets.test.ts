/** The engine finds its manifests and schemas both in this repository and in a published package's own root. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "vitest"
import { fromSources, providersDir, resolveDir, schemasDir } from "../src/assets.ts"

describe("assets", () => {
  it("in this repository, resolves the repository's providers/ and schemas/", () => {
    expect(providersDir).toMatch(/providers$/)
    expect(schemasDir).toMatch(/schemas$/)
    expect(providersDir).not.toContain(join("packages", "engine", "providers"))
  })

  it("a package's own copies win over the repository's in built code (a published package)", () => {
    const repo = mkdtempSync(join(tmpdir(), "tessera-assets-"))
    try {
      const pkg = join(repo, "node_modules", "@tessera", "engine")
      mkdirSync(join(pkg, "schemas"), { recursive: true })
      mkdirSync(join(pkg, "providers"), { recursive: true })
      // Without the files inside, a directory is not taken for the real thing.
      expect(resolveDir(pkg, "schemas", { fromSources: false })).toBe(join(pkg, "schemas"))
      writeFileSync(join(pkg, "schemas", "provider.schema.json"), "{}")
      writeFileSync(join(pkg, "providers", "cube.yaml"), "id: cube")
      expect(resolveDir(pkg, "schemas", { fromSources: false })).toBe(join(pkg, "schemas"))
      expect(resolveDir(pkg, "providers", { fromSources: false })).toBe(join(pkg, "providers"))
      rmSync(join(pkg, "providers"), { recursive: true })
      mkdirSync(join(repo, "node_modules", "providers"), { recursive: true })
      writeFileSync(join(repo, "node_modules", "providers", "cube.yaml"), "id: cube")
      expect(resolveDir(pkg, "providers", { fromSources: false })).toBe(join(pkg, "..", "..", "providers"))
    } finally {
      rmSync(repo, { recursive: true, force: true })
    }
  })

  it("the sources prefer the repository's copies, so one left behind by an interrupted pnpm pack does not shadow them", () => {
    const repo = mkdtempSync(join(tmpdir(), "tessera-assets-"))
    try {
      const pkg = join(repo, "packages", "engine")
      for (const dir of [join(pkg, "providers"), join(repo, "providers")]) {
        mkdirSync(dir, { recursive: true })
        writeFileSync(join(dir, "cube.yaml"), "id: cube")
      }
      expect(fromSources).toBe(true)
      expect(resolveDir(pkg, "providers")).toBe(join(pkg, "..", "..", "providers"))
      expect(resolveDir(pkg, "providers", { fromSources: false })).toBe(join(pkg, "providers"))
    } finally {
      rmSync(repo, { recursive: true, force: true })
    }
  })
})
