/** A tenant's key (a key with tags) may not point a connection at this machine or its private network: the token
 *  request and the proxy would then reach services there across the tenant boundary (SSRF). Every endpoint the
 *  connection would contact is checked as the manifest renders it, so a host-name input cannot get around it.
 *  Keys without tags (the operator's) keep the old behaviour; `server.tenant_private_targets: true` allows it. */
import type { Sandbox } from "@tessera/testkit"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { RunningServer } from "../src/index.ts"
import { capture, keyed, parseConfig, sandbox, start, type Reply } from "./services/harness.ts"

const ADMIN = "ssrf-admin-key-4c1d9e7b2a6f"
const ACME = "ssrf-acme-key-8e2b5d1c7f3a"

let sb: Sandbox
let dir: string
let s: RunningServer
const captured = capture()

/** A provider whose token URL is built from a host name, not a URL input: `http://<host>/dvinci/plt/oauth2/token`. */
const hosted = [
  "id: hosted",
  "name: Hosted",
  "inputs:",
  "  host: { title: Host name }",
  "  client_id: { title: Client id }",
  "  client_secret: { title: Client secret, secret: true }",
  "flows:",
  "  acquire:",
  '    url: "http://{{ inputs.host }}/dvinci/plt/oauth2/token"',
  "    grant_type: client_credentials",
  "    encoding: form",
  "    client_auth: { method: client_secret_post }",
  "api:",
  '  base_url: "http://{{ inputs.host }}/dvinci/restApi"',
  ""
].join("\n")

const configText = (allow: boolean | undefined) =>
  [
    `providers: ["${dir}"]`,
    "server:",
    ...(allow === undefined ? [] : [`  tenant_private_targets: ${allow}`]),
    "  api_keys:",
    `    - { name: admin, key: "${ADMIN}", scopes: [token, "connections:read", "connections:write"] }`,
    `    - { name: acme, key: "${ACME}", tags: { tenant: acme }, scopes: [token, "connections:read", "connections:write"] }`
  ].join("\n")

beforeAll(async () => {
  sb = await sandbox()
  dir = mkdtempSync(join(tmpdir(), "tessera-ssrf-"))
  writeFileSync(join(dir, "hosted.yaml"), hosted)
  s = await start(await parseConfig(configText(undefined)), captured, { connections: "memory" })
})
afterAll(async () => {
  await s?.close()
  await sb?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const call = (key: string, method: string, path: string, body?: unknown): Promise<Reply> =>
  keyed(s.url, key, method, path, body, captured)

const dvinci = (inputs: Record<string, string>) => ({
  provider: "dvinci",
  inputs: { ...sb.credentials.dvinci, ...inputs },
  tags: { tenant: "acme" }
})

const sandboxHost = () => new URL(sb.url).host

const refused = (r: Reply) => {
  expect(r.status, r.text).toBe(422)
  const errors = r.json().errors as Array<{ path: string; message: string }>
  for (const e of errors) {
    expect(e.message).toMatch(/points at a loopback\/private address .*a tenant's key may not/)
    expect(e.message).toContain("server.tenant_private_targets: true")
    expect(e.message).not.toContain(sb.credentials.dvinci["client_secret"]!)
  }
  return errors.map((e) => e.path).sort()
}

const privateUrls = [
  "http://127.0.0.1:9",
  "https://127.0.0.2",
  "https://localhost",
  "https://api.localhost",
  "https://[::1]",
  "https://[0:0:0:0:0:0:0:1]",
  "https://0.0.0.0",
  "https://[::]",
  "https://10.0.0.5",
  "https://172.16.3.4",
  "https://172.31.255.255",
  "https://192.168.1.1",
  "https://100.64.0.1",
  "https://169.254.169.254",
  "https://[fc00::1]",
  "https://[fd12:3456::1]",
  "https://[fe80::1]",
  "https://[::ffff:127.0.0.1]",
  "https://[::ffff:169.254.169.254]",
  "https://2130706433",
  "https://0x7f.1",
  "https://0177.0.0.1",
  "https://127.1"
]

describe("a tenant's key, with the default settings", () => {
  it("is refused every loopback, private, link-local and unspecified address, in every spelling; nothing stored", async () => {
    for (const [i, url] of privateUrls.entries()) {
      const r = await call(ACME, "PUT", `/v1/connections/ssrf-${i}`, dvinci({ base_url: url }))
      expect(refused(r), url).toEqual(["/inputs/base_url"])
      expect((await call(ADMIN, "GET", `/v1/connections/ssrf-${i}`)).status, url).toBe(404)
    }
    // The normalized host is named: 0x7f.1 is 127.0.0.1.
    const r = await call(ACME, "PUT", "/v1/connections/ssrf-hex", dvinci({ base_url: "https://0x7f.1" }))
    expect(r.json().errors[0].message).toContain("(127.0.0.1: loopback)")
  })

  it("is refused the sandbox on 127.0.0.1, a token_url of its own, and one problem per input", async () => {
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-sb", dvinci({})))).toEqual(["/inputs/base_url"])
    const token = dvinci({ base_url: "https://jobs.example.com", token_url: "https://10.1.2.3/token" })
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-t", token))).toEqual(["/inputs/token_url"])
    const both = dvinci({ base_url: "https://[fe80::1]", token_url: "https://192.168.0.1/token" })
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-b", both))).toEqual([
      "/inputs/base_url",
      "/inputs/token_url"
    ])
  })

  it("is refused a host-name input that renders into a loopback token URL, and a non-URL input in the API URL", async () => {
    const host = {
      provider: "hosted",
      inputs: { ...sb.credentials.dvinci, host: sandboxHost() },
      tags: { tenant: "acme" }
    }
    delete (host.inputs as Record<string, string>)["base_url"]
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-host", host))).toEqual(["/inputs/host"])
    // A host name followed by a fragment still lands on 127.0.0.1: the rendered URL is what is parsed.
    const trick = { ...host, inputs: { ...host.inputs, host: "127.0.0.1#.example.com" } }
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-trick", trick))).toEqual(["/inputs/host"])
    // usage-engine's API base URL is its `audience`, a plain string input.
    const audience = {
      provider: "usage-engine",
      inputs: {
        ...sb.credentials["usage-engine"],
        token_url: "https://idp.example.com/token",
        audience: "https://10.9.8.7/api"
      },
      tags: { tenant: "acme" }
    }
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-aud", audience))).toEqual(["/inputs/audience"])
    // oauth2's discovery issuer and its authorization, device and API URLs.
    const oauth = (inputs: Record<string, string>) => ({
      provider: "oauth2",
      inputs: { client_id: "c", client_secret: "s", ...inputs },
      tags: { tenant: "acme" }
    })
    const issuer = await call(ACME, "PUT", "/v1/connections/ssrf-iss", oauth({ issuer: "https://169.254.169.254" }))
    expect(refused(issuer)).toEqual(["/inputs/issuer"])
    const others = oauth({
      token_url: "https://idp.example.com/token",
      grant_type: "authorization_code",
      authorize_url: "https://10.0.0.1/authorize",
      device_authorization_url: "https://[fd00::2]/device",
      api_base_url: "https://localhost/api"
    })
    expect(refused(await call(ACME, "PUT", "/v1/connections/ssrf-oauth", others))).toEqual([
      "/inputs/api_base_url",
      "/inputs/authorize_url",
      "/inputs/device_authorization_url"
    ])
    expect((await call(ADMIN, "GET", "/v1/connections/ssrf-host")).status).toBe(404)
    expect((await call(ADMIN, "GET", "/v1/connections/ssrf-aud")).status).toBe(404)
  })

  it("may still use public hosts", async () => {
    const r = await call(ACME, "PUT", "/v1/connections/ssrf-public", dvinci({ base_url: "https://jobs.example.com" }))
    expect(r.status, r.text).toBe(201)
    const v6 = await call(ACME, "PUT", "/v1/connections/ssrf-public6", dvinci({ base_url: "https://[2001:db8::1]" }))
    expect(v6.status, v6.text).toBe(201)
  })
})

describe("a key without tags (the operator's)", () => {
  it("keeps today's behaviour: the same PUTs succeed, and the sandbox's token is served", async () => {
    for (const url of ["https://10.0.0.5", "https://169.254.169.254", "https://[::1]", "https://0x7f.1"]) {
      const r = await call(ADMIN, "PUT", "/v1/connections/op-private", { ...dvinci({ base_url: url }), tags: {} })
      expect(r.status, `${url}: ${r.text}`).toBeLessThan(300)
    }
    const r = await call(ADMIN, "PUT", "/v1/connections/op-sb", dvinci({}))
    expect(r.status, r.text).toBe(201)
    const hosted = { provider: "hosted", inputs: { ...sb.credentials.dvinci, host: sandboxHost() } }
    delete (hosted.inputs as Record<string, string>)["base_url"]
    expect((await call(ADMIN, "PUT", "/v1/connections/op-host", hosted)).status).toBe(201)
    expect((await call(ADMIN, "GET", "/v1/connections/op-host/token")).status).toBe(200)
  })
})

describe("server.tenant_private_targets: true", () => {
  it("lets a tenant's key target private hosts, read again on reload", async () => {
    await s.reload(await parseConfig(configText(true)))
    try {
      expect((await call(ACME, "PUT", "/v1/connections/on-sb", dvinci({}))).status).toBe(201)
      expect((await call(ACME, "GET", "/v1/connections/on-sb/token")).status).toBe(200)
      const host = {
        provider: "hosted",
        inputs: { ...sb.credentials.dvinci, host: sandboxHost() },
        tags: { tenant: "acme" }
      }
      delete (host.inputs as Record<string, string>)["base_url"]
      expect((await call(ACME, "PUT", "/v1/connections/on-host", host)).status).toBe(201)
      expect((await call(ACME, "GET", "/v1/connections/on-host/token")).status).toBe(200)
    } finally {
      await s.reload(await parseConfig(configText(false)))
    }
    // Off again: refused again.
    expect(refused(await call(ACME, "PUT", "/v1/connections/off-sb", dvinci({})))).toEqual(["/inputs/base_url"])
  })
})
