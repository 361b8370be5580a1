/** Fuzzing (fast-check): templates, manifests, configs and token responses. For every input the code answers
 *  with a value or a typed error: no crash, no hang, no prototype pollution through YAML or JSON keys, and no
 *  token response ever yields an expired or empty token. TESSERA_LONG=1 runs 10x the cases. */
import { Effect, Exit, Redacted } from "effect"
import * as fc from "fast-check"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { stringify } from "yaml"
import { afterAll, describe, expect, it } from "vitest"
import * as Config from "../../src/config.ts"
import * as Connection from "../../src/connection.ts"
import * as Expiry from "../../src/expiry.ts"
import * as Manifest from "../../src/manifest.ts"
import * as Template from "../../src/template.ts"
import * as TokenResponse from "../../src/token-response.ts"

const runs = (n: number) => (process.env["TESSERA_LONG"] ? n * 10 : n)
export const fuzzCounts: Record<string, number> = {}
afterAll(() => {
  console.log(`fuzz cases run: ${JSON.stringify(fuzzCounts)}`)
})

const providers = fileURLToPath(new URL("../../../../providers/", import.meta.url))
const bundledTexts = ["cube", "dvinci", "usage-engine", "brandbox", "crm-com", "oauth2"].map(
  (id) => [id, readFileSync(`${providers}${id}.yaml`, "utf8")] as const
)
const bundled = Object.fromEntries(
  await Promise.all(
    bundledTexts.map(
      async ([id, text]) => [id, await Effect.runPromise(Manifest.parse(`${providers}${id}.yaml`, text))] as const
    )
  )
)

const dangerousKeys = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "valueOf"]
const key = fc.oneof(
  fc.constantFrom(
    ...dangerousKeys,
    "id",
    "name",
    "inputs",
    "flows",
    "acquire",
    "refresh",
    "url",
    "grant_type",
    "body",
    "response",
    "envelope",
    "success",
    "connections",
    "provider",
    "store",
    "type"
  ),
  fc.string({ maxLength: 12 })
)
const jsonish = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.string({ maxLength: 30 }),
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constantFrom(
      "{{ inputs.client_id }}",
      "{{ token.access_token }}",
      "{{",
      "}}",
      '{{ inputs.x | default: "y" }}',
      "${env:HOME}",
      "${file:/etc/passwd}",
      "*alias",
      "&anchor x"
    ),
    fc.array(tie("value"), { maxLength: 4 }),
    fc.dictionary(key, tie("value"), { maxKeys: 5 })
  )
})).value

const assertNoPollution = () => {
  const probe = {} as Record<string, unknown>
  expect(probe["polluted"]).toBeUndefined()
  expect(Object.keys(Object.prototype)).toEqual([])
}

/** Runs an effect that may fail only with one of `tags`; a defect or another failure fails the property. */
const typedOnly = async <A, E extends { _tag: string }>(
  eff: Effect.Effect<A, E>,
  tags: ReadonlyArray<string>
): Promise<"ok" | "failed"> => {
  const exit = await Effect.runPromiseExit(eff)
  if (Exit.isSuccess(exit)) return "ok"
  const failures = exit.cause.reasons.filter((r) => r._tag === "Fail").map((r) => (r as unknown as { error: E }).error)
  expect(exit.cause.reasons.every((r) => r._tag === "Fail")).toBe(true)
  for (const f of failures) expect(tags).toContain(f._tag)
  return "failed"
}

/** Mutates a valid document: replaces, deletes or adds values at random paths. */
const mutated = (doc: unknown) =>
  fc
    .array(fc.tuple(fc.nat(), fc.nat(), key, jsonish, fc.constantFrom("set", "delete", "add")), {
      minLength: 1,
      maxLength: 4
    })
    .map((ops) => {
      const copy = structuredClone(doc) as Record<string, unknown>
      for (const [a, b, k, v, op] of ops) {
        const containers: Array<Record<string, unknown>> = []
        const walk = (x: unknown) => {
          if (x && typeof x === "object") {
            containers.push(x as Record<string, unknown>)
            for (const y of Object.values(x)) walk(y)
          }
        }
        walk(copy)
        const target = containers[a % containers.length]!
        const keys = Object.keys(target)
        const existing = keys[b % Math.max(1, keys.length)]
        if (op === "delete" && existing !== undefined) delete target[existing]
        else
          Object.defineProperty(target, op === "set" && existing !== undefined ? existing : k, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true
          })
      }
      return copy
    })

// 10,000 cases per target take seconds on a quiet machine and several times that on a busy one: the timeout only
// has to catch a hang, so it is generous.
describe("fuzz", { timeout: 120_000 }, () => {
  it("templates: parse succeeds or throws TemplateSyntaxError; render never throws", () => {
    const n = runs(10_000)
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.stringMatching(/^(\{\{|\}\}|inputs\.|token\.|[a-z_]{1,6}|\||default:|"|'| ){0,12}$/)
        ),
        (s) => {
          let t: Template.Template
          try {
            t = Template.parse(s)
          } catch (e) {
            expect(e).toBeInstanceOf(Template.TemplateSyntaxError)
            return
          }
          const r = Template.render(t, { inputs: (n) => (n.length % 2 ? `v-${n}` : undefined), token: () => undefined })
          expect(["Value", "Missing"]).toContain(r._tag)
        }
      ),
      { numRuns: n }
    )
    fuzzCounts["templates"] = n
  })

  it("manifests: random YAML text and mutated bundled manifests give a manifest or ManifestInvalid", async () => {
    const n = runs(10_000)
    const docs = bundledTexts.map(([id]) => bundled[id]!.document)
    const seen = { ok: 0, failed: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc
            .constantFrom(...docs)
            .chain(mutated)
            .map((d) => stringify(d)),
          jsonish.map((d) => stringify(d))
        ),
        async (text) => {
          seen[await typedOnly(Manifest.parse("/fuzz/cube.yaml", text), ["ManifestInvalid"])]++
          assertNoPollution()
        }
      ),
      { numRuns: n }
    )
    // Both outcomes must occur, or the property says nothing about one of them.
    expect(seen.ok).toBeGreaterThan(0)
    expect(seen.failed).toBeGreaterThan(n / 2)
    fuzzCounts["manifests"] = n
  })

  it("configs: random and mutated configs give a config or ConfigInvalid", async () => {
    const n = runs(10_000)
    const base = {
      connections: {
        c: { provider: "cube", inputs: { client_id: "a", client_secret: "${env:S}", tenant: "t" } },
        d: { provider: "crm-com", inputs: { base_url: "https://x.example", api_key: "k", jwt: "j", organisation: "o" } }
      },
      store: { type: "memory" }
    }
    const seen = { ok: 0, failed: 0 }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          mutated(base).map((d) => stringify(d)),
          jsonish.map((d) => stringify({ connections: d })),
          fc.string({ maxLength: 120 })
        ),
        async (text) => {
          seen[await typedOnly(Config.parse("/fuzz/tessera.yaml", text, { S: "secret" }), ["ConfigInvalid"])]++
          assertNoPollution()
        }
      ),
      { numRuns: n }
    )
    expect(seen.ok).toBeGreaterThan(0)
    expect(seen.failed).toBeGreaterThan(0)
    fuzzCounts["configs"] = n
  })

  it("token responses: any status, content type and body give a token, a rejection or ResponseInvalid; never an expired or empty token", () => {
    const n = runs(10_000)
    const connections = Object.values(bundled).map(
      (m) =>
        ({
          name: m.id,
          manifest: m,
          inputs: new Map<string, Template.Value>(),
          allowInsecureHttp: false,
          tags: {},
          source: "config" as const,
          version: 0
        }) satisfies Connection.Connection
    )
    const now = Date.now()
    const seen: Record<string, number> = { Token: 0, Rejected: 0, Invalid: 0 }
    const jwt = fc
      .record({
        exp: fc.oneof(fc.integer({ min: -1e10, max: 1e11 }), fc.string({ maxLength: 12 }), fc.integer().map(String))
      })
      .map((c) => `e30.${Buffer.from(JSON.stringify(c)).toString("base64url")}.s`)
    const tokenish = fc.record(
      {
        access_token: fc.oneof(fc.string({ maxLength: 20 }), jwt, jsonish),
        token: fc.oneof(jwt, jsonish),
        token_type: fc.oneof(fc.constant("Bearer"), jsonish),
        expires_in: fc.oneof(
          fc.integer({ min: -10, max: 1e7 }),
          fc.string({ maxLength: 8 }),
          fc.constant(undefined),
          jsonish
        ),
        refresh_token: fc.oneof(fc.string(), jsonish)
      },
      { requiredKeys: [] }
    )
    // Mostly-valid tokens, so that the "never expired, never empty" checks run on many real successes.
    const plausible = fc.record(
      {
        access_token: fc.oneof(jwt, fc.string({ minLength: 1, maxLength: 20 })),
        token_type: fc.constant("Bearer"),
        expires_in: fc.oneof(
          fc.integer({ min: -5, max: 86400 }),
          fc.integer({ min: 1, max: 9999 }).map(String),
          fc.double(),
          fc.stringMatching(/^\d{10,25}$/),
          fc.constant(undefined)
        )
      },
      { requiredKeys: ["access_token"] }
    )
    // Weighted towards plausible tokens: at equal weights about 1 % of cases were tokens, at the edge of the check
    // below that each outcome is reached more than n / 100 times (97 in one run).
    const body = fc.oneof(
      { arbitrary: plausible, weight: 4 },
      fc.record({ code: fc.constant(0), message: fc.constant("Success"), body: plausible }),
      fc.record({ data: fc.record({ token: jwt }), status: fc.record({ code: fc.constant("OK") }) }),
      tokenish,
      fc.record({ code: fc.oneof(fc.constant(0), jsonish), message: jsonish, body: fc.oneof(tokenish, jsonish) }),
      fc.record({
        data: fc.oneof(tokenish, jsonish),
        status: fc.record({ code: fc.oneof(fc.constant("OK"), jsonish) })
      }),
      jsonish
    )
    fc.assert(
      fc.property(
        fc.constantFrom(...connections),
        fc.oneof(fc.constant(200), fc.integer({ min: 100, max: 599 })),
        fc.constantFrom(
          "application/json",
          "application/json",
          "application/json; charset=utf-8",
          "text/html",
          "",
          "application/problem+json",
          "text/plain"
        ),
        fc.oneof(
          body.map((b) => JSON.stringify(b) ?? ""),
          fc.string({ maxLength: 60 })
        ),
        fc.option(fc.date({ noInvalidDate: true }).map((d) => d.toUTCString())),
        (connection, status, contentType, text, date) => {
          const res = {
            status,
            receivedAt: now,
            headers: { "content-type": contentType, ...(date ? { date } : {}) },
            body: new TextEncoder().encode(text)
          }
          const d = TokenResponse.decode(res, { connection, sentAt: now - 5, attempts: 1, secrets: [] })
          expect(["Token", "Rejected", "Invalid"]).toContain(d._tag)
          seen[d._tag]!++
          if (d._tag === "Token") {
            expect(d.token.expiresAt).toBeGreaterThan(now)
            // Bounded (at most 10 years ahead), so a Date of it always formats; and header-safe token fields.
            expect(d.token.expiresAt - now).toBeLessThanOrEqual(Expiry.maxLifetimeMs)
            expect(() => new Date(d.token.expiresAt).toISOString()).not.toThrow()
            for (const v of [Redacted.value(d.token.accessToken), d.token.tokenType])
              expect(v).toMatch(/^[\x20-\x7e]*[\x21-\x7e][\x20-\x7e]*$/)
            expect(status).toBeGreaterThanOrEqual(200)
            expect(status).toBeLessThan(300)
          }
          if (d._tag === "Rejected") expect(d.error._tag).toBe("UpstreamRejected")
          if (d._tag === "Invalid") expect(d.error._tag).toBe("ResponseInvalid")
        }
      ),
      { numRuns: n }
    )
    for (const outcome of ["Token", "Rejected", "Invalid"]) expect(seen[outcome], outcome).toBeGreaterThan(n / 100)
    fuzzCounts["token responses"] = n
  })
})
