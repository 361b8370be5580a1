/** Public types of the sandbox: provider ids, start options, the Sandbox handle and recorded requests. */
import type { Fault } from "./faults.ts"

/** The bundled providers the sandbox emulates, in manifest-id spelling. */
export const PROVIDER_IDS = ["cube", "dvinci", "usage-engine", "brandbox", "crm-com", "oauth2"] as const

export type ProviderId = (typeof PROVIDER_IDS)[number]

export interface SandboxOptions {
  /** TCP port; 0 or omitted picks a free one. */
  port?: number
  /** Interface to listen on; default 127.0.0.1. */
  host?: string
  /** Access-token lifetime per provider, in seconds (overrides the provider default). */
  ttlSeconds?: Partial<Record<ProviderId, number>>
  /** Server clock = real clock + skew, in milliseconds. */
  clockSkewMs?: number
}

export interface RecordedRequest {
  provider: ProviderId
  kind: "token" | "api"
  method: string
  /** The request target as received: path plus query string. */
  path: string
  /** Lower-cased header names; repeated headers joined with ", ". */
  headers: Record<string, string>
  rawBody: string
  /** Set when the body was sent as application/x-www-form-urlencoded (last value wins on repeats). */
  form?: Record<string, string>
  /** Set when the body was sent as application/json and parsed. */
  json?: unknown
  /** The status answered; 0 when the socket was destroyed before any status was sent. */
  status: number
}

export interface Sandbox {
  /** "http://127.0.0.1:PORT" */
  url: string
  base(provider: ProviderId): string
  tokenUrl(provider: ProviderId): string
  /** Accepted demo connection inputs per provider, named as in providers/<id>.yaml. */
  credentials: Record<ProviderId, Record<string, string>>
  /** Every routed request received, in order. */
  requests: RecordedRequest[]
  tokenRequests(provider?: ProviderId): RecordedRequest[]
  inject(provider: ProviderId, fault: Fault, times?: number): void
  injectApi(provider: ProviderId, fault: Fault, times?: number): void
  revokeTokens(provider?: ProviderId): void
  setTtl(provider: ProviderId, seconds: number): void
  setClockSkew(ms: number): void
  reset(): void
  close(): Promise<void>
}
