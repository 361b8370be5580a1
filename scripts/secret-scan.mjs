// Scans everything a test run printed (test-results/output.log, the vitest JSON report) for every secret the
// sandboxes accept and every secret tests register in test-results/secrets/*.txt (one per line, see
// packages/testkit/src/secret-registry.ts), in each form a provider echoing a request could show it: raw, base64
// (standard, unpadded, url-safe), percent-encoded (upper and lower-case hex), form-encoded and JSON-escaped. The
// Basic credentials `id:secret` of the sandboxes' clients are secrets too, so their base64 is searched for.
// The forms are computed here with Node's own encoders, independently of the code under test. Prints the hits
// (masked) and exits 1 when there is any.
import { existsSync, readdirSync, readFileSync } from "node:fs"
import { DEMO_VALUES } from "../packages/testkit/src/demo.ts"

const secretKeys = /secret|password|api_key|authentication_code|pass_code|jwt/
const form = (s) => new URLSearchParams([["", s]]).toString().slice(1)
const secrets = new Set()
for (const values of Object.values(DEMO_VALUES)) {
  for (const [k, v] of Object.entries(values)) if (secretKeys.test(k) && v.length >= 6) secrets.add(v)
  // RFC 6749 §2.3.1 Basic credentials (form-encoded, then plain), and CRM.COM's api_key with an empty password.
  if (values.client_id && values.client_secret)
    for (const pair of [
      `${form(values.client_id)}:${form(values.client_secret)}`,
      `${values.client_id}:${values.client_secret}`
    ])
      secrets.add(pair)
  if (values.api_key) secrets.add(`${values.api_key}:`)
}
if (existsSync("test-results/secrets")) {
  for (const f of readdirSync("test-results/secrets"))
    for (const line of readFileSync(`test-results/secrets/${f}`, "utf8").split("\n"))
      if (line.length >= 8) secrets.add(line)
}
const haystack = ["test-results/output.log", "test-results/vitest.json"]
  .filter(existsSync)
  .map((f) => readFileSync(f, "utf8"))
  .join("\n")
const json = (s) => JSON.stringify(s).slice(1, -1)
const forms = (s) => {
  const b64 = Buffer.from(s).toString("base64")
  const wire = [s, b64, b64.replace(/=+$/, ""), Buffer.from(s).toString("base64url"), encodeURIComponent(s), form(s)]
  const lower = wire.map((w) => w.replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase()))
  return [...new Set([...wire, ...lower].flatMap((w) => [w, json(w), json(json(w))]))].filter((f) => f.length >= 6)
}
const hits = [...secrets].filter((s) => forms(s).some((f) => haystack.includes(f)))
console.log(
  `secret-leak scan: ${secrets.size} secrets (${[...secrets].reduce((n, s) => n + forms(s).length, 0)} encoded forms), ${haystack.length} bytes of output, ${hits.length} hits${hits.length ? `: ${hits.map((s) => `${s.slice(0, 3)}…`).join(", ")}` : ""}`
)
process.exit(hits.length ? 1 : 0)
