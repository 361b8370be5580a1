/** Failures only the command line has: an argument the parser accepted but the command cannot use, a file in the
 *  way of one the command would write, and the answer of an API call made by `tessera request`. Like the engine's
 *  errors, each `_tag` is a stable code (printed by `--json`) with its exit code in exit-code.ts. */
import * as Schema from "effect/Schema"

/** A value the command line gave that the command cannot use: a bad header, an unreadable `-d @file`, a relative
 *  path for a provider without `api.base_url`, a provider id that is not kebab-case. */
export class InvalidArgument extends Schema.TaggedError<InvalidArgument>()("InvalidArgument", {
  argument: Schema.String,
  reason: Schema.String,
  hint: Schema.optional(Schema.String)
}) {
  override get message() {
    return `${this.argument} ${this.reason}${this.hint ? ` (${this.hint})` : ""}`
  }
}

/** A file the command would write already exists; `--force` overwrites it. */
export class FileExists extends Schema.TaggedError<FileExists>()("FileExists", { path: Schema.String }) {
  override get message() {
    return `${this.path} already exists (pass --force to overwrite it)`
  }
}

/** The API answered an authenticated call with HTTP 400 or more (after the one retry a 401 earns). */
export class ApiStatus extends Schema.TaggedError<ApiStatus>()("ApiStatus", {
  connection: Schema.String,
  provider: Schema.String,
  method: Schema.String,
  url: Schema.String,
  status: Schema.Number,
  statusText: Schema.String
}) {
  override get message() {
    return `${this.connection} (${this.provider}): ${this.method} ${this.url} answered HTTP ${this.status}${this.statusText ? ` ${this.statusText}` : ""}`
  }
}

export type CliError = InvalidArgument | FileExists | ApiStatus
