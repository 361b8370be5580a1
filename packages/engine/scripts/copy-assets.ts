/** prepack: copies the bundled manifests (with their fixtures) and the JSON Schemas into a package, so a published
 *  @tessera/engine (or the bundled @tessera/cli) finds them beside its dist/ (see src/assets.ts). postpack
 *  (`--remove`) deletes the copies again, so they never shadow the repository's own providers/ during development.
 *
 *  `node scripts/copy-assets.ts [package dir] [--remove]`; the package dir defaults to the engine's. Each copy is
 *  built in a temporary directory and renamed into place, and removed the same way, so a test running meanwhile
 *  from the sources sees either no copy or a complete one, never a half-written directory. */
import { cpSync, renameSync, rmSync } from "node:fs"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"

const args = process.argv.slice(2)
const remove = args.includes("--remove")
const target = resolve(args.find((a) => !a.startsWith("--")) ?? fileURLToPath(new URL("../", import.meta.url)))
const repo = fileURLToPath(new URL("../../../", import.meta.url))

for (const name of ["providers", "schemas"]) {
  const dest = resolve(target, name)
  const aside = `${dest}.${process.pid}.tmp`
  rmSync(aside, { recursive: true, force: true })
  if (!remove) cpSync(resolve(repo, name), aside, { recursive: true })
  try {
    renameSync(dest, `${aside}.old`)
  } catch {
    // no copy yet
  }
  if (!remove) renameSync(aside, dest)
  rmSync(`${aside}.old`, { recursive: true, force: true })
}
