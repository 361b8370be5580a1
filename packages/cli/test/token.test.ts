/** `tessera token` against the loopback sandbox: every bundled provider end to end through the real binary,
 *  the file cache across invocations, --force / --no-cache / --dry-run / --curl, and the failure paths. */
import { decodeJwt, PROVIDER_IDS, startSandbox, type ProviderId, type Sandbox } from "@tessera/testkit"
import { spawn } from "node:child_process"
import { existsSync, readdirSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, configText, positionOf, tempDir, tessera, write } from "./services/cli.ts"

let sb: Sandbox
beforeAll(async () => {
  sb = await startSandbox()
})
afterAll(async () => {
  await sb?.close()
  cleanup()
})

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`

/** Per provider: where its API lives (to prove a token was issued by the sandbox), its secret inputs, and what
 *  an unmasked request must show of them. */
const cases: Record<
  ProviderId,
  {
    api: string
    secretInputs: ReadonlyArray<string>
    revealed: (c: Record<string, string>) => ReadonlyArray<string>
    refreshes?: boolean
  }
> = {
  cube: {
    api: "/cube/probe",
    secretInputs: ["client_secret"],
    revealed: (c) => [`client_secret=${c["client_secret"]}`]
  },
  dvinci: {
    api: "/dvinci/restApi/probe",
    secretInputs: ["client_secret"],
    revealed: (c) => [`client_secret=${c["client_secret"]}`]
  },
  "usage-engine": {
    api: "/usage-engine/api/probe",
    secretInputs: ["client_secret"],
    revealed: (c) => [`client_secret=${c["client_secret"]}`]
  },
  brandbox: {
    api: "/brandbox/rest/v4/probe",
    secretInputs: ["password"],
    revealed: (c) => [`password=${c["password"]}`],
    refreshes: true
  },
  "crm-com": {
    api: "/crm-com/probe",
    secretInputs: ["api_key", "authentication_code"],
    revealed: (c) => [
      `Authorization: ${basic(c["api_key"]!, "")}`,
      `"authentication_code":"${c["authentication_code"]}"`
    ]
  },
  oauth2: {
    api: "/oauth2/api/probe",
    secretInputs: ["client_secret"],
    revealed: (c) => [`Authorization: ${basic(c["client_id"]!, c["client_secret"]!)}`]
  }
}

const parse = (stdout: string) => {
  const lines = stdout.trim().split("\n")
  expect(lines).toHaveLength(1) // exactly one JSON object
  return JSON.parse(lines[0]!) as Record<string, unknown>
}

/** True when the sandbox accepts the token on its API: it issued it, for this provider, and it is live. */
const acceptedByApi = async (id: ProviderId, token: string) =>
  (await fetch(`${sb.url}${cases[id].api}`, { headers: { authorization: `Bearer ${token}` } })).status === 200

describe.concurrent("tessera token, each bundled provider against the sandbox", () => {
  for (const id of PROVIDER_IDS) {
    it(id, { timeout: 120_000 }, async () => {
      const cwd = tempDir()
      const name = `my-${id}`
      const creds = sb.credentials[id]
      write(`${cwd}/tessera.yaml`, configText({ [name]: { provider: id, inputs: creds } }))
      const run = (...args: string[]) => tessera(["token", name, ...args], { cwd })
      const requests = () => sb.tokenRequests(id).length
      const secrets = [...cases[id].secretInputs.map((k) => creds[k]!), ...cases[id].revealed(creds)]

      // Dry runs describe the request and send nothing.
      const [dry, curl, shown] = await Promise.all([run("--dry-run"), run("--curl"), run("--curl", "--show-secrets")])
      expect(requests()).toBe(0)
      for (const r of [dry, curl, shown]) expect(r.code, r.stderr).toBe(0)
      expect(dry.stdout.split("\n")[0]).toBe(`POST ${sb.tokenUrl(id)}`)
      expect(dry.stdout).toContain("Accept: application/json")
      expect(curl.stdout).toMatch(new RegExp(`^curl -sS -X POST '${sb.tokenUrl(id)}'`))
      for (const masked of [dry.stdout, curl.stdout]) {
        expect(masked).toContain("***")
        for (const s of secrets) expect(masked).not.toContain(s)
      }
      for (const s of cases[id].revealed(creds)) expect(shown.stdout).toContain(s)
      expect(shown.stdout).not.toContain("***")

      // First call: one token request, and the token printed is the one the sandbox issued.
      const first = await run("--json")
      expect(first.code, first.stderr).toBe(0)
      expect(first.stderr).toBe("")
      const json = parse(first.stdout)
      expect(Object.keys(json)).toEqual([
        "connection",
        "provider",
        "access_token",
        "token_type",
        "expires_at",
        "expiry_source"
      ])
      expect(json).toMatchObject({ connection: name, provider: id, token_type: expect.stringMatching(/^bearer$/i) })
      const token = json["access_token"] as string
      expect(requests()).toBe(1)
      expect(sb.tokenRequests(id)[0]!.status).toBe(200)
      expect(await acceptedByApi(id, token)).toBe(true)
      const exp = Number(decodeJwt(token)?.payload["exp"])
      expect(Math.abs(Date.parse(json["expires_at"] as string) / 1000 - exp)).toBeLessThanOrEqual(5)

      // Second call, a new process without --json: the token alone (for $(tessera token x)), from the file cache.
      const second = await run()
      expect(second.code, second.stderr).toBe(0)
      expect(second.stdout).toBe(`${token}\n`)
      expect(requests()).toBe(1)

      if (cases[id].refreshes) {
        // A refresh token is cached, so the next renewal would redeem it: --dry-run shows that request, masked.
        const next = await run("--dry-run")
        expect(next.stdout).toContain("grant_type=refresh_token")
        expect(next.stdout).toContain("refresh_token=***")
      }

      // --force renews now, through the refresh token when there is one.
      const forced = await run("--json", "--force")
      expect(forced.code, forced.stderr).toBe(0)
      const renewed = parse(forced.stdout)["access_token"] as string
      expect(renewed).not.toBe(token)
      expect(requests()).toBe(2)
      const [acquired, renewal] = sb.tokenRequests(id)
      expect(renewal!.form?.["grant_type"]).toBe(cases[id].refreshes ? "refresh_token" : acquired!.form?.["grant_type"])
      expect(await acceptedByApi(id, renewed)).toBe(true)

      // --no-cache asks although a fresh token is cached.
      const uncached = await run("--json", "--no-cache")
      expect(uncached.code, uncached.stderr).toBe(0)
      expect(parse(uncached.stdout)["access_token"]).not.toBe(renewed)
      expect(requests()).toBe(3)
    })
  }
})

describe.concurrent("tessera token, failures", () => {
  // A sandbox of their own: the tests above count this sandbox's token requests while these run.
  let own: Sandbox
  beforeAll(async () => {
    own = await startSandbox()
  })
  afterAll(async () => {
    await own?.close()
  })
  const wrong = { cube: "wrong-cube-secret-1234", oauth2: "wrong-oauth2-secret-5678", crm: "WRONGKEY0000111122223333" }
  const setup = () => {
    const cwd = tempDir()
    const text = configText({
      "cube-bad": { provider: "cube", inputs: { ...own.credentials.cube, client_secret: "${env:CUBE_SECRET}" } },
      "oauth2-bad": {
        provider: "oauth2",
        inputs: { ...own.credentials.oauth2, client_secret: "${env:OAUTH2_SECRET}" }
      },
      "crm-bad": { provider: "crm-com", inputs: { ...own.credentials["crm-com"], api_key: "${env:CRM_KEY}" } },
      "unset-env": {
        provider: "dvinci",
        inputs: { ...own.credentials.dvinci, client_secret: "${env:TESSERA_TEST_NEVER_SET}" }
      }
    })
    write(`${cwd}/tessera.yaml`, text)
    return { cwd, text, env: { CUBE_SECRET: wrong.cube, OAUTH2_SECRET: wrong.oauth2, CRM_KEY: wrong.crm } }
  }

  it("a rejected secret exits 1 with one line naming connection, provider and HTTP status, without the secret", async () => {
    const { cwd, env } = setup()
    const [cube, crm] = await Promise.all([
      tessera(["token", "cube-bad"], { cwd, env }),
      tessera(["token", "crm-bad"], { cwd, env })
    ])
    expect(cube.code).toBe(1)
    expect(cube.stdout).toBe("")
    expect(cube.stderr).toMatch(/^tessera: cube-bad \(cube\): provider answered HTTP 400: invalid_client: .+\n$/)
    expect(cube.stderr).not.toContain(wrong.cube)
    // CRM.COM says no with HTTP 200 and status.code AUTH_FAILED.
    expect(crm.code).toBe(1)
    expect(crm.stderr).toMatch(/^tessera: crm-bad \(crm-com\): provider answered HTTP 200: AUTH_FAILED: .+\n$/)
    expect(crm.stderr).not.toContain(wrong.crm)
  })

  it("with --json a failure is one JSON object on stderr carrying the error code", async () => {
    const { cwd, env } = setup()
    const r = await tessera(["token", "oauth2-bad", "--json"], { cwd, env })
    expect(r.code).toBe(1)
    expect(r.stdout).toBe("")
    const error = JSON.parse(r.stderr) as { error: { code: string; message: string } }
    expect(error.error.code).toBe("UpstreamRejected")
    expect(error.error.message).toMatch(/^oauth2-bad \(oauth2\): provider answered HTTP 401: invalid_client: /)
    expect(r.stderr).not.toContain(wrong.oauth2)
    expect(r.stderr).not.toContain(
      Buffer.from(`${own.credentials.oauth2["client_id"]}:${wrong.oauth2}`).toString("base64")
    )
  })

  it("an unknown connection exits 2 and lists the configured ones", async () => {
    const { cwd } = setup()
    const r = await tessera(["token", "nope", "--json"], { cwd })
    expect(r.code).toBe(2)
    expect(JSON.parse(r.stderr)).toEqual({
      error: {
        code: "UnknownConnection",
        message: 'unknown connection "nope" (configured: crm-bad, cube-bad, oauth2-bad, unset-env)'
      }
    })
  })

  it("an unset ${env:VAR} exits 2 naming the variable and its file:line:col, and sends nothing", async () => {
    const { cwd, text } = setup()
    const before = own.tokenRequests("dvinci").length
    const r = await tessera(["token", "unset-env"], { cwd })
    expect(r.code).toBe(2)
    const at = positionOf(text, "${env:TESSERA_TEST_NEVER_SET}") // the reference itself, inside the quotes
    expect(r.stderr).toContain(
      `${cwd}/tessera.yaml:${at.line}:${at.col}: error: connections.unset-env.inputs.client_secret: environment variable TESSERA_TEST_NEVER_SET is not set`
    )
    expect(own.tokenRequests("dvinci").length).toBe(before)
  })

  it("without a config exits 2 and says where it looked", async () => {
    const cwd = tempDir()
    const [none, flag] = await Promise.all([
      tessera(["token", "x"], { cwd }),
      tessera(["token", "x", "--config", "missing.yaml"], { cwd })
    ])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(
      /^tessera: no config file found: no --config flag, TESSERA_CONFIG is not set, and there is no .*tessera\.yaml/
    )
    expect(none.stderr).toContain("pass --config PATH, set TESSERA_CONFIG=PATH, or create ./tessera.yaml")
    expect(flag.code).toBe(2)
    expect(flag.stderr).toBe(
      `tessera: config file ${cwd}/missing.yaml (from --config) does not exist or is not a file\n`
    )
  })

  it("finds the config by --config before TESSERA_CONFIG before ./tessera.yaml", async () => {
    const cwd = tempDir()
    const conn = (name: string) => configText({ [name]: { provider: "cube", inputs: own.credentials.cube } })
    write(`${cwd}/tessera.yaml`, conn("from-cwd"))
    const fromEnv = write(`${cwd}/env/config.yaml`, conn("from-env"))
    const fromFlag = write(`${cwd}/flag/config.yaml`, conn("from-flag"))
    const env = { TESSERA_CONFIG: fromEnv }
    const results = await Promise.all([
      tessera(["token", "from-flag", "--dry-run", "--config", fromFlag], { cwd, env }),
      tessera(["token", "from-env", "--dry-run"], { cwd, env }),
      tessera(["token", "from-cwd", "--dry-run"], { cwd, env }) // TESSERA_CONFIG wins over ./tessera.yaml
    ])
    // (./tessera.yaml alone is how every other test here finds its config.)
    expect(results.map((r) => r.code)).toEqual([0, 0, 2])
  })
})

describe("tessera token --json, the expiry tessera acts on", () => {
  let own: Sandbox
  beforeAll(async () => {
    own = await startSandbox()
  })
  afterAll(async () => {
    await own?.close()
  })

  it("a lifetime from the manifest's default: expires_at is that expiry (as cache list shows), expiry_source says default", async () => {
    const cwd = tempDir()
    write(`${cwd}/tessera.yaml`, configText({ jobs: { provider: "dvinci", inputs: own.credentials.dvinci } }))
    // An opaque token and no expires_in: no expiry source has a value, so d.vinci's default lifetime (3600 s) applies.
    own.inject("dvinci", {
      type: "status",
      status: 200,
      body: JSON.stringify({ access_token: "opaque-without-expiry", token_type: "Bearer" }),
      headers: { "content-type": "application/json" }
    })
    const before = Date.now()
    const r = await tessera(["token", "jobs", "--json"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    const json = parse(r.stdout)
    expect(json).toMatchObject({ access_token: "opaque-without-expiry", expiry_source: "default" })
    const at = Date.parse(json["expires_at"] as string)
    expect(at - before).toBeGreaterThan(3_590_000)
    expect(at - before).toBeLessThanOrEqual(3_600_000 + 5_000)
    const list = await tessera(["cache", "list", "--json"], { cwd })
    const [entry] = (JSON.parse(list.stdout) as { tokens: Array<{ expires_at: string; expiry_source: string }> }).tokens
    expect(entry).toMatchObject({ expires_at: json["expires_at"], expiry_source: "default" })
    // The cached token, in a new process: the same expiry.
    expect(parse((await tessera(["token", "jobs", "--json"], { cwd })).stdout)).toEqual(json)
  })

  it("a lifetime from the provider: expiry_source names the field", async () => {
    const cwd = tempDir()
    write(`${cwd}/tessera.yaml`, configText({ jobs: { provider: "dvinci", inputs: own.credentials.dvinci } }))
    const json = parse((await tessera(["token", "jobs", "--json"], { cwd })).stdout)
    expect(json["expiry_source"]).toBe("expires_in")
  })
})

describe.concurrent("tessera token, a cache that cannot get in the way", () => {
  let own: Sandbox
  beforeAll(async () => {
    own = await startSandbox()
  })
  afterAll(async () => {
    await own?.close()
  })
  const setup = () => {
    const cwd = tempDir()
    write(`${cwd}/tessera.yaml`, configText({ api: { provider: "oauth2", inputs: own.credentials.oauth2 } }))
    return cwd
  }
  const cacheFiles = (cwd: string) => readdirSync(join(cwd, ".cache"))

  it("a full disk (ulimit -f 0 once the key exists): the token is printed, a warning names the path, no temp file is left", async () => {
    const cwd = setup()
    const first = await tessera(["token", "api"], { cwd })
    expect(first.code, first.stderr).toBe(0)
    const runs = await Promise.all([1, 2].map(() => tessera(["token", "api", "--force"], { cwd, fileSizeLimit: 0 })))
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout.trim()).toMatch(/^[\w.-]{20,}$/)
      expect(r.stdout.trim()).not.toBe(first.stdout.trim())
      expect(r.stderr).toMatch(
        new RegExp(
          `cannot write the token cache \\(${cwd}/\\.cache/[0-9a-f]{40}\\.token: EFBIG\\); the token is used but not cached`
        )
      )
      expect(r.stderr).toMatch(new RegExp(`cannot write a cache lock \\(${cwd}/\\.cache/[0-9a-f]{40}\\.lock: EFBIG\\)`))
    }
    expect(cacheFiles(cwd).filter((n) => n.endsWith(".tmp"))).toEqual([])
    // The cache still holds the first token, intact.
    const again = await tessera(["token", "api"], { cwd })
    expect(again.stdout).toBe(first.stdout)
  })

  it("--no-cache and --dry-run need no cache directory; a plain call goes on without one, with a warning", async () => {
    const cwd = setup()
    write(`${cwd}/not-a-dir`, "")
    const env = { TESSERA_CACHE_DIR: `${cwd}/not-a-dir/cache` } // cannot be created, not even by root
    const [noCache, dryRun, plain] = await Promise.all([
      tessera(["token", "api", "--no-cache"], { cwd, env }),
      tessera(["token", "api", "--dry-run"], { cwd, env }),
      tessera(["token", "api"], { cwd, env })
    ])
    expect(noCache.code, noCache.stderr).toBe(0)
    expect(noCache.stdout.trim()).toMatch(/^[\w.-]{20,}$/)
    expect(noCache.stderr).toBe("")
    expect(dryRun.code, dryRun.stderr).toBe(0)
    expect(dryRun.stdout).toMatch(/^POST http:\/\/127\.0\.0\.1:\d+\//)
    expect(dryRun.stderr).toBe("")
    expect(plain.code, plain.stderr).toBe(0)
    expect(plain.stdout.trim()).toMatch(/^[\w.-]{20,}$/)
    expect(plain.stderr).toContain(
      `token cache unavailable (cannot create ${cwd}/not-a-dir/cache: a part of its path is a file, not a directory); going on without a cache`
    )
  })

  it("--dry-run creates no cache directory", async () => {
    const cwd = setup()
    const r = await tessera(["token", "api", "--dry-run"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(existsSync(join(cwd, ".cache"))).toBe(false)
  })

  it("a damaged key file: a warning naming it, a new key, and the token", async () => {
    const cwd = setup()
    expect((await tessera(["token", "api"], { cwd })).code).toBe(0)
    writeFileSync(join(cwd, ".cache", "key"), "")
    const r = await tessera(["token", "api"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.trim()).toMatch(/^[\w.-]{20,}$/)
    expect(r.stderr).toContain(`cache key file ${cwd}/.cache/key is empty: moved it to ${cwd}/.cache/key.damaged-`)
    expect((await tessera(["token", "api"], { cwd })).stderr).toBe("")
  })

  it("a lock left by a killed run is taken over at once, not after 30 s", async () => {
    const cwd = setup()
    expect((await tessera(["token", "api"], { cwd })).code).toBe(0)
    const key = cacheFiles(cwd)
      .find((n) => n.endsWith(".token"))!
      .slice(0, -".token".length)
    const killed = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"])
    killed.kill("SIGKILL")
    await new Promise((r) => killed.on("exit", r))
    write(
      join(cwd, ".cache", `${key}.lock`),
      JSON.stringify({ pid: killed.pid, host: hostname(), started_at: new Date().toISOString(), nonce: "x" })
    )
    const t0 = Date.now()
    const r = await tessera(["token", "api", "--force"], { cwd })
    expect(r.code, r.stderr).toBe(0)
    expect(Date.now() - t0).toBeLessThan(15_000)
    expect(r.stderr).toBe("")
  })
})
