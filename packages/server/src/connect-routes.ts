/** The server's authorization-code connect flow (RFC 6749 §4.1 with PKCE S256, RFC 7636; RFC 9700): an app asks
 *  for a short-lived link for one connection, sends its user there, and the user ends on a small result page
 *  (or back at the app) once the provider's grant is stored in the connection store.
 *
 *  - `POST /v1/connect-links` (API key with `connections:write`; a connection outside the key's tags is a 404, as
 *    on every connections route) answers `{url, expires_at}`: `<public_url>/v1/connect/<name>?link=<sealed>`.
 *  - `GET /v1/connect/:name?link=` opens the link and redirects (302) to the provider's authorization endpoint with
 *    a fresh `state` and `code_challenge`; the state is sealed (connect-seal.ts) and carries the PKCE verifier,
 *    the connection's version and identity, the grant's version and an expiry, so the callback can land on ANY instance.
 *  - `GET /v1/connect/callback?state=&code=` opens the state, exchanges the code and stores the grant.
 *
 *  No server keeps state for a flow. One use across instances comes from the connection store itself: the state
 *  names the version of the connection's grant when the flow began, and a callback is refused unless the grant is
 *  still at that version. Storing the grant moves it on, so a replayed callback, on any instance, is refused before
 *  its code is sent anywhere. (Two callbacks racing in the same instant both pass this check; the provider's
 *  one-use code, RFC 6749 §4.1.2, refuses the second.) The state is bound to the browser that began (RFC 9700
 *  §4.7.1): a random cookie for the callback path, whose digest the state holds.
 *
 *  These two GET routes take no API key (the link and the state are the credential) and admit a browser's
 *  top-level navigation from another site (request-guard.ts); every failure is an HTML page (connect-page.ts)
 *  with a status and a stable code, or, once the state has been opened and names a `redirect_after`, a 303 back
 *  to the app with `tessera_status` and `tessera_code`. */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as HttpRouter from "effect/http/HttpRouter"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Connection, Upstream } from "@tessera/engine"
import * as Access from "./access.ts"
import * as ConnectGrant from "./connect-grant.ts"
import * as Page from "./connect-page.ts"
import * as Seal from "./connect-seal.ts"
import * as OwnCookies from "./own-cookies.ts"
import { readJson } from "./connection-routes.ts"
import { Refusal } from "./problem.ts"
import * as RequestCtx from "./request-context.ts"
import { RequestContext } from "./request-context.ts"
import type { Handler, ResponseDoc, RouteSpec } from "./routes.ts"

export const linkPath = "/v1/connect/:name"
export const callbackPath = "/v1/connect/callback"

/** The redirect_uri every provider is registered with: one per server, whatever the connection. */
export const redirectUriOf = (publicUrl: string): string => `${publicUrl}${callbackPath}`

const cookiePrefix = OwnCookies.prefix

const sha256url = (s: string) => createHash("sha256").update(s, "utf8").digest("base64url")

const problem = (description: string): ResponseDoc => ({
  description,
  schema: "Problem",
  mediaType: "application/problem+json"
})
const page = (description: string): ResponseDoc => ({ description, mediaType: "text/html" })

/** What the flow needs from the config, or why it cannot run. */
const settings = Effect.gen(function* () {
  const ctx = yield* RequestContext
  const s = ctx.generation.config.server
  const ring = Seal.ringOf(s.connectKeys)
  if (s.publicUrl === undefined || ring === undefined)
    return yield* new Refusal({
      code: "ConnectNotConfigured",
      detail:
        `the connect flow needs ${[s.publicUrl === undefined ? "server.public_url" : "", ring ? "" : "server.connect_keys"].filter(Boolean).join(" and ")} ` +
        "in the server's config"
    })
  return { publicUrl: s.publicUrl, ring }
})

const nowSeconds = Effect.map(Clock.currentTimeMillis, (ms) => Math.floor(ms / 1000))

// ---------------------------------------------------------------------------------------------------------------
// POST /v1/connect-links

interface LinkRequest {
  readonly connection: string
  readonly redirectAfter?: string | undefined
  readonly ttlSeconds: number
}

const badRequest = (detail: string) => new Refusal({ code: "BadRequest", detail })

/** The body, checked: every problem is a 400 saying which field and what to send. */
export const linkRequestOf = (body: unknown): LinkRequest | Refusal => {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return badRequest('send {"connection": "<name>", "redirect_after"?: "<url>", "ttl_seconds"?: <n>}')
  const b = body as Record<string, unknown>
  const unknownKeys = Object.keys(b).filter((k) => !["connection", "redirect_after", "ttl_seconds"].includes(k))
  if (unknownKeys.length > 0)
    return badRequest(
      `unknown field ${unknownKeys.map((k) => JSON.stringify(k)).join(", ")}; known: connection, redirect_after, ttl_seconds`
    )
  if (typeof b["connection"] !== "string" || b["connection"] === "")
    return badRequest("connection: give the connection's name")
  const ttl = b["ttl_seconds"] ?? Seal.defaultLinkTtlSeconds
  if (typeof ttl !== "number" || !Number.isInteger(ttl) || ttl < 1 || ttl > Seal.maxLinkTtlSeconds)
    return badRequest(`ttl_seconds: a whole number of seconds from 1 to ${Seal.maxLinkTtlSeconds}`)
  const ra = b["redirect_after"]
  if (ra !== undefined) {
    if (typeof ra !== "string") return badRequest("redirect_after: an absolute https:// URL")
    const bad = Connection.checkUrl(ra, false)
    if (bad) return badRequest(`redirect_after ${bad.message}`)
    if (new URL(ra).hash !== "") return badRequest("redirect_after: a URL without a #fragment")
  }
  return { connection: b["connection"], redirectAfter: ra, ttlSeconds: ttl }
}

const createLink: Handler = () =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    const { publicUrl, ring } = yield* settings
    const req = linkRequestOf(yield* readJson("a connect-link request"))
    if (req instanceof Refusal) return yield* req
    const name = req.connection
    RequestCtx.label(ctx, "/v1/connect-links", name)
    // The rules of a route with `:name` (app.ts), for the body's name: allowlist 403, out of the key's tags 404. (The
    // scope was checked before the handler ran; it does not depend on the connection, so it reveals nothing.)
    const principal = ctx.principal
    if (principal) {
      const forbidden = Access.allowed(principal, name)
      if (forbidden) return yield* forbidden
    }
    const found = yield* ctx.generation.engine.registry.find(name)
    if (found === undefined) return yield* ConnectGrant.unknown(name)
    const tags = found._tag === "Found" ? found.connection.tags : found.tags
    if (principal && Access.needsTags(principal) && !principal.sees(tags)) return yield* ConnectGrant.unknown(name)
    if (found._tag === "Broken") return yield* found.error
    const c = found.connection
    yield* ConnectGrant.check(c)
    const exp = (yield* nowSeconds) + req.ttlSeconds
    const link = Seal.sealLink(ring, {
      c: name,
      cv: c.version,
      ci: Seal.identityOf(c),
      exp,
      ...(req.redirectAfter !== undefined ? { ra: req.redirectAfter } : {})
    })
    const url = `${publicUrl}/v1/connect/${encodeURIComponent(name)}?link=${link}`
    return HttpServerResponse.jsonUnsafe(
      { url, expires_at: new Date(exp * 1000).toISOString() },
      { status: 201, headers: { "cache-control": "no-store" } }
    )
  })

// ---------------------------------------------------------------------------------------------------------------
// The browser's side: outcomes

type Outcome = Page.Outcome

const outcome = (status: number, code: string, title: string, message: string, connection?: string): Outcome => ({
  status,
  code,
  title,
  message,
  connection: connection === "" ? undefined : connection
})

const startAgain = "Ask the application that sent you here for a new link, and start again."

const outcomes = {
  notConfigured: (detail: string) =>
    outcome(
      501,
      "ConnectNotConfigured",
      "Connecting is not set up",
      `This server cannot connect accounts yet: ${detail}.`
    ),
  linkInvalid: () =>
    outcome(400, "LinkInvalid", "This link is not valid", `The link is incomplete or was altered. ${startAgain}`),
  linkExpired: (c?: string) =>
    outcome(
      410,
      "LinkExpired",
      "This link has expired",
      `Links to connect an account are short-lived. ${startAgain}`,
      c
    ),
  linkMismatch: () =>
    outcome(400, "LinkInvalid", "This link is not valid", `The link belongs to another connection. ${startAgain}`),
  unknownConnection: (c: string) =>
    outcome(404, "UnknownConnection", "No such connection", `The connection no longer exists. ${startAgain}`, c),
  replaced: (c: string) =>
    outcome(
      409,
      "ConnectionReplaced",
      "The connection has changed",
      `The connection was changed after this link was made. ${startAgain}`,
      c
    ),
  unsupported: (c: string, detail: string) =>
    outcome(409, "NotAuthorizationCode", "This connection cannot be connected here", detail, c),
  stateInvalid: () =>
    outcome(
      400,
      "StateInvalid",
      "This sign-in could not be verified",
      `The answer from the provider does not belong to a sign-in started here, or it was altered. ${startAgain}`
    ),
  stateExpired: (c: string) =>
    outcome(
      410,
      "StateExpired",
      "This sign-in took too long",
      `Signing in must finish within ${Seal.stateTtlSeconds / 60} minutes. ${startAgain}`,
      c
    ),
  otherBrowser: (c: string) =>
    outcome(
      400,
      "BrowserMismatch",
      "This sign-in began in another browser",
      `Finish signing in in the browser where you opened the link. ${startAgain}`,
      c
    ),
  replayed: (c: string) =>
    outcome(
      409,
      "AlreadyUsed",
      "This sign-in was already used",
      "The account was connected with this sign-in already (or another one since). Nothing was changed.",
      c
    ),
  denied: (c: string) =>
    outcome(
      403,
      "ConsentDenied",
      "Access was not granted",
      "You declined to give access, so nothing was connected. You can close this window, or start again from the application.",
      c
    ),
  providerError: (c: string, detail: string) =>
    outcome(
      502,
      "ProviderError",
      "The provider refused",
      `The provider answered "${detail}" instead of granting access. ${startAgain}`,
      c
    ),
  providerUnreachable: (c: string) =>
    outcome(
      502,
      "ProviderUnreachable",
      "The provider could not be reached",
      `The server could not reach the provider to send you there. ${startAgain}`,
      c
    ),
  misconfigured: (c: string) =>
    outcome(
      500,
      "InputInvalid",
      "The connection is misconfigured",
      "The server's operator must fix this connection before it can be connected.",
      c
    ),
  noCode: (c: string) =>
    outcome(
      400,
      "StateInvalid",
      "This sign-in could not be verified",
      `The provider's answer has no authorization code. ${startAgain}`,
      c
    ),
  exchangeFailed: (c: string, detail: string) =>
    outcome(502, "ExchangeFailed", "The provider did not complete the connection", `${detail} ${startAgain}`, c),
  storeFailed: (c: string) =>
    outcome(
      503,
      "ConnectionStoreError",
      "The connection could not be saved",
      `The server could not save the grant right now. ${startAgain}`,
      c
    ),
  connected: (c: string) =>
    outcome(200, "Connected", "Account connected", "Access was granted, and the connection is ready to use.", c)
}

/** `redirect_after` with the outcome: `tessera_connection`, `tessera_status` (connected, denied, failed) and, for
 *  a failure, `tessera_code`. */
export const backToApp = (redirectAfter: string, o: Outcome): string => {
  const u = new URL(redirectAfter)
  u.searchParams.set("tessera_connection", o.connection ?? "")
  u.searchParams.set("tessera_status", o.status < 400 ? "connected" : o.code === "ConsentDenied" ? "denied" : "failed")
  if (o.status >= 400) u.searchParams.set("tessera_code", o.code)
  return u.href
}

const show = (o: Outcome, headers: Readonly<Record<string, string>> = {}) =>
  Effect.map(RequestContext, (ctx) => Page.response(o, ctx.id, headers))

const finish = (o: Outcome, redirectAfter: string | undefined, headers: Readonly<Record<string, string>> = {}) =>
  redirectAfter === undefined
    ? show(o, headers)
    : Effect.succeed(
        HttpServerResponse.empty({
          status: 303,
          headers: { ...Page.securityHeaders, ...headers, location: backToApp(redirectAfter, o) }
        })
      )

const queryOf = (url: string) => new URL(url, "http://localhost").searchParams

/** Runs `body`; a not-configured flow, or a failure nobody expected, becomes a page (never a problem+json or a
 *  stack): these routes are read by people. */
const asPage = (
  body: Effect.Effect<
    HttpServerResponse.HttpServerResponse,
    unknown,
    RequestContext | HttpServerRequest.HttpServerRequest
  >
) =>
  body.pipe(
    Effect.catch((e: unknown) => {
      const tag = typeof e === "object" && e !== null && "_tag" in e ? String(e._tag) : ""
      const connection =
        typeof e === "object" && e !== null && "connection" in e && typeof e.connection === "string" ? e.connection : ""
      if (e instanceof Refusal && e.code === "ConnectNotConfigured")
        return show(outcomes.notConfigured(e.detail.replace(/^the connect flow needs /, "it needs ")))
      if (tag === "StoreError" || tag === "ConnectionStoreError") return show(outcomes.storeFailed(connection))
      if (tag === "UnknownConnection") return show(outcomes.unknownConnection(connection))
      if (tag === "InputInvalid") return show(outcomes.misconfigured(connection))
      // Discovery of the authorization endpoint failed (the engine has scrubbed its message; the page needs none).
      if (["TransportError", "UpstreamTimeout", "UpstreamRejected", "ResponseInvalid"].includes(tag))
        return show(outcomes.providerUnreachable(connection))
      // A bug: the page says only that it happened (and the request id); the log gets the cause.
      return Effect.flatMap(RequestContext, (ctx) =>
        Effect.as(
          Effect.logError("connect flow failed", e),
          Page.response(
            outcome(500, "Internal", "Something went wrong", `The server could not finish this step. ${startAgain}`),
            ctx.id
          )
        )
      )
    })
  )

// ---------------------------------------------------------------------------------------------------------------
// GET /v1/connect/:name?link=

const begin = (name: string, linkText: string | null) =>
  asPage(
    Effect.gen(function* () {
      const ctx = yield* RequestContext
      RequestCtx.label(ctx, linkPath, name)
      const { publicUrl, ring } = yield* settings
      if (linkText === null) return yield* show(outcomes.linkInvalid())
      const opened = Seal.openLink(ring, linkText, yield* nowSeconds)
      if (opened._tag === "Invalid") return yield* show(outcomes.linkInvalid())
      if (opened._tag === "UnknownKey") return yield* show(outcomes.linkExpired())
      const link = opened.value
      if (link.c !== name) return yield* show(outcomes.linkMismatch())
      if (opened._tag === "Expired") return yield* show(outcomes.linkExpired(name))
      const found = yield* ctx.generation.engine.registry.find(name)
      if (found === undefined) return yield* show(outcomes.unknownConnection(name))
      if (found._tag === "Broken") return yield* show(outcomes.misconfigured(name))
      const c = found.connection
      if (!Seal.names(link, c)) return yield* show(outcomes.replaced(name))
      const unsupported = yield* Effect.flip(ConnectGrant.check(c)).pipe(Effect.option)
      if (unsupported._tag === "Some") return yield* show(outcomes.unsupported(name, unsupported.value.detail))
      const engine = ctx.generation.engine
      const grantVersion = yield* ConnectGrant.grantVersion(engine, name)
      const authorization = yield* ConnectGrant.authorize(engine, c, redirectUriOf(publicUrl))
      const browser = randomBytes(24).toString("base64url")
      const id = randomBytes(9).toString("base64url")
      const state = Seal.sealState(ring, {
        id,
        c: name,
        cv: c.version,
        ci: Seal.identityOf(c),
        gv: grantVersion ?? null,
        exp: (yield* nowSeconds) + Seal.stateTtlSeconds,
        pv: Redacted.value(authorization.verifier),
        bh: sha256url(browser),
        ...(link.ra !== undefined ? { ra: link.ra } : {})
      })
      const location = authorization.url(state)
      const secure = publicUrl.startsWith("https:") ? "; Secure" : ""
      const cookiePath = `${OwnCookies.basePathOf(publicUrl)}${callbackPath}`
      return HttpServerResponse.empty({
        status: 302,
        headers: {
          ...Page.securityHeaders,
          location,
          "set-cookie": `${cookiePrefix}${id}=${browser}; Path=${cookiePath}; Max-Age=${Seal.stateTtlSeconds}; HttpOnly; SameSite=Lax${secure}`
        }
      })
    })
  )

const connectRoute: Handler = () =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const name = (yield* HttpRouter.params)["name"] ?? ""
    return yield* begin(name, queryOf(request.url).get("link"))
  })

// ---------------------------------------------------------------------------------------------------------------
// GET /v1/connect/callback?state=&code=   (or ?state=&error=)

/** The cookie of this state's browser, compared in constant time with the digest the state holds. */
const sameBrowser = (cookieHeader: string | undefined, state: Seal.State): boolean => {
  const wanted = `${cookiePrefix}${state.id}=`
  const value = (cookieHeader ?? "")
    .split(";")
    .map((c) => c.trim())
    .find((c) => c.startsWith(wanted))
    ?.slice(wanted.length)
  if (value === undefined) return false
  const a = Buffer.from(sha256url(value))
  const b = Buffer.from(state.bh)
  return a.length === b.length && timingSafeEqual(a, b)
}

const callback: Handler = () =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const q = queryOf(request.url)
    // A connection named "callback" is reached at this path too: its links carry `link=`, a callback `state=`.
    if (q.has("link") && !q.has("state")) return yield* begin("callback", q.get("link"))
    return yield* asPage(complete(q, request.headers["cookie"]))
  })

const complete = (q: URLSearchParams, cookie: string | undefined) =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    RequestCtx.label(ctx, callbackPath, undefined)
    const { publicUrl, ring } = yield* settings
    const stateText = q.get("state")
    if (stateText === null) return yield* show(outcomes.stateInvalid())
    const opened = Seal.openState(ring, stateText, yield* nowSeconds)
    if (opened._tag === "Invalid" || opened._tag === "UnknownKey") return yield* show(outcomes.stateInvalid())
    const state = opened.value
    const name = state.c
    RequestCtx.label(ctx, callbackPath, name)
    const clear = {
      "set-cookie": `${cookiePrefix}${state.id}=; Path=${OwnCookies.basePathOf(publicUrl)}${callbackPath}; Max-Age=0; HttpOnly; SameSite=Lax`
    }
    const done = (o: Outcome) => finish(o, state.ra, clear)
    if (opened._tag === "Expired") return yield* done(outcomes.stateExpired(name))
    if (!sameBrowser(cookie, state)) return yield* show(outcomes.otherBrowser(name))
    const found = yield* ctx.generation.engine.registry.find(name)
    if (found === undefined) return yield* done(outcomes.unknownConnection(name))
    if (found._tag === "Broken") return yield* done(outcomes.misconfigured(name))
    const c = found.connection
    if (!Seal.names(state, c)) return yield* done(outcomes.replaced(name))
    // One use: the grant must still be the one the flow began from (see the module header).
    const before = yield* ConnectGrant.grantVersion(ctx.generation.engine, name)
    if ((before ?? null) !== state.gv) return yield* done(outcomes.replayed(name))
    const finished = yield* ConnectGrant.complete(ctx.generation.engine, c, {
      redirectUri: redirectUriOf(publicUrl),
      state: stateText,
      verifier: Redacted.make(state.pv, { label: "code_verifier" }),
      query: q
    }).pipe(
      Effect.as(outcomes.connected(name)),
      Effect.catch((e) => {
        const why = ConnectGrant.classify(e, [...Upstream.secretsOf(c), stateText, state.pv, q.get("code") ?? ""])
        switch (why._tag) {
          case "Denied":
            return Effect.succeed(outcomes.denied(name))
          case "ProviderError":
            return Effect.succeed(outcomes.providerError(name, why.detail))
          case "NoCode":
            return Effect.succeed(outcomes.noCode(name))
          case "Exchange":
            return Effect.succeed(outcomes.exchangeFailed(name, why.detail))
          case "Misconfigured":
            return Effect.succeed(outcomes.misconfigured(name))
          case "Store":
            return Effect.succeed(outcomes.storeFailed(name))
          case "Unknown":
            return Effect.succeed(outcomes.unknownConnection(name))
        }
      })
    )
    return yield* done(finished)
  })

const failures: Readonly<Record<number, ResponseDoc>> = {
  401: problem("No API key, or a wrong one (code Unauthorized)."),
  403: problem("The key lacks connections:write, or its allowlist excludes the connection (code Forbidden)."),
  404: problem("No such connection, or one this key's tags do not reach (code UnknownConnection).")
}

export const connectRoutes: ReadonlyArray<RouteSpec> = [
  {
    method: "POST",
    path: "/v1/connect-links",
    operationId: "createConnectLink",
    tag: "connect",
    access: "key",
    scope: "connections:write",
    summary: "Make a link that connects a user's account to a connection",
    description:
      "Body: {connection, redirect_after?, ttl_seconds?}. Answers 201 {url, expires_at}: send the user's browser to " +
      "`url` (`<server.public_url>/v1/connect/<name>?link=...`). The link is sealed with server.connect_keys, so any " +
      `instance can serve it; it lives ttl_seconds (default ${Seal.defaultLinkTtlSeconds}, at most ${Seal.maxLinkTtlSeconds}) ` +
      "and dies when the connection is replaced. The provider must have an authorization-code flow.",
    requestSchema: "ConnectLinkRequest",
    responses: {
      201: { description: "The link.", schema: "ConnectLink" },
      400: problem("A malformed body, ttl_seconds or redirect_after (code BadRequest)."),
      ...failures,
      409: problem("The connection's provider has no authorization-code flow (code NotAuthorizationCode)."),
      413: problem("Larger than 64 KiB (code PayloadTooLarge)."),
      501: problem("server.public_url or server.connect_keys is not set (code ConnectNotConfigured)."),
      503: problem("The connection store is unavailable (code ConnectionStoreError).")
    },
    handler: createLink
  },
  {
    method: "GET",
    path: callbackPath,
    operationId: "connectCallback",
    tag: "connect",
    access: "link",
    summary: "The provider's redirect back (the redirect_uri to register)",
    description:
      "Register `<server.public_url>/v1/connect/callback` as the redirect URI at the provider. Checks the state " +
      "(sealed, expiring after 10 minutes, bound to the browser by a cookie, good for one use), exchanges the code " +
      "with its PKCE verifier and stores the grant in the connection store. Answers an HTML page, or 303 to the " +
      "link's redirect_after with tessera_connection, tessera_status (connected, denied, failed) and tessera_code.",
    query: [
      { name: "state", description: "The state the server sent to the provider." },
      { name: "code", description: "The authorization code." },
      { name: "error", description: "The provider's error, e.g. access_denied." }
    ],
    responses: {
      200: page("Connected (code Connected)."),
      303: { description: "Back to redirect_after, with the outcome in the query." },
      400: page("A missing, altered or foreign state, or another browser (codes StateInvalid, BrowserMismatch)."),
      403: page("The user declined (code ConsentDenied)."),
      404: page("The connection is gone (code UnknownConnection)."),
      409: page("Used already, or the connection was replaced (codes AlreadyUsed, ConnectionReplaced)."),
      410: page("The state expired (code StateExpired)."),
      501: page("server.public_url or server.connect_keys is not set (code ConnectNotConfigured)."),
      502: page("The provider answered with an error or refused the code (codes ProviderError, ExchangeFailed)."),
      503: page("The grant could not be saved (code ConnectionStoreError).")
    },
    handler: callback
  },
  {
    method: "GET",
    path: linkPath,
    operationId: "connect",
    tag: "connect",
    access: "link",
    summary: "Where a connect link sends the user: on to the provider",
    description:
      "Opens the link and redirects (302) to the provider's authorization endpoint with response_type=code, " +
      "client_id, redirect_uri, scope, state and code_challenge (S256). Sets a cookie for the callback path that " +
      "binds the flow to this browser.",
    query: [{ name: "link", description: "The sealed link from POST /v1/connect-links.", required: true }],
    responses: {
      302: { description: "To the provider's authorization endpoint." },
      400: page("A missing or altered link, or one for another connection (code LinkInvalid)."),
      404: page("The connection is gone (code UnknownConnection)."),
      409: page(
        "The connection was replaced, or has no authorization-code flow (codes ConnectionReplaced, NotAuthorizationCode)."
      ),
      502: page("The provider's metadata (discovery) could not be read (code ProviderUnreachable)."),
      410: page("The link expired (code LinkExpired)."),
      501: page("server.public_url or server.connect_keys is not set (code ConnectNotConfigured).")
    },
    handler: connectRoute
  }
]
