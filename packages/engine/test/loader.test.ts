/** The manifest loader's corpus of broken manifests: one test per kind of mistake, each pinning the failure tag,
 *  the exact line:col, the path and the words a user reads. Also: every problem is reported at once, the bundled
 *  manifests load clean, and `__proto__` keys stay plain data. (Config mistakes: loader-config.test.ts.) */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { readdirSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as Catalog from "../src/catalog.ts"
import * as Connection from "../src/connection.ts"
import * as Manifest from "../src/manifest.ts"
import * as TokenRequest from "../src/token-request.ts"
import { assertProblem, locate, onlyError } from "./fixtures/loader/helpers.ts"

/** A valid manifest with slots for the lines a test adds. `file` is demo.yaml, so the id matches. */
const demo = (
  o: { id?: string; inputs?: string; rules?: string; acquire?: string; flows?: string; rest?: string } = {}
) => `id: ${o.id ?? "demo"}
name: Demo
inputs:
  client_id: {}
  client_secret: { secret: true }
  token_url: { type: url, default: "https://idp.example/token", required: false }
${o.inputs ?? ""}${o.rules ?? ""}flows:
  acquire:
    url: "{{ inputs.token_url }}"
    grant_type: client_credentials
${o.acquire ?? ""}${o.flows ?? ""}${o.rest ?? ""}`

const invalid = (text: string, file = "demo.yaml") => Effect.flip(Manifest.parse(file, text))
const error = (text: string, file = "demo.yaml") =>
  Effect.map(invalid(text, file), (e) => {
    assert.strictEqual(e._tag, "ManifestInvalid")
    return onlyError(e.problems)
  })

describe("Manifest.parse: the base manifest", () => {
  it.effect("loads with no problem at all", () =>
    Effect.gen(function* () {
      const m = yield* Manifest.parse("demo.yaml", demo())
      assert.strictEqual(m.id, "demo")
      assert.deepStrictEqual(m.warnings, [])
    })
  )
})

describe("Manifest.parse: YAML", () => {
  it.effect("syntax error: a mapping nested in a compact one, at the nested value", () =>
    Effect.gen(function* () {
      const text = "id: demo\nname: a: b\n"
      const p = yield* error(text)
      assertProblem(p, {
        line: 2,
        col: 7,
        path: "",
        message: "Nested mappings are not allowed in compact mappings",
        hint: "fix the YAML syntax"
      })
    })
  )

  it.effect("syntax error: a tab used as indentation, at the tab", () =>
    Effect.gen(function* () {
      const text = "id: demo\nname: Demo\ninputs:\n\tclient_id: {}\n"
      const p = yield* error(text)
      assertProblem(p, { line: 4, col: 1, path: "", message: "Tabs are not allowed as indentation" })
    })
  )

  it.effect("duplicate key, at the second occurrence", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  client_id: { title: again }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "client_id", 2),
        path: "inputs.client_id",
        message: "duplicate key",
        hint: "remove or rename one of the two keys"
      })
    })
  )

  it.effect("an alias without its anchor is a problem at the alias, not a crash", () =>
    Effect.gen(function* () {
      const text = "id: demo\nname: *display_name\n"
      const p = yield* error(text)
      assertProblem(p, {
        line: 2,
        col: 7,
        path: "",
        message: "Unresolved alias",
        hint: "define the anchor (&name) before its alias (*name)"
      })
    })
  )

  it.effect("a manifest nested 3000 deep is a located problem, not a stack overflow", () =>
    Effect.gen(function* () {
      const text = demo({ rest: `api: ${"{a: ".repeat(3000)}1${"}".repeat(3000)}\n` })
      const p = yield* error(text)
      // The top mapping is the first level and the first "{" the second, so the 64th "{" is the 65th collection.
      assertProblem(p, { ...locate(text, "{a: ", 64), path: "", message: "nested more than 64 levels deep" })
    })
  )

  it.effect("an alias bomb is refused as a problem, not expanded", () =>
    Effect.gen(function* () {
      const levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
      for (let i = 1; i <= 8; i++)
        levels.push(
          `${"abcdefghi"[i]}: &${"abcdefghi"[i]} [${Array(9)
            .fill(`*${"abcdefghi"[i - 1]}`)
            .join(", ")}]`
        )
      const text = `${levels.join("\n")}\n`
      const p = yield* error(text)
      assertProblem(p, { ...locate(text, "*a"), path: "", message: "Excessive alias count" })
    })
  )

  it.effect("a document that is a list, not a mapping", () =>
    Effect.gen(function* () {
      const p = yield* error("- id: demo\n- name: Demo\n")
      assertProblem(p, { line: 1, col: 1, path: "", message: "a manifest must be a YAML mapping" })
    })
  )

  it.effect("an empty document", () =>
    Effect.gen(function* () {
      const p = yield* error("# nothing here\n")
      assertProblem(p, { line: 1, col: 1, path: "", message: "a manifest must be a YAML mapping" })
    })
  )
})

describe("Manifest.parse: schema", () => {
  it.effect("missing required key, at the mapping that lacks it", () =>
    Effect.gen(function* () {
      const text = "id: demo\nname: Demo\ninputs:\n  client_id: {}\n"
      const p = yield* error(text)
      assertProblem(p, {
        line: 1,
        col: 1,
        path: "",
        message: 'missing required key "flows"',
        hint: "kind oauth2 (the default) gets tokens from flows; a static credential says kind: api_key or basic and needs only apply"
      })
    })
  )

  it.effect("missing required key in a nested mapping", () =>
    Effect.gen(function* () {
      const text = demo().replace('    url: "{{ inputs.token_url }}"\n', "")
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "grant_type: client_credentials"),
        path: "flows.acquire",
        message: 'missing required key "url"'
      })
    })
  )

  it.effect("unknown top-level key, with did you mean", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "respnse:\n  envelope: data\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "respnse"),
        path: "respnse",
        message: 'unknown key "respnse"',
        hint: 'did you mean "response"?'
      })
    })
  )

  it.effect("unknown nested key, with did you mean, at the key", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    encodng: form\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "encodng"),
        path: "flows.acquire.encodng",
        message: 'unknown key "encodng"',
        hint: 'did you mean "encoding"?'
      })
    })
  )

  it.effect("unknown key with nothing close: the allowed keys", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "response:\n  success: { path: code, equals: 0, negate: true }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "negate"),
        path: "response.success.negate",
        message: 'unknown key "negate"',
        hint: "allowed keys: path, equals, in"
      })
    })
  )

  it.effect("wrong type: a number where a string is expected", () =>
    Effect.gen(function* () {
      const text = demo().replace("name: Demo", "name: 42")
      const p = yield* error(text)
      assertProblem(p, { ...locate(text, "42"), path: "name", message: "expected string, found number 42" })
    })
  )

  it.effect("wrong type: a string where a boolean is expected", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  api_key: { secret: yes please }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "yes please"),
        path: "inputs.api_key.secret",
        message: 'expected boolean, found string "yes please"'
      })
    })
  )

  it.effect("wrong type: a missing value (null)", () =>
    Effect.gen(function* () {
      const text = demo().replace("name: Demo", "name:")
      const p = yield* error(text)
      assertProblem(p, { line: 2, col: 6, path: "name", message: "expected string, found null" })
    })
  )

  it.effect("bad enum value, with the allowed values", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  tenant: { type: number }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "number"),
        path: "inputs.tenant.type",
        message: 'string "number" is not allowed',
        hint: 'use one of: "string", "url", "integer"'
      })
    })
  )

  it.effect("bad enum value in a flow (encoding)", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    encoding: xml\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "xml"),
        path: "flows.acquire.encoding",
        message: 'string "xml" is not allowed',
        hint: '"form", "json"'
      })
    })
  )

  it.effect("bad id pattern: not kebab-case", () =>
    Effect.gen(function* () {
      const text = demo({ id: "Demo_Provider" })
      const p = yield* error(text)
      assertProblem(p, {
        line: 1,
        col: 5,
        path: "id",
        message: 'string "Demo_Provider" does not match',
        hint: "kebab-case"
      })
    })
  )

  it.effect("input name that is not snake_case", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  clientId: {}\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "clientId"),
        path: "inputs.clientId",
        message: 'invalid key "clientId"',
        hint: "snake_case"
      })
    })
  )

  it.effect("invalid regular expression in an input pattern", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: '  tenant: { pattern: "[a-z" }\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '"[a-z"'),
        path: "inputs.tenant.pattern",
        message: 'string "[a-z" is not a valid regex'
      })
    })
  )

  it.effect("success predicate with neither equals nor in", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "response:\n  success: { path: code }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{ path: code }"),
        path: "response.success",
        message: "needs at least 2 keys",
        hint: "Give `equals` or `in`"
      })
    })
  )

  it.effect("malformed response path", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "response:\n  envelope: data..token\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "data..token"),
        path: "response.envelope",
        message: 'string "data..token" does not match'
      })
    })
  )

  it.effect("error status outside 100-599", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "errors:\n  transient:\n    status: [503, 600]\n" })
      const p = yield* error(text)
      assertProblem(p, { ...locate(text, "600"), path: "errors.transient.status[1]", message: "must be <= 599" })
    })
  )

  it.effect("docs that is not a URL", () =>
    Effect.gen(function* () {
      const text = demo().replace("name: Demo", "name: Demo\ndocs: see the wiki")
      const p = yield* error(text)
      assertProblem(p, { line: 3, col: 7, path: "docs", message: 'string "see the wiki" is not a valid uri' })
    })
  )
})

describe("Manifest.parse: cross-references and flow rules", () => {
  it.effect("id does not match the file name", () =>
    Effect.gen(function* () {
      const text = demo({ id: "other" })
      const p = yield* error(text)
      assertProblem(p, {
        line: 1,
        col: 5,
        path: "id",
        message: 'id "other" does not match the file name "demo.yaml"',
        hint: "rename the file to other.yaml or set id: demo"
      })
    })
  )

  it.effect("template naming an undeclared input, at the placeholder", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: '    body:\n      audience: "https://api.example/{{ inputs.tenant }}"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ inputs.tenant }}"),
        path: "flows.acquire.body.audience",
        message: 'template uses undeclared input "tenant"',
        hint: "declared: client_id, client_secret, token_url"
      })
    })
  )

  it.effect("template syntax error: unclosed {{, at the {{", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: '    body:\n      scope: "read {{ inputs.client_id"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '{{ inputs.client_id"'),
        path: "flows.acquire.body.scope",
        message: 'unclosed "{{" in template',
        hint: "{{ inputs.name }}"
      })
    })
  )

  it.effect("template syntax error: a malformed placeholder", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    body:\n      scope: '{{ inputs.token-url }}'\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ inputs.token-url"),
        path: "flows.acquire.body.scope",
        message: 'invalid placeholder "{{ inputs.token-url }}"'
      })
    })
  )

  it.effect("template with an unknown scope", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    body:\n      home: x-{{ env.HOME }}\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ env.HOME }}"),
        path: "flows.acquire.body.home",
        message: 'unknown scope "env"',
        hint: "{{ inputs.name }}"
      })
    })
  )

  it.effect("token.* in the acquire flow, where there is no token yet", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: '    headers:\n      X-Previous: "{{ token.access_token }}"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ token.access_token }}"),
        path: "flows.acquire.headers.X-Previous",
        message: '"{{ token.access_token }}" is not available here',
        hint: "only available in the refresh flow and in apply.value"
      })
    })
  )

  it.effect("token.* in an input default", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: '  previous: { default: "{{ token.refresh_token }}", required: false }\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ token.refresh_token }}"),
        path: "inputs.previous.default",
        message: "is not available here"
      })
    })
  )

  it.effect("unknown token field", () =>
    Effect.gen(function* () {
      const text = demo({ rest: 'apply:\n  value: "Bearer {{ token.access_token }} {{ token.id_token }}"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{{ token.id_token }}"),
        path: "apply.value",
        message: 'unknown token field "id_token"',
        hint: "access_token, refresh_token, token_type"
      })
    })
  )

  it.effect("input defaults that form a cycle", () =>
    Effect.gen(function* () {
      const text = demo({
        inputs:
          '  host: { default: "{{ inputs.base }}", required: false }\n  base: { default: "https://{{ inputs.host }}", required: false }\n'
      })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '"{{ inputs.base }}"'),
        path: "inputs.host.default",
        message: "input defaults form a cycle: host -> base -> host",
        hint: "break the cycle"
      })
    })
  )

  it.effect("input_rules naming an undeclared input", () =>
    Effect.gen(function* () {
      const text = demo({ rules: "input_rules:\n  - one_of: [[client_secret], [private_key]]\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "one_of"),
        path: "input_rules[0]",
        message: 'rule names undeclared input "private_key"',
        hint: "declare it under inputs:"
      })
    })
  )

  it.effect("input_rules when-value outside the input's enum", () =>
    Effect.gen(function* () {
      const text = demo({
        inputs: "  mode: { enum: [basic, post], default: basic, required: false }\n",
        rules: "input_rules:\n  - when: { mode: jwt }\n    require: [client_secret]\n"
      })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "jwt"),
        path: "input_rules[0].when.mode",
        message: '"jwt" is never a value of mode',
        hint: "its enum is: basic, post"
      })
    })
  )

  it.effect("templated grant_type over an input without an enum", () =>
    Effect.gen(function* () {
      const text = demo().replace("grant_type: client_credentials", 'grant_type: "{{ inputs.client_id }}"')
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '"{{ inputs.client_id }}"'),
        path: "flows.acquire.grant_type",
        message: "a templated grant_type must be exactly one {{ inputs.x }} over an input with an enum",
        hint: "give the input an enum"
      })
    })
  )

  it.effect("client_auth.method that does not exist", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    client_auth: { method: tls_client_auth }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "tls_client_auth"),
        path: "flows.acquire.client_auth.method",
        message: 'unknown client_auth.method "tls_client_auth"',
        hint: "client_secret_basic, client_secret_post, private_key_jwt, client_secret_jwt, none"
      })
    })
  )

  it.effect("templated client_auth.method whose enum allows a method that does not exist, at the enum", () =>
    Effect.gen(function* () {
      const text = demo({
        inputs:
          "  auth: { enum: [client_secret_basic, tls_client_auth], default: client_secret_basic, required: false }\n",
        acquire: '    client_auth: { method: "{{ inputs.auth }}" }\n'
      })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "[client_secret_basic, tls_client_auth]"),
        path: "inputs.auth.enum",
        message: "enum values tls_client_auth are not valid for client_auth.method"
      })
    })
  )

  it.effect("refresh flow with a grant_type other than refresh_token", () =>
    Effect.gen(function* () {
      const text = demo({
        flows: '  refresh:\n    url: "{{ inputs.token_url }}"\n    grant_type: client_credentials\n'
      })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "client_credentials", 2),
        path: "flows.refresh.grant_type",
        message: 'the refresh flow must use grant_type refresh_token (RFC 6749 §6), found "client_credentials"'
      })
    })
  )

  it.effect("acquire flow with grant_type refresh_token", () =>
    Effect.gen(function* () {
      const text = demo().replace("grant_type: client_credentials", "grant_type: refresh_token")
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "refresh_token"),
        path: "flows.acquire.grant_type",
        message: "the acquire flow cannot use refresh_token",
        hint: "put it under flows.refresh"
      })
    })
  )

  it.effect("grant_type repeated in the body", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    body:\n      grant_type: password\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "password"),
        path: "flows.acquire.body.grant_type",
        message: '"grant_type" is sent by tessera from grant_type',
        hint: "remove it from body"
      })
    })
  )

  it.effect("nested body object with form encoding, at the object", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    body:\n      claims: { tenant: acme }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{ tenant: acme }"),
        path: "flows.acquire.body.claims",
        message: "a form-encoded body cannot hold a nested object",
        hint: "use encoding: json"
      })
    })
  )

  it.effect("nested body object is fine with json encoding", () =>
    Effect.gen(function* () {
      const m = yield* Manifest.parse(
        "demo.yaml",
        demo({ acquire: "    encoding: json\n    body:\n      claims: { tenant: acme }\n" })
      )
      assert.strictEqual(m.flows.acquire!.encoding, "json")
    })
  )

  it.effect("success predicate with both equals and in", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "response:\n  success: { path: code, equals: 0, in: [0, 200] }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "{ path: code"),
        path: "response.success",
        message: "give either equals or in, not both"
      })
    })
  )

  it.effect("default that is not in the input's enum", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  region: { enum: [eu, us], default: apac, required: false }\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "apac"),
        path: "inputs.region.default",
        message: 'default "apac" is not in enum',
        hint: "use one of: eu, us"
      })
    })
  )

  it.effect("default that does not match the input's pattern", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: '  tenant: { pattern: "^[a-z]+$", default: ACME, required: false }\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "ACME"),
        path: "inputs.tenant.default",
        message: 'default "ACME" does not match pattern ^[a-z]+$'
      })
    })
  )

  it.effect("a header tessera sets itself (Authorization), at the header name", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: '    headers:\n      Authorization: "Basic {{ inputs.client_secret }}"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "Authorization"),
        path: "flows.acquire.headers.Authorization",
        message: 'header "Authorization" is set by tessera',
        hint: "use encoding / client_auth instead"
      })
    })
  )

  it.effect("a header tessera sets itself, in any case (content-type)", () =>
    Effect.gen(function* () {
      const text = demo({ acquire: "    headers:\n      content-type: text/plain\n" })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, "content-type"),
        path: "flows.acquire.headers.content-type",
        message: 'header "content-type" is set by tessera'
      })
    })
  )

  it.effect("apply.value that never uses {{ token.access_token }}", () =>
    Effect.gen(function* () {
      const text = demo({ rest: 'apply:\n  header: X-Api-Key\n  value: "{{ inputs.client_secret }}"\n' })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '"{{ inputs.client_secret }}"'),
        path: "apply.value",
        message: "apply.value never uses {{ token.access_token }}",
        hint: "Bearer {{ token.access_token }}"
      })
    })
  )

  it.effect("a TTL taken from an input that is not an integer", () =>
    Effect.gen(function* () {
      const text = demo({
        inputs: '  lifetime: { default: "3600", required: false }\n',
        rest: 'response:\n  expiry:\n    - { source: ttl, seconds: "{{ inputs.lifetime }}" }\n'
      })
      const p = yield* error(text)
      assertProblem(p, {
        ...locate(text, '"{{ inputs.lifetime }}"'),
        path: "response.expiry[0].seconds",
        message: 'input "lifetime" must have type: integer to be a TTL'
      })
    })
  )
})

describe("Manifest.parse: warnings do not fail the load", () => {
  it.effect("a fixed token URL and a required input with a default are warnings, at their values", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  tenant: { required: true, default: acme }\n" }).replace(
        'url: "{{ inputs.token_url }}"',
        "url: https://idp.example/token"
      )
      const m = yield* Manifest.parse("demo.yaml", text)
      assert.strictEqual(m.warnings.length, 2)
      assertProblem(
        m.warnings.find((w) => w.path === "inputs.tenant.required"),
        {
          ...locate(text, "true, default"),
          path: "inputs.tenant.required",
          message: "a required input with a default is never missing",
          severity: "warning"
        },
        m.warnings
      )
      assertProblem(
        m.warnings.find((w) => w.path === "flows.acquire.url"),
        {
          ...locate(text, "https://idp.example/token", 2),
          path: "flows.acquire.url",
          message: "the token URL is fixed",
          severity: "warning"
        },
        m.warnings
      )
    })
  )

  it.effect("warnings ride along when there are errors", () =>
    Effect.gen(function* () {
      const text = demo({ id: "other" }).replace('url: "{{ inputs.token_url }}"', "url: https://idp.example/token")
      const e = yield* invalid(text)
      assert.deepStrictEqual(
        e.problems.map((p) => [p.severity, p.path]),
        [
          ["error", "id"],
          ["warning", "flows.acquire.url"]
        ]
      )
    })
  )
})

describe("Manifest.parse: every problem at once", () => {
  it.effect("three independent semantic mistakes give three problems", () =>
    Effect.gen(function* () {
      const text = demo({
        acquire: '    client_auth: { method: magic }\n    body:\n      audience: "{{ inputs.audience }}"\n',
        rest: 'apply:\n  value: "Token {{ inputs.client_id }}"\n'
      })
      const e = yield* invalid(text)
      assert.strictEqual(e._tag, "ManifestInvalid")
      assert.strictEqual(e.problems.length, 3, e.message)
      assertProblem(
        e.problems.find((p) => p.path === "flows.acquire.client_auth.method"),
        {
          ...locate(text, "magic"),
          path: "flows.acquire.client_auth.method",
          message: 'unknown client_auth.method "magic"'
        },
        e.problems
      )
      assertProblem(
        e.problems.find((p) => p.path === "flows.acquire.body.audience"),
        {
          ...locate(text, "{{ inputs.audience }}"),
          path: "flows.acquire.body.audience",
          message: 'undeclared input "audience"'
        },
        e.problems
      )
      assertProblem(
        e.problems.find((p) => p.path === "apply.value"),
        { ...locate(text, '"Token'), path: "apply.value", message: "never uses {{ token.access_token }}" },
        e.problems
      )
    })
  )

  it.effect("three independent schema mistakes give three problems", () =>
    Effect.gen(function* () {
      const text = demo({
        inputs: "  tenant: { tpye: string }\n",
        acquire: "    method: PUT\n",
        rest: "refresh:\n  margin_fraction: 0.9\n"
      })
      const e = yield* invalid(text)
      assert.strictEqual(e.problems.length, 3, e.message)
      assertProblem(
        e.problems[0],
        {
          ...locate(text, "tpye"),
          path: "inputs.tenant.tpye",
          message: 'unknown key "tpye"',
          hint: 'did you mean "type"?'
        },
        e.problems
      )
      assertProblem(
        e.problems.find((p) => p.path === "flows.acquire.method"),
        { ...locate(text, "PUT"), path: "flows.acquire.method", message: 'string "PUT" is not allowed' },
        e.problems
      )
      assertProblem(
        e.problems.find((p) => p.path === "refresh.margin_fraction"),
        { ...locate(text, "0.9"), path: "refresh.margin_fraction", message: "must be <= 0.5" },
        e.problems
      )
    })
  )

  it.effect("one undeclared input used twice in one template is reported at each use", () =>
    Effect.gen(function* () {
      const text = demo().replace('url: "{{ inputs.token_url }}"', 'url: "{{ inputs.host }}/{{ inputs.realm }}/token"')
      const e = yield* invalid(text)
      assert.deepStrictEqual(
        e.problems.map((p) => [p.line, p.col, p.message]),
        [
          [
            locate(text, "{{ inputs.host").line,
            locate(text, "{{ inputs.host").col,
            'template uses undeclared input "host"'
          ],
          [
            locate(text, "{{ inputs.realm").line,
            locate(text, "{{ inputs.realm").col,
            'template uses undeclared input "realm"'
          ]
        ]
      )
    })
  )
})

describe("bundled manifests", () => {
  const dir = fileURLToPath(new URL("../../../providers/", import.meta.url))
  const ids = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => f.replace(/\.yaml$/, ""))
    .sort()

  it("are the eleven providers", () => {
    assert.deepStrictEqual(ids, [
      "api-key",
      "basic",
      "brandbox",
      "crm-com",
      "cube",
      "dvinci",
      "github-app",
      "google-service-account",
      "oauth2",
      "salesforce-jwt",
      "usage-engine"
    ])
  })

  for (const id of ids) {
    it.effect(`${id} loads with no error and no warning`, () =>
      Effect.gen(function* () {
        const m = yield* Manifest.load(`${dir}${id}.yaml`)
        assert.strictEqual(m.id, id)
        assert.deepStrictEqual(m.warnings, [])
      })
    )
  }

  it.effect("the catalog holds all of them", () =>
    Effect.gen(function* () {
      const c = yield* Catalog.load()
      assert.deepStrictEqual([...c.manifests.keys()].sort(), ids)
    })
  )
})

describe("__proto__ in YAML is data, never a prototype", () => {
  const clean = () => {
    assert.isUndefined(({} as Record<string, unknown>)["polluted"])
    assert.isFalse(Object.hasOwn(Object.prototype, "polluted"))
  }

  it.effect("as a top-level key: an unknown key", () =>
    Effect.gen(function* () {
      const text = demo({ rest: "__proto__: { polluted: true }\n" })
      const p = yield* error(text)
      assertProblem(p, { ...locate(text, "__proto__"), path: "__proto__", message: 'unknown key "__proto__"' })
      clean()
    })
  )

  it.effect("as an input name: not a snake_case name", () =>
    Effect.gen(function* () {
      const text = demo({ inputs: "  __proto__: { default: polluted }\n" })
      const p = yield* error(text)
      assertProblem(p, { ...locate(text, "__proto__"), path: "inputs.__proto__", message: 'invalid key "__proto__"' })
      clean()
    })
  )

  it.effect("as a JSON body field: an own field, sent as such", () =>
    Effect.gen(function* () {
      const text = demo({
        acquire:
          "    encoding: json\n    client_auth: { method: none }\n    body:\n      __proto__: { polluted: yes }\n      constructor: { prototype: { polluted: yes } }\n"
      })
      const m = yield* Manifest.parse("demo.yaml", text)
      clean()
      const body = m.document.flows!.acquire.body as Record<string, unknown>
      assert.isTrue(Object.hasOwn(body, "__proto__"))
      assert.strictEqual(Object.getPrototypeOf(body), Object.prototype)
      const { inputs } = Connection.resolveInputs(m, new Map())
      const built = TokenRequest.build(
        {
          name: "demo",
          manifest: m,
          inputs,
          allowInsecureHttp: false,
          tags: {},
          source: "config" as const,
          version: 0
        },
        m.flows.acquire!
      )
      assert.strictEqual(built._tag, "Request")
      if (built._tag !== "Request") return
      const wire = TokenRequest.encode(built.request)
      assert.deepStrictEqual(
        JSON.parse(wire.body ?? ""),
        JSON.parse(
          '{"grant_type":"client_credentials","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}}'
        )
      )
      clean()
    })
  )
})
