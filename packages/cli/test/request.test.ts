/** `tessera request` against the sandbox APIs: paths under api.base_url with a query, JSON bodies from the
 *  command line, a file and stdin, extra headers, -i and --json, the one invalidate-and-retry after a 401, error
 *  answers (exit 1, body still printed), command-line mistakes (exit 2), and never the Authorization value. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, configText, hasScript, tempDir, tessera, tesseraTty, write } from "./services/cli.ts"

let sb: Sandbox
let cwd: string
/** Another origin on this machine, recording the Authorization header of every request it gets. */
let other: http.Server
let otherUrl: string
const otherSaw: Array<string | undefined> = []
beforeAll(async () => {
  other = http.createServer((req, res) => {
    otherSaw.push(req.headers.authorization)
    res.setHeader("content-type", "application/json")
    res.end('{"other":true}')
  })
  await new Promise<void>((r) => other.listen(0, "127.0.0.1", () => r()))
  otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}`
  sb = await startSandbox()
  cwd = tempDir()
  write(
    `${cwd}/tessera.yaml`,
    configText({
      jobs: { provider: "dvinci", inputs: { ...sb.credentials.dvinci, client_secret: "${env:DVINCI_SECRET}" } },
      bb: { provider: "brandbox", inputs: { ...sb.credentials.brandbox, password: "${env:BB_PASSWORD}" } },
      // Without api_base_url: oauth2's api.base_url then has nothing to resolve a path against.
      idp: {
        provider: "oauth2",
        inputs: Object.fromEntries(Object.entries(sb.credentials.oauth2).filter(([k]) => k !== "api_base_url"))
      }
    })
  )
})
afterAll(async () => {
  await sb?.close()
  await new Promise<void>((r) => (other ? other.close(() => r()) : r()))
  cleanup()
})

const env = () => ({
  DVINCI_SECRET: sb.credentials.dvinci["client_secret"]!,
  BB_PASSWORD: sb.credentials.brandbox["password"]!
})
const run = (args: ReadonlyArray<string>, input?: string) =>
  tessera(["request", ...args], { cwd, env: env(), ...(input === undefined ? {} : { input }) })
const apiCalls = (provider: "dvinci" | "brandbox", path: string) =>
  sb.requests.filter((r) => r.kind === "api" && r.provider === provider && r.path.startsWith(path))

/** Everything a call printed must hold neither the Authorization value nor the token nor a secret. */
const expectNoSecrets = (texts: ReadonlyArray<string>, provider: "dvinci" | "brandbox") => {
  const authorizations = sb.requests
    .filter((r) => r.kind === "api" && r.provider === provider)
    .map((r) => r.headers["authorization"]!)
  expect(authorizations.length).toBeGreaterThan(0)
  const secrets = [
    ...authorizations,
    ...authorizations.map((a) => a.replace(/^Bearer /, "")),
    sb.credentials.dvinci["client_secret"]!,
    sb.credentials.brandbox["password"]!
  ]
  for (const t of texts) for (const s of secrets) expect(t).not.toContain(s)
}

describe.concurrent("tessera request", () => {
  it("after a 401, invalidates the token and retries once with a new one", async () => {
    // A sandbox of its own: revoking d.vinci tokens here must not disturb the other tests' calls and counts.
    const own = await startSandbox()
    try {
      const dir = tempDir()
      write(`${dir}/tessera.yaml`, configText({ jobs: { provider: "dvinci", inputs: own.credentials.dvinci } }))
      const call = (path: string) => tessera(["request", "jobs", "GET", path], { cwd: dir })
      const warm = await call("/warm")
      expect(warm.code, warm.stderr).toBe(0)
      expect(own.tokenRequests("dvinci")).toHaveLength(1)
      own.revokeTokens("dvinci")
      const r = await call("/after-revoke")
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe("")
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, path: "/dvinci/restApi/after-revoke" })
      expect(own.tokenRequests("dvinci")).toHaveLength(2) // exactly one new token
      const calls = own.requests.filter((c) => c.kind === "api" && c.path === "/dvinci/restApi/after-revoke")
      expect(calls.map((c) => c.status)).toEqual([401, 200])
      expect(calls[0]!.headers["authorization"]).not.toBe(calls[1]!.headers["authorization"])
    } finally {
      await own.close()
    }
  })

  it("GET with a query, POST -d JSON with -H, a body from @file (--json) and from stdin (-i)", async () => {
    write(`${cwd}/job.json`, '{"title":"from a file"}')
    const [get, post, file, include] = await Promise.all([
      run(["jobs", "GET", "/dvinciUsers?active=true&page=2"]),
      run([
        "jobs",
        "POST",
        "/jobs",
        "-d",
        '{"title":"Engineer","remote":true}',
        "-H",
        "X-Trace: t-123",
        "-H",
        "Accept-Language: de"
      ]),
      run(["jobs", "put", "/jobs/7", "-d", "@job.json", "--json"]),
      run(["jobs", "PATCH", "/jobs/8", "-d", "-", "-i"], '{"from":"stdin"}')
    ])
    for (const r of [get, post, file, include]) {
      expect(r.code, r.stderr).toBe(0)
      expect(r.stderr).toBe("")
    }
    // The body exactly as the API sent it: no newline added off a terminal.
    expect(JSON.parse(get.stdout)).toEqual({
      ok: true,
      method: "GET",
      path: "/dvinci/restApi/dvinciUsers",
      query: { active: "true", page: "2" },
      body: null
    })
    expect(get.stdout.endsWith("}")).toBe(true)
    expect(JSON.parse(post.stdout)).toMatchObject({
      method: "POST",
      path: "/dvinci/restApi/jobs",
      body: { title: "Engineer", remote: true }
    })
    const sent = apiCalls("dvinci", "/dvinci/restApi/jobs").find((c) => c.method === "POST")!
    expect(sent.headers["x-trace"]).toBe("t-123")
    expect(sent.headers["accept-language"]).toBe("de")
    expect(sent.headers["content-type"]).toBe("application/json")
    const json = JSON.parse(file.stdout) as { status: number; headers: Record<string, string>; body: unknown }
    expect(Object.keys(json)).toEqual(["status", "headers", "body"])
    expect(json.status).toBe(200)
    expect(json.headers["content-type"]).toMatch(/^application\/json/)
    expect(json.body).toMatchObject({ method: "PUT", path: "/dvinci/restApi/jobs/7", body: { title: "from a file" } })
    const [head, body] = include.stdout.split("\n\n") as [string, string]
    expect(head.split("\n")[0]).toBe("HTTP/1.1 200 OK")
    expect(head).toMatch(/^content-type: application\/json/m)
    expect(JSON.parse(body)).toMatchObject({ method: "PATCH", path: "/dvinci/restApi/jobs/8", body: { from: "stdin" } })
    expectNoSecrets(
      [get, post, file, include].flatMap((r) => [r.stdout, r.stderr]),
      "dvinci"
    )
  })

  it("an answer of 400 or more exits 1 with its body on stdout and the status on stderr", async () => {
    sb.injectApi("brandbox", {
      type: "status",
      status: 500,
      body: '{"error":"boom"}',
      headers: { "content-type": "application/json" }
    })
    const [notFound, failed] = await Promise.all([
      run(["jobs", "GET", `${sb.base("dvinci")}/not-the-api`]), // absolute URL, outside the API: the sandbox's 404
      run(["bb", "DELETE", "/assets/1", "--json"])
    ])
    expect(notFound.code).toBe(1)
    expect(JSON.parse(notFound.stdout)).toMatchObject({ error: "not_found" })
    expect(notFound.stderr).toBe(
      `tessera: jobs (dvinci): GET ${sb.base("dvinci")}/not-the-api answered HTTP 404 Not Found\n`
    )
    expect(failed.code).toBe(1)
    expect(JSON.parse(failed.stdout)).toMatchObject({ status: 500, body: { error: "boom" } })
    expect(JSON.parse(failed.stderr)).toEqual({
      error: {
        code: "ApiStatus",
        message: `bb (brandbox): DELETE ${sb.base("brandbox")}/rest/v4/assets/1 answered HTTP 500 Internal Server Error`
      }
    })
    expectNoSecrets(
      [notFound, failed].flatMap((r) => [r.stdout, r.stderr]),
      "brandbox"
    )
  })

  it("command-line and config mistakes exit 2 and send nothing to the API", async () => {
    const [unknown, relative, header, auth, twice] = await Promise.all([
      run(["nope", "GET", "/x", "--json"]),
      run(["idp", "GET", "/me"]),
      run(["jobs", "GET", "/x", "-H", "no colon"]),
      run(["jobs", "GET", "/x", "-H", "Authorization: Bearer mine"]),
      run(["jobs", "GET", "/a/%252e%252e/x"])
    ])
    for (const r of [unknown, relative, header, auth, twice]) {
      expect(r.code, r.stderr).toBe(2)
      expect(r.stdout).toBe("")
    }
    expect(JSON.parse(unknown.stderr)).toEqual({
      error: { code: "UnknownConnection", message: 'unknown connection "nope" (configured: bb, idp, jobs)' }
    })
    expect(relative.stderr).toBe(
      "tessera: /me is a relative path, and oauth2's api.base_url needs inputs.api_base_url, which connection idp does not set (set api_base_url in the connection's inputs, or pass an absolute URL)\n"
    )
    expect(header.stderr).toBe(`tessera: -H "no colon" is not a header (write it as -H 'Name: value')\n`)
    expect(auth.stderr).toBe(
      "tessera: -H Authorization is set by tessera, from the token (dvinci's apply rule puts the token in Authorization)\n"
    )
    expect(twice.stderr).toMatch(/^tessera: \/a\/%252e%252e\/x has a "\.", "\/" or "\\" percent-encoded twice/)
    expect(sb.requests.filter((r) => r.kind === "api" && /\/(x|me)$/.test(r.path))).toEqual([])
  })

  it("a token cache that cannot be opened does not stand in the way: the call is made, with a warning", async () => {
    write(`${cwd}/not-a-dir`, "")
    const broken = { ...env(), TESSERA_CACHE_DIR: `${cwd}/not-a-dir/cache` }
    const [request, inspect] = await Promise.all([
      tessera(["request", "jobs", "GET", "/no-cache"], { cwd, env: broken }),
      tessera(["inspect", "jobs"], { cwd, env: broken })
    ])
    expect(request.code, request.stderr).toBe(0)
    expect(JSON.parse(request.stdout)).toMatchObject({ ok: true })
    expect(request.stderr).toContain(`token cache unavailable (cannot create ${cwd}/not-a-dir/cache`)
    expect(inspect.code, inspect.stderr).toBe(0)
  })

  it("refuses an absolute URL outside the API origin unless --allow-foreign-origin, which is logged", async () => {
    const [refused, allowed] = await Promise.all([
      run(["jobs", "GET", `${otherUrl}/collect?page=1`]),
      run(["jobs", "GET", `${otherUrl}/collect`, "--allow-foreign-origin"])
    ])
    const apiOrigin = new URL(sb.base("dvinci")).origin
    expect(refused.code).toBe(2)
    expect(refused.stdout).toBe("")
    expect(refused.stderr).toBe(
      `tessera: ${otherUrl}/collect is outside connection jobs's API origin ${apiOrigin} (tessera sends the token only to the API origin; pass --allow-foreign-origin to send it there anyway)\n`
    )
    expect(allowed.code, allowed.stderr).toBe(0)
    expect(JSON.parse(allowed.stdout)).toEqual({ other: true })
    expect(allowed.stderr).toMatch(
      new RegExp(`WARN.*sending connection jobs's token to ${otherUrl}, outside its API origin ${apiOrigin}`)
    )
    // Only the allowed call reached the other origin.
    expect(otherSaw).toHaveLength(1)
    expect(otherSaw[0]).toMatch(/^Bearer /)
  })

  it.skipIf(!hasScript)("on a terminal, a slow call shows a spinner on stderr and erases it", async () => {
    const tty = tempDir()
    write(
      `${tty}/tessera.yaml`,
      configText({ slow: { provider: "usage-engine", inputs: sb.credentials["usage-engine"] } })
    )
    sb.inject("usage-engine", { type: "delay", ms: 900 })
    const r = await tesseraTty(["request", "slow", "GET", `${sb.base("usage-engine")}/api/slow`], { cwd: tty })
    expect(r.code, r.output).toBe(0)
    const label = `GET ${sb.base("usage-engine")}/api/slow`
    expect(r.output).toMatch(new RegExp(`\\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] ${label.replace(/[.?*+^$[\]\\(){}|-]/g, "\\$&")}`))
    // Erased with spaces before the body; the body ends with a newline on a terminal.
    expect(r.output).toMatch(/\r +\r\{"ok":true/)
    expect(r.output.endsWith("}\r\n")).toBe(true)
  })

  it.skipIf(!hasScript)(
    "on a terminal, an API's escape sequences are shown escaped; a pipe gets the bytes as sent",
    async () => {
      // A sandbox of its own: the API faults injected here must not answer the other tests' calls.
      const own = await startSandbox()
      try {
        const dir = tempDir()
        write(
          `${dir}/tessera.yaml`,
          configText({ ue: { provider: "usage-engine", inputs: own.credentials["usage-engine"] } })
        )
        const hostile = '{"note":"\u001b]0;pwned\u0007\u001b[2Jcleared"}'
        const reply = {
          type: "status" as const,
          status: 200,
          body: hostile,
          headers: { "content-type": "application/json" }
        }
        const url = `${own.base("usage-engine")}/api/esc`
        own.injectApi("usage-engine", reply)
        const onTty = await tesseraTty(["request", "ue", "GET", url], { cwd: dir })
        expect(onTty.code, onTty.output).toBe(0)
        expect(onTty.output).not.toContain("\u001b")
        expect(onTty.output).toContain("\\x1b]0;pwned\\x07\\x1b[2Jcleared")
        own.injectApi("usage-engine", reply)
        const piped = await tessera(["request", "ue", "GET", url], { cwd: dir })
        expect(piped.stdout).toBe(hostile)
      } finally {
        await own.close()
      }
    }
  )
})
