/** Writes what a command produced: data on stdout, failures on stderr, either for people or as JSON.
 *  Holds `Reported` (a failure already written, carrying only its exit code), `failWith` (write a failure and
 *  end with its exit code) and `scrub`, which keeps known secret values out of anything written. */
import { Console, Data, Effect } from "effect"
import * as ExitCode from "./exit-code.ts"

/** A failure that has been written to stderr already; the process ends with `code`. */
export class Reported extends Data.TaggedError("Reported")<{ readonly code: ExitCode.ExitCode }> {}

export interface Style {
  /** Failures as `{"error":{"code","message"}}` instead of `tessera: message`. */
  readonly json: boolean
  /** Secret values (client secrets, passwords) to mask if a message ever echoes one, e.g. a provider's error text. */
  readonly secrets?: ReadonlyArray<string> | undefined
}

// Short values ("-", "1") would mask ordinary text and are no secret worth hiding.
const minSecretLength = 4

/** Replaces every occurrence of a known secret value with `***`. */
export const scrub = (text: string, secrets: ReadonlyArray<string> = []): string =>
  secrets.filter((s) => s.length >= minSecretLength).sort((a, b) => b.length - a.length)
    .reduce((t, s) => t.split(s).join("***"), text)

export const errorText = (error: { readonly _tag: string; readonly message: string }, style: Style): string => {
  const message = scrub(error.message, style.secrets)
  return style.json ? JSON.stringify({ error: { code: error._tag, message } }) : `tessera: ${message}`
}

/** Writes the failure and fails with `Reported`, so the process exits with the code `exit-code.ts` gives it. */
export const failWith = (style: Style) => (error: { readonly _tag: string; readonly message: string }): Effect.Effect<never, Reported> =>
  Effect.andThen(Console.error(errorText(error, style)), Effect.fail(new Reported({ code: ExitCode.of(error) })))

export const json = (value: unknown, opts: { readonly pretty?: boolean } = {}): Effect.Effect<void> =>
  Console.log(opts.pretty ? JSON.stringify(value, null, 2) : JSON.stringify(value))

/** Left-aligned columns separated by two spaces; the last column is not padded. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)))
  return all.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)).join("  ").trimEnd()).join("\n")
}

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`
