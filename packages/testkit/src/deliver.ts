/** Writing a Reply to the socket: normally, slowly (half the body, a pause, the rest) or cut off mid-body. */
import type { ServerResponse } from "node:http"
import type { Clock } from "./clock.ts"
import type { Reply } from "./reply.ts"
import type { Sleeper } from "./timers.ts"

export type Delivery = { mode: "normal" } | { mode: "slowBody"; ms: number } | { mode: "resetMidBody" }

export const NORMAL: Delivery = { mode: "normal" }

/** True once the client or close() has torn the connection down. */
export function gone(res: ServerResponse): boolean {
  return res.destroyed || res.socket === null || res.socket.destroyed
}

function writeHead(res: ServerResponse, reply: Reply, clock: Clock, length: number): void {
  res.statusCode = reply.status
  res.setHeader("Date", clock.httpDate())
  for (const [name, value] of Object.entries(reply.headers)) res.setHeader(name, value)
  res.setHeader("Content-Length", length)
}

export async function deliver(
  res: ServerResponse,
  reply: Reply,
  clock: Clock,
  sleeper: Sleeper,
  delivery: Delivery = NORMAL
): Promise<void> {
  if (gone(res)) return
  const body = Buffer.from(reply.body, "utf8")
  writeHead(res, reply, clock, body.length)
  const half = Math.floor(body.length / 2)
  switch (delivery.mode) {
    case "normal":
      res.end(body)
      return
    case "slowBody":
      res.flushHeaders()
      if (half > 0) res.write(body.subarray(0, half))
      await sleeper.sleep(delivery.ms)
      if (!gone(res)) res.end(body.subarray(half))
      return
    case "resetMidBody":
      res.flushHeaders()
      if (half > 0) res.write(body.subarray(0, half), () => res.socket?.destroy())
      else setImmediate(() => res.socket?.destroy())
      return
  }
}
