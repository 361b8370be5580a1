/** The emulated provider APIs: a Bearer check against issued tokens, then an echo of the request. */
import { bearerToken } from "./http-util.ts"
import { JSON_TYPE, type ProviderSpec } from "./providers/provider.ts"
import { jsonReply, type Reply } from "./reply.ts"
import type { TokenStore } from "./tokens.ts"

export interface ApiRequest {
  method: string
  url: URL
  headers: Record<string, string>
  rawBody: string
  contentType: string
}

function echoedBody(req: ApiRequest): unknown {
  if (req.rawBody === "") return null
  if (req.contentType === JSON_TYPE) {
    try {
      return JSON.parse(req.rawBody)
    } catch {
      return req.rawBody
    }
  }
  return req.rawBody
}

/** 200 {ok, method, path, query, body} for a valid unexpired Bearer token of this provider, else its 401. */
export function apiReply(spec: ProviderSpec, req: ApiRequest, tokens: TokenStore): Reply {
  const token = bearerToken(req.headers["authorization"])
  if (token === undefined || !tokens.isAccessValid(spec.id, token)) return spec.unauthorized()
  return jsonReply(200, {
    ok: true,
    method: req.method,
    path: req.url.pathname,
    query: Object.fromEntries(req.url.searchParams),
    body: echoedBody(req)
  })
}
