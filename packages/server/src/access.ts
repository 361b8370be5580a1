/** Who may call a route, decided once for the router (app.ts `guarded`) and the token fast path
 *  (token-fast-path.ts), so the two can never disagree. In the router's order:
 *  1. `identify`: a route that is public or opened by `server.public_routes` needs no key; without configured keys
 *     every caller is `anonymous`; else the presented key must be valid (401);
 *  2. `allowed`: the key's allowlist must name the connection (403);
 *  3. `permitted`: the key needs the route's scope (403, whatever the connection: the scope does not depend on
 *     it, so the answer says nothing about which connections exist), and a route that shows every connection at
 *     once (`/metrics`) needs a key that sees them all (403 for one limited by its allowlist or its tags, whose
 *     tenant would learn about the others' providers, traffic and failures); then a connection outside the key's tags
 *     does not exist for it (404, the same as an unknown name, on every route, so a key cannot learn that another
 *     tenant's connection is there). Tags first would answer 404 there and 403 for an unknown name. For such a key
 *     a name that does not exist is answered there too (but for a PUT, which creates it), before any check of the
 *     handler's own could answer it otherwise.
 *  Step 3 needs the connection's tags: the router looks them up, the fast path takes those of a connection it
 *  already holds (and leaves any other to the router). */
import { TokenError, type Config } from "@tessera/engine"
import * as ApiKeyAuth from "./api-key-auth.ts"
import * as Problem from "./problem.ts"
import type { RouteSpec } from "./routes.ts"

/** Whether a route answers callers without a key, under a config's `server.public_routes`. The router (app.ts),
 *  the fast paths and the OpenAPI document all ask this. Here, not in routes.ts, so that the route modules can use
 *  the access rules without an import cycle. */
export const isOpen = (spec: RouteSpec, publicRoutes: ReadonlyArray<Config.PublicRoute>): boolean =>
  spec.access === "public" ||
  spec.access === "link" ||
  (spec.publicAs !== undefined && publicRoutes.includes(spec.publicAs))

/** The caller of a route: no one to check (an open route), or a principal, or a refusal. */
export type Caller =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Principal"; readonly principal: ApiKeyAuth.Principal }
  | { readonly _tag: "Refused"; readonly refusal: Problem.Refusal }

const open: Caller = { _tag: "Open" }
const anonymous: Caller = { _tag: "Principal", principal: ApiKeyAuth.anonymous }

export const identify = (
  spec: RouteSpec,
  publicRoutes: ReadonlyArray<Config.PublicRoute>,
  auth: ApiKeyAuth.ApiKeyAuth,
  header: (name: string) => string | undefined
): Caller => {
  if (spec.access === "public" || spec.access === "link" || isOpen(spec, publicRoutes)) return open
  if (!auth.enabled) return anonymous
  const access = spec.access
  const presented = ApiKeyAuth.presentedKey(header, access)
  const principal = auth.verify(presented)
  if (principal) return { _tag: "Principal", principal }
  const how =
    access === "proxyKey"
      ? "in the X-Tessera-Key header (Authorization is forwarded to the API, not read)"
      : access === "pageKey"
        ? "as the password your browser asks for (HTTP Basic), as Authorization: Bearer <key> or in X-Tessera-Key"
        : "as Authorization: Bearer <key> or in X-Tessera-Key"
  return {
    _tag: "Refused",
    refusal: new Problem.Refusal({
      code: "Unauthorized",
      detail: presented === undefined ? `send a tessera API key ${how}` : "the API key is not valid",
      ...(access === "pageKey" ? { challenge: "basic" as const } : {})
    })
  }
}

/** The key's allowlist names the connection, else a 403. */
export const allowed = (principal: ApiKeyAuth.Principal, name: string | undefined): Problem.Refusal | undefined =>
  name === undefined || principal.allows(name)
    ? undefined
    : new Problem.Refusal({
        code: "Forbidden",
        connection: name,
        detail: `API key "${principal.name}" may not use connection "${name}"`
      })

/** Whether `permitted` needs the connection's tags: only for a key with tags. */
export const needsTags = (principal: ApiKeyAuth.Principal): boolean => Object.keys(principal.tags).length > 0

/** Whether a key sees only some connections: an allowlist other than `*`, or tags (a tenant's key). */
export const isLimited = (principal: ApiKeyAuth.Principal): boolean =>
  principal.allowlist !== undefined || needsTags(principal)

/** The key has the route's scope, may see what the route shows, and the connection exists for the key (`tags`:
 *  the connection's, undefined when there is none; only the router, which has looked, passes undefined for a key
 *  with tags). */
export const permitted = (
  spec: RouteSpec,
  principal: ApiKeyAuth.Principal,
  name: string | undefined,
  tags: Readonly<Record<string, string>> | undefined
): Problem.Refusal | TokenError.UnknownConnection | undefined => {
  if (spec.scope !== undefined && !principal.can(spec.scope))
    return new Problem.Refusal({
      code: "Forbidden",
      ...(name !== undefined ? { connection: name } : {}),
      detail: `API key "${principal.name}" lacks the scope "${spec.scope}" (server.api_keys[].scopes)`
    })
  if (spec.everyConnection && isLimited(principal))
    return new Problem.Refusal({
      code: "Forbidden",
      detail: `API key "${principal.name}" sees only some connections (server.api_keys[].connections or tags), and ${spec.path} shows every connection's; use a key with connections: ["*"] and no tags`
    })
  if (name !== undefined && tags !== undefined && needsTags(principal) && !principal.sees(tags))
    return new TokenError.UnknownConnection({ connection: name, known: [] })
  // A name that does not exist is that same 404 here, before the handler checks anything of its own (the proxy's
  // path, say): else such a check would answer a free name and not another tenant's, telling the two apart. A PUT
  // on a free name creates the connection (README: a write key can tell a taken name from a free one).
  if (name !== undefined && tags === undefined && needsTags(principal) && spec.method !== "PUT")
    return new TokenError.UnknownConnection({ connection: name, known: [] })
  return undefined
}

/** The whole check, synchronously, for the fast paths (token-fast-path.ts, proxy-fast-path.ts): the caller to
 *  serve (`principal` undefined for an open route), or undefined where the router must answer instead (a refusal,
 *  or a tag-scoped key asking for a connection whose tags `tagsOf` does not hold here). The router then runs the
 *  same three steps and gives the refusal. */
export const admit = (
  spec: RouteSpec,
  publicRoutes: ReadonlyArray<Config.PublicRoute>,
  auth: ApiKeyAuth.ApiKeyAuth,
  header: (name: string) => string | undefined,
  name: string,
  tagsOf: (name: string) => Readonly<Record<string, string>> | undefined
): { readonly principal: ApiKeyAuth.Principal | undefined } | undefined => {
  const caller = identify(spec, publicRoutes, auth, header)
  if (caller._tag !== "Principal") return caller._tag === "Open" ? { principal: undefined } : undefined
  const p = caller.principal
  if (allowed(p, name)) return undefined
  const tags = needsTags(p) ? tagsOf(name) : undefined
  if (needsTags(p) && tags === undefined) return undefined
  return permitted(spec, p, name, tags) ? undefined : { principal: p }
}
