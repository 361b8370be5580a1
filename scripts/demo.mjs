// The README demo: starts the sandbox providers on loopback, writes a tessera.yaml pointing at them, and gets a
// token from each of the six bundled providers, first through the library and then through the real CLI.
// No accounts needed; everything stops by itself.
import { execFile } from "node:child_process"
import { promisify } from "node:util"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { startSandbox } from "../packages/testkit/src/index.ts"
import { createTessera } from "../packages/engine/src/promise.ts"

const dir = mkdtempSync(join(tmpdir(), "tessera-demo-"))
const sb = await startSandbox()
try {
  const ids = ["cube", "dvinci", "usage-engine", "brandbox", "crm-com", "oauth2"]
  const yaml = ["# yaml-language-server: $schema=../schemas/config.schema.json", "connections:"]
  for (const id of ids) {
    yaml.push(`  ${id}:`, `    provider: ${id}`, "    inputs:")
    for (const [k, v] of Object.entries(sb.credentials[id])) {
      // Secrets come from the environment, as they should in a real config.
      const secret = /secret|password|api_key|code/.test(k)
      const envName = `DEMO_${id.replace(/-/g, "_").toUpperCase()}_${k.toUpperCase()}`
      if (secret) process.env[envName] = v
      yaml.push(`      ${k}: ${secret ? `"\${env:${envName}}"` : JSON.stringify(v)}`)
    }
  }
  const configFile = join(dir, "tessera.yaml")
  writeFileSync(configFile, `${yaml.join("\n")}\n`)
  console.log(`sandbox providers on ${sb.url}; config written to ${configFile}\n`)

  console.log("library: const tessera = await createTessera({ config }); await tessera.getTokenResult(name)")
  const tessera = await createTessera({ config: configFile })
  const pad = (s, n) => String(s).padEnd(n)
  for (const id of ids) {
    const r = await tessera.getTokenResult(id)
    const again = await tessera.getTokenResult(id)
    const token = String(await tessera.getToken(id))
    console.log(
      `  ${pad(id, 13)} ${pad(r.decision.action, 9)} then ${pad(again.decision.action, 7)} ${pad(r.tokenType, 7)} expires ${r.expiresAt?.toISOString() ?? "unknown"}  ${token.slice(0, 16)}…`
    )
  }
  const res = await tessera.fetch("dvinci", "/dvinciUsers/")
  console.log(`\nlibrary: tessera.fetch("dvinci", "/dvinciUsers/") -> HTTP ${res.status} ${await res.text()}`)
  await tessera.close()

  const cli = join(import.meta.dirname, "..", "packages", "cli", "bin", "tessera.mjs")
  const env = { ...process.env, TESSERA_CACHE_DIR: join(dir, "cache") }
  // Asynchronous on purpose: the sandbox answering the CLI runs in this process's event loop.
  const cliRun = async (...args) =>
    (
      await promisify(execFile)(process.execPath, [cli, ...args, "--config", configFile], { env, encoding: "utf8" })
    ).stdout.trim()
  try {
    console.log("\ncli: tessera token <connection> --json (file cache: the second call makes no request)")
    for (const id of ["cube", "crm-com"]) {
      for (let i = 0; i < 2; i++) {
        const before = sb.tokenRequests(id).length
        const out = await cliRun("token", id, "--json")
        console.log(
          `  $ tessera token ${id} --json   (${sb.tokenRequests(id).length - before} token request)\n  ${out.replace(/"access_token":"(.{16})[^"]*"/, '"access_token":"$1…"')}`
        )
      }
    }
    console.log(
      `\ncli: tessera token brandbox --dry-run\n${(await cliRun("token", "brandbox", "--dry-run")).replace(/^/gm, "  ")}`
    )
    console.log(
      `\ncli: tessera request dvinci GET /dvinciUsers/ -i\n${(await cliRun("request", "dvinci", "GET", "/dvinciUsers/", "-i")).replace(/^/gm, "  ")}`
    )
  } catch (e) {
    console.log(`  cli failed: ${e.message.split("\n")[0]}\n${e.stderr ?? ""}`)
    process.exitCode = 1
  }
  console.log(`\nsandbox saw ${sb.tokenRequests().length} token requests for ${ids.length} providers.`)
} finally {
  await sb.close()
  rmSync(dir, { recursive: true, force: true })
}
