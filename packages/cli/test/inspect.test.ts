/** `tessera inspect`: a connection's provider, masked inputs, flows, next token request, cache state and JWT
 *  claims, with no network call and never a secret or the token. */
import { decodeJwt, startSandbox, type Sandbox } from "@tessera/testkit"
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

const setup = (username = sb.credentials.brandbox["username"]!) => {
  const cwd = tempDir()
  write(
    `${cwd}/tessera.yaml`,
    configText({
      bb: { provider: "brandbox", inputs: { ...sb.credentials.brandbox, username, password: "${env:BB_PASSWORD}" } }
    })
  )
  const env = { BB_PASSWORD: sb.credentials.brandbox["password"]! }
  return { cwd, env, run: (...args: string[]) => tessera(args, { cwd, env }) }
}

interface Inspection {
  connection: string
  provider: { id: string; name: string; docs: string | null; source: string }
  inputs: Array<{ name: string; value: string; secret: boolean }>
  kind: string
  flows: { acquire: Record<string, unknown>; refresh: Record<string, unknown> | null }
  request: { flow: string; method: string; url: string; headers: Record<string, string>; body: string | null }
  api: { base_url: string | null; header: string; value: string }
  cache: Record<string, unknown>
  jwt: { verified: false; header: Record<string, unknown>; claims: Record<string, unknown> } | null
}

describe.concurrent("tessera inspect", () => {
  it("before any token: provider, masked inputs, flows and the masked request, nothing cached, nothing sent", async () => {
    // A user name of its own, to tell this test's requests (there must be none) from the other test's.
    const { run } = setup("inspect-only")
    const [text, json, unknown] = await Promise.all([
      run("inspect", "bb"),
      run("inspect", "bb", "--json"),
      run("inspect", "nope")
    ])
    expect(
      sb.requests.filter((r) => r.form?.["username"] === "inspect-only" || r.rawBody.includes("inspect-only"))
    ).toEqual([])
    expect(text.code, text.stderr).toBe(0)
    expect(json.code, json.stderr).toBe(0)
    const i = JSON.parse(json.stdout) as Inspection
    expect(Object.keys(i)).toEqual([
      "connection",
      "provider",
      "inputs",
      "kind",
      "flows",
      "request",
      "api",
      "cache",
      "jwt"
    ])
    expect(i.kind).toBe("oauth2")
    expect(i.provider).toEqual({
      id: "brandbox",
      name: "brandbox",
      docs: "https://www.brandbox.de/",
      source: "bundled"
    })
    expect(i.inputs.find((x) => x.name === "password")).toEqual({ name: "password", value: "***", secret: true })
    expect(i.inputs.find((x) => x.name === "username")).toEqual({
      name: "username",
      value: "inspect-only",
      secret: false
    })
    expect(i.flows.acquire).toEqual({
      method: "POST",
      url: sb.tokenUrl("brandbox"),
      grant_type: "password",
      encoding: "form",
      client_auth: "client_secret_post"
    })
    expect(i.flows.refresh).toMatchObject({ grant_type: "refresh_token" })
    expect(i.request).toMatchObject({ flow: "acquire", method: "POST", url: sb.tokenUrl("brandbox") })
    expect(i.request.body).toContain("password=***")
    expect(i.api).toEqual({
      base_url: `${sb.base("brandbox")}/rest/v4`,
      header: "Authorization",
      value: "Bearer {{ token.access_token }}"
    })
    expect(i.cache).toMatchObject({ store: "file", cached: false, expires_at: null })
    expect(i.jwt).toBeNull()
    expect(text.stdout).toMatch(/^Connection +bb$/m)
    expect(text.stdout).toMatch(/^ {2}password +\*\*\* \(secret\)$/m)
    expect(text.stdout).toContain("Next token request (acquire, secrets masked, not sent)")
    expect(text.stdout).toContain("no cached token (tessera token bb gets one)")
    for (const out of [text.stdout, json.stdout]) expect(out).not.toContain(sb.credentials.brandbox["password"])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toBe('tessera: unknown connection "nope" (configured: bb)\n')
  })

  it("after a token: cache state and the JWT's claims, decoded and not verified; never the token itself", async () => {
    const { run } = setup()
    const got = await run("token", "bb", "--json")
    expect(got.code, got.stderr).toBe(0)
    const token = (JSON.parse(got.stdout) as { access_token: string }).access_token
    const tokens = sb.tokenRequests("brandbox").length
    const [text, json] = await Promise.all([run("inspect", "bb"), run("inspect", "bb", "--json")])
    expect(sb.tokenRequests("brandbox").length).toBe(tokens)
    expect(text.code, text.stderr).toBe(0)
    const i = JSON.parse(json.stdout) as Inspection
    expect(i.cache).toMatchObject({
      store: "file",
      cached: true,
      freshness: "fresh",
      has_refresh_token: true,
      expiry_source: "expires_in"
    })
    expect(i.cache["age_seconds"]).toBeGreaterThanOrEqual(0)
    expect(i.cache["expires_in_seconds"]).toBeGreaterThan(3000)
    // With a refresh token cached, the next request redeems it, masked.
    expect(i.request.flow).toBe("refresh")
    expect(i.request.body).toContain("refresh_token=***")
    const jwt = decodeJwt(token)!
    expect(i.jwt).toEqual({ verified: false, header: jwt.header, claims: jwt.payload })
    expect(i.jwt?.claims["sub"]).toBe("bb-user")
    expect(text.stdout).toContain("Access token (JWT): header and claims, decoded, not verified")
    expect(text.stdout).toMatch(/^ {4}sub +bb-user$/m)
    expect(text.stdout).toMatch(new RegExp(`^ {4}exp +${String(jwt.payload["exp"])} {2}\\(\\d{4}-\\d\\d-\\d\\dT`, "m"))
    expect(text.stdout).toMatch(/^ {2}freshness +fresh$/m)
    for (const out of [text.stdout, json.stdout, text.stderr, json.stderr]) {
      expect(out).not.toContain(token)
      expect(out).not.toContain(token.split(".")[2]) // not even the signature
      expect(out).not.toContain(sb.credentials.brandbox["password"])
    }
  })
})
