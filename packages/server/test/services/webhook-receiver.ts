/** A loopback webhook receiver for tests: records every POST (headers and the raw body) and answers with the
 *  status the test sets, so it can fail the first attempts and accept the later ones. */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { WebhookSignature } from "@tessera/engine"

export interface Delivery {
  readonly headers: http.IncomingHttpHeaders
  readonly body: string
  /** What the receiver answered. */
  readonly status: number
  /** What verifying the signature with the receiver's secret said, at arrival. */
  readonly verdict: WebhookSignature.Verdict
  /** Epoch ms of arrival. */
  readonly at: number
}

export type Answer = number | { readonly status: number; readonly headers: Readonly<Record<string, string>> }

export interface Receiver {
  readonly url: string
  readonly port: number
  readonly deliveries: Delivery[]
  /** The status for the next requests (with headers, if given): a list consumed one per request, then `then`. */
  readonly answer: (next: ReadonlyArray<Answer>, then?: number) => void
  /** Accepted deliveries, one per webhook-id, in arrival order. */
  readonly accepted: () => Delivery[]
  readonly close: () => Promise<void>
}

export const newSecret = () => `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`

export const startReceiver = async (secret: string, port = 0): Promise<Receiver> => {
  const key = WebhookSignature.parseSecret(secret)
  if (!Buffer.isBuffer(key)) throw new Error(key.problem)
  const deliveries: Delivery[] = []
  let queue: Answer[] = []
  let fallback = 200
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on("data", (c: Buffer) => chunks.push(c))
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8")
      const next = queue.shift() ?? fallback
      const { status, headers } = typeof next === "number" ? { status: next, headers: {} } : next
      const verdict = WebhookSignature.verify(key, req.headers, body, Math.floor(Date.now() / 1000))
      deliveries.push({ headers: req.headers, body, status, verdict, at: Date.now() })
      res.writeHead(status, headers).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve))
  const actual = (server.address() as AddressInfo).port
  return {
    url: `http://127.0.0.1:${actual}/hooks/tessera`,
    port: actual,
    deliveries,
    answer: (next, then = 200) => {
      queue = [...next]
      fallback = then
    },
    accepted: () => {
      const seen = new Set<string>()
      return deliveries.filter((d) => {
        const id = String(d.headers["webhook-id"])
        if (d.status < 200 || d.status >= 300 || seen.has(id)) return false
        seen.add(id)
        return true
      })
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}
