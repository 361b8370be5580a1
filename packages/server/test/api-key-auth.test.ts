/** ApiKeyAuth: digests only, constant-time matching against every key, allowlists, and checks at construction. */
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import { ApiKeyAuth } from "../src/index.ts"

const key = (name: string, value: string, connections: ReadonlyArray<string> = ["*"]) => ({
  name,
  key: Redacted.make(value),
  connections,
  scopes: ["token", "proxy"] as const,
  tags: {}
})

describe("ApiKeyAuth.make", () => {
  const auth = ApiKeyAuth.make([key("ops", "ops-secret-value"), key("jobs", "jobs-secret-value", ["jobs", "crm"])])

  it("finds the principal of a presented key and applies its allowlist", () => {
    expect(auth.enabled).toBe(true)
    const ops = auth.verify("ops-secret-value")
    expect(ops?.name).toBe("ops")
    expect(ops?.allows("anything")).toBe(true)
    const jobs = auth.verify("jobs-secret-value")
    expect(jobs?.name).toBe("jobs")
    expect(jobs?.allows("jobs")).toBe(true)
    expect(jobs?.allows("crm")).toBe(true)
    expect(jobs?.allows("cube")).toBe(false)
  })

  it("rejects missing, empty, wrong, prefixed and extended keys", () => {
    for (const bad of [undefined, "", "ops-secret-valu", "ops-secret-value ", "xops-secret-value", "OPS-SECRET-VALUE"])
      expect(auth.verify(bad)).toBeUndefined()
  })

  it("keeps no key material, only digests", () => {
    const seen = JSON.stringify(auth) + String(auth.verify) + JSON.stringify(auth.verify("ops-secret-value"))
    expect(seen).not.toContain("ops-secret-value")
  })

  it("without keys every caller is anonymous and allowed everything", () => {
    const open = ApiKeyAuth.make([])
    expect(open.enabled).toBe(false)
    expect(open.verify(undefined)).toBe(ApiKeyAuth.anonymous)
    expect(open.verify(undefined)?.allows("x")).toBe(true)
  })

  it("fails at construction on an empty key, a repeated key, or an empty allowlist", () => {
    expect(() => ApiKeyAuth.make([key("a", "  ")])).toThrow(/api key "a" is empty/)
    expect(() => ApiKeyAuth.make([key("a", "same-value-1"), key("b", "same-value-1")])).toThrow(TypeError)
    expect(() => ApiKeyAuth.make([key("a", "value-123456", [])])).toThrow(/allows no connection/)
  })

  it("fails at construction on a key no client can send: a CR left by a CRLF file or variable, surrounding space", () => {
    // `${file:}` trims one line ending; a key from a variable set from a CRLF .env file keeps its CR, and so does a
    // file ending in CR CR LF. Such a key was accepted and then answered 401 to every caller.
    for (const value of ["crlf-key-1234567\r", "tab-key\t-12345678", " space-key-12345678", "space-key-12345678 "])
      expect(() => ApiKeyAuth.make([key("a", value)]), JSON.stringify(value)).toThrow(/no client can send it/)
    const thrown = (() => {
      try {
        ApiKeyAuth.make([key("a", "secret-value-98765\r")])
      } catch (e) {
        return String(e)
      }
    })()
    expect(thrown).not.toContain("secret-value-98765")
    expect(ApiKeyAuth.make([key("a", "inner space-key-123")]).enabled).toBe(true)
  })

  it("scopes and a tag selector: what a key may do, and which connections exist for it", () => {
    const tenant = ApiKeyAuth.make([
      { ...key("acme", "acme-secret-value"), scopes: ["connections:read"], tags: { tenant: "acme" } }
    ]).verify("acme-secret-value")!
    expect(tenant.can("connections:read")).toBe(true)
    expect(tenant.can("token")).toBe(false)
    expect(tenant.sees({ tenant: "acme", env: "prod" })).toBe(true)
    expect(tenant.sees({ tenant: "other" })).toBe(false)
    expect(tenant.sees({})).toBe(false)
    expect(auth.verify("ops-secret-value")?.can("token")).toBe(true)
    expect(auth.verify("ops-secret-value")?.can("connections:write")).toBe(false)
  })

  it("reads Bearer credentials (RFC 9110 scheme is case-insensitive)", () => {
    expect(ApiKeyAuth.bearer("Bearer abc")).toBe("abc")
    expect(ApiKeyAuth.bearer("bEaReR   abc ")).toBe("abc")
    expect(ApiKeyAuth.bearer("Basic abc")).toBeUndefined()
    expect(ApiKeyAuth.bearer("Bearer a b")).toBeUndefined()
    expect(ApiKeyAuth.bearer(undefined)).toBeUndefined()
  })
})
