/** What the terminal `tessera` writes to can show: colors on stdout or stderr, a progress spinner on stderr, and
 *  text from elsewhere (a provider's message, a JWT's claims) made harmless to print.
 *  Colors follow the common conventions (no-color.org): never when NO_COLOR is set or TERM=dumb, always when
 *  FORCE_COLOR is set, else only on a TTY. The spinner appears only when stderr is a TTY and an operation has
 *  waited `spinnerDelayMs`, and it erases itself, so pipes, files and `$(...)` never see it. `sanitize` (for text)
 *  and `sanitizeJson` (for JSON output) keep control characters and escape sequences in provider text from
 *  reaching the terminal; `logger` applies `sanitize` to log messages. */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Stdio from "effect/Stdio"
import * as Stream from "effect/Stream"

export type Output = "stdout" | "stderr"

const present = (v: string | undefined): v is string => v !== undefined && v !== ""

/** Whether to color output going to a stream that is (or is not) a TTY, under `env`. */
export const canColor = (isTty: boolean, env: NodeJS.ProcessEnv = process.env): boolean => {
  if (present(env["NO_COLOR"]) || env["TERM"] === "dumb") return false
  const force = env["FORCE_COLOR"]
  if (present(force) && force !== "0" && force.toLowerCase() !== "false") return true
  return isTty
}

export interface Paint {
  readonly enabled: boolean
  readonly bold: (s: string) => string
  readonly dim: (s: string) => string
  readonly red: (s: string) => string
  readonly green: (s: string) => string
  readonly yellow: (s: string) => string
  readonly cyan: (s: string) => string
}

const sgr = (on: number, off: number) => (s: string) => `\x1b[${on}m${s}\x1b[${off}m`
const identity = (s: string) => s

export const paintWith = (enabled: boolean): Paint =>
  enabled
    ? {
        enabled,
        bold: sgr(1, 22),
        dim: sgr(2, 22),
        red: sgr(31, 39),
        green: sgr(32, 39),
        yellow: sgr(33, 39),
        cyan: sgr(36, 39)
      }
    : { enabled, bold: identity, dim: identity, red: identity, green: identity, yellow: identity, cyan: identity }

/** The colors for text written to `stream`: all identity functions when that stream must stay plain. */
export const paint = (stream: Output): Effect.Effect<Paint, never, Stdio.Stdio> =>
  Effect.gen(function* () {
    const stdio = yield* Stdio.Stdio
    const tty = yield* stream === "stdout" ? stdio.stdoutIsTerminal : stdio.stderrIsTerminal
    return paintWith(canColor(tty))
  })

/** Writes text or bytes to the stream as they are: no newline added, nothing decoded. */
export const write = (stream: Output, data: string | Uint8Array): Effect.Effect<void, never, Stdio.Stdio> =>
  Effect.gen(function* () {
    const stdio = yield* Stdio.Stdio
    yield* Stream.run(Stream.succeed(data), stream === "stdout" ? stdio.stdout() : stdio.stderr()).pipe(Effect.orDie)
  })

/** How long an operation may take before the spinner shows; quick answers (a cached token) never flicker. */
export const spinnerDelayMs = 300

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

/** Runs `self` with a spinner and `label` on stderr, when stderr is a TTY and `self` takes more than 300 ms. The
 *  line is erased afterwards (with `\r` and spaces, no escape sequences), whatever the outcome. */
export const withSpinner =
  (label: string) =>
  <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R | Stdio.Stdio> =>
    Effect.gen(function* () {
      const stdio = yield* Stdio.Stdio
      if (!(yield* stdio.stderrIsTerminal) || process.env["TERM"] === "dumb") return yield* self
      let drawn = 0
      const draw = (text: string) =>
        Effect.andThen(
          write("stderr", `\r${text.padEnd(drawn)}`),
          Effect.sync(() => {
            drawn = Math.max(drawn, text.length)
          })
        )
      const spin = Effect.gen(function* () {
        yield* Effect.sleep(spinnerDelayMs)
        for (let i = 0; ; i++) {
          yield* draw(`${frames[i % frames.length]} ${label}`)
          yield* Effect.sleep(80)
        }
      })
      const fiber = yield* Effect.forkChild(spin)
      return yield* self.pipe(
        Effect.ensuring(
          Effect.andThen(
            Fiber.interrupt(fiber),
            Effect.suspend(() => (drawn > 0 ? write("stderr", `\r${" ".repeat(drawn)}\r`) : Effect.void))
          )
        )
      )
    })

/** Characters a terminal acts on instead of showing: C0 controls but TAB and LF (CR rewrites the line, BEL rings,
 *  ESC starts CSI and OSC sequences: colors, cursor moves, titles, hyperlinks, clipboard writes), DEL, the C1
 *  controls (U+009B is a one-character CSI, U+009D an OSC), and the invisible Unicode controls that reorder or
 *  split what is shown (bidirectional overrides and isolates, line and paragraph separators). */
// oxlint-disable-next-line no-control-regex -- matching control characters is the point
const unsafe = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

const hex = (c: string, width: number) => (c.codePointAt(0) ?? 0).toString(16).padStart(width, "0")

/** Text from a provider (or any other party) as it is safe to print: every character in `unsafe` is written as a
 *  visible escape (`\x1b`, `\r`, `\u202e`), so an escape sequence shows as text and does nothing. */
export const sanitize = (text: string): string =>
  text.replace(unsafe, (c) => (c === "\r" ? "\\r" : c <= "\xff" ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`))

/** JSON text with the characters JSON.stringify leaves raw (DEL, C1, the Unicode controls above) written as
 *  `\uXXXX`: the same JSON value, and nothing a terminal acts on. Valid only for JSON.stringify output, where
 *  such characters can only be inside strings. */
export const sanitizeJson = (json: string): string => json.replace(unsafe, (c) => `\\u${hex(c, 4)}`)

const sanitizeMessage = (message: unknown): unknown =>
  typeof message === "string"
    ? sanitize(message)
    : Array.isArray(message)
      ? message.map((m: unknown) => (typeof m === "string" ? sanitize(m) : m))
      : message

/** Effect's default logger, with `sanitize` applied to the message: engine logs can quote a provider's text. */
export const logger = Logger.make((options) =>
  Logger.defaultLogger.log({ ...options, message: sanitizeMessage(options.message) })
)
