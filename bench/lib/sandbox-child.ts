/** The loopback sandbox IdP (@tessera/testkit) in its own process. Env: BENCH_SANDBOX_TTL (oauth2 token lifetime in
 *  seconds, default 3600). Ops:
 *    tokenCount            -> token requests received so far (benches take differences; the request log is kept short)
 *    lastTokenRequest      -> the last token request as recorded (method, path, headers, body), for equivalence checks
 *    delayNextToken {ms}   -> the next token request waits `ms` before it is answered (herd overlap)
 *    issueToken            -> a valid oauth2 access token (for direct API calls)
 *  The request log is trimmed on every request so a long bench does not grow it without bound. */
import { startSandbox } from "@tessera/testkit"
import { request } from "node:http"
import { serve } from "./child.ts"

const ttl = Number(process.env["BENCH_SANDBOX_TTL"] ?? 3600)
const sb = await startSandbox({ port: 0, host: "127.0.0.1", ttlSeconds: { oauth2: ttl } })

let tokenCount = 0
let lastToken: unknown
// The sandbox keeps every request in `requests`; count and trim so memory stays flat whatever the duration.
const trim = setInterval(() => {
  const reqs = sb.requests
  for (const r of reqs)
    if (r.kind === "token") {
      tokenCount++
      lastToken = r
    }
  reqs.length = 0
}, 50)
trim.unref()
const flush = () => {
  const reqs = sb.requests
  for (const r of reqs)
    if (r.kind === "token") {
      tokenCount++
      lastToken = r
    }
  reqs.length = 0
}

const creds = sb.credentials.oauth2

const issueToken = () =>
  new Promise<string>((resolve, reject) => {
    const body = "grant_type=client_credentials"
    const req = request(
      sb.tokenUrl("oauth2"),
      {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "content-length": Buffer.byteLength(body),
          authorization: `Basic ${Buffer.from(`${encodeURIComponent(creds["client_id"]!)}:${encodeURIComponent(creds["client_secret"]!)}`).toString("base64")}`
        }
      },
      (res) => {
        let text = ""
        res
          .setEncoding("utf8")
          .on("data", (c: string) => {
            text += c
          })
          .on("end", () => {
            try {
              resolve((JSON.parse(text) as { access_token: string }).access_token)
            } catch (e) {
              reject(e)
            }
          })
      }
    )
    req.on("error", reject)
    req.end(body)
  })

serve(
  { url: sb.url, tokenUrl: sb.tokenUrl("oauth2"), apiBase: creds["api_base_url"], credentials: creds },
  {
    tokenCount: async () => {
      await new Promise((r) => setTimeout(r, 60))
      flush()
      return tokenCount
    },
    lastTokenRequest: async () => {
      flush()
      return lastToken
    },
    delayNextToken: ({ ms }) => {
      sb.inject("oauth2", { type: "delay", ms: Number(ms) }, 1)
    },
    issueToken: () => issueToken()
  },
  () => sb.close()
)
