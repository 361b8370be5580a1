/** `tessera new provider <id>`: scaffolds a provider manifest and a fixture for it, so a new provider starts from
 *  something that passes `tessera validate` and `tessera validate --fixtures`. The fixture's request is built by
 *  the engine's own request builder from the new manifest, and the scaffold is replayed before it is reported, so
 *  the two always agree. On a terminal it asks for what the flags did not say; with --yes, or without a terminal,
 *  it takes the defaults and never waits for input. */
import { Catalog, Connection, Fixture, Manifest, TokenRequest } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stdio from "effect/Stdio"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as Prompt from "effect/cli/Prompt"
import { existsSync } from "node:fs"
import { mkdir, writeFile } from "node:fs/promises"
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path"
import { FileExists, InvalidArgument } from "../cli-error.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import { schemaRef } from "./init.ts"

export const grants = ["client_credentials", "password"] as const
export const encodings = ["form", "json"] as const
export const clientAuths = ["client_secret_basic", "client_secret_post"] as const

export interface Answers {
  readonly id: string
  readonly name: string
  readonly grant: (typeof grants)[number]
  /** The token endpoint, a default the connections may override; undefined makes token_url a required input. */
  readonly tokenUrl: string | undefined
  readonly encoding: (typeof encodings)[number]
  readonly clientAuth: (typeof clientAuths)[number]
  /** Dot path to the object holding the token fields, when they are not at the top level. */
  readonly envelope: string | undefined
}

const idPattern = /^[a-z0-9]+(-[a-z0-9]+)*$/
const pathPattern = /^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/
const exampleTokenUrl = "https://auth.example.com/oauth/token"

export const defaultName = (id: string): string =>
  id
    .split("-")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join(" ")

const checkTokenUrl = (url: string): string | undefined => {
  const bad = Connection.checkUrl(url, false)
  return bad ? `${bad.message} (${bad.hint})` : undefined
}

const yamlString = (s: string) =>
  /^[A-Za-z0-9][\w .()/-]*$/.test(s) && !/^(true|false|null|yes|no)$/i.test(s) ? s : JSON.stringify(s)

const grantText = {
  client_credentials: "the client credentials grant (RFC 6749 §4.4)",
  password: "the resource owner password grant (RFC 6749 §4.3)"
}
const authText = {
  client_secret_basic: "HTTP Basic client authentication (client_secret_basic)",
  client_secret_post: "client_id and client_secret in the request body (client_secret_post)"
}

const wrap = (text: string, width: number): string[] =>
  text.split(" ").reduce<string[]>((lines, word) => {
    const last = lines[lines.length - 1]
    if (last !== undefined && last.length + 1 + word.length <= width) lines[lines.length - 1] = `${last} ${word}`
    else lines.push(word)
    return lines
  }, [])

/** The manifest text. Every endpoint is an input with a default, so connections can point it at a sandbox. */
export const manifestText = (a: Answers, schema: string): string => {
  const flow = (name: "acquire" | "refresh", grant: string, body: ReadonlyArray<string>) => [
    `  ${name}:`,
    '    url: "{{ inputs.token_url }}"',
    `    grant_type: ${grant}`,
    `    encoding: ${a.encoding}`,
    `    client_auth: { method: ${a.clientAuth} }`,
    ...(body.length ? ["    body:", ...body.map((l) => `      ${l}`)] : [])
  ]
  const password = a.grant === "password"
  return [
    `# yaml-language-server: $schema=${schema}`,
    `id: ${a.id}`,
    `name: ${yamlString(a.name)}`,
    "# docs: https://developer.example.com/auth   # the provider's API documentation",
    "note: >-",
    ...wrap(
      `Scaffolded by tessera new provider: ${grantText[a.grant]}, ${authText[a.clientAuth]}, a ${a.encoding}-encoded ` +
        `token request${a.envelope ? `, the token fields under ${a.envelope}` : ""}. Say here what a reader needs to know about ` +
        `this provider's auth, and replace fixtures/${a.id}/success.json with a recorded exchange.`,
      110
    ).map((l) => `  ${l}`),
    "inputs:",
    "  client_id: { title: Client ID }",
    "  client_secret: { title: Client secret, secret: true }",
    ...(password ? ["  username: { title: User name }", "  password: { title: Password, secret: true }"] : []),
    a.tokenUrl
      ? `  token_url: { type: url, title: Token endpoint, default: ${JSON.stringify(a.tokenUrl)}, required: false }`
      : `  token_url: { type: url, title: Token endpoint, example: ${JSON.stringify(exampleTokenUrl)} }`,
    "flows:",
    ...flow(
      "acquire",
      a.grant,
      password ? ['username: "{{ inputs.username }}"', 'password: "{{ inputs.password }}"'] : []
    ),
    // RFC 6749 §6: a password grant usually returns a refresh token; without one this flow is simply never used.
    ...(password ? flow("refresh", "refresh_token", []) : []),
    ...(a.envelope ? ["response:", `  envelope: ${a.envelope}`] : []),
    "# For `tessera request <connection> GET /path`: paths are resolved against this URL.",
    "# api:",
    '#   base_url: "https://api.example.com"',
    ""
  ].join("\n")
}

const nest = (path: string | undefined, value: Record<string, unknown>): Record<string, unknown> =>
  path ? path.split(".").reduceRight<Record<string, unknown>>((inner, key) => ({ [key]: inner }), value) : value

/** The fixture for the new manifest: the request its acquire flow sends with placeholder credentials, and a
 *  plausible successful answer. Synthetic, and says so: it is a template for a recorded exchange. */
export const fixture = (a: Answers, manifest: Manifest.Manifest, now: Date): Fixture.Fixture => {
  const inputs: Record<string, string> = {
    client_id: `${a.id}-client-id`,
    client_secret: `${a.id}-client-secret`,
    ...(a.grant === "password" ? { username: `${a.id}-user`, password: `${a.id}-password` } : {}),
    ...(a.tokenUrl ? {} : { token_url: exampleTokenUrl })
  }
  const resolved = Connection.resolveInputs(
    manifest,
    new Map(Object.entries(inputs).map(([k, value]) => [k, { value, literal: false }] as const))
  )
  const built = TokenRequest.build(
    {
      name: "scaffold",
      manifest,
      inputs: resolved.inputs,
      allowInsecureHttp: false,
      tags: {},
      source: "config",
      version: 0
    },
    manifest.flows.acquire!
  )
  if (built._tag === "Invalid") throw new Error(`scaffolded manifest builds no request: ${built.details.join("; ")}`)
  const wire = TokenRequest.encode(built.request)
  const headers: Record<string, string | null> = { authorization: null }
  for (const [k, v] of Object.entries(wire.headers)) headers[k.toLowerCase()] = v
  const token = {
    access_token: `${a.id}-access-token`,
    token_type: "Bearer",
    expires_in: 3600,
    ...(a.grant === "password" ? { refresh_token: `${a.id}-refresh-token` } : {})
  }
  return {
    format: Fixture.formatVersion,
    description: `scaffolded ${a.grant} exchange (synthetic: replace it with a recorded one); a 1 h token from expires_in`,
    provider: a.id,
    flow: "acquire",
    recorded: { with: "tessera new provider (synthetic)", at: now.toISOString() },
    inputs,
    request: {
      method: built.request.method,
      url: wire.url,
      headers,
      ...(a.encoding === "json"
        ? { json: JSON.parse(wire.body ?? "{}") }
        : { form: Object.fromEntries(new URLSearchParams(wire.body ?? "")) })
    },
    response: {
      status: 200,
      headers: { "content-type": "application/json", date: now.toUTCString() },
      body: nest(a.envelope, token)
    },
    expect: {
      access_token: token.access_token,
      token_type: "Bearer",
      refresh_token: a.grant === "password" ? `${a.id}-refresh-token` : null,
      expiry_source: "expires_in",
      lifetime_seconds: 3600
    }
  } as Fixture.Fixture
}

export interface Options {
  readonly id: string
  readonly name: Option.Option<string>
  readonly grant: Option.Option<Answers["grant"]>
  readonly tokenUrl: Option.Option<string>
  readonly encoding: Option.Option<Answers["encoding"]>
  readonly clientAuth: Option.Option<Answers["clientAuth"]>
  readonly envelope: Option.Option<string>
  readonly dir: Option.Option<string>
  readonly yes: boolean
  readonly force: boolean
  readonly json: boolean
}

const choices = <A extends string>(values: ReadonlyArray<A>, initial: A) =>
  values.map((v) => ({ title: v, value: v, ...(v === initial ? { selected: true } : {}) }))

/** Flags first; what they leave open is asked on a terminal (unless --yes), else defaulted. */
export const answers = (o: Options) =>
  Effect.gen(function* () {
    if (!idPattern.test(o.id))
      return yield* new InvalidArgument({
        argument: o.id,
        reason: "is not a provider id",
        hint: "use kebab-case: lower-case letters, digits and dashes, e.g. acme-hr"
      })
    if (Option.isSome(o.tokenUrl)) {
      const bad = checkTokenUrl(o.tokenUrl.value)
      if (bad) return yield* new InvalidArgument({ argument: `--token-url ${o.tokenUrl.value}`, reason: bad })
    }
    if (Option.isSome(o.envelope) && !pathPattern.test(o.envelope.value)) {
      return yield* new InvalidArgument({
        argument: `--envelope ${JSON.stringify(o.envelope.value)}`,
        reason: "is not a dot path",
        hint: "e.g. data or data.token"
      })
    }
    const stdio = yield* Stdio.Stdio
    const interactive = !o.yes && (yield* stdio.stdinIsTerminal) && (yield* stdio.stdoutIsTerminal)
    const ask = <A>(given: Option.Option<A>, fallback: A, prompt: () => Prompt.Prompt<A>) =>
      Option.isSome(given) ? Effect.succeed(given.value) : interactive ? Prompt.run(prompt()) : Effect.succeed(fallback)
    const optionalText = (v: string) => (v.trim() === "" ? undefined : v.trim())
    const program = Effect.gen(function* () {
      const name = yield* ask(o.name, defaultName(o.id), () =>
        Prompt.String({ message: "Provider name", default: defaultName(o.id) })
      )
      const grant = yield* ask(o.grant, "client_credentials" as const, () =>
        Prompt.Select({ message: "Grant", choices: choices(grants, "client_credentials") })
      )
      const tokenUrl = yield* ask(
        Option.map(o.tokenUrl, (u): string | undefined => u),
        undefined,
        () =>
          Prompt.String({
            message: "Token endpoint URL (empty: each connection gives token_url)",
            validate: (v) => {
              const bad = optionalText(v) === undefined ? undefined : checkTokenUrl(v.trim())
              return bad ? Effect.fail(bad) : Effect.succeed(v)
            }
          }).pipe(Prompt.map(optionalText))
      )
      const encoding = yield* ask(o.encoding, "form" as const, () =>
        Prompt.Select({ message: "Token request encoding", choices: choices(encodings, "form") })
      )
      const clientAuth = yield* ask(o.clientAuth, "client_secret_basic" as const, () =>
        Prompt.Select({ message: "Client authentication", choices: choices(clientAuths, "client_secret_basic") })
      )
      const envelope = yield* ask(
        Option.map(o.envelope, (e): string | undefined => e),
        undefined,
        () =>
          Prompt.String({
            message: "Path to the token fields in the response (empty: top level)",
            validate: (v) =>
              optionalText(v) === undefined || pathPattern.test(v.trim())
                ? Effect.succeed(v)
                : Effect.fail("a dot path, e.g. data or data.token")
          }).pipe(Prompt.map(optionalText))
      )
      return { id: o.id, name, grant, tokenUrl, encoding, clientAuth, envelope } satisfies Answers
    })
    // Ctrl-C or end of input at a prompt: stop like any interrupted command (exit 130), writing nothing.
    return yield* program.pipe(Effect.catchTag("QuitError", () => Effect.interrupt))
  })

const shown = (file: string) => {
  const r = relative(process.cwd(), file)
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : file
}

export const handler = (o: Options) =>
  Effect.gen(function* () {
    const a = yield* answers(o)
    const dir = resolve(Option.getOrElse(o.dir, () => "providers"))
    const manifestFile = join(dir, `${a.id}.yaml`)
    const fixtureFile = join(dir, "fixtures", a.id, "success.json")
    if (!o.force)
      for (const f of [manifestFile, fixtureFile]) if (existsSync(f)) return yield* new FileExists({ path: shown(f) })
    const text = manifestText(a, schemaRef(manifestFile, "provider"))
    const manifest = yield* Manifest.parse(manifestFile, text).pipe(Effect.orDie)
    const f = fixture(a, manifest, new Date())
    yield* Effect.promise(async () => {
      await mkdir(dirname(fixtureFile), { recursive: true })
      await writeFile(manifestFile, text)
      await writeFile(fixtureFile, `${JSON.stringify(f, null, 2)}\n`)
    })
    // The scaffold must replay clean; if it does not, that is a bug here, not the user's.
    const replay = yield* Fixture.replay(fixtureFile, {
      manifests: new Map([[a.id, manifest]]),
      bundled: new Set()
    }).pipe(Effect.orDie)
    if (!Fixture.isClean(replay))
      return yield* Effect.die(new Error(`scaffolded fixture does not replay:\n${Fixture.format(replay)}`))
    if (o.json)
      return yield* Report.json({ manifest: manifestFile, fixture: fixtureFile, answers: a }, { pretty: true })
    const bundled = resolve(Catalog.bundledDir) === dir || resolve(Catalog.bundledDir) + sep === dir + sep
    yield* Console.log(
      [
        `Created ${shown(manifestFile)}`,
        `Created ${shown(fixtureFile)} (synthetic: replace it with a recorded exchange)`,
        "Next:",
        `  tessera validate ${shown(manifestFile)} --fixtures`,
        ...(bundled
          ? []
          : [
              `  add "providers: [./${shown(dir).split(sep).join("/")}]" to tessera.yaml, then a connection with provider: ${a.id}`
            ])
      ].join("\n")
    )
  }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.new.provider"))

const flags = {
  id: Argument.String("id").pipe(
    Argument.withDescription("the provider id: kebab-case, also the file name (acme-hr -> acme-hr.yaml)")
  ),
  name: Flags.optionalText("name", "NAME", "display name (default: from the id, acme-hr -> Acme Hr)"),
  grant: Flags.optionalChoice("grant", grants, "OAuth 2.0 grant (default: client_credentials)"),
  tokenUrl: Flags.optionalText(
    "token-url",
    "URL",
    "token endpoint, the default of input token_url (default: none, so each connection gives token_url)"
  ),
  encoding: Flags.optionalChoice("encoding", encodings, "token request body encoding (default: form)"),
  clientAuth: Flags.optionalChoice(
    "client-auth",
    clientAuths,
    "how the client authenticates (default: client_secret_basic)"
  ),
  envelope: Flags.optionalText(
    "envelope",
    "PATH",
    "dot path to the token fields in the response, e.g. data (default: top level)"
  ),
  dir: Flags.optionalText(
    "dir",
    "DIR",
    "where to write <id>.yaml and fixtures/<id>/success.json (default: ./providers)"
  ),
  yes: Flags.toggle("yes", "ask nothing: take the flags and the defaults (also the behaviour without a terminal)", "y"),
  force: Flags.toggle("force", "overwrite existing files"),
  json: Flags.toggle("json", "print {manifest, fixture, answers} as JSON")
}

const provider = Command.make("provider", flags, handler).pipe(
  Command.withDescription(
    "Scaffold a provider: <dir>/<id>.yaml and a fixture <dir>/fixtures/<id>/success.json that replays clean, " +
      "so both pass `tessera validate --fixtures`. On a terminal, asks for whatever the flags leave open; with --yes or " +
      "without a terminal, uses the defaults. Refuses to overwrite files unless --force (exit 2)."
  ),
  Command.withShortDescription("Scaffold a provider manifest and its fixture"),
  Command.withExamples([
    {
      command: "tessera new provider acme-hr",
      description: "Answer a few questions, then write providers/acme-hr.yaml"
    },
    {
      command:
        "tessera new provider acme-hr --token-url https://auth.acme.example/oauth/token --client-auth client_secret_post --yes",
      description: "No questions: flags and defaults"
    },
    {
      command:
        "tessera new provider acme-crm --grant password --encoding json --envelope data --dir ./my-providers --yes",
      description: "Password grant, JSON body, token under data, in another directory"
    }
  ])
)

export const command = Command.make("new").pipe(
  Command.withDescription(
    "Scaffold new things. `tessera new provider <id>` writes a provider manifest and a fixture to start from."
  ),
  Command.withShortDescription("Scaffold a provider manifest"),
  Command.withExamples([
    { command: "tessera new provider acme-hr --yes", description: "Scaffold providers/acme-hr.yaml with the defaults" }
  ]),
  Command.withSubcommands([provider])
)
