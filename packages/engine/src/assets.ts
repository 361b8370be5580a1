/** Where the engine's data lives: the bundled provider manifests and the JSON Schemas. A published package carries
 *  copies in its own root (`prepack` copies them there); in this repository they are at the repository root. Both
 *  src/ and dist/ sit one level below the package root, so one rule serves the sources and the build. */
import { existsSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

/** The first of `<packageRoot>/<name>` and `<packageRoot>/../../<name>` that exists (the package copy wins). */
export const resolveDir = (packageRoot: string, name: "providers" | "schemas"): string => {
  const candidates = [join(packageRoot, name), join(packageRoot, "..", "..", name)]
  return (
    candidates.find((d) => existsSync(join(d, name === "schemas" ? "provider.schema.json" : "cube.yaml"))) ??
    candidates[0]!
  )
}

export const packageRoot: string = fileURLToPath(new URL("..", import.meta.url))
export const providersDir: string = process.env["TESSERA_BUNDLED_PROVIDERS"] ?? resolveDir(packageRoot, "providers")
export const schemasDir: string = resolveDir(packageRoot, "schemas")
