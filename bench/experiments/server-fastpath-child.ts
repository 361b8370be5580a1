/** The fast-path prototype for experiments/server-fastpath.ts: cache hits answered in the node:http listener before
 *  any Effect code runs (engine.peek + Engine.toJson + the same headers + request id + one access-log line to stdout). */
import { Config, Engine, Runtime } from "@tessera/engine"
import { Effect, Layer, ManagedRuntime } from "effect"
import { createServer } from "node:http"
import { randomUUID } from "node:crypto"
import type { AddressInfo } from "node:net"
import { serve } from "../lib/child.ts"
const config = await Effect.runPromise(Config.parse("/tmp/x/tessera.yaml", process.env["BENCH_CONFIG"]!))
const rt = ManagedRuntime.make(Runtime.layer(config, "memory") as Layer.Layer<Engine.Engine, unknown>)
const engine = await rt.runPromise(Engine.Engine)
const re = /^\/v1\/connections\/([^/]+)\/token$/
const server = createServer(async (req, res) => {
  const started = performance.now()
  const id = randomUUID()
  const m = re.exec(req.url ?? "")
  const name = m?.[1] ?? ""
  const hit = engine.peek(name) ?? (await rt.runPromise(engine.getToken(name)))
  const body = JSON.stringify(Engine.toJson(hit))
  res.writeHead(200, {
    "x-request-id": id,
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
  res.once("close", () =>
    process.stdout.write(
      JSON.stringify({
        time: new Date().toISOString(),
        type: "access",
        method: req.method,
        path: req.url,
        status: 200,
        duration_ms: Math.round((performance.now() - started) * 10) / 10,
        request_id: id,
        route: "/v1/connections/:name/token",
        connection: name
      }) + "\n"
    )
  )
})
await new Promise<void>((r) => server.listen(0, "127.0.0.1", r))
serve({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }, {}, async () => {
  server.close()
  server.closeAllConnections()
  await rt.dispose()
})
