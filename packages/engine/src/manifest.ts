/** The provider manifest: parse a YAML file, validate it against schemas/provider.schema.json, then check what
 *  the schema cannot (template references, cycles, flow rules) and compile it into the form the engine
 *  interprets. Every problem is reported at once, each with file:line:col. */
import * as Effect from "effect/Effect"
import { basename, extname } from "node:path"
import * as Assertion from "./assertion.ts"
import type { ManifestDocument, BodyValue, ExpirySource, Input } from "./generated/provider.ts"
import { ManifestInvalid } from "./manifest-error.ts"
import type { Problem } from "./problem.ts"
import * as Template from "./template.ts"
import { check } from "./internal/schema-check.ts"
import { readText } from "./internal/read-limited.ts"
import { parse as parseYaml, problemAt, type YamlSource } from "./internal/yaml-source.ts"

export type { ManifestDocument }

export type ClientAuthMethod =
  "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "client_secret_jwt" | "none"
export const clientAuthMethods: ReadonlyArray<ClientAuthMethod> = [
  "client_secret_basic",
  "client_secret_post",
  "private_key_jwt",
  "client_secret_jwt",
  "none"
]

/** `oauth2`: tokens from a token endpoint; `api_key` and `basic`: static credentials applied from the inputs. */
export type AuthKind = "oauth2" | "api_key" | "basic"
export const tokenFields = ["access_token", "refresh_token", "token_type"] as const

export interface InputSpec {
  readonly name: string
  readonly type: "string" | "url" | "integer"
  readonly required: boolean
  readonly secret: boolean
  readonly default?: Template.Template | undefined
  readonly enum?: ReadonlyArray<string> | undefined
  readonly pattern?: RegExp | undefined
  readonly title?: string | undefined
  readonly description?: string | undefined
  readonly example?: string | undefined
}

export type BodySpec =
  | { readonly kind: "template"; readonly template: Template.Template }
  | { readonly kind: "literal"; readonly value: number | boolean }
  | { readonly kind: "object"; readonly fields: ReadonlyArray<readonly [string, BodySpec]> }

export type FlowName = "acquire" | "refresh"

export interface FlowSpec {
  readonly name: FlowName
  readonly url: Template.Template
  readonly method: "POST" | "GET"
  readonly grantType: Template.Template
  readonly encoding: "form" | "json"
  readonly clientAuth: {
    readonly method: Template.Template
    readonly id: Template.Template
    readonly secret: Template.Template
    /** The client assertion (private_key_jwt, client_secret_jwt); compiled when the method can be one of them. */
    readonly jwt?: Assertion.JwtSpec | undefined
  }
  /** A signed JWT: the JWT bearer grant's `assertion`, or an `Authorization: Bearer` JWT (GitHub App). */
  readonly assertion?: Assertion.FlowAssertion | undefined
  readonly headers: ReadonlyArray<readonly [string, Template.Template]>
  readonly body: ReadonlyArray<readonly [string, BodySpec]>
}

export interface AuthorizationSpec {
  readonly url: Template.Template
  /** The issuer every authorization response must name in `iss` (RFC 9207), for a manifest without discovery. */
  readonly issuer?: Template.Template | undefined
  readonly scope?: Template.Template | undefined
  readonly params: ReadonlyArray<readonly [string, Template.Template]>
  readonly body: ReadonlyArray<readonly [string, Template.Template]>
  readonly redirectPort?: number | undefined
}

export interface DeviceSpec {
  readonly url: Template.Template
  readonly scope?: Template.Template | undefined
  readonly params: ReadonlyArray<readonly [string, Template.Template]>
}

/** Query parameters and body fields tessera sets itself in the user-grant flows (RFC 6749 §4.1, RFC 7636, RFC 8628). */
const reservedParams = [
  "response_type",
  "client_id",
  "redirect_uri",
  "state",
  "code_challenge",
  "code_challenge_method"
]
const reservedBody = [
  "grant_type",
  "code",
  "redirect_uri",
  "code_verifier",
  "client_id",
  "client_secret",
  "device_code"
]

export type ExpirySpec =
  | { readonly source: "expires_in"; readonly unit: "s" | "ms" }
  | { readonly source: "expires_at" }
  | { readonly source: "jwt_exp" }
  | { readonly source: "ttl"; readonly seconds: number | Template.Template }

export interface ErrorMatch {
  readonly status: ReadonlyArray<number>
  readonly codes: ReadonlyArray<string | number>
}

export type InputRule =
  | {
      readonly kind: "one_of"
      readonly groups: ReadonlyArray<ReadonlyArray<string>>
      readonly message?: string | undefined
    }
  | {
      readonly kind: "when"
      readonly input: string
      readonly equals: string
      readonly require: ReadonlyArray<string>
      readonly message?: string | undefined
    }

export interface Manifest {
  readonly id: string
  readonly name: string
  readonly docs?: string | undefined
  readonly note?: string | undefined
  /** Where the manifest was loaded from, for error messages. */
  readonly file: string
  readonly document: ManifestDocument
  readonly inputs: ReadonlyMap<string, InputSpec>
  readonly inputRules: ReadonlyArray<InputRule>
  readonly kind: AuthKind
  /** kind oauth2 only; `acquire` is always there for it, never for a static kind. */
  readonly flows: { readonly acquire?: FlowSpec | undefined; readonly refresh?: FlowSpec | undefined }
  /** RFC 8414 / OIDC discovery (discovery.ts): when the issuer renders, the token endpoint comes from it. */
  readonly discovery?: { readonly issuer: Template.Template } | undefined
  readonly response: {
    readonly envelope?: string | undefined
    readonly success?:
      { readonly path: string; readonly accepted: ReadonlyArray<string | number | boolean> } | undefined
    readonly error: { readonly code: string; readonly message: string; readonly description?: string | undefined }
    readonly fields: {
      readonly access_token: string
      readonly refresh_token: string
      readonly token_type: string
      readonly expires_in: string
      readonly expires_at: string
    }
    readonly expiry: ReadonlyArray<ExpirySpec>
  }
  readonly refresh: {
    readonly marginSeconds: number
    readonly marginFraction: number
    readonly defaultTtlSeconds: number
    /** How long an unused refresh token may rest before the server's background refresh redeems it; 0: never. */
    readonly keepAliveSeconds: number
  }
  /** How API calls carry the credential: `header` (empty when `query` is set) with `value`; kind basic renders
   *  `basic` into `Basic base64(user:password)` instead of `value`. */
  readonly apply: {
    readonly header: string
    readonly value: Template.Template
    readonly query?: string | undefined
    readonly basic?: { readonly username: Template.Template; readonly password: Template.Template } | undefined
    /** kind api_key: header and query parameter named by inputs (`{{ inputs.header }}`); the first that renders
     *  is where the key goes. `header` / `query` above are then their template sources. */
    readonly names?:
      { readonly header?: Template.Template | undefined; readonly query?: Template.Template | undefined } | undefined
  }
  readonly api?: { readonly baseUrl: Template.Template } | undefined
  /** The authorization code flow (authorization.ts): where a user grants access in a browser. */
  readonly authorization?: AuthorizationSpec | undefined
  /** The device authorization grant (device-flow.ts). */
  readonly device?: DeviceSpec | undefined
  readonly errors: {
    readonly reauthenticate: ErrorMatch
    readonly transient: ErrorMatch
    readonly rateLimit: ErrorMatch
  }
  /** Non-fatal findings (shown by `tessera validate`). */
  readonly warnings: ReadonlyArray<Problem>
}

const defaultErrors = {
  reauthenticate: { status: [401], codes: ["invalid_grant", "invalid_client", "unauthorized_client", "invalid_token"] },
  transient: { status: [500, 502, 503, 504], codes: ["server_error", "temporarily_unavailable"] },
  rateLimit: { status: [429], codes: ["slow_down"] }
} as const

type At = (
  path: ReadonlyArray<string | number>,
  message: string,
  hint?: string,
  opts?: { key?: boolean; index?: number | undefined }
) => void

/** The apply rule, checked on the terms of the manifest's kind. */
const compileApply = (
  kind: AuthKind,
  doc: ManifestDocument,
  parseT: (path: ReadonlyArray<string | number>, source: string, allowToken: boolean) => Template.Template,
  at: At,
  warn: (path: ReadonlyArray<string | number>, message: string, hint?: string) => void,
  inputs: ReadonlyMap<string, InputSpec>
): Manifest["apply"] => {
  const a = doc.apply ?? {}
  const query = a.query
  const templated = (v: string | undefined) => v !== undefined && v.includes("{{")
  if (kind !== "api_key")
    for (const k of ["header", "query"] as const)
      if (templated(a[k]))
        at(["apply", k], `only kind api_key can name its ${k} by an input`, `write the ${k} name itself`)
  if (kind === "api_key" && (templated(a.header) || templated(a.query))) {
    const names = {
      header: a.header !== undefined ? parseT(["apply", "header"], a.header, false) : undefined,
      query: a.query !== undefined ? parseT(["apply", "query"], a.query, false) : undefined
    }
    if (a.value === undefined)
      at(["apply"], "kind api_key needs apply.value: the key as it is sent", 'e.g. value: "{{ inputs.api_key }}"')
    const value = parseT(["apply", "value"], a.value ?? "", false)
    return { header: a.header ?? "", value, query, names }
  }
  if (query !== undefined && a.header !== undefined)
    at(["apply", "query"], "give apply.header or apply.query, not both")
  const header = query !== undefined ? "" : (a.header ?? "Authorization")
  if (kind === "basic") {
    for (const k of ["value", "query"] as const)
      if (a[k] !== undefined)
        at(
          ["apply", k],
          `kind basic sends Authorization: Basic from apply.username and apply.password`,
          `remove apply.${k}`
        )
    const username = parseT(["apply", "username"], a.username ?? "{{ inputs.username }}", false)
    const password = parseT(["apply", "password"], a.password ?? "{{ inputs.password }}", false)
    return { header, value: Template.literal(""), basic: { username, password } }
  }
  for (const k of ["username", "password"] as const)
    if (a[k] !== undefined) at(["apply", k], `apply.${k} is for kind basic`, "set kind: basic, or remove it")
  if (kind === "api_key") {
    if (a.value === undefined)
      at(["apply"], "kind api_key needs apply.value: the key as it is sent", 'e.g. value: "{{ inputs.api_key }}"')
    if (a.header === undefined && query === undefined)
      at(["apply"], "kind api_key needs apply.header or apply.query: where the key goes", "e.g. header: X-API-Key")
    const value = parseT(["apply", "value"], a.value ?? "", false)
    if (a.value !== undefined && Template.refs(value, "inputs").length === 0)
      at(
        ["apply", "value"],
        "apply.value uses no input: the key would be written in the manifest",
        'e.g. "{{ inputs.api_key }}"'
      )
    return { header, value, query }
  }
  const value = parseT(["apply", "value"], a.value ?? "Bearer {{ token.access_token }}", true)
  if (!Template.refs(value, "token").some((x) => x.name === "access_token"))
    at(["apply", "value"], "apply.value never uses {{ token.access_token }}", "e.g. Bearer {{ token.access_token }}")
  for (const ref of Template.refs(value, "inputs"))
    if (inputs.get(ref.name)?.secret)
      warn(["apply", "value"], `apply.value sends secret input "${ref.name}" on every API call`)
  return { header, value, query }
}

/** Compiles a schema-valid document. Collects problems instead of stopping at the first. */
const compile = (src: YamlSource, doc: ManifestDocument): { manifest?: Manifest; problems: Problem[] } => {
  const problems: Problem[] = []
  const warnings: Problem[] = []
  const at = (
    path: ReadonlyArray<string | number>,
    message: string,
    hint?: string,
    opts: { key?: boolean; index?: number | undefined } = {}
  ) => problems.push(problemAt(src, path, message, { hint, ...opts }))
  const warn = (path: ReadonlyArray<string | number>, message: string, hint?: string) =>
    warnings.push(problemAt(src, path, message, { hint, severity: "warning" }))

  const fileId = basename(src.file, extname(src.file))
  if (/\.ya?ml$/.test(src.file) && fileId !== doc.id)
    at(
      ["id"],
      `id "${doc.id}" does not match the file name "${basename(src.file)}"`,
      `rename the file to ${doc.id}.yaml or set id: ${fileId}`
    )

  const declared = new Set(Object.keys(doc.inputs))
  const parseT = (path: ReadonlyArray<string | number>, source: string, allowToken: boolean): Template.Template => {
    try {
      const t = Template.parse(source)
      // Point at the placeholder itself: the k-th "{{" in the source opens the k-th ref.
      const opens = [...source.matchAll(/\{\{/g)].map((m) => m.index)
      for (const [k, r] of Template.refs(t).entries()) {
        const index = opens[k]
        if (r.scope === "inputs" && !declared.has(r.name))
          at(
            path,
            `template uses undeclared input "${r.name}"`,
            `declare it under inputs: (declared: ${[...declared].join(", ")})`,
            { index }
          )
        if (r.scope === "token" && !allowToken)
          at(
            path,
            `"{{ token.${r.name} }}" is not available here`,
            "token.* is only available in the refresh flow and in apply.value",
            { index }
          )
        if (r.scope === "token" && !(tokenFields as ReadonlyArray<string>).includes(r.name))
          at(path, `unknown token field "${r.name}"`, `use one of: ${tokenFields.join(", ")}`, { index })
      }
      return t
    } catch (e) {
      at(path, e instanceof Error ? e.message : String(e), "templates look like {{ inputs.name }}", {
        index: e instanceof Template.TemplateSyntaxError ? e.column : undefined
      })
      return Template.literal(source)
    }
  }

  // Inputs, their defaults and a cycle check over default -> input references.
  const inputs = new Map<string, InputSpec>()
  for (const [name, spec] of Object.entries(doc.inputs) as Array<[string, Input]>) {
    const base = ["inputs", name]
    let pattern: RegExp | undefined
    if (spec.pattern !== undefined) {
      try {
        pattern = new RegExp(spec.pattern, "u")
      } catch {
        /* reported by the schema */
      }
    }
    const def = spec.default !== undefined ? parseT([...base, "default"], spec.default, false) : undefined
    if (def && Template.refs(def).length === 0 && spec.default !== undefined) {
      if (spec.enum && !spec.enum.includes(spec.default))
        at([...base, "default"], `default "${spec.default}" is not in enum`, `use one of: ${spec.enum.join(", ")}`)
      if (pattern && !pattern.test(spec.default))
        at([...base, "default"], `default "${spec.default}" does not match pattern ${spec.pattern}`)
    }
    if (spec.required === true && spec.default !== undefined)
      warn(
        [...base, "required"],
        "a required input with a default is never missing",
        "drop required: true, or the default"
      )
    inputs.set(name, {
      name,
      type: spec.type ?? "string",
      required: spec.required ?? spec.default === undefined,
      secret: spec.secret ?? false,
      default: def,
      enum: spec.enum,
      pattern,
      title: spec.title,
      description: spec.description,
      example: spec.example
    })
  }
  const visiting = new Set<string>(),
    done = new Set<string>()
  const visit = (name: string, trail: string[]): void => {
    if (done.has(name)) return
    if (visiting.has(name)) {
      at(
        ["inputs", trail[0]!, "default"],
        `input defaults form a cycle: ${[...trail, name].join(" -> ")}`,
        "break the cycle: one of these defaults must not reference the others"
      )
      return
    }
    visiting.add(name)
    for (const r of Template.refs(inputs.get(name)?.default ?? Template.literal(""), "inputs"))
      if (inputs.has(r.name)) visit(r.name, [...trail, name])
    visiting.delete(name)
    done.add(name)
  }
  for (const name of inputs.keys()) visit(name, [])

  // Rules between inputs.
  const inputRules: InputRule[] = []
  for (const [i, rule] of (doc.input_rules ?? []).entries()) {
    const names = "one_of" in rule ? rule.one_of.flat() : [...Object.keys(rule.when), ...rule.require]
    for (const n of names)
      if (!declared.has(n)) at(["input_rules", i], `rule names undeclared input "${n}"`, "declare it under inputs:")
    if ("one_of" in rule) inputRules.push({ kind: "one_of", groups: rule.one_of, message: rule.message })
    else {
      const [input, equals] = Object.entries(rule.when)[0] as [string, string]
      const e = inputs.get(input)?.enum
      if (e && !e.includes(equals))
        at(
          ["input_rules", i, "when", input],
          `"${equals}" is never a value of ${input}`,
          `its enum is: ${e.join(", ")}`
        )
      inputRules.push({ kind: "when", input, equals, require: rule.require, message: rule.message })
    }
  }

  // A templated enum-like field (grant_type, client_auth.method) must be one placeholder over an input with an enum.
  const checkChoice = (
    path: ReadonlyArray<string | number>,
    t: Template.Template,
    allowed: ReadonlyArray<string> | undefined,
    what: string
  ) => {
    const rs = Template.refs(t)
    if (rs.length === 0) {
      if (allowed && !allowed.includes(t.source))
        at(path, `unknown ${what} "${t.source}"`, `use one of: ${allowed.join(", ")}`)
      return
    }
    const single = t.segments.length === 1 && rs.length === 1 && rs[0]!.scope === "inputs"
    const e = single ? inputs.get(rs[0]!.name)?.enum : undefined
    if (!single || !e) {
      at(
        path,
        `a templated ${what} must be exactly one {{ inputs.x }} over an input with an enum`,
        "give the input an enum listing the allowed values"
      )
      return
    }
    const bad = allowed ? e.filter((v) => !allowed.includes(v)) : []
    if (bad.length > 0)
      at(
        ["inputs", rs[0]!.name, "enum"],
        `enum values ${bad.join(", ")} are not valid for ${what}`,
        `allowed: ${allowed!.join(", ")}`
      )
  }

  const compileBody = (
    path: ReadonlyArray<string | number>,
    value: BodyValue,
    encoding: "form" | "json",
    allowToken: boolean
  ): BodySpec => {
    if (typeof value === "string") return { kind: "template", template: parseT(path, value, allowToken) }
    if (typeof value === "number" || typeof value === "boolean") return { kind: "literal", value }
    if (encoding === "form")
      at(path, "a form-encoded body cannot hold a nested object", "use encoding: json, or flatten the field")
    return {
      kind: "object",
      fields: Object.entries(value).map(
        ([k, v]) => [k, compileBody([...path, k], v as BodyValue, encoding, allowToken)] as const
      )
    }
  }

  /** The values a (possibly templated) client_auth.method can take: its literal, or its input's enum. */
  const possibleMethods = (t: Template.Template): ReadonlyArray<string> => {
    const rs = Template.refs(t)
    if (rs.length === 0) return [t.source]
    return inputs.get(rs[0]!.name)?.enum ?? []
  }

  const compileJwt = (
    path: ReadonlyArray<string | number>,
    spec: Parameters<typeof Assertion.compile>[0],
    defaults: Parameters<typeof Assertion.compile>[3]
  ): Assertion.JwtSpec => {
    for (const k of Object.keys(spec?.claims ?? {}))
      if ((Assertion.reservedClaims as ReadonlyArray<string>).includes(k))
        at(
          [...path, "claims", k],
          `claim "${k}" is set by tessera`,
          "use lifetime_seconds, iat_backdate_seconds or jti"
        )
    if (spec?.alg !== undefined) {
      const alg = parseT([...path, "alg"], spec.alg, false)
      checkChoice([...path, "alg"], alg, Assertion.algorithms, "alg")
      if (Template.refs(alg).length === 0 && defaults.symmetric && !alg.source.startsWith("HS"))
        at(
          [...path, "alg"],
          `client_secret_jwt signs with the client secret: use HS256, HS384 or HS512, not ${alg.source}`
        )
      if (Template.refs(alg).length === 0 && !defaults.symmetric && defaults.key !== "" && alg.source.startsWith("HS"))
        at(
          [...path, "alg"],
          `${alg.source} signs with a shared secret, not a private key`,
          "use RS256, PS256, ES256 or EdDSA"
        )
    }
    if (defaults.key !== "" && spec?.key === undefined && !declared.has("private_key"))
      at(
        path.slice(0, -1),
        "a JWT signed with a private key needs one",
        `declare inputs.private_key (secret) or set ${path.join(".")}.key`
      )
    return Assertion.compile(spec, path, (p, source) => parseT(p, source, false), {
      ...defaults,
      key: defaults.key !== "" && spec?.key === undefined && !declared.has("private_key") ? "" : defaults.key
    })
  }

  const compileFlow = (name: FlowName): FlowSpec | undefined => {
    const f = doc.flows?.[name]
    if (!f) return undefined
    const base = ["flows", name]
    const allowToken = name === "refresh"
    const encoding = f.encoding ?? "form"
    const grantType = parseT([...base, "grant_type"], f.grant_type, false)
    checkChoice([...base, "grant_type"], grantType, undefined, "grant_type")
    if (name === "refresh" && f.grant_type !== "refresh_token")
      at(
        [...base, "grant_type"],
        `the refresh flow must use grant_type refresh_token (RFC 6749 §6), found "${f.grant_type}"`
      )
    if (name === "acquire" && f.grant_type === "refresh_token")
      at(
        [...base, "grant_type"],
        "the acquire flow cannot use refresh_token: there is no token yet",
        "put it under flows.refresh"
      )
    const ca = f.client_auth ?? { method: "client_secret_basic" }
    const method = parseT([...base, "client_auth", "method"], ca.method, false)
    checkChoice([...base, "client_auth", "method"], method, clientAuthMethods, "client_auth.method")
    const usesCredentials = method.source !== "none"
    const id = parseT(
      [...base, "client_auth", ...(ca.id !== undefined ? ["id"] : [])],
      ca.id ?? (usesCredentials ? "{{ inputs.client_id }}" : ""),
      false
    )
    const usesSecret = possibleMethods(method).some(
      (m) => m === "client_secret_basic" || m === "client_secret_post" || m === "client_secret_jwt"
    )
    const secret = parseT(
      [...base, "client_auth", ...(ca.secret !== undefined ? ["secret"] : [])],
      ca.secret ?? (usesCredentials && usesSecret ? "{{ inputs.client_secret }}" : ""),
      false
    )
    const jwtMethods = possibleMethods(method).filter((m) => m === "private_key_jwt" || m === "client_secret_jwt")
    const jwt =
      jwtMethods.length === 0
        ? (ca.jwt !== undefined &&
            at([...base, "client_auth", "jwt"], "client_auth.jwt is only for private_key_jwt or client_secret_jwt"),
          undefined)
        : compileJwt([...base, "client_auth", "jwt"], ca.jwt, {
            claims: { iss: ca.id ?? "{{ inputs.client_id }}", sub: ca.id ?? "{{ inputs.client_id }}" },
            key: jwtMethods.includes("private_key_jwt") ? "{{ inputs.private_key }}" : "",
            symmetric: !jwtMethods.includes("private_key_jwt")
          })
    const assertion = f.assertion
      ? {
          ...compileJwt([...base, "assertion"], f.assertion, { key: "{{ inputs.private_key }}", symmetric: false }),
          send: f.assertion.send ?? "body"
        }
      : undefined
    const jwtBearer = grantType.source === Assertion.jwtBearerGrant
    if (assertion?.send === "body" && Template.refs(grantType).length === 0 && !jwtBearer)
      at(
        [...base, "grant_type"],
        `an assertion sent in the body belongs to the JWT bearer grant, found grant_type "${f.grant_type}"`,
        `use grant_type: ${Assertion.jwtBearerGrant} (RFC 7523 §2.1), or assertion.send: authorization`
      )
    if (jwtBearer && assertion?.send !== "body")
      at(
        [...base, "grant_type"],
        "the JWT bearer grant sends a signed JWT as `assertion`",
        `add ${base.join(".")}.assertion`
      )
    if (assertion?.send === "authorization" && possibleMethods(method).includes("client_secret_basic"))
      at(
        [...base, "assertion", "send"],
        "assertion.send: authorization and client_secret_basic both need the Authorization header",
        "use client_auth: { method: none } or client_secret_post"
      )
    const url = parseT([...base, "url"], f.url, false)
    if (Template.refs(url).length === 0)
      warn(
        [...base, "url"],
        "the token URL is fixed, so connections cannot point it at a sandbox or regional host",
        "make it an input with a default: token_url: { type: url, default: ... }"
      )
    const body = Object.entries(f.body ?? {}).map(([k, v]) => {
      if (k === "grant_type" || (k === "refresh_token" && name === "refresh"))
        at([...base, "body", k], `"${k}" is sent by tessera from grant_type`, "remove it from body")
      return [k, compileBody([...base, "body", k], v as BodyValue, encoding, allowToken)] as const
    })
    const headers = Object.entries(f.headers ?? {}).map(([k, v]) => {
      if (/^(content-type|content-length|authorization|host)$/i.test(k))
        at([...base, "headers", k], `header "${k}" is set by tessera`, "use encoding / client_auth instead", {
          key: true
        })
      return [k, parseT([...base, "headers", k], v ?? "", allowToken)] as const
    })
    return {
      name,
      url,
      method: f.method ?? "POST",
      grantType,
      encoding,
      clientAuth: { method, id, secret, jwt },
      assertion,
      headers,
      body
    }
  }
  const kind: AuthKind = doc.kind ?? "oauth2"
  const acquire = compileFlow("acquire")
  const refreshFlow = compileFlow("refresh")

  const r = doc.response ?? {}
  if (r.success && r.success.equals !== undefined && r.success.in !== undefined)
    at(["response", "success"], "give either equals or in, not both")
  if (r.success && r.success.equals === undefined && r.success.in === undefined)
    at(["response", "success"], "the success predicate needs equals or in", "e.g. { path: code, equals: 0 }")
  const expiry = (r.expiry ?? [{ source: "expires_in" }, { source: "jwt_exp" }]).map(
    (e: ExpirySource, i): ExpirySpec => {
      switch (e.source) {
        case "expires_in":
          return { source: "expires_in", unit: e.unit ?? "s" }
        case "expires_at":
          return { source: "expires_at" }
        case "jwt_exp":
          return { source: "jwt_exp" }
        case "ttl": {
          if (typeof e.seconds === "number") return { source: "ttl", seconds: e.seconds }
          const t = parseT(["response", "expiry", i, "seconds"], e.seconds, false)
          for (const ref of Template.refs(t, "inputs"))
            if (inputs.get(ref.name) && inputs.get(ref.name)!.type !== "integer")
              at(["response", "expiry", i, "seconds"], `input "${ref.name}" must have type: integer to be a TTL`)
          return { source: "ttl", seconds: t }
        }
      }
    }
  )

  const apply = compileApply(
    kind,
    doc,
    (path, source, allowToken) => parseT(path, source, allowToken),
    at,
    warn,
    inputs
  )

  const templates = (
    path: ReadonlyArray<string>,
    m: Readonly<Record<string, string | undefined>> | undefined,
    reserved: ReadonlyArray<string>
  ) =>
    Object.entries(m ?? {}).map(([k, v]) => {
      if (reserved.includes(k)) at([...path, k], `"${k}" is set by tessera`, "remove it", { key: true })
      return [k, parseT([...path, k], v ?? "", false)] as const
    })
  const authorization: AuthorizationSpec | undefined = doc.authorization && {
    url: parseT(["authorization", "url"], doc.authorization.url, false),
    issuer:
      doc.authorization.issuer === undefined
        ? undefined
        : parseT(["authorization", "issuer"], doc.authorization.issuer, false),
    scope:
      doc.authorization.scope === undefined
        ? undefined
        : parseT(["authorization", "scope"], doc.authorization.scope, false),
    params: templates(["authorization", "params"], doc.authorization.params, reservedParams),
    body: templates(["authorization", "body"], doc.authorization.body, reservedBody),
    redirectPort: doc.authorization.redirect_port
  }
  const device: DeviceSpec | undefined = doc.device && {
    url: parseT(["device", "url"], doc.device.url, false),
    scope: doc.device.scope === undefined ? undefined : parseT(["device", "scope"], doc.device.scope, false),
    params: templates(["device", "params"], doc.device.params, [...reservedBody, "scope"])
  }

  const match = (m: { status?: number[]; codes?: Array<string | number> } | undefined, d: ErrorMatch): ErrorMatch => ({
    status: m?.status ?? d.status,
    codes: m?.codes ?? d.codes
  })

  const manifest: Manifest = {
    id: doc.id,
    name: doc.name,
    docs: doc.docs,
    note: doc.note,
    file: src.file,
    document: doc,
    inputs,
    inputRules,
    kind,
    flows: { acquire, refresh: refreshFlow },
    discovery: doc.discovery ? { issuer: parseT(["discovery", "issuer"], doc.discovery.issuer, false) } : undefined,
    response: {
      envelope: r.envelope,
      success: r.success
        ? { path: r.success.path, accepted: r.success.in ?? (r.success.equals !== undefined ? [r.success.equals] : []) }
        : undefined,
      error: { code: r.error?.code ?? "error", message: r.error?.message ?? "error_description" },
      fields: {
        access_token: r.fields?.access_token ?? "access_token",
        refresh_token: r.fields?.refresh_token ?? "refresh_token",
        token_type: r.fields?.token_type ?? "token_type",
        expires_in: r.fields?.expires_in ?? "expires_in",
        expires_at: r.fields?.expires_at ?? "expires_at"
      },
      expiry
    },
    refresh: {
      marginSeconds: doc.refresh?.margin_seconds ?? 60,
      marginFraction: doc.refresh?.margin_fraction ?? 0.1,
      defaultTtlSeconds: doc.refresh?.default_ttl_seconds ?? 3600,
      keepAliveSeconds: doc.refresh?.keep_alive_seconds ?? 86400
    },
    apply,
    api: doc.api ? { baseUrl: parseT(["api", "base_url"], doc.api.base_url, false) } : undefined,
    authorization,
    device,
    errors: {
      reauthenticate: match(doc.errors?.reauthenticate, defaultErrors.reauthenticate),
      transient: match(doc.errors?.transient, defaultErrors.transient),
      rateLimit: match(doc.errors?.rate_limit, defaultErrors.rateLimit)
    },
    warnings
  }
  return problems.length > 0 ? { problems: [...problems, ...warnings] } : { manifest, problems: warnings }
}

/** Parses and compiles manifest text. `file` is used for positions and the id == file name check. */
export const parse = (file: string, text: string): Effect.Effect<Manifest, ManifestInvalid> =>
  Effect.suspend(() => {
    const parsed = parseYaml(file, text)
    if (!parsed.ok) return Effect.fail(new ManifestInvalid({ problems: parsed.problems }))
    const src = parsed.source
    if (src.value === null || typeof src.value !== "object" || Array.isArray(src.value)) {
      return Effect.fail(
        new ManifestInvalid({
          problems: [problemAt(src, [], "a manifest must be a YAML mapping (id:, name:, inputs:, flows: ...)")]
        })
      )
    }
    const schemaProblems = check("provider", src)
    if (schemaProblems.length > 0) return Effect.fail(new ManifestInvalid({ problems: schemaProblems }))
    const { manifest, problems } = compile(src, src.value as ManifestDocument)
    return manifest ? Effect.succeed(manifest) : Effect.fail(new ManifestInvalid({ problems }))
  })

/** The most a manifest file may hold; the bundled ones are a few KiB. */
export const maxManifestBytes = 1_048_576

/** Reads and parses a manifest file: only a regular file of at most `maxManifestBytes` is read. */
export const load = (file: string): Effect.Effect<Manifest, ManifestInvalid> =>
  Effect.suspend(() => {
    const r = readText(file, maxManifestBytes, "a manifest is a YAML file: check the providers: directory")
    if (r._tag === "Text") return parse(file, r.text)
    return Effect.fail(
      new ManifestInvalid({
        problems: [
          {
            severity: "error",
            file,
            line: 1,
            col: 1,
            path: "",
            message: `cannot read manifest: ${file} ${r.reason}`,
            hint: r.hint
          }
        ]
      })
    )
  })
