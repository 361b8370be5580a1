/** Assertion: keys read from every form a user has one in, signed with jose and verified with jose, and the errors
 *  a bad key gives (what is wrong, never the key). */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { decodeProtectedHeader, jwtVerify } from "jose"
import { generateKeyPairSync } from "node:crypto"
import * as Assertion from "../src/assertion.ts"
import type { Connection } from "../src/connection.ts"
import * as Template from "../src/template.ts"

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 })
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" })
const ed = generateKeyPairSync("ed25519")

const connection = (inputs: Record<string, string>): Connection =>
  ({
    name: "conn",
    manifest: { id: "demo" },
    inputs: new Map(Object.entries(inputs).map(([k, v]) => [k, Redacted.make(v)])),
    allowInsecureHttp: false,
    tags: {},
    source: "config",
    version: 0
  }) as unknown as Connection

const spec = (over: Partial<Assertion.JwtSpec> = {}): Assertion.JwtSpec => ({
  key: Template.parse("{{ inputs.private_key }}"),
  claims: [["iss", Template.parse("svc")]],
  lifetimeSeconds: 60,
  iatBackdateSeconds: 0,
  jti: true,
  symmetric: false,
  ...over
})

const now = Date.parse("2026-11-23T11:36:18Z")

const signWith = (keyText: string, over: Partial<Assertion.JwtSpec> = {}) =>
  Assertion.sign(spec(over), {
    connection: connection({ private_key: keyText }),
    where: "flows.acquire.assertion",
    now
  })

describe("readKey and the algorithm a key signs with", () => {
  for (const [name, text, alg, pub] of [
    ["PKCS#1 RSA", rsa.privateKey.export({ type: "pkcs1", format: "pem" }).toString(), "RS256", rsa.publicKey],
    ["PKCS#8 RSA", rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "RS256", rsa.publicKey],
    ["SEC1 EC P-256", ec.privateKey.export({ type: "sec1", format: "pem" }).toString(), "ES256", ec.publicKey],
    ["a private JWK", JSON.stringify(ec.privateKey.export({ format: "jwk" })), "ES256", ec.publicKey],
    ["PKCS#8 Ed25519", ed.privateKey.export({ type: "pkcs8", format: "pem" }).toString(), "EdDSA", ed.publicKey],
    [
      "a JSON key file with private_key (literal \\n line breaks)",
      JSON.stringify({ private_key: rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString() }),
      "RS256",
      rsa.publicKey
    ]
  ] as const)
    it.effect(`${name}: signs ${alg}, verified with jose`, () =>
      Effect.gen(function* () {
        const jwt = Redacted.value(yield* signWith(text))
        assert.strictEqual(decodeProtectedHeader(jwt).alg, alg)
        const { payload } = yield* Effect.promise(() => jwtVerify(jwt, pub, { currentDate: new Date(now) }))
        assert.strictEqual(payload.iss, "svc")
        assert.strictEqual(payload.iat, now / 1000)
        assert.strictEqual(payload.exp, now / 1000 + 60)
        assert.match(String(payload.jti), /^[0-9a-f-]{36}$/)
      })
    )

  it.effect("PS256 when the manifest says so; a fresh jti every time", () =>
    Effect.gen(function* () {
      const text = rsa.privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      const a = Redacted.value(yield* signWith(text, { alg: Template.parse("PS256") }))
      const b = Redacted.value(yield* signWith(text, { alg: Template.parse("PS256") }))
      assert.strictEqual(decodeProtectedHeader(a).alg, "PS256")
      const ja = (yield* Effect.promise(() => jwtVerify(a, rsa.publicKey, { currentDate: new Date(now) }))).payload.jti
      const jb = (yield* Effect.promise(() => jwtVerify(b, rsa.publicKey, { currentDate: new Date(now) }))).payload.jti
      assert.notStrictEqual(ja, jb)
    })
  )

  it.effect("HS256 with the client secret (client_secret_jwt)", () =>
    Effect.gen(function* () {
      const secret = "s".repeat(40)
      const jwt = Redacted.value(yield* signWith(secret, { symmetric: true }))
      const v = yield* Effect.promise(() =>
        jwtVerify(jwt, new TextEncoder().encode(secret), { currentDate: new Date(now) })
      )
      assert.strictEqual(v.protectedHeader.alg, "HS256")
    })
  )

  for (const [what, text, problem] of [
    ["a public key", rsa.publicKey.export({ type: "spki", format: "pem" }).toString(), /holds a public key/],
    [
      "an encrypted key",
      "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
      /encrypted private key/
    ],
    [
      "garbage PEM",
      "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ1dC1icm9rZW4=\n-----END PRIVATE KEY-----",
      /cannot be read as a private key/
    ],
    ["a public JWK", JSON.stringify(ec.publicKey.export({ format: "jwk" })), /public JWK/],
    ["plain text", "hunter2-not-a-key", /is not a key/],
    ["an empty value", "", /is empty/]
  ] as const)
    it.effect(`${what}: InputInvalid naming the connection and the input, and nothing of the key`, () =>
      Effect.gen(function* () {
        const e = yield* Effect.flip(signWith(text))
        assert.strictEqual(e._tag, "InputInvalid")
        assert.match(e.message, /connection "conn" \(demo\)/)
        assert.match(e.message, /input "private_key"/)
        assert.match(e.message, problem)
        for (const secretPart of ["c2VjcmV0LWJ1dC1icm9rZW4", "hunter2", "AAAA"])
          assert.notInclude(e.message, secretPart)
      })
    )

  it.effect("a key of the wrong type for the algorithm says so", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(
        signWith(ec.privateKey.export({ type: "sec1", format: "pem" }).toString(), { alg: Template.parse("RS256") })
      )
      assert.match(e.message, /cannot sign RS256.*needs an RSA key, the key is EC/)
    })
  )
})
