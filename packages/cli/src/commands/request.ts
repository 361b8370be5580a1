/** `tessera request <connection> <METHOD> <path-or-url>`: one authenticated API call, like curl with the token
 *  handled. The call is the engine's `Api.call` (shared with `tessera.fetch` and the server's proxy): a path is
 *  resolved below the manifest's `api.base_url`, an absolute URL must be on that API origin (another one only with
 *  --allow-foreign-origin), the token goes in the header the manifest's `apply` rule names, and a 401 invalidates
 *  the token and retries once with a new one. This module holds what is the command's own: the command line, the
 *  body and header defaults (like curl -d), and the output: the response body goes to stdout as received (`-i` adds
 *  the status line and headers, `--json` gives {status, headers, body}). The Authorization value (and the token) is
 *  never printed. */
import {
  Api,
  Engine,
  Redaction,
  Runtime,
  StaticCredential,
  Upstream,
  type Connection,
  type TokenError
} from "@tessera/engine"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as References from "effect/References"
import * as Stdio from "effect/Stdio"
import * as Stream from "effect/Stream"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Flag from "effect/cli/Flag"
import { readFile } from "node:fs/promises"
import { STATUS_CODES } from "../node-http.ts"
import { ApiStatus, InvalidArgument } from "../cli-error.ts"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"

export interface Options {
  readonly connection: string
  readonly method: string
  readonly target: string
  readonly data: Option.Option<string>
  readonly header: ReadonlyArray<string>
  readonly include: boolean
  readonly json: boolean
  readonly allowForeignOrigin: boolean
  readonly config: Option.Option<string>
}

export interface Response {
  readonly status: number
  readonly statusText: string
  readonly headers: ReadonlyArray<readonly [string, string]>
  readonly body: Uint8Array
}

// API answers can be large (exports, lists); the token endpoint's 1 MiB cap is not meant for them.
const maxResponseBytes = 100 * 1024 * 1024

// RFC 9110 §5.1: a field name is a token.
const headerLine = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/

export const parseHeaders = (
  lines: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<readonly [string, string]>, InvalidArgument> =>
  Effect.forEach(lines, (line) => {
    const m = headerLine.exec(line)
    return m
      ? Effect.succeed([m[1]!, m[2]!] as const)
      : Effect.fail(
          new InvalidArgument({
            argument: `-H ${JSON.stringify(line)}`,
            reason: "is not a header",
            hint: "write it as -H 'Name: value'"
          })
        )
  })

/** The body `-d` names: the text itself, `@file` for a file's bytes, `-` (or `@-`) for standard input. */
export const readBody = (data: string): Effect.Effect<Uint8Array, InvalidArgument, Stdio.Stdio> =>
  Effect.gen(function* () {
    if (data === "-" || data === "@-") {
      const stdio = yield* Stdio.Stdio
      const chunks = yield* Stream.runCollect(stdio.stdin).pipe(
        Effect.mapError(
          () => new InvalidArgument({ argument: `-d ${data}`, reason: "could not be read from standard input" })
        )
      )
      return Buffer.concat(chunks)
    }
    if (data.startsWith("@")) {
      const file = data.slice(1)
      return yield* Effect.tryPromise({
        try: () => readFile(file),
        catch: (e) =>
          new InvalidArgument({
            argument: `-d ${data}`,
            reason: `names a file that cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`
          })
      })
    }
    return Buffer.from(data, "utf8")
  })

const isJson = (body: Uint8Array): boolean => {
  try {
    JSON.parse(Buffer.from(body).toString("utf8"))
    return true
  } catch {
    return false
  }
}

/** Api's refusals of where a call would go, as command-line mistakes (exit 2) with a hint for this command. */
const refused = (c: Connection.Connection, target: string, e: Api.ApiError): InvalidArgument => {
  switch (e._tag) {
    case "NoApiBaseUrl":
      return e.missing.length === 0
        ? new InvalidArgument({
            argument: target,
            reason: `is a relative path, and provider ${c.manifest.id} has no api.base_url`,
            hint: "pass an absolute URL"
          })
        : new InvalidArgument({
            argument: target,
            reason: `is a relative path, and ${c.manifest.id}'s api.base_url needs ${e.missing.join(", ")}, which connection ${c.name} does not set`,
            hint: `set ${e.missing.map((n) => n.replace(/^inputs\./, "")).join(", ")} in the connection's inputs, or pass an absolute URL`
          })
    case "ForeignOrigin":
      return new InvalidArgument({
        argument: target.replace(/[?#].*$/s, ""),
        reason:
          e.apiOrigin === undefined
            ? `is an absolute URL, and connection ${c.name} has no API origin (${c.manifest.id} has no api.base_url)`
            : `is outside connection ${c.name}'s API origin ${e.apiOrigin}`,
        hint: "tessera sends the token only to the API origin; pass --allow-foreign-origin to send it there anyway"
      })
    case "TargetRefused":
      return new InvalidArgument({ argument: e.target, reason: e.reason, hint: e.hint })
    case "BodyRefused":
      return new InvalidArgument({ argument: "-d", reason: e.message })
  }
}

/** Where the call goes (Api.resolve), refusals as command-line mistakes. */
export const targetOf = (
  c: Connection.Connection,
  o: Options
): Effect.Effect<Api.Target, InvalidArgument | TokenError.InputInvalid> =>
  Api.resolve(c, o.target, { allowForeignOrigin: o.allowForeignOrigin }).pipe(
    Effect.mapError((e) => (Api.isApiError(e) ? refused(c, o.target, e) : e))
  )

const toResponse = (r: Api.CallResponse): Response => ({
  status: r.status,
  statusText: STATUS_CODES[r.status] ?? "",
  body: r.body,
  headers: r.headers
})

/** The headers the command sends: the -H lines, and like curl -d, a Content-Type for a body: form-encoded unless
 *  said otherwise, but JSON when the body is JSON (what these APIs take). */
const requestHeaders = (headers: ReadonlyArray<readonly [string, string]>, body: Uint8Array | undefined) => {
  const lines = [...headers]
  const has = (name: string) => lines.some(([k]) => k.toLowerCase() === name)
  if (!has("accept")) lines.push(["accept", "application/json, */*;q=0.5"])
  if (body !== undefined && !has("content-type"))
    lines.push(["content-type", isJson(body) ? "application/json" : "application/x-www-form-urlencoded"])
  return lines
}

/** Sends the call (Api.call: the token applied; on a 401, invalidated and sent once more with a new one). */
export const send = (
  o: Options,
  target: Api.Target,
  body: Uint8Array | undefined,
  headers: ReadonlyArray<readonly [string, string]>
): Effect.Effect<
  { readonly response: Response; readonly token: Redacted.Redacted<string> },
  Api.ApiError | TokenError.TokenError,
  Engine.Engine
> =>
  Effect.gen(function* () {
    const engine = yield* Engine.Engine
    const r = yield* Api.call(
      engine,
      o.connection,
      { method: o.method, target, headers: requestHeaders(headers, body), body },
      { allowForeignOrigin: o.allowForeignOrigin, timeoutMs: engine.config.http.totalTimeoutMs, maxResponseBytes }
    )
    return { response: toResponse(r), token: r.token }
  })

const text = (body: Uint8Array): string | undefined => {
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body)
  } catch {
    return undefined
  }
}

/** The response with the token and the connection's secrets masked in every encoding (Redaction.scrub): an API that
 *  echoes request headers must not make `request` print them. */
const masked = (r: Response, secrets: ReadonlyArray<string>): Response => {
  const t = text(r.body)
  const scrubbed = t === undefined ? undefined : Redaction.scrub(t, secrets)
  return {
    ...r,
    headers: r.headers.map(([k, v]) => [k, Redaction.scrub(v, secrets)] as const),
    body: scrubbed !== undefined && scrubbed !== t ? Buffer.from(scrubbed, "utf8") : r.body
  }
}

export const toJson = (r: Response) => {
  const contentType = r.headers.find(([k]) => k === "content-type")?.[1] ?? ""
  const t = text(r.body)
  let body: unknown = t ?? Buffer.from(r.body).toString("base64")
  if (t !== undefined && (/[/+]json\b/i.test(contentType) || t.trim().startsWith("{") || t.trim().startsWith("["))) {
    try {
      body = JSON.parse(t)
    } catch {
      /* keep the text */
    }
  }
  if (t === "") body = null
  const headers: Record<string, string> = {}
  for (const [k, v] of r.headers) headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`
  return { status: r.status, headers, body }
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const failFor = (secrets?: ReadonlyArray<string>) => Report.failWith({ json: o.json, secrets })
    const config = yield* ConfigDiscovery.load(o.config).pipe(Effect.catch(failFor()))
    const secrets = Report.secretsOf(config)
    const level = yield* References.MinimumLogLevel
    const method = o.method.toUpperCase()
    const program = Effect.gen(function* () {
      if (!/^[A-Z]+$/.test(method))
        return yield* new InvalidArgument({
          argument: o.method,
          reason: "is not an HTTP method",
          hint: "e.g. GET, POST, PUT, PATCH, DELETE"
        })
      const engine = yield* Engine.Engine
      const c = yield* engine.connection(o.connection)
      const headers = yield* parseHeaders(o.header)
      // The header tessera sets: an API key's may be named by an input (apply.header "{{ inputs.header }}").
      const credential = StaticCredential.isStatic(c.manifest) ? "credential" : "token"
      const applied =
        credential === "credential"
          ? yield* StaticCredential.render(c)
          : { place: "header" as const, name: c.manifest.apply.header }
      const clash =
        applied.place === "header" ? headers.find(([k]) => k.toLowerCase() === applied.name.toLowerCase()) : undefined
      if (clash)
        return yield* new InvalidArgument({
          argument: `-H ${clash[0]}`,
          reason: `is set by tessera, from the ${credential === "credential" ? "connection's credential" : "token"}`,
          hint: `${c.manifest.id}'s apply rule puts the ${credential} in ${applied.name}`
        })
      const body = Option.isSome(o.data) ? yield* readBody(o.data.value) : undefined
      if (body !== undefined && (method === "GET" || method === "HEAD"))
        return yield* new InvalidArgument({
          argument: "-d",
          reason: `cannot go with a ${method} request`,
          hint: "use POST, PUT or PATCH, or put parameters in the URL's query"
        })
      const target = yield* targetOf(c, o)
      const url = target.url
      const { response, token } = yield* send({ ...o, method }, target, body, headers).pipe(
        Terminal.withSpinner(`${method} ${url.origin}${url.pathname}`)
      )
      const shown = masked(response, [Redacted.value(token), ...Upstream.secretsOf(c)])
      if (o.json) yield* Report.json(toJson(shown), { pretty: true })
      else {
        const stdio = yield* Stdio.Stdio
        const tty = yield* stdio.stdoutIsTerminal
        // A terminal acts on escape sequences: what the API sent is shown there with its control characters escaped.
        const forTerminal = (v: string) => (tty ? Terminal.sanitize(v) : v)
        if (o.include) {
          const p = yield* Terminal.paint("stdout")
          const head = [
            p.bold(forTerminal(`HTTP/1.1 ${shown.status} ${shown.statusText}`.trimEnd())),
            ...shown.headers.map(([k, v]) => `${p.cyan(k)}: ${forTerminal(v)}`)
          ]
          yield* Terminal.write("stdout", `${head.join("\n")}\n\n`)
        }
        const bodyText = tty ? text(shown.body) : undefined
        yield* Terminal.write("stdout", bodyText === undefined ? shown.body : Terminal.sanitize(bodyText))
        // On a terminal, end with a newline so the prompt does not follow the body; pipes get the bytes as sent.
        if (shown.body.length > 0 && shown.body[shown.body.length - 1] !== 0x0a && tty)
          yield* Terminal.write("stdout", "\n")
      }
      if (response.status >= 400) {
        return yield* new ApiStatus({
          connection: c.name,
          provider: c.manifest.id,
          method,
          url: `${url.origin}${url.pathname}`,
          status: response.status,
          statusText: response.statusText
        })
      }
    })
    yield* program.pipe(
      Effect.provide(Runtime.layer(config, "file", { logLevel: level, connections: "sqlite" })),
      Effect.catch(failFor(secrets))
    )
  }).pipe(Effect.withSpan("tessera.cli.request"))

const flags = {
  connection: Argument.String("connection").pipe(Argument.withDescription("a connection name from the config")),
  method: Argument.String("method").pipe(
    Argument.withMetavar("METHOD"),
    Argument.withDescription("the HTTP method: GET, POST, PUT, PATCH, DELETE, ...")
  ),
  target: Argument.String("path-or-url").pipe(
    Argument.withDescription(
      "a path under the provider's api.base_url (/users?active=true), or an absolute URL on the same origin"
    )
  ),
  data: Flag.String("data").pipe(
    Flag.withAlias("d"),
    Flag.withMetavar("BODY"),
    Flag.optional,
    Flag.withDescription(
      "request body: the text itself, @FILE for a file, - for standard input. Sent as application/json when it is JSON, else form-encoded, unless -H sets Content-Type"
    )
  ),
  header: Flag.String("header").pipe(
    Flag.withAlias("H"),
    Flag.withMetavar("'Name: value'"),
    Flag.atLeast(0),
    Flag.withDescription(
      "an extra request header; repeat for more. The header the token or credential goes in (Authorization, or the manifest's apply.header) is set by tessera and refused here"
    )
  ),
  include: Flags.toggle("include", "print the status line and the response headers before the body", "i"),
  json: Flags.toggle(
    "json",
    "print {status, headers, body} as JSON: the body parsed when it is JSON, else as text (base64 when it is not UTF-8); failures as {error: {code, message}} on stderr"
  ),
  allowForeignOrigin: Flags.toggle(
    "allow-foreign-origin",
    "WARNING: send the connection's token to an absolute URL outside its API origin (logged as a warning). Without it such a URL is refused"
  ),
  config: ConfigDiscovery.flag
}

export const command = Command.make("request", flags, handler).pipe(
  Command.withDescription(
    "Make an authenticated API call with a connection's token, like curl: a path is resolved against the " +
      "provider's api.base_url, an absolute URL must be on that API origin (another origin only with --allow-foreign-origin), " +
      "the token goes in the header the manifest's apply rule names, " +
      "and a 401 answer invalidates the token and retries once with a new one. The response body goes to stdout; the " +
      "Authorization value is never printed. Exit 0 for a 2xx or 3xx answer (redirects are not followed), 1 for an answer of " +
      "400 or more (its body still printed) or when getting the token or reaching the API fails, 2 when the command line " +
      "or the config is wrong."
  ),
  Command.withShortDescription("Make an authenticated API call"),
  Command.withExamples([
    {
      command: "tessera request jobs GET '/dvinciUsers?active=true'",
      description: "GET a path under the provider's api.base_url"
    },
    { command: `tessera request jobs POST /jobs -d '{"title":"Engineer"}'`, description: "POST a JSON body" },
    {
      command: "tessera request jobs PUT /jobs/7 -d @job.json -H 'If-Match: \"3\"'",
      description: "Body from a file, with an extra header"
    },
    { command: "tessera request jobs GET /jobs -i", description: "Show the status line and response headers too" },
    { command: "tessera request jobs GET /jobs --json | jq .status", description: "{status, headers, body} as JSON" }
  ])
)
