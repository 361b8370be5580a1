/** The full CLI (every command module, `tessera serve`'s too) does not load Node's bundled undici: an ESM import of
 *  node:http would (its lazy WebSocket getters), about 10 MB of RSS that no command uses (src/node-http.ts). */
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { cleanup, tempDir, tessera } from "./services/cli.ts"

const recorder = fileURLToPath(new URL("./services/builtins-recorder.mjs", import.meta.url))
afterAll(() => cleanup())

describe("the full CLI's footprint", () => {
  it("loads node:http without Node's bundled undici", async () => {
    const cwd = tempDir()
    const file = join(cwd, "builtins.txt")
    const r = await tessera(["providers"], {
      cwd,
      nodeArgs: ["--import", pathToFileURL(recorder).href],
      env: { TESSERA_TEST_BUILTINS: file }
    })
    expect(r.code, r.stderr).toBe(0)
    const builtins = readFileSync(file, "utf8").split("\n")
    expect(builtins).toContain("NativeModule http")
    expect(builtins).not.toContain("NativeModule internal/deps/undici/undici")
  })
})
