/** Durable grants: a connection's refresh token kept in the connection store (connection-store.ts `getGrant` /
 *  `putGrant`, compare-and-set on the grant's version), so that it survives a restart, a Redis flush or a lost token
 *  cache. A user's grant (authorization code, device flow) has no other way back; with a connection store
 *  configured, every connection's refresh token (a password grant's too) is kept here as well.
 *
 *  - `save` writes a grant whatever is stored (a new login, or a fresh acquire), retrying its CAS on a race.
 *  - Rotation is claimed before a refresh token is redeemed: `claim` bumps the grant's version with a lease (its
 *    `detail` says `rotating until <epoch ms> by <owner>`), so of several instances sharing the store only the one
 *    whose CAS won redeems it; the others wait for its result (`claimOf`) and then use the rotated token. A claimer
 *    that dies frees the claim when its lease ends. `complete` writes the rotated token under the claim.
 *  - `needsReauth` marks a grant whose refresh token the provider refused: only a new authorization restores it.
 *  The policy that uses these is renewal.ts. */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type { ConnectionStoreError, ConnectionStoreShape, Grant } from "./connection-store.ts"
import { StoreError } from "./token-error.ts"

export const storeError = (e: ConnectionStoreError) =>
  new StoreError({ store: `connections (${e.store})`, operation: e.operation, reason: e.reason })

const claimPattern = /^rotating until (\d{1,16}) by ([A-Za-z0-9_-]{1,64})$/

/** A rotation in progress, read from a grant. */
export const claimOf = (g: Grant): { readonly until: number; readonly owner: string } | undefined => {
  const m = g.detail === undefined ? null : claimPattern.exec(g.detail)
  return m ? { until: Number(m[1]), owner: m[2]! } : undefined
}

const lift = <A>(e: Effect.Effect<A, ConnectionStoreError>) => Effect.mapError(e, storeError)

export const read = (store: ConnectionStoreShape, name: string) => lift(store.getGrant(name))

/** Stores `refreshToken` as the connection's active grant, replacing any (retries lost races a few times). */
export const save = (
  store: ConnectionStoreShape,
  name: string,
  refreshToken: Redacted.Redacted<string>,
  scope?: string | undefined
): Effect.Effect<void, StoreError> =>
  Effect.gen(function* () {
    for (let i = 0; i < 8; i++) {
      const current = yield* read(store, name)
      const ok = yield* lift(
        store.putGrant(name, { refreshToken, scope: scope ?? current?.scope, status: "active" }, current?.version)
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
export const claim = (store: ConnectionStoreShape, name: string, grant: Grant, owner: string, until: number) =>
  lift(
    store.putGrant(
      name,
      {
        refreshToken: grant.refreshToken,
        scope: grant.scope,
        status: "active",
        detail: `rotating until ${until} by ${owner}`
      },
      grant.version
    )
  )

/** Ends a claim (version `claimed`): the rotated refresh token (or the same one, when the provider kept it). */
export const complete = (
  store: ConnectionStoreShape,
  name: string,
  claimed: number,
  refreshToken: Redacted.Redacted<string>,
  scope: string | undefined
) => lift(store.putGrant(name, { refreshToken, scope, status: "active" }, claimed))

/** Marks the grant refused: the refresh token is kept for the record, never used again. */
export const needsReauth = (store: ConnectionStoreShape, name: string, claimed: number, grant: Grant, detail: string) =>
  lift(
    store.putGrant(
      name,
      { refreshToken: grant.refreshToken, scope: grant.scope, status: "needs_reauth", detail },
      claimed
    )
  )
