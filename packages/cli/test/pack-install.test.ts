/** The published shape, as a user installs it: `pnpm pack` every package, `npm install` the tarballs into an empty
 *  project (their own dependencies come from the npm registry, through npm's cache), then run that project's
 *  `tessera token` and `tessera serve` (signals reach it: SIGHUP reloads, SIGTERM drains and exits 0) against a
 *  sandbox started here, and `createTessera` from a script there. Also the README's way onto the PATH,
 *  `pnpm cli:install`, into a temporary npm prefix. Under CI=true this always runs; elsewhere it is skipped, with a
 *  line saying so, when the registry cannot be reached. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { execFile, spawn, spawnSync } from "node:child_process"
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"

const repo = fileURLToPath(new URL("../../../", import.meta.url))
const ci = process.env["CI"] === "true" || process.env["CI"] === "1"
const pnpm = (JSON.parse(readFileSync(join(repo, "package.json"), "utf8")) as { packageManager: string }).packageManager
const packages = ["engine", "cli", "server", "testkit"]

const reachable = spawnSync("npm", ["ping", "--loglevel=error"], { timeout: 20_000 }).status === 0
if (!reachable && !ci)
  console.log("SKIP pack-and-install: the npm registry is unreachable (npm ping failed); CI=true runs it regardless")

/** A PATH whose `node` is this Node (24): the installed bin's `#!/usr/bin/env node` must find it. */
const PATH = [dirname(process.execPath), process.env["PATH"] ?? ""].join(delimiter)
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const e: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("TESSERA_") && !k.startsWith("npm_")) e[k] = v
  return { ...e, PATH, NO_COLOR: "1", ...extra }
}

const exec = async (file: string, args: ReadonlyArray<string>, opts: { cwd: string; env?: NodeJS.ProcessEnv }) =>
  promisify(execFile)(file, [...args], {
    cwd: opts.cwd,
    env: opts.env ?? env(),
    encoding: "utf8",
    timeout: 180_000
  }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code?: number; stdout?: string; stderr?: string; message: string }) => ({
      code: typeof e.code === "number" ? e.code : -1,
      stdout: e.stdout ?? "",
      stderr: e.stderr ?? e.message
    })
  )

let work: string, project: string, sb: Sandbox, config: string
beforeAll(async () => {
  if (!reachable && !ci) return
  work = mkdtempSync(join(tmpdir(), "tessera-pack-"))
  project = join(work, "project")
  mkdirSync(join(work, "tarballs"))
  mkdirSync(project)
  sb = await startSandbox()
  const packed = await exec(
    "npx",
    ["-y", pnpm, "--filter", "./packages/*", "pack", "--pack-destination", join(work, "tarballs")],
    { cwd: repo }
  )
  expect(packed.code, packed.stderr).toBe(0)
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "pack-test", private: true, type: "module" }))
  const tarballs = readdirSync(join(work, "tarballs")).map((f) => join(work, "tarballs", f))
  const installed = await exec(
    "npm",
    ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...tarballs],
    { cwd: project }
  )
  expect(installed.code, installed.stderr).toBe(0)
  config = join(project, "tessera.yaml")
  const c = sb.credentials["oauth2"]!
  writeFileSync(
    config,
    [
      "connections:",
      "  api:",
      "    provider: oauth2",
      "    inputs:",
      `      token_url: ${JSON.stringify(c["token_url"])}`,
      `      client_id: ${JSON.stringify(c["client_id"])}`,
      '      client_secret: "${env:API_SECRET}"',
      ""
    ].join("\n")
  )
}, 240_000)
afterAll(async () => {
  await sb?.close()
  if (work) rmSync(work, { recursive: true, force: true })
})

const secret = () => ({
  API_SECRET: sb.credentials["oauth2"]!["client_secret"]!,
  TESSERA_CACHE_DIR: join(work, "cache")
})
const tessera = (args: ReadonlyArray<string>, extra: Record<string, string> = {}) =>
  exec(join(project, "node_modules", ".bin", "tessera"), args, { cwd: project, env: env({ ...secret(), ...extra }) })

const manifest = (pkg: string) =>
  JSON.parse(readFileSync(join(project, "node_modules", "@tessera", pkg, "package.json"), "utf8")) as {
    exports?: Record<string, unknown>
    bin?: Record<string, string>
    dependencies?: Record<string, string>
  }

/** Every file a package.json export or bin names, as a list of paths. */
const targets = (v: unknown): string[] =>
  typeof v === "string" ? [v] : v !== null && typeof v === "object" ? Object.values(v).flatMap(targets) : []

describe.skipIf(!reachable && !ci)("packed and installed with npm", () => {
  it("points every export and bin at built JavaScript that is in the package, and ships no TypeScript sources", () => {
    for (const pkg of packages) {
      const m = manifest(pkg)
      const files = [...targets(m.exports), ...targets(m.bin)]
      expect(files.length, pkg).toBeGreaterThan(0)
      for (const f of files) {
        expect(f, `${pkg}: ${f}`).toMatch(/^\.\/(dist\/.+\.(m?js|d\.ts)|package\.json)$/)
        expect(() => readFileSync(join(project, "node_modules", "@tessera", pkg, f)), `${pkg}: ${f}`).not.toThrow()
      }
      const shipped = readdirSync(join(project, "node_modules", "@tessera", pkg), { recursive: true }).map(String)
      expect(
        shipped.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts")),
        pkg
      ).toEqual([])
    }
    // The CLI is one bundle: nothing to fetch, so `npm install -g` of it alone works.
    expect(manifest("cli").dependencies).toBeUndefined()
  })

  it("runs its `tessera token` against the sandbox, the second time from the cache", async () => {
    const before = sb.tokenRequests("oauth2").length
    const first = await tessera(["token", "api", "--config", config])
    expect(first.code, first.stderr).toBe(0)
    expect(first.stdout).toMatch(/^\S{20,}\n$/)
    const again = await tessera(["token", "api", "--config", config])
    expect(again).toEqual(first)
    expect(sb.tokenRequests("oauth2").length - before).toBe(1)
    const providers = await tessera(["providers"])
    expect(providers.stdout).toContain("oauth2")
    expect(providers.stderr).not.toContain("ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING")
  }, 60_000)

  it("runs createTessera from a script in the project, and its other entry points load", async () => {
    writeFileSync(
      join(project, "get-token.mjs"),
      [
        'import { createTessera } from "@tessera/engine/promise"',
        'import { Engine } from "@tessera/engine"',
        'import * as Redis from "@tessera/engine/redis"',
        'import { serve } from "@tessera/server"',
        'import { startSandbox } from "@tessera/testkit"',
        "for (const [name, x] of Object.entries({ Engine, Redis, serve, startSandbox })) if (!x) throw new Error(name)",
        `const tessera = await createTessera({ config: ${JSON.stringify(config)} })`,
        'const token = await tessera.getToken("api")',
        "await tessera.close()",
        "console.log(String(token).length > 20 ? 'ok' : 'no token')"
      ].join("\n")
    )
    const r = await exec(process.execPath, ["get-token.mjs"], { cwd: project, env: env(secret()) })
    expect(r.stderr).toBe("")
    expect(r).toMatchObject({ code: 0, stdout: "ok\n" })
  }, 60_000)

  it.each([["SIGTERM"], ["SIGINT"]] as const)(
    "runs `tessera serve` so that signals reach it: SIGHUP reloads, %s exits 0 and frees the port",
    async (stop) => {
      const child = spawn(
        join(project, "node_modules", ".bin", "tessera"),
        ["serve", "--config", config, "--port", "0"],
        {
          cwd: project,
          env: env(secret()),
          stdio: ["ignore", "pipe", "pipe"]
        }
      )
      let out = ""
      for (const s of [child.stdout, child.stderr]) s.on("data", (d: Buffer) => (out += d.toString()))
      const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
      const waitFor = (re: RegExp) =>
        new Promise<RegExpExecArray>((resolve, reject) => {
          const t = setInterval(() => {
            const m = re.exec(out)
            if (m) {
              clearInterval(t)
              resolve(m)
            }
          }, 50)
          setTimeout(() => {
            clearInterval(t)
            reject(new Error(`${re} not seen:\n${out}`))
          }, 20_000)
        })
      try {
        const url = (await waitFor(/"url":"(http:\/\/127\.0\.0\.1:\d+)"/))[1]!
        expect((await fetch(`${url}/v1/connections/api/token`)).status).toBe(200)
        child.kill("SIGHUP")
        await waitFor(/config reloaded/)
        expect((await fetch(`${url}/healthz`)).status).toBe(200)
        const t0 = Date.now()
        child.kill(stop)
        expect(await exited).toBe(0)
        expect(Date.now() - t0).toBeLessThan(5_000)
        const port = Number(new URL(url).port)
        await new Promise<void>((resolve, reject) => {
          const probe = createServer().once("error", reject)
          probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()))
        })
      } finally {
        child.kill("SIGKILL")
      }
    },
    60_000
  )

  it("puts `tessera` on the PATH with `pnpm cli:install` (the README's command), into a given npm prefix", async () => {
    const prefix = join(work, "global")
    const r = await exec("npx", ["-y", pnpm, "cli:install"], { cwd: repo, env: env({ NPM_CONFIG_PREFIX: prefix }) })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(`installed tessera in ${join(prefix, "bin")}`)
    expect(r.stdout).toContain(`note: ${join(prefix, "bin")} is not on your PATH`)
    const onPath = env({ ...secret(), PATH: [join(prefix, "bin"), PATH].join(delimiter) })
    const version = await exec("tessera", ["--version"], { cwd: work, env: onPath })
    expect(version.stdout).toMatch(/^tessera v\d+\.\d+\.\d+\n$/)
    const token = await exec("tessera", ["token", "api", "--config", config, "--json"], { cwd: work, env: onPath })
    expect(token.code, token.stderr).toBe(0)
    expect(JSON.parse(token.stdout)).toMatchObject({ connection: "api", provider: "oauth2" })
  }, 180_000)
})
