/** prepack: copies the bundled manifests (with their fixtures) and the JSON Schemas into the package, so a
 *  published @tessera/engine finds them beside dist/ (see src/assets.ts). postpack removes the copies again, so
 *  they never shadow the repository's own providers/ during development. */
import { cpSync, rmSync } from "node:fs"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../", import.meta.url))
for (const name of ["providers", "schemas"]) {
  rmSync(`${root}${name}`, { recursive: true, force: true })
  cpSync(`${root}../../${name}`, `${root}${name}`, { recursive: true })
}
