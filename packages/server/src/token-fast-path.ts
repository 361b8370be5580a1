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
import type { Principal } from "./api-key-auth.ts"
import { matcher, routes, type RouteSpec } from "./routes.ts"

/** The route table's matcher, shared by the fast paths: server.ts matches each request once, without its query. */
export const table = matcher(routes)

// The last GET paths matched, with their routes: callers ask for the same few URLs over and over, and a repeat then
// skips the router's walk and its allocations. Bounded: paths up to 256 characters, and past 1024 of them the least
// recently used goes. Map order is the use order only once the bound is reached: a hit then moves its path to the
// end (a delete and a set, ~0.1 µs); below it nothing is evicted, so a hit stays one lookup.
const matchedGets = new Map<string, ReturnType<typeof table.match>>()
const matchedMax = 1024

/** The route a request goes to, matched on its path alone (the query is not parsed). */
export const match = (req: http.IncomingMessage) => {
  const url = req.url ?? ""
  const q = url.indexOf("?")
  const path = q === -1 ? url : url.slice(0, q)
  const m = req.method ?? "GET"
  const method = m === "GET" ? m : m.toUpperCase()
  if (method !== "GET" || path.length > 256) return table.match(method, path)
  const known = matchedGets.get(path)
  if (known !== undefined) {
    if (matchedGets.size >= matchedMax) {
      matchedGets.delete(path)
      matchedGets.set(path, known)
    }
    return known
  }
  const found = table.match(method, path)
  if (found === undefined) return undefined
  if (matchedGets.size >= matchedMax) matchedGets.delete(matchedGets.keys().next().value!)
  matchedGets.set(path, found)
  return found
}
export type Match = ReturnType<typeof match>

const tokenRoute: RouteSpec = routes.find((r) => r.operationId === "getToken")!
export const route = tokenRoute.path

// One body per hit result (the engine reuses one per cached token): a hit encodes nothing. Kept as a string:
// node:http then sends the head and the body in one write (a Buffer body is a second chunk, and a writev).
const bodies = new WeakMap<Engine.TokenResult, { readonly text: string; readonly length: string }>()
const bodyOf = (hit: Engine.TokenResult) => {
  let b = bodies.get(hit)
  if (!b) {
    const text = JSON.stringify(Engine.toJson(hit))
    b = { text, length: String(Buffer.byteLength(text)) }
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

/** What the access log and metrics learn from a request the fast path answered. */
export interface Answered {
  readonly connection: string
  readonly principal: Principal | undefined
  /** The cached token's result (one per token, reused by every hit). */
  readonly hit: Engine.TokenResult
}

/** Answers the request in full when it asks for a cached token it may have (its headers, `x-request-id` among
 *  them, in one `writeHead`), else returns undefined having written nothing. */
export const tryAnswer = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  generation: Generation,
  requestId: string,
  found: Match = match(req)
): Answered | undefined => {
  if (req.method !== "GET") return undefined
  const name = found?.handler === tokenRoute ? found.params["name"] : undefined
  if (name === undefined) return undefined
  const admission = admit(tokenRoute, req, generation, name)
  if (!admission) return undefined
  const hit = generation.engine.peek(name)
  if (!hit) return undefined
  const b = bodyOf(hit)
  res.writeHead(200, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-length": b.length,
    "x-request-id": requestId
  })
  res.end(b.text)
  return { connection: name, principal: admission.principal, hit }
}
