/** Generates the OpenAPI 3.1 document from the route table (routes.ts), so the document lists exactly what the
 *  router serves and who may call it under a config's `server.public_routes`. Holds the component schemas of the
 *  JSON bodies and the mapping from router paths (`:name`, trailing `/*`) to OpenAPI path templates. */
import type { Config } from "@tessera/engine"
import * as Problem from "./problem.ts"
import { isOpen, type Access, type ResponseDoc, type RouteSpec } from "./routes.ts"

/** Router path to OpenAPI path: `/v1/proxy/:name/*` -> `/v1/proxy/{name}/{path}`. */
export const pathOf = (routerPath: string): string =>
  routerPath.replace(/\/\*$/, "/{path}").replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}")

/** The methods a route answers: `*` stands for all of them. */
export const methodsOf = (r: RouteSpec): ReadonlyArray<string> =>
  r.method === "*" ? ["get", "put", "post", "delete", "options", "head", "patch"] : [r.method.toLowerCase()]

const security = (access: Access, open: boolean) =>
  open
    ? []
    : access === "proxyKey"
      ? [{ tesseraKey: [] }]
      : access === "pageKey"
        ? [{ bearerKey: [] }, { tesseraKey: [] }, { basicKey: [] }]
        : [{ bearerKey: [] }, { tesseraKey: [] }]

/** What every route can answer before it runs: the request guard's refusals (request-guard.ts). */
const guardRefusals =
  "a Host the server does not answer (code HostNotAllowed), or a web page of another origin (code CrossSiteRequest)"

/** A route's responses as documented under the config: no 401 when it is open; the guard's 403 on every route. */
const responsesOf = (r: RouteSpec, open: boolean): Readonly<Record<number, ResponseDoc>> => {
  const { 401: unauthorized, 403: forbidden, ...rest } = r.responses
  return {
    ...rest,
    ...(open || !unauthorized ? {} : { 401: unauthorized }),
    403: {
      description: forbidden ? `${forbidden.description} Also ${guardRefusals}.` : `Refused: ${guardRefusals}.`,
      schema: "Problem",
      mediaType: Problem.contentType
    }
  }
}

const schemas = {
  Problem: {
    type: "object",
    description:
      "RFC 9457 problem details, plus `code` (the engine's stable error `_tag` or the server's refusal code).",
    required: ["type", "title", "status", "detail", "instance", "code", "request_id"],
    properties: {
      type: { type: "string", format: "uri" },
      title: { type: "string" },
      status: { type: "integer" },
      detail: { type: "string" },
      instance: { type: "string", description: "The request path, without the query string." },
      code: { type: "string", enum: Object.keys(Problem.status) },
      request_id: { type: "string" },
      connection: { type: "string" },
      provider: { type: "string" },
      upstream_status: { type: "integer", description: "UpstreamRejected: the provider's HTTP status." },
      upstream_code: { type: "string", description: "UpstreamRejected: the provider's error code." },
      provider_message: { type: "string", description: "UpstreamRejected: the provider's message (secrets scrubbed)." }
    }
  },
  Token: {
    type: "object",
    required: ["connection", "provider", "access_token", "token_type", "expires_at", "expiry_source"],
    properties: {
      connection: { type: "string" },
      provider: { type: "string" },
      access_token: { type: "string" },
      token_type: { type: "string" },
      expires_at: {
        type: "string",
        format: "date-time",
        description:
          "When tessera treats the token as expired (renewal starts a margin before). At most 10 years ahead: a provider claiming more is refused."
      },
      expiry_source: {
        enum: ["expires_in", "expires_at", "jwt_exp", "ttl", "default"],
        description:
          "Where expires_at came from: a response field (expires_in, expires_at), the access token's JWT exp claim, the manifest's fixed ttl, or default (the manifest's refresh.default_ttl_seconds, when no source gave a value)."
      }
    }
  },
  Connection: {
    type: "object",
    required: ["name", "provider", "tags", "inputs", "source", "status", "created_at", "updated_at"],
    properties: {
      name: { type: "string" },
      provider: { type: "string" },
      tags: { type: "object", additionalProperties: { type: "string" } },
      inputs: {
        type: "object",
        additionalProperties: { type: "string" },
        description: "Effective inputs (defaults included); a secret input shows as ***."
      },
      source: { enum: ["api", "config"], description: "api: stored at runtime; config: the config file." },
      status: {
        enum: ["ok", "misconfigured", "needs_reauth"],
        description:
          "needs_reauth: the user's grant was refused by the provider, or was issued for another provider or other non-secret inputs than the connection has now; the user must authorize again."
      },
      grant: {
        type: "object",
        description: "The durable grant (GET of one connection, when one is stored): never the refresh token.",
        properties: {
          status: {
            enum: ["active", "needs_reauth"],
            description:
              "needs_reauth: refused by the provider, or bound elsewhere (issued for another provider or other non-secret inputs, shown so before any renewal): it is never redeemed; detail says why."
          },
          updated_at: { type: "string", format: "date-time" },
          detail: { type: "string" }
        }
      },
      created_at: { type: ["string", "null"], format: "date-time", description: "null for config connections." },
      updated_at: { type: ["string", "null"], format: "date-time" }
    }
  },
  ConnectionList: {
    type: "object",
    required: ["items", "next_cursor"],
    properties: {
      items: { type: "array", items: { $ref: "#/components/schemas/Connection" } },
      next_cursor: { type: ["string", "null"], description: "Pass as ?cursor= for the next page; null on the last." }
    }
  },
  ConnectionPut: {
    type: "object",
    required: ["provider"],
    additionalProperties: false,
    properties: {
      provider: { type: "string", description: "A provider id (GET /v1/providers)." },
      inputs: {
        type: "object",
        additionalProperties: { type: ["string", "number", "boolean"] },
        description: "The provider's inputs, taken literally."
      },
      tags: {
        type: "object",
        maxProperties: 32,
        additionalProperties: { type: "string", maxLength: 256 },
        description: "Labels such as tenant: acme; a tag-scoped key must give its own tags."
      },
      allow_insecure_http: { type: "boolean", description: "WARNING: allow plain http:// to non-loopback hosts." }
    }
  },
  ConnectLinkRequest: {
    type: "object",
    required: ["connection"],
    additionalProperties: false,
    properties: {
      connection: { type: "string", description: "The connection to connect a user's account to." },
      redirect_after: {
        type: "string",
        format: "uri",
        description:
          "Where the browser goes once done (https://, or http:// to loopback), with tessera_connection, tessera_status (connected, denied, failed) and tessera_code added to its query. Absent: a result page."
      },
      ttl_seconds: { type: "integer", minimum: 1, maximum: 3600, default: 900, description: "How long the link lives." }
    }
  },
  ConnectLink: {
    type: "object",
    required: ["url", "expires_at"],
    properties: {
      url: { type: "string", format: "uri", description: "Send the user's browser here." },
      expires_at: { type: "string", format: "date-time" }
    }
  },
  ProviderList: {
    type: "object",
    required: ["providers"],
    properties: {
      providers: {
        type: "array",
        items: {
          type: "object",
          required: ["id", "name", "docs", "proxy", "inputs"],
          properties: {
            id: { type: "string" },
            name: { type: "string" },
            docs: { type: ["string", "null"] },
            proxy: {
              type: "boolean",
              description: "Whether the provider declares an api.base_url (the proxy can call it)."
            },
            inputs: {
              type: "array",
              items: {
                type: "object",
                required: ["name", "type", "required", "secret"],
                properties: {
                  name: { type: "string" },
                  type: { enum: ["string", "url", "integer"] },
                  required: { type: "boolean" },
                  secret: { type: "boolean" },
                  title: { type: "string" },
                  description: { type: "string" }
                }
              }
            }
          }
        }
      }
    }
  },
  Health: { type: "object", required: ["status"], properties: { status: { const: "ok" } } },
  Ready: {
    type: "object",
    required: ["status", "store"],
    properties: {
      status: { enum: ["ok", "degraded", "down"] },
      store: {
        type: "object",
        properties: { status: { enum: ["ok", "degraded", "down"] }, detail: { type: "string" } }
      }
    }
  }
} as const

export interface Info {
  readonly title: string
  readonly version: string
}

export interface Options {
  readonly info?: Info | undefined
  /** `server.public_routes` of the config served: those routes are documented without security. */
  readonly publicRoutes?: ReadonlyArray<Config.PublicRoute> | undefined
}

export const document = (routes: ReadonlyArray<RouteSpec>, options: Options = {}) => {
  const info = options.info ?? { title: "tessera", version: "0.1.0" }
  const paths: Record<string, Record<string, unknown>> = {}
  for (const r of routes) {
    const open = isOpen(r, options.publicRoutes ?? [])
    const path = pathOf(r.path)
    const parameters = [...path.matchAll(/\{([^}]+)\}/g)].map(([, name]) => ({
      name,
      in: "path",
      required: true,
      schema: { type: "string" },
      ...(name === "path"
        ? { description: "The rest of the path, below the API base URL; may contain slashes." }
        : { description: "The connection name." })
    }))
    const responses = Object.fromEntries(
      Object.entries(responsesOf(r, open)).map(([status, doc]) => [
        status,
        {
          description: doc.description,
          headers: { "X-Request-Id": { $ref: "#/components/headers/RequestId" } },
          ...(doc.schema || doc.mediaType
            ? {
                content: {
                  [doc.mediaType ?? "application/json"]: doc.schema
                    ? { schema: { $ref: `#/components/schemas/${doc.schema}` } }
                    : {}
                }
              }
            : {})
        }
      ])
    )
    for (const m of methodsOf(r)) {
      paths[path] ??= {}
      paths[path][m] = {
        operationId: r.method === "*" ? `${r.operationId}${m[0]!.toUpperCase()}${m.slice(1)}` : r.operationId,
        summary: r.summary,
        ...(r.description ? { description: r.description } : {}),
        tags: [r.tag],
        security: security(r.access, open),
        parameters: [
          ...parameters,
          ...(r.query ?? []).map((q) => ({
            name: q.name,
            in: "query",
            required: q.required ?? false,
            description: q.description,
            schema: { type: "string" }
          })),
          { $ref: "#/components/parameters/RequestId" }
        ],
        ...(r.requestSchema
          ? {
              requestBody: {
                required: true,
                content: { "application/json": { schema: { $ref: `#/components/schemas/${r.requestSchema}` } } }
              }
            }
          : {}),
        ...(r.scope ? { "x-tessera-scope": r.scope } : {}),
        responses
      }
    }
  }
  return {
    openapi: "3.1.0",
    info: {
      ...info,
      description:
        "Gets and keeps API credentials for SaaS providers; hands out tokens and proxies API calls with them.",
      license: { name: "Apache-2.0", identifier: "Apache-2.0" }
    },
    tags: [
      { name: "tokens", description: "Tokens of connections." },
      { name: "connections", description: "Connections created at runtime, beside the config file's." },
      {
        name: "connect",
        description:
          "Connecting a user's account (authorization code + PKCE): a link from POST /v1/connect-links, then the browser's two routes, which take no API key."
      },
      { name: "catalog", description: "What is configured." },
      { name: "proxy", description: "API calls with the connection's token applied." },
      {
        name: "operations",
        description:
          "Probes, metrics and this document. /healthz is public; the others need a key unless server.public_routes lists them."
      }
    ],
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearerKey: {
          type: "http",
          scheme: "bearer",
          description: "A tessera API key (server.api_keys) as a Bearer token."
        },
        tesseraKey: {
          type: "apiKey",
          in: "header",
          name: "X-Tessera-Key",
          description: "A tessera API key; the only way for /v1/proxy."
        },
        basicKey: {
          type: "http",
          scheme: "basic",
          description: "A tessera API key as the password of HTTP Basic (any user name): how a browser sends it to /ui."
        }
      },
      parameters: {
        RequestId: {
          name: "X-Request-Id",
          in: "header",
          required: false,
          description: "Echoed back; up to 128 of [A-Za-z0-9._-], else a new id is made.",
          schema: { type: "string", pattern: "^[A-Za-z0-9._-]{1,128}$" }
        }
      },
      headers: {
        RequestId: { description: "The request id (the caller's, or a new one).", schema: { type: "string" } }
      }
    }
  }
}
