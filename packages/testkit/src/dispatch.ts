/** Handling one request: route, read and record it, enforce framing (405, 413, 404), apply any fault, answer. */
import type { IncomingMessage, ServerResponse } from "node:http"
import { apiReply } from "./api.ts"
import type { Clock } from "./clock.ts"
import { deliver, gone, NORMAL, type Delivery } from "./deliver.ts"
import { echoReply, faultReply } from "./fault-replies.ts"
import type { FaultQueues } from "./faults.ts"
import { headerRecord, mediaType, readBody } from "./http-util.ts"
import { routeFor } from "./providers/index.ts"
import { FORM, JSON_TYPE, type ExpiresInOverride, type ProviderSpec } from "./providers/provider.ts"
import { jsonReply, type Reply } from "./reply.ts"
import type { Sleeper } from "./timers.ts"
import type { TokenStore } from "./tokens.ts"
import type { ProviderId, RecordedRequest } from "./types.ts"

/** Request bodies above this many bytes are answered 413. */
export const BODY_LIMIT = 64 * 1024
/** Past this many bytes the body is not even drained: the connection is dropped. */
const DRAIN_CAP = 8 * 1024 * 1024

export interface SandboxState {
  readonly clock: Clock
  readonly tokens: TokenStore
  readonly faults: FaultQueues
  readonly sleeper: Sleeper
  readonly url: string
  ttlOf(provider: ProviderId): number
  record(request: RecordedRequest): void
}

function withHeaders(reply: Reply, headers: Record<string, string>): Reply {
  return { ...reply, headers: { ...reply.headers, ...headers } }
}

function recordOf(
  spec: ProviderSpec,
  kind: "token" | "api",
  req: IncomingMessage,
  headers: Record<string, string>,
  rawBody: string
): RecordedRequest {
  const record: RecordedRequest = {
    provider: spec.id,
    kind,
    method: req.method ?? "GET",
    path: req.url ?? "/",
    headers,
    rawBody,
    status: 0
  }
  const type = mediaType(headers["content-type"])
  if (type === FORM) record.form = Object.fromEntries(new URLSearchParams(rawBody))
  if (type === JSON_TYPE && rawBody !== "") {
    try {
      record.json = JSON.parse(rawBody)
    } catch {
      // left unset: the body is in rawBody
    }
  }
  return record
}

export async function dispatch(state: SandboxState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://sandbox.invalid")
  const route = routeFor(url.pathname)
  if (route === undefined) {
    const reply = jsonReply(404, {
      error: "not_found",
      error_description: `No sandbox provider serves ${url.pathname}.`
    })
    await deliver(res, reply, state.clock, state.sleeper)
    return
  }
  const { spec, kind } = route
  const body = await readBody(req, BODY_LIMIT, DRAIN_CAP)
  const headers = headerRecord(req.headers)
  const contentType = mediaType(headers["content-type"])
  const record = recordOf(spec, kind, req, headers, body.text)
  state.record(record)

  const send = async (reply: Reply, delivery: Delivery = NORMAL): Promise<void> => {
    record.status = gone(res) ? 0 : reply.status
    await deliver(res, reply, state.clock, state.sleeper, delivery)
  }

  if (body.tooLarge) {
    return send(
      withHeaders(spec.error(413, "request_too_large", `The request body exceeds ${BODY_LIMIT} bytes.`), {
        Connection: "close"
      })
    )
  }
  if (route.notFound) return send(spec.error(404, "not_found", `Nothing is served at ${url.pathname}.`))
  if (kind === "token" && record.method !== "POST") {
    return send(
      withHeaders(spec.error(405, "invalid_request", "The token endpoint only accepts POST."), { Allow: "POST" })
    )
  }
  if (kind === "token" && url.search !== "") {
    return send(
      spec.error(400, "invalid_request", "Token request parameters belong in the body, not the query string.")
    )
  }

  const answer = (expiresIn: ExpiresInOverride | undefined): Reply =>
    kind === "token"
      ? spec.token(
          { headers, rawBody: body.text, contentType },
          { url: state.url, ttl: state.ttlOf(spec.id), tokens: state.tokens, expiresIn }
        )
      : apiReply(spec, { method: record.method, url, headers, rawBody: body.text, contentType }, state.tokens)

  const fault = state.faults.take(spec.id, kind)
  if (fault === undefined) return send(answer(undefined))
  const replacement = faultReply(fault, spec, kind)
  if (replacement !== undefined) return send(replacement)
  switch (fault.type) {
    case "reset":
      record.status = 0
      req.socket.destroy()
      return
    case "delay":
      await state.sleeper.sleep(fault.ms)
      if (gone(res)) return // the client gave up (or the sandbox closed): the request is not processed
      return send(answer(undefined))
    case "slowBody":
      return send(answer(undefined), { mode: "slowBody", ms: fault.ms })
    case "resetMidBody":
      return send(answer(undefined), { mode: "resetMidBody" })
    case "wrongContentType":
      return send(withHeaders(answer(undefined), { "Content-Type": "text/plain; charset=utf-8" }))
    case "expiresIn":
      return send(answer(kind === "token" ? { value: fault.value } : undefined))
    case "echo":
      return send(echoReply(fault.status ?? 400, spec, record))
    default:
      return send(answer(undefined))
  }
}
