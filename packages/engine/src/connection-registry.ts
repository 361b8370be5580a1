/** Finds a connection by name, whether the config file names it or the connection store holds it, and creates,
 *  replaces, deletes and lists stored ones with the same validation as the config file.
 *
 *  - Config connections come first and cannot be replaced or deleted through the registry (ConnectionConflict).
 *  - A stored connection is resolved against its provider's manifest when first used and kept resolved in this
 *    process until the store reports a change to it (from any instance), so the hot path (`peek`) never reads the
 *    store. A read that raced with a change is not kept: a change counter per name tells.
 *  - Values written through the registry are taken literally: `${env:...}` and `${file:...}` are config-file syntax
 *    and are never resolved for an API caller (that would let a caller read the server's environment or files).
 *  - The store is opened only when a name is not in the config file, so a CLI call for a config connection never
 *    touches it. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as SchemaIssue from "effect/SchemaIssue"
import type { Config } from "./config.ts"
import * as Connection from "./connection.ts"
import {
  ConnectionStoreError,
  matchesTags,
  namePattern,
  type ConnectionRecord,
  type ConnectionStoreShape
} from "./connection-store.ts"
import { isUserGranted } from "./authorization.ts"
import * as GrantBinding from "./grant-binding.ts"
import { closest } from "./internal/did-you-mean.ts"
import * as PrivateTarget from "./private-target.ts"
import * as Problem from "./problem.ts"
import * as Template from "./template.ts"
import { InputInvalid, UnknownConnection } from "./token-error.ts"

/** One problem with a connection written through the API: a JSON pointer into the request body, and what is wrong. */
export interface FieldError {
  readonly path: string
  readonly message: string
}

/** The connection given cannot be stored as it is: every problem found, each with its place in the body. */
export class ConnectionInvalid extends Schema.TaggedError<ConnectionInvalid>()("ConnectionInvalid", {
  connection: Schema.String,
  errors: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message() {
    return `connection "${this.connection}" is invalid:\n  ${this.errors.map((e) => `${e.path || "(name)"}: ${e.message}`).join("\n  ")}`
  }
}

/** The name belongs to a connection of the config file, which only the file can change. */
export class ConnectionConflict extends Schema.TaggedError<ConnectionConflict>()("ConnectionConflict", {
  connection: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `connection "${this.connection}": ${this.reason}`
  }
}

export type RegistryError = ConnectionInvalid | ConnectionConflict | ConnectionStoreError

/** How a connection is shown (GET, lists, `tessera connections show`): never a secret value. */
export interface ConnectionView {
  readonly name: string
  readonly provider: string
  readonly tags: Readonly<Record<string, string>>
  /** Given inputs; a secret one shows as "***". */
  readonly inputs: Readonly<Record<string, string>>
  readonly source: "config" | "api"
  /** "misconfigured" when it cannot be used as it is (say, an unset ${env:VAR}, or a manifest that changed);
   *  "needs_reauth" when its user grant's refresh token was refused, or the user's grant was issued for another
   *  provider or other non-secret inputs than the connection has now (grant-binding.ts): only a new authorization
   *  restores it. */
  readonly status: "ok" | "misconfigured" | "needs_reauth"
  readonly created_at: string | null
  readonly updated_at: string | null
  /** The durable grant (grants.ts), in a single connection's view when one is stored. Never the refresh token. */
  readonly grant?: GrantSummary | undefined
}

export interface GrantSummary {
  /** "needs_reauth" as stored, or for a grant bound elsewhere (its binding differs from the connection's now), even
   *  before a renewal has marked it so: it is never redeemed (a user must authorize again; another connection's
   *  acquire flow replaces it, and `detail` says which). A grant stored before bindings is shown as stored. */
  readonly status: "active" | "needs_reauth"
  readonly updated_at: string
  /** Why it needs a new authorization. */
  readonly detail?: string | undefined
}

export interface ListQuery {
  readonly tags?: Readonly<Record<string, string>> | undefined
  readonly limit?: number | undefined
  readonly cursor?: string | undefined
  /** Only these names, among the config file's connections (an API key's allowlist, which names no other): no stored
   *  connection is listed. Paging runs over these alone, so a cursor never names a connection outside them. */
  readonly only?: ReadonlySet<string> | undefined
}

export interface ListPage {
  readonly items: ReadonlyArray<ConnectionView>
  readonly next_cursor: string | null
}

export interface PutOptions {
  /** Tags the written connection must carry (an API key's selector). */
  readonly requiredTags?: Readonly<Record<string, string>> | undefined
  /** Refuse endpoints on loopback or private addresses (private-target.ts): a tenant's key, unless the operator set
   *  `server.tenant_private_targets`. */
  readonly refusePrivateTargets?: boolean | undefined
}

/** What a lookup found: a usable connection, or one that exists but is misconfigured. */
export type Found =
  | { readonly _tag: "Found"; readonly connection: Connection.Connection }
  | { readonly _tag: "Broken"; readonly error: InputInvalid; readonly tags: Readonly<Record<string, string>> }

export interface Registry {
  /** A connection already resolved in this process (config, or stored and used before); undefined: call `find`. */
  readonly peek: (name: string) => Connection.Connection | undefined
  /** The connection, or undefined when no connection has this name. */
  readonly find: (name: string) => Effect.Effect<Found | undefined, ConnectionStoreError>
  /** Whether `find` answers this name without reading the store (a config connection, or one resolved here). */
  readonly held: (name: string) => boolean
  readonly get: (
    name: string
  ) => Effect.Effect<Connection.Connection, UnknownConnection | InputInvalid | ConnectionStoreError>
  readonly view: (name: string) => Effect.Effect<ConnectionView | undefined, ConnectionStoreError>
  readonly put: (
    name: string,
    body: unknown,
    options?: PutOptions
  ) => Effect.Effect<{ readonly created: boolean; readonly view: ConnectionView }, RegistryError>
  /** True when it existed. */
  readonly remove: (name: string) => Effect.Effect<boolean, ConnectionConflict | ConnectionStoreError>
  /** Config and stored connections together, in name order (byte order), `limit` per page (default 100, max 1000). */
  readonly list: (query?: ListQuery) => Effect.Effect<ListPage, ConnectionStoreError | ConnectionInvalid>
  /** Called with a connection's name when it changed or went away (on any instance). `version`: the version a put
   *  wrote, when the change is one the store reported; a listener that already holds that version (or a newer one)
   *  has nothing to forget. The store may report a change more than once (its catch-up after a reconnect replays
   *  recent ones), so listeners must treat it that way. */
  readonly onChange: (listener: (name: string, version?: number) => void) => () => void
  /** Opens the store now (a server checks it at start instead of at the first request). */
  readonly warm: () => Effect.Effect<void, ConnectionStoreError>
  readonly store: () => Effect.Effect<ConnectionStoreShape, ConnectionStoreError>
  /** Whether a connection store is configured (else `store()` fails). */
  readonly hasStore: boolean
  /** Stops listening to the store's changes (a server's retired generation). */
  readonly dispose: () => void
}

const Body = Schema.Struct({
  provider: Schema.String,
  inputs: Schema.optionalKey(
    Schema.Record(Schema.String, Schema.Union([Schema.String, Schema.Number, Schema.Boolean]))
  ),
  tags: Schema.optionalKey(Schema.Record(Schema.String, Schema.String)),
  allow_insecure_http: Schema.optionalKey(Schema.Boolean)
})
type Body = typeof Body.Type

const fields = ["provider", "inputs", "tags", "allow_insecure_http"]
const tagKey = /^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$/
const maxTags = 32

const pointer = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((p) => `/${String(p).replace(/~/g, "~0").replace(/\//g, "~1")}`).join("")

/** The body's shape, every problem at once. */
const decodeBody = (name: string, body: unknown): Result.Result<Body, ConnectionInvalid> => {
  const r = Schema.decodeUnknownResult(Body)(body, { errors: "all", onExcessProperty: "error" })
  if (Result.isSuccess(r)) return Result.succeed(r.success)
  const issues = SchemaIssue.makeFormatterStandardSchemaV1()(r.failure.issue).issues
  const errors = issues.map((i) => {
    const path = pointer((i.path ?? []).map((p) => (typeof p === "object" && p !== null && "key" in p ? p.key : p)))
    const message =
      i.message === "Expected no excess property"
        ? `unknown field; a connection has ${fields.join(", ")}`
        : i.message === "Missing key"
          ? "required"
          : i.message
    return { path: path === "" ? "/" : path, message }
  })
  return Result.fail(new ConnectionInvalid({ connection: name, errors }))
}

/** U+0000 is refused in every stored value: PostgreSQL's text and jsonb cannot hold it, so the same connection
 *  would be stored by SQLite and fail (503) on PostgreSQL. A tag filter holding one matches no stored connection. */
const nulMessage = "cannot hold the character U+0000"

const checkTags = (
  tags: Readonly<Record<string, string>>,
  required: Readonly<Record<string, string>>
): FieldError[] => {
  const errors: FieldError[] = []
  const keys = Object.keys(tags)
  if (keys.length > maxTags) errors.push({ path: "/tags", message: `at most ${maxTags} tags` })
  for (const k of keys) {
    if (!tagKey.test(k)) errors.push({ path: pointer(["tags", k]), message: `tag names are 1-64 of [A-Za-z0-9_.:/-]` })
    if ((tags[k] ?? "").length > 256) errors.push({ path: pointer(["tags", k]), message: "at most 256 characters" })
    if ((tags[k] ?? "").includes("\u0000")) errors.push({ path: pointer(["tags", k]), message: nulMessage })
  }
  for (const [k, v] of Object.entries(required)) {
    if (tags[k] !== v)
      errors.push({ path: pointer(["tags", k]), message: `this API key may only write connections tagged ${k}: ${v}` })
  }
  return errors
}

const revealAll = (inputs: ReadonlyMap<string, string | Redacted.Redacted<string>>) =>
  new Map([...inputs].map(([k, v]) => [k, { value: Template.reveal(v), literal: false }] as const))

const iso = (ms: number) => new Date(ms).toISOString()

const shownInputs = (c: Connection.Connection, given: Iterable<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const k of [...given].sort()) {
    const v = c.inputs.get(k)
    if (v !== undefined) out[k] = Template.isSecret(v) ? "***" : v
  }
  return out
}

/** `openStore` opens the connection store on first need (once); without one, only the config's connections exist
 *  and writes fail with a ConnectionStoreError that says how to configure a store. */
export const make = (
  config: Config,
  openStore?: Effect.Effect<ConnectionStoreShape, ConnectionStoreError> | undefined
): Registry => {
  const configNames = (): ReadonlyArray<string> => [...config.connections.keys(), ...config.broken.keys()].sort()
  const isConfig = (name: string) => config.connections.has(name) || config.broken.has(name)

  const resolved = new Map<string, Found>()
  const changes = new Map<string, number>()
  const listeners = new Set<(name: string, version?: number) => void>()
  const maxResolved = 100_000

  /** Whether the connection resolved here is at `version` or newer (a put told again, or told after a read). */
  const holds = (name: string, version: number | undefined) => {
    const r = resolved.get(name)
    return version !== undefined && r?._tag === "Found" && r.connection.version >= version
  }

  const forget = (name: string, version?: number) => {
    if (!holds(name, version)) {
      resolved.delete(name)
      changes.set(name, (changes.get(name) ?? 0) + 1)
    }
    for (const l of listeners) {
      try {
        l(name, version)
      } catch {
        /* a listener's bug must not break the store's notifications */
      }
    }
  }

  let unsubscribe: (() => void) | undefined
  let disposed = false
  const store = Effect.map(openStore ?? noStore, (s) => {
    if (!unsubscribe && !disposed)
      unsubscribe = s.subscribe((change) => forget(change.name, change.kind === "put" ? change.version : undefined))
    return s
  })

  /** A stored record resolved against today's manifests; misconfigured when the manifest no longer takes it. */
  const resolve = (r: ConnectionRecord): Found => {
    const manifest = config.catalog.manifests.get(r.provider)
    const broken = (details: ReadonlyArray<string>): Found => ({
      _tag: "Broken",
      tags: r.tags,
      error: new InputInvalid({ connection: r.name, provider: r.provider, details })
    })
    if (!manifest) return broken([`provider "${r.provider}" is not known to this server`])
    const { inputs, issues } = Connection.resolveInputs(manifest, revealAll(r.inputs), {
      allowInsecureHttp: r.allowInsecureHttp
    })
    const errors = issues.filter((i) => i.severity === "error")
    if (errors.length > 0) return broken(errors.map((i) => (i.input ? `${i.input}: ${i.message}` : i.message)))
    return {
      _tag: "Found",
      connection: {
        name: r.name,
        manifest,
        inputs,
        allowInsecureHttp: r.allowInsecureHttp,
        tags: r.tags,
        source: "api",
        version: r.version,
        createdAt: r.createdAt
      }
    }
  }

  const fromConfig = (name: string): Found | undefined => {
    const c = config.connections.get(name)
    if (c) return { _tag: "Found", connection: c }
    const b = config.broken.get(name)
    if (!b) return undefined
    return {
      _tag: "Broken",
      tags: b.tags,
      error: new InputInvalid({
        connection: name,
        provider: b.provider,
        details: Problem.errors(b.problems).map(Problem.format)
      })
    }
  }

  const find: Registry["find"] = (name) =>
    Effect.suspend(() => {
      const here = fromConfig(name) ?? resolved.get(name)
      if (here) return Effect.succeed(here)
      if (!openStore || !namePattern.test(name)) return Effect.succeed(undefined)
      const seen = changes.get(name) ?? 0
      return Effect.flatMap(store, (s) => s.get(name)).pipe(
        Effect.map((r) => {
          if (!r) return undefined
          const found = resolve(r)
          // Keep it only if no change was announced while it was read.
          if ((changes.get(name) ?? 0) === seen) {
            if (resolved.size >= maxResolved) resolved.delete(resolved.keys().next().value!)
            resolved.set(name, found)
          }
          return found
        })
      )
    })

  const get: Registry["get"] = (name) =>
    Effect.flatMap(find(name), (f): Effect.Effect<Connection.Connection, UnknownConnection | InputInvalid> => {
      if (f === undefined) return Effect.fail(new UnknownConnection({ connection: name, known: configNames() }))
      return f._tag === "Found" ? Effect.succeed(f.connection) : Effect.fail(f.error)
    })

  const peek: Registry["peek"] = (name) => {
    const f = config.connections.get(name) ?? resolved.get(name)
    if (f === undefined) return undefined
    return "_tag" in f ? (f._tag === "Found" ? f.connection : undefined) : f
  }

  const viewOfRecord = (r: ConnectionRecord, f: Found = resolve(r)): ConnectionView => {
    const inputs: Record<string, string> = {}
    if (f._tag === "Found") Object.assign(inputs, shownInputs(f.connection, f.connection.inputs.keys()))
    else
      for (const k of [...r.inputs.keys()].sort()) {
        const v = r.inputs.get(k)!
        inputs[k] = Redacted.isRedacted(v) ? "***" : v
      }
    return {
      name: r.name,
      provider: r.provider,
      tags: r.tags,
      inputs,
      source: "api",
      status: f._tag === "Found" ? "ok" : "misconfigured",
      created_at: iso(r.createdAt),
      updated_at: iso(r.updatedAt)
    }
  }

  const viewOfConfig = (name: string): ConnectionView | undefined => {
    const c = config.connections.get(name)
    if (c)
      return {
        name,
        provider: c.manifest.id,
        tags: c.tags,
        inputs: shownInputs(c, c.inputs.keys()),
        source: "config",
        status: "ok",
        created_at: null,
        updated_at: null
      }
    const b = config.broken.get(name)
    if (!b) return undefined
    return {
      name,
      provider: b.provider,
      tags: b.tags,
      inputs: {},
      source: "config",
      status: "misconfigured",
      created_at: null,
      updated_at: null
    }
  }

  /** `v` with its stored grant. `c`: the connection as it is now (none when misconfigured), whose binding the grant's
   *  is compared with: a grant bound elsewhere is shown as renewal will treat it, needs_reauth, before any renewal
   *  has marked it so. */
  const withGrant = (
    v: ConnectionView | undefined,
    c: Connection.Connection | undefined
  ): Effect.Effect<ConnectionView | undefined, ConnectionStoreError> =>
    !v || !openStore
      ? Effect.succeed(v)
      : Effect.map(
          Effect.flatMap(store, (s) => s.getGrant(v.name)),
          (g): ConnectionView => {
            if (!g) return v
            // Only a user's grant needs the user; any other connection acquires anew (renewal.ts), and stays ok.
            const { refused, needsUser, detail } = GrantBinding.shownAs(g, c, c !== undefined && isUserGranted(c))
            return {
              ...v,
              status: needsUser && v.status === "ok" ? "needs_reauth" : v.status,
              grant: {
                status: refused ? "needs_reauth" : "active",
                updated_at: iso(g.updatedAt),
                ...(detail !== undefined ? { detail } : {})
              }
            }
          }
        )

  const view: Registry["view"] = (name) =>
    Effect.suspend(() => {
      const v = viewOfConfig(name)
      if (v) return withGrant(v, config.connections.get(name))
      if (!openStore || !namePattern.test(name)) return Effect.succeed(undefined)
      return Effect.flatMap(store, (s) => s.get(name)).pipe(
        Effect.flatMap((r) => {
          if (!r) return Effect.succeed(undefined)
          const f = resolve(r)
          return withGrant(viewOfRecord(r, f), f._tag === "Found" ? f.connection : undefined)
        })
      )
    })

  const validate = (name: string, body: Body, options: PutOptions): Result.Result<Body, ConnectionInvalid> => {
    const errors: FieldError[] = []
    if (!namePattern.test(name))
      errors.push({
        path: "",
        message: "a connection name is 1-128 of [A-Za-z0-9_.-], starting with a letter or digit"
      })
    errors.push(...checkTags(body.tags ?? {}, options.requiredTags ?? {}))
    for (const [k, v] of Object.entries(body.inputs ?? {}))
      if (String(v).includes("\u0000")) errors.push({ path: pointer(["inputs", k]), message: nulMessage })
    const manifest = config.catalog.manifests.get(body.provider)
    if (!manifest) {
      const ids = [...config.catalog.manifests.keys()].sort()
      const guess = closest(body.provider, ids)
      errors.push({
        path: "/provider",
        message: `unknown provider "${body.provider}"; ${guess ? `did you mean "${guess}"?` : `known: ${ids.join(", ")}`}`
      })
    } else {
      const given = new Map(
        Object.entries(body.inputs ?? {}).map(([k, v]) => [k, { value: String(v), literal: false }] as const)
      )
      const { inputs, issues } = Connection.resolveInputs(manifest, given, {
        allowInsecureHttp: body.allow_insecure_http ?? false
      })
      for (const i of issues) {
        if (i.severity !== "error") continue
        const path = i.input ? pointer(["inputs", i.input]) : "/inputs"
        errors.push({ path, message: i.hint ? `${i.message} (${i.hint})` : i.message })
      }
      if (options.refusePrivateTargets)
        for (const p of PrivateTarget.privateEndpoints(manifest, new Set(given.keys()), (n) => inputs.get(n))) {
          // A secret input's value is never shown, not even its host.
          const where = manifest.inputs.get(p.input)?.secret ? p.kind : `${p.host}: ${p.kind}`
          errors.push({
            path: pointer(["inputs", p.input]),
            message: `points at a loopback/private address (${where}); a tenant's key may not; an operator can allow it with server.tenant_private_targets: true`
          })
        }
    }
    return errors.length > 0 ? Result.fail(new ConnectionInvalid({ connection: name, errors })) : Result.succeed(body)
  }

  const put: Registry["put"] = (name, raw, options = {}) =>
    Effect.gen(function* () {
      if (isConfig(name))
        return yield* new ConnectionConflict({
          connection: name,
          reason: "is defined in the config file; change it there (or pick another name)"
        })
      if (!openStore) return yield* noStoreError()
      const decoded = decodeBody(name, raw)
      if (Result.isFailure(decoded)) return yield* decoded.failure
      const checked = validate(name, decoded.success, options)
      if (Result.isFailure(checked)) return yield* checked.failure
      const body = checked.success
      const manifest = config.catalog.manifests.get(body.provider)!
      const s = yield* store
      const { created, record } = yield* s.put({
        name,
        provider: body.provider,
        inputs: Object.entries(body.inputs ?? {}).map(([k, v]) => ({
          name: k,
          value: String(v),
          secret: manifest.inputs.get(k)?.secret ?? false
        })),
        tags: body.tags ?? {},
        allowInsecureHttp: body.allow_insecure_http ?? false
      })
      forget(name)
      return { created, view: viewOfRecord(record) }
    })

  const remove: Registry["remove"] = (name) =>
    Effect.gen(function* () {
      if (isConfig(name))
        return yield* new ConnectionConflict({
          connection: name,
          reason: "is defined in the config file; remove it there"
        })
      if (!openStore || !namePattern.test(name)) return false
      const s = yield* store
      const existed = yield* s.delete(name)
      forget(name)
      return existed
    })

  const list: Registry["list"] = (query = {}) =>
    Effect.gen(function* () {
      const limit = query.limit ?? 100
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
        return yield* new ConnectionInvalid({
          connection: "",
          errors: [{ path: "limit", message: "a whole number from 1 to 1000" }]
        })
      const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
      if (after === null)
        return yield* new ConnectionInvalid({
          connection: "",
          errors: [{ path: "cursor", message: "not a cursor this server gave out; start again without one" }]
        })
      const tags = query.tags ?? {}
      const only = query.only
      const fromFile = configNames()
        .filter((n) => (after === undefined || n > after) && (only === undefined || only.has(n)))
        .map((n) => viewOfConfig(n)!)
        .filter((v) => matchesTags(v.tags, tags))
        .slice(0, limit + 1)
      const stored =
        openStore && only === undefined && !Object.values(tags).some((v) => v.includes("\u0000"))
          ? yield* Effect.flatMap(store, (s) => s.list({ tags, after, limit: limit + 1 }))
          : { items: [], more: false }
      const merged = [...fromFile, ...stored.items.map((r) => viewOfRecord(r))].sort((a, b) =>
        a.name < b.name ? -1 : a.name > b.name ? 1 : 0
      )
      const items = merged.slice(0, limit)
      const more = merged.length > limit || stored.more
      return { items, next_cursor: more && items.length > 0 ? encodeCursor(items[items.length - 1]!.name) : null }
    })

  return {
    peek,
    find,
    held: (name) => isConfig(name) || resolved.has(name),
    get,
    view,
    put,
    remove,
    list,
    onChange: (listener) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    warm: () => (openStore ? Effect.asVoid(store) : Effect.void),
    dispose: () => {
      disposed = true
      unsubscribe?.()
    },
    store: () => store,
    hasStore: openStore !== undefined
  }
}

/** Cursors are opaque to callers: the last name of a page, base64url-encoded. */
export const encodeCursor = (name: string): string => Buffer.from(`n:${name}`, "utf8").toString("base64url")

/** The name a cursor stands for; null when it is not one of ours. */
export const decodeCursor = (cursor: string): string | null => {
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) return null
  const text = Buffer.from(cursor, "base64url").toString("utf8")
  return text.startsWith("n:") ? text.slice(2) : null
}

const noStoreError = () =>
  new ConnectionStoreError({
    store: "none",
    operation: "open",
    reason: "no connection store is configured; add connection_store: to the config"
  })

/** What a process without a connection store gets when it asks for one. */
export const noStore: Effect.Effect<ConnectionStoreShape, ConnectionStoreError> = Effect.suspend(() =>
  Effect.fail(noStoreError())
)
