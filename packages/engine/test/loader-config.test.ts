/** The config loader's corpus of broken tessera.yaml files: one test per kind of mistake, each pinning where the
 *  problem is (line:col, path), what it says, and whether it fails the whole file (ConfigInvalid) or only the
 *  connection it is in (listed in `problems`, the connection in `broken`). */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Config from "../src/config.ts"
import type { Problem } from "../src/problem.ts"
import { assertProblem, locate, onlyError } from "./fixtures/loader/helpers.ts"

/** A config file inside test/fixtures/loader, so `providers:` and `${file:...}` resolve against that directory. */
const file = fileURLToPath(new URL("./fixtures/loader/tessera.yaml", import.meta.url))
const env = {
  CUBE_SECRET: "cube-demo-secret",
  DVINCI_TOKEN: "dvinci-api-token",
  CRM_KEY: "EE73C0AE64524371B5DDEFF5F7BB2192",
  API_KEY: "k-123",
  EMPTY: ""
}

const load = (text: string) => Config.parse(file, text, env)
/** A file-level failure: the whole config is rejected. */
const invalid = (text: string) =>
  Effect.map(Effect.flip(load(text)), (e) => {
    assert.strictEqual(e._tag, "ConfigInvalid")
    return e.problems
  })
const errorsOf = (c: Config.Config): ReadonlyArray<Problem> => c.problems.filter((p) => p.severity === "error")

const dvinci = (inputs: string, extra = "") => `connections:
  hr:
    provider: dvinci
${extra}    inputs:
${inputs}`
const dvinciOk =
  "      base_url: https://jobs.example.com\n      client_id: api-user\n      client_secret: ${env:DVINCI_TOKEN}\n"

describe("Config.parse: a clean config", () => {
  it.effect("resolves its connection with no problem", () =>
    Effect.gen(function* () {
      const c = yield* load(dvinci(dvinciOk))
      assert.deepStrictEqual(c.problems, [])
      assert.deepStrictEqual([...c.connections.keys()], ["hr"])
      assert.strictEqual(c.connections.get("hr")!.inputs.get("token_url"), "https://jobs.example.com/plt/oauth2/token")
    })
  )

  it.effect("an empty file is an empty config", () =>
    Effect.gen(function* () {
      const c = yield* load("# nothing yet\n")
      assert.strictEqual(c.connections.size, 0)
      assert.deepStrictEqual(c.problems, [])
    })
  )
})

describe("Config.parse: file-level mistakes fail the whole config", () => {
  it.effect("YAML syntax error", () =>
    Effect.gen(function* () {
      const problems = yield* invalid("connections:\n  hr:\n    provider: dvinci: x\n")
      assertProblem(onlyError(problems), {
        line: 3,
        col: 15,
        path: "",
        message: "Nested mappings are not allowed in compact mappings"
      })
    })
  )

  it.effect("duplicate connection name", () =>
    Effect.gen(function* () {
      const text = "connections:\n  hr:\n    provider: dvinci\n  hr:\n    provider: cube\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, "hr", 2),
        path: "connections.hr",
        message: "duplicate key"
      })
    })
  )

  it.effect("a duplicate key deep inside is located at the second key, with its path", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: https://jobs.example.com\n      client_id: api-user\n      client_id: again\n      client_secret: ${env:DVINCI_TOKEN}\n"
      )
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, "client_id", 2),
        path: "connections.hr.inputs.client_id",
        message: "duplicate key: a key may appear only once in a mapping",
        hint: "remove or rename one of the two keys"
      })
    })
  )

  it.effect('keys 1 and "1" are duplicates: both would become the same property', () =>
    Effect.gen(function* () {
      const text = 'http:\n  1: a\n  "1": b\n'
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), { ...locate(text, '"1"'), path: "http.1", message: "duplicate key" })
    })
  )

  it.effect("YAML nested 3000 deep (flow or block) is a located problem with the limit, not a stack overflow", () =>
    Effect.gen(function* () {
      const flow = `connections:\n  a:\n    provider: oauth2\n    inputs:\n      x: ${"[".repeat(3000)}${"]".repeat(3000)}\n`
      const block = `connections:\n${Array.from({ length: 3000 }, (_, i) => `${" ".repeat(i + 2)}k${i}:\n`).join("")}`
      // The 65th collection: the top mapping, connections, a and inputs are four, so the 61st "[" (flow), or the
      // mapping starting on line 65 (block).
      for (const [text, line, col] of [
        [flow, 5, 10 + 60],
        [block, 65, 66]
      ] as const) {
        const problems = yield* invalid(text)
        assertProblem(onlyError(problems), {
          line,
          col,
          path: "",
          message: "nested more than 64 levels deep",
          hint: "at most 64 levels"
        })
      }
    })
  )

  it.effect("64 levels load; an alias inside its own anchor is a problem, not an endless structure", () =>
    Effect.gen(function* () {
      const c = yield* load(`http: ${"[".repeat(63)}${"]".repeat(63)}\n`).pipe(Effect.flip)
      assert.notInclude(c.problems[0]!.message, "nested")
      const problems = yield* invalid("connections: &x\n  a: [*x]\n")
      assertProblem(onlyError(problems), {
        line: 2,
        col: 7,
        path: "",
        message: "an alias refers to a collection that contains it"
      })
    })
  )

  it.effect("a document that is not a mapping", () =>
    Effect.gen(function* () {
      const problems = yield* invalid("- hr\n- crm\n")
      assertProblem(onlyError(problems), { line: 1, col: 1, path: "", message: "a config must be a YAML mapping" })
    })
  )

  it.effect("unknown top-level key, with did you mean", () =>
    Effect.gen(function* () {
      const text = "conections:\n  hr:\n    provider: dvinci\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        line: 1,
        col: 1,
        path: "conections",
        message: 'unknown key "conections"',
        hint: 'did you mean "connections"?'
      })
    })
  )

  it.effect("unknown key in a connection, with did you mean", () =>
    Effect.gen(function* () {
      const text = "connections:\n  hr:\n    provider: dvinci\n    input:\n      client_id: x\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, "input:"),
        path: "connections.hr.input",
        message: 'unknown key "input"',
        hint: 'did you mean "inputs"?'
      })
    })
  )

  it.effect("provider id that is not kebab-case", () =>
    Effect.gen(function* () {
      const text = "connections:\n  hr:\n    provider: DVinci\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, "DVinci"),
        path: "connections.hr.provider",
        message: 'string "DVinci" does not match',
        hint: "kebab-case"
      })
    })
  )

  it.effect("connection name with a bad first character: the hint quotes the rule for connection names", () =>
    Effect.gen(function* () {
      const text = 'connections:\n  "-hr":\n    provider: dvinci\n'
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, '"-hr"'),
        path: "connections.-hr",
        message: 'invalid key "-hr"',
        hint: "keys here must match ^[A-Za-z0-9][A-Za-z0-9_.-]*$"
      })
    })
  )

  it.effect("an input value that is a list", () =>
    Effect.gen(function* () {
      const text = dvinci("      base_url: [https://jobs.example.com]\n")
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        ...locate(text, "[https"),
        path: "connections.hr.inputs.base_url",
        message: "expected string or number or boolean, found a list"
      })
    })
  )

  it.effect("store type that does not exist", () =>
    Effect.gen(function* () {
      const text = "store:\n  type: s3\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), {
        line: 2,
        col: 9,
        path: "store.type",
        message: 'string "s3" is not allowed',
        hint: '"memory", "file", "redis"'
      })
    })
  )

  it.effect("server port out of range", () =>
    Effect.gen(function* () {
      const text = "server:\n  port: 70000\n"
      const problems = yield* invalid(text)
      assertProblem(onlyError(problems), { line: 2, col: 9, path: "server.port", message: "must be <= 65535" })
    })
  )

  it.effect("a broken manifest in a providers: directory fails the config, located in that manifest", () =>
    Effect.gen(function* () {
      const problems = yield* invalid("providers: [./broken-providers]\n")
      const p = onlyError(problems)
      assert.match(p.file, /broken-providers\/broken-demo\.yaml$/)
      const manifest = readFileSync(p.file, "utf8")
      assert.deepStrictEqual(locate(manifest, "{{ inputs.tenant }}"), { line: 7, col: 31 })
      assertProblem(p, {
        line: 7,
        col: 31,
        path: "flows.acquire.url",
        message: 'template uses undeclared input "tenant"'
      })
    })
  )

  it.effect("three schema mistakes in one file give three problems", () =>
    Effect.gen(function* () {
      const text =
        "connections:\n  hr:\n    provider: dvinci\n    alow_insecure_http: true\nstore:\n  type: s3\nhttp:\n  retries: -1\n"
      const problems = yield* invalid(text)
      assert.strictEqual(problems.length, 3)
      assertProblem(
        problems.find((p) => p.path === "connections.hr.alow_insecure_http"),
        {
          ...locate(text, "alow_insecure_http"),
          path: "connections.hr.alow_insecure_http",
          message: "unknown key",
          hint: 'did you mean "allow_insecure_http"?'
        },
        problems
      )
      assertProblem(
        problems.find((p) => p.path === "store.type"),
        { ...locate(text, "s3"), path: "store.type", message: "is not allowed" },
        problems
      )
      assertProblem(
        problems.find((p) => p.path === "http.retries"),
        { ...locate(text, "-1"), path: "http.retries", message: "must be >= 0" },
        problems
      )
    })
  )
})

describe("Config.parse: connection mistakes break only their connection", () => {
  it.effect("unknown provider, with did you mean", () =>
    Effect.gen(function* () {
      const text = "connections:\n  erp:\n    provider: cueb\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "cueb"),
        path: "connections.erp.provider",
        message: 'unknown provider "cueb"',
        hint: 'did you mean "cube"?'
      })
      assert.deepStrictEqual([...c.broken.keys()], ["erp"])
    })
  )

  it.effect("unknown provider with nothing close: the known providers", () =>
    Effect.gen(function* () {
      const text = "connections:\n  erp:\n    provider: salesforce\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "salesforce"),
        path: "connections.erp.provider",
        message: 'unknown provider "salesforce"',
        hint: "known providers: api-key, basic, brandbox, crm-com, cube, dvinci, github-app, google-service-account, oauth2, salesforce-jwt, usage-engine"
      })
    })
  )

  it.effect("a provider from a providers: directory is known", () =>
    Effect.gen(function* () {
      const c = yield* load(
        "providers: [./providers]\nconnections:\n  p:\n    provider: pattern-demo\n    inputs:\n      tenant: acme\n"
      )
      assert.deepStrictEqual(c.problems, [])
      assert.strictEqual(c.connections.get("p")!.inputs.get("token_url"), "https://idp.example/eu/acme/token")
    })
  )

  it.effect("unknown input, with did you mean, at the input name", () =>
    Effect.gen(function* () {
      const text = dvinci(`${dvinciOk}      clientsecret: x\n`)
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "clientsecret"),
        path: "connections.hr.inputs.clientsecret",
        message: 'dvinci has no input "clientsecret"',
        hint: 'did you mean "client_secret"?'
      })
      assert.isTrue(c.broken.has("hr"))
    })
  )

  it.effect("missing required input, at the connection's inputs", () =>
    Effect.gen(function* () {
      const text = dvinci("      base_url: https://jobs.example.com\n      client_secret: ${env:DVINCI_TOKEN}\n")
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "base_url"),
        path: "connections.hr.inputs",
        message: 'missing required input "client_id" (API user name)'
      })
    })
  )

  it.effect("no inputs at all: every required input is missing, at the connection", () =>
    Effect.gen(function* () {
      const text = "connections:\n  hr:\n    provider: dvinci\n"
      const c = yield* load(text)
      assert.deepStrictEqual(
        errorsOf(c).map((p) => [p.line, p.col, p.path, p.message]),
        [
          [3, 5, "connections.hr", 'missing required input "base_url" (d.vinci host)'],
          [3, 5, "connections.hr", 'missing required input "client_id" (API user name)'],
          [3, 5, "connections.hr", 'missing required input "client_secret" (API token)']
        ]
      )
    })
  )

  it.effect("unset ${env:VAR}, reported once (not again as missing)", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: https://jobs.example.com\n      client_id: api-user\n      client_secret: ${env:DVINCI_API_TOKEN}\n"
      )
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "${env:DVINCI_API_TOKEN}"),
        path: "connections.hr.inputs.client_secret",
        message: "environment variable DVINCI_API_TOKEN is not set",
        hint: "${env:DVINCI_API_TOKEN:-value}"
      })
    })
  )

  it.effect("an empty ${env:VAR} counts as unset; a fallback fills it", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: https://jobs.example.com\n      client_id: ${env:EMPTY}\n      client_secret: ${env:NOPE:-fallback-token}\n"
      )
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "${env:EMPTY}"),
        path: "connections.hr.inputs.client_id",
        message: "environment variable EMPTY is not set"
      })
    })
  )

  it.effect("missing ${file:...}, relative to the config file", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: https://jobs.example.com\n      client_id: api-user\n      client_secret: ${file:./secrets/dvinci-token}\n"
      )
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "${file:"),
        path: "connections.hr.inputs.client_secret",
        message: /cannot read .*fixtures\/loader\/secrets\/dvinci-token: it does not exist \(ENOENT\)/,
        hint: "relative paths are taken from the config file's directory"
      })
    })
  )

  it.effect("an existing ${file:...} resolves, trailing newline trimmed, and stays secret", () =>
    Effect.gen(function* () {
      const c = yield* load(
        "connections:\n  erp:\n    provider: cube\n    inputs:\n      client_id: cube-demo-client\n      client_secret: ${file:./secrets/cube-client-secret}\n      tenant: acme\n"
      )
      assert.deepStrictEqual(c.problems, [])
      const secret = c.connections.get("erp")!.inputs.get("client_secret")!
      assert.isTrue(Redacted.isRedacted(secret))
      assert.strictEqual(Redacted.value(secret as Redacted.Redacted<string>), "cube-demo-secret")
    })
  )

  it.effect("a secret written literally is a warning, and the connection still works", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: https://jobs.example.com\n      client_id: api-user\n      client_secret: hunter2\n"
      )
      const c = yield* load(text)
      assert.deepStrictEqual(errorsOf(c), [])
      assert.strictEqual(c.problems.length, 1)
      assertProblem(c.problems[0], {
        ...locate(text, "hunter2"),
        path: "connections.hr.inputs.client_secret",
        message: "secret input written literally in the config file",
        hint: "${env:VAR} or ${file:PATH}",
        severity: "warning"
      })
      assert.isTrue(c.connections.has("hr"))
      assert.notInclude(c.problems[0]!.message + (c.problems[0]!.hint ?? ""), "hunter2")
    })
  )

  it.effect("an input value outside its enum", () =>
    Effect.gen(function* () {
      const text =
        "connections:\n  idp:\n    provider: oauth2\n    inputs:\n      token_url: https://idp.example/token\n      client_id: c\n      client_secret: ${env:API_KEY}\n      grant_type: implicit\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "implicit"),
        path: "connections.idp.inputs.grant_type",
        message: '"implicit" is not allowed',
        hint: "use one of: client_credentials, password"
      })
    })
  )

  it.effect("an input value that does not match its pattern", () =>
    Effect.gen(function* () {
      const text =
        "providers: [./providers]\nconnections:\n  p:\n    provider: pattern-demo\n    inputs:\n      tenant: ACME\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "ACME"),
        path: "connections.p.inputs.tenant",
        message: '"ACME" does not match ^[a-z]+$',
        hint: "e.g. acme"
      })
    })
  )

  it.effect("an integer input that is not a whole number", () =>
    Effect.gen(function* () {
      const text =
        "providers: [./providers]\nconnections:\n  p:\n    provider: pattern-demo\n    inputs:\n      tenant: acme\n      ttl: 1h\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "1h"),
        path: "connections.p.inputs.ttl",
        message: '"1h" is not a whole number'
      })
    })
  )

  it.effect("a url input that is not an absolute URL, reported once (not again for the token_url built from it)", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: jobs.example.com\n      client_id: api-user\n      client_secret: ${env:DVINCI_TOKEN}\n"
      )
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "jobs.example.com"),
        path: "connections.hr.inputs.base_url",
        message: '"jobs.example.com" is not an absolute URL',
        hint: "https://api.example.com"
      })
    })
  )

  it.effect("a secret value that breaks its pattern is never quoted in the problem", () =>
    Effect.gen(function* () {
      const text =
        "providers: [./providers]\nconnections:\n  p:\n    provider: pattern-demo\n    inputs:\n      tenant: acme\n      pin: ${env:API_KEY}\n"
      const c = yield* load(text)
      const p = onlyError(c.problems)
      assertProblem(p, {
        ...locate(text, "${env:API_KEY}"),
        path: "connections.p.inputs.pin",
        message: "the value does not match ^[0-9]{4}$"
      })
      assert.notInclude(`${p.message} ${p.hint ?? ""}`, env.API_KEY)
    })
  )

  it.effect("plain http:// to a remote host, reported once at the value", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: http://jobs.example.com\n      client_id: api-user\n      client_secret: ${env:DVINCI_TOKEN}\n"
      )
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "http://jobs"),
        path: "connections.hr.inputs.base_url",
        message: "uses plain http:// to jobs.example.com",
        hint: "allow_insecure_http: true"
      })
    })
  )

  it.effect("plain http:// to loopback is fine", () =>
    Effect.gen(function* () {
      const c = yield* load(
        dvinci(
          "      base_url: http://127.0.0.1:8080\n      client_id: api-user\n      client_secret: ${env:DVINCI_TOKEN}\n"
        )
      )
      assert.deepStrictEqual(c.problems, [])
    })
  )

  it.effect("allow_insecure_http: true permits it, with a warning at the flag", () =>
    Effect.gen(function* () {
      const text = dvinci(
        "      base_url: http://jobs.example.com\n      client_id: api-user\n      client_secret: ${env:DVINCI_TOKEN}\n",
        "    allow_insecure_http: true\n"
      )
      const c = yield* load(text)
      assert.deepStrictEqual(errorsOf(c), [])
      assertProblem(
        c.problems[0],
        {
          ...locate(text, "true"),
          path: "connections.hr.allow_insecure_http",
          message: "plain http:// is allowed for this connection",
          severity: "warning"
        },
        c.problems
      )
    })
  )

  it.effect("a default that is bad on its own is reported under its input's name", () =>
    Effect.gen(function* () {
      const text =
        "providers: [./providers]\nconnections:\n  legacy:\n    provider: insecure-default\n    inputs:\n      client_id: c\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "client_id"),
        path: "connections.legacy.inputs",
        message: 'default of "token_url": "http://idp.example/token" uses plain http:// to idp.example'
      })
    })
  )

  it.effect("input_rules one_of: crm-com with no credential group", () =>
    Effect.gen(function* () {
      const text =
        "connections:\n  crm:\n    provider: crm-com\n    inputs:\n      base_url: https://api.crm.example\n      api_key: ${env:CRM_KEY}\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "base_url"),
        path: "connections.crm.inputs",
        message:
          "none of the input groups is complete: authentication_code | identifier + pass_code | jwt + organisation",
        hint: "Give authentication_code, or identifier and pass_code, or jwt and organisation."
      })
      assert.isTrue(c.broken.has("crm"))
    })
  )

  it.effect("input_rules one_of: crm-com with two credential groups", () =>
    Effect.gen(function* () {
      const text =
        "connections:\n  crm:\n    provider: crm-com\n    inputs:\n      base_url: https://api.crm.example\n      api_key: ${env:CRM_KEY}\n      authentication_code: ${env:API_KEY}\n      identifier: me\n      pass_code: ${env:API_KEY}\n"
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "base_url"),
        path: "connections.crm.inputs",
        message: "give exactly one input group of:"
      })
    })
  )

  it.effect("input_rules when: oauth2 password grant without username and password", () =>
    Effect.gen(function* () {
      const text =
        "connections:\n  idp:\n    provider: oauth2\n    inputs:\n      token_url: https://idp.example/token\n      client_id: c\n      client_secret: ${env:API_KEY}\n      grant_type: password\n"
      const c = yield* load(text)
      assert.deepStrictEqual(
        errorsOf(c).map((p) => [p.line, p.col, p.path, p.message]),
        [
          [5, 7, "connections.idp.inputs", '"username" is required when grant_type is password'],
          [5, 7, "connections.idp.inputs", '"password" is required when grant_type is password']
        ]
      )
    })
  )

  it.effect("api_keys naming an unknown connection, at the name", () =>
    Effect.gen(function* () {
      const text = `${dvinci(dvinciOk)}server:\n  api_keys:\n    - key: \${env:API_KEY}\n      connections: [hr, crm]\n`
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "crm]"),
        path: "server.api_keys[0].connections[1]",
        message: 'unknown connection "crm"',
        hint: "configured connections: hr; scope a key to stored connections with tags: instead"
      })
    })
  )

  it.effect("api_keys with tags: {}, at the tags (it would select every connection)", () =>
    Effect.gen(function* () {
      const text = `${dvinci(dvinciOk)}server:\n  api_keys:\n    - key: \${env:API_KEY}\n      tags: {}\n`
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "{}"),
        path: "server.api_keys[0].tags",
        message: "tags: {} selects every connection, so the key is no tenant's",
        hint: "give the tenant's tags (tags: { tenant: acme }), or leave tags out for a key that sees every connection"
      })
    })
  )

  it.effect("an api key written literally is a warning", () =>
    Effect.gen(function* () {
      const text = "server:\n  api_keys:\n    - key: s3cr3t-key\n"
      const c = yield* load(text)
      assertProblem(
        c.problems[0],
        {
          line: 3,
          col: 12,
          path: "server.api_keys[0].key",
          message: "api_key written literally in the config file",
          severity: "warning"
        },
        c.problems
      )
      assert.strictEqual(c.server.apiKeys.length, 1)
    })
  )

  it.effect("__proto__ as an input name is an unknown input, and pollutes nothing", () =>
    Effect.gen(function* () {
      const text = dvinci(`${dvinciOk}      __proto__: polluted\n`)
      const c = yield* load(text)
      assertProblem(onlyError(c.problems), {
        ...locate(text, "__proto__"),
        path: "connections.hr.inputs.__proto__",
        message: 'dvinci has no input "__proto__"'
      })
      assert.isFalse(Object.hasOwn(Object.prototype, "polluted"))
      assert.isUndefined(({} as Record<string, unknown>)["__proto__polluted"])
    })
  )

  it.effect("three broken connections give three problems; a good one beside them still resolves", () =>
    Effect.gen(function* () {
      const text = `connections:
  erp:
    provider: cueb
  hr:
    provider: dvinci
    inputs:
      base_url: https://jobs.example.com
      client_id: api-user
      client_secret: \${env:NOPE}
  usage:
    provider: usage-engine
    inputs:
      token_url: http://idp.example/oauth/token
      client_id: ue
      client_secret: \${env:API_KEY}
      audience: https://api.example
  shop:
    provider: cube
    inputs:
      client_id: cube-demo-client
      client_secret: \${env:CUBE_SECRET}
      tenant: acme
`
      const c = yield* load(text)
      assert.deepStrictEqual(
        errorsOf(c).map((p) => [p.line, p.col, p.path]),
        [
          [locate(text, "cueb").line, locate(text, "cueb").col, "connections.erp.provider"],
          [locate(text, "${env:NOPE}").line, locate(text, "${env:NOPE}").col, "connections.hr.inputs.client_secret"],
          [locate(text, "http://idp").line, locate(text, "http://idp").col, "connections.usage.inputs.token_url"]
        ]
      )
      assert.deepStrictEqual([...c.broken.keys()], ["erp", "hr", "usage"])
      assert.deepStrictEqual([...c.connections.keys()], ["shop"])
    })
  )
})

describe("store section", () => {
  it("a redis store without url and encryption_key is reported at the store, naming each missing key", async () => {
    const text = "store:\n  type: redis\n"
    const r = await Effect.runPromise(Effect.result(Config.parse("/x/tessera.yaml", text, {})))
    assert.strictEqual(r._tag, "Failure")
    if (r._tag !== "Failure") return
    assert.strictEqual(r.failure._tag, "ConfigInvalid")
    assert.deepStrictEqual(
      r.failure.problems.map((p) => `${p.line}:${p.col} ${p.path} ${p.message}`),
      ['2:3 store missing required key "url"', '2:3 store missing required key "encryption_key"']
    )
  })
})
