/** Answers `GET /v1/connections/:name/token` straight from the node:http listener when the caller's key allows it
 *  and the engine holds a fresh token (`engine.peek`): the hottest route skips Effect's router, which costs about
 *  4x the rest of the request (bench/README.md, "server"). It shares with the router the route match (routes.ts
 *  `matcher`), the access check (access.ts) and the labels (request-context.ts `label`). Anything else (a miss, a
 *  bad or missing key, another route) returns false and goes to the router, so refusals and problems keep their
 *  one code path. The request
 *  guard (Host, Origin) runs before this, in server.ts, and so does the net that turns a throw here into a 500. */
import { Engine, Http } from "@tessera/engine"
import type * as http from "node:http"
import * as Access from "./access.ts"
import type { Generation } from "./generations.ts"
import * as RequestCtx from "./request-context.ts"
import { matcher, routes, type RouteSpec } from "./routes.ts"

/** The route table's matcher, shared by the fast paths: server.ts matches each request once, without its query. */
export const table = matcher(routes)

/** The route a request goes to, matched on its path alone (the query is not parsed). */
export const match = (req: http.IncomingMessage) => {
  const url = req.url ?? ""
  const q = url.indexOf("?")
  return table.match((req.method ?? "GET").toUpperCase(), q === -1 ? url : url.slice(0, q))
}
export type Match = ReturnType<typeof match>

const tokenRoute: RouteSpec = routes.find((r) => r.operationId === "getToken")!
export const route = tokenRoute.path

// One body per hit result (the engine reuses one per cached token): a hit encodes nothing.
const bodies = new WeakMap<Engine.TokenResult, { readonly body: Buffer; readonly headers: Record<string, string> }>()
const bodyOf = (hit: Engine.TokenResult) => {
  let b = bodies.get(hit)
  if (!b) {
    const body = Buffer.from(JSON.stringify(Engine.toJson(hit)))
    b = {
      body,
      headers: {
        "content-type": "application/json",
        "cache-control": "no-store",
        "content-length": String(body.length)
      }
    }
    bodies.set(hit, b)
  }
  return b
}

/** The access check (access.ts `admit`) of a fast path's request, with the generation's keys and connection tags. */
export const admit = (spec: RouteSpec, req: http.IncomingMessage, generation: Generation, name: string) =>
  Access.admit(
    spec,
    generation.config.server.publicRoutes,
    generation.auth,
    (n) => Http.header(req.headers, n),
    name,
    (n) => generation.engine.registry.peek(n)?.tags
  )

export const tryAnswer = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  generation: Generation,
  meta: RequestCtx.RequestMeta,
  found: Match = match(req)
): boolean => {
  if (req.method !== "GET") return false
  const name = found?.handler === tokenRoute ? found.params["name"] : undefined
  if (name === undefined) return false
  const admission = admit(tokenRoute, req, generation, name)
  if (!admission) return false
  const hit = generation.engine.peek(name)
  if (!hit) return false
  RequestCtx.label(meta, tokenRoute.path, name)
  meta.principal = admission.principal
  res.writeHead(200, bodyOf(hit).headers)
  res.end(bodyOf(hit).body)
  return true
}
