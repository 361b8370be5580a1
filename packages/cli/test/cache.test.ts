/** `tessera cache list` and `tessera cache clear`: the file store's entries without any secret, cleared per
 *  connection or all at once. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, configText, tempDir, tessera, write } from "./services/cli.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(async () => {
  await sb?.close()
  cleanup()
})

interface Listed {
  connection: string
  provider: string
  obtained_at: string
  expires_at: string
  freshness: string
  has_refresh_token: boolean
  expiry_source: string
  key: string
}

describe("tessera cache", () => {
  it("lists the cached tokens without secrets, clears one connection's, then all", async () => {
    const cwd = tempDir()
    write(
      `${cwd}/tessera.yaml`,
      configText({
        jobs: { provider: "dvinci", inputs: sb.credentials.dvinci },
        bb: { provider: "brandbox", inputs: sb.credentials.brandbox }
      })
    )
    const run = (...args: string[]) => tessera(args, { cwd })
    // Without a config, the default file store (here <cwd>/.cache): empty.
    const [empty, jobs, bb] = await Promise.all([
      tessera(["cache", "list"], { cwd: tempDir() }),
      run("token", "jobs"),
      run("token", "bb")
    ])
    expect(empty.code, empty.stderr).toBe(0)
    expect(empty.stdout).toBe("No cached tokens.\n")
    const tokens = [jobs.stdout.trim(), bb.stdout.trim()]

    const [text, json] = await Promise.all([run("cache", "list"), run("cache", "list", "--json")])
    expect(text.code, text.stderr).toBe(0)
    const lines = text.stdout.trimEnd().split("\n")
    expect(lines[0]).toMatch(/^CONNECTION +PROVIDER +EXPIRES +FRESHNESS +REFRESH TOKEN$/)
    expect(lines[1]).toMatch(/^bb +brandbox +\d{4}-\d\d-\d\dT[\d:.]+Z \(in (1 h|59 min( \d+ s)?)\) +fresh +yes$/)
    expect(lines[2]).toMatch(/^jobs +dvinci +\S+ \(in (30 min|29 min( \d+ s)?)\) +fresh +no$/)
    const listed = (JSON.parse(json.stdout) as { tokens: Listed[] }).tokens
    expect(listed.map((t) => [t.connection, t.provider, t.freshness, t.has_refresh_token, t.expiry_source])).toEqual([
      ["bb", "brandbox", "fresh", true, "expires_in"],
      ["jobs", "dvinci", "fresh", false, "expires_in"]
    ])
    for (const t of listed)
      expect(Object.keys(t)).toEqual([
        "connection",
        "provider",
        "obtained_at",
        "expires_at",
        "freshness",
        "has_refresh_token",
        "expiry_source",
        "key"
      ])
    for (const out of [text.stdout, json.stdout]) {
      for (const t of tokens) {
        expect(out).not.toContain(t)
        expect(out).not.toContain(t.split(".")[2])
      }
      for (const s of [sb.credentials.dvinci["client_secret"]!, sb.credentials.brandbox["password"]!])
        expect(out).not.toContain(s)
    }

    const one = await run("cache", "clear", "jobs")
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toBe("Removed 1 cached token of jobs.\n")
    const [left, unknown] = await Promise.all([run("cache", "list", "--json"), run("cache", "clear", "nope", "--json")])
    expect((JSON.parse(left.stdout) as { tokens: Listed[] }).tokens.map((t) => t.connection)).toEqual(["bb"])
    expect(unknown.code).toBe(2)
    expect(JSON.parse(unknown.stderr)).toEqual({
      error: { code: "UnknownConnection", message: 'unknown connection "nope" (configured: bb, jobs)' }
    })

    const all = await run("cache", "clear", "--json")
    expect(all.code, all.stderr).toBe(0)
    expect(JSON.parse(all.stdout)).toEqual({ removed: 1 })
  })
})

describe("tessera cache and a directory tessera does not own", () => {
  it("TESSERA_CACHE_DIR at an existing directory: never chmod-ed or cleared; the cache lives in its tessera/ subdirectory", async () => {
    const cwd = tempDir()
    const shared = join(cwd, "shared")
    mkdirSync(shared, { mode: 0o755 })
    chmodSync(shared, 0o755)
    write(join(shared, "victim.token"), "someone else's file")
    write(`${cwd}/tessera.yaml`, configText({ jobs: { provider: "dvinci", inputs: sb.credentials.dvinci } }))
    const env = { TESSERA_CACHE_DIR: shared }
    const token = await tessera(["token", "jobs"], { cwd, env })
    expect(token.code, token.stderr).toBe(0)
    expect(readdirSync(join(shared, "tessera")).filter((n) => n.endsWith(".token"))).toHaveLength(1)
    const listed = await tessera(["cache", "list", "--json"], { cwd, env })
    expect((JSON.parse(listed.stdout) as { tokens: Listed[] }).tokens.map((t) => t.connection)).toEqual(["jobs"])
    const cleared = await tessera(["cache", "clear", "--json"], { cwd, env })
    expect(JSON.parse(cleared.stdout)).toEqual({ removed: 1 })
    expect(statSync(shared).mode & 0o777).toBe(0o755)
    expect(readFileSync(join(shared, "victim.token"), "utf8")).toBe("someone else's file")
  })

  it("cache list and cache clear create no cache directory", async () => {
    const cwd = tempDir()
    const [list, clear] = await Promise.all([tessera(["cache", "list"], { cwd }), tessera(["cache", "clear"], { cwd })])
    expect(list.stdout).toBe("No cached tokens.\n")
    expect(clear.stdout).toBe("No cached tokens to remove.\n")
    expect(existsSync(join(cwd, ".cache"))).toBe(false)
  })

  it("a cache error names the path", async () => {
    const cwd = tempDir()
    const dir = join(cwd, ".cache")
    mkdirSync(join(dir, "tessera"), { recursive: true }) // neither is tessera's
    const r = await tessera(["cache", "list"], { cwd })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`neither ${dir} nor ${dir}/tessera is a tessera cache directory`)
  })
})
