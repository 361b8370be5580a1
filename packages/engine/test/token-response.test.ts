/** Hostile token responses, end to end against the sandbox: token fields that would break a header write (CR, LF,
 *  NUL, other controls, non-ASCII, only whitespace) and expiries beyond 10 years are refused at acquisition with a
 *  ResponseInvalid naming the field, nothing is cached, and the next good answer works. An echoing provider's
 *  error never carries a secret in any encoding. */
import { afterEach, describe, expect, it } from "vitest"
import { makeHarness, type Harness } from "./services/harness.ts"

let h: Harness | undefined
afterEach(async () => {
  await h?.close()
  h = undefined
})

const answer = (fields: Record<string, unknown>) =>
  ({
    type: "status",
    status: 200,
    body: JSON.stringify({ token_type: "Bearer", expires_in: 3600, access_token: "good-token", ...fields }),
    headers: { "content-type": "application/json" }
  }) as const

const refusedThenRecovers = async (h: Harness, fault: Parameters<Harness["sb"]["inject"]>[1]) => {
  h.sb.inject("dvinci", fault)
  const e = await h.fail(h.engine.getToken("dvinci"))
  expect(await h.run(h.store.list())).toHaveLength(0)
  const next = await h.run(h.engine.getToken("dvinci"))
  expect(next.decision.action).toBe("acquired")
  return e as { _tag: string; field: string; problem: string; message: string }
}

describe("token fields that would break a header are refused, naming the field", () => {
  const cases = [
    ["access_token", "a CR LF header injection", "tok\r\nX-Injected: 1", /control character \(CR\) at offset 3/],
    ["access_token", "a LF", "tok\nen", /control character \(LF\)/],
    ["access_token", "a NUL", "tok\u0000en", /control character \(NUL\)/],
    ["access_token", "an ESC", "tok\u001b[2Jen", /control character \(ESC\)/],
    ["access_token", "a C1 control (U+009B, CSI)", "tok\u009ben", /control character \(U\+009B\)/],
    ["access_token", "a non-ASCII letter", "tök", /outside printable ASCII \(U\+00F6\)/],
    ["access_token", "only whitespace", "  \t ", /only whitespace/],
    ["refresh_token", "a LF", "refresh\nmore", /control character \(LF\)/],
    ["refresh_token", "only whitespace", "   ", /only whitespace/],
    ["token_type", "a CR LF", "Bearer\r\nSet-Cookie: x=1", /control character \(CR\)/],
    ["token_type", "only whitespace", " ", /only whitespace/]
  ] as const
  for (const [field, name, value, problem] of cases) {
    it(`${field} with ${name}: ResponseInvalid(${field}); the next answer works`, async () => {
      h = await makeHarness()
      const e = await refusedThenRecovers(h, answer({ [field]: value }))
      expect(e).toMatchObject({ _tag: "ResponseInvalid", field })
      expect(e.problem).toMatch(problem)
      expect(e.message).not.toContain(value.trim() || "\u0000") // the value itself is never quoted
    })
  }

  it("printable ASCII with spaces inside is a token (RFC 6749 Appendix A: VSCHAR)", async () => {
    h = await makeHarness()
    h.sb.inject("dvinci", answer({ access_token: "opaque token/with+odd=chars~" }))
    expect((await h.run(h.engine.getToken("dvinci"))).decision.action).toBe("acquired")
  })
})

describe("expiries beyond 10 years are refused at acquisition", () => {
  for (const value of [1e13, 1e308, "99999999999999999999"]) {
    it(`expires_in ${JSON.stringify(value)}: ResponseInvalid(expires_in), twice in a row, then a good token`, async () => {
      h = await makeHarness()
      h.sb.inject("dvinci", { type: "expiresIn", value }, 2)
      for (const _ of [1, 2]) {
        const e = await h.fail(h.engine.getToken("dvinci"))
        expect(e).toMatchObject({ _tag: "ResponseInvalid", field: "expires_in" })
        expect((e as { problem: string }).problem).toMatch(/more than 10 years ahead/)
      }
      const r = await h.run(h.engine.getToken("dvinci"))
      expect(r.expirySource).toBe("expires_in")
      expect(() => r.expiresAt.toISOString()).not.toThrow()
    })
  }

  it("expires_in written as 1e999 in the JSON (Infinity once parsed)", async () => {
    h = await makeHarness()
    const e = await refusedThenRecovers(h, {
      type: "status",
      status: 200,
      body: '{"access_token":"t0k3n","token_type":"Bearer","expires_in":1e999}',
      headers: { "content-type": "application/json" }
    })
    expect(e).toMatchObject({ _tag: "ResponseInvalid", field: "expires_in" })
    expect(e.problem).toMatch(/^Infinity puts the expiry more than 10 years ahead/)
  })
})

describe("an echoing provider", () => {
  const form = (v: string) => new URLSearchParams([["", v]]).toString().slice(1)
  const forms = (v: string) => [v, encodeURIComponent(v), form(v), JSON.stringify(v).slice(1, -1)]

  it("its error quotes the request, without any secret of the connection in any encoding", async () => {
    const special = { client_id: "app:42 ü", client_secret: "s3:cr+t %2B ü" }
    h = await makeHarness({
      extra: (sb) => ({
        special: { provider: "oauth2", inputs: { token_url: sb.tokenUrl("oauth2"), ...special } },
        "special-post": {
          provider: "oauth2",
          inputs: {
            token_url: sb.tokenUrl("oauth2"),
            ...special,
            client_auth: "client_secret_post",
            grant_type: "password",
            username: "alice",
            password: "pa ss+wörd"
          }
        }
      })
    })
    const c = h.sb.credentials
    const cases = [
      ["special", "oauth2", [special.client_secret]],
      ["special-post", "oauth2", [special.client_secret, "pa ss+wörd"]],
      ["crm-com", "crm-com", [c["crm-com"]["api_key"]!, c["crm-com"]["authentication_code"]!]],
      ["brandbox", "brandbox", [c.brandbox["password"]!]],
      ["dvinci", "dvinci", [c.dvinci["client_secret"]!]]
    ] as const
    for (const [name, provider, secrets] of cases) {
      h.sb.inject(provider, { type: "echo" })
      const e = (await h.fail(h.engine.getToken(name))) as { _tag: string; providerMessage?: string }
      expect(e._tag).toBe("UpstreamRejected")
      const sent = h.sb.tokenRequests(provider).at(-1)!
      const message = e.providerMessage ?? ""
      expect(message).toContain(`POST ${sent.path}`) // the echo is there, scrubbed
      const basic = sent.headers["authorization"]?.replace(/^Basic /, "")
      for (const text of [message, String(e), JSON.stringify(e)]) {
        if (basic) expect(text, name).not.toContain(basic)
        for (const s of secrets) for (const f of forms(s)) expect(text, `${name}: ${f}`).not.toContain(f)
        // brandbox's client_secret is "-": masked as the value of its field, not everywhere.
        expect(text, name).not.toMatch(/client_secret=-(&|$)/)
      }
    }
  })
})
