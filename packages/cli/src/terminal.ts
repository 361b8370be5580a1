/** What the terminal `tessera` writes to can show: colors on stdout or stderr, and a progress spinner on stderr.
 *  Colors follow the common conventions (no-color.org): never when NO_COLOR is set or TERM=dumb, always when
 *  FORCE_COLOR is set, else only on a TTY. The spinner appears only when stderr is a TTY and an operation has
 *  waited `spinnerDelayMs`, and it erases itself, so pipes, files and `$(...)` never see it. */
import { Effect, Fiber, Stdio, Stream } from "effect"

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

// ESC [ ... (CSI), ESC ] ... BEL or ST (OSC), and every C0/C1 control character.
// oxlint-disable-next-line no-control-regex
const unsafe = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[\u0000-\u001f\u007f-\u009f]/g

/** Provider- or caller-supplied text made safe for a terminal: control characters and escape sequences removed. */
export const sanitize = (text: string): string => text.replace(unsafe, "")
