/** Token.isStored: a stored entry is only taken for a token when its times are ones a Date can hold, so that a
 *  damaged or hostile cache entry (written before expiries were bounded, say) never becomes an Invalid Date. */
import { Redacted } from "effect"
import { describe, expect, it } from "vitest"
import * as Token from "../src/token.ts"

const stored = Token.toStored({
  accessToken: Redacted.make("t"),
  tokenType: "Bearer",
  expiresAt: Date.now() + 3_600_000,
  obtainedAt: Date.now(),
  expirySource: "expires_in"
})

describe("Token.isStored", () => {
  it("takes an entry with real times", () => {
    expect(Token.isStored(stored)).toBe(true)
    expect(Token.isStored({ ...stored, expires_at: 8.64e15 })).toBe(true)
  })

  for (const [name, value] of [
    ["past the last date (year 275760)", 8.64e15 + 1],
    ["1e20", 1e20],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["NaN", Number.NaN],
    ["a string", "1700000000000"]
  ] as const) {
    it(`refuses an expires_at of ${name}, and an obtained_at of it`, () => {
      expect(Token.isStored({ ...stored, expires_at: value })).toBe(false)
      expect(Token.isStored({ ...stored, obtained_at: value })).toBe(false)
    })
  }
})
