/** Failures of loading manifests and configs. Each carries every problem found, already located. */
import * as Schema from "effect/Schema"
import * as Problem from "./problem.ts"

const ProblemSchema = Schema.Struct({
  severity: Schema.Literals(["error", "warning"]),
  file: Schema.String,
  line: Schema.Number,
  col: Schema.Number,
  path: Schema.String,
  message: Schema.String,
  hint: Schema.optional(Schema.String)
})

export class ManifestInvalid extends Schema.TaggedError<ManifestInvalid>()("ManifestInvalid", {
  problems: Schema.Array(ProblemSchema)
}) {
  override get message() {
    return Problem.formatAll(this.problems)
  }
}

export class ConfigInvalid extends Schema.TaggedError<ConfigInvalid>()("ConfigInvalid", {
  problems: Schema.Array(ProblemSchema)
}) {
  override get message() {
    return Problem.formatAll(this.problems)
  }
}

export type LoadError = ManifestInvalid | ConfigInvalid
