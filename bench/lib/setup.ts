/** Shared setup: the sandbox process, tessera configs pointing at it, and the bench interface. */
import type { Config } from "@tessera/engine"

type ConfigDocument = Config.ConfigDocument
import { fileURLToPath } from "node:url"
import { start, type Child } from "./child.ts"
import type { Row } from "./report.ts"
import type { Settings } from "./settings.ts"

export const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url))

export interface SandboxInfo {
  readonly url: string
  readonly tokenUrl: string
  /** The oauth2 API base, e.g. http://127.0.0.1:PORT/oauth2/api */
  readonly apiBase: string
  /** oauth2 demo credentials: token_url, client_id, client_secret, api_base_url */
  readonly credentials: Record<string, string>
}

/** The sandbox IdP in its own process. `ttl`: lifetime of its oauth2 tokens in seconds. */
export const startSandbox = (ttl = 3600): Promise<Child<SandboxInfo>> =>
  start<SandboxInfo>(script("sandbox-child.ts"), { env: { BENCH_SANDBOX_TTL: String(ttl) } })

/** The connection every bench uses: "api", the generic oauth2 provider, client credentials with HTTP Basic client
 *  authentication (the manifest's default), against the sandbox. */
export const CONNECTION = "api"

/** What the proxy bench's static API answers to every path: a small JSON list, the size of a typical page of items. */
export const apiBody = JSON.stringify({
  items: Array.from({ length: 5 }, (_, i) => ({ id: i + 1, name: `item ${i + 1}`, done: i % 2 === 0 })),
  page: 1,
  next: 2
})

/** No retries and short time limits: a bench must fail fast, never wait out a backoff. */
const http = { timeout_ms: 5000, total_timeout_ms: 10_000, retries: 0 }

export const configDoc = (sb: SandboxInfo): ConfigDocument =>
  ({
    connections: { [CONNECTION]: { provider: "oauth2", inputs: { ...sb.credentials } } },
    http
  }) as ConfigDocument

export const configYaml = (sb: SandboxInfo, extra: ReadonlyArray<string> = []): string =>
  [
    "connections:",
    `  ${CONNECTION}:`,
    "    provider: oauth2",
    "    inputs:",
    ...Object.entries(sb.credentials).map(([k, v]) => `      ${k}: ${JSON.stringify(v)}`),
    `http: { timeout_ms: ${http.timeout_ms}, total_timeout_ms: ${http.total_timeout_ms}, retries: ${http.retries} }`,
    ...extra
  ].join("\n") + "\n"

/** HTTP Basic per RFC 6749 §2.3.1 (form-encoded id and secret), as the engine sends it. */
export const basicAuth = (id: string, secret: string): string => {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+")
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64")}`
}

export interface Context {
  readonly settings: Settings
  readonly log: (line: string) => void
}

export interface Outcome {
  readonly rows: ReadonlyArray<Row>
  readonly details?: Record<string, unknown>
  readonly notes?: ReadonlyArray<string>
}

export interface Bench {
  readonly name: string
  readonly title: string
  readonly run: (ctx: Context) => Promise<Outcome>
}
