/** The tessera config file (tessera.yaml): connections, extra provider directories, store, server and HTTP settings.
 *  Loading reports file-level problems at once (YAML, schema, unknown providers). A connection whose inputs are
 *  wrong (say, an unset ${env:VAR}) fails only when used, so one broken connection does not block the others;
 *  `problems` still lists everything for `tessera validate`. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { dirname, resolve } from "node:path"
import { stringify } from "yaml"
import type { ConfigDocument, Server as ServerDocument } from "./generated/config.ts"
import * as Catalog from "./catalog.ts"
import * as Connection from "./connection.ts"
import * as ConfigValue from "./config-value.ts"
import * as Notify from "./notify.ts"
import * as SecretBox from "./secret-box.ts"
import * as WebhookSignature from "./webhook-signature.ts"
import { ConfigInvalid } from "./manifest-error.ts"
import type { Problem } from "./problem.ts"
import { check } from "./internal/schema-check.ts"
import { closest } from "./internal/did-you-mean.ts"
import { readText } from "./internal/read-limited.ts"
import { parse as parseYaml, problemAt, type YamlSource } from "./internal/yaml-source.ts"

export type { ConfigDocument }

export interface HttpSettings {
  readonly timeoutMs: number
  readonly totalTimeoutMs: number
  readonly retries: number
  readonly maxResponseBytes: number
}

export const defaultHttp: HttpSettings = {
  timeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  retries: 3,
  maxResponseBytes: 1_048_576
}

export interface StoreSettings {
  readonly type: "memory" | "file" | "redis"
  readonly path?: string | undefined
  readonly url?: Redacted.Redacted<string> | undefined
  readonly keyPrefix: string
  readonly encryptionKey?: Redacted.Redacted<string> | undefined
}

export interface ConnectionStoreSettings {
  readonly type: "memory" | "sqlite" | "postgres"
  /** sqlite: the database file (absolute); undefined means the default in the user data dir. */
  readonly path?: string | undefined
  /** postgres: the connection URL. */
  readonly url?: Redacted.Redacted<string> | undefined
  /** postgres: the schema holding tessera's tables. */
  readonly schema?: string | undefined
  /** The first encrypts, all decrypt; empty means the store's default (sqlite: a key file beside the database). */
  readonly encryptionKeys: ReadonlyArray<Redacted.Redacted<string>>
}

export type Scope = "token" | "proxy" | "connections:read" | "connections:write"

export const defaultScopes: ReadonlyArray<Scope> = ["token", "proxy"]

export interface ApiKeySetting {
  readonly name: string
  readonly key: Redacted.Redacted<string>
  readonly connections: ReadonlyArray<string>
  readonly scopes: ReadonlyArray<Scope>
  /** The key sees only connections whose tags include all of these. */
  readonly tags: Readonly<Record<string, string>>
}

/** An operations route that `server.public_routes` can open to callers without a key. */
export type PublicRoute = NonNullable<ServerDocument["public_routes"]>[number]

export interface ServerSettings {
  readonly host: string
  readonly port: number
  readonly apiKeys: ReadonlyArray<ApiKeySetting>
  /** `server.allowed_hosts`, lowercased: Host values answered besides loopback. Undefined when the config has none
   *  (then: loopback only without keys, any Host with keys). */
  readonly allowedHosts?: ReadonlyArray<string> | undefined
  /** Operations routes answered without a key even when keys are configured. */
  readonly publicRoutes: ReadonlyArray<PublicRoute>
  readonly backgroundRefresh: BackgroundRefreshSettings
  /** `server.public_url`, normalized (no trailing slash): where a user's browser reaches the server. The connect
   *  flow's links and redirect_uri are built from it, and its path prefixes the Path of every cookie the server
   *  sets (the connect binding, the proxy's scoping of an API's cookies). */
  readonly publicUrl?: string | undefined
  /** `server.connect_keys`: 32-byte keys sealing the connect flow's links and state; the first seals. */
  readonly connectKeys: ReadonlyArray<Redacted.Redacted<string>>
  /** `server.tenant_private_targets`: a key with tags may create connections whose endpoints are on loopback or
   *  private addresses (private-target.ts). Default false. */
  readonly tenantPrivateTargets: boolean
}

/** `server.background_refresh` (the server's background-refresh.ts). */
export interface BackgroundRefreshSettings {
  readonly enabled: boolean
  readonly concurrency: number
  readonly perProviderPerSecond: number
  readonly leadSeconds: number
  readonly jitterSeconds: number
  readonly idleAfterSeconds: number
}

export const defaultBackgroundRefresh: BackgroundRefreshSettings = {
  enabled: true,
  concurrency: 4,
  perProviderPerSecond: 5,
  leadSeconds: 30,
  jitterSeconds: 10,
  idleAfterSeconds: 3600
}

/** One `notify:` receiver (the server's webhooks.ts). */
export interface NotifySetting {
  /** May hold the receiver's token: never logged or stored (see `origin`, `endpoint`). */
  readonly url: Redacted.Redacted<string>
  /** The URL's origin, for log lines. */
  readonly origin: string
  /** How the outbox names this receiver: a digest of the URL. */
  readonly endpoint: string
  readonly events: ReadonlyArray<Notify.EventType>
  /** The `whsec_...` secret, as written. */
  readonly secret: Redacted.Redacted<string>
}

export interface Config {
  readonly file: string
  readonly catalog: Catalog.Catalog
  readonly connections: ReadonlyMap<string, Connection.Connection>
  /** Connections that could not be resolved, with their problems. */
  readonly broken: ReadonlyMap<string, Broken>
  readonly store?: StoreSettings | undefined
  /** Where runtime connections live; undefined when the config does not say (each process picks its default). */
  readonly connectionStore?: ConnectionStoreSettings | undefined
  readonly server: ServerSettings
  readonly http: HttpSettings
  /** Lifecycle webhooks; empty when the config has none. */
  readonly notify: ReadonlyArray<NotifySetting>
  /** Every error and warning found, for `tessera validate`. */
  readonly problems: ReadonlyArray<Problem>
}

/** A config connection that could not be resolved: it answers with its problems when used. */
export interface Broken {
  readonly provider: string
  readonly tags: Readonly<Record<string, string>>
  readonly problems: ReadonlyArray<Problem>
}

/** Tags as the schema checked them (string values); the generated type allows undefined in its index signature. */
const tagsOf = (tags: Readonly<Record<string, string | undefined>> | undefined): Record<string, string> =>
  Object.fromEntries(Object.entries(tags ?? {}).flatMap(([k, v]) => (v === undefined ? [] : [[k, v] as const])))

const fail = (problems: ReadonlyArray<Problem>) => new ConfigInvalid({ problems })

/** The most a config file may hold: about 50 000 connections, far beyond any real one. */
export const maxConfigBytes = 16 * 1_048_576

/** `providers:` entries and `store.path` are paths, not values: a `${...}` there would silently name a directory
 *  called "${env:X}", so it is refused instead. */
const referencesInPaths = (src: YamlSource, doc: ConfigDocument): Problem[] => {
  const found: Problem[] = []
  const check = (path: Array<string | number>, s: string | undefined) => {
    if (s?.includes("${"))
      found.push(
        problemAt(src, path, "${...} references are not resolved in a path", {
          hint: "write the path itself; a relative path is taken from the config file's directory",
          index: s.indexOf("${")
        })
      )
  }
  for (const [i, d] of (doc.providers ?? []).entries()) check(["providers", i], d)
  check(["store", "path"], doc.store?.path)
  return found
}

const backgroundRefreshOf = (doc: ConfigDocument): BackgroundRefreshSettings => {
  const b = doc.server?.background_refresh ?? {}
  const d = defaultBackgroundRefresh
  return {
    enabled: b.enabled ?? d.enabled,
    concurrency: b.concurrency ?? d.concurrency,
    perProviderPerSecond: b.per_provider_per_second ?? d.perProviderPerSecond,
    leadSeconds: b.lead_seconds ?? d.leadSeconds,
    jitterSeconds: b.jitter_seconds ?? d.jitterSeconds,
    idleAfterSeconds: b.idle_after_seconds ?? d.idleAfterSeconds
  }
}

/** `notify:` entries: each URL an https one (plain http to loopback only) and each secret a Standard Webhooks
 *  `whsec_` secret, else a problem at that entry. */
const notifySettings = (
  src: YamlSource,
  doc: ConfigDocument,
  file: string,
  env: NodeJS.ProcessEnv,
  problems: Problem[],
  secretValue: (
    path: Array<string | number>,
    raw: ConfigValue.Raw | undefined,
    label: string
  ) => Redacted.Redacted<string> | undefined
): ReadonlyArray<NotifySetting> =>
  (doc.notify ?? []).flatMap((n, i): NotifySetting[] => {
    const at = ["notify", i]
    const before = problems.length
    const r = ConfigValue.resolveValue(n.url, file, env)
    let url: URL | undefined
    if (r._tag === "Unresolved")
      problems.push(problemAt(src, [...at, "url"], r.message, { hint: r.hint, index: r.index }))
    else {
      const bad = Connection.checkUrl(r.value, false)
      if (bad)
        problems.push(
          problemAt(src, [...at, "url"], `the webhook URL ${bad.message}`, {
            hint: bad.message.includes("credentials") ? "the receiver authenticates tessera by the signature" : bad.hint
          })
        )
      else url = new URL(r.value)
    }
    const secret = secretValue([...at, "secret"], n.secret, "notify.secret")
    if (secret) {
      const key = WebhookSignature.parseSecret(Redacted.value(secret))
      if (!Buffer.isBuffer(key))
        problems.push(
          problemAt(src, [...at, "secret"], key.problem, {
            hint: "make one with: echo whsec_$(openssl rand -base64 32)"
          })
        )
    }
    if (!url || !secret || (problems.length > before && problems.slice(before).some((p) => p.severity === "error")))
      return []
    return [
      {
        url: Redacted.make(url.href, { label: "notify.url" }),
        origin: url.origin,
        endpoint: Notify.endpointId(url.href),
        events: n.events ?? Notify.eventTypes,
        secret
      }
    ]
  })

/** `server.public_url`: an absolute https URL (http to loopback only, where the browser is on this machine), with
 *  no credentials, query or fragment, and no ";" in its path. Returned without its trailing slash, so paths can be
 *  appended. */
const publicUrlOf = (src: YamlSource, value: string | undefined, problems: Problem[]): string | undefined => {
  if (value === undefined) return undefined
  const at = ["server", "public_url"]
  const bad = Connection.checkUrl(value, false)
  if (bad) {
    problems.push(
      problemAt(src, at, `server.public_url ${bad.message}`, {
        hint: bad.message.includes("http://") ? "use the https:// address your users' browsers reach" : bad.hint
      })
    )
    return undefined
  }
  const url = new URL(value)
  if (url.search !== "" || url.hash !== "" || value.includes("?") || value.includes("#")) {
    problems.push(
      problemAt(src, at, "server.public_url has a query or fragment", {
        hint: "give the base address only, e.g. https://tessera.example.com"
      })
    )
    return undefined
  }
  // Its path prefixes the Path of every cookie tessera sets (the server's own-cookies.ts), where a ";" would end
  // the Path and begin another attribute.
  if (url.pathname.includes(";")) {
    problems.push(
      problemAt(src, at, "server.public_url's path has a ';', which a cookie Path cannot hold", {
        hint: "give the path prefix your reverse proxy adds, e.g. https://example.com/tessera"
      })
    )
    return undefined
  }
  return url.href.replace(/\/+$/, "")
}

export const parse = (
  file: string,
  text: string,
  env: NodeJS.ProcessEnv = process.env
): Effect.Effect<Config, ConfigInvalid> =>
  Effect.gen(function* () {
    const parsed = parseYaml(file, text)
    if (!parsed.ok) return yield* fail(parsed.problems)
    const src = parsed.source
    const value = (src.value ?? {}) as unknown
    if (typeof value !== "object" || Array.isArray(value))
      return yield* fail([problemAt(src, [], "a config must be a YAML mapping (connections:, providers:, ...)")])
    const schemaProblems = src.value === null ? [] : check("config", src)
    if (schemaProblems.length > 0) return yield* fail(schemaProblems)
    const doc = value as ConfigDocument
    const pathProblems = referencesInPaths(src, doc)
    if (pathProblems.length > 0) return yield* fail(pathProblems)
    const dirs = (doc.providers ?? []).map((d) => resolve(dirname(file), d))
    const catalog = yield* Catalog.load(dirs).pipe(Effect.mapError((e) => fail(e.problems)))
    const problems: Problem[] = []
    const connections = new Map<string, Connection.Connection>()
    const broken = new Map<string, Broken>()
    const providerIds = [...catalog.manifests.keys()]
    for (const [name, c] of Object.entries(doc.connections ?? {})) {
      if (!c) continue
      const here: Problem[] = []
      const base = ["connections", name]
      const manifest = catalog.manifests.get(c.provider)
      if (!manifest) {
        const guess = closest(c.provider, providerIds)
        here.push(
          problemAt(src, [...base, "provider"], `unknown provider "${c.provider}"`, {
            hint: guess ? `did you mean "${guess}"?` : `known providers: ${providerIds.join(", ")}`
          })
        )
      } else {
        const given = new Map<string, Connection.GivenInput>()
        for (const [k, raw] of Object.entries(c.inputs ?? {})) {
          if (raw === undefined) continue
          const r = ConfigValue.resolveValue(raw, file, env)
          if (r._tag === "Unresolved")
            here.push(problemAt(src, [...base, "inputs", k], r.message, { hint: r.hint, index: r.index }))
          else given.set(k, { value: r.value, literal: r.literal })
        }
        const unresolved = here.length > 0
        const { inputs, issues } = Connection.resolveInputs(manifest, given, {
          allowInsecureHttp: c.allow_insecure_http ?? false
        })
        for (const i of issues) {
          // An input that failed to resolve is reported once, as unresolved, not again as missing.
          if (unresolved && i.input && Object.hasOwn(c.inputs ?? {}, i.input) && !given.has(i.input)) continue
          const path =
            i.input && Object.hasOwn(c.inputs ?? {}, i.input)
              ? [...base, "inputs", i.input]
              : c.inputs
                ? [...base, "inputs"]
                : base
          here.push(
            problemAt(src, path, i.message, {
              hint: i.hint,
              severity: i.severity,
              key: i.message.includes("has no input")
            })
          )
        }
        if (c.allow_insecure_http)
          here.push(
            problemAt(src, [...base, "allow_insecure_http"], "plain http:// is allowed for this connection", {
              severity: "warning",
              hint: "tokens and secrets may cross the network unencrypted"
            })
          )
        if (!here.some((p) => p.severity === "error"))
          connections.set(name, {
            name,
            manifest,
            inputs,
            allowInsecureHttp: c.allow_insecure_http ?? false,
            tags: tagsOf(c.tags),
            source: "config",
            version: 0
          })
      }
      problems.push(...here)
      if (here.some((p) => p.severity === "error"))
        broken.set(name, { provider: c.provider, tags: tagsOf(c.tags), problems: here })
    }
    const secretValue = (
      path: Array<string | number>,
      raw: ConfigValue.Raw | undefined,
      label: string
    ): Redacted.Redacted<string> | undefined => {
      if (raw === undefined) return undefined
      const r = ConfigValue.resolveValue(raw, file, env)
      if (r._tag === "Unresolved") {
        problems.push(problemAt(src, path, r.message, { hint: r.hint, index: r.index }))
        return undefined
      }
      if (r.literal)
        problems.push(
          problemAt(src, path, `${label} written literally in the config file`, {
            severity: "warning",
            hint: "use ${env:VAR} or ${file:PATH}"
          })
        )
      return Redacted.make(r.value, { label })
    }
    const store: StoreSettings | undefined = doc.store
      ? {
          type: doc.store.type,
          path: doc.store.path ? resolve(dirname(file), doc.store.path) : undefined,
          url: secretValue(["store", "url"], doc.store.url, "store.url"),
          keyPrefix: doc.store.key_prefix ?? "tessera:",
          encryptionKey: secretValue(["store", "encryption_key"], doc.store.encryption_key, "encryption_key")
        }
      : undefined
    const apiKeys: ApiKeySetting[] = []
    for (const [i, k] of (doc.server?.api_keys ?? []).entries()) {
      const key = secretValue(["server", "api_keys", i, "key"], k.key, "api_key")
      if (key)
        apiKeys.push({
          name: k.name ?? `key-${i + 1}`,
          key,
          connections: k.connections ?? ["*"],
          scopes: k.scopes ?? defaultScopes,
          tags: tagsOf(k.tags)
        })
      // `tags: {}` selects every connection: a tenant's key written without its tenant would see them all.
      if (k.tags !== undefined && Object.keys(tagsOf(k.tags)).length === 0)
        problems.push(
          problemAt(
            src,
            ["server", "api_keys", i, "tags"],
            "tags: {} selects every connection, so the key is no tenant's",
            {
              hint: "give the tenant's tags (tags: { tenant: acme }), or leave tags out for a key that sees every connection"
            }
          )
        )
      for (const [j, cn] of (k.connections ?? []).entries()) {
        if (cn !== "*" && !Object.hasOwn(doc.connections ?? {}, cn))
          problems.push(
            problemAt(src, ["server", "api_keys", i, "connections", j], `unknown connection "${cn}"`, {
              hint: `configured connections: ${Object.keys(doc.connections ?? {}).join(", ")}; scope a key to stored connections with tags: instead`
            })
          )
      }
    }
    const cs = doc.connection_store
    const connectionStore: ConnectionStoreSettings | undefined = cs
      ? {
          type: cs.type,
          path: cs.path ? resolve(dirname(file), cs.path) : undefined,
          url: secretValue(["connection_store", "url"], cs.url, "connection_store.url"),
          schema: cs.schema,
          encryptionKeys: (cs.encryption_keys ?? []).flatMap((raw, i) => {
            const v = secretValue(["connection_store", "encryption_keys", i], raw, "encryption_key")
            return v ? [v] : []
          })
        }
      : undefined
    const notify = notifySettings(src, doc, file, env, problems, secretValue)
    const publicUrl = publicUrlOf(src, doc.server?.public_url, problems)
    const connectKeys = (doc.server?.connect_keys ?? []).flatMap((raw, i) => {
      const at = ["server", "connect_keys", i]
      const v = secretValue(at, raw, "connect_key")
      if (v && SecretBox.parseKey(Redacted.value(v)) === undefined) {
        problems.push(
          problemAt(src, at, "a connect key is 32 random bytes in base64 (or 64 hex digits)", {
            hint: "make one with: openssl rand -base64 32"
          })
        )
        return []
      }
      return v ? [v] : []
    })
    const http: HttpSettings = {
      timeoutMs: doc.http?.timeout_ms ?? defaultHttp.timeoutMs,
      totalTimeoutMs: doc.http?.total_timeout_ms ?? defaultHttp.totalTimeoutMs,
      retries: doc.http?.retries ?? defaultHttp.retries,
      maxResponseBytes: doc.http?.max_response_bytes ?? defaultHttp.maxResponseBytes
    }
    return {
      file,
      catalog,
      connections,
      broken,
      store,
      connectionStore,
      http,
      notify,
      problems,
      server: {
        host: doc.server?.host ?? "127.0.0.1",
        port: doc.server?.port ?? 8787,
        apiKeys,
        allowedHosts: doc.server?.allowed_hosts?.map((h) => h.toLowerCase()),
        publicRoutes: doc.server?.public_routes ?? [],
        backgroundRefresh: backgroundRefreshOf(doc),
        publicUrl,
        connectKeys,
        tenantPrivateTargets: doc.server?.tenant_private_targets ?? false
      }
    } satisfies Config
  })

/** Reads and parses a config file: only a regular file of at most `maxConfigBytes` is read (a FIFO or a device given
 *  as the config is refused, never waited on). Used on start and by the server's reload alike. */
export const load = (file: string, env: NodeJS.ProcessEnv = process.env): Effect.Effect<Config, ConfigInvalid> =>
  Effect.suspend(() => {
    const r = readText(file, maxConfigBytes, "a config is a YAML file")
    if (r._tag === "Text") return parse(resolve(file), r.text, env)
    return Effect.fail(
      fail([
        {
          severity: "error",
          file,
          line: 1,
          col: 1,
          path: "",
          message: `cannot read config: ${file} ${r.reason}`,
          hint: `${r.hint}; pass --config PATH, set TESSERA_CONFIG, or create ./tessera.yaml (tessera init)`
        }
      ])
    )
  })

/** A config given as a plain object (library users). Positions then refer to its YAML rendering. */
export const fromObject = (
  doc: ConfigDocument,
  env: NodeJS.ProcessEnv = process.env,
  baseDir = process.cwd()
): Effect.Effect<Config, ConfigInvalid> => parse(resolve(baseDir, "<inline config>"), stringify(doc), env)

export type { YamlSource }
