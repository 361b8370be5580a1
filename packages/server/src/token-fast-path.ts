/** Answers `GET /v1/connections/:name/token` straight from the node:http listener when the caller's key allows it
 *  and the engine holds a fresh token (`engine.peek`): the hottest route skips Effect's router, which costs about
 *  4x the rest of the request (bench/README.md, "server"). Anything else (a miss, a bad or missing key, another
 *  route) returns false and goes to the router, so refusals and problems keep their one code path. The request
 *  guard (Host, Origin) runs before this, in server.ts, and so does the net that turns a throw here into a 500. */
import { Engine } from "@tessera/engine"
import type * as http from "node:http"
import * as ApiKeyAuth from "./api-key-auth.ts"
import type { Generation } from "./generations.ts"
import type { RequestMeta } from "./request-context.ts"

const tokenPath = /^\/v1\/connections\/([A-Za-z0-9][A-Za-z0-9_.-]*)\/token(?:\?.*)?$/
export const route = "/v1/connections/:name/token"

/** A header as the router sees it: the first value, and an empty one counts as absent. */
const header = (req: http.IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name]
  const first = Array.isArray(v) ? v[0] : (v as string | undefined)
  return first === "" ? undefined : first
}

export const tryAnswer = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  generation: Generation,
  meta: RequestMeta
): boolean => {
  if (req.method !== "GET") return false
  const m = tokenPath.exec(req.url ?? "")
  if (!m) return false
  const name = m[1]!
  let principal = ApiKeyAuth.anonymous
  if (generation.auth.enabled) {
    const p = generation.auth.verify(ApiKeyAuth.presentedKey((name) => header(req, name), "key"))
    if (!p || !p.allows(name) || !p.can("token")) return false
    // Tag-scoped keys: only a connection already resolved here, and within the key's tags; the router answers the rest.
    const c = generation.engine.registry.peek(name)
    if (!c || !p.sees(c.tags)) return false
    principal = p
  }
  const hit = generation.engine.peek(name)
  if (!hit) return false
  meta.route = route
  meta.connection = name
  meta.principal = principal
  const body = JSON.stringify(Engine.toJson(hit))
  res.writeHead(200, {
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
  return true
}
