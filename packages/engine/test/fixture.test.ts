/** Offline replay of the recorded provider fixtures (providers/fixtures/<id>/<case>.json): every recording replays
 *  clean through the request builder and the response decoder, and any drift (in the fixture or in a manifest)
 *  is reported field by field. */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import * as Catalog from "../src/catalog.ts"
import * as Fixture from "../src/fixture.ts"
import * as Manifest from "../src/manifest.ts"

const fixturesDir = fileURLToPath(new URL("../../../providers/fixtures/", import.meta.url))
const providersDir = fileURLToPath(new URL("../../../providers/", import.meta.url))

const recorded = (id: string, name: string): Record<string, any> =>
  JSON.parse(readFileSync(join(fixturesDir, id, `${name}.json`), "utf8"))

/** Writes `fixture` as <tmp>/<dir>/<name>.json and returns the path. */
const writeCopy = (
  fixture: unknown,
  dir: string,
  name: string,
  root = mkdtempSync(join(tmpdir(), "tessera-fixture-"))
): string => {
  mkdirSync(join(root, dir), { recursive: true })
  const file = join(root, dir, `${name}.json`)
  writeFileSync(file, typeof fixture === "string" ? fixture : JSON.stringify(fixture, null, 2))
  return file
}

/** Replays a changed copy of a recorded fixture. */
const replayAltered = (id: string, name: string, change: (f: Record<string, any>) => void, catalog?: Catalog.Catalog) =>
  Effect.gen(function* () {
    const f = recorded(id, name)
    change(f)
    return yield* Fixture.replay(writeCopy(f, id, name), catalog ?? (yield* Catalog.load()))
  })

/** A catalog whose manifest for `id` is the bundled one with `edit` applied to its YAML text. */
const catalogWith = (id: string, edit: (yaml: string) => string) =>
  Effect.gen(function* () {
    const base = yield* Catalog.load()
    const m = yield* Manifest.parse(
      join(providersDir, `${id}.yaml`),
      edit(readFileSync(join(providersDir, `${id}.yaml`), "utf8"))
    )
    return { manifests: new Map([...base.manifests, [id, m]]), bundled: base.bundled } satisfies Catalog.Catalog
  })

describe("recorded fixtures", () => {
  it.effect("every recorded fixture replays clean", () =>
    Effect.gen(function* () {
      const all = yield* Fixture.replayAll(fixturesDir, yield* Catalog.load())
      assert.deepStrictEqual(
        all.invalid.map((e) => e.message),
        []
      )
      const failing = all.replays.filter((r) => !Fixture.isClean(r)).map(Fixture.format)
      assert.deepStrictEqual(failing, [])
    })
  )

  it.effect("each bundled provider has a success and a provider-specific failure", () =>
    Effect.gen(function* () {
      const all = yield* Fixture.replayAll(fixturesDir, yield* Catalog.load())
      const cases = all.replays.map((r) => `${r.provider}/${r.name}`)
      for (const c of [
        "cube/success",
        "cube/invalid-client",
        "dvinci/success",
        "dvinci/bad-secret",
        "usage-engine/success",
        "usage-engine/wrong-audience",
        "brandbox/success",
        "brandbox/envelope-error",
        "brandbox/refresh-rotation",
        "crm-com/success",
        "crm-com/auth-failed",
        "oauth2/client-secret-basic",
        "oauth2/client-secret-post",
        "oauth2/refresh-invalid-grant"
      ])
        assert.include(cases, c)
      for (const id of ["cube", "dvinci", "usage-engine", "brandbox", "crm-com", "oauth2"]) {
        const mine = all.replays.filter((r) => r.provider === id)
        assert.isTrue(
          mine.some((r) => !("error" in recorded(id, r.name).expect)),
          `${id} has a success`
        )
        assert.isTrue(
          mine.some((r) => "error" in recorded(id, r.name).expect),
          `${id} has a failure`
        )
      }
    })
  )

  it("recordings point at the stable placeholder origin, never at the sandbox's loopback port", () => {
    for (const [id, name] of [
      ["cube", "success"],
      ["usage-engine", "wrong-audience"],
      ["oauth2", "client-secret-post"]
    ] as const) {
      const f = recorded(id, name)
      assert.match(f["request"].url, /^https:\/\/sandbox\.invalid\//)
      assert.notMatch(JSON.stringify(f), /127\.0\.0\.1/)
    }
  })

  it("the specific behaviours are what the fixtures pin", () => {
    assert.strictEqual(recorded("brandbox", "envelope-error")["response"].status, 200)
    assert.notStrictEqual(recorded("brandbox", "envelope-error")["response"].body.code, 0)
    assert.strictEqual(recorded("crm-com", "auth-failed")["response"].status, 200)
    assert.notStrictEqual(recorded("crm-com", "auth-failed")["response"].body.status.code, "OK")
    const crm = recorded("crm-com", "success")
    const exp = JSON.parse(Buffer.from(crm["expect"].access_token.split(".")[1], "base64url").toString())["exp"]
    assert.typeOf(exp, "string")
    assert.strictEqual(crm["expect"].expiry_source, "jwt_exp")
    const rotation = recorded("brandbox", "refresh-rotation")
    assert.notStrictEqual(rotation["expect"].refresh_token, rotation["token"].refresh_token)
    assert.match(recorded("oauth2", "client-secret-basic")["request"].headers.authorization, /^Basic /)
    assert.isNull(recorded("oauth2", "client-secret-post")["request"].headers.authorization)
    assert.strictEqual(recorded("oauth2", "client-secret-post")["request"].form.client_id, "oauth2-client")
  })
})

describe("JWT fixtures: the assertion verified with jose, its header and claims exact", () => {
  it.effect("the JWT bearer and GitHub App fixtures each have a success and a failure, all clean", () =>
    Effect.gen(function* () {
      const all = yield* Fixture.replayAll(fixturesDir, yield* Catalog.load())
      for (const c of [
        "google-service-account/success",
        "google-service-account/invalid-grant",
        "salesforce-jwt/sandbox-success",
        "salesforce-jwt/not-approved",
        "github-app/installation-token",
        "github-app/bad-jwt"
      ]) {
        const r = all.replays.find((x) => `${x.provider}/${x.name}` === c)
        assert.isDefined(r, c)
        assert.deepStrictEqual(r!.mismatches, [], c)
      }
      // What the providers' documents ask for, pinned in the recordings.
      const g = recorded("google-service-account", "success")["request"].jwts["form.assertion"]
      assert.strictEqual(g.claims.aud, "https://oauth2.googleapis.com/token")
      assert.strictEqual(g.claims.exp - g.claims.iat, 3600)
      assert.strictEqual(g.header.kid, "3f1e9c0b2a7d4e5f8a6b9c0d1e2f3a4b5c6d7e8f")
      const sf = recorded("salesforce-jwt", "sandbox-success")
      assert.strictEqual(sf["request"].jwts["form.assertion"].claims.sub, "integration@acme.example")
      assert.strictEqual(sf["request"].jwts["form.assertion"].claims.aud, "https://test.salesforce.com")
      assert.isUndefined(sf["response"].body.expires_in)
      assert.isString(sf["response"].body.instance_url)
      const gh = recorded("github-app", "installation-token")
      const claims = gh["request"].jwts["headers.authorization"].claims
      const at = Date.parse(gh["response"].headers.date) / 1000
      assert.strictEqual(claims.iat, at - 60)
      assert.isAtMost(claims.exp - at, 600)
      assert.strictEqual(gh["response"].status, 201)
    })
  )

  it.effect("a wrong expected claim is named by its path", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("google-service-account", "success", (f) => {
        f["request"].jwts["form.assertion"].claims.scope = "https://www.googleapis.com/auth/cloud-platform"
      })
      assert.deepStrictEqual(
        r.mismatches.map((m) => m.field),
        ["request.jwts.form.assertion.claims.scope"]
      )
    })
  )

  it.effect("a JWT signed with another key fails the signature check", () =>
    Effect.gen(function* () {
      const other = recorded("salesforce-jwt", "sandbox-success")["request"].jwts["form.assertion"].key
      const r = yield* replayAltered("github-app", "installation-token", (f) => {
        f["request"].jwts["headers.authorization"].key = other
      })
      assert.deepStrictEqual(
        r.mismatches.map((m) => m.field),
        ["request.jwts.headers.authorization.signature"]
      )
    })
  )

  it.effect("a changed claim template in the manifest shows in the claims", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogWith("salesforce-jwt", (y) =>
        y.replace("lifetime_seconds: 180", "lifetime_seconds: 300")
      )
      const r = yield* replayAltered("salesforce-jwt", "sandbox-success", () => {}, catalog)
      assert.deepStrictEqual(
        r.mismatches.map((m) => m.field),
        ["request.jwts.form.assertion.claims.exp"]
      )
    })
  )

  it.effect("a JWT field listed in an unknown place makes the fixture invalid", () =>
    Effect.gen(function* () {
      const f = recorded("github-app", "installation-token")
      f["request"].jwts = { "headers.x-jwt": f["request"].jwts["headers.authorization"] }
      const e = yield* Effect.flip(Fixture.replay(writeCopy(f, "github-app", "x"), yield* Catalog.load()))
      assert.match(e.message, /"headers.x-jwt" is not a place a JWT goes/)
    })
  )
})

describe("Fixture.replay reports drift field by field", () => {
  it.effect("a wrong expected form field", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("cube", "success", (f) => {
        f["request"].form.scope = "openid"
      })
      assert.deepStrictEqual(r.mismatches, [{ field: "request.form.scope", expected: "openid", actual: "profile" }])
      assert.include(Fixture.format(r), 'request.form.scope: expected "openid", got "profile"')
    })
  )

  it.effect("a form field the recording has and the request lacks, and one the other way round", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("dvinci", "success", (f) => {
        f["request"].form.audience = "x"
        delete f["request"].form.client_secret
      })
      assert.sameDeepMembers(
        [...r.mismatches],
        [
          { field: "request.form.client_secret", expected: undefined, actual: "dvinci-api-token" },
          { field: "request.form.audience", expected: "x", actual: undefined }
        ]
      )
    })
  )

  it.effect("a wrong expected token", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("usage-engine", "success", (f) => {
        f["expect"].access_token = "not-the-token"
      })
      assert.strictEqual(r.mismatches.length, 1)
      assert.strictEqual(r.mismatches[0]!.field, "expect.access_token")
      assert.strictEqual(r.mismatches[0]!.expected, "not-the-token")
      assert.strictEqual(r.mismatches[0]!.actual, recorded("usage-engine", "success")["response"].body.access_token)
    })
  )

  it.effect("a wrong rotated refresh token", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("brandbox", "refresh-rotation", (f) => {
        f["expect"].refresh_token = f["token"].refresh_token
      })
      assert.deepStrictEqual(
        r.mismatches.map((m) => m.field),
        ["expect.refresh_token"]
      )
    })
  )

  it.effect("a wrong nested JSON body field is named by its full path", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("crm-com", "success", (f) => {
        f["request"].json.access_token_identifier.authentication_code = "other"
      })
      assert.deepStrictEqual(r.mismatches, [
        { field: "request.json.access_token_identifier.authentication_code", expected: "other", actual: "p_kestora1!" }
      ])
    })
  )

  it.effect("a header that must not be sent, and one that differs", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("oauth2", "client-secret-post", (f) => {
        f["request"].headers.authorization = "Basic abc"
        f["request"].headers["Content-Type"] = "application/json"
        delete f["request"].headers["content-type"]
      })
      assert.deepStrictEqual(r.mismatches, [
        { field: "request.headers.authorization", expected: "Basic abc", actual: undefined },
        {
          field: "request.headers.content-type",
          expected: "application/json",
          actual: "application/x-www-form-urlencoded"
        }
      ])
    })
  )

  it.effect("a missing input is named, and the request it leaves unbuilt; the answer is not blamed", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("cube", "success", (f) => {
        delete f["inputs"].client_id
      })
      assert.sameMembers(
        r.mismatches.map((m) => m.field),
        ["inputs.client_id", "request"]
      )
    })
  )

  it.effect("a wrong URL and method", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("dvinci", "success", (f) => {
        f["request"].url = "https://sandbox.invalid/dvinci/oauth/token"
        f["request"].method = "GET"
      })
      assert.sameMembers(
        r.mismatches.map((m) => m.field),
        ["request.method", "request.url"]
      )
    })
  )

  it.effect("a wrong failure classification", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("cube", "invalid-client", (f) => {
        f["expect"].kind = "transient"
        f["expect"].code = "invalid_grant"
      })
      assert.deepStrictEqual(r.mismatches, [
        { field: "expect.kind", expected: "transient", actual: "reauthenticate" },
        { field: "expect.code", expected: "invalid_grant", actual: "invalid_client" }
      ])
    })
  )

  it.effect("a failure expected where the response yields a token", () =>
    Effect.gen(function* () {
      const r = yield* replayAltered("dvinci", "success", (f) => {
        f["expect"] = { error: "UpstreamRejected", status: 401 }
      })
      assert.deepStrictEqual(r.mismatches, [{ field: "expect.error", expected: "UpstreamRejected", actual: "a token" }])
    })
  )

  it.effect("the replay clock is the Date header: a JWT exp gives the same lifetime on every run", () =>
    Effect.gen(function* () {
      const f = recorded("crm-com", "success")
      const catalog = yield* Catalog.load()
      const once = yield* Fixture.replay(writeCopy(f, "crm-com", "success"), catalog)
      const twice = yield* Fixture.replay(writeCopy(f, "crm-com", "success"), catalog)
      assert.deepStrictEqual([once.mismatches, twice.mismatches], [[], []])
      const later = yield* replayAltered(
        "crm-com",
        "success",
        (g) => {
          g["response"].headers.date = new Date(Date.parse(g["response"].headers.date) + 60_000).toUTCString()
        },
        catalog
      )
      assert.deepStrictEqual(later.mismatches, [
        {
          field: "expect.lifetime_seconds",
          expected: f["expect"].lifetime_seconds,
          actual: f["expect"].lifetime_seconds - 60
        }
      ])
    })
  )
})

describe("Fixture.replay catches manifest drift", () => {
  it.effect("a changed default in the manifest changes the request", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogWith("cube", (y) =>
        y.replace("scope: { default: profile", "scope: { default: openid")
      )
      const r = yield* Fixture.replay(join(fixturesDir, "cube", "success.json"), catalog)
      assert.deepStrictEqual(r.mismatches, [{ field: "request.form.scope", expected: "profile", actual: "openid" }])
    })
  )

  it.effect("a changed client authentication method changes the headers and the form", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogWith("dvinci", (y) =>
        y.replace("client_auth: { method: client_secret_post }", "client_auth: { method: client_secret_basic }")
      )
      const r = yield* Fixture.replay(join(fixturesDir, "dvinci", "success.json"), catalog)
      assert.sameMembers(
        r.mismatches.map((m) => m.field),
        ["request.headers.authorization", "request.form.client_id", "request.form.client_secret"]
      )
    })
  )

  it.effect("a changed envelope no longer finds the token", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogWith("crm-com", (y) =>
        y.replace("fields: { access_token: token }", "fields: { access_token: jwt }")
      )
      const r = yield* Fixture.replay(join(fixturesDir, "crm-com", "success.json"), catalog)
      assert.strictEqual(r.mismatches.length, 1)
      assert.strictEqual(r.mismatches[0]!.field, "expect.error")
      assert.match(String(r.mismatches[0]!.actual), /ResponseInvalid: .*data\.jwt: missing/)
    })
  )

  it.effect("without its success predicate, brandbox's code 5 is no longer read as the provider's rejection", () =>
    Effect.gen(function* () {
      const catalog = yield* catalogWith("brandbox", (y) => y.replace("  success: { path: code, equals: 0 }\n", ""))
      const r = yield* Fixture.replay(join(fixturesDir, "brandbox", "envelope-error.json"), catalog)
      assert.deepStrictEqual(r.mismatches[0], {
        field: "expect.error",
        expected: "UpstreamRejected",
        actual: "ResponseInvalid"
      })
      assert.sameMembers(
        r.mismatches.map((m) => m.field),
        ["expect.error", "expect.kind", "expect.code"]
      )
    })
  )
})

describe("fixtures that cannot be replayed", () => {
  it.effect("not JSON", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(Fixture.replay(writeCopy("{ nope", "cube", "broken"), yield* Catalog.load()))
      assert.strictEqual(e._tag, "FixtureInvalid")
      assert.match(e.problems[0]!, /^not JSON/)
    })
  )

  it.effect("not the fixture shape: every problem with its path", () =>
    Effect.gen(function* () {
      const f = recorded("cube", "success")
      f["flow"] = "renew"
      delete f["expect"]
      f["response"].status = "200"
      const e = yield* Effect.flip(Fixture.replay(writeCopy(f, "cube", "broken"), yield* Catalog.load()))
      const text = e.problems.join("\n")
      for (const path of ["flow", "expect", "response.status"])
        assert.match(text, new RegExp(`^${path.replace(".", "\\.")}: `, "m"), text)
    })
  )

  it.effect("a provider that does not match its directory, and one that does not exist", () =>
    Effect.gen(function* () {
      const catalog = yield* Catalog.load()
      const moved = yield* Effect.flip(
        Fixture.replay(writeCopy(recorded("cube", "success"), "dvinci", "success"), catalog)
      )
      assert.include(moved.problems[0], 'provider "cube" does not match its directory "dvinci"')
      const f = recorded("cube", "success")
      f["provider"] = "cubee"
      const unknown = yield* Effect.flip(Fixture.replay(writeCopy(f, "cubee", "success"), catalog))
      assert.include(unknown.problems[0], 'unknown provider "cubee"')
    })
  )

  it.effect("a refresh fixture for a provider without a refresh flow", () =>
    Effect.gen(function* () {
      const f = recorded("cube", "success")
      f["flow"] = "refresh"
      const e = yield* Effect.flip(Fixture.replay(writeCopy(f, "cube", "refresh"), yield* Catalog.load()))
      assert.include(e.problems[0], "cube has no refresh flow")
    })
  )

  it.effect("replayAll replays the good ones and lists the bad ones", () =>
    Effect.gen(function* () {
      const root = mkdtempSync(join(tmpdir(), "tessera-fixtures-"))
      writeCopy(recorded("cube", "success"), "cube", "success", root)
      const wrong = recorded("cube", "invalid-client")
      wrong["expect"].status = 401
      writeCopy(wrong, "cube", "invalid-client", root)
      writeCopy("[]", "dvinci", "empty", root)
      writeFileSync(join(root, "README.md"), "not a provider directory")
      const all = yield* Fixture.replayAll(root, yield* Catalog.load())
      assert.deepStrictEqual(
        all.replays.map((r) => [r.name, r.mismatches.map((m) => m.field)]),
        [
          ["invalid-client", ["expect.status"]],
          ["success", []]
        ]
      )
      assert.deepStrictEqual(
        all.invalid.map((e) => e.file),
        [join(root, "dvinci", "empty.json")]
      )
    })
  )

  it.effect("replayAll fails only when the directory cannot be read", () =>
    Effect.gen(function* () {
      const e = yield* Effect.flip(Fixture.replayAll(join(tmpdir(), "tessera-no-such-dir"), yield* Catalog.load()))
      assert.strictEqual(e._tag, "FixtureInvalid")
      assert.include(e.problems[0], "ENOENT")
    })
  )
})
