/** Builds the HTTP request a flow sends, from the manifest's templates, the connection's inputs and (for refresh)
 *  the current token. Pure: the same request is sent by the engine, printed by `--dry-run` (secrets masked) and
 *  turned into a curl command by `--curl`. Secret values stay Redacted until `encode` produces the wire bytes. */
import * as Redacted from "effect/Redacted"
import * as Assertion from "./assertion.ts"
import type { Connection } from "./connection.ts"
import { checkUrl } from "./connection.ts"
import type { BodySpec, ClientAuthMethod, FlowSpec } from "./manifest.ts"
import { clientAuthMethods } from "./manifest.ts"
import * as Template from "./template.ts"
import type { Token } from "./token.ts"

export type Json = string | number | boolean | Template.Value | { readonly [k: string]: Json }

export interface TokenRequest {
  readonly flow: FlowSpec["name"]
  readonly method: "POST" | "GET"
  readonly url: string
  readonly headers: ReadonlyArray<readonly [string, Template.Value]>
  readonly encoding: "form" | "json"
  /** Form fields in order, or the JSON body. */
  readonly form?: ReadonlyArray<readonly [string, Template.Value]> | undefined
  readonly json?: { readonly [k: string]: Json } | undefined
  /** JWTs to sign for each attempt (assertion.ts `complete`): they join the body or the headers then. */
  readonly jwts?: ReadonlyArray<PendingJwt> | undefined
}

/** A JWT the request carries once signed: the `assertion` or `client_assertion` field, or `Authorization: Bearer`. */
export interface PendingJwt {
  readonly target: "assertion" | "client_assertion" | "authorization"
  readonly spec: Assertion.JwtSpec
  /** Where the spec sits in the manifest, for messages. */
  readonly where: string
  /** Claims used where the manifest gives none: `aud` = the token endpoint. */
  readonly defaults: Readonly<Record<string, string>>
}

export interface BuildOptions {
  /** The token endpoint from discovery (discovery.ts), used in place of the flow's url. */
  readonly tokenUrl?: string | undefined
  /** Fields after the flow's own body: the code, redirect_uri and code_verifier of an authorization code exchange,
   *  or the device_code of a device flow poll (authorization.ts, device-flow.ts). */
  readonly extra?: ReadonlyArray<readonly [string, Template.Value]> | undefined
}

export type BuildResult =
  | { readonly _tag: "Request"; readonly request: TokenRequest }
  | { readonly _tag: "Invalid"; readonly details: ReadonlyArray<string> }

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
const formEncode = (s: string) => new URLSearchParams([["", s]]).toString().slice(1)

export const basicAuth = (id: string, secret: string): Redacted.Redacted<string> =>
  Redacted.make(`Basic ${Buffer.from(`${formEncode(id)}:${formEncode(secret)}`).toString("base64")}`, {
    label: "authorization"
  })

const request = (
  flow: FlowSpec,
  url: string,
  headers: TokenRequest["headers"],
  body: Pick<TokenRequest, "encoding" | "form" | "json" | "jwts">
): BuildResult => ({ _tag: "Request", request: { flow: flow.name, method: flow.method, url, headers, ...body } })

export const build = (connection: Connection, flow: FlowSpec, token?: Token, opts: BuildOptions = {}): BuildResult => {
  const details: string[] = []
  const ctx: Template.Context = {
    inputs: (n) => connection.inputs.get(n),
    token: (f) =>
      f === "access_token"
        ? token?.accessToken
        : f === "refresh_token"
          ? token?.refreshToken
          : f === "token_type"
            ? token?.tokenType
            : undefined
  }
  const required = (what: string, t: Template.Template): Template.Value | undefined => {
    const r = Template.render(t, ctx)
    if (r._tag === "Missing") {
      details.push(`${what} needs ${r.names.join(", ")}, which ${r.names.length > 1 ? "are" : "is"} not set`)
      return undefined
    }
    return r.value
  }
  const urlValue = opts.tokenUrl ?? required(`flows.${flow.name}.url`, flow.url)
  const url = urlValue === undefined ? "" : Template.reveal(urlValue)
  if (urlValue !== undefined) {
    const bad = checkUrl(url, connection.allowInsecureHttp)
    if (bad) details.push(`token URL ${Template.isSecret(urlValue) ? "" : `${url} `}${bad.message} (hint: ${bad.hint})`)
  }
  const grantType = required(`flows.${flow.name}.grant_type`, flow.grantType)
  const methodValue = required(`flows.${flow.name}.client_auth.method`, flow.clientAuth.method)
  const method = methodValue === undefined ? undefined : (Template.reveal(methodValue) as ClientAuthMethod)
  if (method !== undefined && !clientAuthMethods.includes(method))
    details.push(`client_auth.method "${method}" is not one of ${clientAuthMethods.join(", ")}`)

  const headers: Array<readonly [string, Template.Value]> = [["Accept", "application/json"]]
  const fields: Array<readonly [string, Json]> = []
  const jwts: PendingJwt[] = []
  if (grantType !== undefined && Template.reveal(grantType) !== "none") fields.push(["grant_type", grantType])
  if (method === "client_secret_basic" || method === "client_secret_post") {
    const id = required("client_auth.id", flow.clientAuth.id)
    const secret = Template.render(flow.clientAuth.secret, ctx)
    if (secret._tag === "Missing") details.push(`client_auth.secret needs ${secret.names.join(", ")}, which is not set`)
    if (id !== undefined && secret._tag === "Value") {
      if (method === "client_secret_basic")
        headers.push(["Authorization", basicAuth(Template.reveal(id), Template.reveal(secret.value))])
      else
        fields.push(
          ["client_id", id],
          [
            "client_secret",
            Template.isSecret(secret.value) ? secret.value : Redacted.make(secret.value, { label: "client_secret" })
          ]
        )
    }
  }
  if (method === "none") {
    // A public client identifies itself in the body (RFC 6749 §4.1.3, §3.2.1), when the manifest names its id.
    const id = Template.render(flow.clientAuth.id, ctx)
    if (id._tag === "Value" && Template.reveal(id.value) !== "") fields.push(["client_id", id.value])
  }
  // The client id is the assertion's iss and sub: say so when it is unset rather than send an assertion without.
  if (method === "private_key_jwt" || method === "client_secret_jwt") required("client_auth.id", flow.clientAuth.id)
  if ((method === "private_key_jwt" || method === "client_secret_jwt") && flow.clientAuth.jwt) {
    // RFC 7523 §2.2; client_id may go too (RFC 7521 §4.2) but is left out: the assertion's sub names the client.
    fields.push(["client_assertion_type", Assertion.clientAssertionType])
    const symmetric = method === "client_secret_jwt"
    jwts.push({
      target: "client_assertion",
      spec: symmetric
        ? { ...flow.clientAuth.jwt, key: flow.clientAuth.secret, symmetric }
        : { ...flow.clientAuth.jwt, symmetric },
      where: `flows.${flow.name}.client_auth.jwt`,
      defaults: { aud: url }
    })
  }
  if (flow.assertion)
    jwts.push({
      target: flow.assertion.send === "authorization" ? "authorization" : "assertion",
      spec: flow.assertion,
      where: `flows.${flow.name}.assertion`,
      defaults: flow.assertion.send === "authorization" ? {} : { aud: url }
    })
  const renderBody = (spec: BodySpec): Json | undefined => {
    switch (spec.kind) {
      case "literal":
        return spec.value
      case "template": {
        const r = Template.render(spec.template, ctx)
        return r._tag === "Value" ? r.value : undefined
      }
      case "object": {
        const out: Record<string, Json> = {}
        for (const [k, v] of spec.fields) {
          const r = renderBody(v)
          if (r !== undefined)
            Object.defineProperty(out, k, { value: r, enumerable: true, writable: true, configurable: true })
        }
        return Object.keys(out).length > 0 ? out : undefined
      }
    }
  }
  for (const [k, spec] of flow.body) {
    const v = renderBody(spec)
    if (v !== undefined) fields.push([k, v])
  }
  fields.push(...(opts.extra ?? []))
  if (flow.name === "refresh") {
    if (token?.refreshToken) fields.push(["refresh_token", token.refreshToken])
    else details.push("the refresh flow needs a refresh token and there is none")
  }
  for (const [k, t] of flow.headers) {
    const v = required(`flows.${flow.name}.headers.${k}`, t)
    if (v !== undefined) headers.push([k, v])
  }
  if (details.length > 0) return { _tag: "Invalid", details }

  if (flow.encoding === "json") {
    const json: Record<string, Json> = {}
    for (const [k, v] of fields)
      Object.defineProperty(json, k, { value: v, enumerable: true, writable: true, configurable: true })
    return request(flow, url, [...headers, ["Content-Type", "application/json"]], { encoding: "json", json, jwts })
  }
  const form = fields
    .map(([k, v]) => [k, typeof v === "number" || typeof v === "boolean" ? String(v) : v] as const)
    .filter((f): f is readonly [string, Template.Value] => typeof f[1] === "string" || Redacted.isRedacted(f[1]))
  const formHeaders =
    flow.method === "GET" ? headers : [...headers, ["Content-Type", "application/x-www-form-urlencoded"] as const]
  return request(flow, url, formHeaders, { encoding: "form", form, jwts })
}

const revealJson = (v: Json, mask: boolean): unknown => {
  if (Redacted.isRedacted(v)) return mask ? "***" : Redacted.value(v)
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(out, k, {
        value: revealJson(x, mask),
        enumerable: true,
        writable: true,
        configurable: true
      })
    return out
  }
  return v
}

/** The request as it goes on the wire, or with every secret replaced by `***` when `mask` is true. */
export const encode = (
  r: TokenRequest,
  opts: { mask?: boolean } = {}
): { url: string; headers: Record<string, string>; body: string | undefined } => {
  const mask = opts.mask ?? false
  const show = (v: Template.Value) => (Template.isSecret(v) ? (mask ? "***" : Redacted.value(v)) : v)
  const headers: Record<string, string> = {}
  for (const [k, v] of r.headers) headers[k] = show(v)
  if (r.encoding === "json") return { url: r.url, headers, body: JSON.stringify(revealJson(r.json ?? {}, mask)) }
  const params = new URLSearchParams((r.form ?? []).map(([k, v]): [string, string] => [k, show(v)]))
  if (r.method === "GET") {
    const u = new URL(r.url)
    for (const [k, v] of params) u.searchParams.append(k, v)
    return { url: u.toString(), headers, body: undefined }
  }
  return { url: r.url, headers, body: params.toString() }
}

/** POSIX-shell single-quoting. */
const sq = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** The request as a curl command; secrets masked unless `showSecrets`. */
export const toCurl = (r: TokenRequest, opts: { showSecrets?: boolean } = {}): string => {
  const e = encode(r, { mask: !opts.showSecrets })
  const parts = ["curl", "-sS", "-X", r.method, sq(e.url)]
  for (const [k, v] of Object.entries(e.headers)) parts.push("-H", sq(`${k}: ${v}`))
  if (e.body !== undefined) parts.push("--data-raw", sq(e.body))
  return parts.join(" ")
}
