/** Every module of the server loads first on its own: an import cycle that leaves a binding undefined while a
 *  module runs (as `routes.ts` and `connection-routes.ts` once did, through `access.ts`) fails here, whichever
 *  module a program or a test happens to import first. */
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it, vi } from "vitest"

const dir = fileURLToPath(new URL("../src/", import.meta.url))
const modules = readdirSync(dir).filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts") && f !== "main.ts")

describe("module load order", () => {
  it.each(modules)("%s loads first", async (file) => {
    vi.resetModules()
    const m: Record<string, unknown> = await import(`../src/${file}`)
    expect(Object.keys(m).length).toBeGreaterThan(0)
  })
})
