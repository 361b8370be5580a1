/** Experiment (not a bench): the bare undici proxy (lib/undici-proxy.ts) in a process that has also loaded and
 *  started a tessera server for $BENCH_CONFIG (idle). Answers whether the bare proxy's cost per request grows with
 *  the process's working set alone (experiments/fat-baseline.ts). */
import { Config } from "@tessera/engine"
import { startServer } from "@tessera/server"
import * as Effect from "effect/Effect"
import { serve } from "../lib/child.ts"
import { startUndiciProxy } from "../lib/undici-proxy.ts"

const config = await Effect.runPromise(
  Config.parse("/tmp/tessera-bench/tessera.yaml", process.env["BENCH_CONFIG"] ?? "", process.env)
)
const tessera = await startServer(config, { port: 0, host: "127.0.0.1", log: false, trimHeap: true })
const proxy = await startUndiciProxy(
  process.env["BENCH_UPSTREAM"] ?? "http://127.0.0.1:1",
  process.env["BENCH_TOKEN"] ?? "x"
)
serve({ url: proxy.url, tessera: tessera.url }, {}, async () => {
  await proxy.close()
  await tessera.close()
})
