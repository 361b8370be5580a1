/** The fast path of `tessera` (src/fast-path.ts, src/hit-index.ts): a plain `tessera token <connection>` cache hit
 *  and `--version` are answered without the full CLI, with exactly the output the full CLI gives, and every
 *  other case takes the full CLI: a changed config, a changed env var or file that feeds an input, a changed
 *  manifest, an expired token, a tampered record, any flag, a log level that shows the hit's log line.
 *  Which path ran is read from the modules the process loaded (a load recorder given to `node --import`): the full
 *  CLI loads src/main.ts (from the sources) or the main chunk (from the bundle). The bundle, built here into a
 *  directory of its own, is also checked to load nothing of Effect, Ajv, YAML or the manifest compiler on a hit. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { Runtime } from "@tessera/engine"
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { bundle } from "../scripts/build.ts"
import * as FastPath from "../src/fast-path.ts"
import { bin, cleanup, repoProviders, tempDir, tessera, write, type RunOptions } from "./services/cli.ts"

const recorder = fileURLToPath(new URL("./services/load-recorder.mjs", import.meta.url))
const outdir = fileURLToPath(new URL(`../.test-dist-${process.pid}/`, import.meta.url))
const bundled = join(outdir, "tessera.mjs")
const version = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version

let sb: Sandbox
let short: Sandbox
beforeAll(async () => {
  ;[sb, short] = await Promise.all([startSandbox(), startSandbox({ ttlSeconds: { oauth2: 8 } })])
  await bundle(outdir)
}, 120_000)
afterAll(async () => {
  cleanup()
  rmSync(outdir, { recursive: true, force: true })
  await Promise.all([sb?.close(), short?.close()])
})

/** Runs `tessera` and tells which modules it loaded and whether the full CLI ran. */
const run = async (args: ReadonlyArray<string>, opts: RunOptions) => {
  const loads = join(opts.cwd, `loads-${Math.random().toString(36).slice(2)}.txt`)
  // Built code prefers a package's own copy of the manifests (packages/cli/providers), which the pack-and-install
  // test creates and removes while it packs: the bundle is pointed at the repository's, as the sources are.
  const manifests = opts.bin === bundled ? { TESSERA_BUNDLED_PROVIDERS: repoProviders } : {}
  const r = await tessera(args, {
    ...opts,
    nodeArgs: ["--import", pathToFileURL(recorder).href],
    env: { ...manifests, ...opts.env, TESSERA_TEST_LOADS: loads }
  })
  const loaded = readFileSync(loads, "utf8").split("\n")
  const full = loaded.some((u) => /\/src\/main\.ts$|\/main-[A-Z0-9]+\.mjs$/.test(u))
  return { ...r, loaded, full }
}

/** A directory with a tessera.yaml whose connection `api` is the sandbox's oauth2 client; `inputs` replace its. */
const project = (box: Sandbox, inputs: Readonly<Record<string, string>> = {}, extra = ""): string => {
  const cwd = tempDir()
  const all = { ...box.credentials["oauth2"], ...inputs }
  write(
    join(cwd, "tessera.yaml"),
    [
      "connections:",
      "  api:",
      "    provider: oauth2",
      "    inputs:",
      ...Object.entries(all).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
      extra
    ].join("\n") + "\n"
  )
  return cwd
}

const requests = (box: Sandbox) => box.tokenRequests("oauth2").length

describe.each([
  ["the sources", bin],
  ["the bundle", bundled]
])("tessera token from %s", (_, executable) => {
  it("answers a repeated call from the hit index, with the full CLI's output, making no request", async () => {
    const cwd = project(sb)
    const before = requests(sb)
    const first = await run(["token", "api"], { cwd, bin: executable })
    expect(first.code, first.stderr).toBe(0)
    expect(first.full).toBe(true)
    expect(first.stdout).toMatch(/^\S{20,}\n$/)
    const hit = await run(["token", "api", "--config", join(cwd, "tessera.yaml")], {
      cwd: tempDir(),
      bin: executable,
      env: { TESSERA_CACHE_DIR: join(cwd, ".cache") }
    })
    expect(hit).toMatchObject({ code: 0, stdout: first.stdout, stderr: "", full: false })
    const json = await run(["token", "api", "--json"], { cwd, bin: executable })
    expect(json.full).toBe(true)
    expect(JSON.parse(json.stdout)).toMatchObject({ access_token: first.stdout.trim() })
    expect(requests(sb) - before).toBe(1)
  })

  it("answers --version and -v with the full CLI's text", async () => {
    const cwd = tempDir()
    const [fast, dashV, full] = await Promise.all([
      run(["--version"], { cwd, bin: executable }),
      run(["-v"], { cwd, bin: executable }),
      run(["--log-level", "warn", "--version"], { cwd, bin: executable })
    ])
    expect(full).toMatchObject({ code: 0, stdout: `tessera v${version}\n`, full: true })
    for (const r of [fast, dashV]) expect(r).toMatchObject({ code: 0, stdout: full.stdout, stderr: "", full: false })
  })
})

describe("tessera token from the bundle", () => {
  it("loads only its entry and the fast path's two small chunks on a hit: no Effect, Ajv, YAML or manifest code", async () => {
    const cwd = project(sb)
    expect((await run(["token", "api"], { cwd, bin: bundled })).code).toBe(0)
    const hit = await run(["token", "api"], { cwd, bin: bundled })
    expect(hit.full).toBe(false)
    const own = hit.loaded
      .filter((u) => u.startsWith(pathToFileURL(outdir).href))
      .map((u) => fileURLToPath(u).slice(outdir.length))
    expect(own.map((f) => f.replace(/-[A-Z0-9]{8}\.mjs$/, ".mjs")).sort()).toEqual([
      "fast-path-hit-index.mjs",
      "fast-path.mjs",
      "tessera.mjs"
    ])
    // Each bundled module starts with a `// <its path>` comment.
    const modules = own.flatMap((f) =>
      [...readFileSync(join(outdir, f), "utf8").matchAll(/^\/\/ (\S+)$/gm)].map((m) => m[1])
    )
    expect(modules).toContain("../engine/src/file-store.ts")
    expect(
      modules.filter((m) => /node_modules|engine\/src\/(manifest|config|catalog|engine)\.ts/.test(m ?? ""))
    ).toEqual([])
    expect(own.reduce((n, f) => n + readFileSync(join(outdir, f)).length, 0)).toBeLessThan(32_000)
  })
})

describe("tessera token takes the full CLI", () => {
  it("for any flag but --config: --force and --no-cache renew, --json prints JSON", async () => {
    const cwd = project(sb)
    const first = await run(["token", "api"], { cwd })
    const before = requests(sb)
    const [force, noCache] = [
      await run(["token", "api", "--force"], { cwd }),
      await run(["token", "api", "--no-cache"], { cwd })
    ]
    for (const r of [force, noCache]) expect(r).toMatchObject({ code: 0, full: true })
    expect(force.stdout).not.toBe(first.stdout)
    expect(requests(sb) - before).toBe(2)
  })

  it("when the config file changed, then records again", async () => {
    const cwd = project(sb)
    await run(["token", "api"], { cwd })
    expect((await run(["token", "api"], { cwd })).full).toBe(false)
    writeFileSync(join(cwd, "tessera.yaml"), `${readFileSync(join(cwd, "tessera.yaml"), "utf8")}# edited\n`)
    const edited = await run(["token", "api"], { cwd })
    expect(edited).toMatchObject({ code: 0, full: true })
    expect((await run(["token", "api"], { cwd })).full).toBe(false)
  })

  it("when an environment variable or a file the config references changed", async () => {
    const cwd = project(sb, { client_secret: "${env:FAST_SECRET}", client_id: "${file:./client-id}" })
    write(join(cwd, "client-id"), `${sb.credentials["oauth2"]!["client_id"]}\n`)
    const env = { FAST_SECRET: sb.credentials["oauth2"]!["client_secret"]! }
    expect((await run(["token", "api"], { cwd, env })).code).toBe(0)
    expect((await run(["token", "api"], { cwd, env })).full).toBe(false)
    // A wrong secret must reach the provider (and be rejected), not get the token cached for the right one.
    const wrong = await run(["token", "api"], { cwd, env: { FAST_SECRET: "not-the-secret" } })
    expect(wrong).toMatchObject({ code: 1, stdout: "", full: true })
    const unset = await run(["token", "api"], { cwd })
    expect(unset).toMatchObject({ code: 2, full: true })
    write(join(cwd, "client-id"), "someone-else\n")
    expect(await run(["token", "api"], { cwd, env })).toMatchObject({ code: 1, full: true })
  })

  it("when a manifest the catalog loads changed", async () => {
    const cwd = project(sb)
    cpSync(repoProviders, join(cwd, "providers"), { recursive: true })
    const env = { TESSERA_BUNDLED_PROVIDERS: join(cwd, "providers") }
    await run(["token", "api"], { cwd, env })
    expect((await run(["token", "api"], { cwd, env })).full).toBe(false)
    write(join(cwd, "providers", "acme.yaml"), "id: [broken\n")
    const broken = await run(["token", "api"], { cwd, env })
    expect(broken).toMatchObject({ code: 2, stdout: "", full: true })
    expect(broken.stderr).toContain("acme.yaml")
  })

  it("once the token is inside its early-refresh margin", async () => {
    const cwd = project(short)
    const first = await run(["token", "api"], { cwd })
    expect((await run(["token", "api"], { cwd })).full).toBe(false)
    await new Promise((r) => setTimeout(r, 8_000)) // an 8 s token: fresh for 7.2 s
    const renewed = await run(["token", "api"], { cwd })
    expect(renewed).toMatchObject({ code: 0, full: true })
    expect(renewed.stdout).not.toBe(first.stdout)
  })

  it("when the record was tampered with", async () => {
    const cwd = project(sb)
    await run(["token", "api"], { cwd })
    const dir = join(cwd, ".cache", "hits")
    const [name] = readdirSync(dir)
    const file = join(dir, name!)
    const record = JSON.parse(readFileSync(file, "utf8")) as { freshUntil: number }
    writeFileSync(file, JSON.stringify({ ...record, freshUntil: record.freshUntil + 1 }))
    expect((await run(["token", "api"], { cwd })).full).toBe(true)
    writeFileSync(file, "{ not json")
    expect(await run(["token", "api"], { cwd })).toMatchObject({ code: 0, full: true })
    expect(existsSync(file)).toBe(true)
  })

  it("when TESSERA_LOG_LEVEL shows the hit's log line, and rejects an unknown level (exit 2)", async () => {
    const cwd = project(sb)
    await run(["token", "api"], { cwd })
    const info = await run(["token", "api"], { cwd, env: { TESSERA_LOG_LEVEL: "info" } })
    expect(info).toMatchObject({ code: 0, full: true })
    expect(info.stderr).toContain("reused")
    expect((await run(["token", "api"], { cwd, env: { TESSERA_LOG_LEVEL: "ERROR" } })).full).toBe(false)
    for (const args of [["token", "api"], ["--version"]]) {
      const bad = await run(args, { cwd, env: { TESSERA_LOG_LEVEL: "verbose" } })
      expect(bad).toMatchObject({ code: 2, stdout: "", full: true })
      expect(bad.stderr).toBe(
        'tessera: TESSERA_LOG_LEVEL is "verbose", not a log level (use one of all, trace, debug, info, warn, error, fatal, none; unset means warn)\n'
      )
    }
  })
})

describe("the fast path's rules", () => {
  it("knows the same log levels as the engine", () => {
    expect(FastPath.levels).toEqual(Runtime.levels.map((l) => l.toLowerCase()))
  })

  it("takes only `token <connection>` with at most one --config", () => {
    expect(FastPath.tokenCall(["token", "api"])).toEqual({ connection: "api", config: undefined })
    expect(FastPath.tokenCall(["token", "-c", "f.yaml", "api"])).toEqual({ connection: "api", config: "f.yaml" })
    expect(FastPath.tokenCall(["token", "api", "--config=f.yaml"])).toEqual({ connection: "api", config: "f.yaml" })
    for (const argv of [
      ["token"],
      ["token", "a", "b"],
      ["token", "api", "--json"],
      ["token", "api", "--config"],
      ["token", "api", "--config", "a", "--config", "b"],
      ["token", "api", "--config", "--json"],
      ["token", "--", "api"],
      ["token", ""],
      ["request", "api"],
      ["--log-level", "info", "token", "api"]
    ])
      expect(FastPath.tokenCall(argv), argv.join(" ")).toBeUndefined()
  })
})
