/** The connect flow's sealed link and state: they open with the key that sealed them (or any key of the ring),
 *  refuse an altered, truncated or foreign value, expire, cannot be swapped for each other, and hide what they
 *  carry (the PKCE verifier above all). */
import { Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { describe, expect, it } from "vitest"
import { SecretBox } from "@tessera/engine"
import * as Seal from "../src/connect-seal.ts"

const key = () => randomBytes(32)
const state = (over: Partial<Seal.State> = {}): Seal.State => ({
  id: "abc",
  c: "crm",
  cv: 3,
  gv: null,
  exp: 2_000,
  pv: "verifier-Zq8m3P0xQ4bV1kD9rT6yW2nJ5hL7cF0aE3sG8uI1oK4",
  bh: "digest",
  ...over
})

describe("connect seal", () => {
  it("a state opens to what was sealed, and its text shows none of it", () => {
    const ring = SecretBox.ring([key()])
    const text = Seal.sealState(ring, state({ ra: "https://app.example.com/done" }))
    expect(text).toMatch(/^[0-9a-f]{8}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/)
    expect(text).not.toContain("verifier")
    expect(Buffer.from(text.split(".")[3]!, "base64url").toString("latin1")).not.toContain("verifier")
    const opened = Seal.openState(ring, text, 1_000)
    expect(opened).toEqual({ _tag: "Opened", value: state({ ra: "https://app.example.com/done" }) })
  })

  it("expires at exp (the value is still read, to name the connection on the page)", () => {
    const ring = SecretBox.ring([key()])
    const text = Seal.sealState(ring, state())
    expect(Seal.openState(ring, text, 1_999)._tag).toBe("Opened")
    expect(Seal.openState(ring, text, 2_000)).toEqual({ _tag: "Expired", value: state() })
  })

  it("refuses an altered, truncated or padded value, and garbage", () => {
    const ring = SecretBox.ring([key()])
    const text = Seal.sealState(ring, state())
    const parts = text.split(".")
    const flip = (s: string) => (s[0] === "A" ? "B" : "A") + s.slice(1)
    for (const bad of [
      [parts[0], parts[1], parts[2], flip(parts[3]!)].join("."),
      [parts[0], parts[1], flip(parts[2]!), parts[3]].join("."),
      [parts[0], flip(parts[1]!), parts[2], parts[3]].join("."),
      text.slice(0, -4),
      `${text}.x`,
      "",
      "a.b.c.d",
      "x".repeat(5000),
      "<script>.a.b.c"
    ])
      expect(Seal.openState(ring, bad, 1_000)._tag).toBe("Invalid")
  })

  it("a link is not a state and a state is not a link (each is sealed for its kind)", () => {
    const ring = SecretBox.ring([key()])
    const link = Seal.sealLink(ring, { c: "crm", cv: 1, exp: 2_000 })
    expect(Seal.openLink(ring, link, 1_000)).toEqual({ _tag: "Opened", value: { c: "crm", cv: 1, exp: 2_000 } })
    expect(Seal.openState(ring, link, 1_000)._tag).toBe("Invalid")
    expect(Seal.openLink(ring, Seal.sealState(ring, state()), 1_000)._tag).toBe("Invalid")
  })

  it("keys rotate: a new first key seals, the old one still opens, and a dropped key's values are refused", () => {
    const oldKey = key()
    const newKey = key()
    const before = Seal.sealLink(SecretBox.ring([oldKey]), { c: "crm", cv: 1, exp: 2_000 })
    const both = SecretBox.ring([newKey, oldKey])
    expect(Seal.openLink(both, before, 1_000)._tag).toBe("Opened")
    const after = Seal.sealLink(both, { c: "crm", cv: 1, exp: 2_000 })
    expect(after.startsWith(SecretBox.keyId(newKey))).toBe(true)
    expect(Seal.openLink(SecretBox.ring([newKey]), before, 1_000)._tag).toBe("UnknownKey")
    // Another installation's key with the same id cannot exist; a value under a foreign key is simply unknown.
    expect(Seal.openLink(SecretBox.ring([key()]), after, 1_000)._tag).toBe("UnknownKey")
  })

  it("ringOf takes server.connect_keys (base64 or hex) in order; none makes no ring", () => {
    const a = key()
    const b = key()
    const ring = Seal.ringOf([Redacted.make(a.toString("base64")), Redacted.make(b.toString("hex"))])
    expect(ring?.primaryId).toBe(SecretBox.keyId(a))
    expect(ring?.byId.has(SecretBox.keyId(b))).toBe(true)
    expect(Seal.ringOf([])).toBeUndefined()
  })
})
