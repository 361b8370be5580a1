/** Test harness: a sandbox-backed config, a server on 127.0.0.1:0 with captured log lines, HTTP helpers that
 *  record every problem+json body, and a scan asserting no secret reached logs, problems or /metrics. */
import { startSandbox, type Sandbox } from "@tessera/testkit"
import { Effect } from "effect"
import * as http from "node:http"
import { Config, TokenError, TokenStore } from "@tessera/engine"
import { startServer, type RunningServer, type ServerOptions } from "../../src/index.ts"

export const OPS_KEY = "ops-key-7f3a9c1e5b2d4a6f"
export const JOBS_KEY = "jobs-key-2b8e6d4c0a9f1e3d"
export const WRONG_SECRET = "wrong-secret-5d1c9e7a3b"

/** Secret inputs of the sandbox's demo credentials (as marked `secret: true` in the manifests). */
const secretInputs = ["client_secret", "password", "api_key", "authentication_code", "pass_code", "jwt"]

export interface ConfigOptions {
  readonly keys?: boolean
  readonly extra?: string
  readonly connections?: ReadonlyArray<string>
  /** More lines of the `server:` block, e.g. `allowed_hosts: [tessera.internal]`. */
  readonly server?: ReadonlyArray<string>
}

const inputs = (creds: Record<string, string>, indent: string) =>
  Object.entries(creds)
    .map(([k, v]) => `${indent}${k}: ${JSON.stringify(v)}`)
    .join("\n")

/** tessera.yaml text for the sandbox: jobs (d.vinci), cube, crm (crm-com), oauth-pw (oauth2, password grant, so it
 *  has refresh tokens), bad-secret (cube with a wrong secret), broken (cube without inputs), and API keys. */
export const configText = (sb: Sandbox, opts: ConfigOptions = {}): string => {
  const all: Record<string, string> = {
    jobs: `  jobs:\n    provider: dvinci\n    inputs:\n${inputs(sb.credentials.dvinci, "      ")}`,
    cube: `  cube:\n    provider: cube\n    inputs:\n${inputs(sb.credentials.cube, "      ")}`,
    crm: `  crm:\n    provider: crm-com\n    inputs:\n${inputs(sb.credentials["crm-com"], "      ")}`,
    "oauth-pw": `  oauth-pw:\n    provider: oauth2\n    inputs:\n${inputs({ ...sb.credentials.oauth2, grant_type: "password", username: "alice", password: "alice-password" }, "      ")}`,
    "bad-secret": `  bad-secret:\n    provider: cube\n    inputs:\n${inputs({ ...sb.credentials.cube, client_secret: WRONG_SECRET }, "      ")}`,
    broken: `  broken:\n    provider: cube\n    inputs: {}`
  }
  const chosen = opts.connections ?? Object.keys(all)
  const lines = ["connections:", ...chosen.map((c) => all[c] ?? "")]
  if ((opts.keys ?? true) || opts.server) lines.push("server:", ...(opts.server ?? []).map((l) => `  ${l}`))
  if (opts.keys ?? true) {
    lines.push(
      "  api_keys:",
      `    - { name: ops, key: "\${env:OPS_KEY}", connections: ["*"], scopes: [token, proxy, "connections:read"] }`,
      `    - { name: jobs-only, key: "\${env:JOBS_KEY}", connections: [jobs], scopes: [token, proxy, "connections:read"] }`
    )
  }
  lines.push("http: { timeout_ms: 800, total_timeout_ms: 1000, retries: 0 }")
  if (opts.extra) lines.push(opts.extra)
  return lines.join("\n") + "\n"
}

export const env = { OPS_KEY, JOBS_KEY }

export const parseConfig = (text: string, file = "/tmp/tessera-server-test/tessera.yaml"): Promise<Config.Config> =>
  Effect.runPromise(Config.parse(file, text, env))

/** A memory store whose health and failures the test controls. */
export const controllableStore = () => {
  const base = TokenStore.makeMemory()
  const state = { health: { status: "ok", detail: "memory" } as TokenStore.StoreHealth, failing: false }
  const store: TokenStore.TokenStoreShape = {
    ...base,
    name: "test",
    get: (key) =>
      state.failing
        ? Effect.fail(new TokenError.StoreError({ store: "test", operation: "get", reason: "disk on fire" }))
        : base.get(key),
    health: () => Effect.sync(() => state.health)
  }
  return { store, state }
}

export interface Captured {
  readonly logs: string[]
  readonly problems: string[]
  readonly tokens: Set<string>
}

export const capture = (): Captured => ({ logs: [], problems: [], tokens: new Set() })

export const start = async (
  config: Config.Config,
  captured: Captured,
  options: ServerOptions = {}
): Promise<RunningServer> =>
  startServer(config, {
    port: 0,
    host: "127.0.0.1",
    log: {
      write: (l: string) => {
        captured.logs.push(l)
        return true
      }
    },
    ...options
  })

export interface Reply {
  readonly status: number
  readonly headers: http.IncomingHttpHeaders
  readonly text: string
  json<T = any>(): T
}

/** One request on its own connection (node:http sends the path verbatim: no `..` normalization, any header). */
export const raw = (
  base: string,
  path: string,
  init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer | ReadonlyArray<Buffer> } = {},
  captured?: Captured
): Promise<Reply> =>
  new Promise((resolve, reject) => {
    const u = new URL(base)
    const req = http.request(
      { host: u.hostname, port: u.port, path, method: init.method ?? "GET", headers: init.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = []
        res.on("data", (c: Buffer) => chunks.push(c))
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8")
          if (captured && String(res.headers["content-type"]).startsWith("application/problem+json"))
            captured.problems.push(text)
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) })
        })
        res.on("error", reject)
      }
    )
    req.on("error", reject)
    if (Array.isArray(init.body)) {
      for (const b of init.body) req.write(b)
      req.end()
    } else req.end(init.body as string | Buffer | undefined)
  })

/** A call with an API key (`Authorization: Bearer`), the body sent as JSON when there is one. */
export const keyed = (
  base: string,
  key: string,
  method: string,
  path: string,
  body?: unknown,
  captured?: Captured
): Promise<Reply> =>
  raw(
    base,
    path,
    {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {})
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    },
    captured
  )

/** The /metrics text of a server with the harness's keys (the route needs a key when keys are configured). */
export const metricsText = async (base: string): Promise<string> =>
  (await raw(base, "/metrics", { headers: { "x-tessera-key": OPS_KEY } })).text

export const sandbox = () => startSandbox()

/** Every secret the tests handed to or got from the server, except where a route is meant to return a token. */
export const secretsOf = (sb: Sandbox, captured: Captured): ReadonlyArray<string> => {
  const out = new Set<string>([OPS_KEY, JOBS_KEY, WRONG_SECRET, "alice-password"])
  for (const creds of Object.values(sb.credentials)) {
    for (const [k, v] of Object.entries(creds)) if (secretInputs.includes(k) && v.length >= 6) out.add(v)
  }
  for (const t of captured.tokens) out.add(t)
  for (const r of sb.requests) {
    const bearer = /^Bearer (.+)$/.exec(r.headers["authorization"] ?? "")?.[1]
    if (bearer) out.add(bearer) // tokens the proxy applied
    if (r.form?.["refresh_token"]) out.add(r.form["refresh_token"])
  }
  return [...out]
}

/** Asserts that no secret appears in the captured log lines, problem bodies or `metrics`. Returns the material. */
export const leaks = (sb: Sandbox, captured: Captured, metrics: string): ReadonlyArray<string> => {
  const haystacks = [...captured.logs, ...captured.problems, metrics]
  const found: string[] = []
  for (const s of secretsOf(sb, captured)) {
    if (haystacks.some((h) => h.includes(s))) found.push(s.slice(0, 6) + "...")
  }
  return found
}

/** The value of one sample in a Prometheus text exposition (0 when absent). `labels` as rendered, e.g.
 *  `{provider="cube"}`. */
export const sample = (text: string, name: string, labels = ""): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `))
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0
}
