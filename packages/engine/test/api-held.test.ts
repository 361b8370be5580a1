/** internal/api-held.ts on a loopback API: an answer held at its head, then written into a destination or thrown
 *  away; a latency callback that throws ends nothing. */
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { PassThrough } from "node:stream"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Http from "../src/internal/api-http.ts"
import * as Held from "../src/internal/api-held.ts"

let api: http.Server
let origin: string
const client = Http.makeClient()

beforeAll(async () => {
  api = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" })
    res.end("the body")
  })
  await new Promise<void>((r) => api.listen(0, "127.0.0.1", () => r()))
  origin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`
})
afterAll(async () => {
  client.destroy()
  api.closeAllConnections()
  await new Promise<void>((r) => api.close(() => r()))
})

const read = (held: Held.Held) =>
  new Promise<string>((resolve, reject) => {
    const sink = new PassThrough()
    let text = ""
    sink.on("data", (c: Buffer) => {
      text += c.toString()
    })
    sink.on("end", () => resolve(text))
    sink.on("error", reject)
    held.into(sink)
  })

describe("Held.hold", () => {
  it("holds the answer at its head, then writes its body into the destination", async () => {
    const held = await Held.hold(await client.dispatcher(), {
      origin,
      path: "/",
      method: "GET",
      headers: {},
      timeoutMs: 2000
    })
    expect(held.status).toBe(200)
    expect(held.headers["content-type"]).toBe("text/plain")
    expect(await read(held)).toBe("the body")
  })

  it("a latency callback that throws: the answer still arrives whole", async () => {
    const held = await Held.hold(await client.dispatcher(), {
      origin,
      path: "/",
      method: "GET",
      headers: {},
      timeoutMs: 2000,
      onHead: () => {
        throw new Error("a metrics bug")
      }
    })
    expect(await read(held)).toBe("the body")
  })
})
