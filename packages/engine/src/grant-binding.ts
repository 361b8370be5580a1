/** A durable grant's binding: what its refresh token was issued for, so that it is never sent anywhere else.
 *  A refresh token belongs to a client and the endpoints it came from; a connection of the config file whose provider
 *  or endpoint is edited (then a reload or a restart) keeps its name, so the name alone cannot tell.
 *
 *  - `bindingOf`: a SHA-256 (hex) of the connection's provider id, `allow_insecure_http` and its effective non-secret
 *    inputs (defaults filled), sorted by name. Secret inputs (and any value derived from one) are left out on purpose:
 *    the digest is not keyed, so it must hold nothing worth guessing, and rotating a client secret or a password keeps
 *    the grant.
 *  - `issuedFor`: whether a stored grant may be redeemed by the connection as it is now. A grant stored before
 *    bindings existed has none and is accepted (its next write binds it), so an upgrade asks no one to log in again.
 *  Every grant write records the current binding (grants.ts); renewal.ts refuses a grant bound elsewhere. */
import { createHash } from "node:crypto"
import type { Connection } from "./connection.ts"
import type { Grant } from "./connection-store.ts"
import * as Template from "./template.ts"

/** What a connection's grant is bound to (the same for equal provider, flag and non-secret inputs). */
export const bindingOf = (c: Connection): string => {
  const clear = [...c.inputs]
    .filter(([name, v]) => c.manifest.inputs.get(name)?.secret !== true && !Template.isSecret(v))
    .map(([name, v]) => [name, Template.reveal(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  const canonical = JSON.stringify(["tessera/grant-binding/1", c.manifest.id, c.allowInsecureHttp, clear])
  return createHash("sha256").update(canonical).digest("hex")
}

/** Whether the stored grant may be redeemed under `binding`: bound to it, or to nothing yet (stored before bindings). */
export const issuedFor = (g: Grant, binding: string): boolean => g.binding === undefined || g.binding === binding

/** Why a user's grant bound elsewhere is refused (never a secret). */
export const movedDetail = "the connection's provider or inputs changed since this grant was issued; authorize again"

/** Why another connection's grant bound elsewhere is not redeemed: its acquire flow replaces it (never a secret). */
export const supersededDetail =
  "the connection's provider or inputs changed since this grant was issued; the next renewal acquires a new one"

/** How a stored grant is shown for `c`, the connection as it is now (undefined when it is misconfigured: nothing to
 *  compare with), as renewal will treat it. Refused: needs_reauth as stored, or bound elsewhere before a renewal
 *  has marked it so, with what renewal does about it: `user` (a user's grant) must authorize again, any other
 *  connection acquires anew (also over a grant stored needs_reauth while it was a user's: a config edited since).
 *  `detail` says why when refused. */
export const shownAs = (
  g: Grant,
  c: Connection | undefined,
  user: boolean
): { readonly refused: boolean; readonly needsUser: boolean; readonly detail?: string | undefined } => {
  if (g.status === "needs_reauth") return { refused: true, needsUser: c === undefined || user, detail: g.detail }
  if (c === undefined || issuedFor(g, bindingOf(c))) return { refused: false, needsUser: false }
  return { refused: true, needsUser: user, detail: user ? movedDetail : supersededDetail }
}
