/** Redaction.scrub: every encoded form of a secret, longest-and-overlapping occurrences masked whole, short
 *  secrets masked only as whole values, and credentials in named places masked whatever their value. The
 *  expected forms are computed here with Node's own encoders, independently of the module. */
import { describe, expect, it } from "vitest"
import * as Redaction from "../src/redaction.ts"

// A secret whose forms all differ: a space, "+", "%", ":", "/", a quote, a backslash, non-ASCII letters, and a
// base64 with "+", "/" and padding.
const secret = `ÿs3:cr+t %2B/ü"\\ÿ~x`
const id = "app:42 ü"
const secrets = [secret, ...Redaction.basicCredentials(id, secret)]
const form = (s: string) => new URLSearchParams([["", s]]).toString().slice(1)
const b64 = (s: string) => Buffer.from(s).toString("base64")
const asciiJson = (s: string) =>
  JSON.stringify(s)
    .slice(1, -1)
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

const forms: ReadonlyArray<readonly [string, string]> = [
  ["raw", secret],
  ["base64", b64(secret)],
  ["base64 without padding", b64(secret).replace(/=+$/, "")],
  ["base64url", Buffer.from(secret).toString("base64url")],
  ["base64 of id:secret, RFC 6749 §2.3.1 form-encoded (as tessera sends it)", b64(`${form(id)}:${form(secret)}`)],
  ["base64 of id:secret, plain (RFC 7617)", b64(`${id}:${secret}`)],
  ["base64url of id:secret", Buffer.from(`${form(id)}:${form(secret)}`).toString("base64url")],
  ["encodeURIComponent", encodeURIComponent(secret)],
  ["percent-encoding with lower-case hex", encodeURIComponent(secret).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())],
  ["application/x-www-form-urlencoded", form(secret)],
  ["JSON string escaping", JSON.stringify(secret).slice(1, -1)],
  ["JSON escaping, ASCII only", asciiJson(secret)],
  ["JSON escaping with \\/", asciiJson(secret).replaceAll("/", "\\/")],
  ["a JSON-escaped base64", JSON.stringify(b64(secret)).slice(1, -1).replaceAll("/", "\\/")]
]

describe("every encoded form of a secret is masked", () => {
  it("the forms are distinct, so each case below tests something", () => {
    expect(new Set(forms.map(([, f]) => f)).size).toBe(forms.length)
  })
  for (const [name, f] of forms) {
    it(name, () => {
      const text = `provider says: got <${f}> from you`
      const out = Redaction.scrub(text, secrets)
      expect(out).toBe("provider says: got <***> from you")
      expect(
        Redaction.encodings(secret).concat(Redaction.basicCredentials(id, secret).flatMap(Redaction.encodings))
      ).toContain(f)
    })
  }

  it("an echoed request with the secret in a Basic header and a form body", () => {
    const echo = [
      "POST /token HTTP/1.1",
      `authorization: Basic ${b64(`${form(id)}:${form(secret)}`)}`,
      "content-type: application/x-www-form-urlencoded",
      "",
      `grant_type=client_credentials&client_secret=${form(secret)}&scope=a+b`
    ].join("\r\n")
    const out = Redaction.scrub(echo, secrets)
    expect(out).toContain("authorization: Basic ***")
    expect(out).toContain("client_secret=***&scope=a+b")
    for (const [, f] of forms) expect(out).not.toContain(f)
  })
})

describe("overlapping secrets", () => {
  it("a secret inside a longer one: the longer is masked whole, nothing of it stays visible", () => {
    for (const order of [
      ["hunter2", "hunter2-extra"],
      ["hunter2-extra", "hunter2"]
    ])
      expect(Redaction.scrub("a hunter2-extra b hunter2 c", order)).toBe("a *** b *** c")
  })

  it("two secrets that overlap or touch become one mask", () => {
    expect(Redaction.scrub("x abcdef-ghij y", ["abcdef", "def-ghij"])).toBe("x *** y")
    expect(Redaction.scrub("x abcdwxyz y", ["abcd", "wxyz"])).toBe("x *** y")
  })

  it("every occurrence, including ones that overlap themselves", () => {
    expect(Redaction.scrub("aaaaa", ["aaaa"])).toBe("***")
    expect(Redaction.scrub("k1 secret1 k2 secret1", ["secret1"])).toBe("k1 *** k2 ***")
  })
})

describe("secrets shorter than 4 characters", () => {
  it("are masked where they stand as a whole value", () => {
    const short = ["-", "ab1"]
    expect(Redaction.scrub("-", short)).toBe("***")
    expect(Redaction.scrub("client_secret=-&grant_type=password", short)).toBe("client_secret=***&grant_type=password")
    expect(Redaction.scrub(`{"client_secret": "-", "pin":"ab1"}`, short)).toBe(`{"client_secret": "***", "pin":"***"}`)
    expect(Redaction.scrub("pin: ab1, next", short)).toBe("pin: ***, next")
  })

  it("are left alone inside ordinary text", () => {
    const text = "tenant-x - not found; grab1t; e-mail"
    expect(Redaction.scrub(text, ["-", "ab1"])).toBe(text)
  })

  it("the Basic credentials built from one are long and masked anywhere", () => {
    const basic = Redaction.basicCredentials("42", "-")
    expect(Redaction.scrub(`Authorisation was Basic ${b64("42:-")}!`, basic)).toBe("Authorisation was Basic ***!")
  })
})

describe("credentials in named places, whatever their value", () => {
  it("the credentials of an Authorization header, the scheme kept", () => {
    expect(Redaction.scrub("Authorization: Basic dW5rbm93bjpzZWNyZXQ=")).toBe("Authorization: Basic ***")
    expect(Redaction.scrub(`{"authorization":"Bearer eyJhbGciOi.x.y"}`)).toBe(`{"authorization":"Bearer ***"}`)
    expect(Redaction.scrub("proxy-authorization: Digest abc123, next")).toBe("proxy-authorization: Digest ***, next")
  })

  it("credential fields in a form, a query, JSON and JSON inside a JSON string", () => {
    expect(Redaction.scrub("client_secret=unknown1&password=p%40ss&scope=x")).toBe(
      "client_secret=***&password=***&scope=x"
    )
    expect(Redaction.scrub("/token?api_key=k123&x=1")).toBe("/token?api_key=***&x=1")
    expect(Redaction.scrub(`{"password": "p\\"w", "token_type":"Bearer", "refresh_token":"r1"}`)).toBe(
      `{"password": "***", "token_type":"Bearer", "refresh_token":"***"}`
    )
    expect(Redaction.scrub(`{"e":"{\\"client_secret\\":\\"abc\\",\\"n\\":1}"}`)).toBe(
      `{"e":"{\\"client_secret\\":\\"***\\",\\"n\\":1}"}`
    )
  })

  it("ordinary messages stay as they are", () => {
    for (const text of [
      "invalid_client: Client authentication failed",
      "Basic authentication failed; invalid password",
      "Authorization: Bearer {{ token.access_token }}",
      "the access_token field is missing",
      `{"token_type":"Bearer","expires_in":3600}`,
      "client_secret=***&grant_type=client_credentials"
    ])
      expect(Redaction.scrub(text, ["unrelated-secret"])).toBe(text)
  })
})
