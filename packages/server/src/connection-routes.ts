/** The connections API: create, replace, show, delete and list connections at runtime (one per customer), beside
 *  the ones in the config file. Validation is the engine's (ConnectionRegistry), the same as the config file's,
 *  and reports every problem at once as a 422 with `errors: [{path, message}]`.
 *
 *  Keys are scoped: `connections:read` to show and list, `connections:write` to put and delete. A key with a tag
 *  selector sees only connections carrying its tags (app.ts answers 404 for the others before a handler runs),
 *  lists only those, and may only write connections that carry them, whose endpoints are not on loopback or private
 *  addresses (unless `server.tenant_private_targets`; private-target.ts in the engine). */
import * as ByteSize from "effect/ByteSize"
import * as Effect from "effect/Effect"
import * as HttpIncomingMessage from "effect/http/HttpIncomingMessage"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { TokenError, type ConnectionRegistry } from "@tessera/engine"
import * as Access from "./access.ts"
import type * as ApiKeyAuth from "./api-key-auth.ts"
import { Refusal } from "./problem.ts"
import { RequestContext } from "./request-context.ts"
import type { Handler, ResponseDoc, RouteSpec } from "./routes.ts"

const noStore = { "cache-control": "no-store" }

/** A connection's JSON is small; anything larger is not one. */
export const maxBodyBytes = 64 * 1024

const problem = (description: string): ResponseDoc => ({
  description,
  schema: "Problem",
  mediaType: "application/problem+json"
})

const nameParam = Effect.map(HttpRouter.params, (p) => p["name"] ?? "")

/** The request's JSON body (`what`: how a refusal names it), at most `maxBodyBytes`. */
export const readJson = (what = "the connection") =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const type = request.headers["content-type"] ?? ""
    if (!/^application\/(?:[a-z0-9.+-]*\+)?json\b/i.test(type))
      return yield* new Refusal({ code: "BadRequest", detail: `send ${what} as application/json` })
    const length = Number(request.headers["content-length"] ?? "0")
    if (length > maxBodyBytes)
      return yield* new Refusal({ code: "PayloadTooLarge", detail: `${what} is at most ${maxBodyBytes} bytes` })
    return yield* request.json.pipe(
      Effect.provideService(HttpIncomingMessage.MaxBodySize, ByteSize.bytes(maxBodyBytes)),
      Effect.catch(() =>
        Effect.fail(
          new Refusal({ code: "BadRequest", detail: `the body is not JSON, or larger than ${maxBodyBytes} bytes` })
        )
      )
    )
  })

/** The request's connection registry and its `:name`: what every handler of one connection starts from. */
const target = Effect.gen(function* () {
  const ctx = yield* RequestContext
  return { ctx, name: yield* nameParam, registry: ctx.generation.engine.registry }
})

/** The router found the name free, or the key's own, before the body was read; a body takes as long as its sender
 *  likes, so that is decided again once it has arrived. Else a tenant holding a PUT open would replace, with its
 *  own inputs and tags, the connection another tenant created meanwhile. (What is left is the store's round trip
 *  between this look-up and the write.) */
const stillTheKeys = (
  principal: ApiKeyAuth.Principal | undefined,
  registry: ConnectionRegistry.Registry,
  name: string
) =>
  Effect.gen(function* () {
    if (!principal || !Access.needsTags(principal)) return
    const found = yield* registry.find(name)
    const tags = found === undefined ? undefined : found._tag === "Found" ? found.connection.tags : found.tags
    if (tags !== undefined && !principal.sees(tags)) return yield* unknown(name)
  })

const put: Handler = () =>
  Effect.gen(function* () {
    const { ctx, name, registry } = yield* target
    const body = yield* readJson()
    yield* stillTheKeys(ctx.principal, registry, name)
    // A tenant's key may not point a connection at this machine or its private network (SSRF), unless allowed.
    const tenant = ctx.principal !== undefined && Access.needsTags(ctx.principal)
    const r = yield* registry.put(name, body, {
      requiredTags: ctx.principal?.tags,
      refusePrivateTargets: tenant && !ctx.generation.config.server.tenantPrivateTargets
    })
    return HttpServerResponse.jsonUnsafe(r.view, { status: r.created ? 201 : 200, headers: noStore })
  })

const show: Handler = () =>
  Effect.gen(function* () {
    const { name, registry } = yield* target
    const view = yield* registry.view(name)
    return view ? HttpServerResponse.jsonUnsafe(view, { headers: noStore }) : yield* unknown(name)
  })

const remove: Handler = () =>
  Effect.gen(function* () {
    const { name, registry } = yield* target
    return (yield* registry.remove(name)) ? HttpServerResponse.empty({ status: 204 }) : yield* unknown(name)
  })

const unknown = (name: string) => Effect.fail(new TokenError.UnknownConnection({ connection: name, known: [] }))

/** `tag=k:v` (repeatable), `limit`, `cursor`. */
export const listQuery = (url: string): { tags: Record<string, string>; limit?: number; cursor?: string } | Refusal => {
  const params = new URL(url, "http://localhost").searchParams
  const tags: Record<string, string> = {}
  for (const t of params.getAll("tag")) {
    const i = t.indexOf(":")
    if (i <= 0) return new Refusal({ code: "BadRequest", detail: `tag=${t}: write tag=name:value` })
    const k = t.slice(0, i)
    const v = t.slice(i + 1)
    if (Object.hasOwn(tags, k) && tags[k] !== v) tags[k] = "\u0000no match"
    else tags[k] = v
  }
  const limit = params.get("limit")
  const cursor = params.get("cursor")
  if (limit !== null && !/^\d{1,4}$/.test(limit))
    return new Refusal({ code: "BadRequest", detail: "limit is a whole number from 1 to 1000" })
  return {
    tags,
    ...(limit !== null ? { limit: Number(limit) } : {}),
    ...(cursor !== null ? { cursor } : {})
  }
}

/** The key's selector narrows every list: a conflicting query tag matches nothing (a value with U+0000, which no
 *  stored tag holds: the registry then asks no store). */
export const narrowed = (
  query: Readonly<Record<string, string>>,
  principal: ApiKeyAuth.Principal | undefined
): Record<string, string> => {
  const tags = { ...query }
  for (const [k, v] of Object.entries(principal?.tags ?? {}))
    tags[k] = !Object.hasOwn(tags, k) || tags[k] === v ? v : "\u0000no match"
  return tags
}

const list: Handler = () =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    const request = yield* HttpServerRequest.HttpServerRequest
    const q = listQuery(request.url)
    if (q instanceof Refusal) return yield* q
    const principal = ctx.principal
    const tags = narrowed(q.tags, principal)
    const page: ConnectionRegistry.ListPage = yield* ctx.generation.engine.registry
      .list({ ...q, tags, only: principal?.allowlist })
      .pipe(
        Effect.catchTag("ConnectionInvalid", (e) =>
          Effect.fail(
            new Refusal({ code: "BadRequest", detail: e.errors.map((x) => `${x.path}: ${x.message}`).join("; ") })
          )
        )
      )
    const items = principal ? page.items.filter((v) => principal.allows(v.name)) : page.items
    return HttpServerResponse.jsonUnsafe({ items, next_cursor: page.next_cursor }, { headers: noStore })
  })

const failures: Readonly<Record<number, ResponseDoc>> = {
  401: problem("No API key, or a wrong one (code Unauthorized)."),
  403: problem("The key lacks the scope, or its allowlist excludes the connection (code Forbidden)."),
  404: problem("No such connection, or one this key's tags do not reach (code UnknownConnection)."),
  503: problem("The connection store is unavailable (code ConnectionStoreError).")
}

export const connectionRoutes: ReadonlyArray<RouteSpec> = [
  {
    method: "GET",
    path: "/v1/connections",
    operationId: "listConnections",
    tag: "connections",
    access: "key",
    scope: "connections:read",
    summary: "List connections",
    description:
      "Config-file and stored connections in name order (byte order), `limit` per page (default 100, at most 1000); " +
      "`next_cursor` is null on the last page. `tag=name:value` (repeatable) filters; a key with tags sees only its own.",
    responses: {
      200: { description: "A page of connections.", schema: "ConnectionList" },
      400: problem("A malformed tag, limit or cursor (code BadRequest)."),
      ...failures
    },
    handler: list
  },
  {
    method: "GET",
    path: "/v1/connections/:name",
    operationId: "getConnection",
    tag: "connections",
    access: "key",
    scope: "connections:read",
    summary: "Show a connection",
    description: "Provider, tags, inputs (a secret input shows as ***), source (api or config), times.",
    responses: { 200: { description: "The connection.", schema: "Connection" }, ...failures },
    handler: show
  },
  {
    method: "PUT",
    path: "/v1/connections/:name",
    operationId: "putConnection",
    tag: "connections",
    access: "key",
    scope: "connections:write",
    summary: "Create or replace a connection",
    description:
      "Body: {provider, inputs, tags, allow_insecure_http}. Values are taken literally (no ${env:} or ${file:}). " +
      "Replacing a connection forgets its cached tokens on every instance. A name from the config file is a 409.",
    requestSchema: "ConnectionPut",
    responses: {
      200: { description: "Replaced.", schema: "Connection" },
      201: { description: "Created.", schema: "Connection" },
      400: problem("Not JSON (code BadRequest)."),
      409: problem("The name belongs to a config-file connection (code ConnectionConflict)."),
      413: problem("Larger than 64 KiB (code PayloadTooLarge)."),
      422: problem(
        "Every problem with the connection, in `errors` (code ConnectionInvalid); for a key with tags, also an endpoint " +
          "on a loopback or private address unless server.tenant_private_targets is set."
      ),
      ...failures
    },
    handler: put
  },
  {
    method: "DELETE",
    path: "/v1/connections/:name",
    operationId: "deleteConnection",
    tag: "connections",
    access: "key",
    scope: "connections:write",
    summary: "Delete a connection",
    description: "Its tokens are forgotten on every instance. A config-file connection is a 409.",
    responses: {
      204: { description: "Deleted." },
      409: problem("The name belongs to a config-file connection (code ConnectionConflict)."),
      ...failures
    },
    handler: remove
  }
]
