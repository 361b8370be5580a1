/** Command-line flags that commands declare alike: an on/off switch, an optional text value and an optional choice,
 *  each with its description. */
import * as Flag from "effect/cli/Flag"

/** `--name` (and `-alias`): off unless given. */
export const toggle = (name: string, description: string, alias?: string): Flag.Flag<boolean> => {
  const base = Flag.Boolean(name)
  return (alias === undefined ? base : base.pipe(Flag.withAlias(alias))).pipe(
    Flag.withDefault(false),
    Flag.withDescription(description)
  )
}

/** `--name VALUE`, optional. */
export const optionalText = (name: string, metavar: string, description: string) =>
  Flag.String(name).pipe(Flag.withMetavar(metavar), Flag.optional, Flag.withDescription(description))

/** `--name one-of-choices`, optional. */
export const optionalChoice = <const A extends string>(name: string, choices: ReadonlyArray<A>, description: string) =>
  Flag.Literals(name, choices).pipe(Flag.optional, Flag.withDescription(description))
