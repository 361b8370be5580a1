// Runs the whole test suite: type checks every package (turbo), then vitest across all packages with a JSON
// report, and ends with the plain line "N passed, M failed" that CI reads. Exit code 1 on any failure.
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, existsSync, rmSync, writeFileSync } from "node:fs"
import { runTee } from "./tee.mjs"

const run = (cmd, args) => spawnSync(cmd, args, { stdio: "inherit", shell: false })
let failedSteps = 0
console.log("> typecheck")
const tc = run("turbo", ["run", "typecheck", "--output-logs=errors-only"])
if (tc.status !== 0) {
  console.error("typecheck failed")
  failedSteps++
}
// One formatter and one linter over the whole tree; each counts as a failed step when it finds something.
const steps = [
  ["format", "prettier", ["--check", "--log-level", "warn", "."], "run `pnpm format` to fix"],
  ["lint", "oxlint", ["--quiet"], "see the findings above"]
]
for (const [label, cmd, args, advice] of steps) {
  console.log(`> ${label}`)
  if (run(cmd, args).status !== 0) {
    console.error(`${label} failed: ${advice}`)
    failedSteps++
  }
}
mkdirSync("test-results", { recursive: true })
const report = "test-results/vitest.json"
rmSync(report, { force: true })
rmSync("test-results/secrets", { recursive: true, force: true })
console.log("> vitest (a line per test file as it finishes)")
const vt = await runTee("vitest", [
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${report}`,
  ...process.argv.slice(2)
])
writeFileSync("test-results/output.log", `${vt.stdout ?? ""}\n${vt.stderr ?? ""}`)
let passed = 0,
  failed = 0
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, "utf8"))
  passed = r.numPassedTests ?? 0
  failed = r.numFailedTests ?? 0
  // A test file that fails to load has no failed tests of its own: count the file.
  if ((r.numFailedTestSuites ?? 0) > 0 && failed === 0) failed = r.numFailedTestSuites
}
if (vt.status !== 0 && failed === 0) failed = 1
// The run-wide secret-leak scan counts as one test.
const scan = run("node", ["scripts/secret-scan.mjs"])
if (scan.status === 0) passed++
else failed++
failed += failedSteps
const summary = `${passed} passed, ${failed} failed`
writeFileSync("test-results/summary.txt", `${summary}\n`)
console.log(summary)
process.exit(failed > 0 || vt.status !== 0 ? 1 : 0)
