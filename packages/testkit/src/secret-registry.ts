/** The registry of the run-wide secret-leak scan (scripts/secret-scan.mjs): a test that makes up secrets of its
 *  own registers them here, and the scan searches everything the run printed for each of them, in every encoding
 *  (raw, base64, URL and form encoding, JSON escaping). One file per caller under ./test-results/secrets/, one
 *  secret per line; the scan reads lines of 8 characters or more. */
import { appendFileSync, mkdirSync } from "node:fs"
import { join } from "node:path"

/** Where registered secrets go: test-results/secrets under the directory the test run started in. */
export const registryDir = (): string => join(process.cwd(), "test-results", "secrets")

/** Adds `secrets` to the registry file `name` (a test file's name, say). Values with a line break cannot be
 *  registered one per line and are left out. */
export function registerSecrets(name: string, secrets: Iterable<string>): void {
  const lines = [...secrets].filter((s) => s !== "" && !/[\r\n]/.test(s))
  if (lines.length === 0) return
  mkdirSync(registryDir(), { recursive: true })
  appendFileSync(join(registryDir(), `${name.replace(/[^\w.-]/g, "_")}.txt`), lines.map((l) => `${l}\n`).join(""))
}
