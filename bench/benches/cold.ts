/** cold: one token acquisition with no cache, end to end (client CPU + loopback round trip + the sandbox issuing a
 *  signed token), by three clients against the same sandbox token endpoint, one request at a time:
 *    tessera  `tessera.getToken("api", { noCache: true })` (Promise API; engine: template rendering, Http (undici),
 *             response decoding and expiry, events)
 *    got      a raw `got.post` of the same form body with the same Basic header over a keep-alive agent, JSON parsed
 *    openid-client  `clientCredentialsGrant` (v6, fetch-based) with client_secret_basic
 *  Two more clients split the engine's overhead (info rows): `Http.send`, the engine's own undici call run as an
 *  Effect, and `Upstream.exchange`, the whole token exchange (request building, Http, response decoding, time limit)
 *  without the engine's cache and single-flight layer.
 *  Calls are interleaved (A, B, C, ... rotating the order) after a warm-up, so drift hits all clients alike. Targets
 *  on the median time per acquisition: ≤ 1.2× raw got, ≤ 1.0× openid-client. */
import { Config, Http, Upstream } from "@tessera/engine"
import { createTessera } from "@tessera/engine/promise"
import { Effect } from "effect"
import got from "got"
import { Agent } from "node:http"
import * as oidc from "openid-client"
import { basicAuth, CONNECTION, configDoc, startSandbox, type Bench } from "../lib/setup.ts"
import { summarize, type Summary } from "../lib/stats.ts"

type Client = { readonly name: string; readonly call: () => Promise<string> }

const redactRequest = (
  r: { method: string; path: string; headers: Record<string, string>; rawBody: string } | undefined
) =>
  r && {
    method: r.method,
    path: r.path,
    body: r.rawBody,
    headers: Object.fromEntries(
      Object.entries(r.headers)
        .filter(([k]) => !["host", "connection"].includes(k))
        .map(([k, v]) => [k, k === "authorization" ? v.replace(/ .+/, " …") : v])
    )
  }

export const bench: Bench = {
  name: "cold",
  title: "Uncached token acquisition vs raw got and openid-client",
  run: async ({ settings: s, log }) => {
    const sb = await startSandbox()
    const tessera = await createTessera({ config: configDoc(sb.info) })
    const agent = new Agent({ keepAlive: true, maxSockets: 64 })
    try {
      const { tokenUrl, credentials: c } = sb.info
      const auth = basicAuth(c["client_id"]!, c["client_secret"]!)
      const oidcConfig = new oidc.Configuration(
        { issuer: `${sb.info.url}/oauth2`, token_endpoint: tokenUrl },
        c["client_id"]!,
        undefined,
        oidc.ClientSecretBasic(c["client_secret"]!)
      )
      oidc.allowInsecureRequests(oidcConfig) // plain http on loopback
      const config = await Effect.runPromise(Config.fromObject(configDoc(sb.info)))
      const conn = config.connections.get(CONNECTION)!
      const http = Http.make()
      const wire = {
        method: "POST",
        url: tokenUrl,
        headers: {
          authorization: auth,
          "content-type": "application/x-www-form-urlencoded",
          accept: "application/json"
        },
        body: "grant_type=client_credentials"
      }
      const clients: Client[] = [
        { name: "tessera", call: () => tessera.getToken(CONNECTION, { noCache: true }) },
        {
          name: "got",
          call: async () => {
            const r = await got.post(tokenUrl, {
              headers: {
                authorization: auth,
                "content-type": "application/x-www-form-urlencoded",
                accept: "application/json"
              },
              body: "grant_type=client_credentials",
              agent: { http: agent },
              retry: { limit: 0 },
              responseType: "json",
              throwHttpErrors: false
            })
            const body = r.body as { access_token?: string }
            if (r.statusCode !== 200 || !body.access_token) throw new Error(`got: HTTP ${r.statusCode}`)
            return body.access_token
          }
        },
        { name: "openid-client", call: async () => (await oidc.clientCredentialsGrant(oidcConfig)).access_token },
        {
          name: "Http.send",
          call: async () => {
            const r = await Effect.runPromise(
              http.send(wire, { timeoutMs: config.http.timeoutMs, maxResponseBytes: config.http.maxResponseBytes })
            )
            return (JSON.parse(Buffer.from(r.body).toString("utf8")) as { access_token: string }).access_token
          }
        },
        {
          name: "Upstream.exchange",
          call: async () => {
            const x = await Effect.runPromise(
              Upstream.exchange(conn, conn.manifest.flows.acquire!, config.http).pipe(
                Effect.provideService(Http.Http, http)
              )
            )
            return x.token.accessToken ? "ok" : ""
          }
        }
      ]
      // What each sends (secrets cut), to show the three requests are equivalent.
      const requests: Record<string, unknown> = {}
      for (const cl of clients) {
        const token = await cl.call()
        if (!token) throw new Error(`${cl.name} returned no token`)
        requests[cl.name] = redactRequest(await sb.call("lastTokenRequest"))
      }
      const warmup = Math.max(20, Math.round(s.iterations / 5))
      const times: Record<string, number[]> = Object.fromEntries(clients.map((cl) => [cl.name, []]))
      const before = await sb.call<number>("tokenCount")
      for (let i = 0; i < warmup + s.iterations; i++) {
        // rotate the order each iteration: no client always goes first (or right after the same one)
        for (let k = 0; k < clients.length; k++) {
          const cl = clients[(i + k) % clients.length]!
          const t0 = performance.now()
          await cl.call()
          const dt = performance.now() - t0
          if (i >= warmup) times[cl.name]!.push(dt)
        }
      }
      const upstream = (await sb.call<number>("tokenCount")) - before
      if (upstream !== (warmup + s.iterations) * clients.length)
        throw new Error(
          `expected ${(warmup + s.iterations) * clients.length} token requests, the sandbox saw ${upstream}`
        )
      const st: Record<string, Summary> = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, summarize(v)]))
      for (const [k, v] of Object.entries(st))
        log(
          `${k.padEnd(17)} median ${v.median.toFixed(3)} ms, p95 ${v.p95.toFixed(3)} ms, mean ${v.mean.toFixed(3)} ms (n=${v.n})`
        )
      const t = st["tessera"]!,
        g = st["got"]!,
        o = st["openid-client"]!
      return {
        rows: [
          {
            label: "acquire, median",
            unit: "ms",
            value: t.median,
            baseline: { label: "raw got", value: g.median },
            target: { on: "ratio", op: "<=", limit: 1.2 },
            better: "lower"
          },
          {
            label: "acquire, median",
            unit: "ms",
            value: t.median,
            baseline: { label: "openid-client", value: o.median },
            target: { on: "ratio", op: "<=", limit: 1.0 },
            better: "lower"
          },
          {
            label: "acquire, p95",
            unit: "ms",
            value: t.p95,
            baseline: { label: "raw got", value: g.p95 },
            better: "lower"
          },
          {
            label: "acquire, p95",
            unit: "ms",
            value: t.p95,
            baseline: { label: "openid-client", value: o.p95 },
            better: "lower"
          },
          {
            label: "split: Http.send (engine's undici call), median",
            unit: "ms",
            value: st["Http.send"]!.median,
            baseline: { label: "raw got", value: g.median },
            better: "lower"
          },
          {
            label: "split: Upstream.exchange (no cache layer), median",
            unit: "ms",
            value: st["Upstream.exchange"]!.median,
            baseline: { label: "raw got", value: g.median },
            better: "lower"
          }
        ],
        details: { iterations: s.iterations, warmup, stats: st, requests }
      }
    } finally {
      agent.destroy()
      await tessera.close()
      await sb.stop()
    }
  }
}
