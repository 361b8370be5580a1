/** Where the engine's data lives: the bundled provider manifests and the JSON Schemas. A published package carries
 *  copies in its own root (`prepack` copies them there); in this repository they are at the repository root. Both
 *  src/ and dist/ (and the CLI's bundle in its dist/) sit one level below the package root, so one rule serves the
 *  sources and the build: built code prefers the package's copy, the sources prefer the repository's, so that a copy
 *  left behind by an interrupted `pnpm pack` never shadows the manifests being edited. */
import { existsSync } from "node:fs"
import { join, sep } from "node:path"
import { fileURLToPath } from "node:url"

const here = fileURLToPath(import.meta.url)
/** This module runs from the TypeScript sources (a checkout), not from built JavaScript. */
export const fromSources: boolean = here.endsWith(`${sep}src${sep}assets.ts`)

/** The first of `<packageRoot>/<name>` and `<packageRoot>/../../<name>` that exists, in that order for built code and
 *  the other way round for the sources. */
export const resolveDir = (
  packageRoot: string,
  name: "providers" | "schemas",
  opts: { readonly fromSources?: boolean } = {}
): string => {
  const own = join(packageRoot, name),
    repo = join(packageRoot, "..", "..", name)
  const candidates = (opts.fromSources ?? fromSources) ? [repo, own] : [own, repo]
  return candidates.find((d) => existsSync(join(d, name === "schemas" ? "provider.schema.json" : "cube.yaml"))) ?? own
}

export const packageRoot: string = fileURLToPath(new URL("..", import.meta.url))
export const providersDir: string = process.env["TESSERA_BUNDLED_PROVIDERS"] ?? resolveDir(packageRoot, "providers")
export const schemasDir: string = resolveDir(packageRoot, "schemas")
