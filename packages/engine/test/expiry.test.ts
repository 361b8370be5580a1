/** Expiry.compute on hostile and odd values: every expiry source is bounded (more than 10 years ahead is refused,
 *  naming the field), and each odd value (1e13, 1e308, a 20-digit string, Infinity, -0, fractions, dates past the
 *  year 275760) has a defined outcome; an accepted expiry always makes a valid Date. */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import * as Expiry from "../src/expiry.ts"
import * as Manifest from "../src/manifest.ts"

const manifestText = (expiry: string, extra = "") =>
  [
    "id: x",
    "name: X",
    "inputs: { client_id: {}, client_secret: { secret: true }, lifetime: { type: integer, required: false } }",
    "flows:",
    "  acquire:",
    '    url: "https://auth.example.com/token"',
    "    grant_type: client_credentials",
    "    client_auth: { method: client_secret_post }",
    "response:",
    `  expiry: ${expiry}`,
    extra
  ].join("\n")
const manifestWith = (expiry: string) => Effect.runSync(Manifest.parse("x.yaml", manifestText(expiry)))

const sentAt = Date.UTC(2025, 0, 1)
const year = 365.25 * 86400
const jwt = (claims: Record<string, unknown>) => `e30.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.sig`

const compute = (
  m: Manifest.Manifest,
  envelope: Record<string, unknown>,
  opts: { accessToken?: string; inputs?: Record<string, string>; skewMs?: number } = {}
) =>
  Expiry.compute(m, {
    envelope,
    accessToken: opts.accessToken ?? "opaque",
    sentAt,
    skewMs: opts.skewMs ?? 0,
    inputs: (n) => opts.inputs?.[n]
  })

const seconds = manifestWith("[{ source: expires_in }]")
const millis = manifestWith("[{ source: expires_in, unit: ms }]")

const accepted = (r: Expiry.ExpiryResult, lifetimeMs: number) => {
  expect(r).toEqual({ _tag: "Expiry", expiresAt: sentAt + lifetimeMs, source: expect.any(String) })
  if (r._tag === "Expiry") expect(() => new Date(r.expiresAt).toISOString()).not.toThrow()
}
const refused = (r: Expiry.ExpiryResult, field: string, problem: RegExp) => {
  expect(r).toMatchObject({ _tag: "Invalid", field })
  if (r._tag === "Invalid") expect(r.problem).toMatch(problem)
}
const tooFar = /more than 10 years ahead/

describe("expires_in", () => {
  it("exactly 10 years is accepted; one second more is refused, naming the field", () => {
    accepted(compute(seconds, { expires_in: 10 * year }), 10 * year * 1000)
    refused(compute(seconds, { expires_in: 10 * year + 1 }), "expires_in", tooFar)
    refused(compute(millis, { expires_in: 10 * year * 1000 + 1000 }), "expires_in", tooFar)
  })

  const outcomes: ReadonlyArray<readonly [string, unknown, RegExp | number]> = [
    ["1e13 (seconds: year 318000)", 1e13, tooFar],
    ["1e308 (finite, but x1000 overflows)", 1e308, tooFar],
    ["Infinity (JSON 1e999)", JSON.parse("1e999"), tooFar],
    ['"99999999999999999999" (a 20-digit string)', "99999999999999999999", tooFar],
    ["a 400-digit string (reads as Infinity)", "9".repeat(400), tooFar],
    ['"Infinity"', "Infinity", /expected a number of seconds, found "Infinity"/],
    ['"inf"', "inf", /expected a number of seconds/],
    ['"1e3" (exponent strings are not digits)', "1e3", /expected a number of seconds/],
    ['"" (empty string)', "", /expected a number of seconds/],
    ["-0", -0, /already expired/],
    ['"-0"', "-0", /already expired/],
    ["-Infinity", -Infinity, /already expired/],
    ["3599.5 s: kept to the millisecond", 3599.5, 3_599_500],
    ['"1.25" s', "1.25", 1250],
    ["0.0004 s: rounds down to 0 ms (expired on arrival, refused by the decoder)", 0.0004, 0]
  ]
  for (const [name, value, outcome] of outcomes) {
    it(name, () => {
      const r = compute(seconds, { expires_in: value })
      if (typeof outcome === "number") accepted(r, outcome)
      else refused(r, "expires_in", outcome)
    })
  }

  it("fractional milliseconds round down to whole ones", () => {
    accepted(compute(millis, { expires_in: 1500.9 }), 1500)
  })

  it("a huge number is quoted short in the message", () => {
    const r = compute(seconds, { expires_in: "9".repeat(400) })
    expect(r._tag === "Invalid" && r.problem.length).toBeLessThan(200)
  })
})

describe("expires_at", () => {
  const m = manifestWith("[{ source: expires_at }]")
  it("seconds, milliseconds and ISO dates within 10 years are accepted", () => {
    accepted(compute(m, { expires_at: sentAt / 1000 + 3600 }), 3_600_000)
    accepted(compute(m, { expires_at: sentAt + 3_600_000 }), 3_600_000)
    accepted(compute(m, { expires_at: new Date(sentAt + 60_000).toISOString() }), 60_000)
  })
  for (const [name, value] of [
    ["unix seconds 20 years ahead", sentAt / 1000 + 20 * year],
    ["1e13 (read as milliseconds: year 2286)", 1e13],
    ["1e308", 1e308],
    ["a 20-digit string", "99999999999999999999"],
    ["the ISO date 9999-12-31", "9999-12-31T00:00:00Z"],
    ["the last ISO date a Date holds, +275760-09-13", "+275760-09-13T00:00:00.000Z"]
  ] as const) {
    it(`${name}: refused`, () => refused(compute(m, { expires_at: value }), "expires_at", tooFar))
  }
  it("a date a Date cannot hold is not a date", () =>
    refused(compute(m, { expires_at: "+275760-09-14T00:00:00.000Z" }), "expires_at", /ISO-8601/))
  it("a server clock far behind cannot push an expiry past the bound", () =>
    refused(compute(m, { expires_at: sentAt + 3_600_000 }, { skewMs: -20 * year * 1000 }), "expires_at", tooFar))
})

describe("the JWT exp claim", () => {
  const m = manifestWith("[{ source: jwt_exp }]")
  it("within 10 years: accepted", () =>
    accepted(compute(m, {}, { accessToken: jwt({ exp: sentAt / 1000 + 7200 }) }), 7_200_000))
  for (const exp of [sentAt / 1000 + 11 * year, 1e13, "99999999999999999999", 1e308]) {
    it(`exp ${JSON.stringify(exp)}: refused`, () =>
      refused(compute(m, {}, { accessToken: jwt({ exp }) }), "access_token (JWT exp)", tooFar))
  }
})

describe("a fixed ttl", () => {
  it("from an input: more than 10 years is refused", () => {
    const m = manifestWith('[{ source: ttl, seconds: "{{ inputs.lifetime }}" }]')
    accepted(compute(m, {}, { inputs: { lifetime: "7200" } }), 7_200_000)
    refused(compute(m, {}, { inputs: { lifetime: "400000000" } }), "ttl", tooFar)
  })

  it("in the manifest, and the default lifetime: the schema allows at most 10 years", () => {
    for (const [expiry, extra] of [
      ["[{ source: ttl, seconds: 315576001 }]", ""],
      ["[{ source: expires_in }]", "refresh: { default_ttl_seconds: 315576001 }"]
    ] as const) {
      const e = Effect.runSync(Effect.flip(Manifest.parse("x.yaml", manifestText(expiry, extra))))
      expect(e.message).toMatch(/315576000/)
    }
    expect(manifestWith("[{ source: ttl, seconds: 315576000 }]").response.expiry).toHaveLength(1)
  })
})

describe("a JWT's own exp caps every other source", () => {
  it("expires_in says 3600 s but the JWT's exp (from a rounded-down iat) is earlier: the JWT wins", () => {
    const exp = Math.floor(sentAt / 1000) + 3599
    const r = compute(seconds, { expires_in: 3600 }, { accessToken: jwt({ exp }) })
    expect(r).toEqual({ _tag: "Expiry", expiresAt: exp * 1000, source: "expires_in", cappedByJwt: true })
  })

  it("a later JWT exp, one already past, or none changes nothing", () => {
    const later = compute(seconds, { expires_in: 60 }, { accessToken: jwt({ exp: sentAt / 1000 + 3600 }) })
    accepted(later, 60_000)
    const past = compute(seconds, { expires_in: 60 }, { accessToken: jwt({ exp: sentAt / 1000 - 10 }) })
    accepted(past, 60_000)
    accepted(compute(seconds, { expires_in: 60 }, { accessToken: jwt({ sub: "x" }) }), 60_000)
  })
})
