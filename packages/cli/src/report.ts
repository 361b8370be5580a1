/** Writes what a command produced: data on stdout, failures on stderr, either for people or as JSON.
 *  Holds `Reported` (a failure already written, carrying only its exit code), `failWith` (write a failure and
 *  end with its exit code), `secretsOf` (every secret a config holds, for `Redaction.scrub` to keep out of
 *  anything written), and the small formatters the commands share (`table`, `plural`, `duration`). Failures are
 *  scrubbed, then made safe for a terminal (`Terminal.sanitize`; JSON through `Terminal.sanitizeJson`). */
import { Redaction, Upstream, type Config } from "@tessera/engine"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as ExitCode from "./exit-code.ts"
import * as Terminal from "./terminal.ts"

/** A failure that has been written to stderr already; the process ends with `code`. */
export class Reported extends Data.TaggedError("Reported")<{ readonly code: ExitCode.ExitCode }> {}

export interface Style {
  /** Failures as `{"error":{"code","message"}}` instead of `tessera: message`. */
  readonly json: boolean
  /** Secret values (client secrets, passwords) to mask if a message ever echoes one, e.g. a provider's error text. */
  readonly secrets?: ReadonlyArray<string> | undefined
}

/** Every secret value the config holds, so that no message can echo one (a provider may quote it back): each
 *  connection's secrets as the engine knows them (Basic credentials included), API keys, store secrets. */
export const secretsOf = (config: Config.Config): ReadonlyArray<string> => {
  const out: string[] = []
  for (const c of config.connections.values()) out.push(...Upstream.secretsOf(c))
  for (const k of config.server.apiKeys) out.push(Redacted.value(k.key))
  for (const r of [config.store?.encryptionKey, config.store?.url, config.connectionStore?.url])
    if (r) out.push(Redacted.value(r))
  for (const k of config.connectionStore?.encryptionKeys ?? []) out.push(Redacted.value(k))
  return out
}

export const errorText = (error: { readonly _tag: string; readonly message: string }, style: Style): string => {
  const message = Redaction.scrub(error.message, style.secrets)
  return style.json
    ? Terminal.sanitizeJson(JSON.stringify({ error: { code: error._tag, message } }))
    : `tessera: ${Terminal.sanitize(message)}`
}

/** Writes the failure and fails with `Reported`, so the process exits with the code `exit-code.ts` gives it. */
export const failWith =
  (style: Style) =>
  (error: { readonly _tag: string; readonly message: string }): Effect.Effect<never, Reported> =>
    Effect.andThen(Console.error(errorText(error, style)), Effect.fail(new Reported({ code: ExitCode.of(error) })))

export const json = (value: unknown, opts: { readonly pretty?: boolean } = {}): Effect.Effect<void> =>
  Console.log(Terminal.sanitizeJson(opts.pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value)))

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)))
  return all
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd()
    )
    .join("\n")
}

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`

/** A span of time for people: "42 s", "29 min 48 s", "3 h 5 min", "2 d 4 h". */
export const duration = (ms: number): string => {
  const s = Math.round(Math.abs(ms) / 1000)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`
  if (s < 86400)
    return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ""}`
  return `${Math.floor(s / 86400)} d${Math.floor((s % 86400) / 3600) ? ` ${Math.floor((s % 86400) / 3600)} h` : ""}`
}

/** When `at` is relative to `now`: "in 29 min 48 s" or "12 s ago". */
export const relative = (at: number, now: number): string =>
  at >= now ? `in ${duration(at - now)}` : `${duration(now - at)} ago`
