/** The status page: `GET /ui` is a server-rendered HTML table of the connections (provider, tags, status,
 *  freshness, expiry, last renewal, last error), filterable by tag, that refreshes itself every few seconds from
 *  `GET /ui/status` (the same rows as JSON) with a small inline script; no front-end build.
 *
 *  - Keyed like the API (`connections:read`; keyless on loopback when the server has no keys). A browser can send a
 *    key only as HTTP Basic, so the page takes one as the Basic password too and its 401 asks for it; a tag-scoped
 *    key sees only its own connections.
 *  - No secret is in it: names, tags, provider ids, times and the engine's codes and reasons (scrubbed of the
 *    connection's secrets when they were recorded, activity.ts). Every value is HTML-escaped on the server and set
 *    as text by the script.
 *  - A strict Content-Security-Policy: nothing loads but this document; its one script and one style are allowed by
 *    their SHA-256 hashes, `connect-src 'self'` for the refresh, no frames, no forms elsewhere.
 *  - "Failing" and the last renewal and error are what this instance saw (activity.ts); freshness and expiry are the
 *    token store's, so every instance agrees on them. */
import * as Effect from "effect/Effect"
import * as HttpServerRequest from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import { createHash } from "node:crypto"
import type { ConnectionRegistry, Engine } from "@tessera/engine"
import type * as Activity from "./activity.ts"
import type * as ApiKeyAuth from "./api-key-auth.ts"
import { listQuery, narrowed } from "./connection-routes.ts"
import { Refusal } from "./problem.ts"
import { RequestContext } from "./request-context.ts"
import type { Handler, ResponseDoc, RouteSpec } from "./routes.ts"

export type Status = "fresh" | "expiring" | "expired" | "no token" | "failing" | "misconfigured"

export interface Row {
  readonly name: string
  readonly provider: string
  readonly tags: Readonly<Record<string, string>>
  readonly source: "config" | "api"
  readonly status: Status
  readonly expires_at: string | null
  readonly last_renewal: { readonly at: string; readonly action: string } | null
  readonly last_error: { readonly at: string; readonly code: string; readonly reason: string } | null
  /** What the table shows, formatted once here for the server's HTML and the script alike. */
  readonly cells: {
    readonly tags: string
    readonly expires: string
    readonly renewal: string
    readonly error: string
  }
}

export interface Page {
  readonly items: ReadonlyArray<Row>
  readonly next_cursor: string | null
  readonly generated_at: string
  readonly failing: number
}

/** "in 4 min", "12 s ago": the distance from `now`, rounded to the unit that matters. */
export const ago = (at: number, now: number): string => {
  const d = Math.round((at - now) / 1000)
  const abs = Math.abs(d)
  const text =
    abs < 90
      ? `${abs} s`
      : abs < 5400
        ? `${Math.round(abs / 60)} min`
        : abs < 172_800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86_400)} d`
  return d > 0 ? `in ${text}` : `${text} ago`
}

const iso = (ms: number) => new Date(ms).toISOString()

/** One connection's row: its view in the registry, its token's state in the store, and what this instance saw. */
const rowOf = (
  engine: Engine.EngineShape,
  activity: Activity.Activity,
  v: ConnectionRegistry.ConnectionView,
  now: number
): Effect.Effect<Row> =>
  Effect.gen(function* () {
    const seen = activity.get(v.name, v.created_at === null ? undefined : Date.parse(v.created_at))
    const state = v.status === "misconfigured" ? undefined : yield* Effect.option(engine.cacheState(v.name))
    const token = state?._tag === "Some" && state.value.cached ? state.value : undefined
    const status: Status =
      v.status === "misconfigured" || state?._tag === "None"
        ? "misconfigured"
        : seen?.failing
          ? "failing"
          : (token?.freshness ?? "no token")
    const expiresAt = token?.expiresAt?.getTime()
    const renewal = seen?.lastRenewal
    const error = seen?.lastError
    return {
      name: v.name,
      provider: v.provider,
      tags: v.tags,
      source: v.source,
      status,
      expires_at: expiresAt === undefined ? null : iso(expiresAt),
      last_renewal: renewal ? { at: iso(renewal.at), action: renewal.action } : null,
      last_error: error ? { at: iso(error.at), code: error.code, reason: error.reason } : null,
      cells: {
        tags: Object.entries(v.tags)
          .map(([k, val]) => `${k}=${val}`)
          .join(", "),
        expires: expiresAt === undefined ? "–" : `${ago(expiresAt, now)} (${iso(expiresAt).slice(11, 19)} UTC)`,
        renewal: renewal ? `${renewal.action} ${ago(renewal.at, now)}` : "–",
        error: error
          ? `${error.code} ${ago(error.at, now)}: ${error.reason}`
          : v.status === "misconfigured"
            ? "misconfigured inputs"
            : "–"
      }
    }
  })

/** The page of rows the request asks for (`tag=k:v`, `cursor`, `limit`), narrowed to what its key may see. */
const page = (activity: Activity.Activity) =>
  Effect.gen(function* () {
    const ctx = yield* RequestContext
    const request = yield* HttpServerRequest.HttpServerRequest
    const q = listQuery(request.url)
    if (q instanceof Refusal) return yield* q
    const principal: ApiKeyAuth.Principal | undefined = ctx.principal
    const engine = ctx.generation.engine
    const listed = yield* engine.registry
      .list({ ...q, limit: q.limit ?? 100, tags: narrowed(q.tags, principal), only: principal?.allowlist })
      .pipe(
        Effect.catchTag("ConnectionInvalid", (e) => Effect.fail(new Refusal({ code: "BadRequest", detail: e.message })))
      )
    const visible = principal ? listed.items.filter((v) => principal.allows(v.name)) : listed.items
    const now = Date.now()
    const items = yield* Effect.forEach(visible, (v) => rowOf(engine, activity, v, now), { concurrency: 8 })
    return {
      items,
      next_cursor: listed.next_cursor,
      generated_at: iso(now),
      failing: items.filter((r) => r.status === "failing" || r.status === "misconfigured").length
    } satisfies Page
  })

const escape = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!)

const style = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d1d1f;background:#fafafa}
h1{font-size:1.3rem;margin:0}header{display:flex;gap:1.5rem;align-items:baseline;flex-wrap:wrap}
form{margin:1rem 0}input{font:inherit;padding:.2rem .4rem}table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e3e3e3;vertical-align:top}th{background:#f0f0f0}
td.status{font-weight:600}tr[data-status=fresh] td.status{color:#17803d}tr[data-status=expiring] td.status{color:#9a6700}
tr[data-status=failing] td.status,tr[data-status=misconfigured] td.status{color:#c62828}
tr[data-status=failing],tr[data-status=misconfigured]{background:#fff3f3}.muted{color:#6b6b6b}td.error{max-width:32rem}
`.trim()

// Rebuilds the rows from /ui/status every few seconds, setting text only (never HTML).
const script = `
(() => {
  const updated = document.getElementById("updated")
  const every = Number(updated.dataset.refreshMs) || 5000
  const td = (text, cls) => { const c = document.createElement("td"); c.textContent = text; if (cls) c.className = cls; return c }
  const render = (data) => {
    const rows = data.items.map((r) => {
      const tr = document.createElement("tr")
      tr.dataset.connection = r.name
      tr.dataset.status = r.status
      tr.append(td(r.name), td(r.provider), td(r.cells.tags), td(r.status, "status"), td(r.cells.expires),
        td(r.cells.renewal), td(r.cells.error, "error"))
      return tr
    })
    document.getElementById("rows").replaceChildren(...rows)
    document.getElementById("summary").textContent = data.items.length + " connections, " + data.failing + " failing"
    updated.textContent = "updated " + data.generated_at.slice(11, 19) + " UTC"
  }
  const tick = async () => {
    try {
      const res = await fetch("/ui/status" + location.search, { headers: { accept: "application/json" } })
      if (res.ok) render(await res.json())
      else updated.textContent = "could not refresh: HTTP " + res.status
    } catch {
      updated.textContent = "could not refresh"
    }
    setTimeout(tick, every)
  }
  setTimeout(tick, every)
})()
`.trim()

const hash = (s: string) => `'sha256-${createHash("sha256").update(s, "utf8").digest("base64")}'`

/** Nothing but this document: its script and style by hash, its own origin for the refresh and the filter form. */
export const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${hash(script)}`,
  `style-src ${hash(style)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'"
].join("; ")

const securityHeaders = {
  "content-security-policy": contentSecurityPolicy,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cache-control": "no-store"
}

const rowHtml = (r: Row) =>
  `<tr data-connection="${escape(r.name)}" data-status="${escape(r.status)}">` +
  [r.name, r.provider, r.cells.tags].map((t) => `<td>${escape(t)}</td>`).join("") +
  `<td class="status">${escape(r.status)}</td><td>${escape(r.cells.expires)}</td><td>${escape(r.cells.renewal)}</td>` +
  `<td class="error">${escape(r.cells.error)}</td></tr>`

const nextQuery = (search: string, cursor: string) => {
  const params = new URLSearchParams(search)
  params.set("cursor", cursor)
  return params.toString()
}

/** The whole document. `refreshMs` is how often the script reloads the rows. */
export const render = (
  p: Page,
  query: { readonly tag: string; readonly search: string },
  refreshMs: number
): string => {
  const next =
    p.next_cursor === null ? "" : `<p><a href="/ui?${escape(nextQuery(query.search, p.next_cursor))}">next page</a></p>`
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tessera: connections</title><style>${style}</style></head>
<body>
<header><h1>tessera connections</h1><span id="summary">${p.items.length} connections, ${p.failing} failing</span>
<span id="updated" class="muted" data-refresh-ms="${refreshMs}">updated ${p.generated_at.slice(11, 19)} UTC</span></header>
<form method="get" action="/ui"><label>Tag <input name="tag" value="${escape(query.tag)}" placeholder="tenant:acme"></label> <button type="submit">Filter</button></form>
<table><thead><tr><th>Connection</th><th>Provider</th><th>Tags</th><th>Status</th><th>Expires</th><th>Last renewal</th><th>Last error</th></tr></thead>
<tbody id="rows">${p.items.map(rowHtml).join("")}</tbody></table>
${next}<script>${script}</script>
</body></html>
`
}

const refreshOf = (url: string) => {
  const r = Number(new URL(url, "http://localhost").searchParams.get("refresh"))
  return Number.isInteger(r) && r >= 1 && r <= 300 ? r * 1000 : 5000
}

const html: Handler = (deps) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const p = yield* page(deps.activity)
    const params = new URL(request.url, "http://localhost").searchParams
    const body = render(p, { tag: params.getAll("tag").join(" "), search: params.toString() }, refreshOf(request.url))
    return HttpServerResponse.text(body, { contentType: "text/html; charset=utf-8", headers: securityHeaders })
  })

const json: Handler = (deps) =>
  Effect.map(page(deps.activity), (p) => HttpServerResponse.jsonUnsafe(p, { headers: securityHeaders }))

const problem = (description: string): ResponseDoc => ({
  description,
  schema: "Problem",
  mediaType: "application/problem+json"
})

const failures: Readonly<Record<number, ResponseDoc>> = {
  400: problem("A malformed tag, limit or cursor (code BadRequest)."),
  401: problem("No API key, or a wrong one (code Unauthorized); the challenge asks a browser for it as Basic."),
  403: problem("The key lacks connections:read (code Forbidden)."),
  503: problem("The connection store is unavailable (code ConnectionStoreError).")
}

export const statusPageRoutes: ReadonlyArray<RouteSpec> = [
  {
    method: "GET",
    path: "/ui",
    operationId: "statusPage",
    tag: "operations",
    access: "pageKey",
    scope: "connections:read",
    summary: "The status page (HTML)",
    description:
      "Connections with provider, tags, status, expiry, last renewal and last error; `tag=name:value` filters, " +
      "`refresh=<seconds>` sets how often the page reloads its rows (default 5). A browser sends the key as the " +
      "password of HTTP Basic.",
    responses: { 200: { description: "The page.", mediaType: "text/html" }, ...failures },
    handler: html
  },
  {
    method: "GET",
    path: "/ui/status",
    operationId: "statusPageRows",
    tag: "operations",
    access: "pageKey",
    scope: "connections:read",
    summary: "The status page's rows (JSON)",
    description: "What the page shows, as `{items, next_cursor, generated_at, failing}`; the page reloads it.",
    responses: { 200: { description: "The rows.", mediaType: "application/json" }, ...failures },
    handler: json
  }
]
