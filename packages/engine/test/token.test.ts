/** Token.Stored: a stored entry is only taken for a token when its times are ones a Date can hold, so that a
 *  damaged or hostile cache entry (written before expiries were bounded, say) never becomes an Invalid Date. */
import { Redacted, Schema } from "effect"
import { describe, expect, it } from "vitest"
import * as Token from "../src/token.ts"

const stored = Token.toStored({
  accessToken: Redacted.make("t"),
  tokenType: "Bearer",
  expiresAt: Date.now() + 3_600_000,
  obtainedAt: Date.now(),
  expirySource: "expires_in"
})

const isStored = Schema.is(Token.Stored)

describe("Token.Stored", () => {
  it("takes an entry with real times", () => {
    expect(isStored(stored)).toBe(true)
    expect(isStored({ ...stored, expires_at: 8.64e15 })).toBe(true)
    expect(isStored({ ...stored, refresh_token: "r", scope: "read" })).toBe(true)
  })

  it("refuses an unknown expiry source, and a refresh token or scope that is not a string", () => {
    expect(isStored({ ...stored, expiry_source: "guess" })).toBe(false)
    expect(isStored({ ...stored, refresh_token: 1 })).toBe(false)
    expect(isStored({ ...stored, scope: null })).toBe(false)
  })

  for (const [name, value] of [
    ["past the last date (year 275760)", 8.64e15 + 1],
    ["1e20", 1e20],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["NaN", Number.NaN],
    ["a string", "1700000000000"]
  ] as const) {
    it(`refuses an expires_at of ${name}, and an obtained_at of it`, () => {
      expect(isStored({ ...stored, expires_at: value })).toBe(false)
      expect(isStored({ ...stored, obtained_at: value })).toBe(false)
    })
  }
})
