/** What a provider sends reaches the terminal scrubbed and inert, through the real binary against the sandbox:
 *  an error that echoes the whole request shows no secret in any encoding (text and --json), and escape
 *  sequences and control characters in an error, a log line or a JWT claim (`inspect`) are printed as visible
 *  escapes. What a test prints here is also searched by the run-wide secret scan. */
import { registerSecrets, startSandbox, type ProviderId, type Sandbox } from "@tessera/testkit"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cleanup, configText, tempDir, tessera, write } from "./services/cli.ts"

let sb: Sandbox
let cwd: string
beforeAll(async () => {
  sb = await startSandbox()
  cwd = tempDir()
  write(`${cwd}/tessera.yaml`, configText(connections()))
})
afterAll(async () => {
  await sb?.close()
  cleanup()
})

const special = { client_id: "app:42 ü", client_secret: "s3:cr+t %2B ü/x" }
const password = "pa ss+wörd&=x"
const connections = () => ({
  basic: { provider: "oauth2", inputs: { token_url: sb.tokenUrl("oauth2"), ...special } },
  post: {
    provider: "oauth2",
    inputs: {
      token_url: sb.tokenUrl("oauth2"),
      ...special,
      client_auth: "client_secret_post",
      grant_type: "password",
      username: "alice",
      password
    }
  },
  crm: { provider: "crm-com", inputs: sb.credentials["crm-com"] },
  brandbox: { provider: "brandbox", inputs: sb.credentials.brandbox },
  dvinci: { provider: "dvinci", inputs: sb.credentials.dvinci }
})

// Encoded independently of the engine, with Node's own encoders.
const form = (s: string) => new URLSearchParams([["", s]]).toString().slice(1)
const b64 = (s: string) => Buffer.from(s).toString("base64")
const forms = (s: string) => [
  s,
  b64(s),
  Buffer.from(s).toString("base64url"),
  encodeURIComponent(s),
  form(s),
  JSON.stringify(s).slice(1, -1)
]
const basicForms = (id: string, secret: string) => [b64(`${form(id)}:${form(secret)}`), b64(`${id}:${secret}`)]

const cases: ReadonlyArray<{
  name: string
  provider: ProviderId
  secrets: () => ReadonlyArray<string>
  basic?: () => readonly [string, string]
}> = [
  {
    name: "basic",
    provider: "oauth2",
    secrets: () => [special.client_secret],
    basic: () => [special.client_id, special.client_secret]
  },
  { name: "post", provider: "oauth2", secrets: () => [special.client_secret, password] },
  {
    name: "crm",
    provider: "crm-com",
    secrets: () => [sb.credentials["crm-com"]["api_key"]!, sb.credentials["crm-com"]["authentication_code"]!],
    basic: () => [sb.credentials["crm-com"]["api_key"]!, ""]
  },
  { name: "brandbox", provider: "brandbox", secrets: () => [sb.credentials.brandbox["password"]!] },
  { name: "dvinci", provider: "dvinci", secrets: () => [sb.credentials.dvinci["client_secret"]!] }
]

// oxlint-disable-next-line no-control-regex -- the characters a terminal must never receive
const controls = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/

describe("an error that echoes the whole request", () => {
  it("shows the echo but no secret in any encoding, in text and in --json", { timeout: 120_000 }, async () => {
    for (const c of cases) {
      const secrets = c.secrets()
      const pair = c.basic?.()
      registerSecrets("cli-provider-answers", [
        ...secrets,
        ...(pair ? [`${pair[0]}:${pair[1]}`, `${form(pair[0])}:${form(pair[1])}`] : [])
      ])
      for (const json of [false, true]) {
        sb.inject(c.provider, { type: "echo" })
        const r = await tessera(["token", c.name, ...(json ? ["--json"] : [])], { cwd })
        const sent = sb.tokenRequests(c.provider).at(-1)!
        console.log(`tessera token ${c.name}${json ? " --json" : ""}, echoing provider: ${r.stderr}`)
        expect(r.code, r.stderr).toBe(1)
        expect(r.stdout).toBe("")
        const message = json
          ? (JSON.parse(r.stderr) as { error: { code: string; message: string } }).error.message
          : r.stderr
        expect(message).toContain(`${c.name} (${c.provider}): provider answered HTTP 400`)
        expect(message).toContain(`POST ${sent.path}`) // the echo is shown...
        if (pair) expect(message).toContain("authorization: Basic ***")
        // ...without what it carried: the Authorization credentials, the secrets, in any form, raw or JSON-escaped.
        const credentials = sent.headers["authorization"]?.replace(/^Basic /, "")
        const unwanted = [
          ...secrets.flatMap(forms),
          ...(pair ? basicForms(...pair) : []),
          ...(credentials ? [credentials] : [])
        ]
        for (const text of [r.stderr, message]) {
          for (const u of unwanted) expect(text, `${c.name}: ${u}`).not.toContain(u)
          expect(text).not.toMatch(/client_secret=-(&|\\r|\r|$)/) // brandbox's one-character secret
        }
      }
    }
  })
})

// ESC[2J clears the screen, OSC 0 sets the title, OSC 8 makes a hyperlink, CR rewrites the line, BEL rings,
// U+009B is a one-byte CSI and U+202E reverses what follows.
const hostile =
  "\u001b[2J\u001b[31mred\u001b[0m \u001b]0;pwned\u0007 \u001b]8;;https://evil.example\u001b\\link\u001b]8;;\u001b\\ ok\rOVERWRITTEN \u009b31m \u202eesrever \u0000nul"

describe("escape sequences and control characters from a provider", () => {
  it("in an error: printed as visible escapes in text; --json keeps the value and no raw control character", async () => {
    const answer = {
      type: "status",
      status: 400,
      body: JSON.stringify({ error: "invalid_request", error_description: hostile }),
      headers: { "content-type": "application/json" }
    } as const
    sb.inject("dvinci", answer)
    const text = await tessera(["token", "dvinci"], { cwd })
    expect(text.code).toBe(1)
    expect(text.stderr).not.toMatch(controls)
    expect(text.stderr).toContain(
      String.raw`\x1b[2J\x1b[31mred\x1b[0m \x1b]0;pwned\x07 \x1b]8;;https://evil.example\x1b\link\x1b]8;;\x1b\ ok\rOVERWRITTEN \x9b31m \u202eesrever \x00nul`
    )
    sb.inject("dvinci", answer)
    const json = await tessera(["token", "dvinci", "--json"], { cwd })
    expect(json.stderr).not.toMatch(controls)
    expect((JSON.parse(json.stderr) as { error: { message: string } }).error.message).toContain(hostile)
  })

  it("in a log line: the warning that quotes a failing provider's message", async () => {
    expect((await tessera(["token", "dvinci"], { cwd })).code).toBe(0) // a token to fall back on
    sb.inject("dvinci", {
      type: "status",
      status: 400,
      body: JSON.stringify({ error: "invalid_request", error_description: hostile }),
      headers: { "content-type": "application/json" }
    })
    const r = await tessera(["token", "dvinci", "--force"], { cwd }) // renewal fails: the cached token is served
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain("renewal failed, serving the cached token")
    expect(r.stderr).toContain(String.raw`\x1b[2J`)
    expect(r.stderr).not.toMatch(controls)
  })

  it("in a JWT's claims shown by inspect, also a time claim no Date can hold", async () => {
    const claims = { sub: hostile, [`na\u001b[8mme`]: "x", exp: 1e20, iat: Math.floor(Date.now() / 1000) }
    const jwt = `${Buffer.from('{"alg":"none","kid":"\\u001b]0;t\\u0007"}').toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`
    sb.inject("dvinci", {
      type: "status",
      status: 200,
      body: JSON.stringify({ access_token: jwt, token_type: "Bearer", expires_in: 3600 }),
      headers: { "content-type": "application/json" }
    })
    expect((await tessera(["token", "dvinci", "--force"], { cwd })).stdout).toBe(`${jwt}\n`)
    const text = await tessera(["inspect", "dvinci"], { cwd })
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).not.toMatch(controls)
    expect(text.stdout).toMatch(/\n {4}sub +\\x1b\[2J\\x1b\[31mred/)
    expect(text.stdout).toContain(String.raw`na\x1b[8mme`)
    expect(text.stdout).toContain(String.raw`"kid":"\u001b]0;t\u0007"`)
    expect(text.stdout).toMatch(/\n {4}exp +100000000000000000000\n/) // no date: it would be past the year 275760
    const json = await tessera(["inspect", "dvinci", "--json"], { cwd })
    expect(json.stdout).not.toMatch(controls)
    expect((JSON.parse(json.stdout) as { jwt: { claims: unknown } }).jwt.claims).toEqual(claims)
  })
})
