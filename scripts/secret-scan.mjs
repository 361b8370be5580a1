// Scans everything a test run printed (test-results/output.log, the vitest JSON report) for every secret the
// sandboxes accept or the tests register in test-results/secrets/*.txt (one per line), raw, base64 and URL-encoded.
// Prints the hits (masked) and exits 1 when there is any.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { DEMO_VALUES } from "../packages/testkit/src/demo.ts"

const secretKeys = /secret|password|api_key|authentication_code|pass_code|jwt/
const secrets = new Set()
for (const values of Object.values(DEMO_VALUES))
  for (const [k, v] of Object.entries(values)) if (secretKeys.test(k) && v.length >= 6) secrets.add(v)
if (existsSync("test-results/secrets")) {
  for (const f of readdirSync("test-results/secrets"))
    for (const line of readFileSync(`test-results/secrets/${f}`, "utf8").split("\n"))
      if (line.length >= 8) secrets.add(line)
}
const haystack = ["test-results/output.log", "test-results/vitest.json"]
  .filter(existsSync)
  .map((f) => readFileSync(f, "utf8"))
  .join("\n")
const forms = (s) =>
  [s, Buffer.from(s).toString("base64"), Buffer.from(s).toString("base64url"), encodeURIComponent(s)].filter(
    (f) => f.length >= 6
  )
const hits = [...secrets].filter((s) => forms(s).some((f) => haystack.includes(f)))
console.log(
  `secret-leak scan: ${secrets.size} secrets, ${haystack.length} bytes of output, ${hits.length} hits${hits.length ? `: ${hits.map((s) => `${s.slice(0, 3)}…`).join(", ")}` : ""}`
)
process.exit(hits.length ? 1 : 0)
