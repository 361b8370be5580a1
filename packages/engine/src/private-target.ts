/** Private targets: whether a connection's endpoints point at this machine or a private network, for refusing a
 *  tenant's API key that would otherwise reach them through the token request and the proxy (SSRF across the
 *  tenant boundary).
 *
 *  - `privateKind(host)`: a URL's host (as `new URL` writes it, so `2130706433`, `0x7f.1`, `0177.0.0.1` and `127.1`
 *    arrive as 127.0.0.1) that is a loopback name (`localhost`, `*.localhost`) or a literal address that is
 *    loopback, unspecified, private (10/8, 172.16/12, 192.168/16, fc00::/7), CGNAT (100.64/10) or link-local
 *    (169.254/16, fe80::/10) or reserved (192.0.0/24, 198.18/15, 240/4), also IPv4-mapped, IPv4-compatible, NAT64
 *    (64:ff9b::/96; the local-use 64:ff9b:1::/48 is private) or 6to4 (2002::/16) IPv6 of those.
 *  - `privateEndpoints(manifest, given, inputs)`: every endpoint URL the connection would contact (its token flows,
 *    discovery issuer, authorization and device URLs, API base URL, and every url input), rendered from its
 *    resolved inputs, whose host is private; each named by the given input it comes from.
 *
 *  Not covered: a DNS name that resolves to a private address (that needs a check of the address at connect time),
 *  and endpoints an issuer's discovery metadata names. */
import { isIPv4, isIPv6 } from "node:net"
import type { Manifest } from "./manifest.ts"
import * as Template from "./template.ts"

const v4 = (h: string): number => h.split(".").reduce((n, p) => n * 256 + Number(p), 0)

const inV4 = (a: number, base: string, bits: number): boolean => {
  const shift = 32 - bits
  return Math.floor(a / 2 ** shift) === Math.floor(v4(base) / 2 ** shift)
}

const v4Kind = (a: number): string | undefined => {
  if (inV4(a, "127.0.0.0", 8)) return "loopback"
  if (inV4(a, "0.0.0.0", 8)) return "unspecified"
  if (inV4(a, "10.0.0.0", 8) || inV4(a, "172.16.0.0", 12) || inV4(a, "192.168.0.0", 16)) return "private"
  if (inV4(a, "100.64.0.0", 10)) return "CGNAT"
  if (inV4(a, "169.254.0.0", 16)) return "link-local"
  // Special-purpose (RFC 6890): IETF protocol assignments, benchmarking (often routed inside a network), and the
  // reserved block with the broadcast address; none is a provider's.
  if (inV4(a, "192.0.0.0", 24) || inV4(a, "198.18.0.0", 15) || inV4(a, "240.0.0.0", 4)) return "reserved"
  return undefined
}

/** The eight 16-bit groups of an IPv6 address as the URL parser writes it (compressed, hex, no IPv4 tail). */
const groups = (h: string): number[] => {
  const [head = "", tail] = h.split("::") as [string, string | undefined]
  const parse = (s: string) => (s === "" ? [] : s.split(":").map((g) => parseInt(g, 16)))
  const a = parse(head)
  const b = tail === undefined ? [] : parse(tail)
  return [...a, ...Array<number>(8 - a.length - b.length).fill(0), ...b]
}

const v6Kind = (h: string): string | undefined => {
  // new URL canonicalizes every spelling: ::ffff:127.0.0.1 becomes ::ffff:7f00:1.
  const canonical = new URL(`http://[${h}]/`).hostname.slice(1, -1)
  const g = groups(canonical)
  if (g.every((x) => x === 0)) return "unspecified"
  if (g.slice(0, 7).every((x) => x === 0) && g[7] === 1) return "loopback"
  const first = g[0] ?? 0
  if ((first & 0xfe00) === 0xfc00) return "private"
  if ((first & 0xffc0) === 0xfe80) return "link-local"
  const low = (g[6] ?? 0) * 65536 + (g[7] ?? 0)
  // IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d): the IPv4 address decides.
  if (g.slice(0, 5).every((x) => x === 0) && (g[5] === 0xffff || g[5] === 0)) return v4Kind(low)
  // NAT64 (64:ff9b::a.b.c.d, RFC 6052): a gateway reaches the embedded IPv4 address, so it decides; the local-use
  // prefix 64:ff9b:1::/48 (RFC 8215) is a network's own.
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return v4Kind(low)
  if (g[0] === 0x64 && g[1] === 0xff9b && g[2] === 1) return "private"
  // 6to4 (2002:aabb:ccdd::/48, RFC 3056): the embedded IPv4 address decides.
  if (g[0] === 0x2002) return v4Kind((g[1] ?? 0) * 65536 + (g[2] ?? 0))
  return undefined
}

/** What kind of private target a URL host is (bracketed IPv6 or not), or undefined for a public one. */
export const privateKind = (host: string): string | undefined => {
  const h = (host.startsWith("[") && host.endsWith("]") ? host.slice(1, -1) : host).toLowerCase().replace(/\.$/, "")
  if (h === "localhost" || h.endsWith(".localhost")) return "loopback"
  if (isIPv4(h)) return v4Kind(v4(h))
  if (isIPv6(h)) return v6Kind(h)
  return undefined
}

/** A URL's private host, normalized by the URL parser, or undefined (public, or not a URL: checkUrl reports that). */
export const privateHost = (value: string): { host: string; kind: string } | undefined => {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return undefined
  }
  const kind = privateKind(url.hostname)
  return kind === undefined ? undefined : { host: url.hostname, kind }
}

export interface PrivateEndpoint {
  /** The given input the URL comes from. */
  readonly input: string
  readonly host: string
  readonly kind: string
}

/** The manifest's endpoint templates (what the connection contacts). */
const endpointTemplates = (m: Manifest): Template.Template[] =>
  [
    m.flows.acquire?.url,
    m.flows.refresh?.url,
    m.discovery?.issuer,
    m.authorization?.url,
    m.device?.url,
    m.api?.baseUrl
  ].filter((t): t is Template.Template => t !== undefined)

/** The given inputs a template draws on, through the defaults of inputs not given. */
const givenSources = (m: Manifest, t: Template.Template, given: ReadonlySet<string>, seen = new Set<string>()) => {
  const out = new Set<string>()
  for (const r of Template.refs(t, "inputs")) {
    if (seen.has(r.name)) continue
    seen.add(r.name)
    if (given.has(r.name)) out.add(r.name)
    else {
      const d = m.inputs.get(r.name)?.default
      if (d) for (const n of givenSources(m, d, given, seen)) out.add(n)
    }
  }
  return out
}

/** Every private endpoint the connection would contact that a given input leads to (one per input and host). An
 *  endpoint fixed by the manifest alone (no given input in it) is the operator's, and not reported. */
export const privateEndpoints = (
  m: Manifest,
  given: ReadonlySet<string>,
  inputs: (name: string) => Template.Value | undefined
): PrivateEndpoint[] => {
  const found = new Map<string, PrivateEndpoint>()
  const add = (input: string, value: string) => {
    const p = privateHost(value)
    if (p && !found.has(`${input}\u0000${p.host}`)) found.set(`${input}\u0000${p.host}`, { input, ...p })
  }
  for (const spec of m.inputs.values()) {
    const v = spec.type === "url" && given.has(spec.name) ? inputs(spec.name) : undefined
    if (v !== undefined) add(spec.name, Template.reveal(v))
  }
  for (const t of endpointTemplates(m)) {
    const r = Template.render(t, { inputs })
    if (r._tag !== "Value") continue
    for (const input of givenSources(m, t, given)) add(input, Template.reveal(r.value))
  }
  return [...found.values()]
}
