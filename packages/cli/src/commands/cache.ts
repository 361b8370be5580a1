/** `tessera cache list` and `tessera cache clear [connection]`: the tokens the CLI's store holds (the encrypted
 *  file store unless the config names another), listed without any secret, and removed all at once or per
 *  connection. The config is optional: without one, the default file store is used. Neither creates a cache
 *  directory or key, and `clear` only ever removes files in a directory tessera created (file-store.ts). */
import { Catalog, Config, Expiry, FileStore, Runtime, TokenError, TokenStore, type Manifest } from "@tessera/engine"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Argument from "effect/cli/Argument"
import * as Command from "effect/cli/Command"
import * as ConfigDiscovery from "../config-discovery.ts"
import * as Flags from "../flags.ts"
import * as Report from "../report.ts"
import * as Terminal from "../terminal.ts"

export interface Listed {
  readonly connection: string
  readonly provider: string
  readonly obtained_at: string
  readonly expires_at: string
  readonly freshness: Expiry.Freshness
  readonly has_refresh_token: boolean
  readonly expiry_source: string
  /** The store key: an HMAC of the connection and its inputs under the store's secret; it holds no secret and cannot
   *  be recomputed without the store's key. */
  readonly key: string
}

/** The config (when there is one) and the store it names, else the default file store. */
const setup = (given: Option.Option<string>) =>
  Effect.gen(function* () {
    const found = yield* ConfigDiscovery.discoverOptional(given)
    const config = found ? yield* Config.load(found.file) : undefined
    const file = FileStore.makeFile({
      dir: config?.store?.path,
      encryptionKey: config?.store?.encryptionKey,
      create: false
    })
    const store: Layer.Layer<TokenStore.TokenStore, TokenError.StoreError> =
      config && (config.store?.type ?? "file") !== "file"
        ? Runtime.storeLayer(config, "file")
        : Layer.effect(TokenStore.TokenStore, file)
    return { config, store }
  })

export const list = (manifests: ReadonlyMap<string, Manifest.Manifest>) =>
  Effect.gen(function* () {
    const store = yield* TokenStore.TokenStore
    const now = yield* Clock.currentTimeMillis
    const entries = yield* store.list()
    return entries
      .map(([key, e]): Listed => {
        const t = e.token
        const m = manifests.get(e.provider)
        // Without the manifest (a provider no longer configured) there is no margin to apply: just valid or not.
        const freshness: Expiry.Freshness = m
          ? Expiry.freshness(m, { expiresAt: t.expires_at, obtainedAt: t.obtained_at }, now)
          : now < t.expires_at
            ? "fresh"
            : "expired"
        return {
          connection: e.connection,
          provider: e.provider,
          obtained_at: new Date(t.obtained_at).toISOString(),
          expires_at: new Date(t.expires_at).toISOString(),
          freshness,
          has_refresh_token: t.refresh_token !== undefined,
          expiry_source: t.expiry_source,
          key
        }
      })
      .sort((a, b) => a.connection.localeCompare(b.connection) || a.expires_at.localeCompare(b.expires_at))
  })

export const render = (rows: ReadonlyArray<Listed>, p: Terminal.Paint, now: number): string => {
  if (rows.length === 0) return "No cached tokens."
  const fresh = (f: Expiry.Freshness) => (f === "fresh" ? p.green(f) : f === "expiring" ? p.yellow(f) : p.red(f))
  // Pad before coloring: escape codes would throw the column widths off.
  const width = Math.max(...rows.map((r) => r.freshness.length), "FRESHNESS".length)
  return Report.table(
    ["CONNECTION", "PROVIDER", "EXPIRES", "FRESHNESS", "REFRESH TOKEN"],
    rows.map((r) => [
      r.connection,
      r.provider,
      `${r.expires_at} (${Report.relative(Date.parse(r.expires_at), now)})`,
      fresh(r.freshness) + " ".repeat(width - r.freshness.length),
      r.has_refresh_token ? "yes" : "no"
    ])
  )
    .split("\n")
    .map((l, i) => (i === 0 ? p.bold(l) : l))
    .join("\n")
}

const listCommand = Command.make(
  "list",
  {
    config: ConfigDiscovery.flag,
    json: Flags.toggle(
      "json",
      "print {tokens: [{connection, provider, obtained_at, expires_at, freshness, has_refresh_token, expiry_source, key}]}"
    )
  },
  (o) =>
    Effect.gen(function* () {
      const { config, store } = yield* setup(o.config)
      const manifests = config?.catalog.manifests ?? (yield* Catalog.load()).manifests
      const rows = yield* list(manifests).pipe(Effect.provide(store))
      if (o.json) return yield* Report.json({ tokens: rows }, { pretty: true })
      yield* Console.log(render(rows, yield* Terminal.paint("stdout"), yield* Clock.currentTimeMillis))
    }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.cache.list"))
).pipe(
  Command.withDescription(
    "List the cached tokens: connection, provider, expiry, freshness (fresh, expiring: inside the " +
      "early-refresh margin, expired) and whether a refresh token is kept. Never prints a token."
  ),
  Command.withShortDescription("List cached tokens (no secrets)"),
  Command.withExamples([
    { command: "tessera cache list", description: "Table of cached tokens" },
    {
      command: "tessera cache list --json | jq -r '.tokens[] | select(.freshness != \"fresh\") | .connection'",
      description: "Connections whose token needs renewing"
    }
  ])
)

const clearCommand = Command.make(
  "clear",
  {
    connection: Argument.String("connection").pipe(
      Argument.withDescription("only this connection's tokens (default: all)"),
      Argument.optional
    ),
    config: ConfigDiscovery.flag,
    json: Flags.toggle("json", "print {removed: N}")
  },
  (o) =>
    Effect.gen(function* () {
      const { config, store } = yield* setup(o.config)
      const removed = yield* Effect.gen(function* () {
        const s = yield* TokenStore.TokenStore
        if (o.connection._tag === "None") return yield* s.clear()
        const name = o.connection.value
        const keys = (yield* s.list()).filter(([, e]) => e.connection === name).map(([k]) => k)
        const known = config ? [...config.connections.keys(), ...config.broken.keys()] : []
        if (keys.length === 0 && !known.includes(name))
          return yield* new TokenError.UnknownConnection({ connection: name, known: known.sort() })
        yield* Effect.forEach(keys, (k) => s.delete(k), { discard: true })
        return keys.length
      }).pipe(Effect.provide(store))
      if (o.json) return yield* Report.json({ removed })
      const whose = o.connection._tag === "Some" ? ` of ${o.connection.value}` : ""
      yield* Console.log(
        removed === 0
          ? `No cached tokens${whose} to remove.`
          : `Removed ${Report.plural(removed, "cached token")}${whose}.`
      )
    }).pipe(Effect.catch(Report.failWith({ json: o.json })), Effect.withSpan("tessera.cli.cache.clear"))
).pipe(
  Command.withDescription(
    "Remove cached tokens: all of them, or those of one connection. The next `tessera token` " +
      "then asks the provider for a new one. Exit 2 when the named connection is neither configured nor cached."
  ),
  Command.withShortDescription("Remove cached tokens (all, or one connection's)"),
  Command.withExamples([
    { command: "tessera cache clear crm", description: "Forget connection crm's token" },
    { command: "tessera cache clear", description: "Forget every cached token" }
  ])
)

export const command = Command.make("cache").pipe(
  Command.withDescription(
    "Look at and clear the token cache: the encrypted file store ($TESSERA_CACHE_DIR, else the user " +
      "cache directory; a directory tessera did not create is left alone and its tessera/ subdirectory used) " +
      "or the store the config names."
  ),
  Command.withShortDescription("List or clear cached tokens"),
  Command.withExamples([
    { command: "tessera cache list", description: "What is cached, and until when" },
    { command: "tessera cache clear crm", description: "Forget connection crm's token" }
  ]),
  Command.withSubcommands([listCommand, clearCommand])
)
