/** Replays recorded token exchanges offline, through the engine's own exchange (upstream.ts: request builder,
 *  `Http`, response decoder) on `Http.makeReplay` and a clock that stands at the recording's time: the request the
 *  engine sent is compared with the recorded one, and the outcome of the recorded answer with the fixture's
 *  expectation. No socket: `tessera validate --fixtures` proves that a manifest
 *  still sends what its provider accepted and still reads what its provider answered.
 *
 *  Holds the fixture format (`Fixture`), `replay` (one file), `replayAll` (a directory of `<id>/<case>.json`)
 *  and `format`. A fixture is one JSON file, `providers/fixtures/<provider id>/<case>.json`:
 *
 *  ```jsonc
 *  {
 *    "format": "tessera-fixture/1",
 *    "description": "what this exchange shows",
 *    "provider": "cube",                     // a manifest id; must equal the directory name
 *    "flow": "acquire",                      // or "refresh"
 *    "recorded": { "with": "@tessera/testkit sandbox", "at": "2026-01-01T00:00:00Z" },   // optional provenance
 *    "inputs": { "client_id": "...", "token_url": "https://sandbox.invalid/cube/connect/token" },
 *    "token": { "refresh_token": "..." },    // refresh flow only: the token being refreshed
 *    "request": {                            // what the provider received
 *      "method": "POST",
 *      "url": "https://sandbox.invalid/cube/connect/token",
 *      "headers": { "content-type": "application/x-www-form-urlencoded", "authorization": null },
 *      "form": { "grant_type": "client_credentials", ... }          // or "json": { ... }
 *    },
 *    "response": {                           // what the provider answered
 *      "status": 200,
 *      "headers": { "content-type": "application/json", "date": "Mon, 23 Nov 2026 11:19:40 GMT" },
 *      "body": { "access_token": "...", "expires_in": 86400 }       // or "text": "raw body"
 *    },
 *    "expect": { "access_token": "...", "token_type": "Bearer", "refresh_token": null,
 *                "expiry_source": "expires_in", "lifetime_seconds": 86400 }
 *    // or, for a failure: { "error": "UpstreamRejected", "kind": "reauthenticate", "status": 401, "code": "invalid_client" }
 *  }
 *  ```
 *
 *  A signed JWT the request carries (a JWT bearer `assertion`, a `client_assertion`, an `Authorization: Bearer` app
 *  JWT) is listed under `request.jwts`, keyed by where it is (`form.assertion`, `form.client_assertion`,
 *  `json.assertion`, `headers.authorization`): that value is not compared as text but verified with jose against
 *  the public `key` (PEM or JWK), at the replay clock, and its protected header and claims compared exactly (`"*"`
 *  for a claim that must be there with any value, such as a random `jti`):
 *
 *  ```jsonc
 *  "jwts": { "form.assertion": { "key": "-----BEGIN PUBLIC KEY-----...", "header": { "alg": "RS256", "typ": "JWT" },
 *            "claims": { "iss": "svc@example.iam.gserviceaccount.com", "aud": "...", "iat": 1795433778, "exp": 1795437378 } } }
 *  ```
 *
 *  Comparison rules. `request.method` and `request.url` must be equal. Only the headers listed are compared
 *  (names case-insensitively); `null` means the header must not be sent. `form` is compared field by field in
 *  both directions (a missing or an extra field is a mismatch); `json` is compared deeply. In `expect`, only the
 *  keys given are compared, and `"refresh_token": null` means no refresh token. The replay clock (when the
 *  request is sent and the response received) is the response's Date header, so expiries read from a JWT `exp`
 *  or an absolute `expires_at` give the same `lifetime_seconds` on every run; without a Date header it is
 *  `recorded.at`, or the epoch. Inputs count as given through `${env:…}`, so a secret in a fixture draws no
 *  "written literally" warning: fixtures hold sandbox credentials only. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import { decodeProtectedHeader } from "jose/decode/protected_header"
import type { JWK } from "jose"
import { importJWK, importSPKI } from "jose/key/import"
import { jwtVerify } from "jose/jwt/verify"
import { readdir, readFile } from "node:fs/promises"
import { basename, dirname, join } from "node:path"
import type { Catalog } from "./catalog.ts"
import * as Connection from "./connection.ts"
import * as Http from "./http.ts"
import type { FlowName } from "./manifest.ts"
import type { Token } from "./token.ts"
import type { InputInvalid, UpstreamError } from "./token-error.ts"
import * as TokenRequest from "./token-request.ts"
import * as Upstream from "./upstream.ts"

export const formatVersion = "tessera-fixture/1"

const TokenExpectation = Schema.Struct({
  access_token: Schema.optionalKey(Schema.String),
  token_type: Schema.optionalKey(Schema.String),
  refresh_token: Schema.optionalKey(Schema.NullOr(Schema.String)),
  scope: Schema.optionalKey(Schema.NullOr(Schema.String)),
  expiry_source: Schema.optionalKey(Schema.Literals(["expires_in", "expires_at", "jwt_exp", "ttl", "default"])),
  lifetime_seconds: Schema.optionalKey(Schema.Number)
})

const ErrorExpectation = Schema.Struct({
  error: Schema.Literals(["UpstreamRejected", "ResponseInvalid"]),
  status: Schema.optionalKey(Schema.Number),
  kind: Schema.optionalKey(Schema.Literals(["reauthenticate", "transient", "rate_limit", "other"])),
  code: Schema.optionalKey(Schema.NullOr(Schema.String)),
  field: Schema.optionalKey(Schema.String)
})

export const Fixture = Schema.Struct({
  format: Schema.Literal(formatVersion),
  description: Schema.String,
  provider: Schema.String,
  flow: Schema.Literals(["acquire", "refresh"]),
  recorded: Schema.optionalKey(
    Schema.Struct({ with: Schema.optionalKey(Schema.String), at: Schema.optionalKey(Schema.String) })
  ),
  inputs: Schema.Record(Schema.String, Schema.String),
  token: Schema.optionalKey(
    Schema.Struct({
      access_token: Schema.optionalKey(Schema.String),
      refresh_token: Schema.optionalKey(Schema.String),
      token_type: Schema.optionalKey(Schema.String)
    })
  ),
  request: Schema.Struct({
    method: Schema.Literals(["POST", "GET"]),
    url: Schema.String,
    headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.NullOr(Schema.String))),
    form: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
    json: Schema.optionalKey(Schema.Json),
    jwts: Schema.optionalKey(
      Schema.Record(
        Schema.String,
        Schema.Struct({
          key: Schema.String,
          header: Schema.Record(Schema.String, Schema.Json),
          claims: Schema.Record(Schema.String, Schema.Json)
        })
      )
    )
  }),
  response: Schema.Struct({
    status: Schema.Int,
    headers: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
    body: Schema.optionalKey(Schema.Json),
    text: Schema.optionalKey(Schema.String)
  }),
  expect: Schema.Union([ErrorExpectation, TokenExpectation])
})
export type Fixture = typeof Fixture.Type

/** A fixture file that cannot be replayed at all: unreadable, not JSON, not the fixture shape, or naming a
 *  provider or flow that does not exist. */
export class FixtureInvalid extends Schema.TaggedError<FixtureInvalid>()("FixtureInvalid", {
  file: Schema.String,
  problems: Schema.Array(Schema.String)
}) {
  override get message() {
    return `${this.file}: not a replayable fixture:\n  ${this.problems.join("\n  ")}`
  }
}

/** One difference between the recording and the replay. `field` is a dot path: `request.form.scope`,
 *  `request.headers.authorization`, `expect.lifetime_seconds`. `actual` is undefined when the value is absent. */
export interface Mismatch {
  readonly field: string
  readonly expected: unknown
  readonly actual: unknown
}

export interface Replay {
  readonly file: string
  readonly provider: string
  /** The file name without `.json`. */
  readonly name: string
  readonly description: string
  readonly flow: FlowName
  readonly mismatches: ReadonlyArray<Mismatch>
}

export const isClean = (r: Replay): boolean => r.mismatches.length === 0

const show = (v: unknown): string => (v === undefined ? "(absent)" : JSON.stringify(v))

export const formatMismatch = (m: Mismatch): string => `${m.field}: expected ${show(m.expected)}, got ${show(m.actual)}`

/** `ok provider/case` or the case followed by one line per mismatch. */
export const format = (r: Replay): string =>
  isClean(r)
    ? `ok ${r.provider}/${r.name}`
    : [`FAIL ${r.provider}/${r.name}: ${r.description}`, ...r.mismatches.map((m) => `  ${formatMismatch(m)}`)].join(
        "\n"
      )

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v)

/** Deep comparison listing every differing leaf, so a changed nested JSON field is named exactly. */
const diffJson = (path: string, expected: unknown, actual: unknown, out: Mismatch[]): void => {
  if (isRecord(expected) && isRecord(actual)) {
    for (const k of new Set([...Object.keys(expected), ...Object.keys(actual)])) {
      diffJson(
        `${path}.${k}`,
        Object.hasOwn(expected, k) ? expected[k] : undefined,
        Object.hasOwn(actual, k) ? actual[k] : undefined,
        out
      )
    }
    return
  }
  if (JSON.stringify(expected) !== JSON.stringify(actual)) out.push({ field: path, expected, actual })
}

/** The replay clock: the response's Date header, else when the fixture was recorded, else the epoch. */
const clockOf = (f: Fixture): number => {
  const date = Object.entries(f.response.headers ?? {}).find(([k]) => k.toLowerCase() === "date")?.[1]
  const at = [date, f.recorded?.at].map((s) => (s === undefined ? Number.NaN : Date.parse(s))).find(Number.isFinite)
  return at ?? 0
}

/** The recorded request against the one the engine sent (its wire form, as `Http` got it). */
const compareRequest = (
  sent: Http.Request,
  encoding: TokenRequest.TokenRequest["encoding"],
  f: Fixture,
  out: Mismatch[]
): void => {
  if (sent.method !== f.request.method)
    out.push({ field: "request.method", expected: f.request.method, actual: sent.method })
  if (sent.url !== f.request.url) out.push({ field: "request.url", expected: f.request.url, actual: sent.url })
  const headers = new Map(Object.entries(sent.headers).map(([k, v]) => [k.toLowerCase(), v] as const))
  const jwtAt = new Set(Object.keys(f.request.jwts ?? {}))
  for (const [name, expected] of Object.entries(f.request.headers ?? {})) {
    if (jwtAt.has(`headers.${name.toLowerCase()}`)) continue
    const actual = headers.get(name.toLowerCase())
    if ((expected ?? undefined) !== actual)
      out.push({ field: `request.headers.${name.toLowerCase()}`, expected, actual })
  }
  const body = typeof sent.body === "string" ? sent.body : sent.body && Buffer.from(sent.body).toString("utf8")
  if (f.request.form !== undefined) {
    if (encoding !== "form") {
      out.push({ field: "request.encoding", expected: "form", actual: encoding })
      return
    }
    compareForm(new URLSearchParams(body ?? new URL(sent.url).search), f.request.form, out, jwtAt)
  }
  if (f.request.json !== undefined) {
    if (encoding !== "json") {
      out.push({ field: "request.encoding", expected: "json", actual: encoding })
      return
    }
    let actual: unknown
    try {
      actual = JSON.parse(body ?? "")
    } catch {
      actual = body
    }
    const strip = (v: unknown) => {
      if (!isRecord(v)) return v
      const copy = { ...v }
      for (const at of jwtAt) if (at.startsWith("json.")) delete copy[at.slice(5)]
      return copy
    }
    diffJson("request.json", strip(f.request.json), strip(actual), out)
  }
}

/** Form fields in both directions: a missing, an extra or a repeated field is a mismatch. */
const compareForm = (
  fields: URLSearchParams,
  form: Readonly<Record<string, string>>,
  out: Mismatch[],
  jwtAt: ReadonlySet<string>
): void => {
  const actual = new Map<string, string>()
  for (const [k, v] of fields) {
    if (actual.has(k)) out.push({ field: `request.form.${k}`, expected: "sent once", actual: "sent more than once" })
    actual.set(k, v)
  }
  for (const k of new Set([...Object.keys(form), ...actual.keys()])) {
    if (jwtAt.has(`form.${k}`)) {
      if (!actual.has(k)) out.push({ field: `request.form.${k}`, expected: "a signed JWT", actual: undefined })
      continue
    }
    const expected = Object.hasOwn(form, k) ? form[k] : undefined
    if (expected !== actual.get(k)) out.push({ field: `request.form.${k}`, expected, actual: actual.get(k) })
  }
}

const jwtPlaces = ["form.assertion", "form.client_assertion", "json.assertion", "headers.authorization"]

/** The JWT sent at `at` (`form.assertion`, `headers.authorization`...), as the request carried it. */
const sentJwt = (sent: Http.Request, at: string): string | undefined => {
  const [place, name] = [at.slice(0, at.indexOf(".")), at.slice(at.indexOf(".") + 1)]
  const body = typeof sent.body === "string" ? sent.body : sent.body && Buffer.from(sent.body).toString("utf8")
  if (place === "headers") {
    const v = Object.entries(sent.headers).find(([k]) => k.toLowerCase() === name)?.[1]
    return v?.startsWith("Bearer ") ? v.slice(7) : v
  }
  if (place === "form") return new URLSearchParams(body ?? "").get(name) ?? undefined
  try {
    const json: unknown = JSON.parse(body ?? "")
    const v = isRecord(json) ? json[name] : undefined
    return typeof v === "string" ? v : undefined
  } catch {
    return undefined
  }
}

const publicKey = (text: string, alg: string) =>
  text.trim().startsWith("{") ? importJWK(JSON.parse(text) as JWK, alg) : importSPKI(text, alg)

/** Each listed JWT verified (signature, and exp at the replay clock) and its header and claims compared. */
const verifyJwts = (sent: Http.Request, f: Fixture, clock: number, out: Mismatch[]): Effect.Effect<void> =>
  Effect.forEach(Object.entries(f.request.jwts ?? {}), ([at, expected]) =>
    Effect.promise(async () => {
      const field = `request.jwts.${at}`
      const jwt = sentJwt(sent, at)
      if (jwt === undefined) return void out.push({ field, expected: "a signed JWT", actual: undefined })
      let header: Record<string, unknown>
      try {
        header = decodeProtectedHeader(jwt)
      } catch {
        return void out.push({ field, expected: "a JWT", actual: "not a JWT" })
      }
      diffJson(`${field}.header`, expected.header, header, out)
      try {
        const key = await publicKey(expected.key, typeof header["alg"] === "string" ? header["alg"] : "RS256")
        const { payload } = await jwtVerify(jwt, key, { currentDate: new Date(clock) })
        const claims: Record<string, unknown> = { ...payload }
        for (const [k, v] of Object.entries(expected.claims))
          if (v === "*" && typeof claims[k] === "string" && claims[k] !== "") claims[k] = "*"
        diffJson(`${field}.claims`, expected.claims, claims, out)
      } catch (e) {
        out.push({ field: `${field}.signature`, expected: "valid", actual: e instanceof Error ? e.message : "invalid" })
      }
    })
  ).pipe(Effect.asVoid)

type Outcome =
  | { readonly _tag: "Token"; readonly token: Token }
  | { readonly _tag: "Error"; readonly error: UpstreamError | InputInvalid }

const compareOutcome = (decoded: Outcome, f: Fixture, sentAt: number, out: Mismatch[]): void => {
  const e = f.expect
  const check = (key: string, expected: unknown, actual: unknown) => {
    if (expected !== actual) out.push({ field: `expect.${key}`, expected, actual })
  }
  if ("error" in e) {
    if (decoded._tag === "Token") {
      out.push({ field: "expect.error", expected: e.error, actual: "a token" })
      return
    }
    const err = decoded.error
    check("error", e.error, err._tag)
    if (e.status !== undefined) check("status", e.status, "status" in err ? err.status : undefined)
    if (e.kind !== undefined) check("kind", e.kind, err._tag === "UpstreamRejected" ? err.kind : undefined)
    if (e.code !== undefined) check("code", e.code ?? undefined, err._tag === "UpstreamRejected" ? err.code : undefined)
    if (e.field !== undefined) check("field", e.field, err._tag === "ResponseInvalid" ? err.field : undefined)
    return
  }
  if (decoded._tag !== "Token") {
    out.push({ field: "expect.error", expected: undefined, actual: `${decoded.error._tag}: ${decoded.error.message}` })
    return
  }
  const t = decoded.token
  if (e.access_token !== undefined) check("access_token", e.access_token, Redacted.value(t.accessToken))
  if (e.token_type !== undefined) check("token_type", e.token_type, t.tokenType)
  if (e.refresh_token !== undefined)
    check("refresh_token", e.refresh_token ?? undefined, t.refreshToken ? Redacted.value(t.refreshToken) : undefined)
  if (e.scope !== undefined) check("scope", e.scope ?? undefined, t.scope)
  if (e.expiry_source !== undefined) check("expiry_source", e.expiry_source, t.expirySource)
  if (e.lifetime_seconds !== undefined) check("lifetime_seconds", e.lifetime_seconds, (t.expiresAt - sentAt) / 1000)
}

/** One attempt, no retry: a fixture is one exchange. */
const replaySettings = { timeoutMs: 10_000, totalTimeoutMs: 10_000, retries: 0, maxResponseBytes: 1_048_576 }

/** The recorded answer as `Http` gives it. */
export const recordedResponse = (f: Fixture): Http.Response => ({
  status: f.response.status,
  headers: Object.fromEntries(Object.entries(f.response.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
  body: new TextEncoder().encode(f.response.text ?? JSON.stringify(f.response.body))
})

/** The fixture's exchange for `Http.makeReplay`: its request and its answer. */
export const recorded = (f: Fixture): Http.Recorded => ({
  request: { method: f.request.method, url: f.request.url },
  response: recordedResponse(f)
})

/** A clock that stands still at `at`: the replay's "now" whenever the engine asks. */
const fixedClock = (at: number): Clock.Clock => ({
  currentTimeMillisUnsafe: () => at,
  currentTimeMillis: Effect.sync(() => at),
  currentTimeNanosUnsafe: () => BigInt(at) * 1_000_000n,
  currentTimeNanos: Effect.sync(() => BigInt(at) * 1_000_000n),
  monotonicTimeNanosUnsafe: () => BigInt(at) * 1_000_000n,
  monotonicTimeNanos: Effect.sync(() => BigInt(at) * 1_000_000n),
  sleep: () => Effect.void
})

const decodeFixture = Schema.decodeUnknownEffect(Fixture)
const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** Replays one fixture file against the catalog's manifest for its provider. */
export const replay = (file: string, catalog: Catalog): Effect.Effect<Replay, FixtureInvalid> =>
  Effect.gen(function* () {
    const invalid = (...problems: string[]) => new FixtureInvalid({ file, problems })
    const text = yield* Effect.tryPromise({
      try: () => readFile(file, "utf8"),
      catch: (e) => invalid(`cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
    })
    const json = yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (e) => invalid(`not JSON: ${e instanceof Error ? e.message : String(e)}`)
    })
    const f = yield* decodeFixture(json, { errors: "all", onExcessProperty: "error" }).pipe(
      Effect.mapError((e) =>
        invalid(
          ...formatIssues(e.issue).issues.map((i) => `${i.path?.map(String).join(".") || "(root)"}: ${i.message}`)
        )
      )
    )
    const manifest = catalog.manifests.get(f.provider)
    if (!manifest)
      return yield* invalid(`unknown provider "${f.provider}" (known: ${[...catalog.manifests.keys()].join(", ")})`)
    const dir = basename(dirname(file))
    if (dir !== f.provider) return yield* invalid(`provider "${f.provider}" does not match its directory "${dir}"`)
    if ((f.request.form === undefined) === (f.request.json === undefined))
      return yield* invalid("request: give exactly one of form or json")
    for (const at of Object.keys(f.request.jwts ?? {}))
      if (!jwtPlaces.includes(at))
        return yield* invalid(`request.jwts: "${at}" is not a place a JWT goes; use one of ${jwtPlaces.join(", ")}`)
    if ((f.response.body === undefined) === (f.response.text === undefined))
      return yield* invalid("response: give exactly one of body or text")
    const flow = manifest.flows[f.flow]
    if (!flow) return yield* invalid(`${f.provider} has no ${f.flow} flow`)

    const mismatches: Mismatch[] = []
    const given = new Map(Object.entries(f.inputs).map(([k, value]) => [k, { value, literal: false }] as const))
    const { inputs, issues } = Connection.resolveInputs(manifest, given)
    for (const i of issues)
      if (i.severity === "error")
        mismatches.push({ field: i.input ? `inputs.${i.input}` : "inputs", expected: "valid", actual: i.message })
    const name = basename(file).replace(/\.json$/, "")
    const connection: Connection.Connection = {
      name: `fixture ${f.provider}/${name}`,
      manifest,
      inputs,
      allowInsecureHttp: false,
      tags: {},
      source: "config" as const,
      version: 0
    }
    const clock = clockOf(f)
    const token: Token | undefined =
      f.token === undefined
        ? undefined
        : {
            accessToken: Redacted.make(f.token.access_token ?? "", { label: "access_token" }),
            refreshToken:
              f.token.refresh_token === undefined
                ? undefined
                : Redacted.make(f.token.refresh_token, { label: "refresh_token" }),
            tokenType: f.token.token_type ?? "Bearer",
            expiresAt: clock,
            obtainedAt: clock,
            expirySource: "default"
          }
    const http = Http.makeReplay([{ response: recordedResponse(f) }])
    const outcome: Outcome = yield* Upstream.exchange(connection, flow, replaySettings, token).pipe(
      Effect.map((x): Outcome => ({ _tag: "Token", token: x.token })),
      Effect.catch((error) => Effect.succeed<Outcome>({ _tag: "Error", error })),
      Effect.provideService(Http.Http, http),
      Effect.provideService(Clock.Clock, fixedClock(clock))
    )
    const sent = http.sent[0]
    const built = TokenRequest.build(connection, flow, token)
    if (sent && built._tag === "Request") {
      compareRequest(sent, built.request.encoding, f, mismatches)
      yield* verifyJwts(sent, f, clock, mismatches)
    } else {
      const why = built._tag === "Invalid" ? built.details.join("; ") : "none sent"
      mismatches.push({ field: "request", expected: "a request", actual: why })
    }
    // A request that could not be built is reported above; its InputInvalid says nothing about the answer.
    if (outcome._tag === "Token" || outcome.error._tag !== "InputInvalid") compareOutcome(outcome, f, clock, mismatches)
    return { file, provider: f.provider, name, description: f.description, flow: f.flow, mismatches } satisfies Replay
  })

export interface ReplayAll {
  readonly replays: ReadonlyArray<Replay>
  /** Fixtures that could not be replayed; the others are replayed regardless, so one run lists everything. */
  readonly invalid: ReadonlyArray<FixtureInvalid>
}

/** Replays every `<dir>/<provider id>/<case>.json`, in name order. Fails only when `dir` cannot be read. */
export const replayAll = (dir: string, catalog: Catalog): Effect.Effect<ReplayAll, FixtureInvalid> =>
  Effect.gen(function* () {
    const entries = yield* Effect.tryPromise({
      try: () => readdir(dir, { withFileTypes: true }),
      catch: (e) =>
        new FixtureInvalid({
          file: dir,
          problems: [`cannot read fixture directory: ${(e as NodeJS.ErrnoException).code ?? String(e)}`]
        })
    })
    const files: string[] = []
    for (const d of entries
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort()) {
      const names = yield* Effect.tryPromise({
        try: () => readdir(join(dir, d)),
        catch: () => new FixtureInvalid({ file: join(dir, d), problems: ["cannot read directory"] })
      })
      files.push(
        ...names
          .filter((n) => n.endsWith(".json"))
          .sort()
          .map((n) => join(dir, d, n))
      )
    }
    const results = yield* Effect.forEach(files, (file) => Effect.result(replay(file, catalog)))
    return {
      replays: results.flatMap((r) => (r._tag === "Success" ? [r.success] : [])),
      invalid: results.flatMap((r) => (r._tag === "Failure" ? [r.failure] : []))
    }
  })
