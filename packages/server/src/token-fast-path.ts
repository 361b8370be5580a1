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

const table = matcher(routes)
const tokenRoute: RouteSpec = routes.find((r) => r.operationId === "getToken")!
export const route = tokenRoute.path

/** The router's access check (access.ts) for the token route; false where the router must answer (a refusal, or a
 *  tag-scoped key asking for a connection not resolved here). */
const admitted = (req: http.IncomingMessage, generation: Generation, name: string) => {
  const { auth, config, engine } = generation
  const caller = Access.identify(tokenRoute, config.server.publicRoutes, auth, (n) => Http.header(req.headers, n))
  if (caller._tag !== "Principal") return caller._tag === "Open" ? { principal: undefined } : undefined
  const p = caller.principal
  if (Access.allowed(p, name)) return undefined
  const tags = Access.needsTags(p) ? engine.registry.peek(name)?.tags : undefined
  if (Access.needsTags(p) && tags === undefined) return undefined
  return Access.permitted(tokenRoute, p, name, tags) ? undefined : { principal: p }
}

export const tryAnswer = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  generation: Generation,
  meta: RequestCtx.RequestMeta
): boolean => {
  if (req.method !== "GET") return false
  const found = table.match("GET", req.url ?? "")
  const name = found?.handler === tokenRoute ? found.params["name"] : undefined
  if (name === undefined) return false
  const admission = admitted(req, generation, name)
  if (!admission) return false
  const hit = generation.engine.peek(name)
  if (!hit) return false
  RequestCtx.label(meta, tokenRoute.path, name)
  meta.principal = admission.principal
  const body = JSON.stringify(Engine.toJson(hit))
  res.writeHead(200, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
  return true
}
