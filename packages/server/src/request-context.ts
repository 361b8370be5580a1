/** What the server knows about one request while handling it: its id, the engine generation it leased, and what
 *  the access log and metrics report about it (route template, connection, key name).
 *
 *  The Node request listener creates it before the Effect app runs (so the lease and the log line cover the whole
 *  exchange, body streaming included) and attaches it to the Node request; the app's outermost middleware
 *  provides it as the `RequestContext` service. */
import * as Context from "effect/Context"
import type * as Tracer from "effect/Tracer"
import { randomBytes } from "node:crypto"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { Principal } from "./api-key-auth.ts"
import type { Generation } from "./generations.ts"

export interface RequestMeta {
  readonly id: string
  readonly generation: Generation
  /** The matched route template, e.g. `/v1/connections/:name/token`. */
  route?: string | undefined
  connection?: string | undefined
  /** Who the API key says the caller is (its name is logged). */
  principal?: Principal | undefined
  /** The request's server span when tracing is on (telemetry.ts); the engine's spans become its children. */
  readonly span?: Tracer.Span | undefined
}

/** Labels a request for the access log and metrics: the route template it matched and its connection. The router
 *  and the token fast path both label through this. */
export const label = (meta: RequestMeta, route: string, connection: string | undefined): void => {
  meta.route = route
  if (connection !== undefined) meta.connection = connection
}

export class RequestContext extends Context.Service<RequestContext, RequestMeta>()("tessera/server/RequestContext") {}

const sane = /^[A-Za-z0-9._-]{1,128}$/

// A new id is this process's random prefix (96 bits, so ids do not repeat across instances and restarts) and a
// sequence number: unique without a random draw and a UUID's formatting on every request.
const prefix = randomBytes(12).toString("base64url")
let sequence = 0

/** The caller's `X-Request-Id` when it is sane (1-128 of [A-Za-z0-9._-], so it is safe in logs and headers), else
 *  a new one (`<16 chars of this process's random prefix>.<sequence in base 36>`). Either way only [A-Za-z0-9._-]. */
export const requestId = (incoming: string | ReadonlyArray<string> | undefined): string =>
  typeof incoming === "string" && sane.test(incoming) ? incoming : `${prefix}.${(sequence++).toString(36)}`

/** Sets the answer's `X-Request-Id` before a problem or the router writes it (the fast paths write it in their one
 *  `writeHead`, which is cheaper than a header set before). */
export const stamp = (res: ServerResponse, id: string): void => {
  if (!res.headersSent && !res.hasHeader("x-request-id")) res.setHeader("x-request-id", id)
}

const attached = new WeakMap<IncomingMessage, RequestMeta>()

/** @internal */
export const attach = (req: IncomingMessage, meta: RequestMeta): void => {
  attached.set(req, meta)
}

/** @internal */
export const of = (req: IncomingMessage): RequestMeta | undefined => attached.get(req)
