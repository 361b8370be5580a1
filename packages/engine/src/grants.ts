/** Durable grants: a connection's refresh token kept in the connection store (connection-store.ts `getGrant` /
 *  `putGrant`, compare-and-set on the grant's version), so that it survives a restart, a Redis flush or a lost token
 *  cache. A user's grant (authorization code, device flow) has no other way back; with a connection store
 *  configured, every connection's refresh token (a password grant's too) is kept here as well.
 *
 *  - `save` writes a grant whatever is stored (a new login, or a fresh acquire), retrying its CAS on a race.
 *  - Rotation is claimed before a refresh token is redeemed: `claim` bumps the grant's version with a lease (its
 *    `detail` says `rotating until <epoch ms> by <owner>`), so of several instances sharing the store only the one
 *    whose CAS won redeems it; the others wait for its result (`claimOf`) and then use the rotated token. A claimer
 *    that dies frees the claim when its lease ends, or at once when its name is watched (`watchedOwner`) and the
 *    store's liveness knows its process dead (connection-store.ts `liveness`: PostgreSQL). `complete` writes the
 *    rotated token under the claim.
 *  - `needsReauth` marks a grant whose refresh token the provider refused (or that was issued for another provider
 *    or inputs): only a new authorization restores it.
 *  Every write records the binding of the connection as it is now (`Bound`, grant-binding.ts): a grant bound
 *  elsewhere is never redeemed. The policy that uses these is renewal.ts. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { Connection } from "./connection.ts"
import type { ConnectionStoreError, ConnectionStoreShape, Grant } from "./connection-store.ts"
import { bindingOf, issuedFor } from "./grant-binding.ts"
import { StoreError } from "./token-error.ts"

export const storeError = (e: ConnectionStoreError) =>
  new StoreError({ store: `connections (${e.store})`, operation: e.operation, reason: e.reason })

const claimPattern = /^rotating until (\d{1,16}) by ([A-Za-z0-9_-]{1,64})$/

/** A rotation in progress, read from a grant. */
export const claimOf = (g: Grant): { readonly until: number; readonly owner: string } | undefined => {
  const m = g.detail === undefined ? null : claimPattern.exec(g.detail)
  return m ? { until: Number(m[1]), owner: m[2]! } : undefined
}

/** A claimer's name while the store's liveness marks its process alive: `live_` and its owner id (12 characters).
 *  A claim under any other name (a process whose mark was not held when it claimed, or an older version's owner,
 *  12 characters) is waited on until its lease ends. The claim's text keeps its form, so older versions sharing the
 *  store read such a claim as before. */
export const watchedOwner = (owner: string) => `live_${owner}`

export const isWatched = (owner: string) => /^live_[A-Za-z0-9_-]{12}$/.test(owner)

/** Whose grant a write is: the connection's name, and its binding as it is now. */
export interface Bound {
  readonly name: string
  readonly binding: string
}

export const bound = (c: Connection): Bound => ({ name: c.name, binding: bindingOf(c) })

const lift = <A>(e: Effect.Effect<A, ConnectionStoreError>) => Effect.mapError(e, storeError)

export const read = (store: ConnectionStoreShape, name: string) => lift(store.getGrant(name))

/** Stores `refreshToken` as the connection's active grant, replacing any (retries lost races a few times). */
export const save = (
  store: ConnectionStoreShape,
  at: Bound,
  refreshToken: Redacted.Redacted<string>,
  scope?: string | undefined
): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    for (let i = 0; i < 8; i++) {
      const current = yield* read(store, at.name)
      // A grant issued for other endpoints lends nothing to its replacement, its scope neither.
      const kept = current && issuedFor(current, at.binding) ? current.scope : undefined
      const ok = yield* lift(
        store.putGrant(
          at.name,
          { refreshToken, scope: scope ?? kept, status: "active", binding: at.binding },
          current?.version
        )
      )
      if (ok) return
    }
    return yield* new StoreError({
      store: `connections (${store.kind})`,
      operation: "put grant",
      reason: "the grant kept changing under concurrent writers"
    })
  })

/** Claims the rotation of `grant` for `leaseMs`: true when this writer won, and the grant's version is then
 *  `grant.version + 1`. */
export const claim = (store: ConnectionStoreShape, at: Bound, grant: Grant, claimer: string, until: number) =>
  lift(
    store.putGrant(
      at.name,
      {
        refreshToken: grant.refreshToken,
        scope: grant.scope,
        status: "active",
        detail: `rotating until ${until} by ${claimer}`,
        binding: at.binding
      },
      grant.version
    )
  )

/** Ends a claim (version `claimed`): the rotated refresh token (or the same one, when the provider kept it). */
export const complete = (
  store: ConnectionStoreShape,
  at: Bound,
  claimed: number,
  refreshToken: Redacted.Redacted<string>,
  scope: string | undefined
) => lift(store.putGrant(at.name, { refreshToken, scope, status: "active", binding: at.binding }, claimed))

/** Marks the grant refused: the refresh token is kept for the record, never used again. `expected`: the version the
 *  write is compared with (the claim's, or the grant's as read). */
export const needsReauth = (store: ConnectionStoreShape, at: Bound, expected: number, grant: Grant, detail: string) =>
  lift(
    store.putGrant(
      at.name,
      {
        refreshToken: grant.refreshToken,
        scope: grant.scope,
        status: "needs_reauth",
        detail,
        binding: at.binding
      },
      expected
    )
  )
