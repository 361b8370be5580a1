/** `tessera inspect <connection>`: everything tessera knows about a connection, without a network call: its
 *  provider, its resolved inputs (secrets as ***), the flows and the token request it would send next (masked),
 *  how API calls carry the token, the cache entry and, when the cached access token is a JWT, its header and
 *  claims, decoded but not verified. The token itself is never printed. */
import {
  Config,
  Engine,
  Expiry,
  Http,
  Redaction,
  Runtime,
  StaticCredential,
  Template,
  TokenRequest,
  TokenStore,
  type Connection,
  type Manifest,
  type TokenError
} from "@tessera/engine"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"
import { sourceOf } from "./providers.ts"

const masked = "***"

/** A template rendered with the connection's inputs, masked when a secret went into it. */
const shown = (c: Connection.Connection, t: Template.Template): string | null => {
  const r = Template.render(t, { inputs: (n) => c.inputs.get(n) })
  if (r._tag === "Missing") return null
  return Template.isSecret(r.value) ? masked : r.value
}

export interface FlowInfo {
  readonly method: string
  readonly url: string | null
  readonly grant_type: string | null
  readonly encoding: string
  readonly client_auth: string | null
}

const flowInfo = (c: Connection.Connection, f: Manifest.FlowSpec): FlowInfo => ({
  method: f.method,
  url: shown(c, f.url),
  grant_type: shown(c, f.grantType),
  encoding: f.encoding,
  client_auth: shown(c, f.clientAuth.method)
})

export interface CacheInfo {
  readonly store: string
  readonly cached: boolean
  readonly obtained_at: string | null
  readonly age_seconds: number | null
  readonly expires_at: string | null
  readonly expires_in_seconds: number | null
  readonly freshness: Expiry.Freshness | null
  readonly has_refresh_token: boolean | null
  readonly expiry_source: string | null
}

export interface Inspection {
  readonly connection: string
  readonly provider: {
    readonly id: string
    readonly name: string
    readonly docs: string | null
    readonly source: string
  }
  readonly inputs: ReadonlyArray<{ readonly name: string; readonly value: string; readonly secret: boolean }>
  /** The manifest's auth kind: `oauth2`, or a static credential (`api_key`, `basic`) with no flows and no token. */
  readonly kind: Manifest.AuthKind
  readonly flows: { readonly acquire: FlowInfo; readonly refresh: FlowInfo | null } | null
  /** The token request the engine would send next (refresh when a refresh token is cached), secrets masked; null
   *  for a static credential. */
  readonly request: {
    readonly flow: string
    readonly method: string
    readonly url: string
    readonly headers: Record<string, string>
    readonly body: string | null
  } | null
  readonly api: { readonly base_url: string | null; readonly header: string; readonly value: string }
  readonly cache: CacheInfo
  /** The cached access token's JWT header and claims: decoded, NOT verified. Null when nothing is cached or it is no JWT. */
  readonly jwt: {
    readonly verified: false
    readonly header: Record<string, unknown>
    readonly claims: Record<string, unknown>
  } | null
}

const seconds = (ms: number) => Math.round(ms / 1000)

export const inspect = (
  config: Config.Config,
  name: string
): Effect.Effect<Inspection, TokenError.TokenError, TokenStore.TokenStore> =>
  Effect.gen(function* () {
    const store = yield* TokenStore.TokenStore
    const engine = yield* Engine.make(config, store).pipe(Effect.provide(Http.layer))
    const c = yield* engine.connection(name)
    const m = c.manifest
    const state = yield* engine.cacheState(name)
    const entry = state.cached ? yield* store.get(state.key) : undefined
    const flow = m.flows.refresh && state.hasRefreshToken ? "refresh" : "acquire"
    const req = m.flows.acquire ? yield* engine.describeRequest(name, flow) : undefined
    const wire = req ? TokenRequest.encode(req, { mask: true }) : undefined
    // A static credential's header or query parameter may be named by an input: show where it goes for this one.
    const place = StaticCredential.isStatic(m) ? yield* StaticCredential.render(c) : undefined
    const now = yield* Clock.currentTimeMillis
    const access = entry?.token.access_token
    const header = access ? Expiry.jwtHeader(access) : undefined
    const claims = access ? Expiry.jwtPayload(access) : undefined
    const iso = (d: Date | undefined) => (d ? d.toISOString() : null)
    return {
      connection: c.name,
      provider: { id: m.id, name: m.name, docs: m.docs ?? null, source: sourceOf(m.file) },
      inputs: [...m.inputs.values()].flatMap((spec) => {
        const v = c.inputs.get(spec.name)
        return v === undefined
          ? []
          : [
              {
                name: spec.name,
                value: Template.isSecret(v) || spec.secret ? masked : v,
                secret: spec.secret || Template.isSecret(v)
              }
            ]
      }),
      kind: m.kind,
      flows: m.flows.acquire
        ? { acquire: flowInfo(c, m.flows.acquire), refresh: m.flows.refresh ? flowInfo(c, m.flows.refresh) : null }
        : null,
      request:
        req && wire
          ? { flow: req.flow, method: req.method, url: wire.url, headers: wire.headers, body: wire.body ?? null }
          : null,
      api: {
        base_url: m.api ? shown(c, m.api.baseUrl) : null,
        header: place
          ? place.place === "query"
            ? `?${place.name}=`
            : place.name
          : m.apply.query !== undefined
            ? `?${m.apply.query}=`
            : m.apply.header,
        value: m.apply.basic
          ? `Basic base64(${m.apply.basic.username.source}:${m.apply.basic.password.source})`
          : m.apply.value.source
      },
      cache: {
        store: store.name,
        cached: state.cached,
        obtained_at: iso(state.obtainedAt),
        age_seconds: state.obtainedAt ? seconds(now - state.obtainedAt.getTime()) : null,
        expires_at: iso(state.expiresAt),
        expires_in_seconds: state.expiresAt ? seconds(state.expiresAt.getTime() - now) : null,
        freshness: state.freshness ?? null,
        has_refresh_token: state.hasRefreshToken ?? null,
        expiry_source: state.expirySource ?? null
      },
      jwt: header && claims ? { verified: false, header, claims } : null
    } satisfies Inspection
  })

const timeClaims = new Set(["exp", "iat", "nbf", "auth_time"])

/** A claim as shown: provider text, so sanitized; a time claim with its date when it is one a Date can hold. */
const claimText = (k: string, v: unknown): string => {
  const text = Terminal.sanitize(typeof v === "string" ? v : String(JSON.stringify(v)))
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v) ? Number(v) : undefined
  const date = n === undefined ? undefined : new Date(n * 1000)
  return timeClaims.has(k) && date && Number.isFinite(date.getTime()) ? `${text}  (${date.toISOString()})` : text
}

/** Label/value lines, labels padded to one column. */
const pairs = (rows: ReadonlyArray<readonly [string, string]>, indent = "  "): string[] => {
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd())
}

export const render = (i: Inspection, p: Terminal.Paint, now: number): string => {
  const heading = (s: string) => p.bold(s)
  const flow = (f: FlowInfo) => [
    `${f.method} ${f.url ?? "(url not set)"}`,
    `grant_type ${f.grant_type ?? "-"}, encoding ${f.encoding}, client auth ${f.client_auth ?? "-"}`
  ]
  const at = (iso: string | null) => (iso ? `${iso} (${Report.relative(Date.parse(iso), now)})` : "-")
  const fresh = (f: string | null) =>
    f === "fresh" ? p.green(f) : f === "expiring" ? p.yellow(f) : f === "expired" ? p.red(f) : "-"
  const c = i.cache
  const lines: string[] = [
    ...pairs(
      [
        ["Connection", i.connection],
        ["Provider", `${i.provider.id} (${i.provider.name})`],
        ["Manifest", i.provider.source],
        ...(i.provider.docs ? [["Docs", i.provider.docs] as const] : [])
      ],
      ""
    ),
    "",
    heading("Inputs"),
    ...pairs(i.inputs.map((x) => [x.name, x.secret ? `${x.value} ${p.dim("(secret)")}` : x.value] as const)),
    "",
    heading("Flows"),
    ...(i.flows
      ? pairs([
          ["acquire", flow(i.flows.acquire)[0]!],
          ["", flow(i.flows.acquire)[1]!],
          ...(i.flows.refresh
            ? [["refresh", flow(i.flows.refresh)[0]!] as const, ["", flow(i.flows.refresh)[1]!] as const]
            : [["refresh", "none"] as const])
        ])
      : [`  none: a static credential (kind: ${i.kind}), applied to API calls from the inputs; no token endpoint`]),
    "",
    ...(i.request
      ? [
          heading(`Next token request (${i.request.flow}, secrets masked, not sent)`),
          `  ${i.request.method} ${i.request.url}`,
          ...Object.entries(i.request.headers).map(([k, v]) => `  ${k}: ${v}`),
          ...(i.request.body === null ? [] : ["", `  ${i.request.body}`]),
          ""
        ]
      : []),
    heading("API"),
    ...pairs([
      ["base URL", i.api.base_url ?? "none (tessera request needs absolute URLs)"],
      ["applies", i.api.header.startsWith("?") ? `${i.api.header}${i.api.value}` : `${i.api.header}: ${i.api.value}`]
    ]),
    "",
    heading(`Cache (${c.store} store)`),
    ...(c.cached
      ? pairs([
          ["cached", "yes"],
          ["obtained", at(c.obtained_at)],
          ["expires", at(c.expires_at)],
          ["freshness", fresh(c.freshness)],
          ["refresh token", c.has_refresh_token ? "yes" : "no"],
          ["expiry source", c.expiry_source ?? "-"]
        ])
      : i.flows
        ? ["  no cached token (tessera token " + i.connection + " gets one)"]
        : ["  nothing cached: a static credential is never stored"])
  ]
  if (c.cached) {
    lines.push("", heading("Access token (JWT): header and claims, decoded, not verified"))
    if (!i.jwt) lines.push("  not a JWT: nothing to decode")
    else {
      // The JWT is the provider's: its header and claims are sanitized before they reach the terminal.
      lines.push(`  header  ${Terminal.sanitizeJson(JSON.stringify(i.jwt.header))}`, "  claims")
      const entries = Object.entries(i.jwt.claims)
      lines.push(
        ...(entries.length
          ? pairs(
              entries.map(([k, v]) => [Terminal.sanitize(k), claimText(k, v)] as const),
              "    "
            )
          : ["    (none)"])
      )
    }
  }
  return lines.join("\n")
}

export interface Options {
  readonly connection: string
  readonly config: Option.Option<string>
  readonly json: boolean
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const config = yield* ConfigDiscovery.load(o.config).pipe(Effect.catch(Report.failWith({ json: o.json })))
    const result = yield* inspect(config, o.connection).pipe(
      Effect.provide(Runtime.storeLayer(config, "file")),
      Effect.catch(Report.failWith({ json: o.json, secrets: Report.secretsOf(config) }))
    )
    // Secrets are masked field by field already; scrubbing the whole text also catches one quoted in a JWT claim.
    const text = o.json
      ? Terminal.sanitizeJson(JSON.stringify(result, null, 2))
      : render(result, yield* Terminal.paint("stdout"), yield* Clock.currentTimeMillis)
    yield* Console.log(Redaction.scrub(text, Report.secretsOf(config)))
  }).pipe(Effect.withSpan("tessera.cli.inspect"))

const flags = {
  connection: Argument.String("connection").pipe(Argument.withDescription("a connection name from the config")),
  config: ConfigDiscovery.flag,
  json: Flags.toggle("json", "print {connection, provider, inputs, flows, request, api, cache, jwt} as JSON")
}

export const command = Command.make("inspect", flags, handler).pipe(
  Command.withDescription(
    "Show what tessera knows about a connection, without any network call: the provider, the resolved " +
      "inputs (secrets as ***), the acquire and refresh flows, the token request it would send next (masked), how API calls " +
      "carry the token, the cache entry (age, expiry, freshness, refresh token, expiry source) and, when the cached access " +
      "token is a JWT, its header and claims: decoded, NOT verified. The token itself is never printed. " +
      "Exit 0 on success, 2 when the connection or the config is wrong."
  ),
  Command.withShortDescription("Show a connection's provider, inputs, flows and cache state"),
  Command.withExamples([
    { command: "tessera inspect crm", description: "Everything about connection crm, secrets masked" },
    {
      command: "tessera inspect crm --json | jq .jwt.claims",
      description: "The cached token's JWT claims (decoded, not verified)"
    },
    { command: "tessera inspect crm --json | jq .cache.expires_at", description: "When the cached token expires" }
  ])
)
