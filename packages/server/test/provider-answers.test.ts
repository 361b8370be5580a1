/** Hostile provider answers through the server, over a real socket (127.0.0.1:0) against the sandbox: an error
 *  that echoes the whole request gives a 502 problem whose `detail` and `provider_message` show the echo but no
 *  secret in any encoding; a token that would break a header write, or an expiry beyond 10 years, is a 502
 *  ResponseInvalid naming the field. Problem.fromFailure scrubs provider text by itself too. */
import { registerSecrets, type ProviderId, type Sandbox } from "@tessera/testkit"
import { TokenError } from "@tessera/engine"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { Problem } from "../src/index.ts"
import { OPS_KEY, capture, leaks, parseConfig, raw, sandbox, start } from "./services/harness.ts"

let sb: Sandbox
let s: RunningServer
const captured = capture()
const ops = { authorization: `Bearer ${OPS_KEY}` }

const special = { client_id: "app:42 ü", client_secret: "s3:cr+t %2B ü/x" }
const password = "pa ss+wörd&=x"
const inputs = (creds: Record<string, string>) =>
  Object.entries(creds)
    .map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`)
    .join("\n")

beforeAll(async () => {
  sb = await sandbox()
  const connections: Record<string, [string, Record<string, string>]> = {
    basic: ["oauth2", { token_url: sb.tokenUrl("oauth2"), ...special }],
    post: [
      "oauth2",
      {
        token_url: sb.tokenUrl("oauth2"),
        ...special,
        client_auth: "client_secret_post",
        grant_type: "password",
        username: "alice",
        password
      }
    ],
    crm: ["crm-com", sb.credentials["crm-com"]],
    brandbox: ["brandbox", sb.credentials.brandbox],
    jobs: ["dvinci", sb.credentials.dvinci]
  }
  const text = [
    "connections:",
    ...Object.entries(connections).map(([n, [p, i]]) => `  ${n}:\n    provider: ${p}\n    inputs:\n${inputs(i)}`),
    "server:",
    "  api_keys:",
    `    - { name: ops, key: "\${env:OPS_KEY}", connections: ["*"] }`,
    "http: { timeout_ms: 2000, total_timeout_ms: 3000, retries: 0 }"
  ].join("\n")
  s = await start(await parseConfig(`${text}\n`), captured)
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
})

const form = (v: string) => new URLSearchParams([["", v]]).toString().slice(1)
const b64 = (v: string) => Buffer.from(v).toString("base64")
const forms = (v: string) => [v, b64(v), encodeURIComponent(v), form(v), JSON.stringify(v).slice(1, -1)]

const get = (name: string) => raw(s.url, `/v1/connections/${name}/token`, { headers: ops }, captured)

describe("a provider that echoes the request in its error", () => {
  const crmKey = () => sb.credentials["crm-com"]["api_key"]!
  const cases: ReadonlyArray<
    readonly [string, ProviderId, () => ReadonlyArray<string>, (() => readonly [string, string])?]
  > = [
    ["basic", "oauth2", () => [special.client_secret], () => [special.client_id, special.client_secret]],
    ["post", "oauth2", () => [special.client_secret, password]],
    [
      "crm",
      "crm-com",
      () => [sb.credentials["crm-com"]["api_key"]!, sb.credentials["crm-com"]["authentication_code"]!],
      () => [crmKey(), ""]
    ],
    ["brandbox", "brandbox", () => [sb.credentials.brandbox["password"]!]],
    ["jobs", "dvinci", () => [sb.credentials.dvinci["client_secret"]!]]
  ]
  for (const [name, provider, secretsOf, pairOf] of cases) {
    it(`${name} (${provider}): 502 with the echo in detail and provider_message, no secret in any encoding`, async () => {
      const secrets = secretsOf()
      const pair = pairOf?.()
      registerSecrets("server-provider-answers", [
        ...secrets,
        ...(pair ? [`${pair[0]}:${pair[1]}`, `${form(pair[0])}:${form(pair[1])}`] : [])
      ])
      sb.inject(provider, { type: "echo" })
      const r = await get(name)
      console.log(`GET /v1/connections/${name}/token, echoing provider: ${r.text}`)
      expect(r.status).toBe(502)
      const p = r.json<{ code: string; detail: string; provider_message: string }>()
      expect(p.code).toBe("UpstreamRejected")
      const sent = sb.tokenRequests(provider).at(-1)!
      for (const text of [p.detail, p.provider_message]) expect(text).toContain(`POST ${sent.path}`)
      if (pair) expect(p.provider_message).toContain("authorization: Basic ***")
      const credentials = sent.headers["authorization"]?.replace(/^Basic /, "")
      const unwanted = [
        ...secrets.flatMap(forms),
        ...(pair ? [b64(`${form(pair[0])}:${form(pair[1])}`), b64(`${pair[0]}:${pair[1]}`)] : []),
        ...(credentials ? [credentials] : [])
      ]
      for (const text of [r.text, p.detail, p.provider_message]) {
        for (const u of unwanted) expect(text, u).not.toContain(u)
        expect(text).not.toMatch(/client_secret=-(&|\\r|\r|$)/) // brandbox's one-character secret
      }
    })
  }

  it("no secret reached the server's logs either", async () => {
    const metrics = (await raw(s.url, "/metrics", { headers: ops })).text
    expect(leaks(sb, captured, metrics)).toEqual([])
  })
})

describe("hostile token responses", () => {
  const answer = (fields: Record<string, unknown>, body?: string) =>
    ({
      type: "status",
      status: 200,
      body: body ?? JSON.stringify({ access_token: "fine", token_type: "Bearer", expires_in: 3600, ...fields }),
      headers: { "content-type": "application/json" }
    }) as const

  for (const [name, fields, field] of [
    ["an access token with CR LF", { access_token: "tok\r\nX-Injected: 1" }, "access_token"],
    ["a token_type with a NUL", { token_type: "Bearer\u0000" }, "token_type"],
    ["an access token of spaces", { access_token: "   " }, "access_token"],
    ["expires_in 1e13", { expires_in: 1e13 }, "expires_in"]
  ] as const) {
    it(`${name}: 502 ResponseInvalid naming ${field}, twice, and the server keeps serving`, async () => {
      sb.inject("dvinci", answer(fields), 2)
      for (const _ of [1, 2]) {
        const r = await get("jobs")
        expect(r.status).toBe(502)
        expect(r.json()).toMatchObject({ code: "ResponseInvalid" })
        expect(r.json<{ detail: string }>().detail).toContain(`: ${field}: `)
      }
      expect((await raw(s.url, "/healthz")).status).toBe(200)
    })
  }
})

describe("Problem.fromFailure scrubs provider text itself", () => {
  const rejected = (providerMessage: string, code = "invalid_client") =>
    new TokenError.UpstreamRejected({
      connection: "c",
      provider: "p",
      status: 401,
      code,
      providerMessage,
      kind: "other",
      attempts: 1
    })

  it("the connection's secrets in any encoding, in detail, provider_message and upstream_code", () => {
    const secret = "s3:cr+t ü"
    for (const f of forms(secret)) {
      const p = Problem.fromFailure(rejected(`got ${f}`, `code-${f}`), "/x", "req-1", [secret]).body
      for (const text of [p.detail, p["provider_message"], p["upstream_code"]]) expect(text).not.toContain(f)
      expect(p["provider_message"]).toBe("got ***")
    }
  })

  it("credentials in named places without knowing them", () => {
    const p = Problem.fromFailure(
      rejected("echo: authorization: Basic YTpi\r\nbody: client_secret=zzz&grant_type=x"),
      "/x",
      "req-1"
    ).body
    expect(p["provider_message"]).toBe("echo: authorization: Basic ***\r\nbody: client_secret=***&grant_type=x")
    expect(p.detail).not.toContain("YTpi")
  })
})
