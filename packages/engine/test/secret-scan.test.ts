/** No secret in any output: every secret a scenario uses (client secrets, passwords, keys, codes, issued access
 *  and refresh tokens) is searched for, raw, base64 and URL-encoded, in logs, error messages, serialized errors,
 *  events and dry-run output. */
import { Effect, Redacted } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { TokenEvent } from "../src/events.ts"
import * as TokenRequest from "../src/token-request.ts"
import { makeHarness, providerIds, type Harness } from "./services/harness.ts"

let h: Harness
const outputs: string[] = []
const secrets = new Set<string>()
const events: TokenEvent[] = []

const form = (s: string) => new URLSearchParams([["", s]]).toString().slice(1)
const forms = (s: string) => [
  s,
  Buffer.from(s).toString("base64"),
  Buffer.from(s).toString("base64url"),
  encodeURIComponent(s),
  form(s),
  JSON.stringify(s).slice(1, -1)
]

beforeAll(async () => {
  h = await makeHarness({
    sandbox: { ttlSeconds: { brandbox: 1 } },
    http: { retries: 1 },
    extra: (sb) => ({
      "bad-oauth2": {
        provider: "oauth2",
        inputs: { ...sb.credentials.oauth2, client_secret: "wrong-client-secret-4711" }
      },
      "bad-brandbox": { provider: "brandbox", inputs: { ...sb.credentials.brandbox, password: "wrong-password-0815" } },
      "bad-crm": {
        provider: "crm-com",
        inputs: { ...sb.credentials["crm-com"], authentication_code: "wrong-auth-code-9999" }
      }
    })
  })
  for (const id of providerIds)
    for (const [k, v] of Object.entries(h.sb.credentials[id]))
      if (/secret|password|api_key|code/.test(k)) secrets.add(v)
  for (const s of ["wrong-client-secret-4711", "wrong-password-0815", "wrong-auth-code-9999"]) secrets.add(s)
  // Basic credentials (RFC 6749 §2.3.1 form-encoded, as sent): their base64 is what an echo would show.
  const oauth2 = h.sb.credentials.oauth2
  secrets.add(`${form(oauth2["client_id"]!)}:${form(oauth2["client_secret"]!)}`)
  secrets.add(`${h.sb.credentials["crm-com"]["api_key"]}:`)
  h.engine.subscribe((e) => events.push(e))
})
afterAll(() => h.close())

const capture = async (eff: Effect.Effect<unknown, { message: string }>) => {
  const r = await h.run(Effect.result(eff))
  if (r._tag === "Failure") outputs.push(r.failure.message, String(r.failure), JSON.stringify(r.failure))
  else outputs.push(JSON.stringify(r.success), String(r.success))
  return r
}

describe("secret-leak scan", () => {
  it("runs success, refresh and failure scenarios", async () => {
    for (const id of providerIds) {
      const r = await capture(h.engine.getToken(id))
      expect(r._tag).toBe("Success")
      if (r._tag === "Success") {
        const t = r.success as { accessToken: Redacted.Redacted<string> }
        secrets.add(Redacted.value(t.accessToken))
      }
    }
    for (const e of await h.run(h.store.list())) if (e[1].token.refresh_token) secrets.add(e[1].token.refresh_token)
    await new Promise((r) => setTimeout(r, 1100))
    expect((await capture(h.engine.getToken("brandbox")))._tag).toBe("Success") // refresh: sends the refresh token
    for (const e of await h.run(h.store.list())) if (e[1].token.refresh_token) secrets.add(e[1].token.refresh_token)
    for (const bad of ["bad-oauth2", "bad-brandbox", "bad-crm"])
      expect((await capture(h.engine.getToken(bad)))._tag).toBe("Failure")
    h.sb.inject(
      "cube",
      {
        type: "status",
        status: 500,
        body: `{"error":"server_error","error_description":"echo ${h.sb.credentials.cube["client_secret"]}"}`,
        headers: { "content-type": "application/json" }
      },
      5
    )
    expect((await capture(h.engine.getToken("cube", { force: true })))._tag).toBe("Success") // served stale? no: forced renewal fails, cached token still valid
    // Providers that echo the whole request (Basic header, form and JSON bodies) in their error.
    for (const id of ["oauth2", "crm-com", "brandbox", "dvinci"] as const) {
      h.sb.inject(id, { type: "echo" })
      expect((await capture(h.engine.getToken(id, { noCache: true })))._tag).toBe("Failure")
    }
    h.sb.inject("dvinci", { type: "html200" })
    await capture(h.engine.getToken("dvinci", { noCache: true }))
    for (const id of providerIds) {
      const req = await h.run(h.engine.describeRequest(id))
      outputs.push(
        JSON.stringify(TokenRequest.encode(req, { mask: true })),
        TokenRequest.toCurl(req),
        JSON.stringify(req),
        String(req.headers)
      )
    }
    outputs.push(...h.logs, JSON.stringify(events))
    expect(secrets.size).toBeGreaterThan(15)
  })

  it("finds none of them anywhere", () => {
    const haystack = outputs.join("\n")
    const hits = [...secrets].flatMap((s) =>
      forms(s)
        .filter((f) => f.length >= 6 && haystack.includes(f))
        .map(() => s.slice(0, 4))
    )
    expect(hits).toEqual([])
    expect(haystack).toContain("<redacted") // the scan really saw redacted values
    expect(haystack).toContain("server_error") // and the provider's error text, scrubbed
    expect(haystack).toContain("echo ***")
    expect(haystack).toContain("authorization: Basic ***") // the echoes were seen, scrubbed
  })
})
