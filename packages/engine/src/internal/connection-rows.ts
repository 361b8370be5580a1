/** What the SQLite and PostgreSQL connection stores share: the key ring from `connection_store.encryption_keys`,
 *  the stored form of a connection's inputs (non-secret ones in clear, each secret sealed on its own, bound to the
 *  connection and input name) and of a grant (its refresh token sealed, its binding in clear), turning a stored
 *  row back into a record or into an error that names the connection and the key id (never a secret), re-sealing
 *  for key rotation (a grant's binding is another column, untouched), and handing changes to subscribers.
 *  @internal */
import * as Redacted from "effect/Redacted"
import {
  ConnectionStoreError,
  type Change,
  type ConnectionRecord,
  type Grant,
  type GrantInput,
  type PutInput,
  sameBinding
} from "../connection-store.ts"
import { isSealed, open, parseKey, ring, seal, type KeyRing, type Sealed } from "../secret-box.ts"

export const keySetting = "connection_store.encryption_keys"
export const keyHelp = "32 random bytes as base64 or 64 hex digits; make one with `openssl rand -base64 32`"

/** Associated data: a sealed value copied to another connection, input or grant fails to open. */
export const inputAad = (connection: string, input: string) => `tessera/connection/${connection}/${input}`
export const grantAad = (connection: string) => `tessera/grant/${connection}`

/** The ring from configured keys, or the reason they are unusable (which key, never its value). */
export const ringFrom = (keys: ReadonlyArray<Redacted.Redacted<string>>): KeyRing | string => {
  const parsed: Buffer[] = []
  for (const [i, k] of keys.entries()) {
    const key = parseKey(Redacted.value(k))
    if (!key) return `${keySetting}[${i}] is not a key: each key is ${keyHelp}`
    parsed.push(key)
  }
  return parsed.length === 0 ? `${keySetting} is empty: give at least one key, ${keyHelp}` : ring(parsed)
}

/** A stored connection as its columns hold it (JSON columns as text). */
export interface ConnectionRow {
  readonly name: string
  readonly provider: string
  readonly inputs: string
  readonly secrets: string
  readonly tags: string
  readonly allowInsecureHttp: boolean
  readonly createdAt: number
  readonly updatedAt: number
  readonly version: number
}

export interface GrantRow {
  readonly refreshToken: string
  readonly scope: string | null
  readonly status: string
  readonly detail: string | null
  /** The grant's binding (grant-binding.ts), in clear: a digest of nothing secret. Null for a grant written before
   *  the column existed. */
  readonly binding: string | null
  readonly updatedAt: number
  readonly version: number
}

/** The JSON columns of a connection about to be written. */
export const encodeInputs = (keys: KeyRing, input: PutInput) => {
  const clear: Record<string, string> = {}
  const secrets: Record<string, Sealed> = {}
  for (const i of input.inputs) {
    delete clear[i.name]
    delete secrets[i.name]
    if (i.secret) secrets[i.name] = seal(keys, i.value, inputAad(input.name, i.name))
    else clear[i.name] = i.value
  }
  return { inputs: JSON.stringify(clear), secrets: JSON.stringify(secrets), tags: JSON.stringify(input.tags) }
}

export { recordOf } from "../connection-store.ts"

const encodeRefreshToken = (keys: KeyRing, name: string, grant: GrantInput) =>
  JSON.stringify(seal(keys, Redacted.value(grant.refreshToken), grantAad(name)))

/** A grant row's columns after its name, in the stores' order: refresh token (sealed), scope, status, detail,
 *  binding, updated at. */
export const grantValues = (keys: KeyRing, name: string, grant: GrantInput, now: number) =>
  [
    encodeRefreshToken(keys, name, grant),
    grant.scope ?? null,
    grant.status,
    grant.detail ?? null,
    grant.binding ?? null,
    now
  ] as const

/** Throws ConnectionStoreErrors; each store runs these inside its own try. */
export interface Codec {
  readonly store: string
  readonly keys: KeyRing
}

const failure = (c: Codec, operation: string, connection: string, reason: string) =>
  new ConnectionStoreError({ store: c.store, operation, connection, reason })

const parseObject = (c: Codec, operation: string, connection: string, column: string, text: string) => {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    value = undefined
  }
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw failure(c, operation, connection, `the stored ${column} are not a JSON object (the row is damaged)`)
  return Object.entries(value)
}

const strings = (c: Codec, operation: string, connection: string, column: string, text: string) => {
  const out: Record<string, string> = {}
  for (const [k, v] of parseObject(c, operation, connection, column, text)) {
    if (typeof v !== "string") throw failure(c, operation, connection, `stored ${column} "${k}" is not a string`)
    out[k] = v
  }
  return out
}

const sealedValues = (c: Codec, operation: string, connection: string, text: string) =>
  parseObject(c, operation, connection, "secrets", text).map(([input, v]) => {
    if (!isSealed(v)) throw failure(c, operation, connection, `stored secret input "${input}" is not a sealed value`)
    return [input, v] as const
  })

const unknownKey = (c: Codec, what: string, kid: string) =>
  `${what} is sealed under key id ${kid}, which is none of the configured ${keySetting} ` +
  `(key ids ${[...c.keys.byId.keys()].join(", ")}): add that key again (first the new key, then it) or put the connection again`

const openOrThrow = (c: Codec, operation: string, connection: string, what: string, s: Sealed, aad: string) => {
  const o = open(c.keys, s, aad)
  switch (o._tag) {
    case "Opened":
      return o.plain
    case "UnknownKey":
      throw failure(c, operation, connection, unknownKey(c, what, o.kid))
    case "Damaged":
      throw failure(c, operation, connection, `${what} does not authenticate under key id ${s.kid} (damaged or moved)`)
  }
}

export const decodeConnection = (c: Codec, operation: string, row: ConnectionRow): ConnectionRecord => {
  const inputs = new Map<string, string | Redacted.Redacted<string>>(
    Object.entries(strings(c, operation, row.name, "inputs", row.inputs))
  )
  for (const [input, s] of sealedValues(c, operation, row.name, row.secrets)) {
    const plain = openOrThrow(c, operation, row.name, `secret input "${input}"`, s, inputAad(row.name, input))
    inputs.set(input, Redacted.make(plain, { label: input }))
  }
  return {
    name: row.name,
    provider: row.provider,
    inputs,
    tags: strings(c, operation, row.name, "tags", row.tags),
    allowInsecureHttp: row.allowInsecureHttp,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
    version: row.version
  }
}

/** Whether `next` keeps the binding of the stored row (connection-store.ts `sameBinding`); a row that does not
 *  decode (a key no longer configured, damage) does not: its grant is dropped rather than trusted. */
export const keepsBinding = (c: Codec, prev: ConnectionRow, next: PutInput): boolean => {
  try {
    return sameBinding(decodeConnection(c, "put", prev), next)
  } catch {
    return false
  }
}

const sealedGrant = (c: Codec, operation: string, name: string, text: string): Sealed => {
  let s: unknown
  try {
    s = JSON.parse(text)
  } catch {
    s = undefined
  }
  if (!isSealed(s)) throw failure(c, operation, name, "the stored refresh token is not a sealed value")
  return s
}

export const decodeGrant = (c: Codec, operation: string, name: string, row: GrantRow): Grant => {
  const plain = openOrThrow(
    c,
    operation,
    name,
    "the grant's refresh token",
    sealedGrant(c, operation, name, row.refreshToken),
    grantAad(name)
  )
  if (row.status !== "active" && row.status !== "needs_reauth")
    throw failure(c, operation, name, `stored grant status "${row.status}" is neither active nor needs_reauth`)
  return {
    refreshToken: Redacted.make(plain, { label: "refresh_token" }),
    status: row.status,
    ...(row.scope === null ? {} : { scope: row.scope }),
    ...(row.detail === null ? {} : { detail: row.detail }),
    ...(row.binding === null ? {} : { binding: row.binding }),
    updatedAt: row.updatedAt,
    version: row.version
  }
}

/** The secrets column re-sealed under the first key, or undefined when every value already is. */
export const resealSecrets = (c: Codec, name: string, text: string): string | undefined => {
  const values = sealedValues(c, "reencrypt", name, text)
  if (values.every(([, s]) => s.kid === c.keys.primaryId)) return undefined
  const out: Record<string, Sealed> = {}
  for (const [input, s] of values) {
    const aad = inputAad(name, input)
    out[input] =
      s.kid === c.keys.primaryId
        ? s
        : seal(c.keys, openOrThrow(c, "reencrypt", name, `secret input "${input}"`, s, aad), aad)
  }
  return JSON.stringify(out)
}

export const resealRefreshToken = (c: Codec, name: string, text: string): string | undefined => {
  const s = sealedGrant(c, "reencrypt", name, text)
  if (s.kid === c.keys.primaryId) return undefined
  const plain = openOrThrow(c, "reencrypt", name, "the grant's refresh token", s, grantAad(name))
  return JSON.stringify(seal(c.keys, plain, grantAad(name)))
}

/** The subscribers of one store instance. A subscriber that throws breaks neither a write nor the others. */
export const makeFanout = () => {
  const listeners = new Set<(change: Change) => void>()
  return {
    get size() {
      return listeners.size
    },
    add: (listener: (change: Change) => void) => {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    emit: (change: Change) => {
      for (const l of listeners) {
        try {
          l(change)
        } catch {
          /* a subscriber's bug must not break a write or the other subscribers */
        }
      }
    }
  }
}

export const isKind = (s: unknown): s is Change["kind"] => s === "put" || s === "delete"

/** A driver error as text for a ConnectionStoreError: its code and message, never its detail (which can quote
 *  values). */
export const reasonOf = (e: unknown): string => {
  if (e instanceof Error) {
    const code = "code" in e ? e.code : undefined
    const prefix = typeof code === "string" && code !== "" && !e.message.includes(code) ? `${code}: ` : ""
    return `${prefix}${e.message || e.name}`
  }
  return String(e)
}

/** Clamps a page size to the contract's 1..1000. */
export const pageSize = (limit: number) => Math.min(1000, Math.max(1, Number.isFinite(limit) ? Math.trunc(limit) : 1))

// ---------------------------------------------------------------------------------------------------------------
// Reading a driver's rows

type Row = Readonly<Record<string, unknown>>

/** A text column; a driver that gives anything else is a bug worth a defect. */
export const text = (r: Row, k: string): string => {
  const v = r[k]
  if (typeof v === "string") return v
  throw new TypeError(`column ${k} is not text`)
}
export const textOrNull = (r: Row, k: string): string | null => (r[k] === null ? null : text(r, k))

/** The row readers of a driver, given how it hands over integers and booleans. */
export const readers = <R extends Row>(columns: {
  readonly num: (r: R, k: string) => number
  readonly bool: (r: R, k: string) => boolean
}) => ({
  connectionRow: (r: R): ConnectionRow => ({
    name: text(r, "name"),
    provider: text(r, "provider"),
    inputs: text(r, "inputs"),
    secrets: text(r, "secrets"),
    tags: text(r, "tags"),
    allowInsecureHttp: columns.bool(r, "allow_insecure_http"),
    createdAt: columns.num(r, "created_at"),
    updatedAt: columns.num(r, "updated_at"),
    version: columns.num(r, "version")
  }),
  grantRow: (r: R): GrantRow => ({
    refreshToken: text(r, "refresh_token"),
    scope: textOrNull(r, "scope"),
    status: text(r, "status"),
    detail: textOrNull(r, "detail"),
    binding: textOrNull(r, "binding"),
    updatedAt: columns.num(r, "updated_at"),
    version: columns.num(r, "version")
  })
})

/** A database whose schema a newer tessera migrated: `where` says what to point elsewhere instead. */
export const newerThanKnown = (store: ConnectionStoreError["store"], found: number, latest: number, where: string) =>
  new ConnectionStoreError({
    store,
    operation: "migrate",
    reason:
      `the database is at schema version ${found}, newer than this tessera knows (${latest}): ` +
      `upgrade tessera, or point ${where}`
  })
