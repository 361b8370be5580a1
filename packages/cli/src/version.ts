/** The version of @tessera/cli, read from its package.json (beside src/ in the repository, beside dist/ once built). */
import { readFileSync } from "node:fs"

export const version: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version
