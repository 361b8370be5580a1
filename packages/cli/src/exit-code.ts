/** The one table from a failure's stable code (its `_tag`) to the process exit code of `tessera`.
 *  0: success. 1: the provider, the network or the token store failed, or (tessera request) the API answered 400 or
 *  more; retrying later may help.
 *  2: the invocation or the configuration is wrong; fix it before retrying. */
import type { Api, AuthorizationError, ConnectionRegistry, ManifestError, TokenError } from "@tessera/engine"
import * as CliError from "effect/cli/CliError"
import type { CliError as CliFailure } from "./cli-error.ts"
import type { ConfigNotFound } from "./config-discovery.ts"

export type ExitCode = 0 | 1 | 2

export const success: ExitCode = 0
export const failure: ExitCode = 1
export const usage: ExitCode = 2

/** Every failure a command can end with: the engine's (tokens, API calls, the connection registry), plus config
 *  discovery and the CLI's own (cli-error.ts). */
export type Failure =
  | TokenError.TokenError
  | AuthorizationError.AuthorizationFailed
  | Api.ApiError
  | ConnectionRegistry.RegistryError
  | ManifestError.LoadError
  | ConfigNotFound
  | CliFailure

// `satisfies` makes the table exhaustive: a new engine `_tag` fails the typecheck until it is mapped here.
const table = {
  UnknownConnection: usage,
  InputInvalid: usage,
  ConfigInvalid: usage,
  ManifestInvalid: usage,
  ConfigNotFound: usage,
  InvalidArgument: usage,
  FileExists: usage,
  NoApiBaseUrl: usage,
  TargetRefused: usage,
  ForeignOrigin: usage,
  BodyRefused: usage,
  TransportError: failure,
  UpstreamTimeout: failure,
  UpstreamRejected: failure,
  ResponseInvalid: failure,
  StoreError: failure,
  StaticCredential: usage, // a static credential has no token: use tessera request
  ConnectionInvalid: usage,
  ConnectionConflict: usage,
  ConnectionStoreError: failure,
  AuthorizationRequired: failure,
  AuthorizationFailed: failure,
  ApiStatus: failure
} as const satisfies Record<Failure["_tag"], ExitCode>

/** The exit code for a failure. Parse errors of the command line are usage errors; anything unknown is a failure. */
export const of = (error: { readonly _tag: string }): ExitCode => {
  if (CliError.isCliError(error)) return usage
  return Object.hasOwn(table, error._tag) ? table[error._tag as Failure["_tag"]] : failure
}
